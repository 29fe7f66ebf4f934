// HSM figures through SoftHSM2 (Google Benchmark), on one core (the calling thread, one session):
//
//   VectorAndKInt/warm   an authentication vector (UMTS, K cached in the token as an unwrapped
//                        session object, OPc verified and decrypted) and a new KInt with its
//                        wrapped, bound blob (R = CK || IK, KInt = KDF(R) in software, then
//                        C_CreateObject, C_WrapKey, binding tag by C_Sign, kept non-extractable;
//                        the cache is full, so each KInt evicts, and destroys, the oldest entry).
//   VectorAndKInt/cold   the same with the key cache emptied before each iteration (K verified
//                        and unwrapped again; the emptying itself is not timed).
//   VectorAndKInt/pool   the warm operation through the vault's worker pool (futures, 64 in
//                        flight), for the async overhead; uses every worker.
//   Op/...               each PKCS#11 step of the warm operation alone, on the same token, in the
//                        same run: the token's own cost.
//
// At the end it prints the token limit: the warm operation's PKCS#11 calls (counted), the sum of
// their measured single-step costs, and the ratio of that sum to the measured warm time (1.0 =
// the host adds nothing; the rest is host work: Milenage XORs, KDF, blob framing, SHA-256).
//
// It makes its own throwaway SoftHSM token and removes it (CI smoke-runs it unattended).
#include <benchmark/benchmark.h>

#include <cstdio>
#include <future>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/hex.h"
#include "crypto/key_hierarchy.h"
#include "hsm/key_vault.h"
#include "tests/hsm/softhsm_token.h"

namespace {

using namespace best;
using namespace best::hsm;

template <typename S>
S secretFromHex(const char* h) {
    auto b = fromHex(h, "bench input", S::kSize);
    if (!b)
        std::abort();
    return S(ByteView(*b));
}
template <std::size_t N>
std::array<std::uint8_t, N> arrayFromHex(const char* h) {
    auto b = fromHex(h, "bench input", N);
    if (!b)
        std::abort();
    std::array<std::uint8_t, N> a{};
    for (std::size_t i = 0; i < N; ++i)
        a[i] = (*b)[i];
    return a;
}

// Milenage set 1 (TS 35.208) as the subscriber.
const char* const kK = "465b5ce8b199b49faa5f0a2ee238a6bc";
const char* const kOpc = "cd63cb71954a9f4e48a5994e37a02baf";
const char* const kImsi = "001010000000001";
// Small, so that the warm benchmark reaches the steady state (each new KInt evicts an entry)
// after a short warm-up.
constexpr std::size_t kCacheCapacity = 256;

struct Env {
    std::unique_ptr<testing::SoftHsmToken> token;
    std::unique_ptr<KeyVault> vault;
    std::unique_ptr<VaultOps> ops;
    Bytes kBlob, opcBlob;
    // Raw handles for the single-step benchmarks (same token, same login).
    Session raw;
    CK_OBJECT_HANDLE wrapKey = 0, dataKey = 0, bindingKey = 0;
    ObjectHandle aesKey, hmacKey;
    std::uint64_t counter = 0;

