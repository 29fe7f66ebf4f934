#include "hsm/blob.h"

#include <string>

#include "hsm/hsm_error.h"

namespace best::hsm {

namespace {

constexpr std::uint8_t kMagic0 = 0x42;  // 'B'
constexpr std::uint8_t kMagic1 = 0x4B;  // 'K'
constexpr std::string_view kBindLabel = "BEST-BLOB-BIND-1";

tl::unexpected<Error> malformed(BlobPurpose expected, const std::string& what) {
    return makeError(
        HsmErrc::blob_malformed,
        std::string("refusing ") + std::string(purposeName(expected)) + " blob: " + what);
}

// Payload size for a given protection and plaintext length.
std::size_t payloadSize(BlobProtection p, std::size_t plain) noexcept {
    switch (p) {
        case BlobProtection::aesKeyWrap:
            return plain + 8;
        case BlobProtection::aesKeyWrapPad:
            return ((plain + 7) / 8) * 8 + 8;
        case BlobProtection::aesCbcData:
            return 16 + ((plain + 15) / 16) * 16;
    }
    return 0;
}

}  // namespace

std::string_view purposeName(BlobPurpose p) noexcept {
    switch (p) {
        case BlobPurpose::subscriberK:
            return "K";
        case BlobPurpose::opc:
            return "OPc";
        case BlobPurpose::kint:
            return "KInt";
        case BlobPurpose::kintE2e:
            return "KInt_E2E";
        case BlobPurpose::kintEasPsk:
            return "KInt_EAS_PSK";
    }
    return "unknown";
}

BlobKeyType keyTypeFor(BlobPurpose p) noexcept {
    switch (p) {
        case BlobPurpose::subscriberK:
            return BlobKeyType::aes;
        case BlobPurpose::opc:
            return BlobKeyType::data;
        default:
            return BlobKeyType::genericSecret;
    }
}

std::uint8_t keyLengthFor(BlobPurpose p) noexcept {
    return p == BlobPurpose::subscriberK || p == BlobPurpose::opc ? 16 : 32;
}

Result<BlobView> parseBlob(ByteView blob, BlobPurpose expected) {
    if (blob.size() < kBlobHeaderSize + kBlobTagSize) {
        return malformed(expected, "truncated (" + std::to_string(blob.size()) +
                                       " octets, a blob has at least " +
                                       std::to_string(kBlobHeaderSize + kBlobTagSize) + ")");
    }
    const std::uint8_t* p = blob.data();
    if (p[0] != kMagic0 || p[1] != kMagic1)
        return malformed(expected, "not a key blob (bad magic)");
    if (p[2] != kBlobFormatVersion)
        return malformed(expected, "unknown format version " + std::to_string(p[2]));
    BlobView v;
    v.header.purpose = static_cast<BlobPurpose>(p[3]);
    if (v.header.purpose != expected) {
        return malformed(expected, "it is a " + std::string(purposeName(v.header.purpose)) +
                                       " blob (purpose " + std::to_string(p[3]) + ")");
    }
    v.header.protection = static_cast<BlobProtection>(p[4]);
    const bool wrapped = v.header.protection == BlobProtection::aesKeyWrap ||
                         v.header.protection == BlobProtection::aesKeyWrapPad;
    const bool data = v.header.protection == BlobProtection::aesCbcData;
    if (!wrapped && !data)
        return malformed(expected, "unknown protection " + std::to_string(p[4]));
    if ((expected == BlobPurpose::opc) != data)
        return malformed(expected, "protection " + std::to_string(p[4]) + " not allowed");
    v.header.keyType = static_cast<BlobKeyType>(p[5]);
    if (v.header.keyType != keyTypeFor(expected))
        return malformed(expected, "wrong key type " + std::to_string(p[5]));
    v.header.keyLength = p[6];
    if (v.header.keyLength != keyLengthFor(expected))
        return malformed(expected, "wrong key length " + std::to_string(p[6]));
    if (p[7] != 0)
        return malformed(expected, "reserved octet not zero");
    v.header.generation = getBe16(p + 8);
    if (v.header.generation != kTokenKeyGeneration) {
        return malformed(expected,
                         "made under token key generation " + std::to_string(v.header.generation) +
                             ", this vault has generation " + std::to_string(kTokenKeyGeneration));
    }
    const std::size_t n = getBe16(p + 10);
    if (n != payloadSize(v.header.protection, v.header.keyLength))
        return malformed(expected, "payload length " + std::to_string(n) + " is wrong");
    if (blob.size() != kBlobHeaderSize + n + kBlobTagSize) {
        return malformed(expected, blob.size() < kBlobHeaderSize + n + kBlobTagSize
                                       ? "truncated"
                                       : "trailing octets after the tag");
    }
    v.signedPart = blob.subspan(0, kBlobHeaderSize + n);
    v.payload = blob.subspan(kBlobHeaderSize, n);
    v.tag = blob.subspan(kBlobHeaderSize + n, kBlobTagSize);
    return v;
}

Bytes encodeBlobBody(const BlobHeader& h, ByteView payload) {
    Bytes out(kBlobHeaderSize + payload.size());
    out[0] = kMagic0;
    out[1] = kMagic1;
    out[2] = kBlobFormatVersion;
    out[3] = static_cast<std::uint8_t>(h.purpose);
    out[4] = static_cast<std::uint8_t>(h.protection);
    out[5] = static_cast<std::uint8_t>(h.keyType);
    out[6] = h.keyLength;
    out[7] = 0;
    putBe16(out.data() + 8, h.generation);
    putBe16(out.data() + 10, static_cast<std::uint16_t>(payload.size()));
    for (std::size_t i = 0; i < payload.size(); ++i)
        out[kBlobHeaderSize + i] = payload[i];
    return out;
}

Result<Bytes> bindingInput(const BlobBinding& b, ByteView signedPart) {
    if (b.imsi.empty() || b.imsi.size() > kMaxImsiLength) {
        return makeError(HsmErrc::bad_input, "blob binding needs an IMSI of 1.." +
                                                 std::to_string(kMaxImsiLength) + " characters");
    }
    Bytes s;
    s.reserve(kBindLabel.size() + 2 + b.imsi.size() + 1 + 8 + signedPart.size());
    s.insert(s.end(), kBindLabel.begin(), kBindLabel.end());
    std::uint8_t len[2];
    putBe16(len, static_cast<std::uint16_t>(b.imsi.size()));
    s.insert(s.end(), len, len + 2);
    s.insert(s.end(), b.imsi.begin(), b.imsi.end());
    s.push_back(static_cast<std::uint8_t>(b.purpose));
    std::uint8_t ver[8];
    putBe64(ver, b.version);
    s.insert(s.end(), ver, ver + 8);
    s.insert(s.end(), signedPart.begin(), signedPart.end());
    return s;
}

}  // namespace best::hsm
