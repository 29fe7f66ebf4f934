// best-hsed's less travelled paths (issue 6), end to end: a real daemon per test (SoftHSM token,
// SQLite file, loopback UDP, the port from the runtime file), UEs from src/ue or datagrams built
// with src/emsdp + src/crypto. Complements test_hsed.cpp (which it does not repeat). Every test
// ends with the daemon's exit line of drop counters compared exactly where drops are the subject,
// and every log is scanned for the key material the test knows.
#include <gtest/gtest.h>

#include <map>

#include "hsed_fixture.h"

namespace best::itest {
namespace {

using emsdp::Cause;

constexpr std::uint8_t kCmdRequest = 0x10;
constexpr std::uint8_t kCmdStart = 0x11;
constexpr std::uint8_t kCmdConfirmation = 0x12;
constexpr std::uint8_t kCmdTerminateRequest = 0x20;
constexpr std::uint8_t kCmdManageKeysRequest = 0x30;
constexpr std::uint8_t kCmdReject = 0x80;
constexpr std::uint32_t kMaxCount = 0xFFFFFFFFu;
constexpr const char* kHighLimits =
    "  rate_limits:\n    per_source: {rate: 1000, burst: 1000}\n"
    "    per_imsi: {rate: 1000, burst: 1000}\n";

struct Tlv {
    std::uint8_t tag = 0;
    Bytes value;
};

// The TLVs of an unprotected message (5-octet header, command).
std::vector<Tlv> tlvsOf(const Bytes& m) {
    std::vector<Tlv> v;
    for (std::size_t p = 6; p + 2 <= m.size();) {
        const std::size_t len = m[p + 1];
        v.push_back({m[p], Bytes(m.begin() + static_cast<std::ptrdiff_t>(p + 2),
                                 m.begin() + static_cast<std::ptrdiff_t>(p + 2 + len))});
        p += 2 + len;
    }
    return v;
}

// An unprotected message (KID 0, counter 0) from its parts; `tail` is appended raw.
Bytes unprotected(std::uint32_t sessionId, std::uint8_t command, const std::vector<Tlv>& tlvs,
                  const Bytes& tail = {}) {
    Bytes m{0x00,
            static_cast<std::uint8_t>(sessionId >> 24),
            static_cast<std::uint8_t>(sessionId >> 16),
            static_cast<std::uint8_t>(sessionId >> 8),
            static_cast<std::uint8_t>(sessionId),
            command};
    for (const auto& t : tlvs) {
        m.push_back(t.tag);
        m.push_back(static_cast<std::uint8_t>(t.value.size()));
        m.insert(m.end(), t.value.begin(), t.value.end());
    }
    m.insert(m.end(), tail.begin(), tail.end());
    return m;
}

std::vector<Tlv> without(std::vector<Tlv> v, std::uint8_t tag) {
    std::erase_if(v, [tag](const Tlv& t) { return t.tag == tag; });
    return v;
}

// A protected datagram with any command octet and TLV octets, MAC'd with `key` under `count`
// (UE to HSE). The payload of a UP message is `body` (integrity service: not ciphered).
Bytes sealRaw(const Key128& key, emsdp::Plane plane, std::uint32_t sessionId, std::uint8_t kid,
              emsdp::CounterScheme scheme, std::uint32_t count, const Bytes& body) {
    emsdp::Header h;
    h.plane = plane;
    h.kid = kid;
    h.sessionId = sessionId;
    h.scheme = scheme;
    h.setCount(count);
    Bytes d(h.size());
    EXPECT_TRUE(emsdp::encodeHeader(h, d));
    d.insert(d.end(), body.begin(), body.end());
    crypto::Eia2 eia(key);
    auto mac = eia.mac(count, plane == emsdp::Plane::up ? 1 : 0, 0, d);
    EXPECT_TRUE(mac);
    for (int shift = 24; shift >= 0; shift -= 8)
        d.push_back(static_cast<std::uint8_t>((mac ? *mac : 0) >> shift));
    return d;
}

// The UE's side of a session as the profile derives it (section 6), for crafted messages and
// for reading the HSE's protected answers.
struct Mirror {
    ue::SessionInfo info;
    crypto::SessionKeys keys;
    std::optional<emsdp::SecureChannel> channel;
    std::uint32_t nextCp = 0;  // the next CP-UL COUNT

    Bytes cp(std::uint8_t command, const Bytes& tlvs = {}) {
        Bytes body{command};
        body.insert(body.end(), tlvs.begin(), tlvs.end());
        return sealRaw(keys.cpInt, emsdp::Plane::cp, info.sessionId, info.kid, info.cpScheme,
                       nextCp++, body);
    }
    Bytes up(std::uint32_t count, const Bytes& payload) const {
        return sealRaw(keys.upInt, emsdp::Plane::up, info.sessionId, info.kid, info.upScheme, count,
                       payload);
    }
    // The HSE's MAC'd Message Reject, if `d` is one that verifies.
    std::optional<Cause> rejectCause(const Bytes& d) {
        auto r = channel->openCp(d);
        if (!r)
            return std::nullopt;
        auto* rej = std::get_if<emsdp::MessageReject>(&r->body);
        if (rej == nullptr)
            return std::nullopt;
        return rej->cause;
    }
};

Mirror mirrorOf(const ue::SessionInfo& info, const Key256& kint, std::uint64_t nonce,
                const emsdp::CounterSnapshot& counters = {}) {
    Mirror m;
    m.info = info;
    auto ksess = crypto::deriveKSess(kint, info.sessionId, nonce);
    EXPECT_TRUE(ksess);
    auto keys = crypto::deriveSessionKeys(*ksess, 0x02, info.cipheringAlg);
    EXPECT_TRUE(keys);
    m.keys = std::move(*keys);
    auto ch = ueChannel(info, m.keys);
    EXPECT_TRUE(ch);
    m.channel.emplace(std::move(*ch));
    m.channel->restoreCounters(counters);
    m.nextCp = static_cast<std::uint32_t>(counters.nextCpTx);
    return m;
}

Mirror mirrorOf(UeClient& ue) {
    const auto& st = ue.engine().state();
    EXPECT_TRUE(st.current && st.lastNonce);
    return mirrorOf(ue.last<ue::SessionEstablished>()->info, st.current->kint, *st.lastNonce,
                    ue.engine().counters().value_or(emsdp::CounterSnapshot{}));
}

bool contains(const std::string& haystack, const std::string& needle) {
    return haystack.find(needle) != std::string::npos;
}

class HsedPaths : public HsedFixture {
protected:
    void TearDown() override {
        if (pid_ > 0)
            stop();
        // No key material in any log of these runs.
        const std::string l = log();
        std::vector<std::string> keys = {kKHex, kOpcHex};
        keys.insert(keys.end(), secrets_.begin(), secrets_.end());
        for (const auto& k : keys) {
            EXPECT_FALSE(contains(l, k)) << "key material in the log: " << k.substr(0, 4) << "..";
            EXPECT_FALSE(contains(l, k.substr(0, 16))) << "key prefix in the log";
        }
        HsedFixture::TearDown();
    }

