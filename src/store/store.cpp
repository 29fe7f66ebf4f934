#include "store/store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <future>
#include <iterator>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "common/bytes.h"
#include "common/log.h"
#include "common/unique_fd.h"
#include "store/schema.h"
#include "store/validate.h"

namespace best::store {
namespace {

bool hasCode(const Error& e, StoreErrc c) {
    return e.domain == ErrorDomain::store && e.code == static_cast<int>(c);
}

tl::unexpected<Error> renamed(Error e, StoreErrc code, std::string message) {
    e.code = static_cast<int>(code);
    e.message = std::move(message);
    return tl::unexpected<Error>(std::move(e));
}

tl::unexpected<Error> prefixed(Error e, const std::string& prefix) {
    e.message = prefix + e.message;
    return tl::unexpected<Error>(std::move(e));
}

template <std::size_t N>
std::optional<std::array<std::uint8_t, N>> toArray(const std::optional<Bytes>& b) {
    if (!b || b->size() != N)
        return std::nullopt;
    std::array<std::uint8_t, N> a{};
    std::copy(b->begin(), b->end(), a.begin());
    return a;
}

template <std::size_t N>
std::array<std::uint8_t, N> toArray(const Bytes& b) {
    std::array<std::uint8_t, N> a{};
    if (b.size() == N)
        std::copy(b.begin(), b.end(), a.begin());
    return a;
}

Bytes nonceBytes(std::uint64_t nonce) {
    Bytes b(8);
    putBe64(b.data(), nonce);
    return b;
}

Result<void> checkKid(std::uint8_t kid) {
    if (kid < 1 || kid > 7) {
        return makeError(StoreErrc::invalid_argument,
                         "Key ID must be 1..7, got " + std::to_string(kid));
    }
    return {};
}

Result<void> checkUpEndpoint(const std::string& ep) {
    const auto bad = [&ep] {
        return makeError(StoreErrc::invalid_argument,
                         "UP endpoint must be host:port or [v6-address]:port, got '" + ep + "'");
    };
    if (ep.size() < 3 || ep.size() > 255)
        return bad();
    const auto colon = ep.rfind(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == ep.size())
        return bad();
    const std::string host = ep.substr(0, colon);
    const std::string port = ep.substr(colon + 1);
    if (port.size() > 5 ||
        !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        return bad();
    }
    const long p = std::stol(port);
    if (p < 1 || p > 65535)
        return bad();
    if (host.front() == '[') {
        if (host.back() != ']' || host.size() < 3)
            return bad();
    } else if (host.find(':') != std::string::npos) {
        return bad();
    }
    for (const char c : host) {
        if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f)
            return bad();
    }
    return {};
}

// ---- running statements

// Binds nothing: for statements without parameters.
void noBind(Statement&) {}

// Steps `st` through its rows, calling `each(st)` on every one until it returns false.
template <typename Each>
Result<void> forEachRow(Statement& st, Each&& each) {
    for (;;) {
        auto row = st.step();
        if (!row)
            return makeError(std::move(row.error()));
        if (!*row || !each(static_cast<const Statement&>(st)))
            return {};
    }
}

// Prepares `query`, binds it with `bind(Statement&)` and maps its first row with
// `map(const Statement&)`; `notFound()` makes the error when there is no row.
template <typename Bind, typename Map, typename NotFound>
auto queryOne(Connection& c, std::string_view query, Bind&& bind, Map&& map, NotFound&& notFound)
    -> Result<std::decay_t<std::invoke_result_t<Map&, const Statement&>>> {
    auto st = c.prepare(query);
    if (!st)
        return makeError(std::move(st.error()));
    bind(*st);
    auto row = st->step();
    if (!row)
        return makeError(std::move(row.error()));
    if (!*row)
        return notFound();
    return map(static_cast<const Statement&>(*st));
}

// Prepares `query`, binds it with `bind(Statement&)` and maps every row with
// `map(const Statement&)`, in order.
template <typename Bind, typename Map>
auto queryAll(Connection& c, std::string_view query, Bind&& bind, Map&& map)
    -> Result<std::vector<std::decay_t<std::invoke_result_t<Map&, const Statement&>>>> {
    auto st = c.prepare(query);
    if (!st)
        return makeError(std::move(st.error()));
    bind(*st);
    std::vector<std::decay_t<std::invoke_result_t<Map&, const Statement&>>> out;
    if (auto r = forEachRow(*st,
                            [&](const Statement& row) {
                                out.push_back(map(row));
                                return true;
                            });
        !r) {
        return makeError(std::move(r.error()));
    }
    return out;
}

// The single number a "SELECT count(*) ..." query returns.
Result<std::uint64_t> queryCount(Connection& c, std::string_view query) {
    auto st = c.prepare(query);
    if (!st)
        return makeError(std::move(st.error()));
    auto row = st->step();
    if (!row)
        return makeError(std::move(row.error()));
    return static_cast<std::uint64_t>(st->int64(0));
}

// Prepares `query`, binds it with `bind(Statement&)` and runs it to completion.
template <typename Bind>
Result<void> execute(Connection& c, std::string_view query, Bind&& bind) {
    auto st = c.prepare(query);
    if (!st)
        return makeError(std::move(st.error()));
    bind(*st);
    return st->run();
}

tl::unexpected<Error> noKeySet(std::uint8_t kid, std::string_view imsi) {
    return makeError(StoreErrc::not_found,
                     "no key set " + std::to_string(kid) + " for IMSI " + std::string(imsi));
}

// ---- subscribers

constexpr std::string_view kSubscriberColumns =
    "imsi, external_ue_id, algorithm, k_wrapped, k_binding, op_kind, op_encrypted, op_binding, "
    "amf, ind_bits, created_at";

SubscriberRecord subscriberFrom(const Statement& st) {
    SubscriberRecord s;
    s.imsi = st.text(0);
    s.externalUeId = st.optionalText(1);
    s.algorithm = st.text(2);
    s.k = WrappedBlob{st.blob(3), st.blob(4)};
    s.opKind = st.text(5) == "op" ? OpKind::op : OpKind::opc;
    s.op = WrappedBlob{st.blob(6), st.blob(7)};
    s.amf = toArray<2>(st.blob(8));
    s.indBits = static_cast<std::uint8_t>(st.int64(9));
    s.createdAt = st.int64(10);
    return s;
}

// Validates a subscriber and returns it with its EAS list sorted and without repeats.
Result<SubscriberRecord> normalizedSubscriber(const SubscriberRecord& in, std::uint64_t seqHe) {
    if (auto r = checkImsi(in.imsi); !r)
        return makeError(std::move(r.error()));
    if (in.externalUeId) {
        if (auto r = checkUtf8Id(*in.externalUeId, "external UE id", 255); !r) {
            return makeError(std::move(r.error()));
        }
    }
    if (in.algorithm != "milenage") {
        return makeError(StoreErrc::invalid_argument,
                         "algorithm must be 'milenage', got '" + in.algorithm + "'");
    }
    if (auto r = checkBlob(in.k, "wrapped K"); !r)
        return makeError(std::move(r.error()));
    if (auto r = checkBlob(in.op, in.opKind == OpKind::op ? "encrypted OP" : "encrypted OPc"); !r) {
        return makeError(std::move(r.error()));
    }
    if (in.indBits > kMaxIndBits) {
        return makeError(StoreErrc::invalid_argument, "IND bit length must be 0.." +
                                                          std::to_string(kMaxIndBits) + ", got " +
                                                          std::to_string(in.indBits));
    }
    if (seqHe > maxSeq(in.indBits)) {
        return makeError(StoreErrc::invalid_argument, "initial SEQ " + std::to_string(seqHe) +
                                                          " exceeds the maximum " +
                                                          std::to_string(maxSeq(in.indBits)));
    }
    for (const auto& eas : in.allowedEas) {
        if (auto r = checkUtf8Id(eas, "EAS Id", 64); !r)
            return makeError(std::move(r.error()));
    }
    SubscriberRecord out = in;
    std::sort(out.allowedEas.begin(), out.allowedEas.end());
    out.allowedEas.erase(std::unique(out.allowedEas.begin(), out.allowedEas.end()),
                         out.allowedEas.end());
    return out;
}

Result<void> insertSubscriber(Connection& c, const SubscriberRecord& s, std::uint64_t seqHe,
                              std::int64_t now) {
    {
        auto st = c.prepare(
            "INSERT INTO subscribers (imsi, external_ue_id, algorithm, k_wrapped, k_binding, "
            "op_kind, op_encrypted, op_binding, amf, ind_bits, created_at) "
            "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)");
        if (!st)
            return makeError(std::move(st.error()));
        st->bind(1, std::string_view(s.imsi))
            .bindOptional(2, s.externalUeId)
            .bind(3, std::string_view(s.algorithm))
            .bind(4, ByteView(s.k.data))
            .bind(5, ByteView(s.k.binding))
            .bind(6, toString(s.opKind))
            .bind(7, ByteView(s.op.data))
            .bind(8, ByteView(s.op.binding))
            .bind(9, ByteView(s.amf))
            .bind(10, std::int64_t{s.indBits})
            .bind(11, now);
        if (auto r = st->run(); !r) {
            if (hasCode(r.error(), StoreErrc::duplicate)) {
                if (r.error().message.find("external_ue_id") != std::string::npos) {
                    return renamed(r.error(), StoreErrc::duplicate,
                                   "external UE id '" + *s.externalUeId +
                                       "' is already used by another subscriber");
                }
                return renamed(r.error(), StoreErrc::duplicate,
                               "subscriber " + s.imsi + " already exists");
            }
            return r;
        }
    }
    {
        auto st = c.prepare(
            "INSERT INTO sqn_state (imsi, seq_he, last_change, updated_at) "
            "VALUES (?1, ?2, 'provision', ?3)");
        if (!st)
            return makeError(std::move(st.error()));
        st->bind(1, std::string_view(s.imsi))
            .bind(2, static_cast<std::int64_t>(seqHe))
            .bind(3, now);
        if (auto r = st->run(); !r)
            return r;
    }
    for (const auto& eas : s.allowedEas) {
        if (auto r =
                execute(c, "INSERT INTO subscriber_eas (imsi, eas_id) VALUES (?1, ?2)",
                        [&](Statement& st) {
                            st.bind(1, std::string_view(s.imsi)).bind(2, std::string_view(eas));
                        });
            !r) {
            if (hasCode(r.error(), StoreErrc::referenced)) {
                return renamed(r.error(), StoreErrc::not_found,
                               "EAS '" + eas + "' is not in the EAS registry");
            }
            return r;
        }
    }
    return {};
}

// Fills allowedEas of the subscribers in `subs` (ordered by IMSI) from one ordered scan.
Result<void> attachAllowedEas(Connection& c, std::vector<SubscriberRecord>& subs) {
    if (subs.empty())
        return {};
    auto st = c.prepare(
        "SELECT imsi, eas_id FROM subscriber_eas WHERE imsi BETWEEN ?1 AND ?2 "
        "ORDER BY imsi, eas_id");
    if (!st)
        return makeError(std::move(st.error()));
    st->bind(1, std::string_view(subs.front().imsi)).bind(2, std::string_view(subs.back().imsi));
    std::size_t i = 0;
    return forEachRow(*st, [&](const Statement& row) {
        const std::string imsi = row.text(0);
        while (i < subs.size() && subs[i].imsi < imsi)
            ++i;
        if (i == subs.size())
            return false;
        if (subs[i].imsi == imsi)
            subs[i].allowedEas.push_back(row.text(1));
        return true;
    });
}

// ---- EAS

constexpr std::string_view kEasColumns =
    "eas_id, service_mode, cert_sha256, up_endpoint, created_at";

EasRecord easFrom(const Statement& st) {
    EasRecord e;
    e.easId = st.text(0);
    e.serviceMode = serviceModeFromString(st.text(1)).value_or(ServiceMode::kaOnly);
    e.certSha256 = toArray<32>(st.optionalBlob(2));
    e.upEndpoint = st.optionalText(3);
    e.createdAt = st.int64(4);
    return e;
}

// ---- key sets

constexpr std::string_view kKeySetColumns =
    "imsi, kid, state, key_agreement, plmn, hse_id, created_at, lifetime, highest_nonce, "
    "use_count, kint_wrapped, kint_binding";

KeySetRecord keySetFrom(const Statement& st) {
    KeySetRecord k;
    k.imsi = st.text(0);
    k.kid = static_cast<std::uint8_t>(st.int64(1));
    k.state = st.text(2) == "pending" ? KeySetState::pending : KeySetState::current;
    k.keyAgreement = static_cast<KeyAgreement>(st.int64(3));
    k.plmn = toArray<3>(st.optionalBlob(4));
    k.hseId = st.text(5);
    k.createdAt = st.int64(6);
    k.lifetimeSeconds = static_cast<std::uint32_t>(st.int64(7));
    if (auto n = st.optionalBlob(8); n && n->size() == 8)
        k.highestNonce = getBe64(n->data());
    k.useCount = static_cast<std::uint64_t>(st.int64(9));
    k.kInt = WrappedBlob{st.blob(10), st.blob(11)};
    return k;
}

EasKeyType easKeyTypeFrom(const std::string& s) {
    return s == "kint-e2e" ? EasKeyType::kIntE2e : EasKeyType::kIntEasPsk;
}

EasKeyRecord easKeyFrom(const Statement& st) {
    EasKeyRecord e;
    e.easId = st.text(0);
    e.type = easKeyTypeFrom(st.text(1));
    e.key = WrappedBlob{st.blob(2), st.blob(3)};
    e.identifier = toArray<16>(st.blob(4));
    return e;
}

Result<void> attachEasKeys(Connection& c, KeySetRecord& k) {
    auto keys = queryAll(
        c,
        "SELECT eas_id, key_type, key_wrapped, key_binding, eas_key_id FROM key_set_eas_keys "
        "WHERE imsi = ?1 AND kid = ?2 ORDER BY eas_id",
        [&k](Statement& st) { st.bind(1, std::string_view(k.imsi)).bind(2, std::int64_t{k.kid}); },
        easKeyFrom);
    if (!keys)
        return makeError(std::move(keys.error()));
    k.easKeys.insert(k.easKeys.end(), std::make_move_iterator(keys->begin()),
                     std::make_move_iterator(keys->end()));
    return {};
}

Result<KeySetRecord> normalizedKeySet(const KeySetRecord& in) {
    if (auto r = checkImsi(in.imsi); !r)
        return makeError(std::move(r.error()));
    if (auto r = checkKid(in.kid); !r)
        return makeError(std::move(r.error()));
    const auto ka = static_cast<std::uint8_t>(in.keyAgreement);
    if (ka < 1 || ka > 3) {
        return makeError(
            StoreErrc::invalid_argument,
            "key agreement must be 1 (UMTS), 2 (EPS) or 3 (5G), got " + std::to_string(ka));
    }
    if (auto r = checkUtf8Id(in.hseId, "HSE Id", 64); !r)
        return makeError(std::move(r.error()));
    if (auto r = checkBlob(in.kInt, "wrapped KInt"); !r)
        return makeError(std::move(r.error()));
    KeySetRecord out = in;
    std::sort(out.easKeys.begin(), out.easKeys.end(),
              [](const EasKeyRecord& a, const EasKeyRecord& b) { return a.easId < b.easId; });
    for (std::size_t i = 0; i < out.easKeys.size(); ++i) {
        const auto& e = out.easKeys[i];
        if (auto r = checkUtf8Id(e.easId, "EAS Id", 64); !r)
            return makeError(std::move(r.error()));
        if (auto r = checkBlob(e.key, "wrapped EAS key"); !r) {
            return makeError(std::move(r.error()));
        }
        if (i > 0 && out.easKeys[i - 1].easId == e.easId) {
            return makeError(StoreErrc::invalid_argument,
                             "two keys for EAS '" + e.easId + "' in one key set");
        }
    }
    return out;
}

Result<void> insertKeySet(Connection& c, const KeySetRecord& k) {
    {
        auto st = c.prepare(
            "INSERT INTO key_sets (imsi, kid, state, key_agreement, plmn, hse_id, created_at, "
            "lifetime, highest_nonce, use_count, kint_wrapped, kint_binding) "
            "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)");
        if (!st)
            return makeError(std::move(st.error()));
        st->bind(1, std::string_view(k.imsi))
            .bind(2, std::int64_t{k.kid})
            .bind(3, toString(k.state))
            .bind(4, std::int64_t{static_cast<std::uint8_t>(k.keyAgreement)});
        if (k.plmn) {
            st->bind(5, ByteView(*k.plmn));
        } else {
            st->bindNull(5);
        }
        st->bind(6, std::string_view(k.hseId))
            .bind(7, k.createdAt)
            .bind(8, std::int64_t{k.lifetimeSeconds});
        if (k.highestNonce) {
            const Bytes n = nonceBytes(*k.highestNonce);
            st->bind(9, ByteView(n));
        } else {
            st->bindNull(9);
        }
        if (k.useCount > static_cast<std::uint64_t>(INT64_MAX)) {
            return makeError(StoreErrc::invalid_argument, "use count out of range");
        }
        st->bind(10, static_cast<std::int64_t>(k.useCount))
            .bind(11, ByteView(k.kInt.data))
            .bind(12, ByteView(k.kInt.binding));
        if (auto r = st->run(); !r) {
            if (hasCode(r.error(), StoreErrc::referenced)) {
                return renamed(r.error(), StoreErrc::not_found, "unknown IMSI " + k.imsi);
            }
            if (hasCode(r.error(), StoreErrc::duplicate)) {
                return renamed(r.error(), StoreErrc::duplicate,
                               "Key ID " + std::to_string(k.kid) + " is in use by another key " +
                                   "set of " + k.imsi);
            }
            return r;
        }
    }
    for (const auto& e : k.easKeys) {
        auto st = c.prepare(
            "INSERT INTO key_set_eas_keys (imsi, kid, eas_id, key_type, key_wrapped, key_binding, "
            "eas_key_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
        if (!st)
            return makeError(std::move(st.error()));
        st->bind(1, std::string_view(k.imsi))
            .bind(2, std::int64_t{k.kid})
            .bind(3, std::string_view(e.easId))
            .bind(4, toString(e.type))
            .bind(5, ByteView(e.key.data))
            .bind(6, ByteView(e.key.binding))
            .bind(7, ByteView(e.identifier));
        if (auto r = st->run(); !r) {
            if (hasCode(r.error(), StoreErrc::duplicate)) {
                return renamed(r.error(), StoreErrc::duplicate,
                               "EAS key identifier already indexed for EAS '" + e.easId + "'");
            }
            return r;
        }
    }
    return {};
}

// ---- refreshes

constexpr std::string_view kRefreshColumns =
    "imsi, origin, new_kid, rand, autn, resyncs, requested_by, created_at, updated_at";

RefreshRecord refreshFrom(const Statement& st) {
    RefreshRecord r;
    r.imsi = st.text(0);
    r.origin = static_cast<RefreshOrigin>(st.int64(1));
    r.newKid = static_cast<std::uint8_t>(st.int64(2));
    r.rand = toArray<16>(st.optionalBlob(3));
    r.autn = toArray<16>(st.optionalBlob(4));
    r.resyncs = static_cast<std::uint32_t>(st.int64(5));
    r.requestedBy = st.optionalText(6);
    r.createdAt = st.int64(7);
    r.updatedAt = st.int64(8);
    return r;
}

// Brackets several reads in one read transaction, so they see one snapshot.
class ReadTransaction {
public:
    explicit ReadTransaction(Connection& c) : c_(c) { ok_ = static_cast<bool>(c_.exec("BEGIN")); }
    ReadTransaction(const ReadTransaction&) = delete;
    ReadTransaction& operator=(const ReadTransaction&) = delete;
    ~ReadTransaction() {
        if (ok_)
            (void)c_.exec("COMMIT");
    }
    Result<void> status() const {
        if (ok_)
            return {};
        return makeError(c_.lastError("cannot start a read transaction"));
    }

private:
    Connection& c_;
    bool ok_ = false;
};

std::string sql(std::string_view a, std::string_view b, std::string_view c) {
    std::string s;
    s.reserve(a.size() + b.size() + c.size());
    s.append(a).append(b).append(c);
    return s;
}

}  // namespace

// ------------------------------------------------------------------------------------------
// Records' string forms

std::string_view toString(OpKind k) noexcept {
    return k == OpKind::op ? "op" : "opc";
}

std::string_view toString(ServiceMode m) noexcept {
    switch (m) {
        case ServiceMode::kaOnly:
            return "ka-only";
        case ServiceMode::ueToHse:
            return "ue-to-hse";
        case ServiceMode::ueToEas:
            return "ue-to-eas";
    }
    return "ka-only";
}

std::optional<ServiceMode> serviceModeFromString(std::string_view s) noexcept {
    if (s == "ka-only")
        return ServiceMode::kaOnly;
    if (s == "ue-to-hse")
        return ServiceMode::ueToHse;
    if (s == "ue-to-eas")
        return ServiceMode::ueToEas;
    return std::nullopt;
}

std::string_view toString(KeySetState s) noexcept {
    return s == KeySetState::pending ? "pending" : "current";
}

std::string_view toString(EasKeyType t) noexcept {
    return t == EasKeyType::kIntE2e ? "kint-e2e" : "kint-eas-psk";
}

// ------------------------------------------------------------------------------------------
// Opening and plumbing

class Store::ReaderLease {
public:
    ReaderLease(Store& s, std::unique_ptr<Connection> c) noexcept : store_(&s), c_(std::move(c)) {}
    ReaderLease(ReaderLease&& o) noexcept
        : store_(std::exchange(o.store_, nullptr)), c_(std::move(o.c_)) {}
    ReaderLease& operator=(ReaderLease&&) = delete;
    ReaderLease(const ReaderLease&) = delete;
    ReaderLease& operator=(const ReaderLease&) = delete;
    ~ReaderLease() {
        if (store_ != nullptr && c_)
            store_->releaseReader(std::move(c_));
    }
    Connection& operator*() const noexcept { return *c_; }
    Connection* operator->() const noexcept { return c_.get(); }

private:
    Store* store_;
    std::unique_ptr<Connection> c_;
};

Result<std::unique_ptr<Store>> Store::open(const std::string& path, StoreOptions options) {
    if (path.empty())
        return makeError(StoreErrc::invalid_argument, "empty store path");
    auto lock = StoreLock::acquire(path, options.mode, options.lockWait);
    if (!lock)
        return makeError(std::move(lock.error()));

    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
        if (errno != ENOENT) {
            return makeError(StoreErrc::io,
                             "cannot stat store '" + path + "': " + std::strerror(errno));
        }
        if (!options.create) {
            return makeError(StoreErrc::not_found, "store '" + path + "' does not exist");
        }
        if (lock->daemonActive()) {
            return makeError(StoreErrc::locked_by_daemon,
                             "store '" + path + "' does not exist but its lock is held");
        }
        // Created here with mode 0600 (SQLite would use 0644 under the usual umask), and the
        // directory entry made durable.
        UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
        if (!fd.isValid() && errno != EEXIST) {
            return makeError(StoreErrc::io,
                             "cannot create store '" + path + "': " + std::strerror(errno));
        }
        const auto slash = path.rfind('/');
        const std::string dir = slash == std::string::npos ? "." : path.substr(0, slash + 1);
        UniqueFd dfd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        if (dfd.isValid())
            (void)::fsync(dfd.get());
    } else if (!S_ISREG(st.st_mode)) {
        return makeError(StoreErrc::io, "store '" + path + "' is not a regular file");
    }

