// ringwatchd with a real Prometheus, the way the README and
// daemon/examples/prometheus-probe.yml tell operators to run it: two
// ringwatchd replicas with external clusters, Prometheus probing them through
// GET /probe (relabelled to `cluster`, sharded with hashmod) and scraping
// /metrics, the shipped rules loaded. Every query of the Grafana dashboard
// (alerts/grafana/ringwatch.json) and every rule expression must parse and
// return data.
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "tests/daemon/daemon_test_support.h"
#include "tests/daemon/prometheus_process.h"
#include "tests/daemon/running_daemon.h"
#include "tests/support/alertmanager_process.h"
#include "tests/support/scoped_lab.h"

namespace ringwatch::daemon {
namespace {

using ringwatch::testing::eventually;
using ringwatch::testing::http_request;
using ringwatch::testing::PrometheusProcess;
using ringwatch::testing::RunningDaemon;
using ringwatch::testing::ScopedLab;

const std::filesystem::path kSource = RINGWATCH_SOURCE_DIR;

std::string read(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string replace_all(std::string text, const std::string& from, const std::string& to) {
  for (auto at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
  }
  return text;
}

// Every panel's queries, rows' nested panels included, with the dashboard's
// variables as Grafana would substitute them for one cluster.
std::vector<std::pair<std::string, std::string>> dashboard_queries(const std::string& cluster) {
  rapidjson::Document dashboard;
  dashboard.Parse(read(kSource / "alerts/grafana/ringwatch.json").c_str());
  EXPECT_FALSE(dashboard.HasParseError());
  std::vector<std::pair<std::string, std::string>> queries;
  std::function<void(const rapidjson::Value&)> walk = [&](const rapidjson::Value& panels) {
    for (const auto& panel : panels.GetArray()) {
      if (panel.HasMember("panels")) walk(panel["panels"]);
      if (!panel.HasMember("targets")) continue;
      for (const auto& target : panel["targets"].GetArray()) {
        std::string expr = target["expr"].GetString();
        expr = replace_all(expr, "$__rate_interval", "20s");
        expr = replace_all(expr, "$cluster", cluster);
        queries.emplace_back(panel["title"].GetString(), expr);
      }
    }
  };
  walk(dashboard["panels"]);
  return queries;
}

// The rules' expressions, and what the recording rules record.
struct Rules {
  std::vector<std::string> expressions;
  std::vector<std::string> recorded;
};

Rules shipped_rules() {
  Rules rules;
  const auto file = YAML::LoadFile((kSource / "alerts/rules/ringwatch.rules.yml").string());
  for (const auto& group : file["groups"]) {
    for (const auto& rule : group["rules"]) {
      rules.expressions.push_back(rule["expr"].as<std::string>());
      if (rule["record"]) rules.recorded.push_back(rule["record"].as<std::string>());
    }
  }
  return rules;
}

std::string fleet(const ScopedLab& a, const ScopedLab& b, const std::string& alertmanager) {
  std::string text = R"({"listen": "127.0.0.1:0", "clusters": [)";
  for (const auto* lab : {&a, &b}) {
    if (lab != &a) text += ", ";
    text += R"({"spec": ")" + lab::spec_path(lab->dir()).string() + R"(", "schedule": "external"})";
  }
  return text + R"(], "alerts": {"alertmanager": ")" + alertmanager + R"("}})";
}

long rounds_of(std::uint16_t port, const std::string& cluster) {
  const auto body = http_request(port, "GET", "/v1/clusters").body;
  const auto at = body.find("{\"name\":\"" + cluster + "\"");
  if (at == std::string::npos) return -1;
  return std::atol(body.c_str() + body.find("\"rounds\":", at) + 9);
}

TEST(PrometheusTest, ProbeScrapeConfigDashboardAndRulesAgainstRealPrometheus) {
  if (!std::filesystem::exists(PrometheusProcess::kBinary)) {
    GTEST_SKIP() << "no " << PrometheusProcess::kBinary << ": run tools/install-deps.sh";
  }
  ScopedLab lab(3, 3, "lab");
  ScopedLab other(2, 2, "other");
  ringwatch::testing::AlertmanagerProcess alertmanager;
  std::string pattern =
      (std::filesystem::temp_directory_path() / "ringwatch-fleet-XXXXXX").string();
  ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
  const std::filesystem::path dir = pattern;
  std::ofstream(dir / "fleet.json") << fleet(lab, other, alertmanager.url());
  DaemonOptions options;
  options.source.fleet_path = (dir / "fleet.json").string();
  RunningDaemon replica_a(RunningDaemon::WithOptions{}, options);
  RunningDaemon replica_b(RunningDaemon::WithOptions{}, options);

  // The documented configuration, pointed at this test's replicas and clusters.
  std::string config = read(kSource / "daemon/examples/prometheus-probe.yml");
  config =
      replace_all(config, "ringwatchd-a:9470", "127.0.0.1:" + std::to_string(replica_a.port()));
  config =
      replace_all(config, "ringwatchd-b:9470", "127.0.0.1:" + std::to_string(replica_b.port()));
  config = replace_all(config, "['lab', 'edge']", "['lab', 'other']");
  config = replace_all(config, "scrape_interval: 30s", "scrape_interval: 1s");
  config = replace_all(config, "evaluation_interval: 30s", "evaluation_interval: 1s");
  config = replace_all(config, "scrape_timeout: 20s", "scrape_timeout: 1s");
  PrometheusProcess prometheus(
      config, {{"ringwatch.rules.yml", read(kSource / "alerts/rules/ringwatch.rules.yml")}});

  // /probe, relabelled: one series per cluster, named by the target.
  PrometheusProcess::Answer probed;
  EXPECT_TRUE(eventually(
      [&] {
        probed = prometheus.query(R"(ringwatch_probe_success{job="ringwatch_probe"} == 1)");
        return probed.series == 2;
      },
      std::chrono::seconds(40)))
      << probed.body << "\n"
      << prometheus.output();
  EXPECT_NE(probed.body.find(R"("cluster":"lab")"), std::string::npos) << probed.body;
  EXPECT_NE(probed.body.find(R"("cluster":"other")"), std::string::npos) << probed.body;
  EXPECT_NE(probed.body.find(R"("instance":"lab")"), std::string::npos) << probed.body;
  // hashmod gave each cluster to exactly one replica; the other never ran it.
  for (const std::string cluster : {"lab", "other"}) {
    const long a = rounds_of(replica_a.port(), cluster);
    const long b = rounds_of(replica_b.port(), cluster);
    EXPECT_TRUE((a > 0) != (b > 0)) << cluster << ": replica a ran " << a << ", b ran " << b;
  }

  // The dashboard's template variable finds both clusters.
  const auto clusters = prometheus.query("group by (cluster) (ringwatch_proxies_configured)");
  EXPECT_EQ(clusters.series, 2u) << clusters.body;

  // Every panel query returns data once rates have two samples.
  const auto queries = dashboard_queries("lab");
  ASSERT_GE(queries.size(), 14u);
  std::string failing;
  const bool all = eventually(
      [&] {
        failing.clear();
        for (const auto& [title, expr] : queries) {
          const auto answer = prometheus.query(expr);
          if (!answer.ok || answer.series == 0) {
            failing += title + ": " + expr + " -> " + answer.body + "\n";
          }
        }
        return failing.empty();
      },
      std::chrono::seconds(60), std::chrono::milliseconds(1000));
  EXPECT_TRUE(all) << failing;

  // Every rule expression parses; every series a rule reads (or records) exists.
  const auto rules = shipped_rules();
  ASSERT_FALSE(rules.expressions.empty());
  std::set<std::string> names(rules.recorded.begin(), rules.recorded.end());
  const std::regex metric(R"(ringwatch[a-z_:]*[a-z_])");
  for (const auto& expr : rules.expressions) {
    const auto answer = prometheus.query(expr);
    EXPECT_TRUE(answer.ok) << expr << " -> " << answer.body;
    for (std::sregex_iterator it(expr.begin(), expr.end(), metric), end; it != end; ++it) {
      names.insert(it->str());
    }
  }
  for (const auto& name : names) {
    EXPECT_TRUE(
        eventually([&] { return prometheus.query(name).series > 0; }, std::chrono::seconds(10)))
        << name << " has no series";
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace ringwatch::daemon
