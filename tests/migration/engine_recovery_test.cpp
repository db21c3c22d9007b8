// The engine after kill -9 (engine.h, "Crash recovery"): an engine runs in a
// child process and is killed while its action runs; the action's process
// group lives on, as it does after a real crash; a new engine on the same
// state directory must never run the step while the old group still runs.
// Each action appends "start PID" and "end PID" lines to a file, so the test
// reads from the actions' side whether two ever overlapped.

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "migration/engine.h"
#include "migration/process_group.h"
#include "tests/migration/engine_fixture.h"

namespace ringwatch::migration {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

std::vector<std::string> lines_of(const fs::path& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < until) {
    if (condition()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return condition();
}

class EngineRecoveryTest : public testing::EngineFixture {
 protected:
  void TearDown() override {
    // Whatever a failed test left running goes with the test.
    for (const Record& record : journal_or_nothing()) {
      if (record.type == Record::Type::attempt) stop_group(record.group, 200ms);
    }
    EngineFixture::TearDown();
  }

  std::vector<Record> journal_or_nothing() const {
    try {
      return journal();
    } catch (const std::exception&) {
      return {};
    }
  }

  // An engine on `p` in a child process, kill -9ed once `ready` holds.
  void run_engine_until_killed(const Plan& p, const std::function<bool()>& ready) {
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      try {
        Engine engine(p, options());
        engine.run();
      } catch (...) {
      }
      ::_exit(0);
    }
    const bool became_ready = eventually(ready, 20s);
    ::kill(child, SIGKILL);
    ::waitpid(child, nullptr, 0);
    ASSERT_TRUE(became_ready) << "the engine never got there";
  }

  // The step's action: "start PID", a sleep, "end PID" (in the actions file).
  std::string step_plan(const std::string& sleep, const std::string& extra = "") {
    return R"({"clusters": [{"name": "c1", "spec": "${dead}", "steps": [
      {"name": "roll", "run": ["sh", "-c",
        "echo start $$$$ >> ${root}/actions; )" +
           sleep + R"(; echo end $$$$ >> ${root}/actions"]
       )" + extra +
           R"(}]}]})";
  }

  fs::path actions() const { return root_ / "actions"; }
  bool started() const { return !lines_of(actions()).empty(); }

  std::vector<Record> ends_of_attempts() const {
    std::vector<Record> ends;
    for (const Record& record : journal()) {
      if (record.type == Record::Type::attempt_end) ends.push_back(record);
    }
    return ends;
  }
};

// Each "start" is followed by its own "end" before the next "start".
void expect_one_at_a_time(const std::vector<std::string>& lines) {
  std::string open;
  for (const std::string& line : lines) {
    if (line.rfind("start ", 0) == 0) {
      EXPECT_EQ(open, "") << "started while " << open << " still ran";
      open = line.substr(6);
    } else if (line.rfind("end ", 0) == 0) {
      EXPECT_EQ(line.substr(4), open) << "an end without its start";
      open.clear();
    }
  }
}

TEST_F(EngineRecoveryTest, AnActionLeftRunningByAKilledEngineIsWaitedForBeforeItRunsAgain) {
  const Plan p = plan(step_plan("sleep 1.5", R"(, "safe_to_rerun": true)"));
  run_engine_until_killed(p, [&] { return started(); });
  ASSERT_EQ(lines_of(actions()).size(), 1u) << "the first attempt still runs";

  Engine engine(p, options());
  EXPECT_EQ(engine.run().exit_code(), 0) << log_.str();

  const auto lines = lines_of(actions());
  ASSERT_EQ(lines.size(), 4u);
  expect_one_at_a_time(lines);
  EXPECT_NE(lines[0].substr(6), lines[2].substr(6)) << "two attempts, two processes";
  const auto ends = ends_of_attempts();
  ASSERT_EQ(ends.size(), 2u);
  EXPECT_EQ(ends[0].outcome, "interrupted");
  EXPECT_EQ(ends[0].orphan, "waited");
  EXPECT_EQ(ends[0].detail,
            "the engine stopped while it ran; it ran on and ended by itself (outcome unknown)");
  EXPECT_EQ(ends[1].outcome, "succeeded");
  EXPECT_NE(log_.str().find("c1: attempt 1 of step 1 (roll) still runs from the previous engine "
                            "(process group " +
                            lines[0].substr(6) + "); waiting for it to end, until "),
            std::string::npos)
      << log_.str();
}

TEST_F(EngineRecoveryTest, AnActionStillRunningAtItsTimeoutIsKilledWithItsGroupBeforeItRunsAgain) {
  // The first attempt hangs (with a child of its own); the second is quick.
  const Plan p = plan(R"({"clusters": [{"name": "c1", "spec": "${dead}", "steps": [
      {"name": "roll", "timeout": 1, "safe_to_rerun": true, "run": ["sh", "-c",
        "echo start $$$$ >> ${root}/actions; if [ $$RINGWATCH_ATTEMPT = 1 ]; then sleep 60 & echo $$! > ${root}/child; wait; fi; echo end $$$$ >> ${root}/actions"]}]}]})");
  run_engine_until_killed(p, [&] { return started() && fs::exists(root_ / "child"); });
  const int child = std::stoi(lines_of(root_ / "child").at(0));
  ASSERT_TRUE(process_start_time(child).has_value());

  Engine engine(p, options());
  EXPECT_EQ(engine.run().exit_code(), 0) << log_.str();

  const auto lines = lines_of(actions());
  ASSERT_EQ(lines.size(), 3u);  // start, (killed), start, end
  EXPECT_EQ(lines[2], "end " + lines[1].substr(6));
  const int first = std::stoi(lines[0].substr(6));
  EXPECT_TRUE(eventually([&] { return !process_start_time(first).has_value(); }, 2s))
      << "the hung attempt survived";
  EXPECT_TRUE(eventually([&] { return !process_start_time(child).has_value(); }, 2s))
      << "the hung attempt's own child survived";
  const auto ends = ends_of_attempts();
  ASSERT_EQ(ends.size(), 2u);
  EXPECT_EQ(ends[0].orphan, "killed");
  EXPECT_EQ(ends[0].detail,
            "the engine stopped while it ran; it ran on past its timeout and its group was killed");
  EXPECT_NE(log_.str().find("still runs at its timeout; killing it"), std::string::npos)
      << log_.str();
}

