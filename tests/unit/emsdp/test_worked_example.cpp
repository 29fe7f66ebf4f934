// The profile's worked example (tests/data/profile-example.txt, computed by an independent
// implementation of the profile, not published by 3GPP) reproduced byte for byte: every
// message is encoded from its inputs with keys derived here through src/crypto (Milenage ->
// CK/IK/SQN xor AK -> R -> KInt -> KSess -> session keys), compared to its 'octets' line, then
// decoded and verified through the receive path. Only the inputs of the example (K, OPc, AMF,
// SEQ/IND, RANDs, names, Session IDs, nonces, UE configuration) are restated here; every
// expected value is read from the file at run time.
#include <gtest/gtest.h>

#include <algorithm>
#include <optional>
#include <set>
#include <string>

#include "common/hex.h"
#include "crypto/eps_algorithms.h"
#include "crypto/key_hierarchy.h"
#include "crypto/milenage.h"
#include "emsdp/emsdp.h"
#include "must.h"
#include "profile_example.h"
#include "test_util.h"

namespace best::emsdp::test {
namespace {

using best::test::Block;
using best::test::ExampleFile;
using best::test::ExampleMessage;
using best::test::hexArray;
using best::test::hexBytes;
using best::test::must;
using best::test::tokenAfter;
using crypto::KeyAgreement;

// ---- the example's inputs ("## Inputs") -------------------------------------------------------

constexpr std::string_view kImsiDigits = "001010000000001";
constexpr std::string_view kK = "465b5ce8b199b49faa5f0a2ee238a6bc";
constexpr std::string_view kOpc = "cd63cb71954a9f4e48a5994e37a02baf";
constexpr std::string_view kAmf = "b9b9";
constexpr std::uint64_t kSeq1 = 0x7fcdda685b0;  // first vector's SEQ
constexpr std::uint64_t kInd = 7;
constexpr std::string_view kHseId = "hse.example.org";
constexpr std::string_view kEasId = "eas.example.org";
constexpr std::uint32_t kLifetime = 86400;
constexpr std::string_view kRand1 = "23553cbe9637a89d218ae64dae47bf35";
constexpr std::string_view kRandUeRefresh = "101112131415161718191a1b1c1d1e1f";
constexpr std::string_view kRandHseRefresh = "202122232425262728292a2b2c2d2e2f";
constexpr std::string_view kRandResync = "303132333435363738393a3b3c3d3e3f";
constexpr std::uint32_t kSidFull = 0x01020304;
constexpr std::uint32_t kSidResumed = 0x0a0b0c0d;
constexpr std::uint64_t kNonceFull = 0x0001020304050607;
constexpr std::uint64_t kNonceResume = 0x1122334455667788;

std::string hx(ByteView v) {
    return toHex(v);
}
template <std::size_t N>
std::string hx(const std::array<std::uint8_t, N>& a) {
    return toHex(ByteView(a.data(), N));
}

crypto::Sqn sqnFor(std::uint64_t seq) {
    return crypto::sqnFromInt((seq << 5) | kInd);
}

PlmnId plmn() {
    return must(plmnFromDigits("001", "01"), "PLMN 001/01");
}

// Everything the example says about one key set, derived here.
struct KeySet {
    KeyAgreement ka = KeyAgreement::umts;
    crypto::AuthVector vector;
    crypto::Ak sqnXorAk{};
    Key256 root;
    Key256 kint;
    Key256 kintE2e;
    Key256 kintPsk;
    crypto::EasKeyId easKeyId{};
};

KeySet deriveKeySet(KeyAgreement ka, std::string_view rand, std::uint64_t seq) {
    KeySet s;
    s.ka = ka;
    const SubscriberK k(ByteView(hexBytes(kK)));
    const best::Opc opc(ByteView(hexBytes(kOpc)));
    crypto::SoftAes128 ek(k);
    s.vector =
        must(crypto::generateVector(ek, opc, hexArray<16>(rand), sqnFor(seq), hexArray<2>(kAmf)),
             "Milenage vector");
    for (std::size_t i = 0; i < 6; ++i)
        s.sqnXorAk[i] = s.vector.autn[i];
    s.root = must(crypto::deriveRoot(ka, s.vector.ck, s.vector.ik, plmn(), s.sqnXorAk), "R");
    s.kint = must(crypto::deriveKInt(s.root, kHseId), "KInt");
    s.kintE2e = must(crypto::deriveKIntE2e(s.kint, kEasId), "KInt_E2E");
    s.kintPsk = must(crypto::deriveKIntEasPsk(s.kint, kEasId), "KInt_EAS_PSK");
    s.easKeyId = must(crypto::deriveEasKeyId(s.kint, kEasId), "EAS key identifier");
    return s;
}

// Compares the key set with a "## Keys ..." / "## Pending key set ..." block.
void expectKeySetLines(const KeySet& s, const Block& b) {
    SCOPED_TRACE(b.heading);
    const std::string l = b.line("CK ");
    EXPECT_EQ(hx(s.vector.ck.view()), tokenAfter(l, "CK ")) << l;
    EXPECT_EQ(hx(s.vector.ik.view()), tokenAfter(l, "IK ")) << l;
    EXPECT_EQ(hx(s.sqnXorAk), tokenAfter(l, "SQN xor AK ")) << l;
    EXPECT_EQ(hx(s.root.view()), hx(b.lastHex("R (")));
    EXPECT_EQ(hx(s.kint.view()), hx(b.lastHex("KInt =")));
    EXPECT_EQ(hx(s.kintE2e.view()), hx(b.lastHex("KInt_E2E =")));
    EXPECT_EQ(hx(s.kintPsk.view()), hx(b.lastHex("KInt_EAS_PSK =")));
    EXPECT_EQ(hx(s.easKeyId), hx(b.lastHex("EAS key identifier =")));
}

struct Session {
    Key256 ksess;
    crypto::SessionKeys keys;
};

Session deriveSession(const Key256& kint, std::uint32_t sid, std::uint64_t nonce,
                      std::uint8_t encAlg) {
    Session s;
    s.ksess = must(crypto::deriveKSess(kint, sid, nonce), "KSess");
    s.keys = must(crypto::deriveSessionKeys(s.ksess, crypto::kAlgEia2, encAlg), "session keys");
    return s;
}

void expectSessionLines(const Session& s, const Block& b, std::uint8_t encAlg) {
    SCOPED_TRACE(b.heading);
    EXPECT_EQ(hx(s.ksess.view()), hx(b.lastHex("KSess =")));
    const std::string l = b.line("session keys =");
    int seen = 0;
    struct Named {
        const char* name;
        const Key128& key;
        std::uint8_t alg;
    };
    const Named named[] = {
        {"CP-enc (0x01, alg 0x", s.keys.cpEnc, encAlg},
        {"CP-int (0x02, alg 0x", s.keys.cpInt, crypto::kAlgEia2},
        {"UP-enc (0x03, alg 0x", s.keys.upEnc, encAlg},
        {"UP-int (0x04, alg 0x", s.keys.upInt, crypto::kAlgEia2},
    };
    for (const Named& k : named) {
        const std::string rest = l.substr(std::min(l.size(), l.find(k.name)));
        EXPECT_EQ(tokenAfter(rest, "alg 0x", ")"), hx(std::array<std::uint8_t, 1>{k.alg}))
            << k.name;
        EXPECT_EQ(tokenAfter(rest, ") ", ","), hx(k.key.view())) << k.name;
        seen += rest.empty() ? 0 : 1;
    }
    EXPECT_EQ(seen, 4) << l;
}

// The key sets of the example.
struct Example {
    KeySet a, b, c, kid2, kid3, resync;
    Session sa, sb, sc, resumed, afterResync;
    Key256 ksess0;
    Key128 ksess0CpInt;
};

const Example& example() {
    static const Example e = [] {
        Example x;
        x.a = deriveKeySet(KeyAgreement::umts, kRand1, kSeq1);
        x.b = deriveKeySet(KeyAgreement::eps, kRand1, kSeq1);
        x.c = deriveKeySet(KeyAgreement::fiveG, kRand1, kSeq1);
        x.kid2 = deriveKeySet(KeyAgreement::fiveG, kRandUeRefresh, kSeq1 + 1);
        x.kid3 = deriveKeySet(KeyAgreement::fiveG, kRandHseRefresh, kSeq1 + 2);
        x.resync = deriveKeySet(KeyAgreement::fiveG, kRandResync, kSeq1 + 1);
        x.sa = deriveSession(x.a.kint, kSidFull, kNonceFull, crypto::kAlgNull);
        x.sb = deriveSession(x.b.kint, kSidFull, kNonceFull, crypto::kAlgNull);
        x.sc = deriveSession(x.c.kint, kSidFull, kNonceFull, crypto::kAlgEia2);
        x.resumed = deriveSession(x.kid3.kint, kSidResumed, kNonceResume, crypto::kAlgEia2);
        x.afterResync = deriveSession(x.resync.kint, kSidFull, kNonceFull, crypto::kAlgEia2);
        x.ksess0 = must(crypto::deriveKSess(x.kid3.kint, 0, kNonceResume), "KSess0");
        x.ksess0CpInt = must(
            crypto::deriveSessionKey(x.ksess0, crypto::KeyDistinguisher::cpInt, crypto::kAlgEia2),
            "KSess0 CP-int");
        return x;
    }();
    return e;
}

// ---- semantic message bodies ------------------------------------------------------------------

SessionRequest sessionRequest(std::uint64_t nonce) {
    SessionRequest r;
    r.imsi = must(Imsi::fromDigits(kImsiDigits), "IMSI");
    r.ueConfiguration = UeConfiguration{17, 0x07, 0x03, 0x04, 0x05};
    r.easId = kEasId;
    r.servingNetwork = plmn();
    r.ueNonce = nonce;
    return r;
}

SessionStart sessionStart(const KeySet& ks, Service service, const RequestChecksum& checksum,
                          bool withAka) {
    SessionStart s;
    if (withAka) {
        s.rand = ks.vector.rand;
        s.autn = ks.vector.autn;
    }
    s.keyAgreement = ks.ka;
    s.hseConfiguration.cpScheme = CounterScheme::n1;
    s.hseConfiguration.upScheme = CounterScheme::n1;
    s.hseConfiguration.integrityAlg = crypto::kAlgEia2;
    s.hseConfiguration.cipheringAlg =
        service == Service::upConfidentiality ? crypto::kAlgEia2 : crypto::kAlgNull;
    s.hseConfiguration.flags =
        service == Service::kaOnly ? HseConfiguration::kFlagConfirmationRequired : 0;
    s.hseConfiguration.hseId = kHseId;
    s.serviceParameters.service = service;
    s.serviceParameters.termination =
        service == Service::kaOnly ? UpTermination::none : UpTermination::hse;
    s.serviceParameters.keySetLifetime = kLifetime;
    s.requestChecksum = checksum;
    return s;
}

Bytes asBytes(std::string_view s) {
    return Bytes(s.begin(), s.end());
}

std::optional<SecureChannel> channel(const ChannelConfig& cfg, const crypto::SessionKeys& keys) {
    auto ch = SecureChannel::create(cfg, ChannelKeys::from(keys));
    if (!ch) {
        ADD_FAILURE() << ch.error().describe();
        return std::nullopt;
    }
    return std::move(*ch);
}

Header headerOf(const ExampleMessage& m) {
    Header h;
    h.plane = m.p != 0 ? Plane::up : Plane::cp;
    h.r = m.r != 0;
    h.kid = static_cast<std::uint8_t>(m.kid);
    h.sessionId = m.sessionId;
    h.scheme = static_cast<CounterScheme>(m.n);
    return h;
}

// The datagram `seal(out)` writes into a buffer of kMaxDatagram octets.
template <typename Seal>
Bytes sealedBy(Seal&& seal) {
    std::array<std::uint8_t, kMaxDatagram> out{};
    auto n = seal(out);
    if (!n) {
        ADD_FAILURE() << n.error().describe();
        return {};
    }
    return Bytes(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(*n));
}

Bytes sealedWith(SecureChannel& ch, const Body& body) {
    return sealedBy([&](auto& out) { return ch.sealCp(body, out); });
}

Bytes sealedUp(SecureChannel& ch, ByteView payload) {
    return sealedBy([&](auto& out) { return ch.sealUp(payload, out); });
}

// The stateless path with the file's header fields and COUNT and our key: must give the
// message's octets.
void expectStatelessCp(const ExampleMessage& m, const Key128& cpInt, const Body& body) {
    SCOPED_TRACE(m.title);
    ASSERT_TRUE(m.hasMac && m.count.has_value());
    EXPECT_EQ(hx(cpInt.view()), hx(m.macKey)) << "the MAC key derived here";
    crypto::Eia2 eia2;
    ASSERT_TRUE(eia2.setKey(cpInt));
    std::array<std::uint8_t, kMaxDatagram> out{};
    auto n = sealCp(eia2, headerOf(m), *m.count, static_cast<std::uint8_t>(m.direction), body, out);
    ASSERT_TRUE(n) << n.error().describe();
    EXPECT_EQ(hx(ByteView(out.data(), *n)), hx(m.octets));
}

void expectCpReceived(tl::expected<ReceivedCp, Verdict> r, const ExampleMessage& m,
                      const Body& body) {
    SCOPED_TRACE(m.title);
    ASSERT_TRUE(r.has_value()) << dropReasonName(r.error().reason);
    EXPECT_EQ(r->count, *m.count);
    EXPECT_EQ(r->header.kid, m.kid);
    EXPECT_EQ(r->header.sessionId, m.sessionId);
    EXPECT_TRUE(r->body == body);
}

// A CP message of the running session: the stateless path and the sender's channel both give
// the example's octets, and the receiver's channel opens them to `body`.
void expectCpBothWays(const ExampleMessage& m, const Key128& cpInt, const Body& body,
                      SecureChannel& sender, SecureChannel& receiver) {
    expectStatelessCp(m, cpInt, body);
    EXPECT_EQ(hx(sealedWith(sender, body)), hx(m.octets));
    expectCpReceived(receiver.openCp(m.octets), m, body);
}

const ExampleMessage& msg(const char* title) {
    return ExampleFile::instance().message(title);
}

// ---- the tests --------------------------------------------------------------------------------

// Every message of the file is one the tests below reproduce (a new message fails here).
TEST(WorkedExample, EveryMessageIsCovered) {
    const std::vector<std::string> covered = {
        "Session Request, UE -> HSE",
        "Session Start A,",
        "Session Start Confirmation A,",
        "Session Start B,",
        "Session Start C,",
        "UP uplink B,",
        "UP downlink B,",
        "UP uplink C,",
        "UP downlink C,",
        "Manage Keys Request (UE-triggered),",
        "Manage Keys Response, HSE -> UE",
        "Manage Keys Request (HSE-triggered),",
        "Manage Keys Response with key confirmation,",
        "Session Terminate Request,",
        "Session Terminate Response,",
        "Resumption Session Request,",
        "Session Start (resumed),",
        "Message Reject 0x0B with AUTS,",
        "Session Start after the resync,",
    };
    const ExampleFile& f = ExampleFile::instance();
    ASSERT_TRUE(f.loaded());
    EXPECT_EQ(f.messages().size(), covered.size());
    std::set<std::string> titles;
    for (const std::string& prefix : covered)
        titles.insert(f.message(prefix).title);
    EXPECT_EQ(titles.size(), covered.size());
}

// The inputs restated above are the file's.
TEST(WorkedExample, InputsMatchTheFile) {
    const Block& in = ExampleFile::instance().block("Inputs");
    std::string all;
    for (const std::string& l : in.lines)
        all += l + "\n";
    for (std::string_view v : {kImsiDigits, kK, kOpc, kAmf, kHseId, kEasId, kRand1, kRandUeRefresh,
                               kRandHseRefresh, kRandResync}) {
        EXPECT_NE(all.find(v), std::string::npos) << v;
    }
    EXPECT_NE(all.find("SEQ 0x7fcdda685b0, IND 7"), std::string::npos);
    EXPECT_NE(all.find("IMSI TLV " + hx(must(Imsi::fromDigits(kImsiDigits), "IMSI").octets)),
              std::string::npos);
    EXPECT_NE(all.find("PLMN id " + hx(plmn())), std::string::npos);
    EXPECT_NE(all.find("Session IDs 01020304 (full) and 0a0b0c0d (resumed)"), std::string::npos);
    EXPECT_NE(all.find("UE nonces 0001020304050607 (full) and 1122334455667788"),
              std::string::npos);
    EXPECT_NE(all.find("first vector SQN " + hx(sqnFor(kSeq1))), std::string::npos);
    auto snn = crypto::servingNetworkName(plmn());
    ASSERT_TRUE(snn);
    EXPECT_NE(all.find("'" + *snn + "'"), std::string::npos);
}

// Each message's header, MAC and TLV lines agree with its octets, and each MAC verifies with
// the key, COUNT, BEARER and DIRECTION stated next to it (and each ciphertext deciphers).
TEST(WorkedExample, EveryMessageDecodesAndVerifiesWithTheStatedKeys) {
    for (const ExampleMessage& m : ExampleFile::instance().messages()) {
        SCOPED_TRACE(m.title);
        ASSERT_TRUE(m.headerParsed);
        ASSERT_FALSE(m.octets.empty());
        ASSERT_EQ(m.octets.size(), m.declaredSize);
        ASSERT_LE(m.n, 3u);
        const auto scheme = static_cast<CounterScheme>(m.n);
        EXPECT_EQ(m.w, counterWidth(scheme));
        auto h = decodeHeader(m.octets, scheme);
        ASSERT_TRUE(h) << dropReasonName(h.error());
        EXPECT_EQ(h->plane == Plane::up ? 1u : 0u, m.p);
        EXPECT_EQ(h->r ? 1u : 0u, m.r);
        EXPECT_EQ(h->kid, m.kid);
        EXPECT_EQ(h->sessionId, m.sessionId);
        std::uint32_t field = m.ctrH;
        for (std::uint8_t o : m.extension)
            field = (field << 8) | o;
        EXPECT_EQ(h->counterField, field);
        EXPECT_EQ(m.extension.size(), m.n);
        if (m.count) {
            EXPECT_EQ(*m.count & counterMask(scheme), field);
            EXPECT_EQ(m.plane == "UP", m.p == 1);
        }
        // Re-encoding the decoded header gives the same octets.
        std::array<std::uint8_t, 8> hb{};
        auto hs = encodeHeader(*h, hb);
        ASSERT_TRUE(hs);
        EXPECT_EQ(hx(ByteView(hb.data(), *hs)), hx(ByteView(m.octets).first(*hs)));

        const std::size_t macSize = m.hasMac ? kMacSize : 0;
        EXPECT_EQ(m.hasMac, m.kid != 0);
        if (m.hasMac) {
            EXPECT_EQ(m.macOverLast + 1, m.octets.size() - kMacSize);
            EXPECT_EQ(hx(m.mac), hx(ByteView(m.octets).last(kMacSize)));
            EXPECT_EQ(m.bearer, m.p);
            EXPECT_EQ(m.macCount, *m.count);
            crypto::Eia2 eia2;
            ASSERT_TRUE(eia2.setKey(Key128(ByteView(m.macKey))));
            auto ok = macMatches(eia2, m.octets, m.macCount, static_cast<std::uint8_t>(m.bearer),
                                 static_cast<std::uint8_t>(m.direction));
            ASSERT_TRUE(ok);
            EXPECT_TRUE(*ok);
            auto wrongDir =
                macMatches(eia2, m.octets, m.macCount, static_cast<std::uint8_t>(m.bearer),
                           static_cast<std::uint8_t>(m.direction ^ 1));
            ASSERT_TRUE(wrongDir);
            EXPECT_FALSE(*wrongDir);
        }
        const ByteView inner = ByteView(m.octets).subspan(
            *hs, m.octets.size() - *hs - macSize);  // command + TLVs, or UP payload
        if (m.p == 1) {
            ASSERT_TRUE(m.hasPayload);
            EXPECT_EQ(hx(inner), hx(m.payloadWire));
            if (m.ciphered) {
                crypto::Eea2 eea2;
                ASSERT_TRUE(eea2.setKey(Key128(ByteView(m.cipherKey))));
                Bytes plain(inner.size());
                ASSERT_TRUE(eea2.apply(m.cipherCount, static_cast<std::uint8_t>(m.cipherBearer),
                                       static_cast<std::uint8_t>(m.cipherDirection), inner, plain));
                EXPECT_EQ(hx(plain), hx(m.plaintext));
            }
            continue;
        }
        ASSERT_TRUE(m.command.has_value());
        EXPECT_EQ(inner[0], *m.command);
        Bytes tlvs;
        for (const auto& [tag, value] : m.tlvs) {
            tlvs.push_back(tag);
            tlvs.push_back(static_cast<std::uint8_t>(value.size()));
            tlvs.insert(tlvs.end(), value.begin(), value.end());
        }
        EXPECT_EQ(hx(inner.subspan(1)), hx(tlvs));
        // Senders order TLVs by ascending tag.
        for (std::size_t i = 1; i < m.tlvs.size(); ++i)
            EXPECT_LT(m.tlvs[i - 1].first, m.tlvs[i].first);
    }
}

TEST(WorkedExample, DerivedKeysOfEveryKeySet) {
    const ExampleFile& f = ExampleFile::instance();
    const Example& x = example();
    expectKeySetLines(x.a, f.block("Keys of session A"));
    expectKeySetLines(x.b, f.block("Keys of session B"));
    expectKeySetLines(x.c, f.block("Keys of session C"));
    expectKeySetLines(x.kid2, f.block("Pending key set KID 2"));
    expectKeySetLines(x.kid3, f.block("Pending key set KID 3"));
    expectKeySetLines(x.resync, f.block("Keys after the resync"));
    expectSessionLines(x.sa, f.block("Keys of session A"), crypto::kAlgNull);
    expectSessionLines(x.sb, f.block("Keys of session B"), crypto::kAlgNull);
    expectSessionLines(x.sc, f.block("Keys of session C"), crypto::kAlgEia2);
    expectSessionLines(x.resumed, f.block("Keys of the resumed session"), crypto::kAlgEia2);
    expectSessionLines(x.afterResync, f.block("Keys after the resync"), crypto::kAlgEia2);
    const Block& resumption = f.block("5. Resumption");
    EXPECT_EQ(hx(x.ksess0.view()), hx(resumption.lastHex("KSess0 =")));
    EXPECT_EQ(hx(x.ksess0CpInt.view()), hx(resumption.lastHex("KSess0 CP-int =")));
    // Key confirmation of the HSE-triggered refresh (new KInt of KID 3, Session ID, RAND).
    auto kc = crypto::deriveKeyConfirmation(x.kid3.kint, kSidFull, hexArray<16>(kRandHseRefresh));
    ASSERT_TRUE(kc);
    EXPECT_EQ(hx(*kc), hx(f.block("Pending key set KID 3").lastHex("key confirmation =")));
    // The AUTNs of the file are the Milenage AUTNs of these vectors.
    EXPECT_EQ(hx(x.a.vector.autn), hx(msg("Session Start A,").tlvs.at(1).second));
    EXPECT_EQ(hx(x.kid2.vector.autn), hx(msg("Manage Keys Response, HSE").tlvs.at(1).second));
    EXPECT_EQ(hx(x.kid3.vector.autn), hx(msg("Manage Keys Request (HSE").tlvs.at(1).second));
    EXPECT_EQ(hx(x.resync.vector.autn),
              hx(msg("Session Start after the resync").tlvs.at(1).second));
}

TEST(WorkedExample, FullSessionRequestUeAndHseSides) {
    const ExampleMessage& m = msg("Session Request, UE -> HSE");
    const SessionRequest req = sessionRequest(kNonceFull);
    // UE: encode.
    std::array<std::uint8_t, kMaxDatagram> out{};
    auto n = encodeSessionRequest(req, out);
    ASSERT_TRUE(n) << n.error().describe();
    EXPECT_EQ(hx(ByteView(out.data(), *n)), hx(m.octets));
    // Both sides: the request checksum.
    auto sum = requestChecksum(m.octets);
    ASSERT_TRUE(sum);
    EXPECT_EQ(hx(*sum), hx(m.block.lastHex("request checksum")));
    // HSE: route and parse (A4 steps 1-4).
    auto r = route(m.octets, Side::network);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->kind, RouteKind::sessionRequest);
    auto p = parseSessionRequest(m.octets);
    ASSERT_TRUE(p) << dropReasonName(p.error().reason);
    EXPECT_FALSE(p->resumption());
    EXPECT_TRUE(p->body == req);
    auto digits = p->body.imsi.digits();
    ASSERT_TRUE(digits);
    EXPECT_EQ(*digits, kImsiDigits);
    EXPECT_TRUE(p->body.ueConfiguration.offers(KeyAgreement::fiveG));
    EXPECT_TRUE(p->body.ueConfiguration.confidentialityRequested());
    EXPECT_TRUE(p->body.ueConfiguration.keySetsStorable());
    EXPECT_TRUE(p->body.ueConfiguration.supportsIntegrity(crypto::kAlgEia2));
    EXPECT_TRUE(p->body.ueConfiguration.supportsCiphering(crypto::kAlgEia2));
}

// The Session Start `m` both ways, under the session's keys: the HSE seals `body` (KID `kid`,
// Session ID `sessionId`) to the example's octets; the UE parses them (into `parsed`), makes its
// channel from what it parsed and accepts the message.
void startBothWays(const ExampleMessage& m, const Session& s, std::uint8_t kid,
                   std::uint32_t sessionId, const SessionStart& body,
                   std::optional<SecureChannel>& hse, std::optional<SecureChannel>& ue,
                   std::optional<ParsedSessionStart>& parsed) {
    expectStatelessCp(m, s.keys.cpInt, body);
    Header h;
    h.kid = kid;
    h.sessionId = sessionId;
    hse = channel(channelConfigFor(Side::network, h, body), s.keys);
    ASSERT_TRUE(hse);
    EXPECT_EQ(hx(sealedWith(*hse, body)), hx(m.octets));
    auto p = parseSessionStart(m.octets);
    ASSERT_TRUE(p) << dropReasonName(p.error());
    parsed = *p;
    ue = channel(channelConfigFor(Side::ue, parsed->header, parsed->body), s.keys);
    ASSERT_TRUE(ue);
    expectCpReceived(ue->acceptSessionStart(m.octets), m, body);
}

// Session Starts A, B, C: the HSE seals, the UE parses, derives the same keys, verifies the
// MAC and checks the request checksum against the request it sent.
void sessionStartRoundTrip(const char* title, const KeySet& ks, const Session& s, Service service,
                           std::optional<SecureChannel>& hse, std::optional<SecureChannel>& ue) {
    SCOPED_TRACE(title);
    const ExampleMessage& m = msg(title);
    const ExampleMessage& request = msg("Session Request, UE -> HSE");
    const RequestChecksum sum = must(requestChecksum(request.octets), "checksum");
    const SessionStart body = sessionStart(ks, service, sum, true);
    auto r = route(m.octets, Side::ue);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->kind, RouteKind::session);
    std::optional<ParsedSessionStart> parsed;
    startBothWays(m, s, 1, kSidFull, body, hse, ue, parsed);
    ASSERT_FALSE(::testing::Test::HasFatalFailure());
    EXPECT_TRUE(parsed->body == body);
    EXPECT_EQ(hx(parsed->body.requestChecksum),
              hx(must(requestChecksum(request.octets), "UE checksum")));
}

