// The key hierarchy of profile section 6: serving network names, error paths, and every key,
// MAC and ciphertext of the profile's worked example (tests/data/profile-example.txt, computed
// by an independent implementation), re-derived with the product functions.

// GCC 12 with -fsanitize=address reports a false -Wmaybe-uninitialized inside std::regex's
// std::function members (a known GCC 12 false positive); this file is test-only and uses
// std::regex to read the example.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <map>
#include <regex>
#include <sstream>

#include <gtest/gtest.h>

#include "crypto/eps_algorithms.h"
#include "crypto/key_hierarchy.h"
#include "crypto/milenage.h"
#include "profile_example.h"
#include "vectors.h"

namespace best::crypto::test {
namespace {

template <typename R>
bool failsWith(const R& r, CryptoErrc code) {
    return !r.has_value() && r.error().domain == ErrorDomain::crypto &&
           r.error().code == static_cast<int>(code);
}

template <std::size_t N>
std::array<std::uint8_t, N> arr(const std::string& h) {
    return best::test::hexArray<N>(h);
}
template <typename S>
S sec(const std::string& h) {
    const Bytes b = hexBytes(h);
    EXPECT_EQ(b.size(), S::kSize) << h;
    return S(ByteView(b));
}
std::uint32_t u32(const std::string& h) {
    return static_cast<std::uint32_t>(std::stoul(h, nullptr, 16));
}
std::uint64_t u64(const std::string& h) {
    return std::stoull(h, nullptr, 16);
}

// ---- serving network name ------------------------------------------------------------------

TEST(ServingNetworkName, TwoDigitMncIsZeroPadded) {
    // 001/01 is cross-checked against the KHSE line of kdf-3gpp.txt in test_kdf.cpp.
    auto n = servingNetworkName(PlmnId{0x00, 0xf1, 0x10});
    ASSERT_TRUE(n.has_value());
    EXPECT_EQ(*n, "5G:mnc001.mcc001.3gppnetwork.org");
    auto d = servingNetworkName(PlmnId{0x62, 0xf2, 0x10});  // MCC 262, MNC 01
    ASSERT_TRUE(d.has_value());
    EXPECT_EQ(*d, "5G:mnc001.mcc262.3gppnetwork.org");
}

TEST(ServingNetworkName, ThreeDigitMnc) {
    auto a = servingNetworkName(PlmnId{0x13, 0x00, 0x62});  // MCC 310, MNC 260
    ASSERT_TRUE(a.has_value());
    EXPECT_EQ(*a, "5G:mnc260.mcc310.3gppnetwork.org");
    auto b = servingNetworkName(PlmnId{0x54, 0x36, 0x21});  // MCC 456, MNC 123
    ASSERT_TRUE(b.has_value());
    EXPECT_EQ(*b, "5G:mnc123.mcc456.3gppnetwork.org");
}

TEST(ServingNetworkName, NonBcdDigitIsBadValue) {
    const PlmnId bad[] = {
        {0x0a, 0xf1, 0x10},  // MCC digit 1
        {0xa0, 0xf1, 0x10},  // MCC digit 2
        {0x00, 0xfb, 0x10},  // MCC digit 3
        {0x00, 0xf1, 0x1c},  // MNC digit 1
        {0x00, 0xf1, 0xd0},  // MNC digit 2
        {0x00, 0xe1, 0x10},  // MNC digit 3: only F (absent) or 0-9
        {0x00, 0xf1, 0xf0},  // MNC digit 2 cannot be the filler
        {0xff, 0xff, 0xff},
    };
    for (const PlmnId& p : bad) {
        SCOPED_TRACE(hex(p));
        EXPECT_TRUE(failsWith(servingNetworkName(p), CryptoErrc::bad_value));
        EXPECT_TRUE(
            failsWith(deriveRoot(KeyAgreement::fiveG, Ck{}, Ik{}, p, Ak{}), CryptoErrc::bad_value));
    }
}

TEST(KeyHierarchy, UmtsRootIsCkIk) {
    Ck ck;
    Ik ik;
    for (std::size_t i = 0; i < 16; ++i) {
        ck[i] = static_cast<std::uint8_t>(i);
        ik[i] = static_cast<std::uint8_t>(0xF0 + i);
    }
    auto r = deriveRoot(KeyAgreement::umts, ck, ik, PlmnId{}, Ak{});
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(hex(r->view()), hex(ck.view()) + hex(ik.view()));
}

TEST(KeyHierarchy, UnknownKeyAgreementIsBadValue) {
    EXPECT_TRUE(failsWith(
        deriveRoot(static_cast<KeyAgreement>(0x07), Ck{}, Ik{}, PlmnId{0x00, 0xf1, 0x10}, Ak{}),
        CryptoErrc::bad_value));
}

TEST(KeyHierarchy, DerivationsMatchTheKdfWithTheirFc) {
    // Each derivation is the KDF with the FC of the one table and the profile's encodings.
    Key256 k;
    for (std::size_t i = 0; i < 32; ++i)
        k[i] = static_cast<std::uint8_t>(3 * i + 1);
    const std::string id = "eas.example.org";
    const ByteView idv(reinterpret_cast<const std::uint8_t*>(id.data()), id.size());
    const auto same = [](const Result<Key256>& a, const Result<Key256>& b) {
        return a.has_value() && b.has_value() && a->equals(*b);
    };
    EXPECT_TRUE(same(deriveKInt(k, id), kdf(k.view(), 0xB0, {idv})));
    EXPECT_TRUE(same(deriveKIntE2e(k, id), kdf(k.view(), 0xB1, {idv})));
    EXPECT_TRUE(same(deriveKIntEasPsk(k, id), kdf(k.view(), 0xB2, {idv})));
    const Bytes sid = {0x01, 0x02, 0x03, 0x04};
    const Bytes nonce = {0, 1, 2, 3, 4, 5, 6, 7};
    EXPECT_TRUE(same(deriveKSess(k, 0x01020304, 0x0001020304050607ULL),
                     kdf(k.view(), 0xB4, {ByteView(sid), ByteView(nonce)})));
    auto easKid = deriveEasKeyId(k, id);
    auto full = kdf(k.view(), 0xB3, {idv});
    ASSERT_TRUE(easKid && full);
    EXPECT_EQ(hex(*easKid), hex(full->view().first(16)));
    const std::uint8_t d = 0x03, alg = 0x02;
    auto sk = deriveSessionKey(k, KeyDistinguisher::upEnc, alg);
    auto skFull = kdf(k.view(), 0xB5, {ByteView(&d, 1), ByteView(&alg, 1)});
    ASSERT_TRUE(sk && skFull);
    EXPECT_EQ(hex(sk->view()), hex(skFull->view().last(16)));
    Rand rand{};
    rand[15] = 9;
    auto kc = deriveKeyConfirmation(k, 0x01020304, rand);
    auto kcFull = kdf(k.view(), 0xB6, {ByteView(sid), ByteView(rand)});
    ASSERT_TRUE(kc && kcFull);
    EXPECT_EQ(hex(*kc), hex(kcFull->view().first(8)));
}

// ---- the worked example --------------------------------------------------------------------

using best::test::ExampleFile;
using best::test::ExampleMessage;

const std::vector<std::string>& exampleLines() {
    const std::vector<std::string>& lines = ExampleFile::instance().lines();
    EXPECT_GT(lines.size(), 100u);
    return lines;
}

template <std::size_t N>
std::array<std::uint8_t, N> arr(const Bytes& b) {
    return arr<N>(hex(b));
}
template <typename S>
S sec(const Bytes& b) {
    return sec<S>(hex(b));
}

std::smatch find(const std::vector<std::string>& lines, const std::regex& re) {
    std::smatch m;
    for (const std::string& l : lines) {
        if (std::regex_search(l, m, re))
            return m;
    }
    ADD_FAILURE() << "profile-example.txt: no line matches the expected pattern";
    return m;
}

struct Subscriber {
    SubscriberK k;
    Opc opc;
    Amf amf{};
    PlmnId plmn{};
};

// The subscriber of "## Inputs".
Subscriber subscriber() {
    const best::test::Block& in = ExampleFile::instance().block("Inputs");
    Subscriber s;
    s.k = sec<SubscriberK>(in.after("; K ", ";"));
    s.opc = sec<Opc>(in.after("; OPc ", ";"));
    s.amf = arr<2>(in.after(" AMF "));
    s.plmn = arr<3>(in.after("PLMN id ", ";"));
    return s;
}

// Re-derives every key the example lists. Each step takes the example's own value of its input
// (so one wrong step shows as one failure) and compares its output.
TEST(ProfileExample, EveryKeyOfEveryKeySet) {
    const auto& lines = exampleLines();
    const Subscriber sub = subscriber();
    static const std::regex section("^## (.*)$");
    static const std::regex kidRe("KID (\\d+)");
    static const std::regex randSqnRe("RAND ([0-9a-f]{32}), SQN ([0-9a-f]{12})");
    static const std::regex ckIkRe(
        "^\\s*CK ([0-9a-f]{32})\\s+IK ([0-9a-f]{32})\\s+SQN xor AK "
        "([0-9a-f]{12})$");
    static const std::regex rootRe("^\\s*R \\((UMTS|EPS|5G)\\b.*\\s([0-9a-f]{64})$");
    static const std::regex snnRe("'(5G:[^']+)'");
    static const std::regex kintRe(
        "^\\s*KInt = KDF\\(R, 0xB0, HSE Id '([^']*)'\\)\\s+([0-9a-f]{64})$");
    static const std::regex e2eRe(
        "^\\s*KInt_E2E = KDF\\(KInt, 0xB1, EAS Id '([^']*)'\\)\\s+([0-9a-f]{64})$");
    static const std::regex pskRe(
        "^\\s*KInt_EAS_PSK = KDF\\(KInt, 0xB2, EAS Id\\)\\s+([0-9a-f]{64})$");
    static const std::regex easKidRe(
        "^\\s*EAS key identifier = first 16 of KDF\\(KInt, 0xB3, EAS Id\\)\\s+([0-9a-f]{32})$");
    static const std::regex ksessRe(
        "^\\s*KSess = KDF\\(KInt, 0xB4, Session ID ([0-9a-f]{8}), UE "
        "nonce ([0-9a-f]{16})\\)\\s+([0-9a-f]{64})$");
    static const std::regex ksess0Re(
        "^\\s*KSess0 = KDF\\(KInt \\(KID (\\d+)\\), 0xB4, Session ID "
        "([0-9a-f]{8}), UE nonce ([0-9a-f]{16})\\)\\s+([0-9a-f]{64})$");
    static const std::regex ksess0KeyRe(
        "^\\s*KSess0 CP-int = last 16 of KDF\\(KSess0, 0xB5, "
        "0x([0-9a-f]{2}), 0x([0-9a-f]{2})\\)\\s+([0-9a-f]{32})$");
    static const std::regex sessionKeysRe(
        "session keys = .*CP-enc \\(0x01, alg 0x([0-9a-f]{2})\\) ([0-9a-f]{32}), CP-int \\(0x02, "
        "alg 0x([0-9a-f]{2})\\) ([0-9a-f]{32}), UP-enc \\(0x03, alg 0x([0-9a-f]{2})\\) "
        "([0-9a-f]{32}), UP-int \\(0x04, alg 0x([0-9a-f]{2})\\) ([0-9a-f]{32})$");
    static const std::regex kcRe(
        "key confirmation = first 8 of KDF\\(new KInt \\(KID (\\d+)\\), "
        "0xB6, Session ID ([0-9a-f]{8}), RAND ([0-9a-f]{32})\\)\\s+"
        "([0-9a-f]{16})$");

    std::map<std::string, Key256> kintByKid;  // latest KInt of each KID, in file order
    std::string kid;
    std::string easId;
    Ck ck;
    Ik ik;
    Ak sqnXorAk{};
    Key256 root, kint, ksess;
    std::map<std::string, int> seen;
    bool fromMilenage = false;  // this section's CK/IK/SQN xor AK were computed from its title
    int lineNo = 0;
    for (const std::string& l : lines) {
        ++lineNo;
        SCOPED_TRACE("profile-example.txt:" + std::to_string(lineNo));
        std::smatch m;
        if (std::regex_match(l, m, section)) {
            const std::string title = m[1];
            std::smatch k;
            kid = std::regex_search(title, k, kidRe) ? std::string(k[1]) : "";
            fromMilenage = false;
            if (std::regex_search(title, k, randSqnRe)) {
                // A key set of a refresh: its AKA values from Milenage (set 1 subscriber).
                SoftAes128 ek(sub.k);
                auto v = generateVector(ek, sub.opc, arr<16>(k[1]), arr<6>(k[2]), sub.amf);
                ASSERT_TRUE(v.has_value());
                ck = v->ck;
                ik = v->ik;
                std::copy(v->autn.begin(), v->autn.begin() + 6, sqnXorAk.begin());
                fromMilenage = true;
                ++seen["milenage"];
            }
        } else if (std::regex_match(l, m, ckIkRe)) {
            if (fromMilenage) {
                ++seen["milenage checked"];
                EXPECT_EQ(hex(ck.view()), m.str(1));
                EXPECT_EQ(hex(ik.view()), m.str(2));
                EXPECT_EQ(hex(sqnXorAk), m.str(3));
            }
            ck = sec<Ck>(m[1]);
            ik = sec<Ik>(m[2]);
            sqnXorAk = arr<6>(m[3]);
            ++seen["ck"];
        } else if (std::regex_match(l, m, rootRe)) {
            const std::string ka = m[1];
            const KeyAgreement a = ka == "UMTS"  ? KeyAgreement::umts
                                   : ka == "EPS" ? KeyAgreement::eps
                                                 : KeyAgreement::fiveG;
            if (a == KeyAgreement::fiveG) {
                std::smatch n;
                ASSERT_TRUE(std::regex_search(l, n, snnRe));
                auto snn = servingNetworkName(sub.plmn);
                ASSERT_TRUE(snn.has_value());
                EXPECT_EQ(*snn, n.str(1));
            }
            auto r = deriveRoot(a, ck, ik, sub.plmn, sqnXorAk);
            ASSERT_TRUE(r.has_value()) << r.error().describe();
            EXPECT_EQ(hex(r->view()), m.str(2)) << ka;
            root = sec<Key256>(m[2]);
            ++seen["root " + ka];
        } else if (std::regex_match(l, m, kintRe)) {
            auto r = deriveKInt(root, m.str(1));
            ASSERT_TRUE(r.has_value());
            EXPECT_EQ(hex(r->view()), m.str(2));
            kint = sec<Key256>(m[2]);
            ASSERT_FALSE(kid.empty());
            kintByKid[kid] = kint;
            ++seen["kint"];
        } else if (std::regex_match(l, m, e2eRe)) {
            easId = m[1];
            auto r = deriveKIntE2e(kint, easId);
            ASSERT_TRUE(r.has_value());
            EXPECT_EQ(hex(r->view()), m.str(2));
            ++seen["e2e"];
        } else if (std::regex_match(l, m, pskRe)) {
            auto r = deriveKIntEasPsk(kint, easId);
            ASSERT_TRUE(r.has_value());
            EXPECT_EQ(hex(r->view()), m.str(1));
            ++seen["psk"];
        } else if (std::regex_match(l, m, easKidRe)) {
            auto r = deriveEasKeyId(kint, easId);
            ASSERT_TRUE(r.has_value());
            EXPECT_EQ(hex(*r), m.str(1));
            ++seen["easkid"];
        } else if (std::regex_match(l, m, ksessRe)) {
            ASSERT_EQ(kintByKid.count(kid), 1u) << "KID " << kid;
            auto r = deriveKSess(kintByKid.at(kid), u32(m[1]), u64(m[2]));
            ASSERT_TRUE(r.has_value());
            EXPECT_EQ(hex(r->view()), m.str(3));
            ksess = sec<Key256>(m[3]);
            ++seen["ksess"];
        } else if (std::regex_match(l, m, ksess0Re)) {
            ASSERT_EQ(kintByKid.count(m[1]), 1u);
            EXPECT_EQ(u32(m[2]), 0u);
            auto r = deriveKSess(kintByKid.at(m[1]), 0, u64(m[3]));
            ASSERT_TRUE(r.has_value());
            EXPECT_EQ(hex(r->view()), m.str(4));
            ksess = sec<Key256>(m[4]);
            ++seen["ksess0"];
        } else if (std::regex_match(l, m, ksess0KeyRe)) {
            EXPECT_EQ(m.str(1), "02");  // the CP-int distinguisher
            auto r = deriveSessionKey(ksess, KeyDistinguisher::cpInt,
                                      static_cast<std::uint8_t>(u32(m[2])));
            ASSERT_TRUE(r.has_value());
            EXPECT_EQ(hex(r->view()), m.str(3));
            ++seen["ksess0 key"];
        } else if (std::regex_search(l, m, sessionKeysRe)) {
            const auto encAlg = static_cast<std::uint8_t>(u32(m[1]));
            const auto intAlg = static_cast<std::uint8_t>(u32(m[3]));
            EXPECT_EQ(m.str(5), m.str(1));  // both enc keys take the ciphering alg
            EXPECT_EQ(m.str(7), m.str(3));  // both int keys take the integrity alg
            auto keys = deriveSessionKeys(ksess, intAlg, encAlg);
            ASSERT_TRUE(keys.has_value());
            EXPECT_EQ(hex(keys->cpEnc.view()), m.str(2));
            EXPECT_EQ(hex(keys->cpInt.view()), m.str(4));
            EXPECT_EQ(hex(keys->upEnc.view()), m.str(6));
            EXPECT_EQ(hex(keys->upInt.view()), m.str(8));
            auto one = deriveSessionKey(ksess, KeyDistinguisher::upInt, intAlg);
            ASSERT_TRUE(one.has_value());
            EXPECT_TRUE(one->equals(keys->upInt));
            ++seen["session keys"];
        } else if (std::regex_search(l, m, kcRe)) {
            ASSERT_EQ(kintByKid.count(m[1]), 1u);
            auto r = deriveKeyConfirmation(kintByKid.at(m[1]), u32(m[2]), arr<16>(m[3]));
            ASSERT_TRUE(r.has_value());
            EXPECT_EQ(hex(*r), m.str(4));
            ++seen["kc"];
        }
    }
    // Every key set of the example was reached: A, B, C, pending 2 and 3, after the resync.
    EXPECT_EQ(seen["root UMTS"], 1);
    EXPECT_EQ(seen["root EPS"], 1);
    EXPECT_EQ(seen["root 5G"], 4);
    EXPECT_EQ(seen["milenage"], 2);
    EXPECT_EQ(seen["milenage checked"], 2);
    EXPECT_EQ(seen["kint"], 6);
    EXPECT_EQ(seen["e2e"], 6);
    EXPECT_EQ(seen["psk"], 6);
    EXPECT_EQ(seen["easkid"], 6);
    EXPECT_EQ(seen["ksess"], 5);
    EXPECT_EQ(seen["ksess0"], 1);
    EXPECT_EQ(seen["ksess0 key"], 1);
    EXPECT_EQ(seen["session keys"], 5);
    EXPECT_EQ(seen["kc"], 1);
}

// Session A of the example through deriveSessionKeys, the chain from CK/IK written out.
TEST(ProfileExample, SessionAKeys) {
    static const std::regex hdr(
        "^Keys of session A \\(UMTS; Session ID ([0-9a-f]{8}), KID \\d+, "
        "integrity alg 0x([0-9a-f]{2}), ciphering alg 0x([0-9a-f]{2})\\)");
    static const std::regex keysRe(
        "CP-enc \\(0x01, alg 0x[0-9a-f]{2}\\) ([0-9a-f]{32}), CP-int "
        "\\(0x02, alg 0x[0-9a-f]{2}\\) ([0-9a-f]{32}), UP-enc \\(0x03, "
        "alg 0x[0-9a-f]{2}\\) ([0-9a-f]{32}), UP-int \\(0x04, alg "
        "0x[0-9a-f]{2}\\) ([0-9a-f]{32})");
    const best::test::Block& block = ExampleFile::instance().block("Keys of session A");
    std::smatch h;
    ASSERT_TRUE(std::regex_search(block.heading, h, hdr)) << "session A heading: " << block.heading;
    const std::uint32_t sessionId = u32(h[1]);
    const auto intAlg = static_cast<std::uint8_t>(u32(h[2]));
    const auto encAlg = static_cast<std::uint8_t>(u32(h[3]));
    const std::vector<std::string>& section = block.lines;
    const std::smatch ckm = find(section, std::regex("CK ([0-9a-f]{32})\\s+IK ([0-9a-f]{32})"));
    const std::smatch hse = find(section, std::regex("HSE Id '([^']*)'"));
    const std::smatch nonce = find(section, std::regex("UE nonce ([0-9a-f]{16})"));
    const std::smatch keys = find(section, keysRe);
    const Subscriber sub = subscriber();

    auto root = deriveRoot(KeyAgreement::umts, sec<Ck>(ckm[1]), sec<Ik>(ckm[2]), sub.plmn, Ak{});
    ASSERT_TRUE(root.has_value());
    auto kint = deriveKInt(*root, hse.str(1));
    ASSERT_TRUE(kint.has_value());
    auto ksess = deriveKSess(*kint, sessionId, u64(nonce[1]));
    ASSERT_TRUE(ksess.has_value());
    auto sk = deriveSessionKeys(*ksess, intAlg, encAlg);
    ASSERT_TRUE(sk.has_value());
    EXPECT_EQ(hex(sk->cpEnc.view()), keys.str(1));
    EXPECT_EQ(hex(sk->cpInt.view()), keys.str(2));
    EXPECT_EQ(hex(sk->upEnc.view()), keys.str(3));
    EXPECT_EQ(hex(sk->upInt.view()), keys.str(4));
}

// Every MAC of the example (17) through Eia2, and both EEA2 payloads through Eea2.
TEST(ProfileExample, EveryMacAndCiphertext) {
    int macs = 0;
    int ciphered = 0;
    for (const ExampleMessage& m : ExampleFile::instance().messages()) {
        SCOPED_TRACE(m.title);
        if (m.hasMac) {
            const Bytes& msg = m.octets;  // the message's octets, from its block
            const std::size_t last = m.macOverLast;
            ASSERT_EQ(msg.size(), last + 1 + 4);
            ASSERT_EQ(m.mac.size(), 4u);
            const std::uint32_t want = getBe32(m.mac.data());
            EXPECT_EQ(getBe32(msg.data() + last + 1), want);  // the MAC closes the message
            Eia2 eia2(sec<Key128>(m.macKey));
            const auto bearer = static_cast<std::uint8_t>(m.bearer);
            const auto dir = static_cast<std::uint8_t>(m.direction);
            auto mac = eia2.mac(m.macCount, bearer, dir, ByteView(msg.data(), last + 1));
            ASSERT_TRUE(mac.has_value());
            EXPECT_EQ(*mac, want);
            ++macs;
        }
        if (m.ciphered) {
            Eea2 eea2(sec<Key128>(m.cipherKey));
            const auto bearer = static_cast<std::uint8_t>(m.cipherBearer);
            const auto dir = static_cast<std::uint8_t>(m.cipherDirection);
            Bytes buf = m.plaintext;
            ASSERT_TRUE(eea2.apply(m.cipherCount, bearer, dir, buf, buf));
            EXPECT_EQ(hex(buf), hex(m.payloadWire));
            ++ciphered;
        }
    }
    EXPECT_EQ(macs, 17);
    EXPECT_EQ(ciphered, 2);
}

// Every RAND/AUTN pair of the example opens with the subscriber's keys (MAC-A verifies), and
// the sync-failure AUTS is rebuilt and resolved.
TEST(ProfileExample, AutnAndAuts) {
    const Subscriber sub = subscriber();
    SoftAes128 ek(sub.k);
    int autns = 0;
    Bytes rand;
    for (const ExampleMessage& m : ExampleFile::instance().messages()) {
        for (const auto& [tag, value] : m.tlvs) {
            if (tag == 0x10)  // RAND
                rand = value;
            if (tag != 0x11)  // AUTN
                continue;
            SCOPED_TRACE("AUTN " + hex(value));
            auto o = openAutn(ek, sub.opc, arr<16>(rand), arr<16>(value));
            ASSERT_TRUE(o.has_value());
            EXPECT_TRUE(o->macOk);
            EXPECT_EQ(o->amf, sub.amf);
            ++autns;
        }
    }
    EXPECT_EQ(autns, 6);

    const best::test::ExampleResync resync = ExampleFile::instance().resync();
    const std::string vec1 = ExampleFile::instance().after("RANDs: vector 1 ");
    auto built = buildAuts(ek, sub.opc, arr<16>(vec1), arr<6>(resync.sqnMs));
    ASSERT_TRUE(built.has_value());
    EXPECT_EQ(hex(*built), resync.auts);
    auto rec = recoverSqnMs(ek, sub.opc, arr<16>(vec1), arr<14>(resync.auts));
    ASSERT_TRUE(rec.has_value());
    EXPECT_EQ(hex(*rec), resync.sqnMs);
}

}  // namespace
}  // namespace best::crypto::test
