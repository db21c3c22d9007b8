#pragma once
// Hooks: the commands a plan runs when a cluster's migration fails, pauses,
// is aborted or finishes (plan.h: Hook; docs/migration.md, "Hooks"), for the
// people and systems around it: "roll the proxies back", "page the on-call".
// A hook reports; it never steers: nothing it does, and no way it fails or
// hangs, changes a cluster's state.
//
// When. Each kind fires at one arrow of the state machine (engine.h), on the
// cluster's own thread, once the record of that arrow is in the journal:
//   on_failure  a step's action failed and no retries are left: after the
//               last attempt's `attempt_end`, before the paused(failed_action)
//               record (whose on_pause follows)
//   on_pause    every entry into paused from another phase, whatever the
//               reason (failed_check, failed_action, operator, blackout,
//               interrupted). A new reason while already paused (an
//               operator's pause of a cluster a check paused) is not an
//               entry, and awaiting_approval is not paused
//   on_abort    the cluster was aborted (an operator's abort, in any phase)
//   on_finish   the cluster finished its last step: once per cluster
// Which. The hook of that kind of the step the cluster is at (a step may
// have on_failure, on_pause and on_abort), then the plan's (any of the
// four): a step's hook adds to the plan's, it never replaces it. They run
// one after the other, the second whatever became of the first.
//
// How. Like a step's action (action.h): argv, never a shell, in its own
// session and process group, stdin /dev/null, output appended to
// STATE/logs/<cluster>/hooks.log; past its timeout the whole group gets
// SIGTERM, then SIGKILL 2 s later. So a hook holds its cluster, and only
// its cluster, for at most its timeout + 2 s (a finished or aborted cluster
// no longer holds a slot of max_parallel_clusters meanwhile); an operator's
// command is taken at the cluster's next boundary, after its hooks. Stopping the
// engine (SIGINT, SIGTERM) kills a running hook's group as it kills an
// action's; a hook due after the stop does not start (its record says
// "cancelled" either way).
//
// Variables, expanded in each word of the hook's run when it runs (${NAME};
// `$$` is `$`; kHookVariables in plan.h):
//   cluster      the cluster's name
//   step         the name of the step the cluster is at (on_finish: its last)
//   step_number  that step's number, counted from 1
//   hook         "on_failure", "on_pause", "on_abort" or "on_finish"
//   reason       on_pause: the pause's reason; on_failure: "failed_action";
//                on_abort: "operator"; on_finish: "finished"
//   detail       the transition's line for people: the pause's detail,
//                "action failed after 2 attempts: exit status 1", "aborted by
//                operator at step 3 (drain-b1) in paused", "every step done"
//   report       the absolute path of a JSON file, STATE/hooks/<cluster>/<seq>-<hook>.json,
//                holding the report of the cluster's last check round (as
//                `ringwatch probe --format json` prints it), or `null` when
//                no check has run on the cluster since the engine started;
//                <seq> is the journal record that fired the hook
//   spec         the path of the cluster's spec
//   state_dir    the state directory, as an absolute path
// The environment is the engine's plus RINGWATCH_CLUSTER, RINGWATCH_STEP,
// RINGWATCH_SPEC, RINGWATCH_HOOK, RINGWATCH_REASON, RINGWATCH_DETAIL and
// RINGWATCH_REPORT (no RINGWATCH_ATTEMPT: a hook is not an attempt).
//
// Outcome. Every run ends in one `hook` record (journal.h: hook, scope
// "step" or "plan", step, reason, outcome as an action's, detail,
// duration_ms, report_file), one log line
//   lab: hook on_pause (plan) at step 2 (roll-onto-b4) succeeded (31 ms)
//   lab: hook on_pause (plan) at step 2 (roll-onto-b4) failed: exit status 1
//        (12 ms); the migration's state is unchanged
// and one webhook event "hook" (notifier.h). replay() ignores hook records:
// a hook's outcome cannot change a cluster's state, in this engine or in the
// next.
//
// Crashes. A hook runs at most once: its record is written when it ends, and
// a new engine does not look for hooks that a dead one left unfinished
// (their process groups run on, unsupervised, as a dead engine's actions
// would) nor for hooks it never started.
//
// Thread-safety: a HookRunner, and the checks it wraps, belong to one
// cluster's thread. The free functions are pure.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "migration/checks.h"
#include "migration/journal.h"
#include "migration/notifier.h"
#include "migration/plan.h"

namespace ringwatch::migration {

// Hooks of one kind, due for a cluster.
struct HookFiring {
  HookKind kind = HookKind::on_pause;
  int step = 0;           // the index of the step the cluster is at (steps.size(): finished)
  std::string reason;     // ${reason}
  std::string detail;     // ${detail}
  std::uint64_t seq = 0;  // the journal record that fired them
};

// The hooks a `state` record fires, given the phase the cluster left (pure):
// on_pause, on_abort or on_finish; nullopt for every other record. on_failure
// is not a transition: the engine fires it itself.
std::optional<HookFiring> hook_firing(Phase from, const Record& written);

// The hooks of `kind` a cluster runs at step `step`, in order: the step's,
// then the plan's. `scope` is "step" or "plan".
struct ScopedHook {
  const char* scope;
  const Hook* hook;
};
std::vector<ScopedHook> hooks_for(const ClusterPlan& cluster, HookKind kind, int step);

// One word of a hook's run with its variables filled in: ${NAME} for a name
// in `values`, `$$` as `$`; anything else is left as it is.
std::string expand_hook_word(std::string_view word,
                             const std::map<std::string, std::string>& values);

// Runs the hooks of one cluster, on its thread.
class HookRunner {
 public:
  // What a hook's run needs from the engine.
  struct Context {
    std::filesystem::path state_dir;
    std::function<void(Record)> journal;  // appends; throws JournalError when it cannot
    std::function<void(const std::string&)> log;
    Notifier* notifier = nullptr;  // null: no notifications
    std::function<std::chrono::system_clock::time_point()> now;
    const std::atomic<bool>* stopping = nullptr;  // kills a running hook; none start after
  };
  HookRunner(const ClusterPlan& cluster, Context context);

  // `checks` as they were, also keeping the report of their last round for
  // ${report} (shared with the runner: either may be destroyed first).
  std::unique_ptr<ClusterChecks> keep_reports(std::unique_ptr<ClusterChecks> checks);

  // Runs every hook `firing` calls for, one after the other; returns when
  // the last has ended (at most the sum of their timeouts, plus 2 s each).
  void run(const HookFiring& firing);

 private:
  std::string write_report(const HookFiring& firing);
  void run_one(const HookFiring& firing, const ScopedHook& scoped, const std::string& report);
  void report_outcome(const HookFiring& firing, const Record& record);

  const ClusterPlan& cluster_;
  Context context_;
  std::string state_dir_;  // absolute, as hooks see it
  std::shared_ptr<std::optional<report::Report>> last_report_;
};

}  // namespace ringwatch::migration