    auto writer = Connection::open(path, Connection::Role::writer, options.busyTimeout);
    if (!writer)
        return makeError(std::move(writer.error()));

    std::int64_t openedAt = 0;
    if (!lock->daemonActive()) {
        auto from = migrate(**writer);
        if (!from)
            return makeError(std::move(from.error()));
        openedAt = *from;
    } else {
        // A daemon owns the file: never migrate under it, only check we understand it.
        auto v = (*writer)->userVersion();
        if (!v)
            return makeError(std::move(v.error()));
        openedAt = *v;
        if (*v > kSchemaVersion) {
            return makeError(StoreErrc::schema_too_new,
                             "store schema version " + std::to_string(*v) +
                                 " is newer than this program supports (" +
                                 std::to_string(kSchemaVersion) + ")");
        }
        if (*v < kSchemaVersion) {
            return makeError(StoreErrc::locked_by_daemon,
                             "store schema version " + std::to_string(*v) +
                                 " needs a migration, but a daemon holds the store");
        }
    }

    std::unique_ptr<Store> s(new Store(path, std::move(*lock), openedAt, options));
    s->writer_ = std::make_unique<GroupCommitWriter>(std::move(*writer), options.groupCommit);
    s->sqn_ = std::make_unique<SqnAllocator>(*s->writer_, options.sqn, s->refusal());
    return s;
}

