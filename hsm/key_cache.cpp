#include "hsm/key_cache.h"

#include <utility>
#include <vector>

namespace best::hsm {

std::shared_ptr<const CachedKey> KeyCache::find(const CacheKey& key) {
    std::lock_guard<std::mutex> g(mutex_);
    const auto it = index_.find(key);
    if (it == index_.end()) {
        ++misses_;
        return nullptr;
    }
    ++hits_;
    lru_.splice(lru_.begin(), lru_, it->second);
    return it->second->second;
}

std::uint64_t KeyCache::generation() const {
    std::lock_guard<std::mutex> g(mutex_);
    return generation_;
}

void KeyCache::insert(const CacheKey& key, std::shared_ptr<const CachedKey> entry,
                      std::uint64_t generation) {
    std::vector<std::shared_ptr<const CachedKey>> dropped;  // destroyed after unlock
    {
        std::lock_guard<std::mutex> g(mutex_);
        if (generation != generation_) {
            dropped.push_back(std::move(entry));
        } else {
            const auto it = index_.find(key);
            if (it != index_.end()) {
                dropped.push_back(std::move(it->second->second));
                it->second->second = std::move(entry);
                lru_.splice(lru_.begin(), lru_, it->second);
            } else {
                lru_.emplace_front(key, std::move(entry));
                index_.emplace(key, lru_.begin());
                while (lru_.size() > capacity_) {
                    dropped.push_back(std::move(lru_.back().second));
                    index_.erase(lru_.back().first);
                    lru_.pop_back();
                    ++evictions_;
                }
            }
        }
    }
}

void KeyCache::erase(const CacheKey& key) {
    std::shared_ptr<const CachedKey> dropped;
    std::lock_guard<std::mutex> g(mutex_);
    const auto it = index_.find(key);
    if (it == index_.end())
        return;
    dropped = std::move(it->second->second);
    lru_.erase(it->second);
    index_.erase(it);
    // `dropped` is declared before the guard, so it is destroyed after the unlock.
}

void KeyCache::clear() {
    std::list<Entry> dropped;
    std::lock_guard<std::mutex> g(mutex_);
    dropped.swap(lru_);
    index_.clear();
    ++generation_;
    ++clears_;
}

CacheStats KeyCache::stats() const {
    std::lock_guard<std::mutex> g(mutex_);
    CacheStats s;
    s.size = lru_.size();
    s.capacity = capacity_;
    s.hits = hits_;
    s.misses = misses_;
    s.evictions = evictions_;
    s.clears = clears_;
    s.generation = generation_;
    return s;
}

}  // namespace best::hsm
