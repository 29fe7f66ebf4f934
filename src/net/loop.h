// A thin libuv wrapper, the uvw way (conventions 4): handles are created by the loop and never
// move; close() is idempotent; a handle's memory is freed in its close callback; the loop
// outlives its handles (its destructor closes what is left and runs until all are freed); no
// exception crosses a C callback (each callback body runs inside guard(), which logs).
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>

#include <uv.h>

#include "common/bytes.h"
#include "common/result.h"

namespace best::net {

enum class NetErrc { uv = 1, address };
inline ErrorDomain errorDomainOf(NetErrc) {
    return ErrorDomain::net;
}
tl::unexpected<Error> uvError(const char* what, int rc);

// Runs f; an escaping exception is logged, never propagated into libuv.
template <typename F>
void guard(const char* where, F&& f) noexcept;
void logCallbackException(const char* where, const char* what) noexcept;

template <typename F>
void guard(const char* where, F&& f) noexcept {
    try {
        f();
    } catch (const std::exception& e) {
        logCallbackException(where, e.what());
    } catch (...) {
        logCallbackException(where, "unknown exception");
    }
}

class Loop;

// Base of every handle. Owned by the loop until closed; users hold a HandlePtr.
class Handle {
public:
    Handle(const Handle&) = delete;
    Handle& operator=(const Handle&) = delete;
    Handle(Handle&&) = delete;
    Handle& operator=(Handle&&) = delete;

    void close() noexcept;
    bool closing() const noexcept;
    Loop& loop() const noexcept { return loop_; }

protected:
    Handle(Loop& loop, uv_handle_t* h) noexcept;
    virtual ~Handle() = default;
    uv_handle_t* rawHandle() const noexcept { return handle_; }

private:
    friend class Loop;
    static void onClose(uv_handle_t* h) noexcept;
    Loop& loop_;
    uv_handle_t* handle_;
};

struct CloseHandle {
    void operator()(Handle* h) const noexcept {
        if (h != nullptr)
            h->close();
    }
};
template <typename T>
using HandlePtr = std::unique_ptr<T, CloseHandle>;

class Loop {
public:
    Loop();
    ~Loop();
    Loop(const Loop&) = delete;
    Loop& operator=(const Loop&) = delete;

    uv_loop_t* raw() noexcept { return &loop_; }
    int run(uv_run_mode mode = UV_RUN_DEFAULT) noexcept { return uv_run(&loop_, mode); }
    void stop() noexcept { uv_stop(&loop_); }
    std::uint64_t nowMs() noexcept { return uv_now(&loop_); }

