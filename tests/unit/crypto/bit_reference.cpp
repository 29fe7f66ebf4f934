#include "bit_reference.h"

#include <utility>

#include "crypto/ossl.h"

namespace best::crypto::test {

namespace {

Block shiftLeftOne(const Block& b) {
    Block out{};
    for (std::size_t i = 0; i < 16; ++i) {
        out[i] = static_cast<std::uint8_t>(b[i] << 1);
        if (i + 1 < 16)
            out[i] = static_cast<std::uint8_t>(out[i] | (b[i + 1] >> 7));
    }
    return out;
}

// SP 800-38B 6.1: K1 = L << 1 (xor Rb if msb(L)), K2 likewise from K1; Rb = 0^120 || 10000111.
Block subkey(const Block& in) {
    Block out = shiftLeftOne(in);
    if (in[0] & 0x80)
        out[15] ^= 0x87;
    return out;
}

bool bitOf(ByteView m, std::size_t i) {
    return (m[i / 8] >> (7 - i % 8)) & 1;
}

}  // namespace

Result<Block> aesBlock(const Key128& key, const Block& in) {
    const Provider& p = Provider::instance();
    CipherCtxPtr ctx(EVP_CIPHER_CTX_new());
    if (!ctx)
        return opensslError("EVP_CIPHER_CTX_new");
    if (EVP_EncryptInit_ex2(ctx.get(), p.aes128Ecb(), key.data(), nullptr, nullptr) != 1 ||
        EVP_CIPHER_CTX_set_padding(ctx.get(), 0) != 1) {
        return opensslError("AES-128-ECB init");
    }
    Block out{};
    int outl = 0;
    if (EVP_EncryptUpdate(ctx.get(), out.data(), &outl, in.data(), 16) != 1 || outl != 16) {
        return opensslError("AES-128-ECB");
    }
    return out;
}

Result<Block> cmacBits(const Key128& key, ByteView msg, std::size_t bits) {
    if (bits > msg.size() * 8)
        return makeError(CryptoErrc::bad_length, "bits past the message");
    auto l = aesBlock(key, Block{});
    if (!l)
        return l;
    const Block k1 = subkey(*l);
    const Block k2 = subkey(k1);

    // SP 800-38B 6.2: n blocks; the last one is complete (xor K1) or padded with 1 0* (xor K2).
    const std::size_t n = bits == 0 ? 1 : (bits + 127) / 128;
    const bool lastComplete = bits != 0 && bits % 128 == 0;
    Block c{};
    for (std::size_t blk = 0; blk < n; ++blk) {
        Block m{};
        const std::size_t start = blk * 128;
        for (std::size_t i = 0; i < 128 && start + i < bits; ++i) {
            if (bitOf(msg, start + i))
                m[i / 8] |= static_cast<std::uint8_t>(0x80 >> (i % 8));
        }
        if (blk + 1 == n) {
            if (lastComplete) {
                for (std::size_t i = 0; i < 16; ++i)
                    m[i] ^= k1[i];
            } else {
                const std::size_t r = bits - start;  // bits in the last block, 0..127
                m[r / 8] |= static_cast<std::uint8_t>(0x80 >> (r % 8));
                for (std::size_t i = 0; i < 16; ++i)
                    m[i] ^= k2[i];
            }
        }
        for (std::size_t i = 0; i < 16; ++i)
            m[i] ^= c[i];
        auto e = aesBlock(key, m);
        if (!e)
            return e;
        c = *e;
    }
    return c;
}

Result<std::uint32_t> eia2Bits(const Key128& key, std::uint32_t count, std::uint8_t bearer,
                               std::uint8_t direction, ByteView msg, std::size_t lengthBits) {
    if (lengthBits > msg.size() * 8)
        return makeError(CryptoErrc::bad_length, "LENGTH too long");
    Bytes m(8 + msg.size());
    putBe32(m.data(), count);
    m[4] = static_cast<std::uint8_t>(((bearer & 0x1F) << 3) | ((direction & 1) << 2));
    for (std::size_t i = 0; i < msg.size(); ++i)
        m[8 + i] = msg[i];
    auto t = cmacBits(key, m, 64 + lengthBits);
    if (!t)
        return makeError(t.error());
    return getBe32(t->data());
}

Result<Bytes> eea2Bits(const Key128& key, std::uint32_t count, std::uint8_t bearer,
                       std::uint8_t direction, ByteView in, std::size_t lengthBits) {
    if (lengthBits > in.size() * 8)
        return makeError(CryptoErrc::bad_length, "LENGTH too long");
    const std::size_t octets = (lengthBits + 7) / 8;
    Bytes out(in.size());
    Block t{};
    putBe32(t.data(), count);
    t[4] = static_cast<std::uint8_t>(((bearer & 0x1F) << 3) | ((direction & 1) << 2));
    for (std::size_t off = 0; off < octets; off += 16) {
        auto ks = aesBlock(key, t);
        if (!ks)
            return makeError(ks.error());
        for (std::size_t i = 0; i < 16 && off + i < octets; ++i) {
            out[off + i] = static_cast<std::uint8_t>(in[off + i] ^ (*ks)[i]);
        }
        std::uint64_t low = getBe64(t.data() + 8) + 1;  // mod 2^64
        putBe64(t.data() + 8, low);
    }
    return zeroPast(std::move(out), lengthBits);
}

Bytes zeroPast(Bytes b, std::size_t lengthBits) {
    for (std::size_t i = lengthBits / 8; i < b.size(); ++i) {
        const std::size_t keep = i * 8 < lengthBits ? lengthBits - i * 8 : 0;  // 0..7 here
        b[i] &= static_cast<std::uint8_t>(0xFF00 >> keep);
    }
    return b;
}

}  // namespace best::crypto::test
