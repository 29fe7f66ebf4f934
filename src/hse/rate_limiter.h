// Token buckets keyed by a string (source address, IMSI): profile 4.5 and A22. Pure logic, no
// clock of its own: the caller passes the time in milliseconds.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_map>

namespace best::hse {

class RateLimiter {
public:
    // `ratePerSecond` tokens are added per second up to `burst`; a new key starts full. A rate
    // of 0 with a burst of 0 disables the limit. At most `maxKeys` buckets are kept: when full,
    // buckets that have refilled completely are forgotten (they would allow anyway).
    RateLimiter(double ratePerSecond, std::uint32_t burst, std::size_t maxKeys = 100000);

    // Takes one token for `key` at `nowMs`; false when the bucket is empty.
    bool allow(const std::string& key, std::uint64_t nowMs);
    // Forgets every bucket that has refilled to its burst at `nowMs`: such a bucket allows
    // exactly what a new one would, so idle keys cost nothing. A bucket that would still limit
    // is kept. Returns the number forgotten; the daemon calls it from its 1 s sweep.
    std::size_t pruneIdle(std::uint64_t nowMs);
    std::size_t size() const noexcept { return buckets_.size(); }

private:
    struct Bucket {
        double tokens = 0;
        std::uint64_t lastMs = 0;
    };
    void refill(Bucket& b, std::uint64_t nowMs) const noexcept;

    double rate_;
    double burst_;
    std::size_t maxKeys_;
    std::unordered_map<std::string, Bucket> buckets_;
};

}  // namespace best::hse
