#include "emsdp/message.h"

#include <array>
#include <type_traits>

namespace best::emsdp {

bool isKnownCommand(std::uint8_t command) noexcept {
    switch (command) {
        case 0x10:
        case 0x11:
        case 0x12:
        case 0x20:
        case 0x21:
        case 0x30:
        case 0x31:
        case 0x80:
            return true;
        default:
            return false;
    }
}

std::string_view commandName(Command c) noexcept {
    switch (c) {
        case Command::sessionRequest:
            return "Session Request";
        case Command::sessionStart:
            return "Session Start";
        case Command::sessionStartConfirmation:
            return "Session Start Confirmation";
        case Command::sessionTerminateRequest:
            return "Session Terminate Request";
        case Command::sessionTerminateResponse:
            return "Session Terminate Response";
        case Command::manageKeysRequest:
            return "Manage Keys Request";
        case Command::manageKeysResponse:
            return "Manage Keys Response";
        case Command::messageReject:
            return "Message Reject";
    }
    return "unknown";
}

bool sentBy(Command command, Side sender) noexcept {
    switch (command) {
        case Command::sessionRequest:
        case Command::sessionStartConfirmation:
            return sender == Side::ue;
        case Command::sessionStart:
            return sender == Side::network;
        case Command::sessionTerminateRequest:
        case Command::sessionTerminateResponse:
        case Command::manageKeysRequest:
        case Command::manageKeysResponse:
        case Command::messageReject:
            return true;
    }
    return false;
}

namespace {

template <typename... F>
struct Overloaded : F... {
    using F::operator()...;
};
template <typename... F>
Overloaded(F...) -> Overloaded<F...>;

// ---- TLV parsing ------------------------------------------------------------------------------

// Compact index of each defined tag (bit position in the listed / present masks).
constexpr std::array<Tag, 18> kTags = {
    Tag::imsi,
    Tag::suci,
    Tag::ueConfiguration,
    Tag::enterpriseSetup,
    Tag::servingNetwork,
    Tag::ueNonce,
    Tag::rand,
    Tag::autn,
    Tag::auts,
    Tag::keyAgreementUsed,
    Tag::hseConfiguration,
    Tag::serviceParameters,
    Tag::requestChecksum,
    Tag::newKeyId,
    Tag::keyConfirmation,
    Tag::refreshOrigin,
    Tag::cause,
    Tag::backOff,
};

constexpr int tagIndex(std::uint8_t tag) noexcept {
    for (std::size_t i = 0; i < kTags.size(); ++i) {
        if (static_cast<std::uint8_t>(kTags[i]) == tag)
            return static_cast<int>(i);
    }
    return -1;
}

constexpr std::uint32_t bit(Tag t) noexcept {
    return std::uint32_t{1} << tagIndex(static_cast<std::uint8_t>(t));
}

template <typename... T>
constexpr std::uint32_t mask(T... tags) noexcept {
    return (0u | ... | bit(tags));
}

// The tags listed for a command from a sender (section 4). Others defined are ignored (A19).
std::uint32_t listedTags(Command c, Side sender) noexcept {
    switch (c) {
        case Command::sessionRequest:
            return mask(Tag::imsi, Tag::suci, Tag::ueConfiguration, Tag::enterpriseSetup,
                        Tag::servingNetwork, Tag::ueNonce);
        case Command::sessionStart:
            return mask(Tag::rand, Tag::autn, Tag::keyAgreementUsed, Tag::hseConfiguration,
                        Tag::serviceParameters, Tag::requestChecksum);
        case Command::sessionStartConfirmation:
        case Command::sessionTerminateResponse:
            return 0;
        case Command::sessionTerminateRequest:
            return mask(Tag::cause);
        case Command::manageKeysRequest:
            if (sender == Side::ue)
                return mask(Tag::refreshOrigin);
            return mask(Tag::rand, Tag::autn, Tag::keyAgreementUsed, Tag::newKeyId,
                        Tag::refreshOrigin);
        case Command::manageKeysResponse:
            if (sender == Side::ue)
                return mask(Tag::keyConfirmation, Tag::cause, Tag::auts);
            return mask(Tag::rand, Tag::autn, Tag::keyAgreementUsed, Tag::newKeyId);
        case Command::messageReject:
            return mask(Tag::cause, Tag::auts, Tag::backOff);
    }
    return 0;
}

struct IeSet {
    std::uint32_t present = 0;
    std::array<ByteView, kTags.size()> values{};

