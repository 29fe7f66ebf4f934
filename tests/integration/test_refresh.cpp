// Key refresh end to end (profile 4.4, 4.6, A8, A11-A15, A24): a real best-hsed per test with
// SoftHSM and SQLite, UEs from src/ue (the engine's refresh role) on loopback.
#include <gtest/gtest.h>

#include "hsed_fixture.h"

namespace best::itest {
namespace {

using emsdp::Cause;

constexpr const char* kPolicySessions = "  refresh:\n    after_sessions: 1\n";

template <typename E>
std::size_t eventCount(const UeClient& ue) {
    std::size_t n = 0;
    for (const auto& e : ue.events())
        if (std::holds_alternative<E>(e))
            ++n;
    return n;
}

class Refresh : public HsedFixture {
protected:
    std::uint64_t seqHe() {
        auto st = openStore();
        EXPECT_TRUE(st);
        auto s = (*st)->getSqnState(kImsi);
        EXPECT_TRUE(s);
        return s ? s->seqHe : 0;
    }

    // Waits for a log line while the UE keeps answering.
    bool pumpUntilLog(UeClient& ue, const std::string& what, int ms = 15000) {
        return ue.pump([&] { return log().find(what) != std::string::npos; }, ms);
    }

    // A second speaker for the UE engine's session: the session keys rebuilt from the engine's
    // state (KInt, Session ID, the full request's nonce), so a test can send CP messages the
    // engine never would (a wrong key confirmation, a bad AUTS). The engine must then send no CP.
    std::optional<emsdp::SecureChannel> manualChannel(UeClient& ue) {
        const auto& st = ue.engine().state();
        const auto info = ue.engine().session();
        EXPECT_TRUE(info && st.current && st.current->lastNonce);
        if (!info || !st.current || !st.current->lastNonce)
            return std::nullopt;
        auto ksess = crypto::deriveKSess(st.current->kint, info->sessionId, *st.current->lastNonce);
        EXPECT_TRUE(ksess);
        auto keys = crypto::deriveSessionKeys(*ksess, info->integrityAlg, info->cipheringAlg);
        EXPECT_TRUE(keys);
        if (!keys)
            return std::nullopt;
        auto ch = ueChannel(*info, *keys);
        EXPECT_TRUE(ch);
        if (!ch)
            return std::nullopt;
        return std::move(*ch);
    }

    void sendManual(UeClient& ue, emsdp::SecureChannel& ch, const emsdp::Body& body) {
        Bytes buf(1280);
        auto n = ch.sealCp(body, buf);
        ASSERT_TRUE(n) << n.error().message;
        buf.resize(*n);
        ue.peer().send(buf);
    }

    // The next CP message of type T from the HSE as the manual channel reads it.
    template <typename T>
    std::optional<T> receiveManual(UeClient& ue, emsdp::SecureChannel& ch, int ms = 8000) {
        const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
        while (std::chrono::steady_clock::now() < until) {
            auto d = ue.peer().receive(100);
            if (!d)
                continue;
            auto cp = ch.openCp(*d);
            if (!cp)
                continue;
            if (auto* m = std::get_if<T>(&cp->body))
                return *m;
        }
        return std::nullopt;
    }

    // An HSE-triggered refresh under way (policy kPolicySessions): `ue` establishes, the manual
    // channel `ch` is made, an uplink confirms the session, and `req` is the HSE's Manage Keys
    // Request as `ch` reads it. Call through ASSERT_NO_FATAL_FAILURE.
    void awaitHseRequest(UeClient& ue, std::optional<emsdp::SecureChannel>& ch,
                         std::optional<emsdp::HseManageKeysRequest>& req) {
        ASSERT_TRUE(ue.establish()) << log();
        ch = manualChannel(ue);
        ASSERT_TRUE(ch);
        uplink(ue);
        req = receiveManual<emsdp::HseManageKeysRequest>(ue, *ch);
        ASSERT_TRUE(req) << log();
    }

    // A MAC-valid uplink: confirms a UP session (A9).
    void uplink(UeClient& ue) {
        const std::string msg = "confirm";
        auto r = ue.call([&](ue::UeEngine& e, const ue::UeTime& now, ue::Output& out) {
            return e.sendUplink(
                ByteView(reinterpret_cast<const std::uint8_t*>(msg.data()), msg.size()), now, out);
        });
        ASSERT_TRUE(r) << r.error().message;
    }

    void requestRefresh(UeClient& ue) {
        auto r = ue.call([](ue::UeEngine& e, const ue::UeTime& now, ue::Output& out) {
            return e.requestKeyRefresh(now, out);
        });
        ASSERT_TRUE(r) << r.error().message;
    }

    bool waitRefreshDone(UeClient& ue, int ms = 15000) {
        return ue.pump([&] { return ue.has<ue::RefreshCompleted>(); }, ms);
    }

    // The resumption request a UE holding `state` would send (its current set, with a nonce
    // `nonceStep` above the set's last one), answered by the HSE on a raw socket.
    std::optional<Bytes> resumeRaw(const ue::UeState& state, const std::string& easId,
                                   std::uint64_t nonceStep, std::uint8_t expectKid) {
        ue::UeState s = state;
        EXPECT_TRUE(s.current.has_value());
        if (!s.current)
            return std::nullopt;
        s.pending.reset();
        if (s.current->lastNonce)
            s.current->lastNonce = *s.current->lastNonce + nonceStep;
        auto e = ue::UeEngine::create(ueSettings(easId), kImsi, std::move(s));
        EXPECT_TRUE(e);
        if (!e)
            return std::nullopt;
        ue::Output out;
        EXPECT_TRUE(e->start(ue::UeTime::now(), out));
        EXPECT_EQ(out.datagrams.size(), 1u);
        if (out.datagrams.empty())
            return std::nullopt;
        const Bytes& req = out.datagrams.front();
        EXPECT_EQ((req[0] >> 3) & 0x07, expectKid) << "not a resumption with the old set";
        UdpPeer p(port_);
        p.send(req);
        return p.receive(5000);
    }

