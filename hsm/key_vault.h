// The KeyVault: HSM key custody over PKCS#11 (architecture.md, "Where keys live").
//
// - Never in host memory: subscriber K (after provisioning) and the three token keys.
// - Token keys, one role each, sensitive and never extractable: the wrap key (AES-256,
//   wrap/unwrap only), the data key (AES-256, encrypt/decrypt only, for OPc), the binding key
//   (HMAC-SHA-256, 32 octets, sign/verify only: ties each blob to its row).
// - K, KInt, KInt_E2E and KInt_EAS_PSK are stored only as blobs (blob.h) and used as unwrapped,
//   non-extractable session objects held in an LRU cache.
// - Derivations keyed by a value already on the host (R -> KInt) run in software; derivations
//   keyed by an HSM-resident key (KInt -> KSess, KSess0, KInt_E2E, KInt_EAS_PSK, EAS key id, key
//   confirmation; KInt_E2E -> KSess_E2E) run in the token by C_Sign CKM_SHA256_HMAC.
// - One owner session logs in once and lives as long as the vault; each worker has its own
//   non-login session. docs/hsm.md lists what transits host memory per operation.
//
// Threads: VaultOps is single-threaded (one session). The vault's pool runs jobs on its workers;
// submit()/post() never block the caller. KeyVault itself is thread-safe.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <exception>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <p11-kit/pkcs11.h>

#include "common/bytes.h"
#include "common/result.h"
#include "common/secure.h"
#include "crypto/key_hierarchy.h"
#include "crypto/milenage.h"
#include "crypto/ossl.h"
#include "hsm/blob.h"
#include "hsm/capabilities.h"
#include "hsm/hsm_error.h"
#include "hsm/key_cache.h"
#include "hsm/module.h"
#include "hsm/session.h"
#include "hsm/slot.h"
#include "hsm/token_uri.h"
#include "hsm/worker_pool.h"

namespace best::hsm {

inline constexpr std::string_view kWrapKeyLabel = "best-wrap-key";
inline constexpr std::string_view kDataKeyLabel = "best-data-key";
inline constexpr std::string_view kBindingKeyLabel = "best-binding-key";
// A random AES-128 session object with no other use: the health probe wraps it.
inline constexpr std::string_view kProbeKeyLabel = "best-health-probe";

struct HsmConfig {
    std::string module;   // PKCS#11 library; may come from module-path= in a pkcs11: URI
    std::string token;    // token label, or an RFC 7512 pkcs11: URI
    std::string pinFile;  // user PIN file; may come from pin-source= in the URI
    unsigned workers = 2;
    std::size_t queueCapacity = 4096;
    std::size_t cacheCapacity = 10000;
    // A vendor Milenage mechanism to look for (reported by the probe; the generic path is used).
    std::optional<CK_MECHANISM_TYPE> vendorMilenageMechanism;
};

// A stored blob and the row it must belong to.
struct KeyRef {
    ByteView blob;
    BlobBinding binding;
};

struct SubscriberRef {
    KeyRef k;    // purpose subscriberK
    KeyRef opc;  // purpose opc
};

enum class EasKeyKind : std::uint8_t {
    none = 0,
    e2e = 1,  // KInt_E2E (UE-to-EAS mode), FC 0xB1
    psk = 2,  // KInt_EAS_PSK (KA-only), FC 0xB2
};

struct SessionParams {
    std::uint32_t sessionId = 0;
    std::uint64_t ueNonce = 0;
};

struct ConfirmationParams {
    std::uint32_t sessionId = 0;
    crypto::Rand rand{};
};

// What createKeySet() makes from a root key R.
struct KeySetSpec {
    std::string hseId;
    BlobBinding kint;                      // the new KInt blob's row (purpose kint)
    std::optional<SessionParams> session;  // KSess (and KSess_E2E with an E2E key)
    std::string easId;                     // for the EAS key identifier and EAS key
    bool easKeyId = false;
    EasKeyKind easKey = EasKeyKind::none;
    BlobBinding easKeyBinding;                       // purpose kintE2e or kintEasPsk
    std::optional<ConfirmationParams> confirmation;  // key confirmation (refresh, 4.4)
};

struct KeySet {
    Bytes kintBlob;
    std::optional<Key256> ksess;
    std::optional<Key256> ksessE2e;
    std::optional<crypto::EasKeyId> easKeyId;
    Bytes easKeyBlob;
    std::optional<Key256> easKey;  // KInt_E2E / KInt_EAS_PSK, for the push to the EAS (8.3)
    std::optional<crypto::KeyConfirmation> keyConfirmation;
};

struct EasKey {
    Bytes blob;
    Key256 value;  // for the push to the EAS
};

class KeyVault;

// The vault's operations on one session. Obtained from KeyVault::openOps() for the calling
// thread, or passed to jobs run by the pool. Must not outlive its KeyVault.
class VaultOps {
public:
    VaultOps(VaultOps&&) noexcept = default;
    VaultOps& operator=(VaultOps&&) noexcept = default;
    VaultOps(const VaultOps&) = delete;
    VaultOps& operator=(const VaultOps&) = delete;
    ~VaultOps() = default;