Store::Store(std::string path, StoreLock lock, std::int64_t openedAt, StoreOptions options)
    : path_(std::move(path)), lock_(std::move(lock)), openedAt_(openedAt), options_(options) {}

Store::~Store() {
    writer_.reset();  // drains the queue; completions may still use sqn_
    sqn_.reset();
    std::lock_guard lock(readersMutex_);
    idleReaders_.clear();
}

Result<Store::ReaderLease> Store::reader() {
    {
        std::lock_guard lock(readersMutex_);
        if (!idleReaders_.empty()) {
            auto c = std::move(idleReaders_.back());
            idleReaders_.pop_back();
            return ReaderLease(*this, std::move(c));
        }
    }
    auto c = Connection::open(path_, Connection::Role::reader, options_.busyTimeout);
    if (!c)
        return makeError(std::move(c.error()));
    return ReaderLease(*this, std::move(*c));
}

template <typename Read>
auto Store::withReader(Read&& read, bool snapshot) -> std::invoke_result_t<Read&, Connection&> {
    auto c = reader();
    if (!c)
        return makeError(std::move(c.error()));
    if (!snapshot)
        return read(**c);
    ReadTransaction txn(**c);
    if (auto r = txn.status(); !r)
        return makeError(std::move(r.error()));
    return read(**c);
}

