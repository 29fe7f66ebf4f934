// Errors of the UE library (src/ue): the engine's refusals (state errors of the caller's
// requests) and the state file's faults. Peer input never becomes an error: it is a drop or a
// reject (emsdp/outcome.h), reported as an event.
#pragma once

#include "common/result.h"

namespace best::ue {

enum class UeErrc {
    invalid_settings = 1,  // UeSettings or the IMSI cannot make a valid Session Request
    busy,                  // an establishment or a session is already running
    not_established,       // no session (or it is terminating) for the request
    no_user_plane,         // the session's service is KA-only: no UP data
    payload_too_large,     // the UP payload would make the datagram exceed 1280 octets
    counter_exhausted,     // A1: the session was terminated with cause 0x13 instead
    not_allowed,           // the request is not allowed in this state or by the settings
    random_failed,         // the random source failed (nonce)
    crypto,                // a derivation or OpenSSL call failed
    usim,                  // the USIM failed (not an AKA outcome: an I/O or card error)
    state_mismatch,        // the state belongs to another subscriber (IMSI differs)
};
inline ErrorDomain errorDomainOf(UeErrc) {
    return ErrorDomain::proto;
}

enum class StateFileErrc {
    io = 1,         // open, read, write, fsync or rename failed (message has errno text)
    corrupt,        // not a state file, bad syntax, a bad value, or the checksum differs
    wrong_version,  // a state file of another format version
    insecure_mode,  // readable or writable by group or others (must be 0600)
};
inline ErrorDomain errorDomainOf(StateFileErrc) {
    return ErrorDomain::io;
}

}  // namespace best::ue
