// Issue 16: a migration people can steer and watch. The engine with scripted
// check rounds (engine_fixture.h), and `ringwatch migrate status` read as an
// operator reads it:
//   - point 7: one step numbering in the text and the JSON; an operator's
//     pause logged without a dangling colon; a plan-level preflight before a
//     cluster's first step; every failing verify round logged while it waits.
//   - point 5: observe-mode checks are evaluated and journaled on every step,
//     never pause, and `status` counts how often they would have paused.
//   - point 1: an approval gate waits (notified like a pause), survives a
//     restart, is approved from another shell and refused at the wrong step.
//   - point 6: a dry run says what would run and what would block (a
//     blackout, a failing preflight), runs no action and writes nothing.

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "migration/dry_run.h"
#include "migration/engine.h"
#include "tests/migration/engine_fixture.h"
#include "tests/support/command.h"
#include "tests/support/http_test_server.h"

namespace ringwatch::migration {
namespace {

namespace fs = std::filesystem;
using Checks = testing::ScriptedChecks;

class EngineSteerTest : public testing::EngineFixture {
 protected:
  EngineOptions options() {
    EngineOptions o = EngineFixture::options();
    o.make_checks = checks_.factory();
    return o;
  }

  std::pair<int, std::string> ringwatch(const std::string& args) const {
    return testing::run_command(std::string(RINGWATCH_BINARY) + " " + args);
  }

  std::string log() const { return log_.str(); }

  testing::ScriptedChecks checks_;
};

std::string read_file(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// Two steps behind a plan-level preflight; the first step has its own.
constexpr char kGatedPlan[] = R"({
  "preflight": [{"check": "connections"}],
  "clusters": [{"name": "c1", "spec": "${dead}", "recheck_interval": 0.05,
    "resume_after_rounds": 1,
    "steps": [
      {"name": "one", "preflight": [{"check": "dns"}], "run": ["sh", "-c", "echo one >> ${root}/ran"]},
      {"name": "two", "preflight": [{"check": "canary"}], "run": ["sh", "-c", "echo two >> ${root}/ran"]}
    ]}]})";

TEST_F(EngineSteerTest, APlanLevelPreflightRunsBeforeTheFirstStepOnlyAndGatesIt) {
  checks_.script("c1",
                 {Checks::fail("connections: CRITICAL: b1 refused", "b1 is down"), Checks::pass()});
  Engine engine(plan(kGatedPlan), options());
  EXPECT_EQ(engine.run().exit_code(), 0) << log();
  // The first round (and its re-check) asks the plan's check before the
  // step's own; the second step has only its own.
  EXPECT_EQ(checks_.rounds("c1"), (std::vector<std::string>{"connections,dns", "connections,dns",
                                                            "connections,dns", "canary"}));
  const auto records = journal();
  const auto pause = std::find_if(records.begin(), records.end(), [](const Record& r) {
    return r.type == Record::Type::state && r.phase == Phase::paused;
  });
  ASSERT_NE(pause, records.end());
  EXPECT_EQ(pause->step, 0);
  EXPECT_EQ(pause->detail, "preflight failed at step 1 (one): connections: CRITICAL: b1 refused");
  EXPECT_EQ(read_file(root_ / "ran"), "one\ntwo\n");
}

TEST_F(EngineSteerTest, APlanLevelPreflightThatFailsKeepsTheFirstActionFromRunning) {
  checks_.script("c1", {Checks::fail("connections: CRITICAL: b1 refused")});
  Engine engine(plan(kGatedPlan), options());
  auto result = start(engine);
  ASSERT_TRUE(wait_for([](const auto& s) { return paused(s, "c1", PauseReason::failed_check); }));
  ASSERT_TRUE(wait_for([&](const auto&) { return checks_.round_count("c1") >= 3; }));
  submit_command(state_, command("abort", "c1"));
  EXPECT_EQ(result->get().exit_code(), 2);
  EXPECT_FALSE(fs::exists(root_ / "ran"));
}

TEST_F(EngineSteerTest, EveryFailingVerifyRoundIsLoggedWhileItWaits) {
  const std::string text = R"({"clusters": [{"name": "c1", "spec": "${dead}",
      "steps": [{"name": "move", "run": ["true"],
                 "verify": {"checks": [{"check": "canary"}], "interval": 0.05, "deadline": 60}}]}]})";
  checks_.script("c1", {Checks::fail("canary: consistency 0.5 < 1"),
                        Checks::fail("canary: consistency 0.9 < 1"), Checks::pass()});
  Engine engine(plan(text), options());
  EXPECT_EQ(engine.run().exit_code(), 0) << log();
  EXPECT_TRUE(contains(log(), "c1: verify of step 1 (move) not passing yet (")) << log();
  EXPECT_TRUE(contains(log(), " ms to its deadline): canary: consistency 0.5 < 1\n")) << log();
  EXPECT_TRUE(contains(log(), " ms to its deadline): canary: consistency 0.9 < 1\n")) << log();
}

