#include "migration/engine.h"

#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <sstream>
#include <streambuf>
#include <thread>
#include <utility>
#include <vector>

#include "lib/util/time.h"
#include "migration/action.h"
#include "migration/checks.h"
#include "migration/engine_records.h"
#include "migration/hooks.h"
#include "migration/notifier.h"

namespace ringwatch::migration {

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

// SIGTERM to SIGKILL, for an action's group (ours, or one a dead engine left).
constexpr std::chrono::milliseconds kKillGrace{2000};

// A stream buffer that hands every complete line to `sink`: the notifier logs
// through it into the engine's log, under the engine's log lock. Used by one
// writer at a time (the notifier serialises its own writes).
class LineForwarder : public std::streambuf {
 public:
  explicit LineForwarder(std::function<void(const std::string&)> sink) : sink_(std::move(sink)) {}

 protected:
  int overflow(int c) override {
    if (c == traits_type::eof()) return traits_type::not_eof(c);
    if (c == '\n') {
      sink_(line_);
      line_.clear();
    } else {
      line_ += static_cast<char>(c);
    }
    return c;
  }

 private:
  std::function<void(const std::string&)> sink_;
  std::string line_;
};

std::map<std::string, std::vector<std::string>> structure_of(const Plan& plan) {
  std::map<std::string, std::vector<std::string>> structure;
  for (const auto& cluster : plan.clusters) {
    auto& names = structure[cluster.name];
    for (const auto& step : cluster.steps) names.push_back(step.name);
  }
  return structure;
}

std::string describe_structure(const std::map<std::string, std::vector<std::string>>& structure) {
  std::string out;
  for (const auto& [cluster, steps] : structure) {
    if (!out.empty()) out += "; ";
    out += cluster + ": ";
    for (std::size_t i = 0; i < steps.size(); ++i) out += (i ? ", " : "") + steps[i];
  }
  return out;
}

}  // namespace

int RunSummary::exit_code() const {
  if (stopped) return 3;
  for (const auto& [name, phase] : clusters) {
    if (phase != Phase::finished) return 2;
  }
  return 0;
}

struct Engine::Impl {
  Plan plan;
  EngineOptions options;
  std::optional<StateLock> lock;
  std::unique_ptr<Journal> journal;
  std::unique_ptr<Notifier> notifier;
  std::ostringstream discarded_log;
  std::ostream* log = nullptr;
  std::mutex log_mutex;  // guards *log; taken after `mutex`, never before
  // The notifier's own log lines, forwarded line by line to log_line.
  std::unique_ptr<LineForwarder> notifier_log_buffer;
  std::unique_ptr<std::ostream> notifier_log;

  std::mutex mutex;  // guards journal, state
  std::condition_variable changed;
  JournalState state;
  std::atomic<bool> stopping{false};
  // Hooks due per cluster (hooks.h), queued by write_locked for the
  // cluster's thread, which runs them at the top of its loop. Under `mutex`.
  std::map<std::string, std::vector<HookFiring>> due_hooks;

  ClusterProgress snapshot(const std::string& name) {
    std::lock_guard guard(mutex);
    return *state.find(name);
  }

  void log_line(const std::string& line) {
    std::lock_guard guard(log_mutex);
    *log << util::format_rfc3339_ms(options.now()) << " " << line << std::endl;
  }

  // Writes `record` unless an operator's request is due first (the request
  // wins: an auto-resume must not slip in between an accepted pause and its
  // boundary). True when written.
  bool write_unless_requested(Record record) {
    std::unique_lock guard(mutex);
    if (request_record(*state.find(record.cluster))) return false;
    write_locked(std::move(record));
    return true;
  }

  // Journal first, then memory, then the world (notifications, the test hook).
  void write(Record record) {
    std::unique_lock guard(mutex);
    write_locked(std::move(record));
  }

