#include "hsm/token_uri.h"

#include <cstddef>

#include "common/hex.h"
#include "hsm/hsm_error.h"

namespace best::hsm {

namespace {

Result<std::string> percentDecode(std::string_view in, std::string_view what) {
    std::string out;
    out.reserve(in.size());
    for (std::size_t i = 0; i < in.size(); ++i) {
        if (in[i] != '%') {
            out += in[i];
            continue;
        }
        if (i + 2 >= in.size() || hexDigitValue(in[i + 1]) < 0 || hexDigitValue(in[i + 2]) < 0) {
            return makeError(HsmErrc::bad_config,
                             "pkcs11: URI: bad percent-encoding in '" + std::string(what) + "'");
        }
        out += static_cast<char>(hexDigitValue(in[i + 1]) * 16 + hexDigitValue(in[i + 2]));
        i += 2;
    }
    return out;
}

bool fieldEquals(const std::optional<std::string>& want, const unsigned char* field,
                 std::size_t size) {
    return !want || *want == trimPadded(field, size);
}

}  // namespace

std::string trimPadded(const unsigned char* field, std::size_t size) {
    std::size_t n = size;
    while (n > 0 && (field[n - 1] == ' ' || field[n - 1] == '\0'))
        --n;
    return std::string(reinterpret_cast<const char*>(field), n);
}

Result<TokenSelector> TokenSelector::parse(std::string_view text) {
    TokenSelector sel;
    sel.text = std::string(text);
    constexpr std::string_view kScheme = "pkcs11:";
    if (text.substr(0, kScheme.size()) != kScheme) {
        if (text.empty()) {
            return makeError(HsmErrc::bad_config,
                             "no token configured: set hsm.token to the token label or a "
                             "pkcs11: URI");
        }
        if (text.size() > 32) {
            return makeError(HsmErrc::bad_config, "token label '" + std::string(text) +
                                                      "' is longer than 32 octets (PKCS#11 "
                                                      "limit)");
        }
        sel.token = std::string(text);
        return sel;
    }
    std::string_view rest = text.substr(kScheme.size());
    std::string_view path = rest;
    std::string_view query;
    if (const auto q = rest.find('?'); q != std::string_view::npos) {
        path = rest.substr(0, q);
        query = rest.substr(q + 1);
    }
    // Path: attr=value pairs separated by ';'.
    while (!path.empty()) {
        const auto semi = path.find(';');
        const std::string_view item = path.substr(0, semi);
        path = semi == std::string_view::npos ? std::string_view() : path.substr(semi + 1);
        if (item.empty())
            continue;
        const auto eq = item.find('=');
        if (eq == std::string_view::npos) {
            return makeError(HsmErrc::bad_config, "pkcs11: URI: path attribute '" +
                                                      std::string(item) + "' has no value");
        }
        const std::string_view name = item.substr(0, eq);
        auto value = percentDecode(item.substr(eq + 1), name);
        if (!value)
            return makeError(value.error());
        std::optional<std::string>* slot = nullptr;
        if (name == "token")
            slot = &sel.token;
        else if (name == "manufacturer")
            slot = &sel.manufacturer;
        else if (name == "serial")
            slot = &sel.serial;
        else if (name == "model")
            slot = &sel.model;
        else if (name == "slot-description")
            slot = &sel.slotDescription;
        else if (name == "slot-manufacturer")
            slot = &sel.slotManufacturer;
        else if (name == "library-manufacturer")
            slot = &sel.libraryManufacturer;
        else if (name == "library-description")
            slot = &sel.libraryDescription;
        else if (name == "slot-id") {
            return makeError(HsmErrc::bad_config,
                             "pkcs11: URI: slot-id is not accepted (slot numbers change): select "
                             "the token by token=, serial= or manufacturer=");
        } else if (name == "object" || name == "id" || name == "type") {
            return makeError(HsmErrc::bad_config,
                             "pkcs11: URI: '" + std::string(name) +
                                 "' selects an object; the vault needs a token URI (token=, "
                                 "serial=, manufacturer=, model=)");
        } else {
            return makeError(HsmErrc::bad_config,
                             "pkcs11: URI: unknown path attribute '" + std::string(name) + "'");
        }
        if (*slot) {
            return makeError(HsmErrc::bad_config,
                             "pkcs11: URI: attribute '" + std::string(name) + "' given twice");
        }
        *slot = std::move(*value);
    }
    // Query: attr=value pairs separated by '&'.
    while (!query.empty()) {
        const auto amp = query.find('&');
        const std::string_view item = query.substr(0, amp);
        query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
        if (item.empty())
            continue;
        const auto eq = item.find('=');
        const std::string_view name = item.substr(0, eq);
        if (eq == std::string_view::npos) {
            return makeError(HsmErrc::bad_config, "pkcs11: URI: query attribute '" +
                                                      std::string(name) + "' has no value");
        }
        auto value = percentDecode(item.substr(eq + 1), name);
        if (!value)
            return makeError(value.error());
        if (name == "module-path") {
            sel.modulePath = std::move(*value);
        } else if (name == "pin-source") {
            std::string v = std::move(*value);
            if (v.rfind("file:", 0) == 0)
                v = v.substr(5);
            if (v.rfind("//", 0) == 0)
                v = v.substr(2);
            sel.pinSource = std::move(v);
        } else if (name == "pin-value") {
            return makeError(HsmErrc::bad_config,
                             "pkcs11: URI: pin-value is refused: put the PIN in a file readable "
                             "only by the service and name it with pin-source= or hsm.pin_file");
        } else if (name == "module-name") {
            return makeError(HsmErrc::bad_config,
                             "pkcs11: URI: module-name is not supported: use module-path= or "
                             "hsm.module");
        } else {
            return makeError(HsmErrc::bad_config,
                             "pkcs11: URI: unknown query attribute '" + std::string(name) + "'");
        }
    }
    if (!sel.token && !sel.serial && !sel.manufacturer && !sel.model) {
        return makeError(HsmErrc::bad_config,
                         "pkcs11: URI '" + sel.text +
                             "' selects no token: give at least token=, serial=, manufacturer= "
                             "or model=");
    }
    return sel;
}

bool TokenSelector::matches(const CK_TOKEN_INFO& t) const {
    return fieldEquals(token, t.label, sizeof t.label) &&
           fieldEquals(manufacturer, t.manufacturerID, sizeof t.manufacturerID) &&
           fieldEquals(serial, t.serialNumber, sizeof t.serialNumber) &&
           fieldEquals(model, t.model, sizeof t.model);
}

bool TokenSelector::matches(const CK_SLOT_INFO& s) const {
    return fieldEquals(slotDescription, s.slotDescription, sizeof s.slotDescription) &&
           fieldEquals(slotManufacturer, s.manufacturerID, sizeof s.manufacturerID);
}

bool TokenSelector::matches(const CK_INFO& l) const {
    return fieldEquals(libraryManufacturer, l.manufacturerID, sizeof l.manufacturerID) &&
           fieldEquals(libraryDescription, l.libraryDescription, sizeof l.libraryDescription);
}

std::string TokenSelector::describe() const {
    if (text.rfind("pkcs11:", 0) == 0)
        return "token " + text;
    return "token '" + text + "'";
}

}  // namespace best::hsm
