#pragma once
// The migration journal: the durable record of everything the engine did and
// every operator command it accepted, in a state directory:
//
//   STATE/journal.jsonl   one JSON object per line, append-only
//   STATE/commands.jsonl  operator commands waiting for a running engine
//   STATE/lock            flock()ed by whoever writes the journal
//   STATE/logs/<cluster>/<step>.log   the actions' output
//   STATE/logs/<cluster>/hooks.log    the hooks' output (hooks.h)
//   STATE/hooks/<cluster>/<seq>-<hook>.json   the report a hook was given
//
// Write-ahead: a record is written and fdatasync()ed before the engine acts
// on it (before an action is released to run, before a cluster moves on), so
// after a crash at any moment the journal says at least as much as happened.
// A last line cut short by the crash was never acted on: readers skip it, and
// the writer cuts it off when it opens the journal.
//
// Integrity (journal version 2). The journal proves its own integrity, so
// damage is refused instead of being replayed into a wrong state:
//   - line 1 is the header record (type "journal"): the version, the plan
//     (its file name, the SHA-256 of the file, its clusters and steps). A
//     journal is created whole with its header (written to a temporary file,
//     synced, renamed), so an existing journal is never empty;
//   - record N is line N: `seq` counts 1, 2, 3, ... without gaps or repeats;
//   - every line ends in `,"crc":"<8 hex digits>"}`: the CRC32C (Castagnoli)
//     of the line's bytes before `,"crc"`. A CRC, not a cryptographic hash:
//     it is there to catch accidents (a lost or doubled write, a bit flip, a
//     hand edit, another file's bytes), and a keyed hash would need a secret
//     kept beside the journal, which anyone able to rewrite the journal could
//     read too. CRC32C is the checksum file systems (ext4, btrfs) use for
//     their own metadata; it misses a random corruption once in 2^32.
//   - every record has its time ("at").
// read_journal() refuses anything else with "<path>: line N: <what>" (see
// docs/migration.md for every <what>): a gap, a repeat, a bad checksum, a
// line that is not a record, NUL bytes, trailing bytes other than one torn
// last line (a prefix of a record, without newline or NUL), an empty file,
// a version it does not read (a version 1 journal, written before these
// checks, is refused by name; `repair --upgrade` converts it). An operator
// recovers with repair_journal() (`ringwatch migrate repair`): it keeps the
// first N records, saves the rest beside the journal, and journals itself.
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
enum class Phase {
  pending,
  preflight,
  running,
  verifying,
  done,
  paused,
  aborted,
  finished,
  awaiting_approval
};
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
  // observe: one evaluation of a check in "mode": "observe" (plan.h): never
  // acted on, kept so operators can tune thresholds before they gate.
  // hook: one run of a hook (hooks.h) and how it ended: never acted on
  // (replay ignores it), so a hook cannot change a cluster's state.
  // verify_failing: a verify round that failed before the step's deadline
  // (`step`, `detail` its failures, `diagnosis`), written when the failures
  // differ from the last such record of the step, so `migrate status --watch`
  // shows what a waiting verify sees; replay ignores it.
  enum class Type {
    run,
    state,
    attempt,
    attempt_end,
    operator_command,
    skip,
    header,
    repair,
    observe,
    hook,
    verify_failing
  };
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
  // operator: "pause", "resume", "abort", "skip", "approve" (`by` who, `step`)
  std::string command;
  // observe: the check (describe_check), where it ran (`phase`: preflight or
  // verifying), `outcome` "passed" or "would_pause", `detail` its failures,
  // and the round's report as JSON text ("" when none).
  std::string check;
  std::string report;
  // hook: which (`hook` "on_pause", ...; `scope` "step" or "plan"), at
  // `step`, why (`trigger`: its ${reason}, JSON "reason"), how it ended
  // (`outcome` "succeeded", "failed", "timed_out", "could_not_start",
  // "cancelled"; `detail`), how long it ran, and the report file it was given.
  std::string hook;
  std::string scope;
  std::string trigger;
  std::int64_t duration_ms = 0;
  std::string report_file;
  std::string command_id;
  // header, run
  std::string plan;
  std::string plan_sha256;                                    // of the plan file; "" unknown
  std::map<std::string, std::vector<std::string>> structure;  // cluster -> step names
  int pid = 0;                                                // run
  int version = 0;                                            // header
  // repair
  std::uint64_t truncated_after = 0;  // records kept
  std::uint64_t dropped_lines = 0;    // lines cut (a torn tail counts as one)
  std::string saved_to;               // where the cut bytes were saved
  std::string by;                     // who repaired
  int upgraded_from = 0;              // the version an upgrade started from
};

