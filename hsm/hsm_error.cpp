#include "hsm/hsm_error.h"

#include <cstdio>

namespace best::hsm {

namespace {

std::string hexCode(const char* prefix, unsigned long v) {
    char buf[48];
    std::snprintf(buf, sizeof buf, "%s0x%lx", prefix, v);
    return buf;
}

}  // namespace

std::string ckrName(CK_RV rv) {
    switch (rv) {
        case CKR_OK:
            return "CKR_OK";
        case CKR_CANCEL:
            return "CKR_CANCEL";
        case CKR_HOST_MEMORY:
            return "CKR_HOST_MEMORY";
        case CKR_SLOT_ID_INVALID:
            return "CKR_SLOT_ID_INVALID";
        case CKR_GENERAL_ERROR:
            return "CKR_GENERAL_ERROR";
        case CKR_FUNCTION_FAILED:
            return "CKR_FUNCTION_FAILED";
        case CKR_ARGUMENTS_BAD:
            return "CKR_ARGUMENTS_BAD";
        case CKR_NO_EVENT:
            return "CKR_NO_EVENT";
        case CKR_NEED_TO_CREATE_THREADS:
            return "CKR_NEED_TO_CREATE_THREADS";
        case CKR_CANT_LOCK:
            return "CKR_CANT_LOCK";
        case CKR_ATTRIBUTE_READ_ONLY:
            return "CKR_ATTRIBUTE_READ_ONLY";
        case CKR_ATTRIBUTE_SENSITIVE:
            return "CKR_ATTRIBUTE_SENSITIVE";
        case CKR_ATTRIBUTE_TYPE_INVALID:
            return "CKR_ATTRIBUTE_TYPE_INVALID";
        case CKR_ATTRIBUTE_VALUE_INVALID:
            return "CKR_ATTRIBUTE_VALUE_INVALID";
        case CKR_ACTION_PROHIBITED:
            return "CKR_ACTION_PROHIBITED";
        case CKR_DATA_INVALID:
            return "CKR_DATA_INVALID";
        case CKR_DATA_LEN_RANGE:
            return "CKR_DATA_LEN_RANGE";
        case CKR_DEVICE_ERROR:
            return "CKR_DEVICE_ERROR";
        case CKR_DEVICE_MEMORY:
            return "CKR_DEVICE_MEMORY";
        case CKR_DEVICE_REMOVED:
            return "CKR_DEVICE_REMOVED";
        case CKR_ENCRYPTED_DATA_INVALID:
            return "CKR_ENCRYPTED_DATA_INVALID";
        case CKR_ENCRYPTED_DATA_LEN_RANGE:
            return "CKR_ENCRYPTED_DATA_LEN_RANGE";
        case CKR_FUNCTION_CANCELED:
            return "CKR_FUNCTION_CANCELED";
        case CKR_FUNCTION_NOT_PARALLEL:
            return "CKR_FUNCTION_NOT_PARALLEL";
        case CKR_FUNCTION_NOT_SUPPORTED:
            return "CKR_FUNCTION_NOT_SUPPORTED";
        case CKR_KEY_HANDLE_INVALID:
            return "CKR_KEY_HANDLE_INVALID";
        case CKR_KEY_SIZE_RANGE:
            return "CKR_KEY_SIZE_RANGE";
        case CKR_KEY_TYPE_INCONSISTENT:
            return "CKR_KEY_TYPE_INCONSISTENT";
        case CKR_KEY_NOT_NEEDED:
            return "CKR_KEY_NOT_NEEDED";
        case CKR_KEY_CHANGED:
            return "CKR_KEY_CHANGED";
        case CKR_KEY_NEEDED:
            return "CKR_KEY_NEEDED";
        case CKR_KEY_INDIGESTIBLE:
            return "CKR_KEY_INDIGESTIBLE";
        case CKR_KEY_FUNCTION_NOT_PERMITTED:
            return "CKR_KEY_FUNCTION_NOT_PERMITTED";
        case CKR_KEY_NOT_WRAPPABLE:
            return "CKR_KEY_NOT_WRAPPABLE";
        case CKR_KEY_UNEXTRACTABLE:
            return "CKR_KEY_UNEXTRACTABLE";
        case CKR_MECHANISM_INVALID:
            return "CKR_MECHANISM_INVALID";
        case CKR_MECHANISM_PARAM_INVALID:
            return "CKR_MECHANISM_PARAM_INVALID";
        case CKR_OBJECT_HANDLE_INVALID:
            return "CKR_OBJECT_HANDLE_INVALID";
        case CKR_OPERATION_ACTIVE:
            return "CKR_OPERATION_ACTIVE";
        case CKR_OPERATION_NOT_INITIALIZED:
            return "CKR_OPERATION_NOT_INITIALIZED";
        case CKR_PIN_INCORRECT:
            return "CKR_PIN_INCORRECT";
        case CKR_PIN_INVALID:
            return "CKR_PIN_INVALID";
        case CKR_PIN_LEN_RANGE:
            return "CKR_PIN_LEN_RANGE";
        case CKR_PIN_EXPIRED:
            return "CKR_PIN_EXPIRED";
        case CKR_PIN_LOCKED:
            return "CKR_PIN_LOCKED";
        case CKR_SESSION_CLOSED:
            return "CKR_SESSION_CLOSED";
        case CKR_SESSION_COUNT:
            return "CKR_SESSION_COUNT";
        case CKR_SESSION_HANDLE_INVALID:
            return "CKR_SESSION_HANDLE_INVALID";
        case CKR_SESSION_PARALLEL_NOT_SUPPORTED:
            return "CKR_SESSION_PARALLEL_NOT_SUPPORTED";
        case CKR_SESSION_READ_ONLY:
            return "CKR_SESSION_READ_ONLY";
        case CKR_SESSION_EXISTS:
            return "CKR_SESSION_EXISTS";
        case CKR_SESSION_READ_ONLY_EXISTS:
            return "CKR_SESSION_READ_ONLY_EXISTS";
        case CKR_SESSION_READ_WRITE_SO_EXISTS:
            return "CKR_SESSION_READ_WRITE_SO_EXISTS";
        case CKR_SIGNATURE_INVALID:
            return "CKR_SIGNATURE_INVALID";
        case CKR_SIGNATURE_LEN_RANGE:
            return "CKR_SIGNATURE_LEN_RANGE";
        case CKR_TEMPLATE_INCOMPLETE:
            return "CKR_TEMPLATE_INCOMPLETE";
        case CKR_TEMPLATE_INCONSISTENT:
            return "CKR_TEMPLATE_INCONSISTENT";
        case CKR_TOKEN_NOT_PRESENT:
            return "CKR_TOKEN_NOT_PRESENT";
        case CKR_TOKEN_NOT_RECOGNIZED:
            return "CKR_TOKEN_NOT_RECOGNIZED";
        case CKR_TOKEN_WRITE_PROTECTED:
            return "CKR_TOKEN_WRITE_PROTECTED";
        case CKR_UNWRAPPING_KEY_SIZE_RANGE:
            return "CKR_UNWRAPPING_KEY_SIZE_RANGE";
        case CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT:
            return "CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT";
        case CKR_USER_ALREADY_LOGGED_IN:
            return "CKR_USER_ALREADY_LOGGED_IN";
        case CKR_USER_NOT_LOGGED_IN:
            return "CKR_USER_NOT_LOGGED_IN";
        case CKR_USER_PIN_NOT_INITIALIZED:
            return "CKR_USER_PIN_NOT_INITIALIZED";
        case CKR_USER_TYPE_INVALID:
            return "CKR_USER_TYPE_INVALID";
        case CKR_USER_ANOTHER_ALREADY_LOGGED_IN:
            return "CKR_USER_ANOTHER_ALREADY_LOGGED_IN";
        case CKR_USER_TOO_MANY_TYPES:
            return "CKR_USER_TOO_MANY_TYPES";
        case CKR_WRAPPED_KEY_INVALID:
            return "CKR_WRAPPED_KEY_INVALID";
        case CKR_WRAPPED_KEY_LEN_RANGE:
            return "CKR_WRAPPED_KEY_LEN_RANGE";
        case CKR_WRAPPING_KEY_HANDLE_INVALID:
            return "CKR_WRAPPING_KEY_HANDLE_INVALID";
        case CKR_WRAPPING_KEY_SIZE_RANGE:
            return "CKR_WRAPPING_KEY_SIZE_RANGE";
        case CKR_WRAPPING_KEY_TYPE_INCONSISTENT:
            return "CKR_WRAPPING_KEY_TYPE_INCONSISTENT";
        case CKR_RANDOM_SEED_NOT_SUPPORTED:
            return "CKR_RANDOM_SEED_NOT_SUPPORTED";
        case CKR_RANDOM_NO_RNG:
            return "CKR_RANDOM_NO_RNG";
        case CKR_DOMAIN_PARAMS_INVALID:
            return "CKR_DOMAIN_PARAMS_INVALID";
        case CKR_CURVE_NOT_SUPPORTED:
            return "CKR_CURVE_NOT_SUPPORTED";
        case CKR_BUFFER_TOO_SMALL:
            return "CKR_BUFFER_TOO_SMALL";
        case CKR_SAVED_STATE_INVALID:
            return "CKR_SAVED_STATE_INVALID";
        case CKR_INFORMATION_SENSITIVE:
            return "CKR_INFORMATION_SENSITIVE";
        case CKR_STATE_UNSAVEABLE:
            return "CKR_STATE_UNSAVEABLE";
        case CKR_CRYPTOKI_NOT_INITIALIZED:
            return "CKR_CRYPTOKI_NOT_INITIALIZED";
        case CKR_CRYPTOKI_ALREADY_INITIALIZED:
            return "CKR_CRYPTOKI_ALREADY_INITIALIZED";
        case CKR_MUTEX_BAD:
            return "CKR_MUTEX_BAD";
        case CKR_MUTEX_NOT_LOCKED:
            return "CKR_MUTEX_NOT_LOCKED";
        case CKR_NEW_PIN_MODE:
            return "CKR_NEW_PIN_MODE";
        case CKR_NEXT_OTP:
            return "CKR_NEXT_OTP";
        case CKR_EXCEEDED_MAX_ITERATIONS:
            return "CKR_EXCEEDED_MAX_ITERATIONS";
        case CKR_FIPS_SELF_TEST_FAILED:
            return "CKR_FIPS_SELF_TEST_FAILED";
        case CKR_LIBRARY_LOAD_FAILED:
            return "CKR_LIBRARY_LOAD_FAILED";
        case CKR_PIN_TOO_WEAK:
            return "CKR_PIN_TOO_WEAK";
        case CKR_PUBLIC_KEY_INVALID:
            return "CKR_PUBLIC_KEY_INVALID";
        case CKR_FUNCTION_REJECTED:
            return "CKR_FUNCTION_REJECTED";
        default:
            break;
    }
    return hexCode("CKR_", rv);
}

std::string ckmName(CK_MECHANISM_TYPE m) {
    switch (m) {
        case CKM_AES_ECB:
            return "CKM_AES_ECB";
        case CKM_AES_CBC:
            return "CKM_AES_CBC";
        case CKM_AES_KEY_GEN:
            return "CKM_AES_KEY_GEN";
        case CKM_AES_KEY_WRAP:
            return "CKM_AES_KEY_WRAP";
        case CKM_AES_KEY_WRAP_PAD:
            return "CKM_AES_KEY_WRAP_PAD";
        case CKM_SHA256_HMAC:
            return "CKM_SHA256_HMAC";
        case CKM_GENERIC_SECRET_KEY_GEN:
            return "CKM_GENERIC_SECRET_KEY_GEN";
        default:
            break;
    }
    return hexCode("CKM_", m);
}

HsmErrc classify(CK_RV rv) noexcept {
    switch (rv) {
        case CKR_PIN_INCORRECT:
        case CKR_PIN_INVALID:
        case CKR_PIN_LEN_RANGE:
            return HsmErrc::pin_incorrect;
        case CKR_PIN_LOCKED:
        case CKR_PIN_EXPIRED:
            return HsmErrc::pin_locked;
        case CKR_MECHANISM_INVALID:
        case CKR_MECHANISM_PARAM_INVALID:
        case CKR_KEY_SIZE_RANGE:
        case CKR_FUNCTION_NOT_SUPPORTED:
            return HsmErrc::mechanism_missing;
        case CKR_DEVICE_REMOVED:
        case CKR_DEVICE_ERROR:
        case CKR_DEVICE_MEMORY:
        case CKR_TOKEN_NOT_PRESENT:
        case CKR_TOKEN_NOT_RECOGNIZED:
        case CKR_GENERAL_ERROR:
        case CKR_FUNCTION_FAILED:
        case CKR_SESSION_HANDLE_INVALID:
        case CKR_SESSION_CLOSED:
        case CKR_SLOT_ID_INVALID:
        case CKR_CRYPTOKI_NOT_INITIALIZED:
            return HsmErrc::token_failure;
        case CKR_USER_NOT_LOGGED_IN:
            return HsmErrc::not_logged_in;
        case CKR_KEY_HANDLE_INVALID:
        case CKR_OBJECT_HANDLE_INVALID:
        case CKR_WRAPPING_KEY_HANDLE_INVALID:
        case CKR_UNWRAPPING_KEY_HANDLE_INVALID:
            return HsmErrc::key_invalid;
        case CKR_WRAPPED_KEY_INVALID:
        case CKR_WRAPPED_KEY_LEN_RANGE:
        case CKR_ENCRYPTED_DATA_INVALID:
        case CKR_ENCRYPTED_DATA_LEN_RANGE:
            return HsmErrc::unwrap_failed;
        case CKR_SIGNATURE_INVALID:
        case CKR_SIGNATURE_LEN_RANGE:
            return HsmErrc::blob_binding;
        default:
            break;
    }
    return HsmErrc::pkcs11;
}

std::string_view adviceFor(CK_RV rv) noexcept {
    switch (classify(rv)) {
        case HsmErrc::pin_incorrect:
            return "the PIN is wrong: check the PIN file (tokens lock the PIN after repeated "
                   "failures, so do not retry blindly)";
        case HsmErrc::pin_locked:
            return "the user PIN is locked or expired: the token's security officer must reset "
                   "it (e.g. softhsm2-util / the HSM vendor's tool), then update the PIN file";
        case HsmErrc::mechanism_missing:
            return "the token does not offer this mechanism or key size: use a token (or "
                   "token configuration) that does";
        case HsmErrc::token_failure:
            return "the token is failing or was removed: check the HSM (device, connection, "
                   "token storage), then restart the service";
        case HsmErrc::not_logged_in:
            return "the token session lost its login: the vault logs in again; if this "
                   "repeats, check that nothing else logs out of the token";
        case HsmErrc::key_invalid:
            return "a key handle is no longer valid (token re-login or storage change): the "
                   "vault drops its cache and retries once";
        case HsmErrc::unwrap_failed:
            return "the token refused the wrapped data: the blob was not made under this "
                   "token's keys";
        case HsmErrc::blob_binding:
            return "the binding tag does not verify: the blob was altered or belongs to "
                   "another row";
        default:
            break;
    }
    return "unexpected PKCS#11 result: see the token's documentation for this code";
}

}  // namespace best::hsm
