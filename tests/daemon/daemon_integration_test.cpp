// ringwatchd with the real programs it feeds: Alertmanager receives the
// incident's alert from the daemon's rounds and sees it resolved after heal;
// Prometheus scrapes /metrics.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>

#include "tests/daemon/daemon_test_support.h"
#include "tests/daemon/running_daemon.h"
#include "tests/support/alertmanager_process.h"
#include "tests/support/memcached_process.h"
#include "tests/support/scoped_lab.h"

namespace ringwatch::daemon {
namespace {

using ringwatch::testing::DaemonProcess;
using ringwatch::testing::eventually;
using ringwatch::testing::http_request;
using ringwatch::testing::RunningDaemon;

std::string spec_path(const ringwatch::testing::ScopedLab& lab) {
  return lab::spec_path(lab.dir()).string();
}

// Alertmanager's active alerts include the lab's ring divergence of p2 on b3.
bool divergence_active(std::uint16_t am_port) {
  const auto body = http_request(am_port, "GET", "/api/v2/alerts?active=true").body;
  return body.find(R"("alertname":"RingwatchRingDivergence")") != std::string::npos &&
         body.find(R"("proxy":"p2")") != std::string::npos &&
         body.find(R"("backend":"b3")") != std::string::npos &&
         body.find(R"("cluster":"lab")") != std::string::npos;
}

TEST(DaemonIntegrationTest, AlertmanagerGetsTheIncidentAndItsResolution) {
  ringwatch::testing::AlertmanagerProcess alertmanager;
  ringwatch::testing::ScopedLab lab;
  AlertsConfig alerts;
  alerts.alertmanager = alertmanager.url();
  alerts.fire_after_rounds = 2;
  alerts.resolve_after_rounds = 2;
  RunningDaemon daemon({spec_path(lab)}, std::chrono::seconds(1), alerts);
  ASSERT_TRUE(eventually(
      [&] { return http_request(daemon.port(), "GET", "/v1/clusters/lab").status == 200; }));
  EXPECT_FALSE(divergence_active(alertmanager.port()));

  lab.inject({lab::FaultKind::eject, "p2", "b3", "", ""});
  // Fires on the second failing round: within three rounds (3 s) plus delivery.
  EXPECT_TRUE(
      eventually([&] { return divergence_active(alertmanager.port()); }, std::chrono::seconds(8)))
      << http_request(alertmanager.port(), "GET", "/api/v2/alerts").body;

  lab.heal();
  EXPECT_TRUE(
      eventually([&] { return !divergence_active(alertmanager.port()); }, std::chrono::seconds(10)))
      << http_request(alertmanager.port(), "GET", "/api/v2/alerts").body;
}

TEST(DaemonIntegrationTest, PrometheusScrapesCheckStatus) {
  // tools/install-deps.sh installs Prometheus: missing is a failure, not a skip.
  const std::filesystem::path prometheus = "/usr/bin/prometheus";
  ASSERT_TRUE(std::filesystem::exists(prometheus))
      << "no " << prometheus << ": it ships in the Debian package `prometheus`; run "
      << "tools/install-deps.sh";
  ringwatch::testing::ScopedLab lab;
  RunningDaemon daemon({spec_path(lab)}, std::chrono::seconds(1));

  std::string pattern = (std::filesystem::temp_directory_path() / "ringwatch-prom-XXXXXX").string();
  ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
  const std::filesystem::path dir = pattern;
  std::ofstream(dir / "prometheus.yml")
      << "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
      << "scrape_configs:\n  - job_name: ringwatchd\n    static_configs:\n"
      << "      - targets: ['127.0.0.1:" << daemon.port() << "']\n";
  // Prometheus cannot listen on port 0 and say which it took: a port free a
  // moment ago is tried, and another if something took it meanwhile (then
  // Prometheus exits at once).
  for (int attempt = 1; attempt <= 3; ++attempt) {
    const auto port = ringwatch::testing::free_port();
    DaemonProcess process(
        {prometheus.string(), "--config.file=" + (dir / "prometheus.yml").string(),
         "--storage.tsdb.path=" + (dir / "data").string(),
         "--web.listen-address=127.0.0.1:" + std::to_string(port)},
        (dir / "prometheus.log").string());
    const std::string query = "/api/v1/query?query=ringwatch_check_status%7Bcluster%3D%22lab%22%7D";
    std::string last;
    const bool found = eventually(
        [&] {
          if (process.wait_exit(std::chrono::milliseconds(0))) return true;  // it gave up
          last = http_request(port, "GET", query).body;
          return last.find(R"("check":"canary")") != std::string::npos &&
                 last.find(R"("cluster":"lab")") != std::string::npos;
        },
        std::chrono::seconds(40));
    const bool exited = process.wait_exit(std::chrono::milliseconds(0)).has_value();
    if (exited && attempt < 3 &&
        process.output().find("address already in use") != std::string::npos)
      continue;
    EXPECT_FALSE(exited) << process.output();
    EXPECT_TRUE(found) << last << "\n" << process.output();
    EXPECT_NE(last.find(R"("job":"ringwatchd")"), std::string::npos) << last;
    break;
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace ringwatch::daemon
