#include "common/log.h"

#include <atomic>
#include <cstdio>
#include <ctime>
#include <mutex>

namespace best::log {
namespace {
std::atomic<Level> gLevel{Level::info};
std::atomic<bool> gJournal{false};
std::mutex gMutex;

const char* name(Level l) {
    switch (l) {
        case Level::debug:
            return "debug";
        case Level::info:
            return "info";
        case Level::notice:
            return "notice";
        case Level::warning:
            return "warning";
        case Level::error:
            return "error";
    }
    return "?";
}
}  // namespace

std::optional<Level> parseLevel(std::string_view s) noexcept {
    for (Level l : {Level::debug, Level::info, Level::notice, Level::warning, Level::error})
        if (s == name(l))
            return l;
    return std::nullopt;
}

void setLevel(Level l) noexcept {
    gLevel = l;
}
Level level() noexcept {
    return gLevel;
}
void setJournalPrefix(bool on) noexcept {
    gJournal = on;
}

void write(Level l, std::string_view component, std::string_view message) noexcept {
    if (static_cast<int>(l) > static_cast<int>(gLevel.load()))
        return;
    std::lock_guard<std::mutex> lock(gMutex);
    if (gJournal) {
        std::fprintf(stderr, "<%d>%.*s: %.*s\n", static_cast<int>(l),
                     static_cast<int>(component.size()), component.data(),
                     static_cast<int>(message.size()), message.data());
    } else {
        char ts[32];
        std::time_t now = std::time(nullptr);
        struct tm tmv {};
        gmtime_r(&now, &tmv);
        std::strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tmv);
        std::fprintf(stderr, "%s %s %.*s: %.*s\n", ts, name(l), static_cast<int>(component.size()),
                     component.data(), static_cast<int>(message.size()), message.data());
    }
    std::fflush(stderr);
}

}  // namespace best::log
