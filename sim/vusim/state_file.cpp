#include "sim/vusim/state_file.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <optional>

#include "sim/sim_error.h"

namespace best::sim::vusim {
namespace {

constexpr char kMagic[8] = {'B', 'V', 'U', 'S', 'I', 'M', 'S', 'Q'};
constexpr std::uint16_t kVersion = 1;

constexpr std::array<std::uint32_t, 256> makeCrcTable() {
    std::array<std::uint32_t, 256> t{};
    for (std::uint32_t i = 0; i < 256; ++i) {
        std::uint32_t c = i;
        for (int k = 0; k < 8; ++k)
            c = (c & 1) ? (0xEDB88320u ^ (c >> 1)) : (c >> 1);
        t[i] = c;
    }
    return t;
}
constexpr auto kCrcTable = makeCrcTable();

struct Slot {
    unsigned indBits = 0;
    std::uint64_t generation = 0;
    std::vector<std::uint64_t> seqs;
};

std::optional<Slot> decodeSlot(ByteView s) {
    if (s.size() < SqnStateFile::kHeaderSize + 4)
        return std::nullopt;
    if (std::memcmp(s.data(), kMagic, 8) != 0 || getBe16(s.data() + 8) != kVersion)
        return std::nullopt;
    Slot slot;
    slot.indBits = s[10];
    if (slot.indBits > kMaxIndBits)
        return std::nullopt;
    std::uint32_t n = getBe32(s.data() + 12);
    if (n != (1u << slot.indBits))
        return std::nullopt;
    std::size_t body = SqnStateFile::kHeaderSize + 8 * std::size_t{n};
    if (body + 4 > s.size())
        return std::nullopt;
    if (crc32(s.first(body)) != getBe32(s.data() + body))
        return std::nullopt;
    slot.generation = getBe64(s.data() + 16);
    slot.seqs.resize(n);
    for (std::uint32_t i = 0; i < n; ++i)
        slot.seqs[i] = getBe64(s.data() + SqnStateFile::kHeaderSize + 8 * std::size_t{i});
    return slot;
}

Result<void> writeAll(int fd, ByteView data, off_t offset, const std::string& path) {
    std::size_t done = 0;
    while (done < data.size()) {
        ssize_t n =
            ::pwrite(fd, data.data() + done, data.size() - done, offset + static_cast<off_t>(done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return makeError(SimErrc::io, "pwrite " + path + ": " + errnoText(errno));
        done += static_cast<std::size_t>(n);
    }
    return {};
}

Result<void> fsyncDirOf(const std::string& path) {
    auto slash = path.rfind('/');
    std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
    UniqueFd d(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!d.isValid() || ::fsync(d.get()) != 0)
        return makeError(SimErrc::io, "fsync directory " + dir + ": " + errnoText(errno));
    return {};
}

Result<void> createFile(const std::string& path, const SqnArray& initial) {
    std::string tmp = path + ".new";
    ::unlink(tmp.c_str());
    UniqueFd fd(::open(tmp.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (!fd.isValid())
        return makeError(SimErrc::io, "create " + tmp + ": " + errnoText(errno));
    Bytes image = SqnStateFile::encodeSlot(initial, 0);
    Bytes second = SqnStateFile::encodeSlot(initial, 1);
    image.insert(image.end(), second.begin(), second.end());
    if (auto w = writeAll(fd.get(), image, 0, tmp); !w)
        return w;
    if (::fsync(fd.get()) != 0)
        return makeError(SimErrc::io, "fsync " + tmp + ": " + errnoText(errno));
    if (::rename(tmp.c_str(), path.c_str()) != 0)
        return makeError(SimErrc::io, "rename " + tmp + ": " + errnoText(errno));
    return fsyncDirOf(path);
}

}  // namespace

std::uint32_t crc32(ByteView data) noexcept {
    std::uint32_t c = 0xFFFFFFFFu;
    for (auto b : data)
        c = kCrcTable[(c ^ b) & 0xFF] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

std::size_t SqnStateFile::slotSize(unsigned indBits) noexcept {
    std::size_t need = kHeaderSize + 8 * (std::size_t{1} << indBits) + 4;
    return (need + 4095) / 4096 * 4096;
}

Bytes SqnStateFile::encodeSlot(const SqnArray& sqn, std::uint64_t generation) {
    Bytes s(slotSize(sqn.indBits()), 0);
    std::memcpy(s.data(), kMagic, 8);
    putBe16(s.data() + 8, kVersion);
    s[10] = static_cast<std::uint8_t>(sqn.indBits());
    putBe32(s.data() + 12, static_cast<std::uint32_t>(sqn.size()));
    putBe64(s.data() + 16, generation);
    for (std::size_t i = 0; i < sqn.size(); ++i)
        putBe64(s.data() + kHeaderSize + 8 * i, sqn.seq(i));
    std::size_t body = kHeaderSize + 8 * sqn.size();
    putBe32(s.data() + body, crc32(ByteView(s.data(), body)));
    return s;
}

SqnStateFile::SqnStateFile(UniqueFd fd, std::string path, SqnArray loaded, std::uint64_t gen,
                           bool damaged)
    : fd_(std::move(fd)),
      path_(std::move(path)),
      loaded_(std::move(loaded)),
      generation_(gen),
      damagedSlot_(damaged) {}

Result<SqnStateFile> SqnStateFile::open(const std::string& path, const SqnArray& initial) {
    UniqueFd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
    if (!fd.isValid() && errno == ENOENT) {
        if (auto c = createFile(path, initial); !c)
            return makeError(c.error());
        fd.reset(::open(path.c_str(), O_RDWR | O_CLOEXEC));
    }
    if (!fd.isValid())
        return makeError(SimErrc::state, "open state file " + path + ": " + errnoText(errno));
    if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
        if (errno == EWOULDBLOCK)
            return makeError(SimErrc::state,
                             "state file " + path + " is in use by another best-vusim");
        return makeError(SimErrc::state, "flock " + path + ": " + errnoText(errno));
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0)
        return makeError(SimErrc::state, "stat " + path + ": " + errnoText(errno));
    const std::size_t expected = 2 * slotSize(initial.indBits());
    if (static_cast<std::size_t>(st.st_size) != expected)
        return makeError(SimErrc::state, "state file " + path + " has " +
                                             std::to_string(st.st_size) + " octets, expected " +
                                             std::to_string(expected) + " for " +
                                             std::to_string(initial.indBits()) + " IND bits");
    Bytes image(expected);
    std::size_t got = 0;
    while (got < expected) {
        ssize_t n = ::pread(fd.get(), image.data() + got, expected - got, static_cast<off_t>(got));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return makeError(SimErrc::state, "read " + path + ": " + errnoText(errno));
        got += static_cast<std::size_t>(n);
    }
    const std::size_t half = expected / 2;
    auto a = decodeSlot(ByteView(image).first(half));
    auto b = decodeSlot(ByteView(image).subspan(half));
    for (const auto* s : {&a, &b})
        if (*s && (*s)->indBits != initial.indBits())
            return makeError(SimErrc::state, "state file " + path + " holds " +
                                                 std::to_string((*s)->indBits) +
                                                 " IND bits, the configuration says " +
                                                 std::to_string(initial.indBits()));
    if (!a && !b)
        return makeError(SimErrc::state, "both slots of state file " + path +
                                             " are damaged; refusing to start from zero (that "
                                             "would accept replayed SQNs)");
    const Slot& cur = !b ? *a : !a ? *b : (a->generation >= b->generation ? *a : *b);
    SqnArray loaded(initial.indBits(), initial.delta());
    if (auto s = loaded.setSeqs(cur.seqs); !s)
        return makeError(SimErrc::state, "state file " + path + ": " + s.error().message);
    return SqnStateFile(std::move(fd), path, std::move(loaded), cur.generation, !a || !b);
}

Result<void> SqnStateFile::persist(const SqnArray& sqn) {
    const std::uint64_t next = generation_ + 1;
    Bytes slot = encodeSlot(sqn, next);
    const off_t offset = static_cast<off_t>((next % 2) * slot.size());
    if (auto w = writeAll(fd_.get(), slot, offset, path_); !w)
        return w;
    if (::fdatasync(fd_.get()) != 0)
        return makeError(SimErrc::io, "fdatasync " + path_ + ": " + errnoText(errno));
    generation_ = next;
    return {};
}

}  // namespace best::sim::vusim
