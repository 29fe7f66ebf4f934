// The PKCS#11 layer against real SoftHSM tokens: URI and PIN file parsing, module/slot/token
// errors, the mechanism probe, and the login semantics the design rests on (measured facts).
#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "hsm/key_vault.h"
#include "hsm/module.h"
#include "hsm/pin_file.h"
#include "hsm/session.h"
#include "hsm/slot.h"
#include "hsm/token_uri.h"
#include "tests/hsm/softhsm_token.h"

namespace best::hsm {
namespace {

using testing::SoftHsmToken;

HsmErrc codeOf(const Error& e) {
    EXPECT_EQ(e.domain, ErrorDomain::hsm) << e.message;
    return static_cast<HsmErrc>(e.code);
}

// --- token selector -----------------------------------------------------------------------

// Call counts of several module instances add up per function; objectsCreated() counts the
// calls that make a session object (create, copy, unwrap, generate) and nothing else.
TEST(CallStats, AddAndObjectsCreated) {
    CallStats a;
    a.calls[static_cast<std::size_t>(P11Fn::C_CreateObject)] = 2;
    a.calls[static_cast<std::size_t>(P11Fn::C_Sign)] = 7;
    CallStats b;
    b.calls[static_cast<std::size_t>(P11Fn::C_CreateObject)] = 1;
    b.calls[static_cast<std::size_t>(P11Fn::C_CopyObject)] = 3;
    b.calls[static_cast<std::size_t>(P11Fn::C_UnwrapKey)] = 4;
    b.calls[static_cast<std::size_t>(P11Fn::C_GenerateKey)] = 5;
    b.calls[static_cast<std::size_t>(P11Fn::C_DestroyObject)] = 6;
    a += b;
    EXPECT_EQ(a[P11Fn::C_CreateObject], 3u);
    EXPECT_EQ(a[P11Fn::C_Sign], 7u);
    EXPECT_EQ(a[P11Fn::C_DestroyObject], 6u);
    EXPECT_EQ(a.objectsCreated(), 3u + 3u + 4u + 5u);
    EXPECT_EQ(a.since(b)[P11Fn::C_CreateObject], 2u);
}

TEST(TokenSelector, PlainLabel) {
    auto s = TokenSelector::parse("best-hse");
    ASSERT_TRUE(s) << s.error().message;
    EXPECT_EQ(*s->token, "best-hse");
    EXPECT_FALSE(s->serial);
    EXPECT_EQ(s->describe(), "token 'best-hse'");
}

TEST(TokenSelector, UriWithPercentEncodingAndQuery) {
    auto s = TokenSelector::parse(
        "pkcs11:token=best%20hse;manufacturer=SoftHSM%20project;serial=a477414127360cf0"
        "?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/run/credentials/pin");
    ASSERT_TRUE(s) << s.error().message;
    EXPECT_EQ(*s->token, "best hse");
    EXPECT_EQ(*s->manufacturer, "SoftHSM project");
    EXPECT_EQ(*s->serial, "a477414127360cf0");
    EXPECT_EQ(s->modulePath, "/usr/lib/softhsm/libsofthsm2.so");
    EXPECT_EQ(s->pinSource, "/run/credentials/pin");
}

TEST(TokenSelector, RefusesWhatItMustRefuse) {
    const char* bad[] = {
        "",                                       // nothing configured
        "pkcs11:slot-id=3",                       // slot numbers are never used
        "pkcs11:token=a?pin-value=1234",          // a PIN never sits in configuration
        "pkcs11:token=a;colour=blue",             // unknown attribute
        "pkcs11:token=a%2",                       // bad percent-encoding
        "pkcs11:token=a%zz",                      // bad percent-encoding
        "pkcs11:object=k;token=a",                // an object URI, not a token URI
        "pkcs11:library-manufacturer=SoftHSM",    // selects no token
        "pkcs11:token=a;token=b",                 // twice
        "pkcs11:token",                           // no value
        "a-label-that-is-longer-than-32-octets",  // PKCS#11 label limit
    };
    for (const char* text : bad) {
        auto s = TokenSelector::parse(text);
        ASSERT_FALSE(s) << text;
        EXPECT_EQ(codeOf(s.error()), HsmErrc::bad_config) << text;
    }
    auto pin = TokenSelector::parse("pkcs11:token=a?pin-value=1234");
    EXPECT_EQ(pin.error().message.find("1234"), std::string::npos) << "the PIN is echoed";
}

TEST(TokenSelector, MatchesPaddedFields) {
    CK_TOKEN_INFO info{};
    std::memset(info.label, ' ', sizeof info.label);
    std::memcpy(info.label, "tok", 3);
    std::memset(info.serialNumber, ' ', sizeof info.serialNumber);
    std::memcpy(info.serialNumber, "0042", 4);
    std::memset(info.manufacturerID, ' ', sizeof info.manufacturerID);
    std::memset(info.model, ' ', sizeof info.model);
    EXPECT_TRUE(TokenSelector::parse("tok")->matches(info));
    EXPECT_FALSE(TokenSelector::parse("to")->matches(info));
    EXPECT_TRUE(TokenSelector::parse("pkcs11:serial=0042")->matches(info));
    EXPECT_FALSE(TokenSelector::parse("pkcs11:token=tok;serial=0043")->matches(info));
}

// --- PIN file -------------------------------------------------------------------------------

class PinFile : public ::testing::Test {
protected:
    SoftHsmToken token_;  // only for its private directory
    std::string path(const std::string& name) const { return token_.dir() + "/" + name; }
};

TEST_F(PinFile, ReadsAndStripsOneNewline) {
    SoftHsmToken::writeFile(path("p1"), "0000\n", 0600);
    auto pin = readPinFile(path("p1"));
    ASSERT_TRUE(pin) << pin.error().message;
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(pin->data()), pin->size()), "0000");
    SoftHsmToken::writeFile(path("p2"), "pin with space\r\n", 0640);
    pin = readPinFile(path("p2"));
    ASSERT_TRUE(pin);
    EXPECT_EQ(pin->size(), 14u);
}

