// Load driver for a real best-hsed (issue 8): many software-USIM UEs (src/ue engines, state in
// memory) in one process against a best-hsed with a throwaway SoftHSM token and subscribers
// imported by `best-hsectl subscriber import`. The daemon's configuration comes from
// config/hsed-bench.yaml (rate limits raised), with this instance's paths.
//
// Modes (each run: the measured window is --seconds long, --runs runs, median and range):
//   full     full establishments/s (AKA through SoftHSM), target >= 2,000/s
//   resume   resumptions/s (each UE "reboots" from its key-set state), target >= 10,000/s
//   up       64-octet UP payloads delivered to the uplink sink, against a plain libuv UDP
//            receiver forwarding the same payloads to the same sink, target >= 50%
//   memory   RSS of best-hsed per idle confirmed session (N sessions of N subscribers),
//            target <= 1 KiB
//   smoke    every mode, small and short, with checks (meson test load_hsed_smoke, suite bench)
//
// A session counts as established when the HSE has confirmed it: the driver sends one UP
// message right after the Session Start verifies (the first MAC-valid message confirms, A9), and
// the rate is the growth of the daemon's own counter best_sessions_total{outcome="confirmed"}
// (its metrics page, read at both ends of the window). The frame the daemon writes to the
// uplink sink for that message tells the driver which sessions to send it again for. UP traffic is
// sealed before the measured window (the driver's crypto is not in it). Source addresses are spread
// over 127.0.0.0/8. --daemon-cpu / --driver-cpu pin the processes (sched_setaffinity).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "common/hex.h"
#include "emsdp/emsdp.h"
#include "hsm/key_vault.h"
#include "tests/hsm/softhsm_token.h"
#include "tests/support/http_exchange.h"
#include "ue/engine.h"
#include "ue/usim.h"

