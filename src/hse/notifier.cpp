#include "hse/notifier.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace best::hse {

std::optional<std::uint64_t> parseWatchdogUsec(const char* usec, const char* pid, long self) {
    if (usec == nullptr || *usec == '\0')
        return std::nullopt;
    char* end = nullptr;
    errno = 0;
    const unsigned long long v = std::strtoull(usec, &end, 10);
    if (*end != '\0' || errno != 0 || v == 0 || usec[0] == '-')
        return std::nullopt;
    if (pid != nullptr && *pid != '\0') {
        errno = 0;
        const long p = std::strtol(pid, &end, 10);
        if (*end != '\0' || errno != 0 || p != self)
            return std::nullopt;
    }
    return static_cast<std::uint64_t>(v);
}

Result<Notifier> Notifier::fromEnvironment() {
    const char* sock = std::getenv("NOTIFY_SOCKET");
    if (sock == nullptr || *sock == '\0')
        return Notifier{};
    return forSocket(sock, parseWatchdogUsec(std::getenv("WATCHDOG_USEC"),
                                             std::getenv("WATCHDOG_PID"), ::getpid()));
}

Result<Notifier> Notifier::forSocket(const std::string& address,
                                     std::optional<std::uint64_t> watchdogUsec) {
    sockaddr_un a{};
    if (address.empty() || address.size() >= sizeof a.sun_path ||
        (address[0] != '/' && address[0] != '@'))
        return makeError(NotifyErrc::address,
                         "NOTIFY_SOCKET '" + address + "' is not an absolute path or '@' name");
    Notifier n;
    n.fd_.reset(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!n.fd_.isValid())
        return makeError(NotifyErrc::send, std::string("socket: ") + std::strerror(errno));
    n.address_ = address;
    n.watchdogUsec_ = watchdogUsec;
    return n;
}

Result<void> Notifier::notify(std::string_view state) {
    if (!enabled())
        return {};
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::memcpy(a.sun_path, address_.data(), address_.size());
    if (a.sun_path[0] == '@')
        a.sun_path[0] = '\0';
    const auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + address_.size() +
                                            (address_[0] == '@' ? 0 : 1));
    const ssize_t n = ::sendto(fd_.get(), state.data(), state.size(), MSG_NOSIGNAL,
                               reinterpret_cast<const sockaddr*>(&a), len);
    if (n < 0)
        return makeError(NotifyErrc::send,
                         "sd_notify to " + address_ + ": " + std::string(std::strerror(errno)));
    ++sent_;
    return {};
}

std::string Notifier::oneLine(std::string_view s) {
    std::string r;
    for (char c : s) {
        if (c == '\n')
            r += "; ";
        else if (c != '\r')
            r += c;
    }
    return r;
}

Result<void> Notifier::ready(std::string_view status) {
    return notify("READY=1\nSTATUS=" + oneLine(status));
}

Result<void> Notifier::status(std::string_view status) {
    return notify("STATUS=" + oneLine(status));
}

Result<void> Notifier::watchdog() {
    return notify("WATCHDOG=1");
}

Result<void> Notifier::reloading(std::string_view status) {
    return notify("RELOADING=1\nSTATUS=" + oneLine(status));
}

Result<void> Notifier::stopping(std::string_view status) {
    return notify("STOPPING=1\nSTATUS=" + oneLine(status));
}

}  // namespace best::hse
