#include "vectors.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "common/hex.h"

namespace best::crypto::test {

std::string Record::text(const std::string& key) const {
    const auto it = fields.find(key);
    if (it == fields.end()) {
        ADD_FAILURE() << "line " << line << ": field '" << key << "' missing";
        return {};
    }
    return it->second;
}

Bytes Record::bytes(const std::string& key) const {
    const auto it = fields.find(key);
    if (it == fields.end()) {
        ADD_FAILURE() << "line " << line << ": field '" << key << "' missing";
        return {};
    }
    return hexBytes(it->second);
}

std::uint32_t Record::u32(const std::string& key) const {
    const std::string t = text(key);
    char* end = nullptr;
    const unsigned long v = std::strtoul(t.c_str(), &end, 16);
    if (t.empty() || t.size() > 8 || end == nullptr || *end != '\0') {
        ADD_FAILURE() << "line " << line << ": field '" << key << "' is not 1..8 hex digits";
        return 0;
    }
    return static_cast<std::uint32_t>(v);
}

unsigned long Record::number(const std::string& key) const {
    const std::string t = text(key);
    char* end = nullptr;
    const unsigned long v = std::strtoul(t.c_str(), &end, 10);
    if (t.empty() || end == nullptr || *end != '\0') {
        ADD_FAILURE() << "line " << line << ": field '" << key << "' is not a decimal number";
    }
    return v;
}

void Record::sizeMismatch(const std::string& key, std::size_t want, std::size_t got) const {
    ADD_FAILURE() << "line " << line << ": field '" << key << "' has " << got << " octets, want "
                  << want;
}

std::string dataPath(std::string_view name) {
    const char* dir = std::getenv("BEST_TEST_DATA");
    if (dir == nullptr || *dir == '\0') {
        ADD_FAILURE() << "BEST_TEST_DATA is not set (run the tests through meson test)";
        return std::string(name);
    }
    return std::string(dir) + "/" + std::string(name);
}

std::string readDataFile(std::string_view name) {
    const std::string path = dataPath(name);
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        ADD_FAILURE() << "cannot read " << path;
        return {};
    }
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

std::vector<Record> readRecords(std::string_view name, std::string_view kind) {
    std::vector<Record> out;
    std::istringstream lines(readDataFile(name));
    std::string line;
    int lineNo = 0;
    while (std::getline(lines, line)) {
        ++lineNo;
        if (line.empty() || line[0] == '#')
            continue;
        std::istringstream words(line);
        std::string word;
        Record r;
        r.line = lineNo;
        bool first = true;
        while (words >> word) {
            const auto eq = word.find('=');
            if (eq == std::string::npos) {
                if (first) {
                    r.kind = word;
                } else {
                    ADD_FAILURE() << name << ":" << lineNo << ": stray word '" << word << "'";
                }
            } else {
                r.fields[word.substr(0, eq)] = word.substr(eq + 1);
            }
            first = false;
        }
        if (r.fields.empty() && r.kind.empty())
            continue;
        if (!kind.empty() && r.kind != kind)
            continue;
        out.push_back(std::move(r));
    }
    return out;
}

Bytes hexBytes(std::string_view h) {
    auto b = fromHex(h, "test vector");
    if (!b) {
        ADD_FAILURE() << b.error().describe() << " in '" << h << "'";
        return {};
    }
    return *b;
}

std::string hex(ByteView b) {
    return toHex(b);
}

}  // namespace best::crypto::test