TEST_F(EngineSteerTest, AVerifyNotPassingYetIsJournaledWhenItsFailuresChange) {
  const std::string text = R"({"clusters": [{"name": "c1", "spec": "${dead}",
      "steps": [{"name": "move", "run": ["true"],
                 "verify": {"checks": [{"check": "canary"}], "interval": 0.05, "deadline": 60}}]}]})";
  checks_.script("c1", {Checks::fail("canary: consistency 0.5 < 1", "b2 unreachable"),
                        Checks::fail("canary: consistency 0.5 < 1", "b2 unreachable"),
                        Checks::fail("canary: consistency 0.9 < 1"), Checks::pass()});
  Engine engine(plan(text), options());
  EXPECT_EQ(engine.run().exit_code(), 0) << log();
  std::vector<Record> failing;
  for (const Record& record : journal()) {
    if (record.type == Record::Type::verify_failing) failing.push_back(record);
  }
  // Three failing rounds, two distinct failures: two records, in order.
  ASSERT_EQ(failing.size(), 2u) << log();
  EXPECT_EQ(failing[0].step, 0);
  EXPECT_EQ(failing[0].detail, "canary: consistency 0.5 < 1");
  EXPECT_EQ(failing[0].diagnosis, "b2 unreachable");
  EXPECT_EQ(failing[1].detail, "canary: consistency 0.9 < 1");
  // Replay ignores them: the cluster finished as without them.
  EXPECT_EQ(state().find("c1")->phase, Phase::finished);
}

TEST_F(EngineSteerTest, AnOperatorPauseWithoutADetailIsLoggedWithoutAColon) {
  checks_.script("c1", {Checks::fail("connections: CRITICAL: b1 refused")});
  Engine engine(plan(kGatedPlan), options());
  auto result = start(engine);
  ASSERT_TRUE(wait_for([](const auto& s) { return paused(s, "c1", PauseReason::failed_check); }));
  submit_command(state_, command("pause", "c1"));
  ASSERT_TRUE(
      wait_for([](const auto& s) { return paused(s, "c1", PauseReason::operator_request); }));
  engine.stop();
  result->get();
  EXPECT_TRUE(contains(log(), " operator pause c1\n")) << log();
  EXPECT_FALSE(contains(log(), "operator pause c1:")) << log();
}

// `status` says "step 2/2" in the text and "step": 2 in the JSON; a
// finished cluster is at the end in both.
TEST_F(EngineSteerTest, StatusTextAndJsonCountStepsFromOneAlike) {
  checks_.script("c1", {Checks::pass(), Checks::fail("canary: CRITICAL: p1 refused")});
  {
    Engine engine(plan(kGatedPlan), options());
    auto result = start(engine);
    ASSERT_TRUE(wait_for([](const auto& s) { return paused(s, "c1", PauseReason::failed_check); }));
    engine.stop();
    result->get();
  }
  const auto [text_code, text] = ringwatch("migrate status --state " + state_.string());
  EXPECT_EQ(text_code, 1) << text;
  EXPECT_TRUE(contains(text, "at step 2/2 two since")) << text;
  EXPECT_TRUE(contains(text, "  > 2. two: open")) << text;
  const auto [json_code, json] =
      ringwatch("migrate status --format json --state " + state_.string());
  rapidjson::Document status;
  ASSERT_FALSE(status.Parse(json.c_str()).HasParseError()) << json;
  const auto& cluster = status["clusters"][0];
  EXPECT_EQ(cluster["step"].GetInt(), 2);
  EXPECT_EQ(cluster["steps_total"].GetInt(), 2);
  EXPECT_STREQ(cluster["step_name"].GetString(), "two");

  checks_.script("c1", {Checks::pass()});
  Engine engine(plan(kGatedPlan), options());
  EXPECT_EQ(engine.run().exit_code(), 0) << log();
  const auto [done_code, done] =
      ringwatch("migrate status --format json --state " + state_.string());
  ASSERT_FALSE(status.Parse(done.c_str()).HasParseError()) << done;
  EXPECT_TRUE(status["clusters"][0]["step"].IsNull()) << done;
  EXPECT_TRUE(contains(ringwatch("migrate status --state " + state_.string()).second,
                       "at the end (2 steps)"));
}

