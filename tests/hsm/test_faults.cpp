// Token failure, for real (the token directory removed under the running process: what SoftHSM
// actually does) and through the fault-injecting test shim (what SoftHSM cannot do: report
// CKR_DEVICE_REMOVED, lock a PIN, lose the login mid-run).
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>

#include "tests/hsm/vault_fixture.h"

#ifndef BEST_P11_FAULT_SHIM
#error "BEST_P11_FAULT_SHIM (path of the test shim) is set by tests/hsm/meson.build"
#endif

namespace best::hsm {
namespace {

using testing::arr;
using testing::hexOf;
using testing::hsmCode;
using testing::secretFromHex;
using testing::SoftHsmToken;
using testing::VaultTest;

constexpr const char* kImsi = "001010000000001";
const std::string kK = "465b5ce8b199b49faa5f0a2ee238a6bc";
const std::string kOpc = "cd63cb71954a9f4e48a5994e37a02baf";
const crypto::Rand kRand = arr<16>("23553cbe9637a89d218ae64dae47bf35");
const crypto::Sqn kSqn = arr<6>("ff9bb4d0b607");
const crypto::Amf kAmf = arr<2>("b9b9");

// --- for real: SoftHSM's token directory vanishes
// --------------------------------------------------

TEST_F(VaultTest, TokenStorageRemovedUnderTheRunningProcess) {
    auto sub = provision(kK, kOpc, kImsi);
    ASSERT_TRUE(ops_->generateVector(sub.ref(), kRand, kSqn, kAmf));
    KeySetSpec spec;
    spec.hseId = "hse.example.org";
    spec.kint = {kImsi, BlobPurpose::kint, 1};
    auto ks = ops_->createKeySet(secretFromHex<Key256>(std::string(64, 'c')), spec);
    ASSERT_TRUE(ks);
    const KeyRef kint{ks->kintBlob, spec.kint};
    auto ksessBefore = ops_->deriveKSess(kint, 5, 6);
    ASSERT_TRUE(ksessBefore);
    ASSERT_TRUE(vault_->checkHealth());

    token_.removeStorage();

    // The active probe sees it ...
    auto health = vault_->checkHealth();
    ASSERT_FALSE(health);
    EXPECT_EQ(hsmCode(health.error()), HsmErrc::token_failure) << health.error().message;
    EXPECT_NE(health.error().message.find("health probe"), std::string::npos);
    EXPECT_NE(health.error().message.find(token_.label()), std::string::npos);
    // ... while cached session objects still work (SoftHSM reports nothing by itself).
    auto ksessAfter = ops_->deriveKSess(kint, 5, 6);
    ASSERT_TRUE(ksessAfter) << ksessAfter.error().message;
    EXPECT_TRUE(ksessAfter->equals(*ksessBefore));
    // So do the session copies of the token keys: a vector is still served ...
    auto v = ops_->generateVector(sub.ref(), kRand, kSqn, kAmf);
    ASSERT_TRUE(v) << v.error().message;
    // ... but nothing that needs the token itself: a re-login finds the token keys gone.
    auto relogin = vault_->relogin();
    ASSERT_FALSE(relogin);
    EXPECT_EQ(hsmCode(relogin.error()), HsmErrc::token_failure) << relogin.error().message;
    EXPECT_NE(relogin.error().message.find("restart"), std::string::npos)
        << relogin.error().message;
    EXPECT_FALSE(vault_->checkHealth());
}

// --- through the fault-injecting shim ----------------------------------------------------------

class ShimTest : public VaultTest {
protected:
    void SetUp() override {
        faults_ = token_.dir() + "/faults";
        ::setenv("BEST_P11_FAULT_FILE", faults_.c_str(), 1);
        ::unsetenv("BEST_P11_FAULT");
        setFaults("");
        openVault(shimConfig());
    }
    void TearDown() override { ::unsetenv("BEST_P11_FAULT_FILE"); }

    HsmConfig shimConfig() const {
        HsmConfig cfg = token_.config();
        cfg.module = BEST_P11_FAULT_SHIM;
        return cfg;
    }
    // Replaced atomically (new inode), so the shim sees every change.
    void setFaults(const std::string& rules) {
        const std::string tmp = faults_ + ".new";
        SoftHsmToken::writeFile(tmp, rules + "\n", 0600);
        ASSERT_EQ(std::rename(tmp.c_str(), faults_.c_str()), 0);
    }

