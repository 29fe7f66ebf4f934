// The UE state file: round trip, atomic replace with mode 0600, every refusal (corrupt, wrong
// version, group/other permissions, another subscriber's state), and the nonce staying
// monotonic across restarts (the engine reloaded from the file).
#include <gtest/gtest.h>

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <openssl/evp.h>

#include "crypto/ossl.h"
#include "rig.h"
#include "temp_dir.h"
#include "ue/state_file.h"

namespace best::ue::test {
namespace {

namespace fs = std::filesystem;

using best::test::TempDir;

UeState sample() {
    UeState s;
    s.imsi = std::string(kImsi);
    s.lastNonce = 0x1122334455667788ULL;
    s.current = madeUpSet(1, 0x21, crypto::KeyAgreement::umts);
    s.current->plmn.reset();
    s.pending = madeUpSet(3, 0x42);
    s.pending->lastNonce.reset();
    s.pending->lifetime = 0;
    return s;
}

void expectSameState(const UeState& a, const UeState& b) {
    EXPECT_EQ(a.imsi, b.imsi);
    EXPECT_EQ(a.lastNonce, b.lastNonce);
    for (auto pick : {&UeState::current, &UeState::pending}) {
        const auto& x = a.*pick;
        const auto& y = b.*pick;
        ASSERT_EQ(x.has_value(), y.has_value());
        if (!x)
            continue;
        EXPECT_EQ(x->kid, y->kid);
        EXPECT_EQ(x->keyAgreement, y->keyAgreement);
        EXPECT_EQ(x->plmn, y->plmn);
        EXPECT_EQ(x->hseId, y->hseId);
        EXPECT_TRUE(x->kint.equals(y->kint));
        EXPECT_EQ(x->created, y->created);
        EXPECT_EQ(x->lifetime, y->lifetime);
        EXPECT_EQ(x->lastNonce, y->lastNonce);
    }
}

std::string readText(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

void writeText(const std::string& path, const std::string& text, mode_t mode = 0600) {
    {
        std::ofstream out(path, std::ios::binary | std::ios::trunc);
        out << text;
    }
    ::chmod(path.c_str(), mode);
}

int errcOf(const Result<UeState>& r) {
    return r ? 0 : r.error().code;
}

TEST(UeStateFile, EncodeDecodeRoundTrip) {
    const UeState s = sample();
    auto text = encodeState(s);
    ASSERT_TRUE(text.has_value()) << text.error().describe();
    const std::string_view t(reinterpret_cast<const char*>(text->data()), text->size());
    EXPECT_EQ(t.substr(0, 16), "best-ue-state 1\n");
    EXPECT_NE(t.find("key-set current kid=1 ka=umts plmn=- "), std::string_view::npos);
    EXPECT_NE(t.find("key-set pending kid=3 ka=5g plmn=00f110 "), std::string_view::npos);
    auto back = decodeState(text->view());
    ASSERT_TRUE(back.has_value()) << back.error().describe();
    expectSameState(s, *back);

    UeState empty;
    auto e = encodeState(empty);
    ASSERT_TRUE(e.has_value());
    auto eb = decodeState(e->view());
    ASSERT_TRUE(eb.has_value());
    EXPECT_FALSE(eb->current || eb->pending || eb->lastNonce);
}

TEST(UeStateFile, SaveIsMode0600AndLoadGivesItBack) {
    TempDir dir("best-ue-test-");
    FileStateStore store(dir.file("ue.state"));
    auto missing = store.load();
    ASSERT_TRUE(missing.has_value()) << "no file yet: an empty state";
    EXPECT_FALSE(missing->current.has_value());

    ASSERT_TRUE(store.save(sample()).has_value());
    struct stat st {};
    ASSERT_EQ(::stat(store.path().c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0600u);
    auto back = store.load();
    ASSERT_TRUE(back.has_value()) << back.error().describe();
    expectSameState(sample(), *back);

    // Replaced atomically: a second save leaves one file and no temporary behind.
    UeState two = sample();
    two.pending.reset();
    ASSERT_TRUE(store.save(two).has_value());
    EXPECT_EQ(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator{}), 1);
    auto back2 = store.load();
    ASSERT_TRUE(back2.has_value());
    EXPECT_FALSE(back2->pending.has_value());
}

TEST(UeStateFile, GroupOrOtherPermissionsAreRefused) {
    TempDir dir("best-ue-test-");
    FileStateStore store(dir.file("ue.state"));
    ASSERT_TRUE(store.save(sample()).has_value());
    for (mode_t m : {0640, 0604, 0660, 0644}) {
        ::chmod(store.path().c_str(), m);
        auto r = store.load();
        EXPECT_EQ(errcOf(r), static_cast<int>(StateFileErrc::insecure_mode)) << std::oct << m;
        if (!r) {
            EXPECT_NE(r.error().message.find("must be 0600"), std::string::npos);
        }
    }
    ::chmod(store.path().c_str(), 0600);
    EXPECT_TRUE(store.load().has_value());
    // A directory (or anything but a regular file) is refused too.
    FileStateStore notFile(dir.path());
    EXPECT_EQ(errcOf(notFile.load()), static_cast<int>(StateFileErrc::insecure_mode));
}

TEST(UeStateFile, CorruptFilesAreRefusedWithAClearError) {
    TempDir dir("best-ue-test-");
    const std::string path = dir.file("ue.state");
    FileStateStore store(path);
    ASSERT_TRUE(store.save(sample()).has_value());
    const std::string good = readText(path);

    struct Case {
        const char* name;
        std::string text;
        StateFileErrc errc;
    };
    std::string flipped = good;
    flipped[good.find("kint=") + 7] = flipped[good.find("kint=") + 7] == 'a' ? 'b' : 'a';
    std::string badSyntax = good;
    badSyntax.replace(badSyntax.find("kid=3"), 5, "kid=9");
    std::string v2 = good;
    v2.replace(0, 15, "best-ue-state 2");
    const std::vector<Case> cases = {
        {"one KInt digit changed", flipped, StateFileErrc::corrupt},
        {"changed without a new checksum", badSyntax, StateFileErrc::corrupt},
        {"truncated", good.substr(0, good.size() / 2), StateFileErrc::corrupt},
        {"no checksum line", good.substr(0, good.rfind("sha256")), StateFileErrc::corrupt},
        {"empty", "", StateFileErrc::corrupt},
        {"not a state file", "hello world\n", StateFileErrc::corrupt},
        {"another version", v2, StateFileErrc::wrong_version},
    };
    for (const Case& c : cases) {
        SCOPED_TRACE(c.name);
        writeText(path, c.text);
        auto r = store.load();
        ASSERT_FALSE(r.has_value());
        EXPECT_EQ(r.error().code, static_cast<int>(c.errc));
        EXPECT_NE(r.error().message.find(path), std::string::npos) << r.error().message;
    }
    writeText(path, v2);
    EXPECT_NE(store.load().error().message.find("version 2; this build reads version 1"),
              std::string::npos);
}

TEST(UeStateFile, ValidChecksumButBadFieldsAreRefused) {
    // Re-sign edited text with a correct checksum: the field checks still refuse it.
    auto resign = [](std::string body) {
        std::array<std::uint8_t, 32> md{};
        unsigned len = 0;
        EVP_Digest(body.data(), body.size(), md.data(), &len, crypto::Provider::instance().sha256(),
                   nullptr);
        return body + "sha256 " + toHex(md) + "\n";
    };
    const std::string head = "best-ue-state 1\nimsi 001010000000001\nlast-nonce -\n";
    const std::string set =
        " ka=5g plmn=00f110 created=1 lifetime=2 last-nonce=- hse-id=6162 kint=" +
        std::string(64, 'a') + "\n";
    struct Case {
        const char* name;
        std::string text;
    };
    const std::vector<Case> cases = {
        {"KID 0", head + "key-set current kid=0" + set},
        {"unknown role", head + "key-set spare kid=1" + set},
        {"pending before current",
         head + "key-set pending kid=1" + set + "key-set current kid=2" + set},
        {"same KID twice", head + "key-set current kid=1" + set + "key-set pending kid=1" + set},
        {"5G without PLMN", head +
                                "key-set current kid=1 ka=5g plmn=- created=1 lifetime=2 "
                                "last-nonce=- hse-id=61 kint=" +
                                std::string(64, 'a') + "\n"},
        {"short KInt", head + "key-set current kid=1 ka=umts plmn=- created=1 lifetime=2 "
                              "last-nonce=- hse-id=61 kint=aa\n"},
        {"unknown line", head + "colour blue\n"},
        {"leading zero", head + "key-set current kid=01" + set},
    };
    for (const Case& c : cases) {
        SCOPED_TRACE(c.name);
        const std::string t = resign(c.text);
        auto r = decodeState(ByteView(reinterpret_cast<const std::uint8_t*>(t.data()), t.size()));
        ASSERT_FALSE(r.has_value());
        EXPECT_EQ(r.error().code, static_cast<int>(StateFileErrc::corrupt));
    }
    const std::string ok = resign(head + "key-set current kid=1" + set);
    EXPECT_TRUE(decodeState(ByteView(reinterpret_cast<const std::uint8_t*>(ok.data()), ok.size()))
                    .has_value());
}

TEST(UeStateFile, AnotherSubscribersStateIsRefusedByTheEngine) {
    UeState st = sample();
    st.imsi = "001019999999999";
    auto e = UeEngine::create(exampleSettings(), kImsi, st);
    ASSERT_FALSE(e.has_value());
    EXPECT_EQ(e.error().code, static_cast<int>(UeErrc::state_mismatch));
}

TEST(UeStateFile, NonceStaysMonotonicAcrossRestarts) {
    TempDir dir("best-ue-test-");
    const std::string path = dir.file("ue.state");
    TestHsePeer peer(exampleSubscriber(1));
    SoftUsim usim = exampleSoftUsim();
    std::uint64_t firstResumeNonce = 0;
    Key256 kint;
    {
        FileStateStore store(path);
        auto loaded = store.load();
        ASSERT_TRUE(loaded.has_value());
        Harness h(exampleSettings(), *loaded, &store, &usim);
        h.random.push(0x0000000000000100ULL);
        h.start();
        const Bytes full = h.only();
        h.feed(peer.answerFull(full, StartSpec{}));
        ASSERT_EQ(eventsOf<SessionEstablished>(h.out).size(), 1u);
        kint = peer.kint();
        h.out.clear();
        ASSERT_TRUE(h.engine().terminate(h.now, h.out).has_value());
        h.out.clear();
        h.feed(peer.seal(emsdp::SessionTerminateResponse{}));
        h.out.clear();
        h.start();
        const Bytes resume = h.only();
        auto p = emsdp::parseSessionRequest(resume);
        ASSERT_TRUE(p.has_value());
        firstResumeNonce = p->body.ueNonce;
        EXPECT_EQ(firstResumeNonce, 0x101u);
        // The "process" dies here, before any answer.
    }
    FileStateStore store(path);
    auto loaded = store.load();
    ASSERT_TRUE(loaded.has_value()) << loaded.error().describe();
    ASSERT_TRUE(loaded->current.has_value());
    EXPECT_EQ(loaded->current->lastNonce, firstResumeNonce);
    EXPECT_EQ(loaded->lastNonce, firstResumeNonce);
    EXPECT_TRUE(loaded->current->kint.equals(kint));
    Harness h(exampleSettings(), *loaded, &store, &usim);
    h.start();
    const Bytes resume = h.only();
    auto p = emsdp::parseSessionRequest(resume);
    ASSERT_TRUE(p.has_value());
    EXPECT_EQ(p->header.kid, 1);
    EXPECT_GT(p->body.ueNonce, firstResumeNonce);
    StartSpec spec;
    spec.sessionId = 0x99;
    h.feed(peer.answerResumption(resume, kint, spec));
    EXPECT_EQ(eventsOf<SessionEstablished>(h.out).size(), 1u);
    auto again = store.load();
    ASSERT_TRUE(again.has_value());
    EXPECT_EQ(again->current->lastNonce, p->body.ueNonce);
}

}  // namespace
}  // namespace best::ue::test
