// What every best-hsectl command that touches the HSM or the store shares: the global options
// (--config, --module, --token, --pin-file, --store, --json), their resolution into settings,
// opening the KeyVault and the store in tool mode, the mapping of errors to exit codes, and how
// subscriber blobs are laid out in the store.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cli.h"
#include "common/bytes.h"
#include "common/json.h"
#include "common/result.h"
#include "hsm/key_vault.h"
#include "store/store.h"

namespace best::hsectl {

// The row version the K and OPc blobs of a subscriber are bound to (docs/hsm.md section 4).
// Schema version 1 has no key-version column, so it is 1 for every subscriber; the daemon binds
// the same rows.
inline constexpr std::uint64_t kSubscriberBlobVersion = 1;

// The PKCS#11 module used when neither --module, the config nor a pkcs11: URI names one.
inline constexpr const char* kDefaultModule = "/usr/lib/softhsm/libsofthsm2.so";

struct Settings {
    hsm::HsmConfig hsm;  // module, token, pinFile
    std::string storePath;
    std::uint32_t sqnInd = 0;                       // this HSE's IND (config sqn.ind)
    std::uint8_t indBits = store::kDefaultIndBits;  // default IND length (config sqn.ind_bits)
    bool json = false;
    // The running daemon's admin socket (--admin-socket, else admin.socket of --config).
    std::string adminSocket = "/run/best-hsed/admin.sock";
};

// The global options, for Options::parse (appended to a command's own).
std::vector<cli::OptionSpec> withGlobalOptions(std::vector<cli::OptionSpec> own);
// Whether `name` (without "--") is a global option, and whether it takes a value.
bool isGlobalOption(std::string_view name, bool& takesValue);
// Help text of the global options (a block for each command's --help).
extern const char* const kGlobalOptionsHelp;

// Exit code for an error of any area (cli.h lists the codes; docs/operations.md explains them).
int exitCodeFor(const Error& e);

// Messages of one command: "best-hsectl subscriber add: ..." on standard error.
class Cmd {
public:
    explicit Cmd(std::string name) : name_(std::move(name)) {}
    const std::string& name() const noexcept { return name_; }
    // Prints the message; returns exitCodeFor(e).
    int fail(const Error& e) const;
    int fail(std::string_view message, int code) const;
    // Prints the message and "(see best-hsectl NAME --help)"; returns kExitUsage.
    int usage(std::string_view message) const;
    // Parses `args` with the command's options (plus the global ones when `globals`). Prints
    // `help` for --help, or the usage error; in both cases returns nullopt and sets `exitCode`.
    std::optional<cli::Options> parse(const std::vector<std::string>& args,
                                      std::vector<cli::OptionSpec> specs, const char* help,
                                      int& exitCode, bool globals = true) const;

private:
    std::string name_;
};

Result<Settings> resolveSettings(const cli::Options& o);
// The settings' HSM configuration with the defaults filled in; usage errors when the token or
// PIN file is missing.
Result<hsm::HsmConfig> hsmConfigOf(const Settings& s);
Result<std::unique_ptr<hsm::KeyVault>> openVault(const Settings& s);
// Tool mode (docs/state.md, "The store lock"), one SEQ per reservation (each vector of
// aka-vector --imsi takes exactly one), the IND of the settings. `create`: make a missing file.
Result<std::unique_ptr<store::Store>> openStore(const Settings& s, bool create);
// The error for a change while a daemon holds the store (exit code kExitDaemon).
std::optional<Error> daemonRefusal(const store::Store& st);

// A vault blob (header || payload || binding tag) as the store keeps it: the tag (its last 32
// octets) in `binding`, the rest in `data`; and back.
store::WrappedBlob toStored(const Bytes& vaultBlob);
Bytes fromStored(const store::WrappedBlob& b);
hsm::BlobBinding kRow(const std::string& imsi);
hsm::BlobBinding opcRow(const std::string& imsi);

// The subscriber's blobs as the vault takes them; `k` and `opc` hold the octets the views
// point into and must outlive the result.
struct SubscriberBlobs {
    Bytes k;
    Bytes opc;
    hsm::SubscriberRef ref(const std::string& imsi) const;
};
Result<SubscriberBlobs> blobsOf(const store::SubscriberRecord& s);

// The SQN a vector with SEQ `seq` gets from this HSE (IND `ind`), when `ind` fits `indBits` and
// `seq` is not past the maximum; as 12 hex digits.
std::optional<std::string> sqnText(std::uint64_t seq, std::uint32_t ind, std::uint8_t indBits);

// "2024-05-01T12:00:00Z".
std::string formatTime(std::int64_t unixSeconds);

// The --json members of an SQN state (seq_he, next_seq, next_sqn, ind, ind_bits, last_change,
// reservations, updated_at), in `sqn show` and `subscriber show`.
void sqnStateFields(JsonOut& j, const store::SqnState& q, const Settings& s);

}  // namespace best::hsectl
