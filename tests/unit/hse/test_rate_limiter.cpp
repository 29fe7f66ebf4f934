#include "hse/rate_limiter.h"

#include <gtest/gtest.h>

namespace best::hse {
namespace {

TEST(RateLimiter, BurstThenRefillAtRate) {
    RateLimiter r(2.0, 3);  // 2 tokens per second, bucket of 3
    EXPECT_TRUE(r.allow("a", 1000));
    EXPECT_TRUE(r.allow("a", 1000));
    EXPECT_TRUE(r.allow("a", 1000));
    EXPECT_FALSE(r.allow("a", 1000));
    EXPECT_FALSE(r.allow("a", 1400));  // 0.8 token
    EXPECT_TRUE(r.allow("a", 1500));   // 1 token
    EXPECT_FALSE(r.allow("a", 1500));
    // Never more than the burst after a long pause.
    EXPECT_TRUE(r.allow("a", 100000));
    EXPECT_TRUE(r.allow("a", 100000));
    EXPECT_TRUE(r.allow("a", 100000));
    EXPECT_FALSE(r.allow("a", 100000));
}

TEST(RateLimiter, KeysAreIndependent) {
    RateLimiter r(0.001, 1);
    EXPECT_TRUE(r.allow("a", 0));
    EXPECT_FALSE(r.allow("a", 0));
    EXPECT_TRUE(r.allow("b", 0));
    EXPECT_EQ(r.size(), 2u);
}

TEST(RateLimiter, PrunesFullBucketsWhenAtCapacity) {
    RateLimiter r(1.0, 1, 2);
    EXPECT_TRUE(r.allow("a", 0));
    EXPECT_TRUE(r.allow("b", 0));
    // At 5 s both have refilled: they are forgotten to make room.
    EXPECT_TRUE(r.allow("c", 5000));
    EXPECT_EQ(r.size(), 1u);
    EXPECT_FALSE(r.allow("c", 5000));
}

TEST(RateLimiter, ZeroRateAndBurstDisable) {
    RateLimiter r(0.0, 0);
    for (int i = 0; i < 100; ++i)
        EXPECT_TRUE(r.allow("a", 0));
}

}  // namespace
}  // namespace best::hse
