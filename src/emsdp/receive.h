// Entry points for datagrams that are not (yet) handled by a SecureChannel: routing, the Session
// Request at the HSE, the Session Start at the UE, unprotected (KID 0) Message Rejects; and the
// matching encoders.
#pragma once

#include <cstddef>
#include <cstdint>

#include "common/bytes.h"
#include "common/result.h"
#include "crypto/eps_algorithms.h"
#include "emsdp/header.h"
#include "emsdp/message.h"
#include "emsdp/outcome.h"

namespace best::emsdp {

enum class RouteKind : std::uint8_t {
    sessionRequest,     // HSE: parseSessionRequest()
    unprotectedReject,  // KID 0, command 0x80: look up the Session ID (0 at the UE: A2), then
                        // parseUnprotectedReject(); act only as 4.1 step 4, 4.5, A2, A14 allow
    session,            // look up the Session ID (unknown_session), then the session's
                        // SecureChannel (or, at a UE waiting for it, parseSessionStart())
};

struct Route {
    RouteKind kind = RouteKind::session;
    HeaderPrefix prefix;
};

// The header and Session ID steps that need no session state. Drops: datagram_too_large,
// truncated_header, truncated_message, up_with_session_zero, non_request_with_session_zero
// (HSE), session_zero_not_reject (UE), request_with_session_nonzero (KID 0).
tl::expected<Route, DropReason> route(ByteView datagram, Side receiver) noexcept;

// ---- Session Request (HSE) --------------------------------------------------------------------

struct ParsedSessionRequest {
    Header header;        // KID 0: full establishment; KID 1..7: resumption (MAC follows)
    SessionRequest body;  // views into the datagram

    bool resumption() const noexcept { return header.kid != 0; }
};

// A4 steps 1-4 after the header checks. Drops as route(); rejects (unprotected, Session ID 0):
// 0x01 / 0x04 (TLV parse, octet order), 0x07 (SUCI present, any length), 0x03 (missing IE),
// 0x01 (PLMN digits). Steps 5 on (rate limit, subscriber, EAS, ...) are the daemon's.
tl::expected<ParsedSessionRequest, Verdict> parseSessionRequest(ByteView datagram);

// The resumption MAC: KSess0 CP-int (the caller keys it: KSess with Session ID 0 and the
// request's nonce, algorithm 0x02), COUNT 0, BEARER 0, DIRECTION 0. The counter field is
// covered by the MAC but not interpreted (the Session Request is outside the four counters).
Result<bool> verifyResumptionMac(ByteView datagram, crypto::Eia2& ksess0CpInt);

// ---- Session Start (UE) -----------------------------------------------------------------------

struct ParsedSessionStart {
    Header header;  // n = 0
    SessionStart body;
};

// The UE parses a Session Start before it has keys (section 4) and drops it on any error:
// datagram_too_large, truncated_header, truncated_message, wrong_plane, session_zero_not_reject,
// kid_mismatch (KID 0), unexpected_command (not 0x11), or the body's format error.
// After AKA and key derivation: SecureChannel::create(channelConfigFor(...)) then
// acceptSessionStart() checks the MAC, then the UE compares the request checksum.
tl::expected<ParsedSessionStart, DropReason> parseSessionStart(ByteView datagram);

// ---- Unprotected Message Reject (either side) ---------------------------------------------------

struct ParsedReject {
    Header header;  // KID 0, n = 0
    MessageReject body;
};

// Never answered: every fault is a drop (its format error's detail).
tl::expected<ParsedReject, DropReason> parseUnprotectedReject(ByteView datagram);

// ---- encoders -----------------------------------------------------------------------------------

// Full Session Request: KID 0, Session ID 0, n = 0, no MAC.
Result<std::size_t> encodeSessionRequest(const SessionRequest& request, MutableByteView out);
// Resumption Session Request: KID = the key set, Session ID 0, n = 0, MAC with KSess0 CP-int,
// COUNT 0, DIRECTION 0.
Result<std::size_t> encodeResumptionRequest(const SessionRequest& request, std::uint8_t kid,
                                            crypto::Eia2& ksess0CpInt, MutableByteView out);
// KID-0 Message Reject (answering a Session Request: Session ID 0; a UE's 0x0A / 0x0B: the
// Session Start's Session ID).
Result<std::size_t> encodeUnprotectedReject(std::uint32_t sessionId, const MessageReject& reject,
                                            MutableByteView out);

}  // namespace best::emsdp
