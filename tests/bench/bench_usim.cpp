// AUTHENTICATE round trips through pcscd and vpcd to best-vusim, in both response styles, with
// SQN_MS persisted (pwrite + fdatasync) before every answer; and the pieces on their own.
// Starts its own isolated pcscd + best-vusim (sim/rig/pcsc_rig.h) and stops them at exit.
// Needs root (mount namespace). Exit status 1 when a rig or an AUTHENTICATE failed.
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <sys/stat.h>

#include <array>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/hex.h"
#include "common/unique_fd.h"
#include "crypto/milenage.h"
#include "sim/rig/pcsc_rig.h"
#include "sim/usim.h"
#include "sim/vusim/card.h"
#include "sim/vusim/state_file.h"

namespace {

using namespace best;
using namespace best::sim;

// 3GPP TS 35.207 test set 1 (public test data): any key would do, the figures do not depend on it.
constexpr char kK[] = "465b5ce8b199b49faa5f0a2ee238a6bc";
constexpr char kOpc[] = "cd63cb71954a9f4e48a5994e37a02baf";
constexpr char kRand[] = "23553cbe9637a89d218ae64dae47bf35";
constexpr std::uint64_t kBaseSeq = 1000;
constexpr std::size_t kBatch = 1024;

bool gFailed = false;

struct Keys {
    SubscriberK k;
    Opc opc;
    crypto::Rand rand{};
    crypto::Amf amf{0x80, 0x00};
    Keys() {
        (void)fromHexInto(kK, "K", k.mutableView());
        (void)fromHexInto(kOpc, "OPc", opc.mutableView());
        (void)fromHexInto(kRand, "RAND", MutableByteView(rand));
    }
};
const Keys& keys() {
    static const Keys k;
    return k;
}

// AUTNs for consecutive SEQs (IND 0), computed ahead outside the timed region.
class AutnSource {
public:
    const crypto::Autn& next(benchmark::State& state) {
        if (pos_ == batch_.size()) {
            state.PauseTiming();
            refill();
            state.ResumeTiming();
        }
        return batch_[pos_++];
    }
    // Outside the timed region already.
    const crypto::Autn& nextUntimed() {
        if (pos_ == batch_.size())
            refill();
        return batch_[pos_++];
    }
    void refill() {
        crypto::SoftAes128 ek(keys().k);
        batch_.resize(kBatch);
        for (auto& a : batch_) {
            auto v = crypto::generateVector(ek, keys().opc, keys().rand,
                                            crypto::sqnFromInt(seq_++ << 5), keys().amf);
            a = v ? v->autn : crypto::Autn{};
        }
        pos_ = 0;
    }

private:
    std::vector<crypto::Autn> batch_;
    std::size_t pos_ = 0;
    std::uint64_t seq_ = kBaseSeq + 1;
};

// One rig at a time: created at the first run of a style, replaced when the style changes.
struct Bench {
    vusim::ResponseStyle style;
    std::unique_ptr<rig::PcscRig> rig;
    std::unique_ptr<UsimSession> session;
    AutnSource autns;
};
std::unique_ptr<Bench> gBench;

Bench* benchFor(vusim::ResponseStyle style, benchmark::State& state) {
    if (gBench && gBench->style == style)
        return gBench.get();
    gBench.reset();
    auto b = std::make_unique<Bench>();
    b->style = style;
    auto r = rig::PcscRig::create();
    if (!r) {
        gFailed = true;
        state.SkipWithError(("rig: " + r.error().describe()).c_str());
        return nullptr;
    }
    b->rig = std::move(*r);
    rig::VusimSettings s;
    s.kHex = kK;
    s.opcHex = kOpc;
    s.style = style;
    s.initialSeqMs[0] = kBaseSeq;
    if (auto v = b->rig->startVusim(s); !v) {
        gFailed = true;
        state.SkipWithError(("best-vusim: " + v.error().describe()).c_str());
        return nullptr;
    }
    SessionOptions o;
    o.reader.namePattern = b->rig->readerName();
    o.cardTimeout = std::chrono::seconds(5);
    auto session = UsimSession::open(o);
    if (!session) {
        gFailed = true;
        state.SkipWithError(("session: " + session.error().describe()).c_str());
        return nullptr;
    }
    b->session = std::move(*session);
    gBench = std::move(b);
    return gBench.get();
}

void authenticateThroughPcscd(benchmark::State& state, vusim::ResponseStyle style) {
    Bench* b = benchFor(style, state);
    if (!b)
        return;
    for (auto _ : state) {
        auto r = b->session->authenticate(keys().rand, b->autns.next(state));
        if (!r || !std::holds_alternative<AuthSuccess>(*r)) {
            gFailed = true;
            state.SkipWithError(r ? "AUTHENTICATE not accepted" : r.error().describe().c_str());
            break;
        }
        benchmark::DoNotOptimize(r);
    }
    state.counters["auth/s"] =
        benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

void BM_AuthenticatePcscdDirect(benchmark::State& state) {
    authenticateThroughPcscd(state, vusim::ResponseStyle::direct);
}
void BM_AuthenticatePcscdT0(benchmark::State& state) {
    authenticateThroughPcscd(state, vusim::ResponseStyle::t0);
}
BENCHMARK(BM_AuthenticatePcscdDirect)->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_AuthenticatePcscdT0)->UseRealTime()->Unit(benchmark::kMicrosecond);

// Aggregate of two cards (vpcd's two slots, two best-vusim with their own state files) driven by
// two threads through the same pcscd: what one pcscd serves when a single card is the limit.
// Reported separately from the single-card figure.
void BM_AuthenticatePcscdTwoCardsDirect(benchmark::State& state) {
    constexpr std::size_t kPerCard = 2000;
    Bench* b = benchFor(vusim::ResponseStyle::direct, state);
    if (!b)
        return;
    static rig::ChildProcess second;
    static std::unique_ptr<UsimSession> secondSession;
    if (!secondSession) {
        const std::string dir = b->rig->dir();
        const std::string conf = dir + "/vusim-2.yaml";
        std::FILE* f = std::fopen(conf.c_str(), "w");
        if (f == nullptr) {
            gFailed = true;
            state.SkipWithError("cannot write the second card's config");
            return;
        }
        std::fprintf(f,
                     "vpcd:\n  host: 127.0.0.1\n  port: %u\ncard:\n  imsi: \"001010123456780\"\n"
                     "  response_style: direct\nsubscriber:\n  k: %s\n  opc: %s\n"
                     "sqn:\n  state_file: %s/sqn-2.state\n  initial_seq_ms:\n    0: %llu\n",
                     static_cast<unsigned>(b->rig->port() + 1), kK, kOpc, dir.c_str(),
                     static_cast<unsigned long long>(kBaseSeq));
        std::fclose(f);
        ::chmod(conf.c_str(), 0600);
        auto c = rig::spawn({rig::vusimProgram(), "--config", conf}, dir + "/vusim-2.log");
        if (!c) {
            gFailed = true;
            state.SkipWithError(c.error().describe().c_str());
            return;
        }
        second = std::move(*c);
        SessionOptions o;
        o.reader.namePattern =
            b->rig->readerName().substr(0, b->rig->readerName().size() - 2) + "01";
        o.cardTimeout = std::chrono::seconds(5);
        auto s = UsimSession::open(o);
        if (!s) {
            gFailed = true;
            state.SkipWithError(("second card: " + s.error().describe()).c_str());
            return;
        }
        secondSession = std::move(*s);
    }
    static AutnSource secondAutns;
    std::atomic<bool> failed{false};
    for (auto _ : state) {
        state.PauseTiming();
        std::vector<crypto::Autn> first(kPerCard), other(kPerCard);
        for (auto& a : first)
            a = b->autns.nextUntimed();
        for (auto& a : other)
            a = secondAutns.nextUntimed();
        state.ResumeTiming();
        auto drive = [&failed](UsimSession& s, const std::vector<crypto::Autn>& autns) {
            for (const auto& a : autns) {
                auto r = s.authenticate(keys().rand, a);
                if (!r || !std::holds_alternative<AuthSuccess>(*r)) {
                    failed = true;
                    return;
                }
            }
        };
        std::thread t1(drive, std::ref(*b->session), std::cref(first));
        std::thread t2(drive, std::ref(*secondSession), std::cref(other));
        t1.join();
        t2.join();
    }
    if (failed) {
        gFailed = true;
        state.SkipWithError("AUTHENTICATE not accepted");
    }
    state.counters["auth/s"] = benchmark::Counter(
        static_cast<double>(state.iterations() * 2 * kPerCard), benchmark::Counter::kIsRate);
    if (state.thread_index() == 0 && state.iterations() > 0) {
        secondSession.reset();
        second.stop(std::chrono::seconds(2));
    }
}
BENCHMARK(BM_AuthenticatePcscdTwoCardsDirect)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond)
    ->Iterations(2);

