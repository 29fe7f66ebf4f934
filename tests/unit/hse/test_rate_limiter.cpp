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

TEST(RateLimiter, PruneIdleForgetsOnlyRefilledBuckets) {
    RateLimiter r(2.0, 2);  // refills one token per 500 ms
    EXPECT_TRUE(r.allow("idle", 0));
    EXPECT_TRUE(r.allow("busy", 0));
    EXPECT_TRUE(r.allow("busy", 0));
    EXPECT_FALSE(r.allow("busy", 0));
    EXPECT_EQ(r.size(), 2u);
    // At 499 ms neither has refilled to the burst: both are kept.
    EXPECT_EQ(r.pruneIdle(499), 0u);
    EXPECT_EQ(r.size(), 2u);
    // At 500 ms "idle" is full again (2 tokens); "busy" has 1 and would still limit.
    EXPECT_EQ(r.pruneIdle(500), 1u);
    EXPECT_EQ(r.size(), 1u);
    EXPECT_TRUE(r.allow("busy", 500));
    EXPECT_FALSE(r.allow("busy", 500));  // the kept bucket still limits
    // A forgotten key starts full, exactly as the pruned bucket was.
    EXPECT_TRUE(r.allow("idle", 500));
    EXPECT_TRUE(r.allow("idle", 500));
    EXPECT_FALSE(r.allow("idle", 500));
    // Once every bucket has refilled, nothing is left.
    EXPECT_EQ(r.pruneIdle(10000), 2u);
    EXPECT_EQ(r.size(), 0u);
}

TEST(RateLimiter, PruneIdleNeverLoosensAnEmptyBucket) {
    RateLimiter r(1.0, 3);
    for (int i = 0; i < 3; ++i)
        EXPECT_TRUE(r.allow("a", 1000));
    EXPECT_FALSE(r.allow("a", 1000));
    // Pruning every 125 ms until the bucket is full never grants more than the rate.
    int granted = 0;
    for (std::uint64_t t = 1000; t <= 3875; t += 125) {
        r.pruneIdle(t);
        if (t % 250 == 0 && r.allow("a", t))
            ++granted;
    }
    EXPECT_EQ(granted, 2);    // at 2000 and 3000 ms, one token each
    EXPECT_EQ(r.size(), 1u);  // 0.875 token at 3875 ms: still kept
}

TEST(RateLimiter, ZeroRateAndBurstDisable) {
    RateLimiter r(0.0, 0);
    for (int i = 0; i < 100; ++i)
        EXPECT_TRUE(r.allow("a", 0));
}

}  // namespace
}  // namespace best::hse
