#include <gtest/gtest.h>

#include "common/hex.h"

using namespace best;

TEST(Hex, RoundTrip) {
    Bytes b{0x00, 0x01, 0xab, 0xff};
    EXPECT_EQ(toHex(b), "0001abff");
    auto back = fromHex("0001ABff", "x");
    ASSERT_TRUE(back);
    EXPECT_EQ(*back, b);
}

TEST(Hex, TrimsWhitespace) {
    auto r = fromHex("  0a0b\n", "x");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->size(), 2u);
}

TEST(Hex, OddLength) {
    auto r = fromHex("abc", "RAND");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, static_cast<int>(HexErrc::odd_length));
    EXPECT_EQ(r.error().message, "RAND: hex has an odd number of digits");
}

TEST(Hex, BadDigit) {
    auto r = fromHex("0g", "K");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, static_cast<int>(HexErrc::bad_digit));
    EXPECT_EQ(r.error().message, "K: not a hex digit at position 1");
}

TEST(Hex, WrongLength) {
    auto r = fromHex("0011", "AMF", 3);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, static_cast<int>(HexErrc::wrong_length));
    EXPECT_EQ(r.error().message, "AMF: expected 3 octets, got 2");
}

TEST(Hex, IntoBufferWipesOnError) {
    std::uint8_t out[2] = {0x55, 0x55};
    auto r = fromHexInto("11zz", "K", out);
    ASSERT_FALSE(r);
    EXPECT_EQ(out[0], 0);
    EXPECT_EQ(out[1], 0);
}
