#include "sim/usim.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>

#include "common/unique_fd.h"
#include "sim/sim_error.h"
#include "sim/tlv.h"

namespace best::sim {
namespace {

constexpr std::uint16_t kFidMf = 0x3F00;
constexpr std::uint16_t kFidDir = 0x2F00;
constexpr std::uint16_t kFidIccid = 0x2FE2;
constexpr std::uint16_t kFidImsi = 0x6F07;
constexpr std::uint16_t kSwMacFailure = 0x9862;

tl::unexpected<Error> swError(std::string_view what, std::uint16_t sw) {
    std::string w(what);
    std::string hex = swHex(sw);
    if (sw == 0x6982)
        return makeError(SimErrc::pin_required,
                         w + ": security status not satisfied (" + hex + "): VERIFY PIN first");
    if (sw == 0x6983)
        return makeError(SimErrc::pin_blocked, w + ": PIN blocked (" + hex + ")");
    if ((sw & 0xFFF0) == 0x63C0)
        return makeError(
            SimErrc::pin_incorrect,
            w + ": PIN incorrect, " + std::to_string(sw & 0x0F) + " attempts left (" + hex + ")");
    if (sw == 0x6A82)
        return makeError(SimErrc::not_found, w + ": file or application not found (" + hex + ")");
    if (sw == 0x6A83)
        return makeError(SimErrc::not_found, w + ": record not found (" + hex + ")");
    return makeError(SimErrc::status_word, w + ": unexpected status word " + hex);
}

// Sizes from an FCP template (TS 102 221 11.1.1.3); zero when the card did not say.
struct FileInfo {
    std::size_t size = 0;  // transparent EF: tag 80
};

FileInfo parseFcp(ByteView data) {
    FileInfo info;
    auto outer = parseTlvs(data);
    if (!outer)
        return info;
    auto fcp = findTlv(*outer, 0x62);
    if (!fcp)
        return info;
    auto inner = parseTlvs(*fcp);
    if (!inner)
        return info;
    if (auto size = findTlv(*inner, 0x80); size && !size->empty() && size->size() <= 4) {
        for (auto b : *size)
            info.size = (info.size << 8) | b;
    }
    return info;
}

bool isDigits(std::string_view s) {
    return std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// Decimal digits from BCD nibbles, low nibble first; F ends the number.
std::string bcdDigits(ByteView bytes, bool skipFirstLow) {
    std::string out;
    for (std::size_t i = 0; i < bytes.size(); ++i) {
        for (int half = 0; half < 2; ++half) {
            if (i == 0 && half == 0 && skipFirstLow)
                continue;
            std::uint8_t nib = half == 0 ? (bytes[i] & 0x0F) : (bytes[i] >> 4);
            if (nib == 0x0F)
                return out;
            if (nib > 9)
                return std::string();
            out.push_back(static_cast<char>('0' + nib));
        }
    }
    return out;
}

}  // namespace

Result<PinBlock> pinBlockFromDigits(std::string_view digits) {
    if (digits.size() < 4 || digits.size() > 8 || !isDigits(digits))
        return makeError(SimErrc::config, "a PIN is 4 to 8 decimal digits");
    PinBlock pin;
    for (std::size_t i = 0; i < 8; ++i)
        pin[i] = i < digits.size() ? static_cast<std::uint8_t>(digits[i]) : 0xFF;
    return pin;
}

Result<PinBlock> readPinFile(const std::string& path) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.isValid())
        return makeError(SimErrc::config, "PIN file " + path + ": " + errnoText(errno));
    std::array<char, 64> buf{};
    ssize_t n = ::read(fd.get(), buf.data(), buf.size());
    if (n < 0) {
        int err = errno;
        return makeError(SimErrc::config, "PIN file " + path + ": " + errnoText(err));
    }
    std::string_view text(buf.data(), static_cast<std::size_t>(n));
    text = text.substr(0, text.find('\n'));
    while (!text.empty() && (text.back() == ' ' || text.back() == '\r' || text.back() == '\t'))
        text.remove_suffix(1);
    while (!text.empty() && (text.front() == ' ' || text.front() == '\t'))
        text.remove_prefix(1);
    auto pin = pinBlockFromDigits(text);
    secureWipe(buf.data(), buf.size());
    if (!pin)
        return makeError(SimErrc::config, "PIN file " + path + ": " + pin.error().message);
    return pin;
}

