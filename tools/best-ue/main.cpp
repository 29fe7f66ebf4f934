// best-ue: the BEST UE agent. `best-ue run` holds the UDP socket to the HSE and the live session
// and is driven over a UNIX control socket by `best-ue send|recv|establish|refresh|terminate|
// status`; `best-ue session` runs one scripted flow in-process and exits. See docs/ue.md.
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "agent.h"
#include "common/hex.h"
#include "common/log.h"
#include "common/secure.h"

namespace {

using namespace best;
using namespace best::ueagent;

// Exit codes (documented in docs/ue.md).
constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;       // the agent refused, or the operation / a step failed
constexpr int kExitUsage = 2;        // bad arguments or configuration
constexpr int kExitUnreachable = 3;  // no agent answers on the control socket
constexpr int kExitTimeout = 4;      // nothing happened within the time asked for
constexpr int kExitNoUsim = 5;       // the USIM cannot be reached (no card, reader, pcscd)

constexpr char kUsage[] =
    "usage: best-ue run --config FILE [--log-level LEVEL]\n"
    "       best-ue session --config FILE [--send TEXT]... [--send-hex HEX]... [--recv N]\n"
    "                       [--refresh] [--terminate] [--timeout SECONDS] [--log-level LEVEL]\n"
    "       best-ue send --config FILE [--hex] DATA\n"
    "       best-ue recv --config FILE [--hex] [--timeout MS]\n"
    "       best-ue establish|refresh|terminate --config FILE [--timeout MS]\n"
    "       best-ue status --config FILE\n"
    "\n"
    "run: the agent in the foreground (establishes at start; SIGTERM/SIGINT terminate the\n"
    "session and stop it). The other commands talk to a running agent over the configuration's\n"
    "control_socket (or --socket PATH). session: establish, send each --send, wait for N downlink\n"
    "payloads, refresh the keys, terminate, in that order, then exit.\n"
    "Exit status: 0 done, 1 failed or refused, 2 usage or configuration, 3 no agent, 4 timeout,\n"
    "5 the USIM cannot be reached (no card, no reader, pcscd not running).\n";

struct Args {
    std::string command;
    std::string config;
    std::string socket;
    std::string logLevel;
    bool hex = false;
    std::vector<Bytes> sends;
    unsigned recv = 0;
    bool refresh = false;
    bool terminate = false;
    std::optional<std::uint64_t> timeout;
    std::vector<std::string> positional;
};

std::optional<Args> parseArgs(int argc, char** argv) {
    if (argc < 2)
        return std::nullopt;
    Args a;
    a.command = argv[1];
    if (a.command == "--help" || a.command == "-h")
        a.command = "help";
    for (int i = 2; i < argc; ++i) {
        std::string_view s = argv[i];
        auto value = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
        if (s == "--config") {
            const char* v = value();
            if (!v)
                return std::nullopt;
            a.config = v;
        } else if (s == "--socket") {
            const char* v = value();
            if (!v)
                return std::nullopt;
            a.socket = v;
        } else if (s == "--log-level") {
            const char* v = value();
            if (!v)
                return std::nullopt;
            a.logLevel = v;
        } else if (s == "--hex") {
            a.hex = true;
        } else if (s == "--send") {
            const char* v = value();
            if (!v)
                return std::nullopt;
            a.sends.emplace_back(reinterpret_cast<const std::uint8_t*>(v),
                                 reinterpret_cast<const std::uint8_t*>(v) + std::strlen(v));
        } else if (s == "--send-hex") {
            const char* v = value();
            auto b = v ? fromHex(v, "--send-hex") : Result<Bytes>(Bytes{});
            if (!v || !b)
                return std::nullopt;
            a.sends.push_back(*b);
        } else if (s == "--recv") {
            const char* v = value();
            if (!v)
                return std::nullopt;
            a.recv = static_cast<unsigned>(std::strtoul(v, nullptr, 10));
        } else if (s == "--refresh") {
            a.refresh = true;
        } else if (s == "--terminate") {
            a.terminate = true;
        } else if (s == "--timeout") {
            const char* v = value();
            char* end = nullptr;
            if (!v)
                return std::nullopt;
            a.timeout = std::strtoull(v, &end, 10);
            if (*end != '\0')
                return std::nullopt;
        } else if (s == "--help" || s == "-h") {
            a.command = "help";
        } else if (!s.empty() && s[0] == '-' && s != "-") {
            return std::nullopt;
        } else {
            a.positional.emplace_back(s);
        }
    }
    return a;
}

// ---- control client ------------------------------------------------------------------------

int control(const std::string& path, const std::string& request, std::uint64_t waitMs,
            std::string& reply) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    if (path.size() >= sizeof a.sun_path) {
        std::fprintf(stderr, "best-ue: control socket path too long: %s\n", path.c_str());
        return kExitUsage;
    }
    std::memcpy(a.sun_path, path.c_str(), path.size() + 1);
    if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        std::fprintf(stderr, "best-ue: no agent at %s (%s); start one with best-ue run\n",
                     path.c_str(), std::strerror(errno));
        if (fd >= 0)
            ::close(fd);
        return kExitUnreachable;
    }
    std::string line = request + "\n";
    if (::send(fd, line.data(), line.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(line.size())) {
        ::close(fd);
        std::fprintf(stderr, "best-ue: the agent at %s closed the connection\n", path.c_str());
        return kExitUnreachable;
    }
    const int pollMs = static_cast<int>(std::min<std::uint64_t>(waitMs + 5000, 3600000));
    char buf[4096];
    for (;;) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, pollMs) <= 0) {
            ::close(fd);
            std::fprintf(stderr, "best-ue: the agent did not answer\n");
            return kExitTimeout;
        }
        ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        reply.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    return kExitOk;
}

