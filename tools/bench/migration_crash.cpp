#include "tools/bench/migration_crash.h"

#include <fcntl.h>
#include <rapidjson/document.h>
#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "migration/engine.h"
#include "probes/registry.h"
#include "tools/lab/lab.h"

extern char** environ;

namespace ringwatch::bench {

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr char kWrapper[] = R"(#!/bin/sh
# Written by the migration crash harness: one start and one end line per action.
log=$1
shift
echo "start $$ $RINGWATCH_STEP $RINGWATCH_ATTEMPT" >> "$log"
"$@"
status=$?
echo "end $$ $RINGWATCH_STEP $RINGWATCH_ATTEMPT $status" >> "$log"
exit $status
)";

// `$` is special in plan strings.
std::string plan_literal(const std::string& text) {
  std::string out;
  for (char c : text) out += c == '$' ? std::string("$$") : std::string(1, c);
  return out;
}

// The plan with every step's command run through the wrapper.
std::string wrapped_plan(const fs::path& plan, const fs::path& wrapper, const fs::path& actions) {
  std::ifstream in(plan);
  std::stringstream text;
  text << in.rdbuf();
  rapidjson::Document document;
  document.Parse<rapidjson::kParseIterativeFlag>(text.str().c_str());
  if (document.HasParseError() || !document.IsObject() || !document.HasMember("clusters")) {
    throw std::runtime_error("cannot read the plan " + plan.string());
  }
  auto& allocator = document.GetAllocator();
  for (auto& cluster : document["clusters"].GetArray()) {
    for (auto& step : cluster["steps"].GetArray()) {
      if (!step.HasMember("run")) continue;
      rapidjson::Value run(rapidjson::kArrayType);
      run.PushBack(rapidjson::Value(plan_literal(wrapper.string()).c_str(), allocator), allocator);
      run.PushBack(rapidjson::Value(plan_literal(actions.string()).c_str(), allocator), allocator);
      for (auto& arg : step["run"].GetArray()) run.PushBack(arg, allocator);
      step["run"] = run;
    }
  }
  rapidjson::StringBuffer buffer;
  rapidjson::PrettyWriter<rapidjson::StringBuffer> writer(buffer);
  document.Accept(writer);
  return buffer.GetString();
}

// `ringwatch migrate run` as a child, its output in a file of its own.
class EngineProcess {
 public:
  EngineProcess(const CrashOptions& options, const fs::path& plan, const fs::path& output) {
    std::vector<std::string> args = {options.ringwatch.string(),
                                     "migrate",
                                     "run",
                                     "--plan",
                                     plan.string(),
                                     "--var",
                                     "lab=" + (options.dir / "lab").string(),
                                     "--state",
                                     (options.dir / "state").string()};
    std::vector<char*> argv;
    for (auto& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t files;
    ::posix_spawn_file_actions_init(&files);
    ::posix_spawn_file_actions_addopen(&files, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    ::posix_spawn_file_actions_addopen(&files, STDOUT_FILENO, output.c_str(),
                                       O_WRONLY | O_CREAT | O_APPEND, 0644);
    ::posix_spawn_file_actions_adddup2(&files, STDOUT_FILENO, STDERR_FILENO);
    const int error = ::posix_spawn(&pid_, argv[0], &files, nullptr, argv.data(), environ);
    ::posix_spawn_file_actions_destroy(&files);
    if (error != 0) throw std::runtime_error("cannot run " + args[0] + ": " + std::strerror(error));
  }
  ~EngineProcess() {
    if (pid_ > 0) kill9();
  }
  EngineProcess(const EngineProcess&) = delete;
  EngineProcess& operator=(const EngineProcess&) = delete;

  // The exit status once it exited (then it was reaped), else nullopt.
  std::optional<int> exited() {
    if (pid_ <= 0) return status_;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) != pid_) return std::nullopt;
    pid_ = 0;
    status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return status_;
  }
  void kill9() {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = 0;
  }

