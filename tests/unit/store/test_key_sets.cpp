// Key sets (current / pending; tentative stays in memory), resumption nonces, use counts, the
// EAS key identifier index, and refreshes in progress.
#include <future>

#include "store_test_util.h"

namespace best::store::test {
namespace {

constexpr const char* kImsi = "001010123456789";

class StoreKeySets : public ::testing::Test {
protected:
    void SetUp() override {
        store_ = openOrDie(dir_.file("state.db"));
        ASSERT_NE(store_, nullptr);
        ASSERT_TRUE(store_->addEas({"eas-a", ServiceMode::kaOnly, {}, {}, 0}).has_value());
        ASSERT_TRUE(store_->addSubscriber(subscriber(kImsi)).has_value());
    }
    std::vector<std::uint8_t> kids() {
        std::vector<std::uint8_t> out;
        auto l = store_->listKeySets(kImsi);
        EXPECT_TRUE(l.has_value());
        if (l) {
            for (const auto& k : *l)
                out.push_back(k.kid);
        }
        return out;
    }
    TempDir dir_;
    std::unique_ptr<Store> store_;
};

TEST_F(StoreKeySets, PutCurrentRoundTripsEveryField) {
    auto k = keySet(kImsi, 3, KeySetState::current);
    k.highestNonce = 0xfedcba9876543210ull;
    k.useCount = 4;
    EasKeyRecord e2e;
    e2e.easId = "eas-0";
    e2e.type = EasKeyType::kIntE2e;
    e2e.key = blob(77);
    e2e.identifier.fill(0x42);
    k.easKeys.push_back(e2e);  // out of order on purpose: read back sorted by EAS Id
    ASSERT_TRUE(store_->putKeySet(k).has_value());

    auto got = store_->getKeySet(kImsi, 3);
    ASSERT_TRUE(got.has_value()) << got.error().describe();
    std::sort(k.easKeys.begin(), k.easKeys.end(),
              [](const auto& a, const auto& b) { return a.easId < b.easId; });
    EXPECT_EQ(*got, k);

    k.kid = 4;
    k.plmn.reset();
    k.highestNonce.reset();
    k.keyAgreement = KeyAgreement::umts;
    k.easKeys.clear();
    ASSERT_TRUE(store_->putKeySet(k).has_value());
    got = store_->getKeySet(kImsi, 4);
    ASSERT_TRUE(got.has_value());
    EXPECT_EQ(*got, k);
}

TEST_F(StoreKeySets, CurrentReplacesEverySetPendingReplacesOnlyPending) {
    ASSERT_TRUE(store_->putKeySet(keySet(kImsi, 1, KeySetState::current)).has_value());
    ASSERT_TRUE(store_->putKeySet(keySet(kImsi, 2, KeySetState::pending)).has_value());
    EXPECT_EQ(kids(), (std::vector<std::uint8_t>{1, 2}));

    // A new refresh replaces the unused pending set (profile 4.4).
    ASSERT_TRUE(store_->putKeySet(keySet(kImsi, 3, KeySetState::pending)).has_value());
    EXPECT_EQ(kids(), (std::vector<std::uint8_t>{1, 3}));
    EXPECT_EQ(store_->getKeySet(kImsi, 3)->state, KeySetState::pending);

    // A pending set may not take the current set's KID.
    auto clash = store_->putKeySet(keySet(kImsi, 1, KeySetState::pending));
    EXPECT_STORE_ERROR(clash, StoreErrc::duplicate);
    EXPECT_EQ(clash.error().message, "Key ID 1 is in use by another key set of 001010123456789");
    // The failed write is rolled back as a whole: pending 3 was not deleted by it.
    EXPECT_EQ(kids(), (std::vector<std::uint8_t>{1, 3}));
}

TEST_F(StoreKeySets, ConfirmedTentativeSetBecomesCurrentAndDestroysTheOthers) {
    ASSERT_TRUE(store_->putKeySet(keySet(kImsi, 1, KeySetState::current)).has_value());
    ASSERT_TRUE(store_->putKeySet(keySet(kImsi, 2, KeySetState::pending)).has_value());
    // A full AKA's tentative set (KID 5, in memory until now) is confirmed.
    ASSERT_TRUE(store_->putKeySet(keySet(kImsi, 5, KeySetState::current)).has_value());
    EXPECT_EQ(kids(), (std::vector<std::uint8_t>{5}));
    EXPECT_EQ(store_->getKeySet(kImsi, 5)->state, KeySetState::current);
}

TEST_F(StoreKeySets, MakeCurrentPromotesPendingAndDestroysThePrevious) {
    ASSERT_TRUE(store_->putKeySet(keySet(kImsi, 1, KeySetState::current)).has_value());
    ASSERT_TRUE(store_->putKeySet(keySet(kImsi, 2, KeySetState::pending)).has_value());
    ASSERT_TRUE(store_->makeCurrent(kImsi, 2).has_value());
    EXPECT_EQ(kids(), (std::vector<std::uint8_t>{2}));
    EXPECT_EQ(store_->getKeySet(kImsi, 2)->state, KeySetState::current);
    // Making the current set current again is harmless.
    EXPECT_TRUE(store_->makeCurrent(kImsi, 2).has_value());
    auto r = store_->makeCurrent(kImsi, 1);
    EXPECT_STORE_ERROR(r, StoreErrc::not_found);
    EXPECT_EQ(r.error().message, "no key set 1 for IMSI 001010123456789");
    EXPECT_EQ(kids(), (std::vector<std::uint8_t>{2}));
}

TEST_F(StoreKeySets, ResumptionNonceHighWaterMarkIsUnsignedAndStrictlyIncreasing) {
    auto k = keySet(kImsi, 1, KeySetState::pending);  // a pending set starts with no nonce
    ASSERT_TRUE(store_->putKeySet(k).has_value());
    EXPECT_FALSE(store_->getKeySet(kImsi, 1)->highestNonce.has_value());
    EXPECT_TRUE(store_->acceptResumptionNonce(kImsi, 1, 0).has_value());
    EXPECT_STORE_ERROR(store_->acceptResumptionNonce(kImsi, 1, 0), StoreErrc::stale_nonce);
    EXPECT_TRUE(store_->acceptResumptionNonce(kImsi, 1, 0x7fffffffffffffffull).has_value());
    // Above 2^63: compared as unsigned, not as a negative signed number.
    EXPECT_TRUE(store_->acceptResumptionNonce(kImsi, 1, 0x8000000000000000ull).has_value());
    auto stale = store_->acceptResumptionNonce(kImsi, 1, 0x7fffffffffffffffull);
    EXPECT_STORE_ERROR(stale, StoreErrc::stale_nonce);
    EXPECT_NE(stale.error().message.find("not greater"), std::string::npos);
    EXPECT_TRUE(store_->acceptResumptionNonce(kImsi, 1, 0xffffffffffffffffull).has_value());
    EXPECT_STORE_ERROR(store_->acceptResumptionNonce(kImsi, 1, 0xffffffffffffffffull),
                       StoreErrc::stale_nonce);
    EXPECT_EQ(store_->getKeySet(kImsi, 1)->highestNonce, 0xffffffffffffffffull);

    EXPECT_STORE_ERROR(store_->acceptResumptionNonce(kImsi, 2, 5), StoreErrc::not_found);
    EXPECT_STORE_ERROR(store_->acceptResumptionNonce("001010000000000", 1, 5),
                       StoreErrc::not_found);
    EXPECT_STORE_ERROR(store_->acceptResumptionNonce(kImsi, 0, 5), StoreErrc::invalid_argument);
}

TEST_F(StoreKeySets, NonceHighWaterMarkSurvivesAReopen) {
    auto k = keySet(kImsi, 1, KeySetState::current);
    k.highestNonce = 10;
    ASSERT_TRUE(store_->putKeySet(k).has_value());
    ASSERT_TRUE(store_->acceptResumptionNonce(kImsi, 1, 11).has_value());
    store_.reset();
    store_ = openOrDie(dir_.file("state.db"));
    ASSERT_NE(store_, nullptr);
    EXPECT_STORE_ERROR(store_->acceptResumptionNonce(kImsi, 1, 11), StoreErrc::stale_nonce);
    EXPECT_TRUE(store_->acceptResumptionNonce(kImsi, 1, 12).has_value());
}

TEST_F(StoreKeySets, AsyncFormsCompleteOnceDurable) {
    std::promise<Result<void>> put, nonce, stale, count, current;
    store_->putKeySet(keySet(kImsi, 2, KeySetState::pending),
                      [&](Result<void> r) { put.set_value(std::move(r)); });
    ASSERT_TRUE(put.get_future().get().has_value());
    store_->acceptResumptionNonce(kImsi, 2, 99, [&](Result<void> r) { nonce.set_value(r); });
    EXPECT_TRUE(nonce.get_future().get().has_value());
    store_->acceptResumptionNonce(kImsi, 2, 98, [&](Result<void> r) { stale.set_value(r); });
    EXPECT_STORE_ERROR(stale.get_future().get(), StoreErrc::stale_nonce);
    store_->incrementUseCount(kImsi, 2, [&](Result<void> r) { count.set_value(r); });
    EXPECT_TRUE(count.get_future().get().has_value());
    store_->makeCurrent(kImsi, 2, [&](Result<void> r) { current.set_value(r); });
    EXPECT_TRUE(current.get_future().get().has_value());
    auto got = store_->getKeySet(kImsi, 2);
    ASSERT_TRUE(got.has_value());
    EXPECT_EQ(got->state, KeySetState::current);
    EXPECT_EQ(got->useCount, 1u);
    EXPECT_EQ(got->highestNonce, 99u);

    std::promise<Result<void>> bad;
    store_->putKeySet(keySet(kImsi, 9, KeySetState::current),
                      [&](Result<void> r) { bad.set_value(r); });
    EXPECT_STORE_ERROR(bad.get_future().get(), StoreErrc::invalid_argument);
}

TEST_F(StoreKeySets, UseCountAndRemoval) {
    ASSERT_TRUE(store_->putKeySet(keySet(kImsi, 1, KeySetState::current)).has_value());
    ASSERT_TRUE(store_->putKeySet(keySet(kImsi, 2, KeySetState::pending)).has_value());
    for (int i = 0; i < 3; ++i)
        ASSERT_TRUE(store_->incrementUseCount(kImsi, 1).has_value());
    EXPECT_EQ(store_->getKeySet(kImsi, 1)->useCount, 3u);
    EXPECT_STORE_ERROR(store_->incrementUseCount(kImsi, 7), StoreErrc::not_found);

    ASSERT_TRUE(store_->removeKeySet(kImsi, 2).has_value());
    EXPECT_STORE_ERROR(store_->removeKeySet(kImsi, 2), StoreErrc::not_found);
    EXPECT_EQ(kids(), (std::vector<std::uint8_t>{1}));
    ASSERT_TRUE(store_->putKeySet(keySet(kImsi, 2, KeySetState::pending)).has_value());
    auto n = store_->removeKeySets(kImsi);
    ASSERT_TRUE(n.has_value());
    EXPECT_EQ(*n, 2u);
    EXPECT_TRUE(kids().empty());
    EXPECT_EQ(store_->removeKeySets(kImsi).value(), 0u);
}

TEST_F(StoreKeySets, BadKeySetValues) {
    struct Case {
        const char* name;
        std::function<void(KeySetRecord&)> spoil;
    };
    const std::vector<Case> cases = {
        {"KID 0", [](auto& k) { k.kid = 0; }},
        {"KID 8", [](auto& k) { k.kid = 8; }},
        {"key agreement", [](auto& k) { k.keyAgreement = static_cast<KeyAgreement>(4); }},
        {"HSE Id empty", [](auto& k) { k.hseId.clear(); }},
        {"HSE Id long", [](auto& k) { k.hseId.assign(65, 'h'); }},
        {"KInt empty", [](auto& k) { k.kInt.data.clear(); }},
        {"EAS key binding", [](auto& k) { k.easKeys[0].key.binding.clear(); }},
        {"EAS twice", [](auto& k) { k.easKeys.push_back(k.easKeys[0]); }},
        {"IMSI", [](auto& k) { k.imsi = "x"; }},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.name);
        auto k = keySet(kImsi, 1, KeySetState::current);
        c.spoil(k);
        EXPECT_STORE_ERROR(store_->putKeySet(k), StoreErrc::invalid_argument);
    }
    EXPECT_TRUE(kids().empty());
    auto unknown = store_->putKeySet(keySet("001010000000000", 1, KeySetState::current));
    EXPECT_STORE_ERROR(unknown, StoreErrc::not_found);
    EXPECT_EQ(unknown.error().message, "unknown IMSI 001010000000000");
    EXPECT_STORE_ERROR(store_->getKeySet(kImsi, 1), StoreErrc::not_found);
    EXPECT_STORE_ERROR(store_->getKeySet(kImsi, 0), StoreErrc::invalid_argument);
}

TEST_F(StoreKeySets, EasKeyIdentifierIndex) {
    auto k1 = keySet(kImsi, 1, KeySetState::current);
    auto k2 = keySet(kImsi, 2, KeySetState::pending);
    ASSERT_TRUE(store_->putKeySet(k1).has_value());
    ASSERT_TRUE(store_->putKeySet(k2).has_value());

    auto l = store_->findEasKey("eas-a", k2.easKeys[0].identifier);
    ASSERT_TRUE(l.has_value()) << l.error().describe();
    EXPECT_EQ(l->imsi, kImsi);
    EXPECT_EQ(l->externalUeId, subscriber(kImsi).externalUeId);
    EXPECT_EQ(l->kid, 2);
    EXPECT_EQ(l->state, KeySetState::pending);
    EXPECT_EQ(l->lifetimeSeconds, k2.lifetimeSeconds);
    EXPECT_EQ(l->createdAt, k2.createdAt);
    EXPECT_EQ(l->key, k2.easKeys[0]);

    // The identifier is scoped to its EAS: another EAS does not see it.
    EXPECT_STORE_ERROR(store_->findEasKey("eas-b", k2.easKeys[0].identifier), StoreErrc::not_found);
    EasKeyIdentifier unknown{};
    EXPECT_STORE_ERROR(store_->findEasKey("eas-a", unknown), StoreErrc::not_found);

    // An identifier already indexed for that EAS under another key set is refused.
    auto other = keySet("001010000000001", 1, KeySetState::current);
    ASSERT_TRUE(store_->addSubscriber(subscriber("001010000000001")).has_value());
    other.easKeys[0].identifier = k1.easKeys[0].identifier;
    EXPECT_STORE_ERROR(store_->putKeySet(other), StoreErrc::duplicate);

    // Promotion drops the old set's identifier from the index.
    ASSERT_TRUE(store_->makeCurrent(kImsi, 2).has_value());
    EXPECT_STORE_ERROR(store_->findEasKey("eas-a", k1.easKeys[0].identifier), StoreErrc::not_found);
    EXPECT_EQ(store_->findEasKey("eas-a", k2.easKeys[0].identifier)->state, KeySetState::current);
}

TEST_F(StoreKeySets, RefreshRecords) {
    RefreshRecord r;
    r.imsi = kImsi;
    r.origin = RefreshOrigin::eas;
    r.newKid = 0;
    r.requestedBy = "eas-a";
    ASSERT_TRUE(store_->putRefresh(r).has_value());
    auto got = store_->getRefresh(kImsi);
    ASSERT_TRUE(got.has_value());
    EXPECT_EQ(got->origin, RefreshOrigin::eas);
    EXPECT_EQ(got->newKid, 0);
    EXPECT_EQ(got->requestedBy, "eas-a");
    EXPECT_FALSE(got->rand.has_value());
    EXPECT_GT(got->createdAt, 0);
    const auto created = got->createdAt;

    // Replaced in place: one refresh per UE, createdAt kept.
    r.origin = RefreshOrigin::hse;
    r.newKid = 2;
    r.rand = RandBytes{};
    r.rand->fill(0x11);
    r.autn = AutnBytes{};
    r.autn->fill(0x22);
    r.resyncs = 1;
    r.requestedBy.reset();
    std::promise<Result<void>> p;
    store_->putRefresh(r, [&](Result<void> res) { p.set_value(res); });
    ASSERT_TRUE(p.get_future().get().has_value());
    got = store_->getRefresh(kImsi);
    ASSERT_TRUE(got.has_value());
    EXPECT_EQ(got->origin, RefreshOrigin::hse);
    EXPECT_EQ(got->newKid, 2);
    EXPECT_EQ(got->rand, r.rand);
    EXPECT_EQ(got->autn, r.autn);
    EXPECT_EQ(got->resyncs, 1u);
    EXPECT_FALSE(got->requestedBy.has_value());
    EXPECT_EQ(got->createdAt, created);
    EXPECT_GE(got->updatedAt, created);

    ASSERT_TRUE(store_->addSubscriber(subscriber("001010000000001")).has_value());
    ASSERT_TRUE(store_->putRefresh(refresh("001010000000001", RefreshOrigin::ue, 3)).has_value());
    auto list = store_->listRefreshes();
    ASSERT_TRUE(list.has_value());
    ASSERT_EQ(list->size(), 2u);
    EXPECT_EQ((*list)[0].imsi, "001010000000001");
    EXPECT_EQ((*list)[1].imsi, kImsi);

    ASSERT_TRUE(store_->removeRefresh(kImsi).has_value());
    EXPECT_STORE_ERROR(store_->getRefresh(kImsi), StoreErrc::not_found);
    EXPECT_STORE_ERROR(store_->removeRefresh(kImsi), StoreErrc::not_found);
    std::promise<Result<void>> rm;
    store_->removeRefresh("001010000000001", [&](Result<void> res) { rm.set_value(res); });
    EXPECT_TRUE(rm.get_future().get().has_value());
    EXPECT_TRUE(store_->listRefreshes()->empty());

    EXPECT_STORE_ERROR(store_->putRefresh(refresh("001010000000002", RefreshOrigin::ue, 1)),
                       StoreErrc::not_found);
    EXPECT_STORE_ERROR(store_->putRefresh(refresh(kImsi, static_cast<RefreshOrigin>(4), 1)),
                       StoreErrc::invalid_argument);
    EXPECT_STORE_ERROR(store_->putRefresh(refresh(kImsi, RefreshOrigin::ue, 8)),
                       StoreErrc::invalid_argument);
}

}  // namespace
}  // namespace best::store::test
