// The fleet file: parsing, defaults, and every error message word for word.
#include "daemon/fleet.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>

#include "probes/registry.h"

namespace ringwatch::daemon {
namespace {

const std::string kSpec = R"({
  "name": "lab",
  "proxies": [{"name": "p1", "kind": "twemproxy", "client": "127.10.1.1:22121"}],
  "backends": [{"name": "b1", "address": "127.10.0.11", "port": 11211,
                "dns_name": "b1.lab.ringwatch.test", "expected_cidr": "127.10.0.0/16"}],
  "dns": {"servers": [{"name": "system", "system": true}]}
})";

std::string error_of(const std::string& text) {
  try {
    parse_fleet(text, "fleet.json");
  } catch (const spec::SpecError& error) {
    return error.what();
  }
  return "(no error)";
}

TEST(FleetTest, InlineClusterWithDefaults) {
  const auto fleet = parse_fleet(R"({"clusters": [{"inline": )" + kSpec + "}]}", "fleet.json");
  EXPECT_EQ(fleet.listen, "127.0.0.1:9470");
  ASSERT_EQ(fleet.clusters.size(), 1u);
  EXPECT_EQ(fleet.clusters[0].name(), "lab");
  EXPECT_EQ(fleet.clusters[0].interval, std::chrono::seconds(10));
  EXPECT_EQ(fleet.clusters[0].jitter, std::chrono::seconds(1));
  EXPECT_EQ(fleet.clusters[0].checks, probes::known_checks());
  EXPECT_FALSE(fleet.clusters[0].external);
  EXPECT_TRUE(fleet.alerts.alertmanager.empty());
  EXPECT_EQ(fleet.alerts.fire_after_rounds, 2);
}

TEST(FleetTest, EverySetting) {
  const auto fleet = parse_fleet(R"({"listen": "127.0.0.1:0", "clusters": [{"inline": )" + kSpec +
                                     R"(, "interval_seconds": 0.5, "jitter_seconds": 0,
       "checks": ["dns", "canary"], "schedule": "external"}],
       "alerts": {"alertmanager": "http://127.0.0.1:9093", "webhook": "http://127.0.0.1:1/hook",
                  "fire_after_rounds": 3, "resolve_after_rounds": 1}})",
                                 "fleet.json");
  EXPECT_EQ(fleet.listen, "127.0.0.1:0");
  EXPECT_EQ(fleet.clusters[0].interval, std::chrono::milliseconds(500));
  EXPECT_EQ(fleet.clusters[0].jitter, std::chrono::milliseconds(0));
  EXPECT_EQ(fleet.clusters[0].checks, (std::vector<std::string>{"canary", "dns"}));
  EXPECT_TRUE(fleet.clusters[0].external);
  EXPECT_EQ(fleet.alerts.alertmanager, "http://127.0.0.1:9093");
  EXPECT_EQ(fleet.alerts.webhook, "http://127.0.0.1:1/hook");
  EXPECT_EQ(fleet.alerts.fire_after_rounds, 3);
  EXPECT_EQ(fleet.alerts.resolve_after_rounds, 1);
}

TEST(FleetTest, SpecPathIsRelativeToTheFleetFile) {
  std::string pattern =
      (std::filesystem::temp_directory_path() / "ringwatch-fleet-test-XXXXXX").string();
  ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
  const std::filesystem::path dir = pattern;
  std::ofstream(dir / "cluster.json") << kSpec;
  std::ofstream(dir / "fleet.json") << R"({"clusters": [{"spec": "cluster.json"}]})";
  const auto fleet = load_fleet((dir / "fleet.json").string());
  EXPECT_EQ(fleet.clusters[0].spec_path, (dir / "cluster.json").string());
  EXPECT_EQ(fleet.clusters[0].name(), "lab");
  std::filesystem::remove_all(dir);
}

TEST(FleetTest, SinkSecretsComeFromFilesBesideTheFleetFile) {
  const auto dir = std::filesystem::temp_directory_path() / "ringwatch-fleet-sinks-test";
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "am.password") << "pa:ss\n";
  std::ofstream(dir / "hook.token") << "tok-123\r\n";
  const std::string spec = R"({"clusters": [{"inline": )" + kSpec + R"(}], "alerts": {)";
  std::ofstream(dir / "fleet.json")
      << spec << R"("alertmanager": {"url": "https://am:9093", "ca_file": "ca.pem",
        "basic_auth": {"username": "ringwatch", "password_file": "am.password"}},
      "webhook": {"url": "https://hook/x", "bearer_token_file": "hook.token"}}})";
  const auto fleet = load_fleet((dir / "fleet.json").string());
  EXPECT_EQ(fleet.alerts.alertmanager, "https://am:9093");
  EXPECT_EQ(fleet.alerts.alertmanager_access.ca_file, (dir / "ca.pem").string());
  // base64("ringwatch:pa:ss")
  EXPECT_EQ(fleet.alerts.alertmanager_access.authorization, "Basic cmluZ3dhdGNoOnBhOnNz");
  EXPECT_EQ(fleet.alerts.webhook, "https://hook/x");
  EXPECT_EQ(fleet.alerts.webhook_access.authorization, "Bearer tok-123");
  EXPECT_TRUE(fleet.alerts.webhook_access.ca_file.empty());

  std::ofstream(dir / "fleet.json")
      << spec << R"("webhook": {"url": "https://h", "bearer_token_file": "nope"}}})";
  try {
    load_fleet((dir / "fleet.json").string());
    ADD_FAILURE() << "a missing secret file was accepted";
  } catch (const spec::SpecError& error) {
    EXPECT_EQ(std::string(error.what()),
              (dir / "fleet.json").string() + ": /alerts/webhook/bearer_token_file: cannot read " +
                  (dir / "nope").string() + ": No such file or directory");
  }
  std::filesystem::remove_all(dir);
  EXPECT_EQ(error_of(spec + R"("webhook": {"url": "https://h", "bearer_token_file": "t",
      "basic_auth": {"username": "u", "password_file": "p"}}}})"),
            R"(fleet.json: /alerts/webhook: expected at most one of "basic_auth" and )"
            R"("bearer_token_file", got both)");
  EXPECT_EQ(error_of(spec + R"("webhook": {"url": "https://h", "password": "inline"}}})"),
            "fleet.json: /alerts/webhook/password: unknown field (expected one of: url, ca_file, "
            "basic_auth, bearer_token_file)");
}

