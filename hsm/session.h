// PKCS#11 sessions and session objects (conventions 1 and 3): move-only, closed / destroyed by
// the destructor, which never throws.
#pragma once

#include <mutex>
#include <span>
#include <vector>

#include <p11-kit/pkcs11.h>

#include "common/bytes.h"
#include "common/result.h"
#include "hsm/module.h"

namespace best::hsm {

// A non-owning reference to a live session through which objects are destroyed; `lock` guards
// a session that several threads use (the vault's owner session), null otherwise.
struct SessionRef {
    const Module* module = nullptr;
    CK_SESSION_HANDLE handle = CK_INVALID_HANDLE;
    std::mutex* lock = nullptr;
};

class Session {
public:
    Session() = default;
    Session(const Module& module, CK_SESSION_HANDLE handle) noexcept
        : module_(&module), handle_(handle) {}
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;
    Session(Session&& o) noexcept : module_(o.module_), handle_(o.release()) {}
    Session& operator=(Session&& o) noexcept {
        if (this != &o) {
            reset();
            module_ = o.module_;
            handle_ = o.release();
        }
        return *this;
    }
    ~Session() { reset(); }

    // C_OpenSession (serial; read/write only when asked: worker sessions are read-only).
    static Result<Session> open(const Module& module, CK_SLOT_ID slot, bool readWrite);

    CK_SESSION_HANDLE get() const noexcept { return handle_; }
    bool isValid() const noexcept { return handle_ != CK_INVALID_HANDLE; }
    CK_SESSION_HANDLE release() noexcept {
        const CK_SESSION_HANDLE h = handle_;
        handle_ = CK_INVALID_HANDLE;
        return h;
    }
    void reset() noexcept;  // C_CloseSession; errors ignored

    const Module& module() const noexcept { return *module_; }
    SessionRef ref(std::mutex* lock = nullptr) const noexcept { return {module_, handle_, lock}; }

    // C_Login as CKU_USER. Login is per application (SoftHSM: measured), so
    // CKR_USER_ALREADY_LOGGED_IN counts as success.
    Result<void> login(ByteView pin) const;

    // C_FindObjectsInit / C_FindObjects / C_FindObjectsFinal; at most `max` handles.
    Result<std::vector<CK_OBJECT_HANDLE>> findObjects(std::span<CK_ATTRIBUTE> templ,
                                                      std::size_t max = 16) const;

private:
    const Module* module_ = nullptr;
    CK_SESSION_HANDLE handle_ = CK_INVALID_HANDLE;
};

// A session object (or any object this code created and must destroy), destroyed through the
// session it belongs to. Token keys are never held in this type.
class ObjectHandle {
public:
    ObjectHandle() = default;
    ObjectHandle(SessionRef session, CK_OBJECT_HANDLE handle) noexcept
        : session_(session), handle_(handle) {}
    ObjectHandle(const ObjectHandle&) = delete;
    ObjectHandle& operator=(const ObjectHandle&) = delete;
    ObjectHandle(ObjectHandle&& o) noexcept : session_(o.session_), handle_(o.release()) {}
    ObjectHandle& operator=(ObjectHandle&& o) noexcept {
        if (this != &o) {
            reset();
            session_ = o.session_;
            handle_ = o.release();
        }
        return *this;
    }
    ~ObjectHandle() { reset(); }

    CK_OBJECT_HANDLE get() const noexcept { return handle_; }
    bool isValid() const noexcept { return handle_ != CK_INVALID_HANDLE; }
    CK_OBJECT_HANDLE release() noexcept {
        const CK_OBJECT_HANDLE h = handle_;
        handle_ = CK_INVALID_HANDLE;
        return h;
    }
    void reset() noexcept;  // C_DestroyObject; errors ignored (the object may already be gone)

private:
    SessionRef session_;
    CK_OBJECT_HANDLE handle_ = CK_INVALID_HANDLE;
};

// Attribute helpers for templates (the values must outlive the call).
inline CK_ATTRIBUTE attr(CK_ATTRIBUTE_TYPE type, const CK_BBOOL& v) noexcept {
    return {type, const_cast<CK_BBOOL*>(&v), sizeof v};
}
inline CK_ATTRIBUTE attr(CK_ATTRIBUTE_TYPE type, const CK_ULONG& v) noexcept {
    return {type, const_cast<CK_ULONG*>(&v), sizeof v};
}
inline CK_ATTRIBUTE attrBytes(CK_ATTRIBUTE_TYPE type, const void* p, std::size_t n) noexcept {
    return {type, const_cast<void*>(p), static_cast<CK_ULONG>(n)};
}
inline constexpr CK_BBOOL kTrue = CK_TRUE;
inline constexpr CK_BBOOL kFalse = CK_FALSE;

}  // namespace best::hsm
