// Milenage (TS 35.206) against every set of tests/data/milenage-ts35207.txt, and the AKA values
// built from it (AUTN, AUTS, resync).
#include <gtest/gtest.h>

#include "crypto/milenage.h"
#include "vectors.h"

namespace best::crypto::test {
namespace {

constexpr char kFile[] = "milenage-ts35207.txt";

std::vector<Record> sets() {
    auto r = readRecords(kFile);
    EXPECT_EQ(r.size(), 6u) << "TS 35.207 sets 1-6";
    return r;
}

template <std::size_t N>
std::string hexOf(const std::array<std::uint8_t, N>& a) {
    return hex(ByteView(a.data(), N));
}

// Opc from the file, or computed from the file's OP.
Opc opcOf(const Record& s, bool fromOp) {
    if (!fromOp)
        return s.secret<Opc>("OPc");
    SoftAes128 ek(s.secret<SubscriberK>("K"));
    auto opc = computeOpc(ek, s.secret<Op>("OP"));
    EXPECT_TRUE(opc.has_value());
    return opc ? *opc : Opc{};
}

// A BlockCipher that fails, standing for an HSM that stops answering.
class FailingCipher final : public BlockCipher {
public:
    Result<void> encryptBlock(const std::uint8_t*, std::uint8_t*) override {
        return makeError(CryptoErrc::hsm, "test: E_K unavailable");
    }
};

TEST(Milenage, ComputeOpcMatchesEverySet) {
    for (const Record& s : sets()) {
        SCOPED_TRACE("set " + s.text("set"));
        SoftAes128 ek(s.secret<SubscriberK>("K"));
        auto opc = computeOpc(ek, s.secret<Op>("OP"));
        ASSERT_TRUE(opc.has_value()) << opc.error().describe();
        EXPECT_EQ(hex(opc->view()), s.text("OPc"));
    }
}

class MilenageFunctions : public ::testing::TestWithParam<bool> {};

TEST_P(MilenageFunctions, F1ToF5StarMatchEverySet) {
    const bool fromOp = GetParam();
    for (const Record& s : sets()) {
        SCOPED_TRACE("set " + s.text("set") + (fromOp ? " (OP)" : " (OPc)"));
        SoftAes128 ek(s.secret<SubscriberK>("K"));
        Milenage m(ek, opcOf(s, fromOp));
        const auto rand = s.array<16>("RAND");
        const auto sqn = s.array<6>("SQN");
        const auto amf = s.array<2>("AMF");

        auto f1 = m.f1(rand, sqn, amf);
        ASSERT_TRUE(f1.has_value());
        EXPECT_EQ(hexOf(*f1), s.text("f1"));
        auto f1s = m.f1star(rand, sqn, amf);
        ASSERT_TRUE(f1s.has_value());
        EXPECT_EQ(hexOf(*f1s), s.text("f1*"));
        auto f = m.f2345(rand);
        ASSERT_TRUE(f.has_value());
        EXPECT_EQ(hexOf(f->res), s.text("f2"));
        EXPECT_EQ(hex(f->ck.view()), s.text("f3"));
        EXPECT_EQ(hex(f->ik.view()), s.text("f4"));
        EXPECT_EQ(hexOf(f->ak), s.text("f5"));
        auto f5s = m.f5star(rand);
        ASSERT_TRUE(f5s.has_value());
        EXPECT_EQ(hexOf(*f5s), s.text("f5*"));
    }
}

INSTANTIATE_TEST_SUITE_P(OpAndOpc, MilenageFunctions, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "FromOp" : "FromOpc"; });

TEST(Milenage, GenerateVectorAndOpenAutnRoundTrip) {
    for (const Record& s : sets()) {
        SCOPED_TRACE("set " + s.text("set"));
        SoftAes128 ek(s.secret<SubscriberK>("K"));
        const Opc opc = s.secret<Opc>("OPc");
        const auto rand = s.array<16>("RAND");
        const auto sqn = s.array<6>("SQN");
        const auto amf = s.array<2>("AMF");

        auto v = generateVector(ek, opc, rand, sqn, amf);
        ASSERT_TRUE(v.has_value()) << v.error().describe();
        // AUTN = SQN xor AK || AMF || MAC-A, from the file's f5 and f1.
        const Bytes ak = s.bytes("f5");
        Bytes expectAutn;
        for (std::size_t i = 0; i < 6; ++i)
            expectAutn.push_back(sqn[i] ^ ak[i]);
        expectAutn.insert(expectAutn.end(), amf.begin(), amf.end());
        const Bytes mac = s.bytes("f1");
        expectAutn.insert(expectAutn.end(), mac.begin(), mac.end());
        EXPECT_EQ(hexOf(v->autn), hex(expectAutn));
        EXPECT_EQ(hexOf(v->rand), s.text("RAND"));
        EXPECT_EQ(hexOf(v->xres), s.text("f2"));
        EXPECT_EQ(hex(v->ck.view()), s.text("f3"));
        EXPECT_EQ(hex(v->ik.view()), s.text("f4"));
        EXPECT_EQ(hexOf(v->ak), s.text("f5"));
        EXPECT_EQ(v->sqn, sqn);

        auto o = openAutn(ek, opc, rand, v->autn);
        ASSERT_TRUE(o.has_value()) << o.error().describe();
        EXPECT_TRUE(o->macOk);
        EXPECT_EQ(o->sqn, sqn);
        EXPECT_EQ(o->amf, amf);
        EXPECT_EQ(o->res, v->xres);
        EXPECT_TRUE(o->ck.equals(v->ck));
        EXPECT_TRUE(o->ik.equals(v->ik));
        EXPECT_EQ(o->ak, v->ak);
    }
}

TEST(Milenage, TamperedAutnFailsMacCheck) {
    for (const Record& s : sets()) {
        SCOPED_TRACE("set " + s.text("set"));
        SoftAes128 ek(s.secret<SubscriberK>("K"));
        const Opc opc = s.secret<Opc>("OPc");
        const auto rand = s.array<16>("RAND");
        auto v = generateVector(ek, opc, rand, s.array<6>("SQN"), s.array<2>("AMF"));
        ASSERT_TRUE(v.has_value());
        // Any single flipped bit (SQN xor AK, AMF or MAC-A) must fail the MAC check.
        for (std::size_t i = 0; i < 16; ++i) {
            for (int bit = 0; bit < 8; bit += 7) {
                Autn bad = v->autn;
                bad[i] ^= static_cast<std::uint8_t>(1u << bit);
                auto o = openAutn(ek, opc, rand, bad);
                ASSERT_TRUE(o.has_value());
                EXPECT_FALSE(o->macOk) << "octet " << i << " bit " << bit;
            }
        }
        // A different RAND with the same AUTN fails too.
        Rand otherRand = rand;
        otherRand[0] ^= 1;
        auto o = openAutn(ek, opc, otherRand, v->autn);
        ASSERT_TRUE(o.has_value());
        EXPECT_FALSE(o->macOk);
    }
}

TEST(Milenage, AutsBuildAndResyncRecoversSqnMs) {
    for (const Record& s : sets()) {
        SCOPED_TRACE("set " + s.text("set"));
        SoftAes128 ek(s.secret<SubscriberK>("K"));
        const Opc opc = s.secret<Opc>("OPc");
        const auto rand = s.array<16>("RAND");
        const auto sqnMs = s.array<6>("SQN");

        auto auts = buildAuts(ek, opc, rand, sqnMs);
        ASSERT_TRUE(auts.has_value()) << auts.error().describe();
        // Conceal with the file's f5*; MAC-S is f1* over the same inputs with AMF 0000.
        const Bytes akStar = s.bytes("f5*");
        for (std::size_t i = 0; i < 6; ++i)
            EXPECT_EQ((*auts)[i], sqnMs[i] ^ akStar[i]);
        Milenage m(ek, opc);
        auto macS = m.f1star(rand, sqnMs, Amf{0, 0});
        ASSERT_TRUE(macS.has_value());
        EXPECT_EQ(hex(ByteView(auts->data() + 6, 8)), hexOf(*macS));
        EXPECT_NE(hexOf(*macS), s.text("f1*")) << "MAC-S must use AMF 0000, not the set's AMF";

        auto recovered = recoverSqnMs(ek, opc, rand, *auts);
        ASSERT_TRUE(recovered.has_value()) << recovered.error().describe();
        EXPECT_EQ(*recovered, sqnMs);
    }
}

TEST(Milenage, TamperedAutsIsMacSFailure) {
    for (const Record& s : sets()) {
        SCOPED_TRACE("set " + s.text("set"));
        SoftAes128 ek(s.secret<SubscriberK>("K"));
        const Opc opc = s.secret<Opc>("OPc");
        const auto rand = s.array<16>("RAND");
        auto auts = buildAuts(ek, opc, rand, s.array<6>("SQN"));
        ASSERT_TRUE(auts.has_value());
        for (std::size_t i = 0; i < auts->size(); ++i) {
            Auts bad = *auts;
            bad[i] ^= 0x01;
            auto r = recoverSqnMs(ek, opc, rand, bad);
            ASSERT_FALSE(r.has_value()) << "octet " << i;
            EXPECT_EQ(r.error().domain, ErrorDomain::crypto);
            EXPECT_EQ(r.error().code, static_cast<int>(CryptoErrc::mac_s_failure));
        }
        // The wrong RAND is a MAC-S failure as well.
        Rand otherRand = rand;
        otherRand[15] ^= 0x80;
        auto r = recoverSqnMs(ek, opc, otherRand, *auts);
        ASSERT_FALSE(r.has_value());
        EXPECT_EQ(r.error().code, static_cast<int>(CryptoErrc::mac_s_failure));
    }
}

TEST(Milenage, SqnIntegerConversion) {
    for (const Record& s : sets()) {
        const Sqn sqn = s.array<6>("SQN");
        std::uint64_t v = 0;
        for (std::uint8_t o : sqn)
            v = (v << 8) | o;
        EXPECT_EQ(sqnToInt(sqn), v);
        EXPECT_EQ(sqnFromInt(v), sqn);
    }
    EXPECT_EQ(sqnToInt(sqnFromInt(0)), 0u);
    EXPECT_EQ(sqnToInt(sqnFromInt(0xFFFFFFFFFFFFULL)), 0xFFFFFFFFFFFFULL);
    // Bits above 48 are dropped.
    EXPECT_EQ(sqnToInt(sqnFromInt(0x1234000000000021ULL)), 0x21u);
    // SEQ || IND with IND 5 bits: SEQ 1, IND 7 -> 0x27.
    EXPECT_EQ(sqnFromInt((1u << 5) | 7), (Sqn{0, 0, 0, 0, 0, 0x27}));
}

TEST(Milenage, BlockCipherFailurePropagates) {
    const auto s = sets();
    ASSERT_FALSE(s.empty());
    FailingCipher ek;
    const Opc opc = s[0].secret<Opc>("OPc");
    const auto rand = s[0].array<16>("RAND");
    const auto sqn = s[0].array<6>("SQN");
    const auto amf = s[0].array<2>("AMF");
    const auto isHsm = [](const auto& r) {
        return !r.has_value() && r.error().domain == ErrorDomain::crypto &&
               r.error().code == static_cast<int>(CryptoErrc::hsm);
    };

    auto opc2 = computeOpc(ek, s[0].secret<Op>("OP"));
    EXPECT_TRUE(isHsm(opc2));
    Milenage m(ek, opc);
    EXPECT_TRUE(isHsm(m.f1(rand, sqn, amf)));
    EXPECT_TRUE(isHsm(m.f1star(rand, sqn, amf)));
    EXPECT_TRUE(isHsm(m.f2345(rand)));
    EXPECT_TRUE(isHsm(m.f5star(rand)));
    EXPECT_TRUE(isHsm(generateVector(ek, opc, rand, sqn, amf)));
    EXPECT_TRUE(isHsm(openAutn(ek, opc, rand, Autn{})));
    EXPECT_TRUE(isHsm(buildAuts(ek, opc, rand, sqn)));
    EXPECT_TRUE(isHsm(recoverSqnMs(ek, opc, rand, Auts{})));
}

}  // namespace
}  // namespace best::crypto::test
