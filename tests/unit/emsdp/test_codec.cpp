// Header, IE and command-body codec: every counter scheme, the BCD and PLMN codecs, and each
// TLV rule of section 3.3 / A3 / A4 / A19 / A20 with its exact cause and detail.
#include <gtest/gtest.h>

#include <initializer_list>
#include <set>
#include <string>
#include <vector>

#include "common/hex.h"
#include "emsdp/emsdp.h"
#include "test_util.h"

namespace best::emsdp {
namespace {

// ---- helpers ----------------------------------------------------------------------------------

Bytes tlv(std::uint8_t tag, std::initializer_list<std::uint8_t> value) {
    Bytes b;
    b.reserve(2 + value.size());
    b.push_back(tag);
    b.push_back(static_cast<std::uint8_t>(value.size()));
    for (std::uint8_t v : value)
        b.push_back(v);
    return b;
}

Bytes tlvN(std::uint8_t tag, std::size_t n, std::uint8_t fill = 0x11) {
    Bytes b;
    b.reserve(2 + n);
    b.push_back(tag);
    b.push_back(static_cast<std::uint8_t>(n));
    for (std::size_t i = 0; i < n; ++i)
        b.push_back(fill);
    return b;
}

Bytes cat(std::initializer_list<Bytes> parts) {
    Bytes out;
    for (const Bytes& p : parts) {
        for (std::uint8_t v : p)
            out.push_back(v);
    }
    return out;
}

FormatError err(DropReason r, Cause c, std::size_t offset) {
    return FormatError{r, c, offset};
}

template <typename T>
FormatError errorOf(const tl::expected<T, FormatError>& r) {
    EXPECT_FALSE(r.has_value());
    return r ? FormatError{} : r.error();
}

std::string hx(ByteView v) {
    return toHex(v);
}

// Valid IEs of each command.
const Bytes kImsi = tlv(0x01, {0x09, 0x10, 0x10, 0x00, 0x00, 0x00, 0x00, 0x10});
const Bytes kUeConf = tlv(0x03, {0x11, 0x07, 0x03, 0x04, 0x05});
const Bytes kEas = tlv(0x04, {'e', 'a', 's'});
const Bytes kPlmn = tlv(0x05, {0x00, 0xf1, 0x10});
const Bytes kNonce = tlvN(0x06, 8);
const Bytes kRand = tlvN(0x10, 16);
const Bytes kAutn = tlvN(0x11, 16, 0x22);
const Bytes kAuts = tlvN(0x12, 14, 0x33);
const Bytes kKau = tlv(0x13, {0x03});
const Bytes kHseConf = tlv(0x14, {0x01, 0x01, 0x02, 0x02, 0x00, 'h', 's', 'e'});
const Bytes kService = tlv(0x15, {0x03, 0x01, 0x00, 0x01, 0x51, 0x80});
const Bytes kChecksum = tlvN(0x16, 8, 0x44);
const Bytes kNewKid = tlv(0x18, {0x02});
const Bytes kKeyConf = tlvN(0x19, 8, 0x55);
const Bytes kOriginUe = tlv(0x1A, {0x01});
const Bytes kOriginHse = tlv(0x1A, {0x02});

constexpr std::uint8_t kReq = 0x10;
constexpr std::uint8_t kStart = 0x11;
constexpr std::uint8_t kConfirm = 0x12;
constexpr std::uint8_t kTermReq = 0x20;
constexpr std::uint8_t kMkReq = 0x30;
constexpr std::uint8_t kMkResp = 0x31;
constexpr std::uint8_t kReject = 0x80;

Bytes validSessionRequest() {
    return cat({kImsi, kUeConf, kEas, kPlmn, kNonce});
}
Bytes validSessionStart() {
    return cat({kRand, kAutn, kKau, kHseConf, kService, kChecksum});
}
Bytes validHseMkReq() {
    return cat({kRand, kAutn, kKau, kNewKid, kOriginHse});
}

// ---- header -----------------------------------------------------------------------------------

TEST(Header, EveryCounterSchemeRoundTrips) {
    for (std::uint8_t n = 0; n <= 3; ++n) {
        const auto s = static_cast<CounterScheme>(n);
        SCOPED_TRACE(static_cast<int>(n));
        EXPECT_EQ(counterWidth(s), 3u + 8u * n);
        EXPECT_EQ(headerSize(s), 5u + n);
        for (std::uint32_t count :
             {0u, 1u, 7u, 8u, 0x7FFu, 0x800u, 0x7FFFFu, 0x7FFFFFFu, 0xFFFFFFFEu, 0xFFFFFFFFu}) {
            Header h;
            h.plane = n % 2 == 0 ? Plane::cp : Plane::up;
            h.kid = static_cast<std::uint8_t>(n + 4);
            h.sessionId = 0xA1B2C3D4;
            h.scheme = s;
            h.setCount(count);
            EXPECT_EQ(h.counterField, count & counterMask(s));
            std::array<std::uint8_t, 8> buf{};
            auto size = encodeHeader(h, buf);
            ASSERT_TRUE(size);
            ASSERT_EQ(*size, h.size());
            // Octet 0: P, R, KID, CTR_H = top 3 bits of the w-bit field.
            EXPECT_EQ(buf[0] & 0x07u, (h.counterField >> (8 * n)) & 0x07u);
            EXPECT_EQ((buf[0] >> 3) & 0x07u, h.kid);
            EXPECT_EQ(buf[0] >> 7, n % 2);
            EXPECT_EQ(getBe32(buf.data() + 1), 0xA1B2C3D4u);
            // Extension: the low 8n bits, big endian.
            for (std::uint8_t i = 0; i < n; ++i)
                EXPECT_EQ(buf[5 + i], static_cast<std::uint8_t>(count >> (8 * (n - 1 - i))));
            auto back = decodeHeader(ByteView(buf.data(), *size), s);
            ASSERT_TRUE(back);
            EXPECT_EQ(*back, h);
        }
    }
}

TEST(Header, OctetZeroLayout) {
    // P=1 R=1 KID=5 CTR_H=6 -> 1 1 101 110.
    const Bytes d = {0xEE, 0x00, 0x00, 0x00, 0x09};
    auto p = peekHeader(d);
    ASSERT_TRUE(p);
    EXPECT_EQ(p->plane, Plane::up);
    EXPECT_TRUE(p->r);
    EXPECT_EQ(p->kid, 5);
    EXPECT_EQ(p->ctrH, 6);
    EXPECT_EQ(p->sessionId, 9u);
}

TEST(Header, TruncatedHeaderIsDropped) {
    for (std::size_t len = 0; len < 5; ++len) {
        const Bytes d(len, 0x08);
        EXPECT_EQ(peekHeader(d).error(), DropReason::truncated_header);
        EXPECT_EQ(decodeHeader(d, CounterScheme::n0).error(), DropReason::truncated_header);
    }
    // Five octets are a whole header only for n = 0.
    const Bytes five(5, 0x08);
    EXPECT_TRUE(decodeHeader(five, CounterScheme::n0));
    EXPECT_EQ(decodeHeader(five, CounterScheme::n1).error(), DropReason::truncated_header);
    const Bytes seven(7, 0x08);
    EXPECT_TRUE(decodeHeader(seven, CounterScheme::n2));
    EXPECT_EQ(decodeHeader(seven, CounterScheme::n3).error(), DropReason::truncated_header);
}

TEST(Header, DatagramOver1280IsDropped) {
    const Bytes max(kMaxDatagram, 0x08);
    EXPECT_TRUE(peekHeader(max));
    const Bytes over(kMaxDatagram + 1, 0x08);
    EXPECT_EQ(peekHeader(over).error(), DropReason::datagram_too_large);
    EXPECT_EQ(decodeHeader(over, CounterScheme::n1).error(), DropReason::datagram_too_large);
}

TEST(Header, EncoderRefusesBadFields) {
    std::array<std::uint8_t, 8> buf{};
    Header h;
    h.kid = 8;
    EXPECT_EQ(encodeHeader(h, buf).error().code, static_cast<int>(EmsdpErrc::invalid_value));
    h.kid = 1;
    h.scheme = CounterScheme::n0;
    h.counterField = 8;  // wider than 3 bits
    EXPECT_EQ(encodeHeader(h, buf).error().code, static_cast<int>(EmsdpErrc::invalid_value));
    h.counterField = 7;
    h.scheme = CounterScheme::n3;
    h.counterField = 1;
    EXPECT_EQ(encodeHeader(h, std::span<std::uint8_t>(buf.data(), 7)).error().code,
              static_cast<int>(EmsdpErrc::buffer_too_small));
    EXPECT_TRUE(encodeHeader(h, buf));
}

// ---- IEs --------------------------------------------------------------------------------------

TEST(Imsi, ProfileExamples) {
    auto a = Imsi::fromDigits("001010123456789");
    ASSERT_TRUE(a);
    EXPECT_EQ(hx(a->octets), "0910101032547698");
    auto b = Imsi::fromDigits("001010000000001");
    ASSERT_TRUE(b);
    EXPECT_EQ(hx(b->octets), "0910100000000010");
    auto digits = a->digits();
    ASSERT_TRUE(digits);
    EXPECT_EQ(*digits, "001010123456789");
}

TEST(Imsi, EvenDigitCountUsesFiller) {
    auto a = Imsi::fromDigits("26201123456789");  // 14 digits: parity 0, last high nibble F
    ASSERT_TRUE(a);
    EXPECT_EQ(hx(a->octets), "21261021436587f9");
    a = Imsi::fromDigits("262011234");  // 9 digits
    ASSERT_TRUE(a);
    EXPECT_EQ(hx(a->octets), "2926102143ffffff");
    auto d = a->digits();
    ASSERT_TRUE(d);
    EXPECT_EQ(*d, "262011234");
    EXPECT_EQ(a->octets[0], 0x29);  // digit 2, odd, type 001
    EXPECT_EQ(a->octets[7], 0xFF);
}

TEST(Imsi, BadBcdIsNotDecodable) {
    const auto bad = [](std::initializer_list<std::uint8_t> o) {
        Imsi i;
        std::copy(o.begin(), o.end(), i.octets.begin());
        return !i.digits().has_value();
    };
    EXPECT_TRUE(bad({0x0A, 0x10, 0x10, 0x00, 0x00, 0x00, 0x00, 0x10}));  // type 010
    EXPECT_TRUE(bad({0xA9, 0x10, 0x10, 0x00, 0x00, 0x00, 0x00, 0x10}));  // digit 1 = A
    EXPECT_TRUE(bad({0x09, 0x1B, 0x10, 0x00, 0x00, 0x00, 0x00, 0x10}));  // digit B
    EXPECT_TRUE(bad({0x09, 0xF0, 0x10, 0x00, 0x00, 0x00, 0x00, 0x10}));  // F, then digits
    EXPECT_TRUE(bad({0x01, 0x10, 0x10, 0x00, 0x00, 0x00, 0x00, 0x10}));  // parity says even
    EXPECT_TRUE(bad({0x09, 0x10, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}));  // 3 digits
    EXPECT_FALSE(Imsi::fromDigits("12345").has_value());
    EXPECT_FALSE(Imsi::fromDigits("1234567890123456").has_value());
    EXPECT_FALSE(Imsi::fromDigits("00101012345678a").has_value());
}

TEST(Plmn, EncodingAndDigitCheck) {
    auto p = plmnFromDigits("001", "01");
    ASSERT_TRUE(p);
    EXPECT_EQ(hx(*p), "00f110");
    p = plmnFromDigits("310", "260");
    ASSERT_TRUE(p);
    EXPECT_EQ(hx(*p), "130062");
    EXPECT_TRUE(plmnDigitsValid(*p));
    EXPECT_FALSE(plmnFromDigits("01", "01").has_value());
    EXPECT_FALSE(plmnFromDigits("001", "1").has_value());
    EXPECT_FALSE(plmnFromDigits("0a1", "01").has_value());
    EXPECT_FALSE(plmnDigitsValid(PlmnId{0x0A, 0xF1, 0x10}));  // MCC digit 1
    EXPECT_FALSE(plmnDigitsValid(PlmnId{0x00, 0xE1, 0x10}));  // MNC digit 3 neither 0-9 nor F
    EXPECT_FALSE(plmnDigitsValid(PlmnId{0x00, 0xF1, 0xF0}));  // MNC digit 2 = F
}

TEST(UeConfigurationIe, FlagsAndAlgorithmMasks) {
    const UeConfiguration c{17, 0x06, 0x02, 0x05, 0x00};
    EXPECT_FALSE(c.offers(crypto::KeyAgreement::umts));
    EXPECT_TRUE(c.offers(crypto::KeyAgreement::eps));
    EXPECT_TRUE(c.offers(crypto::KeyAgreement::fiveG));
    EXPECT_FALSE(c.confidentialityRequested());
    EXPECT_TRUE(c.keySetsStorable());
    EXPECT_FALSE(c.supportsIntegrity(0));  // bit 0 of the integrity mask is ignored (A3)
    EXPECT_TRUE(c.supportsIntegrity(2));
    EXPECT_FALSE(c.supportsIntegrity(1));
    EXPECT_TRUE(c.supportsCiphering(0));  // NULL always supported
    EXPECT_FALSE(c.supportsCiphering(2));
}

TEST(RequestChecksumIe, FirstEightOctetsOfSha256) {
    const Bytes abc = {'a', 'b', 'c'};  // SHA-256("abc") = ba7816bf 8f01cfea ...
    auto c = requestChecksum(abc);
    ASSERT_TRUE(c);
    EXPECT_EQ(hx(*c), "ba7816bf8f01cfea");
}

// ---- TLV structure ----------------------------------------------------------------------------

TEST(Tlv, TrailingOctetIsInvalidFormat) {
    const Bytes b = cat({validHseMkReq(), Bytes{0x13}});
    EXPECT_EQ(errorOf(decodeBody(kMkReq, Side::network, b)),
              err(DropReason::trailing_octets, Cause::invalid_format, b.size() - 1));
}

TEST(Tlv, LengthPastTheEndIsInvalidFormat) {
    Bytes b = cat({kOriginUe, Bytes{0x82, 0x05, 0x00}});  // skipped tag, but 5 > 1 left
    EXPECT_EQ(errorOf(decodeBody(kMkReq, Side::ue, b)),
              err(DropReason::length_past_end, Cause::invalid_format, 3));
    b = Bytes{0x1A, 0x02, 0x01};  // a listed tag running past the end
    EXPECT_EQ(errorOf(decodeBody(kMkReq, Side::ue, b)),
              err(DropReason::length_past_end, Cause::invalid_format, 0));
}

TEST(Tlv, DuplicateTlvIsInvalidFormat) {
    const Bytes b = cat({kRand, kAutn, kKau, kNewKid, kNewKid, kOriginHse});
    EXPECT_EQ(errorOf(decodeBody(kMkReq, Side::network, b)),
              err(DropReason::duplicate_tlv, Cause::invalid_format, 42));
}

TEST(Tlv, UnknownTagBelow0x80IsUnknownMandatoryIe) {
    for (std::uint8_t tag : {0x00, 0x07, 0x17, 0x1B, 0x22, 0x7F}) {
        SCOPED_TRACE(static_cast<int>(tag));
        const Bytes b = cat({kOriginUe, tlv(tag, {0x01})});
        EXPECT_EQ(errorOf(decodeBody(kMkReq, Side::ue, b)),
                  err(DropReason::unknown_mandatory_tag, Cause::unknown_mandatory_ie, 3));
    }
}

TEST(Tlv, UnknownTagsFrom0x80AreSkipped) {
    const Bytes b = cat({tlv(0x80, {}), tlvN(0xFF, 200), kOriginUe, tlv(0xA5, {1, 2})});
    auto r = decodeBody(kMkReq, Side::ue, b);
    ASSERT_TRUE(r) << ::testing::PrintToString(r.error());
    EXPECT_TRUE(std::holds_alternative<UeManageKeysRequest>(*r));
}

TEST(Tlv, ReceiversAcceptAnyOrder) {
    const Bytes b = cat({kOriginHse, kNewKid, kKau, kAutn, kRand});
    auto r = decodeBody(kMkReq, Side::network, b);
    ASSERT_TRUE(r);
    const auto& m = std::get<HseManageKeysRequest>(*r);
    EXPECT_EQ(m.newKeyId, 2);
    EXPECT_EQ(m.refreshOrigin, RefreshOrigin::hse);
}

TEST(Tlv, FixedSizeWrongIsInvalidFormat) {
    struct Case {
        Bytes bad;
        std::uint8_t command;
        Side sender;
    };
    const std::vector<Case> cases = {
        {tlvN(0x10, 15), kMkReq, Side::network},  // RAND
        {tlvN(0x11, 17), kMkReq, Side::network},  // AUTN
        {tlvN(0x12, 13), kReject, Side::ue},      // AUTS
        {tlvN(0x13, 2), kMkReq, Side::network},   // Key agreement used
        {tlvN(0x18, 0), kMkReq, Side::network},   // New key ID
        {tlvN(0x19, 9), kMkResp, Side::ue},       // Key confirmation
        {tlvN(0x1A, 2), kMkReq, Side::ue},        // Refresh origin
        {tlvN(0x20, 0), kReject, Side::ue},       // Cause
        {tlvN(0x21, 3), kReject, Side::ue},       // Back-off
        {tlvN(0x15, 5), kStart, Side::network},   // Service parameters
        {tlvN(0x16, 7), kStart, Side::network},   // Request checksum
        {tlvN(0x01, 9), kReq, Side::ue},          // IMSI
        {tlvN(0x05, 2), kReq, Side::ue},          // Serving network
        {tlvN(0x06, 7), kReq, Side::ue},          // UE nonce
    };
    for (const Case& c : cases) {
        SCOPED_TRACE(hx(c.bad));
        EXPECT_EQ(errorOf(decodeBody(c.command, c.sender, c.bad)),
                  err(DropReason::invalid_ie_length, Cause::invalid_format, 0));
    }
}

TEST(Tlv, LengthOutsideRangeIsInvalidFormat) {
    // UE configuration >= 5, Enterprise setup 1..64, HSE configuration 6..69.
    for (const Bytes& bad : {tlvN(0x03, 4), tlvN(0x04, 0), tlvN(0x04, 65)}) {
        SCOPED_TRACE(hx(bad));
        EXPECT_EQ(errorOf(decodeBody(kReq, Side::ue, bad)),
                  err(DropReason::invalid_ie_length, Cause::invalid_format, 0));
    }
    for (const Bytes& bad : {tlvN(0x14, 5, 0), tlvN(0x14, 70, 0)}) {
        EXPECT_EQ(errorOf(decodeBody(kStart, Side::network, bad)),
                  err(DropReason::invalid_ie_length, Cause::invalid_format, 0));
    }
    // The edges are fine.
    auto r = decodeBody(kReq, Side::ue, cat({kImsi, tlvN(0x03, 255), tlvN(0x04, 64), kNonce}));
    ASSERT_TRUE(r);
    EXPECT_EQ(std::get<SessionRequest>(*r).easId.size(), 64u);
    auto s = decodeBody(kStart, Side::network, cat({kKau, tlvN(0x14, 69, 0), kService, kChecksum}));
    ASSERT_TRUE(s);
    EXPECT_EQ(std::get<SessionStart>(*s).hseConfiguration.hseId.size(), 64u);
}

TEST(Tlv, ValueOutsideItsSetIsInvalidFormat) {
    struct Case {
        Bytes ie;
        std::uint8_t command;
        Side sender;
    };
    const std::vector<Case> cases = {
        {tlv(0x13, {0x00}), kMkReq, Side::network},  // Key agreement used
        {tlv(0x13, {0x04}), kMkResp, Side::network},
        {tlv(0x18, {0x00}), kMkReq, Side::network},  // New key ID
        {tlv(0x18, {0x08}), kMkResp, Side::network},
        {tlv(0x1A, {0x00}), kMkReq, Side::network},  // Refresh origin
        {tlv(0x1A, {0x04}), kMkReq, Side::network},
        {tlv(0x1A, {0x02}), kMkReq, Side::ue},  // a UE's request whose origin is not UE
        {tlv(0x1A, {0x03}), kMkReq, Side::ue},
        {tlv(0x15, {0x00, 0x01, 0, 0, 0, 0}), kStart, Side::network},  // service
        {tlv(0x15, {0x04, 0x01, 0, 0, 0, 0}), kStart, Side::network},
        {tlv(0x15, {0x02, 0x03, 0, 0, 0, 0}), kStart, Side::network},             // termination
        {tlv(0x14, {0x04, 0x01, 0x02, 0x00, 0x00, 'h'}), kStart, Side::network},  // CP n
        {tlv(0x14, {0x01, 0x09, 0x02, 0x00, 0x00, 'h'}), kStart, Side::network},  // UP n
        {tlv(0x13, {0x00}), kStart, Side::network},
    };
    for (const Case& c : cases) {
        SCOPED_TRACE(hx(c.ie));
        EXPECT_EQ(errorOf(decodeBody(c.command, c.sender, c.ie)),
                  err(DropReason::value_out_of_range, Cause::invalid_format, 0));
    }
}

TEST(Tlv, UnusedFlagBitsAndUndefinedCausesAreAccepted) {
    // UE configuration: unused flag bits set (ignored: cleared), integrity mask bit 0 set (kept,
    // ignored by supportsIntegrity), a sixth octet (ignored).
    auto r =
        decodeBody(kReq, Side::ue,
                   cat({kImsi, tlv(0x03, {0x11, 0xFF, 0xFF, 0xFF, 0xFF, 0xAA}), kEas, kNonce}));
    ASSERT_TRUE(r);
    const UeConfiguration& uc = std::get<SessionRequest>(*r).ueConfiguration;
    EXPECT_EQ(uc.flags, 0x03);
    EXPECT_EQ(uc.integrityAlgs, 0xFF);
    EXPECT_FALSE(uc.supportsIntegrity(0));
    // HSE configuration: only bit 0 of the flags is defined.
    auto st = decodeBody(kStart, Side::network,
                         cat({kKau, tlv(0x14, {1, 1, 2, 0, 0xFE, 'h'}), kService, kChecksum}));
    ASSERT_TRUE(st);
    EXPECT_EQ(std::get<SessionStart>(*st).hseConfiguration.flags, 0x00);
    EXPECT_FALSE(std::get<SessionStart>(*st).hseConfiguration.confirmationRequired());
    // A Cause value section 7 does not define is kept as is.
    auto t = decodeBody(kTermReq, Side::ue, tlv(0x20, {0x0C}));
    ASSERT_TRUE(t);
    EXPECT_EQ(std::get<SessionTerminateRequest>(*t).cause, static_cast<Cause>(0x0C));
    EXPECT_FALSE(isDefinedCause(0x0C));
    EXPECT_TRUE(isDefinedCause(0x13));
}

// A3: TLVs are checked in octet order and the first error decides.
TEST(Tlv, FirstErrorInOctetOrderDecides) {
    // value error, then unknown tag -> 0x01
    Bytes b = cat({tlv(0x13, {0x09}), tlv(0x07, {0x00})});
    EXPECT_EQ(errorOf(decodeBody(kMkReq, Side::network, b)),
              err(DropReason::value_out_of_range, Cause::invalid_format, 0));
    // unknown tag, then value error -> 0x04
    b = cat({tlv(0x07, {0x00}), tlv(0x13, {0x09})});
    EXPECT_EQ(errorOf(decodeBody(kMkReq, Side::network, b)),
              err(DropReason::unknown_mandatory_tag, Cause::unknown_mandatory_ie, 0));
    // unknown tag, then a duplicate -> 0x04
    b = cat({kRand, tlv(0x3F, {}), kRand});
    EXPECT_EQ(errorOf(decodeBody(kMkReq, Side::network, b)),
              err(DropReason::unknown_mandatory_tag, Cause::unknown_mandatory_ie, 18));
    // duplicate, then trailing octet -> duplicate
    b = cat({kNewKid, kNewKid, Bytes{0x01}});
    EXPECT_EQ(errorOf(decodeBody(kMkReq, Side::network, b)),
              err(DropReason::duplicate_tlv, Cause::invalid_format, 3));
    // wrong size, then length past the end -> wrong size
    b = cat({tlvN(0x10, 3), Bytes{0x11, 0x20}});
    EXPECT_EQ(errorOf(decodeBody(kMkReq, Side::network, b)),
              err(DropReason::invalid_ie_length, Cause::invalid_format, 0));
}

// A19: a defined tag not listed for the command is ignored entirely.
TEST(Tlv, UnlistedDefinedTagsAreIgnoredEntirely) {
    // Confirmation lists nothing: wrong-size, repeated RAND and a bad Key agreement are ignored.
    const Bytes b = cat({tlvN(0x10, 3), tlvN(0x10, 3), tlv(0x13, {0x77}), kImsi, kImsi});
    auto r = decodeBody(kConfirm, Side::ue, b);
    ASSERT_TRUE(r);
    EXPECT_TRUE(std::holds_alternative<SessionStartConfirmation>(*r));
    // A UE's Manage Keys Request lists only Refresh origin.
    auto m = decodeBody(kMkReq, Side::ue, cat({tlvN(0x10, 2), kOriginUe, tlv(0x18, {0x09})}));
    ASSERT_TRUE(m);
    // The HSE's Manage Keys Response does not list Refresh origin or Key confirmation.
    auto h = decodeBody(kMkResp, Side::network,
                        cat({kRand, kAutn, kKau, kNewKid, tlv(0x1A, {0x77}), tlvN(0x19, 1)}));
    ASSERT_TRUE(h);
    // But the structural rules still apply to them.
    EXPECT_EQ(errorOf(decodeBody(kConfirm, Side::ue, Bytes{0x10, 0x09, 0x00})),
              err(DropReason::length_past_end, Cause::invalid_format, 0));
}

// A20: all TLVs are parsed first, then mandatory IEs are checked.
TEST(Tlv, ParseErrorsBeatMissingIes) {
    // Missing RAND, AUTN, ... but an unknown tag: 0x04, not 0x03.
    EXPECT_EQ(errorOf(decodeBody(kMkReq, Side::network, tlv(0x33, {}))),
              err(DropReason::unknown_mandatory_tag, Cause::unknown_mandatory_ie, 0));
    // Missing IEs and a duplicate: 0x01.
    EXPECT_EQ(errorOf(decodeBody(kMkReq, Side::network, cat({kKau, kKau}))),
              err(DropReason::duplicate_tlv, Cause::invalid_format, 3));
    // Only missing: 0x03.
    EXPECT_EQ(errorOf(decodeBody(kMkReq, Side::network, cat({kKau}))),
              err(DropReason::missing_mandatory_ie, Cause::missing_mandatory_ie, 3));
}

TEST(Tlv, MissingMandatoryIeOfEachCommand) {
    struct Case {
        std::uint8_t command;
        Side sender;
        Bytes full;
        std::vector<Bytes> parts;  // each mandatory IE, removable one at a time
    };
    const std::vector<Case> cases = {
        {kReq, Side::ue, {}, {kImsi, kUeConf, kEas, kNonce}},
        {kStart, Side::network, {}, {kKau, kHseConf, kService, kChecksum}},
        {kMkReq, Side::network, {}, {kRand, kAutn, kKau, kNewKid, kOriginHse}},
        {kMkReq, Side::ue, {}, {kOriginUe}},
        {kMkResp, Side::network, {}, {kRand, kAutn, kKau, kNewKid}},
        {kReject, Side::ue, {}, {tlv(0x20, {0x01})}},
    };
    for (const Case& c : cases) {
        for (std::size_t skip = 0; skip < c.parts.size(); ++skip) {
            Bytes b;
            for (std::size_t i = 0; i < c.parts.size(); ++i) {
                if (i != skip)
                    b.insert(b.end(), c.parts[i].begin(), c.parts[i].end());
            }
            SCOPED_TRACE(hx(b));
            EXPECT_EQ(errorOf(decodeBody(c.command, c.sender, b)),
                      err(DropReason::missing_mandatory_ie, Cause::missing_mandatory_ie, b.size()));
        }
        Bytes all;
        for (const Bytes& p : c.parts)
            all.insert(all.end(), p.begin(), p.end());
        EXPECT_TRUE(decodeBody(c.command, c.sender, all).has_value()) << hx(all);
    }
}

TEST(Tlv, ConditionalIes) {
    // Session Start: RAND and AUTN together or neither.
    EXPECT_TRUE(decodeBody(kStart, Side::network, validSessionStart()));
    EXPECT_TRUE(decodeBody(kStart, Side::network, cat({kKau, kHseConf, kService, kChecksum})));
    EXPECT_EQ(errorOf(decodeBody(kStart, Side::network,
                                 cat({kRand, kKau, kHseConf, kService, kChecksum})))
                  .reason,
              DropReason::missing_mandatory_ie);
    // UE's Manage Keys Response: Key confirmation or Cause; 0x0B needs AUTS; not both.
    EXPECT_TRUE(decodeBody(kMkResp, Side::ue, kKeyConf));
    EXPECT_TRUE(decodeBody(kMkResp, Side::ue, tlv(0x20, {0x0A})));
    EXPECT_TRUE(decodeBody(kMkResp, Side::ue, cat({kAuts, tlv(0x20, {0x0B})})));
    EXPECT_EQ(errorOf(decodeBody(kMkResp, Side::ue, Bytes{})),
              err(DropReason::missing_mandatory_ie, Cause::missing_mandatory_ie, 0));
    EXPECT_EQ(errorOf(decodeBody(kMkResp, Side::ue, tlv(0x20, {0x0B}))),
              err(DropReason::missing_mandatory_ie, Cause::missing_mandatory_ie, 3));
    EXPECT_EQ(errorOf(decodeBody(kMkResp, Side::ue, cat({kKeyConf, tlv(0x20, {0x0A})}))),
              err(DropReason::conflicting_ies, Cause::invalid_format, 13));
    // Message Reject: AUTS with 0x0B, Back-off with 0x0F.
    EXPECT_EQ(errorOf(decodeBody(kReject, Side::ue, tlv(0x20, {0x0B}))).reason,
              DropReason::missing_mandatory_ie);
    EXPECT_EQ(errorOf(decodeBody(kReject, Side::network, tlv(0x20, {0x0F}))).reason,
              DropReason::missing_mandatory_ie);
    auto rej =
        decodeBody(kReject, Side::network, cat({tlv(0x20, {0x0F}), tlv(0x21, {0x01, 0x2C})}));
    ASSERT_TRUE(rej);
    EXPECT_EQ(std::get<MessageReject>(*rej).backOff, 300);
    // Terminate Request: Cause optional.
    auto t = decodeBody(kTermReq, Side::network, Bytes{});
    ASSERT_TRUE(t);
    EXPECT_FALSE(std::get<SessionTerminateRequest>(*t).cause.has_value());
}

TEST(Tlv, UnknownCommandIsCause0x02) {
    for (std::uint8_t c : {0x00, 0x13, 0x22, 0x32, 0x7F, 0x81, 0xFF}) {
        EXPECT_EQ(errorOf(decodeBody(c, Side::ue, Bytes{})),
                  err(DropReason::unknown_command, Cause::unknown_command, 0));
    }
}

// ---- A4: the Session Request order (steps 1-4) -------------------------------------------------

TEST(SessionRequestOrder, SuciAnyLengthIsUnknownSubscriber) {
    for (std::size_t len : {0u, 1u, 8u, 200u}) {
        SCOPED_TRACE(len);
        const Bytes b = cat({validSessionRequest(), tlvN(0x02, len)});
        EXPECT_EQ(errorOf(decodeBody(kReq, Side::ue, b)),
                  err(DropReason::suci_not_supported, Cause::unknown_subscriber, b.size()));
    }
    // Step 2 comes before step 3 (missing IE) and step 4 (PLMN digits).
    EXPECT_EQ(errorOf(decodeBody(kReq, Side::ue, tlvN(0x02, 3))).cause, Cause::unknown_subscriber);
    EXPECT_EQ(errorOf(decodeBody(kReq, Side::ue,
                                 cat({kImsi, kUeConf, kEas, tlv(0x05, {0xAA, 0xF1, 0x10}), kNonce,
                                      tlvN(0x02, 3)})))
                  .cause,
              Cause::unknown_subscriber);
    // But after step 1 (parse): a duplicate before or after the SUCI is 0x01.
    EXPECT_EQ(errorOf(decodeBody(kReq, Side::ue, cat({tlvN(0x02, 3), kImsi, kImsi}))),
              err(DropReason::duplicate_tlv, Cause::invalid_format, 15));
    EXPECT_EQ(errorOf(decodeBody(kReq, Side::ue, cat({tlvN(0x02, 3), tlvN(0x02, 4)}))),
              err(DropReason::duplicate_tlv, Cause::invalid_format, 5));
}

TEST(SessionRequestOrder, MissingIeBeforePlmnDigits) {
    const Bytes badPlmn = tlv(0x05, {0x00, 0xE1, 0x10});
    EXPECT_EQ(errorOf(decodeBody(kReq, Side::ue, cat({kImsi, kUeConf, badPlmn, kNonce}))),
              err(DropReason::missing_mandatory_ie, Cause::missing_mandatory_ie, 32));
    const Bytes b = cat({kImsi, kUeConf, kEas, badPlmn, kNonce});
    EXPECT_EQ(errorOf(decodeBody(kReq, Side::ue, b)),
              err(DropReason::invalid_plmn, Cause::invalid_format, b.size()));
}

TEST(SessionRequestOrder, ServingNetworkIsConditional) {
    // Absent: accepted (the HSE then considers neither EPS nor 5G and grants no ciphering).
    auto r = decodeBody(kReq, Side::ue, cat({kImsi, kUeConf, kEas, kNonce}));
    ASSERT_TRUE(r);
    EXPECT_FALSE(std::get<SessionRequest>(*r).servingNetwork.has_value());
    // An undecodable IMSI is not a format error (the subscriber lookup answers 0x07).
    auto bad = decodeBody(kReq, Side::ue, cat({tlvN(0x01, 8, 0xAB), kUeConf, kEas, kNonce}));
    ASSERT_TRUE(bad);
    EXPECT_FALSE(std::get<SessionRequest>(*bad).imsi.digits().has_value());
}

// ---- encoding ---------------------------------------------------------------------------------

Bytes encoded(const Body& body) {
    std::array<std::uint8_t, kMaxDatagram> out{};
    auto n = encodeBody(body, out);
    EXPECT_TRUE(n) << (n ? "" : n.error().describe());
    return n ? Bytes(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(*n)) : Bytes{};
}

void expectRoundTrip(const Body& body, Side sender) {
    const Bytes b = encoded(body);
    ASSERT_FALSE(b.empty());
    EXPECT_EQ(b[0], static_cast<std::uint8_t>(commandOf(body)));
    auto back = decodeBody(b[0], sender, ByteView(b).subspan(1));
    ASSERT_TRUE(back) << hx(b);
    EXPECT_TRUE(*back == body) << hx(b);
    // Ascending tags.
    for (std::size_t pos = 1, prev = 0; pos < b.size(); pos += 2 + b[pos + 1]) {
        EXPECT_GT(b[pos], prev);
        prev = b[pos];
    }
}

TEST(Encode, EveryCommandRoundTrips) {
    SessionRequest req;
    req.imsi = *Imsi::fromDigits("001010123456789");
    req.ueConfiguration = UeConfiguration{18, 1, 0, 4, 1};
    req.easId = "x";
    req.ueNonce = 42;
    expectRoundTrip(req, Side::ue);
    req.servingNetwork = *plmnFromDigits("262", "01");
    expectRoundTrip(req, Side::ue);

    SessionStart st;
    st.keyAgreement = crypto::KeyAgreement::eps;
    st.hseConfiguration.hseId = "hse";
    st.hseConfiguration.cpScheme = CounterScheme::n3;
    st.hseConfiguration.upScheme = CounterScheme::n0;
    st.serviceParameters = {Service::kaOnly, UpTermination::none, 0};
    st.requestChecksum = {1, 2, 3, 4, 5, 6, 7, 8};
    expectRoundTrip(st, Side::network);
    st.rand = Rand{};
    st.autn = Autn{};
    expectRoundTrip(st, Side::network);

    expectRoundTrip(SessionStartConfirmation{}, Side::ue);
    expectRoundTrip(SessionTerminateRequest{}, Side::network);
    expectRoundTrip(SessionTerminateRequest{Cause::counter_exhausted}, Side::ue);
    expectRoundTrip(SessionTerminateResponse{}, Side::ue);
    expectRoundTrip(UeManageKeysRequest{}, Side::ue);
    expectRoundTrip(
        HseManageKeysRequest{Rand{}, Autn{}, crypto::KeyAgreement::fiveG, 7, RefreshOrigin::eas},
        Side::network);
    expectRoundTrip(HseManageKeysResponse{Rand{}, Autn{}, crypto::KeyAgreement::umts, 1},
                    Side::network);
    expectRoundTrip(UeManageKeysResponse{KeyConfirmation{}, std::nullopt, std::nullopt}, Side::ue);
    expectRoundTrip(UeManageKeysResponse{std::nullopt, Cause::synch_failure, Auts{}}, Side::ue);
    expectRoundTrip(MessageReject{Cause::congestion, std::nullopt, 30}, Side::network);
    expectRoundTrip(MessageReject{Cause::synch_failure, Auts{}, std::nullopt}, Side::ue);
}

TEST(Encode, UnusedFlagBitsAreSentAsZero) {
    SessionRequest req;
    req.imsi = *Imsi::fromDigits("001010123456789");
    req.ueConfiguration = UeConfiguration{17, 0x07, 0xFF, 0x04, 0x05};
    req.easId = "e";
    const Bytes b = encoded(req);
    ASSERT_GE(b.size(), 17u);
    EXPECT_EQ(b[11], 0x03);  // after the command and the IMSI TLV: UE configuration
    EXPECT_EQ(b[15], 0x03);  // tag, length, release, key agreements, flags
    SessionStart st;
    st.hseConfiguration.hseId = "h";
    st.hseConfiguration.flags = 0xFF;
    const Bytes s = encoded(st);
    ASSERT_GE(s.size(), 9u);
    EXPECT_EQ(s[1], 0x13);
    EXPECT_EQ(s[4], 0x14);
    EXPECT_EQ(s[6 + 4], 0x01);
}

TEST(Encode, RefusesWhatTheDecoderWouldRefuse) {
    const auto invalid = [](const Body& b) {
        std::array<std::uint8_t, kMaxDatagram> out{};
        auto n = encodeBody(b, out);
        return !n && n.error().code == static_cast<int>(EmsdpErrc::invalid_value);
    };
    SessionRequest req;
    req.imsi = *Imsi::fromDigits("001010123456789");
    EXPECT_TRUE(invalid(req));  // empty EAS Id
    const std::string longId(65, 'e');
    req.easId = longId;
    EXPECT_TRUE(invalid(req));
    req.easId = "e";
    req.servingNetwork = PlmnId{0xAA, 0xF1, 0x10};
    EXPECT_TRUE(invalid(req));
    SessionStart st;
    st.hseConfiguration.hseId = "";
    EXPECT_TRUE(invalid(st));
    st.hseConfiguration.hseId = "h";
    st.rand = Rand{};
    EXPECT_TRUE(invalid(st));
    st.rand.reset();
    st.keyAgreement = static_cast<crypto::KeyAgreement>(4);
    EXPECT_TRUE(invalid(st));
    EXPECT_TRUE(invalid(
        HseManageKeysRequest{Rand{}, Autn{}, crypto::KeyAgreement::eps, 0, RefreshOrigin::hse}));
    EXPECT_TRUE(invalid(HseManageKeysResponse{Rand{}, Autn{}, crypto::KeyAgreement::eps, 8}));
    EXPECT_TRUE(invalid(UeManageKeysResponse{}));
    EXPECT_TRUE(invalid(UeManageKeysResponse{KeyConfirmation{}, Cause::aka_mac_failure, {}}));
    EXPECT_TRUE(invalid(UeManageKeysResponse{std::nullopt, Cause::synch_failure, std::nullopt}));
    EXPECT_TRUE(invalid(MessageReject{Cause::congestion, std::nullopt, std::nullopt}));
    EXPECT_TRUE(invalid(MessageReject{Cause::synch_failure, std::nullopt, std::nullopt}));
    // A short buffer.
    std::array<std::uint8_t, 3> tiny{};
    auto n = encodeBody(MessageReject{Cause::invalid_format, Auts{}, std::nullopt}, tiny);
    ASSERT_FALSE(n);
    EXPECT_EQ(n.error().code, static_cast<int>(EmsdpErrc::buffer_too_small));
}

TEST(Names, EveryDropReasonHasAStableDistinctName) {
    std::set<std::string_view> names;
    for (std::size_t i = 0; i < kDropReasonCount; ++i) {
        const std::string_view n = dropReasonName(static_cast<DropReason>(i));
        EXPECT_NE(n, "unknown");
        for (char c : n)
            EXPECT_TRUE((c >= 'a' && c <= 'z') || c == '_') << n;
        names.insert(n);
    }
    EXPECT_EQ(names.size(), kDropReasonCount);
    EXPECT_EQ(dropReasonName(DropReason::truncated_header), "truncated_header");
    EXPECT_EQ(dropReasonName(DropReason::bad_mac), "bad_mac");
    EXPECT_EQ(causeName(Cause::counter_exhausted), "counter_exhausted");
    EXPECT_EQ(causeName(static_cast<Cause>(0x0C)), "undefined");
}

}  // namespace
}  // namespace best::emsdp
