// libFuzzer target for the EMSDP decoder: every entry point that takes peer input, plus
// properties that must hold for any input:
//  - whatever decodes re-encodes, and the re-encoding decodes to the same value;
//  - a decodable IMSI re-encodes to the same octets;
//  - after the input is given this session's Session ID and KID and a correct MAC (computed
//    here with the session's fixed keys over the rebuilt COUNT), it is never dropped as bad_mac:
//    this takes the fuzzer past the MAC into the TLV rules behind it.
// A violated property aborts (a crash for libFuzzer, a failed test for the replay).
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <vector>

#include "emsdp/emsdp.h"

namespace {

using namespace best;
using namespace best::emsdp;

constexpr std::uint32_t kSid = 0x01020304;
constexpr std::uint8_t kKid = 1;

void require(bool ok) {
    if (!ok)
        std::abort();
}

Key128 fixedKey(std::uint8_t seed) {
    std::array<std::uint8_t, 16> k{};
    for (std::size_t i = 0; i < k.size(); ++i)
        k[i] = static_cast<std::uint8_t>(seed * 31 + i);
    return Key128(ByteView(k));
}

struct Fixture {
    ChannelKeys keys{fixedKey(1), fixedKey(2), fixedKey(3)};
    std::optional<SecureChannel> hse;
    std::optional<SecureChannel> ue;
    crypto::Eia2 cpInt;
    crypto::Eia2 upInt;