    template <typename T, typename... Args>
    HandlePtr<T> make(Args&&... args) {
        return HandlePtr<T>(new T(*this, std::forward<Args>(args)...));
    }

private:
    uv_loop_t loop_;
};

class Timer final : public Handle {
public:
    using Callback = std::function<void()>;
    void start(std::uint64_t timeoutMs, std::uint64_t repeatMs, Callback cb);
    void stop() noexcept;

private:
    friend class Loop;
    explicit Timer(Loop& loop);
    static void onTimer(uv_timer_t* t) noexcept;
    uv_timer_t timer_;
    Callback cb_;
};

// Wakes the loop from another thread; callbacks may coalesce (libuv semantics).
class Async final : public Handle {
public:
    using Callback = std::function<void()>;
    void send() noexcept { uv_async_send(&async_); }

private:
    friend class Loop;
    Async(Loop& loop, Callback cb);
    static void onAsync(uv_async_t* a) noexcept;
    uv_async_t async_;
    Callback cb_;
};

class Signal final : public Handle {
public:
    using Callback = std::function<void(int)>;
    Result<void> start(int signum, Callback cb);

private:
    friend class Loop;
    explicit Signal(Loop& loop);
    static void onSignal(uv_signal_t* s, int signum) noexcept;
    uv_signal_t signal_;
    Callback cb_;
};

// A socket address that knows its length; parsed from numeric text. IPv4 or IPv6 only, so it
// holds 28 octets, not a sockaddr_storage's 128 (every session keeps its UE's address).
struct SocketAddress {
    union Storage {
        sa_family_t ss_family;  // the family field both members start with
        sockaddr_in v4;
        sockaddr_in6 v6;
    } storage{};
    static Result<SocketAddress> parse(const std::string& address, std::uint16_t port);
    static SocketAddress from(const sockaddr* sa) noexcept;
    const sockaddr* get() const noexcept { return reinterpret_cast<const sockaddr*>(&storage); }
    socklen_t length() const noexcept;
    std::uint16_t port() const noexcept;
    std::string toString() const;  // "1.2.3.4:5" or "[::1]:5"
};

class UdpSocket final : public Handle {
public:
    // data is valid only during the call.
    using ReceiveCallback = std::function<void(ByteView data, const sockaddr* from)>;
    Result<void> bind(const SocketAddress& addr);
    Result<void> startReceive(ReceiveCallback cb);
    void stopReceive() noexcept;
    // Sends now if the socket is writable, else queues a copy. Errors are counted, not thrown.
    Result<void> send(const sockaddr* to, ByteView data);
    Result<SocketAddress> localAddress() const;
    // Asks for an SO_RCVBUF of `octets` (after bind) and returns the size the kernel reports
    // afterwards: Linux doubles the request for its bookkeeping and caps the request at
    // net.core.rmem_max, so the result shows whether the cap applied.
    Result<int> setReceiveBuffer(int octets);
    std::uint64_t sendErrors() const noexcept { return sendErrors_; }

private:
    friend class Loop;
    // batched: up to kBatch datagrams per receive system call (libuv's recvmmsg; one 64 KiB
    // slot each, so no datagram is truncated); else one datagram per call into a 2 KiB buffer.
    explicit UdpSocket(Loop& loop, bool batched = false);
    static void onAlloc(uv_handle_t* h, std::size_t suggested, uv_buf_t* buf) noexcept;
    static void onRecv(uv_udp_t* u, ssize_t n, const uv_buf_t* buf, const sockaddr* from,
                       unsigned flags) noexcept;
    static constexpr std::size_t kSmallBuffer = 2048;
    static constexpr std::size_t kBatch = 16;
    static constexpr std::size_t kSlot = 64 * 1024;  // libuv's per-datagram slot for recvmmsg
    uv_udp_t udp_;
    ReceiveCallback cb_;
    std::uint64_t sendErrors_ = 0;
    bool batched_;
    std::unique_ptr<std::uint8_t[]> buffer_;
    std::size_t bufferSize_;
};

// Watches a file descriptor the caller owns (and closes after this handle).
class Poll final : public Handle {
public:
    using Callback = std::function<void(int status, int events)>;
    Result<void> start(int events, Callback cb);  // UV_READABLE, UV_WRITABLE
    void stop() noexcept;

private:
    friend class Loop;
    Poll(Loop& loop, int fd);
    static void onPoll(uv_poll_t* p, int status, int events) noexcept;
    uv_poll_t poll_;
    Callback cb_;
};

// Runs its callback once per loop iteration, right after the loop polled for I/O (to flush
// what the I/O callbacks of that iteration queued).
class Check final : public Handle {
public:
    using Callback = std::function<void()>;
    Result<void> start(Callback cb);
    void stop() noexcept;

private:
    friend class Loop;
    explicit Check(Loop& loop);
    static void onCheck(uv_check_t* c) noexcept;
    uv_check_t check_;
    Callback cb_;
};

// A connected byte stream (UNIX or TCP) accepted by a StreamServer. It owns itself: it lives
// until close() (or the peer's end, see startRead) and its memory is freed in the close
// callback, which first runs the onClosed callback (so an owner can forget its pointer).
class StreamConnection final : public Handle {
public:
    // data is valid only during the call.
    using DataCallback = std::function<void(StreamConnection&, ByteView data)>;
    // The peer ended the stream or reading failed; the connection is closed after the call.
    using EndCallback = std::function<void(StreamConnection&)>;
    Result<void> startRead(DataCallback onData, EndCallback onEnd);
    void stopRead() noexcept;
    // Queues a copy of `data`; a failed write closes the connection.
    void write(std::string data);
    // Closes once every queued write has completed (at once when none is pending).
    void closeAfterWrites() noexcept;
    void setOnClosed(std::function<void()> cb) { onClosed_ = std::move(cb); }
    int fd() const noexcept;
    bool isUnix() const noexcept { return unix_; }
    // SO_PEERCRED of a UNIX connection.
    Result<ucred> peerCredentials() const;
    std::uint64_t acceptedMs() const noexcept { return acceptedMs_; }

private:
    friend class Loop;
    friend class StreamServer;
    StreamConnection(Loop& loop, bool isUnix);
    ~StreamConnection() override;
    uv_stream_t* stream() noexcept { return reinterpret_cast<uv_stream_t*>(&u_); }
    static void onAlloc(uv_handle_t* h, std::size_t suggested, uv_buf_t* buf) noexcept;
    static void onRead(uv_stream_t* s, ssize_t n, const uv_buf_t* buf) noexcept;
    union Storage {
        uv_pipe_t pipe;
        uv_tcp_t tcp;
    } u_;
    bool unix_;
    DataCallback onData_;
    EndCallback onEnd_;
    std::function<void()> onClosed_;
    std::size_t pendingWrites_ = 0;
    bool closeWhenWritten_ = false;
    std::uint64_t acceptedMs_ = 0;
    alignas(16) std::uint8_t buffer_[4096];
};

// A listening UNIX or TCP stream socket. Each accepted connection is handed to the callback
// once; it owns itself from then on (StreamConnection).
class StreamServer final : public Handle {
public:
    using AcceptCallback = std::function<void(StreamConnection&)>;
    // Binds `path` (a stale socket file is removed first) and listens. The caller sets the
    // file's owner and mode.
    Result<void> listenUnix(const std::string& path, AcceptCallback cb, int backlog = 16);
    Result<void> listenTcp(const SocketAddress& addr, AcceptCallback cb, int backlog = 16);
    Result<SocketAddress> localAddress() const;  // TCP only

private:
    friend class Loop;
    StreamServer(Loop& loop, bool isUnix);
    static void onConnection(uv_stream_t* s, int status) noexcept;
    union Storage {
        uv_pipe_t pipe;
        uv_tcp_t tcp;
    } u_;
    bool unix_;
    AcceptCallback cb_;
};

}  // namespace best::net
