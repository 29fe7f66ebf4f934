#include "config.h"

#include <sys/stat.h>

#include <fstream>
#include <set>
#include <sstream>

#include <yaml-cpp/yaml.h>

#include "common/yaml_util.h"

namespace best::ueagent {
namespace {

using yaml::boolean;
using yaml::checkKeys;
using yaml::configError;
using yaml::number;
using yaml::secretHex;
using yaml::text;
using yaml::WipedString;

bool allDigits(const std::string& s) {
    return !s.empty() && s.find_first_not_of("0123456789") == std::string::npos;
}

Result<AgentConfig> parse(const yaml::Origin& origin, const YAML::Node& root) {
    AgentConfig c;
    if (auto k = checkKeys(
            origin, root,
            {"hse", "eas_id", "imsi", "serving_network", "key_agreements", "confidentiality",
             "key_sets_storable", "state_file", "control_socket", "usim", "logging"},
            "the top level");
        !k)
        return makeError(k.error());

    const YAML::Node hse = root["hse"];
    if (!hse)
        return configError(origin, root, "'hse' is missing (address and port of the HSE)");
    if (auto k = checkKeys(origin, hse, {"address", "port", "hse_id"}, "hse"); !k)
        return makeError(k.error());
    if (hse["address"]) {
        auto a = text(origin, hse["address"], "hse.address");
        if (!a)
            return makeError(a.error());
        c.hseAddress = *a;
    }
    if (hse["port"]) {
        auto p = number(origin, hse["port"], "hse.port", 65535);
        if (!p)
            return makeError(p.error());
        if (*p == 0)
            return configError(origin, hse["port"], "hse.port must be 1..65535");
        c.hsePort = static_cast<std::uint16_t>(*p);
    }
    if (hse["hse_id"]) {
        auto h = text(origin, hse["hse_id"], "hse.hse_id");
        if (!h)
            return makeError(h.error());
        c.hseId = *h;
    }

    if (!root["eas_id"])
        return configError(origin, root, "'eas_id' is missing");
    auto eas = text(origin, root["eas_id"], "eas_id");
    if (!eas)
        return makeError(eas.error());
    if (eas->size() > 64)
        return configError(origin, root["eas_id"], "eas_id is longer than 64 octets");
    c.easId = *eas;

    if (root["imsi"]) {
        auto i = text(origin, root["imsi"], "imsi");
        if (!i)
            return makeError(i.error());
        if (!allDigits(*i) || i->size() < 6 || i->size() > 15)
            return configError(origin, root["imsi"], "imsi must be 6 to 15 digits");
        c.imsi = *i;
    }

    if (root["serving_network"]) {
        const YAML::Node sn = root["serving_network"];
        if (auto k = checkKeys(origin, sn, {"mcc", "mnc"}, "serving_network"); !k)
            return makeError(k.error());
        auto mcc = text(origin, sn["mcc"], "serving_network.mcc");
        auto mnc = text(origin, sn["mnc"], "serving_network.mnc");
        if (!mcc)
            return makeError(mcc.error());
        if (!mnc)
            return makeError(mnc.error());
        auto plmn = plmnFromMccMnc(*mcc, *mnc);
        if (!plmn)
            return configError(origin, sn, plmn.error().message);
        c.servingNetwork = *plmn;
    }

    if (root["key_agreements"]) {
        const YAML::Node kas = root["key_agreements"];
        if (!kas.IsSequence() || kas.size() == 0)
            return configError(origin, kas, "key_agreements must be a list of umts, eps, 5g");
        c.keyAgreements.clear();
        for (const auto& n : kas) {
            const std::string v = n.IsScalar() ? n.Scalar() : "";
            crypto::KeyAgreement ka;
            if (v == "umts")
                ka = crypto::KeyAgreement::umts;
            else if (v == "eps")
                ka = crypto::KeyAgreement::eps;
            else if (v == "5g")
                ka = crypto::KeyAgreement::fiveG;
            else
                return configError(origin, n, "key agreement '" + v + "': use umts, eps or 5g");
            c.keyAgreements.push_back(ka);
        }
    }
    bool needsPlmn = false;
    for (auto ka : c.keyAgreements)
        needsPlmn |= ka != crypto::KeyAgreement::umts;
    if (root["confidentiality"]) {
        auto b = boolean(origin, root["confidentiality"], "confidentiality");
        if (!b)
            return makeError(b.error());
        c.confidentiality = *b;
    }
    if ((needsPlmn || c.confidentiality) && !c.servingNetwork)
        return configError(origin, root,
                           "serving_network (mcc, mnc) is needed for eps, 5g or confidentiality");
    if (root["key_sets_storable"]) {
        auto b = boolean(origin, root["key_sets_storable"], "key_sets_storable");
        if (!b)
            return makeError(b.error());
        c.keySetsStorable = *b;
    }

    for (auto [key, out] :
         {std::pair{"state_file", &c.stateFile}, std::pair{"control_socket", &c.controlSocket}}) {
        if (!root[key])
            return configError(origin, root, std::string("'") + key + "' is missing");
        auto t = text(origin, root[key], key);
        if (!t)
            return makeError(t.error());
        *out = *t;
    }

    const YAML::Node usim = root["usim"];
    if (!usim)
        return configError(origin, root, "'usim' is missing (source: pcsc or software)");
    if (auto k = checkKeys(origin, usim,
                           {"source", "reader", "iccid", "pin_file", "card_timeout_ms", "k", "opc",
                            "sqn_state_file"},
                           "usim");
        !k)
        return makeError(k.error());
    auto src = text(origin, usim["source"], "usim.source");
    if (!src)
        return makeError(src.error());
    if (*src == "pcsc") {
        c.usim.source = UsimSource::pcsc;
        for (const char* key : {"k", "opc", "sqn_state_file"})
            if (usim[key])
                return configError(origin, usim[key],
                                   std::string("usim.") + key + " belongs to source software");
        if (!usim["reader"])
            return configError(origin, usim, "usim.reader (a reader name pattern) is missing");
        auto r = text(origin, usim["reader"], "usim.reader");
        if (!r)
            return makeError(r.error());
        c.usim.reader = *r;
        if (usim["iccid"]) {
            auto i = text(origin, usim["iccid"], "usim.iccid");
            if (!i)
                return makeError(i.error());
            c.usim.iccid = *i;
        }
        if (usim["pin_file"]) {
            auto p = text(origin, usim["pin_file"], "usim.pin_file");
            if (!p)
                return makeError(p.error());
            c.usim.pinFile = *p;
        }
        if (usim["card_timeout_ms"]) {
            auto t = number(origin, usim["card_timeout_ms"], "usim.card_timeout_ms", 600000);
            if (!t)
                return makeError(t.error());
            c.usim.cardTimeout = std::chrono::milliseconds(*t);
        }
    } else if (*src == "software") {
        c.usim.source = UsimSource::software;
        for (const char* key : {"reader", "iccid", "pin_file", "card_timeout_ms"})
            if (usim[key])
                return configError(origin, usim[key],
                                   std::string("usim.") + key + " belongs to source pcsc");
        if (!usim["k"] || !usim["opc"] || !usim["sqn_state_file"])
            return configError(origin, usim,
                               "usim source software needs k, opc and sqn_state_file");
        if (auto r = secretHex(origin, usim["k"], "usim.k", c.usim.k); !r)
            return makeError(r.error());
        if (auto r = secretHex(origin, usim["opc"], "usim.opc", c.usim.opc); !r)
            return makeError(r.error());
        auto s = text(origin, usim["sqn_state_file"], "usim.sqn_state_file");
        if (!s)
            return makeError(s.error());
        c.usim.sqnStateFile = *s;
        if (!c.imsi)
            return configError(origin, root, "imsi is needed with usim source software");
    } else {
        return configError(origin, usim["source"],
                           "usim.source '" + *src + "': use pcsc or software");
    }

    if (root["logging"]) {
        if (auto k = checkKeys(origin, root["logging"], {"level"}, "logging"); !k)
            return makeError(k.error());
        auto l = text(origin, root["logging"]["level"], "logging.level");
        if (!l)
            return makeError(l.error());
        static const std::set<std::string> levels{"debug", "info", "notice", "warning", "error"};
        if (!levels.count(*l))
            return configError(origin, root["logging"]["level"],
                               "logging.level: use debug, info, notice, warning or error");
        c.logLevel = *l;
    }
    return c;
}

}  // namespace

Result<crypto::PlmnId> plmnFromMccMnc(const std::string& mcc, const std::string& mnc) {
    if (mcc.size() != 3 || !allDigits(mcc))
        return makeError(AgentErrc::config, "MCC '" + mcc + "' must be 3 digits");
    if ((mnc.size() != 2 && mnc.size() != 3) || !allDigits(mnc))
        return makeError(AgentErrc::config, "MNC '" + mnc + "' must be 2 or 3 digits");
    auto d = [](char ch) { return static_cast<std::uint8_t>(ch - '0'); };
    const std::uint8_t mnc3 = mnc.size() == 3 ? d(mnc[2]) : 0x0F;
    return crypto::PlmnId{static_cast<std::uint8_t>(d(mcc[1]) << 4 | d(mcc[0])),
                          static_cast<std::uint8_t>(mnc3 << 4 | d(mcc[2])),
                          static_cast<std::uint8_t>(d(mnc[1]) << 4 | d(mnc[0]))};
}

std::string keyAgreementName(crypto::KeyAgreement ka) {
    switch (ka) {
        case crypto::KeyAgreement::umts:
            return "UMTS AKA";
        case crypto::KeyAgreement::eps:
            return "EPS AKA";
        case crypto::KeyAgreement::fiveG:
            return "5G AKA";
    }
    return "?";
}

Result<AgentConfig> parseAgentConfig(const std::string& textIn, const std::string& origin) {
    try {
        YAML::Node root = YAML::Load(textIn);
        if (!root.IsMap())
            return makeError(AgentErrc::config, origin + ": not a YAML mapping");
        return parse(yaml::Origin(origin, AgentErrc::config), root);
    } catch (const YAML::Exception& e) {
        return makeError(AgentErrc::config, origin + ": " + e.what());
    }
}

Result<AgentConfig> loadAgentConfig(const std::string& path) {
    std::ifstream f(path);
    if (!f)
        return makeError(AgentErrc::config, "cannot read configuration " + path);
    std::stringstream ss;
    ss << f.rdbuf();
    WipedString t{ss.str()};
    auto c = parseAgentConfig(t.s, path);
    if (c && c->usim.source == UsimSource::software) {
        struct stat st {};
        if (::stat(path.c_str(), &st) == 0 && (st.st_mode & 077) != 0)
            c->warnings.push_back(path +
                                  " holds K and OPc and group or others can read it: chmod 600");
    }
    return c;
}

}  // namespace best::ueagent
