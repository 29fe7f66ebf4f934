// Errors of the sim area (PC/SC client, USIM application, virtual USIM, test rig).
#pragma once

#include <cstdint>
#include <string>

#include "common/result.h"

namespace best::sim {

enum class SimErrc {
    no_service = 1,  // pcscd is not running (SCARD_E_NO_SERVICE)
    no_reader,       // no reader matches the name pattern (or ICCID)
    no_card,         // the reader is empty
    card_removed,    // the card went away mid-session and one reconnect did not bring it back
    card_reset,      // the card was reset by someone else; the handle was reconnected once
    pcsc,            // any other PC/SC failure (message names the call and the code)
    status_word,     // the card answered an unexpected status word (message has it in hex)
    bad_response,    // a response could not be parsed (lengths, TLV)
    not_found,       // USIM application or file not on the card
    pin_required,    // security status not satisfied (69 82): VERIFY PIN first
    pin_incorrect,   // 63 Cx: wrong PIN, x attempts left
    pin_blocked,     // 69 83: PIN blocked
    timeout,         // waiting for a reader or card timed out
    io,              // socket or file I/O
    config,          // invalid configuration
    state,           // SQN state file unusable
    process,         // test rig: a child process failed to start or died
};
inline ErrorDomain errorDomainOf(SimErrc) {
    return ErrorDomain::sim;
}

// "6a82" style rendering of a status word, for messages.
std::string swHex(std::uint16_t sw);

// errno rendered for messages ("open /x: Permission denied").
std::string errnoText(int err);

}  // namespace best::sim
