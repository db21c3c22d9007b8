// The engine's state machine (migration/engine.h) with real processes as
// actions (sh), a real journal on disk, and check rounds scripted through the
// engine's seam (ScriptedChecks): what each round answers is the test's to
// say, and no test here probes a socket. Checks on a real lab are
// migration_lab_test.

#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "migration/engine.h"
#include "tests/migration/engine_fixture.h"
#include "tests/support/http_test_server.h"

namespace ringwatch::migration {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

class EngineTest : public testing::EngineFixture {
 protected:
  // The fixture's options with the scripted checks (hides the fixture's,
  // whose checks are real).
  EngineOptions options() {
    EngineOptions o = EngineFixture::options();
    o.make_checks = checks_.factory();
    return o;
  }

  // The phases a cluster went through, in order.
  std::vector<std::string> phases(const std::string& cluster) const {
    std::vector<std::string> out;
    for (const Record& r : journal()) {
      if (r.type != Record::Type::state || r.cluster != cluster) continue;
      std::string text = to_string(r.phase);
      if (r.phase == Phase::paused) text += std::string("(") + to_string(r.reason) + ")";
      out.push_back(text + "@" + std::to_string(r.step));
    }
    return out;
  }

  int attempts(const std::string& cluster, int step) const {
    int count = 0;
    for (const Record& r : journal()) {
      count += r.type == Record::Type::attempt && r.cluster == cluster && r.step == step;
    }
    return count;
  }

  // The detail of each state record of `cluster` into `phase`, in order.
  std::vector<std::string> details(const std::string& cluster, Phase phase) const {
    std::vector<std::string> out;
    for (const Record& r : journal()) {
      if (r.type == Record::Type::state && r.cluster == cluster && r.phase == phase) {
        out.push_back(r.detail);
      }
    }
    return out;
  }

  testing::ScriptedChecks checks_;
  using Checks = testing::ScriptedChecks;
};

// Three shell steps: each writes its context to a file.
std::string three_steps(const std::string& extra_cluster_fields = "") {
  std::string steps;
  for (const char* name : {"one", "two", "three"}) {
    if (!steps.empty()) steps += ",";
    steps +=
        std::string(R"({"name": ")") + name +
        R"(", "run": ["sh", "-c", "echo $$RINGWATCH_CLUSTER $$RINGWATCH_STEP $$RINGWATCH_ATTEMPT >> ${root}/ran"]})";
  }
  return R"({"clusters": [{"name": "c1", "spec": "${dead}", )" + extra_cluster_fields +
         R"("steps": [)" + steps + "]}]}";
}