 private:
  pid_t pid_ = 0;
  int status_ = -1;
};

struct ActionLine {
  bool start = false;
  int pid = 0;
  std::string step;
  int attempt = 0;
  int status = -1;  // end lines
};

std::vector<ActionLine> read_actions(const fs::path& path) {
  std::vector<ActionLine> lines;
  std::ifstream in(path);
  for (std::string text; std::getline(in, text);) {
    std::istringstream fields(text);
    std::string kind;
    ActionLine line;
    fields >> kind >> line.pid >> line.step >> line.attempt;
    line.start = kind == "start";
    if (!line.start) fields >> line.status;
    if (kind == "start" || kind == "end") lines.push_back(line);
  }
  return lines;
}

class Harness {
 public:
  explicit Harness(const CrashOptions& options) : options_(options), random_(options.seed) {}

  CrashReport run() {
    const auto started = Clock::now();
    prepare();
    for (int step : kill_steps()) {
      EngineProcess engine(options_, plan_file_, output(report_.kills));
      if (run_into(engine, step)) {
        log("the engine exited " + std::to_string(engine.exited().value_or(-1)) + " before kill " +
            std::to_string(report_.kills + 1) + ", at " + where_now());
        break;
      }
      if (gave_up_) break;
      engine.kill9();
      ++report_.kills;
      log("kill " + std::to_string(report_.kills) + " at " + where_now());
      journal_or_violation();
    }
    if (!gave_up_) {
      EngineProcess last(options_, plan_file_, output(report_.kills));
      const auto until = Clock::now() + options_.final_timeout;
      while (!last.exited() && Clock::now() < until && !gave_up_) steer(last);
      report_.final_exit = last.exited().value_or(-1);
    }
    check();
    report_.duration =
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started);
    return report_;
  }

  void log(const std::string& line) {
    if (options_.log) *options_.log << line << std::endl;
  }
  void violation(const std::string& what) {
    report_.violations.push_back(what);
    log("VIOLATION: " + what);
  }
  fs::path output(int run) const { return options_.dir / ("run-" + std::to_string(run) + ".log"); }
  std::chrono::milliseconds random_delay() {
    std::uniform_int_distribution<long> delay(options_.min_delay.count(),
                                              options_.max_delay.count());
    return std::chrono::milliseconds(delay(random_));
  }

  void prepare() {
    fs::create_directories(options_.dir);
    lab::up({options_.dir / "lab", 3, 3, false});
    const fs::path wrapper = options_.dir / "action-wrapper.sh";
    std::ofstream(wrapper) << kWrapper;
    fs::permissions(wrapper, fs::perms::owner_all | fs::perms::group_read | fs::perms::others_read);
    actions_ = options_.dir / "actions.log";
    plan_file_ = options_.dir / "plan.json";
    std::ofstream(plan_file_) << wrapped_plan(options_.plan, wrapper, actions_);
    plan_ = migration::load_plan(plan_file_.string(), {{"lab", (options_.dir / "lab").string()},
                                                       {"ringwatch", options_.ringwatch.string()}});
  }

  // Where the kills fall: for each, a step (random, in plan order; not the
  // last, so the plan is still running when its moment comes), and then a
  // random moment once the migration got there.
  std::vector<int> kill_steps() {
    const int steps = static_cast<int>(plan_.clusters.at(0).steps.size());
    std::uniform_int_distribution<int> step(0, std::max(0, steps - 2));
    std::vector<int> targets;
    for (int i = 0; i < options_.kills; ++i) targets.push_back(step(random_));
    std::sort(targets.begin(), targets.end());
    return targets;
  }

  // Lets `engine` run until the migration is at `step` (or past it), then
  // for a random delay but not beyond the step after it, steering it like
  // an operator; true when it exited.
  bool run_into(EngineProcess& engine, int step) {
    const auto give_up = Clock::now() + options_.final_timeout;
    while (current_step() < step && Clock::now() < give_up && !gave_up_) {
      if (engine.exited()) return true;
      steer(engine);
    }
    const auto until = Clock::now() + random_delay();
    while (Clock::now() < until && current_step() <= step && !gave_up_) {
      if (engine.exited()) return true;
      steer(engine);
    }
    return engine.exited().has_value();
  }

  int current_step() {
    const auto state = journal_or_violation();
    if (!state || state->cluster_order.empty()) return 0;
    return state->find(state->cluster_order.front())->step;
  }

  // One look at the journal: an interrupted step that is not safe to re-run
  // is skipped when its command ended with 0, else resumed. A step whose
  // action failed for good is resumed once when it is safe to re-run (a
  // flaky roll); otherwise the harness gives up: that is a finding.
  void steer(EngineProcess& engine) {
    std::this_thread::sleep_for(50ms);
    if (engine.exited()) return;
    const auto state = journal_or_violation();
    if (!state || state->cluster_order.empty()) return;
    const migration::ClusterProgress& cluster = *state->find(state->cluster_order.front());
    if (cluster.phase != migration::Phase::paused) return;
    if (cluster.reason != migration::PauseReason::interrupted &&
        cluster.reason != migration::PauseReason::failed_action) {
      return;
    }
    const std::string& step = cluster.step_names.at(static_cast<std::size_t>(cluster.step));
    if (cluster.reason == migration::PauseReason::failed_action &&
        (!plan_.clusters.at(0).steps.at(static_cast<std::size_t>(cluster.step)).safe_to_rerun ||
         !resumed_after_failure_.insert(step).second)) {
      violation(step + " failed for good: " + cluster.detail);
      gave_up_ = true;
      return;
    }
    try {
      if (cluster.reason == migration::PauseReason::interrupted && completed(step) &&
          cluster.steps[static_cast<std::size_t>(cluster.step)].outcome ==
              migration::StepProgress::Outcome::open) {
        migration::Command skip{migration::make_command_id(),
                                "skip",
                                cluster.name,
                                step,
                                "its command ended with status 0 (actions.log)",
                                ""};
        migration::submit_command(options_.dir / "state", skip);
        ++report_.operator_skips;
        log("operator: skip " + step + " (it had completed)");
      }
      migration::Command resume{migration::make_command_id(), "resume", cluster.name, "", "", ""};
      migration::submit_command(options_.dir / "state", resume);
      ++report_.operator_resumes;
      log("operator: resume at " + step + " (" + migration::to_string(cluster.reason) + ")");
    } catch (const std::exception& error) {
      log("operator command refused: " + std::string(error.what()));
    }
  }

  bool completed(const std::string& step) const {
    for (const ActionLine& line : read_actions(actions_)) {
      if (!line.start && line.step == step && line.status == 0) return true;
    }
    return false;
  }

  std::optional<migration::JournalState> journal_or_violation() {
    try {
      return migration::replay(migration::read_journal(options_.dir / "state"));
    } catch (const std::exception& error) {
      violation(std::string("the journal is refused: ") + error.what());
      return std::nullopt;
    }
  }

  std::string where_now() {
    const auto state = journal_or_violation();
    if (!state || state->cluster_order.empty()) return "the start";
    const migration::ClusterProgress& cluster = *state->find(state->cluster_order.front());
    std::string where = std::string(migration::to_string(cluster.phase)) + " at step " +
                        std::to_string(cluster.step + 1);
    if (cluster.step < static_cast<int>(cluster.steps.size()) &&
        cluster.steps[static_cast<std::size_t>(cluster.step)].in_flight) {
      where += " (its action running)";
    }
    return where;
  }

  void check();
  void check_actions(const std::vector<migration::Record>& records);
  void check_steps(const migration::JournalState& state, const std::vector<ActionLine>& actions);

  const CrashOptions& options_;
  std::mt19937 random_;
  fs::path actions_, plan_file_;
  migration::Plan plan_;
  CrashReport report_;
  std::set<std::string> resumed_after_failure_;
  bool gave_up_ = false;
};

