// Prometheus metrics (alerts/metrics.h): the text exposition after observing
// reports, series removal, and promtool's lint of the output.
#include "alerts/metrics.h"

#include <gtest/gtest.h>
#include <stdio.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <regex>

#include "lib/spec/cluster_spec.h"

namespace ringwatch::alerts {
namespace {

using report::Report;
using report::Status;

spec::ClusterSpec lab_spec(int proxies = 3, const std::string& name = "lab") {
  std::string json = R"({"name": ")" + name + R"(", "proxies": [)";
  for (int p = 1; p <= proxies; ++p) {
    json += std::string(p > 1 ? "," : "") + R"({"name": "p)" + std::to_string(p) +
            R"(", "kind": "twemproxy", "client": "127.10.1.)" + std::to_string(p) + R"(:22121"})";
  }
  json += R"(], "backends": [)";
  for (int b = 1; b <= 3; ++b) {
    json += std::string(b > 1 ? "," : "") + R"({"name": "b)" + std::to_string(b) +
            R"(", "address": "127.10.0.1)" + std::to_string(b) +
            R"(", "port": 11211, "dns_name": "b)" + std::to_string(b) +
            R"(.lab.ringwatch.test", "expected_cidr": "127.10.0.0/16"})";
  }
  json += R"(], "dns": {"servers": [{"name": "lab-dns", "address": "127.10.0.53:5353"},
                                    {"name": "system", "system": true}]}})";
  return spec::parse_cluster_spec(json, "test.json");
}

