// Operations building blocks (issue 7): Prometheus text rendering, the admin socket's request
// parsing and JSON, peer checks, and sd_notify datagrams read from a socket of the test's own.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <thread>

#include <gtest/gtest.h>

#include "hse/admin_server.h"
#include "hse/config.h"
#include "hse/metrics.h"
#include "hse/notifier.h"

namespace best::hse {
namespace {

// ---- metrics

TEST(PromWriter, FamiliesSamplesAndEscaping) {
    PromWriter w;
    w.family("best_x_total", "counter", "Things, with a \\ and\na newline.");
    w.sample("best_x_total", {{"cause", "a\"b\\c\nd"}, {"code", "0x12"}}, std::uint64_t{7});
    w.family("best_up", "gauge", "Up.");
    w.sample("best_up", {}, 0.5);
    EXPECT_EQ(w.text(),
              "# HELP best_x_total Things, with a \\\\ and\\na newline.\n"
              "# TYPE best_x_total counter\n"
              "best_x_total{cause=\"a\\\"b\\\\c\\nd\",code=\"0x12\"} 7\n"
              "# HELP best_up Up.\n# TYPE best_up gauge\nbest_up 0.5\n");
}

TEST(PromWriter, RefusesSamplesOutsideTheirFamilyAndBadNames) {
    PromWriter w;
    EXPECT_THROW(w.sample("best_a", {}, std::uint64_t{1}), std::logic_error);
    w.family("best_a", "counter", "A.");
    EXPECT_THROW(w.sample("best_b", {}, std::uint64_t{1}), std::logic_error);
    EXPECT_THROW(w.sample("best_a", {{"0bad", "x"}}, std::uint64_t{1}), std::logic_error);
    EXPECT_THROW(w.family("9lives", "gauge", "x"), std::logic_error);
    EXPECT_THROW(w.family("has space", "gauge", "x"), std::logic_error);
    EXPECT_FALSE(PromWriter::validName(""));
    EXPECT_TRUE(PromWriter::validName("a:b_c9"));
    EXPECT_EQ(PromWriter::formatValue(1.0 / 0.0), "+Inf");
    EXPECT_EQ(PromWriter::formatValue(0.25), "0.25");
    EXPECT_EQ(PromWriter::formatValue(0.0025), "0.0025");
    EXPECT_EQ(PromWriter::formatValue(1e-4), "0.0001");
    EXPECT_EQ(PromWriter::formatValue(0.1 + 0.2), "0.30000000000000004");
}

TEST(PromWriter, HistogramIsCumulativeWithInfEqualToCount) {
    LatencyHistogram h;
    h.observe(0.00005);  // first bucket
    h.observe(0.003);    // le 0.005
    h.observe(0.003);
    h.observe(42.0);  // above every bound: only +Inf
    EXPECT_EQ(h.count(), 4u);
    PromWriter w;
    w.histogram("best_lat_seconds", "Latency.", h, {{"job", "x"}});
    const std::string& t = w.text();
    EXPECT_NE(t.find("# TYPE best_lat_seconds histogram\n"), std::string::npos);
    EXPECT_NE(t.find("best_lat_seconds_bucket{job=\"x\",le=\"0.0001\"} 1\n"), std::string::npos);
    EXPECT_NE(t.find("best_lat_seconds_bucket{job=\"x\",le=\"0.0025\"} 1\n"), std::string::npos);
    EXPECT_NE(t.find("best_lat_seconds_bucket{job=\"x\",le=\"0.005\"} 3\n"), std::string::npos);
    EXPECT_NE(t.find("best_lat_seconds_bucket{job=\"x\",le=\"10\"} 3\n"), std::string::npos);
    EXPECT_NE(t.find("best_lat_seconds_bucket{job=\"x\",le=\"+Inf\"} 4\n"), std::string::npos);
    EXPECT_NE(t.find("best_lat_seconds_count{job=\"x\"} 4\n"), std::string::npos);
    EXPECT_NEAR(h.sumSeconds(), 42.00605, 1e-6);
}

TEST(ProcessStats, ReadsThisProcess) {
    const ProcessStats s = readProcessStats();
    EXPECT_GT(s.residentBytes, 0u);
    EXPECT_GE(s.virtualBytes, s.residentBytes);
    EXPECT_GE(s.openFds, 3u);  // stdin, stdout, stderr at least
    EXPECT_GT(s.startTimeSeconds, 1.6e9);
    PromWriter w;
    writeProcessStats(w, s);
    EXPECT_NE(w.text().find("process_open_fds " + std::to_string(s.openFds) + "\n"),
              std::string::npos);
}

// ---- admin protocol

TEST(AdminProtocol, KeyValueAndJsonForms) {
    auto r = parseAdminRequest("  ue show imsi=001010123456789  \r");
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->command, "ue show");
    EXPECT_EQ(r->arg("imsi"), "001010123456789");
    EXPECT_EQ(formatAdminRequest(*r), "ue show imsi=001010123456789");
    r = parseAdminRequest(R"({"command": " sqn   set ", "imsi": "001010123456789", "seq": 100})");
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->command, "sqn set");
    EXPECT_EQ(r->arg("seq"), "100");
    r = parseAdminRequest("status");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->command, "status");
    EXPECT_TRUE(r->args.empty());
}

