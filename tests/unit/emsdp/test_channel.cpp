// Counters (section 3.1, A1), protection and the receive order of section 4 through
// SecureChannel and the routing functions: each bad input with its exact Verdict.
#include <gtest/gtest.h>

#include <optional>
#include <vector>

#include "common/hex.h"
#include "emsdp/emsdp.h"
#include "test_util.h"

namespace best::emsdp {
namespace {

constexpr std::uint32_t kSid = 0x01020304;
constexpr std::uint8_t kKid = 2;

Key128 key(std::uint8_t seed) {
    std::array<std::uint8_t, 16> k{};
    for (std::size_t i = 0; i < k.size(); ++i)
        k[i] = static_cast<std::uint8_t>(seed + i * 7);
    return Key128(ByteView(k));
}

ChannelKeys keys() {
    return ChannelKeys{key(1), key(2), key(3)};
}

ChannelConfig config(Side side, CounterScheme cp = CounterScheme::n1,
                     CounterScheme up = CounterScheme::n1) {
    ChannelConfig c;
    c.side = side;
    c.sessionId = kSid;
    c.kid = kKid;
    c.cpScheme = cp;
    c.upScheme = up;
    c.upEnabled = true;
    c.upCiphering = true;
    return c;
}

SecureChannel make(const ChannelConfig& c) {
    auto ch = SecureChannel::create(c, keys());
    EXPECT_TRUE(ch) << (ch ? "" : ch.error().describe());
    return std::move(*ch);
}

struct Pair {
    SecureChannel hse;
    SecureChannel ue;
};

Pair makePair(CounterScheme cp = CounterScheme::n1, CounterScheme up = CounterScheme::n1) {
    return Pair{make(config(Side::network, cp, up)), make(config(Side::ue, cp, up))};
}

Bytes seal(SecureChannel& ch, const Body& body) {
    std::array<std::uint8_t, kMaxDatagram> out{};
    auto n = ch.sealCp(body, out);
    EXPECT_TRUE(n) << (n ? "" : n.error().describe());
    return n ? Bytes(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(*n)) : Bytes{};
}

Bytes sealUp(SecureChannel& ch, ByteView payload) {
    std::array<std::uint8_t, kMaxDatagram + 16> out{};
    auto n = ch.sealUp(payload, out);
    EXPECT_TRUE(n) << (n ? "" : n.error().describe());
    return n ? Bytes(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(*n)) : Bytes{};
}

// A MAC'd datagram with arbitrary content after the header (command + TLVs, or UP payload), so
// format errors can be placed behind a good MAC.
Bytes raw(Plane plane, std::uint8_t kid, std::uint32_t sid, CounterScheme n, std::uint32_t count,
          Side sender, const Bytes& inner, const Key128& k) {
    Header h;
    h.plane = plane;
    h.kid = kid;
    h.sessionId = sid;
    h.scheme = n;
    h.setCount(count);
    Bytes d(h.size());
    EXPECT_TRUE(encodeHeader(h, d));
    d.insert(d.end(), inner.begin(), inner.end());
    crypto::Eia2 eia2;
    EXPECT_TRUE(eia2.setKey(k));
    auto mac = eia2.mac(count, bearerOf(plane), directionOf(sender), d);
    EXPECT_TRUE(mac);
    d.resize(d.size() + 4);
    putBe32(d.data() + d.size() - 4, mac ? *mac : 0);
    return d;
}

// A CP message from the UE of the standard session, MAC'd with the CP-int key.
Bytes ueCp(std::uint32_t count, const Bytes& inner, CounterScheme n = CounterScheme::n1) {
    return raw(Plane::cp, kKid, kSid, n, count, Side::ue, inner, key(1));
}
Bytes hseCp(std::uint32_t count, const Bytes& inner, CounterScheme n = CounterScheme::n1) {
    return raw(Plane::cp, kKid, kSid, n, count, Side::network, inner, key(1));
}

Verdict verdictOf(const tl::expected<ReceivedCp, Verdict>& r) {
    EXPECT_FALSE(r.has_value());
    return r ? Verdict{} : r.error();
}
Verdict verdictOf(const tl::expected<ReceivedUp, Verdict>& r) {
    EXPECT_FALSE(r.has_value());
    return r ? Verdict{} : r.error();
}

const Bytes kHello = {'h', 'e', 'l', 'l', 'o'};

Bytes cat2(Bytes a, const Bytes& b) {
    for (std::uint8_t v : b)
        a.push_back(v);
    return a;
}

// ---- counters ---------------------------------------------------------------------------------

TEST(CpCounter, FirstMessageIsTheFieldItself) {
    CpRxCounter c;
    EXPECT_EQ(c.candidate(5, CounterScheme::n0).value(), 5u);
    EXPECT_EQ(c.candidate(0x7FF, CounterScheme::n1).value(), 0x7FFu);
    EXPECT_FALSE(c.highest().has_value());  // candidate() changes nothing
}

TEST(CpCounter, StrictReconstructionWraps) {
    CpRxCounter c;
    c.commit(2040);
    EXPECT_EQ(c.candidate(2041 & 0x7FF, CounterScheme::n1).value(), 2041u);
    EXPECT_EQ(c.candidate(5, CounterScheme::n1).value(), 2048u + 5);  // wrap of the 11-bit field
    c.commit(2047);
    EXPECT_EQ(c.candidate(0, CounterScheme::n1).value(), 2048u);
    // A replay (field of an accepted COUNT) rebuilds to a future COUNT.
    EXPECT_EQ(c.candidate(2047 & 0x7FF, CounterScheme::n1).value(), 2047u + 2048);
    // n = 0 (3 bits): from 7, field 7 is 15.
    CpRxCounter d;
    d.commit(7);
    EXPECT_EQ(d.candidate(7, CounterScheme::n0).value(), 15u);
    EXPECT_EQ(d.candidate(0, CounterScheme::n0).value(), 8u);
    // The scheme may change between messages (Session Start n = 0, then the announced n).
    CpRxCounter e;
    e.commit(0);
    EXPECT_EQ(e.candidate(1, CounterScheme::n1).value(), 1u);
    EXPECT_EQ(e.candidate(0x123456, CounterScheme::n3).value(), 0x123456u);
}

TEST(CpCounter, NothingAboveTheTop) {
    CpRxCounter c;
    c.commit(0xFFFFFFFE);
    EXPECT_EQ(c.candidate(0x7FF, CounterScheme::n1).value(), 0xFFFFFFFFu);
    EXPECT_EQ(c.candidate(0, CounterScheme::n1).error(), DropReason::counter_out_of_range);
    c.commit(0xFFFFFFFF);
    for (std::uint32_t f : {0u, 1u, 0x7FFu})
        EXPECT_EQ(c.candidate(f, CounterScheme::n1).error(), DropReason::counter_out_of_range);
}

TEST(UpCounter, WindowSizes) {
    EXPECT_EQ(UpRxCounter::window(CounterScheme::n0), 4u);  // min(64, 2^2)
    EXPECT_EQ(UpRxCounter::window(CounterScheme::n1), 64u);
    EXPECT_EQ(UpRxCounter::window(CounterScheme::n3), 64u);
}

TEST(UpCounter, ReorderingInsideTheWindowOnce) {
    UpRxCounter c;
    EXPECT_EQ(c.candidate(100, CounterScheme::n1).value(), 100u);
    c.commit(100);
    EXPECT_EQ(c.candidate(100, CounterScheme::n1).error(), DropReason::replayed_counter);
    EXPECT_EQ(c.candidate(102, CounterScheme::n1).value(), 102u);
    c.commit(102);
    EXPECT_EQ(c.candidate(101, CounterScheme::n1).value(), 101u);
    c.commit(101);
    EXPECT_EQ(c.candidate(101, CounterScheme::n1).error(), DropReason::replayed_counter);
    EXPECT_EQ(c.candidate(100, CounterScheme::n1).error(), DropReason::replayed_counter);
    EXPECT_EQ(c.candidate(102, CounterScheme::n1).error(), DropReason::replayed_counter);
    EXPECT_EQ(c.candidate(99, CounterScheme::n1).value(), 99u);
}

TEST(UpCounter, WindowEdges) {
    UpRxCounter c;
    c.commit(200);
    // H - COUNT < 64 accepted, = 64 too old.
    EXPECT_EQ(c.candidate(137, CounterScheme::n1).value(), 137u);  // age 63
    EXPECT_EQ(c.candidate(136, CounterScheme::n1).error(), DropReason::counter_too_old);
    // The rebuild interval is (H - 1024, H + 1024].
    EXPECT_EQ(c.candidate((200 + 1024) & 0x7FF, CounterScheme::n1).value(), 1224u);
    EXPECT_EQ(c.candidate((200 - 1023) & 0x7FF, CounterScheme::n1).error(),
              DropReason::counter_out_of_range);  // -823: below 0
    UpRxCounter d;
    d.commit(5000);
    EXPECT_EQ(d.candidate((5000 - 1023) & 0x7FF, CounterScheme::n1).error(),
              DropReason::counter_too_old);  // 3977
    // A jump clears the window: everything 64 or more behind is too old.
    d.commit(5100);
    EXPECT_EQ(d.candidate(5000 & 0x7FF, CounterScheme::n1).error(), DropReason::counter_too_old);
    EXPECT_EQ(d.candidate(5037 & 0x7FF, CounterScheme::n1).value(), 5037u);
}

TEST(UpCounter, SmallSchemeWindowOfFour) {
    UpRxCounter c;
    c.commit(10);
    // n = 0: interval (6, 14]; W = 4.
    EXPECT_EQ(c.candidate(7, CounterScheme::n0).value(), 7u);   // age 3
    EXPECT_EQ(c.candidate(6, CounterScheme::n0).value(), 14u);  // 14 & 7 = 6: ahead
    EXPECT_EQ(c.candidate(2, CounterScheme::n0).error(), DropReason::replayed_counter);  // 10
    c.commit(7);
    EXPECT_EQ(c.candidate(7, CounterScheme::n0).error(), DropReason::replayed_counter);
}

TEST(UpCounter, OutsideZeroToMaxIsDropped) {
    UpRxCounter c;
    c.commit(3);
    // Field 2047 (n = 1) rebuilds to -1.
    EXPECT_EQ(c.candidate(0x7FF, CounterScheme::n1).error(), DropReason::counter_out_of_range);
    UpRxCounter top;
    top.commit(0xFFFFFFF0);
    EXPECT_EQ(top.candidate(0xFFFFFFFE & 0x7FF, CounterScheme::n1).value(), 0xFFFFFFFEu);
    // 2^32-1 is never data (A1).
    EXPECT_EQ(top.candidate(0xFFFFFFFF & 0x7FF, CounterScheme::n1).error(),
              DropReason::counter_exhausted);
    // 2^32 + 5 is beyond the counter.
    EXPECT_EQ(top.candidate(5, CounterScheme::n1).error(), DropReason::counter_out_of_range);
}

TEST(TxCounterTest, ExhaustionRule) {
    TxCounter t;
    EXPECT_TRUE(t.available());
    t.restore(0xFFFFFFFE);
    EXPECT_TRUE(t.available());
    EXPECT_FALSE(t.exhaustionDue());
    t.advance();
    EXPECT_FALSE(t.available());  // 2^32-1 is not for data
    EXPECT_TRUE(t.exhaustionDue());
    t.advance();
    EXPECT_FALSE(t.available());
    EXPECT_TRUE(t.exhaustionDue());
}

// ---- channel: happy paths ---------------------------------------------------------------------

TEST(Channel, EverySchemeBothPlanesBothWays) {
    for (std::uint8_t n = 0; n <= 3; ++n) {
        SCOPED_TRACE(static_cast<int>(n));
        const auto s = static_cast<CounterScheme>(n);
        Pair p = makePair(s, s);
        std::array<std::uint8_t, 64> plain{};
        for (std::uint32_t i = 0; i < 20; ++i) {
            const Bytes up = sealUp(p.ue, kHello);
            EXPECT_EQ(up.size(), 5 + n + kHello.size() + 4);
            auto got = p.hse.openUp(up, plain);
            ASSERT_TRUE(got) << ::testing::PrintToString(got.error());
            EXPECT_EQ(got->count, i);
            EXPECT_EQ(toHex(got->payload), toHex(kHello));
            const Bytes cp = seal(p.hse, SessionTerminateResponse{});
            EXPECT_EQ(cp.size(), 5 + n + 1 + 4);
            auto r = p.ue.openCp(cp);
            ASSERT_TRUE(r) << ::testing::PrintToString(r.error());
            EXPECT_EQ(r->count, i);
        }
    }
}

TEST(Channel, SessionStartUsesSchemeZeroThenTheAnnouncedScheme) {
    Pair p = makePair(CounterScheme::n2, CounterScheme::n1);
    SessionStart st;
    st.keyAgreement = crypto::KeyAgreement::umts;
    st.hseConfiguration.hseId = "hse";
    const Bytes start = seal(p.hse, st);
    auto h = decodeHeader(start, CounterScheme::n0);
    ASSERT_TRUE(h);
    EXPECT_EQ(start[5], 0x11);  // the command right after the 5-octet header
    auto accepted = p.ue.acceptSessionStart(start);
    ASSERT_TRUE(accepted) << ::testing::PrintToString(accepted.error());
    EXPECT_EQ(accepted->count, 0u);
    const Bytes next = seal(p.hse, SessionTerminateRequest{});
    EXPECT_EQ(next[7], 0x20);  // n = 2: two extension octets
    auto r = p.ue.openCp(next);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->count, 1u);
}

TEST(Channel, SessionStartAtTheUeIsParsedFirst) {
    Pair p = makePair();
    SessionStart st;
    st.keyAgreement = crypto::KeyAgreement::umts;
    st.hseConfiguration.hseId = "hse";
    st.serviceParameters = {Service::upConfidentiality, UpTermination::eas, 0};
    const Bytes start = seal(p.hse, st);
    auto parsed = parseSessionStart(start);
    ASSERT_TRUE(parsed);
    EXPECT_TRUE(parsed->body == st);
    const ChannelConfig c = channelConfigFor(Side::ue, parsed->header, parsed->body);
    EXPECT_EQ(c.sessionId, kSid);
    EXPECT_EQ(c.kid, kKid);
    EXPECT_TRUE(c.upEnabled);
    EXPECT_TRUE(c.upCiphering);
    // A tampered Session Start: the MAC fails, nothing is committed.
    Bytes bad = start;
    bad[10] ^= 0x01;
    SecureChannel ue = make(config(Side::ue));
    EXPECT_EQ(verdictOf(ue.acceptSessionStart(bad)), Verdict::drop(DropReason::bad_mac));
    EXPECT_FALSE(ue.counters().cpRxHighest.has_value());
    ASSERT_TRUE(ue.acceptSessionStart(start));
    EXPECT_EQ(ue.counters().cpRxHighest, 0u);
}

// ---- header and routing -----------------------------------------------------------------------

TEST(Receive, DatagramOver1280IsDroppedBothDirections) {
    Pair p = makePair();
    const Bytes big(kMaxDatagram + 1, 0x10);
    EXPECT_EQ(route(big, Side::network).error(), DropReason::datagram_too_large);
    EXPECT_EQ(verdictOf(p.hse.openCp(big)), Verdict::drop(DropReason::datagram_too_large));
    EXPECT_EQ(verdictOf(p.hse.openUp(big, {})), Verdict::drop(DropReason::datagram_too_large));
    EXPECT_EQ(parseSessionStart(big).error(), DropReason::datagram_too_large);
    auto req = parseSessionRequest(big);
    ASSERT_FALSE(req);
    EXPECT_EQ(req.error(), Verdict::drop(DropReason::datagram_too_large));
    // Sending: the largest UP payload is 1280 - 5 - n - 4.
    for (std::uint8_t n = 0; n <= 3; ++n) {
        const auto s = static_cast<CounterScheme>(n);
        Pair q = makePair(s, s);
        const std::size_t maxPayload = kMaxDatagram - 5 - n - 4;
        const Bytes fits(maxPayload, 0xAB);
        const Bytes d = sealUp(q.ue, fits);
        EXPECT_EQ(d.size(), kMaxDatagram);
        std::array<std::uint8_t, kMaxDatagram> plain{};
        EXPECT_TRUE(q.hse.openUp(d, plain));
        std::array<std::uint8_t, kMaxDatagram + 16> out{};
        auto over = q.ue.sealUp(Bytes(maxPayload + 1, 0xAB), out);
        ASSERT_FALSE(over);
        EXPECT_EQ(over.error().code, static_cast<int>(EmsdpErrc::datagram_too_large));
        EXPECT_EQ(q.ue.counters().nextUpTx, 1u);  // the refused message used no COUNT
    }
}

TEST(Receive, TruncatedHeaderAndMessage) {
    Pair p = makePair();
    for (std::size_t len = 0; len < 5; ++len) {
        const Bytes d(len, 0x10);
        EXPECT_EQ(route(d, Side::ue).error(), DropReason::truncated_header);
        EXPECT_EQ(verdictOf(p.ue.openCp(d)), Verdict::drop(DropReason::truncated_header));
    }
    // n = 1: five octets are not a whole header.
    const Bytes five = {0x10, 0x01, 0x02, 0x03, 0x04};
    EXPECT_EQ(verdictOf(p.ue.openCp(five)), Verdict::drop(DropReason::truncated_header));
    const Bytes upFive = {0x90, 0x01, 0x02, 0x03, 0x04};
    EXPECT_EQ(verdictOf(p.ue.openUp(upFive, {})), Verdict::drop(DropReason::truncated_header));
    // Header complete but no room for the command and the MAC.
    const Bytes cp = seal(p.hse, SessionTerminateResponse{});
    for (std::size_t cut = 6; cut < cp.size(); ++cut) {
        EXPECT_EQ(verdictOf(p.ue.openCp(ByteView(cp).first(cut))),
                  Verdict::drop(DropReason::truncated_message))
            << cut;
    }
    const Bytes up = sealUp(p.hse, Bytes{});  // empty payload: header + MAC only
    ASSERT_EQ(up.size(), 10u);
    EXPECT_EQ(verdictOf(p.ue.openUp(ByteView(up).first(9), {})),
              Verdict::drop(DropReason::truncated_message));
    EXPECT_TRUE(p.ue.openUp(up, {}));
    // KID 0 / Session ID 0 routes need the command octet.
    EXPECT_EQ(route(Bytes{0x00, 0, 0, 0, 0}, Side::network).error(), DropReason::truncated_message);
}

TEST(Receive, SessionIdRules) {
    // P = 1 with Session ID 0.
    EXPECT_EQ(route(Bytes{0x90, 0, 0, 0, 0, 0x00, 1, 2, 3, 4}, Side::network).error(),
              DropReason::up_with_session_zero);
    EXPECT_EQ(route(Bytes{0x90, 0, 0, 0, 0, 0x00, 1, 2, 3, 4}, Side::ue).error(),
              DropReason::up_with_session_zero);
    SecureChannel hse = make(config(Side::network));
    EXPECT_EQ(verdictOf(hse.openUp(Bytes{0x90, 0, 0, 0, 0, 0x00, 1, 2, 3, 4}, {})),
              Verdict::drop(DropReason::up_with_session_zero));
    // At the HSE, Session ID 0 is only for a Session Request.
    EXPECT_EQ(route(Bytes{0x00, 0, 0, 0, 0, 0x10}, Side::network)->kind, RouteKind::sessionRequest);
    EXPECT_EQ(route(Bytes{0x18, 0, 0, 0, 0, 0x10}, Side::network)->kind,
              RouteKind::sessionRequest);  // resumption
    for (std::uint8_t cmd : {0x11, 0x12, 0x20, 0x80, 0x42}) {
        EXPECT_EQ(route(Bytes{0x00, 0, 0, 0, 0, cmd}, Side::network).error(),
                  DropReason::non_request_with_session_zero);
    }
    // At the UE, Session ID 0 is only for an unprotected Message Reject (A2).
    EXPECT_EQ(route(Bytes{0x00, 0, 0, 0, 0, 0x80}, Side::ue)->kind, RouteKind::unprotectedReject);
    EXPECT_EQ(route(Bytes{0x08, 0, 0, 0, 0, 0x80}, Side::ue).error(),
              DropReason::session_zero_not_reject);
    EXPECT_EQ(route(Bytes{0x00, 0, 0, 0, 0, 0x11}, Side::ue).error(),
              DropReason::session_zero_not_reject);
    // A Session Request with a Session ID.
    EXPECT_EQ(route(Bytes{0x00, 0, 0, 0, 1, 0x10}, Side::network).error(),
              DropReason::request_with_session_nonzero);
    const Bytes req = ueCp(0, Bytes{0x10});
    EXPECT_EQ(route(req, Side::network)->kind, RouteKind::session);
    EXPECT_EQ(verdictOf(hse.openCp(req)), Verdict::drop(DropReason::request_with_session_nonzero));
    // KID 0 with a Session ID: a reject, or the session's KID check.
    EXPECT_EQ(route(Bytes{0x00, 1, 2, 3, 4, 0x80}, Side::network)->kind,
              RouteKind::unprotectedReject);
    EXPECT_EQ(route(Bytes{0x00, 1, 2, 3, 4, 0x20}, Side::network)->kind, RouteKind::session);
    EXPECT_EQ(verdictOf(hse.openCp(Bytes{0x00, 1, 2, 3, 4, 0x20})),
              Verdict::drop(DropReason::kid_mismatch));
}

TEST(Receive, UnknownSession) {
    Pair p = makePair();
    Bytes d = seal(p.ue, SessionTerminateRequest{});
    d[4] ^= 0x01;  // another Session ID
    EXPECT_EQ(verdictOf(p.hse.openCp(d)), Verdict::drop(DropReason::unknown_session));
    Bytes u = sealUp(p.ue, kHello);
    u[1] ^= 0x80;
    EXPECT_EQ(verdictOf(p.hse.openUp(u, {})), Verdict::drop(DropReason::unknown_session));
}

TEST(Receive, KidMismatchBeforeTheMac) {
    Pair p = makePair();
    for (std::uint8_t kid : {0, 1, 3, 7}) {
        SCOPED_TRACE(static_cast<int>(kid));
        Bytes d = seal(p.ue, SessionTerminateRequest{});
        d[0] = static_cast<std::uint8_t>((d[0] & 0xC7) | (kid << 3));
        EXPECT_EQ(verdictOf(p.hse.openCp(d)), Verdict::drop(DropReason::kid_mismatch));
        Bytes u = sealUp(p.ue, kHello);
        u[0] = static_cast<std::uint8_t>((u[0] & 0xC7) | (kid << 3));
        EXPECT_EQ(verdictOf(p.hse.openUp(u, {})), Verdict::drop(DropReason::kid_mismatch));
    }
    const CounterSnapshot s = p.hse.counters();
    EXPECT_FALSE(s.cpRxHighest.has_value());
    EXPECT_FALSE(s.upRxHighest.has_value());
}

TEST(Receive, WrongPlaneAndBufferTooSmall) {
    Pair p = makePair();
    const Bytes cp = seal(p.ue, SessionTerminateRequest{});
    EXPECT_EQ(verdictOf(p.hse.openUp(cp, {})), Verdict::drop(DropReason::wrong_plane));
    const Bytes up = sealUp(p.ue, kHello);
    EXPECT_EQ(verdictOf(p.hse.openCp(up)), Verdict::drop(DropReason::wrong_plane));
    std::array<std::uint8_t, 4> small{};
    EXPECT_EQ(verdictOf(p.hse.openUp(up, small)), Verdict::drop(DropReason::buffer_too_small));
    EXPECT_FALSE(p.hse.counters().upRxHighest.has_value());
    std::array<std::uint8_t, 5> exact{};
    auto ok = p.hse.openUp(up, exact);
    ASSERT_TRUE(ok);
    EXPECT_EQ(toHex(ok->payload), toHex(kHello));
}

// ---- MAC and counters through the channel -----------------------------------------------------

TEST(Receive, WrongMacChangesNothing) {
    Pair p = makePair();
    const Bytes good = seal(p.ue, UeManageKeysRequest{});
    const Bytes goodUp = sealUp(p.ue, kHello);
    const CounterSnapshot before = p.hse.counters();
    // Any flipped bit covered by the MAC, or in the MAC: bad_mac (R bit included).
    for (std::size_t i = 0; i < good.size(); ++i) {
        if (i >= 1 && i <= 4)
            continue;  // Session ID: unknown_session
        for (std::uint8_t bit : {0x01, 0x40, 0x80}) {
            if (i == 0 && bit != 0x40 && bit != 0x01)
                continue;  // P and KID bits are checked before the MAC
            Bytes d = good;
            d[i] ^= bit;
            EXPECT_EQ(verdictOf(p.hse.openCp(d)), Verdict::drop(DropReason::bad_mac))
                << i << "/" << static_cast<int>(bit);
        }
    }
    Bytes u = goodUp;
    u[6] ^= 0x20;
    EXPECT_EQ(verdictOf(p.hse.openUp(u, {})), Verdict::drop(DropReason::bad_mac));
    u = goodUp;
    u.back() ^= 0x01;
    EXPECT_EQ(verdictOf(p.hse.openUp(u, {})), Verdict::drop(DropReason::bad_mac));
    EXPECT_EQ(p.hse.counters(), before);
    // Another key: bad_mac.
    const Bytes otherKey =
        raw(Plane::cp, kKid, kSid, CounterScheme::n1, 0, Side::ue, Bytes{0x21}, key(9));
    EXPECT_EQ(verdictOf(p.hse.openCp(otherKey)), Verdict::drop(DropReason::bad_mac));
    // Wrong DIRECTION (a downlink MAC on an uplink message): bad_mac.
    const Bytes wrongDir = hseCp(0, Bytes{0x21});
    EXPECT_EQ(verdictOf(p.hse.openCp(wrongDir)), Verdict::drop(DropReason::bad_mac));
    EXPECT_EQ(p.hse.counters(), before);
    // The genuine ones still pass afterwards.
    EXPECT_TRUE(p.hse.openCp(good));
    EXPECT_TRUE(p.hse.openUp(goodUp, {}));
}

TEST(Receive, ReplayedCpRebuildsToTheFutureAndFailsTheMac) {
    Pair p = makePair();
    const Bytes first = seal(p.ue, SessionTerminateRequest{});
    ASSERT_TRUE(p.hse.openCp(first));
    EXPECT_EQ(verdictOf(p.hse.openCp(first)), Verdict::drop(DropReason::bad_mac));
    // An older one after a newer one: same.
    const Bytes a = seal(p.ue, SessionTerminateRequest{});
    const Bytes b = seal(p.ue, SessionTerminateRequest{});
    ASSERT_TRUE(p.hse.openCp(b));
    EXPECT_EQ(verdictOf(p.hse.openCp(a)), Verdict::drop(DropReason::bad_mac));
    EXPECT_EQ(p.hse.counters().cpRxHighest, 2u);
}

TEST(Receive, CpStrictReconstructionAcrossTheWrap) {
    Pair p = makePair();
    CounterSnapshot s;
    s.nextCpTx = 2047;
    p.ue.restoreCounters(s);
    CounterSnapshot r;
    r.cpRxHighest = 2046;
    p.hse.restoreCounters(r);
    for (std::uint32_t expect : {2047u, 2048u, 2049u}) {
        const Bytes d = seal(p.ue, SessionTerminateRequest{});
        auto got = p.hse.openCp(d);
        ASSERT_TRUE(got) << ::testing::PrintToString(got.error());
        EXPECT_EQ(got->count, expect);
    }
    // Losing 2^w messages desynchronises: the MAC then fails.
    s = p.ue.counters();
    s.nextCpTx += 2048;
    p.ue.restoreCounters(s);
    EXPECT_EQ(verdictOf(p.hse.openCp(seal(p.ue, SessionTerminateRequest{}))),
              Verdict::drop(DropReason::bad_mac));
}

TEST(Receive, ReplayedAndTooOldUp) {
    Pair p = makePair();
    std::vector<Bytes> sent;
    for (int i = 0; i < 70; ++i)
        sent.push_back(sealUp(p.ue, kHello));
    std::array<std::uint8_t, 16> plain{};
    ASSERT_TRUE(p.hse.openUp(sent[69], plain));
    EXPECT_EQ(verdictOf(p.hse.openUp(sent[69], plain)),
              Verdict::drop(DropReason::replayed_counter));
    ASSERT_TRUE(p.hse.openUp(sent[6], plain));  // age 63
    EXPECT_EQ(verdictOf(p.hse.openUp(sent[6], plain)), Verdict::drop(DropReason::replayed_counter));
    EXPECT_EQ(verdictOf(p.hse.openUp(sent[5], plain)), Verdict::drop(DropReason::counter_too_old));
    // A forged replay with a bad MAC is a replay drop first (counter before MAC).
    Bytes forged = sent[69];
    forged.back() ^= 1;
    EXPECT_EQ(verdictOf(p.hse.openUp(forged, plain)), Verdict::drop(DropReason::replayed_counter));
    // A fresh-looking COUNT with a bad MAC does not move the window.
    Bytes future = sealUp(p.ue, kHello);  // COUNT 70
    future[6] ^= 1;
    EXPECT_EQ(verdictOf(p.hse.openUp(future, plain)), Verdict::drop(DropReason::bad_mac));
    EXPECT_EQ(p.hse.counters().upRxHighest, 69u);
}

// ---- format errors after a good MAC -------------------------------------------------------------

TEST(AfterMac, FormatErrorsGetAMacdRejectAndCommitTheCounter) {
    struct Case {
        Bytes inner;
        Verdict expect;
    };
    const Bytes rand = {0x10, 16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    const std::vector<Case> cases = {
        {{0x30, 0x1A, 0x01, 0x01, 0x1A, 0x01, 0x01},
         Verdict::reject(Cause::invalid_format, DropReason::duplicate_tlv, true)},
        {{0x30, 0x1A, 0x01, 0x01, 0x07, 0x00},
         Verdict::reject(Cause::unknown_mandatory_ie, DropReason::unknown_mandatory_tag, true)},
        {{0x30},
         Verdict::reject(Cause::missing_mandatory_ie, DropReason::missing_mandatory_ie, true)},
        {{0x30, 0x1A, 0x01, 0x02},
         Verdict::reject(Cause::invalid_format, DropReason::value_out_of_range, true)},
        {{0x30, 0x1A, 0x02, 0x01, 0x00},
         Verdict::reject(Cause::invalid_format, DropReason::invalid_ie_length, true)},
        {{0x30, 0x1A, 0x01, 0x01, 0x99},
         Verdict::reject(Cause::invalid_format, DropReason::trailing_octets, true)},
        {{0x30, 0x1A, 0x05, 0x01},  // runs into the MAC
         Verdict::reject(Cause::invalid_format, DropReason::length_past_end, true)},
        {{0x42}, Verdict::reject(Cause::unknown_command, DropReason::unknown_command, true)},
        {{0x21, 0x07, 0x00},
         Verdict::reject(Cause::unknown_mandatory_ie, DropReason::unknown_mandatory_tag, true)},
        // A Message Reject is never answered with a Message Reject.
        {{0x80, 0x20, 0x01, 0x01, 0x20, 0x01, 0x01},
         Verdict::drop(DropReason::duplicate_tlv, true)},
        {{0x80}, Verdict::drop(DropReason::missing_mandatory_ie, true)},
        // Known commands the HSE never receives are ignored.
        {{0x11}, Verdict::drop(DropReason::unexpected_command, true)},
    };
    SecureChannel hse = make(config(Side::network));
    std::uint32_t count = 0;
    for (const Case& c : cases) {
        SCOPED_TRACE(toHex(c.inner));
        EXPECT_EQ(verdictOf(hse.openCp(ueCp(count, c.inner))), c.expect);
        EXPECT_EQ(hse.counters().cpRxHighest, count);  // the MAC verified: COUNT used
        ++count;
    }
    // The UE never receives a Confirmation.
    SecureChannel ue = make(config(Side::ue));
    EXPECT_EQ(verdictOf(ue.openCp(hseCp(0, Bytes{0x12}))),
              Verdict::drop(DropReason::unexpected_command, true));
    // Defined tags not listed for the command (A19) pass behind the MAC too.
    auto ok = hse.openCp(ueCp(count, cat2(Bytes{0x12}, rand)));
    ASSERT_TRUE(ok) << ::testing::PrintToString(ok.error());
}

// ---- A1: counter exhaustion -------------------------------------------------------------------

TEST(Exhaustion, CpDataStopsAtMaxMinusOneThenTheTerminate) {
    Pair p = makePair();
    CounterSnapshot s;
    s.nextCpTx = 0xFFFFFFFE;
    p.ue.restoreCounters(s);
    CounterSnapshot r;
    r.cpRxHighest = 0xFFFFFFFD;
    p.hse.restoreCounters(r);
    EXPECT_FALSE(p.ue.exhaustionDue());
    const Bytes last = seal(p.ue, UeManageKeysRequest{});
    auto got = p.hse.openCp(last);
    ASSERT_TRUE(got);
    EXPECT_EQ(got->count, 0xFFFFFFFEu);
    EXPECT_TRUE(p.ue.exhaustionDue());
    std::array<std::uint8_t, kMaxDatagram> out{};
    auto refused = p.ue.sealCp(SessionTerminateRequest{}, out);
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().code, static_cast<int>(EmsdpErrc::counter_exhausted));
    // A forged message under 2^32-1 with a good MAC but another body: dropped, not committed.
    const Bytes other = ueCp(0xFFFFFFFF, Bytes{0x20, 0x20, 0x01, 0x01});
    EXPECT_EQ(verdictOf(p.hse.openCp(other)), Verdict::drop(DropReason::counter_exhausted));
    const Bytes noCause = ueCp(0xFFFFFFFF, Bytes{0x20});
    EXPECT_EQ(verdictOf(p.hse.openCp(noCause)), Verdict::drop(DropReason::counter_exhausted));
    EXPECT_EQ(p.hse.counters().cpRxHighest, 0xFFFFFFFEu);
    // The exhaustion Terminate: cause 0x13 under 2^32-1, then the sender is closed.
    auto n = p.ue.sealExhaustionTerminate(out);
    ASSERT_TRUE(n) << n.error().describe();
    EXPECT_TRUE(p.ue.closed());
    auto term = p.hse.openCp(ByteView(out.data(), *n));
    ASSERT_TRUE(term) << ::testing::PrintToString(term.error());
    EXPECT_EQ(term->count, 0xFFFFFFFFu);
    EXPECT_TRUE(std::get<SessionTerminateRequest>(term->body) ==
                SessionTerminateRequest{Cause::counter_exhausted});
    // Nothing is sent or received on a closed channel.
    EXPECT_EQ(p.ue.sealCp(SessionTerminateRequest{}, out).error().code,
              static_cast<int>(EmsdpErrc::session_closed));
    EXPECT_EQ(p.ue.sealUp(kHello, out).error().code, static_cast<int>(EmsdpErrc::session_closed));
    EXPECT_EQ(verdictOf(p.ue.openCp(last)), Verdict::drop(DropReason::session_closed));
    // At 2^32-1 nothing is left above it.
    EXPECT_EQ(verdictOf(p.hse.openCp(ueCp(0, Bytes{0x20}))),
              Verdict::drop(DropReason::counter_out_of_range));
}

TEST(Exhaustion, UpExhaustionTerminatesUnderTheNextCpCount) {
    Pair p = makePair();
    CounterSnapshot s;
    s.nextUpTx = 0xFFFFFFFE;
    s.nextCpTx = 5;
    p.hse.restoreCounters(s);
    CounterSnapshot r;
    r.upRxHighest = 0xFFFFFFF0;
    r.cpRxHighest = 4;
    p.ue.restoreCounters(r);
    std::array<std::uint8_t, 64> plain{};
    auto got = p.ue.openUp(sealUp(p.hse, kHello), plain);
    ASSERT_TRUE(got);
    EXPECT_EQ(got->count, 0xFFFFFFFEu);
    EXPECT_TRUE(p.hse.exhaustionDue());
    std::array<std::uint8_t, kMaxDatagram> out{};
    EXPECT_EQ(p.hse.sealUp(kHello, out).error().code,
              static_cast<int>(EmsdpErrc::counter_exhausted));
    auto n = p.hse.sealExhaustionTerminate(out);
    ASSERT_TRUE(n);
    auto term = p.ue.openCp(ByteView(out.data(), *n));
    ASSERT_TRUE(term);
    EXPECT_EQ(term->count, 5u);
    // UP COUNT 2^32-1 is never accepted as data.
    const Bytes forged =
        raw(Plane::up, kKid, kSid, CounterScheme::n1, 0xFFFFFFFF, Side::network, kHello, key(2));
    EXPECT_EQ(verdictOf(p.ue.openUp(forged, plain)), Verdict::drop(DropReason::counter_exhausted));
}

// ---- services and sides -----------------------------------------------------------------------

TEST(Channel, KaOnlyHasNoUserPlane) {
    ChannelConfig c = config(Side::network);
    c.upEnabled = false;
    c.upCiphering = false;
    SecureChannel hse = make(c);
    SecureChannel ue = make(config(Side::ue));
    const Bytes up = sealUp(ue, kHello);
    EXPECT_EQ(verdictOf(hse.openUp(up, {})), Verdict::drop(DropReason::up_not_allowed));
    std::array<std::uint8_t, 64> out{};
    EXPECT_EQ(hse.sealUp(kHello, out).error().code, static_cast<int>(EmsdpErrc::invalid_value));
}

TEST(Channel, IntegrityOnlyIsNotCiphered) {
    ChannelConfig hc = config(Side::network);
    hc.upCiphering = false;
    ChannelConfig uc = config(Side::ue);
    uc.upCiphering = false;
    SecureChannel hse = make(hc);
    SecureChannel ue = make(uc);
    const Bytes up = sealUp(ue, kHello);
    EXPECT_EQ(toHex(ByteView(up).subspan(6, 5)), toHex(kHello));
    std::array<std::uint8_t, 16> plain{};
    auto got = hse.openUp(up, plain);
    ASSERT_TRUE(got);
    EXPECT_FALSE(got->deciphered);
    EXPECT_EQ(toHex(got->payload), toHex(kHello));
    // With ciphering the payload on the wire differs from the plaintext.
    Pair p = makePair();
    const Bytes c = sealUp(p.ue, kHello);
    EXPECT_NE(toHex(ByteView(c).subspan(6, 5)), toHex(kHello));
}

TEST(Channel, EachSideSendsOnlyItsCommands) {
    Pair p = makePair();
    std::array<std::uint8_t, kMaxDatagram> out{};
    const auto wrongSide = [&out](SecureChannel& ch, const Body& b) {
        auto n = ch.sealCp(b, out);
        return !n && n.error().code == static_cast<int>(EmsdpErrc::wrong_side);
    };
    EXPECT_TRUE(wrongSide(p.ue, SessionStart{}));
    EXPECT_TRUE(wrongSide(p.ue, HseManageKeysRequest{}));
    EXPECT_TRUE(wrongSide(p.ue, HseManageKeysResponse{}));
    EXPECT_TRUE(wrongSide(p.hse, SessionStartConfirmation{}));
    EXPECT_TRUE(wrongSide(p.hse, UeManageKeysRequest{}));
    EXPECT_TRUE(wrongSide(p.hse, UeManageKeysResponse{}));
    EXPECT_TRUE(wrongSide(p.ue, SessionRequest{}));
    EXPECT_EQ(p.ue.counters().nextCpTx, 0u);
    EXPECT_EQ(p.hse.counters().nextCpTx, 0u);
    // Either side may terminate and reject.
    EXPECT_TRUE(p.ue.sealCp(MessageReject{Cause::aka_mac_failure, {}, {}}, out));
    EXPECT_TRUE(p.hse.sealCp(SessionTerminateRequest{}, out));
}

TEST(Channel, CreateRefusesBadConfigs) {
    ChannelConfig c = config(Side::ue);
    c.kid = 0;
    EXPECT_FALSE(SecureChannel::create(c, keys()));
    c.kid = 8;
    EXPECT_FALSE(SecureChannel::create(c, keys()));
    c = config(Side::ue);
    c.sessionId = 0;
    EXPECT_FALSE(SecureChannel::create(c, keys()));
    c = config(Side::ue);
    c.cpScheme = static_cast<CounterScheme>(4);
    EXPECT_FALSE(SecureChannel::create(c, keys()));
}

// ---- pre-session messages ---------------------------------------------------------------------

Bytes sessionRequestBytes(std::uint8_t kidOctet, std::uint32_t sid, const Bytes& tlvs) {
    Bytes d = {kidOctet, 0, 0, 0, 0, 0x10};
    putBe32(d.data() + 1, sid);
    d.insert(d.end(), tlvs.begin(), tlvs.end());
    return d;
}

TEST(SessionRequestAtTheHse, OutcomesOfStepsOneToFour) {
    const Bytes imsi = {0x01, 8, 0x09, 0x10, 0x10, 0, 0, 0, 0, 0x10};
    const Bytes conf = {0x03, 5, 0x11, 0x07, 0x03, 0x04, 0x05};
    const Bytes eas = {0x04, 1, 'e'};
    const Bytes nonce = {0x06, 8, 1, 2, 3, 4, 5, 6, 7, 8};
    const Bytes plmnBad = {0x05, 3, 0x0A, 0xF1, 0x10};
    const auto full = [&](std::initializer_list<Bytes> parts) {
        Bytes t;
        for (const Bytes& b : parts)
            t.insert(t.end(), b.begin(), b.end());
        return sessionRequestBytes(0x00, 0, t);
    };
    const auto verdict = [](const Bytes& d) {
        auto r = parseSessionRequest(d);
        EXPECT_FALSE(r.has_value());
        return r ? Verdict{} : r.error();
    };
    EXPECT_TRUE(parseSessionRequest(full({imsi, conf, eas, nonce})));
    EXPECT_EQ(verdict(full({imsi, imsi, conf, eas, nonce})),
              Verdict::reject(Cause::invalid_format, DropReason::duplicate_tlv));
    EXPECT_EQ(verdict(full({imsi, conf, eas, nonce, Bytes{0x30, 0}})),
              Verdict::reject(Cause::unknown_mandatory_ie, DropReason::unknown_mandatory_tag));
    EXPECT_EQ(verdict(full({imsi, Bytes{0x02, 0}})),
              Verdict::reject(Cause::unknown_subscriber, DropReason::suci_not_supported));
    EXPECT_EQ(verdict(full({imsi, conf, nonce})),
              Verdict::reject(Cause::missing_mandatory_ie, DropReason::missing_mandatory_ie));
    EXPECT_EQ(verdict(full({imsi, conf, eas, plmnBad, nonce})),
              Verdict::reject(Cause::invalid_format, DropReason::invalid_plmn));
    EXPECT_EQ(verdict(full({imsi, conf, eas, nonce, Bytes{0x06}})),
              Verdict::reject(Cause::invalid_format, DropReason::trailing_octets));
    // Drops: header-level faults.
    EXPECT_EQ(verdict(Bytes{0x00, 0, 0, 0, 0}), Verdict::drop(DropReason::truncated_message));
    EXPECT_EQ(verdict(sessionRequestBytes(0x18, 0, {})),
              Verdict::drop(DropReason::truncated_message));  // resumption without a MAC
    EXPECT_EQ(verdict(sessionRequestBytes(0x00, 7, {})),
              Verdict::drop(DropReason::request_with_session_nonzero));
    EXPECT_EQ(verdict(Bytes{0x00, 0, 0, 0, 0, 0x12}),
              Verdict::drop(DropReason::non_request_with_session_zero));
    // A resumption's TLVs end at the MAC: a length into the MAC is 0x01.
    Bytes resumption = full({imsi, conf, eas, nonce});
    resumption[0] = 0x18;
    resumption.push_back(0x03);
    resumption.push_back(0x06);  // UE configuration of 6 octets would run into the MAC
    resumption.insert(resumption.end(), {0xAA, 0xBB, 0xCC, 0xDD});
    EXPECT_EQ(verdict(resumption),
              Verdict::reject(Cause::invalid_format, DropReason::length_past_end));
}

TEST(SessionStartAtTheUe, EveryFaultIsADrop) {
    Pair p = makePair();
    SessionStart st;
    st.keyAgreement = crypto::KeyAgreement::umts;
    st.hseConfiguration.hseId = "hse";
    const Bytes good = seal(p.hse, st);
    ASSERT_TRUE(parseSessionStart(good));
    Bytes kid0 = good;
    kid0[0] &= 0xC7;
    EXPECT_EQ(parseSessionStart(kid0).error(), DropReason::kid_mismatch);
    Bytes sid0 = good;
    sid0[1] = sid0[2] = sid0[3] = sid0[4] = 0;
    EXPECT_EQ(parseSessionStart(sid0).error(), DropReason::session_zero_not_reject);
    Bytes otherCmd = good;
    otherCmd[5] = 0x21;
    EXPECT_EQ(parseSessionStart(otherCmd).error(), DropReason::unexpected_command);
    EXPECT_EQ(parseSessionStart(ByteView(good).first(9)).error(), DropReason::truncated_message);
    // A format error (unknown tag) in a Session Start: dropped, never rejected.
    const Bytes unknownTag = hseCp(0, Bytes{0x11, 0x07, 0x00}, CounterScheme::n0);
    EXPECT_EQ(parseSessionStart(unknownTag).error(), DropReason::unknown_mandatory_tag);
    SecureChannel ue = make(config(Side::ue));
    EXPECT_EQ(verdictOf(ue.acceptSessionStart(unknownTag)),
              Verdict::drop(DropReason::unknown_mandatory_tag));
    const Bytes missing = hseCp(0, Bytes{0x11}, CounterScheme::n0);
    EXPECT_EQ(parseSessionStart(missing).error(), DropReason::missing_mandatory_ie);
    Bytes up = good;
    up[0] |= 0x80;
    EXPECT_EQ(parseSessionStart(up).error(), DropReason::wrong_plane);
}

TEST(UnprotectedReject, ParsedAndNeverAnswered) {
    std::array<std::uint8_t, 64> out{};
    auto n = encodeUnprotectedReject(0, MessageReject{Cause::congestion, std::nullopt, 60}, out);
    ASSERT_TRUE(n);
    const Bytes d(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(*n));
    EXPECT_EQ(toHex(d),
              "0000000000802001"
              "0f21"
              "02003c");
    auto r = parseUnprotectedReject(d);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->body.backOff, 60);
    EXPECT_EQ(parseUnprotectedReject(Bytes{0x00, 0, 0, 0, 0, 0x80}).error(),
              DropReason::missing_mandatory_ie);
    EXPECT_EQ(parseUnprotectedReject(Bytes{0x00, 0, 0, 0, 0, 0x80, 0x20, 0x01, 0x01, 0x20}).error(),
              DropReason::trailing_octets);
    EXPECT_EQ(parseUnprotectedReject(Bytes{0x08, 0, 0, 0, 0, 0x80, 0x20, 0x01, 0x01}).error(),
              DropReason::kid_mismatch);
    EXPECT_EQ(parseUnprotectedReject(Bytes{0x00, 0, 0, 0, 0, 0x20}).error(),
              DropReason::unexpected_command);
    EXPECT_EQ(parseUnprotectedReject(Bytes{0x00, 0, 0, 0, 0}).error(),
              DropReason::truncated_message);
}

}  // namespace
}  // namespace best::emsdp
