// best-hsed --check-config as a real process.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "../tools/run_process.h"

namespace {

std::string gProgram;

std::string example() {
    const char* src = std::getenv("BEST_SOURCE_ROOT");
    return std::string(src != nullptr ? src : ".") + "/config/hsed.yaml";
}

}  // namespace

TEST(HsedCheckConfig, ShippedExampleIsOk) {
    auto r = best::test::runProcess(gProgram, {"--config", example(), "--check-config"});
    EXPECT_EQ(r.exitCode, 0) << r.err;
    EXPECT_EQ(r.out, "configuration OK: " + example() + "\n");
}

TEST(HsedCheckConfig, BrokenConfigNamesFileLineColumnAndKey) {
    char path[] = "/tmp/best-hsed-test-XXXXXX";
    int fd = ::mkstemp(path);
    ASSERT_GE(fd, 0);
    const std::string text =
        "hse_id: h\nlisten: [{address: 127.0.0.1}]\nhsm: {token: t, pin_file: p, pin: 1234}\n"
        "store: {path: /s}\n";
    ASSERT_EQ(::write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
    ::close(fd);
    auto r = best::test::runProcess(gProgram, {"--check-config", "--config", path});
    ::unlink(path);
    EXPECT_EQ(r.exitCode, 1);
    EXPECT_EQ(r.err, std::string("best-hsed: ") + path +
                         ":3:30: key 'hsm.pin': unknown key (known here: module, token, "
                         "pin_file, workers, recycle_after_objects)\n");
    EXPECT_EQ(r.err.find("1234"), std::string::npos);
}

TEST(HsedCheckConfig, MissingFileAndBadArgument) {
    auto r = best::test::runProcess(gProgram, {"--config", "/nonexistent.yaml", "--check-config"});
    EXPECT_EQ(r.exitCode, 1);
    EXPECT_EQ(r.err, "best-hsed: /nonexistent.yaml: cannot read: No such file or directory\n");
    auto b = best::test::runProcess(gProgram, {"--frob"});
    EXPECT_EQ(b.exitCode, 2);
    EXPECT_EQ(b.err, "best-hsed: unexpected argument '--frob' (see best-hsed --help)\n");
}

int main(int argc, char** argv) {
    ::testing::InitGoogleTest(&argc, argv);
    if (argc < 2)
        return 2;
    gProgram = argv[1];
    return RUN_ALL_TESTS();
}
