#include "daemon.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include "common/hex.h"
#include "common/log.h"
#include "crypto/key_hierarchy.h"
#include "emsdp/emsdp.h"
#include "hse/admin_server.h"
#include "hse/metrics.h"
#include "hse/notifier.h"
#include "hse/rate_limiter.h"
#include "hse/uplink_sink.h"
#include "hsm/key_vault.h"
#include "net/http_server.h"
#include "net/loop.h"
#include "store/store.h"

namespace best::hse {

namespace {

constexpr const char* kLog = "hsed";
constexpr std::size_t kMaxDatagram = 1280;
constexpr std::uint8_t kEia2 = 0x02;
constexpr std::uint8_t kEea2 = 0x02;
// The row version of subscriber blobs (K, OPc) as provisioned (docs/hsed.md).
constexpr std::uint64_t kSubscriberBlobVersion = 1;
constexpr std::size_t kBlobTagSize = 32;

enum class HsedErrc { internal = 1 };
inline ErrorDomain errorDomainOf(HsedErrc) {
    return ErrorDomain::generic;
}

std::int64_t unixNow() {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

std::string plmnDigits(const emsdp::PlmnId& p) {
    // MCC digits 1..3, MNC digits 1..2 (+3 unless F): TS 24.008.
    std::string s;
    s += static_cast<char>('0' + (p[0] & 0x0F));
    s += static_cast<char>('0' + (p[0] >> 4));
    s += static_cast<char>('0' + (p[1] & 0x0F));
    s += static_cast<char>('0' + (p[2] & 0x0F));
    s += static_cast<char>('0' + (p[2] >> 4));
    if ((p[1] >> 4) != 0x0F)
        s += static_cast<char>('0' + (p[1] >> 4));
    return s;
}

// The store keeps a KeyVault blob as data (everything before the 32-octet binding tag) and
// binding (the tag), as best-hsectl does.
store::WrappedBlob wrapped(const Bytes& blob) {
    store::WrappedBlob w;
    const std::size_t n = blob.size() >= kBlobTagSize ? blob.size() - kBlobTagSize : 0;
    w.data.assign(blob.begin(), blob.begin() + static_cast<std::ptrdiff_t>(n));
    w.binding.assign(blob.begin() + static_cast<std::ptrdiff_t>(n), blob.end());
    return w;
}

Bytes fromStored(const store::WrappedBlob& w) {
    Bytes b = w.data;
    b.insert(b.end(), w.binding.begin(), w.binding.end());
    return b;
}

// KA-only: the set's KInt_EAS_PSK blob and EAS key identifier, stored with the key set.
void addPskRecord(store::KeySetRecord& r, const std::string& easId, const hsm::KeySet& ks) {
    if (!ks.easKeyId)
        return;
    store::EasKeyRecord e;
    e.easId = easId;
    e.type = store::EasKeyType::kIntEasPsk;
    e.key = wrapped(ks.easKeyBlob);
    e.identifier = *ks.easKeyId;
    r.easKeys.push_back(std::move(e));
}

// A subscriber's K and OPc blobs as the vault takes them (owning the octets).
struct SubscriberBlobs {
    Bytes k;
    Bytes opc;
    std::string imsi;

    explicit SubscriberBlobs(const store::SubscriberRecord& s)
        : k(fromStored(s.k)), opc(fromStored(s.op)), imsi(s.imsi) {}
    hsm::SubscriberRef ref() const {
        return {{k, {imsi, hsm::BlobPurpose::subscriberK, kSubscriberBlobVersion}},
                {opc, {imsi, hsm::BlobPurpose::opc, kSubscriberBlobVersion}}};
    }
};

// What the Session Request checks grant (A4 steps 6-11).
struct Grant {
    crypto::KeyAgreement keyAgreement = crypto::KeyAgreement::umts;
    emsdp::Service service = emsdp::Service::upIntegrity;
    emsdp::UpTermination termination = emsdp::UpTermination::hse;
    std::uint8_t encAlg = 0;
};

// A request to establish, as the loop hands it to a worker.
struct EstablishInput {
    Bytes request;
    std::string imsi;
    std::string easId;
    emsdp::UeConfiguration ueConfiguration;
    std::optional<emsdp::PlmnId> servingNetwork;
    std::uint64_t nonce = 0;
    std::uint32_t sessionId = 0;
    std::uint8_t kid = 0;  // resumption: the request's; full with a resync: the attempt's
    // Resumption with a tentative set (memory only): its snapshot.
    std::optional<store::KeySetRecord> tentative;
    // A24: the set was destroyed by a confirmation whose write is still in flight.
    bool keySetDestroyed = false;
    // A12: the New key ID of a refresh in progress counts as used (full establishment).
    std::set<std::uint8_t> usedKids;
};

// A worker's answer.
struct EstablishOutput {
    std::optional<emsdp::Cause> cause;  // reject (unprotected, Session ID 0)
    Grant grant;
    std::uint8_t kid = 0;
    std::optional<crypto::Rand> rand;
    std::optional<crypto::Autn> autn;
    std::optional<crypto::SessionKeys> keys;
    store::KeySetRecord keySet;  // the set used (full: the new tentative set)
    bool pendingSet = false;
    // Resumption: the request's nonce is the key set's new high-water mark, to be made durable
    // (A21) before the Session Start is sent: startJob submits it to the store's group commit.
    bool persistNonce = false;
    store::SubscriberRecord subscriber;
    store::ServiceMode easMode = store::ServiceMode::ueToHse;
};

std::optional<emsdp::Cause> checkAlgorithms(const HsedConfig& cfg, const EstablishInput& in,
                                            EstablishOutput& out, store::ServiceMode mode);

// A4 steps 6-8 and, for a full establishment, 9-11 (a resumption checks its key set, step 9,
// before checkAlgorithms). Runs on a worker (store reads).
std::optional<emsdp::Cause> checkRequest(store::Store& st, const HsedConfig& cfg,
                                         const EstablishInput& in, EstablishOutput& out,
                                         bool full) {
    auto sub = st.getSubscriber(in.imsi);
    if (!sub)
        return emsdp::Cause::unknown_subscriber;
    out.subscriber = std::move(*sub);
    const auto& allowed = out.subscriber.allowedEas;
    if (std::find(allowed.begin(), allowed.end(), in.easId) == allowed.end())
        return emsdp::Cause::eas_not_allowed;
    auto eas = st.getEas(in.easId);
    if (!eas)
        return emsdp::Cause::eas_not_allowed;
    if (eas->serviceMode == store::ServiceMode::ueToEas)
        return emsdp::Cause::service_not_allowed;  // until the HSE-EAS interface exists
    const auto release = in.ueConfiguration.release;
    if (release < 15 || release > 18)
        return emsdp::Cause::unsupported_release;
    if (full) {
        // A5: EPS and 5G need a Serving network and the AMF separation bit.
        const bool sepBit = (out.subscriber.amf[0] & 0x80) != 0;
        const bool sn = in.servingNetwork.has_value();
        std::optional<crypto::KeyAgreement> ka;
        if (cfg.policy.allowFiveG && sn && sepBit &&
            in.ueConfiguration.offers(crypto::KeyAgreement::fiveG))
            ka = crypto::KeyAgreement::fiveG;
        else if (cfg.policy.allowEps && sn && sepBit &&
                 in.ueConfiguration.offers(crypto::KeyAgreement::eps))
            ka = crypto::KeyAgreement::eps;
        else if (cfg.policy.allowUmts && in.ueConfiguration.offers(crypto::KeyAgreement::umts))
            ka = crypto::KeyAgreement::umts;
        if (!ka)
            return emsdp::Cause::no_common_algorithm;
        out.grant.keyAgreement = *ka;
        return checkAlgorithms(cfg, in, out, eas->serviceMode);
    }
    out.easMode = eas->serviceMode;
    return std::nullopt;
}

// A4 steps 10-11 (integrity algorithm, confidentiality per A6).
std::optional<emsdp::Cause> checkAlgorithms(const HsedConfig& cfg, const EstablishInput& in,
                                            EstablishOutput& out, store::ServiceMode mode) {
    if (!in.ueConfiguration.supportsIntegrity(kEia2))
        return emsdp::Cause::no_common_algorithm;
    // A6.
    if (mode == store::ServiceMode::kaOnly) {
        out.grant.service = emsdp::Service::kaOnly;
        out.grant.termination = emsdp::UpTermination::none;
        out.grant.encAlg = 0;
        return std::nullopt;
    }
    const bool demanded = cfg.policy.confidentialityRequiredEas.count(in.easId) != 0;
    const bool eea2 = in.ueConfiguration.supportsCiphering(kEea2);
    if (demanded && !eea2)
        return emsdp::Cause::no_common_algorithm;
    bool networkAllows = false;
    if (in.servingNetwork) {
        const std::string d = plmnDigits(*in.servingNetwork);
        networkAllows = cfg.policy.cipheringAllowedByDefault
                            ? cfg.policy.cipheringDeniedPlmns.count(d) == 0
                            : cfg.policy.cipheringAllowedPlmns.count(d) != 0;
    }
    out.grant.termination = emsdp::UpTermination::hse;
    if ((in.ueConfiguration.confidentialityRequested() || demanded) && networkAllows && eea2) {
        out.grant.service = emsdp::Service::upConfidentiality;
        out.grant.encAlg = kEea2;
    } else {
        out.grant.service = emsdp::Service::upIntegrity;
        out.grant.encAlg = 0;
    }
    return std::nullopt;
}

Result<EstablishOutput> runFull(hsm::VaultOps& ops, store::Store& st, const HsedConfig& cfg,
                                const EstablishInput& in) {
    EstablishOutput out;
    if (auto c = checkRequest(st, cfg, in, out, true)) {
        out.cause = c;
        return out;
    }
    if (out.subscriber.opKind != store::OpKind::opc)
        return makeError(HsedErrc::internal, "subscriber " + in.imsi + " is provisioned with OP");
    std::uint8_t kid = in.kid;
    if (kid == 0) {
        // 4.5: the lowest KID not used by a stored set (A12: tentative sets are replaced).
        auto sets = st.listKeySets(in.imsi);
        if (!sets)
            return makeError(sets.error());
        std::set<std::uint8_t> used = in.usedKids;
        for (const auto& s : *sets)
            used.insert(s.kid);
        for (std::uint8_t k = 1; k <= 7 && kid == 0; ++k)
            if (used.count(k) == 0)
                kid = k;
        if (kid == 0)
            return makeError(HsedErrc::internal, "no free key ID");
    }
    out.kid = kid;
    auto grant = st.sqn().allocate(in.imsi);
    if (!grant)
        return makeError(grant.error());
    crypto::Rand rand{};
    if (RAND_bytes(rand.data(), static_cast<int>(rand.size())) != 1)
        return makeError(HsedErrc::internal, "RAND_bytes failed");
    const SubscriberBlobs blobs(out.subscriber);
    auto vec = ops.generateVector(blobs.ref(), rand, grant->sqn, out.subscriber.amf);
    if (!vec)
        return makeError(vec.error());
    crypto::Ak sqnXorAk{};
    std::copy_n(vec->autn.begin(), sqnXorAk.size(), sqnXorAk.begin());
    const crypto::PlmnId plmn = in.servingNetwork.value_or(crypto::PlmnId{});
    auto root = crypto::deriveRoot(out.grant.keyAgreement, vec->ck, vec->ik, plmn, sqnXorAk);
    if (!root)
        return makeError(root.error());
    hsm::KeySetSpec spec;
    spec.hseId = cfg.hseId;
    spec.kint = {in.imsi, hsm::BlobPurpose::kint, kid};
    spec.session = hsm::SessionParams{in.sessionId, in.nonce};
    spec.easId = in.easId;
    spec.easKeyId = true;
    if (out.grant.service == emsdp::Service::kaOnly) {
        spec.easKey = hsm::EasKeyKind::psk;
        spec.easKeyBinding = {in.imsi, hsm::BlobPurpose::kintEasPsk, kid};
    }
    auto ks = ops.createKeySet(*root, spec);
    if (!ks || !ks->ksess)
        return makeError(ks ? Error{ErrorDomain::generic, 1, "no KSess"} : ks.error());
    auto keys = crypto::deriveSessionKeys(*ks->ksess, kEia2, out.grant.encAlg);
    if (!keys)
        return makeError(keys.error());
    out.keys = std::move(*keys);
    out.rand = vec->rand;
    out.autn = vec->autn;
    store::KeySetRecord& r = out.keySet;
    r.imsi = in.imsi;
    r.kid = kid;
    r.state = store::KeySetState::current;
    r.keyAgreement = static_cast<store::KeyAgreement>(out.grant.keyAgreement);
    r.plmn = in.servingNetwork;
    r.hseId = cfg.hseId;
    r.createdAt = unixNow();
    r.lifetimeSeconds = cfg.policy.keySetLifetimeSeconds;
    r.highestNonce = in.nonce;  // A10
    r.kInt = wrapped(ks->kintBlob);
    if (spec.easKey == hsm::EasKeyKind::psk)
        addPskRecord(r, in.easId, *ks);
    return out;
}

Result<EstablishOutput> runResumption(hsm::VaultOps& ops, store::Store& st, const HsedConfig& cfg,
                                      const EstablishInput& in) {
    EstablishOutput out;
    if (auto c = checkRequest(st, cfg, in, out, false)) {
        out.cause = c;
        return out;
    }
    out.kid = in.kid;
    // A4 step 9: the key set (0x0D for unknown, expired, MAC wrong, nonce not fresh).
    std::optional<store::KeySetRecord> set = in.tentative;
    if (!set) {
        auto stored = st.getKeySet(in.imsi, in.kid);
        if (stored)
            set = std::move(*stored);
    }
    auto refuse = [&out]() {
        out.cause = emsdp::Cause::key_set_invalid;
        return out;
    };
    if (!set || in.keySetDestroyed)
        return refuse();
    if (set->lifetimeSeconds != 0 &&
        unixNow() >= set->createdAt + static_cast<std::int64_t>(set->lifetimeSeconds))
        return refuse();
    const Bytes kintBlob = fromStored(set->kInt);
    const hsm::KeyRef kint{kintBlob, {in.imsi, hsm::BlobPurpose::kint, in.kid}};
    auto ksess0 = ops.deriveKSess(kint, 0, in.nonce);
    if (!ksess0)
        return refuse();
    auto cpInt0 = crypto::deriveSessionKey(*ksess0, crypto::KeyDistinguisher::cpInt, kEia2);
    if (!cpInt0)
        return makeError(cpInt0.error());
    crypto::Eia2 eia(*cpInt0);
    auto macOk = emsdp::verifyResumptionMac(in.request, eia);
    if (!macOk || !*macOk)
        return refuse();
    if (set->highestNonce && in.nonce <= *set->highestNonce)
        return refuse();
    out.grant.keyAgreement = static_cast<crypto::KeyAgreement>(set->keyAgreement);
    if (auto c = checkAlgorithms(cfg, in, out, out.easMode)) {
        out.cause = c;
        return out;
    }
    if (!in.tentative) {
        // A21: made durable by startJob (group commit) before the Session Start is sent; a
        // nonce found stale there is refused with 0x0D as here.
        out.persistNonce = true;
        out.pendingSet = set->state == store::KeySetState::pending;
    }
    auto ksess = ops.deriveKSess(kint, in.sessionId, in.nonce);
    if (!ksess)
        return makeError(ksess.error());
    auto keys = crypto::deriveSessionKeys(*ksess, kEia2, out.grant.encAlg);
    if (!keys)
        return makeError(keys.error());
    out.keys = std::move(*keys);
    out.keySet = std::move(*set);
    return out;
}

// ---- key refresh (profile 4.4, A15; docs/hsed.md "Key refresh")

// How a refresh flow ended, counted per Refresh origin (ue, hse, eas).
enum class RefreshOutcome : std::uint8_t {
    completed,         // HSE flow: confirmation verified and pending set stored; UE flow: answer
                       // outstanding until 44 s, the session's end or the new set's confirmation
    usim_mac_failure,  // cause 0x0A (Response or MAC'd Reject)
    sync_failure,  // UE flow: Reject 0x0B with a valid AUTS (an HSE flow with origin UE follows)
    resync_limit,  // HSE flow: a valid third AUTS (applied, then the flow ends)
    bad_confirmation,  // HSE flow: wrong Key confirmation
    bad_mac_s,         // AUTS with a bad MAC-S
    timed_out,         // HSE flow: no answer 16 s after the last resend
    abandoned,         // a UE request met it, its session ended, or a full establishment won
    rejected,          // HSE flow: the UE answered the request with a MAC'd Message Reject
    internal_error,    // HSM or store failure, no free key ID
};
constexpr std::size_t kRefreshOutcomes = 10;

constexpr std::string_view refreshOutcomeName(RefreshOutcome o) {
    switch (o) {
        case RefreshOutcome::completed:
            return "completed";
        case RefreshOutcome::usim_mac_failure:
            return "usim_mac_failure";
        case RefreshOutcome::sync_failure:
            return "sync_failure";
        case RefreshOutcome::resync_limit:
            return "resync_limit";
        case RefreshOutcome::bad_confirmation:
            return "bad_confirmation";
        case RefreshOutcome::bad_mac_s:
            return "bad_mac_s";
        case RefreshOutcome::timed_out:
            return "timed_out";
        case RefreshOutcome::abandoned:
            return "abandoned";
        case RefreshOutcome::rejected:
            return "rejected";
        case RefreshOutcome::internal_error:
            return "internal_error";
    }
    return "unknown";
}

constexpr std::string_view refreshOriginName(emsdp::RefreshOrigin o) {
    switch (o) {
        case emsdp::RefreshOrigin::ue:
            return "ue";
        case emsdp::RefreshOrigin::hse:
            return "hse";
        case emsdp::RefreshOrigin::eas:
            return "eas";
    }
    return "unknown";
}

// Index into refreshCounts (ue 0, hse 1, eas 2).
constexpr std::size_t originIndex(emsdp::RefreshOrigin o) {
    return static_cast<std::size_t>(o) - 1;
}

// A13: resends 4, 12 and 28 s after the first transmission; given up 16 s after the last.
constexpr std::array<std::uint64_t, 3> kRefreshResendMs{4000, 12000, 28000};
constexpr std::uint64_t kRefreshGiveUpMs = 44000;
// A15: the HSE's answer to a UE-triggered refresh stays outstanding this long.
constexpr std::uint64_t kRefreshAnswerMs = 44000;
// A14 (per HSE-triggered flow, A15).
constexpr int kRefreshMaxResyncs = 2;

// What a refresh vector is made from: the session's key set (4.4: same key agreement, serving
// network and HSE Id).
struct RefreshInput {
    std::string imsi;
    std::uint32_t sessionId = 0;
    std::set<std::uint8_t> usedKids;  // memory-only KIDs (tentative sets, a refresh's New KID)
    std::uint8_t kid = 0;             // a new request after a resync keeps its New key ID
    crypto::KeyAgreement keyAgreement = crypto::KeyAgreement::umts;
    std::optional<emsdp::PlmnId> plmn;
    std::uint32_t lifetimeSeconds = 0;
    std::string easId;
    bool psk = false;            // KA-only: KInt_EAS_PSK for the pending set too
    bool confirmation = false;   // HSE-triggered: the expected Key confirmation
    bool skipIfPending = false;  // policy (A15): not while a pending set exists
};

struct RefreshOutput {
    bool skipped = false;  // skipIfPending and the UE has a pending set
    crypto::Rand rand{};
    crypto::Autn autn{};
    std::optional<crypto::KeyConfirmation> confirmation;
    store::KeySetRecord pending;
};

// A new vector and KInt for a pending set (4.4). Runs on a worker: store reads and the SQN
// reservation happen here; the set itself is stored by the loop (UE flow: before the Response;
// HSE flow: once the Key confirmation verifies).
Result<RefreshOutput> runRefreshVector(hsm::VaultOps& ops, store::Store& st, const HsedConfig& cfg,
                                       const RefreshInput& in) {
    RefreshOutput out;
    auto sub = st.getSubscriber(in.imsi);
    if (!sub)
        return makeError(sub.error());
    if (sub->opKind != store::OpKind::opc)
        return makeError(HsedErrc::internal, "subscriber " + in.imsi + " is provisioned with OP");
    auto sets = st.listKeySets(in.imsi);
    if (!sets)
        return makeError(sets.error());
    std::set<std::uint8_t> used = in.usedKids;
    for (const auto& s : *sets) {
        if (in.skipIfPending && s.state == store::KeySetState::pending) {
            out.skipped = true;
            return out;
        }
        used.insert(s.kid);
    }
    // 4.5, A12: the lowest KID not held (current, pending, tentative, a refresh in progress).
    std::uint8_t kid = in.kid;
    for (std::uint8_t k = 1; k <= 7 && kid == 0; ++k)
        if (used.count(k) == 0)
            kid = k;
    if (kid == 0)
        return makeError(HsedErrc::internal, "no free key ID");
    auto grant = st.sqn().allocate(in.imsi);
    if (!grant)
        return makeError(grant.error());
    crypto::Rand rand{};
    if (RAND_bytes(rand.data(), static_cast<int>(rand.size())) != 1)
        return makeError(HsedErrc::internal, "RAND_bytes failed");
    const SubscriberBlobs blobs(*sub);
    auto vec = ops.generateVector(blobs.ref(), rand, grant->sqn, sub->amf);
    if (!vec)
        return makeError(vec.error());
    crypto::Ak sqnXorAk{};
    std::copy_n(vec->autn.begin(), sqnXorAk.size(), sqnXorAk.begin());
    auto root = crypto::deriveRoot(in.keyAgreement, vec->ck, vec->ik,
                                   in.plmn.value_or(crypto::PlmnId{}), sqnXorAk);
    if (!root)
        return makeError(root.error());
    hsm::KeySetSpec spec;
    spec.hseId = cfg.hseId;
    spec.kint = {in.imsi, hsm::BlobPurpose::kint, kid};
    spec.easId = in.easId;
    spec.easKeyId = true;
    if (in.psk) {
        spec.easKey = hsm::EasKeyKind::psk;
        spec.easKeyBinding = {in.imsi, hsm::BlobPurpose::kintEasPsk, kid};
    }
    if (in.confirmation)
        spec.confirmation = hsm::ConfirmationParams{in.sessionId, vec->rand};
    auto ks = ops.createKeySet(*root, spec);
    if (!ks)
        return makeError(ks.error());
    if (in.confirmation && !ks->keyConfirmation)
        return makeError(HsedErrc::internal, "no key confirmation");
    out.confirmation = ks->keyConfirmation;
    out.rand = vec->rand;
    out.autn = vec->autn;
    store::KeySetRecord& r = out.pending;
    r.imsi = in.imsi;
    r.kid = kid;
    r.state = store::KeySetState::pending;
    r.keyAgreement = static_cast<store::KeyAgreement>(in.keyAgreement);
    r.plmn = in.plmn;
    r.hseId = cfg.hseId;
    r.createdAt = unixNow();                 // A11: its own AKA
    r.lifetimeSeconds = in.lifetimeSeconds;  // A11: the current set's lifetime
    r.kInt = wrapped(ks->kintBlob);          // A10: no nonce yet
    if (in.psk)
        addPskRecord(r, in.easId, *ks);
    return out;
}

}  // namespace

struct Daemon::Impl {
    struct Session {
        std::uint32_t id = 0;
        std::uint64_t seq = 0;  // creation order
        std::string imsi;
        std::uint8_t kid = 0;
        std::optional<emsdp::SecureChannel> channel;
        net::SocketAddress peer;
        net::UdpSocket* socket = nullptr;
        bool confirmed = false;
        bool resumed = false;
        bool tentativeSet = false;  // its key set is tentative (a full establishment)
        bool pendingSet = false;    // resumed with a stored pending set
        bool jobRunning = false;    // a resync job is in flight
        emsdp::Service service = emsdp::Service::upIntegrity;
        std::uint64_t createdMs = 0;
        std::uint64_t lastActiveMs = 0;   // last MAC-valid message from the UE
        std::uint64_t terminateAtMs = 0;  // HSE-initiated termination: delete at (4.5)
        bool terminateResent = false;     // A13: the Terminate Request is resent once, at 4 s
        // What only an unconfirmed session needs; freed at confirmation, so an idle confirmed
        // session stays small (issue 6, decision 91).
        struct Attempt {
            Bytes request;  // the Session Request octets (cache key)
            Bytes start;    // the latest Session Start octets (4.6, A13)
            // A full attempt, for resynchronisation (4.1 step 4, A14).
            std::unique_ptr<EstablishInput> input;
            crypto::Rand rand{};
            std::unique_ptr<store::SubscriberRecord> subscriber;
            int resyncs = 0;
        };
        std::unique_ptr<Attempt> attempt;
        // The key set's parameters, for a refresh (4.4: the pending set keeps them; A11) and
        // the refresh policy.
        crypto::KeyAgreement keyAgreement = crypto::KeyAgreement::umts;
        std::optional<emsdp::PlmnId> plmn;
        std::uint32_t lifetimeSeconds = 0;
        std::int64_t setCreatedAt = 0;
        std::uint64_t setUseCount = 0;       // confirmed sessions with the set, this one included
        const std::string* easId = nullptr;  // interned in Impl::easIds (one copy per EAS ID)
        bool keySetsStorable = false;        // A8

