// SQN = SEQ || IND (profile section 9): reservations, durability across reopen, resync, set,
// IND handling, exhaustion, and two stores on one file never sharing an SQN.
#include <algorithm>
#include <future>
#include <map>
#include <mutex>
#include <numeric>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "store_test_util.h"

namespace best::store::test {
namespace {

constexpr const char* kImsi = "001010000000001";

StoreOptions sqnOptions(std::uint32_t batch, std::uint32_t ind = 0) {
    auto o = fastOptions();
    o.sqn.batchSize = batch;
    o.sqn.ind = ind;
    return o;
}

TEST(StoreSqnHelpers, ComposeAndSplit) {
    EXPECT_EQ(composeSqn(1, 0, 5), 0x20u);
    EXPECT_EQ(composeSqn(1, 3, 5), 0x23u);
    EXPECT_EQ(seqOf(0x23, 5), 1u);
    EXPECT_EQ(indOf(0x23, 5), 3u);
    EXPECT_EQ(maxSeq(5), (std::uint64_t{1} << 43) - 1);
    EXPECT_EQ(maxSeq(0), (std::uint64_t{1} << 48) - 1);
    EXPECT_EQ(composeSqn(maxSeq(5), 31, 5), (std::uint64_t{1} << 48) - 1);
    const crypto::Sqn b = sqnToBytes(0x0123456789ab);
    EXPECT_EQ(b, (crypto::Sqn{0x01, 0x23, 0x45, 0x67, 0x89, 0xab}));
    EXPECT_EQ(sqnFromBytes(b), 0x0123456789abu);
    // Same layout as the crypto helpers.
    EXPECT_EQ(crypto::sqnToInt(b), sqnFromBytes(b));
    EXPECT_EQ(crypto::sqnFromInt(0x0123456789ab), b);
}

TEST(StoreSqn, FirstVectorHasSeq1AndEachTakesTheNext) {
    TempDir dir;
    auto s = openOrDie(dir.file("state.db"), sqnOptions(10));
    ASSERT_NE(s, nullptr);
    ASSERT_TRUE(s->addSubscriber(subscriber(kImsi)).has_value());
    for (std::uint64_t i = 1; i <= 25; ++i) {
        auto g = s->sqn().allocate(std::string_view(kImsi));
        ASSERT_TRUE(g.has_value()) << g.error().describe();
        EXPECT_EQ(g->seq, i);
        EXPECT_EQ(g->ind, 0u);
        EXPECT_EQ(g->indBits, 5);
        EXPECT_EQ(sqnFromBytes(g->sqn), i << 5);
    }
    // 25 grants with batches of 10: three reservations, durable before the grants.
    auto st = s->getSqnState(kImsi);
    ASSERT_TRUE(st.has_value());
    EXPECT_EQ(st->seqHe, 30u);
    EXPECT_EQ(st->reservations, 3u);
    EXPECT_EQ(st->lastChange, "reserve");
    EXPECT_EQ(s->sqn().reservationsMade(), 3u);
}

TEST(StoreSqn, ReopenContinuesAboveTheReservedValue) {
    TempDir dir;
    const auto path = dir.file("state.db");
    {
        auto s = openOrDie(path, sqnOptions(100));
        ASSERT_NE(s, nullptr);
        ASSERT_TRUE(s->addSubscriber(subscriber(kImsi)).has_value());
        for (int i = 0; i < 3; ++i)
            ASSERT_TRUE(s->sqn().allocate(std::string_view(kImsi)));
    }  // "crash": the unused rest of 1..100 is never handed out
    auto s = openOrDie(path, sqnOptions(100));
    ASSERT_NE(s, nullptr);
    auto g = s->sqn().allocate(std::string_view(kImsi));
    ASSERT_TRUE(g.has_value());
    EXPECT_EQ(g->seq, 101u);
    EXPECT_EQ(s->getSqnState(kImsi)->seqHe, 200u);
}

TEST(StoreSqn, ProvisionedStartAndOperatorSet) {
    TempDir dir;
    auto s = openOrDie(dir.file("state.db"), sqnOptions(5));
    ASSERT_NE(s, nullptr);
    ASSERT_TRUE(s->addSubscriber(subscriber(kImsi), 41).has_value());
    EXPECT_EQ(s->getSqnState(kImsi)->lastChange, "provision");
    EXPECT_EQ(s->sqn().allocate(std::string_view(kImsi))->seq, 42u);

    ASSERT_TRUE(s->sqn().setSeqHe(kImsi, 1000).has_value());
    auto st = s->getSqnState(kImsi);
    EXPECT_EQ(st->seqHe, 1000u);
    EXPECT_EQ(st->lastChange, "set");
    // The in-memory rest of the old range (43..46) is dropped.
    EXPECT_EQ(s->sqn().allocate(std::string_view(kImsi))->seq, 1001u);
    // Set may lower SEQ_HE (operator repair); allocation follows it.
    ASSERT_TRUE(s->sqn().setSeqHe(kImsi, 7).has_value());
    EXPECT_EQ(s->sqn().allocate(std::string_view(kImsi))->seq, 8u);

    EXPECT_STORE_ERROR(s->sqn().setSeqHe(kImsi, maxSeq(5) + 1), StoreErrc::invalid_argument);
    EXPECT_STORE_ERROR(s->sqn().setSeqHe("001010000000002", 5), StoreErrc::not_found);
    EXPECT_STORE_ERROR(s->sqn().setSeqHe("abc", 5), StoreErrc::invalid_argument);
}

TEST(StoreSqn, ResyncSetsSeqHeFromSqnMs) {
    TempDir dir;
    const auto path = dir.file("state.db");
    auto s = openOrDie(path, sqnOptions(1000, 3));
    ASSERT_NE(s, nullptr);
    ASSERT_TRUE(s->addSubscriber(subscriber(kImsi)).has_value());
    ASSERT_EQ(s->sqn().allocate(std::string_view(kImsi))->seq, 1u);

    // The USIM reports SQN_MS = SEQ 5000 with IND 7: next = (5000 + 1) || IND_HE (3).
    const crypto::Sqn sqnMs = sqnToBytes(composeSqn(5000, 7, 5));
    ASSERT_TRUE(s->sqn().resync(kImsi, sqnMs).has_value());
    auto st = s->getSqnState(kImsi);
    EXPECT_EQ(st->seqHe, 5000u);
    EXPECT_EQ(st->lastChange, "resync");
    auto g = s->sqn().allocate(std::string_view(kImsi));
    ASSERT_TRUE(g.has_value());
    EXPECT_EQ(g->seq, 5001u);
    EXPECT_EQ(g->ind, 3u);
    EXPECT_EQ(sqnFromBytes(g->sqn), composeSqn(5001, 3, 5));

    // A resync that lowers SEQ_HE is allowed (TS 33.102: the USIM never accepted the rest).
    std::promise<Result<void>> p;
    s->sqn().resync(kImsi, sqnToBytes(composeSqn(10, 0, 5)),
                    [&](Result<void> r) { p.set_value(r); });
    ASSERT_TRUE(p.get_future().get().has_value());
    EXPECT_EQ(s->sqn().allocate(std::string_view(kImsi))->seq, 11u);

    // Durable: a fresh process continues above the resynchronised reservation.
    s.reset();
    s = openOrDie(path, sqnOptions(1000, 3));
    ASSERT_NE(s, nullptr);
    EXPECT_EQ(s->sqn().allocate(std::string_view(kImsi))->seq, 1011u);
    EXPECT_STORE_ERROR(s->sqn().resync("001010000000002", sqnMs), StoreErrc::not_found);
}

TEST(StoreSqn, IndMustFitTheSubscribersIndBits) {
    TempDir dir;
    auto s = openOrDie(dir.file("state.db"), sqnOptions(10, 4));
    ASSERT_NE(s, nullptr);
    auto sub = subscriber(kImsi);
    sub.indBits = 2;  // IND 0..3
    ASSERT_TRUE(s->addSubscriber(sub).has_value());
    auto g = s->sqn().allocate(std::string_view(kImsi));
    EXPECT_STORE_ERROR(g, StoreErrc::invalid_argument);
    EXPECT_EQ(g.error().message,
              "the HSE's IND value 4 does not fit in the 2 IND bits of subscriber "
              "001010000000001");
    EXPECT_EQ(s->getSqnState(kImsi)->seqHe, 0u);  // nothing reserved

    auto sub0 = subscriber("001010000000002");
    sub0.externalUeId.reset();
    sub0.indBits = 0;
    ASSERT_TRUE(s->addSubscriber(sub0).has_value());
    EXPECT_STORE_ERROR(s->sqn().allocate(std::string_view("001010000000002")),
                       StoreErrc::invalid_argument);
}

TEST(StoreSqn, ZeroIndBitsUseTheWholeSqnAsSeq) {
    TempDir dir;
    auto s = openOrDie(dir.file("state.db"), sqnOptions(10, 0));
    ASSERT_NE(s, nullptr);
    auto sub = subscriber(kImsi);
    sub.indBits = 0;
    ASSERT_TRUE(s->addSubscriber(sub).has_value());
    auto g = s->sqn().allocate(std::string_view(kImsi));
    ASSERT_TRUE(g.has_value());
    EXPECT_EQ(sqnFromBytes(g->sqn), 1u);
}

TEST(StoreSqn, ExhaustionIsAnErrorNotAWrap) {
    TempDir dir;
    auto s = openOrDie(dir.file("state.db"), sqnOptions(1000));
    ASSERT_NE(s, nullptr);
    ASSERT_TRUE(s->addSubscriber(subscriber(kImsi), maxSeq(5) - 2).has_value());
    EXPECT_EQ(s->sqn().allocate(std::string_view(kImsi))->seq, maxSeq(5) - 1);
    auto last = s->sqn().allocate(std::string_view(kImsi));
    ASSERT_TRUE(last.has_value());
    EXPECT_EQ(last->seq, maxSeq(5));
    EXPECT_EQ(sqnFromBytes(last->sqn), composeSqn(maxSeq(5), 0, 5));
    EXPECT_STORE_ERROR(s->sqn().allocate(std::string_view(kImsi)), StoreErrc::sqn_exhausted);
    EXPECT_EQ(s->getSqnState(kImsi)->seqHe, maxSeq(5));
}

TEST(StoreSqn, ConcurrentCallersGetDistinctIncreasingGrants) {
    TempDir dir;
    auto s = openOrDie(dir.file("state.db"), sqnOptions(7));
    ASSERT_NE(s, nullptr);
    ASSERT_TRUE(s->addSubscriber(subscriber(kImsi)).has_value());
    constexpr int kThreads = 8;
    constexpr int kEach = 60;
    std::vector<std::vector<std::uint64_t>> got(kThreads);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&, t] {
            for (int i = 0; i < kEach; ++i) {
                auto g = s->sqn().allocate(std::string_view(kImsi));
                if (g)
                    got[t].push_back(g->seq);
            }
        });
    }
    for (auto& t : threads)
        t.join();
    std::set<std::uint64_t> all;
    for (const auto& v : got) {
        ASSERT_EQ(v.size(), static_cast<std::size_t>(kEach));
        EXPECT_TRUE(std::is_sorted(v.begin(), v.end()));
        all.insert(v.begin(), v.end());
    }
    EXPECT_EQ(all.size(), static_cast<std::size_t>(kThreads * kEach));
    EXPECT_EQ(*all.begin(), 1u);
    EXPECT_EQ(*all.rbegin(), static_cast<std::uint64_t>(kThreads * kEach));
    EXPECT_GE(s->getSqnState(kImsi)->seqHe, static_cast<std::uint64_t>(kThreads * kEach));
}

