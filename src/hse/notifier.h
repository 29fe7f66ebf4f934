// The systemd notification protocol (sd_notify(3)) spoken directly over the NOTIFY_SOCKET
// datagram socket: READY=1, STATUS=, WATCHDOG=1, RELOADING=1, STOPPING=1. Without NOTIFY_SOCKET
// every call is a no-op. Implemented here rather than through libsystemd so that tests can
// read the messages from a socket of their own.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"
#include "common/unique_fd.h"

namespace best::hse {

enum class NotifyErrc { address = 1, send };
inline ErrorDomain errorDomainOf(NotifyErrc) {
    return ErrorDomain::net;
}

// WATCHDOG_USEC as sd_watchdog_enabled(3) reads it: a positive integer, and WATCHDOG_PID (when
// set) must name this process. Nullopt: no watchdog.
std::optional<std::uint64_t> parseWatchdogUsec(const char* usec, const char* pid, long self);

class Notifier {
public:
    // From NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID of the environment. An absolute path
    // or an abstract name ('@' first).
    static Result<Notifier> fromEnvironment();
    static Result<Notifier> forSocket(const std::string& address,
                                      std::optional<std::uint64_t> watchdogUsec);
    Notifier() = default;

    bool enabled() const noexcept { return fd_.isValid(); }
    std::optional<std::uint64_t> watchdogUsec() const noexcept { return watchdogUsec_; }
    const std::string& address() const noexcept { return address_; }

    // Sends `state` (newline-separated assignments) as one datagram.
    Result<void> notify(std::string_view state);
    Result<void> ready(std::string_view status);
    Result<void> status(std::string_view status);
    Result<void> watchdog();
    Result<void> reloading(std::string_view status);
    Result<void> stopping(std::string_view status);
    std::uint64_t sent() const noexcept { return sent_; }

    // A STATUS= value on one line (newlines become "; ").
    static std::string oneLine(std::string_view s);

private:
    UniqueFd fd_;
    std::string address_;
    std::optional<std::uint64_t> watchdogUsec_;
    std::uint64_t sent_ = 0;
};

}  // namespace best::hse
