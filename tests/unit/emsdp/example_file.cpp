#include "example_file.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <regex>
#include <sstream>

#include "common/hex.h"

namespace best::emsdp::test {

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

void parseMessage(ExampleMessage& m) {
    static const std::regex header(
        R"(header: P=(\d) R=(\d) KID=(\d) Session ID ([0-9a-f]{8}); counter scheme n=(\d) \(w=(\d+)\): CTR_H=(\d), extension '([0-9a-f]*)'(?: -> (CP|UP) COUNT (\d+))?(?: \(KID 0: counter field 0, ignored\))?)");
    static const std::regex mac(
        R"(MAC: 128-EIA2 with KEY = .* ([0-9a-f]{32}), COUNT (\d+), BEARER (\d) .*DIRECTION (\d); over octets 0\.\.(\d+) -> ([0-9a-f]{8}))");
    static const std::regex command(R"(command 0x([0-9a-f]{2}) \w+)");
    static const std::regex tlv(R"(TLV 0x([0-9a-f]{2}) [^,]*, length (\d+): ([0-9a-f]*))");
    static const std::regex plain(
        R"(payload \(integrity only, not ciphered\): ([0-9a-f]+) = b'.*')");
    static const std::regex ciphered(
        R"(payload ciphered with 128-EEA2, KEY = UP-enc ([0-9a-f]{32}), COUNT (\d+), BEARER (\d), .*DIRECTION (\d): ([0-9a-f]+) = plaintext b'.*' \(([0-9a-f]+)\))");
    static const std::regex octets(R"(octets \((\d+)\): ([0-9a-f]+))");
    for (const std::string& raw : m.block.lines) {
        const std::string l = trim(raw);
        std::smatch g;
        if (std::regex_match(l, g, header)) {
            m.headerParsed = true;
            m.p = u32(g[1]);
            m.r = u32(g[2]);
            m.kid = u32(g[3]);
            m.sessionId = u32(g[4], 16);
            m.n = u32(g[5]);
            m.w = u32(g[6]);
            m.ctrH = u32(g[7]);
            m.extension = hexBytes(g[8].str());
            if (g[9].matched) {
                m.plane = g[9];
                m.count = u32(g[10]);
            }
        } else if (std::regex_match(l, g, mac)) {
            m.hasMac = true;
            m.macKey = hexBytes(g[1].str());
            m.macCount = u32(g[2]);
            m.bearer = u32(g[3]);
            m.direction = u32(g[4]);
            m.macOverLast = u32(g[5]);
            m.mac = hexBytes(g[6].str());
        } else if (std::regex_match(l, g, command)) {
            m.command = static_cast<std::uint8_t>(u32(g[1], 16));
        } else if (std::regex_search(l, g, tlv) && startsWith(l, "TLV ")) {
            const Bytes v = hexBytes(g[3].str());
            EXPECT_EQ(v.size(), u32(g[2])) << "TLV length line: " << l;
            m.tlvs.emplace_back(static_cast<std::uint8_t>(u32(g[1], 16)), v);
        } else if (std::regex_match(l, g, plain)) {
            m.hasPayload = true;
            m.payloadWire = hexBytes(g[1].str());
            m.plaintext = m.payloadWire;
        } else if (std::regex_match(l, g, ciphered)) {
            m.hasPayload = true;
            m.ciphered = true;
            m.cipherKey = hexBytes(g[1].str());
            m.cipherCount = u32(g[2]);
            m.cipherBearer = u32(g[3]);
            m.cipherDirection = u32(g[4]);
            m.payloadWire = hexBytes(g[5].str());
            m.plaintext = hexBytes(g[6].str());
        } else if (std::regex_match(l, g, octets)) {
            m.declaredSize = u32(g[1]);
            m.octets = hexBytes(g[2].str());
        }
    }
}

}  // namespace

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
    if (dir == nullptr)
        return;
    std::ifstream in(std::string(dir) + "/profile-example.txt");
    if (!in)
        return;
    std::string raw;
    Block current;
    bool have = false;
    while (std::getline(in, raw)) {
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
    const Block* found = nullptr;
    int hits = 0;
    for (const Block& b : blocks_) {
        if (startsWith(b.heading, prefix)) {
            found = &b;
            ++hits;
        }
    }
    if (hits != 1) {
        ADD_FAILURE() << hits << " blocks start with '" << prefix << "'";
        static const Block empty;
        return found != nullptr ? *found : empty;
    }
    return *found;
}

const ExampleMessage& ExampleFile::message(std::string_view titlePrefix) const {
    const ExampleMessage* found = nullptr;
    int hits = 0;
    for (const ExampleMessage& m : messages_) {
        if (startsWith(m.title, titlePrefix)) {
            found = &m;
            ++hits;
        }
    }
    if (hits != 1) {
        ADD_FAILURE() << hits << " messages start with '" << titlePrefix << "'";
        static const ExampleMessage empty;
        return found != nullptr ? *found : empty;
    }
    return *found;
}

}  // namespace best::emsdp::test
