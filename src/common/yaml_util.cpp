#include "common/yaml_util.h"

#include <charconv>

namespace best::yaml {

std::string where(std::string_view name, const YAML::Mark& mark) {
    std::string w(name);
    if (mark.line >= 0)
        w += ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1);
    return w;
}

tl::unexpected<Error> configError(const Origin& origin, const YAML::Node& at,
                                  const std::string& msg) {
    const YAML::Mark m = at.IsDefined() ? at.Mark() : YAML::Mark::null_mark();
    return makeError(Error{origin.domain, origin.code, where(origin.name, m) + ": " + msg});
}

tl::unexpected<Error> configError(const Origin& origin, const std::string& msg) {
    return makeError(Error{origin.domain, origin.code, origin.name + ": " + msg});
}

Result<void> checkKeys(const Origin& origin, const YAML::Node& map,
                       const std::set<std::string>& allowed, const std::string& section) {
    if (!map.IsMap())
        return configError(origin, map, section + " must be a mapping");
    for (const auto& kv : map) {
        const std::string key = kv.first.as<std::string>();
        if (!allowed.count(key))
            return configError(origin, kv.first, "unknown key '" + key + "' in " + section);
    }
    return {};
}

Result<std::string> text(const Origin& origin, const YAML::Node& n, const std::string& what) {
    if (!n.IsDefined())
        return configError(origin, what + " is missing");
    if (!n.IsScalar() || n.Scalar().empty())
        return configError(origin, n, what + " must be a non-empty string");
    return n.Scalar();
}

Result<std::uint64_t> number(const Origin& origin, const YAML::Node& n, const std::string& what,
                             std::uint64_t max) {
    if (!n.IsScalar())
        return configError(origin, n, what + " must be a number");
    const std::string t = n.Scalar();
    std::uint64_t v = 0;
    auto r = std::from_chars(t.data(), t.data() + t.size(), v);
    if (r.ec != std::errc() || r.ptr != t.data() + t.size() || t.empty())
        return configError(origin, n, what + ": '" + t + "' is not a decimal number");
    if (v > max)
        return configError(origin, n, what + ": " + t + " is above " + std::to_string(max));
    return v;
}

Result<std::uint64_t> decimalOrHex(const Origin& origin, const YAML::Node& n,
                                   const std::string& what) {
    if (!n.IsScalar())
        return configError(origin, n, what + " must be a number");
    const std::string t = n.Scalar();
    std::uint64_t v = 0;
    const char* b = t.data();
    const char* e = t.data() + t.size();
    int base = 10;
    if (t.size() > 2 && t[0] == '0' && (t[1] == 'x' || t[1] == 'X')) {
        b += 2;
        base = 16;
    }
    auto r = std::from_chars(b, e, v, base);
    if (r.ec != std::errc() || r.ptr != e || b == e)
        return configError(origin, n, what + ": '" + t + "' is not a decimal or 0x number");
    return v;
}

Result<bool> boolean(const Origin& origin, const YAML::Node& n, const std::string& what) {
    if (n.IsScalar() && (n.Scalar() == "true" || n.Scalar() == "false"))
        return n.Scalar() == "true";
    return configError(origin, n, what + " must be true or false");
}

}  // namespace best::yaml
