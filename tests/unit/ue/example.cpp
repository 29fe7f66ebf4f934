#include "example.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>

#include "common/hex.h"

namespace best::ue::test {

namespace {

std::string trim(std::string_view s) {
    const auto b = s.find_first_not_of(" \t\r");
    if (b == std::string_view::npos)
        return {};
    const auto e = s.find_last_not_of(" \t\r");
    return std::string(s.substr(b, e - b + 1));
}

}  // namespace

Bytes hex(std::string_view text) {
    auto b = fromHex(text, "hex");
    if (!b) {
        ADD_FAILURE() << "bad hex '" << text << "': " << b.error().describe();
        return {};
    }
    return *b;
}

const Example& Example::instance() {
    static const Example e;
    return e;
}

Example::Example() {
    const char* dir = std::getenv("BEST_TEST_DATA");
    const std::string path =
        std::string(dir != nullptr ? dir : "tests/data") + "/profile-example.txt";
    std::ifstream in(path);
    if (!in) {
        ADD_FAILURE() << "cannot read " << path;
        return;
    }
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("##", 0) == 0) {
            const auto start = line.find_first_not_of('#');
            blocks_.push_back(Block{trim(line.substr(start)), {}});
        } else if (!blocks_.empty()) {
            blocks_.back().lines.push_back(trim(line));
        }
    }
}

const Example::Block* Example::find(std::string_view title) const {
    const Block* found = nullptr;
    for (const Block& b : blocks_) {
        if (b.title.rfind(title, 0) == 0) {
            if (found != nullptr) {
                ADD_FAILURE() << "example block '" << title << "' is ambiguous";
                return nullptr;
            }
            found = &b;
        }
    }
    if (found == nullptr)
        ADD_FAILURE() << "example block '" << title << "' not found";
    return found;
}

Bytes Example::octets(std::string_view title) const {
    return value(title, "octets (");
}

Bytes Example::value(std::string_view title, std::string_view linePrefix) const {
    const Block* b = find(title);
    if (b == nullptr)
        return {};
    for (const std::string& l : b->lines) {
        if (l.rfind(linePrefix, 0) == 0) {
            const auto sp = l.find_last_of(' ');
            return hex(l.substr(sp + 1));
        }
    }
    ADD_FAILURE() << "no line '" << linePrefix << "' in example block '" << title << "'";
    return {};
}

}  // namespace best::ue::test