// The card logic alone (Milenage, SQN array, response), with and without the state file.
void cardInProcess(benchmark::State& state, bool persist) {
    gBench.reset();  // no rig needed
    namespace fs = std::filesystem;
    std::string dir = (fs::temp_directory_path() / "bench-usim.XXXXXX").string();
    if (!::mkdtemp(dir.data())) {
        gFailed = true;
        state.SkipWithError("mkdtemp failed");
        return;
    }
    vusim::SqnArray init;
    (void)init.setSeq(0, kBaseSeq);
    std::optional<vusim::SqnStateFile> file;
    if (persist) {
        auto f = vusim::SqnStateFile::open(dir + "/sqn.state", init);
        if (!f) {
            gFailed = true;
            state.SkipWithError(f.error().describe().c_str());
            return;
        }
        file.emplace(std::move(*f));
    }
    vusim::CardProfile p;
    p.imsi = "001010123456789";
    p.iccid = "89990100000000000001";
    auto card = vusim::VirtualUsim::create(p, keys().k, keys().opc, init, file ? &*file : nullptr);
    if (!card) {
        gFailed = true;
        state.SkipWithError(card.error().describe().c_str());
        return;
    }
    std::array<std::uint8_t, kMaxResponse> out{};
    const Bytes select = *fromHex("00a4040c07a0000000871002", "select");
    card->process(select, out);
    AutnSource autns;
    std::array<std::uint8_t, 40> cmd{0x00, 0x88, 0x00, 0x81, 0x22, 0x10};
    std::copy(keys().rand.begin(), keys().rand.end(), cmd.begin() + 6);
    cmd[22] = 0x10;
    for (auto _ : state) {
        const auto& autn = autns.next(state);
        std::copy(autn.begin(), autn.end(), cmd.begin() + 23);
        std::size_t n = card->process(ByteView(cmd.data(), 40), out);
        if (n < 2 || out[0] != 0xDB) {
            gFailed = true;
            state.SkipWithError("AUTHENTICATE not accepted");
            break;
        }
    }
    std::error_code ec;
    file.reset();
    fs::remove_all(dir, ec);
}
void BM_CardAuthenticatePersisted(benchmark::State& state) {
    cardInProcess(state, true);
}
void BM_CardAuthenticateMemoryOnly(benchmark::State& state) {
    cardInProcess(state, false);
}
BENCHMARK(BM_CardAuthenticatePersisted)->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_CardAuthenticateMemoryOnly)->UseRealTime()->Unit(benchmark::kMicrosecond);