std::string read(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

TEST_F(EngineTest, RunsEveryStepInOrderAndJournalsEachTransition) {
  Engine engine(plan(three_steps()), options());
  const RunSummary summary = engine.run();
  EXPECT_EQ(summary.exit_code(), 0) << log_.str();
  EXPECT_EQ(read(root_ / "ran"), "c1 one 1\nc1 two 1\nc1 three 1\n");
  EXPECT_EQ(phases("c1"), (std::vector<std::string>{
                              "preflight@0", "running@0", "verifying@0", "done@0", "preflight@1",
                              "running@1", "verifying@1", "done@1", "preflight@2", "running@2",
                              "verifying@2", "done@2", "finished@3"}));
  EXPECT_EQ(state().find("c1")->phase, Phase::finished);
  // Every record is on disk, numbered without gaps.
  const auto records = journal();
  for (std::size_t i = 0; i < records.size(); ++i) EXPECT_EQ(records[i].seq, i + 1);
  EXPECT_EQ(records.front().type, Record::Type::header);
  EXPECT_EQ(records[1].type, Record::Type::run);
}

TEST_F(EngineTest, ASecondEngineOnTheSameStateDirectoryIsRefusedByName) {
  Engine first(plan(three_steps()), options());
  try {
    Engine second(plan(three_steps()), options());
    FAIL() << "a second engine was allowed";
  } catch (const StateInUse& error) {
    const std::string what = error.what();
    EXPECT_NE(what.find("state directory " + state_.string() + " is in use by pid " +
                        std::to_string(::getpid()) + ", ringwatch migrate run since"),
              std::string::npos)
        << what;
  }
}

TEST_F(EngineTest, AJournalOfAnotherPlanIsRefused) {
  { Engine(plan(three_steps()), options()).run(); }
  const std::string other =
      R"({"clusters": [{"name": "c1", "spec": "${dead}", "steps": [{"name": "x", "run": ["true"]}]}]})";
  try {
    Engine engine(plan(other), options());
    FAIL() << "another plan's journal was accepted";
  } catch (const JournalError& error) {
    EXPECT_NE(
        std::string(error.what()).find("has other clusters or steps (c1: x); use a new --state"),
        std::string::npos)
        << error.what();
  }
}

TEST_F(EngineTest, AFailedActionIsRetriedThenPausesUntilAnOperatorResumes) {
  // Fails until the flag file exists.
  const std::string text = R"({"clusters": [{"name": "c1", "spec": "${dead}", "steps": [
    {"name": "flaky", "run": ["sh", "-c", "echo try >> ${root}/tries; test -f ${root}/flag"],
     "retries": 2, "backoff": 0.05}]}]})";
  Engine engine(plan(text), options());
  auto result = start(engine);
  ASSERT_TRUE(wait_for([](const auto& s) { return paused(s, "c1", PauseReason::failed_action); }));
  EXPECT_EQ(attempts("c1", 0), 3);  // the first and two retries
  EXPECT_NE(state().find("c1")->detail.find("action failed after 3 attempts: exit status 1"),
            std::string::npos)
      << state().find("c1")->detail;
  std::ofstream(root_ / "flag") << "";
  EXPECT_NE(submit_command(state_, command("resume", "c1")).find("accepted by the running engine"),
            std::string::npos);
  EXPECT_EQ(result->get().exit_code(), 0) << log_.str();
  EXPECT_EQ(attempts("c1", 0), 4);
  EXPECT_EQ(read(root_ / "tries"), "try\ntry\ntry\ntry\n");
}

// A journal as a crash leaves it: attempt 1 of step `step` started, no end.
void crash_in_step(const fs::path& state_dir, const Plan& plan, int step) {
  Record run;
  run.type = Record::Type::run;
  run.plan = plan.source;
  for (const auto& s : plan.clusters[0].steps) run.structure["c1"].push_back(s.name);
  Journal journal(state_dir, journal_header(plan.source, run.structure));
  journal.append(run);
  for (int i = 0; i <= step; ++i) {
    for (Phase phase : {Phase::preflight, Phase::running}) {
      Record state;
      state.cluster = "c1";
      state.phase = phase;
      state.step = i;
      journal.append(state);
    }
    Record attempt;
    attempt.type = Record::Type::attempt;
    attempt.cluster = "c1";
    attempt.step = i;
    attempt.attempt = 1;
    journal.append(attempt);
    if (i == step) break;
    Record end = attempt;
    end.type = Record::Type::attempt_end;
    end.outcome = "succeeded";
    journal.append(end);
    for (Phase phase : {Phase::verifying, Phase::done}) {
      Record state;
      state.cluster = "c1";
      state.phase = phase;
      state.step = i;
      journal.append(state);
    }
  }
}

TEST_F(EngineTest, AnInterruptedStepThatIsSafeToRerunRunsAgainAndFinishedStepsDoNot) {
  const std::string text = R"({"clusters": [{"name": "c1", "spec": "${dead}", "steps": [
    {"name": "one", "run": ["sh", "-c", "echo one >> ${root}/ran"]},
    {"name": "two", "run": ["sh", "-c", "echo two >> ${root}/ran"], "safe_to_rerun": true},
    {"name": "three", "run": ["sh", "-c", "echo three >> ${root}/ran"]}]}]})";
  const Plan p = plan(text);
  crash_in_step(state_, p, 1);
  Engine engine(p, options());
  EXPECT_EQ(engine.run().exit_code(), 0) << log_.str();
  EXPECT_EQ(read(root_ / "ran"), "two\nthree\n");  // step one had finished: not again
  EXPECT_EQ(attempts("c1", 1), 2);
  const StepProgress two = state().find("c1")->steps[1];
  EXPECT_EQ(two.outcome, StepProgress::Outcome::done);
}

