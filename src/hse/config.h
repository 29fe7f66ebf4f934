// best-hsed configuration: YAML validated into its own type. Every error names the file, line,
// column and key; unknown keys are errors. The HSM PIN is never in the YAML (a file path only).
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/result.h"

namespace best::hse {

enum class ConfigErrc { io = 1, syntax, unknown_key, missing_key, bad_value };
inline ErrorDomain errorDomainOf(ConfigErrc) {
    return ErrorDomain::config;
}

struct ListenAddress {
    std::string address;        // numeric IPv4 or IPv6
    std::uint16_t port = 7163;  // 0: the kernel picks; bound ports go to the runtime file
};

struct RateLimit {
    double ratePerSecond = 0;  // tokens added per second
    std::uint32_t burst = 0;   // bucket size
};

enum class KeyAgreementPolicy : std::uint8_t { umts = 1, eps = 2, fiveG = 3 };

struct Policy {
    std::uint8_t cpCounterScheme = 1;  // n, 0..3
    std::uint8_t upCounterScheme = 1;
    bool allowUmts = true;
    bool allowEps = true;
    bool allowFiveG = true;
    bool cipheringAllowedByDefault = true;
    std::set<std::string> cipheringDeniedPlmns;   // "MCCMNC" digits, e.g. "00101"
    std::set<std::string> cipheringAllowedPlmns;  // used when the default is deny
    std::set<std::string> confidentialityRequiredEas;
    std::uint32_t keySetLifetimeSeconds = 86400;  // 0 = no limit
    std::uint32_t unconfirmedSessionTimeoutSeconds = 60;
    std::uint32_t idleSessionTimeoutSeconds = 3600;
    RateLimit perSource{20.0, 40};
    RateLimit perImsi{1.0, 5};
    std::uint16_t backoffSeconds = 30;
    // Key refresh policy (issue 7): 0 = off.
    std::uint32_t refreshAfterSeconds = 0;
    std::uint32_t refreshAfterSessions = 0;
};

struct HsmConfig {
    std::string module = "/usr/lib/softhsm/libsofthsm2.so";
    std::string token;    // label, or an RFC 7512 "pkcs11:" URI
    std::string pinFile;  // never the PIN itself
    unsigned workers = 2;
    // hsm.recycle_after_objects: re-initialise the PKCS#11 module once this many session objects
    // were made since the last start of it (0: never). For SoftHSM 2.6, which frees destroyed
    // objects only at C_Finalize (docs/hsed.md "Session memory").
    std::uint64_t recycleAfterObjects = 0;
};

// Operations (issue 7): the admin UNIX socket, the metrics page, the HSM health probe.
struct AdminConfig {
    std::string socketPath;  // empty: no admin socket
    std::string group;       // the socket's group (name or number); empty: the daemon's group
};

struct MetricsConfig {
    bool enabled = false;               // the `metrics` block is present
    std::string address = "127.0.0.1";  // numeric, loopback only
    std::uint16_t port = 9163;          // 0: the kernel picks; reported in the runtime file
};

struct HsedConfig {
    std::string sourcePath;
    std::string hseId;
    std::vector<ListenAddress> listen;
    std::string runtimeFile;  // bound ports, one "emsdp ADDRESS PORT" line each
    HsmConfig hsm;
    std::string storePath;
    std::uint8_t sqnInd = 0;
    std::uint8_t sqnIndBits = 5;
    // sqn.ranges_in_memory: subscribers whose reserved SQN range is kept in memory (0: all);
    // store::SqnOptions::maxRanges.
    std::uint32_t sqnRangesInMemory = 16384;
    Policy policy;
    std::string uplinkSink;  // UNIX datagram socket the uplink payloads go to
    // sink.uplink_backlog: frames kept in order while the sink's queue is full (then dropped,
    // counted); docs/hsed.md "Uplink sink".
    std::uint32_t uplinkBacklog = 1024;
    std::string downlinkSocket;  // UNIX datagram socket the daemon reads downlink from
    std::string logLevel = "info";
    // Session memory (issue 6, docs/hsed.md "Session memory"): the locked key slab holds
    // limits.max_sessions sessions (48 octets each, mlock'ed at start-up; a Session Request past
    // it gets Reject 0x0F with Back-off); limits.context_cache keyed OpenSSL context sets at most.
    std::uint32_t maxSessions = 65536;
    std::uint32_t contextCache = 4096;
    // listen_receive_buffer: SO_RCVBUF asked for on each EMSDP socket, in octets (0: the
    // kernel's default); net.core.rmem_max caps it, the effective size is logged at start.
    std::uint32_t receiveBuffer = 4194304;
    AdminConfig admin;
    MetricsConfig metrics;
    std::uint32_t healthProbeIntervalSeconds = 5;  // health.probe_interval
};

// Parses and validates; `text` is the file's content, `name` what errors call it.
Result<HsedConfig> parseHsedConfig(const std::string& text, const std::string& name);
Result<HsedConfig> loadHsedConfig(const std::string& path);

}  // namespace best::hse
