// Reads tests/data/profile-example.txt (the profile's worked example, computed by an independent
// implementation of the profile, not by this project). Only octets and key lines are read; no
// expected value is copied into the tests.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/bytes.h"

namespace best::ue::test {

class Example {
public:
    static const Example& instance();

    // The "octets (N): <hex>" line of the "###" block whose title starts with `title`.
    Bytes octets(std::string_view title) const;
    // The last hex token of the first line starting with `linePrefix` (after trimming) in the
    // block ("##" or "###") whose title starts with `title`.
    Bytes value(std::string_view title, std::string_view linePrefix) const;

private:
    struct Block {
        std::string title;
        std::vector<std::string> lines;
    };
    Example();
    const Block* find(std::string_view title) const;
    std::vector<Block> blocks_;
};

Bytes hex(std::string_view text);  // fails the running test on bad hex

}  // namespace best::ue::test
