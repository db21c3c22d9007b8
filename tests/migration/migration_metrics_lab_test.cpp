// Issue 16, point 4: `ringwatch migrate run --metrics-listen` scraped by a
// real Prometheus (Debian's) during a real migration of a real lab, with the
// shipped migration rules loaded. The plan waits for an approval, runs an
// observe-mode check that would have paused, pauses on a failed gate; the
// engine is killed (-9) while paused and started again on the same port:
// Prometheus reads the same counters from the new engine (rebuilt from the
// journal), then the operator skips the failed step and approves the last.
// Every value is asserted through Prometheus's query API.
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/daemon/prometheus_process.h"
#include "tests/support/command.h"
#include "tests/support/eventually.h"
#include "tests/support/scoped_lab.h"

namespace ringwatch::migration {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using ringwatch::testing::eventually;
using ringwatch::testing::PrometheusProcess;
using ringwatch::testing::ScopedLab;

const fs::path kSource = RINGWATCH_SOURCE_DIR;

std::string read(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Step 1 waits for an approval and its observe-mode dns check fails (b4 is
// not in the spec before its action adds it); step 2's gate fails (there is
// no b5); step 3 waits for an approval again.
constexpr char kPlan[] = R"({
  "preflight": [{"check": "connections"}],
  "clusters": [{"name": "lab", "spec": "${lab}/cluster.json",
    "steps": [
      {"name": "start-b4", "approval": "before",
       "preflight": [{"check": "dns", "mode": "observe", "backends": ["b4"]}],
       "run": ["${ringwatch}", "lab", "add-backend", "--dir", "${lab}", "--backend", "b4"]},
      {"name": "check-b5", "preflight": [{"check": "dns", "backends": ["b5"]}]},
      {"name": "hand-over", "approval": "before",
       "preflight": [{"check": "dns", "backends": ["b4"]}]}
    ]}]})";

// `ringwatch migrate run ...` in the background, its output in a file;
// SIGKILLed if the test dies first.
class Engine {
 public:
  Engine(const std::vector<std::string>& argv, const fs::path& output) : output_(output) {
    pid_ = ::fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      const int fd = ::open(output.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      std::vector<char*> args;
      for (const auto& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
      args.push_back(nullptr);
      ::execv(args[0], args.data());
      ::_exit(127);
    }
  }
  ~Engine() { kill9(); }
  void kill9() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = 0;
  }
  // The exit status, or -1 while it still runs after `timeout`.
  int wait(std::chrono::milliseconds timeout) {
    int status = -1;
    const bool ended = eventually(
        [&] {
          int raw = 0;
          if (::waitpid(pid_, &raw, WNOHANG) != pid_) return false;
          status = WIFEXITED(raw) ? WEXITSTATUS(raw) : 128 + WTERMSIG(raw);
          return true;
        },
        timeout, 50ms);
    if (ended) pid_ = 0;
    return status;
  }
  std::string output() const { return read(output_); }
  // "127.0.0.1:PORT" from the engine's "metrics at http://ADDRESS/metrics" line.
  std::string metrics_address() const {
    const std::string text = output();
    const std::string marker = " metrics at http://";
    const auto at = text.find(marker);
    if (at == std::string::npos) return {};
    const auto from = at + marker.size();
    return text.substr(from, text.find("/metrics", from) - from);
  }

