// best-hsectl aka-vector: an authentication vector (or a resync) computed in software from keys
// given in files, like osmo-auc-gen. With --imsi, the HSM/store mode (aka_vector_stored.cpp).
#include "aka_vector.h"

#include <cstdio>
#include <iostream>

#include <openssl/rand.h>

#include "cli.h"
#if BEST_HSECTL_HSM
#include "commands.h"
#endif
#include "common/hex.h"
#include "common/secure.h"
#include "crypto/milenage.h"

namespace best::hsectl {

const char* const kAkaVectorHelp =
    "usage: best-hsectl aka-vector KEYS --amf HEX --sqn HEX [--rand HEX]\n"
    "       best-hsectl aka-vector KEYS --auts HEX --rand HEX\n"
#if BEST_HSECTL_HSM
    "       best-hsectl aka-vector --imsi IMSI [--rand HEX]   (HSM and store: see\n"
    "                                 'best-hsectl aka-vector --imsi X --help')\n"
#endif
    "\n"
    "Computes a Milenage authentication vector (TS 35.206, TS 33.102) in software, or with\n"
    "--auts recovers SQN_MS from a resynchronisation token and checks its MAC-S.\n"
    "\n"
    "KEYS, from files (hex text or raw octets; '-' reads standard input):\n"
    "  --k-file FILE          subscriber key K (16 octets)\n"
    "  --op-file FILE         operator variant OP (16 octets), or\n"
    "  --opc-file FILE        OPc (16 octets); exactly one of OP and OPc\n"
    "KEYS on the command line, ONLY for published test vectors (command lines are visible to\n"
    "every user of the machine and end up in shell history):\n"
    "  --test-keys --k HEX (--op HEX | --opc HEX)\n"
    "\n"
    "  --amf HEX    AMF, 2 octets\n"
    "  --sqn HEX    SQN, 6 octets\n"
    "  --rand HEX   RAND, 16 octets (random when omitted for a vector)\n"
    "  --auts HEX   AUTS, 14 octets (needs --rand)\n"
    "\n"
    "Output, lowercase hex, one line each: RAND, AUTN, XRES, CK, IK, AK, SQN; or SQN_MS.\n"
    "Exit codes: 0 done, 1 MAC-S check failed, 2 bad arguments or input, 3 internal error.\n";

namespace {

using namespace best::crypto;

template <std::size_t N>
Result<std::array<std::uint8_t, N>> hexArray(const std::string& text, const char* what) {
    std::array<std::uint8_t, N> out{};
    auto r = fromHexInto(text, what, out);
    if (!r)
        return tl::unexpected(r.error());
    return out;
}

int fail(const Error& e, int code) {
    std::fprintf(stderr, "best-hsectl aka-vector: %s\n", e.message.c_str());
    return code;
}

int usage(const std::string& msg) {
    std::fprintf(stderr, "best-hsectl aka-vector: %s\n(see best-hsectl aka-vector --help)\n",
                 msg.c_str());
    return cli::kExitUsage;
}

}  // namespace

int runAkaVector(const std::vector<std::string>& args) {
#if BEST_HSECTL_HSM
    for (const auto& a : args) {
        if (a == "--imsi" || a.rfind("--imsi=", 0) == 0)
            return runAkaVectorStored(args);
    }
#endif
    auto parsed = cli::Options::parse(args, {{"k-file"},
                                             {"op-file"},
                                             {"opc-file"},
                                             {"test-keys", false},
                                             {"k"},
                                             {"op"},
                                             {"opc"},
                                             {"amf"},
                                             {"sqn"},
                                             {"rand"},
                                             {"auts"},
                                             {"help", false}});
    if (!parsed)
        return usage(parsed.error().message);
    const cli::Options& o = *parsed;
    if (o.has("help")) {
        std::fputs(kAkaVectorHelp, stdout);
        return cli::kExitOk;
    }

    bool testKeys = o.has("test-keys");
    bool hexKeys = o.has("k") || o.has("op") || o.has("opc");
    bool fileKeys = o.has("k-file") || o.has("op-file") || o.has("opc-file");
    if (hexKeys && !testKeys) {
        return usage(
            "--k/--op/--opc put keys on the command line; they are only accepted "
            "with --test-keys, for published test vectors (use --k-file, --op-file "
            "or --opc-file)");
    }
    if (testKeys && fileKeys)
        return usage("--test-keys takes --k and --op/--opc, not files");
    if (hexKeys && fileKeys)
        return usage("give keys either as files or with --test-keys");
    const char* kOpt = testKeys ? "k" : "k-file";
    const char* opOpt = testKeys ? "op" : "op-file";
    const char* opcOpt = testKeys ? "opc" : "opc-file";
    if (!o.has(kOpt))
        return usage(std::string("missing --") + kOpt);
    if (o.has(opOpt) == o.has(opcOpt)) {
        return usage(std::string("give exactly one of --") + opOpt + " and --" + opcOpt +
                     " (OP is the operator variant, OPc = OP xor E_K(OP))");
    }
    bool resync = o.has("auts");
    if (resync) {
        if (o.has("amf") || o.has("sqn"))
            return usage("--auts takes no --amf or --sqn");
        if (!o.has("rand"))
            return usage("--auts needs --rand (the RAND the USIM answered)");
    } else {
        if (!o.has("amf"))
            return usage("missing --amf");
        if (!o.has("sqn"))
            return usage("missing --sqn");
    }

    // Keys.
    SubscriberK k;
    Op op;
    Opc opc;
    bool haveOpc = o.has(opcOpt);
    if (testKeys) {
        if (auto r = fromHexInto(*o.get("k"), "K", k.mutableView()); !r) {
            return fail(r.error(), cli::kExitUsage);
        }
        auto r = haveOpc ? fromHexInto(*o.get("opc"), "OPc", opc.mutableView())
                         : fromHexInto(*o.get("op"), "OP", op.mutableView());
        if (!r)
            return fail(r.error(), cli::kExitUsage);
    } else {
        bool stdinUsed = false;
        auto kb = cli::readSecretFile(*o.get("k-file"), 16, "K", stdinUsed);
        if (!kb)
            return fail(kb.error(), cli::kExitUsage);
        k = SubscriberK(kb->view());
        auto ob = haveOpc ? cli::readSecretFile(*o.get("opc-file"), 16, "OPc", stdinUsed)
                          : cli::readSecretFile(*o.get("op-file"), 16, "OP", stdinUsed);
        if (!ob)
            return fail(ob.error(), cli::kExitUsage);
        if (haveOpc) {
            opc = Opc(ob->view());
        } else {
            op = Op(ob->view());
        }
    }

    // Public parameters.
    Rand rand{};
    if (o.has("rand")) {
        auto r = hexArray<16>(*o.get("rand"), "RAND");
        if (!r)
            return fail(r.error(), cli::kExitUsage);
        rand = *r;
    } else if (RAND_bytes_ex(Provider::instance().libctx(), rand.data(), rand.size(), 0) != 1) {
        std::fputs("best-hsectl aka-vector: no random numbers available\n", stderr);
        return cli::kExitInternal;
    }

    SoftAes128 ek(k);
    if (!haveOpc) {
        auto r = computeOpc(ek, op);
        if (!r)
            return fail(r.error(), cli::kExitInternal);
        opc = *r;
    }

    if (resync) {
        auto auts = hexArray<14>(*o.get("auts"), "AUTS");
        if (!auts)
            return fail(auts.error(), cli::kExitUsage);
        auto sqnMs = recoverSqnMs(ek, opc, rand, *auts);
        if (!sqnMs) {
            if (sqnMs.error().domain == ErrorDomain::crypto &&
                sqnMs.error().code == static_cast<int>(CryptoErrc::mac_s_failure)) {
                std::fputs("MAC-S check failed\n", stderr);
                return cli::kExitCheckFailed;
            }
            return fail(sqnMs.error(), cli::kExitInternal);
        }
        std::printf("SQN_MS: %s\n", toHex(*sqnMs).c_str());
        return cli::kExitOk;
    }

    auto amf = hexArray<2>(*o.get("amf"), "AMF");
    if (!amf)
        return fail(amf.error(), cli::kExitUsage);
    auto sqn = hexArray<6>(*o.get("sqn"), "SQN");
    if (!sqn)
        return fail(sqn.error(), cli::kExitUsage);
    auto v = generateVector(ek, opc, rand, *sqn, *amf);
    if (!v)
        return fail(v.error(), cli::kExitInternal);
    std::printf("RAND: %s\n", toHex(v->rand).c_str());
    std::printf("AUTN: %s\n", toHex(v->autn).c_str());
    std::printf("XRES: %s\n", toHex(v->xres).c_str());
    std::printf("CK: %s\n", toHex(v->ck.view()).c_str());
    std::printf("IK: %s\n", toHex(v->ik.view()).c_str());
    std::printf("AK: %s\n", toHex(v->ak).c_str());
    std::printf("SQN: %s\n", toHex(v->sqn).c_str());
    return cli::kExitOk;
}

}  // namespace best::hsectl
