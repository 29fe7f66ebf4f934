#include "hse/uplink_sink.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <utility>

#include "common/log.h"

namespace best::hse {
namespace {
constexpr const char* kLog = "uplink";
}  // namespace

UplinkSink::UplinkSink(net::Loop& loop, std::string path, std::size_t backlog)
    : loop_(loop), path_(std::move(path)), backlog_(backlog) {}

UplinkSink::~UplinkSink() {
    close();
}

Result<void> UplinkSink::open() {
    sockaddr_un probe{};
    if (path_.empty() || path_.size() >= sizeof probe.sun_path)
        return makeError(UplinkSinkErrc::bad_path,
                         "sink.uplink '" + path_ + "' is not a usable UNIX socket path");
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd_ < 0)
        return makeError(UplinkSinkErrc::socket,
                         std::string("uplink sink socket: ") + std::strerror(errno));
    ring_.reset(new Frame[capacity()]);  // default-initialised: written before read
    poll_ = loop_.make<net::Poll>(fd_);
    check_ = loop_.make<net::Check>();
    if (tryConnect())
        log::info(kLog, "uplink sink " + path_ + " connected");
    else
        log::warning(kLog, "uplink sink " + path_ + " is not bound yet: uplink frames are " +
                               "dropped (counted) until it is");
    return {};
}

void UplinkSink::close() noexcept {
    poll_.reset();  // closes the handles first: the fd must outlive the poll handle's close
    check_.reset();
    if (fd_ >= 0)
        ::close(fd_);
    fd_ = -1;
    connected_ = false;
}

bool UplinkSink::tryConnect() {
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::memcpy(a.sun_path, path_.data(), path_.size());
    connected_ = ::connect(fd_, reinterpret_cast<const sockaddr*>(&a), sizeof a) == 0;
    return connected_;
}

void UplinkSink::disconnected(int err) {
    if (connected_)
        log::warning(kLog, "uplink sink " + path_ + " went away (" + std::strerror(err) +
                               "): frames are dropped (counted) until it is bound again");
    connected_ = false;
    counts_.droppedNoSink += size_;
    head_ = 0;
    size_ = 0;
    if (waitingWritable_) {
        poll_->stop();
        waitingWritable_ = false;
    }
}

void UplinkSink::deliver(std::uint32_t sessionId, ByteView payload) {
    if (fd_ < 0 || payload.size() + 4 > kFrameMax) {
        ++counts_.droppedNoSink;
        return;
    }
    if (!connected_) {
        if (!tryConnect()) {
            ++counts_.droppedNoSink;
            return;
        }
        log::info(kLog, "uplink sink " + path_ + " connected");
    }
    if (size_ >= capacity() || (waitingWritable_ && size_ >= backlog_)) {
        ++counts_.droppedFull;
        return;
    }
    Frame& f = ring_[(head_ + size_) % capacity()];
    f.data[0] = static_cast<std::uint8_t>(sessionId >> 24);
    f.data[1] = static_cast<std::uint8_t>(sessionId >> 16);
    f.data[2] = static_cast<std::uint8_t>(sessionId >> 8);
    f.data[3] = static_cast<std::uint8_t>(sessionId);
    std::memcpy(f.data + 4, payload.data(), payload.size());
    f.length = static_cast<std::uint16_t>(4 + payload.size());
    ++size_;
    if (size_ >= kBatch && !waitingWritable_) {
        flush();
        return;
    }
    if (!checkRunning_ && !waitingWritable_) {
        checkRunning_ = true;
        (void)check_->start([this] { flush(); });
    }
}

void UplinkSink::flush() {
    if (checkRunning_) {
        check_->stop();
        checkRunning_ = false;
    }
    std::array<mmsghdr, kBatch> msgs{};
    std::array<iovec, kBatch> iov{};
    while (size_ > 0 && connected_) {
        const std::size_t n = std::min(size_, kBatch);
        for (std::size_t i = 0; i < n; ++i) {
            Frame& f = ring_[(head_ + i) % capacity()];
            iov[i].iov_base = f.data;
            iov[i].iov_len = f.length;
            msgs[i] = mmsghdr{};
            msgs[i].msg_hdr.msg_iov = &iov[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
        }
        const int sent = ::sendmmsg(fd_, msgs.data(), static_cast<unsigned>(n), MSG_DONTWAIT);
        if (sent > 0) {
            counts_.delivered += static_cast<std::uint64_t>(sent);
            head_ = (head_ + static_cast<std::size_t>(sent)) % capacity();
            size_ -= static_cast<std::size_t>(sent);
            continue;
        }
        const int err = errno;
        if (err == EINTR)
            continue;
        if (err == EAGAIN || err == EWOULDBLOCK) {
            // The sink's queue is full: the oldest frames wait (up to the backlog), in order;
            // the newest past it are dropped, as deliver() drops while waiting.
            if (size_ > backlog_) {
                counts_.droppedFull += size_ - backlog_;
                size_ = backlog_;
            }
            waitWritable();
            return;
        }
        if (err == ECONNREFUSED || err == ENOTCONN || err == ENOENT) {
            disconnected(err);
            return;
        }
        // Anything else (a frame the sink refuses): drop that frame, go on.
        log::debug(kLog, std::string("uplink frame not sent: ") + std::strerror(err));
        ++counts_.droppedNoSink;
        head_ = (head_ + 1) % capacity();
        --size_;
    }
}

void UplinkSink::waitWritable() {
    if (waitingWritable_)
        return;
    waitingWritable_ = true;
    auto r = poll_->start(UV_WRITABLE, [this](int status, int) {
        poll_->stop();
        waitingWritable_ = false;
        if (status < 0) {
            disconnected(-status);
            return;
        }
        flush();
    });
    if (!r) {
        waitingWritable_ = false;
        log::warning(kLog, "uplink sink: " + r.error().message);
    }
}

}  // namespace best::hse
