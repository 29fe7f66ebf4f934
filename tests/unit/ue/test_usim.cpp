// The software USIM and its SQN array (TS 33.102 Annex C.2, profile section 9): MAC before
// freshness, SEQ > SEQ_MS(IND), SEQ - max(SEQ_MS) <= 2^28, AUTS over the highest accepted
// SEQ || IND (0 when none), and the persistence callback.
#include <gtest/gtest.h>

#include "rig.h"
#include "ue/sqn_array.h"
#include "ue/usim.h"

namespace best::ue::test {
namespace {

crypto::Sqn sqn(std::uint64_t seq, unsigned ind = 7) {
    return crypto::sqnFromInt((seq << 5) | ind);
}

struct Network {
    SubscriberK k = SubscriberK(hexBytes(kExampleK));
    Opc opc = Opc(hexBytes(kExampleOpc));
    crypto::Amf amf{0xb9, 0xb9};
    crypto::AuthVector vector(std::uint64_t seq, unsigned ind = 7, std::uint8_t r = 0x23) {
        crypto::Rand rand{};
        rand.fill(r);
        crypto::SoftAes128 ek(k);
        auto v = crypto::generateVector(ek, opc, rand, sqn(seq, ind), amf);
        EXPECT_TRUE(v.has_value());
        return *v;
    }
    // SQN_MS carried in an AUTS.
    std::uint64_t sqnMs(const crypto::Rand& rand, const crypto::Auts& auts) {
        crypto::SoftAes128 ek(k);
        auto s = crypto::recoverSqnMs(ek, opc, rand, auts);
        EXPECT_TRUE(s.has_value()) << "MAC-S must verify";
        return s ? crypto::sqnToInt(*s) : 0;
    }
};

TEST(UeSqnArray, FreshnessRules) {
    SqnArray a;
    EXPECT_EQ(a.size(), 32u);
    EXPECT_EQ(a.highestSqn(), 0u);
    EXPECT_EQ(a.check((1u << 5) | 3), Freshness::fresh);
    EXPECT_EQ(a.check((kSqnDelta + 1) << 5), Freshness::too_far);
    EXPECT_EQ(a.check(kSqnDelta << 5), Freshness::fresh) << "exactly delta is allowed";
    a.accept((10u << 5) | 3);
    EXPECT_EQ(a.seq(3), 10u);
    EXPECT_EQ(a.check((10u << 5) | 3), Freshness::stale);
    EXPECT_EQ(a.check((9u << 5) | 4), Freshness::fresh) << "another IND has its own SEQ_MS";
    a.accept((9u << 5) | 4);
    EXPECT_EQ(a.highestSqn(), (10u << 5) | 3);
    a.accept((10u << 5) | 5);
    EXPECT_EQ(a.highestSqn(), (10u << 5) | 5) << "numerically highest SEQ || IND";
    EXPECT_EQ(a.check(((10 + kSqnDelta) << 5) | 1), Freshness::fresh);
    EXPECT_EQ(a.check(((11 + kSqnDelta) << 5) | 1), Freshness::too_far);
    EXPECT_FALSE(a.setSeq(32, 1).has_value());
    EXPECT_FALSE(a.setSeq(0, std::uint64_t{1} << 43).has_value());
    EXPECT_FALSE(a.setSeqs(std::vector<std::uint64_t>(31, 0)).has_value());
}

TEST(UeSoftUsim, SuccessGivesCkIkAndAcceptsTheSqn) {
    Network net;
    SoftUsim usim = exampleSoftUsim();
    const auto v = net.vector(5);
    auto r = usim.authenticate(v.rand, v.autn);
    ASSERT_TRUE(r.has_value());
    const auto* s = std::get_if<AkaSuccess>(&*r);
    ASSERT_NE(s, nullptr);
    EXPECT_TRUE(s->ck.equals(v.ck));
    EXPECT_TRUE(s->ik.equals(v.ik));
    EXPECT_EQ(s->res, Bytes(v.xres.begin(), v.xres.end()));
    EXPECT_EQ(usim.sqnArray().seq(7), 5u);
    EXPECT_EQ(*usim.imsi(), std::string(kImsi));
}

TEST(UeSoftUsim, ReplayIsASyncFailureWithTheHighestAcceptedSqn) {
    Network net;
    SoftUsim usim = exampleSoftUsim();
    const auto v5 = net.vector(5, 7);
    const auto v9 = net.vector(9, 2, 0x24);
    ASSERT_TRUE(std::holds_alternative<AkaSuccess>(*usim.authenticate(v5.rand, v5.autn)));
    ASSERT_TRUE(std::holds_alternative<AkaSuccess>(*usim.authenticate(v9.rand, v9.autn)));
    auto r = usim.authenticate(v5.rand, v5.autn);
    ASSERT_TRUE(r.has_value());
    const auto* sync = std::get_if<AkaSyncFailure>(&*r);
    ASSERT_NE(sync, nullptr);
    EXPECT_EQ(net.sqnMs(v5.rand, sync->auts), (9u << 5) | 2);
}

TEST(UeSoftUsim, TooFarAheadIsASyncFailureWithSqnMsZeroWhenNothingWasAccepted) {
    Network net;
    SoftUsim usim = exampleSoftUsim();
    const auto v = net.vector(kSqnDelta + 1);
    auto r = usim.authenticate(v.rand, v.autn);
    ASSERT_TRUE(r.has_value());
    const auto* sync = std::get_if<AkaSyncFailure>(&*r);
    ASSERT_NE(sync, nullptr);
    EXPECT_EQ(net.sqnMs(v.rand, sync->auts), 0u);
    EXPECT_EQ(usim.sqnArray().seq(7), 0u);
}

TEST(UeSoftUsim, MacIsCheckedBeforeFreshness) {
    Network net;
    SoftUsim usim = exampleSoftUsim(100);
    auto v = net.vector(3);  // stale, and with a broken MAC-A
    v.autn[15] ^= 0x01;
    auto r = usim.authenticate(v.rand, v.autn);
    ASSERT_TRUE(r.has_value());
    EXPECT_TRUE(std::holds_alternative<AkaMacFailure>(*r));
    EXPECT_EQ(usim.sqnArray().seq(7), 100u);
}

TEST(UeSoftUsim, PersistCallbackSeesTheNewSqnAndItsFailureIsAUsimError) {
    Network net;
    std::vector<std::uint64_t> seen;
    bool fail = false;
    SoftUsim usim(net.k, net.opc, std::string(kImsi), SqnArray(),
                  [&](const SqnArray& a) -> Result<void> {
                      seen.push_back(a.seq(7));
                      if (fail)
                          return makeError(StateFileErrc::io, "disk full");
                      return {};
                  });
    const auto v1 = net.vector(1);
    ASSERT_TRUE(std::holds_alternative<AkaSuccess>(*usim.authenticate(v1.rand, v1.autn)));
    EXPECT_EQ(seen, std::vector<std::uint64_t>{1});
    fail = true;
    const auto v2 = net.vector(2);
    auto r = usim.authenticate(v2.rand, v2.autn);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code, static_cast<int>(UeErrc::usim));
    // A sync failure changes nothing, so nothing is saved.
    seen.clear();
    auto again = usim.authenticate(v1.rand, v1.autn);
    ASSERT_TRUE(again.has_value());
    EXPECT_TRUE(std::holds_alternative<AkaSyncFailure>(*again));
    EXPECT_TRUE(seen.empty());
}

}  // namespace
}  // namespace best::ue::test
