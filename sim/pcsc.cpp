#include "sim/pcsc.h"

#include <PCSC/pcsclite.h>
#include <fnmatch.h>

#include <cstdio>
#include <string>

#include "sim/sim_error.h"

namespace best::sim {
namespace {

using Clock = std::chrono::steady_clock;

// "\\?PnP?\Notification": a pseudo reader whose state changes when readers come and go.
constexpr char kPnpReader[] = "\\\\?PnP?\\Notification";

std::string codeHex(LONG rv) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "0x%08lx", static_cast<unsigned long>(rv) & 0xFFFFFFFFUL);
    return buf;
}

std::string quoted(std::string_view reader) {
    return "'" + std::string(reader) + "'";
}

DWORD remainingMs(Clock::time_point deadline) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    return left.count() <= 0 ? 0 : static_cast<DWORD>(left.count());
}

}  // namespace

void ContextHandle::reset() noexcept {
    if (valid_)
        SCardReleaseContext(ctx_);
    valid_ = false;
    ctx_ = 0;
}

void CardHandle::reset(DWORD disposition) noexcept {
    if (valid_)
        SCardDisconnect(h_, disposition);
    valid_ = false;
    h_ = 0;
}

tl::unexpected<Error> pcscError(std::string_view call, LONG rv, std::string_view reader) {
    std::string where = reader.empty() ? std::string() : " (reader " + quoted(reader) + ")";
    std::string detail =
        std::string(call) + where + ": " + pcsc_stringify_error(rv) + " (" + codeHex(rv) + ")";
    switch (rv) {
        case SCARD_E_NO_SERVICE:
        case SCARD_E_SERVICE_STOPPED:
            return makeError(SimErrc::no_service,
                             "pcscd is not running (" + detail +
                                 "); if it was restarted, open a new PC/SC context");
        case SCARD_E_NO_READERS_AVAILABLE:
        case SCARD_E_UNKNOWN_READER:
        case SCARD_E_READER_UNAVAILABLE:
            return makeError(SimErrc::no_reader, "reader not available: " + detail);
        case SCARD_E_NO_SMARTCARD:
            return makeError(SimErrc::no_card, "no card in the reader: " + detail);
        case SCARD_W_REMOVED_CARD:
            return makeError(SimErrc::card_removed, "card removed: " + detail);
        case SCARD_W_RESET_CARD:
            return makeError(SimErrc::card_reset, "card reset: " + detail);
        case SCARD_E_TIMEOUT:
        case SCARD_E_CANCELLED:
            return makeError(SimErrc::timeout, detail);
        default:
            return makeError(SimErrc::pcsc, detail);
    }
}

bool readerMatches(std::string_view pattern, std::string_view name) {
    if (pattern.empty())
        return true;
    if (pattern.find_first_of("*?[") == std::string_view::npos)
        return name.find(pattern) != std::string_view::npos;
    return ::fnmatch(std::string(pattern).c_str(), std::string(name).c_str(), 0) == 0;
}

Result<PcscClient> PcscClient::open() {
    SCARDCONTEXT ctx = 0;
    LONG rv = SCardEstablishContext(SCARD_SCOPE_SYSTEM, nullptr, nullptr, &ctx);
    if (rv != SCARD_S_SUCCESS)
        return pcscError("SCardEstablishContext", rv);
    return PcscClient(ContextHandle(ctx));
}

Result<std::vector<std::string>> PcscClient::readers() {
    DWORD len = 0;
    LONG rv = SCardListReaders(ctx_.get(), nullptr, nullptr, &len);
    if (rv == SCARD_E_NO_READERS_AVAILABLE)
        return std::vector<std::string>{};
    if (rv != SCARD_S_SUCCESS)
        return pcscError("SCardListReaders", rv);
    std::string buf(len, '\0');
    rv = SCardListReaders(ctx_.get(), nullptr, buf.data(), &len);
    if (rv == SCARD_E_NO_READERS_AVAILABLE)
        return std::vector<std::string>{};
    if (rv != SCARD_S_SUCCESS)
        return pcscError("SCardListReaders", rv);
    std::vector<std::string> out;
    for (std::size_t i = 0; i < buf.size() && i < len;) {
        std::size_t end = buf.find('\0', i);
        if (end == std::string::npos || end == i)
            break;
        out.push_back(buf.substr(i, end - i));
        i = end + 1;
    }
    return out;
}

