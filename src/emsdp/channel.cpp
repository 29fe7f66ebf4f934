#include "emsdp/channel.h"

#include "emsdp/protect.h"

namespace best::emsdp {

ChannelConfig channelConfigFor(Side side, const Header& sessionStartHeader,
                               const SessionStart& sessionStart) noexcept {
    ChannelConfig c;
    c.side = side;
    c.sessionId = sessionStartHeader.sessionId;
    c.kid = sessionStartHeader.kid;
    c.cpScheme = sessionStart.hseConfiguration.cpScheme;
    c.upScheme = sessionStart.hseConfiguration.upScheme;
    c.upEnabled = sessionStart.serviceParameters.service != Service::kaOnly;
    c.upCiphering = sessionStart.serviceParameters.service == Service::upConfidentiality;
    return c;
}

Result<void> SecureChannel::validate(const ChannelConfig& config) {
    if (config.kid == 0 || config.kid > kMaxKid)
        return makeError(EmsdpErrc::invalid_value, "a session's KID is 1..7");
    if (config.sessionId == 0)
        return makeError(EmsdpErrc::invalid_value, "a session's Session ID is not 0");
    if (static_cast<std::uint8_t>(config.cpScheme) > 3 ||
        static_cast<std::uint8_t>(config.upScheme) > 3) {
        return makeError(EmsdpErrc::invalid_value, "counter scheme must be 0..3");
    }
    return {};
}

Result<SecureChannel> SecureChannel::create(const ChannelConfig& config, const ChannelKeys& keys) {
    if (auto ok = validate(config); !ok)
        return makeError(ok.error());
    SecureChannel ch(config);
    ch.owned_ = std::make_unique<KeyedContexts>();
    if (auto ok = ch.owned_->cpInt.setKey(keys.cpInt); !ok)
        return makeError(EmsdpErrc::crypto, ok.error().message);
    if (auto ok = ch.owned_->upInt.setKey(keys.upInt); !ok)
        return makeError(EmsdpErrc::crypto, ok.error().message);
    if (config.upCiphering) {
        if (auto ok = ch.owned_->upEnc.setKey(keys.upEnc); !ok)
            return makeError(EmsdpErrc::crypto, ok.error().message);
    }
    return ch;
}

Result<SecureChannel> SecureChannel::create(const ChannelConfig& config, const ChannelKeys& keys,
                                            ContextCache& cache) {
    if (auto ok = validate(config); !ok)
        return makeError(ok.error());
    auto slot = cache.slab().acquire(keys);
    if (!slot)
        return makeError(slot.error());
    SecureChannel ch(config);
    ch.slot_ = SlabSlot(cache, *slot);
    return ch;
}

Result<KeyedContexts*> SecureChannel::contexts() {
    if (owned_)
        return owned_.get();
    if (!slot_)
        return makeError(EmsdpErrc::crypto, "the channel has no keys");
    auto c = slot_.cache()->get(slot_.slot(), config_.upCiphering);
    if (!c)
        return makeError(EmsdpErrc::crypto, c.error().message);
    return *c;
}

// ---- sending ----------------------------------------------------------------------------------

Result<std::size_t> SecureChannel::sealCp(const Body& body, MutableByteView out) {
    if (closed_)
        return makeError(EmsdpErrc::session_closed, "the session has ended");
    if (std::holds_alternative<SessionRequest>(body))
        return makeError(EmsdpErrc::wrong_side, "a Session Request is not sent on a session");
    if (!sendableBy(body, config_.side))
        return makeError(EmsdpErrc::wrong_side, "this side does not send that command");
    if (!cpTx_.available())
        return makeError(EmsdpErrc::counter_exhausted, "CP COUNT exhausted: terminate (A1)");
    Header h;
    h.plane = Plane::cp;
    h.kid = config_.kid;
    h.sessionId = config_.sessionId;
    h.scheme = std::holds_alternative<SessionStart>(body) ? CounterScheme::n0 : config_.cpScheme;
    auto ctx = contexts();
    if (!ctx)
        return makeError(ctx.error());
    const auto count = static_cast<std::uint32_t>(cpTx_.next());
    auto size = emsdp::sealCp((*ctx)->cpInt, h, count, txDirection(), body, out);
    if (size)
        cpTx_.advance();
    return size;
}

Result<std::size_t> SecureChannel::sealUp(ByteView payload, MutableByteView out) {
    if (closed_)
        return makeError(EmsdpErrc::session_closed, "the session has ended");
    if (!config_.upEnabled)
        return makeError(EmsdpErrc::invalid_value, "the session has no user-plane service");
    if (!upTx_.available())
        return makeError(EmsdpErrc::counter_exhausted, "UP COUNT exhausted: terminate (A1)");
    Header h;
    h.plane = Plane::up;
    h.kid = config_.kid;
    h.sessionId = config_.sessionId;
    h.scheme = config_.upScheme;
    auto ctx = contexts();
    if (!ctx)
        return makeError(ctx.error());
    const auto count = static_cast<std::uint32_t>(upTx_.next());
    auto size = emsdp::sealUp((*ctx)->upInt, config_.upCiphering ? &(*ctx)->upEnc : nullptr, h,
                              count, txDirection(), payload, out);
    if (size)
        upTx_.advance();
    return size;
}

bool SecureChannel::exhaustionDue() const noexcept {
    return cpTx_.exhaustionDue() || upTx_.exhaustionDue();
}

Result<std::size_t> SecureChannel::sealExhaustionTerminate(MutableByteView out) {
    if (closed_)
        return makeError(EmsdpErrc::session_closed, "the session has ended");
    if (cpTx_.next() > kMaxCount)
        return makeError(EmsdpErrc::counter_exhausted, "no CP COUNT left");
    Header h;
    h.plane = Plane::cp;
    h.kid = config_.kid;
    h.sessionId = config_.sessionId;
    h.scheme = config_.cpScheme;
    auto ctx = contexts();
    if (!ctx)
        return makeError(ctx.error());
    const auto count = static_cast<std::uint32_t>(cpTx_.next());
    const Body body = SessionTerminateRequest{Cause::counter_exhausted};
    auto size = emsdp::sealCp((*ctx)->cpInt, h, count, txDirection(), body, out);
    if (size) {
        cpTx_.advance();
        closed_ = true;
    }
    return size;
}

// ---- receiving --------------------------------------------------------------------------------

tl::expected<Header, Verdict> SecureChannel::checkFront(ByteView datagram, Plane plane,
                                                        CounterScheme scheme) const {
    auto prefix = peekHeader(datagram);
    if (!prefix)
        return tl::unexpected(Verdict::drop(prefix.error()));
    if (prefix->plane != plane)
        return tl::unexpected(Verdict::drop(DropReason::wrong_plane));
    const CounterScheme n = prefix->kid == 0 ? CounterScheme::n0 : scheme;
    auto header = decodeHeader(*prefix, datagram, n);
    if (!header)
        return tl::unexpected(Verdict::drop(header.error()));
    const std::size_t hs = header->size();
    const std::size_t minimum =
        hs + (plane == Plane::cp ? 1 : 0) + (header->kid != 0 ? kMacSize : 0);
    if (datagram.size() < minimum)
        return tl::unexpected(Verdict::drop(DropReason::truncated_message));
    // Session ID.
    if (header->sessionId == 0 && plane == Plane::up)
        return tl::unexpected(Verdict::drop(DropReason::up_with_session_zero));
    if (header->sessionId != config_.sessionId)
        return tl::unexpected(Verdict::drop(DropReason::unknown_session));
    if (plane == Plane::cp && datagram[hs] == static_cast<std::uint8_t>(Command::sessionRequest))
        return tl::unexpected(Verdict::drop(DropReason::request_with_session_nonzero));
    // KID.
    if (header->kid != config_.kid)
        return tl::unexpected(Verdict::drop(DropReason::kid_mismatch));
    return *header;
}

tl::expected<ReceivedCp, Verdict> SecureChannel::openCp(ByteView datagram) {
    if (closed_)
        return tl::unexpected(Verdict::drop(DropReason::session_closed));
    auto header = checkFront(datagram, Plane::cp, config_.cpScheme);
    if (!header)
        return tl::unexpected(header.error());
    // Counter.
    auto count = cpRx_.candidate(header->counterField, header->scheme);
    if (!count)
        return tl::unexpected(Verdict::drop(count.error()));
    // MAC.
    auto ctx = contexts();
    if (!ctx)
        return tl::unexpected(Verdict::drop(DropReason::crypto_failure));
    auto mac = macMatches((*ctx)->cpInt, datagram, *count, bearerOf(Plane::cp), rxDirection());
    if (!mac)
        return tl::unexpected(Verdict::drop(DropReason::crypto_failure));
    if (!*mac)
        return tl::unexpected(Verdict::drop(DropReason::bad_mac));
    // Command and TLVs.
    const std::size_t hs = header->size();
    const std::uint8_t command = datagram[hs];
    const ByteView tlvs = datagram.subspan(hs + 1, datagram.size() - hs - 1 - kMacSize);
    const Side peer = peerOf(config_.side);
    std::optional<Verdict> fault;
    tl::expected<Body, FormatError> body = tl::unexpected(FormatError{});
    if (!isKnownCommand(command)) {
        fault = Verdict::reject(Cause::unknown_command, DropReason::unknown_command, true);
    } else if (!sentBy(static_cast<Command>(command), peer)) {
        fault = Verdict::drop(DropReason::unexpected_command, true);
    } else {
        body = decodeBody(command, peer, tlvs);
        if (!body) {
            if (command == static_cast<std::uint8_t>(Command::messageReject))
                fault = Verdict::drop(body.error().reason, true);  // never answer a Reject
            else
                fault = Verdict::reject(body.error().cause, body.error().reason, true);
        }
    }
    // A1: COUNT 2^32-1 carries only the exhaustion Terminate.
    if (*count == kMaxCount) {
        const auto* term = body ? std::get_if<SessionTerminateRequest>(&*body) : nullptr;
        if (term == nullptr || term->cause != Cause::counter_exhausted)
            return tl::unexpected(Verdict::drop(DropReason::counter_exhausted));
    }
    cpRx_.commit(*count);
    if (fault)
        return tl::unexpected(*fault);
    return ReceivedCp{*header, *count, std::move(*body)};
}

tl::expected<ReceivedCp, Verdict> SecureChannel::acceptSessionStart(ByteView datagram) {
    if (closed_)
        return tl::unexpected(Verdict::drop(DropReason::session_closed));
    if (config_.side != Side::ue)
        return tl::unexpected(Verdict::drop(DropReason::unexpected_command));
    auto header = checkFront(datagram, Plane::cp, CounterScheme::n0);
    if (!header)
        return tl::unexpected(header.error());
    const std::size_t hs = header->size();
    if (datagram[hs] != static_cast<std::uint8_t>(Command::sessionStart))
        return tl::unexpected(Verdict::drop(DropReason::unexpected_command));
    auto count = cpRx_.candidate(header->counterField, header->scheme);
    if (!count)
        return tl::unexpected(Verdict::drop(count.error()));
    auto ctx = contexts();
    if (!ctx)
        return tl::unexpected(Verdict::drop(DropReason::crypto_failure));
    auto mac = macMatches((*ctx)->cpInt, datagram, *count, bearerOf(Plane::cp), rxDirection());
    if (!mac)
        return tl::unexpected(Verdict::drop(DropReason::crypto_failure));
    if (!*mac)
        return tl::unexpected(Verdict::drop(DropReason::bad_mac));
    auto body = decodeBody(datagram[hs], Side::network,
                           datagram.subspan(hs + 1, datagram.size() - hs - 1 - kMacSize));
    if (!body)
        return tl::unexpected(Verdict::drop(body.error().reason));
    if (*count == kMaxCount)
        return tl::unexpected(Verdict::drop(DropReason::counter_exhausted));
    cpRx_.commit(*count);
    return ReceivedCp{*header, *count, std::move(*body)};
}

tl::expected<ReceivedUp, Verdict> SecureChannel::openUp(ByteView datagram, MutableByteView plain) {
    if (closed_)
        return tl::unexpected(Verdict::drop(DropReason::session_closed));
    auto header = checkFront(datagram, Plane::up, config_.upScheme);
    if (!header)
        return tl::unexpected(header.error());
    if (!config_.upEnabled)
        return tl::unexpected(Verdict::drop(DropReason::up_not_allowed));
    const std::size_t hs = header->size();
    const ByteView payload = datagram.subspan(hs, datagram.size() - hs - kMacSize);
    const bool decipher = config_.upCiphering && !plain.empty();
    if (decipher && plain.size() < payload.size())
        return tl::unexpected(Verdict::drop(DropReason::buffer_too_small));
    auto count = upRx_.candidate(header->counterField, header->scheme);
    if (!count)
        return tl::unexpected(Verdict::drop(count.error()));
    auto ctx = contexts();
    if (!ctx)
        return tl::unexpected(Verdict::drop(DropReason::crypto_failure));
    auto mac = macMatches((*ctx)->upInt, datagram, *count, bearerOf(Plane::up), rxDirection());
    if (!mac)
        return tl::unexpected(Verdict::drop(DropReason::crypto_failure));
    if (!*mac)
        return tl::unexpected(Verdict::drop(DropReason::bad_mac));
    upRx_.commit(*count);
    ReceivedUp r{*header, *count, payload, false};
    if (decipher) {
        MutableByteView dst = plain.first(payload.size());
        auto ok = (*ctx)->upEnc.apply(*count, bearerOf(Plane::up), rxDirection(), payload, dst);
        if (!ok)
            return tl::unexpected(Verdict::drop(DropReason::crypto_failure, true));
        r.payload = dst;
        r.deciphered = true;
    }
    return r;
}

CounterSnapshot SecureChannel::counters() const noexcept {
    return CounterSnapshot{cpTx_.next(), upTx_.next(), cpRx_.highest(), upRx_.highest(),
                           upRx_.seen()};
}

void SecureChannel::restoreCounters(const CounterSnapshot& s) noexcept {
    cpTx_.restore(s.nextCpTx);
    upTx_.restore(s.nextUpTx);
    cpRx_.restore(s.cpRxHighest);
    upRx_.restore(s.upRxHighest, s.upRxSeen);
}

}  // namespace best::emsdp
