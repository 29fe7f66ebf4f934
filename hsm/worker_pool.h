// The HSM worker pool: a small fixed number of threads, each with its own context (a VaultOps on
// its own non-login session), fed from one bounded queue. Callers never block on PKCS#11: they
// submit a job and get its result through a future or a callback.
//
// Worker threads run on stacks that are mlock()ed, excluded from core dumps and wiped when the
// thread ends, because every transient secret of an HSM operation (OPc, CK, IK, R, KInt at
// creation) lives on that stack.
#pragma once

#include <pthread.h>

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "common/result.h"

namespace best::hsm {

inline constexpr std::size_t kWorkerStackSize = 512 * 1024;

// A pthread on a locked, dump-excluded stack that is wiped on join (conventions 1: move-only
// owner of the thread and its stack mapping).
class LockedStackThread {
public:
    LockedStackThread() = default;
    LockedStackThread(const LockedStackThread&) = delete;
    LockedStackThread& operator=(const LockedStackThread&) = delete;
    LockedStackThread(LockedStackThread&& o) noexcept;
    LockedStackThread& operator=(LockedStackThread&& o) noexcept;
    ~LockedStackThread() { join(); }

    static Result<LockedStackThread> start(std::function<void()> body,
                                           std::size_t stackSize = kWorkerStackSize);

    bool joinable() const noexcept { return running_; }
    // True when mlock() of the stack succeeded (needs CAP_IPC_LOCK or RLIMIT_MEMLOCK room).
    bool stackLocked() const noexcept { return locked_; }
    void join() noexcept;  // joins, wipes and unmaps the stack

private:
    pthread_t thread_{};
    bool running_ = false;
    void* mapping_ = nullptr;
    std::size_t mappingSize_ = 0;
    std::size_t guardSize_ = 0;
    bool locked_ = false;
};

template <typename Context>
class WorkerPool {
public:
    class Job {
    public:
        virtual ~Job() = default;
        virtual void run(Context& context) noexcept = 0;
        virtual void cancel(Error why) noexcept = 0;
    };
    using JobPtr = std::unique_ptr<Job>;

    explicit WorkerPool(std::size_t queueCapacity) : capacity_(queueCapacity) {}
    WorkerPool(const WorkerPool&) = delete;
    WorkerPool& operator=(const WorkerPool&) = delete;
    ~WorkerPool() { stop(); }

    Result<void> addWorker(std::unique_ptr<Context> context) {
        Context* raw = context.get();
        contexts_.push_back(std::move(context));
        auto t = LockedStackThread::start([this, raw] { loop(*raw); });
        if (!t) {
            contexts_.pop_back();
            return makeError(t.error());
        }
        threads_.push_back(std::move(*t));
        return {};
    }

    // Queues `job` and returns true; when the queue is full or the pool is stopping, returns
    // false and leaves `job` with the caller.
    bool push(JobPtr& job) {
        {
            std::lock_guard<std::mutex> g(mutex_);
            if (stopping_ || queue_.size() >= capacity_)
                return false;
            queue_.push_back(std::move(job));
        }
        cv_.notify_one();
        return true;
    }

    bool stopping() const {
        std::lock_guard<std::mutex> g(mutex_);
        return stopping_;
    }

    // Queued jobs still run; then the threads end and their stacks are wiped.
    void stop() noexcept {
        {
            std::lock_guard<std::mutex> g(mutex_);
            stopping_ = true;
        }
        cv_.notify_all();
        for (LockedStackThread& t : threads_)
            t.join();
        threads_.clear();
        contexts_.clear();
    }

    std::size_t workers() const noexcept { return threads_.size(); }
    bool stacksLocked() const noexcept {
        for (const LockedStackThread& t : threads_) {
            if (!t.stackLocked())
                return false;
        }
        return !threads_.empty();
    }
    std::size_t queued() const {
        std::lock_guard<std::mutex> g(mutex_);
        return queue_.size();
    }

private:
    void loop(Context& context) noexcept {
        for (;;) {
            JobPtr job;
            {
                std::unique_lock<std::mutex> g(mutex_);
                cv_.wait(g, [this] { return stopping_ || !queue_.empty(); });
                if (queue_.empty())
                    return;  // stopping and drained
                job = std::move(queue_.front());
                queue_.pop_front();
            }
            job->run(context);
        }
    }

    mutable std::mutex mutex_;
    std::condition_variable cv_;
    std::deque<JobPtr> queue_;
    std::size_t capacity_;
    bool stopping_ = false;
    std::vector<std::unique_ptr<Context>> contexts_;
    std::vector<LockedStackThread> threads_;
};

}  // namespace best::hsm
