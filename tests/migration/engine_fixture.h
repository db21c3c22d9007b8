#pragma once
// A fixture for engine tests: a temporary directory with a state directory,
// a spec whose nodes listen nowhere (${dead}; every probe of it fails, fast),
// plans written there, and the engine run on a thread that is stopped if the
// test ends early, so a failed assertion never leaves it running.

#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <memory>
#include <sstream>
#include <string>
#include <thread>

#include "migration/engine.h"

namespace ringwatch::testing {

inline constexpr char kDeadSpec[] = R"({
  "name": "dead",
  "proxies": [{"name": "p1", "kind": "twemproxy", "client": "127.10.250.1:1"}],
  "backends": [{"name": "b1", "address": "127.10.250.2", "port": 1, "dns_name": "b1.test",
                "expected_cidr": "127.10.0.0/16"}],
  "timeouts": {"connect_ms": 100, "io_ms": 200}
})";

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
