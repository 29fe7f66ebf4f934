// Reader for tests/data/profile-example.txt (the profile's worked example, computed by an
// independent implementation). The file is parsed at run time; no expected value is copied
// into the tests.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/bytes.h"

namespace best::emsdp::test {

// A heading line ("#", "##" or "###" ...) and the lines under it up to the next heading.
struct Block {
    std::string heading;  // without the leading '#'s and blank
    int level = 0;        // number of '#'
    std::vector<std::string> lines;

    // The first line (trimmed) starting with `prefix`; fails the running test when absent.
    std::string line(std::string_view prefix) const;
    // The last hex token of that line (e.g. "KInt = KDF(...)  <hex>").
    Bytes lastHex(std::string_view prefix) const;
};

// One "###" message block, with its lines parsed.
struct ExampleMessage {
    std::string title;
    // header line
    bool headerParsed = false;
    unsigned p = 0, r = 0, kid = 0;
    std::uint32_t sessionId = 0;
    unsigned n = 0, w = 0, ctrH = 0;
    Bytes extension;
    std::optional<std::uint32_t> count;  // "-> CP COUNT c"; absent for KID 0
    std::string plane;                   // "CP" / "UP" when a COUNT is given
    // MAC line
    bool hasMac = false;
    Bytes macKey;
    std::uint32_t macCount = 0;
    unsigned bearer = 0, direction = 0;
    std::size_t macOverLast = 0;  // "over octets 0..N"
    Bytes mac;
    // command and TLVs
    std::optional<std::uint8_t> command;
    std::vector<std::pair<std::uint8_t, Bytes>> tlvs;
    // UP payload
    bool hasPayload = false;
    bool ciphered = false;
    Bytes payloadWire;  // as on the wire
    Bytes plaintext;
    Bytes cipherKey;
    std::uint32_t cipherCount = 0;
    unsigned cipherBearer = 0, cipherDirection = 0;
    // octets line
    std::size_t declaredSize = 0;
    Bytes octets;
    Block block;  // raw lines
};

class ExampleFile {
public:
    // Reads $BEST_TEST_DATA/profile-example.txt; fails the running test when it cannot.
    static const ExampleFile& instance();

    const std::vector<Block>& blocks() const noexcept { return blocks_; }
    const std::vector<ExampleMessage>& messages() const noexcept { return messages_; }
    // The block whose heading starts with `prefix`; fails the running test when absent or
    // ambiguous.
    const Block& block(std::string_view prefix) const;
    const ExampleMessage& message(std::string_view titlePrefix) const;
    bool loaded() const noexcept { return loaded_; }

private:
    ExampleFile() = default;
    void load();
    std::vector<Block> blocks_;
    std::vector<ExampleMessage> messages_;
    bool loaded_ = false;
};

Bytes hexBytes(std::string_view hex);  // fails the running test on bad hex

// The text after the first `key` in `line`, up to (not including) the first of `stops`; empty
// when `key` is absent.
std::string tokenAfter(std::string_view line, std::string_view key, std::string_view stops = " ");

}  // namespace best::emsdp::test
