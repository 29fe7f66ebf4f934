#include "common/hex.h"

#include <openssl/crypto.h>

namespace best {
namespace {

std::string_view trim(std::string_view s) noexcept {
    constexpr std::string_view ws = " \t\r\n";
    auto b = s.find_first_not_of(ws);
    if (b == std::string_view::npos)
        return {};
    auto e = s.find_last_not_of(ws);
    return s.substr(b, e - b + 1);
}

}  // namespace

int hexDigitValue(char c) noexcept {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

std::string toHex(ByteView data) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    out.resize(data.size() * 2);
    for (std::size_t i = 0; i < data.size(); ++i) {
        out[2 * i] = digits[data[i] >> 4];
        out[2 * i + 1] = digits[data[i] & 0xf];
    }
    return out;
}

Result<void> fromHexInto(std::string_view text, std::string_view what, MutableByteView out) {
    text = trim(text);
    if (text.size() % 2 != 0) {
        return makeError(HexErrc::odd_length,
                         std::string(what) + ": hex has an odd number of digits");
    }
    if (text.size() / 2 != out.size()) {
        return makeError(HexErrc::wrong_length, std::string(what) + ": expected " +
                                                    std::to_string(out.size()) + " octets, got " +
                                                    std::to_string(text.size() / 2));
    }
    for (std::size_t i = 0; i < out.size(); ++i) {
        int hi = hexDigitValue(text[2 * i]);
        int lo = hexDigitValue(text[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            OPENSSL_cleanse(out.data(), out.size());
            return makeError(HexErrc::bad_digit, std::string(what) +
                                                     ": not a hex digit at position " +
                                                     std::to_string(2 * i + (hi < 0 ? 0 : 1)));
        }
        out[i] = static_cast<std::uint8_t>((hi << 4) | lo);
    }
    return {};
}

Result<Bytes> fromHex(std::string_view text, std::string_view what,
                      std::optional<std::size_t> expected) {
    text = trim(text);
    if (text.size() % 2 != 0) {
        return makeError(HexErrc::odd_length,
                         std::string(what) + ": hex has an odd number of digits");
    }
    Bytes out(text.size() / 2);
    if (expected && *expected != out.size()) {
        return makeError(HexErrc::wrong_length, std::string(what) + ": expected " +
                                                    std::to_string(*expected) + " octets, got " +
                                                    std::to_string(out.size()));
    }
    auto r = fromHexInto(text, what, out);
    if (!r)
        return tl::unexpected(r.error());
    return out;
}

}  // namespace best
