#include "store/group_commit.h"

#include <exception>
#include <string>
#include <utility>
#include <vector>

#include "common/log.h"

namespace best::store {
namespace {

Error batchError(const Error& cause, std::string_view what) {
    return Error{cause.domain, cause.code, std::string(what) + ": " + cause.message};
}

void complete(GroupCommitWriter::Completion& done, Result<void> result) noexcept {
    if (!done)
        return;
    try {
        done(std::move(result));
    } catch (const std::exception& e) {
        log::error("store", std::string("a write completion threw: ") + e.what());
    } catch (...) {
        log::error("store", "a write completion threw a non-standard exception");
    }
}

GroupCommitOptions normalized(GroupCommitOptions o) noexcept {
    if (o.maxBatch == 0)
        o.maxBatch = 1;
    if (o.window.count() < 0)
        o.window = std::chrono::microseconds(0);
    return o;
}

}  // namespace

GroupCommitWriter::GroupCommitWriter(std::unique_ptr<Connection> writer, GroupCommitOptions options)
    : conn_(std::move(writer)), options_(normalized(options)) {
    thread_ = std::thread([this] { loop(); });
}

GroupCommitWriter::~GroupCommitWriter() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable())
        thread_.join();
}

Error GroupCommitWriter::blockingOnWriterThread() {
    return Error{ErrorDomain::store, static_cast<int>(StoreErrc::internal),
                 "blocking store call from a store completion callback (it would deadlock)"};
}

bool GroupCommitWriter::trySubmit(Job&& job, Completion&& done) {
    std::lock_guard lock(mutex_);
    if (stopping_)
        return false;
    queue_.push_back(Entry{std::move(job), std::move(done)});
    cv_.notify_one();
    return true;
}

void GroupCommitWriter::submit(Job job, Completion done) {
    if (!trySubmit(std::move(job), std::move(done))) {
        complete(done, makeError(StoreErrc::closed, "the store is closing; the write was not run"));
    }
}

std::future<Result<void>> GroupCommitWriter::submit(Job job) {
    auto p = std::make_shared<std::promise<Result<void>>>();
    auto f = p->get_future();
    submit(std::move(job), [p](Result<void> r) { p->set_value(std::move(r)); });
    return f;
}

Result<void> GroupCommitWriter::run(Job job) {
    if (onWriterThread())
        return makeError(blockingOnWriterThread());
    return submit(std::move(job)).get();
}

GroupCommitStats GroupCommitWriter::stats() const {
    std::lock_guard lock(mutex_);
    return stats_;
}

Result<void> GroupCommitWriter::runJob(Job& job) {
    if (auto sp = conn_->prepare("SAVEPOINT job"); !sp || !sp->run()) {
        return makeError(conn_->lastError("cannot open a savepoint"));
    }
    Result<void> r;
    try {
        r = job(*conn_);
    } catch (const std::exception& e) {
        r = makeError(StoreErrc::internal, std::string("a store write threw: ") + e.what());
    } catch (...) {
        r = makeError(StoreErrc::internal, "a store write threw a non-standard exception");
    }
    if (!conn_->inTransaction())
        return r;  // SQLite rolled the whole batch back; caller checks
    if (!r) {
        if (auto st = conn_->prepare("ROLLBACK TO job"); st)
            (void)st->run();
    }
    if (auto st = conn_->prepare("RELEASE job"); !st || !st->run()) {
        return makeError(conn_->lastError("cannot release a savepoint"));
    }
    return r;
}

void GroupCommitWriter::runBatch(std::deque<Entry>& batch, std::unique_lock<std::mutex>& lock,
                                 std::vector<Finished>& finished) {
    const auto deadline = std::chrono::steady_clock::now() + options_.window;
    lock.unlock();

    std::optional<Error> abort;
    if (auto r = conn_->exec("BEGIN IMMEDIATE"); !r) {
        abort = batchError(r.error(), "cannot start a write transaction");
    }
    std::size_t ran = 0;
    for (;;) {
        for (auto& e : batch) {
            if (abort) {
                finished.push_back(Finished{std::move(e.done), makeError(*abort)});
                continue;
            }
            auto r = runJob(e.job);
            ++ran;
            if (!conn_->inTransaction()) {
                // An I/O error or SQLITE_FULL made SQLite roll back the transaction: the jobs
                // of this batch that had succeeded are lost too.
                abort = batchError(r ? conn_->lastError("transaction rolled back") : r.error(),
                                   "the write batch was rolled back");
                finished.push_back(Finished{std::move(e.done), makeError(*abort)});
                continue;
            }
            finished.push_back(Finished{std::move(e.done), std::move(r)});
        }
        batch.clear();

        lock.lock();
        if (abort || ran >= options_.maxBatch)
            break;
        if (queue_.empty()) {
            if (options_.closeWhenIdle || options_.window.count() == 0 || stopping_)
                break;
            cv_.wait_until(lock, deadline, [this] { return !queue_.empty() || stopping_; });
            if (queue_.empty())
                break;
        } else if (std::chrono::steady_clock::now() >= deadline) {
            break;
        }
        while (!queue_.empty() && ran + batch.size() < options_.maxBatch) {
            batch.push_back(std::move(queue_.front()));
            queue_.pop_front();
        }
        lock.unlock();
    }
    lock.unlock();

    bool failed = false;
    if (abort) {
        failed = true;
        if (conn_->inTransaction())
            (void)conn_->exec("ROLLBACK");
        for (auto& f : finished) {
            if (f.result)
                f.result = makeError(*abort);
        }
    } else if (auto r = conn_->exec("COMMIT"); !r) {
        failed = true;
        const Error e = batchError(r.error(), "committing the write batch failed");
        log::error("store", e.message);
        if (conn_->inTransaction())
            (void)conn_->exec("ROLLBACK");
        for (auto& f : finished)
            f.result = makeError(e);
    }

    lock.lock();
    stats_.batches += 1;
    stats_.jobs += finished.size();
    if (failed)
        stats_.failedBatches += 1;
    for (const auto& f : finished) {
        if (!f.result)
            stats_.failedJobs += 1;
    }
    if (finished.size() > stats_.largestBatch)
        stats_.largestBatch = finished.size();
}

void GroupCommitWriter::loop() {
    std::unique_lock lock(mutex_);
    for (;;) {
        cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
        if (queue_.empty())
            return;  // stopping, and everything queued has run
        std::deque<Entry> batch;
        while (!queue_.empty() && batch.size() < options_.maxBatch) {
            batch.push_back(std::move(queue_.front()));
            queue_.pop_front();
        }
        std::vector<Finished> finished;
        finished.reserve(batch.size());
        runBatch(batch, lock, finished);
        lock.unlock();
        for (auto& f : finished)
            complete(f.done, std::move(f.result));
        lock.lock();
    }
}

}  // namespace best::store
