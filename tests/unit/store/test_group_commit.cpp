// Group commit: many concurrent writers, completions only once the batch is committed, batch
// limits (window, maxBatch), one failing job does not spoil its batch, shutdown drains.
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <future>
#include <set>
#include <stdexcept>
#include <thread>

#include "store_test_util.h"

namespace best::store::test {
namespace {

// A writer on a fresh file with one table t(id INTEGER PRIMARY KEY).
std::unique_ptr<GroupCommitWriter> makeWriter(const std::string& path, GroupCommitOptions o) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT, 0600);
    EXPECT_GE(fd, 0);
    ::close(fd);
    auto c = Connection::open(path, Connection::Role::writer, std::chrono::seconds(5));
    EXPECT_TRUE(c.has_value());
    if (!c)
        return nullptr;
    EXPECT_TRUE((*c)->exec("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY)").has_value());
    return std::make_unique<GroupCommitWriter>(std::move(*c), o);
}

GroupCommitWriter::Job insert(std::int64_t id) {
    return [id](Connection& c) -> Result<void> {
        auto st = c.prepare("INSERT INTO t (id) VALUES (?1)");
        if (!st)
            return makeError(std::move(st.error()));
        st->bind(1, id);
        return st->run();
    };
}

// Rows as a separate connection sees them (i.e. committed rows).
std::set<std::int64_t> committedRows(const std::string& path) {
    std::set<std::int64_t> out;
    auto c = Connection::open(path, Connection::Role::reader, std::chrono::seconds(5));
    EXPECT_TRUE(c.has_value());
    if (!c)
        return out;
    auto st = (*c)->prepare("SELECT id FROM t");
    EXPECT_TRUE(st.has_value());
    for (;;) {
        auto row = st->step();
        EXPECT_TRUE(row.has_value());
        if (!row || !*row)
            break;
        out.insert(st->int64(0));
    }
    return out;
}

TEST(StoreGroupCommit, ManyConcurrentWritersAllCompleteInFewerBatchesThanWrites) {
    TempDir dir;
    const auto path = dir.file("gc.db");
    auto w = makeWriter(path, GroupCommitOptions{});  // defaults: 2 ms, 256
    ASSERT_NE(w, nullptr);
    constexpr int kThreads = 16;
    constexpr int kEach = 100;
    std::atomic<int> ok{0};
    std::atomic<int> failed{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&, t] {
            // Each thread keeps a window of writes in flight, like request handlers would.
            std::vector<std::future<Result<void>>> inflight;
            for (int i = 0; i < kEach; ++i) {
                inflight.push_back(w->submit(insert(t * kEach + i)));
                if (inflight.size() == 10) {
                    for (auto& f : inflight)
                        (f.get() ? ok : failed)++;
                    inflight.clear();
                }
            }
            for (auto& f : inflight)
                (f.get() ? ok : failed)++;
        });
    }
    for (auto& t : threads)
        t.join();
    EXPECT_EQ(ok.load(), kThreads * kEach);
    EXPECT_EQ(failed.load(), 0);
    const auto stats = w->stats();
    EXPECT_EQ(stats.jobs, static_cast<std::uint64_t>(kThreads * kEach));
    EXPECT_EQ(stats.failedJobs, 0u);
    EXPECT_EQ(stats.failedBatches, 0u);
    // The point of group commit: far fewer COMMITs (fsyncs) than writes.
    EXPECT_LT(stats.batches * 4, stats.jobs) << "batches " << stats.batches;
    EXPECT_GT(stats.largestBatch, 1u);
    w.reset();
    const auto rows = committedRows(path);
    EXPECT_EQ(rows.size(), static_cast<std::size_t>(kThreads * kEach));
}

