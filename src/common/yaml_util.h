// Readers for YAML configuration files (best-ue, best-vusim): every error names the file and
// the node's line:column, and carries the calling area's error domain and code. Readers of
// secrets wipe the scalar text they copied; their messages never hold the value.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <string_view>

#include <yaml-cpp/yaml.h>

#include "common/hex.h"
#include "common/result.h"
#include "common/secure.h"

namespace best::yaml {

// A std::string that is wiped when it dies (file text and scalars that held K, OP, OPc, a PIN).
struct WipedString {
    std::string s;
    ~WipedString() { secureWipe(s.data(), s.size()); }
};

// The file a configuration comes from (its name starts every message) and the error its
// readers return, e.g. `Origin(path, SimErrc::config)`.
struct Origin {
    template <typename Errc>
    Origin(std::string_view file, Errc errc)
        : name(file), domain(errorDomainOf(errc)), code(static_cast<int>(errc)) {}

    std::string name;
    ErrorDomain domain;
    int code;
};

// "NAME:LINE:COLUMN" (1-based), or NAME alone when the mark has no position.
std::string where(std::string_view name, const YAML::Mark& mark);

// "NAME[:LINE:COLUMN]: msg" as the origin's error; `at` may be an undefined node.
tl::unexpected<Error> configError(const Origin& origin, const YAML::Node& at,
                                  const std::string& msg);
// "NAME: msg" as the origin's error (no position).
tl::unexpected<Error> configError(const Origin& origin, const std::string& msg);

// `map` is a mapping whose keys are all in `allowed`; `section` names it in messages.
Result<void> checkKeys(const Origin& origin, const YAML::Node& map,
                       const std::set<std::string>& allowed, const std::string& section);
// A non-empty string scalar.
Result<std::string> text(const Origin& origin, const YAML::Node& n, const std::string& what);
// A decimal number up to `max`.
Result<std::uint64_t> number(const Origin& origin, const YAML::Node& n, const std::string& what,
                             std::uint64_t max);
// A decimal or 0x-hexadecimal number.
Result<std::uint64_t> decimalOrHex(const Origin& origin, const YAML::Node& n,
                                   const std::string& what);
// true or false.
Result<bool> boolean(const Origin& origin, const YAML::Node& n, const std::string& what);

// A 128-bit secret (K, OP, OPc) as 32 hex digits into `out` (a Secret).
template <typename SecretT>
Result<void> secretHex(const Origin& origin, const YAML::Node& n, const char* what, SecretT& out) {
    if (!n.IsScalar())
        return configError(origin, n, std::string(what) + " must be 32 hex digits");
    WipedString t{n.Scalar()};
    if (auto r = fromHexInto(t.s, what, out.mutableView()); !r)
        return configError(origin, n, r.error().message);  // never holds the value
    return {};
}

}  // namespace best::yaml
