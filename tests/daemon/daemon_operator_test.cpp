// ringwatchd for the people who run it (issue 13), against real labs: the
// status page's HTML and files, the history, GET /probe (shared rounds, the
// per-cluster limit, external schedules), /-/healthy, /-/ready, /-/reload,
// and the log lines an on-call person reads.
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <thread>

#include "daemon/web_assets.h"
#include "tests/daemon/daemon_test_support.h"
#include "tests/daemon/running_daemon.h"
#include "tests/support/scoped_lab.h"

namespace ringwatch::daemon {
namespace {

using ringwatch::testing::DaemonProcess;
using ringwatch::testing::eventually;
using ringwatch::testing::http_request;
using ringwatch::testing::metric_value;
using ringwatch::testing::RunningDaemon;
using ringwatch::testing::ScopedLab;

std::string spec_path(const ScopedLab& lab) {
  return lab::spec_path(lab.dir()).string();
}

// A temporary directory for fleet files and logs.
class TempDir {
 public:
  TempDir() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "ringwatchd-op-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  std::string write(const std::string& name, const std::string& text) const {
    const auto path = (path_ / name).string();
    std::ofstream(path + ".tmp") << text;
    std::filesystem::rename(path + ".tmp", path);
    return path;
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

DaemonOptions fleet_options(const std::string& fleet) {
  DaemonOptions options;
  options.source.fleet_path = fleet;
  options.shutdown_grace = std::chrono::seconds(10);
  return options;
}

TEST(DaemonOperatorTest, StatusPageHtmlAndItsFiles) {
  ScopedLab lab;
  RunningDaemon daemon({spec_path(lab)});
  const auto port = daemon.port();
  const auto pending = http_request(port, "GET", "/");
  EXPECT_EQ(pending.status, 200);
  EXPECT_EQ(pending.header("content-type"), "text/html; charset=utf-8");
  ASSERT_TRUE(
      eventually([&] { return http_request(port, "GET", "/v1/clusters/lab").status == 200; }));

  // The fleet table is complete without JavaScript.
  const auto fleet = http_request(port, "GET", "/").body;
  EXPECT_NE(
      fleet.find(R"(<tr class="row-OK" data-cluster="lab"><td><a href="/clusters/lab">lab</a>)"),
      std::string::npos)
      << fleet;
  EXPECT_NE(fleet.find(R"(<span class="badge st-OK">OK</span>)"), std::string::npos) << fleet;
  EXPECT_NE(fleet.find(R"(<td class="num">1.000</td>)"), std::string::npos) << fleet;
  EXPECT_NE(fleet.find(R"(<meta http-equiv="refresh" content="5">)"), std::string::npos);

  const auto page = http_request(port, "GET", "/clusters/lab");
  EXPECT_EQ(page.status, 200);
  EXPECT_NE(page.body.find(R"(data-page="cluster" data-cluster="lab")"), std::string::npos);
  EXPECT_EQ(http_request(port, "GET", "/clusters/nope").status, 404);

  const auto script = http_request(port, "GET", "/static/ringwatch.js");
  EXPECT_EQ(script.status, 200);
  EXPECT_EQ(script.header("content-type"), "text/javascript; charset=utf-8");
  EXPECT_NE(script.body.find("/history"), std::string::npos);
  EXPECT_EQ(http_request(port, "GET", "/static/ringwatch.css").status, 200);
  EXPECT_EQ(http_request(port, "GET", "/static/nope.js").status, 404);
  EXPECT_EQ(http_request(port, "POST", "/").status, 405);

  // Nothing is fetched from elsewhere: the only URL in the page's files is
  // the SVG namespace.
  for (const auto& asset : web_assets()) {
    std::string body(asset.body);
    for (auto at = body.find("http"); at != std::string::npos; at = body.find("http", at + 1)) {
      if (body.compare(at, 4, "http") == 0 && body.compare(at, 7, "http://") != 0 &&
          body.compare(at, 8, "https://") != 0) {
        continue;
      }
      EXPECT_EQ(body.compare(at, 26, "http://www.w3.org/2000/svg"), 0)
          << asset.name << ": " << body.substr(at, 60);
    }
  }
}

TEST(DaemonOperatorTest, HistoryKeepsTheLastRounds) {
  ScopedLab lab;
  RunningDaemon daemon({spec_path(lab)}, std::chrono::milliseconds(200));
  const auto port = daemon.port();
  std::string body;
  ASSERT_TRUE(eventually([&] {
    body = http_request(port, "GET", "/v1/clusters/lab/history").body;
    return body.find(R"("findings":0},{"started_at")") != std::string::npos;
  })) << body;
  EXPECT_EQ(body.rfind(R"({"cluster":"lab","capacity":120,"rounds":[{"started_at":")", 0), 0u)
      << body;
  EXPECT_NE(body.find(R"("status":"OK","duration_ms":)"), std::string::npos) << body;
  EXPECT_NE(body.find(R"("consistency_ratio":1.0,"findings":0})"), std::string::npos) << body;
  EXPECT_EQ(http_request(port, "GET", "/v1/clusters/nope/history").status, 404);
  EXPECT_EQ(http_request(port, "POST", "/v1/clusters/lab/history").status, 405);
}

TEST(DaemonOperatorTest, ProbeAnswersPrometheusText) {
  ScopedLab lab;
  RunningDaemon daemon({spec_path(lab)}, std::chrono::seconds(60));
  const auto port = daemon.port();

  const auto ok = http_request(port, "GET", "/probe?cluster=lab");
  EXPECT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(ok.header("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(metric_value(ok.body, "ringwatch_probe_success"), 1.0) << ok.body;
  EXPECT_GT(metric_value(ok.body, "ringwatch_probe_duration_seconds").value_or(0), 0.0);
  EXPECT_EQ(metric_value(ok.body, R"(ringwatch_check_status{check="connections"})"), 0.0);
  EXPECT_EQ(metric_value(ok.body, "ringwatch_canary_consistency_ratio"), 1.0);
  EXPECT_EQ(metric_value(ok.body, R"(ringwatch_proxy_backends_routed{proxy="p2"})"), 3.0);
  // 3x3: ceil(22 / 3) = 8 canaries per backend in the linear round.
  EXPECT_EQ(metric_value(ok.body, R"(ringwatch_probe_figure{figure="keys"})"), 24.0) << ok.body;
  EXPECT_EQ(ok.body.find("cluster="), std::string::npos) << "the scrape config names the cluster";

  // Prometheus sends the comma of checks=canary,dns %-escaped.
  const auto dns = http_request(port, "GET", "/probe?cluster=lab&checks=dns%2Ccanary");
  EXPECT_EQ(dns.status, 200);
  EXPECT_EQ(metric_value(dns.body, R"(ringwatch_check_status{check="dns"})"), 0.0) << dns.body;
  EXPECT_FALSE(metric_value(dns.body, R"(ringwatch_check_status{check="connections"})"));

  lab.inject({lab::FaultKind::eject, "p2", "b3", "", ""});
  EXPECT_TRUE(eventually([&] {
    const auto text = http_request(port, "GET", "/probe?cluster=lab&checks=canary").body;
    return metric_value(text, "ringwatch_probe_success") == 0.0 &&
           metric_value(text, R"(ringwatch_proxy_backends_routed{proxy="p2"})") == 2.0 &&
           metric_value(text, "ringwatch_probe_status") == 2.0;
  }));

  const auto missing = http_request(port, "GET", "/probe");
  EXPECT_EQ(missing.status, 400);
  EXPECT_EQ(missing.body, "{\"error\":\"missing query parameter \\\"cluster\\\"\"}\n");
  EXPECT_EQ(http_request(port, "GET", "/probe?cluster=nope").status, 404);
  const auto unknown = http_request(port, "GET", "/probe?cluster=lab&module=x");
  EXPECT_EQ(unknown.status, 400);
  EXPECT_EQ(unknown.body,
            "{\"error\":\"unknown query parameter \\\"module\\\" (expected: cluster, checks)\"}\n");
  EXPECT_EQ(http_request(port, "GET", "/probe?cluster=lab&checks=bogus").status, 400);
  EXPECT_EQ(http_request(port, "GET", "/probe?cluster=%zz").status, 400);
  EXPECT_EQ(http_request(port, "POST", "/probe?cluster=lab").status, 405);
}

// An external cluster runs only when probed; concurrent probes share the
// round in flight, and at most kMaxProbeWaiters wait.
TEST(DaemonOperatorTest, ExternalClusterProbesShareRoundsWithinALimit) {
  ScopedLab lab;
  TempDir dir;
  const auto fleet = dir.write(
      "fleet.json", R"({"listen": "127.0.0.1:0", "clusters": [{"spec": ")" + spec_path(lab) +
                        R"(", "interval_seconds": 0.2, "schedule": "external"}]})");
  RunningDaemon daemon(RunningDaemon::WithOptions{}, fleet_options(fleet));
  const auto port = daemon.port();
  EXPECT_EQ(http_request(port, "GET", "/-/ready").status, 200) << "nothing is scheduled";
  std::this_thread::sleep_for(std::chrono::milliseconds(600));
  auto clusters = http_request(port, "GET", "/v1/clusters").body;
  EXPECT_NE(clusters.find(R"("status":"PENDING")"), std::string::npos) << clusters;
  EXPECT_NE(clusters.find(R"("rounds":0,"skipped":0,"scheduled":0)"), std::string::npos);

