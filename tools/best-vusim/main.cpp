// best-vusim: a virtual USIM behind pcscd's vpcd driver (vsmartcard). Connects to vpcd's port,
// answers as the card, reconnects when vpcd goes away. K and OP/OPc come only from the YAML
// config file (keep it mode 0600), never from the command line.
#include <poll.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>

#include "common/log.h"
#include "common/secure.h"
#include "sim/vusim/card.h"
#include "sim/vusim/config.h"
#include "sim/vusim/state_file.h"
#include "sim/vusim/vpcd_link.h"

namespace {

using namespace best;
using namespace best::sim::vusim;

std::atomic<bool> gStop{false};

extern "C" void onStopSignal(int) {
    gStop.store(true);
}

constexpr char kUsage[] =
    "usage: best-vusim --config FILE [--log-level debug|info|notice|warning|error] [--journal]\n"
    "       best-vusim --check --config FILE\n"
    "\n"
    "A virtual USIM for pcscd's vpcd driver. FILE is YAML (see config/vusim.yaml); it holds K\n"
    "and OP/OPc, so keep it mode 0600. --check validates FILE and, if it exists and no running\n"
    "best-vusim holds it, the state file; it creates nothing.\n";

// Sleeps `d`, returning early when a stop signal arrives (they are unblocked only here).
void interruptibleSleep(std::chrono::milliseconds d, const sigset_t* waitMask) {
    timespec ts{static_cast<time_t>(d.count() / 1000),
                static_cast<long>(d.count() % 1000) * 1000000L};
    ::ppoll(nullptr, 0, &ts, waitMask);
}

}  // namespace

int main(int argc, char** argv) {
    hardenProcess();
    std::string configPath;
    bool check = false;
    for (int i = 1; i < argc; ++i) {
        std::string_view a = argv[i];
        if (a == "--config" && i + 1 < argc) {
            configPath = argv[++i];
        } else if (a == "--log-level" && i + 1 < argc) {
            const auto l = log::parseLevel(argv[++i]);
            if (!l) {
                std::fputs(kUsage, stderr);
                return 2;
            }
            log::setLevel(*l);
        } else if (a == "--journal") {
            log::setJournalPrefix(true);
        } else if (a == "--check") {
            check = true;
        } else if (a == "--help" || a == "-h") {
            std::fputs(kUsage, stdout);
            return 0;
        } else {
            std::fputs(kUsage, stderr);
            return 2;
        }
    }
    if (configPath.empty()) {
        std::fputs(kUsage, stderr);
        return 2;
    }

    auto cfg = loadVusimConfig(configPath);
    if (!cfg) {
        log::error("best-vusim", cfg.error().describe());
        return 1;
    }
    for (const auto& w : cfg->warnings)
        log::warning("best-vusim", w);
    if (check && ::access(cfg->stateFile.c_str(), F_OK) != 0) {
        std::printf("configuration OK; state file %s does not exist yet (created at start)\n",
                    cfg->stateFile.c_str());
        return 0;
    }
    auto state = SqnStateFile::open(cfg->stateFile, cfg->initialSqn);
    if (!state) {
        log::error("best-vusim", state.error().describe());
        return 1;
    }
    if (state->recoveredFromDamagedSlot())
        log::warning("best-vusim", "state file " + cfg->stateFile +
                                       ": one slot was damaged (torn write); continued from the "
                                       "other, nothing lost");
    auto card =
        VirtualUsim::create(std::move(cfg->card), cfg->k, cfg->opc, state->loaded(), &*state);
    if (!card) {
        log::error("best-vusim", card.error().describe());
        return 1;
    }
    const std::string host = cfg->vpcdHost;
    const std::uint16_t port = cfg->vpcdPort;
    cfg = tl::unexpected<Error>(Error{});  // K and OPc: wiped now, the card holds what it needs
    if (check) {
        std::puts("configuration and state file OK");
        return 0;
    }

    // SIGTERM/SIGINT stop; they stay blocked except while waiting (ppoll), so none is lost.
    struct sigaction sa {};
    sa.sa_handler = onStopSignal;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGTERM, &sa, nullptr);
    ::sigaction(SIGINT, &sa, nullptr);
    ::signal(SIGPIPE, SIG_IGN);
    sigset_t stopSignals, waitMask;
    sigemptyset(&stopSignals);
    sigaddset(&stopSignals, SIGTERM);
    sigaddset(&stopSignals, SIGINT);
    ::sigprocmask(SIG_BLOCK, &stopSignals, &waitMask);
    sigdelset(&waitMask, SIGTERM);
    sigdelset(&waitMask, SIGINT);

    const std::string where = host + ":" + std::to_string(port);
    log::notice("best-vusim", "serving the virtual USIM on vpcd at " + where + ", " +
                                  (card->style() == ResponseStyle::t0 ? "t0" : "direct") +
                                  " style, state " + state->path());
    auto backoff = std::chrono::milliseconds(20);
    bool reportedDown = false;
    while (!gStop.load()) {
        auto fd = connectToVpcd(host, port);
        if (!fd) {
            if (!reportedDown)
                log::warning("best-vusim", fd.error().message + "; retrying");
            reportedDown = true;
            interruptibleSleep(backoff, &waitMask);
            backoff = std::min(backoff * 2, std::chrono::milliseconds(500));
            continue;
        }
        log::notice("best-vusim", "connected to vpcd at " + where);
        reportedDown = false;
        backoff = std::chrono::milliseconds(20);
        card->reset();
        auto end = serveVpcd(fd->get(), *card, gStop, &waitMask);
        if (!end)
            log::warning("best-vusim", end.error().message + "; reconnecting");
        else if (*end == LinkEnd::closed)
            log::notice("best-vusim", "vpcd closed the connection; reconnecting");
    }
    const auto& c = card->counters();
    log::notice("best-vusim", "stopping: " + std::to_string(c.authenticateOk) +
                                  " AUTHENTICATE accepted, " + std::to_string(c.syncFailures) +
                                  " sync failures, " + std::to_string(c.macFailures) +
                                  " MAC failures");
    return 0;
}
