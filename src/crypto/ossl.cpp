#include "crypto/ossl.h"

#include <string>
#include <utility>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/params.h>

namespace best::crypto {

Provider::Provider() {
    libctx_.reset(OSSL_LIB_CTX_new());
    if (!libctx_)
        return;
    defaultProvider_.reset(OSSL_PROVIDER_load(libctx_.get(), "default"));
    if (!defaultProvider_)
        return;
    aes128Ecb_.reset(EVP_CIPHER_fetch(libctx_.get(), "AES-128-ECB", nullptr));
    aes128Ctr_.reset(EVP_CIPHER_fetch(libctx_.get(), "AES-128-CTR", nullptr));
    cmac_.reset(EVP_MAC_fetch(libctx_.get(), "CMAC", nullptr));
    hmac_.reset(EVP_MAC_fetch(libctx_.get(), "HMAC", nullptr));
    sha256_.reset(EVP_MD_fetch(libctx_.get(), "SHA2-256", nullptr));
    if (!aes128Ecb_ || !aes128Ctr_ || !cmac_ || !hmac_ || !sha256_)
        return;

    // The HMAC template: digest set once here (the provider resolves the name in our libctx);
    // KDF calls duplicate it, so no call path fetches.
    hmacSha256Template_.reset(EVP_MAC_CTX_new(hmac_.get()));
    if (!hmacSha256Template_)
        return;
    char digest[] = "SHA2-256";
    const OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
        OSSL_PARAM_construct_end(),
    };
    if (EVP_MAC_CTX_set_params(hmacSha256Template_.get(), params) != 1) {
        hmacSha256Template_.reset();
        return;
    }
    ok_ = true;
}

const Provider& Provider::instance() {
    static const Provider provider;
    return provider;
}

tl::unexpected<Error> opensslError(const char* what) {
    std::string message = std::string(what) + " failed";
    // The earliest queued error is the root cause; the rest of the queue is dropped.
    const unsigned long code = ERR_get_error();
    ERR_clear_error();
    if (code != 0) {
        char buf[256];
        ERR_error_string_n(code, buf, sizeof buf);
        message += ": ";
        message += buf;
    }
    return makeError(CryptoErrc::openssl, std::move(message));
}

}  // namespace best::crypto
