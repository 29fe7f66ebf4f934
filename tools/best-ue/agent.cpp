#include "agent.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <future>

#include "common/hex.h"
#include "common/log.h"
#include "sim/sim_error.h"
#include "sim/usim.h"
#include "sim/vusim/state_file.h"

namespace best::ueagent {
namespace {

constexpr char kLog[] = "best-ue";
constexpr std::size_t kMaxQueuedDownlink = 256;

std::string hex32(std::uint32_t v) {
    char b[16];
    std::snprintf(b, sizeof b, "0x%08x", v);
    return b;
}

std::string serviceName(emsdp::Service s) {
    switch (s) {
        case emsdp::Service::kaOnly:
            return "key agreement only";
        case emsdp::Service::upIntegrity:
            return "UP integrity";
        case emsdp::Service::upConfidentiality:
            return "UP confidentiality";
    }
    return "?";
}

std::string terminationName(emsdp::UpTermination t) {
    switch (t) {
        case emsdp::UpTermination::none:
            return "none";
        case emsdp::UpTermination::hse:
            return "HSE";
        case emsdp::UpTermination::eas:
            return "EAS";
    }
    return "?";
}

std::string originName(emsdp::RefreshOrigin o) {
    switch (o) {
        case emsdp::RefreshOrigin::ue:
            return "UE";
        case emsdp::RefreshOrigin::hse:
            return "HSE";
        case emsdp::RefreshOrigin::eas:
            return "EAS";
    }
    return "?";
}

std::string refreshFailureName(ue::RefreshFailure f) {
    switch (f) {
        case ue::RefreshFailure::akaMacFailure:
            return "USIM MAC failure";
        case ue::RefreshFailure::syncFailure:
            return "USIM sync failure (AUTS sent, the HSE resynchronises)";
        case ue::RefreshFailure::rejected:
            return "rejected by the HSE";
        case ue::RefreshFailure::noAnswer:
            return "no answer from the HSE";
        case ue::RefreshFailure::mismatch:
            return "the HSE's parameters do not match the key set";
        case ue::RefreshFailure::abandoned:
            return "abandoned";
        case ue::RefreshFailure::usim:
            return "USIM error";
        case ue::RefreshFailure::internal:
            return "internal error";
    }
    return "?";
}

std::string printable(ByteView b) {
    std::string s;
    for (auto c : b)
        s += (c >= 0x20 && c < 0x7f) ? static_cast<char>(c) : '.';
    return s;
}

// ue::Usim over a card behind pcscd. Opened on first use and again after the card or pcscd went
// away; every call runs on the agent's worker thread.
class PcscUsim final : public ue::Usim {
public:
    explicit PcscUsim(sim::SessionOptions o) : options_(std::move(o)) {}

    Result<void> ensureOpen() {
        if (session_)
            return {};
        auto s = sim::UsimSession::open(options_);
        if (!s)
            return makeError(s.error());
        session_ = std::move(*s);
        return {};
    }
    std::string reader() const { return session_ ? session_->card().reader() : std::string(); }

    Result<std::string> imsi() override {
        if (auto o = ensureOpen(); !o)
            return makeError(o.error());
        auto r = session_->readImsi();
        if (!r)
            forgetOnLoss(r.error());
        return r;
    }

    Result<ue::AkaOutcome> authenticate(const crypto::Rand& rand,
                                        const crypto::Autn& autn) override {
        if (auto o = ensureOpen(); !o)
            return makeError(o.error());
        auto r = session_->authenticate(rand, autn);
        if (!r && forgetOnLoss(r.error())) {
            // pcscd restarted or the card came back: open again and repeat once. Should the card
            // have taken the first one, the repeat is a stale SQN and ends in a resync.
            log::notice("best-ue", "USIM lost (" + r.error().message + "); opening it again");
            if (auto o = ensureOpen(); !o)
                return makeError(o.error());
            r = session_->authenticate(rand, autn);
            if (!r)
                forgetOnLoss(r.error());
        }
        if (!r)
            return makeError(r.error());
        if (auto* s = std::get_if<sim::AuthSuccess>(&*r))
            return ue::AkaOutcome{ue::AkaSuccess{std::move(s->res), s->ck, s->ik}};
        if (auto* f = std::get_if<sim::AuthSyncFailure>(&*r))
            return ue::AkaOutcome{ue::AkaSyncFailure{f->auts}};
        return ue::AkaOutcome{ue::AkaMacFailure{}};
    }

private:
    // Drops the session after pcscd or the card went away; true then.
    bool forgetOnLoss(const Error& e) {
        if (e.domain == ErrorDomain::sim &&
            (e.code == static_cast<int>(sim::SimErrc::no_service) ||
             e.code == static_cast<int>(sim::SimErrc::card_removed) ||
             e.code == static_cast<int>(sim::SimErrc::no_card))) {
            session_.reset();
            return true;
        }
        return false;
    }

