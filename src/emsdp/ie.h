// EMSDP information elements (profile section 3.3): the tags, their size rules and typed values.
// Variable-length text values (EAS Id, HSE Id) are string_views: after decoding they point into
// the datagram, which must outlive them.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/bytes.h"
#include "common/result.h"
#include "crypto/key_hierarchy.h"
#include "crypto/milenage.h"
#include "emsdp/header.h"

namespace best::emsdp {

enum class Tag : std::uint8_t {
    imsi = 0x01,
    suci = 0x02,  // reserved: a v1 HSE answers cause 0x07
    ueConfiguration = 0x03,
    enterpriseSetup = 0x04,
    servingNetwork = 0x05,
    ueNonce = 0x06,
    rand = 0x10,
    autn = 0x11,
    auts = 0x12,
    keyAgreementUsed = 0x13,
    hseConfiguration = 0x14,
    serviceParameters = 0x15,
    requestChecksum = 0x16,
    newKeyId = 0x18,
    keyConfirmation = 0x19,
    refreshOrigin = 0x1A,
    cause = 0x20,
    backOff = 0x21,
};

// The tags of section 3.3 (SUCI included).
bool isDefinedTag(std::uint8_t tag) noexcept;
std::string_view tagName(Tag t) noexcept;

// Size rule of a defined tag, in octets (SUCI: 0..255, "any length").
struct SizeRule {
    std::uint8_t min = 0;
    std::uint8_t max = 0;
};
SizeRule sizeRuleOf(Tag t) noexcept;

inline constexpr std::size_t kMaxIdLength = 64;  // EAS Id and HSE Id, UTF-8 octets

// ---- typed values -----------------------------------------------------------------------------

// IMSI TLV value: bytes 2-9 of EF_IMSI (TS 31.102 4.2.2). Kept as received: the digit check is
// the subscriber lookup's (an undecodable IMSI is an unknown subscriber, cause 0x07).
struct Imsi {
    std::array<std::uint8_t, 8> octets{};

    // 6..15 decimal digits -> BCD ("001010123456789" -> 09 10 10 10 32 54 76 98).
    static Result<Imsi> fromDigits(std::string_view digits);
    // BCD -> digits; error unless type is 001, parity matches, digits are 0-9 and the unused
    // nibbles are F.
    Result<std::string> digits() const;

    friend bool operator==(const Imsi&, const Imsi&) = default;
};

using PlmnId = crypto::PlmnId;

// TS 24.008 PLMN id from MCC (3 digits) and MNC (2 or 3 digits): 001/01 -> 00 f1 10.
Result<PlmnId> plmnFromDigits(std::string_view mcc, std::string_view mnc);
// MCC digits and MNC digits 1-2 are 0-9, MNC digit 3 is 0-9 or F (A4 step 4).
bool plmnDigitsValid(const PlmnId& plmn) noexcept;

// BEST UE configuration (>= 5 octets; octets beyond the fifth are ignored and not kept).
struct UeConfiguration {
    std::uint8_t release = 17;       // 15..18 accepted by the HSE, else cause 0x05
    std::uint8_t keyAgreements = 0;  // bit 0 UMTS, bit 1 EPS, bit 2 5G
    std::uint8_t flags = 0;          // bit 0 confidentiality requested, bit 1 key sets storable
    std::uint8_t integrityAlgs = 0;  // bit i = algorithm id i (bit 0 ignored)
    std::uint8_t cipheringAlgs = 0;  // bit i = algorithm id i (NULL always supported)

    static constexpr std::uint8_t kFlagConfidentiality = 0x01;
    static constexpr std::uint8_t kFlagKeySetsStorable = 0x02;
    // Unused flag bits are sent as 0 and ignored: the codec clears them both ways.
    static constexpr std::uint8_t kDefinedFlags = kFlagConfidentiality | kFlagKeySetsStorable;

    bool offers(crypto::KeyAgreement ka) const noexcept;
    bool confidentialityRequested() const noexcept { return (flags & kFlagConfidentiality) != 0; }
    bool keySetsStorable() const noexcept { return (flags & kFlagKeySetsStorable) != 0; }
    bool supportsIntegrity(std::uint8_t alg) const noexcept;  // alg 0 (NULL) never
    bool supportsCiphering(std::uint8_t alg) const noexcept;  // alg 0 (NULL) always

    friend bool operator==(const UeConfiguration&, const UeConfiguration&) = default;
};

enum class Service : std::uint8_t { kaOnly = 0x01, upIntegrity = 0x02, upConfidentiality = 0x03 };
enum class UpTermination : std::uint8_t { none = 0x00, hse = 0x01, eas = 0x02 };
enum class RefreshOrigin : std::uint8_t { ue = 0x01, hse = 0x02, eas = 0x03 };

// HSE configuration (6..69 octets).
struct HseConfiguration {
    CounterScheme cpScheme = CounterScheme::n1;
    CounterScheme upScheme = CounterScheme::n1;
    std::uint8_t integrityAlg = 0x02;
    std::uint8_t cipheringAlg = 0x00;  // 0x02 exactly for UP confidentiality
    std::uint8_t flags = 0;            // bit 0 confirmation required (KA-only)
    std::string_view hseId;            // 1..64 octets UTF-8

    static constexpr std::uint8_t kFlagConfirmationRequired = 0x01;
    static constexpr std::uint8_t kDefinedFlags = kFlagConfirmationRequired;  // others cleared
    bool confirmationRequired() const noexcept { return (flags & kFlagConfirmationRequired) != 0; }

    friend bool operator==(const HseConfiguration&, const HseConfiguration&) = default;
};

// Service parameters (6 octets).
struct ServiceParameters {
    Service service = Service::upIntegrity;
    UpTermination termination = UpTermination::hse;
    std::uint32_t keySetLifetime = 0;  // seconds from the key set's AKA; 0 = no limit

    friend bool operator==(const ServiceParameters&, const ServiceParameters&) = default;
};

using RequestChecksum = std::array<std::uint8_t, 8>;
using Rand = crypto::Rand;
using Autn = crypto::Autn;
using Auts = crypto::Auts;
using KeyConfirmation = crypto::KeyConfirmation;
using KeyAgreement = crypto::KeyAgreement;

// First 8 octets of SHA-256 over the whole Session Request UDP payload (MAC included).
Result<RequestChecksum> requestChecksum(ByteView sessionRequest);

}  // namespace best::emsdp
