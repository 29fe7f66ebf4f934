// LRU cache of unwrapped keys: non-extractable session objects created through the vault's
// owner session (so they live as long as the module), keyed by a digest of (row, blob). Emptied
// on any re-login: a logout invalidates every private session object (SoftHSM, measured).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "hsm/blob.h"
#include "hsm/session.h"

namespace best::hsm {

using CacheKey = std::array<std::uint8_t, 32>;

struct CachedKey {
    ObjectHandle object;  // destroyed through the owner session when the last user drops it
    BlobPurpose purpose = BlobPurpose::subscriberK;
};

struct CacheStats {
    std::size_t size = 0;
    std::size_t capacity = 0;
    std::uint64_t hits = 0;
    std::uint64_t misses = 0;
    std::uint64_t evictions = 0;
    std::uint64_t clears = 0;
    std::uint64_t generation = 0;  // +1 per clear (re-login)
};

class KeyCache {
public:
    explicit KeyCache(std::size_t capacity) : capacity_(capacity == 0 ? 1 : capacity) {}
    KeyCache(const KeyCache&) = delete;
    KeyCache& operator=(const KeyCache&) = delete;

    // A hit moves the entry to the front. The returned pointer keeps the object alive even if
    // the entry is evicted meanwhile.
    std::shared_ptr<const CachedKey> find(const CacheKey& key);

    std::uint64_t generation() const;

    // Inserts (or replaces) unless the cache was cleared since `generation` was read: an object
    // made before a re-login is not trusted to be alive. The least recently used entry goes when
    // full. Objects are destroyed outside the cache lock.
    void insert(const CacheKey& key, std::shared_ptr<const CachedKey> entry,
                std::uint64_t generation);

    void erase(const CacheKey& key);
    void clear();  // drops every entry, generation + 1
    CacheStats stats() const;

private:
    struct KeyHash {
        std::size_t operator()(const CacheKey& k) const noexcept {
            std::size_t h = 0;
            for (std::size_t i = 0; i < sizeof h; ++i)
                h = (h << 8) | k[i];
            return h;
        }
    };
    using Entry = std::pair<CacheKey, std::shared_ptr<const CachedKey>>;

    mutable std::mutex mutex_;
    std::size_t capacity_;
    std::list<Entry> lru_;  // front = most recently used
    std::unordered_map<CacheKey, std::list<Entry>::iterator, KeyHash> index_;
    std::uint64_t generation_ = 0;
    std::uint64_t hits_ = 0;
    std::uint64_t misses_ = 0;
    std::uint64_t evictions_ = 0;
    std::uint64_t clears_ = 0;
};

}  // namespace best::hsm
