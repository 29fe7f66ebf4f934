#include "store/sqn.h"

#include <algorithm>
#include <exception>
#include <future>
#include <memory>

#include "common/bytes.h"
#include "common/log.h"
#include "store/validate.h"

namespace best::store {
namespace {

struct SeqRow {
    std::uint64_t seqHe = 0;
    std::uint8_t indBits = kDefaultIndBits;
};

Result<SeqRow> readSeq(Connection& c, const std::string& imsi) {
    auto st = c.prepare(
        "SELECT s.seq_he, sub.ind_bits FROM sqn_state s JOIN subscribers sub ON sub.imsi = s.imsi "
        "WHERE s.imsi = ?1");
    if (!st)
        return makeError(std::move(st.error()));
    st->bind(1, std::string_view(imsi));
    auto row = st->step();
    if (!row)
        return makeError(std::move(row.error()));
    if (!*row)
        return makeError(StoreErrc::not_found, "unknown IMSI " + imsi);
    return SeqRow{static_cast<std::uint64_t>(st->int64(0)),
                  static_cast<std::uint8_t>(st->int64(1))};
}

Result<void> writeSeq(Connection& c, const std::string& imsi, std::uint64_t seqHe,
                      std::string_view change) {
    auto st = c.prepare(
        "UPDATE sqn_state SET seq_he = ?2, last_change = ?3, updated_at = ?4, "
        "reservations = reservations + (?3 = 'reserve') WHERE imsi = ?1");
    if (!st)
        return makeError(std::move(st.error()));
    st->bind(1, std::string_view(imsi))
        .bind(2, static_cast<std::int64_t>(seqHe))
        .bind(3, change)
        .bind(4, unixNow());
    if (auto r = st->run(); !r)
        return r;
    if (c.changes() != 1)
        return makeError(StoreErrc::not_found, "unknown IMSI " + imsi);
    return {};
}

Error indError(std::uint32_t ind, std::uint8_t indBits, const std::string& imsi) {
    return Error{ErrorDomain::store, static_cast<int>(StoreErrc::invalid_argument),
                 "the HSE's IND value " + std::to_string(ind) + " does not fit in the " +
                     std::to_string(indBits) + " IND bits of subscriber " + imsi};
}

}  // namespace

crypto::Sqn sqnToBytes(std::uint64_t sqn) noexcept {
    crypto::Sqn out{};
    putBe48(out.data(), sqn);
    return out;
}

std::uint64_t sqnFromBytes(const crypto::Sqn& sqn) noexcept {
    return getBe48(sqn.data());
}

SqnAllocator::SqnAllocator(GroupCommitWriter& writer, SqnOptions options,
                           std::optional<Error> refusal)
    : writer_(writer),
      options_{std::max<std::uint32_t>(options.batchSize, 1), options.ind, options.maxRanges},
      refusal_(std::move(refusal)) {}

std::uint64_t SqnAllocator::reservationsMade() const {
    std::lock_guard lock(mutex_);
    return reservations_;
}

SqnGrant SqnAllocator::grantFrom(Entry& e) const {
    SqnGrant g;
    g.seq = e.next++;
    g.ind = options_.ind;
    g.indBits = e.indBits;
    g.sqn = sqnToBytes(composeSqn(g.seq, g.ind, g.indBits));
    return g;
}

void SqnAllocator::deliver(Delivery& d) noexcept {
    for (auto& [cb, r] : d) {
        try {
            cb(std::move(r));
        } catch (const std::exception& e) {
            log::error("store", std::string("an SQN callback threw: ") + e.what());
        } catch (...) {
            log::error("store", "an SQN callback threw a non-standard exception");
        }
    }
    d.clear();
}

void SqnAllocator::allocate(std::string imsi, Callback done) {
    Delivery d;
    if (refusal_) {
        d.emplace_back(std::move(done), makeError(*refusal_));
        deliver(d);
        return;
    }
    if (auto r = checkImsi(imsi); !r) {
        d.emplace_back(std::move(done), makeError(std::move(r.error())));
        deliver(d);
        return;
    }
    {
        std::lock_guard lock(mutex_);
        if (options_.maxRanges != 0 && entries_.size() >= options_.maxRanges &&
            entries_.find(imsi) == entries_.end())
            boundRangesLocked();
        Entry& e = entries_[imsi];
        if (e.waiters.empty() && !e.reserving && e.next < e.end) {
            d.emplace_back(std::move(done), grantFrom(e));
        } else {
            e.waiters.push_back(std::move(done));
            if (!e.reserving)
                startReservation(imsi, e, d);
        }
    }
    deliver(d);
}

Result<SqnGrant> SqnAllocator::allocate(std::string_view imsi) {
    if (writer_.onWriterThread()) {
        return makeError(StoreErrc::internal,
                         "blocking SQN allocation from a store completion callback");
    }
    std::promise<Result<SqnGrant>> p;
    auto f = p.get_future();
    allocate(std::string(imsi), [&p](Result<SqnGrant> r) { p.set_value(std::move(r)); });
    return f.get();
}

void SqnAllocator::boundRangesLocked() {
    // Down to 7/8 of the bound, so the scan runs once per maxRanges/8 new subscribers. Entries
    // with a reservation in flight or waiters stay (their epoch guards the completion).
    const std::size_t target = options_.maxRanges - options_.maxRanges / 8;
    for (auto it = entries_.begin(); it != entries_.end() && entries_.size() > target;) {
        if (!it->second.reserving && it->second.waiters.empty()) {
            it = entries_.erase(it);
            ++forgotten_;
        } else {
            ++it;
        }
    }
}

std::size_t SqnAllocator::rangesHeld() const {
    std::lock_guard lock(mutex_);
    return entries_.size();
}

std::uint64_t SqnAllocator::rangesForgotten() const {
    std::lock_guard lock(mutex_);
    return forgotten_;
}

void SqnAllocator::startReservation(const std::string& imsi, Entry& e, Delivery& failed) {
    const std::uint64_t epoch = e.epoch;
    const std::uint32_t batch = options_.batchSize;
    const std::uint32_t ind = options_.ind;
    auto slot = std::make_shared<Range>();
    // The job runs inside the writer's BEGIN IMMEDIATE transaction, so the read and the update
    // of seq_he cannot interleave with another process's reservation.
    GroupCommitWriter::Job job = [imsi, batch, ind, slot](Connection& c) -> Result<void> {
        auto row = readSeq(c, imsi);
        if (!row)
            return makeError(std::move(row.error()));
        if (row->indBits > kMaxIndBits || ind >= (std::uint32_t{1} << row->indBits)) {
            return makeError(indError(ind, row->indBits, imsi));
        }
        const std::uint64_t max = maxSeq(row->indBits);
        if (row->seqHe >= max) {
            return makeError(StoreErrc::sqn_exhausted,
                             "SEQ of subscriber " + imsi + " has reached its maximum");
        }
        const std::uint64_t n = std::min<std::uint64_t>(batch, max - row->seqHe);
        const std::uint64_t last = row->seqHe + n;
        if (auto w = writeSeq(c, imsi, last, "reserve"); !w)
            return w;
        *slot = Range{row->seqHe + 1, last + 1, row->indBits};
        return {};
    };
    GroupCommitWriter::Completion done = [this, imsi, epoch, slot](Result<void> r) {
        if (!r) {
            onReserved(imsi, epoch, makeError(std::move(r.error())));
        } else {
            onReserved(imsi, epoch, *slot);
        }
    };
    if (writer_.trySubmit(std::move(job), std::move(done))) {
        e.reserving = true;
        return;
    }
    for (auto& w : e.waiters)
        failed.emplace_back(std::move(w), makeError(StoreErrc::closed, "the store is closing"));
    std::vector<Callback>().swap(e.waiters);
}

void SqnAllocator::onReserved(const std::string& imsi, std::uint64_t epoch, Result<Range> r) {
    Delivery d;
    {
        std::lock_guard lock(mutex_);
        auto it = entries_.find(imsi);
        if (it == entries_.end())
            return;  // cannot happen: entries with waiters are kept
        Entry& e = it->second;
        e.reserving = false;
        if (!r) {
            for (auto& w : e.waiters)
                d.emplace_back(std::move(w), makeError(r.error()));
            std::vector<Callback>().swap(e.waiters);
        } else if (epoch != e.epoch) {
            // SEQ_HE was set or resynchronised after this reservation was queued: the range may
            // lie above the new SEQ_HE, so it is dropped and the waiters get a fresh one.
            if (!e.waiters.empty())
                startReservation(imsi, e, d);
        } else {
            ++reservations_;
            e.next = r->first;
            e.end = r->end;
            e.indBits = r->indBits;
            std::size_t served = 0;
            while (served < e.waiters.size() && e.next < e.end)
                d.emplace_back(std::move(e.waiters[served++]), grantFrom(e));
            e.waiters.erase(e.waiters.begin(),
                            e.waiters.begin() + static_cast<std::ptrdiff_t>(served));
            if (e.waiters.empty())
                std::vector<Callback>().swap(e.waiters);  // an idle entry holds no heap block
            if (!e.waiters.empty())
                startReservation(imsi, e, d);
        }
    }
    deliver(d);
}

void SqnAllocator::invalidateLocked(const std::string& imsi) {
    auto it = entries_.find(imsi);
    if (it == entries_.end())
        return;
    Entry& e = it->second;
    ++e.epoch;
    e.next = e.end = 0;
    if (!e.reserving && e.waiters.empty())
        entries_.erase(it);
}

void SqnAllocator::submitChange(const std::string& imsi, GroupCommitWriter::Job job,
                                GroupCommitWriter::Completion done) {
    // Invalidate and queue under one lock: a reservation queued before this change carries the
    // old epoch and is dropped; one queued after it reads the new SEQ_HE.
    {
        std::lock_guard lock(mutex_);
        invalidateLocked(imsi);
        if (writer_.trySubmit(std::move(job), std::move(done)))
            return;
    }
    done(makeError(StoreErrc::closed, "the store is closing; the SQN was not changed"));
}

void SqnAllocator::forget(std::string_view imsi) {
    std::lock_guard lock(mutex_);
    invalidateLocked(std::string(imsi));
}

void SqnAllocator::resync(std::string imsi, const crypto::Sqn& sqnMs,
                          std::function<void(Result<void>)> done) {
    if (refusal_) {
        done(makeError(*refusal_));
        return;
    }
    if (auto r = checkImsi(imsi); !r) {
        done(makeError(std::move(r.error())));
        return;
    }
    const std::uint64_t value = sqnFromBytes(sqnMs);
    submitChange(
        imsi,
        [imsi, value](Connection& c) -> Result<void> {
            auto row = readSeq(c, imsi);
            if (!row)
                return makeError(std::move(row.error()));
            return writeSeq(c, imsi, seqOf(value, row->indBits), "resync");
        },
        std::move(done));
}

Result<void> SqnAllocator::resync(std::string_view imsi, const crypto::Sqn& sqnMs) {
    if (writer_.onWriterThread()) {
        return makeError(StoreErrc::internal, "blocking SQN resync from a store completion");
    }
    std::promise<Result<void>> p;
    auto f = p.get_future();
    resync(std::string(imsi), sqnMs, [&p](Result<void> r) { p.set_value(std::move(r)); });
    return f.get();
}

Result<void> SqnAllocator::setSeqHe(std::string_view imsiView, std::uint64_t seqHe) {
    if (refusal_)
        return makeError(*refusal_);
    if (auto r = checkImsi(imsiView); !r)
        return r;
    if (writer_.onWriterThread()) {
        return makeError(StoreErrc::internal, "blocking SQN set from a store completion");
    }
    std::string imsi(imsiView);
    std::promise<Result<void>> p;
    auto f = p.get_future();
    submitChange(
        imsi,
        [imsi, seqHe](Connection& c) -> Result<void> {
            auto row = readSeq(c, imsi);
            if (!row)
                return makeError(std::move(row.error()));
            if (seqHe > maxSeq(row->indBits)) {
                return makeError(StoreErrc::invalid_argument,
                                 "SEQ " + std::to_string(seqHe) + " exceeds the maximum " +
                                     std::to_string(maxSeq(row->indBits)) + " for " +
                                     std::to_string(row->indBits) + " IND bits");
            }
            return writeSeq(c, imsi, seqHe, "set");
        },
        [&p](Result<void> r) { p.set_value(std::move(r)); });
    return f.get();
}

}  // namespace best::store
