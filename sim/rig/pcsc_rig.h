// Test rig: an isolated pcscd with a vpcd reader and best-vusim as its card, for the sim test
// suite and bench_usim. Nothing here touches the system pcscd:
//  - pcscd runs in its own mount namespace (unshare(CLONE_NEWNS), mounts private), where the
//    rig's own directory is bind-mounted over /run (pcscd's socket path /run/pcscd/pcscd.comm is
//    compiled in) and the USB driver directory is hidden (an empty tmpfs), so it never grabs a
//    real reader; its reader.conf.d (pcscd --config) holds one vpcd reader on a free port pair;
//  - clients in this process (and children such as opensc-tool) reach it through
//    PCSCLITE_CSOCK_NAME, which pcsc-lite reads once per process: it names a per-process symlink
//    that the rig points at the current pcscd's socket;
//  - every child gets PR_SET_PDEATHSIG(SIGKILL), and the rig stops children by PID, so nothing
//    outlives the test process even when it crashes.
// One rig at a time per process.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <csignal>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "sim/vusim/card.h"

namespace best::sim::rig {

// A child process; SIGKILLed and reaped when dropped.
class ChildProcess {
public:
    ChildProcess() noexcept = default;
    explicit ChildProcess(pid_t pid) noexcept : pid_(pid) {}
    ChildProcess(ChildProcess&& o) noexcept;
    ChildProcess& operator=(ChildProcess&& o) noexcept;
    ChildProcess(const ChildProcess&) = delete;
    ChildProcess& operator=(const ChildProcess&) = delete;
    ~ChildProcess() { kill(SIGKILL); }

    pid_t pid() const noexcept { return pid_; }
    bool isValid() const noexcept { return pid_ > 0; }
    // Reaps it if it has exited; false then.
    bool running();
    // SIGTERM, up to `grace` to exit, then SIGKILL; always reaped afterwards.
    void stop(std::chrono::milliseconds grace);
    // Sends `sig`; after SIGKILL the child is reaped.
    void kill(int sig);
    // Waits up to `timeout` for the exit; the wait status, or nullopt if still running.
    std::optional<int> wait(std::chrono::milliseconds timeout);

private:
    pid_t pid_ = -1;
};

// Starts `argv` with stdout/stderr to `logPath` (appended), stdin from /dev/null, fds >= 3
// closed and PR_SET_PDEATHSIG(SIGKILL).
Result<ChildProcess> spawn(const std::vector<std::string>& argv, const std::string& logPath);

struct RunResult {
    int exitCode = -1;   // -1: killed by a signal or timed out
    std::string output;  // stdout and stderr together
};
// Runs `argv` to completion (killed after `timeout`) and captures its output.
Result<RunResult> runAndCapture(const std::vector<std::string>& argv,
                                std::chrono::milliseconds timeout);

// What best-vusim's YAML config says (test material only: the rig writes it mode 0600).
struct VusimSettings {
    std::string imsi = "001010123456789";
    std::string kHex;
    std::string opcHex;  // one of opcHex / opHex
    std::string opHex;
    std::optional<std::string> pin;
    vusim::ResponseStyle style = vusim::ResponseStyle::direct;
    std::size_t getResponseChunk = 0;
    unsigned indBits = 5;
    std::optional<std::uint64_t> delta;
    std::map<unsigned, std::uint64_t> initialSeqMs;
};

class PcscRig {
public:
    // Makes the rig directory and starts pcscd; waits until its vpcd readers are listed.
    static Result<std::unique_ptr<PcscRig>> create();
    ~PcscRig();
    PcscRig(const PcscRig&) = delete;
    PcscRig& operator=(const PcscRig&) = delete;

    // Writes the config, starts best-vusim and waits (SCardGetStatusChange) for its card.
    Result<void> startVusim(const VusimSettings& settings);
    // Starts best-vusim again with the last config and state file; waits for the card.
    Result<void> restartVusim();
    // Sends `sig` to best-vusim (SIGKILL: also reaped). Does not wait for pcscd to notice.
    void signalVusim(int sig);
    Result<void> stopVusim();
    // Waits until pcscd reports the reader empty.
    Result<void> waitForCardAbsent(std::chrono::milliseconds timeout);
    Result<void> waitForCard(std::chrono::milliseconds timeout);

    // Stops pcscd (SIGTERM) and starts it again on the same port and socket path; waits for
    // the readers and, when best-vusim runs, for its card (best-vusim reconnects by itself).
    Result<void> restartPcscd();
    Result<void> stopPcscd();

    const std::string& readerName() const noexcept { return readerName_; }
    const std::string& dir() const noexcept { return dir_; }
    const std::string& stateFile() const noexcept { return stateFile_; }
    const std::string& configPath() const noexcept { return configPath_; }
    std::uint16_t port() const noexcept { return port_; }
    pid_t pcscdPid() const noexcept { return pcscd_.pid(); }
    pid_t vusimPid() const noexcept { return vusim_.pid(); }
    // The last few KiB of pcscd's and best-vusim's logs, for failure messages.
    std::string logs() const;
    std::string vusimLog() const;

private:
    PcscRig() = default;
    Result<void> startPcscdOnce();
    Result<void> startPcscd();
    Result<void> startVusimProcess();

    std::string dir_;
    std::string readerName_;
    std::string stateFile_;
    std::string configPath_;
    std::uint16_t port_ = 0;
    ChildProcess pcscd_;
    ChildProcess vusim_;
};

// Paths the rig uses; each overridable by an environment variable (BEST_VUSIM, BEST_PCSCD,
// BEST_VPCD_DRIVER), else derived from BEST_BUILD_ROOT or the build directory compiled in.
std::string vusimProgram();
std::string pcscdProgram();
std::string vpcdDriver();

}  // namespace best::sim::rig
