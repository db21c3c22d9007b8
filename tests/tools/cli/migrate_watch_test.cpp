// `ringwatch migrate status --watch` and `migrate run`'s live view, as the
// real binary shows them while a real `migrate run` of a small plan (steps
// that sleep) runs: on a pseudo-terminal (forkpty, as a person's terminal),
// into a pipe (a log collector), and stopped with SIGINT (the watch, and
// `migrate run` showing the view). Every wait is bounded; a child still
// running at its deadline is killed and the test fails.
//
// Run time: about 20 s, most of it three runs of a plan of six 1 s steps.

#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace ringwatch {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

constexpr char kDeadSpec[] = R"({"name": "dead",
  "proxies": [{"name": "p1", "kind": "twemproxy", "client": "127.10.250.1:1"}],
  "backends": [{"name": "b1", "address": "127.10.250.2", "port": 1, "dns_name": "b1.test",
                "expected_cidr": "127.10.0.0/16"}],
  "timeouts": {"connect_ms": 100, "io_ms": 200}})";

// Two clusters one after the other, three steps of 1 s each: b's ETA comes
// from a's history of the same steps.
constexpr char kSleepPlan[] = R"({"schedule": {"max_parallel_clusters": 1},
  "clusters": [
    {"name": "a", "spec": "dead.json", "steps": [{"name": "one", "run": ["sleep", "1"]},
      {"name": "two", "run": ["sleep", "1"]}, {"name": "three", "run": ["sleep", "1"]}]},
    {"name": "b", "spec": "dead.json", "steps": [{"name": "one", "run": ["sleep", "1"]},
      {"name": "two", "run": ["sleep", "1"]}, {"name": "three", "run": ["sleep", "1"]}]}]})";

// One step done, then a step that waits for an approval nobody gives.
constexpr char kWaitingPlan[] = R"({"clusters": [{"name": "a", "spec": "dead.json", "steps": [
    {"name": "one", "run": ["true"]}, {"name": "gate", "approval": "before", "run": ["true"]}]}]})";

struct Outcome {
  int code = -1;  // -1: killed at its deadline, or did not exit
  std::string out;
};

int exit_code_of(int status) {
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// Waits up to `deadline` for `pid`; kills it (SIGKILL) past that.
int wait_bounded(pid_t pid, std::chrono::seconds deadline) {
  const auto until = SteadyClock::now() + deadline;
  int status = 0;
  while (::waitpid(pid, &status, WNOHANG) == 0) {
    if (SteadyClock::now() > until) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      return -1;
    }
    std::this_thread::sleep_for(20ms);
  }
  return exit_code_of(status);
}

std::vector<std::string> environment(const std::vector<std::string>& set) {
  std::vector<std::string> env(set);
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string entry = *e;
    if (!entry.starts_with("TERM=")) env.push_back(entry);
  }
  return env;
}

