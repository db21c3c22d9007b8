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
  EXPECT_TRUE(fleet.alerts.alertmanager.empty());
  EXPECT_EQ(fleet.alerts.fire_after_rounds, 2);
}

TEST(FleetTest, EverySetting) {
  const auto fleet = parse_fleet(R"({"listen": "127.0.0.1:0", "clusters": [{"inline": )" + kSpec +
                                     R"(, "interval_seconds": 0.5, "jitter_seconds": 0,
       "checks": ["dns", "canary"]}],
       "alerts": {"alertmanager": "http://127.0.0.1:9093", "webhook": "http://127.0.0.1:1/hook",
                  "fire_after_rounds": 3, "resolve_after_rounds": 1}})",
                                 "fleet.json");
  EXPECT_EQ(fleet.listen, "127.0.0.1:0");
  EXPECT_EQ(fleet.clusters[0].interval, std::chrono::milliseconds(500));
  EXPECT_EQ(fleet.clusters[0].jitter, std::chrono::milliseconds(0));
  EXPECT_EQ(fleet.clusters[0].checks, (std::vector<std::string>{"canary", "dns"}));
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

TEST(FleetTest, ErrorMessages) {
  EXPECT_EQ(error_of("{"),
            "fleet.json: invalid JSON at offset 1: Missing a name for object member.");
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
            R"(fleet.json: /alerts/webhook: expected an http:// URL, got "x")");
  EXPECT_EQ(error_of(R"({"clusters": [{"inline": )" + kSpec + R"(}], "extra": 1})"),
            "fleet.json: /extra: unknown field (expected one of: listen, clusters, alerts)");
  // An error inside an inline spec points into the fleet file.
  EXPECT_EQ(error_of(R"({"clusters": [{"inline": {"name": "lab", "proxies": 1}}]})")
                .rfind("fleet.json: /clusters/0/inline/", 0),
            0u);
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