  void write_locked(Record record) {
    const ClusterProgress* before = state.find(record.cluster);
    const Phase from = before ? before->phase : Phase::pending;
    const PauseReason from_reason = before ? before->reason : PauseReason::none;
    const Record& written = journal->append(std::move(record));
    apply(state, written);
    if (auto firing = hook_firing(from, written)) due_hooks[written.cluster].push_back(*firing);
    if (written.type == Record::Type::state) {
      const ClusterProgress& cluster = *state.find(written.cluster);
      std::string line =
          written.cluster + ": " + to_string(from) + " -> " + to_string(written.phase);
      if (written.phase == Phase::paused)
        line += std::string(" (") + to_string(written.reason) + ")";
      line += " at " + step_label(cluster, written.step);
      if (!written.detail.empty()) line += ": " + written.detail;
      log_line(line);
      notify_transition(from, from_reason, written, cluster);
    } else if (written.type == Record::Type::operator_command) {
      // "operator pause lab", "operator pause lab: <detail>", "operator skip lab rejected: <why>"
      std::string line = "operator " + written.command +
                         (written.cluster.empty() ? "" : " " + written.cluster) +
                         (written.outcome == "rejected" ? " rejected" : "");
      if (!written.detail.empty()) line += ": " + written.detail;
      log_line(line);
    } else if (written.type == Record::Type::observe) {
      log_line(written.cluster + ": observe " + written.check + " at " +
               step_label(*state.find(written.cluster), written.step) + " (" +
               to_string(written.phase) +
               "): " + (written.outcome == "passed" ? "passed" : "would pause: " + written.detail));
    } else if (written.type == Record::Type::attempt_end) {
      log_line(written.cluster + ": attempt " + std::to_string(written.attempt) + " of " +
               step_label(*state.find(written.cluster), written.step) + " " + written.outcome +
               (written.detail.empty() ? "" : ": " + written.detail));
    }
    if (options.on_record) options.on_record(written);
    changed.notify_all();
  }

  void notify_transition(Phase from, PauseReason from_reason, const Record& record,
                         const ClusterProgress& cluster) {
    if (!notifier) return;
    Notification note;
    note.cluster = record.cluster;
    note.step = record.step < static_cast<int>(cluster.step_names.size())
                    ? cluster.step_names[static_cast<std::size_t>(record.step)]
                    : std::string();
    note.detail = record.detail;
    note.diagnosis = record.diagnosis;
    note.at = options.now();
    // Awaiting an approval is notified like a pause (reason
    // "awaiting_approval"), and the approval like a resume.
    const bool held = from == Phase::paused || from == Phase::awaiting_approval;
    if (record.phase == Phase::paused) {
      if (from == Phase::paused && from_reason == record.reason) return;
      note.event = EventKind::paused;
      note.reason = to_string(record.reason);
    } else if (record.phase == Phase::awaiting_approval) {
      note.event = EventKind::paused;
      note.reason = "awaiting_approval";
    } else if (held && record.phase == Phase::aborted) {
      note.event = EventKind::aborted;
    } else if (held) {
      note.event = EventKind::resumed;
    } else if (from == Phase::pending && record.phase == Phase::preflight) {
      note.event = EventKind::started;
    } else if (record.phase == Phase::finished) {
      note.event = EventKind::finished;
    } else if (record.phase == Phase::aborted) {
      note.event = EventKind::aborted;
    } else {
      return;
    }
    notifier->notify(note);
  }

  // Sleeps up to `duration`, waking early for a stop or an operator request
  // on `cluster`; true when it slept the whole time.
  bool wait(const std::string& cluster, std::chrono::milliseconds duration) {
    std::unique_lock guard(mutex);
    const auto until = SteadyClock::now() + duration;
    while (SteadyClock::now() < until) {
      if (stopping) return false;
      const ClusterProgress& progress = *state.find(cluster);
      if (request_record(progress)) return false;
      changed.wait_until(guard, std::min(until, SteadyClock::now() + 100ms));
    }
    return !stopping;
  }

  // Starts cluster `name` (pending -> preflight(0)) if a slot is free and no
  // cluster before it in the plan still waits for one; checked and written
  // in one critical section, so two clusters cannot take the last slot.
  bool try_start(const std::string& name) {
    std::lock_guard guard(mutex);
    auto waiting = [](const ClusterProgress& c) {
      return c.phase == Phase::pending ||
             (c.phase == Phase::paused && c.resume_to == Phase::pending &&
              c.reason != PauseReason::operator_request);
    };
    int started = 0;
    for (const auto& [other_name, other] : state.clusters) {
      if (!other.terminal() && !waiting(other) &&
          !(other.phase == Phase::paused && other.resume_to == Phase::pending)) {
        ++started;
      }
    }
    if (started >= plan.schedule.max_parallel_clusters) return false;
    for (const auto& cluster : plan.clusters) {  // plan order: earlier ones first
      if (cluster.name == name) break;
      if (waiting(*state.find(cluster.name))) return false;
    }
    const ClusterProgress& progress = *state.find(name);
    if (request_record(progress)) return false;
    write_locked(state_record(progress, Phase::preflight, 0, "started"));
    return true;
  }

