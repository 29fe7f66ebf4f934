// best-vusim's YAML configuration: every key, every error with file:line:column, and that no
// error message quotes key material.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "common/hex.h"
#include "sim/sim_error.h"
#include "sim/vusim/config.h"
#include "tests/sim/support.h"

namespace best::sim::vusim {
namespace {

const std::string kK = "465b5ce8b199b49faa5f0a2ee238a6bc";  // TS 35.207 set 1
const std::string kOp = "cdc202d5123e20f62b6d676ac72cb318";
const std::string kOpc = "cd63cb71954a9f4e48a5994e37a02baf";

std::string full(const std::string& subscriber) {
    return "vpcd:\n  host: localhost\n  port: 40001\n"
           "card:\n  imsi: \"001010123456789\"\n  iccid: \"89990100000000000001\"\n"
           "  response_style: t0\n  get_response_chunk: 32\n  pin: \"2468\"\n  pin_attempts: 5\n"
           "subscriber:\n" +
           subscriber +
           "sqn:\n  state_file: /tmp/x.state\n  ind_bits: 6\n  delta: 0x1000\n"
           "  initial_seq_ms:\n    7: 0x10\n    63: 1234\n";
}

TEST(VusimConfig, EveryKey) {
    auto c = parseVusimConfig(full("  k: " + kK + "\n  opc: " + kOpc + "\n"), "test.yaml");
    ASSERT_TRUE(c) << c.error().describe();
    EXPECT_EQ(c->vpcdHost, "localhost");
    EXPECT_EQ(c->vpcdPort, 40001);
    EXPECT_EQ(c->card.imsi, "001010123456789");
    EXPECT_EQ(c->card.iccid, "89990100000000000001");
    EXPECT_EQ(c->card.style, ResponseStyle::t0);
    EXPECT_EQ(c->card.getResponseChunk, 32u);
    ASSERT_TRUE(c->card.pin);
    EXPECT_EQ(toHex(c->card.pin->view()), "32343638ffffffff");
    EXPECT_EQ(c->card.pinAttempts, 5);
    EXPECT_EQ(toHex(c->k.view()), kK);
    EXPECT_EQ(toHex(c->opc.view()), kOpc);
    EXPECT_EQ(c->stateFile, "/tmp/x.state");
    EXPECT_EQ(c->initialSqn.indBits(), 6u);
    EXPECT_EQ(c->initialSqn.delta(), 0x1000u);
    EXPECT_EQ(c->initialSqn.seq(7), 16u);
    EXPECT_EQ(c->initialSqn.seq(63), 1234u);
    EXPECT_TRUE(c->warnings.empty());
}

TEST(VusimConfig, OpIsTurnedIntoOpc) {
    auto c = parseVusimConfig(full("  k: " + kK + "\n  op: " + kOp + "\n"), "test.yaml");
    ASSERT_TRUE(c) << c.error().describe();
    EXPECT_EQ(toHex(c->opc.view()), kOpc);  // the published OPc of set 1
}

TEST(VusimConfig, Defaults) {
    auto c = parseVusimConfig("card: {imsi: '001010000000001'}\nsubscriber: {k: " + kK +
                                  ", opc: " + kOpc + "}\nsqn: {state_file: s}\n",
                              "d.yaml");
    ASSERT_TRUE(c) << c.error().describe();
    EXPECT_EQ(c->vpcdHost, "127.0.0.1");
    EXPECT_EQ(c->vpcdPort, 35963);
    EXPECT_EQ(c->card.style, ResponseStyle::direct);
    EXPECT_FALSE(c->card.pin);
    EXPECT_EQ(c->initialSqn.indBits(), 5u);
    EXPECT_EQ(c->initialSqn.delta(), kSqnDelta);
    EXPECT_EQ(c->initialSqn.highestSqn(), 0u);
    EXPECT_EQ(c->card.iccid.substr(0, 7), "8999901");
}

struct BadCase {
    const char* name;
    std::string yaml;
    const char* expect;  // part of the message
};

TEST(VusimConfig, ErrorsNameTheProblemAndThePlace) {
    const std::string sub = "subscriber: {k: " + kK + ", opc: " + kOpc + "}\n";
    const std::string card = "card: {imsi: '001010000000001'}\n";
    const std::string sqn = "sqn: {state_file: s}\n";
    const std::vector<BadCase> cases = {
        {"unknown top key", card + sub + sqn + "extra: 1\n", "unknown key 'extra'"},
        {"unknown card key", "card: {imsi: '001010000000001', colour: red}\n" + sub + sqn,
         "unknown key 'colour' in card"},
        {"missing card", sub + sqn, "missing section 'card'"},
        {"missing k", card + "subscriber: {opc: " + kOpc + "}\n" + sqn, "missing subscriber.k"},
        {"op and opc",
         card + "subscriber: {k: " + kK + ", op: " + kOp + ", opc: " + kOpc + "}\n" + sqn,
         "not both"},
        {"neither op nor opc", card + "subscriber: {k: " + kK + "}\n" + sqn,
         "op or subscriber.opc"},
        {"short k", card + "subscriber: {k: 465b5ce8, opc: " + kOpc + "}\n" + sqn,
         "subscriber.k: expected 16 octets"},
        {"bad style", "card: {imsi: '001010000000001', response_style: t1}\n" + sub + sqn,
         "t0 or direct"},
        {"bad pin", "card: {imsi: '001010000000001', pin: '12'}\n" + sub + sqn, "4 to 8"},
        {"bad port", "vpcd: {port: 70000}\n" + card + sub + sqn, "1..65534"},
        {"ind bits", card + sub + "sqn: {state_file: s, ind_bits: 9}\n", "0..8"},
        {"ind range", card + sub + "sqn: {state_file: s, initial_seq_ms: {32: 1}}\n",
         "IND 32 out of range"},
        {"seq range", card + sub + "sqn: {state_file: s, initial_seq_ms: {1: 0x80000000000}}\n",
         "does not fit"},
        {"not a number", card + sub + "sqn: {state_file: s, delta: lots}\n", "not a decimal"},
        {"no state file", card + sub + "sqn: {ind_bits: 5}\n", "missing sqn.state_file"},
        {"yaml syntax", "card: [unclosed\n", "test.yaml:"},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.name);
        auto r = parseVusimConfig(c.yaml, "test.yaml");
        ASSERT_FALSE(r);
        EXPECT_EQ(r.error().code, static_cast<int>(SimErrc::config));
        EXPECT_NE(r.error().message.find(c.expect), std::string::npos) << r.error().message;
        EXPECT_EQ(r.error().message.find("test.yaml:"), 0u) << r.error().message;
        EXPECT_EQ(r.error().message.find(kK), std::string::npos);
        EXPECT_EQ(r.error().message.find(kOpc), std::string::npos);
    }
    // A bad digit in K: the message gives the position, never the value.
    auto r = parseVusimConfig(
        card + "subscriber: {k: 465b5ce8b199b49faa5f0a2ee238a6bZ, opc: " + kOpc + "}\n" + sqn,
        "test.yaml");
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message.find("test.yaml:2:"), std::string::npos) << r.error().message;
    EXPECT_EQ(r.error().message.find("465b5ce8"), std::string::npos);
}

