// ringwatchd's HTTP API, in-process, against real labs on loopback.
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "daemon/daemon.h"
#include "tests/daemon/daemon_test_support.h"
#include "tests/daemon/running_daemon.h"
#include "tests/support/scoped_lab.h"

namespace ringwatch::daemon {
namespace {

using ringwatch::testing::eventually;
using ringwatch::testing::http_raw;
using ringwatch::testing::http_request;
using ringwatch::testing::metric_value;
using ringwatch::testing::RunningDaemon;

std::string spec_path(const ringwatch::testing::ScopedLab& lab) {
  return lab::spec_path(lab.dir()).string();
}

// Rounds completed of `cluster`, from /v1/clusters ("rounds": N).
long rounds_of(std::uint16_t port, const std::string& cluster) {
  const auto body = http_request(port, "GET", "/v1/clusters").body;
  const auto at = body.find("{\"name\":\"" + cluster + "\"");
  if (at == std::string::npos) return -1;
  const auto rounds = body.find("\"rounds\":", at);
  return std::atol(body.c_str() + rounds + 9);
}

TEST(DaemonApiTest, EveryEndpoint) {
  ringwatch::testing::ScopedLab lab;
  RunningDaemon daemon({spec_path(lab)});
  const auto port = daemon.port();

  const auto health = http_request(port, "GET", "/healthz");
  EXPECT_EQ(health.status, 200);
  EXPECT_EQ(health.body, "ok\n");
  const auto head = http_request(port, "HEAD", "/healthz");
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.header("content-length"), "3");
  EXPECT_EQ(head.body, "");

  ASSERT_TRUE(
      eventually([&] { return http_request(port, "GET", "/v1/clusters/lab").status == 200; }));
  const auto latest = http_request(port, "GET", "/v1/clusters/lab");
  EXPECT_EQ(latest.header("content-type"), "application/json");
  EXPECT_NE(latest.body.find(R"("schema": "ringwatch.report/v1")"), std::string::npos)
      << latest.body;
  EXPECT_NE(latest.body.find(R"("cluster": "lab")"), std::string::npos);
  EXPECT_NE(latest.body.find(R"("status": "OK")"), std::string::npos) << latest.body;
  EXPECT_FALSE(latest.header("x-report-age-seconds").empty());
  EXPECT_LT(std::atof(latest.header("x-report-age-seconds").c_str()), 30.0);

  const auto all = http_request(port, "GET", "/v1/clusters");
  EXPECT_EQ(all.status, 200);
  EXPECT_EQ(all.body.rfind(R"([{"name":"lab","status":"OK","age_seconds":)", 0), 0u) << all.body;
  EXPECT_NE(all.body.find(R"("report":{"schema":"ringwatch.report/v1")"), std::string::npos);

