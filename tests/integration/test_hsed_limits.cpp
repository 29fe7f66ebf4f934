// best-hsed's session limits (issue 6) with a real daemon: a full key slab answers a Session
// Request with Reject 0x0F and Back-off, a freed slot is used again, and a slab that cannot be
// locked stops the start with a message naming RLIMIT_MEMLOCK, the octets needed and the fix.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/capability.h>

#include <memory>
#include <string>
#include <vector>

#include "hsed_fixture.h"

#ifndef BEST_P11_FAULT_SHIM
#error "BEST_P11_FAULT_SHIM (path of the test shim) is set by tests/integration/meson.build"
#endif

namespace best::itest {
namespace {

constexpr const char* kImsi2 = "001010000000002";
constexpr const char* kImsi3 = "001010000000003";
constexpr const char* kImsi4 = "001010000000004";
constexpr const char* kImsi5 = "001010000000005";
constexpr const char* kImsi6 = "001010000000006";
constexpr const char* kImsi7 = "001010000000007";

class HsedLimits : public HsedFixture {
protected:
    // A UE whose session the HSE confirmed (its first UP message reached the sink).
    std::unique_ptr<UeClient> confirmedUe(const char* imsi) {
        auto ue = std::make_unique<UeClient>(port_, ueSettings(kEasHse, 0x01), imsi);
        EXPECT_TRUE(ue->establish()) << log();
        const std::string msg = "confirm";
        ue::Output out;
        EXPECT_TRUE(ue->engine().sendUplink(
            ByteView(reinterpret_cast<const std::uint8_t*>(msg.data()), msg.size()),
            ue::UeTime::now(), out));
        for (auto& d : out.datagrams)
            ue->peer().send(d);
        EXPECT_TRUE(readSink()) << log();
        return ue;
    }
};

TEST_F(HsedLimits, FullSlabAnswersCongestionWithBackOffAndAFreedSlotIsReused) {
    provision({kImsi2, kImsi3});
    DaemonOptions opt;
    opt.extraPolicy = "  rate_limits:\n    backoff: 7\n";
    opt.extraConfig = "limits:\n  max_sessions: 2\n  context_cache: 1\n";
    start(opt);
    EXPECT_NE(log().find("session key slab: 2 sessions, 4096 octets locked; context cache 1"),
              std::string::npos)
        << log();
    auto first = confirmedUe(kImsi);
    auto second = confirmedUe(kImsi2);

    UeClient third(port_, ueSettings(kEasHse, 0x01), kImsi3);
    ASSERT_TRUE(third.begin());
    ASSERT_TRUE(third.pump([&] { return third.has<ue::AttemptEnded>(); }, 8000)) << log();
    const auto* end = third.last<ue::AttemptEnded>();
    EXPECT_EQ(end->reason, ue::AttemptEnd::rejected);
    ASSERT_TRUE(end->cause);
    EXPECT_EQ(*end->cause, emsdp::Cause::congestion);
    ASSERT_TRUE(end->backOff);
    EXPECT_EQ(*end->backOff, 7);
    EXPECT_FALSE(third.has<ue::SessionEstablished>());

    // Both sessions still work through a one-entry context cache (each message re-keys).
    for (auto* ue : {first.get(), second.get(), first.get()}) {
        ue::Output out;
        const std::string msg = "after the refusal";
        ASSERT_TRUE(ue->engine().sendUplink(
            ByteView(reinterpret_cast<const std::uint8_t*>(msg.data()), msg.size()),
            ue::UeTime::now(), out));
        for (auto& d : out.datagrams)
            ue->peer().send(d);
        auto frame = readSink();
        ASSERT_TRUE(frame) << log();
        EXPECT_EQ(std::string(frame->begin() + 4, frame->end()), msg);
    }

    // The first UE terminates: its slot is wiped and free; a new UE gets it.
    first->call([](ue::UeEngine& e, const ue::UeTime& now, ue::Output& out) {
        return e.terminate(now, out);
    });
    ASSERT_TRUE(first->pump([&] { return first->has<ue::SessionTerminated>(); })) << log();
    EXPECT_TRUE(first->last<ue::SessionTerminated>()->answered);
    auto again = confirmedUe(kImsi3);
    EXPECT_TRUE(again->has<ue::SessionEstablished>());
}

TEST_F(HsedLimits, UnlockableSlabStopsTheStartNamingRlimitMemlockAndTheFix) {
    start();  // writes the configuration (default limits: 65,536 sessions); root locks it
    stop();
    const std::string conf = dir_ + "/hsed.yaml";
    const char* exe = std::getenv("BEST_HSED");
    ASSERT_NE(exe, nullptr);
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        const int fd = ::open(logPath().c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        ::dup2(fd, 1);
        ::dup2(fd, 2);
        // Without CAP_IPC_LOCK (also after exec as root) and with a 64 KiB limit.
        if (::prctl(PR_CAPBSET_DROP, CAP_IPC_LOCK, 0, 0, 0) != 0)
            ::_exit(120);
        rlimit rl{65536, 65536};
        if (::setrlimit(RLIMIT_MEMLOCK, &rl) != 0)
            ::_exit(121);
        ::execl(exe, exe, "--config", conf.c_str(), static_cast<char*>(nullptr));
        ::_exit(127);
    }
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status)) << status;
    EXPECT_EQ(WEXITSTATUS(status), 3) << log();
    const std::string l = log();
    EXPECT_NE(l.find("RLIMIT_MEMLOCK 65536 octets"), std::string::npos) << l;
    EXPECT_NE(l.find("cannot lock the session key slab: 3145728 octets needed for 65536 "
                     "sessions, RLIMIT_MEMLOCK is 65536 octets"),
              std::string::npos)
        << l;
    EXPECT_NE(l.find("LimitMEMLOCK="), std::string::npos) << l;
    EXPECT_NE(l.find("limits.max_sessions"), std::string::npos) << l;
}

