// The Provider (one explicit OSSL_LIB_CTX, algorithms fetched once) and opensslError().
#include <string>
#include <utility>

#include <gtest/gtest.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/provider.h>

#include "crypto/eps_algorithms.h"
#include "crypto/ossl.h"

namespace best::crypto::test {
namespace {

TEST(Provider, OwnContextWithEveryAlgorithm) {
    const Provider& p = Provider::instance();
    EXPECT_TRUE(p.ok());
    ASSERT_NE(p.libctx(), nullptr);
    EXPECT_NE(p.aes128Ecb(), nullptr);
    EXPECT_NE(p.aes128Ctr(), nullptr);
    EXPECT_NE(p.cmac(), nullptr);
    EXPECT_NE(p.hmac(), nullptr);
    EXPECT_NE(p.sha256(), nullptr);
    EXPECT_NE(p.hmacSha256Template(), nullptr);
    EXPECT_EQ(&p, &Provider::instance());
    // Every algorithm comes from the Provider's own library context, not the default one.
    EXPECT_EQ(EVP_CIPHER_get0_provider(p.aes128Ecb()), EVP_CIPHER_get0_provider(p.aes128Ctr()));
    EXPECT_EQ(OSSL_PROVIDER_get0_name(EVP_MAC_get0_provider(p.cmac())), std::string("default"));
    EXPECT_EQ(OSSL_PROVIDER_available(p.libctx(), "default"), 1);
}

TEST(OpensslError, NamesTheCallAndTheReasonAndClearsTheQueue) {
    ERR_raise(ERR_LIB_EVP, EVP_R_INVALID_KEY_LENGTH);
    ERR_raise(ERR_LIB_EVP, EVP_R_BAD_DECRYPT);
    const auto u = opensslError("EVP_Something");
    const Error& e = u.value();
    EXPECT_EQ(e.domain, ErrorDomain::crypto);
    EXPECT_EQ(e.code, static_cast<int>(CryptoErrc::openssl));
    EXPECT_EQ(e.message.rfind("EVP_Something failed: ", 0), 0u) << e.message;
    EXPECT_NE(e.message.find("invalid key length"), std::string::npos) << e.message;
    EXPECT_EQ(ERR_peek_error(), 0u);
    // With an empty queue only the call is named.
    EXPECT_EQ(opensslError("X").value().message, "X failed");
}

TEST(MovedFrom, Eia2AndEea2ReportNotKeyed) {
    Eia2 a(Key128{});
    Eia2 b(std::move(a));
    const Bytes m(8, 0);
    EXPECT_TRUE(b.mac(0, 0, 0, m).has_value());
    auto r = a.mac(0, 0, 0, m);  // NOLINT(bugprone-use-after-move): the point of the test
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code, static_cast<int>(CryptoErrc::not_keyed));

    Eea2 c(Key128{});
    Eea2 d(std::move(c));
    Bytes buf(8, 0);
    EXPECT_TRUE(d.apply(0, 0, 0, buf, buf).has_value());
    auto s = c.apply(0, 0, 0, buf, buf);  // NOLINT(bugprone-use-after-move)
    ASSERT_FALSE(s.has_value());
    EXPECT_EQ(s.error().code, static_cast<int>(CryptoErrc::not_keyed));
    // A moved-from object can be keyed again only if it still has a context; it has none.
    EXPECT_FALSE(c.setKey(Key128{}).has_value());
}

}  // namespace
}  // namespace best::crypto::test
