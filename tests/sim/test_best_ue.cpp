// best-ue end to end: a real best-hsed (SoftHSM token, SQLite store, provisioned subscriber; see
// tests/integration/hsed_fixture.h), a real isolated pcscd with best-vusim as the card (both
// response styles), and the best-ue program itself (`session` and `run` + control commands).
#include <sys/stat.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "sim/rig/pcsc_rig.h"
#include "tests/integration/hsed_fixture.h"

namespace best {
namespace {

using sim::vusim::ResponseStyle;

#define ASSERT_OK(expr)                                            \
    do {                                                           \
        auto r_ = (expr);                                          \
        ASSERT_TRUE(r_) << #expr << ": " << r_.error().describe(); \
    } while (0)

// TS 35.208 test set 2's K: a card holding it cannot verify the HSE's MAC (set 1's K).
constexpr char kOtherK[] = "0396eb317b6d1c36f19c1c84cd6ffd16";

std::string bestUe() {
    const char* e = std::getenv("BEST_UE");
    return e ? e : "best-ue";
}

std::string styleName(ResponseStyle s) {
    return s == ResponseStyle::t0 ? "t0" : "direct";
}

class BestUe : public itest::HsedFixture {
protected:
    void SetUp() override {
        HsedFixture::SetUp();
        if (HasFatalFailure())
            return;
        auto r = sim::rig::PcscRig::create();
        ASSERT_TRUE(r) << r.error().describe();
        rig_ = std::move(*r);
        start(daemonOptions());
    }
    virtual itest::DaemonOptions daemonOptions() const { return {}; }
    void TearDown() override {
        agent_.stop(std::chrono::seconds(3));
        rig_.reset();
        HsedFixture::TearDown();
    }

    void startCard(ResponseStyle style, const char* kHex = itest::kKHex,
                   std::map<unsigned, std::uint64_t> initialSeqMs = {}) {
        sim::rig::VusimSettings s;
        s.imsi = itest::kImsi;
        s.kHex = kHex;
        s.opcHex = itest::kOpcHex;
        s.style = style;
        s.initialSeqMs = std::move(initialSeqMs);
        ASSERT_OK(rig_->startVusim(s));
    }

    // A config for the rig's reader; the IMSI is read from the card.
    std::string writeConfig(const std::string& kas = "[5g]",
                            const std::string& eas = itest::kEasHse) {
        const std::string path = dir_ + "/ue.yaml";
        std::ofstream f(path);
        f << "hse:\n  address: 127.0.0.1\n  port: " << port_ << "\n  hse_id: " << itest::kHseId
          << "\neas_id: " << eas << "\nserving_network:\n  mcc: \"001\"\n  mnc: \"01\"\n"
          << "key_agreements: " << kas << "\nstate_file: " << statePath()
          << "\ncontrol_socket: " << socketPath() << "\nusim:\n  source: pcsc\n  reader: \""
          << rig_->readerName() << "\"\n  card_timeout_ms: 5000\nlogging:\n  level: info\n";
        return path;
    }
    std::string statePath() const { return dir_ + "/ue.state"; }
    std::string socketPath() const { return dir_ + "/ue.sock"; }

    sim::rig::RunResult run(std::vector<std::string> args, int seconds = 60) {
        args.insert(args.begin(), bestUe());
        auto r = sim::rig::runAndCapture(args, std::chrono::seconds(seconds));
        EXPECT_TRUE(r) << r.error().describe();
        return r ? *r : sim::rig::RunResult{};
    }

    std::string context(const sim::rig::RunResult& r) {
        return "exit " + std::to_string(r.exitCode) + "\n" + r.output + "\n--- hsed\n" +
               log().substr(log().size() > 4000 ? log().size() - 4000 : 0) + "\n--- rig\n" +
               rig_->logs();
    }