  const Blackout* blackout_now() const { return plan.schedule.blackout_at(options.now()); }

  std::unique_ptr<ClusterChecks> make_checks(const ClusterPlan& cluster) const {
    if (options.make_checks) return options.make_checks(cluster);
    return std::make_unique<CheckRunner>(cluster.spec_path, options.dns_vantage);
  }

  // The hooks queued for `cluster`, taken off the queue.
  std::vector<HookFiring> take_due_hooks(const std::string& cluster) {
    std::lock_guard guard(mutex);
    return std::exchange(due_hooks[cluster], {});
  }

  std::uint64_t last_seq() {
    std::lock_guard guard(mutex);
    return state.last_seq;
  }

  HookRunner::Context hook_context() {
    HookRunner::Context context;
    context.state_dir = options.state_dir;
    context.journal = [this](Record record) { write(std::move(record)); };
    context.log = [this](const std::string& line) { log_line(line); };
    context.notifier = notifier.get();
    context.now = options.now;
    context.stopping = &stopping;
    return context;
  }

  // A step's action failed for good: say so before the pause that follows.
  void notify_failed(const std::string& cluster, const std::string& step,
                     const std::string& detail) {
    if (!notifier) return;
    Notification note;
    note.event = EventKind::failed;
    note.cluster = cluster;
    note.step = step;
    note.reason = "failed_action";
    note.detail = detail;
    note.at = options.now();
    notifier->notify(note);
  }

  struct ClusterRun;
  void poll_commands(std::uint64_t& offset);
  bool all_ended() {
    std::lock_guard guard(mutex);
    return std::all_of(state.clusters.begin(), state.clusters.end(),
                       [](const auto& entry) { return entry.second.terminal(); });
  }
};

// One cluster's state machine (engine.h's header comment), on the cluster's
// own thread: one method per phase. Each reads the cluster as the journal
// last left it, writes at most one transition (or waits), and returns to the
// loop, which reads it again; a method that sees `stopping` after a check
// round or an action returns without writing, as a crash would.
struct Engine::Impl::ClusterRun {
  ClusterRun(Impl& owner, const ClusterPlan& cluster_plan)
      : engine(owner),
        plan(cluster_plan),
        hooks(cluster_plan, owner.hook_context()),
        checks(hooks.keep_reports(owner.make_checks(cluster_plan))) {}

  void run() {
    if (!settle_interrupted_attempts()) {
      run_due_hooks();  // the engine stopped: journaled as not run
      return;
    }
    while (!engine.stopping) {
      run_due_hooks();
      const ClusterProgress progress = engine.snapshot(plan.name);
      if (progress.terminal()) return;
      if (progress.phase != last_phase) {
        // Every pause counts its passing re-checks from zero.
        if (progress.phase == Phase::paused) passing_rounds = 0;
        last_phase = progress.phase;
      }
      if (take_request() || finish_skipped_step(progress)) continue;
      switch (progress.phase) {
        case Phase::pending:
          pending(progress);
          break;
        case Phase::preflight:
          preflight(progress);
          break;
        case Phase::running:
          running(progress, step_at(progress.step));
          break;
        case Phase::verifying:
          verifying(progress, step_at(progress.step));
          break;
        case Phase::done:
          done(progress);
          break;
        case Phase::paused:
          paused(progress);
          break;
        case Phase::awaiting_approval:
          awaiting_approval(progress);
          break;
        case Phase::aborted:
        case Phase::finished:
          return;
      }
    }
    run_due_hooks();  // after a stop: journaled as not run
  }

 private:
  // The hooks the transitions just written fired (hooks.h), in order.
  void run_due_hooks() {
    for (const HookFiring& firing : engine.take_due_hooks(plan.name)) hooks.run(firing);
  }

  const Step& step_at(int i) const { return plan.steps[static_cast<std::size_t>(i)]; }