void Store::releaseReader(std::unique_ptr<Connection> c) noexcept {
    std::lock_guard lock(readersMutex_);
    if (idleReaders_.size() < options_.idleReaders && !c->inTransaction()) {
        idleReaders_.push_back(std::move(c));
    }
}

std::optional<Error> Store::refusal() const {
    if (!lock_.daemonActive())
        return std::nullopt;
    std::string who = lock_.holderPid()
                          ? "a running daemon (pid " + std::to_string(*lock_.holderPid()) + ")"
                          : "a running daemon";
    return Error{
        ErrorDomain::store, static_cast<int>(StoreErrc::locked_by_daemon),
        "store '" + path_ + "' is in use by " + who + "; changes must go through the daemon"};
}

Result<void> Store::write(Result<GroupCommitWriter::Job> job) {
    if (!job)
        return makeError(std::move(job.error()));
    if (auto r = refusal())
        return makeError(std::move(*r));
    return writer_->run(std::move(*job));
}

void Store::write(Result<GroupCommitWriter::Job> job, Completion<void> done) {
    if (!job) {
        done(makeError(std::move(job.error())));
        return;
    }
    if (auto r = refusal()) {
        done(makeError(std::move(*r)));
        return;
    }
    writer_->submit(std::move(*job), std::move(done));
}

