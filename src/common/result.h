// Errors are values: Result<T> is tl::expected<T, Error> (conventions 5).
#pragma once

#include <string>
#include <string_view>
#include <utility>

#include <tl/expected.hpp>

namespace best {

// One error domain per area; each area keeps its own code enum and converts through makeError().
enum class ErrorDomain { generic, proto, crypto, hsm, sim, store, config, net, io };

std::string_view domainName(ErrorDomain d) noexcept;

struct Error {
    ErrorDomain domain = ErrorDomain::generic;
    int code = 0;
    // Human-readable, for operators. Never contains key material.
    std::string message;

    std::string describe() const;
};

template <typename T = void>
using Result = tl::expected<T, Error>;

// Each area declares `ErrorDomain errorDomainOf(Enum)` next to its enum.
template <typename Enum>
tl::unexpected<Error> makeError(Enum code, std::string message) {
    return tl::unexpected<Error>(
        Error{errorDomainOf(code), static_cast<int>(code), std::move(message)});
}

inline tl::unexpected<Error> makeError(Error e) {
    return tl::unexpected<Error>(std::move(e));
}

}  // namespace best
