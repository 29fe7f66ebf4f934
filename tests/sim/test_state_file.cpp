// The SQN_MS state file: two alternating checksummed slots; a torn write loses nothing.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "common/hex.h"
#include "common/unique_fd.h"
#include "sim/sim_error.h"
#include "sim/usim.h"
#include "sim/vusim/card.h"
#include "sim/vusim/state_file.h"
#include "tests/sim/support.h"

namespace best::sim::vusim {
namespace {

namespace fs = std::filesystem;

class StateFileTest : public ::testing::Test {
protected:
    void SetUp() override {
        std::string templ = (fs::temp_directory_path() / "best-sqn-test.XXXXXX").string();
        ASSERT_NE(::mkdtemp(templ.data()), nullptr);
        dir_ = templ;
        path_ = dir_ + "/sqn.state";
    }
    void TearDown() override {
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }
    static SqnArray arrayWith(std::uint64_t seq7) {
        SqnArray a;
        EXPECT_TRUE(a.setSeq(7, seq7));
        return a;
    }
    // Overwrites `len` octets of slot `slot` at `offsetInSlot` with `data`.
    void writeInto(int slot, std::size_t offsetInSlot, ByteView data) {
        UniqueFd fd(::open(path_.c_str(), O_WRONLY));
        ASSERT_TRUE(fd.isValid());
        const off_t at = static_cast<off_t>(slot * SqnStateFile::slotSize(5) + offsetInSlot);
        ASSERT_EQ(::pwrite(fd.get(), data.data(), data.size(), at),
                  static_cast<ssize_t>(data.size()));
    }
    std::string dir_;
    std::string path_;
};

TEST(Crc32, CheckValue) {
    const std::string s = "123456789";
    EXPECT_EQ(crc32(ByteView(reinterpret_cast<const std::uint8_t*>(s.data()), s.size())),
              0xCBF43926u);
}

TEST_F(StateFileTest, CreatedFromInitialWithMode0600) {
    auto f = SqnStateFile::open(path_, arrayWith(42));
    ASSERT_TRUE(f) << f.error().describe();
    EXPECT_EQ(f->loaded().seq(7), 42u);
    EXPECT_FALSE(f->recoveredFromDamagedSlot());
    struct stat st {};
    ASSERT_EQ(::stat(path_.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    EXPECT_EQ(static_cast<std::size_t>(st.st_size), 2 * SqnStateFile::slotSize(5));
    EXPECT_EQ(SqnStateFile::slotSize(5), 4096u);
    EXPECT_EQ(SqnStateFile::slotSize(8), 4096u);
    EXPECT_FALSE(fs::exists(path_ + ".new"));
}

TEST_F(StateFileTest, PersistAlternatesAndReopens) {
    {
        auto f = SqnStateFile::open(path_, arrayWith(1));
        ASSERT_TRUE(f);
        const std::uint64_t g = f->generation();
        ASSERT_TRUE(f->persist(arrayWith(2)));
        ASSERT_TRUE(f->persist(arrayWith(3)));
        EXPECT_EQ(f->generation(), g + 2);
    }
    auto f = SqnStateFile::open(path_, arrayWith(999));  // initial is ignored: the file exists
    ASSERT_TRUE(f) << f.error().describe();
    EXPECT_EQ(f->loaded().seq(7), 3u);
    EXPECT_FALSE(f->recoveredFromDamagedSlot());
}

TEST_F(StateFileTest, TornWriteInTheSlotBeingWrittenLosesNothing) {
    std::uint64_t g = 0;
    {
        auto f = SqnStateFile::open(path_, arrayWith(10));
        ASSERT_TRUE(f);
        ASSERT_TRUE(f->persist(arrayWith(11)));  // the last state whose answer was sent
        g = f->generation();
    }
    // The crash: generation g+1 half written into its slot, fdatasync never returned, so the
    // card never answered with it.
    Bytes next = SqnStateFile::encodeSlot(arrayWith(12), g + 1);
    writeInto(static_cast<int>((g + 1) % 2), 0, ByteView(next).first(40));
    {
        auto f = SqnStateFile::open(path_, arrayWith(0));
        ASSERT_TRUE(f) << f.error().describe();
        EXPECT_EQ(f->loaded().seq(7), 11u);
        EXPECT_EQ(f->generation(), g);
        EXPECT_TRUE(f->recoveredFromDamagedSlot());
        // The next write goes into the damaged slot and repairs it.
        ASSERT_TRUE(f->persist(arrayWith(13)));
    }
    auto f = SqnStateFile::open(path_, arrayWith(0));
    ASSERT_TRUE(f);
    EXPECT_EQ(f->loaded().seq(7), 13u);
    EXPECT_FALSE(f->recoveredFromDamagedSlot());
}

TEST_F(StateFileTest, TornTailOfASlotIsDetected) {
    std::uint64_t g = 0;
    {
        auto f = SqnStateFile::open(path_, arrayWith(20));
        ASSERT_TRUE(f);
        ASSERT_TRUE(f->persist(arrayWith(21)));
        g = f->generation();
    }
    // Only the header of generation g+1 reached the disk: magic and generation look right,
    // the entries and CRC are from the old slot.
    Bytes next = SqnStateFile::encodeSlot(arrayWith(22), g + 1);
    writeInto(static_cast<int>((g + 1) % 2), 0, ByteView(next).first(SqnStateFile::kHeaderSize));
    auto f = SqnStateFile::open(path_, arrayWith(0));
    ASSERT_TRUE(f);
    EXPECT_EQ(f->loaded().seq(7), 21u);
}

TEST_F(StateFileTest, DamagedOlderSlotIsIgnored) {
    std::uint64_t g = 0;
    {
        auto f = SqnStateFile::open(path_, arrayWith(30));
        ASSERT_TRUE(f);
        ASSERT_TRUE(f->persist(arrayWith(31)));
        g = f->generation();
    }
    const std::uint8_t junk[4] = {0xDE, 0xAD, 0xBE, 0xEF};
    writeInto(static_cast<int>((g + 1) % 2), 100, junk);  // the older slot
    auto f = SqnStateFile::open(path_, arrayWith(0));
    ASSERT_TRUE(f);
    EXPECT_EQ(f->loaded().seq(7), 31u);
    EXPECT_TRUE(f->recoveredFromDamagedSlot());
}

TEST_F(StateFileTest, BothSlotsDamagedRefusesToStart) {
    { ASSERT_TRUE(SqnStateFile::open(path_, arrayWith(5))); }
    const std::uint8_t junk[1] = {0x00};
    writeInto(0, 0, junk);
    writeInto(1, 0, junk);
    auto f = SqnStateFile::open(path_, arrayWith(5));
    ASSERT_FALSE(f);
    EXPECT_EQ(f.error().code, static_cast<int>(SimErrc::state));
    EXPECT_NE(f.error().message.find("both slots"), std::string::npos);
}

TEST_F(StateFileTest, IndBitsAndSizeMustMatch) {
    { ASSERT_TRUE(SqnStateFile::open(path_, arrayWith(5))); }
    auto wrongBits = SqnStateFile::open(path_, SqnArray(8));
    ASSERT_FALSE(wrongBits);
    EXPECT_EQ(wrongBits.error().code, static_cast<int>(SimErrc::state));
    ASSERT_EQ(::truncate(path_.c_str(), 5000), 0);
    auto wrongSize = SqnStateFile::open(path_, arrayWith(5));
    ASSERT_FALSE(wrongSize);
    EXPECT_NE(wrongSize.error().message.find("5000 octets"), std::string::npos);
}

TEST_F(StateFileTest, OneWriterOnly) {
    auto first = SqnStateFile::open(path_, arrayWith(5));
    ASSERT_TRUE(first);
    auto second = SqnStateFile::open(path_, arrayWith(5));
    ASSERT_FALSE(second);
    EXPECT_NE(second.error().message.find("in use"), std::string::npos);
}

TEST_F(StateFileTest, UnwritableDirectoryIsAnError) {
    auto f = SqnStateFile::open(dir_ + "/missing/dir/sqn.state", arrayWith(5));
    ASSERT_FALSE(f);
    EXPECT_EQ(f.error().code, static_cast<int>(SimErrc::io));
}

TEST_F(StateFileTest, CardPersistsBeforeAnswering) {
    const auto& v = test::milenageSets().at(1);
    SqnArray init;
    ASSERT_TRUE(init.setSeq(v.sqnInt() & 31, (v.sqnInt() >> 5) - 1));
    {
        auto file = SqnStateFile::open(path_, init);
        ASSERT_TRUE(file);
        CardProfile p;
        p.imsi = "001010000000001";
        p.iccid = "89990100000000000002";
        auto card = VirtualUsim::create(p, v.k, v.opc, file->loaded(), &*file);
        ASSERT_TRUE(card);
        test::CardTransport t(*card);
        Usim usim(t);
        ASSERT_TRUE(usim.selectAid(defaultUsimAid()));
        auto out = usim.authenticate(v.rand, v.autn());
        ASSERT_TRUE(out);
        ASSERT_TRUE(std::holds_alternative<AuthSuccess>(*out));
    }
    // A new card process starting from the file refuses the same AUTN.
    auto file = SqnStateFile::open(path_, SqnArray());
    ASSERT_TRUE(file);
    EXPECT_EQ(file->loaded().highestSqn(), v.sqnInt());
}

}  // namespace
}  // namespace best::sim::vusim
