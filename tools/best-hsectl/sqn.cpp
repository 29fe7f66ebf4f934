// best-hsectl sqn show | set | resync (profile section 9; docs/state.md "SQN").
#include <cstdio>
#include <string>
#include <vector>

#include "admin_client.h"
#include "cli.h"
#include "commands.h"
#include "common/hex.h"
#include "common/json.h"
#include "context.h"
#include "provisioning.h"
#include "store/validate.h"

namespace best::hsectl {

namespace {

const char* const kSqnHelp =
    "usage: best-hsectl sqn ACTION --imsi IMSI [OPTIONS]\n"
    "\n"
    "Actions:\n"
    "  show     SEQ_HE, the next SQN this HSE hands out, how it last changed\n"
    "  set      set where the next vector's SEQ starts\n"
    "  resync   recover SQN_MS from a USIM's AUTS (MAC-S checked in the HSM) and resynchronise\n"
    "\n"
    "set and resync change the store: while a daemon holds it they go through its admin socket\n"
    "(--admin-socket PATH, default admin.socket of --config); when that socket cannot be used\n"
    "they are refused (exit 5).\n"
    "Run 'best-hsectl sqn ACTION --help' for an action's options.\n";

const char* const kShowHelp =
    "usage: best-hsectl sqn show --imsi IMSI\n"
    "\n"
    "Prints SEQ_HE (every SEQ up to it may have been handed out), the next SEQ and SQN (with this\n"
    "HSE's IND, config sqn.ind, else 0), the IND length, the last change and the number of\n"
    "reservations.\n";

const char* const kSetHelp =
    "usage: best-hsectl sqn set --imsi IMSI --next VALUE\n"
    "\n"
    "The next vector gets this SEQ: VALUE is a decimal SEQ (>= 1) or sqn:HEX, an SQN of 6\n"
    "octets whose SEQ part is used. SEQ_HE becomes SEQ - 1; durable when the command returns.\n"
    "Lowering it lets SQNs be handed out again: only do it for a USIM that never saw them.\n";

const char* const kResyncHelp =
    "usage: best-hsectl sqn resync --imsi IMSI --auts-file FILE --rand HEX\n"
    "\n"
    "Resynchronisation (TS 33.102 6.3.5, profile section 9): SQN_MS is recovered from AUTS with\n"
    "the subscriber's K in the HSM (f5*), MAC-S is checked (f1*, AMF 0000), then SEQ_HE =\n"
    "SEQ(SQN_MS), so the next vector is above what the USIM has seen.\n"
    "\n"
    "  --auts-file FILE   AUTS, 14 octets (hex text or raw; '-' reads standard input)\n"
    "  --rand HEX         the RAND (16 octets) of the challenge the USIM answered with AUTS\n"
    "\n"
    "Exit 1 with \"MAC-S check failed: ...\" when AUTS does not verify (nothing changes).\n";

// `sqnMs`: the SQN_MS a resync recovered, printed first.
void printState(const store::SqnState& q, const Settings& s, const char* what,
                const crypto::Sqn* sqnMs = nullptr) {
    if (s.json) {
        JsonOut j;
        j.begin();
        j.field("imsi", q.imsi);
        if (what != nullptr)
            j.field("action", what);
        if (sqnMs != nullptr)
            j.field("sqn_ms", toHex(*sqnMs));
        sqnStateFields(j, q, s);
        j.end();
        std::printf("%s\n", j.str().c_str());
        return;
    }
    if (sqnMs != nullptr)
        std::printf("SQN_MS: %s\n", toHex(*sqnMs).c_str());
    std::printf("imsi: %s\n", q.imsi.c_str());
    std::printf("seq_he: %llu\n", static_cast<unsigned long long>(q.seqHe));
    std::printf("next_seq: %llu\n", static_cast<unsigned long long>(q.seqHe + 1));
    std::printf("next_sqn: %s\n", sqnText(q.seqHe + 1, s.sqnInd, q.indBits).value_or("-").c_str());
    std::printf("ind: %u\n", s.sqnInd);
    std::printf("ind_bits: %u\n", static_cast<unsigned>(q.indBits));
    std::printf("last_change: %s\n", q.lastChange.c_str());
    std::printf("reservations: %llu\n", static_cast<unsigned long long>(q.reservations));
    std::printf("updated_at: %s\n", formatTime(q.updatedAt).c_str());
}

// While a daemon holds the store: sends `request` to its admin socket. A socket that cannot be
// used refuses the change (exit 5: it would race the daemon); the daemon's own error answers
// keep their exit codes. Nullopt with `code` set on failure.
std::optional<hse::JsonValue> throughDaemon(const Cmd& cmd, const store::Store& st,
                                            const Settings& s, const hse::AdminRequest& request,
                                            int& code) {
    auto a = adminCall(s.adminSocket, request);
    if (!a) {
        code = cmd.fail("store '" + st.path() +
                            "' is in use by a running daemon (best-hsed) and its admin socket "
                            "cannot be used (" +
                            a.error().message +
                            "): the change would race the daemon; give --admin-socket PATH or "
                            "stop the daemon",
                        cli::kExitDaemon);
        return std::nullopt;
    }
    if (!a->flag("ok")) {
        code = failFromAdmin(cmd, *a);
        return std::nullopt;
    }
    return std::move(*a);
}

// Options and settings, common to the three actions; then the store.
struct Opened {
    cli::Options options;
    Settings settings;
    std::string imsi;
    std::unique_ptr<store::Store> store;
};

std::optional<Opened> parseFor(const Cmd& cmd, const std::vector<std::string>& args,
                               std::vector<cli::OptionSpec> specs, const char* help, int& code) {
    specs.push_back({"imsi"});
    auto o = cmd.parse(args, std::move(specs), help, code);
    if (!o)
        return std::nullopt;
    if (!o->has("imsi")) {
        code = cmd.usage("missing --imsi");
        return std::nullopt;
    }
    Opened out{*o, {}, *o->get("imsi"), nullptr};
    if (auto r = store::checkImsi(out.imsi); !r) {
        code = cmd.fail(r.error());
        return std::nullopt;
    }
    auto settings = resolveSettings(*o);
    if (!settings) {
        code = cmd.fail(settings.error());
        return std::nullopt;
    }
    out.settings = *settings;
    return out;
}

// Opens the store; a change is refused while a daemon holds it.
bool openStoreFor(const Cmd& cmd, Opened& p, bool mutate, int& code) {
    auto st = openStore(p.settings, false);
    if (!st) {
        code = cmd.fail(st.error());
        return false;
    }
    p.store = std::move(*st);
    if (mutate) {
        if (auto refused = daemonRefusal(*p.store)) {
            code = cmd.fail(*refused);
            return false;
        }
    }
    return true;
}

int runShow(const std::vector<std::string>& args) {
    const Cmd cmd("sqn show");
    int code = 0;
    auto p = parseFor(cmd, args, {}, kShowHelp, code);
    if (!p || !openStoreFor(cmd, *p, false, code))
        return code;
    auto q = p->store->getSqnState(p->imsi);
    if (!q)
        return cmd.fail(q.error());
    printState(*q, p->settings, nullptr);
    return cli::kExitOk;
}

int runSet(const std::vector<std::string>& args) {
    const Cmd cmd("sqn set");
    int code = 0;
    auto p = parseFor(cmd, args, {{"next"}}, kSetHelp, code);
    if (!p)
        return code;
    if (!p->options.has("next"))
        return cmd.usage("missing --next");
    // The syntax is checked before the store is opened (the IND length comes from the store).
    if (auto seq = parseSeq(*p->options.get("next"), 0, "--next"); !seq)
        return cmd.fail(seq.error());
    if (!openStoreFor(cmd, *p, false, code))
        return code;
    auto q = p->store->getSqnState(p->imsi);
    if (!q)
        return cmd.fail(q.error());
    auto seq = parseSeq(*p->options.get("next"), q->indBits, "--next");
    if (!seq)
        return cmd.fail(seq.error());
    if (p->store->daemonActive()) {
        hse::AdminRequest rq{"sqn set", {{"imsi", p->imsi}, {"seq", std::to_string(*seq)}}};
        if (!throughDaemon(cmd, *p->store, p->settings, rq, code))
            return code;
    } else if (auto r = p->store->sqn().setSeqHe(p->imsi, *seq - 1); !r) {
        return cmd.fail(r.error());
    }
    auto after = p->store->getSqnState(p->imsi);
    if (!after)
        return cmd.fail(after.error());
    printState(*after, p->settings, "set");
    return cli::kExitOk;
}

int runResync(const std::vector<std::string>& args) {
    const Cmd cmd("sqn resync");
    int code = 0;
    auto p = parseFor(cmd, args, {{"auts-file"}, {"rand"}}, kResyncHelp, code);
    if (!p)
        return code;
    const cli::Options& o = p->options;
    if (!o.has("auts-file"))
        return cmd.usage("missing --auts-file");
    if (!o.has("rand"))
        return cmd.usage("missing --rand (the RAND the USIM answered)");
    auto rand = cli::hexArray<16>(*o.get("rand"), "RAND");
    if (!rand)
        return cmd.fail(rand.error());
    bool stdinUsed = false;
    auto autsBytes = cli::readValueFile(*o.get("auts-file"), 14, 14, "AUTS", stdinUsed);
    if (!autsBytes)
        return cmd.fail(autsBytes.error());
    crypto::Auts auts{};
    std::copy(autsBytes->begin(), autsBytes->end(), auts.begin());
    if (!openStoreFor(cmd, *p, false, code))
        return code;
    if (p->store->daemonActive()) {
        hse::AdminRequest rq{"sqn resync",
                             {{"imsi", p->imsi},
                              {"rand", toHex(ByteView(rand->data(), rand->size()))},
                              {"auts", toHex(ByteView(auts.data(), auts.size()))}}};
        auto a = throughDaemon(cmd, *p->store, p->settings, rq, code);
        if (!a)
            return code;
        crypto::Sqn ms{};
        if (auto r = fromHexInto(a->str("sqn_ms"), "SQN_MS", MutableByteView(ms.data(), ms.size()));
            !r)
            return cmd.fail(r.error());
        auto after = p->store->getSqnState(p->imsi);
        if (!after)
            return cmd.fail(after.error());
        printState(*after, p->settings, "resync", &ms);
        return cli::kExitOk;
    }

    auto rec = p->store->getSubscriber(p->imsi);
    if (!rec)
        return cmd.fail(rec.error());
    auto blobs = blobsOf(*rec);
    if (!blobs)
        return cmd.fail(blobs.error());
    auto vault = openVault(p->settings);
    if (!vault)
        return cmd.fail(vault.error());
    const std::string imsi = p->imsi;
    auto sqnMs = (*vault)->run(
        [&](hsm::VaultOps& ops) { return ops.recoverSqnMs(blobs->ref(imsi), *rand, auts); });
    if (!sqnMs) {
        if (sqnMs.error().domain == ErrorDomain::crypto &&
            sqnMs.error().code == static_cast<int>(crypto::CryptoErrc::mac_s_failure)) {
            return cmd.fail(
                "MAC-S check failed: the AUTS does not verify for this subscriber and RAND; "
                "SQN unchanged",
                cli::kExitCheckFailed);
        }
        return cmd.fail(sqnMs.error());
    }
    if (auto r = p->store->sqn().resync(imsi, *sqnMs); !r)
        return cmd.fail(r.error());
    auto after = p->store->getSqnState(imsi);
    if (!after)
        return cmd.fail(after.error());
    printState(*after, p->settings, "resync", &*sqnMs);
    return cli::kExitOk;
}

constexpr Action kActions[] = {
    {"show", runShow},
    {"set", runSet},
    {"resync", runResync},
};

}  // namespace

int runSqn(const std::vector<std::string>& args) {
    return runGroup("sqn", kSqnHelp, kActions, std::size(kActions), args);
}

}  // namespace best::hsectl
