// The best-hsed daemon core: one libuv loop for the EMSDP sockets, the sink sockets and the
// timers; KeyVault jobs run on the HSM workers and store writes on the store's writer; their
// results come back to the loop through one uv_async inbox. docs/hsed.md describes the flows.
#pragma once

#include <memory>

#include "common/result.h"
#include "hse/config.h"

namespace best::hse {

class Daemon {
public:
    // Opens the HSM vault and the store, binds the sockets, writes the runtime file.
    static Result<std::unique_ptr<Daemon>> create(const HsedConfig& config);
    Daemon(const Daemon&) = delete;
    Daemon& operator=(const Daemon&) = delete;
    ~Daemon();
    // Runs until SIGTERM or SIGINT; returns the exit code.
    int run();
    // --check-hsm: opens the vault and runs the health probe in this process; 0 when it passes
    // (the daemon runs it in a new process to tell whether a failed token is back).
    static int checkHsm(const HsedConfig& config);

    struct Impl;

private:
    explicit Daemon(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

}  // namespace best::hse
