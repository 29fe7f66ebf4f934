// Minimal BER-TLV reader for the UICC structures we parse (EF.DIR records, FCP templates).
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "common/bytes.h"
#include "common/result.h"

namespace best::sim {

struct Tlv {
    std::uint16_t tag = 0;  // one- or two-octet tag as on the wire (e.g. 0x61, 0x4F, 0x5F2D)
    ByteView value;         // points into the parsed buffer
};

// Parses a sequence of TLVs. Padding (0xFF or 0x00 where a tag would start) ends the sequence.
// Lengths in the short form and 81 xx / 82 xx xx; anything that runs past the end is an error.
Result<std::vector<Tlv>> parseTlvs(ByteView data);

// First TLV with `tag` in `tlvs`, if any.
std::optional<ByteView> findTlv(const std::vector<Tlv>& tlvs, std::uint16_t tag);

}  // namespace best::sim
