#include "ue/usim.h"

#include <utility>

#include "ue/ue_error.h"

namespace best::ue {

SoftUsim::SoftUsim(const SubscriberK& k, const Opc& opc, std::string imsiDigits, SqnArray sqnArray,
                   SqnPersist persist)
    : ek_(k),
      opc_(opc),
      imsi_(std::move(imsiDigits)),
      sqn_(std::move(sqnArray)),
      persist_(std::move(persist)) {}

Result<AkaOutcome> SoftUsim::authenticate(const crypto::Rand& rand, const crypto::Autn& autn) {
    auto opened = crypto::openAutn(ek_, opc_, rand, autn);
    if (!opened)
        return makeError(UeErrc::usim, "software USIM: " + opened.error().message);
    if (!opened->macOk)
        return AkaOutcome{AkaMacFailure{}};
    const std::uint64_t sqn = crypto::sqnToInt(opened->sqn);
    if (sqn_.check(sqn) != Freshness::fresh) {
        auto auts = crypto::buildAuts(ek_, opc_, rand, crypto::sqnFromInt(sqn_.highestSqn()));
        if (!auts)
            return makeError(UeErrc::usim, "software USIM: " + auts.error().message);
        return AkaOutcome{AkaSyncFailure{*auts}};
    }
    sqn_.accept(sqn);
    if (persist_) {
        if (auto ok = persist_(sqn_); !ok)
            return makeError(UeErrc::usim, "software USIM: saving SQN_MS: " + ok.error().message);
    }
    AkaSuccess s;
    s.res.assign(opened->res.begin(), opened->res.end());
    s.ck = opened->ck;
    s.ik = opened->ik;
    return AkaOutcome{std::move(s)};
}

}  // namespace best::ue
