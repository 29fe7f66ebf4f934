// Errors of the state store (conventions 5): one enum, converted through makeError().
#pragma once

#include "common/result.h"

namespace best::store {

enum class StoreErrc {
    io = 1,            // the file, its directory or the lock file could not be opened or written
    busy,              // another connection held the database longer than the busy timeout
    corrupt,           // the file is not an SQLite database, or it is damaged
    schema_too_new,    // the file was written by a newer program (PRAGMA user_version too high)
    migration_failed,  // a schema migration did not apply; the file is left at its old version
    in_use,            // daemon mode: another process already holds the store lock
    locked_by_daemon,  // tool mode: a running daemon holds the store, mutations must go through it
    duplicate,         // the row exists already (IMSI, external UE id, EAS Id, fingerprint, ...)
    not_found,         // no such subscriber, EAS, key set or refresh
    invalid_argument,  // a value out of range (IMSI digits, KID, IND bits, blob sizes, ...)
    referenced,        // the row is still referenced (an EAS allowed for subscribers)
    stale_nonce,       // a resumption nonce not greater than the key set's high-water mark
    sqn_exhausted,     // SEQ would pass its maximum for the subscriber's IND length
    closed,            // the store is shutting down; the write was not attempted
    internal,          // a programming error (e.g. a blocking call from a completion callback)
};

inline ErrorDomain errorDomainOf(StoreErrc) {
    return ErrorDomain::store;
}

}  // namespace best::store
