// The 3GPP KDF (TS 33.220 B.2) against every line of tests/data/kdf-3gpp.txt: the RFC 5448
// lines through kdf() with S split into FC and parameters and through hmacSha256() on the raw S;
// the KASME and KHSE lines through deriveRoot() from Milenage set 1.
#include <atomic>
#include <thread>

#include <gtest/gtest.h>

#include "crypto/kdf.h"
#include "crypto/key_hierarchy.h"
#include "crypto/milenage.h"
#include "vectors.h"

namespace best::crypto::test {
namespace {

constexpr char kFile[] = "kdf-3gpp.txt";

// Splits S = FC || P0 || L0 || ... || Pn || Ln from the end (each Li follows its Pi, so the
// lengths are read backwards). Fails the test when S does not split cleanly.
struct SplitS {
    std::uint8_t fc = 0;
    std::vector<Bytes> params;
};
SplitS splitS(const Bytes& s) {
    SplitS out;
    std::size_t end = s.size();
    while (end > 1) {
        if (end < 3)
            break;
        const std::size_t len = (std::size_t{s[end - 2]} << 8) | s[end - 1];
        if (len + 2 > end - 1) {
            ADD_FAILURE() << "S does not split: length " << len << " at " << end - 2;
            return out;
        }
        const std::size_t start = end - 2 - len;
        out.params.insert(out.params.begin(), Bytes(s.begin() + static_cast<long>(start),
                                                    s.begin() + static_cast<long>(end - 2)));
        end = start;
    }
    EXPECT_EQ(end, 1u) << "S must start with exactly one FC octet";
    if (!s.empty())
        out.fc = s[0];
    return out;
}

std::vector<Record> lines() {
    auto r = readRecords(kFile);
    EXPECT_EQ(r.size(), 6u) << "4 RFC 5448 lines, 1 KASME, 1 KHSE";
    return r;
}

const Record* lineWithFc(const std::vector<Record>& all, std::uint8_t fc) {
    for (const Record& r : all) {
        const Bytes s = r.bytes("S");
        if (!s.empty() && s[0] == fc)
            return &r;
    }
    ADD_FAILURE() << "no line with FC " << int(fc);
    return nullptr;
}

// Milenage set 1: CK, IK and SQN xor AK (the first 6 octets of its AUTN), computed here.
struct Set1 {
    Ck ck;
    Ik ik;
    Ak sqnXorAk{};
};
Set1 milenageSet1() {
    Set1 out;
    const auto sets = readRecords("milenage-ts35207.txt");
    for (const Record& s : sets) {
        if (s.text("set") != "1")
            continue;
        SoftAes128 ek(s.secret<SubscriberK>("K"));
        auto v = generateVector(ek, s.secret<Opc>("OPc"), s.array<16>("RAND"), s.array<6>("SQN"),
                                s.array<2>("AMF"));
        EXPECT_TRUE(v.has_value());
        if (!v)
            return out;
        out.ck = v->ck;
        out.ik = v->ik;
        for (std::size_t i = 0; i < 6; ++i)
            out.sqnXorAk[i] = v->autn[i];
        return out;
    }
    ADD_FAILURE() << "Milenage set 1 missing";
    return out;
}

constexpr PlmnId kPlmn00101 = {0x00, 0xf1, 0x10};  // MCC 001 MNC 01 (TS 24.008)

TEST(Kdf, EveryLineOverRawS) {
    for (const Record& r : lines()) {
        SCOPED_TRACE("line " + std::to_string(r.line));
        auto out = hmacSha256(r.bytes("key"), r.bytes("S"));
        ASSERT_TRUE(out.has_value()) << out.error().describe();
        EXPECT_EQ(hex(out->view()), r.text("out"));
    }
}

TEST(Kdf, EveryLineThroughKdfWithSplitParameters) {
    for (const Record& r : lines()) {
        SCOPED_TRACE("line " + std::to_string(r.line));
        const Bytes s = r.bytes("S");
        const SplitS split = splitS(s);
        ASSERT_EQ(split.params.size(), 2u);
        const ByteView p0(split.params[0]);
        const ByteView p1(split.params[1]);
        EXPECT_EQ(kdfInput(split.fc, {p0, p1}), s);
        auto out = kdf(r.bytes("key"), split.fc, {p0, p1});
        ASSERT_TRUE(out.has_value()) << out.error().describe();
        EXPECT_EQ(hex(out->view()), r.text("out"));
    }
}

TEST(Kdf, Rfc5448LinesUseFc0x20) {
    int n = 0;
    for (const Record& r : lines()) {
        if (r.bytes("S").at(0) == 0x20)
            ++n;
    }
    EXPECT_EQ(n, 4);
}

TEST(Kdf, KasmeLineFromDeriveRootEps) {
    const auto all = lines();
    const Record* r = lineWithFc(all, static_cast<std::uint8_t>(Fc::kasme));
    ASSERT_NE(r, nullptr);
    const Set1 set1 = milenageSet1();
    Bytes ckIk(set1.ck.view().begin(), set1.ck.view().end());
    ckIk.insert(ckIk.end(), set1.ik.view().begin(), set1.ik.view().end());
    EXPECT_EQ(hex(ckIk), r->text("key"));
    EXPECT_EQ(hex(kdfInput(0x10, {ByteView(kPlmn00101), ByteView(set1.sqnXorAk)})), r->text("S"));

    auto kasme = deriveRoot(KeyAgreement::eps, set1.ck, set1.ik, kPlmn00101, set1.sqnXorAk);
    ASSERT_TRUE(kasme.has_value()) << kasme.error().describe();
    EXPECT_EQ(hex(kasme->view()), r->text("out"));
}

TEST(Kdf, KhseLineFromDeriveRoot5g) {
    const auto all = lines();
    const Record* r = lineWithFc(all, static_cast<std::uint8_t>(Fc::khse));
    ASSERT_NE(r, nullptr);
    const Set1 set1 = milenageSet1();
    // P0 of the line is the serving network name of PLMN 001/01.
    const SplitS split = splitS(r->bytes("S"));
    ASSERT_EQ(split.params.size(), 2u);
    auto snn = servingNetworkName(kPlmn00101);
    ASSERT_TRUE(snn.has_value());
    EXPECT_EQ(*snn, std::string(split.params[0].begin(), split.params[0].end()));
    EXPECT_EQ(hex(split.params[1]), hex(set1.sqnXorAk));

    auto khse = deriveRoot(KeyAgreement::fiveG, set1.ck, set1.ik, kPlmn00101, set1.sqnXorAk);
    ASSERT_TRUE(khse.has_value()) << khse.error().describe();
    EXPECT_EQ(hex(khse->view()), r->text("out"));
}

TEST(Kdf, KdfInputEncoding) {
    // Structure only: FC, then each parameter followed by its 2-octet length.
    const Bytes a = {1, 2, 3};
    const Bytes empty;
    const Bytes s = kdfInput(0xB4, {ByteView(a), ByteView(empty)});
    EXPECT_EQ(s, (Bytes{0xB4, 1, 2, 3, 0x00, 0x03, 0x00, 0x00}));
    EXPECT_EQ(kdfInput(0x10, {}), Bytes{0x10});
    const Bytes big(300, 0xAA);
    const Bytes s2 = kdfInput(0x01, {ByteView(big)});
    ASSERT_EQ(s2.size(), 303u);
    EXPECT_EQ(s2[301], 0x01);
    EXPECT_EQ(s2[302], 0x2C);
}

TEST(Kdf, KdfEqualsHmacOverKdfInput) {
    const Bytes key(32, 0x5A);
    const Bytes p0 = {'h', 's', 'e'};
    const Bytes p1(700, 0x11);
    for (std::uint8_t fc : {0x00, 0x10, 0x63, 0xB0, 0xB6, 0xFF}) {
        auto a = kdf(key, fc, {ByteView(p0), ByteView(p1)});
        auto b = hmacSha256(key, kdfInput(fc, {ByteView(p0), ByteView(p1)}));
        ASSERT_TRUE(a.has_value());
        ASSERT_TRUE(b.has_value());
        EXPECT_TRUE(a->equals(*b));
    }
}

TEST(Kdf, ParameterTooLongIsBadLength) {
    const Bytes key(32, 1);
    const Bytes ok(0xFFFF, 2);
    const Bytes tooLong(0x10000, 2);
    EXPECT_TRUE(kdf(key, 0xB0, {ByteView(ok)}).has_value());
    auto r = kdf(key, 0xB0, {ByteView(tooLong)});
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().domain, ErrorDomain::crypto);
    EXPECT_EQ(r.error().code, static_cast<int>(CryptoErrc::bad_length));
}

TEST(Kdf, EmptyKeyIsBadLength) {
    auto r = kdf(ByteView(), 0xB0, {});
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code, static_cast<int>(CryptoErrc::bad_length));
    auto h = hmacSha256(ByteView(), ByteView());
    ASSERT_FALSE(h.has_value());
    EXPECT_EQ(h.error().code, static_cast<int>(CryptoErrc::bad_length));
}

TEST(Kdf, ConcurrentCallsAgree) {
    const auto all = lines();
    ASSERT_FALSE(all.empty());
    const Bytes key = all[0].bytes("key");
    const Bytes s = all[0].bytes("S");
    const std::string want = all[0].text("out");
    std::atomic<int> bad{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&] {
            for (int i = 0; i < 200; ++i) {
                auto out = hmacSha256(key, s);
                if (!out || hex(out->view()) != want)
                    ++bad;
            }
        });
    }
    for (auto& t : threads)
        t.join();
    EXPECT_EQ(bad.load(), 0);
}

}  // namespace
}  // namespace best::crypto::test
