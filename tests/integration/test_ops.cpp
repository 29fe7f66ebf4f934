// best-hsed operations (issue 7): the admin socket (permissions, SO_PEERCRED, every command),
// sd_notify through a test NOTIFY_SOCKET (READY, WATCHDOG, STATUS, RELOADING, STOPPING),
// SIGHUP with good and bad configurations, SIGTERM, the HSM health probe (fault shim and a
// removed SoftHSM token directory) and the metrics page. A real best-hsed per test.
#include <arpa/inet.h>
#include <grp.h>
#include <sys/stat.h>

#include <cstring>
#include <filesystem>
#include <regex>

#include "crypto/milenage.h"
#include "hsed_fixture.h"
#include "tests/support/http_exchange.h"

#ifndef BEST_P11_FAULT_SHIM
#error "BEST_P11_FAULT_SHIM (path of the test shim) is set by tests/integration/meson.build"
#endif

namespace best::itest {
namespace {

constexpr gid_t kAdminGid = 4321;  // the socket's group in these tests (need not exist)

// One request line, one response line (empty when the daemon closed without one).
std::string adminCall(const std::string& path, const std::string& line, int timeoutMs = 10000) {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path.c_str());
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        const std::string e = std::string("connect: ") + std::strerror(errno);
        ::close(fd);
        return e;
    }
    const std::string req = line + "\n";
    (void)::send(fd, req.data(), req.size(), MSG_NOSIGNAL);
    std::string out;
    char buf[4096];
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeoutMs);
    while (out.find('\n') == std::string::npos && std::chrono::steady_clock::now() < until) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 100) <= 0)
            continue;
        const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0)
            break;
        out.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    if (auto nl = out.find('\n'); nl != std::string::npos)
        out.resize(nl);
    return out;
}

// The value of one sample line ("name{labels} value"), or -1.
double metricValue(const std::string& page, const std::string& series) {
    std::istringstream in(page);
    std::string line;
    while (std::getline(in, line))
        if (line.size() > series.size() && line.compare(0, series.size(), series) == 0 &&
            line[series.size()] == ' ')
            return std::stod(line.substr(series.size() + 1));
    return -1;
}

// A datagram socket standing in for systemd's NOTIFY_SOCKET.
class NotifySink {
public:
    explicit NotifySink(std::string path) : path_(std::move(path)) {
        fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path_.c_str());
        ::unlink(path_.c_str());
        if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
            throw std::runtime_error("cannot bind " + path_);
    }
    ~NotifySink() {
        ::close(fd_);
        ::unlink(path_.c_str());
    }
    const std::string& path() const { return path_; }
    // Every message received within `ms`, appended to all().
    void collect(int ms) {
        const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
        while (std::chrono::steady_clock::now() < until) {
            pollfd p{fd_, POLLIN, 0};
            if (::poll(&p, 1, 20) <= 0)
                continue;
            char buf[4096];
            const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
            if (n > 0)
                all_.emplace_back(buf, static_cast<std::size_t>(n));
        }
    }
    // Waits until a message containing `needle` arrives (after those seen so far).
    bool waitFor(const std::string& needle, int ms) {
        const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
        while (std::chrono::steady_clock::now() < until) {
            const std::size_t before = all_.size();
            collect(50);
            for (std::size_t i = before; i < all_.size(); ++i)
                if (all_[i].find(needle) != std::string::npos)
                    return true;
        }
        return false;
    }
    std::size_t count(const std::string& needle) const {
        std::size_t n = 0;
        for (const auto& m : all_)
            n += m.find(needle) != std::string::npos ? 1 : 0;
        return n;
    }
    void clear() { all_.clear(); }
    const std::vector<std::string>& all() const { return all_; }

private:
    std::string path_;
    int fd_ = -1;
    std::vector<std::string> all_;
};

class OpsTest : public HsedFixture {
protected:
    std::string confPath() const { return dir_ + "/hsed.yaml"; }