TEST_F(PinFile, RefusesBadFiles) {
    SoftHsmToken::writeFile(path("empty"), "\n", 0600);
    SoftHsmToken::writeFile(path("open"), "0000\n", 0604);
    SoftHsmToken::writeFile(path("long"), std::string(300, '7'), 0600);
    for (const char* name : {"missing", "empty", "open", "long"}) {
        auto pin = readPinFile(path(name));
        ASSERT_FALSE(pin) << name;
        EXPECT_EQ(codeOf(pin.error()), HsmErrc::pin_file) << name;
        EXPECT_NE(pin.error().message.find(path(name)), std::string::npos);
    }
    EXPECT_NE(readPinFile(path("open")).error().message.find("chmod"), std::string::npos);
    EXPECT_EQ(codeOf(readPinFile("").error()), HsmErrc::pin_file);
}

// --- module, slot, token errors ---------------------------------------------------------------

TEST(ModuleErrors, ModuleNotFound) {
    auto m = Module::load("/nonexistent/libnothing-pkcs11.so");
    ASSERT_FALSE(m);
    EXPECT_EQ(codeOf(m.error()), HsmErrc::module_not_found);
    EXPECT_NE(m.error().message.find("/nonexistent/libnothing-pkcs11.so"), std::string::npos);
    EXPECT_NE(m.error().message.find("install"), std::string::npos);
}

TEST(ModuleErrors, NotAPkcs11Module) {
    auto m = Module::load("libm.so.6");
    ASSERT_FALSE(m);
    EXPECT_EQ(codeOf(m.error()), HsmErrc::module_invalid);
    EXPECT_NE(m.error().message.find("C_GetFunctionList"), std::string::npos);
}

TEST(ModuleErrors, ModuleNotFoundThroughTheVault) {
    SoftHsmToken token;
    auto cfg = token.config();
    cfg.module = token.dir() + "/no-such-module.so";
    auto v = KeyVault::open(cfg);
    ASSERT_FALSE(v);
    EXPECT_EQ(codeOf(v.error()), HsmErrc::module_not_found);
}

