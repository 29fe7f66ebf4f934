// What happens to a bad EMSDP input: exactly one outcome, either a Cause sent back in a Message
// Reject (profile section 7) or a named drop reason (counted, no answer). The drop reasons are
// the one enum the metrics share; each has a stable snake_case name.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "common/result.h"

namespace best::emsdp {

// Section 7 causes. The enum's underlying type holds any octet: a received Cause TLV keeps an
// undefined value as is (isDefinedCause() tells).
enum class Cause : std::uint8_t {
    invalid_format = 0x01,
    unknown_command = 0x02,
    missing_mandatory_ie = 0x03,
    unknown_mandatory_ie = 0x04,
    unsupported_release = 0x05,
    no_common_algorithm = 0x06,  // no common key agreement or algorithm
    unknown_subscriber = 0x07,
    eas_not_allowed = 0x08,  // EAS unknown or not allowed
    service_not_allowed = 0x09,
    aka_mac_failure = 0x0A,
    synch_failure = 0x0B,
    key_set_invalid = 0x0D,  // unknown, expired or not fresh key set
    congestion = 0x0F,
    eas_unavailable = 0x10,
    internal_error = 0x12,
    counter_exhausted = 0x13,
    resync_failed = 0x14,
};

// True for the values section 7 defines (0x0C, 0x0E, 0x11 are reserved: false).
bool isDefinedCause(std::uint8_t value) noexcept;
// snake_case name ("invalid_format"); "undefined" for other values.
std::string_view causeName(Cause c) noexcept;

// Why an input was dropped, or (as the detail of a reject) what was wrong with it.
// Names are stable: they label metrics. Append only; never renumber or rename.
enum class DropReason : std::uint8_t {
    // Header and routing (section 4: header -> Session ID -> KID).
    datagram_too_large,             // UDP payload > 1280 octets (either direction)
    truncated_header,               // fewer than 5 + n octets
    truncated_message,              // no room for the command octet or the 4-octet MAC
    up_with_session_zero,           // P = 1 with Session ID 0
    request_with_session_nonzero,   // Session Request with Session ID != 0
    non_request_with_session_zero,  // at the HSE: a command other than 0x10 with Session ID 0
    session_zero_not_reject,        // at the UE: Session ID 0 on anything but a KID-0 Reject
    unknown_session,                // no live session (or attempt) with this Session ID
    kid_mismatch,                   // KID differs from the session's (KID 0 included)
    up_not_allowed,                 // UP message in a session without a UP service (KA-only)
    wrong_plane,                    // CP datagram given to a UP entry point or the reverse
    // Counter (section 3.1, A1).
    counter_out_of_range,  // rebuilt COUNT outside 0..2^32-1
    counter_exhausted,     // COUNT 2^32-1 on anything but Terminate Request cause 0x13
    replayed_counter,      // UP COUNT already accepted
    counter_too_old,       // UP COUNT with H - COUNT >= W
    // Integrity.
    bad_mac,
    // Command and TLVs (section 3.3, 5, A3, A4, A19, A20).
    unknown_command,
    unexpected_command,  // known command that this receiver does not take (ignored)
    trailing_octets,     // one octet left after the last whole TLV
    length_past_end,     // a TLV length runs past the end (or into the MAC)
    duplicate_tlv,
    unknown_mandatory_tag,  // unknown tag below 0x80
    invalid_ie_length,      // length outside the tag's size rule
    value_out_of_range,     // value outside its defined set (A3)
    missing_mandatory_ie,
    conflicting_ies,     // both Key confirmation and Cause in a UE's Manage Keys Response
    suci_not_supported,  // SUCI TLV in a Session Request (A4 step 2)
    invalid_plmn,        // Serving network with a non-BCD digit (A4 step 4)
    // Session life.
    session_closed,    // the session ended (A1 exhaustion Terminate sent or received)
    crypto_failure,    // an OpenSSL call failed on receive (not the peer's fault)
    buffer_too_small,  // the caller's output buffer cannot hold the payload
    // Decisions above the codec (daemon and UE library), named here so metrics share one enum.
    unsolicited_reject,         // unprotected Reject not acceptable (4.5, A2, A14)
    bad_mac_s,                  // AUTS with a wrong MAC-S (4.1 step 4, A14, A15)
    checksum_mismatch,          // Session Start request checksum differs (UE, 4.1 step 4)
    session_start_mismatch,     // Session Start fails an A7 check (UE)
    key_confirmation_mismatch,  // wrong key confirmation in a refresh (A15)
    wrong_source_address,       // unprotected 0x0A/0x0B from another address (A14)
};

inline constexpr std::size_t kDropReasonCount =
    static_cast<std::size_t>(DropReason::wrong_source_address) + 1;

std::string_view dropReasonName(DropReason r) noexcept;

// The outcome of a bad input. Action drop: count `reason`, send nothing. Action reject: send a
// Message Reject with `cause` (MAC'd inside a session, KID 0 for a Session Request); `reason`
// then says what was wrong, for logs. `authenticated` is set when the MAC had verified (and the
// counter was committed) before the fault was found: such a message still confirms a session
// and updates the peer's address (A9, A17). operator== compares all four fields.
struct Verdict {
    enum class Action : std::uint8_t { drop, reject };

    Action action = Action::drop;
    DropReason reason = DropReason::truncated_header;
    Cause cause = Cause::invalid_format;
    bool authenticated = false;

    static constexpr Verdict drop(DropReason r, bool authenticated = false) noexcept {
        return Verdict{Action::drop, r, Cause::invalid_format, authenticated};
    }
    static constexpr Verdict reject(Cause c, DropReason detail,
                                    bool authenticated = false) noexcept {
        return Verdict{Action::reject, detail, c, authenticated};
    }
    constexpr bool isDrop() const noexcept { return action == Action::drop; }
    constexpr bool isReject() const noexcept { return action == Action::reject; }

    friend constexpr bool operator==(const Verdict&, const Verdict&) = default;
};

// A format error found by the body decoder: the cause the profile assigns and the detail.
// `offset` is the position of the offending TLV within the TLV area (for logs).
struct FormatError {
    DropReason reason = DropReason::trailing_octets;
    Cause cause = Cause::invalid_format;
    std::size_t offset = 0;

    friend constexpr bool operator==(const FormatError&, const FormatError&) = default;
};

// Errors of the encoding / sending side (programming or state errors, never peer input).
enum class EmsdpErrc {
    buffer_too_small = 1,  // output buffer too small
    datagram_too_large,    // the message would exceed 1280 octets
    invalid_value,         // a field outside its defined range (e.g. EAS Id of 65 octets)
    counter_exhausted,     // the next COUNT is 2^32-1: send the A1 Terminate instead
    wrong_side,            // this side does not send that command
    session_closed,        // the session ended (A1)
    crypto,                // an OpenSSL call failed
};
inline ErrorDomain errorDomainOf(EmsdpErrc) {
    return ErrorDomain::proto;
}

}  // namespace best::emsdp
