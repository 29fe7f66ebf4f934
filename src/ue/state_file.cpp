#include "ue/state_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <string_view>
#include <vector>

#include <openssl/evp.h>

#include "common/hex.h"
#include "crypto/ossl.h"
#include "ue/ue_error.h"

namespace best::ue {

namespace {

constexpr std::string_view kMagic = "best-ue-state";
constexpr std::size_t kMaxFileSize = 16 * 1024;
constexpr std::size_t kBufferSize = 4096;  // a state needs < 1 KiB

std::string errnoText(int err) {
    return std::strerror(err);
}

tl::unexpected<Error> corrupt(std::string_view path, std::string what) {
    std::string m = "state file";
    if (!path.empty()) {
        m += " '";
        m += path;
        m += "'";
    }
    m += " is corrupt: ";
    m += what;
    return makeError(StateFileErrc::corrupt, std::move(m));
}

// Appends into a SecureBuffer of fixed capacity (never reallocates, so no unwiped copy of the
// KInt hex is left behind).
class SecretWriter {
public:
    SecretWriter() : buf_(kBufferSize) {}
    bool ok() const noexcept { return ok_; }
    void text(std::string_view s) {
        if (used_ + s.size() > buf_.size()) {
            ok_ = false;
            return;
        }
        std::memcpy(buf_.data() + used_, s.data(), s.size());
        used_ += s.size();
    }
    void hex(ByteView v) {
        static constexpr char digits[] = "0123456789abcdef";
        if (used_ + 2 * v.size() > buf_.size()) {
            ok_ = false;
            return;
        }
        for (std::uint8_t b : v) {
            buf_.data()[used_++] = static_cast<std::uint8_t>(digits[b >> 4]);
            buf_.data()[used_++] = static_cast<std::uint8_t>(digits[b & 0x0F]);
        }
    }
    void be64(std::uint64_t v) {
        std::array<std::uint8_t, 8> b{};
        putBe64(b.data(), v);
        hex(b);
    }
    void number(std::int64_t v) {
        std::array<char, 24> s{};
        auto r = std::to_chars(s.data(), s.data() + s.size(), v);
        text(std::string_view(s.data(), static_cast<std::size_t>(r.ptr - s.data())));
    }
    ByteView written() const noexcept { return ByteView(buf_.data(), used_); }

private:
    SecureBuffer buf_;
    std::size_t used_ = 0;
    bool ok_ = true;
};

Result<std::array<std::uint8_t, 32>> sha256(ByteView data) {
    std::array<std::uint8_t, 32> md{};
    unsigned int len = 0;
    const auto& p = crypto::Provider::instance();
    if (!p.ok() || EVP_Digest(data.data(), data.size(), md.data(), &len, p.sha256(), nullptr) != 1)
        return crypto::opensslError("EVP_Digest(SHA-256)");
    return md;
}

std::string_view kaName(crypto::KeyAgreement ka) noexcept {
    switch (ka) {
        case crypto::KeyAgreement::umts:
            return "umts";
        case crypto::KeyAgreement::eps:
            return "eps";
        case crypto::KeyAgreement::fiveG:
            return "5g";
    }
    return "?";
}

void writeKeySet(SecretWriter& w, std::string_view role, const KeySet& s) {
    w.text("key-set ");
    w.text(role);
    w.text(" kid=");
    w.number(s.kid);
    w.text(" ka=");
    w.text(kaName(s.keyAgreement));
    w.text(" plmn=");
    if (s.plmn)
        w.hex(*s.plmn);
    else
        w.text("-");
    w.text(" created=");
    w.number(s.created);
    w.text(" lifetime=");
    w.number(s.lifetime);
    w.text(" last-nonce=");
    if (s.lastNonce)
        w.be64(*s.lastNonce);
    else
        w.text("-");
    w.text(" hse-id=");
    w.hex(ByteView(reinterpret_cast<const std::uint8_t*>(s.hseId.data()), s.hseId.size()));
    w.text(" kint=");
    w.hex(s.kint.view());
    w.text("\n");
}

Result<void> validateKeySet(const KeySet& s, std::string_view path) {
    if (s.kid < 1 || s.kid > 7)
        return corrupt(path, "key set KID " + std::to_string(s.kid) + " is not 1..7");
    if (s.hseId.empty() || s.hseId.size() > 64)
        return corrupt(path, "key set HSE Id must be 1..64 octets");
    if (s.keyAgreement != crypto::KeyAgreement::umts && !s.plmn)
        return corrupt(path, "an EPS or 5G key set needs its serving network");
    if (s.created < 0)
        return corrupt(path, "key set creation time is negative");
    return {};
}

// ---- parsing ----------------------------------------------------------------------------------

std::vector<std::string_view> split(std::string_view s, char sep) {
    std::vector<std::string_view> out;
    std::size_t pos = 0;
    while (true) {
        const std::size_t e = s.find(sep, pos);
        if (e == std::string_view::npos) {
            out.push_back(s.substr(pos));
            return out;
        }
        out.push_back(s.substr(pos, e - pos));
        pos = e + 1;
    }
}

template <typename T>
bool parseDecimal(std::string_view s, T& out) {
    if (s.empty() || (s.size() > 1 && s[0] == '0'))
        return false;
    auto r = std::from_chars(s.data(), s.data() + s.size(), out);
    return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

bool parseBe64(std::string_view s, std::optional<std::uint64_t>& out) {
    if (s == "-") {
        out.reset();
        return true;
    }
    std::array<std::uint8_t, 8> b{};
    if (s.size() != 16 || !fromHexInto(s, "nonce", b))
        return false;
    out = getBe64(b.data());
    return true;
}

// "name=value" with the expected name.
bool field(std::string_view token, std::string_view name, std::string_view& value) {
    if (token.size() <= name.size() || token.substr(0, name.size()) != name ||
        token[name.size()] != '=')
        return false;
    value = token.substr(name.size() + 1);
    return true;
}

Result<KeySet> parseKeySet(const std::vector<std::string_view>& t, std::string_view path) {
    // t[0] = "key-set", t[1] = role, then eight fields.
    if (t.size() != 10)
        return corrupt(path, "a key-set line has 10 fields");
    static constexpr std::array<std::string_view, 8> kNames = {
        "kid", "ka", "plmn", "created", "lifetime", "last-nonce", "hse-id", "kint"};
    std::array<std::string_view, 8> v{};
    for (std::size_t i = 0; i < kNames.size(); ++i)
        if (!field(t[i + 2], kNames[i], v[i]))
            return corrupt(path, "key-set field " + std::to_string(i + 1) + " is not '" +
                                     std::string(kNames[i]) + "=...'");
    KeySet s;
    unsigned kid = 0;
    if (!parseDecimal(v[0], kid) || kid > 255)
        return corrupt(path, "bad kid");
    s.kid = static_cast<std::uint8_t>(kid);
    if (v[1] == "umts")
        s.keyAgreement = crypto::KeyAgreement::umts;
    else if (v[1] == "eps")
        s.keyAgreement = crypto::KeyAgreement::eps;
    else if (v[1] == "5g")
        s.keyAgreement = crypto::KeyAgreement::fiveG;
    else
        return corrupt(path, "bad ka");
    if (v[2] != "-") {
        crypto::PlmnId plmn{};
        if (v[2].size() != 6 || !fromHexInto(v[2], "plmn", plmn))
            return corrupt(path, "bad plmn");
        s.plmn = plmn;
    }
    if (!parseDecimal(v[3], s.created))
        return corrupt(path, "bad created");
    if (!parseDecimal(v[4], s.lifetime))
        return corrupt(path, "bad lifetime");
    if (!parseBe64(v[5], s.lastNonce))
        return corrupt(path, "bad last-nonce");
    auto hse = fromHex(v[6], "hse-id");
    if (!hse)
        return corrupt(path, "bad hse-id");
    s.hseId.assign(hse->begin(), hse->end());
    if (v[7].size() != 64 || !fromHexInto(v[7], "kint", s.kint.mutableView()))
        return corrupt(path, "bad kint");
    if (auto ok = validateKeySet(s, path); !ok)
        return tl::unexpected(ok.error());
    return s;
}

Result<UeState> decodeWithPath(ByteView bytes, std::string_view path) {
    const std::string_view text(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    // Version first, so a file of another version says so instead of "corrupt".
    const std::size_t firstEnd = text.find('\n');
    if (firstEnd == std::string_view::npos)
        return corrupt(path, "no complete first line");
    const auto first = split(text.substr(0, firstEnd), ' ');
    if (first.size() != 2 || first[0] != kMagic)
        return corrupt(path, "it does not start with '" + std::string(kMagic) + " <version>'");
    int version = 0;
    if (!parseDecimal(first[1], version))
        return corrupt(path, "bad version number");
    if (version != kStateFileVersion) {
        std::string m = "state file";
        if (!path.empty())
            m += " '" + std::string(path) + "'";
        return makeError(StateFileErrc::wrong_version,
                         m + " has format version " + std::to_string(version) +
                             "; this build reads version " + std::to_string(kStateFileVersion));
    }
    // Checksum: the last line.
    if (text.empty() || text.back() != '\n')
        return corrupt(path, "it does not end with a line end");
    const std::size_t lastStart = text.rfind('\n', text.size() - 2);
    if (lastStart == std::string_view::npos)
        return corrupt(path, "no checksum line");
    const std::string_view body = text.substr(0, lastStart + 1);
    const auto sumLine = split(text.substr(lastStart + 1, text.size() - lastStart - 2), ' ');
    std::array<std::uint8_t, 32> expected{};
    if (sumLine.size() != 2 || sumLine[0] != "sha256" || sumLine[1].size() != 64 ||
        !fromHexInto(sumLine[1], "sha256", expected))
        return corrupt(path, "the last line is not 'sha256 <64 hex digits>'");
    auto actual = sha256(ByteView(bytes.data(), body.size()));
    if (!actual)
        return tl::unexpected(actual.error());
    if (!constantTimeEqual(*actual, expected))
        return corrupt(path, "the checksum does not match its content");

    UeState state;
    auto lines = split(body.substr(firstEnd + 1), '\n');
    lines.pop_back();  // empty piece after the final line end
    std::size_t i = 0;
    auto tokens = [&](std::size_t k) { return split(lines[k], ' '); };
    if (i >= lines.size())
        return corrupt(path, "missing 'imsi' line");
    {
        const auto t = tokens(i++);
        if (t.size() != 2 || t[0] != "imsi")
            return corrupt(path, "line 2 is not 'imsi <digits>|-'");
        if (t[1] != "-") {
            if (t[1].empty() || t[1].size() > 15 ||
                t[1].find_first_not_of("0123456789") != std::string_view::npos)
                return corrupt(path, "bad imsi");
            state.imsi = std::string(t[1]);
        }
    }
    if (i >= lines.size())
        return corrupt(path, "missing 'last-nonce' line");
    {
        const auto t = tokens(i++);
        if (t.size() != 2 || t[0] != "last-nonce" || !parseBe64(t[1], state.lastNonce))
            return corrupt(path, "line 3 is not 'last-nonce <16 hex digits>|-'");
    }
    while (i < lines.size()) {
        const auto t = tokens(i++);
        if (t.size() < 2 || t[0] != "key-set")
            return corrupt(path, "line " + std::to_string(i + 1) + " is not a key-set line");
        auto set = parseKeySet(t, path);
        if (!set)
            return tl::unexpected(set.error());
        if (t[1] == "current" && !state.current && !state.pending)
            state.current = std::move(*set);
        else if (t[1] == "pending" && !state.pending)
            state.pending = std::move(*set);
        else
            return corrupt(
                path, "key-set role '" + std::string(t[1]) + "' repeated, out of order or unknown");
    }
    if (state.current && state.pending && state.current->kid == state.pending->kid)
        return corrupt(path, "current and pending key sets have the same KID");
    return state;
}

// Reads the whole file (at most kMaxFileSize) into a wiped buffer.
Result<SecureBuffer> readAll(int fd, const std::string& path, std::size_t size) {
    SecureBuffer buf(size);
    std::size_t got = 0;
    while (got < size) {
        const ssize_t n = ::read(fd, buf.data() + got, size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return makeError(StateFileErrc::io, "read '" + path + "': " + errnoText(errno));
        if (n == 0)
            return corrupt(path, "it shrank while being read");
        got += static_cast<std::size_t>(n);
    }
    return buf;
}

class Fd {
public:
    explicit Fd(int fd) noexcept : fd_(fd) {}
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    ~Fd() { reset(); }
    int get() const noexcept { return fd_; }
    bool isValid() const noexcept { return fd_ >= 0; }
    int release() noexcept {
        const int f = fd_;
        fd_ = -1;
        return f;
    }
    void reset() noexcept {
        if (fd_ >= 0)
            ::close(fd_);
        fd_ = -1;
    }

private:
    int fd_;
};

std::string dirOf(const std::string& path) {
    const std::size_t slash = path.rfind('/');
    if (slash == std::string::npos)
        return ".";
    if (slash == 0)
        return "/";
    return path.substr(0, slash);
}

}  // namespace

Result<SecureBuffer> encodeState(const UeState& state) {
    for (const auto* s : {&state.current, &state.pending})
        if (*s)
            if (auto ok = validateKeySet(**s, {}); !ok)
                return makeError(UeErrc::invalid_settings, "cannot save: " + ok.error().message);
    if (state.current && state.pending && state.current->kid == state.pending->kid)
        return makeError(UeErrc::invalid_settings, "current and pending sets share a KID");
    SecretWriter w;
    w.text(kMagic);
    w.text(" ");
    w.number(kStateFileVersion);
    w.text("\nimsi ");
    w.text(state.imsi.empty() ? std::string_view("-") : std::string_view(state.imsi));
    w.text("\nlast-nonce ");
    if (state.lastNonce)
        w.be64(*state.lastNonce);
    else
        w.text("-");
    w.text("\n");
    if (state.current)
        writeKeySet(w, "current", *state.current);
    if (state.pending)
        writeKeySet(w, "pending", *state.pending);
    auto sum = sha256(w.written());
    if (!sum)
        return tl::unexpected(sum.error());
    w.text("sha256 ");
    w.hex(*sum);
    w.text("\n");
    if (!w.ok())
        return makeError(UeErrc::invalid_settings, "state too large for its file");
    return SecureBuffer(w.written());
}

Result<UeState> decodeState(ByteView text) {
    return decodeWithPath(text, {});
}

Result<UeState> FileStateStore::load() const {
    Fd fd(::open(path_.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (!fd.isValid()) {
        if (errno == ENOENT)
            return UeState{};
        return makeError(StateFileErrc::io, "open '" + path_ + "': " + errnoText(errno));
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0)
        return makeError(StateFileErrc::io, "stat '" + path_ + "': " + errnoText(errno));
    if (!S_ISREG(st.st_mode))
        return makeError(StateFileErrc::insecure_mode, "'" + path_ + "' is not a regular file");
    if ((st.st_mode & 077) != 0) {
        char mode[8];
        std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
        return makeError(StateFileErrc::insecure_mode,
                         "state file '" + path_ + "' has mode " + mode +
                             "; it holds keys and must be 0600 (chmod 600 it)");
    }
    if (st.st_size < 0 || static_cast<std::size_t>(st.st_size) > kMaxFileSize)
        return corrupt(path_, "larger than " + std::to_string(kMaxFileSize) + " octets");
    auto buf = readAll(fd.get(), path_, static_cast<std::size_t>(st.st_size));
    if (!buf)
        return tl::unexpected(buf.error());
    return decodeWithPath(buf->view(), path_);
}

Result<void> FileStateStore::save(const UeState& state) {
    auto text = encodeState(state);
    if (!text)
        return tl::unexpected(text.error());
    const std::string dir = dirOf(path_);
    std::string tmpl = path_ + ".tmp.XXXXXX";
    Fd fd(::mkostemp(tmpl.data(), O_CLOEXEC));
    if (!fd.isValid())
        return makeError(StateFileErrc::io,
                         "create a temporary file next to '" + path_ + "': " + errnoText(errno));
    auto fail = [&](const char* what) {
        const int err = errno;
        fd.reset();
        ::unlink(tmpl.c_str());
        return makeError(StateFileErrc::io,
                         std::string(what) + " '" + tmpl + "': " + errnoText(err));
    };
    if (::fchmod(fd.get(), 0600) != 0)
        return fail("chmod");
    std::size_t done = 0;
    while (done < text->size()) {
        const ssize_t n = ::write(fd.get(), text->data() + done, text->size() - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return fail("write");
        done += static_cast<std::size_t>(n);
    }
    if (::fsync(fd.get()) != 0)
        return fail("fsync");
    if (::close(fd.release()) != 0)
        return fail("close");
    if (::rename(tmpl.c_str(), path_.c_str()) != 0)
        return fail("rename over the state file from");
    Fd dfd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!dfd.isValid() || ::fsync(dfd.get()) != 0)
        return makeError(StateFileErrc::io, "fsync directory '" + dir + "': " + errnoText(errno));
    return {};
}

}  // namespace best::ue
