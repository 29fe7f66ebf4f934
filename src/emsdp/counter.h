// Counters and replay protection (profile section 3.1, A1). Receiving is two steps: candidate()
// rebuilds COUNT from the field without touching state; commit() records it once the MAC has
// verified.
#pragma once

#include <cstdint>
#include <optional>

#include "emsdp/header.h"
#include "emsdp/outcome.h"

namespace best::emsdp {

// The sending side of one plane: the next COUNT to use.
class TxCounter {
public:
    // The next COUNT (0 .. 2^32, 2^32 meaning nothing is left).
    std::uint64_t next() const noexcept { return next_; }
    // Data may use COUNT up to 2^32-2 (A1): false when the next would be 2^32-1 or beyond.
    bool available() const noexcept { return next_ <= kMaxDataCount; }
    // A1: the next COUNT would be 2^32-1, so the exhaustion Terminate is due.
    bool exhaustionDue() const noexcept { return next_ >= kMaxCount; }
    // Records that `next()` was used.
    void advance() noexcept { ++next_; }
    void restore(std::uint64_t next) noexcept {
        next_ = next > kMaxCount + std::uint64_t{1} ? kMaxCount + std::uint64_t{1} : next;
    }

private:
    std::uint64_t next_ = 0;
};

// CP receive (strict order): COUNT = the smallest value above the highest accepted one whose low
// w bits equal the field; before the first accepted message, the field itself. A replay
// therefore rebuilds to a future COUNT and fails as a MAC error.
class CpRxCounter {
public:
    tl::expected<std::uint32_t, DropReason> candidate(std::uint32_t field,
                                                      CounterScheme scheme) const noexcept;
    void commit(std::uint32_t count) noexcept;
    std::optional<std::uint32_t> highest() const noexcept { return highest_; }
    void restore(std::optional<std::uint32_t> highest) noexcept { highest_ = highest; }

private:
    std::optional<std::uint32_t> highest_;
};

// UP receive (reordering allowed): COUNT = the unique value in (H - 2^(w-1), H + 2^(w-1)] whose
// low w bits equal the field (before the first accepted message, the field itself); outside
// 0..2^32-1 dropped; at or below H accepted only if H - COUNT < W = min(64, 2^(w-1)) and only
// once. COUNT 2^32-1 is never data (A1): counter_exhausted.
class UpRxCounter {
public:
    static constexpr std::uint32_t window(CounterScheme s) noexcept {
        const std::uint32_t half = std::uint32_t{1} << (counterWidth(s) - 1);
        return half < 64 ? half : 64;
    }

    tl::expected<std::uint32_t, DropReason> candidate(std::uint32_t field,
                                                      CounterScheme scheme) const noexcept;
    void commit(std::uint32_t count) noexcept;
    std::optional<std::uint32_t> highest() const noexcept { return highest_; }
    // Bit k set: COUNT H - k was accepted (k = 0..63).
    std::uint64_t seen() const noexcept { return seen_; }
    void restore(std::optional<std::uint32_t> highest, std::uint64_t seen) noexcept {
        highest_ = highest;
        seen_ = highest ? seen : 0;
    }

private:
    std::optional<std::uint32_t> highest_;
    std::uint64_t seen_ = 0;
};

}  // namespace best::emsdp
