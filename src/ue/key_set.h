// The UE's key sets (profile 4.1, 4.2, 4.4, A9-A11): at most one current and one pending set,
// each with what resumption and refresh need. KInt is a key: it lives in a Secret (wiped) and
// on disk only in the state file (mode 0600).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "common/secure.h"
#include "crypto/key_hierarchy.h"

namespace best::ue {

enum class KeySetRole : std::uint8_t { current, pending };

struct KeySet {
    std::uint8_t kid = 0;  // 1..7
    crypto::KeyAgreement keyAgreement = crypto::KeyAgreement::umts;
    // The serving network sent with the AKA's Session Request (the EPS / 5G root key used it;
    // a refresh keeps it, 4.4). Absent only for UMTS without a Serving network TLV.
    std::optional<crypto::PlmnId> plmn;
    std::string hseId;           // from the Session Start's HSE configuration
    Key256 kint;                 // KInt = KDF(R, 0xB0, HSE Id): a key
    std::int64_t created = 0;    // Unix seconds of the set's AKA
    std::uint32_t lifetime = 0;  // seconds from `created`, 0 = no limit (A11)
    // Highest nonce the UE used with this set (A10: a 4.1 set starts with its full request's
    // nonce; a pending set with none). A resumption uses a strictly greater one.
    std::optional<std::uint64_t> lastNonce;

    // The lifetime has passed: at and after created + lifetime (never with lifetime 0).
    bool expired(std::int64_t nowUnix) const noexcept {
        return lifetime != 0 && nowUnix >= created + static_cast<std::int64_t>(lifetime);
    }
    // No nonce above lastNonce is left (it is 2^64 - 1).
    bool noncesExhausted() const noexcept { return lastNonce && *lastNonce == ~std::uint64_t{0}; }
};

// What the state file holds. Counters are never persisted (memory only).
struct UeState {
    std::string imsi;  // digits of the subscriber these sets belong to; empty before the first
    std::optional<KeySet> current;
    std::optional<KeySet> pending;
    // Nonce of the most recent Session Request (full or resumption) the UE sent.
    std::optional<std::uint64_t> lastNonce;
};

}  // namespace best::ue