    bool has(Tag t) const noexcept { return (present & bit(t)) != 0; }
    ByteView get(Tag t) const noexcept {
        return values[static_cast<std::size_t>(tagIndex(static_cast<std::uint8_t>(t)))];
    }
};

bool keyAgreementValid(std::uint8_t v) noexcept {
    return v >= 0x01 && v <= 0x03;
}

// Value rules of A3 (and the counter schemes, which the codec cannot represent above 3).
bool valueValid(Tag t, ByteView v, Command c, Side sender) noexcept {
    switch (t) {
        case Tag::keyAgreementUsed:
            return keyAgreementValid(v[0]);
        case Tag::newKeyId:
            return v[0] >= 1 && v[0] <= kMaxKid;
        case Tag::refreshOrigin:
            if (c == Command::manageKeysRequest && sender == Side::ue)
                return v[0] == static_cast<std::uint8_t>(RefreshOrigin::ue);
            return v[0] >= 0x01 && v[0] <= 0x03;
        case Tag::serviceParameters:
            return v[0] >= 0x01 && v[0] <= 0x03 && v[1] <= 0x02;
        case Tag::hseConfiguration:
            return v[0] <= 3 && v[1] <= 3;
        default:
            return true;
    }
}

tl::expected<IeSet, FormatError> parseTlvs(ByteView tlvs, Command c, Side sender) {
    const std::uint32_t listed = listedTags(c, sender);
    IeSet set;
    std::size_t pos = 0;
    while (pos < tlvs.size()) {
        const std::size_t left = tlvs.size() - pos;
        if (left < 2)
            return tl::unexpected(
                FormatError{DropReason::trailing_octets, Cause::invalid_format, pos});
        const std::uint8_t tag = tlvs[pos];
        const std::size_t len = tlvs[pos + 1];
        if (len > left - 2)
            return tl::unexpected(
                FormatError{DropReason::length_past_end, Cause::invalid_format, pos});
        const ByteView value = tlvs.subspan(pos + 2, len);
        const int idx = tagIndex(tag);
        if (idx < 0) {
            if (tag < 0x80) {
                return tl::unexpected(FormatError{DropReason::unknown_mandatory_tag,
                                                  Cause::unknown_mandatory_ie, pos});
            }
        } else if ((listed & (std::uint32_t{1} << idx)) != 0) {
            const auto t = static_cast<Tag>(tag);
            const std::uint32_t b = std::uint32_t{1} << idx;
            if ((set.present & b) != 0)
                return tl::unexpected(
                    FormatError{DropReason::duplicate_tlv, Cause::invalid_format, pos});
            const SizeRule rule = sizeRuleOf(t);
            if (len < rule.min || len > rule.max) {
                return tl::unexpected(
                    FormatError{DropReason::invalid_ie_length, Cause::invalid_format, pos});
            }
            if (!valueValid(t, value, c, sender)) {
                return tl::unexpected(
                    FormatError{DropReason::value_out_of_range, Cause::invalid_format, pos});
            }
            set.present |= b;
            set.values[static_cast<std::size_t>(idx)] = value;
        }
        pos += 2 + len;
    }
    return set;
}

template <std::size_t N>
std::array<std::uint8_t, N> toArray(ByteView v) noexcept {
    std::array<std::uint8_t, N> a{};
    for (std::size_t i = 0; i < N && i < v.size(); ++i)
        a[i] = v[i];
    return a;
}

std::string_view toText(ByteView v) noexcept {
    return std::string_view(reinterpret_cast<const char*>(v.data()), v.size());
}

tl::unexpected<FormatError> missing(std::size_t end) {
    return tl::unexpected(
        FormatError{DropReason::missing_mandatory_ie, Cause::missing_mandatory_ie, end});
}

bool hasAll(const IeSet& s, std::uint32_t m) noexcept {
    return (s.present & m) == m;
}

// ---- per command ------------------------------------------------------------------------------

tl::expected<Body, FormatError> buildSessionRequest(const IeSet& s, std::size_t end) {
    // A4: 2 SUCI present (0x07, any length) . 3 missing IE (0x03) . 4 PLMN digits (0x01).
    if (s.has(Tag::suci)) {
        return tl::unexpected(
            FormatError{DropReason::suci_not_supported, Cause::unknown_subscriber, end});
    }
    if (!hasAll(s, mask(Tag::imsi, Tag::ueConfiguration, Tag::enterpriseSetup, Tag::ueNonce)))
        return missing(end);
    SessionRequest r;
    r.imsi.octets = toArray<8>(s.get(Tag::imsi));
    const ByteView uc = s.get(Tag::ueConfiguration);
    r.ueConfiguration = UeConfiguration{
        uc[0], uc[1], static_cast<std::uint8_t>(uc[2] & UeConfiguration::kDefinedFlags), uc[3],
        uc[4]};
    r.easId = toText(s.get(Tag::enterpriseSetup));
    r.ueNonce = getBe64(s.get(Tag::ueNonce).data());
    if (s.has(Tag::servingNetwork)) {
        const PlmnId plmn = toArray<3>(s.get(Tag::servingNetwork));
        if (!plmnDigitsValid(plmn)) {
            return tl::unexpected(
                FormatError{DropReason::invalid_plmn, Cause::invalid_format, end});
        }
        r.servingNetwork = plmn;
    }
    return r;
}

HseConfiguration toHseConfiguration(ByteView v) noexcept {
    HseConfiguration c;
    c.cpScheme = static_cast<CounterScheme>(v[0]);
    c.upScheme = static_cast<CounterScheme>(v[1]);
    c.integrityAlg = v[2];
    c.cipheringAlg = v[3];
    c.flags = v[4] & HseConfiguration::kDefinedFlags;
    c.hseId = toText(v.subspan(5));
    return c;
}

tl::expected<Body, FormatError> buildSessionStart(const IeSet& s, std::size_t end) {
    if (!hasAll(s, mask(Tag::keyAgreementUsed, Tag::hseConfiguration, Tag::serviceParameters,
                        Tag::requestChecksum))) {
        return missing(end);
    }
    if (s.has(Tag::rand) != s.has(Tag::autn))
        return missing(end);  // RAND and AUTN come together (4.1) or not at all (4.2)
    SessionStart st;
    if (s.has(Tag::rand)) {
        st.rand = toArray<16>(s.get(Tag::rand));
        st.autn = toArray<16>(s.get(Tag::autn));
    }
    st.keyAgreement = static_cast<KeyAgreement>(s.get(Tag::keyAgreementUsed)[0]);
    st.hseConfiguration = toHseConfiguration(s.get(Tag::hseConfiguration));
    const ByteView sp = s.get(Tag::serviceParameters);
    st.serviceParameters = ServiceParameters{
        static_cast<Service>(sp[0]), static_cast<UpTermination>(sp[1]), getBe32(sp.data() + 2)};
    st.requestChecksum = toArray<8>(s.get(Tag::requestChecksum));
    return st;
}

tl::expected<Body, FormatError> buildManageKeysRequest(const IeSet& s, Side sender,
                                                       std::size_t end) {
    if (sender == Side::ue) {
        if (!s.has(Tag::refreshOrigin))
            return missing(end);
        return UeManageKeysRequest{};  // value already checked to be UE (A3)
    }
    if (!hasAll(s, mask(Tag::rand, Tag::autn, Tag::keyAgreementUsed, Tag::newKeyId,
                        Tag::refreshOrigin))) {
        return missing(end);
    }
    HseManageKeysRequest r;
    r.rand = toArray<16>(s.get(Tag::rand));
    r.autn = toArray<16>(s.get(Tag::autn));
    r.keyAgreement = static_cast<KeyAgreement>(s.get(Tag::keyAgreementUsed)[0]);
    r.newKeyId = s.get(Tag::newKeyId)[0];
    r.refreshOrigin = static_cast<RefreshOrigin>(s.get(Tag::refreshOrigin)[0]);
    return r;
}

tl::expected<Body, FormatError> buildManageKeysResponse(const IeSet& s, Side sender,
                                                        std::size_t end) {
    if (sender == Side::network) {
        if (!hasAll(s, mask(Tag::rand, Tag::autn, Tag::keyAgreementUsed, Tag::newKeyId)))
            return missing(end);
        HseManageKeysResponse r;
        r.rand = toArray<16>(s.get(Tag::rand));
        r.autn = toArray<16>(s.get(Tag::autn));
        r.keyAgreement = static_cast<KeyAgreement>(s.get(Tag::keyAgreementUsed)[0]);
        r.newKeyId = s.get(Tag::newKeyId)[0];
        return r;
    }
    const bool conf = s.has(Tag::keyConfirmation);
    const bool cause = s.has(Tag::cause);
    if (!conf && !cause)
        return missing(end);
    if (cause && static_cast<Cause>(s.get(Tag::cause)[0]) == Cause::synch_failure &&
        !s.has(Tag::auts)) {
        return missing(end);
    }
    if (conf && cause) {
        return tl::unexpected(FormatError{DropReason::conflicting_ies, Cause::invalid_format, end});
    }
    UeManageKeysResponse r;
    if (conf)
        r.keyConfirmation = toArray<8>(s.get(Tag::keyConfirmation));
    if (cause)
        r.cause = static_cast<Cause>(s.get(Tag::cause)[0]);
    if (s.has(Tag::auts))
        r.auts = toArray<14>(s.get(Tag::auts));
    return r;
}

tl::expected<Body, FormatError> buildMessageReject(const IeSet& s, std::size_t end) {
    if (!s.has(Tag::cause))
        return missing(end);
    MessageReject r;
    r.cause = static_cast<Cause>(s.get(Tag::cause)[0]);
    if (r.cause == Cause::synch_failure && !s.has(Tag::auts))
        return missing(end);
    if (r.cause == Cause::congestion && !s.has(Tag::backOff))
        return missing(end);
    if (s.has(Tag::auts))
        r.auts = toArray<14>(s.get(Tag::auts));
    if (s.has(Tag::backOff))
        r.backOff = getBe16(s.get(Tag::backOff).data());
    return r;
}

// ---- encoding ---------------------------------------------------------------------------------

class Writer {
public:
    explicit Writer(MutableByteView out) noexcept : out_(out) {}

