#pragma once
// A migration plan: which clusters to migrate, the ordered steps of each, the
// checks around every step, the schedule (how many clusters at once, when
// not to run) and where to send notifications. One JSON file, validated like
// the cluster spec (lib/spec/json_cursor.h): every rejection is a
// spec::SpecError "<file>: <json pointer>: <expectation>", and the CLI exits 3.
// The format is documented in docs/migration.md.
//
// Variables. Every string in the plan may hold `${NAME}`; NAME is looked up in
// the variables given to parse_plan (`--var NAME=VALUE`). An unknown NAME is
// an error at that string's pointer: `undefined variable "NAME" (give it with
// --var NAME=VALUE)`; `$$` is a literal `$`. Substitution happens before any
// other check, so a substituted value is validated like a literal one.
//
// In the words of a hook's "run" (Hook), the hook variables (kHookVariables:
// ${cluster}, ${step}, ...) are not looked up in `vars`: they are kept as
// `${NAME}`, and `$$` as `$$`, to be filled in when the hook runs (hooks.h);
// a `--var` value substituted there has its `$` doubled, so it is not
// expanded again.
//
// Relative paths (a cluster's "spec") are resolved against the plan file's
// directory. parse_plan loads and validates every cluster's spec, so a plan
// that parses can be probed.
//
// Pure apart from reading the spec files; thread-safe.

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lib/spec/cluster_spec.h"

