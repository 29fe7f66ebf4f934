// Suite 'sim': the PC/SC client against best-vusim through a real, isolated pcscd (one per
// test, see sim/rig/pcsc_rig.h), and OpenSC's opensc-tool as an independent client.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "common/hex.h"
#include "crypto/milenage.h"
#include "sim/pcsc.h"
#include "sim/rig/pcsc_rig.h"
#include "sim/sim_error.h"
#include "sim/usim.h"
#include "tests/sim/support.h"

namespace best::sim {
namespace {

using namespace std::chrono_literals;
using test::autnFor;
using test::MilenageSet;
using test::milenageSets;
using vusim::ResponseStyle;

constexpr std::uint64_t kDelta = std::uint64_t{1} << 28;

// Asserts that a Result holds a value, printing its error otherwise.
#define ASSERT_OK(expr)                                     \
    do {                                                    \
        auto result_ = (expr);                              \
        ASSERT_TRUE(result_) << result_.error().describe(); \
    } while (0)

std::string styleName(ResponseStyle s) {
    return s == ResponseStyle::t0 ? "t0" : "direct";
}

std::string expectedAnswer(const MilenageSet& v) {
    return "db08" + toHex(v.f2) + "10" + toHex(v.f3) + "10" + toHex(v.f4);
}

std::string answerOf(const AuthSuccess& ok) {
    return "db" + toHex(Bytes{static_cast<std::uint8_t>(ok.res.size())}) + toHex(ok.res) + "10" +
           toHex(ok.ck.view()) + "10" + toHex(ok.ik.view());
}

class RigTest : public ::testing::Test {
protected:
    void SetUp() override {
        auto r = rig::PcscRig::create();
        ASSERT_TRUE(r) << r.error().describe();
        rig_ = std::move(*r);
    }
    void TearDown() override {
        if (HasFailure() && rig_)
            std::cerr << rig_->logs();
        rig_.reset();  // stops best-vusim and pcscd by PID
    }

    // A card for set `v` whose SEQ_MS for the set's IND sits just below the published SQN.
    static rig::VusimSettings settingsFor(const MilenageSet& v, ResponseStyle style,
                                          bool viaOp = false) {
        rig::VusimSettings s;
        s.kHex = v.kHex;
        if (viaOp)
            s.opHex = v.opHex;
        else
            s.opcHex = v.opcHex;
        s.style = style;
        s.initialSeqMs[static_cast<unsigned>(v.sqnInt() & 31)] = (v.sqnInt() >> 5) - 1;
        return s;
    }

    Result<std::unique_ptr<UsimSession>> open(std::optional<PinBlock> pin = std::nullopt) {
        SessionOptions o;
        o.reader.namePattern = rig_->readerName();
        o.pin = std::move(pin);
        o.cardTimeout = 5s;
        return UsimSession::open(o);
    }

    std::unique_ptr<UsimSession> mustOpen(std::optional<PinBlock> pin = std::nullopt) {
        auto s = open(std::move(pin));
        EXPECT_TRUE(s) << s.error().describe();
        return s ? std::move(*s) : nullptr;
    }

    // 0: success, 1: sync failure, 2: MAC failure.
    static std::size_t outcome(UsimSession& s, const MilenageSet& v, std::uint64_t sqn,
                               crypto::Auts* auts = nullptr) {
        auto r = s.authenticate(v.rand, autnFor(v, sqn));
        EXPECT_TRUE(r) << r.error().describe();
        if (!r)
            return 99;
        if (auto* sync = std::get_if<AuthSyncFailure>(&*r); sync && auts)
            *auts = sync->auts;
        return r->index();
    }

    static std::uint64_t recoveredSqnMs(const MilenageSet& v, const crypto::Auts& auts) {
        crypto::SoftAes128 ek(v.k);
        auto sqn = crypto::recoverSqnMs(ek, v.opc, v.rand, auts);
        EXPECT_TRUE(sqn) << sqn.error().describe();
        return sqn ? crypto::sqnToInt(*sqn) : 0;
    }

