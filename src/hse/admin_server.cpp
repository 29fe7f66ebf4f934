#include "hse/admin_server.h"

#include <grp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "common/hex.h"
#include "common/log.h"

namespace best::hse {

namespace {

constexpr const char* kLog = "admin";

class JsonParser {
public:
    JsonParser(std::string_view t, std::size_t maxDepth) : t_(t), maxDepth_(maxDepth) {}

    Result<JsonValue> document() {
        JsonValue v;
        if (!value(v, 0))
            return makeError(AdminErrc::bad_request, "bad JSON: " + error_);
        ws();
        if (pos_ != t_.size())
            return makeError(AdminErrc::bad_request,
                             "bad JSON: trailing characters at offset " + std::to_string(pos_));
        return v;
    }

private:
    bool fail(std::string what) {
        if (error_.empty())
            error_ = what + " at offset " + std::to_string(pos_);
        return false;
    }
    void ws() {
        while (pos_ < t_.size() &&
               (t_[pos_] == ' ' || t_[pos_] == '\t' || t_[pos_] == '\n' || t_[pos_] == '\r'))
            ++pos_;
    }
    bool literal(std::string_view w) {
        if (t_.substr(pos_, w.size()) != w)
            return fail("unexpected token");
        pos_ += w.size();
        return true;
    }
    bool string(std::string& out) {
        if (pos_ >= t_.size() || t_[pos_] != '"')
            return fail("expected a string");
        ++pos_;
        while (pos_ < t_.size()) {
            const char c = t_[pos_++];
            if (c == '"')
                return true;
            if (static_cast<unsigned char>(c) < 0x20)
                return fail("control character in a string");
            if (c != '\\') {
                out += c;
                continue;
            }
            if (pos_ >= t_.size())
                break;
            const char e = t_[pos_++];
            switch (e) {
                case '"':
                case '\\':
                case '/':
                    out += e;
                    break;
                case 'b':
                    out += '\b';
                    break;
                case 'f':
                    out += '\f';
                    break;
                case 'n':
                    out += '\n';
                    break;
                case 'r':
                    out += '\r';
                    break;
                case 't':
                    out += '\t';
                    break;
                case 'u': {
                    if (pos_ + 4 > t_.size())
                        return fail("short \\u escape");
                    unsigned cp = 0;
                    for (int i = 0; i < 4; ++i) {
                        const int h = hexDigitValue(t_[pos_++]);
                        if (h < 0)
                            return fail("bad \\u escape");
                        cp = cp * 16 + static_cast<unsigned>(h);
                    }
                    if (cp >= 0xD800 && cp <= 0xDFFF)
                        return fail("surrogate escapes are not accepted");
                    if (cp < 0x80) {
                        out += static_cast<char>(cp);
                    } else if (cp < 0x800) {
                        out += static_cast<char>(0xC0 | (cp >> 6));
                        out += static_cast<char>(0x80 | (cp & 0x3F));
                    } else {
                        out += static_cast<char>(0xE0 | (cp >> 12));
                        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
                        out += static_cast<char>(0x80 | (cp & 0x3F));
                    }
                    break;
                }
                default:
                    return fail("bad escape");
            }
        }
        return fail("unterminated string");
    }
    bool number(JsonValue& v) {
        const std::size_t start = pos_;
        if (pos_ < t_.size() && t_[pos_] == '-')
            ++pos_;
        const std::size_t digits = pos_;
        while (pos_ < t_.size() && t_[pos_] >= '0' && t_[pos_] <= '9')
            ++pos_;
        if (pos_ == digits)
            return fail("bad number");
        if (t_[digits] == '0' && pos_ - digits > 1)
            return fail("leading zero");
        if (pos_ < t_.size() && t_[pos_] == '.') {
            ++pos_;
            const std::size_t f = pos_;
            while (pos_ < t_.size() && t_[pos_] >= '0' && t_[pos_] <= '9')
                ++pos_;
            if (pos_ == f)
                return fail("bad number");
        }
        if (pos_ < t_.size() && (t_[pos_] == 'e' || t_[pos_] == 'E')) {
            ++pos_;
            if (pos_ < t_.size() && (t_[pos_] == '+' || t_[pos_] == '-'))
                ++pos_;
            const std::size_t f = pos_;
            while (pos_ < t_.size() && t_[pos_] >= '0' && t_[pos_] <= '9')
                ++pos_;
            if (pos_ == f)
                return fail("bad number");
        }
        v.type = JsonValue::Type::number;
        v.text = std::string(t_.substr(start, pos_ - start));
        v.number = std::strtod(v.text.c_str(), nullptr);
        return true;
    }
    bool value(JsonValue& v, std::size_t depth) {
        if (depth > maxDepth_)
            return fail("nested too deeply");
        ws();
        if (pos_ >= t_.size())
            return fail("unexpected end");
        const char c = t_[pos_];
        if (c == '{') {
            ++pos_;
            v.type = JsonValue::Type::object;
            ws();
            if (pos_ < t_.size() && t_[pos_] == '}') {
                ++pos_;
                return true;
            }
            for (;;) {
                ws();
                std::string k;
                if (!string(k))
                    return false;
                ws();
                if (pos_ >= t_.size() || t_[pos_] != ':')
                    return fail("expected ':'");
                ++pos_;
                JsonValue m;
                if (!value(m, depth + 1))
                    return false;
                v.members.emplace_back(std::move(k), std::move(m));
                ws();
                if (pos_ < t_.size() && t_[pos_] == ',') {
                    ++pos_;
                    continue;
                }
                if (pos_ < t_.size() && t_[pos_] == '}') {
                    ++pos_;
                    return true;
                }
                return fail("expected ',' or '}'");
            }
        }
        if (c == '[') {
            ++pos_;
            v.type = JsonValue::Type::array;
            ws();
            if (pos_ < t_.size() && t_[pos_] == ']') {
                ++pos_;
                return true;
            }
            for (;;) {
                JsonValue m;
                if (!value(m, depth + 1))
                    return false;
                v.items.push_back(std::move(m));
                ws();
                if (pos_ < t_.size() && t_[pos_] == ',') {
                    ++pos_;
                    continue;
                }
                if (pos_ < t_.size() && t_[pos_] == ']') {
                    ++pos_;
                    return true;
                }
                return fail("expected ',' or ']'");
            }
        }
        if (c == '"') {
            v.type = JsonValue::Type::string;
            return string(v.text);
        }
        if (c == 't') {
            v.type = JsonValue::Type::boolean;
            v.boolean = true;
            return literal("true");
        }
        if (c == 'f') {
            v.type = JsonValue::Type::boolean;
            return literal("false");
        }
        if (c == 'n')
            return literal("null");
        return number(v);
    }

