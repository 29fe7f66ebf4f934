// Shared helpers for the store tests: a throwaway directory per test (parallel-safe) and
// record builders with recognisable, fake blobs (the store only ever sees opaque blobs).
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <system_error>

#include "store/store.h"
#include "temp_dir.h"

namespace best::store::test {

struct TempDir : best::test::TempDir {
    TempDir() : best::test::TempDir("best-store-test-") {}
};

inline Bytes pattern(std::uint8_t seed, std::size_t n) {
    Bytes b(n);
    for (std::size_t i = 0; i < n; ++i)
        b[i] = static_cast<std::uint8_t>(seed + 7 * i);
    return b;
}

inline WrappedBlob blob(std::uint8_t seed, std::size_t n = 40) {
    return WrappedBlob{pattern(seed, n), pattern(static_cast<std::uint8_t>(seed + 1), 32)};
}

inline SubscriberRecord subscriber(const std::string& imsi, std::uint8_t seed = 1) {
    SubscriberRecord s;
    s.imsi = imsi;
    s.externalUeId = "ue-" + imsi + "@example.org";
    s.k = blob(seed);
    s.opKind = OpKind::opc;
    s.op = blob(static_cast<std::uint8_t>(seed + 50));
    s.amf = {0x80, 0x00};
    s.indBits = 5;
    return s;
}

inline KeySetRecord keySet(const std::string& imsi, std::uint8_t kid, KeySetState state) {
    KeySetRecord k;
    k.imsi = imsi;
    k.kid = kid;
    k.state = state;
    k.keyAgreement = KeyAgreement::fiveG;
    k.plmn = PlmnId{0x00, 0xf1, 0x10};
    k.hseId = "hse.example.org";
    k.createdAt = 1700000000 + kid;
    k.lifetimeSeconds = 86400;
    k.kInt = blob(static_cast<std::uint8_t>(100 + kid));
    EasKeyRecord e;
    e.easId = "eas-a";
    e.type = EasKeyType::kIntEasPsk;
    e.key = blob(static_cast<std::uint8_t>(150 + kid));
    for (std::size_t i = 0; i < e.identifier.size(); ++i) {
        e.identifier[i] = static_cast<std::uint8_t>(kid * 16 + i + imsi.back());
    }
    k.easKeys.push_back(e);
    return k;
}

inline RefreshRecord refresh(const std::string& imsi, RefreshOrigin origin, std::uint8_t newKid) {
    RefreshRecord r;
    r.imsi = imsi;
    r.origin = origin;
    r.newKid = newKid;
    return r;
}

inline StoreOptions fastOptions(Mode mode = Mode::daemon) {
    StoreOptions o;
    o.mode = mode;
    o.groupCommit.window = std::chrono::microseconds(0);
    return o;
}

inline std::unique_ptr<Store> openOrDie(const std::string& path, StoreOptions o = fastOptions()) {
    auto s = Store::open(path, o);
    if (!s) {
        ADD_FAILURE() << s.error().describe();
        return nullptr;
    }
    return std::move(*s);
}

inline bool isErr(const Error& e, StoreErrc c) {
    return e.domain == ErrorDomain::store && e.code == static_cast<int>(c);
}

// gtest-friendly checks on a failed Result.
#define EXPECT_STORE_ERROR(expr, errc)                                                 \
    do {                                                                               \
        auto&& r_ = (expr);                                                            \
        ASSERT_FALSE(r_.has_value()) << #expr " succeeded, expected " #errc;           \
        EXPECT_TRUE(::best::store::test::isErr(r_.error(), errc))                      \
            << #expr ": got " << r_.error().describe() << " (code " << r_.error().code \
            << "), expected " #errc;                                                   \
    } while (0)

}  // namespace best::store::test
