// Small command-line toolkit for best-hsectl: options, exit codes, secret input from files.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/bytes.h"
#include "common/hex.h"
#include "common/result.h"
#include "common/secure.h"

namespace best::cli {

// Documented exit codes (docs/operations.md, `best-hsectl --help`).
enum ExitCode : int {
    kExitOk = 0,
    kExitCheckFailed = 1,  // a verification said no (MAC-S, self-test, health probe, blob binding)
    kExitUsage = 2,        // bad arguments, bad hex, wrong lengths, unreadable files, bad CSV
    kExitInternal = 3,     // an unexpected failure (OpenSSL, I/O)
    kExitRefused = 4,      // the state forbids it: unknown or duplicate IMSI/EAS, keys exist
    kExitDaemon = 5,       // a running daemon holds the store: changes must go through it
    kExitUnavailable = 6,  // the HSM or the store cannot be used (module, token, PIN, file)
};

// usage and input exit with kExitUsage; the others carry their own exit code (HexErrc shares
// the generic domain with codes 1..3, hence the distinct values).
enum class CliErrc { usage = 1, input, unavailable = 100, refused, check_failed };
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

// Reads a non-secret value from a file ("-" = standard input), such as an AUTS or a K wrapped
// under a transport key: hex text (surrounding whitespace ignored) when the whole file is hex
// digits and whitespace, else the raw octets. Its size must be in [minSize, maxSize].
Result<Bytes> readValueFile(const std::string& path, std::size_t minSize, std::size_t maxSize,
                            std::string_view what, bool& stdinUsed);

// Reads a whole file ("-" = standard input) of at most `maxSize` octets into a wiped buffer
// (for files that hold keys, such as an import CSV).
Result<SecureBuffer> readWholeFile(const std::string& path, std::size_t maxSize,
                                   std::string_view what, bool& stdinUsed);

// Exactly N octets of hex; the message names `what`.
template <std::size_t N>
Result<std::array<std::uint8_t, N>> hexArray(std::string_view text, std::string_view what) {
    std::array<std::uint8_t, N> out{};
    auto r = fromHexInto(text, what, out);
    if (!r)
        return tl::unexpected(r.error());
    return out;
}

// A decimal number in [min, max]; the message names `what`.
Result<std::uint64_t> parseUnsigned(std::string_view text, std::string_view what, std::uint64_t min,
                                    std::uint64_t max);

}  // namespace best::cli