// Two steps, each with an observe-mode check beside its gate.
constexpr char kObservedPlan[] = R"({
  "clusters": [{"name": "c1", "spec": "${dead}",
    "steps": [
      {"name": "one", "preflight": [{"check": "dns"}, {"check": "canary", "mode": "observe",
                                     "min_consistency_ratio": 0.99}],
       "run": ["true"]},
      {"name": "two", "run": ["true"],
       "verify": {"checks": [{"check": "canary", "mode": "observe", "min_consistency_ratio": 0.99}]}}
    ]}]})";

TEST_F(EngineSteerTest, ObserveChecksAreJournaledOnEveryStepAndNeverPause) {
  // Rounds: observe (fails), dns gate (passes), observe at step two (fails).
  checks_.script("c1", {Checks::fail("canary: consistency 0.9 < 0.99", "b4 is cold"),
                        Checks::pass(), Checks::fail("canary: consistency 0.95 < 0.99")});
  Engine engine(plan(kObservedPlan), options());
  EXPECT_EQ(engine.run().exit_code(), 0) << log();
  EXPECT_EQ(checks_.rounds("c1"), (std::vector<std::string>{"canary", "dns", "canary"}));
  std::vector<Record> observed;
  for (const Record& r : journal()) {
    if (r.type == Record::Type::observe) observed.push_back(r);
    EXPECT_FALSE(r.type == Record::Type::state && r.phase == Phase::paused) << r.detail;
  }
  ASSERT_EQ(observed.size(), 2u);
  EXPECT_EQ(observed[0].step, 0);
  EXPECT_EQ(observed[0].phase, Phase::preflight);
  EXPECT_EQ(observed[0].check, "canary (consistency >= 0.99; observe only)");
  EXPECT_EQ(observed[0].outcome, "would_pause");
  EXPECT_EQ(observed[0].detail, "canary: consistency 0.9 < 0.99");
  EXPECT_EQ(observed[0].diagnosis, "b4 is cold");
  EXPECT_EQ(observed[0].report.front(), '{');  // the round's report, as JSON
  EXPECT_EQ(observed[1].step, 1);
  EXPECT_EQ(observed[1].phase, Phase::verifying);
  EXPECT_TRUE(contains(log(),
                       "c1: observe canary (consistency >= 0.99; observe only) at step 1 "
                       "(one) (preflight): would pause: canary: consistency 0.9 < 0.99\n"))
      << log();

  const ClusterProgress c1 = *state().find("c1");
  ASSERT_EQ(c1.observed.size(), 1u);
  const ObservedCheck& canary = c1.observed.begin()->second;
  EXPECT_EQ(canary.rounds, 2);
  EXPECT_EQ(canary.would_pause, 2);
  EXPECT_EQ(canary.last_failure, "canary: consistency 0.95 < 0.99");

  const auto [code, text] = ringwatch("migrate status --state " + state_.string());
  EXPECT_EQ(code, 0) << text;
  EXPECT_TRUE(contains(text,
                       "  observe canary (consistency >= 0.99; observe only): would have "
                       "paused 2 of 2 times (last: canary: consistency 0.95 < 0.99)\n"))
      << text;
  const auto [json_code, json] =
      ringwatch("migrate status --format json --state " + state_.string());
  rapidjson::Document status;
  ASSERT_FALSE(status.Parse(json.c_str()).HasParseError()) << json;
  const auto& entry = status["clusters"][0]["observed"][0];
  EXPECT_STREQ(entry["check"].GetString(), "canary (consistency >= 0.99; observe only)");
  EXPECT_EQ(entry["evaluations"].GetInt(), 2);
  EXPECT_EQ(entry["would_have_paused"].GetInt(), 2);
}