// The incident's round: p2 lost b3.
Report incident_round(const std::string& cluster = "lab") {
  Report report;
  report.cluster = cluster;
  report.started_at = std::chrono::system_clock::time_point{} + std::chrono::seconds(1'790'000'000);
  report.duration_ms = 42;
  report.checks = {{"canary", Status::critical, "ring divergence: p2 is missing b3", 30},
                   {"connections", Status::critical, "p2 has no connection to b3", 10},
                   {"dns", Status::warning, "b3 resolves elsewhere at lab-dns", 2}};
  report.figures = {{"reads", 54},
                    {"reads_ok", 36},
                    {"reads_miss", 12},
                    {"reads_stale", 4},
                    {"reads_foreign", 0},
                    {"reads_error", 2},
                    {"consistency_ratio", 36.0 / 54.0},
                    {"backends_routed/p1", 3},
                    {"backends_routed/p2", 2},
                    // p3: absent (its route could not be inferred)
                    {"proxy_verdict/p1", 0},
                    {"proxy_verdict/p2", 1},
                    {"proxy_verdict/p3", 0},
                    {"proxy_backends_connected/p1", 3},
                    {"proxy_backends_connected/p2", 2},
                    {"proxy_backends_connected/p3", 3},
                    {"dns_answer_expected/b3/lab-dns", 0},
                    {"dns_answer_expected/b1/lab-dns", 1},
                    {"dns_answer_expected/b1/system", 1}};
  return report;
}

bool has_line(const std::string& text, const std::string& line) {
  return ("\n" + text).find("\n" + line + "\n") != std::string::npos;
}

std::size_t count_of(const std::string& text, const std::string& needle) {
  std::size_t count = 0;
  for (std::size_t at = text.find(needle); at != std::string::npos;
       at = text.find(needle, at + 1)) {
    ++count;
  }
  return count;
}

#define EXPECT_LINE(text, line) \
  EXPECT_TRUE(has_line(text, line)) << "missing: " << (line) << "\n" << (text)
#define EXPECT_NO_LINE(text, line) EXPECT_FALSE(has_line(text, line)) << "unexpected: " << (line)

TEST(MetricsTest, AReportBecomesTheDocumentedFamilies) {
  Metrics metrics("0.1.0");
  metrics.observe(lab_spec(), incident_round());
  const std::string text = metrics.serialize();

  EXPECT_LINE(text, R"(ringwatch_check_status{check="canary",cluster="lab"} 2)");
  EXPECT_LINE(text, R"(ringwatch_check_status{check="connections",cluster="lab"} 2)");
  EXPECT_LINE(text, R"(ringwatch_check_status{check="dns",cluster="lab"} 1)");
  EXPECT_LINE(text, "# TYPE ringwatch_canary_reads_total counter");
  EXPECT_LINE(text, R"(ringwatch_canary_reads_total{cluster="lab",result="ok"} 36)");
  EXPECT_LINE(text, R"(ringwatch_canary_reads_total{cluster="lab",result="miss"} 12)");
  EXPECT_LINE(text, R"(ringwatch_canary_reads_total{cluster="lab",result="stale"} 4)");
  EXPECT_LINE(text, R"(ringwatch_canary_reads_total{cluster="lab",result="foreign"} 0)");
  EXPECT_LINE(text, R"(ringwatch_canary_reads_total{cluster="lab",result="error"} 2)");
  EXPECT_NE(text.find(R"(ringwatch_canary_consistency_ratio{cluster="lab"} 0.666666)"),
            std::string::npos);
  EXPECT_LINE(text, R"(ringwatch_proxy_backends_routed{cluster="lab",proxy="p1"} 3)");
  EXPECT_LINE(text, R"(ringwatch_proxy_backends_routed{cluster="lab",proxy="p2"} 2)");
  EXPECT_EQ(text.find(R"(ringwatch_proxy_backends_routed{cluster="lab",proxy="p3"})"),
            std::string::npos);
  EXPECT_LINE(text, R"(ringwatch_proxy_backends_connected{cluster="lab",proxy="p2"} 2)");
  EXPECT_LINE(text, R"(ringwatch_proxy_backends_connected{cluster="lab",proxy="p3"} 3)");
  EXPECT_LINE(text, R"(ringwatch_backends_configured{cluster="lab"} 3)");
  EXPECT_LINE(text, R"(ringwatch_proxies_configured{cluster="lab"} 3)");
  EXPECT_LINE(
      text,
      R"(ringwatch_dns_answer_expected{cluster="lab",node="b3.lab.ringwatch.test",vantage="lab-dns"} 0)");
  EXPECT_LINE(
      text,
      R"(ringwatch_dns_answer_expected{cluster="lab",node="b1.lab.ringwatch.test",vantage="lab-dns"} 1)");
  EXPECT_LINE(
      text,
      R"(ringwatch_dns_answer_expected{cluster="lab",node="b1.lab.ringwatch.test",vantage="system"} 1)");
  EXPECT_EQ(count_of(text, "ringwatch_dns_answer_expected{"), 3u);
  EXPECT_LINE(text, "# TYPE ringwatch_probe_round_duration_seconds histogram");
  EXPECT_LINE(text, R"(ringwatch_probe_round_duration_seconds_count{cluster="lab"} 1)");
  EXPECT_LINE(text, R"(ringwatch_probe_round_duration_seconds_sum{cluster="lab"} 0.042)");
  EXPECT_LINE(text, R"(ringwatch_probe_round_duration_seconds_bucket{cluster="lab",le="0.025"} 0)");
  EXPECT_LINE(text, R"(ringwatch_probe_round_duration_seconds_bucket{cluster="lab",le="0.05"} 1)");
  EXPECT_LINE(text, R"(ringwatch_probe_round_duration_seconds_bucket{cluster="lab",le="+Inf"} 1)");
  EXPECT_LINE(text, R"(ringwatch_probe_rounds_total{cluster="lab",outcome="critical"} 1)");
  EXPECT_LINE(text, R"(ringwatch_last_round_timestamp_seconds{cluster="lab"} 1790000000)");
  EXPECT_LINE(text, R"(ringwatch_build_info{version="0.1.0"} 1)");
  EXPECT_LINE(text, R"(ringwatch_config_reloads_total{outcome="success"} 0)");
  EXPECT_LINE(text, R"(ringwatch_config_reloads_total{outcome="failure"} 0)");
  EXPECT_LINE(text, "# TYPE process_cpu_seconds_total counter");
  EXPECT_NE(text.find("\nprocess_resident_memory_bytes "), std::string::npos);
  EXPECT_NE(text.find("\nprocess_open_fds "), std::string::npos);
  EXPECT_NE(text.find("\nprocess_start_time_seconds "), std::string::npos);
}

TEST(MetricsTest, CountersAccumulateAcrossRounds) {
  Metrics metrics("0.1.0");
  metrics.observe(lab_spec(), incident_round());
  Report healthy = incident_round();
  healthy.checks = {{"canary", Status::ok, "", 1}};
  healthy.figures = {{"reads", 54}, {"reads_ok", 54}, {"consistency_ratio", 1.0}};
  metrics.observe(lab_spec(), healthy);
  metrics.round_skipped("lab");
  const std::string text = metrics.serialize();
  EXPECT_LINE(text, R"(ringwatch_canary_reads_total{cluster="lab",result="ok"} 90)");
  EXPECT_LINE(text, R"(ringwatch_canary_reads_total{cluster="lab",result="miss"} 12)");
  EXPECT_LINE(text, R"(ringwatch_canary_consistency_ratio{cluster="lab"} 1)");
  EXPECT_LINE(text, R"(ringwatch_check_status{check="canary",cluster="lab"} 0)");
  EXPECT_LINE(text, R"(ringwatch_probe_rounds_total{cluster="lab",outcome="critical"} 1)");
  EXPECT_LINE(text, R"(ringwatch_probe_rounds_total{cluster="lab",outcome="ok"} 1)");
  EXPECT_LINE(text, R"(ringwatch_probe_rounds_total{cluster="lab",outcome="skipped"} 1)");
  EXPECT_LINE(text, R"(ringwatch_probe_round_duration_seconds_count{cluster="lab"} 2)");
}

TEST(MetricsTest, AnAbsentFigureRemovesItsSeriesOnlyWhenItsCheckRan) {
  Metrics metrics("0.1.0");
  metrics.observe(lab_spec(), incident_round());
  // Only the canary ran: routed figures are gone, connections and DNS keep
  // their last values, and the other checks keep their status.
  Report canary_only = incident_round();
  canary_only.checks = {{"canary", Status::ok, "", 1}};
  canary_only.figures = {{"reads", 54}, {"reads_ok", 54}, {"consistency_ratio", 1.0}};
  metrics.observe(lab_spec(), canary_only);
  std::string text = metrics.serialize();
  EXPECT_EQ(text.find("ringwatch_proxy_backends_routed{"), std::string::npos);
  EXPECT_LINE(text, R"(ringwatch_proxy_backends_connected{cluster="lab",proxy="p2"} 2)");
  EXPECT_EQ(count_of(text, "ringwatch_dns_answer_expected{"), 3u);
  EXPECT_LINE(text, R"(ringwatch_check_status{check="dns",cluster="lab"} 1)");

  // The canary ran but read nothing: the ratio is unknown, not 0.
  Report blind = canary_only;
  blind.checks = {{"canary", Status::unknown, "no proxy reachable", 1}};
  blind.figures = {{"reads", 0}, {"consistency_ratio", 0.0}};
  metrics.observe(lab_spec(), blind);
  text = metrics.serialize();
  EXPECT_EQ(text.find("ringwatch_canary_consistency_ratio{"), std::string::npos);
  EXPECT_LINE(text, R"(ringwatch_check_status{check="canary",cluster="lab"} 3)");
  EXPECT_LINE(text, R"(ringwatch_probe_rounds_total{cluster="lab",outcome="unknown"} 1)");
}

// A round that reads through some proxies (proxies_per_round) leaves the
// others' last verdict, and when it was made.
TEST(MetricsTest, EachProxyKeepsItsLastVerdictAndWhenItWasMade) {
  Metrics metrics("0.1.0");
  metrics.observe(lab_spec(), incident_round());
  Report later = incident_round();
  later.started_at += std::chrono::seconds(5);
  later.figures = {{"reads", 18}, {"reads_ok", 18}, {"proxy_verdict/p2", 0}};
  metrics.observe(lab_spec(), later);
  const std::string text = metrics.serialize();
  EXPECT_LINE(text, R"(ringwatch_canary_proxy_verdict{cluster="lab",proxy="p1"} 0)");
  EXPECT_LINE(text, R"(ringwatch_canary_proxy_verdict{cluster="lab",proxy="p2"} 0)");
  EXPECT_LINE(text, R"(ringwatch_canary_proxy_verdict{cluster="lab",proxy="p3"} 0)");
  EXPECT_LINE(
      text,
      R"(ringwatch_canary_proxy_verdict_timestamp_seconds{cluster="lab",proxy="p1"} 1790000000)");
  EXPECT_LINE(
      text,
      R"(ringwatch_canary_proxy_verdict_timestamp_seconds{cluster="lab",proxy="p2"} 1790000005)");
}

TEST(MetricsTest, SeriesOfSubjectsThatLeftTheSpecGo) {
  Metrics metrics("0.1.0");
  metrics.observe(lab_spec(3), incident_round());
  Report report = incident_round();
  report.checks = {{"canary", Status::ok, "", 1}};  // connections did not run
  metrics.observe(lab_spec(2), report);             // p3 left the cluster
  const std::string text = metrics.serialize();
  EXPECT_EQ(text.find(R"(proxy="p3")"), std::string::npos);
  EXPECT_LINE(text, R"(ringwatch_proxy_backends_connected{cluster="lab",proxy="p2"} 2)");
  EXPECT_LINE(text, R"(ringwatch_proxies_configured{cluster="lab"} 2)");
}

TEST(MetricsTest, ForgettingAClusterRemovesEverySeriesOfIt) {
  Metrics metrics("0.1.0");
  metrics.observe(lab_spec(3, "east"), incident_round("east"));
  metrics.observe(lab_spec(3, "west"), incident_round("west"));
  metrics.forget_cluster("east");
  const std::string text = metrics.serialize();
  EXPECT_EQ(text.find(R"(cluster="east")"), std::string::npos);
  EXPECT_LINE(text, R"(ringwatch_check_status{check="canary",cluster="west"} 2)");
  EXPECT_LINE(text, R"(ringwatch_probe_round_duration_seconds_count{cluster="west"} 1)");
}

TEST(MetricsTest, ConfigReloadsAndSinkDeliveriesAreCounted) {
  Metrics metrics("0.1.0");
  metrics.config_reload(true);
  metrics.config_reload(false);
  metrics.config_reload(false);
  auto observer = metrics.delivery_observer("alertmanager");
  observer->on_delivery({"alertmanager", DeliveryOutcome::sent, 2, 1, "", {}});
  observer->on_delivery({"alertmanager", DeliveryOutcome::failed, 2, 1, "refused", {}});
  observer->on_delivery({"alertmanager", DeliveryOutcome::failed, 2, 2, "refused", {}});
  observer->on_delivery({"alertmanager", DeliveryOutcome::dropped_retries_exhausted, 2, 2, "", {}});
  observer->on_delivery({"alertmanager", DeliveryOutcome::dropped_queue_full, 1, 0, "", {}});
  const std::string text = metrics.serialize();
  EXPECT_LINE(text, R"(ringwatch_config_reloads_total{outcome="success"} 1)");
  EXPECT_LINE(text, R"(ringwatch_config_reloads_total{outcome="failure"} 2)");
  EXPECT_LINE(text, R"(ringwatch_alert_notifications_total{outcome="sent",sink="alertmanager"} 1)");
  EXPECT_LINE(text,
              R"(ringwatch_alert_notifications_total{outcome="failed",sink="alertmanager"} 2)");
  EXPECT_LINE(
      text,
      R"(ringwatch_alert_notifications_dropped_total{reason="retries_exhausted",sink="alertmanager"} 1)");
  EXPECT_LINE(
      text,
      R"(ringwatch_alert_notifications_dropped_total{reason="queue_full",sink="alertmanager"} 1)");
  EXPECT_LINE(
      text,
      R"(ringwatch_alert_notifications_dropped_total{reason="rejected",sink="alertmanager"} 0)");
}

TEST(MetricsTest, TheObserverMayOutliveTheMetrics) {
  std::shared_ptr<DeliveryObserver> observer;
  {
    Metrics metrics("0.1.0");
    observer = metrics.delivery_observer("webhook");
  }
  observer->on_delivery({"webhook", DeliveryOutcome::sent, 1, 1, "", {}});  // no crash
}

// promtool's linter agrees with the exposition (names, types, help, units).
TEST(MetricsTest, PromtoolCheckMetricsAcceptsTheExposition) {
  const std::string promtool = RINGWATCH_PROMTOOL;
  ASSERT_TRUE(std::filesystem::exists(promtool))
      << "promtool not found (" << promtool
      << "): it ships in the Debian package `prometheus`; run tools/install-deps.sh";
  Metrics metrics("0.1.0");
  metrics.observe(lab_spec(), incident_round());
  metrics.delivery_observer("alertmanager");
  metrics.round_skipped("lab");
  const std::string path =
      (std::filesystem::temp_directory_path() / ("ringwatch-metrics-" + std::to_string(::getpid())))
          .string();
  std::ofstream(path) << metrics.serialize();
  FILE* pipe = ::popen((promtool + " check metrics < " + path + " 2>&1").c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string output;
  char buffer[512];
  while (std::fgets(buffer, sizeof(buffer), pipe) != nullptr) output += buffer;
  const int status = ::pclose(pipe);
  std::filesystem::remove(path);
  EXPECT_EQ(WEXITSTATUS(status), 0) << output;
  EXPECT_EQ(output, "") << output;
}

}  // namespace
}  // namespace ringwatch::alerts
