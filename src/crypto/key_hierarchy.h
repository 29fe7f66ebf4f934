// The BEST key hierarchy of profile section 6, in software (host memory).
// HSM-resident derivations (KInt -> ...) are done by hsm/ with C_Sign over kdfInput(); both
// paths must give the same octets (tested).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/bytes.h"
#include "common/result.h"
#include "common/secure.h"
#include "crypto/kdf.h"
#include "crypto/milenage.h"

namespace best::crypto {

enum class KeyAgreement : std::uint8_t { umts = 0x01, eps = 0x02, fiveG = 0x03 };

enum class KeyDistinguisher : std::uint8_t {
    cpEnc = 0x01,
    cpInt = 0x02,
    upEnc = 0x03,
    upInt = 0x04
};

using PlmnId = std::array<std::uint8_t, 3>;  // TS 24.008 encoding, e.g. 001/01 -> 00 f1 10
using EasKeyId = std::array<std::uint8_t, 16>;
using KeyConfirmation = std::array<std::uint8_t, 8>;

// "5G:mnc<MNC 3 digits>.mcc<MCC>.3gppnetwork.org"; error for non-BCD digits.
Result<std::string> servingNetworkName(const PlmnId& plmn);

// Root key R: UMTS CK||IK; EPS KASME (FC 0x10, SN id, SQN xor AK); 5G KHSE (FC 0x63,
// serving network name, SQN xor AK).
Result<Key256> deriveRoot(KeyAgreement ka, const Ck& ck, const Ik& ik, const PlmnId& plmn,
                          const Ak& sqnXorAk);

Result<Key256> deriveKInt(const Key256& root, std::string_view hseId);
Result<Key256> deriveKIntE2e(const Key256& kint, std::string_view easId);
Result<Key256> deriveKIntEasPsk(const Key256& kint, std::string_view easId);
Result<EasKeyId> deriveEasKeyId(const Key256& kint, std::string_view easId);
// KSess (and KSess_E2E from KInt_E2E); sessionId 0 gives KSess0.
Result<Key256> deriveKSess(const Key256& kint, std::uint32_t sessionId, std::uint64_t ueNonce);
Result<Key128> deriveSessionKey(const Key256& ksess, KeyDistinguisher d, std::uint8_t algId);

struct SessionKeys {
    Key128 cpEnc;
    Key128 cpInt;
    Key128 upEnc;
    Key128 upInt;
};
// enc keys take encAlg, int keys take intAlg (profile section 6).
Result<SessionKeys> deriveSessionKeys(const Key256& ksess, std::uint8_t intAlg,
                                      std::uint8_t encAlg);

Result<KeyConfirmation> deriveKeyConfirmation(const Key256& newKint, std::uint32_t sessionId,
                                              const Rand& rand);

}  // namespace best::crypto
