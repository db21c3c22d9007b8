#pragma once
// What `ringwatch migrate status --watch` (and `migrate run` on a terminal)
// shows of a migration: per cluster its step, phase, elapsed times, the
// latest verdict of its gating checks and an ETA, computed from the journal's
// records alone (read-only: the watcher never takes the state lock).
//
// Step time. A step's *working time* is the time its cluster spent in
// preflight, running or verifying at that step: time paused, awaiting an
// approval or pending does not count, and neither does the time no engine
// ran (a `run` record ends the previous engine's time at the record before
// it). A step is *done* once its `done` state record is journaled; a skipped
// step is not a sample (it took no work).
//
// ETA rule (docs/migration.md, "Watching a migration"). A step's estimate is
//   1. the mean working time of the steps of the same name done on other
//      clusters of this journal (the step's own history), else
//   2. the mean working time of every step done so far in this journal, on
//      any cluster, else
//   3. unknown.
// A cluster's ETA is the sum of the estimates of its steps still open after
// the current one, plus what is left of the current step's estimate (its
// estimate minus its working time so far, never below zero); unknown when any
// of them is. Paused and awaiting_approval clusters keep their ETA (the clock
// of work stands still; `held` says so); finished and aborted ones have none.
//
// Verdict. The journal holds a gating check's verdict in the state records
// the engine writes on it: preflight -> running "preflight checks passed",
// verifying -> done "verify checks passed", paused(failed_check) (the
// failures, and the diagnosis), and a resume after passing re-checks; a
// verify round that fails before its deadline is a `verify_failing` record
// (written when its failures change), shown as failing "not passing yet".
//
// Pure and thread-safe: functions of records and a time.

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "migration/journal.h"

namespace ringwatch::migration {

struct CheckVerdict {
  enum class Kind {
    none,     // no gating check has been decided at this step yet
    pending,  // the cluster is evaluating its checks now (preflight, verifying)
    passed,
    failing
  };
  Kind kind = Kind::none;
  std::string what;       // "preflight", "verify" or "re-check"
  std::string detail;     // failing: "verify failed at step 2 (roll): canary: ..."
  std::string diagnosis;  // failing: the report's diagnosis ("" when none)
};

enum class EtaBasis {
  step_history,  // every estimate came from the same steps on other clusters
  mean_so_far,   // every estimate came from the mean of all steps done
  mixed          // some from each
};

struct ClusterView {
  std::string name;
  Phase phase = Phase::pending;
  PauseReason reason = PauseReason::none;
  int step_number = 0;  // counted from 1, as `status` counts; 0 past the last step
  int steps_total = 0;
  std::string step_name;                         // "" past the last step
  int attempt = 0;                               // attempts of the current step so far
  std::chrono::milliseconds step_elapsed{0};     // wall time since the step began
  std::chrono::milliseconds overall_elapsed{0};  // wall time since the cluster started
  std::chrono::milliseconds step_working{0};     // working time of the current step
  CheckVerdict verdict;
  std::optional<std::chrono::milliseconds> eta;  // nullopt: unknown, or the cluster ended
  EtaBasis eta_basis = EtaBasis::mean_so_far;
  int samples = 0;    // done steps behind the ETA's estimates
  bool held = false;  // paused or awaiting approval: the ETA does not run down
  bool ended() const { return phase == Phase::finished || phase == Phase::aborted; }
};

struct ProgressView {
  std::string plan;
  std::chrono::system_clock::time_point at{};  // the time the view is for
  std::vector<ClusterView> clusters;           // in plan order
  bool all_ended() const;                      // every cluster finished or aborted
};

// The view of `records` (a journal, as read_journal() returns it) at `now`.
ProgressView progress_view(const std::vector<Record>& records,
                           std::chrono::system_clock::time_point now);

// A duration for people: "0s", "42s", "3m05s", "1h02m"; whole seconds
// rounded up (an ETA never says 0s while work is left).
std::string format_duration(std::chrono::milliseconds duration);

}  // namespace ringwatch::migration