        const std::string& eas() const {
            static const std::string none;
            return easId != nullptr ? *easId : none;
        }
    };

    // A key refresh in progress, at most one per UE (4.4, A15). Memory only: it lives in a
    // session, and sessions do not survive a restart.
    struct Refresh {
        enum class Phase {
            vector,       // a worker makes the vector and KInt
            storing,      // the pending set is being made durable
            outstanding,  // UE flow: the answer was sent; HSE flow: the request was sent
            resync,       // a worker checks AUTS and sets SQN_HE
        };
        bool ueFlow = false;  // UE-triggered: the HSE answers; else the HSE requests
        emsdp::RefreshOrigin origin = emsdp::RefreshOrigin::hse;
        Phase phase = Phase::vector;
        std::uint64_t token = 0;  // matches worker and store completions to this flow
        std::uint32_t sessionId = 0;
        std::uint8_t newKid = 0;  // 0 until the first vector is made
        crypto::Rand rand{};
        crypto::Autn autn{};
        crypto::KeyAgreement keyAgreement = crypto::KeyAgreement::umts;
        std::optional<crypto::KeyConfirmation> expected;  // HSE flow
        store::KeySetRecord pending;                      // HSE flow: stored once confirmed
        std::string easId;
        std::uint64_t firstSentMs = 0;
        std::size_t resends = 0;
        int resyncs = 0;
    };

    HsedConfig cfg;
    net::Loop loop;
    std::unique_ptr<hsm::KeyVault> vault;
    std::unique_ptr<store::Store> st;
    std::vector<net::HandlePtr<net::UdpSocket>> sockets;
    net::HandlePtr<net::Async> wake;
    net::HandlePtr<net::Signal> sigterm;
    net::HandlePtr<net::Signal> sigint;
    net::HandlePtr<net::Timer> sweep;
    // The UNIX datagram socket bound for downlink injection, and its poll handle (closed first).
    int downlinkFd = -1;
    net::HandlePtr<net::Poll> downlinkPoll;
    std::unique_ptr<UplinkSink> uplink;
    hsm::CallStats hsmCallsRetired{};  // PKCS#11 calls of vaults replaced by reopenVault()
    // hsm.recycle_after_objects (SoftHSM 2.6): while a recycle waits for the jobs in flight, new
    // jobs wait here, in order, and go to the new vault.
    // Decremented on the worker that ran the job; the loop is told only while a recycle waits.
    std::atomic<std::size_t> hsmJobsInFlight{0};
    std::atomic<bool> hsmRecycling{false};
    std::vector<std::function<void()>> deferredHsm;
    std::uint64_t hsmRecycles = 0;
    std::atomic<std::uint64_t> hsmObjectsAtOpen{0};
    std::atomic<std::uint64_t> recycleAfterObjects{0};  // hsm.recycle_after_objects, at start
    std::atomic<bool> recycleCheckPosted{false};

    std::mutex inboxMutex;
    std::vector<std::function<void()>> inbox;
    bool stopping = false;

    // Session keys (issue 6): raw keys in the locked slab, keyed contexts in a bounded cache.
    // Declared before `sessions`: the channels release their slots first.
    std::unique_ptr<emsdp::KeySlab> keySlab;
    std::unique_ptr<emsdp::ContextCache> keyCache;
    std::unordered_map<std::uint32_t, Session> sessions;
    // The EAS IDs sessions name (registered EAS IDs only, so bounded by the registry).
    std::set<std::string> easIds;
    // The sessions of each UE (A9, A12 look them up per establishment: no scan of every session;
    // issue 8). Key: imsiKey().
    std::unordered_multimap<std::uint64_t, std::uint32_t> sessionsByImsi;
    std::set<std::uint32_t> reservedIds;
    std::map<Bytes, std::uint32_t> requestCache;
    std::set<Bytes> inFlight;
    // Tentative key sets (memory only, 4.1 step 6): IMSI -> KID -> record.
    std::map<std::string, std::map<std::uint8_t, store::KeySetRecord>> tentative;
    RateLimiter perSource;
    RateLimiter perImsi;
    std::array<std::uint64_t, emsdp::kDropReasonCount> drops{};
    std::uint64_t nextSeq = 1;
    // Key refresh (issue 7): flows in progress by IMSI, outcomes by origin (ue, hse, eas).
    std::map<std::string, Refresh> refreshes;
    std::uint64_t nextRefreshToken = 1;
    std::array<std::array<std::uint64_t, kRefreshOutcomes>, 3> refreshCounts{};
    std::uint64_t resyncCount = 0;  // SQN resynchronisations (establishment and refresh)
    // A24: a set being made current (write in flight): resumptions with another KID get 0x0D.
    std::map<std::string, std::uint8_t> promoting;

    explicit Impl(const HsedConfig& c)
        : cfg(c),
          perSource(c.policy.perSource.ratePerSecond, c.policy.perSource.burst),
          perImsi(c.policy.perImsi.ratePerSecond, c.policy.perImsi.burst) {}

    // ---- plumbing

    void post(std::function<void()> f) {
        {
            std::lock_guard<std::mutex> lock(inboxMutex);
            inbox.push_back(std::move(f));
        }
        wake->send();
    }

    void drainInbox() {
        std::vector<std::function<void()>> jobs;
        {
            std::lock_guard<std::mutex> lock(inboxMutex);
            jobs.swap(inbox);
        }
        for (auto& j : jobs)
            if (!stopping)
                j();
    }

    void drop(emsdp::DropReason r, const char* where = "") {
        ++drops[static_cast<std::size_t>(r)];
        log::debug(kLog, std::string("drop ") + std::string(emsdp::dropReasonName(r)) +
                             (*where != '\0' ? std::string(" (") + where + ")" : std::string()));
    }

    void send(net::UdpSocket* sock, const net::SocketAddress& to, ByteView data) {
        if (data.size() > kMaxDatagram) {
            drop(emsdp::DropReason::datagram_too_large, "outgoing");
            return;
        }
        (void)sock->send(to.get(), data);
    }

    void sendUnprotectedReject(net::UdpSocket* sock, const net::SocketAddress& to,
                               std::uint32_t sessionId, emsdp::Cause cause,
                               std::optional<std::uint16_t> backOff = {}) {
        std::array<std::uint8_t, 64> buf{};
        emsdp::MessageReject rej;
        rej.cause = cause;
        rej.backOff = backOff;
        auto n = emsdp::encodeUnprotectedReject(sessionId, rej, buf);
        if (!n) {
            log::error(kLog, "cannot encode a Message Reject: " + n.error().message);
            return;
        }
        ++rejectsByCause[static_cast<std::uint8_t>(cause)];
        log::info(kLog, "reject " + std::string(emsdp::causeName(cause)) + " to " + to.toString() +
                            " session " + std::to_string(sessionId));
        send(sock, to, ByteView(buf.data(), *n));
    }

    // IMSI digits (6..15) as a number with the digit count in the low 4 bits.
    static std::uint64_t imsiKey(const std::string& imsi) noexcept {
        std::uint64_t v = 0;
        for (char c : imsi)
            v = v * 10 + static_cast<std::uint64_t>(c - '0');
        return (v << 4) | (imsi.size() & 0x0F);
    }

    // The IDs of the UE's sessions.
    std::vector<std::uint32_t> sessionsOf(const std::string& imsi) const {
        std::vector<std::uint32_t> ids;
        auto [b, e] = sessionsByImsi.equal_range(imsiKey(imsi));
        for (auto it = b; it != e; ++it)
            if (auto s = sessions.find(it->second); s != sessions.end() && s->second.imsi == imsi)
                ids.push_back(it->second);
        return ids;
    }

    std::uint32_t allocateSessionId() {
        for (;;) {
            std::uint32_t id = 0;
            if (RAND_bytes(reinterpret_cast<unsigned char*>(&id), sizeof id) != 1)
                continue;
            if (id != 0 && sessions.count(id) == 0 && reservedIds.count(id) == 0) {
                reservedIds.insert(id);
                return id;
            }
        }
    }

    // ---- receive

