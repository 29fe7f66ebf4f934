// 128-EIA2 / 128-EEA2 (TS 33.401 B.2.3 / B.1.3) on whole octets, EVP with Provider algorithms.
#include "crypto/eps_algorithms.h"

#include <climits>
#include <cstddef>
#include <utility>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/params.h>

namespace best::crypto {

namespace {

Result<void> checkInputs(std::uint8_t bearer, std::uint8_t direction) {
    if (bearer > 0x1F)
        return makeError(CryptoErrc::bad_value, "BEARER must fit in 5 bits");
    if (direction > 1)
        return makeError(CryptoErrc::bad_value, "DIRECTION must be 0 or 1");
    return {};
}

// COUNT(32) || BEARER(5) || DIRECTION(1) || 0^26: the EIA2 prefix, also the first 8 octets of
// the EEA2 counter block T1 (whose last 8 octets are 0).
void putPrefix(std::uint8_t* p, std::uint32_t count, std::uint8_t bearer,
               std::uint8_t direction) noexcept {
    putBe32(p, count);
    p[4] = static_cast<std::uint8_t>((bearer << 3) | (direction << 2));
    p[5] = p[6] = p[7] = 0;
}

}  // namespace

// ---- Eia2 --------------------------------------------------------------------------------

Eia2::Eia2() {
    const Provider& p = Provider::instance();
    if (!p.ok())
        return;
    MacCtxPtr ctx(EVP_MAC_CTX_new(p.cmac()));
    if (!ctx)
        return;
    // The CMAC cipher is set once here; setKey() only runs EVP_MAC_init with the key.
    char cipher[] = "AES-128-CBC";
    const OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_CIPHER, cipher, 0),
        OSSL_PARAM_construct_end(),
    };
    if (EVP_MAC_CTX_set_params(ctx.get(), params) != 1)
        return;
    ctx_ = std::move(ctx);
}

Eia2::Eia2(const Key128& key) : Eia2() {
    (void)setKey(key);
}

Result<void> Eia2::setKey(const Key128& key) {
    keyed_ = false;
    if (!ctx_)
        return opensslError("CMAC context setup");
    if (EVP_MAC_init(ctx_.get(), key.data(), key.size(), nullptr) != 1) {
        return opensslError("EVP_MAC_init (CMAC)");
    }
    keyed_ = true;
    return {};
}

Result<std::uint32_t> Eia2::mac(std::uint32_t count, std::uint8_t bearer, std::uint8_t direction,
                                ByteView message) {
    if (!keyed_ || !ctx_)
        return makeError(CryptoErrc::not_keyed, "EIA2 used without a key");
    auto ok = checkInputs(bearer, direction);
    if (!ok)
        return makeError(ok.error());
    // Re-initialise with the key already set (OpenSSL 3.0 CMAC: EVP_MAC_init with no key resets
    // the chaining state and keeps the key schedule and subkeys; tested).
    if (EVP_MAC_init(ctx_.get(), nullptr, 0, nullptr) != 1)
        return opensslError("EVP_MAC_init");
    std::uint8_t prefix[8];
    putPrefix(prefix, count, bearer, direction);
    if (EVP_MAC_update(ctx_.get(), prefix, sizeof prefix) != 1) {
        return opensslError("EVP_MAC_update (CMAC)");
    }
    if (!message.empty() && EVP_MAC_update(ctx_.get(), message.data(), message.size()) != 1) {
        return opensslError("EVP_MAC_update (CMAC)");
    }
    std::uint8_t tag[16];
    std::size_t tagLen = 0;
    if (EVP_MAC_final(ctx_.get(), tag, &tagLen, sizeof tag) != 1 || tagLen != sizeof tag) {
        return opensslError("EVP_MAC_final (CMAC)");
    }
    const std::uint32_t macI = getBe32(tag);  // MAC-I = the first 32 bits of the CMAC
    OPENSSL_cleanse(tag, sizeof tag);
    return macI;
}

Result<bool> Eia2::verify(std::uint32_t count, std::uint8_t bearer, std::uint8_t direction,
                          ByteView message, std::uint32_t expected) {
    auto m = mac(count, bearer, direction, message);
    if (!m)
        return makeError(m.error());
    std::uint8_t a[4];
    std::uint8_t b[4];
    putBe32(a, *m);
    putBe32(b, expected);
    return CRYPTO_memcmp(a, b, sizeof a) == 0;
}

// ---- Eea2 --------------------------------------------------------------------------------

Eea2::Eea2() : ctx_(EVP_CIPHER_CTX_new()) {}

Eea2::Eea2(const Key128& key) : Eea2() {
    (void)setKey(key);
}

Result<void> Eea2::setKey(const Key128& key) {
    keyed_ = false;
    const Provider& p = Provider::instance();
    if (!p.ok())
        return opensslError("crypto provider initialisation");
    if (!ctx_)
        return opensslError("EVP_CIPHER_CTX_new");
    // The key schedule is built once here; apply() only sets the IV.
    if (EVP_CipherInit_ex2(ctx_.get(), p.aes128Ctr(), key.data(), nullptr, 1, nullptr) != 1) {
        return opensslError("EVP_CipherInit_ex2 (AES-128-CTR)");
    }
    keyed_ = true;
    return {};
}

Result<void> Eea2::apply(std::uint32_t count, std::uint8_t bearer, std::uint8_t direction,
                         ByteView in, MutableByteView out) {
    if (!keyed_ || !ctx_)
        return makeError(CryptoErrc::not_keyed, "EEA2 used without a key");
    auto ok = checkInputs(bearer, direction);
    if (!ok)
        return makeError(ok.error());
    if (in.size() != out.size()) {
        return makeError(CryptoErrc::bad_length, "EEA2 input and output sizes differ");
    }
    if (in.size() > static_cast<std::size_t>(INT_MAX)) {
        return makeError(CryptoErrc::bad_length, "EEA2 message too long");
    }
    std::uint8_t iv[16] = {};
    putPrefix(iv, count, bearer, direction);
    if (EVP_CipherInit_ex2(ctx_.get(), nullptr, nullptr, iv, 1, nullptr) != 1) {
        return opensslError("EVP_CipherInit_ex2 (IV)");
    }
    if (in.empty())
        return {};
    int outl = 0;
    if (EVP_CipherUpdate(ctx_.get(), out.data(), &outl, in.data(), static_cast<int>(in.size())) !=
            1 ||
        static_cast<std::size_t>(outl) != in.size()) {
        return opensslError("EVP_CipherUpdate (AES-128-CTR)");
    }
    return {};
}

}  // namespace best::crypto
