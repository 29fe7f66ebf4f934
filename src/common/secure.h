// Secrets have their own types (conventions 6): wiped with OPENSSL_cleanse when they die,
// never printed, compared in constant time.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

#include "common/bytes.h"

namespace best {

void secureWipe(void* p, std::size_t n) noexcept;
bool constantTimeEqual(ByteView a, ByteView b) noexcept;

// Fixed-size secret. Tag makes K, OPc, CK ... distinct types, so a CK cannot be passed as a K.
// Copyable on purpose (both copies wipe themselves); there is no operator<< and no toHex overload.
template <std::size_t N, typename Tag>
class Secret {
public:
    static constexpr std::size_t kSize = N;

    Secret() noexcept { bytes_.fill(0); }
    explicit Secret(ByteView src) noexcept {
        bytes_.fill(0);
        if (src.size() == N) {
            for (std::size_t i = 0; i < N; ++i)
                bytes_[i] = src[i];
        }
    }
    Secret(const Secret&) = default;
    Secret& operator=(const Secret&) = default;
    ~Secret() { secureWipe(bytes_.data(), N); }

    std::uint8_t* data() noexcept { return bytes_.data(); }
    const std::uint8_t* data() const noexcept { return bytes_.data(); }
    static constexpr std::size_t size() noexcept { return N; }
    ByteView view() const noexcept { return ByteView(bytes_.data(), N); }
    MutableByteView mutableView() noexcept { return MutableByteView(bytes_.data(), N); }
    std::uint8_t& operator[](std::size_t i) noexcept { return bytes_[i]; }
    std::uint8_t operator[](std::size_t i) const noexcept { return bytes_[i]; }

    bool equals(const Secret& o) const noexcept { return constantTimeEqual(view(), o.view()); }

private:
    std::array<std::uint8_t, N> bytes_;
};

// Variable-size secret buffer; optionally mlock()ed and excluded from core dumps.
class SecureBuffer {
public:
    SecureBuffer() = default;
    explicit SecureBuffer(std::size_t size, bool lock = false);
    explicit SecureBuffer(ByteView src, bool lock = false);
    SecureBuffer(const SecureBuffer&) = delete;
    SecureBuffer& operator=(const SecureBuffer&) = delete;
    SecureBuffer(SecureBuffer&& o) noexcept;
    SecureBuffer& operator=(SecureBuffer&& o) noexcept;
    ~SecureBuffer();

    std::uint8_t* data() noexcept { return data_; }
    const std::uint8_t* data() const noexcept { return data_; }
    std::size_t size() const noexcept { return size_; }
    bool empty() const noexcept { return size_ == 0; }
    bool locked() const noexcept { return locked_; }
    ByteView view() const noexcept { return ByteView(data_, size_); }
    MutableByteView mutableView() noexcept { return MutableByteView(data_, size_); }
    void clear() noexcept;

private:
    std::uint8_t* data_ = nullptr;
    std::size_t size_ = 0;
    bool locked_ = false;
};

// Process-wide hardening for programs that hold secrets: no core dumps, not ptrace-readable.
void hardenProcess() noexcept;

// Strong types for the values of the key hierarchy.
struct KTag;
struct OpTag;
struct OpcTag;
struct CkTag;
struct IkTag;
struct AkTag;
struct Key128Tag;
struct Key256Tag;
struct PinTag;

using SubscriberK = Secret<16, KTag>;
using Op = Secret<16, OpTag>;
using Opc = Secret<16, OpcTag>;
using Ck = Secret<16, CkTag>;
using Ik = Secret<16, IkTag>;
using Key128 = Secret<16, Key128Tag>;  // session keys (CP/UP enc/int)
using Key256 = Secret<32, Key256Tag>;  // R, KInt, KInt_E2E, KInt_EAS_PSK, KSess

}  // namespace best
