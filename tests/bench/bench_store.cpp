// State store benchmarks (figures for docs/state.md, not asserted):
//  - durable writes per second with group commit against one commit per write, in the same run:
//    256 resumption-nonce updates in flight at a time (what a busy daemon's loop submits), each
//    answered only once its batch is durable;
//  - import of 10,000 subscriber rows in one transaction.
// Every store lives in a fresh directory under $TMPDIR (or /tmp), removed afterwards.
#include <benchmark/benchmark.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <system_error>
#include <vector>

#include "common/log.h"
#include "store/store.h"

namespace {

using namespace best;
using namespace best::store;

class TempDir {
public:
    TempDir() {
        const char* base = std::getenv("TMPDIR");
        std::string tmpl = std::string(base != nullptr && *base != '\0' ? base : "/tmp") +
                           "/best-bench-store-XXXXXX";
        if (::mkdtemp(tmpl.data()) == nullptr) {
            throw std::system_error(errno, std::generic_category(), "mkdtemp");
        }
        path_ = tmpl;
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    std::string file(const std::string& name) const { return path_ + "/" + name; }

private:
    std::string path_;
};

WrappedBlob fakeBlob(std::uint8_t seed, std::size_t n) {
    WrappedBlob b;
    b.data.resize(n);
    b.binding.resize(32);
    for (std::size_t i = 0; i < n; ++i)
        b.data[i] = static_cast<std::uint8_t>(seed + i);
    for (std::size_t i = 0; i < 32; ++i)
        b.binding[i] = static_cast<std::uint8_t>(seed ^ i);
    return b;
}

std::string imsiOf(int i) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "00101%010d", i);
    return buf;
}

SubscriberRecord subscriberOf(int i) {
    SubscriberRecord s;
    s.imsi = imsiOf(i);
    s.externalUeId = "ue-" + std::to_string(i) + "@example.org";
    s.k = fakeBlob(static_cast<std::uint8_t>(i), 40);  // AES key wrap of 16 octets + IV
    s.opKind = OpKind::opc;
    s.op = fakeBlob(static_cast<std::uint8_t>(i + 1), 44);
    s.amf = {0x80, 0x00};
    return s;
}

// Waits for a known number of completions.
class Latch {
public:
    explicit Latch(int n) : left_(n) {}
    void countDown(bool ok) {
        std::lock_guard lock(m_);
        if (!ok)
            ++failed_;
        if (--left_ == 0)
            cv_.notify_all();
    }
    int wait() {
        std::unique_lock lock(m_);
        cv_.wait(lock, [this] { return left_ == 0; });
        return failed_;
    }

private:
    std::mutex m_;
    std::condition_variable cv_;
    int left_;
    int failed_ = 0;
};

constexpr int kKeySets = 64;
constexpr int kInFlight = 256;