void Harness::check() {
  if (report_.final_exit != 0) {
    violation("the last run exited " + std::to_string(report_.final_exit) + " (see " +
              output(options_.kills).string() + ")");
  }
  std::vector<migration::Record> records;
  try {
    records = migration::read_journal(options_.dir / "state");
  } catch (const std::exception& error) {
    violation(std::string("the journal is refused: ") + error.what());
    return;
  }
  for (const migration::Record& record : records) {
    if (record.type != migration::Record::Type::attempt_end || record.outcome != "interrupted") {
      continue;
    }
    ++report_.interrupted_attempts;
    if (!record.orphan.empty()) ++report_.orphans[record.orphan];
  }
  check_actions(records);
  check_steps(migration::replay(records), read_actions(actions_));
  const report::Report probe =
      probes::ProbeSet(probes::known_checks())
          .run_round(spec::load_cluster_spec(lab::spec_path(options_.dir / "lab").string()));
  report_.final_status = report::to_string(probe.status());
  if (probe.status() != report::Status::ok) violation("the last probe: " + probe.summary_line());
}

// No two at once, each journaled before it ran.
void Harness::check_actions(const std::vector<migration::Record>& records) {
  std::set<int> journaled;
  for (const migration::Record& record : records) {
    if (record.type == migration::Record::Type::attempt) journaled.insert(record.group.pgid);
  }
  std::optional<ActionLine> running;
  for (const ActionLine& line : read_actions(actions_)) {
    const std::string name = line.step + " attempt " + std::to_string(line.attempt) + " (pid " +
                             std::to_string(line.pid) + ")";
    if (line.start) {
      ++report_.actions_started;
      if (running) {
        violation(name + " started while " + running->step + " attempt " +
                  std::to_string(running->attempt) + " (pid " + std::to_string(running->pid) +
                  ") still ran");
      }
      if (!journaled.count(line.pid)) violation(name + " ran without an attempt record naming it");
      running = line;
    } else if (running && running->pid == line.pid) {
      running.reset();
    } else {
      violation(name + " ended without having started");
    }
  }
  if (running && report_.orphans["killed"] == 0) {
    violation(running->step + " (pid " + std::to_string(running->pid) + ") never ended");
  }
}

