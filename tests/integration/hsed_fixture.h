// A real best-hsed per test: a throwaway SoftHSM token (its own SOFTHSM2_CONF), token keys and
// subscribers provisioned through hsm::KeyVault + store::Store, a temporary SQLite store, a
// config with port 0 on 127.0.0.1 and UNIX datagram sinks; the bound port is read from the
// runtime file; stop() sends SIGTERM and checks a clean exit. UeClient drives a UE engine
// (src/ue) with a software USIM over a loopback UDP socket.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "common/hex.h"
#include "emsdp/emsdp.h"
#include "hsm/key_vault.h"
#include "store/store.h"
#include "tests/hsm/softhsm_token.h"
#include "ue/engine.h"
#include "ue/usim.h"

namespace best::itest {

// TS 35.208 test set 1: K, OPc; AMF b9b9 has the separation bit set.
inline constexpr const char* kKHex = "465b5ce8b199b49faa5f0a2ee238a6bc";
inline constexpr const char* kOpcHex = "cd63cb71954a9f4e48a5994e37a02baf";
inline constexpr const char* kImsi = "001010123456789";
inline constexpr const char* kHseId = "hse.test.example";
inline constexpr const char* kEasHse = "eas-hse";      // ue-to-hse
inline constexpr const char* kEasKa = "eas-ka";        // ka-only
inline constexpr const char* kEasE2e = "eas-e2e";      // ue-to-eas (0x09 for now)
inline constexpr const char* kEasOther = "eas-other";  // registered, not allowed for the UE

template <typename S>
S secretFromHex(const char* hex) {
    S s;
    auto r = fromHexInto(hex, "test key", s.mutableView());
    if (!r)
        throw std::runtime_error(r.error().message);
    return s;
}

inline std::string readFile(const std::string& path) {
    std::ifstream f(path);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

struct DaemonOptions {
    std::string extraPolicy;  // YAML lines under policy: (indented by 2)
    std::string level = "debug";
    bool ipv6 = false;          // also listen on ::1 (port 0)
    unsigned lifetime = 3600;   // policy.key_set_lifetime
    std::uint16_t port = 0;     // the 127.0.0.1 listen port (a restart on the same port)
    std::string extraConfig{};  // top-level YAML appended to the file (admin:, metrics:, ...)
    std::string module{};       // hsm.module; empty: SoftHSM
    std::vector<std::pair<std::string, std::string>> env{};  // set for the daemon only
    std::string extraSink{};  // YAML lines under sink: (indented by 2)
    std::string extraHsm{};   // YAML lines under hsm: (indented by 2)
};

// How many times `what` occurs in `text` (log lines).
inline std::size_t countOf(const std::string& text, const std::string& what) {
    std::size_t n = 0;
    for (auto p = text.find(what); p != std::string::npos; p = text.find(what, p + 1))
        ++n;
    return n;
}

// Daemon options with `lines` under policy: (indented by 2).
inline DaemonOptions withPolicy(const std::string& lines) {
    DaemonOptions o;
    o.extraPolicy = lines;
    return o;
}

class HsedFixture : public ::testing::Test {
protected:
    void SetUp() override {
        token_ = std::make_unique<testing::SoftHsmToken>();
        dir_ = token_->dir();
        auto cfg = token_->config();
        auto init = hsm::KeyVault::initTokenKeys(cfg);
        ASSERT_TRUE(init) << init.error().message;
        provision({kImsi});
    }

    void TearDown() override {
        if (pid_ > 0)
            stop();
        token_.reset();
    }

    // Subscribers with the test K/OPc, allowed for every EAS but kEasOther.
    void provision(const std::vector<std::string>& imsis) {
        auto v = hsm::KeyVault::open(token_->config());
        ASSERT_TRUE(v) << v.error().message;
        auto ops = (*v)->openOps();
        ASSERT_TRUE(ops) << ops.error().message;
        auto st = openStore();
        ASSERT_TRUE(st) << st.error().message;
        if (!(*st)->getEas(kEasHse)) {
            for (auto [id, mode] : {std::pair{kEasHse, store::ServiceMode::ueToHse},
                                    std::pair{kEasKa, store::ServiceMode::kaOnly},
                                    std::pair{kEasE2e, store::ServiceMode::ueToEas},
                                    std::pair{kEasOther, store::ServiceMode::ueToHse}}) {
                store::EasRecord e;
                e.easId = id;
                e.serviceMode = mode;
                ASSERT_TRUE((*st)->addEas(e));
            }
        }
        for (const auto& imsi : imsis) {
            auto k = ops->importK(secretFromHex<SubscriberK>(kKHex),
                                  {imsi, hsm::BlobPurpose::subscriberK, 1});
            ASSERT_TRUE(k) << k.error().message;
            auto o = ops->sealOpc(secretFromHex<Opc>(kOpcHex), {imsi, hsm::BlobPurpose::opc, 1});
            ASSERT_TRUE(o) << o.error().message;
            store::SubscriberRecord s;
            s.imsi = imsi;
            // As best-hsectl stores them: data without the 32-octet tag, binding = the tag.
            s.k = {Bytes(k->begin(), k->end() - 32), Bytes(k->end() - 32, k->end())};
            s.opKind = store::OpKind::opc;
            s.op = {Bytes(o->begin(), o->end() - 32), Bytes(o->end() - 32, o->end())};
            s.amf = {0xb9, 0xb9};
            s.allowedEas = {kEasHse, kEasKa, kEasE2e};
            auto a = (*st)->addSubscriber(s);
            ASSERT_TRUE(a) << a.error().message;
        }
    }

    std::string storePath() const { return dir_ + "/state.db"; }
    std::string logPath() const { return dir_ + "/hsed.log"; }
    std::string adminPath() const { return dir_ + "/admin.sock"; }
    std::string uplinkPath() const { return dir_ + "/up.sock"; }
    std::string downlinkPath() const { return dir_ + "/down.sock"; }

    void start(const DaemonOptions& opt = {}) {
        const std::string conf = dir_ + "/hsed.yaml";
        std::ofstream c(conf);
        c << "hse_id: " << kHseId << "\n"
          << "listen:\n  - address: 127.0.0.1\n    port: " << opt.port << "\n"
          << (opt.ipv6 ? "  - address: \"::1\"\n    port: 0\n" : "") << "runtime_file: " << dir_
          << "/ports\n"
          << "hsm:\n  module: " << (opt.module.empty() ? testing::softHsmModule() : opt.module)
          << "\n  token: " << token_->label() << "\n  pin_file: " << token_->pinFile()
          << "\n  workers: 2\n"
          << opt.extraHsm << "store:\n  path: " << storePath() << "\n"
          << "policy:\n  key_set_lifetime: " << opt.lifetime << "\n"
          << opt.extraPolicy << "sink:\n  uplink: " << uplinkPath()
          << "\n  downlink: " << downlinkPath() << "\n"
          << opt.extraSink << "logging:\n  level: " << opt.level << "\n"
          << opt.extraConfig;
        c.close();
        std::remove((dir_ + "/ports").c_str());
        if (sinkFd_ < 0) {
            sinkFd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
            sockaddr_un a{};
            a.sun_family = AF_UNIX;
            std::snprintf(a.sun_path, sizeof a.sun_path, "%s", uplinkPath().c_str());
            ASSERT_EQ(::bind(sinkFd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
        }
        const char* exe = std::getenv("BEST_HSED");
        ASSERT_NE(exe, nullptr) << "BEST_HSED not set";
        pid_ = ::fork();
        ASSERT_GE(pid_, 0);
        if (pid_ == 0) {
            const int fd = ::open(logPath().c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
            ::dup2(fd, 2);
            ::dup2(fd, 1);
            for (const auto& [k, v] : opt.env)
                ::setenv(k.c_str(), v.c_str(), 1);
            ::execl(exe, exe, "--config", conf.c_str(), static_cast<char*>(nullptr));
            ::_exit(127);
        }
        const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
        while (std::chrono::steady_clock::now() < until) {
            const std::string ports = readFile(dir_ + "/ports");
            std::istringstream in(ports);
            std::string word, addr;
            unsigned port = 0;
            if (in >> word >> addr >> port && word == "emsdp" && port != 0) {
                port_ = static_cast<std::uint16_t>(port);
                return;
            }
            int st = 0;
            if (::waitpid(pid_, &st, WNOHANG) == pid_) {
                pid_ = -1;
                FAIL() << "best-hsed exited at start: " << readFile(logPath());
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        FAIL() << "no runtime file; log: " << readFile(logPath());
    }

    // SIGTERM; the daemon must exit 0.
    void stop() {
        ASSERT_GT(pid_, 0);
        ::kill(pid_, SIGTERM);
        int st = 0;
        ::waitpid(pid_, &st, 0);
        pid_ = -1;
        EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << "status " << st << "\n"
                                                           << readFile(logPath());
    }

    std::string log() const { return readFile(logPath()); }

    // stop(), then whether the log has `what` (the exit lines: "drops: ...", "refreshes: ...").
    ::testing::AssertionResult stopAndFindInLog(const std::string& what) {
        stop();
        const std::string l = log();
        if (l.find(what) != std::string::npos)
            return ::testing::AssertionSuccess();
        return ::testing::AssertionFailure() << "'" << what << "' not in the log:\n" << l;
    }

    // Waits until the log has `what` (the daemon logs after acting).
    bool waitLog(const std::string& what, int ms = 8000) const {
        const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
        while (std::chrono::steady_clock::now() < until) {
            if (log().find(what) != std::string::npos)
                return true;
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        return false;
    }

    // The store as best-hsectl opens it (tool mode), beside a running daemon or after it.
    Result<std::unique_ptr<store::Store>> openStore() const {
        store::StoreOptions so;
        so.mode = store::Mode::tool;
        return store::Store::open(storePath(), so);
    }

    // The stored key sets of `imsi` (none, with a test failure, when the store cannot say).
    std::vector<store::KeySetRecord> keySets(const std::string& imsi = kImsi) const {
        auto st = openStore();
        EXPECT_TRUE(st) << st.error().message;
        if (!st)
            return {};
        auto sets = (*st)->listKeySets(imsi);
        EXPECT_TRUE(sets) << sets.error().message;
        return sets ? *sets : std::vector<store::KeySetRecord>{};
    }

    // SIGKILL (a crash): no clean shutdown, the store keeps what was durable.
    void kill9() {
        ASSERT_GT(pid_, 0);
        ::kill(pid_, SIGKILL);
        int st = 0;
        ::waitpid(pid_, &st, 0);
        pid_ = -1;
        EXPECT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL) << "status " << st;
    }

    // `ue` ends its session (Session Terminate Request) and waits until it is idle. Call through
    // ASSERT_NO_FATAL_FAILURE. (A template only because UeClient is defined below.)
    template <typename Client>
    void endSession(Client& ue) {
        auto r = ue.call([](ue::UeEngine& e, const ue::UeTime& now, ue::Output& out) {
            return e.terminate(now, out);
        });
        ASSERT_TRUE(r) << r.error().message;
        ASSERT_TRUE(ue.pump([&] { return ue.engine().phase() == ue::Phase::idle; })) << log();
    }

    // One uplink sink frame (4-octet Session ID + payload), or nothing within `ms`.
    std::optional<Bytes> readSink(int ms = 3000) {
        pollfd p{sinkFd_, POLLIN, 0};
        if (::poll(&p, 1, ms) <= 0)
            return std::nullopt;
        Bytes b(2048);
        const ssize_t n = ::recv(sinkFd_, b.data(), b.size(), 0);
        if (n < 0)
            return std::nullopt;
        b.resize(static_cast<std::size_t>(n));
        return b;
    }

    void injectDownlink(std::uint32_t sessionId, const std::string& payload) {
        const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        std::snprintf(a.sun_path, sizeof a.sun_path, "%s", downlinkPath().c_str());
        Bytes f{static_cast<std::uint8_t>(sessionId >> 24),
                static_cast<std::uint8_t>(sessionId >> 16),
                static_cast<std::uint8_t>(sessionId >> 8), static_cast<std::uint8_t>(sessionId)};
        f.insert(f.end(), payload.begin(), payload.end());
        ::sendto(fd, f.data(), f.size(), 0, reinterpret_cast<sockaddr*>(&a), sizeof a);
        ::close(fd);
    }

    std::unique_ptr<testing::SoftHsmToken> token_;
    std::string dir_;
    pid_t pid_ = -1;
    std::uint16_t port_ = 0;
    int sinkFd_ = -1;
};

// A raw UDP peer (for crafted datagrams) and a UE engine driver.
class UdpPeer {
public:
    explicit UdpPeer(std::uint16_t hsePort, bool ipv6 = false) {
        fd_ = ::socket(ipv6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (ipv6) {
            sockaddr_in6 a{};
            a.sin6_family = AF_INET6;
            a.sin6_addr = in6addr_loopback;
            ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
            auto* h = reinterpret_cast<sockaddr_in6*>(&hse_);
            h->sin6_family = AF_INET6;
            h->sin6_addr = in6addr_loopback;
            h->sin6_port = htons(hsePort);
            hseLen_ = sizeof(sockaddr_in6);
        } else {
            sockaddr_in a{};
            a.sin_family = AF_INET;
            a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
            auto* h = reinterpret_cast<sockaddr_in*>(&hse_);
            h->sin_family = AF_INET;
            h->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            h->sin_port = htons(hsePort);
            hseLen_ = sizeof(sockaddr_in);
        }
    }
    ~UdpPeer() { ::close(fd_); }
    UdpPeer(const UdpPeer&) = delete;
    UdpPeer& operator=(const UdpPeer&) = delete;

    void send(ByteView d) {
        ::sendto(fd_, d.data(), d.size(), 0, reinterpret_cast<const sockaddr*>(&hse_), hseLen_);
    }
    std::optional<Bytes> receive(int ms) {
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, ms) <= 0)
            return std::nullopt;
        Bytes b(2048);
        const ssize_t n = ::recv(fd_, b.data(), b.size(), 0);
        if (n < 0)
            return std::nullopt;
        b.resize(static_cast<std::size_t>(n));
        return b;
    }

private:
    int fd_ = -1;
    sockaddr_storage hse_{};
    socklen_t hseLen_ = 0;
};

// An unprotected Session Request: IMSI, EAS ID, UE nonce, UE configuration (release, key
// agreements, flags, integrity, ciphering) and serving network as given.
inline Bytes requestOctets(const std::string& imsi, const std::string& easId, std::uint64_t nonce,
                           emsdp::UeConfiguration uc = {17, 0x01, 0x02, 0x04, 0x04},
                           std::optional<emsdp::PlmnId> plmn = emsdp::PlmnId{0x00, 0xf1, 0x10}) {
    emsdp::SessionRequest r;
    r.imsi = *emsdp::Imsi::fromDigits(imsi);
    r.ueConfiguration = uc;
    r.easId = easId;
    r.servingNetwork = plmn;
    r.ueNonce = nonce;
    Bytes out(1280);
    auto n = emsdp::encodeSessionRequest(r, out);
    EXPECT_TRUE(n);
    out.resize(n ? *n : 0);
    return out;
}

// Sends `request` from `p`; the cause of the unprotected Message Reject that answers it within
// 5 s (and its Back-off, when asked), or nothing.
inline std::optional<emsdp::Cause> causeOf(UdpPeer& p, ByteView request,
                                           std::optional<std::uint16_t>* backOff = nullptr) {
    p.send(request);
    auto d = p.receive(5000);
    if (!d)
        return std::nullopt;
    auto rej = emsdp::parseUnprotectedReject(*d);
    if (!rej)
        return std::nullopt;
    if (backOff != nullptr)
        *backOff = rej->body.backOff;
    return rej->body.cause;
}

// The big-endian Session ID at octet `at`: 0 in an uplink sink frame, 1 in an EMSDP datagram.
inline std::uint32_t sessionIdAt(const Bytes& b, std::size_t at) {
    return (std::uint32_t{b.at(at)} << 24) | (std::uint32_t{b.at(at + 1)} << 16) |
           (std::uint32_t{b.at(at + 2)} << 8) | b.at(at + 3);
}
inline std::uint32_t sinkSessionId(const Bytes& frame) {
    return sessionIdAt(frame, 0);
}
inline std::uint32_t datagramSessionId(const Bytes& d) {
    return sessionIdAt(d, 1);
}

// A resumption request for `set`, MAC'd with KSess(Session ID 0, nonce) as the profile says.
inline Bytes resumptionRequest(const ue::KeySet& set, const std::string& easId, std::uint64_t nonce,
                               emsdp::UeConfiguration uc = {17, 0x01, 0x02, 0x04, 0x04},
                               const std::string& imsi = kImsi) {
    emsdp::SessionRequest r;
    r.imsi = *emsdp::Imsi::fromDigits(imsi);
    r.ueConfiguration = uc;
    r.easId = easId;
    r.servingNetwork = emsdp::PlmnId{0x00, 0xf1, 0x10};
    r.ueNonce = nonce;
    auto ksess0 = crypto::deriveKSess(set.kint, 0, nonce);
    EXPECT_TRUE(ksess0);
    auto cpInt = crypto::deriveSessionKey(*ksess0, crypto::KeyDistinguisher::cpInt, 0x02);
    EXPECT_TRUE(cpInt);
    crypto::Eia2 eia(*cpInt);
    Bytes buf(1280);
    auto n = emsdp::encodeResumptionRequest(r, set.kid, eia, buf);
    EXPECT_TRUE(n);
    buf.resize(n ? *n : 0);
    return buf;
}

// The UE's side of the secure channel of session `info` under `keys` (tests that speak for the
// UE engine: crafted CP messages, reading the HSE's protected answers).
inline Result<emsdp::SecureChannel> ueChannel(const ue::SessionInfo& info,
                                              const crypto::SessionKeys& keys) {
    emsdp::ChannelConfig cc;
    cc.side = emsdp::Side::ue;
    cc.sessionId = info.sessionId;
    cc.kid = info.kid;
    cc.cpScheme = info.cpScheme;
    cc.upScheme = info.upScheme;
    cc.upEnabled = info.service != emsdp::Service::kaOnly;
    cc.upCiphering = info.service == emsdp::Service::upConfidentiality;
    return emsdp::SecureChannel::create(cc, emsdp::ChannelKeys::from(keys));
}

inline std::shared_ptr<ue::UeSettings> ueSettings(const std::string& easId,
                                                  std::uint8_t keyAgreements = 0x01,
                                                  std::uint8_t flags = 0x02,
                                                  std::uint8_t ciphering = 0x04) {
    auto s = std::make_shared<ue::UeSettings>();
    s->easId = easId;
    s->hseId = kHseId;
    s->capabilities = emsdp::UeConfiguration{17, keyAgreements, flags, 0x04, ciphering};
    s->servingNetwork = crypto::PlmnId{0x00, 0xf1, 0x10};
    return s;
}

class UeClient {
public:
    UeClient(std::uint16_t hsePort, std::shared_ptr<ue::UeSettings> settings,
             const std::string& imsi = kImsi, const char* kHex = kKHex, ue::UeState state = {})
        : peer_(hsePort),
          usim_(secretFromHex<SubscriberK>(kHex), secretFromHex<Opc>(kOpcHex), imsi) {
        auto e =
            ue::UeEngine::create(std::move(settings), imsi, std::move(state), {&store_, nullptr});
        if (!e)
            throw std::runtime_error(e.error().message);
        engine_.emplace(std::move(*e));
    }

    ue::UeEngine& engine() { return *engine_; }
    const std::vector<ue::Event>& events() const { return events_; }
    const std::vector<Bytes>& sent() const { return sent_; }
    UdpPeer& peer() { return peer_; }
    ue::SoftUsim& usim() { return usim_; }

    // Runs until `done` holds (checked after each step) or `ms` pass; true when it held.
    bool pump(const std::function<bool()>& done, int ms = 8000) {
        const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
        for (;;) {
            flush();
            if (done())
                return true;
            if (std::chrono::steady_clock::now() >= until)
                return false;
            if (auto d = peer_.receive(20); d && !(dropIncoming && dropIncoming(*d)))
                engine_->handleDatagram(*d, ue::Source::hse, ue::UeTime::now(), out_);
            engine_->onTimer(ue::UeTime::now(), out_);
        }
    }

    template <typename E>
    const E* last() const {
        for (auto it = events_.rbegin(); it != events_.rend(); ++it)
            if (auto* e = std::get_if<E>(&*it))
                return e;
        return nullptr;
    }
    template <typename E>
    bool has() const {
        return last<E>() != nullptr;
    }

    // Starts an establishment without waiting for it.
    bool begin() { return engine_->start(ue::UeTime::now(), out_).has_value(); }

    bool establish(int ms = 15000) {
        if (!engine_->start(ue::UeTime::now(), out_))
            return false;
        const std::size_t before = events_.size();
        return pump(
            [this, before] {
                for (std::size_t i = before; i < events_.size(); ++i)
                    if (std::holds_alternative<ue::SessionEstablished>(events_[i]))
                        return true;
                return false;
            },
            ms);
    }

    // Runs before each AUTHENTICATE the client answers (tests that steer the USIM).
    std::function<void(ue::SoftUsim&)> beforeAka;
    // Datagrams from the HSE for which this returns true are lost (tests of resends).
    std::function<bool(const Bytes&)> dropIncoming;

    // Calls the engine with the client's output (requestKeyRefresh, terminate, ...), then sends.
    template <typename F>
    auto call(F&& f) {
        auto r = f(*engine_, ue::UeTime::now(), out_);
        flush();
        return r;
    }

    void flush() {
        if (beforeAka && !out_.akaRequests.empty())
            beforeAka(usim_);
        ue::answerAkaInline(*engine_, usim_, ue::UeTime::now(), out_);
        for (auto& d : out_.datagrams) {
            sent_.push_back(d);
            peer_.send(d);
        }
        for (auto& e : out_.events)
            events_.push_back(e);
        out_.clear();
    }

private:
    UdpPeer peer_;
    ue::SoftUsim usim_;
    ue::MemoryStateStore store_;
    std::optional<ue::UeEngine> engine_;
    ue::Output out_;
    std::vector<ue::Event> events_;
    std::vector<Bytes> sent_;
};

}  // namespace best::itest
