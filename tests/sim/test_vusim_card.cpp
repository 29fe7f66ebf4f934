// The virtual USIM's card logic without sockets: file system, USIM application flow, Milenage
// AUTHENTICATE on every published set, the Annex C SQN array, PIN rules, persistence first.
#include <gtest/gtest.h>

#include "common/hex.h"
#include "sim/sim_error.h"
#include "sim/usim.h"
#include "sim/vusim/card.h"
#include "tests/sim/support.h"

namespace best::sim::vusim {
namespace {

using test::autnFor;
using test::CardTransport;
using test::hexBytes;
using test::MilenageSet;
using test::milenageSets;

constexpr std::uint64_t kInd = 5;

// Records what the card persisted; optionally fails.
class RecordingPersistence final : public SqnPersistence {
public:
    Result<void> persist(const SqnArray& sqn) override {
        ++calls;
        if (failNext)
            return makeError(SimErrc::io, "disk full (test)");
        last = sqn;
        return {};
    }
    int calls = 0;
    bool failNext = false;
    SqnArray last;
};

struct CardUnderTest {
    RecordingPersistence persistence;
    std::optional<VirtualUsim> card;
};

std::unique_ptr<CardUnderTest> makeCard(const MilenageSet& v, ResponseStyle style,
                                        const SqnArray& sqn,
                                        std::optional<std::string> pin = std::nullopt,
                                        std::size_t chunk = 0) {
    auto c = std::make_unique<CardUnderTest>();
    CardProfile p;
    p.imsi = "001010123456789";
    p.iccid = "89990100000000000001";
    p.style = style;
    p.getResponseChunk = chunk;
    if (pin)
        p.pin = *pinBlockFromDigits(*pin);
    auto card = VirtualUsim::create(std::move(p), v.k, v.opc, sqn, &c->persistence);
    EXPECT_TRUE(card) << card.error().describe();
    if (card)
        c->card.emplace(std::move(*card));
    return c;
}

// SEQ_MS(IND of the set's SQN) = SEQ - 1, so the published SQN is fresh.
SqnArray arrayJustBelow(const MilenageSet& v) {
    SqnArray a;
    const std::uint64_t sqn = v.sqnInt();
    EXPECT_TRUE(a.setSeq(sqn & 31, (sqn >> 5) - 1));
    return a;
}

Bytes raw(VirtualUsim& card, const std::string& hex) {
    std::array<std::uint8_t, kMaxResponse> out{};
    Bytes cmd = hexBytes(hex);
    std::size_t n = card.process(cmd, out);
    return Bytes(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(n));
}

std::string rawHex(VirtualUsim& card, const std::string& hex) {
    return toHex(raw(card, hex));
}

std::string authApdu(const crypto::Rand& rand, const crypto::Autn& autn) {
    return "0088008122" + std::string("10") + toHex(rand) + "10" + toHex(autn) + "00";
}

class CardStyle : public ::testing::TestWithParam<ResponseStyle> {};

TEST_P(CardStyle, UsimApplicationFlow) {
    const auto& v = milenageSets().at(0);
    auto c = makeCard(v, GetParam(), arrayJustBelow(v));
    ASSERT_TRUE(c->card);
    CardTransport t(*c->card);
    Usim usim(t);
    auto iccid = usim.readIccid();
    ASSERT_TRUE(iccid) << iccid.error().describe();
    EXPECT_EQ(*iccid, "89990100000000000001");
    auto aid = usim.findUsimAid();
    ASSERT_TRUE(aid) << aid.error().describe();
    EXPECT_EQ(toHex(*aid), toHex(defaultUsimAid()));
    ASSERT_TRUE(usim.selectAid(*aid));
    auto imsi = usim.readImsi();
    ASSERT_TRUE(imsi) << imsi.error().describe();
    EXPECT_EQ(*imsi, "001010123456789");
    auto out = usim.authenticate(v.rand, v.autn());
    ASSERT_TRUE(out) << out.error().describe();
    auto* ok = std::get_if<AuthSuccess>(&*out);
    ASSERT_NE(ok, nullptr);
    EXPECT_EQ(toHex(ok->res), toHex(v.f2));
    EXPECT_EQ(toHex(ok->ck.view()), toHex(v.f3));
    EXPECT_EQ(toHex(ok->ik.view()), toHex(v.f4));
    EXPECT_FALSE(ok->kc);
}

TEST_P(CardStyle, EveryPublishedSet) {
    for (const auto& v : milenageSets()) {
        SCOPED_TRACE("set " + std::to_string(v.set));
        auto c = makeCard(v, GetParam(), arrayJustBelow(v), std::nullopt, v.set % 2 ? 0 : 16);
        ASSERT_TRUE(c->card);
        CardTransport t(*c->card);
        Usim usim(t);
        auto aid = usim.findUsimAid();
        ASSERT_TRUE(aid) << aid.error().describe();
        ASSERT_TRUE(usim.selectAid(*aid));
        auto out = usim.authenticate(v.rand, v.autn());
        ASSERT_TRUE(out) << out.error().describe();
        auto* ok = std::get_if<AuthSuccess>(&*out);
        ASSERT_NE(ok, nullptr);
        EXPECT_EQ(toHex(ok->res), toHex(v.f2));
        EXPECT_EQ(toHex(ok->ck.view()), toHex(v.f3));
        EXPECT_EQ(toHex(ok->ik.view()), toHex(v.f4));
        EXPECT_EQ(c->card->sqn().seq(v.sqnInt() & 31), v.sqnInt() >> 5);
        EXPECT_EQ(c->persistence.calls, 1);
        EXPECT_EQ(c->card->counters().authenticateOk, 1u);
    }
}

INSTANTIATE_TEST_SUITE_P(Styles, CardStyle,
                         ::testing::Values(ResponseStyle::t0, ResponseStyle::direct),
                         [](const auto& info) {
                             return std::string(info.param == ResponseStyle::t0 ? "t0" : "direct");
                         });

TEST(Card, Atr) {
    const auto& v = milenageSets().at(0);
    auto t0 = makeCard(v, ResponseStyle::t0, SqnArray());
    auto direct = makeCard(v, ResponseStyle::direct, SqnArray());
    EXPECT_EQ(toHex(t0->card->atr()), "3b0a424553542d565553494d");
    Bytes a = direct->card->atr();
    EXPECT_EQ(toHex(a).substr(0, 6), "3b8a01");
    std::uint8_t x = 0;
    for (std::size_t i = 1; i < a.size(); ++i)
        x ^= a[i];
    EXPECT_EQ(x, 0);  // TCK makes the XOR of T0..TCK zero
}

TEST(Card, T0StyleAnnouncesDataAndCorrectsLe) {
    const auto& v = milenageSets().at(0);
    auto c = makeCard(v, ResponseStyle::t0, SqnArray(), std::nullopt, 8);
    VirtualUsim& card = *c->card;
    // SELECT EF.DIR with FCP: 61 xx, then GET RESPONSE in chunks of 8.
    EXPECT_EQ(rawHex(card, "00a40004022f0000"), "6114");
    EXPECT_EQ(rawHex(card, "00c0000020"), "6c14");  // Le larger than what is left
    EXPECT_EQ(rawHex(card, "00c0000014"),
              "6212820542210026"
              "610c");
    EXPECT_EQ(rawHex(card, "00c000000c"),
              "0283022f00800200"
              "6104");
    EXPECT_EQ(rawHex(card, "00c0000004"),
              "4c8a0105"
              "9000");
    // READ RECORD with Le 00 on a 38-octet record: 6C 26, then the right Le works.
    EXPECT_EQ(rawHex(card, "00b2010400"), "6c26");
    Bytes rec = raw(card, "00b2010426");
    ASSERT_EQ(rec.size(), 0x26u + 2);
    EXPECT_EQ(toHex(ByteView(rec).last(2)), "9000");
    EXPECT_EQ(rec[0], 0x61);
    // Nothing pending any more.
    EXPECT_EQ(rawHex(card, "00c0000010"), "6985");
}

TEST(Card, DirectStyleAnswersAtOnce) {
    const auto& v = milenageSets().at(0);
    auto c = makeCard(v, ResponseStyle::direct, SqnArray());
    VirtualUsim& card = *c->card;
    Bytes fcp = raw(card, "00a40004022f0000");
    ASSERT_GT(fcp.size(), 2u);
    EXPECT_EQ(fcp[0], 0x62);
    EXPECT_EQ(toHex(ByteView(fcp).last(2)), "9000");
    Bytes rec = raw(card, "00b2010400");
    EXPECT_EQ(rec.size(), 0x26u + 2);
    EXPECT_EQ(rawHex(card, "00b2030400"), "6a83");      // two records only
    EXPECT_EQ(rawHex(card, "00a4000c022f00"), "9000");  // no FCP requested
}

TEST(Card, CommandErrors) {
    const auto& v = milenageSets().at(0);
    auto c = makeCard(v, ResponseStyle::direct, arrayJustBelow(v));
    VirtualUsim& card = *c->card;
    EXPECT_EQ(rawHex(card, "00a4"), "6700");
    EXPECT_EQ(rawHex(card, "00ca000000"), "6d00");
    EXPECT_EQ(rawHex(card, "a0a40000023f00"), "6e00");              // GSM class
    EXPECT_EQ(rawHex(card, "00a40004026f0700"), "6a82");            // EF.IMSI is not under the MF
    EXPECT_EQ(rawHex(card, "00a4080402123400"), "6a86");            // path selection: not supported
    EXPECT_EQ(rawHex(card, "00a4040407a000000087100300"), "6a82");  // not our AID
    EXPECT_EQ(rawHex(card, "00b0000009"), "6986");                  // no EF selected
    EXPECT_EQ(rawHex(card, "00a4000c022f00"), "9000");
    EXPECT_EQ(rawHex(card, "00b0000009"), "6981");    // EF.DIR is not transparent
    EXPECT_EQ(rawHex(card, "00c0000010"), "6985");    // nothing pending
    EXPECT_EQ(rawHex(card, "00a400040401"), "6700");  // Lc/data mismatch
    // AUTHENTICATE before the USIM is selected, in GSM context, with a bad length.
    EXPECT_EQ(rawHex(card, authApdu(v.rand, v.autn())), "6985");
    EXPECT_EQ(rawHex(card, "00a4040c07a0000000871002"), "9000");
    std::string gsm = authApdu(v.rand, v.autn());
    gsm[7] = '0';  // P2 80
    EXPECT_EQ(rawHex(card, gsm), "6a86");
    EXPECT_EQ(rawHex(card, "008800811010" + toHex(v.rand)), "6700");
    std::string badTag = authApdu(v.rand, v.autn());
    badTag[10] = '2';  // first length octet 0x20
    EXPECT_EQ(rawHex(card, badTag), "6a80");
    EXPECT_EQ(c->persistence.calls, 0);
}

TEST(Card, MacIsCheckedBeforeFreshness) {
    const auto& v = milenageSets().at(0);
    auto c = makeCard(v, ResponseStyle::direct, arrayJustBelow(v));
    VirtualUsim& card = *c->card;
    EXPECT_EQ(rawHex(card, "00a4040c07a0000000871002"), "9000");
    // A bad MAC on a fresh SQN, and on a stale one: both 98 62, nothing persisted.
    crypto::Autn bad = v.autn();
    bad[15] ^= 0x01;
    EXPECT_EQ(rawHex(card, authApdu(v.rand, bad)), "9862");
    crypto::Autn staleBad = autnFor(v, v.sqnInt() - 64);
    staleBad[8] ^= 0x80;
    EXPECT_EQ(rawHex(card, authApdu(v.rand, staleBad)), "9862");
    EXPECT_EQ(c->persistence.calls, 0);
    EXPECT_EQ(card.counters().macFailures, 2u);
    // The state is untouched: the genuine AUTN is still fresh.
    Bytes ok = raw(card, authApdu(v.rand, v.autn()));
    EXPECT_EQ(ok[0], 0xDB);
}

TEST(Card, SyncFailureCarriesHighestAcceptedSqn) {
    const auto& v = milenageSets().at(2);
    auto c = makeCard(v, ResponseStyle::direct, arrayJustBelow(v));
    CardTransport t(*c->card);
    Usim usim(t);
    ASSERT_TRUE(usim.selectAid(defaultUsimAid()));
    auto first = usim.authenticate(v.rand, v.autn());
    ASSERT_TRUE(first);
    ASSERT_TRUE(std::holds_alternative<AuthSuccess>(*first));
    auto replay = usim.authenticate(v.rand, v.autn());
    ASSERT_TRUE(replay);
    auto* sync = std::get_if<AuthSyncFailure>(&*replay);
    ASSERT_NE(sync, nullptr);
    // AUTS = SQN_MS xor AK* || MAC-S: with the published f5* the SQN_MS is visible directly.
    for (std::size_t i = 0; i < 6; ++i)
        EXPECT_EQ(sync->auts[i] ^ v.f5star[i], v.sqn[i]) << i;
    crypto::SoftAes128 ek(v.k);
    auto sqnMs = crypto::recoverSqnMs(ek, v.opc, v.rand, sync->auts);
    ASSERT_TRUE(sqnMs) << sqnMs.error().describe();
    EXPECT_EQ(crypto::sqnToInt(*sqnMs), v.sqnInt());
    EXPECT_EQ(c->persistence.calls, 1);
    EXPECT_EQ(c->card->counters().syncFailures, 1u);
}

TEST(Card, NothingAcceptedYetMeansSqnMsZero) {
    const auto& v = milenageSets().at(0);  // SEQ far beyond delta from 0
    auto c = makeCard(v, ResponseStyle::direct, SqnArray());
    CardTransport t(*c->card);
    Usim usim(t);
    ASSERT_TRUE(usim.selectAid(defaultUsimAid()));
    auto out = usim.authenticate(v.rand, v.autn());
    ASSERT_TRUE(out);
    auto* sync = std::get_if<AuthSyncFailure>(&*out);
    ASSERT_NE(sync, nullptr);
    crypto::SoftAes128 ek(v.k);
    auto sqnMs = crypto::recoverSqnMs(ek, v.opc, v.rand, sync->auts);
    ASSERT_TRUE(sqnMs);
    EXPECT_EQ(crypto::sqnToInt(*sqnMs), 0u);
    for (std::size_t i = 0; i < 6; ++i)
        EXPECT_EQ(sync->auts[i], v.f5star[i]);  // 0 xor AK*
}

TEST(Card, ArrayPerIndAndDeltaLimit) {
    const auto& v = milenageSets().at(3);  // SQN 0b604a81eca8: room above for the delta test
    const std::uint64_t s = v.sqnInt() >> 5;
    SqnArray init;
    ASSERT_TRUE(init.setSeq(kInd, s - 10));
    ASSERT_TRUE(init.setSeq(3, s - 10));
    auto c = makeCard(v, ResponseStyle::direct, init);
    CardTransport t(*c->card);
    Usim usim(t);
    ASSERT_TRUE(usim.selectAid(defaultUsimAid()));
    auto run = [&](std::uint64_t seq, std::uint64_t ind) {
        auto out = usim.authenticate(v.rand, autnFor(v, (seq << 5) | ind));
        EXPECT_TRUE(out) << out.error().describe();
        return out ? out->index() : 99;
    };
    constexpr std::size_t kOk = 0, kSync = 1;
    EXPECT_EQ(run(s, kInd), kOk);
    EXPECT_EQ(run(s - 5, kInd), kSync);           // stale in its IND
    EXPECT_EQ(run(s - 5, 3), kOk);                // fresh in another IND, below the highest SEQ
    EXPECT_EQ(run(s - 5, 3), kSync);              // replay
    EXPECT_EQ(run(s + kSqnDelta + 1, 7), kSync);  // beyond delta
    EXPECT_EQ(run(s + kSqnDelta, 7), kOk);        // exactly delta
    EXPECT_EQ(c->card->sqn().highestSqn(), ((s + kSqnDelta) << 5) | 7);
    EXPECT_EQ(c->persistence.last.seq(7), s + kSqnDelta);
    EXPECT_EQ(c->persistence.calls, 3);
}

TEST(Card, PersistenceFailureRefusesTheAnswer) {
    const auto& v = milenageSets().at(0);
    auto c = makeCard(v, ResponseStyle::direct, arrayJustBelow(v));
    VirtualUsim& card = *c->card;
    EXPECT_EQ(rawHex(card, "00a4040c07a0000000871002"), "9000");
    c->persistence.failNext = true;
    EXPECT_EQ(rawHex(card, authApdu(v.rand, v.autn())), "6f00");
    EXPECT_EQ(card.sqn().seq(v.sqnInt() & 31), (v.sqnInt() >> 5) - 1);  // not advanced
    EXPECT_EQ(card.counters().persistFailures, 1u);
    c->persistence.failNext = false;
    Bytes ok = raw(card, authApdu(v.rand, v.autn()));
    ASSERT_FALSE(ok.empty());
    EXPECT_EQ(ok[0], 0xDB);
    EXPECT_EQ(c->persistence.last.seq(v.sqnInt() & 31), v.sqnInt() >> 5);
}

TEST(Card, PinRules) {
    const auto& v = milenageSets().at(0);
    auto c = makeCard(v, ResponseStyle::direct, arrayJustBelow(v), "2468");
    VirtualUsim& card = *c->card;
    CardTransport t(card);
    Usim usim(t);
    ASSERT_TRUE(usim.selectAid(defaultUsimAid()));
    auto imsi = usim.readImsi();
    ASSERT_FALSE(imsi);
    EXPECT_EQ(imsi.error().code, static_cast<int>(SimErrc::pin_required));
    EXPECT_NE(imsi.error().message.find("6982"), std::string::npos);
    auto auth = usim.authenticate(v.rand, v.autn());
    ASSERT_FALSE(auth);
    EXPECT_EQ(auth.error().code, static_cast<int>(SimErrc::pin_required));
    EXPECT_EQ(*usim.pinAttemptsLeft(), 3);

    auto wrong = usim.verifyPin(*pinBlockFromDigits("1357"));
    ASSERT_FALSE(wrong);
    EXPECT_EQ(wrong.error().code, static_cast<int>(SimErrc::pin_incorrect));
    EXPECT_NE(wrong.error().message.find("2 attempts left"), std::string::npos);
    EXPECT_EQ(*usim.pinAttemptsLeft(), 2);
    ASSERT_TRUE(usim.verifyPin(*pinBlockFromDigits("2468")));
    EXPECT_FALSE(usim.pinAttemptsLeft());  // 9000: nothing to verify
    ASSERT_TRUE(usim.readImsi());
    auto ok = usim.authenticate(v.rand, v.autn());
    ASSERT_TRUE(ok);
    EXPECT_TRUE(std::holds_alternative<AuthSuccess>(*ok));

    // A reset forgets the verification; three wrong PINs block it for good.
    card.reset();
    ASSERT_TRUE(usim.selectAid(defaultUsimAid()));
    EXPECT_EQ(usim.readImsi().error().code, static_cast<int>(SimErrc::pin_required));
    for (int i = 0; i < 2; ++i)
        EXPECT_EQ(usim.verifyPin(*pinBlockFromDigits("0000")).error().code,
                  static_cast<int>(SimErrc::pin_incorrect));
    auto blocked = usim.verifyPin(*pinBlockFromDigits("0000"));
    EXPECT_EQ(blocked.error().code, static_cast<int>(SimErrc::pin_blocked));
    EXPECT_EQ(usim.verifyPin(*pinBlockFromDigits("2468")).error().code,
              static_cast<int>(SimErrc::pin_blocked));
    EXPECT_EQ(*usim.pinAttemptsLeft(), 0);
}

TEST(Card, NoPinConfigured) {
    const auto& v = milenageSets().at(0);
    auto c = makeCard(v, ResponseStyle::direct, arrayJustBelow(v));
    EXPECT_EQ(rawHex(*c->card, "002000010831323334ffffffff"), "6a88");
    EXPECT_EQ(rawHex(*c->card, "00200001"), "9000");
}

TEST(Card, ProfileValidation) {
    const auto& v = milenageSets().at(0);
    CardProfile p;
    p.imsi = "12345";  // too short
    p.iccid = "89990100000000000001";
    auto bad = VirtualUsim::create(p, v.k, v.opc, SqnArray(), nullptr);
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().code, static_cast<int>(SimErrc::config));
    p.imsi = "001010123456789";
    p.aid = hexBytes("a0000000871004");  // ISIM, not USIM
    EXPECT_FALSE(VirtualUsim::create(p, v.k, v.opc, SqnArray(), nullptr));
    auto imsiEf = encodeImsi("001010123456789");
    ASSERT_TRUE(imsiEf);
    EXPECT_EQ(toHex(*imsiEf), "080910101032547698");
    auto back = decodeImsi(*imsiEf);
    ASSERT_TRUE(back);
    EXPECT_EQ(*back, "001010123456789");
}

TEST(SqnArrayTest, Rules) {
    SqnArray a(5, 1000);
    EXPECT_EQ(a.size(), 32u);
    EXPECT_EQ(a.highestSqn(), 0u);
    EXPECT_EQ(a.check((1u << 5) | 0), Freshness::fresh);
    EXPECT_EQ(a.check((1001u << 5) | 2), Freshness::too_far);
    a.accept((500u << 5) | 2);
    EXPECT_EQ(a.highestSqn(), (500u << 5) | 2);
    EXPECT_EQ(a.check((500u << 5) | 2), Freshness::stale);
    EXPECT_EQ(a.check((499u << 5) | 2), Freshness::stale);
    EXPECT_EQ(a.check((1u << 5) | 3), Freshness::fresh);
    EXPECT_EQ(a.check((1500u << 5) | 3), Freshness::fresh);
    EXPECT_EQ(a.check((1501u << 5) | 3), Freshness::too_far);
    a.accept((500u << 5) | 9);
    EXPECT_EQ(a.highestSqn(), (500u << 5) | 9);  // ties: the higher IND is numerically higher
    EXPECT_FALSE(a.setSeq(32, 1));
    EXPECT_FALSE(a.setSeq(0, std::uint64_t{1} << 43));
    EXPECT_TRUE(a.setSeq(0, (std::uint64_t{1} << 43) - 1));
    SqnArray none(0);
    EXPECT_EQ(none.size(), 1u);
    EXPECT_EQ(none.check(5), Freshness::fresh);
}

}  // namespace
}  // namespace best::sim::vusim
