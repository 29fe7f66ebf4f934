// The generic 3GPP KDF, TS 33.220 Annex B.2, on EVP_MAC HMAC with SHA-256 from Provider.
#include "crypto/kdf.h"

#include <cstddef>

#include "crypto/ossl.h"

namespace best::crypto {

namespace {

constexpr std::size_t kMaxParam = 0xFFFF;

// A fresh HMAC context per call, duplicated from the Provider's template (digest already set):
// no fetch, no shared mutable state, and the key schedule dies with the context.
Result<MacCtxPtr> newKeyedHmac(ByteView key) {
    const Provider& p = Provider::instance();
    if (!p.ok())
        return opensslError("crypto provider initialisation");
    if (key.empty())
        return makeError(CryptoErrc::bad_length, "KDF key is empty");
    MacCtxPtr ctx(EVP_MAC_CTX_dup(p.hmacSha256Template()));
    if (!ctx)
        return opensslError("EVP_MAC_CTX_dup (HMAC)");
    if (EVP_MAC_init(ctx.get(), key.data(), key.size(), nullptr) != 1) {
        return opensslError("EVP_MAC_init (HMAC)");
    }
    return ctx;
}

Result<void> update(EVP_MAC_CTX* ctx, const std::uint8_t* data, std::size_t n) {
    if (n == 0)
        return {};
    if (EVP_MAC_update(ctx, data, n) != 1)
        return opensslError("EVP_MAC_update (HMAC)");
    return {};
}

Result<Key256> finish(EVP_MAC_CTX* ctx) {
    Key256 out;
    std::size_t outl = 0;
    if (EVP_MAC_final(ctx, out.data(), &outl, out.size()) != 1 || outl != out.size()) {
        return opensslError("EVP_MAC_final (HMAC)");
    }
    return out;
}

}  // namespace

Bytes kdfInput(std::uint8_t fc, std::initializer_list<ByteView> params) {
    std::size_t n = 1;
    for (const ByteView& p : params)
        n += p.size() + 2;
    Bytes s;
    s.reserve(n);
    s.push_back(fc);
    for (const ByteView& p : params) {
        s.insert(s.end(), p.begin(), p.end());
        s.push_back(static_cast<std::uint8_t>(p.size() >> 8));
        s.push_back(static_cast<std::uint8_t>(p.size()));
    }
    return s;
}

Result<Key256> hmacSha256(ByteView key, ByteView s) {
    auto ctx = newKeyedHmac(key);
    if (!ctx)
        return makeError(ctx.error());
    auto r = update(ctx->get(), s.data(), s.size());
    if (!r)
        return makeError(r.error());
    return finish(ctx->get());
}

// Feeds S = FC || P0 || L0 || ... to HMAC piece by piece, so S is never assembled in memory
// (parameters may be key-derived); equal to hmacSha256(key, kdfInput(fc, params)) (tested).
Result<Key256> kdf(ByteView key, std::uint8_t fc, std::initializer_list<ByteView> params) {
    for (const ByteView& p : params) {
        if (p.size() > kMaxParam) {
            return makeError(CryptoErrc::bad_length, "KDF parameter longer than 65535 octets");
        }
    }
    auto ctx = newKeyedHmac(key);
    if (!ctx)
        return makeError(ctx.error());
    auto r = update(ctx->get(), &fc, 1);
    if (!r)
        return makeError(r.error());
    for (const ByteView& p : params) {
        r = update(ctx->get(), p.data(), p.size());
        if (!r)
            return makeError(r.error());
        std::uint8_t len[2];
        putBe16(len, static_cast<std::uint16_t>(p.size()));
        r = update(ctx->get(), len, 2);
        if (!r)
            return makeError(r.error());
    }
    return finish(ctx->get());
}

}  // namespace best::crypto
