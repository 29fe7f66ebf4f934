// 128-EIA2 (AES-CMAC, 32-bit MAC) and 128-EEA2 (AES-CTR), TS 33.401 Annex B.1.3 / B.2.3,
// on whole octets (all EMSDP needs), on the EVP path with algorithms from Provider.
//
// Hot path: an object keyed once per session key and reused for every message (no fetch, no
// key schedule per message). Cold path: setKey() per message (the CMAC cipher is set once at
// construction with EVP_MAC_CTX_set_params; setKey only runs EVP_MAC_init with the key).
// Objects are not thread-safe; use one per thread or per session.
#pragma once

#include <cstdint>

#include "common/bytes.h"
#include "common/result.h"
#include "common/secure.h"
#include "crypto/ossl.h"

namespace best::crypto {

constexpr std::uint8_t kAlgNull = 0x00;
constexpr std::uint8_t kAlgEia2 = 0x02;  // also 128-EEA2
constexpr std::uint8_t kBearerCp = 0;
constexpr std::uint8_t kBearerUp = 1;
constexpr std::uint8_t kDirUplink = 0;    // towards the network
constexpr std::uint8_t kDirDownlink = 1;  // towards the UE

class Eia2 {
public:
    Eia2();
    explicit Eia2(const Key128& key);
    Result<void> setKey(const Key128& key);
    bool keyed() const noexcept { return keyed_; }
    // 32-bit MAC-I over COUNT || BEARER(5) || DIRECTION(1) || 0^26 || message.
    Result<std::uint32_t> mac(std::uint32_t count, std::uint8_t bearer, std::uint8_t direction,
                              ByteView message);
    // Computes and compares in constant time.
    Result<bool> verify(std::uint32_t count, std::uint8_t bearer, std::uint8_t direction,
                        ByteView message, std::uint32_t expected);

private:
    MacCtxPtr ctx_;
    bool keyed_ = false;
};

class Eea2 {
public:
    Eea2();
    explicit Eea2(const Key128& key);
    Result<void> setKey(const Key128& key);
    bool keyed() const noexcept { return keyed_; }
    // out may alias in (in-place); sizes must match. IV = COUNT || BEARER(5) || DIRECTION(1) || 0.
    Result<void> apply(std::uint32_t count, std::uint8_t bearer, std::uint8_t direction,
                       ByteView in, MutableByteView out);

private:
    CipherCtxPtr ctx_;
    bool keyed_ = false;
};

}  // namespace best::crypto
