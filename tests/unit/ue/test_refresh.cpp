// Key refresh at the UE (profile 4.4, 4.6, A7, A8, A10, A11, A13, A15, A24) against the test HSE
// peer: both origins succeed, USIM MAC and sync failures (AUTS checked by the network-side
// recovery in src/crypto), the AMF separation bit, a repeated RAND answered from the cache without
// a second USIM run, a Response with a RAND already run, one pending set at a time, resumption
// with the pending set and its promotion, abandonment on termination, A8, and the pending set in
// a real state file across a restart.
#include <gtest/gtest.h>

#include <stdlib.h>

#include <chrono>
#include <filesystem>

#include "rig.h"
#include "temp_dir.h"
#include "ue/state_file.h"

namespace best::ue::test {
namespace {

using emsdp::Cause;
using emsdp::DropReason;
using emsdp::RefreshOrigin;
using std::chrono::milliseconds;
using std::chrono::seconds;
using KA = crypto::KeyAgreement;

// Counts AUTHENTICATE calls and forwards them to a software USIM.
class CountingUsim final : public Usim {
public:
    explicit CountingUsim(Usim& inner) : inner_(inner) {}
    Result<std::string> imsi() override { return inner_.imsi(); }
    Result<AkaOutcome> authenticate(const crypto::Rand& rand, const crypto::Autn& autn) override {
        ++calls;
        return inner_.authenticate(rand, autn);
    }
    unsigned calls = 0;

private:
    Usim& inner_;
};

using best::test::TempDir;

// A Rig with an established 5G session (KID 1) and a counting USIM.
struct RefreshRig {
    explicit RefreshRig(std::shared_ptr<UeSettings> settings = exampleSettings(),
                        const StartSpec& spec = {})
        : rig(std::move(settings)), counting(rig.usim) {
        rig.establish(spec);
        rig.h.setUsim(&counting);
    }
    // The UE's one datagram (taken out of the output; the events stay), opened by the peer.
    emsdp::ReceivedCp sent() {
        EXPECT_EQ(rig.h.out.datagrams.size(), 1u);
        if (rig.h.out.datagrams.empty())
            return emsdp::ReceivedCp{};
        const Bytes d = rig.h.out.datagrams.front();
        rig.h.out.datagrams.erase(rig.h.out.datagrams.begin());
        return rig.peer.openCp(d);
    }
    // The UE's one datagram, opened by the peer, as a `T` (fails the test otherwise).
    template <typename T>
    std::optional<T> sentAs() {
        const auto o = sent();
        if (const auto* p = std::get_if<T>(&o.body))
            return *p;
        ADD_FAILURE() << "the UE sent another command";
        return std::nullopt;
    }
    // requestKeyRefresh() and its Manage Keys Request, checked.
    void request() {
        ASSERT_TRUE(rig.h.engine().requestKeyRefresh(rig.h.now, rig.h.out).has_value());
        const auto o = sent();
        ASSERT_TRUE(std::holds_alternative<emsdp::UeManageKeysRequest>(o.body));
    }
    // A new 5G refresh vector, fed to the UE in the HSE's Manage Keys Response for `newKid`.
    RefreshVector feedResponse(std::uint8_t newKid) {
        RefreshVector v = rig.peer.refreshVector(KA::fiveG);
        rig.h.feed(rig.peer.manageKeysResponse(v, KA::fiveG, newKid));
        return v;
    }
    // A new 5G refresh vector, fed to the UE in an HSE Manage Keys Request for `newKid`.
    RefreshVector feedRequest(std::uint8_t newKid, RefreshOrigin origin = RefreshOrigin::hse) {
        RefreshVector v = rig.peer.refreshVector(KA::fiveG);
        rig.h.feed(rig.peer.manageKeysRequest(v, KA::fiveG, newKid, origin));
        return v;
    }
    // terminate(), answered by the HSE; clears the output.
    void endSession() {
        ASSERT_TRUE(rig.h.engine().terminate(rig.h.now, rig.h.out).has_value());
        rig.h.feed(rig.peer.seal(emsdp::SessionTerminateResponse{}));
        rig.h.out.clear();
    }
    Harness& h() { return rig.h; }
    TestHsePeer& peer() { return rig.peer; }
    const UeState& state() { return rig.h.engine().state(); }

