// Drives one UeEngine in tests: a fake clock (UeTime advanced by hand), a scripted nonce source,
// a software USIM answering inline, and helpers to pick datagrams and events out of Output.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <deque>
#include <memory>
#include <ostream>
#include <vector>

#include "common/hex.h"
#include "emsdp/emsdp.h"
#include "ue/engine.h"

namespace best::emsdp {
inline void PrintTo(DropReason r, std::ostream* os) {
    *os << dropReasonName(r);
}
inline void PrintTo(Cause c, std::ostream* os) {
    *os << causeName(c);
}
}  // namespace best::emsdp

namespace best::ue::test {

inline constexpr std::string_view kImsi = "001010000000001";
inline constexpr std::int64_t kWallStart = 1'700'000'000;

// Nonces in the order given; when they run out, 0x5000000000000000 + n.
class ScriptedRandom final : public RandomSource {
public:
    ScriptedRandom() = default;
    explicit ScriptedRandom(std::initializer_list<std::uint64_t> values) : values_(values) {}
    void push(std::uint64_t v) { values_.push_back(v); }
    Result<void> fill(MutableByteView out) override {
        std::uint64_t v = 0x5000000000000000ULL + next_++;
        if (!values_.empty()) {
            v = values_.front();
            values_.pop_front();
        }
        std::array<std::uint8_t, 8> b{};
        putBe64(b.data(), v);
        for (std::size_t i = 0; i < out.size(); ++i)
            out[i] = b[i % 8];
        return {};
    }

private:
    std::deque<std::uint64_t> values_;
    std::uint64_t next_ = 0;
};

// The worked example's UE: release 17, UMTS+EPS+5G, confidentiality requested, key sets
// storable, EIA2, NULL+EEA2, EAS 'eas.example.org', serving network 001/01, HSE 'hse.example.org'.
inline std::shared_ptr<UeSettings> exampleSettings() {
    auto s = std::make_shared<UeSettings>();
    s->easId = "eas.example.org";
    s->hseId = "hse.example.org";
    s->capabilities = emsdp::UeConfiguration{17, 0x07, 0x03, 0x04, 0x05};
    s->servingNetwork = crypto::PlmnId{0x00, 0xf1, 0x10};
    return s;
}

template <typename T>
std::vector<T> eventsOf(const Output& out) {
    std::vector<T> v;
    for (const Event& e : out.events)
        if (const auto* p = std::get_if<T>(&e))
            v.push_back(*p);
    return v;
}

inline std::vector<emsdp::DropReason> drops(const Output& out) {
    std::vector<emsdp::DropReason> v;
    for (const auto& d : eventsOf<Dropped>(out))
        v.push_back(d.reason);
    return v;
}

class Harness {
public:
    explicit Harness(std::shared_ptr<UeSettings> settings = exampleSettings(), UeState state = {},
                     StateStore* store = nullptr, Usim* usim = nullptr)
        : settings_(std::move(settings)), usim_(usim) {
        now.mono = MonoTime{} + std::chrono::hours(1);
        now.wallSeconds = kWallStart;
        auto e = UeEngine::create(settings_, kImsi, std::move(state), UeDeps{store, &random});
        EXPECT_TRUE(e.has_value()) << (e ? "" : e.error().describe());
        if (e)
            engine_.emplace(std::move(*e));
    }

    UeEngine& engine() { return *engine_; }
    void setUsim(Usim* usim) { usim_ = usim; }

    // Runs the engine's AKA requests on the USIM right away (when one is set).
    void answerAka() {
        if (usim_ != nullptr)
            answerAkaInline(*engine_, *usim_, now, out);
    }
    void start() {
        auto ok = engine_->start(now, out);
        EXPECT_TRUE(ok.has_value()) << (ok ? "" : ok.error().describe());
    }
    void feed(ByteView datagram, Source source = Source::hse) {
        engine_->handleDatagram(datagram, source, now, out);
        answerAka();
    }
    void advanceTo(std::chrono::milliseconds sinceStart, MonoTime origin) {
        const MonoTime target = origin + sinceStart;
        now.wallSeconds +=
            std::chrono::duration_cast<std::chrono::seconds>(target - now.mono).count();
        now.mono = target;
        engine_->onTimer(now, out);
        answerAka();
    }
    void advance(std::chrono::milliseconds d) { advanceTo(d, now.mono); }

    // The only datagram of `out` (and clears out); fails the test otherwise.
    Bytes only() {
        EXPECT_EQ(out.datagrams.size(), 1u);
        Bytes d = out.datagrams.empty() ? Bytes{} : out.datagrams.front();
        out.clear();
        return d;
    }

    UeTime now;
    Output out;
    ScriptedRandom random;

private:
    std::shared_ptr<UeSettings> settings_;
    Usim* usim_ = nullptr;
    std::optional<UeEngine> engine_;
};

inline std::string hx(ByteView v) {
    return toHex(v);
}

}  // namespace best::ue::test