    std::string_view t_;
    std::size_t pos_ = 0;
    std::size_t maxDepth_;
    std::string error_;
};

bool validWord(std::string_view w) {
    for (char c : w)
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
            return false;
    return !w.empty();
}

}  // namespace

// ---- JsonValue

const JsonValue* JsonValue::get(std::string_view key) const {
    for (const auto& [k, v] : members)
        if (k == key)
            return &v;
    return nullptr;
}

std::string JsonValue::str(std::string_view key, std::string fallback) const {
    const JsonValue* v = get(key);
    if (v == nullptr || (v->type != Type::string && v->type != Type::number))
        return fallback;
    return v->text;
}

std::uint64_t JsonValue::uint(std::string_view key, std::uint64_t fallback) const {
    const JsonValue* v = get(key);
    if (v == nullptr || v->type != Type::number || v->number < 0)
        return fallback;
    return std::strtoull(v->text.c_str(), nullptr, 10);
}

bool JsonValue::flag(std::string_view key, bool fallback) const {
    const JsonValue* v = get(key);
    return v != nullptr && v->type == Type::boolean ? v->boolean : fallback;
}

Result<JsonValue> parseJson(std::string_view text, std::size_t maxDepth) {
    return JsonParser(text, maxDepth).document();
}

// ---- protocol

Result<AdminRequest> parseAdminRequest(std::string_view line) {
    if (line.size() > kAdminMaxLine)
        return makeError(AdminErrc::bad_request,
                         "request longer than " + std::to_string(kAdminMaxLine) + " octets");
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t'))
        line.remove_suffix(1);
    while (!line.empty() && (line.front() == ' ' || line.front() == '\t'))
        line.remove_prefix(1);
    if (line.empty())
        return makeError(AdminErrc::bad_request, "empty request");
    AdminRequest r;
    if (line.front() == '{') {
        auto j = parseJson(line);
        if (!j)
            return makeError(j.error());
        if (j->type != JsonValue::Type::object)
            return makeError(AdminErrc::bad_request, "a JSON request must be an object");
        for (const auto& [k, v] : j->members) {
            if (v.type != JsonValue::Type::string && v.type != JsonValue::Type::number)
                return makeError(AdminErrc::bad_request,
                                 "member '" + k + "' must be a string or a number");
            if (k == "command")
                r.command = v.text;
            else if (!r.args.emplace(k, v.text).second)
                return makeError(AdminErrc::bad_request, "member '" + k + "' given twice");
        }
        if (r.command.empty())
            return makeError(AdminErrc::bad_request, "no \"command\" member");
        // Normalise the command's spacing.
        std::istringstream words(r.command);
        std::string w, cmd;
        while (words >> w) {
            if (!validWord(w))
                return makeError(AdminErrc::bad_request, "bad command word '" + w + "'");
            cmd += (cmd.empty() ? "" : " ") + w;
        }
        r.command = cmd;
    } else {
        std::size_t pos = 0;
        bool inArgs = false;
        while (pos < line.size()) {
            while (pos < line.size() && (line[pos] == ' ' || line[pos] == '\t'))
                ++pos;
            if (pos >= line.size())
                break;
            std::size_t end = pos;
            while (end < line.size() && line[end] != ' ' && line[end] != '\t')
                ++end;
            const std::string_view tok = line.substr(pos, end - pos);
            pos = end;
            for (char c : tok)
                if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) == 0x7f)
                    return makeError(AdminErrc::bad_request, "control character in the request");
            const std::size_t eq = tok.find('=');
            if (eq == std::string_view::npos) {
                if (inArgs)
                    return makeError(AdminErrc::bad_request,
                                     "'" + std::string(tok) + "' after key=value arguments");
                if (!validWord(tok))
                    return makeError(AdminErrc::bad_request,
                                     "bad command word '" + std::string(tok) + "'");
                r.command += (r.command.empty() ? "" : " ") + std::string(tok);
                continue;
            }
            inArgs = true;
            const std::string key(tok.substr(0, eq));
            if (!validWord(key))
                return makeError(AdminErrc::bad_request, "bad argument name '" + key + "'");
            if (!r.args.emplace(key, std::string(tok.substr(eq + 1))).second)
                return makeError(AdminErrc::bad_request, "argument '" + key + "' given twice");
        }
        if (r.command.empty())
            return makeError(AdminErrc::bad_request, "no command");
    }
    return r;
}

