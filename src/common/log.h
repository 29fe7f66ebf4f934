// Minimal leveled logging to stderr (journald picks up the <N> prefixes under systemd).
// Never pass key material: there is deliberately no overload for Secret or SecureBuffer.
#pragma once

#include <optional>
#include <string_view>

namespace best::log {

enum class Level { debug = 7, info = 6, notice = 5, warning = 4, error = 3 };

void setLevel(Level l) noexcept;
// "debug", "info", "notice", "warning" or "error"; anything else: nullopt.
std::optional<Level> parseLevel(std::string_view name) noexcept;
Level level() noexcept;
// Prefix lines with "<N>" for journald instead of a timestamp.
void setJournalPrefix(bool on) noexcept;
void write(Level l, std::string_view component, std::string_view message) noexcept;

inline void debug(std::string_view c, std::string_view m) noexcept {
    write(Level::debug, c, m);
}
inline void info(std::string_view c, std::string_view m) noexcept {
    write(Level::info, c, m);
}
inline void notice(std::string_view c, std::string_view m) noexcept {
    write(Level::notice, c, m);
}
inline void warning(std::string_view c, std::string_view m) noexcept {
    write(Level::warning, c, m);
}
inline void error(std::string_view c, std::string_view m) noexcept {
    write(Level::error, c, m);
}

}  // namespace best::log