TEST_F(EngineTest, AnInterruptedStepThatIsNotSafeToRerunPausesForAnOperator) {
  const std::string text = R"({"clusters": [{"name": "c1", "spec": "${dead}", "steps": [
    {"name": "one", "run": ["sh", "-c", "echo one >> ${root}/ran"]},
    {"name": "two", "run": ["sh", "-c", "echo two >> ${root}/ran"]}]}]})";
  const Plan p = plan(text);
  crash_in_step(state_, p, 1);
  {
    Engine engine(p, options());
    auto result = start(engine);
    ASSERT_TRUE(wait_for([](const auto& s) { return paused(s, "c1", PauseReason::interrupted); }));
    EXPECT_NE(
        state().find("c1")->detail.find("step 2 (two) was interrupted and is not safe to re-run"),
        std::string::npos);
    engine.stop();
    EXPECT_EQ(result->get().exit_code(), 3);
  }
  EXPECT_FALSE(fs::exists(root_ / "ran"));
  // No engine runs now: the command goes straight into the journal.
  EXPECT_NE(submit_command(state_, command("resume", "c1")).find("no engine is running"),
            std::string::npos);
  Engine engine(p, options());
  EXPECT_EQ(engine.run().exit_code(), 0) << log_.str();
  EXPECT_EQ(read(root_ / "ran"), "two\n");
}

// A journal as a crash right after attempts of step 0 ended with `outcomes`
// leaves it: the cluster still in `running`.
void crash_after_attempts(const fs::path& state_dir, const Plan& plan,
                          const std::vector<std::string>& outcomes) {
  Record run;
  run.type = Record::Type::run;
  run.plan = plan.source;
  for (const auto& s : plan.clusters[0].steps) run.structure["c1"].push_back(s.name);
  Journal journal(state_dir, journal_header(plan.source, run.structure));
  journal.append(run);
  for (Phase phase : {Phase::preflight, Phase::running}) {
    Record state;
    state.cluster = "c1";
    state.phase = phase;
    journal.append(state);
  }
  int attempt = 0;
  for (const auto& outcome : outcomes) {
    Record start;
    start.type = Record::Type::attempt;
    start.cluster = "c1";
    start.attempt = ++attempt;
    journal.append(start);
    Record end = start;
    end.type = Record::Type::attempt_end;
    end.outcome = outcome;
    end.detail = outcome == "failed" ? "exit status 1" : "exit status 0";
    journal.append(end);
  }
}

TEST_F(EngineTest, AnActionThatSucceededJustBeforeACrashIsNotRunAgain) {
  const std::string text = R"({"clusters": [{"name": "c1", "spec": "${dead}", "steps": [
    {"name": "once", "run": ["sh", "-c", "echo once >> ${root}/ran"]}]}]})";
  const Plan p = plan(text);
  crash_after_attempts(state_, p, {"succeeded"});
  Engine engine(p, options());
  EXPECT_EQ(engine.run().exit_code(), 0) << log_.str();
  EXPECT_FALSE(fs::exists(root_ / "ran"));
  EXPECT_EQ(attempts("c1", 0), 1);
}

TEST_F(EngineTest, RetriesUsedUpBeforeACrashAreNotGrantedAgain) {
  const std::string text = R"({"clusters": [{"name": "c1", "spec": "${dead}", "steps": [
    {"name": "flaky", "run": ["sh", "-c", "echo try >> ${root}/ran; false"], "retries": 1}]}]})";
  const Plan p = plan(text);
  crash_after_attempts(state_, p, {"failed", "failed"});
  Engine engine(p, options());
  auto result = start(engine);
  ASSERT_TRUE(wait_for([](const auto& s) { return paused(s, "c1", PauseReason::failed_action); }));
  EXPECT_FALSE(fs::exists(root_ / "ran"));
  EXPECT_EQ(attempts("c1", 0), 2);
  // An operator's resume grants the retries again.
  submit_command(state_, command("resume", "c1"));
  ASSERT_TRUE(wait_for([&](const auto& s) {
    return paused(s, "c1", PauseReason::failed_action) && attempts("c1", 0) == 4;
  }));
  EXPECT_EQ(read(root_ / "ran"), "try\ntry\n");
  submit_command(state_, command("abort", "c1"));
  EXPECT_EQ(result->get().exit_code(), 2);
}