    void remember(ByteView key) { secrets_.push_back(toHex(key)); }
    void remember(const Mirror& m) {
        remember(m.keys.cpInt.view());
        remember(m.keys.upInt.view());
    }
    void rememberSets(UeClient& ue) {
        if (ue.engine().state().current)
            remember(ue.engine().state().current->kint.view());
    }

    // The exit line "drops: a=1 b=2" (stop() first).
    std::map<std::string, unsigned> dropsAtExit() {
        std::map<std::string, unsigned> m;
        const std::string l = log();
        const auto at = l.rfind("drops:");
        if (at == std::string::npos) {
            ADD_FAILURE() << "no drops line";
            return m;
        }
        std::istringstream in(l.substr(at + 6, l.find('\n', at) - at - 6));
        std::string item;
        while (in >> item) {
            const auto eq = item.find('=');
            if (eq != std::string::npos)
                m[item.substr(0, eq)] = static_cast<unsigned>(std::stoul(item.substr(eq + 1)));
        }
        return m;
    }

    // Sends datagrams that are dropped, then one that is answered, so the drops are done.
    void settle(UdpPeer& p) {
        ASSERT_EQ(causeOf(p, requestOctets("001019999999999", kEasHse, 1)),
                  Cause::unknown_subscriber);
    }

