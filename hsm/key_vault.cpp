#include "hsm/key_vault.h"

#include <array>
#include <string>

#include <openssl/crypto.h>

#include "common/log.h"
#include "hsm/hsm_block_cipher.h"
#include "hsm/pin_file.h"

namespace best::hsm {

namespace {

constexpr CK_OBJECT_CLASS kSecretClass = CKO_SECRET_KEY;
constexpr CK_KEY_TYPE kAesType = CKK_AES;
constexpr CK_KEY_TYPE kGenericType = CKK_GENERIC_SECRET;
constexpr CK_ULONG kAes256Len = 32;
constexpr CK_ULONG kAes128Len = 16;
constexpr CK_ULONG kHmacKeyLen = 32;
constexpr std::size_t kMaxWrapped = 64;

ByteView textView(std::string_view s) noexcept {
    return ByteView(reinterpret_cast<const std::uint8_t*>(s.data()), s.size());
}

bool isRecoverable(const Error& e) noexcept {
    if (e.domain != ErrorDomain::hsm)
        return false;
    const auto c = static_cast<HsmErrc>(e.code);
    return c == HsmErrc::not_logged_in || c == HsmErrc::key_invalid;
}

// The same error with another code (the message already says what happened and what to do).
tl::unexpected<Error> recode(Error e, HsmErrc code, std::string_view prefix = {}) {
    e.code = static_cast<int>(code);
    if (!prefix.empty())
        e.message = std::string(prefix) + e.message;
    return tl::unexpected<Error>(std::move(e));
}

// Template of an unwrapped (or created) key session object. `extractable` only for transient
// objects that are wrapped right away.
struct KeyTemplate {
    std::array<CK_ATTRIBUTE, 14> attrs;
    CK_ULONG count;
};

KeyTemplate sessionKeyTemplate(bool aes, bool extractable, const std::uint8_t* value,
                               std::size_t valueLen) {
    KeyTemplate t{{
                      attr(CKA_CLASS, kSecretClass),
                      attr(CKA_KEY_TYPE, aes ? kAesType : kGenericType),
                      attr(CKA_TOKEN, kFalse),
                      attr(CKA_PRIVATE, kTrue),
                      attr(CKA_SENSITIVE, kTrue),
                      attr(CKA_EXTRACTABLE, extractable ? kTrue : kFalse),
                      attr(CKA_ENCRYPT, aes ? kTrue : kFalse),
                      attr(CKA_DECRYPT, kFalse),
                      attr(CKA_SIGN, aes ? kFalse : kTrue),
                      attr(CKA_VERIFY, kFalse),
                      attr(CKA_WRAP, kFalse),
                      attr(CKA_UNWRAP, kFalse),
                      attr(CKA_DERIVE, kFalse),
                  },
                  13};
    if (value != nullptr)
        t.attrs[t.count++] = attrBytes(CKA_VALUE, value, valueLen);
    return t;
}

template <std::size_t N>
ByteView arrayView(const std::array<std::uint8_t, N>& a) noexcept {
    return ByteView(a.data(), N);
}

struct Be32 {
    explicit Be32(std::uint32_t v) noexcept { putBe32(b, v); }
    ByteView view() const noexcept { return ByteView(b, 4); }
    std::uint8_t b[4];
};
struct Be64 {
    explicit Be64(std::uint64_t v) noexcept { putBe64(b, v); }
    ByteView view() const noexcept { return ByteView(b, 8); }
    std::uint8_t b[8];
};

crypto::Fc easFc(EasKeyKind kind) noexcept {
    return kind == EasKeyKind::e2e ? crypto::Fc::kintE2e : crypto::Fc::kintEasPsk;
}

BlobPurpose easPurpose(EasKeyKind kind) noexcept {
    return kind == EasKeyKind::e2e ? BlobPurpose::kintE2e : BlobPurpose::kintEasPsk;
}

tl::unexpected<Error> badInput(std::string msg) {
    return makeError(HsmErrc::bad_input, std::move(msg));
}

Result<void> expectPurpose(const BlobBinding& b, BlobPurpose expected) {
    if (b.purpose != expected) {
        return badInput("binding purpose is " + std::string(purposeName(b.purpose)) +
                        ", this operation takes a " + std::string(purposeName(expected)) + " blob");
    }
    return {};
}

}  // namespace

namespace detail {

Error poolRefused(bool stopping) {
    if (stopping) {
        return Error{ErrorDomain::hsm, static_cast<int>(HsmErrc::shutting_down),
                     "the HSM vault is shutting down"};
    }
    return Error{ErrorDomain::hsm, static_cast<int>(HsmErrc::busy),
                 "HSM worker queue full: the token cannot keep up; shed load or add workers"};
}

}  // namespace detail

// ---------------------------------------------------------------------------------------------
// VaultOps

VaultOps::VaultOps(KeyVault& vault, Session session)
    : vault_(&vault), session_(std::move(session)), md_(EVP_MD_CTX_new()) {}

const Module& VaultOps::module() const noexcept {
    return *vault_->module_;
}

template <typename F>
auto VaultOps::recovering(F&& f) -> decltype(f()) {
    const std::uint64_t generation = vault_->cache_.generation();
    auto r = f();
    if (r || !isRecoverable(r.error()))
        return r;
    log::notice("hsm", "re-login after: " + r.error().message);
    auto rec = vault_->recover(generation);
    if (!rec)
        return decltype(f())(makeError(rec.error()));
    return f();
}

Result<CacheKey> VaultOps::cacheKeyOf(ByteView bindInput, ByteView tag) {
    CacheKey key{};
    unsigned int n = 0;
    const EVP_MD* sha256 = crypto::Provider::instance().sha256();
    if (!md_ || sha256 == nullptr || EVP_DigestInit_ex2(md_.get(), sha256, nullptr) != 1 ||
        EVP_DigestUpdate(md_.get(), bindInput.data(), bindInput.size()) != 1 ||
        EVP_DigestUpdate(md_.get(), tag.data(), tag.size()) != 1 ||
        EVP_DigestFinal_ex(md_.get(), key.data(), &n) != 1 || n != key.size()) {
        return makeError(HsmErrc::crypto, "SHA-256 of a blob failed (OpenSSL)");
    }
    return key;
}

Result<void> VaultOps::signBinding(ByteView input, std::uint8_t tag[kBlobTagSize]) {
    const Module& m = module();
    CK_MECHANISM mech{CKM_SHA256_HMAC, nullptr, 0};
    auto r = m.call<P11Fn::C_SignInit>(session_.get(), &mech, vault_->keys_.binding.load());
    if (!r)
        return r;
    CK_ULONG n = kBlobTagSize;
    r = m.call<P11Fn::C_Sign>(session_.get(), const_cast<std::uint8_t*>(input.data()),
                              static_cast<CK_ULONG>(input.size()), tag, &n);
    if (r && n != kBlobTagSize)
        return makeError(HsmErrc::pkcs11, "C_Sign (binding tag) returned " + std::to_string(n) +
                                              " octets, 32 expected");
    return r;
}

Result<void> VaultOps::verifyBinding(const BlobBinding& b, ByteView input, ByteView tag) {
    const Module& m = module();
    CK_MECHANISM mech{CKM_SHA256_HMAC, nullptr, 0};
    auto r = m.call<P11Fn::C_VerifyInit>(session_.get(), &mech, vault_->keys_.binding.load());
    if (!r)
        return r;
    const CK_RV rv = m.callRaw<P11Fn::C_Verify>(
        session_.get(), const_cast<std::uint8_t*>(input.data()),
        static_cast<CK_ULONG>(input.size()), const_cast<std::uint8_t*>(tag.data()),
        static_cast<CK_ULONG>(tag.size()));
    if (rv == CKR_OK)
        return {};
    if (rv == CKR_SIGNATURE_INVALID || rv == CKR_SIGNATURE_LEN_RANGE) {
        return makeError(HsmErrc::blob_binding,
                         std::string(purposeName(b.purpose)) + " blob for IMSI " + b.imsi +
                             " (version " + std::to_string(b.version) +
                             "): binding tag does not verify: the blob was altered or belongs to "
                             "another row (IMSI, purpose, version); refused before any unwrap");
    }
    return makeError(m.error(P11Fn::C_Verify, rv));
}

Result<Bytes> VaultOps::wrapObject(CK_OBJECT_HANDLE object) {
    CK_MECHANISM mech{ckMechanism(vault_->caps_.wrap), nullptr, 0};
    std::uint8_t out[kMaxWrapped];
    CK_ULONG n = sizeof out;
    auto r = module().call<P11Fn::C_WrapKey>(session_.get(), &mech, vault_->keys_.wrap.load(),
                                             object, out, &n);
    if (!r)
        return makeError(r.error());
    return Bytes(out, out + n);
}

Result<Bytes> VaultOps::finishBlob(const BlobHeader& header, ByteView payload, const BlobBinding& b,
                                   CacheKey* cacheKey) {
    Bytes blob = encodeBlobBody(header, payload);
    auto input = bindingInput(b, blob);
    if (!input)
        return makeError(input.error());
    std::uint8_t tag[kBlobTagSize];
    auto r = signBinding(*input, tag);
    if (!r)
        return makeError(r.error());
    if (cacheKey != nullptr) {
        auto key = cacheKeyOf(*input, ByteView(tag, kBlobTagSize));
        if (!key)
            return makeError(key.error());
        *cacheKey = *key;
    }
    blob.insert(blob.end(), tag, tag + kBlobTagSize);
    return blob;
}

Result<std::shared_ptr<const CachedKey>> VaultOps::keyFor(const KeyRef& ref, BlobPurpose expected) {
    if (auto p = expectPurpose(ref.binding, expected); !p)
        return makeError(p.error());
    auto view = parseBlob(ref.blob, expected);
    if (!view)
        return makeError(view.error());
    auto input = bindingInput(ref.binding, view->signedPart);
    if (!input)
        return makeError(input.error());
    auto key = cacheKeyOf(*input, view->tag);
    if (!key)
        return makeError(key.error());
    if (auto hit = vault_->cache_.find(*key))
        return hit;
    const std::uint64_t generation = vault_->cache_.generation();
    // The binding is checked before any unwrap: a blob moved to another row never reaches
    // C_UnwrapKey.
    if (auto v = verifyBinding(ref.binding, *input, view->tag); !v)
        return makeError(v.error());
    const bool pad = view->header.protection == BlobProtection::aesKeyWrapPad;
    if ((pad && !vault_->caps_.aesKeyWrapPad) || (!pad && !vault_->caps_.aesKeyWrap)) {
        return makeError(HsmErrc::mechanism_missing,
                         "the blob is wrapped with " +
                             ckmName(pad ? CKM_AES_KEY_WRAP_PAD : CKM_AES_KEY_WRAP) +
                             ", which token '" + vault_->tokenLabel() + "' does not offer");
    }
    CK_MECHANISM mech{pad ? CKM_AES_KEY_WRAP_PAD : CKM_AES_KEY_WRAP, nullptr, 0};
    KeyTemplate t = sessionKeyTemplate(expected == BlobPurpose::subscriberK, false, nullptr, 0);
    CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
    Result<void> r;
    {
        std::lock_guard<std::mutex> g(vault_->ownerMutex_);
        r = module().call<P11Fn::C_UnwrapKey>(
            vault_->owner_.get(), &mech, vault_->keys_.wrap.load(),
            const_cast<std::uint8_t*>(view->payload.data()),
            static_cast<CK_ULONG>(view->payload.size()), t.attrs.data(), t.count, &h);
    }
    if (!r)
        return makeError(r.error());
    auto entry =
        std::make_shared<const CachedKey>(CachedKey{ObjectHandle(vault_->ownerRef(), h), expected});
    vault_->cache_.insert(*key, entry, generation);
    return entry;
}

Result<BlobView> VaultOps::verifiedView(const KeyRef& ref, BlobPurpose expected) {
    if (auto p = expectPurpose(ref.binding, expected); !p)
        return makeError(p.error());
    auto view = parseBlob(ref.blob, expected);
    if (!view)
        return makeError(view.error());
    auto input = bindingInput(ref.binding, view->signedPart);
    if (!input)
        return makeError(input.error());
    if (auto v = verifyBinding(ref.binding, *input, view->tag); !v)
        return makeError(v.error());
    return view;
}

Result<Opc> VaultOps::decryptOpc(const BlobView& view) {
    const BlobView* v = &view;
    const Module& m = module();
    CK_MECHANISM mech{CKM_AES_CBC, const_cast<std::uint8_t*>(v->payload.data()), 16};
    auto r = m.call<P11Fn::C_DecryptInit>(session_.get(), &mech, vault_->keys_.data.load());
    if (!r)
        return makeError(r.error());
    Opc opc;
    CK_ULONG n = 16;
    r = m.call<P11Fn::C_Decrypt>(session_.get(), const_cast<std::uint8_t*>(v->payload.data() + 16),
                                 static_cast<CK_ULONG>(16), opc.data(), &n);
    if (!r)
        return makeError(r.error());
    if (n != 16)
        return makeError(HsmErrc::pkcs11, "C_Decrypt (OPc) returned a short block");
    return opc;
}

Result<Bytes> VaultOps::sealOpcRaw(const Opc& opc, const BlobBinding& binding) {
    if (auto p = expectPurpose(binding, BlobPurpose::opc); !p)
        return makeError(p.error());
    const Module& m = module();
    std::uint8_t payload[32];
    auto r = m.call<P11Fn::C_GenerateRandom>(session_.get(), payload, static_cast<CK_ULONG>(16));
    if (!r)
        return makeError(r.error());
    CK_MECHANISM mech{CKM_AES_CBC, payload, 16};
    r = m.call<P11Fn::C_EncryptInit>(session_.get(), &mech, vault_->keys_.data.load());
    if (!r)
        return makeError(r.error());
    CK_ULONG n = 16;
    r = m.call<P11Fn::C_Encrypt>(session_.get(), const_cast<std::uint8_t*>(opc.data()),
                                 static_cast<CK_ULONG>(16), payload + 16, &n);
    if (!r)
        return makeError(r.error());
    if (n != 16)
        return makeError(HsmErrc::pkcs11, "C_Encrypt (OPc) returned a short block");
    const BlobHeader h{BlobPurpose::opc, BlobProtection::aesCbcData, BlobKeyType::data, 16,
                       kTokenKeyGeneration};
    return finishBlob(h, ByteView(payload, sizeof payload), binding, nullptr);
}

Result<Key256> VaultOps::hmacUnder(CK_OBJECT_HANDLE key, ByteView s) {
    const Module& m = module();
    CK_MECHANISM mech{CKM_SHA256_HMAC, nullptr, 0};
    auto r = m.call<P11Fn::C_SignInit>(session_.get(), &mech, key);
    if (!r)
        return makeError(r.error());
    Key256 out;
    CK_ULONG n = static_cast<CK_ULONG>(out.size());
    r = m.call<P11Fn::C_Sign>(session_.get(), const_cast<std::uint8_t*>(s.data()),
                              static_cast<CK_ULONG>(s.size()), out.data(), &n);
    if (!r)
        return makeError(r.error());
    if (n != out.size())
        return makeError(HsmErrc::pkcs11, "C_Sign (HMAC-SHA-256) returned a short MAC");
    return out;
}

Result<VaultOps::Sealed> VaultOps::sealHmacKey(Key256& value, const BlobBinding& binding,
                                               bool keep) {
    const Module& m = module();
    const std::uint64_t generation = vault_->cache_.generation();
    KeyTemplate t = sessionKeyTemplate(false, true, value.data(), value.size());
    CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
    Result<void> r;
    if (keep) {
        // Kept objects are made through the owner session: they must outlive any worker.
        std::lock_guard<std::mutex> g(vault_->ownerMutex_);
        r = m.call<P11Fn::C_CreateObject>(vault_->owner_.get(), t.attrs.data(), t.count, &h);
    } else {
        r = m.call<P11Fn::C_CreateObject>(session_.get(), t.attrs.data(), t.count, &h);
    }
    // The key now lives in the token (or nowhere): its host copy goes at once.
    secureWipe(value.data(), value.size());
    if (!r)
        return makeError(r.error());
    ObjectHandle object(keep ? vault_->ownerRef() : session_.ref(), h);
    auto payload = wrapObject(h);
    if (!payload)
        return makeError(payload.error());
    const bool lockInPlace = keep && vault_->caps_.clearExtractable;
    if (lockInPlace) {
        CK_ATTRIBUTE off = attr(CKA_EXTRACTABLE, kFalse);
        r = m.call<P11Fn::C_SetAttributeValue>(session_.get(), h, &off, static_cast<CK_ULONG>(1));
        if (!r)
            return makeError(r.error());
    } else {
        object.reset();  // transient: destroyed as soon as it is wrapped
    }
    const BlobHeader header{binding.purpose, static_cast<BlobProtection>(vault_->caps_.wrap),
                            BlobKeyType::genericSecret, static_cast<std::uint8_t>(kHmacKeyLen),
                            kTokenKeyGeneration};
    CacheKey cacheKey{};
    auto blob = finishBlob(header, *payload, binding, lockInPlace ? &cacheKey : nullptr);
    if (!blob)
        return makeError(blob.error());
    Sealed sealed{std::move(*blob), nullptr};
    if (lockInPlace) {
        sealed.key =
            std::make_shared<const CachedKey>(CachedKey{std::move(object), binding.purpose});
        vault_->cache_.insert(cacheKey, sealed.key, generation);
    } else if (keep) {
        // The token cannot make an object non-extractable in place: use it through its blob.
        auto k = keyFor(KeyRef{sealed.blob, binding}, binding.purpose);
        if (!k)
            return makeError(k.error());
        sealed.key = std::move(*k);
    }
    return sealed;
}

Result<Key256> VaultOps::deriveUnder(const KeyRef& ref, BlobPurpose expected, crypto::Fc fc,
                                     std::initializer_list<ByteView> params) {
    auto key = keyFor(ref, expected);
    if (!key)
        return makeError(key.error());
    const Bytes s = crypto::kdfInput(static_cast<std::uint8_t>(fc), params);
    return hmacUnder((*key)->object.get(), s);
}

Result<Bytes> VaultOps::importK(const SubscriberK& k, const BlobBinding& binding) {
    if (auto p = expectPurpose(binding, BlobPurpose::subscriberK); !p)
        return makeError(p.error());
    return recovering([&]() -> Result<Bytes> {
        KeyTemplate t = sessionKeyTemplate(true, true, k.data(), k.size());
        CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
        auto r = module().call<P11Fn::C_CreateObject>(session_.get(), t.attrs.data(), t.count, &h);
        if (!r)
            return makeError(r.error());
        ObjectHandle transient(session_.ref(), h);
        auto payload = wrapObject(h);
        transient.reset();
        if (!payload)
            return makeError(payload.error());
        const BlobHeader header{BlobPurpose::subscriberK,
                                static_cast<BlobProtection>(vault_->caps_.wrap), BlobKeyType::aes,
                                16, kTokenKeyGeneration};
        return finishBlob(header, *payload, binding, nullptr);
    });
}

Result<Bytes> VaultOps::importKWrapped(ByteView wrappedK, std::string_view transportKeyLabel,
                                       WrapMechanism mechanism, const BlobBinding& binding) {
    if (auto p = expectPurpose(binding, BlobPurpose::subscriberK); !p)
        return makeError(p.error());
    if (wrappedK.empty() || wrappedK.size() > kMaxWrapped)
        return badInput("wrapped K has an impossible length");
    return recovering([&]() -> Result<Bytes> {
        const Module& m = module();
        std::array<CK_ATTRIBUTE, 2> find{
            attr(CKA_CLASS, kSecretClass),
            attrBytes(CKA_LABEL, transportKeyLabel.data(), transportKeyLabel.size())};
        auto found = session_.findObjects(find, 2);
        if (!found)
            return makeError(found.error());
        if (found->size() != 1) {
            return makeError(HsmErrc::key_missing,
                             "transport key '" + std::string(transportKeyLabel) + "' " +
                                 (found->empty() ? "not found" : "is not unique") + " on token '" +
                                 vault_->tokenLabel() +
                                 "': import the operator's transport key (CKA_UNWRAP) first");
        }
        CK_MECHANISM mech{ckMechanism(mechanism), nullptr, 0};
        KeyTemplate t = sessionKeyTemplate(true, true, nullptr, 0);
        CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
        auto r = m.call<P11Fn::C_UnwrapKey>(
            session_.get(), &mech, found->front(), const_cast<std::uint8_t*>(wrappedK.data()),
            static_cast<CK_ULONG>(wrappedK.size()), t.attrs.data(), t.count, &h);
        if (!r) {
            // SoftHSM answers a failed RFC 3394 integrity check with CKR_GENERAL_ERROR (measured):
            // when the token is otherwise healthy, the blob (or the transport key) is at fault.
            if (static_cast<HsmErrc>(r.error().code) == HsmErrc::token_failure &&
                vault_->checkHealth()) {
                return makeError(HsmErrc::unwrap_failed,
                                 "the transport blob does not unwrap under '" +
                                     std::string(transportKeyLabel) +
                                     "' (wrong transport key, wrong mechanism or a corrupted "
                                     "blob): " +
                                     r.error().message);
            }
            return recode(r.error(), static_cast<HsmErrc>(r.error().code),
                          "unwrapping the transport blob: ");
        }
        ObjectHandle transient(session_.ref(), h);
        auto payload = wrapObject(h);
        transient.reset();
        if (!payload)
            return makeError(payload.error());
        if (payload->size() != 24) {
            return makeError(HsmErrc::bad_input,
                             "the transport blob does not hold a 16-octet K (wrapped to " +
                                 std::to_string(payload->size()) + " octets)");
        }
        const BlobHeader header{BlobPurpose::subscriberK,
                                static_cast<BlobProtection>(vault_->caps_.wrap), BlobKeyType::aes,
                                16, kTokenKeyGeneration};
        return finishBlob(header, *payload, binding, nullptr);
    });
}

Result<Bytes> VaultOps::sealOpc(const Opc& opc, const BlobBinding& binding) {
    return recovering([&] { return sealOpcRaw(opc, binding); });
}

Result<Bytes> VaultOps::sealOpcFromOp(const Op& op, const KeyRef& k, const BlobBinding& binding) {
    if (auto p = expectPurpose(binding, BlobPurpose::opc); !p)
        return makeError(p.error());
    return recovering([&]() -> Result<Bytes> {
        auto key = keyFor(k, BlobPurpose::subscriberK);
        if (!key)
            return makeError(key.error());
        HsmAes128 ek(module(), session_.get(), (*key)->object.get(), vault_->caps_.milenage);
        auto opc = crypto::computeOpc(ek, op);
        auto fin = ek.finish();
        if (!opc)
            return makeError(opc.error());
        if (!fin)
            return makeError(fin.error());
        return sealOpcRaw(*opc, binding);
    });
}

Result<crypto::AuthVector> VaultOps::generateVector(const SubscriberRef& sub,
                                                    const crypto::Rand& rand,
                                                    const crypto::Sqn& sqn,
                                                    const crypto::Amf& amf) {
    crypto::AuthVector out{};
    auto r = withMilenage(sub, [&](crypto::BlockCipher& ek, const Opc& opc) -> Result<void> {
        auto v = crypto::generateVector(ek, opc, rand, sqn, amf);
        if (!v)
            return makeError(v.error());
        out = std::move(*v);
        return {};
    });
    if (!r)
        return makeError(r.error());
    return out;
}

Result<crypto::Sqn> VaultOps::recoverSqnMs(const SubscriberRef& sub, const crypto::Rand& rand,
                                           const crypto::Auts& auts) {
    crypto::Sqn out{};
    auto r = withMilenage(sub, [&](crypto::BlockCipher& ek, const Opc& opc) -> Result<void> {
        auto s = crypto::recoverSqnMs(ek, opc, rand, auts);
        if (!s)
            return makeError(s.error());
        out = *s;
        return {};
    });
    if (!r)
        return makeError(r.error());
    return out;
}

Result<void> VaultOps::withMilenage(
    const SubscriberRef& sub,
    const std::function<Result<void>(crypto::BlockCipher& ek, const Opc& opc)>& f) {
    if (auto v = parseBlob(sub.k.blob, BlobPurpose::subscriberK); !v)
        return makeError(v.error());
    if (auto v = parseBlob(sub.opc.blob, BlobPurpose::opc); !v)
        return makeError(v.error());
    return recovering([&]() -> Result<void> {
        // Both rows' bindings are checked before anything is decrypted or unwrapped.
        auto opcView = verifiedView(sub.opc, BlobPurpose::opc);
        if (!opcView)
            return makeError(opcView.error());
        auto key = keyFor(sub.k, BlobPurpose::subscriberK);
        if (!key)
            return makeError(key.error());
        auto opc = decryptOpc(*opcView);
        if (!opc)
            return makeError(opc.error());
        HsmAes128 ek(module(), session_.get(), (*key)->object.get(), vault_->caps_.milenage);
        auto r = f(ek, *opc);
        auto fin = ek.finish();
        if (!r)
            return r;
        return fin;
    });
}

Result<KeySet> VaultOps::createKeySet(const Key256& root, const KeySetSpec& spec) {
    if (auto p = expectPurpose(spec.kint, BlobPurpose::kint); !p)
        return makeError(p.error());
    if (spec.easKey != EasKeyKind::none) {
        if (auto p = expectPurpose(spec.easKeyBinding, easPurpose(spec.easKey)); !p)
            return makeError(p.error());
    }
    if ((spec.easKeyId || spec.easKey != EasKeyKind::none) && spec.easId.empty())
        return badInput("an EAS key or key identifier needs the EAS Id");
    return recovering([&]() -> Result<KeySet> {
        // R is in host memory already: KInt = KDF(R, 0xB0, HSE Id) runs in software, and the
        // result goes into the token at once.
        auto kint = crypto::deriveKInt(root, spec.hseId);
        if (!kint)
            return makeError(kint.error());
        auto sealed = sealHmacKey(*kint, spec.kint, true);
        if (!sealed)
            return makeError(sealed.error());
        KeySet out;
        out.kintBlob = std::move(sealed->blob);
        const CK_OBJECT_HANDLE h = sealed->key->object.get();
        const Be32 sid(spec.session ? spec.session->sessionId : 0);
        const Be64 nonce(spec.session ? spec.session->ueNonce : 0);
        if (spec.session) {
            auto ksess = hmacUnder(h, crypto::kdfInput(static_cast<std::uint8_t>(crypto::Fc::ksess),
                                                       {sid.view(), nonce.view()}));
            if (!ksess)
                return makeError(ksess.error());
            out.ksess = *ksess;
        }
        if (spec.easKeyId) {
            auto d = hmacUnder(h, crypto::kdfInput(static_cast<std::uint8_t>(crypto::Fc::easKeyId),
                                                   {textView(spec.easId)}));
            if (!d)
                return makeError(d.error());
            crypto::EasKeyId id;
            for (std::size_t i = 0; i < id.size(); ++i)
                id[i] = (*d)[i];
            out.easKeyId = id;
        }
        if (spec.easKey != EasKeyKind::none) {
            auto v = hmacUnder(h, crypto::kdfInput(static_cast<std::uint8_t>(easFc(spec.easKey)),
                                                   {textView(spec.easId)}));
            if (!v)
                return makeError(v.error());
            out.easKey = *v;
            auto e = sealHmacKey(*v, spec.easKeyBinding, spec.easKey == EasKeyKind::e2e);
            if (!e)
                return makeError(e.error());
            out.easKeyBlob = std::move(e->blob);
            if (spec.easKey == EasKeyKind::e2e && spec.session) {
                auto ke = hmacUnder(e->key->object.get(),
                                    crypto::kdfInput(static_cast<std::uint8_t>(crypto::Fc::ksess),
                                                     {sid.view(), nonce.view()}));
                if (!ke)
                    return makeError(ke.error());
                out.ksessE2e = *ke;
            }
        }
        if (spec.confirmation) {
            const Be32 csid(spec.confirmation->sessionId);
            auto kc = hmacUnder(
                h, crypto::kdfInput(static_cast<std::uint8_t>(crypto::Fc::keyConfirmation),
                                    {csid.view(), arrayView(spec.confirmation->rand)}));
            if (!kc)
                return makeError(kc.error());
            crypto::KeyConfirmation c;
            for (std::size_t i = 0; i < c.size(); ++i)
                c[i] = (*kc)[i];
            out.keyConfirmation = c;
        }
        return out;
    });
}

Result<Key256> VaultOps::deriveKSess(const KeyRef& kintOrE2e, std::uint32_t sessionId,
                                     std::uint64_t ueNonce) {
    const BlobPurpose p = kintOrE2e.binding.purpose;
    if (p != BlobPurpose::kint && p != BlobPurpose::kintE2e)
        return badInput("KSess is derived from a KInt or KInt_E2E blob");
    const Be32 sid(sessionId);
    const Be64 nonce(ueNonce);
    return recovering([&] {
        return deriveUnder(kintOrE2e, p, crypto::Fc::ksess, {sid.view(), nonce.view()});
    });
}

Result<crypto::EasKeyId> VaultOps::deriveEasKeyId(const KeyRef& kint, std::string_view easId) {
    if (easId.empty())
        return badInput("the EAS key identifier needs the EAS Id");
    return recovering([&]() -> Result<crypto::EasKeyId> {
        auto d = deriveUnder(kint, BlobPurpose::kint, crypto::Fc::easKeyId, {textView(easId)});
        if (!d)
            return makeError(d.error());
        crypto::EasKeyId id;
        for (std::size_t i = 0; i < id.size(); ++i)
            id[i] = (*d)[i];
        return id;
    });
}

Result<EasKey> VaultOps::createEasKey(const KeyRef& kint, EasKeyKind kind, std::string_view easId,
                                      const BlobBinding& binding) {
    if (kind == EasKeyKind::none || easId.empty())
        return badInput("an EAS key needs a kind (e2e or psk) and the EAS Id");
    if (auto p = expectPurpose(binding, easPurpose(kind)); !p)
        return makeError(p.error());
    return recovering([&]() -> Result<EasKey> {
        auto v = deriveUnder(kint, BlobPurpose::kint, easFc(kind), {textView(easId)});
        if (!v)
            return makeError(v.error());
        EasKey out;
        out.value = *v;
        auto sealed = sealHmacKey(*v, binding, kind == EasKeyKind::e2e);
        if (!sealed)
            return makeError(sealed.error());
        out.blob = std::move(sealed->blob);
        return out;
    });
}

Result<Key256> VaultOps::deriveEasKey(const KeyRef& kint, EasKeyKind kind, std::string_view easId) {
    if (kind == EasKeyKind::none || easId.empty())
        return badInput("an EAS key needs a kind (e2e or psk) and the EAS Id");
    return recovering(
        [&] { return deriveUnder(kint, BlobPurpose::kint, easFc(kind), {textView(easId)}); });
}

Result<crypto::KeyConfirmation> VaultOps::deriveKeyConfirmation(const KeyRef& kint,
                                                                std::uint32_t sessionId,
                                                                const crypto::Rand& rand) {
    const Be32 sid(sessionId);
    return recovering([&]() -> Result<crypto::KeyConfirmation> {
        auto d = deriveUnder(kint, BlobPurpose::kint, crypto::Fc::keyConfirmation,
                             {sid.view(), arrayView(rand)});
        if (!d)
            return makeError(d.error());
        crypto::KeyConfirmation c;
        for (std::size_t i = 0; i < c.size(); ++i)
            c[i] = (*d)[i];
        return c;
    });
}

Result<void> VaultOps::verifyBlob(const KeyRef& ref) {
    return recovering([&]() -> Result<void> {
        auto view = verifiedView(ref, ref.binding.purpose);
        if (!view)
            return makeError(view.error());
        return {};
    });
}

// ---------------------------------------------------------------------------------------------
// KeyVault

Result<std::unique_ptr<KeyVault>> KeyVault::connect(const HsmConfig& config) {
    auto selector = TokenSelector::parse(config.token);
    if (!selector)
        return makeError(selector.error());
    std::string modulePath = config.module;
    if (!selector->modulePath.empty()) {
        if (!modulePath.empty() && modulePath != selector->modulePath) {
            return makeError(HsmErrc::bad_config,
                             "hsm.module '" + modulePath + "' and the URI's module-path '" +
                                 selector->modulePath + "' differ: give one of them");
        }
        modulePath = selector->modulePath;
    }
    std::string pinFile = config.pinFile;
    if (!selector->pinSource.empty()) {
        if (!pinFile.empty() && pinFile != selector->pinSource) {
            return makeError(HsmErrc::bad_config,
                             "hsm.pin_file and the URI's pin-source differ: "
                             "give one of them");
        }
        pinFile = selector->pinSource;
    }
    // The PIN file is checked before anything is loaded: a bad file is a configuration error.
    if (auto pin = readPinFile(pinFile); !pin)
        return makeError(pin.error());
    std::unique_ptr<KeyVault> v(new KeyVault(config.cacheCapacity));
    v->pinFile_ = std::move(pinFile);
    v->selector_ = std::move(*selector);
    auto module = Module::load(modulePath);
    if (!module)
        return makeError(module.error());
    v->module_ = std::move(*module);
    v->module_->setContext(v->selector_.describe());
    auto slot = Slot::find(*v->module_, v->selector_);
    if (!slot)
        return makeError(slot.error());
    v->slot_ = std::move(*slot);
    v->module_->setContext("token '" + v->slot_->label() + "'");
    auto caps = probeMechanisms(*v->slot_, config.vendorMilenageMechanism);
    if (!caps)
        return makeError(caps.error());
    v->caps_ = *caps;
    auto owner = Session::open(*v->module_, v->slot_->id(), true);
    if (!owner)
        return makeError(owner.error());
    v->owner_ = std::move(*owner);
    std::lock_guard<std::mutex> g(v->ownerMutex_);
    if (auto r = v->login(); !r)
        return makeError(r.error());
    return v;
}

Result<void> KeyVault::login() {
    auto pin = readPinFile(pinFile_);
    if (!pin)
        return makeError(pin.error());
    auto r = owner_.login(pin->view());
    if (!r) {
        Error e = r.error();
        if (static_cast<HsmErrc>(e.code) == HsmErrc::pin_incorrect)
            e.message += " (PIN file '" + pinFile_ + "')";
        return makeError(std::move(e));
    }
    return {};
}

Result<void> KeyVault::findTokenKeys(bool check) {
    struct Want {
        std::string_view label;
        std::atomic<CK_OBJECT_HANDLE>* slot;
        CK_KEY_TYPE type;
        // usage attributes that must be true; every other usage must be false
        std::array<CK_ATTRIBUTE_TYPE, 2> usage;
    };
    const Want wants[] = {
        {kWrapKeyLabel, &keys_.wrap, CKK_AES, {CKA_WRAP, CKA_UNWRAP}},
        {kDataKeyLabel, &keys_.data, CKK_AES, {CKA_ENCRYPT, CKA_DECRYPT}},
        {kBindingKeyLabel, &keys_.binding, CKK_GENERIC_SECRET, {CKA_SIGN, CKA_VERIFY}},
    };
    for (const Want& w : wants) {
        std::array<CK_ATTRIBUTE, 3> find{attr(CKA_CLASS, kSecretClass), attr(CKA_TOKEN, kTrue),
                                         attrBytes(CKA_LABEL, w.label.data(), w.label.size())};
        auto found = owner_.findObjects(find, 2);
        if (!found)
            return makeError(found.error());
        if (found->empty()) {
            if (!check) {
                return makeError(HsmErrc::token_failure,
                                 "token '" + slot_->label() + "': token key '" +
                                     std::string(w.label) +
                                     "' is gone (token storage removed or token re-initialised): "
                                     "restore the token, then restart the service");
            }
            return makeError(HsmErrc::key_missing,
                             "token '" + slot_->label() + "' has no '" + std::string(w.label) +
                                 "': initialise the vault once with `best-hsectl hsm init`");
        }
        if (found->size() > 1) {
            return makeError(HsmErrc::token_key_unsafe,
                             "token '" + slot_->label() + "' holds several keys labelled '" +
                                 std::string(w.label) + "': remove the extra ones");
        }
        const CK_OBJECT_HANDLE h = found->front();
        if (check) {
            CK_BBOOL sensitive = CK_FALSE, extractable = CK_TRUE;
            CK_KEY_TYPE type = 0;
            CK_BBOOL usage[7] = {};
            const CK_ATTRIBUTE_TYPE usageTypes[7] = {CKA_WRAP, CKA_UNWRAP, CKA_ENCRYPT, CKA_DECRYPT,
                                                     CKA_SIGN, CKA_VERIFY, CKA_DERIVE};
            std::array<CK_ATTRIBUTE, 10> q{attrBytes(CKA_SENSITIVE, &sensitive, 1),
                                           attrBytes(CKA_EXTRACTABLE, &extractable, 1),
                                           attrBytes(CKA_KEY_TYPE, &type, sizeof type)};
            for (std::size_t i = 0; i < 7; ++i)
                q[3 + i] = attrBytes(usageTypes[i], &usage[i], 1);
            auto r = module_->call<P11Fn::C_GetAttributeValue>(owner_.get(), h, q.data(),
                                                               static_cast<CK_ULONG>(q.size()));
            if (!r)
                return r;
            std::string problem;
            if (sensitive != CK_TRUE)
                problem = "is not sensitive";
            else if (extractable != CK_FALSE)
                problem = "is extractable";
            else if (type != w.type)
                problem = "has the wrong key type";
            for (std::size_t i = 0; i < 7 && problem.empty(); ++i) {
                const bool wanted = usageTypes[i] == w.usage[0] || usageTypes[i] == w.usage[1];
                if ((usage[i] == CK_TRUE) != wanted)
                    problem =
                        wanted ? "lacks a usage its role needs" : "allows a usage outside its role";
            }
            if (problem.empty() && w.slot == &keys_.wrap) {
                auto p = checkWrapKeyLocked(h);
                if (!p)
                    return makeError(p.error());
                problem = *p;
            }
            if (!problem.empty()) {
                return makeError(HsmErrc::token_key_unsafe,
                                 "token key '" + std::string(w.label) + "' on token '" +
                                     slot_->label() + "' " + problem +
                                     ": refusing it; re-create the token keys with `best-hsectl "
                                     "hsm init` on a fresh token");
            }
        }
        CK_OBJECT_HANDLE use = h;
        std::array<CK_ATTRIBUTE, 2> asSessionObject{attr(CKA_TOKEN, kFalse),
                                                    attr(CKA_MODIFIABLE, kFalse)};
        CK_OBJECT_HANDLE copy = CK_INVALID_HANDLE;
        if (module_->callRaw<P11Fn::C_CopyObject>(owner_.get(), h, asSessionObject.data(),
                                                  CK_ULONG{2}, &copy) == CKR_OK) {
            // No lock in the ref: copies are replaced and destroyed with ownerMutex_ held.
            keyCopies_[static_cast<std::size_t>(&w - wants)] = ObjectHandle(owner_.ref(), copy);
            use = copy;
        }
        if (w.slot == &keys_.wrap)
            tokenWrapKey_ = h;
        w.slot->store(use);
    }
    caps_.tokenKeyCopies = 0;
    for (const ObjectHandle& c : keyCopies_)
        caps_.tokenKeyCopies += c.isValid() ? 1 : 0;
    return {};
}

Result<std::string> KeyVault::checkWrapKeyLocked(CK_OBJECT_HANDLE h) {
    // Not modifiable, so its unwrap template can never be relaxed ...
    CK_BBOOL modifiable = CK_TRUE;
    CK_ATTRIBUTE m = attrBytes(CKA_MODIFIABLE, &modifiable, 1);
    auto r = module_->call<P11Fn::C_GetAttributeValue>(owner_.get(), h, &m, CK_ULONG{1});
    if (!r)
        return makeError(r.error());
    if (modifiable != CK_FALSE)
        return std::string("is modifiable (its unwrap template could be changed)");
    // ... and the template makes every key it unwraps non-extractable.
    CK_ATTRIBUTE t = attrBytes(CKA_UNWRAP_TEMPLATE, nullptr, 0);
    if (module_->callRaw<P11Fn::C_GetAttributeValue>(owner_.get(), h, &t, CK_ULONG{1}) != CKR_OK ||
        t.ulValueLen == 0 || t.ulValueLen == CK_UNAVAILABLE_INFORMATION ||
        t.ulValueLen % sizeof(CK_ATTRIBUTE) != 0) {
        return std::string("has no unwrap template");
    }
    std::vector<CK_ATTRIBUTE> items(t.ulValueLen / sizeof(CK_ATTRIBUTE));
    t.pValue = items.data();
    if (module_->callRaw<P11Fn::C_GetAttributeValue>(owner_.get(), h, &t, CK_ULONG{1}) != CKR_OK)
        return std::string("has an unreadable unwrap template");
    std::vector<CK_BBOOL> values(items.size(), CK_TRUE);
    for (std::size_t i = 0; i < items.size(); ++i) {
        if (items[i].ulValueLen != sizeof(CK_BBOOL))
            items[i].pValue = nullptr;  // only booleans are read back
        else
            items[i].pValue = &values[i];
    }
    if (module_->callRaw<P11Fn::C_GetAttributeValue>(owner_.get(), h, &t, CK_ULONG{1}) != CKR_OK)
        return std::string("has an unreadable unwrap template");
    for (std::size_t i = 0; i < items.size(); ++i) {
        if (items[i].type == CKA_EXTRACTABLE && items[i].pValue != nullptr && values[i] == CK_FALSE)
            return std::string();
    }
    return std::string("has an unwrap template that does not force CKA_EXTRACTABLE false");
}

Result<void> KeyVault::makeProbeKey() {
    CK_MECHANISM gen{CKM_AES_KEY_GEN, nullptr, 0};
    std::array<CK_ATTRIBUTE, 9> t{
        attr(CKA_CLASS, kSecretClass),
        attr(CKA_KEY_TYPE, kAesType),
        attr(CKA_TOKEN, kFalse),
        attr(CKA_PRIVATE, kTrue),
        attr(CKA_SENSITIVE, kTrue),
        attr(CKA_EXTRACTABLE, kTrue),
        attr(CKA_ENCRYPT, kTrue),
        attr(CKA_VALUE_LEN, kAes128Len),
        attrBytes(CKA_LABEL, kProbeKeyLabel.data(), kProbeKeyLabel.size())};
    CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
    auto r = module_->call<P11Fn::C_GenerateKey>(owner_.get(), &gen, t.data(),
                                                 static_cast<CK_ULONG>(t.size()), &h);
    if (!r)
        return r;
    // No lock in the ref: the probe key is only used and destroyed with ownerMutex_ held.
    probeKey_ = ObjectHandle(owner_.ref(), h);
    return {};
}

Result<void> KeyVault::functionalProbe() {
    std::lock_guard<std::mutex> g(ownerMutex_);
    const Module& m = *module_;
    const CK_SESSION_HANDLE s = owner_.get();
    // E_K under the probe key, single-part: the reference.
    auto encryptOne = [&](CK_OBJECT_HANDLE key, const std::uint8_t* in,
                          std::uint8_t* out) -> Result<void> {
        CK_MECHANISM ecb{CKM_AES_ECB, nullptr, 0};
        auto r = m.call<P11Fn::C_EncryptInit>(s, &ecb, key);
        if (!r)
            return r;
        CK_ULONG n = 16;
        return m.call<P11Fn::C_Encrypt>(s, const_cast<std::uint8_t*>(in), static_cast<CK_ULONG>(16),
                                        out, &n);
    };
    const std::uint8_t blockA[16] = {0x01};
    const std::uint8_t blockB[16] = {0x02};
    std::uint8_t refA[16], refB[16];
    if (auto r = encryptOne(probeKey_.get(), blockA, refA); !r)
        return r;
    if (auto r = encryptOne(probeKey_.get(), blockB, refB); !r)
        return r;

    // 1. Wrap/unwrap round trip: the unwrapped copy must encrypt like the original.
    auto roundTrip = [&](WrapMechanism w) -> bool {
        CK_MECHANISM mech{ckMechanism(w), nullptr, 0};
        std::uint8_t wrapped[kMaxWrapped];
        CK_ULONG n = sizeof wrapped;
        if (!m.call<P11Fn::C_WrapKey>(s, &mech, keys_.wrap.load(), probeKey_.get(), wrapped, &n))
            return false;
        KeyTemplate t = sessionKeyTemplate(true, false, nullptr, 0);
        CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
        if (!m.call<P11Fn::C_UnwrapKey>(s, &mech, keys_.wrap.load(), wrapped, n, t.attrs.data(),
                                        t.count, &h))
            return false;
        ObjectHandle copy(owner_.ref(), h);
        std::uint8_t out[16];
        if (!encryptOne(copy.get(), blockA, out))
            return false;
        return CRYPTO_memcmp(out, refA, 16) == 0;
    };
    if (caps_.aesKeyWrap && roundTrip(WrapMechanism::aesKeyWrap)) {
        caps_.wrap = WrapMechanism::aesKeyWrap;
    } else if (caps_.aesKeyWrapPad && roundTrip(WrapMechanism::aesKeyWrapPad)) {
        caps_.wrap = WrapMechanism::aesKeyWrapPad;
        caps_.aesKeyWrap = false;
    } else {
        return makeError(HsmErrc::mechanism_missing,
                         "token '" + slot_->label() +
                             "': no AES key wrap mechanism survives a wrap/unwrap round trip "
                             "under the wrap key: use a token with working CKM_AES_KEY_WRAP(_PAD)");
    }

    // 2. Multi-part ECB: one C_EncryptInit, one C_EncryptUpdate per block, as Milenage uses it.
    {
        HsmAes128 multi(m, s, probeKey_.get(), MilenagePath::ecbMultiPart);
        std::uint8_t outA[16], outB[16];
        const bool ok = multi.encryptBlock(blockA, outA) && multi.encryptBlock(blockB, outB) &&
                        multi.finish() && CRYPTO_memcmp(outA, refA, 16) == 0 &&
                        CRYPTO_memcmp(outB, refB, 16) == 0;
        caps_.milenage = ok ? MilenagePath::ecbMultiPart : MilenagePath::ecbSinglePart;
    }

    // 3. HMAC under a 32-octet session key, and making a wrapped key non-extractable in place.
    {
        std::uint8_t value[kHmacKeyLen] = {0x5a};
        KeyTemplate t = sessionKeyTemplate(false, true, value, sizeof value);
        CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
        auto r = m.call<P11Fn::C_CreateObject>(s, t.attrs.data(), t.count, &h);
        if (!r)
            return r;
        ObjectHandle key(owner_.ref(), h);
        CK_MECHANISM hmac{CKM_SHA256_HMAC, nullptr, 0};
        std::uint8_t mac[32];
        CK_ULONG n = sizeof mac;
        r = m.call<P11Fn::C_SignInit>(s, &hmac, h);
        if (r)
            r = m.call<P11Fn::C_Sign>(s, value, static_cast<CK_ULONG>(1), mac, &n);
        if (!r) {
            return makeError(
                HsmErrc::mechanism_missing,
                "token '" + slot_->label() +
                    "': HMAC-SHA-256 under a 32-octet key fails: " + r.error().message);
        }
        CK_ATTRIBUTE off = attr(CKA_EXTRACTABLE, kFalse);
        caps_.clearExtractable =
            m.callRaw<P11Fn::C_SetAttributeValue>(s, h, &off, static_cast<CK_ULONG>(1)) == CKR_OK;
        if (caps_.clearExtractable) {
            std::uint8_t wrapped[kMaxWrapped];
            CK_ULONG wn = sizeof wrapped;
            CK_MECHANISM mech{ckMechanism(caps_.wrap), nullptr, 0};
            // Once cleared, the token must refuse to wrap it.
            caps_.clearExtractable =
                m.callRaw<P11Fn::C_WrapKey>(s, &mech, keys_.wrap.load(), h, wrapped, &wn) != CKR_OK;
        }
        // And the binding key signs.
        n = sizeof mac;
        r = m.call<P11Fn::C_SignInit>(s, &hmac, keys_.binding.load());
        if (r)
            r = m.call<P11Fn::C_Sign>(s, value, static_cast<CK_ULONG>(1), mac, &n);
        if (!r)
            return r;
    }
    return {};
}

Result<std::unique_ptr<KeyVault>> KeyVault::open(const HsmConfig& config) {
    auto v = connect(config);
    if (!v)
        return makeError(v.error());
    KeyVault& vault = **v;
    {
        std::lock_guard<std::mutex> g(vault.ownerMutex_);
        if (auto r = vault.findTokenKeys(true); !r)
            return makeError(r.error());
        if (auto r = vault.makeProbeKey(); !r)
            return makeError(r.error());
    }
    if (auto r = vault.functionalProbe(); !r)
        return makeError(r.error());
    vault.pool_ = std::make_unique<WorkerPool<VaultOps>>(config.queueCapacity);
    const unsigned workers = config.workers == 0 ? 1 : config.workers;
    for (unsigned i = 0; i < workers; ++i) {
        auto ops = vault.openOps();
        if (!ops)
            return makeError(ops.error());
        if (auto r = vault.pool_->addWorker(std::make_unique<VaultOps>(std::move(*ops))); !r)
            return makeError(r.error());
    }
    log::info("hsm", "token '" + vault.slot_->label() + "' (" + vault.module_->path() +
                         "): " + vault.caps_.describe() + "; " + std::to_string(workers) +
                         " workers, stacks " +
                         (vault.workerStacksLocked() ? "locked" : "NOT locked"));
    return v;
}

Result<void> KeyVault::initTokenKeys(const HsmConfig& config) {
    auto v = connect(config);
    if (!v)
        return makeError(v.error());
    KeyVault& vault = **v;
    if (!vault.caps_.genericKeyGen) {
        return makeError(
            HsmErrc::mechanism_missing,
            "token '" + vault.slot_->label() +
                "' lacks CKM_GENERIC_SECRET_KEY_GEN: needed to create the binding key");
    }
    std::lock_guard<std::mutex> g(vault.ownerMutex_);
    const Module& m = *vault.module_;
    for (std::string_view label : {kWrapKeyLabel, kDataKeyLabel, kBindingKeyLabel}) {
        std::array<CK_ATTRIBUTE, 1> find{attrBytes(CKA_LABEL, label.data(), label.size())};
        auto found = vault.owner_.findObjects(find, 1);
        if (!found)
            return makeError(found.error());
        if (!found->empty()) {
            return makeError(HsmErrc::key_exists, "token '" + vault.slot_->label() +
                                                      "' already holds '" + std::string(label) +
                                                      "': the vault is initialised; nothing done");
        }
    }
    const CK_BBOOL unwrapTemplateExtractable = CK_FALSE;
    const CK_BBOOL unwrapTemplateSensitive = CK_TRUE;
    // Keys unwrapped under the wrap key can never be extractable (checked by the token).
    std::array<CK_ATTRIBUTE, 2> unwrapTemplate{attr(CKA_EXTRACTABLE, unwrapTemplateExtractable),
                                               attr(CKA_SENSITIVE, unwrapTemplateSensitive)};
    struct Spec {
        std::string_view label;
        CK_MECHANISM_TYPE mechanism;
        const CK_KEY_TYPE* type;
        const CK_ULONG* length;
        bool wrap, crypt, sign;
    };
    const Spec specs[] = {
        {kWrapKeyLabel, CKM_AES_KEY_GEN, &kAesType, &kAes256Len, true, false, false},
        {kDataKeyLabel, CKM_AES_KEY_GEN, &kAesType, &kAes256Len, false, true, false},
        {kBindingKeyLabel, CKM_GENERIC_SECRET_KEY_GEN, &kGenericType, &kHmacKeyLen, false, false,
         true},
    };
    std::vector<CK_OBJECT_HANDLE> made;
    for (const Spec& s : specs) {
        const CK_BBOOL& wrap = s.wrap ? kTrue : kFalse;
        const CK_BBOOL& crypt = s.crypt ? kTrue : kFalse;
        const CK_BBOOL& sign = s.sign ? kTrue : kFalse;
        std::array<CK_ATTRIBUTE, 18> t{
            attr(CKA_CLASS, kSecretClass),
            attr(CKA_KEY_TYPE, *s.type),
            attr(CKA_TOKEN, kTrue),
            attr(CKA_PRIVATE, kTrue),
            attr(CKA_SENSITIVE, kTrue),
            attr(CKA_EXTRACTABLE, kFalse),
            // The wrap key is not modifiable (its unwrap template must never change); the data
            // and binding keys stay modifiable so that SoftHSM lets the vault use session copies
            // of them (their roles are checked at every start).
            attr(CKA_MODIFIABLE, s.wrap ? kFalse : kTrue),
            attrBytes(CKA_LABEL, s.label.data(), s.label.size()),
            attrBytes(CKA_ID, s.label.data(), s.label.size()),
            attr(CKA_VALUE_LEN, *s.length),
            attr(CKA_WRAP, wrap),
            attr(CKA_UNWRAP, wrap),
            attr(CKA_ENCRYPT, crypt),
            attr(CKA_DECRYPT, crypt),
            attr(CKA_SIGN, sign),
            attr(CKA_VERIFY, sign),
            attr(CKA_DERIVE, kFalse),
            attrBytes(CKA_UNWRAP_TEMPLATE, unwrapTemplate.data(),
                      sizeof(CK_ATTRIBUTE) * unwrapTemplate.size()),
        };
        const CK_ULONG count = s.wrap ? 18 : 17;
        CK_MECHANISM mech{s.mechanism, nullptr, 0};
        CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
        auto r = m.call<P11Fn::C_GenerateKey>(vault.owner_.get(), &mech, t.data(), count, &h);
        if (!r) {
            // Leave the token as it was, so init can run again.
            for (CK_OBJECT_HANDLE old : made)
                (void)m.callRaw<P11Fn::C_DestroyObject>(vault.owner_.get(), old);
            return r;
        }
        made.push_back(h);
    }
    log::notice("hsm",
                "token '" + vault.slot_->label() + "': created the wrap, data and binding keys");
    return {};
}

KeyVault::~KeyVault() {
    pool_.reset();  // queued jobs finish; worker sessions close
    cache_.clear();
    std::lock_guard<std::mutex> g(ownerMutex_);
    probeKey_.reset();
    for (ObjectHandle& c : keyCopies_)
        c.reset();
    owner_.reset();
}

Result<VaultOps> KeyVault::openOps() {
    auto s = Session::open(*module_, slot_->id(), false);
    if (!s)
        return makeError(s.error());
    return VaultOps(*this, std::move(*s));
}

Result<void> KeyVault::checkHealth() {
    auto failed = [this](const Error& e) {
        return recode(e, HsmErrc::token_failure,
                      "token '" + slot_->label() + "' failed its health probe: ");
    };
    auto info = slot_->tokenInfo();
    if (!info)
        return failed(info.error());
    std::lock_guard<std::mutex> g(ownerMutex_);
    CK_MECHANISM mech{ckMechanism(caps_.wrap), nullptr, 0};
    std::uint8_t wrapped[kMaxWrapped];
    CK_ULONG n = sizeof wrapped;
    // The token object itself, not its session copy: only it notices a token gone.
    auto r = module_->call<P11Fn::C_WrapKey>(owner_.get(), &mech, tokenWrapKey_, probeKey_.get(),
                                             wrapped, &n);
    if (!r)
        return failed(r.error());
    return {};
}

Result<void> KeyVault::relogin() {
    {
        std::lock_guard<std::mutex> g(ownerMutex_);
        if (auto r = login(); !r)
            return r;
        for (ObjectHandle& c : keyCopies_)
            c.reset();
        if (auto r = findTokenKeys(false); !r)
            return r;
        probeKey_.reset();
        if (auto r = makeProbeKey(); !r)
            return r;
    }
    cache_.clear();
    relogins_.fetch_add(1);
    log::notice("hsm", "token '" + slot_->label() + "': logged in again; key cache emptied");
    return {};
}

Result<void> KeyVault::recover(std::uint64_t observedGeneration) {
    std::lock_guard<std::mutex> g(recoverMutex_);
    if (cache_.generation() != observedGeneration)
        return {};  // another worker already logged in again
    return relogin();
}

}  // namespace best::hsm
