#include "emsdp/counter.h"

namespace best::emsdp {

tl::expected<std::uint32_t, DropReason> CpRxCounter::candidate(
    std::uint32_t field, CounterScheme scheme) const noexcept {
    const std::uint64_t mask = counterMask(scheme);
    field &= static_cast<std::uint32_t>(mask);
    if (!highest_)
        return field;
    const std::uint64_t floor = std::uint64_t{*highest_} + 1;  // smallest allowed value
    std::uint64_t c = (floor & ~mask) | field;
    if (c < floor)
        c += mask + 1;
    if (c > kMaxCount)
        return tl::unexpected(DropReason::counter_out_of_range);
    return static_cast<std::uint32_t>(c);
}

void CpRxCounter::commit(std::uint32_t count) noexcept {
    if (!highest_ || count > *highest_)
        highest_ = count;
}

tl::expected<std::uint32_t, DropReason> UpRxCounter::candidate(
    std::uint32_t field, CounterScheme scheme) const noexcept {
    const std::int64_t modulus = std::int64_t{1} << counterWidth(scheme);
    const std::int64_t f = static_cast<std::int64_t>(field) & (modulus - 1);
    std::int64_t c = f;
    if (highest_) {
        const std::int64_t h = *highest_;
        const std::int64_t lo = h - modulus / 2 + 1;  // window (H - 2^(w-1), H + 2^(w-1)]
        // lo + ((f - lo) mod 2^w), with a non-negative remainder.
        std::int64_t r = (f - lo) % modulus;
        if (r < 0)
            r += modulus;
        c = lo + r;
    }
    if (c < 0 || c > static_cast<std::int64_t>(kMaxCount))
        return tl::unexpected(DropReason::counter_out_of_range);
    if (c == static_cast<std::int64_t>(kMaxCount))
        return tl::unexpected(DropReason::counter_exhausted);
    if (highest_) {
        const std::int64_t h = *highest_;
        if (c <= h) {
            const std::int64_t age = h - c;
            if (age >= static_cast<std::int64_t>(window(scheme)))
                return tl::unexpected(DropReason::counter_too_old);
            if ((seen_ >> age) & 1u)
                return tl::unexpected(DropReason::replayed_counter);
        }
    }
    return static_cast<std::uint32_t>(c);
}

void UpRxCounter::commit(std::uint32_t count) noexcept {
    if (!highest_) {
        highest_ = count;
        seen_ = 1;
        return;
    }
    if (count > *highest_) {
        const std::uint32_t shift = count - *highest_;
        seen_ = shift >= 64 ? 0 : seen_ << shift;
        seen_ |= 1;
        highest_ = count;
        return;
    }
    const std::uint32_t age = *highest_ - count;
    if (age < 64)
        seen_ |= std::uint64_t{1} << age;
}

}  // namespace best::emsdp
