// TEST SHIM ONLY — never configure it in a product. A PKCS#11 module that forwards every call to
// a real module (SoftHSM by default) and returns a configured CK_RV instead, for configured
// functions, after N passing calls. It stands in for what SoftHSM cannot do: report
// CKR_DEVICE_REMOVED, lock a PIN, fail mid-run (conventions 9).
//
// Configuration (re-read whenever the control file changes; counts restart then):
//   BEST_P11_SHIM_TARGET  the real module (default /usr/lib/softhsm/libsofthsm2.so)
//   BEST_P11_FAULT        rules, e.g. "C_Encrypt=0x32@5;C_Login=0xa4"
//   BEST_P11_FAULT_FILE   a file holding rules (one per line or ';'-separated)
// Rule: NAME=RV[@AFTER][*TIMES]: the first AFTER calls of NAME pass (default 0), then the next
// TIMES calls (default: all) return RV without reaching the real module.
// Rule: NAME~MS: every call of NAME waits MS milliseconds, then reaches the real module (a slow
// token, to hold jobs in flight).
#include <dlfcn.h>
#include <sys/stat.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>

#include <p11-kit/pkcs11.h>

namespace {

#define SHIM_FUNCTIONS(X)    \
    X(C_Initialize)          \
    X(C_Finalize)            \
    X(C_GetInfo)             \
    X(C_GetSlotList)         \
    X(C_GetSlotInfo)         \
    X(C_GetTokenInfo)        \
    X(C_GetMechanismList)    \
    X(C_GetMechanismInfo)    \
    X(C_InitToken)           \
    X(C_InitPIN)             \
    X(C_SetPIN)              \
    X(C_OpenSession)         \
    X(C_CloseSession)        \
    X(C_CloseAllSessions)    \
    X(C_GetSessionInfo)      \
    X(C_GetOperationState)   \
    X(C_SetOperationState)   \
    X(C_Login)               \
    X(C_Logout)              \
    X(C_CreateObject)        \
    X(C_CopyObject)          \
    X(C_DestroyObject)       \
    X(C_GetObjectSize)       \
    X(C_GetAttributeValue)   \
    X(C_SetAttributeValue)   \
    X(C_FindObjectsInit)     \
    X(C_FindObjects)         \
    X(C_FindObjectsFinal)    \
    X(C_EncryptInit)         \
    X(C_Encrypt)             \
    X(C_EncryptUpdate)       \
    X(C_EncryptFinal)        \
    X(C_DecryptInit)         \
    X(C_Decrypt)             \
    X(C_DecryptUpdate)       \
    X(C_DecryptFinal)        \
    X(C_DigestInit)          \
    X(C_Digest)              \
    X(C_DigestUpdate)        \
    X(C_DigestKey)           \
    X(C_DigestFinal)         \
    X(C_SignInit)            \
    X(C_Sign)                \
    X(C_SignUpdate)          \
    X(C_SignFinal)           \
    X(C_SignRecoverInit)     \
    X(C_SignRecover)         \
    X(C_VerifyInit)          \
    X(C_Verify)              \
    X(C_VerifyUpdate)        \
    X(C_VerifyFinal)         \
    X(C_VerifyRecoverInit)   \
    X(C_VerifyRecover)       \
    X(C_DigestEncryptUpdate) \
    X(C_DecryptDigestUpdate) \
    X(C_SignEncryptUpdate)   \
    X(C_DecryptVerifyUpdate) \
    X(C_GenerateKey)         \
    X(C_GenerateKeyPair)     \
    X(C_WrapKey)             \
    X(C_UnwrapKey)           \
    X(C_DeriveKey)           \
    X(C_SeedRandom)          \
    X(C_GenerateRandom)      \
    X(C_GetFunctionStatus)   \
    X(C_CancelFunction)      \
    X(C_WaitForSlotEvent)

enum Fn : int {
#define SHIM_ENUM(name) k##name,
    SHIM_FUNCTIONS(SHIM_ENUM)
#undef SHIM_ENUM
        kFnCount
};

const char* const kNames[] = {
#define SHIM_NAME(name) #name,
    SHIM_FUNCTIONS(SHIM_NAME)
#undef SHIM_NAME
};

struct Rule {
    bool active = false;
    CK_RV rv = CKR_OK;
    unsigned long after = 0;
    unsigned long times = 0;  // 0 = unlimited
    unsigned long seen = 0;
    unsigned long fired = 0;
    unsigned long delayMs = 0;  // NAME~MS
};

std::mutex gMutex;
Rule gRules[kFnCount];
CK_FUNCTION_LIST* gReal = nullptr;
CK_FUNCTION_LIST gList{};
std::string gFile;
struct stat gFileStat {};
bool gFileSeen = false;

void parseRules(const std::string& text) {
    std::string spec = text;
    for (char& c : spec) {
        if (c == '\n' || c == '\r')
            c = ';';
    }
    std::istringstream in(spec);
    std::string item;
    while (std::getline(in, item, ';')) {
        const auto b = item.find_first_not_of(" \t");
        if (b == std::string::npos || item[b] == '#')
            continue;
        item = item.substr(b, item.find_last_not_of(" \t") - b + 1);
        if (const auto tilde = item.find('~'); tilde != std::string::npos) {
            const std::string name = item.substr(0, tilde);
            const unsigned long ms = std::strtoul(item.c_str() + tilde + 1, nullptr, 0);
            for (int i = 0; i < kFnCount; ++i) {
                if (name == kNames[i])
                    gRules[i].delayMs = ms;
            }
            continue;
        }
        const auto eq = item.find('=');
        if (eq == std::string::npos)
            continue;
        const std::string name = item.substr(0, eq);
        const char* p = item.c_str() + eq + 1;
        char* end = nullptr;
        Rule r;
        r.active = true;
        r.rv = std::strtoul(p, &end, 0);
        if (end != nullptr && *end == '@')
            r.after = std::strtoul(end + 1, &end, 0);
        if (end != nullptr && *end == '*')
            r.times = std::strtoul(end + 1, &end, 0);
        for (int i = 0; i < kFnCount; ++i) {
            if (name == kNames[i]) {
                r.delayMs = gRules[i].delayMs;
                gRules[i] = r;
            }
        }
    }
}

// Caller holds gMutex.
void reloadIfChanged() {
    if (gFile.empty())
        return;
    struct stat st {};
    const bool exists = ::stat(gFile.c_str(), &st) == 0;
    if (exists == gFileSeen &&
        (!exists || (st.st_mtim.tv_sec == gFileStat.st_mtim.tv_sec &&
                     st.st_mtim.tv_nsec == gFileStat.st_mtim.tv_nsec &&
                     st.st_size == gFileStat.st_size && st.st_ino == gFileStat.st_ino)))
        return;
    gFileSeen = exists;
    gFileStat = st;
    for (Rule& r : gRules)
        r = Rule{};
    if (const char* env = std::getenv("BEST_P11_FAULT"))
        parseRules(env);
    if (exists) {
        std::ifstream f(gFile);
        std::stringstream ss;
        ss << f.rdbuf();
        parseRules(ss.str());
    }
}

// The injected CK_RV of this call (CKR_OK: forward it), and the delay to wait first.
CK_RV injected(int fn, unsigned long& delayMs) {
    std::lock_guard<std::mutex> g(gMutex);
    reloadIfChanged();
    Rule& r = gRules[fn];
    delayMs = r.delayMs;
    if (!r.active)
        return CKR_OK;
    if (r.seen < r.after) {
        ++r.seen;
        return CKR_OK;
    }
    if (r.times != 0 && r.fired >= r.times)
        return CKR_OK;
    ++r.fired;
    return r.rv;
}

template <auto Member, int I, typename Fn>
struct Forward;
template <auto Member, int I, typename... A>
struct Forward<Member, I, CK_RV (*)(A...)> {
    static CK_RV call(A... a) {
        unsigned long delayMs = 0;
        const CK_RV rv = injected(I, delayMs);
        if (delayMs != 0)
            std::this_thread::sleep_for(std::chrono::milliseconds(delayMs));
        if (rv != CKR_OK)
            return rv;
        return (gReal->*Member)(a...);
    }
};

CK_RV load() {
    std::lock_guard<std::mutex> g(gMutex);
    if (gReal != nullptr)
        return CKR_OK;
    const char* target = std::getenv("BEST_P11_SHIM_TARGET");
    void* lib = ::dlopen(target != nullptr ? target : "/usr/lib/softhsm/libsofthsm2.so",
                         RTLD_NOW | RTLD_LOCAL);
    if (lib == nullptr)
        return CKR_GENERAL_ERROR;
    void* sym = ::dlsym(lib, "C_GetFunctionList");
    if (sym == nullptr)
        return CKR_GENERAL_ERROR;
    CK_C_GetFunctionList get = nullptr;
    std::memcpy(&get, &sym, sizeof sym);
    CK_FUNCTION_LIST* real = nullptr;
    if (get(&real) != CKR_OK || real == nullptr)
        return CKR_GENERAL_ERROR;
    gReal = real;
    gList.version = real->version;
#define SHIM_SET(name) gList.name = &Forward<&CK_FUNCTION_LIST::name, k##name, CK_##name>::call;
    SHIM_FUNCTIONS(SHIM_SET)
#undef SHIM_SET
    gList.C_GetFunctionList = &C_GetFunctionList;
    if (const char* file = std::getenv("BEST_P11_FAULT_FILE"))
        gFile = file;
    gFileSeen = true;  // force the first load
    gFileStat = {};
    gFileStat.st_ino = static_cast<ino_t>(-1);
    reloadIfChanged();
    if (gFile.empty()) {
        if (const char* env = std::getenv("BEST_P11_FAULT"))
            parseRules(env);
    }
    return CKR_OK;
}

}  // namespace

extern "C" CK_RV C_GetFunctionList(CK_FUNCTION_LIST** list) {
    if (list == nullptr)
        return CKR_ARGUMENTS_BAD;
    if (const CK_RV rv = load(); rv != CKR_OK)
        return rv;
    *list = &gList;
    return CKR_OK;
}