  // The checks before step i: before the first, the plan-level preflight,
  // then the step's own.
  std::vector<CheckSpec> preflight_checks(int i) const {
    std::vector<CheckSpec> before = i == 0 ? plan.preflight : std::vector<CheckSpec>{};
    const auto& own = step_at(i).preflight;
    before.insert(before.end(), own.begin(), own.end());
    return before;
  }

  // Attempts a previous engine left without an end (engine.h, "Crash
  // recovery"): first what became of the attempt's process group, then what
  // the step does next. False when the engine was stopped meanwhile.
  bool settle_interrupted_attempts() {
    const ClusterProgress progress = engine.snapshot(plan.name);
    if (progress.terminal()) return true;
    for (std::size_t i = 0; i < progress.steps.size(); ++i) {
      if (!progress.steps[i].in_flight) continue;
      const auto orphan = outlast_group(progress, static_cast<int>(i));
      if (!orphan) return false;
      end_interrupted_attempt(static_cast<int>(i), *orphan);
    }
    return true;
  }

  // The interrupted attempt's group: "gone" already, "waited" for until it
  // ended by itself (at most until the attempt's start plus the step's
  // timeout, when the dead engine would have killed it), or "killed" then;
  // "" when the journal names no group. nullopt when the engine was stopped
  // while it waited: the group is killed as a running action would be, and
  // the attempt stays open for the next engine.
  std::optional<std::string> outlast_group(const ClusterProgress& progress, int index) {
    const StepProgress& step = progress.steps[static_cast<std::size_t>(index)];
    if (!step.group.known()) return std::string();
    if (!group_alive(step.group)) return std::string("gone");
    const std::string group = "process group " + std::to_string(step.group.pgid);
    const auto deadline = step.attempt_started + step_at(index).action.timeout;
    engine.log_line(plan.name + ": attempt " + std::to_string(step.attempts) + " of " +
                    step_label(progress, index) + " still runs from the previous engine (" + group +
                    "); waiting for it to end, until " + util::format_rfc3339_ms(deadline));
    while (group_alive(step.group)) {
      if (engine.stopping) {
        stop_group(step.group, kKillGrace);
        return std::nullopt;
      }
      if (std::chrono::system_clock::now() >= deadline) {
        engine.log_line(plan.name + ": " + group + " still runs at its timeout; killing it");
        stop_group(step.group, kKillGrace);
        return std::string("killed");
      }
      std::this_thread::sleep_for(100ms);
    }
    return std::string("waited");
  }

  // Journals the end of an interrupted attempt. A step that is not safe to
  // re-run pauses first: a crash between the two records must not let the
  // next engine treat it as a plain retry.
  void end_interrupted_attempt(int index, const std::string& orphan) {
    const ClusterProgress progress = engine.snapshot(plan.name);
    const StepProgress& step = progress.steps[static_cast<std::size_t>(index)];
    const bool rerun = step_at(index).safe_to_rerun;
    if (!rerun &&
        !(progress.phase == Phase::paused && progress.reason == PauseReason::interrupted)) {
      engine.write(pause_record(progress, PauseReason::interrupted, Phase::running,
                                step_label(progress, index) +
                                    " was interrupted and is not safe to re-run: check it by "
                                    "hand, then resume (runs it again) or skip it"));
    }
    Record end;
    end.type = Record::Type::attempt_end;
    end.cluster = plan.name;
    end.step = index;
    end.attempt = step.attempts;
    end.outcome = "interrupted";
    end.orphan = orphan;
    end.detail = "the engine stopped while it ran";
    if (orphan == "gone") end.detail += "; nothing of it was left running";
    if (orphan == "waited") end.detail += "; it ran on and ended by itself (outcome unknown)";
    if (orphan == "killed") end.detail += "; it ran on past its timeout and its group was killed";
    engine.write(end);
    if (rerun) {
      engine.log_line(plan.name + ": " + step_label(progress, index) +
                      " was interrupted; it is safe to re-run, so it runs again");
    }
  }

  // An operator's pause, resume or abort, due at this boundary.
  bool take_request() {
    std::optional<Record> record;
    {
      std::lock_guard guard(engine.mutex);
      record = request_record(*engine.state.find(plan.name));
    }
    if (record) engine.write(std::move(*record));
    return record.has_value();
  }

