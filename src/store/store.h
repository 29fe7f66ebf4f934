// The HSE's durable state (architecture "State"; docs/state.md): one SQLite file in WAL mode,
// one writer connection (synchronous=FULL) owned by a group-commit writer thread, read
// connections from a small pool, versioned migrations, and an advisory lock telling tools that
// a daemon owns the store.
//
// Every mutation goes through the writer: the blocking forms return once the write is durable;
// the forms taking a Completion call it on the writer thread once the batch holding the write is
// durable (or failed). A daemon answers a UE only from such a completion when the write must be
// durable first (SQN reservation, key set current or pending, resumption nonce high-water mark).
// Reads are blocking and short; call them from worker threads, not from the event loop.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "common/result.h"
#include "store/connection.h"
#include "store/group_commit.h"
#include "store/records.h"
#include "store/sqn.h"
#include "store/store_error.h"
#include "store/store_lock.h"

namespace best::store {

struct StoreOptions {
    Mode mode = Mode::daemon;
    GroupCommitOptions groupCommit{};  // 2 ms window, 256 writes per batch
    SqnOptions sqn{};                  // 1000 SEQ per reservation, IND 0
    std::chrono::milliseconds busyTimeout{5000};
    std::chrono::milliseconds lockWait{0};  // daemon mode: how long to wait for the lock
    bool create = true;                     // create a missing file (mode 0600)
    std::size_t idleReaders = 4;            // read connections kept open between reads
};

class Store {
public:
    template <typename T>
    using Completion = std::function<void(Result<T>)>;

    // Opens (and in daemon mode, or tool mode without a daemon, creates and migrates) the store.
    static Result<std::unique_ptr<Store>> open(const std::string& path, StoreOptions options = {});

    Store(const Store&) = delete;
    Store& operator=(const Store&) = delete;
    // Runs every write already submitted, then closes.
    ~Store();

    const std::string& path() const noexcept { return path_; }
    Mode mode() const noexcept { return lock_.mode(); }
    // Tool mode only: a daemon holds the store; every mutation is refused with
    // StoreErrc::locked_by_daemon (they must go through the daemon's admin socket).
    bool daemonActive() const noexcept { return lock_.daemonActive(); }
    // The schema version the file had when opened (0 for a new file).
    std::int64_t openedAtVersion() const noexcept { return openedAt_; }
    GroupCommitStats writeStats() const { return writer_->stats(); }
    GroupCommitWriter& writer() noexcept { return *writer_; }

    // --- subscribers
    // Adds one subscriber with its SQN state (SEQ_HE = seqHe: the first vector gets seqHe + 1).
    Result<void> addSubscriber(const SubscriberRecord& s, std::uint64_t seqHe = 0);
    // Adds all rows in one transaction, or none (the error names the row). `seqHe` is empty
    // (all 0) or holds one value per row.
    Result<std::size_t> importSubscribers(std::span<const SubscriberRecord> rows,
                                          std::span<const std::uint64_t> seqHe = {});
    Result<SubscriberRecord> getSubscriber(std::string_view imsi);
    Result<SubscriberRecord> findSubscriberByExternalId(std::string_view externalUeId);
    // Ordered by IMSI; `afterImsi` and `limit` (0: no limit) page through large tables.
    Result<std::vector<SubscriberRecord>> listSubscribers(std::string_view afterImsi = {},
                                                          std::size_t limit = 0);
    Result<std::uint64_t> countSubscribers();
    // Key sets of every UE (current and pending), for status displays.
    Result<std::uint64_t> countKeySets();
    // Removes the subscriber and, by cascade, its SQN state, key sets and refresh.
    Result<void> removeSubscriber(std::string_view imsi);

    // --- SQN (profile section 9)
    SqnAllocator& sqn() noexcept { return *sqn_; }
    Result<SqnState> getSqnState(std::string_view imsi);