    void onDatagram(net::UdpSocket* sock, ByteView data, const sockaddr* from) {
        const net::SocketAddress src = net::SocketAddress::from(from);
        auto r = emsdp::route(data, emsdp::Side::network);
        if (!r) {
            drop(r.error());
            return;
        }
        switch (r->kind) {
            case emsdp::RouteKind::sessionRequest:
                onSessionRequest(sock, data, src);
                return;
            case emsdp::RouteKind::unprotectedReject:
                onUnprotectedReject(data, src, r->prefix.sessionId);
                return;
            case emsdp::RouteKind::session:
                onSessionMessage(sock, data, src, r->prefix);
                return;
        }
    }

    void onSessionRequest(net::UdpSocket* sock, ByteView data, const net::SocketAddress& src) {
        auto parsed = emsdp::parseSessionRequest(data);
        if (!parsed) {
            const emsdp::Verdict v = parsed.error();
            if (v.isDrop())
                drop(v.reason);
            else
                sendUnprotectedReject(sock, src, 0, v.cause);
            return;
        }
        Bytes request(data.begin(), data.end());
        // 4.6, A13: an identical request of an unconfirmed session gets the same octets; it is
        // not counted by the rate limits (A22).
        if (auto it = requestCache.find(request); it != requestCache.end()) {
            auto s = sessions.find(it->second);
            if (s != sessions.end() && !s->second.confirmed && s->second.attempt &&
                !s->second.attempt->start.empty()) {
                s->second.peer = src;  // A17
                s->second.socket = sock;
                log::debug(kLog, "identical Session Request: cached Session Start resent");
                send(sock, src, s->second.attempt->start);
                return;
            }
        }
        if (inFlight.count(request) != 0) {
            log::debug(kLog, "identical Session Request while its answer is being prepared");
            return;
        }
        const std::uint64_t now = loop.nowMs();
        const auto& body = parsed->body;
        std::string srcKey = src.toString();
        if (auto colon = srcKey.rfind(':'); colon != std::string::npos)
            srcKey.resize(colon);
        const std::string imsiKey = toHex(body.imsi.octets);
        // A4 step 5; both buckets are charged.
        const bool okSource = perSource.allow(srcKey, now);
        const bool okImsi = perImsi.allow(imsiKey, now);
        if (!okSource || !okImsi) {
            sendUnprotectedReject(sock, src, 0, emsdp::Cause::congestion,
                                  cfg.policy.backoffSeconds);
            return;
        }
        // Issue 6: every key slot taken (by sessions and requests in flight): 0x0F with Back-off
        // before any HSM work (decision 87).
        if (sessions.size() + inFlight.size() >= cfg.maxSessions) {
            sendUnprotectedReject(sock, src, 0, emsdp::Cause::congestion,
                                  cfg.policy.backoffSeconds);
            return;
        }
        auto digits = body.imsi.digits();
        if (!digits) {
            sendUnprotectedReject(sock, src, 0, emsdp::Cause::unknown_subscriber);
            return;
        }
        if (refuseWithoutHsm(sock, src, 0))
            return;
        EstablishInput in;
        in.request = request;
        in.imsi = *digits;
        in.easId = std::string(body.easId);
        in.ueConfiguration = body.ueConfiguration;
        in.servingNetwork = body.servingNetwork;
        in.nonce = body.ueNonce;
        in.sessionId = allocateSessionId();
        const bool resumption = parsed->resumption();
        if (resumption) {
            in.kid = parsed->header.kid;
            if (auto t = tentative.find(in.imsi); t != tentative.end()) {
                if (auto k = t->second.find(in.kid); k != t->second.end())
                    in.tentative = k->second;
            }
            if (auto p = promoting.find(in.imsi); p != promoting.end() && p->second != in.kid)
                in.keySetDestroyed = !in.tentative.has_value();
        } else if (auto rf = refreshes.find(in.imsi);
                   rf != refreshes.end() && rf->second.newKid != 0) {
            in.usedKids.insert(rf->second.newKid);
        }
        inFlight.insert(request);
        startJob(std::move(in), resumption, sock, src, 0);
    }

    // Runs an establishment on a worker; `resyncOf` is the Session ID of an attempt being
    // resynchronised (0: a new request).
    void startJob(EstablishInput in, bool resumption, net::UdpSocket* sock,
                  const net::SocketAddress& src, std::uint32_t resyncOf) {
        Impl* self = this;
        store::Store* stp = st.get();
        const HsedConfig* cfgp = &cfg;
        auto input = std::make_shared<EstablishInput>(std::move(in));
        const auto t0 = std::chrono::steady_clock::now();
        postHsm(
            [stp, cfgp, input, resumption, self](hsm::VaultOps& ops) {
                const auto started = std::chrono::steady_clock::now();
                auto r = resumption ? runResumption(ops, *stp, *cfgp, *input)
                                    : runFull(ops, *stp, *cfgp, *input);
                (resumption ? self->hsmResumed : self->hsmFull).observe(secondsSince(started));
                return r;
            },
            [self, stp, input, resumption, sock, src, resyncOf, t0](Result<EstablishOutput> r) {
                auto shared = std::make_shared<Result<EstablishOutput>>(std::move(r));
                auto finish = [self, input, resumption, sock, src, resyncOf, shared, t0]() {
                    self->post([self, input, resumption, sock, src, resyncOf, shared, t0]() {
                        (resumption ? self->akaResumed : self->akaFull).observe(secondsSince(t0));
                        self->onJobDone(*input, resumption, sock, src, resyncOf, *shared);
                    });
                };
                if (!*shared || (*shared)->cause || !(*shared)->persistNonce) {
                    finish();
                    return;
                }
                // A21: the nonce high-water mark is durable before the loop sends the Session
                // Start. Submitted without blocking the HSM worker, so concurrent resumptions
                // share one fsync in the store's group commit.
                stp->acceptResumptionNonce(
                    input->imsi, input->kid, input->nonce,
                    [shared, finish = std::move(finish)](Result<void> acc) {
                        if (!acc) {
                            if (acc.error().domain == ErrorDomain::store &&
                                acc.error().code ==
                                    static_cast<int>(store::StoreErrc::stale_nonce)) {
                                (*shared)->cause = emsdp::Cause::key_set_invalid;  // as refuse()
                                (*shared)->keys.reset();
                                (*shared)->persistNonce = false;
                                (*shared)->pendingSet = false;
                            } else {
                                *shared = makeError(std::move(acc.error()));
                            }
                        }
                        finish();
                    });
            });
    }

    void onJobDone(EstablishInput& in, bool resumption, net::UdpSocket* sock,
                   const net::SocketAddress& src, std::uint32_t resyncOf,
                   Result<EstablishOutput>& r) {
        if (resyncOf == 0) {
            inFlight.erase(in.request);
            reservedIds.erase(in.sessionId);
        } else {
            auto it = sessions.find(resyncOf);
            if (it == sessions.end())
                return;  // the attempt ended meanwhile
            it->second.jobRunning = false;
        }
        const std::uint32_t rejectId = resyncOf;
        if (!r) {
            log::error(kLog, "establishment for IMSI " + in.imsi + " failed: " + r.error().message);
            sendUnprotectedReject(sock, src, rejectId, emsdp::Cause::internal_error);
            if (resyncOf != 0)
                forgetAttempt(resyncOf);
            return;
        }
        EstablishOutput& out = *r;
        if (out.cause) {
            sendUnprotectedReject(sock, src, rejectId, *out.cause);
            if (resyncOf != 0)
                forgetAttempt(resyncOf);
            return;
        }
        if (resumption && in.tentative) {
            // The tentative set's nonce lives in memory: check it again on the loop.
            auto t = tentative.find(in.imsi);
            store::KeySetRecord* set = nullptr;
            if (t != tentative.end()) {
                if (auto k = t->second.find(in.kid); k != t->second.end())
                    set = &k->second;
            }
            if (set == nullptr || (set->highestNonce && in.nonce <= *set->highestNonce)) {
                sendUnprotectedReject(sock, src, 0, emsdp::Cause::key_set_invalid);
                return;
            }
            set->highestNonce = in.nonce;
        }
        const std::uint32_t id = resyncOf != 0 ? resyncOf : in.sessionId;
        emsdp::ChannelConfig cc;
        cc.side = emsdp::Side::network;
        cc.sessionId = id;
        cc.kid = out.kid;
        cc.cpScheme = static_cast<emsdp::CounterScheme>(cfg.policy.cpCounterScheme);
        cc.upScheme = static_cast<emsdp::CounterScheme>(cfg.policy.upCounterScheme);
        cc.upEnabled = out.grant.service != emsdp::Service::kaOnly;
        cc.upCiphering = out.grant.service == emsdp::Service::upConfidentiality;
        if (resyncOf != 0)
            sessions[resyncOf].channel.reset();  // the new attempt's keys take its slot
        auto channel =
            emsdp::SecureChannel::create(cc, emsdp::ChannelKeys::from(*out.keys), *keyCache);
        out.keys.reset();
        if (!channel) {
            const bool full = channel.error().domain == ErrorDomain::generic &&
                              channel.error().code == static_cast<int>(emsdp::KeySlabErrc::full);
            if (full) {
                sendUnprotectedReject(sock, src, rejectId, emsdp::Cause::congestion,
                                      cfg.policy.backoffSeconds);
            } else {
                log::error(kLog, "cannot key a channel: " + channel.error().message);
                sendUnprotectedReject(sock, src, rejectId, emsdp::Cause::internal_error);
            }
            if (resyncOf != 0)
                forgetAttempt(resyncOf);
            return;
        }
        auto checksum = emsdp::requestChecksum(in.request);
        emsdp::SessionStart ss;
        ss.rand = out.rand;
        ss.autn = out.autn;
        ss.keyAgreement = out.grant.keyAgreement;
        ss.hseConfiguration.cpScheme = cc.cpScheme;
        ss.hseConfiguration.upScheme = cc.upScheme;
        ss.hseConfiguration.integrityAlg = kEia2;
        ss.hseConfiguration.cipheringAlg = out.grant.encAlg;
        ss.hseConfiguration.flags = out.grant.service == emsdp::Service::kaOnly
                                        ? emsdp::HseConfiguration::kFlagConfirmationRequired
                                        : 0;
        ss.hseConfiguration.hseId = cfg.hseId;
        ss.serviceParameters.service = out.grant.service;
        ss.serviceParameters.termination = out.grant.termination;
        ss.serviceParameters.keySetLifetime = out.keySet.lifetimeSeconds;
        if (checksum)
            ss.requestChecksum = *checksum;
        std::array<std::uint8_t, kMaxDatagram> buf{};
        auto n = channel->sealCp(emsdp::Body(ss), buf);
        if (!n || !checksum) {
            log::error(kLog, "cannot seal a Session Start");
            sendUnprotectedReject(sock, src, rejectId, emsdp::Cause::internal_error);
            return;
        }
        if (!resumption && resyncOf == 0) {
            // A12: a new full establishment replaces the UE's older tentative sets and their
            // attempts.
            std::vector<std::uint32_t> old;
            for (auto sid : sessionsOf(in.imsi)) {
                const Session& s = sessions.at(sid);
                if (s.tentativeSet && !s.confirmed)
                    old.push_back(sid);
            }
            for (auto sid : old)
                deleteSession(sid, "replaced by a new full establishment");
            tentative.erase(in.imsi);
        }
        Session fresh;
        Session& s = resyncOf != 0 ? sessions[resyncOf] : fresh;
        s.id = id;
        if (resyncOf == 0) {
            s.seq = nextSeq++;
            s.createdMs = loop.nowMs();
            s.attempt = std::make_unique<Session::Attempt>();
            s.attempt->request = in.request;
            s.attempt->input = std::make_unique<EstablishInput>(in);
            s.attempt->input->tentative.reset();
        }
        if (!s.attempt)
            s.attempt = std::make_unique<Session::Attempt>();
        s.imsi = in.imsi;
        s.kid = out.kid;
        s.channel.emplace(std::move(*channel));
        s.peer = src;
        s.socket = sock;
        s.resumed = resumption;
        s.tentativeSet = !resumption || in.tentative.has_value();
        s.pendingSet = out.pendingSet;
        s.service = out.grant.service;
        s.attempt->start.assign(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(*n));
        if (out.rand)
            s.attempt->rand = *out.rand;
        s.attempt->subscriber = std::make_unique<store::SubscriberRecord>(out.subscriber);
        s.keyAgreement = out.grant.keyAgreement;
        s.plmn = out.keySet.plmn;
        s.lifetimeSeconds = out.keySet.lifetimeSeconds;
        s.setCreatedAt = out.keySet.createdAt;
        s.setUseCount = out.keySet.useCount;
        s.easId = &*easIds.insert(in.easId).first;
        s.keySetsStorable = in.ueConfiguration.keySetsStorable();
        if (!resumption)
            tentative[in.imsi][out.kid] = out.keySet;
        if (resyncOf == 0) {
            requestCache[s.attempt->request] = id;
            sessions.emplace(id, std::move(fresh));
            sessionsByImsi.emplace(imsiKey(in.imsi), id);
        }
        if (resyncOf == 0)
            countSession(resumption ? "established_resumed" : "established_full");
        log::info(kLog,
                  std::string(resumption ? "resumed" : "full") + " session " + std::to_string(id) +
                      " IMSI " + in.imsi + " KID " + std::to_string(out.kid) + " service " +
                      std::to_string(static_cast<int>(out.grant.service)) + " key agreement " +
                      std::to_string(static_cast<int>(out.grant.keyAgreement)));
        send(sock, src, ByteView(buf.data(), *n));
    }

    void onUnprotectedReject(ByteView data, const net::SocketAddress& src, std::uint32_t sid) {
        auto it = sessions.find(sid);
        if (it == sessions.end()) {
            drop(emsdp::DropReason::unknown_session);
            return;
        }
        Session& s = it->second;
        if (s.confirmed || s.resumed || s.jobRunning) {
            drop(emsdp::DropReason::unsolicited_reject);
            return;
        }
        if (s.peer.toString() != src.toString()) {
            drop(emsdp::DropReason::wrong_source_address);
            return;
        }
        auto rej = emsdp::parseUnprotectedReject(data);
        if (!rej) {
            drop(rej.error());
            return;
        }
        if (rej->body.cause == emsdp::Cause::aka_mac_failure) {
            log::info(kLog, "AKA MAC failure reported for session " + std::to_string(sid));
            forgetAttempt(sid);
            return;
        }
        if (rej->body.cause != emsdp::Cause::synch_failure || !rej->body.auts) {
            drop(emsdp::DropReason::unsolicited_reject);
            return;
        }
        // Resynchronisation: AUTS checked on a worker, SQN_HE set durably there.
        if (refuseWithoutHsm(s.socket, s.peer, sid)) {
            forgetAttempt(sid);
            return;
        }
        s.jobRunning = true;
        Impl* self = this;
        store::Store* stp = st.get();
        if (!s.attempt || !s.attempt->subscriber || !s.attempt->input) {
            drop(emsdp::DropReason::unsolicited_reject);
            return;
        }
        const auto sub = std::make_shared<store::SubscriberRecord>(*s.attempt->subscriber);
        const crypto::Rand rand = s.attempt->rand;
        const crypto::Auts auts = *rej->body.auts;
        postHsm(
            [stp, sub, rand, auts](hsm::VaultOps& ops) -> Result<bool> {
                const SubscriberBlobs blobs(*sub);
                auto ms = ops.recoverSqnMs(blobs.ref(), rand, auts);
                if (!ms)
                    return false;  // bad MAC-S (dropped and counted)
                auto rs = stp->sqn().resync(sub->imsi, *ms);
                if (!rs)
                    return makeError(rs.error());
                return true;
            },
            [self, sid](Result<bool> r) {
                auto shared = std::make_shared<Result<bool>>(std::move(r));
                self->post([self, sid, shared]() { self->onResynced(sid, *shared); });
            });
    }

    void onResynced(std::uint32_t sid, Result<bool>& r) {
        auto it = sessions.find(sid);
        if (it == sessions.end())
            return;
        Session& s = it->second;
        s.jobRunning = false;
        if (!r) {
            log::error(kLog, "resynchronisation failed: " + r.error().message);
            sendUnprotectedReject(s.socket, s.peer, sid, emsdp::Cause::internal_error);
            forgetAttempt(sid);
            return;
        }
        if (!*r) {
            drop(emsdp::DropReason::bad_mac_s);
            return;
        }
        if (!s.attempt || !s.attempt->input)
            return;  // confirmed meanwhile
        const int resyncs = ++s.attempt->resyncs;
        ++resyncCount;
        log::info(kLog,
                  "SQN resynchronised for IMSI " + s.imsi + " (" + std::to_string(resyncs) + ")");
        if (resyncs > 2) {
            sendUnprotectedReject(s.socket, s.peer, sid, emsdp::Cause::resync_failed);
            forgetAttempt(sid);
            return;
        }
        EstablishInput in = *s.attempt->input;
        in.kid = s.kid;
        in.sessionId = sid;
        s.jobRunning = true;
        startJob(std::move(in), false, s.socket, s.peer, sid);
    }

