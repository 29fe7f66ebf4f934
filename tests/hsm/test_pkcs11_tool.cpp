// What the token holds, seen from outside with OpenSC's pkcs11-tool (a separate process): the
// three token keys, sensitive and never extractable, and nothing else — no subscriber key, no
// KInt. And a wrapped blob cannot be unwrapped as extractable, by pkcs11-tool or in-process.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "tests/hsm/vault_fixture.h"

namespace best::hsm {
namespace {

using testing::hexBytes;
using testing::secretFromHex;
using testing::SoftHsmToken;
using testing::VaultTest;

constexpr const char* kImsi = "001010000000001";
const std::string kK = "465b5ce8b199b49faa5f0a2ee238a6bc";
const std::string kOpc = "cd63cb71954a9f4e48a5994e37a02baf";

struct ListedObject {
    std::string header;  // "Secret Key Object; AES length 32"
    std::string label, usage, access;
};

std::vector<ListedObject> parseListing(const std::string& out) {
    std::vector<ListedObject> objs;
    std::size_t pos = 0;
    while (pos < out.size()) {
        const std::size_t end = out.find('\n', pos);
        const std::string line = out.substr(pos, end == std::string::npos ? end : end - pos);
        pos = end == std::string::npos ? out.size() : end + 1;
        auto field = [&](const char* name) -> std::string {
            const std::string key = std::string("  ") + name + ":";
            if (line.rfind(key, 0) != 0)
                return {};
            const auto v = line.find_first_not_of(' ', key.size());
            return v == std::string::npos ? std::string() : line.substr(v);
        };
        // An object starts with an unindented "... Object" line ("Secret Key Object; AES ...").
        if (!line.empty() && line[0] != ' ' && line.find(" Object") != std::string::npos) {
            objs.push_back({line, {}, {}, {}});
            continue;
        }
        if (objs.empty())
            continue;
        if (auto v = field("label"); !v.empty())
            objs.back().label = v;
        if (auto v = field("Usage"); !v.empty())
            objs.back().usage = v;
        if (auto v = field("Access"); !v.empty())
            objs.back().access = v;
    }
    return objs;
}

bool contains(const std::string& haystack, const Bytes& needle) {
    return std::search(haystack.begin(), haystack.end(), needle.begin(), needle.end()) !=
           haystack.end();
}

TEST_F(VaultTest, TokenHoldsOnlyItsThreeKeysSensitiveAndNeverExtractable) {
    // A provisioned subscriber, a vector, and key sets with both EAS key kinds.
    auto sub = provision(kK, kOpc, kImsi);
    ASSERT_TRUE(ops_->generateVector(sub.ref(),
                                     testing::arr<16>("23553cbe9637a89d218ae64dae47bf35"),
                                     testing::arr<6>("ff9bb4d0b607"), testing::arr<2>("b9b9")));
    const std::string rootHex = "b40ba9a3c58b2a05bbf0d987b21bf8cbf769bcd751044604127672711c6d3441";
    for (EasKeyKind kind : {EasKeyKind::e2e, EasKeyKind::psk}) {
        KeySetSpec spec;
        spec.hseId = "hse.example.org";
        spec.kint = {kImsi, BlobPurpose::kint, static_cast<std::uint64_t>(kind)};
        spec.session = SessionParams{1, 2};
        spec.easId = "eas.example.org";
        spec.easKeyId = true;
        spec.easKey = kind;
        spec.easKeyBinding = {
            kImsi, kind == EasKeyKind::e2e ? BlobPurpose::kintE2e : BlobPurpose::kintEasPsk, 1};
        ASSERT_TRUE(ops_->createKeySet(secretFromHex<Key256>(rootHex), spec));
    }

    const auto listing = token_.pkcs11Tool("--list-objects");
    ASSERT_EQ(listing.status, 0) << listing.output;
    const auto objs = parseListing(listing.output);
    ASSERT_EQ(objs.size(), 3u) << listing.output;  // no subscriber key, no KInt: only token keys
    std::vector<std::string> labels;
    for (const ListedObject& o : objs) {
        SCOPED_TRACE(o.label);
        labels.push_back(o.label);
        EXPECT_EQ(o.header.rfind("Secret Key Object", 0), 0u) << o.header;
        EXPECT_NE(o.header.find("length 32"), std::string::npos) << o.header;
        EXPECT_EQ(o.access, "sensitive, always sensitive, never extractable, local");
        if (o.label == kWrapKeyLabel) {
            EXPECT_EQ(o.usage, "wrap, unwrap");
        }
        if (o.label == kDataKeyLabel) {
            EXPECT_EQ(o.usage, "encrypt, decrypt");
        }
    }
    std::sort(labels.begin(), labels.end());
    EXPECT_EQ(labels,
              (std::vector<std::string>{std::string(kBindingKeyLabel), std::string(kDataKeyLabel),
                                        std::string(kWrapKeyLabel)}));
    for (const char* other :
         {"Data object", "Private Key Object", "Public Key Object", "Certificate Object"})
        EXPECT_EQ(listing.output.find(other), std::string::npos) << other;

    // Nor does the token storage hold K, OPc, R or KInt in clear.
    auto kint = crypto::deriveKInt(secretFromHex<Key256>(rootHex), "hse.example.org");
    ASSERT_TRUE(kint);
    const std::vector<Bytes> secrets{hexBytes(kK), hexBytes(kOpc), hexBytes(rootHex),
                                     Bytes(kint->view().begin(), kint->view().end())};
    const auto files = token_.storageFiles();
    ASSERT_FALSE(files.empty());
    for (const std::string& f : files) {
        const std::string content = SoftHsmToken::readFile(f);
        for (const Bytes& s : secrets)
            EXPECT_FALSE(contains(content, s)) << f;
    }

    // In-process: every session object the vault holds (token-key copies and cached keys) is
    // sensitive and non-extractable, apart from the health probe's own random key.
    auto s = Session::open(vault_->module(), vault_->slotId(), false);
    ASSERT_TRUE(s);
    const CK_OBJECT_CLASS secret = CKO_SECRET_KEY;
    std::array<CK_ATTRIBUTE, 2> find{attr(CKA_CLASS, secret), attr(CKA_TOKEN, kFalse)};
    auto found = s->findObjects(find, 64);
    ASSERT_TRUE(found) << found.error().message;
    // The probe key, the session copies of the three token keys, the cached keys.
    EXPECT_EQ(vault_->capabilities().tokenKeyCopies, 2u);  // data and binding keys
    EXPECT_EQ(found->size(), 1u + 2u + vault_->cacheStats().size);
    int checked = 0;
    for (CK_OBJECT_HANDLE h : *found) {
        CK_BBOOL sensitive = CK_FALSE, extractable = CK_TRUE;
        char label[64] = {};
        std::array<CK_ATTRIBUTE, 3> q{attrBytes(CKA_SENSITIVE, &sensitive, 1),
                                      attrBytes(CKA_EXTRACTABLE, &extractable, 1),
                                      attrBytes(CKA_LABEL, label, sizeof label - 1)};
        ASSERT_TRUE(
            vault_->module().call<P11Fn::C_GetAttributeValue>(s->get(), h, q.data(), CK_ULONG{3}));
        const std::string name(label, q[2].ulValueLen);
        if (name == kProbeKeyLabel)
            continue;
        EXPECT_EQ(sensitive, CK_TRUE);
        EXPECT_EQ(extractable, CK_FALSE);
        ++checked;
    }
    EXPECT_EQ(checked, 6);  // 2 token-key copies, K, KInt (x2), KInt_E2E
}

TEST_F(VaultTest, AWrappedBlobCannotBeUnwrappedAsExtractable) {
    auto sub = provision(kK, kOpc, kImsi);
    KeySetSpec spec;
    spec.hseId = "hse.example.org";
    spec.kint = {kImsi, BlobPurpose::kint, 1};
    auto ks = ops_->createKeySet(secretFromHex<Key256>(std::string(64, '5')), spec);
    ASSERT_TRUE(ks);
    const std::string wrapKeyId = toHex(ByteView(
        reinterpret_cast<const std::uint8_t*>(kWrapKeyLabel.data()), kWrapKeyLabel.size()));
    struct Blob {
        Bytes bytes;
        std::string keyType;
    };
    for (const Blob& b : {Blob{sub.k, "AES:16"}, Blob{ks->kintBlob, "GENERIC:32"}}) {
        SCOPED_TRACE(b.keyType);
        const std::string payload = token_.dir() + "/payload.bin";
        SoftHsmToken::writeFile(payload,
                                std::string(b.bytes.begin() + kBlobHeaderSize,
                                            b.bytes.end() - static_cast<long>(kBlobTagSize)),
                                0600);
        // With OpenSC: the token refuses the template (the wrap key's CKA_UNWRAP_TEMPLATE).
        for (const char* extra : {"--extractable", ""}) {
            const auto r =
                token_.pkcs11Tool("--unwrap -m AES-KEY-WRAP --id " + wrapKeyId + " -i " + payload +
                                  " --key-type " + b.keyType + " --label stolen " + extra);
            EXPECT_NE(r.status, 0) << r.output;
            EXPECT_NE(r.output.find("CKR_TEMPLATE_INCONSISTENT"), std::string::npos) << r.output;
        }
        // In-process, with the vault's own login: extractable, or not sensitive, is refused.
        auto s = Session::open(vault_->module(), vault_->slotId(), false);
        ASSERT_TRUE(s);
        const Module& m = vault_->module();
        std::array<CK_ATTRIBUTE, 2> findWrap{
            attrBytes(CKA_LABEL, kWrapKeyLabel.data(), kWrapKeyLabel.size()),
            attr(CKA_TOKEN, kTrue)};
        auto wrap = s->findObjects(findWrap, 1);
        ASSERT_TRUE(wrap && wrap->size() == 1);
        const CK_OBJECT_CLASS secret = CKO_SECRET_KEY;
        const CK_KEY_TYPE type = b.keyType == "AES:16" ? CKK_AES : CKK_GENERIC_SECRET;
        CK_MECHANISM mech{CKM_AES_KEY_WRAP, nullptr, 0};
        auto unwrap = [&](const CK_BBOOL& extractable, const CK_BBOOL& sensitive) {
            CK_ATTRIBUTE t[] = {attr(CKA_CLASS, secret), attr(CKA_KEY_TYPE, type),
                                attr(CKA_TOKEN, kFalse), attr(CKA_EXTRACTABLE, extractable),
                                attr(CKA_SENSITIVE, sensitive)};
            CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
            Bytes p(b.bytes.begin() + kBlobHeaderSize,
                    b.bytes.end() - static_cast<long>(kBlobTagSize));
            const CK_RV rv =
                m.callRaw<P11Fn::C_UnwrapKey>(s->get(), &mech, wrap->front(), p.data(),
                                              static_cast<CK_ULONG>(p.size()), t, CK_ULONG{5}, &h);
            return std::make_pair(rv, h);
        };
        EXPECT_EQ(unwrap(kTrue, kTrue).first, CKR_TEMPLATE_INCONSISTENT);
        EXPECT_EQ(unwrap(kFalse, kFalse).first, CKR_TEMPLATE_INCONSISTENT);
        auto [rv, h] = unwrap(kFalse, kTrue);
        ASSERT_EQ(rv, CKR_OK) << ckrName(rv);
        ObjectHandle held(s->ref(), h);
        // The value cannot be read, nor wrapped out again.
        std::uint8_t value[32];
        CK_ATTRIBUTE q = attrBytes(CKA_VALUE, value, sizeof value);
        EXPECT_EQ(m.callRaw<P11Fn::C_GetAttributeValue>(s->get(), h, &q, CK_ULONG{1}),
                  CKR_ATTRIBUTE_SENSITIVE);
        std::uint8_t out[64];
        CK_ULONG n = sizeof out;
        EXPECT_EQ(m.callRaw<P11Fn::C_WrapKey>(s->get(), &mech, wrap->front(), h, out, &n),
                  CKR_KEY_UNEXTRACTABLE);
    }
    const auto listing = token_.pkcs11Tool("--list-objects");
    EXPECT_EQ(listing.output.find("stolen"), std::string::npos);
    EXPECT_EQ(parseListing(listing.output).size(), 3u);
}

}  // namespace
}  // namespace best::hsm