    // --- EAS registry
    Result<void> addEas(const EasRecord& eas);
    Result<EasRecord> getEas(std::string_view easId);
    Result<EasRecord> findEasByCertificate(const CertFingerprint& sha256);
    Result<std::vector<EasRecord>> listEas();
    // Refused with StoreErrc::referenced while subscribers still allow the EAS.
    Result<void> removeEas(std::string_view easId);

    // --- key sets (tentative sets are never stored: see records.h)
    // state current: the set replaces every other set of the UE (a tentative set confirmed,
    // profile 4.1 step 6 / A9). state pending: replaces the UE's pending set, if any (4.4).
    Result<void> putKeySet(const KeySetRecord& ks);
    void putKeySet(KeySetRecord ks, Completion<void> done);
    // The pending set `kid` becomes current and every other set of the UE is destroyed (4.2).
    Result<void> makeCurrent(std::string_view imsi, std::uint8_t kid);
    void makeCurrent(std::string imsi, std::uint8_t kid, Completion<void> done);
    // Raises the set's resumption nonce high-water mark to `nonce` if `nonce` is greater
    // (unsigned 64-bit), else StoreErrc::stale_nonce; durable before it returns (A21).
    Result<void> acceptResumptionNonce(std::string_view imsi, std::uint8_t kid,
                                       std::uint64_t nonce);
    void acceptResumptionNonce(std::string imsi, std::uint8_t kid, std::uint64_t nonce,
                               Completion<void> done);
    Result<void> incrementUseCount(std::string_view imsi, std::uint8_t kid);
    void incrementUseCount(std::string imsi, std::uint8_t kid, Completion<void> done);
    Result<void> removeKeySet(std::string_view imsi, std::uint8_t kid);
    // Removes every set of the UE; returns how many there were.
    Result<std::size_t> removeKeySets(std::string_view imsi);
    Result<KeySetRecord> getKeySet(std::string_view imsi, std::uint8_t kid);
    // The UE's sets ordered by KID.
    Result<std::vector<KeySetRecord>> listKeySets(std::string_view imsi);
    // The EAS key identifier index (profile 8.2).
    Result<EasKeyLookup> findEasKey(std::string_view easId, const EasKeyIdentifier& identifier);

    // --- refreshes in progress (at most one per UE)
    // Inserts or replaces the UE's refresh record (createdAt kept on replace).
    Result<void> putRefresh(const RefreshRecord& r);
    void putRefresh(RefreshRecord r, Completion<void> done);
    Result<RefreshRecord> getRefresh(std::string_view imsi);
    Result<std::vector<RefreshRecord>> listRefreshes();
    Result<void> removeRefresh(std::string_view imsi);
    void removeRefresh(std::string imsi, Completion<void> done);

private:
    class ReaderLease;
    Store(std::string path, StoreLock lock, std::int64_t openedAt, StoreOptions options);

    Result<ReaderLease> reader();
    void releaseReader(std::unique_ptr<Connection> c) noexcept;
    // Runs `read(Connection&)` on a pooled reader, inside one read transaction when `snapshot`
    // (so several reads see one snapshot). Defined in store.cpp, its only user.
    template <typename Read>
    auto withReader(Read&& read, bool snapshot = false) -> std::invoke_result_t<Read&, Connection&>;
    // The refusal for tool mode while a daemon holds the store, if any.
    std::optional<Error> refusal() const;
    // Runs a job that its builder may have refused (the refusal is the result); the blocking
    // form returns once durable, the other calls `done` then.
    Result<void> write(Result<GroupCommitWriter::Job> job);
    void write(Result<GroupCommitWriter::Job> job, Completion<void> done);

    const std::string path_;
    StoreLock lock_;  // first: released after everything else has closed
    const std::int64_t openedAt_;
    const StoreOptions options_;
    std::mutex readersMutex_;
    std::vector<std::unique_ptr<Connection>> idleReaders_;
    // sqn_ before writer_: the writer drains its queue when destroyed and the completions of
    // reservations still call into the allocator.
    std::unique_ptr<SqnAllocator> sqn_;
    std::unique_ptr<GroupCommitWriter> writer_;
};

}  // namespace best::store