std::string formatAdminRequest(const AdminRequest& r) {
    std::string s = r.command;
    for (const auto& [k, v] : r.args)
        s += " " + k + "=" + v;
    return s;
}

std::string adminError(std::string_view code, std::string_view message) {
    JsonOut o;
    o.begin().field("ok", false).field("error", code).field("message", message).end();
    return o.str();
}

bool adminPeerAllowed(uid_t uid, gid_t gid, const std::vector<gid_t>& supplementary,
                      uid_t daemonUid, gid_t socketGid) {
    if (uid == 0 || uid == daemonUid || gid == socketGid)
        return true;
    for (gid_t g : supplementary)
        if (g == socketGid)
            return true;
    return false;
}

std::vector<gid_t> processGroups(pid_t pid) {
    std::vector<gid_t> groups;
    std::ifstream f("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(f, line)) {
        if (line.rfind("Groups:", 0) != 0)
            continue;
        std::istringstream in(line.substr(7));
        unsigned long g = 0;
        while (in >> g)
            groups.push_back(static_cast<gid_t>(g));
        break;
    }
    return groups;
}

std::optional<gid_t> resolveGroup(const std::string& nameOrNumber) {
    if (nameOrNumber.empty())
        return std::nullopt;
    char* end = nullptr;
    errno = 0;
    const unsigned long v = std::strtoul(nameOrNumber.c_str(), &end, 10);
    if (*end == '\0' && errno == 0 && nameOrNumber[0] != '-')
        return static_cast<gid_t>(v);
    group g{};
    group* out = nullptr;
    std::vector<char> buf(16384);
    if (::getgrnam_r(nameOrNumber.c_str(), &g, buf.data(), buf.size(), &out) != 0 || out == nullptr)
        return std::nullopt;
    return g.gr_gid;
}

// ---- AdminServer

AdminServer::AdminServer(net::Loop& loop, Handler handler)
    : loop_(loop), handler_(std::move(handler)) {}

AdminServer::~AdminServer() {
    close();
}

