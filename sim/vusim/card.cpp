#include "sim/vusim/card.h"

#include <algorithm>
#include <cstring>
#include <exception>

#include "common/hex.h"
#include "common/log.h"
#include "sim/sim_error.h"

namespace best::sim::vusim {
namespace {

constexpr std::uint16_t kSwOk = 0x9000;
constexpr std::uint16_t kSwWrongLength = 0x6700;
constexpr std::uint16_t kSwSecurity = 0x6982;
constexpr std::uint16_t kSwPinBlocked = 0x6983;
constexpr std::uint16_t kSwIncompatibleFile = 0x6981;
constexpr std::uint16_t kSwConditions = 0x6985;
constexpr std::uint16_t kSwNoEf = 0x6986;
constexpr std::uint16_t kSwBadData = 0x6A80;
constexpr std::uint16_t kSwNotFound = 0x6A82;
constexpr std::uint16_t kSwNoRecord = 0x6A83;
constexpr std::uint16_t kSwBadP1P2 = 0x6A86;
constexpr std::uint16_t kSwNoRefData = 0x6A88;
constexpr std::uint16_t kSwBadOffset = 0x6B00;
constexpr std::uint16_t kSwBadIns = 0x6D00;
constexpr std::uint16_t kSwBadCla = 0x6E00;
constexpr std::uint16_t kSwTechnical = 0x6F00;
constexpr std::uint16_t kSwMacFailure = 0x9862;

constexpr std::uint16_t kFidMf = 0x3F00;
constexpr std::uint16_t kFidAdf = 0x7FFF;
constexpr std::uint16_t kFidDir = 0x2F00;
constexpr std::uint16_t kFidIccid = 0x2FE2;
constexpr std::uint16_t kFidImsi = 0x6F07;
constexpr std::size_t kDirRecordLength = 0x26;

constexpr char kHistorical[] = "BEST-VUSIM";  // 10 historical octets in the ATR

std::size_t sw(MutableByteView out, std::size_t at, std::uint16_t s) {
    putBe16(out.data() + at, s);
    return at + 2;
}

void appendTlv(Bytes& b, std::uint8_t tag, ByteView v) {
    b.push_back(tag);
    b.push_back(static_cast<std::uint8_t>(v.size()));
    b.insert(b.end(), v.begin(), v.end());
}

bool allDigits(std::string_view s) {
    return std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace

Bytes defaultUsimAid() {
    return Bytes{0xA0, 0x00, 0x00, 0x00, 0x87, 0x10, 0x02, 0xFF,
                 0xFF, 0xFF, 0xFF, 0x89, 0x07, 0x09, 0x00, 0x00};
}

Result<Bytes> encodeImsi(std::string_view digits) {
    if (digits.size() < 6 || digits.size() > 15 || !allDigits(digits))
        return makeError(SimErrc::config, "an IMSI is 6 to 15 decimal digits");
    // Nibbles: parity/type (1001 odd, 0001 even), then the digits; F fills the last octet.
    std::vector<std::uint8_t> nib;
    nib.push_back(digits.size() % 2 ? 0x9 : 0x1);
    for (char c : digits)
        nib.push_back(static_cast<std::uint8_t>(c - '0'));
    if (nib.size() % 2)
        nib.push_back(0xF);
    Bytes ef(9, 0xFF);
    ef[0] = static_cast<std::uint8_t>(nib.size() / 2);
    for (std::size_t i = 0; i < nib.size() / 2; ++i)
        ef[1 + i] = static_cast<std::uint8_t>(nib[2 * i] | (nib[2 * i + 1] << 4));
    return ef;
}

Result<Bytes> encodeIccid(std::string_view digits) {
    if (digits.size() < 10 || digits.size() > 20 || !allDigits(digits))
        return makeError(SimErrc::config, "an ICCID is 10 to 20 decimal digits");
    Bytes ef(10, 0xFF);
    for (std::size_t i = 0; i < digits.size(); ++i) {
        std::uint8_t d = static_cast<std::uint8_t>(digits[i] - '0');
        std::uint8_t& b = ef[i / 2];
        b = i % 2 == 0 ? static_cast<std::uint8_t>((b & 0xF0) | d)
                       : static_cast<std::uint8_t>((b & 0x0F) | (d << 4));
    }
    return ef;
}

Result<VirtualUsim> VirtualUsim::create(CardProfile profile, const SubscriberK& k, const Opc& opc,
                                        SqnArray sqn, SqnPersistence* persistence) {
    if (profile.aid.empty())
        profile.aid = defaultUsimAid();
    if (profile.aid.size() < kUsimAidPrefix.size() || profile.aid.size() > 16 ||
        !std::equal(kUsimAidPrefix.begin(), kUsimAidPrefix.end(), profile.aid.begin()))
        return makeError(SimErrc::config,
                         "the USIM AID must start with a0000000871002 and have "
                         "at most 16 octets");
    if (profile.pinAttempts < 1 || profile.pinAttempts > 15)
        return makeError(SimErrc::config, "PIN attempts must be 1 to 15");
    auto imsi = encodeImsi(profile.imsi);
    if (!imsi)
        return makeError(imsi.error());
    auto iccid = encodeIccid(profile.iccid);
    if (!iccid)
        return makeError(iccid.error());
    VirtualUsim card(std::move(profile), k, opc, std::move(sqn), persistence);
    // Probe the AES context once, so a broken OpenSSL shows at start, not at the first APDU.
    std::uint8_t block[16] = {};
    if (auto e = card.aes_.encryptBlock(block, block); !e)
        return makeError(SimErrc::config, "AES-128 under K: " + e.error().message);

    Ef dir;
    dir.fid = kFidDir;
    dir.linear = true;
    dir.recordLength = kDirRecordLength;
    Bytes app;
    appendTlv(app, 0x4F, card.profile_.aid);
    static constexpr char kLabel[] = "BEST vUSIM";
    appendTlv(app, 0x50, ByteView(reinterpret_cast<const std::uint8_t*>(kLabel), 10));
    Bytes rec1;
    appendTlv(rec1, 0x61, app);
    rec1.resize(kDirRecordLength, 0xFF);
    dir.content = rec1;
    dir.content.resize(2 * kDirRecordLength, 0xFF);  // record 2 unused
    card.mfFiles_.push_back(std::move(dir));
    card.mfFiles_.push_back(Ef{kFidIccid, false, false, 0, std::move(*iccid)});
    card.adfFiles_.push_back(Ef{kFidImsi, false, true, 0, std::move(*imsi)});
    return card;
}

VirtualUsim::VirtualUsim(CardProfile profile, const SubscriberK& k, const Opc& opc, SqnArray sqn,
                         SqnPersistence* persistence)
    : profile_(std::move(profile)),
      aes_(k),
      opc_(opc),
      sqn_(std::move(sqn)),
      persistence_(persistence),
      pinAttemptsLeft_(profile_.pinAttempts) {}

Bytes VirtualUsim::atr() const {
    // t0: TS, T0 (no interface bytes: T=0 only), 10 historical octets.
    // direct: TS, T0 (TD1 follows), TD1 (T=1, nothing more), 10 historical octets, TCK.
    const bool t0 = profile_.style == ResponseStyle::t0;
    std::array<std::uint8_t, 14> a{};
    std::size_t n = 0;
    a[n++] = 0x3B;
    a[n++] = t0 ? 0x0A : 0x8A;
    if (!t0)
        a[n++] = 0x01;
    for (std::size_t i = 0; i < 10; ++i)
        a[n++] = static_cast<std::uint8_t>(kHistorical[i]);
    if (!t0) {
        std::uint8_t tck = 0;
        for (std::size_t i = 1; i < n; ++i)
            tck ^= a[i];
        a[n++] = tck;
    }
    return Bytes(a.begin(), a.begin() + static_cast<std::ptrdiff_t>(n));
}

void VirtualUsim::reset() noexcept {
    currentDf_ = Df::mf;
    adfSelected_ = false;
    currentEf_ = nullptr;
    pinVerified_ = false;
    clearPending();
}

void VirtualUsim::clearPending() noexcept {
    pending_.clear();
    pendingOffset_ = 0;
}

std::size_t VirtualUsim::process(ByteView command, MutableByteView response) noexcept {
    if (response.size() < kMaxResponse)
        return 0;
    try {
        return dispatch(command.data(), command.size(), response);
    } catch (const std::exception& e) {
        log::error("vusim", std::string("command failed: ") + e.what());
    } catch (...) {
        log::error("vusim", "command failed");
    }
    return sw(response, 0, kSwTechnical);
}

std::size_t VirtualUsim::dispatch(const std::uint8_t* cmd, std::size_t len, MutableByteView out) {
    if (len < 4)
        return sw(out, 0, kSwWrongLength);
    const std::uint8_t cla = cmd[0], ins = cmd[1], p1 = cmd[2], p2 = cmd[3];
    std::optional<ByteView> data;
    std::optional<std::size_t> le;
    if (len == 5) {
        le = cmd[4] == 0 ? 256 : cmd[4];
    } else if (len > 5) {
        const std::size_t lc = cmd[4];
        if (lc == 0)
            return sw(out, 0, kSwWrongLength);  // no extended APDUs
        if (len == 5 + lc) {
            data = ByteView(cmd + 5, lc);
        } else if (len == 6 + lc) {
            data = ByteView(cmd + 5, lc);
            le = cmd[5 + lc] == 0 ? 256 : cmd[5 + lc];
        } else {
            return sw(out, 0, kSwWrongLength);
        }
    }
    const bool classOk = (cla & 0xF0) == 0x00 || (cla & 0xF0) == 0x80;
    if (!classOk)
        return sw(out, 0, kSwBadCla);
    if (ins != 0xC0)
        clearPending();
    switch (ins) {
        case 0xA4:
            if (!data)
                return sw(out, 0, kSwWrongLength);
            return select(p1, p2, *data, out);
        case 0xB0:
            return readBinary(p1, p2, le, out);
        case 0xB2:
            return readRecord(p1, p2, le, out);
        case 0x20:
            return verify(p1, p2, data, out);
        case 0x88:
            if (!data)
                return sw(out, 0, kSwWrongLength);
            return authenticate(p1, p2, *data, out);
        case 0xC0:
            return getResponse(le, out);
        case 0xF2:  // STATUS
            if (p2 == 0x0C)
                return sw(out, 0, kSwOk);
            return respondCase2(fcp(nullptr, currentDf_), le, out);
        default:
            return sw(out, 0, kSwBadIns);
    }
}

const VirtualUsim::Ef* VirtualUsim::findEf(std::uint16_t fid) const {
    const auto& files = currentDf_ == Df::mf ? mfFiles_ : adfFiles_;
    for (const auto& f : files)
        if (f.fid == fid)
            return &f;
    return nullptr;
}

Bytes VirtualUsim::fcp(const Ef* ef, Df df) const {
    Bytes inner;
    std::uint8_t fid[2];
    if (ef) {
        if (ef->linear) {
            const std::uint8_t d[5] = {
                0x42, 0x21, 0x00, static_cast<std::uint8_t>(ef->recordLength),
                static_cast<std::uint8_t>(ef->content.size() / ef->recordLength)};
            appendTlv(inner, 0x82, d);
        } else {
            const std::uint8_t d[2] = {0x41, 0x21};
            appendTlv(inner, 0x82, d);
        }
        putBe16(fid, ef->fid);
        appendTlv(inner, 0x83, fid);
        std::uint8_t size[2];
        putBe16(size, static_cast<std::uint16_t>(ef->content.size()));
        appendTlv(inner, 0x80, size);
    } else {
        const std::uint8_t d[2] = {0x78, 0x21};
        appendTlv(inner, 0x82, d);
        putBe16(fid, df == Df::mf ? kFidMf : kFidAdf);
        appendTlv(inner, 0x83, fid);
        if (df == Df::adf)
            appendTlv(inner, 0x84, profile_.aid);
    }
    const std::uint8_t lcsi = 0x05;  // operational, activated
    appendTlv(inner, 0x8A, ByteView(&lcsi, 1));
    Bytes out;
    appendTlv(out, 0x62, inner);
    return out;
}

std::size_t VirtualUsim::respondCase4(ByteView data, MutableByteView out) {
    const std::size_t n = std::min<std::size_t>(data.size(), 256);
    if (n == 0)
        return sw(out, 0, kSwOk);
    if (profile_.style == ResponseStyle::t0) {
        pending_ = SecureBuffer(data.first(n));
        pendingOffset_ = 0;
        return sw(out, 0, static_cast<std::uint16_t>(0x6100 | (n & 0xFF)));
    }
    std::copy_n(data.begin(), n, out.begin());
    return sw(out, n, kSwOk);
}

std::size_t VirtualUsim::respondCase2(ByteView data, std::optional<std::size_t> le,
                                      MutableByteView out) {
    const std::size_t avail = std::min<std::size_t>(data.size(), 256);
    const std::size_t want = le.value_or(256);
    if (avail == 0)
        return sw(out, 0, kSwOk);
    if (profile_.style == ResponseStyle::t0 && want != avail)
        return sw(out, 0, static_cast<std::uint16_t>(0x6C00 | (avail & 0xFF)));
    const std::size_t n = std::min(want, avail);
    std::copy_n(data.begin(), n, out.begin());
    return sw(out, n, kSwOk);
}

std::size_t VirtualUsim::getResponse(std::optional<std::size_t> le, MutableByteView out) {
    if (pending_.empty() || pendingOffset_ >= pending_.size())
        return sw(out, 0, kSwConditions);
    const std::size_t remaining = pending_.size() - pendingOffset_;
    const std::size_t want = le.value_or(256);
    if (want > remaining)
        return sw(out, 0, static_cast<std::uint16_t>(0x6C00 | (remaining & 0xFF)));
    std::size_t n = want;
    if (profile_.getResponseChunk > 0)
        n = std::min(n, profile_.getResponseChunk);
    std::copy_n(pending_.data() + pendingOffset_, n, out.begin());
    pendingOffset_ += n;
    const std::size_t rest = pending_.size() - pendingOffset_;
    if (rest == 0) {
        clearPending();
        return sw(out, n, kSwOk);
    }
    return sw(out, n, static_cast<std::uint16_t>(0x6100 | (rest & 0xFF)));
}

std::size_t VirtualUsim::select(std::uint8_t p1, std::uint8_t p2, ByteView data,
                                MutableByteView out) {
    const bool wantFcp = (p2 & 0x0C) == 0x04;
    if (!wantFcp && (p2 & 0x0C) != 0x0C)
        return sw(out, 0, kSwBadP1P2);
    if (p1 == 0x00) {
        if (data.size() != 2)
            return sw(out, 0, kSwWrongLength);
        const std::uint16_t fid = getBe16(data.data());
        if (fid == kFidMf) {
            currentDf_ = Df::mf;
            currentEf_ = nullptr;
        } else if (fid == kFidAdf) {
            if (!adfSelected_)
                return sw(out, 0, kSwNotFound);
            currentDf_ = Df::adf;
            currentEf_ = nullptr;
        } else {
            const Ef* ef = findEf(fid);
            if (!ef)
                return sw(out, 0, kSwNotFound);
            currentEf_ = ef;
        }
    } else if (p1 == 0x04) {
        if (data.empty() || data.size() > profile_.aid.size() ||
            !std::equal(data.begin(), data.end(), profile_.aid.begin()))
            return sw(out, 0, kSwNotFound);
        currentDf_ = Df::adf;
        adfSelected_ = true;
        currentEf_ = nullptr;
    } else {
        return sw(out, 0, kSwBadP1P2);
    }
    if (!wantFcp)
        return sw(out, 0, kSwOk);
    return respondCase4(fcp(currentEf_, currentDf_), out);
}

std::size_t VirtualUsim::readBinary(std::uint8_t p1, std::uint8_t p2, std::optional<std::size_t> le,
                                    MutableByteView out) {
    if (p1 & 0x80)
        return sw(out, 0, kSwBadP1P2);  // short file identifiers are not supported
    if (!currentEf_)
        return sw(out, 0, kSwNoEf);
    if (currentEf_->linear)
        return sw(out, 0, kSwIncompatibleFile);
    if (currentEf_->needsPin && !pinSatisfied())
        return sw(out, 0, kSwSecurity);
    const std::size_t offset = (std::size_t{p1} << 8) | p2;
    if (offset > currentEf_->content.size())
        return sw(out, 0, kSwBadOffset);
    return respondCase2(ByteView(currentEf_->content).subspan(offset), le, out);
}

std::size_t VirtualUsim::readRecord(std::uint8_t p1, std::uint8_t p2, std::optional<std::size_t> le,
                                    MutableByteView out) {
    if (!currentEf_)
        return sw(out, 0, kSwNoEf);
    if (!currentEf_->linear)
        return sw(out, 0, kSwIncompatibleFile);
    if (currentEf_->needsPin && !pinSatisfied())
        return sw(out, 0, kSwSecurity);
    if (p2 != 0x04)
        return sw(out, 0, kSwBadP1P2);  // absolute mode only
    const std::size_t count = currentEf_->content.size() / currentEf_->recordLength;
    if (p1 == 0 || p1 > count)
        return sw(out, 0, kSwNoRecord);
    return respondCase2(ByteView(currentEf_->content)
                            .subspan((p1 - 1) * currentEf_->recordLength, currentEf_->recordLength),
                        le, out);
}

std::size_t VirtualUsim::verify(std::uint8_t p1, std::uint8_t p2, std::optional<ByteView> data,
                                MutableByteView out) {
    if (p1 != 0x00)
        return sw(out, 0, kSwBadP1P2);
    if (p2 != 0x01)
        return sw(out, 0, kSwNoRefData);
    if (!profile_.pin)
        return sw(out, 0, data ? kSwNoRefData : kSwOk);
    if (pinAttemptsLeft_ == 0)
        return sw(out, 0, kSwPinBlocked);
    if (!data) {
        if (pinVerified_)
            return sw(out, 0, kSwOk);
        return sw(out, 0, static_cast<std::uint16_t>(0x63C0 | pinAttemptsLeft_));
    }
    if (data->size() != PinBlock::kSize)
        return sw(out, 0, kSwWrongLength);
    if (PinBlock(*data).equals(*profile_.pin)) {
        pinVerified_ = true;
        pinAttemptsLeft_ = profile_.pinAttempts;
        return sw(out, 0, kSwOk);
    }
    pinVerified_ = false;
    --pinAttemptsLeft_;
    if (pinAttemptsLeft_ == 0)
        return sw(out, 0, kSwPinBlocked);
    return sw(out, 0, static_cast<std::uint16_t>(0x63C0 | pinAttemptsLeft_));
}

std::size_t VirtualUsim::authenticate(std::uint8_t p1, std::uint8_t p2, ByteView data,
                                      MutableByteView out) {
    if (currentDf_ != Df::adf)
        return sw(out, 0, kSwConditions);
    if (!pinSatisfied())
        return sw(out, 0, kSwSecurity);
    if (p1 != 0x00 || p2 != 0x81)
        return sw(out, 0, kSwBadP1P2);  // 3G context only
    if (data.size() != 34)
        return sw(out, 0, kSwWrongLength);
    if (data[0] != 16 || data[17] != 16)
        return sw(out, 0, kSwBadData);
    crypto::Rand rand;
    crypto::Autn autn;
    std::copy_n(data.begin() + 1, 16, rand.begin());
    std::copy_n(data.begin() + 18, 16, autn.begin());

    auto opened = crypto::openAutn(aes_, opc_, rand, autn);
    if (!opened) {
        log::error("vusim", "AUTHENTICATE: " + opened.error().describe());
        return sw(out, 0, kSwTechnical);
    }
    if (!opened->macOk) {  // MAC before freshness: a bad MAC never touches SEQ_MS
        ++counters_.macFailures;
        return sw(out, 0, kSwMacFailure);
    }
    const std::uint64_t sqn = crypto::sqnToInt(opened->sqn);
    const Freshness verdict = sqn_.check(sqn);
    if (verdict == Freshness::fresh) {
        SqnArray next = sqn_;
        next.accept(sqn);
        if (persistence_) {
            if (auto p = persistence_->persist(next); !p) {
                ++counters_.persistFailures;
                log::error("vusim",
                           "AUTHENTICATE refused: SQN state not durable: " + p.error().describe());
                return sw(out, 0, kSwTechnical);
            }
        }
        sqn_ = std::move(next);
        ++counters_.authenticateOk;
        std::array<std::uint8_t, 1 + 1 + 8 + 1 + 16 + 1 + 16> r{};
        std::size_t i = 0;
        r[i++] = 0xDB;
        r[i++] = 8;
        i = static_cast<std::size_t>(std::copy(opened->res.begin(), opened->res.end(),
                                               r.begin() + static_cast<std::ptrdiff_t>(i)) -
                                     r.begin());
        r[i++] = 16;
        std::copy_n(opened->ck.data(), 16, r.begin() + static_cast<std::ptrdiff_t>(i));
        i += 16;
        r[i++] = 16;
        std::copy_n(opened->ik.data(), 16, r.begin() + static_cast<std::ptrdiff_t>(i));
        i += 16;
        std::size_t n = respondCase4(ByteView(r.data(), i), out);
        secureWipe(r.data(), r.size());
        return n;
    }
    ++counters_.syncFailures;
    auto auts = crypto::buildAuts(aes_, opc_, rand, crypto::sqnFromInt(sqn_.highestSqn()));
    if (!auts) {
        log::error("vusim", "AUTHENTICATE: " + auts.error().describe());
        return sw(out, 0, kSwTechnical);
    }
    std::array<std::uint8_t, 16> r{};
    r[0] = 0xDC;
    r[1] = 14;
    std::copy(auts->begin(), auts->end(), r.begin() + 2);
    return respondCase4(r, out);
}

}  // namespace best::sim::vusim
