// The HSE's session key slab and keyed-context cache (issue 6): exhaustion, wipe on release,
// the RLIMIT_MEMLOCK failure message, and channels whose contexts were evicted and re-keyed
// producing exactly what owning channels produce.
#include <gtest/gtest.h>
#include <linux/capability.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <string>
#include <vector>

#include "emsdp/emsdp.h"
#include "emsdp/key_slab.h"
#include "test_util.h"

namespace best::emsdp {
namespace {

Key128 key(std::uint8_t seed) {
    std::array<std::uint8_t, 16> k{};
    for (std::size_t i = 0; i < k.size(); ++i)
        k[i] = static_cast<std::uint8_t>(seed * 31 + i * 7 + 1);
    return Key128(ByteView(k));
}

ChannelKeys keysFor(std::uint8_t i) {
    return ChannelKeys{key(static_cast<std::uint8_t>(3 * i)),
                       key(static_cast<std::uint8_t>(3 * i + 1)),
                       key(static_cast<std::uint8_t>(3 * i + 2))};
}

ChannelConfig config(Side side, std::uint32_t sid, bool ciphering) {
    ChannelConfig c;
    c.side = side;
    c.sessionId = sid;
    c.kid = 3;
    c.cpScheme = CounterScheme::n1;
    c.upScheme = CounterScheme::n2;
    c.upEnabled = true;
    c.upCiphering = ciphering;
    return c;
}

bool allZero(ByteView v) {
    return std::all_of(v.begin(), v.end(), [](std::uint8_t b) { return b == 0; });
}

TEST(KeySlab, SlotsHoldTheKeysAndRunOut) {
    auto slab = KeySlab::create(3);
    ASSERT_TRUE(slab) << slab.error().describe();
    EXPECT_EQ(slab->capacity(), 3u);
    EXPECT_EQ(slab->lockedBytes(), KeySlab::bytesFor(3));
    EXPECT_GE(slab->lockedBytes(), 3 * KeySlab::kSlotSize);
    std::vector<std::uint32_t> slots;
    for (std::uint8_t i = 0; i < 3; ++i) {
        auto s = slab->acquire(keysFor(i));
        ASSERT_TRUE(s) << s.error().describe();
        slots.push_back(*s);
        const ChannelKeys k = keysFor(i);
        EXPECT_TRUE(
            std::equal(k.cpInt.view().begin(), k.cpInt.view().end(), slab->cpInt(*s).begin()));
        EXPECT_TRUE(
            std::equal(k.upInt.view().begin(), k.upInt.view().end(), slab->upInt(*s).begin()));
        EXPECT_TRUE(
            std::equal(k.upEnc.view().begin(), k.upEnc.view().end(), slab->upEnc(*s).begin()));
    }
    EXPECT_EQ(slab->used(), 3u);
    auto full = slab->acquire(keysFor(9));
    ASSERT_FALSE(full);
    EXPECT_EQ(full.error().code, static_cast<int>(KeySlabErrc::full));
    EXPECT_NE(full.error().message.find("every session key slot is in use (3)"), std::string::npos);
    slab->release(slots[1]);
    EXPECT_EQ(slab->used(), 2u);
    auto again = slab->acquire(keysFor(9));
    ASSERT_TRUE(again);
    EXPECT_EQ(*again, slots[1]);
}

TEST(KeySlab, ReleaseWipesTheSlot) {
    auto slab = KeySlab::create(2);
    ASSERT_TRUE(slab);
    auto s = slab->acquire(keysFor(4));
    ASSERT_TRUE(s);
    EXPECT_FALSE(allZero(slab->rawSlot(*s)));
    slab->release(*s);
    EXPECT_FALSE(slab->inUse(*s));
    EXPECT_TRUE(allZero(slab->rawSlot(*s)));
    slab->release(*s);  // a second release changes nothing
    EXPECT_EQ(slab->used(), 0u);
}

TEST(KeySlab, ZeroSlotsIsAnError) {
    auto slab = KeySlab::create(0);
    ASSERT_FALSE(slab);
    EXPECT_EQ(slab.error().code, static_cast<int>(KeySlabErrc::invalid));
}

// mlock() past RLIMIT_MEMLOCK, in a child without CAP_IPC_LOCK (the tests run as root).
TEST(KeySlab, MemlockFailureNamesTheLimitAndTheFix) {
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
        __user_cap_data_struct data[2]{};
        if (::syscall(SYS_capget, &hdr, data) != 0)
            ::_exit(10);
        data[CAP_IPC_LOCK / 32].effective &= ~(1u << (CAP_IPC_LOCK % 32));
        if (::syscall(SYS_capset, &hdr, data) != 0)
            ::_exit(11);
        rlimit rl{65536, 65536};
        if (::setrlimit(RLIMIT_MEMLOCK, &rl) != 0)
            ::_exit(12);
        auto slab = KeySlab::create(100000);
        if (slab)
            ::_exit(13);
        const std::string& m = slab.error().message;
        const std::string bytes = std::to_string(KeySlab::bytesFor(100000));
        if (slab.error().code != static_cast<int>(KeySlabErrc::memlock))
            ::_exit(14);
        if (m.find("RLIMIT_MEMLOCK is 65536 octets") == std::string::npos)
            ::_exit(15);
        if (m.find(bytes + " octets needed for 100000 sessions") == std::string::npos)
            ::_exit(16);
        if (m.find("LimitMEMLOCK=") == std::string::npos)
            ::_exit(17);
        ::_exit(0);
    }
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0) << "child check failed (see the exit code's check)";
}