    std::unique_ptr<rig::PcscRig> rig_;
};

constexpr std::size_t kOk = 0, kSync = 1, kMac = 2;

// ---- every published Milenage set, in both response styles --------------------------------

class Vectors : public RigTest,
                public ::testing::WithParamInterface<std::tuple<int, ResponseStyle>> {};

TEST_P(Vectors, AuthenticateThroughPcscd) {
    const auto& [index, style] = GetParam();
    ASSERT_LT(static_cast<std::size_t>(index), milenageSets().size());
    const MilenageSet& v = milenageSets()[static_cast<std::size_t>(index)];
    auto settings = settingsFor(v, style, /*viaOp=*/v.set % 2 == 1);
    settings.getResponseChunk = v.set > 3 ? 16 : 0;  // t0: GET RESPONSE repeated for sets 4-6
    ASSERT_OK(rig_->startVusim(settings));
    auto s = mustOpen();
    ASSERT_TRUE(s);
    EXPECT_EQ(s->card().protocol(),
              style == ResponseStyle::t0 ? DWORD{SCARD_PROTOCOL_T0} : DWORD{SCARD_PROTOCOL_T1});
    EXPECT_TRUE(std::equal(kUsimAidPrefix.begin(), kUsimAidPrefix.end(), s->aid().begin()));
    auto imsi = s->readImsi();
    ASSERT_TRUE(imsi) << imsi.error().describe();
    EXPECT_EQ(*imsi, settings.imsi);

    auto r = s->authenticate(v.rand, v.autn());
    ASSERT_TRUE(r) << r.error().describe();
    auto* ok = std::get_if<AuthSuccess>(&*r);
    ASSERT_NE(ok, nullptr) << "outcome " << r->index();
    EXPECT_EQ(toHex(ok->res), toHex(v.f2));
    EXPECT_EQ(toHex(ok->ck.view()), toHex(v.f3));
    EXPECT_EQ(toHex(ok->ik.view()), toHex(v.f4));
    EXPECT_FALSE(ok->kc);
}

INSTANTIATE_TEST_SUITE_P(Sets, Vectors,
                         ::testing::Combine(::testing::Range(0, 6),
                                            ::testing::Values(ResponseStyle::t0,
                                                              ResponseStyle::direct)),
                         [](const auto& info) {
                             return "set" + std::to_string(std::get<0>(info.param) + 1) + "_" +
                                    styleName(std::get<1>(info.param));
                         });

// ---- OpenSC as an independent client -------------------------------------------------------

// The data of the response that follows "Sending: 00 88 ..." in opensc-tool's output.
std::string openscAuthenticateAnswer(const std::string& out, std::string& sw) {
    std::istringstream in(out);
    std::string line;
    bool inAuth = false, inData = false;
    std::string data;
    while (std::getline(in, line)) {
        if (line.rfind("Sending: 00 88", 0) == 0) {
            inAuth = true;
            continue;
        }
        if (!inAuth)
            continue;
        if (line.rfind("Received (", 0) == 0) {
            auto p = line.find("SW1=0x");
            auto q = line.find("SW2=0x");
            if (p != std::string::npos && q != std::string::npos)
                sw = line.substr(p + 6, 2) + line.substr(q + 6, 2);
            inData = true;
            continue;
        }
        if (!inData || line.rfind("Sending:", 0) == 0)
            break;
        std::istringstream hex(line.substr(0, std::min<std::size_t>(line.size(), 48)));
        std::string tok;
        while (hex >> tok)
            if (tok.size() == 2 && std::isxdigit(static_cast<unsigned char>(tok[0])) &&
                std::isxdigit(static_cast<unsigned char>(tok[1])))
                data += tok;
    }
    std::transform(data.begin(), data.end(), data.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    std::transform(sw.begin(), sw.end(), sw.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return data;
}

class OpenSc : public RigTest, public ::testing::WithParamInterface<ResponseStyle> {};

TEST_P(OpenSc, SameAnswerAsOurClient) {
    const MilenageSet& v = milenageSets().at(0);
    ASSERT_OK(rig_->startVusim(settingsFor(v, GetParam())));
    auto s = mustOpen();
    ASSERT_TRUE(s);
    auto ours = s->authenticate(v.rand, v.autn());
    ASSERT_TRUE(ours) << ours.error().describe();
    auto* ok = std::get_if<AuthSuccess>(&*ours);
    ASSERT_NE(ok, nullptr);
    EXPECT_EQ(answerOf(*ok), expectedAnswer(v));

    // The same RAND with the next SEQ: RES, CK and IK depend on RAND only, so the answer
    // octets must be identical.
    const std::uint64_t next = v.sqnInt() + 32;
    const std::string apdu =
        "0088008122"
        "10" +
        toHex(v.rand) + "10" + toHex(autnFor(v, next)) + "00";
    const char* tool = std::getenv("BEST_OPENSC_TOOL");
    auto run =
        rig::runAndCapture({tool ? tool : "/usr/bin/opensc-tool", "-r", rig_->readerName(), "-s",
                            "00a4040c07" + toHex(ByteView(s->aid()).first(7)), "-s", apdu},
                           20s);
    ASSERT_TRUE(run) << run.error().describe();
    ASSERT_EQ(run->exitCode, 0) << run->output;
    std::string sw;
    const std::string theirs = openscAuthenticateAnswer(run->output, sw);
    EXPECT_EQ(sw, "9000") << run->output;
    EXPECT_EQ(theirs, answerOf(*ok)) << run->output;

    // opensc-tool's SQN was accepted by the card: ours is now stale, and one above works.
    crypto::Auts auts{};
    EXPECT_EQ(outcome(*s, v, next, &auts), kSync);
    EXPECT_EQ(recoveredSqnMs(v, auts), next);
    EXPECT_EQ(outcome(*s, v, next + 32), kOk);
}

INSTANTIATE_TEST_SUITE_P(Styles, OpenSc,
                         ::testing::Values(ResponseStyle::t0, ResponseStyle::direct),
                         [](const auto& info) { return styleName(info.param); });

// ---- failures ------------------------------------------------------------------------------

TEST_F(RigTest, MacFailure) {
    const MilenageSet& v = milenageSets().at(0);
    ASSERT_OK(rig_->startVusim(settingsFor(v, ResponseStyle::t0)));
    auto s = mustOpen();
    ASSERT_TRUE(s);
    crypto::Autn bad = v.autn();
    bad[12] ^= 0x10;  // a MAC-A bit
    auto r = s->authenticate(v.rand, bad);
    ASSERT_TRUE(r) << r.error().describe();
    EXPECT_TRUE(std::holds_alternative<AuthMacFailure>(*r));
    crypto::Rand otherRand = v.rand;
    otherRand[0] ^= 1;  // MAC over another RAND
    auto r2 = s->authenticate(otherRand, v.autn());
    ASSERT_TRUE(r2);
    EXPECT_TRUE(std::holds_alternative<AuthMacFailure>(*r2));
    // Nothing was accepted: the genuine AUTN still is.
    EXPECT_EQ(outcome(*s, v, v.sqnInt()), kOk);
}

TEST_F(RigTest, SyncFailureRecoversCardSqnMs) {
    const MilenageSet& v = milenageSets().at(4);
    ASSERT_OK(rig_->startVusim(settingsFor(v, ResponseStyle::direct)));
    auto s = mustOpen();
    ASSERT_TRUE(s);
    // Before anything is accepted the card reports its configured SEQ_MS.
    crypto::Auts auts{};
    EXPECT_EQ(outcome(*s, v, v.sqnInt() - 32, &auts), kSync);
    EXPECT_EQ(recoveredSqnMs(v, auts), v.sqnInt() - 32);
    EXPECT_EQ(outcome(*s, v, v.sqnInt()), kOk);
    EXPECT_EQ(outcome(*s, v, v.sqnInt(), &auts), kSync);
    EXPECT_EQ(recoveredSqnMs(v, auts), v.sqnInt());
}

TEST_F(RigTest, StaleSqnReplay) {
    const MilenageSet& v = milenageSets().at(3);
    const std::uint64_t seq = v.sqnInt() >> 5;
    auto settings = settingsFor(v, ResponseStyle::t0);
    settings.initialSeqMs = {{0, seq - 10}, {1, seq - 10}};
    ASSERT_OK(rig_->startVusim(settings));
    auto s = mustOpen();
    ASSERT_TRUE(s);
    crypto::Auts auts{};
    EXPECT_EQ(outcome(*s, v, seq << 5), kOk);
    EXPECT_EQ(outcome(*s, v, seq << 5, &auts), kSync);  // the very same vector again
    EXPECT_EQ(recoveredSqnMs(v, auts), seq << 5);
    EXPECT_EQ(outcome(*s, v, (seq - 3) << 5, &auts), kSync);  // older, same IND
    EXPECT_EQ(outcome(*s, v, ((seq - 3) << 5) | 1), kOk);     // older SEQ, unused IND: fresh
    EXPECT_EQ(outcome(*s, v, ((seq - 3) << 5) | 1, &auts), kSync);
    EXPECT_EQ(recoveredSqnMs(v, auts), seq << 5);  // still the highest accepted
}

TEST_F(RigTest, JumpBeyondDelta) {
    const MilenageSet& v = milenageSets().at(3);
    const std::uint64_t seq = v.sqnInt() >> 5;
    auto settings = settingsFor(v, ResponseStyle::direct);
    settings.initialSeqMs = {{0, seq}};
    ASSERT_OK(rig_->startVusim(settings));
    auto s = mustOpen();
    ASSERT_TRUE(s);
    crypto::Auts auts{};
    EXPECT_EQ(outcome(*s, v, ((seq + kDelta + 1) << 5) | 2, &auts), kSync);
    EXPECT_EQ(recoveredSqnMs(v, auts), seq << 5);
    EXPECT_EQ(outcome(*s, v, ((seq + kDelta) << 5) | 2), kOk);  // exactly delta: fresh
}

TEST_F(RigTest, PinRequiredAndWrongPin) {
    const MilenageSet& v = milenageSets().at(1);
    auto settings = settingsFor(v, ResponseStyle::t0);
    settings.pin = "2468";
    ASSERT_OK(rig_->startVusim(settings));
    {
        auto s = mustOpen();  // SELECT needs no PIN
        ASSERT_TRUE(s);
        auto imsi = s->readImsi();
        ASSERT_FALSE(imsi);
        EXPECT_EQ(imsi.error().code, static_cast<int>(SimErrc::pin_required));
        auto r = s->authenticate(v.rand, v.autn());
        ASSERT_FALSE(r);
        EXPECT_EQ(r.error().code, static_cast<int>(SimErrc::pin_required));
        EXPECT_NE(r.error().message.find("6982"), std::string::npos) << r.error().message;
    }
    const std::string pinFile = rig_->dir() + "/pin";
    {
        std::ofstream(pinFile) << "1357\n";
        auto pin = readPinFile(pinFile);
        ASSERT_TRUE(pin) << pin.error().describe();
        auto s = open(*pin);
        ASSERT_FALSE(s);
        EXPECT_EQ(s.error().code, static_cast<int>(SimErrc::pin_incorrect));
        EXPECT_NE(s.error().message.find("2 attempts left"), std::string::npos)
            << s.error().message;
        EXPECT_NE(s.error().message.find("63c2"), std::string::npos) << s.error().message;
    }
    {
        std::ofstream(pinFile) << "  2468  \n";
        auto pin = readPinFile(pinFile);
        ASSERT_TRUE(pin);
        auto s = mustOpen(*pin);
        ASSERT_TRUE(s);
        EXPECT_EQ(s->usim().pinAttemptsLeft().error().code,
                  static_cast<int>(SimErrc::status_word));  // verified: nothing to do
        auto imsi = s->readImsi();
        ASSERT_TRUE(imsi) << imsi.error().describe();
        EXPECT_EQ(outcome(*s, v, v.sqnInt()), kOk);
    }
}

TEST_F(RigTest, NoReaderNoCardAndNoPcscd) {
    SessionOptions o;
    o.reader.namePattern = "no such reader*";
    auto r = UsimSession::open(o);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, static_cast<int>(SimErrc::no_reader));

    o.reader.namePattern = rig_->readerName();  // the reader exists, best-vusim is not running
    auto empty = UsimSession::open(o);
    ASSERT_FALSE(empty);
    EXPECT_EQ(empty.error().code, static_cast<int>(SimErrc::no_card)) << empty.error().message;
    o.cardTimeout = 300ms;
    auto waited = UsimSession::open(o);
    ASSERT_FALSE(waited);
    EXPECT_EQ(waited.error().code, static_cast<int>(SimErrc::no_card)) << waited.error().message;
    EXPECT_NE(waited.error().message.find(rig_->readerName()), std::string::npos);

    ASSERT_OK(rig_->stopPcscd());
    auto down = UsimSession::open(o);
    ASSERT_FALSE(down);
    EXPECT_EQ(down.error().code, static_cast<int>(SimErrc::no_service));
    EXPECT_EQ(down.error().message.rfind("pcscd is not running", 0), 0u) << down.error().message;
}

TEST_F(RigTest, ReaderChosenByIccid) {
    const MilenageSet& v = milenageSets().at(0);
    ASSERT_OK(rig_->startVusim(settingsFor(v, ResponseStyle::direct)));
    SessionOptions o;
    o.reader.namePattern = "BEST vusim*";     // both vpcd slots match; only one holds a card
    o.reader.iccid = "89999010010101234567";  // best-vusim's default: 8999901 + IMSI, 20 digits
    o.cardTimeout = 5s;
    auto s = UsimSession::open(o);
    ASSERT_TRUE(s) << s.error().describe();
    EXPECT_EQ((*s)->card().reader(), rig_->readerName());
    o.reader.iccid = "89999010010101234568";
    auto other = UsimSession::open(o);
    ASSERT_FALSE(other);
    EXPECT_NE(other.error().message.find("ICCID"), std::string::npos) << other.error().message;
}

TEST_F(RigTest, InsertionAndRemovalFollowed) {
    const MilenageSet& v = milenageSets().at(0);
    Result<std::string> seen = makeError(SimErrc::timeout, "not run");
    std::thread waiter([&] {
        auto c = PcscClient::open();
        if (!c) {
            seen = makeError(c.error());
            return;
        }
        seen = c->waitForCard("BEST vusim*", 20s);
    });
    std::this_thread::sleep_for(200ms);
    ASSERT_OK(rig_->startVusim(settingsFor(v, ResponseStyle::direct)));
    waiter.join();
    ASSERT_TRUE(seen) << seen.error().describe();
    EXPECT_EQ(*seen, rig_->readerName());

    Result<void> gone = makeError(SimErrc::timeout, "not run");
    std::thread remover([&] {
        auto c = PcscClient::open();
        if (!c) {
            gone = makeError(c.error());
            return;
        }
        gone = c->waitForRemoval(rig_->readerName(), 20s);
    });
    std::this_thread::sleep_for(200ms);
    ASSERT_OK(rig_->stopVusim());
    remover.join();
    EXPECT_TRUE(gone) << gone.error().describe();
}

// ---- resilience ----------------------------------------------------------------------------

TEST_F(RigTest, VusimKilledMidSession) {
    const MilenageSet& v = milenageSets().at(0);
    ASSERT_OK(rig_->startVusim(settingsFor(v, ResponseStyle::direct)));
    auto s = mustOpen();
    ASSERT_TRUE(s);
    const std::uint64_t first = v.sqnInt();
    EXPECT_EQ(outcome(*s, v, first), kOk);

    rig_->signalVusim(SIGKILL);
    auto lost = s->authenticate(v.rand, autnFor(v, first + 32));
    ASSERT_FALSE(lost);
    EXPECT_EQ(lost.error().code, static_cast<int>(SimErrc::card_removed)) << lost.error().message;
    EXPECT_NE(lost.error().message.find(rig_->readerName()), std::string::npos);

    // best-vusim comes back with its state file: the old session reconnects once, selects the
    // USIM again and carries on; the SQN it accepted before the kill is still refused.
    ASSERT_OK(rig_->restartVusim());
    crypto::Auts auts{};
    EXPECT_EQ(outcome(*s, v, first, &auts), kSync);
    EXPECT_EQ(recoveredSqnMs(v, auts), first);
    EXPECT_EQ(outcome(*s, v, first + 32), kOk);
}

TEST_F(RigTest, PcscdRestarted) {
    const MilenageSet& v = milenageSets().at(2);
    ASSERT_OK(rig_->startVusim(settingsFor(v, ResponseStyle::t0)));
    auto s = mustOpen();
    ASSERT_TRUE(s);
    EXPECT_EQ(outcome(*s, v, v.sqnInt()), kOk);

    ASSERT_OK(rig_->restartPcscd());  // best-vusim reconnects to the new vpcd by itself
    auto stale = s->authenticate(v.rand, autnFor(v, v.sqnInt() + 32));
    ASSERT_FALSE(stale);
    EXPECT_EQ(stale.error().code, static_cast<int>(SimErrc::no_service)) << stale.error().message;

    auto fresh = mustOpen();
    ASSERT_TRUE(fresh);
    crypto::Auts auts{};
    EXPECT_EQ(outcome(*fresh, v, v.sqnInt(), &auts), kSync);
    EXPECT_EQ(recoveredSqnMs(v, auts), v.sqnInt());
    EXPECT_EQ(outcome(*fresh, v, v.sqnInt() + 32), kOk);
    EXPECT_NE(rig_->vusimLog().find("vpcd closed the connection; reconnecting"), std::string::npos);
}

TEST_F(RigTest, StateSurvivesKill9WithoutLosingFreshness) {
    const MilenageSet& v = milenageSets().at(3);
    const std::uint64_t base = v.sqnInt() >> 5;
    auto settings = settingsFor(v, ResponseStyle::direct);
    settings.initialSeqMs = {{0, base}};
    ASSERT_OK(rig_->startVusim(settings));

    std::atomic<std::uint64_t> lastOk{0};
    std::atomic<int> accepted{0};
    std::string stopReason;
    std::thread client([&] {
        auto s = open();
        if (!s) {
            stopReason = s.error().describe();
            return;
        }
        for (std::uint64_t seq = base + 1;; ++seq) {
            auto r = (*s)->authenticate(v.rand, autnFor(v, seq << 5));
            if (!r) {
                stopReason = r.error().describe();
                return;
            }
            if (!std::holds_alternative<AuthSuccess>(*r)) {
                stopReason = "unexpected outcome " + std::to_string(r->index());
                return;
            }
            lastOk = seq << 5;
            ++accepted;
        }
    });
    // Let it run, then kill -9 in the middle of the stream.
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (accepted < 200 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(1ms);
    rig_->signalVusim(SIGKILL);
    client.join();
    ASSERT_GE(accepted.load(), 200) << stopReason;
    EXPECT_NE(stopReason.find("card"), std::string::npos) << stopReason;

    ASSERT_OK(rig_->restartVusim());
    auto s = mustOpen();
    ASSERT_TRUE(s);
    crypto::Auts auts{};
    EXPECT_EQ(outcome(*s, v, lastOk, &auts), kSync);  // every answered SQN stays refused
    const std::uint64_t sqnMs = recoveredSqnMs(v, auts);
    // The one in flight at the kill may have been persisted without its answer arriving.
    EXPECT_GE(sqnMs, lastOk.load());
    EXPECT_LE(sqnMs, lastOk.load() + 32);
    EXPECT_EQ(outcome(*s, v, sqnMs + 32), kOk);
}

TEST_F(RigTest, LogsHoldNoKeyMaterial) {
    const MilenageSet& v = milenageSets().at(5);
    auto settings = settingsFor(v, ResponseStyle::t0);
    settings.pin = "97531";
    ASSERT_OK(rig_->startVusim(settings));
    auto pin = pinBlockFromDigits("97531");
    auto s = mustOpen(*pin);
    ASSERT_TRUE(s);
    EXPECT_EQ(outcome(*s, v, v.sqnInt()), kOk);
    EXPECT_EQ(outcome(*s, v, v.sqnInt()), kSync);
    rig_->signalVusim(SIGTERM);
    ASSERT_OK(rig_->waitForCardAbsent(10s));
    std::string logs = rig_->logs() + rig_->vusimLog();
    std::transform(logs.begin(), logs.end(), logs.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    for (const std::string& secret :
         {v.kHex, v.opcHex, v.opHex, toHex(v.f3), toHex(v.f4), std::string("97531")})
        EXPECT_EQ(logs.find(secret), std::string::npos) << "found " << secret;
    EXPECT_NE(logs.find("stopping"), std::string::npos);  // the log is there at all
}

}  // namespace
}  // namespace best::sim