TEST(WorkedExample, SessionAKaOnlyWithConfirmation) {
    const Example& x = example();
    std::optional<SecureChannel> hse, ue;
    sessionStartRoundTrip("Session Start A,", x.a, x.sa, Service::kaOnly, hse, ue);
    ASSERT_TRUE(hse && ue);
    EXPECT_FALSE(ue->config().upEnabled);
    const ExampleMessage& m = msg("Session Start Confirmation A,");
    expectStatelessCp(m, x.sa.keys.cpInt, SessionStartConfirmation{});
    EXPECT_EQ(hx(sealedWith(*ue, SessionStartConfirmation{})), hx(m.octets));
    auto r = route(m.octets, Side::network);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->kind, RouteKind::session);
    expectCpReceived(hse->openCp(m.octets), m, SessionStartConfirmation{});
}

TEST(WorkedExample, SessionBUpIntegrity) {
    const Example& x = example();
    std::optional<SecureChannel> hse, ue;
    sessionStartRoundTrip("Session Start B,", x.b, x.sb, Service::upIntegrity, hse, ue);
    ASSERT_TRUE(hse && ue);
    EXPECT_FALSE(ue->config().upCiphering);
    const ExampleMessage& ul = msg("UP uplink B,");
    EXPECT_EQ(hx(x.sb.keys.upInt.view()), hx(ul.macKey));
    EXPECT_EQ(hx(sealedUp(*ue, ul.plaintext)), hx(ul.octets));
    std::array<std::uint8_t, 64> plain{};
    auto got = hse->openUp(ul.octets, plain);
    ASSERT_TRUE(got) << dropReasonName(got.error().reason);
    EXPECT_EQ(got->count, 0u);
    EXPECT_FALSE(got->deciphered);
    EXPECT_EQ(hx(got->payload), hx(asBytes("hello")));
    const ExampleMessage& dl = msg("UP downlink B,");
    EXPECT_EQ(hx(sealedUp(*hse, dl.plaintext)), hx(dl.octets));
    auto back = ue->openUp(dl.octets, plain);
    ASSERT_TRUE(back) << dropReasonName(back.error().reason);
    EXPECT_EQ(hx(back->payload), hx(asBytes("world")));
}

