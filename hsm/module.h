// A PKCS#11 module (conventions 3, Botan's Module): dlopen(), C_GetFunctionList, C_Initialize
// with CKF_OS_LOCKING_OK; C_Finalize and dlclose() in the destructor. Every C_* call of the
// project goes through call<>() / callRaw<>() here: counted per function, and mapped from CK_RV
// to a readable Error by check().
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include <p11-kit/pkcs11.h>

#include "common/result.h"
#include "hsm/hsm_error.h"

namespace best::hsm {

// The functions the project calls, in one list (X-macro): the enum, the names and the member
// pointers into CK_FUNCTION_LIST all come from it.
#define BEST_P11_FUNCTIONS(X) \
    X(C_Initialize)           \
    X(C_Finalize)             \
    X(C_GetInfo)              \
    X(C_GetSlotList)          \
    X(C_GetSlotInfo)          \
    X(C_GetTokenInfo)         \
    X(C_GetMechanismList)     \
    X(C_GetMechanismInfo)     \
    X(C_OpenSession)          \
    X(C_CloseSession)         \
    X(C_GetSessionInfo)       \
    X(C_Login)                \
    X(C_Logout)               \
    X(C_CreateObject)         \
    X(C_CopyObject)           \
    X(C_DestroyObject)        \
    X(C_GetAttributeValue)    \
    X(C_SetAttributeValue)    \
    X(C_FindObjectsInit)      \
    X(C_FindObjects)          \
    X(C_FindObjectsFinal)     \
    X(C_EncryptInit)          \
    X(C_Encrypt)              \
    X(C_EncryptUpdate)        \
    X(C_EncryptFinal)         \
    X(C_DecryptInit)          \
    X(C_Decrypt)              \
    X(C_SignInit)             \
    X(C_Sign)                 \
    X(C_VerifyInit)           \
    X(C_Verify)               \
    X(C_GenerateKey)          \
    X(C_WrapKey)              \
    X(C_UnwrapKey)            \
    X(C_GenerateRandom)

// Enumerators keep the PKCS#11 names so a count table reads like the standard.
enum class P11Fn : std::uint8_t {
#define BEST_P11_ENUM(name) name,
    BEST_P11_FUNCTIONS(BEST_P11_ENUM)
#undef BEST_P11_ENUM
        count
};
inline constexpr std::size_t kP11FnCount = static_cast<std::size_t>(P11Fn::count);

std::string_view p11FnName(P11Fn f) noexcept;

template <P11Fn F>
struct P11Member;
#define BEST_P11_MEMBER(name)                                \
    template <>                                              \
    struct P11Member<P11Fn::name> {                          \
        static constexpr auto ptr = &CK_FUNCTION_LIST::name; \
    };
BEST_P11_FUNCTIONS(BEST_P11_MEMBER)
#undef BEST_P11_MEMBER

// Calls per function since the module was loaded (or since resetStats()).
struct CallStats {
    std::array<std::uint64_t, kP11FnCount> calls{};
    std::uint64_t total() const noexcept;
    std::uint64_t operator[](P11Fn f) const noexcept { return calls[static_cast<std::size_t>(f)]; }
    // Per-function difference (this - before), for counting the calls of one operation.
    CallStats since(const CallStats& before) const noexcept;
    // Adds `other` per function (calls of several module instances).
    CallStats& operator+=(const CallStats& other) noexcept;
    // Session objects made: C_CreateObject, C_CopyObject, C_UnwrapKey, C_GenerateKey.
    std::uint64_t objectsCreated() const noexcept;
    // "C_EncryptInit 1, C_EncryptUpdate 6, ..." (functions with a non-zero count only).
    std::string describe() const;
};

// dlopen() handle, move-only (conventions 1).
class DlHandle {
public:
    DlHandle() = default;
    explicit DlHandle(void* handle) noexcept : handle_(handle) {}
    DlHandle(const DlHandle&) = delete;
    DlHandle& operator=(const DlHandle&) = delete;
    DlHandle(DlHandle&& o) noexcept : handle_(o.release()) {}
    DlHandle& operator=(DlHandle&& o) noexcept {
        if (this != &o)
            reset(o.release());
        return *this;
    }
    ~DlHandle() { reset(); }

    void* get() const noexcept { return handle_; }
    bool isValid() const noexcept { return handle_ != nullptr; }
    void* release() noexcept {
        void* h = handle_;
        handle_ = nullptr;
        return h;
    }
    void reset(void* handle = nullptr) noexcept;

private:
    void* handle_ = nullptr;
};

class Module {
public:
    // Loads and initialises the module at `path`. Errors: module_not_found (dlopen failed),
    // module_invalid (no C_GetFunctionList, or C_Initialize refused).
    static Result<std::unique_ptr<Module>> load(const std::string& path);

    Module(const Module&) = delete;
    Module& operator=(const Module&) = delete;
    ~Module();

    const std::string& path() const noexcept { return path_; }
    const CK_FUNCTION_LIST* functions() const noexcept { return functions_; }

    // "token 'x'": prefixed to every error message from now on. Set once, before other threads
    // use the module.
    void setContext(std::string context) { context_ = std::move(context); }
    const std::string& context() const noexcept { return context_; }

    // The one checked call: counts, calls, maps any CK_RV other than CKR_OK to an Error.
    template <P11Fn F, typename... Args>
    Result<void> call(Args... args) const {
        const CK_RV rv = callRaw<F>(args...);
        if (rv == CKR_OK)
            return {};
        return makeError(error(F, rv));
    }

    // Counted call returning the raw CK_RV, for the few places where a code other than CKR_OK
    // means something (CKR_USER_ALREADY_LOGGED_IN, CKR_SIGNATURE_INVALID); pass the rest to
    // error().
    template <P11Fn F, typename... Args>
    CK_RV callRaw(Args... args) const {
        counts_[static_cast<std::size_t>(F)].fetch_add(1, std::memory_order_relaxed);
        return (functions_->*P11Member<F>::ptr)(args...);
    }

    // "token 'x': C_Login: CKR_PIN_INCORRECT (0xa0): <what to do>", code from classify().
    Error error(P11Fn f, CK_RV rv) const;

    CallStats stats() const noexcept;

private:
    Module(std::string path, DlHandle lib, CK_FUNCTION_LIST* functions);

    std::string path_;
    DlHandle lib_;
    CK_FUNCTION_LIST* functions_ = nullptr;
    std::string context_;
    mutable std::array<std::atomic<std::uint64_t>, kP11FnCount> counts_{};
};

}  // namespace best::hsm
