// Test-vector files of tests/data, read at run time (never copied into the tests).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/bytes.h"
#include "common/secure.h"

namespace best::crypto::test {

// One line of a "kind key=value key=value ..." file; `kind` is the leading bare word ("eea2",
// "eia2", "cmac") or empty when the line starts with key=value. Comment lines (#) are skipped.
struct Record {
    std::string kind;
    std::map<std::string, std::string> fields;
    int line = 0;

    // The field's text; fails the running test (and returns "") when it is missing.
    std::string text(const std::string& key) const;
    // The field as hex; fails the running test when missing or not hex.
    Bytes bytes(const std::string& key) const;
    template <std::size_t N>
    std::array<std::uint8_t, N> array(const std::string& key) const {
        std::array<std::uint8_t, N> a{};
        const Bytes b = bytes(key);
        if (b.size() == N) {
            for (std::size_t i = 0; i < N; ++i)
                a[i] = b[i];
        } else {
            sizeMismatch(key, N, b.size());
        }
        return a;
    }
    template <typename S>
    S secret(const std::string& key) const {
        const Bytes b = bytes(key);
        if (b.size() != S::kSize)
            sizeMismatch(key, S::kSize, b.size());
        return S(ByteView(b));
    }
    std::uint32_t u32(const std::string& key) const;     // hex field, at most 4 octets
    unsigned long number(const std::string& key) const;  // decimal field

private:
    void sizeMismatch(const std::string& key, std::size_t want, std::size_t got) const;
};

// $BEST_TEST_DATA/<name>; fails the running test when the variable is unset.
std::string dataPath(std::string_view name);
// Whole file; fails the running test when it cannot be read.
std::string readDataFile(std::string_view name);
// Every record of a key=value file (optionally only those of one kind).
std::vector<Record> readRecords(std::string_view name, std::string_view kind = {});

Bytes hexBytes(std::string_view hex);  // fails the running test on bad hex
std::string hex(ByteView b);

}  // namespace best::crypto::test