    void onSessionMessage(net::UdpSocket* sock, ByteView data, const net::SocketAddress& src,
                          const emsdp::HeaderPrefix& prefix) {
        auto it = sessions.find(prefix.sessionId);
        if (it == sessions.end()) {
            drop(emsdp::DropReason::unknown_session);
            return;
        }
        Session& s = it->second;
        if (s.jobRunning) {
            drop(emsdp::DropReason::unknown_session, "attempt being resynchronised");
            return;
        }
        if (prefix.plane == emsdp::Plane::up) {
            std::array<std::uint8_t, kMaxDatagram> plain{};
            auto up = s.channel->openUp(data, plain);
            if (!up) {
                onVerdict(s, up.error(), false, src, sock);
                return;
            }
            const std::uint32_t sid = s.id;
            authenticated(s, src, sock);
            auto again = sessions.find(sid);
            if (again != sessions.end())
                deliverUplink(again->second, up->payload);
            return;
        }
        auto cp = s.channel->openCp(data);
        if (!cp) {
            onVerdict(s, cp.error(), true, src, sock);
            return;
        }
        const std::uint32_t sid = s.id;
        authenticated(s, src, sock);
        auto again = sessions.find(sid);
        if (again == sessions.end())
            return;
        Session& live = again->second;
        if (std::holds_alternative<emsdp::SessionTerminateRequest>(cp->body)) {
            sendCp(live, emsdp::SessionTerminateResponse{});
            log::info(kLog, "session " + std::to_string(sid) + " terminated by the UE");
            deleteSession(sid, "terminated");
        } else if (std::holds_alternative<emsdp::SessionTerminateResponse>(cp->body)) {
            if (live.terminateAtMs != 0)
                deleteSession(sid, "termination answered");
            else
                drop(emsdp::DropReason::unexpected_command, "unsolicited terminate response");
        } else if (auto* rej = std::get_if<emsdp::MessageReject>(&cp->body)) {
            log::info(kLog, "session " + std::to_string(sid) + ": UE sent Message Reject " +
                                std::string(emsdp::causeName(rej->cause)));
            onRefreshReject(live, *rej);
        } else if (std::holds_alternative<emsdp::SessionStartConfirmation>(cp->body)) {
            log::debug(kLog, "session " + std::to_string(sid) + " confirmed by 0x12");
        } else if (std::holds_alternative<emsdp::UeManageKeysRequest>(cp->body)) {
            onUeRefreshRequest(live);
        } else if (auto* mk = std::get_if<emsdp::UeManageKeysResponse>(&cp->body)) {
            onUeRefreshResponse(live, *mk);
        } else {
            drop(emsdp::DropReason::unexpected_command);
        }
    }

    void onVerdict(Session& s, const emsdp::Verdict& v, bool cp, const net::SocketAddress& src,
                   net::UdpSocket* sock) {
        const std::uint32_t sid = s.id;
        if (v.authenticated)
            authenticated(s, src, sock);  // A17: the message's address, as for a good one
        auto again = sessions.find(sid);
        if (v.isReject() && cp && again != sessions.end()) {
            log::info(kLog, "session " + std::to_string(sid) + ": reject " +
                                std::string(emsdp::causeName(v.cause)) + " (" +
                                std::string(emsdp::dropReasonName(v.reason)) + ")");
            emsdp::MessageReject rej;
            rej.cause = v.cause;
            sendCp(again->second, rej);
            return;
        }
        drop(v.reason);
    }

    void sendCp(Session& s, const emsdp::Body& body) {
        if (const auto* rj = std::get_if<emsdp::MessageReject>(&body))
            ++rejectsByCause[static_cast<std::uint8_t>(rj->cause)];
        std::array<std::uint8_t, kMaxDatagram> buf{};
        if (s.channel->exhaustionDue()) {
            auto n = s.channel->sealExhaustionTerminate(buf);
            if (n)
                send(s.socket, s.peer, ByteView(buf.data(), *n));
            deleteSession(s.id, "counter exhausted");
            return;
        }
        auto n = s.channel->sealCp(body, buf);
        if (!n) {
            log::error(kLog, "cannot seal a CP message: " + n.error().message);
            return;
        }
        send(s.socket, s.peer, ByteView(buf.data(), *n));
    }

    // A MAC-valid message: confirms (A9) and updates the address (A17).
    void authenticated(Session& s, const net::SocketAddress& src, net::UdpSocket* sock) {
        s.lastActiveMs = loop.nowMs();
        s.peer = src;
        s.socket = sock;
        if (!s.confirmed)
            confirm(s);
    }

    void confirm(Session& s) {
        s.confirmed = true;
        countSession("confirmed");
        if (s.attempt)
            requestCache.erase(s.attempt->request);
        s.attempt.reset();
        const std::string imsi = s.imsi;
        const std::uint8_t kid = s.kid;
        const std::uint64_t seq = s.seq;
        const std::uint32_t sid = s.id;
        bool setChanged = false;
        const bool wasTentative = s.tentativeSet;
        log::info(kLog, "session " + std::to_string(sid) + " confirmed");
        if (s.tentativeSet) {
            setChanged = true;
            s.tentativeSet = false;
            auto t = tentative.find(imsi);
            if (t != tentative.end()) {
                auto k = t->second.find(kid);
                if (k != t->second.end()) {
                    store::KeySetRecord rec = k->second;
                    rec.state = store::KeySetState::current;
                    rec.useCount = 1;
                    s.setUseCount = 1;
                    promoting[imsi] = kid;  // A24
                    // Every other tentative set of the UE is destroyed; this one stays usable
                    // from memory until the store has it.
                    std::map<std::uint8_t, store::KeySetRecord> keep;
                    keep.emplace(kid, k->second);
                    t->second.swap(keep);
                    persistCurrent(std::move(rec), sid);
                }
            }
        } else if (s.pendingSet) {
            setChanged = true;
            s.pendingSet = false;
            promoting[imsi] = kid;  // A24
            Impl* self = this;
            st->makeCurrent(imsi, kid, [self, imsi, kid](Result<void> r) {
                auto ok = std::make_shared<Result<void>>(std::move(r));
                self->post([self, imsi, kid, ok]() {
                    self->promoted(imsi, kid);
                    if (!*ok)
                        log::error(kLog, "key set " + std::to_string(kid) + " of IMSI " + imsi +
                                             " not made current: " + ok->error().message);
                    else
                        log::info(kLog, "pending key set " + std::to_string(kid) + " of IMSI " +
                                            imsi + " is current");
                });
            });
        }
        if (!wasTentative && setChanged) {
            // The refresh that made this set is done (A24: the old set is destroyed).
            auto rf = refreshes.find(imsi);
            if (rf != refreshes.end() && rf->second.ueFlow && rf->second.newKid == kid &&
                rf->second.phase == Refresh::Phase::outstanding)
                endRefresh(imsi, RefreshOutcome::completed, "new key set in use");
        }
        if (!wasTentative) {
            // Sessions per key set (refresh policy); a tentative set is stored with 1.
            ++s.setUseCount;
            st->incrementUseCount(imsi, kid, [](Result<void> r) {
                if (!r)
                    log::error(kLog, "use count not stored: " + r.error().message);
            });
        }
        // A9: earlier sessions of the UE, and sessions whose key set was destroyed, are deleted.
        std::vector<std::uint32_t> gone;
        for (auto oid : sessionsOf(imsi)) {
            const Session& o = sessions.at(oid);
            if (oid == sid)
                continue;
            if (o.seq < seq || (setChanged && o.kid != kid))
                gone.push_back(oid);
        }
        for (auto oid : gone)
            deleteSession(oid, "superseded by a confirmed session");
        // A newly confirmed full-establishment set is checked once it is durable (in
        // persistCurrent's completion): a refresh never starts from a set the store may lack.
        if (!wasTentative)
            maybeRefreshByPolicy(sid);
    }

    void promoted(const std::string& imsi, std::uint8_t kid) {
        if (auto p = promoting.find(imsi); p != promoting.end() && p->second == kid)
            promoting.erase(p);
    }

    // Stores a confirmed tentative set as current; `sid` is the confirming session, checked
    // against the refresh policy once the write is durable.
    void persistCurrent(store::KeySetRecord rec, std::uint32_t sid) {
        Impl* self = this;
        const std::string imsi = rec.imsi;
        const std::uint8_t kid = rec.kid;
        const bool psk = !rec.easKeys.empty();
        std::string easId = psk ? rec.easKeys.front().easId : std::string();
        st->putKeySet(std::move(rec), [self, imsi, kid, psk, easId, sid](Result<void> r) {
            auto ok = std::make_shared<Result<void>>(std::move(r));
            self->post([self, imsi, kid, psk, easId, sid, ok]() {
                self->promoted(imsi, kid);
                auto t = self->tentative.find(imsi);
                if (t != self->tentative.end()) {
                    t->second.erase(kid);
                    if (t->second.empty())
                        self->tentative.erase(t);
                }
                if (!*ok) {
                    log::error(kLog, "key set " + std::to_string(kid) + " of IMSI " + imsi +
                                         " not stored: " + ok->error().message);
                    return;
                }
                log::info(kLog, "key set " + std::to_string(kid) + " of IMSI " + imsi +
                                    " is current (durable)");
                if (psk)
                    // The internal event the HSE-EAS interface (next tranche) will deliver.
                    log::notice(kLog, "event eas-key-available IMSI " + imsi + " KID " +
                                          std::to_string(kid) + " EAS " + easId +
                                          " type kint-eas-psk");
                if (auto it = self->sessions.find(sid);
                    it != self->sessions.end() && it->second.kid == kid)
                    self->maybeRefreshByPolicy(sid);
            });
        });
    }

    // ---- key refresh (profile 4.4, 4.6, A8, A11-A15, A24; docs/hsed.md "Key refresh")

    void countRefresh(emsdp::RefreshOrigin o, RefreshOutcome outcome) {
        ++refreshCounts[originIndex(o)][static_cast<std::size_t>(outcome)];
    }

    void endRefresh(const std::string& imsi, RefreshOutcome outcome, const char* why) {
        auto it = refreshes.find(imsi);
        if (it == refreshes.end())
            return;
        countRefresh(it->second.origin, outcome);
        log::info(kLog,
                  std::string(it->second.ueFlow ? "UE" : "HSE") + "-triggered refresh for IMSI " +
                      imsi + " (origin " + std::string(refreshOriginName(it->second.origin)) +
                      ", new KID " + std::to_string(it->second.newKid) +
                      ") ended: " + std::string(refreshOutcomeName(outcome)) + " (" + why + ")");
        refreshes.erase(it);
    }

    // The flow `token` of `imsi` when it is in `phase`; nullptr for a completion of a flow that
    // ended meanwhile (its result is discarded).
    Refresh* liveRefresh(const std::string& imsi, std::uint64_t token, Refresh::Phase phase) {
        auto it = refreshes.find(imsi);
        if (it == refreshes.end() || it->second.token != token || it->second.phase != phase)
            return nullptr;
        return &it->second;
    }

    RefreshInput refreshInput(const Session& s) {
        RefreshInput in;
        in.imsi = s.imsi;
        in.sessionId = s.id;
        in.usedKids.insert(s.kid);
        if (auto t = tentative.find(s.imsi); t != tentative.end())
            for (const auto& [k, set] : t->second)
                in.usedKids.insert(k);
        in.keyAgreement = s.keyAgreement;
        in.plmn = s.plmn;
        in.lifetimeSeconds = s.lifetimeSeconds;
        in.easId = s.eas();
        in.psk = s.service == emsdp::Service::kaOnly;
        return in;
    }

    Refresh newRefresh(const Session& s, bool ueFlow, emsdp::RefreshOrigin origin) {
        Refresh r;
        r.ueFlow = ueFlow;
        r.origin = origin;
        r.phase = Refresh::Phase::vector;
        r.token = nextRefreshToken++;
        r.sessionId = s.id;
        r.keyAgreement = s.keyAgreement;
        r.easId = s.eas();
        return r;
    }

    void runVectorJob(const std::string& imsi, std::uint64_t token, RefreshInput in) {
        Impl* self = this;
        store::Store* stp = st.get();
        const HsedConfig* cfgp = &cfg;
        auto input = std::make_shared<RefreshInput>(std::move(in));
        postHsm([stp, cfgp,
                 input](hsm::VaultOps& ops) { return runRefreshVector(ops, *stp, *cfgp, *input); },
                [self, imsi, token](Result<RefreshOutput> r) {
                    auto shared = std::make_shared<Result<RefreshOutput>>(std::move(r));
                    self->post([self, imsi, token, shared]() {
                        self->onRefreshVector(imsi, token, *shared);
                    });
                });
    }

    // HSE-triggered flow (policy, operator, origin UE after a sync failure; A8: never for a UE
    // whose key sets are not storable). Returns the readable outcome.
    std::string startHseRefresh(Session& s, emsdp::RefreshOrigin origin, bool policy) {
        if (!s.keySetsStorable)
            return "key sets not storable";
        if (refreshes.count(s.imsi) != 0)
            return "refresh already in progress";
        Refresh r = newRefresh(s, false, origin);
        RefreshInput in = refreshInput(s);
        in.confirmation = true;
        in.skipIfPending = policy;
        const std::uint64_t token = r.token;
        refreshes.emplace(s.imsi, std::move(r));
        log::info(kLog, "HSE-triggered refresh for IMSI " + s.imsi + " (origin " +
                            std::string(refreshOriginName(origin)) + ") in session " +
                            std::to_string(s.id));
        runVectorJob(s.imsi, token, std::move(in));
        return "started in session " + std::to_string(s.id);
    }

    // Operator entry point (admin socket): an HSE-triggered refresh in the UE's latest
    // confirmed session.
    Result<std::string> operatorRefresh(const std::string& imsi) {
        Session* latest = nullptr;
        for (auto& [sid, s] : sessions)
            if (s.imsi == imsi && s.confirmed && s.terminateAtMs == 0 && !s.jobRunning &&
                (latest == nullptr || s.seq > latest->seq))
                latest = &s;
        if (latest == nullptr)
            return std::string("no confirmed session");
        return startHseRefresh(*latest, emsdp::RefreshOrigin::hse, false);
    }

    // A15: checked at each session confirmation, not while a pending set exists (checked by the
    // worker), never for a UE whose key sets are not storable (A8).
    void maybeRefreshByPolicy(std::uint32_t sid) {
        const auto& p = cfg.policy;
        if (p.refreshAfterSeconds == 0 && p.refreshAfterSessions == 0)
            return;
        auto it = sessions.find(sid);
        if (it == sessions.end())
            return;
        Session& s = it->second;
        if (!s.keySetsStorable || refreshes.count(s.imsi) != 0 || s.terminateAtMs != 0)
            return;
        const std::int64_t age = unixNow() - s.setCreatedAt;
        const bool byAge =
            p.refreshAfterSeconds != 0 && age >= static_cast<std::int64_t>(p.refreshAfterSeconds);
        const bool bySessions =
            p.refreshAfterSessions != 0 && s.setUseCount >= std::uint64_t{p.refreshAfterSessions};
        if (!byAge && !bySessions)
            return;
        log::info(kLog, "refresh policy due for IMSI " + s.imsi + " KID " + std::to_string(s.kid) +
                            " (age " + std::to_string(age) + " s, sessions " +
                            std::to_string(s.setUseCount) + ")");
        startHseRefresh(s, emsdp::RefreshOrigin::hse, true);
    }

    void onUeRefreshRequest(Session& s) {
        auto it = refreshes.find(s.imsi);
        if (it != refreshes.end()) {
            Refresh& r = it->second;
            if (r.ueFlow && r.phase == Refresh::Phase::outstanding) {
                // A15: the same RAND, AUTN and New key ID, no new AKA.
                log::info(kLog, "repeated Manage Keys Request of IMSI " + s.imsi +
                                    ": the outstanding answer again");
                r.sessionId = s.id;
                sendRefreshAnswer(s, r);
                return;
            }
            if (r.ueFlow || r.phase == Refresh::Phase::storing) {
                // Its answer (or the HSE flow's pending set) is being made; the UE resends.
                log::debug(kLog, "Manage Keys Request of IMSI " + s.imsi +
                                     " while a refresh is being stored or prepared");
                return;
            }
            endRefresh(s.imsi, RefreshOutcome::abandoned, "met by a UE request");  // A15
        }
        Refresh r = newRefresh(s, true, emsdp::RefreshOrigin::ue);
        RefreshInput in = refreshInput(s);
        const std::uint64_t token = r.token;
        refreshes.emplace(s.imsi, std::move(r));
        log::info(kLog, "UE-triggered refresh for IMSI " + s.imsi + " in session " +
                            std::to_string(s.id));
        runVectorJob(s.imsi, token, std::move(in));
    }

