#include "admin_client.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>

#include "commands.h"
#include "common/unique_fd.h"
#include "store/validate.h"

namespace best::hsectl {

Result<hse::JsonValue> adminCall(const std::string& socketPath, const hse::AdminRequest& request) {
    sockaddr_un a{};
    if (socketPath.empty() || socketPath.size() >= sizeof a.sun_path)
        return makeError(AdminClientErrc::unavailable,
                         "admin socket path '" + socketPath + "' is not usable");
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    a.sun_family = AF_UNIX;
    std::memcpy(a.sun_path, socketPath.data(), socketPath.size());
    if (!fd.isValid() || ::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
        return makeError(AdminClientErrc::unavailable,
                         "admin socket '" + socketPath + "': " + std::strerror(errno));
    const std::string line = hse::formatAdminRequest(request) + "\n";
    if (::send(fd.get(), line.data(), line.size(), MSG_NOSIGNAL) !=
        static_cast<ssize_t>(line.size()))
        return makeError(AdminClientErrc::unavailable,
                         "admin socket '" + socketPath + "': send: " + std::strerror(errno));
    std::string in;
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (in.find('\n') == std::string::npos) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            until - std::chrono::steady_clock::now());
        if (left.count() <= 0)
            return makeError(AdminClientErrc::protocol,
                             "admin socket '" + socketPath + "': no answer within 30 s");
        pollfd p{fd.get(), POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(left.count())) <= 0)
            continue;
        char buf[4096];
        const ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
        if (n <= 0)
            return makeError(AdminClientErrc::protocol,
                             "admin socket '" + socketPath + "': closed without an answer");
        in.append(buf, static_cast<std::size_t>(n));
        if (in.size() > (1u << 20))
            return makeError(AdminClientErrc::protocol, "admin answer longer than 1 MiB");
    }
    in.resize(in.find('\n'));
    auto v = hse::parseJson(in, 32);
    if (!v || v->type != hse::JsonValue::Type::object)
        return makeError(AdminClientErrc::protocol,
                         "admin socket '" + socketPath + "': malformed answer");
    return std::move(*v);
}

int exitCodeForAdminError(const std::string& code) {
    if (code == "bad_request" || code == "unknown_command")
        return cli::kExitUsage;
    if (code == "unknown_imsi" || code == "not_implemented" || code == "refused")
        return cli::kExitRefused;
    if (code == "mac_s_failed" || code == "reload_failed")
        return cli::kExitCheckFailed;
    if (code == "hsm_unavailable")
        return cli::kExitUnavailable;
    if (code == "permission_denied")
        return kExitAdminUnavailable;
    return cli::kExitInternal;
}

int failFromAdmin(const Cmd& cmd, const hse::JsonValue& answer) {
    const std::string code = answer.str("error", "internal");
    return cmd.fail(answer.str("message", code), exitCodeForAdminError(code));
}

