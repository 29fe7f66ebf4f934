// The USIM's sequence number array (TS 33.102 Annex C.2; profile section 9): SEQ_MS per IND value
// (all 0 at first). A SQN = SEQ || IND is fresh when SEQ > SEQ_MS(IND) and SEQ - max(SEQ_MS) <=
// delta (2^28). AUTS carries the numerically highest accepted SEQ || IND (0 when nothing was
// accepted yet).
//
// One implementation for every USIM of the project: the software USIM of the UE library and
// the virtual card best-vusim.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "common/result.h"

namespace best::crypto {

inline constexpr std::uint64_t kSqnDelta = std::uint64_t{1} << 28;
inline constexpr unsigned kDefaultIndBits = 5;
inline constexpr unsigned kMaxIndBits = 8;

enum class Freshness : std::uint8_t {
    fresh,    // accept
    stale,    // SEQ <= SEQ_MS(IND): replayed or old
    too_far,  // SEQ - max(SEQ_MS) > delta
};

class SqnArray {
public:
    // indBits 0..8 (1 to 256 entries; larger values are clamped to 8), every SEQ_MS 0.
    explicit SqnArray(unsigned indBits = kDefaultIndBits, std::uint64_t delta = kSqnDelta);

    unsigned indBits() const noexcept { return indBits_; }
    std::uint64_t delta() const noexcept { return delta_; }
    std::size_t size() const noexcept { return seq_.size(); }
    std::uint64_t seq(std::size_t ind) const noexcept { return seq_[ind]; }
    std::span<const std::uint64_t> seqs() const noexcept { return seq_; }
    // SEQ_MS(ind) = seq; ind must be below size() and seq fit in 48 - indBits bits.
    Result<void> setSeq(std::size_t ind, std::uint64_t seq);
    // Replaces every SEQ_MS (same size as the array).
    Result<void> setSeqs(std::span<const std::uint64_t> seqs);

    // `sqn` is the 48-bit SQN.
    Freshness check(std::uint64_t sqn) const noexcept;
    // SEQ_MS(IND) = SEQ; only after check() said fresh.
    void accept(std::uint64_t sqn) noexcept;
    // The numerically highest SEQ || IND held; 0 when every SEQ_MS is 0.
    std::uint64_t highestSqn() const noexcept;

private:
    unsigned indBits_;
    std::uint64_t delta_;
    std::vector<std::uint64_t> seq_;
};

}  // namespace best::crypto