// ------------------------------------------------------------------------------------------
// Subscribers

Result<void> Store::addSubscriber(const SubscriberRecord& in, std::uint64_t seqHe) {
    auto s = normalizedSubscriber(in, seqHe);
    if (!s)
        return makeError(std::move(s.error()));
    const std::string imsi = s->imsi;
    auto r = write([s = std::move(*s), seqHe](Connection& c) {
        return insertSubscriber(c, s, seqHe, unixNow());
    });
    if (r)
        sqn_->forget(imsi);  // a range left over from an earlier subscriber of that IMSI
    return r;
}

Result<std::size_t> Store::importSubscribers(std::span<const SubscriberRecord> rows,
                                             std::span<const std::uint64_t> seqHe) {
    if (!seqHe.empty() && seqHe.size() != rows.size()) {
        return makeError(StoreErrc::invalid_argument, "import: " + std::to_string(seqHe.size()) +
                                                          " SEQ values for " +
                                                          std::to_string(rows.size()) + " rows");
    }
    auto batch = std::make_shared<std::vector<std::pair<SubscriberRecord, std::uint64_t>>>();
    batch->reserve(rows.size());
    for (std::size_t i = 0; i < rows.size(); ++i) {
        const std::uint64_t seq = seqHe.empty() ? 0 : seqHe[i];
        auto s = normalizedSubscriber(rows[i], seq);
        if (!s) {
            return prefixed(s.error(), "row " + std::to_string(i + 1) + ": ");
        }
        batch->emplace_back(std::move(*s), seq);
    }
    auto r = write([batch](Connection& c) -> Result<void> {
        const std::int64_t now = unixNow();
        for (std::size_t i = 0; i < batch->size(); ++i) {
            const auto& [s, seq] = (*batch)[i];
            if (auto w = insertSubscriber(c, s, seq, now); !w) {
                return prefixed(w.error(),
                                "row " + std::to_string(i + 1) + " (IMSI " + s.imsi + "): ");
            }
        }
        return {};
    });
    if (!r)
        return makeError(std::move(r.error()));
    for (const auto& [s, seq] : *batch)
        sqn_->forget(s.imsi);
    return batch->size();
}

Result<SubscriberRecord> Store::getSubscriber(std::string_view imsi) {
    if (auto r = checkImsi(imsi); !r)
        return makeError(std::move(r.error()));
    return withReader(
        [imsi](Connection& c) -> Result<SubscriberRecord> {
            auto s = queryOne(
                c, sql("SELECT ", kSubscriberColumns, " FROM subscribers WHERE imsi = ?1"),
                [imsi](Statement& st) { st.bind(1, imsi); }, subscriberFrom,
                [imsi] {
                    return makeError(StoreErrc::not_found, "unknown IMSI " + std::string(imsi));
                });
            if (!s)
                return makeError(std::move(s.error()));
            std::vector<SubscriberRecord> one;
            one.push_back(std::move(*s));
            if (auto r = attachAllowedEas(c, one); !r)
                return makeError(std::move(r.error()));
            return std::move(one.front());
        },
        true);
}

Result<SubscriberRecord> Store::findSubscriberByExternalId(std::string_view externalUeId) {
    auto imsi = withReader([externalUeId](Connection& c) {
        return queryOne(
            c, "SELECT imsi FROM subscribers WHERE external_ue_id = ?1",
            [externalUeId](Statement& st) { st.bind(1, externalUeId); },
            [](const Statement& st) { return st.text(0); },
            [externalUeId] {
                return makeError(StoreErrc::not_found, "no subscriber has external UE id '" +
                                                           std::string(externalUeId) + "'");
            });
    });
    if (!imsi)
        return makeError(std::move(imsi.error()));
    return getSubscriber(*imsi);
}

Result<std::vector<SubscriberRecord>> Store::listSubscribers(std::string_view afterImsi,
                                                             std::size_t limit) {
    return withReader(
        [afterImsi, limit](Connection& c) -> Result<std::vector<SubscriberRecord>> {
            auto out = queryAll(
                c,
                sql("SELECT ", kSubscriberColumns,
                    " FROM subscribers WHERE imsi > ?1 ORDER BY imsi LIMIT ?2"),
                [afterImsi, limit](Statement& st) {
                    st.bind(1, afterImsi)
                        .bind(2, limit == 0 ? std::int64_t{-1} : static_cast<std::int64_t>(limit));
                },
                subscriberFrom);
            if (!out)
                return out;
            if (auto r = attachAllowedEas(c, *out); !r)
                return makeError(std::move(r.error()));
            return out;
        },
        true);
}

Result<std::uint64_t> Store::countSubscribers() {
    return withReader(
        [](Connection& c) { return queryCount(c, "SELECT count(*) FROM subscribers"); });
}

Result<std::uint64_t> Store::countKeySets() {
    return withReader([](Connection& c) { return queryCount(c, "SELECT count(*) FROM key_sets"); });
}

Result<void> Store::removeSubscriber(std::string_view imsiView) {
    if (auto r = checkImsi(imsiView); !r)
        return r;
    std::string imsi(imsiView);
    auto r = write([imsi](Connection& c) -> Result<void> {
        if (auto w = execute(c, "DELETE FROM subscribers WHERE imsi = ?1",
                             [&](Statement& st) { st.bind(1, std::string_view(imsi)); });
            !w) {
            return w;
        }
        if (c.changes() == 0)
            return makeError(StoreErrc::not_found, "unknown IMSI " + imsi);
        return {};
    });
    if (r)
        sqn_->forget(imsi);
    return r;
}

