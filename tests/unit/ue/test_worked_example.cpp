// The UE side of the profile's worked example (tests/data/profile-example.txt, computed by an
// independent implementation of the profile), byte for byte: the engine, fed the example's
// inputs (Milenage test set 1 as the software USIM with SEQ_MS(7) = SEQ - 1, the example's
// nonces), emits exactly the example's UE messages and accepts exactly its HSE messages. Only
// inputs are restated here; every expected octet and key is read from the file at run time.
#include <gtest/gtest.h>

#include "profile_example.h"
#include "rig.h"
#include "ue/engine.h"
#include "ue/usim.h"

namespace best::ue::test {
namespace {

constexpr std::uint64_t kSeq = 0x7fcdda685b0;  // the first vector's SEQ (IND 7)
constexpr std::uint64_t kNonceFull = 0x0001020304050607;
constexpr std::uint64_t kNonceResume = 0x1122334455667788;

const best::test::ExampleFile& ex() {
    return best::test::ExampleFile::instance();
}

std::string hexOf(const Key256& k) {
    return hx(k.view());
}

// Request, then the Session Start of `sessionTitle` through the software USIM.
struct FullRun {
    explicit FullRun(std::uint64_t seqMs7 = kSeq - 1)
        : usim(exampleSoftUsim(seqMs7)), h(exampleSettings(), {}, &store, &usim) {
        h.random.push(kNonceFull);
    }
    MemoryStateStore store;
    SoftUsim usim;
    Harness h;
};

TEST(UeWorkedExample, FullRequestIsTheExamplesOctets) {
    FullRun r;
    r.h.start();
    EXPECT_EQ(hx(r.h.only()), hx(ex().octets("Session Request, UE -> HSE")));
    EXPECT_EQ(r.h.engine().phase(), Phase::establishing);
    EXPECT_EQ(r.store.saves(), 0u) << "a full request needs nothing durable before it leaves";
}

TEST(UeWorkedExample, SessionAKaOnlyConfirmsWithTheExamplesOctets) {
    FullRun r;
    r.h.start();
    r.h.out.clear();
    r.h.feed(ex().octets("Session Start A,"));
    EXPECT_TRUE(drops(r.h.out).empty());
    // KA-only: the Session Start Confirmation, CP-UL COUNT 0.
    ASSERT_EQ(r.h.out.datagrams.size(), 1u);
    EXPECT_EQ(hx(r.h.out.datagrams[0]), hx(ex().octets("Session Start Confirmation A")));

    const auto est = eventsOf<SessionEstablished>(r.h.out);
    ASSERT_EQ(est.size(), 1u);
    EXPECT_EQ(est[0].info.sessionId, 0x01020304u);
    EXPECT_EQ(est[0].info.kid, 1);
    EXPECT_EQ(est[0].info.keyAgreement, crypto::KeyAgreement::umts);
    EXPECT_EQ(est[0].info.service, emsdp::Service::kaOnly);
    EXPECT_EQ(est[0].info.termination, emsdp::UpTermination::none);
    EXPECT_EQ(est[0].info.keySetLifetime, 86400u);
    EXPECT_TRUE(est[0].info.confirmationRequired);
    EXPECT_FALSE(est[0].info.resumed);

    const auto eas = eventsOf<EasKeyAvailable>(r.h.out);
    ASSERT_EQ(eas.size(), 1u);
    EXPECT_EQ(hx(eas[0].easKeyId), hx(ex().value("Keys of session A", "EAS key identifier")));
    ASSERT_TRUE(eas[0].easPsk.has_value()) << "KA-only hands KInt_EAS_PSK to the application";
    EXPECT_EQ(hexOf(*eas[0].easPsk), hx(ex().value("Keys of session A", "KInt_EAS_PSK")));

    // The key set: KID 1, current, KInt of session A, the full nonce as its first nonce (A10).
    const UeState& st = r.h.engine().state();
    ASSERT_TRUE(st.current.has_value());
    EXPECT_FALSE(st.pending.has_value());
    EXPECT_EQ(st.current->kid, 1);
    EXPECT_EQ(hexOf(st.current->kint), hx(ex().value("Keys of session A", "KInt =")));
    EXPECT_EQ(st.current->lastNonce, kNonceFull);
    EXPECT_EQ(st.current->hseId, "hse.example.org");
    EXPECT_EQ(st.current->created, kWallStart);
    ASSERT_EQ(eventsOf<KeySetStored>(r.h.out).size(), 1u);
    EXPECT_EQ(r.store.saves(), 1u);
    ASSERT_TRUE(r.store.saved().current.has_value());
    EXPECT_EQ(r.store.saved().current->kid, 1);
    // KA-only carries no user plane.
    EXPECT_FALSE(r.h.engine().sendUplink(hexBytes("68656c6c6f"), r.h.now, r.h.out).has_value());
}

TEST(UeWorkedExample, SessionBUserPlaneIntegrity) {
    FullRun r;
    r.h.start();
    r.h.out.clear();
    r.h.feed(ex().octets("Session Start B,"));
    EXPECT_TRUE(r.h.out.datagrams.empty()) << "UP services need no Session Start Confirmation";
    ASSERT_EQ(eventsOf<SessionEstablished>(r.h.out).size(), 1u);
    EXPECT_EQ(eventsOf<SessionEstablished>(r.h.out)[0].info.keyAgreement,
              crypto::KeyAgreement::eps);
    const auto eas = eventsOf<EasKeyAvailable>(r.h.out);
    ASSERT_EQ(eas.size(), 1u);
    EXPECT_EQ(hx(eas[0].easKeyId), hx(ex().value("Keys of session B", "EAS key identifier")));
    EXPECT_FALSE(eas[0].easPsk.has_value());
    EXPECT_EQ(hexOf(r.h.engine().state().current->kint),
              hx(ex().value("Keys of session B", "KInt =")));
    r.h.out.clear();

    ASSERT_TRUE(r.h.engine().sendUplink(hexBytes("68656c6c6f"), r.h.now, r.h.out).has_value());
    EXPECT_EQ(hx(r.h.only()), hx(ex().octets("UP uplink B")));

    r.h.feed(ex().octets("UP downlink B"));
    const auto dl = eventsOf<DownlinkReceived>(r.h.out);
    ASSERT_EQ(dl.size(), 1u);
    EXPECT_EQ(hx(dl[0].payload), "776f726c64");  // b'world'
    EXPECT_EQ(dl[0].count, 0u);
}

// Session C end to end from the UE side: UP, the UE-triggered refresh (pending KID 2), the
// HSE-triggered refresh (pending KID 3 replaces KID 2, key confirmation at CP-UL 1), termination
// (CP-UL 2), then part 5's resumption with the pending KID 3 the engine stored itself.
TEST(UeWorkedExample, SessionCRefreshesTerminationAndResumptionWithThePendingSet) {
    FullRun r;
    r.h.start();
    r.h.out.clear();
    r.h.feed(ex().octets("Session Start C,"));
    ASSERT_EQ(eventsOf<SessionEstablished>(r.h.out).size(), 1u);
    const SessionInfo info = eventsOf<SessionEstablished>(r.h.out)[0].info;
    EXPECT_EQ(info.keyAgreement, crypto::KeyAgreement::fiveG);
    EXPECT_EQ(info.service, emsdp::Service::upConfidentiality);
    EXPECT_EQ(info.cipheringAlg, 0x02);
    EXPECT_EQ(hx(eventsOf<EasKeyAvailable>(r.h.out)[0].easKeyId),
              hx(ex().value("Keys of session C", "EAS key identifier")));
    EXPECT_EQ(hexOf(r.h.engine().state().current->kint),
              hx(ex().value("Keys of session C", "KInt =")));
    r.h.out.clear();

    // UP both ways, ciphered.
    ASSERT_TRUE(r.h.engine().sendUplink(hexBytes("68656c6c6f"), r.h.now, r.h.out).has_value());
    EXPECT_EQ(hx(r.h.only()), hx(ex().octets("UP uplink C")));
    r.h.feed(ex().octets("UP downlink C"));
    ASSERT_EQ(eventsOf<DownlinkReceived>(r.h.out).size(), 1u);
    EXPECT_EQ(hx(eventsOf<DownlinkReceived>(r.h.out)[0].payload), "776f726c64");
    r.h.out.clear();

    // UE-triggered refresh: the request is the first CP-UL message; the Response runs the USIM
    // on SQN ff9bb4d0b627 and gives pending KID 2. Nothing is sent back on success.
    ASSERT_TRUE(r.h.engine().requestKeyRefresh(r.h.now, r.h.out).has_value());
    EXPECT_EQ(hx(r.h.only()), hx(ex().octets("Manage Keys Request (UE-triggered)")));
    EXPECT_TRUE(r.h.engine().refreshOutstanding());
    r.h.now.wallSeconds = kWallStart + 5;
    r.h.feed(ex().octets("Manage Keys Response, HSE"));
    EXPECT_TRUE(drops(r.h.out).empty());
    EXPECT_TRUE(r.h.out.datagrams.empty());
    ASSERT_EQ(eventsOf<KeySetStored>(r.h.out).size(), 1u);
    EXPECT_EQ(eventsOf<KeySetStored>(r.h.out)[0].kid, 2);
    EXPECT_EQ(eventsOf<KeySetStored>(r.h.out)[0].role, KeySetRole::pending);
    ASSERT_EQ(eventsOf<RefreshCompleted>(r.h.out).size(), 1u);
    EXPECT_EQ(eventsOf<RefreshCompleted>(r.h.out)[0].newKid, 2);
    EXPECT_EQ(eventsOf<RefreshCompleted>(r.h.out)[0].origin, emsdp::RefreshOrigin::ue);
    EXPECT_FALSE(r.h.engine().refreshOutstanding());
    EXPECT_EQ(r.usim.sqnArray().seq(7), kSeq + 1);
    {
        const UeState& st = r.h.engine().state();
        ASSERT_TRUE(st.pending.has_value());
        EXPECT_EQ(st.pending->kid, 2);
        EXPECT_EQ(hexOf(st.pending->kint), hx(ex().value("Pending key set KID 2", "KInt =")));
        EXPECT_EQ(st.pending->keyAgreement, crypto::KeyAgreement::fiveG);
        EXPECT_EQ(st.pending->plmn, (crypto::PlmnId{0x00, 0xf1, 0x10}));
        EXPECT_EQ(st.pending->hseId, "hse.example.org");
        EXPECT_EQ(st.pending->created, kWallStart + 5) << "A11: counted from its own AKA";
        EXPECT_EQ(st.pending->lifetime, 86400u) << "A11: the current set's lifetime";
        EXPECT_FALSE(st.pending->lastNonce.has_value()) << "A10: a pending set has no nonce";
        EXPECT_EQ(st.current->kid, 1) << "a refresh leaves the current set alone";
        EXPECT_EQ(r.h.engine().pendingKid(), std::optional<std::uint8_t>(2));
        ASSERT_TRUE(r.store.saved().pending.has_value()) << "the pending set is durable";
        EXPECT_EQ(r.store.saved().pending->kid, 2);
    }
    r.h.out.clear();

    // HSE-triggered refresh (CP-DL 2, New key ID 3): key confirmation at CP-UL 1, pending KID 3
    // replaces KID 2.
    r.h.feed(ex().octets("Manage Keys Request (HSE-triggered)"));
    EXPECT_TRUE(drops(r.h.out).empty());
    ASSERT_EQ(r.h.out.datagrams.size(), 1u);
    EXPECT_EQ(hx(r.h.out.datagrams[0]),
              hx(ex().octets("Manage Keys Response with key confirmation")));
    ASSERT_EQ(eventsOf<RefreshCompleted>(r.h.out).size(), 1u);
    EXPECT_EQ(eventsOf<RefreshCompleted>(r.h.out)[0].newKid, 3);
    EXPECT_EQ(eventsOf<RefreshCompleted>(r.h.out)[0].origin, emsdp::RefreshOrigin::hse);
    EXPECT_EQ(hexOf(r.h.engine().state().pending->kint),
              hx(ex().value("Pending key set KID 3", "KInt =")));
    EXPECT_EQ(r.h.engine().pendingKid(), std::optional<std::uint8_t>(3));
    EXPECT_EQ(r.store.saved().pending->kid, 3);
    EXPECT_EQ(r.usim.sqnArray().seq(7), kSeq + 2);
    r.h.out.clear();

    // Termination at CP-UL 2; both key sets survive.
    ASSERT_TRUE(r.h.engine().terminate(r.h.now, r.h.out).has_value());
    EXPECT_EQ(hx(r.h.only()), hx(ex().octets("Session Terminate Request, UE")));
    EXPECT_EQ(r.h.engine().phase(), Phase::terminating);
    r.h.feed(ex().octets("Session Terminate Response"));
    const auto term = eventsOf<SessionTerminated>(r.h.out);
    ASSERT_EQ(term.size(), 1u);
    EXPECT_EQ(term[0].initiator, Party::ue);
    EXPECT_TRUE(term[0].answered);
    EXPECT_EQ(r.h.engine().phase(), Phase::idle);
    EXPECT_EQ(r.h.engine().state().current->kid, 1);
    EXPECT_EQ(r.h.engine().state().pending->kid, 3);
    r.h.out.clear();

    // Part 5: the next establishment resumes with the pending set, which then becomes current.
    r.h.random.push(kNonceResume);
    r.h.start();
    EXPECT_EQ(hx(r.h.only()), hx(ex().octets("Resumption Session Request")));
    r.h.feed(ex().octets("Session Start (resumed)"));
    EXPECT_TRUE(drops(r.h.out).empty());
    ASSERT_EQ(eventsOf<SessionEstablished>(r.h.out).size(), 1u);
    EXPECT_EQ(eventsOf<SessionEstablished>(r.h.out)[0].info.kid, 3);
    EXPECT_EQ(r.h.engine().state().current->kid, 3);
    EXPECT_FALSE(r.h.engine().state().pending.has_value());
    EXPECT_EQ(r.store.saved().current->kid, 3);
    EXPECT_FALSE(r.store.saved().pending.has_value());
}

// Part 5: resumption with the pending set KID 3 (made by the refresh of part 3, which is issue
// 7's; built here from the example's KInt for KID 3).
TEST(UeWorkedExample, ResumptionWithPendingKid3) {
    // Session C's state: current KID 1 (5G, nonce of the full request), pending KID 3.
    UeState st;
    st.imsi = std::string(kImsi);
    KeySet current;
    current.kid = 1;
    current.keyAgreement = crypto::KeyAgreement::fiveG;
    current.plmn = crypto::PlmnId{0x00, 0xf1, 0x10};
    current.hseId = "hse.example.org";
    current.kint = Key256(ex().value("Keys of session C", "KInt ="));
    current.created = kWallStart;
    current.lifetime = 86400;
    current.lastNonce = kNonceFull;
    KeySet pending = current;
    pending.kid = 3;
    pending.kint = Key256(ex().value("Pending key set KID 3", "KInt ="));
    pending.created = kWallStart + 10;
    pending.lastNonce.reset();  // A10: a pending set starts with none
    st.current = current;
    st.pending = pending;

    // A store that records how many datagrams were out when it saved.
    struct OrderStore final : StateStore {
        const Output* out = nullptr;
        std::vector<std::size_t> sentAtSave;
        UeState saved;
        Result<void> save(const UeState& s) override {
            sentAtSave.push_back(out->datagrams.size());
            saved = s;
            return {};
        }
    } store;
    Harness h(exampleSettings(), st, &store);
    store.out = &h.out;
    h.now.wallSeconds = kWallStart + 100;
    h.random.push(kNonceResume);
    h.start();
    ASSERT_EQ(store.sentAtSave.size(), 1u);
    EXPECT_EQ(store.sentAtSave[0], 0u) << "the nonce is saved before the request leaves";
    ASSERT_TRUE(store.saved.pending.has_value());
    EXPECT_EQ(store.saved.pending->lastNonce, kNonceResume);
    EXPECT_EQ(store.saved.lastNonce, kNonceResume);
    EXPECT_EQ(hx(h.only()), hx(ex().octets("Resumption Session Request")));

    h.feed(ex().octets("Session Start (resumed)"));
    EXPECT_TRUE(drops(h.out).empty());
    const auto est = eventsOf<SessionEstablished>(h.out);
    ASSERT_EQ(est.size(), 1u);
    EXPECT_TRUE(est[0].info.resumed);
    EXPECT_EQ(est[0].info.sessionId, 0x0a0b0c0du);
    EXPECT_EQ(est[0].info.kid, 3);
    EXPECT_EQ(est[0].info.keyAgreement, crypto::KeyAgreement::fiveG);
    EXPECT_EQ(hx(eventsOf<EasKeyAvailable>(h.out)[0].easKeyId),
              hx(ex().value("Pending key set KID 3", "EAS key identifier")));
    // The pending set's first session: it is current now and KID 1 is gone.
    const UeState& now = h.engine().state();
    ASSERT_TRUE(now.current.has_value());
    EXPECT_EQ(now.current->kid, 3);
    EXPECT_FALSE(now.pending.has_value());
    EXPECT_EQ(store.sentAtSave.size(), 2u);
    ASSERT_TRUE(store.saved.current.has_value());
    EXPECT_EQ(store.saved.current->kid, 3);
    EXPECT_FALSE(store.saved.pending.has_value());
}

// Part 6: the USIM already accepted the SQN: sync failure, Reject 0x0B with AUTS exactly as in
// the example, then the Session Start after the resync (same Session ID) is accepted.
TEST(UeWorkedExample, SyncFailureRejectAndSessionStartAfterResync) {
    FullRun r(kSeq);  // SEQ_MS(7) = SEQ
    r.h.start();
    EXPECT_EQ(hx(r.h.only()), hx(ex().octets("Session Request, UE -> HSE")));
    r.h.feed(ex().octets("Session Start C,"));
    ASSERT_EQ(r.h.out.datagrams.size(), 1u);
    EXPECT_EQ(hx(r.h.out.datagrams[0]), hx(ex().octets("Message Reject 0x0B")));
    ASSERT_EQ(eventsOf<SyncFailureReported>(r.h.out).size(), 1u);
    EXPECT_TRUE(eventsOf<SessionEstablished>(r.h.out).empty());
    EXPECT_EQ(r.h.engine().phase(), Phase::establishing);
    r.h.out.clear();

    r.h.feed(ex().octets("Session Start after the resync"));
    EXPECT_TRUE(drops(r.h.out).empty());
    const auto est = eventsOf<SessionEstablished>(r.h.out);
    ASSERT_EQ(est.size(), 1u);
    EXPECT_EQ(est[0].info.sessionId, 0x01020304u);
    EXPECT_EQ(est[0].info.kid, 1);
    EXPECT_EQ(hx(eventsOf<EasKeyAvailable>(r.h.out)[0].easKeyId),
              hx(ex().value("Keys after the resync", "EAS key identifier")));
    EXPECT_EQ(hexOf(r.h.engine().state().current->kint),
              hx(ex().value("Keys after the resync", "KInt =")));
    EXPECT_EQ(r.usim.sqnArray().seq(7), kSeq + 1);
}

}  // namespace
}  // namespace best::ue::test
