#include "common/result.h"

namespace best {

std::string_view domainName(ErrorDomain d) noexcept {
    switch (d) {
        case ErrorDomain::generic:
            return "error";
        case ErrorDomain::proto:
            return "protocol";
        case ErrorDomain::crypto:
            return "crypto";
        case ErrorDomain::hsm:
            return "hsm";
        case ErrorDomain::sim:
            return "sim";
        case ErrorDomain::store:
            return "store";
        case ErrorDomain::config:
            return "config";
        case ErrorDomain::net:
            return "net";
        case ErrorDomain::io:
            return "io";
    }
    return "error";
}

std::string Error::describe() const {
    return std::string(domainName(domain)) + ": " + message;
}

}  // namespace best
