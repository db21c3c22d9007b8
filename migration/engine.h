#pragma once
// The migration engine: runs a Plan, one state machine per cluster, and keeps
// every transition in the journal (journal.h) before acting on it.
//
// Per-cluster state machine (this comment is its spec). `i` is the current
// step; every arrow is one `state` record, written before the engine acts.
// Notifications in [brackets], hooks (hooks.h) in {braces}.
//
//   pending      -- slot free, no blackout -----------> preflight(0)     [started]
//   preflight(i) -- step i was skipped ---------------> done(i)
//                   (as do running(i) and verifying(i), resumed into after a skip)
//   preflight(i) -- step i has "approval" and no `approve` record yet
//                   --------------------------------> awaiting_approval(i)   [paused
//                                                         (reason "awaiting_approval")]
//   awaiting_approval(i) -- an operator's `approve` of step i (who, when:
//                   an `operator` record) ----------> preflight(i)  [resumed]
//                   (the checks run after the approval, right before the action;
//                   an approval of another step, or of a cluster not waiting, is refused)
//   preflight(i) -- preflight checks pass ------------> running(i)
//   preflight(i) -- a check fails --------------------> paused(failed_check -> preflight)
//   running(i)   -- spawn (held), `attempt` record, go, exit 0 --> verifying(i)
//                   (a step without `run` goes straight to verifying)
//   running(i)   -- attempt a fails, retries left ----> running(i), after backoff * 2^(a-1)
//   running(i)   -- attempt fails, no retries left ---> paused(failed_action -> running)
//                                   [failed] {on_failure}, then the record [paused] {on_pause}
//   verifying(i) -- every verify check passes in one round --> done(i)
//   verifying(i) -- deadline passed, a check fails ---> paused(failed_check -> verifying)
//   done(i)      -- another step follows -------------> preflight(i+1)
//   done(i)      -- it was the last step -------------> finished    [finished] {on_finish}
//   paused(failed_check) -- checks pass resume_after_rounds re-checks in a row,
//                           resume "auto" ------------> its resume phase [resumed]
//   paused(blackout)     -- no blackout covers now ---> its resume phase [resumed]
//   paused(any)          -- operator resume ----------> its resume phase [resumed]
//   any but paused(operator), finished, aborted
//                        -- operator pause -----------> paused(operator -> where it was)
//   any but finished, aborted -- operator abort ------> aborted       [aborted] {on_abort}
//   pending, preflight(i) -- a blackout covers now ---> paused(blackout -> pending|preflight)
//   (a blackout is checked before the approval: no cluster waits for one in a blackout)
//
// Every arrow into paused from another phase also runs {on_pause}.
//
// paused(reason -> phase) names the phase a resume returns to.
// While paused(failed_check) the engine re-runs the checks that failed (the
// preflight or the verify checks) every recheck_interval, and the alert stays
// firing with the latest diagnosis. Operator pause and abort of a cluster in
// running or verifying take effect at its next boundary: an action is never
// killed by an operator, and verifying ends with its round. A blackout stops
// new steps, never a step that has started. Resuming into `verifying` polls
// the verify checks with a new deadline; into `running` starts a new attempt.
//
// Observe-mode checks (plan.h, CheckMode::observe) never take an arrow: in
// preflight(i) and at the end of verifying(i) each runs in a round of its own
// and is journaled as an `observe` record; the arrows above read only the
// gating checks. The plan-level preflight is part of preflight(0).
//
// Hooks never take an arrow. They run on the cluster's thread once the record
// of their arrow is written (on_failure: once the last attempt's end is, and
// before the pause is written), at the top of its loop, before anything
// else: an operator's request waits for them. A hook holds its cluster
// (only its cluster) for at most its timeout plus the 2 s kill grace; a
// failing, hanging or unstartable one is journaled (a `hook` record, which
// replay ignores), logged and notified, and the cluster goes on exactly as
// if it had not run. A stop kills a running hook; hooks due after it are
// journaled as cancelled, not run. A hook runs at most once: a new engine
// does not run the hooks a crashed one owed.
//
// Checks: each cluster's thread gets its own ClusterChecks (checks.h) from
// EngineOptions::make_checks, by default a CheckRunner probing the cluster's
// spec. The engine reads only a round's verdict, its failures (a pause's
// detail: "<preflight|verify> failed at step N (name): <failures>") and its
// diagnosis (the pause's diagnosis, and the alert's). A round that ends after
// a stop is dropped unjournaled.
//
// Crash recovery (`run` on a state directory with a journal): every cluster
// continues from its last record. A finished step is never re-run. A step
// whose last attempt started and never ended was interrupted, and its
// command may still be running: kill -9 of an engine leaves its actions'
// process groups alive. So before anything else, on the cluster's thread:
//   1. The attempt's process group, as its `attempt` record names it (pgid,
//      the leader's start time, boot id: process_group.h), is looked for.
//      Not running: "gone". Running: the engine waits for it to end by
//      itself ("waited"), at most until the attempt's start plus the step's
//      timeout, when the dead engine would have killed it; still running
//      then: its whole group gets SIGTERM, then SIGKILL ("killed"). A stop
//      meanwhile kills the group as it would a running action, and leaves
//      the attempt open for the next engine.
//   2. Only then is the step decided: without safe_to_rerun the cluster goes
//      to paused(interrupted, resume_to running) (written first, so a crash
//      between the two records cannot turn it into a plain retry); then the
//      attempt's end is journaled (outcome "interrupted", `orphan` saying
//      which of the three happened). With safe_to_rerun it runs again as a
//      new attempt; without, an operator either resumes (runs it again) or
//      skips it.
// So two attempts of one step never run at once, across any number of
// crashes: an attempt's command runs only after its `attempt` record (with
// its group) is on disk (action.h: the child is held until then, and exits
// without running if the engine dies first), and a new attempt starts only
// once the group of the previous one is gone. Preflight and verify re-run
// from the start (checks are read-only). A paused cluster stays paused with
// its reason.
//
// Scheduling: clusters start in plan order while fewer than
// max_parallel_clusters have started and not ended (a paused cluster keeps
// its slot). Each started cluster runs on its own thread; one pausing never
// holds up another.
//
// `run` returns when every cluster is finished or aborted, or when asked to
// stop (Engine::stop(), SIGINT/SIGTERM in the CLI): then running actions are
// cancelled (their process groups killed) and their attempts left without an
// end in the journal, exactly as a crash leaves them, so the next run treats
// them as interrupted.
//
// Thread-safety: run() blocks; stop() may be called from any thread (and is
// async-signal-safe: it only stores an atomic flag).

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <ostream>
#include <stdexcept>
#include <string>

