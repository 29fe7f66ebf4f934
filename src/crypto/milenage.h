// Milenage (3GPP TS 35.206) and the AKA values built from it (TS 33.102 6.3).
// The AES-128 block function E_K is abstract: SoftAes128 here, an HSM-backed implementation in
// hsm/ (C_Encrypt under an unwrapped K), so K need never be in host memory on the network side.
#pragma once

#include <array>
#include <cstdint>

#include "common/result.h"
#include "common/secure.h"
#include "crypto/ossl.h"

namespace best::crypto {

using Rand = std::array<std::uint8_t, 16>;
using Sqn = std::array<std::uint8_t, 6>;
using Amf = std::array<std::uint8_t, 2>;
using Mac8 = std::array<std::uint8_t, 8>;
using Ak = std::array<std::uint8_t, 6>;
using Res = std::array<std::uint8_t, 8>;  // f2: 64-bit RES/XRES
using Autn = std::array<std::uint8_t, 16>;
using Auts = std::array<std::uint8_t, 14>;

// E_K: one AES-128 block encryption under the subscriber key.
class BlockCipher {
public:
    virtual ~BlockCipher() = default;
    virtual Result<void> encryptBlock(const std::uint8_t in[16], std::uint8_t out[16]) = 0;
};

// Software E_K on an EVP context keyed once (aes-128-ecb from Provider).
class SoftAes128 final : public BlockCipher {
public:
    explicit SoftAes128(const SubscriberK& k);
    Result<void> encryptBlock(const std::uint8_t in[16], std::uint8_t out[16]) override;

private:
    CipherCtxPtr ctx_;
    bool ok_ = false;
};

// OPc = OP xor E_K(OP).
Result<Opc> computeOpc(BlockCipher& ek, const Op& op);

struct F2345 {
    Res res;
    Ck ck;
    Ik ik;
    Ak ak;
};

class Milenage {
public:
    Milenage(BlockCipher& ek, const Opc& opc) : ek_(ek), opc_(opc) {}
    Result<Mac8> f1(const Rand& rand, const Sqn& sqn, const Amf& amf);
    Result<Mac8> f1star(const Rand& rand, const Sqn& sqn, const Amf& amf);
    Result<F2345> f2345(const Rand& rand);
    Result<Ak> f5star(const Rand& rand);

private:
    BlockCipher& ek_;
    Opc opc_;
};

// Network side (HE/AuC): AUTN = SQN xor AK || AMF || MAC-A.
struct AuthVector {
    Rand rand;
    Autn autn;
    Res xres;
    Ck ck;
    Ik ik;
    Ak ak;
    Sqn sqn;
};
Result<AuthVector> generateVector(BlockCipher& ek, const Opc& opc, const Rand& rand, const Sqn& sqn,
                                  const Amf& amf);

// USIM side: opens AUTN (SQN = first 6 octets xor AK), checks MAC-A in constant time.
// Freshness (the SQN array) is the caller's job and comes after the MAC check.
struct AutnOpened {
    bool macOk = false;
    Sqn sqn{};
    Amf amf{};
    Res res{};
    Ck ck;
    Ik ik;
    Ak ak{};
};
Result<AutnOpened> openAutn(BlockCipher& ek, const Opc& opc, const Rand& rand, const Autn& autn);

// USIM side: AUTS = SQN_MS xor AK* || MAC-S, MAC-S = f1*(SQN_MS, RAND, AMF 0000).
Result<Auts> buildAuts(BlockCipher& ek, const Opc& opc, const Rand& rand, const Sqn& sqnMs);

// Network side resync: recovers SQN_MS with f5*, verifies MAC-S (AMF 0000) in constant time.
// A bad MAC-S is CryptoErrc::mac_s_failure.
Result<Sqn> recoverSqnMs(BlockCipher& ek, const Opc& opc, const Rand& rand, const Auts& auts);

// SQN helpers: SQN = SEQ (43 bits) || IND (indBits, default 5). 48-bit big-endian value.
std::uint64_t sqnToInt(const Sqn& s) noexcept;
Sqn sqnFromInt(std::uint64_t v) noexcept;

}  // namespace best::crypto
