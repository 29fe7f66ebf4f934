#include "sim/sim_error.h"

#include <cstdio>
#include <cstring>

namespace best::sim {

std::string swHex(std::uint16_t sw) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "%02x%02x", sw >> 8, sw & 0xFF);
    return buf;
}

std::string errnoText(int err) {
    char buf[128];
    return ::strerror_r(err, buf, sizeof buf);
}

}  // namespace best::sim
