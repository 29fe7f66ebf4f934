// The UE library uses the project's one SQN array (crypto/sqn_array.h).
#pragma once

#include "crypto/sqn_array.h"

namespace best::ue {
using crypto::Freshness;
using crypto::kSqnDelta;
using crypto::SqnArray;
}  // namespace best::ue