TEST(AdminProtocol, BadRequestsSayWhy) {
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"", "empty request"},
        {"   ", "empty request"},
        {"imsi=1", "no command"},
        {"ue imsi=1 show", "'show' after key=value arguments"},
        {"UE show", "bad command word 'UE'"},
        {"ue show imsi=1 imsi=2", "argument 'imsi' given twice"},
        {"ue show =1", "bad argument name ''"},
        {std::string("ue show imsi=\x01"), "control character in the request"},
        {std::string(5000, 'a'), "request longer than 4096 octets"},
        {"{\"imsi\":\"1\"}", "no \"command\" member"},
        {"{\"command\":\"status\",\"x\":[1]}", "member 'x' must be a string or a number"},
        {"{\"command\":\"status\",\"x\":1,\"x\":2}", "member 'x' given twice"},
        {"[\"status\"]", "bad command word '[\"status\"]'"},
        {"{\"command\":\"status\"", "bad JSON: expected ',' or '}' at offset 19"},
        {"{\"command\":\"st\\q\"}", "bad JSON: bad escape at offset 16"},
        {"{\"command\":\"status\"} x", "bad JSON: trailing characters at offset 21"},
        {"{\"command\":01}", "bad JSON: leading zero at offset 13"},
    };
    for (const auto& [line, why] : cases) {
        auto r = parseAdminRequest(line);
        ASSERT_FALSE(r) << line;
        EXPECT_EQ(r.error().message, why) << line;
    }
}

TEST(AdminProtocol, JsonRoundTrip) {
    JsonOut o;
    o.begin().field("ok", true).field("text", "a\"b\\c\n\x01").field("n", std::uint64_t{42});
    o.beginArray("list").item("x").item("y").endArray();
    o.beginObject("o").field("neg", -3).null("nothing").end();
    o.end();
    EXPECT_EQ(o.str(), R"({"ok":true,"text":"a\"b\\c\n\u0001","n":42,"list":["x","y"],)"
                       R"("o":{"neg":-3,"nothing":null}})");
    auto v = parseJson(o.str());
    ASSERT_TRUE(v) << v.error().message;
    EXPECT_TRUE(v->flag("ok"));
    EXPECT_EQ(v->str("text"), "a\"b\\c\n\x01");
    EXPECT_EQ(v->uint("n"), 42u);
    ASSERT_NE(v->get("list"), nullptr);
    EXPECT_EQ(v->get("list")->items.size(), 2u);
    EXPECT_EQ(v->get("o")->get("neg")->number, -3);
    EXPECT_EQ(v->get("o")->get("nothing")->type, JsonValue::Type::null);
    EXPECT_EQ(parseJson(R"("\u00e9")")->text, "\xc3\xa9");
    EXPECT_FALSE(parseJson(R"("\ud800")"));
    EXPECT_FALSE(parseJson(std::string(40, '[') + std::string(40, ']')));  // too deep
    EXPECT_EQ(adminError("bad_request", "why"),
              R"({"ok":false,"error":"bad_request","message":"why"})");
}