// None twice that may not be, none left out.
void Harness::check_steps(const migration::JournalState& state,
                          const std::vector<ActionLine>& actions) {
  const migration::ClusterPlan& cluster = plan_.clusters.at(0);
  const migration::ClusterProgress* progress = state.find(cluster.name);
  if (progress == nullptr || progress->phase != migration::Phase::finished) {
    violation("the cluster did not finish");
  }
  for (std::size_t i = 0; i < cluster.steps.size(); ++i) {
    const migration::Step& step = cluster.steps[i];
    int starts = 0;
    bool succeeded = false;
    for (const ActionLine& line : actions) {
      if (line.step != step.name) continue;
      starts += line.start;
      succeeded |= !line.start && line.status == 0;
    }
    if (!step.safe_to_rerun && starts > 1) {
      violation(step.name + " is not safe to re-run and started " + std::to_string(starts) +
                " times");
    }
    if (!succeeded) violation(step.name + " never completed (no end with status 0)");
    if (progress && progress->steps[i].outcome == migration::StepProgress::Outcome::open) {
      violation(step.name + " is neither done nor skipped in the journal");
    }
  }
}

}  // namespace

CrashReport run_crash_test(const CrashOptions& options) {
  struct LabDown {
    fs::path dir;
    ~LabDown() {
      try {
        lab::down(dir);
      } catch (const std::exception&) {
        // no lab was started
      }
    }
  } lab_down{options.dir / "lab"};
  return Harness(options).run();
}

}  // namespace ringwatch::bench