    Fixture() {
        ChannelConfig c;
        c.sessionId = kSid;
        c.kid = kKid;
        c.cpScheme = CounterScheme::n1;
        c.upScheme = CounterScheme::n1;
        c.upCiphering = true;
        c.side = Side::network;
        auto h = SecureChannel::create(c, keys);
        c.side = Side::ue;
        auto u = SecureChannel::create(c, keys);
        require(h.has_value() && u.has_value());
        hse.emplace(std::move(*h));
        ue.emplace(std::move(*u));
        require(cpInt.setKey(keys.cpInt).has_value() && upInt.setKey(keys.upInt).has_value());
    }
};

Fixture& fixture() {
    static Fixture f;
    return f;
}

// decode(encode(body)) == body for a body that decoded.
void checkBodyRoundTrip(const Body& body, Side sender) {
    std::array<std::uint8_t, kMaxDatagram + 64> buf{};
    auto n = encodeBody(body, buf);
    require(n.has_value());
    require(*n >= 1);
    auto again = decodeBody(buf[0], sender, ByteView(buf.data() + 1, *n - 1));
    require(again.has_value());
    require(*again == body);
    if (const auto* req = std::get_if<SessionRequest>(&body)) {
        auto digits = req->imsi.digits();
        if (digits) {
            auto imsi = Imsi::fromDigits(*digits);
            require(imsi.has_value() && *imsi == req->imsi);
        }
    }
}

void checkReceivedCp(const tl::expected<ReceivedCp, Verdict>& r, Side sender) {
    if (r)
        checkBodyRoundTrip(r->body, sender);
    else
        require(r.error().isDrop() || r.error().authenticated);  // rejects only after the MAC
}

// The receiver's counter state for the valid-MAC pass: fresh, or (R bit set in the input) a
// history whose highest COUNT is the input's original Session ID field, so the rebuild paths
// with a history are fuzzed too.
CounterSnapshot historyFor(ByteView in) {
    CounterSnapshot s;
    if (in.size() >= kHeaderBaseSize && (in[0] & 0x40) != 0) {
        const std::uint32_t h = getBe32(in.data() + 1);
        s.cpRxHighest = h;
        s.upRxHighest = h;
        s.upRxSeen = (std::uint64_t{h} * 0x9E3779B97F4A7C15u) | 1u;
    }
    return s;
}

// Gives a copy of the input this session's Session ID and KID and a correct MAC for the COUNT
// the receiver (in state `history`) will rebuild.
std::vector<std::uint8_t> withValidMac(ByteView in, Side sender, const CounterSnapshot& history,
                                       crypto::Eia2& cpInt, crypto::Eia2& upInt) {
    std::vector<std::uint8_t> d(in.begin(), in.end());
    if (d.size() < kHeaderBaseSize + 1 + kMacSize || d.size() > kMaxDatagram)
        return {};
    d[0] = static_cast<std::uint8_t>((d[0] & 0xC7) | (kKid << 3));
    putBe32(d.data() + 1, kSid);
    const Plane plane = (d[0] & 0x80) != 0 ? Plane::up : Plane::cp;
    auto h = decodeHeader(d, CounterScheme::n1);
    if (!h)
        return {};
    std::uint32_t count = 0;
    if (plane == Plane::cp) {
        CpRxCounter rx;
        rx.restore(history.cpRxHighest);
        auto c = rx.candidate(h->counterField, h->scheme);
        if (!c)
            return {};
        count = *c;
    } else {
        UpRxCounter rx;
        rx.restore(history.upRxHighest, history.upRxSeen);
        auto c = rx.candidate(h->counterField, h->scheme);
        if (!c)
            return {};
        count = *c;
    }
    crypto::Eia2& eia2 = plane == Plane::cp ? cpInt : upInt;
    const std::size_t covered = d.size() - kMacSize;
    auto mac = eia2.mac(count, bearerOf(plane), directionOf(sender), ByteView(d.data(), covered));
    require(mac.has_value());
    putBe32(d.data() + covered, *mac);
    return d;
}

void openInSession(SecureChannel& ch, ByteView d, Side sender) {
    ch.restoreCounters(CounterSnapshot{});
    std::array<std::uint8_t, kMaxDatagram> plain{};
    if (d.size() > 0 && (d[0] & 0x80) != 0) {
        auto r = ch.openUp(d, plain);
        if (r)
            require(r->payload.size() + kMacSize + r->header.size() == d.size());
        ch.restoreCounters(CounterSnapshot{});
        (void)ch.openUp(d, {});
    } else {
        checkReceivedCp(ch.openCp(d), sender);
        ch.restoreCounters(CounterSnapshot{});
        auto s = ch.acceptSessionStart(d);
        if (s)
            checkBodyRoundTrip(s->body, sender);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const ByteView in(data, size);
    Fixture& f = fixture();

    // Routing and headers, every scheme.
    (void)route(in, Side::network);
    (void)route(in, Side::ue);
    for (std::uint8_t n = 0; n <= 3; ++n) {
        auto h = decodeHeader(in, static_cast<CounterScheme>(n));
        if (h) {
            std::array<std::uint8_t, 8> buf{};
            auto size2 = encodeHeader(*h, buf);
            require(size2.has_value() && *size2 == h->size());
            for (std::size_t i = 0; i < *size2; ++i)
                require(buf[i] == in[i]);
        }
    }

    // Pre-session entry points.
    if (auto req = parseSessionRequest(in)) {
        checkBodyRoundTrip(req->body, Side::ue);
        std::array<std::uint8_t, kMaxDatagram> buf{};
        auto n = encodeSessionRequest(req->body, buf);
        require(n.has_value());
        auto again = parseSessionRequest(ByteView(buf.data(), *n));
        require(again.has_value() && again->body == req->body);
        (void)verifyResumptionMac(in, f.cpInt);
    } else {
        require(req.error().isDrop() || !req.error().authenticated);
    }
    if (auto st = parseSessionStart(in))
        checkBodyRoundTrip(st->body, Side::network);
    if (auto rej = parseUnprotectedReject(in)) {
        checkBodyRoundTrip(rej->body, Side::ue);
        std::array<std::uint8_t, kMaxDatagram> buf{};
        auto n = encodeUnprotectedReject(rej->header.sessionId, rej->body, buf);
        require(n.has_value());
        auto again = parseUnprotectedReject(ByteView(buf.data(), *n));
        require(again.has_value() && again->body == rej->body);
    }

    // The input as a TLV area of every command, from either side.
    if (size > 0) {
        for (std::uint8_t command : {0x10, 0x11, 0x12, 0x20, 0x21, 0x30, 0x31, 0x80}) {
            for (Side sender : {Side::ue, Side::network}) {
                auto b = decodeBody(command, sender, in.subspan(1));
                if (b)
                    checkBodyRoundTrip(*b, sender);
                else
                    require(b.error().offset <= size);
            }
        }
    }

    // In a session, as received, and with a valid MAC.
    openInSession(*f.hse, in, Side::ue);
    openInSession(*f.ue, in, Side::network);
    const CounterSnapshot history = historyFor(in);
    for (Side sender : {Side::ue, Side::network}) {
        const std::vector<std::uint8_t> fixed = withValidMac(in, sender, history, f.cpInt, f.upInt);
        if (fixed.empty())
            continue;
        SecureChannel& receiver = sender == Side::ue ? *f.hse : *f.ue;
        receiver.restoreCounters(history);
        std::array<std::uint8_t, kMaxDatagram> plain{};
        bool authenticated = false;
        if ((fixed[0] & 0x80) != 0) {
            auto r = receiver.openUp(fixed, plain);
            require(r.has_value() || r.error().reason != DropReason::bad_mac);
            authenticated = r.has_value() || r.error().authenticated;
            // Replay protection: the same datagram is never accepted twice.
            auto again = receiver.openUp(fixed, plain);
            require(!again.has_value() && !again.error().authenticated);
        } else {
            auto r = receiver.openCp(fixed);
            require(r.has_value() || r.error().reason != DropReason::bad_mac);
            checkReceivedCp(r, sender);
            authenticated = r.has_value() || r.error().authenticated;
            auto again = receiver.openCp(fixed);
            require(!again.has_value() && !again.error().authenticated);
        }
        // The counter moved exactly when the message authenticated.
        const CounterSnapshot after = receiver.counters();
        require(authenticated == !(after == history));
    }
    return 0;
}
