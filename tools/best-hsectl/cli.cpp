#include "cli.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
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

namespace best::cli {

Result<SecureBuffer> readWholeFile(const std::string& path, std::size_t maxSize,
                                   std::string_view what, bool& stdinUsed) {
    int fd = -1;
    const bool isStdin = path == "-";
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
    const auto closeFd = [&] {
        if (!isStdin)
            ::close(fd);
    };
    SecureBuffer buf(std::min<std::size_t>(4096, maxSize + 1));
    std::size_t used = 0;
    for (;;) {
        if (used == buf.size()) {
            if (buf.size() > maxSize) {
                closeFd();
                return makeError(CliErrc::input, std::string(what) + " file '" + path +
                                                     "' is larger than " + std::to_string(maxSize) +
                                                     " octets");
            }
            // Grow by copying into a larger wiped buffer; the old one wipes itself.
            SecureBuffer bigger(std::min(maxSize + 1, buf.size() * 2));
            std::copy(buf.data(), buf.data() + used, bigger.data());
            buf = std::move(bigger);
        }
        const ssize_t n = ::read(fd, buf.data() + used, buf.size() - used);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            const int e = errno;
            closeFd();
            return makeError(CliErrc::input,
                             std::string(what) + " file '" + path + "': " + std::strerror(e));
        }
        if (n == 0)
            break;
        used += static_cast<std::size_t>(n);
    }
    closeFd();
    if (used > maxSize) {
        return makeError(CliErrc::input, std::string(what) + " file '" + path +
                                             "' is larger than " + std::to_string(maxSize) +
                                             " octets");
    }
    SecureBuffer out(ByteView(buf.data(), used));
    return out;
}

Result<Bytes> readValueFile(const std::string& path, std::size_t minSize, std::size_t maxSize,
                            std::string_view what, bool& stdinUsed) {
    auto raw = readWholeFile(path, 4096, what, stdinUsed);
    if (!raw)
        return tl::unexpected(raw.error());
    std::string_view text(reinterpret_cast<const char*>(raw->data()), raw->size());
    const bool isText = text.find_first_not_of("0123456789abcdefABCDEF \t\r\n") == text.npos;
    Bytes value;
    if (isText) {
        auto b = fromHex(text, what);
        if (!b)
            return tl::unexpected(b.error());
        value = std::move(*b);
    } else {
        value.assign(raw->data(), raw->data() + raw->size());
    }
    if (value.size() < minSize || value.size() > maxSize) {
        const std::string expected =
            minSize == maxSize ? std::to_string(minSize)
                               : std::to_string(minSize) + " to " + std::to_string(maxSize);
        return makeError(HexErrc::wrong_length, std::string(what) + ": expected " + expected +
                                                    " octets, got " + std::to_string(value.size()));
    }
    return value;
}

Result<std::uint64_t> parseUnsigned(std::string_view text, std::string_view what, std::uint64_t min,
                                    std::uint64_t max) {
    const auto bad = [&] {
        return makeError(CliErrc::usage, std::string(what) + " must be a number from " +
                                             std::to_string(min) + " to " + std::to_string(max) +
                                             ", got '" + std::string(text) + "'");
    };
    if (text.empty() || text.size() > 20)
        return bad();
    std::uint64_t v = 0;
    for (const char c : text) {
        if (c < '0' || c > '9')
            return bad();
        const auto d = static_cast<std::uint64_t>(c - '0');
        if (v > (UINT64_MAX - d) / 10)
            return bad();
        v = v * 10 + d;
    }
    if (v < min || v > max)
        return bad();
    return v;
}

}  // namespace best::cli
