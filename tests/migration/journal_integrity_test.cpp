// A journal that proves its own integrity (migration/journal.h, "Integrity"):
// every kind of damage found in the field is refused with its line and what
// is wrong, by the reader, the writer and the command line; an operator
// repairs it with `ringwatch migrate repair`, which journals itself; a
// journal written before these checks is refused by name and upgraded.

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "migration/journal.h"
#include "tests/support/command.h"

namespace ringwatch::migration {
namespace {

namespace fs = std::filesystem;

std::string read(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// `ringwatch <args>`: exit status and everything it printed.
std::pair<int, std::string> ringwatch(const std::string& args) {
  return testing::run_command(std::string(RINGWATCH_BINARY) + " " + args);
}

class JournalIntegrityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "ringwatch-integrity-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    root_ = pattern;
    state_ = root_ / "state";
    plan_ = root_ / "plan.json";
    std::ofstream(plan_) << R"({"clusters": [{"name": "c1", "spec": ")"
                         << (root_ / "spec.json").string()
                         << R"(", "steps": [{"name": "one", "run": ["sh", "-c", "echo one >> )"
                         << (root_ / "ran").string()
                         << R"("]}, {"name": "two", "run": ["sh", "-c", "echo two >> )"
                         << (root_ / "ran").string() << R"("]}]}]})";
    std::ofstream(root_ / "spec.json") << R"({
      "name": "dead",
      "proxies": [{"name": "p1", "kind": "twemproxy", "client": "127.10.250.1:1"}],
      "backends": [{"name": "b1", "address": "127.10.250.2", "port": 1, "dns_name": "b1.test",
                    "expected_cidr": "127.10.0.0/16"}]})";
  }
  void TearDown() override { fs::remove_all(root_); }

  fs::path journal_path() const { return state_ / "journal.jsonl"; }

  // A journal of step one done, in step two: eight records.
  void write_healthy_journal() {
    Journal journal(state_, journal_header(plan_.string(), {{"c1", {"one", "two"}}}));
    Record run;
    run.type = Record::Type::run;
    run.plan = plan_.string();
    run.structure = {{"c1", {"one", "two"}}};
    journal.append(run);
    for (Phase phase : {Phase::preflight, Phase::running, Phase::verifying, Phase::done}) {
      Record state;
      state.cluster = "c1";
      state.phase = phase;
      journal.append(state);
    }
    Record state;
    state.cluster = "c1";
    state.phase = Phase::preflight;
    state.step = 1;
    journal.append(state);
    state.phase = Phase::running;
    journal.append(state);
  }

  std::vector<std::string> lines() const {
    std::vector<std::string> out;
    std::istringstream in(read(journal_path()));
    for (std::string line; std::getline(in, line);) out.push_back(line);
    return out;
  }
  void write_lines(const std::vector<std::string>& lines, const std::string& after = "") const {
    std::string text;
    for (const auto& line : lines) text += line + "\n";
    std::ofstream(journal_path(), std::ios::binary | std::ios::trunc) << text << after;
  }

  // What every reader says about the journal as it is now; "" if accepted.
  std::string refusal() const {
    try {
      read_journal(state_);
    } catch (const JournalError& error) {
      const std::string what = error.what();
      // The writer refuses it in the same words, and so does `run`.
      try {
        Journal journal(state_);
        ADD_FAILURE() << "the writer accepted what the reader refused: " << what;
      } catch (const JournalError& writer) {
        EXPECT_EQ(std::string(writer.what()), what);
      }
      return what;
    }
    return "";
  }

  std::string at_line(int line, const std::string& what) const {
    return journal_path().string() + ": line " + std::to_string(line) + ": " + what;
  }

  // `ringwatch migrate <sub> --state STATE <args>`
  std::pair<int, std::string> migrate(const std::string& sub, const std::string& args = "") {
    return ringwatch("migrate " + sub + " --state " + state_.string() + " " + args);
  }
  std::pair<int, std::string> run_plan() {
    return ringwatch("migrate run --plan " + plan_.string() + " --state " + state_.string());
  }

  fs::path root_, state_, plan_;
};