    void startAgent(const std::string& config) {
        auto c = sim::rig::spawn({bestUe(), "run", "--config", config}, dir_ + "/agent.log");
        ASSERT_TRUE(c) << c.error().describe();
        agent_ = std::move(*c);
        // The control socket appears once the USIM is open and the UDP socket bound.
        const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(15);
        while (::access(socketPath().c_str(), F_OK) != 0) {
            ASSERT_TRUE(agent_.running()) << agentLog();
            ASSERT_LT(std::chrono::steady_clock::now(), until) << agentLog();
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
    }
    std::string agentLog() const { return itest::readFile(dir_ + "/agent.log"); }

    // `best-ue status` until its output holds `text` (or `ms` pass); the last output.
    std::string statusUntil(const std::string& text, int ms = 15000) {
        const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
        std::string last;
        for (;;) {
            auto s = run({"status", "--socket", socketPath()});
            last = "exit " + std::to_string(s.exitCode) + "\n" + s.output;
            if (s.exitCode == 0 && s.output.find(text) != std::string::npos)
                return last;
            if (std::chrono::steady_clock::now() >= until)
                return last;
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
    }
    // The hsed log until it holds `text`.
    bool hsedLogUntil(const std::string& text, int ms = 15000) {
        const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
        while (log().find(text) == std::string::npos) {
            if (std::chrono::steady_clock::now() >= until)
                return false;
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        return true;
    }
    // One uplink sink frame's payload, checked against the Session ID it must carry.
    std::string sinkPayload(std::uint32_t sid) {
        auto up = readSink();
        if (!up || up->size() < 4)
            return "<nothing at the sink>";
        const std::uint32_t got = (std::uint32_t{(*up)[0]} << 24) |
                                  (std::uint32_t{(*up)[1]} << 16) | (std::uint32_t{(*up)[2]} << 8) |
                                  (*up)[3];
        if (got != sid)
            return "<session " + std::to_string(got) + ">";
        return std::string(up->begin() + 4, up->end());
    }

    std::unique_ptr<sim::rig::PcscRig> rig_;
    sim::rig::ChildProcess agent_;
};

std::uint32_t sessionIdIn(const std::string& text) {
    std::smatch m;
    if (!std::regex_search(text, m, std::regex("session 0x([0-9a-f]{8})")))
        return 0;
    return static_cast<std::uint32_t>(std::stoul(m[1], nullptr, 16));
}

// ---- establishment for each key agreement, both card styles ---------------------------------

struct KaCase {
    const char* yaml;
    const char* name;
};
class Establish : public BestUe,
                  public ::testing::WithParamInterface<std::tuple<ResponseStyle, KaCase>> {};

TEST_P(Establish, SessionWithEachKeyAgreement) {
    const auto [style, ka] = GetParam();
    startCard(style);
    const std::string cfg = writeConfig(std::string("[") + ka.yaml + "]");
    auto r = run({"session", "--config", cfg, "--send", "hello", "--terminate"});
    ASSERT_EQ(r.exitCode, 0) << context(r);
    EXPECT_NE(r.output.find(std::string("full establishment, ") + ka.name + ", key set KID 1"),
              std::string::npos)
        << r.output;
    EXPECT_NE(r.output.find("IMSI 001010123456789"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("uplink 5 octets sent"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("terminated by the UE (answered)"), std::string::npos) << r.output;
    // The uplink reached the HSE's sink: Session ID + payload.
    auto up = readSink();
    ASSERT_TRUE(up);
    ASSERT_EQ(up->size(), 4u + 5u);
    EXPECT_EQ(std::string(up->begin() + 4, up->end()), "hello");
    const std::uint32_t sid = (std::uint32_t{(*up)[0]} << 24) | (std::uint32_t{(*up)[1]} << 16) |
                              (std::uint32_t{(*up)[2]} << 8) | (*up)[3];
    EXPECT_EQ(sid, sessionIdIn(r.output));
}

INSTANTIATE_TEST_SUITE_P(
    Styles, Establish,
    ::testing::Combine(::testing::Values(ResponseStyle::t0, ResponseStyle::direct),
                       ::testing::Values(KaCase{"umts", "UMTS AKA"}, KaCase{"eps", "EPS AKA"},
                                         KaCase{"5g", "5G AKA"})),
    [](const auto& info) {
        return styleName(std::get<0>(info.param)) + "_" + std::string(std::get<1>(info.param).yaml);
    });

// ---- sync failure, MAC failure, refresh, restart ---------------------------------------------

class Flows : public BestUe, public ::testing::WithParamInterface<ResponseStyle> {};

TEST_P(Flows, SyncFailureResynchronisesWithTheCardsSqn) {
    // The card has accepted SQNs far beyond anything the HSE has issued for this subscriber.
    std::map<unsigned, std::uint64_t> ahead;
    for (unsigned ind = 0; ind < 32; ++ind)
        ahead[ind] = 5000000;
    startCard(GetParam(), itest::kKHex, ahead);
    const std::string cfg = writeConfig();
    auto r = run({"session", "--config", cfg, "--terminate"});
    ASSERT_EQ(r.exitCode, 0) << context(r);
    EXPECT_NE(r.output.find("USIM sync failure: AUTS sent to the HSE"), std::string::npos)
        << r.output;
    EXPECT_NE(r.output.find("full establishment, 5G AKA"), std::string::npos) << r.output;

    // The HSE now issues SQNs above the card's: a new full establishment (no key sets kept)
    // passes without a second sync failure.
    ASSERT_EQ(::unlink(statePath().c_str()), 0);
    auto again = run({"session", "--config", cfg, "--terminate"});
    ASSERT_EQ(again.exitCode, 0) << context(again);
    EXPECT_EQ(again.output.find("sync failure"), std::string::npos) << again.output;
    EXPECT_NE(again.output.find("full establishment, 5G AKA"), std::string::npos) << again.output;
}

TEST_P(Flows, MacFailureWhenTheCardHoldsAnotherK) {
    startCard(GetParam(), kOtherK);
    const std::string cfg = writeConfig();
    auto r = run({"session", "--config", cfg, "--terminate"});
    EXPECT_EQ(r.exitCode, 1) << context(r);
    EXPECT_NE(r.output.find("establishment failed: USIM MAC failure"), std::string::npos)
        << r.output;
    EXPECT_NE(r.output.find("failed: no session"), std::string::npos) << r.output;
    EXPECT_EQ(r.output.find("established session"), std::string::npos) << r.output;
}

TEST_P(Flows, RefreshThenTheNextSessionResumesWithTheNewKeySet) {
    startCard(GetParam());
    const std::string cfg = writeConfig("[eps]");
    auto r = run({"session", "--config", cfg, "--refresh", "--terminate"});
    ASSERT_EQ(r.exitCode, 0) << context(r);
    std::smatch m;
    ASSERT_TRUE(std::regex_search(r.output, m,
                                  std::regex("key refresh \\(origin UE\\) done: key set KID "
                                             "([1-7]) is pending")))
        << r.output;
    const std::string newKid = m[1];
    EXPECT_NE(newKid, "1");

    auto next = run({"session", "--config", cfg, "--terminate"});
    ASSERT_EQ(next.exitCode, 0) << context(next);
    EXPECT_NE(next.output.find("resumed key set, EPS AKA, key set KID " + newKid),
              std::string::npos)
        << next.output;
}

TEST_P(Flows, AgentServesControlCommandsAndResumesAfterARestart) {
    startCard(GetParam());
    const std::string cfg = writeConfig("[umts]");
    startAgent(cfg);
    auto est = run({"establish", "--config", cfg, "--timeout", "20000"});
    ASSERT_EQ(est.exitCode, 0) << context(est) << agentLog();
    const std::uint32_t sid = sessionIdIn(est.output);
    ASSERT_NE(sid, 0u) << est.output;
    // A second agent on the same state file is refused.
    auto second = run({"run", "--config", cfg});
    EXPECT_EQ(second.exitCode, 1) << second.output;
    EXPECT_NE(second.output.find("is in use by another best-ue"), std::string::npos)
        << second.output;
    EXPECT_NE(est.output.find("full establishment, UMTS AKA, key set KID 1"), std::string::npos);

    // Uplink through the HSE to its sink, downlink from the sink to whoever runs `recv`.
    auto sent = run({"send", "--config", cfg, "ping"});
    ASSERT_EQ(sent.exitCode, 0) << sent.output;
    auto up = readSink();
    ASSERT_TRUE(up);
    EXPECT_EQ(std::string(up->begin() + 4, up->end()), "ping");
    auto none = run({"recv", "--config", cfg, "--timeout", "300"});
    EXPECT_EQ(none.exitCode, 4) << none.output;
    injectDownlink(sid, "pong");
    auto got = run({"recv", "--config", cfg, "--timeout", "5000"});
    ASSERT_EQ(got.exitCode, 0) << got.output << agentLog();
    EXPECT_EQ(got.output, "pong\n");
    auto status = run({"status", "--config", cfg});
    ASSERT_EQ(status.exitCode, 0) << status.output;
    EXPECT_NE(status.output.find("phase: established"), std::string::npos) << status.output;
    EXPECT_NE(status.output.find("uplink sent: 1, downlink received: 1"), std::string::npos)
        << status.output;

    // Stop the agent (it terminates its session) and start it again: it resumes KID 1.
    ::kill(agent_.pid(), SIGTERM);
    auto st = agent_.wait(std::chrono::seconds(10));
    ASSERT_TRUE(st) << agentLog();
    EXPECT_TRUE(WIFEXITED(*st) && WEXITSTATUS(*st) == 0) << agentLog();
    auto gone = run({"status", "--config", cfg});
    EXPECT_EQ(gone.exitCode, 3) << gone.output;

    startAgent(cfg);
    auto est2 = run({"establish", "--config", cfg, "--timeout", "20000"});
    ASSERT_EQ(est2.exitCode, 0) << context(est2) << agentLog();
    EXPECT_NE(est2.output.find("resumed key set, UMTS AKA, key set KID 1"), std::string::npos)
        << est2.output;
    const std::uint32_t sid2 = sessionIdIn(est2.output);
    EXPECT_NE(sid2, sid);
    ASSERT_EQ(run({"send", "--config", cfg, "--hex", "0102"}).exitCode, 0);
    auto up2 = readSink();
    ASSERT_TRUE(up2);
    EXPECT_EQ(Bytes(up2->begin() + 4, up2->end()), (Bytes{1, 2}));
    auto term = run({"terminate", "--config", cfg});
    EXPECT_EQ(term.exitCode, 0) << term.output;
    EXPECT_NE(term.output.find("terminated by the UE (answered)"), std::string::npos)
        << term.output;
    auto after = run({"send", "--config", cfg, "late"});
    EXPECT_EQ(after.exitCode, 1) << after.output;
    // No key material in anything the agent wrote.
    const std::string all = agentLog();
    for (const char* secret : {itest::kKHex, itest::kOpcHex})
        EXPECT_EQ(all.find(secret), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(Styles, Flows, ::testing::Values(ResponseStyle::t0, ResponseStyle::direct),
                         [](const auto& info) { return styleName(info.param); });

// ---- an HSE-triggered key refresh reaching a running agent --------------------------------

// best-hsed with its admin socket: the operator's `best-hsectl ue refresh`.
class HseRefresh : public BestUe {
protected:
    itest::DaemonOptions daemonOptions() const override {
        itest::DaemonOptions o;
        o.extraConfig = "admin:\n  socket: " + adminPath() + "\n";
        return o;
    }
    std::string adminPath() const { return dir_ + "/admin.sock"; }
    sim::rig::RunResult hsectl(std::vector<std::string> args) {
        const char* exe = std::getenv("BEST_HSECTL");
        EXPECT_NE(exe, nullptr) << "BEST_HSECTL not set";
        args.insert(args.begin(), {exe ? exe : "best-hsectl", "--admin-socket", adminPath()});
        auto r = sim::rig::runAndCapture(args, std::chrono::seconds(30));
        EXPECT_TRUE(r) << r.error().describe();
        return r ? *r : sim::rig::RunResult{};
    }
    std::string ueShow() { return hsectl({"ue", "show", "--imsi", itest::kImsi}).output; }
    bool ueShowUntil(const std::string& text, int ms = 15000) {
        const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
        while (ueShow().find(text) == std::string::npos) {
            if (std::chrono::steady_clock::now() >= until)
                return false;
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
        return true;
    }
};

// The operator refreshes the keys of a UE whose agent holds a confirmed session: the agent runs
// the card, answers with its key confirmation and keeps the session; the HSE stores the pending
// set; the next establishment resumes with it, and so does the agent after a restart.
TEST_F(HseRefresh, OperatorRefreshReachesTheRunningAgent) {
    startCard(ResponseStyle::direct);
    const std::string cfg = writeConfig("[5g]");
    startAgent(cfg);
    auto est = run({"establish", "--config", cfg, "--timeout", "20000"});
    ASSERT_EQ(est.exitCode, 0) << context(est) << agentLog();
    ASSERT_NE(est.output.find("full establishment, 5G AKA, key set KID 1"), std::string::npos)
        << est.output;
    const std::uint32_t sid = sessionIdIn(est.output);
    ASSERT_NE(sid, 0u) << est.output;
    ASSERT_EQ(run({"send", "--config", cfg, "before"}).exitCode, 0);
    EXPECT_EQ(sinkPayload(sid), "before");  // the HSE confirmed the session (A9)
    ASSERT_TRUE(hsedLogUntil("is current (durable)")) << log();

    auto r = hsectl({"ue", "refresh", "--imsi", itest::kImsi});
    ASSERT_EQ(r.exitCode, 0) << r.output << log();
    EXPECT_EQ(r.output, std::string("key refresh of IMSI ") + itest::kImsi +
                            " started in session " + std::to_string(sid) + "\n");

    // The agent ran the USIM and answered: the pending set is in its status and state file.
    const std::string st = statusUntil("pending key set: KID 2\n");
    ASSERT_NE(st.find("pending key set: KID 2\n"), std::string::npos) << st << agentLog();
    EXPECT_EQ(st.rfind("exit 0\nphase: established\n", 0), 0u) << st;
    char sidHex[16];
    std::snprintf(sidHex, sizeof sidHex, "0x%08x", sid);
    EXPECT_NE(
        st.find(std::string("session ") + sidHex + ": full establishment, 5G AKA, key set KID 1"),
        std::string::npos)
        << st;  // the same session goes on under its own keys
    EXPECT_NE(st.find("current key set: KID 1, 5G AKA\n"), std::string::npos) << st;
    EXPECT_NE(st.find("last: key refresh (origin HSE) done: key set KID 2 is pending, used by the "
                      "next session\n"),
              std::string::npos)
        << st;
    const std::string state = itest::readFile(statePath());
    EXPECT_NE(state.find("key-set current kid=1 "), std::string::npos) << state;
    EXPECT_NE(state.find("key-set pending kid=2 "), std::string::npos) << state;

    // The HSE checked the key confirmation and stored the pending set; the refresh is over.
    ASSERT_TRUE(hsedLogUntil(std::string("event pending-key-set-stored IMSI ") + itest::kImsi +
                             " KID 2 EAS " + itest::kEasHse + " origin hse"))
        << log();
    ASSERT_TRUE(ueShowUntil("refresh in progress: none\n")) << ueShow();
    std::string show = ueShow();
    EXPECT_NE(show.find("key sets: 2\n"), std::string::npos) << show;
    EXPECT_NE(show.find("  KID 1  current "), std::string::npos) << show;
    EXPECT_NE(show.find("  KID 2  pending "), std::string::npos) << show;

    // The live session was not touched by the refresh.
    ASSERT_EQ(run({"send", "--config", cfg, "during"}).exitCode, 0);
    EXPECT_EQ(sinkPayload(sid), "during");

    // The next establishment resumes with the new set; its confirmation makes it current at
    // both ends and the old set is gone (A24).
    auto term = run({"terminate", "--config", cfg});
    ASSERT_EQ(term.exitCode, 0) << term.output;
    auto est2 = run({"establish", "--config", cfg, "--timeout", "20000"});
    ASSERT_EQ(est2.exitCode, 0) << context(est2) << agentLog();
    EXPECT_NE(est2.output.find("resumed key set, 5G AKA, key set KID 2"), std::string::npos)
        << est2.output;
    const std::uint32_t sid2 = sessionIdIn(est2.output);
    EXPECT_NE(sid2, sid);
    ASSERT_EQ(run({"send", "--config", cfg, "after"}).exitCode, 0);
    EXPECT_EQ(sinkPayload(sid2), "after");
    const std::string st2 = statusUntil("current key set: KID 2, 5G AKA\n");
    EXPECT_NE(st2.find("current key set: KID 2, 5G AKA\npending key set: none\n"),
              std::string::npos)
        << st2;
    ASSERT_TRUE(ueShowUntil("key sets: 1\n")) << ueShow();
    show = ueShow();
    EXPECT_NE(show.find("  KID 2  current "), std::string::npos) << show;
    EXPECT_EQ(show.find("  KID 1  "), std::string::npos) << show;
    EXPECT_EQ(itest::readFile(statePath()).find("kid=1 "), std::string::npos);

    // A restarted agent resumes with KID 2 too.
    ::kill(agent_.pid(), SIGTERM);
    auto ended = agent_.wait(std::chrono::seconds(10));
    ASSERT_TRUE(ended) << agentLog();
    EXPECT_TRUE(WIFEXITED(*ended) && WEXITSTATUS(*ended) == 0) << agentLog();
    startAgent(cfg);
    auto est3 = run({"establish", "--config", cfg, "--timeout", "20000"});
    ASSERT_EQ(est3.exitCode, 0) << context(est3) << agentLog();
    EXPECT_NE(est3.output.find("resumed key set, 5G AKA, key set KID 2"), std::string::npos)
        << est3.output;
    EXPECT_NE(agentLog().find("key refresh (origin HSE) done: key set KID 2 is pending"),
              std::string::npos)
        << agentLog();
    for (const char* secret : {itest::kKHex, itest::kOpcHex})
        EXPECT_EQ(agentLog().find(secret), std::string::npos);
}

// The operator's refresh reaches an agent whose card is away: AUTHENTICATE finds no card, the
// agent sends no answer and says why, the session goes on; the card comes back before the HSE
// gives up, and the HSE's next resend of the same request is answered (decision 61).
TEST_F(HseRefresh, RefreshWhileTheCardIsAwayIsAnsweredWhenItComesBack) {
    startCard(ResponseStyle::direct);
    const std::string cfg = writeConfig("[5g]");
    const std::string reader = rig_->readerName();
    startAgent(cfg);
    auto est = run({"establish", "--config", cfg, "--timeout", "20000"});
    ASSERT_EQ(est.exitCode, 0) << context(est) << agentLog();
    const std::uint32_t sid = sessionIdIn(est.output);
    ASSERT_EQ(run({"send", "--config", cfg, "before"}).exitCode, 0);
    EXPECT_EQ(sinkPayload(sid), "before");
    ASSERT_TRUE(hsedLogUntil("is current (durable)")) << log();

    ASSERT_OK(rig_->stopVusim());
    ASSERT_OK(rig_->waitForCardAbsent(std::chrono::seconds(10)));
    const std::string absent = "card: absent (no card in reader '" + reader + "')\n";
    ASSERT_NE(statusUntil(absent).find(absent), std::string::npos) << agentLog();

    auto r = hsectl({"ue", "refresh", "--imsi", itest::kImsi});
    ASSERT_EQ(r.exitCode, 0) << r.output << log();
    const std::string failed = "last: USIM unavailable: no card in reader '" + reader + "'";
    const std::string st = statusUntil(failed, 20000);
    ASSERT_NE(st.find(failed), std::string::npos) << st << agentLog();
    EXPECT_NE(st.find("phase: established\n"), std::string::npos) << st;
    EXPECT_NE(st.find("pending key set: none\n"), std::string::npos) << st;
    ASSERT_EQ(run({"send", "--config", cfg, "meanwhile"}).exitCode, 0);
    EXPECT_EQ(sinkPayload(sid), "meanwhile");
    EXPECT_EQ(log().find("event pending-key-set-stored"), std::string::npos) << log();

    ASSERT_OK(rig_->restartVusim());
    const std::string done = statusUntil("pending key set: KID 2\n", 40000);
    ASSERT_NE(done.find("pending key set: KID 2\n"), std::string::npos) << done << agentLog();
    EXPECT_NE(done.find("last: key refresh (origin HSE) done: key set KID 2 is pending"),
              std::string::npos)
        << done;
    EXPECT_NE(done.find("card: present in reader '" + reader + "'\n"), std::string::npos) << done;
    ASSERT_TRUE(hsedLogUntil(std::string("event pending-key-set-stored IMSI ") + itest::kImsi +
                             " KID 2 EAS " + itest::kEasHse + " origin hse"))
        << log();
    ASSERT_TRUE(ueShowUntil("refresh in progress: none\n")) << ueShow();
    EXPECT_NE(ueShow().find("  KID 2  pending "), std::string::npos) << ueShow();
    ASSERT_TRUE(agent_.running()) << agentLog();
}

// ---- the card pulled under a running agent ---------------------------------------------------

// Key sets live kCardLifetime seconds, so that the test can outlive the one it establishes.
constexpr unsigned kCardLifetime = 25;

class CardGone : public BestUe {
protected:
    itest::DaemonOptions daemonOptions() const override {
        itest::DaemonOptions o;
        o.lifetime = kCardLifetime;
        return o;
    }
};

// The card goes away under a live session: the agent keeps running and says so in `status`; the
// session, and a resumption with the stored set, need no card; a refresh and a full
// establishment fail at once with exit 5; the card comes back and a full establishment works.
TEST_F(CardGone, AgentKeepsItsSessionAndSaysTheCardIsAbsent) {
    startCard(ResponseStyle::t0);
    const std::string cfg = writeConfig("[5g]");
    const std::string reader = rig_->readerName();
    startAgent(cfg);
    auto est = run({"establish", "--config", cfg, "--timeout", "20000"});
    ASSERT_EQ(est.exitCode, 0) << context(est) << agentLog();
    const auto keySetMade = std::chrono::system_clock::now();
    ASSERT_NE(est.output.find("full establishment, 5G AKA, key set KID 1"), std::string::npos)
        << est.output;
    const std::uint32_t sid = sessionIdIn(est.output);
    ASSERT_NE(sid, 0u);
    const std::string present = statusUntil("card: present in reader '" + reader + "'\n");
    ASSERT_NE(present.find("card: present in reader '" + reader + "'\n"), std::string::npos)
        << present;

    // Pull the card.
    ASSERT_OK(rig_->stopVusim());
    ASSERT_OK(rig_->waitForCardAbsent(std::chrono::seconds(10)));
    const std::string absent = "card: absent (no card in reader '" + reader + "')\n";
    const std::string st = statusUntil(absent);
    ASSERT_NE(st.find(absent), std::string::npos) << st << agentLog();
    EXPECT_NE(st.find("phase: established\n"), std::string::npos) << st;
    EXPECT_NE(st.find("current key set: KID 1, 5G AKA\n"), std::string::npos) << st;
    EXPECT_NE(agentLog().find("card: absent (no card in reader '" + reader + "')"),
              std::string::npos)
        << agentLog();

    // The live session needs no card.
    ASSERT_EQ(run({"send", "--config", cfg, "no card"}).exitCode, 0);
    EXPECT_EQ(sinkPayload(sid), "no card");
    // A refresh does: refused before anything is sent.
    auto ref = run({"refresh", "--config", cfg, "--timeout", "20000"});
    EXPECT_EQ(ref.exitCode, 5) << ref.output << agentLog();
    EXPECT_EQ(ref.output,
              "best-ue refresh: key refresh needs the USIM: card absent (no card in "
              "reader '" +
                  reader + "')\n");
    auto still = run({"status", "--config", cfg});
    EXPECT_NE(still.output.find("phase: established\n"), std::string::npos) << still.output;
    EXPECT_NE(still.output.find("pending key set: none\n"), std::string::npos) << still.output;

    // A resumption with the stored set needs no card either.
    auto term = run({"terminate", "--config", cfg});
    ASSERT_EQ(term.exitCode, 0) << term.output;
    auto res = run({"establish", "--config", cfg, "--timeout", "20000"});
    ASSERT_EQ(res.exitCode, 0) << context(res) << agentLog();
    EXPECT_NE(res.output.find("resumed key set, 5G AKA, key set KID 1"), std::string::npos)
        << res.output;
    const std::uint32_t sid2 = sessionIdIn(res.output);
    ASSERT_EQ(run({"send", "--config", cfg, "resumed"}).exitCode, 0);
    EXPECT_EQ(sinkPayload(sid2), "resumed");
    ASSERT_TRUE(agent_.running()) << agentLog();

    // Once the set has expired only a full establishment (AKA) remains: it fails at once, with
    // the reason, and the agent stays idle.
    ASSERT_EQ(run({"terminate", "--config", cfg}).exitCode, 0);
    std::this_thread::sleep_until(keySetMade + std::chrono::seconds(kCardLifetime + 2));
    const auto asked = std::chrono::steady_clock::now();
    auto full = run({"establish", "--config", cfg, "--timeout", "40000"});
    const auto took = std::chrono::steady_clock::now() - asked;
    EXPECT_EQ(full.exitCode, 5) << context(full) << agentLog();
    EXPECT_EQ(full.output.rfind("best-ue establish: establishment failed: USIM unavailable: no "
                                "card in reader '" +
                                    reader + "'",
                                0),
              0u)
        << full.output;
    EXPECT_NE(full.output.find("; a full establishment needs the card\n"), std::string::npos)
        << full.output;
    EXPECT_LT(took, std::chrono::seconds(20)) << "not given up at once";  // A13 gives up at 44 s
    const std::string idle = statusUntil("phase: idle\n", 2000);
    EXPECT_NE(idle.find("phase: idle\n"), std::string::npos) << idle;
    EXPECT_NE(idle.find("last: establishment failed: USIM unavailable: "), std::string::npos)
        << idle;
    EXPECT_NE(idle.find(absent), std::string::npos) << idle;
    EXPECT_EQ(run({"send", "--config", cfg, "x"}).exitCode, 1);

    // The card comes back: the watcher sees it and a full establishment works again.
    ASSERT_OK(rig_->restartVusim());
    const std::string back = statusUntil("card: present in reader '" + reader + "'\n");
    ASSERT_NE(back.find("card: present in reader '" + reader + "'\n"), std::string::npos) << back;
    auto again = run({"establish", "--config", cfg, "--timeout", "20000"});
    ASSERT_EQ(again.exitCode, 0) << context(again) << agentLog();
    EXPECT_NE(again.output.find(": full establishment, 5G AKA, key set KID "), std::string::npos)
        << again.output;
    const std::uint32_t sid3 = sessionIdIn(again.output);
    ASSERT_EQ(run({"send", "--config", cfg, "card back"}).exitCode, 0);
    EXPECT_EQ(sinkPayload(sid3), "card back");
    ASSERT_TRUE(agent_.running()) << agentLog();
    EXPECT_NE(agentLog().find("card: present in reader '" + reader + "'"), std::string::npos);
}

// Without a card at all the agent does not start: exit 5 with the reason.
TEST_F(CardGone, NoCardAtStartIsExit5) {
    const std::string cfg = writeConfig("[5g]");
    auto r = run({"session", "--config", cfg});
    EXPECT_EQ(r.exitCode, 5) << r.output;
    EXPECT_NE(r.output.find("no card in reader '" + rig_->readerName() + "'"), std::string::npos)
        << r.output;
    auto a = run({"run", "--config", cfg});
    EXPECT_EQ(a.exitCode, 5) << a.output;
}

// ---- the software USIM, the card's IMSI, the command line ------------------------------------

class Agent : public BestUe {};

TEST_F(Agent, SoftwareUsimWithItsSqnStateFile) {
    const std::string path = dir_ + "/ue-soft.yaml";
    std::ofstream f(path);
    f << "hse:\n  address: 127.0.0.1\n  port: " << port_ << "\neas_id: " << itest::kEasHse
      << "\nimsi: \"" << itest::kImsi << "\"\nkey_agreements: [umts]\nstate_file: " << statePath()
      << "\ncontrol_socket: " << socketPath()
      << "\nusim:\n  source: software\n  k: " << itest::kKHex << "\n  opc: " << itest::kOpcHex
      << "\n  sqn_state_file: " << dir_ << "/soft.sqn\n";
    f.close();
    ::chmod(path.c_str(), 0600);
    auto r = run({"session", "--config", path, "--send", "soft", "--terminate"});
    ASSERT_EQ(r.exitCode, 0) << context(r);
    EXPECT_NE(r.output.find("software USIM"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("full establishment, UMTS AKA, key set KID 1"), std::string::npos)
        << r.output;
    // The accepted SQN is on disk: the two-slot state file exists with both slots.
    struct stat st {};
    ASSERT_EQ(::stat((dir_ + "/soft.sqn").c_str(), &st), 0);
    EXPECT_EQ(st.st_size, 8192);
    EXPECT_EQ(r.output.find(itest::kKHex), std::string::npos);
}

TEST_F(Agent, UsimOpenedAgainAfterPcscdRestarts) {
    startCard(ResponseStyle::direct);
    const std::string cfg = writeConfig("[5g]");
    startAgent(cfg);
    auto est = run({"establish", "--config", cfg, "--timeout", "20000"});
    ASSERT_EQ(est.exitCode, 0) << context(est) << agentLog();
    // pcscd goes away under the agent's open card; the refresh's AUTHENTICATE reopens it.
    ASSERT_OK(rig_->restartPcscd());
    auto r = run({"refresh", "--config", cfg, "--timeout", "20000"});
    ASSERT_EQ(r.exitCode, 0) << r.output << agentLog() << rig_->logs();
    EXPECT_NE(r.output.find("key refresh (origin UE) done: key set KID"), std::string::npos)
        << r.output;
    EXPECT_NE(agentLog().find("USIM lost"), std::string::npos) << agentLog();
}

TEST_F(Agent, CardWithAnotherImsiIsRefused) {
    startCard(ResponseStyle::direct);
    std::string cfg = writeConfig();
    std::ofstream(cfg, std::ios::app) << "imsi: \"001019999999999\"\n";
    auto r = run({"session", "--config", cfg});
    EXPECT_EQ(r.exitCode, 1) << r.output;
    EXPECT_NE(r.output.find("the card holds IMSI 001010123456789, the configuration says "
                            "001019999999999"),
              std::string::npos)
        << r.output;
}

TEST_F(Agent, UsageAndConfigurationErrors) {
    auto noArgs = run({});
    EXPECT_EQ(noArgs.exitCode, 2);
    EXPECT_NE(noArgs.output.find("usage: best-ue run"), std::string::npos) << noArgs.output;
    EXPECT_EQ(run({"dance", "--config", "x"}).exitCode, 2);
    EXPECT_EQ(run({"send", "--config"}).exitCode, 2);
    const std::string bad = dir_ + "/bad.yaml";
    std::ofstream(bad) << "hse: {port: 0}\n";
    auto b = run({"session", "--config", bad});
    EXPECT_EQ(b.exitCode, 2);
    EXPECT_NE(b.output.find(bad + ":1:13: hse.port must be 1..65535"), std::string::npos)
        << b.output;
    auto help = run({"--help"});
    EXPECT_EQ(help.exitCode, 0);
    EXPECT_NE(help.output.find("Exit status: 0 done, 1 failed or refused"), std::string::npos);
}

}  // namespace
}  // namespace best
