// The uplink sink (src/hse/uplink_sink.h) on a real loop and a real UNIX datagram socket.
#include <gtest/gtest.h>

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "hse/uplink_sink.h"
#include "tests/support/temp_dir.h"

using namespace best;
using namespace best::hse;

namespace {

// The receiving end, bound at `path`; read without blocking.
class Receiver {
public:
    explicit Receiver(const std::string& path) : path_(path) {
        fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        std::memcpy(a.sun_path, path.data(), path.size());
        ::unlink(path.c_str());
        ok_ = fd_ >= 0 && ::bind(fd_, reinterpret_cast<const sockaddr*>(&a), sizeof a) == 0;
    }
    ~Receiver() { close(); }
    void close() {
        if (fd_ >= 0) {
            ::close(fd_);
            ::unlink(path_.c_str());
        }
        fd_ = -1;
    }
    bool ok() const { return ok_; }
    // Every frame waiting now.
    std::vector<Bytes> take() {
        std::vector<Bytes> out;
        std::array<std::uint8_t, 2048> buf{};
        for (;;) {
            const ssize_t n = ::recv(fd_, buf.data(), buf.size(), 0);
            if (n < 0)
                break;
            out.emplace_back(buf.begin(), buf.begin() + n);
        }
        return out;
    }

private:
    std::string path_;
    int fd_ = -1;
    bool ok_ = false;
};

Bytes payloadOf(std::uint32_t seq) {
    Bytes p(64, 0);
    p[0] = static_cast<std::uint8_t>(seq >> 8);
    p[1] = static_cast<std::uint8_t>(seq);
    return p;
}

std::uint32_t seqOf(const Bytes& frame) {
    return (std::uint32_t{frame.at(4)} << 8) | frame.at(5);
}

int maxDgramQlen() {
    std::ifstream f("/proc/sys/net/unix/max_dgram_qlen");
    int v = 10;
    f >> v;
    return v;
}

}  // namespace

TEST(UplinkSink, FramesLeaveInOrderWithTheSessionIdAtTheEndOfTheIteration) {
    best::test::TempDir dir;
    const std::string path = dir.path() + "/up.sock";
    Receiver rx(path);
    ASSERT_TRUE(rx.ok());
    net::Loop loop;
    UplinkSink sink(loop, path, 16);
    ASSERT_TRUE(sink.open());
    EXPECT_TRUE(sink.connected());
    for (std::uint32_t i = 0; i < 5; ++i)
        sink.deliver(0x01020304 + i, payloadOf(i));
    EXPECT_EQ(sink.queued(), 5u);
    EXPECT_TRUE(rx.take().empty());  // not before the loop's check phase
    loop.run(UV_RUN_NOWAIT);
    auto frames = rx.take();
    ASSERT_EQ(frames.size(), 5u);
    for (std::uint32_t i = 0; i < 5; ++i) {
        const Bytes& f = frames[i];
        ASSERT_EQ(f.size(), 4u + 64u);
        const std::uint32_t sid = (std::uint32_t{f[0]} << 24) | (std::uint32_t{f[1]} << 16) |
                                  (std::uint32_t{f[2]} << 8) | f[3];
        EXPECT_EQ(sid, 0x01020304 + i);
        EXPECT_EQ(seqOf(f), i);
    }
    EXPECT_EQ(sink.counts().delivered, 5u);
    EXPECT_EQ(sink.counts().droppedFull, 0u);
    EXPECT_EQ(sink.queued(), 0u);
    sink.close();
    loop.run();
}

