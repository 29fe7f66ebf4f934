// JSON output (RFC 8259): string literals and a compact writer, shared by best-hsectl's --json
// output and the daemon's admin socket answers.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace best {

// `s` as a JSON string literal, quotes included; control characters and DEL as \u00XX.
std::string jsonString(std::string_view s);

// A compact JSON writer: one document, no white space. Members are written with their key;
// inside an array, pass an empty key (or use item() for strings).
class JsonOut {
public:
    JsonOut& begin();  // {
    JsonOut& end();    // }
    JsonOut& beginArray(std::string_view key = {});
    JsonOut& endArray();
    JsonOut& beginObject(std::string_view key);  // "key":{  (key empty inside an array)
    JsonOut& field(std::string_view key, std::string_view v);
    JsonOut& field(std::string_view key, const char* v) { return field(key, std::string_view(v)); }
    JsonOut& field(std::string_view key, const std::string& v) {
        return field(key, std::string_view(v));
    }
    JsonOut& field(std::string_view key, const std::optional<std::string>& v);  // null when empty
    JsonOut& field(std::string_view key, std::uint64_t v);
    JsonOut& field(std::string_view key, std::int64_t v);
    JsonOut& field(std::string_view key, int v) { return field(key, std::int64_t{v}); }
    JsonOut& field(std::string_view key, unsigned v) { return field(key, std::uint64_t{v}); }
    JsonOut& field(std::string_view key, bool v);
    JsonOut& field(std::string_view key, double v);
    JsonOut& field(std::string_view key, const std::vector<std::string>& v);  // array of strings
    JsonOut& null(std::string_view key);
    JsonOut& item(std::string_view v);  // a string in an array
    const std::string& str() const noexcept { return out_; }
    static std::string quote(std::string_view s) { return jsonString(s); }

private:
    void comma();
    void name(std::string_view key);
    JsonOut& open(char bracket);
    JsonOut& close(char bracket);
    std::string out_;
    std::vector<bool> first_;  // per open container: nothing written in it yet
};

}  // namespace best
