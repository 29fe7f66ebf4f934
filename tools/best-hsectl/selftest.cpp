// best-hsectl selftest: the Milenage and KDF vectors through the HSM path (K and KInt inside the
// token), compared with the software path and with the published values. Nothing is stored:
// the blobs live in memory, the transient token objects are destroyed, the cached session
// objects vanish with the process.
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "cli.h"
#include "commands.h"
#include "common/hex.h"
#include "common/json.h"
#include "context.h"
#include "crypto/key_hierarchy.h"
#include "crypto/milenage.h"
#include "selftest_vectors.h"

namespace best::hsectl {

namespace {

const char* const kSelftestHelp =
    "usage: best-hsectl selftest [--milenage-file FILE]\n"
    "\n"
    "Runs, on the configured token (which must hold the token keys, see 'best-hsectl init'):\n"
    "  - Milenage, TS 35.207 test sets 1 to 6: OPc (from OP, inside the HSM), f1, f1*, f2, f3,\n"
    "    f4, f5, f5* with E_K in the HSM and in software, each against the published value;\n"
    "    a vector (HSM = software) and a resync (AUTS made in software, SQN_MS recovered and\n"
    "    MAC-S checked in the HSM);\n"
    "  - the 3GPP KDF in software against RFC 5448 Appendix C;\n"
    "  - the key hierarchy through the HSM (KInt created in the token from R = CK || IK of the\n"
    "    HSM's set 1 vector; KSess, KInt_E2E, KInt_EAS_PSK, KSess_E2E, EAS key identifier and key\n"
    "    confirmation by C_Sign) against software and the profile's worked example (session A).\n"
    "Nothing is stored. Exit 0 when every check passes, 1 when one does not.\n"
    "\n"
    "  --milenage-file FILE   Milenage sets from FILE instead of the built-in ones: one set a\n"
    "                         line, 'set=N K=.. RAND=.. SQN=.. AMF=.. OP=.. OPc=.. f1=.. f1*=..\n"
    "                         f2=.. f5=.. f3=.. f4=.. f5*=..' (tests/data/milenage-ts35207.txt)\n";

using Fields = std::map<std::string, std::string>;

std::vector<Fields> builtInSets() {
    std::vector<Fields> out;
    for (const auto& v : kMilenageVectors) {
        out.push_back({{"set", std::to_string(v.set)},
                       {"K", v.k},
                       {"RAND", v.rand},
                       {"SQN", v.sqn},
                       {"AMF", v.amf},
                       {"OP", v.op},
                       {"OPc", v.opc},
                       {"f1", v.f1},
                       {"f1*", v.f1star},
                       {"f2", v.f2},
                       {"f3", v.f3},
                       {"f4", v.f4},
                       {"f5", v.f5},
                       {"f5*", v.f5star}});
    }
    return out;
}

Result<std::vector<Fields>> setsFromFile(const std::string& path) {
    std::ifstream in(path);
    if (!in)
        return makeError(cli::CliErrc::input, "cannot read Milenage file '" + path + "'");
    std::vector<Fields> out;
    std::string line;
    std::size_t n = 0;
    while (std::getline(in, line)) {
        ++n;
        if (line.empty() || line[0] == '#')
            continue;
        std::istringstream ls(line);
        Fields f;
        std::string tok;
        while (ls >> tok) {
            const auto eq = tok.find('=');
            if (eq != std::string::npos)
                f[tok.substr(0, eq)] = tok.substr(eq + 1);
        }
        for (const char* name : {"set", "K", "RAND", "SQN", "AMF", "OP", "OPc", "f1", "f1*", "f2",
                                 "f3", "f4", "f5", "f5*"}) {
            if (f.count(name) == 0) {
                return makeError(cli::CliErrc::input, "Milenage file '" + path + "' line " +
                                                          std::to_string(n) + ": no " + name + "=");
            }
        }
        out.push_back(std::move(f));
    }
    if (out.empty())
        return makeError(cli::CliErrc::input, "Milenage file '" + path + "' has no sets");
    return out;
}

// Collects check results; prints one line per failure (no key values, only names).
class Checks {
public:
    explicit Checks(const Cmd& cmd) : cmd_(cmd) {}
    void check(bool ok, const std::string& what) {
        ++total_;
        if (!ok) {
            ++failed_;
            failures_.push_back(what);
            cmd_.fail("MISMATCH: " + what, cli::kExitCheckFailed);
        }
    }
    void error(const std::string& what, const Error& e) {
        ++total_;
        ++failed_;
        failures_.push_back(what + ": " + e.message);
        cmd_.fail(what + ": " + e.message, cli::kExitCheckFailed);
    }
    unsigned total() const noexcept { return total_; }
    unsigned failed() const noexcept { return failed_; }
    const std::vector<std::string>& failures() const noexcept { return failures_; }

private:
    const Cmd& cmd_;
    unsigned total_ = 0;
    unsigned failed_ = 0;
    std::vector<std::string> failures_;
};

template <std::size_t N>
bool eqHex(const std::array<std::uint8_t, N>& a, const std::string& hex) {
    return toHex(a) == hex;
}

template <std::size_t N>
std::array<std::uint8_t, N> arr(const std::string& hex) {
    std::array<std::uint8_t, N> a{};
    (void)fromHexInto(hex, "vector", a);
    return a;
}

template <typename S>
S secret(const std::string& hex) {
    S s;
    (void)fromHexInto(hex, "vector", s.mutableView());
    return s;
}

struct MilenageOut {
    bool opc = false;
    crypto::Mac8 f1{};
    crypto::Mac8 f1star{};
    crypto::Res f2{};
    bool f3 = false;
    bool f4 = false;
    crypto::Ak f5{};
    crypto::Ak f5star{};
};

// f1, f1*, f2..f5, f5* under E_K; CK/IK are compared here and never leave.
Result<MilenageOut> runMilenage(crypto::BlockCipher& ek, const Opc& opc, const Fields& s) {
    MilenageOut out;
    out.opc = toHex(opc.view()) == s.at("OPc");
    crypto::Milenage m(ek, opc);
    const auto rand = arr<16>(s.at("RAND"));
    const auto sqn = arr<6>(s.at("SQN"));
    const auto amf = arr<2>(s.at("AMF"));
    auto f1 = m.f1(rand, sqn, amf);
    if (!f1)
        return makeError(f1.error());
    auto f1s = m.f1star(rand, sqn, amf);
    if (!f1s)
        return makeError(f1s.error());
    auto f = m.f2345(rand);
    if (!f)
        return makeError(f.error());
    auto f5s = m.f5star(rand);
    if (!f5s)
        return makeError(f5s.error());
    out.f1 = *f1;
    out.f1star = *f1s;
    out.f2 = f->res;
    out.f3 = toHex(f->ck.view()) == s.at("f3");
    out.f4 = toHex(f->ik.view()) == s.at("f4");
    out.f5 = f->ak;
    out.f5star = *f5s;
    return out;
}

void compareMilenage(Checks& c, const std::string& where, const MilenageOut& o, const Fields& s) {
    c.check(o.opc, where + ": OPc");
    c.check(eqHex(o.f1, s.at("f1")), where + ": f1 (MAC-A)");
    c.check(eqHex(o.f1star, s.at("f1*")), where + ": f1* (MAC-S)");
    c.check(eqHex(o.f2, s.at("f2")), where + ": f2 (RES)");
    c.check(o.f3, where + ": f3 (CK)");
    c.check(o.f4, where + ": f4 (IK)");
    c.check(eqHex(o.f5, s.at("f5")), where + ": f5 (AK)");
    c.check(eqHex(o.f5star, s.at("f5*")), where + ": f5* (AK*)");
}

bool sameVector(const crypto::AuthVector& a, const crypto::AuthVector& b) {
    return a.rand == b.rand && a.autn == b.autn && a.xres == b.xres && a.ck.equals(b.ck) &&
           a.ik.equals(b.ik) && a.ak == b.ak && a.sqn == b.sqn;
}

const std::string kSelftestRow = "selftest";

// One Milenage set: software, HSM (K imported, OPc computed from OP in the token, and OPc
// sealed as given), vector and resync through the HSM. Returns the HSM vector of the set (for
// the key hierarchy).
std::optional<crypto::AuthVector> milenageSet(Checks& c, hsm::KeyVault& vault, const Fields& s,
                                              std::uint64_t version) {
    const std::string name = "milenage set " + s.at("set");
    const auto k = secret<SubscriberK>(s.at("K"));
    const auto op = secret<Op>(s.at("OP"));
    const auto opcGiven = secret<Opc>(s.at("OPc"));
    const auto rand = arr<16>(s.at("RAND"));
    const auto sqn = arr<6>(s.at("SQN"));
    const auto amf = arr<2>(s.at("AMF"));

    // Software.
    crypto::SoftAes128 soft(k);
    auto softOpc = crypto::computeOpc(soft, op);
    if (!softOpc) {
        c.error(name + " (software)", softOpc.error());
        return std::nullopt;
    }
    auto sw = runMilenage(soft, *softOpc, s);
    if (!sw) {
        c.error(name + " (software)", sw.error());
        return std::nullopt;
    }
    compareMilenage(c, name + " (software)", *sw, s);
    auto softVector = crypto::generateVector(soft, opcGiven, rand, sqn, amf);
    auto auts = crypto::buildAuts(soft, opcGiven, rand, sqn);
    if (!softVector || !auts) {
        c.error(name + " (software)", !softVector ? softVector.error() : auts.error());
        return std::nullopt;
    }

    // HSM.
    std::optional<crypto::AuthVector> hsmVector;
    auto r = vault.run([&](hsm::VaultOps& ops) -> Result<void> {
        const hsm::BlobBinding kb{kSelftestRow, hsm::BlobPurpose::subscriberK, version};
        const hsm::BlobBinding ob{kSelftestRow, hsm::BlobPurpose::opc, kb.version};
        auto kBlob = ops.importK(k, kb);
        if (!kBlob)
            return makeError(kBlob.error());
        auto fromOp = ops.sealOpcFromOp(op, {*kBlob, kb}, ob);
        if (!fromOp)
            return makeError(fromOp.error());
        const hsm::SubscriberRef ref{{*kBlob, kb}, {*fromOp, ob}};
        std::optional<MilenageOut> hw;
        auto m =
            ops.withMilenage(ref, [&](crypto::BlockCipher& ek, const Opc& opc) -> Result<void> {
                auto o = runMilenage(ek, opc, s);
                if (!o)
                    return makeError(o.error());
                hw = *o;
                return {};
            });
        if (!m)
            return m;
        compareMilenage(c, name + " (HSM, OPc from OP in the token)", *hw, s);
        auto sealed = ops.sealOpc(opcGiven, ob);
        if (!sealed)
            return makeError(sealed.error());
        const hsm::SubscriberRef given{{*kBlob, kb}, {*sealed, ob}};
        auto v = ops.generateVector(given, rand, sqn, amf);
        if (!v)
            return makeError(v.error());
        c.check(sameVector(*v, *softVector), name + ": vector, HSM = software");
        auto sqnMs = ops.recoverSqnMs(given, rand, *auts);
        if (!sqnMs)
            return makeError(sqnMs.error());
        c.check(*sqnMs == sqn, name + ": resync, SQN_MS recovered in the HSM");
        hsmVector = *v;
        return {};
    });
    if (!r)
        c.error(name + " (HSM)", r.error());
    return hsmVector;
}

void kdfVectors(Checks& c) {
    std::size_t line = 0;
    for (const auto& v : kKdfVectors) {
        ++line;
        const std::string name = "3GPP KDF, RFC 5448 line " + std::to_string(line);
        auto key = fromHex(v.key, "key");
        auto s = fromHex(v.s, "S");
        if (!key || !s) {
            c.error(name, !key ? key.error() : s.error());
            continue;
        }
        auto out = crypto::hmacSha256(*key, *s);
        if (!out) {
            c.error(name, out.error());
            continue;
        }
        c.check(toHex(out->view()) == v.out, name + " (software)");
    }
}

void hierarchy(Checks& c, hsm::KeyVault& vault, const crypto::AuthVector& set1) {
    const std::string name = "key hierarchy (worked example, session A)";
    const HierarchyVector& h = kHierarchyVector;
    Key256 root;
    std::copy(set1.ck.view().begin(), set1.ck.view().end(), root.data());
    std::copy(set1.ik.view().begin(), set1.ik.view().end(), root.data() + 16);

    // Software.
    auto kint = crypto::deriveKInt(root, h.hseId);
    if (!kint) {
        c.error(name + " (software)", kint.error());
        return;
    }
    c.check(toHex(kint->view()) == h.kint, name + ": KInt (software)");
    auto e2e = crypto::deriveKIntE2e(*kint, h.easId);
    auto psk = crypto::deriveKIntEasPsk(*kint, h.easId);
    auto keyId = crypto::deriveEasKeyId(*kint, h.easId);
    auto ksess = crypto::deriveKSess(*kint, h.sessionId, h.ueNonce);
    if (!e2e || !psk || !keyId || !ksess) {
        c.error(name + " (software)", Error{ErrorDomain::crypto, 0, "a derivation failed"});
        return;
    }
    auto ksessE2e = crypto::deriveKSess(*e2e, h.sessionId, h.ueNonce);
    auto confirmation = crypto::deriveKeyConfirmation(*kint, h.sessionId, set1.rand);
    if (!ksessE2e || !confirmation) {
        c.error(name + " (software)", Error{ErrorDomain::crypto, 0, "a derivation failed"});
        return;
    }
    c.check(toHex(e2e->view()) == h.kintE2e, name + ": KInt_E2E (software)");
    c.check(toHex(psk->view()) == h.kintEasPsk, name + ": KInt_EAS_PSK (software)");
    c.check(toHex(*keyId) == h.easKeyId, name + ": EAS key identifier (software)");
    c.check(toHex(ksess->view()) == h.ksess, name + ": KSess (software)");

    // HSM: KInt made in the token from R, every derivation under it by C_Sign.
    auto r = vault.run([&](hsm::VaultOps& ops) -> Result<void> {
        hsm::KeySetSpec spec;
        spec.hseId = h.hseId;
        spec.kint = {kSelftestRow, hsm::BlobPurpose::kint, 1};
        spec.session = hsm::SessionParams{h.sessionId, h.ueNonce};
        spec.easId = h.easId;
        spec.easKeyId = true;
        spec.easKey = hsm::EasKeyKind::e2e;
        spec.easKeyBinding = {kSelftestRow, hsm::BlobPurpose::kintE2e, 1};
        spec.confirmation = hsm::ConfirmationParams{h.sessionId, set1.rand};
        auto ks = ops.createKeySet(root, spec);
        if (!ks)
            return makeError(ks.error());
        c.check(ks->ksess && ks->ksess->equals(*ksess), name + ": KSess (HSM)");
        c.check(ks->easKeyId && *ks->easKeyId == *keyId, name + ": EAS key identifier (HSM)");
        c.check(ks->easKey && ks->easKey->equals(*e2e), name + ": KInt_E2E (HSM)");
        c.check(ks->ksessE2e && ks->ksessE2e->equals(*ksessE2e), name + ": KSess_E2E (HSM)");
        c.check(ks->keyConfirmation && *ks->keyConfirmation == *confirmation,
                name + ": key confirmation (HSM)");
        const hsm::KeyRef kintRef{ks->kintBlob, spec.kint};
        auto again = ops.deriveKSess(kintRef, h.sessionId, h.ueNonce);
        if (!again)
            return makeError(again.error());
        c.check(again->equals(*ksess), name + ": KSess from the stored KInt blob (HSM)");
        auto pskHsm = ops.deriveEasKey(kintRef, hsm::EasKeyKind::psk, h.easId);
        if (!pskHsm)
            return makeError(pskHsm.error());
        c.check(pskHsm->equals(*psk), name + ": KInt_EAS_PSK (HSM)");
        auto idHsm = ops.deriveEasKeyId(kintRef, h.easId);
        if (!idHsm)
            return makeError(idHsm.error());
        c.check(*idHsm == *keyId, name + ": EAS key identifier from the blob (HSM)");
        return {};
    });
    if (!r)
        c.error(name + " (HSM)", r.error());
}

}  // namespace

int runSelftest(const std::vector<std::string>& args) {
    const Cmd cmd("selftest");
    int code = 0;
    auto o = cmd.parse(args, {{"milenage-file"}}, kSelftestHelp, code);
    if (!o)
        return code;
    auto settings = resolveSettings(*o);
    if (!settings)
        return cmd.fail(settings.error());
    std::vector<Fields> sets;
    if (auto f = o->get("milenage-file")) {
        auto loaded = setsFromFile(*f);
        if (!loaded)
            return cmd.fail(loaded.error());
        sets = std::move(*loaded);
    } else {
        sets = builtInSets();
    }
    for (const auto& s : sets) {
        for (const auto& [name, value] : s) {
            if (name == "set")
                continue;
            if (auto b = fromHex(value, name); !b)
                return cmd.fail(b.error());
        }
    }
    auto vault = openVault(*settings);
    if (!vault)
        return cmd.fail(vault.error());

    Checks checks(cmd);
    std::optional<crypto::AuthVector> set1;
    std::uint64_t version = 0;
    for (const auto& s : sets) {
        auto v = milenageSet(checks, **vault, s, ++version);
        if (s.at("set") == "1" && v)
            set1 = *v;
    }
    kdfVectors(checks);
    if (set1) {
        hierarchy(checks, **vault, *set1);
    } else {
        checks.error("key hierarchy",
                     Error{ErrorDomain::generic, static_cast<int>(cli::CliErrc::check_failed),
                           "needs Milenage set 1 through the HSM, which did not run"});
    }

    const bool ok = checks.failed() == 0;
    if (settings->json) {
        JsonOut j;
        j.begin();
        j.field("token", (*vault)->tokenLabel());
        j.field("milenage_sets", static_cast<std::uint64_t>(sets.size()));
        j.field("checks", checks.total());
        j.field("failed", checks.failed());
        j.field("failures", checks.failures());
        j.field("passed", ok);
        j.end();
        std::printf("%s\n", j.str().c_str());
    } else if (ok) {
        std::printf(
            "selftest passed on token '%s': %u checks (Milenage sets: %zu, HSM and software; "
            "3GPP KDF; key hierarchy through the HSM)\n",
            (*vault)->tokenLabel().c_str(), checks.total(), sets.size());
    } else {
        std::printf("selftest FAILED on token '%s': %u of %u checks\n",
                    (*vault)->tokenLabel().c_str(), checks.failed(), checks.total());
    }
    return ok ? cli::kExitOk : cli::kExitCheckFailed;
}

}  // namespace best::hsectl