TEST_F(JournalIntegrityTest, AHealthyJournalIsAcceptedAndNumberedByLine) {
  write_healthy_journal();
  EXPECT_EQ(refusal(), "");
  const auto records = read_journal(state_);
  ASSERT_EQ(records.size(), 8u);
  for (std::size_t i = 0; i < records.size(); ++i) EXPECT_EQ(records[i].seq, i + 1);
  EXPECT_EQ(records[0].type, Record::Type::header);
  EXPECT_EQ(records[0].plan_sha256, file_sha256(plan_));
  EXPECT_EQ(records[0].plan_sha256.size(), 64u);
}

TEST_F(JournalIntegrityTest, ARecordDeletedInTheMiddleIsAGap) {
  write_healthy_journal();
  auto text = lines();
  text.erase(text.begin() + 3);  // record 4
  write_lines(text);
  EXPECT_EQ(refusal(), at_line(4, "seq 5 where 4 was expected: record 4 is missing"));
  text.erase(text.begin() + 3, text.begin() + 5);  // and 5, 6
  write_lines(text);
  EXPECT_EQ(refusal(), at_line(4, "seq 7 where 4 was expected: records 4 to 6 are missing"));
}

TEST_F(JournalIntegrityTest, ARepeatedOrReorderedRecordIsRefused) {
  write_healthy_journal();
  auto text = lines();
  text.insert(text.begin() + 4, text[3]);
  write_lines(text);
  EXPECT_EQ(refusal(),
            at_line(5, "seq 4 where 5 was expected: a record is repeated or out of order"));
  text = lines();
  text.erase(text.begin() + 4);
  std::swap(text[2], text[3]);
  write_lines(text);
  EXPECT_EQ(refusal(), at_line(3, "seq 4 where 3 was expected: record 3 is missing"));
}

TEST_F(JournalIntegrityTest, AnAppendedRecordWithAWildSeqAndNoTimeIsRefused) {
  write_healthy_journal();
  auto text = lines();
  // As written by hand: well-formed, but no checksum.
  text.push_back(R"({"seq":99,"type":"state","cluster":"c1","phase":"done","step":1})");
  write_lines(text);
  EXPECT_EQ(refusal(), at_line(9, "no checksum (\"crc\")"));
  // With a checksum that holds (made by someone who read the format), the seq is wrong...
  const std::string body =
      R"({"seq":99,"at":"2026-11-19T10:30:00.123Z","type":"state","cluster":"c1","phase":"done","step":1)";
  char crc[9];
  std::snprintf(crc, sizeof crc, "%08x", crc32c(body));
  text.back() = body + R"(,"crc":")" + crc + R"("})";
  write_lines(text);
  EXPECT_EQ(refusal(), at_line(9, "seq 99 where 9 was expected: records 9 to 98 are missing"));
  // ...and a record without its time is refused too.
  const std::string timeless = R"({"seq":9,"type":"state","cluster":"c1","phase":"done","step":1)";
  std::snprintf(crc, sizeof crc, "%08x", crc32c(timeless));
  text.back() = timeless + R"(,"crc":")" + crc + R"("})";
  write_lines(text);
  EXPECT_EQ(refusal(), at_line(9, "no time (\"at\")"));
}

TEST_F(JournalIntegrityTest, AChangedByteIsABadChecksum) {
  write_healthy_journal();
  auto text = lines();
  const auto at = text[3].find("\"running\"");
  ASSERT_NE(at, std::string::npos);
  text[3].replace(at, 9, "\"verifying\"");
  write_lines(text);
  const std::string refused = refusal();
  EXPECT_EQ(refused.rfind(at_line(4, "checksum mismatch: the line says "), 0), 0u) << refused;
  EXPECT_NE(refused.find(", its bytes give "), std::string::npos) << refused;
}

