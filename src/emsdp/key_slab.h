// Session keys of the HSE kept small and out of reach (issue 6): the raw CP-int, UP-int and
// UP-enc keys of every session live in one locked slab (mmap + mlock + MADV_DONTDUMP), in fixed
// 48-octet slots with a free list; a slot is wiped when it is released. Keyed OpenSSL contexts
// (three per session, a few hundred octets each) exist only for the sessions in use, in a bounded
// LRU ContextCache: a miss re-keys the least recently used entry from the slab (the cold path,
// ~1 us for three keys), a hit is the hot path.
//
// Not thread-safe: one slab and one cache per event loop. Every SlabSlot (held by a
// SecureChannel) must be released before its cache and slab are destroyed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "common/bytes.h"
#include "common/result.h"
#include "crypto/eps_algorithms.h"

namespace best::emsdp {

struct ChannelKeys;

enum class KeySlabErrc {
    memlock = 1,  // mlock() failed: RLIMIT_MEMLOCK too low for the slab
    mmap,         // the slab's pages could not be mapped
    full,         // every slot is in use
    invalid,      // a capacity of 0, or a slot that is not in use
};
inline ErrorDomain errorDomainOf(KeySlabErrc) {
    return ErrorDomain::generic;
}

class KeySlab {
public:
    static constexpr std::size_t kSlotSize = 48;  // CP-int || UP-int || UP-enc
    static constexpr std::uint32_t kNoSlot = 0xFFFFFFFFu;

    // Maps, locks and excludes from core dumps a slab of `slots` slots. When mlock() fails the
    // error names RLIMIT_MEMLOCK, the octets needed and how to raise the limit.
    static Result<KeySlab> create(std::size_t slots);
    // The locked octets a slab of `slots` slots needs (whole pages).
    static std::size_t bytesFor(std::size_t slots) noexcept;

    KeySlab(KeySlab&& o) noexcept;
    KeySlab& operator=(KeySlab&& o) noexcept;
    KeySlab(const KeySlab&) = delete;
    KeySlab& operator=(const KeySlab&) = delete;
    ~KeySlab();

    // Copies the three keys into a free slot; KeySlabErrc::full when none is left.
    Result<std::uint32_t> acquire(const ChannelKeys& keys);
    // Wipes the slot and returns it to the free list (a slot not in use is ignored).
    void release(std::uint32_t slot) noexcept;
    bool inUse(std::uint32_t slot) const noexcept;

    // The slot's keys (views into the locked slab; valid until release()).
    ByteView cpInt(std::uint32_t slot) const noexcept { return key(slot, 0); }
    ByteView upInt(std::uint32_t slot) const noexcept { return key(slot, 1); }
    ByteView upEnc(std::uint32_t slot) const noexcept { return key(slot, 2); }
    // The slot's 48 octets as stored (tests: wiped after release).
    ByteView rawSlot(std::uint32_t slot) const noexcept;

    std::size_t capacity() const noexcept { return capacity_; }
    std::size_t used() const noexcept { return capacity_ - freeList_.size(); }
    std::size_t lockedBytes() const noexcept { return mapped_; }

private:
    KeySlab() = default;
    ByteView key(std::uint32_t slot, std::size_t i) const noexcept;
    void unmap() noexcept;

    std::uint8_t* base_ = nullptr;
    std::size_t mapped_ = 0;
    std::size_t capacity_ = 0;
    std::vector<std::uint32_t> freeList_;  // LIFO
    std::vector<bool> used_;
};

// The keyed integrity / ciphering objects of one session.
struct KeyedContexts {
    crypto::Eia2 cpInt;
    crypto::Eia2 upInt;
    crypto::Eea2 upEnc;
};

// A bounded LRU cache of KeyedContexts for slab slots.
class ContextCache {
public:
    struct Stats {
        std::uint64_t hits = 0;
        std::uint64_t misses = 0;     // keyed from the slab (includes first use)
        std::uint64_t evictions = 0;  // a miss that took another slot's entry
    };

    // `capacity` entries at most (1 .. the slab's capacity); entries are made on first use.
    ContextCache(KeySlab& slab, std::size_t capacity);
    ContextCache(const ContextCache&) = delete;
    ContextCache& operator=(const ContextCache&) = delete;

    // The contexts of `slot`, keyed from the slab on a miss (UP-enc only when `ciphering`).
    // Valid until the next get() or forget(). Fails when OpenSSL fails or the slot is not in
    // use.
    Result<KeyedContexts*> get(std::uint32_t slot, bool ciphering);
    // Drops the slot's entry (its contexts are re-keyed with zeros) and releases the slot.
    void release(std::uint32_t slot) noexcept;

    KeySlab& slab() noexcept { return slab_; }
    std::size_t capacity() const noexcept { return capacity_; }
    std::size_t size() const noexcept { return entries_.size(); }
    const Stats& stats() const noexcept { return stats_; }

private:
    static constexpr std::uint32_t kNone = 0xFFFFFFFFu;
    struct Entry {
        KeyedContexts ctx;
        std::uint32_t slot = kNone;
        bool encKeyed = false;
        std::uint32_t prev = kNone;  // towards the most recently used
        std::uint32_t next = kNone;  // towards the least recently used
    };
    void unlink(std::uint32_t e) noexcept;
    void pushFront(std::uint32_t e) noexcept;
    void pushBack(std::uint32_t e) noexcept;
    Result<void> key(Entry& e, std::uint32_t slot, bool ciphering);

    KeySlab& slab_;
    std::size_t capacity_;
    std::vector<Entry> entries_;
    std::vector<std::uint32_t> entryOf_;  // slot -> entry index
    std::uint32_t head_ = kNone;          // most recently used
    std::uint32_t tail_ = kNone;          // least recently used (the next victim)
    Stats stats_;
};

// A SecureChannel's slot: released (entry dropped, slot wiped) when destroyed. Move-only.
class SlabSlot {
public:
    SlabSlot() = default;
    SlabSlot(ContextCache& cache, std::uint32_t slot) noexcept : cache_(&cache), slot_(slot) {}
    SlabSlot(SlabSlot&& o) noexcept : cache_(o.cache_), slot_(o.slot_) { o.cache_ = nullptr; }
    SlabSlot& operator=(SlabSlot&& o) noexcept {
        if (this != &o) {
            reset();
            cache_ = o.cache_;
            slot_ = o.slot_;
            o.cache_ = nullptr;
        }
        return *this;
    }
    SlabSlot(const SlabSlot&) = delete;
    SlabSlot& operator=(const SlabSlot&) = delete;
    ~SlabSlot() { reset(); }

    explicit operator bool() const noexcept { return cache_ != nullptr; }
    ContextCache* cache() const noexcept { return cache_; }
    std::uint32_t slot() const noexcept { return slot_; }
    void reset() noexcept {
        if (cache_ != nullptr)
            cache_->release(slot_);
        cache_ = nullptr;
    }

private:
    ContextCache* cache_ = nullptr;
    std::uint32_t slot_ = 0;
};

}  // namespace best::emsdp
