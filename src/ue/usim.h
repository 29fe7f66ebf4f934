// The USIM as the UE engine sees it: AUTHENTICATE (RAND, AUTN) with one of three outcomes, and
// the IMSI. The engine never calls a USIM itself: it emits an AkaRequest and takes the answer
// later through UeEngine::onAkaResult(), so a USIM behind PC/SC can answer from a worker thread
// (issue 8) while a software USIM answers inline (answerAkaInline(), engine.h).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <variant>

#include "common/bytes.h"
#include "common/result.h"
#include "common/secure.h"
#include "crypto/milenage.h"
#include "ue/sqn_array.h"

namespace best::ue {

struct AkaSuccess {
    Bytes res;  // RES; BEST never sends it (implicit authentication), kept for completeness
    Ck ck;
    Ik ik;
};
struct AkaSyncFailure {
    crypto::Auts auts;
};
struct AkaMacFailure {};
using AkaOutcome = std::variant<AkaSuccess, AkaSyncFailure, AkaMacFailure>;

class Usim {
public:
    virtual ~Usim() = default;
    // IMSI digits (EF_IMSI).
    virtual Result<std::string> imsi() = 0;
    // AUTHENTICATE in 3G context. An error is a card or I/O failure, never an AKA outcome.
    virtual Result<AkaOutcome> authenticate(const crypto::Rand& rand, const crypto::Autn& autn) = 0;
};

// Called with the SQN array after it accepted a new SQN and before the success is returned; an
// error turns the answer into a USIM error (the SQN stays accepted in memory).
using SqnPersist = std::function<Result<void>(const SqnArray&)>;

// Software USIM: Milenage on SoftAes128 with K and OPc, and the TS 33.102 Annex C SQN array:
// MAC-A first (a bad MAC is a MAC failure whatever the SQN), then freshness (stale or too far:
// sync failure with AUTS over the highest accepted SQN, AMF 0000 for MAC-S).
class SoftUsim final : public Usim {
public:
    SoftUsim(const SubscriberK& k, const Opc& opc, std::string imsiDigits,
             SqnArray sqnArray = SqnArray(), SqnPersist persist = {});

    Result<std::string> imsi() override { return imsi_; }
    Result<AkaOutcome> authenticate(const crypto::Rand& rand, const crypto::Autn& autn) override;

    const SqnArray& sqnArray() const noexcept { return sqn_; }
    SqnArray& sqnArray() noexcept { return sqn_; }

private:
    crypto::SoftAes128 ek_;
    Opc opc_;
    std::string imsi_;
    SqnArray sqn_;
    SqnPersist persist_;
};

}  // namespace best::ue
