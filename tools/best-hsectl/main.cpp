// best-hsectl: provisioning and operations CLI of the HSE.
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "aka_vector.h"
#include "cli.h"
#include "common/log.h"
#include "common/secure.h"
#if BEST_HSECTL_HSM
#include "admin_client.h"
#include "commands.h"
#include "context.h"
#endif

namespace {

constexpr const char* kHelp =
#if BEST_HSECTL_HSM
    "usage: best-hsectl [GLOBAL OPTIONS] COMMAND [ACTION] [OPTIONS]\n"
    "\n"
    "Commands:\n"
    "  init         create (or --verify) the HSM token's three keys; never overwrites them\n"
    "  status       token, mechanisms, health probe, store counts, whether a daemon runs;\n"
    "               with --daemon: the running daemon's status from its admin socket\n"
    "  subscriber   add | import | list | show | remove\n"
    "  sqn          show | set | resync (from a USIM's AUTS, through the HSM); set and resync\n"
    "               go through the daemon's admin socket while it runs\n"
    "  ue           show | refresh: a UE's sessions and key sets, or a key refresh (daemon)\n"
    "  reload       make the running daemon re-read its configuration\n"
    "  eas          add | list | remove (the EAS registry)\n"
    "  selftest     Milenage and KDF vectors through the HSM, compared with software\n"
    "  aka-vector   a vector through the HSM and the store (--imsi), or in software from key\n"
    "               files\n"
    "  hsm init     the same as init\n"
    "\n"
    "Global options (before or after the command): --config FILE (the best-hsed YAML),\n"
    "--module PATH, --token LABEL|URI, --pin-file FILE, --store FILE, --json.\n"
#else
    "usage: best-hsectl COMMAND [OPTIONS]\n"
    "\n"
    "Commands:\n"
    "  aka-vector   compute a Milenage authentication vector or resync (software, from key "
    "files)\n"
#endif
    "\n"
    "Run 'best-hsectl COMMAND --help' for a command's options. Keys are read from files or\n"
    "standard input, never from the command line (except --test-keys for published vectors).\n"
    "Exit codes: 0 done, 1 a check failed, 2 bad arguments or input, 3 internal error,\n"
    "4 refused by the current state (unknown or duplicate IMSI/EAS, token keys exist),\n"
    "5 a daemon holds the store, 6 the HSM or the store cannot be used,\n"
    "7 the daemon's admin socket cannot be used.\n";

struct Command {
    const char* name;
    int (*run)(const std::vector<std::string>&);
};

constexpr Command kCommands[] = {
    {"aka-vector", best::hsectl::runAkaVector},
#if BEST_HSECTL_HSM
    {"init", best::hsectl::runInit},
    {"status", best::hsectl::runStatus},
    {"subscriber", best::hsectl::runSubscriber},
    {"sqn", best::hsectl::runSqn},
    {"ue", best::hsectl::runUe},
    {"reload", best::hsectl::runReload},
    {"eas", best::hsectl::runEas},
    {"selftest", best::hsectl::runSelftest},
    {"hsm", best::hsectl::runHsm},
#endif
};

}  // namespace

int main(int argc, char** argv) {
    best::hardenProcess();
    // Library notices (the vault's start-up line) stay out of the command's output.
    best::log::setLevel(best::log::Level::warning);
    std::vector<std::string> all(argv + 1, argv + argc);
#if BEST_HSECTL_HSM
    // Global options may come before the command: move them after it.
    std::vector<std::string> globals;
    std::size_t i = 0;
    while (i < all.size() && all[i].rfind("--", 0) == 0 && all[i].size() > 2) {
        std::string name = all[i].substr(2);
        const auto eq = name.find('=');
        if (eq != std::string::npos)
            name.resize(eq);
        bool takesValue = false;
        if (!best::hsectl::isGlobalOption(name, takesValue))
            break;
        globals.push_back(all[i++]);
        if (takesValue && eq == std::string::npos && i < all.size())
            globals.push_back(all[i++]);
    }
    all.erase(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(i));
    all.insert(all.end(), globals.begin(), globals.end());
#endif
    if (all.empty() || all[0] == "--help" || all[0] == "-h" || all[0] == "help") {
        std::fputs(kHelp, all.empty() ? stderr : stdout);
        return all.empty() ? best::cli::kExitUsage : best::cli::kExitOk;
    }
    const std::vector<std::string> args(all.begin() + 1, all.end());
    for (const auto& c : kCommands) {
        if (all[0] == c.name)
            return c.run(args);
    }
    std::fprintf(stderr, "best-hsectl: unknown command '%s' (see best-hsectl --help)\n",
                 all[0].c_str());
    return best::cli::kExitUsage;
}