TEST(AdminProtocol, PeerChecks) {
    const uid_t daemon = 500;
    const gid_t group = 600;
    EXPECT_TRUE(adminPeerAllowed(0, 1, {}, daemon, group));           // root
    EXPECT_TRUE(adminPeerAllowed(500, 1, {}, daemon, group));         // the daemon's user
    EXPECT_TRUE(adminPeerAllowed(700, 600, {}, daemon, group));       // primary group
    EXPECT_TRUE(adminPeerAllowed(700, 1, {5, 600}, daemon, group));   // supplementary
    EXPECT_FALSE(adminPeerAllowed(700, 1, {5, 601}, daemon, group));  // anyone else
    EXPECT_EQ(resolveGroup("4321"), gid_t{4321});
    EXPECT_EQ(resolveGroup("root"), gid_t{0});
    EXPECT_FALSE(resolveGroup("no-such-group-best-hse"));
    EXPECT_FALSE(resolveGroup(""));
    // This process's groups as /proc reports them.
    const auto g = processGroups(::getpid());
    std::vector<gid_t> mine(static_cast<std::size_t>(::getgroups(0, nullptr)));
    ::getgroups(static_cast<int>(mine.size()), mine.data());
    EXPECT_EQ(g.size(), mine.size());
}

// ---- configuration keys (admin, metrics, health)

constexpr const char* kBase =
    "hse_id: h\nlisten:\n  - address: 127.0.0.1\nhsm:\n  token: t\n  pin_file: /p\n"
    "store:\n  path: /s\n";

TEST(OpsConfig, DefaultsAndValues) {
    auto c = parseHsedConfig(kBase, "t.yaml");
    ASSERT_TRUE(c) << c.error().message;
    EXPECT_TRUE(c->admin.socketPath.empty());
    EXPECT_FALSE(c->metrics.enabled);
    EXPECT_EQ(c->healthProbeIntervalSeconds, 5u);
    c = parseHsedConfig(std::string(kBase) +
                            "admin:\n  socket: /run/a.sock\n  group: ops\nmetrics:\n"
                            "  address: \"::1\"\n  port: 0\nhealth:\n  probe_interval: 2\n",
                        "t.yaml");
    ASSERT_TRUE(c) << c.error().message;
    EXPECT_EQ(c->admin.socketPath, "/run/a.sock");
    EXPECT_EQ(c->admin.group, "ops");
    EXPECT_TRUE(c->metrics.enabled);
    EXPECT_EQ(c->metrics.address, "::1");
    EXPECT_EQ(c->metrics.port, 0u);
    EXPECT_EQ(c->healthProbeIntervalSeconds, 2u);
    c = parseHsedConfig(std::string(kBase) + "metrics: {}\n", "t.yaml");
    ASSERT_TRUE(c) << c.error().message;
    EXPECT_TRUE(c->metrics.enabled);
    EXPECT_EQ(c->metrics.address, "127.0.0.1");
    EXPECT_EQ(c->metrics.port, 9163u);
}

TEST(OpsConfig, BadValuesNameTheirKey) {
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"admin:\n  group: x\n", "t.yaml:10:3: key 'admin.socket': required"},
        {"admin:\n  socket: rel.sock\n",
         "t.yaml:10:11: key 'admin.socket': must be an absolute path of at most 107 octets"},
        {"admin:\n  socket: /a\n  mode: 1\n",
         "t.yaml:11:3: key 'admin.mode': unknown key (known here: socket, group)"},
        {"metrics:\n  address: 0.0.0.0\n",
         "t.yaml:10:12: key 'metrics.address': '0.0.0.0' is not a numeric loopback address "
         "(127.0.0.0/8 or ::1)"},
        {"metrics:\n  address: localhost\n",
         "t.yaml:10:12: key 'metrics.address': 'localhost' is not a numeric loopback address "
         "(127.0.0.0/8 or ::1)"},
        {"metrics:\n  port: 70000\n", "t.yaml:10:9: key 'metrics.port': must be in 0..65535"},
        {"health:\n  probe_interval: 0\n",
         "t.yaml:10:19: key 'health.probe_interval': must be in 1..3600"},
    };
    for (const auto& [yaml, why] : cases) {
        auto c = parseHsedConfig(std::string(kBase) + yaml, "t.yaml");
        ASSERT_FALSE(c) << yaml;
        EXPECT_EQ(c.error().message, why) << yaml;
    }
}

// ---- notifier

