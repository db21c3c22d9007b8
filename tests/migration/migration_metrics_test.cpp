// Issue 16, point 4: the metrics of `migrate run --metrics-listen` are a fold
// of the journal. From a scripted journal (two clusters, an observe-mode
// check, a failed-check pause and its update, an engine restart, an operator
// pause, an approval gate): the rendered text, word for word where it
// matters; a restarted engine (rebuild from the journal, then the records it
// appends) serves what one engine that never stopped would have served.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "migration/metrics.h"

namespace ringwatch::migration {
namespace {

using namespace std::chrono_literals;

const std::chrono::system_clock::time_point kStart{std::chrono::seconds(1'800'000'000)};

class ScriptedJournal {
 public:
  ScriptedJournal() {
    Record header;
    header.type = Record::Type::header;
    header.plan = "plans/region-eu.json";
    header.structure = {{"lab", {"add-b4", "roll-proxies"}}, {"edge", {"add-e4"}}};
    header.version = kJournalVersion;
    add(header, 0s);
  }

  const Record& add(Record record, std::chrono::seconds after_start) {
    record.seq = records_.size() + 1;
    record.at = kStart + after_start;
    records_.push_back(std::move(record));
    return records_.back();
  }
  const Record& run(std::chrono::seconds at) {
    Record record;
    record.type = Record::Type::run;
    record.structure = records_.front().structure;
    return add(record, at);
  }
  const Record& state(const std::string& cluster, Phase phase, int step, std::chrono::seconds at,
                      PauseReason reason = PauseReason::none, std::string detail = {}) {
    Record record;
    record.type = Record::Type::state;
    record.cluster = cluster;
    record.phase = phase;
    record.step = step;
    record.reason = reason;
    record.detail = std::move(detail);
    return add(record, at);
  }
  const Record& observe(const std::string& cluster, int step, bool passed,
                        std::chrono::seconds at) {
    Record record;
    record.type = Record::Type::observe;
    record.cluster = cluster;
    record.step = step;
    record.phase = Phase::preflight;
    record.check = "dns (observe only; backends b4)";
    record.outcome = passed ? "passed" : "would_pause";
    return add(record, at);
  }
  const Record& command(const std::string& cluster, const std::string& command, int step,
                        std::chrono::seconds at) {
    Record record;
    record.type = Record::Type::operator_command;
    record.cluster = cluster;
    record.command = command;
    record.step = step;
    record.command_id = "c" + std::to_string(records_.size());
    record.by = "alice";
    return add(record, at);
  }
  const std::vector<Record>& records() const { return records_; }

 private:
  std::vector<Record> records_;
};

// The migration of the header comment, in two runs: the first ends (as a
// kill -9 would) after record `first_run_ends`.
ScriptedJournal two_runs(std::size_t* first_run_ends = nullptr) {
  ScriptedJournal journal;
  journal.run(1s);
  journal.state("lab", Phase::preflight, 0, 2s, PauseReason::none, "started");
  journal.observe("lab", 0, false, 3s);
  journal.state("lab", Phase::running, 0, 4s);
  journal.state("lab", Phase::verifying, 0, 20s);
  journal.state("lab", Phase::done, 0, 44s);
  journal.state("lab", Phase::preflight, 1, 45s);
  journal.observe("lab", 1, true, 46s);
  journal.state("lab", Phase::paused, 1, 47s, PauseReason::failed_check,
                "preflight failed at step 2 (roll-proxies): dns: backend b5 is not in the "
                "cluster spec; canary: CRITICAL: p2 diverges; dns: b4 resolves to 127.200.0.4");
  // The same pause, said again: not a second pause.
  journal.state("lab", Phase::paused, 1, 50s, PauseReason::failed_check,
                "preflight failed at step 2 (roll-proxies): dns: backend b5 is not in the "
                "cluster spec");
  if (first_run_ends) *first_run_ends = journal.records().size();
  journal.run(100s);
  journal.command("lab", "pause", 0, 101s);
  journal.state("lab", Phase::paused, 1, 102s, PauseReason::operator_request,
                "paused by operator at step 2 (roll-proxies)");
  journal.state("edge", Phase::preflight, 0, 103s, PauseReason::none, "started");
  journal.state("edge", Phase::awaiting_approval, 0, 104s);
  return journal;
}

bool has_line(const std::string& text, const std::string& line) {
  return text.find("\n" + line + "\n") != std::string::npos;
}

TEST(MigrationMetricsTest, PlanLabelIsThePlanFilesStem) {
  EXPECT_EQ(MigrationMetrics::plan_label("tools/examples/lab-migration.json"), "lab-migration");
  EXPECT_EQ(MigrationMetrics::plan_label("/etc/plans/eu.v2.json"), "eu.v2");
  EXPECT_EQ(MigrationMetrics::plan_label("plan"), "plan");
}

TEST(MigrationMetricsTest, RendersTheJournalAcrossARestart) {
  MigrationMetrics metrics("region-eu");
  const ScriptedJournal journal = two_runs();
  for (const Record& record : journal.records()) metrics.observe(record);
  const std::string text = metrics.serialize();

  // One series per phase, 1 for the current one.
  EXPECT_TRUE(has_line(
      text,
      R"(ringwatch_migration_cluster_state{cluster="lab",plan="region-eu",state="paused"} 1)"))
      << text;
  EXPECT_TRUE(has_line(
      text,
      R"(ringwatch_migration_cluster_state{cluster="lab",plan="region-eu",state="preflight"} 0)"))
      << text;
  EXPECT_TRUE(has_line(
      text,
      R"(ringwatch_migration_cluster_state{cluster="edge",plan="region-eu",state="awaiting_approval"} 1)"))
      << text;
  std::size_t lab_states = 0;
  for (auto at = text.find("ringwatch_migration_cluster_state{cluster=\"lab\"");
       at != std::string::npos;
       at = text.find("ringwatch_migration_cluster_state{cluster=\"lab\"", at + 1)) {
    ++lab_states;
  }
  EXPECT_EQ(lab_states, 9u) << text;

  // Steps counted from 1, as `migrate status` prints them.
  EXPECT_TRUE(has_line(text, R"(ringwatch_migration_step{cluster="lab",plan="region-eu"} 2)"))
      << text;
  EXPECT_TRUE(has_line(text, R"(ringwatch_migration_steps{cluster="lab",plan="region-eu"} 2)"));
  EXPECT_TRUE(
      has_line(text, R"(ringwatch_migration_steps_completed{cluster="lab",plan="region-eu"} 1)"));
  EXPECT_TRUE(has_line(
      text,
      R"(ringwatch_migration_state_since_timestamp_seconds{cluster="lab",plan="region-eu"} 1800000102)"))
      << text;

  // Pauses by reason, from both runs; the repeated failed_check record is
  // the same pause.
  EXPECT_TRUE(has_line(
      text,
      R"(ringwatch_migration_pauses_total{cluster="lab",plan="region-eu",reason="failed_check"} 1)"))
      << text;
  EXPECT_TRUE(has_line(
      text,
      R"(ringwatch_migration_pauses_total{cluster="lab",plan="region-eu",reason="operator"} 1)"));
  EXPECT_TRUE(has_line(
      text,
      R"(ringwatch_migration_pauses_total{cluster="edge",plan="region-eu",reason="blackout"} 0)"));
  // Each check named by the pause counts once.
  EXPECT_TRUE(has_line(
      text,
      R"(ringwatch_migration_check_failures_total{check="dns",cluster="lab",plan="region-eu"} 1)"))
      << text;
  EXPECT_TRUE(has_line(
      text,
      R"(ringwatch_migration_check_failures_total{check="canary",cluster="lab",plan="region-eu"} 1)"));
  EXPECT_TRUE(has_line(
      text,
      R"(ringwatch_migration_check_failures_total{check="connections",cluster="lab",plan="region-eu"} 0)"));

  EXPECT_TRUE(has_line(
      text, R"(ringwatch_migration_approvals_pending{cluster="edge",plan="region-eu"} 1)"));
  EXPECT_TRUE(
      has_line(text, R"(ringwatch_migration_approvals_pending{cluster="lab",plan="region-eu"} 0)"));

  // Observe-mode: two evaluations, one would have paused.
  const std::string observed =
      R"x({check="dns (observe only; backends b4)",cluster="lab",plan="region-eu"})x";
  EXPECT_TRUE(has_line(text, "ringwatch_migration_observe_evaluations_total" + observed + " 2"))
      << text;
  EXPECT_TRUE(has_line(text, "ringwatch_migration_observe_would_pause_total" + observed + " 1"));

  // add-b4 took 42 s (its first record at 2 s, done at 44 s).
  EXPECT_TRUE(has_line(
      text, R"(ringwatch_migration_step_duration_seconds_count{plan="region-eu",step="add-b4"} 1)"))
      << text;
  EXPECT_TRUE(has_line(
      text, R"(ringwatch_migration_step_duration_seconds_sum{plan="region-eu",step="add-b4"} 42)"));
  EXPECT_TRUE(has_line(
      text,
      R"(ringwatch_migration_step_duration_seconds_bucket{plan="region-eu",step="add-b4",le="30"} 0)"));
  EXPECT_TRUE(has_line(
      text,
      R"(ringwatch_migration_step_duration_seconds_bucket{plan="region-eu",step="add-b4",le="60"} 1)"));
  EXPECT_TRUE(has_line(
      text,
      R"(ringwatch_migration_step_duration_seconds_count{plan="region-eu",step="roll-proxies"} 0)"));

  EXPECT_TRUE(has_line(text, R"(ringwatch_migration_engine_runs_total{plan="region-eu"} 2)"));
  EXPECT_TRUE(has_line(text, R"(ringwatch_migration_journal_records{plan="region-eu"} 16)"))
      << text;
}

TEST(MigrationMetricsTest, ARestartedEngineServesWhatOneThatNeverStoppedWould) {
  std::size_t first_run_ends = 0;
  const ScriptedJournal journal = two_runs(&first_run_ends);
  const auto& records = journal.records();
  MigrationMetrics never_stopped("region-eu");
  for (const Record& record : records) never_stopped.observe(record);

  // The first engine saw its own records; the second one, as the CLI runs
  // it: the engine's `run` record reaches it first (on_record, in the
  // engine's constructor), then the journal so far, then what it appends.
  MigrationMetrics first("region-eu");
  for (std::size_t i = 0; i < first_run_ends; ++i) first.observe(records[i]);
  MigrationMetrics second("region-eu");
  second.observe(records[first_run_ends]);
  second.rebuild({records.begin(), records.begin() + static_cast<long>(first_run_ends) + 1});
  for (std::size_t i = first_run_ends + 1; i < records.size(); ++i) second.observe(records[i]);
  EXPECT_EQ(second.serialize(), never_stopped.serialize());
  EXPECT_NE(first.serialize(), never_stopped.serialize());

  // A record handed over twice counts once.
  second.observe(records.back());
  second.observe(records[first_run_ends + 2]);
  EXPECT_EQ(second.serialize(), never_stopped.serialize());
}

TEST(MigrationMetricsTest, ASkippedStepIsNotTimedAndCountsAsCompleted) {
  ScriptedJournal journal;
  journal.run(1s);
  journal.state("edge", Phase::preflight, 0, 2s, PauseReason::none, "started");
  journal.state("edge", Phase::paused, 0, 3s, PauseReason::failed_check,
                "preflight failed at step 1 (add-e4): cluster spec: cannot read x.json");
  journal.command("edge", "skip", 0, 60s);
  journal.state("edge", Phase::done, 0, 61s);
  journal.state("edge", Phase::finished, 1, 62s, PauseReason::none, "every step done");
  MigrationMetrics metrics("p");
  metrics.rebuild(journal.records());
  const std::string text = metrics.serialize();
  EXPECT_TRUE(has_line(
      text, R"(ringwatch_migration_step_duration_seconds_count{plan="p",step="add-e4"} 0)"))
      << text;
  EXPECT_TRUE(has_line(text, R"(ringwatch_migration_steps_completed{cluster="edge",plan="p"} 1)"));
  EXPECT_TRUE(has_line(text, R"(ringwatch_migration_step{cluster="edge",plan="p"} 2)"));
  EXPECT_TRUE(has_line(
      text, R"(ringwatch_migration_cluster_state{cluster="edge",plan="p",state="finished"} 1)"));
  EXPECT_TRUE(has_line(
      text, R"(ringwatch_migration_check_failures_total{check="spec",cluster="edge",plan="p"} 1)"))
      << text;
}

TEST(MigrationMetricsTest, AnApprovalIsCountedAndNoLongerPending) {
  ScriptedJournal journal;
  journal.run(1s);
  journal.state("edge", Phase::preflight, 0, 2s, PauseReason::none, "started");
  journal.state("edge", Phase::awaiting_approval, 0, 3s);
  MigrationMetrics metrics("p");
  metrics.rebuild(journal.records());
  EXPECT_TRUE(has_line(metrics.serialize(),
                       R"(ringwatch_migration_approvals_pending{cluster="edge",plan="p"} 1)"));
  metrics.observe(journal.command("edge", "approve", 0, 600s));
  metrics.observe(journal.state("edge", Phase::preflight, 0, 601s));
  const std::string text = metrics.serialize();
  EXPECT_TRUE(
      has_line(text, R"(ringwatch_migration_approvals_pending{cluster="edge",plan="p"} 0)"));
  EXPECT_TRUE(has_line(text, R"(ringwatch_migration_approvals_total{cluster="edge",plan="p"} 1)"))
      << text;
}

}  // namespace
}  // namespace ringwatch::migration
