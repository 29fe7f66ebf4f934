#include "hse/config.h"

#include <arpa/inet.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <initializer_list>
#include <sstream>

#include <yaml-cpp/yaml.h>

namespace best::hse {
namespace {

// Walks the YAML tree; the first error wins and names file:line:column and the dotted key.
class Walker {
public:
    explicit Walker(std::string name) : name_(std::move(name)) {}

    bool failed() const { return error_.has_value(); }
    Error takeError() { return std::move(*error_); }

    void fail(const YAML::Node& at, const std::string& key, ConfigErrc code,
              const std::string& what) {
        if (error_)
            return;
        YAML::Mark m = at.Mark();
        std::ostringstream s;
        s << name_;
        if (m.line >= 0)
            s << ':' << (m.line + 1) << ':' << (m.column + 1);
        s << ": ";
        if (!key.empty())
            s << "key '" << key << "': ";
        s << what;
        error_ = Error{ErrorDomain::config, static_cast<int>(code), s.str()};
    }

    // A mapping whose keys must all be in `known`.
    bool mapping(const YAML::Node& n, const std::string& key,
                 std::initializer_list<const char*> known) {
        if (!n.IsMap()) {
            fail(n, key, ConfigErrc::bad_value, "must be a mapping");
            return false;
        }
        for (const auto& kv : n) {
            std::string k = kv.first.Scalar();
            bool ok = false;
            for (const char* c : known)
                ok = ok || k == c;
            if (!ok) {
                std::string all;
                for (const char* c : known)
                    all += std::string(all.empty() ? "" : ", ") + c;
                fail(kv.first, join(key, k), ConfigErrc::unknown_key,
                     "unknown key (known here: " + all + ")");
                return false;
            }
        }
        return true;
    }

    static std::string join(const std::string& a, const std::string& b) {
        return a.empty() ? b : a + "." + b;
    }

    bool str(const YAML::Node& n, const std::string& key, std::string& out, bool nonEmpty = true) {
        if (!n.IsScalar()) {
            fail(n, key, ConfigErrc::bad_value, "must be a string");
            return false;
        }
        if (nonEmpty && n.Scalar().empty()) {
            fail(n, key, ConfigErrc::bad_value, "must not be empty");
            return false;
        }
        out = n.Scalar();
        return true;
    }

    template <typename T>
    bool integer(const YAML::Node& n, const std::string& key, T& out, long long lo, long long hi) {
        if (!n.IsScalar()) {
            fail(n, key, ConfigErrc::bad_value, "must be an integer");
            return false;
        }
        const std::string& s = n.Scalar();
        char* end = nullptr;
        errno = 0;
        long long v = std::strtoll(s.c_str(), &end, 10);
        if (s.empty() || *end != '\0' || errno != 0) {
            fail(n, key, ConfigErrc::bad_value, "must be an integer, not '" + s + "'");
            return false;
        }
        if (v < lo || v > hi) {
            fail(n, key, ConfigErrc::bad_value,
                 "must be in " + std::to_string(lo) + ".." + std::to_string(hi));
            return false;
        }
        out = static_cast<T>(v);
        return true;
    }

    bool number(const YAML::Node& n, const std::string& key, double& out) {
        if (!n.IsScalar()) {
            fail(n, key, ConfigErrc::bad_value, "must be a number");
            return false;
        }
        const std::string& s = n.Scalar();
        char* end = nullptr;
        double v = std::strtod(s.c_str(), &end);
        if (s.empty() || *end != '\0' || !std::isfinite(v) || v <= 0) {
            fail(n, key, ConfigErrc::bad_value, "must be a positive number, not '" + s + "'");
            return false;
        }
        out = v;
        return true;
    }

    bool boolean(const YAML::Node& n, const std::string& key, bool& out) {
        if (n.IsScalar() && (n.Scalar() == "true" || n.Scalar() == "false")) {
            out = n.Scalar() == "true";
            return true;
        }
        fail(n, key, ConfigErrc::bad_value, "must be true or false");
        return false;
    }

    bool stringList(const YAML::Node& n, const std::string& key, std::vector<std::string>& out) {
        if (!n.IsSequence()) {
            fail(n, key, ConfigErrc::bad_value, "must be a list");
            return false;
        }
        for (std::size_t i = 0; i < n.size(); ++i) {
            std::string s;
            if (!str(n[i], key + "[" + std::to_string(i) + "]", s))
                return false;
            out.push_back(s);
        }
        return true;
    }

