// The UE's Session Start checks (4.1 step 4, 4.2, section 3.3, A7), the USIM outcomes (MAC
// failure -> Reject 0x0A, sync failure -> Reject 0x0B + AUTS and the resync's Session Start),
// and which unprotected Message Rejects the UE acts on (4.5, A2), against the test HSE peer.
#include <gtest/gtest.h>

#include <functional>

#include "rig.h"

namespace best::ue::test {
namespace {

using emsdp::Cause;
using emsdp::DropReason;
using emsdp::Service;
using emsdp::UpTermination;

// ---- A7 and section 3.3: dropped before the USIM runs ------------------------------------------

struct A7Case {
    const char* name;
    std::function<void(UeSettings&)> settings;
    std::function<void(StartSpec&)> spec;
};

TEST(UeSessionStart, EveryA7MismatchOfAFullAnswerIsDroppedBeforeTheUsimRuns) {
    const std::vector<A7Case> cases = {
        {"KA-only with UP termination HSE",
         {},
         [](StartSpec& s) {
             s.service = Service::kaOnly;
             s.termination = UpTermination::none;
             s.mutate = [](emsdp::SessionStart& b) {
                 b.serviceParameters.termination = UpTermination::hse;
             };
         }},
        {"UP integrity with termination none",
         {},
         [](StartSpec& s) {
             s.service = Service::upIntegrity;
             s.termination = UpTermination::none;
         }},
        {"UP confidentiality with ciphering algorithm NULL",
         {},
         [](StartSpec& s) {
             s.mutate = [](emsdp::SessionStart& b) { b.hseConfiguration.cipheringAlg = 0; };
         }},
        {"UP integrity with ciphering algorithm EEA2",
         {},
         [](StartSpec& s) {
             s.service = Service::upIntegrity;
             s.mutate = [](emsdp::SessionStart& b) { b.hseConfiguration.cipheringAlg = 2; };
         }},
        {"KA-only without the confirmation flag",
         {},
         [](StartSpec& s) {
             s.service = Service::kaOnly;
             s.termination = UpTermination::none;
             s.mutate = [](emsdp::SessionStart& b) { b.hseConfiguration.flags = 0; };
         }},
        {"UP integrity with the confirmation flag",
         {},
         [](StartSpec& s) {
             s.service = Service::upIntegrity;
             s.mutate = [](emsdp::SessionStart& b) { b.hseConfiguration.flags = 1; };
         }},
        {"confidentiality granted to a UE without EEA2",
         [](UeSettings& u) {
             u.capabilities.flags = 0x02;
             u.capabilities.cipheringAlgs = 0x01;
         },
         [](StartSpec&) {}},
        {"no RAND/AUTN in answer to a full request",
         {},
         [](StartSpec& s) {
             s.mutate = [](emsdp::SessionStart& b) {
                 b.rand.reset();
                 b.autn.reset();
             };
         }},
        {"HSE Id other than the configured one",
         {},
         [](StartSpec& s) { s.hseId = "other.example.org"; }},
        {"integrity algorithm the UE does not support",
         {},
         [](StartSpec& s) {
             s.mutate = [](emsdp::SessionStart& b) { b.hseConfiguration.integrityAlg = 1; };
         }},
        {"NULL integrity",
         {},
         [](StartSpec& s) {
             s.mutate = [](emsdp::SessionStart& b) { b.hseConfiguration.integrityAlg = 0; };
         }},
        {"key agreement the UE did not offer",
         [](UeSettings& u) { u.capabilities.keyAgreements = 0x01; },
         [](StartSpec& s) { s.keyAgreement = crypto::KeyAgreement::fiveG; }},
    };
    for (const A7Case& c : cases) {
        SCOPED_TRACE(c.name);
        auto settings = exampleSettings();
        if (c.settings)
            c.settings(*settings);
        Rig rig(settings);
        StartSpec spec;
        c.spec(spec);
        const Bytes req = rig.request();
        rig.h.feed(rig.peer.answerFull(req, spec));
        EXPECT_EQ(drops(rig.h.out), std::vector<DropReason>{DropReason::session_start_mismatch});
        EXPECT_TRUE(rig.h.out.datagrams.empty());
        EXPECT_EQ(rig.usim.sqnArray().seq(7), 0u) << "the USIM must not run";
        EXPECT_EQ(rig.h.engine().phase(), Phase::establishing);
    }
}

TEST(UeSessionStart, EveryA7MismatchOfAResumptionAnswerIsDropped) {
    const std::vector<A7Case> cases = {
        {"RAND/AUTN in answer to a resumption",
         {},
         [](StartSpec& s) {
             s.mutate = [](emsdp::SessionStart& b) {
                 b.rand = crypto::Rand{};
                 b.autn = crypto::Autn{};
             };
         }},
        {"KID other than the key set's", {}, [](StartSpec& s) { s.kid = 2; }},
        {"key agreement other than the key set's",
         {},
         [](StartSpec& s) { s.keyAgreement = crypto::KeyAgreement::eps; }},
        {"HSE Id other than the key set's (no HSE Id configured)",
         [](UeSettings& u) { u.hseId.clear(); },
         [](StartSpec& s) { s.hseId = "other.example.org"; }},
        {"KA-only with UP termination EAS",
         {},
         [](StartSpec& s) {
             s.service = Service::kaOnly;
             s.termination = UpTermination::eas;
         }},
    };
    for (const A7Case& c : cases) {
        SCOPED_TRACE(c.name);
        auto settings = exampleSettings();
        if (c.settings)
            c.settings(*settings);
        UeState st;
        st.current = madeUpSet(1, 0x21);
        Rig rig(settings, st);
        StartSpec spec;
        c.spec(spec);
        const Bytes req = rig.request();
        ASSERT_EQ(req[0], 0x08) << "a resumption request with KID 1";
        rig.h.feed(rig.peer.answerResumption(req, st.current->kint, spec));
        EXPECT_EQ(drops(rig.h.out), std::vector<DropReason>{DropReason::session_start_mismatch});
        EXPECT_TRUE(rig.h.out.datagrams.empty());
        EXPECT_EQ(rig.h.engine().phase(), Phase::establishing);
    }
}

TEST(UeSessionStart, ResumptionAnswerThatFitsIsAccepted) {
    UeState st;
    st.current = madeUpSet(1, 0x21);
    Rig rig(exampleSettings(), st);
    const Bytes req = rig.request();
    StartSpec spec;
    spec.sessionId = 0x77;
    rig.h.feed(rig.peer.answerResumption(req, st.current->kint, spec));
    EXPECT_TRUE(drops(rig.h.out).empty());
    ASSERT_EQ(eventsOf<SessionEstablished>(rig.h.out).size(), 1u);
    EXPECT_TRUE(eventsOf<SessionEstablished>(rig.h.out)[0].info.resumed);
    EXPECT_EQ(rig.h.engine().state().current->lastNonce, 0x1001u) << "the set's last nonce + 1";
}

TEST(UeSessionStart, CounterSchemeAboveThreeIsDroppedAsAFormatError) {
    Rig rig;
    const Bytes req = rig.request();
    Bytes start = rig.peer.answerFull(req, StartSpec{});
    // Find the HSE configuration TLV (tag 0x14) after the command octet and announce n = 4.
    std::size_t pos = 6;
    while (pos + 1 < start.size() && start[pos] != 0x14)
        pos += 2 + start[pos + 1];
    ASSERT_LT(pos + 2, start.size());
    start[pos + 2] = 4;
    rig.h.feed(start);
    EXPECT_EQ(drops(rig.h.out), std::vector<DropReason>{DropReason::value_out_of_range});
    EXPECT_EQ(rig.usim.sqnArray().seq(7), 0u);
}

TEST(UeSessionStart, UnparsableOrMisaddressedSessionStartsAreDropped) {
    Rig rig;
    const Bytes req = rig.request();
    const Bytes start = rig.peer.answerFull(req, StartSpec{});
    Bytes kid0 = start;
    kid0[0] &= 0xC7;  // KID 0
    rig.h.feed(kid0);
    Bytes truncated(start.begin(), start.begin() + 8);
    rig.h.feed(truncated);
    Bytes notStart = start;
    notStart[5] = 0x12;  // a Confirmation from the HSE
    rig.h.feed(notStart);
    EXPECT_EQ(drops(rig.h.out),
              (std::vector<DropReason>{DropReason::kid_mismatch, DropReason::truncated_message,
                                       DropReason::unexpected_command}));
    rig.h.out.clear();
    rig.h.feed(start);
    EXPECT_EQ(eventsOf<SessionEstablished>(rig.h.out).size(), 1u);
}

// ---- after the USIM ran: MAC and checksum -------------------------------------------------------

TEST(UeSessionStart, BadMacAfterTheUsimRanIsDroppedAndALaterStartVerifies) {
    Rig rig;
    const Bytes req = rig.request();
    StartSpec bad;
    bad.corruptMac = true;
    rig.h.feed(rig.peer.answerFull(req, bad));
    EXPECT_EQ(drops(rig.h.out), std::vector<DropReason>{DropReason::bad_mac});
    EXPECT_EQ(rig.usim.sqnArray().seq(7), 1u) << "the USIM used that SQN";
    EXPECT_TRUE(rig.h.out.datagrams.empty());
    EXPECT_EQ(rig.h.engine().phase(), Phase::establishing);
    rig.h.out.clear();
    // The resend at 4 s is the identical request; a good answer (next SQN) verifies.
    rig.h.advance(std::chrono::seconds(4));
    EXPECT_EQ(hx(rig.h.only()), hx(req));
    rig.h.feed(rig.peer.answerFull(req, StartSpec{}));
    EXPECT_EQ(eventsOf<SessionEstablished>(rig.h.out).size(), 1u);
}

TEST(UeSessionStart, WrongRequestChecksumIsDropped) {
    Rig rig;
    const Bytes req = rig.request();
    StartSpec spec;
    spec.mutate = [](emsdp::SessionStart& b) { b.requestChecksum[0] ^= 0x01; };
    rig.h.feed(rig.peer.answerFull(req, spec));
    EXPECT_EQ(drops(rig.h.out), std::vector<DropReason>{DropReason::checksum_mismatch});
    EXPECT_TRUE(eventsOf<SessionEstablished>(rig.h.out).empty());
    EXPECT_FALSE(rig.h.engine().state().current.has_value());
}

TEST(UeSessionStart, MissingSeparationBitIsAMacFailureWithoutRunningTheUsim) {
    for (auto ka : {crypto::KeyAgreement::eps, crypto::KeyAgreement::fiveG}) {
        SCOPED_TRACE(static_cast<int>(ka));
        Rig rig;
        rig.peer.subscriber().amf = {0x39, 0xb9};  // separation bit (AMF bit 15) clear
        const Bytes req = rig.request();
        StartSpec spec;
        spec.keyAgreement = ka;
        spec.sessionId = 0x55667788;
        rig.h.feed(rig.peer.answerFull(req, spec));
        EXPECT_TRUE(rig.h.out.akaRequests.empty());
        EXPECT_EQ(rig.usim.sqnArray().seq(7), 0u);
        ASSERT_EQ(rig.h.out.datagrams.size(), 1u);
        // Unprotected Message Reject 0x0A: KID 0, the Session Start's Session ID, Cause TLV.
        EXPECT_EQ(hx(rig.h.out.datagrams[0]), "00556677888020010a");
        const auto ended = eventsOf<AttemptEnded>(rig.h.out);
        ASSERT_EQ(ended.size(), 1u);
        EXPECT_EQ(ended[0].reason, AttemptEnd::akaMacFailure);
        EXPECT_EQ(rig.h.engine().phase(), Phase::idle);
    }
}

TEST(UeSessionStart, SeparationBitDoesNotMatterForUmts) {
    Rig rig;
    rig.peer.subscriber().amf = {0x39, 0xb9};
    StartSpec spec;
    spec.keyAgreement = crypto::KeyAgreement::umts;
    rig.establish(spec);
    EXPECT_EQ(rig.usim.sqnArray().seq(7), 1u);
}

TEST(UeSessionStart, UsimMacFailureSendsReject0x0AAndEndsTheAttempt) {
    Rig rig;
    rig.peer.subscriber().k = SubscriberK(hexBytes("000102030405060708090a0b0c0d0e0f"));
    const Bytes req = rig.request();
    StartSpec spec;
    spec.sessionId = 0x0000abcd;
    rig.h.feed(rig.peer.answerFull(req, spec));
    ASSERT_EQ(rig.h.out.datagrams.size(), 1u);
    EXPECT_EQ(hx(rig.h.out.datagrams[0]), "000000abcd8020010a");
    ASSERT_EQ(eventsOf<AttemptEnded>(rig.h.out).size(), 1u);
    EXPECT_EQ(eventsOf<AttemptEnded>(rig.h.out)[0].reason, AttemptEnd::akaMacFailure);
    rig.h.out.clear();
    // The attempt is over: no more resends.
    rig.h.advance(std::chrono::seconds(60));
    EXPECT_TRUE(rig.h.out.datagrams.empty());
    EXPECT_FALSE(rig.h.engine().nextDeadline().has_value());
}

TEST(UeSessionStart, SyncFailureThenTheResyncedStartWithTheSameSessionIdIsAccepted) {
    Rig rig(exampleSettings(), {}, /*peerSeq=*/3, /*usimSeqMs=*/9);
    const Bytes req = rig.request();
    StartSpec spec;
    spec.sessionId = 0x01020304;
    spec.rand = crypto::Rand{};
    spec.rand->fill(0x31);
    rig.h.feed(rig.peer.answerFull(req, spec));
    ASSERT_EQ(rig.h.out.datagrams.size(), 1u);
    const Bytes reject = rig.h.out.datagrams[0];
    EXPECT_EQ(hx(ByteView(reject).first(6)), "000102030480");  // KID 0, the Session ID, 0x80
    ASSERT_EQ(eventsOf<SyncFailureReported>(rig.h.out).size(), 1u);
    rig.h.out.clear();
    // The peer resynchronises from AUTS (SEQ_HE = 9) and answers with SEQ 10.
    rig.h.feed(rig.peer.answerResync(reject, req, spec));
    EXPECT_TRUE(drops(rig.h.out).empty());
    ASSERT_EQ(eventsOf<SessionEstablished>(rig.h.out).size(), 1u);
    EXPECT_EQ(rig.usim.sqnArray().seq(7), 10u);
}

TEST(UeSessionStart, AkaAnswerArrivingLaterIsTakenAndStaleTicketsAreIgnored) {
    MemoryStateStore store;
    SoftUsim usim = exampleSoftUsim();
    Harness h(exampleSettings(), {}, &store, nullptr);  // nobody answers inline
    TestHsePeer peer(exampleSubscriber(1));
    h.start();
    const Bytes req = h.only();
    const Bytes start = peer.answerFull(req, StartSpec{});
    h.feed(start);
    ASSERT_EQ(h.out.akaRequests.size(), 1u);
    const AkaRequest aka = h.out.akaRequests[0];
    h.out.clear();
    // While the USIM works, the same Session Start again is not run twice.
    h.feed(start);
    EXPECT_EQ(drops(h.out), std::vector<DropReason>{DropReason::unexpected_command});
    EXPECT_TRUE(h.out.akaRequests.empty());
    h.out.clear();
    // The resend schedule goes on meanwhile.
    h.advance(std::chrono::seconds(4));
    EXPECT_EQ(hx(h.only()), hx(req));
    EXPECT_FALSE(h.engine().onAkaResult(aka.ticket + 1, AkaOutcome{AkaMacFailure{}}, h.now, h.out));
    EXPECT_TRUE(h.out.events.empty());
    EXPECT_TRUE(
        h.engine().onAkaResult(aka.ticket, usim.authenticate(aka.rand, aka.autn), h.now, h.out));
    EXPECT_EQ(eventsOf<SessionEstablished>(h.out).size(), 1u);
    EXPECT_FALSE(h.engine().onAkaResult(aka.ticket, AkaOutcome{AkaMacFailure{}}, h.now, h.out));
}

TEST(UeSessionStart, UsimErrorIsReportedAndTheAttemptGoesOn) {
    MemoryStateStore store;
    Harness h(exampleSettings(), {}, &store, nullptr);
    TestHsePeer peer(exampleSubscriber(1));
    h.start();
    const Bytes req = h.only();
    h.feed(peer.answerFull(req, StartSpec{}));
    ASSERT_EQ(h.out.akaRequests.size(), 1u);
    const auto ticket = h.out.akaRequests[0].ticket;
    h.out.clear();
    EXPECT_TRUE(
        h.engine().onAkaResult(ticket, makeError(UeErrc::usim, "card removed"), h.now, h.out));
    ASSERT_EQ(eventsOf<UsimFailed>(h.out).size(), 1u);
    EXPECT_TRUE(h.out.datagrams.empty());
    EXPECT_EQ(h.engine().phase(), Phase::establishing);
}

// ---- unprotected Message Rejects (4.5, A2)
// -------------------------------------------------------

Bytes unprotectedReject(std::uint32_t sid, Cause cause, std::optional<std::uint16_t> backOff = {}) {
    std::array<std::uint8_t, 64> buf{};
    auto n = emsdp::encodeUnprotectedReject(sid, emsdp::MessageReject{cause, {}, backOff}, buf);
    EXPECT_TRUE(n.has_value());
    return n ? Bytes(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(*n)) : Bytes{};
}

TEST(UeReject, RejectWithSessionIdZeroFromTheHseEndsTheAttempt) {
    Rig rig;
    rig.request();
    rig.h.feed(unprotectedReject(0, Cause::eas_not_allowed));
    const auto ended = eventsOf<AttemptEnded>(rig.h.out);
    ASSERT_EQ(ended.size(), 1u);
    EXPECT_EQ(ended[0].reason, AttemptEnd::rejected);
    EXPECT_EQ(ended[0].cause, Cause::eas_not_allowed);
    EXPECT_FALSE(ended[0].resumption);
    EXPECT_EQ(rig.h.engine().phase(), Phase::idle);
}

TEST(UeReject, RejectFromAnotherAddressIsDropped) {
    Rig rig;
    rig.request();
    rig.h.feed(unprotectedReject(0, Cause::eas_not_allowed), Source::other);
    EXPECT_EQ(drops(rig.h.out), std::vector<DropReason>{DropReason::wrong_source_address});
    EXPECT_EQ(rig.h.engine().phase(), Phase::establishing);
}

TEST(UeReject, RejectWithASessionIdNotOfTheAttemptIsDropped) {
    Rig rig;
    rig.request();
    rig.h.feed(unprotectedReject(0x01020304, Cause::resync_failed));
    EXPECT_EQ(drops(rig.h.out), std::vector<DropReason>{DropReason::unsolicited_reject});
    EXPECT_EQ(rig.h.engine().phase(), Phase::establishing);
}

TEST(UeReject, RejectWhileNotWaitingIsDropped) {
    Rig rig;
    rig.h.feed(unprotectedReject(0, Cause::congestion, 10));  // idle
    EXPECT_EQ(drops(rig.h.out), std::vector<DropReason>{DropReason::unsolicited_reject});
    rig.h.out.clear();
    rig.establish();
    rig.h.feed(unprotectedReject(0, Cause::congestion, 10));  // established
    rig.h.feed(unprotectedReject(0x01020304, Cause::resync_failed));
    EXPECT_EQ(drops(rig.h.out), (std::vector<DropReason>{DropReason::unsolicited_reject,
                                                         DropReason::unsolicited_reject}));
    EXPECT_EQ(rig.h.engine().phase(), Phase::established);
    EXPECT_FALSE(rig.h.engine().backOffUntil().has_value());
}

TEST(UeReject, RejectWithTheSessionIdOfTheAttemptsSessionStartIsAccepted) {
    // After a sync failure the HSE may give up with 0x14 under the attempt's Session ID.
    Rig rig(exampleSettings(), {}, 3, 9);
    const Bytes req = rig.request();
    StartSpec spec;
    spec.sessionId = 0x00c0ffee;
    rig.h.feed(rig.peer.answerFull(req, spec));
    ASSERT_EQ(eventsOf<SyncFailureReported>(rig.h.out).size(), 1u);
    rig.h.out.clear();
    rig.h.feed(unprotectedReject(0x00c0ffee, Cause::resync_failed));
    const auto ended = eventsOf<AttemptEnded>(rig.h.out);
    ASSERT_EQ(ended.size(), 1u);
    EXPECT_EQ(ended[0].cause, Cause::resync_failed);
    EXPECT_EQ(rig.h.engine().phase(), Phase::idle);
}

TEST(UeReject, MalformedUnprotectedRejectIsDropped) {
    Rig rig;
    rig.request();
    Bytes noCause = {0x00, 0, 0, 0, 0, 0x80};
    rig.h.feed(noCause);
    EXPECT_EQ(drops(rig.h.out), std::vector<DropReason>{DropReason::missing_mandatory_ie});
    EXPECT_EQ(rig.h.engine().phase(), Phase::establishing);
}

}  // namespace
}  // namespace best::ue::test
