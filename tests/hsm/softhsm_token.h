// A throwaway SoftHSM2 token for tests and benchmarks: its own directory under $TMPDIR, its own
// softhsm2.conf (SOFTHSM2_CONF is set for this process), a token made by softhsm2-util, a PIN
// file of mode 0600. Everything is removed by the destructor. Unique names, so test programs
// run in parallel. Throws std::runtime_error when the environment cannot provide a token: a
// missing SoftHSM is a failure, not a skip.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "hsm/key_vault.h"

namespace best::testing {

inline std::string softHsmModule() {
    const char* env = std::getenv("BEST_SOFTHSM_MODULE");
    return env != nullptr ? env : "/usr/lib/softhsm/libsofthsm2.so";
}

struct CommandResult {
    int status = -1;  // exit status, -1 when it did not exit normally
    std::string output;
};

// Runs `command` through /bin/sh, stdout and stderr together.
inline CommandResult runCommand(const std::string& command) {
    CommandResult r;
    FILE* p = ::popen((command + " 2>&1").c_str(), "r");
    if (p == nullptr)
        return r;
    char buf[4096];
    std::size_t n = 0;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0)
        r.output.append(buf, n);
    const int st = ::pclose(p);
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return r;
}

inline std::string shellQuote(const std::string& s) {
    std::string q = "'";
    for (char c : s) {
        if (c == '\'')
            q += "'\\''";
        else
            q += c;
    }
    return q + "'";
}

class SoftHsmToken {
public:
    // `mechanisms`: the slots.mechanisms line of softhsm2.conf ("ALL", or e.g. "ALL,-CKM_X").
    explicit SoftHsmToken(const std::string& mechanisms = "ALL") {
        const char* tmp = std::getenv("TMPDIR");
        std::string templ =
            std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/best-hsm-XXXXXX";
        std::vector<char> buf(templ.begin(), templ.end());
        buf.push_back('\0');
        if (::mkdtemp(buf.data()) == nullptr)
            throw std::runtime_error("mkdtemp failed for " + templ);
        dir_ = buf.data();
        tokenDir_ = dir_ + "/tokens";
        conf_ = dir_ + "/softhsm2.conf";
        pinFile_ = dir_ + "/pin";
        const std::string suffix = dir_.substr(dir_.size() - 6);
        label_ = "best-test-" + suffix;
        std::filesystem::create_directory(tokenDir_);
        writeConf(mechanisms);
        activate();
        const CommandResult init =
            runCommand("softhsm2-util --init-token --free --label " + shellQuote(label_) +
                       " --pin " + pin_ + " --so-pin " + soPin_);
        if (init.status != 0) {
            cleanup();
            throw std::runtime_error(
                "softhsm2-util --init-token failed (is softhsm2 installed?): " + init.output);
        }
        writeFile(pinFile_, pin_ + "\n", 0600);
    }
    SoftHsmToken(const SoftHsmToken&) = delete;
    SoftHsmToken& operator=(const SoftHsmToken&) = delete;
    ~SoftHsmToken() { cleanup(); }

    const std::string& dir() const noexcept { return dir_; }
    const std::string& tokenDir() const noexcept { return tokenDir_; }
    const std::string& conf() const noexcept { return conf_; }
    const std::string& label() const noexcept { return label_; }
    const std::string& pin() const noexcept { return pin_; }
    const std::string& pinFile() const noexcept { return pinFile_; }

    // SOFTHSM2_CONF for this process (read by SoftHSM at C_Initialize) and its children.
    void activate() const { ::setenv("SOFTHSM2_CONF", conf_.c_str(), 1); }

    // Rewrites softhsm2.conf; takes effect at the next C_Initialize.
    void writeConf(const std::string& mechanisms) const {
        writeFile(conf_,
                  "directories.tokendir = " + tokenDir_ +
                      "\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n"
                      "slots.mechanisms = " +
                      mechanisms + "\nlibrary.reset_on_fork = false\n",
                  0600);
    }

    hsm::HsmConfig config() const {
        hsm::HsmConfig c;
        c.module = softHsmModule();
        c.token = label_;
        c.pinFile = pinFile_;
        return c;
    }

    // pkcs11-tool against this token, logged in (the PIN on this test tool's command line is
    // acceptable for a throwaway token; the product never takes a PIN on argv).
    CommandResult pkcs11Tool(const std::string& args) const {
        return runCommand("pkcs11-tool --module " + shellQuote(softHsmModule()) +
                          " --token-label " + shellQuote(label_) + " --login --pin " + pin_ + " " +
                          args);
    }

    // Every file of the token storage (what SoftHSM keeps on disk).
    std::vector<std::string> storageFiles() const {
        std::vector<std::string> files;
        for (const auto& e : std::filesystem::recursive_directory_iterator(tokenDir_)) {
            if (e.is_regular_file())
                files.push_back(e.path().string());
        }
        return files;
    }

    // The token's storage vanishes under the running process (what a failing SoftHSM does).
    void removeStorage() const {
        for (const auto& e : std::filesystem::directory_iterator(tokenDir_))
            std::filesystem::remove_all(e.path());
    }

    static void writeFile(const std::string& path, const std::string& content, mode_t mode) {
        const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
        if (fd < 0)
            throw std::runtime_error("cannot write " + path);
        const ssize_t n = ::write(fd, content.data(), content.size());
        ::fchmod(fd, mode);
        ::close(fd);
        if (n != static_cast<ssize_t>(content.size()))
            throw std::runtime_error("short write to " + path);
    }

    static std::string readFile(const std::string& path) {
        std::ifstream f(path, std::ios::binary);
        std::stringstream ss;
        ss << f.rdbuf();
        return ss.str();
    }

private:
    void cleanup() noexcept {
        if (dir_.empty())
            return;
        std::error_code ec;
        std::filesystem::remove_all(dir_, ec);
        dir_.clear();
    }

    std::string dir_;
    std::string tokenDir_;
    std::string conf_;
    std::string label_;
    std::string pinFile_;
    std::string pin_ = "246810";
    std::string soPin_ = "13579111";
};

}  // namespace best::testing
