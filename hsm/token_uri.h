// Which token to use: a plain token label, or an RFC 7512 "pkcs11:" URI. Never a slot number
// (slot ids change between boots and module versions; SoftHSM reassigns them at init).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <p11-kit/pkcs11.h>

#include "common/result.h"

namespace best::hsm {

struct TokenSelector {
    // Path attributes of RFC 7512 that select a token; unset = any.
    std::optional<std::string> token;         // CK_TOKEN_INFO.label
    std::optional<std::string> manufacturer;  // CK_TOKEN_INFO.manufacturerID
    std::optional<std::string> serial;        // CK_TOKEN_INFO.serialNumber
    std::optional<std::string> model;         // CK_TOKEN_INFO.model
    std::optional<std::string> slotDescription;
    std::optional<std::string> slotManufacturer;
    std::optional<std::string> libraryManufacturer;  // CK_INFO.manufacturerID
    std::optional<std::string> libraryDescription;   // CK_INFO.libraryDescription
    // Query attributes: module-path and pin-source (a file path or file: URI). A pin-value in
    // the URI is refused: a PIN belongs in a file, not in configuration.
    std::string modulePath;
    std::string pinSource;
    // The text it was parsed from, for messages.
    std::string text;

    // A text starting with "pkcs11:" is parsed as a URI; anything else is a token label.
    static Result<TokenSelector> parse(std::string_view labelOrUri);

    bool matches(const CK_TOKEN_INFO& token) const;
    bool matches(const CK_SLOT_INFO& slot) const;
    bool matches(const CK_INFO& library) const;
    // "token 'x'" or "token pkcs11:..." for messages.
    std::string describe() const;
};

// A blank-padded PKCS#11 info field without its padding.
std::string trimPadded(const unsigned char* field, std::size_t size);

}  // namespace best::hsm
