// best-hsed: the HSE daemon (docs/hsed.md). --check-config validates the configuration only.
#include <cstdio>
#include <cstring>
#include <string>

#include "common/log.h"
#include "common/secure.h"
#include "hse/config.h"
#ifdef BEST_HSED_DAEMON
#include "daemon.h"
#endif

namespace {

constexpr const char* kHelp =
    "usage: best-hsed [--config FILE] [--check-config]\n"
    "\n"
    "  --config FILE    configuration (default /etc/best-hse/hsed.yaml)\n"
    "  --check-config   validate the configuration, print 'configuration OK' or the first\n"
    "                   error as FILE:LINE:COLUMN: key 'KEY': problem, and exit\n"
    "  --check-hsm      open the HSM as configured, run its health probe, exit 0 when it\n"
    "                   passes, 1 when not\n"
    "\n"
    "Exit codes: 0 OK (stopped by SIGTERM/SIGINT), 1 configuration invalid, 2 bad arguments,\n"
    "3 start-up failed (HSM, store, sockets).\n";

}  // namespace

int main(int argc, char** argv) {
    best::hardenProcess();
    std::string configPath = "/etc/best-hse/hsed.yaml";
    bool checkOnly = false;
    bool checkHsm = false;  // open the vault, run the health probe, exit (0 when it passes)
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0) {
            std::fputs(kHelp, stdout);
            return 0;
        }
        if (std::strcmp(argv[i], "--check-config") == 0) {
            checkOnly = true;
        } else if (std::strcmp(argv[i], "--check-hsm") == 0) {
            checkHsm = true;
        } else if (std::strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
            configPath = argv[++i];
        } else if (std::strncmp(argv[i], "--config=", 9) == 0) {
            configPath = argv[i] + 9;
        } else {
            std::fprintf(stderr, "best-hsed: unexpected argument '%s' (see best-hsed --help)\n",
                         argv[i]);
            return 2;
        }
    }
    auto config = best::hse::loadHsedConfig(configPath);
    if (!config) {
        std::fprintf(stderr, "best-hsed: %s\n", config.error().message.c_str());
        return 1;
    }
    if (checkOnly) {
        std::printf("configuration OK: %s\n", configPath.c_str());
        return 0;
    }
#ifdef BEST_HSED_DAEMON
    if (checkHsm)
        return best::hse::Daemon::checkHsm(*config);
    best::log::setLevel(best::log::parseLevel(config->logLevel).value_or(best::log::Level::info));
    auto daemon = best::hse::Daemon::create(*config);
    if (!daemon) {
        std::fprintf(stderr, "best-hsed: cannot start: %s\n", daemon.error().message.c_str());
        return 3;
    }
    return (*daemon)->run();
#else
    (void)checkHsm;
    std::fputs("best-hsed: built without the HSM (p11-kit): only --check-config works\n", stderr);
    return 2;
#endif
}
