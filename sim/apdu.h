// Short command/response APDUs (ISO 7816-4) and the one exchange routine that hides the reader
// style: "61xx" answered by GET RESPONSE (repeated), "6Cxx" re-sent with the right Le, data +
// "9000" directly, and "91xx" (TS 102 221: success with a pending proactive command) as success.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>

#include "common/bytes.h"
#include "common/result.h"
#include "common/secure.h"

namespace best::sim {

inline constexpr std::uint16_t kSwOk = 0x9000;
// Largest command APDU (5 header octets, 255 data octets, Le) and response APDU (256 + SW).
inline constexpr std::size_t kMaxCommand = 261;
inline constexpr std::size_t kMaxResponse = 258;
// Largest response the exchange routine assembles from GET RESPONSE chains.
inline constexpr std::size_t kMaxAssembled = 4096;

struct CommandApdu {
    std::uint8_t cla = 0x00;
    std::uint8_t ins = 0x00;
    std::uint8_t p1 = 0x00;
    std::uint8_t p2 = 0x00;
    ByteView data;                    // not owned; may be a secret (VERIFY PIN)
    std::optional<std::uint16_t> le;  // 1..256; 256 is encoded as 00

    // Encodes into `out` (at least kMaxCommand octets); returns the length, 0 if data > 255.
    std::size_t encode(MutableByteView out) const noexcept;
};

// A complete response after the exchange routine. The data may carry CK/IK: wiped on drop.
struct ResponseApdu {
    SecureBuffer data;
    std::uint16_t sw = 0;

    std::uint8_t sw1() const noexcept { return static_cast<std::uint8_t>(sw >> 8); }
    std::uint8_t sw2() const noexcept { return static_cast<std::uint8_t>(sw); }
    // 90 00, or 91 xx (TS 102 221 10.2.1.1: normal ending with a pending proactive command).
    bool ok() const noexcept { return sw == kSwOk || sw1() == 0x91; }
};

// One raw command/response pair: a PC/SC card handle, or a fake in the unit tests.
class ApduTransport {
public:
    virtual ~ApduTransport() = default;
    // Sends `command`, writes the raw response (data + SW1 SW2) into `response` (kMaxResponse
    // octets), returns its length.
    virtual Result<std::size_t> transmit(ByteView command, MutableByteView response) = 0;
};

// Sends `command` and follows 61xx / 9Fxx (GET RESPONSE, repeated), 6Cxx (re-send with Le = xx,
// once per command) until a final status word. Any final status word is returned as a value;
// only transport failures and malformed responses are errors.
Result<ResponseApdu> exchange(ApduTransport& transport, const CommandApdu& command);

}  // namespace best::sim
