// The rows of the state store, as typed C++ values. Key material appears only as opaque blobs
// produced by the HSM KeyVault (wrapped or encrypted, each with the binding MAC that ties it to
// its row); there is deliberately no member, constructor or overload taking a Secret, so clear
// K, OP, OPc or KInt cannot reach the store by accident.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/bytes.h"

namespace best::store {

// A blob made by the KeyVault plus its binding MAC. Stored and returned byte for byte.
struct WrappedBlob {
    Bytes data;
    Bytes binding;

    bool operator==(const WrappedBlob&) const = default;
};
inline constexpr std::size_t kMaxBlobSize = 4096;
inline constexpr std::size_t kMaxBindingSize = 128;

using AmfBytes = std::array<std::uint8_t, 2>;
using PlmnId = std::array<std::uint8_t, 3>;  // TS 24.008 encoding (profile 3.3)
using RandBytes = std::array<std::uint8_t, 16>;
using AutnBytes = std::array<std::uint8_t, 16>;
using EasKeyIdentifier = std::array<std::uint8_t, 16>;  // first 16 octets of KDF(KInt, 0xB3, ..)
using CertFingerprint = std::array<std::uint8_t, 32>;   // SHA-256 of the DER certificate

// Which of OP or OPc the subscriber's encrypted blob holds (provisioning says so explicitly).
enum class OpKind { op, opc };
std::string_view toString(OpKind k) noexcept;

inline constexpr std::uint8_t kDefaultIndBits = 5;
inline constexpr std::uint8_t kMaxIndBits = 16;

struct SubscriberRecord {
    std::string imsi;                         // 6..15 decimal digits
    std::optional<std::string> externalUeId;  // unique when present; 1..255 octets
    std::string algorithm = "milenage";       // the only one in v1
    WrappedBlob k;                            // K wrapped under the token's wrap key
    OpKind opKind = OpKind::opc;
    WrappedBlob op;  // OP or OPc encrypted under the data key
    AmfBytes amf{};
    std::uint8_t indBits = kDefaultIndBits;  // 0..16
    std::vector<std::string> allowedEas;     // EAS Ids that must exist in the registry
    std::int64_t createdAt = 0;              // Unix seconds; set by the store on insert

    bool operator==(const SubscriberRecord&) const = default;
};

enum class ServiceMode { kaOnly, ueToHse, ueToEas };
std::string_view toString(ServiceMode m) noexcept;  // "ka-only", "ue-to-hse", "ue-to-eas"
std::optional<ServiceMode> serviceModeFromString(std::string_view s) noexcept;

struct EasRecord {
    std::string easId;  // 1..64 octets of UTF-8
    ServiceMode serviceMode = ServiceMode::kaOnly;
    std::optional<CertFingerprint> certSha256;  // maps a TLS client certificate to this EAS
    std::optional<std::string> upEndpoint;      // host:port for relayed UP (UE-to-EAS)
    std::int64_t createdAt = 0;                 // set by the store

    bool operator==(const EasRecord&) const = default;
};

// Tentative key sets are never stored: they live in the daemon's memory until their session is
// confirmed (profile 4.1 step 6), and are lost on a restart (the UE falls back to full AKA).
enum class KeySetState { current, pending };
std::string_view toString(KeySetState s) noexcept;

enum class KeyAgreement : std::uint8_t { umts = 0x01, eps = 0x02, fiveG = 0x03 };

enum class EasKeyType { kIntE2e, kIntEasPsk };
std::string_view toString(EasKeyType t) noexcept;  // "kint-e2e", "kint-eas-psk"

struct EasKeyRecord {
    std::string easId;
    EasKeyType type = EasKeyType::kIntEasPsk;
    WrappedBlob key;  // KInt_E2E or KInt_EAS_PSK wrapped
    EasKeyIdentifier identifier{};

    bool operator==(const EasKeyRecord&) const = default;
};

struct KeySetRecord {
    std::string imsi;
    std::uint8_t kid = 0;  // 1..7
    KeySetState state = KeySetState::current;
    KeyAgreement keyAgreement = KeyAgreement::umts;
    std::optional<PlmnId> plmn;         // serving network, absent when the request had none
    std::string hseId;                  // 1..64 octets
    std::int64_t createdAt = 0;         // Unix seconds of the set's AKA (lifetime counts from here)
    std::uint32_t lifetimeSeconds = 0;  // 0 = no limit
    std::optional<std::uint64_t> highestNonce;  // highest accepted resumption nonce (A10)
    std::uint64_t useCount = 0;                 // sessions established with this set
    WrappedBlob kInt;
    std::vector<EasKeyRecord> easKeys;  // one per EAS, sorted by EAS Id when read

    bool operator==(const KeySetRecord&) const = default;
};

// What the EAS key identifier index answers (profile 8.2: an EAS pulls a key).
struct EasKeyLookup {
    std::string imsi;
    std::optional<std::string> externalUeId;
    std::uint8_t kid = 0;
    KeySetState state = KeySetState::current;
    std::int64_t createdAt = 0;
    std::uint32_t lifetimeSeconds = 0;
    EasKeyRecord key;
};

enum class RefreshOrigin : std::uint8_t { ue = 0x01, hse = 0x02, eas = 0x03 };

// A key refresh in progress (profile 4.4, A15), at most one per UE.
struct RefreshRecord {
    std::string imsi;
    RefreshOrigin origin = RefreshOrigin::hse;
    std::uint8_t newKid = 0;  // 0 while an EAS-triggered refresh waits for a confirmed session
    std::optional<RandBytes> rand;
    std::optional<AutnBytes> autn;
    std::uint32_t resyncs = 0;
    std::optional<std::string> requestedBy;  // EAS Id of an EAS-triggered refresh
    std::int64_t createdAt = 0;              // set by the store on first insert
    std::int64_t updatedAt = 0;              // set by the store

    bool operator==(const RefreshRecord&) const = default;
};

// The durable SQN state of one subscriber (profile section 9).
struct SqnState {
    std::string imsi;
    std::uint8_t indBits = kDefaultIndBits;
    // Every SEQ up to seqHe may have been handed out; none above it has. A fresh reservation
    // starts at seqHe + 1.
    std::uint64_t seqHe = 0;
    std::string lastChange;  // provision | reserve | set | resync
    std::uint64_t reservations = 0;
    std::int64_t updatedAt = 0;
};

}  // namespace best::store