  // An operator skipped the step this cluster is in: it is done.
  bool finish_skipped_step(const ClusterProgress& progress) {
    const bool in_step = progress.phase == Phase::preflight || progress.phase == Phase::running ||
                         progress.phase == Phase::verifying;
    if (!in_step) return false;
    const StepProgress& step = progress.steps[static_cast<std::size_t>(progress.step)];
    if (step.outcome != StepProgress::Outcome::skipped) return false;
    engine.write(state_record(progress, Phase::done, progress.step, step.detail));
    return true;
  }

  // pending -> preflight(0) once a slot is free, or paused(blackout).
  void pending(const ClusterProgress& progress) {
    if (pause_for_blackout(progress, Phase::pending)) return;
    if (!engine.try_start(plan.name)) engine.wait(plan.name, 200ms);
  }

  // preflight(i) -> running(i), paused(failed_check) or paused(blackout).
  void preflight(const ClusterProgress& progress) {
    if (pause_for_blackout(progress, Phase::preflight)) return;
    const StepProgress& journaled = progress.steps[static_cast<std::size_t>(progress.step)];
    if (step_at(progress.step).approval && !journaled.approved) {
      engine.write(state_record(progress, Phase::awaiting_approval, progress.step,
                                "waits for an operator's approval (ringwatch migrate approve "
                                "--cluster " +
                                    plan.name + " --step " + step_at(progress.step).name + ")"));
      return;
    }
    const std::vector<CheckSpec> before = preflight_checks(progress.step);
    if (!observe(progress, before, Phase::preflight)) return;
    const std::vector<CheckSpec> gates = checks_in_mode(before, CheckMode::gate);
    if (gates.empty()) {
      engine.write(state_record(progress, Phase::running, progress.step, ""));
      return;
    }
    const CheckRound round = checks->run(gates);
    if (engine.stopping) return;
    if (round.passed) {
      engine.write(
          state_record(progress, Phase::running, progress.step, "preflight checks passed"));
    } else {
      pause_for_checks(progress, Phase::preflight, round, "preflight");
    }
  }

  // running(i) -> verifying(i), running(i) after a backoff, or
  // paused(failed_action).
  void running(const ClusterProgress& progress, const Step& step) {
    if (step.action.argv.empty()) {
      engine.write(state_record(progress, Phase::verifying, progress.step, "no action"));
      return;
    }
    if (settle_attempts_before_the_stop(progress, step)) return;
    const ActionResult result = attempt(progress, step);
    if (result.outcome == ActionOutcome::cancelled) return;  // stays in flight: as a crash
    if (result.ok()) {
      engine.write(state_record(progress, Phase::verifying, progress.step, "action succeeded"));
    } else {
      retry_or_pause(progress, step, result);
    }
  }

  // The engine stopped after an attempt ended but before it moved on: the
  // journal says what comes next. True when that was written.
  bool settle_attempts_before_the_stop(const ClusterProgress& progress, const Step& step) {
    const StepProgress& done_so_far = progress.steps[static_cast<std::size_t>(progress.step)];
    if (done_so_far.attempts > 0 && done_so_far.last_outcome == "succeeded") {
      engine.write(state_record(progress, Phase::verifying, progress.step,
                                "the action had succeeded before the engine stopped"));
      return true;
    }
    if (done_so_far.failed_attempts > step.action.retries) {
      engine.write(
          pause_record(progress, PauseReason::failed_action, Phase::running,
                       "action failed after " + std::to_string(done_so_far.failed_attempts) +
                           " attempts (before the engine stopped): " + done_so_far.detail));
      return true;
    }
    return false;
  }

  // One attempt of the step's action, journaled (with its process group)
  // before its command starts and, unless cancelled by a stop, after it ends.
  ActionResult attempt(const ClusterProgress& progress, const Step& step) {
    Record attempt;
    attempt.type = Record::Type::attempt;
    attempt.cluster = plan.name;
    attempt.step = progress.step;
    attempt.attempt = progress.steps[static_cast<std::size_t>(progress.step)].attempts + 1;
    bool journaled = false;
    ActionContext context;
    context.cluster = plan.name;
    context.step = step.name;
    context.attempt = attempt.attempt;
    context.spec_path = plan.spec_path;
    context.log_path = engine.options.state_dir / "logs" / plan.name / (step.name + ".log");
    context.kill_grace = kKillGrace;
    context.on_spawned = [&](const ProcessGroup& group) {
      attempt.group = group;
      engine.write(attempt);
      journaled = true;
    };
    ActionResult result = run_action(step.action, context, &engine.stopping);
    if (!journaled) engine.write(attempt);  // nothing was spawned: the attempt, then its end
    if (result.outcome == ActionOutcome::cancelled) return result;
    Record end = attempt;
    end.type = Record::Type::attempt_end;
    end.group = {};
    end.outcome = to_string(result.outcome);
    end.detail = result.detail;
    engine.write(end);
    return result;
  }