// Session C: data, both refreshes and termination, through one HSE and one UE channel.
TEST(WorkedExample, SessionCFullFlow) {
    const Example& x = example();
    std::optional<SecureChannel> hse, ue;
    sessionStartRoundTrip("Session Start C,", x.c, x.sc, Service::upConfidentiality, hse, ue);
    ASSERT_TRUE(hse && ue);
    EXPECT_TRUE(ue->config().upCiphering);
    std::array<std::uint8_t, 64> plain{};

    // UP both ways, ciphered then MAC'd.
    const ExampleMessage& ul = msg("UP uplink C,");
    EXPECT_EQ(hx(x.sc.keys.upInt.view()), hx(ul.macKey));
    EXPECT_EQ(hx(x.sc.keys.upEnc.view()), hx(ul.cipherKey));
    EXPECT_EQ(hx(sealedUp(*ue, asBytes("hello"))), hx(ul.octets));
    auto up = hse->openUp(ul.octets, plain);
    ASSERT_TRUE(up) << dropReasonName(up.error().reason);
    EXPECT_TRUE(up->deciphered);
    EXPECT_EQ(hx(up->payload), hx(ul.plaintext));
    // A relay that only verifies (empty output) sees the ciphertext; here a fresh HSE channel.
    {
        Header h;
        h.kid = 1;
        h.sessionId = kSidFull;
        auto relay =
            channel(channelConfigFor(Side::network, h,
                                     sessionStart(x.c, Service::upConfidentiality, {}, true)),
                    x.sc.keys);
        ASSERT_TRUE(relay);
        auto v = relay->openUp(ul.octets, {});
        ASSERT_TRUE(v);
        EXPECT_FALSE(v->deciphered);
        EXPECT_EQ(hx(v->payload), hx(ul.payloadWire));
    }
    const ExampleMessage& dl = msg("UP downlink C,");
    EXPECT_EQ(hx(sealedUp(*hse, asBytes("world"))), hx(dl.octets));
    auto down = ue->openUp(dl.octets, plain);
    ASSERT_TRUE(down) << dropReasonName(down.error().reason);
    EXPECT_EQ(hx(down->payload), hx(dl.plaintext));

    // UE-triggered refresh: Manage Keys Request (CP-UL 0), Response (CP-DL 1).
    const ExampleMessage& mkReq = msg("Manage Keys Request (UE-triggered),");
    expectCpBothWays(mkReq, x.sc.keys.cpInt, UeManageKeysRequest{}, *ue, *hse);

    const ExampleMessage& mkResp = msg("Manage Keys Response, HSE -> UE");
    const HseManageKeysResponse resp{x.kid2.vector.rand, x.kid2.vector.autn, KeyAgreement::fiveG,
                                     2};
    expectCpBothWays(mkResp, x.sc.keys.cpInt, resp, *hse, *ue);

    // HSE-triggered refresh: request (CP-DL 2), response with key confirmation (CP-UL 1).
    const ExampleMessage& hReq = msg("Manage Keys Request (HSE-triggered),");
    const HseManageKeysRequest hseReq{x.kid3.vector.rand, x.kid3.vector.autn, KeyAgreement::fiveG,
                                      3, RefreshOrigin::hse};
    expectCpBothWays(hReq, x.sc.keys.cpInt, hseReq, *hse, *ue);

    const ExampleMessage& conf = msg("Manage Keys Response with key confirmation,");
    UeManageKeysResponse ueResp;
    ueResp.keyConfirmation =
        must(crypto::deriveKeyConfirmation(x.kid3.kint, kSidFull, x.kid3.vector.rand), "KC");
    expectCpBothWays(conf, x.sc.keys.cpInt, ueResp, *ue, *hse);

    // Termination: request without Cause (CP-UL 2), response (CP-DL 3).
    const ExampleMessage& term = msg("Session Terminate Request,");
    expectCpBothWays(term, x.sc.keys.cpInt, SessionTerminateRequest{}, *ue, *hse);
    const ExampleMessage& termResp = msg("Session Terminate Response,");
    expectCpBothWays(termResp, x.sc.keys.cpInt, SessionTerminateResponse{}, *hse, *ue);

    // Four counters, each where the example left it.
    const CounterSnapshot hs = hse->counters();
    EXPECT_EQ(hs.nextCpTx, 4u);
    EXPECT_EQ(hs.nextUpTx, 1u);
    EXPECT_EQ(hs.cpRxHighest, 2u);
    EXPECT_EQ(hs.upRxHighest, 0u);
    const CounterSnapshot us = ue->counters();
    EXPECT_EQ(us.nextCpTx, 3u);
    EXPECT_EQ(us.nextUpTx, 1u);
    EXPECT_EQ(us.cpRxHighest, 3u);
    EXPECT_EQ(us.upRxHighest, 0u);
}

