#include "migration/journal.h"

#include <fcntl.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <sys/file.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iterator>
#include <sstream>
#include <utility>

#include "lib/util/fd_io.h"
#include "lib/util/time.h"

namespace ringwatch::migration {

namespace {

namespace fs = std::filesystem;
using rapidjson::Value;

constexpr const char* kPhaseNames[] = {"pending",   "preflight", "running",
                                       "verifying", "done",      "paused",
                                       "aborted",   "finished",  "awaiting_approval"};
constexpr const char* kReasonNames[] = {"",         "failed_check", "failed_action",
                                        "operator", "blackout",     "interrupted"};
constexpr const char* kTypeNames[] = {"run",      "state", "attempt",       "attempt_end",
                                      "operator", "skip",  "journal",       "repair",
                                      "observe",  "hook",  "verify_failing"};
constexpr int kTypeCount = static_cast<int>(std::size(kTypeNames));

std::string errno_text() {
  return std::strerror(errno);
}

std::string read_whole(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::chrono::system_clock::time_point parse_time(std::string_view text) {
  // "2026-11-30T10:00:00.123Z"
  std::tm tm{};
  int millis = 0;
  const std::string copy(text);
  if (std::sscanf(copy.c_str(), "%d-%d-%dT%d:%d:%d.%dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                  &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &millis) < 6) {
    return {};
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return std::chrono::system_clock::from_time_t(::timegm(&tm)) + std::chrono::milliseconds(millis);
}

const Value* member(const Value& object, const char* name) {
  const auto it = object.FindMember(name);
  return it == object.MemberEnd() ? nullptr : &it->value;
}

std::string string_member(const Value& object, const char* name) {
  const Value* value = member(object, name);
  return value && value->IsString() ? std::string(value->GetString(), value->GetStringLength())
                                    : std::string();
}

int int_member(const Value& object, const char* name) {
  const Value* value = member(object, name);
  return value && value->IsInt() ? value->GetInt() : 0;
}

std::uint64_t uint64_member(const Value& object, const char* name) {
  const Value* value = member(object, name);
  return value && value->IsUint64() ? value->GetUint64() : 0;
}

}  // namespace

const char* to_string(Phase phase) {
  return kPhaseNames[static_cast<int>(phase)];
}

std::optional<Phase> parse_phase(std::string_view text) {
  for (int i = 0; i < static_cast<int>(std::size(kPhaseNames)); ++i) {
    if (text == kPhaseNames[i]) return static_cast<Phase>(i);
  }
  return std::nullopt;
}

const char* to_string(PauseReason reason) {
  return kReasonNames[static_cast<int>(reason)];
}

std::optional<PauseReason> parse_pause_reason(std::string_view text) {
  for (int i = 0; i < 6; ++i) {
    if (text == kReasonNames[i]) return static_cast<PauseReason>(i);
  }
  return std::nullopt;
}

std::string to_json_line(const Record& record) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> out(buffer);
  auto text = [&](const char* key, const std::string& value) {
    if (value.empty()) return;
    out.Key(key);
    out.String(value);
  };
  out.StartObject();
  out.Key("seq");
  out.Uint64(record.seq);
  out.Key("at");
  out.String(util::format_rfc3339_ms(record.at));
  out.Key("type");
  out.String(kTypeNames[static_cast<int>(record.type)]);
  text("cluster", record.cluster);
  auto structure = [&] {
    out.Key("clusters");
    out.StartObject();
    for (const auto& [cluster, steps] : record.structure) {
      out.Key(cluster.c_str(), static_cast<rapidjson::SizeType>(cluster.size()));
      out.StartArray();
      for (const auto& step : steps) out.String(step);
      out.EndArray();
    }
    out.EndObject();
  };
  switch (record.type) {
    case Record::Type::header:
      out.Key("version");
      out.Int(record.version);
      text("plan", record.plan);
      text("plan_sha256", record.plan_sha256);
      structure();
      break;
    case Record::Type::run:
      text("plan", record.plan);
      text("plan_sha256", record.plan_sha256);
      out.Key("pid");
      out.Int(record.pid);
      structure();
      break;
    case Record::Type::repair:
      if (record.upgraded_from != 0) {
        out.Key("upgraded_from");
        out.Int(record.upgraded_from);
      } else {
        out.Key("truncated_after");
        out.Uint64(record.truncated_after);
        out.Key("dropped_lines");
        out.Uint64(record.dropped_lines);
        text("saved_to", record.saved_to);
      }
      text("by", record.by);
      break;
    case Record::Type::state:
      out.Key("phase");
      out.String(to_string(record.phase));
      out.Key("step");
      out.Int(record.step);
      if (record.phase == Phase::paused) {
        out.Key("reason");
        out.String(to_string(record.reason));
        out.Key("resume_to");
        out.String(to_string(record.resume_to));
      }
      break;
    case Record::Type::attempt:
    case Record::Type::attempt_end:
      out.Key("step");
      out.Int(record.step);
      out.Key("attempt");
      out.Int(record.attempt);
      if (record.group.known()) {
        out.Key("pgid");
        out.Int(record.group.pgid);
        out.Key("start_time");
        out.Uint64(record.group.start_time);
        text("boot_id", record.group.boot_id);
      }
      text("outcome", record.outcome);
      text("orphan", record.orphan);
      break;
    case Record::Type::operator_command:
      text("command", record.command);
      text("id", record.command_id);
      text("outcome", record.outcome);
      if (record.command == "skip" || record.command == "approve") {
        out.Key("step");
        out.Int(record.step);
      }
      if (record.command == "approve") text("by", record.by);
      break;
    case Record::Type::skip:
      out.Key("step");
      out.Int(record.step);
      break;
    case Record::Type::observe:
      out.Key("step");
      out.Int(record.step);
      out.Key("phase");
      out.String(to_string(record.phase));
      text("check", record.check);
      text("outcome", record.outcome);
      break;
    case Record::Type::hook:
      out.Key("step");
      out.Int(record.step);
      text("hook", record.hook);
      text("scope", record.scope);
      text("reason", record.trigger);
      text("outcome", record.outcome);
      out.Key("duration_ms");
      out.Int64(record.duration_ms);
      text("report_file", record.report_file);
      break;
    case Record::Type::verify_failing:
      out.Key("step");
      out.Int(record.step);
      break;
  }
  text("detail", record.detail);
  text("diagnosis", record.diagnosis);
  if (record.type == Record::Type::observe && !record.report.empty()) {
    out.Key("report");
    out.RawValue(record.report.data(), record.report.size(), rapidjson::kObjectType);
  }
  out.EndObject();
  // The body is the object without its closing brace; the checksum covers
  // exactly those bytes and closes the object.
  std::string line(buffer.GetString(), buffer.GetSize() - 1);
  char crc[24];
  std::snprintf(crc, sizeof crc, ",\"crc\":\"%08x\"}", crc32c(line));
  return line + crc;
}

std::optional<Record> parse_record(std::string_view line) {
  rapidjson::Document document;
  document.Parse<rapidjson::kParseIterativeFlag>(line.data(), line.size());
  if (document.HasParseError() || !document.IsObject()) return std::nullopt;
  Record record;
  const std::string type = string_member(document, "type");
  bool known = false;
  for (int i = 0; i < kTypeCount; ++i) {
    if (type == kTypeNames[i]) {
      record.type = static_cast<Record::Type>(i);
      known = true;
    }
  }
  if (!known) return std::nullopt;
  const Value* seq = member(document, "seq");
  if (!seq || !seq->IsUint64()) return std::nullopt;
  record.seq = seq->GetUint64();
  record.at = parse_time(string_member(document, "at"));
  record.cluster = string_member(document, "cluster");
  record.step = int_member(document, "step");
  record.attempt = int_member(document, "attempt");
  record.detail = string_member(document, "detail");
  record.diagnosis = string_member(document, "diagnosis");
  record.outcome = string_member(document, "outcome");
  record.command = string_member(document, "command");
  record.command_id = string_member(document, "id");
  record.plan = string_member(document, "plan");
  record.pid = int_member(document, "pid");
  record.group.pgid = int_member(document, "pgid");
  record.group.start_time = uint64_member(document, "start_time");
  record.group.boot_id = string_member(document, "boot_id");
  record.orphan = string_member(document, "orphan");
  record.plan_sha256 = string_member(document, "plan_sha256");
  record.version = int_member(document, "version");
  record.by = string_member(document, "by");
  record.saved_to = string_member(document, "saved_to");
  record.upgraded_from = int_member(document, "upgraded_from");
  record.truncated_after = uint64_member(document, "truncated_after");
  record.dropped_lines = uint64_member(document, "dropped_lines");
  record.check = string_member(document, "check");
  if (record.type == Record::Type::hook) {
    record.hook = string_member(document, "hook");
    record.scope = string_member(document, "scope");
    record.trigger = string_member(document, "reason");
    record.report_file = string_member(document, "report_file");
    if (const Value* ms = member(document, "duration_ms"); ms && ms->IsInt64())
      record.duration_ms = ms->GetInt64();
  }
  if (const Value* report = member(document, "report"); report && report->IsObject()) {
    rapidjson::StringBuffer buffer;
    rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
    report->Accept(writer);
    record.report.assign(buffer.GetString(), buffer.GetSize());
  }
  if (record.type == Record::Type::state || record.type == Record::Type::observe) {
    const auto phase = parse_phase(string_member(document, "phase"));
    if (!phase) return std::nullopt;
    record.phase = *phase;
    if (record.phase == Phase::paused) {
      const auto reason = parse_pause_reason(string_member(document, "reason"));
      const auto resume_to = parse_phase(string_member(document, "resume_to"));
      if (!reason || !resume_to) return std::nullopt;
      record.reason = *reason;
      record.resume_to = *resume_to;
    }
  }
  if (const Value* clusters = member(document, "clusters"); clusters && clusters->IsObject()) {
    for (const auto& entry : clusters->GetObject()) {
      auto& steps = record.structure[entry.name.GetString()];
      if (!entry.value.IsArray()) return std::nullopt;
      for (const auto& step : entry.value.GetArray()) {
        if (step.IsString()) steps.emplace_back(step.GetString());
      }
    }
  }
  return record;
}

ClusterProgress* JournalState::find(const std::string& cluster) {
  const auto it = clusters.find(cluster);
  return it == clusters.end() ? nullptr : &it->second;
}

const ClusterProgress* JournalState::find(const std::string& cluster) const {
  const auto it = clusters.find(cluster);
  return it == clusters.end() ? nullptr : &it->second;
}

namespace {

int step_index(const ClusterProgress& cluster, const std::string& step) {
  for (std::size_t i = 0; i < cluster.step_names.size(); ++i) {
    if (cluster.step_names[i] == step) return static_cast<int>(i);
  }
  return -1;
}

StepProgress* step_at(ClusterProgress& cluster, int index) {
  if (index < 0 || index >= static_cast<int>(cluster.steps.size())) return nullptr;
  return &cluster.steps[static_cast<std::size_t>(index)];
}

void apply_operator(ClusterProgress& cluster, const Record& record) {
  if (cluster.terminal()) return;
  const bool paused = cluster.phase == Phase::paused;
  if (record.command == "pause") {
    if (!(paused && cluster.reason == PauseReason::operator_request))
      cluster.pause_requested = true;
    cluster.resume_requested = false;
  } else if (record.command == "resume") {
    cluster.pause_requested = false;
    if (paused) cluster.resume_requested = true;
  } else if (record.command == "abort") {
    cluster.abort_requested = true;
  } else if (record.command == "skip") {
    if (StepProgress* step = step_at(cluster, record.step)) {
      step->outcome = StepProgress::Outcome::skipped;
      step->detail = "skipped by operator: " + record.detail;
    }
  } else if (record.command == "approve") {
    if (StepProgress* step = step_at(cluster, record.step)) {
      step->approved = true;
      step->approved_by = record.by;
      step->approved_at = record.at;
    }
  }
}

}  // namespace

void apply(JournalState& state, const Record& record) {
  state.last_seq = record.seq;
  if (record.type == Record::Type::header || record.type == Record::Type::run) {
    if (record.type == Record::Type::run) ++state.runs;
    if (state.plan.empty()) {
      state.plan = record.plan;
      state.plan_sha256 = record.plan_sha256;
    }
    for (const auto& [name, steps] : record.structure) {
      if (state.clusters.count(name)) continue;
      ClusterProgress cluster;
      cluster.name = name;
      cluster.step_names = steps;
      cluster.steps.resize(steps.size());
      cluster.since = record.at;
      state.clusters.emplace(name, std::move(cluster));
      state.cluster_order.push_back(name);
    }
    return;
  }
  if (record.type == Record::Type::operator_command) {
    state.applied_commands.insert(record.command_id);
    if (record.outcome == "rejected") return;
    if (record.cluster.empty()) {
      for (auto& [name, cluster] : state.clusters) apply_operator(cluster, record);
    } else if (ClusterProgress* cluster = state.find(record.cluster)) {
      apply_operator(*cluster, record);
    }
    return;
  }
  ClusterProgress* cluster = state.find(record.cluster);
  if (cluster == nullptr) return;
  switch (record.type) {
    case Record::Type::state: {
      if (record.phase == Phase::done) {
        if (StepProgress* step = step_at(*cluster, record.step)) {
          if (step->outcome == StepProgress::Outcome::open)
            step->outcome = StepProgress::Outcome::done;
        }
      }
      if (record.phase == Phase::paused && record.reason == PauseReason::operator_request) {
        cluster->pause_requested = false;
      }
      if (record.phase != Phase::paused) cluster->resume_requested = false;
      if (record.phase == Phase::aborted) cluster->abort_requested = false;
      if (record.phase == Phase::aborted || record.phase == Phase::finished) {
        cluster->pause_requested = false;
      }
      if (record.phase == Phase::running && cluster->phase != Phase::running) {
        if (StepProgress* step = step_at(*cluster, record.step)) step->failed_attempts = 0;
      }
      cluster->phase = record.phase;
      cluster->step = record.step;
      cluster->reason = record.phase == Phase::paused ? record.reason : PauseReason::none;
      cluster->resume_to = record.resume_to;
      cluster->detail = record.detail;
      cluster->diagnosis = record.diagnosis;
      cluster->since = record.at;
      break;
    }
    case Record::Type::attempt:
      if (StepProgress* step = step_at(*cluster, record.step)) {
        step->attempts = std::max(step->attempts, record.attempt);
        step->in_flight = true;
        step->group = record.group;
        step->attempt_started = record.at;
        step->detail = "attempt " + std::to_string(record.attempt) + " started";
      }
      break;
    case Record::Type::attempt_end:
      if (StepProgress* step = step_at(*cluster, record.step)) {
        step->in_flight = false;
        step->group = {};
        step->last_outcome = record.outcome;
        if (record.outcome != "succeeded" && record.outcome != "interrupted")
          ++step->failed_attempts;
        step->detail = record.detail;
      }
      break;
    case Record::Type::skip:
      if (StepProgress* step = step_at(*cluster, record.step)) {
        step->outcome = StepProgress::Outcome::skipped;
        step->detail = record.detail;
      }
      break;
    case Record::Type::observe: {
      ObservedCheck& observed = cluster->observed[record.check];
      ++observed.rounds;
      if (record.outcome == "would_pause") {
        ++observed.would_pause;
        observed.last_failure = record.detail;
      }
      break;
    }
    default:
      break;
  }
}

JournalState replay(const std::vector<Record>& records) {
  JournalState state;
  for (const Record& record : records) apply(state, record);
  return state;
}

namespace {

// "step 2 (roll-onto-b4)", counted from 1.
std::string step_words(const ClusterProgress& cluster, int index) {
  if (index < 0 || index >= static_cast<int>(cluster.step_names.size())) return "the end";
  return "step " + std::to_string(index + 1) + " (" +
         cluster.step_names[static_cast<std::size_t>(index)] + ")";
}

// An approval is taken only for the step the cluster waits at.
std::optional<std::string> check_approval(const JournalState& state, const Command& command) {
  const ClusterProgress* cluster = state.find(command.cluster);
  if (cluster == nullptr) return "no cluster \"" + command.cluster + "\" in this migration";
  if (cluster->terminal()) return "cluster " + command.cluster + " is " + to_string(cluster->phase);
  const int index = step_index(*cluster, command.step);
  if (index < 0) return "cluster " + command.cluster + " has no step \"" + command.step + "\"";
  if (command.by.empty()) return std::string("approve needs --by (who approves)");
  if (cluster->phase != Phase::awaiting_approval) {
    return "cluster " + command.cluster + " is not waiting for an approval (it is " +
           to_string(cluster->phase) + " at " + step_words(*cluster, cluster->step) + ")";
  }
  if (index != cluster->step) {
    return "cluster " + command.cluster + " waits for an approval at " +
           step_words(*cluster, cluster->step) + ", not at " + step_words(*cluster, index);
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::string> check_command(const JournalState& state, const Command& command) {
  if (command.command != "pause" && command.command != "resume" && command.command != "abort" &&
      command.command != "skip" && command.command != "approve") {
    return "unknown command \"" + command.command + "\"";
  }
  if (state.clusters.empty()) return std::string("no migration has run in this state directory");
  if (command.cluster.empty()) {
    if (command.command == "skip" || command.command == "approve")
      return command.command + " needs --cluster";
    return std::nullopt;
  }
  if (command.command == "approve") return check_approval(state, command);
  const ClusterProgress* cluster = state.find(command.cluster);
  if (cluster == nullptr) return "no cluster \"" + command.cluster + "\" in this migration";
  if (cluster->terminal()) {
    return "cluster " + command.cluster + " is " + to_string(cluster->phase);
  }
  if (command.command == "resume" && cluster->phase != Phase::paused) {
    return "cluster " + command.cluster + " is not paused (it is " + to_string(cluster->phase) +
           ")";
  }
  if (command.command == "skip") {
    if (command.reason.empty()) return std::string("skip needs a --reason");
    const int index = step_index(*cluster, command.step);
    if (index < 0) return "cluster " + command.cluster + " has no step \"" + command.step + "\"";
    const StepProgress& step = cluster->steps[static_cast<std::size_t>(index)];
    if (step.outcome != StepProgress::Outcome::open) {
      return "step " + command.step + " of cluster " + command.cluster + " is already " +
             (step.outcome == StepProgress::Outcome::done ? "done" : "skipped");
    }
    const bool busy = index == cluster->step && cluster->phase != Phase::paused &&
                      cluster->phase != Phase::pending;
    if (busy) {
      return "step " + command.step + " of cluster " + command.cluster + " is in " +
             to_string(cluster->phase) + "; pause the cluster first";
    }
  }
  return std::nullopt;
}

Record accept_command(const JournalState& state, const Command& command) {
  Record record;
  record.by = command.by;
  if (command.command == "skip" || command.command == "approve") {
    if (const ClusterProgress* cluster = state.find(command.cluster)) {
      record.step = step_index(*cluster, command.step);
    }
  }
  record.type = Record::Type::operator_command;
  record.cluster = command.cluster;
  record.command = command.command;
  record.command_id = command.id;
  record.detail = command.reason;
  return record;
}

std::optional<StateLock> StateLock::try_acquire(const fs::path& state_dir, const std::string& what,
                                                std::string* holder) {
  std::error_code error;
  fs::create_directories(state_dir, error);
  if (error) throw JournalError("cannot create " + state_dir.string() + ": " + error.message());
  const fs::path path = state_dir / "lock";
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) throw JournalError("cannot open " + path.string() + ": " + errno_text());
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    if (holder != nullptr) {
      std::string text = read_whole(path);
      while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
      *holder = text.empty() ? "another process" : text;
    }
    ::close(fd);
    return std::nullopt;
  }
  const std::string text = "pid " + std::to_string(::getpid()) + ", " + what + " since " +
                           util::format_rfc3339_ms(std::chrono::system_clock::now()) + "\n";
  if (::ftruncate(fd, 0) != 0 || !util::write_all(fd, text)) {
    ::close(fd);
    throw JournalError("cannot write " + path.string() + ": " + errno_text());
  }
  return StateLock(fd);
}

StateLock::StateLock(StateLock&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}

StateLock& StateLock::operator=(StateLock&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

StateLock::~StateLock() {
  if (fd_ >= 0) ::close(fd_);  // releases the flock
}

std::string make_command_id() {
  static std::atomic<unsigned> counter{0};
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  return std::to_string(::getpid()) + "-" +
         std::to_string(std::chrono::duration_cast<std::chrono::microseconds>(now).count()) + "-" +
         std::to_string(counter++);
}

void enqueue_command(const fs::path& state_dir, const Command& command) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> out(buffer);
  out.StartObject();
  out.Key("id");
  out.String(command.id);
  out.Key("command");
  out.String(command.command);
  out.Key("cluster");
  out.String(command.cluster);
  out.Key("step");
  out.String(command.step);
  out.Key("reason");
  out.String(command.reason);
  out.Key("by");
  out.String(command.by);
  out.EndObject();
  const std::string line = std::string(buffer.GetString(), buffer.GetSize()) + "\n";
  const fs::path path = state_dir / "commands.jsonl";
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) throw JournalError("cannot open " + path.string() + ": " + errno_text());
  const bool ok = util::write_all(fd, line) && ::fdatasync(fd) == 0;
  ::close(fd);
  if (!ok) throw JournalError("cannot write " + path.string() + ": " + errno_text());
}

std::vector<Command> read_commands(const fs::path& state_dir, std::uint64_t& offset) {
  std::ifstream in(state_dir / "commands.jsonl", std::ios::binary);
  std::vector<Command> commands;
  if (!in) return commands;
  in.seekg(static_cast<std::streamoff>(offset));
  std::string line;
  while (std::getline(in, line)) {
    if (in.eof()) break;  // no newline yet: a line still being written
    offset += line.size() + 1;
    rapidjson::Document document;
    document.Parse(line.c_str());
    if (document.HasParseError() || !document.IsObject()) continue;
    Command command;
    command.id = string_member(document, "id");
    command.command = string_member(document, "command");
    command.cluster = string_member(document, "cluster");
    command.step = string_member(document, "step");
    command.reason = string_member(document, "reason");
    command.by = string_member(document, "by");
    if (!command.id.empty()) commands.push_back(std::move(command));
  }
  return commands;
}

}  // namespace ringwatch::migration
