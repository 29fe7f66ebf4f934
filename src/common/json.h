// JSON string literals (RFC 8259 escaping), shared by best-hsectl's --json output and the
// daemon's admin socket answers.
#pragma once

#include <string>
#include <string_view>

namespace best {

// `s` as a JSON string literal, quotes included; control characters and DEL as \u00XX.
std::string jsonString(std::string_view s);

}  // namespace best
