// The lab migrates: tools/examples/lab-migration.json on a real lab, as an
// operator runs it (`ringwatch migrate run --plan ... --var lab=DIR --state
// STATE`, or the same engine in-process where the test measures between
// steps):
//   - clean: every step runs once, every check passes, the cluster ends on
//     b4, b5, b6 and is consistent, and no step loses more than one
//     backend's share of keys cached before the migration;
//   - the incident (netns lab): b4's name answers its public address at p2's
//     vantage point for its first seconds; the engine pauses before rolling
//     the proxies (dns preflight), alerts, resumes once the answer is right,
//     and finishes clean;
//   - kill -9 in the middle of a step, then `run` again: finished steps are
//     not re-run, the interrupted one (safe to re-run) is;
//   - a blackout covering now holds the cluster paused, a second engine is
//     refused, and `abort` from another shell ends it where it is;
//   - two labs migrate in parallel: one pauses on a dead backend, the other
//     finishes meanwhile, and the first resumes once its backend is back.

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "lib/mc/client.h"
#include "migration/engine.h"
#include "probes/registry.h"
#include "tests/support/command.h"
#include "tests/support/http_test_server.h"
#include "tools/lab/lab.h"
#include "tools/lab/netns.h"

namespace ringwatch::migration {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

const fs::path kExamplePlan = fs::path(RINGWATCH_SOURCE_DIR) / "tools/examples/lab-migration.json";

std::string read(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// A lab (loopback or netns) in a fresh directory, with a state directory
// beside it; stopped when the test ends.
class LabDirs {
 public:
  explicit LabDirs(bool netns = false) {
    std::string pattern = (fs::temp_directory_path() / "ringwatch-migrate-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    root_ = pattern;
    lab::up({root_ / "lab", 3, 3, netns});
  }
  ~LabDirs() {
    try {
      lab::down(lab());
    } catch (const std::exception& error) {
      ADD_FAILURE() << "lab down: " << error.what();
    }
    fs::remove_all(root_);
  }
  fs::path lab() const { return root_ / "lab"; }
  fs::path state() const { return root_ / "state"; }
  fs::path root() const { return root_; }
  spec::ClusterSpec spec() const { return spec::load_cluster_spec(lab::spec_path(lab()).string()); }

 private:
  fs::path root_;
};

Vars lab_vars(const LabDirs& dirs) {
  return {{"lab", dirs.lab().string()}, {"ringwatch", RINGWATCH_BINARY}};
}

// Keys cached through p1 before the migration, and how many are still there.
class CachedKeys {
 public:
  CachedKeys(const spec::ClusterSpec& spec, int count) {
    for (int i = 0; i < count; ++i) keys_.push_back(std::to_string(i) + ":cached-before-migration");
    std::vector<mc::Item> items;
    for (const auto& key : keys_) items.push_back({key, "value-of-" + key});
    auto client = connect(spec);
    auto written = client.set_many(items, std::chrono::seconds(3600));
    if (!written) throw std::runtime_error("writing the keys failed: " + written.error().message);
  }
  int count() const { return static_cast<int>(keys_.size()); }
  int hits(const spec::ClusterSpec& spec) const {
    auto client = connect(spec);
    auto values = client.get_many(keys_);
    return values ? static_cast<int>(values.value().size()) : -1;
  }

 private:
  static mc::Client connect(const spec::ClusterSpec& spec) {
    return mc::Client(spec.proxies.at(0).client,
                      {std::chrono::milliseconds(500), std::chrono::milliseconds(3000)});
  }
  std::vector<std::string> keys_;
};

std::vector<std::string> backend_names(const spec::ClusterSpec& spec) {
  std::vector<std::string> names;
  for (const auto& backend : spec.backends) names.push_back(backend.name);
  return names;
}

int count_records(const std::vector<Record>& records, Record::Type type, int step,
                  std::optional<Phase> phase = std::nullopt) {
  int count = 0;
  for (const Record& r : records) {
    count += r.type == type && r.step == step && (!phase || r.phase == *phase);
  }
  return count;
}

// How each attempt of a step ended, for failure messages.
std::string attempt_outcomes(const std::vector<Record>& records, int step) {
  std::string text;
  for (const Record& r : records) {
    if (r.type == Record::Type::attempt_end && r.step == step)
      text += "\n  attempt " + std::to_string(r.attempt) + ": " + r.outcome + " " + r.detail;
  }
  return text;
}

// What a step's action printed, every attempt (the engine's log of it).
std::string action_log(const std::filesystem::path& state, const std::string& cluster,
                       const std::string& step) {
  std::ifstream in(state / "logs" / cluster / (step + ".log"));
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

report::Report probe_everything(const spec::ClusterSpec& spec) {
  probes::ProbeSet probes(probes::known_checks());
  return probes.run_round(spec);
}

std::string describe(const report::Report& report) {
  std::string text = report.summary_line() + "\n";
  for (const auto& finding : report.findings)
    text += "  " + finding.code + ": " + finding.summary + "\n";
  return text;
}

// A program run by the test, its stdout and stderr in a file; SIGKILLed if
// the test dies first.
class Spawned {
 public:
  Spawned(const std::vector<std::string>& argv, const fs::path& output) : output_(output) {
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
  ~Spawned() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  // The exit status, or -1 if it still runs after `timeout`.
  int wait(std::chrono::milliseconds timeout) {
    const auto until = std::chrono::steady_clock::now() + timeout;
    while (pid_ > 0) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = 0;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      if (std::chrono::steady_clock::now() > until) return -1;
      std::this_thread::sleep_for(20ms);
    }
    return -1;
  }
  void kill9() {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = 0;
  }
  std::string output() const { return read(output_); }

 private:
  pid_t pid_ = 0;
  fs::path output_;
};

std::vector<std::string> run_args(const LabDirs& dirs, const fs::path& plan) {
  return {RINGWATCH_BINARY,
          "migrate",
          "run",
          "--plan",
          plan.string(),
          "--var",
          "lab=" + dirs.lab().string(),
          "--state",
          dirs.state().string()};
}

// `ringwatch <args>`: exit status and everything it printed.
std::pair<int, std::string> ringwatch(const std::string& args) {
  return testing::run_command(std::string(RINGWATCH_BINARY) + " " + args);
}

bool wait_until(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < until) {
    if (condition()) return true;
    std::this_thread::sleep_for(50ms);
  }
  return false;
}

TEST(MigrationLabTest, TheExamplePlanMovesTheLabOntoNewBackendsOneBackendsShareAtATime) {
  LabDirs dirs;
  const Plan plan = load_plan(kExamplePlan.string(), lab_vars(dirs));
  const int steps = static_cast<int>(plan.clusters.at(0).steps.size());
  CachedKeys keys(dirs.spec(), 3000);
  ASSERT_EQ(keys.hits(dirs.spec()), keys.count());

  // Between two steps (right after each `done`), count what is still cached.
  std::vector<std::pair<std::string, int>> lost;  // step name, keys lost in it
  int cached = keys.count();
  EngineOptions options;
  options.state_dir = dirs.state();
  std::ostringstream log;
  options.log = &log;
  options.on_record = [&](const Record& record) {
    if (record.type != Record::Type::state || record.phase != Phase::done) return;
    const int now = keys.hits(dirs.spec());
    lost.emplace_back(plan.clusters[0].steps[static_cast<std::size_t>(record.step)].name,
                      cached - now);
    cached = now;
  };
  Engine engine(plan, options);
  const RunSummary summary = engine.run();
  ASSERT_EQ(summary.exit_code(), 0) << log.str();

  const auto records = read_journal(dirs.state());
  for (int i = 0; i < steps; ++i) {
    const std::string& step_name = plan.clusters[0].steps[static_cast<std::size_t>(i)].name;
    EXPECT_EQ(count_records(records, Record::Type::attempt, i), 1)
        << "step " << i << attempt_outcomes(records, i) << "\nits log:\n"
        << action_log(dirs.state(), plan.clusters[0].name, step_name);
    EXPECT_EQ(count_records(records, Record::Type::state, i, Phase::done), 1) << "step " << i;
  }
  for (const Record& r : records) EXPECT_NE(r.phase, Phase::paused) << r.detail;

  // On the new backends, consistent through every proxy.
  const spec::ClusterSpec after = dirs.spec();
  EXPECT_EQ(backend_names(after), (std::vector<std::string>{"b4", "b5", "b6"}));
  const report::Report report = probe_everything(after);
  EXPECT_EQ(report.status(), report::Status::ok) << describe(report);
  EXPECT_EQ(report.figures.at("consistency_ratio"), 1.0);

  // Caches drained gradually: no step lost more than one backend's share of
  // the three-backend cluster, and the keys did go, step by step.
  ASSERT_EQ(static_cast<int>(lost.size()), steps);
  int steps_that_lost_keys = 0;
  std::string losses;
  for (const auto& [step, count] : lost) {
    losses += step + ": " + std::to_string(count) + "\n";
    steps_that_lost_keys += count > 0;
  }
  std::cout << "keys lost per step (of " << keys.count() << "):\n" << losses;
  for (const auto& [step, count] : lost) {
    EXPECT_LE(count, keys.count() / 3) << step << "\n" << losses;
    EXPECT_GE(count, 0) << step << "\n" << losses;
  }
  EXPECT_GE(steps_that_lost_keys, 3) << losses;
}

// Runs `body` on a thread inside network namespace `netns` (threads and
// processes it starts stay there).
template <class Body>
auto in_netns(const std::string& netns, Body body) {
  return std::async(std::launch::async,
                    [netns, body]() mutable {
                      const int fd =
                          ::open(("/var/run/netns/" + netns).c_str(), O_RDONLY | O_CLOEXEC);
                      if (fd < 0 || ::setns(fd, CLONE_NEWNET) != 0)
                        throw std::runtime_error("cannot enter " + netns);
                      ::close(fd);
                      return body();
                    })
      .get();
}

TEST(MigrationLabTest, TheIncidentsDnsAnswerPausesTheMigrationBeforeTheProxiesRoll) {
  if (auto why = lab::netns_unavailable_reason()) {
    GTEST_SKIP() << "skipped: " << *why << " (needs the lab's netns mode; CI runs as root)";
  }
  LabDirs dirs(/*netns=*/true);
  // The example plan, with b4's name answering its public address at p2's
  // vantage point for its first 6 s, and a webhook.
  std::string text = read(kExamplePlan);
  const std::string add_b4 = R"("--backend", "b4"])";
  ASSERT_NE(text.find(add_b4), std::string::npos);
  text.replace(text.find(add_b4), add_b4.size(),
               R"("--backend", "b4", "--public-at", "p2", "--public-for", "6"])");
  text.replace(text.find('{'), 1, R"({"notifications": {"webhook": "${hook}"},)");
  const fs::path plan_file = dirs.root() / "incident-plan.json";
  std::ofstream(plan_file) << text;
  const std::string probe_netns = lab::status(dirs.lab()).probe_netns;

  struct Outcome {
    RunSummary summary;
    std::string log;
    std::vector<std::string> webhook_bodies;
    report::Report final_report;
  };
  const Outcome outcome = in_netns(probe_netns, [&] {
    Outcome out;
    testing::TestHttpServer webhook;
    Vars vars = lab_vars(dirs);
    vars["hook"] = webhook.url("/migration");
    EngineOptions options;
    options.state_dir = dirs.state();
    std::ostringstream log;
    options.log = &log;
    Engine engine(load_plan(plan_file.string(), vars), options);
    out.summary = engine.run();
    out.log = log.str();
    webhook.wait_for_requests(4, 5s);
    for (const auto& request : webhook.requests()) out.webhook_bodies.push_back(request.body);
    out.final_report = probe_everything(dirs.spec());
    return out;
  });
  ASSERT_EQ(outcome.summary.exit_code(), 0) << outcome.log;

  // Paused at roll-onto-b4 (step index 1) before its action, for the dns preflight.
  const auto records = read_journal(dirs.state());
  const Record* pause = nullptr;
  std::size_t resume_at = 0, roll_at = 0;
  for (std::size_t i = 0; i < records.size(); ++i) {
    const Record& r = records[i];
    if (r.type == Record::Type::state && r.phase == Phase::paused && !pause) {
      pause = &r;
    }
    if (pause && !resume_at && r.type == Record::Type::state && r.phase != Phase::paused)
      resume_at = i;
    if (r.type == Record::Type::attempt && r.step == 1) roll_at = i;
  }
  ASSERT_NE(pause, nullptr) << outcome.log;
  EXPECT_EQ(pause->step, 1);
  EXPECT_EQ(pause->reason, PauseReason::failed_check);
  EXPECT_EQ(pause->resume_to, Phase::preflight);
  EXPECT_NE(pause->detail.find("preflight failed at step 2 (roll-onto-b4): dns: "),
            std::string::npos)
      << pause->detail;
  EXPECT_NE(pause->detail.find("127.200.0.14"), std::string::npos) << pause->detail;
  EXPECT_NE(pause->diagnosis.find("b4"), std::string::npos) << pause->diagnosis;
  EXPECT_EQ(records[resume_at].detail, "checks passed 2 re-checks in a row");
  EXPECT_GT(roll_at, resume_at) << "the proxies rolled before b4's DNS was right";
  EXPECT_EQ(count_records(records, Record::Type::attempt, 1), 1);

  // Alerted with the diagnosis, then resumed and finished.
  std::vector<std::string> events;
  for (const auto& body : outcome.webhook_bodies) {
    const auto at = body.find("\"event\":\"");
    events.push_back(body.substr(at + 9, body.find('"', at + 9) - at - 9));
  }
  EXPECT_EQ(events, (std::vector<std::string>{"started", "paused", "resumed", "finished"}));
  ASSERT_GE(outcome.webhook_bodies.size(), 2u);
  EXPECT_NE(outcome.webhook_bodies[1].find("\"diagnosis\":"), std::string::npos);
  EXPECT_NE(outcome.webhook_bodies[1].find("127.200.0.14"), std::string::npos);

  EXPECT_EQ(backend_names(dirs.spec()), (std::vector<std::string>{"b4", "b5", "b6"}));
  EXPECT_EQ(outcome.final_report.status(), report::Status::ok) << describe(outcome.final_report);
}

TEST(MigrationLabTest, TwoClustersMigrateInParallelAndOnePausingLeavesTheOtherRunning) {
  LabDirs east, west;
  // Each cluster: a new backend, gated on a consistent canary, then the roll.
  auto cluster = [](const std::string& name, const std::string& lab) {
    return R"({"name": ")" + name + R"(", "spec": ")" + lab + R"(/cluster.json",
      "recheck_interval": 0.5, "resume_after_rounds": 2, "steps": [
      {"name": "start-b4", "preflight": [{"check": "canary", "min_consistency_ratio": 1.0}],
       "run": ["${ringwatch}", "lab", "add-backend", "--dir", ")" +
           lab + R"(", "--backend", "b4"]},
      {"name": "roll-onto-b4", "preflight": [{"check": "dns", "backends": ["b4"]}],
       "run": ["${ringwatch}", "lab", "roll-proxies", "--dir", ")" +
           lab + R"("],
       "safe_to_rerun": true,
       "verify": {"checks": [{"check": "canary", "min_consistency_ratio": 1.0, "backends": ["b4"]}]}}]})";
  };
  const fs::path plan_file = east.root() / "two-clusters.json";
  std::ofstream(plan_file) << R"({"schedule": {"max_parallel_clusters": 2}, "clusters": [)" +
                                  cluster("east", east.lab().string()) + "," +
                                  cluster("west", west.lab().string()) + "]}";
  lab::inject(east.lab(), {lab::FaultKind::kill, "", "b2", "", ""});

  EngineOptions options;
  options.state_dir = east.state();
  std::ostringstream log;
  options.log = &log;
  // When west finishes, east is still paused; then east's backend comes back.
  std::optional<ClusterProgress> east_when_west_finished;
  options.on_record = [&](const Record& record) {
    if (record.cluster != "west" || record.phase != Phase::finished) return;
    east_when_west_finished = *replay(read_journal(east.state())).find("east");
    lab::heal(east.lab());
  };
  Engine engine(load_plan(plan_file.string(), {{"ringwatch", RINGWATCH_BINARY}}), options);
  const RunSummary summary = engine.run();
  ASSERT_EQ(summary.exit_code(), 0) << log.str();

  ASSERT_TRUE(east_when_west_finished.has_value()) << log.str();
  EXPECT_EQ(east_when_west_finished->phase, Phase::paused) << log.str();
  EXPECT_EQ(east_when_west_finished->reason, PauseReason::failed_check);
  EXPECT_EQ(east_when_west_finished->step, 0);
  EXPECT_NE(east_when_west_finished->detail.find("b2"), std::string::npos)
      << east_when_west_finished->detail;
  EXPECT_EQ(backend_names(west.spec()), (std::vector<std::string>{"b1", "b2", "b3", "b4"}));
  EXPECT_EQ(backend_names(east.spec()), (std::vector<std::string>{"b1", "b2", "b3", "b4"}));
  EXPECT_EQ(probe_everything(east.spec()).status(), report::Status::ok);
}

TEST(MigrationLabTest, KillNineInTheMiddleOfAStepThenRunAgainFinishesWithoutRepeatingSteps) {
  LabDirs dirs;
  const int steps =
      static_cast<int>(load_plan(kExamplePlan.string(), lab_vars(dirs)).clusters[0].steps.size());
  constexpr int kRollOntoB5 = 6;
  {
    Spawned engine(run_args(dirs, kExamplePlan), dirs.root() / "run1.log");
    ASSERT_TRUE(wait_until(
        [&] {
          return fs::exists(dirs.state() / "journal.jsonl") &&
                 count_records(read_journal(dirs.state()), Record::Type::attempt, kRollOntoB5) == 1;
        },
        60s))
        << engine.output();
    std::this_thread::sleep_for(300ms);  // roll-proxies is under way
    engine.kill9();
  }
  {
    const JournalState state = replay(read_journal(dirs.state()));
    ASSERT_TRUE(state.find("lab")->steps[kRollOntoB5].in_flight);
    for (int i = 0; i < kRollOntoB5; ++i) {
      EXPECT_EQ(state.find("lab")->steps[static_cast<std::size_t>(i)].outcome,
                StepProgress::Outcome::done);
    }
  }
  Spawned again(run_args(dirs, kExamplePlan), dirs.root() / "run2.log");
  ASSERT_EQ(again.wait(120s), 0) << again.output();

  const auto records = read_journal(dirs.state());
  for (int i = 0; i < steps; ++i) {
    EXPECT_EQ(count_records(records, Record::Type::attempt, i), i == kRollOntoB5 ? 2 : 1)
        << "step " << i;
    EXPECT_EQ(count_records(records, Record::Type::state, i, Phase::done), 1) << "step " << i;
  }
  bool interrupted = false;
  for (const Record& r : records) {
    interrupted |=
        r.type == Record::Type::attempt_end && r.step == kRollOntoB5 && r.outcome == "interrupted";
  }
  EXPECT_TRUE(interrupted);
  EXPECT_NE(again.output().find("was interrupted; it is safe to re-run, so it runs again"),
            std::string::npos)
      << again.output();
  EXPECT_EQ(backend_names(dirs.spec()), (std::vector<std::string>{"b4", "b5", "b6"}));
  const report::Report report = probe_everything(dirs.spec());
  EXPECT_EQ(report.status(), report::Status::ok) << describe(report);
}

TEST(MigrationLabTest, ABlackoutHoldsTheClusterAndAbortFromAnotherShellEndsItWhereItIs) {
  LabDirs dirs;
  // The example plan with a blackout over this UTC hour and the next.
  const std::time_t now = std::time(nullptr);
  std::tm utc{};
  ::gmtime_r(&now, &utc);
  std::string text = read(kExamplePlan);
  const std::string blackouts = R"("blackouts": [])";
  text.replace(
      text.find(blackouts), blackouts.size(),
      R"("blackouts": [{"hours": {"from": )" + std::to_string(utc.tm_hour) + R"(, "to": )" +
          std::to_string(utc.tm_hour + 2 > 24 ? utc.tm_hour - 22 : utc.tm_hour + 2) + "}}]");
  const fs::path plan_file = dirs.root() / "blackout-plan.json";
  std::ofstream(plan_file) << text;

  Spawned engine(run_args(dirs, plan_file), dirs.root() / "run.log");
  const std::string status = "migrate status --state " + dirs.state().string();
  ASSERT_TRUE(wait_until(
      [&] {
        return ringwatch(status + " --format json").second.find("\"reason\": \"blackout\"") !=
               std::string::npos;
      },
      30s))
      << engine.output();
  auto [code, text_status] = ringwatch(status);
  EXPECT_EQ(code, 1) << text_status;  // paused
  EXPECT_NE(
      text_status.find("cluster lab: paused (blackout, resumes to pending) at step 1/15 start-b4"),
      std::string::npos)
      << text_status;

  // One engine per state directory.
  auto [second_code, second_output] =
      ringwatch("migrate run --plan " + plan_file.string() + " --var lab=" + dirs.lab().string() +
                " --state " + dirs.state().string());
  EXPECT_EQ(second_code, 3);
  EXPECT_NE(second_output.find("is in use by pid"), std::string::npos) << second_output;

  auto [abort_code, abort_output] = ringwatch("migrate abort --state " + dirs.state().string());
  EXPECT_EQ(abort_code, 0) << abort_output;
  EXPECT_NE(abort_output.find("abort accepted by the running engine"), std::string::npos)
      << abort_output;
  EXPECT_EQ(engine.wait(30s), 2) << engine.output();

  const JournalState state = replay(read_journal(dirs.state()));
  EXPECT_EQ(state.find("lab")->phase, Phase::aborted);
  EXPECT_EQ(state.find("lab")->detail, "aborted by operator at step 1 (start-b4) in paused");
  EXPECT_EQ(backend_names(dirs.spec()),
            (std::vector<std::string>{"b1", "b2", "b3"}));  // nothing ran
  EXPECT_EQ(ringwatch(status).first, 2);
}

}  // namespace
}  // namespace ringwatch::migration
