#include "emsdp/key_slab.h"

#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>

#include "common/secure.h"
#include "emsdp/channel.h"

namespace best::emsdp {

namespace {

// mlock(2) through the system call itself: the sanitizer runtimes replace mlock() with a no-op
// that reports success, which would hide a slab that cannot be locked.
int lockPages(void* p, std::size_t bytes) noexcept {
    return static_cast<int>(::syscall(SYS_mlock, p, bytes));
}

std::size_t pageSize() noexcept {
    const long p = ::sysconf(_SC_PAGESIZE);
    return p > 0 ? static_cast<std::size_t>(p) : 4096;
}

std::string memlockLimit() {
    rlimit rl{};
    if (::getrlimit(RLIMIT_MEMLOCK, &rl) != 0)
        return "unknown";
    return rl.rlim_cur == RLIM_INFINITY ? std::string("unlimited")
                                        : std::to_string(rl.rlim_cur) + " octets";
}

}  // namespace

// ---- KeySlab ----------------------------------------------------------------------------------

std::size_t KeySlab::bytesFor(std::size_t slots) noexcept {
    const std::size_t page = pageSize();
    const std::size_t raw = slots * kSlotSize;
    return (raw + page - 1) / page * page;
}

Result<KeySlab> KeySlab::create(std::size_t slots) {
    if (slots == 0 || slots >= kNoSlot)
        return makeError(KeySlabErrc::invalid, "a key slab holds 1 .. 2^32-2 sessions");
    const std::size_t bytes = bytesFor(slots);
    void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return makeError(KeySlabErrc::mmap, "cannot map the session key slab (" +
                                                std::to_string(bytes) +
                                                " octets): " + std::strerror(errno));
    if (lockPages(p, bytes) != 0) {
        const int err = errno;
        ::munmap(p, bytes);
        return makeError(KeySlabErrc::memlock,
                         "cannot lock the session key slab: " + std::to_string(bytes) +
                             " octets needed for " + std::to_string(slots) +
                             " sessions, RLIMIT_MEMLOCK is " + memlockLimit() + " (" +
                             std::strerror(err) +
                             "); raise it (systemd: LimitMEMLOCK= in the unit, shell: ulimit -l) "
                             "or lower limits.max_sessions");
    }
#ifdef MADV_DONTDUMP
    (void)::madvise(p, bytes, MADV_DONTDUMP);
#endif
    KeySlab s;
    s.base_ = static_cast<std::uint8_t*>(p);
    s.mapped_ = bytes;
    s.capacity_ = slots;
    s.freeList_.reserve(slots);
    for (std::size_t i = slots; i > 0; --i)
        s.freeList_.push_back(static_cast<std::uint32_t>(i - 1));
    s.used_.assign(slots, false);
    return s;
}

KeySlab::KeySlab(KeySlab&& o) noexcept
    : base_(o.base_),
      mapped_(o.mapped_),
      capacity_(o.capacity_),
      freeList_(std::move(o.freeList_)),
      used_(std::move(o.used_)) {
    o.base_ = nullptr;
    o.mapped_ = 0;
    o.capacity_ = 0;
}

KeySlab& KeySlab::operator=(KeySlab&& o) noexcept {
    if (this != &o) {
        unmap();
        base_ = o.base_;
        mapped_ = o.mapped_;
        capacity_ = o.capacity_;
        freeList_ = std::move(o.freeList_);
        used_ = std::move(o.used_);
        o.base_ = nullptr;
        o.mapped_ = 0;
        o.capacity_ = 0;
    }
    return *this;
}

KeySlab::~KeySlab() {
    unmap();
}

void KeySlab::unmap() noexcept {
    if (base_ == nullptr)
        return;
    secureWipe(base_, mapped_);
    (void)::syscall(SYS_munlock, base_, mapped_);
    ::munmap(base_, mapped_);
    base_ = nullptr;
    mapped_ = 0;
}

Result<std::uint32_t> KeySlab::acquire(const ChannelKeys& keys) {
    if (freeList_.empty())
        return makeError(KeySlabErrc::full,
                         "every session key slot is in use (" + std::to_string(capacity_) + ")");
    const std::uint32_t slot = freeList_.back();
    freeList_.pop_back();
    used_[slot] = true;
    std::uint8_t* p = base_ + std::size_t{slot} * kSlotSize;
    std::memcpy(p, keys.cpInt.data(), 16);
    std::memcpy(p + 16, keys.upInt.data(), 16);
    std::memcpy(p + 32, keys.upEnc.data(), 16);
    return slot;
}

void KeySlab::release(std::uint32_t slot) noexcept {
    if (!inUse(slot))
        return;
    secureWipe(base_ + std::size_t{slot} * kSlotSize, kSlotSize);
    used_[slot] = false;
    freeList_.push_back(slot);
}

bool KeySlab::inUse(std::uint32_t slot) const noexcept {
    return slot < capacity_ && used_[slot];
}

ByteView KeySlab::key(std::uint32_t slot, std::size_t i) const noexcept {
    if (slot >= capacity_)
        return {};
    return ByteView(base_ + std::size_t{slot} * kSlotSize + 16 * i, 16);
}

ByteView KeySlab::rawSlot(std::uint32_t slot) const noexcept {
    if (slot >= capacity_)
        return {};
    return ByteView(base_ + std::size_t{slot} * kSlotSize, kSlotSize);
}

// ---- ContextCache -----------------------------------------------------------------------------

ContextCache::ContextCache(KeySlab& slab, std::size_t capacity)
    : slab_(slab),
      capacity_(std::max<std::size_t>(1, std::min(capacity, slab.capacity()))),
      entryOf_(slab.capacity(), kNone) {
    entries_.reserve(capacity_);  // entries never move: get() hands out pointers
}

void ContextCache::unlink(std::uint32_t e) noexcept {
    Entry& x = entries_[e];
    if (x.prev != kNone)
        entries_[x.prev].next = x.next;
    else
        head_ = x.next;
    if (x.next != kNone)
        entries_[x.next].prev = x.prev;
    else
        tail_ = x.prev;
    x.prev = x.next = kNone;
}

void ContextCache::pushFront(std::uint32_t e) noexcept {
    Entry& x = entries_[e];
    x.prev = kNone;
    x.next = head_;
    if (head_ != kNone)
        entries_[head_].prev = e;
    head_ = e;
    if (tail_ == kNone)
        tail_ = e;
}

void ContextCache::pushBack(std::uint32_t e) noexcept {
    Entry& x = entries_[e];
    x.next = kNone;
    x.prev = tail_;
    if (tail_ != kNone)
        entries_[tail_].next = e;
    tail_ = e;
    if (head_ == kNone)
        head_ = e;
}

Result<void> ContextCache::key(Entry& e, std::uint32_t slot, bool ciphering) {
    e.slot = kNone;
    e.encKeyed = false;
    if (auto ok = e.ctx.cpInt.setKey(Key128(slab_.cpInt(slot))); !ok)
        return ok;
    if (auto ok = e.ctx.upInt.setKey(Key128(slab_.upInt(slot))); !ok)
        return ok;
    if (ciphering) {
        if (auto ok = e.ctx.upEnc.setKey(Key128(slab_.upEnc(slot))); !ok)
            return ok;
        e.encKeyed = true;
    }
    e.slot = slot;
    return {};
}

Result<KeyedContexts*> ContextCache::get(std::uint32_t slot, bool ciphering) {
    if (!slab_.inUse(slot))
        return makeError(KeySlabErrc::invalid, "session key slot not in use");
    std::uint32_t e = entryOf_[slot];
    if (e != kNone) {
        Entry& x = entries_[e];
        if (ciphering && !x.encKeyed) {
            if (auto ok = x.ctx.upEnc.setKey(Key128(slab_.upEnc(slot))); !ok)
                return makeError(ok.error());
            x.encKeyed = true;
        }
        ++stats_.hits;
        if (head_ != e) {
            unlink(e);
            pushFront(e);
        }
        return &x.ctx;
    }
    ++stats_.misses;
    if (entries_.size() < capacity_) {
        entries_.emplace_back();
        e = static_cast<std::uint32_t>(entries_.size() - 1);
    } else {
        e = tail_;
        unlink(e);
        if (entries_[e].slot != kNone) {
            entryOf_[entries_[e].slot] = kNone;
            ++stats_.evictions;
        }
    }
    pushFront(e);
    if (auto ok = key(entries_[e], slot, ciphering); !ok) {
        // Left unowned at the back: the next miss takes it first.
        unlink(e);
        pushBack(e);
        return makeError(ok.error());
    }
    entryOf_[slot] = e;
    return &entries_[e].ctx;
}

void ContextCache::release(std::uint32_t slot) noexcept {
    if (slot < entryOf_.size() && entryOf_[slot] != kNone) {
        const std::uint32_t e = entryOf_[slot];
        entryOf_[slot] = kNone;
        Entry& x = entries_[e];
        // The contexts keep a key schedule until re-keyed: overwrite it with a zero key.
        const Key128 zero;
        (void)x.ctx.cpInt.setKey(zero);
        (void)x.ctx.upInt.setKey(zero);
        if (x.encKeyed)
            (void)x.ctx.upEnc.setKey(zero);
        x.slot = kNone;
        x.encKeyed = false;
        // A free entry is the next victim.
        unlink(e);
        pushBack(e);
    }
    slab_.release(slot);
}

}  // namespace best::emsdp