TEST(ModuleErrors, InitialisedOncePerProcess) {
    SoftHsmToken token;
    auto a = Module::load(testing::softHsmModule());
    ASSERT_TRUE(a) << a.error().message;
    auto b = Module::load(testing::softHsmModule());
    ASSERT_FALSE(b);
    EXPECT_EQ(codeOf(b.error()), HsmErrc::module_invalid);
    EXPECT_NE(b.error().message.find("already initialised"), std::string::npos);
}

TEST(SlotErrors, TokenLabelNotFoundListsWhatIsThere) {
    SoftHsmToken token;
    auto cfg = token.config();
    cfg.token = "no-such-token";
    auto v = KeyVault::open(cfg);
    ASSERT_FALSE(v);
    EXPECT_EQ(codeOf(v.error()), HsmErrc::token_not_found);
    EXPECT_NE(v.error().message.find("'no-such-token' not found"), std::string::npos);
    EXPECT_NE(v.error().message.find(token.label()), std::string::npos) << v.error().message;
}

TEST(SlotErrors, FoundByUriAttributes) {
    SoftHsmToken token;
    auto module = Module::load(testing::softHsmModule());
    ASSERT_TRUE(module) << module.error().message;
    auto byLabel = Slot::find(**module, *TokenSelector::parse(token.label()));
    ASSERT_TRUE(byLabel) << byLabel.error().message;
    const std::string serial = byLabel->serial();
    auto uri = TokenSelector::parse("pkcs11:token=" + token.label() + ";serial=" + serial +
                                    ";manufacturer=SoftHSM%20project;model=SoftHSM%20v2");
    ASSERT_TRUE(uri) << uri.error().message;
    auto byUri = Slot::find(**module, *uri);
    ASSERT_TRUE(byUri) << byUri.error().message;
    EXPECT_EQ(byUri->id(), byLabel->id());
    auto wrongSerial = Slot::find(**module, *TokenSelector::parse("pkcs11:serial=0000"));
    ASSERT_FALSE(wrongSerial);
    EXPECT_EQ(codeOf(wrongSerial.error()), HsmErrc::token_not_found);
    auto wrongLibrary =
        Slot::find(**module, *TokenSelector::parse("pkcs11:token=" + token.label() +
                                                   ";library-manufacturer=Someone%20Else"));
    ASSERT_FALSE(wrongLibrary);
}

TEST(SlotErrors, WrongPin) {
    SoftHsmToken token;
    SoftHsmToken::writeFile(token.pinFile(), "999999\n", 0600);
    auto v = KeyVault::open(token.config());
    ASSERT_FALSE(v);
    EXPECT_EQ(codeOf(v.error()), HsmErrc::pin_incorrect);
    EXPECT_NE(v.error().message.find("CKR_PIN_INCORRECT"), std::string::npos);
    EXPECT_NE(v.error().message.find(token.pinFile()), std::string::npos);
    EXPECT_EQ(v.error().message.find("999999"), std::string::npos) << "PIN in a message";
}

TEST(SlotErrors, UriModulePathAndPinSource) {
    SoftHsmToken token;
    ASSERT_TRUE(KeyVault::initTokenKeys(token.config()));
    HsmConfig cfg;
    cfg.token = "pkcs11:token=" + token.label() + "?module-path=" + testing::softHsmModule() +
                "&pin-source=file:" + token.pinFile();
    auto v = KeyVault::open(cfg);
    ASSERT_TRUE(v) << v.error().message;
    EXPECT_EQ((*v)->tokenLabel(), token.label());
    v->reset();
    cfg.module = "/elsewhere/lib.so";
    auto conflict = KeyVault::open(cfg);
    ASSERT_FALSE(conflict);
    EXPECT_EQ(codeOf(conflict.error()), HsmErrc::bad_config);
}

// --- mechanism probe --------------------------------------------------------------------------

