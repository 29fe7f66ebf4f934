// best-hsectl through the HSM and the store as a real process: aka-vector --imsi against the
// software mode and TS 35.207, consecutive SQNs, sqn show/set/resync (the worked example's
// AUTS and one made by crypto::buildAuts), a K unwrapped from an operator transport key,
// selftest, and a search of the SQLite file and its WAL for every K, OP and OPc provisioned.
#include <gtest/gtest.h>

#include <openssl/evp.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "crypto/milenage.h"
#include "store/sqn.h"
#include "store/store.h"
#include "tests/hsm/hsectl/hsectl_fixture.h"

namespace {

using namespace best;
using best::testing::hexBytes;
using best::testing::HsectlTest;
using best::testing::milenageSets;
using best::testing::vectorLines;
using best::testing::xorHex;

std::string expectedVector(const best::testing::MilenageSet& s, const std::string& sqn) {
    // AUTN = SQN xor AK || AMF || MAC-A; MAC-A (f1) is for the set's own SQN only.
    return "RAND: " + s.at("RAND") + "\nAUTN: " + xorHex(sqn, s.at("f5")) + s.at("AMF") +
           s.at("f1") + "\nXRES: " + s.at("f2") + "\nCK: " + s.at("f3") + "\nIK: " + s.at("f4") +
           "\nAK: " + s.at("f5") + "\nSQN: " + sqn + "\n";
}

// The software mode for the same keys, RAND and SQN.
std::string softwareVector(const best::testing::MilenageSet& s, const std::string& sqn,
                           const std::string& rand) {
    auto r =
        best::test::runProcess(best::testing::hsectlProgram(),
                               {"aka-vector", "--test-keys", "--k", s.at("K"), "--opc", s.at("OPc"),
                                "--amf", s.at("AMF"), "--sqn", sqn, "--rand", rand});
    EXPECT_EQ(r.exitCode, 0) << r.err;
    return r.out;
}

std::string sqnHex(std::uint64_t v) {
    return toHex(best::store::sqnToBytes(v));
}

// RFC 3394 / RFC 5649 wrap in software, as an operator's provisioning system does it.
Bytes softwareWrap(ByteView kek, ByteView key, bool pad) {
    EVP_CIPHER* cipher =
        EVP_CIPHER_fetch(nullptr, pad ? "AES-256-WRAP-PAD" : "AES-256-WRAP", nullptr);
    EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
    Bytes out(key.size() + 16);
    int n = 0, m = 0;
    EVP_CIPHER_CTX_set_flags(ctx, EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
    const bool ok =
        cipher != nullptr && ctx != nullptr &&
        EVP_EncryptInit_ex2(ctx, cipher, kek.data(), nullptr, nullptr) == 1 &&
        EVP_EncryptUpdate(ctx, out.data(), &n, key.data(), static_cast<int>(key.size())) == 1 &&
        EVP_EncryptFinal_ex(ctx, out.data() + n, &m) == 1;
    EVP_CIPHER_CTX_free(ctx);
    EVP_CIPHER_free(cipher);
    if (!ok)
        return {};
    out.resize(static_cast<std::size_t>(n + m));
    return out;
}

const std::string kTransportLabel = "operator-transport";
const std::string kTransportKey =
    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

// The operator's transport key (AES-256, unwrap only), imported into the token once, with the
// module finalised again before any best-hsectl process runs.
void importTransportKey(const best::testing::SoftHsmToken& token) {
    using namespace best::hsm;
    const Bytes value = hexBytes(kTransportKey);
    auto m = Module::load(best::testing::softHsmModule());
    ASSERT_TRUE(m) << m.error().message;
    auto slot = Slot::find(**m, *TokenSelector::parse(token.label()));
    ASSERT_TRUE(slot) << slot.error().message;
    auto s = Session::open(**m, slot->id(), true);
    ASSERT_TRUE(s) << s.error().message;
    ASSERT_TRUE(s->login(Bytes(token.pin().begin(), token.pin().end())));
    const CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    const CK_KEY_TYPE aes = CKK_AES;
    CK_ATTRIBUTE t[] = {attr(CKA_CLASS, cls),
                        attr(CKA_KEY_TYPE, aes),
                        attr(CKA_TOKEN, kTrue),
                        attr(CKA_PRIVATE, kTrue),
                        attr(CKA_SENSITIVE, kTrue),
                        attr(CKA_EXTRACTABLE, kFalse),
                        attr(CKA_UNWRAP, kTrue),
                        attr(CKA_WRAP, kFalse),
                        attrBytes(CKA_LABEL, kTransportLabel.data(), kTransportLabel.size()),
                        attrBytes(CKA_VALUE, value.data(), value.size())};
    CK_OBJECT_HANDLE h = 0;
    auto r = (*m)->call<P11Fn::C_CreateObject>(s->get(), t, CK_ULONG{10}, &h);
    ASSERT_TRUE(r) << r.error().message;
}

class Aka : public HsectlTest {};

TEST_F(Aka, EveryMilenageSetThroughTheHsmEqualsTs35207) {
    // OP for odd sets (OPc computed inside the HSM), OPc for even ones; IND length 0 so that the
    // first SQN is exactly the set's SQN.
    int i = 0;
    for (const auto& s : milenageSets()) {
        ++i;
        const std::string imsi = "00101000000000" + std::to_string(i);
        const bool op = i % 2 == 1;
        const std::string kf = file("k" + std::to_string(i), s.at("K"));
        const std::string of = file("o" + std::to_string(i), op ? s.at("OP") : s.at("OPc"));
        auto a = cli({"subscriber", "add", "--imsi", imsi, "--k-file", kf,
                      op ? "--op-file" : "--opc-file", of, "--amf", s.at("AMF"), "--ind-bits", "0",
                      "--sqn-start", "sqn:" + s.at("SQN")});
        ASSERT_EQ(a.exitCode, 0) << a.err;
        auto v = cli({"aka-vector", "--imsi", imsi, "--rand", s.at("RAND")});
        EXPECT_EQ(v.exitCode, 0) << v.err;
        EXPECT_EQ(v.err, "");
        EXPECT_EQ(v.out, expectedVector(s, s.at("SQN"))) << "set " << s.at("set");
        EXPECT_EQ(v.out, softwareVector(s, s.at("SQN"), s.at("RAND"))) << "set " << s.at("set");
    }
}

TEST_F(Aka, ConsecutiveCallsConsumeConsecutiveSqns) {
    // IND 7 with 5 IND bits (the worked example's HSE): the set's SQN ff9bb4d0b607 is SEQ
    // 0x7fcdda685b0 with IND 7.
    const auto s = milenageSets().at(0);
    const std::string conf = config(7, 5);
    const std::string kf = file("k", s.at("K"));
    const std::string of = file("opc", s.at("OPc"));
    auto a =
        bare({"subscriber", "add", "--config", conf, "--imsi", "001010000000001", "--k-file", kf,
              "--opc-file", of, "--amf", s.at("AMF"), "--sqn-start", "sqn:" + s.at("SQN")});
    ASSERT_EQ(a.exitCode, 0) << a.err;
    EXPECT_EQ(a.out,
              "subscriber 001010000000001 added: K wrapped in the HSM, OPc sealed, AMF b9b9, IND "
              "bits 5, first SEQ 8782631830960 (SQN ff9bb4d0b607 with IND 7)\n");
    const std::uint64_t first = best::store::sqnFromBytes(best::testing::arr<6>(s.at("SQN")));
    auto v1 =
        bare({"aka-vector", "--imsi", "001010000000001", "--rand", s.at("RAND"), "--config", conf});
    ASSERT_EQ(v1.exitCode, 0) << v1.err;
    EXPECT_EQ(v1.out, expectedVector(s, s.at("SQN")));
    EXPECT_EQ(v1.out, softwareVector(s, s.at("SQN"), s.at("RAND")));
    for (std::uint64_t n = 1; n <= 3; ++n) {
        // The next SEQ, same IND: + 32 per call. A random RAND when none is given.
        auto v = bare({"aka-vector", "--imsi", "001010000000001", "--config", conf});
        ASSERT_EQ(v.exitCode, 0) << v.err;
        const auto lines = vectorLines(v.out);
        const std::string sqn = sqnHex(first + 32 * n);
        EXPECT_EQ(lines.at("SQN"), sqn);
        EXPECT_EQ(v.out, softwareVector(s, sqn, lines.at("RAND")));
    }
    auto json = bare({"aka-vector", "--imsi", "001010000000001", "--rand", s.at("RAND"), "--config",
                      conf, "--json"});
    ASSERT_EQ(json.exitCode, 0) << json.err;
    const std::string sqn4 = sqnHex(first + 32 * 4);
    EXPECT_EQ(
        json.out.substr(json.out.find("\"sqn\"")),
        "\"sqn\":\"" + sqn4 + "\",\"seq\":" + std::to_string((first >> 5) + 4) + ",\"ind\":7}\n");
    auto show = bare({"sqn", "show", "--imsi", "001010000000001", "--config", conf});
    ASSERT_EQ(show.exitCode, 0) << show.err;
    EXPECT_EQ(show.out.substr(0, show.out.find("updated_at")),
              "imsi: 001010000000001\nseq_he: " + std::to_string((first >> 5) + 4) +
                  "\nnext_seq: " + std::to_string((first >> 5) + 5) +
                  "\nnext_sqn: " + sqnHex(first + 32 * 5) +
                  "\nind: 7\nind_bits: 5\nlast_change: reserve\nreservations: 5\n");
}

TEST_F(Aka, StoredModeRefusesKeysOnTheCommandLine) {
    const auto s = milenageSets().at(0);
    const std::string see = "(see best-hsectl aka-vector --help)\n";
    auto t = cli({"aka-vector", "--imsi", "001010000000001", "--test-keys", "--k", s.at("K"),
                  "--opc", s.at("OPc")});
    EXPECT_EQ(t.exitCode, 2);
    EXPECT_EQ(t.out, "");
    EXPECT_EQ(t.err,
              "best-hsectl aka-vector: --imsi takes the keys from the store and the HSM; "
              "--test-keys is refused with it (it is for published test vectors in the software "
              "mode)\n" +
                  see);
    auto k = cli({"aka-vector", "--imsi", "001010000000001", "--k-file", "/dev/null"});
    EXPECT_EQ(k.exitCode, 2);
    EXPECT_EQ(k.err,
              "best-hsectl aka-vector: --imsi takes K, OPc, AMF and SQN from the store; --k-file "
              "is not accepted with it\n" +
                  see);
    auto sqn = cli({"aka-vector", "--imsi", "001010000000001", "--sqn", s.at("SQN")});
    EXPECT_EQ(sqn.exitCode, 2);
    EXPECT_EQ(sqn.err,
              "best-hsectl aka-vector: --imsi takes K, OPc, AMF and SQN from the store; --sqn is "
              "not accepted with it\n" +
                  see);
    auto rand = cli({"aka-vector", "--imsi", "001010000000001", "--rand", "00"});
    EXPECT_EQ(rand.exitCode, 2);
    EXPECT_EQ(rand.err, "best-hsectl aka-vector: RAND: expected 16 octets, got 1\n");
    // The software mode still refuses keys on the command line without --test-keys.
    auto soft = bare({"aka-vector", "--k", s.at("K"), "--opc", s.at("OPc"), "--amf", "b9b9",
                      "--sqn", s.at("SQN")});
    EXPECT_EQ(soft.exitCode, 2);
}

TEST_F(Aka, SqnShowSetResync) {
    const auto s = milenageSets().at(0);
    const std::string conf = config(7, 5);
    const std::string imsi = "001010000000001";
    auto a = bare({"subscriber", "add", "--config", conf, "--imsi", imsi, "--k-file",
                   file("k", s.at("K")), "--opc-file", file("opc", s.at("OPc")), "--amf",
                   s.at("AMF"), "--sqn-start", "100"});
    ASSERT_EQ(a.exitCode, 0) << a.err;
    const auto state = [&](const std::vector<std::string>& args) {
        std::vector<std::string> full = args;
        full.insert(full.end(), {"--config", conf});
        auto r = bare(full);
        EXPECT_EQ(r.exitCode, 0) << r.err;
        return r.out.substr(0, r.out.find("updated_at"));
    };
    EXPECT_EQ(state({"sqn", "show", "--imsi", imsi}),
              "imsi: " + imsi +
                  "\nseq_he: 99\nnext_seq: 100\nnext_sqn: 000000000c87\nind: 7\nind_bits: 5\n"
                  "last_change: provision\nreservations: 0\n");
    EXPECT_EQ(state({"sqn", "set", "--imsi", imsi, "--next", "5000"}),
              "imsi: " + imsi +
                  "\nseq_he: 4999\nnext_seq: 5000\nnext_sqn: 000000027107\nind: 7\nind_bits: 5\n"
                  "last_change: set\nreservations: 0\n");
    auto json = bare(
        {"sqn", "set", "--imsi", imsi, "--next", "sqn:" + s.at("SQN"), "--config", conf, "--json"});
    ASSERT_EQ(json.exitCode, 0) << json.err;
    EXPECT_EQ(json.out.substr(0, json.out.find(",\"updated_at\"")),
              "{\"imsi\":\"" + imsi +
                  "\",\"action\":\"set\",\"seq_he\":8782631830959,\"next_seq\":8782631830960,"
                  "\"next_sqn\":\"ff9bb4d0b607\",\"ind\":7,\"ind_bits\":5,\"last_change\":\"set\","
                  "\"reservations\":0");

    // The worked example, part 6: the USIM answers set 1's challenge with AUTS; SEQ_HE =
    // SEQ(SQN_MS) and the next SQN is the example's.
    const auto ex = best::testing::workedExampleResync();
    ASSERT_EQ(ex.auts.size(), 28u);
    ASSERT_EQ(ex.nextSqn.size(), 12u);
    const std::string autsFile = file("auts", ex.auts + "\n");
    auto bad = ex.auts;
    bad[27] = bad[27] == '0' ? '1' : '0';
    auto badMac = bare({"sqn", "resync", "--imsi", imsi, "--auts-file", file("bad-auts", bad),
                        "--rand", s.at("RAND"), "--config", conf});
    EXPECT_EQ(badMac.exitCode, 1);
    EXPECT_EQ(badMac.out, "");
    EXPECT_EQ(badMac.err,
              "best-hsectl sqn resync: MAC-S check failed: the AUTS does not verify for this "
              "subscriber and RAND; SQN unchanged\n");
    auto r = bare({"sqn", "resync", "--imsi", imsi, "--auts-file", autsFile, "--rand", s.at("RAND"),
                   "--config", conf});
    ASSERT_EQ(r.exitCode, 0) << r.err;
    EXPECT_EQ(r.out.substr(0, r.out.find("updated_at")),
              "SQN_MS: " + ex.sqnMs + "\nimsi: " + imsi +
                  "\nseq_he: 8782631830960\nnext_seq: 8782631830961\nnext_sqn: " + ex.nextSqn +
                  "\nind: 7\nind_bits: 5\nlast_change: resync\nreservations: 0\n");
    auto v = bare({"aka-vector", "--imsi", imsi, "--rand", s.at("RAND"), "--config", conf});
    ASSERT_EQ(v.exitCode, 0) << v.err;
    EXPECT_EQ(vectorLines(v.out).at("SQN"), ex.nextSqn);

    // An AUTS made by the USIM side of the crypto core for a lower SQN_MS, as 14 raw octets:
    // a resync may lower SEQ_HE.
    best::crypto::SoftAes128 ek(best::testing::secretFromHex<SubscriberK>(s.at("K")));
    const auto opc = best::testing::secretFromHex<Opc>(s.at("OPc"));
    const auto rand = best::testing::arr<16>("303132333435363738393a3b3c3d3e3f");
    const best::crypto::Sqn sqnMs = best::store::sqnToBytes((1234ull << 5) | 3);
    auto auts = best::crypto::buildAuts(ek, opc, rand, sqnMs);
    ASSERT_TRUE(auts);
    const std::string rawAuts = file("auts.bin", std::string(auts->begin(), auts->end()));
    auto r2 = bare({"sqn", "resync", "--imsi", imsi, "--auts-file", rawAuts, "--rand",
                    "303132333435363738393a3b3c3d3e3f", "--config", conf, "--json"});
    ASSERT_EQ(r2.exitCode, 0) << r2.err;
    EXPECT_EQ(r2.out.substr(0, r2.out.find(",\"updated_at\"")),
              "{\"imsi\":\"" + imsi + "\",\"action\":\"resync\",\"sqn_ms\":\"" + toHex(sqnMs) +
                  "\",\"seq_he\":1234,\"next_seq\":1235,\"next_sqn\":\"" +
                  sqnHex((1235ull << 5) | 7) +
                  "\",\"ind\":7,\"ind_bits\":5,\"last_change\":\"resync\",\"reservations\":1");

    // Input errors.
    const std::vector<std::pair<std::vector<std::string>, std::string>> errors = {
        {{"sqn", "set", "--imsi", imsi, "--next", "0"},
         "best-hsectl sqn set: --next SEQ must be a number from 1 to 281474976710655, got '0'\n"},
        {{"sqn", "set", "--imsi", imsi, "--next", "8796093022208"},
         "best-hsectl sqn set: --next SEQ must be a number from 1 to 8796093022207, got "
         "'8796093022208'\n"},
        {{"sqn", "set", "--imsi", imsi},
         "best-hsectl sqn set: missing --next\n(see best-hsectl sqn set --help)\n"},
        {{"sqn", "resync", "--imsi", imsi, "--auts-file", file("short", ex.auts.substr(2)),
          "--rand", s.at("RAND")},
         "best-hsectl sqn resync: AUTS: expected 14 octets, got 13\n"},
        {{"sqn", "resync", "--imsi", imsi, "--auts-file", "/nonexistent/auts", "--rand",
          s.at("RAND")},
         "best-hsectl sqn resync: AUTS file '/nonexistent/auts': No such file or directory\n"},
        {{"sqn", "resync", "--imsi", imsi, "--auts-file", autsFile},
         "best-hsectl sqn resync: missing --rand (the RAND the USIM answered)\n"
         "(see best-hsectl sqn resync --help)\n"},
        {{"sqn", "resync", "--imsi", imsi, "--auts-file", autsFile, "--rand", "xx"},
         "best-hsectl sqn resync: RAND: expected 16 octets, got 1\n"},
        {{"sqn", "show"},
         "best-hsectl sqn show: missing --imsi\n(see best-hsectl sqn show --help)\n"},
    };
    for (const auto& [args, err] : errors) {
        auto e = cli(args);
        EXPECT_EQ(e.exitCode, 2) << err;
        EXPECT_EQ(e.err, err);
        EXPECT_EQ(e.out, "");
    }
}

TEST_F(Aka, KFromAnOperatorTransportBlob) {
    importTransportKey(token_);
    const auto s = milenageSets().at(1);
    const Bytes kek = hexBytes(kTransportKey);
    const Bytes k = hexBytes(s.at("K"));
    const Bytes wrapped = softwareWrap(kek, k, false);
    ASSERT_EQ(wrapped.size(), 24u);
    auto a = cli({"subscriber", "add", "--imsi", "001010000000002", "--k-wrapped-file",
                  file("k.wrapped", toHex(wrapped) + "\n"), "--transport-key", kTransportLabel,
                  "--opc-file", file("opc", s.at("OPc")), "--amf", s.at("AMF"), "--ind-bits", "0",
                  "--sqn-start", "sqn:" + s.at("SQN")});
    ASSERT_EQ(a.exitCode, 0) << a.err;
    EXPECT_EQ(a.out,
              "subscriber 001010000000002 added: K unwrapped from the transport key and wrapped "
              "in the HSM, OPc sealed, AMF " +
                  s.at("AMF") + ", IND bits 0, first SEQ " +
                  std::to_string(best::store::sqnFromBytes(best::testing::arr<6>(s.at("SQN")))) +
                  " (SQN " + s.at("SQN") + " with IND 0)\n");
    auto v = cli({"aka-vector", "--imsi", "001010000000002", "--rand", s.at("RAND")});
    ASSERT_EQ(v.exitCode, 0) << v.err;
    EXPECT_EQ(v.out, expectedVector(s, s.at("SQN")));

    // RFC 5649 (with padding), raw octets, and a CSV import with a k_wrapped column.
    const auto s3 = milenageSets().at(2);
    const Bytes padded = softwareWrap(kek, hexBytes(s3.at("K")), true);
    auto b = cli({"subscriber", "add", "--imsi", "001010000000003", "--k-wrapped-file",
                  file("k3.bin", std::string(padded.begin(), padded.end())), "--transport-key",
                  kTransportLabel, "--transport-mechanism", "rfc5649", "--op-file",
                  file("op3", s3.at("OP")), "--amf", s3.at("AMF"), "--ind-bits", "0", "--sqn-start",
                  "sqn:" + s3.at("SQN")});
    ASSERT_EQ(b.exitCode, 0) << b.err;
    auto v3 = cli({"aka-vector", "--imsi", "001010000000003", "--rand", s3.at("RAND")});
    EXPECT_EQ(v3.out, expectedVector(s3, s3.at("SQN")));
    const auto s4 = milenageSets().at(3);
    const std::string csv = "imsi,k_wrapped,opc,amf,sqn_start,ind_bits\n001010000000004," +
                            toHex(softwareWrap(kek, hexBytes(s4.at("K")), false)) + "," +
                            s4.at("OPc") + "," + s4.at("AMF") + ",sqn:" + s4.at("SQN") + ",0\n";
    auto imp = cli({"subscriber", "import", "--file", file("wrapped.csv", csv), "--transport-key",
                    kTransportLabel});
    ASSERT_EQ(imp.exitCode, 0) << imp.err;
    auto v4 = cli({"aka-vector", "--imsi", "001010000000004", "--rand", s4.at("RAND")});
    EXPECT_EQ(v4.out, expectedVector(s4, s4.at("SQN")));

    // A blob that does not unwrap under the transport key.
    auto garbage = cli({"subscriber", "add", "--imsi", "001010000000005", "--k-wrapped-file",
                        file("garbage", std::string(48, 'a')), "--transport-key", kTransportLabel,
                        "--opc-file", file("opc5", s.at("OPc")), "--amf", "8000"});
    EXPECT_EQ(garbage.exitCode, 2);
    EXPECT_EQ(garbage.err.rfind("best-hsectl subscriber add: the transport blob does not unwrap "
                                "under 'operator-transport' (wrong transport key, wrong "
                                "mechanism or a corrupted blob): ",
                                0),
              0u)
        << garbage.err;
    auto size = cli({"subscriber", "add", "--imsi", "001010000000005", "--k-wrapped-file",
                     file("tiny", "aabbcc"), "--transport-key", kTransportLabel, "--opc-file",
                     file("opc6", s.at("OPc")), "--amf", "8000"});
    EXPECT_EQ(size.exitCode, 2);
    EXPECT_EQ(size.err, "best-hsectl subscriber add: wrapped K: expected 24 to 40 octets, got 3\n");
}

TEST_F(Aka, SelftestPassesAndFindsAMismatch) {
    const auto before = token_.pkcs11Tool("--list-objects");
    auto r = cli({"selftest"});
    EXPECT_EQ(r.exitCode, 0) << r.err;
    EXPECT_EQ(r.err, "");
    EXPECT_EQ(r.out, "selftest passed on token '" + token_.label() +
                         "': 125 checks (Milenage sets: 6, HSM and software; 3GPP KDF; key "
                         "hierarchy through the HSM)\n");
    // Nothing was left on the token.
    EXPECT_EQ(token_.pkcs11Tool("--list-objects").output, before.output);

    // The sets from tests/data give the same result; a wrong published value is found on both
    // paths.
    auto file1 = cli(
        {"selftest", "--milenage-file", best::testing::dataPath("milenage-ts35207.txt"), "--json"});
    EXPECT_EQ(file1.exitCode, 0) << file1.err;
    EXPECT_EQ(file1.out, "{\"token\":\"" + token_.label() +
                             "\",\"milenage_sets\":6,\"checks\":125,\"failed\":0,"
                             "\"failures\":[],\"passed\":true}\n");
    std::ifstream in(best::testing::dataPath("milenage-ts35207.txt"));
    std::stringstream ss;
    ss << in.rdbuf();
    std::string text = ss.str();
    const auto p = text.find("f1=9cabc3e99baf7281");  // set 3
    ASSERT_NE(p, std::string::npos);
    text.replace(p, 19, "f1=9cabc3e99baf7282");
    auto wrong = cli({"selftest", "--milenage-file", file("wrong.txt", text)});
    EXPECT_EQ(wrong.exitCode, 1);
    EXPECT_EQ(wrong.err,
              "best-hsectl selftest: MISMATCH: milenage set 3 (software): f1 (MAC-A)\n"
              "best-hsectl selftest: MISMATCH: milenage set 3 (HSM, OPc from OP in the token): f1 "
              "(MAC-A)\n");
    EXPECT_EQ(wrong.out, "selftest FAILED on token '" + token_.label() + "': 2 of 125 checks\n");
}

// Searches `data` for each value, as raw octets and as lower- and uppercase hex.
void expectAbsent(const std::string& data, const std::string& what,
                  const std::vector<std::pair<std::string, std::string>>& values) {
    for (const auto& [name, hex] : values) {
        const Bytes raw = hexBytes(hex);
        std::string upper = hex;
        for (auto& c : upper)
            c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        EXPECT_EQ(data.find(std::string(raw.begin(), raw.end())), std::string::npos)
            << name << " (raw) in " << what;
        EXPECT_EQ(data.find(hex), std::string::npos) << name << " (hex) in " << what;
        EXPECT_EQ(data.find(upper), std::string::npos) << name << " (HEX) in " << what;
    }
}

TEST_F(Aka, TheSqliteFileNeverHoldsKOpOrOpc) {
    importTransportKey(token_);
    std::vector<std::pair<std::string, std::string>> secrets;
    const Bytes kek = hexBytes(kTransportKey);
    int i = 0;
    std::string csv = "imsi,k,k_wrapped,op,opc,amf\n";
    for (const auto& s : milenageSets()) {
        ++i;
        const std::string n = std::to_string(i);
        secrets.push_back({"K of set " + n, s.at("K")});
        secrets.push_back({"OP of set " + n, s.at("OP")});
        secrets.push_back({"OPc of set " + n, s.at("OPc")});
        // Each set three times: add with OP, add with OPc (K wrapped for the even sets), import.
        add("0010100000001" + n, s.at("K"), s.at("OP"), true);
        if (i % 2 == 0) {
            const Bytes w = softwareWrap(kek, hexBytes(s.at("K")), false);
            auto a = cli({"subscriber", "add", "--imsi", "0010100000002" + n, "--k-wrapped-file",
                          file("w" + n, toHex(w)), "--transport-key", kTransportLabel, "--opc-file",
                          file("c" + n, s.at("OPc")), "--amf", "8000"});
            ASSERT_EQ(a.exitCode, 0) << a.err;
        } else {
            add("0010100000002" + n, s.at("K"), s.at("OPc"));
        }
        csv += "0010100000003" + n + "," + (i % 2 ? s.at("K") : "") + "," +
               (i % 2 ? "" : toHex(softwareWrap(kek, hexBytes(s.at("K")), false))) + "," +
               (i % 3 ? s.at("OP") : "") + "," + (i % 3 ? "" : s.at("OPc")) + ",8000\n";
    }
    // Keep a connection open so that SQLite leaves the WAL in place for the search.
    best::store::StoreOptions o;
    o.mode = best::store::Mode::tool;
    o.create = false;
    auto keep = best::store::Store::open(store_, o);
    ASSERT_TRUE(keep) << keep.error().message;
    auto imp = cli(
        {"subscriber", "import", "--file", file("s.csv", csv), "--transport-key", kTransportLabel});
    ASSERT_EQ(imp.exitCode, 0) << imp.err;
    // Vectors, a resync and a removal write more pages.
    for (const char* imsi : {"00101000000011", "00101000000022", "00101000000033"}) {
        auto v = cli({"aka-vector", "--imsi", imsi});
        ASSERT_EQ(v.exitCode, 0) << v.err;
    }
    ASSERT_EQ(cli({"sqn", "set", "--imsi", "00101000000016", "--next", "77"}).exitCode, 0);
    ASSERT_EQ(cli({"subscriber", "remove", "--imsi", "00101000000026"}).exitCode, 0);
    auto count = (*keep)->countSubscribers();
    ASSERT_TRUE(count);
    EXPECT_EQ(*count, 17u);

    std::size_t searched = 0;
    for (const std::string suffix : {"", "-wal", "-shm", ".lock"}) {
        const std::string path = store_ + suffix;
        if (!std::filesystem::exists(path))
            continue;
        const std::string data = best::testing::SoftHsmToken::readFile(path);
        searched += data.size();
        expectAbsent(data, path, secrets);
        if (suffix.empty() || suffix == "-wal") {
            // The search does find what is there: the IMSIs are stored as text.
            EXPECT_NE(data.find("00101000000011"), std::string::npos) << path;
        }
    }
    EXPECT_GT(std::filesystem::file_size(store_ + "-wal"), 0u);
    EXPECT_GT(searched, 4096u);
}

}  // namespace

int main(int argc, char** argv) {
    ::testing::InitGoogleTest(&argc, argv);
    if (argc < 2) {
        std::fprintf(stderr, "usage: %s PATH-TO-best-hsectl\n", argv[0]);
        return 2;
    }
    best::testing::hsectlProgram() = argv[1];
    return RUN_ALL_TESTS();
}
