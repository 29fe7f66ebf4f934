// Shared by the sim tests: the Milenage test sets read from tests/data at run time, a scripted
// fake transport, and a transport that drives the virtual card in-process.
#pragma once

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "common/bytes.h"
#include "common/result.h"
#include "crypto/milenage.h"
#include "sim/apdu.h"
#include "sim/vusim/card.h"

namespace best::sim::test {

// One line of tests/data/milenage-ts35207.txt (3GPP TS 35.207 test sets), hex kept as text too.
struct MilenageSet {
    int set = 0;
    std::string kHex, opHex, opcHex;
    SubscriberK k;
    Op op;
    Opc opc;
    crypto::Rand rand{};
    crypto::Sqn sqn{};
    crypto::Amf amf{};
    Bytes f1, f1star, f2, f3, f4, f5, f5star;

    // AUTN = (SQN xor AK) || AMF || MAC-A, from the published values alone.
    crypto::Autn autn() const;
    std::uint64_t sqnInt() const { return crypto::sqnToInt(sqn); }
};

// Reads $BEST_TEST_DATA/milenage-ts35207.txt; a missing file or bad line fails the test.
const std::vector<MilenageSet>& milenageSets();

Bytes hexBytes(const std::string& hex);

// AUTN for any SQN under a set's K/OPc/RAND/AMF (computed with the crypto core).
crypto::Autn autnFor(const MilenageSet& v, std::uint64_t sqn);

// A transport that answers from a script and records what it was sent.
class ScriptedTransport final : public ApduTransport {
public:
    struct Step {
        Bytes expect;    // the command expected (empty: anything)
        Bytes response;  // data + SW
    };
    void add(Bytes expect, Bytes response) {
        steps_.push_back({std::move(expect), std::move(response)});
    }
    void fail(Error e) { failure_ = std::move(e); }

    Result<std::size_t> transmit(ByteView command, MutableByteView response) override;

    std::vector<Bytes> sent;
    bool exhausted() const { return steps_.empty(); }

private:
    std::deque<Step> steps_;
    std::optional<Error> failure_;
};

// The virtual card behind an ApduTransport, no sockets.
class CardTransport final : public ApduTransport {
public:
    explicit CardTransport(vusim::VirtualUsim& card) : card_(card) {}
    Result<std::size_t> transmit(ByteView command, MutableByteView response) override {
        ++commands;
        return card_.process(command, response);
    }
    int commands = 0;

private:
    vusim::VirtualUsim& card_;
};

}  // namespace best::sim::test
