#include "emsdp/ie.h"

#include <openssl/evp.h>

#include "crypto/ossl.h"

namespace best::emsdp {

bool isDefinedTag(std::uint8_t tag) noexcept {
    switch (tag) {
        case 0x01:
        case 0x02:
        case 0x03:
        case 0x04:
        case 0x05:
        case 0x06:
        case 0x10:
        case 0x11:
        case 0x12:
        case 0x13:
        case 0x14:
        case 0x15:
        case 0x16:
        case 0x18:
        case 0x19:
        case 0x1A:
        case 0x20:
        case 0x21:
            return true;
        default:
            return false;
    }
}

std::string_view tagName(Tag t) noexcept {
    switch (t) {
        case Tag::imsi:
            return "IMSI";
        case Tag::suci:
            return "SUCI";
        case Tag::ueConfiguration:
            return "UE configuration";
        case Tag::enterpriseSetup:
            return "Enterprise setup";
        case Tag::servingNetwork:
            return "Serving network";
        case Tag::ueNonce:
            return "UE nonce";
        case Tag::rand:
            return "RAND";
        case Tag::autn:
            return "AUTN";
        case Tag::auts:
            return "AUTS";
        case Tag::keyAgreementUsed:
            return "Key agreement used";
        case Tag::hseConfiguration:
            return "HSE configuration";
        case Tag::serviceParameters:
            return "Service parameters";
        case Tag::requestChecksum:
            return "Request checksum";
        case Tag::newKeyId:
            return "New key ID";
        case Tag::keyConfirmation:
            return "Key confirmation";
        case Tag::refreshOrigin:
            return "Refresh origin";
        case Tag::cause:
            return "Cause";
        case Tag::backOff:
            return "Back-off";
    }
    return "unknown";
}

SizeRule sizeRuleOf(Tag t) noexcept {
    switch (t) {
        case Tag::imsi:
            return {8, 8};
        case Tag::suci:
            return {0, 255};
        case Tag::ueConfiguration:
            return {5, 255};
        case Tag::enterpriseSetup:
            return {1, 64};
        case Tag::servingNetwork:
            return {3, 3};
        case Tag::ueNonce:
            return {8, 8};
        case Tag::rand:
            return {16, 16};
        case Tag::autn:
            return {16, 16};
        case Tag::auts:
            return {14, 14};
        case Tag::keyAgreementUsed:
            return {1, 1};
        case Tag::hseConfiguration:
            return {6, 69};
        case Tag::serviceParameters:
            return {6, 6};
        case Tag::requestChecksum:
            return {8, 8};
        case Tag::newKeyId:
            return {1, 1};
        case Tag::keyConfirmation:
            return {8, 8};
        case Tag::refreshOrigin:
            return {1, 1};
        case Tag::cause:
            return {1, 1};
        case Tag::backOff:
            return {2, 2};
    }
    return {0, 0};
}

// ---- IMSI -------------------------------------------------------------------------------------

Result<Imsi> Imsi::fromDigits(std::string_view digits) {
    if (digits.size() < 6 || digits.size() > 15)
        return makeError(EmsdpErrc::invalid_value, "IMSI must have 6..15 digits");
    for (char c : digits) {
        if (c < '0' || c > '9')
            return makeError(EmsdpErrc::invalid_value, "IMSI digits must be 0-9");
    }
    Imsi imsi;
    imsi.octets.fill(0xFF);
    const bool odd = digits.size() % 2 == 1;
    imsi.octets[0] = static_cast<std::uint8_t>(((digits[0] - '0') << 4) | (odd ? 0x08 : 0x00) | 1);
    for (std::size_t i = 1; i < digits.size(); ++i) {
        const auto d = static_cast<std::uint8_t>(digits[i] - '0');
        std::uint8_t& o = imsi.octets[(i + 1) / 2];
        if (i % 2 == 1)
            o = static_cast<std::uint8_t>((o & 0xF0) | d);  // low nibble first
        else
            o = static_cast<std::uint8_t>((o & 0x0F) | (d << 4));
    }
    return imsi;
}

Result<std::string> Imsi::digits() const {
    if ((octets[0] & 0x07) != 0x01)
        return makeError(EmsdpErrc::invalid_value, "IMSI type is not 001");
    const std::uint8_t first = octets[0] >> 4;
    if (first > 9)
        return makeError(EmsdpErrc::invalid_value, "IMSI digit is not BCD");
    std::string out(1, static_cast<char>('0' + first));
    bool ended = false;
    for (std::size_t i = 1; i < octets.size(); ++i) {
        const std::uint8_t nibbles[2] = {static_cast<std::uint8_t>(octets[i] & 0x0F),
                                         static_cast<std::uint8_t>(octets[i] >> 4)};
        for (std::uint8_t d : nibbles) {
            if (d == 0x0F) {
                ended = true;
            } else if (ended || d > 9) {
                return makeError(EmsdpErrc::invalid_value, "IMSI digit is not BCD");
            } else {
                out.push_back(static_cast<char>('0' + d));
            }
        }
    }
    const bool oddFlag = (octets[0] & 0x08) != 0;
    if (oddFlag != (out.size() % 2 == 1))
        return makeError(EmsdpErrc::invalid_value, "IMSI parity bit does not match");
    if (out.size() < 6)
        return makeError(EmsdpErrc::invalid_value, "IMSI shorter than 6 digits");
    return out;
}

// ---- PLMN -------------------------------------------------------------------------------------

Result<PlmnId> plmnFromDigits(std::string_view mcc, std::string_view mnc) {
    const auto allDigits = [](std::string_view s) {
        for (char c : s) {
            if (c < '0' || c > '9')
                return false;
        }
        return true;
    };
    if (mcc.size() != 3 || (mnc.size() != 2 && mnc.size() != 3) || !allDigits(mcc) ||
        !allDigits(mnc)) {
        return makeError(EmsdpErrc::invalid_value, "PLMN needs a 3-digit MCC, 2- or 3-digit MNC");
    }
    const auto d = [](char c) { return static_cast<std::uint8_t>(c - '0'); };
    const std::uint8_t mnc3 = mnc.size() == 3 ? d(mnc[2]) : 0x0F;
    return PlmnId{static_cast<std::uint8_t>((d(mcc[1]) << 4) | d(mcc[0])),
                  static_cast<std::uint8_t>((mnc3 << 4) | d(mcc[2])),
                  static_cast<std::uint8_t>((d(mnc[1]) << 4) | d(mnc[0]))};
}

bool plmnDigitsValid(const PlmnId& plmn) noexcept {
    const std::uint8_t mcc1 = plmn[0] & 0x0F, mcc2 = plmn[0] >> 4, mcc3 = plmn[1] & 0x0F;
    const std::uint8_t mnc3 = plmn[1] >> 4, mnc1 = plmn[2] & 0x0F, mnc2 = plmn[2] >> 4;
    return mcc1 <= 9 && mcc2 <= 9 && mcc3 <= 9 && mnc1 <= 9 && mnc2 <= 9 &&
           (mnc3 <= 9 || mnc3 == 0x0F);
}

// ---- UE configuration ---------------------------------------------------------------------------

bool UeConfiguration::offers(crypto::KeyAgreement ka) const noexcept {
    const unsigned bit = static_cast<unsigned>(ka) - 1;  // UMTS 0x01 -> bit 0, ...
    return bit < 8 && (keyAgreements & (1u << bit)) != 0;
}

bool UeConfiguration::supportsIntegrity(std::uint8_t alg) const noexcept {
    return alg != 0 && alg < 8 && (integrityAlgs & (1u << alg)) != 0;
}

bool UeConfiguration::supportsCiphering(std::uint8_t alg) const noexcept {
    return alg == 0 || (alg < 8 && (cipheringAlgs & (1u << alg)) != 0);
}

// ---- Request checksum -------------------------------------------------------------------------

Result<RequestChecksum> requestChecksum(ByteView sessionRequest) {
    const crypto::Provider& p = crypto::Provider::instance();
    if (!p.ok())
        return makeError(EmsdpErrc::crypto, "crypto provider unavailable");
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (EVP_Digest(sessionRequest.data(), sessionRequest.size(), digest, &len, p.sha256(),
                   nullptr) != 1 ||
        len < 8) {
        return makeError(EmsdpErrc::crypto, "SHA-256 of the Session Request failed");
    }
    RequestChecksum out;
    for (std::size_t i = 0; i < out.size(); ++i)
        out[i] = digest[i];
    return out;
}

}  // namespace best::emsdp