TEST_F(JournalIntegrityTest, TrailingNulBytesOrGarbageAreRefusedButOneTornLineIsNot) {
  write_healthy_journal();
  const auto text = lines();
  write_lines(text, std::string(4096, '\0'));
  EXPECT_EQ(refusal(), at_line(9, "NUL bytes where a record should be"));
  write_lines(text, std::string(16, '\0') + "\n");
  EXPECT_EQ(refusal(), at_line(9, "NUL bytes where a record should be"));
  write_lines(text, "garbage");
  EXPECT_EQ(refusal(), at_line(9, "trailing bytes that are not a record cut short"));
  write_lines(text, "\n");
  EXPECT_EQ(refusal(), at_line(9, "not a journal record"));
  // A crash mid-write leaves the start of a record: skipped, and cut by the writer.
  write_lines(text, text.back().substr(0, 30));
  EXPECT_EQ(refusal(), "");
  { Journal journal(state_); }
  EXPECT_EQ(lines().size(), 8u);
}

TEST_F(JournalIntegrityTest, AnEmptyJournalIsNoJournalAndIsNeverStartedOver) {
  fs::create_directories(state_);
  std::ofstream(journal_path()).close();
  EXPECT_EQ(refusal(), at_line(1, "empty journal (no header record)"));

  auto [status_code, status] = migrate("status");
  EXPECT_EQ(status_code, 3);
  EXPECT_EQ(status, "ringwatch migrate status: no migration journal in " + state_.string() + " (" +
                        journal_path().string() + " is empty)\n");

  auto [run_code, run] = run_plan();
  EXPECT_EQ(run_code, 3);
  EXPECT_EQ(run, "ringwatch migrate run: " + at_line(1, "empty journal (no header record)") + "\n");
  EXPECT_EQ(fs::file_size(journal_path()), 0u) << "the empty journal was replaced";
  EXPECT_FALSE(fs::exists(root_ / "ran")) << "a step ran";

  auto [pause_code, pause] = migrate("pause");
  EXPECT_EQ(pause_code, 3);
  EXPECT_EQ(pause,
            "ringwatch migrate pause: " + at_line(1, "empty journal (no header record)") + "\n");
}

TEST_F(JournalIntegrityTest, TheFirstLineMustBeAHeaderOfThisVersionAndTheOnlyOne) {
  write_healthy_journal();
  auto text = lines();
  const std::string header = text[0];
  // A record of another journal version.
  Record v3 = read_journal(state_)[0];
  v3.version = 3;
  text[0] = to_json_line(v3);
  write_lines(text);
  EXPECT_EQ(refusal(), at_line(1, "journal version 3; this ringwatch reads version 2"));
  // A journal that does not start with its header.
  Record state;
  state.seq = 1;
  state.at = std::chrono::system_clock::now();
  state.cluster = "c1";
  text[0] = to_json_line(state);
  write_lines(text);
  EXPECT_EQ(refusal(), at_line(1, "no header record"));
  // A second header.
  text[0] = header;
  Record again = *parse_record(header);
  again.seq = 9;
  text.push_back(to_json_line(again));
  write_lines(text);
  EXPECT_EQ(refusal(), at_line(9, "a second header record"));
}

TEST_F(JournalIntegrityTest, AJournalOfAnotherPlanIsRefusedByRun) {
  write_healthy_journal();
  std::ofstream(plan_) << R"({"clusters": [{"name": "c1", "spec": ")"
                       << (root_ / "spec.json").string()
                       << R"(", "steps": [{"name": "other", "run": ["true"]}]}]})";
  auto [code, output] = run_plan();
  EXPECT_EQ(code, 3);
  EXPECT_EQ(output, "ringwatch migrate run: " +
                        at_line(1, "started with plan " + plan_.string() +
                                       " (c1: one, two); plan " + plan_.string() +
                                       " has other clusters or steps (c1: other); use a new "
                                       "--state directory") +
                        "\n");
  EXPECT_EQ(lines().size(), 8u);  // nothing written
}

// --- Repair -------------------------------------------------------------------