Result<AuthOutcome> parseAuthenticateResponse(ByteView data) {
    if (data.empty())
        return makeError(SimErrc::bad_response, "AUTHENTICATE answered 9000 without data");
    std::size_t i = 1;
    // Reads one length-prefixed field, checking its length against [minLen, maxLen].
    auto field = [&](std::string_view name, std::size_t minLen,
                     std::size_t maxLen) -> Result<ByteView> {
        if (i >= data.size())
            return makeError(SimErrc::bad_response,
                             "AUTHENTICATE response ends before " + std::string(name));
        std::size_t len = data[i++];
        if (len < minLen || len > maxLen)
            return makeError(SimErrc::bad_response, "AUTHENTICATE response: " + std::string(name) +
                                                        " of " + std::to_string(len) + " octets");
        if (len > data.size() - i)
            return makeError(SimErrc::bad_response,
                             "AUTHENTICATE response: " + std::string(name) + " truncated");
        ByteView v = data.subspan(i, len);
        i += len;
        return v;
    };
    if (data[0] == 0xDB) {
        AuthSuccess ok;
        auto res = field("RES", 4, 16);
        if (!res)
            return makeError(res.error());
        ok.res.assign(res->begin(), res->end());
        auto ck = field("CK", 16, 16);
        if (!ck)
            return makeError(ck.error());
        ok.ck = Ck(*ck);
        auto ik = field("IK", 16, 16);
        if (!ik)
            return makeError(ik.error());
        ok.ik = Ik(*ik);
        if (i < data.size()) {
            auto kc = field("Kc", 8, 8);
            if (!kc)
                return makeError(kc.error());
            ok.kc = Kc(*kc);
        }
        if (i != data.size())
            return makeError(SimErrc::bad_response, "AUTHENTICATE response: trailing octets");
        return Result<AuthOutcome>(tl::in_place, std::in_place_type<AuthSuccess>, std::move(ok));
    }
    if (data[0] == 0xDC) {
        auto auts = field("AUTS", 14, 14);
        if (!auts)
            return makeError(auts.error());
        if (i != data.size())
            return makeError(SimErrc::bad_response, "AUTHENTICATE response: trailing octets");
        AuthSyncFailure sync;
        std::copy(auts->begin(), auts->end(), sync.auts.begin());
        return Result<AuthOutcome>(tl::in_place, std::in_place_type<AuthSyncFailure>, sync);
    }
    char tag[8];
    std::snprintf(tag, sizeof tag, "%02x", data[0]);
    return makeError(SimErrc::bad_response,
                     std::string("AUTHENTICATE response with unknown tag ") + tag);
}

Result<std::string> decodeImsi(ByteView ef) {
    if (ef.size() < 2 || ef[0] == 0 || ef[0] == 0xFF || ef[0] > 8 || ef.size() < 1u + ef[0])
        return makeError(SimErrc::bad_response, "EF.IMSI: bad length octet");
    std::string digits = bcdDigits(ef.subspan(1, ef[0]), true);
    if (digits.size() < 6 || digits.size() > 15)
        return makeError(SimErrc::bad_response, "EF.IMSI: not a 6 to 15 digit IMSI");
    bool odd = (ef[1] & 0x08) != 0;
    if (odd != (digits.size() % 2 == 1))
        return makeError(SimErrc::bad_response, "EF.IMSI: parity bit does not match the digits");
    return digits;
}

Result<std::string> decodeIccid(ByteView ef) {
    std::string digits = bcdDigits(ef, false);
    if (digits.size() < 10)
        return makeError(SimErrc::bad_response, "EF.ICCID: not BCD digits");
    return digits;
}

Result<ResponseApdu> Usim::run(const CommandApdu& c) {
    return exchange(*t_, c);
}

Result<void> Usim::selectFile(std::uint16_t fid) {
    std::uint8_t id[2];
    putBe16(id, fid);
    CommandApdu c{0x00, 0xA4, 0x00, 0x04, ByteView(id, 2), 256};
    auto r = run(c);
    if (!r)
        return makeError(r.error());
    if (!r->ok()) {
        char what[32];
        std::snprintf(what, sizeof what, "SELECT %04x", fid);
        return swError(what, r->sw);
    }
    return {};
}

