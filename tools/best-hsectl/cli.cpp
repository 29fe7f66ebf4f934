#include "cli.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/hex.h"

namespace best::cli {

Result<Options> Options::parse(const std::vector<std::string>& args,
                               const std::vector<OptionSpec>& specs) {
    Options out;
    for (std::size_t i = 0; i < args.size(); ++i) {
        const std::string& a = args[i];
        if (a.size() < 3 || a.compare(0, 2, "--") != 0) {
            return makeError(CliErrc::usage, "unexpected argument '" + a + "'");
        }
        std::string name = a.substr(2);
        std::optional<std::string> inlineValue;
        if (auto eq = name.find('='); eq != std::string::npos) {
            inlineValue = name.substr(eq + 1);
            name.resize(eq);
        }
        const OptionSpec* spec = nullptr;
        for (const auto& s : specs) {
            if (s.name == name)
                spec = &s;
        }
        if (spec == nullptr)
            return makeError(CliErrc::usage, "unknown option --" + name);
        if (out.values_.count(name) != 0) {
            return makeError(CliErrc::usage, "option --" + name + " given twice");
        }
        std::string value;
        if (spec->takesValue) {
            if (inlineValue) {
                value = *inlineValue;
            } else if (i + 1 < args.size()) {
                value = args[++i];
            } else {
                return makeError(CliErrc::usage, "option --" + name + " needs a value");
            }
        } else if (inlineValue) {
            return makeError(CliErrc::usage, "option --" + name + " takes no value");
        }
        out.values_.emplace(name, std::move(value));
    }
    return out;
}

bool Options::has(std::string_view name) const {
    return values_.find(name) != values_.end();
}

std::optional<std::string> Options::get(std::string_view name) const {
    auto it = values_.find(name);
    if (it == values_.end())
        return std::nullopt;
    return it->second;
}

Result<SecureBuffer> readSecretFile(const std::string& path, std::size_t size,
                                    std::string_view what, bool& stdinUsed) {
    int fd = -1;
    bool isStdin = path == "-";
    if (isStdin) {
        if (stdinUsed) {
            return makeError(CliErrc::usage, "only one value can be read from standard input");
        }
        stdinUsed = true;
        fd = STDIN_FILENO;
    } else {
        fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            return makeError(CliErrc::input,
                             std::string(what) + " file '" + path + "': " + std::strerror(errno));
        }
    }
    // Room for hex with whitespace and a comment-free line; anything larger is not a key file.
    SecureBuffer raw(4096);
    std::size_t used = 0;
    for (;;) {
        if (used == raw.size()) {
            if (!isStdin)
                ::close(fd);
            return makeError(CliErrc::input, std::string(what) + " file '" + path +
                                                 "' is too large to be a key file");
        }
        ssize_t n = ::read(fd, raw.data() + used, raw.size() - used);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            if (!isStdin)
                ::close(fd);
            return makeError(CliErrc::input,
                             std::string(what) + " file '" + path + "': " + std::strerror(e));
        }
        if (n == 0)
            break;
        used += static_cast<std::size_t>(n);
    }
    if (!isStdin)
        ::close(fd);

    SecureBuffer value(size, true);
    if (used == size) {
        // Exactly `size` octets: raw binary unless they all are hex digits (a 16-octet value
        // cannot be 16 hex digits, so there is no ambiguity).
        for (std::size_t i = 0; i < size; ++i)
            value.data()[i] = raw.data()[i];
        return value;
    }
    std::string_view text(reinterpret_cast<const char*>(raw.data()), used);
    auto r = fromHexInto(text, what, value.mutableView());
    if (!r)
        return tl::unexpected(r.error());
    return value;
}

}  // namespace best::cli
