#include "sim/apdu.h"

#include <algorithm>

#include "sim/sim_error.h"

namespace best::sim {
namespace {

// Wipes a stack buffer that may have held a PIN, CK or IK.
template <std::size_t N>
struct WipedArray {
    std::array<std::uint8_t, N> bytes{};
    ~WipedArray() { secureWipe(bytes.data(), N); }
};

constexpr int kMaxGetResponse = 64;  // bounds a card that keeps answering 61xx

std::uint16_t leFromSw2(std::uint8_t sw2) {
    return sw2 == 0 ? 256 : sw2;
}

}  // namespace

std::size_t CommandApdu::encode(MutableByteView out) const noexcept {
    if (data.size() > 255 || out.size() < kMaxCommand)
        return 0;
    std::size_t n = 0;
    out[n++] = cla;
    out[n++] = ins;
    out[n++] = p1;
    out[n++] = p2;
    if (!data.empty()) {
        out[n++] = static_cast<std::uint8_t>(data.size());
        std::copy(data.begin(), data.end(), out.begin() + static_cast<std::ptrdiff_t>(n));
        n += data.size();
    }
    if (le)
        out[n++] = static_cast<std::uint8_t>(*le >= 256 ? 0 : *le);
    return n;
}

Result<ResponseApdu> exchange(ApduTransport& transport, const CommandApdu& command) {
    WipedArray<kMaxCommand> cmd;
    WipedArray<kMaxResponse> rsp;
    WipedArray<kMaxAssembled> assembled;
    std::size_t assembledLen = 0;

    std::size_t cmdLen = command.encode(cmd.bytes);
    if (cmdLen == 0)
        return makeError(SimErrc::bad_response, "command APDU data longer than 255 octets");

    auto send = [&](std::size_t len) -> Result<std::uint16_t> {
        auto n = transport.transmit(ByteView(cmd.bytes.data(), len), rsp.bytes);
        if (!n)
            return makeError(n.error());
        if (*n < 2 || *n > kMaxResponse)
            return makeError(SimErrc::bad_response,
                             "response APDU of " + std::to_string(*n) + " octets");
        std::size_t dataLen = *n - 2;
        if (assembledLen + dataLen > kMaxAssembled)
            return makeError(SimErrc::bad_response, "response longer than 4096 octets");
        std::copy_n(rsp.bytes.begin(), dataLen,
                    assembled.bytes.begin() + static_cast<std::ptrdiff_t>(assembledLen));
        assembledLen += dataLen;
        return getBe16(rsp.bytes.data() + dataLen);
    };

    auto sw = send(cmdLen);
    if (!sw)
        return makeError(sw.error());

    // 6Cxx: wrong Le; the same command again with Le = xx (once).
    if ((*sw >> 8) == 0x6C) {
        CommandApdu again = command;
        again.le = leFromSw2(static_cast<std::uint8_t>(*sw));
        assembledLen = 0;
        cmdLen = again.encode(cmd.bytes);
        sw = send(cmdLen);
        if (!sw)
            return makeError(sw.error());
    }

    // 61xx (and the GSM 9Fxx): xx more octets wait for GET RESPONSE, possibly repeatedly.
    bool resentGetResponse = false;
    for (int round = 0; (*sw >> 8) == 0x61 || (*sw >> 8) == 0x9F; ++round) {
        if (round == kMaxGetResponse)
            return makeError(SimErrc::bad_response,
                             "card still announces data after 64 GET RESPONSE commands");
        CommandApdu get;
        get.cla = static_cast<std::uint8_t>(command.cla & 0x03);  // keep the logical channel
        get.ins = 0xC0;
        get.le = leFromSw2(static_cast<std::uint8_t>(*sw));
        cmdLen = get.encode(cmd.bytes);
        sw = send(cmdLen);
        if (!sw)
            return makeError(sw.error());
        if ((*sw >> 8) == 0x6C && !resentGetResponse) {
            resentGetResponse = true;
            get.le = leFromSw2(static_cast<std::uint8_t>(*sw));
            cmdLen = get.encode(cmd.bytes);
            sw = send(cmdLen);
            if (!sw)
                return makeError(sw.error());
        }
    }

    ResponseApdu out;
    out.sw = *sw;
    if (assembledLen > 0)
        out.data = SecureBuffer(ByteView(assembled.bytes.data(), assembledLen));
    return out;
}

}  // namespace best::sim
