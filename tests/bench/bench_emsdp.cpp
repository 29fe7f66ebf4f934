// EMSDP protect and verify of a 64-octet UP payload with integrity and ciphering (n = 1, so the
// datagram is 6 + 64 + 4 octets), against a baseline of raw EVP in the same binary: one
// AES-128-CTR pass over 64 octets plus one AES-CMAC pass over 8 + 64 octets, contexts keyed
// once. Target (hot path): protect <= 1.5x baseline, verify <= 1.5x baseline.
//   hot:  a SecureChannel keyed once (Eia2 / Eea2 objects reused), as a session uses it;
//   cold: the same Eia2 / Eea2 objects re-keyed per message (setKey: EVP_MAC_init with the key,
//         EVP_CipherInit_ex2 with the key; the CMAC cipher was set once at construction).
// No path fetches an algorithm: every EVP object comes from crypto::Provider.
#include <benchmark/benchmark.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <array>
#include <cstdlib>
#include <optional>
#include <vector>

#include "crypto/ossl.h"
#include "emsdp/emsdp.h"

namespace {

using namespace best;
using namespace best::emsdp;

constexpr std::size_t kPayload = 64;
constexpr std::uint32_t kSid = 0x01020304;

Key128 key(std::uint8_t seed) {
    std::array<std::uint8_t, 16> k{};
    for (std::size_t i = 0; i < k.size(); ++i)
        k[i] = static_cast<std::uint8_t>(seed + 13 * i);
    return Key128(ByteView(k));
}

std::array<std::uint8_t, kPayload> payload() {
    std::array<std::uint8_t, kPayload> p{};
    for (std::size_t i = 0; i < p.size(); ++i)
        p[i] = static_cast<std::uint8_t>(i * 7 + 1);
    return p;
}

ChannelConfig config(Side side) {
    ChannelConfig c;
    c.side = side;
    c.sessionId = kSid;
    c.kid = 1;
    c.cpScheme = CounterScheme::n1;
    c.upScheme = CounterScheme::n1;
    c.upEnabled = true;
    c.upCiphering = true;
    return c;
}

SecureChannel channel(Side side) {
    auto ch = SecureChannel::create(config(side), ChannelKeys{key(1), key(2), key(3)});
    if (!ch)
        std::abort();
    return std::move(*ch);
}

// ---- baseline: raw EVP, keyed once --------------------------------------------------------------

void BM_BaselineCtrPlusCmac(benchmark::State& state) {
    const crypto::Provider& p = crypto::Provider::instance();
    crypto::CipherCtxPtr ctr(EVP_CIPHER_CTX_new());
    crypto::MacCtxPtr cmac(EVP_MAC_CTX_new(p.cmac()));
    char cipher[] = "AES-128-CBC";
    const OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_CIPHER, cipher, 0),
        OSSL_PARAM_construct_end(),
    };
    const Key128 encKey = key(3);
    const Key128 intKey = key(2);
    if (!ctr || !cmac || EVP_MAC_CTX_set_params(cmac.get(), params) != 1 ||
        EVP_CipherInit_ex2(ctr.get(), p.aes128Ctr(), encKey.data(), nullptr, 1, nullptr) != 1 ||
        EVP_MAC_init(cmac.get(), intKey.data(), intKey.size(), nullptr) != 1) {
        state.SkipWithError("EVP setup failed");
        return;
    }
    const auto in = payload();
    std::array<std::uint8_t, kPayload> out{};
    std::uint8_t iv[16] = {};
    std::uint8_t prefix[8] = {0, 0, 0, 0, 0x08, 0, 0, 0};
    std::uint8_t tag[16];
    std::uint32_t count = 0;
    for (auto _ : state) {
        putBe32(iv, count);
        putBe32(prefix, count);
        int outl = 0;
        std::size_t tagLen = 0;
        const bool ok = EVP_CipherInit_ex2(ctr.get(), nullptr, nullptr, iv, 1, nullptr) == 1 &&
                        EVP_CipherUpdate(ctr.get(), out.data(), &outl, in.data(), kPayload) == 1 &&
                        EVP_MAC_init(cmac.get(), nullptr, 0, nullptr) == 1 &&
                        EVP_MAC_update(cmac.get(), prefix, sizeof prefix) == 1 &&
                        EVP_MAC_update(cmac.get(), out.data(), out.size()) == 1 &&
                        EVP_MAC_final(cmac.get(), tag, &tagLen, sizeof tag) == 1;
        if (!ok)
            state.SkipWithError("EVP call failed");
        benchmark::DoNotOptimize(tag);
        ++count;
    }
}
BENCHMARK(BM_BaselineCtrPlusCmac);

// ---- hot path: a session's channel, keyed once
// ----------------------------------------------------

void BM_ProtectUpHot(benchmark::State& state) {
    SecureChannel ue = channel(Side::ue);
    const auto in = payload();
    std::array<std::uint8_t, kMaxDatagram> out{};
    for (auto _ : state) {
        auto n = ue.sealUp(in, out);
        if (!n)
            state.SkipWithError("sealUp failed");
        benchmark::DoNotOptimize(out);
    }
}
BENCHMARK(BM_ProtectUpHot);

void BM_VerifyUpHot(benchmark::State& state) {
    SecureChannel ue = channel(Side::ue);
    SecureChannel hse = channel(Side::network);
    const auto in = payload();
    std::array<std::uint8_t, kMaxDatagram> dgram{};
    auto n = ue.sealUp(in, dgram);
    if (!n) {
        state.SkipWithError("sealUp failed");
        return;
    }
    const ByteView d(dgram.data(), *n);
    std::array<std::uint8_t, kMaxDatagram> plain{};
    const CounterSnapshot fresh;
    for (auto _ : state) {
        hse.restoreCounters(fresh);  // the same datagram again is not a replay
        auto r = hse.openUp(d, plain);
        if (!r)
            state.SkipWithError("openUp failed");
        benchmark::DoNotOptimize(plain);
    }
}
BENCHMARK(BM_VerifyUpHot);