TEST(WorkedExample, ResumptionWithThePendingKeySet) {
    const Example& x = example();
    const ExampleMessage& m = msg("Resumption Session Request,");
    const SessionRequest req = sessionRequest(kNonceResume);
    EXPECT_EQ(hx(x.ksess0CpInt.view()), hx(m.macKey));
    // UE: MAC with KSess0 CP-int, COUNT 0, DIRECTION 0.
    crypto::Eia2 ksess0;
    ASSERT_TRUE(ksess0.setKey(x.ksess0CpInt));
    std::array<std::uint8_t, kMaxDatagram> out{};
    auto n = encodeResumptionRequest(req, 3, ksess0, out);
    ASSERT_TRUE(n) << n.error().describe();
    EXPECT_EQ(hx(ByteView(out.data(), *n)), hx(m.octets));
    // HSE: parse first, find the key set by IMSI and KID, verify the MAC.
    auto r = route(m.octets, Side::network);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->kind, RouteKind::sessionRequest);
    auto p = parseSessionRequest(m.octets);
    ASSERT_TRUE(p) << dropReasonName(p.error().reason);
    EXPECT_TRUE(p->resumption());
    EXPECT_EQ(p->header.kid, 3);
    EXPECT_TRUE(p->body == req);
    auto ok = verifyResumptionMac(m.octets, ksess0);
    ASSERT_TRUE(ok);
    EXPECT_TRUE(*ok);
    // A MAC under another key set's KSess0 fails.
    crypto::Eia2 other;
    ASSERT_TRUE(other.setKey(x.sc.keys.cpInt));
    auto bad = verifyResumptionMac(m.octets, other);
    ASSERT_TRUE(bad);
    EXPECT_FALSE(*bad);
    // The checksum covers the MAC.
    const RequestChecksum sum = must(requestChecksum(m.octets), "checksum");
    EXPECT_EQ(hx(sum), hx(m.block.lastHex("request checksum:")));

    // Session Start (resumed): no RAND/AUTN, same KID 3, new Session ID.
    const ExampleMessage& s = msg("Session Start (resumed),");
    const SessionStart body = sessionStart(x.kid3, Service::upConfidentiality, sum, false);
    std::optional<SecureChannel> hse;
    std::optional<SecureChannel> ue;
    std::optional<ParsedSessionStart> parsed;
    startBothWays(s, x.resumed, 3, kSidResumed, body, hse, ue, parsed);
    ASSERT_FALSE(HasFatalFailure());
    EXPECT_FALSE(parsed->body.rand.has_value());
    EXPECT_EQ(hx(parsed->body.requestChecksum), hx(sum));
}

