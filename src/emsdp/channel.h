// One end of an EMSDP session: its keyed integrity / ciphering objects (keyed once: the hot
// path) and its four counters, with the receive check order of profile section 4:
// header -> Session ID -> KID equals the session's -> counter -> MAC -> TLVs.
//
// Receive flow at the HSE (the UE's is the mirror image):
//   auto r = route(datagram, Side::network);                 // receive.h
//   sessionRequest     -> parseSessionRequest(); A4 steps 5.. are the daemon's
//   unprotectedReject  -> look the session up (unknown_session), act only as 4.1/4.5/A14 allow
//   session            -> look the session up (unknown_session), then
//                         channel.openCp(datagram) or channel.openUp(datagram, plain)
// openCp/openUp rebuild a candidate COUNT, verify the MAC, and only then commit the counter.
// A failure is a Verdict: drop (count `reason`) or reject (send a MAC'd Message Reject with
// `cause` via sealCp, unless the message was itself a Message Reject).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>

#include "common/bytes.h"
#include "common/result.h"
#include "common/secure.h"
#include "crypto/eps_algorithms.h"
#include "crypto/key_hierarchy.h"
#include "emsdp/counter.h"
#include "emsdp/header.h"
#include "emsdp/key_slab.h"
#include "emsdp/message.h"
#include "emsdp/outcome.h"

namespace best::emsdp {

struct ChannelConfig {
    Side side = Side::network;  // the end this object is
    std::uint32_t sessionId = 0;
    std::uint8_t kid = 1;  // 1..7
    CounterScheme cpScheme = CounterScheme::n1;
    CounterScheme upScheme = CounterScheme::n1;
    bool upEnabled = true;     // false for KA-only: UP is dropped (up_not_allowed) and not sent
    bool upCiphering = false;  // the UP confidentiality service: EEA2 on UP payloads
};

// The channel configuration both ends derive from a Session Start (its header and body).
ChannelConfig channelConfigFor(Side side, const Header& sessionStartHeader,
                               const SessionStart& sessionStart) noexcept;

// The session's keys as used by EMSDP: CP-int, UP-int and UP-enc (CP is never ciphered). In
// UE-to-EAS mode the UP keys come from KSess_E2E and the CP keys from KSess.
struct ChannelKeys {
    Key128 cpInt;
    Key128 upInt;
    Key128 upEnc;

    static ChannelKeys from(const crypto::SessionKeys& k) { return {k.cpInt, k.upInt, k.upEnc}; }
};

// Counter state, for inspection and for restoring a session (tests, HA).
struct CounterSnapshot {
    std::uint64_t nextCpTx = 0;
    std::uint64_t nextUpTx = 0;
    std::optional<std::uint32_t> cpRxHighest;
    std::optional<std::uint32_t> upRxHighest;
    std::uint64_t upRxSeen = 0;

    friend bool operator==(const CounterSnapshot&, const CounterSnapshot&) = default;
};

// A CP message that passed every check. `body` points into the datagram.
struct ReceivedCp {
    Header header;
    std::uint32_t count = 0;
    Body body;
};

// A UP message that passed every check. `payload` is the plaintext: in the caller's buffer when
// it was deciphered, else a view of the datagram (integrity service, or verify-only relay).
struct ReceivedUp {
    Header header;
    std::uint32_t count = 0;
    ByteView payload;
    bool deciphered = false;
};

class SecureChannel {
public:
    // Owning form (the UE): keys the integrity and ciphering objects once. Fails on an invalid
    // config (KID 0) or when OpenSSL fails.
    static Result<SecureChannel> create(const ChannelConfig& config, const ChannelKeys& keys);
    // Slab form (the HSE, issue 6): the keys go to a slot of cache.slab() and the channel holds
    // only the slot; keyed contexts come from `cache` while the session is in use (re-keyed from
    // the slab after an eviction). The slot is wiped when the channel is destroyed. Errors: the
    // config's, and KeySlabErrc::full (ErrorDomain::generic) when every slot is in use. The
    // cache and its slab must outlive the channel.
    static Result<SecureChannel> create(const ChannelConfig& config, const ChannelKeys& keys,
                                        ContextCache& cache);

