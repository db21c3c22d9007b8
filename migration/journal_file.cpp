// The journal as a file (journal.h): its integrity rules, reading, the
// appending writer, creation with a header, and the operator's repair.

#include <fcntl.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <boost/crc.hpp>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>

#include "lib/util/fd_io.h"
#include "lib/util/time.h"
#include "migration/journal.h"

namespace ringwatch::migration {

namespace {

namespace fs = std::filesystem;

// A line ends in `,"crc":"` + 8 hex digits + `"}`.
constexpr std::string_view kCrcKey = ",\"crc\":\"";
constexpr std::size_t kCrcSuffix = kCrcKey.size() + 8 + 2;
constexpr std::string_view kRecordStart = "{\"seq\":";

std::string errno_text() {
  return std::strerror(errno);
}

std::optional<std::string> read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

void sync_directory(const fs::path& dir) {
  const util::UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() >= 0) ::fsync(fd.get());
}

// Replaces `path` with `content` whole: a temporary file, synced, renamed
// over it, and the directory synced, so a crash leaves the old file or the
// new one, never a part.
void write_durably(const fs::path& path, const std::string& content) {
  const fs::path temporary = path.string() + ".tmp";
  const util::UniqueFd fd(
      ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (fd.get() < 0) throw JournalError("cannot create " + temporary.string() + ": " + errno_text());
  if (!util::write_all(fd.get(), content) || ::fdatasync(fd.get()) != 0 ||
      ::rename(temporary.c_str(), path.c_str()) != 0) {
    throw JournalError("cannot write " + path.string() + ": " + errno_text());
  }
  sync_directory(path.parent_path().empty() ? fs::path(".") : path.parent_path());
}

std::string hex32(std::uint32_t value) {
  char text[9];
  std::snprintf(text, sizeof text, "%08x", value);
  return text;
}

struct Problem {
  std::size_t line = 0;
  std::string what;
};

// A journal's text, read as far as it is intact.
struct Scan {
  std::vector<Record> records;     // the intact records, record N at index N-1
  std::vector<std::size_t> ends;   // the offset just past each one's newline
  std::optional<Problem> problem;  // the first thing the rules refuse
  bool torn_tail = false;          // one last line cut short (not a problem)
  bool version_1 = false;          // line 1 is a record of a version 1 journal
};

// What is wrong with the checksum of `line`; nullopt when it holds.
std::optional<std::string> checksum_problem(std::string_view line) {
  const bool has_suffix = line.size() >= kCrcSuffix && line.ends_with("\"}") &&
                          line.substr(line.size() - kCrcSuffix, kCrcKey.size()) == kCrcKey;
  if (!has_suffix) {
    return std::string(parse_record(line) ? "no checksum (\"crc\")" : "not a journal record");
  }
  const std::string_view body = line.substr(0, line.size() - kCrcSuffix);
  const std::string said(line.substr(line.size() - 10, 8));
  const std::string computed = hex32(crc32c(body));
  if (said != computed) {
    return "checksum mismatch: the line says " + said + ", its bytes give " + computed;
  }
  return std::nullopt;
}

std::string seq_problem(std::uint64_t seq, std::uint64_t expected) {
  std::string what =
      "seq " + std::to_string(seq) + " where " + std::to_string(expected) + " was expected: ";
  if (seq < expected) return what + "a record is repeated or out of order";
  if (seq == expected + 1) return what + "record " + std::to_string(expected) + " is missing";
  return what + "records " + std::to_string(expected) + " to " + std::to_string(seq - 1) +
         " are missing";
}

// Line `number` (1-based) as record `number`, or what is wrong with it.
std::optional<std::string> check_line(std::string_view line, std::size_t number, Record& out) {
  if (line.find('\0') != std::string_view::npos)
    return std::string("NUL bytes where a record should be");
  if (auto problem = checksum_problem(line)) return problem;
  auto record = parse_record(line);
  if (!record) return std::string("not a journal record");
  if (record->at == std::chrono::system_clock::time_point{}) return std::string("no time (\"at\")");
  if (record->seq != number) return seq_problem(record->seq, number);
  const bool header = record->type == Record::Type::header;
  if (number == 1 && !header) return std::string("no header record");
  if (number > 1 && header) return std::string("a second header record");
  if (header && record->version != kJournalVersion) {
    return "journal version " + std::to_string(record->version) +
           "; this ringwatch reads version " + std::to_string(kJournalVersion);
  }
  out = std::move(*record);
  return std::nullopt;
}

// A journal written before headers and checksums: line 1 a `run` record
// without a checksum.
bool is_version_1(std::string_view first_line) {
  if (first_line.ends_with("\"}") && first_line.find(kCrcKey) != std::string_view::npos) {
    return false;
  }
  const auto record = parse_record(first_line);
  return record && record->type == Record::Type::run;
}

// The bytes after the last newline: a record cut short by a crash (never
// acted on), or damage.
std::optional<std::string> tail_problem(std::string_view tail) {
  if (tail.find('\0') != std::string_view::npos)
    return std::string("NUL bytes where a record should be");
  const bool record_start = tail.starts_with(kRecordStart) || kRecordStart.starts_with(tail);
  if (!record_start) return std::string("trailing bytes that are not a record cut short");
  return std::nullopt;
}

Scan scan(std::string_view text) {
  Scan result;
  std::size_t start = 0;
  std::size_t number = 0;
  while (start < text.size()) {
    ++number;
    const std::size_t end = text.find('\n', start);
    if (end == std::string_view::npos) {
      if (auto what = tail_problem(text.substr(start))) {
        result.problem = Problem{number, *what};
      } else if (number == 1) {
        result.problem = Problem{1, "no header record (only a line cut short)"};
      } else {
        result.torn_tail = true;
      }
      return result;
    }
    const std::string_view line = text.substr(start, end - start);
    Record record;
    if (auto what = check_line(line, number, record)) {
      result.version_1 = number == 1 && is_version_1(line);
      result.problem = Problem{number, *what};
      return result;
    }
    result.records.push_back(std::move(record));
    result.ends.push_back(end + 1);
    start = end + 1;
  }
  if (number == 0) result.problem = Problem{1, "empty journal (no header record)"};
  return result;
}

std::string version_1_message(const fs::path& state_dir) {
  return "a version 1 journal (no header record, no checksums: written by a ringwatch before "
         "journals checked their integrity); this ringwatch reads version " +
         std::to_string(kJournalVersion) + ": convert it with `ringwatch migrate repair --state " +
         state_dir.string() + " --upgrade --by NAME`";
}

// The scan's problem as the JournalError read_journal throws.
std::string describe(const fs::path& state_dir, const Problem& problem, bool version_1) {
  return (state_dir / "journal.jsonl").string() + ": line " + std::to_string(problem.line) + ": " +
         (version_1 ? version_1_message(state_dir) : problem.what);
}

// What the cut records had finished, which the engine will do again: one
// line per step whose `done` record is among them.
std::string undone_steps(const std::vector<Record>& kept, std::string_view cut) {
  const JournalState state = replay(kept);
  std::string said;
  std::size_t start = 0;
  while (start < cut.size()) {
    const std::size_t end = std::min(cut.find('\n', start), cut.size());
    const auto record = parse_record(cut.substr(start, end - start));
    start = end + 1;
    if (!record || record->type != Record::Type::state || record->phase != Phase::done) continue;
    const ClusterProgress* cluster = state.find(record->cluster);
    if (cluster == nullptr || record->step < 0 ||
        record->step >= static_cast<int>(cluster->step_names.size())) {
      continue;
    }
    said += "  cluster " + record->cluster + ": step " + std::to_string(record->step + 1) + " (" +
            cluster->step_names[static_cast<std::size_t>(record->step)] +
            ") was done in the cut records; the journal no longer says so\n";
  }
  return said;
}

Record repair_record(const RepairRequest& request) {
  Record record;
  record.type = Record::Type::repair;
  record.by = request.by;
  record.detail = request.reason;
  record.at = std::chrono::system_clock::now();
  return record;
}

std::string truncate_journal(const fs::path& state_dir, const std::string& text, const Scan& result,
                             const RepairRequest& request) {
  const std::uint64_t keep = *request.truncate_after;
  if (keep < 1) {
    throw std::runtime_error(
        "--truncate-after must be at least 1: record 1 is the journal's header");
  }
  if (keep > result.records.size()) {
    if (result.problem) {
      throw std::runtime_error(describe(state_dir, *result.problem, false) +
                               "; --truncate-after must be at most " +
                               std::to_string(result.problem->line - 1));
    }
    throw std::runtime_error("the journal has " + std::to_string(result.records.size()) +
                             " records; there is nothing after record " + std::to_string(keep));
  }
  const std::size_t kept_bytes = result.ends[keep - 1];
  const std::string_view cut = std::string_view(text).substr(kept_bytes);
  if (cut.empty()) {
    throw std::runtime_error("nothing to cut: record " + std::to_string(keep) +
                             " is the journal's last");
  }
  const std::vector<Record> kept(result.records.begin(),
                                 result.records.begin() + static_cast<std::ptrdiff_t>(keep));
  const fs::path saved = state_dir / ("journal.jsonl.cut-" +
                                      util::format_rfc3339_ms(std::chrono::system_clock::now()));
  write_durably(saved, std::string(cut));
  Record record = repair_record(request);
  record.seq = keep + 1;
  record.truncated_after = keep;
  record.dropped_lines = static_cast<std::uint64_t>(std::count(cut.begin(), cut.end(), '\n')) +
                         (cut.back() == '\n' ? 0 : 1);
  record.saved_to = saved.string();
  write_durably(state_dir / "journal.jsonl",
                text.substr(0, kept_bytes) + to_json_line(record) + "\n");
  return "journal repaired: kept records 1 to " + std::to_string(keep) + ", cut " +
         std::to_string(record.dropped_lines) + " line" + (record.dropped_lines == 1 ? "" : "s") +
         " (" + std::to_string(cut.size()) + " bytes) after them, saved in " + saved.string() +
         "; the repair is record " + std::to_string(record.seq) + " (by " + request.by + ": " +
         request.reason + ")\n" + undone_steps(kept, cut);
}

// A version 1 journal, renumbered after a header made from its first `run`
// record, every line with its checksum, and the repair record last.
std::string upgrade_journal(const fs::path& state_dir, const std::string& text, const Scan& result,
                            const RepairRequest& request) {
  if (!result.version_1) {
    if (!result.problem) {
      throw std::runtime_error("the journal is version " + std::to_string(kJournalVersion) +
                               " already: nothing to upgrade");
    }
    throw std::runtime_error(describe(state_dir, *result.problem, false) +
                             "; that is not a version 1 journal");
  }
  std::vector<Record> old;
  std::size_t start = 0;
  while (start < text.size()) {
    const std::size_t end = text.find('\n', start);
    if (end == std::string::npos) break;  // a torn tail: never acted on
    const std::size_t number = old.size() + 1;
    auto record = parse_record(std::string_view(text).substr(start, end - start));
    if (!record || record->seq != number) {
      throw std::runtime_error(
          (state_dir / "journal.jsonl").string() + ": line " + std::to_string(number) + ": " +
          (record ? seq_problem(record->seq, number) : "not a journal record") +
          "; fix or remove it by hand before the upgrade");
    }
    old.push_back(std::move(*record));
    start = end + 1;
  }
  Record header;
  header.type = Record::Type::header;
  header.version = kJournalVersion;
  header.plan = old.front().plan;
  header.structure = old.front().structure;
  header.seq = 1;
  header.at = old.front().at;
  header.detail = "upgraded from a version 1 journal";
  std::string upgraded = to_json_line(header) + "\n";
  for (Record& record : old) {
    record.seq += 1;
    upgraded += to_json_line(record) + "\n";
  }
  Record record = repair_record(request);
  record.seq = old.size() + 2;
  record.upgraded_from = 1;
  const fs::path saved = state_dir / "journal.jsonl.v1";
  write_durably(saved, text);
  write_durably(state_dir / "journal.jsonl", upgraded + to_json_line(record) + "\n");
  return "journal upgraded from version 1 to " + std::to_string(kJournalVersion) + ": " +
         std::to_string(old.size()) + " records after a new header, the repair is record " +
         std::to_string(record.seq) + " (by " + request.by + ": " + request.reason +
         "); the version 1 journal is saved in " + saved.string() + "\n";
}

}  // namespace

std::uint32_t crc32c(std::string_view bytes) {
  boost::crc_optimal<32, 0x1EDC6F41, 0xFFFFFFFF, 0xFFFFFFFF, true, true> crc;
  crc.process_bytes(bytes.data(), bytes.size());
  return crc.checksum();
}

std::string file_sha256(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  const std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> context(EVP_MD_CTX_new(),
                                                                   EVP_MD_CTX_free);
  if (!context || EVP_DigestInit_ex(context.get(), EVP_sha256(), nullptr) != 1) return {};
  char buffer[65536];
  while (in.read(buffer, sizeof buffer) || in.gcount() > 0) {
    EVP_DigestUpdate(context.get(), buffer, static_cast<std::size_t>(in.gcount()));
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_DigestFinal_ex(context.get(), digest, &length) != 1) return {};
  std::string hex;
  for (unsigned int i = 0; i < length; ++i) {
    char pair[3];
    std::snprintf(pair, sizeof pair, "%02x", digest[i]);
    hex += pair;
  }
  return hex;
}

Record journal_header(const std::string& plan_file,
                      std::map<std::string, std::vector<std::string>> structure) {
  Record header;
  header.type = Record::Type::header;
  header.version = kJournalVersion;
  header.plan = plan_file;
  header.plan_sha256 = file_sha256(plan_file);
  header.structure = std::move(structure);
  return header;
}

std::vector<Record> read_journal(const fs::path& state_dir) {
  const auto text = read_file(state_dir / "journal.jsonl");
  if (!text) return {};
  Scan result = scan(*text);
  if (result.problem) throw JournalError(describe(state_dir, *result.problem, result.version_1));
  return std::move(result.records);
}

Journal::Journal(const fs::path& state_dir) : path_(state_dir / "journal.jsonl") {
  open_existing(state_dir);
}

Journal::Journal(const fs::path& state_dir, Record header) : path_(state_dir / "journal.jsonl") {
  std::error_code error;
  fs::create_directories(state_dir, error);
  if (error) throw JournalError("cannot create " + state_dir.string() + ": " + error.message());
  if (!fs::exists(path_, error)) {
    header.type = Record::Type::header;
    header.seq = 1;
    header.at = std::chrono::system_clock::now();
    write_durably(path_, to_json_line(header) + "\n");
  }
  open_existing(state_dir);
}

void Journal::open_existing(const fs::path& state_dir) {
  const auto text = read_file(path_);
  if (!text) throw JournalError("no migration journal in " + state_dir.string());
  Scan result = scan(*text);
  if (result.problem) throw JournalError(describe(state_dir, *result.problem, result.version_1));
  const int fd = ::open(path_.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) throw JournalError("cannot open " + path_.string() + ": " + errno_text());
  const off_t complete = static_cast<off_t>(result.ends.back());
  // Cut a torn last line off before appending after it.
  if ((result.torn_tail && (::ftruncate(fd, complete) != 0 || ::fdatasync(fd) != 0)) ||
      ::lseek(fd, 0, SEEK_END) < 0) {
    const std::string why = errno_text();
    ::close(fd);
    throw JournalError("cannot cut the torn end off " + path_.string() + ": " + why);
  }
  fd_ = fd;
  size_ = complete;
  records_ = std::move(result.records);
  sync_directory(state_dir);  // the directory entry must be durable too
}

Journal::~Journal() {
  if (fd_ >= 0) ::close(fd_);
}

const Record& Journal::append(Record record) {
  if (broken_)
    throw JournalError(path_.string() + ": an earlier write failed; nothing more is written");
  record.seq = records_.back().seq + 1;
  record.at = std::chrono::system_clock::now();
  const std::string line = to_json_line(record) + "\n";
  if (!util::write_all(fd_, line) || ::fdatasync(fd_) != 0) {
    const std::string why = errno_text();
    broken_ = true;
    if (::ftruncate(fd_, size_) == 0) ::fdatasync(fd_);  // no torn line in the middle
    throw JournalError("cannot write " + path_.string() + ": " + why);
  }
  size_ += static_cast<off_t>(line.size());
  records_.push_back(std::move(record));
  return records_.back();
}

std::string repair_journal(const fs::path& state_dir, const RepairRequest& request) {
  if (request.truncate_after.has_value() == request.upgrade) {
    throw std::runtime_error("repair needs one of --truncate-after N and --upgrade");
  }
  if (request.by.empty() || request.reason.empty()) {
    throw std::runtime_error("repair needs --by (who) and --reason (why)");
  }
  std::string holder;
  const auto lock = StateLock::try_acquire(state_dir, "ringwatch migrate repair", &holder);
  if (!lock) {
    throw std::runtime_error("state directory " + state_dir.string() + " is in use by " + holder +
                             "; a journal is repaired only while no engine runs");
  }
  const auto text = read_file(state_dir / "journal.jsonl");
  if (!text) throw std::runtime_error("no migration journal in " + state_dir.string());
  const Scan result = scan(*text);
  return request.upgrade ? upgrade_journal(state_dir, *text, result, request)
                         : truncate_journal(state_dir, *text, result, request);
}

}  // namespace ringwatch::migration