  // After a failed attempt: back off and let the loop run the next one, or,
  // with no retries left, pause for an operator.
  void retry_or_pause(const ClusterProgress& progress, const Step& step,
                      const ActionResult& result) {
    const int failed_attempts =
        engine.snapshot(plan.name).steps[static_cast<std::size_t>(progress.step)].failed_attempts;
    if (failed_attempts <= step.action.retries) {
      const auto backoff = step.action.backoff * (1 << std::min(failed_attempts - 1, 20));
      engine.log_line(plan.name + ": retrying " + step_label(progress, progress.step) + " in " +
                      std::to_string(backoff.count()) + " ms");
      engine.wait(plan.name, backoff);
      return;
    }
    const std::string detail = "action failed after " + std::to_string(failed_attempts) +
                               " attempt" + (failed_attempts == 1 ? "" : "s") + ": " +
                               result.detail;
    engine.notify_failed(plan.name, step.name, detail);
    hooks.run({HookKind::on_failure, progress.step, "failed_action", detail, engine.last_seq()});
    std::string tail = result.output_tail;
    if (tail.size() > 300) tail = "..." + tail.substr(tail.size() - 300);
    engine.write(pause_record(progress, PauseReason::failed_action, Phase::running, detail, tail));
  }

  // verifying(i) -> done(i) when every verify check passes in one round, or
  // paused(failed_check) once the next round would come after the deadline.
  // An operator's request or a stop ends the polling; the loop takes it.
  void verifying(const ClusterProgress& progress, const Step& step) {
    const std::vector<CheckSpec> gates = checks_in_mode(step.verify.checks, CheckMode::gate);
    if (gates.empty()) {
      if (!observe(progress, step.verify.checks, Phase::verifying)) return;
      engine.write(state_record(
          progress, Phase::done, progress.step,
          step.verify.checks.empty() ? "no verify checks" : "only observe-mode verify checks"));
      return;
    }
    const auto deadline = SteadyClock::now() + step.verify.deadline;
    std::string journaled_failures;  // of this step's last verify_failing record
    for (;;) {
      const CheckRound round = checks->run(gates);
      if (engine.stopping) return;
      if (round.passed) {
        if (!observe(progress, step.verify.checks, Phase::verifying)) return;
        engine.write(state_record(progress, Phase::done, progress.step, "verify checks passed"));
        return;
      }
      if (SteadyClock::now() + step.verify.interval > deadline) {
        if (!observe(progress, step.verify.checks, Phase::verifying)) return;
        pause_for_checks(progress, Phase::verifying, round, "verify");
        return;
      }
      // Journaled when it changes (not every round), so a watcher in another
      // shell sees what the verify sees without the journal growing per round.
      if (round.failures != journaled_failures) {
        engine.write(verify_failing_record(progress, round));
        journaled_failures = round.failures;
      }
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now());
      engine.log_line(plan.name + ": verify of " + step_label(progress, progress.step) +
                      " not passing yet (" + std::to_string(left.count()) +
                      " ms to its deadline): " + round.failures);
      if (!engine.wait(plan.name, step.verify.interval)) return;
    }
  }

  // done(i) -> preflight(i+1), or finished after the last step.
  void done(const ClusterProgress& progress) {
    const int next = progress.step + 1;
    if (next < static_cast<int>(plan.steps.size())) {
      engine.write(state_record(progress, Phase::preflight, next, ""));
    } else {
      engine.write(state_record(progress, Phase::finished, static_cast<int>(plan.steps.size()),
                                "every step done"));
    }
  }

  // awaiting_approval(i) -> preflight(i) once an operator approved step i
  // (the `approve` record); the checks then run after the approval.
  void awaiting_approval(const ClusterProgress& progress) {
    const StepProgress& step = progress.steps[static_cast<std::size_t>(progress.step)];
    if (!step.approved) {
      engine.wait(plan.name, 200ms);
      return;
    }
    engine.write_unless_requested(
        state_record(progress, Phase::preflight, progress.step, "approved by " + step.approved_by));
  }

  // paused(reason) -> its resume phase, when the reason lets it resume by
  // itself; otherwise it waits for an operator.
  void paused(const ClusterProgress& progress) {
    if (progress.reason == PauseReason::blackout) {
      wait_out_blackout(progress);
    } else if (progress.reason == PauseReason::failed_check) {
      recheck(progress);
    } else {
      engine.wait(plan.name, 1000ms);  // an operator's resume, abort or skip
    }
  }

  void wait_out_blackout(const ClusterProgress& progress) {
    if (engine.blackout_now()) {
      engine.wait(plan.name, std::min(plan.recheck_interval, std::chrono::milliseconds(1000)));
      return;
    }
    engine.write_unless_requested(
        state_record(progress, progress.resume_to, progress.step, "blackout window ended"));
  }

  // One re-check of the checks that failed, after recheck_interval; resumes
  // after resume_after_rounds passing ones in a row when the plan says "auto".
  void recheck(const ClusterProgress& progress) {
    if (!engine.wait(plan.name, plan.recheck_interval)) return;
    const Step& step = step_at(progress.step);
    const CheckRound round = checks->run(checks_in_mode(progress.resume_to == Phase::verifying
                                                            ? step.verify.checks
                                                            : preflight_checks(progress.step),
                                                        CheckMode::gate));
    if (engine.stopping) return;
    passing_rounds = round.passed ? passing_rounds + 1 : 0;
    const bool automatic = plan.resume == ResumePolicy::automatic;
    if (!round.passed) {
      engine.log_line(plan.name + ": still failing: " + round.failures);
    } else if (automatic && passing_rounds >= plan.resume_after_rounds) {
      engine.write_unless_requested(
          state_record(progress, progress.resume_to, progress.step,
                       "checks passed " + std::to_string(passing_rounds) + " re-checks in a row"));
    } else {
      engine.log_line(plan.name + ": checks passed (" + std::to_string(passing_rounds) +
                      " in a row)" + (automatic ? "" : "; waiting for an operator's resume"));
    }
  }

  // Runs each observe-mode check of `all` in a round of its own and journals
  // its verdict (with the round's report); never pauses. False when the
  // engine stopped meanwhile (the round is dropped, as a gate's would be).
  bool observe(const ClusterProgress& progress, const std::vector<CheckSpec>& all, Phase where) {
    for (const CheckSpec& check : checks_in_mode(all, CheckMode::observe)) {
      const CheckRound round = checks->run({check});
      if (engine.stopping) return false;
      engine.write(observe_record(progress, check, where, round));
    }
    return true;
  }

  // A blackout covers now: no new step starts.
  bool pause_for_blackout(const ClusterProgress& progress, Phase resume_to) {
    const Blackout* blackout = engine.blackout_now();
    if (!blackout) return false;
    engine.write(pause_record(progress, PauseReason::blackout, resume_to,
                              "blackout window: " + blackout->describe()));
    return true;
  }

  void pause_for_checks(const ClusterProgress& progress, Phase resume_to, const CheckRound& round,
                        const std::string& what) {
    engine.write(pause_record(
        progress, PauseReason::failed_check, resume_to,
        what + " failed at " + step_label(progress, progress.step) + ": " + round.failures,
        round.diagnosis));
  }

  Impl& engine;
  const ClusterPlan& plan;
  HookRunner hooks;
  const std::unique_ptr<ClusterChecks> checks;
  int passing_rounds = 0;  // consecutive passing re-checks while paused
  Phase last_phase = Phase::pending;
};

