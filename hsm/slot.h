// The slot holding the configured token, found by label or pkcs11: URI (conventions 3).
#pragma once

#include <string>
#include <vector>

#include <p11-kit/pkcs11.h>

#include "common/result.h"
#include "hsm/module.h"
#include "hsm/token_uri.h"

namespace best::hsm {

class Slot {
public:
    // Exactly one token must match; errors: token_not_found (names the tokens that are there),
    // token_ambiguous (asks for serial=).
    static Result<Slot> find(const Module& module, const TokenSelector& selector);

    CK_SLOT_ID id() const noexcept { return id_; }
    const std::string& label() const noexcept { return label_; }
    const std::string& serial() const noexcept { return serial_; }

    Result<CK_TOKEN_INFO> tokenInfo() const;
    Result<std::vector<CK_MECHANISM_TYPE>> mechanisms() const;
    // Zero-initialised CK_MECHANISM_INFO (SoftHSM ORs flags into it).
    Result<CK_MECHANISM_INFO> mechanismInfo(CK_MECHANISM_TYPE type) const;

private:
    Slot(const Module& module, CK_SLOT_ID id, std::string label, std::string serial)
        : module_(&module), id_(id), label_(std::move(label)), serial_(std::move(serial)) {}

    const Module* module_;
    CK_SLOT_ID id_;
    std::string label_;
    std::string serial_;
};

}  // namespace best::hsm