    // --- Provisioning (best-hsectl) ---
    // K from file-provided bytes: a transient extractable session object, wrapped, destroyed.
    Result<Bytes> importK(const SubscriberK& k, const BlobBinding& binding);
    // K wrapped by the operator under a transport key already on the token (found by label):
    // C_UnwrapKey into a transient object, wrapped under the wrap key, destroyed. K never
    // reaches host memory.
    Result<Bytes> importKWrapped(ByteView wrappedK, std::string_view transportKeyLabel,
                                 WrapMechanism mechanism, const BlobBinding& binding);
    // OPc encrypted under the data key (AES-256-CBC, random IV from the token).
    Result<Bytes> sealOpc(const Opc& opc, const BlobBinding& binding);
    // OPc = OP xor E_K(OP) with K inside the token, then sealed as above.
    Result<Bytes> sealOpcFromOp(const Op& op, const KeyRef& k, const BlobBinding& binding);

    // --- AKA ---
    Result<crypto::AuthVector> generateVector(const SubscriberRef& sub, const crypto::Rand& rand,
                                              const crypto::Sqn& sqn, const crypto::Amf& amf);
    // Resync: SQN_MS from AUTS; a bad MAC-S is CryptoErrc::mac_s_failure.
    Result<crypto::Sqn> recoverSqnMs(const SubscriberRef& sub, const crypto::Rand& rand,
                                     const crypto::Auts& auts);

    // Runs `f(E_K, OPc)` with K inside the token (E_K by C_Encrypt under the unwrapped K) and
    // OPc decrypted on this worker's locked stack: every Milenage function of the crypto core
    // (f1, f1*, f2345, f5*) runs on the HSM path this way (conformance tests, self-test).
    Result<void> withMilenage(
        const SubscriberRef& sub,
        const std::function<Result<void>(crypto::BlockCipher& ek, const Opc& opc)>& f);

    // --- Key hierarchy ---
    Result<KeySet> createKeySet(const Key256& root, const KeySetSpec& spec);
    // KSess = KDF(KInt, 0xB4, Session ID, UE nonce); KSess0 with sessionId 0; with a KInt_E2E
    // blob, KSess_E2E.
    Result<Key256> deriveKSess(const KeyRef& kintOrE2e, std::uint32_t sessionId,
                               std::uint64_t ueNonce);
    Result<crypto::EasKeyId> deriveEasKeyId(const KeyRef& kint, std::string_view easId);
    // A new KInt_E2E / KInt_EAS_PSK from a stored KInt: blob + value (for the push).
    Result<EasKey> createEasKey(const KeyRef& kint, EasKeyKind kind, std::string_view easId,
                                const BlobBinding& binding);
    // The same value again (an EAS pull, 8.2), without a new blob.
    Result<Key256> deriveEasKey(const KeyRef& kint, EasKeyKind kind, std::string_view easId);
    Result<crypto::KeyConfirmation> deriveKeyConfirmation(const KeyRef& kint,
                                                          std::uint32_t sessionId,
                                                          const crypto::Rand& rand);

    // Structure and binding of a stored blob (store repair / inspection); nothing is unwrapped.
    Result<void> verifyBlob(const KeyRef& ref);

    // The module and this session, for diagnostics and tests.
    const Module& module() const noexcept;
    CK_SESSION_HANDLE sessionHandle() const noexcept { return session_.get(); }

private:
    friend class KeyVault;
    struct Sealed {
        Bytes blob;
        std::shared_ptr<const CachedKey> key;  // set when kept
    };

    VaultOps(KeyVault& vault, Session session);

    template <typename F>
    auto recovering(F&& f) -> decltype(f());

