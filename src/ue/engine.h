// The UE role of BEST profile v1 (sections 3-5, 9 and Appendix A) as a sans-I/O engine: it owns
// no socket, thread, timer or clock. The driver (best-ue agent, a load driver with thousands of
// engines in one process, or a test) feeds it what happened and sends what it returns:
//
//   Output out;
//   engine.start(now, out);                        // Session Request: resumption first, else full
//   for (;;) {
//       send every out.datagrams[i] to the HSE; act on out.events;
//       for each out.akaRequests[i]: run AUTHENTICATE (inline, or on a worker for PC/SC) and
//           call engine.onAkaResult(ticket, outcome, now, out) when the answer is there
//           (answerAkaInline() does this for a synchronous Usim);
//       out.clear();
//       wait for a datagram or engine.nextDeadline();
//       engine.handleDatagram(bytes, fromHseAddress ? Source::hse : Source::other, now, out);
//       or engine.onTimer(now, out);
//   }
//   engine.sendUplink(payload, now, out); engine.terminate(now, out); ...
//
// All datagrams go to the HSE (in UE-to-EAS mode too: the HSE relays UP). Key sets and the last
// nonce go to the StateStore (saved before a resumption request with a new nonce is sent, and
// after every key-set change); counters stay in memory. The engine is move-only and small when
// idle (a few hundred octets); a live session adds its keyed EIA2/EEA2 contexts. One engine is
// used by one thread at a time; separate engines share nothing but the settings (read-only).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/bytes.h"
#include "common/result.h"
#include "common/secure.h"
#include "crypto/key_hierarchy.h"
#include "crypto/milenage.h"
#include "emsdp/channel.h"
#include "emsdp/ie.h"
#include "emsdp/message.h"
#include "emsdp/outcome.h"
#include "ue/key_set.h"
#include "ue/random.h"
#include "ue/state_file.h"
#include "ue/ue_error.h"
#include "ue/usim.h"

namespace best::ue {

using MonoTime = std::chrono::steady_clock::time_point;

// The driver's clocks at the moment of a call: `mono` drives the timers (any origin, never
// jumps), `wallSeconds` (Unix time) dates key sets and decides their expiry.
struct UeTime {
    MonoTime mono{};
    std::int64_t wallSeconds = 0;

    // Reads steady_clock and system_clock (for drivers; the engine never reads a clock).
    static UeTime now() noexcept;
};

// Retransmission timers (profile 4.6, A13, 4.5).
struct UeTimers {
    // Gaps between transmissions of a Session Request or a Manage Keys Request: resends at
    // 4 s, 12 s and 28 s after the first transmission.
    std::vector<std::chrono::milliseconds> resendGaps{
        std::chrono::seconds(4), std::chrono::seconds(8), std::chrono::seconds(16)};
    // Give up this long after the last resend (A13).
    std::chrono::milliseconds giveUpAfterLast{std::chrono::seconds(16)};
    // Session Terminate Request: resent once at 4 s; the session is deleted at 5 s (4.5, A13).
    std::chrono::milliseconds terminateResend{std::chrono::seconds(4)};
    std::chrono::milliseconds terminateTimeout{std::chrono::seconds(5)};
};

// What every UE of a deployment shares (a load driver hands one instance to all its engines).
struct UeSettings {
    std::string easId;  // Enterprise setup, 1..64 octets UTF-8
    // The HSE Id the UE expects; a Session Start naming another is dropped (section 3.3). Empty:
    // any HSE Id is accepted for a full establishment (a resumption always needs the set's).
    std::string hseId;
    // UE configuration TLV. This implementation supports integrity EIA2 (bit 2, required) and
    // ciphering EEA2 (bit 2, optional); bit 1 of `flags` (key sets storable) enables resumption
    // and persistence of key sets (A8).
    emsdp::UeConfiguration capabilities{17, 0x07, 0x03, 0x04, 0x05};
    // Serving network TLV: needed when EPS or 5G is offered or confidentiality requested.
    std::optional<crypto::PlmnId> servingNetwork;
    UeTimers timers;