Result<void> Usim::selectAid(ByteView aid) {
    CommandApdu c{0x00, 0xA4, 0x04, 0x04, aid, 256};
    auto r = run(c);
    if (!r)
        return makeError(r.error());
    if (!r->ok())
        return swError("SELECT USIM by AID", r->sw);
    return {};
}

Result<SecureBuffer> Usim::readBinary(std::uint16_t offset, std::uint16_t length) {
    CommandApdu c{0x00,
                  0xB0,
                  static_cast<std::uint8_t>((offset >> 8) & 0x7F),
                  static_cast<std::uint8_t>(offset),
                  {},
                  length == 0 ? 256 : length};
    auto r = run(c);
    if (!r)
        return makeError(r.error());
    if (!r->ok())
        return swError("READ BINARY", r->sw);
    return std::move(r->data);
}

Result<SecureBuffer> Usim::readRecord(std::uint8_t number) {
    CommandApdu c{0x00, 0xB2, number, 0x04, {}, 256};
    auto r = run(c);
    if (!r)
        return makeError(r.error());
    if (!r->ok())
        return swError("READ RECORD " + std::to_string(number), r->sw);
    return std::move(r->data);
}

Result<Bytes> Usim::findUsimAid() {
    if (auto s = selectFile(kFidMf); !s)
        return makeError(s.error());
    if (auto s = selectFile(kFidDir); !s)
        return makeError(s.error());
    for (int rec = 1; rec <= 254; ++rec) {
        auto data = readRecord(static_cast<std::uint8_t>(rec));
        if (!data) {
            if (data.error().code == static_cast<int>(SimErrc::not_found))
                break;
            return makeError(data.error());
        }
        auto outer = parseTlvs(data->view());
        if (!outer)
            return makeError(SimErrc::bad_response,
                             "EF.DIR record " + std::to_string(rec) + ": " + outer.error().message);
        auto app = findTlv(*outer, 0x61);
        if (!app)
            continue;  // an empty record
        auto inner = parseTlvs(*app);
        if (!inner)
            return makeError(SimErrc::bad_response,
                             "EF.DIR record " + std::to_string(rec) + ": " + inner.error().message);
        auto aid = findTlv(*inner, 0x4F);
        if (aid && aid->size() >= kUsimAidPrefix.size() && aid->size() <= 16 &&
            std::equal(kUsimAidPrefix.begin(), kUsimAidPrefix.end(), aid->begin()))
            return Bytes(aid->begin(), aid->end());
    }
    return makeError(SimErrc::not_found, "no USIM application (AID a0000000871002...) in EF.DIR");
}

Result<void> Usim::verifyPin(const PinBlock& pin) {
    CommandApdu c{0x00, 0x20, 0x00, 0x01, pin.view(), std::nullopt};
    auto r = run(c);
    if (!r)
        return makeError(r.error());
    if (!r->ok())
        return swError("VERIFY PIN", r->sw);
    return {};
}

Result<int> Usim::pinAttemptsLeft() {
    CommandApdu c{0x00, 0x20, 0x00, 0x01, {}, std::nullopt};
    auto r = run(c);
    if (!r)
        return makeError(r.error());
    if ((r->sw & 0xFFF0) == 0x63C0)
        return r->sw & 0x0F;
    if (r->sw == 0x6983)
        return 0;
    if (r->ok())
        return makeError(SimErrc::status_word, "VERIFY PIN: no verification needed (9000)");
    return swError("VERIFY PIN (attempts)", r->sw);
}

Result<std::string> Usim::readImsi() {
    std::uint8_t id[2];
    putBe16(id, kFidImsi);
    CommandApdu sel{0x00, 0xA4, 0x00, 0x04, ByteView(id, 2), 256};
    auto s = run(sel);
    if (!s)
        return makeError(s.error());
    if (!s->ok())
        return swError("SELECT EF.IMSI", s->sw);
    FileInfo info = parseFcp(s->data.view());
    std::size_t size = info.size == 0 || info.size > 256 ? 9 : info.size;
    auto data = readBinary(0, static_cast<std::uint16_t>(size));
    if (!data)
        return makeError(data.error());
    return decodeImsi(data->view());
}

