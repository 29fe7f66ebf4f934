// best-hsectl as a real process against a throwaway SoftHSM token (its own SOFTHSM2_CONF and
// token directory, tests/hsm/softhsm_token.h) and a temporary SQLite store in the token's
// directory; everything is removed afterwards, so the test programs run in parallel.
#pragma once

#include <gtest/gtest.h>

#include <sys/stat.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "common/hex.h"
#include "hsm/key_vault.h"
#include "tests/hsm/softhsm_token.h"
#include "tests/hsm/test_data.h"
#include "tests/hsm/vault_fixture.h"
#include "tests/unit/tools/run_process.h"

namespace best::testing {

// Path of best-hsectl, from the test program's first argument.
inline std::string& hsectlProgram() {
    static std::string path;
    return path;
}

// Xor of two hex strings of equal length.
inline std::string xorHex(const std::string& a, const std::string& b) {
    std::string out;
    for (std::size_t i = 0; i < a.size(); ++i) {
        const int x =
            std::stoi(a.substr(i, 1), nullptr, 16) ^ std::stoi(b.substr(i, 1), nullptr, 16);
        out += "0123456789abcdef"[x];
    }
    return out;
}

// The worked example's resync (part 6): SQN_MS and the USIM's AUTS for Milenage set 1.
struct WorkedResync {
    std::string sqnMs;
    std::string auts;
    std::string nextSqn;  // "next SQN = (SEQ_HE + 1) || IND = ..."
};

inline WorkedResync workedExampleResync() {
    std::ifstream in(dataPath("profile-example.txt"));
    std::stringstream ss;
    ss << in.rdbuf();
    const std::string text = ss.str();
    WorkedResync c;
    std::smatch m;
    if (std::regex_search(text, m, std::regex("SQN_MS = ([0-9a-f]{12})")))
        c.sqnMs = m[1];
    if (std::regex_search(text, m, std::regex("MAC-S ([0-9a-f]{28})")))
        c.auts = m[1];
    if (std::regex_search(text, m,
                          std::regex("next SQN = \\(SEQ_HE \\+ 1\\) \\|\\| IND = "
                                     "([0-9a-f]{12})"))) {
        c.nextSqn = m[1];
    }
    return c;
}

class HsectlTest : public ::testing::Test {
protected:
    void SetUp() override {
        token_.activate();
        store_ = token_.dir() + "/state.db";
        auto r = cli({"init"});
        ASSERT_EQ(r.exitCode, 0) << r.err;
    }

    std::vector<std::string> globals() const {
        return {"--module",   softHsmModule(),  "--token", token_.label(),
                "--pin-file", token_.pinFile(), "--store", store_};
    }

    // best-hsectl ARGS plus the global options (token, PIN file, store).
    test::ProcessResult cli(std::vector<std::string> args, const std::string& in = {}) const {
        const auto g = globals();
        args.insert(args.end(), g.begin(), g.end());
        return test::runProcess(hsectlProgram(), args, in);
    }
    // best-hsectl ARGS alone.
    test::ProcessResult bare(const std::vector<std::string>& args,
                             const std::string& in = {}) const {
        return test::runProcess(hsectlProgram(), args, in);
    }

    // A file in the token's directory (mode 0600).
    std::string file(const std::string& name, const std::string& content) const {
        const std::string path = token_.dir() + "/" + name;
        SoftHsmToken::writeFile(path, content, 0600);
        return path;
    }

    // Adds a subscriber from hex K and OPc (or OP); asserts success.
    void add(const std::string& imsi, const std::string& k, const std::string& opOrOpc,
             bool isOp = false, std::vector<std::string> extra = {}) {
        const std::string kf = file("k-" + imsi, k + "\n");
        const std::string of = file("o-" + imsi, opOrOpc + "\n");
        std::vector<std::string> args{"subscriber",
                                      "add",
                                      "--imsi",
                                      imsi,
                                      "--k-file",
                                      kf,
                                      isOp ? "--op-file" : "--opc-file",
                                      of,
                                      "--amf",
                                      "8000"};
        args.insert(args.end(), extra.begin(), extra.end());
        auto r = cli(args);
        ASSERT_EQ(r.exitCode, 0) << r.err;
    }

    // A YAML config for best-hsed pointing at this token and store, with an IND.
    std::string config(unsigned ind, unsigned indBits) const {
        return file("hsed.yaml",
                    "hse_id: hse.example.org\n"
                    "listen:\n  - address: 127.0.0.1\n    port: 0\n"
                    "hsm:\n  module: " +
                        softHsmModule() + "\n  token: " + token_.label() +
                        "\n  pin_file: " + token_.pinFile() + "\nstore:\n  path: " + store_ +
                        "\nsqn:\n  ind: " + std::to_string(ind) +
                        "\n  ind_bits: " + std::to_string(indBits) + "\n");
    }

    SoftHsmToken token_;
    std::string store_;
};

// "SQN: xxx" etc. from an aka-vector output.
inline std::map<std::string, std::string> vectorLines(const std::string& out) {
    std::map<std::string, std::string> m;
    std::istringstream in(out);
    std::string line;
    while (std::getline(in, line)) {
        const auto colon = line.find(": ");
        if (colon != std::string::npos)
            m[line.substr(0, colon)] = line.substr(colon + 2);
    }
    return m;
}

}  // namespace best::testing
