// best-hsectl's side of best-hsed's admin socket (docs/operations.md, "Admin socket"): one
// request line, one JSON response line; the commands ue show | refresh, reload, status --daemon,
// and sqn set | resync while a daemon holds the store.
#pragma once

#include <string>

#include "common/result.h"
#include "context.h"
#include "hse/admin_server.h"

namespace best::hsectl {

// Exit code 7: the daemon's admin socket cannot be used (not running, no permission).
inline constexpr int kExitAdminUnavailable = 7;

enum class AdminClientErrc { unavailable = 1, protocol };
inline ErrorDomain errorDomainOf(AdminClientErrc) {
    return ErrorDomain::net;
}

// Sends `request` to the socket and reads the response (timeout 30 s). Errors: unavailable
// (connect/permission), protocol (no or malformed answer).
Result<hse::JsonValue> adminCall(const std::string& socketPath, const hse::AdminRequest& request);

// Exit code for a daemon's {"ok":false,"error":CODE} answer.
int exitCodeForAdminError(const std::string& code);

// Prints the daemon's error answer as "best-hsectl CMD: message"; returns its exit code.
int failFromAdmin(const Cmd& cmd, const hse::JsonValue& answer);

int runUe(const std::vector<std::string>& args);
int runReload(const std::vector<std::string>& args);
// `status --daemon`.
int runDaemonStatus(const std::vector<std::string>& args);

}  // namespace best::hsectl
