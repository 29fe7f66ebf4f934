// best-hsectl init (the token keys) and status (token, mechanisms, counts, health, daemon).
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "admin_client.h"
#include "cli.h"
#include "commands.h"
#include "common/json.h"
#include "context.h"
#include "store/store_lock.h"

namespace best::hsectl {

namespace {

const char* const kInitHelp =
    "usage: best-hsectl init [--verify]\n"
    "       best-hsectl hsm init [--verify]\n"
    "\n"
    "Creates the token's three keys once: best-wrap-key (AES-256, wrap/unwrap: key blobs at\n"
    "rest), best-data-key (AES-256, encrypt/decrypt: OPc), best-binding-key (HMAC-SHA-256,\n"
    "sign/verify: ties each blob to its row). All sensitive and never extractable. Then opens\n"
    "the vault, which checks them, and runs the health probe.\n"
    "\n"
    "Refuses (exit 4) when the token already holds any of them: token keys are never\n"
    "overwritten (the blobs in the store would become useless).\n"
    "\n"
    "  --verify   create nothing: check that the three keys are there and locked down, and\n"
    "             run the health probe (exit 1 when they are missing or unsafe)\n";

const char* const kStatusHelp =
    "usage: best-hsectl status\n"
    "\n"
    "Reports what is configured (HSM, store, or both):\n"
    "  hsm     module, token, the mechanisms probed and the paths chosen, and the health probe\n"
    "          (C_GetTokenInfo plus one wrap under the wrap key)\n"
    "  store   path, whether a daemon holds it, schema version, counts of subscribers, EAS and\n"
    "          key sets\n"
    "Exit 0 when everything configured works, 1 when the health probe fails, 6 when the HSM\n"
    "or the store cannot be opened.\n";

constexpr std::string_view kKeyLabels[] = {hsm::kWrapKeyLabel, hsm::kDataKeyLabel,
                                           hsm::kBindingKeyLabel};

bool isKeyProblem(const Error& e) {
    if (e.domain != ErrorDomain::hsm)
        return false;
    const auto c = static_cast<hsm::HsmErrc>(e.code);
    return c == hsm::HsmErrc::key_missing || c == hsm::HsmErrc::token_key_unsafe;
}

}  // namespace

int runInit(const std::vector<std::string>& args) {
    const Cmd cmd("init");
    int code = 0;
    auto o = cmd.parse(args, {{"verify", false}}, kInitHelp, code);
    if (!o)
        return code;
    auto settings = resolveSettings(*o);
    if (!settings)
        return cmd.fail(settings.error());
    auto config = hsmConfigOf(*settings);
    if (!config)
        return cmd.fail(config.error());
    const bool verifyOnly = o->has("verify");
    if (!verifyOnly) {
        if (auto r = hsm::KeyVault::initTokenKeys(*config); !r) {
            if (r.error().domain == ErrorDomain::hsm &&
                r.error().code == static_cast<int>(hsm::HsmErrc::key_exists)) {
                return cmd.fail(r.error().message +
                                    ". Token keys are never overwritten; 'best-hsectl init "
                                    "--verify' checks them",
                                cli::kExitRefused);
            }
            return cmd.fail(r.error());
        }
    }
    auto vault = hsm::KeyVault::open(*config);
    if (!vault) {
        if (verifyOnly && isKeyProblem(vault.error()))
            return cmd.fail(vault.error().message, cli::kExitCheckFailed);
        return cmd.fail(vault.error());
    }
    const auto health = (*vault)->checkHealth();
    const std::string& label = (*vault)->tokenLabel();
    if (settings->json) {
        JsonOut j;
        j.begin().field("token", label);
        j.beginArray("created");
        if (!verifyOnly) {
            for (const auto l : kKeyLabels)
                j.item(l);
        }
        j.endArray();
        j.field("verified", true);
        j.field("health", health ? "ok" : "failed");
        j.end();
        std::printf("%s\n", j.str().c_str());
    } else if (verifyOnly) {
        std::printf("token '%s': %s, %s and %s are present and locked down\n", label.c_str(),
                    kKeyLabels[0].data(), kKeyLabels[1].data(), kKeyLabels[2].data());
    } else {
        std::printf(
            "token '%s': created %s (AES-256, wrap/unwrap), %s (AES-256, encrypt/decrypt) and "
            "%s (HMAC-SHA-256, sign/verify); checked\n",
            label.c_str(), kKeyLabels[0].data(), kKeyLabels[1].data(), kKeyLabels[2].data());
    }
    if (!health)
        return cmd.fail("health probe failed: " + health.error().message, cli::kExitCheckFailed);
    if (!settings->json)
        std::printf("health probe passed\n");
    return cli::kExitOk;
}

namespace {

const char* yesNo(bool b) {
    return b ? "yes" : "no";
}

struct HsmStatus {
    bool configured = false;
    std::string module;
    std::string token;
    std::optional<Error> error;  // the vault could not be opened
    hsm::TokenCapabilities caps;
    std::string label;
    std::optional<Error> health;  // the probe failed
    bool healthy = false;
};

struct StoreStatus {
    bool configured = false;
    std::string path;
    std::optional<Error> error;
    bool daemon = false;
    std::int64_t schema = 0;
    std::uint64_t subscribers = 0;
    std::uint64_t eas = 0;
    std::uint64_t keySets = 0;
};

HsmStatus hsmStatus(const Settings& s) {
    HsmStatus h;
    h.configured = !s.hsm.token.empty();
    if (!h.configured)
        return h;
    h.token = s.hsm.token;
    auto config = hsmConfigOf(s);
    if (!config) {
        h.error = config.error();
        return h;
    }
    h.module = config->module;
    auto vault = hsm::KeyVault::open(*config);
    if (!vault) {
        h.error = vault.error();
        return h;
    }
    h.caps = (*vault)->capabilities();
    h.label = (*vault)->tokenLabel();
    h.module = (*vault)->module().path();
    auto health = (*vault)->checkHealth();
    h.healthy = bool(health);
    if (!health)
        h.health = health.error();
    return h;
}

StoreStatus storeStatus(const Settings& s) {
    StoreStatus st;
    st.configured = !s.storePath.empty();
    if (!st.configured)
        return st;
    st.path = s.storePath;
    auto daemon = store::StoreLock::probeDaemon(s.storePath);
    if (!daemon) {
        st.error = daemon.error();
        return st;
    }
    st.daemon = *daemon;
    auto opened = openStore(s, false);
    if (!opened) {
        st.error = opened.error();
        return st;
    }
    st.daemon = st.daemon || (*opened)->daemonActive();
    st.schema = (*opened)->openedAtVersion();
    auto subs = (*opened)->countSubscribers();
    auto eas = (*opened)->listEas();
    auto sets = (*opened)->countKeySets();
    if (!subs || !eas || !sets) {
        st.error = !subs ? subs.error() : !eas ? eas.error() : sets.error();
        return st;
    }
    st.subscribers = *subs;
    st.eas = eas->size();
    st.keySets = *sets;
    return st;
}

const char* wrapName(hsm::WrapMechanism m) {
    return m == hsm::WrapMechanism::aesKeyWrap ? "rfc3394" : "rfc5649";
}

const char* milenageName(hsm::MilenagePath p) {
    return p == hsm::MilenagePath::ecbMultiPart ? "ecb-multi-part" : "ecb-single-part";
}

void capsJson(JsonOut& j, const hsm::TokenCapabilities& c) {
    j.beginObject("mechanisms");
    j.field("aes_ecb", c.aesEcb);
    j.field("aes_cbc", c.aesCbc);
    j.field("sha256_hmac", c.hmacSha256);
    j.field("hmac_min_key_size", static_cast<std::uint64_t>(c.hmacMinKeySize));
    j.field("aes_key_wrap", c.aesKeyWrap);
    j.field("aes_key_wrap_pad", c.aesKeyWrapPad);
    j.field("aes_key_gen", c.aesKeyGen);
    j.field("generic_secret_key_gen", c.genericKeyGen);
    j.field("sp800_108_kdf", c.kbkdf);
    j.field("vendor_milenage", c.vendorMilenage);
    j.end();
    j.beginObject("paths");
    j.field("wrap", wrapName(c.wrap));
    j.field("milenage", milenageName(c.milenage));
    j.field("kdf", "hmac-sign");
    j.field("token_key_copies", c.tokenKeyCopies);
    j.field("clear_extractable", c.clearExtractable);
    j.end();
}

}  // namespace

int runStatus(const std::vector<std::string>& args) {
    if (std::find(args.begin(), args.end(), "--daemon") != args.end())
        return runDaemonStatus(args);  // the running daemon's, from its admin socket
    const Cmd cmd("status");
    int code = 0;
    auto o = cmd.parse(args, {}, kStatusHelp, code);
    if (!o)
        return code;
    auto settings = resolveSettings(*o);
    if (!settings)
        return cmd.fail(settings.error());
    if (settings->hsm.token.empty() && settings->storePath.empty()) {
        return cmd.usage(
            "nothing to report on: give --config FILE, or --token and --pin-file, or --store");
    }
    const HsmStatus h = hsmStatus(*settings);
    const StoreStatus s = storeStatus(*settings);

    if (settings->json) {
        JsonOut j;
        j.begin();
        j.beginObject("hsm").field("configured", h.configured);
        if (h.configured) {
            j.field("available", !h.error.has_value());
            j.field("module", h.module);
            j.field("token", h.error ? h.token : h.label);
            if (h.error) {
                j.field("error", h.error->message);
            } else {
                capsJson(j, h.caps);
                j.field("health", h.healthy ? "ok" : "failed");
                if (h.health)
                    j.field("health_error", h.health->message);
            }
        }
        j.end();
        j.beginObject("store").field("configured", s.configured);
        if (s.configured) {
            j.field("path", s.path);
            j.field("available", !s.error.has_value());
            if (s.error) {
                j.field("error", s.error->message);
            } else {
                j.field("daemon", s.daemon);
                j.field("schema_version", s.schema);
                j.field("subscribers", s.subscribers);
                j.field("eas", s.eas);
                j.field("key_sets", s.keySets);
            }
        }
        j.end();
        j.end();
        std::printf("%s\n", j.str().c_str());
    } else {
        if (!h.configured) {
            std::printf("hsm: not configured\n");
        } else if (h.error) {
            std::printf("hsm: unavailable: %s\n", h.error->message.c_str());
        } else {
            const auto& c = h.caps;
            std::printf("hsm:\n");
            std::printf("  module: %s\n", h.module.c_str());
            std::printf("  token: %s\n", h.label.c_str());
            std::printf(
                "  mechanisms: AES-ECB %s, AES-CBC %s, SHA256-HMAC %s (min key %lu), AES key wrap "
                "%s, with padding %s, AES keygen %s, generic secret keygen %s, SP 800-108 KDF %s, "
                "vendor Milenage %s\n",
                yesNo(c.aesEcb), yesNo(c.aesCbc), yesNo(c.hmacSha256),
                static_cast<unsigned long>(c.hmacMinKeySize), yesNo(c.aesKeyWrap),
                yesNo(c.aesKeyWrapPad), yesNo(c.aesKeyGen), yesNo(c.genericKeyGen), yesNo(c.kbkdf),
                yesNo(c.vendorMilenage));
            std::printf("  paths: %s\n", c.describe().c_str());
            if (h.healthy) {
                std::printf("  health: ok\n");
            } else {
                std::printf("  health: FAILED: %s\n", h.health->message.c_str());
            }
        }
        if (!s.configured) {
            std::printf("store: not configured\n");
        } else if (s.error) {
            std::printf("store: unavailable: %s\n", s.error->message.c_str());
        } else {
            std::printf("store:\n");
            std::printf("  path: %s\n", s.path.c_str());
            std::printf("  daemon: %s\n",
                        s.daemon ? "running (it holds the store: changes must go through it)"
                                 : "not running");
            std::printf("  schema version: %lld\n", static_cast<long long>(s.schema));
            std::printf("  subscribers: %llu\n", static_cast<unsigned long long>(s.subscribers));
            std::printf("  eas: %llu\n", static_cast<unsigned long long>(s.eas));
            std::printf("  key sets: %llu\n", static_cast<unsigned long long>(s.keySets));
        }
    }
    if (h.error || s.error)
        return cli::kExitUnavailable;
    if (h.configured && !h.healthy)
        return cli::kExitCheckFailed;
    return cli::kExitOk;
}

int runHsm(const std::vector<std::string>& args) {
    static constexpr Action kActions[] = {{"init", runInit}};
    static const char* const kHsmHelp =
        "usage: best-hsectl hsm init [--verify]\n"
        "\n"
        "The same as 'best-hsectl init' (see its --help).\n";
    return runGroup("hsm", kHsmHelp, kActions, std::size(kActions), args);
}

}  // namespace best::hsectl
