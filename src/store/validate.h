// Value checks shared by the store's API functions (internal header). Each returns an
// invalid_argument error naming the value, never echoing blob contents.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.h"
#include "store/records.h"
#include "store/store_error.h"

namespace best::store {

std::int64_t unixNow() noexcept;

Result<void> checkImsi(std::string_view imsi);
Result<void> checkUtf8Id(std::string_view value, std::string_view what, std::size_t maxOctets);
Result<void> checkBlob(const WrappedBlob& b, std::string_view what);

}  // namespace best::store