// Splits "word rest\n..." and maps the word to an exit status, printing the rest.
int finish(const std::string& reply, const std::string& command, bool hex) {
    auto sp = reply.find_first_of(" \n");
    const std::string word = reply.substr(0, sp);
    std::string rest = sp == std::string::npos ? "" : reply.substr(sp + 1);
    while (!rest.empty() && rest.back() == '\n')
        rest.pop_back();
    if (word == "ok") {
        if (command == "recv") {
            auto sp2 = rest.find(' ');
            auto payload = fromHex(sp2 == std::string::npos ? "" : rest.substr(sp2 + 1), "data");
            if (!payload) {
                std::fprintf(stderr, "best-ue: bad answer from the agent\n");
                return kExitFailed;
            }
            if (hex)
                std::printf("%s\n", toHex(*payload).c_str());
            else {
                std::fwrite(payload->data(), 1, payload->size(), stdout);
                std::fputc('\n', stdout);
            }
        } else if (!rest.empty()) {
            std::printf("%s\n", rest.c_str());
        }
        return kExitOk;
    }
    if (word == "timeout") {
        std::fprintf(stderr, "best-ue %s: %s\n", command.c_str(), rest.c_str());
        return kExitTimeout;
    }
    if (word == "unavailable") {
        std::fprintf(stderr, "best-ue %s: %s\n", command.c_str(), rest.c_str());
        return kExitNoUsim;
    }
    std::fprintf(stderr, "best-ue %s: %s\n", command.c_str(),
                 word == "error" ? rest.c_str() : reply.c_str());
    return kExitFailed;
}

// ---- session -------------------------------------------------------------------------------

class Script {
public:
    Script(Agent& agent, net::Loop& loop, const Args& args)
        : agent_(agent), loop_(loop), args_(args) {}

    void say(const std::string& line) {
        std::printf("best-ue: %s\n", line.c_str());
        std::fflush(stdout);
    }

    void begin() {
        say("USIM: " + agent_.usimDescription() + ", IMSI " + agent_.imsi());
        say("HSE " + agent_.config().hseAddress + " port " +
            std::to_string(agent_.config().hsePort) + ", EAS " + agent_.config().easId);
        if (auto r = agent_.establish(); !r)
            fail("cannot establish: " + r.error().message);
    }