    std::vector<std::string> secrets_;
};

// ---- Session Request: A4 steps 1-4 (codec) -------------------------------------------------

TEST_F(HsedPaths, MalformedSessionRequestsGetTheirCauses) {
    start(withPolicy(kHighLimits));
    UdpPeer p(port_);
    const Bytes good = requestOctets(kImsi, kEasHse, 1);
    const auto tlvs = tlvsOf(good);
    ASSERT_EQ(tlvs.size(), 5u);  // IMSI, UE configuration, EAS Id, Serving network, nonce
    // Step 1, octet order: 0x01 for the parse errors, 0x04 for an unknown tag below 0x80.
    EXPECT_EQ(causeOf(p, unprotected(0, kCmdRequest, tlvs, {0x00})), Cause::invalid_format);
    EXPECT_EQ(causeOf(p, unprotected(0, kCmdRequest, tlvs, {0x85, 0x09, 0x00})),
              Cause::invalid_format);  // length past the end
    auto dup = tlvs;
    dup.push_back(tlvs.back());
    EXPECT_EQ(causeOf(p, unprotected(0, kCmdRequest, dup)), Cause::invalid_format);
    auto longNonce = tlvs;
    longNonce.back().value.push_back(0x00);
    EXPECT_EQ(causeOf(p, unprotected(0, kCmdRequest, longNonce)), Cause::invalid_format);
    EXPECT_EQ(causeOf(p, unprotected(0, kCmdRequest, tlvs, {0x7E, 0x01, 0x00})),
              Cause::unknown_mandatory_ie);
    // An unknown tag at or above 0x80 is skipped: the request is served.
    p.send(unprotected(0, kCmdRequest, tlvs, {0xF0, 0x01, 0x00}));
    auto served = p.receive(5000);
    ASSERT_TRUE(served) << log();
    EXPECT_FALSE(emsdp::parseUnprotectedReject(*served));
    // Step 2: SUCI present, any length, before the missing-IE check of step 3.
    auto suci = tlvs;
    suci.push_back({0x02, {}});
    EXPECT_EQ(causeOf(p, unprotected(0, kCmdRequest, suci)), Cause::unknown_subscriber);
    suci = without(suci, 0x01);
    EXPECT_EQ(causeOf(p, unprotected(0, kCmdRequest, suci)), Cause::unknown_subscriber);
    // Step 3: every mandatory IE.
    for (std::uint8_t tag : {0x01, 0x03, 0x04, 0x06})
        EXPECT_EQ(causeOf(p, unprotected(0, kCmdRequest, without(tlvs, tag))),
                  Cause::missing_mandatory_ie)
            << "without tag " << int{tag};
    // An IMSI whose BCD does not decode is an unknown subscriber (decision 18).
    auto imsi = tlvs;
    imsi.front().value[3] = 0xAB;
    ASSERT_EQ(imsi.front().tag, 0x01);
    EXPECT_EQ(causeOf(p, unprotected(0, kCmdRequest, imsi)), Cause::unknown_subscriber);
    // Step 4: PLMN digits (a non-BCD MCC digit).
    auto plmn = tlvs;
    for (auto& t : plmn)
        if (t.tag == 0x05)
            t.value[0] = 0xAB;
    EXPECT_EQ(causeOf(p, unprotected(0, kCmdRequest, plmn)), Cause::invalid_format);
    stop();
    EXPECT_TRUE(contains(log(), "reject unknown_mandatory_ie")) << log();
}

// ---- Session Request: A4 steps 5-11 ---------------------------------------------------------

TEST_F(HsedPaths, ReleaseKeyAgreementAndAlgorithmCauses) {
    start(withPolicy(std::string(kHighLimits) +
                     "  key_agreements: [eps, 5g]\n  confidentiality_required_eas: [eas-hse]\n"));
    UdpPeer p(port_);
    // 0x05 above the range (18 is the last release served).
    EXPECT_EQ(causeOf(p, requestOctets(kImsi, kEasHse, 1, {19, 0x07, 0x02, 0x04, 0x04})),
              Cause::unsupported_release);
    // 0x06: the UE offers UMTS only, policy allows EPS and 5G.
    EXPECT_EQ(causeOf(p, requestOctets(kImsi, kEasHse, 2, {17, 0x01, 0x02, 0x04, 0x04})),
              Cause::no_common_algorithm);
    // 0x06: no EIA2 (bit 0 of the mask is ignored).
    EXPECT_EQ(causeOf(p, requestOctets(kImsi, kEasHse, 3, {17, 0x07, 0x02, 0x01, 0x04})),
              Cause::no_common_algorithm);
    // 0x06: policy demands confidentiality for eas-hse, the UE has no EEA2.
    EXPECT_EQ(causeOf(p, requestOctets(kImsi, kEasHse, 4, {17, 0x07, 0x02, 0x04, 0x00})),
              Cause::no_common_algorithm);
    // The same UE with EEA2 gets 5G and UP confidentiality without asking for it (A6).
    p.send(requestOctets(kImsi, kEasHse, 5, {17, 0x07, 0x02, 0x04, 0x04}));
    auto d = p.receive(5000);
    ASSERT_TRUE(d) << log();
    auto ss = emsdp::parseSessionStart(*d);
    ASSERT_TRUE(ss) << log();
    ASSERT_TRUE(ss->body.rand && ss->body.autn);
    remember(*ss->body.rand);
    remember(*ss->body.autn);
    EXPECT_EQ(ss->body.keyAgreement, crypto::KeyAgreement::fiveG);
    EXPECT_EQ(ss->body.serviceParameters.service, emsdp::Service::upConfidentiality);
    EXPECT_EQ(ss->body.hseConfiguration.cipheringAlg, 0x02);
    // ka-only is not subject to the demand (it has no user plane).
    p.send(requestOctets(kImsi, kEasKa, 6, {17, 0x07, 0x02, 0x04, 0x00}));
    d = p.receive(5000);
    ASSERT_TRUE(d);
    ss = emsdp::parseSessionStart(*d);
    ASSERT_TRUE(ss) << log();
    EXPECT_EQ(ss->body.serviceParameters.service, emsdp::Service::kaOnly);
}

// 0x12: a subscriber row the daemon cannot serve (OP instead of OPc; a K blob bound to another
// IMSI) is answered "internal error", logged, and nothing else is affected.
TEST_F(HsedPaths, UnservableSubscriberRowsGetInternalError) {
    const std::string withOp = "001010000000008";
    const std::string foreignK = "001010000000009";
    {
        auto st = openStore();
        ASSERT_TRUE(st);
        auto base = (*st)->getSubscriber(kImsi);
        ASSERT_TRUE(base);
        store::SubscriberRecord r = *base;
        r.imsi = withOp;
        r.opKind = store::OpKind::op;
        ASSERT_TRUE((*st)->addSubscriber(r));
        r = *base;
        r.imsi = foreignK;  // the blobs stay bound to kImsi
        ASSERT_TRUE((*st)->addSubscriber(r));
    }
    start(withPolicy(kHighLimits));
    UdpPeer p(port_);
    EXPECT_EQ(causeOf(p, requestOctets(withOp, kEasHse, 1)), Cause::internal_error);
    EXPECT_TRUE(waitLog("subscriber " + withOp + " is provisioned with OP")) << log();
    EXPECT_EQ(causeOf(p, requestOctets(foreignK, kEasHse, 2)), Cause::internal_error);
    EXPECT_TRUE(waitLog("establishment for IMSI " + foreignK + " failed")) << log();
    // The daemon serves the others as before.
    UeClient ue(port_, ueSettings(kEasHse, 0x01));
    ASSERT_TRUE(ue.establish()) << log();
    rememberSets(ue);
}

TEST_F(HsedPaths, PerSourceRateLimitWithBackOff) {
    DaemonOptions opt;
    opt.ipv6 = true;
    opt.extraPolicy =
        "  rate_limits:\n    per_source: {rate: 0.001, burst: 3}\n"
        "    per_imsi: {rate: 1000, burst: 1000}\n    backoff: 42\n";
    start(opt);
    std::istringstream in(readFile(dir_ + "/ports"));
    std::string word, addr;
    unsigned port4 = 0, port6 = 0;
    ASSERT_TRUE(in >> word >> addr >> port4 >> word >> addr >> port6);
    UdpPeer a(port_);
    UdpPeer b(port_);  // same address, another port: the same bucket
    // Different IMSIs: only the source bucket fills. Steps 1-4 faults are not charged.
    EXPECT_EQ(causeOf(a, unprotected(0, kCmdRequest, {}, {0x00})), Cause::invalid_format);
    EXPECT_EQ(causeOf(a, requestOctets("001019999999991", kEasHse, 1)), Cause::unknown_subscriber);
    EXPECT_EQ(causeOf(b, requestOctets("001019999999992", kEasHse, 2)), Cause::unknown_subscriber);
    EXPECT_EQ(causeOf(a, requestOctets("001019999999993", kEasHse, 3)), Cause::unknown_subscriber);
    std::optional<std::uint16_t> backOff;
    EXPECT_EQ(causeOf(b, requestOctets(kImsi, kEasHse, 4), &backOff), Cause::congestion);
    ASSERT_TRUE(backOff);
    EXPECT_EQ(*backOff, 42);
    // Another source address (::1) has its own bucket.
    UdpPeer v6(static_cast<std::uint16_t>(port6), true);
    EXPECT_EQ(causeOf(v6, requestOctets("001019999999994", kEasHse, 5)), Cause::unknown_subscriber);
}

// ---- Inside a session -----------------------------------------------------------------------

TEST_F(HsedPaths, FormatErrorsAfterAGoodMacGetMacdRejectsAndConfirm) {
    start();
    UeClient ue(port_, ueSettings(kEasHse, 0x01));
    ASSERT_TRUE(ue.establish()) << log();
    rememberSets(ue);
    Mirror m = mirrorOf(ue);
    remember(m);
    const std::string sid = std::to_string(m.info.sessionId);
    EXPECT_FALSE(contains(log(), "session " + sid + " confirmed"));
    auto ask = [&](const Bytes& d) -> std::optional<Cause> {
        ue.peer().send(d);
        auto a = ue.peer().receive(5000);
        if (!a)
            return std::nullopt;
        return m.rejectCause(*a);
    };
    // Session Terminate Request with one octet after its TLVs: 0x01, and the message confirms.
    EXPECT_EQ(ask(m.cp(kCmdTerminateRequest, {0x00})), Cause::invalid_format) << log();
    EXPECT_TRUE(waitLog("session " + sid + " confirmed")) << log();
    EXPECT_EQ(ask(m.cp(kCmdTerminateRequest, {0x20, 0x02, 0x13, 0x00})), Cause::invalid_format);
    EXPECT_EQ(ask(m.cp(kCmdTerminateRequest, {0x7E, 0x00})), Cause::unknown_mandatory_ie);
    // A UE's Manage Keys Request without its Refresh origin: 0x03.
    EXPECT_EQ(ask(m.cp(kCmdManageKeysRequest)), Cause::missing_mandatory_ie);
    // A3 value errors and conflicting IEs are 0x01 too (the detail is logged).
    EXPECT_EQ(ask(m.cp(kCmdManageKeysRequest, {0x1A, 0x01, 0x02})), Cause::invalid_format);
    EXPECT_TRUE(waitLog(": reject invalid_format (value_out_of_range)")) << log();
    EXPECT_EQ(ask(m.cp(0x31, {0x19, 0x08, 1, 2, 3, 4, 5, 6, 7, 8, 0x20, 0x01, 0x0A})),
              Cause::invalid_format);
    EXPECT_TRUE(waitLog(": reject invalid_format (conflicting_ies)")) << log();
    // From a new address (A17): the faulty message moves the session there, so the MAC'd Reject
    // goes to the new address.
    UdpPeer moved(port_);
    moved.send(m.cp(kCmdTerminateRequest, {0x00}));
    auto there = moved.receive(3000);
    ASSERT_TRUE(there) << "the MAC'd Reject did not follow the UE's new address\n" << log();
    EXPECT_EQ(m.rejectCause(*there), Cause::invalid_format);
    EXPECT_FALSE(ue.peer().receive(300));
    // A MAC'd Message Reject with a format error is never answered.
    ue.peer().send(m.cp(kCmdReject));
    EXPECT_FALSE(ue.peer().receive(500));
    // The session lives on: uplink still reaches the sink.
    ue::Output out;
    const std::uint8_t payload[] = {7, 7};
    ASSERT_TRUE(ue.engine().sendUplink(payload, ue::UeTime::now(), out));
    ue.peer().send(out.datagrams.at(0));
    auto frame = readSink();
    ASSERT_TRUE(frame) << log();
    EXPECT_EQ(frame->size(), 6u);
    stop();
    EXPECT_EQ(dropsAtExit(), (std::map<std::string, unsigned>{{"missing_mandatory_ie", 1}}));
}

TEST_F(HsedPaths, RoutingAndSessionDropsAreCountedByName) {
    start();
    UdpPeer p(port_);
    p.send(Bytes(1281, 0x00));                             // datagram_too_large
    p.send(Bytes{0x00, 0, 0, 0, 0});                       // truncated_message
    p.send(Bytes{0x80, 0, 0, 0, 0, 0x00, 1, 2, 3, 4, 5});  // up_with_session_zero
    p.send(unprotected(0x01020304, kCmdRequest, {}));      // request_with_session_nonzero
    p.send(unprotected(0, kCmdStart, {}));                 // non_request_with_session_zero
    settle(p);
    UeClient ue(port_, ueSettings(kEasHse, 0x01));
    ASSERT_TRUE(ue.establish()) << log();
    rememberSets(ue);
    const auto info = ue.last<ue::SessionEstablished>()->info;
    // 70 uplink messages, UP-UL COUNT 0..69; the 70th arrives first.
    std::vector<Bytes> ups;
    for (int i = 0; i < 70; ++i) {
        ue::Output out;
        const std::uint8_t payload[] = {static_cast<std::uint8_t>(i)};
        ASSERT_TRUE(ue.engine().sendUplink(payload, ue::UeTime::now(), out));
        ups.push_back(out.datagrams.at(0));
    }
    Mirror m = mirrorOf(ue);
    remember(m);
    ue.peer().send(ups[69]);
    ASSERT_TRUE(readSink()) << log();
    ue.peer().send(ups[69]);  // replayed_counter
    ue.peer().send(ups[0]);   // counter_too_old (69 - 0 >= W = 64)
    ue.peer().send(ups[10]);  // within the window: delivered
    auto late = readSink();
    ASSERT_TRUE(late);
    EXPECT_EQ(late->back(), 10);
    // KID 0 with the Session ID (not a Reject), and another KID: kid_mismatch.
    ue.peer().send(unprotected(info.sessionId, kCmdTerminateRequest, {}));
    Bytes otherKid = m.cp(kCmdConfirmation);
    --m.nextCp;
    otherKid[0] = static_cast<std::uint8_t>((otherKid[0] & 0xC7) | ((info.kid % 7 + 1) << 3));
    ue.peer().send(otherKid);
    // A Session Start from the UE and an unsolicited Terminate Response: unexpected_command.
    ue.peer().send(m.cp(kCmdStart));
    ue.peer().send(m.cp(0x21));
    // A KID-0 Reject for a confirmed session: unsolicited_reject.
    ue.peer().send(unprotected(info.sessionId, kCmdReject, {{0x20, {0x0A}}}));
    settle(p);
    stop();
    EXPECT_EQ(dropsAtExit(), (std::map<std::string, unsigned>{{"datagram_too_large", 1},
                                                              {"truncated_message", 1},
                                                              {"up_with_session_zero", 1},
                                                              {"request_with_session_nonzero", 1},
                                                              {"non_request_with_session_zero", 1},
                                                              {"replayed_counter", 1},
                                                              {"counter_too_old", 1},
                                                              {"kid_mismatch", 2},
                                                              {"unexpected_command", 2},
                                                              {"unsolicited_reject", 1}}))
        << log();
}

TEST_F(HsedPaths, UnprotectedRejectsForAnAttemptWithFormatErrorsAreDropped) {
    start();
    UdpPeer a(port_);
    const Bytes req = requestOctets(kImsi, kEasHse, 4242);
    a.send(req);
    auto first = a.receive(5000);
    ASSERT_TRUE(first) << log();
    const std::uint32_t sid = datagramSessionId(*first);
    ASSERT_NE(sid, 0u);
    const Tlv cause0b{0x20, {0x0B}};
    a.send(unprotected(sid, kCmdReject, {cause0b}, {0x00}));                 // trailing_octets
    a.send(unprotected(sid, kCmdReject, {cause0b}, {0x12, 0x20}));           // length_past_end
    a.send(unprotected(sid, kCmdReject, {{0x20, {0x0A}}, {0x20, {0x0A}}}));  // duplicate_tlv
    a.send(unprotected(sid, kCmdReject, {{0x20, {0x0A}}, {0x33, {}}}));  // unknown_mandatory_tag
    a.send(unprotected(sid, kCmdReject, {{0x20, {0x0A, 0x00}}}));        // invalid_ie_length
    a.send(unprotected(sid, kCmdReject, {{0x21, {0x00, 0x01}}}));        // missing_mandatory_ie
    a.send(unprotected(sid, kCmdReject, {cause0b}));  // 0x0B without AUTS: missing_mandatory_ie
    a.send(unprotected(sid, kCmdReject, {{0x20, {0x01}}}));  // unsolicited_reject
    // The attempt is still there: an identical request gets the same Session Start.
    a.send(req);
    auto again = a.receive(5000);
    ASSERT_TRUE(again);
    EXPECT_EQ(*again, *first);
    // A Reject for a Session ID the HSE never gave: unknown_session.
    a.send(unprotected(sid ^ 0x5A5A5A5Au, kCmdReject, {{0x20, {0x0A}}}));
    settle(a);
    stop();
    EXPECT_EQ(dropsAtExit(), (std::map<std::string, unsigned>{{"trailing_octets", 1},
                                                              {"length_past_end", 1},
                                                              {"duplicate_tlv", 1},
                                                              {"unknown_mandatory_tag", 1},
                                                              {"invalid_ie_length", 1},
                                                              {"missing_mandatory_ie", 2},
                                                              {"unsolicited_reject", 1},
                                                              {"unknown_session", 1}}))
        << log();
}

TEST_F(HsedPaths, KaOnlySessionTakesNoUserPlaneAndDownlinkSinkDiscards) {
    start();
    UeClient ue(port_, ueSettings(kEasKa, 0x01));
    ASSERT_TRUE(ue.establish()) << log();
    rememberSets(ue);
    Mirror m = mirrorOf(ue);
    remember(m);
    // The UP keys as a UP service would derive them: still up_not_allowed (checked before MAC).
    ue.peer().send(m.up(0, {1, 2, 3}));
    // Downlink frames for this KA-only session and for a Session ID nobody has: discarded.
    injectDownlink(m.info.sessionId, "to ka-only");
    injectDownlink(m.info.sessionId ^ 0x01000000u, "to nobody");
    {
        const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        sockaddr_un sa{};
        sa.sun_family = AF_UNIX;
        std::snprintf(sa.sun_path, sizeof sa.sun_path, "%s", downlinkPath().c_str());
        const std::uint8_t shortFrame[] = {0x01, 0x02, 0x03};
        ::sendto(fd, shortFrame, sizeof shortFrame, 0, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
        ::close(fd);
    }
    EXPECT_TRUE(waitLog("downlink frame too short"));
    EXPECT_TRUE(waitLog("downlink for no UP session " + std::to_string(m.info.sessionId)));
    EXPECT_TRUE(
        waitLog("downlink for no UP session " + std::to_string(m.info.sessionId ^ 0x01000000u)));
    EXPECT_FALSE(ue.peer().receive(300));
    EXPECT_FALSE(readSink(300));
    stop();
    EXPECT_EQ(dropsAtExit(), (std::map<std::string, unsigned>{{"up_not_allowed", 1}})) << log();
}

// 4.5 / A13: an idle session's Terminate Request that the UE never answers is resent once, under
// a new COUNT, and the session is deleted 5 s after the first one.
TEST_F(HsedPaths, IdleTerminationNotAnsweredIsResentOnceThenDeleted) {
    start(withPolicy("  session_timeouts:\n    idle: 1\n"));
    UeClient ue(port_, ueSettings(kEasHse, 0x01));
    ASSERT_TRUE(ue.establish()) << log();
    rememberSets(ue);
    Mirror m = mirrorOf(ue);
    remember(m);
    ue::Output out;
    const std::uint8_t payload[] = {1};
    ASSERT_TRUE(ue.engine().sendUplink(payload, ue::UeTime::now(), out));
    ue.peer().send(out.datagrams.at(0));
    ASSERT_TRUE(readSink());
    // The UE engine is not run from here on: nothing answers.
    std::vector<std::uint32_t> counts;
    std::vector<std::chrono::steady_clock::time_point> at;
    const std::string gone =
        "session " + std::to_string(m.info.sessionId) + " deleted: termination not answered";
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < until && !contains(log(), gone)) {
        auto d = ue.peer().receive(100);
        if (!d)
            continue;
        auto r = m.channel->openCp(*d);
        ASSERT_TRUE(r) << "not a CP message of the session";
        auto* term = std::get_if<emsdp::SessionTerminateRequest>(&r->body);
        ASSERT_NE(term, nullptr);
        EXPECT_FALSE(term->cause);
        counts.push_back(r->count);
        at.push_back(std::chrono::steady_clock::now());
        if (counts.size() == 1) {
            // A18: the HSE still takes data while it waits for the Response.
            out.clear();
            const std::uint8_t late[] = {0x5A};
            ASSERT_TRUE(ue.engine().sendUplink(late, ue::UeTime::now(), out));
            ue.peer().send(out.datagrams.at(0));
            auto frame = readSink();
            ASSERT_TRUE(frame) << log();
            EXPECT_EQ(frame->back(), 0x5A);
        }
    }
    ASSERT_TRUE(contains(log(), gone)) << log();
    EXPECT_FALSE(ue.peer().receive(1200));  // nothing after the deletion
    ASSERT_EQ(counts.size(), 2u) << log();
    EXPECT_EQ(counts[1], counts[0] + 1);  // a resend is protected again under the next COUNT
    EXPECT_GE(at[1] - at[0], std::chrono::milliseconds(2500));
    ASSERT_TRUE(ue.engine().sendUplink(payload, ue::UeTime::now(), out));
    ue.peer().send(out.datagrams.back());
    UdpPeer p(port_);
    settle(p);
    stop();
    EXPECT_EQ(dropsAtExit(), (std::map<std::string, unsigned>{{"unknown_session", 1}})) << log();
}

// A1 through real traffic: with counter scheme n = 3 (27-bit counter fields) the UE's counters
// can move up by up to 2^26 (UP) or 2^27 - 1 (CP) per message, so a few dozen MAC-valid messages
// bring the HSE's receive counters next to 2^32 - 1. (The HSE's own send counters only move one
// per message it sends: its 0x13 is covered by the SecureChannel unit tests, docs/hsed.md.)
TEST_F(HsedPaths, UeDrivenCounterExhaustionWithScheme3) {
    start(withPolicy("  counter_schemes: {cp: 3, up: 3}\n"));
    UeClient ue(port_, ueSettings(kEasHse, 0x01));
    ASSERT_TRUE(ue.establish()) << log();
    rememberSets(ue);
    Mirror m = mirrorOf(ue);
    remember(m);
    ASSERT_EQ(m.info.upScheme, emsdp::CounterScheme::n3);
    ASSERT_EQ(m.info.cpScheme, emsdp::CounterScheme::n3);
    // UP: first COUNT 2^27 - 1 (taken as is), then steps of 2^26 up to 2^32 - 2.
    std::uint64_t count = (1u << 27) - 1;
    int sent = 0;
    for (;;) {
        ue.peer().send(m.up(static_cast<std::uint32_t>(count), {0x42}));
        ASSERT_TRUE(readSink()) << "UP COUNT " << count << " not delivered\n" << log();
        ++sent;
        if (count == kMaxCount - 1)
            break;
        count = std::min<std::uint64_t>(count + (1u << 26), kMaxCount - 1);
    }
    EXPECT_LT(sent, 70);
    ue.peer().send(m.up(kMaxCount, {0x43}));  // counter_exhausted (only the 0x13 Terminate)
    ue.peer().send(m.up(5, {0x44}));          // rebuilds to 2^32 + 5: counter_out_of_range
    EXPECT_FALSE(readSink(300));
    // CP: Session Start Confirmations in steps of 2^27 - 1 up to 2^32 - 2.
    std::uint64_t cp = m.nextCp;
    for (;;) {
        m.nextCp = static_cast<std::uint32_t>(cp);
        ue.peer().send(m.cp(kCmdConfirmation));
        if (cp == kMaxCount - 1)
            break;
        cp = std::min<std::uint64_t>(cp + (1u << 27) - 1, kMaxCount - 1);
    }
    // COUNT 2^32 - 1 on anything else than the 0x13 Terminate: counter_exhausted, not committed.
    ue.peer().send(m.cp(kCmdConfirmation));
    m.nextCp = 3;  // the field of 2^32 + 3: counter_out_of_range
    ue.peer().send(m.cp(kCmdConfirmation));
    m.nextCp = kMaxCount;
    ue.peer().send(m.cp(kCmdTerminateRequest, {0x20, 0x01, 0x13}));
    ASSERT_TRUE(waitLog("session " + std::to_string(m.info.sessionId) + " terminated by the UE"))
        << log();
    // The session is gone.
    ue.peer().send(m.up(100, {0x45}));
    UdpPeer p(port_);
    settle(p);
    stop();
    EXPECT_EQ(dropsAtExit(),
              (std::map<std::string, unsigned>{
                  {"counter_exhausted", 2}, {"counter_out_of_range", 2}, {"unknown_session", 1}}))
        << log();
}

// A17: a MAC-valid message from a new address moves the session there (the downlink follows);
// a message that fails its MAC does not.
TEST_F(HsedPaths, UeAddressFollowsMacValidMessagesOnly) {
    start();
    UeClient ue(port_, ueSettings(kEasHse, 0x01));
    ASSERT_TRUE(ue.establish()) << log();
    rememberSets(ue);
    const auto info = ue.last<ue::SessionEstablished>()->info;
    ue::Output out;
    const std::uint8_t first[] = {1};
    const std::uint8_t second[] = {2};
    ASSERT_TRUE(ue.engine().sendUplink(first, ue::UeTime::now(), out));
    ASSERT_TRUE(ue.engine().sendUplink(second, ue::UeTime::now(), out));
    ASSERT_EQ(out.datagrams.size(), 2u);
    UdpPeer moved(port_);
    moved.send(out.datagrams[0]);
    ASSERT_TRUE(readSink());
    injectDownlink(info.sessionId, "to the new address");
    auto d = moved.receive(3000);
    ASSERT_TRUE(d) << log();
    EXPECT_FALSE(ue.peer().receive(200));
    // A bad MAC from a third address: dropped, the session stays at `moved`.
    UdpPeer third(port_);
    Bytes bad = out.datagrams[1];
    bad.back() ^= 0x01;
    third.send(bad);
    ASSERT_TRUE(waitLog("drop bad_mac"));
    injectDownlink(info.sessionId, "still there");
    EXPECT_TRUE(moved.receive(3000)) << log();
    EXPECT_FALSE(third.receive(200));
    stop();
    EXPECT_EQ(dropsAtExit(), (std::map<std::string, unsigned>{{"bad_mac", 1}})) << log();
}

// ---- Resumption ----------------------------------------------------------------------------

// A9: a UE resumes with a set the HSE still holds as tentative (its full session unconfirmed);
// confirming the resumed session makes the set current and deletes the earlier session.
TEST_F(HsedPaths, ResumptionWithATentativeSetAndA9Deletion) {
    start();
    UeClient ue(port_, ueSettings(kEasHse, 0x01));  // ue-to-hse: the UE confirms nothing
    ASSERT_TRUE(ue.establish()) << log();
    rememberSets(ue);
    const auto full = ue.last<ue::SessionEstablished>()->info;
    const ue::KeySet& set = *ue.engine().state().current;
    const std::uint64_t n0 = *ue.engine().state().lastNonce;
    UdpPeer p(port_);
    // A10: the full request's nonce is the set's first; equal is not fresh.
    EXPECT_EQ(causeOf(p, resumptionRequest(set, kEasHse, n0)), Cause::key_set_invalid) << log();
    const Bytes resume = resumptionRequest(set, kEasHse, n0 + 10);
    p.send(resume);
    auto d = p.receive(5000);
    ASSERT_TRUE(d) << log();
    ASSERT_FALSE(emsdp::parseUnprotectedReject(*d)) << log();
    auto ss = emsdp::parseSessionStart(*d);
    ASSERT_TRUE(ss);
    EXPECT_FALSE(ss->body.rand);
    const std::uint32_t resumedSid = datagramSessionId(*d);
    EXPECT_TRUE(contains(log(), "resumed session " + std::to_string(resumedSid)));
    // The identical request while unconfirmed: the same octets from the cache (4.6).
    p.send(resume);
    auto cached = p.receive(5000);
    ASSERT_TRUE(cached);
    EXPECT_EQ(*cached, *d);
    // A KID-0 Reject for a resumed session is not acted on (decision 49).
    p.send(unprotected(resumedSid, kCmdReject, {{0x20, {0x0A}}}));
    // A lower nonce on the tentative set: 0x0D (the high-water mark lives in memory).
    EXPECT_EQ(causeOf(p, resumptionRequest(set, kEasHse, n0 + 5)), Cause::key_set_invalid);
    // Confirm the resumed session with a Session Start Confirmation (CP-UL COUNT 0).
    ue::SessionInfo info = full;
    info.sessionId = resumedSid;
    info.resumed = true;
    Mirror m = mirrorOf(info, set.kint, n0 + 10);
    remember(m);
    ASSERT_TRUE(m.channel->acceptSessionStart(*d)) << "Session Start does not verify";
    p.send(m.cp(kCmdConfirmation));
    ASSERT_TRUE(waitLog("key set " + std::to_string(set.kid) + " of IMSI " + kImsi +
                        " is current (durable)"))
        << log();
    EXPECT_TRUE(contains(log(), "session " + std::to_string(full.sessionId) +
                                    " deleted: superseded by a confirmed session"))
        << log();
    // The earlier session's uplink finds no session.
    ue::Output out;
    const std::uint8_t payload[] = {1};
    ASSERT_TRUE(ue.engine().sendUplink(payload, ue::UeTime::now(), out));
    ue.peer().send(out.datagrams.at(0));
    EXPECT_FALSE(readSink(500));
    // The confirmed resumption's request again: not fresh against the stored high-water mark.
    EXPECT_EQ(causeOf(p, resume), Cause::key_set_invalid);
    stop();
    auto st = openStore();
    ASSERT_TRUE(st);
    auto stored = (*st)->getKeySet(kImsi, set.kid);
    ASSERT_TRUE(stored);
    EXPECT_EQ(stored->state, store::KeySetState::current);
    ASSERT_TRUE(stored->highestNonce);
    EXPECT_EQ(*stored->highestNonce, n0 + 10);
    EXPECT_EQ(dropsAtExit(),
              (std::map<std::string, unsigned>{{"unknown_session", 1}, {"unsolicited_reject", 1}}))
        << log();
}

// A4 for a resumption: subscriber (6), EAS (7), release (8) come before the key set (9), and the
// key set before the algorithms (10, 11).
TEST_F(HsedPaths, ResumptionChecksFollowTheA4Order) {
    start(withPolicy(std::string(kHighLimits) + "  confidentiality_required_eas: [eas-hse]\n"));
    UeClient ue(port_, ueSettings(kEasKa, 0x01));
    ASSERT_TRUE(ue.establish()) << log();
    ASSERT_TRUE(waitLog("(durable)")) << log();
    rememberSets(ue);
    const ue::KeySet good = *ue.engine().state().current;
    ue::KeySet unknown = good;
    unknown.kid = good.kid == 7 ? 6 : good.kid + 1;  // no such set
    std::uint64_t n = *ue.engine().state().lastNonce + 100;
    const emsdp::UeConfiguration ok{17, 0x01, 0x02, 0x04, 0x04};
    const emsdp::UeConfiguration old{14, 0x01, 0x02, 0x04, 0x04};
    const emsdp::UeConfiguration noEia2{17, 0x01, 0x02, 0x00, 0x04};
    const emsdp::UeConfiguration noEea2{17, 0x01, 0x02, 0x04, 0x00};
    UdpPeer p(port_);
    EXPECT_EQ(causeOf(p, resumptionRequest(unknown, kEasKa, ++n, old, "001019999999999")),
              Cause::unknown_subscriber);
    EXPECT_EQ(causeOf(p, resumptionRequest(unknown, kEasOther, ++n, old)), Cause::eas_not_allowed);
    EXPECT_EQ(causeOf(p, resumptionRequest(unknown, kEasE2e, ++n, old)),
              Cause::service_not_allowed);
    EXPECT_EQ(causeOf(p, resumptionRequest(unknown, kEasKa, ++n, old)), Cause::unsupported_release);
    EXPECT_EQ(causeOf(p, resumptionRequest(unknown, kEasKa, ++n, noEia2)), Cause::key_set_invalid);
    EXPECT_EQ(causeOf(p, resumptionRequest(good, kEasKa, ++n, noEia2)), Cause::no_common_algorithm);
    // The set is good for eas-hse too; policy demands confidentiality there (A6).
    EXPECT_EQ(causeOf(p, resumptionRequest(good, kEasHse, ++n, noEea2)),
              Cause::no_common_algorithm);
    // Refused requests did not raise the high-water mark: a good one with a lower nonce than
    // the refused ones is served.
    p.send(resumptionRequest(good, kEasKa, *ue.engine().state().lastNonce + 1, ok));
    auto d = p.receive(5000);
    ASSERT_TRUE(d) << log();
    EXPECT_FALSE(emsdp::parseUnprotectedReject(*d)) << log();
}

// A22: resumption requests are charged too; an identical resend answered from the cache is not.
TEST_F(HsedPaths, ResumptionRequestsAreRateLimited) {
    start(
        withPolicy("  rate_limits:\n    per_source: {rate: 1000, burst: 1000}\n"
                   "    per_imsi: {rate: 0.001, burst: 2}\n    backoff: 7\n"));
    UeClient ue(port_, ueSettings(kEasHse, 0x01));
    ASSERT_TRUE(ue.establish()) << log();  // charge 1
    rememberSets(ue);
    const ue::KeySet& set = *ue.engine().state().current;
    const std::uint64_t n0 = *ue.engine().state().lastNonce;
    UdpPeer p(port_);
    const Bytes r1 = resumptionRequest(set, kEasHse, n0 + 1);
    p.send(r1);  // charge 2
    auto d = p.receive(5000);
    ASSERT_TRUE(d) << log();
    ASSERT_FALSE(emsdp::parseUnprotectedReject(*d)) << log();
    p.send(r1);  // cached: not charged
    auto again = p.receive(5000);
    ASSERT_TRUE(again);
    EXPECT_EQ(*again, *d);
    std::optional<std::uint16_t> backOff;
    EXPECT_EQ(causeOf(p, resumptionRequest(set, kEasHse, n0 + 2), &backOff), Cause::congestion);
    ASSERT_TRUE(backOff);
    EXPECT_EQ(*backOff, 7);
}

// A13 / 4.6: after a resynchronisation the cache holds the attempt's latest Session Start; an
// identical request from another address gets it there (A17: a Session Request moves its own
// attempt).
TEST_F(HsedPaths, CacheHoldsTheLatestSessionStartAfterAResync) {
    start();
    UeClient ue(port_, ueSettings(kEasHse, 0x01));
    ASSERT_TRUE(ue.usim().sqnArray().setSeq(0, 5000));
    ASSERT_TRUE(ue.establish()) << log();
    ASSERT_TRUE(ue.has<ue::SyncFailureReported>());
    rememberSets(ue);
    const Bytes request = ue.sent().at(0);
    Mirror m = mirrorOf(ue);
    remember(m);
    UdpPeer other(port_);
    other.send(request);
    auto d = other.receive(5000);
    ASSERT_TRUE(d) << log();
    // It verifies with the keys of the session the UE established: the second Session Start.
    Mirror fresh =
        mirrorOf(m.info, ue.engine().state().current->kint, *ue.engine().state().lastNonce);
    auto ss = fresh.channel->acceptSessionStart(*d);
    ASSERT_TRUE(ss) << "the cached Session Start is not the latest";
    auto* body = std::get_if<emsdp::SessionStart>(&ss->body);
    ASSERT_NE(body, nullptr);
    ASSERT_TRUE(body->rand);
    remember(*body->rand);
    EXPECT_EQ(ss->header.sessionId, m.info.sessionId);
    // The attempt now answers at `other`: a faulty MAC'd message from the UE's own socket moves
    // it back (A17), and its Reject goes there.
    ue.peer().send(m.cp(kCmdTerminateRequest, {0x00}));
    auto rej = ue.peer().receive(3000);
    ASSERT_TRUE(rej) << log();
    EXPECT_EQ(m.rejectCause(*rej), Cause::invalid_format);
    EXPECT_FALSE(other.receive(200));
}

// A12 and A9: a new full establishment replaces the UE's older unconfirmed full attempt (same
// KID again); its confirmation makes the new set current, destroys the old one and deletes the
// sessions on it, the older and the newer ones.
TEST_F(HsedPaths, ConfirmingANewSetDeletesSessionsOfTheDestroyedSet) {
    start();
    UeClient one(port_, ueSettings(kEasHse, 0x01));
    ASSERT_TRUE(one.establish()) << log();
    rememberSets(one);
    const auto a = one.last<ue::SessionEstablished>()->info;
    ue::Output out;
    const std::uint8_t payload[] = {1};
    ASSERT_TRUE(one.engine().sendUplink(payload, ue::UeTime::now(), out));
    one.peer().send(out.datagrams.at(0));  // confirms A: KID 1 current
    ASSERT_TRUE(readSink());
    ASSERT_TRUE(waitLog(std::string("key set 1 of IMSI ") + kImsi + " is current (durable)"))
        << log();
    // A raw full attempt (tentative KID 2), then a UE's full attempt replaces it (A12).
    UdpPeer raw(port_);
    raw.send(requestOctets(kImsi, kEasHse, 77));
    auto x = raw.receive(5000);
    ASSERT_TRUE(x) << log();
    const std::uint32_t xSid = datagramSessionId(*x);
    UeClient two(port_, ueSettings(kEasHse, 0x01));
    ASSERT_TRUE(two.establish()) << log();
    rememberSets(two);
    const auto b = two.last<ue::SessionEstablished>()->info;
    EXPECT_EQ(b.kid, 2);
    EXPECT_TRUE(contains(log(), "session " + std::to_string(xSid) +
                                    " deleted: replaced by a new full establishment"))
        << log();
    // The first UE ends A and resumes with KID 1: session C, newer than B, unconfirmed.
    ASSERT_NO_FATAL_FAILURE(endSession(one));
    ASSERT_TRUE(one.establish()) << log();
    const auto c = one.last<ue::SessionEstablished>()->info;
    ASSERT_TRUE(c.resumed);
    ASSERT_EQ(c.kid, 1);
    // B is confirmed: KID 2 current, KID 1 destroyed, C (newer, on KID 1) deleted.
    out.clear();
    ASSERT_TRUE(two.engine().sendUplink(payload, ue::UeTime::now(), out));
    two.peer().send(out.datagrams.at(0));
    ASSERT_TRUE(readSink());
    ASSERT_TRUE(waitLog(std::string("key set 2 of IMSI ") + kImsi + " is current (durable)"))
        << log();
    const std::string l = log();
    EXPECT_TRUE(contains(l, "session " + std::to_string(a.sessionId) + " deleted: terminated"));
    EXPECT_TRUE(contains(l, "session " + std::to_string(c.sessionId) +
                                " deleted: superseded by a confirmed session"))
        << l;
    // KID 1 is gone: a resumption with it is 0x0D.
    UdpPeer p(port_);
    const auto& old = *one.engine().state().current;
    EXPECT_EQ(causeOf(p, resumptionRequest(old, kEasHse, *one.engine().state().lastNonce + 1)),
              Cause::key_set_invalid);
    stop();
    const auto sets = keySets();
    ASSERT_EQ(sets.size(), 1u);
    EXPECT_EQ(sets.front().kid, 2);
    EXPECT_EQ(sets.front().state, store::KeySetState::current);
}

// After kill -9: UEs with a confirmed session resume; a full establishment gets a fresh SQN (the
// reservation was durable before the vector), so a USIM that saw the earlier SQNs accepts it.
TEST_F(HsedPaths, AfterKillNineConfirmedUesResumeAndNoSqnRepeats) {
    const std::string imsi2 = "001010000000002";
    provision({imsi2});
    start();
    UeClient ka(port_, ueSettings(kEasKa, 0x01));
    ASSERT_TRUE(ka.establish()) << log();
    UeClient hse(port_, ueSettings(kEasHse, 0x01), imsi2);
    ASSERT_TRUE(hse.establish()) << log();
    ue::Output out;
    const std::uint8_t payload[] = {1};
    ASSERT_TRUE(hse.engine().sendUplink(payload, ue::UeTime::now(), out));
    hse.peer().send(out.datagrams.at(0));  // confirms (A9)
    ASSERT_TRUE(readSink());
    ASSERT_TRUE(waitLog(std::string("of IMSI ") + kImsi + " is current (durable)")) << log();
    ASSERT_TRUE(waitLog("of IMSI " + imsi2 + " is current (durable)")) << log();
    rememberSets(ka);
    rememberSets(hse);
    for (UeClient* u : {&ka, &hse})
        ASSERT_NO_FATAL_FAILURE(endSession(*u));
    const std::vector<std::uint64_t> seen(ka.usim().sqnArray().seqs().begin(),
                                          ka.usim().sqnArray().seqs().end());
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    DaemonOptions again;
    again.port = port_;
    start(again);
    for (UeClient* u : {&ka, &hse}) {
        ASSERT_TRUE(u->establish()) << log();
        EXPECT_TRUE(u->last<ue::SessionEstablished>()->info.resumed);
    }
    // A second UE of the first subscriber whose USIM has seen every SQN the first one saw.
    UeClient fresh(port_, ueSettings(kEasHse, 0x01));
    ASSERT_TRUE(fresh.usim().sqnArray().setSeqs(seen));
    ASSERT_TRUE(fresh.establish()) << log();
    rememberSets(fresh);
    EXPECT_FALSE(fresh.has<ue::SyncFailureReported>()) << log();
    EXPECT_FALSE(fresh.last<ue::SessionEstablished>()->info.resumed);
    std::uint64_t before = 0, after = 0;
    for (auto s : seen)
        before = std::max(before, s);
    for (auto s : fresh.usim().sqnArray().seqs())
        after = std::max(after, s);
    EXPECT_GT(after, before);
}

}  // namespace
}  // namespace best::itest