void Engine::Impl::poll_commands(std::uint64_t& offset) {
  for (const Command& command : read_commands(options.state_dir, offset)) {
    std::lock_guard guard(mutex);
    if (state.applied_commands.count(command.id)) continue;
    if (auto error = check_command(state, command)) {
      Record rejected = accept_command(state, command);
      rejected.outcome = "rejected";
      rejected.detail = *error;
      write_locked(std::move(rejected));
      continue;
    }
    write_locked(accept_command(state, command));
  }
}

Engine::Engine(Plan plan, EngineOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->plan = std::move(plan);
  impl_->options = std::move(options);
  impl_->log = impl_->options.log ? impl_->options.log : &impl_->discarded_log;
  const fs::path& dir = impl_->options.state_dir;
  std::string holder;
  impl_->lock = StateLock::try_acquire(dir, "ringwatch migrate run", &holder);
  if (!impl_->lock) {
    throw StateInUse("state directory " + dir.string() + " is in use by " + holder +
                     "; one engine per state directory");
  }
  const auto structure = structure_of(impl_->plan);
  impl_->journal = std::make_unique<Journal>(dir, journal_header(impl_->plan.source, structure));
  impl_->state = replay(impl_->journal->records());
  std::map<std::string, std::vector<std::string>> journaled;
  for (const auto& [name, cluster] : impl_->state.clusters) journaled[name] = cluster.step_names;
  if (journaled != structure) {
    throw JournalError((dir / "journal.jsonl").string() + ": line 1: started with plan " +
                       impl_->state.plan + " (" + describe_structure(journaled) + "); plan " +
                       impl_->plan.source + " has other clusters or steps (" +
                       describe_structure(structure) + "); use a new --state directory");
  }
  const Notifications& destinations = impl_->plan.notifications;
  if (!destinations.webhook_url.empty() || !destinations.alertmanager_url.empty()) {
    Impl* impl = impl_.get();
    impl_->notifier_log_buffer =
        std::make_unique<LineForwarder>([impl](const std::string& line) { impl->log_line(line); });
    impl_->notifier_log = std::make_unique<std::ostream>(impl_->notifier_log_buffer.get());
    impl_->notifier = std::make_unique<Notifier>(destinations, *impl_->notifier_log);
  }
  Record run;
  run.type = Record::Type::run;
  run.plan = impl_->plan.source;
  run.plan_sha256 = file_sha256(impl_->plan.source);
  run.structure = structure;
  run.pid = static_cast<int>(::getpid());
  run.detail = impl_->state.runs == 0 ? "first run"
                                      : "continuing after run " + std::to_string(impl_->state.runs);
  const std::string& started_with = impl_->journal->records().front().plan_sha256;
  if (run.plan_sha256 != started_with) {
    impl_->log_line("plan " + run.plan + " is not the file the journal was started with (sha256 " +
                    (started_with.empty() ? "unknown" : started_with) + ", now " +
                    (run.plan_sha256.empty() ? "unreadable" : run.plan_sha256) +
                    "); its clusters and steps are the same, so the migration continues");
  }
  impl_->write(run);
}

