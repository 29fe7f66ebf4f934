// Bit-length reference variants of 128-EEA2 and 128-EIA2 (TS 33.401 B.1.3 / B.2.3), for tests
// only: the product works on whole octets (all EMSDP needs); these take LENGTH in bits so the
// non-byte-aligned sets of TS 33.401 Annex C can be checked, and are shown equal to the product
// on every byte-aligned input. Built on single-block AES-128-ECB from the Provider only (own CTR
// counter blocks, own CMAC subkeys and padding per NIST SP 800-38B), so they share no mode code
// with the product path.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "common/bytes.h"
#include "common/result.h"
#include "common/secure.h"

namespace best::crypto::test {

using Block = std::array<std::uint8_t, 16>;

// AES-128 on one block (EVP AES-128-ECB from the Provider).
Result<Block> aesBlock(const Key128& key, const Block& in);

// Full 128-bit CMAC (SP 800-38B) over the first `bits` bits of `msg`.
Result<Block> cmacBits(const Key128& key, ByteView msg, std::size_t bits);

// 128-EIA2 over a LENGTH-bit MESSAGE: the first 32 bits of the CMAC over
// COUNT || BEARER || DIRECTION || 0^26 || MESSAGE (LENGTH + 64 bits).
Result<std::uint32_t> eia2Bits(const Key128& key, std::uint32_t count, std::uint8_t bearer,
                               std::uint8_t direction, ByteView msg, std::size_t lengthBits);

// 128-EEA2 over the first LENGTH bits of `in`: as many octets out as `in` has (the test data
// pads its strings to whole 32-bit words), every bit past LENGTH zero.
// Counter blocks T1 = COUNT || BEARER || DIRECTION || 0^26 || 0^64, Ti+1 = Ti + 1 mod 2^64 on
// the low 64 bits.
Result<Bytes> eea2Bits(const Key128& key, std::uint32_t count, std::uint8_t bearer,
                       std::uint8_t direction, ByteView in, std::size_t lengthBits);

// `b` with every bit past the first `lengthBits` set to zero.
Bytes zeroPast(Bytes b, std::size_t lengthBits);

}  // namespace best::crypto::test