    std::string faults_;
};

TEST_F(ShimTest, DeviceRemovedMidRunIsATokenFailure) {
    auto sub = provision(kK, kOpc, kImsi);
    ASSERT_TRUE(ops_->generateVector(sub.ref(), kRand, kSqn, kAmf));
    setFaults("C_EncryptUpdate=0x32@2");  // CKR_DEVICE_REMOVED from the third block on
    auto v = ops_->generateVector(sub.ref(), kRand, kSqn, kAmf);
    ASSERT_FALSE(v);
    EXPECT_EQ(hsmCode(v.error()), HsmErrc::token_failure);
    EXPECT_NE(v.error().message.find("CKR_DEVICE_REMOVED"), std::string::npos) << v.error().message;
    EXPECT_NE(v.error().message.find("C_EncryptUpdate"), std::string::npos);
    EXPECT_NE(v.error().message.find("restart"), std::string::npos);
    EXPECT_EQ(vault_->relogins(), 0u);  // a token failure is not papered over by a re-login
    setFaults("");
    auto again = ops_->generateVector(sub.ref(), kRand, kSqn, kAmf);
    ASSERT_TRUE(again) << again.error().message;
    EXPECT_EQ(hexOf(again->xres), "a54211d5e3ba50bf");
}

TEST_F(ShimTest, HealthProbeDetectsARemovedDeviceWhileCachedObjectsWork) {
    KeySetSpec spec;
    spec.hseId = "hse.example.org";
    spec.kint = {kImsi, BlobPurpose::kint, 1};
    auto ks = ops_->createKeySet(secretFromHex<Key256>(std::string(64, 'd')), spec);
    ASSERT_TRUE(ks);
    const KeyRef kint{ks->kintBlob, spec.kint};
    ASSERT_TRUE(vault_->checkHealth());

    setFaults("C_GetTokenInfo=0x32");
    auto h = vault_->checkHealth();
    ASSERT_FALSE(h);
    EXPECT_EQ(hsmCode(h.error()), HsmErrc::token_failure);
    EXPECT_NE(h.error().message.find("CKR_DEVICE_REMOVED"), std::string::npos) << h.error().message;
    EXPECT_TRUE(ops_->deriveKSess(kint, 1, 1));  // the cached KInt answers

    setFaults("C_WrapKey=0xe0");  // token info fine, the wrap-key operation fails
    h = vault_->checkHealth();
    ASSERT_FALSE(h);
    EXPECT_EQ(hsmCode(h.error()), HsmErrc::token_failure);
    EXPECT_NE(h.error().message.find("CKR_TOKEN_NOT_PRESENT"), std::string::npos);

    setFaults("");
    EXPECT_TRUE(vault_->checkHealth());
}

TEST_F(ShimTest, LostLoginMidRunIsRecoveredOnce) {
    auto sub = provision(kK, kOpc, kImsi);
    ASSERT_TRUE(ops_->generateVector(sub.ref(), kRand, kSqn, kAmf));
    setFaults("C_DecryptInit=0x101*1");  // CKR_USER_NOT_LOGGED_IN, once
    auto v = ops_->generateVector(sub.ref(), kRand, kSqn, kAmf);
    ASSERT_TRUE(v) << v.error().message;
    EXPECT_EQ(hexOf(v->xres), "a54211d5e3ba50bf");
    EXPECT_EQ(vault_->relogins(), 1u);
    EXPECT_EQ(vault_->cacheStats().clears, 1u);
}

TEST_F(ShimTest, PinLockedAtStartup) {
    ops_.reset();
    vault_.reset();
    // This one through the environment variable rather than the control file.
    ::setenv("BEST_P11_FAULT", "C_Login=0xa4", 1);  // CKR_PIN_LOCKED
    setFaults("# env only");
    auto v = KeyVault::open(shimConfig());
    ::unsetenv("BEST_P11_FAULT");
    ASSERT_FALSE(v);
    EXPECT_EQ(hsmCode(v.error()), HsmErrc::pin_locked);
    EXPECT_NE(v.error().message.find("CKR_PIN_LOCKED"), std::string::npos);
    EXPECT_NE(v.error().message.find("security officer"), std::string::npos) << v.error().message;
}

TEST_F(ShimTest, MechanismInfoRefusedAtStartup) {
    ops_.reset();
    vault_.reset();
    setFaults("C_GetMechanismInfo=0x70");  // CKR_MECHANISM_INVALID for every mechanism
    auto v = KeyVault::open(shimConfig());
    ASSERT_FALSE(v);
    EXPECT_EQ(hsmCode(v.error()), HsmErrc::mechanism_missing);
    EXPECT_NE(v.error().message.find("lacks CKM_AES_ECB"), std::string::npos) << v.error().message;
}

TEST_F(ShimTest, TokenNotPresentAtStartup) {
    ops_.reset();
    vault_.reset();
    setFaults("C_GetTokenInfo=0xe0");
    auto v = KeyVault::open(shimConfig());
    ASSERT_FALSE(v);
    EXPECT_EQ(hsmCode(v.error()), HsmErrc::token_not_found);
}

TEST_F(ShimTest, ModuleFailingToInitialise) {
    ops_.reset();
    vault_.reset();
    setFaults("C_Initialize=0x30");  // CKR_DEVICE_ERROR
    auto v = KeyVault::open(shimConfig());
    ASSERT_FALSE(v);
    EXPECT_EQ(hsmCode(v.error()), HsmErrc::module_invalid);
    EXPECT_NE(v.error().message.find("CKR_DEVICE_ERROR"), std::string::npos) << v.error().message;
}

}  // namespace
}  // namespace best::hsm
