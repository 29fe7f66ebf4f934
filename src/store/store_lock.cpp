#include "store/store_lock.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <thread>

#include "store/store_error.h"

namespace best::store {
namespace {

std::string errnoText(int err) {
    return std::strerror(err);
}

// The pid the last daemon wrote, if that process still exists.
std::optional<pid_t> readHolder(int fd) {
    char buf[32] = {};
    const ssize_t n = ::pread(fd, buf, sizeof(buf) - 1, 0);
    if (n <= 0)
        return std::nullopt;
    char* end = nullptr;
    const long pid = std::strtol(buf, &end, 10);
    if (end == buf || pid <= 0)
        return std::nullopt;
    if (::kill(static_cast<pid_t>(pid), 0) != 0 && errno != EPERM)
        return std::nullopt;
    return static_cast<pid_t>(pid);
}

Result<UniqueFd> openLockFile(const std::string& path) {
    UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (!fd.isValid()) {
        return makeError(StoreErrc::io,
                         "cannot open the store lock file '" + path + "': " + errnoText(errno));
    }
    return fd;
}

}  // namespace

std::string StoreLock::lockPathFor(const std::string& storePath) {
    return storePath + ".lock";
}

StoreLock::~StoreLock() {
    if (fd_.isValid() && held_ && mode_ == Mode::daemon) {
        // A clean exit leaves no pid behind; after kill -9 the stale pid is ignored by
        // readHolder() unless that pid has been reused.
        (void)::ftruncate(fd_.get(), 0);
    }
}

Result<StoreLock> StoreLock::acquire(const std::string& storePath, Mode mode,
                                     std::chrono::milliseconds wait) {
    const std::string path = lockPathFor(storePath);
    auto fd = openLockFile(path);
    if (!fd)
        return makeError(std::move(fd.error()));

    if (mode == Mode::tool) {
        if (::flock(fd->get(), LOCK_SH | LOCK_NB) == 0) {
            return StoreLock(std::move(*fd), mode, true, false, std::nullopt);
        }
        if (errno != EWOULDBLOCK) {
            return makeError(StoreErrc::io, "cannot lock '" + path + "': " + errnoText(errno));
        }
        const auto holder = readHolder(fd->get());
        return StoreLock(UniqueFd(), mode, false, true, holder);
    }

    const auto deadline = std::chrono::steady_clock::now() + wait;
    for (;;) {
        if (::flock(fd->get(), LOCK_EX | LOCK_NB) == 0)
            break;
        if (errno != EWOULDBLOCK) {
            return makeError(StoreErrc::io, "cannot lock '" + path + "': " + errnoText(errno));
        }
        if (std::chrono::steady_clock::now() >= deadline) {
            const auto holder = readHolder(fd->get());
            std::string who = holder ? "a running daemon (pid " + std::to_string(*holder) + ")"
                                     : "another process (a daemon or best-hsectl)";
            return makeError(StoreErrc::in_use, "store '" + storePath + "' is in use by " + who);
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    const std::string pid = std::to_string(::getpid()) + "\n";
    if (::ftruncate(fd->get(), 0) != 0 ||
        ::pwrite(fd->get(), pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
        return makeError(StoreErrc::io,
                         "cannot write the store lock file '" + path + "': " + errnoText(errno));
    }
    return StoreLock(std::move(*fd), mode, true, false, std::nullopt);
}

Result<bool> StoreLock::probeDaemon(const std::string& storePath) {
    const std::string path = lockPathFor(storePath);
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (!fd.isValid()) {
        if (errno == ENOENT)
            return false;
        return makeError(StoreErrc::io,
                         "cannot open the store lock file '" + path + "': " + errnoText(errno));
    }
    if (::flock(fd.get(), LOCK_SH | LOCK_NB) == 0) {
        (void)::flock(fd.get(), LOCK_UN);
        return false;
    }
    if (errno == EWOULDBLOCK)
        return true;
    return makeError(StoreErrc::io, "cannot probe '" + path + "': " + errnoText(errno));
}

}  // namespace best::store
