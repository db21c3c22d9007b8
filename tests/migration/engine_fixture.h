#pragma once
// A fixture for engine tests: a temporary directory with a state directory,
// a spec whose nodes listen nowhere (${dead}; every probe of it fails, fast),
// plans written there, and the engine run on a thread that is stopped if the
// test ends early, so a failed assertion never leaves it running.
//
// options() leaves the engine its real checks; ScriptedChecks stands in for
// them where a test says what each round answers (engine_test).

#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "migration/checks.h"
#include "migration/engine.h"

namespace ringwatch::testing {

inline constexpr char kDeadSpec[] = R"({
  "name": "dead",
  "proxies": [{"name": "p1", "kind": "twemproxy", "client": "127.10.250.1:1"}],
  "backends": [{"name": "b1", "address": "127.10.250.2", "port": 1, "dns_name": "b1.test",
                "expected_cidr": "127.10.0.0/16"}],
  "timeouts": {"connect_ms": 100, "io_ms": 200}
})";

// Check rounds as a test scripts them, for EngineOptions::make_checks: each
// round of a cluster's checks answers the next result scripted for that
// cluster, and the last one again once the script runs out. Records the
// probes every round asked for. Thread-safe: the test scripts and reads while
// the cluster threads run rounds.
class ScriptedChecks {
 public:
  // Called at the start of every round, on the cluster's thread; set it
  // before the engine runs.
  std::function<void(const std::string& cluster)> on_round;

  static migration::CheckRound pass() {
    migration::CheckRound round;
    round.passed = true;
    return round;
  }
  static migration::CheckRound fail(std::string failures, std::string diagnosis = {}) {
    migration::CheckRound round;
    round.failures = std::move(failures);
    round.diagnosis = std::move(diagnosis);
    return round;
  }

  // `cluster`'s next rounds answer `results`, in order (replacing what was
  // left of its script).
  void script(const std::string& cluster, std::vector<migration::CheckRound> results) {
    std::lock_guard guard(mutex_);
    scripts_[cluster].assign(results.begin(), results.end());
  }

  // The rounds `cluster` ran so far, each as the probes it asked for
  // ("canary", "dns,canary").
  std::vector<std::string> rounds(const std::string& cluster) const {
    std::lock_guard guard(mutex_);
    const auto found = asked_.find(cluster);
    return found == asked_.end() ? std::vector<std::string>{} : found->second;
  }
  std::size_t round_count(const std::string& cluster) const { return rounds(cluster).size(); }

  std::function<std::unique_ptr<migration::ClusterChecks>(const migration::ClusterPlan&)>
  factory() {
    return [this](const migration::ClusterPlan& cluster) {
      return std::make_unique<Cluster>(*this, cluster.name);
    };
  }

 private:
  class Cluster : public migration::ClusterChecks {
   public:
    Cluster(ScriptedChecks& script, std::string name) : script_(script), name_(std::move(name)) {}
    migration::CheckRound run(const std::vector<migration::CheckSpec>& checks) override {
      if (script_.on_round) script_.on_round(name_);
      return script_.next(name_, checks);
    }

   private:
    ScriptedChecks& script_;
    std::string name_;
  };

  migration::CheckRound next(const std::string& cluster,
                             const std::vector<migration::CheckSpec>& checks) {
    std::lock_guard guard(mutex_);
    std::string probes;
    for (const auto& check : checks) probes += (probes.empty() ? "" : ",") + check.probe;
    asked_[cluster].push_back(probes);
    auto& script = scripts_[cluster];
    if (script.empty()) return fail("nothing scripted for cluster " + cluster);
    migration::CheckRound result = script.front();
    if (script.size() > 1) script.pop_front();
    return result;
  }

  mutable std::mutex mutex_;
  std::map<std::string, std::deque<migration::CheckRound>> scripts_;
  std::map<std::string, std::vector<std::string>> asked_;
};

class EngineFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "ringwatch-engine-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    root_ = pattern;
    state_ = root_ / "state";
    std::ofstream(root_ / "dead.json") << kDeadSpec;
  }
  void TearDown() override { std::filesystem::remove_all(root_); }

  // A plan from JSON text with ${root} and ${dead} defined.
  migration::Plan plan(const std::string& text, migration::Vars vars = {}) {
    vars["root"] = root_.string();
    vars["dead"] = (root_ / "dead.json").string();
    const std::filesystem::path file = root_ / "plan.json";
    std::ofstream(file) << text;
    return migration::load_plan(file.string(), vars);
  }

  migration::EngineOptions options() {
    migration::EngineOptions o;
    o.state_dir = state_;
    o.log = &log_;
    o.command_poll = std::chrono::milliseconds(50);
    return o;
  }

  std::vector<migration::Record> journal() const { return migration::read_journal(state_); }
  migration::JournalState state() const { return migration::replay(journal()); }

  struct Running {
    migration::Engine& engine;
    std::future<migration::RunSummary> result;
    migration::RunSummary get() { return result.get(); }
    ~Running() {
      engine.stop();
      if (result.valid()) result.wait();
    }
  };
  std::unique_ptr<Running> start(migration::Engine& engine) {
    return std::unique_ptr<Running>(
        new Running{engine, std::async(std::launch::async, [&engine] { return engine.run(); })});
  }

  // Polls the journal until `condition` holds; false after `timeout`.
  bool wait_for(const std::function<bool(const migration::JournalState&)>& condition,
                std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
    const auto until = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < until) {
      if (condition(state())) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }

  static bool paused(const migration::JournalState& s, const std::string& cluster,
                     migration::PauseReason reason) {
    const migration::ClusterProgress* c = s.find(cluster);
    return c && c->phase == migration::Phase::paused && c->reason == reason;
  }

  static migration::Command command(const std::string& name, const std::string& cluster = {}) {
    migration::Command c;
    c.id = migration::make_command_id();
    c.command = name;
    c.cluster = cluster;
    return c;
  }

  std::filesystem::path root_, state_;
  std::ostringstream log_;
};

}  // namespace ringwatch::testing
