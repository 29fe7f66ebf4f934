// Crypto core figures (Google Benchmark): software Milenage vector, one KDF, the session keys,
// EIA2 and EEA2 on the hot path (object keyed once, reused) and the cold path (setKey per
// message). Inputs are Milenage set 1 and fixed keys; nothing here checks values (the unit
// suite does). EIA2 MACs a 64-octet message, so the CMAC runs over 8 + 64 octets (the EIA2
// prefix COUNT || BEARER || DIRECTION || 0 and the message: 5 AES blocks); EEA2 ciphers 64 octets.
#include <benchmark/benchmark.h>

#include <cstdlib>

#include "common/hex.h"
#include "crypto/eps_algorithms.h"
#include "crypto/key_hierarchy.h"
#include "crypto/milenage.h"

namespace {

using namespace best;
using namespace best::crypto;

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

Bytes message(std::size_t n) {
    Bytes m(n);
    for (std::size_t i = 0; i < n; ++i)
        m[i] = static_cast<std::uint8_t>(i * 7 + 1);
    return m;
}

void check(bool ok, benchmark::State& state) {
    if (!ok)
        state.SkipWithError("crypto call failed");
}

// Milenage set 1 (TS 35.208).
const char* const kK = "465b5ce8b199b49faa5f0a2ee238a6bc";
const char* const kOpc = "cd63cb71954a9f4e48a5994e37a02baf";
const char* const kRand = "23553cbe9637a89d218ae64dae47bf35";
const char* const kSqn = "ff9bb4d0b607";
const char* const kAmf = "b9b9";

void BM_MilenageVector(benchmark::State& state) {
    SoftAes128 ek(secretFromHex<SubscriberK>(kK));
    const Opc opc = secretFromHex<Opc>(kOpc);
    const Rand rand = arrayFromHex<16>(kRand);
    const Sqn sqn = arrayFromHex<6>(kSqn);
    const Amf amf = arrayFromHex<2>(kAmf);
    for (auto _ : state) {
        auto v = generateVector(ek, opc, rand, sqn, amf);
        check(v.has_value(), state);
        benchmark::DoNotOptimize(v);
    }
}
BENCHMARK(BM_MilenageVector);

// With the E_K key schedule per vector (a fresh SoftAes128 each time).
void BM_MilenageVectorWithKeySetup(benchmark::State& state) {
    const SubscriberK k = secretFromHex<SubscriberK>(kK);
    const Opc opc = secretFromHex<Opc>(kOpc);
    const Rand rand = arrayFromHex<16>(kRand);
    const Sqn sqn = arrayFromHex<6>(kSqn);
    const Amf amf = arrayFromHex<2>(kAmf);
    for (auto _ : state) {
        SoftAes128 ek(k);
        auto v = generateVector(ek, opc, rand, sqn, amf);
        check(v.has_value(), state);
        benchmark::DoNotOptimize(v);
    }
}
BENCHMARK(BM_MilenageVectorWithKeySetup);

Key256 fixedKey256() {
    Key256 k;
    for (std::size_t i = 0; i < k.size(); ++i)
        k[i] = static_cast<std::uint8_t>(0xA0 + i);
    return k;
}

void BM_KdfKInt(benchmark::State& state) {
    const Key256 root = fixedKey256();
    for (auto _ : state) {
        auto kint = deriveKInt(root, "hse.example.org");
        check(kint.has_value(), state);
        benchmark::DoNotOptimize(kint);
    }
}
BENCHMARK(BM_KdfKInt);

void BM_DeriveSessionKeys(benchmark::State& state) {
    const Key256 ksess = fixedKey256();
    for (auto _ : state) {
        auto keys = deriveSessionKeys(ksess, kAlgEia2, kAlgEia2);
        check(keys.has_value(), state);
        benchmark::DoNotOptimize(keys);
    }
}
BENCHMARK(BM_DeriveSessionKeys);

Key128 fixedKey128(std::uint8_t seed) {
    Key128 k;
    for (std::size_t i = 0; i < k.size(); ++i)
        k[i] = static_cast<std::uint8_t>(seed + i);
    return k;
}

void BM_Eia2Hot(benchmark::State& state) {
    Eia2 eia2(fixedKey128(1));
    const Bytes m = message(64);
    std::uint32_t count = 0;
    for (auto _ : state) {
        auto mac = eia2.mac(count++, kBearerUp, kDirUplink, m);
        check(mac.has_value(), state);
        benchmark::DoNotOptimize(mac);
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * m.size()));
}
BENCHMARK(BM_Eia2Hot);

void BM_Eia2Cold(benchmark::State& state) {
    Eia2 eia2;
    const Key128 key = fixedKey128(1);
    const Bytes m = message(64);
    std::uint32_t count = 0;
    for (auto _ : state) {
        check(eia2.setKey(key).has_value(), state);
        auto mac = eia2.mac(count++, kBearerUp, kDirUplink, m);
        check(mac.has_value(), state);
        benchmark::DoNotOptimize(mac);
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * m.size()));
}
BENCHMARK(BM_Eia2Cold);

void BM_Eea2Hot(benchmark::State& state) {
    Eea2 eea2(fixedKey128(2));
    Bytes m = message(64);
    std::uint32_t count = 0;
    for (auto _ : state) {
        check(eea2.apply(count++, kBearerUp, kDirUplink, m, m).has_value(), state);
        benchmark::ClobberMemory();
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * m.size()));
}
BENCHMARK(BM_Eea2Hot);

void BM_Eea2Cold(benchmark::State& state) {
    Eea2 eea2;
    const Key128 key = fixedKey128(2);
    Bytes m = message(64);
    std::uint32_t count = 0;
    for (auto _ : state) {
        check(eea2.setKey(key).has_value(), state);
        check(eea2.apply(count++, kBearerUp, kDirUplink, m, m).has_value(), state);
        benchmark::ClobberMemory();
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * m.size()));
}
BENCHMARK(BM_Eea2Cold);

}  // namespace

BENCHMARK_MAIN();
