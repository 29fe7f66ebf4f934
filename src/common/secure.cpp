#include "common/secure.h"

#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include <cstdlib>
#include <new>
#include <utility>

#include <openssl/crypto.h>

namespace best {

void secureWipe(void* p, std::size_t n) noexcept {
    if (p != nullptr && n != 0)
        OPENSSL_cleanse(p, n);
}

bool constantTimeEqual(ByteView a, ByteView b) noexcept {
    if (a.size() != b.size())
        return false;
    if (a.empty())
        return true;
    return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

SecureBuffer::SecureBuffer(std::size_t size, bool lock) : size_(size) {
    if (size_ == 0)
        return;
    data_ = static_cast<std::uint8_t*>(std::calloc(size_, 1));
    if (data_ == nullptr)
        throw std::bad_alloc();
    if (lock)
        locked_ = ::mlock(data_, size_) == 0;
}

SecureBuffer::SecureBuffer(ByteView src, bool lock) : SecureBuffer(src.size(), lock) {
    for (std::size_t i = 0; i < size_; ++i)
        data_[i] = src[i];
}

SecureBuffer::SecureBuffer(SecureBuffer&& o) noexcept
    : data_(std::exchange(o.data_, nullptr)),
      size_(std::exchange(o.size_, 0)),
      locked_(std::exchange(o.locked_, false)) {}

SecureBuffer& SecureBuffer::operator=(SecureBuffer&& o) noexcept {
    if (this != &o) {
        clear();
        data_ = std::exchange(o.data_, nullptr);
        size_ = std::exchange(o.size_, 0);
        locked_ = std::exchange(o.locked_, false);
    }
    return *this;
}

SecureBuffer::~SecureBuffer() {
    clear();
}

void SecureBuffer::clear() noexcept {
    if (data_ != nullptr) {
        OPENSSL_cleanse(data_, size_);
        if (locked_)
            ::munlock(data_, size_);
        std::free(data_);
    }
    data_ = nullptr;
    size_ = 0;
    locked_ = false;
}

void hardenProcess() noexcept {
    ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    struct rlimit none {};
    ::setrlimit(RLIMIT_CORE, &none);
}

}  // namespace best
