#include "context.h"

#include <cstdio>
#include <ctime>

#include "common/hex.h"
#include "crypto/ossl.h"
#include "hse/config.h"
#include "hsm/blob.h"
#include "hsm/token_uri.h"

namespace best::hsectl {

namespace {

struct GlobalSpec {
    const char* name;
    bool takesValue;
};
constexpr GlobalSpec kGlobals[] = {
    {"config", true}, {"module", true}, {"token", true},        {"pin-file", true},
    {"store", true},  {"json", false},  {"admin-socket", true},
};

}  // namespace

const char* const kGlobalOptionsHelp =
    "Where the HSM and the store are (explicit options override the config file):\n"
    "  --config FILE     the best-hsed YAML: hsm.module, hsm.token, hsm.pin_file, store.path,\n"
    "                    sqn.ind and sqn.ind_bits\n"
    "  --module PATH     PKCS#11 library (default "
    "/usr/lib/softhsm/libsofthsm2.so)\n"
    "  --token TOKEN     token label, or an RFC 7512 pkcs11: URI (never a slot number)\n"
    "  --pin-file FILE   file holding the user PIN (mode 0600/0640); never the PIN itself\n"
    "  --store FILE      the SQLite state store\n"
    "  --json            print data as one JSON document\n"
    "  --admin-socket P  the running daemon's admin socket (default: admin.socket of --config,\n"
    "                    else /run/best-hsed/admin.sock)\n";

std::vector<cli::OptionSpec> withGlobalOptions(std::vector<cli::OptionSpec> own) {
    for (const auto& g : kGlobals)
        own.push_back({g.name, g.takesValue});
    return own;
}

bool isGlobalOption(std::string_view name, bool& takesValue) {
    for (const auto& g : kGlobals) {
        if (name == g.name) {
            takesValue = g.takesValue;
            return true;
        }
    }
    return false;
}

int exitCodeFor(const Error& e) {
    switch (e.domain) {
        case ErrorDomain::generic:
            switch (static_cast<cli::CliErrc>(e.code)) {
                case cli::CliErrc::unavailable:
                    return cli::kExitUnavailable;
                case cli::CliErrc::refused:
                    return cli::kExitRefused;
                case cli::CliErrc::check_failed:
                    return cli::kExitCheckFailed;
                default:
                    return cli::kExitUsage;  // CliErrc::usage/input and every HexErrc
            }
        case ErrorDomain::config:
            return cli::kExitUsage;
        case ErrorDomain::store:
            switch (static_cast<store::StoreErrc>(e.code)) {
                case store::StoreErrc::duplicate:
                case store::StoreErrc::not_found:
                case store::StoreErrc::referenced:
                case store::StoreErrc::sqn_exhausted:
                    return cli::kExitRefused;
                case store::StoreErrc::locked_by_daemon:
                case store::StoreErrc::in_use:
                    return cli::kExitDaemon;
                case store::StoreErrc::invalid_argument:
                    return cli::kExitUsage;
                case store::StoreErrc::io:
                case store::StoreErrc::busy:
                case store::StoreErrc::corrupt:
                case store::StoreErrc::schema_too_new:
                case store::StoreErrc::migration_failed:
                    return cli::kExitUnavailable;
                default:
                    return cli::kExitInternal;
            }
        case ErrorDomain::hsm:
            switch (static_cast<hsm::HsmErrc>(e.code)) {
                case hsm::HsmErrc::key_exists:
                    return cli::kExitRefused;
                case hsm::HsmErrc::bad_config:
                case hsm::HsmErrc::bad_input:
                case hsm::HsmErrc::unwrap_failed:
                    return cli::kExitUsage;
                case hsm::HsmErrc::blob_malformed:
                case hsm::HsmErrc::blob_binding:
                    return cli::kExitCheckFailed;
                case hsm::HsmErrc::busy:
                case hsm::HsmErrc::shutting_down:
                case hsm::HsmErrc::pkcs11:
                case hsm::HsmErrc::crypto:
                case hsm::HsmErrc::internal:
                    return cli::kExitInternal;
                default:
                    return cli::kExitUnavailable;  // module, token, PIN, mechanisms, token keys
            }
        case ErrorDomain::crypto:
            switch (static_cast<crypto::CryptoErrc>(e.code)) {
                case crypto::CryptoErrc::mac_s_failure:
                    return cli::kExitCheckFailed;
                case crypto::CryptoErrc::bad_length:
                case crypto::CryptoErrc::bad_value:
                    return cli::kExitUsage;
                default:
                    return cli::kExitInternal;
            }
        default:
            return cli::kExitInternal;
    }
}

int Cmd::fail(const Error& e) const {
    std::fprintf(stderr, "best-hsectl %s: %s\n", name_.c_str(), e.message.c_str());
    return exitCodeFor(e);
}

int Cmd::fail(std::string_view message, int code) const {
    std::fprintf(stderr, "best-hsectl %s: %.*s\n", name_.c_str(), static_cast<int>(message.size()),
                 message.data());
    return code;
}

int Cmd::usage(std::string_view message) const {
    std::fprintf(stderr, "best-hsectl %s: %.*s\n(see best-hsectl %s --help)\n", name_.c_str(),
                 static_cast<int>(message.size()), message.data(), name_.c_str());
    return cli::kExitUsage;
}

std::optional<cli::Options> Cmd::parse(const std::vector<std::string>& args,
                                       std::vector<cli::OptionSpec> specs, const char* help,
                                       int& exitCode, bool globals) const {
    specs.push_back({"help", false});
    if (globals)
        specs = withGlobalOptions(std::move(specs));
    auto o = cli::Options::parse(args, specs);
    if (!o) {
        exitCode = usage(o.error().message);
        return std::nullopt;
    }
    if (o->has("help")) {
        std::fputs(help, stdout);
        if (globals) {
            std::fputs("\n", stdout);
            std::fputs(kGlobalOptionsHelp, stdout);
        }
        exitCode = cli::kExitOk;
        return std::nullopt;
    }
    return std::move(*o);
}

Result<Settings> resolveSettings(const cli::Options& o) {
    Settings s;
    if (auto path = o.get("config")) {
        auto cfg = hse::loadHsedConfig(*path);
        if (!cfg)
            return makeError(cfg.error());
        s.hsm.module = cfg->hsm.module;
        s.hsm.token = cfg->hsm.token;
        s.hsm.pinFile = cfg->hsm.pinFile;
        s.storePath = cfg->storePath;
        s.sqnInd = cfg->sqnInd;
        s.indBits = cfg->sqnIndBits;
        if (!cfg->admin.socketPath.empty())
            s.adminSocket = cfg->admin.socketPath;
    }
    if (auto v = o.get("admin-socket"))
        s.adminSocket = *v;
    if (auto v = o.get("module"))
        s.hsm.module = *v;
    if (auto v = o.get("token"))
        s.hsm.token = *v;
    if (auto v = o.get("pin-file"))
        s.hsm.pinFile = *v;
    if (auto v = o.get("store"))
        s.storePath = *v;
    s.json = o.has("json");
    // A tool does one thing at a time: one worker (its stack locked), a small key cache.
    s.hsm.workers = 1;
    s.hsm.cacheCapacity = 256;
    return s;
}

Result<hsm::HsmConfig> hsmConfigOf(const Settings& s) {
    hsm::HsmConfig c = s.hsm;
    if (c.token.empty()) {
        return makeError(cli::CliErrc::usage,
                         "no HSM token: give --token LABEL (or a pkcs11: URI) or --config FILE");
    }
    auto sel = hsm::TokenSelector::parse(c.token);
    if (!sel)
        return makeError(sel.error());
    if (c.module.empty() && sel->modulePath.empty())
        c.module = kDefaultModule;
    if (c.pinFile.empty() && sel->pinSource.empty()) {
        return makeError(cli::CliErrc::usage,
                         "no PIN file: give --pin-file FILE or --config FILE (a PIN is never "
                         "taken from the command line)");
    }
    return c;
}

Result<std::unique_ptr<hsm::KeyVault>> openVault(const Settings& s) {
    auto c = hsmConfigOf(s);
    if (!c)
        return makeError(c.error());
    return hsm::KeyVault::open(*c);
}

Result<std::unique_ptr<store::Store>> openStore(const Settings& s, bool create) {
    if (s.storePath.empty()) {
        return makeError(cli::CliErrc::usage, "no store: give --store FILE or --config FILE");
    }
    store::StoreOptions o;
    o.mode = store::Mode::tool;
    o.create = create;
    o.sqn.batchSize = 1;
    o.sqn.ind = s.sqnInd;
    auto st = store::Store::open(s.storePath, o);
    if (!st && st.error().domain == ErrorDomain::store &&
        st.error().code == static_cast<int>(store::StoreErrc::not_found)) {
        return makeError(cli::CliErrc::unavailable, st.error().message);
    }
    return st;
}

std::optional<Error> daemonRefusal(const store::Store& st) {
    if (!st.daemonActive())
        return std::nullopt;
    return Error{ErrorDomain::store, static_cast<int>(store::StoreErrc::locked_by_daemon),
                 "store '" + st.path() +
                     "' is in use by a running daemon (best-hsed); this change would race it: "
                     "stop the daemon first (sqn set and sqn resync go through its admin socket "
                     "instead)"};
}

store::WrappedBlob toStored(const Bytes& vaultBlob) {
    store::WrappedBlob b;
    const std::size_t n =
        vaultBlob.size() >= hsm::kBlobTagSize ? vaultBlob.size() - hsm::kBlobTagSize : 0;
    b.data.assign(vaultBlob.begin(), vaultBlob.begin() + static_cast<std::ptrdiff_t>(n));
    b.binding.assign(vaultBlob.begin() + static_cast<std::ptrdiff_t>(n), vaultBlob.end());
    return b;
}

Bytes fromStored(const store::WrappedBlob& b) {
    Bytes out = b.data;
    out.insert(out.end(), b.binding.begin(), b.binding.end());
    return out;
}

hsm::BlobBinding kRow(const std::string& imsi) {
    return {imsi, hsm::BlobPurpose::subscriberK, kSubscriberBlobVersion};
}

hsm::BlobBinding opcRow(const std::string& imsi) {
    return {imsi, hsm::BlobPurpose::opc, kSubscriberBlobVersion};
}

hsm::SubscriberRef SubscriberBlobs::ref(const std::string& imsi) const {
    return {{k, kRow(imsi)}, {opc, opcRow(imsi)}};
}

Result<SubscriberBlobs> blobsOf(const store::SubscriberRecord& s) {
    if (s.opKind != store::OpKind::opc) {
        return makeError(cli::CliErrc::refused,
                         "subscriber " + s.imsi +
                             " has an encrypted OP, not OPc; this version keeps OPc only "
                             "(provision it again)");
    }
    return SubscriberBlobs{fromStored(s.k), fromStored(s.op)};
}

std::optional<std::string> sqnText(std::uint64_t seq, std::uint32_t ind, std::uint8_t indBits) {
    if (indBits < 32 && ind >= (std::uint64_t{1} << indBits))
        return std::nullopt;
    if (seq > store::maxSeq(indBits))
        return std::nullopt;
    return toHex(store::sqnToBytes(store::composeSqn(seq, ind, indBits)));
}

std::string formatTime(std::int64_t unixSeconds) {
    const std::time_t t = static_cast<std::time_t>(unixSeconds);
    std::tm tm{};
    if (::gmtime_r(&t, &tm) == nullptr)
        return std::to_string(unixSeconds);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

void sqnStateFields(JsonOut& j, const store::SqnState& q, const Settings& s) {
    j.field("seq_he", q.seqHe);
    j.field("next_seq", q.seqHe + 1);
    j.field("next_sqn", sqnText(q.seqHe + 1, s.sqnInd, q.indBits));
    j.field("ind", s.sqnInd);
    j.field("ind_bits", static_cast<unsigned>(q.indBits));
    j.field("last_change", q.lastChange);
    j.field("reservations", q.reservations);
    j.field("updated_at", formatTime(q.updatedAt));
}

}  // namespace best::hsectl