// softhsm2.conf's slots.mechanisms as a whitelist: what the vault uses, minus `without`.
// (SoftHSM 2.6.1 ignores the "-CKM_X" blacklist form: measured.)
std::string mechanismsWithout(const std::string& without) {
    std::string list;
    for (const char* m :
         {"CKM_AES_ECB", "CKM_AES_CBC", "CKM_SHA256_HMAC", "CKM_AES_KEY_WRAP",
          "CKM_AES_KEY_WRAP_PAD", "CKM_AES_KEY_GEN", "CKM_GENERIC_SECRET_KEY_GEN"}) {
        if (without != m)
            list += (list.empty() ? "" : ",") + std::string(m);
    }
    return list;
}

TEST(MechanismProbe, SoftHsmCapabilitiesAndChosenPaths) {
    SoftHsmToken token;
    ASSERT_TRUE(KeyVault::initTokenKeys(token.config()));
    auto v = KeyVault::open(token.config());
    ASSERT_TRUE(v) << v.error().message;
    const TokenCapabilities& c = (*v)->capabilities();
    EXPECT_TRUE(c.aesEcb);
    EXPECT_TRUE(c.aesCbc);
    EXPECT_TRUE(c.hmacSha256);
    EXPECT_EQ(c.hmacMinKeySize, 32u);  // SoftHSM 2.6.1: HMAC keys of at least 32 octets
    EXPECT_TRUE(c.aesKeyWrap);
    EXPECT_TRUE(c.aesKeyWrapPad);
    EXPECT_FALSE(c.kbkdf);
    EXPECT_FALSE(c.vendorMilenage);
    EXPECT_EQ(c.wrap, WrapMechanism::aesKeyWrap);
    EXPECT_EQ(c.milenage, MilenagePath::ecbMultiPart);
    EXPECT_TRUE(c.clearExtractable);
    EXPECT_NE(c.describe().find("CKM_AES_KEY_WRAP"), std::string::npos);
}

TEST(MechanismProbe, MissingHmacIsAClearError) {
    SoftHsmToken token;
    ASSERT_TRUE(KeyVault::initTokenKeys(token.config()));
    token.writeConf(mechanismsWithout("CKM_SHA256_HMAC"));
    auto v = KeyVault::open(token.config());
    ASSERT_FALSE(v);
    EXPECT_EQ(codeOf(v.error()), HsmErrc::mechanism_missing);
    EXPECT_NE(v.error().message.find("CKM_SHA256_HMAC"), std::string::npos) << v.error().message;
    EXPECT_NE(v.error().message.find(token.label()), std::string::npos);
}

TEST(MechanismProbe, MissingEcbIsAClearError) {
    SoftHsmToken token;
    ASSERT_TRUE(KeyVault::initTokenKeys(token.config()));
    token.writeConf(mechanismsWithout("CKM_AES_ECB"));
    auto v = KeyVault::open(token.config());
    ASSERT_FALSE(v);
    EXPECT_EQ(codeOf(v.error()), HsmErrc::mechanism_missing);
    EXPECT_NE(v.error().message.find("CKM_AES_ECB"), std::string::npos) << v.error().message;
}

TEST(MechanismProbe, FallsBackToKeyWrapWithPadding) {
    SoftHsmToken token;
    ASSERT_TRUE(KeyVault::initTokenKeys(token.config()));
    token.writeConf(mechanismsWithout("CKM_AES_KEY_WRAP"));
    auto v = KeyVault::open(token.config());
    ASSERT_TRUE(v) << v.error().message;
    EXPECT_FALSE((*v)->capabilities().aesKeyWrap);
    EXPECT_EQ((*v)->capabilities().wrap, WrapMechanism::aesKeyWrapPad);
    // And it works end to end: a K blob made with RFC 5649 is used.
    auto blob = (*v)->run([](VaultOps& ops) {
        return ops.importK(SubscriberK(Bytes(16, 0x11)),
                           {"001010000000001", BlobPurpose::subscriberK, 1});
    });
    ASSERT_TRUE(blob) << blob.error().message;
    EXPECT_EQ((*blob)[4], static_cast<std::uint8_t>(BlobProtection::aesKeyWrapPad));
}

// --- login semantics (SoftHSM 2.6.1, measured; architecture.md) ---------------------------------

