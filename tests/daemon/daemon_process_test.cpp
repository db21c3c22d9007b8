// The ringwatchd program as a child process: exit codes, SIGHUP reloads,
// SIGTERM during a round.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>

#include "tests/daemon/daemon_test_support.h"
#include "tests/support/scoped_lab.h"

namespace ringwatch::daemon {
namespace {

using ringwatch::testing::DaemonProcess;
using ringwatch::testing::eventually;
using ringwatch::testing::http_request;
using ringwatch::testing::metric_value;

class DaemonProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "ringwatchd-test-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string write(const std::string& name, const std::string& text) {
    const auto path = (dir_ / name).string();
    std::ofstream(path + ".tmp") << text;
    std::filesystem::rename(path + ".tmp", path);  // atomic, as an operator's deploy would
    return path;
  }
  std::string log_path() const { return (dir_ / "ringwatchd.log").string(); }

  std::filesystem::path dir_;
};

double reloads(std::uint16_t port, const std::string& outcome) {
  const auto text = http_request(port, "GET", "/metrics").body;
  return metric_value(text, "ringwatch_config_reloads_total{outcome=\"" + outcome + "\"}")
      .value_or(-1);
}

TEST_F(DaemonProcessTest, BadFleetFileExits3WithFilePointerExpectation) {
  const auto fleet = write("fleet.json", R"({"clusters": [{"spec": 7}]})");
  DaemonProcess daemon({RINGWATCHD_BINARY, "--fleet", fleet}, log_path());
  const auto status = daemon.wait_exit(std::chrono::seconds(10));
  ASSERT_TRUE(status.has_value());
  ASSERT_TRUE(WIFEXITED(*status));
  EXPECT_EQ(WEXITSTATUS(*status), 3);
  EXPECT_EQ(daemon.output(), "ringwatchd: " + fleet +
                                 ": /clusters/0/spec: expected a path to a cluster spec file, got "
                                 "a number\n");
}

TEST_F(DaemonProcessTest, BadUsageExits3) {
  DaemonProcess daemon({RINGWATCHD_BINARY, "--interval", "1"}, log_path());
  const auto status = daemon.wait_exit(std::chrono::seconds(10));
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(WEXITSTATUS(*status), 3);
  EXPECT_EQ(daemon.output(),
            "ringwatchd: give --fleet FILE or at least one --cluster SPEC\n"
            "Try 'ringwatchd --help'.\n");
}

TEST_F(DaemonProcessTest, SighupReloadsGoodAndKeepsRunningOnBad) {
  ringwatch::testing::ScopedLab lab;
  const std::string spec = lab::spec_path(lab.dir()).string();
  const auto fleet = write("fleet.json", R"({"listen": "127.0.0.1:0", "clusters": [{"spec": ")" +
                                             spec + R"(", "interval_seconds": 1}]})");
  DaemonProcess daemon({RINGWATCHD_BINARY, "--fleet", fleet}, log_path());
  const auto port = daemon.wait_port();
  ASSERT_NE(port, 0) << daemon.output();
  ASSERT_TRUE(eventually([&] { return reloads(port, "failure") == 0; })) << daemon.output();
  // Its first round, so that the cluster answers 200 from here on.
  ASSERT_TRUE(eventually([&] {
    return http_request(port, "GET", "/v1/clusters/lab").status == 200;
  })) << daemon.output();

  // Good: a second cluster (the same lab, inline under another name) appears.
  auto inline_spec = spec::to_json(lab.spec());
  inline_spec.replace(inline_spec.find("\"lab\""), 5, "\"lab2\"");
  write("fleet.json", R"({"listen": "127.0.0.1:0", "clusters": [{"spec": ")" + spec +
                          R"(", "interval_seconds": 1}, {"inline": )" + inline_spec +
                          R"(, "interval_seconds": 1}]})");
  ASSERT_EQ(::kill(daemon.pid(), SIGHUP), 0);
  EXPECT_TRUE(eventually([&] { return reloads(port, "success") == 1; })) << daemon.output();
  EXPECT_TRUE(eventually([&] {
    return http_request(port, "GET", "/v1/clusters/lab2").status == 200;
  })) << daemon.output();

  // Broken: logged and counted; the old config keeps running.
  write("fleet.json", R"({"clusters": [{"spec": ")" + spec + R"(", "interval_seconds": -1}]})");
  ASSERT_EQ(::kill(daemon.pid(), SIGHUP), 0);
  EXPECT_TRUE(eventually([&] { return reloads(port, "failure") == 1; })) << daemon.output();
  EXPECT_NE(daemon.output().find("level=error event=reload outcome=failure error=\"" + fleet +
                                 ": /clusters/0/interval_seconds: expected a number of seconds "
                                 "from 0.1 to 86400, got -1\""),
            std::string::npos)
      << daemon.output();
  EXPECT_EQ(reloads(port, "success"), 1);
  EXPECT_EQ(http_request(port, "GET", "/v1/clusters/lab2").status, 200);
  EXPECT_EQ(http_request(port, "GET", "/v1/clusters/lab").status, 200);

  // Good again, with lab2 gone: it is removed.
  write("fleet.json", R"({"clusters": [{"spec": ")" + spec + R"(", "interval_seconds": 1}]})");
  ASSERT_EQ(::kill(daemon.pid(), SIGHUP), 0);
  EXPECT_TRUE(eventually([&] { return reloads(port, "success") == 2; })) << daemon.output();
  EXPECT_EQ(http_request(port, "GET", "/v1/clusters/lab2").status, 404);
  EXPECT_NE(daemon.output().find("event=listen_unchanged"), std::string::npos);
}

