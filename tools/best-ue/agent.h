// The best-ue agent: one UE (src/ue engine) on a libuv loop, holding the UDP socket to the HSE and
// the live session, with its USIM (PC/SC or software) driven on a worker thread so that no card
// call ever blocks the loop. `best-ue run` adds the control socket; `best-ue session` drives the
// same agent through a script and exits.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/unique_fd.h"
#include "config.h"
#include "net/loop.h"
#include "ue/engine.h"
#include "ue/state_file.h"
#include "ue/usim.h"

namespace best::sim {
class PcscClient;
}

namespace best::ueagent {

// Errors that mean "the USIM cannot be reached" (no card, no matching reader, pcscd down, the
// card went away): a full establishment or refresh cannot run until it is back.
bool usimUnreachable(const Error& e);

// One readable line for an engine event (no key material); nullopt for events not worth a line.
std::optional<std::string> describeEvent(const ue::Event& e);
std::string describeSession(const ue::SessionInfo& s);

// The USIM of the configuration, opened on the calling thread (the worker).
Result<std::unique_ptr<ue::Usim>> openUsim(const AgentConfig& cfg, std::string& description);

class Agent {
public:
    // Opens the USIM (on the worker), reads the IMSI when the config has none, loads the state
    // file, creates the engine and binds the UDP socket. Runs nothing yet.
    static Result<std::unique_ptr<Agent>> create(AgentConfig cfg, net::Loop& loop);
    ~Agent();
    Agent(const Agent&) = delete;
    Agent& operator=(const Agent&) = delete;

    // Serves the control socket (best-ue run).
    Result<void> listenControl();

    // Operations (loop thread).
    Result<void> establish();
    Result<void> sendUplink(ByteView payload);
    Result<void> refresh();
    Result<void> terminate();
    // Terminates a live session (waiting at most `grace` for the answer), then stops the loop.
    void shutdown(std::chrono::milliseconds grace);
    std::string statusText() const;

    ue::Phase phase() const { return engine_->phase(); }
    std::optional<ue::SessionInfo> session() const { return engine_->session(); }
    const std::string& usimDescription() const { return usimDescription_; }
    const std::string& imsi() const { return imsi_; }
    // Why the last AUTHENTICATE could not reach the USIM; empty after one that did.
    const std::optional<std::string>& usimUnavailable() const { return usimUnavailable_; }
    // describeEvent(), naming an unreachable USIM where it ended an establishment or refresh.
    std::string eventText(const ue::Event& ev) const;
    // True when `ev` ended an establishment or refresh because the USIM could not be reached.
    bool endedForUsim(const ue::Event& ev) const;
    // The card as the watcher last saw it (PC/SC), e.g. "absent (no card in reader 'X')".
    std::string cardText() const;
    // True while pcscd reports the reader empty (not for "reader unavailable", never for the
    // software USIM).
    bool cardMissing() const;
    const AgentConfig& config() const { return cfg_; }

    // Every engine event, after the agent handled it (scripts).
    std::function<void(const ue::Event&)> observer;
    // Downlink payloads not yet taken by a `recv` (bounded; the oldest are dropped).
    struct Downlink {
        Bytes payload;
        std::uint32_t count = 0;
    };
    std::optional<Downlink> takeDownlink();

private:
    Agent(AgentConfig cfg, net::Loop& loop);
    void workerMain();
    void post(std::function<std::function<void()>()> job);
    void drainInbox();
    void flush();
    void armTimer();
    void onDatagram(ByteView data, const sockaddr* from);
    void onControl(net::StreamConnection& c, const std::string& line);
    void tick();
    void watchCard();
    void setCard(bool missing, const std::string& text);

    struct Waiter;

    AgentConfig cfg_;
    net::Loop& loop_;
    std::string imsi_;
    std::string usimDescription_;
    std::unique_ptr<ue::Usim> usim_;  // used on the worker thread only
    UniqueFd lock_;                   // flock on STATE_FILE.lock
    std::unique_ptr<ue::FileStateStore> store_;
    std::optional<ue::UeEngine> engine_;
    ue::Output out_;
    net::SocketAddress hse_;
    net::HandlePtr<net::UdpSocket> udp_;
    net::HandlePtr<net::Timer> timer_;
    net::HandlePtr<net::Timer> ticker_;
    net::HandlePtr<net::Async> wake_;
    net::HandlePtr<net::StreamServer> control_;

    std::thread worker_;
    std::mutex mutex_;
    std::condition_variable cv_;
    std::deque<std::function<std::function<void()>()>> jobs_;
    std::deque<std::function<void()>> inbox_;
    bool stopWorker_ = false;

    // Card watcher (PC/SC only): its own PC/SC context, SCardGetStatusChange, 1 s slices.
    std::thread watcher_;
    mutable std::mutex cardMutex_;
    std::condition_variable cardCv_;
    bool stopWatcher_ = false;
    sim::PcscClient* watchClient_ = nullptr;  // the watcher's, for cancel(); under cardMutex_
    bool cardMissing_ = false;
    std::string cardText_ = "not checked yet";
    std::optional<std::string> usimUnavailable_;
    bool cancelledForUsim_ = false;  // the agent ended a full establishment: no USIM

    std::deque<Downlink> downlinks_;
    std::vector<std::unique_ptr<Waiter>> waiters_;
    std::uint64_t uplinkSent_ = 0;
    std::uint64_t downlinkReceived_ = 0;
    std::string lastOutcome_;
    bool stopping_ = false;
    std::chrono::steady_clock::time_point shutdownDeadline_{};
};

}  // namespace best::ueagent