    Result<void> validate() const;
};

enum class Source : std::uint8_t {
    hse,    // the datagram came from the HSE's address (and port)
    other,  // anything else
};

enum class Phase : std::uint8_t {
    idle,          // no attempt, no session
    backingOff,    // start() was called during a back-off (0x0F); it starts when that ends
    establishing,  // Session Request sent, waiting for a Session Start that verifies
    established,   // a live session
    terminating,   // the UE sent Session Terminate Request and waits for the Response (A18)
};

// The parameters of a live session, from its Session Start.
struct SessionInfo {
    std::uint32_t sessionId = 0;
    std::uint8_t kid = 0;
    crypto::KeyAgreement keyAgreement = crypto::KeyAgreement::umts;
    bool resumed = false;  // 4.2 (true) or 4.1 (false)
    emsdp::Service service = emsdp::Service::upIntegrity;
    emsdp::UpTermination termination = emsdp::UpTermination::hse;
    std::uint32_t keySetLifetime = 0;
    std::uint8_t integrityAlg = 0;
    std::uint8_t cipheringAlg = 0;
    emsdp::CounterScheme cpScheme = emsdp::CounterScheme::n1;
    emsdp::CounterScheme upScheme = emsdp::CounterScheme::n1;
    bool confirmationRequired = false;
};

// ---- events -----------------------------------------------------------------------------------

struct SessionEstablished {
    SessionInfo info;
};
// The EAS key identifier (first 16 octets of KDF(KInt, 0xB3, EAS Id)) of the session's key set,
// for the application; in KA-only also KInt_EAS_PSK, the key the application protects its
// traffic with (a secret: never log it).
struct EasKeyAvailable {
    std::uint8_t kid = 0;
    crypto::EasKeyId easKeyId{};
    std::optional<Key256> easPsk;
};
// A key set became current (full establishment; a pending set's first session) or pending.
struct KeySetStored {
    std::uint8_t kid = 0;
    KeySetRole role = KeySetRole::current;
};
struct DownlinkReceived {
    Bytes payload;
    std::uint32_t count = 0;
};
// A23: a CP request stayed unanswered through the resend schedule; the session is gone and a
// new establishment (resumption first) has been started (or deferred by a back-off).
struct SessionLost {
    std::uint32_t sessionId = 0;
};
enum class Party : std::uint8_t { ue, hse };
struct SessionTerminated {
    std::uint32_t sessionId = 0;
    Party initiator = Party::ue;
    std::optional<emsdp::Cause> cause;  // counter_exhausted for A1
    bool answered = false;  // UE-initiated: the Response came (false: the 5 s ran out, or A1)
};
enum class AttemptEnd : std::uint8_t {
    rejected,       // unprotected Message Reject (cause, back-off)
    noAnswer,       // no Session Start verified through the resend schedule (A13)
    akaMacFailure,  // USIM MAC failure or missing AMF separation bit: Reject 0x0A sent
    cancelled,      // cancel()
};
struct AttemptEnded {
    AttemptEnd reason = AttemptEnd::noAnswer;
    bool resumption = false;
    std::optional<emsdp::Cause> cause;
    std::optional<std::uint16_t> backOff;  // seconds (0x0F)
};
// A resumption was refused with 0x0D; a full establishment (new Session Request) follows.
struct FallbackToFull {
    std::uint8_t refusedKid = 0;
};
// The USIM reported a sync failure: Message Reject 0x0B with AUTS sent; still waiting.
struct SyncFailureReported {
    std::uint32_t sessionId = 0;
};
// A MAC'd Message Reject inside the session (not answering a Manage Keys Request).
struct PeerRejected {
    emsdp::Cause cause = emsdp::Cause::invalid_format;
};
// A datagram (or a part of its processing) was dropped, by named reason (metrics).
struct Dropped {
    emsdp::DropReason reason = emsdp::DropReason::truncated_header;
};
struct UsimFailed {
    Error error;
};
struct PersistFailed {
    Error error;
};
// An establishment the engine started by itself (0x0D fallback, after a back-off, after a lost
// session) could not be started (random source or crypto failure).
struct StartFailed {
    Error error;
};
// ---- key refresh (4.4) ----
// A refresh finished at the UE: the new key set is stored as pending (KeySetStored{pending}
// comes first) and the next establishment resumes with it (4.2). UE-triggered (origin ue, from
// the HSE's Manage Keys Response) or HSE-triggered (the origin of the HSE's Manage Keys Request:
// hse, eas, or ue after the UE's own refresh failed with a sync failure); for an HSE-triggered
// refresh the Manage Keys Response with the key confirmation has been sent.
struct RefreshCompleted {
    std::uint8_t newKid = 0;
    emsdp::RefreshOrigin origin = emsdp::RefreshOrigin::ue;
};
enum class RefreshFailure : std::uint8_t {
    akaMacFailure,  // USIM MAC failure, or an EPS/5G AUTN without the AMF separation bit (A7, the
                    // USIM is not run): MAC'd Reject 0x0A (UE-triggered) / Response 0x0A sent
    syncFailure,    // USIM sync failure: MAC'd Reject 0x0B (UE-triggered) / Response 0x0B, with
                    // AUTS, sent; the HSE resynchronises (and, UE-triggered, starts a refresh
                    // with Refresh origin ue)
    rejected,       // the HSE answered the UE's Manage Keys Request with a MAC'd Reject (cause)
    noAnswer,       // the UE's Manage Keys Request stayed unanswered (A13); SessionLost follows
    mismatch,       // Key agreement used is not the current set's, or New key ID is the current
                    // set's KID: MAC'd Reject 0x01 sent, the USIM is not run
    abandoned,      // the session ended or is terminating, or a newer refresh replaced this one
    usim,           // the USIM failed (UsimFailed) on the HSE's Manage Keys Response
    internal,       // a key derivation failed
};
struct RefreshFailed {
    RefreshFailure reason = RefreshFailure::abandoned;
    emsdp::RefreshOrigin origin = emsdp::RefreshOrigin::ue;
    std::optional<emsdp::Cause> cause;  // rejected: the HSE's; a/sync failure: the one sent
};

using Event =
    std::variant<SessionEstablished, EasKeyAvailable, KeySetStored, DownlinkReceived, SessionLost,
                 SessionTerminated, AttemptEnded, FallbackToFull, SyncFailureReported, PeerRejected,
                 Dropped, UsimFailed, PersistFailed, StartFailed, RefreshCompleted, RefreshFailed>;

// Run AUTHENTICATE and answer with UeEngine::onAkaResult(ticket, ...).
struct AkaRequest {
    std::uint32_t ticket = 0;
    crypto::Rand rand{};
    crypto::Autn autn{};
};

// What a call produced; calls append, the driver clears.
struct Output {
    std::vector<Bytes> datagrams;  // to the HSE, in this order
    std::vector<Event> events;
    std::vector<AkaRequest> akaRequests;