#include "migration/checks.h"
#include "migration/journal.h"
#include "migration/plan.h"

namespace ringwatch::migration {

struct EngineOptions {
  std::filesystem::path state_dir;
  std::ostream* log = nullptr;  // one line per transition and per failed check; may be null
  // Wall clock for blackouts and the journal (injectable for tests).
  std::function<std::chrono::system_clock::time_point()> now = [] {
    return std::chrono::system_clock::now();
  };
  std::chrono::milliseconds command_poll{200};  // how often commands.jsonl is read
  // Called after every journal append, from the thread that appended, before
  // the engine acts on the record (tests measure the cluster between steps).
  std::function<void(const Record&)> on_record;
  // DNS vantage for the dns probe (ProbeOptions::dns_vantage); empty: all.
  std::string dns_vantage;
  // Makes the checks of one cluster, on its thread when it starts running;
  // unset: a CheckRunner on the cluster's spec with dns_vantage.
  std::function<std::unique_ptr<ClusterChecks>(const ClusterPlan&)> make_checks;
};

// Another engine holds the state directory.
class StateInUse : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct RunSummary {
  std::map<std::string, Phase> clusters;  // where each ended
  bool stopped = false;                   // stop() was called before the end
  // 0 every cluster finished; 2 some aborted; 3 stopped before the end.
  int exit_code() const;
};

class Engine {
 public:
  // Throws StateInUse (naming the holder) when the lock is taken, and
  // JournalError when the journal belongs to a plan with other clusters or
  // steps ("... was started with plan X; use a new --state directory").
  Engine(Plan plan, EngineOptions options);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  RunSummary run();
  void stop() noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Applies an operator command to STATE: through the running engine when there
// is one (waits up to `wait` for it to accept the command), or directly in the
// journal under the lock. Returns what happened, for the operator; throws
// std::runtime_error with the reason when the command cannot be taken.
std::string submit_command(const std::filesystem::path& state_dir, const Command& command,
                           std::chrono::milliseconds wait = std::chrono::seconds(10));

}  // namespace ringwatch::migration
