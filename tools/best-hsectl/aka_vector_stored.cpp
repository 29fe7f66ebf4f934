// best-hsectl aka-vector --imsi IMSI: an authentication vector for a provisioned subscriber,
// computed through the HSM (K inside the token, OPc decrypted on the vault worker's locked stack)
// with an SQN allocated from the store (durable before the vector is printed).
#include <cstdio>
#include <string>
#include <vector>

#include <openssl/rand.h>

#include "cli.h"
#include "commands.h"
#include "common/hex.h"
#include "common/json.h"
#include "context.h"
#include "crypto/milenage.h"
#include "store/validate.h"

namespace best::hsectl {

namespace {

const char* const kStoredHelp =
    "usage: best-hsectl aka-vector --imsi IMSI [--rand HEX]\n"
    "\n"
    "A Milenage authentication vector for a provisioned subscriber: K, OPc and AMF from the\n"
    "store (as HSM blobs), E_K in the HSM, and the next SQN allocated from the store (one SEQ,\n"
    "durable before the vector is printed; every call consumes one). The same output lines as\n"
    "the software mode: RAND, AUTN, XRES, CK, IK, AK, SQN.\n"
    "\n"
    "  --imsi IMSI   the subscriber\n"
    "  --rand HEX    RAND, 16 octets (random when omitted)\n"
    "\n"
    "Refused while a daemon holds the store (exit 5): its SQN state belongs to the daemon.\n";

}  // namespace

int runAkaVectorStored(const std::vector<std::string>& args) {
    const Cmd cmd("aka-vector");
    int code = 0;
    auto o = cmd.parse(args,
                       {{"imsi"},
                        {"rand"},
                        {"test-keys", false},
                        {"k"},
                        {"op"},
                        {"opc"},
                        {"k-file"},
                        {"op-file"},
                        {"opc-file"},
                        {"amf"},
                        {"sqn"},
                        {"auts"}},
                       kStoredHelp, code);
    if (!o)
        return code;
    if (o->has("test-keys")) {
        return cmd.usage(
            "--imsi takes the keys from the store and the HSM; --test-keys is refused with it "
            "(it is for published test vectors in the software mode)");
    }
    for (const char* name : {"k", "op", "opc", "k-file", "op-file", "opc-file", "amf", "sqn"}) {
        if (o->has(name)) {
            return cmd.usage(std::string("--imsi takes K, OPc, AMF and SQN from the store; --") +
                             name + " is not accepted with it");
        }
    }
    if (o->has("auts")) {
        return cmd.usage(
            "--imsi does not resynchronise: use 'best-hsectl sqn resync --imsi IMSI "
            "--auts-file FILE --rand HEX'");
    }
    const std::string imsi = *o->get("imsi");
    if (auto r = store::checkImsi(imsi); !r)
        return cmd.fail(r.error());
    crypto::Rand rand{};
    if (auto v = o->get("rand")) {
        auto r = cli::hexArray<16>(*v, "RAND");
        if (!r)
            return cmd.fail(r.error());
        rand = *r;
    } else if (RAND_bytes(rand.data(), static_cast<int>(rand.size())) != 1) {
        return cmd.fail("no random numbers available", cli::kExitInternal);
    }
    auto settings = resolveSettings(*o);
    if (!settings)
        return cmd.fail(settings.error());
    auto st = openStore(*settings, false);
    if (!st)
        return cmd.fail(st.error());
    if (auto refused = daemonRefusal(**st))
        return cmd.fail(*refused);
    auto rec = (*st)->getSubscriber(imsi);
    if (!rec)
        return cmd.fail(rec.error());
    auto blobs = blobsOf(*rec);
    if (!blobs)
        return cmd.fail(blobs.error());
    auto vault = openVault(*settings);
    if (!vault)
        return cmd.fail(vault.error());
    // The reservation is durable before the grant comes back (docs/state.md).
    auto grant = (*st)->sqn().allocate(imsi);
    if (!grant)
        return cmd.fail(grant.error());
    const store::AmfBytes amf = rec->amf;
    auto v = (*vault)->run([&](hsm::VaultOps& ops) {
        return ops.generateVector(blobs->ref(imsi), rand, grant->sqn, amf);
    });
    if (!v)
        return cmd.fail(v.error());
    if (settings->json) {
        JsonOut j;
        j.begin();
        j.field("imsi", imsi);
        j.field("rand", toHex(v->rand));
        j.field("autn", toHex(v->autn));
        j.field("xres", toHex(v->xres));
        j.field("ck", toHex(v->ck.view()));
        j.field("ik", toHex(v->ik.view()));
        j.field("ak", toHex(v->ak));
        j.field("sqn", toHex(v->sqn));
        j.field("seq", grant->seq);
        j.field("ind", grant->ind);
        j.end();
        std::printf("%s\n", j.str().c_str());
        return cli::kExitOk;
    }
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