    void onEvent(const ue::Event& ev) {
        if (stage_ == Stage::done)
            return;
        if (std::holds_alternative<ue::Dropped>(ev) ||
            std::holds_alternative<ue::DownlinkReceived>(ev))
            ;  // reported below, per stage
        else if (auto line = agent_.eventText(ev);
                 !line.empty() && !std::holds_alternative<ue::SessionEstablished>(ev))
            say(line);
        switch (stage_) {
            case Stage::establishing:
                if (auto* e = std::get_if<ue::SessionEstablished>(&ev)) {
                    say(describeSession(e->info).replace(0, 7, "Session"));
                    for (const auto& s : args_.sends) {
                        if (auto r = agent_.sendUplink(s); !r)
                            return fail("uplink: " + r.error().message);
                        say("uplink " + std::to_string(s.size()) + " octets sent");
                    }
                    stage_ = Stage::receiving;
                    next();
                } else if (std::holds_alternative<ue::AttemptEnded>(ev)) {
                    fail("no session", agent_.endedForUsim(ev) ? kExitNoUsim : kExitFailed);
                }
                break;
            case Stage::receiving:
                if (std::get_if<ue::DownlinkReceived>(&ev))
                    next();
                break;
            case Stage::refreshing:
                if (auto* c = std::get_if<ue::RefreshCompleted>(&ev);
                    c && c->origin == emsdp::RefreshOrigin::ue) {
                    stage_ = Stage::terminating0;
                    next();
                } else if (auto* f = std::get_if<ue::RefreshFailed>(&ev);
                           f && f->origin == emsdp::RefreshOrigin::ue) {
                    fail("key refresh failed", agent_.endedForUsim(ev) ? kExitNoUsim : kExitFailed);
                }
                break;
            case Stage::terminating:
                if (std::holds_alternative<ue::SessionTerminated>(ev))
                    done(kExitOk);
                break;
            default:
                break;
        }
        if (stage_ != Stage::terminating && stage_ != Stage::done) {
            if (auto* t = std::get_if<ue::SessionTerminated>(&ev))
                if (t->initiator == ue::Party::hse)
                    fail("the HSE ended the session");
        }
    }

    void timedOut() {
        if (stage_ == Stage::done)
            return;
        say("timed out " + stageName());
        done(kExitTimeout);
    }

    int exitCode() const { return exit_; }

private:
    enum class Stage { establishing, receiving, refreshing, terminating0, terminating, done };

    std::string stageName() const {
        switch (stage_) {
            case Stage::establishing:
                return "while establishing the session";
            case Stage::receiving:
                return "waiting for downlink (" + std::to_string(received_) + " of " +
                       std::to_string(args_.recv) + " received)";
            case Stage::refreshing:
                return "waiting for the key refresh";
            case Stage::terminating0:
            case Stage::terminating:
                return "waiting for the termination";
            case Stage::done:
                break;
        }
        return "";
    }

    void next() {
        if (stage_ == Stage::receiving) {
            while (received_ < args_.recv) {  // includes downlink that came before the uplink
                auto d = agent_.takeDownlink();
                if (!d)
                    return;
                sayDownlink(*d);
            }
            if (args_.refresh) {
                stage_ = Stage::refreshing;
                if (auto r = agent_.refresh(); !r)
                    return fail("key refresh: " + r.error().message);
                say("key refresh requested");
                return;
            }
            stage_ = Stage::terminating0;
        }
        if (stage_ == Stage::terminating0) {
            if (!args_.terminate)
                return done(kExitOk);
            stage_ = Stage::terminating;
            if (auto r = agent_.terminate(); !r)
                return fail("terminate: " + r.error().message);
        }
    }

    void sayDownlink(const Agent::Downlink& d) {
        say("downlink " + std::to_string(d.payload.size()) + " octets (count " +
            std::to_string(d.count) + "): " + std::string(d.payload.begin(), d.payload.end()));
        ++received_;
    }

    void fail(const std::string& why, int code = kExitFailed) {
        say("failed: " + why);
        done(code);
    }

    void done(int code) {
        stage_ = Stage::done;
        exit_ = code;
        loop_.stop();
    }

    Agent& agent_;
    net::Loop& loop_;
    const Args& args_;
    Stage stage_ = Stage::establishing;
    unsigned received_ = 0;
    int exit_ = kExitOk;
};

