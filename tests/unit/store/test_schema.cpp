// Schema migrations: from a missing file, an empty file and every earlier version; a file from
// a newer program and a file that is not a database are refused with clear errors.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <map>

#include "store/schema.h"
#include "store_test_util.h"

namespace best::store::test {
namespace {

// The schema as SQLite reports it (table, index and their SQL), for comparing two files.
std::map<std::string, std::string> schemaOf(const std::string& path) {
    auto c = Connection::open(path, Connection::Role::reader, std::chrono::milliseconds(1000));
    EXPECT_TRUE(c.has_value()) << c.error().describe();
    std::map<std::string, std::string> out;
    if (!c)
        return out;
    auto st = (*c)->prepare("SELECT type || ':' || name, ifnull(sql, '') FROM sqlite_schema");
    EXPECT_TRUE(st.has_value());
    if (!st)
        return out;
    for (;;) {
        auto row = st->step();
        EXPECT_TRUE(row.has_value());
        if (!row || !*row)
            break;
        out[st->text(0)] = st->text(1);
    }
    return out;
}

std::int64_t versionOf(const std::string& path) {
    auto c = Connection::open(path, Connection::Role::reader, std::chrono::milliseconds(1000));
    EXPECT_TRUE(c.has_value());
    if (!c)
        return -1;
    auto v = (*c)->userVersion();
    EXPECT_TRUE(v.has_value());
    return v ? *v : -1;
}

void createEmptyFile(const std::string& path) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ASSERT_GE(fd, 0);
    ::close(fd);
}

TEST(StoreSchema, MigrationListIsOrderedAndEndsAtTheSchemaVersion) {
    const auto list = migrations();
    ASSERT_FALSE(list.empty());
    for (std::size_t i = 0; i < list.size(); ++i) {
        EXPECT_EQ(list[i].version, static_cast<std::int64_t>(i + 1));
        EXPECT_NE(std::string(list[i].description), "");
    }
    EXPECT_EQ(list.back().version, kSchemaVersion);
}

TEST(StoreSchema, CreatesAMissingFileAtTheLatestVersionWithMode0600) {
    TempDir dir;
    const auto path = dir.file("state.db");
    {
        auto s = openOrDie(path);
        ASSERT_NE(s, nullptr);
        EXPECT_EQ(s->openedAtVersion(), 0);
    }
    EXPECT_EQ(versionOf(path), kSchemaVersion);
    struct stat st {};
    ASSERT_EQ(::stat(path.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST(StoreSchema, MissingFileIsNotCreatedWhenCreateIsOff) {
    TempDir dir;
    auto o = fastOptions();
    o.create = false;
    EXPECT_STORE_ERROR(Store::open(dir.file("absent.db"), o), StoreErrc::not_found);
    EXPECT_FALSE(std::filesystem::exists(dir.file("absent.db")));
}

TEST(StoreSchema, MigratesAnEmptyFile) {
    TempDir dir;
    const auto path = dir.file("state.db");
    createEmptyFile(path);
    {
        auto s = openOrDie(path);
        ASSERT_NE(s, nullptr);
        EXPECT_EQ(s->openedAtVersion(), 0);
        ASSERT_TRUE(s->addEas(EasRecord{"eas-a", ServiceMode::kaOnly, {}, {}, 0}).has_value());
    }
    EXPECT_EQ(versionOf(path), kSchemaVersion);
}

TEST(StoreSchema, MigratesFromEveryEarlierVersionToTheSameSchemaAsAFreshFile) {
    TempDir dir;
    const auto fresh = dir.file("fresh.db");
    ASSERT_NE(openOrDie(fresh), nullptr);
    const auto expected = schemaOf(fresh);
    ASSERT_FALSE(expected.empty());

    for (std::int64_t v = 0; v < kSchemaVersion; ++v) {
        SCOPED_TRACE("from version " + std::to_string(v));
        const auto path = dir.file("v" + std::to_string(v) + ".db");
        createEmptyFile(path);
        {
            auto w = Connection::open(path, Connection::Role::writer, std::chrono::seconds(1));
            ASSERT_TRUE(w.has_value()) << w.error().describe();
            auto from = migrate(**w, v);
            ASSERT_TRUE(from.has_value()) << from.error().describe();
            EXPECT_EQ(*from, 0);
        }
        EXPECT_EQ(versionOf(path), v);
        {
            auto s = openOrDie(path);
            ASSERT_NE(s, nullptr);
            EXPECT_EQ(s->openedAtVersion(), v);
        }
        EXPECT_EQ(versionOf(path), kSchemaVersion);
        EXPECT_EQ(schemaOf(path), expected);
    }
}

TEST(StoreSchema, ReopeningAtTheLatestVersionChangesNothing) {
    TempDir dir;
    const auto path = dir.file("state.db");
    ASSERT_NE(openOrDie(path), nullptr);
    const auto before = schemaOf(path);
    auto s = openOrDie(path);
    ASSERT_NE(s, nullptr);
    EXPECT_EQ(s->openedAtVersion(), kSchemaVersion);
    EXPECT_EQ(schemaOf(path), before);
}

TEST(StoreSchema, RefusesAFileFromAFutureVersion) {
    TempDir dir;
    const auto path = dir.file("state.db");
    ASSERT_NE(openOrDie(path), nullptr);
    {
        auto w = Connection::open(path, Connection::Role::writer, std::chrono::seconds(1));
        ASSERT_TRUE(w.has_value());
        const std::string set = "PRAGMA user_version = " + std::to_string(kSchemaVersion + 1);
        ASSERT_TRUE((*w)->exec(set.c_str()).has_value());
    }
    for (const Mode mode : {Mode::daemon, Mode::tool}) {
        auto s = Store::open(path, fastOptions(mode));
        ASSERT_FALSE(s.has_value());
        EXPECT_TRUE(isErr(s.error(), StoreErrc::schema_too_new)) << s.error().describe();
        EXPECT_NE(s.error().message.find("newer than this program supports"), std::string::npos)
            << s.error().message;
        EXPECT_NE(s.error().message.find(std::to_string(kSchemaVersion + 1)), std::string::npos);
    }
    EXPECT_EQ(versionOf(path), kSchemaVersion + 1);  // untouched
}

TEST(StoreSchema, RefusesMigratingDownwardsOrToAnUnknownVersion) {
    TempDir dir;
    const auto path = dir.file("state.db");
    ASSERT_NE(openOrDie(path), nullptr);
    auto w = Connection::open(path, Connection::Role::writer, std::chrono::seconds(1));
    ASSERT_TRUE(w.has_value());
    EXPECT_STORE_ERROR(migrate(**w, kSchemaVersion + 1), StoreErrc::invalid_argument);
    EXPECT_STORE_ERROR(migrate(**w, -1), StoreErrc::invalid_argument);
    EXPECT_STORE_ERROR(migrate(**w, 0), StoreErrc::invalid_argument);
    EXPECT_FALSE((*w)->inTransaction());
}

TEST(StoreSchema, RefusesAFileThatIsNotADatabase) {
    TempDir dir;
    const auto path = dir.file("state.db");
    {
        std::ofstream f(path, std::ios::binary);
        f << std::string(8192, 'x');
    }
    auto s = Store::open(path, fastOptions());
    ASSERT_FALSE(s.has_value());
    EXPECT_TRUE(isErr(s.error(), StoreErrc::corrupt)) << s.error().describe();
    EXPECT_NE(s.error().message.find("not a usable SQLite database"), std::string::npos)
        << s.error().message;
}

TEST(StoreSchema, RefusesADirectoryAndAnEmptyPath) {
    TempDir dir;
    EXPECT_STORE_ERROR(Store::open(dir.path(), fastOptions()), StoreErrc::io);
    EXPECT_STORE_ERROR(Store::open("", fastOptions()), StoreErrc::invalid_argument);
}

TEST(StoreSchema, WriterConnectionUsesWalFullSyncAndForeignKeys) {
    TempDir dir;
    const auto path = dir.file("state.db");
    auto w = Connection::open(path + "x", Connection::Role::writer, std::chrono::seconds(1));
    EXPECT_FALSE(w.has_value());  // never creates a file by itself
    createEmptyFile(path);
    w = Connection::open(path, Connection::Role::writer, std::chrono::seconds(1));
    ASSERT_TRUE(w.has_value()) << w.error().describe();
    auto pragma = [&](const char* q) {
        auto st = (*w)->prepare(q);
        EXPECT_TRUE(st.has_value());
        auto row = st->step();
        EXPECT_TRUE(row.has_value() && *row);
        return st->text(0);
    };
    EXPECT_EQ(pragma("PRAGMA journal_mode"), "wal");
    EXPECT_EQ(pragma("PRAGMA synchronous"), "2");  // FULL
    EXPECT_EQ(pragma("PRAGMA foreign_keys"), "1");
}

}  // namespace
}  // namespace best::store::test