namespace {

const char* const kUeHelp =
    "usage: best-hsectl ue ACTION --imsi IMSI [--admin-socket PATH] [--json]\n"
    "\n"
    "Asks the running best-hsed through its admin socket:\n"
    "  show      the UE's sessions (ids, KIDs, states, age, counters in use) and key sets\n"
    "            (KIDs, states, creation, use counts, highest resumption nonce); never keys\n"
    "  refresh   start an operator-triggered key refresh on the UE's confirmed session\n"
    "\n"
    "Exit codes: 0 done, 2 bad arguments, 4 unknown IMSI or refused, 7 the admin socket cannot\n"
    "be used (daemon not running, no permission).\n";

const char* const kReloadHelp =
    "usage: best-hsectl reload [--admin-socket PATH] [--json]\n"
    "\n"
    "Makes the running best-hsed re-read its configuration (like SIGHUP). A file that does not\n"
    "validate, or that changes a key that needs a restart, is refused (exit 1) and the daemon\n"
    "keeps its configuration; docs/operations.md lists the keys a reload applies.\n";

const char* const kDaemonStatusHelp =
    "usage: best-hsectl status --daemon [--admin-socket PATH] [--json]\n"
    "\n"
    "The running best-hsed's own status from its admin socket: HSM health, sessions, listening\n"
    "addresses, reloads. Exit 0 while the HSM is up, 1 while its health probe fails, 7 when\n"
    "the admin socket cannot be used.\n";

// Parses the command's options, resolves the socket, sends; prints the error or returns the
// answer.
std::optional<hse::JsonValue> ask(const Cmd& cmd, const std::vector<std::string>& args,
                                  std::vector<cli::OptionSpec> specs, const char* help,
                                  hse::AdminRequest request, bool needImsi, Settings& settings,
                                  int& code) {
    if (needImsi)
        specs.push_back({"imsi"});
    specs.push_back({"daemon", false});
    auto o = cmd.parse(args, std::move(specs), help, code);
    if (!o)
        return std::nullopt;
    auto s = resolveSettings(*o);
    if (!s) {
        code = cmd.fail(s.error());
        return std::nullopt;
    }
    settings = *s;
    if (needImsi) {
        if (!o->has("imsi")) {
            code = cmd.usage("missing --imsi");
            return std::nullopt;
        }
        const std::string imsi = *o->get("imsi");
        if (auto r = store::checkImsi(imsi); !r) {
            code = cmd.fail(r.error());
            return std::nullopt;
        }
        request.args["imsi"] = imsi;
    }
    auto answer = adminCall(settings.adminSocket, request);
    if (!answer) {
        code = cmd.fail(answer.error().message + " (is best-hsed running? --admin-socket PATH)",
                        kExitAdminUnavailable);
        return std::nullopt;
    }
    if (!answer->flag("ok")) {
        code = failFromAdmin(cmd, *answer);
        return std::nullopt;
    }
    return std::move(*answer);
}

// A member's value as text; "-" when absent or null.
std::string text(const hse::JsonValue* p) {
    if (p == nullptr)
        return "-";
    const hse::JsonValue& v = *p;
    switch (v.type) {
        case hse::JsonValue::Type::null:
            return "-";
        case hse::JsonValue::Type::boolean:
            return v.boolean ? "yes" : "no";
        default:
            return v.text;
    }
}

// Re-encodes a parsed answer (the daemon's line, compact) for --json.
void printJson(const hse::JsonValue& v, std::string& out) {
    switch (v.type) {
        case hse::JsonValue::Type::null:
            out += "null";
            return;
        case hse::JsonValue::Type::boolean:
            out += v.boolean ? "true" : "false";
            return;
        case hse::JsonValue::Type::number:
            out += v.text;
            return;
        case hse::JsonValue::Type::string:
            out += hse::JsonOut::quote(v.text);
            return;
        case hse::JsonValue::Type::array: {
            out += '[';
            for (std::size_t i = 0; i < v.items.size(); ++i) {
                if (i > 0)
                    out += ',';
                printJson(v.items[i], out);
            }
            out += ']';
            return;
        }
        case hse::JsonValue::Type::object: {
            out += '{';
            bool first = true;
            for (const auto& [k, m] : v.members) {
                if (k == "ok")
                    continue;
                out += (first ? "" : ",") + hse::JsonOut::quote(k) + ":";
                first = false;
                printJson(m, out);
            }
            out += '}';
            return;
        }
    }
}

void emitJson(const hse::JsonValue& v) {
    std::string out;
    printJson(v, out);
    std::printf("%s\n", out.c_str());
}

int runUeShow(const std::vector<std::string>& args) {
    const Cmd cmd("ue show");
    Settings s;
    int code = 0;
    auto a = ask(cmd, args, {}, kUeHelp, {"ue show", {}}, true, s, code);
    if (!a)
        return code;
    if (s.json) {
        emitJson(*a);
        return cli::kExitOk;
    }
    std::printf("imsi: %s\n", a->str("imsi").c_str());
    const auto* sets = a->get("key_sets");
    std::printf("key sets: %zu\n", sets != nullptr ? sets->items.size() : 0);
    if (sets != nullptr)
        for (const auto& k : sets->items)
            std::printf(
                "  KID %s  %-8s  key agreement %s  created %s  lifetime %s s  used %s  "
                "highest nonce %s\n",
                text(k.get("kid")).c_str(), text(k.get("state")).c_str(),
                text(k.get("key_agreement")).c_str(),
                formatTime(static_cast<std::int64_t>(k.uint("created_at"))).c_str(),
                text(k.get("lifetime_seconds")).c_str(), text(k.get("use_count")).c_str(),
                text(k.get("highest_nonce")).c_str());
    if (const auto* t = a->get("tentative_kids"); t != nullptr && !t->items.empty()) {
        std::string kids;
        for (const auto& k : t->items)
            kids += (kids.empty() ? "" : ", ") + k.text;
        std::printf("tentative (unconfirmed) KIDs: %s\n", kids.c_str());
    }
    const std::string refresh = a->str("refresh");
    std::printf("refresh in progress: %s\n", refresh.empty() ? "none" : refresh.c_str());
    const auto* sessions = a->get("sessions");
    std::printf("sessions: %zu\n", sessions != nullptr ? sessions->items.size() : 0);
    if (sessions != nullptr)
        for (const auto& x : sessions->items) {
            std::printf("  session %s  KID %s  %s (%s)  service %s  age %s s  idle %s s  peer %s\n",
                        text(x.get("session_id")).c_str(), text(x.get("kid")).c_str(),
                        text(x.get("state")).c_str(), text(x.get("kind")).c_str(),
                        text(x.get("service")).c_str(), text(x.get("age_seconds")).c_str(),
                        text(x.get("idle_seconds")).c_str(), text(x.get("peer")).c_str());
            if (const auto* c = x.get("counters"))
                std::printf(
                    "    counters: CP tx next %s, UP tx next %s, CP rx highest %s, UP rx "
                    "highest %s\n",
                    text(c->get("cp_tx_next")).c_str(), text(c->get("up_tx_next")).c_str(),
                    text(c->get("cp_rx_highest")).c_str(), text(c->get("up_rx_highest")).c_str());
        }
    return cli::kExitOk;
}

int runUeRefresh(const std::vector<std::string>& args) {
    const Cmd cmd("ue refresh");
    Settings s;
    int code = 0;
    auto a = ask(cmd, args, {}, kUeHelp, {"ue refresh", {}}, true, s, code);
    if (!a)
        return code;
    if (s.json)
        emitJson(*a);
    else
        std::printf("%s\n", a->str("message", "refresh started").c_str());
    return cli::kExitOk;
}

constexpr Action kUeActions[] = {
    {"show", runUeShow},
    {"refresh", runUeRefresh},
};

}  // namespace

