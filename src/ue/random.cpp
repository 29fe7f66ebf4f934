#include "ue/random.h"

#include <openssl/rand.h>

#include "crypto/ossl.h"

namespace best::ue {

Result<void> OpensslRandom::fill(MutableByteView out) {
    const auto& p = crypto::Provider::instance();
    if (!p.ok())
        return crypto::opensslError("crypto provider");
    if (out.empty())
        return {};
    if (RAND_bytes_ex(p.libctx(), out.data(), out.size(), 0) != 1)
        return crypto::opensslError("RAND_bytes_ex");
    return {};
}

RandomSource& systemRandom() {
    static OpensslRandom random;
    return random;
}

}  // namespace best::ue