TEST(StoreSqn, AsyncCallbacksArriveInOrderAcrossReservations) {
    TempDir dir;
    auto s = openOrDie(dir.file("state.db"), sqnOptions(3));
    ASSERT_NE(s, nullptr);
    ASSERT_TRUE(s->addSubscriber(subscriber(kImsi)).has_value());
    std::mutex m;
    std::vector<std::uint64_t> seqs;
    std::promise<void> all;
    constexpr int kN = 20;
    for (int i = 0; i < kN; ++i) {
        s->sqn().allocate(std::string(kImsi), [&](Result<SqnGrant> g) {
            std::lock_guard lock(m);
            seqs.push_back(g ? g->seq : 0);
            if (seqs.size() == kN)
                all.set_value();
        });
    }
    all.get_future().wait();
    std::vector<std::uint64_t> expected(kN);
    std::iota(expected.begin(), expected.end(), 1);
    EXPECT_EQ(seqs, expected);
}

TEST(StoreSqn, TwoStoresOnOneFileNeverShareAnSqn) {
    // Two tools (shared lock each) stand for two processes: separate connections, separate
    // in-memory ranges, one file. Reservations are BEGIN IMMEDIATE transactions.
    TempDir dir;
    const auto path = dir.file("state.db");
    auto a = openOrDie(path, [] {
        auto o = sqnOptions(5);
        o.mode = Mode::tool;
        return o;
    }());
    auto b = openOrDie(path, [] {
        auto o = sqnOptions(3);
        o.mode = Mode::tool;
        return o;
    }());
    ASSERT_NE(a, nullptr);
    ASSERT_NE(b, nullptr);
    ASSERT_TRUE(a->addSubscriber(subscriber(kImsi)).has_value());
    std::vector<std::uint64_t> fromA, fromB;
    std::thread ta([&] {
        for (int i = 0; i < 150; ++i) {
            if (auto g = a->sqn().allocate(std::string_view(kImsi)))
                fromA.push_back(g->seq);
        }
    });
    std::thread tb([&] {
        for (int i = 0; i < 150; ++i) {
            if (auto g = b->sqn().allocate(std::string_view(kImsi)))
                fromB.push_back(g->seq);
        }
    });
    ta.join();
    tb.join();
    ASSERT_EQ(fromA.size(), 150u);
    ASSERT_EQ(fromB.size(), 150u);
    EXPECT_TRUE(std::is_sorted(fromA.begin(), fromA.end()));
    EXPECT_TRUE(std::is_sorted(fromB.begin(), fromB.end()));
    std::set<std::uint64_t> all(fromA.begin(), fromA.end());
    all.insert(fromB.begin(), fromB.end());
    EXPECT_EQ(all.size(), 300u);
}