// ------------------------------------------------------------------------------------------
// SQN

Result<SqnState> Store::getSqnState(std::string_view imsi) {
    if (auto r = checkImsi(imsi); !r)
        return makeError(std::move(r.error()));
    return withReader([imsi](Connection& c) {
        return queryOne(
            c,
            "SELECT s.imsi, sub.ind_bits, s.seq_he, s.last_change, s.reservations, s.updated_at "
            "FROM sqn_state s JOIN subscribers sub ON sub.imsi = s.imsi WHERE s.imsi = ?1",
            [imsi](Statement& st) { st.bind(1, imsi); },
            [](const Statement& st) {
                SqnState s;
                s.imsi = st.text(0);
                s.indBits = static_cast<std::uint8_t>(st.int64(1));
                s.seqHe = static_cast<std::uint64_t>(st.int64(2));
                s.lastChange = st.text(3);
                s.reservations = static_cast<std::uint64_t>(st.int64(4));
                s.updatedAt = st.int64(5);
                return s;
            },
            [imsi] {
                return makeError(StoreErrc::not_found, "unknown IMSI " + std::string(imsi));
            });
    });
}

// ------------------------------------------------------------------------------------------
// EAS registry

Result<void> Store::addEas(const EasRecord& eas) {
    if (auto r = checkUtf8Id(eas.easId, "EAS Id", 64); !r)
        return r;
    const auto mode = static_cast<int>(eas.serviceMode);
    if (mode < 0 || mode > static_cast<int>(ServiceMode::ueToEas)) {
        return makeError(StoreErrc::invalid_argument, "unknown service mode");
    }
    if (eas.upEndpoint) {
        if (auto r = checkUpEndpoint(*eas.upEndpoint); !r)
            return r;
    }
    return write([eas](Connection& c) -> Result<void> {
        auto st = c.prepare(
            "INSERT INTO eas (eas_id, service_mode, cert_sha256, up_endpoint, created_at) "
            "VALUES (?1, ?2, ?3, ?4, ?5)");
        if (!st)
            return makeError(std::move(st.error()));
        st->bind(1, std::string_view(eas.easId)).bind(2, toString(eas.serviceMode));
        if (eas.certSha256) {
            st->bind(3, ByteView(*eas.certSha256));
        } else {
            st->bindNull(3);
        }
        st->bindOptional(4, eas.upEndpoint).bind(5, unixNow());
        if (auto r = st->run(); !r) {
            if (hasCode(r.error(), StoreErrc::duplicate)) {
                if (r.error().message.find("cert_sha256") != std::string::npos) {
                    return renamed(r.error(), StoreErrc::duplicate,
                                   "that client certificate is already registered for another "
                                   "EAS");
                }
                return renamed(r.error(), StoreErrc::duplicate,
                               "EAS '" + eas.easId + "' already exists");
            }
            return r;
        }
        return {};
    });
}

Result<EasRecord> Store::getEas(std::string_view easId) {
    return withReader([easId](Connection& c) {
        return queryOne(
            c, sql("SELECT ", kEasColumns, " FROM eas WHERE eas_id = ?1"),
            [easId](Statement& st) { st.bind(1, easId); }, easFrom,
            [easId] {
                return makeError(StoreErrc::not_found, "unknown EAS '" + std::string(easId) + "'");
            });
    });
}

Result<EasRecord> Store::findEasByCertificate(const CertFingerprint& sha256) {
    return withReader([&sha256](Connection& c) {
        return queryOne(
            c, sql("SELECT ", kEasColumns, " FROM eas WHERE cert_sha256 = ?1"),
            [&sha256](Statement& st) { st.bind(1, ByteView(sha256)); }, easFrom,
            [] { return makeError(StoreErrc::not_found, "no EAS has that client certificate"); });
    });
}

Result<std::vector<EasRecord>> Store::listEas() {
    return withReader([](Connection& c) {
        return queryAll(c, sql("SELECT ", kEasColumns, " FROM eas ORDER BY eas_id"), noBind,
                        easFrom);
    });
}

Result<void> Store::removeEas(std::string_view easIdView) {
    std::string easId(easIdView);
    return write([easId](Connection& c) -> Result<void> {
        if (auto r = execute(c, "DELETE FROM eas WHERE eas_id = ?1",
                             [&](Statement& st) { st.bind(1, std::string_view(easId)); });
            !r) {
            if (!hasCode(r.error(), StoreErrc::referenced))
                return r;
            auto n = c.prepare("SELECT count(*) FROM subscriber_eas WHERE eas_id = ?1");
            std::int64_t count = 0;
            if (n) {
                n->bind(1, std::string_view(easId));
                if (auto row = n->step(); row && *row)
                    count = n->int64(0);
            }
            return renamed(r.error(), StoreErrc::referenced,
                           "EAS '" + easId + "' is still allowed for " + std::to_string(count) +
                               " subscriber(s); remove it from them first");
        }
        if (c.changes() == 0)
            return makeError(StoreErrc::not_found, "unknown EAS '" + easId + "'");
        return {};
    });
}

// ------------------------------------------------------------------------------------------
// Key sets

