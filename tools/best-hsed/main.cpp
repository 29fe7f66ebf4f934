// best-hsed: the HSE daemon. So far it validates its configuration (--check-config); the
// EMSDP service arrives with the daemon core (docs/README "Status").
#include <cstdio>
#include <cstring>
#include <string>

#include "common/secure.h"
#include "hse/config.h"

namespace {

constexpr const char* kHelp =
    "usage: best-hsed [--config FILE] [--check-config]\n"
    "\n"
    "  --config FILE    configuration (default /etc/best-hse/hsed.yaml)\n"
    "  --check-config   validate the configuration, print 'configuration OK' or the first\n"
    "                   error as FILE:LINE:COLUMN: key 'KEY': problem, and exit\n"
    "\n"
    "Exit codes: 0 OK, 1 configuration invalid, 2 bad arguments.\n";

}  // namespace

int main(int argc, char** argv) {
    best::hardenProcess();
    std::string configPath = "/etc/best-hse/hsed.yaml";
    bool checkOnly = false;
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0) {
            std::fputs(kHelp, stdout);
            return 0;
        }
        if (std::strcmp(argv[i], "--check-config") == 0) {
            checkOnly = true;
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
    std::fputs("best-hsed: the EMSDP service is not built yet; only --check-config works\n",
               stderr);
    return 2;
}
