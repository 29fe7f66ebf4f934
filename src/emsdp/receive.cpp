#include "emsdp/receive.h"

#include "emsdp/protect.h"

namespace best::emsdp {

namespace {

constexpr std::uint8_t kCmdRequest = static_cast<std::uint8_t>(Command::sessionRequest);
constexpr std::uint8_t kCmdStart = static_cast<std::uint8_t>(Command::sessionStart);
constexpr std::uint8_t kCmdReject = static_cast<std::uint8_t>(Command::messageReject);

}  // namespace

tl::expected<Route, DropReason> route(ByteView datagram, Side receiver) noexcept {
    auto prefix = peekHeader(datagram);
    if (!prefix)
        return tl::unexpected(prefix.error());
    const HeaderPrefix& p = *prefix;
    if (p.plane == Plane::up) {
        if (p.sessionId == 0)
            return tl::unexpected(DropReason::up_with_session_zero);
        return Route{RouteKind::session, p};
    }
    if (p.kid != 0 && p.sessionId != 0)
        return Route{RouteKind::session, p};
    // KID 0 or Session ID 0: n = 0, so the command is octet 5.
    if (datagram.size() < kHeaderBaseSize + 1)
        return tl::unexpected(DropReason::truncated_message);
    const std::uint8_t command = datagram[kHeaderBaseSize];
    if (p.sessionId == 0) {
        if (receiver == Side::network) {
            if (command == kCmdRequest)
                return Route{RouteKind::sessionRequest, p};
            return tl::unexpected(DropReason::non_request_with_session_zero);
        }
        if (p.kid == 0 && command == kCmdReject)
            return Route{RouteKind::unprotectedReject, p};
        return tl::unexpected(DropReason::session_zero_not_reject);
    }
    // KID 0 with a Session ID.
    if (command == kCmdReject)
        return Route{RouteKind::unprotectedReject, p};
    if (command == kCmdRequest)
        return tl::unexpected(DropReason::request_with_session_nonzero);
    return Route{RouteKind::session, p};  // the session's KID check drops it (kid_mismatch)
}

tl::expected<ParsedSessionRequest, Verdict> parseSessionRequest(ByteView datagram) {
    auto header = decodeHeader(datagram, CounterScheme::n0);
    if (!header)
        return tl::unexpected(Verdict::drop(header.error()));
    if (header->plane == Plane::up) {
        return tl::unexpected(Verdict::drop(
            header->sessionId == 0 ? DropReason::up_with_session_zero : DropReason::wrong_plane));
    }
    const std::size_t hs = header->size();
    const std::size_t mac = header->kid != 0 ? kMacSize : 0;
    if (datagram.size() < hs + 1 + mac)
        return tl::unexpected(Verdict::drop(DropReason::truncated_message));
    if (header->sessionId != 0) {
        return tl::unexpected(Verdict::drop(datagram[hs] == kCmdRequest
                                                ? DropReason::request_with_session_nonzero
                                                : DropReason::unknown_session));
    }
    if (datagram[hs] != kCmdRequest)
        return tl::unexpected(Verdict::drop(DropReason::non_request_with_session_zero));
    auto body =
        decodeBody(kCmdRequest, Side::ue, datagram.subspan(hs + 1, datagram.size() - hs - 1 - mac));
    if (!body)
        return tl::unexpected(Verdict::reject(body.error().cause, body.error().reason));
    return ParsedSessionRequest{*header, std::get<SessionRequest>(std::move(*body))};
}

Result<bool> verifyResumptionMac(ByteView datagram, crypto::Eia2& ksess0CpInt) {
    if (datagram.size() <= kHeaderBaseSize + kMacSize)
        return false;
    return macMatches(ksess0CpInt, datagram, 0, bearerOf(Plane::cp), directionOf(Side::ue));
}

tl::expected<ParsedSessionStart, DropReason> parseSessionStart(ByteView datagram) {
    auto header = decodeHeader(datagram, CounterScheme::n0);
    if (!header)
        return tl::unexpected(header.error());
    if (header->plane != Plane::cp)
        return tl::unexpected(DropReason::wrong_plane);
    const std::size_t hs = header->size();
    if (datagram.size() < hs + 1 + kMacSize)
        return tl::unexpected(DropReason::truncated_message);
    if (header->sessionId == 0)
        return tl::unexpected(DropReason::session_zero_not_reject);
    if (header->kid == 0)
        return tl::unexpected(DropReason::kid_mismatch);
    if (datagram[hs] != kCmdStart)
        return tl::unexpected(DropReason::unexpected_command);
    auto body = decodeBody(kCmdStart, Side::network,
                           datagram.subspan(hs + 1, datagram.size() - hs - 1 - kMacSize));
    if (!body)
        return tl::unexpected(body.error().reason);
    return ParsedSessionStart{*header, std::get<SessionStart>(std::move(*body))};
}

tl::expected<ParsedReject, DropReason> parseUnprotectedReject(ByteView datagram) {
    auto header = decodeHeader(datagram, CounterScheme::n0);
    if (!header)
        return tl::unexpected(header.error());
    if (header->plane != Plane::cp)
        return tl::unexpected(DropReason::wrong_plane);
    const std::size_t hs = header->size();
    if (datagram.size() < hs + 1)
        return tl::unexpected(DropReason::truncated_message);
    if (header->kid != 0)
        return tl::unexpected(DropReason::kid_mismatch);
    if (datagram[hs] != kCmdReject)
        return tl::unexpected(DropReason::unexpected_command);
    // A Reject's IEs are the same from either side.
    auto body = decodeBody(kCmdReject, Side::network, datagram.subspan(hs + 1));
    if (!body)
        return tl::unexpected(body.error().reason);
    return ParsedReject{*header, std::get<MessageReject>(std::move(*body))};
}

Result<std::size_t> encodeSessionRequest(const SessionRequest& request, MutableByteView out) {
    return encodeUnprotected(0, request, out);
}

Result<std::size_t> encodeResumptionRequest(const SessionRequest& request, std::uint8_t kid,
                                            crypto::Eia2& ksess0CpInt, MutableByteView out) {
    if (kid == 0 || kid > kMaxKid)
        return makeError(EmsdpErrc::invalid_value, "a resumption names a key set, KID 1..7");
    Header h;
    h.kid = kid;
    return sealCp(ksess0CpInt, h, 0, directionOf(Side::ue), request, out);
}

Result<std::size_t> encodeUnprotectedReject(std::uint32_t sessionId, const MessageReject& reject,
                                            MutableByteView out) {
    return encodeUnprotected(sessionId, reject, out);
}

}  // namespace best::emsdp
