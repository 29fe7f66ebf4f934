// Runs a program with arguments and optional standard input; captures its output and status.
#pragma once

#include <string>
#include <vector>

namespace best::test {

struct ProcessResult {
    int exitCode = -1;  // -1 when killed by a signal
    std::string out;
    std::string err;
};

ProcessResult runProcess(const std::string& program, const std::vector<std::string>& args,
                         const std::string& stdinData = {});

}  // namespace best::test