TEST_F(EngineTest, AFailedPreflightCheckPausesWithTheDiagnosisAndAbortEndsIt) {
  const std::string text =
      R"({"clusters": [{"name": "c1", "spec": "${dead}", "recheck_interval": 0.1,
    "steps": [{"name": "gated", "preflight": [{"check": "canary"}],
               "run": ["sh", "-c", "echo ran >> ${root}/ran"]}]}]})";
  checks_.script("c1", {Checks::fail("canary: CRITICAL: p1 refused the connection",
                                     "every proxy is down: p1")});
  Engine engine(plan(text), options());
  auto result = start(engine);
  ASSERT_TRUE(wait_for([](const auto& s) { return paused(s, "c1", PauseReason::failed_check); }));
  const ClusterProgress c1 = *state().find("c1");
  EXPECT_EQ(c1.resume_to, Phase::preflight);
  EXPECT_NE(c1.detail.find("preflight failed at step 1 (gated): canary: "), std::string::npos)
      << c1.detail;
  EXPECT_EQ(c1.diagnosis, "every proxy is down: p1");
  // Re-checks keep failing: still the same pause.
  ASSERT_TRUE(wait_for([&](const auto&) { return checks_.round_count("c1") >= 3; }));
  EXPECT_EQ(checks_.rounds("c1")[0], "canary");
  EXPECT_EQ(state().find("c1")->since, c1.since);
  submit_command(state_, command("abort", "c1"));
  EXPECT_EQ(result->get().exit_code(), 2);
  EXPECT_EQ(state().find("c1")->phase, Phase::aborted);
  EXPECT_NE(state().find("c1")->detail.find("aborted by operator at step 1 (gated) in paused"),
            std::string::npos);
  EXPECT_FALSE(fs::exists(root_ / "ran"));  // the action never ran
  EXPECT_NE(log_.str().find("c1: still failing: canary: CRITICAL: p1 refused the connection\n"),
            std::string::npos)
      << log_.str();
}

TEST_F(EngineTest, ABlackoutHoldsEveryClusterPausedUntilItEnds) {
  const std::string text = R"({"schedule": {"max_parallel_clusters": 2,
      "blackouts": [{"hours": {"from": 10, "to": 11}}]},
    "clusters": [
      {"name": "c1", "spec": "${dead}", "steps": [{"name": "s", "run": ["true"]}]},
      {"name": "c2", "spec": "${dead}", "steps": [{"name": "s", "run": ["true"]}]}]})";
  // 10:30 UTC, inside the window; the test moves the clock past 11:00.
  std::atomic<std::int64_t> now{1795084200};  // 2026-11-19T10:30:00Z
  auto o = options();
  o.now = [&now] { return std::chrono::system_clock::from_time_t(now.load()); };
  Engine engine(plan(text), o);
  auto result = start(engine);
  ASSERT_TRUE(wait_for([](const auto& s) {
    return paused(s, "c1", PauseReason::blackout) && paused(s, "c2", PauseReason::blackout);
  }));
  std::this_thread::sleep_for(300ms);
  EXPECT_TRUE(paused(state(), "c1", PauseReason::blackout));
  EXPECT_NE(state().find("c1")->detail.find("blackout window: every day 10:00-11:00 UTC"),
            std::string::npos)
      << state().find("c1")->detail;
  now = 1795087800;  // 11:30
  EXPECT_EQ(result->get().exit_code(), 0) << log_.str();
}

