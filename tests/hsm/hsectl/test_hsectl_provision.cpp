// best-hsectl provisioning as a real process: init, status, subscriber add/import/list/show/
// remove, eas add/list/remove, --help of every subcommand, and every input error with its exact
// message and exit code (docs/operations.md lists them).
#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <vector>

#include "store/store.h"
#include "tests/hsm/hsectl/hsectl_fixture.h"

namespace {

using best::testing::HsectlTest;
using best::testing::milenageSets;

const std::string kK = "465b5ce8b199b49faa5f0a2ee238a6bc";
const std::string kOpc = "cd63cb71954a9f4e48a5994e37a02baf";
const std::string kOp = "cdc202d5123e20f62b6d676ac72cb318";

struct Expect {
    std::vector<std::string> args;
    int code;
    std::string err;  // the whole of standard error
};

class Provision : public HsectlTest {
protected:
    void expectAll(const std::vector<Expect>& cases, const std::string& in = {}) {
        for (const auto& c : cases) {
            auto r = cli(c.args, in);
            std::string joined;
            for (const auto& a : c.args)
                joined += a + " ";
            EXPECT_EQ(r.exitCode, c.code) << joined << "\n" << r.err;
            EXPECT_EQ(r.err, c.err) << joined;
            EXPECT_EQ(r.out, "") << joined;
        }
    }
    std::uint64_t count() {
        auto r = cli({"status", "--json"});
        EXPECT_EQ(r.exitCode, 0) << r.err;
        const auto p = r.out.find("\"subscribers\":");
        if (p == std::string::npos)
            return 0;
        return std::stoull(r.out.substr(p + 14));
    }
};

TEST_F(Provision, InitRefusesToOverwriteAndVerifies) {
    // SetUp ran init once; a second init refuses and changes nothing.
    auto again = cli({"init"});
    EXPECT_EQ(again.exitCode, 4);
    EXPECT_EQ(again.out, "");
    EXPECT_EQ(again.err, "best-hsectl init: token '" + token_.label() +
                             "' already holds 'best-wrap-key': the vault is initialised; nothing "
                             "done. Token keys are never overwritten; 'best-hsectl init --verify' "
                             "checks them\n");
    auto alias = cli({"hsm", "init"});
    EXPECT_EQ(alias.exitCode, 4);
    auto verify = cli({"init", "--verify"});
    EXPECT_EQ(verify.exitCode, 0) << verify.err;
    EXPECT_EQ(verify.out, "token '" + token_.label() +
                              "': best-wrap-key, best-data-key and best-binding-key are present "
                              "and locked down\nhealth probe passed\n");
    // Still exactly three keys: nothing was overwritten or added.
    auto objects = token_.pkcs11Tool("--list-objects --type secrkey");
    EXPECT_EQ(objects.status, 0) << objects.output;
    std::size_t n = 0;
    for (std::size_t p = 0; (p = objects.output.find("Secret Key Object", p)) != std::string::npos;
         ++p) {
        ++n;
    }
    EXPECT_EQ(n, 3u) << objects.output;
}

TEST_F(Provision, InitVerifyOnAnEmptyTokenFails) {
    best::testing::SoftHsmToken empty;
    empty.activate();
    auto r = best::test::runProcess(
        best::testing::hsectlProgram(),
        {"init", "--verify", "--token", empty.label(), "--pin-file", empty.pinFile()});
    token_.activate();
    EXPECT_EQ(r.exitCode, 1);
    EXPECT_EQ(r.err, "best-hsectl init: token '" + empty.label() +
                         "' has no 'best-wrap-key': initialise the vault once with `best-hsectl "
                         "hsm init`\n");
}

TEST_F(Provision, StatusTextAndJson) {
    add("001010000000001", kK, kOpc);
    ASSERT_EQ(cli({"eas", "add", "--eas-id", "eas.example.org", "--mode", "ka-only"}).exitCode, 0);
    auto j = cli({"status", "--json"});
    ASSERT_EQ(j.exitCode, 0) << j.err;
    EXPECT_EQ(j.err, "");
    EXPECT_NE(j.out.find("\"hsm\":{\"configured\":true,\"available\":true,\"module\":\"" +
                         best::testing::softHsmModule() + "\",\"token\":\"" + token_.label() +
                         "\",\"mechanisms\":{\"aes_ecb\":true,\"aes_cbc\":true,"
                         "\"sha256_hmac\":true,\"hmac_min_key_size\":32,"),
              std::string::npos)
        << j.out;
    EXPECT_NE(j.out.find("\"health\":\"ok\""), std::string::npos) << j.out;
    EXPECT_NE(j.out.find("\"store\":{\"configured\":true,\"path\":\"" + store_ +
                         "\",\"available\":true,\"daemon\":false,\"schema_version\":1,"
                         "\"subscribers\":1,\"eas\":1,\"key_sets\":0}}\n"),
              std::string::npos)
        << j.out;
    auto t = cli({"status"});
    ASSERT_EQ(t.exitCode, 0) << t.err;
    EXPECT_NE(t.out.find("  token: " + token_.label() + "\n"), std::string::npos) << t.out;
    EXPECT_NE(t.out.find("  health: ok\n"), std::string::npos) << t.out;
    EXPECT_NE(t.out.find("  daemon: not running\n"), std::string::npos) << t.out;
    EXPECT_NE(t.out.find("  subscribers: 1\n  eas: 1\n  key sets: 0\n"), std::string::npos)
        << t.out;

    // A daemon on the store shows, and the store-only form needs no HSM.
    auto daemon = best::store::Store::open(store_, {.mode = best::store::Mode::daemon});
    ASSERT_TRUE(daemon) << daemon.error().message;
    auto s = bare({"status", "--store", store_, "--json"});
    EXPECT_EQ(s.exitCode, 0) << s.err;
    EXPECT_EQ(s.out,
              "{\"hsm\":{\"configured\":false},\"store\":{\"configured\":true,\"path\":\"" +
                  store_ +
                  "\",\"available\":true,\"daemon\":true,\"schema_version\":1,\"subscribers\":1,"
                  "\"eas\":1,\"key_sets\":0}}\n");
}

TEST_F(Provision, StatusReportsWhatIsUnavailable) {
    auto none = bare({"status"});
    EXPECT_EQ(none.exitCode, 2);
    EXPECT_EQ(none.err,
              "best-hsectl status: nothing to report on: give --config FILE, or --token and "
              "--pin-file, or --store\n(see best-hsectl status --help)\n");
    auto missing = cli({"status"});  // the store file does not exist yet
    EXPECT_EQ(missing.exitCode, 6);
    EXPECT_NE(missing.out.find("store: unavailable: store '" + store_ + "' does not exist\n"),
              std::string::npos)
        << missing.out;
    const std::string wrongPin = file("wrong-pin", "999999\n");
    auto pin = bare({"status", "--token", token_.label(), "--pin-file", wrongPin, "--json"});
    EXPECT_EQ(pin.exitCode, 6);
    EXPECT_NE(pin.out.find("\"available\":false"), std::string::npos) << pin.out;
    EXPECT_NE(pin.out.find("CKR_PIN_INCORRECT"), std::string::npos) << pin.out;
}

TEST_F(Provision, AddListShowRemove) {
    ASSERT_EQ(cli({"eas", "add", "--eas-id", "eas.example.org", "--mode", "ue-to-eas"}).exitCode,
              0);
    const std::string kf = file("k", kK + "\n");
    const std::string of = file("op", kOp + "\n");
    auto a = cli({"subscriber", "add", "--imsi", "001010000000001", "--k-file", kf, "--op-file", of,
                  "--amf", "b9b9", "--sqn-start", "32", "--ind-bits", "5", "--ext-id",
                  "ue-1@example.org", "--eas", "eas.example.org"});
    ASSERT_EQ(a.exitCode, 0) << a.err;
    EXPECT_EQ(a.out,
              "subscriber 001010000000001 added: K wrapped in the HSM, OPc sealed (computed from "
              "OP inside the HSM), AMF b9b9, IND bits 5, first SEQ 32 (SQN 000000000400 with "
              "IND 0)\n");
    // K from standard input, OPc as 16 raw octets.
    const auto raw = best::testing::hexBytes(kOpc);
    const std::string rawOpc = file("opc.bin", std::string(raw.begin(), raw.end()));
    auto b = cli({"subscriber", "add", "--imsi", "001010000000002", "--k-file", "-", "--opc-file",
                  rawOpc, "--amf", "8000", "--json"},
                 kK + "\n");
    ASSERT_EQ(b.exitCode, 0) << b.err;
    EXPECT_EQ(b.out,
              "{\"imsi\":\"001010000000002\",\"added\":true,\"k\":\"wrapped in the HSM\","
              "\"op_given\":\"opc\",\"op_kind\":\"opc\",\"amf\":\"8000\",\"ind_bits\":5,"
              "\"first_seq\":1,\"first_sqn\":\"000000000020\"}\n");

    auto list = cli({"subscriber", "list"});
    ASSERT_EQ(list.exitCode, 0) << list.err;
    EXPECT_EQ(list.out,
              "IMSI             EXTERNAL-UE-ID        OP   AMF   IND  EAS\n"
              "001010000000001  ue-1@example.org      opc  b9b9  5    eas.example.org\n"
              "001010000000002  -                     opc  8000  5    -\n");
    auto page = cli({"subscriber", "list", "--after", "001010000000001", "--json"});
    ASSERT_EQ(page.exitCode, 0) << page.err;
    EXPECT_EQ(page.out.substr(0, page.out.find("\"created_at\"")),
              "{\"count\":1,\"subscribers\":[{\"imsi\":\"001010000000002\",\"external_ue_id\":null,"
              "\"algorithm\":\"milenage\",\"op_kind\":\"opc\",\"amf\":\"8000\",\"ind_bits\":5,"
              "\"allowed_eas\":[],");

    auto show = cli({"subscriber", "show", "--ext-id", "ue-1@example.org"});
    ASSERT_EQ(show.exitCode, 0) << show.err;
    EXPECT_EQ(show.out.substr(0, show.out.find("created_at")),
              "imsi: 001010000000001\nexternal_ue_id: ue-1@example.org\nalgorithm: milenage\n"
              "op_kind: opc\namf: b9b9\nind_bits: 5\nallowed_eas: eas.example.org\n");
    const std::string tail = show.out.substr(show.out.find("seq_he"));
    EXPECT_EQ(tail,
              "seq_he: 31\nnext_sqn: 000000000400 (SEQ 32, IND 0)\nsqn_last_change: provision\n"
              "sqn_reservations: 0\nkey_sets: 0\nrefresh: none\n");
    // Neither list nor show prints key material (nor the blobs).
    for (const auto* out : {&list.out, &show.out, &page.out}) {
        EXPECT_EQ(out->find(kK), std::string::npos);
        EXPECT_EQ(out->find(kOp), std::string::npos);
        EXPECT_EQ(out->find(kOpc), std::string::npos);
    }

    auto rm = cli({"subscriber", "remove", "--imsi", "001010000000001"});
    ASSERT_EQ(rm.exitCode, 0) << rm.err;
    EXPECT_EQ(rm.out,
              "subscriber 001010000000001 removed (with its SQN state, key sets and refresh)\n");
    auto gone = cli({"subscriber", "show", "--imsi", "001010000000001"});
    EXPECT_EQ(gone.exitCode, 4);
    EXPECT_EQ(gone.err, "best-hsectl subscriber show: unknown IMSI 001010000000001\n");
    EXPECT_EQ(count(), 1u);
}

TEST_F(Provision, EasAddListRemove) {
    const std::string fp(64, 'a');
    auto a = cli({"eas", "add", "--eas-id", "eas.example.org", "--mode", "ue-to-eas",
                  "--cert-sha256", fp, "--up-endpoint", "[::1]:9443"});
    ASSERT_EQ(a.exitCode, 0) << a.err;
    EXPECT_EQ(a.out, "EAS 'eas.example.org' added (ue-to-eas)\n");
    auto b = cli({"eas", "add", "--eas-id", "ka.example.org", "--mode", "ka-only", "--json"});
    ASSERT_EQ(b.exitCode, 0) << b.err;
    EXPECT_EQ(b.out, "{\"eas_id\":\"ka.example.org\",\"added\":true}\n");
    auto list = cli({"eas", "list", "--json"});
    ASSERT_EQ(list.exitCode, 0) << list.err;
    EXPECT_EQ(list.out.substr(0, list.out.find("\"created_at\"")),
              "{\"count\":2,\"eas\":[{\"eas_id\":\"eas.example.org\",\"mode\":\"ue-to-eas\","
              "\"cert_sha256\":\"" +
                  fp + "\",\"up_endpoint\":\"[::1]:9443\",");
    EXPECT_NE(list.out.find("{\"eas_id\":\"ka.example.org\",\"mode\":\"ka-only\","
                            "\"cert_sha256\":null,\"up_endpoint\":null,"),
              std::string::npos)
        << list.out;
    auto text = cli({"eas", "list"});
    EXPECT_TRUE(std::regex_search(
        text.out, std::regex("^EAS-ID +MODE +CERT-SHA256 +UP-ENDPOINT\n"
                             "eas\\.example\\.org +ue-to-eas +a{64}  \\[::1\\]:9443\n")))
        << text.out;

    add("001010000000001", kK, kOpc, false, {"--eas", "eas.example.org"});
    expectAll({
        {{"eas", "add", "--eas-id", "eas.example.org", "--mode", "ka-only"},
         4,
         "best-hsectl eas add: EAS 'eas.example.org' already exists\n"},
        {{"eas", "add", "--eas-id", "x.example.org", "--mode", "ka-only", "--cert-sha256", fp},
         4,
         "best-hsectl eas add: that client certificate is already registered for another EAS\n"},
        {{"eas", "add", "--eas-id", "x.example.org", "--mode", "both"},
         2,
         "best-hsectl eas add: --mode must be ka-only, ue-to-hse or ue-to-eas, got 'both'\n"
         "(see best-hsectl eas add --help)\n"},
        {{"eas", "add", "--eas-id", "x.example.org", "--mode", "ka-only", "--cert-sha256", "abcd"},
         2,
         "best-hsectl eas add: certificate SHA-256: expected 32 octets, got 2\n"},
        {{"eas", "add", "--eas-id", "x.example.org", "--mode", "ka-only", "--up-endpoint", "nope"},
         2,
         "best-hsectl eas add: UP endpoint must be host:port or [v6-address]:port, got 'nope'\n"},
        {{"eas", "remove", "--eas-id", "eas.example.org"},
         4,
         "best-hsectl eas remove: EAS 'eas.example.org' is still allowed for 1 subscriber(s); "
         "remove it from them first\n"},
        {{"eas", "remove", "--eas-id", "nope.example.org"},
         4,
         "best-hsectl eas remove: unknown EAS 'nope.example.org'\n"},
    });
    auto rm = cli({"eas", "remove", "--eas-id", "ka.example.org"});
    EXPECT_EQ(rm.exitCode, 0) << rm.err;
    EXPECT_EQ(rm.out, "EAS 'ka.example.org' removed\n");
    auto after = cli({"eas", "list", "--json"});
    EXPECT_EQ(after.out.substr(0, 11), "{\"count\":1,");
}

TEST_F(Provision, EveryAddErrorHasItsMessageAndExitCode) {
    add("001010000000001", kK, kOpc);
    const std::string k = file("k", kK + "\n");
    const std::string opc = file("opc", kOpc + "\n");
    const std::string op = file("op", kOp + "\n");
    const std::string badHex = file("bad-hex", "465b5ce8b199b49faa5f0a2ee238a6bz\n");
    const std::string shortK = file("short", "465b5ce8b199b49faa5f0a2ee238a6\n");
    const std::string oddK = file("odd", "465b5ce8b199b49faa5f0a2ee238a6b\n");
    const std::string wrapped = file("wrapped", std::string(48, 'a'));
    const std::vector<std::string> base{"subscriber", "add", "--imsi", "001010000000002"};
    const auto with = [&](std::vector<std::string> extra) {
        std::vector<std::string> a = base;
        a.insert(a.end(), extra.begin(), extra.end());
        return a;
    };
    const std::string see = "(see best-hsectl subscriber add --help)\n";
    expectAll({
        // Missing file, bad hex, wrong length, odd length.
        {with({"--k-file", "/nonexistent/k", "--opc-file", opc, "--amf", "8000"}), 2,
         "best-hsectl subscriber add: K file '/nonexistent/k': No such file or directory\n"},
        {with({"--k-file", badHex, "--opc-file", opc, "--amf", "8000"}), 2,
         "best-hsectl subscriber add: K: not a hex digit at position 31\n"},
        {with({"--k-file", shortK, "--opc-file", opc, "--amf", "8000"}), 2,
         "best-hsectl subscriber add: K: expected 16 octets, got 15\n"},
        {with({"--k-file", oddK, "--opc-file", opc, "--amf", "8000"}), 2,
         "best-hsectl subscriber add: K: hex has an odd number of digits\n"},
        {with({"--k-file", k, "--opc-file", shortK, "--amf", "8000"}), 2,
         "best-hsectl subscriber add: OPc: expected 16 octets, got 15\n"},
        {with({"--k-file", k, "--op-file", "/nonexistent/op", "--amf", "8000"}), 2,
         "best-hsectl subscriber add: OP file '/nonexistent/op': No such file or directory\n"},
        // OP and OPc both, and neither.
        {with({"--k-file", k, "--op-file", op, "--opc-file", opc, "--amf", "8000"}), 2,
         "best-hsectl subscriber add: give exactly one of --op-file and --opc-file (OP is the "
         "operator variant, OPc = OP xor E_K(OP))\n" +
             see},
        {with({"--k-file", k, "--amf", "8000"}), 2,
         "best-hsectl subscriber add: give exactly one of --op-file and --opc-file (OP is the "
         "operator variant, OPc = OP xor E_K(OP))\n" +
             see},
        // K: none, two sources, a wrapped K without its transport key.
        {with({"--opc-file", opc, "--amf", "8000"}), 2,
         "best-hsectl subscriber add: missing --k-file (or --k-wrapped-file with "
         "--transport-key)\n" +
             see},
        {with({"--k-file", k, "--k-wrapped-file", wrapped, "--opc-file", opc, "--amf", "8000"}), 2,
         "best-hsectl subscriber add: give one of --k-file and --k-wrapped-file\n" + see},
        {with({"--k-wrapped-file", wrapped, "--opc-file", opc, "--amf", "8000"}), 2,
         "best-hsectl subscriber add: --k-wrapped-file needs --transport-key LABEL (the token's "
         "key that unwraps it)\n" +
             see},
        {with({"--k-wrapped-file", wrapped, "--transport-key", "no-such-key", "--opc-file", opc,
               "--amf", "8000"}),
         6,
         "best-hsectl subscriber add: transport key 'no-such-key' not found on token '" +
             token_.label() + "': import the operator's transport key (CKA_UNWRAP) first\n"},
        // Other arguments.
        {with({"--k-file", k, "--opc-file", opc}), 2,
         "best-hsectl subscriber add: missing --amf\n" + see},
        {with({"--k-file", k, "--opc-file", opc, "--amf", "80"}), 2,
         "best-hsectl subscriber add: AMF: expected 2 octets, got 1\n"},
        {with({"--k-file", k, "--opc-file", opc, "--amf", "8000", "--sqn-start", "0"}), 2,
         "best-hsectl subscriber add: --sqn-start SEQ must be a number from 1 to "
         "8796093022207, got '0'\n"},
        {with({"--k-file", k, "--opc-file", opc, "--amf", "8000", "--sqn-start",
               "sqn:00000000001f"}),
         2,
         "best-hsectl subscriber add: --sqn-start: SQN 00000000001f has SEQ 0 with 5 IND bits; "
         "the first SEQ handed out is 1\n"},
        {with({"--k-file", k, "--opc-file", opc, "--amf", "8000", "--sqn-start", "0x20"}), 2,
         "best-hsectl subscriber add: --sqn-start must be a SEQ (decimal) or sqn:HEX (6 octets), "
         "got '0x20'\n"},
        {with({"--k-file", k, "--opc-file", opc, "--amf", "8000", "--ind-bits", "17"}), 2,
         "best-hsectl subscriber add: --ind-bits must be a number from 0 to 16, got '17'\n"},
        {with({"--k-file", k, "--opc-file", opc, "--amf", "8000", "--eas", "nope.example.org"}), 4,
         "best-hsectl subscriber add: EAS 'nope.example.org' is not in the EAS registry\n"},
        {{"subscriber", "add", "--imsi", "00101x", "--k-file", k, "--opc-file", opc, "--amf",
          "8000"},
         2,
         "best-hsectl subscriber add: IMSI must contain digits only\n"},
        {{"subscriber", "add", "--imsi", "00101", "--k-file", k, "--opc-file", opc, "--amf",
          "8000"},
         2,
         "best-hsectl subscriber add: IMSI must have 6 to 15 digits, got 5\n"},
        // Duplicate IMSI.
        {{"subscriber", "add", "--imsi", "001010000000001", "--k-file", k, "--opc-file", opc,
          "--amf", "8000"},
         4,
         "best-hsectl subscriber add: subscriber 001010000000001 already exists\n"},
        // Keys are never taken from the command line.
        {with({"--k", kK, "--opc-file", opc, "--amf", "8000"}), 2,
         "best-hsectl subscriber add: unknown option --k\n" + see},
        {with({"--opc", kOpc}), 2, "best-hsectl subscriber add: unknown option --opc\n" + see},
    });
    // Two values from standard input.
    auto two = cli(with({"--k-file", "-", "--opc-file", "-", "--amf", "8000"}), kK + "\n");
    EXPECT_EQ(two.exitCode, 2);
    EXPECT_EQ(two.err,
              "best-hsectl subscriber add: only one value can be read from standard input\n");
    EXPECT_EQ(count(), 1u);
}

TEST_F(Provision, UnknownImsiEverywhere) {
    add("001010000000001", kK, kOpc);
    const std::string auts = file("auts", std::string(28, '0'));
    const std::string imsi = "001019999999999";
    expectAll({
        {{"subscriber", "show", "--imsi", imsi},
         4,
         "best-hsectl subscriber show: unknown IMSI " + imsi + "\n"},
        {{"subscriber", "show", "--ext-id", "nobody"},
         4,
         "best-hsectl subscriber show: no subscriber has external UE id 'nobody'\n"},
        {{"subscriber", "remove", "--imsi", imsi},
         4,
         "best-hsectl subscriber remove: unknown IMSI " + imsi + "\n"},
        {{"sqn", "show", "--imsi", imsi}, 4, "best-hsectl sqn show: unknown IMSI " + imsi + "\n"},
        {{"sqn", "set", "--imsi", imsi, "--next", "5"},
         4,
         "best-hsectl sqn set: unknown IMSI " + imsi + "\n"},
        {{"sqn", "resync", "--imsi", imsi, "--auts-file", auts, "--rand", std::string(32, '0')},
         4,
         "best-hsectl sqn resync: unknown IMSI " + imsi + "\n"},
        {{"aka-vector", "--imsi", imsi}, 4, "best-hsectl aka-vector: unknown IMSI " + imsi + "\n"},
    });
}

TEST_F(Provision, ChangesAreRefusedWhileADaemonHoldsTheStore) {
    add("001010000000001", kK, kOpc);
    ASSERT_EQ(cli({"eas", "add", "--eas-id", "eas.example.org", "--mode", "ka-only"}).exitCode, 0);
    auto daemon = best::store::Store::open(store_, {.mode = best::store::Mode::daemon});
    ASSERT_TRUE(daemon) << daemon.error().message;
    const std::string k = file("k", kK + "\n");
    const std::string opc = file("opc", kOpc + "\n");
    const std::string auts = file("auts", std::string(28, '0'));
    const std::string csv =
        file("import.csv", "imsi,k,opc,amf\n001010000000009," + kK + "," + kOpc + ",8000\n");
    const std::string why = "store '" + store_ +
                            "' is in use by a running daemon (best-hsed); this change would race "
                            "it: stop the daemon first (sqn set and sqn resync go through its "
                            "admin socket instead)\n";
    // sqn set and resync try the daemon's admin socket (none here: a socket path that does
    // not exist) and are refused when it cannot be used.
    const std::string noSocket = token_.dir() + "/no-admin.sock";
    const std::string viaSocket =
        "store '" + store_ +
        "' is in use by a running daemon (best-hsed) and its admin socket cannot be used (admin "
        "socket '" +
        noSocket +
        "': No such file or directory): the change would race the daemon; give --admin-socket "
        "PATH or stop the daemon\n";
    expectAll({
        {{"subscriber", "add", "--imsi", "001010000000002", "--k-file", k, "--opc-file", opc,
          "--amf", "8000"},
         5,
         "best-hsectl subscriber add: " + why},
        {{"subscriber", "import", "--file", csv}, 5, "best-hsectl subscriber import: " + why},
        {{"subscriber", "remove", "--imsi", "001010000000001"},
         5,
         "best-hsectl subscriber remove: " + why},
        {{"sqn", "set", "--imsi", "001010000000001", "--next", "10", "--admin-socket", noSocket},
         5,
         "best-hsectl sqn set: " + viaSocket},
        {{"sqn", "resync", "--imsi", "001010000000001", "--auts-file", auts, "--rand",
          std::string(32, '0'), "--admin-socket", noSocket},
         5,
         "best-hsectl sqn resync: " + viaSocket},
        {{"eas", "add", "--eas-id", "x.example.org", "--mode", "ka-only"},
         5,
         "best-hsectl eas add: " + why},
        {{"eas", "remove", "--eas-id", "eas.example.org"}, 5, "best-hsectl eas remove: " + why},
        {{"aka-vector", "--imsi", "001010000000001"}, 5, "best-hsectl aka-vector: " + why},
    });
    // Reads still work under the daemon.
    auto show = cli({"sqn", "show", "--imsi", "001010000000001"});
    EXPECT_EQ(show.exitCode, 0) << show.err;
    auto list = cli({"subscriber", "list"});
    EXPECT_EQ(list.exitCode, 0) << list.err;
    daemon->reset();
    EXPECT_EQ(count(), 1u);
}

TEST_F(Provision, SettingsErrors) {
    expectAll({
        {{"subscriber", "list", "--store", store_},
         2,
         "best-hsectl subscriber list: option --store given twice\n"
         "(see best-hsectl subscriber list --help)\n"},
        {{"subscriber", "list", "--limit", "0"},
         2,
         "best-hsectl subscriber list: --limit must be a number from 1 to 4294967295, got "
         "'0'\n"},
    });
    auto noStore = bare({"subscriber", "list"});
    EXPECT_EQ(noStore.exitCode, 2);
    EXPECT_EQ(noStore.err,
              "best-hsectl subscriber list: no store: give --store FILE or --config FILE\n");
    auto missing = cli({"subscriber", "list"});
    EXPECT_EQ(missing.exitCode, 6);
    EXPECT_EQ(missing.err, "best-hsectl subscriber list: store '" + store_ + "' does not exist\n");
    auto noPin = bare({"selftest", "--token", token_.label()});
    EXPECT_EQ(noPin.exitCode, 2);
    EXPECT_EQ(noPin.err,
              "best-hsectl selftest: no PIN file: give --pin-file FILE or --config FILE (a PIN is "
              "never taken from the command line)\n");
    auto noToken = bare({"selftest"});
    EXPECT_EQ(noToken.exitCode, 2);
    EXPECT_EQ(noToken.err,
              "best-hsectl selftest: no HSM token: give --token LABEL (or a pkcs11: URI) or "
              "--config FILE\n");
    auto badConfig = bare({"status", "--config", "/nonexistent/hsed.yaml"});
    EXPECT_EQ(badConfig.exitCode, 2);
    EXPECT_EQ(badConfig.err.rfind("best-hsectl status: ", 0), 0u) << badConfig.err;
    EXPECT_NE(badConfig.err.find("/nonexistent/hsed.yaml"), std::string::npos) << badConfig.err;
    auto noToken2 = bare({"status", "--token", "no-such-token", "--pin-file", token_.pinFile()});
    EXPECT_EQ(noToken2.exitCode, 6);
    EXPECT_NE(noToken2.out.find("hsm: unavailable: token 'no-such-token' not found"),
              std::string::npos)
        << noToken2.out;
}

TEST_F(Provision, GlobalOptionsBeforeTheCommandAndFromTheConfig) {
    const auto g = globals();
    std::vector<std::string> args = g;
    args.insert(args.end(), {"eas", "add", "--eas-id", "eas.example.org", "--mode", "ka-only"});
    auto before = bare(args);
    EXPECT_EQ(before.exitCode, 0) << before.err;
    auto viaConfig = bare({"eas", "list", "--json", "--config", config(0, 5)});
    EXPECT_EQ(viaConfig.exitCode, 0) << viaConfig.err;
    EXPECT_EQ(viaConfig.out.substr(0, 40), "{\"count\":1,\"eas\":[{\"eas_id\":\"eas.example");
    // A pkcs11: URI naming the module and the PIN file.
    auto uri =
        bare({"init", "--verify", "--token",
              "pkcs11:token=" + token_.label() + "?module-path=" + best::testing::softHsmModule() +
                  "&pin-source=file:" + token_.pinFile()});
    EXPECT_EQ(uri.exitCode, 0) << uri.err;
    // Explicit options win over the config.
    const std::string other = token_.dir() + "/other.db";
    auto override = bare({"eas", "add", "--eas-id", "b.example.org", "--mode", "ka-only",
                          "--config", config(0, 5), "--store", other});
    EXPECT_EQ(override.exitCode, 0) << override.err;
    auto otherList = bare({"eas", "list", "--json", "--store", other});
    EXPECT_EQ(otherList.out.substr(0, 40), "{\"count\":1,\"eas\":[{\"eas_id\":\"b.example.o");
}

TEST_F(Provision, ImportCsvAllOrNothing) {
    ASSERT_EQ(cli({"eas", "add", "--eas-id", "eas.example.org", "--mode", "ka-only"}).exitCode, 0);
    // 1,200 subscribers: three progress lines; OP and OPc lines mixed, defaults from options.
    std::string csv =
        "# exported by the operator\nimsi,k,op,opc,amf,sqn_start,ext_id,eas,ind_bits\n";
    for (int i = 0; i < 1200; ++i) {
        char imsi[16];
        std::snprintf(imsi, sizeof imsi, "00101%010d", i);
        const bool op = i % 3 == 0;
        csv += std::string(imsi) + "," + kK + "," + (op ? kOp : "") + "," + (op ? "" : kOpc) + "," +
               (i % 2 == 0 ? "b9b9" : "") + "," + (i == 7 ? "sqn:ff9bb4d0b607" : "") + "," +
               (i == 5 ? "ue-5" : "") + "," + (i == 9 ? "eas.example.org" : "") + "," +
               (i == 11 ? "0" : "") + "\n";
        if (i == 3)
            csv += "\n# a comment in the middle\n";
    }
    const std::string path = file("subscribers.csv", csv);
    auto r = cli({"subscriber", "import", "--file", path, "--amf", "8000"});
    ASSERT_EQ(r.exitCode, 0) << r.err;
    EXPECT_EQ(r.out, "1200 subscribers imported from " + path + "\n");
    EXPECT_EQ(r.err,
              "import: 500 of 1200 subscribers sealed in the HSM\n"
              "import: 1000 of 1200 subscribers sealed in the HSM\n"
              "import: 1200 of 1200 subscribers sealed in the HSM\n");
    EXPECT_EQ(count(), 1200u);
    auto s1 = cli({"subscriber", "show", "--imsi", "001010000000001", "--json"});
    EXPECT_NE(s1.out.find("\"amf\":\"8000\""), std::string::npos) << s1.out;
    auto s5 = cli({"subscriber", "show", "--ext-id", "ue-5", "--json"});
    EXPECT_NE(s5.out.find("\"imsi\":\"001010000000005\""), std::string::npos) << s5.out;
    auto s7 = cli({"sqn", "show", "--imsi", "001010000000007"});
    EXPECT_NE(s7.out.find("next_sqn: ff9bb4d0b600\n"), std::string::npos) << s7.out;
    auto s9 = cli({"subscriber", "show", "--imsi", "001010000000009"});
    EXPECT_NE(s9.out.find("allowed_eas: eas.example.org\n"), std::string::npos) << s9.out;
    auto s11 = cli({"subscriber", "show", "--imsi", "001010000000011"});
    EXPECT_NE(s11.out.find("ind_bits: 0\n"), std::string::npos) << s11.out;

    // Bad files: nothing is imported, the error names the line.
    const std::string head = "imsi,k,opc,amf\n";
    const auto line = [&](const std::string& imsi, const std::string& k, const std::string& o) {
        return imsi + "," + k + "," + o + ",8000\n";
    };
    struct Bad {
        std::string content;
        int code;
        std::string err;
    };
    const std::vector<Bad> bad = {
        {head + line("001020000000001", kK, kOpc) + line("001020000000002", kK.substr(2), kOpc), 2,
         "line 3 (IMSI 001020000000002): K: expected 16 octets, got 15"},
        {head + line("001020000000001", kK, kOpc) +
             line("001020000000002", kK, "zz" + kOpc.substr(2)),
         2, "line 3 (IMSI 001020000000002): OPc: not a hex digit at position 0"},
        {"imsi,k,op,opc,amf\n001020000000001," + kK + "," + kOp + "," + kOpc + ",8000\n", 2,
         "line 2 (IMSI 001020000000001): give exactly one of op and opc (OP is the operator "
         "variant, OPc = OP xor E_K(OP))"},
        {"imsi,k,amf\n001020000000001," + kK + ",8000\n", 2,
         "line 1: the header has no 'op' or 'opc' column (say which one the file holds: OPc = "
         "OP xor E_K(OP))"},
        {"imsi,k,opc,amf,colour\n", 2,
         "line 1: unknown column 'colour' (columns: imsi, k or k_wrapped, op or opc, amf, "
         "sqn_start, ext_id, eas, ind_bits)"},
        {head + line("001020000000001", kK, kOpc) + "001020000000002," + kK + "\n", 2,
         "line 3: expected 4 fields, got 2"},
        {head + line("00102000000000x", kK, kOpc), 2, "line 2: IMSI must contain digits only"},
        {head + line("001020000000001", kK, kOpc) + line("001020000000001", kK, kOpc), 2,
         "line 3 (IMSI 001020000000001): IMSI 001020000000001 appears twice"},
        {head + line("001020000000001", kK, kOpc) + line("001010000000004", kK, kOpc), 4,
         "line 3 (IMSI 001010000000004): subscriber 001010000000004 already exists"},
        {"imsi,k,opc,amf,eas\n001020000000001," + kK + "," + kOpc + ",8000,nope\n", 4,
         "line 2 (IMSI 001020000000001): EAS 'nope' is not in the EAS registry"},
        {"imsi,k,opc,amf,ext_id\n001020000000001," + kK + "," + kOpc + ",8000,ue-5\n", 4,
         "line 2 (IMSI 001020000000001): external UE id 'ue-5' is already used by subscriber "
         "001010000000005"},
        {"imsi,k_wrapped,opc,amf\n001020000000001," + std::string(48, 'a') + "," + kOpc + ",8000\n",
         2, ""},
        {"# only a comment\n", 2, "the import file has no header line"},
    };
    for (const auto& b : bad) {
        const std::string p = file("bad.csv", b.content);
        auto e = cli({"subscriber", "import", "--file", p});
        EXPECT_EQ(e.exitCode, b.code) << b.content << e.err;
        EXPECT_EQ(e.out, "");
        if (b.err.empty()) {
            EXPECT_EQ(e.err,
                      "best-hsectl subscriber import: the file has k_wrapped values: give "
                      "--transport-key LABEL\n(see best-hsectl subscriber import --help)\n");
        } else {
            EXPECT_EQ(e.err, "best-hsectl subscriber import: " + b.err + "; nothing imported\n");
        }
    }
    EXPECT_EQ(count(), 1200u);
    auto none = cli({"subscriber", "show", "--imsi", "001020000000001"});
    EXPECT_EQ(none.exitCode, 4);
}

TEST_F(Provision, HelpForEverySubcommand) {
    const std::vector<std::vector<std::string>> commands = {
        {"init"},
        {"hsm", "init"},
        {"status"},
        {"selftest"},
        {"subscriber", "add"},
        {"subscriber", "import"},
        {"subscriber", "list"},
        {"subscriber", "show"},
        {"subscriber", "remove"},
        {"sqn", "show"},
        {"sqn", "set"},
        {"sqn", "resync"},
        {"eas", "add"},
        {"eas", "list"},
        {"eas", "remove"},
        {"aka-vector"},
        {"aka-vector", "--imsi", "001010000000001"},
    };
    for (auto c : commands) {
        std::string name;
        for (const auto& w : c) {
            if (w.rfind("--", 0) == 0)
                break;
            name += (name.empty() ? "" : " ") + w;
        }
        c.push_back("--help");
        auto r = bare(c);
        EXPECT_EQ(r.exitCode, 0) << name;
        EXPECT_EQ(r.err, "") << name;
        const std::string shown = name == "hsm init" ? "init" : name;
        EXPECT_EQ(r.out.rfind("usage: best-hsectl " + shown, 0), 0u) << r.out;
        if (name != "aka-vector") {
            EXPECT_NE(r.out.find("--pin-file FILE"), std::string::npos) << name;
        }
    }
    for (const char* group : {"subscriber", "sqn", "eas", "hsm"}) {
        auto r = bare({group, "--help"});
        EXPECT_EQ(r.exitCode, 0) << group;
        EXPECT_EQ(r.out.rfind("usage: best-hsectl ", 0), 0u) << group;
        auto u = bare({group, "frobnicate"});
        EXPECT_EQ(u.exitCode, 2);
        EXPECT_EQ(u.err, std::string("best-hsectl ") + group + ": unknown action 'frobnicate' " +
                             "(see best-hsectl " + group + " --help)\n");
    }
    auto top = bare({"--help"});
    EXPECT_EQ(top.exitCode, 0);
    for (const char* c : {"init", "status", "subscriber", "sqn", "eas", "selftest", "aka-vector"})
        EXPECT_NE(top.out.find(std::string("  ") + c), std::string::npos) << c;
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
