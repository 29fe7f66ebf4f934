// Lowercase hex encoding; strict decoding (even length, hex digits only, optional exact size).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "common/bytes.h"
#include "common/result.h"

namespace best {

std::string toHex(ByteView data);

// The value 0..15 of one hex digit (either case), or -1 when `c` is not one.
int hexDigitValue(char c) noexcept;

enum class HexErrc { odd_length = 1, bad_digit, wrong_length };
inline ErrorDomain errorDomainOf(HexErrc) {
    return ErrorDomain::generic;
}

// Decodes `text` (surrounding whitespace ignored). With `expected` set, the decoded size must
// match. `what` names the value in the error message ("K", "RAND").
Result<Bytes> fromHex(std::string_view text, std::string_view what,
                      std::optional<std::size_t> expected = std::nullopt);

// Decodes into a caller buffer (e.g. a secret) of exactly out.size() octets.
Result<void> fromHexInto(std::string_view text, std::string_view what, MutableByteView out);

}  // namespace best