  const auto metrics = http_request(port, "GET", "/metrics");
  EXPECT_EQ(metrics.status, 200);
  EXPECT_EQ(metrics.header("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(metric_value(metrics.body, R"(ringwatch_check_status{check="canary",cluster="lab"})"),
            0.0)
      << metrics.body;
  EXPECT_GE(
      metric_value(metrics.body, R"(ringwatch_probe_rounds_total{cluster="lab",outcome="ok"})")
          .value_or(0),
      1.0);
}

TEST(DaemonApiTest, BadRequests) {
  ringwatch::testing::ScopedLab lab;
  RunningDaemon daemon({spec_path(lab)}, std::chrono::seconds(30));
  const auto port = daemon.port();

  const auto post_health = http_request(port, "POST", "/healthz");
  EXPECT_EQ(post_health.status, 405);
  EXPECT_EQ(post_health.header("allow"), "GET, HEAD");
  EXPECT_EQ(post_health.body, "{\"error\":\"method POST not allowed (allowed: GET, HEAD)\"}\n");
  EXPECT_EQ(http_request(port, "DELETE", "/v1/clusters/lab").status, 405);
  const auto get_preflight = http_request(port, "GET", "/v1/clusters/lab/preflight");
  EXPECT_EQ(get_preflight.status, 405);
  EXPECT_EQ(get_preflight.header("allow"), "POST");

  const auto unknown = http_request(port, "GET", "/v1/clusters/nope");
  EXPECT_EQ(unknown.status, 404);
  EXPECT_EQ(unknown.body, "{\"error\":\"unknown cluster \\\"nope\\\"\"}\n");
  EXPECT_EQ(http_request(port, "POST", "/v1/clusters/nope/preflight").status, 404);
  EXPECT_EQ(http_request(port, "GET", "/nope").status, 404);

  const auto bad_check =
      http_request(port, "POST", "/v1/clusters/lab/preflight?checks=canary,bogus");
  EXPECT_EQ(bad_check.status, 400);
  EXPECT_EQ(bad_check.body,
            "{\"error\":\"unknown check \\\"bogus\\\" (known: canary, connections, dns)\"}\n");

  // A declared body above 64 KiB is refused before it is read.
  const auto big = http_raw(port,
                            "POST /v1/clusters/lab/preflight HTTP/1.1\r\nHost: x\r\n"
                            "Content-Length: 100000\r\n\r\n");
  EXPECT_EQ(big.status, 413);
  EXPECT_EQ(big.body, "{\"error\":\"request body exceeds 65536 bytes\"}\n");
  const auto big_headers = http_raw(
      port, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(20000, 'a') + "\r\n\r\n");
  EXPECT_EQ(big_headers.status, 431);
  EXPECT_EQ(http_raw(port, "NONSENSE\r\n\r\n").status, 400);

  // The daemon still serves after all that.
  EXPECT_EQ(http_request(port, "GET", "/healthz").status, 200);
}

// Issue 12, point 8: query parameters a route does not take are refused, not
// ignored; echoed pieces of a request are bounded and never raw invalid UTF-8.
TEST(DaemonApiTest, QueryParametersAndEchoesAreChecked) {
  const auto dir = std::filesystem::temp_directory_path() / "ringwatch-api-test";
  std::filesystem::create_directories(dir);
  const auto spec = (dir / "tiny.json").string();
  std::ofstream(spec) << R"({"name": "tiny",
    "proxies": [{"name": "p1", "kind": "twemproxy", "client": "127.0.0.1:1"}],
    "backends": [{"name": "b1", "address": "127.0.0.1", "port": 1, "dns_name": "b1.test",
                  "expected_cidr": "127.0.0.0/8"}]})";
  RunningDaemon daemon({spec}, std::chrono::seconds(30));
  const auto port = daemon.port();
  std::filesystem::remove_all(dir);

  for (const char* target :
       {"/healthz?x=1", "/metrics?format=json", "/v1/clusters?x", "/v1/clusters/tiny?x=1"}) {
    const auto refused = http_request(port, "GET", target);
    EXPECT_EQ(refused.status, 400) << target;
    EXPECT_EQ(refused.body.rfind("{\"error\":\"unknown query parameter \\\"", 0), 0u)
        << refused.body;
    EXPECT_NE(refused.body.find("(this endpoint takes none)"), std::string::npos) << refused.body;
  }
  const auto typo = http_request(port, "POST", "/v1/clusters/tiny/preflight?chekcs=dns");
  EXPECT_EQ(typo.status, 400);
  EXPECT_EQ(typo.body,
            "{\"error\":\"unknown query parameter \\\"chekcs\\\" (expected: checks)\"}\n");
  const auto bare = http_request(port, "POST", "/v1/clusters/tiny/preflight?checks");
  EXPECT_EQ(bare.status, 400);
  EXPECT_EQ(bare.body,
            "{\"error\":\"query parameter \\\"checks\\\" needs a value, e.g. "
            "?checks=canary,dns\"}\n");

