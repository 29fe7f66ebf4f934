#include "store/validate.h"

#include <chrono>

namespace best::store {

std::int64_t unixNow() noexcept {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

Result<void> checkImsi(std::string_view imsi) {
    if (imsi.size() < 6 || imsi.size() > 15) {
        return makeError(StoreErrc::invalid_argument,
                         "IMSI must have 6 to 15 digits, got " + std::to_string(imsi.size()));
    }
    for (const char c : imsi) {
        if (c < '0' || c > '9') {
            return makeError(StoreErrc::invalid_argument, "IMSI must contain digits only");
        }
    }
    return {};
}

Result<void> checkUtf8Id(std::string_view value, std::string_view what, std::size_t maxOctets) {
    if (value.empty() || value.size() > maxOctets) {
        return makeError(StoreErrc::invalid_argument,
                         std::string(what) + " must have 1 to " + std::to_string(maxOctets) +
                             " octets, got " + std::to_string(value.size()));
    }
    // Well-formed UTF-8 without control characters (these ids appear in logs and XML).
    std::size_t i = 0;
    while (i < value.size()) {
        const auto c = static_cast<unsigned char>(value[i]);
        std::size_t len = 0;
        std::uint32_t cp = 0;
        if (c < 0x80) {
            len = 1;
            cp = c;
        } else if ((c & 0xe0) == 0xc0) {
            len = 2;
            cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            len = 3;
            cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            len = 4;
            cp = c & 0x07;
        } else {
            return makeError(StoreErrc::invalid_argument, std::string(what) + " is not UTF-8");
        }
        if (i + len > value.size()) {
            return makeError(StoreErrc::invalid_argument, std::string(what) + " is not UTF-8");
        }
        for (std::size_t j = 1; j < len; ++j) {
            const auto cc = static_cast<unsigned char>(value[i + j]);
            if ((cc & 0xc0) != 0x80) {
                return makeError(StoreErrc::invalid_argument, std::string(what) + " is not UTF-8");
            }
            cp = (cp << 6) | (cc & 0x3f);
        }
        const bool overlong =
            (len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000);
        if (overlong || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
            return makeError(StoreErrc::invalid_argument, std::string(what) + " is not UTF-8");
        }
        if (cp < 0x20 || cp == 0x7f) {
            return makeError(StoreErrc::invalid_argument,
                             std::string(what) + " contains a control character");
        }
        i += len;
    }
    return {};
}

Result<void> checkBlob(const WrappedBlob& b, std::string_view what) {
    if (b.data.empty() || b.data.size() > kMaxBlobSize) {
        return makeError(StoreErrc::invalid_argument, std::string(what) + " blob must have 1 to " +
                                                          std::to_string(kMaxBlobSize) +
                                                          " octets, got " +
                                                          std::to_string(b.data.size()));
    }
    if (b.binding.empty() || b.binding.size() > kMaxBindingSize) {
        return makeError(StoreErrc::invalid_argument,
                         std::string(what) + " binding MAC must have 1 to " +
                             std::to_string(kMaxBindingSize) + " octets, got " +
                             std::to_string(b.binding.size()));
    }
    return {};
}

}  // namespace best::store
