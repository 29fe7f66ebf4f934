#include "emsdp/header.h"

namespace best::emsdp {

tl::expected<HeaderPrefix, DropReason> peekHeader(ByteView datagram) noexcept {
    if (datagram.size() > kMaxDatagram)
        return tl::unexpected(DropReason::datagram_too_large);
    if (datagram.size() < kHeaderBaseSize)
        return tl::unexpected(DropReason::truncated_header);
    const std::uint8_t o0 = datagram[0];
    HeaderPrefix p;
    p.plane = (o0 & 0x80) != 0 ? Plane::up : Plane::cp;
    p.r = (o0 & 0x40) != 0;
    p.kid = static_cast<std::uint8_t>((o0 >> 3) & 0x07);
    p.ctrH = static_cast<std::uint8_t>(o0 & 0x07);
    p.sessionId = getBe32(datagram.data() + 1);
    return p;
}

tl::expected<Header, DropReason> decodeHeader(ByteView datagram, CounterScheme scheme) noexcept {
    auto prefix = peekHeader(datagram);
    if (!prefix)
        return tl::unexpected(prefix.error());
    return decodeHeader(*prefix, datagram, scheme);
}

tl::expected<Header, DropReason> decodeHeader(const HeaderPrefix& prefix, ByteView datagram,
                                              CounterScheme scheme) noexcept {
    const std::size_t ext = extensionOctets(scheme);
    if (datagram.size() < kHeaderBaseSize + ext)
        return tl::unexpected(DropReason::truncated_header);
    Header h;
    h.plane = prefix.plane;
    h.r = prefix.r;
    h.kid = prefix.kid;
    h.sessionId = prefix.sessionId;
    h.scheme = scheme;
    std::uint32_t field = prefix.ctrH;
    for (std::size_t i = 0; i < ext; ++i)
        field = (field << 8) | datagram[kHeaderBaseSize + i];
    h.counterField = field;
    return h;
}

Result<std::size_t> encodeHeader(const Header& header, MutableByteView out) {
    const std::size_t size = header.size();
    if (header.kid > kMaxKid)
        return makeError(EmsdpErrc::invalid_value, "KID must be 0..7");
    if ((header.counterField & ~counterMask(header.scheme)) != 0)
        return makeError(EmsdpErrc::invalid_value, "counter field wider than the scheme");
    if (out.size() < size)
        return makeError(EmsdpErrc::buffer_too_small, "no room for the EMSDP header");
    const std::size_t ext = extensionOctets(header.scheme);
    const auto ctrH = static_cast<std::uint8_t>((header.counterField >> (8 * ext)) & 0x07);
    out[0] = static_cast<std::uint8_t>((header.plane == Plane::up ? 0x80 : 0x00) |
                                       (header.r ? 0x40 : 0x00) | (header.kid << 3) | ctrH);
    putBe32(out.data() + 1, header.sessionId);
    for (std::size_t i = 0; i < ext; ++i) {
        out[kHeaderBaseSize + i] =
            static_cast<std::uint8_t>(header.counterField >> (8 * (ext - 1 - i)));
    }
    return size;
}

}  // namespace best::emsdp
