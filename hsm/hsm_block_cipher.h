// Milenage's E_K with K inside the token: AES-128-ECB by C_Encrypt under the unwrapped K. The
// crypto core's Milenage takes a BlockCipher&, so the HSM path runs the same Milenage code as
// the software path.
#pragma once

#include <cstdint>

#include <p11-kit/pkcs11.h>

#include "crypto/milenage.h"
#include "hsm/capabilities.h"
#include "hsm/module.h"

namespace best::hsm {

class HsmAes128 final : public crypto::BlockCipher {
public:
    // `session` and `key` must outlive this object. With MilenagePath::ecbMultiPart the first
    // block starts one C_EncryptInit and each block is one C_EncryptUpdate; finish() (or the
    // destructor) ends the operation with C_EncryptFinal.
    HsmAes128(const Module& module, CK_SESSION_HANDLE session, CK_OBJECT_HANDLE key,
              MilenagePath path) noexcept
        : module_(module), session_(session), key_(key), path_(path) {}
    HsmAes128(const HsmAes128&) = delete;
    HsmAes128& operator=(const HsmAes128&) = delete;
    ~HsmAes128() override;

    Result<void> encryptBlock(const std::uint8_t in[16], std::uint8_t out[16]) override;

    // Ends a multi-part operation (no-op otherwise). Call before using the session for anything
    // else.
    Result<void> finish();

    unsigned blocks() const noexcept { return blocks_; }

private:
    const Module& module_;
    CK_SESSION_HANDLE session_;
    CK_OBJECT_HANDLE key_;
    MilenagePath path_;
    bool active_ = false;
    unsigned blocks_ = 0;
};

}  // namespace best::hsm