 private:
  pid_t pid_ = 0;
  fs::path output_;
};

std::string prometheus_config(const std::string& target) {
  return "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
         "rule_files:\n  - ringwatch-migration.rules.yml\n"
         "scrape_configs:\n  - job_name: migration\n    scrape_timeout: 1s\n"
         "    static_configs:\n      - targets: ['" +
         target + "']\n";
}

// The value of the query's only series, or nullopt (no series, several, an error).
std::optional<double> value_of(const PrometheusProcess& prometheus, const std::string& promql) {
  const auto answer = prometheus.query(promql);
  if (!answer.ok || answer.series != 1) return std::nullopt;
  rapidjson::Document document;
  document.Parse(answer.body.c_str());
  return std::stod(document["data"]["result"][0]["value"][1].GetString());
}

// Waits until Prometheus has scraped `promql` == `expected` (a bound on a
// hang: scrapes are every second).
::testing::AssertionResult scraped(const PrometheusProcess& prometheus, const std::string& promql,
                                   double expected) {
  if (eventually([&] { return value_of(prometheus, promql) == expected; }, 60s, 200ms)) {
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure() << promql << " is not " << expected
                                       << "; Prometheus answers " << prometheus.query(promql).body;
}

std::string series(const std::string& name, const std::string& more = {}) {
  return name + R"({job="migration",plan="metrics-plan",cluster="lab")" +
         (more.empty() ? "" : "," + more) + "}";
}

TEST(MigrationMetricsLabTest, PrometheusScrapesAMigrationAcrossAKillNineAndItsRulesEvaluate) {
  if (!fs::exists(PrometheusProcess::kBinary)) {
    GTEST_SKIP() << "no " << PrometheusProcess::kBinary << ": run tools/install-deps.sh";
  }
  ScopedLab lab;
  const fs::path plan_file = lab.sibling("metrics-plan.json");
  std::ofstream(plan_file) << kPlan;
  const fs::path state = lab.sibling("state");
  const std::string state_arg = " --state " + state.string();
  auto run = [&](const std::string& listen) {
    return std::vector<std::string>{RINGWATCH_BINARY,
                                    "migrate",
                                    "run",
                                    "--plan",
                                    plan_file.string(),
                                    "--var",
                                    "lab=" + lab.dir().string(),
                                    "--var",
                                    std::string("ringwatch=") + RINGWATCH_BINARY,
                                    "--state",
                                    state.string(),
                                    "--metrics-listen",
                                    listen};
  };
  auto ringwatch = [](const std::string& args) {
    return testing::run_command(std::string(RINGWATCH_BINARY) + " " + args);
  };

  const std::string plan_args = " --plan " + plan_file.string() +
                                " --var lab=" + lab.dir().string() + state_arg +
                                " --metrics-listen ";
  const auto [bad_code, bad] = ringwatch("migrate run" + plan_args + "localhost:9471");
  EXPECT_EQ(bad_code, 3);
  EXPECT_EQ(bad.substr(0, bad.find('\n')),
            "ringwatch migrate: --metrics-listen wants HOST:PORT with an IP address "
            "(127.0.0.1:9471, [::1]:0), got \"localhost:9471\"");
  const auto [dry_code, dry] = ringwatch("migrate run --dry-run" + plan_args + "127.0.0.1:0");
  EXPECT_EQ(dry_code, 3);
  EXPECT_EQ(dry.substr(0, dry.find('\n')),
            "ringwatch migrate: --metrics-listen is for a real run, not --dry-run");
  EXPECT_FALSE(fs::exists(state));

  // Port 0: the engine says where it listens.
  auto engine = std::make_unique<Engine>(run("127.0.0.1:0"), lab.sibling("run1.log"));
  ASSERT_TRUE(eventually([&] { return !engine->metrics_address().empty(); }, 30s))
      << engine->output();
  const std::string address = engine->metrics_address();
  EXPECT_NE(engine->output().find("/metrics (plan=\"metrics-plan\")"), std::string::npos)
      << engine->output();
  // Its address is taken now: a second engine is refused before it reads
  // the state directory.
  const auto [taken_code, taken] = ringwatch("migrate run" + plan_args + address);
  EXPECT_EQ(taken_code, 3);
  EXPECT_EQ(taken, "ringwatch migrate run: --metrics-listen: cannot listen on " + address +
                       ": Address already in use\n");
  PrometheusProcess prometheus(prometheus_config(address),
                               {{"ringwatch-migration.rules.yml",
                                 read(kSource / "alerts/rules/ringwatch-migration.rules.yml")}});

  // Waiting for the approval of step 1.
  EXPECT_TRUE(scraped(prometheus, series("ringwatch_migration_approvals_pending"), 1));
  EXPECT_TRUE(scraped(
      prometheus, series("ringwatch_migration_cluster_state", R"(state="awaiting_approval")"), 1));
  EXPECT_TRUE(
      scraped(prometheus, series("ringwatch_migration_cluster_state", R"(state="paused")"), 0));
  EXPECT_TRUE(scraped(prometheus, series("ringwatch_migration_step"), 1));
  EXPECT_TRUE(scraped(prometheus, series("ringwatch_migration_steps"), 3));
  // The shipped rule holds for the waiting cluster: its alert is pending
  // (it would fire after its `for`, which promtool's tests cover).
  EXPECT_TRUE(scraped(prometheus,
                      R"(count(ALERTS{alertname="RingwatchMigrationApprovalWaiting",)"
                      R"(alertstate="pending",plan="metrics-plan",cluster="lab"}))",
                      1));

  const auto [approved, approve_said] =
      ringwatch("migrate approve" + state_arg + " --cluster lab --step start-b4 --by alice");
  ASSERT_EQ(approved, 0) << approve_said;

  // Step 1 ran (its observe check would have paused); step 2's gate paused.
  const std::string paused = series("ringwatch_migration_cluster_state", R"(state="paused")");
  EXPECT_TRUE(scraped(prometheus, paused, 1)) << engine->output();
  auto expect_counts_so_far = [&] {
    EXPECT_TRUE(scraped(prometheus, series("ringwatch_migration_step"), 2));
    EXPECT_TRUE(scraped(prometheus, series("ringwatch_migration_steps_completed"), 1));
    EXPECT_TRUE(scraped(prometheus, series("ringwatch_migration_approvals_pending"), 0));
    EXPECT_TRUE(scraped(prometheus, series("ringwatch_migration_approvals_total"), 1));
    EXPECT_TRUE(scraped(prometheus,
                        series("ringwatch_migration_pauses_total", R"(reason="failed_check")"), 1));
    EXPECT_TRUE(
        scraped(prometheus, series("ringwatch_migration_pauses_total", R"(reason="operator")"), 0));
    EXPECT_TRUE(scraped(prometheus,
                        series("ringwatch_migration_check_failures_total", R"(check="dns")"), 1));
    EXPECT_TRUE(
        scraped(prometheus,
                series("ringwatch_migration_check_failures_total", R"(check="connections")"), 0));
    const std::string observed = R"x(check="dns (observe only; backends b4)")x";
    EXPECT_TRUE(
        scraped(prometheus, series("ringwatch_migration_observe_evaluations_total", observed), 1));
    EXPECT_TRUE(
        scraped(prometheus, series("ringwatch_migration_observe_would_pause_total", observed), 1));
    EXPECT_TRUE(scraped(
        prometheus,
        R"(ringwatch_migration_step_duration_seconds_count{plan="metrics-plan",step="start-b4"})",
        1));
    EXPECT_TRUE(scraped(
        prometheus,
        R"(ringwatch_migration_step_duration_seconds_count{plan="metrics-plan",step="check-b5"})",
        0));
  };
  expect_counts_so_far();
  // The paused rule holds for the paused cluster; the approval's no longer.
  EXPECT_TRUE(scraped(prometheus,
                      R"(count(ALERTS{alertname="RingwatchMigrationPausedTooLong",)"
                      R"(alertstate="pending",plan="metrics-plan",cluster="lab"}))",
                      1));
  EXPECT_TRUE(
      scraped(prometheus,
              R"(count(ALERTS{alertname="RingwatchMigrationApprovalWaiting"}) or vector(0))", 0));

  // kill -9 while paused; a new engine on the same address serves the same
  // counts, rebuilt from the journal.
  engine->kill9();
  EXPECT_TRUE(scraped(prometheus, R"(up{job="migration"})", 0));
  engine = std::make_unique<Engine>(run(address), lab.sibling("run2.log"));
  EXPECT_TRUE(
      scraped(prometheus, R"(ringwatch_migration_engine_runs_total{plan="metrics-plan"})", 2))
      << engine->output();
  EXPECT_TRUE(scraped(prometheus, paused, 1));
  expect_counts_so_far();

  // The operator skips the failed step and resumes: step 3 waits for its
  // approval.
  const auto [skipped, skip_said] =
      ringwatch("migrate skip" + state_arg + " --cluster lab --step check-b5 --reason no-b5");
  ASSERT_EQ(skipped, 0) << skip_said;
  const auto [resumed, resume_said] = ringwatch("migrate resume" + state_arg + " --cluster lab");
  ASSERT_EQ(resumed, 0) << resume_said;
  EXPECT_TRUE(scraped(prometheus, series("ringwatch_migration_step"), 3)) << engine->output();
  EXPECT_TRUE(scraped(prometheus, series("ringwatch_migration_approvals_pending"), 1));
  EXPECT_TRUE(scraped(prometheus, series("ringwatch_migration_steps_completed"), 2));
  EXPECT_TRUE(scraped(prometheus, paused, 0));
  EXPECT_TRUE(scraped(prometheus,
                      series("ringwatch_migration_pauses_total", R"(reason="failed_check")"), 1));
  EXPECT_TRUE(scraped(
      prometheus,
      R"(ringwatch_migration_step_duration_seconds_count{plan="metrics-plan",step="check-b5"})",
      0));

  const auto [last, last_said] =
      ringwatch("migrate approve" + state_arg + " --cluster lab --step hand-over --by alice");
  ASSERT_EQ(last, 0) << last_said;
  EXPECT_EQ(engine->wait(60s), 0) << engine->output();
}

}  // namespace
}  // namespace ringwatch::migration
