// The uplink sink (docs/hsed.md "Uplink sink"): the payload of every MAC-valid UP message goes to
// a UNIX datagram socket as one frame, Session ID (4 octets, big-endian) then the payload.
//
// The socket is connected to the sink's path, so the kernel resolves the path once and a full
// sink queue (net.unix.max_dgram_qlen datagrams) can be waited for. Frames queued by the loop's
// I/O callbacks leave in one sendmmsg per loop iteration (a Check handle); frames that find the
// sink's queue full wait, in order, in a bounded backlog until the socket is writable again;
// newer frames past the backlog are dropped and counted (tail drop). While no sink is bound (or
// it went away) frames are dropped and counted; each frame first tries to connect again (one
// cheap failing connect(2)), so a consumer that binds late loses nothing after it binds.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "common/bytes.h"
#include "common/result.h"
#include "emsdp/header.h"
#include "net/loop.h"

namespace best::hse {

enum class UplinkSinkErrc { bad_path = 1, socket };
inline ErrorDomain errorDomainOf(UplinkSinkErrc) {
    return ErrorDomain::io;
}

class UplinkSink {
public:
    struct Counts {
        std::uint64_t delivered = 0;      // frames the sink's socket took
        std::uint64_t droppedFull = 0;    // the sink's queue and the backlog were both full
        std::uint64_t droppedNoSink = 0;  // nothing bound at the path, or a send error
    };

    // backlog: frames kept while the sink's queue is full (0: none, drop at once).
    UplinkSink(net::Loop& loop, std::string path, std::size_t backlog);
    ~UplinkSink();
    UplinkSink(const UplinkSink&) = delete;
    UplinkSink& operator=(const UplinkSink&) = delete;

    // Creates the socket and tries the sink; an unbound sink is not an error (frames are
    // dropped, counted, until it is bound).
    Result<void> open();
    // Queues one frame; it leaves at the end of this loop iteration.
    void deliver(std::uint32_t sessionId, ByteView payload);
    // Sends what is queued, as far as the sink takes it (also called by the Check handle).
    void flush();
    // Closes the handles (before the loop ends) and the socket.
    void close() noexcept;

    const Counts& counts() const noexcept { return counts_; }
    std::size_t queued() const noexcept { return size_; }
    bool connected() const noexcept { return connected_; }

private:
    static constexpr std::size_t kFrameMax = 4 + emsdp::kMaxDatagram;
    struct Frame {  // no initialisers: the ring is only touched where frames are written
        std::uint16_t length;
        std::uint8_t data[kFrameMax];
    };
    bool tryConnect();
    void disconnected(int err);
    void waitWritable();
    // Queue capacity: the backlog plus one batch (what one loop iteration may queue).
    std::size_t capacity() const noexcept { return backlog_ + kBatch; }

    static constexpr std::size_t kBatch = 32;
    net::Loop& loop_;
    std::string path_;
    std::size_t backlog_;
    int fd_ = -1;
    bool connected_ = false;
    bool waitingWritable_ = false;
    bool checkRunning_ = false;
    net::HandlePtr<net::Poll> poll_;
    net::HandlePtr<net::Check> check_;
    std::unique_ptr<Frame[]> ring_;  // capacity() frames, allocated in open()
    std::size_t head_ = 0;
    std::size_t size_ = 0;
    Counts counts_;
};

}  // namespace best::hse