TEST(StoreGroupCommit, ManyThreadsAddingSubscribersThroughTheStore) {
    TempDir dir;
    auto s = openOrDie(dir.file("state.db"), StoreOptions{});  // default 2 ms window
    ASSERT_NE(s, nullptr);
    constexpr int kThreads = 12;
    constexpr int kEach = 25;
    std::atomic<int> ok{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&, t] {
            for (int i = 0; i < kEach; ++i) {
                char imsi[16];
                std::snprintf(imsi, sizeof imsi, "00101%04d%06d", t, i);
                if (s->addSubscriber(subscriber(imsi)))
                    ok++;
            }
        });
    }
    for (auto& t : threads)
        t.join();
    EXPECT_EQ(ok.load(), kThreads * kEach);
    EXPECT_EQ(s->countSubscribers().value(), static_cast<std::uint64_t>(kThreads * kEach));
    const auto stats = s->writeStats();
    EXPECT_EQ(stats.jobs, static_cast<std::uint64_t>(kThreads * kEach));
    EXPECT_LT(stats.batches, stats.jobs);
}

TEST(StoreGroupCommit, CompletionRunsOnlyOnceTheRowIsCommitted) {
    TempDir dir;
    const auto path = dir.file("gc.db");
    GroupCommitOptions o;
    o.window = std::chrono::milliseconds(30);  // keep the batch open a while
    o.closeWhenIdle = false;
    auto w = makeWriter(path, o);
    ASSERT_NE(w, nullptr);
    std::promise<bool> seen;
    std::atomic<bool> done{false};
    w->submit(insert(1), [&](Result<void> r) {
        EXPECT_TRUE(r.has_value());
        done = true;
        // Another connection already sees the row: the COMMIT has returned.
        seen.set_value(committedRows(path).count(1) == 1);
    });
    // While the batch is open the row is invisible to others and no completion has run.
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    if (!done) {
        EXPECT_EQ(committedRows(path).count(1), 0u);
    }
    EXPECT_TRUE(seen.get_future().get());
}

TEST(StoreGroupCommit, BatchClosesAtMaxBatch) {
    TempDir dir;
    GroupCommitOptions o;
    o.window = std::chrono::seconds(10);  // only the size limit can close these batches quickly
    o.closeWhenIdle = false;
    o.maxBatch = 10;
    auto w = makeWriter(dir.file("gc.db"), o);
    ASSERT_NE(w, nullptr);
    std::vector<std::future<Result<void>>> fs;
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < 30; ++i)
        fs.push_back(w->submit(insert(i)));
    for (auto& f : fs)
        EXPECT_TRUE(f.get().has_value());
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
    const auto stats = w->stats();
    EXPECT_EQ(stats.batches, 3u);
    EXPECT_EQ(stats.largestBatch, 10u);
}

TEST(StoreGroupCommit, WithoutCloseWhenIdleABatchStaysOpenForTheWindow) {
    TempDir dir;
    GroupCommitOptions o;
    o.window = std::chrono::milliseconds(40);
    o.closeWhenIdle = false;
    auto w = makeWriter(dir.file("gc.db"), o);
    ASSERT_NE(w, nullptr);
    const auto start = std::chrono::steady_clock::now();
    auto f1 = w->submit(insert(1));
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    auto f2 = w->submit(insert(2));  // joins the open batch
    EXPECT_TRUE(f1.get().has_value());
    EXPECT_TRUE(f2.get().has_value());
    EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(35));
    EXPECT_EQ(w->stats().batches, 1u);
    EXPECT_EQ(w->stats().jobs, 2u);
}

TEST(StoreGroupCommit, ByDefaultABatchClosesWhenTheQueueIsEmpty) {
    TempDir dir;
    GroupCommitOptions o;
    EXPECT_TRUE(o.closeWhenIdle);
    EXPECT_EQ(o.window, std::chrono::milliseconds(2));
    EXPECT_EQ(o.maxBatch, 256u);
    o.window = std::chrono::seconds(10);  // an upper bound only
    auto w = makeWriter(dir.file("gc.db"), o);
    ASSERT_NE(w, nullptr);
    const auto start = std::chrono::steady_clock::now();
    EXPECT_TRUE(w->run(insert(1)).has_value());
    EXPECT_TRUE(w->run(insert(2)).has_value());
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
    EXPECT_EQ(w->stats().batches, 2u);
}

