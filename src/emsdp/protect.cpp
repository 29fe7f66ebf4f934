#include "emsdp/protect.h"

#include <cstring>

namespace best::emsdp {

namespace {

Result<void> appendMac(crypto::Eia2& integrity, MutableByteView out, std::size_t covered,
                       std::uint32_t count, std::uint8_t bearer, std::uint8_t direction) {
    if (covered + kMacSize > kMaxDatagram)
        return makeError(EmsdpErrc::datagram_too_large, "EMSDP message over 1280 octets");
    if (out.size() < covered + kMacSize)
        return makeError(EmsdpErrc::buffer_too_small, "no room for the MAC");
    auto mac = integrity.mac(count, bearer, direction, ByteView(out.data(), covered));
    if (!mac)
        return makeError(EmsdpErrc::crypto, mac.error().message);
    putBe32(out.data() + covered, *mac);
    return {};
}

}  // namespace

Result<std::size_t> sealCp(crypto::Eia2& integrity, const Header& header, std::uint32_t count,
                           std::uint8_t direction, const Body& body, MutableByteView out) {
    if (header.plane != Plane::cp || header.kid == 0)
        return makeError(EmsdpErrc::invalid_value, "a protected CP message needs P = 0, KID 1..7");
    Header h = header;
    h.setCount(count);
    auto hs = encodeHeader(h, out);
    if (!hs)
        return makeError(hs.error());
    auto bs = encodeBody(body, out.subspan(*hs));
    if (!bs) {
        if (bs.error().code == static_cast<int>(EmsdpErrc::buffer_too_small) &&
            out.size() >= kMaxDatagram) {
            return makeError(EmsdpErrc::datagram_too_large, "EMSDP message over 1280 octets");
        }
        return makeError(bs.error());
    }
    const std::size_t covered = *hs + *bs;
    if (auto ok = appendMac(integrity, out, covered, count, bearerOf(Plane::cp), direction); !ok)
        return makeError(ok.error());
    return covered + kMacSize;
}

Result<std::size_t> encodeUnprotected(std::uint32_t sessionId, const Body& body,
                                      MutableByteView out) {
    Header h;
    h.sessionId = sessionId;
    auto hs = encodeHeader(h, out);
    if (!hs)
        return makeError(hs.error());
    auto bs = encodeBody(body, out.subspan(*hs));
    if (!bs) {
        if (bs.error().code == static_cast<int>(EmsdpErrc::buffer_too_small) &&
            out.size() >= kMaxDatagram) {
            return makeError(EmsdpErrc::datagram_too_large, "EMSDP message over 1280 octets");
        }
        return makeError(bs.error());
    }
    const std::size_t size = *hs + *bs;
    if (size > kMaxDatagram)
        return makeError(EmsdpErrc::datagram_too_large, "EMSDP message over 1280 octets");
    return size;
}

Result<std::size_t> sealUp(crypto::Eia2& integrity, crypto::Eea2* cipher, const Header& header,
                           std::uint32_t count, std::uint8_t direction, ByteView payload,
                           MutableByteView out) {
    if (header.plane != Plane::up || header.kid == 0)
        return makeError(EmsdpErrc::invalid_value, "a UP message needs P = 1, KID 1..7");
    Header h = header;
    h.setCount(count);
    const std::size_t hsize = h.size();
    const std::size_t covered = hsize + payload.size();
    if (covered + kMacSize > kMaxDatagram)
        return makeError(EmsdpErrc::datagram_too_large, "EMSDP message over 1280 octets");
    if (out.size() < covered + kMacSize)
        return makeError(EmsdpErrc::buffer_too_small, "no room for the UP message");
    auto hs = encodeHeader(h, out);
    if (!hs)
        return makeError(hs.error());
    MutableByteView dst = out.subspan(hsize, payload.size());
    if (cipher != nullptr) {
        auto ok = cipher->apply(count, bearerOf(Plane::up), direction, payload, dst);
        if (!ok)
            return makeError(EmsdpErrc::crypto, ok.error().message);
    } else if (!payload.empty() && payload.data() != dst.data()) {
        std::memmove(dst.data(), payload.data(), payload.size());
    }
    if (auto ok = appendMac(integrity, out, covered, count, bearerOf(Plane::up), direction); !ok)
        return makeError(ok.error());
    return covered + kMacSize;
}

Result<bool> macMatches(crypto::Eia2& integrity, ByteView datagram, std::uint32_t count,
                        std::uint8_t bearer, std::uint8_t direction) {
    if (datagram.size() <= kMacSize)
        return false;
    const std::size_t covered = datagram.size() - kMacSize;
    auto ok = integrity.verify(count, bearer, direction, datagram.first(covered),
                               getBe32(datagram.data() + covered));
    if (!ok)
        return makeError(EmsdpErrc::crypto, ok.error().message);
    return *ok;
}

}  // namespace best::emsdp