// ---- cold path: keys set per message ------------------------------------------------------------

Header upHeader() {
    Header h;
    h.plane = Plane::up;
    h.kid = 1;
    h.sessionId = kSid;
    h.scheme = CounterScheme::n1;
    return h;
}

void BM_ProtectUpCold(benchmark::State& state) {
    crypto::Eia2 eia2;
    crypto::Eea2 eea2;
    const Key128 intKey = key(2);
    const Key128 encKey = key(3);
    const auto in = payload();
    std::array<std::uint8_t, kMaxDatagram> out{};
    const Header h = upHeader();
    std::uint32_t count = 0;
    for (auto _ : state) {
        const bool keyed = eia2.setKey(intKey).has_value() && eea2.setKey(encKey).has_value();
        auto n = emsdp::sealUp(eia2, &eea2, h, count++, 0, in, out);
        if (!keyed || !n)
            state.SkipWithError("cold protect failed");
        benchmark::DoNotOptimize(out);
    }
}
BENCHMARK(BM_ProtectUpCold);

void BM_VerifyUpCold(benchmark::State& state) {
    crypto::Eia2 eia2;
    crypto::Eea2 eea2;
    const Key128 intKey = key(2);
    const Key128 encKey = key(3);
    if (!eia2.setKey(intKey) || !eea2.setKey(encKey)) {
        state.SkipWithError("setKey failed");
        return;
    }
    const auto in = payload();
    std::array<std::uint8_t, kMaxDatagram> dgram{};
    auto n = emsdp::sealUp(eia2, &eea2, upHeader(), 0, 0, in, dgram);
    if (!n) {
        state.SkipWithError("sealUp failed");
        return;
    }
    const ByteView d(dgram.data(), *n);
    std::array<std::uint8_t, kPayload> plain{};
    for (auto _ : state) {
        // What openUp does, with the keys set for this message.
        auto h = decodeHeader(d, CounterScheme::n1);
        if (!h) {
            state.SkipWithError("header");
            break;
        }
        auto count = UpRxCounter{}.candidate(h->counterField, h->scheme);
        const bool keyed = eia2.setKey(intKey).has_value() && eea2.setKey(encKey).has_value();
        auto ok = macMatches(eia2, d, count ? *count : 0, 1, 0);
        auto dec = eea2.apply(count ? *count : 0, 1, 0, d.subspan(h->size(), kPayload), plain);
        if (!count || !keyed || !ok || !*ok || !dec)
            state.SkipWithError("cold verify failed");
        benchmark::DoNotOptimize(plain);
    }
}
BENCHMARK(BM_VerifyUpCold);

// ---- the HSE's slab channels (issue 6): keys in the locked slab, contexts from the LRU cache ----
// Hit: one session whose contexts stay cached. Miss: two sessions on a cache of one entry, used
// alternately, so every message re-keys the evicted entry from the slab (integrity + ciphering:
// the UP verify needs UP-int and UP-enc; CP-int is keyed too).

void slabVerifyUp(benchmark::State& state, std::size_t sessions, std::size_t cacheSize) {
    auto slab = KeySlab::create(sessions);
    if (!slab) {
        state.SkipWithError(slab.error().message.c_str());
        return;
    }
    ContextCache cache(*slab, cacheSize);
    std::vector<SecureChannel> hse;
    std::vector<Bytes> dgrams;
    const auto in = payload();
    for (std::size_t i = 0; i < sessions; ++i) {
        ChannelConfig c = config(Side::network);
        c.sessionId = kSid + static_cast<std::uint32_t>(i);
        auto h = SecureChannel::create(c, ChannelKeys{key(1), key(2), key(3)}, cache);
        c.side = Side::ue;
        auto u = SecureChannel::create(c, ChannelKeys{key(1), key(2), key(3)});
        std::array<std::uint8_t, kMaxDatagram> d{};
        auto n = u ? u->sealUp(in, d) : Result<std::size_t>(0);
        if (!h || !u || !n) {
            state.SkipWithError("setup failed");
            return;
        }
        hse.push_back(std::move(*h));
        dgrams.emplace_back(d.begin(), d.begin() + static_cast<std::ptrdiff_t>(*n));
    }
    std::array<std::uint8_t, kMaxDatagram> plain{};
    const CounterSnapshot fresh;
    std::size_t i = 0;
    for (auto _ : state) {
        hse[i].restoreCounters(fresh);
        auto r = hse[i].openUp(dgrams[i], plain);
        if (!r)
            state.SkipWithError("openUp failed");
        benchmark::DoNotOptimize(plain);
        i = (i + 1) % sessions;
    }
    state.counters["misses"] = static_cast<double>(cache.stats().misses);
}

void BM_VerifyUpSlabHit(benchmark::State& state) {
    slabVerifyUp(state, 1, 1);
}
BENCHMARK(BM_VerifyUpSlabHit);

void BM_VerifyUpSlabMiss(benchmark::State& state) {
    slabVerifyUp(state, 2, 1);
}
BENCHMARK(BM_VerifyUpSlabMiss);

// Many sessions over a cache of 4,096 entries, used round-robin: every use misses once the
// working set exceeds the cache (the worst case of a large idle population waking up).
void BM_VerifyUpSlabRoundRobin(benchmark::State& state) {
    slabVerifyUp(state, static_cast<std::size_t>(state.range(0)), 4096);
}
BENCHMARK(BM_VerifyUpSlabRoundRobin)->Arg(1024)->Arg(16384);

}  // namespace

BENCHMARK_MAIN();