  const auto invalid = http_raw(port, "GET /v1/\xff\xfe HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(invalid.status, 404);
  EXPECT_EQ(invalid.body, "{\"error\":\"no such endpoint: /v1/\\\\xff\\\\xfe\"}\n");
  const auto long_name = http_request(port, "GET", "/v1/clusters/" + std::string(10000, 'n'));
  EXPECT_EQ(long_name.status, 404);
  EXPECT_EQ(long_name.body,
            "{\"error\":\"unknown cluster \\\"" + std::string(120, 'n') + "...\\\"\"}\n");
}

TEST(DaemonApiTest, PreflightPassesThenFailsAfterEject) {
  ringwatch::testing::ScopedLab lab;
  RunningDaemon daemon({spec_path(lab)}, std::chrono::seconds(30));
  const auto port = daemon.port();

  const auto pass = http_request(port, "POST", "/v1/clusters/lab/preflight");
  EXPECT_EQ(pass.status, 200) << pass.body;
  EXPECT_EQ(pass.header("x-ringwatch-status"), "OK");
  EXPECT_NE(pass.body.find(R"("schema": "ringwatch.report/v1")"), std::string::npos);

  const auto only_dns = http_request(port, "POST", "/v1/clusters/lab/preflight?checks=dns");
  EXPECT_EQ(only_dns.status, 200) << only_dns.body;
  EXPECT_EQ(only_dns.body.find(R"("name": "canary")"), std::string::npos) << only_dns.body;

  lab.inject({lab::FaultKind::eject, "p2", "b3", "", ""});
  const auto fail = http_request(port, "POST", "/v1/clusters/lab/preflight?checks=canary");
  EXPECT_EQ(fail.status, 409) << fail.body;
  EXPECT_EQ(fail.header("x-ringwatch-status"), "CRITICAL");
  EXPECT_NE(fail.body.find("ring_divergence"), std::string::npos) << fail.body;
}

TEST(DaemonApiTest, StalledClusterDoesNotDelayHealthyOne) {
  ringwatch::testing::ScopedLab healthy(3, 3, "healthy");
  ringwatch::testing::ScopedLab stalled(3, 3, "stalled");
  for (const auto* proxy : {"p1", "p2", "p3"}) {
    ASSERT_EQ(::kill(stalled.pid_of(proxy), SIGSTOP), 0);
  }
  RunningDaemon daemon({spec_path(healthy), spec_path(stalled)}, std::chrono::milliseconds(500));
  const auto port = daemon.port();
  ASSERT_TRUE(eventually([&] { return rounds_of(port, "healthy") >= 1; }));
  const long before = rounds_of(port, "healthy");
  const long stalled_before = rounds_of(port, "stalled");
  // Behaviour, not speed: while the healthy cluster makes 20 rounds (at least
  // 9.5 s at 0.5 s), the stalled one, whose rounds each wait out an io
  // deadline (1 s) or more, makes at most about 10. Were the healthy cluster's
  // rounds held up behind the stalled ones, the two counts would go up together.
  ASSERT_TRUE(eventually([&] { return rounds_of(port, "healthy") >= before + 20; },
                         std::chrono::seconds(60)))
      << "healthy rounds " << before << " -> " << rounds_of(port, "healthy");
  const long stalled_rounds = rounds_of(port, "stalled") - stalled_before;
  EXPECT_LE(stalled_rounds, 12) << "the stalled cluster kept pace with the healthy one";
  // The stalled cluster's rounds overrun and their ticks are skipped, not queued.
  const auto metrics = http_request(port, "GET", "/metrics").body;
  EXPECT_GE(
      metric_value(metrics, R"(ringwatch_probe_rounds_total{cluster="stalled",outcome="skipped"})")
          .value_or(0),
      1.0)
      << metrics;
  for (const auto* proxy : {"p1", "p2", "p3"}) ::kill(stalled.pid_of(proxy), SIGCONT);
}

}  // namespace
}  // namespace ringwatch::daemon
