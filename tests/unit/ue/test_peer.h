// TestHsePeer: a scripted HSE for the UE engine's tests, built only from src/emsdp and
// src/crypto (no HSE daemon code). It plays the network side of 4.1 (vectors from Milenage with
// its own SQN), 4.1 step 4 resync, 4.2 (checking the resumption MAC and nonce), and the session
// (a SecureChannel on the network side). A StartSpec says what the next Session Start grants and
// lets a test bend it (mutate, corrupt the MAC) to hit each UE-side check.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "common/bytes.h"
#include "common/secure.h"
#include "crypto/key_hierarchy.h"
#include "crypto/milenage.h"
#include "emsdp/emsdp.h"

namespace best::ue::test {

struct PeerSubscriber {
    SubscriberK k;
    Opc opc;
    crypto::Amf amf{0xb9, 0xb9};
    std::uint64_t nextSeq = 1;
    unsigned ind = 7;
};

// K and OPc of Milenage test set 1 (TS 35.207), the worked example's subscriber.
inline constexpr std::string_view kExampleK = "465b5ce8b199b49faa5f0a2ee238a6bc";
inline constexpr std::string_view kExampleOpc = "cd63cb71954a9f4e48a5994e37a02baf";

// Milenage test set 1 (TS 35.207), the example's subscriber; SEQ starts at `seq`.
PeerSubscriber exampleSubscriber(std::uint64_t seq);

struct StartSpec {
    std::uint32_t sessionId = 0x01020304;
    std::uint8_t kid = 1;
    crypto::KeyAgreement keyAgreement = crypto::KeyAgreement::fiveG;
    emsdp::Service service = emsdp::Service::upConfidentiality;
    emsdp::UpTermination termination = emsdp::UpTermination::hse;
    std::uint32_t lifetime = 86400;
    emsdp::CounterScheme cpScheme = emsdp::CounterScheme::n1;
    emsdp::CounterScheme upScheme = emsdp::CounterScheme::n1;
    std::string hseId = "hse.example.org";
    std::optional<crypto::Rand> rand;  // default: a fresh RAND per vector
    // Applied to the consistent body built from the fields above, before it is sealed.
    std::function<void(emsdp::SessionStart&)> mutate;
    bool corruptMac = false;
};

// A vector for a refresh (4.4) and the new KInt the network derives from it.
struct RefreshVector {
    crypto::Rand rand{};
    crypto::Autn autn{};
    crypto::Sqn sqn{};
    Key256 kint;
};

class TestHsePeer {
public:
    explicit TestHsePeer(PeerSubscriber subscriber, std::string easId = "eas.example.org");

    // 4.1: a Session Start answering the full `request` (a new vector).
    Bytes answerFull(ByteView request, const StartSpec& spec);
    // 4.1 step 4: takes the UE's Reject 0x0B (AUTS), resynchronises, answers `request` again
    // with a new vector under the same Session ID and KID.
    Bytes answerResync(ByteView reject, ByteView request, const StartSpec& spec);
    // 4.2: checks the request's MAC with `kint` (EXPECT) and answers without RAND/AUTN.
    Bytes answerResumption(ByteView request, const Key256& kint, const StartSpec& spec);

    // 4.4: a vector for a refresh (the next SEQ, the subscriber's AMF) and the new KInt for
    // `ka` with the last request's serving network and the last Session Start's HSE Id.
    RefreshVector refreshVector(crypto::KeyAgreement ka, std::optional<crypto::Rand> rand = {});
    // Sealed (CP-DL, next COUNT): the Manage Keys Response to the UE's request, and the HSE's
    // Manage Keys Request.
    Bytes manageKeysResponse(const RefreshVector& v, crypto::KeyAgreement ka, std::uint8_t newKid);
    Bytes manageKeysRequest(const RefreshVector& v, crypto::KeyAgreement ka, std::uint8_t newKid,
                            emsdp::RefreshOrigin origin = emsdp::RefreshOrigin::hse);
    // The key confirmation the UE owes for `v` in the running session (section 6).
    crypto::KeyConfirmation expectedConfirmation(const RefreshVector& v);
    // Network-side resync from an AUTS answering `rand` (crypto::recoverSqnMs, MAC-S checked):
    // the next vector takes SEQ_MS + 1. False (nothing changed) for a bad MAC-S.
    bool resync(const crypto::Rand& rand, const crypto::Auts& auts);

    // The network end of the last answered session, and its keys.
    emsdp::SecureChannel& channel();
    const Key256& kint() const noexcept { return kint_; }
    const emsdp::ChannelKeys& keys() const noexcept { return *keys_; }
    const crypto::Sqn& lastSqn() const noexcept { return lastSqn_; }
    PeerSubscriber& subscriber() noexcept { return sub_; }

    Bytes seal(const emsdp::Body& body);
    Bytes sealUp(ByteView payload);
    // A MAC'd CP datagram with any command octet and TLV octets, under `count` (CP-DL).
    Bytes sealRawCp(std::uint8_t command, ByteView tlvs, std::uint32_t count);
    emsdp::ReceivedCp openCp(ByteView datagram);  // EXPECTs success
    Bytes openUp(ByteView datagram);              // EXPECTs success; the plaintext

private:
    Bytes sealStart(const emsdp::Header& h, emsdp::SessionStart start, const Key256& kint,
                    std::uint64_t nonce, const StartSpec& spec);

    PeerSubscriber sub_;
    std::string easId_;
    std::string hseIdStore_;
    Key256 kint_;
    std::optional<emsdp::ChannelKeys> keys_;
    std::optional<emsdp::SecureChannel> channel_;
    crypto::Sqn lastSqn_{};
    crypto::PlmnId plmn_{};
    std::uint8_t randSeed_ = 0x40;
};

}  // namespace best::ue::test
