// The KeyVault against SoftHSM: Milenage and the KDF equal the crypto core's results for every
// vector set and the worked example's keys; blobs are refused before use when corrupt, truncated
// or moved; the cache, re-login, async interface and PKCS#11 operation counts.
#include <gtest/gtest.h>

#include <openssl/evp.h>

#include <atomic>
#include <future>
#include <thread>
#include <vector>

#include "crypto/key_hierarchy.h"
#include "crypto/milenage.h"
#include "tests/hsm/vault_fixture.h"

namespace best::hsm {
namespace {

using testing::arr;
using testing::hexBytes;
using testing::hexOf;
using testing::hsmCode;
using testing::secretFromHex;
using testing::VaultTest;

constexpr const char* kImsi = "001010000000001";
constexpr const char* kHseId = "hse.example.org";
constexpr const char* kEasId = "eas.example.org";

// --- Milenage with K in the token ---------------------------------------------------------------

TEST_F(VaultTest, MilenageEqualsTs35207ForEverySet) {
    const auto sets = testing::milenageSets();
    ASSERT_EQ(sets.size(), 6u);
    for (const auto& set : sets) {
        SCOPED_TRACE("set " + set.at("set"));
        const std::string imsi = "00101000000000" + set.at("set");
        auto sub = provision(set.at("K"), set.at("OPc"), imsi);
        const auto rand = arr<16>(set.at("RAND"));
        const auto sqn = arr<6>(set.at("SQN"));
        const auto amf = arr<2>(set.at("AMF"));
        auto v = ops_->generateVector(sub.ref(), rand, sqn, amf);
        ASSERT_TRUE(v) << v.error().message;
        EXPECT_EQ(toHex(ByteView(v->autn.data() + 8, 8)), set.at("f1"));
        EXPECT_EQ(hexOf(v->xres), set.at("f2"));
        EXPECT_EQ(hexOf(v->ck), set.at("f3"));
        EXPECT_EQ(hexOf(v->ik), set.at("f4"));
        EXPECT_EQ(hexOf(v->ak), set.at("f5"));
        // And equal to the crypto core's software path, octet for octet.
        const auto k = secretFromHex<SubscriberK>(set.at("K"));
        crypto::SoftAes128 soft(k);
        auto sw = crypto::generateVector(soft, secretFromHex<Opc>(set.at("OPc")), rand, sqn, amf);
        ASSERT_TRUE(sw);
        EXPECT_EQ(hexOf(v->autn), hexOf(sw->autn));
        EXPECT_EQ(hexOf(v->xres), hexOf(sw->xres));
        EXPECT_TRUE(v->ck.equals(sw->ck));
        EXPECT_TRUE(v->ik.equals(sw->ik));
        // f1* and f5*: the network-side resync recovers SQN_MS from a USIM's AUTS.
        auto auts = crypto::buildAuts(soft, secretFromHex<Opc>(set.at("OPc")), rand, sqn);
        ASSERT_TRUE(auts);
        auto sqnMs = ops_->recoverSqnMs(sub.ref(), rand, *auts);
        ASSERT_TRUE(sqnMs) << sqnMs.error().message;
        EXPECT_EQ(hexOf(*sqnMs), set.at("SQN"));
        // Every Milenage function on the HSM path against the table (f1* and f5* included).
        crypto::Mac8 f1{}, f1s{};
        crypto::Ak f5s{};
        crypto::Res f2{};
        auto run = ops_->withMilenage(
            sub.ref(), [&](crypto::BlockCipher& ek, const Opc& opc) -> Result<void> {
                crypto::Milenage m(ek, opc);
                auto a = m.f1(rand, sqn, amf);
                auto b = m.f1star(rand, sqn, amf);
                auto c = m.f5star(rand);
                auto d = m.f2345(rand);
                if (!a || !b || !c || !d)
                    return makeError(HsmErrc::internal, "Milenage on the HSM path failed");
                f1 = *a;
                f1s = *b;
                f5s = *c;
                f2 = d->res;
                return {};
            });
        ASSERT_TRUE(run) << run.error().message;
        EXPECT_EQ(hexOf(f1), set.at("f1"));
        EXPECT_EQ(hexOf(f1s), set.at("f1*"));
        EXPECT_EQ(hexOf(f5s), set.at("f5*"));
        EXPECT_EQ(hexOf(f2), set.at("f2"));
        auto badAuts = *auts;
        badAuts[13] ^= 0x01;
        auto bad = ops_->recoverSqnMs(sub.ref(), rand, badAuts);
        ASSERT_FALSE(bad);
        EXPECT_EQ(bad.error().domain, ErrorDomain::crypto);
        EXPECT_EQ(bad.error().code, static_cast<int>(crypto::CryptoErrc::mac_s_failure));
    }
}

TEST_F(VaultTest, OpcComputedFromOpWithKInsideTheToken) {
    for (const auto& set : testing::milenageSets()) {
        SCOPED_TRACE("set " + set.at("set"));
        const std::string imsi = "00101000000010" + set.at("set");
        auto k = ops_->importK(secretFromHex<SubscriberK>(set.at("K")),
                               {imsi, BlobPurpose::subscriberK, 1});
        ASSERT_TRUE(k);
        auto opc = ops_->sealOpcFromOp(secretFromHex<Op>(set.at("OP")),
                                       {*k, {imsi, BlobPurpose::subscriberK, 1}},
                                       {imsi, BlobPurpose::opc, 1});
        ASSERT_TRUE(opc) << opc.error().message;
        SubscriberRef ref{{*k, {imsi, BlobPurpose::subscriberK, 1}},
                          {*opc, {imsi, BlobPurpose::opc, 1}}};
        auto v = ops_->generateVector(ref, arr<16>(set.at("RAND")), arr<6>(set.at("SQN")),
                                      arr<2>(set.at("AMF")));
        ASSERT_TRUE(v) << v.error().message;
        EXPECT_EQ(hexOf(v->xres), set.at("f2"));
        EXPECT_EQ(hexOf(v->ck), set.at("f3"));
    }
}

// --- the KDF under HSM-resident keys -------------------------------------------------------------

TEST_F(VaultTest, WorkedExampleKeysEqualTheCryptoCore) {
    int checked = 0;
    for (const auto& block : testing::exampleBlocks()) {
        if (block.values.count("R") == 0 || block.values.count("KInt") == 0)
            continue;
        SCOPED_TRACE(block.title);
        ++checked;
        const Key256 root = secretFromHex<Key256>(block.values.at("R"));
        const bool hasSession = block.values.count("KSess") != 0;
        KeySetSpec spec;
        spec.hseId = kHseId;
        spec.kint = {kImsi, BlobPurpose::kint, static_cast<std::uint64_t>(checked)};
        if (hasSession)
            spec.session = SessionParams{0x01020304, 0x0001020304050607ULL};
        spec.easId = kEasId;
        spec.easKeyId = true;
        spec.easKey = EasKeyKind::e2e;
        spec.easKeyBinding = {kImsi, BlobPurpose::kintE2e, static_cast<std::uint64_t>(checked)};
        auto ks = ops_->createKeySet(root, spec);
        ASSERT_TRUE(ks) << ks.error().message;

        // The crypto core, in software, from the same R.
        auto kint = crypto::deriveKInt(root, kHseId);
        ASSERT_TRUE(kint);
        EXPECT_EQ(hexOf(*kint), block.values.at("KInt"));
        auto e2e = crypto::deriveKIntE2e(*kint, kEasId);
        auto psk = crypto::deriveKIntEasPsk(*kint, kEasId);
        auto keyId = crypto::deriveEasKeyId(*kint, kEasId);
        ASSERT_TRUE(e2e && psk && keyId);

        ASSERT_TRUE(ks->easKey && ks->easKeyId);
        EXPECT_EQ(hexOf(*ks->easKey), block.values.at("KInt_E2E"));
        EXPECT_TRUE(ks->easKey->equals(*e2e));
        EXPECT_EQ(hexOf(*ks->easKeyId), block.values.at("EAS key identifier"));
        EXPECT_EQ(hexOf(*ks->easKeyId), hexOf(*keyId));
        if (hasSession) {
            ASSERT_TRUE(ks->ksess && ks->ksessE2e);
            EXPECT_EQ(hexOf(*ks->ksess), block.values.at("KSess"));
            auto swKsess = crypto::deriveKSess(*kint, 0x01020304, 0x0001020304050607ULL);
            auto swKsessE2e = crypto::deriveKSess(*e2e, 0x01020304, 0x0001020304050607ULL);
            ASSERT_TRUE(swKsess && swKsessE2e);
            EXPECT_TRUE(ks->ksess->equals(*swKsess));
            EXPECT_TRUE(ks->ksessE2e->equals(*swKsessE2e));
        } else {
            EXPECT_FALSE(ks->ksess);
        }

        // Later operations on the stored KInt blob.
        const KeyRef kintRef{ks->kintBlob, spec.kint};
        auto pskKey = ops_->createEasKey(kintRef, EasKeyKind::psk, kEasId,
                                         {kImsi, BlobPurpose::kintEasPsk, 1});
        ASSERT_TRUE(pskKey) << pskKey.error().message;
        EXPECT_EQ(hexOf(pskKey->value), block.values.at("KInt_EAS_PSK"));
        EXPECT_TRUE(pskKey->value.equals(*psk));
        auto pulled = ops_->deriveEasKey(kintRef, EasKeyKind::e2e, kEasId);
        ASSERT_TRUE(pulled);
        EXPECT_EQ(hexOf(*pulled), block.values.at("KInt_E2E"));
        auto id2 = ops_->deriveEasKeyId(kintRef, kEasId);
        ASSERT_TRUE(id2);
        EXPECT_EQ(hexOf(*id2), block.values.at("EAS key identifier"));
        auto e2eRef = KeyRef{ks->easKeyBlob, spec.easKeyBinding};
        auto ksessE2e = ops_->deriveKSess(e2eRef, 7, 9);
        auto swKsessE2e = crypto::deriveKSess(*e2e, 7, 9);
        ASSERT_TRUE(ksessE2e && swKsessE2e);
        EXPECT_TRUE(ksessE2e->equals(*swKsessE2e));
    }
    EXPECT_EQ(checked, 6);  // sessions A, B, C, pending KID 2 and 3, after the resync
}

TEST_F(VaultTest, WorkedExampleResumptionAndKeyConfirmation) {
    std::string rootKid3, confirmation, ksess0, resumedKsess;
    for (const auto& block : testing::exampleBlocks()) {
        if (block.title.find("Pending key set KID 3") != std::string::npos) {
            rootKid3 = block.values.at("R");
            confirmation = block.values.at("key confirmation");
        }
        if (block.values.count("KSess0") != 0)
            ksess0 = block.values.at("KSess0");
        if (block.title.find("Keys of the resumed session") != std::string::npos)
            resumedKsess = block.values.at("KSess");
    }
    ASSERT_FALSE(rootKid3.empty() || confirmation.empty() || ksess0.empty() ||
                 resumedKsess.empty());
    KeySetSpec spec;
    spec.hseId = kHseId;
    spec.kint = {kImsi, BlobPurpose::kint, 3};
    spec.confirmation = ConfirmationParams{0x01020304, arr<16>("202122232425262728292a2b2c2d2e2f")};
    auto ks = ops_->createKeySet(secretFromHex<Key256>(rootKid3), spec);
    ASSERT_TRUE(ks) << ks.error().message;
    ASSERT_TRUE(ks->keyConfirmation);
    EXPECT_EQ(hexOf(*ks->keyConfirmation), confirmation);
    const KeyRef kint{ks->kintBlob, spec.kint};
    auto k0 = ops_->deriveKSess(kint, 0, 0x1122334455667788ULL);
    ASSERT_TRUE(k0) << k0.error().message;
    EXPECT_EQ(hexOf(*k0), ksess0);
    auto k1 = ops_->deriveKSess(kint, 0x0a0b0c0d, 0x1122334455667788ULL);
    ASSERT_TRUE(k1);
    EXPECT_EQ(hexOf(*k1), resumedKsess);
    auto kc =
        ops_->deriveKeyConfirmation(kint, 0x01020304, arr<16>("202122232425262728292a2b2c2d2e2f"));
    ASSERT_TRUE(kc);
    EXPECT_EQ(hexOf(*kc), confirmation);
    // The same, cold: the KInt blob is verified and unwrapped again.
    vault_->clearCache();
    auto cold = ops_->deriveKSess(kint, 0, 0x1122334455667788ULL);
    ASSERT_TRUE(cold);
    EXPECT_EQ(hexOf(*cold), ksess0);
}

// --- blobs refused before use --------------------------------------------------------------------

TEST_F(VaultTest, CorruptTruncatedAndRowSwappedBlobsAreRefusedBeforeUse) {
    const auto set = testing::milenageSets().front();
    auto sub = provision(set.at("K"), set.at("OPc"), kImsi);
    auto other = provision(set.at("K"), set.at("OPc"), "001010000000002");
    const auto rand = arr<16>(set.at("RAND"));
    const auto sqn = arr<6>(set.at("SQN"));
    const auto amf = arr<2>(set.at("AMF"));
    ASSERT_TRUE(ops_->generateVector(sub.ref(), rand, sqn, amf));  // K now cached
    vault_->clearCache();

    struct Case {
        std::string name;
        SubscriberRef ref;
        HsmErrc expect;
    };
    std::vector<Bytes> keep;  // owns the altered blobs
    keep.reserve(64);
    auto altered = [&](const Bytes& b, std::size_t at, std::uint8_t x) {
        Bytes c = b;
        c[at] ^= x;
        keep.push_back(c);
        return ByteView(keep.back());
    };
    auto truncated = [&](const Bytes& b, std::size_t n) {
        keep.push_back(Bytes(b.begin(), b.begin() + static_cast<long>(n)));
        return ByteView(keep.back());
    };
    std::vector<Case> cases;
    const SubscriberRef good = sub.ref();
    auto withK = [&](ByteView k) {
        SubscriberRef r = good;
        r.k.blob = k;
        return r;
    };
    auto withOpc = [&](ByteView o) {
        SubscriberRef r = good;
        r.opc.blob = o;
        return r;
    };
    for (std::size_t n :
         {std::size_t{0}, std::size_t{1}, std::size_t{11}, std::size_t{43}, sub.k.size() - 1})
        cases.push_back({"K truncated to " + std::to_string(n), withK(truncated(sub.k, n)),
                         HsmErrc::blob_malformed});
    cases.push_back({"OPc truncated", withOpc(truncated(sub.opc, sub.opc.size() - 1)),
                     HsmErrc::blob_malformed});
    {
        Bytes longer = sub.k;
        longer.push_back(0);
        keep.push_back(longer);
        cases.push_back({"K with a trailing octet", withK(keep.back()), HsmErrc::blob_malformed});
    }
    cases.push_back({"K bad magic", withK(altered(sub.k, 0, 0x01)), HsmErrc::blob_malformed});
    cases.push_back({"K bad version", withK(altered(sub.k, 2, 0x02)), HsmErrc::blob_malformed});
    cases.push_back({"K header says OPc", withK(altered(sub.k, 3, 0x03)), HsmErrc::blob_malformed});
    cases.push_back({"K bad generation", withK(altered(sub.k, 9, 0x02)), HsmErrc::blob_malformed});
    cases.push_back(
        {"K payload bit flipped", withK(altered(sub.k, 12, 0x01)), HsmErrc::blob_binding});
    cases.push_back(
        {"K last payload octet", withK(altered(sub.k, 35, 0x80)), HsmErrc::blob_binding});
    cases.push_back({"K tag bit flipped", withK(altered(sub.k, sub.k.size() - 1, 0x01)),
                     HsmErrc::blob_binding});
    cases.push_back(
        {"OPc IV bit flipped", withOpc(altered(sub.opc, 12, 0x01)), HsmErrc::blob_binding});
    cases.push_back(
        {"OPc ciphertext flipped", withOpc(altered(sub.opc, 40, 0x01)), HsmErrc::blob_binding});
    cases.push_back({"OPc blob given as K", withK(sub.opc), HsmErrc::blob_malformed});
    cases.push_back({"K blob given as OPc", withOpc(sub.k), HsmErrc::blob_malformed});
    {
        SubscriberRef r = good;
        r.k.binding.imsi = "001010000000002";  // this row's K blob presented for another IMSI
        cases.push_back({"K moved to another IMSI", r, HsmErrc::blob_binding});
    }
    {
        SubscriberRef r = good;
        r.k.blob = other.k;  // another subscriber's K blob in this row
        cases.push_back({"another row's K", r, HsmErrc::blob_binding});
    }
    {
        SubscriberRef r = good;
        r.opc.blob = other.opc;
        cases.push_back({"another row's OPc", r, HsmErrc::blob_binding});
    }
    {
        SubscriberRef r = good;
        r.k.binding.version = 2;  // an older/newer version of the row
        cases.push_back({"K under another row version", r, HsmErrc::blob_binding});
    }
    {
        SubscriberRef r = good;
        r.k.binding.purpose = BlobPurpose::opc;
        cases.push_back({"binding purpose wrong", r, HsmErrc::bad_input});
    }

    const CallStats before = vault_->callStats();
    for (const Case& c : cases) {
        SCOPED_TRACE(c.name);
        auto v = ops_->generateVector(c.ref, rand, sqn, amf);
        ASSERT_FALSE(v);
        EXPECT_EQ(hsmCode(v.error()), c.expect) << v.error().message;
    }
    const CallStats used = vault_->callStats().since(before);
    // Nothing was unwrapped, decrypted or encrypted: every refusal came first.
    EXPECT_EQ(used[P11Fn::C_UnwrapKey], 0u) << used.describe();
    EXPECT_EQ(used[P11Fn::C_DecryptInit], 0u) << used.describe();
    EXPECT_EQ(used[P11Fn::C_EncryptInit], 0u) << used.describe();
    EXPECT_EQ(vault_->cacheStats().size, 0u);
    // The binding message names the row, never key material.
    SubscriberRef moved = good;
    moved.k.binding.imsi = "001010000000002";
    auto v = ops_->generateVector(moved, rand, sqn, amf);
    ASSERT_FALSE(v);
    EXPECT_NE(v.error().message.find("001010000000002"), std::string::npos);
    EXPECT_NE(v.error().message.find("before any unwrap"), std::string::npos);
    EXPECT_EQ(v.error().message.find(set.at("K")), std::string::npos);
    // The good row still works.
    EXPECT_TRUE(ops_->generateVector(good, rand, sqn, amf));
}

TEST_F(VaultTest, VerifyBlobChecksStructureAndRow) {
    auto sub =
        provision("465b5ce8b199b49faa5f0a2ee238a6bc", "cd63cb71954a9f4e48a5994e37a02baf", kImsi);
    EXPECT_TRUE(ops_->verifyBlob({sub.k, {kImsi, BlobPurpose::subscriberK, 1}}));
    EXPECT_TRUE(ops_->verifyBlob({sub.opc, {kImsi, BlobPurpose::opc, 1}}));
    auto wrongRow = ops_->verifyBlob({sub.k, {kImsi, BlobPurpose::subscriberK, 7}});
    ASSERT_FALSE(wrongRow);
    EXPECT_EQ(hsmCode(wrongRow.error()), HsmErrc::blob_binding);
    // Blob sizes: the documented format.
    EXPECT_EQ(sub.k.size(), kBlobHeaderSize + 24 + kBlobTagSize);
    EXPECT_EQ(sub.opc.size(), kBlobHeaderSize + 32 + kBlobTagSize);
    EXPECT_EQ(sub.k[0], 'B');
    EXPECT_EQ(sub.k[1], 'K');
}

// --- cache, re-login, operation counts
// ------------------------------------------------------------

TEST_F(VaultTest, WarmCacheSkipsTheUnwrap) {
    auto sub =
        provision("465b5ce8b199b49faa5f0a2ee238a6bc", "cd63cb71954a9f4e48a5994e37a02baf", kImsi);
    const auto rand = arr<16>("23553cbe9637a89d218ae64dae47bf35");
    const auto sqn = arr<6>("ff9bb4d0b607");
    const auto amf = arr<2>("b9b9");
    CallStats before = vault_->callStats();
    ASSERT_TRUE(ops_->generateVector(sub.ref(), rand, sqn, amf));
    EXPECT_EQ(vault_->callStats().since(before)[P11Fn::C_UnwrapKey], 1u);
    before = vault_->callStats();
    auto warm = ops_->generateVector(sub.ref(), rand, sqn, amf);
    ASSERT_TRUE(warm);
    EXPECT_EQ(vault_->callStats().since(before)[P11Fn::C_UnwrapKey], 0u);
    const CacheStats cs = vault_->cacheStats();
    EXPECT_EQ(cs.size, 1u);
    EXPECT_GE(cs.hits, 1u);
}

TEST_F(VaultTest, OperationCountsOfFullAndResumedEstablishment) {
    const auto set = testing::milenageSets().front();
    auto sub = provision(set.at("K"), set.at("OPc"), kImsi);
    const auto rand = arr<16>(set.at("RAND"));
    const auto sqn = arr<6>(set.at("SQN"));
    const auto amf = arr<2>(set.at("AMF"));
    ASSERT_TRUE(ops_->generateVector(sub.ref(), rand, sqn, amf));  // warm K

    auto fullEstablishment = [&](EasKeyKind kind, std::uint64_t version, KeySet& out) {
        auto v = ops_->generateVector(sub.ref(), rand, sqn, amf);
        ASSERT_TRUE(v);
        crypto::Ak sqnXorAk{};
        for (std::size_t i = 0; i < 6; ++i)
            sqnXorAk[i] = static_cast<std::uint8_t>(sqn[i] ^ v->ak[i]);
        auto root = crypto::deriveRoot(crypto::KeyAgreement::umts, v->ck, v->ik, {0x00, 0xf1, 0x10},
                                       sqnXorAk);
        ASSERT_TRUE(root);
        KeySetSpec spec;
        spec.hseId = kHseId;
        spec.kint = {kImsi, BlobPurpose::kint, version};
        spec.session = SessionParams{0x01020304, 0x0001020304050607ULL};
        spec.easId = kEasId;
        spec.easKeyId = true;
        spec.easKey = kind;
        spec.easKeyBinding = {
            kImsi, kind == EasKeyKind::e2e ? BlobPurpose::kintE2e : BlobPurpose::kintEasPsk,
            version};
        auto ks = ops_->createKeySet(*root, spec);
        ASSERT_TRUE(ks) << ks.error().message;
        out = std::move(*ks);
    };

    // Full, UE-to-EAS mode (KInt_E2E and KSess_E2E), warm K.
    KeySet e2e;
    CallStats before = vault_->callStats();
    fullEstablishment(EasKeyKind::e2e, 1, e2e);
    CallStats d = vault_->callStats().since(before);
    EXPECT_EQ(d.total(), 30u) << d.describe();
    EXPECT_EQ(d[P11Fn::C_VerifyInit], 1u);  // OPc binding
    EXPECT_EQ(d[P11Fn::C_DecryptInit], 1u);
    EXPECT_EQ(d[P11Fn::C_EncryptInit], 1u);  // Milenage: one multi-part AES-ECB operation
    EXPECT_EQ(d[P11Fn::C_EncryptUpdate], 6u);
    EXPECT_EQ(d[P11Fn::C_CreateObject], 2u);  // KInt, KInt_E2E
    EXPECT_EQ(d[P11Fn::C_WrapKey], 2u);
    EXPECT_EQ(d[P11Fn::C_SetAttributeValue], 2u);
    EXPECT_EQ(d[P11Fn::C_SignInit], 6u);  // 2 tags, KSess, EAS key id, KInt_E2E, KSess_E2E
    EXPECT_EQ(d[P11Fn::C_UnwrapKey], 0u);

    // Full, KA-only (KInt_EAS_PSK, not kept).
    KeySet psk;
    before = vault_->callStats();
    fullEstablishment(EasKeyKind::psk, 2, psk);
    d = vault_->callStats().since(before);
    EXPECT_EQ(d.total(), 28u) << d.describe();
    EXPECT_EQ(d[P11Fn::C_DestroyObject], 1u);

    // Resumed (KSess0 for the request's MAC, KSess for the new session), KInt cached.
    const KeyRef kint{psk.kintBlob, {kImsi, BlobPurpose::kint, 2}};
    auto resume = [&](const KeyRef& k) {
        ASSERT_TRUE(ops_->deriveKSess(k, 0, 0x1122334455667788ULL));
        ASSERT_TRUE(ops_->deriveKSess(k, 0x0a0b0c0d, 0x1122334455667788ULL));
    };
    before = vault_->callStats();
    resume(kint);
    d = vault_->callStats().since(before);
    EXPECT_EQ(d.total(), 4u) << d.describe();
    // Cold: the KInt blob is verified and unwrapped first.
    vault_->clearCache();
    before = vault_->callStats();
    resume(kint);
    d = vault_->callStats().since(before);
    EXPECT_EQ(d.total(), 7u) << d.describe();
    EXPECT_EQ(d[P11Fn::C_UnwrapKey], 1u);
    // UE-to-EAS resumption also derives KSess_E2E from the KInt_E2E blob: 6 warm, 12 cold.
    const KeyRef ke2e{e2e.easKeyBlob, {kImsi, BlobPurpose::kintE2e, 1}};
    const KeyRef kint1{e2e.kintBlob, {kImsi, BlobPurpose::kint, 1}};
    resume(kint1);
    ASSERT_TRUE(ops_->deriveKSess(ke2e, 0x0a0b0c0d, 0x1122334455667788ULL));
    before = vault_->callStats();
    resume(kint1);
    ASSERT_TRUE(ops_->deriveKSess(ke2e, 0x0a0b0c0d, 0x1122334455667788ULL));
    EXPECT_EQ(vault_->callStats().since(before).total(), 6u);
    vault_->clearCache();
    before = vault_->callStats();
    resume(kint1);
    ASSERT_TRUE(ops_->deriveKSess(ke2e, 0x0a0b0c0d, 0x1122334455667788ULL));
    EXPECT_EQ(vault_->callStats().since(before).total(), 12u);

    // Full, UE-to-HSE mode (no EAS key; the EAS key identifier still derived).
    KeySet none;
    ASSERT_TRUE(ops_->generateVector(sub.ref(), rand, sqn, amf));  // warm K again
    before = vault_->callStats();
    fullEstablishment(EasKeyKind::none, 3, none);
    d = vault_->callStats().since(before);
    EXPECT_EQ(d.total(), 21u) << d.describe();
    // A cold K adds its binding check and unwrap.
    vault_->clearCache();
    before = vault_->callStats();
    fullEstablishment(EasKeyKind::none, 4, none);
    d = vault_->callStats().since(before);
    EXPECT_EQ(d.total(), 24u) << d.describe();
    EXPECT_EQ(d[P11Fn::C_UnwrapKey], 1u);
}

TEST_F(VaultTest, ReloginEmptiesTheCache) {
    auto sub =
        provision("465b5ce8b199b49faa5f0a2ee238a6bc", "cd63cb71954a9f4e48a5994e37a02baf", kImsi);
    const auto rand = arr<16>("23553cbe9637a89d218ae64dae47bf35");
    const auto sqn = arr<6>("ff9bb4d0b607");
    const auto amf = arr<2>("b9b9");
    auto first = ops_->generateVector(sub.ref(), rand, sqn, amf);
    ASSERT_TRUE(first);
    const CacheStats warm = vault_->cacheStats();
    EXPECT_EQ(warm.size, 1u);
    ASSERT_TRUE(vault_->relogin());
    const CacheStats after = vault_->cacheStats();
    EXPECT_EQ(after.size, 0u);
    EXPECT_EQ(after.generation, warm.generation + 1);
    EXPECT_EQ(vault_->relogins(), 1u);
    const CallStats before = vault_->callStats();
    auto again = ops_->generateVector(sub.ref(), rand, sqn, amf);
    ASSERT_TRUE(again) << again.error().message;
    EXPECT_EQ(vault_->callStats().since(before)[P11Fn::C_UnwrapKey], 1u);
    EXPECT_EQ(hexOf(again->xres), hexOf(first->xres));
    EXPECT_TRUE(vault_->checkHealth());
}

TEST_F(VaultTest, ALogoutElsewhereIsRecoveredByReloginAndAColdCache) {
    auto sub =
        provision("465b5ce8b199b49faa5f0a2ee238a6bc", "cd63cb71954a9f4e48a5994e37a02baf", kImsi);
    const auto rand = arr<16>("23553cbe9637a89d218ae64dae47bf35");
    const auto sqn = arr<6>("ff9bb4d0b607");
    const auto amf = arr<2>("b9b9");
    auto first = ops_->generateVector(sub.ref(), rand, sqn, amf);
    ASSERT_TRUE(first);
    KeySetSpec spec;
    spec.hseId = kHseId;
    spec.kint = {kImsi, BlobPurpose::kint, 1};
    auto ks = ops_->createKeySet(secretFromHex<Key256>(std::string(64, 'a')), spec);
    ASSERT_TRUE(ks);
    const KeyRef kint{ks->kintBlob, spec.kint};
    auto ksessBefore = ops_->deriveKSess(kint, 1, 2);
    ASSERT_TRUE(ksessBefore);
    EXPECT_EQ(vault_->cacheStats().size, 2u);
    {
        // Someone logs out of the token: every private session object dies, token key handles too.
        auto s = Session::open(vault_->module(), vault_->slotId(), false);
        ASSERT_TRUE(s);
        ASSERT_TRUE(vault_->module().call<P11Fn::C_Logout>(s->get()));
    }
    auto v = ops_->generateVector(sub.ref(), rand, sqn, amf);
    ASSERT_TRUE(v) << v.error().message;
    EXPECT_EQ(hexOf(v->xres), hexOf(first->xres));
    EXPECT_EQ(vault_->relogins(), 1u);
    auto ksessAfter = ops_->deriveKSess(kint, 1, 2);
    ASSERT_TRUE(ksessAfter) << ksessAfter.error().message;
    EXPECT_TRUE(ksessAfter->equals(*ksessBefore));
    EXPECT_EQ(vault_->relogins(), 1u);
    EXPECT_TRUE(vault_->checkHealth());
}

// --- provisioning
// ---------------------------------------------------------------------------------

TEST_F(VaultTest, InitRefusesASecondTime) {
    ops_.reset();
    vault_.reset();  // one Module per library and process
    auto again = KeyVault::initTokenKeys(token_.config());
    ASSERT_FALSE(again);
    EXPECT_EQ(hsmCode(again.error()), HsmErrc::key_exists);
}

TEST(VaultOpen, WithoutTokenKeysSaysToRunInit) {
    testing::SoftHsmToken token;
    auto v = KeyVault::open(token.config());
    ASSERT_FALSE(v);
    EXPECT_EQ(hsmCode(v.error()), HsmErrc::key_missing);
    EXPECT_NE(v.error().message.find("best-hsectl hsm init"), std::string::npos);
}

// Token keys made by hand (not by initTokenKeys), with one flaw in the wrap key.
enum class WrapFlaw { none, extractable, noUnwrapTemplate, modifiable };

void makeTokenKeysByHand(const testing::SoftHsmToken& token, WrapFlaw flaw) {
    auto m = Module::load(testing::softHsmModule());
    ASSERT_TRUE(m);
    auto slot = Slot::find(**m, *TokenSelector::parse(token.label()));
    ASSERT_TRUE(slot);
    auto s = Session::open(**m, slot->id(), true);
    ASSERT_TRUE(s);
    ASSERT_TRUE(s->login(Bytes(token.pin().begin(), token.pin().end())));
    const CK_ULONG len = 32;
    const CK_KEY_TYPE generic = CKK_GENERIC_SECRET;
    std::array<CK_ATTRIBUTE, 1> unwrapTemplate{attr(CKA_EXTRACTABLE, kFalse)};
    struct K {
        std::string_view label;
        CK_ATTRIBUTE_TYPE u1, u2;
        bool generic;
    };
    for (const K& k : {K{kWrapKeyLabel, CKA_WRAP, CKA_UNWRAP, false},
                       K{kDataKeyLabel, CKA_ENCRYPT, CKA_DECRYPT, false},
                       K{kBindingKeyLabel, CKA_SIGN, CKA_VERIFY, true}}) {
        const bool wrap = k.label == kWrapKeyLabel;
        const CK_BBOOL& extractable = wrap && flaw == WrapFlaw::extractable ? kTrue : kFalse;
        const CK_BBOOL& modifiable = wrap && flaw != WrapFlaw::modifiable ? kFalse : kTrue;
        std::vector<CK_ATTRIBUTE> t{
            attr(CKA_TOKEN, kTrue),           attr(CKA_PRIVATE, kTrue),
            attr(CKA_SENSITIVE, kTrue),       attr(CKA_EXTRACTABLE, extractable),
            attr(CKA_MODIFIABLE, modifiable), attrBytes(CKA_LABEL, k.label.data(), k.label.size()),
            attr(CKA_VALUE_LEN, len),         attr(CKA_DERIVE, kFalse)};
        // Every usage explicit: SoftHSM's defaults allow more than a role.
        for (CK_ATTRIBUTE_TYPE u :
             {CKA_WRAP, CKA_UNWRAP, CKA_ENCRYPT, CKA_DECRYPT, CKA_SIGN, CKA_VERIFY})
            t.push_back(attr(u, u == k.u1 || u == k.u2 ? kTrue : kFalse));
        if (k.generic)
            t.push_back(attr(CKA_KEY_TYPE, generic));
        if (wrap && flaw != WrapFlaw::noUnwrapTemplate) {
            t.push_back(attrBytes(CKA_UNWRAP_TEMPLATE, unwrapTemplate.data(),
                                  sizeof(CK_ATTRIBUTE) * unwrapTemplate.size()));
        }
        CK_MECHANISM gen{k.generic ? CKM_GENERIC_SECRET_KEY_GEN : CKM_AES_KEY_GEN, nullptr, 0};
        CK_OBJECT_HANDLE h = 0;
        ASSERT_TRUE((*m)->call<P11Fn::C_GenerateKey>(s->get(), &gen, t.data(),
                                                     static_cast<CK_ULONG>(t.size()), &h));
    }
}

TEST(VaultOpen, RefusesAWrapKeyThatIsNotLockedDown) {
    const std::pair<WrapFlaw, const char*> cases[] = {
        {WrapFlaw::extractable, "is extractable"},
        {WrapFlaw::noUnwrapTemplate, "has no unwrap template"},
        {WrapFlaw::modifiable, "is modifiable"},
    };
    for (const auto& [flaw, message] : cases) {
        SCOPED_TRACE(message);
        testing::SoftHsmToken token;
        makeTokenKeysByHand(token, flaw);
        auto v = KeyVault::open(token.config());
        ASSERT_FALSE(v);
        EXPECT_EQ(hsmCode(v.error()), HsmErrc::token_key_unsafe);
        EXPECT_NE(v.error().message.find(message), std::string::npos) << v.error().message;
    }
}

TEST(VaultOpen, AcceptsHandMadeKeysThatAreLockedDown) {
    testing::SoftHsmToken token;
    makeTokenKeysByHand(token, WrapFlaw::none);
    auto v = KeyVault::open(token.config());
    ASSERT_TRUE(v) << v.error().message;
    EXPECT_TRUE((*v)->checkHealth());
}

// RFC 3394 wrap in software, as the operator's provisioning system would do it.
Bytes softwareKeyWrap(ByteView kek, ByteView key) {
    EVP_CIPHER* cipher = EVP_CIPHER_fetch(nullptr, "AES-256-WRAP", nullptr);
    EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
    Bytes out(key.size() + 8);
    int n = 0, m = 0;
    EVP_CIPHER_CTX_set_flags(ctx, EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
    const bool ok =
        cipher != nullptr && ctx != nullptr &&
        EVP_EncryptInit_ex2(ctx, cipher, kek.data(), nullptr, nullptr) == 1 &&
        EVP_EncryptUpdate(ctx, out.data(), &n, key.data(), static_cast<int>(key.size())) == 1 &&
        EVP_EncryptFinal_ex(ctx, out.data() + n, &m) == 1;
    EVP_CIPHER_CTX_free(ctx);
    EVP_CIPHER_free(cipher);
    if (!ok)
        return {};
    out.resize(static_cast<std::size_t>(n + m));
    return out;
}

TEST(VaultProvisioning, KFromAnOperatorTransportBlobNeverReachesTheHost) {
    testing::SoftHsmToken token;
    ASSERT_TRUE(KeyVault::initTokenKeys(token.config()));
    const Bytes transport =
        hexBytes("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
    {
        // The operator's transport key, imported into the token once.
        auto m = Module::load(testing::softHsmModule());
        ASSERT_TRUE(m);
        auto slot = Slot::find(**m, *TokenSelector::parse(token.label()));
        auto s = Session::open(**m, slot->id(), true);
        ASSERT_TRUE(s && s->login(Bytes(token.pin().begin(), token.pin().end())));
        const CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
        const CK_KEY_TYPE aes = CKK_AES;
        const std::string label = "operator-transport";
        CK_ATTRIBUTE t[] = {attr(CKA_CLASS, cls),
                            attr(CKA_KEY_TYPE, aes),
                            attr(CKA_TOKEN, kTrue),
                            attr(CKA_PRIVATE, kTrue),
                            attr(CKA_SENSITIVE, kTrue),
                            attr(CKA_EXTRACTABLE, kFalse),
                            attr(CKA_UNWRAP, kTrue),
                            attr(CKA_WRAP, kFalse),
                            attrBytes(CKA_LABEL, label.data(), label.size()),
                            attrBytes(CKA_VALUE, transport.data(), transport.size())};
        CK_OBJECT_HANDLE h = 0;
        ASSERT_TRUE((*m)->call<P11Fn::C_CreateObject>(s->get(), t, CK_ULONG{10}, &h));
    }
    auto v = KeyVault::open(token.config());
    ASSERT_TRUE(v) << v.error().message;
    auto ops = (*v)->openOps();
    ASSERT_TRUE(ops);
    const auto set = testing::milenageSets().at(2);
    const Bytes wrapped = softwareKeyWrap(transport, hexBytes(set.at("K")));
    ASSERT_EQ(wrapped.size(), 24u);
    const BlobBinding kRow{kImsi, BlobPurpose::subscriberK, 1};
    auto k = ops->importKWrapped(wrapped, "operator-transport", WrapMechanism::aesKeyWrap, kRow);
    ASSERT_TRUE(k) << k.error().message;
    auto opc = ops->sealOpc(secretFromHex<Opc>(set.at("OPc")), {kImsi, BlobPurpose::opc, 1});
    ASSERT_TRUE(opc);
    auto vec =
        ops->generateVector({{*k, kRow}, {*opc, {kImsi, BlobPurpose::opc, 1}}},
                            arr<16>(set.at("RAND")), arr<6>(set.at("SQN")), arr<2>(set.at("AMF")));
    ASSERT_TRUE(vec) << vec.error().message;
    EXPECT_EQ(hexOf(vec->xres), set.at("f2"));
    EXPECT_EQ(hexOf(vec->ck), set.at("f3"));

    auto noKey = ops->importKWrapped(wrapped, "no-such-key", WrapMechanism::aesKeyWrap, kRow);
    ASSERT_FALSE(noKey);
    EXPECT_EQ(hsmCode(noKey.error()), HsmErrc::key_missing);
    Bytes garbage = wrapped;
    garbage[5] ^= 0x40;  // RFC 3394's integrity check fails inside the token
    auto bad = ops->importKWrapped(garbage, "operator-transport", WrapMechanism::aesKeyWrap, kRow);
    ASSERT_FALSE(bad);
    EXPECT_EQ(hsmCode(bad.error()), HsmErrc::unwrap_failed) << bad.error().message;
    EXPECT_NE(bad.error().message.find("operator-transport"), std::string::npos);
    const Bytes wrong256 = softwareKeyWrap(transport, Bytes(32, 0x42));  // a 32-octet "K"
    auto tooLong =
        ops->importKWrapped(wrong256, "operator-transport", WrapMechanism::aesKeyWrap, kRow);
    ASSERT_FALSE(tooLong);
    EXPECT_EQ(hsmCode(tooLong.error()), HsmErrc::bad_input);
}

// --- async interface
// -------------------------------------------------------------------------------

TEST_F(VaultTest, SubmitAndPostRunOnWorkersAndNeverBlockTheCaller) {
    EXPECT_EQ(vault_->workers(), 2u);
    EXPECT_TRUE(vault_->workerStacksLocked());
    const auto sets = testing::milenageSets();
    std::vector<Subscriber> subs;
    for (const auto& set : sets)
        subs.push_back(provision(set.at("K"), set.at("OPc"), "0010100000001" + set.at("set")));
    std::vector<std::future<Result<crypto::AuthVector>>> futures;
    for (int round = 0; round < 8; ++round) {
        for (std::size_t i = 0; i < sets.size(); ++i) {
            const SubscriberRef ref = subs[i].ref();  // views into subs: alive until the end
            const auto rand = arr<16>(sets[i].at("RAND"));
            const auto sqn = arr<6>(sets[i].at("SQN"));
            const auto amf = arr<2>(sets[i].at("AMF"));
            futures.push_back(vault_->submit([ref, rand, sqn, amf](VaultOps& ops) {
                return ops.generateVector(ref, rand, sqn, amf);
            }));
        }
    }
    for (std::size_t j = 0; j < futures.size(); ++j) {
        auto v = futures[j].get();
        ASSERT_TRUE(v) << v.error().message;
        EXPECT_EQ(hexOf(v->xres), sets[j % sets.size()].at("f2"));
    }
    // Callback form: done() runs on the worker thread.
    std::promise<std::pair<std::string, std::thread::id>> done;
    const SubscriberRef ref = subs[0].ref();
    vault_->post(
        [ref, &sets](VaultOps& ops) {
            return ops.generateVector(ref, arr<16>(sets[0].at("RAND")), arr<6>(sets[0].at("SQN")),
                                      arr<2>(sets[0].at("AMF")));
        },
        [&done](Result<crypto::AuthVector> v) {
            done.set_value({v ? hexOf(v->xres) : v.error().message, std::this_thread::get_id()});
        });
    auto [xres, thread] = done.get_future().get();
    EXPECT_EQ(xres, sets[0].at("f2"));
    EXPECT_NE(thread, std::this_thread::get_id());
    // An exception inside a job becomes an error, not a dead worker.
    auto boom = vault_->run([](VaultOps&) -> Result<int> { throw std::runtime_error("boom"); });
    ASSERT_FALSE(boom);
    EXPECT_EQ(hsmCode(boom.error()), HsmErrc::internal);
    EXPECT_TRUE(vault_->run([](VaultOps&) -> Result<int> { return 7; }));
}

TEST(VaultAsync, AFullQueueAnswersBusyAtOnce) {
    testing::SoftHsmToken token;
    ASSERT_TRUE(KeyVault::initTokenKeys(token.config()));
    auto cfg = token.config();
    cfg.workers = 1;
    cfg.queueCapacity = 1;
    auto v = KeyVault::open(cfg);
    ASSERT_TRUE(v) << v.error().message;
    std::promise<void> release;
    std::shared_future<void> gate = release.get_future().share();
    std::promise<void> started;
    auto blocker = (*v)->submit([gate, &started](VaultOps&) -> Result<int> {
        started.set_value();
        gate.wait();
        return 1;
    });
    started.get_future().wait();  // the worker is busy
    auto queued = (*v)->submit([](VaultOps&) -> Result<int> { return 2; });
    auto refused = (*v)->submit([](VaultOps&) -> Result<int> { return 3; });
    ASSERT_EQ(refused.wait_for(std::chrono::seconds(0)), std::future_status::ready);
    auto r = refused.get();
    ASSERT_FALSE(r);
    EXPECT_EQ(hsmCode(r.error()), HsmErrc::busy);
    bool calledInline = false;
    (*v)->post([](VaultOps&) -> Result<int> { return 4; },
               [&calledInline](Result<int> res) {
                   calledInline = !res && static_cast<HsmErrc>(res.error().code) == HsmErrc::busy;
               });
    EXPECT_TRUE(calledInline);
    release.set_value();
    EXPECT_EQ(*blocker.get(), 1);
    EXPECT_EQ(*queued.get(), 2);
}

}  // namespace
}  // namespace best::hsm
