#include "emsdp/outcome.h"

namespace best::emsdp {

bool isDefinedCause(std::uint8_t value) noexcept {
    switch (value) {
        case 0x01:
        case 0x02:
        case 0x03:
        case 0x04:
        case 0x05:
        case 0x06:
        case 0x07:
        case 0x08:
        case 0x09:
        case 0x0A:
        case 0x0B:
        case 0x0D:
        case 0x0F:
        case 0x10:
        case 0x12:
        case 0x13:
        case 0x14:
            return true;
        default:
            return false;
    }
}

std::string_view causeName(Cause c) noexcept {
    switch (c) {
        case Cause::invalid_format:
            return "invalid_format";
        case Cause::unknown_command:
            return "unknown_command";
        case Cause::missing_mandatory_ie:
            return "missing_mandatory_ie";
        case Cause::unknown_mandatory_ie:
            return "unknown_mandatory_ie";
        case Cause::unsupported_release:
            return "unsupported_release";
        case Cause::no_common_algorithm:
            return "no_common_algorithm";
        case Cause::unknown_subscriber:
            return "unknown_subscriber";
        case Cause::eas_not_allowed:
            return "eas_not_allowed";
        case Cause::service_not_allowed:
            return "service_not_allowed";
        case Cause::aka_mac_failure:
            return "aka_mac_failure";
        case Cause::synch_failure:
            return "synch_failure";
        case Cause::key_set_invalid:
            return "key_set_invalid";
        case Cause::congestion:
            return "congestion";
        case Cause::eas_unavailable:
            return "eas_unavailable";
        case Cause::internal_error:
            return "internal_error";
        case Cause::counter_exhausted:
            return "counter_exhausted";
        case Cause::resync_failed:
            return "resync_failed";
    }
    return "undefined";
}

std::string_view dropReasonName(DropReason r) noexcept {
    switch (r) {
        case DropReason::datagram_too_large:
            return "datagram_too_large";
        case DropReason::truncated_header:
            return "truncated_header";
        case DropReason::truncated_message:
            return "truncated_message";
        case DropReason::up_with_session_zero:
            return "up_with_session_zero";
        case DropReason::request_with_session_nonzero:
            return "request_with_session_nonzero";
        case DropReason::non_request_with_session_zero:
            return "non_request_with_session_zero";
        case DropReason::session_zero_not_reject:
            return "session_zero_not_reject";
        case DropReason::unknown_session:
            return "unknown_session";
        case DropReason::kid_mismatch:
            return "kid_mismatch";
        case DropReason::up_not_allowed:
            return "up_not_allowed";
        case DropReason::wrong_plane:
            return "wrong_plane";
        case DropReason::counter_out_of_range:
            return "counter_out_of_range";
        case DropReason::counter_exhausted:
            return "counter_exhausted";
        case DropReason::replayed_counter:
            return "replayed_counter";
        case DropReason::counter_too_old:
            return "counter_too_old";
        case DropReason::bad_mac:
            return "bad_mac";
        case DropReason::unknown_command:
            return "unknown_command";
        case DropReason::unexpected_command:
            return "unexpected_command";
        case DropReason::trailing_octets:
            return "trailing_octets";
        case DropReason::length_past_end:
            return "length_past_end";
        case DropReason::duplicate_tlv:
            return "duplicate_tlv";
        case DropReason::unknown_mandatory_tag:
            return "unknown_mandatory_tag";
        case DropReason::invalid_ie_length:
            return "invalid_ie_length";
        case DropReason::value_out_of_range:
            return "value_out_of_range";
        case DropReason::missing_mandatory_ie:
            return "missing_mandatory_ie";
        case DropReason::conflicting_ies:
            return "conflicting_ies";
        case DropReason::suci_not_supported:
            return "suci_not_supported";
        case DropReason::invalid_plmn:
            return "invalid_plmn";
        case DropReason::session_closed:
            return "session_closed";
        case DropReason::crypto_failure:
            return "crypto_failure";
        case DropReason::buffer_too_small:
            return "buffer_too_small";
        case DropReason::unsolicited_reject:
            return "unsolicited_reject";
        case DropReason::bad_mac_s:
            return "bad_mac_s";
        case DropReason::checksum_mismatch:
            return "checksum_mismatch";
        case DropReason::session_start_mismatch:
            return "session_start_mismatch";
        case DropReason::key_confirmation_mismatch:
            return "key_confirmation_mismatch";
        case DropReason::wrong_source_address:
            return "wrong_source_address";
    }
    return "unknown";
}

}  // namespace best::emsdp