  // A stopped backend makes each round wait out its I/O deadline (1 s), so
  // all the callers below arrive while the first round runs.
  ASSERT_EQ(::kill(lab.pid_of("b2"), SIGSTOP), 0);
  constexpr int kCallers = 20;
  std::vector<std::future<int>> callers;
  for (int i = 0; i < kCallers; ++i) {
    callers.push_back(std::async(std::launch::async, [port] {
      return http_request(port, "GET", "/probe?cluster=lab").status;
    }));
  }
  int answered = 0, refused = 0;
  for (auto& caller : callers) {
    const int status = caller.get();
    answered += status == 200;
    refused += status == 503;
  }
  ::kill(lab.pid_of("b2"), SIGCONT);
  EXPECT_EQ(answered + refused, kCallers);
  EXPECT_GE(answered, 16);
  EXPECT_GE(refused, 1);
  clusters = http_request(port, "GET", "/v1/clusters").body;
  const auto rounds = std::atol(clusters.c_str() + clusters.find("\"rounds\":") + 9);
  // The first caller's round, and one shared by everyone who came while it ran.
  EXPECT_GE(rounds, 1);
  EXPECT_LE(rounds, 2) << clusters;
  EXPECT_NE(clusters.find(R"("scheduled":0)"), std::string::npos) << clusters;
}

TEST(DaemonOperatorTest, ReadyAfterTheFirstRoundAndReloadOverHttp) {
  ScopedLab lab;
  ScopedLab other(3, 3, "other");
  TempDir dir;
  const std::string one = R"({"listen": "127.0.0.1:0", "clusters": [{"spec": ")" + spec_path(lab) +
                          R"(", "interval_seconds": 30}]})";
  const auto fleet = dir.write("fleet.json", one);
  // A stopped proxy makes the first round wait out its deadlines.
  ASSERT_EQ(::kill(lab.pid_of("p1"), SIGSTOP), 0);
  RunningDaemon daemon(RunningDaemon::WithOptions{}, fleet_options(fleet));
  const auto port = daemon.port();
  EXPECT_EQ(http_request(port, "GET", "/-/healthy").status, 200);
  const auto not_ready = http_request(port, "GET", "/-/ready");
  EXPECT_EQ(not_ready.status, 503) << not_ready.body;
  ::kill(lab.pid_of("p1"), SIGCONT);
  EXPECT_TRUE(eventually([&] { return http_request(port, "GET", "/-/ready").status == 200; }));

  EXPECT_EQ(http_request(port, "GET", "/-/reload").status, 405);
  dir.write("fleet.json", R"({"listen": "127.0.0.1:0", "clusters": [{"spec": ")" + spec_path(lab) +
                              R"("}, {"spec": ")" + spec_path(other) + R"("}]})");
  const auto reloaded = http_request(port, "POST", "/-/reload");
  EXPECT_EQ(reloaded.status, 200) << reloaded.body;
  EXPECT_NE(http_request(port, "GET", "/v1/clusters").body.find(R"({"name":"other")"),
            std::string::npos);

  dir.write("fleet.json", R"({"clusters": []})");
  const auto bad = http_request(port, "POST", "/-/reload");
  EXPECT_EQ(bad.status, 500);
  EXPECT_EQ(bad.body,
            "{\"error\":\"" + fleet + ": /clusters: expected a non-empty array, got []\"}\n");
  EXPECT_EQ(metric_value(http_request(port, "GET", "/metrics").body,
                         R"(ringwatch_config_reloads_total{outcome="failure"})"),
            1.0);
}

