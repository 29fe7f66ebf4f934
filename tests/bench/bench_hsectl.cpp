// Import of 10,000 subscribers through the KeyVault into the store (Google Benchmark), with the
// code `best-hsectl subscriber import` runs (hsectl::importRows): the rows checked against the
// store, each K imported into the token and wrapped (C_CreateObject, C_WrapKey, C_DestroyObject,
// binding tag by C_Sign), each OPc sealed under the data key (C_GenerateRandom, C_Encrypt, tag),
// then one store transaction for all rows.
//
//   Import10k/opc   the file gives OPc
//   Import10k/op    the file gives OP: OPc = OP xor E_K(OP) inside the token as well (the K just
//                   wrapped is verified and unwrapped again, one more C_Encrypt)
//
// Counters: rows per second over the whole import (items_per_second), and the split between the HSM
// part (sealing) and the store part (the one transaction), in seconds. Each iteration imports into
// a new store file; opening it is timed, deleting it is not.
//
// It makes its own throwaway SoftHSM token and temporary directory and removes them (CI
// smoke-runs it unattended with --benchmark_min_time=0.01).
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "common/log.h"
#include "hsm/key_vault.h"
#include "provisioning.h"
#include "store/store.h"
#include "tests/hsm/softhsm_token.h"

namespace {

using namespace best;

constexpr std::size_t kRows = 10000;

struct Env {
    std::unique_ptr<testing::SoftHsmToken> token;
    std::unique_ptr<hsm::KeyVault> vault;
    std::uint64_t storeCounter = 0;
    bool failed = false;
};
Env* gEnv = nullptr;

bool fail(const std::string& what) {
    std::fprintf(stderr, "bench_hsectl: %s\n", what.c_str());
    if (gEnv != nullptr)
        gEnv->failed = true;
    return false;
}

bool setUp(Env& e) {
    try {
        e.token = std::make_unique<testing::SoftHsmToken>();
    } catch (const std::exception& ex) {
        return fail(ex.what());
    }
    hsm::HsmConfig cfg = e.token->config();
    // As best-hsectl opens it: one worker, a small key cache.
    cfg.workers = 1;
    cfg.cacheCapacity = 256;
    if (auto r = hsm::KeyVault::initTokenKeys(cfg); !r)
        return fail(r.error().message);
    auto v = hsm::KeyVault::open(cfg);
    if (!v)
        return fail(v.error().message);
    e.vault = std::move(*v);
    return true;
}

// Distinct deterministic keys per row (the values do not matter to the token's cost).
std::vector<hsectl::ProvisionRow> makeRows(bool withOp) {
    std::vector<hsectl::ProvisionRow> rows(kRows);
    for (std::size_t i = 0; i < kRows; ++i) {
        auto& r = rows[i];
        char imsi[16];
        std::snprintf(imsi, sizeof imsi, "00101%010zu", i);
        r.record.imsi = imsi;
        r.record.amf = {0x80, 0x00};
        r.line = i + 2;
        SubscriberK k;
        Opc opc;
        Op op;
        for (std::size_t j = 0; j < 16; ++j) {
            k[j] = static_cast<std::uint8_t>(i * 7 + j * 13 + 1);
            opc[j] = static_cast<std::uint8_t>(i * 11 + j * 3 + 5);
            op[j] = static_cast<std::uint8_t>(i * 5 + j * 17 + 9);
        }
        r.keys.k = k;
        r.keys.opKind = withOp ? store::OpKind::op : store::OpKind::opc;
        r.keys.opc = opc;
        r.keys.op = op;
    }
    return rows;
}

void BM_Import10k(benchmark::State& state) {
    const bool withOp = state.range(0) == 1;
    double sealSeconds = 0;
    double storeSeconds = 0;
    for (auto _ : state) {
        state.PauseTiming();
        auto rows = makeRows(withOp);
        const std::string path =
            gEnv->token->dir() + "/import-" + std::to_string(++gEnv->storeCounter) + ".db";
        state.ResumeTiming();
        const auto start = std::chrono::steady_clock::now();
        auto sealedAt = start;
        {
            store::StoreOptions o;
            o.mode = store::Mode::tool;
            auto st = store::Store::open(path, o);
            if (!st) {
                state.SkipWithError(st.error().message.c_str());
                fail(st.error().message);
                break;
            }
            auto n = hsectl::importRows(*gEnv->vault, **st, rows, nullptr,
                                        [&](std::size_t sealed, std::size_t total) {
                                            if (sealed == total)
                                                sealedAt = std::chrono::steady_clock::now();
                                        });
            if (!n || *n != kRows) {
                const std::string why = n ? "short import" : n.error().message;
                state.SkipWithError(why.c_str());
                fail(why);
                break;
            }
        }
        const auto end = std::chrono::steady_clock::now();
        sealSeconds += std::chrono::duration<double>(sealedAt - start).count();
        storeSeconds += std::chrono::duration<double>(end - sealedAt).count();
        state.PauseTiming();
        rows.clear();
        std::error_code ec;
        for (const char* suffix : {"", "-wal", "-shm", ".lock"})
            std::filesystem::remove(path + suffix, ec);
        state.ResumeTiming();
    }
    const double n = static_cast<double>(state.iterations());
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * kRows));
    if (n > 0) {
        state.counters["seal_s"] = sealSeconds / n;
        state.counters["store_s"] = storeSeconds / n;
    }
}

}  // namespace

int main(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv))
        return 1;
    best::log::setLevel(best::log::Level::warning);
    Env env;
    gEnv = &env;
    if (!setUp(env))
        return 1;
    benchmark::RegisterBenchmark("BM_Import10k/opc", BM_Import10k)
        ->Arg(0)
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
    benchmark::RegisterBenchmark("BM_Import10k/op", BM_Import10k)
        ->Arg(1)
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
    benchmark::RunSpecifiedBenchmarks();
    // The vault closes its sessions before the token directory goes.
    env.vault.reset();
    env.token.reset();
    benchmark::Shutdown();
    return env.failed ? 1 : 0;
}