// Ways to make one 4 KiB in-place write of an already allocated file durable, on the disk that
// holds TMPDIR (the state file's own way is pwrite + fdatasync, see BM_CardAuthenticatePersisted).
enum class DurableWrite { pwriteFdatasync, oDsync, rwfDsync, syncFileRange };

void durableWrite(benchmark::State& state, DurableWrite how) {
    gBench.reset();  // no rig needed
    namespace fs = std::filesystem;
    std::string path = (fs::temp_directory_path() / "bench-usim-write.XXXXXX").string();
    int tmp = ::mkstemp(path.data());
    std::array<std::uint8_t, 8192> image{};
    bool ok = tmp >= 0 && ::write(tmp, image.data(), image.size()) == 8192 && ::fsync(tmp) == 0;
    if (tmp >= 0)
        ::close(tmp);
    UniqueFd fd(
        ok ? ::open(path.c_str(), O_RDWR | O_CLOEXEC | (how == DurableWrite::oDsync ? O_DSYNC : 0))
           : -1);
    if (!fd.isValid()) {
        gFailed = true;
        state.SkipWithError("cannot create the file under TMPDIR");
        ::unlink(path.c_str());
        return;
    }
    std::uint64_t generation = 0;
    for (auto _ : state) {
        ++generation;
        std::memcpy(image.data(), &generation, sizeof generation);
        const off_t off = static_cast<off_t>((generation % 2) * 4096);
        bool done = false;
        switch (how) {
            case DurableWrite::pwriteFdatasync:
                done = ::pwrite(fd.get(), image.data(), 4096, off) == 4096 &&
                       ::fdatasync(fd.get()) == 0;
                break;
            case DurableWrite::oDsync:
                done = ::pwrite(fd.get(), image.data(), 4096, off) == 4096;
                break;
            case DurableWrite::rwfDsync: {
                iovec v{image.data(), 4096};
                done = ::pwritev2(fd.get(), &v, 1, off, RWF_DSYNC) == 4096;
                break;
            }
            case DurableWrite::syncFileRange:
                done = ::pwrite(fd.get(), image.data(), 4096, off) == 4096 &&
                       ::sync_file_range(fd.get(), off, 4096,
                                         SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
                                             SYNC_FILE_RANGE_WAIT_AFTER) == 0 &&
                       ::fdatasync(fd.get()) == 0;
                break;
        }
        if (!done) {
            gFailed = true;
            state.SkipWithError("write failed");
            break;
        }
    }
    fd.reset();
    ::unlink(path.c_str());
}
void BM_StateWritePwriteFdatasync(benchmark::State& state) {
    durableWrite(state, DurableWrite::pwriteFdatasync);
}
void BM_StateWriteODsync(benchmark::State& state) {
    durableWrite(state, DurableWrite::oDsync);
}
void BM_StateWriteRwfDsync(benchmark::State& state) {
    durableWrite(state, DurableWrite::rwfDsync);
}
void BM_StateWriteSyncFileRange(benchmark::State& state) {
    durableWrite(state, DurableWrite::syncFileRange);
}
BENCHMARK(BM_StateWritePwriteFdatasync)->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_StateWriteODsync)->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_StateWriteRwfDsync)->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_StateWriteSyncFileRange)->UseRealTime()->Unit(benchmark::kMicrosecond);

}  // namespace

int main(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv))
        return 2;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    gBench.reset();  // stops best-vusim and pcscd
    if (gFailed)
        std::fputs("bench_usim: a benchmark failed (see above)\n", stderr);
    return gFailed ? 1 : 0;
}
