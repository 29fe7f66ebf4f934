// The USIM application over any ApduTransport (TS 31.102, TS 102 221): find the USIM AID in
// EF.DIR, SELECT it, VERIFY PIN, read EF.IMSI and EF.ICCID, AUTHENTICATE in 3G context.
#pragma once

#include <array>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "common/result.h"
#include "common/secure.h"
#include "crypto/milenage.h"
#include "sim/apdu.h"
#include "sim/pcsc.h"

namespace best::sim {

struct KcTag;
using Kc = Secret<8, KcTag>;
// PIN1 as VERIFY sends it: the digits in ASCII, padded with FF to 8 octets (TS 102 221 9.5.1).
using PinBlock = Secret<8, PinTag>;

// The registered application provider id and application code of a 3GPP USIM (TS 101 220).
inline constexpr std::array<std::uint8_t, 7> kUsimAidPrefix = {0xA0, 0x00, 0x00, 0x00,
                                                               0x87, 0x10, 0x02};

// 4 to 8 decimal digits.
Result<PinBlock> pinBlockFromDigits(std::string_view digits);
// The PIN from a file (first line, surrounding whitespace ignored). The file's text is wiped.
Result<PinBlock> readPinFile(const std::string& path);

struct AuthSuccess {
    Bytes res;  // 4..16 octets (RES is sent to the network anyway; not a key)
    Ck ck;
    Ik ik;
    std::optional<Kc> kc;  // present when the card has GSM access (service 27)
};
struct AuthSyncFailure {
    crypto::Auts auts;
};
struct AuthMacFailure {};
using AuthOutcome = std::variant<AuthSuccess, AuthSyncFailure, AuthMacFailure>;

// Parses the data of a successful AUTHENTICATE (tag DB or DC); lengths are read, not assumed.
Result<AuthOutcome> parseAuthenticateResponse(ByteView data);
// IMSI digits from the 9 octets of EF.IMSI.
Result<std::string> decodeImsi(ByteView ef);
// ICCID digits from EF.ICCID (swapped BCD, F filler).
Result<std::string> decodeIccid(ByteView ef);

class Usim {
public:
    explicit Usim(ApduTransport& transport) : t_(&transport) {}

    // Reads EF.DIR record by record and returns the first AID starting with kUsimAidPrefix.
    Result<Bytes> findUsimAid();
    // SELECT by DF name (P1 04), FCP requested.
    Result<void> selectAid(ByteView aid);
    // VERIFY PIN1 (P2 01). Wrong PIN: SimErrc::pin_incorrect with the attempts left.
    Result<void> verifyPin(const PinBlock& pin);
    // Attempts left for PIN1 (VERIFY without data); 0 when blocked.
    Result<int> pinAttemptsLeft();
    // EF.IMSI (6F07) under the selected ADF.USIM.
    Result<std::string> readImsi();
    // EF.ICCID (2FE2) under the MF; selects the MF first (the ADF must be selected again).
    Result<std::string> readIccid();
    // AUTHENTICATE, 3G context (00 88 00 81).
    Result<AuthOutcome> authenticate(const crypto::Rand& rand, const crypto::Autn& autn);

    // SELECT by file id from the current DF (P1 00), FCP requested.
    Result<void> selectFile(std::uint16_t fid);
    Result<SecureBuffer> readBinary(std::uint16_t offset, std::uint16_t length);
    // One record; SimErrc::not_found when the record does not exist (6A83).
    Result<SecureBuffer> readRecord(std::uint8_t number);

private:
    Result<ResponseApdu> run(const CommandApdu& c);
    ApduTransport* t_;
};

// Where the session finds its card.
struct ReaderSelector {
    std::string namePattern;           // glob or substring of the reader name ("" = any)
    std::optional<std::string> iccid;  // pick the reader whose card has this ICCID
};

struct SessionOptions {
    ReaderSelector reader;
    std::optional<PinBlock> pin;               // VERIFY PIN1 after SELECT when set
    std::chrono::milliseconds cardTimeout{0};  // wait this long for a card to appear
};

// A PC/SC context, the card and the selected USIM application. When the card is reset under
// the session, the next call selects the USIM again (and verifies the PIN) and retries once.
class UsimSession {
public:
    static Result<std::unique_ptr<UsimSession>> open(const SessionOptions& options);

    Result<AuthOutcome> authenticate(const crypto::Rand& rand, const crypto::Autn& autn);
    Result<std::string> readImsi();
    const Bytes& aid() const noexcept { return aid_; }
    CardConnection& card() noexcept { return card_; }
    Usim& usim() noexcept { return usim_; }

    UsimSession(const UsimSession&) = delete;
    UsimSession& operator=(const UsimSession&) = delete;

private:
    UsimSession(PcscClient client, CardConnection card, std::optional<PinBlock> pin);
    Result<void> selectApplication();
    template <typename F>
    auto withRecovery(F&& f) -> decltype(f());

    PcscClient client_;
    CardConnection card_;
    Usim usim_;
    std::optional<PinBlock> pin_;
    Bytes aid_;
};

}  // namespace best::sim
