// The EMSDP header (profile section 3): octet 0 = P (bit 7), R (bit 6), KID (bits 5-3),
// CTR_H (bits 2-0); octets 1-4 Session ID; then n counter-extension octets. The transmitted
// counter field is COUNT mod 2^w, w = 3 + 8n: CTR_H is its top 3 bits, the extension its low 8n.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>

#include "common/bytes.h"
#include "common/result.h"
#include "emsdp/outcome.h"

namespace best::emsdp {

inline constexpr std::size_t kMaxDatagram = 1280;  // UDP payload limit, both directions
inline constexpr std::size_t kHeaderBaseSize = 5;  // octet 0 + Session ID
inline constexpr std::size_t kMacSize = 4;
inline constexpr std::uint8_t kMaxKid = 7;
inline constexpr std::uint32_t kMaxCount = 0xFFFFFFFFu;      // only for the A1 Terminate
inline constexpr std::uint32_t kMaxDataCount = 0xFFFFFFFEu;  // highest COUNT for anything else

enum class Plane : std::uint8_t { cp = 0, up = 1 };

// Which end of EMSDP: the UE, or the network (HSE, or the EAS for UE-to-EAS user plane).
enum class Side : std::uint8_t { ue, network };

constexpr Side peerOf(Side s) noexcept {
    return s == Side::ue ? Side::network : Side::ue;
}
// DIRECTION of what `sender` sends: 0 towards the network, 1 towards the UE.
constexpr std::uint8_t directionOf(Side sender) noexcept {
    return sender == Side::ue ? 0 : 1;
}
constexpr std::uint8_t bearerOf(Plane p) noexcept {
    return p == Plane::cp ? 0 : 1;
}

// Counter scheme n (0..3), announced per plane in the HSE configuration TLV.
enum class CounterScheme : std::uint8_t { n0 = 0, n1 = 1, n2 = 2, n3 = 3 };

constexpr std::size_t extensionOctets(CounterScheme s) noexcept {
    return static_cast<std::size_t>(s);
}
constexpr unsigned counterWidth(CounterScheme s) noexcept {
    return 3u + 8u * static_cast<unsigned>(s);
}
constexpr std::uint32_t counterMask(CounterScheme s) noexcept {
    return static_cast<std::uint32_t>((std::uint64_t{1} << counterWidth(s)) - 1);
}
constexpr std::size_t headerSize(CounterScheme s) noexcept {
    return kHeaderBaseSize + extensionOctets(s);
}
constexpr std::optional<CounterScheme> counterSchemeFromRaw(std::uint8_t n) noexcept {
    if (n > 3)
        return std::nullopt;
    return static_cast<CounterScheme>(n);
}

// The first five octets, readable before the counter scheme is known.
struct HeaderPrefix {
    Plane plane = Plane::cp;
    bool r = false;
    std::uint8_t kid = 0;
    std::uint8_t ctrH = 0;
    std::uint32_t sessionId = 0;

    friend constexpr bool operator==(const HeaderPrefix&, const HeaderPrefix&) = default;
};

struct Header {
    Plane plane = Plane::cp;
    bool r = false;  // sent as 0, ignored on receipt (covered by the MAC)
    std::uint8_t kid = 0;
    std::uint32_t sessionId = 0;
    CounterScheme scheme = CounterScheme::n0;
    std::uint32_t counterField = 0;  // COUNT mod 2^w

    std::size_t size() const noexcept { return headerSize(scheme); }
    // Sets counterField from a full COUNT.
    void setCount(std::uint32_t count) noexcept { counterField = count & counterMask(scheme); }

    friend constexpr bool operator==(const Header&, const Header&) = default;
};

// Checks the size limits (datagram_too_large, truncated_header) and reads octets 0-4.
tl::expected<HeaderPrefix, DropReason> peekHeader(ByteView datagram) noexcept;

// Reads the whole header for scheme n (truncated_header if shorter than 5 + n octets; also
// checks datagram_too_large).
tl::expected<Header, DropReason> decodeHeader(ByteView datagram, CounterScheme scheme) noexcept;
// The same when peekHeader(datagram) already gave `prefix`.
tl::expected<Header, DropReason> decodeHeader(const HeaderPrefix& prefix, ByteView datagram,
                                              CounterScheme scheme) noexcept;

// Writes the header; out must hold header.size() octets. KID must be 0..7 and counterField fit
// in w bits (invalid_value otherwise). Returns the header size.
Result<std::size_t> encodeHeader(const Header& header, MutableByteView out);

}  // namespace best::emsdp