TEST(SlabChannel, FullSlabRefusesAndAFreedSlotIsWiped) {
    auto slab = KeySlab::create(2);
    ASSERT_TRUE(slab);
    ContextCache cache(*slab, 2);
    auto a = SecureChannel::create(config(Side::network, 11, false), keysFor(1), cache);
    auto b = SecureChannel::create(config(Side::network, 12, false), keysFor(2), cache);
    ASSERT_TRUE(a && b);
    EXPECT_TRUE(a->slabBacked());
    auto c = SecureChannel::create(config(Side::network, 13, false), keysFor(3), cache);
    ASSERT_FALSE(c);
    EXPECT_EQ(c.error().domain, ErrorDomain::generic);
    EXPECT_EQ(c.error().code, static_cast<int>(KeySlabErrc::full));
    // Bad config: no slot is taken.
    auto bad = SecureChannel::create(config(Side::network, 0, false), keysFor(3), cache);
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().code, static_cast<int>(EmsdpErrc::invalid_value));
    // Use a's contexts, then destroy it: its slot is wiped and free again.
    std::array<std::uint8_t, kMaxDatagram> out{};
    ASSERT_TRUE(a->sealCp(SessionTerminateRequest{}, out));
    std::vector<std::uint32_t> inUse;
    for (std::uint32_t s = 0; s < 2; ++s)
        if (slab->inUse(s))
            inUse.push_back(s);
    ASSERT_EQ(inUse.size(), 2u);
    { auto gone = std::move(*a); }
    EXPECT_EQ(slab->used(), 1u);
    std::uint32_t freed = slab->inUse(0) ? 1 : 0;
    EXPECT_TRUE(allZero(slab->rawSlot(freed)));
    // The moved-from channel released nothing twice; a new session fits.
    auto d = SecureChannel::create(config(Side::network, 14, false), keysFor(4), cache);
    EXPECT_TRUE(d);
    EXPECT_EQ(slab->used(), 2u);
}

