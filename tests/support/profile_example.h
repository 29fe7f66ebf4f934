// The one reader of tests/data/profile-example.txt (the profile's worked example, computed by an
// independent implementation) for every test that uses it. The file is parsed at run time; no
// expected value is copied into the tests. Every lookup that finds nothing fails the running
// test (and returns an empty value), so a changed file shows as a failure, never as a skip.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/bytes.h"

namespace best::test {

// A heading line ("#", "##" or "###" ...) and the non-blank lines under it up to the next
// heading.
struct Block {
    std::string heading;  // without the leading '#'s and blank
    int level = 0;        // number of '#'
    std::vector<std::string> lines;

    // The first line (trimmed) starting with `prefix`; fails the running test when absent.
    std::string line(std::string_view prefix) const;
    // The last hex token of that line (e.g. "KInt = KDF(...)  <hex>").
    Bytes lastHex(std::string_view prefix) const;
    // The text after the first `key` in any of the lines, up to the first of `stops`; fails the
    // running test when no line holds `key`.
    std::string after(std::string_view key, std::string_view stops = " ") const;
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

// Part 6 of the example: the USIM's SQN_MS, its AUTS and the HSE's next SQN (hex text, as in
// the file).
struct ExampleResync {
    std::string sqnMs;
    std::string auts;
    std::string nextSqn;  // "next SQN = (SEQ_HE + 1) || IND = ..."
};

class ExampleFile {
public:
    // Reads $BEST_TEST_DATA/profile-example.txt (tests/data when unset); fails the running test
    // when it cannot.
    static const ExampleFile& instance();

    // Every line of the file, blank ones included (index i is line i + 1).
    const std::vector<std::string>& lines() const noexcept { return lines_; }
    const std::vector<Block>& blocks() const noexcept { return blocks_; }
    const std::vector<ExampleMessage>& messages() const noexcept { return messages_; }
    // The block whose heading starts with `prefix`; fails the running test when absent or
    // ambiguous.
    const Block& block(std::string_view prefix) const;
    const ExampleMessage& message(std::string_view titlePrefix) const;
    // The "octets (N): <hex>" line of the message whose title starts with `titlePrefix`.
    const Bytes& octets(std::string_view titlePrefix) const { return message(titlePrefix).octets; }
    // The last hex token of the first line starting with `linePrefix` in the block whose heading
    // starts with `headingPrefix`.
    Bytes value(std::string_view headingPrefix, std::string_view linePrefix) const {
        return block(headingPrefix).lastHex(linePrefix);
    }
    // The text after the first `key` anywhere in the file, up to the first of `stops`; fails the
    // running test when absent.
    std::string after(std::string_view key, std::string_view stops = " ") const;
    ExampleResync resync() const;
    bool loaded() const noexcept { return loaded_; }

private:
    ExampleFile() = default;
    void load();
    std::vector<std::string> lines_;
    std::vector<Block> blocks_;
    std::vector<ExampleMessage> messages_;
    bool loaded_ = false;
};

Bytes hexBytes(std::string_view hex);  // fails the running test on bad hex

// Fails the running test: `hex` has `got` octets where `want` were expected.
void failLength(std::string_view hex, std::size_t want, std::size_t got);

// `hex` as exactly N octets; fails the running test on bad hex or another length.
template <std::size_t N>
std::array<std::uint8_t, N> hexArray(std::string_view hex) {
    std::array<std::uint8_t, N> a{};
    const Bytes b = hexBytes(hex);
    if (b.size() != N)
        failLength(hex, N, b.size());
    for (std::size_t i = 0; i < N && i < b.size(); ++i)
        a[i] = b[i];
    return a;
}

// The text after the first `key` in `line`, up to (not including) the first of `stops`; empty
// when `key` is absent.
std::string tokenAfter(std::string_view line, std::string_view key, std::string_view stops = " ");

}  // namespace best::test