    void onRefreshVector(const std::string& imsi, std::uint64_t token, Result<RefreshOutput>& res) {
        Refresh* r = liveRefresh(imsi, token, Refresh::Phase::vector);
        if (r == nullptr)
            return;
        if (!res) {
            log::error(kLog, "refresh vector for IMSI " + imsi + " failed: " + res.error().message);
            endRefresh(imsi, RefreshOutcome::internal_error, "vector");
            return;
        }
        if (res->skipped) {
            log::info(kLog, "refresh policy for IMSI " + imsi + ": a pending set exists");
            refreshes.erase(imsi);  // not started: not counted
            return;
        }
        auto sit = sessions.find(r->sessionId);
        if (sit == sessions.end()) {
            endRefresh(imsi, RefreshOutcome::abandoned, "session gone");
            return;
        }
        r->newKid = res->pending.kid;
        r->rand = res->rand;
        r->autn = res->autn;
        r->expected = res->confirmation;
        log::info(kLog,
                  "refresh vector for IMSI " + imsi + " new KID " + std::to_string(r->newKid));
        if (r->ueFlow) {
            // The pending set is durable before the Manage Keys Response leaves.
            r->phase = Refresh::Phase::storing;
            storePending(imsi, *r, std::move(res->pending));
            return;
        }
        r->pending = std::move(res->pending);
        r->phase = Refresh::Phase::outstanding;
        r->firstSentMs = loop.nowMs();
        r->resends = 0;
        sendRefreshRequest(sit->second, *r);
    }

    void storePending(const std::string& imsi, const Refresh& r, store::KeySetRecord rec) {
        Impl* self = this;
        const std::uint64_t token = r.token;
        const std::uint8_t kid = rec.kid;
        const std::string easId = r.easId;
        const emsdp::RefreshOrigin origin = r.origin;
        st->putKeySet(std::move(rec), [self, imsi, token, kid, easId, origin](Result<void> res) {
            auto ok = std::make_shared<Result<void>>(std::move(res));
            self->post([self, imsi, token, kid, easId, origin, ok]() {
                self->onPendingStored(imsi, token, kid, easId, origin, *ok);
            });
        });
    }

    void onPendingStored(const std::string& imsi, std::uint64_t token, std::uint8_t kid,
                         const std::string& easId, emsdp::RefreshOrigin origin,
                         const Result<void>& ok) {
        if (ok)
            // The internal event the HSE-EAS interface (next tranche) delivers to the EAS (8.3).
            log::notice(kLog, "event pending-key-set-stored IMSI " + imsi + " KID " +
                                  std::to_string(kid) + " EAS " + easId + " origin " +
                                  std::string(refreshOriginName(origin)));
        Refresh* r = liveRefresh(imsi, token, Refresh::Phase::storing);
        if (r == nullptr)
            return;
        if (!ok) {
            log::error(kLog, "pending key set " + std::to_string(kid) + " of IMSI " + imsi +
                                 " not stored: " + ok.error().message);
            endRefresh(imsi, RefreshOutcome::internal_error, "store");
            return;
        }
        if (!r->ueFlow) {
            endRefresh(imsi, RefreshOutcome::completed, "key confirmation verified");
            return;
        }
        auto sit = sessions.find(r->sessionId);
        if (sit == sessions.end()) {
            endRefresh(imsi, RefreshOutcome::abandoned, "session gone before the answer");
            return;
        }
        r->phase = Refresh::Phase::outstanding;
        r->firstSentMs = loop.nowMs();
        sendRefreshAnswer(sit->second, *r);
    }

    // May delete the session (counter exhaustion), and with it the refresh: callers use
    // neither afterwards.
    void sendRefreshAnswer(Session& s, const Refresh& r) {
        emsdp::HseManageKeysResponse m;
        m.rand = r.rand;
        m.autn = r.autn;
        m.keyAgreement = r.keyAgreement;
        m.newKeyId = r.newKid;
        sendCp(s, m);
    }

    void sendRefreshRequest(Session& s, const Refresh& r) {
        emsdp::HseManageKeysRequest m;
        m.rand = r.rand;
        m.autn = r.autn;
        m.keyAgreement = r.keyAgreement;
        m.newKeyId = r.newKid;
        m.refreshOrigin = r.origin;
        sendCp(s, m);
    }

    void onUeRefreshResponse(Session& s, const emsdp::UeManageKeysResponse& m) {
        auto it = refreshes.find(s.imsi);
        if (it == refreshes.end() || it->second.ueFlow ||
            it->second.phase != Refresh::Phase::outstanding || it->second.sessionId != s.id) {
            drop(emsdp::DropReason::unexpected_command, "manage keys response without a request");
            return;
        }
        Refresh& r = it->second;
        if (m.keyConfirmation) {
            // The expected value was derived in the HSM from the new KInt (Session ID, RAND).
            if (!r.expected || CRYPTO_memcmp(m.keyConfirmation->data(), r.expected->data(),
                                             r.expected->size()) != 0) {
                drop(emsdp::DropReason::key_confirmation_mismatch);
                endRefresh(s.imsi, RefreshOutcome::bad_confirmation, "wrong key confirmation");
                return;
            }
            r.phase = Refresh::Phase::storing;
            storePending(s.imsi, r, std::move(r.pending));
            return;
        }
        if (m.cause == emsdp::Cause::aka_mac_failure) {
            endRefresh(s.imsi, RefreshOutcome::usim_mac_failure, "cause 0x0A");
            return;
        }
        if (m.cause == emsdp::Cause::synch_failure && m.auts) {
            r.phase = Refresh::Phase::resync;
            runRefreshResync(s, r, *m.auts, 0);
            return;
        }
        drop(emsdp::DropReason::unexpected_command, "manage keys response cause");
    }

    // A MAC'd Reject: for the answer to a UE-triggered refresh (4.4) it is acted on; one in the
    // session of an outstanding HSE request answers that request (e.g. 0x01) and ends it. True
    // when it was acted on.
    bool onRefreshReject(Session& s, const emsdp::MessageReject& rej) {
        auto it = refreshes.find(s.imsi);
        if (it == refreshes.end() || it->second.phase != Refresh::Phase::outstanding ||
            it->second.sessionId != s.id)
            return false;
        Refresh& r = it->second;
        if (!r.ueFlow) {
            endRefresh(
                s.imsi, RefreshOutcome::rejected,
                (std::string("MAC'd Reject ") + std::string(emsdp::causeName(rej.cause))).c_str());
            return true;
        }
        if (rej.cause == emsdp::Cause::aka_mac_failure) {
            discardPending(s.imsi, r.newKid);
            endRefresh(s.imsi, RefreshOutcome::usim_mac_failure, "Reject 0x0A");
            return true;
        }
        if (rej.cause == emsdp::Cause::synch_failure && rej.auts) {
            r.phase = Refresh::Phase::resync;
            runRefreshResync(s, r, *rej.auts, r.newKid);
            return true;
        }
        return false;
    }

    // Removes the UE's pending set `kid` (a UE flow's answer the USIM refused), on a worker.
    void discardPending(const std::string& imsi, std::uint8_t kid) {
        store::Store* stp = st.get();
        postHsm([stp, imsi, kid](hsm::VaultOps&) { return discardPendingSet(*stp, imsi, kid); },
                [imsi, kid](Result<void> r) {
                    if (!r)
                        log::error(kLog, "pending key set " + std::to_string(kid) + " of IMSI " +
                                             imsi + " not discarded: " + r.error().message);
                });
    }

    static Result<void> discardPendingSet(store::Store& st, const std::string& imsi,
                                          std::uint8_t kid) {
        auto set = st.getKeySet(imsi, kid);
        if (!set || set->state != store::KeySetState::pending)
            return {};
        return st.removeKeySet(imsi, kid);
    }

    // AUTS checked on a worker (bad MAC-S: the flow ends), SQN_HE set durably there; a UE flow's
    // pending set is discarded first in the same job.
    void runRefreshResync(const Session& s, const Refresh& r, const crypto::Auts& auts,
                          std::uint8_t discardKid) {
        Impl* self = this;
        store::Store* stp = st.get();
        const crypto::Rand rand = r.rand;
        const std::string imsi = s.imsi;
        const std::uint64_t token = r.token;
        postHsm(
            [stp, imsi, rand, auts, discardKid](hsm::VaultOps& ops) -> Result<bool> {
                if (discardKid != 0) {
                    if (auto d = discardPendingSet(*stp, imsi, discardKid); !d)
                        return makeError(d.error());
                }
                // Read here, on the worker: a confirmed session keeps no subscriber row.
                auto sub = stp->getSubscriber(imsi);
                if (!sub)
                    return makeError(sub.error());
                const SubscriberBlobs blobs(*sub);
                auto ms = ops.recoverSqnMs(blobs.ref(), rand, auts);
                if (!ms)
                    return false;
                auto rs = stp->sqn().resync(imsi, *ms);
                if (!rs)
                    return makeError(rs.error());
                return true;
            },
            [self, imsi, token](Result<bool> res) {
                auto shared = std::make_shared<Result<bool>>(std::move(res));
                self->post([self, imsi, token, shared]() {
                    self->onRefreshResynced(imsi, token, *shared);
                });
            });
    }

    void onRefreshResynced(const std::string& imsi, std::uint64_t token, const Result<bool>& res) {
        Refresh* r = liveRefresh(imsi, token, Refresh::Phase::resync);
        if (r == nullptr)
            return;
        if (!res) {
            log::error(kLog, "refresh resynchronisation for IMSI " + imsi +
                                 " failed: " + res.error().message);
            endRefresh(imsi, RefreshOutcome::internal_error, "resync");
            return;
        }
        if (!*res) {
            drop(emsdp::DropReason::bad_mac_s, "refresh");
            endRefresh(imsi, RefreshOutcome::bad_mac_s, "AUTS with a bad MAC-S");
            return;
        }
        ++resyncCount;
        log::info(kLog, "SQN resynchronised for IMSI " + imsi + " (refresh)");
        const std::uint32_t sid = r->sessionId;
        if (r->ueFlow) {
            // 4.4: the pending set is gone; an HSE-triggered refresh with Refresh origin UE.
            endRefresh(imsi, RefreshOutcome::sync_failure, "Reject 0x0B");
            if (auto sit = sessions.find(sid); sit != sessions.end())
                startHseRefresh(sit->second, emsdp::RefreshOrigin::ue, false);
            return;
        }
        if (++r->resyncs > kRefreshMaxResyncs) {
            endRefresh(imsi, RefreshOutcome::resync_limit, "third valid AUTS");  // A14, A15
            return;
        }
        auto sit = sessions.find(sid);
        if (sit == sessions.end()) {
            endRefresh(imsi, RefreshOutcome::abandoned, "session gone");
            return;
        }
        // A new request at once: a new RAND, the same New key ID.
        RefreshInput in = refreshInput(sit->second);
        in.kid = r->newKid;
        in.confirmation = true;
        r->phase = Refresh::Phase::vector;
        runVectorJob(imsi, token, std::move(in));
    }

    // A session is deleted: its unfinished refresh is abandoned (4.5); a UE flow whose answer
    // was sent is over; a pending set being stored finishes on its own.
    void refreshSessionGone(const std::string& imsi, std::uint32_t sid) {
        auto it = refreshes.find(imsi);
        if (it == refreshes.end() || it->second.sessionId != sid ||
            it->second.phase == Refresh::Phase::storing)
            return;
        if (it->second.ueFlow && it->second.phase == Refresh::Phase::outstanding)
            endRefresh(imsi, RefreshOutcome::completed, "session ended");
        else
            endRefresh(imsi, RefreshOutcome::abandoned, "session ended");
    }

    // Resends of HSE requests (A13) and the end of outstanding answers (A15); from the sweep.
    void refreshTimers(std::uint64_t now) {
        std::vector<std::pair<std::string, RefreshOutcome>> ended;
        std::vector<std::string> resend;
        for (auto& [imsi, r] : refreshes) {
            if (r.phase != Refresh::Phase::outstanding)
                continue;
            const std::uint64_t elapsed = now - r.firstSentMs;
            if (r.ueFlow) {
                if (elapsed >= kRefreshAnswerMs)
                    ended.emplace_back(imsi, RefreshOutcome::completed);
            } else if (elapsed >= kRefreshGiveUpMs) {
                ended.emplace_back(imsi, RefreshOutcome::timed_out);
            } else if (r.resends < kRefreshResendMs.size() &&
                       elapsed >= kRefreshResendMs[r.resends]) {
                ++r.resends;
                resend.push_back(imsi);
            }
        }
        for (const auto& [imsi, outcome] : ended)
            endRefresh(imsi, outcome,
                       outcome == RefreshOutcome::completed ? "answer no longer outstanding"
                                                            : "no answer");
        for (const auto& imsi : resend) {
            auto it = refreshes.find(imsi);
            if (it == refreshes.end())
                continue;
            auto sit = sessions.find(it->second.sessionId);
            if (sit == sessions.end())
                continue;
            log::debug(kLog, "Manage Keys Request resent to IMSI " + imsi);
            sendRefreshRequest(sit->second, it->second);
        }
    }

    void forgetAttempt(std::uint32_t sid) {
        auto it = sessions.find(sid);
        if (it == sessions.end())
            return;
        if (it->second.tentativeSet && !it->second.resumed) {
            auto t = tentative.find(it->second.imsi);
            if (t != tentative.end()) {
                t->second.erase(it->second.kid);
                if (t->second.empty())
                    tentative.erase(t);
            }
        }
        deleteSession(sid, "attempt forgotten");
    }

    void deleteSession(std::uint32_t sid, const char* why) {
        auto it = sessions.find(sid);
        if (it == sessions.end())
            return;
        if (it->second.attempt && !it->second.attempt->request.empty())
            requestCache.erase(it->second.attempt->request);
        log::info(kLog, "session " + std::to_string(sid) + " deleted: " + why);
        if (it->second.confirmed)
            countSession("terminated");
        const std::string imsi = it->second.imsi;
        auto [b, e] = sessionsByImsi.equal_range(imsiKey(it->second.imsi));
        for (auto x = b; x != e; ++x)
            if (x->second == sid) {
                sessionsByImsi.erase(x);
                break;
            }
        sessions.erase(it);
        refreshSessionGone(imsi, sid);
    }

    // ---- user plane sink

    void deliverUplink(Session& s, ByteView payload) {
        if (uplink)
            uplink->deliver(s.id, payload);
    }

    void onDownlinkReadable() {
        std::array<std::uint8_t, 2048> buf{};
        for (;;) {
            const ssize_t n = ::recv(downlinkFd, buf.data(), buf.size(), MSG_DONTWAIT);
            if (n < 0)
                return;
            if (n < 4) {
                log::debug(kLog, "downlink frame too short");
                continue;
            }
            const std::uint32_t sid = (std::uint32_t{buf[0]} << 24) |
                                      (std::uint32_t{buf[1]} << 16) | (std::uint32_t{buf[2]} << 8) |
                                      std::uint32_t{buf[3]};
            auto it = sessions.find(sid);
            if (it == sessions.end() || it->second.jobRunning ||
                it->second.service == emsdp::Service::kaOnly) {
                log::debug(kLog, "downlink for no UP session " + std::to_string(sid));
                continue;
            }
            Session& s = it->second;
            if (s.channel->exhaustionDue()) {
                sendCp(s, emsdp::SessionTerminateRequest{});
                continue;
            }
            std::array<std::uint8_t, kMaxDatagram> out{};
            auto len =
                s.channel->sealUp(ByteView(buf.data() + 4, static_cast<std::size_t>(n) - 4), out);
            if (!len) {
                log::debug(kLog, "downlink not sent: " + len.error().message);
                continue;
            }
            send(s.socket, s.peer, ByteView(out.data(), *len));
        }
    }

    // ---- timers