    void clear() noexcept {
        datagrams.clear();
        events.clear();
        akaRequests.clear();
    }
};

// What an engine uses but does not own; both must outlive it.
struct UeDeps {
    StateStore* store = nullptr;     // null: nothing persisted (load drivers)
    RandomSource* random = nullptr;  // null: systemRandom()
};

class UeEngine {
public:
    // `state` is what the store loaded (FileStateStore::load()); it must belong to `imsiDigits`
    // or be empty (state_mismatch otherwise). Settings are validated (invalid_settings).
    static Result<UeEngine> create(std::shared_ptr<const UeSettings> settings,
                                   std::string_view imsiDigits, UeState state, UeDeps deps = {});

    UeEngine(UeEngine&&) noexcept;
    UeEngine& operator=(UeEngine&&) noexcept;
    UeEngine(const UeEngine&) = delete;
    UeEngine& operator=(const UeEngine&) = delete;
    ~UeEngine();

    // Starts an establishment: resumption with the pending set, else the current one (never an
    // expired one, only when key sets are storable), else full. During a back-off it is deferred
    // to the back-off's end. busy while an attempt or a session exists.
    Result<void> start(const UeTime& now, Output& out);
    // Ends an establishment (or a deferred start) without sending anything.
    void cancel(Output& out);

    // A received UDP payload. Every outcome is an event (Dropped for silent drops).
    void handleDatagram(ByteView datagram, Source source, const UeTime& now, Output& out);
    // The answer to an AkaRequest. False (and nothing happens) for a stale ticket: the attempt
    // or refresh it belonged to is over. An error is a USIM failure (UsimFailed; a Session Start
    // is treated as dropped and the attempt goes on; an HSE Manage Keys Request is left
    // unanswered, so its resend runs AUTHENTICATE again; a UE-triggered refresh fails).
    bool onAkaResult(std::uint32_t ticket, Result<AkaOutcome> outcome, const UeTime& now,
                     Output& out);
    // Runs whatever is due at `now` (resends, give-ups, the termination timeout, a deferred start).
    void onTimer(const UeTime& now, Output& out);
    // When onTimer() next has something to do.
    std::optional<MonoTime> nextDeadline() const noexcept;

    // UP payload, integrity protected (and ciphered in UP confidentiality).
    Result<void> sendUplink(ByteView payload, const UeTime& now, Output& out);
    // Session Terminate Request (4.5); resent once at 4 s; the session ends on the Response or
    // after 5 s, and data is accepted until then (A18).
    Result<void> terminate(const UeTime& now, Output& out,
                           std::optional<emsdp::Cause> cause = std::nullopt);
    // UE-triggered key refresh (4.4): Manage Keys Request, resent per A13 under the next COUNT;
    // unanswered it makes the session lost (A23, RefreshFailed{noAnswer} then SessionLost). The
    // HSE's Response brings an AkaRequest; the outcome is RefreshCompleted or RefreshFailed.
    // Errors: not_established (no session, or terminating), not_allowed ("key sets storable"
    // clear, A8), busy (a Manage Keys Request is outstanding or the USIM runs for a refresh).
    // HSE-triggered refreshes need no call: the engine answers them itself.
    Result<void> requestKeyRefresh(const UeTime& now, Output& out);

