#include "common/json.h"

#include <cmath>
#include <cstdio>

namespace best {

std::string jsonString(std::string_view s) {
    std::string out = "\"";
    for (const char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        switch (c) {
            case '"':
                out += "\\\"";
                break;
            case '\\':
                out += "\\\\";
                break;
            case '\n':
                out += "\\n";
                break;
            case '\r':
                out += "\\r";
                break;
            case '\t':
                out += "\\t";
                break;
            default:
                if (c < 0x20 || c == 0x7f) {
                    char buf[8];
                    std::snprintf(buf, sizeof buf, "\\u%04x", c);
                    out += buf;
                } else {
                    out += ch;
                }
        }
    }
    out += '"';
    return out;
}

void JsonOut::comma() {
    if (!first_.empty()) {
        if (!first_.back())
            out_ += ',';
        first_.back() = false;
    }
}

void JsonOut::name(std::string_view key) {
    comma();
    if (!key.empty())
        out_ += quote(key) + ":";
}

JsonOut& JsonOut::open(char bracket) {
    out_ += bracket;
    first_.push_back(true);
    return *this;
}

JsonOut& JsonOut::close(char bracket) {
    out_ += bracket;
    first_.pop_back();
    return *this;
}

JsonOut& JsonOut::begin() {
    comma();
    return open('{');
}

JsonOut& JsonOut::end() {
    return close('}');
}

JsonOut& JsonOut::beginArray(std::string_view key) {
    name(key);
    return open('[');
}

JsonOut& JsonOut::endArray() {
    return close(']');
}

JsonOut& JsonOut::beginObject(std::string_view key) {
    name(key);
    return open('{');
}

JsonOut& JsonOut::field(std::string_view key, std::string_view v) {
    name(key);
    out_ += quote(v);
    return *this;
}

JsonOut& JsonOut::field(std::string_view key, std::uint64_t v) {
    name(key);
    out_ += std::to_string(v);
    return *this;
}

JsonOut& JsonOut::field(std::string_view key, std::int64_t v) {
    name(key);
    out_ += std::to_string(v);
    return *this;
}

JsonOut& JsonOut::field(std::string_view key, bool v) {
    name(key);
    out_ += v ? "true" : "false";
    return *this;
}

JsonOut& JsonOut::field(std::string_view key, double v) {
    name(key);
    char b[32];
    std::snprintf(b, sizeof b, "%.6g", std::isfinite(v) ? v : 0.0);
    out_ += b;
    return *this;
}

JsonOut& JsonOut::field(std::string_view key, const std::optional<std::string>& v) {
    return v ? field(key, std::string_view(*v)) : null(key);
}

JsonOut& JsonOut::field(std::string_view key, const std::vector<std::string>& v) {
    beginArray(key);
    for (const auto& s : v)
        item(s);
    return endArray();
}

JsonOut& JsonOut::null(std::string_view key) {
    name(key);
    out_ += "null";
    return *this;
}

JsonOut& JsonOut::item(std::string_view v) {
    comma();
    out_ += quote(v);
    return *this;
}

}  // namespace best
