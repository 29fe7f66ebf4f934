// The bit-length reference variants (bit_reference.h): every EEA2 and EIA2 set of TS 33.401
// Annex C (including the non-byte-aligned ones), the RFC 4493 tags, and equality with the
// product Eia2/Eea2 on every byte-aligned input.
#include <gtest/gtest.h>

#include "bit_reference.h"
#include "crypto/eps_algorithms.h"
#include "vectors.h"

namespace best::crypto::test {
namespace {

constexpr char kFile[] = "eea2-eia2-cmac.txt";

std::uint8_t u8(const Record& r, const char* key) {
    return static_cast<std::uint8_t>(r.u32(key));
}

Bytes pattern(std::size_t n, std::uint8_t seed) {
    Bytes m(n);
    for (std::size_t i = 0; i < n; ++i)
        m[i] = static_cast<std::uint8_t>(seed + i * 29 + (i >> 3));
    return m;
}

TEST(BitReference, CmacRfc4493Tags) {
    const auto sets = readRecords(kFile, "cmac");
    ASSERT_EQ(sets.size(), 4u);
    for (const Record& r : sets) {
        SCOPED_TRACE("line " + std::to_string(r.line));
        const Bytes m = r.bytes("message");
        auto tag = cmacBits(r.secret<Key128>("key"), m, m.size() * 8);
        ASSERT_TRUE(tag.has_value()) << tag.error().describe();
        EXPECT_EQ(hex(*tag), r.text("tag"));
    }
}

TEST(BitReference, Eea2EverySet) {
    const auto sets = readRecords(kFile, "eea2");
    ASSERT_EQ(sets.size(), 6u);
    for (const Record& r : sets) {
        SCOPED_TRACE("eea2 set " + r.text("set"));
        auto ct = eea2Bits(r.secret<Key128>("key"), r.u32("count"), u8(r, "bearer"),
                           u8(r, "direction"), r.bytes("plaintext"), r.number("length"));
        ASSERT_TRUE(ct.has_value()) << ct.error().describe();
        EXPECT_EQ(hex(*ct), r.text("ciphertext"));
        // Deciphering is the same operation.
        auto pt = eea2Bits(r.secret<Key128>("key"), r.u32("count"), u8(r, "bearer"),
                           u8(r, "direction"), *ct, r.number("length"));
        ASSERT_TRUE(pt.has_value());
        Bytes want = r.bytes("plaintext");
        const std::size_t bits = r.number("length");
        if (bits % 8)
            want.back() &= static_cast<std::uint8_t>(0xFF << (8 - bits % 8));
        EXPECT_EQ(*pt, want);
    }
}

TEST(BitReference, Eia2EverySet) {
    const auto sets = readRecords(kFile, "eia2");
    ASSERT_EQ(sets.size(), 8u);
    int nonAligned = 0;
    for (const Record& r : sets) {
        SCOPED_TRACE("eia2 set " + r.text("set"));
        const std::size_t bits = r.number("length");
        if (bits % 8 != 0)
            ++nonAligned;
        auto mac = eia2Bits(r.secret<Key128>("key"), r.u32("count"), u8(r, "bearer"),
                            u8(r, "direction"), r.bytes("message"), bits);
        ASSERT_TRUE(mac.has_value()) << mac.error().describe();
        EXPECT_EQ(*mac, r.u32("mac"));
    }
    EXPECT_EQ(nonAligned, 5);
}

TEST(BitReference, Eia2NonAlignedDiffersFromWholeOctetCmac) {
    // Guards the reference itself: on a non-aligned set the bit-string CMAC is not the byte CMAC
    // of the padded octets (else the test data could not tell the two apart).
    for (const Record& r : readRecords(kFile, "eia2")) {
        const std::size_t bits = r.number("length");
        if (bits % 8 == 0)
            continue;
        SCOPED_TRACE("eia2 set " + r.text("set"));
        const Bytes m = r.bytes("message");
        auto asOctets = eia2Bits(r.secret<Key128>("key"), r.u32("count"), u8(r, "bearer"),
                                 u8(r, "direction"), m, m.size() * 8);
        ASSERT_TRUE(asOctets.has_value());
        EXPECT_NE(*asOctets, r.u32("mac"));
    }
}

TEST(BitReference, EqualsProductEia2OnByteAlignedInputs) {
    int compared = 0;
    for (const Record& r : readRecords(kFile, "eia2")) {
        SCOPED_TRACE("eia2 set " + r.text("set"));
        const Key128 key = r.secret<Key128>("key");
        Eia2 product(key);
        const std::size_t bits = r.number("length");
        const Bytes m = r.bytes("message");
        // The set itself when aligned; otherwise its whole octets (LENGTH rounded down).
        const std::size_t octets = bits / 8;
        const ByteView whole(m.data(), octets);
        auto a =
            eia2Bits(key, r.u32("count"), u8(r, "bearer"), u8(r, "direction"), whole, octets * 8);
        auto b = product.mac(r.u32("count"), u8(r, "bearer"), u8(r, "direction"), whole);
        ASSERT_TRUE(a.has_value());
        ASSERT_TRUE(b.has_value());
        EXPECT_EQ(*a, *b);
        if (bits % 8 == 0) {
            EXPECT_EQ(*b, r.u32("mac"));
        }
        ++compared;
        // And messages of every length 0..80 octets under this key, both directions.
        for (std::size_t n = 0; n <= 80; ++n) {
            const Bytes p = pattern(n, static_cast<std::uint8_t>(n));
            for (std::uint8_t dir : {0, 1}) {
                auto x = eia2Bits(key, r.u32("count") + static_cast<std::uint32_t>(n),
                                  u8(r, "bearer"), dir, p, n * 8);
                auto y = product.mac(r.u32("count") + static_cast<std::uint32_t>(n),
                                     u8(r, "bearer"), dir, p);
                ASSERT_TRUE(x.has_value());
                ASSERT_TRUE(y.has_value());
                EXPECT_EQ(*x, *y) << "length " << n << " direction " << int(dir);
                ++compared;
            }
        }
    }
    EXPECT_EQ(compared, 8 * (1 + 81 * 2));
}

TEST(BitReference, EqualsProductEea2OnByteAlignedInputs) {
    for (const Record& r : readRecords(kFile, "eea2")) {
        SCOPED_TRACE("eea2 set " + r.text("set"));
        const Key128 key = r.secret<Key128>("key");
        Eea2 product(key);
        const std::size_t bits = r.number("length");
        const Bytes pt = r.bytes("plaintext");
        // The set's whole octets (no C.1 set is byte-aligned): both agree, and agree with the
        // published ciphertext on those octets.
        const std::size_t octets = bits / 8;
        const ByteView whole(pt.data(), octets);
        auto a =
            eea2Bits(key, r.u32("count"), u8(r, "bearer"), u8(r, "direction"), whole, octets * 8);
        Bytes b(octets);
        ASSERT_TRUE(a.has_value());
        ASSERT_TRUE(product.apply(r.u32("count"), u8(r, "bearer"), u8(r, "direction"), whole, b));
        EXPECT_EQ(*a, b);
        const Bytes ct = r.bytes("ciphertext");
        EXPECT_EQ(hex(b), hex(ByteView(ct.data(), octets)));
        for (std::size_t n = 0; n <= 80; ++n) {
            const Bytes p = pattern(n, static_cast<std::uint8_t>(3 * n));
            for (std::uint8_t dir : {0, 1}) {
                auto x = eea2Bits(key, r.u32("count") + static_cast<std::uint32_t>(n),
                                  u8(r, "bearer"), dir, p, n * 8);
                Bytes y(n);
                ASSERT_TRUE(x.has_value());
                ASSERT_TRUE(product.apply(r.u32("count") + static_cast<std::uint32_t>(n),
                                          u8(r, "bearer"), dir, p, y));
                EXPECT_EQ(*x, y) << "length " << n << " direction " << int(dir);
            }
        }
    }
}

}  // namespace
}  // namespace best::crypto::test
