// The engine's Alertmanager notifications against a real Alertmanager
// (Debian prometheus-alertmanager) on loopback: a cluster paused by a failed
// check is one firing RingwatchMigrationPaused alert, read back through
// Alertmanager's API, and aborting the cluster resolves it.
//
// As measured in tests/alerts/alertmanager_test.cpp: once an alert is sent
// with endsAt = the resolve time (in the past by the time it is read),
// Alertmanager's GET /api/v2/alerts no longer lists it at all, whatever the
// active/silenced/inhibited/unprocessed filters say.

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "alerts/http_sink.h"
#include "lib/util/time.h"
#include "migration/engine.h"
#include "tests/migration/engine_fixture.h"
#include "tests/support/alertmanager_process.h"
#include "tests/support/eventually.h"

namespace ringwatch::migration {
namespace {

using testing::eventually;

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// The alerts about `cluster`'s migration pause.
std::vector<testing::AlertmanagerAlert> paused_alerts(
    const testing::AlertmanagerProcess& alertmanager, const std::string& cluster,
    const std::string& query = "") {
  std::vector<testing::AlertmanagerAlert> out;
  for (auto& alert : alertmanager.alerts(query)) {
    if (alert.labels["alertname"] == "RingwatchMigrationPaused" &&
        alert.labels["cluster"] == cluster) {
      out.push_back(std::move(alert));
    }
  }
  return out;
}

class MigrationAlertmanagerTest : public testing::EngineFixture {};

TEST_F(MigrationAlertmanagerTest, APausedClusterIsAFiringAlertUntilItIsAborted) {
  // tools/install-deps.sh installs Alertmanager: missing is a failure, not a skip.
  ASSERT_TRUE(fs::exists(testing::AlertmanagerProcess::kBinary))
      << "no " << testing::AlertmanagerProcess::kBinary
      << ": it ships in the Debian package `prometheus-alertmanager`; run tools/install-deps.sh";
  testing::AlertmanagerProcess alertmanager;
  const std::string text = R"({"notifications": {"alertmanager": "${am}"},
    "clusters": [{"name": "c1", "spec": "${dead}", "recheck_interval": 0.1,
      "steps": [{"name": "gated", "preflight": [{"check": "canary"}],
                 "run": ["sh", "-c", "echo ran >> ${root}/ran"]}]}]})";
  Engine engine(plan(text, {{"am", alertmanager.url()}}), options());
  auto result = start(engine);

  // The journal says paused(failed_check) first: it is written before the alert is sent.
  ASSERT_TRUE(wait_for([](const auto& s) { return paused(s, "c1", PauseReason::failed_check); }))
      << log_.str();
  const ClusterProgress paused = *state().find("c1");
  EXPECT_NE(paused.detail.find("preflight failed at step 1 (gated): canary: "), std::string::npos)
      << paused.detail;

  std::vector<testing::AlertmanagerAlert> seen;
  ASSERT_TRUE(eventually([&] {
    seen = paused_alerts(alertmanager, "c1");
    return seen.size() == 1 && seen[0].state == "active";
  })) << "no active alert; engine log:\n"
      << log_.str() << "\nalertmanager:\n"
      << alertmanager.output();
  EXPECT_EQ(seen[0].labels,
            (std::map<std::string, std::string>{{"alertname", "RingwatchMigrationPaused"},
                                                {"cluster", "c1"},
                                                {"reason", "failed_check"},
                                                {"severity", "critical"}}));
  EXPECT_EQ(seen[0].annotations["step"], "gated");
  EXPECT_EQ(seen[0].annotations["summary"], paused.detail);
  if (!paused.diagnosis.empty()) {
    EXPECT_EQ(seen[0].annotations["diagnosis"], paused.diagnosis);
  }
  // Firing for a while yet (4 resend intervals): endsAt is well in the future.
  EXPECT_GT(seen[0].ends_at, util::format_rfc3339_ms(std::chrono::system_clock::now() + 2min))
      << seen[0].ends_at;

  // Re-checks keep failing every 0.1 s: still one alert, still the same pause.
  std::this_thread::sleep_for(600ms);
  seen = paused_alerts(alertmanager, "c1");
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].state, "active");
  EXPECT_EQ(state().find("c1")->since, paused.since);

  Command abort;
  abort.id = make_command_id();
  abort.command = "abort";
  abort.cluster = "c1";
  EXPECT_NE(submit_command(state_, abort).find("abort accepted by the running engine"),
            std::string::npos);
  const RunSummary summary = result->get();
  EXPECT_EQ(summary.exit_code(), 2) << log_.str();
  EXPECT_EQ(summary.clusters.at("c1"), Phase::aborted);
  EXPECT_EQ(state().find("c1")->phase, Phase::aborted);
  EXPECT_FALSE(fs::exists(root_ / "ran"));  // the action never ran

  // Resolved: Alertmanager lists it no more, not even among the inactive ones.
  EXPECT_TRUE(eventually([&] { return paused_alerts(alertmanager, "c1").empty(); }))
      << "the alert is still listed; engine log:\n"
      << log_.str();
  EXPECT_TRUE(paused_alerts(alertmanager, "c1",
                            "?active=true&silenced=true&inhibited=true&unprocessed=true")
                  .empty());
  // Every delivery went through on the first try.
  EXPECT_EQ(log_.str().find("notify alertmanager"), std::string::npos) << log_.str();
}

}  // namespace
}  // namespace ringwatch::migration
