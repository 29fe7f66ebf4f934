#include "hsm/session.h"

namespace best::hsm {

Result<Session> Session::open(const Module& module, CK_SLOT_ID slot, bool readWrite) {
    CK_FLAGS flags = CKF_SERIAL_SESSION;
    if (readWrite)
        flags |= CKF_RW_SESSION;
    CK_SESSION_HANDLE h = CK_INVALID_HANDLE;
    auto r = module.call<P11Fn::C_OpenSession>(slot, flags, static_cast<void*>(nullptr),
                                               static_cast<CK_NOTIFY>(nullptr), &h);
    if (!r)
        return makeError(r.error());
    return Session(module, h);
}

void Session::reset() noexcept {
    if (handle_ != CK_INVALID_HANDLE && module_ != nullptr)
        (void)module_->callRaw<P11Fn::C_CloseSession>(handle_);
    handle_ = CK_INVALID_HANDLE;
}

Result<void> Session::login(ByteView pin) const {
    const CK_RV rv = module_->callRaw<P11Fn::C_Login>(handle_, static_cast<CK_USER_TYPE>(CKU_USER),
                                                      const_cast<CK_UTF8CHAR*>(pin.data()),
                                                      static_cast<CK_ULONG>(pin.size()));
    if (rv == CKR_OK || rv == CKR_USER_ALREADY_LOGGED_IN)
        return {};
    return makeError(module_->error(P11Fn::C_Login, rv));
}

Result<std::vector<CK_OBJECT_HANDLE>> Session::findObjects(std::span<CK_ATTRIBUTE> templ,
                                                           std::size_t max) const {
    auto r = module_->call<P11Fn::C_FindObjectsInit>(handle_, templ.data(),
                                                     static_cast<CK_ULONG>(templ.size()));
    if (!r)
        return makeError(r.error());
    std::vector<CK_OBJECT_HANDLE> found(max);
    CK_ULONG n = 0;
    auto f =
        module_->call<P11Fn::C_FindObjects>(handle_, found.data(), static_cast<CK_ULONG>(max), &n);
    // Always end the search, even after an error, so the session stays usable.
    auto fin = module_->call<P11Fn::C_FindObjectsFinal>(handle_);
    if (!f)
        return makeError(f.error());
    if (!fin)
        return makeError(fin.error());
    found.resize(n);
    return found;
}

void ObjectHandle::reset() noexcept {
    if (handle_ != CK_INVALID_HANDLE && session_.module != nullptr) {
        if (session_.lock != nullptr) {
            std::lock_guard<std::mutex> g(*session_.lock);
            (void)session_.module->callRaw<P11Fn::C_DestroyObject>(session_.handle, handle_);
        } else {
            (void)session_.module->callRaw<P11Fn::C_DestroyObject>(session_.handle, handle_);
        }
    }
    handle_ = CK_INVALID_HANDLE;
}

}  // namespace best::hsm