TEST(WorkedExample, SyncFailureRejectAndResync) {
    const Example& x = example();
    const ExampleFile& f = ExampleFile::instance();
    // USIM side: AUTS for SQN_MS = the first vector's SQN.
    const SubscriberK k(ByteView(hexBytes(kK)));
    const best::Opc opc(ByteView(hexBytes(kOpc)));
    crypto::SoftAes128 ek(k);
    const crypto::Auts auts =
        must(crypto::buildAuts(ek, opc, hexArray<16>(kRand1), sqnFor(kSeq1)), "AUTS");
    EXPECT_EQ(hx(auts), hx(f.block("6. USIM sync failure").lastHex("MAC-S")));

    const ExampleMessage& m = msg("Message Reject 0x0B with AUTS,");
    const MessageReject rej{Cause::synch_failure, auts, std::nullopt};
    std::array<std::uint8_t, kMaxDatagram> out{};
    auto n = encodeUnprotectedReject(kSidFull, rej, out);
    ASSERT_TRUE(n) << n.error().describe();
    EXPECT_EQ(hx(ByteView(out.data(), *n)), hx(m.octets));

    // HSE: routed as an unprotected reject, parsed, AUTS checked, SQN resynchronised.
    auto r = route(m.octets, Side::network);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->kind, RouteKind::unprotectedReject);
    EXPECT_EQ(r->prefix.sessionId, kSidFull);
    auto p = parseUnprotectedReject(m.octets);
    ASSERT_TRUE(p) << dropReasonName(p.error());
    EXPECT_TRUE(p->body == rej);
    const crypto::Sqn sqnMs =
        must(crypto::recoverSqnMs(ek, opc, hexArray<16>(kRand1), *p->body.auts), "SQN_MS");
    EXPECT_EQ(hx(sqnMs), hx(sqnFor(kSeq1)));
    const std::uint64_t seqHe = crypto::sqnToInt(sqnMs) >> 5;
    const std::string line = m.block.line("HSE:");
    EXPECT_EQ(hx(sqnFor(seqHe + 1)), tokenAfter(line, "next SQN = (SEQ_HE + 1) || IND = ", ";"))
        << line;

    // The new Session Start: same Session ID and KID, new RAND, CP-DL COUNT 0 again.
    const ExampleMessage& s = msg("Session Start after the resync,");
    const RequestChecksum sum =
        must(requestChecksum(msg("Session Request, UE -> HSE").octets), "checksum");
    const SessionStart body = sessionStart(x.resync, Service::upConfidentiality, sum, true);
    std::optional<SecureChannel> hse;
    std::optional<SecureChannel> ue;
    std::optional<ParsedSessionStart> parsed;
    startBothWays(s, x.afterResync, 1, kSidFull, body, hse, ue, parsed);
    ASSERT_FALSE(HasFatalFailure());
    // The keys of the first attempt do not verify it.
    auto stale = channel(channelConfigFor(Side::ue, parsed->header, parsed->body), x.sc.keys);
    ASSERT_TRUE(stale);
    auto v = stale->acceptSessionStart(s.octets);
    ASSERT_FALSE(v);
    EXPECT_EQ(v.error(), Verdict::drop(DropReason::bad_mac));
}

}  // namespace
}  // namespace best::emsdp::test