TEST_F(EngineSteerTest, PassingObserveChecksAreCountedWithoutAFailure) {
  checks_.script("c1", {Checks::pass()});
  Engine engine(plan(kObservedPlan), options());
  EXPECT_EQ(engine.run().exit_code(), 0) << log();
  // state() returns a copy: keep it alive while the reference into it is read.
  const auto progress = state();
  const ObservedCheck& canary = progress.find("c1")->observed.begin()->second;
  EXPECT_EQ(canary.rounds, 2);
  EXPECT_EQ(canary.would_pause, 0);
  EXPECT_EQ(canary.last_failure, "");
}

TEST_F(EngineSteerTest, ADryRunNamesTheBlackoutAndTheFailingPreflightAndRunsNothing) {
  const std::string text = R"({"schedule": {"blackouts": [{"dates": ["2026-12-24"]}]},
    "preflight": [{"check": "connections"}],
    "clusters": [{"name": "c1", "spec": "${dead}",
      "steps": [{"name": "one", "run": ["sh", "-c", "echo one >> ${root}/ran"],
                 "verify": {"checks": [{"check": "canary"}]}}]}]})";
  checks_.script("c1", {Checks::fail("connections: CRITICAL: b1 refused")});
  DryRunOptions dry;
  dry.state_dir = state_;
  dry.make_checks = checks_.factory();
  dry.now = std::chrono::sys_days{std::chrono::year(2026) / 12 / 24} + std::chrono::hours(3);
  const DryRunResult result = dry_run(plan(text), dry);
  EXPECT_EQ(result.would_block, 2) << result.text;
  EXPECT_EQ(result.would_run, 1);
  EXPECT_TRUE(contains(result.text,
                       "  WOULD BLOCK: blackout window 2026-12-24 covers now; no "
                       "step would start\n"))
      << result.text;
  EXPECT_TRUE(contains(result.text, "  1. one: would run `sh -c echo one >> ")) << result.text;
  EXPECT_TRUE(contains(result.text,
                       "     preflight connections: WOULD BLOCK (the cluster would "
                       "pause): connections: CRITICAL: b1 refused\n"))
      << result.text;
  EXPECT_TRUE(contains(result.text, "     verify after the action (not run now): canary\n"))
      << result.text;
  EXPECT_EQ(checks_.rounds("c1"), std::vector<std::string>{"connections"});  // not the verify
  EXPECT_FALSE(fs::exists(root_ / "ran"));
  EXPECT_FALSE(fs::exists(state_));
}

// Three steps; the second waits for an approval; events go to a webhook.
std::string approval_plan(const std::string& webhook) {
  return R"({"notifications": {"webhook": ")" + webhook + R"("},
    "clusters": [{"name": "c1", "spec": "${dead}",
      "steps": [{"name": "one", "run": ["sh", "-c", "echo one >> ${root}/ran"]},
                {"name": "two", "approval": "before", "preflight": [{"check": "dns"}],
                 "run": ["sh", "-c", "echo two >> ${root}/ran"]},
                {"name": "three", "run": ["sh", "-c", "echo three >> ${root}/ran"]}]}]})";
}

bool awaiting(const JournalState& s) {
  return s.find("c1") && s.find("c1")->phase == Phase::awaiting_approval;
}

