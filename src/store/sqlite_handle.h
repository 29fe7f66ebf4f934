// Move-only owners of sqlite3* and sqlite3_stmt*, shaped like libcamera's UniqueFD
// (conventions 1): explicit constructor from the raw value, release(), reset(), get(), isValid(),
// no copies. Embed these, never the raw pointers.
#pragma once

#include <sqlite3.h>

#include <utility>

namespace best::store {

class SqliteDb {
public:
    SqliteDb() noexcept = default;
    explicit SqliteDb(sqlite3* db) noexcept : db_(db) {}
    SqliteDb(SqliteDb&& o) noexcept : db_(o.release()) {}
    SqliteDb& operator=(SqliteDb&& o) noexcept {
        reset(o.release());
        return *this;
    }
    SqliteDb(const SqliteDb&) = delete;
    SqliteDb& operator=(const SqliteDb&) = delete;
    ~SqliteDb() { reset(); }

    sqlite3* get() const noexcept { return db_; }
    bool isValid() const noexcept { return db_ != nullptr; }
    sqlite3* release() noexcept { return std::exchange(db_, nullptr); }
    // sqlite3_close_v2 never fails for a valid handle: with statements still open it defers the
    // close until the last one is finalized.
    void reset(sqlite3* db = nullptr) noexcept {
        sqlite3* old = std::exchange(db_, db);
        if (old != nullptr) {
            sqlite3_close_v2(old);
        }
    }

private:
    sqlite3* db_ = nullptr;
};

class SqliteStmt {
public:
    SqliteStmt() noexcept = default;
    explicit SqliteStmt(sqlite3_stmt* stmt) noexcept : stmt_(stmt) {}
    SqliteStmt(SqliteStmt&& o) noexcept : stmt_(o.release()) {}
    SqliteStmt& operator=(SqliteStmt&& o) noexcept {
        reset(o.release());
        return *this;
    }
    SqliteStmt(const SqliteStmt&) = delete;
    SqliteStmt& operator=(const SqliteStmt&) = delete;
    ~SqliteStmt() { reset(); }

    sqlite3_stmt* get() const noexcept { return stmt_; }
    bool isValid() const noexcept { return stmt_ != nullptr; }
    sqlite3_stmt* release() noexcept { return std::exchange(stmt_, nullptr); }
    void reset(sqlite3_stmt* stmt = nullptr) noexcept {
        sqlite3_stmt* old = std::exchange(stmt_, stmt);
        if (old != nullptr) {
            sqlite3_finalize(old);
        }
    }

private:
    sqlite3_stmt* stmt_ = nullptr;
};

}  // namespace best::store