// Eight HSE sessions on a cache of two: every message misses and re-keys an evicted entry. The
// datagrams the slab channels send are byte-equal to an owning channel's, and what the UE sends
// verifies (and deciphers) on them.
TEST(SlabChannel, EvictedAndRekeyedContextsGiveTheOwningChannelsResults) {
    constexpr std::uint8_t kSessions = 8;
    auto slab = KeySlab::create(kSessions);
    ASSERT_TRUE(slab);
    ContextCache cache(*slab, 2);
    std::vector<SecureChannel> hse;
    std::vector<SecureChannel> reference;  // owning, network side
    std::vector<SecureChannel> ue;
    for (std::uint8_t i = 0; i < kSessions; ++i) {
        const bool ciphering = (i % 2) == 0;
        const std::uint32_t sid = 100 + i;
        auto h = SecureChannel::create(config(Side::network, sid, ciphering), keysFor(i), cache);
        auto r = SecureChannel::create(config(Side::network, sid, ciphering), keysFor(i));
        auto u = SecureChannel::create(config(Side::ue, sid, ciphering), keysFor(i));
        ASSERT_TRUE(h && r && u);
        hse.push_back(std::move(*h));
        reference.push_back(std::move(*r));
        ue.push_back(std::move(*u));
    }
    std::array<std::uint8_t, 64> payload{};
    std::array<std::uint8_t, kMaxDatagram> a{};
    std::array<std::uint8_t, kMaxDatagram> b{};
    std::array<std::uint8_t, kMaxDatagram> plain{};
    for (int round = 0; round < 3; ++round) {
        for (std::uint8_t i = 0; i < kSessions; ++i) {
            payload.fill(static_cast<std::uint8_t>(round * 16 + i));
            // Uplink UP and CP: the UE's datagrams verify on the slab channel.
            auto n = ue[i].sealUp(payload, a);
            ASSERT_TRUE(n);
            auto up = hse[i].openUp(ByteView(a.data(), *n), plain);
            ASSERT_TRUE(up) << "session " << int(i) << " round " << round;
            EXPECT_EQ(up->deciphered, (i % 2) == 0);
            EXPECT_TRUE(
                std::equal(up->payload.begin(), up->payload.end(), payload.begin(), payload.end()));
            auto cp = ue[i].sealCp(SessionStartConfirmation{}, a);
            ASSERT_TRUE(cp);
            EXPECT_TRUE(hse[i].openCp(ByteView(a.data(), *cp)));
            // A tampered MAC still fails on re-keyed contexts.
            auto t = ue[i].sealUp(payload, a);
            ASSERT_TRUE(t);
            a[*t - 1] ^= 0x01;
            auto bad = hse[i].openUp(ByteView(a.data(), *t), plain);
            ASSERT_FALSE(bad);
            EXPECT_EQ(bad.error().reason, DropReason::bad_mac);
            // Downlink: byte-equal to the owning channel's.
            auto x = hse[i].sealUp(payload, a);
            auto y = reference[i].sealUp(payload, b);
            ASSERT_TRUE(x && y);
            ASSERT_EQ(*x, *y);
            EXPECT_TRUE(
                std::equal(a.begin(), a.begin() + static_cast<std::ptrdiff_t>(*x), b.begin()));
            auto xc = hse[i].sealCp(MessageReject{Cause::congestion, {}, 7}, a);
            auto yc = reference[i].sealCp(MessageReject{Cause::congestion, {}, 7}, b);
            ASSERT_TRUE(xc && yc);
            ASSERT_EQ(*xc, *yc);
            EXPECT_TRUE(
                std::equal(a.begin(), a.begin() + static_cast<std::ptrdiff_t>(*xc), b.begin()));
        }
    }
    EXPECT_EQ(cache.size(), 2u);
    EXPECT_GT(cache.stats().evictions, 0u);
    EXPECT_GT(cache.stats().hits, 0u);  // consecutive uses of one session hit
    EXPECT_EQ(slab->used(), kSessions);
    hse.clear();
    EXPECT_EQ(slab->used(), 0u);
}

}  // namespace
}  // namespace best::emsdp