TEST_F(EngineSteerTest, AnApprovalGateWaitsSurvivesARestartAndIsTakenOnlyAtItsStep) {
  testing::TestHttpServer webhook;
  checks_.script("c1", {Checks::pass()});
  const std::string text = approval_plan(webhook.url("/hook"));
  {
    Engine engine(plan(text), options());
    auto result = start(engine);
    ASSERT_TRUE(wait_for(awaiting)) << log();
    EXPECT_EQ(read_file(root_ / "ran"), "one\n");
    EXPECT_EQ(state().find("c1")->step, 1);
    EXPECT_TRUE(checks_.rounds("c1").empty());  // the preflight waits for the approval
    engine.stop();
    EXPECT_EQ(result->get().exit_code(), 3);
  }
  // Notified like a pause.
  ASSERT_TRUE(webhook.wait_for_requests(2, std::chrono::seconds(10)));
  const auto requests = webhook.requests();
  EXPECT_TRUE(contains(requests[1].body, R"("event":"paused")")) << requests[1].body;
  EXPECT_TRUE(contains(requests[1].body, R"("reason":"awaiting_approval")")) << requests[1].body;
  EXPECT_TRUE(contains(requests[1].body, R"("step":"two")")) << requests[1].body;

  // No engine: still waiting, as the journal says; the wrong step is refused.
  const std::string state_arg = " --state " + state_.string() + " --cluster c1";
  auto [status_code, status] = ringwatch("migrate status --state " + state_.string());
  EXPECT_EQ(status_code, 1) << status;
  EXPECT_TRUE(contains(status, "cluster c1: awaiting_approval at step 2/3 two since ")) << status;
  EXPECT_TRUE(contains(status, "  waits for an operator's approval of step 2/3 two since "))
      << status;
  auto [wrong_code, wrong] = ringwatch("migrate approve" + state_arg + " --step three --by bob");
  EXPECT_EQ(wrong_code, 3) << wrong;
  EXPECT_EQ(wrong,
            "ringwatch migrate approve: cluster c1 waits for an approval at step 2 (two), "
            "not at step 3 (three)\n");

  // A new engine waits on; the approval comes from another shell.
  auto engine = std::make_unique<Engine>(plan(text), options());
  auto result = start(*engine);
  ASSERT_TRUE(wait_for([](const JournalState& s) { return s.runs == 2 && awaiting(s); }));
  auto [approve_code, approved] =
      ringwatch("migrate approve" + state_arg + " --step two --by alice");
  EXPECT_EQ(approve_code, 0) << approved;
  EXPECT_TRUE(contains(approved, "approve accepted by the running engine")) << approved;
  EXPECT_EQ(result->get().exit_code(), 0) << log();
  result.reset();
  engine.reset();  // lets go of the state directory
  EXPECT_EQ(read_file(root_ / "ran"), "one\ntwo\nthree\n");
  EXPECT_EQ(checks_.rounds("c1"), std::vector<std::string>{"dns"});  // after the approval
  const ClusterProgress c1 = *state().find("c1");
  EXPECT_TRUE(c1.steps[1].approved);
  EXPECT_EQ(c1.steps[1].approved_by, "alice");
  EXPECT_FALSE(c1.steps[2].approved);
  EXPECT_TRUE(contains(log(),
                       "c1: awaiting_approval -> preflight at step 2 (two): approved by "
                       "alice\n"))
      << log();
  auto [late_code, late] = ringwatch("migrate approve" + state_arg + " --step two --by alice");
  EXPECT_EQ(late_code, 3);
  EXPECT_EQ(late, "ringwatch migrate approve: cluster c1 is finished\n");
  EXPECT_TRUE(contains(ringwatch("migrate status --state " + state_.string()).second,
                       "2. two: done, 1 attempt, approved by alice at "));
}

TEST_F(EngineSteerTest, EveryStepWaitsForAnApprovalWithThePlansEveryStep) {
  checks_.script("c1", {Checks::pass()});
  Engine engine(plan(R"({"approval": "every_step",
    "clusters": [{"name": "c1", "spec": "${dead}",
      "steps": [{"name": "one", "run": ["true"]}, {"name": "two", "run": ["true"]}]}]})"),
                options());
  auto result = start(engine);
  for (const char* step : {"one", "two"}) {
    ASSERT_TRUE(wait_for(awaiting)) << log();
    Command approve = command("approve", "c1");
    approve.step = step;
    approve.by = "carol";
    EXPECT_EQ(submit_command(state_, approve).rfind("approve accepted", 0), 0u);
    ASSERT_TRUE(wait_for([&](const JournalState& s) {
      return !awaiting(s) ||
             s.find("c1")->step_names[static_cast<std::size_t>(s.find("c1")->step)] != step;
    }));
  }
  EXPECT_EQ(result->get().exit_code(), 0) << log();
  EXPECT_TRUE(state().find("c1")->steps[0].approved);
  EXPECT_TRUE(state().find("c1")->steps[1].approved);
}

}  // namespace
}  // namespace ringwatch::migration
