#pragma once

#include <string>
#include <vector>

namespace best::hsectl {

// `best-hsectl aka-vector ...`; returns the process exit code.
int runAkaVector(const std::vector<std::string>& args);
extern const char* const kAkaVectorHelp;

}  // namespace best::hsectl
