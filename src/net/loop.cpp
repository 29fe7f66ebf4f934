#include "net/loop.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <unistd.h>

#include <cstring>
#include <stdexcept>

#include "common/log.h"

namespace best::net {

tl::unexpected<Error> uvError(const char* what, int rc) {
    return makeError(NetErrc::uv, std::string(what) + ": " + uv_strerror(rc));
}

void logCallbackException(const char* where, const char* what) noexcept {
    log::error("loop", std::string("exception escaped a callback in ") + where + ": " + what);
}

// ---- Handle and Loop

Handle::Handle(Loop& loop, uv_handle_t* h) noexcept : loop_(loop), handle_(h) {}

void Handle::close() noexcept {
    if (uv_is_closing(handle_) == 0)
        uv_close(handle_, &Handle::onClose);
}

bool Handle::closing() const noexcept {
    return uv_is_closing(handle_) != 0;
}

void Handle::onClose(uv_handle_t* h) noexcept {
    delete static_cast<Handle*>(h->data);
}

Loop::Loop() {
    int rc = uv_loop_init(&loop_);
    if (rc != 0)
        throw std::runtime_error(std::string("uv_loop_init: ") + uv_strerror(rc));
}

Loop::~Loop() {
    // Close whatever is left (handles whose owners forgot), then let the close callbacks free
    // them; the loop outlives every handle.
    uv_walk(
        &loop_,
        [](uv_handle_t* h, void*) {
            if (uv_is_closing(h) == 0)
                uv_close(h, h->data != nullptr ? &Handle::onClose : nullptr);
        },
        nullptr);
    while (uv_loop_close(&loop_) == UV_EBUSY)
        uv_run(&loop_, UV_RUN_DEFAULT);
}

// ---- Timer

Timer::Timer(Loop& loop) : Handle(loop, reinterpret_cast<uv_handle_t*>(&timer_)) {
    int rc = uv_timer_init(loop.raw(), &timer_);
    if (rc != 0)
        throw std::runtime_error(std::string("uv_timer_init: ") + uv_strerror(rc));
    timer_.data = static_cast<Handle*>(this);
}

void Timer::start(std::uint64_t timeoutMs, std::uint64_t repeatMs, Callback cb) {
    cb_ = std::move(cb);
    uv_timer_start(&timer_, &Timer::onTimer, timeoutMs, repeatMs);
}

void Timer::stop() noexcept {
    uv_timer_stop(&timer_);
}

void Timer::onTimer(uv_timer_t* t) noexcept {
    auto* self = static_cast<Timer*>(static_cast<Handle*>(t->data));
    guard("timer", [self] {
        if (self->cb_)
            self->cb_();
    });
}

// ---- Async

Async::Async(Loop& loop, Callback cb)
    : Handle(loop, reinterpret_cast<uv_handle_t*>(&async_)), cb_(std::move(cb)) {
    int rc = uv_async_init(loop.raw(), &async_, &Async::onAsync);
    if (rc != 0)
        throw std::runtime_error(std::string("uv_async_init: ") + uv_strerror(rc));
    async_.data = static_cast<Handle*>(this);
}

void Async::onAsync(uv_async_t* a) noexcept {
    auto* self = static_cast<Async*>(static_cast<Handle*>(a->data));
    guard("async", [self] {
        if (self->cb_)
            self->cb_();
    });
}

// ---- Signal

Signal::Signal(Loop& loop) : Handle(loop, reinterpret_cast<uv_handle_t*>(&signal_)) {
    int rc = uv_signal_init(loop.raw(), &signal_);
    if (rc != 0)
        throw std::runtime_error(std::string("uv_signal_init: ") + uv_strerror(rc));
    signal_.data = static_cast<Handle*>(this);
}

Result<void> Signal::start(int signum, Callback cb) {
    cb_ = std::move(cb);
    int rc = uv_signal_start(&signal_, &Signal::onSignal, signum);
    if (rc != 0)
        return uvError("uv_signal_start", rc);
    return {};
}

void Signal::onSignal(uv_signal_t* s, int signum) noexcept {
    auto* self = static_cast<Signal*>(static_cast<Handle*>(s->data));
    guard("signal", [self, signum] {
        if (self->cb_)
            self->cb_(signum);
    });
}

// ---- SocketAddress

Result<SocketAddress> SocketAddress::parse(const std::string& address, std::uint16_t port) {
    SocketAddress a;
    auto* v4 = &a.storage.v4;
    auto* v6 = &a.storage.v6;
    if (inet_pton(AF_INET, address.c_str(), &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(port);
        return a;
    }
    a.storage = {};
    if (inet_pton(AF_INET6, address.c_str(), &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(port);
        return a;
    }
    return makeError(NetErrc::address, "'" + address + "' is not a numeric IPv4 or IPv6 address");
}

SocketAddress SocketAddress::from(const sockaddr* sa) noexcept {
    SocketAddress a;
    if (sa == nullptr)
        return a;
    if (sa->sa_family == AF_INET6)
        std::memcpy(&a.storage.v6, sa, sizeof(sockaddr_in6));
    else if (sa->sa_family == AF_INET)
        std::memcpy(&a.storage.v4, sa, sizeof(sockaddr_in));
    return a;
}

socklen_t SocketAddress::length() const noexcept {
    return storage.ss_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
}

std::uint16_t SocketAddress::port() const noexcept {
    if (storage.ss_family == AF_INET6) {
        return ntohs(storage.v6.sin6_port);
    }
    return ntohs(storage.v4.sin_port);
}

std::string SocketAddress::toString() const {
    char buf[INET6_ADDRSTRLEN] = {};
    if (storage.ss_family == AF_INET6) {
        inet_ntop(AF_INET6, &storage.v6.sin6_addr, buf, sizeof buf);
        return "[" + std::string(buf) + "]:" + std::to_string(port());
    }
    inet_ntop(AF_INET, &storage.v4.sin_addr, buf, sizeof buf);
    return std::string(buf) + ":" + std::to_string(port());
}

// ---- UdpSocket

UdpSocket::UdpSocket(Loop& loop, bool batched)
    : Handle(loop, reinterpret_cast<uv_handle_t*>(&udp_)),
      batched_(batched),
      bufferSize_(batched ? kBatch * kSlot : kSmallBuffer) {
    int rc = uv_udp_init_ex(loop.raw(), &udp_, batched ? (AF_UNSPEC | UV_UDP_RECVMMSG) : AF_UNSPEC);
    if (rc != 0)
        throw std::runtime_error(std::string("uv_udp_init: ") + uv_strerror(rc));
    udp_.data = static_cast<Handle*>(this);
    // Default-initialised: a batched socket's 1 MiB is only touched where datagrams land.
    buffer_.reset(new std::uint8_t[bufferSize_]);
}

Result<void> UdpSocket::bind(const SocketAddress& addr) {
    unsigned flags = addr.storage.ss_family == AF_INET6 ? UV_UDP_IPV6ONLY : 0;
    int rc = uv_udp_bind(&udp_, addr.get(), flags);
    if (rc != 0)
        return uvError(("bind " + addr.toString()).c_str(), rc);
    return {};
}

Result<void> UdpSocket::startReceive(ReceiveCallback cb) {
    cb_ = std::move(cb);
    int rc = uv_udp_recv_start(&udp_, &UdpSocket::onAlloc, &UdpSocket::onRecv);
    if (rc != 0)
        return uvError("uv_udp_recv_start", rc);
    return {};
}

void UdpSocket::stopReceive() noexcept {
    uv_udp_recv_stop(&udp_);
}

void UdpSocket::onAlloc(uv_handle_t* h, std::size_t, uv_buf_t* buf) noexcept {
    auto* self = static_cast<UdpSocket*>(static_cast<Handle*>(h->data));
    buf->base = reinterpret_cast<char*>(self->buffer_.get());
    buf->len = self->bufferSize_;
}

void UdpSocket::onRecv(uv_udp_t* u, ssize_t n, const uv_buf_t* buf, const sockaddr* from,
                       unsigned flags) noexcept {
    auto* self = static_cast<UdpSocket*>(static_cast<Handle*>(u->data));
    if ((flags & UV_UDP_MMSG_FREE) != 0)
        return;  // the end of one recvmmsg batch; the buffer is ours
    if (n <= 0 || from == nullptr)
        return;  // n == 0 with from == nullptr: nothing more to read
    // A datagram larger than the buffer (or its recvmmsg slot) is truncated by the kernel:
    // report it as too large by handing over a view as long as the whole slot, longer than any
    // valid message.
    std::size_t size = static_cast<std::size_t>(n);
    if ((flags & UV_UDP_PARTIAL) != 0)
        size = self->batched_ ? kSlot : kSmallBuffer;
    guard("udp receive", [&] {
        if (self->cb_) {
            self->cb_(ByteView(reinterpret_cast<const std::uint8_t*>(buf->base), size), from);
        }
    });
}

namespace {
struct SendRequest {
    uv_udp_send_t req;
    Bytes data;
};
}  // namespace

Result<void> UdpSocket::send(const sockaddr* to, ByteView data) {
    uv_buf_t b = uv_buf_init(const_cast<char*>(reinterpret_cast<const char*>(data.data())),
                             static_cast<unsigned>(data.size()));
    int rc = uv_udp_try_send(&udp_, &b, 1, to);
    if (rc >= 0)
        return {};
    if (rc != UV_EAGAIN) {
        ++sendErrors_;
        return uvError("udp send", rc);
    }
    auto* r = new SendRequest{};
    r->data.assign(data.begin(), data.end());
    r->req.data = this;
    uv_buf_t qb =
        uv_buf_init(reinterpret_cast<char*>(r->data.data()), static_cast<unsigned>(r->data.size()));
    rc = uv_udp_send(&r->req, &udp_, &qb, 1, to, [](uv_udp_send_t* req, int status) {
        auto* sr = reinterpret_cast<SendRequest*>(req);
        if (status != 0)
            ++static_cast<UdpSocket*>(req->data)->sendErrors_;
        delete sr;
    });
    if (rc != 0) {
        delete r;
        ++sendErrors_;
        return uvError("udp send", rc);
    }
    return {};
}

Result<SocketAddress> UdpSocket::localAddress() const {
    SocketAddress a;
    int len = sizeof a.storage;
    int rc = uv_udp_getsockname(&udp_, reinterpret_cast<sockaddr*>(&a.storage), &len);
    if (rc != 0)
        return uvError("uv_udp_getsockname", rc);
    return a;
}

Result<int> UdpSocket::setReceiveBuffer(int octets) {
    int value = octets;
    int rc = uv_recv_buffer_size(reinterpret_cast<uv_handle_t*>(&udp_), &value);
    if (rc != 0)
        return uvError("SO_RCVBUF", rc);
    int effective = 0;
    rc = uv_recv_buffer_size(reinterpret_cast<uv_handle_t*>(&udp_), &effective);
    if (rc != 0)
        return uvError("SO_RCVBUF", rc);
    return effective;
}

// ---- Poll

Poll::Poll(Loop& loop, int fd) : Handle(loop, reinterpret_cast<uv_handle_t*>(&poll_)) {
    int rc = uv_poll_init(loop.raw(), &poll_, fd);
    if (rc != 0)
        throw std::runtime_error(std::string("uv_poll_init: ") + uv_strerror(rc));
    poll_.data = static_cast<Handle*>(this);
}

Result<void> Poll::start(int events, Callback cb) {
    cb_ = std::move(cb);
    int rc = uv_poll_start(&poll_, events, &Poll::onPoll);
    if (rc != 0)
        return uvError("uv_poll_start", rc);
    return {};
}

void Poll::stop() noexcept {
    uv_poll_stop(&poll_);
}

void Poll::onPoll(uv_poll_t* p, int status, int events) noexcept {
    auto* self = static_cast<Poll*>(static_cast<Handle*>(p->data));
    guard("poll", [self, status, events] {
        if (self->cb_)
            self->cb_(status, events);
    });
}

// ---- Check

Check::Check(Loop& loop) : Handle(loop, reinterpret_cast<uv_handle_t*>(&check_)) {
    int rc = uv_check_init(loop.raw(), &check_);
    if (rc != 0)
        throw std::runtime_error(std::string("uv_check_init: ") + uv_strerror(rc));
    check_.data = static_cast<Handle*>(this);
}

Result<void> Check::start(Callback cb) {
    cb_ = std::move(cb);
    int rc = uv_check_start(&check_, &Check::onCheck);
    if (rc != 0)
        return uvError("uv_check_start", rc);
    return {};
}

void Check::stop() noexcept {
    uv_check_stop(&check_);
}

void Check::onCheck(uv_check_t* c) noexcept {
    auto* self = static_cast<Check*>(static_cast<Handle*>(c->data));
    guard("check", [self] {
        if (self->cb_)
            self->cb_();
    });
}

// ---- StreamConnection

StreamConnection::StreamConnection(Loop& loop, bool isUnix)
    : Handle(loop, reinterpret_cast<uv_handle_t*>(&u_)), unix_(isUnix) {
    int rc = isUnix ? uv_pipe_init(loop.raw(), &u_.pipe, 0) : uv_tcp_init(loop.raw(), &u_.tcp);
    if (rc != 0)
        throw std::runtime_error(std::string("stream init: ") + uv_strerror(rc));
    u_.pipe.data = static_cast<Handle*>(this);  // the same field in both members
    acceptedMs_ = loop.nowMs();
}

StreamConnection::~StreamConnection() {
    if (onClosed_) {
        auto cb = std::move(onClosed_);
        guard("stream closed", [&cb] { cb(); });
    }
}

Result<void> StreamConnection::startRead(DataCallback onData, EndCallback onEnd) {
    onData_ = std::move(onData);
    onEnd_ = std::move(onEnd);
    int rc = uv_read_start(stream(), &StreamConnection::onAlloc, &StreamConnection::onRead);
    if (rc != 0)
        return uvError("uv_read_start", rc);
    return {};
}

void StreamConnection::stopRead() noexcept {
    uv_read_stop(stream());
}

void StreamConnection::onAlloc(uv_handle_t* h, std::size_t, uv_buf_t* buf) noexcept {
    auto* self = static_cast<StreamConnection*>(static_cast<Handle*>(h->data));
    buf->base = reinterpret_cast<char*>(self->buffer_);
    buf->len = sizeof self->buffer_;
}

void StreamConnection::onRead(uv_stream_t* s, ssize_t n, const uv_buf_t* buf) noexcept {
    auto* self = static_cast<StreamConnection*>(static_cast<Handle*>(s->data));
    if (n == 0 || self->closing())
        return;
    if (n < 0) {
        uv_read_stop(s);
        guard("stream end", [self] {
            if (self->onEnd_)
                self->onEnd_(*self);
        });
        self->close();
        return;
    }
    guard("stream read", [&] {
        if (self->onData_)
            self->onData_(*self, ByteView(reinterpret_cast<const std::uint8_t*>(buf->base),
                                          static_cast<std::size_t>(n)));
    });
}

namespace {
struct WriteRequest {
    uv_write_t req;
    std::string data;
};
}  // namespace

void StreamConnection::write(std::string data) {
    if (closing())
        return;
    auto* r = new WriteRequest{};
    r->data = std::move(data);
    r->req.data = this;
    uv_buf_t b = uv_buf_init(r->data.data(), static_cast<unsigned>(r->data.size()));
    int rc = uv_write(&r->req, stream(), &b, 1, [](uv_write_t* req, int status) {
        auto* wr = reinterpret_cast<WriteRequest*>(req);
        auto* self = static_cast<StreamConnection*>(req->data);
        delete wr;
        // A cancelled write (UV_ECANCELED) comes while the handle closes: do nothing.
        if (status == UV_ECANCELED)
            return;
        --self->pendingWrites_;
        if (status != 0 || (self->closeWhenWritten_ && self->pendingWrites_ == 0))
            self->close();
    });
    if (rc != 0) {
        delete r;
        close();
        return;
    }
    ++pendingWrites_;
}

void StreamConnection::closeAfterWrites() noexcept {
    closeWhenWritten_ = true;
    if (pendingWrites_ == 0)
        close();
}

int StreamConnection::fd() const noexcept {
    uv_os_fd_t f = -1;
    if (uv_fileno(reinterpret_cast<const uv_handle_t*>(&u_), &f) != 0)
        return -1;
    return f;
}

Result<ucred> StreamConnection::peerCredentials() const {
    ucred c{};
    socklen_t len = sizeof c;
    const int f = fd();
    if (!unix_ || f < 0 || ::getsockopt(f, SOL_SOCKET, SO_PEERCRED, &c, &len) != 0)
        return makeError(NetErrc::uv, "SO_PEERCRED unavailable");
    return c;
}

// ---- StreamServer

StreamServer::StreamServer(Loop& loop, bool isUnix)
    : Handle(loop, reinterpret_cast<uv_handle_t*>(&u_)), unix_(isUnix) {
    int rc = isUnix ? uv_pipe_init(loop.raw(), &u_.pipe, 0) : uv_tcp_init(loop.raw(), &u_.tcp);
    if (rc != 0)
        throw std::runtime_error(std::string("stream init: ") + uv_strerror(rc));
    u_.pipe.data = static_cast<Handle*>(this);  // the same field in both members
}

Result<void> StreamServer::listenUnix(const std::string& path, AcceptCallback cb, int backlog) {
    if (!unix_)
        return makeError(NetErrc::address, "not a UNIX stream server");
    cb_ = std::move(cb);
    ::unlink(path.c_str());
    int rc = uv_pipe_bind(&u_.pipe, path.c_str());
    if (rc != 0)
        return uvError(("bind " + path).c_str(), rc);
    rc = uv_listen(reinterpret_cast<uv_stream_t*>(&u_), backlog, &StreamServer::onConnection);
    if (rc != 0)
        return uvError(("listen " + path).c_str(), rc);
    return {};
}

Result<void> StreamServer::listenTcp(const SocketAddress& addr, AcceptCallback cb, int backlog) {
    if (unix_)
        return makeError(NetErrc::address, "not a TCP stream server");
    cb_ = std::move(cb);
    int rc =
        uv_tcp_bind(&u_.tcp, addr.get(), addr.storage.ss_family == AF_INET6 ? UV_TCP_IPV6ONLY : 0);
    if (rc == 0)
        rc = uv_listen(reinterpret_cast<uv_stream_t*>(&u_), backlog, &StreamServer::onConnection);
    if (rc != 0)
        return uvError(("listen " + addr.toString()).c_str(), rc);
    return {};
}

Result<SocketAddress> StreamServer::localAddress() const {
    SocketAddress a;
    int len = sizeof a.storage;
    if (unix_)
        return makeError(NetErrc::address, "a UNIX stream server has no socket address");
    int rc = uv_tcp_getsockname(&u_.tcp, reinterpret_cast<sockaddr*>(&a.storage), &len);
    if (rc != 0)
        return uvError("uv_tcp_getsockname", rc);
    return a;
}

void StreamServer::onConnection(uv_stream_t* s, int status) noexcept {
    auto* self = static_cast<StreamServer*>(static_cast<Handle*>(s->data));
    if (status != 0)
        return;
    guard("stream accept", [self, s] {
        auto* c = new StreamConnection(self->loop(), self->unix_);
        if (uv_accept(s, c->stream()) != 0) {
            c->close();
            return;
        }
        if (self->cb_)
            self->cb_(*c);
    });
}

}  // namespace best::net