TEST_F(EngineTest, OneClusterPausingLeavesTheOtherRunning) {
  const std::string text = R"({"schedule": {"max_parallel_clusters": 2},
    "clusters": [
      {"name": "broken", "spec": "${dead}", "steps": [{"name": "s", "run": ["false"]}]},
      {"name": "fine", "spec": "${dead}", "steps": [
        {"name": "a", "run": ["sleep", "0.3"]}, {"name": "b", "run": ["sleep", "0.3"]}]}]})";
  Engine engine(plan(text), options());
  auto result = start(engine);
  ASSERT_TRUE(wait_for([](const auto& s) {
    return paused(s, "broken", PauseReason::failed_action) &&
           s.find("fine")->phase == Phase::finished;
  }));
  submit_command(state_, command("abort", "broken"));
  const RunSummary summary = result->get();
  EXPECT_EQ(summary.clusters.at("fine"), Phase::finished);
  EXPECT_EQ(summary.clusters.at("broken"), Phase::aborted);
}

TEST_F(EngineTest, ClustersBeyondTheLimitWaitForASlotInPlanOrder) {
  const std::string text = R"({"schedule": {"max_parallel_clusters": 1},
    "clusters": [
      {"name": "c1", "spec": "${dead}", "steps": [{"name": "s", "run": ["sh", "-c", "echo c1 >> ${root}/ran; sleep 0.2; echo c1 >> ${root}/ran"]}]},
      {"name": "c2", "spec": "${dead}", "steps": [{"name": "s", "run": ["sh", "-c", "echo c2 >> ${root}/ran; sleep 0.2; echo c2 >> ${root}/ran"]}]}]})";
  Engine engine(plan(text), options());
  EXPECT_EQ(engine.run().exit_code(), 0);
  EXPECT_EQ(read(root_ / "ran"), "c1\nc1\nc2\nc2\n");
}

TEST_F(EngineTest, SkipIsJournaledAndTheClusterStaysPausedUntilResumed) {
  const std::string text = R"({"clusters": [{"name": "c1", "spec": "${dead}", "steps": [
    {"name": "bad", "run": ["false"]},
    {"name": "after", "run": ["sh", "-c", "echo after >> ${root}/ran"]}]}]})";
  Engine engine(plan(text), options());
  auto result = start(engine);
  ASSERT_TRUE(wait_for([](const auto& s) { return paused(s, "c1", PauseReason::failed_action); }));
  Command skip = command("skip", "c1");
  skip.step = "nope";
  skip.reason = "x";
  try {
    submit_command(state_, skip);
    ADD_FAILURE() << "skipping an unknown step was accepted";
  } catch (const std::runtime_error& error) {
    EXPECT_STREQ(error.what(), "cluster c1 has no step \"nope\"");
  }
  skip = command("skip", "c1");
  skip.step = "bad";
  skip.reason = "done by hand, ticket OPS-1";
  submit_command(state_, skip);
  std::this_thread::sleep_for(300ms);
  EXPECT_TRUE(paused(state(), "c1", PauseReason::failed_action));  // skipping does not resume
  submit_command(state_, command("resume", "c1"));
  EXPECT_EQ(result->get().exit_code(), 0) << log_.str();
  const ClusterProgress c1 = *state().find("c1");
  EXPECT_EQ(c1.steps[0].outcome, StepProgress::Outcome::skipped);
  EXPECT_EQ(c1.steps[0].detail, "skipped by operator: done by hand, ticket OPS-1");
  EXPECT_EQ(c1.steps[1].outcome, StepProgress::Outcome::done);
  EXPECT_EQ(read(root_ / "ran"), "after\n");
}

TEST_F(EngineTest, OperatorPauseWaitsForTheRunningActionThenHolds) {
  const std::string text = R"({"clusters": [{"name": "c1", "spec": "${dead}", "steps": [
    {"name": "slow", "run": ["sh", "-c", "sleep 0.5; echo slow >> ${root}/ran"]},
    {"name": "next", "run": ["sh", "-c", "echo next >> ${root}/ran"]}]}]})";
  Engine engine(plan(text), options());
  auto result = start(engine);
  ASSERT_TRUE(wait_for([](const auto& s) { return s.find("c1")->steps[0].in_flight; }));
  submit_command(state_, command("pause"));
  ASSERT_TRUE(
      wait_for([](const auto& s) { return paused(s, "c1", PauseReason::operator_request); }));
  EXPECT_EQ(read(root_ / "ran"), "slow\n");  // the action was not killed; the next did not start
  EXPECT_EQ(state().find("c1")->resume_to, Phase::verifying);
  submit_command(state_, command("resume"));
  EXPECT_EQ(result->get().exit_code(), 0);
  EXPECT_EQ(read(root_ / "ran"), "slow\nnext\n");
}

