#include "crypto/sqn_array.h"

#include <algorithm>
#include <string>

#include "crypto/ossl.h"

namespace best::crypto {

namespace {

constexpr std::uint64_t kSqnMask = (std::uint64_t{1} << 48) - 1;

}  // namespace

SqnArray::SqnArray(unsigned indBits, std::uint64_t delta)
    : indBits_(std::min(indBits, kMaxIndBits)),
      delta_(delta),
      seq_(std::size_t{1} << std::min(indBits, kMaxIndBits), 0) {}

Result<void> SqnArray::setSeq(std::size_t ind, std::uint64_t seq) {
    if (ind >= seq_.size())
        return makeError(CryptoErrc::bad_value, "IND " + std::to_string(ind) +
                                                    " out of range for " +
                                                    std::to_string(indBits_) + " IND bits");
    if ((seq >> (48 - indBits_)) != 0)
        return makeError(CryptoErrc::bad_value,
                         "SEQ does not fit in " + std::to_string(48 - indBits_) + " bits");
    seq_[ind] = seq;
    return {};
}

Result<void> SqnArray::setSeqs(std::span<const std::uint64_t> seqs) {
    if (seqs.size() != seq_.size())
        return makeError(CryptoErrc::bad_value, "SEQ_MS array of " + std::to_string(seqs.size()) +
                                                    " entries, expected " +
                                                    std::to_string(seq_.size()));
    for (std::size_t i = 0; i < seqs.size(); ++i)
        if (auto r = setSeq(i, seqs[i]); !r)
            return r;
    return {};
}

Freshness SqnArray::check(std::uint64_t sqn) const noexcept {
    sqn &= kSqnMask;
    const std::uint64_t seq = sqn >> indBits_;
    const auto ind = static_cast<std::size_t>(sqn & ((std::uint64_t{1} << indBits_) - 1));
    if (seq <= seq_[ind])
        return Freshness::stale;
    const std::uint64_t highest = *std::max_element(seq_.begin(), seq_.end());
    if (seq > highest && seq - highest > delta_)
        return Freshness::too_far;
    return Freshness::fresh;
}

void SqnArray::accept(std::uint64_t sqn) noexcept {
    sqn &= kSqnMask;
    const auto ind = static_cast<std::size_t>(sqn & ((std::uint64_t{1} << indBits_) - 1));
    seq_[ind] = sqn >> indBits_;
}

std::uint64_t SqnArray::highestSqn() const noexcept {
    std::uint64_t best = 0;
    for (std::size_t i = 0; i < seq_.size(); ++i)
        if (seq_[i] != 0)
            best = std::max(best, (seq_[i] << indBits_) | i);
    return best;
}

}  // namespace best::crypto
