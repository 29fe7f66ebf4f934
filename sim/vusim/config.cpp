#include "sim/vusim/config.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

#include <yaml-cpp/yaml.h>

#include "common/hex.h"
#include "common/unique_fd.h"
#include "common/yaml_util.h"
#include "crypto/milenage.h"
#include "sim/sim_error.h"

namespace best::sim::vusim {
namespace {

using yaml::checkKeys;
using yaml::configError;
using yaml::WipedString;

Result<VusimConfig> parse(const yaml::Origin& origin, const YAML::Node& root) {
    VusimConfig cfg;
    if (auto r = checkKeys(origin, root, {"vpcd", "card", "subscriber", "sqn"}, "the file"); !r)
        return makeError(r.error());

    if (const auto vpcd = root["vpcd"]) {
        if (auto r = checkKeys(origin, vpcd, {"host", "port"}, "vpcd"); !r)
            return makeError(r.error());
        if (vpcd["host"])
            cfg.vpcdHost = vpcd["host"].as<std::string>();
        if (vpcd["port"]) {
            auto p = yaml::decimalOrHex(origin, vpcd["port"], "vpcd.port");
            if (!p)
                return makeError(p.error());
            if (*p == 0 || *p > 65534)  // vpcd also opens port + 1 for its second slot
                return configError(origin, vpcd["port"], "vpcd.port must be 1..65534");
            cfg.vpcdPort = static_cast<std::uint16_t>(*p);
        }
    }

    const auto card = root["card"];
    if (!card)
        return configError(origin, root, "missing section 'card'");
    if (auto r = checkKeys(
            origin, card,
            {"imsi", "iccid", "aid", "response_style", "get_response_chunk", "pin", "pin_attempts"},
            "card");
        !r)
        return makeError(r.error());
    if (!card["imsi"])
        return configError(origin, card, "missing card.imsi");
    cfg.card.imsi = card["imsi"].as<std::string>();
    cfg.card.iccid = card["iccid"] ? card["iccid"].as<std::string>() : "8999901" + cfg.card.imsi;
    if (cfg.card.iccid.size() > 20)
        cfg.card.iccid.resize(20);
    if (card["aid"]) {
        auto aid = fromHex(card["aid"].as<std::string>(), "card.aid");
        if (!aid)
            return configError(origin, card["aid"], aid.error().message);
        cfg.card.aid = std::move(*aid);
    }
    if (card["response_style"]) {
        const std::string s = card["response_style"].as<std::string>();
        if (s == "t0")
            cfg.card.style = ResponseStyle::t0;
        else if (s == "direct")
            cfg.card.style = ResponseStyle::direct;
        else
            return configError(origin, card["response_style"],
                               "card.response_style must be t0 or direct");
    }
    if (card["get_response_chunk"]) {
        auto c = yaml::decimalOrHex(origin, card["get_response_chunk"], "card.get_response_chunk");
        if (!c)
            return makeError(c.error());
        if (*c > 256)
            return configError(origin, card["get_response_chunk"],
                               "card.get_response_chunk must be 0..256");
        cfg.card.getResponseChunk = static_cast<std::size_t>(*c);
    }
    if (card["pin"]) {
        WipedString pin{card["pin"].as<std::string>()};
        auto block = pinBlockFromDigits(pin.s);
        if (!block)
            return configError(origin, card["pin"], "card.pin: " + block.error().message);
        cfg.card.pin = *block;
    }
    if (card["pin_attempts"]) {
        auto a = yaml::decimalOrHex(origin, card["pin_attempts"], "card.pin_attempts");
        if (!a)
            return makeError(a.error());
        if (*a < 1 || *a > 15)
            return configError(origin, card["pin_attempts"], "card.pin_attempts must be 1..15");
        cfg.card.pinAttempts = static_cast<int>(*a);
    }

    const auto sub = root["subscriber"];
    if (!sub)
        return configError(origin, root, "missing section 'subscriber'");
    if (auto r = checkKeys(origin, sub, {"k", "op", "opc"}, "subscriber"); !r)
        return makeError(r.error());
    if (!sub["k"])
        return configError(origin, sub, "missing subscriber.k");
    if (auto r = yaml::secretHex(origin, sub["k"], "subscriber.k", cfg.k); !r)
        return makeError(r.error());
    if (sub["op"] && sub["opc"])
        return configError(origin, sub, "give subscriber.op or subscriber.opc, not both");
    if (sub["opc"]) {
        if (auto r = yaml::secretHex(origin, sub["opc"], "subscriber.opc", cfg.opc); !r)
            return makeError(r.error());
    } else if (sub["op"]) {
        Op op;
        if (auto r = yaml::secretHex(origin, sub["op"], "subscriber.op", op); !r)
            return makeError(r.error());
        crypto::SoftAes128 ek(cfg.k);
        auto opc = crypto::computeOpc(ek, op);
        if (!opc)
            return configError(origin, sub["op"], "computing OPc: " + opc.error().message);
        cfg.opc = *opc;
    } else {
        return configError(origin, sub, "missing subscriber.op or subscriber.opc");
    }

    const auto sqn = root["sqn"];
    if (!sqn)
        return configError(origin, root, "missing section 'sqn'");
    if (auto r =
            checkKeys(origin, sqn, {"state_file", "ind_bits", "delta", "initial_seq_ms"}, "sqn");
        !r)
        return makeError(r.error());
    if (!sqn["state_file"])
        return configError(origin, sqn, "missing sqn.state_file");
    cfg.stateFile = sqn["state_file"].as<std::string>();
    unsigned indBits = kDefaultIndBits;
    std::uint64_t delta = kSqnDelta;
    if (sqn["ind_bits"]) {
        auto b = yaml::decimalOrHex(origin, sqn["ind_bits"], "sqn.ind_bits");
        if (!b)
            return makeError(b.error());
        if (*b > kMaxIndBits)
            return configError(origin, sqn["ind_bits"], "sqn.ind_bits must be 0..8");
        indBits = static_cast<unsigned>(*b);
    }
    if (sqn["delta"]) {
        auto d = yaml::decimalOrHex(origin, sqn["delta"], "sqn.delta");
        if (!d)
            return makeError(d.error());
        if (*d == 0)
            return configError(origin, sqn["delta"], "sqn.delta must be positive");
        delta = *d;
    }
    cfg.initialSqn = SqnArray(indBits, delta);
    if (const auto init = sqn["initial_seq_ms"]) {
        if (!init.IsMap())
            return configError(origin, init, "sqn.initial_seq_ms maps IND to SEQ");
        for (const auto& kv : init) {
            auto ind = yaml::decimalOrHex(origin, kv.first, "sqn.initial_seq_ms IND");
            if (!ind)
                return makeError(ind.error());
            auto seq = yaml::decimalOrHex(origin, kv.second, "sqn.initial_seq_ms SEQ");
            if (!seq)
                return makeError(seq.error());
            if (auto r = cfg.initialSqn.setSeq(static_cast<std::size_t>(*ind), *seq); !r)
                return configError(origin, kv.first, r.error().message);
        }
    }
    return cfg;
}

}  // namespace

Result<VusimConfig> parseVusimConfig(std::string_view yamlText, std::string_view origin) {
    try {
        WipedString text{std::string(yamlText)};
        const YAML::Node root = YAML::Load(text.s);
        return parse(yaml::Origin(origin, SimErrc::config), root);
    } catch (const YAML::Exception& e) {
        // yaml-cpp's messages quote structure, not scalar values.
        return makeError(SimErrc::config, yaml::where(origin, e.mark) + ": " + e.msg);
    }
}

Result<VusimConfig> loadVusimConfig(const std::string& path) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.isValid())
        return makeError(SimErrc::config, "config " + path + ": " + errnoText(errno));
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0)
        return makeError(SimErrc::config, "config " + path + ": " + errnoText(errno));
    if (st.st_size > (1 << 20))
        return makeError(SimErrc::config, "config " + path + ": larger than 1 MiB");
    WipedString text;
    text.s.reserve(static_cast<std::size_t>(st.st_size) + 4096);  // no reallocation copies
    char buf[4096];
    for (;;) {
        ssize_t n = ::read(fd.get(), buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int err = errno;
            secureWipe(buf, sizeof buf);
            return makeError(SimErrc::config, "config " + path + ": " + errnoText(err));
        }
        if (n == 0)
            break;
        if (text.s.size() + static_cast<std::size_t>(n) > text.s.capacity()) {
            secureWipe(buf, sizeof buf);
            return makeError(SimErrc::config, "config " + path + ": changed while reading");
        }
        text.s.append(buf, static_cast<std::size_t>(n));
    }
    secureWipe(buf, sizeof buf);
    auto cfg = parseVusimConfig(text.s, path);
    if (cfg && (st.st_mode & 077)) {
        char mode[8];
        std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
        cfg->warnings.push_back("config " + path + " holds K and OPc but has mode " + mode +
                                "; make it 0600");
    }
    return cfg;
}

}  // namespace best::sim::vusim