    void onSweep() {
        const std::uint64_t now = loop.nowMs();
        maybeRecycleVault();  // hsm.recycle_after_objects: the threshold is checked here
        // Buckets refilled to their burst allow what a new one would: forget them, so idle
        // subscribers and sources cost no memory (4.5, A22).
        perSource.pruneIdle(now);
        perImsi.pruneIdle(now);
        const std::uint64_t limit =
            std::uint64_t{cfg.policy.unconfirmedSessionTimeoutSeconds} * 1000;
        std::vector<std::uint32_t> expired;
        for (auto& [sid, s] : sessions)
            if (!s.confirmed && !s.jobRunning && now - s.createdMs >= limit)
                expired.push_back(sid);
        for (auto sid : expired) {
            log::info(kLog, "unconfirmed session " + std::to_string(sid) + " expired");
            countSession("expired");
            forgetAttempt(sid);
        }
        // Idle confirmed sessions: HSE-initiated termination (4.5); resent once at 4 s (A13),
        // deleted at 5 s without a Response.
        const std::uint64_t idle = std::uint64_t{cfg.policy.idleSessionTimeoutSeconds} * 1000;
        std::vector<std::uint32_t> ended;
        for (auto& [sid, s] : sessions) {
            if (!s.confirmed)
                continue;
            if (s.terminateAtMs != 0) {
                if (now >= s.terminateAtMs) {
                    ended.push_back(sid);
                } else if (!s.terminateResent && now + 1000 >= s.terminateAtMs) {
                    s.terminateResent = true;
                    sendCp(s, emsdp::SessionTerminateRequest{});
                }
            } else if (now - s.lastActiveMs >= idle) {
                log::info(kLog, "session " + std::to_string(sid) + " idle: terminating");
                s.terminateAtMs = now + 5000;
                sendCp(s, emsdp::SessionTerminateRequest{});
            }
        }
        for (auto sid : ended)
            deleteSession(sid, "termination not answered");
        refreshTimers(now);
    }

    // ---- operations (issue 7; docs/operations.md): health probe, watchdog, sd_notify, admin
    // socket, metrics page, SIGHUP reload, SIGTERM drain. Members first, then the functions.

    Notifier notifier;
    std::unique_ptr<AdminServer> admin;
    std::unique_ptr<net::HttpServer> metricsHttp;
    net::HandlePtr<net::Timer> watchdogTimer;
    net::HandlePtr<net::Timer> healthTimer;
    net::HandlePtr<net::Timer> drainTimer;
    net::HandlePtr<net::Signal> sighup;
    bool hsmUp = true;
    bool probeRunning = false;
    int exitCode = 0;
    std::uint64_t vaultReopens = 0;
    std::chrono::steady_clock::time_point probeStarted{};
    std::string hsmProblem;  // why the HSM is down ("" while up)
    std::string listening;   // "listening: ADDR ..." for STATUS=
    bool draining = false;
    std::chrono::steady_clock::time_point drainDeadline{};
    std::uint64_t healthOk = 0;
    std::uint64_t healthFailed = 0;
    std::uint64_t hsmUnavailableRejects = 0;
    std::array<std::uint64_t, 256> rejectsByCause{};
    std::map<std::string, std::uint64_t> sessionOutcomes;
    std::uint64_t reloadsOk = 0;
    std::uint64_t reloadsFailed = 0;
    std::string lastReloadError;
    const std::chrono::steady_clock::time_point startedAt = std::chrono::steady_clock::now();
    LatencyHistogram akaFull;  // Session Request accepted -> job result on the loop
    LatencyHistogram akaResumed;
    LatencyHistogram hsmFull;  // the establishment job on an HSM worker
    LatencyHistogram hsmResumed;
    LatencyHistogram hsmProbe;  // KeyVault::checkHealth
    LatencyHistogram hsmAdmin;  // admin jobs (sqn resync through the HSM)

    static double secondsSince(std::chrono::steady_clock::time_point t0) {
        return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    }

    void countSession(const char* outcome) { ++sessionOutcomes[outcome]; }

    // Requests that need the HSM while its health probe fails: Reject 0x12, counted.
    bool refuseWithoutHsm(net::UdpSocket* sock, const net::SocketAddress& src,
                          std::uint32_t sessionId) {
        if (hsmUp)
            return false;
        ++hsmUnavailableRejects;
        sendUnprotectedReject(sock, src, sessionId, emsdp::Cause::internal_error);
        return true;
    }

    // Every HSM job but the reload barrier goes through here: counted while in flight, and held
    // back while the module is being recycled (hsm.recycle_after_objects).
    template <typename Job, typename Done>
    void postHsm(Job job, Done done) {
        using R = std::invoke_result_t<Job&, hsm::VaultOps&>;
        auto box = std::make_shared<std::pair<Job, Done>>(std::move(job), std::move(done));
        Impl* self = this;
        auto submit = [self, box]() {
            self->hsmJobsInFlight.fetch_add(1);
            // Valid while the job runs: a vault is destroyed only after its workers stopped.
            hsm::KeyVault* v = self->vault.get();
            v->post(std::move(box->first), [self, box, v](R r) {
                box->second(std::move(r));
                // On the worker: the loop hears of a recycle only when one is due (once) and
                // when the last job in flight ends while one waits (seq_cst with the loop's
                // flag-then-count check: one of the two sees the other).
                if (!self->hsmRecycling.load() && self->recycleDue(*v) &&
                    !self->recycleCheckPosted.exchange(true))
                    self->post([self]() {
                        self->recycleCheckPosted = false;
                        self->maybeRecycleVault();
                    });
                if (self->hsmJobsInFlight.fetch_sub(1) == 1 && self->hsmRecycling.load())
                    self->post([self]() { self->maybeRecycleVault(); });
            });
        };
        if (hsmRecycling)
            deferredHsm.emplace_back(std::move(submit));
        else
            submit();
    }

    // Session objects made through vault `v` since it was opened (its module's counters start
    // with it). Any thread.
    static std::uint64_t objectsMade(const hsm::KeyVault& v) {
        return v.callStats().objectsCreated();
    }
    std::uint64_t objectsSinceOpen() const { return vault ? objectsMade(*vault) : 0; }
    // Any thread (reads no cfg: a reload may replace it; hsm.* changes are refused anyway).
    bool recycleDue(const hsm::KeyVault& v) const {
        const std::uint64_t after = recycleAfterObjects.load();
        return after != 0 && objectsMade(v) - hsmObjectsAtOpen.load() >= after;
    }

    // hsm.recycle_after_objects: once the module made that many objects, new HSM jobs wait, the
    // jobs in flight finish, and the module is finalised and opened again (SoftHSM 2.6 frees
    // destroyed objects only then; docs/hsed.md "Session memory"). The waiting jobs then go to
    // the new vault in order; nothing is refused.
    void maybeRecycleVault() {
        if (recycleAfterObjects.load() == 0 || stopping)
            return;
        if (!hsmRecycling) {
            if (!vault || !hsmUp || !recycleDue(*vault))
                return;
            hsmRecycling = true;
            log::notice(kLog, "recycling the PKCS#11 module after " +
                                  std::to_string(objectsSinceOpen() - hsmObjectsAtOpen.load()) +
                                  " session objects (hsm.recycle_after_objects): new HSM jobs "
                                  "wait for the jobs in flight");
        }
        if (hsmJobsInFlight.load() != 0)
            return;
        const auto t0 = std::chrono::steady_clock::now();
        reopenVault("recycling the PKCS#11 module");
        if (!vault)
            return;  // reopenVault stopped the daemon
        ++hsmRecycles;
        hsmRecycling = false;
        auto jobs = std::move(deferredHsm);
        deferredHsm.clear();
        log::notice(kLog, "PKCS#11 module recycled in " +
                              std::to_string(static_cast<long long>(secondsSince(t0) * 1000)) +
                              " ms; " + std::to_string(jobs.size()) + " HSM jobs waited");
        for (auto& j : jobs)
            j();
    }

    // Runs `job(ops)` on an HSM worker and `done(result)` back on the loop.
    template <typename R, typename Job, typename Done>
    void onWorker(Job job, Done done) {
        Impl* self = this;
        postHsm(std::move(job), [self, done](R r) {
            auto shared = std::make_shared<R>(std::move(r));
            self->post([done, shared]() { done(*shared); });
        });
    }

    std::string statusLine() const {
        if (draining)
            return "stopping: finishing in-flight requests";
        if (!hsmUp)
            return "HSM unavailable (" + hsmProblem + "); requests needing it get Reject 0x12; " +
                   listening;
        return "ready; " + listening;
    }

    void publishStatus() {
        if (auto r = notifier.status(statusLine()); !r)
            log::warning(kLog, r.error().message);
    }

    // Binds the admin socket and the metrics port; returns the runtime-file lines to add.
    Result<std::string> openOperations() {
        auto n = Notifier::fromEnvironment();
        if (!n)
            return makeError(n.error());
        notifier = std::move(*n);
        std::string runtime;
        if (!cfg.admin.socketPath.empty()) {
            admin = std::make_unique<AdminServer>(
                loop, [this](const AdminRequest& rq, const ucred& peer, AdminServer::Reply reply) {
                    onAdmin(rq, peer, std::move(reply));
                });
            if (auto r = admin->listen(cfg.admin.socketPath, cfg.admin.group); !r)
                return makeError(r.error());
            runtime += "admin " + cfg.admin.socketPath + "\n";
            log::info(kLog, "admin socket " + cfg.admin.socketPath);
        }
        if (cfg.metrics.enabled) {
            auto addr = net::SocketAddress::parse(cfg.metrics.address, cfg.metrics.port);
            if (!addr)
                return makeError(addr.error());
            metricsHttp = std::make_unique<net::HttpServer>(loop, net::HttpServer::Limits{});
            metricsHttp->addPage("/metrics",
                                 {kPrometheusContentType, [this]() { return renderMetrics(); }});
            if (auto r = metricsHttp->listen(*addr); !r)
                return makeError(r.error());
            auto bound = metricsHttp->localAddress();
            if (!bound)
                return makeError(bound.error());
            runtime +=
                "metrics " + cfg.metrics.address + " " + std::to_string(bound->port()) + "\n";
            log::info(kLog, "metrics on http://" + bound->toString() + "/metrics");
        }
        healthTimer = loop.make<net::Timer>();
        restartHealthTimer();
        if (auto w = notifier.watchdogUsec()) {
            const std::uint64_t ms = std::max<std::uint64_t>(*w / 2000, 1);
            watchdogTimer = loop.make<net::Timer>();
            watchdogTimer->start(ms, ms, [this]() { onWatchdog(); });
            log::info(kLog, "watchdog: WATCHDOG=1 every " + std::to_string(ms) + " ms");
        }
        sighup = loop.make<net::Signal>();
        if (auto r = sighup->start(SIGHUP, [this](int) { onReloadRequest("SIGHUP"); }); !r)
            return makeError(r.error());
        return runtime;
    }

    void restartHealthTimer() {
        const std::uint64_t ms = std::uint64_t{cfg.healthProbeIntervalSeconds} * 1000;
        healthTimer->start(ms, ms, [this]() { startHealthProbe(); });
    }

    void onWatchdog() {
        // A probe that does not come back is a failure too (a hung token).
        const double limit =
            std::max(10.0, 2.0 * static_cast<double>(cfg.healthProbeIntervalSeconds));
        if (probeRunning && secondsSince(probeStarted) > limit && hsmUp)
            setHsmUp(false, "health probe not answered for " +
                                std::to_string(static_cast<int>(limit)) + " s");
        if (hsmUp)
            (void)notifier.watchdog();
    }

    void startHealthProbe() {
        if (probeRunning || !vault)
            return;
        probeRunning = true;
        probeStarted = std::chrono::steady_clock::now();
        hsm::KeyVault* v = vault.get();
        LatencyHistogram* h = &hsmProbe;
        const std::string configPath = cfg.sourcePath;
        // Result: true = healthy; false = this process's module is stale but a fresh process
        // reaches the token (re-initialise the module: reopenVault); error = down.
        onWorker<Result<bool>>(
            [v, h, configPath](hsm::VaultOps&) -> Result<bool> {
                const auto t0 = std::chrono::steady_clock::now();
                auto r = v->checkHealth();
                if (!r) {
                    // The token may be back under new handles: log in again, find the keys
                    // again, probe once more (KeyVault::relogin).
                    if (v->relogin())
                        r = v->checkHealth();
                }
                h->observe(secondsSince(t0));
                if (r)
                    return true;
                // SoftHSM keeps a token whose storage vanished invalid until C_Finalize, even
                // once the storage is back: a fresh process tells whether it is.
                if (freshProcessReachesToken(configPath))
                    return false;
                return makeError(r.error());
            },
            [this](Result<bool>& r) {
                probeRunning = false;
                if (r && *r) {
                    ++healthOk;
                    setHsmUp(true, "");
                } else if (r) {
                    ++healthFailed;
                    reopenVault("the token answers a new process");
                } else {
                    ++healthFailed;
                    setHsmUp(false, r.error().message);
                }
            });
    }