// Checks that fail and then pass: the cluster pauses, alerts with the
// diagnosis, and resumes on its own after resume_after_rounds passing
// re-checks in a row.
TEST_F(EngineTest, AFailedCheckPausesAlertsAndResumesAfterPassingRounds) {
  testing::TestHttpServer webhook;
  const std::string text = R"({"notifications": {"webhook": "${hook}"},
    "clusters": [{"name": "c1", "spec": "${dead}", "recheck_interval": 0.2,
      "resume_after_rounds": 2,
      "steps": [{"name": "gated", "preflight": [{"check": "canary", "min_consistency_ratio": 1.0}],
                 "run": ["sh", "-c", "echo ran >> ${root}/ran"]}]}]})";
  checks_.script("c1", {Checks::fail("canary: consistency 0.5 < 1",
                                     "b2 is unreachable from every proxy (p1, p2)")});
  Engine engine(plan(text, {{"hook", webhook.url("/hook")}}), options());
  auto result = start(engine);
  ASSERT_TRUE(wait_for([](const auto& s) { return paused(s, "c1", PauseReason::failed_check); }));
  EXPECT_FALSE(fs::exists(root_ / "ran"));
  EXPECT_NE(state().find("c1")->diagnosis.find("b2"), std::string::npos)
      << state().find("c1")->diagnosis;
  checks_.script("c1", {Checks::pass()});
  const RunSummary summary = result->get();
  EXPECT_EQ(summary.exit_code(), 0) << log_.str();
  EXPECT_EQ(read(root_ / "ran"), "ran\n");
  // started, paused (with the diagnosis), resumed, finished, in that order.
  ASSERT_TRUE(webhook.wait_for_requests(4, 5s));
  std::vector<std::string> events;
  for (const auto& request : webhook.requests()) {
    const auto at = request.body.find("\"event\":\"");
    events.push_back(request.body.substr(at + 9, request.body.find('"', at + 9) - at - 9));
  }
  EXPECT_EQ(events, (std::vector<std::string>{"started", "paused", "resumed", "finished"}));
  EXPECT_NE(webhook.requests()[1].body.find("\"reason\":\"failed_check\""), std::string::npos);
  EXPECT_NE(webhook.requests()[1].body.find("\"diagnosis\""), std::string::npos);
  EXPECT_NE(webhook.requests()[1].body.find("b2 is unreachable from every proxy (p1, p2)"),
            std::string::npos)
      << webhook.requests()[1].body;
  EXPECT_EQ(phases("c1"),
            (std::vector<std::string>{"preflight@0", "paused(failed_check)@0", "preflight@0",
                                      "running@0", "verifying@0", "done@0", "finished@1"}));
  EXPECT_EQ(details("c1", Phase::preflight),
            (std::vector<std::string>{"started", "checks passed 2 re-checks in a row"}));
}

TEST_F(EngineTest, WithResumeOperatorPassingChecksDoNotResumeByThemselves) {
  const std::string text = R"({"clusters": [{"name": "c1", "spec": "${dead}",
      "resume": "operator", "recheck_interval": 0.05, "resume_after_rounds": 1,
      "steps": [{"name": "gated", "preflight": [{"check": "canary"}], "run": ["true"]}]}]})";
  checks_.script("c1", {Checks::fail("canary: CRITICAL: b2 is down"), Checks::pass()});
  Engine engine(plan(text), options());
  auto result = start(engine);
  // The first round fails; ten passing re-checks go by, and it stays paused.
  ASSERT_TRUE(wait_for([&](const auto&) { return checks_.round_count("c1") >= 11; }));
  EXPECT_TRUE(paused(state(), "c1", PauseReason::failed_check));
  EXPECT_EQ(phases("c1").size(), 2u);
  submit_command(state_, command("resume", "c1"));
  EXPECT_EQ(result->get().exit_code(), 0);
  EXPECT_NE(log_.str().find("c1: checks passed (10 in a row); waiting for an operator's resume"),
            std::string::npos)
      << log_.str();
  EXPECT_EQ(details("c1", Phase::preflight),
            (std::vector<std::string>{"started", "resumed by operator"}));
}