    Rig rig;
    CountingUsim counting;
};

std::string hexOf(const Key256& k) {
    return hx(k.view());
}

template <typename T>
T single(const Output& out) {
    const auto v = eventsOf<T>(out);
    EXPECT_EQ(v.size(), 1u);
    return v.empty() ? T{} : v.front();
}

// ---- success, both origins ---------------------------------------------------------------------

TEST(UeRefresh, UeTriggeredStoresThePendingSetAndSendsNothing) {
    RefreshRig r;
    r.request();
    EXPECT_TRUE(r.h().engine().refreshOutstanding());
    const auto v = r.peer().refreshVector(KA::fiveG);
    r.h().now.wallSeconds += 30;
    r.h().feed(r.peer().manageKeysResponse(v, KA::fiveG, 2));
    EXPECT_TRUE(drops(r.h().out).empty());
    EXPECT_TRUE(r.h().out.datagrams.empty()) << "a UE-triggered refresh ends silently";
    EXPECT_EQ(r.counting.calls, 1u);
    const auto done = single<RefreshCompleted>(r.h().out);
    EXPECT_EQ(done.newKid, 2);
    EXPECT_EQ(done.origin, RefreshOrigin::ue);
    const auto stored = single<KeySetStored>(r.h().out);
    EXPECT_EQ(stored.kid, 2);
    EXPECT_EQ(stored.role, KeySetRole::pending);
    ASSERT_TRUE(r.state().pending.has_value());
    EXPECT_EQ(hexOf(r.state().pending->kint), hexOf(v.kint)) << "the network's new KInt";
    EXPECT_EQ(r.state().pending->created, r.h().now.wallSeconds);
    EXPECT_EQ(r.state().pending->lifetime, 86400u);
    EXPECT_FALSE(r.state().pending->lastNonce.has_value());
    EXPECT_EQ(r.state().current->kid, 1);
    EXPECT_EQ(hexOf(r.state().current->kint), hexOf(r.peer().kint()));
    EXPECT_FALSE(r.h().engine().refreshOutstanding());
    EXPECT_EQ(r.h().engine().pendingKid(), std::optional<std::uint8_t>(2));
    EXPECT_FALSE(r.h().engine().nextDeadline().has_value()) << "the resend schedule stopped";
    ASSERT_TRUE(r.rig.store.saved().pending.has_value());
    EXPECT_EQ(hexOf(r.rig.store.saved().pending->kint), hexOf(v.kint));
    EXPECT_EQ(r.h().engine().phase(), Phase::established) << "the running session goes on";
}

TEST(UeRefresh, HseTriggeredAnswersWithTheKeyConfirmationForEachOrigin) {
    for (const RefreshOrigin origin : {RefreshOrigin::hse, RefreshOrigin::eas, RefreshOrigin::ue}) {
        SCOPED_TRACE(static_cast<int>(origin));
        RefreshRig r;
        const auto v = r.feedRequest(3, origin);
        EXPECT_TRUE(drops(r.h().out).empty());
        EXPECT_EQ(r.counting.calls, 1u);
        const auto o = r.sent();
        EXPECT_EQ(o.count, 0u) << "the first CP-UL message of this UP session";
        const auto* resp = std::get_if<emsdp::UeManageKeysResponse>(&o.body);
        ASSERT_NE(resp, nullptr);
        ASSERT_TRUE(resp->keyConfirmation.has_value());
        EXPECT_FALSE(resp->cause.has_value());
        EXPECT_EQ(hx(*resp->keyConfirmation), hx(r.peer().expectedConfirmation(v)));
        const auto done = single<RefreshCompleted>(r.h().out);
        EXPECT_EQ(done.newKid, 3);
        EXPECT_EQ(done.origin, origin);
        ASSERT_TRUE(r.state().pending.has_value());
        EXPECT_EQ(r.state().pending->kid, 3);
        EXPECT_EQ(hexOf(r.state().pending->kint), hexOf(v.kint));
        EXPECT_EQ(r.rig.store.saved().pending->kid, 3) << "stored before the answer";
    }
}

TEST(UeRefresh, UmtsAndEpsSessionsRefreshWithTheirOwnKeyAgreement) {
    for (const KA ka : {KA::umts, KA::eps}) {
        SCOPED_TRACE(static_cast<int>(ka));
        StartSpec spec;
        spec.keyAgreement = ka;
        RefreshRig r(exampleSettings(), spec);
        r.request();
        const auto v = r.peer().refreshVector(ka);
        r.h().feed(r.peer().manageKeysResponse(v, ka, 2));
        EXPECT_EQ(single<RefreshCompleted>(r.h().out).newKid, 2);
        ASSERT_TRUE(r.state().pending.has_value());
        EXPECT_EQ(r.state().pending->keyAgreement, ka);
        EXPECT_EQ(hexOf(r.state().pending->kint), hexOf(v.kint));
    }
}

// ---- USIM failures --------------------------------------------------------------------------

TEST(UeRefresh, UeTriggeredMacFailureSendsMacdReject0x0A) {
    RefreshRig r;
    r.request();
    auto v = r.peer().refreshVector(KA::fiveG);
    v.autn[12] ^= 0x01;  // MAC-A
    r.h().feed(r.peer().manageKeysResponse(v, KA::fiveG, 2));
    EXPECT_EQ(r.counting.calls, 1u);
    const auto o = r.sent();
    EXPECT_EQ(o.count, 1u) << "MAC'd, the next CP-UL COUNT";
    const auto* rj = std::get_if<emsdp::MessageReject>(&o.body);
    ASSERT_NE(rj, nullptr);
    EXPECT_EQ(rj->cause, Cause::aka_mac_failure);
    EXPECT_FALSE(rj->auts.has_value());
    const auto failed = single<RefreshFailed>(r.h().out);
    EXPECT_EQ(failed.reason, RefreshFailure::akaMacFailure);
    EXPECT_EQ(failed.origin, RefreshOrigin::ue);
    EXPECT_EQ(failed.cause, Cause::aka_mac_failure);
    EXPECT_FALSE(r.state().pending.has_value());
    EXPECT_EQ(r.state().current->kid, 1) << "a failed refresh leaves the current set valid";
    EXPECT_TRUE(eventsOf<KeySetStored>(r.h().out).empty());
    EXPECT_FALSE(r.h().engine().refreshOutstanding());
}

TEST(UeRefresh, UeTriggeredSyncFailureSendsAutsThenTheHseRefreshWithOriginUeSucceeds) {
    RefreshRig r;
    r.request();
    r.peer().subscriber().nextSeq = 1;  // the SEQ the USIM already accepted
    const auto stale = r.feedResponse(2);
    const auto o = r.sent();
    const auto* rj = std::get_if<emsdp::MessageReject>(&o.body);
    ASSERT_NE(rj, nullptr);
    EXPECT_EQ(rj->cause, Cause::synch_failure);
    ASSERT_TRUE(rj->auts.has_value());
    const auto failed = single<RefreshFailed>(r.h().out);
    EXPECT_EQ(failed.reason, RefreshFailure::syncFailure);
    EXPECT_FALSE(r.state().pending.has_value());
    r.h().out.clear();

    // The network recovers SQN_MS from the AUTS (MAC-S verified), resynchronises and starts an
    // HSE-triggered refresh with Refresh origin UE.
    crypto::Auts badAuts = *rj->auts;
    badAuts[13] ^= 0x01;
    EXPECT_FALSE(r.peer().resync(stale.rand, badAuts)) << "MAC-S covers the AUTS";
    ASSERT_TRUE(r.peer().resync(stale.rand, *rj->auts));
    EXPECT_EQ(r.peer().subscriber().nextSeq, 2u) << "SEQ_MS was 1";
    const auto v = r.peer().refreshVector(KA::fiveG);
    r.h().feed(r.peer().manageKeysRequest(v, KA::fiveG, 2, RefreshOrigin::ue));
    const auto resp = r.sentAs<emsdp::UeManageKeysResponse>();
    ASSERT_TRUE(resp.has_value());
    ASSERT_TRUE(resp->keyConfirmation.has_value());
    EXPECT_EQ(hx(*resp->keyConfirmation), hx(r.peer().expectedConfirmation(v)));
    const auto done = single<RefreshCompleted>(r.h().out);
    EXPECT_EQ(done.origin, RefreshOrigin::ue);
    EXPECT_EQ(done.newKid, 2);
    EXPECT_EQ(r.counting.calls, 2u);
}

TEST(UeRefresh, HseTriggeredMacFailureAnswersCause0x0A) {
    RefreshRig r;
    auto v = r.peer().refreshVector(KA::fiveG);
    v.autn[15] ^= 0x80;
    r.h().feed(r.peer().manageKeysRequest(v, KA::fiveG, 2));
    const auto resp = r.sentAs<emsdp::UeManageKeysResponse>();
    ASSERT_TRUE(resp.has_value());
    EXPECT_EQ(resp->cause, Cause::aka_mac_failure);
    EXPECT_FALSE(resp->keyConfirmation.has_value());
    EXPECT_FALSE(resp->auts.has_value());
    EXPECT_EQ(single<RefreshFailed>(r.h().out).reason, RefreshFailure::akaMacFailure);
    EXPECT_FALSE(r.state().pending.has_value());
}

TEST(UeRefresh, HseTriggeredSyncFailureAnswersAutsAndTheNextRequestSucceeds) {
    RefreshRig r;
    r.peer().subscriber().nextSeq = 1;
    const auto stale = r.feedRequest(2);
    const auto resp = r.sentAs<emsdp::UeManageKeysResponse>();
    ASSERT_TRUE(resp.has_value());
    EXPECT_EQ(resp->cause, Cause::synch_failure);
    ASSERT_TRUE(resp->auts.has_value());
    const auto failed = single<RefreshFailed>(r.h().out);
    EXPECT_EQ(failed.reason, RefreshFailure::syncFailure);
    EXPECT_EQ(failed.origin, RefreshOrigin::hse);
    r.h().out.clear();
    ASSERT_TRUE(r.peer().resync(stale.rand, *resp->auts));
    const auto v = r.feedRequest(2);
    const auto ok = r.sentAs<emsdp::UeManageKeysResponse>();
    ASSERT_TRUE(ok.has_value());
    ASSERT_TRUE(ok->keyConfirmation.has_value());
    EXPECT_EQ(hx(*ok->keyConfirmation), hx(r.peer().expectedConfirmation(v)));
    EXPECT_EQ(r.state().pending->kid, 2);
}

// ---- A7: the AMF separation bit -----------------------------------------------------------------

TEST(UeRefresh, MissingSeparationBitIsAMacFailureWithoutRunningTheUsim) {
    {
        RefreshRig r;
        r.request();
        r.peer().subscriber().amf = {0x39, 0xb9};  // separation bit clear
        const auto v = r.feedResponse(2);
        EXPECT_EQ(r.counting.calls, 0u);
        const auto rj = r.sentAs<emsdp::MessageReject>();
        ASSERT_TRUE(rj.has_value());
        EXPECT_EQ(rj->cause, Cause::aka_mac_failure);
        EXPECT_EQ(single<RefreshFailed>(r.h().out).reason, RefreshFailure::akaMacFailure);
    }
    {
        StartSpec spec;
        spec.keyAgreement = KA::eps;
        RefreshRig r(exampleSettings(), spec);
        r.peer().subscriber().amf = {0x39, 0xb9};
        const auto v = r.peer().refreshVector(KA::eps);
        r.h().feed(r.peer().manageKeysRequest(v, KA::eps, 2));
        EXPECT_EQ(r.counting.calls, 0u);
        const auto resp = r.sentAs<emsdp::UeManageKeysResponse>();
        ASSERT_TRUE(resp.has_value());
        EXPECT_EQ(resp->cause, Cause::aka_mac_failure);
    }
    {
        // UMTS has no separation bit to check: the USIM runs and accepts.
        StartSpec spec;
        spec.keyAgreement = KA::umts;
        RefreshRig r(exampleSettings(), spec);
        r.peer().subscriber().amf = {0x39, 0xb9};
        const auto v = r.peer().refreshVector(KA::umts);
        r.h().feed(r.peer().manageKeysRequest(v, KA::umts, 2));
        EXPECT_EQ(r.counting.calls, 1u);
        EXPECT_EQ(single<RefreshCompleted>(r.h().out).newKid, 2);
    }
}

// ---- parameters the UE cannot act on -----------------------------------------------------------

TEST(UeRefresh, OtherKeyAgreementOrTheCurrentKidIsRejected0x01WithoutTheUsim) {
    {
        RefreshRig r;
        r.request();
        const auto v = r.peer().refreshVector(KA::eps);
        r.h().feed(r.peer().manageKeysResponse(v, KA::eps, 2));  // the current set is 5G
        const auto rj = r.sentAs<emsdp::MessageReject>();
        ASSERT_TRUE(rj.has_value());
        EXPECT_EQ(rj->cause, Cause::invalid_format);
        EXPECT_EQ(single<RefreshFailed>(r.h().out).reason, RefreshFailure::mismatch);
        EXPECT_EQ(r.counting.calls, 0u);
    }
    {
        RefreshRig r;
        r.feedRequest(1);  // KID 1 is the current set
        const auto rj = r.sentAs<emsdp::MessageReject>();
        ASSERT_TRUE(rj.has_value());
        EXPECT_EQ(rj->cause, Cause::invalid_format);
        EXPECT_EQ(r.counting.calls, 0u);
        EXPECT_FALSE(r.state().pending.has_value());
    }
}

// ---- 4.6 / A15: repeats -------------------------------------------------------------------------

TEST(UeRefresh, RepeatedHseRequestGetsTheCachedAnswerReprotectedWithoutAka) {
    RefreshRig r;
    const auto v = r.feedRequest(2);
    const auto first = r.sent();
    r.h().out.clear();
    // The HSE resends the same content under its next COUNT (its answer was lost).
    r.h().feed(r.peer().manageKeysRequest(v, KA::fiveG, 2));
    EXPECT_EQ(r.counting.calls, 1u) << "no second USIM run";
    EXPECT_TRUE(r.h().out.akaRequests.empty());
    const auto again = r.sent();
    EXPECT_EQ(again.count, first.count + 1) << "re-protected under the next COUNT";
    EXPECT_TRUE(again.body == first.body) << "the same answer";
    EXPECT_TRUE(eventsOf<RefreshCompleted>(r.h().out).empty());
    EXPECT_TRUE(eventsOf<KeySetStored>(r.h().out).empty());

    // A cached failure (0x0B with the same AUTS) is repeated the same way.
    r.peer().subscriber().nextSeq = 1;
    const auto stale = r.feedRequest(3);
    const auto fail1 = r.sent();
    r.h().feed(r.peer().manageKeysRequest(stale, KA::fiveG, 3));
    const auto fail2 = r.sent();
    EXPECT_EQ(r.counting.calls, 2u);
    EXPECT_TRUE(fail2.body == fail1.body);
    const auto* resp = std::get_if<emsdp::UeManageKeysResponse>(&fail2.body);
    ASSERT_NE(resp, nullptr);
    EXPECT_EQ(resp->cause, Cause::synch_failure);
    EXPECT_EQ(r.state().pending->kid, 2) << "the failed refresh left pending KID 2 alone";
}

TEST(UeRefresh, HseRequestRepeatedWhileTheUsimRunsIsDropped) {
    RefreshRig r;
    r.h().setUsim(nullptr);  // the USIM answers later (PC/SC worker)
    const auto v = r.feedRequest(2);
    ASSERT_EQ(r.h().out.akaRequests.size(), 1u);
    const AkaRequest pending = r.h().out.akaRequests[0];
    EXPECT_TRUE(r.h().engine().refreshOutstanding());
    r.h().out.clear();
    r.h().feed(r.peer().manageKeysRequest(v, KA::fiveG, 2));
    EXPECT_EQ(drops(r.h().out), std::vector<DropReason>{DropReason::unexpected_command});
    EXPECT_TRUE(r.h().out.akaRequests.empty());
    EXPECT_TRUE(r.h().out.datagrams.empty());
    EXPECT_TRUE(r.h().engine().onAkaResult(
        pending.ticket, r.rig.usim.authenticate(pending.rand, pending.autn), r.h().now, r.h().out));
    const auto resp = r.sentAs<emsdp::UeManageKeysResponse>();
    ASSERT_TRUE(resp.has_value());
    EXPECT_TRUE(resp->keyConfirmation.has_value());
}

TEST(UeRefresh, ResponseWithARandAlreadyRunIsDone) {
    RefreshRig r;
    r.request();
    const auto v = r.feedResponse(2);
    ASSERT_EQ(single<RefreshCompleted>(r.h().out).newKid, 2);
    r.h().out.clear();
    // A stray copy with no request outstanding is ignored.
    r.h().feed(r.peer().manageKeysResponse(v, KA::fiveG, 2));
    EXPECT_EQ(drops(r.h().out), std::vector<DropReason>{DropReason::unexpected_command});
    r.h().out.clear();
    // A15: the UE asks again within the HSE's 44 s and gets the same RAND: done, no USIM run.
    r.request();
    r.h().now.wallSeconds += 10;
    r.h().feed(r.peer().manageKeysResponse(v, KA::fiveG, 2));
    EXPECT_EQ(r.counting.calls, 1u);
    EXPECT_TRUE(r.h().out.datagrams.empty());
    EXPECT_TRUE(r.h().out.akaRequests.empty());
    EXPECT_EQ(single<RefreshCompleted>(r.h().out).newKid, 2);
    EXPECT_TRUE(eventsOf<KeySetStored>(r.h().out).empty()) << "the pending set is unchanged";
    EXPECT_EQ(r.state().pending->created, r.h().now.wallSeconds - 10);
    EXPECT_FALSE(r.h().engine().refreshOutstanding());
}

TEST(UeRefresh, ResponseWithARandThatFailedGetsTheSameRejectAgain) {
    RefreshRig r;
    r.request();
    auto v = r.peer().refreshVector(KA::fiveG);
    v.autn[12] ^= 0x01;
    r.h().feed(r.peer().manageKeysResponse(v, KA::fiveG, 2));
    const auto first = r.sent();
    r.h().out.clear();
    r.request();
    r.h().feed(r.peer().manageKeysResponse(v, KA::fiveG, 2));
    EXPECT_EQ(r.counting.calls, 1u);
    const auto again = r.sent();
    EXPECT_TRUE(again.body == first.body);
    EXPECT_GT(again.count, first.count);
    EXPECT_EQ(single<RefreshFailed>(r.h().out).reason, RefreshFailure::akaMacFailure);
}

TEST(UeRefresh, UnsolicitedResponseIsDroppedWithoutTheUsim) {
    RefreshRig r;
    r.feedResponse(2);
    EXPECT_EQ(drops(r.h().out), std::vector<DropReason>{DropReason::unexpected_command});
    EXPECT_EQ(r.counting.calls, 0u);
    EXPECT_FALSE(r.state().pending.has_value());
}

// ---- at most one pending set ------------------------------------------------------------------

TEST(UeRefresh, ANewRefreshReplacesTheUnusedPendingSet) {
    RefreshRig r;
    r.request();
    r.feedResponse(2);
    ASSERT_EQ(r.h().engine().pendingKid(), std::optional<std::uint8_t>(2));
    r.h().out.clear();
    const auto v3 = r.feedRequest(3);
    EXPECT_EQ(r.h().engine().pendingKid(), std::optional<std::uint8_t>(3));
    EXPECT_EQ(hexOf(r.state().pending->kint), hexOf(v3.kint));
    EXPECT_EQ(r.state().current->kid, 1);
    EXPECT_EQ(r.rig.store.saved().pending->kid, 3);
    EXPECT_EQ(hexOf(r.rig.store.saved().pending->kint), hexOf(v3.kint));
}

TEST(UeRefresh, ANewerHseRequestReplacesOneTheUsimIsStillAnswering) {
    RefreshRig r;
    r.h().setUsim(nullptr);
    r.feedRequest(2);
    const AkaRequest old = r.h().out.akaRequests.at(0);
    r.h().out.clear();
    const auto v3 = r.feedRequest(3);
    EXPECT_EQ(single<RefreshFailed>(r.h().out).reason, RefreshFailure::abandoned);
    const AkaRequest fresh = r.h().out.akaRequests.at(0);
    r.h().out.clear();
    EXPECT_FALSE(r.h().engine().onAkaResult(old.ticket, r.rig.usim.authenticate(old.rand, old.autn),
                                            r.h().now, r.h().out))
        << "the replaced run's answer is stale";
    EXPECT_TRUE(r.h().out.datagrams.empty());
    EXPECT_TRUE(r.h().engine().onAkaResult(
        fresh.ticket, r.rig.usim.authenticate(fresh.rand, fresh.autn), r.h().now, r.h().out));
    EXPECT_EQ(r.h().engine().pendingKid(), std::optional<std::uint8_t>(3));
    EXPECT_EQ(hexOf(r.state().pending->kint), hexOf(v3.kint));
}

TEST(UeRefresh, HseRequestCrossingTheUesOwnRequestIsAnsweredAndTheLastSetIsPending) {
    RefreshRig r;
    r.request();
    r.feedRequest(2);
    const auto resp = r.sentAs<emsdp::UeManageKeysResponse>();
    ASSERT_TRUE(resp.has_value());
    EXPECT_TRUE(resp->keyConfirmation.has_value());
    EXPECT_TRUE(r.h().engine().refreshOutstanding()) << "the UE's own request still waits";
    r.h().out.clear();
    const auto vu = r.feedResponse(3);
    EXPECT_EQ(single<RefreshCompleted>(r.h().out).newKid, 3);
    EXPECT_EQ(r.h().engine().pendingKid(), std::optional<std::uint8_t>(3));
    EXPECT_EQ(hexOf(r.state().pending->kint), hexOf(vu.kint));
    EXPECT_FALSE(r.h().engine().refreshOutstanding());
}

// A11: the pending set has the current set's lifetime, counted from its own AKA.
TEST(UeRefresh, PendingSetLifetimeCountsFromItsOwnAka) {
    RefreshRig r;
    const std::int64_t currentCreated = r.state().current->created;
    r.h().now.wallSeconds = currentCreated + 50'000;
    r.request();
    r.feedResponse(2);
    ASSERT_EQ(r.state().pending->created, currentCreated + 50'000);
    r.endSession();
    // The current set has expired; the pending one has 50,000 s left: resumption with it.
    r.h().now.wallSeconds = currentCreated + 86'400;
    EXPECT_TRUE(r.state().current->expired(r.h().now.wallSeconds));
    r.h().start();
    auto p = emsdp::parseSessionRequest(r.h().only());
    ASSERT_TRUE(p.has_value());
    ASSERT_TRUE(p->resumption());
    EXPECT_EQ(p->header.kid, 2);
    r.h().engine().cancel(r.h().out);
    r.h().out.clear();
    // At created + lifetime the pending set has expired too: a full establishment.
    r.h().now.wallSeconds = currentCreated + 50'000 + 86'400;
    r.h().start();
    auto full = emsdp::parseSessionRequest(r.h().only());
    ASSERT_TRUE(full.has_value());
    EXPECT_FALSE(full->resumption());
}

TEST(UeRefresh, HsesMacdRejectOfTheUesRequestEndsItWithItsCause) {
    RefreshRig r;
    r.request();
    r.h().feed(r.peer().seal(emsdp::MessageReject{Cause::internal_error, {}, {}}));
    const auto failed = single<RefreshFailed>(r.h().out);
    EXPECT_EQ(failed.reason, RefreshFailure::rejected);
    EXPECT_EQ(failed.origin, RefreshOrigin::ue);
    EXPECT_EQ(failed.cause, Cause::internal_error);
    EXPECT_TRUE(eventsOf<PeerRejected>(r.h().out).empty());
    EXPECT_FALSE(r.h().engine().refreshOutstanding());
    EXPECT_FALSE(r.h().engine().nextDeadline().has_value());
    EXPECT_EQ(r.h().engine().phase(), Phase::established);
    // The UE may ask again.
    r.h().out.clear();
    r.request();
}

// ---- the pending set's first session (4.2, A9, A24) --------------------------------------------

TEST(UeRefresh, NextSessionResumesWithThePendingSetWhichThenReplacesTheOldOne) {
    RefreshRig r;
    const Key256 oldKint = r.peer().kint();
    r.request();
    const auto v = r.feedResponse(2);
    r.h().out.clear();
    ASSERT_TRUE(r.h().engine().terminate(r.h().now, r.h().out).has_value());
    r.h().feed(r.peer().seal(emsdp::SessionTerminateResponse{}));
    ASSERT_EQ(r.h().engine().phase(), Phase::idle);
    r.h().out.clear();

    r.h().random.push(0x7777000000000001ULL);
    r.h().start();
    const Bytes req = r.h().only();
    auto parsed = emsdp::parseSessionRequest(req);
    ASSERT_TRUE(parsed.has_value());
    ASSERT_TRUE(parsed->resumption());
    EXPECT_EQ(parsed->header.kid, 2) << "the pending set first (4.2)";
    EXPECT_EQ(parsed->body.ueNonce, 0x7777000000000001ULL) << "a pending set has no nonce yet";
    StartSpec spec;
    spec.kid = 2;
    spec.sessionId = 0x0a0b0c0d;
    r.h().feed(r.peer().answerResumption(req, v.kint, spec));  // EXPECTs the MAC with the new KInt
    const auto est = single<SessionEstablished>(r.h().out);
    EXPECT_TRUE(est.info.resumed);
    EXPECT_EQ(est.info.kid, 2);
    const auto stored = single<KeySetStored>(r.h().out);
    EXPECT_EQ(stored.kid, 2);
    EXPECT_EQ(stored.role, KeySetRole::current);
    EXPECT_EQ(r.state().current->kid, 2);
    EXPECT_EQ(hexOf(r.state().current->kint), hexOf(v.kint));
    EXPECT_FALSE(r.state().pending.has_value());
    EXPECT_EQ(r.state().current->lastNonce, 0x7777000000000001ULL);
    EXPECT_EQ(r.rig.store.saved().current->kid, 2);
    EXPECT_FALSE(r.rig.store.saved().pending.has_value()) << "the old set is destroyed";
    EXPECT_EQ(r.h().engine().pendingKid(), std::nullopt);

    // The old set is never used again: the next session resumes with KID 2, nonce + 1.
    r.h().out.clear();
    r.endSession();
    r.h().start();
    const Bytes again = r.h().only();
    auto p2 = emsdp::parseSessionRequest(again);
    ASSERT_TRUE(p2.has_value());
    EXPECT_EQ(p2->header.kid, 2);
    EXPECT_EQ(p2->body.ueNonce, 0x7777000000000002ULL);
    ASSERT_TRUE(r.state().current.has_value());
    EXPECT_NE(hexOf(r.state().current->kint), hexOf(oldKint));
    EXPECT_FALSE(r.state().pending.has_value());
}

// ---- termination abandons an unfinished refresh (4.5) ------------------------------------------

TEST(UeRefresh, TerminationAbandonsARefreshWaitingForTheUsim) {
    RefreshRig r;
    r.h().setUsim(nullptr);
    r.feedRequest(2);
    const AkaRequest run = r.h().out.akaRequests.at(0);
    r.h().out.clear();
    ASSERT_TRUE(r.h().engine().terminate(r.h().now, r.h().out).has_value());
    const auto failed = single<RefreshFailed>(r.h().out);
    EXPECT_EQ(failed.reason, RefreshFailure::abandoned);
    EXPECT_EQ(failed.origin, RefreshOrigin::hse);
    EXPECT_FALSE(r.h().engine().refreshOutstanding());
    r.h().out.clear();
    EXPECT_FALSE(r.h().engine().onAkaResult(run.ticket, r.rig.usim.authenticate(run.rand, run.autn),
                                            r.h().now, r.h().out));
    EXPECT_TRUE(r.h().out.datagrams.empty());
    EXPECT_FALSE(r.state().pending.has_value()) << "no set from an abandoned refresh";
    // While terminating, a new HSE request is not taken up.
    r.feedRequest(2);
    EXPECT_EQ(drops(r.h().out), std::vector<DropReason>{DropReason::unexpected_command});
    EXPECT_TRUE(r.h().out.akaRequests.empty());
}

TEST(UeRefresh, TerminationAbandonsTheUesOutstandingRequest) {
    RefreshRig r;
    r.request();
    ASSERT_TRUE(r.h().engine().terminate(r.h().now, r.h().out).has_value());
    const auto failed = single<RefreshFailed>(r.h().out);
    EXPECT_EQ(failed.reason, RefreshFailure::abandoned);
    EXPECT_EQ(failed.origin, RefreshOrigin::ue);
    r.h().out.clear();
    // The Response that crossed the Terminate Request is not acted on.
    r.feedResponse(2);
    EXPECT_EQ(drops(r.h().out), std::vector<DropReason>{DropReason::unexpected_command});
    EXPECT_EQ(r.counting.calls, 0u);
    EXPECT_FALSE(r.state().pending.has_value());
}

TEST(UeRefresh, HseTerminationAbandonsARefreshWaitingForTheUsim) {
    RefreshRig r;
    r.h().setUsim(nullptr);
    r.request();
    r.feedResponse(2);
    const AkaRequest run = r.h().out.akaRequests.at(0);
    r.h().out.clear();
    r.h().feed(r.peer().seal(emsdp::SessionTerminateRequest{}));
    EXPECT_EQ(single<RefreshFailed>(r.h().out).reason, RefreshFailure::abandoned);
    EXPECT_EQ(single<SessionTerminated>(r.h().out).initiator, Party::hse);
    EXPECT_FALSE(r.h().engine().onAkaResult(run.ticket, r.rig.usim.authenticate(run.rand, run.autn),
                                            r.h().now, r.h().out));
    EXPECT_FALSE(r.state().pending.has_value());
}

// ---- the UE's request: busy, rejected, unanswered ---------------------------------------------

TEST(UeRefresh, RequestIsRefusedWhileARefreshIsUnderWay) {
    RefreshRig r;
    r.request();
    auto again = r.h().engine().requestKeyRefresh(r.h().now, r.h().out);
    ASSERT_FALSE(again.has_value());
    EXPECT_EQ(again.error().code, static_cast<int>(UeErrc::busy));
    r.h().setUsim(nullptr);
    r.feedResponse(2);
    ASSERT_EQ(r.h().out.akaRequests.size(), 1u);
    EXPECT_TRUE(r.h().engine().refreshOutstanding()) << "the USIM is running";
    auto during = r.h().engine().requestKeyRefresh(r.h().now, r.h().out);
    ASSERT_FALSE(during.has_value());
    EXPECT_EQ(during.error().code, static_cast<int>(UeErrc::busy));
}

TEST(UeRefresh, UnansweredRequestFailsWithNoAnswerThenTheSessionIsLost) {
    RefreshRig r;
    const MonoTime t0 = r.h().now.mono;
    r.request();
    r.h().advanceTo(seconds(44), t0);
    const auto failed = single<RefreshFailed>(r.h().out);
    EXPECT_EQ(failed.reason, RefreshFailure::noAnswer);
    EXPECT_EQ(single<SessionLost>(r.h().out).sessionId, 0x01020304u);
    // RefreshFailed comes before SessionLost.
    std::size_t iFailed = 0;
    std::size_t iLost = 0;
    for (std::size_t i = 0; i < r.h().out.events.size(); ++i) {
        if (std::holds_alternative<RefreshFailed>(r.h().out.events[i]))
            iFailed = i;
        if (std::holds_alternative<SessionLost>(r.h().out.events[i]))
            iLost = i;
    }
    EXPECT_LT(iFailed, iLost);
}

TEST(UeRefresh, UsimErrorLeavesAnHseRequestUnansweredSoItsResendRunsAgain) {
    struct BrokenUsim final : Usim {
        Result<std::string> imsi() override { return std::string(kImsi); }
        Result<AkaOutcome> authenticate(const crypto::Rand&, const crypto::Autn&) override {
            return makeError(UeErrc::usim, "card removed");
        }
    } broken;
    RefreshRig r;
    r.h().setUsim(&broken);
    const auto v = r.feedRequest(2);
    EXPECT_EQ(eventsOf<UsimFailed>(r.h().out).size(), 1u);
    EXPECT_TRUE(eventsOf<RefreshFailed>(r.h().out).empty());
    EXPECT_TRUE(r.h().out.datagrams.empty());
    r.h().out.clear();
    r.h().setUsim(&r.counting);
    r.h().feed(r.peer().manageKeysRequest(v, KA::fiveG, 2));
    EXPECT_EQ(r.counting.calls, 1u);
    const auto resp = r.sentAs<emsdp::UeManageKeysResponse>();
    ASSERT_TRUE(resp.has_value());
    EXPECT_TRUE(resp->keyConfirmation.has_value());
}

// ---- A8: key sets not storable ------------------------------------------------------------------

TEST(UeRefresh, KeySetsNotStorableMeansNoRequestAndHseRequestsAreIgnored) {
    auto settings = exampleSettings();
    settings->capabilities.flags = 0x01;  // confidentiality requested, key sets not storable
    RefreshRig r(settings);
    auto refused = r.h().engine().requestKeyRefresh(r.h().now, r.h().out);
    ASSERT_FALSE(refused.has_value());
    EXPECT_EQ(refused.error().code, static_cast<int>(UeErrc::not_allowed));
    EXPECT_NE(refused.error().message.find("A8"), std::string::npos) << refused.error().message;
    EXPECT_TRUE(r.h().out.datagrams.empty());
    r.feedRequest(2);
    EXPECT_EQ(drops(r.h().out), std::vector<DropReason>{DropReason::unexpected_command});
    EXPECT_TRUE(r.h().out.datagrams.empty());
    EXPECT_EQ(r.counting.calls, 0u);
    EXPECT_FALSE(r.state().pending.has_value());
    EXPECT_EQ(r.rig.store.saves(), 0u);
}

// ---- the pending set on disk, and a restart
// --------------------------------------------------------

struct FileRig {
    explicit FileRig(const std::string& path, std::uint64_t usimSeq = 0)
        : store(path), usim(exampleSoftUsim(usimSeq)) {}
    FileStateStore store;
    SoftUsim usim;
};

TEST(UeRefresh, PendingSetRoundTripsThroughTheStateFileAndTheNextEngineResumesWithIt) {
    TempDir dir("best-ue-refresh-");
    const std::string path = dir.file("ue.state");
    TestHsePeer peer(exampleSubscriber(1));
    RefreshVector v;
    {
        FileRig f(path);
        Harness h(exampleSettings(), {}, &f.store, &f.usim);
        h.start();
        h.feed(peer.answerFull(h.only(), StartSpec{}));
        ASSERT_EQ(eventsOf<SessionEstablished>(h.out).size(), 1u);
        h.out.clear();
        v = peer.refreshVector(KA::fiveG);
        h.feed(peer.manageKeysRequest(v, KA::fiveG, 4));
        ASSERT_EQ(eventsOf<RefreshCompleted>(h.out).size(), 1u);
        ASSERT_TRUE(eventsOf<PersistFailed>(h.out).empty());
    }  // the process dies with the session running
    FileStateStore reader(path);
    auto loaded = reader.load();
    ASSERT_TRUE(loaded.has_value()) << loaded.error().describe();
    ASSERT_TRUE(loaded->pending.has_value());
    EXPECT_EQ(loaded->pending->kid, 4);
    EXPECT_EQ(hexOf(loaded->pending->kint), hexOf(v.kint));
    EXPECT_EQ(loaded->pending->keyAgreement, KA::fiveG);
    EXPECT_EQ(loaded->pending->plmn, (crypto::PlmnId{0x00, 0xf1, 0x10}));
    EXPECT_EQ(loaded->pending->hseId, "hse.example.org");
    EXPECT_EQ(loaded->pending->created, kWallStart);
    EXPECT_EQ(loaded->pending->lifetime, 86400u);
    EXPECT_FALSE(loaded->pending->lastNonce.has_value());
    ASSERT_TRUE(loaded->current.has_value());
    EXPECT_EQ(loaded->current->kid, 1);

    FileRig f(path);
    Harness h(exampleSettings(), *loaded, &f.store, &f.usim);
    h.start();
    const Bytes req = h.only();
    StartSpec spec;
    spec.kid = 4;
    spec.sessionId = 0x0a0b0c0d;
    h.feed(peer.answerResumption(req, v.kint, spec));
    ASSERT_EQ(eventsOf<SessionEstablished>(h.out).size(), 1u);
    EXPECT_EQ(eventsOf<SessionEstablished>(h.out)[0].info.kid, 4);
    auto after = reader.load();
    ASSERT_TRUE(after.has_value());
    EXPECT_EQ(after->current->kid, 4);
    EXPECT_FALSE(after->pending.has_value());
}

TEST(UeRefresh, RestartDuringAnInterruptedRefreshKeepsTheCurrentSetUsable) {
    TempDir dir("best-ue-refresh-");
    const std::string path = dir.file("ue.state");
    TestHsePeer peer(exampleSubscriber(1));
    Key256 currentKint;
    {
        FileRig f(path);
        Harness h(exampleSettings(), {}, &f.store, nullptr);  // the USIM answers "later"
        h.start();
        const Bytes req = h.only();
        const Bytes start = peer.answerFull(req, StartSpec{});
        h.feed(start);
        answerAkaInline(h.engine(), f.usim, h.now, h.out);
        ASSERT_EQ(eventsOf<SessionEstablished>(h.out).size(), 1u);
        currentKint = peer.kint();
        h.out.clear();
        // An HSE refresh and a UE refresh are both under way when the process is killed.
        const auto v = peer.refreshVector(KA::fiveG);
        h.feed(peer.manageKeysRequest(v, KA::fiveG, 2));
        ASSERT_EQ(h.out.akaRequests.size(), 1u);
        EXPECT_TRUE(h.engine().refreshOutstanding());
    }
    FileStateStore reader(path);
    auto loaded = reader.load();
    ASSERT_TRUE(loaded.has_value()) << loaded.error().describe();
    EXPECT_FALSE(loaded->pending.has_value()) << "nothing of the unfinished refresh was stored";
    ASSERT_TRUE(loaded->current.has_value());

    FileRig f(path, 2);
    Harness h(exampleSettings(), *loaded, &f.store, &f.usim);
    EXPECT_FALSE(h.engine().refreshOutstanding());
    h.start();
    const Bytes req = h.only();
    auto parsed = emsdp::parseSessionRequest(req);
    ASSERT_TRUE(parsed.has_value());
    ASSERT_TRUE(parsed->resumption());
    EXPECT_EQ(parsed->header.kid, 1);
    StartSpec spec;
    spec.sessionId = 0x0a0b0c0d;
    h.feed(peer.answerResumption(req, currentKint, spec));
    ASSERT_EQ(eventsOf<SessionEstablished>(h.out).size(), 1u);
    EXPECT_TRUE(eventsOf<SessionEstablished>(h.out)[0].info.resumed);
}

}  // namespace
}  // namespace best::ue::test