// mode 0: group commit, defaults (a batch closes when the queue is empty, after 2 ms or after 256
// writes); mode 1: group commit keeping every batch open for the whole 2 ms window;
// mode 2: one commit (one fsync) per write.
void BM_DurableWrites(benchmark::State& state) {
    log::setLevel(log::Level::warning);
    TempDir dir;
    StoreOptions o;
    switch (state.range(0)) {
        case 0:
            break;
        case 1:
            o.groupCommit.closeWhenIdle = false;
            break;
        default:
            o.groupCommit.maxBatch = 1;
            break;
    }
    auto opened = Store::open(dir.file("state.db"), o);
    if (!opened) {
        state.SkipWithError(opened.error().describe().c_str());
        return;
    }
    auto& store = **opened;
    // Setup in two commits (the function runs again each time the iteration count grows).
    std::vector<SubscriberRecord> subs;
    for (int i = 0; i < kKeySets; ++i)
        subs.push_back(subscriberOf(i));
    if (!store.importSubscribers(subs)) {
        state.SkipWithError("setup failed");
        return;
    }
    Latch setup(kKeySets);
    for (int i = 0; i < kKeySets; ++i) {
        KeySetRecord k;
        k.imsi = imsiOf(i);
        k.kid = 1;
        k.hseId = "hse.example.org";
        k.kInt = fakeBlob(static_cast<std::uint8_t>(i), 40);
        store.putKeySet(std::move(k), [&setup](Result<void> r) { setup.countDown(r.has_value()); });
    }
    if (setup.wait() != 0) {
        state.SkipWithError("setup failed");
        return;
    }
    const auto before = store.writeStats();
    std::uint64_t nonce = 1;
    int failed = 0;
    for (auto _ : state) {
        Latch latch(kInFlight);
        for (int i = 0; i < kInFlight; ++i) {
            store.acceptResumptionNonce(imsiOf(i % kKeySets), 1, nonce++, [&latch](Result<void> r) {
                latch.countDown(r.has_value());
            });
        }
        failed += latch.wait();
    }
    const auto after = store.writeStats();
    const double writes = static_cast<double>(after.jobs - before.jobs);
    const double batches = static_cast<double>(after.batches - before.batches);
    state.counters["writes/s"] = benchmark::Counter(writes, benchmark::Counter::kIsRate);
    state.counters["fsyncs/s"] = benchmark::Counter(batches, benchmark::Counter::kIsRate);
    state.counters["writes/fsync"] = batches > 0 ? writes / batches : 0;
    if (failed != 0)
        state.SkipWithError("some writes failed");
}
BENCHMARK(BM_DurableWrites)
    ->ArgName("mode")
    ->Arg(0)
    ->Arg(1)
    ->Arg(2)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// One blocking caller, one write at a time: the latency a single request sees, with the default
// batching (0) and with batches kept open for the whole window (1).
void BM_DurableWriteLatency(benchmark::State& state) {
    log::setLevel(log::Level::warning);
    TempDir dir;
    StoreOptions o;
    if (state.range(0) != 0)
        o.groupCommit.closeWhenIdle = false;
    auto opened = Store::open(dir.file("state.db"), o);
    if (!opened) {
        state.SkipWithError(opened.error().describe().c_str());
        return;
    }
    auto& store = **opened;
    KeySetRecord k;
    k.imsi = imsiOf(0);
    k.kid = 1;
    k.hseId = "hse.example.org";
    k.kInt = fakeBlob(1, 40);
    if (!store.addSubscriber(subscriberOf(0)) || !store.putKeySet(k)) {
        state.SkipWithError("setup failed");
        return;
    }
    std::uint64_t nonce = 1;
    for (auto _ : state) {
        if (!store.acceptResumptionNonce(k.imsi, 1, nonce++)) {
            state.SkipWithError("write failed");
            break;
        }
    }
}
BENCHMARK(BM_DurableWriteLatency)
    ->ArgName("fullWindow")
    ->Arg(0)
    ->Arg(1)
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

void BM_Import10k(benchmark::State& state) {
    log::setLevel(log::Level::warning);
    constexpr int kRows = 10000;
    std::vector<SubscriberRecord> rows;
    rows.reserve(kRows);
    for (int i = 0; i < kRows; ++i)
        rows.push_back(subscriberOf(i));
    int run = 0;
    for (auto _ : state) {
        state.PauseTiming();
        auto dir = std::make_unique<TempDir>();
        auto opened = Store::open(dir->file("state-" + std::to_string(run++) + ".db"));
        if (!opened) {
            state.SkipWithError(opened.error().describe().c_str());
            break;
        }
        state.ResumeTiming();
        auto r = (*opened)->importSubscribers(rows);
        state.PauseTiming();
        if (!r || *r != static_cast<std::size_t>(kRows)) {
            state.SkipWithError(r ? "short import" : r.error().describe().c_str());
            break;
        }
        opened->reset();
        dir.reset();
        state.ResumeTiming();
    }
    state.counters["rows/s"] =
        benchmark::Counter(static_cast<double>(kRows) * static_cast<double>(state.iterations()),
                           benchmark::Counter::kIsRate);
}
BENCHMARK(BM_Import10k)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
