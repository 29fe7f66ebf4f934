#include "sim/tlv.h"

#include <string>

#include "sim/sim_error.h"

namespace best::sim {

Result<std::vector<Tlv>> parseTlvs(ByteView data) {
    std::vector<Tlv> out;
    std::size_t i = 0;
    while (i < data.size()) {
        if (data[i] == 0xFF || data[i] == 0x00)
            break;  // padding
        std::uint16_t tag = data[i++];
        if ((tag & 0x1F) == 0x1F) {  // two-octet tag
            if (i >= data.size())
                return makeError(SimErrc::bad_response, "TLV tag truncated");
            tag = static_cast<std::uint16_t>((tag << 8) | data[i++]);
        }
        if (i >= data.size())
            return makeError(SimErrc::bad_response, "TLV length missing");
        std::size_t len = data[i++];
        if (len == 0x81 || len == 0x82) {
            std::size_t octets = len - 0x80;
            if (i + octets > data.size())
                return makeError(SimErrc::bad_response, "TLV length truncated");
            len = 0;
            for (std::size_t k = 0; k < octets; ++k)
                len = (len << 8) | data[i++];
        } else if (len > 0x7F) {
            return makeError(SimErrc::bad_response, "TLV length form not supported");
        }
        if (len > data.size() - i)
            return makeError(SimErrc::bad_response,
                             "TLV value of " + std::to_string(len) + " octets runs past the end");
        out.push_back(Tlv{tag, data.subspan(i, len)});
        i += len;
    }
    return out;
}

std::optional<ByteView> findTlv(const std::vector<Tlv>& tlvs, std::uint16_t tag) {
    for (const auto& t : tlvs)
        if (t.tag == tag)
            return t.value;
    return std::nullopt;
}

}  // namespace best::sim
