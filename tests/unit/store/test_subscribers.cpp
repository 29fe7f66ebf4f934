// Subscribers and the EAS registry: every API call and its errors.
#include "store_test_util.h"

namespace best::store::test {
namespace {

class StoreSubscribers : public ::testing::Test {
protected:
    void SetUp() override {
        store_ = openOrDie(dir_.file("state.db"));
        ASSERT_NE(store_, nullptr);
        ASSERT_TRUE(store_->addEas({"eas-a", ServiceMode::kaOnly, {}, {}, 0}).has_value());
        ASSERT_TRUE(store_->addEas({"eas-b", ServiceMode::ueToEas, {}, "[::1]:4000", 0}));
    }
    TempDir dir_;
    std::unique_ptr<Store> store_;
};

TEST_F(StoreSubscribers, AddGetRoundTripsEveryField) {
    auto s = subscriber("001010000000001");
    s.opKind = OpKind::op;
    s.amf = {0x90, 0x01};
    s.indBits = 6;
    s.allowedEas = {"eas-b", "eas-a", "eas-b"};
    ASSERT_TRUE(store_->addSubscriber(s).has_value());

    auto got = store_->getSubscriber(s.imsi);
    ASSERT_TRUE(got.has_value()) << got.error().describe();
    EXPECT_EQ(got->imsi, s.imsi);
    EXPECT_EQ(got->externalUeId, s.externalUeId);
    EXPECT_EQ(got->algorithm, "milenage");
    EXPECT_EQ(got->k, s.k);
    EXPECT_EQ(got->opKind, OpKind::op);
    EXPECT_EQ(got->op, s.op);
    EXPECT_EQ(got->amf, s.amf);
    EXPECT_EQ(got->indBits, 6);
    EXPECT_EQ(got->allowedEas, (std::vector<std::string>{"eas-a", "eas-b"}));  // sorted, unique
    EXPECT_GT(got->createdAt, 1600000000);

    auto byExt = store_->findSubscriberByExternalId(*s.externalUeId);
    ASSERT_TRUE(byExt.has_value());
    EXPECT_EQ(*byExt, *got);
}

TEST_F(StoreSubscribers, OpcFlagAndAbsentExternalIdRoundTrip) {
    auto s = subscriber("001010000000002");
    s.externalUeId.reset();
    ASSERT_TRUE(store_->addSubscriber(s).has_value());
    auto got = store_->getSubscriber(s.imsi);
    ASSERT_TRUE(got.has_value());
    EXPECT_EQ(got->opKind, OpKind::opc);
    EXPECT_FALSE(got->externalUeId.has_value());
    EXPECT_TRUE(got->allowedEas.empty());
    // Two subscribers without external id do not collide.
    auto t = subscriber("001010000000003");
    t.externalUeId.reset();
    EXPECT_TRUE(store_->addSubscriber(t).has_value());
}

TEST_F(StoreSubscribers, DuplicateImsiIsRefusedAndTheFirstRowKept) {
    auto s = subscriber("001010000000001", 1);
    ASSERT_TRUE(store_->addSubscriber(s).has_value());
    auto again = subscriber("001010000000001", 9);
    again.externalUeId = "other";
    auto r = store_->addSubscriber(again);
    EXPECT_STORE_ERROR(r, StoreErrc::duplicate);
    EXPECT_EQ(r.error().message, "subscriber 001010000000001 already exists");
    auto got = store_->getSubscriber(s.imsi);
    ASSERT_TRUE(got.has_value());
    EXPECT_EQ(got->k, s.k);
    EXPECT_FALSE(store_->findSubscriberByExternalId("other").has_value());
}

TEST_F(StoreSubscribers, DuplicateExternalIdIsRefused) {
    ASSERT_TRUE(store_->addSubscriber(subscriber("001010000000001")).has_value());
    auto s = subscriber("001010000000002");
    s.externalUeId = "ue-001010000000001@example.org";
    auto r = store_->addSubscriber(s);
    EXPECT_STORE_ERROR(r, StoreErrc::duplicate);
    EXPECT_NE(r.error().message.find("external UE id"), std::string::npos) << r.error().message;
    EXPECT_STORE_ERROR(store_->getSubscriber("001010000000002"), StoreErrc::not_found);
}

TEST_F(StoreSubscribers, UnknownImsiIsNotFoundEverywhere) {
    auto r = store_->getSubscriber("001010000000009");
    EXPECT_STORE_ERROR(r, StoreErrc::not_found);
    EXPECT_EQ(r.error().message, "unknown IMSI 001010000000009");
    EXPECT_STORE_ERROR(store_->removeSubscriber("001010000000009"), StoreErrc::not_found);
    EXPECT_STORE_ERROR(store_->getSqnState("001010000000009"), StoreErrc::not_found);
    EXPECT_STORE_ERROR(store_->findSubscriberByExternalId("nobody"), StoreErrc::not_found);
    EXPECT_STORE_ERROR(store_->sqn().allocate(std::string_view("001010000000009")),
                       StoreErrc::not_found);
}

TEST_F(StoreSubscribers, BadValuesAreRefusedBeforeTheyReachTheFile) {
    struct Case {
        const char* name;
        std::function<void(SubscriberRecord&)> spoil;
        const char* message;
    };
    const std::vector<Case> cases = {
        {"short IMSI", [](auto& s) { s.imsi = "12345"; }, "IMSI must have 6 to 15 digits"},
        {"long IMSI", [](auto& s) { s.imsi = "1234567890123456"; },
         "IMSI must have 6 to 15 digits"},
        {"IMSI letters", [](auto& s) { s.imsi = "00101000000000a"; },
         "IMSI must contain digits only"},
        {"algorithm", [](auto& s) { s.algorithm = "tuak"; }, "algorithm must be 'milenage'"},
        {"empty K", [](auto& s) { s.k.data.clear(); }, "wrapped K blob must have"},
        {"huge K", [](auto& s) { s.k.data.assign(kMaxBlobSize + 1, 1); },
         "wrapped K blob must have"},
        {"K binding", [](auto& s) { s.k.binding.clear(); }, "wrapped K binding MAC"},
        {"empty OPc", [](auto& s) { s.op.data.clear(); }, "encrypted OPc blob"},
        {"OP binding",
         [](auto& s) {
             s.opKind = OpKind::op;
             s.op.binding.clear();
         },
         "encrypted OP binding MAC"},
        {"IND bits", [](auto& s) { s.indBits = 17; }, "IND bit length must be 0..16"},
        {"external id empty", [](auto& s) { s.externalUeId = ""; }, "external UE id must have"},
        {"external id control", [](auto& s) { s.externalUeId = "a\nb"; },
         "external UE id contains a control character"},
        {"external id not UTF-8", [](auto& s) { s.externalUeId = "\xc3\x28"; },
         "external UE id is not UTF-8"},
        {"EAS id long", [](auto& s) { s.allowedEas = {std::string(65, 'e')}; },
         "EAS Id must have 1 to 64 octets"},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.name);
        auto s = subscriber("001010000000001");
        c.spoil(s);
        auto r = store_->addSubscriber(s);
        EXPECT_STORE_ERROR(r, StoreErrc::invalid_argument);
        EXPECT_NE(r.error().message.find(c.message), std::string::npos) << r.error().message;
    }
    EXPECT_EQ(store_->countSubscribers().value(), 0u);
    EXPECT_STORE_ERROR(store_->getSubscriber("12"), StoreErrc::invalid_argument);
    EXPECT_STORE_ERROR(store_->addSubscriber(subscriber("001010000000001"), maxSeq(5) + 1),
                       StoreErrc::invalid_argument);
}

TEST_F(StoreSubscribers, UnknownAllowedEasIsRefusedAtomically) {
    auto s = subscriber("001010000000001");
    s.allowedEas = {"eas-a", "eas-zzz"};
    auto r = store_->addSubscriber(s);
    EXPECT_STORE_ERROR(r, StoreErrc::not_found);
    EXPECT_EQ(r.error().message, "EAS 'eas-zzz' is not in the EAS registry");
    EXPECT_STORE_ERROR(store_->getSubscriber(s.imsi), StoreErrc::not_found);
    EXPECT_STORE_ERROR(store_->getSqnState(s.imsi), StoreErrc::not_found);
}

TEST_F(StoreSubscribers, ListPagesInImsiOrderWithTheirEas) {
    for (int i = 9; i >= 1; --i) {
        auto s = subscriber("00101000000000" + std::to_string(i));
        if (i % 2 == 0)
            s.allowedEas = {"eas-a"};
        if (i % 3 == 0)
            s.allowedEas.push_back("eas-b");
        ASSERT_TRUE(store_->addSubscriber(s).has_value());
    }
    auto all = store_->listSubscribers();
    ASSERT_TRUE(all.has_value());
    ASSERT_EQ(all->size(), 9u);
    for (std::size_t i = 0; i < 9; ++i) {
        const int n = static_cast<int>(i) + 1;
        EXPECT_EQ((*all)[i].imsi, "00101000000000" + std::to_string(n));
        std::vector<std::string> eas;
        if (n % 2 == 0)
            eas.push_back("eas-a");
        if (n % 3 == 0)
            eas.push_back("eas-b");
        EXPECT_EQ((*all)[i].allowedEas, eas) << n;
    }
    auto page = store_->listSubscribers("001010000000003", 4);
    ASSERT_TRUE(page.has_value());
    ASSERT_EQ(page->size(), 4u);
    EXPECT_EQ(page->front().imsi, "001010000000004");
    EXPECT_EQ(page->back().imsi, "001010000000007");
    EXPECT_EQ(page->at(2).allowedEas, (std::vector<std::string>{"eas-a", "eas-b"}));  // IMSI ..6
    EXPECT_EQ(store_->countSubscribers().value(), 9u);
}

TEST_F(StoreSubscribers, RemoveCascadesToSqnKeySetsAndRefresh) {
    auto s = subscriber("001010000000001");
    s.allowedEas = {"eas-a"};
    ASSERT_TRUE(store_->addSubscriber(s).has_value());
    ASSERT_TRUE(store_->putKeySet(keySet(s.imsi, 1, KeySetState::current)).has_value());
    ASSERT_TRUE(store_->putRefresh(refresh(s.imsi, RefreshOrigin::ue, 2)).has_value());
    ASSERT_TRUE(store_->sqn().allocate(std::string_view(s.imsi)).has_value());

    ASSERT_TRUE(store_->removeSubscriber(s.imsi).has_value());
    EXPECT_STORE_ERROR(store_->getSubscriber(s.imsi), StoreErrc::not_found);
    EXPECT_STORE_ERROR(store_->getSqnState(s.imsi), StoreErrc::not_found);
    EXPECT_STORE_ERROR(store_->getKeySet(s.imsi, 1), StoreErrc::not_found);
    EXPECT_STORE_ERROR(store_->getRefresh(s.imsi), StoreErrc::not_found);
    EXPECT_STORE_ERROR(
        store_->findEasKey("eas-a",
                           keySet(s.imsi, 1, KeySetState::current).easKeys.front().identifier),
        StoreErrc::not_found);
    // The EAS is no longer referenced and can go.
    EXPECT_TRUE(store_->removeEas("eas-a").has_value());

    // Re-adding the IMSI starts its SQN afresh, not from the old in-memory range.
    ASSERT_TRUE(store_->addSubscriber(subscriber(s.imsi)).has_value());
    auto g = store_->sqn().allocate(std::string_view(s.imsi));
    ASSERT_TRUE(g.has_value());
    EXPECT_EQ(g->seq, 1u);
}

TEST_F(StoreSubscribers, ImportIsAllOrNothingAndNamesTheBadRow) {
    std::vector<SubscriberRecord> rows;
    for (int i = 0; i < 50; ++i) {
        char imsi[16];
        std::snprintf(imsi, sizeof imsi, "0010100000%05d", i);
        rows.push_back(subscriber(imsi));
    }
    rows[30] = rows[10];  // duplicate IMSI in the batch
    auto r = store_->importSubscribers(rows);
    EXPECT_STORE_ERROR(r, StoreErrc::duplicate);
    EXPECT_NE(r.error().message.find("row 31 (IMSI 001010000000010)"), std::string::npos)
        << r.error().message;
    EXPECT_EQ(store_->countSubscribers().value(), 0u);

    rows[30] = subscriber("001010000000030");
    rows[30].k.data.clear();
    r = store_->importSubscribers(rows);
    EXPECT_STORE_ERROR(r, StoreErrc::invalid_argument);
    EXPECT_NE(r.error().message.find("row 31: wrapped K"), std::string::npos) << r.error().message;

    rows[30] = subscriber("001010000000030");
    std::vector<std::uint64_t> seq(rows.size(), 0);
    seq[5] = 1234;
    auto ok = store_->importSubscribers(rows, seq);
    ASSERT_TRUE(ok.has_value()) << ok.error().describe();
    EXPECT_EQ(*ok, 50u);
    EXPECT_EQ(store_->countSubscribers().value(), 50u);
    EXPECT_EQ(store_->getSqnState(rows[5].imsi)->seqHe, 1234u);
    EXPECT_EQ(store_->getSqnState(rows[6].imsi)->seqHe, 0u);
    EXPECT_STORE_ERROR(store_->importSubscribers(rows, std::span(seq).first(3)),
                       StoreErrc::invalid_argument);
}

TEST_F(StoreSubscribers, EasRegistryAddGetListRemove) {
    CertFingerprint fp{};
    fp.fill(0xab);
    EasRecord e{"eas-c", ServiceMode::ueToHse, fp, "eas.example.org:5000", 0};
    ASSERT_TRUE(store_->addEas(e).has_value());
    auto got = store_->getEas("eas-c");
    ASSERT_TRUE(got.has_value());
    EXPECT_EQ(got->serviceMode, ServiceMode::ueToHse);
    EXPECT_EQ(got->certSha256, fp);
    EXPECT_EQ(got->upEndpoint, "eas.example.org:5000");
    EXPECT_GT(got->createdAt, 0);
    auto byCert = store_->findEasByCertificate(fp);
    ASSERT_TRUE(byCert.has_value());
    EXPECT_EQ(byCert->easId, "eas-c");

    auto list = store_->listEas();
    ASSERT_TRUE(list.has_value());
    ASSERT_EQ(list->size(), 3u);
    EXPECT_EQ((*list)[0].easId, "eas-a");
    EXPECT_EQ((*list)[0].serviceMode, ServiceMode::kaOnly);
    EXPECT_FALSE((*list)[0].certSha256.has_value());
    EXPECT_EQ((*list)[1].easId, "eas-b");
    EXPECT_EQ((*list)[1].upEndpoint, "[::1]:4000");
    EXPECT_EQ((*list)[2].easId, "eas-c");

    ASSERT_TRUE(store_->removeEas("eas-c").has_value());
    EXPECT_STORE_ERROR(store_->getEas("eas-c"), StoreErrc::not_found);
    EXPECT_STORE_ERROR(store_->removeEas("eas-c"), StoreErrc::not_found);
    EXPECT_STORE_ERROR(store_->findEasByCertificate(fp), StoreErrc::not_found);
}

TEST_F(StoreSubscribers, EasErrors) {
    auto dup = store_->addEas({"eas-a", ServiceMode::ueToEas, {}, {}, 0});
    EXPECT_STORE_ERROR(dup, StoreErrc::duplicate);
    EXPECT_EQ(dup.error().message, "EAS 'eas-a' already exists");

    CertFingerprint fp{};
    fp.fill(1);
    ASSERT_TRUE(store_->addEas({"eas-x", ServiceMode::kaOnly, fp, {}, 0}).has_value());
    auto dupCert = store_->addEas({"eas-y", ServiceMode::kaOnly, fp, {}, 0});
    EXPECT_STORE_ERROR(dupCert, StoreErrc::duplicate);
    EXPECT_NE(dupCert.error().message.find("certificate"), std::string::npos);

    EXPECT_STORE_ERROR(store_->addEas({"", ServiceMode::kaOnly, {}, {}, 0}),
                       StoreErrc::invalid_argument);
    EXPECT_STORE_ERROR(store_->addEas({std::string(65, 'x'), ServiceMode::kaOnly, {}, {}, 0}),
                       StoreErrc::invalid_argument);
    EXPECT_STORE_ERROR(store_->addEas({"e", static_cast<ServiceMode>(7), {}, {}, 0}),
                       StoreErrc::invalid_argument);
    for (const char* ep : {"", "host", "host:", ":80", "host:0", "host:65536", "host:8x", "a b:80",
                           "::1:80", "[::1:80"}) {
        SCOPED_TRACE(ep);
        EXPECT_STORE_ERROR(store_->addEas({"e", ServiceMode::ueToEas, {}, std::string(ep), 0}),
                           StoreErrc::invalid_argument);
    }
    EXPECT_EQ(store_->listEas()->size(), 3u);

    auto s = subscriber("001010000000001");
    s.allowedEas = {"eas-b"};
    ASSERT_TRUE(store_->addSubscriber(s).has_value());
    auto inUse = store_->removeEas("eas-b");
    EXPECT_STORE_ERROR(inUse, StoreErrc::referenced);
    EXPECT_EQ(inUse.error().message,
              "EAS 'eas-b' is still allowed for 1 subscriber(s); remove it from them first");
    EXPECT_TRUE(store_->getEas("eas-b").has_value());
}

TEST(StoreRecords, ServiceModeStrings) {
    for (const auto m : {ServiceMode::kaOnly, ServiceMode::ueToHse, ServiceMode::ueToEas}) {
        EXPECT_EQ(serviceModeFromString(toString(m)), m);
    }
    EXPECT_EQ(toString(ServiceMode::ueToEas), "ue-to-eas");
    EXPECT_FALSE(serviceModeFromString("UE-TO-EAS").has_value());
    EXPECT_EQ(toString(OpKind::op), "op");
    EXPECT_EQ(toString(OpKind::opc), "opc");
    EXPECT_EQ(toString(EasKeyType::kIntE2e), "kint-e2e");
    EXPECT_EQ(toString(KeySetState::pending), "pending");
}

}  // namespace
}  // namespace best::store::test
