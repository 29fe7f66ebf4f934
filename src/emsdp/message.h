// EMSDP control-plane commands (profile sections 4, 5) and their TLV bodies: typed structs, a
// decoder that applies the section 3.3 / A3 / A4 / A19 / A20 rules, and an encoder that writes
// TLVs in ascending tag order. Bodies hold string_views into the decoded datagram.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <variant>

#include "common/bytes.h"
#include "common/result.h"
#include "emsdp/ie.h"
#include "emsdp/outcome.h"

namespace best::emsdp {

enum class Command : std::uint8_t {
    sessionRequest = 0x10,
    sessionStart = 0x11,
    sessionStartConfirmation = 0x12,
    sessionTerminateRequest = 0x20,
    sessionTerminateResponse = 0x21,
    manageKeysRequest = 0x30,
    manageKeysResponse = 0x31,
    messageReject = 0x80,
};

bool isKnownCommand(std::uint8_t command) noexcept;
std::string_view commandName(Command c) noexcept;
// Whether `sender` ever sends `command` (Session Request and Confirmation: UE; Session Start:
// network; the rest: both). A known command from the wrong side is "unexpected" (section 5).
bool sentBy(Command command, Side sender) noexcept;

// 0x10, UE -> HSE. IMSI, UE configuration, Enterprise setup, UE nonce (M); Serving network (C).
struct SessionRequest {
    Imsi imsi;
    UeConfiguration ueConfiguration;
    std::string_view easId;  // Enterprise setup, 1..64 octets
    std::optional<PlmnId> servingNetwork;
    std::uint64_t ueNonce = 0;

    friend bool operator==(const SessionRequest&, const SessionRequest&) = default;
};

// 0x11, HSE -> UE. RAND and AUTN together (full establishment) or neither (resumption).
struct SessionStart {
    std::optional<Rand> rand;
    std::optional<Autn> autn;
    KeyAgreement keyAgreement = KeyAgreement::umts;
    HseConfiguration hseConfiguration;
    ServiceParameters serviceParameters;
    RequestChecksum requestChecksum{};

    friend bool operator==(const SessionStart&, const SessionStart&) = default;
};

// 0x12, UE -> HSE, no IEs.
struct SessionStartConfirmation {
    friend bool operator==(const SessionStartConfirmation&,
                           const SessionStartConfirmation&) = default;
};

// 0x20, either side; Cause optional.
struct SessionTerminateRequest {
    std::optional<Cause> cause;

    friend bool operator==(const SessionTerminateRequest&,
                           const SessionTerminateRequest&) = default;
};

// 0x21, either side, no IEs.
struct SessionTerminateResponse {
    friend bool operator==(const SessionTerminateResponse&,
                           const SessionTerminateResponse&) = default;
};

// 0x30 from the UE: Refresh origin (M), which must be UE (A3); the encoder writes 0x01.
struct UeManageKeysRequest {
    friend bool operator==(const UeManageKeysRequest&, const UeManageKeysRequest&) = default;
};

// 0x30 from the HSE: RAND, AUTN, Key agreement used, New key ID, Refresh origin (all M).
struct HseManageKeysRequest {
    Rand rand{};
    Autn autn{};
    KeyAgreement keyAgreement = KeyAgreement::umts;
    std::uint8_t newKeyId = 1;  // 1..7
    RefreshOrigin refreshOrigin = RefreshOrigin::hse;

    friend bool operator==(const HseManageKeysRequest&, const HseManageKeysRequest&) = default;
};

// 0x31 from the HSE: RAND, AUTN, Key agreement used, New key ID (all M).
struct HseManageKeysResponse {
    Rand rand{};
    Autn autn{};
    KeyAgreement keyAgreement = KeyAgreement::umts;
    std::uint8_t newKeyId = 1;  // 1..7

    friend bool operator==(const HseManageKeysResponse&, const HseManageKeysResponse&) = default;
};

// 0x31 from the UE: Key confirmation, or Cause (0x0A; 0x0B with AUTS).
struct UeManageKeysResponse {
    std::optional<KeyConfirmation> keyConfirmation;
    std::optional<Cause> cause;
    std::optional<Auts> auts;  // mandatory with cause 0x0B

    friend bool operator==(const UeManageKeysResponse&, const UeManageKeysResponse&) = default;
};

// 0x80, either side: Cause (M); AUTS (M with 0x0B), Back-off (M with 0x0F).
struct MessageReject {
    Cause cause = Cause::invalid_format;
    std::optional<Auts> auts;
    std::optional<std::uint16_t> backOff;

    friend bool operator==(const MessageReject&, const MessageReject&) = default;
};

using Body =
    std::variant<SessionRequest, SessionStart, SessionStartConfirmation, SessionTerminateRequest,
                 SessionTerminateResponse, UeManageKeysRequest, HseManageKeysRequest,
                 HseManageKeysResponse, UeManageKeysResponse, MessageReject>;

Command commandOf(const Body& body) noexcept;
// Whether `side` may send `body` (the Manage Keys variants and Session Request / Start /
// Confirmation belong to one side; Terminate and Reject to both).
bool sendableBy(const Body& body, Side side) noexcept;

// Decodes the TLV area of a `command` sent by `sender` (octets after the command, before the
// MAC). Order of checks: TLVs in octet order, first error decides (trailing_octets,
// length_past_end, duplicate_tlv, invalid_ie_length, value_out_of_range: cause 0x01;
// unknown_mandatory_tag: 0x04; defined tags not listed for the command are skipped without any
// check, A19; tags >= 0x80 skipped); then for a Session Request SUCI (0x07, A4); then missing
// mandatory IEs (0x03, A20); then the combination rules (conflicting_ies 0x01) and, for a
// Session Request, the PLMN digits (invalid_plmn 0x01, A4 step 4).
// An unknown command gives unknown_command with cause 0x02.
tl::expected<Body, FormatError> decodeBody(std::uint8_t command, Side sender, ByteView tlvs);

// Writes the command octet and its TLVs in ascending tag order; returns the octets written.
// Refuses values the decoder would refuse (invalid_value) and short buffers (buffer_too_small).
Result<std::size_t> encodeBody(const Body& body, MutableByteView out);

}  // namespace best::emsdp
