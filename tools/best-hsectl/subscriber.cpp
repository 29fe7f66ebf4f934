// best-hsectl subscriber add | import | list | show | remove.
#include <cstdio>
#include <string>
#include <vector>

#include "cli.h"
#include "commands.h"
#include "common/hex.h"
#include "common/json.h"
#include "context.h"
#include "csv_import.h"
#include "provisioning.h"
#include "store/validate.h"

namespace best::hsectl {

namespace {

const char* const kSubscriberHelp =
    "usage: best-hsectl subscriber ACTION [OPTIONS]\n"
    "\n"
    "Actions:\n"
    "  add      provision one subscriber (K wrapped in the HSM, OPc sealed)\n"
    "  import   provision subscribers in bulk from a CSV file, all or nothing\n"
    "  list     list subscribers (never key material)\n"
    "  show     one subscriber with its SQN state and key sets (never key material)\n"
    "  remove   remove a subscriber with its SQN state, key sets and refresh\n"
    "\n"
    "Run 'best-hsectl subscriber ACTION --help' for an action's options.\n";

const char* const kAddHelp =
    "usage: best-hsectl subscriber add --imsi IMSI\n"
    "         (--k-file FILE | --k-wrapped-file FILE --transport-key LABEL)\n"
    "         (--op-file FILE | --opc-file FILE) --amf HEX [OPTIONS]\n"
    "\n"
    "Provisions one subscriber. K is wrapped in the HSM, OPc is sealed under the token's data\n"
    "key; only these blobs reach the store. Key files hold hex text or the raw octets; '-'\n"
    "reads standard input. Keys are never taken from the command line.\n"
    "\n"
    "  --imsi IMSI                 6 to 15 digits\n"
    "  --k-file FILE               K, 16 octets\n"
    "  --k-wrapped-file FILE       K wrapped under an operator transport key on the token\n"
    "                              (RFC 3394 or 5649; K then never reaches this host)\n"
    "  --transport-key LABEL       the label of that transport key (CKA_UNWRAP)\n"
    "  --transport-mechanism M     rfc3394 (default) or rfc5649\n"
    "  --op-file FILE              OP, 16 octets: OPc = OP xor E_K(OP) is computed inside the\n"
    "                              HSM and only OPc is stored\n"
    "  --opc-file FILE             OPc, 16 octets; give exactly one of OP and OPc\n"
    "  --amf HEX                   AMF, 2 octets (e.g. 8000)\n"
    "  --sqn-start VALUE           the first vector's SEQ, decimal (default 1), or its SQN as\n"
    "                              sqn:HEX (6 octets; its SEQ part is used)\n"
    "  --ind-bits N                IND length in bits, 0..16 (default: config sqn.ind_bits, else "
    "5)\n"
    "  --ext-id ID                 external UE id (unique, 1..255 octets of UTF-8)\n"
    "  --eas LIST                  EAS Ids the subscriber may use, separated by commas; each\n"
    "                              must be in the EAS registry (best-hsectl eas add)\n";

const char* const kImportHelp =
    "usage: best-hsectl subscriber import --file FILE [--amf HEX] [--sqn-start VALUE]\n"
    "         [--ind-bits N] [--transport-key LABEL [--transport-mechanism M]]\n"
    "\n"
    "Provisions every subscriber of a CSV file ('-' reads standard input), all or nothing:\n"
    "every line is checked first, then sealed through the HSM (a progress line on standard\n"
    "error), then written in one store transaction. An error names the file line and nothing\n"
    "is imported.\n"
    "\n"
    "The first line that is not blank and not a '#' comment names the columns, in any order:\n"
    "  imsi        required\n"
    "  k           K in hex (32 digits), or\n"
    "  k_wrapped   K wrapped under the transport key (hex; needs --transport-key)\n"
    "  op | opc    OP or OPc in hex; a file may have both columns, each line fills one\n"
    "  amf         AMF in hex (4 digits); empty or absent: --amf\n"
    "  sqn_start   as --sqn-start; empty or absent: --sqn-start, else SEQ 1\n"
    "  ind_bits    0..16; empty or absent: --ind-bits, config sqn.ind_bits, else 5\n"
    "  ext_id      external UE id (optional)\n"
    "  eas         allowed EAS Ids separated by ';' (optional)\n"
    "Fields are separated by commas, without quoting; surrounding blanks are ignored.\n"
    "\n"
    "  --file FILE                 the CSV file\n"
    "  --amf HEX                   AMF for lines without one\n"
    "  --sqn-start VALUE           first SEQ (or sqn:HEX) for lines without one\n"
    "  --ind-bits N                IND length for lines without one\n"
    "  --transport-key LABEL       the token's transport key for k_wrapped\n"
    "  --transport-mechanism M     rfc3394 (default) or rfc5649\n";

const char* const kListHelp =
    "usage: best-hsectl subscriber list [--after IMSI] [--limit N]\n"
    "\n"
    "Lists subscribers ordered by IMSI: external UE id, OP kind (always opc: an OP is turned\n"
    "into OPc at provisioning), AMF, IND bits, allowed EAS. Never key material.\n"
    "\n"
    "  --after IMSI    start after this IMSI (paging)\n"
    "  --limit N       at most N subscribers\n";

const char* const kShowHelp =
    "usage: best-hsectl subscriber show (--imsi IMSI | --ext-id ID)\n"
    "\n"
    "One subscriber: its record, SQN state (SEQ_HE, the next SQN), key sets and refresh in\n"
    "progress. Never key material.\n";

const char* const kRemoveHelp =
    "usage: best-hsectl subscriber remove --imsi IMSI\n"
    "\n"
    "Removes the subscriber with its SQN state, key sets and refresh (the store overwrites the\n"
    "deleted rows).\n";

Result<hsm::WrapMechanism> wrapMechanism(const cli::Options& o) {
    const auto m = o.get("transport-mechanism");
    if (!m || *m == "rfc3394")
        return hsm::WrapMechanism::aesKeyWrap;
    if (*m == "rfc5649")
        return hsm::WrapMechanism::aesKeyWrapPad;
    return makeError(cli::CliErrc::usage,
                     "--transport-mechanism must be rfc3394 or rfc5649, got '" + *m + "'");
}

Result<std::uint8_t> indBitsOption(const cli::Options& o, const Settings& s) {
    const auto v = o.get("ind-bits");
    if (!v)
        return s.indBits;
    auto n = cli::parseUnsigned(*v, "--ind-bits", 0, store::kMaxIndBits);
    if (!n)
        return makeError(n.error());
    return static_cast<std::uint8_t>(*n);
}

void subscriberJson(JsonOut& j, const store::SubscriberRecord& r) {
    j.field("imsi", r.imsi);
    j.field("external_ue_id", r.externalUeId);
    j.field("algorithm", r.algorithm);
    j.field("op_kind", std::string(store::toString(r.opKind)));
    j.field("amf", toHex(r.amf));
    j.field("ind_bits", static_cast<unsigned>(r.indBits));
    j.field("allowed_eas", r.allowedEas);
    j.field("created_at", formatTime(r.createdAt));
}

std::string joined(const std::vector<std::string>& items) {
    std::string out;
    for (const auto& i : items) {
        if (!out.empty())
            out += ",";
        out += i;
    }
    return out.empty() ? "-" : out;
}

int runAdd(const std::vector<std::string>& args) {
    const Cmd cmd("subscriber add");
    int code = 0;
    auto o = cmd.parse(args,
                       {{"imsi"},
                        {"k-file"},
                        {"k-wrapped-file"},
                        {"transport-key"},
                        {"transport-mechanism"},
                        {"op-file"},
                        {"opc-file"},
                        {"amf"},
                        {"sqn-start"},
                        {"ind-bits"},
                        {"ext-id"},
                        {"eas"}},
                       kAddHelp, code);
    if (!o)
        return code;
    if (!o->has("imsi"))
        return cmd.usage("missing --imsi");
    const bool kFile = o->has("k-file");
    const bool kWrapped = o->has("k-wrapped-file");
    if (kFile && kWrapped)
        return cmd.usage("give one of --k-file and --k-wrapped-file");
    if (!kFile && !kWrapped)
        return cmd.usage("missing --k-file (or --k-wrapped-file with --transport-key)");
    if (kWrapped && !o->has("transport-key")) {
        return cmd.usage(
            "--k-wrapped-file needs --transport-key LABEL (the token's key that unwraps it)");
    }
    if (!kWrapped && (o->has("transport-key") || o->has("transport-mechanism")))
        return cmd.usage("--transport-key and --transport-mechanism go with --k-wrapped-file");
    if (o->has("op-file") == o->has("opc-file")) {
        return cmd.usage(
            "give exactly one of --op-file and --opc-file (OP is the operator variant, OPc = OP "
            "xor E_K(OP))");
    }
    if (!o->has("amf"))
        return cmd.usage("missing --amf");

    auto settings = resolveSettings(*o);
    if (!settings)
        return cmd.fail(settings.error());
    ProvisionRow row;
    row.record.imsi = *o->get("imsi");
    if (auto r = store::checkImsi(row.record.imsi); !r)
        return cmd.fail(r.error());
    auto amf = cli::hexArray<2>(*o->get("amf"), "AMF");
    if (!amf)
        return cmd.fail(amf.error());
    row.record.amf = *amf;
    auto indBits = indBitsOption(*o, *settings);
    if (!indBits)
        return cmd.fail(indBits.error());
    row.record.indBits = *indBits;
    if (auto v = o->get("sqn-start")) {
        auto seq = parseSeq(*v, row.record.indBits, "--sqn-start");
        if (!seq)
            return cmd.fail(seq.error());
        row.seqHe = *seq - 1;
    }
    if (auto v = o->get("ext-id")) {
        if (auto r = store::checkUtf8Id(*v, "external UE id", 255); !r)
            return cmd.fail(r.error());
        row.record.externalUeId = *v;
    }
    if (auto v = o->get("eas")) {
        row.record.allowedEas = splitList(*v);
        for (const auto& id : row.record.allowedEas) {
            if (auto r = store::checkUtf8Id(id, "EAS Id", 64); !r)
                return cmd.fail(r.error());
        }
    }
    auto mechanism = wrapMechanism(*o);
    if (!mechanism)
        return cmd.fail(mechanism.error());

    // Keys, from files only.
    bool stdinUsed = false;
    if (kFile) {
        auto k = cli::readSecretFile(*o->get("k-file"), 16, "K", stdinUsed);
        if (!k)
            return cmd.fail(k.error());
        row.keys.k = SubscriberK(k->view());
    } else {
        auto w = cli::readValueFile(*o->get("k-wrapped-file"), 24, 40, "wrapped K", stdinUsed);
        if (!w)
            return cmd.fail(w.error());
        row.keys.kWrapped = std::move(*w);
    }
    if (o->has("opc-file")) {
        auto v = cli::readSecretFile(*o->get("opc-file"), 16, "OPc", stdinUsed);
        if (!v)
            return cmd.fail(v.error());
        row.keys.opKind = store::OpKind::opc;
        row.keys.opc = Opc(v->view());
    } else {
        auto v = cli::readSecretFile(*o->get("op-file"), 16, "OP", stdinUsed);
        if (!v)
            return cmd.fail(v.error());
        row.keys.opKind = store::OpKind::op;
        row.keys.op = Op(v->view());
    }
    const store::OpKind given = row.keys.opKind;

    auto st = openStore(*settings, true);
    if (!st)
        return cmd.fail(st.error());
    if (auto refused = daemonRefusal(**st))
        return cmd.fail(*refused);
    std::vector<ProvisionRow> rows;
    rows.push_back(std::move(row));
    if (auto r = checkRows(**st, rows); !r) {
        // For one subscriber the store's own wording: "subscriber X already exists".
        Error e = r.error();
        const std::string prefix = rowName(rows.front()) + ": ";
        if (e.message.rfind(prefix, 0) == 0)
            e.message = e.message.substr(prefix.size());
        return cmd.fail(e);
    }
    auto vault = openVault(*settings);
    if (!vault)
        return cmd.fail(vault.error());
    TransportKey transport;
    if (kWrapped)
        transport = {*o->get("transport-key"), *mechanism};
    ProvisionRow& p = rows.front();
    auto sealed = (*vault)->run(
        [&](hsm::VaultOps& ops) { return sealRow(ops, p, kWrapped ? &transport : nullptr); });
    if (!sealed)
        return cmd.fail(sealed.error());
    if (auto r = (*st)->addSubscriber(p.record, p.seqHe); !r)
        return cmd.fail(r.error());

    const std::uint64_t firstSeq = p.seqHe + 1;
    const auto firstSqn = sqnText(firstSeq, settings->sqnInd, p.record.indBits);
    if (settings->json) {
        JsonOut j;
        j.begin();
        j.field("imsi", p.record.imsi);
        j.field("added", true);
        j.field("k", kWrapped ? "unwrapped from the transport key and wrapped in the HSM"
                              : "wrapped in the HSM");
        j.field("op_given", std::string(store::toString(given)));
        j.field("op_kind", "opc");
        j.field("amf", toHex(p.record.amf));
        j.field("ind_bits", static_cast<unsigned>(p.record.indBits));
        j.field("first_seq", firstSeq);
        j.field("first_sqn", firstSqn);
        j.end();
        std::printf("%s\n", j.str().c_str());
    } else {
        std::printf("subscriber %s added: K %s, OPc sealed%s, AMF %s, IND bits %u, first SEQ %llu",
                    p.record.imsi.c_str(),
                    kWrapped ? "unwrapped from the transport key and wrapped in the HSM"
                             : "wrapped in the HSM",
                    given == store::OpKind::op ? " (computed from OP inside the HSM)" : "",
                    toHex(p.record.amf).c_str(), static_cast<unsigned>(p.record.indBits),
                    static_cast<unsigned long long>(firstSeq));
        if (firstSqn)
            std::printf(" (SQN %s with IND %u)", firstSqn->c_str(), settings->sqnInd);
        std::printf("\n");
    }
    return cli::kExitOk;
}

int runImport(const std::vector<std::string>& args) {
    const Cmd cmd("subscriber import");
    int code = 0;
    auto o = cmd.parse(args,
                       {{"file"},
                        {"amf"},
                        {"sqn-start"},
                        {"ind-bits"},
                        {"transport-key"},
                        {"transport-mechanism"}},
                       kImportHelp, code);
    if (!o)
        return code;
    if (!o->has("file"))
        return cmd.usage("missing --file");
    auto settings = resolveSettings(*o);
    if (!settings)
        return cmd.fail(settings.error());
    CsvDefaults defaults;
    if (auto v = o->get("amf")) {
        auto amf = cli::hexArray<2>(*v, "AMF");
        if (!amf)
            return cmd.fail(amf.error());
        defaults.amf = *amf;
    }
    auto indBits = indBitsOption(*o, *settings);
    if (!indBits)
        return cmd.fail(indBits.error());
    defaults.indBits = *indBits;
    if (auto v = o->get("sqn-start")) {
        if (auto seq = parseSeq(*v, defaults.indBits, "--sqn-start"); !seq)
            return cmd.fail(seq.error());
        defaults.sqnStart = *v;
    }
    auto mechanism = wrapMechanism(*o);
    if (!mechanism)
        return cmd.fail(mechanism.error());

    const std::string file = *o->get("file");
    bool stdinUsed = false;
    auto text = cli::readWholeFile(file, std::size_t{1} << 30, "import", stdinUsed);
    if (!text)
        return cmd.fail(text.error());
    auto parsed = parseImportCsv(text->view(), defaults);
    text->clear();
    if (!parsed)
        return cmd.fail(parsed.error().message + "; nothing imported", exitCodeFor(parsed.error()));
    if (parsed->anyWrappedK && !o->has("transport-key"))
        return cmd.usage("the file has k_wrapped values: give --transport-key LABEL");

    auto st = openStore(*settings, true);
    if (!st)
        return cmd.fail(st.error());
    if (auto refused = daemonRefusal(**st))
        return cmd.fail(*refused);
    auto vault = openVault(*settings);
    if (!vault)
        return cmd.fail(vault.error());
    TransportKey transport;
    if (o->has("transport-key"))
        transport = {*o->get("transport-key"), *mechanism};
    auto n =
        importRows(**vault, **st, parsed->rows, o->has("transport-key") ? &transport : nullptr,
                   [](std::size_t sealed, std::size_t total) {
                       std::fprintf(stderr, "import: %zu of %zu subscribers sealed in the HSM\n",
                                    sealed, total);
                   });
    if (!n)
        return cmd.fail(n.error().message + "; nothing imported", exitCodeFor(n.error()));
    if (settings->json) {
        JsonOut j;
        j.begin().field("imported", static_cast<std::uint64_t>(*n)).field("file", file);
        j.end();
        std::printf("%s\n", j.str().c_str());
    } else {
        std::printf("%zu subscribers imported from %s\n", *n, file.c_str());
    }
    return cli::kExitOk;
}

int runList(const std::vector<std::string>& args) {
    const Cmd cmd("subscriber list");
    int code = 0;
    auto o = cmd.parse(args, {{"after"}, {"limit"}}, kListHelp, code);
    if (!o)
        return code;
    auto settings = resolveSettings(*o);
    if (!settings)
        return cmd.fail(settings.error());
    std::uint64_t limit = 0;
    if (auto v = o->get("limit")) {
        auto n = cli::parseUnsigned(*v, "--limit", 1, UINT32_MAX);
        if (!n)
            return cmd.fail(n.error());
        limit = *n;
    }
    auto st = openStore(*settings, false);
    if (!st)
        return cmd.fail(st.error());
    auto list = (*st)->listSubscribers(o->get("after").value_or(""), limit);
    if (!list)
        return cmd.fail(list.error());
    if (settings->json) {
        JsonOut j;
        j.begin().field("count", static_cast<std::uint64_t>(list->size()));
        j.beginArray("subscribers");
        for (const auto& r : *list) {
            j.begin();
            subscriberJson(j, r);
            j.end();
        }
        j.endArray().end();
        std::printf("%s\n", j.str().c_str());
        return cli::kExitOk;
    }
    std::printf("%-15s  %-20s  %-3s  %-4s  %-3s  %s\n", "IMSI", "EXTERNAL-UE-ID", "OP", "AMF",
                "IND", "EAS");
    for (const auto& r : *list) {
        std::printf("%-15s  %-20s  %-3s  %-4s  %-3u  %s\n", r.imsi.c_str(),
                    r.externalUeId.value_or("-").c_str(),
                    std::string(store::toString(r.opKind)).c_str(), toHex(r.amf).c_str(),
                    static_cast<unsigned>(r.indBits), joined(r.allowedEas).c_str());
    }
    return cli::kExitOk;
}

int runShow(const std::vector<std::string>& args) {
    const Cmd cmd("subscriber show");
    int code = 0;
    auto o = cmd.parse(args, {{"imsi"}, {"ext-id"}}, kShowHelp, code);
    if (!o)
        return code;
    if (o->has("imsi") == o->has("ext-id"))
        return cmd.usage("give one of --imsi and --ext-id");
    auto settings = resolveSettings(*o);
    if (!settings)
        return cmd.fail(settings.error());
    if (auto v = o->get("imsi")) {
        if (auto r = store::checkImsi(*v); !r)
            return cmd.fail(r.error());
    }
    auto st = openStore(*settings, false);
    if (!st)
        return cmd.fail(st.error());
    auto rec = o->has("imsi") ? (*st)->getSubscriber(*o->get("imsi"))
                              : (*st)->findSubscriberByExternalId(*o->get("ext-id"));
    if (!rec)
        return cmd.fail(rec.error());
    auto sqn = (*st)->getSqnState(rec->imsi);
    if (!sqn)
        return cmd.fail(sqn.error());
    auto sets = (*st)->listKeySets(rec->imsi);
    if (!sets)
        return cmd.fail(sets.error());
    auto refresh = (*st)->getRefresh(rec->imsi);
    if (!refresh && refresh.error().code != static_cast<int>(store::StoreErrc::not_found))
        return cmd.fail(refresh.error());

    if (settings->json) {
        JsonOut j;
        j.begin();
        subscriberJson(j, *rec);
        j.beginObject("sqn");
        sqnStateFields(j, *sqn, *settings);
        j.end();
        j.beginArray("key_sets");
        for (const auto& k : *sets) {
            j.begin();
            j.field("kid", static_cast<unsigned>(k.kid));
            j.field("state", std::string(store::toString(k.state)));
            j.field("key_agreement", static_cast<unsigned>(k.keyAgreement));
            j.field("hse_id", k.hseId);
            j.field("created_at", formatTime(k.createdAt));
            j.field("lifetime", static_cast<std::uint64_t>(k.lifetimeSeconds));
            j.field("use_count", k.useCount);
            j.beginArray("eas_keys");
            for (const auto& e : k.easKeys) {
                j.begin().field("eas_id", e.easId);
                j.field("type", std::string(store::toString(e.type))).end();
            }
            j.endArray();
            j.end();
        }
        j.endArray();
        if (refresh) {
            j.beginObject("refresh");
            j.field("origin", static_cast<unsigned>(refresh->origin));
            j.field("new_kid", static_cast<unsigned>(refresh->newKid));
            j.field("resyncs", static_cast<std::uint64_t>(refresh->resyncs));
            j.field("requested_by", refresh->requestedBy);
            j.field("created_at", formatTime(refresh->createdAt));
            j.end();
        } else {
            j.null("refresh");
        }
        j.end();
        std::printf("%s\n", j.str().c_str());
        return cli::kExitOk;
    }
    std::printf("imsi: %s\n", rec->imsi.c_str());
    std::printf("external_ue_id: %s\n", rec->externalUeId.value_or("-").c_str());
    std::printf("algorithm: %s\n", rec->algorithm.c_str());
    std::printf("op_kind: %s\n", std::string(store::toString(rec->opKind)).c_str());
    std::printf("amf: %s\n", toHex(rec->amf).c_str());
    std::printf("ind_bits: %u\n", static_cast<unsigned>(rec->indBits));
    std::printf("allowed_eas: %s\n", joined(rec->allowedEas).c_str());
    std::printf("created_at: %s\n", formatTime(rec->createdAt).c_str());
    std::printf("seq_he: %llu\n", static_cast<unsigned long long>(sqn->seqHe));
    const auto next = sqnText(sqn->seqHe + 1, settings->sqnInd, sqn->indBits);
    std::printf("next_sqn: %s (SEQ %llu, IND %u)\n", next.value_or("-").c_str(),
                static_cast<unsigned long long>(sqn->seqHe + 1), settings->sqnInd);
    std::printf("sqn_last_change: %s\n", sqn->lastChange.c_str());
    std::printf("sqn_reservations: %llu\n", static_cast<unsigned long long>(sqn->reservations));
    std::printf("key_sets: %zu\n", sets->size());
    for (const auto& k : *sets) {
        std::printf("  KID %u %s, key agreement %u, HSE Id %s, created %s, %llu session(s)\n",
                    static_cast<unsigned>(k.kid), std::string(store::toString(k.state)).c_str(),
                    static_cast<unsigned>(k.keyAgreement), k.hseId.c_str(),
                    formatTime(k.createdAt).c_str(), static_cast<unsigned long long>(k.useCount));
    }
    if (refresh) {
        std::printf("refresh: origin %u, new KID %u, %u resync(s), since %s\n",
                    static_cast<unsigned>(refresh->origin), static_cast<unsigned>(refresh->newKid),
                    refresh->resyncs, formatTime(refresh->createdAt).c_str());
    } else {
        std::printf("refresh: none\n");
    }
    return cli::kExitOk;
}

int runRemove(const std::vector<std::string>& args) {
    const Cmd cmd("subscriber remove");
    int code = 0;
    auto o = cmd.parse(args, {{"imsi"}}, kRemoveHelp, code);
    if (!o)
        return code;
    if (!o->has("imsi"))
        return cmd.usage("missing --imsi");
    const std::string imsi = *o->get("imsi");
    if (auto r = store::checkImsi(imsi); !r)
        return cmd.fail(r.error());
    auto settings = resolveSettings(*o);
    if (!settings)
        return cmd.fail(settings.error());
    auto st = openStore(*settings, false);
    if (!st)
        return cmd.fail(st.error());
    if (auto refused = daemonRefusal(**st))
        return cmd.fail(*refused);
    if (auto r = (*st)->removeSubscriber(imsi); !r)
        return cmd.fail(r.error());
    if (settings->json) {
        JsonOut j;
        j.begin().field("imsi", imsi).field("removed", true).end();
        std::printf("%s\n", j.str().c_str());
    } else {
        std::printf("subscriber %s removed (with its SQN state, key sets and refresh)\n",
                    imsi.c_str());
    }
    return cli::kExitOk;
}

constexpr Action kActions[] = {
    {"add", runAdd},   {"import", runImport}, {"list", runList},
    {"show", runShow}, {"remove", runRemove},
};

}  // namespace

int runSubscriber(const std::vector<std::string>& args) {
    return runGroup("subscriber", kSubscriberHelp, kActions, std::size(kActions), args);
}

}  // namespace best::hsectl
