// Errors of the PKCS#11 layer and the KeyVault (conventions 5): one enum, readable messages that
// say what to do. Messages never contain key material or PINs.
#pragma once

#include <string>
#include <string_view>

#include <p11-kit/pkcs11.h>

#include "common/result.h"

namespace best::hsm {

enum class HsmErrc {
    module_not_found = 1,  // dlopen() failed: no such file or not loadable
    module_invalid,        // loaded, but not a usable PKCS#11 module (no C_GetFunctionList, ...)
    bad_config,            // token selector / pkcs:11 URI / settings unusable
    token_not_found,       // no token matches the label or URI
    token_ambiguous,       // more than one token matches
    pin_file,              // PIN file missing, unreadable, empty or readable by others
    pin_incorrect,         // CKR_PIN_INCORRECT
    pin_locked,            // CKR_PIN_LOCKED / CKR_PIN_EXPIRED
    mechanism_missing,     // the token lacks a mechanism (or key size) the vault needs
    token_failure,         // device removed, token storage gone, device error, ...
    not_logged_in,         // CKR_USER_NOT_LOGGED_IN mid-run (the vault logs in again)
    key_missing,           // the token keys are not on the token: run `best-hsectl hsm init`
    key_exists,            // init refused: the token keys already exist
    key_invalid,           // a session-object handle is no longer valid
    token_key_unsafe,      // a token key has the wrong attributes (extractable, wrong usage)
    blob_malformed,        // not a blob of this format / purpose, truncated, wrong sizes
    blob_binding,          // binding tag does not verify: blob altered or moved to another row
    unwrap_failed,         // the token refused to unwrap the blob's payload
    bad_input,             // a caller argument is out of range
    busy,                  // the HSM worker queue is full
    shutting_down,         // the vault is stopping
    pkcs11,                // any other CK_RV (message names it)
    crypto,                // a software step (host side) failed
    internal,              // an unexpected exception inside a job
};

inline ErrorDomain errorDomainOf(HsmErrc) {
    return ErrorDomain::hsm;
}

// "CKR_PIN_INCORRECT" etc.; "CKR_0x..." for codes without a name here.
std::string ckrName(CK_RV rv);
// "CKM_AES_KEY_WRAP" etc.
std::string ckmName(CK_MECHANISM_TYPE m);

// The classification of a CK_RV (what the error means for the caller).
HsmErrc classify(CK_RV rv) noexcept;

// What an operator should do about a CK_RV of that class (one sentence, no trailing period).
std::string_view adviceFor(CK_RV rv) noexcept;

}  // namespace best::hsm
