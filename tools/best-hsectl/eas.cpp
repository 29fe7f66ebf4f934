// best-hsectl eas add | list | remove: the EAS registry.
#include <cstdio>
#include <string>
#include <vector>

#include "cli.h"
#include "commands.h"
#include "common/hex.h"
#include "common/json.h"
#include "context.h"
#include "store/validate.h"

namespace best::hsectl {

namespace {

const char* const kEasHelp =
    "usage: best-hsectl eas ACTION [OPTIONS]\n"
    "\n"
    "Actions:\n"
    "  add      register an EAS\n"
    "  list     list the registry\n"
    "  remove   remove an EAS no subscriber is allowed to use any more\n"
    "\n"
    "Run 'best-hsectl eas ACTION --help' for an action's options.\n";

const char* const kAddHelp =
    "usage: best-hsectl eas add --eas-id ID --mode MODE [--cert-sha256 HEX]\n"
    "         [--up-endpoint HOST:PORT]\n"
    "\n"
    "  --eas-id ID              the EAS Id (1..64 octets of UTF-8), as UEs name it\n"
    "  --mode MODE              service mode: ka-only, ue-to-hse or ue-to-eas\n"
    "  --cert-sha256 HEX        SHA-256 of the EAS's TLS client certificate (32 octets; maps the\n"
    "                           certificate to this EAS; unique)\n"
    "  --up-endpoint HOST:PORT  where relayed user plane goes (UE-to-EAS); [v6]:port for IPv6\n";

const char* const kListHelp =
    "usage: best-hsectl eas list\n"
    "\n"
    "Lists the EAS registry: EAS Id, service mode, certificate fingerprint, UP endpoint.\n";

const char* const kRemoveHelp =
    "usage: best-hsectl eas remove --eas-id ID\n"
    "\n"
    "Refused (exit 4) while subscribers are still allowed to use the EAS.\n";

Result<std::unique_ptr<store::Store>> storeFor(const Settings& s, bool create, bool mutate) {
    auto st = openStore(s, create);
    if (!st)
        return st;
    if (mutate) {
        if (auto refused = daemonRefusal(**st))
            return makeError(*refused);
    }
    return st;
}

int runAdd(const std::vector<std::string>& args) {
    const Cmd cmd("eas add");
    int code = 0;
    auto o =
        cmd.parse(args, {{"eas-id"}, {"mode"}, {"cert-sha256"}, {"up-endpoint"}}, kAddHelp, code);
    if (!o)
        return code;
    if (!o->has("eas-id"))
        return cmd.usage("missing --eas-id");
    if (!o->has("mode"))
        return cmd.usage("missing --mode (ka-only, ue-to-hse or ue-to-eas)");
    store::EasRecord e;
    e.easId = *o->get("eas-id");
    if (auto r = store::checkUtf8Id(e.easId, "EAS Id", 64); !r)
        return cmd.fail(r.error());
    auto mode = store::serviceModeFromString(*o->get("mode"));
    if (!mode) {
        return cmd.usage("--mode must be ka-only, ue-to-hse or ue-to-eas, got '" + *o->get("mode") +
                         "'");
    }
    e.serviceMode = *mode;
    if (auto v = o->get("cert-sha256")) {
        auto fp = cli::hexArray<32>(*v, "certificate SHA-256");
        if (!fp)
            return cmd.fail(fp.error());
        e.certSha256 = *fp;
    }
    if (auto v = o->get("up-endpoint"))
        e.upEndpoint = *v;
    auto settings = resolveSettings(*o);
    if (!settings)
        return cmd.fail(settings.error());
    auto st = storeFor(*settings, true, true);
    if (!st)
        return cmd.fail(st.error());
    if (auto r = (*st)->addEas(e); !r)
        return cmd.fail(r.error());
    if (settings->json) {
        JsonOut j;
        j.begin().field("eas_id", e.easId).field("added", true).end();
        std::printf("%s\n", j.str().c_str());
    } else {
        std::printf("EAS '%s' added (%s)\n", e.easId.c_str(),
                    std::string(store::toString(e.serviceMode)).c_str());
    }
    return cli::kExitOk;
}

int runList(const std::vector<std::string>& args) {
    const Cmd cmd("eas list");
    int code = 0;
    auto o = cmd.parse(args, {}, kListHelp, code);
    if (!o)
        return code;
    auto settings = resolveSettings(*o);
    if (!settings)
        return cmd.fail(settings.error());
    auto st = storeFor(*settings, false, false);
    if (!st)
        return cmd.fail(st.error());
    auto list = (*st)->listEas();
    if (!list)
        return cmd.fail(list.error());
    if (settings->json) {
        JsonOut j;
        j.begin().field("count", static_cast<std::uint64_t>(list->size()));
        j.beginArray("eas");
        for (const auto& e : *list) {
            j.begin();
            j.field("eas_id", e.easId);
            j.field("mode", std::string(store::toString(e.serviceMode)));
            if (e.certSha256) {
                j.field("cert_sha256", toHex(*e.certSha256));
            } else {
                j.null("cert_sha256");
            }
            j.field("up_endpoint", e.upEndpoint);
            j.field("created_at", formatTime(e.createdAt));
            j.end();
        }
        j.endArray().end();
        std::printf("%s\n", j.str().c_str());
        return cli::kExitOk;
    }
    std::printf("%-24s  %-9s  %-64s  %s\n", "EAS-ID", "MODE", "CERT-SHA256", "UP-ENDPOINT");
    for (const auto& e : *list) {
        std::printf("%-24s  %-9s  %-64s  %s\n", e.easId.c_str(),
                    std::string(store::toString(e.serviceMode)).c_str(),
                    e.certSha256 ? toHex(*e.certSha256).c_str() : "-",
                    e.upEndpoint.value_or("-").c_str());
    }
    return cli::kExitOk;
}

int runRemove(const std::vector<std::string>& args) {
    const Cmd cmd("eas remove");
    int code = 0;
    auto o = cmd.parse(args, {{"eas-id"}}, kRemoveHelp, code);
    if (!o)
        return code;
    if (!o->has("eas-id"))
        return cmd.usage("missing --eas-id");
    const std::string id = *o->get("eas-id");
    auto settings = resolveSettings(*o);
    if (!settings)
        return cmd.fail(settings.error());
    auto st = storeFor(*settings, false, true);
    if (!st)
        return cmd.fail(st.error());
    if (auto r = (*st)->removeEas(id); !r)
        return cmd.fail(r.error());
    if (settings->json) {
        JsonOut j;
        j.begin().field("eas_id", id).field("removed", true).end();
        std::printf("%s\n", j.str().c_str());
    } else {
        std::printf("EAS '%s' removed\n", id.c_str());
    }
    return cli::kExitOk;
}

constexpr Action kActions[] = {
    {"add", runAdd},
    {"list", runList},
    {"remove", runRemove},
};

}  // namespace

int runEas(const std::vector<std::string>& args) {
    return runGroup("eas", kEasHelp, kActions, std::size(kActions), args);
}

}  // namespace best::hsectl
