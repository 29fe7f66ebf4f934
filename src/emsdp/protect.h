// Stateless protection (profile section 3.2): 128-EIA2 MAC (4 octets) over every octet before
// it, after ciphering; 128-EEA2 over UP payloads in the confidentiality service only. The
// counters live in SecureChannel; these functions take COUNT as given. Both the hot path (an
// Eia2 / Eea2 keyed once per session) and the cold path (setKey() before each call) use them.
#pragma once

#include <cstddef>
#include <cstdint>

#include "common/bytes.h"
#include "common/result.h"
#include "crypto/eps_algorithms.h"
#include "emsdp/header.h"
#include "emsdp/message.h"

namespace best::emsdp {

// A protected CP message: header (counter field = COUNT mod 2^w) || command || TLVs || MAC.
// `header.plane` must be CP and `header.kid` 1..7. BEARER 0.
Result<std::size_t> sealCp(crypto::Eia2& integrity, const Header& header, std::uint32_t count,
                           std::uint8_t direction, const Body& body, MutableByteView out);

// An unprotected message (KID 0, n = 0, counter field 0, no MAC): a full Session Request
// (Session ID 0) or a Message Reject.
Result<std::size_t> encodeUnprotected(std::uint32_t sessionId, const Body& body,
                                      MutableByteView out);

// A UP message: header || payload (EEA2-ciphered when `cipher` is not null) || MAC. BEARER 1.
// `payload` may alias the payload area of `out` (out.data() + header size) for in-place use.
Result<std::size_t> sealUp(crypto::Eia2& integrity, crypto::Eea2* cipher, const Header& header,
                           std::uint32_t count, std::uint8_t direction, ByteView payload,
                           MutableByteView out);

// Checks the trailing 4-octet MAC of `datagram` (which must hold more than 4 octets) in constant
// time. Error only when OpenSSL fails.
Result<bool> macMatches(crypto::Eia2& integrity, ByteView datagram, std::uint32_t count,
                        std::uint8_t bearer, std::uint8_t direction);

}  // namespace best::emsdp
