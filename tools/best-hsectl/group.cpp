#include <cstdio>
#include <cstring>

#include "cli.h"
#include "commands.h"

namespace best::hsectl {

int runGroup(const char* group, const char* help, const Action* actions, std::size_t count,
             const std::vector<std::string>& args) {
    if (args.empty()) {
        std::fprintf(stderr, "best-hsectl %s: missing action\n", group);
        std::fputs(help, stderr);
        return cli::kExitUsage;
    }
    const std::string& a = args.front();
    if (a == "--help" || a == "-h" || a == "help") {
        std::fputs(help, stdout);
        return cli::kExitOk;
    }
    const std::vector<std::string> rest(args.begin() + 1, args.end());
    for (std::size_t i = 0; i < count; ++i) {
        if (a == actions[i].name)
            return actions[i].run(rest);
    }
    std::fprintf(stderr, "best-hsectl %s: unknown action '%s' (see best-hsectl %s --help)\n", group,
                 a.c_str(), group);
    return cli::kExitUsage;
}

}  // namespace best::hsectl
