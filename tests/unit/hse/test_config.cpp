// best-hsed configuration: the shipped example parses; every kind of error names
// file:line:column and the key.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "hse/config.h"

using namespace best;
using namespace best::hse;

namespace {

std::string examplePath() {
    const char* src = std::getenv("BEST_SOURCE_ROOT");
    return std::string(src != nullptr ? src : ".") + "/config/hsed.yaml";
}

const char* kMinimal =
    "hse_id: hse.test\n"
    "listen:\n"
    "  - address: 127.0.0.1\n"
    "    port: 0\n"
    "hsm:\n"
    "  token: t\n"
    "  pin_file: /p\n"
    "store:\n"
    "  path: /s.db\n";

std::string errorOf(const std::string& text) {
    auto r = parseHsedConfig(text, "test.yaml");
    EXPECT_FALSE(r);
    return r ? std::string() : r.error().message;
}

}  // namespace

TEST(HsedConfig, ShippedExampleIsValid) {
    auto r = loadHsedConfig(examplePath());
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->hseId, "hse.example.org");
    ASSERT_EQ(r->listen.size(), 2u);
    EXPECT_EQ(r->listen[1].address, "::");
    EXPECT_EQ(r->listen[1].port, 7163);
    EXPECT_EQ(r->hsm.token, "best-hse");
    EXPECT_EQ(r->policy.cpCounterScheme, 1);
    EXPECT_TRUE(r->policy.allowFiveG);
    EXPECT_EQ(r->policy.perImsi.burst, 5u);
    EXPECT_EQ(r->policy.keySetLifetimeSeconds, 86400u);
}

TEST(HsedConfig, MinimalGetsDefaults) {
    auto r = parseHsedConfig(kMinimal, "test.yaml");
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->listen[0].port, 0);
    EXPECT_EQ(r->hsm.module, "/usr/lib/softhsm/libsofthsm2.so");
    EXPECT_EQ(r->sqnIndBits, 5);
    EXPECT_EQ(r->policy.unconfirmedSessionTimeoutSeconds, 60u);
    EXPECT_EQ(r->receiveBuffer, 4194304u);
}

TEST(HsedConfig, ReceiveBuffer) {
    auto r = parseHsedConfig(std::string(kMinimal) + "listen_receive_buffer: 0\n", "test.yaml");
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->receiveBuffer, 0u);
    const std::string e = errorOf(std::string(kMinimal) + "listen_receive_buffer: -5\n");
    EXPECT_EQ(e.rfind("test.yaml:10:24: key 'listen_receive_buffer': ", 0), 0u) << e;
    const std::string big = errorOf(std::string(kMinimal) + "listen_receive_buffer: 268435457\n");
    EXPECT_EQ(big.rfind("test.yaml:10:24: key 'listen_receive_buffer': ", 0), 0u) << big;
}

TEST(HsedConfig, UnknownKeyNamesLineColumnAndKey) {
    std::string text = std::string(kMinimal) + "policy:\n  key_agreement: [umts]\n";
    EXPECT_EQ(errorOf(text),
              "test.yaml:11:3: key 'policy.key_agreement': unknown key (known here: "
              "counter_schemes, key_agreements, ciphering, confidentiality_required_eas, "
              "key_set_lifetime, session_timeouts, rate_limits, refresh)");
    auto r = parseHsedConfig(text, "test.yaml");
    EXPECT_EQ(r.error().code, static_cast<int>(ConfigErrc::unknown_key));
    EXPECT_EQ(r.error().domain, ErrorDomain::config);
}

TEST(HsedConfig, MissingRequiredKey) {
    EXPECT_EQ(errorOf("hse_id: x\nlisten: [{address: 127.0.0.1}]\nhsm: {token: t}\n"
                      "store: {path: /s}\n"),
              "test.yaml:3:6: key 'hsm.pin_file': required");
}

TEST(HsedConfig, BadValues) {
    EXPECT_EQ(errorOf(std::string(kMinimal) + "policy: {counter_schemes: {cp: 4}}\n"),
              "test.yaml:10:32: key 'policy.counter_schemes.cp': must be in 0..3");
    EXPECT_EQ(errorOf(std::string(kMinimal) + "policy: {key_agreements: [umts, gsm]}\n"),
              "test.yaml:10:26: key 'policy.key_agreements': 'gsm' is not one of umts, eps, 5g");
    EXPECT_EQ(errorOf("hse_id: x\nlisten: [{address: localhost}]\nhsm: {token: t, pin_file: p}\n"
                      "store: {path: /s}\n"),
              "test.yaml:2:20: key 'listen[0].address': 'localhost' is not a numeric IPv4 or "
              "IPv6 address");
    EXPECT_EQ(errorOf(std::string(kMinimal) + "sqn: {ind: 32}\n"),
              "test.yaml:10:12: key 'sqn.ind': must be in 0..31");
    EXPECT_EQ(errorOf(std::string(kMinimal) + "policy: {ciphering: {deny_plmns: [\"0010\"]}}\n"),
              "test.yaml:10:34: key 'policy.ciphering.deny_plmns': '0010' is not MCC+MNC digits "
              "(5 or 6 digits)");
    EXPECT_EQ(errorOf(std::string(kMinimal) + "logging: {level: loud}\n"),
              "test.yaml:10:18: key 'logging.level': must be one of debug, info, notice, "
              "warning, error");
    EXPECT_EQ(errorOf(std::string(kMinimal) +
                      "policy: {rate_limits: {per_source: {rate: -1, burst: 2}}}\n"),
              "test.yaml:10:43: key 'policy.rate_limits.per_source.rate': must be a positive "
              "number, not '-1'");
    EXPECT_EQ(errorOf("hse_id: x\nlisten: [{address: 127.0.0.1, port: 70000}]\n"
                      "hsm: {token: t, pin_file: p}\nstore: {path: /s}\n"),
              "test.yaml:2:37: key 'listen[0].port': must be in 0..65535");
}

