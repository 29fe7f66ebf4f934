#include "store/connection.h"

#include <string>

namespace best::store {

StoreErrc storeErrcOf(int rc) noexcept {
    switch (rc) {
        case SQLITE_CONSTRAINT_PRIMARYKEY:
        case SQLITE_CONSTRAINT_UNIQUE:
            return StoreErrc::duplicate;
        case SQLITE_CONSTRAINT_FOREIGNKEY:
        // ON DELETE RESTRICT is enforced by an internal trigger and reports this code; the schema
        // has no triggers of its own.
        case SQLITE_CONSTRAINT_TRIGGER:
            return StoreErrc::referenced;
        case SQLITE_CONSTRAINT_CHECK:
        case SQLITE_CONSTRAINT_NOTNULL:
        case SQLITE_MISMATCH:
        case SQLITE_RANGE:
        case SQLITE_TOOBIG:
            return StoreErrc::invalid_argument;
        default:
            break;
    }
    switch (rc & 0xff) {
        case SQLITE_BUSY:
        case SQLITE_LOCKED:
            return StoreErrc::busy;
        case SQLITE_NOTADB:
        case SQLITE_CORRUPT:
            return StoreErrc::corrupt;
        case SQLITE_IOERR:
        case SQLITE_FULL:
        case SQLITE_CANTOPEN:
        case SQLITE_READONLY:
        case SQLITE_PERM:
        case SQLITE_PROTOCOL:
            return StoreErrc::io;
        case SQLITE_CONSTRAINT:
            return StoreErrc::invalid_argument;
        default:
            return StoreErrc::internal;
    }
}

Statement::~Statement() {
    if (stmt_ != nullptr) {
        sqlite3_reset(stmt_);
        sqlite3_clear_bindings(stmt_);
    }
}

Statement& Statement::bind(int index, std::int64_t value) {
    const int rc = sqlite3_bind_int64(stmt_, index, value);
    if (bindRc_ == SQLITE_OK)
        bindRc_ = rc;
    return *this;
}

Statement& Statement::bind(int index, std::string_view text) {
    // A null data pointer would bind NULL; an empty view must bind the empty string.
    const char* p = text.data() != nullptr ? text.data() : "";
    const int rc = sqlite3_bind_text64(stmt_, index, p, text.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
    if (bindRc_ == SQLITE_OK)
        bindRc_ = rc;
    return *this;
}

Statement& Statement::bind(int index, ByteView blob) {
    // A zero-length blob is still a blob, not NULL: bind a zeroblob so that length() is 0.
    const int rc = blob.empty() ? sqlite3_bind_zeroblob(stmt_, index, 0)
                                : sqlite3_bind_blob64(stmt_, index, blob.data(), blob.size(),
                                                      SQLITE_TRANSIENT);
    if (bindRc_ == SQLITE_OK)
        bindRc_ = rc;
    return *this;
}

Statement& Statement::bindNull(int index) {
    const int rc = sqlite3_bind_null(stmt_, index);
    if (bindRc_ == SQLITE_OK)
        bindRc_ = rc;
    return *this;
}

Statement& Statement::bindOptional(int index, const std::optional<std::string>& text) {
    return text ? bind(index, std::string_view(*text)) : bindNull(index);
}

Statement& Statement::bindOptional(int index, const std::optional<Bytes>& blob) {
    return blob ? bind(index, ByteView(*blob)) : bindNull(index);
}

Result<bool> Statement::step() {
    if (bindRc_ != SQLITE_OK) {
        return makeError(storeErrcOf(bindRc_),
                         std::string("binding a value failed: ") + sqlite3_errstr(bindRc_));
    }
    const int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW)
        return true;
    if (rc == SQLITE_DONE)
        return false;
    // sqlite3_errmsg names the constraint ("UNIQUE constraint failed: subscribers.imsi"), never
    // the values, so the text is safe to pass on.
    const int ext = sqlite3_extended_errcode(db_);
    return makeError(storeErrcOf(ext), sqlite3_errmsg(db_));
}

Result<void> Statement::run() {
    for (;;) {
        auto r = step();
        if (!r)
            return makeError(std::move(r.error()));
        if (!*r)
            return {};
    }
}

bool Statement::isNull(int column) const {
    return sqlite3_column_type(stmt_, column) == SQLITE_NULL;
}

std::int64_t Statement::int64(int column) const {
    return sqlite3_column_int64(stmt_, column);
}

std::string Statement::text(int column) const {
    const auto* p = sqlite3_column_text(stmt_, column);
    const int n = sqlite3_column_bytes(stmt_, column);
    if (p == nullptr)
        return {};
    return std::string(reinterpret_cast<const char*>(p), static_cast<std::size_t>(n));
}

Bytes Statement::blob(int column) const {
    const auto* p = static_cast<const std::uint8_t*>(sqlite3_column_blob(stmt_, column));
    const int n = sqlite3_column_bytes(stmt_, column);
    if (p == nullptr || n <= 0)
        return {};
    return Bytes(p, p + n);
}

std::optional<std::string> Statement::optionalText(int column) const {
    if (isNull(column))
        return std::nullopt;
    return text(column);
}

std::optional<Bytes> Statement::optionalBlob(int column) const {
    if (isNull(column))
        return std::nullopt;
    return blob(column);
}

Result<std::unique_ptr<Connection>> Connection::open(const std::string& path, Role role,
                                                     std::chrono::milliseconds busyTimeout) {
    sqlite3* raw = nullptr;
    // NOMUTEX: each connection is used by one thread at a time (writer thread, leased readers).
    const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;
    const int rc = sqlite3_open_v2(path.c_str(), &raw, flags, nullptr);
    SqliteDb db(raw);
    if (rc != SQLITE_OK) {
        std::string msg = "cannot open store '" + path +
                          "': " + (db.isValid() ? sqlite3_errmsg(db.get()) : sqlite3_errstr(rc));
        return makeError(storeErrcOf(rc), std::move(msg));
    }
    sqlite3_extended_result_codes(db.get(), 1);
    sqlite3_busy_timeout(db.get(), static_cast<int>(busyTimeout.count()));
    std::unique_ptr<Connection> c(new Connection(std::move(db), role));

    // The first real read: a file that is not a database fails here with SQLITE_NOTADB.
    // Statements are scoped so that they are reset before the PRAGMAs below.
    {
        auto check = c->prepare("SELECT count(*) FROM sqlite_schema");
        auto r = check ? check->step() : Result<bool>(makeError(std::move(check.error())));
        if (!r) {
            auto e = r.error();
            if (e.code == static_cast<int>(StoreErrc::corrupt)) {
                e.message = "'" + path + "' is not a usable SQLite database (" + e.message + ")";
            } else {
                e.message = "cannot read store '" + path + "': " + e.message;
            }
            return makeError(std::move(e));
        }
    }

    if (role == Role::writer) {
        // journal_mode=WAL persists in the file; the others are per connection.
        {
            auto wal = c->prepare("PRAGMA journal_mode=WAL");
            if (!wal)
                return makeError(std::move(wal.error()));
            auto row = wal->step();
            if (!row)
                return makeError(std::move(row.error()));
            if (!*row || wal->text(0) != "wal") {
                return makeError(StoreErrc::io, "cannot switch store '" + path + "' to WAL mode");
            }
        }
        // secure_delete: deleted rows (wrapped key blobs) are overwritten, not left in free pages.
        if (auto r = c->exec("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; "
                             "PRAGMA secure_delete=ON;");
            !r) {
            return makeError(std::move(r.error()));
        }
    } else {
        if (auto r = c->exec("PRAGMA foreign_keys=ON; PRAGMA query_only=ON;"); !r) {
            return makeError(std::move(r.error()));
        }
    }
    return c;
}

Result<void> Connection::exec(const char* sql) {
    char* err = nullptr;
    const int rc = sqlite3_exec(db_.get(), sql, nullptr, nullptr, &err);
    if (rc != SQLITE_OK) {
        std::string msg = err != nullptr ? err : sqlite3_errstr(rc);
        sqlite3_free(err);
        return makeError(storeErrcOf(sqlite3_extended_errcode(db_.get())), std::move(msg));
    }
    return {};
}

Result<Statement> Connection::prepare(std::string_view sql) {
    auto it = cache_.find(std::string(sql));
    if (it == cache_.end()) {
        sqlite3_stmt* raw = nullptr;
        const int rc = sqlite3_prepare_v3(db_.get(), sql.data(), static_cast<int>(sql.size()),
                                          SQLITE_PREPARE_PERSISTENT, &raw, nullptr);
        SqliteStmt stmt(raw);
        if (rc != SQLITE_OK || !stmt.isValid()) {
            return makeError(storeErrcOf(rc),
                             std::string("cannot prepare statement: ") + sqlite3_errmsg(db_.get()));
        }
        it = cache_.emplace(std::string(sql), std::move(stmt)).first;
    }
    return Statement(db_.get(), it->second.get());
}

Error Connection::lastError(std::string_view what) const {
    return errorFor(sqlite3_extended_errcode(db_.get()), what);
}

Error Connection::errorFor(int rc, std::string_view what) const {
    std::string msg(what);
    msg += ": ";
    msg += sqlite3_errmsg(db_.get());
    return Error{ErrorDomain::store, static_cast<int>(storeErrcOf(rc)), std::move(msg)};
}

std::int64_t Connection::changes() const noexcept {
    return sqlite3_changes64(db_.get());
}

bool Connection::inTransaction() const noexcept {
    return sqlite3_get_autocommit(db_.get()) == 0;
}

Result<std::int64_t> Connection::userVersion() {
    auto st = prepare("PRAGMA user_version");
    if (!st)
        return makeError(std::move(st.error()));
    auto row = st->step();
    if (!row)
        return makeError(std::move(row.error()));
    if (!*row)
        return makeError(StoreErrc::internal, "PRAGMA user_version returned no row");
    return st->int64(0);
}

}  // namespace best::store
