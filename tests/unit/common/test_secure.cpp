#include <gtest/gtest.h>

#include "common/secure.h"

using namespace best;

TEST(Secure, SecretFromViewAndCompare) {
    std::uint8_t raw[16];
    for (int i = 0; i < 16; ++i)
        raw[i] = static_cast<std::uint8_t>(i);
    Key128 a{ByteView(raw, 16)};
    Key128 b{ByteView(raw, 16)};
    EXPECT_TRUE(a.equals(b));
    b[15] ^= 1;
    EXPECT_FALSE(a.equals(b));
}

TEST(Secure, SecretWrongSizeIsZero) {
    std::uint8_t raw[3] = {1, 2, 3};
    Key128 a{ByteView(raw, 3)};
    for (std::size_t i = 0; i < a.size(); ++i)
        EXPECT_EQ(a[i], 0);
}

TEST(Secure, BufferMoveAndClear) {
    std::uint8_t raw[4] = {9, 8, 7, 6};
    SecureBuffer a(ByteView(raw, 4));
    SecureBuffer b(std::move(a));
    EXPECT_EQ(a.size(), 0u);  // NOLINT(bugprone-use-after-move): moved-from is empty by contract
    ASSERT_EQ(b.size(), 4u);
    EXPECT_EQ(b.data()[0], 9);
    b.clear();
    EXPECT_TRUE(b.empty());
}

TEST(Secure, ConstantTimeEqualSizes) {
    std::uint8_t x[2] = {1, 2};
    std::uint8_t y[3] = {1, 2, 3};
    EXPECT_FALSE(constantTimeEqual(ByteView(x, 2), ByteView(y, 3)));
    EXPECT_TRUE(constantTimeEqual(ByteView(x, 2), ByteView(y, 2)));
}
