// The startup probe of the token's mechanisms and key-size limits, and the paths it chooses.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <p11-kit/pkcs11.h>

#include "common/result.h"
#include "hsm/slot.h"

namespace best::hsm {

// PKCS#11 3.0 SP 800-108 mechanisms (not in the 2.40 header).
inline constexpr CK_MECHANISM_TYPE kCkmSp800108CounterKdf = 0x3ac;
inline constexpr CK_MECHANISM_TYPE kCkmSp800108FeedbackKdf = 0x3ad;

// Values are the blob format's protection codes (blob.h).
enum class WrapMechanism : std::uint8_t { aesKeyWrap = 1, aesKeyWrapPad = 2 };

CK_MECHANISM_TYPE ckMechanism(WrapMechanism m) noexcept;

// How Milenage's E_K runs: one C_EncryptInit then C_EncryptUpdate per block (6 blocks for a
// vector) when the token does multi-part ECB correctly, else C_EncryptInit + C_Encrypt per block.
// `vendor` is detected (a configured vendor mechanism is present) but not implemented.
enum class MilenagePath : std::uint8_t { ecbMultiPart, ecbSinglePart };

// How derivations keyed by an HSM-resident key run. Only C_Sign HMAC-SHA-256 is implemented:
// every output of those derivations (KSess, KInt_E2E for the push, the EAS key identifier) is
// needed on the host by the profile, so an in-token KBKDF would keep nothing more inside.
enum class KdfPath : std::uint8_t { hmacSign };

struct TokenCapabilities {
    bool aesEcb = false;          // CKM_AES_ECB encrypt: Milenage E_K
    bool aesCbc = false;          // CKM_AES_CBC encrypt + decrypt: OP/OPc under the data key
    bool hmacSha256 = false;      // CKM_SHA256_HMAC sign + verify: KDF and blob binding
    CK_ULONG hmacMinKeySize = 0;  // as reported (SoftHSM: octets, 32)
    CK_ULONG hmacMaxKeySize = 0;
    bool aesKeyWrap = false;      // CKM_AES_KEY_WRAP wrap + unwrap (RFC 3394)
    bool aesKeyWrapPad = false;   // CKM_AES_KEY_WRAP_PAD wrap + unwrap (RFC 5649)
    bool aesKeyGen = false;       // CKM_AES_KEY_GEN: init (wrap and data keys), probe key
    bool genericKeyGen = false;   // CKM_GENERIC_SECRET_KEY_GEN: init (binding key)
    bool kbkdf = false;           // SP 800-108 counter or feedback KDF present (reported only)
    bool vendorMilenage = false;  // the configured vendor Milenage mechanism is present

    // Confirmed by the vault's functional probe: C_SetAttributeValue(CKA_EXTRACTABLE, false)
    // works on a session object, so a freshly wrapped key can be kept without an unwrap.
    bool clearExtractable = false;
    // How many of the token keys the operations use through session copies (C_CopyObject):
    // SoftHSM copies the data and binding keys; the wrap key is not modifiable (its unwrap
    // template must never change), and SoftHSM refuses to copy a non-modifiable object into a
    // session object (CKR_ATTRIBUTE_READ_ONLY, measured).
    unsigned tokenKeyCopies = 0;

    // Chosen paths; `wrap` and `milenage` are confirmed by the vault's functional probe.
    WrapMechanism wrap = WrapMechanism::aesKeyWrap;
    MilenagePath milenage = MilenagePath::ecbMultiPart;
    KdfPath kdf = KdfPath::hmacSign;

    // One line for the startup log.
    std::string describe() const;
};

// Static probe (C_GetMechanismList / C_GetMechanismInfo). Errors name the first missing
// mechanism and what it is needed for (mechanism_missing). `vendorMilenage`: a vendor mechanism
// code to look for, if the operator configured one.
Result<TokenCapabilities> probeMechanisms(const Slot& slot,
                                          std::optional<CK_MECHANISM_TYPE> vendorMilenage = {});

}  // namespace best::hsm