    SecureChannel(SecureChannel&&) noexcept = default;
    SecureChannel& operator=(SecureChannel&&) noexcept = default;
    SecureChannel(const SecureChannel&) = delete;
    SecureChannel& operator=(const SecureChannel&) = delete;

    const ChannelConfig& config() const noexcept { return config_; }
    bool closed() const noexcept { return closed_; }
    bool slabBacked() const noexcept { return static_cast<bool>(slot_); }

    // ---- sending (returns the datagram size written to `out`) ----
    // Any CP body this side sends, under the next CP COUNT. A Session Start uses n = 0 (and is
    // CP-DL COUNT 0 when sent first); everything else the announced CP scheme. Errors:
    // counter_exhausted when the next CP COUNT is 2^32-1 (send sealExhaustionTerminate()),
    // wrong_side, session_closed, datagram_too_large, buffer_too_small, invalid_value.
    Result<std::size_t> sealCp(const Body& body, MutableByteView out);
    // UP payload under the next UP COUNT (counter_exhausted at 2^32-1).
    Result<std::size_t> sealUp(ByteView payload, MutableByteView out);
    // A1: the next COUNT of either plane would be 2^32-1.
    bool exhaustionDue() const noexcept;
    // A1: Session Terminate Request with cause 0x13 under the next CP COUNT (2^32-1 allowed);
    // the channel is closed afterwards (not resent; the caller deletes the session).
    Result<std::size_t> sealExhaustionTerminate(MutableByteView out);

    // ---- receiving ----
    // A protected CP message of this session (route() said `session`). Order: header (size,
    // P = 0) -> Session ID (equal to this session's; a Session Request is
    // request_with_session_nonzero) -> KID -> counter (strict) -> MAC -> command and TLVs.
    // After a good MAC the counter is committed (except the A1 case: COUNT 2^32-1 on anything
    // but Terminate Request 0x13 is dropped as counter_exhausted) and a format error is a
    // reject (a Message Reject's own format error is a drop), an unknown command reject 0x02,
    // a known command this side never receives drop unexpected_command; all authenticated.
    tl::expected<ReceivedCp, Verdict> openCp(ByteView datagram);
    // The UE's Session Start of its current attempt (n = 0; the UE made this channel from
    // parseSessionStart() and the keys it derived). Any failure is a drop.
    tl::expected<ReceivedCp, Verdict> acceptSessionStart(ByteView datagram);
    // A UP message. With ciphering, the payload is deciphered into `plain` (which must hold it,
    // else buffer_too_small, checked before any state changes); pass an empty `plain` to verify
    // only (UE-to-EAS relay at the HSE, A16).
    tl::expected<ReceivedUp, Verdict> openUp(ByteView datagram, MutableByteView plain);

    CounterSnapshot counters() const noexcept;
    void restoreCounters(const CounterSnapshot& s) noexcept;

private:
    SecureChannel(const ChannelConfig& config) : config_(config) {}
    static Result<void> validate(const ChannelConfig& config);
    // The keyed contexts: owned, or from the cache (a miss re-keys from the slab).
    Result<KeyedContexts*> contexts();
    tl::expected<Header, Verdict> checkFront(ByteView datagram, Plane plane,
                                             CounterScheme scheme) const;
    std::uint8_t txDirection() const noexcept { return directionOf(config_.side); }
    std::uint8_t rxDirection() const noexcept { return directionOf(peerOf(config_.side)); }

    ChannelConfig config_;
    std::unique_ptr<KeyedContexts> owned_;  // owning form
    SlabSlot slot_;                         // slab form
    TxCounter cpTx_;
    TxCounter upTx_;
    CpRxCounter cpRx_;
    UpRxCounter upRx_;
    bool closed_ = false;
};

}  // namespace best::emsdp
