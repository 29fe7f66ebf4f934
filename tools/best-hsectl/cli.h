// Small command-line toolkit for best-hsectl: options, exit codes, secret input from files.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "common/secure.h"

namespace best::cli {

// Documented exit codes (docs/operations.md, `best-hsectl --help`).
enum ExitCode : int {
    kExitOk = 0,
    kExitCheckFailed = 1,  // a verification said no (e.g. MAC-S check failed)
    kExitUsage = 2,        // bad arguments, bad hex, wrong lengths, unreadable files
    kExitInternal = 3,     // an unexpected failure (OpenSSL, I/O)
};

enum class CliErrc { usage = 1, input };
inline ErrorDomain errorDomainOf(CliErrc) {
    return ErrorDomain::generic;
}

struct OptionSpec {
    std::string name;  // without leading "--"
    bool takesValue = true;
};

// Parsed "--name value" / "--name=value" / "--flag" options; no positional arguments.
class Options {
public:
    static Result<Options> parse(const std::vector<std::string>& args,
                                 const std::vector<OptionSpec>& specs);
    bool has(std::string_view name) const;
    std::optional<std::string> get(std::string_view name) const;

private:
    std::map<std::string, std::string, std::less<>> values_;
};

// Reads a secret value of exactly `size` octets from a file ("-" = standard input): hex text
// (whitespace ignored) or exactly `size` raw octets. The file's bytes are wiped after use.
// `stdinUsed` guards against two values both read from standard input.
Result<SecureBuffer> readSecretFile(const std::string& path, std::size_t size,
                                    std::string_view what, bool& stdinUsed);

}  // namespace best::cli
