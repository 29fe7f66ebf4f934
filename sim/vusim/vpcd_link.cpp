#include "sim/vusim/vpcd_link.h"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>

#include <array>
#include <cerrno>
#include <cstring>

#include "sim/sim_error.h"

namespace best::sim::vusim {
namespace {

constexpr std::size_t kMaxMessage = 4 + 65535 + 2;

// The receive buffer holds command APDUs (a PIN in VERIFY): wiped after every message.
struct LinkBuffers {
    std::array<std::uint8_t, 2 + kMaxMessage> in{};
    std::array<std::uint8_t, 2 + kMaxResponse> out{};
    ~LinkBuffers() {
        secureWipe(in.data(), in.size());
        secureWipe(out.data(), out.size());
    }
};

// vpcd writes a frame's length and its data in two writes. Once the length is in, the data follows
// within microseconds, so the link polls the socket for up to this long instead of sleeping in
// ppoll: it saves one sleep and wake-up per APDU (tens of microseconds on a VM).
constexpr long kPartialFrameSpinNs = 50'000;

long monotonicNs() {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1'000'000'000L + ts.tv_nsec;
}

void armQuickAck(int fd) {
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
}

Result<void> sendFrame(int fd, std::uint8_t* frame, std::size_t payloadLen) {
    putBe16(frame, static_cast<std::uint16_t>(payloadLen));
    std::size_t total = payloadLen + 2;
    std::size_t done = 0;
    while (done < total) {
        ssize_t n = ::send(fd, frame + done, total - done, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return makeError(SimErrc::io, "send to vpcd: " + errnoText(errno));
        done += static_cast<std::size_t>(n);
    }
    return {};
}

}  // namespace

Result<UniqueFd> connectToVpcd(const std::string& host, std::uint16_t port) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    addrinfo* res = nullptr;
    const std::string service = std::to_string(port);
    int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &res);
    if (rc != 0)
        return makeError(SimErrc::io, "resolve " + host + ": " + ::gai_strerror(rc));
    int lastErr = 0;
    UniqueFd fd;
    for (addrinfo* a = res; a; a = a->ai_next) {
        fd.reset(::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol));
        if (!fd.isValid()) {
            lastErr = errno;
            continue;
        }
        if (::connect(fd.get(), a->ai_addr, a->ai_addrlen) == 0)
            break;
        lastErr = errno;
        fd.reset();
    }
    ::freeaddrinfo(res);
    if (!fd.isValid())
        return makeError(SimErrc::io,
                         "connect to vpcd at " + host + ":" + service + ": " + errnoText(lastErr));
    int one = 1;
    ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

Result<LinkEnd> serveVpcd(int fd, VirtualUsim& card, const std::atomic<bool>& stop,
                          const sigset_t* waitMask) {
    LinkBuffers buf;
    std::size_t have = 0;
    for (;;) {
        // Complete frames in the buffer first.
        while (have >= 2) {
            const std::size_t len = getBe16(buf.in.data());
            if (have < 2 + len)
                break;
            const std::uint8_t* msg = buf.in.data() + 2;
            if (len == 1) {
                switch (msg[0]) {
                    case kVpcdPowerOff:
                    case kVpcdPowerOn:
                    case kVpcdReset:
                        card.reset();
                        break;
                    case kVpcdAtr: {
                        Bytes atr = card.atr();
                        std::memcpy(buf.out.data() + 2, atr.data(), atr.size());
                        if (auto s = sendFrame(fd, buf.out.data(), atr.size()); !s)
                            return makeError(s.error());
                        break;
                    }
                    default:
                        break;  // unknown control: ignored, as vpcd expects no answer
                }
            } else if (len > 1) {
                std::size_t n = card.process(ByteView(msg, len),
                                             MutableByteView(buf.out.data() + 2, kMaxResponse));
                auto s = sendFrame(fd, buf.out.data(), n);
                secureWipe(buf.out.data(), 2 + n);
                if (!s)
                    return makeError(s.error());
            }
            std::memmove(buf.in.data(), buf.in.data() + 2 + len, have - 2 - len);
            secureWipe(buf.in.data() + have - 2 - len, 2 + len);
            have -= 2 + len;
        }
        if (stop.load())
            return LinkEnd::stopped;
        if (have >= 2) {
            // The rest of a frame whose length arrived: read it without sleeping when it comes
            // within kPartialFrameSpinNs, else fall back to the wait below.
            const long until = monotonicNs() + kPartialFrameSpinNs;
            ssize_t n = -1;
            do {
                n = ::recv(fd, buf.in.data() + have, buf.in.size() - have, MSG_DONTWAIT);
            } while (n < 0 && (errno == EAGAIN || errno == EINTR) && monotonicNs() < until);
            if (n > 0) {
                have += static_cast<std::size_t>(n);
                continue;
            }
            if (n == 0)
                return LinkEnd::closed;
            if (errno == ECONNRESET)
                return LinkEnd::closed;
            if (errno != EAGAIN && errno != EINTR)
                return makeError(SimErrc::io, "recv from vpcd: " + errnoText(errno));
        }
        // Armed before the wait, the kernel ACKs vpcd's first segment (the length) as it
        // arrives, even while this process waits for a CPU; armed again before the read, it
        // flushes an ACK that was delayed anyway.
        armQuickAck(fd);
        pollfd p{fd, POLLIN, 0};
        int pr = waitMask ? ::ppoll(&p, 1, nullptr, waitMask) : ::poll(&p, 1, -1);
        if (pr < 0) {
            if (errno == EINTR)
                continue;
            return makeError(SimErrc::io, "poll on vpcd socket: " + errnoText(errno));
        }
        armQuickAck(fd);
        ssize_t n = ::recv(fd, buf.in.data() + have, buf.in.size() - have, MSG_DONTWAIT);
        if (n == 0)
            return LinkEnd::closed;
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            if (errno == ECONNRESET)
                return LinkEnd::closed;
            return makeError(SimErrc::io, "recv from vpcd: " + errnoText(errno));
        }
        have += static_cast<std::size_t>(n);
    }
}

}  // namespace best::sim::vusim
