// A throwaway directory per test (parallel-safe): made under $TMPDIR (else /tmp) with a unique
// name starting with `prefix`, removed with everything in it when the object goes.
#pragma once

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>

namespace best::test {

class TempDir {
public:
    explicit TempDir(std::string_view prefix = "best-test-") {
        const char* base = std::getenv("TMPDIR");
        std::string tmpl = std::string(base != nullptr && *base != '\0' ? base : "/tmp") + "/" +
                           std::string(prefix) + "XXXXXX";
        char* p = ::mkdtemp(tmpl.data());
        if (p == nullptr)
            throw std::system_error(errno, std::generic_category(), "mkdtemp");
        path_ = p;
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    const std::string& path() const { return path_; }
    std::string file(std::string_view name) const { return path_ + "/" + std::string(name); }

private:
    std::string path_;
};

}  // namespace best::test
