// The user PIN comes from a file (or a systemd credential, which is a file under
// $CREDENTIALS_DIRECTORY), never from argv or YAML. Read into a locked, wiped buffer.
#pragma once

#include <string>

#include "common/result.h"
#include "common/secure.h"

namespace best::hsm {

inline constexpr std::size_t kMaxPinLength = 255;

// One trailing "\n" or "\r\n" is removed. Errors (pin_file): missing or unreadable, not a
// regular file, accessible by "other" users, empty, longer than kMaxPinLength.
Result<SecureBuffer> readPinFile(const std::string& path);

}  // namespace best::hsm
