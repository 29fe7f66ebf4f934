// The writer thread: owns the one writer connection and commits jobs in groups. A batch opens
// with the first queued job (BEGIN IMMEDIATE), runs each job in its own SAVEPOINT (a failing job
// is rolled back alone and gets its error), and closes when `window` has passed since it opened,
// when `maxBatch` jobs ran, or (closeWhenIdle) when the queue is empty; then one COMMIT (one WAL
// fsync with synchronous=FULL) makes the whole batch durable, and only after that are the jobs'
// completions called.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "common/result.h"
#include "store/connection.h"

namespace best::store {

struct GroupCommitOptions {
    // The longest a batch stays open after its first job (default 2 ms).
    std::chrono::microseconds window{2000};
    // A batch closes at once when it has run this many jobs (default 256). 1 means one commit
    // (one fsync) per write.
    std::size_t maxBatch = 256;
    // Close the batch as soon as no job is queued instead of waiting out the window. Jobs that
    // arrive during the COMMIT's fsync form the next batch, so batches still grow with load;
    // measured here (bench_store) this beats waiting both in latency and in writes/s. false
    // keeps every batch open for the whole window (fewer fsyncs at low load).
    bool closeWhenIdle = true;
};

struct GroupCommitStats {
    std::uint64_t batches = 0;  // COMMITs attempted, i.e. WAL fsyncs
    std::uint64_t jobs = 0;     // jobs run (successful or not)
    std::uint64_t failedJobs = 0;
    std::uint64_t failedBatches = 0;  // BEGIN or COMMIT failed: every job of the batch failed
    std::size_t largestBatch = 0;
};

class GroupCommitWriter {
public:
    using Job = std::function<Result<void>(Connection&)>;
    // Called on the writer thread once the job's batch is durable (or failed). Must not block
    // and must not make blocking store calls (those are refused with StoreErrc::internal).
    using Completion = std::function<void(Result<void>)>;

    GroupCommitWriter(std::unique_ptr<Connection> writer, GroupCommitOptions options);
    GroupCommitWriter(const GroupCommitWriter&) = delete;
    GroupCommitWriter& operator=(const GroupCommitWriter&) = delete;
    // Runs every job already queued, then stops the thread.
    ~GroupCommitWriter();

    // Queues a job; `done` is called exactly once (at once with StoreErrc::closed when the
    // writer is stopping).
    void submit(Job job, Completion done);
    // Queues a job and returns true, or returns false when the writer is stopping, leaving `job`
    // and `done` untouched and uncalled (for callers that hold a lock `done` would take).
    bool trySubmit(Job&& job, Completion&& done);
    std::future<Result<void>> submit(Job job);
    // submit() and wait; refused on the writer thread itself (it would deadlock).
    Result<void> run(Job job);

    // A job producing a value: `fn` runs inside the batch, `done` gets its value when durable.
    template <typename T>
    void submitFor(std::function<Result<T>(Connection&)> fn, std::function<void(Result<T>)> done) {
        auto slot = std::make_shared<std::optional<T>>();
        submit(
            [fn = std::move(fn), slot](Connection& c) -> Result<void> {
                auto r = fn(c);
                if (!r)
                    return makeError(std::move(r.error()));
                slot->emplace(std::move(*r));
                return {};
            },
            [slot, done = std::move(done)](Result<void> r) {
                if (!r) {
                    done(makeError(std::move(r.error())));
                } else {
                    done(std::move(**slot));
                }
            });
    }
    template <typename T>
    Result<T> runFor(std::function<Result<T>(Connection&)> fn) {
        if (onWriterThread())
            return makeError(blockingOnWriterThread());
        std::promise<Result<T>> p;
        auto f = p.get_future();
        submitFor<T>(std::move(fn), [&p](Result<T> r) { p.set_value(std::move(r)); });
        return f.get();
    }

    bool onWriterThread() const noexcept { return std::this_thread::get_id() == thread_.get_id(); }
    GroupCommitStats stats() const;
    const GroupCommitOptions& options() const noexcept { return options_; }

private:
    struct Entry {
        Job job;
        Completion done;
    };
    struct Finished {
        Completion done;
        Result<void> result;
    };

    static Error blockingOnWriterThread();
    void loop();
    // Runs one batch starting with the jobs in `batch`; fills `finished`.
    void runBatch(std::deque<Entry>& batch, std::unique_lock<std::mutex>& lock,
                  std::vector<Finished>& finished);
    Result<void> runJob(Job& job);

    std::unique_ptr<Connection> conn_;
    const GroupCommitOptions options_;
    mutable std::mutex mutex_;
    std::condition_variable cv_;
    std::deque<Entry> queue_;
    bool stopping_ = false;
    GroupCommitStats stats_;
    std::thread thread_;  // last: started after every other member exists
};

}  // namespace best::store