TEST(StoreSqn, BlockingAllocationFromACompletionIsRefused) {
    TempDir dir;
    auto s = openOrDie(dir.file("state.db"), sqnOptions(3));
    ASSERT_NE(s, nullptr);
    ASSERT_TRUE(s->addSubscriber(subscriber(kImsi)).has_value());
    std::promise<Result<SqnGrant>> inner;
    s->incrementUseCount(kImsi, 1, [&](Result<void>) {
        inner.set_value(s->sqn().allocate(std::string_view(kImsi)));  // on the writer thread
    });
    auto r = inner.get_future().get();
    EXPECT_STORE_ERROR(r, StoreErrc::internal);
    EXPECT_NE(r.error().message.find("completion"), std::string::npos);
}

// The in-memory ranges are bounded (SqnOptions::maxRanges): idle ones are forgotten, and a
// forgotten subscriber's next SQN comes from a new durable reservation above the old range (its
// unused values are never handed out).
TEST(StoreSqn, RangesAreBoundedAndAForgottenRangeIsNeverReused) {
    TempDir dir;
    auto o = sqnOptions(100);
    o.sqn.maxRanges = 8;
    auto s = openOrDie(dir.file("state.db"), o);
    ASSERT_NE(s, nullptr);
    std::vector<std::string> imsis;
    for (int i = 0; i < 20; ++i) {
        imsis.push_back("00101000000" + std::to_string(1000 + i));
        ASSERT_TRUE(s->addSubscriber(subscriber(imsis.back())).has_value());
    }
    std::map<std::string, std::uint64_t> last;
    for (const auto& imsi : imsis) {
        auto g = s->sqn().allocate(std::string_view(imsi));
        ASSERT_TRUE(g.has_value()) << g.error().describe();
        EXPECT_EQ(g->seq, 1u);
        last[imsi] = g->seq;
        EXPECT_LE(s->sqn().rangesHeld(), 8u);
    }
    EXPECT_GE(s->sqn().rangesForgotten(), 12u);
    EXPECT_EQ(s->sqn().rangesHeld() + s->sqn().rangesForgotten(), 20u);
    EXPECT_EQ(s->sqn().reservationsMade(), 20u);
    // Every subscriber again: a kept range goes on (2), a forgotten one reserves 101..200.
    std::size_t fresh = 0;
    for (const auto& imsi : imsis) {
        auto g = s->sqn().allocate(std::string_view(imsi));
        ASSERT_TRUE(g.has_value()) << g.error().describe();
        EXPECT_GT(g->seq, last[imsi]);
        EXPECT_TRUE(g->seq == 2 || g->seq == 101) << imsi << " got SEQ " << g->seq;
        if (g->seq == 101) {
            ++fresh;
            EXPECT_EQ(s->getSqnState(imsi)->seqHe, 200u);
        }
    }
    EXPECT_GE(fresh, 12u);
    EXPECT_EQ(s->sqn().reservationsMade(), 20u + fresh);
}

}  // namespace
}  // namespace best::store::test
