#include "store/schema.h"

#include <array>
#include <string>

#include "common/log.h"

namespace best::store {
namespace {

// Version 1: the initial schema (docs/state.md describes each column).
// Blobs are opaque: wrapped or encrypted by the HSM KeyVault, each with its binding MAC.
// No STRICT tables: the floor is SQLite 3.35 (STRICT needs 3.37); CHECKs guard the types.
constexpr const char* kSchemaV1 = R"sql(
CREATE TABLE subscribers (
    imsi            TEXT PRIMARY KEY
                    CHECK (length(imsi) BETWEEN 6 AND 15 AND imsi NOT GLOB '*[^0-9]*'),
    external_ue_id  TEXT UNIQUE,
    algorithm       TEXT NOT NULL CHECK (algorithm = 'milenage'),
    k_wrapped       BLOB NOT NULL,
    k_binding       BLOB NOT NULL,
    op_kind         TEXT NOT NULL CHECK (op_kind IN ('op', 'opc')),
    op_encrypted    BLOB NOT NULL,
    op_binding      BLOB NOT NULL,
    amf             BLOB NOT NULL CHECK (length(amf) = 2),
    ind_bits        INTEGER NOT NULL CHECK (ind_bits BETWEEN 0 AND 16),
    created_at      INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE eas (
    eas_id          TEXT PRIMARY KEY CHECK (length(CAST(eas_id AS BLOB)) BETWEEN 1 AND 64),
    service_mode    TEXT NOT NULL CHECK (service_mode IN ('ka-only', 'ue-to-hse', 'ue-to-eas')),
    cert_sha256     BLOB UNIQUE CHECK (cert_sha256 IS NULL OR length(cert_sha256) = 32),
    up_endpoint     TEXT,
    created_at      INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE subscriber_eas (
    imsi            TEXT NOT NULL REFERENCES subscribers (imsi) ON DELETE CASCADE,
    eas_id          TEXT NOT NULL REFERENCES eas (eas_id) ON DELETE RESTRICT,
    PRIMARY KEY (imsi, eas_id)
) WITHOUT ROWID;
CREATE INDEX subscriber_eas_by_eas ON subscriber_eas (eas_id);

CREATE TABLE sqn_state (
    imsi            TEXT PRIMARY KEY REFERENCES subscribers (imsi) ON DELETE CASCADE,
    seq_he          INTEGER NOT NULL CHECK (seq_he >= 0),
    last_change     TEXT NOT NULL CHECK (last_change IN ('provision', 'reserve', 'set', 'resync')),
    reservations    INTEGER NOT NULL DEFAULT 0,
    updated_at      INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE key_sets (
    imsi            TEXT NOT NULL REFERENCES subscribers (imsi) ON DELETE CASCADE,
    kid             INTEGER NOT NULL CHECK (kid BETWEEN 1 AND 7),
    state           TEXT NOT NULL CHECK (state IN ('current', 'pending')),
    key_agreement   INTEGER NOT NULL CHECK (key_agreement IN (1, 2, 3)),
    plmn            BLOB CHECK (plmn IS NULL OR length(plmn) = 3),
    hse_id          TEXT NOT NULL CHECK (length(CAST(hse_id AS BLOB)) BETWEEN 1 AND 64),
    created_at      INTEGER NOT NULL,
    lifetime        INTEGER NOT NULL CHECK (lifetime BETWEEN 0 AND 4294967295),
    highest_nonce   BLOB CHECK (highest_nonce IS NULL OR length(highest_nonce) = 8),
    use_count       INTEGER NOT NULL DEFAULT 0 CHECK (use_count >= 0),
    kint_wrapped    BLOB NOT NULL,
    kint_binding    BLOB NOT NULL,
    PRIMARY KEY (imsi, kid)
) WITHOUT ROWID;
CREATE UNIQUE INDEX key_sets_one_per_state ON key_sets (imsi, state);

CREATE TABLE key_set_eas_keys (
    imsi            TEXT NOT NULL,
    kid             INTEGER NOT NULL,
    eas_id          TEXT NOT NULL CHECK (length(CAST(eas_id AS BLOB)) BETWEEN 1 AND 64),
    key_type        TEXT NOT NULL CHECK (key_type IN ('kint-e2e', 'kint-eas-psk')),
    key_wrapped     BLOB NOT NULL,
    key_binding     BLOB NOT NULL,
    eas_key_id      BLOB NOT NULL CHECK (length(eas_key_id) = 16),
    PRIMARY KEY (imsi, kid, eas_id),
    FOREIGN KEY (imsi, kid) REFERENCES key_sets (imsi, kid) ON DELETE CASCADE
) WITHOUT ROWID;
CREATE UNIQUE INDEX eas_key_identifier_index ON key_set_eas_keys (eas_id, eas_key_id);

CREATE TABLE refreshes (
    imsi            TEXT PRIMARY KEY REFERENCES subscribers (imsi) ON DELETE CASCADE,
    origin          INTEGER NOT NULL CHECK (origin IN (1, 2, 3)),
    new_kid         INTEGER NOT NULL CHECK (new_kid BETWEEN 0 AND 7),
    rand            BLOB CHECK (rand IS NULL OR length(rand) = 16),
    autn            BLOB CHECK (autn IS NULL OR length(autn) = 16),
    resyncs         INTEGER NOT NULL DEFAULT 0 CHECK (resyncs >= 0),
    requested_by    TEXT,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
) WITHOUT ROWID;
)sql";

constexpr std::array<Migration, 1> kMigrations{{
    {1, "initial schema: subscribers, EAS registry, SQN state, key sets, refreshes", kSchemaV1},
}};
static_assert(kMigrations.back().version == kSchemaVersion);

}  // namespace

std::span<const Migration> migrations() noexcept {
    return kMigrations;
}

Result<std::int64_t> migrate(Connection& writer, std::int64_t target) {
    if (target < 0 || target > kSchemaVersion) {
        return makeError(StoreErrc::invalid_argument,
                         "no schema version " + std::to_string(target));
    }
    if (auto r = writer.exec("BEGIN IMMEDIATE"); !r) {
        auto e = r.error();
        e.message = "cannot start the migration transaction: " + e.message;
        return makeError(std::move(e));
    }
    auto rollback = [&writer](Error e) -> Result<std::int64_t> {
        (void)writer.exec("ROLLBACK");
        return makeError(std::move(e));
    };
    auto version = writer.userVersion();
    if (!version)
        return rollback(version.error());
    const std::int64_t from = *version;
    if (from > kSchemaVersion) {
        return rollback(Error{ErrorDomain::store, static_cast<int>(StoreErrc::schema_too_new),
                              "store schema version " + std::to_string(from) +
                                  " is newer than this program supports (" +
                                  std::to_string(kSchemaVersion) +
                                  "); run a newer best-hse or restore a backup"});
    }
    if (from > target) {
        return rollback(Error{ErrorDomain::store, static_cast<int>(StoreErrc::invalid_argument),
                              "cannot migrate down from version " + std::to_string(from) + " to " +
                                  std::to_string(target)});
    }
    for (const auto& m : kMigrations) {
        if (m.version <= from || m.version > target)
            continue;
        if (auto r = writer.exec(m.sql); !r) {
            return rollback(Error{ErrorDomain::store, static_cast<int>(StoreErrc::migration_failed),
                                  "schema migration to version " + std::to_string(m.version) +
                                      " failed: " + r.error().message});
        }
        log::info("store",
                  "applied schema migration " + std::to_string(m.version) + ": " + m.description);
    }
    if (from != target) {
        // PRAGMA takes no bound parameters; the value is our own integer.
        const std::string setVersion = "PRAGMA user_version = " + std::to_string(target);
        if (auto r = writer.exec(setVersion.c_str()); !r)
            return rollback(r.error());
    }
    if (auto r = writer.exec("COMMIT"); !r) {
        return rollback(Error{ErrorDomain::store, static_cast<int>(StoreErrc::migration_failed),
                              "committing the schema migration failed: " + r.error().message});
    }
    return from;
}

}  // namespace best::store