    bool required(const YAML::Node& parent, const char* k, const std::string& key) {
        if (parent[k])
            return true;
        fail(parent, join(key, k), ConfigErrc::missing_key, "required");
        return false;
    }

private:
    std::string name_;
    std::optional<Error> error_;
};

bool validPlmnDigits(const std::string& s) {
    if (s.size() != 5 && s.size() != 6)
        return false;
    for (char c : s) {
        if (c < '0' || c > '9')
            return false;
    }
    return true;
}

void parsePolicy(Walker& w, const YAML::Node& n, Policy& p) {
    const std::string key = "policy";
    if (!w.mapping(
            n, key,
            {"counter_schemes", "key_agreements", "ciphering", "confidentiality_required_eas",
             "key_set_lifetime", "session_timeouts", "rate_limits", "refresh"})) {
        return;
    }
    if (auto cs = n["counter_schemes"]) {
        if (w.mapping(cs, "policy.counter_schemes", {"cp", "up"})) {
            if (cs["cp"])
                w.integer(cs["cp"], "policy.counter_schemes.cp", p.cpCounterScheme, 0, 3);
            if (cs["up"])
                w.integer(cs["up"], "policy.counter_schemes.up", p.upCounterScheme, 0, 3);
        }
    }
    if (auto ka = n["key_agreements"]) {
        std::vector<std::string> list;
        if (w.stringList(ka, "policy.key_agreements", list)) {
            p.allowUmts = p.allowEps = p.allowFiveG = false;
            for (const auto& s : list) {
                if (s == "umts") {
                    p.allowUmts = true;
                } else if (s == "eps") {
                    p.allowEps = true;
                } else if (s == "5g") {
                    p.allowFiveG = true;
                } else {
                    w.fail(ka, "policy.key_agreements", ConfigErrc::bad_value,
                           "'" + s + "' is not one of umts, eps, 5g");
                }
            }
            if (list.empty()) {
                w.fail(ka, "policy.key_agreements", ConfigErrc::bad_value, "must not be empty");
            }
        }
    }
    if (auto c = n["ciphering"]) {
        if (w.mapping(c, "policy.ciphering", {"default", "deny_plmns", "allow_plmns"})) {
            if (auto d = c["default"]) {
                std::string v;
                if (w.str(d, "policy.ciphering.default", v)) {
                    if (v == "allow" || v == "deny") {
                        p.cipheringAllowedByDefault = v == "allow";
                    } else {
                        w.fail(d, "policy.ciphering.default", ConfigErrc::bad_value,
                               "must be allow or deny");
                    }
                }
            }
            for (const char* k : {"deny_plmns", "allow_plmns"}) {
                if (!c[k])
                    continue;
                std::string key2 = std::string("policy.ciphering.") + k;
                std::vector<std::string> list;
                if (!w.stringList(c[k], key2, list))
                    continue;
                for (const auto& s : list) {
                    if (!validPlmnDigits(s)) {
                        w.fail(c[k], key2, ConfigErrc::bad_value,
                               "'" + s + "' is not MCC+MNC digits (5 or 6 digits)");
                    }
                }
                auto& target = std::string(k) == "deny_plmns" ? p.cipheringDeniedPlmns
                                                              : p.cipheringAllowedPlmns;
                target.insert(list.begin(), list.end());
            }
        }
    }
    if (auto c = n["confidentiality_required_eas"]) {
        std::vector<std::string> list;
        if (w.stringList(c, "policy.confidentiality_required_eas", list)) {
            p.confidentialityRequiredEas.insert(list.begin(), list.end());
        }
    }
    if (auto l = n["key_set_lifetime"]) {
        w.integer(l, "policy.key_set_lifetime", p.keySetLifetimeSeconds, 0, 0xffffffffLL);
    }
    if (auto t = n["session_timeouts"]) {
        if (w.mapping(t, "policy.session_timeouts", {"unconfirmed", "idle"})) {
            if (t["unconfirmed"]) {
                w.integer(t["unconfirmed"], "policy.session_timeouts.unconfirmed",
                          p.unconfirmedSessionTimeoutSeconds, 1, 86400);
            }
            if (t["idle"]) {
                w.integer(t["idle"], "policy.session_timeouts.idle", p.idleSessionTimeoutSeconds, 1,
                          30LL * 86400);
            }
        }
    }
    if (auto r = n["rate_limits"]) {
        if (w.mapping(r, "policy.rate_limits", {"per_source", "per_imsi", "backoff"})) {
            for (const char* k : {"per_source", "per_imsi"}) {
                if (!r[k])
                    continue;
                std::string key2 = std::string("policy.rate_limits.") + k;
                RateLimit& rl = std::string(k) == "per_source" ? p.perSource : p.perImsi;
                if (w.mapping(r[k], key2, {"rate", "burst"})) {
                    if (w.required(r[k], "rate", key2)) {
                        w.number(r[k]["rate"], key2 + ".rate", rl.ratePerSecond);
                    }
                    if (w.required(r[k], "burst", key2)) {
                        w.integer(r[k]["burst"], key2 + ".burst", rl.burst, 1, 1000000);
                    }
                }
            }
            if (r["backoff"]) {
                w.integer(r["backoff"], "policy.rate_limits.backoff", p.backoffSeconds, 1, 65535);
            }
        }
    }
    if (auto f = n["refresh"]) {
        if (w.mapping(f, "policy.refresh", {"after_seconds", "after_sessions"})) {
            if (f["after_seconds"]) {
                w.integer(f["after_seconds"], "policy.refresh.after_seconds", p.refreshAfterSeconds,
                          0, 0xffffffffLL);
            }
            if (f["after_sessions"]) {
                w.integer(f["after_sessions"], "policy.refresh.after_sessions",
                          p.refreshAfterSessions, 0, 0xffffffffLL);
            }
        }
    }
}

// admin, metrics, health (issue 7; docs/operations.md).
void parseOperations(Walker& w, const YAML::Node& root, HsedConfig& c) {
    if (auto a = root["admin"]) {
        if (w.mapping(a, "admin", {"socket", "group"})) {
            if (w.required(a, "socket", "admin") &&
                w.str(a["socket"], "admin.socket", c.admin.socketPath)) {
                if (c.admin.socketPath.size() >= 108 || c.admin.socketPath[0] != '/')
                    w.fail(a["socket"], "admin.socket", ConfigErrc::bad_value,
                           "must be an absolute path of at most 107 octets");
            }
            if (a["group"])
                w.str(a["group"], "admin.group", c.admin.group);
        }
    }
    if (auto m = root["metrics"]) {
        if (w.mapping(m, "metrics", {"address", "port"})) {
            c.metrics.enabled = true;
            if (m["address"] && w.str(m["address"], "metrics.address", c.metrics.address)) {
                in_addr a4{};
                in6_addr a6{};
                const bool v4 = inet_pton(AF_INET, c.metrics.address.c_str(), &a4) == 1;
                const bool v6 = !v4 && inet_pton(AF_INET6, c.metrics.address.c_str(), &a6) == 1;
                const bool loopback =
                    (v4 && (ntohl(a4.s_addr) >> 24) == 127) || (v6 && IN6_IS_ADDR_LOOPBACK(&a6));
                if (!loopback)
                    w.fail(m["address"], "metrics.address", ConfigErrc::bad_value,
                           "'" + c.metrics.address +
                               "' is not a numeric loopback address (127.0.0.0/8 or ::1)");
            }
            if (m["port"])
                w.integer(m["port"], "metrics.port", c.metrics.port, 0, 65535);
        }
    }
    if (auto h = root["health"]) {
        if (w.mapping(h, "health", {"probe_interval"}) && h["probe_interval"])
            w.integer(h["probe_interval"], "health.probe_interval", c.healthProbeIntervalSeconds, 1,
                      3600);
    }
}

}  // namespace

Result<HsedConfig> parseHsedConfig(const std::string& text, const std::string& name) {
    YAML::Node root;
    try {
        root = YAML::Load(text);
    } catch (const YAML::ParserException& e) {
        return makeError(ConfigErrc::syntax, name + ":" + std::to_string(e.mark.line + 1) + ":" +
                                                 std::to_string(e.mark.column + 1) +
                                                 ": YAML syntax error: " + e.msg);
    }
    HsedConfig c;
    c.sourcePath = name;
    Walker w(name);
    try {
        if (!root.IsMap()) {
            w.fail(root, "", ConfigErrc::bad_value, "the configuration must be a mapping");
            return makeError(w.takeError());
        }
        w.mapping(root, "",
                  {"hse_id", "listen", "runtime_file", "hsm", "store", "sqn", "policy", "sink",
                   "logging", "admin", "metrics", "health", "limits", "listen_receive_buffer"});
        if (w.required(root, "hse_id", "") && w.str(root["hse_id"], "hse_id", c.hseId)) {
            if (c.hseId.size() > 64) {
                w.fail(root["hse_id"], "hse_id", ConfigErrc::bad_value,
                       "must be 1..64 octets of UTF-8");
            }
        }
        if (w.required(root, "listen", "")) {
            const YAML::Node l = root["listen"];
            if (!l.IsSequence() || l.size() == 0) {
                w.fail(l, "listen", ConfigErrc::bad_value,
                       "must be a non-empty list of {address, port}");
            } else {
                for (std::size_t i = 0; i < l.size() && !w.failed(); ++i) {
                    std::string key = "listen[" + std::to_string(i) + "]";
                    ListenAddress a;
                    if (!w.mapping(l[i], key, {"address", "port"}))
                        break;
                    if (w.required(l[i], "address", key) &&
                        w.str(l[i]["address"], key + ".address", a.address)) {
                        in6_addr tmp6{};
                        in_addr tmp4{};
                        if (inet_pton(AF_INET, a.address.c_str(), &tmp4) != 1 &&
                            inet_pton(AF_INET6, a.address.c_str(), &tmp6) != 1) {
                            w.fail(l[i]["address"], key + ".address", ConfigErrc::bad_value,
                                   "'" + a.address + "' is not a numeric IPv4 or IPv6 address");
                        }
                    }
                    if (l[i]["port"])
                        w.integer(l[i]["port"], key + ".port", a.port, 0, 65535);
                    c.listen.push_back(a);
                }
            }
        }
        if (root["runtime_file"])
            w.str(root["runtime_file"], "runtime_file", c.runtimeFile);
        if (root["listen_receive_buffer"])
            w.integer(root["listen_receive_buffer"], "listen_receive_buffer", c.receiveBuffer, 0,
                      268435456);
        if (w.required(root, "hsm", "")) {
            const YAML::Node h = root["hsm"];
            if (w.mapping(h, "hsm",
                          {"module", "token", "pin_file", "workers", "recycle_after_objects"})) {
                if (h["recycle_after_objects"])
                    w.integer(h["recycle_after_objects"], "hsm.recycle_after_objects",
                              c.hsm.recycleAfterObjects, 0, 1000000000000LL);
                if (h["module"])
                    w.str(h["module"], "hsm.module", c.hsm.module);
                if (w.required(h, "token", "hsm"))
                    w.str(h["token"], "hsm.token", c.hsm.token);
                if (w.required(h, "pin_file", "hsm")) {
                    w.str(h["pin_file"], "hsm.pin_file", c.hsm.pinFile);
                }
                if (h["workers"])
                    w.integer(h["workers"], "hsm.workers", c.hsm.workers, 1, 64);
            }
        }
        if (w.required(root, "store", "")) {
            const YAML::Node s = root["store"];
            if (w.mapping(s, "store", {"path"}) && w.required(s, "path", "store")) {
                w.str(s["path"], "store.path", c.storePath);
            }
        }
        if (auto s = root["sqn"]) {
            if (w.mapping(s, "sqn", {"ind", "ind_bits", "ranges_in_memory"})) {
                if (s["ranges_in_memory"])
                    w.integer(s["ranges_in_memory"], "sqn.ranges_in_memory", c.sqnRangesInMemory, 0,
                              100000000);
                if (s["ind_bits"])
                    w.integer(s["ind_bits"], "sqn.ind_bits", c.sqnIndBits, 0, 10);
                if (s["ind"]) {
                    w.integer(s["ind"], "sqn.ind", c.sqnInd, 0, (1LL << c.sqnIndBits) - 1);
                }
            }
        }
        if (auto p = root["policy"])
            parsePolicy(w, p, c.policy);
        if (auto s = root["sink"]) {
            if (w.mapping(s, "sink", {"uplink", "downlink", "uplink_backlog"})) {
                if (s["uplink"])
                    w.str(s["uplink"], "sink.uplink", c.uplinkSink);
                if (s["uplink_backlog"])
                    w.integer(s["uplink_backlog"], "sink.uplink_backlog", c.uplinkBacklog, 0,
                              65536);
                if (s["downlink"])
                    w.str(s["downlink"], "sink.downlink", c.downlinkSocket);
            }
        }
        if (auto lm = root["limits"]) {
            if (w.mapping(lm, "limits", {"max_sessions", "context_cache"})) {
                if (lm["max_sessions"])
                    w.integer(lm["max_sessions"], "limits.max_sessions", c.maxSessions, 1,
                              16777216);
                if (lm["context_cache"])
                    w.integer(lm["context_cache"], "limits.context_cache", c.contextCache, 1,
                              1048576);
            }
        }
        if (auto lg = root["logging"]) {
            if (w.mapping(lg, "logging", {"level"}) && lg["level"] &&
                w.str(lg["level"], "logging.level", c.logLevel)) {
                if (c.logLevel != "debug" && c.logLevel != "info" && c.logLevel != "notice" &&
                    c.logLevel != "warning" && c.logLevel != "error") {
                    w.fail(lg["level"], "logging.level", ConfigErrc::bad_value,
                           "must be one of debug, info, notice, warning, error");
                }
            }
        }
        parseOperations(w, root, c);
    } catch (const YAML::Exception& e) {
        return makeError(ConfigErrc::syntax, name + ": " + e.what());
    }
    if (w.failed())
        return makeError(w.takeError());
    return c;
}

Result<HsedConfig> loadHsedConfig(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        return makeError(ConfigErrc::io, path + ": cannot read: " + std::strerror(errno));
    }
    std::ostringstream s;
    s << in.rdbuf();
    return parseHsedConfig(s.str(), path);
}

}  // namespace best::hse
