#include "hse/rate_limiter.h"

#include <algorithm>

namespace best::hse {

RateLimiter::RateLimiter(double ratePerSecond, std::uint32_t burst, std::size_t maxKeys)
    : rate_(ratePerSecond), burst_(static_cast<double>(burst)), maxKeys_(maxKeys) {}

void RateLimiter::refill(Bucket& b, std::uint64_t nowMs) const noexcept {
    if (nowMs > b.lastMs) {
        const double add = rate_ * static_cast<double>(nowMs - b.lastMs) / 1000.0;
        b.tokens = std::min(burst_, b.tokens + add);
        b.lastMs = nowMs;
    }
}

std::size_t RateLimiter::pruneIdle(std::uint64_t nowMs) {
    std::size_t forgotten = 0;
    for (auto it = buckets_.begin(); it != buckets_.end();) {
        refill(it->second, nowMs);
        if (it->second.tokens >= burst_) {
            it = buckets_.erase(it);
            ++forgotten;
        } else {
            ++it;
        }
    }
    return forgotten;
}

bool RateLimiter::allow(const std::string& key, std::uint64_t nowMs) {
    if (rate_ <= 0 && burst_ <= 0)
        return true;
    auto it = buckets_.find(key);
    if (it == buckets_.end()) {
        if (buckets_.size() >= maxKeys_)
            pruneIdle(nowMs);
        it = buckets_.emplace(key, Bucket{burst_, nowMs}).first;
    }
    Bucket& b = it->second;
    refill(b, nowMs);
    if (b.tokens < 1.0)
        return false;
    b.tokens -= 1.0;
    return true;
}

}  // namespace best::hse