    // A daemon with an admin socket (best-hsectl `ue refresh`, `ue show`).
    DaemonOptions withAdmin(const std::string& policy = {}) const {
        DaemonOptions o;
        o.extraPolicy = policy;
        o.extraConfig = "admin:\n  socket: " + adminPath() + "\n";
        return o;
    }

    // best-hsectl told the admin socket only; stdout and stderr.
    testing::CommandResult hsectl(const std::string& args) {
        const char* exe = std::getenv("BEST_HSECTL");
        if (exe == nullptr)
            return {-1, "BEST_HSECTL not set"};
        return testing::runCommand(std::string(exe) + " --admin-socket " + adminPath() + " " +
                                   args);
    }

    // After a refresh to `newKid`: a resumption with the new set, confirmed; then the old set
    // (from `old`) is refused with 0x0D (A24), and only the new set is stored.
    void resumeWithNewSetAndRefuseOld(UeClient& ue, const ue::UeState& old, std::uint8_t newKid,
                                      const std::string& easId, bool up) {
        const std::uint8_t oldKid = old.current->kid;
        std::optional<store::WrappedBlob> oldKint;
        for (const auto& s : keySets())
            if (s.kid == oldKid)
                oldKint = s.kInt;
        ASSERT_TRUE(oldKint);
        // A24: until a session with the new set is confirmed, the old set stays usable.
        auto early = resumeRaw(old, easId, 10, oldKid);
        ASSERT_TRUE(early);
        EXPECT_FALSE(emsdp::parseUnprotectedReject(*early)) << "old set refused too early";
        EXPECT_EQ(((*early)[0] >> 3) & 0x07, oldKid);
        ASSERT_NO_FATAL_FAILURE(endSession(ue));
        ASSERT_TRUE(ue.establish()) << log();
        const auto info = ue.last<ue::SessionEstablished>()->info;
        EXPECT_TRUE(info.resumed);
        EXPECT_EQ(info.kid, newKid);
        if (up)
            uplink(ue);
        ASSERT_TRUE(pumpUntilLog(
            ue, "pending key set " + std::to_string(newKid) + " of IMSI " + kImsi + " is current"))
            << log();
        auto late = resumeRaw(old, easId, 20, oldKid);
        ASSERT_TRUE(late);
        auto rej = emsdp::parseUnprotectedReject(*late);
        ASSERT_TRUE(rej) << "the old set still resumes";
        EXPECT_EQ(rej->body.cause, Cause::key_set_invalid);
        bool sawNew = false;
        for (const auto& s : keySets()) {
            EXPECT_NE(s.kInt, *oldKint) << "the old set is still stored";
            if (s.kid == newKid) {
                sawNew = true;
                EXPECT_EQ(s.state, store::KeySetState::current);
            }
        }
        EXPECT_TRUE(sawNew);
    }
};

TEST_F(Refresh, UeTriggeredKaOnlyThenNewSetResumesAndOldIsRefused) {
    start();
    UeClient ue(port_, ueSettings(kEasKa));
    ASSERT_TRUE(ue.establish()) << log();
    ASSERT_TRUE(waitLog("is current (durable)")) << log();
    const ue::UeState old = ue.engine().state();
    ASSERT_TRUE(old.current);
    ASSERT_EQ(old.current->kid, 1);
    requestRefresh(ue);
    ASSERT_TRUE(waitRefreshDone(ue)) << log();
    EXPECT_EQ(ue.last<ue::RefreshCompleted>()->newKid, 2);
    EXPECT_EQ(ue.last<ue::RefreshCompleted>()->origin, emsdp::RefreshOrigin::ue);
    EXPECT_FALSE(ue.has<ue::RefreshFailed>());
    // Stored before the Response was sent, with its own KInt_EAS_PSK (KA-only) and no nonce.
    auto sets = keySets();
    ASSERT_EQ(sets.size(), 2u);
    EXPECT_EQ(sets[0].kid, 1);
    EXPECT_EQ(sets[0].state, store::KeySetState::current);
    EXPECT_EQ(sets[1].kid, 2);
    EXPECT_EQ(sets[1].state, store::KeySetState::pending);
    EXPECT_EQ(sets[1].lifetimeSeconds, sets[0].lifetimeSeconds);  // A11
    EXPECT_GE(sets[1].createdAt, sets[0].createdAt);
    EXPECT_FALSE(sets[1].highestNonce);  // A10
    EXPECT_EQ(sets[1].keyAgreement, sets[0].keyAgreement);
    EXPECT_NE(sets[1].kInt, sets[0].kInt);
    ASSERT_EQ(sets[1].easKeys.size(), 1u);
    EXPECT_EQ(sets[1].easKeys[0].type, store::EasKeyType::kIntEasPsk);
    EXPECT_NE(sets[1].easKeys[0].identifier, sets[0].easKeys.at(0).identifier);
    EXPECT_NE(log().find(std::string("event pending-key-set-stored IMSI ") + kImsi +
                         " KID 2 EAS eas-ka origin ue"),
              std::string::npos)
        << log();
    // No key material of either set in the log (KInt, KInt_EAS_PSK as the UE holds them).
    ASSERT_TRUE(ue.engine().state().pending);
    std::vector<std::string> keys{toHex(old.current->kint.view()),
                                  toHex(ue.engine().state().pending->kint.view())};
    for (const auto& e : ue.events())
        if (auto* k = std::get_if<ue::EasKeyAvailable>(&e); k && k->easPsk)
            keys.push_back(toHex(k->easPsk->view()));
    EXPECT_GE(keys.size(), 3u);
    resumeWithNewSetAndRefuseOld(ue, old, 2, kEasKa, false);
    EXPECT_TRUE(stopAndFindInLog("refreshes: ue.completed=1 resyncs=0"));
    const std::string l = log();
    for (const auto& k : keys) {
        EXPECT_EQ(l.find(k), std::string::npos) << "key material in the log";
        EXPECT_EQ(l.find(k.substr(0, 16)), std::string::npos) << "key material in the log";
    }
}

TEST_F(Refresh, HseTriggeredBySessionsPerKeySet) {
    start(withPolicy(kPolicySessions));
    UeClient ue(port_, ueSettings(kEasHse));
    ASSERT_TRUE(ue.establish()) << log();
    const ue::UeState old = ue.engine().state();
    EXPECT_FALSE(ue.has<ue::RefreshCompleted>());
    uplink(ue);  // confirms: 1 session with set 1, the policy is due
    ASSERT_TRUE(waitRefreshDone(ue)) << log();
    EXPECT_EQ(ue.last<ue::RefreshCompleted>()->newKid, 2);
    EXPECT_EQ(ue.last<ue::RefreshCompleted>()->origin, emsdp::RefreshOrigin::hse);
    ASSERT_TRUE(waitLog(std::string("event pending-key-set-stored IMSI ") + kImsi +
                        " KID 2 EAS eas-hse origin hse"))
        << log();
    EXPECT_NE(log().find("refresh policy due for IMSI 001010123456789 KID 1 (age "),
              std::string::npos);
    auto sets = keySets();
    ASSERT_EQ(sets.size(), 2u);
    EXPECT_EQ(sets[1].kid, 2);
    EXPECT_EQ(sets[1].state, store::KeySetState::pending);
    EXPECT_TRUE(sets[1].easKeys.empty());  // UE-to-HSE: no EAS key
    resumeWithNewSetAndRefuseOld(ue, old, 2, kEasHse, true);
    EXPECT_TRUE(stopAndFindInLog("hse.completed="));
}

// Operator-triggered (issue 7): `best-hsectl ue refresh` through the admin socket starts an
// HSE-triggered refresh (origin hse) in the confirmed session; a second one while it is
// outstanding is refused; the UE's key confirmation stores the pending set, `ue show` lists it
// (no key material); the new set resumes and the old one is refused after the confirmation.
TEST_F(Refresh, AdminCommandTriggeredThenNewSetResumesAndOldIsRefused) {
    start(withAdmin());
    UeClient ue(port_, ueSettings(kEasHse));
    ASSERT_TRUE(ue.establish()) << log();
    uplink(ue);
    ASSERT_TRUE(waitLog("is current (durable)")) << log();
    const ue::UeState old = ue.engine().state();
    ASSERT_TRUE(old.current);
    ASSERT_EQ(old.current->kid, 1);
    ASSERT_TRUE(ue.engine().session());
    const std::uint32_t sid = ue.engine().session()->sessionId;
    const std::string imsi = kImsi;

    auto r = hsectl("ue refresh --imsi " + imsi);
    ASSERT_EQ(r.status, 0) << r.output << log();
    EXPECT_EQ(r.output,
              "key refresh of IMSI " + imsi + " started in session " + std::to_string(sid) + "\n");
    // The UE is not pumped: the HSE's Manage Keys Request waits unanswered in its socket.
    r = hsectl("ue refresh --imsi " + imsi);
    EXPECT_EQ(r.status, 4) << r.output;
    EXPECT_EQ(r.output, "best-hsectl ue refresh: no key refresh for IMSI " + imsi +
                            ": refresh already in progress\n");
    r = hsectl("ue show --imsi " + imsi);
    EXPECT_EQ(r.status, 0) << r.output;
    EXPECT_NE(r.output.find("refresh in progress: hse (HSE flow)"), std::string::npos) << r.output;
    EXPECT_EQ(keySets().size(), 1u);  // an HSE flow stores nothing before the confirmation
    EXPECT_EQ(log().find("event pending-key-set-stored"), std::string::npos) << log();

    // The UE engine answers with its key confirmation; the HSE stores the pending set.
    ASSERT_TRUE(waitRefreshDone(ue)) << log();
    EXPECT_FALSE(ue.has<ue::RefreshFailed>());
    EXPECT_EQ(ue.last<ue::RefreshCompleted>()->newKid, 2);
    EXPECT_EQ(ue.last<ue::RefreshCompleted>()->origin, emsdp::RefreshOrigin::hse);
    ASSERT_TRUE(
        waitLog("event pending-key-set-stored IMSI " + imsi + " KID 2 EAS eas-hse origin hse"))
        << log();
    EXPECT_EQ(countOf(log(), "event pending-key-set-stored"), 1u) << log();
    EXPECT_NE(log().find("HSE-triggered refresh for IMSI " + imsi + " (origin hse) in session " +
                         std::to_string(sid)),
              std::string::npos)
        << log();
    auto sets = keySets();
    ASSERT_EQ(sets.size(), 2u);
    EXPECT_EQ(sets[0].kid, 1);
    EXPECT_EQ(sets[0].state, store::KeySetState::current);
    EXPECT_EQ(sets[1].kid, 2);
    EXPECT_EQ(sets[1].state, store::KeySetState::pending);
    EXPECT_TRUE(sets[1].easKeys.empty());  // UE-to-HSE: no EAS key
    EXPECT_NE(sets[1].kInt, sets[0].kInt);

    r = hsectl("ue show --imsi " + imsi);
    ASSERT_EQ(r.status, 0) << r.output;
    EXPECT_NE(r.output.find("key sets: 2\n"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("  KID 1  current "), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("  KID 2  pending "), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("refresh in progress: none\n"), std::string::npos) << r.output;
    // No key material: neither KInt as the UE holds it, nor the stored (wrapped) blobs.
    ASSERT_TRUE(ue.engine().state().pending);
    const std::vector<std::string> keys{toHex(old.current->kint.view()),
                                        toHex(ue.engine().state().pending->kint.view())};
    for (const auto& k : keys) {
        EXPECT_EQ(r.output.find(k.substr(0, 16)), std::string::npos) << "key material shown";
        EXPECT_EQ(log().find(k.substr(0, 16)), std::string::npos) << "key material in the log";
    }
    for (const auto& s : sets) {
        const std::string blob = toHex(s.kInt.data);
        ASSERT_GE(blob.size(), 16u);
        EXPECT_EQ(r.output.find(blob.substr(0, 16)), std::string::npos) << "key blob shown";
    }

    // The new set resumes and is confirmed; then the old set gets 0x0D.
    resumeWithNewSetAndRefuseOld(ue, old, 2, kEasHse, true);
    r = hsectl("ue show --imsi " + imsi);
    ASSERT_EQ(r.status, 0) << r.output;
    EXPECT_NE(r.output.find("key sets: 1\n"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("  KID 2  current "), std::string::npos) << r.output;
    EXPECT_TRUE(stopAndFindInLog("refreshes: hse.completed=1 resyncs=0"));
}

// A8: no HSE-triggered refresh for a UE whose key sets are not storable, operator or not.
TEST_F(Refresh, AdminRefreshIsRefusedWhenKeySetsAreNotStorable) {
    start(withAdmin());
    UeClient ue(port_, ueSettings(kEasHse, 0x01, 0x00));  // A8: flag clear
    ASSERT_TRUE(ue.establish()) << log();
    uplink(ue);
    ASSERT_TRUE(waitLog("is current (durable)")) << log();
    ASSERT_EQ(keySets().size(), 1u);
    auto r = hsectl(std::string("ue refresh --imsi ") + kImsi);
    EXPECT_EQ(r.status, 4) << r.output;
    EXPECT_EQ(r.output, std::string("best-hsectl ue refresh: no key refresh for IMSI ") + kImsi +
                            ": key sets not storable\n");
    // Nothing was started: no request reaches the UE, nothing is stored.
    ue.pump([] { return false; }, 1500);
    EXPECT_FALSE(ue.has<ue::RefreshCompleted>());
    EXPECT_FALSE(ue.has<ue::RefreshFailed>());
    EXPECT_EQ(log().find("HSE-triggered refresh"), std::string::npos) << log();
    EXPECT_EQ(keySets().size(), 1u);
    r = hsectl(std::string("ue show --imsi ") + kImsi);
    EXPECT_EQ(r.status, 0) << r.output;
    EXPECT_NE(r.output.find("refresh in progress: none\n"), std::string::npos) << r.output;
    EXPECT_TRUE(stopAndFindInLog("refreshes: none resyncs=0"));
}

TEST_F(Refresh, HseTriggeredByKeySetAge) {
    start(withPolicy("  refresh:\n    after_seconds: 2\n"));
    UeClient ue(port_, ueSettings(kEasHse));
    ASSERT_TRUE(ue.establish()) << log();
    const auto established = std::chrono::steady_clock::now();
    const ue::UeState old = ue.engine().state();
    uplink(ue);
    // Younger than 2 s at confirmation: no refresh.
    ASSERT_TRUE(waitLog("confirmed")) << log();
    ue.pump([] { return false; }, 500);
    EXPECT_FALSE(ue.has<ue::RefreshCompleted>());
    EXPECT_EQ(log().find("refresh policy due"), std::string::npos);
    ASSERT_NO_FATAL_FAILURE(endSession(ue));
    std::this_thread::sleep_until(established + std::chrono::milliseconds(2500));
    ASSERT_TRUE(ue.establish()) << log();
    EXPECT_TRUE(ue.last<ue::SessionEstablished>()->info.resumed);
    uplink(ue);  // the resumed session is confirmed with a set older than 2 s
    ASSERT_TRUE(waitRefreshDone(ue)) << log();
    EXPECT_EQ(ue.last<ue::RefreshCompleted>()->origin, emsdp::RefreshOrigin::hse);
    EXPECT_EQ(ue.last<ue::RefreshCompleted>()->newKid, 2);
    ASSERT_TRUE(waitLog("KID 2 EAS eas-hse origin hse")) << log();
    // `old` has the full request's nonce; the resumption above used one more.
    ue::UeState oldAfterResume = ue.engine().state();
    oldAfterResume.pending.reset();
    resumeWithNewSetAndRefuseOld(ue, oldAfterResume, 2, kEasHse, true);
    EXPECT_TRUE(stopAndFindInLog("refreshes: hse.completed=1 resyncs=0"));
}

TEST_F(Refresh, NoHseRefreshWhenKeySetsAreNotStorableButUeRequestsAreServed) {
    start(withPolicy(kPolicySessions));
    UeClient ue(port_, ueSettings(kEasHse, 0x01, 0x00));  // A8: flag clear
    ASSERT_TRUE(ue.establish()) << log();
    uplink(ue);
    ASSERT_TRUE(waitLog("confirmed")) << log();
    auto ch = manualChannel(ue);
    ASSERT_TRUE(ch);
    // No HSE request arrives.
    EXPECT_FALSE(receiveManual<emsdp::HseManageKeysRequest>(ue, *ch, 1500));
    EXPECT_EQ(log().find("HSE-triggered refresh"), std::string::npos) << log();
    // A8: the UE's own request is still served.
    sendManual(ue, *ch, emsdp::UeManageKeysRequest{});
    auto answer = receiveManual<emsdp::HseManageKeysResponse>(ue, *ch);
    ASSERT_TRUE(answer) << log();
    EXPECT_EQ(answer->newKeyId, 2);
    ASSERT_TRUE(waitLog("event pending-key-set-stored")) << log();
    EXPECT_EQ(keySets().size(), 2u);
    sendManual(ue, *ch, emsdp::SessionTerminateRequest{});
    ASSERT_TRUE(receiveManual<emsdp::SessionTerminateResponse>(ue, *ch)) << log();
    stop();
    EXPECT_EQ(log().find("HSE-triggered refresh"), std::string::npos) << log();
    EXPECT_NE(log().find("refreshes: ue.completed=1 resyncs=0"), std::string::npos) << log();
}

TEST_F(Refresh, UeTriggeredSyncFailureResynchronisesAndRefreshesWithOriginUe) {
    start();
    UeClient ue(port_, ueSettings(kEasHse));
    ASSERT_TRUE(ue.establish()) << log();
    uplink(ue);
    int akas = 0;
    // The refresh's vector (SEQ 2) is stale for a USIM that has seen SEQ 5000.
    ue.beforeAka = [&akas](ue::SoftUsim& u) {
        if (++akas == 1) {
            ASSERT_TRUE(u.sqnArray().setSeq(0, 5000));
        }
    };
    requestRefresh(ue);
    ASSERT_TRUE(waitRefreshDone(ue)) << log();
    ASSERT_NE(ue.last<ue::RefreshFailed>(), nullptr);
    EXPECT_EQ(ue.last<ue::RefreshFailed>()->reason, ue::RefreshFailure::syncFailure);
    EXPECT_EQ(ue.last<ue::RefreshFailed>()->origin, emsdp::RefreshOrigin::ue);
    // The HSE-triggered refresh that follows carries Refresh origin UE.
    EXPECT_EQ(ue.last<ue::RefreshCompleted>()->origin, emsdp::RefreshOrigin::ue);
    EXPECT_EQ(akas, 2);
    EXPECT_GT(ue.usim().sqnArray().seq(0), 5000u);
    EXPECT_GE(seqHe(), 5001u);
    const std::uint8_t newKid = ue.last<ue::RefreshCompleted>()->newKid;
    // Two pending sets stored with origin ue: the UE flow's (then discarded) and the new one.
    const std::string event = "event pending-key-set-stored IMSI " + std::string(kImsi) + " KID " +
                              std::to_string(newKid) + " EAS eas-hse origin ue";
    ASSERT_TRUE(ue.pump([&] { return countOf(log(), event) == 2; })) << log();
    auto sets = keySets();
    ASSERT_EQ(sets.size(), 2u);  // the first pending set was discarded, the new one stored
    EXPECT_EQ(sets[1].kid, newKid);
    EXPECT_EQ(sets[1].state, store::KeySetState::pending);
    EXPECT_NE(log().find("ended: sync_failure (Reject 0x0B)"), std::string::npos) << log();
    EXPECT_TRUE(stopAndFindInLog("refreshes: ue.completed=1 ue.sync_failure=1 resyncs=1"));
}

TEST_F(Refresh, HseTriggeredSyncFailureResynchronisesAndResends) {
    start(withPolicy(kPolicySessions));
    UeClient ue(port_, ueSettings(kEasHse));
    int akas = 0;
    ue.beforeAka = [&akas](ue::SoftUsim& u) {
        if (++akas == 2) {  // the refresh's first vector
            ASSERT_TRUE(u.sqnArray().setSeq(0, 7000));
        }
    };
    ASSERT_TRUE(ue.establish()) << log();
    const ue::UeState old = ue.engine().state();
    uplink(ue);
    ASSERT_TRUE(waitRefreshDone(ue)) << log();
    ASSERT_NE(ue.last<ue::RefreshFailed>(), nullptr);
    EXPECT_EQ(ue.last<ue::RefreshFailed>()->reason, ue::RefreshFailure::syncFailure);
    EXPECT_EQ(ue.last<ue::RefreshCompleted>()->origin, emsdp::RefreshOrigin::hse);
    EXPECT_EQ(akas, 3);
    EXPECT_GE(seqHe(), 7001u);
    ASSERT_TRUE(waitLog("KID 2 EAS eas-hse origin hse")) << log();
    resumeWithNewSetAndRefuseOld(ue, old, 2, kEasHse, true);
    EXPECT_TRUE(stopAndFindInLog("hse.completed="));
    EXPECT_NE(log().find("resyncs=1"), std::string::npos) << log();
}

TEST_F(Refresh, HseTriggeredThirdValidAutsEndsTheRefresh) {
    start(withPolicy(kPolicySessions));
    UeClient ue(port_, ueSettings(kEasHse));
    int akas = 0;
    // From the refresh on, the USIM is always ahead of the HSE: every vector is stale.
    ue.beforeAka = [&akas](ue::SoftUsim& u) {
        if (++akas >= 2) {
            ASSERT_TRUE(u.sqnArray().setSeq(0, u.sqnArray().seq(0) + 10000));
        }
    };
    ASSERT_TRUE(ue.establish()) << log();
    uplink(ue);
    ASSERT_TRUE(pumpUntilLog(ue, "ended: resync_limit")) << log();
    EXPECT_EQ(akas, 4);  // the full establishment, then three refresh vectors
    EXPECT_EQ(eventCount<ue::RefreshFailed>(ue), 3u);
    EXPECT_FALSE(ue.has<ue::RefreshCompleted>());
    // A14: the third AUTS was applied too.
    EXPECT_GE(seqHe(), ue.usim().sqnArray().seq(0));
    EXPECT_EQ(keySets().size(), 1u);  // nothing pending
    EXPECT_TRUE(stopAndFindInLog("refreshes: hse.resync_limit=1 resyncs=3"));
}

// A USIM with another K fails every refresh AKA with a MAC failure; it resumes with a key set
// that the right USIM agreed (no AKA needed for that).
constexpr const char* kOtherKHex = "000102030405060708090a0b0c0d0e0f";

TEST_F(Refresh, UsimMacFailureEndsBothFlowsAndDiscardsThePendingSet) {
    start();
    ue::UeState agreed;
    {
        UeClient ue(port_, ueSettings(kEasHse));
        ASSERT_TRUE(ue.establish()) << log();
        uplink(ue);
        ASSERT_TRUE(waitLog("is current (durable)")) << log();
        agreed = ue.engine().state();
    }
    stop();
    start(withPolicy(kPolicySessions));
    UeClient ue(port_, ueSettings(kEasHse), kImsi, kOtherKHex, agreed);
    ASSERT_TRUE(ue.establish()) << log();
    EXPECT_TRUE(ue.last<ue::SessionEstablished>()->info.resumed);
    // HSE-triggered (policy: 2 sessions with set 1): Manage Keys Response with cause 0x0A.
    uplink(ue);
    ASSERT_TRUE(pumpUntilLog(ue, "ended: usim_mac_failure (cause 0x0A)")) << log();
    ASSERT_NE(ue.last<ue::RefreshFailed>(), nullptr);
    EXPECT_EQ(ue.last<ue::RefreshFailed>()->reason, ue::RefreshFailure::akaMacFailure);
    EXPECT_EQ(ue.last<ue::RefreshFailed>()->origin, emsdp::RefreshOrigin::hse);
    EXPECT_EQ(keySets().size(), 1u);  // an HSE flow stores nothing before the confirmation
    EXPECT_EQ(log().find("event pending-key-set-stored"), std::string::npos);
    // UE-triggered: the pending set is stored before the Response; MAC'd Reject 0x0A discards it.
    requestRefresh(ue);
    ASSERT_TRUE(pumpUntilLog(ue, "ended: usim_mac_failure (Reject 0x0A)")) << log();
    EXPECT_NE(log().find("event pending-key-set-stored IMSI 001010123456789 KID 2 EAS eas-hse "
                         "origin ue"),
              std::string::npos);
    EXPECT_EQ(eventCount<ue::RefreshFailed>(ue), 2u);
    EXPECT_FALSE(ue.has<ue::RefreshCompleted>());
    ASSERT_TRUE(ue.pump([&] { return keySets().size() == 1u; })) << "pending set not discarded";
    EXPECT_EQ(keySets().front().kid, 1);
    EXPECT_TRUE(
        stopAndFindInLog("refreshes: ue.usim_mac_failure=1 hse.usim_mac_failure=1 resyncs=0"));
}

TEST_F(Refresh, WrongKeyConfirmationEndsTheHseRefreshSilently) {
    start(withPolicy(kPolicySessions));
    UeClient ue(port_, ueSettings(kEasHse));
    std::optional<emsdp::SecureChannel> ch;
    std::optional<emsdp::HseManageKeysRequest> req;
    ASSERT_NO_FATAL_FAILURE(awaitHseRequest(ue, ch, req));
    const std::uint32_t sid = ue.engine().session()->sessionId;
    EXPECT_EQ(req->refreshOrigin, emsdp::RefreshOrigin::hse);
    EXPECT_EQ(req->newKeyId, 2);
    EXPECT_EQ(req->keyAgreement, crypto::KeyAgreement::umts);
    // The right value, computed here independently (USIM, root, KInt, 0xB6), then spoiled.
    auto aka = ue.usim().authenticate(req->rand, req->autn);
    ASSERT_TRUE(aka);
    auto* ok = std::get_if<ue::AkaSuccess>(&*aka);
    ASSERT_NE(ok, nullptr);
    crypto::Ak sqnXorAk{};
    std::copy_n(req->autn.begin(), sqnXorAk.size(), sqnXorAk.begin());
    auto root = crypto::deriveRoot(crypto::KeyAgreement::umts, ok->ck, ok->ik,
                                   crypto::PlmnId{0x00, 0xf1, 0x10}, sqnXorAk);
    ASSERT_TRUE(root);
    auto kint = crypto::deriveKInt(*root, kHseId);
    ASSERT_TRUE(kint);
    auto conf = crypto::deriveKeyConfirmation(*kint, sid, req->rand);
    ASSERT_TRUE(conf);
    emsdp::UeManageKeysResponse resp;
    resp.keyConfirmation = *conf;
    (*resp.keyConfirmation)[7] ^= 0x01;
    sendManual(ue, *ch, resp);
    ASSERT_TRUE(waitLog("ended: bad_confirmation (wrong key confirmation)")) << log();
    // Silently: no answer, no resend (it would come 4 s after the first request).
    EXPECT_FALSE(ue.peer().receive(5000));
    EXPECT_EQ(keySets().size(), 1u);
    EXPECT_TRUE(stopAndFindInLog("refreshes: hse.bad_confirmation=1 resyncs=0"));
    EXPECT_NE(log().find("key_confirmation_mismatch=1"), std::string::npos) << log();
}

TEST_F(Refresh, BadMacSEndsTheHseRefreshWithoutResync) {
    start(withPolicy(kPolicySessions));
    UeClient ue(port_, ueSettings(kEasHse));
    std::optional<emsdp::SecureChannel> ch;
    std::optional<emsdp::HseManageKeysRequest> req;
    ASSERT_NO_FATAL_FAILURE(awaitHseRequest(ue, ch, req));
    const std::uint64_t seqBefore = seqHe();
    emsdp::UeManageKeysResponse resp;
    resp.cause = Cause::synch_failure;
    resp.auts = crypto::Auts{};  // MAC-S cannot verify
    sendManual(ue, *ch, resp);
    ASSERT_TRUE(waitLog("ended: bad_mac_s (AUTS with a bad MAC-S)")) << log();
    EXPECT_FALSE(ue.peer().receive(1500));  // no new request
    EXPECT_EQ(seqHe(), seqBefore);
    EXPECT_EQ(keySets().size(), 1u);
    EXPECT_TRUE(stopAndFindInLog("refreshes: hse.bad_mac_s=1 resyncs=0"));
}

TEST_F(Refresh, UeRequestsGetTheSameAnswerUntilARejectThenANewOne) {
    start();
    UeClient ue(port_, ueSettings(kEasHse));
    ASSERT_TRUE(ue.establish()) << log();
    auto ch = manualChannel(ue);
    ASSERT_TRUE(ch);
    uplink(ue);
    ASSERT_TRUE(waitLog("confirmed")) << log();
    // A Response with no request of the HSE outstanding: dropped.
    emsdp::UeManageKeysResponse stray;
    stray.keyConfirmation = crypto::KeyConfirmation{};
    sendManual(ue, *ch, stray);
    sendManual(ue, *ch, emsdp::UeManageKeysRequest{});
    auto first = receiveManual<emsdp::HseManageKeysResponse>(ue, *ch);
    ASSERT_TRUE(first) << log();
    EXPECT_EQ(first->newKeyId, 2);
    EXPECT_EQ(first->keyAgreement, crypto::KeyAgreement::umts);
    // A15: a repeat gets the same RAND, AUTN and New key ID, and no new vector.
    sendManual(ue, *ch, emsdp::UeManageKeysRequest{});
    auto second = receiveManual<emsdp::HseManageKeysResponse>(ue, *ch);
    ASSERT_TRUE(second) << log();
    EXPECT_EQ(*second, *first);
    EXPECT_EQ(countOf(log(), "refresh vector for IMSI"), 1u);
    ASSERT_EQ(keySets().size(), 2u);
    // MAC'd Reject 0x0B with an AUTS whose MAC-S is wrong: the pending set goes, no resync.
    emsdp::MessageReject rej;
    rej.cause = Cause::synch_failure;
    rej.auts = crypto::Auts{};
    sendManual(ue, *ch, rej);
    ASSERT_TRUE(waitLog("ended: bad_mac_s")) << log();
    ASSERT_TRUE(ue.pump([&] { return keySets().size() == 1u; }, 3000)) << "pending set kept";
    // The answer is no longer outstanding: a new request runs a new AKA.
    sendManual(ue, *ch, emsdp::UeManageKeysRequest{});
    auto third = receiveManual<emsdp::HseManageKeysResponse>(ue, *ch);
    ASSERT_TRUE(third) << log();
    EXPECT_NE(third->rand, first->rand);
    EXPECT_NE(third->autn, first->autn);
    EXPECT_EQ(third->newKeyId, 2);  // the discarded set's KID is free again
    EXPECT_EQ(countOf(log(), "refresh vector for IMSI"), 2u);
    EXPECT_TRUE(stopAndFindInLog("ue.bad_mac_s=1"));
    EXPECT_NE(log().find("unexpected_command=1"), std::string::npos) << log();
}

TEST_F(Refresh, UnansweredHseRequestIsResentAt4_12_28sAndGivenUpAt44s) {
    start(withPolicy(kPolicySessions));
    UeClient ue(port_, ueSettings(kEasHse));
    ASSERT_TRUE(ue.establish()) << log();
    std::vector<std::chrono::steady_clock::time_point> seen;
    ue.dropIncoming = [&seen](const Bytes&) {
        seen.push_back(std::chrono::steady_clock::now());
        return true;  // the UE never sees the requests
    };
    uplink(ue);
    ASSERT_TRUE(ue.pump([&] { return log().find("ended: timed_out") != std::string::npos; }, 50000))
        << log();
    ASSERT_EQ(seen.size(), 4u);  // the request and three resends
    const auto at = [&](std::size_t i) {
        return std::chrono::duration_cast<std::chrono::milliseconds>(seen[i] - seen[0]).count();
    };
    // A13 (the HSE's 1 s sweep may be up to a second late).
    EXPECT_NEAR(at(1), 4000, 1500);
    EXPECT_NEAR(at(2), 12000, 1500);
    EXPECT_NEAR(at(3), 28000, 1500);
    EXPECT_EQ(keySets().size(), 1u);
    EXPECT_TRUE(stopAndFindInLog("refreshes: hse.timed_out=1 resyncs=0"));
}

TEST_F(Refresh, UeRequestAbandonsAnOutstandingHseRefresh) {
    start(withPolicy(kPolicySessions));
    UeClient ue(port_, ueSettings(kEasHse));
    std::optional<emsdp::SecureChannel> ch;
    std::optional<emsdp::HseManageKeysRequest> req;
    ASSERT_NO_FATAL_FAILURE(awaitHseRequest(ue, ch, req));
    // A15: the UE's own request meets the HSE's: the HSE's is abandoned, the UE's answered.
    sendManual(ue, *ch, emsdp::UeManageKeysRequest{});
    auto answer = receiveManual<emsdp::HseManageKeysResponse>(ue, *ch);
    ASSERT_TRUE(answer) << log();
    EXPECT_NE(answer->rand, req->rand);
    EXPECT_EQ(answer->newKeyId, 2);  // the abandoned refresh's New key ID is free again
    EXPECT_NE(log().find("ended: abandoned (met by a UE request)"), std::string::npos) << log();
    // The key confirmation for the abandoned request comes too late: dropped.
    emsdp::UeManageKeysResponse late;
    late.keyConfirmation = crypto::KeyConfirmation{};
    sendManual(ue, *ch, late);
    // Termination: the UE-triggered answer stops being outstanding (its set stays stored).
    sendManual(ue, *ch, emsdp::SessionTerminateRequest{});
    ASSERT_TRUE(receiveManual<emsdp::SessionTerminateResponse>(ue, *ch)) << log();
    ASSERT_TRUE(waitLog("ended: completed (session ended)")) << log();
    EXPECT_EQ(keySets().size(), 2u);
    EXPECT_TRUE(stopAndFindInLog("refreshes: ue.completed=1 hse.abandoned=1 resyncs=0"));
    EXPECT_NE(log().find("unexpected_command=1"), std::string::npos) << log();
}

TEST_F(Refresh, TerminationAbandonsAnUnfinishedHseRefresh) {
    start(withPolicy(kPolicySessions));
    UeClient ue(port_, ueSettings(kEasHse));
    std::optional<emsdp::SecureChannel> ch;
    std::optional<emsdp::HseManageKeysRequest> req;
    ASSERT_NO_FATAL_FAILURE(awaitHseRequest(ue, ch, req));
    sendManual(ue, *ch, emsdp::SessionTerminateRequest{});
    ASSERT_TRUE(receiveManual<emsdp::SessionTerminateResponse>(ue, *ch)) << log();
    ASSERT_TRUE(waitLog("ended: abandoned (session ended)")) << log();
    EXPECT_FALSE(ue.peer().receive(5000));  // no resend into the gone session
    EXPECT_EQ(keySets().size(), 1u);
    EXPECT_TRUE(stopAndFindInLog("refreshes: hse.abandoned=1 resyncs=0"));
}

TEST_F(Refresh, MacdRejectOfTheHseRequestEndsIt) {
    start(withPolicy(kPolicySessions));
    UeClient ue(port_, ueSettings(kEasHse));
    std::optional<emsdp::SecureChannel> ch;
    std::optional<emsdp::HseManageKeysRequest> req;
    ASSERT_NO_FATAL_FAILURE(awaitHseRequest(ue, ch, req));
    emsdp::MessageReject rej;
    rej.cause = Cause::invalid_format;
    sendManual(ue, *ch, rej);
    ASSERT_TRUE(waitLog("ended: rejected (MAC'd Reject")) << log();
    EXPECT_FALSE(ue.peer().receive(5000));  // no resend
    EXPECT_TRUE(stopAndFindInLog("refreshes: hse.rejected=1 resyncs=0"));
}

TEST_F(Refresh, LostManageKeysResponseIsAnsweredAgainWithoutASecondAka) {
    start();
    auto settings = ueSettings(kEasHse);
    settings->timers.resendGaps = {std::chrono::seconds(1), std::chrono::seconds(2),
                                   std::chrono::seconds(4)};
    UeClient ue(port_, settings);
    ASSERT_TRUE(ue.establish()) << log();
    uplink(ue);
    ASSERT_TRUE(waitLog("confirmed")) << log();
    const std::uint64_t seqBefore = ue.usim().sqnArray().seq(0);
    int akas = 0;
    ue.beforeAka = [&akas](ue::SoftUsim&) { ++akas; };
    int lost = 0;
    ue.dropIncoming = [&lost](const Bytes&) { return lost++ == 0; };  // the first Response
    requestRefresh(ue);
    ASSERT_TRUE(waitRefreshDone(ue)) << log();
    EXPECT_EQ(lost, 2);  // one lost, one delivered
    EXPECT_EQ(akas, 1);
    // One vector for the refresh: the USIM saw exactly one new SQN.
    EXPECT_EQ(ue.usim().sqnArray().seq(0), seqBefore + 1);
    const std::string l = log();
    EXPECT_EQ(countOf(l, "refresh vector for IMSI"), 1u) << l;
    EXPECT_EQ(countOf(l, "the outstanding answer again"), 1u) << l;
    EXPECT_EQ(countOf(l, "event pending-key-set-stored"), 1u) << l;
    EXPECT_EQ(keySets().size(), 2u);
}

TEST_F(Refresh, KillDuringUeTriggeredRefreshKeepsTheCurrentSet) {
    start();
    UeClient ue(port_, ueSettings(kEasKa));
    ASSERT_TRUE(ue.establish()) << log();
    ASSERT_TRUE(waitLog("is current (durable)")) << log();
    const ue::UeState old = ue.engine().state();
    ue.dropIncoming = [](const Bytes&) { return true; };  // the Response never arrives
    requestRefresh(ue);
    ASSERT_TRUE(ue.pump([&] {
        return log().find("event pending-key-set-stored") != std::string::npos;
    })) << log();
    kill9();
    DaemonOptions again;
    again.port = port_;
    start(again);
    // The pending set was durable before the Response; the UE never got it.
    auto sets = keySets();
    ASSERT_EQ(sets.size(), 2u);
    EXPECT_EQ(sets[1].state, store::KeySetState::pending);
    UeClient after(port_, ueSettings(kEasKa), kImsi, kKHex, old);
    ASSERT_TRUE(after.establish()) << log();
    EXPECT_TRUE(after.last<ue::SessionEstablished>()->info.resumed);
    EXPECT_EQ(after.last<ue::SessionEstablished>()->info.kid, 1);
}

TEST_F(Refresh, KillDuringHseTriggeredRefreshKeepsTheCurrentSet) {
    start(withPolicy(kPolicySessions));
    UeClient ue(port_, ueSettings(kEasHse));
    ASSERT_TRUE(ue.establish()) << log();
    const ue::UeState old = ue.engine().state();
    ue.dropIncoming = [](const Bytes&) { return true; };  // the request never arrives
    uplink(ue);
    ASSERT_TRUE(waitLog("refresh vector for IMSI")) << log();
    kill9();
    DaemonOptions again;
    again.extraPolicy = kPolicySessions;
    again.port = port_;
    start(again);
    EXPECT_EQ(keySets().size(), 1u);  // stored only after a verified confirmation
    UeClient after(port_, ueSettings(kEasHse), kImsi, kKHex, old);
    ASSERT_TRUE(after.establish()) << log();
    EXPECT_TRUE(after.last<ue::SessionEstablished>()->info.resumed);
    EXPECT_EQ(after.last<ue::SessionEstablished>()->info.kid, 1);
}

}  // namespace
}  // namespace best::itest
