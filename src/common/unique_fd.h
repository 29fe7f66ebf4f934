// Move-only owner of a file descriptor, shaped like libcamera's UniqueFD (conventions 1).
#pragma once

#include <unistd.h>

#include <utility>

namespace best {

class UniqueFd {
public:
    UniqueFd() noexcept = default;
    explicit UniqueFd(int fd) noexcept : fd_(fd) {}
    UniqueFd(UniqueFd&& o) noexcept : fd_(o.release()) {}
    UniqueFd& operator=(UniqueFd&& o) noexcept {
        reset(o.release());
        return *this;
    }
    UniqueFd(const UniqueFd&) = delete;
    UniqueFd& operator=(const UniqueFd&) = delete;
    ~UniqueFd() { reset(); }

    [[nodiscard]] int release() noexcept { return std::exchange(fd_, -1); }
    void reset(int fd = -1) noexcept {
        int old = std::exchange(fd_, fd);
        if (old >= 0)
            ::close(old);
    }
    int get() const noexcept { return fd_; }
    bool isValid() const noexcept { return fd_ >= 0; }

private:
    int fd_ = -1;
};

}  // namespace best
