// Persistence of the UE's key sets and last nonce (UeState) in a small versioned text file.
//
// The file holds KInt of every key set, so it is a secret: written with mode 0600, refused when
// group or others may read or write it. Writes are atomic and durable: a temporary file in the
// same directory, fsync, rename over the old file, fsync of the directory. The engine saves
// before it sends a resumption request with a new nonce (the nonce must never repeat across
// restarts) and after every key-set change. Counters are never persisted.
//
// Format, version 1 (one record per line, "\n" line ends, fields in this order):
//   best-ue-state 1
//   imsi <digits>|-
//   last-nonce <16 hex>|-
//   key-set <current|pending> kid=<1..7> ka=<umts|eps|5g> plmn=<6 hex>|- created=<unix s>
//           lifetime=<s> last-nonce=<16 hex>|- hse-id=<hex of UTF-8> kint=<64 hex>   (one line)
//   sha256 <64 hex: SHA-256 over every octet before this line>
// At most one key-set line per role, current first. Anything else is corrupt.
#pragma once

#include <string>

#include "common/bytes.h"
#include "common/result.h"
#include "common/secure.h"
#include "ue/key_set.h"

namespace best::ue {

inline constexpr int kStateFileVersion = 1;

// Where the engine persists its UeState.
class StateStore {
public:
    virtual ~StateStore() = default;
    virtual Result<void> save(const UeState& state) = 0;
};

// The file's text (wiped when the buffer dies).
Result<SecureBuffer> encodeState(const UeState& state);
// Parses and validates a file's text: version (wrong_version), checksum and syntax (corrupt).
Result<UeState> decodeState(ByteView text);

class FileStateStore final : public StateStore {
public:
    explicit FileStateStore(std::string path) : path_(std::move(path)) {}

    const std::string& path() const noexcept { return path_; }
    // The saved state; an empty UeState when the file does not exist. Errors: io,
    // insecure_mode (group/other bits set, or not a regular file), corrupt, wrong_version.
    Result<UeState> load() const;
    // Atomic, durable replace (see above).
    Result<void> save(const UeState& state) override;

private:
    std::string path_;
};

// Keeps the last saved state in memory (load drivers, tests).
class MemoryStateStore final : public StateStore {
public:
    Result<void> save(const UeState& state) override {
        saved_ = state;
        ++saves_;
        return {};
    }
    const UeState& saved() const noexcept { return saved_; }
    unsigned saves() const noexcept { return saves_; }

private:
    UeState saved_;
    unsigned saves_ = 0;
};

}  // namespace best::ue
