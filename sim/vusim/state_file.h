// The virtual USIM's SQN_MS state on disk: two fixed-size slots written alternately in place with
// pwrite + fdatasync, each with a generation and a CRC-32, so a write torn by a crash damages at
// most the slot being written and the other slot still holds the previous, complete state.
//
// Slot layout (big-endian). Each slot fills its own 4096-octet block (a multiple of 4096 for
// large arrays), so writing one slot never rewrites the other's page or sector. Slot 0 at
// offset 0, slot 1 right after it:
//    0  8  magic "BVUSIMSQ"
//    8  2  format version (1)
//   10  1  IND bits
//   11  1  reserved (0)
//   12  4  number of entries n = 2^(IND bits)
//   16  8  generation (the valid slot with the higher generation is current)
//   24  8  reserved (0)
//   32 8n  SEQ_MS[IND] for IND = 0 .. n-1
// 32+8n 4  CRC-32 (IEEE 802.3) of octets 0 .. 32+8n-1
//  rest    zero
#pragma once

#include <cstdint>
#include <string>

#include "common/bytes.h"
#include "common/result.h"
#include "common/unique_fd.h"
#include "sim/vusim/sqn_array.h"

namespace best::sim::vusim {

// Where the card keeps SEQ_MS before it answers an AUTHENTICATE.
class SqnPersistence {
public:
    virtual ~SqnPersistence() = default;
    // Durable when it returns success.
    virtual Result<void> persist(const SqnArray& sqn) = 0;
};

std::uint32_t crc32(ByteView data) noexcept;

class SqnStateFile final : public SqnPersistence {
public:
    static constexpr std::size_t kHeaderSize = 32;
    static std::size_t slotSize(unsigned indBits) noexcept;
    // One slot image (for the torn-write tests).
    static Bytes encodeSlot(const SqnArray& sqn, std::uint64_t generation);

    // Opens `path`, or creates it (mode 0600, written completely, then renamed into place) from
    // `initial` when it does not exist. Takes an exclusive flock: one best-vusim per state file.
    // The IND bits in the file must match `initial`'s. Both slots damaged is an error: starting
    // from zero would accept replays.
    static Result<SqnStateFile> open(const std::string& path, const SqnArray& initial);

    SqnStateFile(SqnStateFile&&) noexcept = default;
    SqnStateFile& operator=(SqnStateFile&&) noexcept = default;

    // The state found in the file.
    const SqnArray& loaded() const noexcept { return loaded_; }
    std::uint64_t generation() const noexcept { return generation_; }
    // True when open() found one slot damaged (the other one was used).
    bool recoveredFromDamagedSlot() const noexcept { return damagedSlot_; }
    const std::string& path() const noexcept { return path_; }

    // Writes the next generation into the other slot: pwrite + fdatasync.
    Result<void> persist(const SqnArray& sqn) override;

private:
    SqnStateFile(UniqueFd fd, std::string path, SqnArray loaded, std::uint64_t gen, bool damaged);

    UniqueFd fd_;
    std::string path_;
    SqnArray loaded_;
    std::uint64_t generation_ = 0;
    bool damagedSlot_ = false;
};

}  // namespace best::sim::vusim
