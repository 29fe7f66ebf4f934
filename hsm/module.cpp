#include "hsm/module.h"

#include <dlfcn.h>

#include <cstdio>
#include <cstring>
#include <utility>

namespace best::hsm {

namespace {

constexpr std::string_view kNames[] = {
#define BEST_P11_NAME(name) #name,
    BEST_P11_FUNCTIONS(BEST_P11_NAME)
#undef BEST_P11_NAME
};
static_assert(std::size(kNames) == kP11FnCount);

}  // namespace

std::string_view p11FnName(P11Fn f) noexcept {
    const auto i = static_cast<std::size_t>(f);
    return i < kP11FnCount ? kNames[i] : std::string_view("C_?");
}

std::uint64_t CallStats::total() const noexcept {
    std::uint64_t n = 0;
    for (std::uint64_t c : calls)
        n += c;
    return n;
}

CallStats CallStats::since(const CallStats& before) const noexcept {
    CallStats d;
    for (std::size_t i = 0; i < kP11FnCount; ++i)
        d.calls[i] = calls[i] - before.calls[i];
    return d;
}

CallStats& CallStats::operator+=(const CallStats& other) noexcept {
    for (std::size_t i = 0; i < kP11FnCount; ++i)
        calls[i] += other.calls[i];
    return *this;
}

std::uint64_t CallStats::objectsCreated() const noexcept {
    return (*this)[P11Fn::C_CreateObject] + (*this)[P11Fn::C_CopyObject] +
           (*this)[P11Fn::C_UnwrapKey] + (*this)[P11Fn::C_GenerateKey];
}

std::string CallStats::describe() const {
    std::string out;
    for (std::size_t i = 0; i < kP11FnCount; ++i) {
        if (calls[i] == 0)
            continue;
        if (!out.empty())
            out += ", ";
        out += kNames[i];
        out += ' ';
        out += std::to_string(calls[i]);
    }
    return out.empty() ? "none" : out;
}

void DlHandle::reset(void* handle) noexcept {
    if (handle_ != nullptr)
        ::dlclose(handle_);
    handle_ = handle;
}

Result<std::unique_ptr<Module>> Module::load(const std::string& path) {
    if (path.empty()) {
        return makeError(HsmErrc::bad_config,
                         "no PKCS#11 module configured: set hsm.module to the token's PKCS#11 "
                         "library (e.g. /usr/lib/softhsm/libsofthsm2.so)");
    }
    ::dlerror();
    DlHandle lib(::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL));
    if (!lib.isValid()) {
        const char* why = ::dlerror();
        return makeError(HsmErrc::module_not_found,
                         "PKCS#11 module '" + path + "' not found or not loadable (" +
                             (why != nullptr ? why : "dlopen failed") +
                             "): install the token's PKCS#11 library or fix hsm.module");
    }
    void* sym = ::dlsym(lib.get(), "C_GetFunctionList");
    if (sym == nullptr) {
        return makeError(HsmErrc::module_invalid,
                         "'" + path +
                             "' is not a PKCS#11 module (no C_GetFunctionList): point hsm.module "
                             "at the token's PKCS#11 library");
    }
    CK_C_GetFunctionList getFunctionList = nullptr;
    static_assert(sizeof(getFunctionList) == sizeof(sym));
    std::memcpy(&getFunctionList, &sym, sizeof sym);
    CK_FUNCTION_LIST* functions = nullptr;
    const CK_RV rv = getFunctionList(&functions);
    if (rv != CKR_OK || functions == nullptr) {
        return makeError(HsmErrc::module_invalid,
                         "'" + path + "': C_GetFunctionList failed: " + ckrName(rv) +
                             ": the module is unusable; reinstall it");
    }
    if (functions->version.major != 2) {
        return makeError(HsmErrc::module_invalid,
                         "'" + path + "' implements PKCS#11 " +
                             std::to_string(functions->version.major) + "." +
                             std::to_string(functions->version.minor) +
                             " through C_GetFunctionList; a 2.x function list is needed");
    }
    std::unique_ptr<Module> m(new Module(path, std::move(lib), functions));
    // Threads: the vault calls from several threads; the module must use OS locking.
    CK_C_INITIALIZE_ARGS args{};
    args.flags = CKF_OS_LOCKING_OK;
    const CK_RV init = m->callRaw<P11Fn::C_Initialize>(static_cast<void*>(&args));
    if (init != CKR_OK) {
        m->functions_ = nullptr;  // not initialised: the destructor must not C_Finalize
        if (init == CKR_CRYPTOKI_ALREADY_INITIALIZED) {
            return makeError(HsmErrc::module_invalid,
                             "'" + path +
                                 "' is already initialised in this process: open one Module per "
                                 "PKCS#11 library (share the KeyVault)");
        }
        return makeError(HsmErrc::module_invalid, "'" + path +
                                                      "': C_Initialize failed: " + ckrName(init) +
                                                      ": " + std::string(adviceFor(init)));
    }
    return m;
}

Module::Module(std::string path, DlHandle lib, CK_FUNCTION_LIST* functions)
    : path_(std::move(path)), lib_(std::move(lib)), functions_(functions) {}

Module::~Module() {
    if (functions_ != nullptr)
        (void)callRaw<P11Fn::C_Finalize>(static_cast<void*>(nullptr));
}

Error Module::error(P11Fn f, CK_RV rv) const {
    char code[32];
    std::snprintf(code, sizeof code, " (0x%lx)", rv);
    std::string msg;
    if (!context_.empty())
        msg = context_ + ": ";
    msg += p11FnName(f);
    msg += ": ";
    msg += ckrName(rv);
    msg += code;
    msg += ": ";
    msg += adviceFor(rv);
    return Error{ErrorDomain::hsm, static_cast<int>(classify(rv)), std::move(msg)};
}

CallStats Module::stats() const noexcept {
    CallStats s;
    for (std::size_t i = 0; i < kP11FnCount; ++i)
        s.calls[i] = counts_[i].load(std::memory_order_relaxed);
    return s;
}

}  // namespace best::hsm