int runUe(const std::vector<std::string>& args) {
    return runGroup("ue", kUeHelp, kUeActions, std::size(kUeActions), args);
}

int runReload(const std::vector<std::string>& args) {
    const Cmd cmd("reload");
    Settings s;
    int code = 0;
    auto a = ask(cmd, args, {}, kReloadHelp, {"reload", {}}, false, s, code);
    if (!a)
        return code;
    if (s.json)
        emitJson(*a);
    else
        std::printf("%s\n", a->str("message").c_str());
    return cli::kExitOk;
}

int runDaemonStatus(const std::vector<std::string>& args) {
    const Cmd cmd("status");
    Settings s;
    int code = 0;
    auto a = ask(cmd, args, {}, kDaemonStatusHelp, {"status", {}}, false, s, code);
    if (!a)
        return code;
    const bool up = a->flag("hsm_up");
    if (s.json) {
        emitJson(*a);
        return up ? cli::kExitOk : cli::kExitCheckFailed;
    }
    std::printf("daemon: pid %s, up %s s, config %s\n", text(a->get("pid")).c_str(),
                text(a->get("uptime_seconds")).c_str(), a->str("config").c_str());
    std::printf("hse_id: %s\n", a->str("hse_id").c_str());
    std::printf("status: %s\n", a->str("status").c_str());
    std::printf("hsm: token %s, %s workers, %s\n", a->str("hsm_token").c_str(),
                text(a->get("hsm_workers")).c_str(),
                up ? "health probe passes" : ("UNAVAILABLE: " + a->str("hsm_problem")).c_str());
    std::printf("sessions: %s (%s confirmed), refreshes in progress: %s\n",
                text(a->get("sessions")).c_str(), text(a->get("sessions_confirmed")).c_str(),
                text(a->get("refreshes_in_progress")).c_str());
    std::string listen;
    if (const auto* l = a->get("listen"))
        for (const auto& x : l->items)
            listen += (listen.empty() ? "" : " ") + x.text;
    std::printf("listening: %s\n", listen.c_str());
    if (const auto* m = a->get("metrics"))
        std::printf("metrics: %s\n", m->text.c_str());
    std::printf("reloads: %s ok, %s failed%s\n", text(a->get("reloads")).c_str(),
                text(a->get("reload_failures")).c_str(),
                a->str("last_reload_error").empty()
                    ? ""
                    : (" (last: " + a->str("last_reload_error") + ")").c_str());
    return up ? cli::kExitOk : cli::kExitCheckFailed;
}

}  // namespace best::hsectl