int runAgent(const Args& args, AgentConfig cfg, bool scripted) {
    net::Loop loop;
    auto agent = Agent::create(std::move(cfg), loop);
    if (!agent) {
        log::error("best-ue", agent.error().describe());
        return usimUnreachable(agent.error()) ? kExitNoUsim : kExitFailed;
    }
    auto sigterm = loop.make<net::Signal>();
    auto sigint = loop.make<net::Signal>();
    int code = kExitOk;
    if (!scripted) {
        if (auto r = (*agent)->listenControl(); !r) {
            log::error("best-ue", r.error().message);
            return kExitFailed;
        }
        auto stop = [&](int) { (*agent)->shutdown(std::chrono::seconds(2)); };
        (void)sigterm->start(SIGTERM, stop);
        (void)sigint->start(SIGINT, stop);
        log::notice("best-ue", (*agent)->usimDescription() + ", IMSI " + (*agent)->imsi() +
                                   "; control socket " + (*agent)->config().controlSocket);
        if (auto r = (*agent)->establish(); !r)
            log::warning("best-ue", "establish: " + r.error().message);
        loop.run();
        ::unlink((*agent)->config().controlSocket.c_str());
        log::notice("best-ue", "stopped");
    } else {
        Script script(**agent, loop, args);
        (*agent)->observer = [&script](const ue::Event& e) { script.onEvent(e); };
        auto timeout = loop.make<net::Timer>();
        timeout->start(args.timeout.value_or(60) * 1000, 0, [&script] { script.timedOut(); });
        auto stop = [&](int) {
            script.say("interrupted");
            loop.stop();
        };
        (void)sigterm->start(SIGTERM, stop);
        (void)sigint->start(SIGINT, stop);
        script.begin();
        loop.run();
        code = script.exitCode();
        (*agent)->observer = nullptr;
    }
    return code;
}

}  // namespace

int main(int argc, char** argv) {
    hardenProcess();
    auto args = parseArgs(argc, argv);
    if (!args) {
        std::fputs(kUsage, stderr);
        return kExitUsage;
    }
    if (args->command == "help") {
        std::fputs(kUsage, stdout);
        return kExitOk;
    }
    static const std::vector<std::string> known{"run",       "session", "send",      "recv",
                                                "establish", "refresh", "terminate", "status"};
    if (std::find(known.begin(), known.end(), args->command) == known.end() ||
        (args->config.empty() && args->socket.empty()) ||
        ((args->command == "run" || args->command == "session") && args->config.empty())) {
        std::fputs(kUsage, stderr);
        return kExitUsage;
    }
    if (!args->logLevel.empty()) {
        const auto l = log::parseLevel(args->logLevel);
        if (!l) {
            std::fputs(kUsage, stderr);
            return kExitUsage;
        }
        log::setLevel(*l);
    }

    std::optional<AgentConfig> cfg;
    if (!args->config.empty()) {
        auto c = loadAgentConfig(args->config);
        if (!c) {
            std::fprintf(stderr, "best-ue: %s\n", c.error().message.c_str());
            return kExitUsage;
        }
        cfg = std::move(*c);
        if (args->logLevel.empty()) {
            if (const auto l = log::parseLevel(cfg->logLevel))
                log::setLevel(*l);
        }
    }

    if (args->command == "run" || args->command == "session") {
        for (const auto& w : cfg->warnings)
            log::warning("best-ue", w);
        return runAgent(*args, std::move(*cfg), args->command == "session");
    }

    const std::string path = !args->socket.empty() ? args->socket : cfg->controlSocket;
    std::string request = args->command;
    std::uint64_t waitMs = args->timeout.value_or(10000);
    if (args->command == "send") {
        if (args->positional.size() != 1) {
            std::fputs(kUsage, stderr);
            return kExitUsage;
        }
        Bytes payload;
        if (args->hex) {
            auto b = fromHex(args->positional[0], "DATA");
            if (!b) {
                std::fprintf(stderr, "best-ue send: %s\n", b.error().message.c_str());
                return kExitUsage;
            }
            payload = *b;
        } else {
            payload.assign(args->positional[0].begin(), args->positional[0].end());
        }
        request += " " + toHex(payload);
    } else if (args->command != "status") {
        if (!args->positional.empty()) {
            std::fputs(kUsage, stderr);
            return kExitUsage;
        }
        request += " " + std::to_string(waitMs);
    }
    std::string reply;
    if (int rc = control(path, request, waitMs, reply); rc != kExitOk)
        return rc;
    return finish(reply, args->command, args->hex);
}
