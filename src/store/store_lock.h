// The store lock: an advisory flock(2) on a sidecar file "<store>.lock" next to the database.
// A daemon holds it exclusively for its lifetime (and writes its pid into the file, for
// messages); a tool takes it shared when it can, so that a daemon cannot start under a running
// import, and otherwise knows that a daemon is active and refuses mutations. The kernel drops
// the lock when the holder dies, kill -9 included, so there is never a stale lock to clean up.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>

#include "common/result.h"
#include "common/unique_fd.h"

namespace best::store {

enum class Mode {
    daemon,  // best-hsed: exclusive lock, migrates the schema, may mutate everything
    tool,    // best-hsectl: shared lock if free; read-only while a daemon holds the store
};

class StoreLock {
public:
    static std::string lockPathFor(const std::string& storePath);

    // Daemon: LOCK_EX, retried until `wait` has passed (0: one try), StoreErrc::in_use if
    // another process holds the lock. Tool: LOCK_SH if possible, else daemonActive() is true.
    static Result<StoreLock> acquire(const std::string& storePath, Mode mode,
                                     std::chrono::milliseconds wait = {});

    // Whether a daemon holds `storePath` right now, without taking anything (for status lines).
    static Result<bool> probeDaemon(const std::string& storePath);

    StoreLock(StoreLock&&) noexcept = default;
    StoreLock& operator=(StoreLock&&) noexcept = default;
    ~StoreLock();

    Mode mode() const noexcept { return mode_; }
    bool held() const noexcept { return held_; }
    // Tool mode: a daemon holds the store, so this tool holds nothing and must not mutate.
    bool daemonActive() const noexcept { return daemonActive_; }
    // Pid recorded by the daemon holding the lock, when it is alive (messages only).
    std::optional<pid_t> holderPid() const noexcept { return holderPid_; }

private:
    StoreLock(UniqueFd fd, Mode mode, bool held, bool daemonActive,
              std::optional<pid_t> holder) noexcept
        : fd_(std::move(fd)),
          mode_(mode),
          held_(held),
          daemonActive_(daemonActive),
          holderPid_(holder) {}

    UniqueFd fd_;
    Mode mode_ = Mode::tool;
    bool held_ = false;
    bool daemonActive_ = false;
    std::optional<pid_t> holderPid_;
};

}  // namespace best::store
