// Key blobs at rest: the opaque octet strings the store keeps. Format version 1, all integers
// big-endian (docs/hsm.md has the same table):
//
//   offset  size  field
//   0       2     magic 0x42 0x4B ("BK")
//   2       1     format version, 1
//   3       1     purpose: 1 K, 2 OPc, 3 KInt, 4 KInt_E2E, 5 KInt_EAS_PSK
//   4       1     protection: 1 AES key wrap (RFC 3394) under the wrap key,
//                 2 AES key wrap with padding (RFC 5649) under the wrap key,
//                 3 AES-256-CBC under the data key (payload = IV 16 || ciphertext)
//   5       1     key type of the plaintext: 1 AES, 2 generic secret (HMAC), 0 data
//   6       1     plaintext length in octets (16 for K and OPc, 32 for the HMAC keys)
//   7       1     reserved, 0
//   8       2     token key generation (1): which generation of wrap/data/binding key
//   10      2     payload length n
//   12      n     payload
//   12+n    32    binding tag = HMAC-SHA-256(binding key, B), computed in the token
//
// B = "BEST-BLOB-BIND-1" || len(IMSI) (2) || IMSI || purpose (1) || version (8) || octets 0..12+n-1
// of the blob. So the tag covers every header field and the payload, and the row the blob
// belongs to (IMSI, purpose, version). It is checked by C_Verify before any unwrap or decrypt.
#pragma once

#include <cstdint>
#include <string>

#include "common/bytes.h"
#include "common/result.h"

namespace best::hsm {

enum class BlobPurpose : std::uint8_t {
    subscriberK = 1,
    opc = 2,
    kint = 3,
    kintE2e = 4,
    kintEasPsk = 5,
};

enum class BlobProtection : std::uint8_t {
    aesKeyWrap = 1,
    aesKeyWrapPad = 2,
    aesCbcData = 3,
};

enum class BlobKeyType : std::uint8_t { data = 0, aes = 1, genericSecret = 2 };

inline constexpr std::uint8_t kBlobFormatVersion = 1;
inline constexpr std::uint16_t kTokenKeyGeneration = 1;
inline constexpr std::size_t kBlobHeaderSize = 12;
inline constexpr std::size_t kBlobTagSize = 32;
inline constexpr std::size_t kMaxImsiLength = 64;

std::string_view purposeName(BlobPurpose p) noexcept;

// The row a blob belongs to. `imsi`: the subscriber's IMSI digits; `version`: the row's
// version as the store defines it (e.g. the subscriber record's key version, or the key set's
// id). A blob verifies only for the exact (imsi, purpose, version) it was made for.
struct BlobBinding {
    std::string imsi;
    BlobPurpose purpose = BlobPurpose::subscriberK;
    std::uint64_t version = 0;
};

struct BlobHeader {
    BlobPurpose purpose = BlobPurpose::subscriberK;
    BlobProtection protection = BlobProtection::aesKeyWrap;
    BlobKeyType keyType = BlobKeyType::aes;
    std::uint8_t keyLength = 0;
    std::uint16_t generation = kTokenKeyGeneration;
};

// A parsed blob: views into the caller's octets.
struct BlobView {
    BlobHeader header;
    ByteView signedPart;  // header || payload (what B covers after the row fields)
    ByteView payload;
    ByteView tag;
};

// The expected plaintext shape of each purpose.
BlobKeyType keyTypeFor(BlobPurpose p) noexcept;
std::uint8_t keyLengthFor(BlobPurpose p) noexcept;

// Every structural check, before any token work: size, magic, version, purpose (must equal
// `expected`), protection allowed for the purpose, key type and length, generation, payload
// length. Errors: blob_malformed, naming the first field that is wrong.
Result<BlobView> parseBlob(ByteView blob, BlobPurpose expected);

// header || payload (the tag is appended by the vault once the token has computed it).
Bytes encodeBlobBody(const BlobHeader& header, ByteView payload);

// B, the input of the binding tag. Errors: bad_input (IMSI empty or too long).
Result<Bytes> bindingInput(const BlobBinding& binding, ByteView signedPart);

}  // namespace best::hsm
