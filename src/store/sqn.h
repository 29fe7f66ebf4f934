// SQN handling per profile section 9: SQN = SEQ || IND (48 bits, IND the low indBits bits).
// The SqnAllocator reserves a range of SEQ values in one write transaction (BEGIN IMMEDIATE, as
// part of a group-commit batch), waits until that reservation is durable, and only then hands
// values out of it from memory. After a crash the next process reserves above the durable
// high-water mark, so no SQN is handed out twice; two processes reserve disjoint ranges.
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/result.h"
#include "crypto/milenage.h"
#include "store/group_commit.h"
#include "store/records.h"

namespace best::store {

inline constexpr unsigned kSqnBits = 48;

// Largest SEQ for a given IND length.
constexpr std::uint64_t maxSeq(std::uint8_t indBits) noexcept {
    return (std::uint64_t{1} << (kSqnBits - indBits)) - 1;
}
constexpr std::uint64_t composeSqn(std::uint64_t seq, std::uint32_t ind,
                                   std::uint8_t indBits) noexcept {
    return ((seq << indBits) | ind) & ((std::uint64_t{1} << kSqnBits) - 1);
}
constexpr std::uint64_t seqOf(std::uint64_t sqn, std::uint8_t indBits) noexcept {
    return sqn >> indBits;
}
constexpr std::uint32_t indOf(std::uint64_t sqn, std::uint8_t indBits) noexcept {
    return static_cast<std::uint32_t>(sqn & ((std::uint64_t{1} << indBits) - 1));
}
// 6 octets, big endian (the same layout as crypto::sqnToInt / sqnFromInt).
crypto::Sqn sqnToBytes(std::uint64_t sqn) noexcept;
std::uint64_t sqnFromBytes(const crypto::Sqn& sqn) noexcept;

struct SqnOptions {
    // SEQ values reserved per durable write. Larger means fewer writes and a bigger jump (of at
    // most this many) after a crash; the USIM accepts jumps up to 2^28.
    std::uint32_t batchSize = 1000;
    // The IND value of this HSE (a node index when several nodes share subscribers).
    std::uint32_t ind = 0;
    // In-memory ranges kept at most (0: no bound). Past it, idle ranges (no reservation in
    // flight, no waiter) are forgotten, an eighth at a time: their unused SEQ values are never
    // handed out (as after a restart), and that subscriber's next vector reserves a new range.
    // Without a bound every subscriber ever served keeps an entry (about 112 octets).
    std::size_t maxRanges = 16384;
};

struct SqnGrant {
    crypto::Sqn sqn{};
    std::uint64_t seq = 0;
    std::uint32_t ind = 0;
    std::uint8_t indBits = kDefaultIndBits;
};

class SqnAllocator {
public:
    using Callback = std::function<void(Result<SqnGrant>)>;

    // `refusal`, when set, is returned by every call (tool mode while a daemon holds the store).
    SqnAllocator(GroupCommitWriter& writer, SqnOptions options, std::optional<Error> refusal);
    SqnAllocator(const SqnAllocator&) = delete;
    SqnAllocator& operator=(const SqnAllocator&) = delete;

    // The next SQN for `imsi`. The callback runs at once (caller's thread) when the in-memory
    // range has a value, else on the writer thread once a new reservation is durable. Grants
    // for one IMSI come out in increasing order.
    void allocate(std::string imsi, Callback done);
    // Blocking form; refused on the writer thread.
    Result<SqnGrant> allocate(std::string_view imsi);

    // Resynchronisation (profile 9): SEQ_HE = SEQ(SQN_MS), so the next SQN is
    // (SEQ_HE + 1) || IND. Durable when it returns; drops this process's in-memory range.
    // SQN_MS comes from crypto::recoverSqnMs after MAC-S has been checked.
    void resync(std::string imsi, const crypto::Sqn& sqnMs, std::function<void(Result<void>)> done);
    Result<void> resync(std::string_view imsi, const crypto::Sqn& sqnMs);

    // Operator "SQN set": SEQ_HE = seqHe, the next vector gets SEQ seqHe + 1. Durable.
    Result<void> setSeqHe(std::string_view imsi, std::uint64_t seqHe);

    // Drops the in-memory range of `imsi` (the subscriber was removed or changed elsewhere).
    void forget(std::string_view imsi);

    const SqnOptions& options() const noexcept { return options_; }
    std::uint64_t reservationsMade() const;
    std::size_t rangesHeld() const;         // in-memory entries now
    std::uint64_t rangesForgotten() const;  // idle entries dropped by the maxRanges bound

private:
    struct Range {
        std::uint64_t first = 0;
        std::uint64_t end = 0;  // exclusive
        std::uint8_t indBits = kDefaultIndBits;
    };
    struct Entry {
        std::uint64_t next = 0;
        std::uint64_t end = 0;  // exclusive; next == end means empty
        std::uint8_t indBits = kDefaultIndBits;
        std::uint64_t epoch = 0;  // bumped by set/resync/forget: in-flight ranges are stale
        bool reserving = false;
        // In arrival order. A vector: empty costs no allocation (an empty std::deque holds a
        // ~600-octet block), and an idle entry exists for every subscriber served since start.
        std::vector<Callback> waiters;
    };
    using Delivery = std::vector<std::pair<Callback, Result<SqnGrant>>>;

    // Under mutex_: submits a reservation job for `imsi`; when the writer is closing, moves the
    // waiters with an error into `failed` (delivered by the caller after unlocking).
    void startReservation(const std::string& imsi, Entry& e, Delivery& failed);
    void onReserved(const std::string& imsi, std::uint64_t epoch, Result<Range> r);
    void invalidateLocked(const std::string& imsi);
    void boundRangesLocked();
    void submitChange(const std::string& imsi, GroupCommitWriter::Job job,
                      GroupCommitWriter::Completion done);
    SqnGrant grantFrom(Entry& e) const;
    static void deliver(Delivery& d) noexcept;

    GroupCommitWriter& writer_;
    const SqnOptions options_;
    const std::optional<Error> refusal_;
    mutable std::mutex mutex_;
    std::unordered_map<std::string, Entry> entries_;
    std::uint64_t reservations_ = 0;
    std::uint64_t forgotten_ = 0;
};

}  // namespace best::store