TEST_F(JournalIntegrityTest, RepairCutsAfterARecordSavesTheRestAndJournalsItself) {
  write_healthy_journal();
  write_lines(lines(), std::string(4096, '\0'));
  ASSERT_NE(refusal(), "");

  auto [code, output] =
      migrate("repair", "--truncate-after 8 --by alice --reason 'NUL bytes after a power cut'");
  EXPECT_EQ(code, 0) << output;
  const std::string prefix =
      "journal repaired: kept records 1 to 8, cut 1 line (4096 bytes) after them, saved in " +
      (state_ / "journal.jsonl.cut-").string();
  EXPECT_EQ(output.rfind(prefix, 0), 0u) << output;
  EXPECT_TRUE(
      output.ends_with("; the repair is record 9 (by alice: NUL bytes after a power cut)\n"))
      << output;

  EXPECT_EQ(refusal(), "");
  const auto records = read_journal(state_);
  ASSERT_EQ(records.size(), 9u);
  const Record& repair = records.back();
  EXPECT_EQ(repair.type, Record::Type::repair);
  EXPECT_EQ(repair.seq, 9u);
  EXPECT_EQ(repair.by, "alice");
  EXPECT_EQ(repair.detail, "NUL bytes after a power cut");
  EXPECT_EQ(repair.truncated_after, 8u);
  EXPECT_EQ(repair.dropped_lines, 1u);
  EXPECT_NE(repair.at, std::chrono::system_clock::time_point{});
  EXPECT_EQ(read(repair.saved_to), std::string(4096, '\0'));  // the evidence is kept
  EXPECT_FALSE(fs::exists(journal_path().string() + ".tmp"));

  // The migration goes on from there.
  auto [status_code, status] = migrate("status");
  EXPECT_EQ(status_code, 0) << status;
  EXPECT_NE(status.find("cluster c1: running at step 2/2 two"), std::string::npos) << status;
}

TEST_F(JournalIntegrityTest, RepairKeepsOnlyIntactRecordsAndSaysWhatTheCutUndid) {
  write_healthy_journal();
  auto text = lines();
  text.erase(text.begin() + 6);  // record 7: a gap
  write_lines(text);
  auto [beyond_code, beyond] = migrate("repair", "--truncate-after 7 --reason gap");
  EXPECT_EQ(beyond_code, 3);
  EXPECT_EQ(beyond, "ringwatch migrate repair: " +
                        at_line(7, "seq 8 where 7 was expected: record 7 is missing") +
                        "; --truncate-after must be at most 6\n");
  EXPECT_EQ(lines(), text) << "a refused repair changed the journal";

  auto [zero_code, zero] = migrate("repair", "--truncate-after 0 --reason x");
  EXPECT_EQ(zero_code, 3);
  EXPECT_EQ(zero,
            "ringwatch migrate repair: --truncate-after must be at least 1: record 1 is the "
            "journal's header\n");
  auto [no_reason_code, no_reason] = migrate("repair", "--truncate-after 3");
  EXPECT_EQ(no_reason_code, 3);
  EXPECT_EQ(no_reason.rfind("ringwatch migrate: repair: missing --reason\n", 0), 0u) << no_reason;
  auto [neither_code, neither] = migrate("repair", "--reason x");
  EXPECT_EQ(neither_code, 3);
  EXPECT_EQ(neither,
            "ringwatch migrate repair: repair needs one of --truncate-after N and --upgrade\n");

  // Record 6 is step one's `done`: cutting it says so.
  auto [code, output] =
      migrate("repair", "--truncate-after 4 --by carol --reason 'gap at record 7'");
  EXPECT_EQ(code, 0) << output;
  EXPECT_TRUE(output.ends_with(
      "; the repair is record 5 (by carol: gap at record 7)\n"
      "  cluster c1: step 1 (one) was done in the cut records; the journal no longer says so\n"))
      << output;
  EXPECT_EQ(read_journal(state_).size(), 5u);

  auto [nothing_code, nothing] = migrate("repair", "--truncate-after 5 --reason x");
  EXPECT_EQ(nothing_code, 3);
  EXPECT_EQ(nothing, "ringwatch migrate repair: nothing to cut: record 5 is the journal's last\n");
}

