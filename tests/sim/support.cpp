#include "tests/sim/support.h"

#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>

#include "common/hex.h"

namespace best::sim::test {

Bytes hexBytes(const std::string& hex) {
    auto b = fromHex(hex, "test hex");
    EXPECT_TRUE(b.has_value()) << hex;
    return b ? *b : Bytes{};
}

crypto::Autn MilenageSet::autn() const {
    crypto::Autn a{};
    for (std::size_t i = 0; i < 6; ++i)
        a[i] = static_cast<std::uint8_t>(sqn[i] ^ f5[i]);
    a[6] = amf[0];
    a[7] = amf[1];
    for (std::size_t i = 0; i < 8; ++i)
        a[8 + i] = f1[i];
    return a;
}

crypto::Autn autnFor(const MilenageSet& v, std::uint64_t sqn) {
    crypto::SoftAes128 ek(v.k);
    auto vec = crypto::generateVector(ek, v.opc, v.rand, crypto::sqnFromInt(sqn), v.amf);
    EXPECT_TRUE(vec.has_value());
    return vec ? vec->autn : crypto::Autn{};
}

namespace {

std::vector<MilenageSet> load() {
    std::vector<MilenageSet> out;
    const char* dir = std::getenv("BEST_TEST_DATA");
    if (!dir) {
        ADD_FAILURE() << "BEST_TEST_DATA is not set (run through meson test)";
        return out;
    }
    const std::string path = std::string(dir) + "/milenage-ts35207.txt";
    std::ifstream in(path);
    if (!in) {
        ADD_FAILURE() << "cannot read " << path;
        return out;
    }
    std::string line;
    while (std::getline(in, line)) {
        if (line.empty() || line[0] == '#')
            continue;
        std::map<std::string, std::string> kv;
        std::istringstream ss(line);
        std::string field;
        while (ss >> field) {
            auto eq = field.find('=');
            if (eq != std::string::npos)
                kv[field.substr(0, eq)] = field.substr(eq + 1);
        }
        MilenageSet v;
        v.set = std::atoi(kv["set"].c_str());
        v.kHex = kv["K"];
        v.opHex = kv["OP"];
        v.opcHex = kv["OPc"];
        v.k = SubscriberK(hexBytes(v.kHex));
        v.op = Op(hexBytes(v.opHex));
        v.opc = Opc(hexBytes(v.opcHex));
        Bytes rand = hexBytes(kv["RAND"]), sqn = hexBytes(kv["SQN"]), amf = hexBytes(kv["AMF"]);
        if (rand.size() != 16 || sqn.size() != 6 || amf.size() != 2) {
            ADD_FAILURE() << "bad line in " << path << ": " << line;
            continue;
        }
        std::copy(rand.begin(), rand.end(), v.rand.begin());
        std::copy(sqn.begin(), sqn.end(), v.sqn.begin());
        std::copy(amf.begin(), amf.end(), v.amf.begin());
        v.f1 = hexBytes(kv["f1"]);
        v.f1star = hexBytes(kv["f1*"]);
        v.f2 = hexBytes(kv["f2"]);
        v.f3 = hexBytes(kv["f3"]);
        v.f4 = hexBytes(kv["f4"]);
        v.f5 = hexBytes(kv["f5"]);
        v.f5star = hexBytes(kv["f5*"]);
        if (v.f1.size() != 8 || v.f2.size() != 8 || v.f3.size() != 16 || v.f4.size() != 16 ||
            v.f5.size() != 6 || v.f5star.size() != 6) {
            ADD_FAILURE() << "bad line in " << path << ": " << line;
            continue;
        }
        out.push_back(std::move(v));
    }
    if (out.size() != 6)
        ADD_FAILURE() << path << ": expected the 6 published test sets, found " << out.size();
    return out;
}

}  // namespace

const std::vector<MilenageSet>& milenageSets() {
    static const std::vector<MilenageSet> sets = load();
    return sets;
}

Result<std::size_t> ScriptedTransport::transmit(ByteView command, MutableByteView response) {
    sent.emplace_back(command.begin(), command.end());
    if (failure_)
        return makeError(*failure_);
    if (steps_.empty()) {
        ADD_FAILURE() << "unexpected command " << toHex(command);
        return makeError(Error{ErrorDomain::sim, 99, "script exhausted"});
    }
    Step s = std::move(steps_.front());
    steps_.pop_front();
    if (!s.expect.empty()) {
        EXPECT_EQ(toHex(command), toHex(s.expect));
    }
    std::copy(s.response.begin(), s.response.end(), response.begin());
    return s.response.size();
}

}  // namespace best::sim::test
