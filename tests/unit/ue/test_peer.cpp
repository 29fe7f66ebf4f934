#include "test_peer.h"

#include <gtest/gtest.h>

#include <array>

#include "must.h"
#include "profile_example.h"

namespace best::ue::test {

namespace {

using best::test::hexBytes;
using best::test::must;

Bytes take(ByteView buf, std::size_t n) {
    return Bytes(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(n));
}

emsdp::Header headerFor(const StartSpec& spec) {
    emsdp::Header h;
    h.kid = spec.kid;
    h.sessionId = spec.sessionId;
    return h;
}

// The Session Start `spec` grants in answer to `request` (no RAND/AUTN: a resumption's).
emsdp::SessionStart grantedStart(const StartSpec& spec, ByteView request) {
    emsdp::SessionStart s;
    s.keyAgreement = spec.keyAgreement;
    s.hseConfiguration.cpScheme = spec.cpScheme;
    s.hseConfiguration.upScheme = spec.upScheme;
    s.hseConfiguration.integrityAlg = crypto::kAlgEia2;
    s.hseConfiguration.cipheringAlg =
        spec.service == emsdp::Service::upConfidentiality ? crypto::kAlgEia2 : 0;
    s.hseConfiguration.flags = spec.service == emsdp::Service::kaOnly ? 1 : 0;
    s.serviceParameters = {spec.service, spec.termination, spec.lifetime};
    s.requestChecksum = must(emsdp::requestChecksum(request), "checksum");
    return s;
}

}  // namespace

PeerSubscriber exampleSubscriber(std::uint64_t seq) {
    PeerSubscriber s;
    s.k = SubscriberK(hexBytes(kExampleK));
    s.opc = Opc(hexBytes(kExampleOpc));
    s.nextSeq = seq;
    return s;
}

TestHsePeer::TestHsePeer(PeerSubscriber subscriber, std::string easId)
    : sub_(std::move(subscriber)), easId_(std::move(easId)) {}

emsdp::SecureChannel& TestHsePeer::channel() {
    EXPECT_TRUE(channel_.has_value()) << "the peer has no session";
    return *channel_;
}

Bytes TestHsePeer::sealStart(const emsdp::Header& h, emsdp::SessionStart start, const Key256& kint,
                             std::uint64_t nonce, const StartSpec& spec) {
    hseIdStore_ = spec.hseId;
    start.hseConfiguration.hseId = hseIdStore_;
    if (spec.mutate)
        spec.mutate(start);
    kint_ = kint;
    // Session keys: CP from KSess; UP from KSess_E2E in UE-to-EAS mode (profile section 6).
    const auto intAlg = start.hseConfiguration.integrityAlg;
    const auto encAlg = start.hseConfiguration.cipheringAlg;
    auto ksess = must(crypto::deriveKSess(kint, h.sessionId, nonce), "KSess");
    auto sk = must(crypto::deriveSessionKeys(ksess, intAlg, encAlg), "session keys");
    emsdp::ChannelKeys keys = emsdp::ChannelKeys::from(sk);
    if (start.serviceParameters.termination == emsdp::UpTermination::eas) {
        auto e2e = must(crypto::deriveKIntE2e(kint, easId_), "KInt_E2E");
        auto ks = must(crypto::deriveKSess(e2e, h.sessionId, nonce), "KSess_E2E");
        auto ek = must(crypto::deriveSessionKeys(ks, intAlg, encAlg), "E2E keys");
        keys.upInt = ek.upInt;
        keys.upEnc = ek.upEnc;
    }
    keys_ = keys;
    const emsdp::ChannelConfig cfg = emsdp::channelConfigFor(emsdp::Side::network, h, start);
    auto ch = emsdp::SecureChannel::create(cfg, keys);
    EXPECT_TRUE(ch.has_value()) << (ch ? "" : ch.error().describe());
    channel_.reset();
    if (ch)
        channel_.emplace(std::move(*ch));
    Bytes out = seal(start);
    if (spec.corruptMac && !out.empty())
        out.back() ^= 0x01;
    return out;
}

Bytes TestHsePeer::answerFull(ByteView request, const StartSpec& spec) {
    auto req = emsdp::parseSessionRequest(request);
    EXPECT_TRUE(req.has_value()) << "the UE's Session Request does not parse";
    if (!req)
        return {};
    EXPECT_FALSE(req->resumption());
    crypto::Rand rand{};
    if (spec.rand) {
        rand = *spec.rand;
    } else {
        rand.fill(randSeed_++);
    }
    lastSqn_ = crypto::sqnFromInt((sub_.nextSeq++ << 5) | sub_.ind);
    crypto::SoftAes128 ek(sub_.k);
    auto v = must(crypto::generateVector(ek, sub_.opc, rand, lastSqn_, sub_.amf), "vector");
    const crypto::PlmnId plmn = req->body.servingNetwork.value_or(crypto::PlmnId{});
    plmn_ = plmn;
    // deriveRoot wants SQN xor AK: the first 6 octets of AUTN.
    crypto::Ak sqnXorAk{};
    std::copy_n(v.autn.begin(), 6, sqnXorAk.begin());
    auto root = must(crypto::deriveRoot(spec.keyAgreement, v.ck, v.ik, plmn, sqnXorAk), "root");
    auto kint = must(crypto::deriveKInt(root, spec.hseId), "KInt");

    emsdp::SessionStart s = grantedStart(spec, request);
    s.rand = rand;
    s.autn = v.autn;
    return sealStart(headerFor(spec), s, kint, req->body.ueNonce, spec);
}

Bytes TestHsePeer::answerResync(ByteView reject, ByteView request, const StartSpec& spec) {
    auto rj = emsdp::parseUnprotectedReject(reject);
    EXPECT_TRUE(rj.has_value());
    if (!rj)
        return {};
    EXPECT_EQ(rj->body.cause, emsdp::Cause::synch_failure);
    EXPECT_TRUE(rj->body.auts.has_value());
    EXPECT_EQ(rj->header.sessionId, spec.sessionId);
    if (!rj->body.auts)
        return {};
    // The RAND of the Session Start the USIM answered: the last one we sent (the channel's
    // Session Start is gone; the test passes the same spec with the RAND used).
    crypto::SoftAes128 ek(sub_.k);
    EXPECT_TRUE(spec.rand.has_value()) << "answerResync needs the RAND that was answered";
    const crypto::Rand answered = spec.rand.value_or(crypto::Rand{});
    auto sqnMs = must(crypto::recoverSqnMs(ek, sub_.opc, answered, *rj->body.auts), "AUTS");
    sub_.nextSeq = (crypto::sqnToInt(sqnMs) >> 5) + 1;
    StartSpec next = spec;
    next.rand.reset();
    return answerFull(request, next);
}

Bytes TestHsePeer::answerResumption(ByteView request, const Key256& kint, const StartSpec& spec) {
    auto req = emsdp::parseSessionRequest(request);
    EXPECT_TRUE(req.has_value()) << "the UE's resumption request does not parse";
    if (!req)
        return {};
    EXPECT_TRUE(req->resumption());
    plmn_ = req->body.servingNetwork.value_or(crypto::PlmnId{});
    auto ksess0 = must(crypto::deriveKSess(kint, 0, req->body.ueNonce), "KSess0");
    auto cpInt =
        must(crypto::deriveSessionKey(ksess0, crypto::KeyDistinguisher::cpInt, crypto::kAlgEia2),
             "KSess0 CP-int");
    crypto::Eia2 mac(cpInt);
    auto ok = emsdp::verifyResumptionMac(request, mac);
    EXPECT_TRUE(ok.has_value() && *ok) << "resumption MAC does not verify";

    return sealStart(headerFor(spec), grantedStart(spec, request), kint, req->body.ueNonce, spec);
}

RefreshVector TestHsePeer::refreshVector(crypto::KeyAgreement ka,
                                         std::optional<crypto::Rand> rand) {
    RefreshVector r;
    if (rand)
        r.rand = *rand;
    else
        r.rand.fill(randSeed_++);
    r.sqn = crypto::sqnFromInt((sub_.nextSeq++ << 5) | sub_.ind);
    lastSqn_ = r.sqn;
    crypto::SoftAes128 ek(sub_.k);
    auto v = must(crypto::generateVector(ek, sub_.opc, r.rand, r.sqn, sub_.amf), "vector");
    r.autn = v.autn;
    crypto::Ak sqnXorAk{};
    std::copy_n(v.autn.begin(), 6, sqnXorAk.begin());
    auto root = must(crypto::deriveRoot(ka, v.ck, v.ik, plmn_, sqnXorAk), "root");
    r.kint = must(crypto::deriveKInt(root, hseIdStore_), "KInt");
    return r;
}

Bytes TestHsePeer::manageKeysResponse(const RefreshVector& v, crypto::KeyAgreement ka,
                                      std::uint8_t newKid) {
    return seal(emsdp::HseManageKeysResponse{v.rand, v.autn, ka, newKid});
}

Bytes TestHsePeer::manageKeysRequest(const RefreshVector& v, crypto::KeyAgreement ka,
                                     std::uint8_t newKid, emsdp::RefreshOrigin origin) {
    return seal(emsdp::HseManageKeysRequest{v.rand, v.autn, ka, newKid, origin});
}

crypto::KeyConfirmation TestHsePeer::expectedConfirmation(const RefreshVector& v) {
    return must(crypto::deriveKeyConfirmation(v.kint, channel().config().sessionId, v.rand),
                "key confirmation");
}

bool TestHsePeer::resync(const crypto::Rand& rand, const crypto::Auts& auts) {
    crypto::SoftAes128 ek(sub_.k);
    auto sqnMs = crypto::recoverSqnMs(ek, sub_.opc, rand, auts);
    if (!sqnMs)
        return false;
    sub_.nextSeq = (crypto::sqnToInt(*sqnMs) >> 5) + 1;
    return true;
}

Bytes TestHsePeer::seal(const emsdp::Body& body) {
    std::array<std::uint8_t, emsdp::kMaxDatagram> buf{};
    auto n = channel().sealCp(body, buf);
    EXPECT_TRUE(n.has_value()) << (n ? "" : n.error().describe());
    return n ? take(buf, *n) : Bytes{};
}

Bytes TestHsePeer::sealUp(ByteView payload) {
    std::array<std::uint8_t, emsdp::kMaxDatagram> buf{};
    auto n = channel().sealUp(payload, buf);
    EXPECT_TRUE(n.has_value()) << (n ? "" : n.error().describe());
    return n ? take(buf, *n) : Bytes{};
}

Bytes TestHsePeer::sealRawCp(std::uint8_t command, ByteView tlvs, std::uint32_t count) {
    const emsdp::ChannelConfig& c = channel().config();
    emsdp::Header h;
    h.kid = c.kid;
    h.sessionId = c.sessionId;
    h.scheme = c.cpScheme;
    h.setCount(count);
    std::array<std::uint8_t, emsdp::kMaxDatagram> buf{};
    auto hs = must(emsdp::encodeHeader(h, buf), "header");
    std::size_t n = hs;
    buf[n++] = command;
    std::copy(tlvs.begin(), tlvs.end(), buf.begin() + static_cast<std::ptrdiff_t>(n));
    n += tlvs.size();
    crypto::Eia2 mac(keys_->cpInt);
    auto m = must(mac.mac(count, crypto::kBearerCp, crypto::kDirDownlink, ByteView(buf.data(), n)),
                  "MAC");
    putBe32(buf.data() + n, m);
    return take(buf, n + 4);
}

emsdp::ReceivedCp TestHsePeer::openCp(ByteView datagram) {
    auto r = channel().openCp(datagram);
    EXPECT_TRUE(r.has_value()) << "the peer cannot open the UE's CP message";
    if (!r)
        return emsdp::ReceivedCp{};
    return std::move(*r);
}

Bytes TestHsePeer::openUp(ByteView datagram) {
    std::array<std::uint8_t, emsdp::kMaxDatagram> plain{};
    auto r = channel().openUp(datagram, plain);
    EXPECT_TRUE(r.has_value()) << "the peer cannot open the UE's UP message";
    if (!r)
        return {};
    return Bytes(r->payload.begin(), r->payload.end());
}

}  // namespace best::ue::test
