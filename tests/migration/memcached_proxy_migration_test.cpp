// The example migration (tools/examples/lab-migration.json, unchanged) on a
// lab whose proxies are memcached's built-in proxy: every step gated, none
// paused, and `roll-proxies` reloading the proxies' Lua configs; and the
// incident on it (netns lab): b4's name answers its public address at p2's
// vantage point while the proxies take b4, the verify checks catch "p2 cannot
// reach b4", the cluster pauses with that diagnosis, and resumes and finishes
// once p2's proxy reaches b4 (it resolves the name again on reconnect).

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "lib/mc/client.h"
#include "migration/engine.h"
#include "migration/journal.h"
#include "probes/registry.h"
#include "tests/support/command.h"
#include "tests/support/report_helpers.h"
#include "tests/support/scoped_lab.h"
#include "tools/lab/netns.h"

namespace ringwatch::migration {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using testing::ScopedLab;

const fs::path kExamplePlan = fs::path(RINGWATCH_SOURCE_DIR) / "tools/examples/lab-migration.json";

Vars vars_for(const ScopedLab& lab) {
  return {{"lab", lab.dir().string()}, {"ringwatch", RINGWATCH_BINARY}};
}

std::vector<std::string> backend_names(const spec::ClusterSpec& spec) {
  std::vector<std::string> names;
  for (const auto& backend : spec.backends) names.push_back(backend.name);
  return names;
}

// How many of `keys` a multi-get through p1 still finds.
int cached(const spec::ClusterSpec& spec, const std::vector<std::string>& keys) {
  mc::Client client(spec.proxies.at(0).client, {500ms, 3000ms});
  auto values = client.get_many(keys);
  return values ? static_cast<int>(values.value().size()) : -1;
}

TEST(MemcachedProxyMigrationTest, TheExamplePlanMigratesAMemcachedProxyLabWithoutAPause) {
  ScopedLab lab(3, 3, "lab", lab::LabProxyKind::memcached);
  const Plan plan = load_plan(kExamplePlan.string(), vars_for(lab));
  const auto& steps = plan.clusters.at(0).steps;

  std::vector<std::string> keys;
  std::vector<mc::Item> items;
  for (int i = 0; i < 3000; ++i) {
    keys.push_back(std::to_string(i) + ":cached-before-migration");
    items.push_back({keys.back(), "value"});
  }
  mc::Client writer(lab.spec().proxies.at(0).client, {500ms, 3000ms});
  ASSERT_TRUE(writer.set_many(items, 3600s).ok());
  ASSERT_EQ(cached(lab.spec(), keys), 3000);

  // After each step: how many keys it lost, then every key cached again, so
  // that each step is measured against a full cache.
  std::vector<std::pair<std::string, int>> lost;
  EngineOptions options;
  options.state_dir = lab.sibling("state");
  std::ostringstream log;
  options.log = &log;
  options.on_record = [&](const Record& record) {
    if (record.type != Record::Type::state || record.phase != Phase::done) return;
    lost.emplace_back(steps[static_cast<std::size_t>(record.step)].name,
                      3000 - cached(lab.spec(), keys));
    mc::Client refill(lab.spec().proxies.at(0).client, {500ms, 3000ms});
    EXPECT_TRUE(refill.set_many(items, 3600s).ok());
  };
  Engine engine(plan, options);
  ASSERT_EQ(engine.run().exit_code(), 0) << log.str();

  const auto records = read_journal(options.state_dir);
  for (const Record& r : records) {
    EXPECT_NE(r.phase, Phase::paused) << r.detail;
    if (r.type == Record::Type::attempt) {
      EXPECT_EQ(r.attempt, 1) << steps[static_cast<std::size_t>(r.step)].name;
    }
  }
  EXPECT_EQ(backend_names(lab.spec()), (std::vector<std::string>{"b4", "b5", "b6"}));
  probes::ProbeSet probes(probes::known_checks());
  const report::Report report = probes.run_round(lab.spec());
  EXPECT_EQ(report.status(), report::Status::ok) << testing::describe(report);

  // Jump hash moves only the new backend's share when one is appended; a
  // backend leaving the front of the list shifts the ones after it.
  std::string losses;
  for (const auto& [step, count] : lost) losses += step + ": " + std::to_string(count) + "\n";
  std::cout << "keys lost per step (of 3000):\n" << losses;
  ASSERT_EQ(lost.size(), steps.size());
  for (const auto& [step, count] : lost) {
    if (step.starts_with("roll-onto-")) {
      EXPECT_LE(count, 3000 / 3) << step << "\n" << losses;
    }
  }
}

// `ringwatch <args>` in network namespace `netns`: exit status and output.
std::pair<int, std::string> ringwatch_in(const std::string& netns, const std::string& args) {
  return testing::run_command("ip netns exec " + netns + " " + RINGWATCH_BINARY + " " + args);
}

TEST(MemcachedProxyMigrationTest, TheIncidentPausesTheRollWithTheProxyAndTheBackendNamed) {
  if (auto why = lab::netns_unavailable_reason()) {
    GTEST_SKIP() << "skipped: " << *why << " (needs the lab's netns mode; CI runs as root)";
  }
  ScopedLab lab(3, 3, "lab", lab::LabProxyKind::memcached, /*netns=*/true);
  // The example plan's first two steps, but b4's name answers its public
  // address at p2 for its first 8 s and the roll has no DNS preflight: p2's
  // proxy takes b4 at that address, and verify must catch it.
  const std::string plan = R"({"clusters": [{"name": "lab", "spec": "${lab}/cluster.json",
    "resume": "auto", "resume_after_rounds": 2, "recheck_interval": 1, "steps": [
    {"name": "start-b4", "timeout": 60,
     "run": ["${ringwatch}", "lab", "add-backend", "--dir", "${lab}", "--backend", "b4",
             "--public-at", "p2", "--public-for", "8"]},
    {"name": "roll-onto-b4", "timeout": 120, "safe_to_rerun": true,
     "run": ["${ringwatch}", "lab", "roll-proxies", "--dir", "${lab}", "--pause", "0.5"],
     "verify": {"checks": [
         {"check": "canary", "min_consistency_ratio": 1.0, "backends": ["b4"]},
         {"check": "connections", "backends": ["b4"]}, {"check": "dns"}],
       "deadline": 2, "interval": 1}}]}]})";
  const fs::path plan_file = lab.sibling("incident-plan.json");
  std::ofstream(plan_file) << plan;
  const std::string probe_netns = lab::status(lab.dir()).probe_netns;

  const auto [code, output] = ringwatch_in(
      probe_netns, "migrate run --plan " + plan_file.string() + " --var lab=" + lab.dir().string() +
                       " --var ringwatch=" + RINGWATCH_BINARY + " --state " +
                       lab.sibling("state").string());
  ASSERT_EQ(code, 0) << output;

  const auto records = read_journal(lab.sibling("state"));
  const Record* pause = nullptr;
  for (const Record& r : records)
    if (!pause && r.type == Record::Type::state && r.phase == Phase::paused) pause = &r;
  ASSERT_NE(pause, nullptr) << output;
  EXPECT_EQ(pause->step, 1);
  EXPECT_EQ(pause->reason, PauseReason::failed_check);
  EXPECT_EQ(pause->resume_to, Phase::verifying);
  EXPECT_NE(pause->detail.find("verify failed at step 2 (roll-onto-b4): canary: "),
            std::string::npos)
      << pause->detail;
  EXPECT_NE(pause->diagnosis.find("p2 cannot reach b4"), std::string::npos) << pause->diagnosis;
  EXPECT_NE(pause->diagnosis.find("127.200.0.14"), std::string::npos) << pause->diagnosis;
  EXPECT_NE(output.find("finished"), std::string::npos) << output;

  const auto [probe_code, probe_output] =
      ringwatch_in(probe_netns, "probe --cluster " + lab::spec_path(lab.dir()).string());
  EXPECT_EQ(probe_code, 0) << probe_output;
}

}  // namespace
}  // namespace ringwatch::migration