// Issue 12, point 2: a fleet file nesting 100,000 arrays crashed a running
// daemon on SIGHUP (in the JSON writer); the documented behaviour is to log,
// count and keep the old config.
TEST_F(DaemonProcessTest, SighupWithADeeplyNestedFleetFileKeepsTheOldConfig) {
  const auto spec = write("cluster.json", R"({"name": "tiny",
    "proxies": [{"name": "p1", "kind": "twemproxy", "client": "127.0.0.1:1"}],
    "backends": [{"name": "b1", "address": "127.0.0.1", "port": 1, "dns_name": "b1.test",
                  "expected_cidr": "127.0.0.0/8"}]})");
  const auto fleet = write("fleet.json", R"({"listen": "127.0.0.1:0", "clusters": [{"spec": ")" +
                                             spec + R"(", "interval_seconds": 1}]})");
  DaemonProcess daemon({RINGWATCHD_BINARY, "--fleet", fleet}, log_path());
  const auto port = daemon.wait_port();
  ASSERT_NE(port, 0) << daemon.output();
  ASSERT_TRUE(eventually([&] { return reloads(port, "failure") == 0; })) << daemon.output();

  write("fleet.json", R"({"clusters": [{"inline": {"x": )" + std::string(100000, '[') +
                          std::string(100000, ']') + "}}]}");
  ASSERT_EQ(::kill(daemon.pid(), SIGHUP), 0);
  EXPECT_TRUE(eventually([&] { return reloads(port, "failure") == 1; })) << daemon.output();
  std::string pointer = "/clusters/0/inline/x";
  for (int level = 5; level <= 32; ++level) pointer += "/0";
  EXPECT_NE(daemon.output().find("level=error event=reload outcome=failure error=\"" + fleet +
                                 ": " + pointer +
                                 ": expected at most 32 levels of nesting, got an array at level "
                                 "33\""),
            std::string::npos)
      << daemon.output().substr(0, 2000);
  const auto clusters = http_request(port, "GET", "/v1/clusters");
  EXPECT_EQ(clusters.status, 200);
  EXPECT_NE(clusters.body.find("\"name\":\"tiny\""), std::string::npos) << clusters.body;
}

TEST_F(DaemonProcessTest, SigtermDuringARoundExitsZeroPromptly) {
  ringwatch::testing::ScopedLab lab;
  // A stalled backend makes every round wait on its deadlines, so a round is
  // in flight when SIGTERM comes.
  ASSERT_EQ(::kill(lab.pid_of("b1"), SIGSTOP), 0);
  DaemonProcess daemon({RINGWATCHD_BINARY, "--cluster", lab::spec_path(lab.dir()).string(),
                        "--interval", "0.2", "--listen", "127.0.0.1:0", "--shutdown-grace", "5"},
                       log_path());
  const auto port = daemon.wait_port();
  ASSERT_NE(port, 0) << daemon.output();
  ASSERT_TRUE(eventually([&] {
    return http_request(port, "GET", "/v1/clusters").body.find("\"rounds\":0") == std::string::npos;
  })) << daemon.output();
  const auto sent = std::chrono::steady_clock::now();
  ASSERT_EQ(::kill(daemon.pid(), SIGTERM), 0);
  const auto status = daemon.wait_exit(std::chrono::seconds(8));
  ASSERT_TRUE(status.has_value()) << daemon.output();
  EXPECT_LT(std::chrono::steady_clock::now() - sent, std::chrono::seconds(7));
  ASSERT_TRUE(WIFEXITED(*status)) << daemon.output();
  EXPECT_EQ(WEXITSTATUS(*status), 0) << daemon.output();
  const auto log = daemon.output();
  EXPECT_NE(log.find("event=signal signal=SIGTERM"), std::string::npos) << log;
  EXPECT_NE(log.find("event=stopped"), std::string::npos) << log;
  // The listener is closed.
  EXPECT_EQ(http_request(port, "GET", "/healthz").status, 0);
  ::kill(lab.pid_of("b1"), SIGCONT);
}

}  // namespace
}  // namespace ringwatch::daemon
