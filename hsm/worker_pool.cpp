#include "hsm/worker_pool.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <utility>

#include "common/secure.h"
#include "hsm/hsm_error.h"

namespace best::hsm {

namespace {

void* threadMain(void* arg) noexcept {
    std::unique_ptr<std::function<void()>> body(static_cast<std::function<void()>*>(arg));
    (*body)();
    return nullptr;
}

// pthread_attr_t owner (conventions 1).
class ThreadAttr {
public:
    ThreadAttr() noexcept { ok_ = ::pthread_attr_init(&attr_) == 0; }
    ThreadAttr(const ThreadAttr&) = delete;
    ThreadAttr& operator=(const ThreadAttr&) = delete;
    ~ThreadAttr() {
        if (ok_)
            ::pthread_attr_destroy(&attr_);
    }
    bool isValid() const noexcept { return ok_; }
    pthread_attr_t* get() noexcept { return &attr_; }

private:
    pthread_attr_t attr_{};
    bool ok_ = false;
};

}  // namespace

LockedStackThread::LockedStackThread(LockedStackThread&& o) noexcept
    : thread_(o.thread_),
      running_(std::exchange(o.running_, false)),
      mapping_(std::exchange(o.mapping_, nullptr)),
      mappingSize_(std::exchange(o.mappingSize_, 0)),
      guardSize_(std::exchange(o.guardSize_, 0)),
      locked_(std::exchange(o.locked_, false)) {}

LockedStackThread& LockedStackThread::operator=(LockedStackThread&& o) noexcept {
    if (this != &o) {
        join();
        thread_ = o.thread_;
        running_ = std::exchange(o.running_, false);
        mapping_ = std::exchange(o.mapping_, nullptr);
        mappingSize_ = std::exchange(o.mappingSize_, 0);
        guardSize_ = std::exchange(o.guardSize_, 0);
        locked_ = std::exchange(o.locked_, false);
    }
    return *this;
}

Result<LockedStackThread> LockedStackThread::start(std::function<void()> body,
                                                   std::size_t stackSize) {
    const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    stackSize = (stackSize + page - 1) / page * page;
    // glibc puts the thread's static TLS on the stack it is given; when that does not fit
    // (sanitizer runtimes carry large TLS), pthread_create fails and a larger stack is tried.
    for (int attempt = 0; attempt < 4; ++attempt, stackSize *= 2) {
        LockedStackThread t;
        t.guardSize_ = page;
        t.mappingSize_ = stackSize + page;
        void* m = ::mmap(nullptr, t.mappingSize_, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
        if (m == MAP_FAILED) {
            t.mappingSize_ = 0;
            return makeError(HsmErrc::internal, "cannot map an HSM worker stack");
        }
        t.mapping_ = m;
        auto* stack = static_cast<std::uint8_t*>(m) + page;
        // Stacks grow down: the lowest page is the guard.
        (void)::mprotect(m, page, PROT_NONE);
        t.locked_ = ::mlock(stack, stackSize) == 0;
        (void)::madvise(stack, stackSize, MADV_DONTDUMP);
        ThreadAttr attr;
        if (!attr.isValid() || ::pthread_attr_setstack(attr.get(), stack, stackSize) != 0)
            return makeError(HsmErrc::internal, "cannot set an HSM worker stack");
        auto arg = std::make_unique<std::function<void()>>(body);
        if (::pthread_create(&t.thread_, attr.get(), &threadMain, arg.get()) == 0) {
            (void)arg.release();  // the thread owns it now
            t.running_ = true;
            return t;
        }
        // `t` unmaps its stack on the way out.
    }
    return makeError(HsmErrc::internal, "cannot start an HSM worker thread");
}

void LockedStackThread::join() noexcept {
    if (running_) {
        ::pthread_join(thread_, nullptr);
        running_ = false;
    }
    if (mapping_ != nullptr) {
        auto* stack = static_cast<std::uint8_t*>(mapping_) + guardSize_;
        const std::size_t size = mappingSize_ - guardSize_;
        secureWipe(stack, size);
        if (locked_)
            ::munlock(stack, size);
        ::munmap(mapping_, mappingSize_);
        mapping_ = nullptr;
        locked_ = false;
    }
}

}  // namespace best::hsm
