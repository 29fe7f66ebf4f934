// One SQLite connection with its prepared-statement cache. Used by one thread at a time: the
// writer thread owns the writer connection; read connections are leased from a pool.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "common/bytes.h"
#include "common/result.h"
#include "store/sqlite_handle.h"
#include "store/store_error.h"

namespace best::store {

// Maps an SQLite result code to the store's error enum (extended codes understood).
StoreErrc storeErrcOf(int sqliteRc) noexcept;

// A cached prepared statement, borrowed from a Connection. Bindings are 1-based like SQLite's.
// The destructor resets the statement and clears its bindings, so the next user starts clean.
class Statement {
public:
    Statement(sqlite3* db, sqlite3_stmt* stmt) noexcept : db_(db), stmt_(stmt) {}
    Statement(Statement&& o) noexcept : db_(o.db_), stmt_(std::exchange(o.stmt_, nullptr)) {}
    Statement& operator=(Statement&&) = delete;
    Statement(const Statement&) = delete;
    Statement& operator=(const Statement&) = delete;
    ~Statement();

    Statement& bind(int index, std::int64_t value);
    Statement& bind(int index, std::string_view text);
    Statement& bind(int index, ByteView blob);
    Statement& bindNull(int index);
    Statement& bindOptional(int index, const std::optional<std::string>& text);
    Statement& bindOptional(int index, const std::optional<Bytes>& blob);

    // Runs one step: true when a row is available, false when done.
    Result<bool> step();
    // Steps to completion, for statements that return no rows.
    Result<void> run();

    bool isNull(int column) const;
    std::int64_t int64(int column) const;
    std::string text(int column) const;
    Bytes blob(int column) const;
    std::optional<std::string> optionalText(int column) const;
    std::optional<Bytes> optionalBlob(int column) const;

private:
    sqlite3* db_;
    sqlite3_stmt* stmt_;
    int bindRc_ = SQLITE_OK;  // first binding error, reported by step()
};

class Connection {
public:
    enum class Role { writer, reader };

    // Opens `path` (never creates it; Store creates the file with mode 0600 first), sets the busy
    // timeout and, for the writer, WAL, synchronous=FULL and foreign keys; readers are query_only.
    static Result<std::unique_ptr<Connection>> open(const std::string& path, Role role,
                                                    std::chrono::milliseconds busyTimeout);

    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    // Runs one or more statements without results (schema, PRAGMA, BEGIN/COMMIT).
    Result<void> exec(const char* sql);
    // A statement from the cache, prepared on first use. `sql` is the cache key.
    Result<Statement> prepare(std::string_view sql);
    // The last error of this connection as a store error, prefixed with `what`.
    Error lastError(std::string_view what) const;
    Error errorFor(int rc, std::string_view what) const;
    std::int64_t changes() const noexcept;
    bool inTransaction() const noexcept;
    Result<std::int64_t> userVersion();

    sqlite3* raw() const noexcept { return db_.get(); }
    Role role() const noexcept { return role_; }

private:
    Connection(SqliteDb db, Role role) noexcept : db_(std::move(db)), role_(role) {}

    SqliteDb db_;  // declared first: destroyed after the cached statements
    Role role_;
    std::unordered_map<std::string, SqliteStmt> cache_;
};

}  // namespace best::store
