// THE kill -9 test (issue 4, profile section 9): a vector-generating process is killed at
// random moments at least 200 times; every SQN it released was logged durably first. No SQN may
// appear twice, SQNs rise within each run, and each run continues above everything before it.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cinttypes>
#include <climits>
#include <fstream>
#include <random>
#include <set>
#include <sstream>

#include "common/hex.h"
#include "store_test_util.h"

namespace best::store::test {
namespace {

constexpr const char* kImsi = "001010000000001";
constexpr int kRuns = 210;
constexpr int kMaxDelayUs = 30000;

std::string helperPath() {
    char buf[PATH_MAX] = {};
    const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof(buf) - 1);
    std::string self = n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
    return self.substr(0, self.rfind('/') + 1) + "sqn_vector_writer";
}

struct Child {
    pid_t pid = -1;
    int stdoutFd = -1;  // the helper prints "ready" here once its store is open
};

Child spawn(const std::vector<std::string>& args) {
    std::vector<char*> argv;
    for (const auto& a : args)
        argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    int out[2];
    if (::pipe2(out, O_CLOEXEC) != 0)
        return {};
    const pid_t pid = ::fork();
    if (pid == 0) {
        ::dup2(out[1], STDOUT_FILENO);
        ::execv(argv[0], argv.data());
        ::_exit(127);
    }
    ::close(out[1]);
    return Child{pid, out[0]};
}

// Waits (at most 10 s) for the helper's "ready" line.
bool waitReady(int fd) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 10000) != 1)
        return false;
    char buf[16];
    return ::read(fd, buf, sizeof buf) > 0;
}

struct LoggedRun {
    long index = 0;
    std::vector<std::uint64_t> seqs;
};

// The parent delimits runs in the log (a child may die before it writes anything).
void markRun(const std::string& log, int index) {
    const int fd = ::open(log.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    ASSERT_GE(fd, 0);
    const std::string line = "run " + std::to_string(index) + "\n";
    ASSERT_EQ(::write(fd, line.data(), line.size()), static_cast<ssize_t>(line.size()));
    ASSERT_EQ(::fdatasync(fd), 0);
    ::close(fd);
}

TEST(StoreKill9, NoSqnIsHandedOutTwiceAcrossKills) {
    TempDir dir;
    const auto store = dir.file("state.db");
    const auto log = dir.file("sqn.log");
    const auto helper = helperPath();
    ASSERT_EQ(::access(helper.c_str(), X_OK), 0) << helper;
    {
        auto s = openOrDie(store);
        ASSERT_NE(s, nullptr);
        ASSERT_TRUE(s->addSubscriber(subscriber(kImsi)).has_value());
    }

    std::random_device rd;
    const unsigned seed = rd();
    std::mt19937 rng(seed);
    std::uniform_int_distribution<int> delay(0, kMaxDelayUs);
    std::uniform_int_distribution<int> batch(1, 40);
    RecordProperty("seed", std::to_string(seed));
    int killed = 0;
    int fromReady = 0;
    for (int i = 0; i < kRuns; ++i) {
        markRun(log, i);
        const Child child = spawn({helper, store, log, kImsi, std::to_string(batch(rng))});
        const pid_t pid = child.pid;
        ASSERT_GT(pid, 0);
        // One run in four counts the delay from the spawn, so start-up and Store::open are hit
        // too; the others from "ready", so that the allocation loop is hit even where start-up
        // alone takes longer than the delay (ASan).
        if (i % 4 != 0) {
            if (waitReady(child.stdoutFd)) {
                ++fromReady;
            } else {
                ADD_FAILURE() << "run " << i << ": no ready line";
            }
        }
        ::usleep(static_cast<useconds_t>(delay(rng)));
        ::kill(pid, SIGKILL);
        int status = 0;
        ASSERT_EQ(::waitpid(pid, &status, 0), pid);
        ::close(child.stdoutFd);  // only now: an early close would kill the helper by SIGPIPE
        if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) {
            ++killed;
        } else {
            FAIL() << "run " << i << " (seed " << seed << ") ended by itself, status " << status;
        }
    }
    // A last, unkilled run must still work and continue above everything.
    markRun(log, kRuns);
    const Child lastChild = spawn({helper, store, log, kImsi, "7", "50"});
    const pid_t last = lastChild.pid;
    ASSERT_GT(last, 0);
    int status = 0;
    ASSERT_EQ(::waitpid(last, &status, 0), last);
    ::close(lastChild.stdoutFd);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;

    // Parse the log.
    std::ifstream in(log);
    ASSERT_TRUE(in.good());
    std::vector<LoggedRun> runs;
    std::string line;
    while (std::getline(in, line)) {
        std::istringstream ls(line);
        std::string kind;
        ls >> kind;
        if (kind == "run") {
            runs.emplace_back();
            ls >> runs.back().index;
        } else if (kind == "sqn") {
            std::uint64_t seq = 0;
            std::string hex;
            ls >> seq >> hex;
            ASSERT_FALSE(runs.empty()) << line;
            // The logged SQN is SEQ || IND 0 with 5 IND bits.
            auto bytes = fromHex(hex, "SQN", 6);
            ASSERT_TRUE(bytes.has_value()) << line;
            crypto::Sqn sqn{};
            std::copy(bytes->begin(), bytes->end(), sqn.begin());
            EXPECT_EQ(sqnFromBytes(sqn), composeSqn(seq, 0, 5)) << line;
            runs.back().seqs.push_back(seq);
        } else {
            FAIL() << "malformed log line '" << line << "'";
        }
    }
    ASSERT_EQ(runs.size(), static_cast<std::size_t>(kRuns + 1));

    std::set<std::uint64_t> seen;
    std::uint64_t highest = 0;
    std::size_t total = 0;
    int productive = 0;
    for (std::size_t r = 0; r < runs.size(); ++r) {
        const auto& seqs = runs[r].seqs;
        if (!seqs.empty())
            ++productive;
        for (std::size_t i = 0; i < seqs.size(); ++i) {
            EXPECT_TRUE(seen.insert(seqs[i]).second)
                << "SQN SEQ " << seqs[i] << " handed out twice (run " << r << ", seed " << seed
                << ")";
            if (i > 0) {
                EXPECT_GT(seqs[i], seqs[i - 1]) << "run " << r;
            } else {
                EXPECT_GT(seqs[i], highest) << "run " << r << " restarted at or below an "
                                            << "earlier SQN (seed " << seed << ")";
            }
            highest = std::max(highest, seqs[i]);
        }
        total += seqs.size();
    }
    EXPECT_EQ(runs.back().seqs.size(), 50u);
    // The test must have exercised something: many runs released SQNs before being killed.
    EXPECT_GE(productive, kRuns / 5) << "too few runs got as far as releasing an SQN";

    // The store's durable high-water mark covers everything ever released.
    auto s = openOrDie(store);
    ASSERT_NE(s, nullptr);
    auto st = s->getSqnState(kImsi);
    ASSERT_TRUE(st.has_value());
    EXPECT_GE(st->seqHe, highest);

    std::printf(
        "kill -9 loop: %d runs killed (%d timed from ready), %d released SQNs before the kill, "
        "%zu SQNs logged, highest SEQ %" PRIu64 ", SEQ_HE %" PRIu64 ", %" PRIu64
        " reservations, seed %u\n",
        killed, fromReady, productive - 1, total, highest, st->seqHe, st->reservations, seed);
    RecordProperty("killed", killed);
    RecordProperty("productive_runs", productive - 1);
    RecordProperty("sqns", static_cast<int>(total));
}

}  // namespace
}  // namespace best::store::test
