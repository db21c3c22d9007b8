#pragma once
// The migration journal: the durable record of everything the engine did and
// every operator command it accepted, in a state directory:
//
//   STATE/journal.jsonl   one JSON object per line, append-only
//   STATE/commands.jsonl  operator commands waiting for a running engine
//   STATE/lock            flock()ed by whoever writes the journal
//   STATE/logs/<cluster>/<step>.log   the actions' output
//
// Write-ahead: a record is written and fdatasync()ed before the engine acts
// on it (before an action is spawned, before a cluster moves on), so after a
// crash at any moment the journal says at least as much as happened. A last
// line cut short by the crash was never acted on: readers skip it, and the
// writer cuts it off when it opens the journal.
//
// Replay. The state of every cluster is a pure function of the records
// (replay()); the engine applies each record to its in-memory state with the
// same function right after appending it, and `migrate status` replays the
// file, so both always agree. Record types:
//   run        an engine started on this directory: the plan file, its
//              clusters and step names (a later run must have the same ones),
//              and the engine's pid
//   state      a cluster entered `phase` at step `step` (with a pause reason
//              and the phase to resume to when paused)
//   attempt    attempt `attempt` of a step's action is about to run: its
//              process group (pgid, the leader's start_time, boot_id;
//              process_group.h) exists and waits for the engine's go, which
//              comes only once this record is on disk. `attempt_end` with
//              its outcome follows when it ended. A started attempt with no
//              end is an interrupted one; its `attempt_end` (outcome
//              "interrupted") says in `orphan` what became of its group:
//              "gone" (nothing of it ran when the next engine looked),
//              "waited" (it still ran and ended by itself) or "killed" (it
//              still ran at its timeout and its group was killed).
//   operator   an operator command was accepted (its id, so it is applied
//              once); pause and abort of a cluster that is busy are
//              remembered as requests until the cluster reaches a boundary
//   skip       a step was skipped (by an operator, with a reason)
//
// Operator commands. The command-line tools take the lock when it is free
// (no engine running) and write the journal themselves; otherwise they append
// the command to commands.jsonl (one write of one line, so appends from
// several shells never interleave) and wait for the engine's `operator`
// record with the same id.
//
// Thread-safety: Journal is not thread-safe (the engine serialises appends
// under its own mutex). replay() and the free functions are.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include <sys/types.h>

#include "migration/process_group.h"