namespace {

Result<GroupCommitWriter::Job> putKeySetJob(const KeySetRecord& in) {
    auto normalized = normalizedKeySet(in);
    if (!normalized)
        return makeError(std::move(normalized.error()));
    return [k = std::move(*normalized)](Connection& c) -> Result<void> {
        if (auto r = execute(c,
                             k.state == KeySetState::current
                                 ? "DELETE FROM key_sets WHERE imsi = ?1"
                                 : "DELETE FROM key_sets WHERE imsi = ?1 AND state = 'pending'",
                             [&](Statement& st) { st.bind(1, std::string_view(k.imsi)); });
            !r) {
            return r;
        }
        return insertKeySet(c, k);
    };
}

Result<void> keySetExists(Connection& c, const std::string& imsi, std::uint8_t kid) {
    auto found = queryOne(
        c, "SELECT 1 FROM key_sets WHERE imsi = ?1 AND kid = ?2",
        [&](Statement& st) { st.bind(1, std::string_view(imsi)).bind(2, std::int64_t{kid}); },
        [](const Statement&) { return true; }, [&] { return noKeySet(kid, imsi); });
    if (!found)
        return makeError(std::move(found.error()));
    return {};
}

// The IMSI and KID checks of every write naming one key set.
Result<void> checkKeySetKey(std::string_view imsi, std::uint8_t kid) {
    if (auto r = checkImsi(imsi); !r)
        return r;
    return checkKid(kid);
}

Result<GroupCommitWriter::Job> makeCurrentJob(std::string imsi, std::uint8_t kid) {
    if (auto r = checkKeySetKey(imsi, kid); !r)
        return makeError(std::move(r.error()));
    return [imsi = std::move(imsi), kid](Connection& c) -> Result<void> {
        const auto bindKey = [&](Statement& st) {
            st.bind(1, std::string_view(imsi)).bind(2, std::int64_t{kid});
        };
        if (auto r = keySetExists(c, imsi, kid); !r)
            return r;
        if (auto r = execute(c, "DELETE FROM key_sets WHERE imsi = ?1 AND kid <> ?2", bindKey); !r)
            return r;
        return execute(c, "UPDATE key_sets SET state = 'current' WHERE imsi = ?1 AND kid = ?2",
                       bindKey);
    };
}

Result<GroupCommitWriter::Job> nonceJob(std::string imsi, std::uint8_t kid, std::uint64_t nonce) {
    if (auto r = checkKeySetKey(imsi, kid); !r)
        return makeError(std::move(r.error()));
    return [imsi = std::move(imsi), kid, nonce](Connection& c) -> Result<void> {
        // Big-endian 8-octet blobs compare with memcmp, i.e. as unsigned 64-bit numbers.
        const Bytes n = nonceBytes(nonce);
        if (auto r = execute(c,
                             "UPDATE key_sets SET highest_nonce = ?3 WHERE imsi = ?1 AND kid = ?2 "
                             "AND (highest_nonce IS NULL OR highest_nonce < ?3)",
                             [&](Statement& st) {
                                 st.bind(1, std::string_view(imsi))
                                     .bind(2, std::int64_t{kid})
                                     .bind(3, ByteView(n));
                             });
            !r) {
            return r;
        }
        if (c.changes() == 1)
            return {};
        if (auto e = keySetExists(c, imsi, kid); !e)
            return e;
        return makeError(StoreErrc::stale_nonce,
                         "resumption nonce is not greater than the highest accepted for key set " +
                             std::to_string(kid) + " of IMSI " + imsi);
    };
}

// A job running `statement` (?1 = IMSI, ?2 = KID) that fails with noKeySet when it changes no
// row. `statement` is a string literal.
Result<GroupCommitWriter::Job> keySetRowJob(const char* statement, std::string imsi,
                                            std::uint8_t kid) {
    if (auto r = checkKeySetKey(imsi, kid); !r)
        return makeError(std::move(r.error()));
    return [statement, imsi = std::move(imsi), kid](Connection& c) -> Result<void> {
        if (auto r = execute(c, statement,
                             [&](Statement& st) {
                                 st.bind(1, std::string_view(imsi)).bind(2, std::int64_t{kid});
                             });
            !r)
            return r;
        if (c.changes() == 0)
            return noKeySet(kid, imsi);
        return {};
    };
}

Result<GroupCommitWriter::Job> useCountJob(std::string imsi, std::uint8_t kid) {
    return keySetRowJob(
        "UPDATE key_sets SET use_count = use_count + 1 WHERE imsi = ?1 AND kid = ?2",
        std::move(imsi), kid);
}

}  // namespace

// Each write has one job builder (checks, then the job); the blocking and the completion forms
// only hand it to write().

Result<void> Store::putKeySet(const KeySetRecord& in) {
    return write(putKeySetJob(in));
}

void Store::putKeySet(KeySetRecord in, Completion<void> done) {
    write(putKeySetJob(in), std::move(done));
}

Result<void> Store::makeCurrent(std::string_view imsi, std::uint8_t kid) {
    return write(makeCurrentJob(std::string(imsi), kid));
}

void Store::makeCurrent(std::string imsi, std::uint8_t kid, Completion<void> done) {
    write(makeCurrentJob(std::move(imsi), kid), std::move(done));
}

Result<void> Store::acceptResumptionNonce(std::string_view imsi, std::uint8_t kid,
                                          std::uint64_t nonce) {
    return write(nonceJob(std::string(imsi), kid, nonce));
}

void Store::acceptResumptionNonce(std::string imsi, std::uint8_t kid, std::uint64_t nonce,
                                  Completion<void> done) {
    write(nonceJob(std::move(imsi), kid, nonce), std::move(done));
}

Result<void> Store::incrementUseCount(std::string_view imsi, std::uint8_t kid) {
    return write(useCountJob(std::string(imsi), kid));
}

void Store::incrementUseCount(std::string imsi, std::uint8_t kid, Completion<void> done) {
    write(useCountJob(std::move(imsi), kid), std::move(done));
}

Result<void> Store::removeKeySet(std::string_view imsi, std::uint8_t kid) {
    return write(
        keySetRowJob("DELETE FROM key_sets WHERE imsi = ?1 AND kid = ?2", std::string(imsi), kid));
}

Result<std::size_t> Store::removeKeySets(std::string_view imsiView) {
    if (auto r = checkImsi(imsiView); !r)
        return makeError(std::move(r.error()));
    if (auto r = refusal())
        return makeError(std::move(*r));
    std::string imsi(imsiView);
    return writer_->runFor<std::size_t>([imsi](Connection& c) -> Result<std::size_t> {
        if (auto r = execute(c, "DELETE FROM key_sets WHERE imsi = ?1",
                             [&](Statement& st) { st.bind(1, std::string_view(imsi)); });
            !r) {
            return makeError(std::move(r.error()));
        }
        return static_cast<std::size_t>(c.changes());
    });
}

Result<KeySetRecord> Store::getKeySet(std::string_view imsi, std::uint8_t kid) {
    if (auto r = checkImsi(imsi); !r)
        return makeError(std::move(r.error()));
    if (auto r = checkKid(kid); !r)
        return makeError(std::move(r.error()));
    return withReader(
        [imsi, kid](Connection& c) -> Result<KeySetRecord> {
            auto k = queryOne(
                c, sql("SELECT ", kKeySetColumns, " FROM key_sets WHERE imsi = ?1 AND kid = ?2"),
                [imsi, kid](Statement& st) { st.bind(1, imsi).bind(2, std::int64_t{kid}); },
                keySetFrom, [imsi, kid] { return noKeySet(kid, imsi); });
            if (!k)
                return k;
            if (auto r = attachEasKeys(c, *k); !r)
                return makeError(std::move(r.error()));
            return k;
        },
        true);
}

