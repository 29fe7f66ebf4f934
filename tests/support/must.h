// Unwraps a Result in a test: its value, or T{} after failing the running test with `what` and
// the error.
#pragma once

#include <gtest/gtest.h>

#include <utility>

#include "common/result.h"

namespace best::test {

template <typename T>
T must(Result<T> r, const char* what) {
    if (!r) {
        ADD_FAILURE() << what << ": " << r.error().describe();
        return T{};
    }
    return std::move(*r);
}

}  // namespace best::test