    SubscriberRef subscriber() const {
        return {{kBlob, {kImsi, BlobPurpose::subscriberK, 1}},
                {opcBlob, {kImsi, BlobPurpose::opc, 1}}};
    }
};
Env* gEnv = nullptr;

bool fail(const std::string& what) {
    std::fprintf(stderr, "bench_hsm: %s\n", what.c_str());
    return false;
}

// The key as the vault's operations use it: its session copy when the token allows copies.
CK_OBJECT_HANDLE findKey(const Session& s, std::string_view label, bool copies) {
    std::array<CK_ATTRIBUTE, 2> t{attrBytes(CKA_LABEL, label.data(), label.size()),
                                  attr(CKA_TOKEN, copies ? kFalse : kTrue)};
    auto found = s.findObjects(t, 1);
    return found && found->size() == 1 ? found->front() : CK_INVALID_HANDLE;
}

bool setUp(Env& e) {
    try {
        e.token = std::make_unique<testing::SoftHsmToken>();
    } catch (const std::exception& ex) {
        return fail(ex.what());
    }
    HsmConfig cfg = e.token->config();
    cfg.workers = 2;
    cfg.cacheCapacity = kCacheCapacity;
    if (auto r = KeyVault::initTokenKeys(cfg); !r)
        return fail(r.error().message);
    auto v = KeyVault::open(cfg);
    if (!v)
        return fail(v.error().message);
    e.vault = std::move(*v);
    auto ops = e.vault->openOps();
    if (!ops)
        return fail(ops.error().message);
    e.ops = std::make_unique<VaultOps>(std::move(*ops));
    auto k = e.ops->importK(secretFromHex<SubscriberK>(kK), {kImsi, BlobPurpose::subscriberK, 1});
    auto o = e.ops->sealOpc(secretFromHex<Opc>(kOpc), {kImsi, BlobPurpose::opc, 1});
    if (!k || !o)
        return fail("provisioning failed");
    e.kBlob = *k;
    e.opcBlob = *o;
    const Module& m = e.vault->module();
    auto s = Session::open(m, e.vault->slotId(), false);
    if (!s)
        return fail(s.error().message);
    e.raw = std::move(*s);
    // As the vault uses them: the wrap key itself, session copies of the other two.
    e.wrapKey = findKey(e.raw, kWrapKeyLabel, false);
    e.dataKey = findKey(e.raw, kDataKeyLabel, true);
    e.bindingKey = findKey(e.raw, kBindingKeyLabel, true);
    // A non-extractable AES-128 key (K's shape) and a 32-octet HMAC key (KInt's shape).
    const CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    const CK_KEY_TYPE aes = CKK_AES, generic = CKK_GENERIC_SECRET;
    std::uint8_t kv[16] = {1}, hv[32] = {2};
    CK_ATTRIBUTE ka[] = {attr(CKA_CLASS, cls),       attr(CKA_KEY_TYPE, aes),
                         attr(CKA_TOKEN, kFalse),    attr(CKA_PRIVATE, kTrue),
                         attr(CKA_SENSITIVE, kTrue), attr(CKA_EXTRACTABLE, kFalse),
                         attr(CKA_ENCRYPT, kTrue),   attrBytes(CKA_VALUE, kv, sizeof kv)};
    CK_ATTRIBUTE ha[] = {attr(CKA_CLASS, cls),       attr(CKA_KEY_TYPE, generic),
                         attr(CKA_TOKEN, kFalse),    attr(CKA_PRIVATE, kTrue),
                         attr(CKA_SENSITIVE, kTrue), attr(CKA_EXTRACTABLE, kFalse),
                         attr(CKA_SIGN, kTrue),      attrBytes(CKA_VALUE, hv, sizeof hv)};
    CK_OBJECT_HANDLE h1 = 0, h2 = 0;
    if (!m.call<P11Fn::C_CreateObject>(e.raw.get(), ka, CK_ULONG{8}, &h1) ||
        !m.call<P11Fn::C_CreateObject>(e.raw.get(), ha, CK_ULONG{8}, &h2))
        return fail("cannot create the benchmark's session keys");
    e.aesKey = ObjectHandle(e.raw.ref(), h1);
    e.hmacKey = ObjectHandle(e.raw.ref(), h2);
    if (e.wrapKey == CK_INVALID_HANDLE || e.dataKey == CK_INVALID_HANDLE ||
        e.bindingKey == CK_INVALID_HANDLE)
        return fail("token keys not found");
    return true;
}

void tearDown(Env& e) {
    e.aesKey.reset();
    e.hmacKey.reset();
    e.raw.reset();
    e.ops.reset();
    e.vault.reset();
    e.token.reset();  // removes the token directory
}

// One establishment's worth of HSM work: vector + KInt + its blob. A fresh RAND each time, so
// each KInt is new (as in service).
bool vectorAndKInt(VaultOps& ops, const SubscriberRef& sub, std::uint64_t n) {
    crypto::Rand rand = arrayFromHex<16>("23553cbe9637a89d218ae64dae47bf35");
    putBe64(rand.data() + 8, n);
    const crypto::Sqn sqn = crypto::sqnFromInt(0x20 * (n + 1) + 7);
    const crypto::Amf amf{0xb9, 0xb9};
    auto v = ops.generateVector(sub, rand, sqn, amf);
    if (!v)
        return false;
    crypto::Ak sqnXorAk{};
    for (std::size_t i = 0; i < 6; ++i)
        sqnXorAk[i] = static_cast<std::uint8_t>(sqn[i] ^ v->ak[i]);
    auto root =
        crypto::deriveRoot(crypto::KeyAgreement::umts, v->ck, v->ik, {0x00, 0xf1, 0x10}, sqnXorAk);
    if (!root)
        return false;
    KeySetSpec spec;
    spec.hseId = "hse.example.org";
    spec.kint = {kImsi, BlobPurpose::kint, n};
    auto ks = ops.createKeySet(*root, spec);
    return ks && !ks->kintBlob.empty();
}

std::map<std::string, double> gCallsPerIteration;

void countCalls(benchmark::State& state, const CallStats& before, const std::string& name) {
    const CallStats d = gEnv->vault->callStats().since(before);
    const double perIter = static_cast<double>(d.total()) / static_cast<double>(state.iterations());
    state.counters["p11_calls"] = perIter;
    gCallsPerIteration[name] = perIter;
    if (name == "warm")
        std::fprintf(stderr, "warm operation, PKCS#11 calls per iteration: %s (over %lld)\n",
                     d.describe().c_str(), static_cast<long long>(state.iterations()));
}

void BM_VectorAndKInt_Warm(benchmark::State& state) {
    Env& e = *gEnv;
    const SubscriberRef sub = e.subscriber();
    // Warm K, and a full cache: from here on every new KInt evicts the oldest entry.
    while (e.vault->cacheStats().size < kCacheCapacity) {
        if (!vectorAndKInt(*e.ops, sub, e.counter++)) {
            state.SkipWithError("HSM operation failed");
            return;
        }
    }
    const CallStats before = e.vault->callStats();
    for (auto _ : state) {
        if (!vectorAndKInt(*e.ops, sub, e.counter++)) {
            state.SkipWithError("HSM operation failed");
            return;
        }
    }
    countCalls(state, before, "warm");
    state.counters["per_s"] =
        benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

void BM_VectorAndKInt_Cold(benchmark::State& state) {
    Env& e = *gEnv;
    const SubscriberRef sub = e.subscriber();
    CallStats timed{};
    for (auto _ : state) {
        state.PauseTiming();
        e.vault->clearCache();
        const CallStats before = e.vault->callStats();
        state.ResumeTiming();
        if (!vectorAndKInt(*e.ops, sub, e.counter++)) {
            state.SkipWithError("HSM operation failed");
            return;
        }
        state.PauseTiming();
        const CallStats d = e.vault->callStats().since(before);
        for (std::size_t i = 0; i < kP11FnCount; ++i)
            timed.calls[i] += d.calls[i];
        state.ResumeTiming();
    }
    state.counters["p11_calls"] =
        static_cast<double>(timed.total()) / static_cast<double>(state.iterations());
    gCallsPerIteration["cold"] = state.counters["p11_calls"];
    state.counters["per_s"] =
        benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

void BM_VectorAndKInt_Pool(benchmark::State& state) {
    Env& e = *gEnv;
    const SubscriberRef sub = e.subscriber();
    constexpr int kBatch = 64;
    std::uint64_t items = 0;
    for (auto _ : state) {
        std::vector<std::future<Result<bool>>> futures;
        futures.reserve(kBatch);
        for (int i = 0; i < kBatch; ++i) {
            const std::uint64_t n = e.counter++;
            futures.push_back(e.vault->submit(
                [sub, n](VaultOps& ops) -> Result<bool> { return vectorAndKInt(ops, sub, n); }));
        }
        for (auto& f : futures) {
            auto r = f.get();
            if (!r || !*r) {
                state.SkipWithError("HSM operation failed");
                return;
            }
        }
        items += kBatch;
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(items));
    state.counters["workers"] = static_cast<double>(e.vault->workers());
}

// --- single steps, as the warm operation uses them ---------------------------------------------

#define STEP_CHECK(expr)                            \
    if (!(expr)) {                                  \
        state.SkipWithError("PKCS#11 step failed"); \
        return;                                     \
    }

void BM_Op_VerifyBinding(benchmark::State& state) {  // C_VerifyInit + C_Verify (OPc binding)
    Env& e = *gEnv;
    const Module& m = e.vault->module();
    CK_MECHANISM mech{CKM_SHA256_HMAC, nullptr, 0};
    Bytes input(16 + 2 + 15 + 1 + 8 + 44, 0x33);  // the size of B for an OPc blob
    std::uint8_t tag[32];
    CK_ULONG n = sizeof tag;
    STEP_CHECK(m.call<P11Fn::C_SignInit>(e.raw.get(), &mech, e.bindingKey));
    STEP_CHECK(m.call<P11Fn::C_Sign>(e.raw.get(), input.data(), static_cast<CK_ULONG>(input.size()),
                                     tag, &n));
    for (auto _ : state) {
        STEP_CHECK(m.call<P11Fn::C_VerifyInit>(e.raw.get(), &mech, e.bindingKey));
        STEP_CHECK(m.call<P11Fn::C_Verify>(e.raw.get(), input.data(),
                                           static_cast<CK_ULONG>(input.size()), tag, CK_ULONG{32}));
    }
}

void BM_Op_DecryptOpc(benchmark::State& state) {  // C_DecryptInit + C_Decrypt (AES-CBC)
    Env& e = *gEnv;
    const Module& m = e.vault->module();
    std::uint8_t iv[16] = {}, ct[16] = {}, pt[16];
    for (auto _ : state) {
        CK_MECHANISM mech{CKM_AES_CBC, iv, 16};
        CK_ULONG n = 16;
        STEP_CHECK(m.call<P11Fn::C_DecryptInit>(e.raw.get(), &mech, e.dataKey));
        STEP_CHECK(m.call<P11Fn::C_Decrypt>(e.raw.get(), ct, CK_ULONG{16}, pt, &n));
    }
}

void BM_Op_EcbInitFinal(benchmark::State& state) {  // C_EncryptInit + C_EncryptFinal
    Env& e = *gEnv;
    const Module& m = e.vault->module();
    CK_MECHANISM mech{CKM_AES_ECB, nullptr, 0};
    std::uint8_t out[16];
    for (auto _ : state) {
        CK_ULONG n = 16;
        STEP_CHECK(m.call<P11Fn::C_EncryptInit>(e.raw.get(), &mech, e.aesKey.get()));
        STEP_CHECK(m.call<P11Fn::C_EncryptFinal>(e.raw.get(), out, &n));
    }
}

void BM_Op_EcbUpdate(benchmark::State& state) {  // C_EncryptUpdate, one block
    Env& e = *gEnv;
    const Module& m = e.vault->module();
    CK_MECHANISM mech{CKM_AES_ECB, nullptr, 0};
    std::uint8_t in[16] = {}, out[16];
    STEP_CHECK(m.call<P11Fn::C_EncryptInit>(e.raw.get(), &mech, e.aesKey.get()));
    for (auto _ : state) {
        CK_ULONG n = 16;
        STEP_CHECK(m.call<P11Fn::C_EncryptUpdate>(e.raw.get(), in, CK_ULONG{16}, out, &n));
    }
    CK_ULONG n = 16;
    STEP_CHECK(m.call<P11Fn::C_EncryptFinal>(e.raw.get(), out, &n));
}

void BM_Op_CreateDestroy(benchmark::State& state) {  // C_CreateObject + C_DestroyObject (KInt)
    Env& e = *gEnv;
    const Module& m = e.vault->module();
    const CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    const CK_KEY_TYPE generic = CKK_GENERIC_SECRET;
    std::uint8_t v[32] = {7};
    CK_ATTRIBUTE t[] = {attr(CKA_CLASS, cls),       attr(CKA_KEY_TYPE, generic),
                        attr(CKA_TOKEN, kFalse),    attr(CKA_PRIVATE, kTrue),
                        attr(CKA_SENSITIVE, kTrue), attr(CKA_EXTRACTABLE, kTrue),
                        attr(CKA_SIGN, kTrue),      attrBytes(CKA_VALUE, v, sizeof v)};
    for (auto _ : state) {
        CK_OBJECT_HANDLE h = 0;
        STEP_CHECK(m.call<P11Fn::C_CreateObject>(e.raw.get(), t, CK_ULONG{8}, &h));
        STEP_CHECK(m.call<P11Fn::C_DestroyObject>(e.raw.get(), h));
    }
}

void BM_Op_WrapAndSetAttribute(benchmark::State& state) {
    // C_WrapKey + C_SetAttributeValue(CKA_EXTRACTABLE false); the object is made (untimed) for
    // each iteration since the attribute change is one-way.
    Env& e = *gEnv;
    const Module& m = e.vault->module();
    const CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    const CK_KEY_TYPE generic = CKK_GENERIC_SECRET;
    std::uint8_t v[32] = {8};
    CK_ATTRIBUTE t[] = {attr(CKA_CLASS, cls),       attr(CKA_KEY_TYPE, generic),
                        attr(CKA_TOKEN, kFalse),    attr(CKA_PRIVATE, kTrue),
                        attr(CKA_SENSITIVE, kTrue), attr(CKA_EXTRACTABLE, kTrue),
                        attr(CKA_SIGN, kTrue),      attrBytes(CKA_VALUE, v, sizeof v)};
    CK_MECHANISM mech{CKM_AES_KEY_WRAP, nullptr, 0};
    for (auto _ : state) {
        state.PauseTiming();
        CK_OBJECT_HANDLE h = 0;
        STEP_CHECK(m.call<P11Fn::C_CreateObject>(e.raw.get(), t, CK_ULONG{8}, &h));
        ObjectHandle obj(e.raw.ref(), h);
        state.ResumeTiming();
        std::uint8_t out[64];
        CK_ULONG n = sizeof out;
        STEP_CHECK(m.call<P11Fn::C_WrapKey>(e.raw.get(), &mech, e.wrapKey, h, out, &n));
        CK_ATTRIBUTE off = attr(CKA_EXTRACTABLE, kFalse);
        STEP_CHECK(m.call<P11Fn::C_SetAttributeValue>(e.raw.get(), h, &off, CK_ULONG{1}));
        state.PauseTiming();
        obj.reset();
        state.ResumeTiming();
    }
}

void BM_Op_SignBinding(benchmark::State& state) {  // C_SignInit + C_Sign (KInt blob's tag)
    Env& e = *gEnv;
    const Module& m = e.vault->module();
    CK_MECHANISM mech{CKM_SHA256_HMAC, nullptr, 0};
    Bytes input(16 + 2 + 15 + 1 + 8 + 52, 0x44);  // the size of B for a KInt blob
    std::uint8_t tag[32];
    for (auto _ : state) {
        CK_ULONG n = sizeof tag;
        STEP_CHECK(m.call<P11Fn::C_SignInit>(e.raw.get(), &mech, e.bindingKey));
        STEP_CHECK(m.call<P11Fn::C_Sign>(e.raw.get(), input.data(),
                                         static_cast<CK_ULONG>(input.size()), tag, &n));
    }
}

void BM_Op_KdfUnderKInt(benchmark::State& state) {  // C_SignInit + C_Sign under a KInt-like key
    Env& e = *gEnv;
    const Module& m = e.vault->module();
    CK_MECHANISM mech{CKM_SHA256_HMAC, nullptr, 0};
    Bytes s(1 + 4 + 2 + 8 + 2, 0xB4);  // KSess's S
    std::uint8_t out[32];
    for (auto _ : state) {
        CK_ULONG n = sizeof out;
        STEP_CHECK(m.call<P11Fn::C_SignInit>(e.raw.get(), &mech, e.hmacKey.get()));
        STEP_CHECK(
            m.call<P11Fn::C_Sign>(e.raw.get(), s.data(), static_cast<CK_ULONG>(s.size()), out, &n));
    }
}

class Collector : public benchmark::ConsoleReporter {
public:
    void ReportRuns(const std::vector<Run>& runs) override {
        for (const Run& r : runs) {
            if (r.error_occurred)
                failed = true;
            else if (r.run_type == Run::RT_Iteration) {
                ns[r.benchmark_name()] = r.GetAdjustedRealTime() * multiplier(r.time_unit);
                cpuNs[r.benchmark_name()] = r.GetAdjustedCPUTime() * multiplier(r.time_unit);
            }
        }
        ConsoleReporter::ReportRuns(runs);
    }
    static double multiplier(benchmark::TimeUnit u) {
        switch (u) {
            case benchmark::kNanosecond:
                return 1.0;
            case benchmark::kMicrosecond:
                return 1e3;
            case benchmark::kMillisecond:
                return 1e6;
            case benchmark::kSecond:
                return 1e9;
        }
        return 1.0;
    }
    double get(const std::string& prefix, bool cpu = false) const {
        for (const auto& [name, v] : cpu ? cpuNs : ns) {
            if (name.rfind(prefix, 0) == 0)
                return v;
        }
        return 0.0;
    }
    std::map<std::string, double> ns;
    std::map<std::string, double> cpuNs;
    bool failed = false;
};

void printSummary(const Collector& c) {
    const double warm = c.get("BM_VectorAndKInt_Warm");
    const double cold = c.get("BM_VectorAndKInt_Cold");
    const double pool = c.get("BM_VectorAndKInt_Pool");
    if (warm <= 0.0)
        return;
    // The warm operation's PKCS#11 steps (counts from the module's counters, checked by the
    // hsm suite): OPc verify + decrypt, Milenage (init/final + 6 updates), KInt create, wrap +
    // make non-extractable, binding tag, and the destroy of the entry it evicts from the cache.
    const double verify = c.get("BM_Op_VerifyBinding"), decrypt = c.get("BM_Op_DecryptOpc");
    const double ecbIf = c.get("BM_Op_EcbInitFinal"), ecbUp = c.get("BM_Op_EcbUpdate");
    const double createDestroy = c.get("BM_Op_CreateDestroy");
    const double wrapSet = c.get("BM_Op_WrapAndSetAttribute"), sign = c.get("BM_Op_SignBinding");
    const double limit = verify + decrypt + ecbIf + 6 * ecbUp + createDestroy + wrapSet + sign;
    const auto calls = gCallsPerIteration.count("warm") ? gCallsPerIteration.at("warm") : 0.0;
    std::printf("\nHSM summary (SoftHSM2, one core, warm K cache):\n");
    const double warmCpu = c.get("BM_VectorAndKInt_Warm", true);
    std::printf(
        "  vector + KInt + blob, warm : %8.2f us  -> %8.0f /s  (CPU time %.2f us -> %.0f "
        "/s)\n",
        warm / 1e3, 1e9 / warm, warmCpu / 1e3, warmCpu > 0 ? 1e9 / warmCpu : 0.0);
    if (cold > 0.0)
        std::printf("  vector + KInt + blob, cold : %8.2f us  -> %8.0f /s  (%.1f PKCS#11 calls)\n",
                    cold / 1e3, 1e9 / cold,
                    gCallsPerIteration.count("cold") ? gCallsPerIteration.at("cold") : 0.0);
    if (pool > 0.0)
        std::printf("  through the worker pool    : %8.0f /s (all workers, futures)\n",
                    1e9 / pool * 64.0);
    std::printf("  PKCS#11 calls per warm op  : %8.1f\n", calls);
    std::printf(
        "  single-step costs (us)     : verify %.2f, decrypt %.2f, ECB init+final %.2f, "
        "ECB update %.2f, create+destroy %.2f, wrap+setattr %.2f, sign %.2f, KDF sign "
        "%.2f\n",
        verify / 1e3, decrypt / 1e3, ecbIf / 1e3, ecbUp / 1e3, createDestroy / 1e3, wrapSet / 1e3,
        sign / 1e3, c.get("BM_Op_KdfUnderKInt") / 1e3);
    std::printf("  token limit (sum of steps) : %8.2f us = %.1f calls x %.2f us mean per call\n",
                limit / 1e3, calls, calls > 0 ? limit / calls / 1e3 : 0.0);
    std::printf("  ratio token limit / warm   : %8.2f  (1.0 = all time in the token)\n",
                limit / warm);
}

}  // namespace

int main(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv))
        return 1;
    Env env;
    gEnv = &env;
    if (!setUp(env)) {
        tearDown(env);
        return 1;
    }
    benchmark::RegisterBenchmark("BM_VectorAndKInt_Warm", BM_VectorAndKInt_Warm)
        ->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark("BM_VectorAndKInt_Cold", BM_VectorAndKInt_Cold)
        ->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark("BM_VectorAndKInt_Pool", BM_VectorAndKInt_Pool)
        ->Unit(benchmark::kMicrosecond)
        ->UseRealTime();
    benchmark::RegisterBenchmark("BM_Op_VerifyBinding", BM_Op_VerifyBinding);
    benchmark::RegisterBenchmark("BM_Op_DecryptOpc", BM_Op_DecryptOpc);
    benchmark::RegisterBenchmark("BM_Op_EcbInitFinal", BM_Op_EcbInitFinal);
    benchmark::RegisterBenchmark("BM_Op_EcbUpdate", BM_Op_EcbUpdate);
    benchmark::RegisterBenchmark("BM_Op_CreateDestroy", BM_Op_CreateDestroy);
    benchmark::RegisterBenchmark("BM_Op_WrapAndSetAttribute", BM_Op_WrapAndSetAttribute);
    benchmark::RegisterBenchmark("BM_Op_SignBinding", BM_Op_SignBinding);
    benchmark::RegisterBenchmark("BM_Op_KdfUnderKInt", BM_Op_KdfUnderKInt);
    Collector collector;
    benchmark::RunSpecifiedBenchmarks(&collector);
    printSummary(collector);
    tearDown(env);
    benchmark::Shutdown();
    return collector.failed ? 1 : 0;
}