TEST(DaemonOperatorTest, LogsCarryTheSummaryAndStatusChanges) {
  ScopedLab lab;
  TempDir dir;
  const auto log_path = (dir.path() / "ringwatchd.log").string();
  DaemonProcess daemon({RINGWATCHD_BINARY, "--cluster", spec_path(lab), "--interval", "0.3",
                        "--listen", "127.0.0.1:0"},
                       log_path);
  std::string log;
  // A healthy round counts no info finding (the connection matrix is one).
  ASSERT_TRUE(eventually([&] {
    log = daemon.output();
    return log.find("event=round cluster=lab status=OK") != std::string::npos;
  })) << log;
  EXPECT_NE(log.find("findings=0\n"), std::string::npos) << log;
  EXPECT_NE(log.find("level=info event=status_changed cluster=lab from=PENDING to=OK summary="),
            std::string::npos)
      << log;

  lab.inject({lab::FaultKind::eject, "p2", "b3", "", ""});
  ASSERT_TRUE(eventually([&] {
    log = daemon.output();
    return log.find("to=CRITICAL") != std::string::npos;
  })) << log;
  EXPECT_NE(log.find("level=warn event=status_changed cluster=lab from=OK to=CRITICAL "
                     "summary=\"CRITICAL: ring divergence: p2 is missing b3\""),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("status=CRITICAL duration_ms="), std::string::npos);
  EXPECT_NE(log.find(" summary=\"CRITICAL: ring divergence: p2 is missing b3\"\n"),
            std::string::npos)
      << log;
  lab.heal();
  EXPECT_TRUE(eventually([&] {
    return daemon.output().find("from=CRITICAL to=OK") != std::string::npos;
  })) << daemon.output();
}

}  // namespace
}  // namespace ringwatch::daemon
