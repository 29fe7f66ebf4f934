// Where the UE's nonces come from: OpenSSL's DRBG (RAND_bytes_ex on crypto::Provider's library
// context) in products, a scripted source in tests.
#pragma once

#include "common/bytes.h"
#include "common/result.h"

namespace best::ue {

class RandomSource {
public:
    virtual ~RandomSource() = default;
    virtual Result<void> fill(MutableByteView out) = 0;
};

// RAND_bytes_ex on crypto::Provider::instance().libctx(). Thread-safe (OpenSSL's DRBGs are).
class OpensslRandom final : public RandomSource {
public:
    Result<void> fill(MutableByteView out) override;
};

// One process-wide OpensslRandom.
RandomSource& systemRandom();

}  // namespace best::ue