    Result<CacheKey> cacheKeyOf(ByteView bindInput, ByteView tag);
    Result<void> signBinding(ByteView input, std::uint8_t tag[kBlobTagSize]);
    Result<void> verifyBinding(const BlobBinding& b, ByteView input, ByteView tag);
    Result<Bytes> wrapObject(CK_OBJECT_HANDLE object);
    Result<Bytes> finishBlob(const BlobHeader& header, ByteView payload, const BlobBinding& b,
                             CacheKey* cacheKey);
    Result<std::shared_ptr<const CachedKey>> keyFor(const KeyRef& ref, BlobPurpose expected);
    // Structure and binding checked: the view is safe to use.
    Result<BlobView> verifiedView(const KeyRef& ref, BlobPurpose expected);
    Result<Opc> decryptOpc(const BlobView& view);
    Result<Bytes> sealOpcRaw(const Opc& opc, const BlobBinding& binding);
    Result<Key256> hmacUnder(CK_OBJECT_HANDLE key, ByteView s);
    // Creates a 32-octet HMAC key object from `value` (wiped right after C_CreateObject), wraps
    // it, tags the blob; keeps it (non-extractable, cached) when `keep`.
    Result<Sealed> sealHmacKey(Key256& value, const BlobBinding& binding, bool keep);
    Result<Key256> deriveUnder(const KeyRef& ref, BlobPurpose expected, crypto::Fc fc,
                               std::initializer_list<ByteView> params);

    KeyVault* vault_;
    Session session_;
    crypto::MdCtxPtr md_;
};

class KeyVault {
public:
    // Loads the module, finds the token, probes mechanisms, logs the owner session in (PIN from
    // the file), finds and checks the token keys, runs the functional probe (wrap/unwrap round
    // trip, multi-part ECB), starts the workers.
    static Result<std::unique_ptr<KeyVault>> open(const HsmConfig& config);

    // Creates the three token keys once (best-hsectl hsm init). Refuses (key_exists) when any of
    // them is already on the token.
    static Result<void> initTokenKeys(const HsmConfig& config);

    KeyVault(const KeyVault&) = delete;
    KeyVault& operator=(const KeyVault&) = delete;
    // Queued jobs finish, workers stop (stacks wiped), cached objects are destroyed, sessions
    // closed, the module finalised.
    ~KeyVault();

    // A VaultOps with its own non-login session, for the calling thread (tools, benchmarks).
    Result<VaultOps> openOps();

    // Runs `f(VaultOps&)` on a worker; the future holds its Result. Never blocks: a full queue
    // gives a ready future holding HsmErrc::busy.
    template <typename F>
    auto submit(F&& f) -> std::future<std::invoke_result_t<F&, VaultOps&>>;
    // Runs `f(VaultOps&)` on a worker and then `done(result)` on that worker thread (an event
    // loop forwards it with uv_async_send). A full queue calls done(HsmErrc::busy) at once, on
    // the caller's thread.
    template <typename F, typename Done>
    void post(F&& f, Done&& done);
    // submit() and wait: for tools and tests, never on an event loop.
    template <typename F>
    auto run(F&& f) -> std::invoke_result_t<F&, VaultOps&> {
        return submit(std::forward<F>(f)).get();
    }

    // Active health probe: C_GetTokenInfo plus one C_WrapKey under the token's wrap key.
    // SoftHSM never reports CKR_DEVICE_REMOVED and cached session objects keep working after
    // its token directory vanishes, so only this finds a token gone. Error: token_failure.
    Result<void> checkHealth();

    // Logs in again (PIN file re-read; CKR_USER_ALREADY_LOGGED_IN is success), re-finds the token
    // keys (a logout invalidates their handles too: SoftHSM, measured), makes a new probe key
    // and empties the key cache. Called by the ops on CKR_USER_NOT_LOGGED_IN or a stale handle.
    Result<void> relogin();
    void clearCache() { cache_.clear(); }

    const TokenCapabilities& capabilities() const noexcept { return caps_; }
    const std::string& tokenLabel() const noexcept { return slot_->label(); }
    CacheStats cacheStats() const { return cache_.stats(); }
    CallStats callStats() const noexcept { return module_->stats(); }
    std::uint64_t relogins() const noexcept { return relogins_.load(); }
    const Module& module() const noexcept { return *module_; }
    CK_SLOT_ID slotId() const noexcept { return slot_->id(); }
    std::size_t workers() const noexcept { return pool_ ? pool_->workers() : 0; }
    bool workerStacksLocked() const noexcept { return pool_ && pool_->stacksLocked(); }

private:
    friend class VaultOps;
    // The handles the operations use: session copies of the token keys (C_CopyObject through
    // the owner; still sensitive and non-extractable) when the token allows it, else the token
    // objects themselves. SoftHSM re-checks a token object's file on every use (about 12 us per
    // operation, measured), a session object not.
    struct TokenKeys {
        std::atomic<CK_OBJECT_HANDLE> wrap{CK_INVALID_HANDLE};
        std::atomic<CK_OBJECT_HANDLE> data{CK_INVALID_HANDLE};
        std::atomic<CK_OBJECT_HANDLE> binding{CK_INVALID_HANDLE};
    };