namespace ringwatch::migration {

// A cluster's phase; see engine.h for the state machine.
enum class Phase { pending, preflight, running, verifying, done, paused, aborted, finished };
const char* to_string(Phase phase);  // "pending", ...
std::optional<Phase> parse_phase(std::string_view text);

enum class PauseReason {
  none,
  failed_check,
  failed_action,
  operator_request,
  blackout,
  interrupted
};
// "", "failed_check", "failed_action", "operator", "blackout", "interrupted"
const char* to_string(PauseReason reason);
std::optional<PauseReason> parse_pause_reason(std::string_view text);

struct Command;

struct Record {
  enum class Type { run, state, attempt, attempt_end, operator_command, skip };
  Type type = Type::state;
  std::uint64_t seq = 0;                       // set by Journal::append
  std::chrono::system_clock::time_point at{};  // set by Journal::append
  std::string cluster;
  // state
  Phase phase = Phase::pending;
  int step = 0;  // index into the cluster's steps; == steps.size() when finished
  PauseReason reason = PauseReason::none;
  Phase resume_to = Phase::pending;
  std::string detail;     // one line for people
  std::string diagnosis;  // failed checks: the report's diagnosis
  // attempt, attempt_end
  int attempt = 0;
  ProcessGroup group;  // attempt: the group its command runs in (unknown: nothing was spawned)
  std::string orphan;  // attempt_end of an interrupted attempt: "gone", "waited", "killed"
  // attempt_end: "succeeded", "failed", "timed_out", "interrupted", ...;
  // operator: "rejected" for a command that could not be taken (detail: why)
  std::string outcome;
  // operator: "pause", "resume", "abort", "skip"
  std::string command;
  std::string command_id;
  // run
  std::string plan;
  std::map<std::string, std::vector<std::string>> structure;  // cluster -> step names
  int pid = 0;
};

std::string to_json_line(const Record& record);  // without the newline
// nullopt for a line that is not a complete record (a torn tail).
std::optional<Record> parse_record(std::string_view line);

// What replay knows about one step.
struct StepProgress {
  enum class Outcome { open, done, skipped };
  Outcome outcome = Outcome::open;
  int attempts = 0;  // attempts started
  // Attempts that failed since the cluster last entered `running` from
  // another phase: the retries used up (survives a crash, unlike a counter).
  int failed_attempts = 0;
  bool in_flight = false;                                   // an attempt started and has not ended
  ProcessGroup group;                                       // of the attempt in flight
  std::chrono::system_clock::time_point attempt_started{};  // of the attempt in flight
  std::string last_outcome;                                 // of the last ended attempt
  std::string detail;                                       // the last thing said about it
};

struct ClusterProgress {
  std::string name;
  Phase phase = Phase::pending;
  int step = 0;
  PauseReason reason = PauseReason::none;
  Phase resume_to = Phase::pending;
  std::string detail;
  std::string diagnosis;
  std::chrono::system_clock::time_point since{};  // when it entered this phase
  std::vector<std::string> step_names;
  std::vector<StepProgress> steps;
  // Operator requests, taken by the engine at the cluster's next boundary.
  bool pause_requested = false;
  bool resume_requested = false;
  bool abort_requested = false;
  bool terminal() const { return phase == Phase::aborted || phase == Phase::finished; }
};

struct JournalState {
  std::string plan;  // the plan file of the first run
  std::vector<std::string> cluster_order;
  std::map<std::string, ClusterProgress> clusters;
  std::set<std::string> applied_commands;
  std::uint64_t last_seq = 0;
  int runs = 0;
  ClusterProgress* find(const std::string& cluster);
  const ClusterProgress* find(const std::string& cluster) const;
};

// Why `command` cannot be taken now ("no cluster \"x\" in this migration",
// "step \"s\" of cluster lab is done", ...); nullopt when it can.
std::optional<std::string> check_command(const JournalState& state, const Command& command);
// The journal record that accepts `command` (its effect is in apply()).
Record accept_command(const JournalState& state, const Command& command);

// Applies one record (pure; unknown clusters in non-run records are ignored).
// An accepted operator command sets requests on its clusters (every
// non-terminal one when it names none): pause sets pause_requested unless the
// cluster is already paused by an operator; resume sets resume_requested on a
// paused cluster and clears pause_requested; abort sets abort_requested; skip
// marks the step skipped. A state record clears the requests it fulfils.
void apply(JournalState& state, const Record& record);
JournalState replay(const std::vector<Record>& records);

class JournalError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Records of STATE/journal.jsonl (a torn last line skipped); empty when the
// file does not exist. Throws JournalError for a corrupt line that is not the last.
std::vector<Record> read_journal(const std::filesystem::path& state_dir);

class Journal {
 public:
  // Creates STATE and the journal if missing; cuts off a torn last line.
  // The caller must hold the StateLock.
  explicit Journal(const std::filesystem::path& state_dir);
  ~Journal();
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  const std::vector<Record>& records() const { return records_; }
  // Stamps seq and time, writes one line and fdatasync()s it; throws
  // JournalError when it cannot (the engine must not act then). After a
  // failed append the file is cut back to its last complete record and every
  // later append throws: nothing may follow a record that may not be there.
  const Record& append(Record record);

 private:
  std::filesystem::path path_;
  int fd_ = -1;
  off_t size_ = 0;  // bytes of complete, synced records
  bool broken_ = false;
  std::vector<Record> records_;
};

// An exclusive flock on STATE/lock, held for the object's life. The lock file
// names the holder, so a second engine can say who has it.
class StateLock {
 public:
  // nullopt when another process holds it; `holder` then says who (e.g.
  // "pid 4242, ringwatch migrate run since 2026-11-30T10:00:00Z").
  static std::optional<StateLock> try_acquire(const std::filesystem::path& state_dir,
                                              const std::string& what, std::string* holder);
  StateLock(StateLock&& other) noexcept;
  StateLock& operator=(StateLock&& other) noexcept;
  ~StateLock();

 private:
  explicit StateLock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

// An operator command as queued in commands.jsonl.
struct Command {
  std::string id;       // unique; made by make_command_id()
  std::string command;  // "pause", "resume", "abort", "skip"
  std::string cluster;  // empty: every cluster (pause, resume, abort)
  std::string step;     // skip: the step's name
  std::string reason;   // skip: required; others: optional
};
std::string make_command_id();
void enqueue_command(const std::filesystem::path& state_dir, const Command& command);
// Commands from byte `offset` on; `offset` is advanced past the last complete line.
std::vector<Command> read_commands(const std::filesystem::path& state_dir, std::uint64_t& offset);

}  // namespace ringwatch::migration
