// The BEST key hierarchy, profile section 6, in software.
#include "crypto/key_hierarchy.h"

#include <cstddef>

namespace best::crypto {

namespace {

ByteView textView(std::string_view s) noexcept {
    return ByteView(reinterpret_cast<const std::uint8_t*>(s.data()), s.size());
}

ByteView byteView(const std::uint8_t& b) noexcept {
    return ByteView(&b, 1);
}

template <std::size_t N>
ByteView arrayView(const std::array<std::uint8_t, N>& a) noexcept {
    return ByteView(a.data(), N);
}

// CK || IK as one 256-bit key (wiped when it goes out of scope).
Key256 ckIk(const Ck& ck, const Ik& ik) noexcept {
    Key256 k;
    for (std::size_t i = 0; i < 16; ++i) {
        k[i] = ck[i];
        k[16 + i] = ik[i];
    }
    return k;
}

}  // namespace

Result<std::string> servingNetworkName(const PlmnId& plmn) {
    // TS 24.008 10.5.1.13: octet 1 = MCC2|MCC1, octet 2 = MNC3|MCC3, octet 3 = MNC2|MNC1
    // (high nibble | low nibble); MNC3 = F for a two-digit MNC.
    const std::uint8_t mcc1 = plmn[0] & 0x0F, mcc2 = plmn[0] >> 4, mcc3 = plmn[1] & 0x0F;
    const std::uint8_t mnc3 = plmn[1] >> 4, mnc1 = plmn[2] & 0x0F, mnc2 = plmn[2] >> 4;
    if (mcc1 > 9 || mcc2 > 9 || mcc3 > 9 || mnc1 > 9 || mnc2 > 9 || (mnc3 > 9 && mnc3 != 0x0F)) {
        return makeError(CryptoErrc::bad_value, "PLMN id has a non-BCD digit");
    }
    const auto digit = [](std::uint8_t d) { return static_cast<char>('0' + d); };
    std::string name = "5G:mnc";
    if (mnc3 == 0x0F) {
        name += '0';  // two-digit MNC, zero-padded to three digits (TS 24.501 9.12.1)
        name += digit(mnc1);
        name += digit(mnc2);
    } else {
        name += digit(mnc1);
        name += digit(mnc2);
        name += digit(mnc3);
    }
    name += ".mcc";
    name += digit(mcc1);
    name += digit(mcc2);
    name += digit(mcc3);
    name += ".3gppnetwork.org";
    return name;
}

Result<Key256> deriveRoot(KeyAgreement ka, const Ck& ck, const Ik& ik, const PlmnId& plmn,
                          const Ak& sqnXorAk) {
    const Key256 key = ckIk(ck, ik);
    switch (ka) {
        case KeyAgreement::umts:
            return key;
        case KeyAgreement::eps:
            return kdf(key.view(), Fc::kasme, {arrayView(plmn), arrayView(sqnXorAk)});
        case KeyAgreement::fiveG: {
            auto snn = servingNetworkName(plmn);
            if (!snn)
                return makeError(snn.error());
            return kdf(key.view(), Fc::khse, {textView(*snn), arrayView(sqnXorAk)});
        }
    }
    return makeError(CryptoErrc::bad_value, "unknown key agreement");
}

Result<Key256> deriveKInt(const Key256& root, std::string_view hseId) {
    return kdf(root.view(), Fc::kint, {textView(hseId)});
}

Result<Key256> deriveKIntE2e(const Key256& kint, std::string_view easId) {
    return kdf(kint.view(), Fc::kintE2e, {textView(easId)});
}

Result<Key256> deriveKIntEasPsk(const Key256& kint, std::string_view easId) {
    return kdf(kint.view(), Fc::kintEasPsk, {textView(easId)});
}

Result<EasKeyId> deriveEasKeyId(const Key256& kint, std::string_view easId) {
    auto out = kdf(kint.view(), Fc::easKeyId, {textView(easId)});
    if (!out)
        return makeError(out.error());
    EasKeyId id;
    for (std::size_t i = 0; i < id.size(); ++i)
        id[i] = (*out)[i];  // first 16 octets
    return id;
}

Result<Key256> deriveKSess(const Key256& kint, std::uint32_t sessionId, std::uint64_t ueNonce) {
    std::uint8_t sid[4];
    std::uint8_t nonce[8];
    putBe32(sid, sessionId);
    putBe64(nonce, ueNonce);
    return kdf(kint.view(), Fc::ksess, {ByteView(sid), ByteView(nonce)});
}

Result<Key128> deriveSessionKey(const Key256& ksess, KeyDistinguisher d, std::uint8_t algId) {
    const std::uint8_t dist = static_cast<std::uint8_t>(d);
    auto out = kdf(ksess.view(), Fc::sessionKey, {byteView(dist), byteView(algId)});
    if (!out)
        return makeError(out.error());
    return Key128(out->view().subspan(16, 16));  // last 16 octets; *out wipes itself
}

Result<SessionKeys> deriveSessionKeys(const Key256& ksess, std::uint8_t intAlg,
                                      std::uint8_t encAlg) {
    SessionKeys keys;
    auto cpEnc = deriveSessionKey(ksess, KeyDistinguisher::cpEnc, encAlg);
    if (!cpEnc)
        return makeError(cpEnc.error());
    auto cpInt = deriveSessionKey(ksess, KeyDistinguisher::cpInt, intAlg);
    if (!cpInt)
        return makeError(cpInt.error());
    auto upEnc = deriveSessionKey(ksess, KeyDistinguisher::upEnc, encAlg);
    if (!upEnc)
        return makeError(upEnc.error());
    auto upInt = deriveSessionKey(ksess, KeyDistinguisher::upInt, intAlg);
    if (!upInt)
        return makeError(upInt.error());
    keys.cpEnc = *cpEnc;
    keys.cpInt = *cpInt;
    keys.upEnc = *upEnc;
    keys.upInt = *upInt;
    return keys;
}

Result<KeyConfirmation> deriveKeyConfirmation(const Key256& newKint, std::uint32_t sessionId,
                                              const Rand& rand) {
    std::uint8_t sid[4];
    putBe32(sid, sessionId);
    auto out = kdf(newKint.view(), Fc::keyConfirmation, {ByteView(sid), arrayView(rand)});
    if (!out)
        return makeError(out.error());
    KeyConfirmation kc;
    for (std::size_t i = 0; i < kc.size(); ++i)
        kc[i] = (*out)[i];  // first 8 octets
    return kc;
}

}  // namespace best::crypto
