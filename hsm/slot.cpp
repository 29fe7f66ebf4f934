#include "hsm/slot.h"

namespace best::hsm {

Result<Slot> Slot::find(const Module& module, const TokenSelector& selector) {
    CK_INFO library{};
    auto info = module.call<P11Fn::C_GetInfo>(&library);
    if (!info)
        return makeError(info.error());
    CK_ULONG count = 0;
    auto r = module.call<P11Fn::C_GetSlotList>(static_cast<CK_BBOOL>(CK_TRUE),
                                               static_cast<CK_SLOT_ID*>(nullptr), &count);
    if (!r)
        return makeError(r.error());
    std::vector<CK_SLOT_ID> slots(count);
    if (count > 0) {
        r = module.call<P11Fn::C_GetSlotList>(static_cast<CK_BBOOL>(CK_TRUE), slots.data(), &count);
        if (!r)
            return makeError(r.error());
        slots.resize(count);
    }
    std::vector<std::string> seen;
    std::vector<Slot> matches;
    const bool libraryOk = selector.matches(library);
    for (CK_SLOT_ID id : slots) {
        CK_TOKEN_INFO token{};
        // A slot whose token vanished between the two calls is skipped, not fatal.
        if (module.callRaw<P11Fn::C_GetTokenInfo>(id, &token) != CKR_OK)
            continue;
        CK_SLOT_INFO slotInfo{};
        if (module.callRaw<P11Fn::C_GetSlotInfo>(id, &slotInfo) != CKR_OK)
            continue;
        std::string label = trimPadded(token.label, sizeof token.label);
        std::string serial = trimPadded(token.serialNumber, sizeof token.serialNumber);
        if ((token.flags & CKF_TOKEN_INITIALIZED) == 0)
            continue;
        seen.push_back("'" + label + "' (serial " + serial + ")");
        if (libraryOk && selector.matches(token) && selector.matches(slotInfo))
            matches.push_back(Slot(module, id, std::move(label), std::move(serial)));
    }
    if (matches.empty()) {
        std::string present;
        for (const std::string& s : seen)
            present += (present.empty() ? "" : ", ") + s;
        return makeError(HsmErrc::token_not_found,
                         selector.describe() + " not found in '" + module.path() +
                             "' (initialised tokens: " + (present.empty() ? "none" : present) +
                             "): initialise the token or fix hsm.token");
    }
    if (matches.size() > 1) {
        return makeError(HsmErrc::token_ambiguous,
                         selector.describe() + " matches " + std::to_string(matches.size()) +
                             " tokens: use a pkcs11: URI with serial= to pick one");
    }
    return std::move(matches.front());
}

Result<CK_TOKEN_INFO> Slot::tokenInfo() const {
    CK_TOKEN_INFO info{};
    auto r = module_->call<P11Fn::C_GetTokenInfo>(id_, &info);
    if (!r)
        return makeError(r.error());
    return info;
}

Result<std::vector<CK_MECHANISM_TYPE>> Slot::mechanisms() const {
    CK_ULONG count = 0;
    auto r = module_->call<P11Fn::C_GetMechanismList>(id_, static_cast<CK_MECHANISM_TYPE*>(nullptr),
                                                      &count);
    if (!r)
        return makeError(r.error());
    std::vector<CK_MECHANISM_TYPE> list(count);
    if (count > 0) {
        r = module_->call<P11Fn::C_GetMechanismList>(id_, list.data(), &count);
        if (!r)
            return makeError(r.error());
        list.resize(count);
    }
    return list;
}

Result<CK_MECHANISM_INFO> Slot::mechanismInfo(CK_MECHANISM_TYPE type) const {
    CK_MECHANISM_INFO info{};  // zero-initialised: SoftHSM ORs flags into it
    auto r = module_->call<P11Fn::C_GetMechanismInfo>(id_, type, &info);
    if (!r)
        return makeError(r.error());
    return info;
}

}  // namespace best::hsm
