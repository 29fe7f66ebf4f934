// The UE engine over a session's life against the test HSE peer: the A13 resend schedule on a
// fake clock, back-off (0x0F), fallback to full on 0x0D, which key set a resumption uses (4.2),
// user plane (replay, KA-only, UE-to-EAS keys), MAC'd faults, termination both ways (4.5, A18),
// a lost session (A23) and counter exhaustion (A1).
#include <gtest/gtest.h>

#include <chrono>

#include "rig.h"

namespace best::ue::test {
namespace {

using emsdp::Cause;
using emsdp::DropReason;
using emsdp::Service;
using emsdp::UpTermination;
using std::chrono::milliseconds;
using std::chrono::seconds;

Bytes unprotectedReject(std::uint32_t sid, Cause cause, std::optional<std::uint16_t> backOff = {}) {
    std::array<std::uint8_t, 64> buf{};
    auto n = emsdp::encodeUnprotectedReject(sid, emsdp::MessageReject{cause, {}, backOff}, buf);
    EXPECT_TRUE(n.has_value());
    return n ? Bytes(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(*n)) : Bytes{};
}

emsdp::ParsedSessionRequest parseRequest(ByteView d) {
    auto r = emsdp::parseSessionRequest(d);
    EXPECT_TRUE(r.has_value());
    return r ? *r : emsdp::ParsedSessionRequest{};
}

Bytes bytesOf(std::string_view s) {
    return Bytes(s.begin(), s.end());
}

// ---- A13: the Session Request schedule --------------------------------------------------------

TEST(UeResend, SessionRequestIsResentIdenticallyAt4_12_28AndGivenUp16SecondsLater) {
    Rig rig;
    const Bytes req = rig.request();
    const MonoTime t0 = rig.h.now.mono;
    EXPECT_EQ(rig.h.engine().nextDeadline(), t0 + seconds(4));
    const std::array<std::pair<int, int>, 3> at = {{{4, 12}, {12, 28}, {28, 44}}};
    for (const auto& [resendAt, nextAt] : at) {
        SCOPED_TRACE(resendAt);
        rig.h.advanceTo(seconds(resendAt) - milliseconds(1), t0);
        EXPECT_TRUE(rig.h.out.datagrams.empty());
        rig.h.advanceTo(seconds(resendAt), t0);
        EXPECT_EQ(hx(rig.h.only()), hx(req)) << "the identical octets";
        EXPECT_EQ(rig.h.engine().nextDeadline(), t0 + seconds(nextAt));
    }
    rig.h.advanceTo(seconds(44) - milliseconds(1), t0);
    EXPECT_TRUE(rig.h.out.datagrams.empty());
    EXPECT_EQ(rig.h.engine().phase(), Phase::establishing);
    rig.h.advanceTo(seconds(44), t0);
    EXPECT_TRUE(rig.h.out.datagrams.empty());
    const auto ended = eventsOf<AttemptEnded>(rig.h.out);
    ASSERT_EQ(ended.size(), 1u);
    EXPECT_EQ(ended[0].reason, AttemptEnd::noAnswer);
    EXPECT_EQ(rig.h.engine().phase(), Phase::idle);
    EXPECT_FALSE(rig.h.engine().nextDeadline().has_value());
}

TEST(UeResend, ALateDriverGetsOneResendNotABurst) {
    Rig rig;
    const Bytes req = rig.request();
    const MonoTime t0 = rig.h.now.mono;
    rig.h.advanceTo(seconds(30), t0);
    EXPECT_EQ(hx(rig.h.only()), hx(req));
    EXPECT_EQ(rig.h.engine().nextDeadline(), t0 + seconds(44));
    rig.h.advanceTo(seconds(100), t0);
    EXPECT_TRUE(rig.h.out.datagrams.empty());
    EXPECT_EQ(eventsOf<AttemptEnded>(rig.h.out).size(), 1u);
}

TEST(UeResend, ResendsStopWhenASessionStartVerifies) {
    Rig rig;
    rig.establish();
    EXPECT_FALSE(rig.h.engine().nextDeadline().has_value());
    rig.h.advance(seconds(60));
    EXPECT_TRUE(rig.h.out.datagrams.empty());
    EXPECT_EQ(rig.h.engine().phase(), Phase::established);
}

TEST(UeResend, SessionStartRepeatedForACrossedResendIsDroppedAsADuplicate) {
    Rig rig;
    const Bytes req = rig.request();
    const Bytes start = rig.peer.answerFull(req, StartSpec{});
    rig.h.feed(start);
    ASSERT_EQ(eventsOf<SessionEstablished>(rig.h.out).size(), 1u);
    rig.h.out.clear();
    rig.h.feed(start);  // the HSE answered a resend that crossed its Session Start
    EXPECT_EQ(drops(rig.h.out), std::vector<DropReason>{DropReason::unexpected_command});
    EXPECT_TRUE(rig.h.out.datagrams.empty());
    EXPECT_EQ(rig.h.engine().phase(), Phase::established);
}

TEST(UeResend, ScheduleIsConfigurable) {
    auto settings = exampleSettings();
    settings->timers.resendGaps = {seconds(1), seconds(1)};
    settings->timers.giveUpAfterLast = seconds(2);
    Rig rig(settings);
    const Bytes req = rig.request();
    const MonoTime t0 = rig.h.now.mono;
    rig.h.advanceTo(seconds(1), t0);
    EXPECT_EQ(hx(rig.h.only()), hx(req));
    rig.h.advanceTo(seconds(2), t0);
    EXPECT_EQ(hx(rig.h.only()), hx(req));
    rig.h.advanceTo(seconds(4), t0);
    EXPECT_EQ(eventsOf<AttemptEnded>(rig.h.out).size(), 1u);
}

// ---- 0x0F back-off and 0x0D fallback ----------------------------------------------------------

TEST(UeBackOff, CongestionRejectDefersTheNextStartUntilTheBackOffEnds) {
    Rig rig;
    rig.request();
    const MonoTime t0 = rig.h.now.mono;
    rig.h.feed(unprotectedReject(0, Cause::congestion, 30));
    const auto ended = eventsOf<AttemptEnded>(rig.h.out);
    ASSERT_EQ(ended.size(), 1u);
    EXPECT_EQ(ended[0].cause, Cause::congestion);
    EXPECT_EQ(ended[0].backOff, 30);
    EXPECT_EQ(rig.h.engine().backOffUntil(), t0 + seconds(30));
    rig.h.out.clear();

    rig.h.advanceTo(seconds(10), t0);
    ASSERT_TRUE(rig.h.engine().start(rig.h.now, rig.h.out).has_value());
    EXPECT_TRUE(rig.h.out.datagrams.empty()) << "no request during the back-off";
    EXPECT_EQ(rig.h.engine().phase(), Phase::backingOff);
    EXPECT_EQ(rig.h.engine().nextDeadline(), t0 + seconds(30));
    rig.h.advanceTo(seconds(30) - milliseconds(1), t0);
    EXPECT_TRUE(rig.h.out.datagrams.empty());
    rig.h.advanceTo(seconds(30), t0);
    const Bytes req = rig.h.only();
    EXPECT_FALSE(parseRequest(req).resumption());
    EXPECT_EQ(rig.h.engine().phase(), Phase::establishing);
    rig.h.feed(rig.peer.answerFull(req, StartSpec{}));
    EXPECT_EQ(eventsOf<SessionEstablished>(rig.h.out).size(), 1u);
}

TEST(UeBackOff, StartAfterTheBackOffIsImmediate) {
    Rig rig;
    rig.request();
    rig.h.feed(unprotectedReject(0, Cause::congestion, 5));
    rig.h.out.clear();
    rig.h.advance(seconds(5));
    rig.h.start();
    EXPECT_EQ(rig.h.out.datagrams.size(), 1u);
}

TEST(UeFallback, Reject0x0DToAResumptionFallsBackToFullAndTheNewSetReplacesTheOld) {
    UeState st;
    st.current = madeUpSet(1, 0x21);
    Rig rig(exampleSettings(), st);
    const Bytes resume = rig.request();
    ASSERT_TRUE(parseRequest(resume).resumption());
    rig.h.feed(unprotectedReject(0, Cause::key_set_invalid));
    const auto fb = eventsOf<FallbackToFull>(rig.h.out);
    ASSERT_EQ(fb.size(), 1u);
    EXPECT_EQ(fb[0].refusedKid, 1);
    EXPECT_TRUE(eventsOf<AttemptEnded>(rig.h.out).empty());
    const Bytes full = rig.h.only();
    const auto parsed = parseRequest(full);
    EXPECT_FALSE(parsed.resumption());
    EXPECT_NE(parsed.body.ueNonce, parseRequest(resume).body.ueNonce);
    EXPECT_TRUE(rig.h.engine().state().current.has_value()) << "kept until a full start verifies";

    StartSpec spec;
    spec.kid = 2;
    rig.h.feed(rig.peer.answerFull(full, spec));
    ASSERT_EQ(eventsOf<SessionEstablished>(rig.h.out).size(), 1u);
    const UeState& now = rig.h.engine().state();
    ASSERT_TRUE(now.current.has_value());
    EXPECT_EQ(now.current->kid, 2);
    EXPECT_FALSE(now.pending.has_value());
    EXPECT_EQ(rig.store.saved().current->kid, 2);
    EXPECT_TRUE(rig.store.saved().current->kint.equals(rig.peer.kint()));
}

TEST(UeFallback, Reject0x0DToAFullRequestJustEndsIt) {
    Rig rig;
    rig.request();
    rig.h.feed(unprotectedReject(0, Cause::key_set_invalid));
    EXPECT_TRUE(eventsOf<FallbackToFull>(rig.h.out).empty());
    EXPECT_EQ(eventsOf<AttemptEnded>(rig.h.out).size(), 1u);
    EXPECT_EQ(rig.h.engine().phase(), Phase::idle);
}

// ---- which key set a resumption uses (4.2, A8, A10) -------------------------------------------

TEST(UeResumption, PendingSetFirstWithAFreshRandomNonce) {
    UeState st;
    st.current = madeUpSet(1, 0x21);
    st.pending = madeUpSet(3, 0x42);
    st.pending->lastNonce.reset();
    Rig rig(exampleSettings(), st);
    rig.h.random.push(0x0000000000000777);
    const Bytes req = rig.request();
    const auto p = parseRequest(req);
    EXPECT_EQ(p.header.kid, 3);
    EXPECT_EQ(p.body.ueNonce, 0x777u);
    EXPECT_EQ(rig.store.saves(), 1u);
    EXPECT_EQ(rig.store.saved().pending->lastNonce, 0x777u);
    // A resumption with the current set leaves a pending set alone; with the pending set, the
    // first verified session makes it current.
    StartSpec spec;
    spec.kid = 3;
    rig.h.feed(rig.peer.answerResumption(req, st.pending->kint, spec));
    ASSERT_EQ(eventsOf<SessionEstablished>(rig.h.out).size(), 1u);
    EXPECT_EQ(rig.h.engine().state().current->kid, 3);
    EXPECT_FALSE(rig.h.engine().state().pending.has_value());
}

TEST(UeResumption, CurrentSetWithItsLastNoncePlusOneAndThePendingSetLeftAlone) {
    UeState st;
    st.current = madeUpSet(1, 0x21);
    st.pending = madeUpSet(3, 0x42);
    st.pending->created = kWallStart - 86400;  // expired: lifetime counted from its AKA
    Rig rig(exampleSettings(), st);
    const Bytes req = rig.request();
    const auto p = parseRequest(req);
    EXPECT_EQ(p.header.kid, 1);
    EXPECT_EQ(p.body.ueNonce, 0x1001u);
    rig.h.feed(rig.peer.answerResumption(req, st.current->kint, StartSpec{}));
    ASSERT_EQ(eventsOf<SessionEstablished>(rig.h.out).size(), 1u);
    EXPECT_EQ(rig.h.engine().state().current->kid, 1);
    EXPECT_TRUE(rig.h.engine().state().pending.has_value());
}

TEST(UeResumption, NeverAnExpiredSet) {
    UeState st;
    st.current = madeUpSet(1, 0x21);
    st.current->created = kWallStart - 86400;  // exactly its lifetime ago: expired
    Rig rig(exampleSettings(), st);
    const Bytes req = rig.request();
    EXPECT_FALSE(parseRequest(req).resumption());
    EXPECT_EQ(rig.store.saves(), 0u);
}

TEST(UeResumption, LifetimeZeroNeverExpires) {
    UeState st;
    st.current = madeUpSet(1, 0x21);
    st.current->created = 0;
    st.current->lifetime = 0;
    Rig rig(exampleSettings(), st);
    EXPECT_TRUE(parseRequest(rig.request()).resumption());
}

TEST(UeResumption, SetWithNoNonceLeftIsNotUsed) {
    UeState st;
    st.current = madeUpSet(1, 0x21);
    st.current->lastNonce = ~std::uint64_t{0};
    Rig rig(exampleSettings(), st);
    EXPECT_FALSE(parseRequest(rig.request()).resumption());
}

TEST(UeResumption, KeySetsNotStorableMeansFullAndNothingSaved) {
    auto settings = exampleSettings();
    settings->capabilities.flags = 0x01;  // confidentiality, key sets not storable (A8)
    UeState st;
    st.current = madeUpSet(1, 0x21);
    Rig rig(settings, st);
    const Bytes req = rig.request();
    EXPECT_FALSE(parseRequest(req).resumption());
    rig.h.feed(rig.peer.answerFull(req, StartSpec{}));
    ASSERT_EQ(eventsOf<SessionEstablished>(rig.h.out).size(), 1u);
    EXPECT_EQ(rig.store.saves(), 0u);
    rig.h.out.clear();
    EXPECT_FALSE(rig.h.engine().requestKeyRefresh(rig.h.now, rig.h.out).has_value());
}

TEST(UeResumption, FailedNonceSaveMeansNoResumptionRequest) {
    struct FailingStore final : StateStore {
        Result<void> save(const UeState&) override {
            return makeError(StateFileErrc::io, "disk full");
        }
    } store;
    UeState st;
    st.current = madeUpSet(1, 0x21);
    Harness h(exampleSettings(), st, &store);
    h.start();
    ASSERT_EQ(eventsOf<PersistFailed>(h.out).size(), 1u);
    ASSERT_EQ(h.out.datagrams.size(), 1u);
    EXPECT_FALSE(parseRequest(h.out.datagrams[0]).resumption()) << "a full request instead";
    EXPECT_EQ(h.engine().state().current->lastNonce, 0x1001u) << "never reused in memory";
}

TEST(UeFootprint, AnIdleEngineIsSmall) {
    // A load driver keeps thousands of engines: idle, an engine is its key sets and a few
    // pointers; attempts and sessions live behind pointers only while they exist.
    EXPECT_LE(sizeof(UeEngine), 512u);
    Rig rig;
    rig.establish();
    ASSERT_TRUE(rig.h.engine().terminate(rig.h.now, rig.h.out).has_value());
    rig.h.feed(rig.peer.seal(emsdp::SessionTerminateResponse{}));
    EXPECT_EQ(rig.h.engine().phase(), Phase::idle);
    EXPECT_FALSE(rig.h.engine().session().has_value());
    EXPECT_FALSE(rig.h.engine().counters().has_value());
}

TEST(UeResumption, StartWhileBusyIsRefused) {
    Rig rig;
    rig.request();
    auto again = rig.h.engine().start(rig.h.now, rig.h.out);
    ASSERT_FALSE(again.has_value());
    EXPECT_EQ(again.error().code, static_cast<int>(UeErrc::busy));
    rig.h.engine().cancel(rig.h.out);
    EXPECT_EQ(eventsOf<AttemptEnded>(rig.h.out).size(), 1u);
    EXPECT_EQ(rig.h.engine().phase(), Phase::idle);
}

// ---- user plane -------------------------------------------------------------------------------

TEST(UeUserPlane, DownlinkIsDeliveredOnceReorderingAllowedReplayDropped) {
    Rig rig;
    rig.establish();
    const Bytes d0 = rig.peer.sealUp(bytesOf("zero"));
    const Bytes d1 = rig.peer.sealUp(bytesOf("one"));
    rig.h.feed(d1);
    rig.h.feed(d0);
    rig.h.feed(d1);
    const auto dl = eventsOf<DownlinkReceived>(rig.h.out);
    ASSERT_EQ(dl.size(), 2u);
    EXPECT_EQ(dl[0].payload, bytesOf("one"));
    EXPECT_EQ(dl[0].count, 1u);
    EXPECT_EQ(dl[1].payload, bytesOf("zero"));
    EXPECT_EQ(drops(rig.h.out), std::vector<DropReason>{DropReason::replayed_counter});
}

TEST(UeUserPlane, UplinkBothServicesAndTheSizeLimit) {
    for (Service svc : {Service::upIntegrity, Service::upConfidentiality}) {
        SCOPED_TRACE(static_cast<int>(svc));
        Rig rig;
        StartSpec spec;
        spec.service = svc;
        rig.establish(spec);
        ASSERT_TRUE(rig.h.engine().sendUplink(bytesOf("up"), rig.h.now, rig.h.out).has_value());
        const Bytes d = rig.h.only();
        EXPECT_EQ(d[0], 0x88);  // P = 1, KID 1
        EXPECT_EQ(rig.peer.openUp(d), bytesOf("up"));
        // 1280 - 5 - n (1) - 4 octets at most.
        const Bytes biggest(1270, 0xAB);
        ASSERT_TRUE(rig.h.engine().sendUplink(biggest, rig.h.now, rig.h.out).has_value());
        EXPECT_EQ(rig.h.only().size(), 1280u);
        auto tooBig = rig.h.engine().sendUplink(Bytes(1271, 0xAB), rig.h.now, rig.h.out);
        ASSERT_FALSE(tooBig.has_value());
        EXPECT_EQ(tooBig.error().code, static_cast<int>(UeErrc::payload_too_large));
    }
}

TEST(UeUserPlane, UpToEasModeUsesKSessE2eForTheUserPlane) {
    Rig rig;
    StartSpec spec;
    spec.termination = UpTermination::eas;
    rig.establish(spec);
    ASSERT_TRUE(rig.h.engine().sendUplink(bytesOf("e2e"), rig.h.now, rig.h.out).has_value());
    const Bytes d = rig.h.only();
    EXPECT_EQ(rig.peer.openUp(d), bytesOf("e2e"));
    // The same datagram does not verify under the KSess UP keys.
    auto ksess = crypto::deriveKSess(rig.peer.kint(), spec.sessionId,
                                     rig.h.engine().state().current->lastNonce.value_or(0));
    ASSERT_TRUE(ksess.has_value());
    auto plainKeys = crypto::deriveSessionKeys(*ksess, 2, 2);
    ASSERT_TRUE(plainKeys.has_value());
    emsdp::ChannelConfig cfg = rig.peer.channel().config();
    auto other = emsdp::SecureChannel::create(cfg, emsdp::ChannelKeys::from(*plainKeys));
    ASSERT_TRUE(other.has_value());
    std::array<std::uint8_t, 64> plain{};
    auto r = other->openUp(d, plain);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().reason, DropReason::bad_mac);
    // Downlink the other way.
    rig.h.feed(rig.peer.sealUp(bytesOf("dl")));
    ASSERT_EQ(eventsOf<DownlinkReceived>(rig.h.out).size(), 1u);
}

TEST(UeUserPlane, KaOnlyCarriesNoUserPlane) {
    Rig rig;
    StartSpec spec;
    spec.service = Service::kaOnly;
    spec.termination = UpTermination::none;
    const Bytes req = rig.request();
    rig.h.feed(rig.peer.answerFull(req, spec));
    // The Session Start Confirmation: CP-UL COUNT 0, no IEs.
    const Bytes conf = rig.h.only();
    const auto opened = rig.peer.openCp(conf);
    EXPECT_TRUE(std::holds_alternative<emsdp::SessionStartConfirmation>(opened.body));
    EXPECT_EQ(opened.count, 0u);
    auto up = rig.h.engine().sendUplink(bytesOf("x"), rig.h.now, rig.h.out);
    ASSERT_FALSE(up.has_value());
    EXPECT_EQ(up.error().code, static_cast<int>(UeErrc::no_user_plane));
    const Bytes dl = {0x88, 0x01, 0x02, 0x03, 0x04, 0x00, 0x41, 0, 0, 0, 0};
    rig.h.feed(dl);
    EXPECT_EQ(drops(rig.h.out), std::vector<DropReason>{DropReason::up_not_allowed});
}

TEST(UeUserPlane, DatagramsOfNoSessionAreDropped) {
    Rig rig;
    const Bytes dl = {0x88, 0x01, 0x02, 0x03, 0x04, 0x00, 0x41, 0, 0, 0, 0};
    rig.h.feed(dl);
    rig.establish();
    Bytes other = dl;
    other[4] = 0x05;
    rig.h.feed(other);
    EXPECT_EQ(drops(rig.h.out), std::vector<DropReason>{DropReason::unknown_session});
    Bytes big(1281, 0);
    rig.h.feed(big);
    EXPECT_EQ(drops(rig.h.out).back(), DropReason::datagram_too_large);
}

// ---- MAC'd control plane from the HSE ---------------------------------------------------------

TEST(UeControlPlane, UnknownCommandGetsAMacdReject0x02AndUnexpectedOnesAreIgnored) {
    Rig rig;
    rig.establish();
    rig.h.feed(rig.peer.sealRawCp(0x55, {}, 1));
    EXPECT_EQ(drops(rig.h.out), std::vector<DropReason>{DropReason::unknown_command});
    const Bytes rj = rig.h.only();
    const auto opened = rig.peer.openCp(rj);
    const auto* body = std::get_if<emsdp::MessageReject>(&opened.body);
    ASSERT_NE(body, nullptr);
    EXPECT_EQ(body->cause, Cause::unknown_command);

    rig.h.feed(rig.peer.sealRawCp(0x12, {}, 2));  // Confirmation: the HSE never sends it
    EXPECT_EQ(drops(rig.h.out), std::vector<DropReason>{DropReason::unexpected_command});
    EXPECT_TRUE(rig.h.out.datagrams.empty());
    rig.h.out.clear();

    const std::array<std::uint8_t, 3> badTlv = {0x20, 0x05, 0x01};  // length past the end
    rig.h.feed(rig.peer.sealRawCp(0x20, badTlv, 3));
    EXPECT_EQ(drops(rig.h.out), std::vector<DropReason>{DropReason::length_past_end});
    const auto rj2 = rig.peer.openCp(rig.h.only());
    ASSERT_TRUE(std::holds_alternative<emsdp::MessageReject>(rj2.body));
    EXPECT_EQ(std::get<emsdp::MessageReject>(rj2.body).cause, Cause::invalid_format);
}

TEST(UeControlPlane, MacdRejectIsReportedAndBadMacsDropped) {
    Rig rig;
    rig.establish();
    rig.h.feed(rig.peer.seal(emsdp::MessageReject{Cause::internal_error, {}, {}}));
    const auto pr = eventsOf<PeerRejected>(rig.h.out);
    ASSERT_EQ(pr.size(), 1u);
    EXPECT_EQ(pr[0].cause, Cause::internal_error);
    EXPECT_TRUE(rig.h.out.datagrams.empty()) << "a Reject is never answered";
    rig.h.out.clear();
    Bytes forged = rig.peer.seal(emsdp::SessionTerminateRequest{});
    forged.back() ^= 1;
    rig.h.feed(forged);
    EXPECT_EQ(drops(rig.h.out), std::vector<DropReason>{DropReason::bad_mac});
    EXPECT_EQ(rig.h.engine().phase(), Phase::established);
}

// ---- termination (4.5, A13, A18) --------------------------------------------------------------

TEST(UeTermination, UeRequestResentOnceUnderTheNextCountDataAcceptedUntilTheResponse) {
    Rig rig;
    rig.establish();
    const MonoTime t0 = rig.h.now.mono;
    ASSERT_TRUE(rig.h.engine().terminate(rig.h.now, rig.h.out, Cause::internal_error).has_value());
    const Bytes first = rig.h.only();
    const auto o1 = rig.peer.openCp(first);
    ASSERT_TRUE(std::holds_alternative<emsdp::SessionTerminateRequest>(o1.body));
    EXPECT_EQ(std::get<emsdp::SessionTerminateRequest>(o1.body).cause, Cause::internal_error);
    EXPECT_EQ(rig.h.engine().phase(), Phase::terminating);
    EXPECT_FALSE(rig.h.engine().sendUplink(bytesOf("late"), rig.h.now, rig.h.out).has_value());
    EXPECT_EQ(rig.h.engine().nextDeadline(), t0 + seconds(4));

    rig.h.advanceTo(seconds(4), t0);
    const Bytes second = rig.h.only();
    EXPECT_NE(hx(first), hx(second));
    const auto o2 = rig.peer.openCp(second);
    EXPECT_EQ(o2.count, o1.count + 1);
    EXPECT_EQ(o2.body, o1.body) << "same content under the next COUNT";
    EXPECT_EQ(rig.h.engine().nextDeadline(), t0 + seconds(5));

    rig.h.advanceTo(milliseconds(4500), t0);  // A18: data still accepted
    rig.h.feed(rig.peer.sealUp(bytesOf("still")));
    EXPECT_EQ(eventsOf<DownlinkReceived>(rig.h.out).size(), 1u);
    rig.h.out.clear();

    rig.h.feed(rig.peer.seal(emsdp::SessionTerminateResponse{}));
    const auto t = eventsOf<SessionTerminated>(rig.h.out);
    ASSERT_EQ(t.size(), 1u);
    EXPECT_EQ(t[0].initiator, Party::ue);
    EXPECT_TRUE(t[0].answered);
    EXPECT_EQ(rig.h.engine().phase(), Phase::idle);
    EXPECT_FALSE(rig.h.engine().nextDeadline().has_value());
    rig.h.out.clear();
    rig.h.feed(rig.peer.sealUp(bytesOf("after")));
    EXPECT_EQ(drops(rig.h.out), std::vector<DropReason>{DropReason::unknown_session});
    EXPECT_TRUE(rig.h.engine().state().current.has_value()) << "key sets survive";
}

TEST(UeTermination, UeRequestUnansweredEndsTheSessionAfter5Seconds) {
    Rig rig;
    rig.establish();
    const MonoTime t0 = rig.h.now.mono;
    ASSERT_TRUE(rig.h.engine().terminate(rig.h.now, rig.h.out).has_value());
    rig.h.out.clear();
    rig.h.advanceTo(seconds(4), t0);
    EXPECT_EQ(rig.h.out.datagrams.size(), 1u);
    rig.h.out.clear();
    rig.h.advanceTo(seconds(5) - milliseconds(1), t0);
    EXPECT_EQ(rig.h.engine().phase(), Phase::terminating);
    rig.h.advanceTo(seconds(5), t0);
    EXPECT_TRUE(rig.h.out.datagrams.empty()) << "resent only once";
    const auto t = eventsOf<SessionTerminated>(rig.h.out);
    ASSERT_EQ(t.size(), 1u);
    EXPECT_FALSE(t[0].answered);
    EXPECT_EQ(rig.h.engine().phase(), Phase::idle);
    EXPECT_TRUE(eventsOf<SessionLost>(rig.h.out).empty());
}

TEST(UeTermination, HseRequestIsAnsweredAndTheSessionDeleted) {
    Rig rig;
    rig.establish();
    rig.h.feed(rig.peer.seal(emsdp::SessionTerminateRequest{Cause::internal_error}));
    const Bytes resp = rig.h.out.datagrams.empty() ? Bytes{} : rig.h.out.datagrams[0];
    const auto t = eventsOf<SessionTerminated>(rig.h.out);
    ASSERT_EQ(t.size(), 1u);
    EXPECT_EQ(t[0].initiator, Party::hse);
    EXPECT_EQ(t[0].cause, Cause::internal_error);
    EXPECT_EQ(rig.h.only(), resp);
    EXPECT_TRUE(
        std::holds_alternative<emsdp::SessionTerminateResponse>(rig.peer.openCp(resp).body));
    EXPECT_EQ(rig.h.engine().phase(), Phase::idle);
    EXPECT_TRUE(rig.h.engine().state().current.has_value());
    // An unexpected Response (nothing outstanding) in a session is ignored.
    Rig other;
    other.establish();
    other.h.feed(other.peer.seal(emsdp::SessionTerminateResponse{}));
    EXPECT_EQ(drops(other.h.out), std::vector<DropReason>{DropReason::unexpected_command});
    EXPECT_EQ(other.h.engine().phase(), Phase::established);
}

// ---- A23: a lost session is replaced, by resumption first ---------------------------------------

TEST(UeLostSession, UnansweredManageKeysRequestLosesTheSessionAndResumes) {
    Rig rig;
    rig.h.random.push(0x0123456789abcdefULL);
    rig.establish();
    const MonoTime t0 = rig.h.now.mono;
    ASSERT_TRUE(rig.h.engine().requestKeyRefresh(rig.h.now, rig.h.out).has_value());
    EXPECT_EQ(rig.peer.openCp(rig.h.only()).count, 0u);
    for (int k = 1; k <= 3; ++k) {
        const int at = k == 1 ? 4 : k == 2 ? 12 : 28;
        rig.h.advanceTo(seconds(at), t0);
        const auto o = rig.peer.openCp(rig.h.only());
        EXPECT_TRUE(std::holds_alternative<emsdp::UeManageKeysRequest>(o.body));
        EXPECT_EQ(o.count, static_cast<std::uint32_t>(k)) << "resent under the next COUNT";
    }
    rig.h.advanceTo(seconds(44) - milliseconds(1), t0);
    EXPECT_TRUE(rig.h.out.datagrams.empty());
    rig.h.advanceTo(seconds(44), t0);
    const auto lost = eventsOf<SessionLost>(rig.h.out);
    ASSERT_EQ(lost.size(), 1u);
    EXPECT_EQ(lost[0].sessionId, 0x01020304u);
    const Bytes req = rig.h.only();
    const auto p = parseRequest(req);
    ASSERT_TRUE(p.resumption());
    EXPECT_EQ(p.header.kid, 1);
    EXPECT_EQ(p.body.ueNonce, 0x0123456789abcdf0ULL) << "the full request's nonce + 1";
    StartSpec spec;
    spec.sessionId = 0x0a0b0c0d;
    rig.h.feed(rig.peer.answerResumption(req, rig.peer.kint(), spec));
    const auto est = eventsOf<SessionEstablished>(rig.h.out);
    ASSERT_EQ(est.size(), 1u);
    EXPECT_TRUE(est[0].info.resumed);
    EXPECT_EQ(est[0].info.sessionId, 0x0a0b0c0du);
}

TEST(UeLostSession, AnsweredManageKeysRequestStopsTheSchedule) {
    Rig rig;
    rig.establish();
    ASSERT_TRUE(rig.h.engine().requestKeyRefresh(rig.h.now, rig.h.out).has_value());
    rig.h.out.clear();
    rig.h.feed(rig.peer.seal(emsdp::MessageReject{Cause::service_not_allowed, {}, {}}));
    const auto failed = eventsOf<RefreshFailed>(rig.h.out);
    ASSERT_EQ(failed.size(), 1u);
    EXPECT_EQ(failed[0].reason, RefreshFailure::rejected);
    EXPECT_EQ(failed[0].cause, Cause::service_not_allowed);
    EXPECT_FALSE(rig.h.engine().refreshOutstanding());
    EXPECT_FALSE(rig.h.engine().nextDeadline().has_value());
    rig.h.advance(seconds(60));
    EXPECT_EQ(rig.h.engine().phase(), Phase::established);
}

// ---- A1: counter exhaustion -------------------------------------------------------------------

TEST(UeExhaustion, LastUpCountThenTerminate0x13AndTheSessionIsGone) {
    Rig rig;
    rig.establish();
    auto ue = *rig.h.engine().counters();
    ue.nextUpTx = 0xFFFFFFFE;
    ASSERT_TRUE(rig.h.engine().restoreCounters(ue).has_value());
    auto hse = rig.peer.channel().counters();
    hse.upRxHighest = 0xFFFFFFFD;
    rig.peer.channel().restoreCounters(hse);

    ASSERT_TRUE(rig.h.engine().sendUplink(bytesOf("last"), rig.h.now, rig.h.out).has_value());
    ASSERT_EQ(rig.h.out.datagrams.size(), 2u);
    EXPECT_EQ(rig.peer.openUp(rig.h.out.datagrams[0]), bytesOf("last"));
    const auto term = rig.peer.openCp(rig.h.out.datagrams[1]);
    ASSERT_TRUE(std::holds_alternative<emsdp::SessionTerminateRequest>(term.body));
    EXPECT_EQ(std::get<emsdp::SessionTerminateRequest>(term.body).cause, Cause::counter_exhausted);
    EXPECT_EQ(term.count, 0u) << "under the next CP COUNT";
    const auto t = eventsOf<SessionTerminated>(rig.h.out);
    ASSERT_EQ(t.size(), 1u);
    EXPECT_EQ(t[0].cause, Cause::counter_exhausted);
    EXPECT_EQ(rig.h.engine().phase(), Phase::idle);
    EXPECT_FALSE(rig.h.engine().nextDeadline().has_value()) << "not resent";
    EXPECT_FALSE(rig.h.engine().sendUplink(bytesOf("more"), rig.h.now, rig.h.out).has_value());
}

TEST(UeExhaustion, CpCountReachingTheEndUsesTwoToThe32MinusOneForTheTerminate) {
    Rig rig;
    rig.establish();
    auto ue = *rig.h.engine().counters();
    ue.nextCpTx = 0xFFFFFFFE;
    ASSERT_TRUE(rig.h.engine().restoreCounters(ue).has_value());
    auto hse = rig.peer.channel().counters();
    hse.cpRxHighest = 0xFFFFFFFD;
    rig.peer.channel().restoreCounters(hse);
    ASSERT_TRUE(rig.h.engine().terminate(rig.h.now, rig.h.out).has_value());
    ASSERT_EQ(rig.h.out.datagrams.size(), 2u);
    EXPECT_EQ(rig.peer.openCp(rig.h.out.datagrams[0]).count, 0xFFFFFFFEu);
    const auto a1 = rig.peer.openCp(rig.h.out.datagrams[1]);
    EXPECT_EQ(a1.count, 0xFFFFFFFFu);
    EXPECT_EQ(std::get<emsdp::SessionTerminateRequest>(a1.body).cause, Cause::counter_exhausted);
    EXPECT_EQ(rig.h.engine().phase(), Phase::idle);
}

TEST(UeExhaustion, ExhaustedUpCounterRefusesDataAndTerminates) {
    Rig rig;
    rig.establish();
    auto ue = *rig.h.engine().counters();
    ue.nextUpTx = 0xFFFFFFFF;
    ASSERT_TRUE(rig.h.engine().restoreCounters(ue).has_value());
    auto r = rig.h.engine().sendUplink(bytesOf("x"), rig.h.now, rig.h.out);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code, static_cast<int>(UeErrc::counter_exhausted));
    const auto term = rig.peer.openCp(rig.h.only());
    EXPECT_EQ(std::get<emsdp::SessionTerminateRequest>(term.body).cause, Cause::counter_exhausted);
}

TEST(UeExhaustion, HseExhaustionTerminateEndsTheSessionWithoutAResponse) {
    Rig rig;
    rig.establish();
    std::array<std::uint8_t, emsdp::kMaxDatagram> buf{};
    auto n = rig.peer.channel().sealExhaustionTerminate(buf);
    ASSERT_TRUE(n.has_value());
    rig.h.feed(Bytes(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(*n)));
    EXPECT_TRUE(rig.h.out.datagrams.empty());
    const auto t = eventsOf<SessionTerminated>(rig.h.out);
    ASSERT_EQ(t.size(), 1u);
    EXPECT_EQ(t[0].initiator, Party::hse);
    EXPECT_EQ(t[0].cause, Cause::counter_exhausted);
    EXPECT_EQ(rig.h.engine().phase(), Phase::idle);
}

}  // namespace
}  // namespace best::ue::test
