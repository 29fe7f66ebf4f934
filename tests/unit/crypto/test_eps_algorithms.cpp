// 128-EEA2 / 128-EIA2 (product path, whole octets) against tests/data/eea2-eia2-cmac.txt, the
// RFC 4493 CMAC tags through EVP with the Provider, the hot path (one keyed object reused)
// against fresh objects, in-place ciphering and the error paths.
#include <gtest/gtest.h>

#include <openssl/core_names.h>
#include <openssl/params.h>

#include "bit_reference.h"
#include "crypto/eps_algorithms.h"
#include "crypto/ossl.h"
#include "vectors.h"

namespace best::crypto::test {
namespace {

constexpr char kFile[] = "eea2-eia2-cmac.txt";

std::vector<Record> eea2Sets() {
    auto r = readRecords(kFile, "eea2");
    EXPECT_EQ(r.size(), 6u) << "TS 33.401 C.1 sets 1-6";
    return r;
}
std::vector<Record> eia2Sets() {
    auto r = readRecords(kFile, "eia2");
    EXPECT_EQ(r.size(), 8u) << "TS 33.401 C.2 sets 1-8";
    return r;
}

template <typename R>
bool failsWith(const R& r, CryptoErrc code) {
    return !r.has_value() && r.error().domain == ErrorDomain::crypto &&
           r.error().code == static_cast<int>(code);
}

// Full 128-bit AES-CMAC through EVP_MAC with the Provider's CMAC.
Bytes evpCmac(const Bytes& key, const Bytes& msg) {
    MacCtxPtr ctx(EVP_MAC_CTX_new(Provider::instance().cmac()));
    EXPECT_TRUE(ctx);
    if (!ctx)
        return {};
    char cipher[] = "AES-128-CBC";
    const OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_CIPHER, cipher, 0),
        OSSL_PARAM_construct_end(),
    };
    EXPECT_EQ(EVP_MAC_init(ctx.get(), key.data(), key.size(), params), 1);
    EXPECT_EQ(EVP_MAC_update(ctx.get(), msg.data(), msg.size()), 1);
    Bytes tag(16);
    std::size_t n = 0;
    EXPECT_EQ(EVP_MAC_final(ctx.get(), tag.data(), &n, tag.size()), 1);
    tag.resize(n);
    return tag;
}

std::uint8_t u8(const Record& r, const char* key) {
    return static_cast<std::uint8_t>(r.u32(key));
}

TEST(Cmac, Rfc4493TagsThroughEvpProvider) {
    const auto sets = readRecords(kFile, "cmac");
    ASSERT_EQ(sets.size(), 4u) << "RFC 4493 examples 1-4";
    for (const Record& r : sets) {
        SCOPED_TRACE("line " + std::to_string(r.line));
        EXPECT_EQ(hex(evpCmac(r.bytes("key"), r.bytes("message"))), r.text("tag"));
    }
}

TEST(Eia2, ByteAlignedSetsOnProductPath) {
    int aligned = 0;
    for (const Record& r : eia2Sets()) {
        const std::size_t bits = r.number("length");
        if (bits % 8 != 0)
            continue;
        ++aligned;
        SCOPED_TRACE("eia2 set " + r.text("set"));
        Bytes msg = r.bytes("message");
        ASSERT_EQ(msg.size(), bits / 8);
        Eia2 eia2(r.secret<Key128>("key"));
        ASSERT_TRUE(eia2.keyed());
        auto mac = eia2.mac(r.u32("count"), u8(r, "bearer"), u8(r, "direction"), msg);
        ASSERT_TRUE(mac.has_value()) << mac.error().describe();
        EXPECT_EQ(*mac, r.u32("mac"));
        auto ok =
            eia2.verify(r.u32("count"), u8(r, "bearer"), u8(r, "direction"), msg, r.u32("mac"));
        ASSERT_TRUE(ok.has_value());
        EXPECT_TRUE(*ok);
        for (std::uint32_t flip : {1u, 0x80000000u}) {
            auto bad = eia2.verify(r.u32("count"), u8(r, "bearer"), u8(r, "direction"), msg,
                                   r.u32("mac") ^ flip);
            ASSERT_TRUE(bad.has_value());
            EXPECT_FALSE(*bad);
        }
        // MAC-I is the first 32 bits of the full CMAC over prefix || message.
        Bytes full(8);
        putBe32(full.data(), r.u32("count"));
        full[4] = static_cast<std::uint8_t>((u8(r, "bearer") << 3) | (u8(r, "direction") << 2));
        full.insert(full.end(), msg.begin(), msg.end());
        const Bytes tag = evpCmac(r.bytes("key"), full);
        ASSERT_EQ(tag.size(), 16u);
        EXPECT_EQ(getBe32(tag.data()), *mac);
    }
    EXPECT_EQ(aligned, 3) << "sets 2, 5 and 8 are byte-aligned";
}

