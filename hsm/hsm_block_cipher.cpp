#include "hsm/hsm_block_cipher.h"

#include "common/secure.h"

namespace best::hsm {

HsmAes128::~HsmAes128() {
    (void)finish();
}

Result<void> HsmAes128::encryptBlock(const std::uint8_t in[16], std::uint8_t out[16]) {
    CK_MECHANISM ecb{CKM_AES_ECB, nullptr, 0};
    CK_ULONG outLen = 16;
    ++blocks_;
    if (path_ == MilenagePath::ecbSinglePart) {
        auto r = module_.call<P11Fn::C_EncryptInit>(session_, &ecb, key_);
        if (!r)
            return r;
        r = module_.call<P11Fn::C_Encrypt>(session_, const_cast<std::uint8_t*>(in),
                                           static_cast<CK_ULONG>(16), out, &outLen);
        if (r && outLen != 16)
            return makeError(HsmErrc::pkcs11, "C_Encrypt (AES-ECB) returned a short block");
        return r;
    }
    if (!active_) {
        auto r = module_.call<P11Fn::C_EncryptInit>(session_, &ecb, key_);
        if (!r)
            return r;
        active_ = true;
    }
    auto r = module_.call<P11Fn::C_EncryptUpdate>(session_, const_cast<std::uint8_t*>(in),
                                                  static_cast<CK_ULONG>(16), out, &outLen);
    if (!r) {
        // PKCS#11 ends the operation on this error; C_EncryptFinal in finish() is harmless then,
        // and clears it on a module that (wrongly) kept it active.
        return r;
    }
    if (outLen != 16) {
        (void)finish();
        return makeError(HsmErrc::pkcs11,
                         "C_EncryptUpdate (AES-ECB) did not return one block per block: the "
                         "token's multi-part ECB is unusable");
    }
    return {};
}

Result<void> HsmAes128::finish() {
    if (!active_)
        return {};
    active_ = false;
    std::uint8_t tail[16];
    CK_ULONG n = sizeof tail;
    auto r = module_.call<P11Fn::C_EncryptFinal>(session_, tail, &n);
    secureWipe(tail, sizeof tail);
    return r;
}

}  // namespace best::hsm