TEST(StoreGroupCommit, OneFailingJobIsRolledBackAloneInItsBatch) {
    TempDir dir;
    const auto path = dir.file("gc.db");
    GroupCommitOptions o;
    o.window = std::chrono::milliseconds(50);
    o.closeWhenIdle = false;  // all four jobs in one batch
    auto w = makeWriter(path, o);
    ASSERT_NE(w, nullptr);
    auto a = w->submit(insert(1));
    // Inserts 2, then fails: its own insert of 2 must be undone.
    auto bad = w->submit([](Connection& c) -> Result<void> {
        if (auto r = insert(2)(c); !r)
            return r;
        return insert(1)(c);  // duplicate primary key
    });
    auto thrower = w->submit([](Connection&) -> Result<void> { throw std::runtime_error("boom"); });
    auto b = w->submit(insert(3));
    EXPECT_TRUE(a.get().has_value());
    EXPECT_STORE_ERROR(bad.get(), StoreErrc::duplicate);
    auto t = thrower.get();
    EXPECT_STORE_ERROR(t, StoreErrc::internal);
    EXPECT_NE(t.error().message.find("boom"), std::string::npos);
    EXPECT_TRUE(b.get().has_value());
    EXPECT_EQ(w->stats().batches, 1u);
    EXPECT_EQ(w->stats().failedJobs, 2u);
    w.reset();
    EXPECT_EQ(committedRows(path), (std::set<std::int64_t>{1, 3}));
}

TEST(StoreGroupCommit, ShutdownRunsEveryQueuedWrite) {
    TempDir dir;
    const auto path = dir.file("gc.db");
    GroupCommitOptions o;
    o.window = std::chrono::milliseconds(20);
    auto w = makeWriter(path, o);
    ASSERT_NE(w, nullptr);
    std::atomic<int> ok{0};
    for (int i = 0; i < 500; ++i) {
        w->submit(insert(i), [&](Result<void> r) {
            if (r)
                ok++;
        });
    }
    w.reset();
    EXPECT_EQ(ok.load(), 500);
    EXPECT_EQ(committedRows(path).size(), 500u);
}

TEST(StoreGroupCommit, BlockingRunFromACompletionIsRefused) {
    TempDir dir;
    auto w = makeWriter(dir.file("gc.db"), GroupCommitOptions{});
    ASSERT_NE(w, nullptr);
    std::promise<Result<void>> inner;
    w->submit(insert(1), [&](Result<void>) { inner.set_value(w->run(insert(2))); });
    EXPECT_STORE_ERROR(inner.get_future().get(), StoreErrc::internal);
}

TEST(StoreGroupCommit, BusyDatabaseFailsTheBatchWithABusyError) {
    TempDir dir;
    const auto path = dir.file("gc.db");
    auto w = makeWriter(path, GroupCommitOptions{});
    ASSERT_NE(w, nullptr);
    w.reset();
    auto holder = Connection::open(path, Connection::Role::writer, std::chrono::seconds(1));
    ASSERT_TRUE(holder.has_value());
    ASSERT_TRUE((*holder)->exec("BEGIN IMMEDIATE").has_value());  // another writer holds it

    auto c = Connection::open(path, Connection::Role::writer, std::chrono::milliseconds(50));
    ASSERT_TRUE(c.has_value());
    GroupCommitWriter w2(std::move(*c), GroupCommitOptions{});
    auto r = w2.run(insert(7));
    EXPECT_STORE_ERROR(r, StoreErrc::busy);
    EXPECT_NE(r.error().message.find("cannot start a write transaction"), std::string::npos);
    EXPECT_EQ(w2.stats().failedBatches, 1u);
    ASSERT_TRUE((*holder)->exec("ROLLBACK").has_value());
    EXPECT_TRUE(w2.run(insert(7)).has_value());
}

}  // namespace
}  // namespace best::store::test
