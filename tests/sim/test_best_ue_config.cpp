// best-ue's configuration: every key, and each bad input with its exact message.
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include "config.h"

namespace best::ueagent {
namespace {

const std::string kBase =
    "hse:\n  address: 127.0.0.1\n  port: 7163\n  hse_id: hse.example.org\n"
    "eas_id: eas-hse\n"
    "serving_network: {mcc: \"001\", mnc: \"01\"}\n"
    "key_agreements: [umts, eps, 5g]\n"
    "state_file: /var/lib/best-ue/ue.state\n"
    "control_socket: /run/best-ue/control.sock\n";
const std::string kPcsc = "usim:\n  source: pcsc\n  reader: \"BEST vusim*\"\n";

std::string errorOf(const std::string& text) {
    auto c = parseAgentConfig(text, "ue.yaml");
    return c ? std::string("<accepted>") : c.error().message;
}

TEST(BestUeConfig, PcscConfiguration) {
    auto c = parseAgentConfig(kBase + kPcsc +
                                  "  iccid: \"89999010010101234567\"\n  pin_file: /etc/pin\n"
                                  "  card_timeout_ms: 2500\nimsi: \"001010123456789\"\n"
                                  "confidentiality: true\nkey_sets_storable: false\n"
                                  "logging: {level: debug}\n",
                              "ue.yaml");
    ASSERT_TRUE(c) << c.error().message;
    EXPECT_EQ(c->hseAddress, "127.0.0.1");
    EXPECT_EQ(c->hsePort, 7163);
    EXPECT_EQ(c->hseId, "hse.example.org");
    EXPECT_EQ(c->easId, "eas-hse");
    EXPECT_EQ(c->imsi, "001010123456789");
    ASSERT_TRUE(c->servingNetwork);
    EXPECT_EQ(*c->servingNetwork, (crypto::PlmnId{0x00, 0xf1, 0x10}));
    ASSERT_EQ(c->keyAgreements.size(), 3u);
    EXPECT_EQ(c->keyAgreements[2], crypto::KeyAgreement::fiveG);
    EXPECT_TRUE(c->confidentiality);
    EXPECT_FALSE(c->keySetsStorable);
    EXPECT_EQ(c->stateFile, "/var/lib/best-ue/ue.state");
    EXPECT_EQ(c->controlSocket, "/run/best-ue/control.sock");
    EXPECT_EQ(c->usim.source, UsimSource::pcsc);
    EXPECT_EQ(c->usim.reader, "BEST vusim*");
    EXPECT_EQ(c->usim.iccid, "89999010010101234567");
    EXPECT_EQ(c->usim.pinFile, "/etc/pin");
    EXPECT_EQ(c->usim.cardTimeout.count(), 2500);
    EXPECT_EQ(c->logLevel, "debug");
}

TEST(BestUeConfig, DefaultsAndSoftwareUsim) {
    auto c = parseAgentConfig(
        "hse: {address: \"::1\"}\neas_id: e\nkey_agreements: [umts]\nstate_file: s\n"
        "control_socket: c\nimsi: \"001010000000001\"\nusim:\n  source: software\n"
        "  k: 465b5ce8b199b49faa5f0a2ee238a6bc\n  opc: cd63cb71954a9f4e48a5994e37a02baf\n"
        "  sqn_state_file: /tmp/x.sqn\n",
        "ue.yaml");
    ASSERT_TRUE(c) << c.error().message;
    EXPECT_EQ(c->hseAddress, "::1");
    EXPECT_EQ(c->hsePort, 7163);
    EXPECT_EQ(c->hseId, "");
    EXPECT_FALSE(c->servingNetwork);
    EXPECT_FALSE(c->confidentiality);
    EXPECT_TRUE(c->keySetsStorable);
    EXPECT_EQ(c->usim.source, UsimSource::software);
    EXPECT_EQ(c->usim.k.view()[0], 0x46);
    EXPECT_EQ(c->usim.opc.view()[15], 0xaf);
    EXPECT_EQ(c->usim.sqnStateFile, "/tmp/x.sqn");
    EXPECT_EQ(c->logLevel, "notice");
}

TEST(BestUeConfig, EachBadInputHasItsMessage) {
    EXPECT_EQ(errorOf("eas_id: e\n"),
              "ue.yaml:1:1: 'hse' is missing (address and port of the HSE)");
    EXPECT_EQ(errorOf(kBase + kPcsc + "colour: blue\n"),
              "ue.yaml:13:1: unknown key 'colour' in the top level");
    EXPECT_EQ(errorOf("hse: {port: 0}\n"), "ue.yaml:1:13: hse.port must be 1..65535");
    EXPECT_EQ(errorOf("hse: {port: 70000}\n"), "ue.yaml:1:13: hse.port: 70000 is above 65535");
    EXPECT_EQ(errorOf("hse: {port: x}\n"), "ue.yaml:1:13: hse.port: 'x' is not a decimal number");
    EXPECT_EQ(errorOf("hse: {}\n"), "ue.yaml:1:1: 'eas_id' is missing");
    EXPECT_EQ(errorOf("hse: {}\neas_id: " + std::string(65, 'e') + "\n"),
              "ue.yaml:2:9: eas_id is longer than 64 octets");
    EXPECT_EQ(errorOf(kBase + kPcsc + "imsi: \"12345\"\n"),
              "ue.yaml:13:7: imsi must be 6 to 15 digits");
    EXPECT_EQ(errorOf("hse: {}\neas_id: e\nkey_agreements: [lte]\n"),
              "ue.yaml:3:18: key agreement 'lte': use umts, eps or 5g");
    EXPECT_EQ(errorOf("hse: {}\neas_id: e\nkey_agreements: []\n"),
              "ue.yaml:3:17: key_agreements must be a list of umts, eps, 5g");
    EXPECT_EQ(errorOf("hse: {}\neas_id: e\nkey_agreements: [eps]\n"),
              "ue.yaml:1:1: serving_network (mcc, mnc) is needed for eps, 5g or confidentiality");
    EXPECT_EQ(errorOf("hse: {}\neas_id: e\nkey_agreements: [umts]\nconfidentiality: yes\n"),
              "ue.yaml:4:18: confidentiality must be true or false");
    EXPECT_EQ(errorOf("hse: {}\neas_id: e\nserving_network: {mcc: \"01\", mnc: \"01\"}\n"),
              "ue.yaml:3:18: MCC '01' must be 3 digits");
    EXPECT_EQ(errorOf("hse: {}\neas_id: e\nserving_network: {mcc: \"001\", mnc: \"1234\"}\n"),
              "ue.yaml:3:18: MNC '1234' must be 2 or 3 digits");
    EXPECT_EQ(errorOf("hse: {}\neas_id: e\nkey_agreements: [umts]\ncontrol_socket: c\n"),
              "ue.yaml:1:1: 'state_file' is missing");
    EXPECT_EQ(errorOf(kBase), "ue.yaml:1:1: 'usim' is missing (source: pcsc or software)");
    EXPECT_EQ(errorOf(kBase + "usim: {source: nfc}\n"),
              "ue.yaml:10:16: usim.source 'nfc': use pcsc or software");
    EXPECT_EQ(errorOf(kBase + "usim: {source: pcsc}\n"),
              "ue.yaml:10:7: usim.reader (a reader name pattern) is missing");
    EXPECT_EQ(errorOf(kBase + kPcsc + "  k: 00\n"),
              "ue.yaml:13:6: usim.k belongs to source software");
    EXPECT_EQ(errorOf(kBase + "usim: {source: software, reader: x}\n"),
              "ue.yaml:10:34: usim.reader belongs to source pcsc");
    EXPECT_EQ(errorOf(kBase + "usim: {source: software, k: 00, opc: 00}\n"),
              "ue.yaml:10:7: usim source software needs k, opc and sqn_state_file");
    EXPECT_EQ(errorOf(kBase + kPcsc + "  card_timeout_ms: 700000\n"),
              "ue.yaml:13:20: usim.card_timeout_ms: 700000 is above 600000");
    EXPECT_EQ(errorOf(kBase + kPcsc + "logging: {level: loud}\n"),
              "ue.yaml:13:18: logging.level: use debug, info, notice, warning or error");
    EXPECT_EQ(errorOf("hse: [\n"), errorOf("hse: [\n"));  // stable
    EXPECT_NE(errorOf("hse: [\n").find("ue.yaml: "), std::string::npos);
    EXPECT_EQ(errorOf("- a\n"), "ue.yaml: not a YAML mapping");
}

TEST(BestUeConfig, SoftwareKeysNeverInMessages) {
    const std::string bad = "465b5ce8b199b49faa5f0a2ee238a6zz";
    const std::string msg =
        errorOf(kBase + "imsi: \"001010000000001\"\nusim:\n  source: software\n  k: " + bad +
                "\n  opc: cd63cb71954a9f4e48a5994e37a02baf\n  sqn_state_file: s\n");
    EXPECT_NE(msg.find("usim.k"), std::string::npos) << msg;
    EXPECT_EQ(msg.find("465b5ce8"), std::string::npos) << msg;
    EXPECT_EQ(errorOf(kBase + "usim:\n  source: software\n  k: 465b5ce8b199b49faa5f0a2ee238a6bc\n"
                              "  opc: cd63cb71954a9f4e48a5994e37a02baf\n  sqn_state_file: s\n"),
              "ue.yaml:1:1: imsi is needed with usim source software");
}

TEST(BestUeConfig, TheExampleFileParses) {
    const char* root = std::getenv("BEST_SOURCE_ROOT");
    ASSERT_NE(root, nullptr) << "BEST_SOURCE_ROOT is not set (run through meson test)";
    auto c = loadAgentConfig(std::string(root) + "/config/ue.yaml");
    ASSERT_TRUE(c) << c.error().message;
    EXPECT_EQ(c->usim.source, UsimSource::pcsc);
    EXPECT_EQ(c->usim.reader, "BEST vusim*");
    EXPECT_EQ(c->keyAgreements.size(), 1u);
}

TEST(BestUeConfig, MccMncEncoding) {
    EXPECT_EQ(*plmnFromMccMnc("001", "01"), (crypto::PlmnId{0x00, 0xf1, 0x10}));
    EXPECT_EQ(*plmnFromMccMnc("310", "410"), (crypto::PlmnId{0x13, 0x00, 0x14}));
    EXPECT_FALSE(plmnFromMccMnc("0a1", "01"));
}

TEST(BestUeConfig, FileWithKeysReadableByOthersIsWarnedAbout) {
    char dir[] = "/tmp/best-ue-config.XXXXXX";
    ASSERT_NE(::mkdtemp(dir), nullptr);
    const std::string path = std::string(dir) + "/ue.yaml";
    std::ofstream(path) << kBase
                        << "imsi: \"001010000000001\"\nusim:\n  source: software\n"
                           "  k: 465b5ce8b199b49faa5f0a2ee238a6bc\n"
                           "  opc: cd63cb71954a9f4e48a5994e37a02baf\n  sqn_state_file: s\n";
    ASSERT_EQ(::chmod(path.c_str(), 0644), 0);
    auto c = loadAgentConfig(path);
    ASSERT_TRUE(c) << c.error().message;
    ASSERT_EQ(c->warnings.size(), 1u);
    EXPECT_EQ(c->warnings[0], path + " holds K and OPc and group or others can read it: chmod 600");
    ASSERT_EQ(::chmod(path.c_str(), 0600), 0);
    auto d = loadAgentConfig(path);
    ASSERT_TRUE(d);
    EXPECT_TRUE(d->warnings.empty());
    auto missing = loadAgentConfig(std::string(dir) + "/none.yaml");
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error().message,
              "cannot read configuration " + std::string(dir) + "/none.yaml");
    ::unlink(path.c_str());
    ::rmdir(dir);
}

}  // namespace
}  // namespace best::ueagent