    void byte(std::uint8_t b) noexcept {
        if (pos_ < out_.size())
            out_[pos_] = b;
        else
            overflow_ = true;
        ++pos_;
    }
    void bytes(ByteView v) noexcept {
        for (std::uint8_t b : v)
            byte(b);
    }
    void tlv(Tag t, ByteView v) noexcept {
        byte(static_cast<std::uint8_t>(t));
        byte(static_cast<std::uint8_t>(v.size()));
        bytes(v);
    }
    void tlv(Tag t, std::uint8_t v) noexcept { tlv(t, ByteView(&v, 1)); }
    std::size_t size() const noexcept { return pos_; }
    bool overflow() const noexcept { return overflow_; }

private:
    MutableByteView out_;
    std::size_t pos_ = 0;
    bool overflow_ = false;
};

ByteView textBytes(std::string_view s) noexcept {
    return ByteView(reinterpret_cast<const std::uint8_t*>(s.data()), s.size());
}

tl::unexpected<Error> invalid(const char* what) {
    return makeError(EmsdpErrc::invalid_value, what);
}

Result<void> checkKeyAgreement(KeyAgreement ka) {
    if (!keyAgreementValid(static_cast<std::uint8_t>(ka)))
        return invalid("Key agreement used must be 0x01..0x03");
    return {};
}

Result<void> checkNewKeyId(std::uint8_t kid) {
    if (kid < 1 || kid > kMaxKid)
        return invalid("New key ID must be 1..7");
    return {};
}

Result<void> write(Writer& w, const SessionRequest& r) {
    if (r.easId.empty() || r.easId.size() > kMaxIdLength)
        return invalid("EAS Id must have 1..64 octets");
    if (r.servingNetwork && !plmnDigitsValid(*r.servingNetwork))
        return invalid("Serving network has a non-BCD digit");
    w.tlv(Tag::imsi, r.imsi.octets);
    const UeConfiguration& u = r.ueConfiguration;
    const std::uint8_t uc[5] = {u.release, u.keyAgreements,
                                static_cast<std::uint8_t>(u.flags & UeConfiguration::kDefinedFlags),
                                u.integrityAlgs, u.cipheringAlgs};
    w.tlv(Tag::ueConfiguration, uc);
    w.tlv(Tag::enterpriseSetup, textBytes(r.easId));
    if (r.servingNetwork)
        w.tlv(Tag::servingNetwork, *r.servingNetwork);
    std::uint8_t nonce[8];
    putBe64(nonce, r.ueNonce);
    w.tlv(Tag::ueNonce, nonce);
    return {};
}

Result<void> write(Writer& w, const SessionStart& s) {
    if (s.rand.has_value() != s.autn.has_value())
        return invalid("Session Start carries RAND and AUTN together or neither");
    if (auto ok = checkKeyAgreement(s.keyAgreement); !ok)
        return ok;
    const HseConfiguration& c = s.hseConfiguration;
    if (c.hseId.empty() || c.hseId.size() > kMaxIdLength)
        return invalid("HSE Id must have 1..64 octets");
    if (static_cast<std::uint8_t>(c.cpScheme) > 3 || static_cast<std::uint8_t>(c.upScheme) > 3)
        return invalid("counter scheme must be 0..3");
    const ServiceParameters& sp = s.serviceParameters;
    const auto service = static_cast<std::uint8_t>(sp.service);
    const auto term = static_cast<std::uint8_t>(sp.termination);
    if (service < 1 || service > 3 || term > 2)
        return invalid("service or UP termination out of range");
    if (s.rand) {
        w.tlv(Tag::rand, *s.rand);
        w.tlv(Tag::autn, *s.autn);
    }
    w.tlv(Tag::keyAgreementUsed, static_cast<std::uint8_t>(s.keyAgreement));
    std::array<std::uint8_t, 5 + kMaxIdLength> hc{};
    hc[0] = static_cast<std::uint8_t>(c.cpScheme);
    hc[1] = static_cast<std::uint8_t>(c.upScheme);
    hc[2] = c.integrityAlg;
    hc[3] = c.cipheringAlg;
    hc[4] = c.flags & HseConfiguration::kDefinedFlags;
    for (std::size_t i = 0; i < c.hseId.size(); ++i)
        hc[5 + i] = static_cast<std::uint8_t>(c.hseId[i]);
    w.tlv(Tag::hseConfiguration, ByteView(hc.data(), 5 + c.hseId.size()));
    std::uint8_t spv[6] = {service, term, 0, 0, 0, 0};
    putBe32(spv + 2, sp.keySetLifetime);
    w.tlv(Tag::serviceParameters, spv);
    w.tlv(Tag::requestChecksum, s.requestChecksum);
    return {};
}

Result<void> write(Writer&, const SessionStartConfirmation&) {
    return {};
}

Result<void> write(Writer& w, const SessionTerminateRequest& r) {
    if (r.cause)
        w.tlv(Tag::cause, static_cast<std::uint8_t>(*r.cause));
    return {};
}

Result<void> write(Writer&, const SessionTerminateResponse&) {
    return {};
}

Result<void> write(Writer& w, const UeManageKeysRequest&) {
    w.tlv(Tag::refreshOrigin, static_cast<std::uint8_t>(RefreshOrigin::ue));
    return {};
}

Result<void> write(Writer& w, const HseManageKeysRequest& r) {
    if (auto ok = checkKeyAgreement(r.keyAgreement); !ok)
        return ok;
    if (auto ok = checkNewKeyId(r.newKeyId); !ok)
        return ok;
    const auto origin = static_cast<std::uint8_t>(r.refreshOrigin);
    if (origin < 1 || origin > 3)
        return invalid("Refresh origin must be 0x01..0x03");
    w.tlv(Tag::rand, r.rand);
    w.tlv(Tag::autn, r.autn);
    w.tlv(Tag::keyAgreementUsed, static_cast<std::uint8_t>(r.keyAgreement));
    w.tlv(Tag::newKeyId, r.newKeyId);
    w.tlv(Tag::refreshOrigin, origin);
    return {};
}

Result<void> write(Writer& w, const HseManageKeysResponse& r) {
    if (auto ok = checkKeyAgreement(r.keyAgreement); !ok)
        return ok;
    if (auto ok = checkNewKeyId(r.newKeyId); !ok)
        return ok;
    w.tlv(Tag::rand, r.rand);
    w.tlv(Tag::autn, r.autn);
    w.tlv(Tag::keyAgreementUsed, static_cast<std::uint8_t>(r.keyAgreement));
    w.tlv(Tag::newKeyId, r.newKeyId);
    return {};
}

Result<void> write(Writer& w, const UeManageKeysResponse& r) {
    if (r.keyConfirmation.has_value() == r.cause.has_value())
        return invalid("Manage Keys Response from the UE: Key confirmation or Cause");
    if (r.cause == Cause::synch_failure && !r.auts)
        return invalid("cause 0x0B needs AUTS");
    if (r.auts)
        w.tlv(Tag::auts, *r.auts);
    if (r.keyConfirmation)
        w.tlv(Tag::keyConfirmation, *r.keyConfirmation);
    if (r.cause)
        w.tlv(Tag::cause, static_cast<std::uint8_t>(*r.cause));
    return {};
}

Result<void> write(Writer& w, const MessageReject& r) {
    if (r.cause == Cause::synch_failure && !r.auts)
        return invalid("cause 0x0B needs AUTS");
    if (r.cause == Cause::congestion && !r.backOff)
        return invalid("cause 0x0F needs Back-off");
    if (r.auts)
        w.tlv(Tag::auts, *r.auts);
    w.tlv(Tag::cause, static_cast<std::uint8_t>(r.cause));
    if (r.backOff) {
        std::uint8_t b[2];
        putBe16(b, *r.backOff);
        w.tlv(Tag::backOff, b);
    }
    return {};
}

}  // namespace

Command commandOf(const Body& body) noexcept {
    return std::visit(
        Overloaded{
            [](const SessionRequest&) { return Command::sessionRequest; },
            [](const SessionStart&) { return Command::sessionStart; },
            [](const SessionStartConfirmation&) { return Command::sessionStartConfirmation; },
            [](const SessionTerminateRequest&) { return Command::sessionTerminateRequest; },
            [](const SessionTerminateResponse&) { return Command::sessionTerminateResponse; },
            [](const UeManageKeysRequest&) { return Command::manageKeysRequest; },
            [](const HseManageKeysRequest&) { return Command::manageKeysRequest; },
            [](const HseManageKeysResponse&) { return Command::manageKeysResponse; },
            [](const UeManageKeysResponse&) { return Command::manageKeysResponse; },
            [](const MessageReject&) { return Command::messageReject; },
        },
        body);
}

bool sendableBy(const Body& body, Side side) noexcept {
    if (std::holds_alternative<UeManageKeysRequest>(body) ||
        std::holds_alternative<UeManageKeysResponse>(body)) {
        return side == Side::ue;
    }
    if (std::holds_alternative<HseManageKeysRequest>(body) ||
        std::holds_alternative<HseManageKeysResponse>(body)) {
        return side == Side::network;
    }
    return sentBy(commandOf(body), side);
}

tl::expected<Body, FormatError> decodeBody(std::uint8_t command, Side sender, ByteView tlvs) {
    if (!isKnownCommand(command)) {
        return tl::unexpected(FormatError{DropReason::unknown_command, Cause::unknown_command, 0});
    }
    const auto c = static_cast<Command>(command);
    auto set = parseTlvs(tlvs, c, sender);
    if (!set)
        return tl::unexpected(set.error());
    const std::size_t end = tlvs.size();
    switch (c) {
        case Command::sessionRequest:
            return buildSessionRequest(*set, end);
        case Command::sessionStart:
            return buildSessionStart(*set, end);
        case Command::sessionStartConfirmation:
            return SessionStartConfirmation{};
        case Command::sessionTerminateRequest: {
            SessionTerminateRequest r;
            if (set->has(Tag::cause))
                r.cause = static_cast<Cause>(set->get(Tag::cause)[0]);
            return r;
        }
        case Command::sessionTerminateResponse:
            return SessionTerminateResponse{};
        case Command::manageKeysRequest:
            return buildManageKeysRequest(*set, sender, end);
        case Command::manageKeysResponse:
            return buildManageKeysResponse(*set, sender, end);
        case Command::messageReject:
            return buildMessageReject(*set, end);
    }
    return tl::unexpected(FormatError{DropReason::unknown_command, Cause::unknown_command, 0});
}

Result<std::size_t> encodeBody(const Body& body, MutableByteView out) {
    Writer w(out);
    w.byte(static_cast<std::uint8_t>(commandOf(body)));
    auto ok = std::visit([&w](const auto& b) { return write(w, b); }, body);
    if (!ok)
        return makeError(ok.error());
    if (w.overflow())
        return makeError(EmsdpErrc::buffer_too_small, "no room for the EMSDP command and TLVs");
    return w.size();
}

}  // namespace best::emsdp