class LoginSemantics : public ::testing::Test {
protected:
    void SetUp() override {
        auto m = Module::load(testing::softHsmModule());
        ASSERT_TRUE(m) << m.error().message;
        module_ = std::move(*m);
        auto s = Slot::find(*module_, *TokenSelector::parse(token_.label()));
        ASSERT_TRUE(s) << s.error().message;
        slot_ = s->id();
        pin_ = Bytes(token_.pin().begin(), token_.pin().end());
    }
    // A private AES session object made through `s`.
    CK_OBJECT_HANDLE makeKey(const Session& s) {
        CK_MECHANISM gen{CKM_AES_KEY_GEN, nullptr, 0};
        const CK_ULONG len = 16;
        CK_ATTRIBUTE t[] = {attr(CKA_TOKEN, kFalse), attr(CKA_PRIVATE, kTrue),
                            attr(CKA_ENCRYPT, kTrue), attr(CKA_VALUE_LEN, len)};
        CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
        EXPECT_TRUE(module_->call<P11Fn::C_GenerateKey>(s.get(), &gen, t, CK_ULONG{4}, &h));
        return h;
    }
    CK_RV encryptInit(const Session& s, CK_OBJECT_HANDLE key) {
        CK_MECHANISM ecb{CKM_AES_ECB, nullptr, 0};
        const CK_RV rv = module_->callRaw<P11Fn::C_EncryptInit>(s.get(), &ecb, key);
        if (rv == CKR_OK) {
            std::uint8_t in[16] = {}, out[16];
            CK_ULONG n = 16;
            EXPECT_EQ(module_->callRaw<P11Fn::C_Encrypt>(s.get(), in, CK_ULONG{16}, out, &n),
                      CKR_OK);
        }
        return rv;
    }

    SoftHsmToken token_;
    std::unique_ptr<Module> module_;
    CK_SLOT_ID slot_ = 0;
    Bytes pin_;
};

TEST_F(LoginSemantics, LoginIsPerApplication) {
    auto owner = Session::open(*module_, slot_, true);
    auto worker = Session::open(*module_, slot_, false);
    ASSERT_TRUE(owner && worker);
    ASSERT_TRUE(owner->login(pin_));
    // A second C_Login, on another session, is CKR_USER_ALREADY_LOGGED_IN ...
    EXPECT_EQ(module_->callRaw<P11Fn::C_Login>(worker->get(), CK_USER_TYPE{CKU_USER}, pin_.data(),
                                               static_cast<CK_ULONG>(pin_.size())),
              CKR_USER_ALREADY_LOGGED_IN);
    // ... which Session::login counts as success.
    EXPECT_TRUE(worker->login(pin_));
    // The never-logged-in worker session sees the owner's private session objects.
    const CK_OBJECT_HANDLE key = makeKey(*owner);
    EXPECT_EQ(encryptInit(*worker, key), CKR_OK);
    CK_SESSION_INFO info{};
    ASSERT_TRUE(module_->call<P11Fn::C_GetSessionInfo>(worker->get(), &info));
    EXPECT_EQ(info.state, static_cast<CK_STATE>(CKS_RO_USER_FUNCTIONS));
}

TEST_F(LoginSemantics, LogoutAnywhereKillsEveryPrivateSessionObject) {
    auto owner = Session::open(*module_, slot_, true);
    auto other = Session::open(*module_, slot_, false);
    ASSERT_TRUE(owner && other);
    ASSERT_TRUE(owner->login(pin_));
    const CK_OBJECT_HANDLE key = makeKey(*owner);
    ASSERT_EQ(encryptInit(*owner, key), CKR_OK);
    ASSERT_TRUE(module_->call<P11Fn::C_Logout>(other->get()));
    ASSERT_TRUE(owner->login(pin_));  // logging in again does not bring it back
    const CK_RV rv = encryptInit(*owner, key);
    EXPECT_TRUE(rv == CKR_OBJECT_HANDLE_INVALID || rv == CKR_KEY_HANDLE_INVALID) << ckrName(rv);
}

