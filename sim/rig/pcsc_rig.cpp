#include "sim/rig/pcsc_rig.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include "common/unique_fd.h"
#include "sim/pcsc.h"
#include "sim/sim_error.h"

#ifndef BEST_RIG_BUILD_ROOT
#define BEST_RIG_BUILD_ROOT ""
#endif

namespace best::sim::rig {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr char kFriendlyName[] = "BEST vusim";
constexpr char kUsbDrivers[] = "/usr/lib/pcsc/drivers";

std::string envOr(const char* name, const std::string& fallback) {
    const char* v = std::getenv(name);
    return v && *v ? std::string(v) : fallback;
}

// Per process: a directory holding the symlink that PCSCLITE_CSOCK_NAME names.
struct ProcessBase {
    std::mutex mutex;
    std::string dir;
    int rigs = 0;
    unsigned counter = 0;
};
ProcessBase& processBase() {
    static ProcessBase base;
    return base;
}

void removeProcessBase() {
    auto& b = processBase();
    if (!b.dir.empty() && !std::getenv("BEST_RIG_KEEP")) {
        std::error_code ec;
        fs::remove_all(b.dir, ec);
    }
}

Result<std::string> ensureProcessBase() {
    auto& b = processBase();
    if (!b.dir.empty())
        return b.dir;
    std::string tmp = envOr("TMPDIR", "/tmp");
    if (tmp.size() > 40)
        tmp = "/tmp";  // sun_path is 108 octets; keep room for the socket path below
    std::string templ = tmp + "/best-rig.XXXXXX";
    if (!::mkdtemp(templ.data()))
        return makeError(SimErrc::process, "mkdtemp " + templ + ": " + errnoText(errno));
    b.dir = templ;
    std::atexit(removeProcessBase);
    const std::string sock = b.dir + "/pcscd.comm";
    ::setenv("PCSCLITE_CSOCK_NAME", sock.c_str(), 1);
    return b.dir;
}

std::string tailOf(const std::string& path, std::size_t max) {
    std::ifstream in(path, std::ios::binary);
    if (!in)
        return "(no " + path + ")\n";
    std::stringstream ss;
    ss << in.rdbuf();
    std::string s = ss.str();
    if (s.size() > max)
        s = "..." + s.substr(s.size() - max);
    return s;
}

// Two consecutive free TCP ports (vpcd listens on PORT and PORT + 1, one per slot).
Result<std::uint16_t> pickPortPair() {
    for (int attempt = 0; attempt < 64; ++attempt) {
        UniqueFd a(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
        sockaddr_in sa{};
        sa.sin_family = AF_INET;
        sa.sin_addr.s_addr = htonl(INADDR_ANY);
        sa.sin_port = 0;
        if (::bind(a.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0)
            continue;
        socklen_t len = sizeof sa;
        ::getsockname(a.get(), reinterpret_cast<sockaddr*>(&sa), &len);
        std::uint16_t port = ntohs(sa.sin_port);
        if (port == 0 || port >= 65535)
            continue;
        UniqueFd b(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
        sockaddr_in sb = sa;
        sb.sin_port = htons(static_cast<std::uint16_t>(port + 1));
        if (::bind(b.get(), reinterpret_cast<sockaddr*>(&sb), sizeof sb) != 0)
            continue;
        return port;
    }
    return makeError(SimErrc::process, "no free TCP port pair for vpcd");
}

// Writes a message to the child's log (async-signal-safe) and exits.
[[noreturn]] void childFail(const char* what) {
    const int err = errno;
    ssize_t r = ::write(2, what, std::strlen(what));
    const char* text = ::strerror(err);
    r = ::write(2, ": ", 2);
    r = ::write(2, text, std::strlen(text));
    r = ::write(2, "\n", 1);
    (void)r;
    ::_exit(127);
}

// Mounts the isolated pcscd needs, as a plan prepared before fork().
struct NamespacePlan {
    std::string runDir;      // bind-mounted over /run
    std::string serialDir;   // the vpcd driver's directory ...
    std::string driversDir;  // ... bind-mounted here, before /usr/lib/pcsc/drivers is hidden
};

struct Prepared {
    std::vector<std::string> args;
    std::vector<char*> argv;
};

Result<ChildProcess> spawnImpl(const std::vector<std::string>& argvIn, const std::string& logPath,
                               const NamespacePlan* ns, int captureFd) {
    if (argvIn.empty())
        return makeError(SimErrc::process, "spawn: empty command");
    Prepared p;
    p.args = argvIn;
    for (auto& a : p.args)
        p.argv.push_back(a.data());
    p.argv.push_back(nullptr);
    UniqueFd log;
    if (captureFd < 0) {
        log.reset(::open(logPath.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
        if (!log.isValid())
            return makeError(SimErrc::process, "open " + logPath + ": " + errnoText(errno));
    }
    const int outFd = captureFd >= 0 ? captureFd : log.get();
    UniqueFd devNull(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    const pid_t parent = ::getpid();

    pid_t pid = ::fork();
    if (pid < 0)
        return makeError(SimErrc::process, "fork: " + errnoText(errno));
    if (pid == 0) {
        // Child: async-signal-safe calls only.
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (::getppid() != parent)
            ::_exit(127);
        ::dup2(devNull.get(), 0);
        ::dup2(outFd, 1);
        ::dup2(outFd, 2);
        ::close_range(3, ~0U, 0);
        sigset_t none;
        sigemptyset(&none);
        ::sigprocmask(SIG_SETMASK, &none, nullptr);
        if (ns) {
            if (::unshare(CLONE_NEWNS) != 0)
                childFail("rig: unshare(CLONE_NEWNS)");
            if (::mount("none", "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
                childFail("rig: make mounts private");
            if (::mount(ns->serialDir.c_str(), ns->driversDir.c_str(), nullptr, MS_BIND, nullptr) !=
                0)
                childFail("rig: bind the vpcd driver directory");
            if (::mount("tmpfs", kUsbDrivers, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                        "mode=0755,size=16k") != 0)
                childFail("rig: hide the USB reader drivers");
            if (::mount(ns->runDir.c_str(), "/run", nullptr, MS_BIND, nullptr) != 0)
                childFail("rig: bind the rig directory over /run");
        }
        ::execv(p.argv[0], p.argv.data());
        childFail("rig: exec");
    }
    return ChildProcess(pid);
}

}  // namespace

ChildProcess::ChildProcess(ChildProcess&& o) noexcept : pid_(std::exchange(o.pid_, -1)) {}

ChildProcess& ChildProcess::operator=(ChildProcess&& o) noexcept {
    if (this != &o) {
        kill(SIGKILL);
        pid_ = std::exchange(o.pid_, -1);
    }
    return *this;
}

bool ChildProcess::running() {
    if (pid_ <= 0)
        return false;
    int status = 0;
    pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_ || (r < 0 && errno == ECHILD)) {
        pid_ = -1;
        return false;
    }
    return true;
}

std::optional<int> ChildProcess::wait(std::chrono::milliseconds timeout) {
    if (pid_ <= 0)
        return 0;
    const auto deadline = Clock::now() + timeout;
    for (;;) {
        int status = 0;
        pid_t r = ::waitpid(pid_, &status, WNOHANG);
        if (r == pid_) {
            pid_ = -1;
            return status;
        }
        if (r < 0 && errno == ECHILD) {
            pid_ = -1;
            return 0;
        }
        if (Clock::now() >= deadline)
            return std::nullopt;
        std::this_thread::sleep_for(2ms);
    }
}

void ChildProcess::kill(int sig) {
    if (pid_ <= 0)
        return;
    ::kill(pid_, sig);
    if (sig == SIGKILL) {
        int status = 0;
        while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
        }
        pid_ = -1;
    }
}

void ChildProcess::stop(std::chrono::milliseconds grace) {
    if (pid_ <= 0)
        return;
    ::kill(pid_, SIGTERM);
    if (!wait(grace))
        kill(SIGKILL);
}

Result<ChildProcess> spawn(const std::vector<std::string>& argv, const std::string& logPath) {
    return spawnImpl(argv, logPath, nullptr, -1);
}

Result<RunResult> runAndCapture(const std::vector<std::string>& argv,
                                std::chrono::milliseconds timeout) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0)
        return makeError(SimErrc::process, "pipe: " + errnoText(errno));
    UniqueFd rd(fds[0]), wr(fds[1]);
    auto child = spawnImpl(argv, {}, nullptr, wr.get());
    if (!child)
        return makeError(child.error());
    wr.reset();
    RunResult out;
    const auto deadline = Clock::now() + timeout;
    ::fcntl(rd.get(), F_SETFL, O_NONBLOCK);
    char buf[4096];
    for (;;) {
        ssize_t n = ::read(rd.get(), buf, sizeof buf);
        if (n > 0) {
            out.output.append(buf, static_cast<std::size_t>(n));
            continue;
        }
        if (n == 0)
            break;
        if (errno != EAGAIN && errno != EINTR)
            break;
        if (Clock::now() >= deadline) {
            child->kill(SIGKILL);
            out.output += "\n(rig: killed after timeout)";
            return out;
        }
        std::this_thread::sleep_for(1ms);
    }
    auto status = child->wait(std::chrono::duration_cast<std::chrono::milliseconds>(
        std::max(deadline - Clock::now(), Clock::duration(100ms))));
    if (!status) {
        child->kill(SIGKILL);
        return out;
    }
    out.exitCode = WIFEXITED(*status) ? WEXITSTATUS(*status) : -1;
    return out;
}

std::string vusimProgram() {
    std::string root = envOr("BEST_BUILD_ROOT", BEST_RIG_BUILD_ROOT);
    return envOr("BEST_VUSIM", root + "/tools/best-vusim/best-vusim");
}
std::string pcscdProgram() {
    return envOr("BEST_PCSCD", "/usr/sbin/pcscd");
}
std::string vpcdDriver() {
    return envOr("BEST_VPCD_DRIVER", "/usr/lib/pcsc/drivers/serial/libifdvpcd.so");
}

Result<std::unique_ptr<PcscRig>> PcscRig::create() {
    auto& b = processBase();
    std::unique_ptr<PcscRig> rig;
    {
        std::lock_guard<std::mutex> lock(b.mutex);
        if (b.rigs > 0)
            return makeError(SimErrc::process, "one PcscRig at a time per process");
        auto base = ensureProcessBase();
        if (!base)
            return makeError(base.error());
        rig.reset(new PcscRig());
        rig->dir_ = *base + "/r" + std::to_string(b.counter++);
        ++b.rigs;
    }
    std::error_code ec;
    fs::create_directories(rig->dir_ + "/run", ec);
    fs::create_directories(rig->dir_ + "/drivers", ec);
    fs::create_directories(rig->dir_ + "/reader.conf.d", ec);
    if (ec)
        return makeError(SimErrc::process, "create " + rig->dir_ + ": " + ec.message());
    rig->readerName_ = std::string(kFriendlyName) + " 00 00";
    rig->stateFile_ = rig->dir_ + "/sqn.state";
    rig->configPath_ = rig->dir_ + "/vusim.yaml";
    if (auto s = rig->startPcscd(); !s)
        return makeError(s.error());
    return rig;
}

PcscRig::~PcscRig() {
    vusim_.stop(3000ms);
    pcscd_.stop(5000ms);
    auto& b = processBase();
    std::lock_guard<std::mutex> lock(b.mutex);
    if (!dir_.empty()) {
        ::unlink((b.dir + "/pcscd.comm").c_str());
        if (!std::getenv("BEST_RIG_KEEP")) {
            std::error_code ec;
            fs::remove_all(dir_, ec);
        }
    }
    --b.rigs;
}

Result<void> PcscRig::startPcscd() {
    Error last{ErrorDomain::sim, static_cast<int>(SimErrc::process), "pcscd did not start"};
    const bool keepPort = port_ != 0;
    for (int attempt = 0; attempt < 5; ++attempt) {
        if (!keepPort) {
            auto p = pickPortPair();
            if (!p)
                return makeError(p.error());
            port_ = *p;
        }
        auto s = startPcscdOnce();
        if (s)
            return {};
        last = s.error();
        pcscd_.stop(2000ms);
        if (keepPort)
            break;
    }
    return makeError(SimErrc::process, last.message + "\n" + logs());
}

Result<void> PcscRig::startPcscdOnce() {
    const std::string driver = vpcdDriver();
    if (::access(driver.c_str(), R_OK) != 0)
        return makeError(SimErrc::process,
                         "vpcd driver " + driver + " not found (install vsmartcard-vpcd)");
    const std::string serialDir = fs::path(driver).parent_path().string();
    const std::string driverName = fs::path(driver).filename().string();
    {
        std::ofstream conf(dir_ + "/reader.conf.d/vpcd", std::ios::trunc);
        conf << "FRIENDLYNAME \"" << kFriendlyName << "\"\n"
             << "DEVICENAME /dev/null:" << port_ << "\n"
             << "LIBPATH " << dir_ << "/drivers/" << driverName << "\n";
        if (!conf)
            return makeError(SimErrc::process, "write " + dir_ + "/reader.conf.d/vpcd");
    }
    std::error_code ec;
    fs::remove_all(dir_ + "/run/pcscd", ec);

    NamespacePlan ns{dir_ + "/run", serialDir, dir_ + "/drivers"};
    std::vector<std::string> argv{pcscdProgram(), "--foreground", "--config",
                                  dir_ + "/reader.conf.d"};
    if (std::getenv("BEST_RIG_DEBUG"))
        argv.push_back("--debug");  // never --apdu: it would log CK/IK
    auto child = spawnImpl(argv, dir_ + "/pcscd.log", &ns, -1);
    if (!child)
        return makeError(child.error());
    pcscd_ = std::move(*child);

    // The socket appears once pcscd is ready.
    const std::string sock = dir_ + "/run/pcscd/pcscd.comm";
    const auto deadline = Clock::now() + 10s;
    while (::access(sock.c_str(), F_OK) != 0) {
        if (!pcscd_.running())
            return makeError(SimErrc::process, "pcscd exited during start-up");
        if (Clock::now() >= deadline)
            return makeError(SimErrc::process, "pcscd did not create " + sock + " within 10 s");
        std::this_thread::sleep_for(2ms);
    }
    // Point this process's PCSCLITE_CSOCK_NAME symlink at it.
    const std::string link = processBase().dir + "/pcscd.comm";
    const std::string tmpLink = link + ".new";
    ::unlink(tmpLink.c_str());
    if (::symlink(sock.c_str(), tmpLink.c_str()) != 0 ||
        ::rename(tmpLink.c_str(), link.c_str()) != 0)
        return makeError(SimErrc::process, "symlink " + link + ": " + errnoText(errno));

    // The socket file appears at bind(), a moment before pcscd accepts on it.
    auto client = PcscClient::open();
    while (!client) {
        if (!pcscd_.running())
            return makeError(SimErrc::process, "pcscd exited during start-up");
        if (Clock::now() >= deadline)
            return makeError(SimErrc::process, "pcscd does not answer: " + client.error().message);
        std::this_thread::sleep_for(2ms);
        client = PcscClient::open();
    }
    // The vpcd reader exists only if the driver could listen on the port.
    while (true) {
        auto names = client->readers();
        if (!names)
            return makeError(names.error());
        for (const auto& n : *names)
            if (n == readerName_)
                return {};
        if (!pcscd_.running())
            return makeError(SimErrc::process, "pcscd exited during start-up");
        if (Clock::now() >= deadline)
            return makeError(SimErrc::process, "pcscd did not list reader '" + readerName_ +
                                                   "' (vpcd port " + std::to_string(port_) +
                                                   " taken?)");
        std::this_thread::sleep_for(5ms);
    }
}

Result<void> PcscRig::stopPcscd() {
    pcscd_.stop(5000ms);
    return {};
}

Result<void> PcscRig::restartPcscd() {
    pcscd_.stop(5000ms);
    if (auto s = startPcscd(); !s)
        return s;
    if (vusim_.isValid() && vusim_.running())
        return waitForCard(15s);
    return {};
}

Result<void> PcscRig::startVusim(const VusimSettings& s) {
    {
        UniqueFd fd(::open(configPath_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
        if (!fd.isValid())
            return makeError(SimErrc::process, "create " + configPath_ + ": " + errnoText(errno));
        std::ostringstream y;
        y << "# written by the test rig\n"
          << "vpcd:\n  host: 127.0.0.1\n  port: " << port_ << "\n"
          << "card:\n  imsi: \"" << s.imsi << "\"\n"
          << "  response_style: " << (s.style == vusim::ResponseStyle::t0 ? "t0" : "direct")
          << "\n  get_response_chunk: " << s.getResponseChunk << "\n";
        if (s.pin)
            y << "  pin: \"" << *s.pin << "\"\n";
        y << "subscriber:\n  k: " << s.kHex << "\n";
        if (!s.opcHex.empty())
            y << "  opc: " << s.opcHex << "\n";
        if (!s.opHex.empty())
            y << "  op: " << s.opHex << "\n";
        y << "sqn:\n  state_file: " << stateFile_ << "\n  ind_bits: " << s.indBits << "\n";
        if (s.delta)
            y << "  delta: " << *s.delta << "\n";
        if (!s.initialSeqMs.empty()) {
            y << "  initial_seq_ms:\n";
            for (const auto& [ind, seq] : s.initialSeqMs)
                y << "    " << ind << ": " << seq << "\n";
        }
        const std::string text = y.str();
        if (::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size()))
            return makeError(SimErrc::process, "write " + configPath_ + ": " + errnoText(errno));
    }
    return startVusimProcess();
}

Result<void> PcscRig::restartVusim() {
    return startVusimProcess();
}

Result<void> PcscRig::startVusimProcess() {
    vusim_.stop(3000ms);
    // A stopped or killed best-vusim still looks present to pcscd until its next poll; a new
    // one connecting before that would pass for the old card. Let pcscd see it gone first.
    if (auto gone = waitForCardAbsent(5s); !gone)
        return makeError(SimErrc::process, "pcscd still reports the old card: " +
                                               gone.error().message + "\n" + logs());
    const std::string prog = vusimProgram();
    if (::access(prog.c_str(), X_OK) != 0)
        return makeError(SimErrc::process, "best-vusim not found at " + prog +
                                               " (set BEST_BUILD_ROOT or BEST_VUSIM)");
    auto child = spawn({prog, "--config", configPath_}, dir_ + "/vusim.log");
    if (!child)
        return makeError(child.error());
    vusim_ = std::move(*child);
    return waitForCard(15s);
}

void PcscRig::signalVusim(int sig) {
    vusim_.kill(sig);
}

Result<void> PcscRig::stopVusim() {
    vusim_.stop(3000ms);
    return {};
}

Result<void> PcscRig::waitForCard(std::chrono::milliseconds timeout) {
    auto client = PcscClient::open();
    if (!client)
        return makeError(client.error());
    const auto deadline = Clock::now() + timeout;
    for (;;) {
        auto r = client->waitForCard(readerName_, 100ms);
        if (r)
            return {};
        if (vusim_.isValid() && !vusim_.running())
            return makeError(SimErrc::process, "best-vusim exited:\n" + logs());
        if (Clock::now() >= deadline)
            return makeError(SimErrc::process, r.error().message + "\n" + logs());
    }
}

Result<void> PcscRig::waitForCardAbsent(std::chrono::milliseconds timeout) {
    auto client = PcscClient::open();
    if (!client)
        return makeError(client.error());
    return client->waitForRemoval(readerName_, timeout);
}

std::string PcscRig::logs() const {
    return "--- pcscd.log\n" + tailOf(dir_ + "/pcscd.log", 3000) + "--- vusim.log\n" +
           tailOf(dir_ + "/vusim.log", 3000);
}

std::string PcscRig::vusimLog() const {
    return tailOf(dir_ + "/vusim.log", 1 << 20);
}

}  // namespace best::sim::rig
