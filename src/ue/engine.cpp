#include "ue/engine.h"

#include <algorithm>
#include <array>
#include <utility>

#include "emsdp/header.h"
#include "emsdp/receive.h"
#include "ue/ue_error.h"

namespace best::ue {

using emsdp::Body;
using emsdp::Cause;
using emsdp::Command;
using emsdp::DropReason;
using emsdp::SecureChannel;
using emsdp::Service;
using emsdp::Side;
using emsdp::UpTermination;

namespace {

constexpr std::uint8_t kEia2 = crypto::kAlgEia2;
constexpr std::uint8_t kEea2 = crypto::kAlgEia2;
constexpr std::size_t kMaxStartIds = 4;

template <typename T>
void emit(Output& out, T event) {
    out.events.emplace_back(std::move(event));
}

void drop(Output& out, DropReason r) {
    emit(out, Dropped{r});
}

// A Session Start's header and body; a malformed one is dropped.
std::optional<emsdp::ParsedSessionStart> parseStart(ByteView datagram, Output& out) {
    auto parsed = emsdp::parseSessionStart(datagram);
    if (!parsed) {
        drop(out, parsed.error());
        return std::nullopt;
    }
    return std::move(*parsed);
}

Bytes toBytes(ByteView v) {
    return Bytes(v.begin(), v.end());
}

std::chrono::milliseconds cumulative(const UeTimers& t, std::size_t n) {
    std::chrono::milliseconds sum{0};
    for (std::size_t i = 0; i < n && i < t.resendGaps.size(); ++i)
        sum += t.resendGaps[i];
    return sum;
}

// When a transmission schedule that started at `first` with `resends` resends done is next due
// (a resend, or the give-up).
MonoTime scheduleDue(const UeTimers& t, MonoTime first, std::size_t resends) {
    if (resends < t.resendGaps.size())
        return first + cumulative(t, resends + 1);
    return first + cumulative(t, t.resendGaps.size()) + t.giveUpAfterLast;
}

// A13: a schedule that started at `first` gives up this long after its last resend.
bool scheduleGivenUp(const UeTimers& t, MonoTime first, MonoTime now) {
    return now >= first + cumulative(t, t.resendGaps.size()) + t.giveUpAfterLast;
}

// Counts every resend of the schedule already due at `now` into `resends`; true when any was
// (the caller sends once, however late the driver is: A13).
bool resendDue(const UeTimers& t, MonoTime first, std::size_t& resends, MonoTime now) {
    bool due = false;
    while (resends < t.resendGaps.size() && now >= first + cumulative(t, resends + 1)) {
        ++resends;
        due = true;
    }
    return due;
}

// A KID-0 Message Reject of the UE (0x0A, 0x0B + AUTS) under the Session Start's Session ID.
void sendUnprotectedReject(std::uint32_t sessionId, const emsdp::MessageReject& reject,
                           Output& out) {
    std::array<std::uint8_t, 64> buf{};
    if (auto n = emsdp::encodeUnprotectedReject(sessionId, reject, buf))
        out.datagrams.emplace_back(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(*n));
}

bool amfSeparationBit(const crypto::Autn& autn) noexcept {
    return (autn[6] & 0x80) != 0;  // AMF = AUTN octets 6-7; the separation bit is its MSB
}

// R (from the USIM's CK/IK and the AUTN's SQN xor AK), then KInt.
Result<Key256> kintFromAka(crypto::KeyAgreement agreement, const AkaSuccess& aka,
                           const crypto::Autn& autn, const crypto::PlmnId& plmn,
                           std::string_view hseId) {
    crypto::Ak sqnXorAk{};
    std::copy_n(autn.begin(), sqnXorAk.size(), sqnXorAk.begin());
    auto root = crypto::deriveRoot(agreement, aka.ck, aka.ik, plmn, sqnXorAk);
    if (!root)
        return tl::unexpected(root.error());
    return crypto::deriveKInt(*root, hseId);
}

// The session's EMSDP keys: CP from KSess; UP from KSess, or from KSess_E2E in UE-to-EAS mode.
Result<emsdp::ChannelKeys> channelKeys(const Key256& kint, std::string_view easId,
                                       std::uint32_t sessionId, std::uint64_t nonce,
                                       const emsdp::SessionStart& start) {
    const std::uint8_t intAlg = start.hseConfiguration.integrityAlg;
    const std::uint8_t encAlg = start.hseConfiguration.cipheringAlg;
    auto ksess = crypto::deriveKSess(kint, sessionId, nonce);
    if (!ksess)
        return tl::unexpected(ksess.error());
    auto keys = crypto::deriveSessionKeys(*ksess, intAlg, encAlg);
    if (!keys)
        return tl::unexpected(keys.error());
    auto ck = emsdp::ChannelKeys::from(*keys);
    if (start.serviceParameters.termination == UpTermination::eas) {
        auto kintE2e = crypto::deriveKIntE2e(kint, easId);
        if (!kintE2e)
            return tl::unexpected(kintE2e.error());
        auto ksessE2e = crypto::deriveKSess(*kintE2e, sessionId, nonce);
        if (!ksessE2e)
            return tl::unexpected(ksessE2e.error());
        auto e2e = crypto::deriveSessionKeys(*ksessE2e, intAlg, encAlg);
        if (!e2e)
            return tl::unexpected(e2e.error());
        ck.upInt = e2e->upInt;
        ck.upEnc = e2e->upEnc;
    }
    return ck;
}

SessionInfo infoFrom(const emsdp::Header& h, const emsdp::SessionStart& s, bool resumed) {
    SessionInfo i;
    i.sessionId = h.sessionId;
    i.kid = h.kid;
    i.keyAgreement = s.keyAgreement;
    i.resumed = resumed;
    i.service = s.serviceParameters.service;
    i.termination = s.serviceParameters.termination;
    i.keySetLifetime = s.serviceParameters.keySetLifetime;
    i.integrityAlg = s.hseConfiguration.integrityAlg;
    i.cipheringAlg = s.hseConfiguration.cipheringAlg;
    i.cpScheme = s.hseConfiguration.cpScheme;
    i.upScheme = s.hseConfiguration.upScheme;
    i.confirmationRequired = s.hseConfiguration.confirmationRequired();
    return i;
}

}  // namespace

// ---- settings and time ------------------------------------------------------------------------

UeTime UeTime::now() noexcept {
    return UeTime{std::chrono::steady_clock::now(),
                  static_cast<std::int64_t>(std::chrono::duration_cast<std::chrono::seconds>(
                                                std::chrono::system_clock::now().time_since_epoch())
                                                .count())};
}

Result<void> UeSettings::validate() const {
    if (easId.empty() || easId.size() > emsdp::kMaxIdLength)
        return makeError(UeErrc::invalid_settings, "EAS Id must be 1..64 octets");
    if (hseId.size() > emsdp::kMaxIdLength)
        return makeError(UeErrc::invalid_settings, "HSE Id must be at most 64 octets");
    const auto& c = capabilities;
    if (c.release < 15 || c.release > 18)
        return makeError(UeErrc::invalid_settings, "BEST release must be 15..18");
    if ((c.keyAgreements & 0x07) == 0)
        return makeError(UeErrc::invalid_settings, "no key agreement offered");
    if (!c.supportsIntegrity(kEia2))
        return makeError(UeErrc::invalid_settings,
                         "integrity algorithms must include 128-EIA2 (the only one implemented)");
    if ((c.integrityAlgs & ~std::uint8_t{0x05}) != 0)
        return makeError(UeErrc::invalid_settings, "only 128-EIA2 integrity is implemented");
    if ((c.cipheringAlgs & ~std::uint8_t{0x05}) != 0)
        return makeError(UeErrc::invalid_settings, "only 128-EEA2 ciphering is implemented");
    const bool needsSn = c.offers(crypto::KeyAgreement::eps) ||
                         c.offers(crypto::KeyAgreement::fiveG) || c.confidentialityRequested();
    if (needsSn && !servingNetwork)
        return makeError(
            UeErrc::invalid_settings,
            "a serving network is needed to offer EPS or 5G or ask for confidentiality");
    if (servingNetwork && !emsdp::plmnDigitsValid(*servingNetwork))
        return makeError(UeErrc::invalid_settings, "serving network has a non-BCD digit");
    if (timers.resendGaps.size() > 16 || timers.terminateResend >= timers.terminateTimeout)
        return makeError(UeErrc::invalid_settings,
                         "timers: at most 16 resends, terminate resend before its timeout");
    return {};
}

// ---- private state ----------------------------------------------------------------------------

struct UeEngine::Attempt {
    bool resumption = false;
    KeySetRole role = KeySetRole::current;  // resumption: which set
    std::uint8_t kid = 0;                   // resumption: that set's KID
    std::uint64_t nonce = 0;
    Bytes request;  // the Session Request octets, resent identically (A13)
    emsdp::RequestChecksum checksum{};
    MonoTime firstSent{};
    std::size_t resends = 0;
    // Session IDs of this attempt's Session Starts (A2).
    std::array<std::uint32_t, kMaxStartIds> startIds{};
    std::size_t startIdCount = 0;
    // A Session Start waiting for the USIM (ticket 0: none).
    std::uint32_t akaTicket = 0;
    Bytes heldStart;

