// Readable gtest output for EMSDP outcomes.
#pragma once

#include <ostream>

#include "emsdp/outcome.h"

namespace best::emsdp {

inline void PrintTo(DropReason r, std::ostream* os) {
    *os << dropReasonName(r);
}

inline void PrintTo(Cause c, std::ostream* os) {
    *os << causeName(c);
}

inline void PrintTo(const Verdict& v, std::ostream* os) {
    if (v.isDrop())
        *os << "drop(" << dropReasonName(v.reason) << ")";
    else
        *os << "reject(" << causeName(v.cause) << ", " << dropReasonName(v.reason) << ")";
    if (v.authenticated)
        *os << " authenticated";
}

inline void PrintTo(const FormatError& e, std::ostream* os) {
    *os << causeName(e.cause) << "/" << dropReasonName(e.reason) << "@" << e.offset;
}

}  // namespace best::emsdp