TEST_F(JournalIntegrityTest, RepairIsRefusedWhileAnEngineHoldsTheStateDirectory) {
  write_healthy_journal();
  const std::string before = read(journal_path());
  auto lock = StateLock::try_acquire(state_, "ringwatch migrate run", nullptr);
  ASSERT_TRUE(lock.has_value());
  auto [code, output] = migrate("repair", "--truncate-after 3 --reason x");
  EXPECT_EQ(code, 3);
  EXPECT_EQ(output.rfind("ringwatch migrate repair: state directory " + state_.string() +
                             " is in use by pid " + std::to_string(::getpid()) +
                             ", ringwatch migrate run since ",
                         0),
            0u)
      << output;
  EXPECT_TRUE(output.ends_with("; a journal is repaired only while no engine runs\n")) << output;
  EXPECT_EQ(read(journal_path()), before);
}

// --- Journals written before these checks ---------------------------------------

TEST_F(JournalIntegrityTest, AVersion1JournalIsRefusedByNameAndUpgradedByRepair) {
  // Version 1: no header, no checksums, `run` first; step one done, step two
  // in flight when the engine stopped.
  write_healthy_journal();
  std::vector<Record> old = read_journal(state_);
  old.erase(old.begin());
  std::vector<std::string> version_1;
  for (Record& record : old) {
    record.seq -= 1;
    const std::string line = to_json_line(record);
    version_1.push_back(line.substr(0, line.rfind(R"(,"crc":")")) + "}");
  }
  write_lines(version_1);
  const std::string named =
      at_line(1,
              "a version 1 journal (no header record, no checksums: written by a ringwatch "
              "before journals checked their integrity); this ringwatch reads version 2: "
              "convert it with `ringwatch migrate repair --state " +
                  state_.string() + " --upgrade --by NAME`");
  EXPECT_EQ(refusal(), named);
  auto [status_code, status] = migrate("status");
  EXPECT_EQ(status_code, 3);
  EXPECT_EQ(status, "ringwatch migrate status: " + named + "\n");

  auto [code, output] = migrate("repair", "--upgrade --by bob");
  EXPECT_EQ(code, 0) << output;
  EXPECT_EQ(output,
            "journal upgraded from version 1 to 2: 7 records after a new header, the "
            "repair is record 9 (by bob: upgrade to journal version 2); the version 1 "
            "journal is saved in " +
                (state_ / "journal.jsonl.v1").string() + "\n");
  EXPECT_EQ(lines().size(), 9u);
  const auto records = read_journal(state_);
  EXPECT_EQ(records[0].type, Record::Type::header);
  EXPECT_EQ(records[0].structure, old[0].structure);
  EXPECT_EQ(records.back().upgraded_from, 1);
  const JournalState upgraded = replay(records);
  const JournalState before = replay(old);
  EXPECT_EQ(upgraded.find("c1")->phase, before.find("c1")->phase);
  EXPECT_EQ(upgraded.find("c1")->step, 1);
  EXPECT_EQ(upgraded.find("c1")->steps[0].outcome, StepProgress::Outcome::done);
  EXPECT_EQ(read(state_ / "journal.jsonl.v1"), [&] {
    std::string text;
    for (const auto& line : version_1) text += line + "\n";
    return text;
  }());

  auto [again_code, again] = migrate("repair", "--upgrade --by bob");
  EXPECT_EQ(again_code, 3);
  EXPECT_EQ(again,
            "ringwatch migrate repair: the journal is version 2 already: nothing to upgrade\n");

  // And the migration continues where it was: step two only.
  auto [run_code, run] = run_plan();
  EXPECT_EQ(run_code, 0) << run;
  EXPECT_EQ(read(root_ / "ran"), "two\n");
}

}  // namespace
}  // namespace ringwatch::migration
