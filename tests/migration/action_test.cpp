#include "migration/action.h"

#include "migration/process_group.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>

namespace ringwatch::migration {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using SteadyClock = std::chrono::steady_clock;

std::string read_file(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Alive and not a zombie (a reparented zombie waits for a reaper we do not control).
bool process_running(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return false;
  const auto paren = line.rfind(')');
  if (paren == std::string::npos || paren + 2 >= line.size()) return false;
  const char state = line[paren + 2];
  return state != 'Z' && state != 'X';
}

// What a test allows beyond a deadline: seconds, for a loaded machine (ASan on
// two shared cores), yet far less than the hangs these tests guard against.
constexpr milliseconds kMargin{5000};

bool gone_within(pid_t pid, milliseconds timeout) {
  const auto until = SteadyClock::now() + timeout;
  while (process_running(pid)) {
    if (SteadyClock::now() > until) return false;
    std::this_thread::sleep_for(milliseconds(10));
  }
  return true;
}

pid_t read_pid(const fs::path& path) {
  std::ifstream in(path);
  long pid = 0;
  in >> pid;
  return static_cast<pid_t>(pid);
}

class ActionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           ("ringwatch-action-test-" + std::to_string(::getpid()) + "-" + info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
    // Every child was reaped: none is left, zombie or not.
    errno = 0;
    EXPECT_EQ(::waitpid(-1, nullptr, WNOHANG), -1);
    EXPECT_EQ(errno, ECHILD);
  }

  ActionContext context(const std::string& log_name = "logs/c1/step.log") const {
    ActionContext c;
    c.cluster = "c1";
    c.step = "drain";
    c.attempt = 2;
    c.spec_path = "/etc/ringwatch/c1.json";
    c.log_path = dir_ / log_name;
    c.kill_grace = milliseconds(300);
    return c;
  }

  static Action command(std::vector<std::string> argv, milliseconds timeout = milliseconds(2000)) {
    Action action;
    action.argv = std::move(argv);
    action.timeout = timeout;
    return action;
  }

  fs::path dir_;
};

TEST_F(ActionTest, SucceedsAndLogsOutputAfterAHeader) {
  const ActionContext ctx = context();
  const ActionResult result =
      run_action(command({"sh", "-c", "echo hello out; echo hello err >&2"}), ctx);
  EXPECT_TRUE(result.ok());
  EXPECT_EQ(result.outcome, ActionOutcome::succeeded);
  EXPECT_EQ(result.exit_status, 0);
  EXPECT_EQ(result.detail, "exit status 0");
  EXPECT_EQ(result.output_tail, "hello out\nhello err\n");

  const std::string log = read_file(ctx.log_path);  // parent directories were created
  EXPECT_EQ(log.rfind("=== ", 0), 0u) << log;
  EXPECT_NE(log.find("Z cluster c1 step drain attempt 2: sh -c 'echo hello out; echo hello err "
                     ">&2'\nhello out\nhello err\n"),
            std::string::npos)
      << log;
}

TEST_F(ActionTest, ChildGetsRingwatchVariablesAndTheEngineEnvironment) {
  ::setenv("RINGWATCH_CLUSTER", "stale", 1);
  ::setenv("RINGWATCH_ACTION_TEST_INHERITED", "inherited", 1);
  const ActionResult result = run_action(
      command({"sh", "-c",
               "echo $RINGWATCH_CLUSTER $RINGWATCH_STEP $RINGWATCH_ATTEMPT $RINGWATCH_SPEC "
               "$RINGWATCH_ACTION_TEST_INHERITED; env | grep -c '^RINGWATCH_CLUSTER='"}),
      context());
  ::unsetenv("RINGWATCH_CLUSTER");
  ::unsetenv("RINGWATCH_ACTION_TEST_INHERITED");
  ASSERT_TRUE(result.ok()) << result.detail;
  EXPECT_EQ(result.output_tail, "c1 drain 2 /etc/ringwatch/c1.json inherited\n1\n");
}

TEST_F(ActionTest, StdinIsDevNull) {
  // A read from an inherited terminal or pipe would block until the action's
  // timeout: "eof" and success say it read /dev/null.
  const ActionResult result = run_action(
      command({"sh", "-c", "if read line; then echo got; else echo eof; fi"}), context());
  ASSERT_TRUE(result.ok()) << result.detail;
  EXPECT_EQ(result.output_tail, "eof\n");
}

TEST_F(ActionTest, NonZeroExitFails) {
  const ActionResult result = run_action(command({"sh", "-c", "echo bad; exit 3"}), context());
  EXPECT_FALSE(result.ok());
  EXPECT_EQ(result.outcome, ActionOutcome::failed);
  EXPECT_EQ(result.exit_status, 3);
  EXPECT_EQ(result.detail, "exit status 3");
  EXPECT_EQ(result.output_tail, "bad\n");
}

TEST_F(ActionTest, KilledBySignalOfItsOwnFails) {
  const ActionResult result = run_action(command({"sh", "-c", "kill -9 $$"}), context());
  EXPECT_EQ(result.outcome, ActionOutcome::failed);
  EXPECT_EQ(result.exit_status, -1);
  EXPECT_EQ(result.detail, "killed by signal 9");
}

TEST_F(ActionTest, MissingProgramCouldNotStart) {
  const ActionContext ctx = context();
  const ActionResult result = run_action(command({"ringwatch-no-such-program", "x"}), ctx);
  EXPECT_EQ(result.outcome, ActionOutcome::could_not_start);
  EXPECT_EQ(result.exit_status, -1);
  EXPECT_EQ(result.detail, "cannot run \"ringwatch-no-such-program\": No such file or directory");
  EXPECT_NE(read_file(ctx.log_path).find("No such file or directory"), std::string::npos);

  const ActionResult by_path = run_action(command({(dir_ / "nope").string()}), ctx);
  EXPECT_EQ(by_path.outcome, ActionOutcome::could_not_start);
  EXPECT_EQ(by_path.detail,
            "cannot run \"" + (dir_ / "nope").string() + "\": No such file or directory");
}

TEST_F(ActionTest, NotExecutableCouldNotStart) {
  const fs::path script = dir_ / "script.sh";
  std::ofstream(script) << "#!/bin/sh\necho hi\n";
  fs::permissions(script, fs::perms::owner_read | fs::perms::owner_write);
  const ActionResult result = run_action(command({script.string()}), context());
  EXPECT_EQ(result.outcome, ActionOutcome::could_not_start);
  EXPECT_EQ(result.detail, "cannot run \"" + script.string() + "\": Permission denied");
}

TEST_F(ActionTest, UnwritableLogCouldNotStart) {
  std::ofstream(dir_ / "file") << "a file, not a directory\n";
  const ActionResult result = run_action(command({"true"}), context("file/step.log"));
  EXPECT_EQ(result.outcome, ActionOutcome::could_not_start);
  EXPECT_EQ(
      result.detail.rfind("cannot open log \"" + (dir_ / "file/step.log").string() + "\": ", 0), 0u)
      << result.detail;
}

TEST_F(ActionTest, EmptyArgvIsAProgrammingError) {
  EXPECT_THROW(run_action(Action{}, context()), std::invalid_argument);
}

TEST_F(ActionTest, TimeoutKillsTheWholeProcessGroup) {
  const fs::path pid_file = dir_ / "grandchild.pid";
  const auto started = SteadyClock::now();
  const ActionResult result = run_action(
      command({"sh", "-c", "sleep 100 & echo $! > " + pid_file.string() + "; echo waiting; wait"},
              milliseconds(400)),
      context());
  const auto elapsed = SteadyClock::now() - started;
  EXPECT_EQ(result.outcome, ActionOutcome::timed_out);
  EXPECT_EQ(result.detail, "timed out after 400 ms");
  EXPECT_EQ(result.output_tail, "waiting\n");
  EXPECT_GE(elapsed, milliseconds(400));
  EXPECT_LT(elapsed, milliseconds(400) + kMargin) << "it waited for the sleep 100";
  const pid_t grandchild = read_pid(pid_file);
  ASSERT_GT(grandchild, 0);
  EXPECT_TRUE(gone_within(grandchild, kMargin));
}

TEST_F(ActionTest, TimeoutEscalatesToSigkillAfterTheGrace) {
  const fs::path pid_file = dir_ / "grandchild.pid";
  ActionContext ctx = context();
  ctx.kill_grace = milliseconds(500);
  const auto started = SteadyClock::now();
  // Both the shell and its background sleep ignore SIGTERM.
  const ActionResult result = run_action(
      command({"sh", "-c", "trap '' TERM; sleep 100 & echo $! > " + pid_file.string() + "; wait"},
              milliseconds(1000)),
      ctx);
  const auto elapsed = SteadyClock::now() - started;
  EXPECT_EQ(result.outcome, ActionOutcome::timed_out);
  EXPECT_EQ(result.detail, "timed out after 1 s");
  EXPECT_EQ(result.exit_status, -1);
  EXPECT_GE(elapsed, milliseconds(1000 + 500));
  EXPECT_LT(elapsed, milliseconds(1000 + 500) + kMargin) << "it waited for the sleep 100";
  const pid_t grandchild = read_pid(pid_file);
  ASSERT_GT(grandchild, 0);
  EXPECT_TRUE(gone_within(grandchild, kMargin));
}

TEST_F(ActionTest, CancelKillsTheProcessGroup) {
  const fs::path pid_file = dir_ / "grandchild.pid";
  std::atomic<bool> cancel{false};
  std::thread canceller([&cancel] {
    std::this_thread::sleep_for(milliseconds(200));
    cancel = true;
  });
  const auto started = SteadyClock::now();
  const ActionResult result =
      run_action(command({"sh", "-c", "sleep 100 & echo $! > " + pid_file.string() + "; wait"},
                         milliseconds(10000)),
                 context(), &cancel);
  const auto elapsed = SteadyClock::now() - started;
  canceller.join();
  EXPECT_EQ(result.outcome, ActionOutcome::cancelled);
  EXPECT_EQ(result.detail, "cancelled");
  EXPECT_FALSE(result.ok());
  EXPECT_LT(elapsed, milliseconds(200) + kMargin) << "it waited for the 10 s timeout";
  const pid_t grandchild = read_pid(pid_file);
  ASSERT_GT(grandchild, 0);
  EXPECT_TRUE(gone_within(grandchild, kMargin));
}

TEST_F(ActionTest, OutputTailIsBoundedAndCoversThisAttemptOnly) {
  const ActionContext ctx = context();
  ASSERT_TRUE(run_action(command({"sh", "-c", "echo first attempt"}), ctx).ok());
  const ActionResult result = run_action(
      command({"sh", "-c", "i=0; while [ $i -lt 500 ]; do echo \"line $i\"; i=$((i+1)); done"}),
      ctx);
  ASSERT_TRUE(result.ok()) << result.detail;
  EXPECT_LE(result.output_tail.size(), 2048u);
  EXPECT_GT(result.output_tail.size(), 1900u);
  EXPECT_EQ(result.output_tail.rfind("line ", 0), 0u) << "starts at a line";
  EXPECT_TRUE(result.output_tail.ends_with("line 499\n"));

  const ActionResult quiet = run_action(command({"true"}), ctx);
  ASSERT_TRUE(quiet.ok());
  EXPECT_EQ(quiet.output_tail, "");
  const std::string log = read_file(ctx.log_path);
  EXPECT_NE(log.find("first attempt\n"), std::string::npos);
  EXPECT_NE(log.find("line 499\n"), std::string::npos);
}

TEST_F(ActionTest, RunsFromSeveralThreadsAtOnce) {
  ActionResult results[4];
  std::thread threads[4];
  for (int i = 0; i < 4; ++i) {
    threads[i] = std::thread([this, i, &results] {
      ActionContext ctx = context("logs/thread" + std::to_string(i) + ".log");
      ctx.attempt = i + 1;
      results[i] = run_action(command({"sh", "-c", "sleep 0.1; echo $RINGWATCH_ATTEMPT"}), ctx);
    });
  }
  for (auto& thread : threads) thread.join();
  for (int i = 0; i < 4; ++i) {
    EXPECT_TRUE(results[i].ok()) << results[i].detail;
    EXPECT_EQ(results[i].output_tail, std::to_string(i + 1) + "\n");
  }
}

TEST_F(ActionTest, TheCommandIsHeldUntilOnSpawnedHasTheGroupItRunsIn) {
  const fs::path marker = dir_ / "ran";
  ActionContext ctx = context();
  ProcessGroup group;
  bool ran_early = true;
  ctx.on_spawned = [&](const ProcessGroup& g) {
    group = g;
    std::this_thread::sleep_for(milliseconds(300));
    ran_early = fs::exists(marker);
  };
  // The command says which process and group it is: $$ and field 5 of its stat.
  const ActionResult result = run_action(
      command({"sh", "-c", "echo $$ $(cut -d' ' -f5 /proc/$$/stat) > " + marker.string()}), ctx);
  ASSERT_TRUE(result.ok()) << result.detail;
  EXPECT_FALSE(ran_early) << "the command ran before on_spawned returned";
  ASSERT_TRUE(group.known());
  EXPECT_EQ(read_file(marker),
            std::to_string(group.pgid) + " " + std::to_string(group.pgid) + "\n");
  EXPECT_GT(group.start_time, 0u);
  EXPECT_EQ(group.boot_id, current_boot_id());
}

TEST_F(ActionTest, WhenOnSpawnedThrowsTheCommandNeverRuns) {
  const fs::path marker = dir_ / "ran";
  ActionContext ctx = context();
  ProcessGroup group;
  ctx.on_spawned = [&](const ProcessGroup& g) {
    group = g;
    throw std::runtime_error("cannot write the journal");
  };
  EXPECT_THROW(run_action(command({"sh", "-c", "echo ran > " + marker.string()}), ctx),
               std::runtime_error);
  ASSERT_TRUE(group.known());
  std::this_thread::sleep_for(milliseconds(200));
  EXPECT_FALSE(fs::exists(marker));
  EXPECT_FALSE(group_alive(group));
}

TEST_F(ActionTest, AProgramThatCannotRunIsReportedAfterItsGroupWasNamed) {
  // A path with a '/' is tried by the child itself: its exec fails after on_spawned.
  ActionContext ctx = context();
  int named = 0;
  ctx.on_spawned = [&](const ProcessGroup&) { ++named; };
  const ActionResult result = run_action(command({(dir_ / "nope").string()}), ctx);
  EXPECT_EQ(result.outcome, ActionOutcome::could_not_start);
  EXPECT_EQ(result.detail,
            "cannot run \"" + (dir_ / "nope").string() + "\": No such file or directory");
  EXPECT_EQ(named, 1);
  // Not found in PATH: nothing is spawned, nothing named.
  const ActionResult missing = run_action(command({"ringwatch-no-such-program"}), ctx);
  EXPECT_EQ(missing.outcome, ActionOutcome::could_not_start);
  EXPECT_EQ(named, 1);
}

TEST(ActionOutcomeTest, Names) {
  EXPECT_STREQ(to_string(ActionOutcome::succeeded), "succeeded");
  EXPECT_STREQ(to_string(ActionOutcome::failed), "failed");
  EXPECT_STREQ(to_string(ActionOutcome::timed_out), "timed_out");
  EXPECT_STREQ(to_string(ActionOutcome::cancelled), "cancelled");
  EXPECT_STREQ(to_string(ActionOutcome::could_not_start), "could_not_start");
}

}  // namespace
}  // namespace ringwatch::migration