// A failing re-check starts the count of passing ones again.
TEST_F(EngineTest, AutomaticResumeNeedsResumeAfterRoundsPassingReChecksInARow) {
  const std::string text = R"({"clusters": [{"name": "c1", "spec": "${dead}",
      "recheck_interval": 0.05, "resume_after_rounds": 3,
      "steps": [{"name": "gated", "preflight": [{"check": "dns"}],
                 "run": ["sh", "-c", "echo ran >> ${root}/ran"]}]}]})";
  checks_.script("c1", {Checks::fail("dns: CRITICAL: b1.test resolves to 203.0.113.7"),
                        Checks::pass(), Checks::fail("dns: WARNING: vantages disagree"),
                        Checks::pass(), Checks::pass(), Checks::pass()});
  Engine engine(plan(text), options());
  EXPECT_EQ(engine.run().exit_code(), 0) << log_.str();
  EXPECT_EQ(read(root_ / "ran"), "ran\n");
  // The preflight round, five re-checks (pass, fail, pass, pass, pass), the preflight again.
  EXPECT_EQ(checks_.rounds("c1"), std::vector<std::string>(7, "dns"));
  EXPECT_EQ(details("c1", Phase::paused),
            std::vector<std::string>{
                "preflight failed at step 1 (gated): dns: CRITICAL: b1.test resolves to "
                "203.0.113.7"});
  EXPECT_EQ(details("c1", Phase::preflight),
            (std::vector<std::string>{"started", "checks passed 3 re-checks in a row"}));
  const std::string log = log_.str();
  EXPECT_NE(log.find("c1: checks passed (1 in a row)\n"), std::string::npos) << log;
  EXPECT_NE(log.find("c1: still failing: dns: WARNING: vantages disagree\n"), std::string::npos)
      << log;
  EXPECT_NE(log.find("c1: checks passed (2 in a row)\n"), std::string::npos) << log;
}

