// PC/SC client on pcsc-lite: handle owners, reader choice by name pattern, card insertion and
// removal followed with SCardGetStatusChange, and an ApduTransport over SCardTransmit.
// Every call blocks: run them on a worker thread, never on an event loop.
#pragma once

#include <PCSC/winscard.h>
#include <PCSC/wintypes.h>

#include <chrono>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"
#include "sim/apdu.h"

namespace best::sim {

// SCARDCONTEXT owner (conventions 1). Released with SCardReleaseContext.
class ContextHandle {
public:
    ContextHandle() noexcept = default;
    explicit ContextHandle(SCARDCONTEXT ctx) noexcept : ctx_(ctx), valid_(true) {}
    ContextHandle(ContextHandle&& o) noexcept
        : ctx_(o.ctx_), valid_(std::exchange(o.valid_, false)) {}
    ContextHandle& operator=(ContextHandle&& o) noexcept {
        if (this != &o) {
            reset();
            ctx_ = o.ctx_;
            valid_ = std::exchange(o.valid_, false);
        }
        return *this;
    }
    ContextHandle(const ContextHandle&) = delete;
    ContextHandle& operator=(const ContextHandle&) = delete;
    ~ContextHandle() { reset(); }

    [[nodiscard]] SCARDCONTEXT release() noexcept {
        valid_ = false;
        return ctx_;
    }
    void reset() noexcept;
    SCARDCONTEXT get() const noexcept { return ctx_; }
    bool isValid() const noexcept { return valid_; }

private:
    SCARDCONTEXT ctx_ = 0;
    bool valid_ = false;
};

// SCARDHANDLE owner. The destructor disconnects leaving the card as it is (SCARD_LEAVE_CARD).
class CardHandle {
public:
    CardHandle() noexcept = default;
    explicit CardHandle(SCARDHANDLE h) noexcept : h_(h), valid_(true) {}
    CardHandle(CardHandle&& o) noexcept : h_(o.h_), valid_(std::exchange(o.valid_, false)) {}
    CardHandle& operator=(CardHandle&& o) noexcept {
        if (this != &o) {
            reset();
            h_ = o.h_;
            valid_ = std::exchange(o.valid_, false);
        }
        return *this;
    }
    CardHandle(const CardHandle&) = delete;
    CardHandle& operator=(const CardHandle&) = delete;
    ~CardHandle() { reset(); }

    [[nodiscard]] SCARDHANDLE release() noexcept {
        valid_ = false;
        return h_;
    }
    void reset(DWORD disposition = SCARD_LEAVE_CARD) noexcept;
    SCARDHANDLE get() const noexcept { return h_; }
    bool isValid() const noexcept { return valid_; }

private:
    SCARDHANDLE h_ = 0;
    bool valid_ = false;
};

// The error for a failed PC/SC call: SCARD_E_NO_SERVICE is "pcscd is not running", the rest
// name the call, the reader and pcsc-lite's text with the code in hex.
tl::unexpected<Error> pcscError(std::string_view call, LONG rv, std::string_view reader = {});

// True when `name` matches `pattern`: a glob (fnmatch) when the pattern has * ? or [, else a
// substring test. An empty pattern matches every reader.
bool readerMatches(std::string_view pattern, std::string_view name);

class CardConnection;

// One PC/SC context. Move-only; connections made from it must not outlive it.
class PcscClient {
public:
    static Result<PcscClient> open();

    Result<std::vector<std::string>> readers();
    Result<std::vector<std::string>> matchingReaders(std::string_view pattern);
    // Waits until a reader matching `pattern` holds a (responsive) card and returns its name.
    // Readers plugged in meanwhile are picked up (\\?PnP?\Notification).
    Result<std::string> waitForCard(std::string_view pattern, std::chrono::milliseconds timeout);
    // Waits until `reader` holds no card (or is gone).
    Result<void> waitForRemoval(const std::string& reader, std::chrono::milliseconds timeout);
    Result<CardConnection> connect(const std::string& reader);
    // Ends a blocking waitFor*() from another thread (it returns SimErrc::timeout).
    void cancel() noexcept;

    SCARDCONTEXT native() const noexcept { return ctx_.get(); }

private:
    explicit PcscClient(ContextHandle ctx) : ctx_(std::move(ctx)) {}
    ContextHandle ctx_;
};

// A connected card. When a command fails because the card was reset, removed or stopped
// answering, transmit() reconnects once (SCardReconnect, leaving the card as it is). The
// command is not repeated (the card's selection state is gone): the caller gets
// SimErrc::card_reset and decides; when the reconnect fails it gets SimErrc::card_removed.
// After a failure that does not say what happened (no answer, empty answer) it first waits up
// to kSettle for pcscd to report the reader's new state: pcscd notices a vanished card only
// at its next poll. (Reconnecting with SCARD_RESET_CARD would find out at once, but a failed
// reset leaves pcscd 1.9.9 reporting the reader empty even after a card comes back.)
class CardConnection final : public ApduTransport {
public:
    CardConnection(CardConnection&&) noexcept = default;
    CardConnection& operator=(CardConnection&&) noexcept = default;

    Result<std::size_t> transmit(ByteView command, MutableByteView response) override;

    const std::string& reader() const noexcept { return reader_; }
    // SCARD_PROTOCOL_T0 or SCARD_PROTOCOL_T1.
    DWORD protocol() const noexcept { return protocol_; }
    // The card's ATR as pcscd reports it.
    Result<Bytes> atr();
    // Disconnects with the given disposition (SCARD_RESET_CARD, SCARD_LEAVE_CARD, ...).
    void disconnect(DWORD disposition) noexcept { handle_.reset(disposition); }

private:
    friend class PcscClient;
    static constexpr DWORD kSettleMs = 1000;

    CardConnection(SCARDCONTEXT ctx, CardHandle h, DWORD protocol, std::string reader)
        : ctx_(ctx), handle_(std::move(h)), protocol_(protocol), reader_(std::move(reader)) {}
    // After a lost card: one SCardReconnect, then the error that describes the outcome.
    tl::unexpected<Error> reconnectOnce(const std::string& cause, bool waitForPcscd);

    SCARDCONTEXT ctx_ = 0;  // the PcscClient's; not owned
    CardHandle handle_;
    DWORD protocol_ = 0;
    std::string reader_;
};

}  // namespace best::sim
