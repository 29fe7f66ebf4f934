// The virtual USIM's card logic, free of sockets: a small UICC file system (MF with EF.DIR and
// EF.ICCID, ADF.USIM with EF.IMSI), SELECT / READ BINARY / READ RECORD / VERIFY / GET RESPONSE /
// STATUS, and AUTHENTICATE in 3G context with Milenage and the Annex C SQN array. SEQ_MS is made
// durable (SqnPersistence) before the answer to an accepted AUTHENTICATE is produced.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "common/bytes.h"
#include "common/result.h"
#include "common/secure.h"
#include "crypto/milenage.h"
#include "sim/usim.h"
#include "sim/vusim/sqn_array.h"
#include "sim/vusim/state_file.h"

namespace best::sim::vusim {

enum class ResponseStyle {
    t0,      // like a T=0 card: response data announced by 61xx and fetched by GET RESPONSE;
             // a case 2 command with the wrong Le gets 6Cxx
    direct,  // like a T=1 card: data + 9000 at once
};

struct CardProfile {
    std::string imsi;             // 6..15 digits
    std::string iccid;            // 19 or 20 digits
    Bytes aid;                    // starts with kUsimAidPrefix
    std::optional<PinBlock> pin;  // PIN1; when set, EF.IMSI and AUTHENTICATE need VERIFY
    int pinAttempts = 3;
    ResponseStyle style = ResponseStyle::direct;
    std::size_t getResponseChunk = 0;  // t0: at most this many octets per GET RESPONSE (0: all)
};

// A default USIM AID (A0000000871002 + country FF + application provider FFFFFFFF89 ...).
Bytes defaultUsimAid();

// EF.IMSI / EF.ICCID contents for the given digits.
Result<Bytes> encodeImsi(std::string_view digits);
Result<Bytes> encodeIccid(std::string_view digits);

struct CardCounters {
    std::uint64_t authenticateOk = 0;
    std::uint64_t macFailures = 0;
    std::uint64_t syncFailures = 0;
    std::uint64_t persistFailures = 0;
};

class VirtualUsim {
public:
    // K is used once to key the AES context; the card keeps OPc. `persistence` may be null
    // (nothing durable, for tests only) and must outlive the card.
    static Result<VirtualUsim> create(CardProfile profile, const SubscriberK& k, const Opc& opc,
                                      SqnArray sqn, SqnPersistence* persistence);

    VirtualUsim(VirtualUsim&&) noexcept = default;
    VirtualUsim& operator=(VirtualUsim&&) noexcept = default;

    // The ATR: T=0 only for the t0 style, T=1 for direct.
    Bytes atr() const;
    // vpcd control: power on, reset and power off all return the card to its reset state.
    void reset() noexcept;

    // One command APDU in, one response APDU out (`response` holds at least kMaxResponse).
    std::size_t process(ByteView command, MutableByteView response) noexcept;

    const SqnArray& sqn() const noexcept { return sqn_; }
    const CardCounters& counters() const noexcept { return counters_; }
    ResponseStyle style() const noexcept { return profile_.style; }

private:
    struct Ef {
        std::uint16_t fid = 0;
        bool linear = false;
        bool needsPin = false;
        std::size_t recordLength = 0;
        Bytes content;  // transparent content, or the records back to back
    };
    enum class Df { mf, adf };

    VirtualUsim(CardProfile profile, const SubscriberK& k, const Opc& opc, SqnArray sqn,
                SqnPersistence* persistence);

    std::size_t dispatch(const std::uint8_t* cmd, std::size_t len, MutableByteView out);
    std::size_t select(std::uint8_t p1, std::uint8_t p2, ByteView data, MutableByteView out);
    std::size_t readBinary(std::uint8_t p1, std::uint8_t p2, std::optional<std::size_t> le,
                           MutableByteView out);
    std::size_t readRecord(std::uint8_t p1, std::uint8_t p2, std::optional<std::size_t> le,
                           MutableByteView out);
    std::size_t verify(std::uint8_t p1, std::uint8_t p2, std::optional<ByteView> data,
                       MutableByteView out);
    std::size_t authenticate(std::uint8_t p1, std::uint8_t p2, ByteView data, MutableByteView out);
    std::size_t getResponse(std::optional<std::size_t> le, MutableByteView out);

    // Response data of a case 4 command: 61xx in t0 style, data + 9000 in direct style.
    std::size_t respondCase4(ByteView data, MutableByteView out);
    // Response data of a case 2 command: 6Cxx in t0 style when Le does not match.
    std::size_t respondCase2(ByteView data, std::optional<std::size_t> le, MutableByteView out);
    Bytes fcp(const Ef* ef, Df df) const;
    const Ef* findEf(std::uint16_t fid) const;
    bool pinSatisfied() const noexcept { return !profile_.pin || pinVerified_; }
    void clearPending() noexcept;

    CardProfile profile_;
    crypto::SoftAes128 aes_;
    Opc opc_;
    SqnArray sqn_;
    SqnPersistence* persistence_;
    std::vector<Ef> mfFiles_;
    std::vector<Ef> adfFiles_;

    Df currentDf_ = Df::mf;
    bool adfSelected_ = false;
    const Ef* currentEf_ = nullptr;
    bool pinVerified_ = false;
    int pinAttemptsLeft_ = 3;
    SecureBuffer pending_;  // t0: response data awaiting GET RESPONSE
    std::size_t pendingOffset_ = 0;
    CardCounters counters_;
};

}  // namespace best::sim::vusim