TEST(HsedConfig, SyntaxError) {
    auto r = parseHsedConfig("hse_id: [unclosed\n", "test.yaml");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, static_cast<int>(ConfigErrc::syntax));
    EXPECT_EQ(r.error().message.rfind("test.yaml:", 0), 0u) << r.error().message;
    EXPECT_NE(r.error().message.find("YAML syntax error"), std::string::npos);
}

TEST(HsedConfig, NotAMapping) {
    EXPECT_EQ(errorOf("- a\n- b\n"), "test.yaml:1:1: the configuration must be a mapping");
}

TEST(HsedConfig, UnreadableFile) {
    auto r = loadHsedConfig("/nonexistent/hsed.yaml");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, static_cast<int>(ConfigErrc::io));
    EXPECT_EQ(r.error().message, "/nonexistent/hsed.yaml: cannot read: No such file or directory");
}

// Session memory (issue 6): limits.max_sessions sizes the locked key slab, limits.context_cache
// the keyed-context cache.
TEST(HsedConfig, SessionLimits) {
    auto d = parseHsedConfig(kMinimal, "test.yaml");
    ASSERT_TRUE(d) << d.error().message;
    EXPECT_EQ(d->maxSessions, 65536u);
    EXPECT_EQ(d->contextCache, 4096u);
    auto r = parseHsedConfig(
        std::string(kMinimal) + "limits: {max_sessions: 131072, context_cache: 10}\n", "test.yaml");
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->maxSessions, 131072u);
    EXPECT_EQ(r->contextCache, 10u);
    EXPECT_EQ(errorOf(std::string(kMinimal) + "limits: {max_sessions: 0}\n"),
              "test.yaml:10:24: key 'limits.max_sessions': must be in 1..16777216");
    EXPECT_EQ(errorOf(std::string(kMinimal) + "limits: {context_cache: 2000000}\n"),
              "test.yaml:10:25: key 'limits.context_cache': must be in 1..1048576");
    EXPECT_EQ(errorOf(std::string(kMinimal) + "limits: {sessions: 5}\n"),
              "test.yaml:10:10: key 'limits.sessions': unknown key (known here: max_sessions, "
              "context_cache)");
}

// The uplink sink's backlog (docs/hsed.md "User plane sink").
TEST(HsedConfig, UplinkBacklog) {
    auto d = parseHsedConfig(kMinimal, "test.yaml");
    ASSERT_TRUE(d) << d.error().message;
    EXPECT_EQ(d->uplinkBacklog, 1024u);
    auto r = parseHsedConfig(std::string(kMinimal) + "sink: {uplink: /tmp/u, uplink_backlog: 0}\n",
                             "test.yaml");
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->uplinkBacklog, 0u);
    EXPECT_EQ(r->uplinkSink, "/tmp/u");
    EXPECT_EQ(errorOf(std::string(kMinimal) + "sink: {uplink_backlog: 70000}\n"),
              "test.yaml:10:24: key 'sink.uplink_backlog': must be in 0..65536");
}

TEST(HsedConfig, HsmRecycleAfterObjects) {
    auto d = parseHsedConfig(kMinimal, "test.yaml");
    ASSERT_TRUE(d) << d.error().message;
    EXPECT_EQ(d->hsm.recycleAfterObjects, 0u);
    std::string withRecycle = kMinimal;
    withRecycle.replace(withRecycle.find("hsm:\n"), 5, "hsm:\n  recycle_after_objects: 100000\n");
    auto r = parseHsedConfig(withRecycle, "test.yaml");
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->hsm.recycleAfterObjects, 100000u);
}

TEST(HsedConfig, SqnRangesInMemory) {
    auto d = parseHsedConfig(kMinimal, "test.yaml");
    ASSERT_TRUE(d) << d.error().message;
    EXPECT_EQ(d->sqnRangesInMemory, 16384u);
    auto r = parseHsedConfig(std::string(kMinimal) + "sqn: {ranges_in_memory: 0}\n", "test.yaml");
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->sqnRangesInMemory, 0u);
    EXPECT_EQ(errorOf(std::string(kMinimal) + "sqn: {ranges_in_memory: -1}\n"),
              "test.yaml:10:25: key 'sqn.ranges_in_memory': must be in 0..100000000");
}
