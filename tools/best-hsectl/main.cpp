// best-hsectl: provisioning and operations CLI of the HSE.
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "aka_vector.h"
#include "cli.h"
#include "common/secure.h"

namespace {

constexpr const char* kHelp =
    "usage: best-hsectl COMMAND [OPTIONS]\n"
    "\n"
    "Commands:\n"
    "  aka-vector   compute a Milenage authentication vector or resync (software, from key "
    "files)\n"
    "\n"
    "Run 'best-hsectl COMMAND --help' for a command's options. Keys are read from files or\n"
    "standard input, never from the command line (except --test-keys for published vectors).\n"
    "Exit codes: 0 done, 1 a check failed, 2 bad arguments or input, 3 internal error.\n";

struct Command {
    const char* name;
    int (*run)(const std::vector<std::string>&);
};

constexpr Command kCommands[] = {
    {"aka-vector", best::hsectl::runAkaVector},
};

}  // namespace

int main(int argc, char** argv) {
    best::hardenProcess();
    if (argc < 2 || std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0 ||
        std::strcmp(argv[1], "help") == 0) {
        std::fputs(kHelp, argc < 2 ? stderr : stdout);
        return argc < 2 ? best::cli::kExitUsage : best::cli::kExitOk;
    }
    std::vector<std::string> args(argv + 2, argv + argc);
    for (const auto& c : kCommands) {
        if (std::strcmp(argv[1], c.name) == 0)
            return c.run(args);
    }
    std::fprintf(stderr, "best-hsectl: unknown command '%s' (see best-hsectl --help)\n", argv[1]);
    return best::cli::kExitUsage;
}
