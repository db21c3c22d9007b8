// Process groups named by pid, start time and boot id (migration/process_group.h),
// on real processes: what is ours is seen and stopped whole, what is not is
// never touched.

#include "migration/process_group.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "migration/action.h"

namespace ringwatch::migration {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// `sh -c script` in a session of its own, not waited for by anyone but the test.
pid_t start_session(const std::string& script) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::setsid();
    ::execlp("sh", "sh", "-c", script.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  return pid;
}

bool exists(pid_t pid) {
  return process_start_time(pid).has_value();
}

// Gone, once whoever inherited it (init) has reaped it.
bool gone_soon(pid_t pid) {
  const auto until = std::chrono::steady_clock::now() + 2s;
  while (exists(pid) && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(10ms);
  }
  return !exists(pid);
}

class ProcessGroupTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "ringwatch-pgroup-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(ProcessGroupTest, AGroupIsAliveWhileAnyMemberRunsEvenAfterItsLeaderEnded) {
  // An action whose leader exits at once, leaving a child in its group.
  ProcessGroup group;
  ActionContext context;
  context.cluster = "c1";
  context.step = "s";
  context.log_path = dir_ / "log";
  context.on_spawned = [&](const ProcessGroup& g) { group = g; };
  Action action;
  action.argv = {"sh", "-c", "sleep 30 & echo $! > " + (dir_ / "child").string()};
  ASSERT_TRUE(run_action(action, context).ok());
  ASSERT_TRUE(group.known());
  EXPECT_FALSE(exists(group.pgid));  // the leader is gone (and was reaped)
  std::ifstream in(dir_ / "child");
  pid_t child = 0;
  in >> child;
  ASSERT_GT(child, 0);
  EXPECT_TRUE(group_alive(group)) << "its child still runs in the group";

  EXPECT_TRUE(stop_group(group, 1000ms));
  EXPECT_FALSE(group_alive(group));
  EXPECT_TRUE(gone_soon(child));
}

TEST_F(ProcessGroupTest, TheRightNameIsAliveAndAReusedPidOrAnotherBootIsNot) {
  const pid_t leader = start_session("sleep 30");
  ASSERT_GT(leader, 0);
  std::this_thread::sleep_for(50ms);  // setsid has happened
  ProcessGroup group;
  for (int i = 0; i < 100 && !group_alive(group); ++i) {
    group = identify_group(leader);
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(group.pgid, leader);
  EXPECT_EQ(group.boot_id, current_boot_id());
  EXPECT_FALSE(group.boot_id.empty());
  EXPECT_TRUE(group_alive(group));

  ProcessGroup reused = group;
  reused.start_time += 1;  // same pid, another process
  EXPECT_FALSE(group_alive(reused));
  EXPECT_TRUE(stop_group(reused, 100ms));  // nothing to stop: it is not ours...
  EXPECT_TRUE(exists(leader));             // ...and it was not signalled

  ProcessGroup rebooted = group;
  rebooted.boot_id = "00000000-0000-0000-0000-000000000000";
  EXPECT_FALSE(group_alive(rebooted));
  EXPECT_FALSE(group_alive(ProcessGroup{}));

  EXPECT_TRUE(stop_group(group, 1000ms));
  ::waitpid(leader, nullptr, 0);
  EXPECT_FALSE(group_alive(group));
}

TEST_F(ProcessGroupTest, AZombieLeaderAloneIsNotAlive) {
  const pid_t leader = start_session("exit 0");
  std::this_thread::sleep_for(50ms);
  // Not reaped: a zombie, with its start time still readable.
  ASSERT_TRUE(exists(leader));
  siginfo_t info{};
  ASSERT_EQ(::waitid(P_PID, static_cast<id_t>(leader), &info, WEXITED | WNOWAIT), 0);
  const ProcessGroup group{leader, *process_start_time(leader), current_boot_id()};
  EXPECT_FALSE(group_alive(group));
  ::waitpid(leader, nullptr, 0);
}

TEST_F(ProcessGroupTest, StopGroupEscalatesToSigkill) {
  const pid_t leader = start_session("trap '' TERM; sleep 30 & trap '' TERM; wait");
  std::this_thread::sleep_for(100ms);
  const ProcessGroup group = identify_group(leader);
  ASSERT_TRUE(group_alive(group));
  std::thread reaper([leader] { ::waitpid(leader, nullptr, 0); });
  EXPECT_TRUE(stop_group(group, 300ms));
  reaper.join();
  EXPECT_FALSE(group_alive(group));
}

}  // namespace
}  // namespace ringwatch::migration
