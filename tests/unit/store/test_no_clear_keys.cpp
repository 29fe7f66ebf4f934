// The store only ever sees key material as opaque KeyVault blobs: the API has no path for a
// clear K, OP, OPc or KInt (checked at compile time), and a blob is stored byte for byte as
// given (a marker inside it is found in the file exactly as it went in).
#include <concepts>
#include <fstream>
#include <iterator>
#include <type_traits>

#include "common/secure.h"
#include "store_test_util.h"

namespace best::store::test {
namespace {

// No record field holding key material has a secret type, or converts from one.
static_assert(std::is_same_v<decltype(SubscriberRecord::k), WrappedBlob>);
static_assert(std::is_same_v<decltype(SubscriberRecord::op), WrappedBlob>);
static_assert(std::is_same_v<decltype(KeySetRecord::kInt), WrappedBlob>);
static_assert(std::is_same_v<decltype(EasKeyRecord::key), WrappedBlob>);
static_assert(!std::is_constructible_v<WrappedBlob, const SubscriberK&>);
static_assert(!std::is_constructible_v<WrappedBlob, const Op&>);
static_assert(!std::is_constructible_v<WrappedBlob, const Opc&>);
static_assert(!std::is_constructible_v<WrappedBlob, const Key256&>);
static_assert(!std::is_constructible_v<WrappedBlob, const SecureBuffer&>);
static_assert(!std::is_assignable_v<WrappedBlob&, const SubscriberK&>);
static_assert(!std::is_assignable_v<Bytes&, const SubscriberK&>);
static_assert(!std::is_assignable_v<Bytes&, const Opc&>);
static_assert(!std::is_assignable_v<Bytes&, const Key256&>);
static_assert(!std::is_assignable_v<Bytes&, const SecureBuffer&>);

// No Store entry point accepts a secret in place of a record.
template <typename T>
concept AddableSubscriber = requires(Store& s, const T& t) {
    s.addSubscriber(t);
};
template <typename T>
concept PuttableKeySet = requires(Store& s, const T& t) {
    s.putKeySet(t);
};
static_assert(AddableSubscriber<SubscriberRecord>);
static_assert(!AddableSubscriber<SubscriberK>);
static_assert(!AddableSubscriber<Opc>);
static_assert(!AddableSubscriber<SecureBuffer>);
static_assert(PuttableKeySet<KeySetRecord>);
static_assert(!PuttableKeySet<Key256>);
static_assert(!PuttableKeySet<SecureBuffer>);

std::string readAll(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

std::size_t occurrences(const std::string& hay, const std::string& needle) {
    std::size_t n = 0;
    for (auto pos = hay.find(needle); pos != std::string::npos; pos = hay.find(needle, pos + 1)) {
        ++n;
    }
    return n;
}

TEST(StoreBlobs, AMarkerInsideABlobIsStoredExactlyAsGiven) {
    TempDir dir;
    const auto path = dir.file("state.db");
    const std::string marker = "<<K-BLOB-MARKER-7f3a9c>>";
    auto s = subscriber("001010000000001");
    s.k.data = pattern(3, 17);
    s.k.data.insert(s.k.data.end(), marker.begin(), marker.end());
    const auto tail = pattern(200, 23);
    s.k.data.insert(s.k.data.end(), tail.begin(), tail.end());
    const std::string opMarker = "<<OPC-BLOB-MARKER-11d2>>";
    s.op.data.assign(opMarker.begin(), opMarker.end());
    {
        auto store = openOrDie(path);
        ASSERT_NE(store, nullptr);
        ASSERT_TRUE(store->addSubscriber(s).has_value());
        auto got = store->getSubscriber(s.imsi);
        ASSERT_TRUE(got.has_value());
        EXPECT_EQ(got->k, s.k);
        EXPECT_EQ(got->op, s.op);
    }  // last connection closed: the WAL is checkpointed into the main file

    const std::string file = readAll(path) + readAll(path + "-wal");
    const std::string whole(s.k.data.begin(), s.k.data.end());
    EXPECT_EQ(occurrences(file, whole), 1u) << "the wrapped K blob, byte for byte";
    EXPECT_EQ(occurrences(file, marker), 1u);
    EXPECT_EQ(occurrences(file, opMarker), 1u);

    // And nothing else: the store has no other copy or transformation of the blob (reversed
    // marker as a crude check that nothing re-encodes it).
    const std::string reversed(marker.rbegin(), marker.rend());
    EXPECT_EQ(occurrences(file, reversed), 0u);
}

TEST(StoreBlobs, ARemovedBlobIsOverwrittenInTheFile) {
    // secure_delete: a removed subscriber's wrapped K does not linger in free pages.
    TempDir dir;
    const auto path = dir.file("state.db");
    const std::string marker = "<<REMOVED-BLOB-MARKER-5e1b>>";
    auto s = subscriber("001010000000001");
    s.k.data.assign(marker.begin(), marker.end());
    {
        auto store = openOrDie(path);
        ASSERT_NE(store, nullptr);
        ASSERT_TRUE(store->addSubscriber(s).has_value());
    }
    EXPECT_EQ(occurrences(readAll(path) + readAll(path + "-wal"), marker), 1u);
    {
        auto store = openOrDie(path);
        ASSERT_NE(store, nullptr);
        ASSERT_TRUE(store->removeSubscriber(s.imsi).has_value());
    }
    EXPECT_EQ(occurrences(readAll(path) + readAll(path + "-wal"), marker), 0u);
}

}  // namespace
}  // namespace best::store::test