    // `best-hsed --config FILE --check-hsm` in a new process (its own PKCS#11 module state):
    // true when it opens the vault and the probe passes. Runs on an HSM worker (blocks it).
    static bool freshProcessReachesToken(const std::string& configPath) {
        char self[4096] = {};
        const ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
        if (n <= 0)
            return false;
        std::string arg0(self, static_cast<std::size_t>(n));
        std::string a1 = "--config", a2 = configPath, a3 = "--check-hsm";
        char* argv[] = {arg0.data(), a1.data(), a2.data(), a3.data(), nullptr};
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
        posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
        pid_t pid = -1;
        const int rc = ::posix_spawn(&pid, arg0.c_str(), &fa, nullptr, argv, environ);
        posix_spawn_file_actions_destroy(&fa);
        if (rc != 0)
            return false;
        int st = 0;
        const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (::waitpid(pid, &st, WNOHANG) == 0) {
            if (std::chrono::steady_clock::now() >= until) {
                ::kill(pid, SIGKILL);
                ::waitpid(pid, &st, 0);
                return false;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        return WIFEXITED(st) && WEXITSTATUS(st) == 0;
    }

    // Re-initialises the PKCS#11 module: the old vault's jobs finish, its workers stop, the
    // module is finalised; a new vault opens (login, token keys, probe). Blocks the loop for
    // that time. A vault that cannot be opened again ends the daemon (exit 4) for the service
    // manager to restart it: without a vault nothing can be served.
    void reopenVault(const char* why) {
        log::notice(kLog, std::string(why) + ": re-initialising the PKCS#11 module");
        hsm::HsmConfig hc;
        hc.module = cfg.hsm.module;
        hc.token = cfg.hsm.token;
        hc.pinFile = cfg.hsm.pinFile;
        hc.workers = cfg.hsm.workers;
        if (vault)
            hsmCallsRetired += vault->callStats();
        vault.reset();
        auto v = hsm::KeyVault::open(hc);
        if (!v) {
            log::error(kLog, "cannot open the HSM again: " + v.error().message + "; exiting");
            (void)notifier.status("HSM could not be re-opened: " + v.error().message);
            exitCode = 4;
            loop.stop();
            return;
        }
        vault = std::move(*v);
        hsmObjectsAtOpen = objectsSinceOpen();  // the vault's own (token key copies, probe key)
        ++vaultReopens;
        setHsmUp(true, "");
    }

    void setHsmUp(bool up, const std::string& why) {
        if (up == hsmUp && (up || why == hsmProblem))
            return;
        hsmUp = up;
        hsmProblem = why;
        if (up)
            log::notice(kLog, "HSM health probe passes again: serving");
        else
            log::error(kLog, "HSM unavailable: " + why +
                                 "; watchdog pings stop, requests needing the HSM get 0x12");
        publishStatus();
    }

    // SIGTERM/SIGINT: stop reading, let in-flight jobs answer (at most 5 s), then stop the loop.
    void beginDrain(int sig) {
        if (draining)
            return;
        draining = true;
        log::notice(kLog, "signal " + std::to_string(sig) + ": draining");
        (void)notifier.stopping(statusLine());
        for (auto& s : sockets)
            s->stopReceive();
        if (admin)
            admin->close();
        if (metricsHttp)
            metricsHttp->close();
        healthTimer.reset();
        drainDeadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
        drainTimer = loop.make<net::Timer>();
        drainTimer->start(0, 20, [this]() {
            bool busy = !inFlight.empty();
            for (const auto& [sid, s] : sessions)
                busy = busy || s.jobRunning;
            if (!busy || std::chrono::steady_clock::now() >= drainDeadline) {
                if (busy)
                    log::warning(kLog, "drain: jobs still running after 5 s; stopping anyway");
                loop.stop();
            }
        });
    }

    // ---- reload (SIGHUP, admin `reload`)

    // The keys that only a restart applies; reload refuses a file that changes any of them.
    static std::vector<std::string> restartOnlyChanges(const HsedConfig& a, const HsedConfig& b) {
        std::vector<std::string> c;
        auto listenText = [](const HsedConfig& x) {
            std::string s;
            for (const auto& l : x.listen)
                s += l.address + "/" + std::to_string(l.port) + ";";
            return s;
        };
        if (a.hseId != b.hseId)
            c.push_back("hse_id");
        if (listenText(a) != listenText(b))
            c.push_back("listen");
        if (a.runtimeFile != b.runtimeFile)
            c.push_back("runtime_file");
        if (a.hsm.module != b.hsm.module || a.hsm.token != b.hsm.token ||
            a.hsm.pinFile != b.hsm.pinFile || a.hsm.workers != b.hsm.workers ||
            a.hsm.recycleAfterObjects != b.hsm.recycleAfterObjects)
            c.push_back("hsm");
        if (a.storePath != b.storePath)
            c.push_back("store");
        if (a.sqnInd != b.sqnInd || a.sqnIndBits != b.sqnIndBits ||
            a.sqnRangesInMemory != b.sqnRangesInMemory)
            c.push_back("sqn");
        if (a.uplinkSink != b.uplinkSink || a.downlinkSocket != b.downlinkSocket ||
            a.uplinkBacklog != b.uplinkBacklog)
            c.push_back("sink");
        if (a.admin.socketPath != b.admin.socketPath || a.admin.group != b.admin.group)
            c.push_back("admin");
        if (a.metrics.enabled != b.metrics.enabled || a.metrics.address != b.metrics.address ||
            a.metrics.port != b.metrics.port)
            c.push_back("metrics");
        if (a.maxSessions != b.maxSessions || a.contextCache != b.contextCache)
            c.push_back("limits");  // the key slab is sized and locked at start-up
        if (a.receiveBuffer != b.receiveBuffer)
            c.push_back("listen_receive_buffer");  // set on the sockets at start-up
        return c;
    }

    // Holds every HSM worker inside a job (they read cfg) while the loop changes cfg.
    struct WorkerBarrier {
        std::mutex m;
        std::condition_variable cv;
        std::size_t parked = 0;
        bool released = false;
    };

    Result<std::string> reload() {
        auto next = loadHsedConfig(cfg.sourcePath);
        if (!next)
            return makeError(next.error());
        const auto changed = restartOnlyChanges(cfg, *next);
        if (!changed.empty()) {
            std::string keys;
            for (const auto& k : changed)
                keys += (keys.empty() ? "" : ", ") + k;
            return makeError(HsedErrc::internal,
                             cfg.sourcePath + ": " + keys +
                                 " changed: these keys need a restart; nothing reloaded");
        }
        auto barrier = std::make_shared<WorkerBarrier>();
        const std::size_t n = vault->workers();
        for (std::size_t i = 0; i < n; ++i)
            vault->post(
                [barrier](hsm::VaultOps&) -> Result<bool> {
                    std::unique_lock<std::mutex> l(barrier->m);
                    ++barrier->parked;
                    barrier->cv.notify_all();
                    barrier->cv.wait(l, [&barrier] { return barrier->released; });
                    return true;
                },
                [](Result<bool>) {});
        bool parked = false;
        {
            std::unique_lock<std::mutex> l(barrier->m);
            parked = barrier->cv.wait_for(l, std::chrono::seconds(2),
                                          [&barrier, n] { return barrier->parked == n; });
            if (parked) {
                cfg.policy = next->policy;
                cfg.logLevel = next->logLevel;
                cfg.healthProbeIntervalSeconds = next->healthProbeIntervalSeconds;
            }
            barrier->released = true;
        }
        barrier->cv.notify_all();
        if (!parked)
            return makeError(HsedErrc::internal,
                             "the HSM workers stayed busy for 2 s; nothing reloaded, try again");
        perSource = RateLimiter(cfg.policy.perSource.ratePerSecond, cfg.policy.perSource.burst);
        perImsi = RateLimiter(cfg.policy.perImsi.ratePerSecond, cfg.policy.perImsi.burst);
        log::setLevel(log::parseLevel(cfg.logLevel).value_or(log::Level::info));
        if (healthTimer)
            restartHealthTimer();
        return cfg.sourcePath + " reloaded (policy, logging, health)";
    }

    Result<std::string> onReloadRequest(const char* by) {
        (void)notifier.reloading("reloading " + cfg.sourcePath);
        auto r = reload();
        if (r) {
            ++reloadsOk;
            lastReloadError.clear();
            log::notice(kLog, std::string(by) + ": " + *r);
            (void)notifier.notify("READY=1\nSTATUS=" + Notifier::oneLine(statusLine()));
        } else {
            ++reloadsFailed;
            lastReloadError = r.error().message;
            log::error(kLog, std::string(by) +
                                 ": reload failed, old configuration kept: " + lastReloadError);
            (void)notifier.notify("READY=1\nSTATUS=" +
                                  Notifier::oneLine("reload failed, old configuration kept: " +
                                                    lastReloadError + "; " + statusLine()));
        }
        return r;
    }

    // ---- admin socket commands

    static bool validImsi(const std::string& s) {
        if (s.size() < 6 || s.size() > 15)
            return false;
        return std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
    }

    static std::string sessionState(const Session& s) {
        if (s.terminateAtMs != 0)
            return "terminating";
        return s.confirmed ? "confirmed" : "unconfirmed";
    }

    void onAdmin(const AdminRequest& rq, const ucred&, AdminServer::Reply reply) {
        const std::string& c = rq.command;
        auto needImsi = [&rq, &reply]() -> std::optional<std::string> {
            const std::string imsi = rq.arg("imsi");
            if (!validImsi(imsi)) {
                reply(adminError("bad_request", "imsi=IMSI (6 to 15 digits) is required"));
                return std::nullopt;
            }
            return imsi;
        };
        if (c == "status") {
            reply(adminStatus());
        } else if (c == "reload") {
            auto r = onReloadRequest("admin");
            if (r) {
                JsonOut o;
                o.begin().field("ok", true).field("message", *r).end();
                reply(o.str());
            } else {
                reply(adminError("reload_failed", r.error().message));
            }
        } else if (c == "ue show") {
            if (auto imsi = needImsi())
                adminUeShow(*imsi, std::move(reply));
        } else if (c == "ue refresh") {
            if (auto imsi = needImsi())
                adminUeRefresh(*imsi, std::move(reply));
        } else if (c == "sqn set") {
            if (auto imsi = needImsi())
                adminSqnSet(*imsi, rq, std::move(reply));
        } else if (c == "sqn resync") {
            if (auto imsi = needImsi())
                adminSqnResync(*imsi, rq, std::move(reply));
        } else {
            reply(adminError("unknown_command",
                             "unknown command '" + c +
                                 "' (status, ue show, ue refresh, sqn set, sqn resync, reload)"));
        }
    }

    std::string adminStatus() {
        std::size_t confirmed = 0;
        for (const auto& [sid, s] : sessions)
            confirmed += s.confirmed ? 1 : 0;
        JsonOut o;
        o.begin()
            .field("ok", true)
            .field("hse_id", cfg.hseId)
            .field("config", cfg.sourcePath)
            .field("uptime_seconds", static_cast<std::uint64_t>(secondsSince(startedAt)))
            .field("pid", static_cast<std::int64_t>(::getpid()))
            .field("hsm_up", hsmUp)
            .field("hsm_problem", hsmProblem)
            .field("hsm_token", vault ? vault->tokenLabel() : std::string())
            .field("hsm_workers", static_cast<std::uint64_t>(vault ? vault->workers() : 0))
            .field("sessions", static_cast<std::uint64_t>(sessions.size()))
            .field("sessions_confirmed", static_cast<std::uint64_t>(confirmed))
            .field("refreshes_in_progress", static_cast<std::uint64_t>(refreshes.size()))
            .field("status", statusLine())
            .field("reloads", reloadsOk)
            .field("reload_failures", reloadsFailed)
            .field("last_reload_error", lastReloadError)
            .field("watchdog", notifier.watchdogUsec().has_value());
        o.beginArray("listen");
        for (const auto& s : sockets)
            if (auto a = s->localAddress())
                o.item(a->toString());
        o.endArray();
        if (metricsHttp) {
            if (auto a = metricsHttp->localAddress())
                o.field("metrics", "http://" + a->toString() + "/metrics");
        }
        o.end();
        return o.str();
    }

    void adminUeShow(const std::string& imsi, AdminServer::Reply reply) {
        // Loop state now; store reads on a worker (store.h: not from the loop).
        const std::uint64_t now = loop.nowMs();
        std::vector<std::pair<std::uint64_t, const Session*>> mine;
        for (const auto& [sid, s] : sessions)
            if (s.imsi == imsi)
                mine.emplace_back(s.seq, &s);
        std::sort(mine.begin(), mine.end());
        auto sessionsJson = std::make_shared<std::string>();
        {
            JsonOut o;
            o.beginArray();
            for (const auto& [seq, s] : mine) {
                o.beginObject("")
                    .field("session_id", static_cast<std::uint64_t>(s->id))
                    .field("kid", static_cast<std::uint64_t>(s->kid))
                    .field("state", sessionState(*s))
                    .field("kind", s->resumed ? "resumed" : "full")
                    .field("service", static_cast<std::uint64_t>(s->service))
                    .field("age_seconds", (now - s->createdMs) / 1000)
                    .field("idle_seconds",
                           s->lastActiveMs != 0 ? (now - s->lastActiveMs) / 1000 : std::uint64_t{0})
                    .field("peer", s->peer.toString());
                if (s->channel) {
                    const auto cs = s->channel->counters();
                    o.beginObject("counters")
                        .field("cp_tx_next", cs.nextCpTx)
                        .field("up_tx_next", cs.nextUpTx);
                    if (cs.cpRxHighest)
                        o.field("cp_rx_highest", static_cast<std::uint64_t>(*cs.cpRxHighest));
                    else
                        o.null("cp_rx_highest");
                    if (cs.upRxHighest)
                        o.field("up_rx_highest", static_cast<std::uint64_t>(*cs.upRxHighest));
                    else
                        o.null("up_rx_highest");
                    o.end();
                }
                o.end();
            }
            o.endArray();
            *sessionsJson = o.str();
        }
        std::vector<std::uint8_t> tentativeKids;
        if (auto t = tentative.find(imsi); t != tentative.end())
            for (const auto& [kid, rec] : t->second)
                tentativeKids.push_back(kid);
        std::string refresh;
        if (auto rf = refreshes.find(imsi); rf != refreshes.end()) {
            refresh = std::string(refreshOriginName(rf->second.origin)) +
                      (rf->second.ueFlow ? " (UE flow)" : " (HSE flow)") + ", new KID " +
                      std::to_string(rf->second.newKid);
        }
        store::Store* stp = st.get();
        struct Stored {
            store::SubscriberRecord sub;
            std::vector<store::KeySetRecord> sets;
        };
        onWorker<Result<Stored>>(
            [stp, imsi](hsm::VaultOps&) -> Result<Stored> {
                Stored out;
                auto sub = stp->getSubscriber(imsi);
                if (!sub)
                    return makeError(sub.error());
                out.sub = std::move(*sub);
                auto sets = stp->listKeySets(imsi);
                if (!sets)
                    return makeError(sets.error());
                out.sets = std::move(*sets);
                return out;
            },
            [imsi, reply, sessionsJson, tentativeKids, refresh](Result<Stored>& r) {
                if (!r) {
                    const bool unknown =
                        r.error().domain == ErrorDomain::store &&
                        r.error().code == static_cast<int>(store::StoreErrc::not_found);
                    reply(adminError(unknown ? "unknown_imsi" : "store_error",
                                     unknown ? "no subscriber " + imsi : r.error().message));
                    return;
                }
                JsonOut o;
                o.begin().field("ok", true).field("imsi", imsi);
                o.beginArray("key_sets");
                for (const auto& k : r->sets) {
                    o.beginObject("")
                        .field("kid", static_cast<std::uint64_t>(k.kid))
                        .field("state", std::string(store::toString(k.state)))
                        .field("key_agreement", static_cast<std::uint64_t>(k.keyAgreement))
                        .field("created_at", static_cast<std::int64_t>(k.createdAt))
                        .field("lifetime_seconds", static_cast<std::uint64_t>(k.lifetimeSeconds))
                        .field("use_count", k.useCount)
                        .field("eas_keys", static_cast<std::uint64_t>(k.easKeys.size()));
                    if (k.highestNonce)
                        o.field("highest_nonce", *k.highestNonce);
                    else
                        o.null("highest_nonce");
                    o.end();
                }
                o.endArray();
                o.beginArray("tentative_kids");
                for (auto kid : tentativeKids)
                    o.item(std::to_string(kid));
                o.endArray();
                o.field("refresh", refresh);
                std::string s = o.str();
                s += ",\"sessions\":" + *sessionsJson + "}";
                reply(s);
            });
    }

    void adminUeRefresh(const std::string& imsi, AdminServer::Reply reply) {
        if (!hsmUp) {
            ++hsmUnavailableRejects;
            reply(adminError("hsm_unavailable", "the HSM is unavailable: " + hsmProblem));
            return;
        }
        auto r = operatorRefresh(imsi);
        if (!r) {
            reply(adminError("internal", r.error().message));
        } else if (r->rfind("started", 0) == 0) {
            JsonOut o;
            o.begin()
                .field("ok", true)
                .field("imsi", imsi)
                .field("message", "key refresh of IMSI " + imsi + " " + *r)
                .end();
            reply(o.str());
        } else {
            reply(adminError("refused", "no key refresh for IMSI " + imsi + ": " + *r));
        }
    }

    void adminSqnSet(const std::string& imsi, const AdminRequest& rq, AdminServer::Reply reply) {
        const std::string seqText = rq.arg("seq");
        char* end = nullptr;
        errno = 0;
        const unsigned long long seq = std::strtoull(seqText.c_str(), &end, 10);
        if (seqText.empty() || *end != '\0' || errno != 0 || seq < 1 || seqText[0] == '-') {
            reply(
                adminError("bad_request", "seq=N (the next vector's SEQ, at least 1) is required"));
            return;
        }
        store::Store* stp = st.get();
        onWorker<Result<bool>>(
            [stp, imsi, seq](hsm::VaultOps&) -> Result<bool> {
                if (auto sub = stp->getSubscriber(imsi); !sub)
                    return makeError(sub.error());
                if (auto r = stp->sqn().setSeqHe(imsi, seq - 1); !r)
                    return makeError(r.error());
                return true;
            },
            [imsi, seq, reply](Result<bool>& r) {
                if (!r) {
                    reply(adminStoreError(imsi, r.error()));
                    return;
                }
                log::notice(kLog,
                            "admin: SQN of IMSI " + imsi + " set: next SEQ " + std::to_string(seq));
                JsonOut o;
                o.begin()
                    .field("ok", true)
                    .field("imsi", imsi)
                    .field("next_seq", std::uint64_t{seq});
                o.end();
                reply(o.str());
            });
    }

    static std::string adminStoreError(const std::string& imsi, const Error& e) {
        const bool unknown = e.domain == ErrorDomain::store &&
                             e.code == static_cast<int>(store::StoreErrc::not_found);
        return adminError(unknown ? "unknown_imsi" : "store_error",
                          unknown ? "no subscriber " + imsi : e.message);
    }

    void adminSqnResync(const std::string& imsi, const AdminRequest& rq, AdminServer::Reply reply) {
        crypto::Rand rand{};
        crypto::Auts auts{};
        if (!fromHexInto(rq.arg("rand"), "RAND", MutableByteView(rand.data(), rand.size())) ||
            !fromHexInto(rq.arg("auts"), "AUTS", MutableByteView(auts.data(), auts.size()))) {
            reply(adminError("bad_request",
                             "rand=HEX (16 octets) and auts=HEX (14 octets) are required"));
            return;
        }
        if (!hsmUp) {
            ++hsmUnavailableRejects;
            reply(adminError("hsm_unavailable", "the HSM is unavailable: " + hsmProblem));
            return;
        }
        store::Store* stp = st.get();
        LatencyHistogram* h = &hsmAdmin;
        struct Out {
            bool macOk = false;
            crypto::Sqn sqnMs{};
        };
        onWorker<Result<Out>>(
            [stp, imsi, rand, auts, h](hsm::VaultOps& ops) -> Result<Out> {
                auto sub = stp->getSubscriber(imsi);
                if (!sub)
                    return makeError(sub.error());
                const SubscriberBlobs blobs(*sub);
                const auto t0 = std::chrono::steady_clock::now();
                auto ms = ops.recoverSqnMs(blobs.ref(), rand, auts);
                h->observe(secondsSince(t0));
                Out out;
                if (!ms) {
                    if (ms.error().domain == ErrorDomain::crypto &&
                        ms.error().code == static_cast<int>(crypto::CryptoErrc::mac_s_failure))
                        return out;  // MAC-S check failed
                    return makeError(ms.error());
                }
                if (auto r = stp->sqn().resync(imsi, *ms); !r)
                    return makeError(r.error());
                out.macOk = true;
                out.sqnMs = *ms;
                return out;
            },
            [this, imsi, reply](Result<Out>& r) {
                if (!r) {
                    reply(adminStoreError(imsi, r.error()));
                    return;
                }
                if (!r->macOk) {
                    reply(adminError("mac_s_failed",
                                     "MAC-S check failed: the AUTS does not "
                                     "verify for this subscriber and RAND; SQN "
                                     "unchanged"));
                    return;
                }
                ++resyncCount;
                log::notice(kLog, "admin: SQN of IMSI " + imsi + " resynchronised");
                JsonOut o;
                o.begin()
                    .field("ok", true)
                    .field("imsi", imsi)
                    .field("sqn_ms", toHex(ByteView(r->sqnMs.data(), r->sqnMs.size())));
                o.end();
                reply(o.str());
            });
    }

    // ---- metrics page

    std::string renderMetrics() {
        PromWriter w;
        w.family("best_hsm_up", "gauge", "1 while the HSM health probe passes, else 0.");
        w.sample("best_hsm_up", {}, std::uint64_t{hsmUp ? 1u : 0u});
        w.family("best_hsm_health_probes_total", "counter", "HSM health probes by result.");
        w.sample("best_hsm_health_probes_total", {{"result", "ok"}}, healthOk);
        w.sample("best_hsm_health_probes_total", {{"result", "failed"}}, healthFailed);
        {
            // PKCS#11 calls since start (the vaults before a module re-initialisation included).
            hsm::CallStats calls = hsmCallsRetired;
            if (vault)
                calls += vault->callStats();
            w.family("best_hsm_calls_total", "counter", "PKCS#11 calls by function.");
            for (std::size_t i = 0; i < calls.calls.size(); ++i) {
                if (calls.calls[i] != 0)
                    w.sample(
                        "best_hsm_calls_total",
                        {{"function", std::string(hsm::p11FnName(static_cast<hsm::P11Fn>(i)))}},
                        calls.calls[i]);
            }
            w.family("best_hsm_objects_created_total", "counter",
                     "Session objects the daemon made in the token (create, copy, unwrap, "
                     "generate); SoftHSM 2.6 keeps each in memory until the module is "
                     "finalised (docs/hsed.md).");
            w.sample("best_hsm_objects_created_total", {}, calls.objectsCreated());
        }
        w.family("best_hsm_recycles_total", "counter",
                 "PKCS#11 module re-initialisations for hsm.recycle_after_objects.");
        w.sample("best_hsm_recycles_total", {}, hsmRecycles);
        w.family("best_hsm_relogins_total", "counter",
                 "Times the vault logged in to the token again.");
        w.sample("best_hsm_relogins_total", {}, vault ? vault->relogins() : 0);
        w.family("best_hsm_reopens_total", "counter",
                 "Times the PKCS#11 module was re-initialised after the token came back.");
        w.sample("best_hsm_reopens_total", {}, vaultReopens);
        w.family("best_hsm_unavailable_rejects_total", "counter",
                 "Requests answered Reject 0x12 because the HSM health probe failed.");
        w.sample("best_hsm_unavailable_rejects_total", {}, hsmUnavailableRejects);
        if (uplink) {
            const auto& u = uplink->counts();
            w.family("best_uplink_frames_total", "counter",
                     "Uplink payload frames by outcome at the UNIX sink (docs/hsed.md).");
            w.sample("best_uplink_frames_total", {{"outcome", "delivered"}}, u.delivered);
            w.sample("best_uplink_frames_total", {{"outcome", "dropped_full"}}, u.droppedFull);
            w.sample("best_uplink_frames_total", {{"outcome", "dropped_no_sink"}}, u.droppedNoSink);
            w.family("best_uplink_backlog", "gauge",
                     "Uplink frames waiting for the sink's queue to drain.");
            w.sample("best_uplink_backlog", {}, static_cast<std::uint64_t>(uplink->queued()));
        }
        w.family("best_sessions_total", "counter", "Sessions by outcome.");
        for (const char* o :
             {"established_full", "established_resumed", "confirmed", "expired", "terminated"}) {
            auto it = sessionOutcomes.find(o);
            w.sample("best_sessions_total", {{"outcome", o}},
                     it == sessionOutcomes.end() ? std::uint64_t{0} : it->second);
        }
        std::uint64_t confirmed = 0;
        for (const auto& [sid, s] : sessions)
            confirmed += s.confirmed ? 1 : 0;
        w.family("best_sessions_active", "gauge", "Sessions held now.");
        w.sample("best_sessions_active", {{"state", "confirmed"}}, confirmed);
        w.sample("best_sessions_active", {{"state", "unconfirmed"}},
                 static_cast<std::uint64_t>(sessions.size()) - confirmed);
        w.family("best_rejects_total", "counter", "Message Rejects sent, by cause.");
        for (unsigned c = 1; c < 256; ++c) {
            if (!emsdp::isDefinedCause(static_cast<std::uint8_t>(c)))
                continue;
            char code[8];
            std::snprintf(code, sizeof code, "0x%02x", c);
            w.sample("best_rejects_total",
                     {{"cause", std::string(emsdp::causeName(static_cast<emsdp::Cause>(c)))},
                      {"code", code}},
                     rejectsByCause[c]);
        }
        w.family("best_drops_total", "counter", "Datagrams dropped, by reason.");
        for (std::size_t i = 0; i < drops.size(); ++i)
            w.sample(
                "best_drops_total",
                {{"reason", std::string(emsdp::dropReasonName(static_cast<emsdp::DropReason>(i)))}},
                drops[i]);
        w.family("best_refreshes_total", "counter", "Key refresh flows by origin and outcome.");
        for (auto origin :
             {emsdp::RefreshOrigin::ue, emsdp::RefreshOrigin::hse, emsdp::RefreshOrigin::eas})
            for (std::size_t o = 0; o < kRefreshOutcomes; ++o)
                w.sample(
                    "best_refreshes_total",
                    {{"origin", std::string(refreshOriginName(origin))},
                     {"outcome", std::string(refreshOutcomeName(static_cast<RefreshOutcome>(o)))}},
                    refreshCounts[originIndex(origin)][o]);
        w.family("best_refreshes_in_progress", "gauge", "Key refresh flows in progress.");
        w.sample("best_refreshes_in_progress", {}, static_cast<std::uint64_t>(refreshes.size()));
        w.family("best_resyncs_total", "counter", "SQN resynchronisations applied.");
        w.sample("best_resyncs_total", {}, resyncCount);
        w.family("best_aka_seconds", "histogram",
                 "Session Request accepted to HSM job result on the loop, by establishment kind.");
        w.histogramSamples("best_aka_seconds", akaFull, {{"kind", "full"}});
        w.histogramSamples("best_aka_seconds", akaResumed, {{"kind", "resumed"}});
        w.family("best_hsm_job_seconds", "histogram", "Time KeyVault jobs take on an HSM worker.");
        w.histogramSamples("best_hsm_job_seconds", hsmFull, {{"job", "establish_full"}});
        w.histogramSamples("best_hsm_job_seconds", hsmResumed, {{"job", "establish_resumed"}});
        w.histogramSamples("best_hsm_job_seconds", hsmProbe, {{"job", "health_probe"}});
        w.histogramSamples("best_hsm_job_seconds", hsmAdmin, {{"job", "admin_resync"}});
        w.family("best_config_reloads_total", "counter", "Configuration reloads by result.");
        w.sample("best_config_reloads_total", {{"result", "ok"}}, reloadsOk);
        w.sample("best_config_reloads_total", {{"result", "failed"}}, reloadsFailed);
        w.family("best_admin_requests_total", "counter", "Admin socket request lines.");
        w.sample("best_admin_requests_total", {}, admin ? admin->requests() : 0);
        w.family("best_admin_refused_total", "counter",
                 "Admin connections refused by peer credentials.");
        w.sample("best_admin_refused_total", {}, admin ? admin->refused() : 0);
        writeProcessStats(w, readProcessStats());
        return w.text();
    }

    void closeOperations() {
        watchdogTimer.reset();
        healthTimer.reset();
        drainTimer.reset();
        sighup.reset();
        if (admin)
            admin->close();
        admin.reset();
        if (metricsHttp)
            metricsHttp->close();
        metricsHttp.reset();
    }

    // ---- start-up

    Result<void> open() {
        rlimit ml{};
        if (::getrlimit(RLIMIT_MEMLOCK, &ml) == 0)
            log::info(kLog, "RLIMIT_MEMLOCK " + (ml.rlim_cur == RLIM_INFINITY
                                                     ? std::string("unlimited")
                                                     : std::to_string(ml.rlim_cur) + " octets"));
        // Issue 6: the session key slab is locked now, or start-up fails naming RLIMIT_MEMLOCK.
        auto slab = emsdp::KeySlab::create(cfg.maxSessions);
        if (!slab)
            return makeError(slab.error());
        keySlab = std::make_unique<emsdp::KeySlab>(std::move(*slab));
        keyCache = std::make_unique<emsdp::ContextCache>(*keySlab, cfg.contextCache);
        log::info(kLog, "session key slab: " + std::to_string(cfg.maxSessions) + " sessions, " +
                            std::to_string(keySlab->lockedBytes()) +
                            " octets locked; context cache " +
                            std::to_string(keyCache->capacity()));
        hsm::HsmConfig hc;
        hc.module = cfg.hsm.module;
        hc.token = cfg.hsm.token;
        hc.pinFile = cfg.hsm.pinFile;
        hc.workers = cfg.hsm.workers;
        auto v = hsm::KeyVault::open(hc);
        if (!v)
            return makeError(v.error());
        vault = std::move(*v);
        hsmObjectsAtOpen = objectsSinceOpen();  // the vault's own (token key copies, probe key)
        recycleAfterObjects = cfg.hsm.recycleAfterObjects;
        store::StoreOptions so;
        so.mode = store::Mode::daemon;
        so.sqn.ind = cfg.sqnInd;
        so.sqn.maxRanges = cfg.sqnRangesInMemory;
        auto s = store::Store::open(cfg.storePath, so);
        if (!s)
            return makeError(s.error());
        st = std::move(*s);

        wake = loop.make<net::Async>([this]() { drainInbox(); });
        std::string runtime;
        std::string status = "listening:";
        for (const auto& l : cfg.listen) {
            auto addr = net::SocketAddress::parse(l.address, l.port);
            if (!addr)
                return makeError(addr.error());
            auto sock = loop.make<net::UdpSocket>(true);  // recvmmsg batches
            if (auto b = sock->bind(*addr); !b)
                return makeError(b.error());
            if (cfg.receiveBuffer != 0) {
                auto rb = sock->setReceiveBuffer(static_cast<int>(cfg.receiveBuffer));
                if (!rb)
                    return makeError(rb.error());
                // Linux reports twice the size granted; below 2 x the request, rmem_max capped it.
                log::info(kLog, "EMSDP receive buffer " + std::to_string(*rb) + " octets (asked " +
                                    std::to_string(cfg.receiveBuffer) + ")");
            }
            net::UdpSocket* raw = sock.get();
            if (auto rr = sock->startReceive(
                    [this, raw](ByteView d, const sockaddr* from) { onDatagram(raw, d, from); });
                !rr)
                return makeError(rr.error());
            auto bound = sock->localAddress();
            if (!bound)
                return makeError(bound.error());
            runtime += "emsdp " + l.address + " " + std::to_string(bound->port()) + "\n";
            status += " " + bound->toString();
            log::info(kLog, "EMSDP on " + bound->toString());
            sockets.push_back(std::move(sock));
        }
        auto ops = openOperations();
        if (!ops)
            return makeError(ops.error());
        runtime += *ops;
        if (!cfg.runtimeFile.empty()) {
            const std::string tmp = cfg.runtimeFile + ".tmp";
            {
                std::ofstream f(tmp, std::ios::trunc);
                f << runtime;
                if (!f)
                    return makeError(HsedErrc::internal, "cannot write " + tmp);
            }
            if (std::rename(tmp.c_str(), cfg.runtimeFile.c_str()) != 0)
                return makeError(HsedErrc::internal, "cannot write " + cfg.runtimeFile);
        }
        if (!cfg.uplinkSink.empty()) {
            uplink = std::make_unique<UplinkSink>(loop, cfg.uplinkSink, cfg.uplinkBacklog);
            if (auto u = uplink->open(); !u)
                return makeError(u.error());
        }
        if (!cfg.downlinkSocket.empty()) {
            const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
            sockaddr_un addr{};
            addr.sun_family = AF_UNIX;
            if (fd < 0 || cfg.downlinkSocket.size() >= sizeof addr.sun_path)
                return makeError(HsedErrc::internal, "downlink socket failed");
            std::strncpy(addr.sun_path, cfg.downlinkSocket.c_str(), sizeof addr.sun_path - 1);
            ::unlink(cfg.downlinkSocket.c_str());
            if (::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
                ::close(fd);
                return makeError(HsedErrc::internal,
                                 "cannot bind " + cfg.downlinkSocket + ": " + std::strerror(errno));
            }
            downlinkFd = fd;
            downlinkPoll = loop.make<net::Poll>(fd);
            if (auto r = downlinkPoll->start(UV_READABLE,
                                             [this](int status, int) {
                                                 if (status >= 0)
                                                     onDownlinkReadable();
                                             });
                !r)
                return makeError(r.error());
        }
        sweep = loop.make<net::Timer>();
        sweep->start(1000, 1000, [this]() { onSweep(); });
        sigterm = loop.make<net::Signal>();
        sigint = loop.make<net::Signal>();
        auto stop = [this](int sig) { beginDrain(sig); };
        if (auto r = sigterm->start(SIGTERM, stop); !r)
            return makeError(r.error());
        if (auto r = sigint->start(SIGINT, stop); !r)
            return makeError(r.error());
        listening = status;
        if (auto r = notifier.ready(statusLine()); !r)
            log::warning(kLog, r.error().message);
        log::notice(kLog, "ready; " + status);
        return {};
    }

    void shutdown() {
        closeOperations();
        stopping = true;
        vault.reset();  // queued jobs finish; their results are discarded
        st.reset();     // submitted writes are made durable
        {
            std::lock_guard<std::mutex> lock(inboxMutex);
            inbox.clear();
        }
        std::string counters;
        for (std::size_t i = 0; i < drops.size(); ++i)
            if (drops[i] != 0)
                counters += " " +
                            std::string(emsdp::dropReasonName(static_cast<emsdp::DropReason>(i))) +
                            "=" + std::to_string(drops[i]);
        log::notice(kLog, "drops:" + (counters.empty() ? std::string(" none") : counters));
        std::string refreshLine;
        for (std::size_t o = 0; o < refreshCounts.size(); ++o)
            for (std::size_t i = 0; i < kRefreshOutcomes; ++i)
                if (refreshCounts[o][i] != 0)
                    refreshLine +=
                        " " +
                        std::string(refreshOriginName(static_cast<emsdp::RefreshOrigin>(o + 1))) +
                        "." + std::string(refreshOutcomeName(static_cast<RefreshOutcome>(i))) +
                        "=" + std::to_string(refreshCounts[o][i]);
        log::notice(kLog,
                    "refreshes:" + (refreshLine.empty() ? std::string(" none") : refreshLine) +
                        " resyncs=" + std::to_string(resyncCount));
        sessions.clear();
        sessionsByImsi.clear();
        tentative.clear();
        sockets.clear();
        wake.reset();
        sigterm.reset();
        sigint.reset();
        sweep.reset();
        if (downlinkFd >= 0) {
            downlinkPoll.reset();  // stops polling before the descriptor goes
            ::close(downlinkFd);
            downlinkFd = -1;
            ::unlink(cfg.downlinkSocket.c_str());
        }
        if (uplink)
            uplink->close();
        loop.run();
    }
};

Daemon::Daemon(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Daemon::~Daemon() = default;

Result<std::unique_ptr<Daemon>> Daemon::create(const HsedConfig& config) {
    auto impl = std::make_unique<Impl>(config);
    if (auto r = impl->open(); !r) {
        impl->shutdown();
        return makeError(r.error());
    }
    return std::unique_ptr<Daemon>(new Daemon(std::move(impl)));
}

int Daemon::run() {
    impl_->loop.run();
    impl_->shutdown();
    log::notice(kLog, "stopped");
    return impl_->exitCode;
}

int Daemon::checkHsm(const HsedConfig& config) {
    hsm::HsmConfig hc;
    hc.module = config.hsm.module;
    hc.token = config.hsm.token;
    hc.pinFile = config.hsm.pinFile;
    hc.workers = 1;
    auto v = hsm::KeyVault::open(hc);
    if (!v) {
        std::fprintf(stderr, "best-hsed: HSM: %s\n", v.error().message.c_str());
        return 1;
    }
    if (auto h = (*v)->checkHealth(); !h) {
        std::fprintf(stderr, "best-hsed: HSM: %s\n", h.error().message.c_str());
        return 1;
    }
    std::printf("HSM OK: token '%s'\n", (*v)->tokenLabel().c_str());
    return 0;
}

}  // namespace best::hse