TEST_F(EngineRecoveryTest, AStepNotSafeToRerunWaitsForItsGroupThenPausesForAnOperator) {
  const Plan p = plan(step_plan("sleep 1"));
  run_engine_until_killed(p, [&] { return started(); });

  Engine engine(p, options());
  auto result = start(engine);
  ASSERT_TRUE(wait_for([](const auto& s) { return paused(s, "c1", PauseReason::interrupted); }));
  // The pause came only once the old attempt had ended.
  const auto lines = lines_of(actions());
  ASSERT_EQ(lines.size(), 2u);
  expect_one_at_a_time(lines);
  const auto ends = ends_of_attempts();
  ASSERT_EQ(ends.size(), 1u);
  EXPECT_EQ(ends[0].orphan, "waited");
  engine.stop();
  EXPECT_EQ(result->get().exit_code(), 3);
}

TEST_F(EngineRecoveryTest, TheAttemptAndItsGroupAreOnDiskBeforeTheCommandRuns) {
  const Plan p = plan(step_plan("true"));
  EngineOptions o = options();
  bool ran_before_its_record = true;
  ProcessGroup journaled;
  o.on_record = [&](const Record& record) {
    if (record.type != Record::Type::attempt) return;
    journaled = record.group;
    std::this_thread::sleep_for(200ms);  // the command is held meanwhile
    ran_before_its_record = fs::exists(actions());
    // What the record names is on disk already.
    const auto on_disk = read_journal(state_);
    EXPECT_EQ(on_disk.back().group, record.group);
  };
  Engine engine(p, o);
  EXPECT_EQ(engine.run().exit_code(), 0) << log_.str();
  EXPECT_FALSE(ran_before_its_record);
  ASSERT_TRUE(journaled.known());
  EXPECT_EQ(lines_of(actions()).at(0), "start " + std::to_string(journaled.pgid));
  EXPECT_GT(journaled.start_time, 0u);
  EXPECT_EQ(journaled.boot_id, current_boot_id());
}

TEST_F(EngineRecoveryTest, AJournaledGroupWhosePidNowNamesAnotherProcessIsLeftAlone) {
  // A journal as a crash leaves it, naming a group by the pid of a process
  // that is not it (another start time): the number was reused.
  const pid_t other = ::fork();
  ASSERT_GE(other, 0);
  if (other == 0) {
    ::setsid();
    ::execlp("sleep", "sleep", "30", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ASSERT_TRUE(eventually([&] { return process_start_time(other).has_value(); }, 2s));
  const Plan p = plan(step_plan("true", R"(, "safe_to_rerun": true)"));
  {
    Record run;
    run.type = Record::Type::run;
    run.plan = p.source;
    run.structure["c1"] = {"roll"};
    Journal journal(state_, journal_header(p.source, run.structure));
    journal.append(run);
    Record state;
    state.cluster = "c1";
    state.phase = Phase::running;
    journal.append(state);
    Record attempt;
    attempt.type = Record::Type::attempt;
    attempt.cluster = "c1";
    attempt.attempt = 1;
    attempt.group = {other, *process_start_time(other) + 1, current_boot_id()};
    journal.append(attempt);
  }
  Engine engine(p, options());
  EXPECT_EQ(engine.run().exit_code(), 0) << log_.str();
  EXPECT_EQ(ends_of_attempts().at(0).orphan, "gone");
  EXPECT_TRUE(process_start_time(other).has_value()) << "another process was signalled";
  ::kill(other, SIGKILL);
  ::waitpid(other, nullptr, 0);
}

}  // namespace
}  // namespace ringwatch::migration
