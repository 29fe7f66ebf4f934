// A vault on a throwaway token, with the token keys made by initTokenKeys().
#pragma once

#include <gtest/gtest.h>

#include <array>
#include <memory>
#include <string>

#include "common/hex.h"
#include "hsm/key_vault.h"
#include "tests/hsm/softhsm_token.h"
#include "tests/hsm/test_data.h"

namespace best::testing {

template <std::size_t N>
std::array<std::uint8_t, N> arr(const std::string& hex) {
    const Bytes b = hexBytes(hex);
    if (b.size() != N)
        throw std::runtime_error("wrong length for " + hex);
    std::array<std::uint8_t, N> a{};
    for (std::size_t i = 0; i < N; ++i)
        a[i] = b[i];
    return a;
}

template <typename Secret>
Secret secretFromHex(const std::string& hex) {
    const Bytes b = hexBytes(hex);
    if (b.size() != Secret::kSize)
        throw std::runtime_error("wrong length for a secret");
    return Secret(b);
}

template <typename Secret>
std::string hexOf(const Secret& s) {
    return toHex(s.view());
}

template <std::size_t N>
std::string hexOf(const std::array<std::uint8_t, N>& a) {
    return toHex(ByteView(a.data(), N));
}

inline hsm::HsmErrc hsmCode(const Error& e) {
    EXPECT_EQ(e.domain, ErrorDomain::hsm) << e.message;
    return static_cast<hsm::HsmErrc>(e.code);
}

class VaultTest : public ::testing::Test {
protected:
    void SetUp() override { openVault(token_.config()); }

    void openVault(hsm::HsmConfig cfg) {
        auto init = hsm::KeyVault::initTokenKeys(cfg);
        ASSERT_TRUE(init) << init.error().message;
        auto v = hsm::KeyVault::open(cfg);
        ASSERT_TRUE(v) << v.error().message;
        vault_ = std::move(*v);
        auto ops = vault_->openOps();
        ASSERT_TRUE(ops) << ops.error().message;
        ops_ = std::make_unique<hsm::VaultOps>(std::move(*ops));
    }

    // K and OPc blobs for `imsi` (rows of version `version`).
    struct Subscriber {
        Bytes k;
        Bytes opc;
        std::string imsi;
        std::uint64_t version = 1;
        hsm::SubscriberRef ref() const {
            return {{k, {imsi, hsm::BlobPurpose::subscriberK, version}},
                    {opc, {imsi, hsm::BlobPurpose::opc, version}}};
        }
    };
    Subscriber provision(const std::string& kHex, const std::string& opcHex,
                         const std::string& imsi, std::uint64_t version = 1) {
        Subscriber s;
        s.imsi = imsi;
        s.version = version;
        auto k = ops_->importK(secretFromHex<SubscriberK>(kHex),
                               {imsi, hsm::BlobPurpose::subscriberK, version});
        EXPECT_TRUE(k) << k.error().message;
        auto o = ops_->sealOpc(secretFromHex<Opc>(opcHex), {imsi, hsm::BlobPurpose::opc, version});
        EXPECT_TRUE(o) << o.error().message;
        if (k && o) {
            s.k = *k;
            s.opc = *o;
        }
        return s;
    }

    SoftHsmToken token_;
    std::unique_ptr<hsm::KeyVault> vault_;
    std::unique_ptr<hsm::VaultOps> ops_;
};

}  // namespace best::testing