// hsm.recycle_after_objects (SoftHSM 2.6 frees destroyed objects only at C_Finalize): the module
// is finalised and opened again while establishments are in flight; requests that arrive
// meanwhile wait and go to the new vault in order, nothing is refused, and a key set made before
// the recycle still resumes. The test shim (tests/hsm/shim, test-only) makes C_CreateObject take
// 250 ms, so the second wave arrives while the first wave's jobs still hold the old vault.
TEST_F(HsedLimits, RecycledModuleKeepsServingAndRequestsWaitForIt) {
    provision({kImsi2, kImsi3, kImsi4, kImsi5, kImsi6, kImsi7});
    DaemonOptions opt;
    opt.extraHsm = "  recycle_after_objects: 3\n";
    opt.module = BEST_P11_FAULT_SHIM;
    opt.env = {{"BEST_P11_SHIM_TARGET", testing::softHsmModule()},
               {"BEST_P11_FAULT", "C_CreateObject~250"}};
    start(opt);
    auto first = confirmedUe(kImsi);  // 2 objects (K unwrapped, KInt made): no recycle yet
    const ue::UeState firstState = first->engine().state();
    EXPECT_EQ(log().find("recycling the PKCS#11 module after"), std::string::npos) << log();
    std::vector<std::unique_ptr<UeClient>> ues;
    auto launch = [&](const char* imsi) {
        ues.push_back(std::make_unique<UeClient>(port_, ueSettings(kEasHse, 0x01), imsi));
        ASSERT_TRUE(ues.back()->begin());
        ues.back()->flush();
    };
    for (const char* imsi : {kImsi2, kImsi3, kImsi4, kImsi5})
        launch(imsi);  // two workers: two jobs run, two queue
    // After the first two jobs the threshold is passed; the other two still run (250 ms each).
    ASSERT_TRUE(waitLog("recycling the PKCS#11 module after", 5000)) << log();
    for (const char* imsi : {kImsi6, kImsi7})
        launch(imsi);  // these wait for the recycle
    for (auto& u : ues) {
        ASSERT_TRUE(u->pump(
            [&u] { return u->has<ue::SessionEstablished>() || u->has<ue::AttemptEnded>(); }, 15000))
            << log();
        EXPECT_TRUE(u->has<ue::SessionEstablished>()) << log();
    }
    ASSERT_TRUE(waitLog("PKCS#11 module recycled in")) << log();
    const std::string l = log();
    // Each recycle that started has finished or is the one still waiting for its jobs.
    EXPECT_LE(countOf(l, "recycling the PKCS#11 module after"),
              countOf(l, "PKCS#11 module recycled in") + 1)
        << l;
    // The first recycle held the second wave back.
    const auto at = l.find("PKCS#11 module recycled in");
    const auto semi = l.find("; ", at);
    ASSERT_NE(semi, std::string::npos) << l;
    EXPECT_GE(std::stoi(l.substr(semi + 2)), 1) << l.substr(at, 80);
    EXPECT_EQ(l.find("reject"), std::string::npos) << l;
    // The first UE's set, made by the vault before the recycle, resumes through the new one.
    first.reset();
    UeClient again(port_, ueSettings(kEasHse, 0x01), kImsi, kKHex, firstState);
    ASSERT_TRUE(again.establish()) << log();
    ASSERT_NE(again.last<ue::SessionEstablished>(), nullptr);
    EXPECT_TRUE(again.last<ue::SessionEstablished>()->info.resumed);
}

}  // namespace
}  // namespace best::itest