    DaemonOptions opsOptions(unsigned probeInterval = 1) const {
        DaemonOptions o;
        o.extraConfig = "admin:\n  socket: " + adminPath() + "\n  group: \"" +
                        std::to_string(kAdminGid) + "\"\nmetrics:\n  address: 127.0.0.1\n" +
                        "  port: 0\nhealth:\n  probe_interval: " + std::to_string(probeInterval) +
                        "\n";
        return o;
    }

    std::uint16_t metricsPort() const {
        std::istringstream in(readFile(dir_ + "/ports"));
        std::string word, addr;
        unsigned port = 0;
        while (in >> word) {
            if (word == "metrics" && in >> addr >> port)
                return static_cast<std::uint16_t>(port);
            if (word == "emsdp")
                in >> addr >> port;
        }
        return 0;
    }

    std::string scrape() {
        const std::string r =
            test::httpExchange(metricsPort(), "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        const auto body = r.find("\r\n\r\n");
        return body == std::string::npos ? std::string() : r.substr(body + 4);
    }

    // Polls the metrics page until `series` has `value`.
    bool waitMetric(const std::string& series, double value, int ms) {
        const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
        while (std::chrono::steady_clock::now() < until) {
            if (metricValue(scrape(), series) == value)
                return true;
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
        return false;
    }

    // Starts an establishment; the cause of the reject that ends it.
    static std::optional<emsdp::Cause> attemptRejectCause(UeClient& ue) {
        ue.begin();
        ue.pump([&ue] { return ue.has<ue::AttemptEnded>() || ue.has<ue::SessionEstablished>(); },
                8000);
        if (auto* r = ue.last<ue::AttemptEnded>())
            return r->cause;
        return std::nullopt;
    }

    // Establishes and confirms (an uplink payload reaches the sink).
    void establishConfirmed(UeClient& ue) {
        ASSERT_TRUE(ue.establish()) << log();
        const std::string msg = "uplink";
        ue::Output out;
        ASSERT_TRUE(ue.engine().sendUplink(
            ByteView(reinterpret_cast<const std::uint8_t*>(msg.data()), msg.size()),
            ue::UeTime::now(), out));
        for (auto& d : out.datagrams)
            ue.peer().send(d);
        ASSERT_TRUE(readSink());
    }

    // Runs `f` in a child process with these credentials; its exit code.
    static int asUser(uid_t uid, gid_t gid, const std::function<int()>& f) {
        const pid_t pid = ::fork();
        if (pid == 0) {
            if (::setgroups(0, nullptr) != 0 || ::setgid(gid) != 0 || ::setuid(uid) != 0)
                ::_exit(100);
            ::_exit(f());
        }
        int st = 0;
        ::waitpid(pid, &st, 0);
        return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    }
};

// ---- admin socket

TEST_F(OpsTest, AdminSocketIsRootAndGroupOnly) {
    ASSERT_EQ(::geteuid(), 0u) << "this test needs root (setuid in a child)";
    start(opsOptions());
    ASSERT_EQ(::chmod(dir_.c_str(), 0711), 0);  // other users may reach the socket file
    struct stat sb {};
    ASSERT_EQ(::stat(adminPath().c_str(), &sb), 0);
    EXPECT_TRUE(S_ISSOCK(sb.st_mode));
    EXPECT_EQ(sb.st_mode & 07777, 0660u);
    EXPECT_EQ(sb.st_uid, 0u);
    EXPECT_EQ(sb.st_gid, kAdminGid);

    // The file mode keeps other users out.
    EXPECT_EQ(asUser(65534, 65534,
                     [this] {
                         const std::string r = adminCall(adminPath(), "status");
                         return r.find("Permission denied") != std::string::npos ? 0 : 1;
                     }),
              0);
    // Even when the file mode is opened up, SO_PEERCRED refuses them...
    ASSERT_EQ(::chmod(adminPath().c_str(), 0666), 0);
    EXPECT_EQ(asUser(65534, 65534,
                     [this] {
                         const std::string r = adminCall(adminPath(), "status");
                         return r.find("\"error\":\"permission_denied\"") != std::string::npos ? 0
                                                                                               : 1;
                     }),
              0);
    // ...and lets a member of the socket's group in.
    EXPECT_EQ(asUser(65534, kAdminGid,
                     [this] {
                         const std::string r = adminCall(adminPath(), "status");
                         return r.find("\"ok\":true") != std::string::npos ? 0 : 1;
                     }),
              0);
    const std::string page = scrape();
    EXPECT_EQ(metricValue(page, "best_admin_refused_total"), 1);
    EXPECT_NE(log().find("admin connection refused: uid 65534"), std::string::npos);
}

TEST_F(OpsTest, AdminCommands) {
    start(opsOptions());
    // status
    std::string r = adminCall(adminPath(), "status");
    EXPECT_NE(r.find("\"ok\":true"), std::string::npos) << r;
    EXPECT_NE(r.find("\"hse_id\":\"hse.test.example\""), std::string::npos) << r;
    EXPECT_NE(r.find("\"hsm_up\":true"), std::string::npos) << r;
    // The same request as JSON.
    EXPECT_NE(adminCall(adminPath(), R"({"command":"status"})").find("\"ok\":true"),
              std::string::npos);

    // ue show: a confirmed session and its key set, no key material.
    UeClient ue(port_, ueSettings(kEasHse));
    establishConfirmed(ue);
    // The confirmed set is written to the store asynchronously: wait for it.
    for (int i = 0; i < 100; ++i) {
        r = adminCall(adminPath(), std::string("ue show imsi=") + kImsi);
        if (r.find("\"key_sets\":[]") == std::string::npos)
            break;
        std::this_thread::sleep_for(std::chrono::milliseconds(30));
    }
    EXPECT_NE(r.find("\"ok\":true"), std::string::npos) << r;
    EXPECT_NE(r.find("\"key_sets\":[{\"kid\":1,\"state\":\"current\""), std::string::npos) << r;
    EXPECT_NE(r.find("\"sessions\":[{\"session_id\":"), std::string::npos) << r;
    EXPECT_NE(r.find("\"counters\":{\"cp_tx_next\":"), std::string::npos) << r;
    for (const char* secret : {"k_int", "kint", "blob", kKHex, kOpcHex})
        EXPECT_EQ(r.find(secret), std::string::npos) << secret;
    EXPECT_NE(adminCall(adminPath(), "ue show imsi=001010000000999").find("\"unknown_imsi\""),
              std::string::npos);
    EXPECT_NE(adminCall(adminPath(), "ue show").find("\"bad_request\""), std::string::npos);

    // sqn set: durable in the store when the answer comes.
    r = adminCall(adminPath(), std::string("sqn set imsi=") + kImsi + " seq=100");
    EXPECT_NE(r.find("\"next_seq\":100"), std::string::npos) << r;
    {
        auto st = openStore();
        ASSERT_TRUE(st) << st.error().message;
        auto s = (*st)->getSqnState(kImsi);
        ASSERT_TRUE(s);
        EXPECT_EQ(s->seqHe, 99u);
        EXPECT_EQ(s->lastChange, "set");
    }
    EXPECT_NE(adminCall(adminPath(), std::string("sqn set imsi=") + kImsi + " seq=0")
                  .find("\"bad_request\""),
              std::string::npos);

    // sqn resync: an AUTS for SQN_MS = SEQ 500 (IND 0, 5 IND bits) from the test USIM's keys.
    crypto::Rand rand{};
    rand.fill(0x5a);
    const crypto::Sqn sqnMs{0, 0, 0, 0, 0x3e, 0x80};  // 500 << 5
    crypto::SoftAes128 ek(secretFromHex<SubscriberK>(kKHex));
    auto auts = crypto::buildAuts(ek, secretFromHex<Opc>(kOpcHex), rand, sqnMs);
    ASSERT_TRUE(auts);
    r = adminCall(adminPath(), std::string("sqn resync imsi=") + kImsi +
                                   " rand=" + toHex(ByteView(rand.data(), rand.size())) +
                                   " auts=" + toHex(ByteView(auts->data(), auts->size())));
    EXPECT_NE(r.find("\"sqn_ms\":\"000000003e80\""), std::string::npos) << r;
    // A wrong AUTS: MAC-S fails, nothing changes.
    (*auts)[13] ^= 1;
    r = adminCall(adminPath(), std::string("sqn resync imsi=") + kImsi +
                                   " rand=" + toHex(ByteView(rand.data(), rand.size())) +
                                   " auts=" + toHex(ByteView(auts->data(), auts->size())));
    EXPECT_NE(r.find("\"mac_s_failed\""), std::string::npos) << r;
    {
        auto st = openStore();
        ASSERT_TRUE(st);
        auto s = (*st)->getSqnState(kImsi);
        ASSERT_TRUE(s);
        EXPECT_EQ(s->seqHe, 500u);
        EXPECT_EQ(s->lastChange, "resync");
    }

    // reload (the same file), unknown and malformed requests.
    EXPECT_NE(adminCall(adminPath(), "reload").find("\"ok\":true"), std::string::npos);
    EXPECT_NE(adminCall(adminPath(), "frobnicate").find("\"unknown_command\""), std::string::npos);
    EXPECT_NE(adminCall(adminPath(), "{\"command\":").find("\"bad_request\""), std::string::npos);
    EXPECT_NE(adminCall(adminPath(), std::string(5000, 'a')).find("\"bad_request\""),
              std::string::npos);

    const std::string page = scrape();
    EXPECT_EQ(metricValue(page, "best_resyncs_total"), 1);
    EXPECT_EQ(metricValue(page, R"(best_config_reloads_total{result="ok"})"), 1);
    EXPECT_GE(metricValue(page, "best_admin_requests_total"), 10);
}

// ---- best-hsectl through the admin socket

class HsectlTest : public OpsTest {
protected:
    // best-hsectl with the test's config (admin socket, store, token); stdout and stderr.
    testing::CommandResult hsectl(const std::string& args) {
        const char* exe = std::getenv("BEST_HSECTL");
        if (exe == nullptr)
            return {-1, "BEST_HSECTL not set"};
        return testing::runCommand(std::string(exe) + " --config " + confPath() + " " + args);
    }
};

TEST_F(HsectlTest, CommandsGoThroughTheSocketWhileTheDaemonRuns) {
    start(opsOptions());
    UeClient ue(port_, ueSettings(kEasHse));
    establishConfirmed(ue);

    auto r = hsectl("status --daemon");
    EXPECT_EQ(r.status, 0) << r.output;
    EXPECT_NE(r.output.find("hse_id: hse.test.example\n"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("health probe passes"), std::string::npos) << r.output;
    r = hsectl("status --daemon --json");
    EXPECT_EQ(r.status, 0);
    EXPECT_EQ(r.output.rfind("{\"hse_id\":\"hse.test.example\"", 0), 0u) << r.output;

    r = hsectl(std::string("ue show --imsi ") + kImsi);
    EXPECT_EQ(r.status, 0) << r.output;
    EXPECT_NE(r.output.find("sessions: 1\n"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("confirmed (full)"), std::string::npos) << r.output;
    r = hsectl("ue show --imsi 001010000000999");
    EXPECT_EQ(r.status, 4);
    EXPECT_EQ(r.output, "best-hsectl ue show: no subscriber 001010000000999\n");
    r = hsectl("ue show --imsi 12");
    EXPECT_EQ(r.status, 2) << r.output;

    // ue refresh: an HSE-triggered refresh in the confirmed session.
    r = hsectl(std::string("ue refresh --imsi ") + kImsi);
    EXPECT_EQ(r.status, 0) << r.output << log();
    EXPECT_NE(r.output.find("key refresh of IMSI " + std::string(kImsi) + " started in session"),
              std::string::npos)
        << r.output;
    r = hsectl("ue refresh --imsi 001010000000999");
    EXPECT_EQ(r.status, 4) << r.output;
    EXPECT_EQ(r.output,
              "best-hsectl ue refresh: no key refresh for IMSI 001010000000999: no confirmed "
              "session\n");

    // sqn set goes through the daemon; the store shows it.
    r = hsectl(std::string("sqn set --imsi ") + kImsi + " --next 300");
    EXPECT_EQ(r.status, 0) << r.output;
    EXPECT_NE(r.output.find("seq_he: 299\n"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("last_change: set\n"), std::string::npos) << r.output;

    // reload; and a bad file: exit 1, the daemon keeps its configuration.
    r = hsectl("reload");
    EXPECT_EQ(r.status, 0) << r.output;
    EXPECT_EQ(r.output, confPath() + " reloaded (policy, logging, health)\n");
    const std::string conf = readFile(confPath());
    std::ofstream(confPath()) << conf << "bogus_key: 1\n";
    // (best-hsectl itself reads --config, so it is told the socket only.)
    r = testing::runCommand(std::string(std::getenv("BEST_HSECTL")) + " --admin-socket " +
                            adminPath() + " reload");
    std::ofstream(confPath()) << conf;
    EXPECT_EQ(r.status, 1) << r.output;
    EXPECT_NE(r.output.find("best-hsectl reload: " + confPath() + ":"), std::string::npos)
        << r.output;
    EXPECT_NE(r.output.find("key 'bogus_key': unknown key"), std::string::npos) << r.output;

    // Changes that would race the daemon are refused; so is sqn set when the socket is wrong.
    r = hsectl("subscriber remove --imsi " + std::string(kImsi));
    EXPECT_EQ(r.status, 5) << r.output;
    EXPECT_NE(r.output.find("this change would race it: stop the daemon first"), std::string::npos)
        << r.output;
    r = hsectl(std::string("--admin-socket ") + dir_ + "/nothing.sock sqn set --imsi " + kImsi +
               " --next 400");
    EXPECT_EQ(r.status, 5) << r.output;
    EXPECT_NE(r.output.find("its admin socket cannot be used (admin socket '" + dir_ +
                            "/nothing.sock': No such file or directory)"),
              std::string::npos)
        << r.output;
    stop();
    // Without a daemon: the admin commands say so (exit 7).
    r = hsectl(std::string("ue show --imsi ") + kImsi);
    EXPECT_EQ(r.status, 7) << r.output;
    EXPECT_NE(r.output.find("(is best-hsed running? --admin-socket PATH)"), std::string::npos);
}

// ---- systemd: readiness, watchdog, status, reload, stop

TEST_F(OpsTest, NotifyReadyWatchdogReloadAndStop) {
    NotifySink sink(dir_ + "/notify.sock");
    DaemonOptions o = opsOptions();
    o.env = {{"NOTIFY_SOCKET", sink.path()}, {"WATCHDOG_USEC", "400000"}};
    start(o);
    ASSERT_TRUE(sink.waitFor("READY=1", 5000));
    EXPECT_NE(sink.all().back().find("STATUS=ready; listening: 127.0.0.1:"), std::string::npos)
        << sink.all().back();
    // Half of WATCHDOG_USEC: about 5 pings a second.
    sink.clear();
    sink.collect(1500);
    EXPECT_GE(sink.count("WATCHDOG=1"), 4u);
    EXPECT_LE(sink.count("WATCHDOG=1"), 10u);

    // A good reload: a reloadable key changed.
    std::string conf = readFile(confPath());
    std::ofstream(confPath()) << std::regex_replace(conf, std::regex("key_set_lifetime: 3600"),
                                                    "key_set_lifetime: 1800");
    sink.clear();
    ::kill(pid_, SIGHUP);
    ASSERT_TRUE(sink.waitFor("READY=1", 5000));
    EXPECT_EQ(sink.count("RELOADING=1"), 1u);
    EXPECT_NE(log().find("SIGHUP: " + confPath() + " reloaded"), std::string::npos);

    // A bad one: YAML syntax. The old configuration stays, STATUS and the log say why.
    std::ofstream(confPath()) << conf << "policy: [\n";
    sink.clear();
    ::kill(pid_, SIGHUP);
    ASSERT_TRUE(sink.waitFor("reload failed, old configuration kept", 5000));
    EXPECT_NE(log().find("SIGHUP: reload failed, old configuration kept: " + confPath()),
              std::string::npos);
    // A key that needs a restart.
    std::ofstream(confPath()) << std::regex_replace(conf, std::regex("hse_id: hse.test.example"),
                                                    "hse_id: other.example");
    sink.clear();
    ::kill(pid_, SIGHUP);
    ASSERT_TRUE(sink.waitFor("reload failed", 5000));
    EXPECT_NE(log().find("hse_id changed: these keys need a restart; nothing reloaded"),
              std::string::npos);
    std::string st = adminCall(adminPath(), "status");
    EXPECT_NE(st.find("\"reload_failures\":2"), std::string::npos) << st;
    EXPECT_NE(st.find("\"hse_id\":\"hse.test.example\""), std::string::npos) << st;
    // Still serving with the old configuration.
    UeClient ue(port_, ueSettings(kEasHse));
    ASSERT_TRUE(ue.establish());
    EXPECT_EQ(metricValue(scrape(), R"(best_config_reloads_total{result="failed"})"), 2);

    // SIGTERM: STOPPING=1, exit 0 (stop() checks), admin socket removed.
    sink.clear();
    stop();
    sink.collect(200);
    EXPECT_EQ(sink.count("STOPPING=1"), 1u);
    EXPECT_NE(log().find("draining"), std::string::npos);
    EXPECT_FALSE(std::filesystem::exists(adminPath()));
}

// ---- HSM health

class HsmHealthTest : public OpsTest {
protected:
    std::string faultFile() const { return dir_ + "/faults"; }
    void setFaults(const std::string& rules) {
        std::ofstream(faultFile() + ".tmp") << rules;
        std::filesystem::rename(faultFile() + ".tmp", faultFile());
    }
    std::optional<emsdp::Cause> rejectCause(UeClient& ue) { return attemptRejectCause(ue); }
};

TEST_F(HsmHealthTest, TokenFailureThroughTheShimAndRecovery) {
    NotifySink sink(dir_ + "/notify.sock");
    setFaults("");
    DaemonOptions o = opsOptions(1);
    o.module = BEST_P11_FAULT_SHIM;
    o.env = {{"NOTIFY_SOCKET", sink.path()},
             {"WATCHDOG_USEC", "400000"},
             {"BEST_P11_SHIM_TARGET", testing::softHsmModule()},
             {"BEST_P11_FAULT_FILE", faultFile()}};
    start(o);
    ASSERT_TRUE(sink.waitFor("READY=1", 5000));
    ASSERT_TRUE(waitMetric(R"(best_hsm_health_probes_total{result="ok"})", 1, 5000) ||
                metricValue(scrape(), R"(best_hsm_health_probes_total{result="ok"})") >= 1);
    {
        UeClient ue(port_, ueSettings(kEasHse));
        ASSERT_TRUE(ue.establish());
    }

    // The token reports itself removed.
    setFaults("C_GetTokenInfo=0x32\n");
    ASSERT_TRUE(waitMetric("best_hsm_up", 0, 8000)) << log();
    ASSERT_TRUE(sink.waitFor("HSM unavailable", 3000));
    sink.clear();
    sink.collect(1200);
    EXPECT_EQ(sink.count("WATCHDOG=1"), 0u);
    {
        UeClient ue(port_, ueSettings(kEasHse));
        EXPECT_EQ(rejectCause(ue), emsdp::Cause::internal_error);
    }
    std::string page = scrape();
    EXPECT_EQ(metricValue(page, "best_hsm_unavailable_rejects_total"), 1);
    EXPECT_EQ(metricValue(page, R"(best_rejects_total{cause="internal_error",code="0x12"})"), 1);
    EXPECT_GE(metricValue(page, R"(best_hsm_health_probes_total{result="failed"})"), 1);
    EXPECT_NE(adminCall(adminPath(), "status").find("\"hsm_up\":false"), std::string::npos);

    // The token is back: everything recovers without a restart.
    setFaults("");
    ASSERT_TRUE(waitMetric("best_hsm_up", 1, 8000)) << log();
    sink.clear();
    ASSERT_TRUE(sink.waitFor("WATCHDOG=1", 2000));
    {
        UeClient ue(port_, ueSettings(kEasHse));
        ASSERT_TRUE(ue.establish());
    }
    EXPECT_NE(log().find("HSM health probe passes again"), std::string::npos);
}

TEST_F(HsmHealthTest, SoftHsmTokenDirectoryRemovedAndRestored) {
    start(opsOptions(1));
    ASSERT_TRUE(waitMetric("best_hsm_up", 1, 5000));
    const std::string tokens = dir_ + "/tokens";
    const std::string away = dir_ + "/tokens.away";
    std::filesystem::rename(tokens, away);
    ASSERT_TRUE(waitMetric("best_hsm_up", 0, 8000)) << log();
    {
        UeClient ue(port_, ueSettings(kEasHse));
        EXPECT_EQ(rejectCause(ue), emsdp::Cause::internal_error);
    }
    std::filesystem::rename(away, tokens);
    // SoftHSM keeps the token invalid until C_Finalize: the daemon re-initialises the module.
    ASSERT_TRUE(waitMetric("best_hsm_up", 1, 8000)) << log();
    EXPECT_EQ(metricValue(scrape(), "best_hsm_reopens_total"), 1);
    EXPECT_NE(log().find("re-initialising the PKCS#11 module"), std::string::npos);
    UeClient ue(port_, ueSettings(kEasHse));
    EXPECT_TRUE(ue.establish());
}

// ---- metrics page

TEST_F(OpsTest, MetricsPage) {
    start(opsOptions());
    const std::uint16_t mport = metricsPort();
    ASSERT_NE(mport, 0);
    std::string before = scrape();
    EXPECT_EQ(metricValue(before, R"(best_sessions_total{outcome="established_full"})"), 0);
    EXPECT_EQ(metricValue(before, "best_hsm_up"), 1);
    EXPECT_GT(metricValue(before, "process_resident_memory_bytes"), 0);

    {
        UeClient ue(port_, ueSettings(kEasHse));
        establishConfirmed(ue);
        // An EAS the subscriber may not use: Reject 0x08; garbage: a drop.
        UeClient other(port_, ueSettings(kEasOther), "001010123456789");
        EXPECT_EQ(attemptRejectCause(other), emsdp::Cause::eas_not_allowed);
        UdpPeer raw(port_);
        raw.send(Bytes{0x01});
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    const std::string page = scrape();
    EXPECT_EQ(metricValue(page, R"(best_sessions_total{outcome="established_full"})"), 1);
    EXPECT_EQ(metricValue(page, R"(best_sessions_total{outcome="confirmed"})"), 1);
    EXPECT_EQ(metricValue(page, R"(best_rejects_total{cause="eas_not_allowed",code="0x08"})"), 1);
    EXPECT_EQ(metricValue(page, R"(best_drops_total{reason="truncated_header"})"), 1);
    EXPECT_EQ(metricValue(page, R"(best_aka_seconds_count{kind="full"})"), 2);
    EXPECT_GE(metricValue(page, R"(best_hsm_job_seconds_count{job="establish_full"})"), 2);
    EXPECT_EQ(metricValue(page, R"(best_sessions_active{state="confirmed"})"), 1);
    // Two full establishments: each made at least its KInt object (C_CreateObject) and signed.
    EXPECT_GE(metricValue(page, R"(best_hsm_calls_total{function="C_CreateObject"})"), 1);
    EXPECT_GE(metricValue(page, R"(best_hsm_calls_total{function="C_Sign"})"), 2);
    EXPECT_GE(metricValue(page, "best_hsm_objects_created_total"),
              metricValue(page, R"(best_hsm_calls_total{function="C_CreateObject"})"));

    // The responder: 404, 405, 400, 505, and a close after each response.
    EXPECT_EQ(test::httpExchange(mport, "GET /other HTTP/1.1\r\nHost: x\r\n\r\n")
                  .rfind("HTTP/1.1 404", 0),
              0u);
    EXPECT_EQ(test::httpExchange(mport, "POST /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
                  .rfind("HTTP/1.1 405", 0),
              0u);
    EXPECT_EQ(test::httpExchange(mport, "GET /metrics\r\n\r\n").rfind("HTTP/1.1 400", 0), 0u);
    EXPECT_EQ(test::httpExchange(mport, "GET /metrics HTTP/2.0\r\nHost: x\r\n\r\n")
                  .rfind("HTTP/1.1 505", 0),
              0u);
    EXPECT_EQ(test::httpExchange(mport, "GET /metrics HTTP/1.1\r\nHost: x\r\nX: " +
                                            std::string(9000, 'a') + "\r\n\r\n")
                  .rfind("HTTP/1.1 431", 0),
              0u);
    const std::string ok = test::httpExchange(mport, "GET /metrics HTTP/1.0\r\n\r\n");
    EXPECT_EQ(ok.rfind("HTTP/1.1 200 OK\r\n", 0), 0u);
    EXPECT_NE(ok.find("Content-Type: text/plain; version=0.0.4"), std::string::npos);
    EXPECT_NE(ok.find("Connection: close"), std::string::npos);
}

// The uplink sink through the daemon (docs/hsed.md "User plane sink"): while the consumer does
// not read, its queue fills, `sink.uplink_backlog` frames wait in order, newer ones are dropped
// and counted; once it reads, the backlog follows in order.
TEST_F(OpsTest, UplinkBacklogKeepsOrderAndCountsDrops) {
    DaemonOptions o = opsOptions();
    o.extraSink = "  uplink_backlog: 5\n";
    start(o);
    UeClient ue(port_, ueSettings(kEasHse));
    establishConfirmed(ue);  // one frame, read
    constexpr int kSent = 40;
    for (int i = 0; i < kSent; ++i) {
        const Bytes payload{0x55, static_cast<std::uint8_t>(i)};
        ue::Output out;
        ASSERT_TRUE(ue.engine().sendUplink(payload, ue::UeTime::now(), out));
        for (auto& d : out.datagrams)
            ue.peer().send(d);
    }
    ASSERT_TRUE(waitMetric("best_uplink_backlog", 5, 5000)) << scrape();
    const std::string full = scrape();
    const double dropped = metricValue(full, R"(best_uplink_frames_total{outcome="dropped_full"})");
    const double inQueue =
        metricValue(full, R"(best_uplink_frames_total{outcome="delivered"})") - 1;
    EXPECT_GT(dropped, 0);
    EXPECT_EQ(inQueue + 5 + dropped, kSent);
    EXPECT_EQ(metricValue(full, R"(best_uplink_frames_total{outcome="dropped_no_sink"})"), 0);
    // Reading drains the queue; the backlog follows: the first inQueue + 5 payloads, in order.
    std::vector<int> seen;
    while (auto f = readSink(1000)) {
        ASSERT_EQ(f->size(), 4u + 2u);
        EXPECT_EQ((*f)[4], 0x55);
        seen.push_back((*f)[5]);
    }
    ASSERT_EQ(seen.size(), static_cast<std::size_t>(inQueue + 5));
    for (std::size_t i = 0; i < seen.size(); ++i)
        EXPECT_EQ(seen[i], static_cast<int>(i));
    const std::string after = scrape();
    EXPECT_EQ(metricValue(after, "best_uplink_backlog"), 0);
    EXPECT_EQ(metricValue(after, R"(best_uplink_frames_total{outcome="delivered"})"),
              1 + inQueue + 5);
}

}  // namespace
}  // namespace best::itest
