#pragma once
// Prometheus metrics of a running migration (`migrate run --metrics-listen`),
// on a prometheus-cpp core Registry. Every value is a fold of the journal's
// records (journal.h): the engine hands each record it appends to observe()
// (EngineOptions::on_record), and rebuild() folds a whole journal, so after a
// restart the counters say what the journal says, not what this process saw.
// The names are part of ringwatch's interface (docs/migration.md, "Metrics");
// `plan` is the plan file's stem (plan_label()):
//
//   ringwatch_migration_cluster_state{plan,cluster,state}
//       gauge: 1 for the cluster's phase, 0 for each other phase (one series
//       per phase of journal.h's Phase, always all of them)
//   ringwatch_migration_state_since_timestamp_seconds{plan,cluster}
//       gauge: when the cluster entered that phase (unix seconds, the record's time)
//   ringwatch_migration_step{plan,cluster}
//       gauge: the step the cluster is at, counted from 1 as `migrate status`
//       prints it; steps + 1 once finished (past the last step)
//   ringwatch_migration_steps{plan,cluster}          gauge: the cluster's steps
//   ringwatch_migration_steps_completed{plan,cluster}
//       gauge: steps done or skipped
//   ringwatch_migration_step_duration_seconds{plan,step}
//       histogram: from the first record at a step to its done record, by the
//       records' times (pauses, approval waits and engine restarts included);
//       a skipped step is not observed
//   ringwatch_migration_pauses_total{plan,cluster,reason}
//       counter: entries into paused, by reason (failed_check, failed_action,
//       operator, blackout, interrupted; every reason at 0 from the start). A
//       paused record with the reason the cluster is already paused for is no
//       new pause. awaiting_approval is not a pause here (see the next two).
//   ringwatch_migration_check_failures_total{plan,cluster,check}
//       counter: gating checks that failed and paused the cluster: each check
//       (probe name: canary, connections, dns; "spec" for an unreadable
//       spec) named in a failed_check pause counts once for that pause
//   ringwatch_migration_approvals_pending{plan,cluster}
//       gauge: 1 while the cluster is awaiting_approval, else 0
//   ringwatch_migration_approvals_total{plan,cluster}
//       counter: approvals accepted (`approve` operator records)
//   ringwatch_migration_observe_evaluations_total{plan,cluster,check}
//   ringwatch_migration_observe_would_pause_total{plan,cluster,check}
//       counters: evaluations of an observe-mode check, and those that failed
//       (a gate would have paused); `check` as `migrate status` names it
//       (describe_check: "dns (observe only; backends b4)")
//   ringwatch_migration_engine_runs_total{plan}      counter: engines started on this journal
//   ringwatch_migration_journal_records{plan}        gauge: the last record's seq
//
// Series of a cluster exist from the journal's header on (its structure names
// every cluster and step), so rate() and absent() work from the first scrape.
//
// Thread-safety: every member function is thread-safe (one internal mutex).
// observe() runs on the engine's thread that appended the record, under the
// engine's lock, so it waits at most for one serialize() (measured: 11 ms for
// 200 clusters of 20 steps, 416 KB of text; a whole journal of 16,000
// records of them folds in 140 ms).

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "migration/journal.h"

namespace ringwatch::migration {

class MigrationMetrics {
 public:
  explicit MigrationMetrics(std::string plan);
  ~MigrationMetrics();
  MigrationMetrics(const MigrationMetrics&) = delete;
  MigrationMetrics& operator=(const MigrationMetrics&) = delete;

  // The `plan` label of a plan file: its stem ("lab-migration" for
  // "tools/examples/lab-migration.json").
  static std::string plan_label(const std::string& plan_file);

  // One record, in journal order. A record whose seq is not above the last
  // one folded is ignored (already counted).
  void observe(const Record& record);
  // Forgets everything and folds `records` (a whole journal, read_journal()).
  void rebuild(const std::vector<Record>& records);

  // The Prometheus text exposition format (version 0.0.4).
  std::string serialize() const;

 private:
  struct State;
  mutable std::mutex mutex_;
  std::string plan_;
  std::unique_ptr<State> state_;
};

}  // namespace ringwatch::migration