Result<std::vector<std::string>> PcscClient::matchingReaders(std::string_view pattern) {
    auto all = readers();
    if (!all)
        return makeError(all.error());
    std::vector<std::string> out;
    for (auto& r : *all)
        if (readerMatches(pattern, r))
            out.push_back(std::move(r));
    return out;
}

Result<std::string> PcscClient::waitForCard(std::string_view pattern,
                                            std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    DWORD pnpState = SCARD_STATE_UNAWARE;
    for (;;) {
        auto names = matchingReaders(pattern);
        if (!names)
            return makeError(names.error());
        std::vector<SCARD_READERSTATE> states(names->size() + 1);
        for (std::size_t i = 0; i < names->size(); ++i) {
            states[i].szReader = (*names)[i].c_str();
            states[i].dwCurrentState = SCARD_STATE_UNAWARE;
        }
        states.back().szReader = kPnpReader;
        states.back().dwCurrentState = pnpState;

        // First pass: the current state of every reader, without waiting.
        LONG rv =
            SCardGetStatusChange(ctx_.get(), 0, states.data(), static_cast<DWORD>(states.size()));
        if (rv != SCARD_S_SUCCESS && rv != SCARD_E_TIMEOUT)
            return pcscError("SCardGetStatusChange", rv);
        for (;;) {
            for (std::size_t i = 0; i < names->size(); ++i) {
                DWORD s = states[i].dwEventState;
                if ((s & SCARD_STATE_PRESENT) && !(s & SCARD_STATE_MUTE))
                    return (*names)[i];
            }
            DWORD left = remainingMs(deadline);
            if (left == 0) {
                std::string msg = names->empty()
                                      ? "no reader matching '" + std::string(pattern) + "'"
                                      : "no card in reader '" + (*names)[0] + "'";
                return makeError(names->empty() ? SimErrc::no_reader : SimErrc::no_card,
                                 msg + " after " + std::to_string(timeout.count()) + " ms");
            }
            for (auto& st : states)
                st.dwCurrentState = st.dwEventState & ~SCARD_STATE_CHANGED;
            rv = SCardGetStatusChange(ctx_.get(), left, states.data(),
                                      static_cast<DWORD>(states.size()));
            if (rv == SCARD_E_TIMEOUT)
                continue;  // re-checks the states, then reports the timeout
            if (rv == SCARD_E_CANCELLED)
                return makeError(SimErrc::timeout, "waiting for a card was cancelled");
            if (rv != SCARD_S_SUCCESS)
                return pcscError("SCardGetStatusChange", rv);
            if (states.back().dwEventState & SCARD_STATE_CHANGED) {
                pnpState = states.back().dwEventState & ~SCARD_STATE_CHANGED;
                break;  // the reader list changed: list again
            }
        }
    }
}

Result<void> PcscClient::waitForRemoval(const std::string& reader,
                                        std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    SCARD_READERSTATE st{};
    st.szReader = reader.c_str();
    st.dwCurrentState = SCARD_STATE_UNAWARE;
    DWORD wait = 0;
    for (;;) {
        LONG rv = SCardGetStatusChange(ctx_.get(), wait, &st, 1);
        if (rv == SCARD_E_UNKNOWN_READER || rv == SCARD_E_READER_UNAVAILABLE)
            return {};  // the reader itself went away
        if (rv != SCARD_S_SUCCESS && rv != SCARD_E_TIMEOUT)
            return pcscError("SCardGetStatusChange", rv, reader);
        if (st.dwEventState & (SCARD_STATE_EMPTY | SCARD_STATE_UNAVAILABLE | SCARD_STATE_UNKNOWN))
            return {};
        wait = remainingMs(deadline);
        if (wait == 0)
            return makeError(SimErrc::timeout, "card still in reader '" + reader + "' after " +
                                                   std::to_string(timeout.count()) + " ms");
        st.dwCurrentState = st.dwEventState & ~SCARD_STATE_CHANGED;
    }
}

