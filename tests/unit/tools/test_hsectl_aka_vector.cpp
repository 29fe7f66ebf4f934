// best-hsectl aka-vector as a real process: every Milenage set of TS 35.207 (tests/data),
// the resync of the profile's worked example, and every input error with its message and code.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "profile_example.h"
#include "run_process.h"

namespace {

std::string gProgram;

std::string dataPath(const std::string& name) {
    const char* dir = std::getenv("BEST_TEST_DATA");
    return std::string(dir != nullptr ? dir : "tests/data") + "/" + name;
}

using Fields = std::map<std::string, std::string>;

std::vector<Fields> milenageSets() {
    std::ifstream in(dataPath("milenage-ts35207.txt"));
    std::vector<Fields> sets;
    std::string line;
    while (std::getline(in, line)) {
        if (line.empty() || line[0] == '#')
            continue;
        std::istringstream ls(line);
        Fields f;
        std::string tok;
        while (ls >> tok) {
            auto eq = tok.find('=');
            if (eq != std::string::npos)
                f[tok.substr(0, eq)] = tok.substr(eq + 1);
        }
        sets.push_back(f);
    }
    return sets;
}

std::string xorHex(const std::string& a, const std::string& b) {
    std::string out;
    for (std::size_t i = 0; i < a.size(); ++i) {
        int x = std::stoi(a.substr(i, 1), nullptr, 16) ^ std::stoi(b.substr(i, 1), nullptr, 16);
        out += "0123456789abcdef"[x];
    }
    return out;
}

std::string expectedVector(const Fields& s) {
    return "RAND: " + s.at("RAND") + "\nAUTN: " + xorHex(s.at("SQN"), s.at("f5")) + s.at("AMF") +
           s.at("f1") + "\nXRES: " + s.at("f2") + "\nCK: " + s.at("f3") + "\nIK: " + s.at("f4") +
           "\nAK: " + s.at("f5") + "\nSQN: " + s.at("SQN") + "\n";
}

class TempFile {
public:
    explicit TempFile(const std::string& content) {
        char tmpl[] = "/tmp/best-hsectl-test-XXXXXX";
        int fd = ::mkstemp(tmpl);
        EXPECT_GE(fd, 0);
        path_ = tmpl;
        EXPECT_EQ(::write(fd, content.data(), content.size()),
                  static_cast<ssize_t>(content.size()));
        ::close(fd);
    }
    ~TempFile() { ::unlink(path_.c_str()); }
    const std::string& path() const { return path_; }

private:
    std::string path_;
};

best::test::ProcessResult run(const std::vector<std::string>& args, const std::string& in = {}) {
    std::vector<std::string> full{"aka-vector"};
    full.insert(full.end(), args.begin(), args.end());
    return best::test::runProcess(gProgram, full, in);
}

TEST(HsectlAkaVector, EveryMilenageSetWithOp) {
    auto sets = milenageSets();
    ASSERT_EQ(sets.size(), 6u);
    for (const auto& s : sets) {
        auto r = run({"--test-keys", "--k", s.at("K"), "--op", s.at("OP"), "--amf", s.at("AMF"),
                      "--sqn", s.at("SQN"), "--rand", s.at("RAND")});
        EXPECT_EQ(r.exitCode, 0) << "set " << s.at("set") << ": " << r.err;
        EXPECT_EQ(r.out, expectedVector(s)) << "set " << s.at("set");
    }
}

TEST(HsectlAkaVector, EveryMilenageSetWithOpcFromFiles) {
    for (const auto& s : milenageSets()) {
        TempFile k(s.at("K") + "\n");
        TempFile opc(s.at("OPc"));
        auto r = run({"--k-file", k.path(), "--opc-file", opc.path(), "--amf", s.at("AMF"), "--sqn",
                      s.at("SQN"), "--rand", s.at("RAND")});
        EXPECT_EQ(r.exitCode, 0) << r.err;
        EXPECT_EQ(r.out, expectedVector(s)) << "set " << s.at("set");
    }
}

TEST(HsectlAkaVector, KeyFromStandardInputAndRawOctets) {
    auto s = milenageSets().at(2);
    // OP as 16 raw octets in a file, K from standard input.
    std::string raw;
    for (std::size_t i = 0; i < 32; i += 2) {
        raw += static_cast<char>(std::stoi(s.at("OP").substr(i, 2), nullptr, 16));
    }
    TempFile op(raw);
    auto r = run({"--k-file", "-", "--op-file", op.path(), "--amf", s.at("AMF"), "--sqn",
                  s.at("SQN"), "--rand", s.at("RAND")},
                 s.at("K") + "\n");
    EXPECT_EQ(r.exitCode, 0) << r.err;
    EXPECT_EQ(r.out, expectedVector(s));
}

TEST(HsectlAkaVector, RandomRandWhenOmitted) {
    auto s = milenageSets().at(0);
    auto a = run({"--test-keys", "--k", s.at("K"), "--opc", s.at("OPc"), "--amf", s.at("AMF"),
                  "--sqn", s.at("SQN")});
    auto b = run({"--test-keys", "--k", s.at("K"), "--opc", s.at("OPc"), "--amf", s.at("AMF"),
                  "--sqn", s.at("SQN")});
    ASSERT_EQ(a.exitCode, 0) << a.err;
    ASSERT_EQ(b.exitCode, 0) << b.err;
    std::regex shape(
        "RAND: [0-9a-f]{32}\nAUTN: [0-9a-f]{32}\nXRES: [0-9a-f]{16}\nCK: [0-9a-f]{32}\n"
        "IK: [0-9a-f]{32}\nAK: [0-9a-f]{12}\nSQN: " +
        s.at("SQN") + "\n");
    EXPECT_TRUE(std::regex_match(a.out, shape)) << a.out;
    EXPECT_NE(a.out.substr(0, 38), b.out.substr(0, 38));
}

// Part 6 of the worked example (independent implementation): the USIM's AUTS for set 1.
best::test::ExampleResync workedExampleResync() {
    return best::test::ExampleFile::instance().resync();
}

TEST(HsectlAkaVector, ResyncRecoversSqnMs) {
    auto s = milenageSets().at(0);
    auto c = workedExampleResync();
    ASSERT_EQ(c.sqnMs.size(), 12u);
    ASSERT_EQ(c.auts.size(), 28u);
    auto r = run({"--test-keys", "--k", s.at("K"), "--opc", s.at("OPc"), "--auts", c.auts, "--rand",
                  s.at("RAND")});
    EXPECT_EQ(r.exitCode, 0) << r.err;
    EXPECT_EQ(r.out, "SQN_MS: " + c.sqnMs + "\n");
}

TEST(HsectlAkaVector, ResyncBadMacS) {
    auto s = milenageSets().at(0);
    auto c = workedExampleResync();
    ASSERT_EQ(c.auts.size(), 28u);
    std::string bad = c.auts;
    bad[27] = bad[27] == '0' ? '1' : '0';
    auto r = run({"--test-keys", "--k", s.at("K"), "--opc", s.at("OPc"), "--auts", bad, "--rand",
                  s.at("RAND")});
    EXPECT_EQ(r.exitCode, 1);
    EXPECT_EQ(r.out, "");
    EXPECT_EQ(r.err, "MAC-S check failed\n");
}

struct ErrorCase {
    std::vector<std::string> args;
    std::string message;  // expected first line of stderr
};

TEST(HsectlAkaVector, InputErrorsExit2WithClearMessage) {
    const std::string k = "465b5ce8b199b49faa5f0a2ee238a6bc";
    const std::string op = "cdc202d5123e20f62b6d676ac72cb318";
    const std::vector<ErrorCase> cases = {
        {{"--k", k, "--op", op, "--amf", "b9b9", "--sqn", "ff9bb4d0b607"},
         "best-hsectl aka-vector: --k/--op/--opc put keys on the command line; they are only "
         "accepted with --test-keys, for published test vectors (use --k-file, --op-file or "
         "--opc-file)"},
        {{"--test-keys", "--k", k, "--op", op, "--opc", op, "--amf", "b9b9", "--sqn",
          "ff9bb4d0b607"},
         "best-hsectl aka-vector: give exactly one of --op and --opc (OP is the operator "
         "variant, OPc = OP xor E_K(OP))"},
        {{"--test-keys", "--k", k, "--amf", "b9b9", "--sqn", "ff9bb4d0b607"},
         "best-hsectl aka-vector: give exactly one of --op and --opc (OP is the operator "
         "variant, OPc = OP xor E_K(OP))"},
        {{"--test-keys", "--k", k.substr(2), "--op", op, "--amf", "b9b9", "--sqn", "ff9bb4d0b607"},
         "best-hsectl aka-vector: K: expected 16 octets, got 15"},
        {{"--test-keys", "--k", k, "--op", op, "--amf", "b9b", "--sqn", "ff9bb4d0b607"},
         "best-hsectl aka-vector: AMF: hex has an odd number of digits"},
        {{"--test-keys", "--k", k, "--op", op, "--amf", "b9b9", "--sqn", "ff9bb4d0b6zz"},
         "best-hsectl aka-vector: SQN: not a hex digit at position 10"},
        {{"--test-keys", "--k", k, "--op", op, "--amf", "b9b9", "--sqn", "ff9bb4d0b607", "--rand",
          "00"},
         "best-hsectl aka-vector: RAND: expected 16 octets, got 1"},
        {{"--test-keys", "--k", k, "--op", op, "--sqn", "ff9bb4d0b607"},
         "best-hsectl aka-vector: missing --amf"},
        {{"--test-keys", "--k", k, "--op", op, "--auts", "00", "--amf", "b9b9"},
         "best-hsectl aka-vector: --auts takes no --amf or --sqn"},
        {{"--test-keys", "--k", k, "--op", op, "--auts", "00"},
         "best-hsectl aka-vector: --auts needs --rand (the RAND the USIM answered)"},
        {{"--test-keys", "--k", k, "--op", op, "--auts", "00", "--rand", std::string(32, '0')},
         "best-hsectl aka-vector: AUTS: expected 14 octets, got 1"},
        {{"--k-file", "/nonexistent/k", "--op-file", "/nonexistent/op", "--amf", "b9b9", "--sqn",
          "ff9bb4d0b607"},
         "best-hsectl aka-vector: K file '/nonexistent/k': No such file or directory"},
        {{"--k-file", "-", "--op-file", "-", "--amf", "b9b9", "--sqn", "ff9bb4d0b607"},
         "best-hsectl aka-vector: only one value can be read from standard input"},
        {{"--bogus"}, "best-hsectl aka-vector: unknown option --bogus"},
        {{"--test-keys", "--k", k, "--k", k}, "best-hsectl aka-vector: option --k given twice"},
    };
    for (const auto& c : cases) {
        auto r = run(c.args, c.args.size() > 1 && c.args[1] == "-" ? k + "\n" : "");
        EXPECT_EQ(r.exitCode, 2) << c.message;
        EXPECT_EQ(r.out, "");
        EXPECT_EQ(r.err.substr(0, r.err.find('\n')), c.message);
    }
}

TEST(HsectlAkaVector, KeyFileWithBadContent) {
    TempFile k("nota key\n");
    TempFile op("cdc202d5123e20f62b6d676ac72cb318");
    auto r = run(
        {"--k-file", k.path(), "--op-file", op.path(), "--amf", "b9b9", "--sqn", "ff9bb4d0b607"});
    EXPECT_EQ(r.exitCode, 2);
    EXPECT_EQ(r.err, "best-hsectl aka-vector: K: expected 16 octets, got 4\n");
}

TEST(HsectlAkaVector, HelpAndUnknownCommand) {
    auto h = run({"--help"});
    EXPECT_EQ(h.exitCode, 0);
    EXPECT_NE(h.out.find("--test-keys"), std::string::npos);
    EXPECT_NE(h.out.find("ONLY for published test vectors"), std::string::npos);
    auto u = best::test::runProcess(gProgram, {"frobnicate"});
    EXPECT_EQ(u.exitCode, 2);
    EXPECT_EQ(u.err, "best-hsectl: unknown command 'frobnicate' (see best-hsectl --help)\n");
    auto top = best::test::runProcess(gProgram, {"--help"});
    EXPECT_EQ(top.exitCode, 0);
    EXPECT_NE(top.out.find("aka-vector"), std::string::npos);
}

}  // namespace

int main(int argc, char** argv) {
    ::testing::InitGoogleTest(&argc, argv);
    if (argc < 2) {
        std::fprintf(stderr, "usage: %s PATH-TO-best-hsectl\n", argv[0]);
        return 2;
    }
    gProgram = argv[1];
    return RUN_ALL_TESTS();
}
