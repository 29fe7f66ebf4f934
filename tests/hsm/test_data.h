// Readers for tests/data: the TS 35.207 Milenage sets and the profile's worked example.
#pragma once

#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/bytes.h"
#include "common/hex.h"

namespace best::testing {

inline std::string dataPath(const std::string& name) {
    const char* dir = std::getenv("BEST_TEST_DATA");
    if (dir == nullptr)
        throw std::runtime_error("BEST_TEST_DATA is not set (run the tests through meson test)");
    return std::string(dir) + "/" + name;
}

inline Bytes hexBytes(const std::string& hex) {
    auto b = fromHex(hex, "test value");
    if (!b)
        throw std::runtime_error("bad hex in test data: " + hex);
    return *b;
}

// One line of milenage-ts35207.txt: field name -> hex.
using MilenageSet = std::map<std::string, std::string>;

inline std::vector<MilenageSet> milenageSets() {
    std::ifstream f(dataPath("milenage-ts35207.txt"));
    if (!f)
        throw std::runtime_error("cannot read milenage-ts35207.txt in BEST_TEST_DATA");
    std::vector<MilenageSet> sets;
    std::string line;
    while (std::getline(f, line)) {
        if (line.empty() || line[0] == '#')
            continue;
        std::istringstream in(line);
        std::string field;
        MilenageSet s;
        while (in >> field) {
            const auto eq = field.find('=');
            if (eq != std::string::npos)
                s[field.substr(0, eq)] = field.substr(eq + 1);
        }
        if (!s.empty())
            sets.push_back(s);
    }
    return sets;
}

// The worked example's key blocks ("## Keys of session A", "## Pending key set KID 3", ...):
// label (the text before the hex, trimmed: "KInt", "KSess", "R (UMTS: CK||IK)", ...) -> hex.
struct ExampleBlock {
    std::string title;
    std::map<std::string, std::string> values;  // first word(s) before '=' or the hex
};

inline std::vector<ExampleBlock> exampleBlocks() {
    std::ifstream f(dataPath("profile-example.txt"));
    if (!f)
        throw std::runtime_error("cannot read profile-example.txt in BEST_TEST_DATA");
    std::vector<ExampleBlock> blocks;
    std::string line;
    ExampleBlock* cur = nullptr;
    while (std::getline(f, line)) {
        if (line.rfind("## ", 0) == 0 || line.rfind("# ", 0) == 0 || line.rfind("### ", 0) == 0) {
            blocks.push_back(ExampleBlock{line, {}});
            cur = &blocks.back();
            continue;
        }
        if (cur == nullptr || line.size() < 3 || line[0] != ' ' || line[1] != ' ')
            continue;
        // "  KInt = KDF(R, 0xB0, ...)  c58e...": the key is the text up to " = " or " (",
        // the value the last token when it is hex.
        const std::string body = line.substr(2);
        const auto last = body.find_last_of(' ');
        if (last == std::string::npos)
            continue;
        const std::string value = body.substr(last + 1);
        if (value.empty() || value.find_first_not_of("0123456789abcdef") != std::string::npos)
            continue;
        std::string key = body.substr(0, body.find(" = "));
        if (key.rfind("R (", 0) == 0)
            key = "R";
        cur->values[key] = value;
    }
    return blocks;
}

}  // namespace best::testing