Engine::~Engine() = default;

void Engine::stop() noexcept {
  impl_->stopping = true;
}

RunSummary Engine::run() {
  Impl& impl = *impl_;
  std::uint64_t offset = 0;
  try {
    impl.poll_commands(offset);
  } catch (const std::exception& error) {
    impl.log_line(std::string("engine error: ") + error.what());
    impl.stopping = true;
  }
  std::vector<std::thread> threads;
  for (const auto& cluster : impl.plan.clusters) {
    threads.emplace_back([&impl, &cluster] {
      try {
        Impl::ClusterRun(impl, cluster).run();
      } catch (const std::exception& error) {
        // A journal that cannot be written: nothing may act any more.
        impl.log_line(cluster.name + ": engine error: " + error.what());
        impl.stopping = true;
      }
      impl.changed.notify_all();
    });
  }
  while (!impl.stopping && !impl.all_ended()) {
    {
      std::unique_lock guard(impl.mutex);
      impl.changed.wait_for(guard, impl.options.command_poll);
    }
    try {
      impl.poll_commands(offset);
    } catch (const std::exception& error) {
      impl.log_line(std::string("engine error: ") + error.what());
      impl.stopping = true;
    }
  }
  impl.changed.notify_all();
  for (auto& thread : threads) thread.join();
  if (impl.notifier) impl.notifier->flush(std::chrono::seconds(3));
  RunSummary summary;
  summary.stopped = !impl.all_ended();
  std::lock_guard guard(impl.mutex);
  for (const auto& [name, cluster] : impl.state.clusters) summary.clusters[name] = cluster.phase;
  return summary;
}

}  // namespace ringwatch::migration