TEST_F(LoginSemantics, ClosingTheCreatingSessionDestroysItsObjects) {
    auto owner = Session::open(*module_, slot_, true);
    ASSERT_TRUE(owner && owner->login(pin_));
    auto creator = Session::open(*module_, slot_, false);
    ASSERT_TRUE(creator);
    const CK_OBJECT_HANDLE key = makeKey(*creator);
    ASSERT_EQ(encryptInit(*owner, key), CKR_OK);
    creator->reset();
    const CK_RV rv = encryptInit(*owner, key);
    EXPECT_TRUE(rv == CKR_OBJECT_HANDLE_INVALID || rv == CKR_KEY_HANDLE_INVALID) << ckrName(rv);
}

TEST_F(LoginSemantics, SessionObjectsOutliveTheTokenDirectory) {
    auto owner = Session::open(*module_, slot_, true);
    ASSERT_TRUE(owner && owner->login(pin_));
    const CK_OBJECT_HANDLE key = makeKey(*owner);
    token_.removeStorage();
    // No CKR_DEVICE_REMOVED: token info fails generically, cached objects keep working.
    CK_TOKEN_INFO info{};
    const CK_RV rv = module_->callRaw<P11Fn::C_GetTokenInfo>(slot_, &info);
    EXPECT_NE(rv, CKR_OK);
    EXPECT_NE(rv, CKR_DEVICE_REMOVED);
    EXPECT_EQ(encryptInit(*owner, key), CKR_OK);
}

TEST_F(LoginSemantics, CheckedCallsNameFunctionAndAdvice) {
    auto s = Session::open(*module_, slot_, false);
    ASSERT_TRUE(s);
    module_->setContext("token '" + token_.label() + "'");
    CK_MECHANISM ecb{CKM_AES_ECB, nullptr, 0};
    auto r = module_->call<P11Fn::C_EncryptInit>(s->get(), &ecb, CK_OBJECT_HANDLE{0xdead});
    ASSERT_FALSE(r);
    EXPECT_EQ(codeOf(r.error()), HsmErrc::key_invalid);
    EXPECT_NE(r.error().message.find("C_EncryptInit"), std::string::npos);
    EXPECT_NE(r.error().message.find(token_.label()), std::string::npos);
    const CallStats st = module_->stats();
    EXPECT_GE(st[P11Fn::C_EncryptInit], 1u);
    EXPECT_NE(st.describe().find("C_EncryptInit"), std::string::npos);
}

TEST(ErrorMapping, EveryClassSaysWhatToDo) {
    EXPECT_EQ(classify(CKR_PIN_INCORRECT), HsmErrc::pin_incorrect);
    EXPECT_EQ(classify(CKR_PIN_LOCKED), HsmErrc::pin_locked);
    EXPECT_EQ(classify(CKR_MECHANISM_INVALID), HsmErrc::mechanism_missing);
    EXPECT_EQ(classify(CKR_DEVICE_REMOVED), HsmErrc::token_failure);
    EXPECT_EQ(classify(CKR_TOKEN_NOT_PRESENT), HsmErrc::token_failure);
    EXPECT_EQ(classify(CKR_GENERAL_ERROR), HsmErrc::token_failure);
    EXPECT_EQ(classify(CKR_USER_NOT_LOGGED_IN), HsmErrc::not_logged_in);
    EXPECT_EQ(classify(CKR_OBJECT_HANDLE_INVALID), HsmErrc::key_invalid);
    EXPECT_EQ(classify(CKR_ARGUMENTS_BAD), HsmErrc::pkcs11);
    EXPECT_NE(adviceFor(CKR_PIN_LOCKED).find("security officer"), std::string_view::npos);
    EXPECT_NE(adviceFor(CKR_DEVICE_REMOVED).find("restart"), std::string_view::npos);
    EXPECT_EQ(ckrName(CKR_DEVICE_REMOVED), "CKR_DEVICE_REMOVED");
    EXPECT_EQ(ckrName(0x80001234UL), "CKR_0x80001234");
}

}  // namespace
}  // namespace best::hsm
