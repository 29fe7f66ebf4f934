// The USIM's sequence number array (TS 33.102 Annex C.2, profile section 9): SEQ_MS per IND
// value, a fresh SQN has SEQ > SEQ_MS(IND) and SEQ - max(SEQ_MS) <= delta.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "common/result.h"

namespace best::sim::vusim {

inline constexpr std::uint64_t kDefaultDelta = std::uint64_t{1} << 28;
inline constexpr unsigned kDefaultIndBits = 5;
inline constexpr unsigned kMaxIndBits = 8;

enum class Freshness {
    fresh,    // accept
    stale,    // SEQ <= SEQ_MS(IND): a replay or an old vector
    too_far,  // SEQ - max(SEQ_MS) > delta
};

class SqnArray {
public:
    // indBits 0..8 (one to 256 entries), every SEQ_MS 0.
    explicit SqnArray(unsigned indBits = kDefaultIndBits, std::uint64_t delta = kDefaultDelta);

    unsigned indBits() const noexcept { return indBits_; }
    std::uint64_t delta() const noexcept { return delta_; }
    std::size_t size() const noexcept { return seq_.size(); }
    std::uint64_t seq(std::size_t ind) const noexcept { return seq_[ind]; }
    std::span<const std::uint64_t> seqs() const noexcept { return seq_; }
    // Replaces every SEQ_MS; the size must match and each SEQ must fit in 48 - indBits bits.
    Result<void> setSeqs(std::span<const std::uint64_t> seqs);
    Result<void> setSeq(std::size_t ind, std::uint64_t seq);

    // `sqn` is the 48-bit SQN = SEQ || IND.
    Freshness check(std::uint64_t sqn) const noexcept;
    // SEQ_MS(IND) = SEQ. Call only after check() said fresh.
    void accept(std::uint64_t sqn) noexcept;
    // The numerically highest SEQ || IND held (0 when every SEQ_MS is 0): what AUTS carries.
    std::uint64_t sqnMs() const noexcept;

private:
    unsigned indBits_;
    std::uint64_t delta_;
    std::vector<std::uint64_t> seq_;
};

}  // namespace best::sim::vusim