// What a terminal shows: escape sequences and carriage returns taken out.
std::string visible(const std::string& text) {
  return std::regex_replace(text, std::regex("\033\\[[?0-9;]*[A-Za-z]|\r"), "");
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// Every "ETA <n>s" of cluster `name`'s lines, in the order shown.
std::vector<int> etas_of(const std::string& name, const std::string& text) {
  std::vector<int> etas;
  const std::regex eta("ETA ([0-9]+)s");
  for (const std::string& line : lines_of(visible(text))) {
    std::smatch match;
    const auto at = line.find(name + ": ");
    if (at != std::string::npos && std::regex_search(line, match, eta))
      etas.push_back(std::stoi(match[1]));
  }
  return etas;
}

class MigrateWatchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "ringwatch-watch-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    root_ = pattern;
    std::ofstream(root_ / "dead.json") << kDeadSpec;
  }
  void TearDown() override {
    if (engine_ > 0) {
      ::kill(engine_, SIGTERM);
      wait_bounded(engine_, 30s);
    }
    fs::remove_all(root_);
  }

  std::string write_plan(const std::string& text) const {
    std::ofstream(root_ / "plan.json") << text;
    return (root_ / "plan.json").string();
  }
  std::string state() const { return (root_ / "state").string(); }

  // `migrate run` in the background, its output into run.log (not a
  // terminal: today's transition lines); returns once its journal exists.
  void start_engine(const std::string& plan) {
    engine_ = ::fork();
    ASSERT_GE(engine_, 0);
    engine_pid_ = engine_;
    if (engine_ == 0) {
      const int log = ::open((root_ / "run.log").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ::dup2(log, STDOUT_FILENO);
      ::dup2(log, STDERR_FILENO);
      ::execl(RINGWATCH_BINARY, RINGWATCH_BINARY, "migrate", "run", "--plan", plan.c_str(),
              "--state", state().c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    const auto until = SteadyClock::now() + 20s;
    int status = 0;
    while (!fs::exists(fs::path(state()) / "journal.jsonl") && SteadyClock::now() < until) {
      if (::waitpid(engine_, &status, WNOHANG) == engine_) {
        engine_ = -1;
        std::ifstream log(root_ / "run.log");
        FAIL() << "migrate run exited: " << std::string(std::istreambuf_iterator<char>(log), {});
      }
      std::this_thread::sleep_for(20ms);
    }
    ASSERT_TRUE(fs::exists(fs::path(state()) / "journal.jsonl")) << "no journal after 20 s";
  }

  int wait_engine() {
    const int code = wait_bounded(engine_, 60s);
    engine_ = -1;
    return code;
  }

  // The real binary on an 80x24 pseudo-terminal, read until it exits (at
  // most `deadline`); `on_output` sees everything read so far and may
  // signal the child (by its pid).
  Outcome on_terminal(const std::vector<std::string>& args, std::chrono::seconds deadline,
                      const std::function<void(const std::string&, pid_t)>& on_output = {}) {
    std::vector<std::string> argv{RINGWATCH_BINARY};
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<std::string> env = environment({"TERM=xterm"});
    std::vector<char*> c_argv, c_env;
    for (std::string& a : argv) c_argv.push_back(a.data());
    for (std::string& e : env) c_env.push_back(e.data());
    c_argv.push_back(nullptr);
    c_env.push_back(nullptr);
    winsize size{};
    size.ws_row = 24;
    size.ws_col = 80;
    int master = -1;
    const pid_t pid = ::forkpty(&master, nullptr, nullptr, &size);
    if (pid < 0) return {-1, "forkpty failed"};
    if (pid == 0) {
      ::chdir(root_.c_str());
      ::execve(c_argv[0], c_argv.data(), c_env.data());
      ::_exit(127);
    }
    Outcome outcome;
    const auto until = SteadyClock::now() + deadline;
    char buffer[4096];
    while (SteadyClock::now() < until) {
      pollfd ready{master, POLLIN, 0};
      if (::poll(&ready, 1, 100) <= 0) continue;
      const ssize_t n = ::read(master, buffer, sizeof buffer);
      if (n <= 0) break;  // EIO once the child has closed its side
      outcome.out.append(buffer, static_cast<std::size_t>(n));
      if (on_output) on_output(outcome.out, pid);
    }
    ::close(master);
    outcome.code = wait_bounded(pid, 5s);
    return outcome;
  }

  fs::path root_;
  pid_t engine_ = -1;
  pid_t engine_pid_ = -1;  // kept after the engine was waited for
};

TEST_F(MigrateWatchTest, OnATerminalTheViewIsRedrawnWithTheStepThePhaseAndAnEtaThatDecreases) {
  start_engine(write_plan(kSleepPlan));
  const Outcome watch =
      on_terminal({"migrate", "status", "--state", state(), "--watch", "--interval", "0.2"}, 60s);
  EXPECT_EQ(wait_engine(), 0);
  ASSERT_EQ(watch.code, 0) << visible(watch.out);
  // Hidden cursor, lines rewritten in place (back up, clear to the end of
  // each line), never a clear-screen; the cursor shown again at the end.
  EXPECT_TRUE(watch.out.starts_with("\033[?25l")) << watch.out.substr(0, 40);
  EXPECT_NE(watch.out.find("\r\033[4A"), std::string::npos);  // header, engine, a, b
  EXPECT_NE(watch.out.find("\033[K"), std::string::npos);
  EXPECT_EQ(watch.out.find("\033[2J"), std::string::npos);
  EXPECT_TRUE(watch.out.ends_with("\033[?25h")) << watch.out.substr(watch.out.size() - 40);
  const std::string shown = visible(watch.out);
  EXPECT_NE(shown.find("a: step 2/3 two, running (attempt 1), ETA "), std::string::npos) << shown;
  EXPECT_NE(shown.find("b: step 3/3 three, running (attempt 1), ETA "), std::string::npos) << shown;
  EXPECT_NE(shown.find("(step history)"), std::string::npos) << shown;
  EXPECT_NE(shown.find("\nengine: pid " + std::to_string(engine_pid_)), std::string::npos) << shown;
  EXPECT_NE(shown.find("b: the end (3 steps), finished, total "), std::string::npos) << shown;
  // b runs after a: its ETA is known from the start and runs down to the end.
  const std::vector<int> etas = etas_of("b", watch.out);
  ASSERT_GE(etas.size(), 3u) << shown;
  EXPECT_GE(etas.front(), 3) << shown;
  EXPECT_LE(etas.back(), 1) << shown;
  for (std::size_t i = 1; i < etas.size(); ++i) EXPECT_LE(etas[i], etas[i - 1] + 1) << shown;
}

TEST_F(MigrateWatchTest, IntoAPipeTheViewIsPlainLinesOnePerChange) {
  start_engine(write_plan(kSleepPlan));
  const std::string command = "timeout 60 '" + std::string(RINGWATCH_BINARY) +
                              "' migrate status --state '" + state() +
                              "' --watch --interval 0.2 2>&1";
  FILE* pipe = ::popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string out;
  char buffer[4096];
  for (std::size_t n; (n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0;) out.append(buffer, n);
  const int code = exit_code_of(::pclose(pipe));
  EXPECT_EQ(wait_engine(), 0);
  EXPECT_EQ(code, 0) << out;
  EXPECT_EQ(out.find('\033'), std::string::npos) << out;
  EXPECT_EQ(out.find('\r'), std::string::npos) << out;
  const std::vector<std::string> lines = lines_of(out);
  // Every line is one cluster at one moment, and a cluster's line comes
  // only when what it says changed.
  const std::regex line(
      "[0-9-]+T[0-9:.]+Z (a|b): ((step [1-3]/3 (one|two|three)|the end \\(3 steps\\)), [^,]+), "
      ".*");
  ASSERT_FALSE(lines.empty());
  EXPECT_NE(lines.front().find(" engine: pid " + std::to_string(engine_pid_) +
                               ", ringwatch migrate run since "),
            std::string::npos)
      << out;
  std::map<std::string, std::string> said;  // cluster -> its position and phase
  for (const std::string& each : lines) {
    // The engine's line, and one when it is gone (it may end before the watch).
    if (each.find(" engine: pid ") != std::string::npos || each.ends_with(" no engine is running"))
      continue;
    std::smatch match;
    ASSERT_TRUE(std::regex_match(each, match, line)) << each;
    EXPECT_NE(said[match[1]], match[2]) << "said twice: " << each << "\n" << out;
    said[match[1]] = match[2];
  }
  // At least the engine and a line per step and the end of each cluster; at
  // most one per state a frame can catch (pending; preflight, running,
  // running with its attempt, verifying, done of each step; the end) and
  // the engine's two.
  EXPECT_GE(lines.size(), 9u) << out;
  EXPECT_LE(lines.size(), 2u * (1 + 3 * 5 + 1) + 2) << out;
  EXPECT_TRUE(lines.back().find("b: the end (3 steps), finished") != std::string::npos) << out;
}

TEST_F(MigrateWatchTest, SigintEndsTheWatchAndGivesTheCursorBack) {
  start_engine(write_plan(kWaitingPlan));
  bool interrupted = false;
  const Outcome watch =
      on_terminal({"migrate", "status", "--state", state(), "--watch"}, 30s,
                  [&](const std::string& out, pid_t pid) {
                    if (!interrupted && out.find("awaiting_approval, ETA") != std::string::npos) {
                      ::kill(pid, SIGINT);
                      interrupted = true;
                    }
                  });
  ASSERT_TRUE(interrupted) << visible(watch.out);
  EXPECT_EQ(watch.code, 1) << visible(watch.out);  // as `status`: awaiting an approval
  EXPECT_TRUE(watch.out.ends_with("\033[?25h")) << watch.out;
  // Waiting is not work: the ETA says what is left once it goes on.
  EXPECT_NE(visible(watch.out).find("a: step 2/2 gate, awaiting_approval, ETA "), std::string::npos)
      << visible(watch.out);
  EXPECT_NE(visible(watch.out).find(" of work once it goes on"), std::string::npos);
}

TEST_F(MigrateWatchTest, RunShowsTheViewOnATerminalAndItsTransitionLinesWithLog) {
  const std::string plan = write_plan(R"({"clusters": [
    {"name": "a", "spec": "dead.json", "steps": [{"name": "one", "run": ["sleep", "1"]},
      {"name": "two", "run": ["true"]}]}]})");
  const Outcome view =
      on_terminal({"migrate", "run", "--plan", plan, "--state", state(), "--interval", "0.2"}, 60s);
  ASSERT_EQ(view.code, 0) << visible(view.out);
  EXPECT_TRUE(view.out.starts_with("\033[?25l")) << view.out.substr(0, 40);
  const std::string shown = visible(view.out);
  EXPECT_NE(shown.find("a: step 1/2 one, running (attempt 1)"), std::string::npos) << shown;
  // The engine's last lines under the view, and its summary after it.
  EXPECT_NE(shown.find("a: done -> finished at the end: every step done"), std::string::npos)
      << shown;
  EXPECT_TRUE(shown.ends_with("migration ended: a finished; journal in " + state() + "\n"))
      << shown;

  fs::remove_all(state());
  const Outcome log =
      on_terminal({"migrate", "run", "--plan", plan, "--state", state(), "--log"}, 60s);
  ASSERT_EQ(log.code, 0) << log.out;
  EXPECT_EQ(log.out.find('\033'), std::string::npos) << log.out;
  EXPECT_NE(log.out.find("a: pending -> preflight at step 1 (one): started"), std::string::npos)
      << log.out;
}

TEST_F(MigrateWatchTest, SigintStopsRunAndItsViewGivesTheCursorBack) {
  const std::string plan = write_plan(kWaitingPlan);
  bool interrupted = false;
  const Outcome run =
      on_terminal({"migrate", "run", "--plan", plan, "--state", state()}, 30s,
                  [&](const std::string& out, pid_t pid) {
                    if (!interrupted && out.find("awaiting_approval, ETA") != std::string::npos) {
                      ::kill(pid, SIGINT);
                      interrupted = true;
                    }
                  });
  ASSERT_TRUE(interrupted) << visible(run.out);
  EXPECT_EQ(run.code, 3) << visible(run.out);  // stopped
  const auto shown_again = run.out.rfind("\033[?25h");
  ASSERT_NE(shown_again, std::string::npos) << run.out;
  EXPECT_EQ(run.out.substr(shown_again + 6),
            "migration stopped: a awaiting_approval; journal in " + state() + "\r\n");
}

}  // namespace
}  // namespace ringwatch