// A step with a "verify" block: its checks are polled every interval until
// one round passes.
std::string verified_step(const std::string& verify) {
  return R"({"clusters": [{"name": "c1", "spec": "${dead}", "recheck_interval": 0.05,
      "resume_after_rounds": 1,
      "steps": [{"name": "move", "preflight": [{"check": "dns"}],
                 "run": ["sh", "-c", "echo ran >> ${root}/ran"],
                 "verify": )" +
         verify + "}]}]}";
}

TEST_F(EngineTest, VerifyPollsItsChecksUntilOneRoundPasses) {
  const std::string text =
      verified_step(R"({"checks": [{"check": "canary"}], "interval": 0.05, "deadline": 60})");
  checks_.script("c1", {Checks::pass(), Checks::fail("canary: consistency 0.5 < 1"),
                        Checks::fail("canary: consistency 0.9 < 1"), Checks::pass()});
  Engine engine(plan(text), options());
  EXPECT_EQ(engine.run().exit_code(), 0) << log_.str();
  EXPECT_EQ(checks_.rounds("c1"), (std::vector<std::string>{"dns", "canary", "canary", "canary"}));
  EXPECT_EQ(phases("c1"), (std::vector<std::string>{"preflight@0", "running@0", "verifying@0",
                                                    "done@0", "finished@1"}));
  EXPECT_EQ(details("c1", Phase::done), std::vector<std::string>{"verify checks passed"});
}

// Past the deadline the cluster pauses; the re-checks are the verify checks,
// and the resume polls them again without running the action again.
TEST_F(EngineTest, VerifyPastItsDeadlinePausesThenResumesIntoVerifying) {
  const std::string text =
      verified_step(R"({"checks": [{"check": "canary"}], "interval": 0.05, "deadline": 0})");
  checks_.script("c1", {Checks::pass(), Checks::fail("canary: consistency 0.5 < 1", "b3 is new"),
                        Checks::pass()});
  Engine engine(plan(text), options());
  EXPECT_EQ(engine.run().exit_code(), 0) << log_.str();
  EXPECT_EQ(read(root_ / "ran"), "ran\n");
  // preflight; verify (fails, deadline passed); a re-check; verify again.
  EXPECT_EQ(checks_.rounds("c1"), (std::vector<std::string>{"dns", "canary", "canary", "canary"}));
  EXPECT_EQ(phases("c1"), (std::vector<std::string>{"preflight@0", "running@0", "verifying@0",
                                                    "paused(failed_check)@0", "verifying@0",
                                                    "done@0", "finished@1"}));
  const std::vector<Record> records = journal();
  const auto pause = std::find_if(records.begin(), records.end(), [](const Record& r) {
    return r.type == Record::Type::state && r.phase == Phase::paused;
  });
  ASSERT_NE(pause, records.end());
  EXPECT_EQ(pause->resume_to, Phase::verifying);
  EXPECT_EQ(pause->detail, "verify failed at step 1 (move): canary: consistency 0.5 < 1");
  EXPECT_EQ(pause->diagnosis, "b3 is new");
}

// An operator's pause ends verifying at the end of its round, and holds
// without re-checks; the resume polls the verify checks again.
TEST_F(EngineTest, OperatorPauseEndsVerifyingWithItsRound) {
  const std::string text =
      verified_step(R"({"checks": [{"check": "canary"}], "interval": 0.05, "deadline": 60})");
  checks_.script("c1", {Checks::pass(), Checks::fail("canary: consistency 0.5 < 1")});
  Engine engine(plan(text), options());
  auto result = start(engine);
  ASSERT_TRUE(wait_for([&](const auto&) { return checks_.round_count("c1") >= 3; }));
  submit_command(state_, command("pause", "c1"));
  ASSERT_TRUE(
      wait_for([](const auto& s) { return paused(s, "c1", PauseReason::operator_request); }));
  EXPECT_EQ(state().find("c1")->resume_to, Phase::verifying);
  const std::size_t rounds_when_paused = checks_.round_count("c1");
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(checks_.round_count("c1"), rounds_when_paused);  // no re-checks: an operator's pause
  checks_.script("c1", {Checks::pass()});
  submit_command(state_, command("resume", "c1"));
  EXPECT_EQ(result->get().exit_code(), 0) << log_.str();
  EXPECT_EQ(checks_.round_count("c1"), rounds_when_paused + 1);
  EXPECT_EQ(read(root_ / "ran"), "ran\n");
  EXPECT_EQ(phases("c1"), (std::vector<std::string>{"preflight@0", "running@0", "verifying@0",
                                                    "paused(operator)@0", "verifying@0", "done@0",
                                                    "finished@1"}));
}

// A round that ends after stop() is not acted on: the next run starts it again.
TEST_F(EngineTest, ARoundThatEndsAfterAStopIsDropped) {
  const std::string text = R"({"clusters": [{"name": "c1", "spec": "${dead}", "steps": [
    {"name": "gated", "preflight": [{"check": "canary"}], "run": ["true"]}]}]})";
  checks_.script("c1", {Checks::fail("canary: CRITICAL: p1 refused the connection")});
  {
    Engine engine(plan(text), options());
    checks_.on_round = [&engine](const std::string&) { engine.stop(); };
    const RunSummary summary = engine.run();
    checks_.on_round = nullptr;
    EXPECT_TRUE(summary.stopped);
    EXPECT_EQ(summary.exit_code(), 3);
  }
  EXPECT_EQ(checks_.round_count("c1"), 1u);
  EXPECT_EQ(phases("c1"), std::vector<std::string>{"preflight@0"});
  checks_.script("c1", {Checks::pass()});
  Engine engine(plan(text), options());
  EXPECT_EQ(engine.run().exit_code(), 0) << log_.str();
  EXPECT_EQ(checks_.round_count("c1"), 2u);
}

}  // namespace
}  // namespace ringwatch::migration
