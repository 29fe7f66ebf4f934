#include "hsm/capabilities.h"

#include <algorithm>

namespace best::hsm {

namespace {

// The profile's HMAC keys (KInt, KInt_E2E, KInt_EAS_PSK, the binding key) are 32 octets.
constexpr CK_ULONG kHmacKeyOctets = 32;

struct Probe {
    const Slot& slot;
    const std::vector<CK_MECHANISM_TYPE>& list;

    // Present with all `flags`; fills `info` (zero-initialised by Slot::mechanismInfo).
    bool has(CK_MECHANISM_TYPE m, CK_FLAGS flags, CK_MECHANISM_INFO* info = nullptr) const {
        if (std::find(list.begin(), list.end(), m) == list.end())
            return false;
        auto i = slot.mechanismInfo(m);
        if (!i)
            return false;
        if (info != nullptr)
            *info = *i;
        return (i->flags & flags) == flags;
    }
};

tl::unexpected<Error> missing(const Slot& slot, CK_MECHANISM_TYPE m, const char* flags,
                              const char* why) {
    return makeError(HsmErrc::mechanism_missing,
                     "token '" + slot.label() + "' lacks " + ckmName(m) + " (" + flags +
                         "), needed " + why +
                         ": use a token (or token configuration) that offers it");
}

}  // namespace

CK_MECHANISM_TYPE ckMechanism(WrapMechanism m) noexcept {
    return m == WrapMechanism::aesKeyWrapPad ? CKM_AES_KEY_WRAP_PAD : CKM_AES_KEY_WRAP;
}

std::string TokenCapabilities::describe() const {
    std::string s = "wrap ";
    s += wrap == WrapMechanism::aesKeyWrap ? "CKM_AES_KEY_WRAP" : "CKM_AES_KEY_WRAP_PAD";
    s += "; Milenage E_K by ";
    s += milenage == MilenagePath::ecbMultiPart ? "C_EncryptUpdate (multi-part AES-ECB)"
                                                : "C_Encrypt per block";
    s += "; KDF by C_Sign CKM_SHA256_HMAC (min key " + std::to_string(hmacMinKeySize) + ")";
    s += kbkdf ? "; SP 800-108 KDF present (not needed: outputs are host-side by the profile)"
               : "; no SP 800-108 KDF";
    s += vendorMilenage ? "; vendor Milenage mechanism present (not used: generic path)"
                        : "; no vendor Milenage";
    s += "; " + std::to_string(tokenKeyCopies) + " of 3 token keys used through session copies";
    return s;
}

Result<TokenCapabilities> probeMechanisms(const Slot& slot,
                                          std::optional<CK_MECHANISM_TYPE> vendorMilenage) {
    auto list = slot.mechanisms();
    if (!list)
        return makeError(list.error());
    const Probe p{slot, *list};
    TokenCapabilities c;
    c.aesEcb = p.has(CKM_AES_ECB, CKF_ENCRYPT);
    c.aesCbc = p.has(CKM_AES_CBC, CKF_ENCRYPT | CKF_DECRYPT);
    CK_MECHANISM_INFO hmac{};
    c.hmacSha256 = p.has(CKM_SHA256_HMAC, CKF_SIGN | CKF_VERIFY, &hmac);
    c.hmacMinKeySize = hmac.ulMinKeySize;
    c.hmacMaxKeySize = hmac.ulMaxKeySize;
    c.aesKeyWrap = p.has(CKM_AES_KEY_WRAP, CKF_WRAP | CKF_UNWRAP);
    c.aesKeyWrapPad = p.has(CKM_AES_KEY_WRAP_PAD, CKF_WRAP | CKF_UNWRAP);
    c.aesKeyGen = p.has(CKM_AES_KEY_GEN, CKF_GENERATE);
    c.genericKeyGen = p.has(CKM_GENERIC_SECRET_KEY_GEN, CKF_GENERATE);
    c.kbkdf =
        p.has(kCkmSp800108CounterKdf, CKF_DERIVE) || p.has(kCkmSp800108FeedbackKdf, CKF_DERIVE);
    c.vendorMilenage = vendorMilenage && p.has(*vendorMilenage, 0);

    if (!c.aesEcb)
        return missing(slot, CKM_AES_ECB, "encrypt", "for Milenage with K inside the token");
    if (!c.aesCbc)
        return missing(slot, CKM_AES_CBC, "encrypt, decrypt", "to keep OP/OPc under the data key");
    if (!c.hmacSha256) {
        return missing(slot, CKM_SHA256_HMAC, "sign, verify",
                       "for the KDF under HSM-resident keys and for blob binding");
    }
    // Some tokens report HMAC key sizes in bits: 256 means 32 octets there.
    CK_ULONG minOctets = c.hmacMinKeySize;
    if (minOctets > kHmacKeyOctets && minOctets % 8 == 0 && minOctets / 8 <= kHmacKeyOctets)
        minOctets /= 8;
    if (minOctets > kHmacKeyOctets) {
        return makeError(HsmErrc::mechanism_missing,
                         "token '" + slot.label() + "' needs HMAC keys of at least " +
                             std::to_string(c.hmacMinKeySize) +
                             " octets; the key hierarchy's keys are 32 octets: use another token");
    }
    if (c.aesKeyWrap) {
        c.wrap = WrapMechanism::aesKeyWrap;
    } else if (c.aesKeyWrapPad) {
        c.wrap = WrapMechanism::aesKeyWrapPad;
    } else {
        return missing(slot, CKM_AES_KEY_WRAP, "wrap, unwrap (or CKM_AES_KEY_WRAP_PAD)",
                       "to keep K and KInt as wrapped blobs");
    }
    if (!c.aesKeyGen) {
        return missing(slot, CKM_AES_KEY_GEN, "generate",
                       "to create the wrap and data keys and the probe key");
    }
    return c;
}

}  // namespace best::hsm