    explicit KeyVault(std::size_t cacheCapacity) : cache_(cacheCapacity) {}
    static Result<std::unique_ptr<KeyVault>> connect(const HsmConfig& config);
    Result<void> login();                    // owner session; caller holds ownerMutex_
    Result<void> findTokenKeys(bool check);  // caller holds ownerMutex_
    Result<void> makeProbeKey();             // caller holds ownerMutex_
    // What is wrong with the wrap key's lock-down ("" when nothing); caller holds ownerMutex_.
    Result<std::string> checkWrapKeyLocked(CK_OBJECT_HANDLE wrapKey);
    Result<void> functionalProbe();
    Result<void> recover(std::uint64_t observedGeneration);
    SessionRef ownerRef() noexcept { return owner_.ref(&ownerMutex_); }

    std::string pinFile_;
    TokenSelector selector_;
    std::unique_ptr<Module> module_;
    std::optional<Slot> slot_;
    TokenCapabilities caps_;
    std::mutex ownerMutex_;  // guards every use of owner_
    Session owner_;
    TokenKeys keys_;
    CK_OBJECT_HANDLE tokenWrapKey_ = CK_INVALID_HANDLE;  // the token object: the health probe's
    std::array<ObjectHandle, 3> keyCopies_;  // only used and reset with ownerMutex_ held
    ObjectHandle probeKey_;  // extractable AES-128 session object: the health probe wraps it
    std::mutex recoverMutex_;
    std::atomic<std::uint64_t> relogins_{0};
    KeyCache cache_;
    std::unique_ptr<WorkerPool<VaultOps>> pool_;  // declared last: stops first
};

// --- templates ---

namespace detail {

template <typename R>
struct IsResult : std::false_type {};
template <typename T>
struct IsResult<Result<T>> : std::true_type {};

template <typename R>
R internalError(const char* what) {
    return R(
        makeError(HsmErrc::internal, std::string("unexpected exception in an HSM job: ") + what));
}

// Runs a job; an exception becomes an HsmErrc::internal error (no exception crosses a worker).
template <typename R, typename F>
R invokeGuarded(F& f, VaultOps& ops) noexcept {
    try {
        return f(ops);
    } catch (const std::exception& e) {
        return internalError<R>(e.what());
    } catch (...) {
        return internalError<R>("unknown");
    }
}

template <typename F, typename R>
class FutureJob final : public WorkerPool<VaultOps>::Job {
public:
    explicit FutureJob(F f) : f_(std::move(f)) {}
    std::future<R> future() { return promise_.get_future(); }
    void run(VaultOps& ops) noexcept override { promise_.set_value(invokeGuarded<R>(f_, ops)); }
    void cancel(Error why) noexcept override { promise_.set_value(R(makeError(std::move(why)))); }

private:
    F f_;
    std::promise<R> promise_;
};

template <typename F, typename Done, typename R>
class CallbackJob final : public WorkerPool<VaultOps>::Job {
public:
    CallbackJob(F f, Done done) : f_(std::move(f)), done_(std::move(done)) {}
    void run(VaultOps& ops) noexcept override { finish(invokeGuarded<R>(f_, ops)); }
    void cancel(Error why) noexcept override { finish(R(makeError(std::move(why)))); }

private:
    void finish(R result) noexcept {
        try {
            done_(std::move(result));
        } catch (...) {
            // No exception crosses the worker loop (conventions 4); the callback owns its errors.
        }
    }
    F f_;
    Done done_;
};

Error poolRefused(bool stopping);

}  // namespace detail

template <typename F>
auto KeyVault::submit(F&& f) -> std::future<std::invoke_result_t<F&, VaultOps&>> {
    using R = std::invoke_result_t<F&, VaultOps&>;
    static_assert(detail::IsResult<R>::value, "HSM jobs return a Result<T>");
    auto job = std::make_unique<detail::FutureJob<std::decay_t<F>, R>>(std::forward<F>(f));
    auto fut = job->future();
    typename WorkerPool<VaultOps>::JobPtr base = std::move(job);
    if (!pool_ || !pool_->push(base))
        base->cancel(detail::poolRefused(!pool_ || pool_->stopping()));
    return fut;
}

template <typename F, typename Done>
void KeyVault::post(F&& f, Done&& done) {
    using R = std::invoke_result_t<F&, VaultOps&>;
    static_assert(detail::IsResult<R>::value, "HSM jobs return a Result<T>");
    typename WorkerPool<VaultOps>::JobPtr base =
        std::make_unique<detail::CallbackJob<std::decay_t<F>, std::decay_t<Done>, R>>(
            std::forward<F>(f), std::forward<Done>(done));
    if (!pool_ || !pool_->push(base))
        base->cancel(detail::poolRefused(!pool_ || pool_->stopping()));
}

}  // namespace best::hsm
