// The one APDU exchange routine against a fake transport in each reader style, and the
// response parsers of the USIM application.
#include <gtest/gtest.h>

#include "common/hex.h"
#include "sim/apdu.h"
#include "sim/sim_error.h"
#include "sim/tlv.h"
#include "sim/usim.h"
#include "tests/sim/support.h"

namespace best::sim {
namespace {

using test::hexBytes;
using test::ScriptedTransport;

int code(const Error& e) {
    return e.code;
}
constexpr int kBadResponse = static_cast<int>(SimErrc::bad_response);

CommandApdu readBinary9() {
    return CommandApdu{0x00, 0xB0, 0x00, 0x00, {}, 9};
}

TEST(ApduEncode, CasesOneToFour) {
    std::array<std::uint8_t, kMaxCommand> buf{};
    CommandApdu c1{0x00, 0x20, 0x00, 0x01, {}, std::nullopt};
    EXPECT_EQ(toHex(ByteView(buf.data(), c1.encode(buf))), "00200001");
    CommandApdu c2{0x00, 0xB0, 0x00, 0x00, {}, 256};
    EXPECT_EQ(toHex(ByteView(buf.data(), c2.encode(buf))), "00b0000000");
    const std::uint8_t fid[] = {0x2F, 0x00};
    CommandApdu c3{0x00, 0xA4, 0x00, 0x0C, fid, std::nullopt};
    EXPECT_EQ(toHex(ByteView(buf.data(), c3.encode(buf))), "00a4000c022f00");
    CommandApdu c4{0x00, 0xA4, 0x00, 0x04, fid, 256};
    EXPECT_EQ(toHex(ByteView(buf.data(), c4.encode(buf))), "00a40004022f0000");
    Bytes tooLong(256, 0);
    CommandApdu bad{0x00, 0xD6, 0x00, 0x00, tooLong, std::nullopt};
    EXPECT_EQ(bad.encode(buf), 0u);
}

TEST(ApduExchange, DirectStyleDataAnd9000) {
    ScriptedTransport t;
    t.add(hexBytes("00b0000009"), hexBytes("080910101032547698"
                                           "9000"));
    auto r = exchange(t, readBinary9());
    ASSERT_TRUE(r) << r.error().describe();
    EXPECT_EQ(r->sw, 0x9000);
    EXPECT_TRUE(r->ok());
    EXPECT_EQ(toHex(r->data.view()), "080910101032547698");
    EXPECT_EQ(t.sent.size(), 1u);
}

TEST(ApduExchange, T0StyleGetResponse) {
    ScriptedTransport t;
    const std::uint8_t aid[] = {0xA0, 0x00, 0x00, 0x00, 0x87, 0x10, 0x02};
    CommandApdu select{0x00, 0xA4, 0x04, 0x04, aid, 256};
    t.add(hexBytes("00a4040407a000000087100200"), hexBytes("6105"));
    t.add(hexBytes("00c0000005"), hexBytes("6203820178"
                                           "9000"));
    auto r = exchange(t, select);
    ASSERT_TRUE(r) << r.error().describe();
    EXPECT_EQ(r->sw, 0x9000);
    EXPECT_EQ(toHex(r->data.view()), "6203820178");
}

TEST(ApduExchange, T0StyleGetResponseRepeated) {
    ScriptedTransport t;
    t.add({}, hexBytes("6110"));
    t.add(hexBytes("00c0000010"), hexBytes("0001020304050607"
                                           "6108"));
    t.add(hexBytes("00c0000008"), hexBytes("08090a0b0c0d0e0f"
                                           "9000"));
    const Bytes body = hexBytes("00");
    CommandApdu c{0x00, 0x88, 0x00, 0x81, body, 256};
    auto r = exchange(t, c);
    ASSERT_TRUE(r) << r.error().describe();
    EXPECT_EQ(r->sw, 0x9000);
    EXPECT_EQ(toHex(r->data.view()), "000102030405060708090a0b0c0d0e0f");
    EXPECT_EQ(t.sent.size(), 3u);
}

TEST(ApduExchange, GetResponseKeepsLogicalChannel) {
    ScriptedTransport t;
    t.add({}, hexBytes("6102"));
    t.add(hexBytes("01c0000002"), hexBytes("abcd9000"));
    CommandApdu c{0x01, 0xF2, 0x00, 0x00, {}, 256};
    auto r = exchange(t, c);
    ASSERT_TRUE(r) << r.error().describe();
    EXPECT_EQ(toHex(r->data.view()), "abcd");
}

TEST(ApduExchange, WrongLeIsResentWithTheRightOne) {
    ScriptedTransport t;
    t.add(hexBytes("00b0000000"), hexBytes("6c09"));
    t.add(hexBytes("00b0000009"), hexBytes("080910101032547698"
                                           "9000"));
    CommandApdu c{0x00, 0xB0, 0x00, 0x00, {}, 256};
    auto r = exchange(t, c);
    ASSERT_TRUE(r) << r.error().describe();
    EXPECT_EQ(r->sw, 0x9000);
    EXPECT_EQ(toHex(r->data.view()), "080910101032547698");
}

TEST(ApduExchange, WrongLeOnGetResponse) {
    ScriptedTransport t;
    t.add({}, hexBytes("6110"));
    t.add(hexBytes("00c0000010"), hexBytes("6c04"));
    t.add(hexBytes("00c0000004"), hexBytes("01020304"
                                           "9000"));
    CommandApdu c{0x00, 0xF2, 0x00, 0x00, {}, 256};
    auto r = exchange(t, c);
    ASSERT_TRUE(r) << r.error().describe();
    EXPECT_EQ(toHex(r->data.view()), "01020304");
}

TEST(ApduExchange, WrongLeThenGetResponse) {
    ScriptedTransport t;
    t.add(hexBytes("00b2010400"), hexBytes("6c04"));
    t.add(hexBytes("00b2010404"), hexBytes("6104"));
    t.add(hexBytes("00c0000004"), hexBytes("61024f00"
                                           "9000"));
    CommandApdu c{0x00, 0xB2, 0x01, 0x04, {}, 256};
    auto r = exchange(t, c);
    ASSERT_TRUE(r) << r.error().describe();
    EXPECT_EQ(toHex(r->data.view()), "61024f00");
}

TEST(ApduExchange, WrongLeTwiceIsReturnedNotLooped) {
    ScriptedTransport t;
    t.add({}, hexBytes("6c09"));
    t.add({}, hexBytes("6c08"));
    auto r = exchange(t, readBinary9());
    ASSERT_TRUE(r);
    EXPECT_EQ(r->sw, 0x6C08);
    EXPECT_FALSE(r->ok());
    EXPECT_EQ(t.sent.size(), 2u);
}

TEST(ApduExchange, Sw91xxIsSuccess) {
    ScriptedTransport t;
    t.add({}, hexBytes("dc0e00112233445566778899aabbccdd"
                       "9110"));
    auto r = exchange(t, readBinary9());
    ASSERT_TRUE(r);
    EXPECT_EQ(r->sw, 0x9110);
    EXPECT_TRUE(r->ok());
    EXPECT_EQ(r->data.size(), 16u);
}

TEST(ApduExchange, Gsm9FxxIsFetchedLike61xx) {
    ScriptedTransport t;
    t.add({}, hexBytes("9f02"));
    t.add(hexBytes("00c0000002"), hexBytes("aabb9000"));
    auto r = exchange(t, readBinary9());
    ASSERT_TRUE(r);
    EXPECT_EQ(toHex(r->data.view()), "aabb");
}

TEST(ApduExchange, ErrorStatusWordIsAValue) {
    ScriptedTransport t;
    t.add({}, hexBytes("6a82"));
    auto r = exchange(t, readBinary9());
    ASSERT_TRUE(r);
    EXPECT_EQ(r->sw, 0x6A82);
    EXPECT_FALSE(r->ok());
    EXPECT_TRUE(r->data.empty());
}

TEST(ApduExchange, ShortResponseIsAnError) {
    ScriptedTransport t;
    t.add({}, hexBytes("90"));
    auto r = exchange(t, readBinary9());
    ASSERT_FALSE(r);
    EXPECT_EQ(code(r.error()), kBadResponse);
}

TEST(ApduExchange, EndlessGetResponseIsBounded) {
    ScriptedTransport t;
    t.add({}, hexBytes("6101"));
    for (int i = 0; i < 64; ++i)
        t.add(hexBytes("00c0000001"), hexBytes("006101"));
    auto r = exchange(t, readBinary9());
    ASSERT_FALSE(r);
    EXPECT_EQ(code(r.error()), kBadResponse);
    EXPECT_NE(r.error().message.find("GET RESPONSE"), std::string::npos);
}

TEST(ApduExchange, TransportFailurePropagates) {
    ScriptedTransport t;
    t.fail(Error{ErrorDomain::sim, static_cast<int>(SimErrc::card_removed), "card removed"});
    auto r = exchange(t, readBinary9());
    ASSERT_FALSE(r);
    EXPECT_EQ(code(r.error()), static_cast<int>(SimErrc::card_removed));
}

TEST(Tlv, NestedPaddedAndLongForm) {
    Bytes rec = hexBytes("611a4f10a0000000871002ffffffff8907090000500653494d2031ffffff");
    auto outer = parseTlvs(rec);
    ASSERT_TRUE(outer);
    ASSERT_EQ(outer->size(), 1u);
    auto app = findTlv(*outer, 0x61);
    ASSERT_TRUE(app);
    auto inner = parseTlvs(*app);
    ASSERT_TRUE(inner);
    auto aid = findTlv(*inner, 0x4F);
    ASSERT_TRUE(aid);
    EXPECT_EQ(toHex(*aid), "a0000000871002ffffffff8907090000");
    Bytes longForm(3 + 200, 0xAA);
    longForm[0] = 0x53;
    longForm[1] = 0x81;
    longForm[2] = 200;
    auto lf = parseTlvs(longForm);
    ASSERT_TRUE(lf);
    EXPECT_EQ((*lf)[0].value.size(), 200u);
    auto twoOctetTag = parseTlvs(hexBytes("5f2d02656e"));
    ASSERT_TRUE(twoOctetTag);
    EXPECT_EQ((*twoOctetTag)[0].tag, 0x5F2D);
}

TEST(Tlv, TruncatedIsAnError) {
    EXPECT_FALSE(parseTlvs(hexBytes("610a4f08a000")));
    EXPECT_FALSE(parseTlvs(hexBytes("61")));
    EXPECT_FALSE(parseTlvs(hexBytes("5381")));
    EXPECT_FALSE(parseTlvs(hexBytes("5383010203")));
}

TEST(AuthenticateResponse, SuccessWithAndWithoutKc) {
    auto r =
        parseAuthenticateResponse(hexBytes("db08a54211d5e3ba50bf10b40ba9a3c58b2a05bbf0d987b21bf8cb1"
                                           "0f769bcd751044604127672711c6d3441"));
    ASSERT_TRUE(r) << r.error().describe();
    auto* ok = std::get_if<AuthSuccess>(&*r);
    ASSERT_NE(ok, nullptr);
    EXPECT_EQ(toHex(ok->res), "a54211d5e3ba50bf");
    EXPECT_EQ(toHex(ok->ck.view()), "b40ba9a3c58b2a05bbf0d987b21bf8cb");
    EXPECT_EQ(toHex(ok->ik.view()), "f769bcd751044604127672711c6d3441");
    EXPECT_FALSE(ok->kc);

    // A 4-octet RES and a Kc: lengths come from the response.
    auto r2 =
        parseAuthenticateResponse(hexBytes("db0401020304"
                                           "1000112233445566778899aabbccddeeff"
                                           "10ffeeddccbbaa99887766554433221100"
                                           "080102030405060708"));
    ASSERT_TRUE(r2) << r2.error().describe();
    auto* ok2 = std::get_if<AuthSuccess>(&*r2);
    ASSERT_NE(ok2, nullptr);
    EXPECT_EQ(toHex(ok2->res), "01020304");
    ASSERT_TRUE(ok2->kc);
    EXPECT_EQ(toHex(ok2->kc->view()), "0102030405060708");
}

TEST(AuthenticateResponse, SyncFailure) {
    auto r = parseAuthenticateResponse(hexBytes("dc0e451e8beca8bc1a3aed14439f2957"));
    ASSERT_TRUE(r) << r.error().describe();
    auto* sync = std::get_if<AuthSyncFailure>(&*r);
    ASSERT_NE(sync, nullptr);
    EXPECT_EQ(toHex(sync->auts), "451e8beca8bc1a3aed14439f2957");
    // Trailing octets, a short AUTS, a wrong length octet.
    EXPECT_EQ(
        parseAuthenticateResponse(hexBytes("dc0e451e8beca8bc1a3aed14439f2957ffff")).error().code,
        kBadResponse);
    EXPECT_EQ(parseAuthenticateResponse(hexBytes("dc0e451e8beca8bc1a3aed14439f29")).error().code,
              kBadResponse);
    EXPECT_EQ(parseAuthenticateResponse(hexBytes("dc0d451e8beca8bc1a3aed14439f29")).error().code,
              kBadResponse);
}

TEST(AuthenticateResponse, MalformedLengths) {
    EXPECT_EQ(parseAuthenticateResponse(hexBytes("")).error().code, kBadResponse);
    EXPECT_EQ(parseAuthenticateResponse(hexBytes("db02aabb")).error().code, kBadResponse);
    EXPECT_EQ(parseAuthenticateResponse(hexBytes("db08a54211d5e3ba50bf08b40ba9a3c58b2a05bb"))
                  .error()
                  .code,
              kBadResponse);  // CK of 8 octets
    EXPECT_EQ(parseAuthenticateResponse(hexBytes("db08a54211d5e3ba50bf10b40ba9")).error().code,
              kBadResponse);  // truncated
    EXPECT_EQ(parseAuthenticateResponse(hexBytes("9a00")).error().code, kBadResponse);
}

TEST(Files, ImsiAndIccidDecoding) {
    auto imsi = decodeImsi(hexBytes("080910101032547698"));
    ASSERT_TRUE(imsi) << imsi.error().describe();
    EXPECT_EQ(*imsi, "001010123456789");
    // 14 digits flagged odd: the parity bit must match.
    EXPECT_FALSE(decodeImsi(hexBytes("0809103254769810f0")));
    auto even = decodeImsi(hexBytes("0801103254769810f0"));
    ASSERT_TRUE(even) << even.error().describe();
    EXPECT_EQ(*even, "00123456789010");
    auto twelve = decodeImsi(hexBytes("07011032547698f0ff"));
    ASSERT_TRUE(twelve) << twelve.error().describe();
    EXPECT_EQ(*twelve, "001234567890");
    EXPECT_FALSE(decodeImsi(hexBytes("ff")));
    auto iccid = decodeIccid(hexBytes("98991000000000000010"));
    ASSERT_TRUE(iccid);
    EXPECT_EQ(*iccid, "89990100000000000001");
}

TEST(Pin, BlockAndFile) {
    auto p = pinBlockFromDigits("1234");
    ASSERT_TRUE(p);
    EXPECT_EQ(toHex(p->view()), "31323334ffffffff");
    EXPECT_FALSE(pinBlockFromDigits("123"));
    EXPECT_FALSE(pinBlockFromDigits("123456789"));
    EXPECT_FALSE(pinBlockFromDigits("12a4"));
    EXPECT_EQ(pinBlockFromDigits("12a4").error().code, static_cast<int>(SimErrc::config));
    auto missing = readPinFile("/nonexistent/pin");
    ASSERT_FALSE(missing);
    EXPECT_NE(missing.error().message.find("/nonexistent/pin"), std::string::npos);
}

}  // namespace
}  // namespace best::sim