Result<void> AdminServer::listen(const std::string& path, const std::string& group) {
    gid_ = ::getegid();
    if (!group.empty()) {
        auto g = resolveGroup(group);
        if (!g)
            return makeError(AdminErrc::io, "admin.group '" + group + "': no such group");
        gid_ = *g;
    }
    server_ = loop_.make<net::StreamServer>(true);
    // No window with a wider mode: the socket file is created 0660 under this umask.
    const mode_t old = ::umask(0117);
    auto r = server_->listenUnix(path, [this](net::StreamConnection& c) { onAccept(c); });
    ::umask(old);
    if (!r)
        return r;
    path_ = path;
    if (::chown(path.c_str(), ::geteuid(), gid_) != 0 || ::chmod(path.c_str(), 0660) != 0)
        return makeError(AdminErrc::io,
                         "cannot set owner/mode of " + path + ": " + std::strerror(errno));
    return {};
}

void AdminServer::close() {
    server_.reset();
    std::vector<net::StreamConnection*> all;
    for (auto& [c, _] : conns_)
        all.push_back(c);
    conns_.clear();
    for (auto* c : all) {
        c->setOnClosed(nullptr);
        c->close();
    }
    if (!path_.empty()) {
        ::unlink(path_.c_str());
        path_.clear();
    }
}

void AdminServer::onAccept(net::StreamConnection& c) {
    auto cred = c.peerCredentials();
    if (!cred ||
        !adminPeerAllowed(cred->uid, cred->gid, processGroups(cred->pid), ::geteuid(), gid_)) {
        ++refused_;
        log::warning(kLog, "admin connection refused: uid " +
                               (cred ? std::to_string(cred->uid) : std::string("unknown")) +
                               " is neither root, the daemon's user nor in group " +
                               std::to_string(gid_));
        c.write(adminError("permission_denied",
                           "not permitted: root, the daemon's user or the socket's group only") +
                "\n");
        c.closeAfterWrites();
        return;
    }
    Conn conn;
    conn.peer = *cred;
    conn.generation = nextGeneration_++;
    conns_.emplace(&c, std::move(conn));
    net::StreamConnection* cp = &c;
    c.setOnClosed([this, cp]() { conns_.erase(cp); });
    if (!c.startRead([this](net::StreamConnection& s, ByteView d) { onData(s, d); },
                     [](net::StreamConnection&) {}))
        c.close();
}

void AdminServer::onData(net::StreamConnection& c, ByteView data) {
    auto it = conns_.find(&c);
    if (it == conns_.end())
        return;
    it->second.buffer.append(reinterpret_cast<const char*>(data.data()), data.size());
    pump(c);
}

void AdminServer::pump(net::StreamConnection& c) {
    auto it = conns_.find(&c);
    if (it == conns_.end())
        return;
    Conn& conn = it->second;
    while (!conn.busy) {
        const std::size_t nl = conn.buffer.find('\n');
        if (nl == std::string::npos) {
            if (conn.buffer.size() > kAdminMaxLine) {
                c.stopRead();
                c.write(adminError("bad_request", "request line longer than " +
                                                      std::to_string(kAdminMaxLine) + " octets") +
                        "\n");
                c.closeAfterWrites();
                conns_.erase(it);
                c.setOnClosed(nullptr);
            }
            return;
        }
        const std::string line = conn.buffer.substr(0, nl);
        conn.buffer.erase(0, nl + 1);
        ++requests_;
        auto req = parseAdminRequest(line);
        if (!req) {
            c.write(adminError("bad_request", req.error().message) + "\n");
            continue;
        }
        conn.busy = true;
        const std::uint64_t gen = conn.generation;
        net::StreamConnection* cp = &c;
        auto done = std::make_shared<bool>(false);
        Reply reply = [this, cp, gen, done](std::string response) {
            if (*done)
                return;
            *done = true;
            auto i = conns_.find(cp);
            if (i == conns_.end() || i->second.generation != gen)
                return;  // the client went away
            cp->write(response + "\n");
            i->second.busy = false;
            pump(*cp);
        };
        log::info(kLog, "uid " + std::to_string(conn.peer.uid) + ": " + req->command);
        handler_(*req, conn.peer, std::move(reply));
        // `conn` may be gone now (the handler replied and the client closed): re-find.
        it = conns_.find(&c);
        if (it == conns_.end() || it->second.generation != gen)
            return;
    }
}

}  // namespace best::hse
