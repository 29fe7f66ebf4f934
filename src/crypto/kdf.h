// The generic 3GPP KDF (TS 33.220 Annex B.2): HMAC-SHA-256(Key, S),
// S = FC || P0 || L0 || P1 || L1 ..., each Li the 2-octet length of Pi.
#pragma once

#include <cstdint>
#include <initializer_list>

#include "common/bytes.h"
#include "common/result.h"
#include "common/secure.h"

namespace best::crypto {

// The one table of FC values (profile section 6). 0xB0..0xB6 are the profile's own and follow
// the normative values here only.
enum class Fc : std::uint8_t {
    kasme = 0x10,            // TS 33.401 A.2
    khse = 0x63,             // TS 33.163 5.1.0a
    kint = 0xB0,             // KDF(R, HSE Id)
    kintE2e = 0xB1,          // KDF(KInt, EAS Id)
    kintEasPsk = 0xB2,       // KDF(KInt, EAS Id)
    easKeyId = 0xB3,         // first 16 of KDF(KInt, EAS Id)
    ksess = 0xB4,            // KDF(KInt or KInt_E2E, Session ID, UE nonce)
    sessionKey = 0xB5,       // last 16 of KDF(KSess, distinguisher, algorithm id)
    keyConfirmation = 0xB6,  // first 8 of KDF(new KInt, Session ID, RAND)
};

// Builds S. Used by the software KDF and by the HSM path (C_Sign HMAC-SHA-256 over S).
// Each parameter must be at most 65535 octets (kdf() reports bad_length; here the caller's job).
Bytes kdfInput(std::uint8_t fc, std::initializer_list<ByteView> params);

// HMAC-SHA-256(key, s) over a ready-made S (e.g. kdfInput(), or a published S). Thread-safe.
Result<Key256> hmacSha256(ByteView key, ByteView s);

// Software KDF; key of any length (CK||IK, KInt, ...). Thread-safe.
Result<Key256> kdf(ByteView key, std::uint8_t fc, std::initializer_list<ByteView> params);
inline Result<Key256> kdf(ByteView key, Fc fc, std::initializer_list<ByteView> params) {
    return kdf(key, static_cast<std::uint8_t>(fc), params);
}

}  // namespace best::crypto