inline constexpr int kJournalVersion = 2;

// One journal line, without the newline: the record's JSON, ending in its
// checksum.
std::string to_json_line(const Record& record);
// The record of a line, or nullopt for a line that is not a complete record
// (a torn tail). Only the JSON: the checksum and the record's place in the
// journal are read_journal()'s to check.
std::optional<Record> parse_record(std::string_view line);
// CRC32C (Castagnoli, reflected, as iSCSI and ext4 use it) of `bytes`.
std::uint32_t crc32c(std::string_view bytes);
// Lowercase hex SHA-256 of a file's bytes; "" when it cannot be read.
std::string file_sha256(const std::filesystem::path& path);

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
  bool approved = false;  // an operator approved it (`approve` record)
  std::string approved_by;
  std::chrono::system_clock::time_point approved_at{};
};

// How an observe-mode check fared on one cluster.
struct ObservedCheck {
  int rounds = 0;       // evaluations
  int would_pause = 0;  // evaluations that failed: a gate would have paused
  std::string last_failure;
  friend bool operator==(const ObservedCheck&, const ObservedCheck&) = default;
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
  std::map<std::string, ObservedCheck> observed;  // by check (describe_check)
  bool terminal() const { return phase == Phase::aborted || phase == Phase::finished; }
};

struct JournalState {
  std::string plan;         // the plan file the journal was started with
  std::string plan_sha256;  // its SHA-256 then
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
// file does not exist. Throws JournalError "<path>: line N: <what>" for
// anything the integrity rules above refuse.
std::vector<Record> read_journal(const std::filesystem::path& state_dir);

class Journal {
 public:
  // Opens STATE/journal.jsonl, which must exist and pass read_journal();
  // cuts off a torn last line. The caller must hold the StateLock.
  explicit Journal(const std::filesystem::path& state_dir);
  // The same, but when STATE has no journal at all, creates STATE and the
  // journal holding only `header` (a header record; its seq and time are
  // set here). An empty or damaged journal is refused, never replaced.
  Journal(const std::filesystem::path& state_dir, Record header);
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
  void open_existing(const std::filesystem::path& state_dir);

  std::filesystem::path path_;
  int fd_ = -1;
  off_t size_ = 0;  // bytes of complete, synced records
  bool broken_ = false;
  std::vector<Record> records_;
};

// The header record of a new journal for `plan_file` with these clusters
// and steps (its SHA-256 read from the file now).
Record journal_header(const std::string& plan_file,
                      std::map<std::string, std::vector<std::string>> structure);

// `ringwatch migrate repair`: under the lock (refused while an engine runs),
// either keeps the first `truncate_after` records (they must pass the
// integrity rules; the bytes after them are saved to
// STATE/journal.jsonl.cut-<time>) or, with `upgrade`, converts a version 1
// journal; then appends a `repair` record saying who, why and what. The new
// journal replaces the old one whole (temporary file, sync, rename). Returns
// what was done, for the operator; throws std::runtime_error with the
// reason when it refuses.
struct RepairRequest {
  std::optional<std::uint64_t> truncate_after;
  bool upgrade = false;
  std::string by;      // who; required
  std::string reason;  // why; required
};
std::string repair_journal(const std::filesystem::path& state_dir, const RepairRequest& request);

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
  std::string command;  // "pause", "resume", "abort", "skip", "approve"
  std::string cluster;  // empty: every cluster (pause, resume, abort)
  std::string step;     // skip, approve: the step's name
  std::string reason;   // skip: required; others: optional
  std::string by;       // approve: who approves
};
std::string make_command_id();
void enqueue_command(const std::filesystem::path& state_dir, const Command& command);
// Commands from byte `offset` on; `offset` is advanced past the last complete line.
std::vector<Command> read_commands(const std::filesystem::path& state_dir, std::uint64_t& offset);

}  // namespace ringwatch::migration