TEST(Eea2, NonAlignedSetsAgreeOnWholeOctets) {
    // The product ciphers whole octets: on every set, its output masked to LENGTH bits is the
    // published ciphertext (no set of C.1 is byte-aligned; see BitReference for the rest).
    for (const Record& r : eea2Sets()) {
        SCOPED_TRACE("eea2 set " + r.text("set"));
        const std::size_t bits = r.number("length");
        const Bytes pt = r.bytes("plaintext");
        ASSERT_GE(pt.size() * 8, bits);
        Eea2 eea2(r.secret<Key128>("key"));
        Bytes ct(pt.size());
        auto ok = eea2.apply(r.u32("count"), u8(r, "bearer"), u8(r, "direction"), pt, ct);
        ASSERT_TRUE(ok.has_value()) << ok.error().describe();
        EXPECT_EQ(hex(zeroPast(ct, bits)), r.text("ciphertext"));
    }
}

TEST(Eea2, InPlaceEqualsOutOfPlaceAndInverts) {
    for (const Record& r : eea2Sets()) {
        SCOPED_TRACE("eea2 set " + r.text("set"));
        const Bytes pt = r.bytes("plaintext");
        Eea2 eea2(r.secret<Key128>("key"));
        Bytes out(pt.size());
        ASSERT_TRUE(eea2.apply(r.u32("count"), u8(r, "bearer"), u8(r, "direction"), pt, out));
        Bytes buf = pt;
        ASSERT_TRUE(eea2.apply(r.u32("count"), u8(r, "bearer"), u8(r, "direction"), buf, buf));
        EXPECT_EQ(buf, out);
        ASSERT_TRUE(eea2.apply(r.u32("count"), u8(r, "bearer"), u8(r, "direction"), buf, buf));
        EXPECT_EQ(buf, pt);
    }
}

// Messages of many lengths (0..100 octets, across block boundaries) under one key.
std::vector<Bytes> sampleMessages() {
    std::vector<Bytes> out;
    for (std::size_t n : {0, 1, 7, 8, 15, 16, 17, 31, 32, 33, 64, 72, 100}) {
        Bytes m(n);
        for (std::size_t i = 0; i < n; ++i)
            m[i] = static_cast<std::uint8_t>(i * 37 + n);
        out.push_back(std::move(m));
    }
    return out;
}

TEST(Eia2, HotPathReuseEqualsFreshObjects) {
    for (const Record& r : eia2Sets()) {
        SCOPED_TRACE("eia2 set " + r.text("set"));
        const Key128 key = r.secret<Key128>("key");
        Eia2 hot(key);
        std::uint32_t count = r.u32("count");
        for (const Bytes& m : sampleMessages()) {
            for (std::uint8_t dir : {0, 1}) {
                auto a = hot.mac(count, u8(r, "bearer"), dir, m);
                Eia2 fresh(key);
                auto b = fresh.mac(count, u8(r, "bearer"), dir, m);
                ASSERT_TRUE(a.has_value());
                ASSERT_TRUE(b.has_value());
                EXPECT_EQ(*a, *b) << "length " << m.size();
                ++count;
            }
        }
        // After all that traffic the set's own (whole-octet) message still gives the same MAC
        // as a fresh object.
        const Bytes msg = r.bytes("message");
        Eia2 fresh(key);
        EXPECT_EQ(*hot.mac(r.u32("count"), u8(r, "bearer"), u8(r, "direction"), msg),
                  *fresh.mac(r.u32("count"), u8(r, "bearer"), u8(r, "direction"), msg));
    }
}