class NotifyTest : public ::testing::Test {
protected:
    void SetUp() override {
        path_ = std::filesystem::temp_directory_path() /
                ("best-notify-" + std::to_string(::getpid()) + ".sock");
        fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path_.c_str());
        ::unlink(path_.c_str());
        ASSERT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    }
    void TearDown() override {
        ::close(fd_);
        ::unlink(path_.c_str());
    }
    std::string next() {
        char buf[512];
        const ssize_t n = ::recv(fd_, buf, sizeof buf, MSG_DONTWAIT);
        return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
    }
    std::string path_;
    int fd_ = -1;
};

TEST_F(NotifyTest, SendsTheProtocolsAssignments) {
    auto n = Notifier::forSocket(path_, 400000);
    ASSERT_TRUE(n) << n.error().message;
    EXPECT_TRUE(n->enabled());
    EXPECT_EQ(n->watchdogUsec(), std::uint64_t{400000});
    ASSERT_TRUE(n->ready("ready; listening: 127.0.0.1:7163"));
    EXPECT_EQ(next(), "READY=1\nSTATUS=ready; listening: 127.0.0.1:7163");
    ASSERT_TRUE(n->watchdog());
    EXPECT_EQ(next(), "WATCHDOG=1");
    ASSERT_TRUE(n->status("two\nlines"));
    EXPECT_EQ(next(), "STATUS=two; lines");
    ASSERT_TRUE(n->reloading("r"));
    EXPECT_EQ(next(), "RELOADING=1\nSTATUS=r");
    ASSERT_TRUE(n->stopping("s"));
    EXPECT_EQ(next(), "STOPPING=1\nSTATUS=s");
    EXPECT_EQ(n->sent(), 5u);
}

TEST_F(NotifyTest, ErrorsAndTheDisabledCase) {
    Notifier none;
    EXPECT_FALSE(none.enabled());
    EXPECT_TRUE(none.ready("x"));  // a no-op without NOTIFY_SOCKET
    EXPECT_EQ(none.sent(), 0u);
    auto bad = Notifier::forSocket("relative/path", std::nullopt);
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().message,
              "NOTIFY_SOCKET 'relative/path' is not an absolute path or '@' name");
    auto gone = Notifier::forSocket(path_ + ".missing", std::nullopt);
    ASSERT_TRUE(gone);
    auto r = gone->ready("x");
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message.find("No such file or directory"), std::string::npos);
    ::setenv("NOTIFY_SOCKET", path_.c_str(), 1);
    ::setenv("WATCHDOG_USEC", "2000000", 1);
    ::unsetenv("WATCHDOG_PID");
    auto env = Notifier::fromEnvironment();
    ::unsetenv("NOTIFY_SOCKET");
    ::unsetenv("WATCHDOG_USEC");
    ASSERT_TRUE(env);
    EXPECT_EQ(env->watchdogUsec(), std::uint64_t{2000000});
    ASSERT_TRUE(env->watchdog());
    EXPECT_EQ(next(), "WATCHDOG=1");
}

TEST(Notify, AbstractSocket) {
    const std::string name = "@best-notify-test-" + std::to_string(::getpid());
    const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::memcpy(a.sun_path + 1, name.data() + 1, name.size() - 1);
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a),
                     static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name.size())),
              0);
    auto n = Notifier::forSocket(name, std::nullopt);
    ASSERT_TRUE(n);
    ASSERT_TRUE(n->watchdog());
    char buf[64];
    const ssize_t got = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    ::close(fd);
    EXPECT_EQ(std::string(buf, static_cast<std::size_t>(std::max<ssize_t>(got, 0))), "WATCHDOG=1");
}

TEST(Notify, WatchdogUsecAsSystemdReadsIt) {
    EXPECT_EQ(parseWatchdogUsec("30000000", nullptr, 42), std::uint64_t{30000000});
    EXPECT_EQ(parseWatchdogUsec("30000000", "42", 42), std::uint64_t{30000000});
    EXPECT_FALSE(parseWatchdogUsec("30000000", "43", 42));  // meant for another process
    EXPECT_FALSE(parseWatchdogUsec(nullptr, nullptr, 42));
    EXPECT_FALSE(parseWatchdogUsec("0", nullptr, 42));
    EXPECT_FALSE(parseWatchdogUsec("-5", nullptr, 42));
    EXPECT_FALSE(parseWatchdogUsec("12x", nullptr, 42));
    EXPECT_FALSE(parseWatchdogUsec("", nullptr, 42));
}

}  // namespace
}  // namespace best::hse
