// Versioned schema migrations (PRAGMA user_version). Migration N takes a file from version N-1
// to N; later migrations are appended to the list, never edited, so every released file can be
// brought forward step by step.
#pragma once

#include <cstdint>
#include <span>

#include "common/result.h"
#include "store/connection.h"

namespace best::store {

struct Migration {
    std::int64_t version;     // user_version after this step
    const char* description;  // one line for logs and docs
    const char* sql;          // statements run inside the migration transaction
};

// Every migration, in order; kSchemaVersion is the version of the last one.
std::span<const Migration> migrations() noexcept;
inline constexpr std::int64_t kSchemaVersion = 1;

// Brings the writer connection's file to `target` (default: the latest) in one BEGIN IMMEDIATE
// transaction. Refuses a file whose version is above what this program knows
// (StoreErrc::schema_too_new) and leaves the file unchanged when a step fails
// (StoreErrc::migration_failed). Returns the version the file had before.
Result<std::int64_t> migrate(Connection& writer, std::int64_t target = kSchemaVersion);

}  // namespace best::store
