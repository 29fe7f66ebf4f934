// vpcd's framing, card side, over a socketpair and over loopback TCP (no pcscd).
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "common/hex.h"
#include "common/unique_fd.h"
#include "sim/vusim/card.h"
#include "sim/vusim/vpcd_link.h"
#include "tests/sim/support.h"

namespace best::sim::vusim {
namespace {

using test::hexBytes;

VirtualUsim makeCard(ResponseStyle style) {
    const auto& v = test::milenageSets().at(0);
    CardProfile p;
    p.imsi = "001010123456789";
    p.iccid = "89990100000000000001";
    p.style = style;
    auto c = VirtualUsim::create(p, v.k, v.opc, SqnArray(), nullptr);
    EXPECT_TRUE(c);
    return std::move(*c);
}

void sendAll(int fd, ByteView b) {
    ASSERT_EQ(::send(fd, b.data(), b.size(), MSG_NOSIGNAL), static_cast<ssize_t>(b.size()));
}

Bytes frame(const std::string& hex) {
    Bytes payload = hexBytes(hex);
    Bytes f(2);
    putBe16(f.data(), static_cast<std::uint16_t>(payload.size()));
    f.insert(f.end(), payload.begin(), payload.end());
    return f;
}

// Reads one length-prefixed frame.
std::string readFrame(int fd) {
    std::uint8_t hdr[2];
    if (::recv(fd, hdr, 2, MSG_WAITALL) != 2)
        return "<eof>";
    std::size_t len = getBe16(hdr);
    Bytes body(len);
    if (len && ::recv(fd, body.data(), len, MSG_WAITALL) != static_cast<ssize_t>(len))
        return "<short>";
    return toHex(body);
}

TEST(VpcdLink, ControlsApdusAndSplitWrites) {
    int sv[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    UniqueFd ours(sv[0]), theirs(sv[1]);
    VirtualUsim card = makeCard(ResponseStyle::t0);
    std::atomic<bool> stop{false};
    Result<LinkEnd> end = LinkEnd::stopped;
    std::thread server([&] { end = serveVpcd(theirs.get(), card, stop); });

    sendAll(ours.get(), frame("04"));  // ATR
    EXPECT_EQ(readFrame(ours.get()), "3b0a424553542d565553494d");
    sendAll(ours.get(), frame("01"));  // power on: no answer
    sendAll(ours.get(), frame("00a4040407a000000087100200"));
    EXPECT_EQ(readFrame(ours.get()), "611f");
    // vpcd's way: the length and the APDU in separate writes, a pause between.
    Bytes f = frame("00c000001f");
    sendAll(ours.get(), ByteView(f).first(2));
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    sendAll(ours.get(), ByteView(f).subspan(2));
    std::string fcp = readFrame(ours.get());
    EXPECT_EQ(fcp.substr(0, 4), "621d");
    EXPECT_EQ(fcp.substr(fcp.size() - 4), "9000");
    // Two frames in one write.
    Bytes two = frame("02");  // reset: the ADF is no longer selected
    Bytes authBeforeSelect = frame("0088008122" + std::string(68, '0') + "00");
    two.insert(two.end(), authBeforeSelect.begin(), authBeforeSelect.end());
    sendAll(ours.get(), two);
    EXPECT_EQ(readFrame(ours.get()), "6985");

    ours.reset();  // vpcd goes away
    server.join();
    ASSERT_TRUE(end) << end.error().describe();
    EXPECT_EQ(*end, LinkEnd::closed);
}

TEST(VpcdLink, StopFlagEndsTheLoop) {
    int sv[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    UniqueFd ours(sv[0]), theirs(sv[1]);
    VirtualUsim card = makeCard(ResponseStyle::direct);
    std::atomic<bool> stop{false};
    Result<LinkEnd> end = LinkEnd::closed;
    std::thread server([&] { end = serveVpcd(theirs.get(), card, stop); });
    sendAll(ours.get(), frame("04"));
    EXPECT_EQ(readFrame(ours.get()).substr(0, 6), "3b8a01");
    stop = true;
    sendAll(ours.get(), frame("04"));  // wakes the loop if it is waiting; then it sees the flag
    server.join();
    ASSERT_TRUE(end);
    EXPECT_EQ(*end, LinkEnd::stopped);
}

TEST(VpcdLink, TcpWithNoDelay) {
    UniqueFd listener(::socket(AF_INET, SOCK_STREAM, 0));
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::bind(listener.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
    ASSERT_EQ(::listen(listener.get(), 1), 0);
    socklen_t len = sizeof sa;
    ASSERT_EQ(::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&sa), &len), 0);
    auto fd = connectToVpcd("127.0.0.1", ntohs(sa.sin_port));
    ASSERT_TRUE(fd) << fd.error().describe();
    int nodelay = 0;
    socklen_t optlen = sizeof nodelay;
    ASSERT_EQ(::getsockopt(fd->get(), IPPROTO_TCP, TCP_NODELAY, &nodelay, &optlen), 0);
    EXPECT_NE(nodelay, 0);
    UniqueFd peer(::accept(listener.get(), nullptr, nullptr));
    ASSERT_TRUE(peer.isValid());

    VirtualUsim card = makeCard(ResponseStyle::direct);
    std::atomic<bool> stop{false};
    Result<LinkEnd> end = LinkEnd::stopped;
    std::thread server([&] { end = serveVpcd(fd->get(), card, stop); });
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < 50; ++i) {
        Bytes f = frame("00a4000c022f00");  // split like vpcd
        sendAll(peer.get(), ByteView(f).first(2));
        sendAll(peer.get(), ByteView(f).subspan(2));
        ASSERT_EQ(readFrame(peer.get()), "9000");
    }
    // 50 round trips far below 50 x 40 ms: no delayed-ACK stalls.
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(1000));
    peer.reset();
    server.join();
    ASSERT_TRUE(end);
    EXPECT_EQ(*end, LinkEnd::closed);
}

TEST(VpcdLink, RefusedConnectionIsAnError) {
    UniqueFd s(::socket(AF_INET, SOCK_STREAM, 0));
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::bind(s.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
    socklen_t len = sizeof sa;
    ASSERT_EQ(::getsockname(s.get(), reinterpret_cast<sockaddr*>(&sa), &len), 0);
    // Bound but not listening: connect is refused.
    auto fd = connectToVpcd("127.0.0.1", ntohs(sa.sin_port));
    ASSERT_FALSE(fd);
    EXPECT_NE(fd.error().message.find("connect to vpcd at 127.0.0.1:"), std::string::npos);
}

}  // namespace
}  // namespace best::sim::vusim
