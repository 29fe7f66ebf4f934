// best-hsed end to end: a real daemon process per test, UEs from src/ue on loopback.
#include <gtest/gtest.h>

#include "hsed_fixture.h"

namespace best::itest {
namespace {

using emsdp::Cause;

class Hsed : public HsedFixture {
protected:
    // `ue` establishes, its key set becomes durable, it ends the session and resumes; `request`
    // is the resumption request it sent. Call through ASSERT_NO_FATAL_FAILURE.
    void establishEndAndResume(UeClient& ue, Bytes& request) {
        ASSERT_TRUE(ue.establish()) << log();
        ASSERT_TRUE(ue.pump([&] { return log().find("(durable)") != std::string::npos; })) << log();
        ASSERT_NO_FATAL_FAILURE(endSession(ue));
        const std::size_t sentBefore = ue.sent().size();
        ASSERT_TRUE(ue.establish()) << log();
        EXPECT_TRUE(ue.last<ue::SessionEstablished>()->info.resumed);
        ASSERT_GT(ue.sent().size(), sentBefore);
        request = ue.sent()[sentBefore];
    }
};

TEST_F(Hsed, FullUmtsEstablishmentUplinkAndDownlink) {
    start();
    UeClient ue(port_, ueSettings(kEasHse, 0x01));
    ASSERT_TRUE(ue.establish()) << log();
    const auto info = ue.last<ue::SessionEstablished>()->info;
    EXPECT_EQ(info.keyAgreement, crypto::KeyAgreement::umts);
    EXPECT_EQ(info.service, emsdp::Service::upIntegrity);
    EXPECT_FALSE(info.resumed);
    const std::string msg = "uplink payload";
    ue::Output out;
    ASSERT_TRUE(ue.engine().sendUplink(
        ByteView(reinterpret_cast<const std::uint8_t*>(msg.data()), msg.size()), ue::UeTime::now(),
        out));
    for (auto& d : out.datagrams)
        ue.peer().send(d);
    auto frame = readSink();
    ASSERT_TRUE(frame);
    EXPECT_EQ(sinkSessionId(*frame), info.sessionId);
    EXPECT_EQ(std::string(frame->begin() + 4, frame->end()), msg);
    injectDownlink(info.sessionId, "downlink payload");
    ASSERT_TRUE(ue.pump([&] { return ue.has<ue::DownlinkReceived>(); }));
    const auto& p = ue.last<ue::DownlinkReceived>()->payload;
    EXPECT_EQ(std::string(p.begin(), p.end()), "downlink payload");
    EXPECT_TRUE(stopAndFindInLog("confirmed"));
}

TEST_F(Hsed, EpsAnd5GAndConfidentiality) {
    start();
    {
        UeClient ue(port_, ueSettings(kEasHse, 0x07));
        ASSERT_TRUE(ue.establish()) << log();
        EXPECT_EQ(ue.last<ue::SessionEstablished>()->info.keyAgreement,
                  crypto::KeyAgreement::fiveG);
    }
    {
        UeClient ue(port_, ueSettings(kEasHse, 0x03, 0x03));
        ASSERT_TRUE(ue.establish()) << log();
        const auto info = ue.last<ue::SessionEstablished>()->info;
        EXPECT_EQ(info.keyAgreement, crypto::KeyAgreement::eps);
        EXPECT_EQ(info.service, emsdp::Service::upConfidentiality);
        EXPECT_EQ(info.cipheringAlg, 0x02);
        ue::Output out;
        const std::string msg = "secret uplink";
        ASSERT_TRUE(ue.engine().sendUplink(
            ByteView(reinterpret_cast<const std::uint8_t*>(msg.data()), msg.size()),
            ue::UeTime::now(), out));
        ASSERT_EQ(out.datagrams.size(), 1u);
        // Ciphered on the wire.
        EXPECT_EQ(std::string(out.datagrams[0].begin(), out.datagrams[0].end()).find(msg),
                  std::string::npos);
        ue.peer().send(out.datagrams[0]);
        auto frame = readSink();
        ASSERT_TRUE(frame);
        EXPECT_EQ(std::string(frame->begin() + 4, frame->end()), msg);
        injectDownlink(info.sessionId, "ciphered downlink");
        ASSERT_TRUE(ue.pump([&] { return ue.has<ue::DownlinkReceived>(); }));
        const auto& p = ue.last<ue::DownlinkReceived>()->payload;
        EXPECT_EQ(std::string(p.begin(), p.end()), "ciphered downlink");
    }
}

TEST_F(Hsed, KaOnlyConfirmationStoresKeySetAndRaisesEasKeyEvent) {
    start();
    UeClient ue(port_, ueSettings(kEasKa, 0x01));
    ASSERT_TRUE(ue.establish()) << log();
    EXPECT_TRUE(ue.last<ue::SessionEstablished>()->info.confirmationRequired);
    EXPECT_EQ(ue.last<ue::SessionEstablished>()->info.service, emsdp::Service::kaOnly);
    ASSERT_TRUE(ue.pump([&] { return log().find("eas-key-available") != std::string::npos; }))
        << log();
    stop();
    const auto sets = keySets();
    ASSERT_EQ(sets.size(), 1u);
    EXPECT_EQ(sets.front().state, store::KeySetState::current);
    ASSERT_EQ(sets.front().easKeys.size(), 1u);
    EXPECT_EQ(sets.front().easKeys.front().type, store::EasKeyType::kIntEasPsk);
}

TEST_F(Hsed, ResumptionAfterConfirmationAndReplayRefused) {
    start();
    UeClient ue(port_, ueSettings(kEasKa, 0x01));
    Bytes resumptionRequest;
    ASSERT_NO_FATAL_FAILURE(establishEndAndResume(ue, resumptionRequest));
    // The same request again, after its session is confirmed: the nonce is not fresh.
    UdpPeer p(port_);
    EXPECT_EQ(causeOf(p, resumptionRequest), Cause::key_set_invalid);
    // A resumption with a key set the HSE does not hold (KID 6).
    emsdp::SessionRequest r;
    r.imsi = *emsdp::Imsi::fromDigits(kImsi);
    r.ueConfiguration = emsdp::UeConfiguration{17, 0x01, 0x02, 0x04, 0x04};
    r.easId = kEasKa;
    r.ueNonce = 99;
    crypto::Eia2 eia(Key128{});
    Bytes buf(1280);
    auto n = emsdp::encodeResumptionRequest(r, 6, eia, buf);
    ASSERT_TRUE(n);
    buf.resize(*n);
    EXPECT_EQ(causeOf(p, buf), Cause::key_set_invalid);
}

TEST_F(Hsed, ResumptionNonceIsDurableAcrossRestart) {
    start();
    UeClient ue(port_, ueSettings(kEasKa, 0x01));
    Bytes resumptionRequest;
    ASSERT_NO_FATAL_FAILURE(establishEndAndResume(ue, resumptionRequest));
    // kill -9: the nonce high-water mark was durable before the Session Start went out (A21).
    ::kill(pid_, SIGKILL);
    int st = 0;
    ::waitpid(pid_, &st, 0);
    pid_ = -1;
    start();
    UdpPeer p(port_);
    EXPECT_EQ(causeOf(p, resumptionRequest), Cause::key_set_invalid);
}

TEST_F(Hsed, SessionRequestRejectCauses) {
    provision({"001010000000002", "001010000000003"});
    start(
        {"  rate_limits:\n    per_source: {rate: 1000, burst: 1000}\n"
         "    per_imsi: {rate: 0.001, burst: 2}\n    backoff: 42\n"});
    UdpPeer p(port_);
    EXPECT_EQ(causeOf(p, requestOctets("001019999999999", kEasHse, 1)), Cause::unknown_subscriber);
    EXPECT_EQ(causeOf(p, requestOctets(kImsi, "eas-unknown", 2)), Cause::eas_not_allowed);
    EXPECT_EQ(causeOf(p, requestOctets(kImsi, kEasOther, 3)), Cause::eas_not_allowed);
    // The IMSI bucket (burst 2) is used up: congestion with Back-off.
    std::optional<std::uint16_t> backOff;
    EXPECT_EQ(causeOf(p, requestOctets(kImsi, kEasE2e, 4), &backOff), Cause::congestion);
    ASSERT_TRUE(backOff);
    EXPECT_EQ(*backOff, 42);
    const std::string other = "001010000000002";
    EXPECT_EQ(causeOf(p, requestOctets(other, kEasE2e, 5)), Cause::service_not_allowed);
    EXPECT_EQ(causeOf(p, requestOctets(other, kEasHse, 6, {14, 0x01, 0x02, 0x04, 0x04})),
              Cause::unsupported_release);
    // EPS only, without a Serving network TLV: no candidate key agreement (A5).
    EXPECT_EQ(causeOf(p, requestOctets("001010000000003", kEasHse, 7, {17, 0x02, 0x02, 0x04, 0x04},
                                       std::nullopt)),
              Cause::no_common_algorithm);
}

TEST_F(Hsed, IdenticalSessionRequestAnsweredFromCache) {
    start({"  rate_limits:\n    per_imsi: {rate: 0.001, burst: 1}\n"});
    UdpPeer p(port_);
    const Bytes req = requestOctets(kImsi, kEasHse, 12345);
    p.send(req);
    auto first = p.receive(5000);
    ASSERT_TRUE(first) << log();
    ASSERT_FALSE(emsdp::parseUnprotectedReject(*first)) << "rejected";
    // Identical octets, no new vector, not counted by the rate limit (burst 1).
    p.send(req);
    auto second = p.receive(5000);
    ASSERT_TRUE(second);
    EXPECT_EQ(*first, *second);
    // A different request from the same IMSI is over the limit.
    std::optional<std::uint16_t> backOff;
    EXPECT_EQ(causeOf(p, requestOctets(kImsi, kEasHse, 777), &backOff), Cause::congestion);
}

TEST_F(Hsed, DropsAreCountedByName) {
    start();
    UdpPeer p(port_);
    const std::uint8_t shortOne[] = {0x00, 0x01};
    p.send(shortOne);
    // UP datagram for a session that does not exist.
    Bytes up{0x88, 0x12, 0x34, 0x56, 0x78, 0x00, 'x', 0, 0, 0, 0};
    p.send(up);
    // A tampered MAC inside a live session.
    UeClient ue(port_, ueSettings(kEasHse, 0x01));
    ASSERT_TRUE(ue.establish()) << log();
    ue::Output out;
    const std::uint8_t payload[] = {1, 2, 3};
    ASSERT_TRUE(ue.engine().sendUplink(payload, ue::UeTime::now(), out));
    Bytes bad = out.datagrams.at(0);
    bad.back() ^= 0x01;
    ue.peer().send(bad);
    ASSERT_TRUE(ue.pump([&] { return log().find("drop bad_mac") != std::string::npos; }, 5000));
    stop();
    const std::string l = log();
    EXPECT_NE(l.find("drop truncated_header"), std::string::npos) << l;
    EXPECT_NE(l.find("drop unknown_session"), std::string::npos) << l;
    EXPECT_NE(l.find("bad_mac=1"), std::string::npos) << l;
}

TEST_F(Hsed, SyncFailureFromAnotherAddressOrWithBadMacSIsDropped) {
    start();
    UdpPeer a(port_);
    a.send(requestOctets(kImsi, kEasHse, 4242));
    auto start = a.receive(5000);
    ASSERT_TRUE(start) << log();
    auto r = emsdp::route(*start, emsdp::Side::ue);
    ASSERT_TRUE(r);
    const std::uint32_t sid = r->prefix.sessionId;
    ASSERT_NE(sid, 0u);
    emsdp::MessageReject rej;
    rej.cause = Cause::synch_failure;
    rej.auts = crypto::Auts{};
    Bytes buf(64);
    auto n = emsdp::encodeUnprotectedReject(sid, rej, buf);
    ASSERT_TRUE(n);
    buf.resize(*n);
    UdpPeer b(port_);
    b.send(buf);  // A14: only from the Session Request's source address
    a.send(buf);  // right address, AUTS with a wrong MAC-S
    UeClient waiter(port_, ueSettings(kEasHse));
    ASSERT_TRUE(
        waiter.pump([&] { return log().find("drop bad_mac_s") != std::string::npos; }, 5000))
        << log();
    EXPECT_NE(log().find("drop wrong_source_address"), std::string::npos) << log();
    // The attempt is still alive: an identical request gets the same Session Start.
    a.send(requestOctets(kImsi, kEasHse, 4242));
    auto again = a.receive(5000);
    ASSERT_TRUE(again);
    EXPECT_EQ(*again, *start);
}

TEST_F(Hsed, UnknownCommandWithGoodMacGetsMacdReject0x02) {
    start();
    UeClient ue(port_, ueSettings(kEasHse, 0x01));
    ASSERT_TRUE(ue.establish()) << log();
    const auto info = ue.last<ue::SessionEstablished>()->info;
    const auto& set = *ue.engine().state().current;
    ASSERT_TRUE(ue.engine().state().lastNonce);
    // The UE's CP integrity key, derived as the profile says, and CP-UL COUNT 0 (unused so far).
    auto ksess = crypto::deriveKSess(set.kint, info.sessionId, *ue.engine().state().lastNonce);
    ASSERT_TRUE(ksess);
    auto cpInt = crypto::deriveSessionKey(*ksess, crypto::KeyDistinguisher::cpInt, 0x02);
    ASSERT_TRUE(cpInt);
    emsdp::Header h;
    h.kid = info.kid;
    h.sessionId = info.sessionId;
    h.scheme = info.cpScheme;
    h.setCount(0);
    Bytes d(h.size());
    ASSERT_TRUE(emsdp::encodeHeader(h, d));
    d.push_back(0x55);  // no such command
    crypto::Eia2 eia(*cpInt);
    auto mac = eia.mac(0, 0, 0, d);
    ASSERT_TRUE(mac);
    for (int shift = 24; shift >= 0; shift -= 8)
        d.push_back(static_cast<std::uint8_t>(*mac >> shift));
    ue.peer().send(d);
    auto answer = ue.peer().receive(5000);
    ASSERT_TRUE(answer) << log();
    auto r = emsdp::route(*answer, emsdp::Side::ue);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->prefix.kid, info.kid);  // MAC'd, inside the session
    EXPECT_EQ(r->prefix.sessionId, info.sessionId);
    EXPECT_NE(log().find("reject unknown_command"), std::string::npos) << log();
}

TEST_F(Hsed, TerminationByTheUe) {
    start();
    UeClient ue(port_, ueSettings(kEasHse, 0x01));
    ASSERT_TRUE(ue.establish()) << log();
    ue::Output out;
    ASSERT_TRUE(ue.engine().terminate(ue::UeTime::now(), out));
    for (auto& d : out.datagrams)
        ue.peer().send(d);
    ASSERT_TRUE(ue.pump([&] { return ue.has<ue::SessionTerminated>(); })) << log();
    EXPECT_TRUE(ue.last<ue::SessionTerminated>()->answered);
}

TEST_F(Hsed, IdleSessionTerminatedByTheHse) {
    start({"  session_timeouts:\n    idle: 1\n"});
    UeClient ue(port_, ueSettings(kEasHse, 0x01));
    ASSERT_TRUE(ue.establish()) << log();
    ue::Output out;
    const std::uint8_t payload[] = {9};
    ASSERT_TRUE(ue.engine().sendUplink(payload, ue::UeTime::now(), out));
    ue.peer().send(out.datagrams.at(0));
    ASSERT_TRUE(readSink());
    ASSERT_TRUE(ue.pump([&] { return ue.has<ue::SessionTerminated>(); }, 6000)) << log();
    EXPECT_EQ(ue.last<ue::SessionTerminated>()->initiator, ue::Party::hse);
    ASSERT_TRUE(
        ue.pump([&] { return log().find("termination answered") != std::string::npos; }, 3000))
        << log();
}

TEST_F(Hsed, UnconfirmedSessionExpires) {
    start({"  session_timeouts:\n    unconfirmed: 1\n"});
    UdpPeer p(port_);
    p.send(requestOctets(kImsi, kEasHse, 5));
    ASSERT_TRUE(p.receive(5000));
    std::this_thread::sleep_for(std::chrono::milliseconds(2600));
    EXPECT_NE(log().find("expired"), std::string::npos) << log();
}

TEST_F(Hsed, SyncFailureResynchronisesWithSameSession) {
    start();
    UeClient ue(port_, ueSettings(kEasHse, 0x01));
    // The USIM has seen SEQ 5000: the HSE's first vector (SEQ 1) is stale.
    ASSERT_TRUE(ue.usim().sqnArray().setSeq(0, 5000));
    ASSERT_TRUE(ue.establish()) << log();
    ASSERT_TRUE(ue.has<ue::SyncFailureReported>());
    EXPECT_EQ(ue.last<ue::SyncFailureReported>()->sessionId,
              ue.last<ue::SessionEstablished>()->info.sessionId);
    EXPECT_NE(log().find("SQN resynchronised"), std::string::npos) << log();
    EXPECT_GT(ue.usim().sqnArray().seq(0), 5000u);
}

TEST_F(Hsed, ThirdResyncIsAnsweredWith0x14) {
    start();
    UeClient ue(port_, ueSettings(kEasHse, 0x01));
    // The USIM jumps ahead before every AUTHENTICATE: every vector is stale.
    ue.beforeAka = [](ue::SoftUsim& u) {
        ASSERT_TRUE(u.sqnArray().setSeq(0, u.sqnArray().seq(0) + 1000));
    };
    ASSERT_TRUE(ue.begin());
    ASSERT_TRUE(ue.pump([&] { return ue.has<ue::AttemptEnded>(); }, 15000)) << log();
    const auto* end = ue.last<ue::AttemptEnded>();
    EXPECT_EQ(end->reason, ue::AttemptEnd::rejected);
    ASSERT_TRUE(end->cause);
    EXPECT_EQ(*end->cause, Cause::resync_failed);
    const std::string l = log();
    EXPECT_NE(l.find("SQN resynchronised for IMSI 001010123456789 (3)"), std::string::npos) << l;
}

TEST_F(Hsed, ExpiredKeySetIsRefusedWith0x0D) {
    DaemonOptions opt;
    opt.lifetime = 2;
    start(opt);
    UeClient ue(port_, ueSettings(kEasKa, 0x01));
    ASSERT_TRUE(ue.establish()) << log();
    ASSERT_TRUE(ue.pump([&] { return log().find("(durable)") != std::string::npos; })) << log();
    ASSERT_NO_FATAL_FAILURE(endSession(ue));
    const auto& set = *ue.engine().state().current;
    const std::uint64_t base = set.lastNonce.value_or(0);
    UdpPeer p(port_);
    // Within the lifetime the crafted resumption is answered with a Session Start.
    p.send(resumptionRequest(set, kEasKa, base + 1000));
    auto d = p.receive(5000);
    ASSERT_TRUE(d) << log();
    EXPECT_FALSE(emsdp::parseUnprotectedReject(*d)) << log();
    std::this_thread::sleep_for(std::chrono::milliseconds(2100));
    EXPECT_EQ(causeOf(p, resumptionRequest(set, kEasKa, base + 2000)), Cause::key_set_invalid)
        << log();
}

TEST_F(Hsed, AkaMacFailureForgetsTheAttempt) {
    start();
    UeClient ue(port_, ueSettings(kEasHse, 0x01), kImsi, "000102030405060708090a0b0c0d0e0f");
    ASSERT_TRUE(ue.begin());
    ASSERT_TRUE(ue.pump([&] { return log().find("attempt forgotten") != std::string::npos; }))
        << log();
    ASSERT_TRUE(ue.has<ue::AttemptEnded>());
    EXPECT_EQ(ue.last<ue::AttemptEnded>()->reason, ue::AttemptEnd::akaMacFailure);
    EXPECT_NE(log().find("AKA MAC failure reported"), std::string::npos);
}

TEST_F(Hsed, ListensOnIpv4AndIpv6WithPortsInTheRuntimeFile) {
    DaemonOptions opt;
    opt.ipv6 = true;
    start(opt);
    std::istringstream in(readFile(dir_ + "/ports"));
    std::string word, addr;
    unsigned port4 = 0, port6 = 0;
    ASSERT_TRUE(in >> word >> addr >> port4);
    EXPECT_EQ(addr, "127.0.0.1");
    ASSERT_TRUE(in >> word >> addr >> port6);
    EXPECT_EQ(word, "emsdp");
    EXPECT_EQ(addr, "::1");
    ASSERT_NE(port6, 0u);
    UdpPeer p(static_cast<std::uint16_t>(port6), true);
    p.send(requestOctets(kImsi, kEasHse, 31337));
    auto d = p.receive(5000);
    ASSERT_TRUE(d) << log();
    EXPECT_FALSE(emsdp::parseUnprotectedReject(*d));
    auto r = emsdp::route(*d, emsdp::Side::ue);
    ASSERT_TRUE(r);
    EXPECT_NE(r->prefix.sessionId, 0u);
}

TEST_F(Hsed, NoKeyMaterialInTheLog) {
    start();
    UeClient ue(port_, ueSettings(kEasKa, 0x07));
    ASSERT_TRUE(ue.establish()) << log();
    ASSERT_TRUE(ue.pump([&] { return log().find("(durable)") != std::string::npos; }));
    std::vector<std::string> keys = {kKHex, kOpcHex};
    const auto& state = ue.engine().state();
    ASSERT_TRUE(state.current);
    keys.push_back(toHex(state.current->kint.view()));
    if (auto* e = ue.last<ue::EasKeyAvailable>(); e != nullptr && e->easPsk)
        keys.push_back(toHex(e->easPsk->view()));
    stop();
    const std::string l = log();
    ASSERT_FALSE(l.empty());
    for (const auto& k : keys) {
        EXPECT_EQ(l.find(k), std::string::npos) << k;
        EXPECT_EQ(l.find(k.substr(0, 16)), std::string::npos) << k;
    }
}

}  // namespace
}  // namespace best::itest