namespace best::load {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// TS 35.208 test set 1 for every subscriber (distinct IMSIs); AMF with the separation bit.
constexpr const char* kKHex = "465b5ce8b199b49faa5f0a2ee238a6bc";
constexpr const char* kOpcHex = "cd63cb71954a9f4e48a5994e37a02baf";
constexpr const char* kEas = "eas-bench";
constexpr std::size_t kPayload = 64;

struct Options {
    std::string mode = "smoke";
    int runs = 3;
    double seconds = 30;
    std::size_t subscribers = 10000;
    std::size_t sessions = 100000;  // memory mode
    std::size_t warmup = 5000;      // memory mode: sessions before the first RSS reading
    std::size_t window = 256;       // establishments in flight
    std::size_t upSessions = 1000;
    std::size_t upMessages = 2000000;  // sealed before each UP run (bounded memory)
    std::size_t sockets = 64;          // UP: source sockets
    int hold = 0;
    bool warmSubscribers =
        false;  // memory: every subscriber once (terminated) before reading  // memory: seconds to
                // keep best-hsed up after the reading (inspection)
    int daemonCpu = -1;
    int driverCpu = -1;
    std::string hsed;
    std::string hsectl;
    std::string benchConfig;
};

[[noreturn]] void fail(const std::string& what) {
    throw std::runtime_error(what);
}

std::string envOr(const char* name, const std::string& fallback) {
    const char* v = std::getenv(name);
    return v != nullptr && *v != '\0' ? v : fallback;
}

void pin(int cpu) {
    if (cpu < 0)
        return;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (::sched_setaffinity(0, sizeof set, &set) != 0)
        std::perror("sched_setaffinity");
}

std::string readFile(const std::string& path) {
    std::ifstream f(path);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

// User + system CPU seconds of a process (all its threads).
double cpuSeconds(pid_t pid) {
    const std::string st = readFile("/proc/" + std::to_string(pid) + "/stat");
    const auto close = st.rfind(')');
    if (close == std::string::npos)
        return 0;
    std::istringstream in(st.substr(close + 2));
    std::string field;
    unsigned long long utime = 0, stime = 0;
    for (int i = 3; i <= 15 && in >> field; ++i) {
        if (i == 14)
            utime = std::stoull(field);
        if (i == 15)
            stime = std::stoull(field);
    }
    return static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

long rssKiB(pid_t pid) {
    std::istringstream in(readFile("/proc/" + std::to_string(pid) + "/status"));
    std::string line;
    while (std::getline(in, line))
        if (line.rfind("VmRSS:", 0) == 0)
            return std::strtol(line.c_str() + 6, nullptr, 10);
    return -1;
}

std::string imsiOf(std::size_t i) {
    std::string digits = std::to_string(i % 10000000000ULL);
    return "00101" + std::string(10 - digits.size(), '0') + digits;
}

template <typename S>
S secretFromHex(const char* hex) {
    S s;
    if (!fromHexInto(hex, "bench key", s.mutableView()))
        fail("bad hex");
    return s;
}

// A loopback address of 127.0.0.0/8 for source `i` (127.1.x.y).
in_addr sourceAddress(std::size_t i) {
    in_addr a{};
    a.s_addr = htonl((127u << 24) | (1u << 16) | static_cast<std::uint32_t>((i / 250) % 250 << 8) |
                     static_cast<std::uint32_t>(i % 250 + 1));
    return a;
}

int udpSocket(in_addr addr) {
    const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        fail("socket");
    const int big = 8 << 20;
    ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr = addr;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
        fail(std::string("bind: ") + std::strerror(errno));
    return fd;
}

// ---- the uplink sink: counts frames (4-octet Session ID + payload) on its own thread ---------

class Sink {
public:
    explicit Sink(const std::string& path) : path_(path) {
        fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path.c_str());
        ::unlink(path.c_str());
        if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
            fail("cannot bind the sink " + path);
        const int big = 32 << 20;  // FORCE past rmem_max when root
        if (::setsockopt(fd_, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof big) != 0)
            ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
        timeval tv{0, 100000};
        ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        thread_ = std::thread([this] { run(); });
    }
    ~Sink() {
        stop_ = true;
        thread_.join();
        ::close(fd_);
        ::unlink(path_.c_str());
    }
    std::uint64_t frames() const { return frames_.load(); }
    // Session IDs of the frames since the last call (while recording).
    std::vector<std::uint32_t> take() {
        std::lock_guard<std::mutex> lock(m_);
        std::vector<std::uint32_t> v;
        v.swap(ids_);
        return v;
    }
    void record(bool on) { record_ = on; }
    std::uint64_t badFrames() const { return bad_.load(); }
    Clock::time_point last() const { return Clock::time_point(Clock::duration(last_.load())); }

private:
    void run() {
        std::array<std::uint8_t, 2048> buf{};
        while (!stop_) {
            const ssize_t n = ::recv(fd_, buf.data(), buf.size(), 0);
            if (n < 0)
                continue;
            if (static_cast<std::size_t>(n) == 4 + kPayload) {
                frames_.fetch_add(1, std::memory_order_relaxed);
                if (record_) {
                    const std::uint32_t id = (std::uint32_t{buf[0]} << 24) |
                                             (std::uint32_t{buf[1]} << 16) |
                                             (std::uint32_t{buf[2]} << 8) | buf[3];
                    std::lock_guard<std::mutex> lock(m_);
                    ids_.push_back(id);
                }
            } else
                bad_.fetch_add(1, std::memory_order_relaxed);
            last_.store(Clock::now().time_since_epoch().count(), std::memory_order_relaxed);
        }
    }
    std::string path_;
    int fd_ = -1;
    std::atomic<bool> stop_{false};
    std::atomic<std::uint64_t> frames_{0};
    std::atomic<std::uint64_t> bad_{0};
    std::atomic<Clock::rep> last_{0};
    std::atomic<bool> record_{true};
    std::mutex m_;
    std::vector<std::uint32_t> ids_;
    std::thread thread_;
};

// ---- the HSE instance: token, provisioning, process ------------------------------------------

class Instance {
public:
    Instance(const Options& o, std::size_t subscribers) : opt_(o) {
        token_.activate();
        dir_ = token_.dir();
        const std::string global = "--module " + best::testing::shellQuote(token_.config().module) +
                                   " --token " + token_.label() + " --pin-file " +
                                   token_.pinFile() + " --store " + dir_ + "/state.db";
        hsectl(global + " init");
        hsectl(global + " eas add --eas-id " + kEas + " --mode ue-to-hse");
        {
            std::ofstream csv(dir_ + "/subscribers.csv");
            csv << "imsi,k,opc,eas\n";
            for (std::size_t i = 0; i < subscribers; ++i)
                csv << imsiOf(i) << ',' << kKHex << ',' << kOpcHex << ',' << kEas << '\n';
        }
        const auto t0 = Clock::now();
        hsectl(global + " subscriber import --amf b9b9 --file " + dir_ + "/subscribers.csv");
        std::printf("# %zu subscribers imported in %.1f s\n", subscribers,
                    std::chrono::duration<double>(Clock::now() - t0).count());
        writeConfig();
    }
    ~Instance() {
        if (pid_ > 0) {
            try {
                stop();
            } catch (const std::exception& e) {
                std::fprintf(stderr, "load_hsed: %s\n", e.what());
            }
        }
    }

    void start() {
        std::remove((dir_ + "/ports").c_str());
        pid_ = ::fork();
        if (pid_ < 0)
            fail("fork");
        if (pid_ == 0) {
            pin(opt_.daemonCpu);
            const std::string logPath = dir_ + "/hsed.log";
            const int fd = ::open(logPath.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
            ::dup2(fd, 1);
            ::dup2(fd, 2);
            const std::string conf = dir_ + "/hsed.yaml";
            ::execl(opt_.hsed.c_str(), opt_.hsed.c_str(), "--config", conf.c_str(),
                    static_cast<char*>(nullptr));
            ::_exit(127);
        }
        const auto until = Clock::now() + 60s;
        while (Clock::now() < until) {
            std::istringstream in(readFile(dir_ + "/ports"));
            std::string word, addr;
            unsigned port = 0;
            while (in >> word >> addr >> port) {
                if (word == "emsdp")
                    port_ = static_cast<std::uint16_t>(port);
                else if (word == "metrics")
                    metricsPort_ = static_cast<std::uint16_t>(port);
            }
            if (port_ != 0 && metricsPort_ != 0)
                return;
            int st = 0;
            if (::waitpid(pid_, &st, WNOHANG) == pid_) {
                pid_ = -1;
                fail("best-hsed exited at start:\n" + readFile(dir_ + "/hsed.log"));
            }
            std::this_thread::sleep_for(20ms);
        }
        fail("best-hsed wrote no runtime file");
    }

    // The daemon's counter best_sessions_total{outcome="confirmed"}, from its metrics page.
    std::uint64_t confirmedByHse() const {
        const std::string page = best::test::httpExchange(
            metricsPort_, "GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n");
        if (page == "connect failed")
            fail("cannot reach the metrics page");
        const std::string key = "\nbest_sessions_total{outcome=\"confirmed\"} ";
        const auto at = page.find(key);
        if (at == std::string::npos)
            fail("no confirmed-session counter on the metrics page");
        return std::stoull(page.substr(at + key.size()));
    }

    void stop() {
        ::kill(pid_, SIGTERM);
        int st = 0;
        ::waitpid(pid_, &st, 0);
        pid_ = -1;
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            fail("best-hsed did not exit cleanly; log:\n" + readFile(dir_ + "/hsed.log"));
    }

    pid_t pid() const { return pid_; }
    std::uint16_t port() const { return port_; }
    const std::string& dir() const { return dir_; }
    std::string sinkPath() const { return dir_ + "/up.sock"; }
    std::string log() const { return readFile(dir_ + "/hsed.log"); }

private:
    void hsectl(const std::string& args) {
        auto r = best::testing::runCommand(opt_.hsectl + " " + args);
        if (r.status != 0)
            fail("best-hsectl " + args + ": " + r.output);
    }

    void writeConfig() {
        YAML::Node c = YAML::LoadFile(opt_.benchConfig);
        YAML::Node listen;
        YAML::Node l;
        l["address"] = "127.0.0.1";
        l["port"] = 0;
        listen.push_back(l);
        c["listen"] = listen;
        c["runtime_file"] = dir_ + "/ports";
        c["hsm"]["module"] = token_.config().module;
        c["hsm"]["token"] = token_.label();
        c["hsm"]["pin_file"] = token_.pinFile();
        c["store"]["path"] = dir_ + "/state.db";
        c["sink"]["uplink"] = sinkPath();
        c["sink"]["downlink"] = dir_ + "/down.sock";
        c["metrics"]["address"] = "127.0.0.1";
        c["metrics"]["port"] = 0;
        if (opt_.mode == "memory" || opt_.mode == "smoke") {
            const std::size_t need = opt_.sessions + opt_.warmup + opt_.window + 16;
            if (c["limits"]["max_sessions"].as<std::size_t>(0) < need)
                c["limits"]["max_sessions"] = need;
        }
        YAML::Emitter e;
        e << c;
        std::ofstream(dir_ + "/hsed.yaml") << e.c_str() << "\n";
    }

    const Options& opt_;
    best::testing::SoftHsmToken token_;
    std::string dir_;
    pid_t pid_ = -1;
    std::uint16_t port_ = 0;
    std::uint16_t metricsPort_ = 0;
};

// ---- the UEs ----------------------------------------------------------------------------------

struct Ue {
    std::string imsi;
    std::unique_ptr<ue::SoftUsim> usim;
    std::optional<ue::UeEngine> engine;
    ue::UeState state;  // after the last establishment (resumption mode)
    std::uint32_t sessionId = 0;
    int slot = -1;  // the establishing socket
    Clock::time_point started;
    Clock::time_point establishedAt;  // at the UE
    bool confirmed = false;           // its UP message reached the sink: the HSE confirmed it
    int upResends = 0;
};

struct Counts {
    std::uint64_t attempts = 0;
    std::uint64_t ueEstablished = 0;
    std::uint64_t confirmed = 0;  // distinct sessions confirmed by the HSE (seen at the sink)
    std::uint64_t upResent = 0;   // confirming UP messages sent again (the first was lost)
    std::uint64_t rejected = 0;
    std::uint64_t timedOut = 0;
    std::uint64_t other = 0;      // engine errors, USIM failures
    std::uint64_t fallbacks = 0;  // resumption refused with 0x0D, full establishment instead
    std::map<std::string, std::uint64_t> causes;
};

class Driver {
public:
    Driver(const Options& o, std::uint16_t hsePort, std::size_t ues, Sink& sink)
        : opt_(o), sink_(sink) {
        settings_ = std::make_shared<ue::UeSettings>();
        settings_->easId = kEas;
        settings_->hseId = "";
        // UMTS AKA, key sets storable (resumption), EIA2, EEA2 offered, no confidentiality asked.
        settings_->capabilities = emsdp::UeConfiguration{17, 0x01, 0x02, 0x04, 0x04};
        hse_.sin_family = AF_INET;
        hse_.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        hse_.sin_port = htons(hsePort);
        const auto k = secretFromHex<SubscriberK>(kKHex);
        const auto opc = secretFromHex<Opc>(kOpcHex);
        ues_.resize(ues);
        for (std::size_t i = 0; i < ues; ++i) {
            ues_[i].imsi = imsiOf(i);
            ues_[i].usim = std::make_unique<ue::SoftUsim>(k, opc, ues_[i].imsi);
        }
        epoll_ = ::epoll_create1(EPOLL_CLOEXEC);
        const std::size_t n = std::max(opt_.window, opt_.sockets);
        for (std::size_t i = 0; i < n; ++i) {
            const int fd = udpSocket(sourceAddress(i));
            epoll_event ev{};
            ev.events = EPOLLIN;
            ev.data.u32 = static_cast<std::uint32_t>(i);
            ::epoll_ctl(epoll_, EPOLL_CTL_ADD, fd, &ev);
            fds_.push_back(fd);
            slotUe_.push_back(-1);
            if (i < opt_.window)
                freeSlots_.push_back(static_cast<int>(i));
        }
    }
    ~Driver() {
        for (int fd : fds_)
            ::close(fd);
        ::close(epoll_);
    }

    Counts& counts() { return counts_; }
    std::size_t inFlight() const { return opt_.window - freeSlots_.size(); }

    // Keeps `window` establishments in flight until `end` (or until `limit` were started);
    // resumption: each UE starts again from its saved state, else from an empty one (full).
    void establish(bool resumption, Clock::time_point end, std::size_t limit, bool sendUp = true) {
        resumption_ = resumption;
        sendUp_ = sendUp;
        std::size_t started = 0;
        while (Clock::now() < end) {
            while (!freeSlots_.empty() && started < limit) {
                std::size_t tries = 0;
                while (ues_[next_].slot >= 0 && tries++ < ues_.size())
                    next_ = (next_ + 1) % ues_.size();  // still establishing
                if (ues_[next_].slot >= 0)
                    break;
                startUe(next_);
                next_ = (next_ + 1) % ues_.size();
                ++started;
            }
            if (started >= limit && freeSlots_.size() == opt_.window && awaiting_.empty())
                break;
            poll(1);
            expire();
        }
    }

    // Drains answers of attempts still in flight (after a measured window).
    void drain(std::chrono::milliseconds ms) {
        const auto end = Clock::now() + ms;
        while (Clock::now() < end && (inFlight() > 0 || !awaiting_.empty())) {
            poll(1);
            expire();
        }
        confirmations();
        for (std::size_t s = 0; s < slotUe_.size(); ++s)
            if (slotUe_[s] >= 0)
                release(static_cast<std::size_t>(slotUe_[s]), true);
    }

    // UE i's next UP datagram (sealed now), or empty.
    Bytes seal(std::size_t i, ByteView payload) {
        Ue& u = ues_[i];
        if (!u.engine || u.engine->phase() != ue::Phase::established)
            return {};
        out_.clear();
        if (!u.engine->sendUplink(payload, ue::UeTime::now(), out_) || out_.datagrams.empty())
            return {};
        return out_.datagrams.front();
    }
    bool established(std::size_t i) const {
        return ues_[i].engine && ues_[i].engine->phase() == ue::Phase::established;
    }

    int fd(std::size_t i) const { return fds_[i]; }

    // Every established UE sends Session Terminate Request (paced); answers are processed for
    // `ms`. Returns the sessions whose termination was answered.
    std::size_t terminateAll(std::chrono::milliseconds ms) {
        terminated_ = 0;
        std::size_t sent = 0;
        auto send = [this](std::size_t i, ue::Output& o) {
            for (const auto& d : o.datagrams)
                ::sendto(fds_[i % fds_.size()], d.data(), d.size(), 0,
                         reinterpret_cast<const sockaddr*>(&hse_), sizeof hse_);
        };
        for (std::size_t i = 0; i < ues_.size(); ++i) {
            Ue& u = ues_[i];
            if (!u.engine || u.engine->phase() != ue::Phase::established)
                continue;
            ue::Output o;
            if (!u.engine->terminate(ue::UeTime::now(), o))
                continue;
            send(i, o);
            // Paced: at most 100 unanswered, so the daemon's socket buffer does not overflow.
            if (++sent % 100 == 0) {
                const auto until = Clock::now() + 50ms;
                while (terminated_ + 5 < sent && Clock::now() < until)
                    poll(1);
            }
        }
        // The engines resend an unanswered Terminate Request at 4 s (A13).
        const auto resendAt = Clock::now() + 4200ms;
        while (Clock::now() < resendAt)
            poll(5);
        for (std::size_t i = 0; i < ues_.size(); ++i) {
            Ue& u = ues_[i];
            if (!u.engine || u.engine->phase() != ue::Phase::terminating)
                continue;
            ue::Output o;
            u.engine->onTimer(ue::UeTime::now(), o);
            send(i, o);
        }
        const auto end = Clock::now() + ms;
        while (Clock::now() < end)
            poll(5);
        return terminated_;
    }

    void rewind() { next_ = 0; }
    const sockaddr_in& hse() const { return hse_; }

private:
    void startUe(std::size_t i) {
        Ue& u = ues_[i];
        const int slot = freeSlots_.back();
        freeSlots_.pop_back();
        slotUe_[static_cast<std::size_t>(slot)] = static_cast<int>(i);
        u.slot = slot;
        if (u.sessionId != 0)
            bySession_.erase(u.sessionId);
        u.sessionId = 0;
        u.engine.reset();
        auto e = ue::UeEngine::create(settings_, u.imsi, resumption_ ? u.state : ue::UeState{});
        if (!e)
            fail("engine: " + e.error().message);
        u.engine.emplace(std::move(*e));
        u.started = Clock::now();
        ++counts_.attempts;
        out_.clear();
        if (!u.engine->start(ue::UeTime::now(), out_)) {
            ++counts_.other;
            release(i, false);
            return;
        }
        flush(i);
    }

    void release(std::size_t i, bool timedOut) {
        Ue& u = ues_[i];
        if (u.slot < 0)
            return;
        if (timedOut) {
            ++counts_.timedOut;
            out_.clear();
            u.engine->cancel(out_);
        }
        if (u.engine)
            u.state = u.engine->state();  // the last nonce used, for the next resumption
        slotUe_[static_cast<std::size_t>(u.slot)] = -1;
        freeSlots_.push_back(u.slot);
        u.slot = -1;
    }

public:
    // Marks the sessions the sink saw; sends the confirming UP message again where it was lost
    // (the daemon's socket buffer overflowed) after 500 ms, up to 10 times.
    void confirmations() {
        for (std::uint32_t id : sink_.take()) {
            if (unconfirmed_.erase(id) == 0)
                continue;  // a later UP message of a confirmed session
            ++counts_.confirmed;
            if (auto it = bySession_.find(id); it != bySession_.end())
                ues_[it->second].confirmed = true;
        }
        const auto now = Clock::now();
        std::vector<std::size_t> still;
        for (std::size_t i : awaiting_) {
            Ue& u = ues_[i];
            if (u.confirmed || !u.engine || u.engine->phase() != ue::Phase::established)
                continue;
            if (now - u.establishedAt > 500ms * (u.upResends + 1)) {
                if (u.upResends >= 10)
                    continue;
                ++u.upResends;
                ++counts_.upResent;
                sendConfirmingUp(i, fds_[i % fds_.size()]);
            }
            still.push_back(i);
        }
        awaiting_.swap(still);
    }

    void sendConfirmingUp(std::size_t i, int fd) {
        Ue& u = ues_[i];
        std::array<std::uint8_t, kPayload> p{};
        p.fill(static_cast<std::uint8_t>(i));
        ue::Output o;
        if (u.engine->sendUplink(p, ue::UeTime::now(), o))
            for (const auto& d : o.datagrams)
                ::sendto(fd, d.data(), d.size(), 0, reinterpret_cast<const sockaddr*>(&hse_),
                         sizeof hse_);
    }

private:
    void expire() {
        const auto now = Clock::now();
        if (now - lastExpire_ < 100ms)
            return;
        lastExpire_ = now;
        confirmations();
        for (std::size_t s = 0; s < slotUe_.size(); ++s) {
            const int i = slotUe_[s];
            if (i >= 0 && now - ues_[static_cast<std::size_t>(i)].started > 5s)
                release(static_cast<std::size_t>(i), true);
        }
    }

    void flush(std::size_t i) {
        Ue& u = ues_[i];
        const ue::UeTime now = ue::UeTime::now();
        ue::answerAkaInline(*u.engine, *u.usim, now, out_);
        const int fd = fds_[static_cast<std::size_t>(u.slot >= 0 ? u.slot : 0)];
        for (const auto& d : out_.datagrams)
            ::sendto(fd, d.data(), d.size(), 0, reinterpret_cast<const sockaddr*>(&hse_),
                     sizeof hse_);
        std::vector<ue::Event> events;
        events.swap(out_.events);
        out_.clear();
        for (const auto& ev : events) {
            if (const auto* s = std::get_if<ue::SessionEstablished>(&ev)) {
                ++counts_.ueEstablished;
                u.sessionId = s->info.sessionId;
                bySession_[u.sessionId] = i;
                u.state = u.engine->state();
                u.establishedAt = Clock::now();
                unconfirmed_.insert(u.sessionId);
                u.confirmed = false;
                u.upResends = 0;
                if (sendUp_) {
                    // The first MAC-valid message confirms the session (A9).
                    sendConfirmingUp(i, fd);
                    awaiting_.push_back(i);
                }
                release(i, false);
            } else if (const auto* a = std::get_if<ue::AttemptEnded>(&ev)) {
                if (a->reason == ue::AttemptEnd::rejected) {
                    ++counts_.rejected;
                    char c[8];
                    std::snprintf(c, sizeof c, "0x%02X",
                                  static_cast<unsigned>(a->cause.value_or(emsdp::Cause{})));
                    ++counts_.causes[c];
                } else {
                    ++counts_.other;
                }
                release(i, false);
            } else if (const auto* t = std::get_if<ue::SessionTerminated>(&ev)) {
                terminated_ += t->answered ? 1 : 0;
            } else if (std::holds_alternative<ue::FallbackToFull>(ev)) {
                ++counts_.fallbacks;
            } else if (std::holds_alternative<ue::UsimFailed>(ev) ||
                       std::holds_alternative<ue::StartFailed>(ev)) {
                ++counts_.other;
            }
        }
    }

    void poll(int ms) {
        std::array<epoll_event, 64> evs{};
        const int n = ::epoll_wait(epoll_, evs.data(), static_cast<int>(evs.size()), ms);
        for (int k = 0; k < n; ++k) {
            const std::size_t s = evs[static_cast<std::size_t>(k)].data.u32;
            std::array<std::uint8_t, 2048> buf{};
            for (;;) {
                const ssize_t len = ::recv(fds_[s], buf.data(), buf.size(), 0);
                if (len <= 0)
                    break;
                const ByteView d(buf.data(), static_cast<std::size_t>(len));
                auto r = emsdp::route(d, emsdp::Side::ue);
                std::optional<std::size_t> target;
                if (r && r->prefix.sessionId != 0) {
                    if (auto it = bySession_.find(r->prefix.sessionId); it != bySession_.end())
                        target = it->second;
                }
                if (!target && slotUe_[s] >= 0)
                    target = static_cast<std::size_t>(slotUe_[s]);
                if (!target || !ues_[*target].engine)
                    continue;
                out_.clear();
                ues_[*target].engine->handleDatagram(d, ue::Source::hse, ue::UeTime::now(), out_);
                flush(*target);
            }
        }
    }

    const Options& opt_;
    std::shared_ptr<ue::UeSettings> settings_;
    sockaddr_in hse_{};
    std::vector<Ue> ues_;
    int epoll_ = -1;
    std::vector<int> fds_;
    std::vector<int> slotUe_;
    std::vector<int> freeSlots_;
    Sink& sink_;
    std::map<std::uint32_t, std::size_t> bySession_;
    std::vector<std::size_t> awaiting_;  // established at the UE, not yet seen confirmed
    std::unordered_set<std::uint32_t> unconfirmed_;  // their Session IDs
    std::size_t terminated_ = 0;
    std::size_t next_ = 0;
    bool resumption_ = false;
    bool sendUp_ = true;
    Clock::time_point lastExpire_{};
    ue::Output out_;
    Counts counts_;
};

// ---- the baseline: a plain libuv UDP receiver forwarding payloads to the same sink ----------

struct Relay {
    uv_loop_t loop;
    uv_udp_t udp;
    uv_signal_t sig;
    int sinkFd = -1;
    sockaddr_un sink{};
    std::array<char, 65536> buf{};
};

// Runs in a child process: strips the 6-octet header (n = 1) and the MAC, forwards
// Session ID || payload like best-hsed does. Writes its port to `portFile`.
int runRelay(const std::string& portFile, const std::string& sinkPath, int cpu) {
    pin(cpu);
    auto* r = new Relay;
    uv_loop_init(&r->loop);
    uv_udp_init(&r->loop, &r->udp);
    r->udp.data = r;
    sockaddr_in a{};
    uv_ip4_addr("127.0.0.1", 0, &a);
    if (uv_udp_bind(&r->udp, reinterpret_cast<const sockaddr*>(&a), 0) != 0)
        return 1;
    r->sinkFd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    r->sink.sun_family = AF_UNIX;
    std::snprintf(r->sink.sun_path, sizeof r->sink.sun_path, "%s", sinkPath.c_str());
    int len = sizeof a;
    uv_udp_getsockname(&r->udp, reinterpret_cast<sockaddr*>(&a), &len);
    {
        std::ofstream f(portFile + ".tmp");
        f << ntohs(a.sin_port) << "\n";
    }
    std::rename((portFile + ".tmp").c_str(), portFile.c_str());
    uv_udp_recv_start(
        &r->udp,
        [](uv_handle_t* h, size_t, uv_buf_t* b) {
            auto* rr = static_cast<Relay*>(h->data);
            *b = uv_buf_init(rr->buf.data(), static_cast<unsigned>(rr->buf.size()));
        },
        [](uv_udp_t* u, ssize_t n, const uv_buf_t* b, const sockaddr*, unsigned) {
            auto* rr = static_cast<Relay*>(u->data);
            if (n < 6 + 4)
                return;
            const auto* p = reinterpret_cast<const std::uint8_t*>(b->base);
            std::array<std::uint8_t, 2048> frame{};
            // Session ID: header octets 1..4.
            std::memcpy(frame.data(), p + 1, 4);
            const std::size_t payload = static_cast<std::size_t>(n) - 6 - 4;
            std::memcpy(frame.data() + 4, p + 6, payload);
            ::sendto(rr->sinkFd, frame.data(), 4 + payload, MSG_DONTWAIT,
                     reinterpret_cast<const sockaddr*>(&rr->sink), sizeof rr->sink);
        });
    uv_signal_init(&r->loop, &r->sig);
    r->sig.data = r;
    uv_signal_start(
        &r->sig, [](uv_signal_t* s, int) { uv_stop(s->loop); }, SIGTERM);
    uv_run(&r->loop, UV_RUN_DEFAULT);
    return 0;
}

// ---- measurements -----------------------------------------------------------------------------

struct Stats {
    double median = 0, lo = 0, hi = 0;
};

Stats stats(std::vector<double> v) {
    Stats s;
    if (v.empty())
        return s;
    std::sort(v.begin(), v.end());
    s.lo = v.front();
    s.hi = v.back();
    s.median = v.size() % 2 == 1 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
    return s;
}

std::string causes(const Counts& c) {
    std::string s;
    for (const auto& [k, n] : c.causes)
        s += " " + k + "=" + std::to_string(n);
    return s.empty() ? " none" : s;
}

// Establishment rate (full or resumption) over `runs` windows; returns the per-run rates.
std::vector<double> measureEstablish(const Options& o, bool resumption, std::size_t ues) {
    Instance hse(o, o.subscribers);
    Sink sink(hse.sinkPath());
    hse.start();
    Driver d(o, hse.port(), ues, sink);
    if (resumption) {
        // Every UE needs a key set first: one full establishment each (not measured).
        const auto t0 = Clock::now();
        d.establish(false, Clock::now() + 600s, ues);
        d.drain(2000ms);
        std::printf("# prepared %zu key sets by full establishment in %.1f s\n", ues,
                    std::chrono::duration<double>(Clock::now() - t0).count());
    }
    std::vector<double> rates;
    for (int run = 0; run < o.runs; ++run) {
        d.counts() = Counts{};
        const std::uint64_t hse0 = hse.confirmedByHse();
        const double cpu0 = cpuSeconds(hse.pid());
        const auto t0 = Clock::now();
        d.establish(resumption,
                    t0 + std::chrono::duration_cast<Clock::duration>(
                             std::chrono::duration<double>(o.seconds)),
                    SIZE_MAX);
        const auto t1 = Clock::now();
        const double cpu = cpuSeconds(hse.pid()) - cpu0;
        const std::uint64_t confirmed = hse.confirmedByHse() - hse0;
        d.confirmations();
        const std::uint64_t atSink = d.counts().confirmed;
        d.drain(3000ms);
        const double secs = std::chrono::duration<double>(t1 - t0).count();
        const double rate = static_cast<double>(confirmed) / secs;
        rates.push_back(rate);
        const Counts& c = d.counts();
        std::printf(
            "%s run %d: %.0f confirmed/s (%llu confirmed by the HSE in %.1f s, %llu of them "
            "seen at the sink; attempts "
            "%llu, UE-established %llu, rejected %llu [causes%s], timed out %llu, "
            "fallbacks to full %llu, other %llu, confirming UP resent %llu); best-hsed CPU "
            "%.1f s = %.0f us per confirmed session\n",
            resumption ? "resume" : "full", run + 1, rate,
            static_cast<unsigned long long>(confirmed), secs,
            static_cast<unsigned long long>(atSink), static_cast<unsigned long long>(c.attempts),
            static_cast<unsigned long long>(c.ueEstablished),
            static_cast<unsigned long long>(c.rejected), causes(c).c_str(),
            static_cast<unsigned long long>(c.timedOut),
            static_cast<unsigned long long>(c.fallbacks), static_cast<unsigned long long>(c.other),
            static_cast<unsigned long long>(c.upResent), cpu,
            confirmed == 0 ? 0.0 : cpu * 1e6 / static_cast<double>(confirmed));
        std::fflush(stdout);
    }
    hse.stop();
    return rates;
}

struct UpResult {
    double hse = 0, baseline = 0;
    std::uint64_t sent = 0, hseDelivered = 0, baseDelivered = 0;
};

// Sends the sealed datagrams `dgrams` (per socket) to `to` as fast as the sockets take them,
// for at most `seconds`; returns delivered/s at the sink and the counts.
std::pair<double, std::uint64_t> blast(Driver& d, const std::vector<std::vector<Bytes>>& perSocket,
                                       const sockaddr_in& to, Sink& sink, double seconds,
                                       std::uint64_t& sent) {
    const std::uint64_t before = sink.frames();
    const auto t0 = Clock::now();
    const auto end =
        t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
    std::vector<std::size_t> pos(perSocket.size(), 0);
    bool more = true;
    sent = 0;
    std::array<mmsghdr, 32> msgs{};
    std::array<iovec, 32> iov{};
    while (more && Clock::now() < end) {
        more = false;
        for (std::size_t s = 0; s < perSocket.size(); ++s) {
            const auto& q = perSocket[s];
            std::size_t n = 0;
            for (; n < msgs.size() && pos[s] + n < q.size(); ++n) {
                const Bytes& b = q[pos[s] + n];
                iov[n].iov_base = const_cast<std::uint8_t*>(b.data());
                iov[n].iov_len = b.size();
                msgs[n] = mmsghdr{};
                msgs[n].msg_hdr.msg_iov = &iov[n];
                msgs[n].msg_hdr.msg_iovlen = 1;
                msgs[n].msg_hdr.msg_name = const_cast<sockaddr_in*>(&to);
                msgs[n].msg_hdr.msg_namelen = sizeof to;
            }
            if (n == 0)
                continue;
            more = true;
            const int k = ::sendmmsg(d.fd(s), msgs.data(), static_cast<unsigned>(n), 0);
            if (k > 0) {
                pos[s] += static_cast<std::size_t>(k);
                sent += static_cast<std::uint64_t>(k);
            }
        }
    }
    // Until the sink has been quiet for 300 ms.
    for (;;) {
        std::this_thread::sleep_for(100ms);
        if (Clock::now() - sink.last() > 300ms)
            break;
    }
    const std::uint64_t delivered = sink.frames() - before;
    const auto last = std::max(sink.last(), t0 + 1ms);
    return {static_cast<double>(delivered) / std::chrono::duration<double>(last - t0).count(),
            delivered};
}

std::vector<UpResult> measureUp(const Options& o, const std::string& self) {
    Instance hse(o, o.subscribers);
    Sink sink(hse.sinkPath());
    hse.start();
    const std::size_t n = std::min(o.upSessions, o.subscribers);
    Driver d(o, hse.port(), n, sink);
    d.establish(false, Clock::now() + 600s, n);
    d.drain(5000ms);
    sink.record(false);
    std::size_t live = 0;
    for (std::size_t i = 0; i < n; ++i)
        live += d.established(i) ? 1 : 0;
    std::printf("# %zu UP sessions established\n", live);
    if (live == 0)
        fail("no UP session");
    // The baseline relay, on the daemon's CPU.
    const std::string portFile = hse.dir() + "/relay.port";
    const pid_t relay = ::fork();
    if (relay == 0) {
        ::execl(self.c_str(), self.c_str(), "--relay", portFile.c_str(), hse.sinkPath().c_str(),
                std::to_string(o.daemonCpu).c_str(), static_cast<char*>(nullptr));
        ::_exit(127);
    }
    std::uint16_t relayPort = 0;
    for (int i = 0; i < 500 && relayPort == 0; ++i) {
        std::this_thread::sleep_for(10ms);
        relayPort = static_cast<std::uint16_t>(std::atoi(readFile(portFile).c_str()));
    }
    if (relayPort == 0)
        fail("the baseline relay did not start");
    sockaddr_in relayAddr = d.hse();
    relayAddr.sin_port = htons(relayPort);

    std::vector<UpResult> results;
    std::array<std::uint8_t, kPayload> payload{};
    for (int run = 0; run < o.runs; ++run) {
        // Sealed before the window: per socket, UE i on socket i % sockets.
        std::vector<std::vector<Bytes>> perSocket(o.sockets);
        const std::size_t perUe = std::max<std::size_t>(1, o.upMessages / live);
        for (std::size_t k = 0; k < perUe; ++k)
            for (std::size_t i = 0; i < n; ++i) {
                if (!d.established(i))
                    continue;
                payload.fill(static_cast<std::uint8_t>(k));
                Bytes b = d.seal(i, payload);
                if (!b.empty())
                    perSocket[i % o.sockets].push_back(std::move(b));
            }
        UpResult r;
        std::uint64_t sent = 0;
        auto [hseRate, hseDelivered] = blast(d, perSocket, d.hse(), sink, o.seconds, sent);
        r.sent = sent;
        r.hse = hseRate;
        r.hseDelivered = hseDelivered;
        std::uint64_t baseSent = 0;
        auto [baseRate, baseDelivered] = blast(d, perSocket, relayAddr, sink, o.seconds, baseSent);
        r.baseline = baseRate;
        r.baseDelivered = baseDelivered;
        std::printf(
            "up run %d: best-hsed %.0f msg/s delivered (%llu of %llu sent, %llu dropped), "
            "baseline relay %.0f msg/s (%llu of %llu, %llu dropped): %.0f%%\n",
            run + 1, r.hse, static_cast<unsigned long long>(r.hseDelivered),
            static_cast<unsigned long long>(sent),
            static_cast<unsigned long long>(sent - r.hseDelivered), r.baseline,
            static_cast<unsigned long long>(r.baseDelivered),
            static_cast<unsigned long long>(baseSent),
            static_cast<unsigned long long>(baseSent - r.baseDelivered),
            r.baseline > 0 ? 100.0 * r.hse / r.baseline : 0.0);
        std::fflush(stdout);
        results.push_back(r);
    }
    ::kill(relay, SIGTERM);
    ::waitpid(relay, nullptr, 0);
    hse.stop();
    return results;
}

struct MemResult {
    double bytesPerSession = 0;
    std::uint64_t confirmed = 0;
    long rss0 = 0, rss1 = 0;
};

MemResult measureMemory(const Options& o) {
    const std::size_t total = o.sessions + o.warmup;
    Instance hse(o, total);
    Sink sink(hse.sinkPath());
    hse.start();
    Driver d(o, hse.port(), total, sink);
    // Warm-up: caches, rate-limit tables, SQLite page cache reach their working size.
    d.establish(false, Clock::now() + 3600s, o.warmup);
    d.drain(2000ms);
    if (o.warmSubscribers) {
        // Every subscriber once, then terminated: per-subscriber state of the daemon (the SQN
        // allocator's in-memory ranges, the KeyVault's key cache, rate-limit buckets) exists
        // before the first reading, so the delta is the sessions' own.
        d.establish(false, Clock::now() + 3600s, o.sessions);
        d.drain(5000ms);
        const std::size_t t = d.terminateAll(5000ms);
        std::printf("# warm subscribers: %zu sessions terminated (answered)\n", t);
        d.rewind();
        d.establish(false, Clock::now() + 3600s, o.warmup);  // the warm-up set again
        d.drain(2000ms);
    }
    std::this_thread::sleep_for(1500ms);
    d.confirmations();
    const std::uint64_t before = hse.confirmedByHse();
    const long rss0 = rssKiB(hse.pid());
    const auto t0 = Clock::now();
    d.establish(false, Clock::now() + 3600s, o.sessions);
    d.drain(10000ms);
    // Key sets persisted and the tentative copies dropped; nothing is in flight.
    std::this_thread::sleep_for(3000ms);
    const long rss1 = rssKiB(hse.pid());
    MemResult m;
    m.confirmed = hse.confirmedByHse() - before;
    m.rss0 = rss0;
    m.rss1 = rss1;
    m.bytesPerSession = m.confirmed == 0 ? 0
                                         : static_cast<double>(rss1 - rss0) * 1024.0 /
                                               static_cast<double>(m.confirmed);
    const Counts& c = d.counts();
    std::printf(
        "memory: %llu sessions confirmed in %.1f s (rejected %llu [causes%s], timed out "
        "%llu, confirming UP resent %llu); RSS %ld -> %ld KiB: %.0f octets per idle confirmed "
        "session\n",
        static_cast<unsigned long long>(m.confirmed),
        std::chrono::duration<double>(Clock::now() - t0).count(),
        static_cast<unsigned long long>(c.rejected), causes(c).c_str(),
        static_cast<unsigned long long>(c.timedOut), static_cast<unsigned long long>(c.upResent),
        rss0, rss1, m.bytesPerSession);
    std::fflush(stdout);
    if (o.hold > 0) {
        std::printf("# holding best-hsed pid %d for %d s\n", static_cast<int>(hse.pid()), o.hold);
        std::fflush(stdout);
        std::this_thread::sleep_for(std::chrono::seconds(o.hold));
    }
    hse.stop();
    return m;
}

void usage() {
    std::fprintf(
        stderr,
        "usage: load_hsed --mode full|resume|up|memory|all|smoke [--runs N] [--seconds S]\n"
        "         [--subscribers N] [--sessions N] [--warmup N] [--window N] [--up-sessions N]\n"
        "         [--up-messages N] [--sockets N] [--daemon-cpu C] [--driver-cpu C] [--hold S]\n"
        "         [--warm-subscribers]\n"
        "         [--hsed PATH] [--hsectl PATH] [--bench-config FILE]\n"
        "Defaults: BEST_HSED, BEST_HSECTL, BEST_BENCH_CONFIG from the environment.\n");
}

int run(int argc, char** argv) {
    if (argc == 5 && std::string(argv[1]) == "--relay")
        return runRelay(argv[2], argv[3], std::atoi(argv[4]));
    Options o;
    o.hsed = envOr("BEST_HSED", "");
    o.hsectl = envOr("BEST_HSECTL", "");
    o.benchConfig = envOr("BEST_BENCH_CONFIG", "config/hsed-bench.yaml");
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto val = [&]() -> std::string {
            if (i + 1 >= argc) {
                usage();
                std::exit(2);
            }
            return argv[++i];
        };
        if (a == "--mode")
            o.mode = val();
        else if (a == "--smoke")
            o.mode = "smoke";
        else if (a == "--runs")
            o.runs = std::stoi(val());
        else if (a == "--seconds")
            o.seconds = std::stod(val());
        else if (a == "--subscribers")
            o.subscribers = std::stoul(val());
        else if (a == "--sessions")
            o.sessions = std::stoul(val());
        else if (a == "--warmup")
            o.warmup = std::stoul(val());
        else if (a == "--window")
            o.window = std::stoul(val());
        else if (a == "--up-sessions")
            o.upSessions = std::stoul(val());
        else if (a == "--up-messages")
            o.upMessages = std::stoul(val());
        else if (a == "--sockets")
            o.sockets = std::stoul(val());
        else if (a == "--warm-subscribers")
            o.warmSubscribers = true;
        else if (a == "--hold")
            o.hold = std::stoi(val());
        else if (a == "--daemon-cpu")
            o.daemonCpu = std::stoi(val());
        else if (a == "--driver-cpu")
            o.driverCpu = std::stoi(val());
        else if (a == "--hsed")
            o.hsed = val();
        else if (a == "--hsectl")
            o.hsectl = val();
        else if (a == "--bench-config")
            o.benchConfig = val();
        else {
            usage();
            return 2;
        }
    }
    if (o.hsed.empty() || o.hsectl.empty()) {
        usage();
        return 2;
    }
    const bool smoke = o.mode == "smoke";
    if (smoke) {
        o.runs = 1;
        o.seconds = 1.5;
        o.subscribers = 40;
        o.sessions = 300;
        o.warmup = 20;
        o.window = 16;
        o.upSessions = 20;
        o.upMessages = 4000;
        o.sockets = 8;
    }
    pin(o.driverCpu);
    std::printf(
        "# load_hsed mode %s: %d run(s) of %.1f s, %zu subscribers, window %zu; driver "
        "CPU %d, daemon CPU %d (-1: not pinned); %u CPUs online\n",
        o.mode.c_str(), o.runs, o.seconds, o.subscribers, o.window, o.driverCpu, o.daemonCpu,
        std::thread::hardware_concurrency());
    std::fflush(stdout);
    int failures = 0;
    auto check = [&](bool ok, const std::string& what) {
        if (!ok) {
            ++failures;
            std::printf("FAILED: %s\n", what.c_str());
        }
    };
    const bool all = o.mode == "all" || smoke;
    if (o.mode == "full" || all) {
        auto r = measureEstablish(o, false, o.subscribers);
        auto s = stats(r);
        std::printf(
            "RESULT full establishments/s: median %.0f, range %.0f-%.0f (target >= 2,000)\n",
            s.median, s.lo, s.hi);
        check(s.median > 0, "full: no session confirmed by the HSE");
    }
    if (o.mode == "resume" || all) {
        auto r = measureEstablish(o, true, o.subscribers);
        auto s = stats(r);
        std::printf("RESULT resumptions/s: median %.0f, range %.0f-%.0f (target >= 10,000)\n",
                    s.median, s.lo, s.hi);
        check(s.median > 0, "resume: no resumption confirmed by the HSE");
    }
    if (o.mode == "up" || all) {
        auto r = measureUp(o, argv[0]);
        std::vector<double> h, b, ratio;
        for (const auto& x : r) {
            h.push_back(x.hse);
            b.push_back(x.baseline);
            ratio.push_back(x.baseline > 0 ? 100.0 * x.hse / x.baseline : 0);
        }
        auto sh = stats(h), sb = stats(b), sr = stats(ratio);
        std::printf(
            "RESULT UP msg/s delivered: best-hsed median %.0f (%.0f-%.0f), baseline median "
            "%.0f (%.0f-%.0f), ratio median %.0f%% (%.0f-%.0f%%, target >= 50%%)\n",
            sh.median, sh.lo, sh.hi, sb.median, sb.lo, sb.hi, sr.median, sr.lo, sr.hi);
        check(!r.empty() && r.front().hseDelivered > 0, "up: nothing delivered by best-hsed");
        check(!r.empty() && r.front().baseDelivered > 0, "up: nothing delivered by the baseline");
    }
    if (o.mode == "memory" || all) {
        auto m = measureMemory(o);
        std::printf(
            "RESULT memory per idle confirmed session: %.0f octets over %llu sessions "
            "(target <= 1,024)\n",
            m.bytesPerSession, static_cast<unsigned long long>(m.confirmed));
        check(m.confirmed > 0, "memory: no session confirmed");
        check(m.rss0 > 0 && m.rss1 > 0, "memory: RSS not readable");
    }
    if (smoke)
        std::printf("%d passed, %d failed\n", failures == 0 ? 1 : 0, failures == 0 ? 0 : 1);
    return failures == 0 ? 0 : 1;
}

}  // namespace
}  // namespace best::load

int main(int argc, char** argv) {
    try {
        return best::load::run(argc, argv);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "load_hsed: %s\n", e.what());
        return 1;
    }
}