TEST(VusimConfig, FileModeWarning) {
    namespace fs = std::filesystem;
    std::string templ = (fs::temp_directory_path() / "best-vusim-cfg.XXXXXX").string();
    ASSERT_NE(::mkdtemp(templ.data()), nullptr);
    const std::string path = templ + "/vusim.yaml";
    {
        std::ofstream out(path);
        out << full("  k: " + kK + "\n  opc: " + kOpc + "\n");
    }
    ASSERT_EQ(::chmod(path.c_str(), 0644), 0);
    auto loose = loadVusimConfig(path);
    ASSERT_TRUE(loose) << loose.error().describe();
    ASSERT_EQ(loose->warnings.size(), 1u);
    EXPECT_NE(loose->warnings[0].find("0644"), std::string::npos);
    ASSERT_EQ(::chmod(path.c_str(), 0600), 0);
    auto tight = loadVusimConfig(path);
    ASSERT_TRUE(tight);
    EXPECT_TRUE(tight->warnings.empty());
    auto missing = loadVusimConfig(templ + "/nope.yaml");
    ASSERT_FALSE(missing);
    EXPECT_NE(missing.error().message.find("nope.yaml"), std::string::npos);
    std::error_code ec;
    fs::remove_all(templ, ec);
}

TEST(VusimConfig, ShippedExampleParses) {
    const char* src = std::getenv("BEST_SOURCE_ROOT");
    ASSERT_NE(src, nullptr) << "BEST_SOURCE_ROOT is not set (run through meson test)";
    auto c = loadVusimConfig(std::string(src) + "/config/vusim.yaml");
    ASSERT_TRUE(c) << c.error().describe();
    EXPECT_FALSE(c->card.imsi.empty());
}

}  // namespace
}  // namespace best::sim::vusim
