// The subcommands of best-hsectl that use the HSM and the store. Each returns the process exit
// code (cli.h); `args` are the arguments after the command (and after the action of a group).
#pragma once

#include <string>
#include <vector>

namespace best::hsectl {

int runInit(const std::vector<std::string>& args);
int runStatus(const std::vector<std::string>& args);
int runSelftest(const std::vector<std::string>& args);

// Groups: args[0] is the action ("add", "list", ...).
int runSubscriber(const std::vector<std::string>& args);
int runSqn(const std::vector<std::string>& args);
int runEas(const std::vector<std::string>& args);
// `best-hsectl hsm init` (the name the KeyVault's messages use) is `init`.
int runHsm(const std::vector<std::string>& args);

// `aka-vector --imsi IMSI`: a vector through the HSM and the store.
int runAkaVectorStored(const std::vector<std::string>& args);

// Runs the action of a group, or prints the group's help.
struct Action {
    const char* name;
    int (*run)(const std::vector<std::string>&);
};
int runGroup(const char* group, const char* help, const Action* actions, std::size_t count,
             const std::vector<std::string>& args);

}  // namespace best::hsectl