TEST(Eia2, ColdPathSetKeyPerMessage) {
    // One object re-keyed per message (cold path) alternating between keys gives the MAC of a
    // fresh object for that key.
    const auto sets = eia2Sets();
    Eia2 cold;
    EXPECT_FALSE(cold.keyed());
    for (int round = 0; round < 2; ++round) {
        for (const Record& r : sets) {
            if (r.number("length") % 8 != 0)
                continue;
            SCOPED_TRACE("eia2 set " + r.text("set"));
            ASSERT_TRUE(cold.setKey(r.secret<Key128>("key")).has_value());
            EXPECT_TRUE(cold.keyed());
            auto mac =
                cold.mac(r.u32("count"), u8(r, "bearer"), u8(r, "direction"), r.bytes("message"));
            ASSERT_TRUE(mac.has_value());
            EXPECT_EQ(*mac, r.u32("mac"));
        }
    }
}

TEST(Eea2, HotPathReuseEqualsFreshObjects) {
    for (const Record& r : eea2Sets()) {
        SCOPED_TRACE("eea2 set " + r.text("set"));
        const Key128 key = r.secret<Key128>("key");
        Eea2 hot(key);
        std::uint32_t count = r.u32("count");
        for (const Bytes& m : sampleMessages()) {
            Bytes a(m.size());
            Bytes b(m.size());
            ASSERT_TRUE(hot.apply(count, u8(r, "bearer"), u8(r, "direction"), m, a));
            Eea2 fresh(key);
            ASSERT_TRUE(fresh.apply(count, u8(r, "bearer"), u8(r, "direction"), m, b));
            EXPECT_EQ(a, b) << "length " << m.size();
            ++count;
        }
    }
}

TEST(Eea2, ColdPathSetKeyPerMessage) {
    Eea2 cold;
    EXPECT_FALSE(cold.keyed());
    for (int round = 0; round < 2; ++round) {
        for (const Record& r : eea2Sets()) {
            SCOPED_TRACE("eea2 set " + r.text("set"));
            ASSERT_TRUE(cold.setKey(r.secret<Key128>("key")).has_value());
            const Bytes pt = r.bytes("plaintext");
            Bytes ct(pt.size());
            ASSERT_TRUE(cold.apply(r.u32("count"), u8(r, "bearer"), u8(r, "direction"), pt, ct));
            EXPECT_EQ(hex(zeroPast(ct, r.number("length"))), r.text("ciphertext"));
        }
    }
}

TEST(Eia2, ErrorPaths) {
    Eia2 unkeyed;
    const Bytes m(8, 0);
    EXPECT_TRUE(failsWith(unkeyed.mac(0, 0, 0, m), CryptoErrc::not_keyed));
    EXPECT_TRUE(failsWith(unkeyed.verify(0, 0, 0, m, 0), CryptoErrc::not_keyed));
    Eia2 keyed(Key128{});
    EXPECT_TRUE(keyed.mac(0, 31, 1, m).has_value());
    EXPECT_TRUE(failsWith(keyed.mac(0, 32, 0, m), CryptoErrc::bad_value));
    EXPECT_TRUE(failsWith(keyed.mac(0, 0, 2, m), CryptoErrc::bad_value));
    EXPECT_TRUE(failsWith(keyed.verify(0, 0, 2, m, 0), CryptoErrc::bad_value));
}

TEST(Eea2, ErrorPaths) {
    Eea2 unkeyed;
    Bytes in(8, 0);
    Bytes out(8);
    EXPECT_TRUE(failsWith(unkeyed.apply(0, 0, 0, in, out), CryptoErrc::not_keyed));
    Eea2 keyed(Key128{});
    Bytes shortOut(7);
    EXPECT_TRUE(failsWith(keyed.apply(0, 0, 0, in, shortOut), CryptoErrc::bad_length));
    EXPECT_TRUE(failsWith(keyed.apply(0, 32, 0, in, out), CryptoErrc::bad_value));
    EXPECT_TRUE(failsWith(keyed.apply(0, 0, 2, in, out), CryptoErrc::bad_value));
    Bytes none;
    EXPECT_TRUE(keyed.apply(0, 0, 0, none, none).has_value());
}

}  // namespace
}  // namespace best::crypto::test
