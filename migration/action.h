#pragma once
// Runs one attempt of a step's action: a command, never a shell.
//
// The child is forked in its own session and process group, with stdin from
// /dev/null and stdout and stderr appended to `log_path`, and the environment
// of the engine plus RINGWATCH_CLUSTER, RINGWATCH_STEP, RINGWATCH_ATTEMPT and
// RINGWATCH_SPEC (and the context's `environment`). It is held before its
// exec until `on_spawned` has returned with the group's name
// (process_group.h), so the engine can journal which group is about to run
// before anything runs; if on_spawned throws, or the engine dies first (the
// handshake socket closes), the child exits without running the command.
// When it runs past the timeout (or `cancel` becomes true) its whole process
// group gets SIGTERM, then SIGKILL after a grace period, and the attempt is
// reported as timed out (cancelled). run_action always returns after at most
// timeout + grace + a few milliseconds (plus whatever on_spawned takes).
//
// Thread-safety: run_action may be called from several threads at once. The
// child is made with fork() and makes only async-signal-safe calls before
// its exec; it closes every descriptor but its own before it waits, so a
// child of one thread never holds another thread's handshake open.

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "migration/plan.h"
#include "migration/process_group.h"

namespace ringwatch::migration {

struct ActionContext {
  std::string cluster;
  std::string step;
  int attempt = 1;  // 0: no RINGWATCH_ATTEMPT (a hook is not an attempt)
  std::string spec_path;
  // Set after the RINGWATCH_* above, replacing any of the same name (a
  // hook's RINGWATCH_HOOK, RINGWATCH_REASON, ...).
  std::vector<std::pair<std::string, std::string>> environment;
  // What the log's lines about this run call it; empty: "cluster C step S attempt N".
  std::string log_label;
  std::filesystem::path log_path;  // created (with parent directories) if missing
  std::chrono::milliseconds kill_grace{2000};
  // Called once with the child's group, before its command may start (see
  // above); unset: it starts at once. May throw: the command never starts
  // and run_action rethrows.
  std::function<void(const ProcessGroup&)> on_spawned;
};

enum class ActionOutcome {
  succeeded,        // exit status 0
  failed,           // exit status other than 0, or killed by a signal it did not get from us
  timed_out,        // ran past the timeout; its process group was killed
  cancelled,        // `cancel` became true; its process group was killed
  could_not_start,  // no such program, not executable, log not writable
};
const char* to_string(ActionOutcome outcome);  // "succeeded", "failed", ...

struct ActionResult {
  ActionOutcome outcome = ActionOutcome::succeeded;
  int exit_status = -1;  // when it exited; -1 otherwise
  // One line for the journal and notifications: "exit status 1",
  // "killed by signal 9", "timed out after 60 s", "cannot run \"x\": No such
  // file or directory".
  std::string detail;
  std::string output_tail;  // the log's last lines of this attempt (at most 2 KiB)
  std::chrono::milliseconds duration{0};
  bool ok() const { return outcome == ActionOutcome::succeeded; }
};

ActionResult run_action(const Action& action, const ActionContext& context,
                        const std::atomic<bool>* cancel = nullptr);

}  // namespace ringwatch::migration
