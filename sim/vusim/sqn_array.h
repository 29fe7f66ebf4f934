// The virtual card uses the project's one SQN array (crypto/sqn_array.h).
#pragma once

#include "crypto/sqn_array.h"

namespace best::sim::vusim {
using crypto::Freshness;
using crypto::kDefaultIndBits;
using crypto::kMaxIndBits;
using crypto::kSqnDelta;
using crypto::SqnArray;
}  // namespace best::sim::vusim