Result<std::string> Usim::readIccid() {
    if (auto s = selectFile(kFidMf); !s)
        return makeError(s.error());
    std::uint8_t id[2];
    putBe16(id, kFidIccid);
    CommandApdu sel{0x00, 0xA4, 0x00, 0x04, ByteView(id, 2), 256};
    auto s = run(sel);
    if (!s)
        return makeError(s.error());
    if (!s->ok())
        return swError("SELECT EF.ICCID", s->sw);
    FileInfo info = parseFcp(s->data.view());
    std::size_t size = info.size == 0 || info.size > 256 ? 10 : info.size;
    auto data = readBinary(0, static_cast<std::uint16_t>(size));
    if (!data)
        return makeError(data.error());
    return decodeIccid(data->view());
}

Result<AuthOutcome> Usim::authenticate(const crypto::Rand& rand, const crypto::Autn& autn) {
    std::array<std::uint8_t, 34> body{};
    body[0] = 16;
    std::copy(rand.begin(), rand.end(), body.begin() + 1);
    body[17] = 16;
    std::copy(autn.begin(), autn.end(), body.begin() + 18);
    CommandApdu c{0x00, 0x88, 0x00, 0x81, ByteView(body), 256};
    auto r = run(c);
    if (!r)
        return makeError(r.error());
    if (r->sw == kSwMacFailure)
        return Result<AuthOutcome>(tl::in_place, std::in_place_type<AuthMacFailure>);
    if (!r->ok())
        return swError("AUTHENTICATE", r->sw);
    return parseAuthenticateResponse(r->data.view());
}

UsimSession::UsimSession(PcscClient client, CardConnection card, std::optional<PinBlock> pin)
    : client_(std::move(client)), card_(std::move(card)), usim_(card_), pin_(std::move(pin)) {}

Result<std::unique_ptr<UsimSession>> UsimSession::open(const SessionOptions& options) {
    auto client = PcscClient::open();
    if (!client)
        return makeError(client.error());
    const std::string& pattern = options.reader.namePattern;
    if (options.cardTimeout.count() > 0) {
        auto any = client->waitForCard(pattern, options.cardTimeout);
        if (!any)
            return makeError(any.error());
    }
    auto names = client->matchingReaders(pattern);
    if (!names)
        return makeError(names.error());
    if (names->empty())
        return makeError(SimErrc::no_reader, "no reader matching '" + pattern + "'");

    std::optional<Error> lastError;
    std::optional<Error> iccidMismatch;
    for (const auto& name : *names) {
        auto card = client->connect(name);
        if (!card) {
            lastError = card.error();
            continue;
        }
        if (options.reader.iccid) {
            Usim probe(*card);
            auto iccid = probe.readIccid();
            if (!iccid) {
                lastError = iccid.error();
                continue;
            }
            if (*iccid != *options.reader.iccid) {
                iccidMismatch = Error{ErrorDomain::sim, static_cast<int>(SimErrc::no_card),
                                      "no card with ICCID " + *options.reader.iccid +
                                          " in readers matching '" + pattern + "'"};
                continue;
            }
        }
        std::unique_ptr<UsimSession> s(
            new UsimSession(std::move(*client), std::move(*card), options.pin));
        if (auto sel = s->selectApplication(); !sel)
            return makeError(sel.error());
        return s;
    }
    if (iccidMismatch)
        return makeError(*iccidMismatch);
    return makeError(lastError.value_or(
        Error{ErrorDomain::sim, static_cast<int>(SimErrc::no_card), "no usable card"}));
}

Result<void> UsimSession::selectApplication() {
    auto aid = usim_.findUsimAid();
    if (!aid)
        return makeError(aid.error());
    aid_ = std::move(*aid);
    if (auto s = usim_.selectAid(aid_); !s)
        return s;
    if (pin_) {
        if (auto v = usim_.verifyPin(*pin_); !v)
            return v;
    }
    return {};
}

template <typename F>
auto UsimSession::withRecovery(F&& f) -> decltype(f()) {
    auto r = f();
    if (r || r.error().code != static_cast<int>(SimErrc::card_reset))
        return r;
    if (auto s = selectApplication(); !s)
        return makeError(s.error());
    return f();
}

Result<AuthOutcome> UsimSession::authenticate(const crypto::Rand& rand, const crypto::Autn& autn) {
    return withRecovery([&] { return usim_.authenticate(rand, autn); });
}

Result<std::string> UsimSession::readImsi() {
    return withRecovery([&] { return usim_.readImsi(); });
}

}  // namespace best::sim