    void noteStartId(std::uint32_t sid) noexcept {
        if (knowsStartId(sid))
            return;
        if (startIdCount < kMaxStartIds)
            startIds[startIdCount++] = sid;
        else
            startIds[kMaxStartIds - 1] = sid;
    }
    bool knowsStartId(std::uint32_t sid) const noexcept {
        return std::find(startIds.begin(),
                         startIds.begin() + static_cast<std::ptrdiff_t>(startIdCount),
                         sid) != startIds.begin() + static_cast<std::ptrdiff_t>(startIdCount);
    }
};

// An outstanding CP request of the UE inside the session.
enum class TxKind : std::uint8_t { none, terminate, manageKeys };

// A refresh whose RAND / AUTN wait for the USIM (4.4).
struct UeEngine::RefreshRun {
    std::uint32_t ticket = 0;
    bool hseTriggered = false;  // an HSE Manage Keys Request (else the Response to the UE's)
    emsdp::RefreshOrigin origin = emsdp::RefreshOrigin::ue;
    crypto::Rand rand{};
    crypto::Autn autn{};
    crypto::KeyAgreement keyAgreement = crypto::KeyAgreement::umts;
    std::uint8_t newKid = 0;

    // From an HSE Manage Keys Response (the UE's refresh) or Request (the HSE's).
    template <typename ManageKeys>
    static RefreshRun of(const ManageKeys& m, bool hseTriggered, emsdp::RefreshOrigin origin) {
        RefreshRun run;
        run.hseTriggered = hseTriggered;
        run.origin = origin;
        run.rand = m.rand;
        run.autn = m.autn;
        run.keyAgreement = m.keyAgreement;
        run.newKid = m.newKeyId;
        return run;
    }
};

struct UeEngine::UeRefreshDone {
    crypto::Rand rand{};
    std::uint8_t newKid = 0;
    std::optional<emsdp::MessageReject> reject;  // what the UE answered when it failed
    RefreshFailure failure = RefreshFailure::akaMacFailure;
};

struct UeEngine::Session {
    Session(SecureChannel c, const SessionInfo& i) : channel(std::move(c)), info(i) {}

