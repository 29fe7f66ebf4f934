// A UE engine with a software USIM, a memory store, and the scripted TestHsePeer, all on the
// example's subscriber (Milenage test set 1) with a small SEQ.
#pragma once

#include <gtest/gtest.h>

#include "harness.h"
#include "profile_example.h"
#include "test_peer.h"
#include "ue/usim.h"

namespace best::ue::test {

using best::test::hexBytes;

inline SoftUsim exampleSoftUsim(std::uint64_t seqMs7 = 0) {
    SqnArray a;
    EXPECT_TRUE(a.setSeq(7, seqMs7).has_value());
    return SoftUsim(SubscriberK(hexBytes(kExampleK)), Opc(hexBytes(kExampleOpc)),
                    std::string(kImsi), a);
}

struct Rig {
    explicit Rig(std::shared_ptr<UeSettings> settings = exampleSettings(), UeState state = {},
                 std::uint64_t peerSeq = 1, std::uint64_t usimSeqMs = 0)
        : usim(exampleSoftUsim(usimSeqMs)),
          peer(exampleSubscriber(peerSeq)),
          h(std::move(settings), std::move(state), &store, &usim) {}

    // start() and the one datagram it sends.
    Bytes request() {
        h.start();
        return h.only();
    }
    // A full establishment answered with `spec`; clears the output.
    void establish(const StartSpec& spec = {}) {
        const Bytes req = request();
        h.feed(peer.answerFull(req, spec));
        ASSERT_EQ(eventsOf<SessionEstablished>(h.out).size(), 1u) << "not established";
        h.out.clear();
    }

    MemoryStateStore store;
    SoftUsim usim;
    TestHsePeer peer;
    Harness h;
};

// A KeySet with a made-up KInt (seeded), as a state file would hold it.
inline KeySet madeUpSet(std::uint8_t kid, std::uint8_t seed,
                        crypto::KeyAgreement ka = crypto::KeyAgreement::fiveG) {
    KeySet s;
    s.kid = kid;
    s.keyAgreement = ka;
    s.plmn = crypto::PlmnId{0x00, 0xf1, 0x10};
    s.hseId = "hse.example.org";
    std::array<std::uint8_t, 32> k{};
    for (std::size_t i = 0; i < k.size(); ++i)
        k[i] = static_cast<std::uint8_t>(seed + 3 * i);
    s.kint = Key256(ByteView(k));
    s.created = kWallStart - 1000;
    s.lifetime = 86400;
    s.lastNonce = 0x1000;
    return s;
}

}  // namespace best::ue::test
