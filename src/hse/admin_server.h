// best-hsed's admin socket (docs/operations.md, "Admin socket"): a UNIX stream socket of mode
// 0660 (owner the daemon's user, group from the config) served on the daemon's loop. One
// request per line, one response line each:
//
//   request:  COMMAND WORDS [key=value ...]      e.g.  ue show imsi=001010123456789
//         or  {"command": "ue show", "imsi": "001010123456789"}
//   response: one JSON object: {"ok":true,...} or {"ok":false,"error":"CODE","message":"..."}
//
// Peers are checked with SO_PEERCRED: root, the daemon's own uid, or a member of the socket's
// group (primary or supplementary); anyone else gets one refusal line and is disconnected.
#pragma once

#include <sys/socket.h>
#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/json.h"
#include "common/result.h"
#include "net/loop.h"

namespace best::hse {

enum class AdminErrc { bad_request = 1, io };
inline ErrorDomain errorDomainOf(AdminErrc) {
    return ErrorDomain::config;
}

// ---- a minimal JSON value (RFC 8259) for the protocol's requests and responses

struct JsonValue {
    enum class Type { null, boolean, number, string, array, object };
    Type type = Type::null;
    bool boolean = false;
    double number = 0;
    std::string text;  // string, or a number's literal
    std::vector<JsonValue> items;
    std::vector<std::pair<std::string, JsonValue>> members;

    const JsonValue* get(std::string_view key) const;
    std::string str(std::string_view key, std::string fallback = {}) const;
    std::uint64_t uint(std::string_view key, std::uint64_t fallback = 0) const;
    bool flag(std::string_view key, bool fallback = false) const;
};
Result<JsonValue> parseJson(std::string_view text, std::size_t maxDepth = 16);

// The compact JSON writer (common/json.h), under the name the daemon uses.
using JsonOut = best::JsonOut;

// ---- the protocol

struct AdminRequest {
    std::string command;  // "status", "ue show", "ue refresh", "sqn set", "sqn resync", "reload"
    std::map<std::string, std::string> args;
    std::string arg(const std::string& k) const {
        auto it = args.find(k);
        return it == args.end() ? std::string() : it->second;
    }
};

inline constexpr std::size_t kAdminMaxLine = 4096;

// One request line (without its newline). Errors say what is wrong (bad_request).
Result<AdminRequest> parseAdminRequest(std::string_view line);
// The key=value line form of a request (what best-hsectl sends).
std::string formatAdminRequest(const AdminRequest& r);

// Response lines.
std::string adminError(std::string_view code, std::string_view message);

// Whether a peer may use the socket: root, `daemonUid`, or in group `gid` (primary or one of
// `supplementary`).
bool adminPeerAllowed(uid_t uid, gid_t gid, const std::vector<gid_t>& supplementary,
                      uid_t daemonUid, gid_t socketGid);
// The supplementary groups of process `pid` (/proc/PID/status "Groups:").
std::vector<gid_t> processGroups(pid_t pid);
// A group name or number; nullopt when unknown.
std::optional<gid_t> resolveGroup(const std::string& nameOrNumber);

class AdminServer {
public:
    // `reply` may be called later (asynchronous commands), at most once; a connection that
    // closed meanwhile ignores it.
    using Reply = std::function<void(std::string responseLine)>;
    using Handler = std::function<void(const AdminRequest&, const ucred& peer, Reply reply)>;

    AdminServer(net::Loop& loop, Handler handler);
    ~AdminServer();
    AdminServer(const AdminServer&) = delete;
    AdminServer& operator=(const AdminServer&) = delete;

    // Binds `path` with mode 0660, owner this process's euid, group `group` (empty: this
    // process's egid).
    Result<void> listen(const std::string& path, const std::string& group);
    void close();
    std::uint64_t refused() const noexcept { return refused_; }
    std::uint64_t requests() const noexcept { return requests_; }
    gid_t socketGid() const noexcept { return gid_; }

private:
    struct Conn {
        std::string buffer;
        ucred peer{};
        bool busy = false;  // a reply is outstanding: further lines wait
        std::uint64_t generation = 0;
    };
    void onAccept(net::StreamConnection& c);
    void onData(net::StreamConnection& c, ByteView data);
    void pump(net::StreamConnection& c);

    net::Loop& loop_;
    Handler handler_;
    net::HandlePtr<net::StreamServer> server_;
    std::string path_;
    gid_t gid_ = 0;
    std::map<net::StreamConnection*, Conn> conns_;
    std::uint64_t nextGeneration_ = 1;
    std::uint64_t refused_ = 0;
    std::uint64_t requests_ = 0;
};

}  // namespace best::hse