Result<CardConnection> PcscClient::connect(const std::string& reader) {
    SCARDHANDLE h = 0;
    DWORD protocol = 0;
    LONG rv = SCardConnect(ctx_.get(), reader.c_str(), SCARD_SHARE_SHARED,
                           SCARD_PROTOCOL_T0 | SCARD_PROTOCOL_T1, &h, &protocol);
    if (rv != SCARD_S_SUCCESS)
        return pcscError("SCardConnect", rv, reader);
    return CardConnection(ctx_.get(), CardHandle(h), protocol, reader);
}

void PcscClient::cancel() noexcept {
    SCardCancel(ctx_.get());
}

tl::unexpected<Error> CardConnection::reconnectOnce(const std::string& cause, bool waitForPcscd) {
    if (waitForPcscd) {
        SCARD_READERSTATE st{};
        st.szReader = reader_.c_str();
        st.dwCurrentState = SCARD_STATE_UNAWARE;
        if (SCardGetStatusChange(ctx_, 0, &st, 1) == SCARD_S_SUCCESS &&
            (st.dwEventState & SCARD_STATE_PRESENT)) {
            st.dwCurrentState = st.dwEventState & ~SCARD_STATE_CHANGED;
            SCardGetStatusChange(ctx_, kSettleMs, &st, 1);  // a change, or the card is still there
        }
    }
    DWORD protocol = 0;
    LONG rv = SCardReconnect(handle_.get(), SCARD_SHARE_SHARED,
                             SCARD_PROTOCOL_T0 | SCARD_PROTOCOL_T1, SCARD_LEAVE_CARD, &protocol);
    if (rv != SCARD_S_SUCCESS) {
        auto e = pcscError("SCardReconnect", rv, reader_);
        if (e.value().code == static_cast<int>(SimErrc::no_service))
            return e;
        return makeError(SimErrc::card_removed,
                         "card in reader '" + reader_ + "' went away (" + cause +
                             ") and one reconnect failed: " + e.value().message);
    }
    protocol_ = protocol;
    return makeError(SimErrc::card_reset, "card in reader '" + reader_ +
                                              "' was reset or re-inserted (" + cause +
                                              "); reconnected once, its selection state is lost");
}

Result<std::size_t> CardConnection::transmit(ByteView command, MutableByteView response) {
    if (!handle_.isValid())
        return makeError(SimErrc::card_removed, "not connected to reader '" + reader_ + "'");
    DWORD len = static_cast<DWORD>(response.size());
    const SCARD_IO_REQUEST* pci = protocol_ == SCARD_PROTOCOL_T0 ? SCARD_PCI_T0 : SCARD_PCI_T1;
    LONG rv = SCardTransmit(handle_.get(), pci, command.data(), static_cast<DWORD>(command.size()),
                            nullptr, response.data(), &len);
    const std::string cause = std::string(pcsc_stringify_error(rv)) + ", " + codeHex(rv);
    switch (rv) {
        case SCARD_S_SUCCESS:
            if (len == 0)  // vpcd's way of reporting a virtual card that went away
                return reconnectOnce("empty response", true);
            return static_cast<std::size_t>(len);
        case SCARD_W_RESET_CARD:
        case SCARD_W_REMOVED_CARD:
        case SCARD_E_NO_SMARTCARD:
            return reconnectOnce(cause, false);
        case SCARD_W_UNPOWERED_CARD:
        case SCARD_W_UNRESPONSIVE_CARD:
        case SCARD_E_NOT_TRANSACTED:
        case SCARD_E_COMM_DATA_LOST:
        case SCARD_F_COMM_ERROR:
            return reconnectOnce(cause, true);
        default:
            return pcscError("SCardTransmit", rv, reader_);
    }
}

Result<Bytes> CardConnection::atr() {
    BYTE atr[MAX_ATR_SIZE];
    DWORD atrLen = sizeof atr;
    DWORD state = 0;
    DWORD protocol = 0;
    DWORD nameLen = 0;
    LONG rv = SCardStatus(handle_.get(), nullptr, &nameLen, &state, &protocol, atr, &atrLen);
    if (rv != SCARD_S_SUCCESS)
        return pcscError("SCardStatus", rv, reader_);
    return Bytes(atr, atr + atrLen);
}

}  // namespace best::sim