namespace ringwatch::migration {

using Vars = std::map<std::string, std::string>;

// One check around a step: a probe run in-process (probes::ProbeSet) and the
// thresholds its result must meet. A check passes when the probe's status is
// OK (or WARNING with allow_warning) and every threshold holds.
enum class CheckMode {
  gate,     // a failure pauses the cluster
  observe,  // evaluated and journaled, never pauses (thresholds being tuned)
};
const char* to_string(CheckMode mode);  // "gate", "observe"

struct CheckSpec {
  std::string probe;  // "canary" | "connections" | "dns"
  CheckMode mode = CheckMode::gate;
  bool allow_warning = false;
  // canary only: the round's figure "consistency_ratio" must be >= this.
  std::optional<double> min_consistency_ratio;
  // These backends must be in the cluster spec (as read when the check runs)
  // and no finding of this probe may name them with severity above info.
  std::vector<std::string> backends;
  // These backends must no longer be in the cluster spec.
  std::vector<std::string> absent_backends;
  friend bool operator==(const CheckSpec&, const CheckSpec&) = default;
};

struct Action {
  // argv[0] is looked up in PATH when it has no '/'. Empty: a step with
  // checks only. The engine adds RINGWATCH_CLUSTER, RINGWATCH_STEP,
  // RINGWATCH_ATTEMPT (1, 2, ...) and RINGWATCH_SPEC to the environment.
  std::vector<std::string> argv;
  std::chrono::milliseconds timeout{60000};
  int retries = 0;                          // extra attempts after the first fails
  std::chrono::milliseconds backoff{1000};  // before retry n: backoff * 2^(n-1)
  friend bool operator==(const Action&, const Action&) = default;
};

struct Verify {
  std::vector<CheckSpec> checks;
  // Polled every `interval` until all pass in one round or `deadline` passed
  // since the action finished (caches and proxies settle).
  std::chrono::milliseconds deadline{30000};
  std::chrono::milliseconds interval{1000};
  friend bool operator==(const Verify&, const Verify&) = default;
};

// Hooks (hooks.h, docs/migration.md "Hooks"): commands run when a cluster's
// migration fails, pauses, is aborted or finishes. They never change its state.
enum class HookKind { on_failure, on_pause, on_abort, on_finish };
const char* to_string(HookKind kind);  // "on_failure", "on_pause", "on_abort", "on_finish"
inline constexpr HookKind kHookKinds[] = {HookKind::on_failure, HookKind::on_pause,
                                          HookKind::on_abort, HookKind::on_finish};
// The names a hook's words may use as ${NAME}, filled in when it runs.
inline constexpr std::string_view kHookVariables[] = {
    "cluster", "step", "step_number", "hook", "reason", "detail", "report", "spec", "state_dir"};

struct Hook {
  // As a step's `run` (argv, never a shell); each word a template in which
  // ${NAME} of kHookVariables and $$ are still to be expanded (hooks.h).
  std::vector<std::string> argv;
  std::chrono::milliseconds timeout{60000};
  friend bool operator==(const Hook&, const Hook&) = default;
};
using Hooks = std::map<HookKind, Hook>;

struct Step {
  std::string name;  // unique within its cluster
  Action action;
  // An interrupted attempt (the engine died while it ran) may be run again.
  bool safe_to_rerun = false;
  // "approval": "before" (or the plan's "every_step"): the cluster waits in
  // awaiting_approval before the step's preflight until an operator approves.
  bool approval = false;
  std::vector<CheckSpec> preflight;
  Verify verify;
  // Run before the plan's hooks of the same kind, not instead of them; a
  // step has no on_finish (a cluster finishes once, after its last step).
  Hooks hooks;
  friend bool operator==(const Step&, const Step&) = default;
};

enum class ResumePolicy {
  automatic,  // after `resume_after_rounds` consecutive passing re-checks
  operator_only,
};
const char* to_string(ResumePolicy policy);  // "auto", "operator"

struct ClusterPlan {
  std::string name;         // unique within the plan
  std::string spec_path;    // absolute or relative to the working directory, after resolution
  spec::ClusterSpec spec;   // as loaded when the plan was parsed
  std::vector<Step> steps;  // at least one
  // The plan-level "preflight": checked before the first step, with and
  // before that step's own preflight (a cluster already unhealthy never starts).
  std::vector<CheckSpec> preflight;
  ResumePolicy resume = ResumePolicy::automatic;
  int resume_after_rounds = 3;
  std::chrono::milliseconds recheck_interval{2000};  // between re-checks while paused
  Hooks hooks;                                       // the plan-level "hooks", for every cluster
  friend bool operator==(const ClusterPlan&, const ClusterPlan&) = default;
};

// A time when no step may start. Times are UTC.
struct Blackout {
  enum class Kind { last_days_of_month, first_days_of_month, dates, hours };
  Kind kind = Kind::hours;
  int days = 0;                    // last_/first_days_of_month: 1..15
  std::vector<std::string> dates;  // dates: "YYYY-MM-DD", each a real date
  int from_hour = 0, to_hour = 0;  // hours: [from, to), 0..23 and 1..24; wraps when from >= to
  bool covers(std::chrono::system_clock::time_point when) const;
  // "the last 2 days of each month", "2026-12-24, 2026-12-31",
  // "every day 22:00-06:00 UTC", "the first 1 day of each month"
  std::string describe() const;
  friend bool operator==(const Blackout&, const Blackout&) = default;
};

struct Schedule {
  int max_parallel_clusters = 1;  // clusters migrating at once (a paused one counts)
  std::vector<Blackout> blackouts;
  // The first blackout that covers `when`, if any.
  const Blackout* blackout_at(std::chrono::system_clock::time_point when) const;
  friend bool operator==(const Schedule&, const Schedule&) = default;
};

struct Notifications {
  std::string webhook_url;       // empty: none; POSTs ringwatch.migration/v1 events
  std::string alertmanager_url;  // empty: none; a paused cluster is a firing alert
  friend bool operator==(const Notifications&, const Notifications&) = default;
};

struct Plan {
  std::string source;  // the file name as given
  Schedule schedule;
  Notifications notifications;
  std::vector<CheckSpec> preflight;   // copied into every ClusterPlan::preflight
  bool approve_every_step = false;    // "approval": "every_step": every Step::approval set
  Hooks hooks;                        // copied into every ClusterPlan::hooks
  std::vector<ClusterPlan> clusters;  // at least one
  const ClusterPlan* find_cluster(std::string_view name) const;
  friend bool operator==(const Plan&, const Plan&) = default;
};

// The checks of `checks` in `mode`, in order.
std::vector<CheckSpec> checks_in_mode(const std::vector<CheckSpec>& checks, CheckMode mode);
// "canary (consistency >= 0.99; warnings allowed)": how plans, logs and
// `migrate status` name a check.
std::string describe_check(const CheckSpec& check);

// Throws spec::SpecError.
Plan parse_plan(std::string_view json_text, const std::string& source_name, const Vars& vars);
Plan load_plan(const std::string& path, const Vars& vars);

// What `ringwatch migrate plan` prints: per cluster, its steps in order with
// the checks before and after each, and the blackout windows (marking one
// that covers `now`). Nothing runs.
std::string describe_plan(const Plan& plan, std::chrono::system_clock::time_point now);

}  // namespace ringwatch::migration
