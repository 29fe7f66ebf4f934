// OpenSSL 3 objects freed only through these unique_ptr aliases (conventions 2), and the one
// explicit library context from which every algorithm is fetched once.
#pragma once

#include <memory>

#include <openssl/evp.h>
#include <openssl/provider.h>

#include "common/result.h"

namespace best::crypto {

enum class CryptoErrc {
    openssl = 1,    // an OpenSSL call failed (message names it)
    bad_length,     // an input had the wrong size
    mac_s_failure,  // AUTS MAC-S did not verify (network-side resync)
    hsm,            // a BlockCipher backed by an HSM failed
    bad_value,      // an input value was out of range (non-BCD PLMN digit, BEARER > 31, ...)
    not_keyed,      // an Eia2/Eea2 object was used before setKey() succeeded
};
inline ErrorDomain errorDomainOf(CryptoErrc) {
    return ErrorDomain::crypto;
}

struct LibCtxFree {
    void operator()(OSSL_LIB_CTX* p) const noexcept { OSSL_LIB_CTX_free(p); }
};
struct CipherFree {
    void operator()(EVP_CIPHER* p) const noexcept { EVP_CIPHER_free(p); }
};
struct CipherCtxFree {
    void operator()(EVP_CIPHER_CTX* p) const noexcept { EVP_CIPHER_CTX_free(p); }
};
struct MacFree {
    void operator()(EVP_MAC* p) const noexcept { EVP_MAC_free(p); }
};
struct MacCtxFree {
    void operator()(EVP_MAC_CTX* p) const noexcept { EVP_MAC_CTX_free(p); }
};
struct MdFree {
    void operator()(EVP_MD* p) const noexcept { EVP_MD_free(p); }
};
struct MdCtxFree {
    void operator()(EVP_MD_CTX* p) const noexcept { EVP_MD_CTX_free(p); }
};
struct ProviderFree {
    void operator()(OSSL_PROVIDER* p) const noexcept { OSSL_PROVIDER_unload(p); }
};

using LibCtxPtr = std::unique_ptr<OSSL_LIB_CTX, LibCtxFree>;
using CipherPtr = std::unique_ptr<EVP_CIPHER, CipherFree>;
using CipherCtxPtr = std::unique_ptr<EVP_CIPHER_CTX, CipherCtxFree>;
using MacPtr = std::unique_ptr<EVP_MAC, MacFree>;
using MacCtxPtr = std::unique_ptr<EVP_MAC_CTX, MacCtxFree>;
using MdPtr = std::unique_ptr<EVP_MD, MdFree>;
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, MdCtxFree>;
using ProviderPtr = std::unique_ptr<OSSL_PROVIDER, ProviderFree>;

// The process's crypto provider: one OSSL_LIB_CTX (default provider loaded into it) and the
// algorithms the project uses, fetched once at first use (thread-safe initialisation).
// Hot paths never fetch: they take the pointers from here.
class Provider {
public:
    static const Provider& instance();

    OSSL_LIB_CTX* libctx() const noexcept { return libctx_.get(); }
    EVP_CIPHER* aes128Ecb() const noexcept { return aes128Ecb_.get(); }
    EVP_CIPHER* aes128Ctr() const noexcept { return aes128Ctr_.get(); }
    EVP_MAC* cmac() const noexcept { return cmac_.get(); }
    EVP_MAC* hmac() const noexcept { return hmac_.get(); }
    EVP_MD* sha256() const noexcept { return sha256_.get(); }
    // True when the context, the provider and every algorithm above were obtained. When false,
    // every operation fails with CryptoErrc::openssl (naming what could not be fetched).
    bool ok() const noexcept { return ok_; }
    // Unkeyed HMAC context with its digest (SHA-256) already set; never used directly, only
    // duplicated (EVP_MAC_CTX_dup), so a KDF call fetches nothing. Null when !ok().
    const EVP_MAC_CTX* hmacSha256Template() const noexcept { return hmacSha256Template_.get(); }

    Provider(const Provider&) = delete;
    Provider& operator=(const Provider&) = delete;

private:
    Provider();
    // Declaration order is destruction order reversed: algorithms, then the provider, then the
    // library context.
    LibCtxPtr libctx_;
    ProviderPtr defaultProvider_;
    CipherPtr aes128Ecb_;
    CipherPtr aes128Ctr_;
    MacPtr cmac_;
    MacPtr hmac_;
    MdPtr sha256_;
    MacCtxPtr hmacSha256Template_;
    bool ok_ = false;
};

// Error for a failed OpenSSL call, with OpenSSL's own reason appended (queue cleared).
tl::unexpected<Error> opensslError(const char* what);

}  // namespace best::crypto