TEST(UplinkSink, AFullSinkKeepsTheBacklogInOrderAndDropsTheNewest) {
    best::test::TempDir dir;
    const std::string path = dir.path() + "/up.sock";
    Receiver rx(path);
    ASSERT_TRUE(rx.ok());
    net::Loop loop;
    constexpr std::size_t kBacklog = 20;
    constexpr std::uint32_t kSent = 100;
    UplinkSink sink(loop, path, kBacklog);
    ASSERT_TRUE(sink.open());
    for (std::uint32_t i = 0; i < kSent; ++i)
        sink.deliver(7, payloadOf(i));
    loop.run(UV_RUN_NOWAIT);
    // The receiver has not read: its queue took what the kernel allows, the backlog waits.
    const std::uint64_t inQueue = sink.counts().delivered;
    EXPECT_GE(inQueue, 1u);
    EXPECT_LE(inQueue, static_cast<std::uint64_t>(maxDgramQlen()) + 1);
    EXPECT_EQ(sink.queued(), kBacklog);
    EXPECT_EQ(sink.counts().droppedFull, kSent - inQueue - kBacklog);
    // Reading frees the queue: the writable wake-up sends the backlog, in order.
    std::vector<Bytes> got;
    for (int round = 0; round < 50 && got.size() < inQueue + kBacklog; ++round) {
        auto f = rx.take();
        got.insert(got.end(), f.begin(), f.end());
        loop.run(UV_RUN_NOWAIT);
    }
    ASSERT_EQ(got.size(), inQueue + kBacklog);
    for (std::size_t i = 0; i < got.size(); ++i)
        EXPECT_EQ(seqOf(got[i]), i) << "frame " << i;
    EXPECT_EQ(sink.counts().delivered, inQueue + kBacklog);
    EXPECT_EQ(sink.queued(), 0u);
    sink.close();
    loop.run();
}

TEST(UplinkSink, AnAbsentSinkDropsCountedAndIsConnectedWhenItAppears) {
    best::test::TempDir dir;
    const std::string path = dir.path() + "/up.sock";
    net::Loop loop;
    UplinkSink sink(loop, path, 16);
    ASSERT_TRUE(sink.open());  // not bound yet: not an error
    EXPECT_FALSE(sink.connected());
    sink.deliver(1, payloadOf(0));
    EXPECT_EQ(sink.counts().droppedNoSink, 1u);
    sink.deliver(1, payloadOf(1));
    EXPECT_EQ(sink.counts().droppedNoSink, 2u);
    Receiver rx(path);  // the consumer binds late: the next frame connects and goes
    ASSERT_TRUE(rx.ok());
    sink.deliver(1, payloadOf(2));
    EXPECT_TRUE(sink.connected());
    loop.run(UV_RUN_NOWAIT);
    auto frames = rx.take();
    ASSERT_EQ(frames.size(), 1u);
    EXPECT_EQ(seqOf(frames[0]), 2u);
    EXPECT_EQ(sink.counts().delivered, 1u);
    sink.close();
    loop.run();
}

TEST(UplinkSink, ASinkThatGoesAwayIsCountedAndConnectedAgain) {
    best::test::TempDir dir;
    const std::string path = dir.path() + "/up.sock";
    auto rx = std::make_unique<Receiver>(path);
    ASSERT_TRUE(rx->ok());
    net::Loop loop;
    UplinkSink sink(loop, path, 16);
    ASSERT_TRUE(sink.open());
    sink.deliver(9, payloadOf(0));
    loop.run(UV_RUN_NOWAIT);
    EXPECT_EQ(rx->take().size(), 1u);
    rx.reset();  // the sink process ended
    sink.deliver(9, payloadOf(1));
    loop.run(UV_RUN_NOWAIT);
    EXPECT_FALSE(sink.connected());
    EXPECT_EQ(sink.counts().droppedNoSink, 1u);
    rx = std::make_unique<Receiver>(path);  // a new sink at the same path
    sink.deliver(9, payloadOf(2));
    loop.run(UV_RUN_NOWAIT);
    auto frames = rx->take();
    ASSERT_EQ(frames.size(), 1u);
    EXPECT_EQ(seqOf(frames[0]), 2u);
    EXPECT_EQ(sink.counts().delivered, 2u);
    sink.close();
    loop.run();
}

TEST(UplinkSink, APathTooLongIsRefusedAtOpen) {
    net::Loop loop;
    UplinkSink sink(loop, "/tmp/" + std::string(200, 'x'), 16);
    auto r = sink.open();
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message.find("is not a usable UNIX socket path"), std::string::npos);
}