    Phase phase() const noexcept;
    const UeState& state() const noexcept { return state_; }
    std::optional<SessionInfo> session() const noexcept;
    std::optional<MonoTime> backOffUntil() const noexcept { return backOffUntil_; }
    // A refresh is under way in the session: the UE's Manage Keys Request waits for its answer, or
    // the USIM is running for a refresh.
    bool refreshOutstanding() const noexcept;
    // The KID of the pending key set, if the UE holds one (state().pending).
    std::optional<std::uint8_t> pendingKid() const noexcept;

    // Counter state of the live session, and restoring it (tests; a future HA path).
    std::optional<emsdp::CounterSnapshot> counters() const noexcept;
    Result<void> restoreCounters(const emsdp::CounterSnapshot& snapshot);

private:
    struct Attempt;
    struct Session;

    UeEngine(std::shared_ptr<const UeSettings> settings, const emsdp::Imsi& imsi, UeState state,
             UeDeps deps);

    Result<void> startNow(const UeTime& now, Output& out);
    Result<void> startFull(const UeTime& now, Output& out);
    Result<bool> startResumption(KeySetRole role, const UeTime& now, Output& out);
    // Records the attempt's request and checksum, sends the request and makes it the attempt.
    Result<void> sendRequest(std::unique_ptr<Attempt> a, ByteView request, const UeTime& now,
                             Output& out);
    Result<std::uint64_t> randomNonce();
    emsdp::SessionRequest requestBody(std::uint64_t nonce) const;
    void endAttempt(AttemptEnd reason, Output& out, std::optional<emsdp::Cause> cause = {},
                    std::optional<std::uint16_t> backOff = {});

    void onUnprotectedReject(ByteView datagram, Source source, const UeTime& now, Output& out);
    void onSessionStart(ByteView datagram, const UeTime& now, Output& out);
    void completeFull(ByteView datagram, const AkaSuccess& aka, const UeTime& now, Output& out);
    void completeResumption(ByteView datagram, const emsdp::Header& h, const emsdp::SessionStart& s,
                            const UeTime& now, Output& out);
    // The channel of a Session Start once its MAC and request checksum verify (else dropped).
    std::optional<emsdp::SecureChannel> acceptStart(ByteView datagram, const emsdp::Header& h,
                                                    const emsdp::SessionStart& s,
                                                    const Key256& kint, Output& out);
    void establish(emsdp::SecureChannel channel, const SessionInfo& info, const Key256& kint,
                   ByteView sessionStart, Output& out);
    void onSessionCp(ByteView datagram, const UeTime& now, Output& out);
    void onUp(ByteView datagram, Output& out);
    struct RefreshRun;
    void onRefreshResponse(const emsdp::HseManageKeysResponse& r, Output& out);
    void onRefreshRequest(const emsdp::HseManageKeysRequest& r, Output& out);
    void onRefreshRejected(const emsdp::MessageReject& r, Output& out);
    void startRefreshAka(const RefreshRun& run, Output& out);
    void onRefreshAka(Result<AkaOutcome> outcome, const UeTime& now, Output& out);
    void completeRefresh(const RefreshRun& run, const AkaSuccess& aka, const UeTime& now,
                         Output& out);
    void failRefresh(const RefreshRun& run, RefreshFailure reason, Output& out,
                     std::optional<emsdp::Cause> cause = {}, std::optional<crypto::Auts> auts = {});
    void abandonRefresh(Output& out);
    void answerHse(const RefreshRun& run, const emsdp::UeManageKeysResponse& answer, Output& out);
    void rememberUeRefresh(const RefreshRun& run, const std::optional<emsdp::MessageReject>& reject,
                           RefreshFailure failure);
    std::uint32_t takeTicket();

    bool sendCp(const emsdp::Body& body, Output& out);
    void exhaust(Output& out);
    void endSession(Output& out, Party initiator, std::optional<emsdp::Cause> cause, bool answered);
    void persist(Output& out);

    std::shared_ptr<const UeSettings> settings_;
    emsdp::Imsi imsi_;
    StateStore* store_ = nullptr;
    RandomSource* random_ = nullptr;
    UeState state_;
    std::unique_ptr<Attempt> attempt_;
    std::unique_ptr<Session> session_;
    // The last HSE Manage Keys Response (UE-triggered) whose RAND the USIM ran, and the Reject
    // sent for it if it failed (A15: a repeated one is treated as done). Memory only.
    struct UeRefreshDone;
    std::unique_ptr<UeRefreshDone> lastUeRefresh_;
    std::optional<MonoTime> backOffUntil_;
    bool startDeferred_ = false;
    std::uint32_t nextTicket_ = 1;
};

// Answers every pending AkaRequest of `out` with a synchronous USIM and removes them.
void answerAkaInline(UeEngine& engine, Usim& usim, const UeTime& now, Output& out);

}  // namespace best::ue
