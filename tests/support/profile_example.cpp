#include "profile_example.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "common/hex.h"

namespace best::test {

namespace {

std::string trim(std::string_view s) {
    std::size_t b = 0;
    std::size_t e = s.size();
    while (b < e && (s[b] == ' ' || s[b] == '\t' || s[b] == '\r'))
        ++b;
    while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t' || s[e - 1] == '\r'))
        --e;
    return std::string(s.substr(b, e - b));
}

bool startsWith(std::string_view s, std::string_view p) {
    return s.substr(0, p.size()) == p;
}

bool isHexToken(std::string_view t) {
    if (t.empty() || t.size() % 2 != 0)
        return false;
    for (char c : t) {
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
    }
    return true;
}

std::uint32_t u32(const std::string& s, int base = 10) {
    return static_cast<std::uint32_t>(std::stoul(s, nullptr, base));
}

std::uint32_t num(const std::string& s, int base = 10) {
    if (s.empty()) {
        ADD_FAILURE() << "empty number in the example";
        return 0;
    }
    return u32(s, base);
}

// The one element of `items` whose `name` starts with `prefix`; fails the running test (and
// returns the last match, or an empty element) when there is none or more than one.
template <typename T>
const T& onlyOne(const std::vector<T>& items, std::string T::*name, std::string_view prefix,
                 const char* what) {
    const T* found = nullptr;
    int hits = 0;
    for (const T& item : items) {
        if (startsWith(item.*name, prefix)) {
            found = &item;
            ++hits;
        }
    }
    if (hits != 1) {
        ADD_FAILURE() << hits << " " << what << " start with '" << prefix << "'";
        static const T empty;
        return found != nullptr ? *found : empty;
    }
    return *found;
}

// The text after the first `key` in `lines`, up to the first of `stops`; fails the running test
// when no line holds `key`.
std::string afterIn(const std::vector<std::string>& lines, std::string_view key,
                    std::string_view stops, const std::string& where) {
    for (const std::string& l : lines) {
        if (l.find(key) != std::string::npos)
            return tokenAfter(l, key, stops);
    }
    ADD_FAILURE() << "no line of " << where << " holds '" << key << "'";
    return {};
}

void parseMessage(ExampleMessage& m) {
    for (const std::string& raw : m.block.lines) {
        const std::string l = trim(raw);
        if (startsWith(l, "header: ")) {
            m.headerParsed = true;
            m.p = num(tokenAfter(l, "P="));
            m.r = num(tokenAfter(l, "R="));
            m.kid = num(tokenAfter(l, "KID="));
            m.sessionId = num(tokenAfter(l, "Session ID ", ";"), 16);
            m.n = num(tokenAfter(l, "scheme n="));
            m.w = num(tokenAfter(l, "(w=", ")"));
            m.ctrH = num(tokenAfter(l, "CTR_H=", ","));
            m.extension = hexBytes(tokenAfter(l, "extension '", "'"));
            if (l.find(" COUNT ") != std::string::npos) {
                m.plane = tokenAfter(l, "-> ");
                m.count = num(tokenAfter(l, " COUNT "));
            }
        } else if (startsWith(l, "MAC: 128-EIA2 with KEY = ")) {
            m.hasMac = true;
            const std::string keyText = tokenAfter(l, "KEY = ", ",");
            m.macKey = hexBytes(keyText.substr(keyText.rfind(' ') + 1));
            m.macCount = num(tokenAfter(l, ", COUNT ", ","));
            m.bearer = num(tokenAfter(l, "BEARER "));
            m.direction = num(tokenAfter(l, "DIRECTION ", ";"));
            m.macOverLast = num(tokenAfter(l, "over octets 0.."));
            m.mac = hexBytes(tokenAfter(l, " -> "));
        } else if (startsWith(l, "command 0x")) {
            m.command = static_cast<std::uint8_t>(num(tokenAfter(l, "command 0x"), 16));
        } else if (startsWith(l, "TLV 0x")) {
            const Bytes v = hexBytes(tokenAfter(l, ": "));
            EXPECT_EQ(v.size(), num(tokenAfter(l, ", length ", ":"))) << "TLV line: " << l;
            m.tlvs.emplace_back(static_cast<std::uint8_t>(num(tokenAfter(l, "TLV 0x"), 16)), v);
        } else if (startsWith(l, "payload (integrity only, not ciphered): ")) {
            m.hasPayload = true;
            m.payloadWire = hexBytes(tokenAfter(l, "): "));
            m.plaintext = m.payloadWire;
        } else if (startsWith(l, "payload ciphered with 128-EEA2, KEY = UP-enc ")) {
            m.hasPayload = true;
            m.ciphered = true;
            m.cipherKey = hexBytes(tokenAfter(l, "KEY = UP-enc ", ","));
            m.cipherCount = num(tokenAfter(l, ", COUNT ", ","));
            m.cipherBearer = num(tokenAfter(l, ", BEARER ", ","));
            m.cipherDirection = num(tokenAfter(l, "DIRECTION ", ":"));
            m.payloadWire = hexBytes(tokenAfter(l, ": "));
            m.plaintext = hexBytes(tokenAfter(l.substr(l.rfind('(')), "(", ")"));
        } else if (startsWith(l, "octets (")) {
            m.declaredSize = num(tokenAfter(l, "octets (", ")"));
            m.octets = hexBytes(tokenAfter(l, "): "));
        }
    }
}

}  // namespace

std::string tokenAfter(std::string_view line, std::string_view key, std::string_view stops) {
    const std::size_t at = line.find(key);
    if (at == std::string_view::npos)
        return {};
    const std::string_view rest = line.substr(at + key.size());
    return std::string(rest.substr(0, rest.find_first_of(stops)));
}

void failLength(std::string_view hex, std::size_t want, std::size_t got) {
    ADD_FAILURE() << "expected " << want << " octets, got " << got << ": " << hex;
}

Bytes hexBytes(std::string_view hex) {
    auto b = fromHex(hex, "example hex");
    EXPECT_TRUE(b.has_value()) << "bad hex in the example: " << hex;
    return b ? *b : Bytes{};
}

std::string Block::line(std::string_view prefix) const {
    for (const std::string& raw : lines) {
        std::string l = trim(raw);
        if (startsWith(l, prefix))
            return l;
    }
    ADD_FAILURE() << "no line starting with '" << prefix << "' under '" << heading << "'";
    return {};
}

Bytes Block::lastHex(std::string_view prefix) const {
    const std::string l = line(prefix);
    std::istringstream in(l);
    std::string tok;
    std::string last;
    while (in >> tok) {
        if (isHexToken(tok))
            last = tok;
    }
    EXPECT_FALSE(last.empty()) << "no hex on line '" << l << "'";
    return hexBytes(last);
}

std::string Block::after(std::string_view key, std::string_view stops) const {
    return afterIn(lines, key, stops, "'" + heading + "'");
}

const ExampleFile& ExampleFile::instance() {
    static const ExampleFile file = [] {
        ExampleFile f;
        f.load();
        return f;
    }();
    EXPECT_TRUE(file.loaded_) << "tests/data/profile-example.txt could not be read";
    return file;
}

void ExampleFile::load() {
    const char* dir = std::getenv("BEST_TEST_DATA");
    const std::string path =
        std::string(dir != nullptr ? dir : "tests/data") + "/profile-example.txt";
    std::ifstream in(path);
    if (!in) {
        ADD_FAILURE() << "cannot read " << path;
        return;
    }
    std::string raw;
    Block current;
    bool have = false;
    while (std::getline(in, raw)) {
        lines_.push_back(raw);
        if (!raw.empty() && raw[0] == '#') {
            if (have)
                blocks_.push_back(std::move(current));
            current = Block{};
            std::size_t level = 0;
            while (level < raw.size() && raw[level] == '#')
                ++level;
            current.level = static_cast<int>(level);
            current.heading = trim(std::string_view(raw).substr(level));
            have = true;
        } else if (have && !trim(raw).empty()) {
            current.lines.push_back(raw);
        }
    }
    if (have)
        blocks_.push_back(std::move(current));
    for (const Block& b : blocks_) {
        if (b.level != 3)
            continue;
        ExampleMessage m;
        m.title = b.heading;
        m.block = b;
        parseMessage(m);
        messages_.push_back(std::move(m));
    }
    loaded_ = !messages_.empty();
}

const Block& ExampleFile::block(std::string_view prefix) const {
    return onlyOne(blocks_, &Block::heading, prefix, "blocks");
}

const ExampleMessage& ExampleFile::message(std::string_view titlePrefix) const {
    return onlyOne(messages_, &ExampleMessage::title, titlePrefix, "messages");
}

std::string ExampleFile::after(std::string_view key, std::string_view stops) const {
    return afterIn(lines_, key, stops, "the example");
}

ExampleResync ExampleFile::resync() const {
    return ExampleResync{after("SQN_MS = ", ", "), after("AUTS = (SQN_MS xor AK*) || MAC-S "),
                         after("next SQN = (SEQ_HE + 1) || IND = ", "; ")};
}

}  // namespace best::test