TEST(FleetTest, ErrorMessages) {
  EXPECT_EQ(error_of("{"),
            "fleet.json: invalid JSON at line 1, column 2: Missing a name for object member.");
  EXPECT_EQ(error_of("{}"), R"(fleet.json: missing required field "clusters")");
  EXPECT_EQ(error_of(R"({"clusters": []})"),
            "fleet.json: /clusters: expected a non-empty array, got []");
  EXPECT_EQ(error_of(R"({"clusters": [{}]})"),
            R"(fleet.json: /clusters/0: missing required field "spec" (or "inline"))");
  EXPECT_EQ(error_of(R"({"clusters": [{"inline": 1}]})"),
            "fleet.json: /clusters/0/inline: expected a cluster spec object, got a number");
  EXPECT_EQ(error_of(R"({"listen": "localhost:80", "clusters": [{"inline": )" + kSpec + "}]}"),
            "fleet.json: /listen: expected an IP address literal and port like 127.0.0.1:9470 or "
            "[::1]:9470, got \"localhost:80\"");
  EXPECT_EQ(error_of(R"({"clusters": [{"inline": )" + kSpec + R"(, "interval_seconds": 0}]})"),
            "fleet.json: /clusters/0/interval_seconds: expected a number of seconds from 0.1 to "
            "86400, got 0");
  EXPECT_EQ(error_of(R"({"clusters": [{"inline": )" + kSpec + R"(, "checks": ["canary", "x"]}]})"),
            "fleet.json: /clusters/0/checks/1: expected a check name (canary, connections, dns), "
            "got \"x\"");
  EXPECT_EQ(error_of(R"({"clusters": [{"inline": )" + kSpec + "}, {\"inline\": " + kSpec + "}]}"),
            R"(fleet.json: /clusters/1: duplicate cluster "lab" (first at /clusters/0))");
  EXPECT_EQ(error_of(R"({"clusters": [{"inline": )" + kSpec + R"(}], "alerts": {"webhook": "x"}})"),
            R"(fleet.json: /alerts/webhook: expected an http:// or https:// URL, got "x")");
  EXPECT_EQ(error_of(R"({"clusters": [{"inline": )" + kSpec + R"(, "schedule": "cron"}]})"),
            R"(fleet.json: /clusters/0/schedule: expected "interval" or "external", got "cron")");
  EXPECT_EQ(error_of(R"({"clusters": [{"inline": )" + kSpec + R"(}], "extra": 1})"),
            "fleet.json: /extra: unknown field (expected one of: listen, clusters, alerts)");
  // Issue 12, point 8: a bad port used to fail only when the sink was made,
  // without the file or the pointer.
  EXPECT_EQ(error_of(R"({"clusters": [{"inline": )" + kSpec +
                     R"(}], "alerts": {"alertmanager": "http://127.0.0.1:99999"}})"),
            "fleet.json: /alerts/alertmanager: expected an http:// or https:// URL, got "
            "\"http://127.0.0.1:99999\" (expected a port from 1 to 65535, got \"99999\")");
  // An error inside an inline spec points into the fleet file.
  EXPECT_EQ(error_of(R"({"clusters": [{"inline": {"name": "lab", "proxies": 1}}]})")
                .rfind("fleet.json: /clusters/0/inline/", 0),
            0u);
}

// Issue 12, point 2: an inline spec nesting 100,000 arrays crashed ringwatchd
// (at start and on SIGHUP) in the writer that re-renders the inline spec; it
// is now refused as the fleet file is read.
TEST(FleetTest, DeeplyNestedInlineSpecIsRefusedAtParseTime) {
  const std::string nested = std::string(100000, '[') + std::string(100000, ']');
  std::string pointer = "/clusters/0/inline/x";
  for (int level = 5; level <= 32; ++level) pointer += "/0";
  EXPECT_EQ(error_of(R"({"clusters": [{"inline": {"x": )" + nested + "}}]}"),
            "fleet.json: " + pointer +
                ": expected at most 32 levels of nesting, got an array at level 33");
}

TEST(FleetTest, UnreadableFile) {
  try {
    load_fleet("/nonexistent/fleet.json");
    FAIL();
  } catch (const spec::SpecError& error) {
    EXPECT_STREQ(error.what(),
                 "/nonexistent/fleet.json: cannot read file: No such file or directory");
  }
}

}  // namespace
}  // namespace ringwatch::daemon