    sim::SessionOptions options_;
    std::unique_ptr<sim::UsimSession> session_;
};

// The software USIM of src/ue with its SEQ_MS array in best-vusim's two-slot state file, written
// (pwrite + fdatasync) before a success is returned.
class SoftwareUsim final : public ue::Usim {
public:
    SoftwareUsim(std::unique_ptr<sim::vusim::SqnStateFile> file, const SubscriberK& k,
                 const Opc& opc, std::string imsi)
        : file_(std::move(file)),
          usim_(k, opc, std::move(imsi), file_->loaded(),
                [f = file_.get()](const ue::SqnArray& a) { return f->persist(a); }) {}
    Result<std::string> imsi() override { return usim_.imsi(); }
    Result<ue::AkaOutcome> authenticate(const crypto::Rand& rand,
                                        const crypto::Autn& autn) override {
        return usim_.authenticate(rand, autn);
    }

private:
    std::unique_ptr<sim::vusim::SqnStateFile> file_;
    ue::SoftUsim usim_;
};

}  // namespace

bool usimUnreachable(const Error& e) {
    if (e.domain != ErrorDomain::sim)
        return false;
    switch (static_cast<sim::SimErrc>(e.code)) {
        case sim::SimErrc::no_service:
        case sim::SimErrc::no_reader:
        case sim::SimErrc::no_card:
        case sim::SimErrc::card_removed:
        case sim::SimErrc::timeout:
            return true;
        default:
            return false;
    }
}

std::string describeSession(const ue::SessionInfo& s) {
    std::string t = "session " + hex32(s.sessionId) + ": " +
                    (s.resumed ? "resumed key set" : "full establishment") + ", " +
                    keyAgreementName(s.keyAgreement) + ", key set KID " + std::to_string(s.kid) +
                    ", " + serviceName(s.service);
    if (s.service != emsdp::Service::kaOnly)
        t += ", user plane terminated by the " + terminationName(s.termination);
    if (s.keySetLifetime)
        t += ", key set lifetime " + std::to_string(s.keySetLifetime) + " s";
    return t;
}

std::optional<std::string> describeEvent(const ue::Event& ev) {
    return std::visit(
        [](const auto& e) -> std::optional<std::string> {
            using T = std::decay_t<decltype(e)>;
            if constexpr (std::is_same_v<T, ue::SessionEstablished>) {
                return "established " + describeSession(e.info);
            } else if constexpr (std::is_same_v<T, ue::EasKeyAvailable>) {
                return "EAS key identifier for key set KID " + std::to_string(e.kid) + ": " +
                       toHex(ByteView(e.easKeyId.data(), e.easKeyId.size())) +
                       (e.easPsk ? " (KInt_EAS_PSK handed to the application)" : "");
            } else if constexpr (std::is_same_v<T, ue::KeySetStored>) {
                return "key set KID " + std::to_string(e.kid) + " stored as " +
                       (e.role == ue::KeySetRole::current ? "current" : "pending");
            } else if constexpr (std::is_same_v<T, ue::DownlinkReceived>) {
                return "downlink " + std::to_string(e.payload.size()) + " octets (count " +
                       std::to_string(e.count) + "): \"" + printable(e.payload) + "\"";
            } else if constexpr (std::is_same_v<T, ue::SessionLost>) {
                return "session " + hex32(e.sessionId) +
                       " lost (no answer from the HSE); establishing again";
            } else if constexpr (std::is_same_v<T, ue::SessionTerminated>) {
                std::string t = "session " + hex32(e.sessionId) + " terminated by the " +
                                (e.initiator == ue::Party::ue ? "UE" : "HSE");
                if (e.cause)
                    t += ", cause " + std::string(emsdp::causeName(*e.cause));
                if (e.initiator == ue::Party::ue)
                    t += e.answered ? " (answered)" : " (no answer within 5 s)";
                return t;
            } else if constexpr (std::is_same_v<T, ue::AttemptEnded>) {
                std::string t =
                    std::string(e.resumption ? "resumption" : "establishment") + " failed: ";
                switch (e.reason) {
                    case ue::AttemptEnd::rejected:
                        t += "rejected by the HSE";
                        break;
                    case ue::AttemptEnd::noAnswer:
                        t += "no answer from the HSE";
                        break;
                    case ue::AttemptEnd::akaMacFailure:
                        t += "USIM MAC failure: the network was not authenticated (the USIM "
                             "holds another K, or the HSE is not the subscriber's)";
                        break;
                    case ue::AttemptEnd::cancelled:
                        t += "cancelled";
                        break;
                }
                if (e.cause)
                    t += ", cause " + std::string(emsdp::causeName(*e.cause));
                if (e.backOff)
                    t += ", back off " + std::to_string(*e.backOff) + " s";
                return t;
            } else if constexpr (std::is_same_v<T, ue::FallbackToFull>) {
                return "key set KID " + std::to_string(e.refusedKid) +
                       " refused by the HSE; full establishment";
            } else if constexpr (std::is_same_v<T, ue::SyncFailureReported>) {
                return "USIM sync failure: AUTS sent to the HSE for resynchronisation";
            } else if constexpr (std::is_same_v<T, ue::PeerRejected>) {
                return "the HSE rejected a message: " + std::string(emsdp::causeName(e.cause));
            } else if constexpr (std::is_same_v<T, ue::Dropped>) {
                return std::nullopt;
            } else if constexpr (std::is_same_v<T, ue::UsimFailed>) {
                return "USIM failed: " + e.error.message;
            } else if constexpr (std::is_same_v<T, ue::PersistFailed>) {
                return "saving the state file failed: " + e.error.message;
            } else if constexpr (std::is_same_v<T, ue::StartFailed>) {
                return "could not start an establishment: " + e.error.message;
            } else if constexpr (std::is_same_v<T, ue::RefreshCompleted>) {
                return "key refresh (origin " + originName(e.origin) + ") done: key set KID " +
                       std::to_string(e.newKid) + " is pending, used by the next session";
            } else if constexpr (std::is_same_v<T, ue::RefreshFailed>) {
                std::string t = "key refresh (origin " + originName(e.origin) +
                                ") failed: " + refreshFailureName(e.reason);
                if (e.cause)
                    t += ", cause " + std::string(emsdp::causeName(*e.cause));
                return t;
            } else {
                return std::nullopt;
            }
        },
        ev);
}

Result<std::unique_ptr<ue::Usim>> openUsim(const AgentConfig& cfg, std::string& description) {
    if (cfg.usim.source == UsimSource::software) {
        auto f = sim::vusim::SqnStateFile::open(cfg.usim.sqnStateFile, ue::SqnArray());
        if (!f)
            return makeError(f.error());
        description = "software USIM (SQN state " + cfg.usim.sqnStateFile + ")";
        auto file = std::make_unique<sim::vusim::SqnStateFile>(std::move(*f));
        return std::unique_ptr<ue::Usim>(
            new SoftwareUsim(std::move(file), cfg.usim.k, cfg.usim.opc, *cfg.imsi));
    }
    sim::SessionOptions o;
    o.reader.namePattern = cfg.usim.reader;
    o.reader.iccid = cfg.usim.iccid;
    o.cardTimeout = cfg.usim.cardTimeout;
    if (cfg.usim.pinFile) {
        auto pin = sim::readPinFile(*cfg.usim.pinFile);
        if (!pin)
            return makeError(pin.error());
        o.pin = std::move(*pin);
    }
    auto u = std::make_unique<PcscUsim>(std::move(o));
    if (auto r = u->ensureOpen(); !r)
        return makeError(r.error());
    description = "USIM in PC/SC reader '" + u->reader() + "'";
    return std::unique_ptr<ue::Usim>(std::move(u));
}

struct Agent::Waiter {
    enum class Kind { recv, establish, refresh, terminate } kind;
    net::StreamConnection* conn = nullptr;
    std::chrono::steady_clock::time_point deadline;
    std::uint64_t timeoutMs = 0;
};

Agent::Agent(AgentConfig cfg, net::Loop& loop) : cfg_(std::move(cfg)), loop_(loop) {}

Agent::~Agent() {
    {
        std::lock_guard<std::mutex> l(cardMutex_);
        stopWatcher_ = true;
        if (watchClient_ != nullptr)
            watchClient_->cancel();
    }
    cardCv_.notify_all();
    if (watcher_.joinable())
        watcher_.join();
    {
        std::lock_guard<std::mutex> l(mutex_);
        stopWorker_ = true;
        jobs_.clear();  // AUTHENTICATEs nobody will use; the one running is waited for
    }
    cv_.notify_all();
    if (worker_.joinable())
        worker_.join();
}

Result<std::unique_ptr<Agent>> Agent::create(AgentConfig cfg, net::Loop& loop) {
    std::unique_ptr<Agent> a(new Agent(std::move(cfg), loop));
    a->wake_ = loop.make<net::Async>([p = a.get()] { p->drainInbox(); });
    a->worker_ = std::thread([p = a.get()] { p->workerMain(); });

    // The USIM is opened (and EF.IMSI read) on the worker too: PC/SC may wait for a card.
    std::promise<Result<void>> opened;
    auto done = opened.get_future();
    a->post([p = a.get(), &opened]() -> std::function<void()> {
        auto u = openUsim(p->cfg_, p->usimDescription_);
        if (!u) {
            opened.set_value(makeError(u.error()));
            return {};
        }
        p->usim_ = std::move(*u);
        if (p->cfg_.imsi) {
            p->imsi_ = *p->cfg_.imsi;
            // A card with another subscriber would spend its SQNs on AKA that can never match.
            if (p->cfg_.usim.source == UsimSource::pcsc) {
                auto i = p->usim_->imsi();
                if (!i)
                    log::warning(kLog, "cannot read EF.IMSI to compare with the configured IMSI: " +
                                           i.error().message);
                else if (*i != p->imsi_) {
                    opened.set_value(makeError(
                        AgentErrc::usim,
                        "the card holds IMSI " + *i + ", the configuration says " + p->imsi_));
                    return {};
                }
            }
        } else {
            auto i = p->usim_->imsi();
            if (!i) {
                opened.set_value(makeError(i.error()));
                return {};
            }
            p->imsi_ = *i;
        }
        opened.set_value(Result<void>{});
        return {};
    });
    if (auto r = done.get(); !r)
        return makeError(r.error());
    if (a->cfg_.imsi && a->cfg_.usim.source == UsimSource::pcsc)
        log::info(kLog, "IMSI " + a->imsi_ + " from the configuration");
    if (a->cfg_.usim.source == UsimSource::pcsc)
        a->watcher_ = std::thread([p = a.get()] { p->watchCard(); });
    else
        a->cardText_ = "none (software USIM)";

    // One agent per state file: a second one would reuse nonces and key sets under the first.
    const std::string lockPath = a->cfg_.stateFile + ".lock";
    a->lock_.reset(::open(lockPath.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
    if (!a->lock_.isValid())
        return makeError(AgentErrc::state, "open " + lockPath + ": " + std::strerror(errno));
    if (::flock(a->lock_.get(), LOCK_EX | LOCK_NB) != 0)
        return makeError(AgentErrc::state,
                         "state file " + a->cfg_.stateFile + " is in use by another best-ue");
    a->store_ = std::make_unique<ue::FileStateStore>(a->cfg_.stateFile);
    auto state = a->store_->load();
    if (!state)
        return makeError(state.error());

    auto settings = std::make_shared<ue::UeSettings>();
    settings->easId = a->cfg_.easId;
    settings->hseId = a->cfg_.hseId;
    std::uint8_t kas = 0;
    for (auto ka : a->cfg_.keyAgreements)
        kas |= static_cast<std::uint8_t>(1u << (static_cast<unsigned>(ka) - 1));
    std::uint8_t flags = 0;
    if (a->cfg_.confidentiality)
        flags |= emsdp::UeConfiguration::kFlagConfidentiality;
    if (a->cfg_.keySetsStorable)
        flags |= emsdp::UeConfiguration::kFlagKeySetsStorable;
    settings->capabilities = emsdp::UeConfiguration{17, kas, flags, 0x04, 0x04};
    settings->servingNetwork = a->cfg_.servingNetwork;
    auto engine = ue::UeEngine::create(settings, a->imsi_, std::move(*state), {a->store_.get()});
    if (!engine)
        return makeError(AgentErrc::state,
                         "state file " + a->cfg_.stateFile + ": " + engine.error().message);
    a->engine_.emplace(std::move(*engine));

    auto hse = net::SocketAddress::parse(a->cfg_.hseAddress, a->cfg_.hsePort);
    if (!hse)
        return makeError(AgentErrc::config, "hse.address: " + hse.error().message);
    a->hse_ = *hse;
    a->udp_ = loop.make<net::UdpSocket>();
    auto any =
        net::SocketAddress::parse(a->hse_.storage.ss_family == AF_INET6 ? "::" : "0.0.0.0", 0);
    if (auto b = a->udp_->bind(*any); !b)
        return makeError(b.error());
    if (auto r = a->udp_->startReceive(
            [p = a.get()](ByteView d, const sockaddr* from) { p->onDatagram(d, from); });
        !r)
        return makeError(r.error());
    a->timer_ = loop.make<net::Timer>();
    a->ticker_ = loop.make<net::Timer>();
    a->ticker_->start(100, 100, [p = a.get()] { p->tick(); });
    return a;
}

void Agent::workerMain() {
    for (;;) {
        std::function<std::function<void()>()> job;
        {
            std::unique_lock<std::mutex> l(mutex_);
            cv_.wait(l, [this] { return stopWorker_ || !jobs_.empty(); });
            if (jobs_.empty())
                return;
            job = std::move(jobs_.front());
            jobs_.pop_front();
        }
        auto cont = job();
        if (cont) {
            {
                std::lock_guard<std::mutex> l(mutex_);
                inbox_.push_back(std::move(cont));
            }
            wake_->send();
        }
    }
}

void Agent::post(std::function<std::function<void()>()> job) {
    {
        std::lock_guard<std::mutex> l(mutex_);
        jobs_.push_back(std::move(job));
    }
    cv_.notify_one();
}

void Agent::drainInbox() {
    std::deque<std::function<void()>> work;
    {
        std::lock_guard<std::mutex> l(mutex_);
        work.swap(inbox_);
    }
    for (auto& f : work)
        f();
}

void Agent::armTimer() {
    auto d = engine_->nextDeadline();
    if (!d) {
        timer_->stop();
        return;
    }
    auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(*d - std::chrono::steady_clock::now())
            .count();
    timer_->start(ms > 0 ? static_cast<std::uint64_t>(ms) : 0, 0, [this] {
        engine_->onTimer(ue::UeTime::now(), out_);
        flush();
    });
}

std::optional<Agent::Downlink> Agent::takeDownlink() {
    if (downlinks_.empty())
        return std::nullopt;
    Downlink d = std::move(downlinks_.front());
    downlinks_.pop_front();
    return d;
}

void Agent::flush() {
    while (!out_.datagrams.empty() || !out_.events.empty() || !out_.akaRequests.empty()) {
        ue::Output o = std::move(out_);
        out_.clear();
        for (const auto& d : o.datagrams)
            if (auto s = udp_->send(hse_.get(), d); !s)
                log::warning(kLog, "send to the HSE: " + s.error().message);
        for (const auto& r : o.akaRequests) {
            ue::AkaRequest req = r;
            post([this, req]() -> std::function<void()> {
                auto res = usim_->authenticate(req.rand, req.autn);
                return [this, req, res]() {
                    if (!res && usimUnreachable(res.error()))
                        usimUnavailable_ = res.error().message;
                    else
                        usimUnavailable_.reset();
                    engine_->onAkaResult(req.ticket, res, ue::UeTime::now(), out_);
                    flush();
                };
            });
        }
        for (const auto& ev : o.events) {
            const std::string text = eventText(ev);
            const bool noUsim = endedForUsim(ev);
            if (!text.empty())
                log::notice(kLog, text);
            else if (auto* d = std::get_if<ue::Dropped>(&ev))
                log::debug(kLog,
                           "dropped a datagram: " + std::string(emsdp::dropReasonName(d->reason)));
            if (auto* d = std::get_if<ue::DownlinkReceived>(&ev)) {
                ++downlinkReceived_;
                downlinks_.push_back({d->payload, d->count});
                if (downlinks_.size() > kMaxQueuedDownlink)
                    downlinks_.pop_front();
            }
            if (std::holds_alternative<ue::SessionEstablished>(ev) ||
                std::holds_alternative<ue::AttemptEnded>(ev) ||
                std::holds_alternative<ue::SessionTerminated>(ev) ||
                std::holds_alternative<ue::RefreshCompleted>(ev) ||
                std::holds_alternative<ue::RefreshFailed>(ev) ||
                std::holds_alternative<ue::SessionLost>(ev) ||
                std::holds_alternative<ue::UsimFailed>(ev))
                lastOutcome_ = text;
            // A full establishment whose AUTHENTICATE found no card (after the one reopen) ends
            // here rather than resending for 44 s: the caller learns at once (decision 98).
            if (std::holds_alternative<ue::UsimFailed>(ev) && usimUnavailable_ &&
                engine_->phase() == ue::Phase::establishing) {
                cancelledForUsim_ = true;
                engine_->cancel(out_);
            }
            // Waiting control clients.
            for (auto it = waiters_.begin(); it != waiters_.end();) {
                Waiter& w = **it;
                std::optional<std::string> reply;
                using K = Waiter::Kind;
                if (w.kind == K::recv && std::holds_alternative<ue::DownlinkReceived>(ev)) {
                    if (auto d = takeDownlink())
                        reply = "ok " + std::to_string(d->count) + " " + toHex(d->payload);
                } else if (w.kind == K::establish) {
                    if (auto* e = std::get_if<ue::SessionEstablished>(&ev))
                        reply = "ok " + describeSession(e->info);
                    else if (std::holds_alternative<ue::AttemptEnded>(ev))
                        reply = (noUsim ? "unavailable " : "error ") + text;
                } else if (w.kind == K::refresh) {
                    if (auto* e = std::get_if<ue::RefreshCompleted>(&ev);
                        e && e->origin == emsdp::RefreshOrigin::ue)
                        reply = "ok " + text;
                    else if (auto* f = std::get_if<ue::RefreshFailed>(&ev);
                             f && f->origin == emsdp::RefreshOrigin::ue)
                        reply = (noUsim ? "unavailable " : "error ") + text;
                } else if (w.kind == K::terminate &&
                           std::holds_alternative<ue::SessionTerminated>(ev)) {
                    reply = "ok " + text;
                }
                if (reply) {
                    w.conn->setOnClosed({});
                    w.conn->write(*reply + "\n");
                    w.conn->closeAfterWrites();
                    it = waiters_.erase(it);
                } else {
                    ++it;
                }
            }
            if (std::holds_alternative<ue::AttemptEnded>(ev))
                cancelledForUsim_ = false;
            if (observer)
                observer(ev);
        }
    }
    armTimer();
}

bool Agent::endedForUsim(const ue::Event& ev) const {
    if (!usimUnavailable_)
        return false;
    if (auto* a = std::get_if<ue::AttemptEnded>(&ev))
        return a->reason == ue::AttemptEnd::cancelled && cancelledForUsim_;
    if (auto* f = std::get_if<ue::RefreshFailed>(&ev))
        return f->reason == ue::RefreshFailure::usim;
    return false;
}

std::string Agent::eventText(const ue::Event& ev) const {
    if (endedForUsim(ev) && std::holds_alternative<ue::AttemptEnded>(ev))
        return "establishment failed: USIM unavailable: " + *usimUnavailable_ +
               "; a full establishment needs the card";
    if (auto* f = std::get_if<ue::RefreshFailed>(&ev); f && endedForUsim(ev))
        return "key refresh (origin " + originName(f->origin) +
               ") failed: USIM unavailable: " + *usimUnavailable_;
    if (auto* u = std::get_if<ue::UsimFailed>(&ev); u && usimUnreachable(u->error))
        return "USIM unavailable: " + u->error.message;
    return describeEvent(ev).value_or("");
}

// ---- card watcher (PC/SC) --------------------------------------------------------------------

void Agent::setCard(bool missing, const std::string& text) {
    {
        std::lock_guard<std::mutex> l(cardMutex_);
        if (text == cardText_)
            return;
        cardMissing_ = missing;
        cardText_ = text;
    }
    log::notice(kLog, "card: " + text);
}

std::string Agent::cardText() const {
    std::lock_guard<std::mutex> l(cardMutex_);
    return cardText_;
}

bool Agent::cardMissing() const {
    std::lock_guard<std::mutex> l(cardMutex_);
    return cardMissing_;
}

void Agent::watchCard() {
    using namespace std::chrono_literals;
    const std::string pattern = cfg_.usim.reader;
    std::optional<sim::PcscClient> client;
    std::chrono::milliseconds slice = 1000ms;
    auto stopped = [this] {
        std::lock_guard<std::mutex> l(cardMutex_);
        return stopWatcher_;
    };
    auto pause = [this] {
        std::unique_lock<std::mutex> l(cardMutex_);
        cardCv_.wait_for(l, 500ms, [this] { return stopWatcher_; });
    };
    auto drop = [&] {
        std::lock_guard<std::mutex> l(cardMutex_);
        watchClient_ = nullptr;
        client.reset();
    };
    while (!stopped()) {
        if (!client) {
            auto c = sim::PcscClient::open();
            if (!c) {
                setCard(false, "reader unavailable (" + c.error().message + ")");
                pause();
                continue;
            }
            std::lock_guard<std::mutex> l(cardMutex_);
            if (stopWatcher_)
                return;
            client.emplace(std::move(*c));
            watchClient_ = &*client;
        }
        auto names = client->matchingReaders(pattern);
        if (!names) {
            setCard(false, "reader unavailable (" + names.error().message + ")");
            drop();
            pause();
            continue;
        }
        if (names->empty()) {
            setCard(false, "reader unavailable (no reader matching '" + pattern + "')");
            pause();
            continue;
        }
        auto r = client->waitForCard(pattern, slice);
        slice = 1000ms;
        if (!r) {
            const auto code = static_cast<sim::SimErrc>(r.error().code);
            if (r.error().domain == ErrorDomain::sim && code == sim::SimErrc::no_card) {
                setCard(true, "absent (no card in reader '" + names->front() + "')");
            } else if (r.error().domain == ErrorDomain::sim && code == sim::SimErrc::timeout) {
                // cancelled: the loop checks for the stop
            } else {
                setCard(false, "reader unavailable (" + r.error().message + ")");
                drop();
                pause();
            }
            continue;
        }
        setCard(false, "present in reader '" + *r + "'");
        for (;;) {
            auto g = client->waitForRemoval(*r, 1000ms);
            if (stopped())
                return;
            if (g) {  // gone, or the reader went away: ask pcscd again at once
                slice = 0ms;
                break;
            }
            if (g.error().domain == ErrorDomain::sim &&
                g.error().code == static_cast<int>(sim::SimErrc::timeout))
                continue;
            drop();  // pcscd went away (or restarted): a new context
            break;
        }
    }
}

void Agent::onDatagram(ByteView data, const sockaddr* from) {
    const bool fromHse = net::SocketAddress::from(from).toString() == hse_.toString();
    engine_->handleDatagram(data, fromHse ? ue::Source::hse : ue::Source::other, ue::UeTime::now(),
                            out_);
    flush();
}

Result<void> Agent::establish() {
    auto r = engine_->start(ue::UeTime::now(), out_);
    flush();
    return r;
}

Result<void> Agent::sendUplink(ByteView payload) {
    auto r = engine_->sendUplink(payload, ue::UeTime::now(), out_);
    if (r)
        ++uplinkSent_;
    flush();
    return r;
}

Result<void> Agent::refresh() {
    auto r = engine_->requestKeyRefresh(ue::UeTime::now(), out_);
    flush();
    return r;
}

Result<void> Agent::terminate() {
    auto r = engine_->terminate(ue::UeTime::now(), out_);
    flush();
    return r;
}

std::string Agent::statusText() const {
    std::string t;
    switch (engine_->phase()) {
        case ue::Phase::idle:
            t += "phase: idle\n";
            break;
        case ue::Phase::backingOff:
            t += "phase: backing off (0x0F)\n";
            break;
        case ue::Phase::establishing:
            t += "phase: establishing\n";
            break;
        case ue::Phase::established:
            t += "phase: established\n";
            break;
        case ue::Phase::terminating:
            t += "phase: terminating\n";
            break;
    }
    if (auto s = engine_->session())
        t += describeSession(*s) + "\n";
    const auto& st = engine_->state();
    t += "current key set: " +
         (st.current ? "KID " + std::to_string(st.current->kid) + ", " +
                           keyAgreementName(st.current->keyAgreement)
                     : std::string("none")) +
         "\n";
    t += "pending key set: " +
         (st.pending ? "KID " + std::to_string(st.pending->kid) : std::string("none")) + "\n";
    t += "imsi: " + imsi_ + "\n";
    t += "usim: " + usimDescription_ + "\n";
    t += "card: " + cardText() + "\n";
    t += "hse: " + hse_.toString() + ", EAS " + cfg_.easId + "\n";
    t += "uplink sent: " + std::to_string(uplinkSent_) +
         ", downlink received: " + std::to_string(downlinkReceived_) + " (" +
         std::to_string(downlinks_.size()) + " waiting for recv)\n";
    if (!lastOutcome_.empty())
        t += "last: " + lastOutcome_ + "\n";
    return t;
}

Result<void> Agent::listenControl() {
    // listenUnix removes a stale file: make sure no live agent answers there first.
    {
        UniqueFd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
        sockaddr_un sa{};
        sa.sun_family = AF_UNIX;
        if (cfg_.controlSocket.size() >= sizeof sa.sun_path)
            return makeError(AgentErrc::control,
                             "control socket path too long: " + cfg_.controlSocket);
        std::memcpy(sa.sun_path, cfg_.controlSocket.c_str(), cfg_.controlSocket.size() + 1);
        if (probe.isValid() &&
            ::connect(probe.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0)
            return makeError(AgentErrc::control,
                             "another best-ue answers on " + cfg_.controlSocket);
    }
    control_ = loop_.make<net::StreamServer>(true);
    const mode_t old = ::umask(077);
    auto r = control_->listenUnix(cfg_.controlSocket, [this](net::StreamConnection& c) {
        auto buffer = std::make_shared<std::string>();
        (void)c.startRead(
            [this, buffer](net::StreamConnection& conn, ByteView data) {
                buffer->append(reinterpret_cast<const char*>(data.data()), data.size());
                if (buffer->size() > 8192) {
                    conn.write("error request too long\n");
                    conn.closeAfterWrites();
                    return;
                }
                auto nl = buffer->find('\n');
                if (nl == std::string::npos)
                    return;
                std::string line = buffer->substr(0, nl);
                buffer->clear();
                conn.stopRead();
                onControl(conn, line);
            },
            [](net::StreamConnection&) {});
    });
    ::umask(old);
    if (!r)
        return makeError(AgentErrc::control,
                         "control socket " + cfg_.controlSocket + ": " + r.error().message);
    ::chmod(cfg_.controlSocket.c_str(), 0600);
    return {};
}

void Agent::onControl(net::StreamConnection& c, const std::string& line) {
    auto reply = [&c](const std::string& text) {
        c.write(text + "\n");
        c.closeAfterWrites();
    };
    auto sp = line.find(' ');
    const std::string cmd = line.substr(0, sp);
    const std::string arg = sp == std::string::npos ? "" : line.substr(sp + 1);
    auto wait = [&](Waiter::Kind kind) {
        std::uint64_t ms = 10000;
        if (!arg.empty())
            ms = std::strtoull(arg.c_str(), nullptr, 10);
        auto w = std::make_unique<Waiter>();
        w->kind = kind;
        w->conn = &c;
        w->timeoutMs = ms;
        w->deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
        Waiter* raw = w.get();
        c.setOnClosed([this, raw] {
            for (auto it = waiters_.begin(); it != waiters_.end(); ++it)
                if (it->get() == raw) {
                    waiters_.erase(it);
                    return;
                }
        });
        waiters_.push_back(std::move(w));
    };
    if (cmd == "status") {
        reply("ok\n" + statusText());
    } else if (cmd == "send") {
        auto payload = fromHex(arg, "payload");
        if (!payload)
            return reply("error " + payload.error().message);
        if (auto r = sendUplink(*payload); !r)
            return reply("error " + r.error().message);
        auto s = engine_->session();
        reply("ok sent " + std::to_string(payload->size()) + " octets uplink in session " +
              (s ? hex32(s->sessionId) : std::string("?")));
    } else if (cmd == "recv") {
        if (auto d = takeDownlink())
            return reply("ok " + std::to_string(d->count) + " " + toHex(d->payload));
        wait(Waiter::Kind::recv);
    } else if (cmd == "establish") {
        if (auto s = engine_->session(); s && engine_->phase() == ue::Phase::established)
            return reply("ok already " + describeSession(*s));
        if (engine_->phase() != ue::Phase::establishing)
            if (auto r = establish(); !r)
                return reply("error " + r.error().message);
        wait(Waiter::Kind::establish);
    } else if (cmd == "refresh") {
        // The USIM runs for every refresh: with pcscd reporting the reader empty, ask nothing of
        // the HSE (decision 99). "Reader unavailable" may be the watcher's own stale context
        // (pcscd restarted): AUTHENTICATE opens the card again and decides.
        if (cardMissing())
            return reply("unavailable key refresh needs the USIM: card " + cardText());
        if (auto r = refresh(); !r)
            return reply("error " + r.error().message);
        wait(Waiter::Kind::refresh);
    } else if (cmd == "terminate") {
        if (auto r = terminate(); !r)
            return reply("error " + r.error().message);
        wait(Waiter::Kind::terminate);
    } else {
        reply("error unknown command '" + cmd + "'");
    }
}

void Agent::tick() {
    const auto now = std::chrono::steady_clock::now();
    for (auto it = waiters_.begin(); it != waiters_.end();) {
        if (now >= (*it)->deadline) {
            (*it)->conn->setOnClosed({});
            (*it)->conn->write("timeout nothing within " + std::to_string((*it)->timeoutMs) +
                               " ms\n");
            (*it)->conn->closeAfterWrites();
            it = waiters_.erase(it);
        } else {
            ++it;
        }
    }
    if (stopping_) {
        const auto p = engine_->phase();
        if (p == ue::Phase::idle || now >= shutdownDeadline_) {
            ticker_->stop();
            timer_->stop();
            loop_.stop();
        }
    }
}

void Agent::shutdown(std::chrono::milliseconds grace) {
    if (stopping_)
        return;
    stopping_ = true;
    shutdownDeadline_ = std::chrono::steady_clock::now() + grace;
    const auto p = engine_->phase();
    if (p == ue::Phase::established)
        (void)terminate();
    else if (p == ue::Phase::establishing || p == ue::Phase::backingOff)
        engine_->cancel(out_), flush();
}

}  // namespace best::ueagent
