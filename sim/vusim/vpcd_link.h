// vpcd's protocol, card side (vsmartcard's vpcd driver in pcscd is the server): every message is
// a 2-octet big-endian length and that many octets. A 1-octet message is a control: 0 power off,
// 1 power on, 2 reset, 4 "send the ATR" (answered with the ATR); anything longer is a command
// APDU, answered with the response APDU.
#pragma once

#include <signal.h>

#include <atomic>
#include <cstdint>
#include <string>

#include "common/result.h"
#include "common/unique_fd.h"
#include "sim/vusim/card.h"

namespace best::sim::vusim {

inline constexpr std::uint8_t kVpcdPowerOff = 0;
inline constexpr std::uint8_t kVpcdPowerOn = 1;
inline constexpr std::uint8_t kVpcdReset = 2;
inline constexpr std::uint8_t kVpcdAtr = 4;

// TCP connection to vpcd with TCP_NODELAY set.
Result<UniqueFd> connectToVpcd(const std::string& host, std::uint16_t port);

enum class LinkEnd {
    closed,   // vpcd closed the connection (pcscd stopped, or the reader was shut down)
    stopped,  // `stop` became true
};

// Serves `card` on the connected socket `fd` until vpcd closes it or `stop` is set. TCP_QUICKACK
// is re-armed before every read: vpcd writes the length and the data separately, and a delayed
// ACK would stall each APDU by about 40 ms. While waiting for data the signal mask is `waitMask`
// when given (ppoll), so a signal blocked elsewhere interrupts only the wait.
Result<LinkEnd> serveVpcd(int fd, VirtualUsim& card, const std::atomic<bool>& stop,
                          const sigset_t* waitMask = nullptr);

}  // namespace best::sim::vusim