    SecureChannel channel;
    SessionInfo info;
    // The Session Start that made the session (its MAC and size): the HSE may send it again in
    // answer to a Session Request resend that crossed it; that copy is dropped as a duplicate.
    std::uint32_t startMac = 0;
    std::size_t startSize = 0;
    TxKind tx = TxKind::none;
    std::optional<Cause> terminateCause;
    MonoTime txFirst{};
    std::size_t txResends = 0;
    // A refresh waiting for the USIM, and the last HSE Manage Keys Request answered in this
    // session with that answer (4.6: a repeat gets it again, re-protected, without AKA).
    std::optional<RefreshRun> refresh;
    std::optional<crypto::Rand> answeredRand;
    std::optional<emsdp::UeManageKeysResponse> answer;
};

UeEngine::UeEngine(std::shared_ptr<const UeSettings> settings, const emsdp::Imsi& imsi,
                   UeState state, UeDeps deps)
    : settings_(std::move(settings)),
      imsi_(imsi),
      store_(deps.store),
      random_(deps.random != nullptr ? deps.random : &systemRandom()),
      state_(std::move(state)) {}

UeEngine::UeEngine(UeEngine&&) noexcept = default;
UeEngine& UeEngine::operator=(UeEngine&&) noexcept = default;
UeEngine::~UeEngine() = default;

Result<UeEngine> UeEngine::create(std::shared_ptr<const UeSettings> settings,
                                  std::string_view imsiDigits, UeState state, UeDeps deps) {
    if (!settings)
        return makeError(UeErrc::invalid_settings, "no settings");
    if (auto ok = settings->validate(); !ok)
        return tl::unexpected(ok.error());
    auto imsi = emsdp::Imsi::fromDigits(imsiDigits);
    if (!imsi)
        return makeError(UeErrc::invalid_settings, "IMSI: " + imsi.error().message);
    if (!state.imsi.empty() && state.imsi != imsiDigits)
        return makeError(UeErrc::state_mismatch, "the saved key sets belong to IMSI " + state.imsi +
                                                     ", not to " + std::string(imsiDigits) +
                                                     "; remove the state file to start over");
    state.imsi = std::string(imsiDigits);
    for (const auto* s : {&state.current, &state.pending})
        if (*s && ((*s)->kid < 1 || (*s)->kid > emsdp::kMaxKid))
            return makeError(UeErrc::invalid_settings, "a key set's KID must be 1..7");
    return UeEngine(std::move(settings), *imsi, std::move(state), deps);
}

Phase UeEngine::phase() const noexcept {
    if (session_)
        return session_->tx == TxKind::terminate ? Phase::terminating : Phase::established;
    if (attempt_)
        return Phase::establishing;
    if (startDeferred_)
        return Phase::backingOff;
    return Phase::idle;
}

std::optional<SessionInfo> UeEngine::session() const noexcept {
    if (!session_)
        return std::nullopt;
    return session_->info;
}

bool UeEngine::refreshOutstanding() const noexcept {
    return session_ && (session_->tx == TxKind::manageKeys || session_->refresh.has_value());
}

std::optional<std::uint8_t> UeEngine::pendingKid() const noexcept {
    if (!state_.pending)
        return std::nullopt;
    return state_.pending->kid;
}

std::optional<emsdp::CounterSnapshot> UeEngine::counters() const noexcept {
    if (!session_)
        return std::nullopt;
    return session_->channel.counters();
}

Result<void> UeEngine::restoreCounters(const emsdp::CounterSnapshot& snapshot) {
    if (!session_)
        return makeError(UeErrc::not_established, "no session");
    session_->channel.restoreCounters(snapshot);
    return {};
}

// ---- starting ---------------------------------------------------------------------------------

Result<void> UeEngine::start(const UeTime& now, Output& out) {
    if (session_ || attempt_)
        return makeError(UeErrc::busy, "a session or an establishment is already running");
    if (backOffUntil_ && now.mono < *backOffUntil_) {
        startDeferred_ = true;  // 0x0F: try again only when the back-off is over
        return {};
    }
    backOffUntil_.reset();
    startDeferred_ = false;
    return startNow(now, out);
}

void UeEngine::cancel(Output& out) {
    startDeferred_ = false;
    if (attempt_)
        endAttempt(AttemptEnd::cancelled, out);
}

Result<void> UeEngine::startNow(const UeTime& now, Output& out) {
    // 4.2: the pending set first, else the current one; never an expired one (A8: only when key
    // sets are storable).
    if (settings_->capabilities.keySetsStorable()) {
        for (KeySetRole role : {KeySetRole::pending, KeySetRole::current}) {
            const auto& s = role == KeySetRole::pending ? state_.pending : state_.current;
            if (!s || s->expired(now.wallSeconds) || s->noncesExhausted())
                continue;
            auto started = startResumption(role, now, out);
            if (!started)
                return tl::unexpected(started.error());
            if (*started)
                return {};
            break;  // not persisted: a full establishment instead
        }
    }
    return startFull(now, out);
}

Result<std::uint64_t> UeEngine::randomNonce() {
    std::array<std::uint8_t, 8> b{};
    if (auto ok = random_->fill(b); !ok)
        return makeError(UeErrc::random_failed, "nonce: " + ok.error().message);
    return getBe64(b.data());
}

emsdp::SessionRequest UeEngine::requestBody(std::uint64_t nonce) const {
    emsdp::SessionRequest r;
    r.imsi = imsi_;
    r.ueConfiguration = settings_->capabilities;
    r.easId = settings_->easId;
    r.servingNetwork = settings_->servingNetwork;
    r.ueNonce = nonce;
    return r;
}

Result<void> UeEngine::startFull(const UeTime& now, Output& out) {
    auto nonce = randomNonce();
    if (!nonce)
        return tl::unexpected(nonce.error());
    std::array<std::uint8_t, emsdp::kMaxDatagram> buf{};
    auto n = emsdp::encodeSessionRequest(requestBody(*nonce), buf);
    if (!n)
        return makeError(UeErrc::invalid_settings, "Session Request: " + n.error().message);
    auto a = std::make_unique<Attempt>();
    a->nonce = *nonce;
    if (auto sent = sendRequest(std::move(a), ByteView(buf.data(), *n), now, out); !sent)
        return sent;
    // A full request's nonce becomes the new set's first nonce (A10); it is saved with the set.
    state_.lastNonce = *nonce;
    return {};
}

Result<void> UeEngine::sendRequest(std::unique_ptr<Attempt> a, ByteView request, const UeTime& now,
                                   Output& out) {
    a->request = toBytes(request);
    auto sum = emsdp::requestChecksum(a->request);
    if (!sum)
        return makeError(UeErrc::crypto, sum.error().message);
    a->checksum = *sum;
    a->firstSent = now.mono;
    out.datagrams.push_back(a->request);
    attempt_ = std::move(a);
    return {};
}

Result<bool> UeEngine::startResumption(KeySetRole role, const UeTime& now, Output& out) {
    KeySet& set = role == KeySetRole::pending ? *state_.pending : *state_.current;
    std::uint64_t nonce = 0;
    if (set.lastNonce) {
        nonce = *set.lastNonce + 1;  // strictly greater than any used with this set (4.2)
    } else {
        auto r = randomNonce();  // a pending set starts with none (A10)
        if (!r)
            return tl::unexpected(r.error());
        nonce = *r;
    }
    set.lastNonce = nonce;
    state_.lastNonce = nonce;
    // The nonce must be durable before the request leaves (it must never repeat).
    if (store_ != nullptr) {
        if (auto ok = store_->save(state_); !ok) {
            emit(out, PersistFailed{ok.error()});
            return false;
        }
    }
    auto ksess0 = crypto::deriveKSess(set.kint, 0, nonce);
    if (!ksess0)
        return makeError(UeErrc::crypto, ksess0.error().message);
    auto cpInt = crypto::deriveSessionKey(*ksess0, crypto::KeyDistinguisher::cpInt, kEia2);
    if (!cpInt)
        return makeError(UeErrc::crypto, cpInt.error().message);
    crypto::Eia2 mac(*cpInt);
    std::array<std::uint8_t, emsdp::kMaxDatagram> buf{};
    auto n = emsdp::encodeResumptionRequest(requestBody(nonce), set.kid, mac, buf);
    if (!n)
        return makeError(UeErrc::crypto, "resumption request: " + n.error().message);
    auto a = std::make_unique<Attempt>();
    a->resumption = true;
    a->role = role;
    a->kid = set.kid;
    a->nonce = nonce;
    if (auto sent = sendRequest(std::move(a), ByteView(buf.data(), *n), now, out); !sent)
        return tl::unexpected(sent.error());
    return true;
}

void UeEngine::endAttempt(AttemptEnd reason, Output& out, std::optional<Cause> cause,
                          std::optional<std::uint16_t> backOff) {
    const bool resumption = attempt_ && attempt_->resumption;
    attempt_.reset();
    emit(out, AttemptEnded{reason, resumption, cause, backOff});
}

// ---- receiving --------------------------------------------------------------------------------

void UeEngine::handleDatagram(ByteView datagram, Source source, const UeTime& now, Output& out) {
    auto r = emsdp::route(datagram, Side::ue);
    if (!r) {
        drop(out, r.error());
        return;
    }
    switch (r->kind) {
        case emsdp::RouteKind::unprotectedReject:
            onUnprotectedReject(datagram, source, now, out);
            return;
        case emsdp::RouteKind::sessionRequest:
            drop(out, DropReason::unexpected_command);  // route() never says so at the UE
            return;
        case emsdp::RouteKind::session:
            break;
    }
    const emsdp::HeaderPrefix& p = r->prefix;
    if (session_ && p.sessionId == session_->info.sessionId) {
        if (p.plane == emsdp::Plane::up)
            onUp(datagram, out);
        else
            onSessionCp(datagram, now, out);
        return;
    }
    if (attempt_ && p.plane == emsdp::Plane::cp) {
        onSessionStart(datagram, now, out);
        return;
    }
    drop(out, DropReason::unknown_session);
}

void UeEngine::onUnprotectedReject(ByteView datagram, Source source, const UeTime& now,
                                   Output& out) {
    auto parsed = emsdp::parseUnprotectedReject(datagram);
    if (!parsed) {
        drop(out, parsed.error());
        return;
    }
    // 4.5: only from the HSE's address; A2: only while waiting for the Session Start of the
    // current attempt, with Session ID 0 or that of one of the attempt's Session Starts.
    if (source != Source::hse) {
        drop(out, DropReason::wrong_source_address);
        return;
    }
    const std::uint32_t sid = parsed->header.sessionId;
    if (!attempt_ || (sid != 0 && !attempt_->knowsStartId(sid))) {
        drop(out, DropReason::unsolicited_reject);
        return;
    }
    const emsdp::MessageReject& rj = parsed->body;
    if (rj.cause == Cause::key_set_invalid && attempt_->resumption) {
        // 4.2: the set is unknown, expired or the nonce not fresh at the HSE: fall back to 4.1.
        // The set is kept (an unprotected reject must not destroy keys); a verified full Session
        // Start replaces it.
        const std::uint8_t kid = attempt_->kid;
        attempt_.reset();
        emit(out, FallbackToFull{kid});
        if (auto ok = startFull(now, out); !ok)
            emit(out, StartFailed{ok.error()});
        return;
    }
    if (rj.cause == Cause::congestion) {
        const std::uint16_t seconds = rj.backOff.value_or(0);
        backOffUntil_ = now.mono + std::chrono::seconds(seconds);
    }
    endAttempt(AttemptEnd::rejected, out, rj.cause, rj.backOff);
}

void UeEngine::onSessionStart(ByteView datagram, const UeTime& now, Output& out) {
    Attempt& a = *attempt_;
    if (a.akaTicket != 0) {
        // The USIM is answering a Session Start of this attempt; a resend brings this one back.
        drop(out, DropReason::unexpected_command);
        return;
    }
    const auto parsed = parseStart(datagram, out);
    if (!parsed)
        return;
    const emsdp::Header& h = parsed->header;
    const emsdp::SessionStart& s = parsed->body;
    const emsdp::UeConfiguration& caps = settings_->capabilities;
    const emsdp::HseConfiguration& hc = s.hseConfiguration;
    const emsdp::ServiceParameters& sp = s.serviceParameters;

    // A7 and section 3.3, checked before anything runs on it (no key is needed for them).
    bool fits = true;
    fits = fits && s.rand.has_value() != a.resumption;  // RAND/AUTN exactly in answer to 4.1
    fits = fits && (sp.service == Service::kaOnly) == (sp.termination == UpTermination::none);
    fits = fits && hc.cipheringAlg == (sp.service == Service::upConfidentiality ? kEea2 : 0);
    fits = fits && hc.confirmationRequired() == (sp.service == Service::kaOnly);
    fits = fits && (sp.service != Service::upConfidentiality || caps.supportsCiphering(kEea2));
    fits = fits && hc.integrityAlg == kEia2 && caps.supportsIntegrity(hc.integrityAlg);
    fits = fits && (settings_->hseId.empty() || hc.hseId == settings_->hseId);
    if (a.resumption) {
        const KeySet* set = a.role == KeySetRole::pending
                                ? (state_.pending ? &*state_.pending : nullptr)
                                : (state_.current ? &*state_.current : nullptr);
        fits = fits && set != nullptr && h.kid == set->kid && s.keyAgreement == set->keyAgreement &&
               hc.hseId == set->hseId;
    } else {
        fits = fits && caps.offers(s.keyAgreement) &&
               (s.keyAgreement == crypto::KeyAgreement::umts || settings_->servingNetwork);
    }
    if (!fits) {
        drop(out, DropReason::session_start_mismatch);
        return;
    }
    if (a.resumption) {
        completeResumption(datagram, h, s, now, out);
        return;
    }
    a.noteStartId(h.sessionId);
    // A7: for EPS and 5G the AMF separation bit is checked first; missing is a MAC failure and
    // the USIM is not run.
    if (s.keyAgreement != crypto::KeyAgreement::umts && !amfSeparationBit(*s.autn)) {
        sendUnprotectedReject(h.sessionId, emsdp::MessageReject{Cause::aka_mac_failure, {}, {}},
                              out);
        endAttempt(AttemptEnd::akaMacFailure, out);
        return;
    }
    a.heldStart = toBytes(datagram);
    a.akaTicket = takeTicket();
    out.akaRequests.push_back(AkaRequest{a.akaTicket, *s.rand, *s.autn});
}

bool UeEngine::onAkaResult(std::uint32_t ticket, Result<AkaOutcome> outcome, const UeTime& now,
                           Output& out) {
    if (ticket != 0 && session_ && session_->refresh && session_->refresh->ticket == ticket) {
        onRefreshAka(std::move(outcome), now, out);
        return true;
    }
    if (!attempt_ || ticket == 0 || attempt_->akaTicket != ticket)
        return false;
    attempt_->akaTicket = 0;
    const Bytes held = std::move(attempt_->heldStart);
    attempt_->heldStart.clear();
    if (!outcome) {
        emit(out, UsimFailed{outcome.error()});
        return true;
    }
    const std::uint32_t sid = emsdp::peekHeader(held).value_or(emsdp::HeaderPrefix{}).sessionId;
    if (std::holds_alternative<AkaMacFailure>(*outcome)) {
        sendUnprotectedReject(sid, emsdp::MessageReject{Cause::aka_mac_failure, {}, {}}, out);
        endAttempt(AttemptEnd::akaMacFailure, out);
        return true;
    }
    if (const auto* sync = std::get_if<AkaSyncFailure>(&*outcome)) {
        // 4.1 step 4: Reject 0x0B with AUTS; the HSE answers with a new Session Start (same
        // Session ID), which this attempt still waits for.
        sendUnprotectedReject(sid, emsdp::MessageReject{Cause::synch_failure, sync->auts, {}}, out);
        emit(out, SyncFailureReported{sid});
        return true;
    }
    completeFull(held, std::get<AkaSuccess>(*outcome), now, out);
    return true;
}

void UeEngine::completeFull(ByteView datagram, const AkaSuccess& aka, const UeTime& now,
                            Output& out) {
    const auto parsed = parseStart(datagram, out);
    if (!parsed)
        return;
    const emsdp::Header& h = parsed->header;
    const emsdp::SessionStart& s = parsed->body;
    const Attempt& a = *attempt_;
    auto kint =
        kintFromAka(s.keyAgreement, aka, *s.autn,
                    settings_->servingNetwork.value_or(crypto::PlmnId{}), s.hseConfiguration.hseId);
    if (!kint) {
        drop(out, DropReason::crypto_failure);
        return;
    }
    // The USIM has used the SQN: a bad MAC or checksum is dropped and the attempt goes on with
    // its resends.
    auto channel = acceptStart(datagram, h, s, *kint, out);
    if (!channel)
        return;
    // A9: the new set is current; every other set is destroyed.
    KeySet set;
    set.kid = h.kid;
    set.keyAgreement = s.keyAgreement;
    set.plmn = settings_->servingNetwork;
    set.hseId = std::string(s.hseConfiguration.hseId);
    set.kint = *kint;
    set.created = now.wallSeconds;
    set.lifetime = s.serviceParameters.keySetLifetime;
    set.lastNonce = a.nonce;  // A10
    state_.current = std::move(set);
    state_.pending.reset();
    state_.lastNonce = a.nonce;
    lastUeRefresh_.reset();  // it named a set that is gone
    emit(out, KeySetStored{h.kid, KeySetRole::current});
    persist(out);
    establish(std::move(*channel), infoFrom(h, s, false), *kint, datagram, out);
}

std::optional<SecureChannel> UeEngine::acceptStart(ByteView datagram, const emsdp::Header& h,
                                                   const emsdp::SessionStart& s, const Key256& kint,
                                                   Output& out) {
    const Attempt& a = *attempt_;
    auto keys = channelKeys(kint, settings_->easId, h.sessionId, a.nonce, s);
    if (!keys) {
        drop(out, DropReason::crypto_failure);
        return std::nullopt;
    }
    auto channel = SecureChannel::create(emsdp::channelConfigFor(Side::ue, h, s), *keys);
    if (!channel) {
        drop(out, DropReason::crypto_failure);
        return std::nullopt;
    }
    // 4.1 step 4 / 4.2: the MAC, then the request checksum; either wrong is dropped.
    if (auto ok = channel->acceptSessionStart(datagram); !ok) {
        drop(out, ok.error().reason);
        return std::nullopt;
    }
    if (!constantTimeEqual(s.requestChecksum, a.checksum)) {
        drop(out, DropReason::checksum_mismatch);
        return std::nullopt;
    }
    return std::move(*channel);
}

void UeEngine::completeResumption(ByteView datagram, const emsdp::Header& h,
                                  const emsdp::SessionStart& s, const UeTime& /*now*/,
                                  Output& out) {
    const Attempt& a = *attempt_;
    std::optional<KeySet>& slot = a.role == KeySetRole::pending ? state_.pending : state_.current;
    auto channel = acceptStart(datagram, h, s, slot->kint, out);
    if (!channel)
        return;
    bool changed = false;
    if (slot->lifetime != s.serviceParameters.keySetLifetime) {
        slot->lifetime = s.serviceParameters.keySetLifetime;  // the HSE's word on the set
        changed = true;
    }
    const Key256 kint = slot->kint;
    if (a.role == KeySetRole::pending) {
        // A pending set's first session: it becomes current, the previous current is destroyed.
        state_.current = std::move(state_.pending);
        state_.pending.reset();
        emit(out, KeySetStored{h.kid, KeySetRole::current});
        changed = true;
    }
    if (changed)
        persist(out);
    establish(std::move(*channel), infoFrom(h, s, true), kint, datagram, out);
}

void UeEngine::establish(SecureChannel channel, const SessionInfo& info, const Key256& kint,
                         ByteView sessionStart, Output& out) {
    attempt_.reset();
    session_ = std::make_unique<Session>(std::move(channel), info);
    session_->startSize = sessionStart.size();
    session_->startMac = getBe32(sessionStart.data() + sessionStart.size() - emsdp::kMacSize);
    emit(out, SessionEstablished{info});
    EasKeyAvailable eas;
    eas.kid = info.kid;
    if (auto id = crypto::deriveEasKeyId(kint, settings_->easId))
        eas.easKeyId = *id;
    if (info.service == Service::kaOnly) {
        if (auto psk = crypto::deriveKIntEasPsk(kint, settings_->easId))
            eas.easPsk = *psk;
    }
    emit(out, std::move(eas));
    // 4.1 step 5: KA-only sessions are confirmed explicitly (CP-UL COUNT 0); in UP services the
    // first MAC-valid message of the UE confirms.
    if (info.confirmationRequired)
        sendCp(emsdp::SessionStartConfirmation{}, out);
}

void UeEngine::onSessionCp(ByteView datagram, const UeTime& /*now*/, Output& out) {
    if (datagram.size() == session_->startSize && datagram.size() > emsdp::kHeaderBaseSize &&
        datagram[emsdp::kHeaderBaseSize] == static_cast<std::uint8_t>(Command::sessionStart) &&
        getBe32(datagram.data() + datagram.size() - emsdp::kMacSize) == session_->startMac) {
        drop(out, DropReason::unexpected_command);  // the session's own Session Start again
        return;
    }
    auto r = session_->channel.openCp(datagram);
    if (!r) {
        const emsdp::Verdict& v = r.error();
        drop(out, v.reason);
        if (v.isReject())  // a format error behind a good MAC: MAC'd Reject (never for a Reject)
            sendCp(emsdp::MessageReject{v.cause, {}, {}}, out);
        return;
    }
    Session& s = *session_;
    if (const auto* t = std::get_if<emsdp::SessionTerminateRequest>(&r->body)) {
        if (t->cause == Cause::counter_exhausted) {
            // A1: the peer deleted the session when it sent this; no Response.
            endSession(out, Party::hse, t->cause, false);
            return;
        }
        if (sendCp(emsdp::SessionTerminateResponse{}, out))
            endSession(out, Party::hse, t->cause, false);
        return;
    }
    if (std::holds_alternative<emsdp::SessionTerminateResponse>(r->body)) {
        if (s.tx != TxKind::terminate) {
            drop(out, DropReason::unexpected_command);
            return;
        }
        endSession(out, Party::ue, s.terminateCause, true);
        return;
    }
    if (const auto* mk = std::get_if<emsdp::HseManageKeysRequest>(&r->body)) {
        onRefreshRequest(*mk, out);
        return;
    }
    if (const auto* mk = std::get_if<emsdp::HseManageKeysResponse>(&r->body)) {
        onRefreshResponse(*mk, out);
        return;
    }
    if (const auto* rj = std::get_if<emsdp::MessageReject>(&r->body)) {
        if (s.tx == TxKind::manageKeys) {
            onRefreshRejected(*rj, out);
            return;
        }
        emit(out, PeerRejected{rj->cause});
        return;
    }
    drop(out, DropReason::unexpected_command);
}

// ---- key refresh (4.4, 4.6, A7, A8, A10, A11, A15) -------------------------------------------

void UeEngine::onRefreshResponse(const emsdp::HseManageKeysResponse& r, Output& out) {
    Session& s = *session_;
    if (s.refresh && !s.refresh->hseTriggered && s.refresh->rand == r.rand) {
        drop(out, DropReason::unexpected_command);  // the USIM is answering this RAND already
        return;
    }
    if (lastUeRefresh_ && lastUeRefresh_->rand == r.rand) {
        // A15: a RAND the UE already ran is done; no second USIM run. A Reject the UE sent for
        // it is sent again (re-protected under the next COUNT) when the UE is asking again.
        const UeRefreshDone& done = *lastUeRefresh_;
        if (s.tx != TxKind::manageKeys) {
            drop(out, DropReason::unexpected_command);
            return;
        }
        s.tx = TxKind::none;
        if (done.reject) {
            const emsdp::MessageReject rj = *done.reject;
            const RefreshFailure why = done.failure;
            sendCp(rj, out);
            emit(out, RefreshFailed{why, emsdp::RefreshOrigin::ue, rj.cause});
        } else {
            emit(out, RefreshCompleted{done.newKid, emsdp::RefreshOrigin::ue});
        }
        return;
    }
    if (s.tx != TxKind::manageKeys) {
        drop(out, DropReason::unexpected_command);  // no request of the UE waits for it
        return;
    }
    s.tx = TxKind::none;  // answered: the resend schedule stops
    startRefreshAka(RefreshRun::of(r, false, emsdp::RefreshOrigin::ue), out);
}

void UeEngine::onRefreshRequest(const emsdp::HseManageKeysRequest& r, Output& out) {
    Session& s = *session_;
    // A8: a UE whose key sets are not storable could never resume with the new set, so it spends
    // no SQN on one; an HSE following A8 never sends this. A terminating session takes no new
    // refresh (4.5: an unfinished refresh is abandoned).
    if (!settings_->capabilities.keySetsStorable() || s.tx == TxKind::terminate) {
        drop(out, DropReason::unexpected_command);
        return;
    }
    if (s.answeredRand && *s.answeredRand == r.rand && s.answer) {
        // 4.6: a RAND already answered gets the same answer, under the next COUNT, without AKA.
        const emsdp::UeManageKeysResponse again = *s.answer;
        sendCp(again, out);
        return;
    }
    if (s.refresh && s.refresh->hseTriggered && s.refresh->rand == r.rand) {
        drop(out, DropReason::unexpected_command);  // the USIM is answering this RAND already
        return;
    }
    startRefreshAka(RefreshRun::of(r, true, r.refreshOrigin), out);
}

void UeEngine::onRefreshRejected(const emsdp::MessageReject& r, Output& out) {
    session_->tx = TxKind::none;
    emit(out, RefreshFailed{RefreshFailure::rejected, emsdp::RefreshOrigin::ue, r.cause});
}

void UeEngine::startRefreshAka(const RefreshRun& run, Output& out) {
    Session& s = *session_;
    if (s.refresh) {
        // At most one refresh at a time: the newer one replaces it (its USIM answer is ignored).
        const RefreshRun old = *s.refresh;
        s.refresh.reset();
        emit(out, RefreshFailed{RefreshFailure::abandoned, old.origin, {}});
    }
    // 4.4: the new set has the current set's key agreement, and a KID of its own.
    if (!state_.current || run.keyAgreement != state_.current->keyAgreement ||
        run.newKid == state_.current->kid) {
        failRefresh(run, RefreshFailure::mismatch, out, Cause::invalid_format);
        return;
    }
    // A7: an EPS or 5G AUTN without the AMF separation bit is a MAC failure; the USIM is not run.
    if (run.keyAgreement != crypto::KeyAgreement::umts && !amfSeparationBit(run.autn)) {
        failRefresh(run, RefreshFailure::akaMacFailure, out, Cause::aka_mac_failure);
        return;
    }
    RefreshRun r = run;
    r.ticket = takeTicket();
    s.refresh = r;
    out.akaRequests.push_back(AkaRequest{r.ticket, r.rand, r.autn});
}

void UeEngine::onRefreshAka(Result<AkaOutcome> outcome, const UeTime& now, Output& out) {
    const RefreshRun run = *session_->refresh;
    session_->refresh.reset();
    if (!outcome) {
        emit(out, UsimFailed{outcome.error()});
        // An HSE request stays unanswered (its resend runs the USIM again); the UE's own refresh
        // has had its answer and ends.
        if (!run.hseTriggered)
            emit(out, RefreshFailed{RefreshFailure::usim, run.origin, {}});
        return;
    }
    if (std::holds_alternative<AkaMacFailure>(*outcome)) {
        failRefresh(run, RefreshFailure::akaMacFailure, out, Cause::aka_mac_failure);
        return;
    }
    if (const auto* sync = std::get_if<AkaSyncFailure>(&*outcome)) {
        failRefresh(run, RefreshFailure::syncFailure, out, Cause::synch_failure, sync->auts);
        return;
    }
    completeRefresh(run, std::get<AkaSuccess>(*outcome), now, out);
}

void UeEngine::failRefresh(const RefreshRun& run, RefreshFailure reason, Output& out,
                           std::optional<Cause> cause, std::optional<crypto::Auts> auts) {
    const Cause c = cause.value_or(Cause::invalid_format);
    if (run.hseTriggered && reason != RefreshFailure::mismatch) {
        // The HSE's request is answered by a Manage Keys Response with the cause (4.4).
        emsdp::UeManageKeysResponse answer;
        answer.cause = c;
        answer.auts = auts;
        answerHse(run, answer, out);
    } else {
        // The HSE's Response (UE-triggered), or a request the UE cannot act on: a MAC'd Reject.
        const emsdp::MessageReject rj{c, auts, {}};
        if (!run.hseTriggered)
            rememberUeRefresh(run, rj, reason);
        sendCp(rj, out);
    }
    emit(out, RefreshFailed{reason, run.origin, c});
}

void UeEngine::completeRefresh(const RefreshRun& run, const AkaSuccess& aka, const UeTime& now,
                               Output& out) {
    // 4.4: same key agreement, serving network and HSE Id as the current set.
    const KeySet& current = *state_.current;
    Result<Key256> kint = kintFromAka(run.keyAgreement, aka, run.autn,
                                      current.plmn.value_or(crypto::PlmnId{}), current.hseId);
    Result<crypto::KeyConfirmation> confirmation = crypto::KeyConfirmation{};
    if (kint && run.hseTriggered)
        confirmation = crypto::deriveKeyConfirmation(*kint, session_->info.sessionId, run.rand);
    if (!kint || !confirmation) {
        // Nothing is answered: an HSE request's resend runs the USIM again.
        drop(out, DropReason::crypto_failure);
        emit(out, RefreshFailed{RefreshFailure::internal, run.origin, {}});
        return;
    }
    KeySet set;
    set.kid = run.newKid;
    set.keyAgreement = run.keyAgreement;
    set.plmn = current.plmn;
    set.hseId = current.hseId;
    set.kint = *kint;
    set.created = now.wallSeconds;    // A11: counted from its own AKA
    set.lifetime = current.lifetime;  // A11: the lifetime announced for the current set
    set.lastNonce.reset();            // A10: a pending set starts with none
    state_.pending = std::move(set);  // at most one pending set: a new one replaces it
    persist(out);                     // durable before the key confirmation leaves
    emit(out, KeySetStored{run.newKid, KeySetRole::pending});
    if (run.hseTriggered) {
        emsdp::UeManageKeysResponse answer;
        answer.keyConfirmation = *confirmation;
        answerHse(run, answer, out);
    } else {
        rememberUeRefresh(run, std::nullopt, RefreshFailure::akaMacFailure);
    }
    emit(out, RefreshCompleted{run.newKid, run.origin});
}

void UeEngine::answerHse(const RefreshRun& run, const emsdp::UeManageKeysResponse& answer,
                         Output& out) {
    Session& s = *session_;
    s.answeredRand = run.rand;  // 4.6: a repeat of this request gets this answer again
    s.answer = answer;
    sendCp(answer, out);
}

void UeEngine::rememberUeRefresh(const RefreshRun& run,
                                 const std::optional<emsdp::MessageReject>& reject,
                                 RefreshFailure failure) {
    auto done = std::make_unique<UeRefreshDone>();
    done->rand = run.rand;
    done->newKid = run.newKid;
    done->reject = reject;
    done->failure = failure;
    lastUeRefresh_ = std::move(done);
}

std::uint32_t UeEngine::takeTicket() {
    const std::uint32_t ticket = nextTicket_++;
    if (nextTicket_ == 0)
        nextTicket_ = 1;  // 0 means "no ticket"
    return ticket;
}

void UeEngine::abandonRefresh(Output& out) {
    // 4.5: a refresh not finished when the session ends (or is being terminated) is abandoned;
    // a USIM answer that comes later is stale.
    Session& s = *session_;
    if (s.refresh) {
        const emsdp::RefreshOrigin origin = s.refresh->origin;
        s.refresh.reset();
        emit(out, RefreshFailed{RefreshFailure::abandoned, origin, {}});
    }
    if (s.tx == TxKind::manageKeys) {
        s.tx = TxKind::none;
        emit(out, RefreshFailed{RefreshFailure::abandoned, emsdp::RefreshOrigin::ue, {}});
    }
}

void UeEngine::onUp(ByteView datagram, Output& out) {
    std::array<std::uint8_t, emsdp::kMaxDatagram> plain{};
    auto r = session_->channel.openUp(datagram, plain);
    if (!r) {
        drop(out, r.error().reason);
        return;
    }
    emit(out, DownlinkReceived{toBytes(r->payload), r->count});
}

// ---- sending inside the session ---------------------------------------------------------------

bool UeEngine::sendCp(const Body& body, Output& out) {
    std::array<std::uint8_t, emsdp::kMaxDatagram> buf{};
    auto n = session_->channel.sealCp(body, buf);
    if (!n) {
        if (n.error().code == static_cast<int>(emsdp::EmsdpErrc::counter_exhausted))
            exhaust(out);
        return false;
    }
    out.datagrams.emplace_back(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(*n));
    if (session_->channel.exhaustionDue()) {
        exhaust(out);
        return false;
    }
    return true;
}

void UeEngine::exhaust(Output& out) {
    // A1: Terminate Request 0x13 under the next CP COUNT, not resent; the session ends at once.
    std::array<std::uint8_t, emsdp::kMaxDatagram> buf{};
    if (auto n = session_->channel.sealExhaustionTerminate(buf))
        out.datagrams.emplace_back(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(*n));
    endSession(out, Party::ue, Cause::counter_exhausted, false);
}

void UeEngine::endSession(Output& out, Party initiator, std::optional<Cause> cause, bool answered) {
    abandonRefresh(out);
    const std::uint32_t sid = session_->info.sessionId;
    session_.reset();  // key sets survive (4.5)
    emit(out, SessionTerminated{sid, initiator, cause, answered});
}

Result<void> UeEngine::sendUplink(ByteView payload, const UeTime& /*now*/, Output& out) {
    if (!session_ || session_->tx == TxKind::terminate)
        return makeError(UeErrc::not_established, "no session to send on");
    const SessionInfo& info = session_->info;
    if (info.service == Service::kaOnly)
        return makeError(UeErrc::no_user_plane, "a KA-only session carries no user plane");
    const std::size_t room =
        emsdp::kMaxDatagram - emsdp::headerSize(info.upScheme) - emsdp::kMacSize;
    if (payload.size() > room)
        return makeError(UeErrc::payload_too_large, "UP payload of " +
                                                        std::to_string(payload.size()) +
                                                        " octets; at most " + std::to_string(room));
    std::array<std::uint8_t, emsdp::kMaxDatagram> buf{};
    auto n = session_->channel.sealUp(payload, buf);
    if (!n) {
        if (n.error().code == static_cast<int>(emsdp::EmsdpErrc::counter_exhausted)) {
            exhaust(out);
            return makeError(UeErrc::counter_exhausted, "UP COUNT exhausted: session terminated");
        }
        return makeError(UeErrc::crypto, n.error().message);
    }
    out.datagrams.emplace_back(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(*n));
    if (session_->channel.exhaustionDue())
        exhaust(out);
    return {};
}

Result<void> UeEngine::terminate(const UeTime& now, Output& out, std::optional<Cause> cause) {
    if (!session_)
        return makeError(UeErrc::not_established, "no session to terminate");
    if (session_->tx == TxKind::terminate)
        return makeError(UeErrc::busy, "already terminating");
    abandonRefresh(out);               // 4.5: an unfinished refresh is abandoned
    session_->tx = TxKind::terminate;  // replaces an outstanding Manage Keys Request
    session_->terminateCause = cause;
    session_->txFirst = now.mono;
    session_->txResends = 0;
    sendCp(emsdp::SessionTerminateRequest{cause}, out);
    return {};
}

Result<void> UeEngine::requestKeyRefresh(const UeTime& now, Output& out) {
    if (!session_ || session_->tx == TxKind::terminate)
        return makeError(UeErrc::not_established, "no session");
    if (!settings_->capabilities.keySetsStorable())
        return makeError(UeErrc::not_allowed, "key sets are not storable: no refresh (A8)");
    if (session_->tx == TxKind::manageKeys)
        return makeError(UeErrc::busy, "a Manage Keys Request is outstanding");
    if (session_->refresh)
        return makeError(UeErrc::busy, "the USIM is running for a key refresh");
    session_->tx = TxKind::manageKeys;
    session_->txFirst = now.mono;
    session_->txResends = 0;
    sendCp(emsdp::UeManageKeysRequest{}, out);
    return {};
}

void UeEngine::persist(Output& out) {
    if (store_ == nullptr || !settings_->capabilities.keySetsStorable())
        return;
    if (auto ok = store_->save(state_); !ok)
        emit(out, PersistFailed{ok.error()});
}

// ---- timers -----------------------------------------------------------------------------------

std::optional<MonoTime> UeEngine::nextDeadline() const noexcept {
    std::optional<MonoTime> due;
    auto consider = [&due](MonoTime t) {
        if (!due || t < *due)
            due = t;
    };
    const UeTimers& t = settings_->timers;
    if (startDeferred_ && backOffUntil_)
        consider(*backOffUntil_);
    if (attempt_)
        consider(scheduleDue(t, attempt_->firstSent, attempt_->resends));
    if (session_) {
        const Session& s = *session_;
        if (s.tx == TxKind::terminate) {
            if (s.txResends == 0)
                consider(s.txFirst + t.terminateResend);
            consider(s.txFirst + t.terminateTimeout);
        } else if (s.tx == TxKind::manageKeys) {
            consider(scheduleDue(t, s.txFirst, s.txResends));
        }
    }
    return due;
}

void UeEngine::onTimer(const UeTime& now, Output& out) {
    const UeTimers& t = settings_->timers;
    if (startDeferred_ && backOffUntil_ && now.mono >= *backOffUntil_) {
        backOffUntil_.reset();
        startDeferred_ = false;
        if (!session_ && !attempt_) {
            if (auto ok = startNow(now, out); !ok)
                emit(out, StartFailed{ok.error()});
        }
    }
    if (attempt_) {
        Attempt& a = *attempt_;
        if (scheduleGivenUp(t, a.firstSent, now.mono)) {
            endAttempt(AttemptEnd::noAnswer, out);  // A13: 16 s after the last resend
        } else if (resendDue(t, a.firstSent, a.resends, now.mono)) {
            out.datagrams.push_back(a.request);  // A13: the identical octets
        }
    }
    if (session_ && session_->tx == TxKind::terminate) {
        Session& s = *session_;
        if (now.mono >= s.txFirst + t.terminateTimeout) {
            endSession(out, Party::ue, s.terminateCause, false);  // 4.5: after 5 s
        } else if (s.txResends == 0 && now.mono >= s.txFirst + t.terminateResend) {
            s.txResends = 1;  // A13: once, same content under the next COUNT
            sendCp(emsdp::SessionTerminateRequest{s.terminateCause}, out);
        }
    } else if (session_ && session_->tx == TxKind::manageKeys) {
        Session& s = *session_;
        if (scheduleGivenUp(t, s.txFirst, now.mono)) {
            // A23: the session is lost; a new one, by resumption first.
            const std::uint32_t sid = s.info.sessionId;
            s.tx = TxKind::none;
            emit(out, RefreshFailed{RefreshFailure::noAnswer, emsdp::RefreshOrigin::ue, {}});
            abandonRefresh(out);
            session_.reset();
            emit(out, SessionLost{sid});
            if (backOffUntil_ && now.mono < *backOffUntil_) {
                startDeferred_ = true;
            } else if (auto ok = startNow(now, out); !ok) {
                emit(out, StartFailed{ok.error()});
            }
        } else if (resendDue(t, s.txFirst, s.txResends, now.mono)) {
            sendCp(emsdp::UeManageKeysRequest{}, out);  // A13: same content under the next COUNT
        }
    }
}

void answerAkaInline(UeEngine& engine, Usim& usim, const UeTime& now, Output& out) {
    // onAkaResult never adds AKA requests, so one pass answers all.
    std::vector<AkaRequest> pending;
    pending.swap(out.akaRequests);
    for (const AkaRequest& r : pending)
        engine.onAkaResult(r.ticket, usim.authenticate(r.rand, r.autn), now, out);
}

}  // namespace best::ue