Result<std::vector<KeySetRecord>> Store::listKeySets(std::string_view imsi) {
    if (auto r = checkImsi(imsi); !r)
        return makeError(std::move(r.error()));
    return withReader(
        [imsi](Connection& c) -> Result<std::vector<KeySetRecord>> {
            auto out = queryAll(
                c, sql("SELECT ", kKeySetColumns, " FROM key_sets WHERE imsi = ?1 ORDER BY kid"),
                [imsi](Statement& st) { st.bind(1, imsi); }, keySetFrom);
            if (!out)
                return out;
            for (auto& k : *out) {
                if (auto r = attachEasKeys(c, k); !r)
                    return makeError(std::move(r.error()));
            }
            return out;
        },
        true);
}

Result<EasKeyLookup> Store::findEasKey(std::string_view easId, const EasKeyIdentifier& identifier) {
    return withReader([easId, &identifier](Connection& c) {
        return queryOne(
            c,
            "SELECT k.imsi, s.external_ue_id, k.kid, ks.state, ks.created_at, ks.lifetime, "
            "k.eas_id, k.key_type, k.key_wrapped, k.key_binding, k.eas_key_id "
            "FROM key_set_eas_keys k JOIN key_sets ks ON ks.imsi = k.imsi AND ks.kid = k.kid "
            "JOIN subscribers s ON s.imsi = k.imsi WHERE k.eas_id = ?1 AND k.eas_key_id = ?2",
            [easId, &identifier](Statement& st) {
                st.bind(1, easId).bind(2, ByteView(identifier));
            },
            [](const Statement& st) {
                EasKeyLookup l;
                l.imsi = st.text(0);
                l.externalUeId = st.optionalText(1);
                l.kid = static_cast<std::uint8_t>(st.int64(2));
                l.state = st.text(3) == "pending" ? KeySetState::pending : KeySetState::current;
                l.createdAt = st.int64(4);
                l.lifetimeSeconds = static_cast<std::uint32_t>(st.int64(5));
                l.key.easId = st.text(6);
                l.key.type = easKeyTypeFrom(st.text(7));
                l.key.key = WrappedBlob{st.blob(8), st.blob(9)};
                l.key.identifier = toArray<16>(st.blob(10));
                return l;
            },
            [easId] {
                return makeError(StoreErrc::not_found,
                                 "EAS key identifier unknown to EAS '" + std::string(easId) + "'");
            });
    });
}

// ------------------------------------------------------------------------------------------
// Refreshes

namespace {

Result<void> checkRefresh(const RefreshRecord& r) {
    if (auto c = checkImsi(r.imsi); !c)
        return c;
    const auto o = static_cast<std::uint8_t>(r.origin);
    if (o < 1 || o > 3) {
        return makeError(
            StoreErrc::invalid_argument,
            "refresh origin must be 1 (UE), 2 (HSE) or 3 (EAS), got " + std::to_string(o));
    }
    if (r.newKid > 7) {
        return makeError(StoreErrc::invalid_argument,
                         "new Key ID must be 0..7, got " + std::to_string(r.newKid));
    }
    if (r.requestedBy) {
        if (auto c = checkUtf8Id(*r.requestedBy, "EAS Id", 64); !c)
            return c;
    }
    return {};
}

Result<GroupCommitWriter::Job> putRefreshJob(RefreshRecord r) {
    if (auto c = checkRefresh(r); !c)
        return makeError(std::move(c.error()));
    return [r = std::move(r)](Connection& c) -> Result<void> {
        auto st = c.prepare(
            "INSERT INTO refreshes (imsi, origin, new_kid, rand, autn, resyncs, requested_by, "
            "created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8) "
            "ON CONFLICT (imsi) DO UPDATE SET origin = excluded.origin, "
            "new_kid = excluded.new_kid, rand = excluded.rand, autn = excluded.autn, "
            "resyncs = excluded.resyncs, requested_by = excluded.requested_by, "
            "updated_at = excluded.updated_at");
        if (!st)
            return makeError(std::move(st.error()));
        st->bind(1, std::string_view(r.imsi))
            .bind(2, std::int64_t{static_cast<std::uint8_t>(r.origin)})
            .bind(3, std::int64_t{r.newKid});
        if (r.rand) {
            st->bind(4, ByteView(*r.rand));
        } else {
            st->bindNull(4);
        }
        if (r.autn) {
            st->bind(5, ByteView(*r.autn));
        } else {
            st->bindNull(5);
        }
        st->bind(6, std::int64_t{r.resyncs}).bindOptional(7, r.requestedBy).bind(8, unixNow());
        if (auto w = st->run(); !w) {
            if (hasCode(w.error(), StoreErrc::referenced)) {
                return renamed(w.error(), StoreErrc::not_found, "unknown IMSI " + r.imsi);
            }
            return w;
        }
        return {};
    };
}

Result<GroupCommitWriter::Job> removeRefreshJob(std::string imsi) {
    if (auto r = checkImsi(imsi); !r)
        return makeError(std::move(r.error()));
    return [imsi = std::move(imsi)](Connection& c) -> Result<void> {
        if (auto r = execute(c, "DELETE FROM refreshes WHERE imsi = ?1",
                             [&](Statement& st) { st.bind(1, std::string_view(imsi)); });
            !r)
            return r;
        if (c.changes() == 0) {
            return makeError(StoreErrc::not_found, "no refresh in progress for IMSI " + imsi);
        }
        return {};
    };
}

}  // namespace

Result<void> Store::putRefresh(const RefreshRecord& r) {
    return write(putRefreshJob(r));
}

void Store::putRefresh(RefreshRecord r, Completion<void> done) {
    write(putRefreshJob(std::move(r)), std::move(done));
}

Result<RefreshRecord> Store::getRefresh(std::string_view imsi) {
    if (auto r = checkImsi(imsi); !r)
        return makeError(std::move(r.error()));
    return withReader([imsi](Connection& c) {
        return queryOne(
            c, sql("SELECT ", kRefreshColumns, " FROM refreshes WHERE imsi = ?1"),
            [imsi](Statement& st) { st.bind(1, imsi); }, refreshFrom,
            [imsi] {
                return makeError(StoreErrc::not_found,
                                 "no refresh in progress for IMSI " + std::string(imsi));
            });
    });
}

Result<std::vector<RefreshRecord>> Store::listRefreshes() {
    return withReader([](Connection& c) {
        return queryAll(c, sql("SELECT ", kRefreshColumns, " FROM refreshes ORDER BY imsi"), noBind,
                        refreshFrom);
    });
}

Result<void> Store::removeRefresh(std::string_view imsi) {
    return write(removeRefreshJob(std::string(imsi)));
}

void Store::removeRefresh(std::string imsi, Completion<void> done) {
    write(removeRefreshJob(std::move(imsi)), std::move(done));
}

}  // namespace best::store
