// The migration journal (migration/journal.h) on a real file system:
// the record format, torn and corrupt lines, replay, operator commands, the
// state lock and the command queue.

#include "migration/journal.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace ringwatch::migration {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// 2026-11-19T10:30:00.123Z: whole milliseconds, as the journal keeps them.
const std::chrono::system_clock::time_point kAt =
    std::chrono::system_clock::from_time_t(1795084200) + 123ms;

class JournalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "ringwatch-journal-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    root_ = pattern;
    state_ = root_ / "state";
  }
  void TearDown() override { fs::remove_all(root_); }

  fs::path journal_path() const { return state_ / "journal.jsonl"; }

  void write_journal(const std::string& text) const {
    fs::create_directories(state_);
    std::ofstream(journal_path(), std::ios::binary) << text;
  }

  fs::path root_, state_;
};

std::string read(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Every field of two records, so a round trip that loses or invents one fails.
void expect_same(const Record& a, const Record& b) {
  EXPECT_EQ(static_cast<int>(a.type), static_cast<int>(b.type));
  EXPECT_EQ(a.seq, b.seq);
  EXPECT_EQ(a.at, b.at);
  EXPECT_EQ(a.cluster, b.cluster);
  EXPECT_EQ(a.phase, b.phase);
  EXPECT_EQ(a.step, b.step);
  EXPECT_EQ(a.reason, b.reason);
  EXPECT_EQ(a.resume_to, b.resume_to);
  EXPECT_EQ(a.detail, b.detail);
  EXPECT_EQ(a.diagnosis, b.diagnosis);
  EXPECT_EQ(a.attempt, b.attempt);
  EXPECT_EQ(a.outcome, b.outcome);
  EXPECT_EQ(a.command, b.command);
  EXPECT_EQ(a.command_id, b.command_id);
  EXPECT_EQ(a.plan, b.plan);
  EXPECT_EQ(a.structure, b.structure);
  EXPECT_EQ(a.pid, b.pid);
  EXPECT_EQ(a.group, b.group);
  EXPECT_EQ(a.orphan, b.orphan);
  EXPECT_EQ(a.plan_sha256, b.plan_sha256);
  EXPECT_EQ(a.version, b.version);
  EXPECT_EQ(a.truncated_after, b.truncated_after);
  EXPECT_EQ(a.dropped_lines, b.dropped_lines);
  EXPECT_EQ(a.saved_to, b.saved_to);
  EXPECT_EQ(a.by, b.by);
  EXPECT_EQ(a.upgraded_from, b.upgraded_from);
}

// Record builders; seq numbers are given by the tests that replay.
Record header_record(std::map<std::string, std::vector<std::string>> structure) {
  Record r;
  r.type = Record::Type::header;
  r.version = kJournalVersion;
  r.plan = "/srv/plan.json";
  r.plan_sha256 = std::string(64, 'a');
  r.structure = std::move(structure);
  r.at = kAt;
  return r;
}

// `body` (a record's JSON without its closing brace) as a journal line ends:
// with the CRC32C of exactly those bytes.
std::string with_crc(const std::string& body) {
  char crc[9];
  std::snprintf(crc, sizeof crc, "%08x", crc32c(body));
  return body + R"(,"crc":")" + crc + R"("})";
}

Record run_record(std::map<std::string, std::vector<std::string>> structure,
                  const std::string& plan = "/srv/plan.json") {
  Record r;
  r.type = Record::Type::run;
  r.plan = plan;
  r.structure = std::move(structure);
  r.pid = 4242;
  r.at = kAt;
  return r;
}

Record state_record(const std::string& cluster, Phase phase, int step,
                    const std::string& detail = "") {
  Record r;
  r.type = Record::Type::state;
  r.cluster = cluster;
  r.phase = phase;
  r.step = step;
  r.detail = detail;
  r.at = kAt;
  return r;
}

Record paused_record(const std::string& cluster, int step, PauseReason reason, Phase resume_to,
                     const std::string& detail = "", const std::string& diagnosis = "") {
  Record r = state_record(cluster, Phase::paused, step, detail);
  r.reason = reason;
  r.resume_to = resume_to;
  r.diagnosis = diagnosis;
  return r;
}

Record attempt_record(const std::string& cluster, int step, int attempt) {
  Record r;
  r.type = Record::Type::attempt;
  r.cluster = cluster;
  r.step = step;
  r.attempt = attempt;
  r.at = kAt;
  return r;
}

Record attempt_end_record(const std::string& cluster, int step, int attempt,
                          const std::string& outcome, const std::string& detail) {
  Record r = attempt_record(cluster, step, attempt);
  r.type = Record::Type::attempt_end;
  r.outcome = outcome;
  r.detail = detail;
  return r;
}

Record operator_record(const std::string& command, const std::string& cluster,
                       const std::string& id, int step = 0, const std::string& detail = "") {
  Record r;
  r.type = Record::Type::operator_command;
  r.command = command;
  r.cluster = cluster;
  r.command_id = id;
  r.step = step;
  r.detail = detail;
  r.at = kAt;
  return r;
}

Record skip_record(const std::string& cluster, int step, const std::string& detail) {
  Record r;
  r.type = Record::Type::skip;
  r.cluster = cluster;
  r.step = step;
  r.detail = detail;
  r.at = kAt;
  return r;
}

// Replays `records`, numbering them 1, 2, ...
JournalState replay_numbered(std::vector<Record> records) {
  for (std::size_t i = 0; i < records.size(); ++i) records[i].seq = i + 1;
  return replay(records);
}

// --- The record format ------------------------------------------------------

TEST_F(JournalTest, EveryRecordTypeSurvivesARoundTripThroughItsLine) {
  Record header = header_record({{"c1", {"one", "two"}}, {"c2", {"x"}}});
  Record run = run_record({{"c1", {"one", "two"}}, {"c2", {"x"}}});
  run.detail = "first run";
  run.plan_sha256 = std::string(64, 'b');
  Record state = state_record("c1", Phase::verifying, 1, "action succeeded");
  Record paused = paused_record("c1", 1, PauseReason::failed_check, Phase::preflight,
                                "preflight failed at step 2 (two): canary: \"b2\" down\nline 2",
                                "p2 hashes over a ring without b3");
  Record attempt = attempt_record("c1", 1, 3);
  attempt.group = {4243, 987654321, "0f6e2d8c-7b0e-4d1e-9a57-3f3a2f1c9b10"};
  Record attempt_end = attempt_end_record("c1", 1, 3, "timed_out", "killed after 60 s");
  Record interrupted = attempt_end_record("c1", 1, 3, "interrupted", "the engine stopped");
  interrupted.orphan = "waited";
  Record skip_command = operator_record("skip", "c1", "77-1-0", 1, "done by hand, ticket OPS-1");
  Record rejected = operator_record("resume", "c2", "77-1-1", 0, "cluster c2 is not paused");
  rejected.outcome = "rejected";
  Record pause_all = operator_record("pause", "", "77-1-2");
  Record skip = skip_record("c2", 0, "skipped by operator: ü and \t tab");
  Record repair;
  repair.type = Record::Type::repair;
  repair.at = kAt;
  repair.truncated_after = 11;
  repair.dropped_lines = 2;
  repair.saved_to = "/srv/state/journal.jsonl.cut-2026-11-19T10:30:00.123Z";
  repair.by = "alice";
  repair.detail = "NUL bytes after a power cut";
  Record upgrade;
  upgrade.type = Record::Type::repair;
  upgrade.at = kAt;
  upgrade.upgraded_from = 1;
  upgrade.by = "bob";
  upgrade.detail = "upgrade to journal version 2";
  Record verify_failing;
  verify_failing.type = Record::Type::verify_failing;
  verify_failing.at = kAt;
  verify_failing.cluster = "c1";
  verify_failing.step = 1;
  verify_failing.detail = "canary: consistency 0.83 < 1";
  verify_failing.diagnosis = "b4 misses keys through p2";

  std::uint64_t seq = 1;
  for (Record* record :
       {&header, &run, &state, &paused, &attempt, &attempt_end, &interrupted, &skip_command,
        &rejected, &pause_all, &skip, &repair, &upgrade, &verify_failing}) {
    record->seq = seq++;
    const std::string line = to_json_line(*record);
    SCOPED_TRACE(line);
    EXPECT_EQ(line.find('\n'), std::string::npos);  // one line, whatever the detail holds
    const auto parsed = parse_record(line);
    ASSERT_TRUE(parsed.has_value());
    expect_same(*parsed, *record);
  }

  // The format itself, which `migrate status` and people read.
  EXPECT_EQ(to_json_line(header),
            with_crc(R"({"seq":1,"at":"2026-11-19T10:30:00.123Z","type":"journal","version":2,)"
                     R"("plan":"/srv/plan.json","plan_sha256":")" +
                     std::string(64, 'a') + R"(","clusters":{"c1":["one","two"],"c2":["x"]})"));
  EXPECT_EQ(to_json_line(paused),
            with_crc(R"({"seq":4,"at":"2026-11-19T10:30:00.123Z","type":"state","cluster":"c1",)"
                     R"("phase":"paused","step":1,"reason":"failed_check","resume_to":"preflight",)"
                     R"("detail":"preflight failed at step 2 (two): canary: \"b2\" down\nline 2",)"
                     R"("diagnosis":"p2 hashes over a ring without b3")"));
  EXPECT_EQ(
      to_json_line(run),
      with_crc(R"({"seq":2,"at":"2026-11-19T10:30:00.123Z","type":"run","plan":"/srv/plan.json",)"
               R"("plan_sha256":")" +
               std::string(64, 'b') +
               R"(","pid":4242,"clusters":{"c1":["one","two"],"c2":["x"]},"detail":"first run")"));
  EXPECT_EQ(to_json_line(verify_failing),
            with_crc(R"({"seq":14,"at":"2026-11-19T10:30:00.123Z","type":"verify_failing",)"
                     R"("cluster":"c1","step":1,"detail":"canary: consistency 0.83 < 1",)"
                     R"("diagnosis":"b4 misses keys through p2")"));
  EXPECT_EQ(to_json_line(attempt),
            with_crc(R"({"seq":5,"at":"2026-11-19T10:30:00.123Z","type":"attempt","cluster":"c1",)"
                     R"("step":1,"attempt":3,"pgid":4243,"start_time":987654321,)"
                     R"("boot_id":"0f6e2d8c-7b0e-4d1e-9a57-3f3a2f1c9b10")"));
  EXPECT_EQ(
      to_json_line(attempt_end),
      with_crc(R"({"seq":6,"at":"2026-11-19T10:30:00.123Z","type":"attempt_end","cluster":"c1",)"
               R"("step":1,"attempt":3,"outcome":"timed_out","detail":"killed after 60 s")"));
  EXPECT_EQ(
      to_json_line(interrupted),
      with_crc(R"({"seq":7,"at":"2026-11-19T10:30:00.123Z","type":"attempt_end","cluster":"c1",)"
               R"("step":1,"attempt":3,"outcome":"interrupted","orphan":"waited",)"
               R"("detail":"the engine stopped")"));
  EXPECT_EQ(
      to_json_line(pause_all),
      with_crc(R"({"seq":10,"at":"2026-11-19T10:30:00.123Z","type":"operator","command":"pause",)"
               R"("id":"77-1-2")"));
  EXPECT_EQ(
      to_json_line(repair),
      with_crc(
          R"({"seq":12,"at":"2026-11-19T10:30:00.123Z","type":"repair","truncated_after":11,)"
          R"("dropped_lines":2,"saved_to":"/srv/state/journal.jsonl.cut-2026-11-19T10:30:00.123Z",)"
          R"("by":"alice","detail":"NUL bytes after a power cut")"));
}

TEST_F(JournalTest, TheChecksumIsCrc32c) {
  // The check value of CRC-32C (Castagnoli), as iSCSI (RFC 3720) and every
  // catalogue of CRCs give it.
  EXPECT_EQ(crc32c("123456789"), 0xe3069283u);
  EXPECT_EQ(crc32c(""), 0u);
  EXPECT_NE(crc32c("{\"seq\":1}"), crc32c("{\"seq\":2}"));
}

TEST_F(JournalTest, ParseRecordRejectsWhatIsNotACompleteRecord) {
  const std::string good = to_json_line(state_record("c1", Phase::running, 0));
  ASSERT_TRUE(parse_record(good).has_value());
  EXPECT_FALSE(parse_record(good.substr(0, good.size() - 1)).has_value());  // torn
  EXPECT_FALSE(parse_record("").has_value());
  EXPECT_FALSE(parse_record("[1, 2]").has_value());
  EXPECT_FALSE(parse_record(R"({"seq":1,"type":"teleport"})").has_value());
  EXPECT_FALSE(parse_record(R"({"type":"state","phase":"running"})").has_value());  // no seq
  EXPECT_FALSE(parse_record(R"({"seq":1,"type":"state","phase":"sleeping"})").has_value());
  EXPECT_FALSE(parse_record(R"({"seq":1,"type":"state","phase":"paused","step":0})").has_value());
  EXPECT_FALSE(parse_record(R"({"seq":1,"type":"state","phase":"paused","reason":"bored",)"
                            R"("resume_to":"running"})")
                   .has_value());
}

// --- Reading and writing the file -------------------------------------------

TEST_F(JournalTest, ReadJournalSkipsATornLastLine) {
  EXPECT_TRUE(read_journal(state_).empty());  // no file: no records
  Record first = header_record({{"c1", {"one"}}});
  first.seq = 1;
  Record second = state_record("c1", Phase::preflight, 0);
  second.seq = 2;
  Record third = state_record("c1", Phase::running, 0);
  third.seq = 3;
  const std::string third_line = to_json_line(third);
  const std::string complete = to_json_line(first) + "\n" + to_json_line(second) + "\n";

  write_journal(complete + third_line.substr(0, 20));
  auto records = read_journal(state_);
  ASSERT_EQ(records.size(), 2u);
  expect_same(records[0], first);
  expect_same(records[1], second);

  // A whole record without its newline was cut short too: the newline is
  // part of the same write, so it was never acted on.
  write_journal(complete + third_line);
  EXPECT_EQ(read_journal(state_).size(), 2u);
  // So were the first bytes of one.
  write_journal(complete + "{");
  EXPECT_EQ(read_journal(state_).size(), 2u);

  write_journal(complete + third_line + "\n");
  EXPECT_EQ(read_journal(state_).size(), 3u);
}

TEST_F(JournalTest, ReadJournalThrowsNamingFileAndLineForACorruptMiddleLine) {
  Record first = header_record({{"c1", {"one"}}});
  first.seq = 1;
  Record third = state_record("c1", Phase::preflight, 0);
  third.seq = 3;
  write_journal(to_json_line(first) + "\n" + R"({"seq":2,"type":"state","phase":"runn)" + "\n" +
                to_json_line(third) + "\n");
  try {
    read_journal(state_);
    FAIL() << "a corrupt middle line was accepted";
  } catch (const JournalError& error) {
    EXPECT_EQ(std::string(error.what()),
              (state_ / "journal.jsonl").string() + ": line 2: not a journal record");
  }
  // The writer refuses it as well: it must never append after a corrupt line.
  EXPECT_THROW(Journal{state_}, JournalError);
}

TEST_F(JournalTest, OpeningCutsATornTailOffAndAppendsAfterIt) {
  Record first = header_record({{"c1", {"one"}}});
  first.seq = 1;
  Record second = state_record("c1", Phase::preflight, 0);
  second.seq = 2;
  const std::string complete = to_json_line(first) + "\n" + to_json_line(second) + "\n";
  write_journal(complete + R"({"seq":3,"at":"2026-11-19T10:3)");

  Journal journal(state_);
  ASSERT_EQ(journal.records().size(), 2u);
  expect_same(journal.records()[1], second);
  EXPECT_EQ(read(journal_path()), complete);  // cut before anything is appended

  const auto before = std::chrono::system_clock::now();
  const Record& appended = journal.append(state_record("c1", Phase::running, 0, "checks passed"));
  EXPECT_EQ(appended.seq, 3u);  // numbered after the last complete record
  EXPECT_GE(appended.at, before - 1ms);
  EXPECT_EQ(read(journal_path()), complete + to_json_line(appended) + "\n");

  const auto records = read_journal(state_);
  ASSERT_EQ(records.size(), 3u);
  EXPECT_EQ(records[2].seq, 3u);
  EXPECT_EQ(records[2].phase, Phase::running);
  EXPECT_EQ(records[2].detail, "checks passed");
  EXPECT_EQ(journal.records().size(), 3u);
}

TEST_F(JournalTest, ANewJournalIsCreatedWithItsHeaderAndNumbersOn) {
  // Without a journal, only the constructor given a header makes one.
  try {
    Journal missing(state_);
    ADD_FAILURE() << "opened a journal that does not exist";
  } catch (const JournalError& error) {
    EXPECT_EQ(std::string(error.what()), "no migration journal in " + state_.string());
  }
  EXPECT_FALSE(fs::exists(journal_path()));
  {
    Journal journal(state_, header_record({{"c1", {"one"}}}));
    ASSERT_EQ(journal.records().size(), 1u);
    EXPECT_EQ(journal.records()[0].type, Record::Type::header);
    EXPECT_EQ(journal.records()[0].seq, 1u);
    EXPECT_TRUE(fs::exists(journal_path()));
    EXPECT_FALSE(fs::exists(state_ / "journal.jsonl.tmp"));  // renamed into place
    EXPECT_EQ(journal.append(run_record({{"c1", {"one"}}})).seq, 2u);
    EXPECT_EQ(journal.append(state_record("c1", Phase::preflight, 0)).seq, 3u);
  }
  // Reopened (the header given again is not written again): continues the numbering.
  Journal again(state_, header_record({{"other", {"x"}}}));
  EXPECT_EQ(again.records().size(), 3u);
  EXPECT_EQ(again.records()[0].structure,
            (std::map<std::string, std::vector<std::string>>{{"c1", {"one"}}}));
  EXPECT_EQ(again.append(state_record("c1", Phase::running, 0)).seq, 4u);
  EXPECT_EQ(read_journal(state_).size(), 4u);
}

TEST_F(JournalTest, AJournalHeaderNamesThePlanFileByItsSha256) {
  const fs::path plan = root_ / "plan.json";
  std::ofstream(plan) << "abc";
  // SHA-256("abc"), FIPS 180-2 appendix B.1.
  const Record header = journal_header(plan.string(), {{"c1", {"one"}}});
  EXPECT_EQ(header.type, Record::Type::header);
  EXPECT_EQ(header.version, 2);
  EXPECT_EQ(header.plan, plan.string());
  EXPECT_EQ(header.plan_sha256, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(file_sha256(root_ / "none.json"), "");
}

// --- Replay -----------------------------------------------------------------

TEST_F(JournalTest, ReplayFollowsPhasesStepsAndAttempts) {
  std::vector<Record> records{
      run_record({{"c1", {"one", "two", "three"}}, {"c2", {"x"}}}),
      state_record("c1", Phase::preflight, 0, "started"),
      state_record("c1", Phase::running, 0),
      attempt_record("c1", 0, 1),
  };
  JournalState s = replay_numbered(records);
  EXPECT_EQ(s.runs, 1);
  EXPECT_EQ(s.plan, "/srv/plan.json");
  EXPECT_EQ(s.cluster_order, (std::vector<std::string>{"c1", "c2"}));
  EXPECT_EQ(s.last_seq, 4u);
  ASSERT_NE(s.find("c1"), nullptr);
  EXPECT_EQ(s.find("nope"), nullptr);
  EXPECT_EQ(s.find("c1")->phase, Phase::running);
  EXPECT_EQ(s.find("c1")->step_names, (std::vector<std::string>{"one", "two", "three"}));
  ASSERT_EQ(s.find("c1")->steps.size(), 3u);
  EXPECT_EQ(s.find("c1")->steps[0].attempts, 1);
  EXPECT_TRUE(s.find("c1")->steps[0].in_flight);  // started, no end: interrupted if we stop here
  EXPECT_EQ(s.find("c1")->steps[0].detail, "attempt 1 started");
  EXPECT_EQ(s.find("c2")->phase, Phase::pending);

  records.push_back(attempt_end_record("c1", 0, 1, "failed", "exit status 1"));
  records.push_back(attempt_record("c1", 0, 2));
  s = replay_numbered(records);
  EXPECT_EQ(s.find("c1")->steps[0].attempts, 2);
  EXPECT_TRUE(s.find("c1")->steps[0].in_flight);
  EXPECT_EQ(s.find("c1")->steps[0].last_outcome, "failed");

  records.push_back(attempt_end_record("c1", 0, 2, "succeeded", "exit status 0"));
  records.push_back(state_record("c1", Phase::verifying, 0));
  s = replay_numbered(records);
  EXPECT_FALSE(s.find("c1")->steps[0].in_flight);
  EXPECT_EQ(s.find("c1")->steps[0].last_outcome, "succeeded");
  EXPECT_EQ(s.find("c1")->steps[0].detail, "exit status 0");
  EXPECT_EQ(s.find("c1")->steps[0].outcome, StepProgress::Outcome::open);  // not done yet

  records.push_back(state_record("c1", Phase::done, 0));
  records.push_back(state_record("c1", Phase::preflight, 1));
  Record paused = paused_record("c1", 1, PauseReason::failed_check, Phase::preflight,
                                "preflight failed", "b2 is down");
  paused.at = kAt + 5s;
  records.push_back(paused);
  s = replay_numbered(records);
  const ClusterProgress* c1 = s.find("c1");
  EXPECT_EQ(c1->steps[0].outcome, StepProgress::Outcome::done);
  EXPECT_EQ(c1->steps[1].outcome, StepProgress::Outcome::open);
  EXPECT_EQ(c1->phase, Phase::paused);
  EXPECT_EQ(c1->step, 1);
  EXPECT_EQ(c1->reason, PauseReason::failed_check);
  EXPECT_EQ(c1->resume_to, Phase::preflight);
  EXPECT_EQ(c1->detail, "preflight failed");
  EXPECT_EQ(c1->diagnosis, "b2 is down");
  EXPECT_EQ(c1->since, kAt + 5s);
  EXPECT_FALSE(c1->terminal());

  // Skipped while paused, resumed: the step stays skipped when it is passed.
  records.push_back(skip_record("c1", 1, "skipped by operator: by hand"));
  records.push_back(state_record("c1", Phase::preflight, 1, "resumed by operator"));
  records.push_back(state_record("c1", Phase::done, 1));
  s = replay_numbered(records);
  c1 = s.find("c1");
  EXPECT_EQ(c1->steps[1].outcome, StepProgress::Outcome::skipped);
  EXPECT_EQ(c1->steps[1].detail, "skipped by operator: by hand");
  EXPECT_EQ(c1->reason, PauseReason::none);  // no longer paused
  EXPECT_EQ(c1->diagnosis, "");

  for (Phase phase : {Phase::preflight, Phase::running, Phase::verifying, Phase::done}) {
    records.push_back(state_record("c1", phase, 2));
  }
  records.push_back(state_record("c1", Phase::finished, 3, "every step done"));
  // Records about clusters the runs never named change nothing.
  records.push_back(state_record("ghost", Phase::aborted, 0));
  // A second run keeps the first run's plan name and every cluster's progress.
  records.push_back(run_record({{"c1", {"one", "two", "three"}}, {"c2", {"x"}}}, "/srv/copy.json"));
  s = replay_numbered(records);
  EXPECT_EQ(s.find("c1")->phase, Phase::finished);
  EXPECT_EQ(s.find("c1")->step, 3);
  EXPECT_TRUE(s.find("c1")->terminal());
  EXPECT_EQ(s.find("c1")->steps[2].outcome, StepProgress::Outcome::done);
  EXPECT_EQ(s.find("ghost"), nullptr);
  EXPECT_EQ(s.clusters.size(), 2u);
  EXPECT_EQ(s.runs, 2);
  EXPECT_EQ(s.plan, "/srv/plan.json");
  EXPECT_EQ(s.last_seq, records.size());
  EXPECT_EQ(s.find("c2")->phase, Phase::pending);
}

// journal.h, apply(): "An accepted operator command sets requests on its
// clusters (every non-terminal one when it names none): pause sets
// pause_requested unless the cluster is already paused by an operator; resume
// sets resume_requested on a paused cluster and clears pause_requested; abort
// sets abort_requested; skip marks the step skipped. A state record clears the
// requests it fulfils."
TEST_F(JournalTest, OperatorRequestsAreSetByCommandsAndClearedByTheStatesThatFulfilThem) {
  std::vector<Record> records{
      run_record({{"busy", {"one", "two", "three"}},
                  {"checks", {"one"}},
                  {"held", {"one"}},
                  {"over", {"one"}}}),
      state_record("busy", Phase::running, 0),
      paused_record("checks", 0, PauseReason::failed_check, Phase::preflight),
      paused_record("held", 0, PauseReason::operator_request, Phase::running),
      state_record("over", Phase::finished, 1),
      operator_record("pause", "", "id-1"),  // every cluster
  };
  JournalState s = replay_numbered(records);
  EXPECT_TRUE(s.find("busy")->pause_requested);
  EXPECT_TRUE(s.find("checks")->pause_requested);  // paused, but not by an operator
  EXPECT_FALSE(s.find("held")->pause_requested);   // already paused by an operator
  EXPECT_FALSE(s.find("over")->pause_requested);   // terminal
  EXPECT_EQ(s.applied_commands, (std::set<std::string>{"id-1"}));

  // A pause for a check that failed does not fulfil the operator's pause...
  records.push_back(paused_record("busy", 0, PauseReason::failed_check, Phase::verifying));
  s = replay_numbered(records);
  EXPECT_TRUE(s.find("busy")->pause_requested);
  // ...a pause by the operator does.
  records.push_back(paused_record("busy", 0, PauseReason::operator_request, Phase::verifying));
  s = replay_numbered(records);
  EXPECT_FALSE(s.find("busy")->pause_requested);

  // Resume: set on paused clusters, and it clears a pending pause.
  records.push_back(operator_record("resume", "", "id-2"));
  s = replay_numbered(records);
  EXPECT_TRUE(s.find("busy")->resume_requested);
  EXPECT_TRUE(s.find("checks")->resume_requested);
  EXPECT_FALSE(s.find("checks")->pause_requested);
  EXPECT_TRUE(s.find("held")->resume_requested);
  EXPECT_FALSE(s.find("over")->resume_requested);
  // A state that is not paused fulfils a resume; another paused one does not.
  records.push_back(state_record("busy", Phase::verifying, 0, "resumed by operator"));
  records.push_back(paused_record("checks", 0, PauseReason::blackout, Phase::preflight));
  s = replay_numbered(records);
  EXPECT_FALSE(s.find("busy")->resume_requested);
  EXPECT_TRUE(s.find("checks")->resume_requested);

  // Resume of a cluster that is not paused requests nothing.
  records.push_back(operator_record("resume", "busy", "id-3"));
  s = replay_numbered(records);
  EXPECT_FALSE(s.find("busy")->resume_requested);

  // A rejected command is remembered (applied once) but changes nothing.
  Record rejected = operator_record("abort", "busy", "id-4", 0, "why not");
  rejected.outcome = "rejected";
  records.push_back(rejected);
  s = replay_numbered(records);
  EXPECT_FALSE(s.find("busy")->abort_requested);
  EXPECT_EQ(s.applied_commands, (std::set<std::string>{"id-1", "id-2", "id-3", "id-4"}));

  // Abort of one cluster; aborted clears it and any pause request with it.
  records.push_back(operator_record("pause", "busy", "id-5"));
  records.push_back(operator_record("abort", "busy", "id-6"));
  s = replay_numbered(records);
  EXPECT_TRUE(s.find("busy")->abort_requested);
  EXPECT_TRUE(s.find("busy")->pause_requested);
  EXPECT_FALSE(s.find("held")->abort_requested);  // named another cluster
  records.push_back(state_record("busy", Phase::aborted, 0, "aborted by operator"));
  s = replay_numbered(records);
  EXPECT_EQ(s.find("busy")->phase, Phase::aborted);
  EXPECT_FALSE(s.find("busy")->abort_requested);
  EXPECT_FALSE(s.find("busy")->pause_requested);

  // Commands for a terminal cluster change nothing.
  records.push_back(operator_record("abort", "", "id-7"));
  s = replay_numbered(records);
  EXPECT_FALSE(s.find("busy")->abort_requested);
  EXPECT_FALSE(s.find("over")->abort_requested);
  EXPECT_TRUE(s.find("held")->abort_requested);
  EXPECT_TRUE(s.find("checks")->abort_requested);

  // Finished clears a pause request.
  records.push_back(operator_record("pause", "checks", "id-8"));
  records.push_back(state_record("checks", Phase::finished, 1));
  s = replay_numbered(records);
  EXPECT_FALSE(s.find("checks")->pause_requested);
}

TEST_F(JournalTest, AnAcceptedSkipMarksTheStepSkippedWithTheOperatorsReason) {
  const std::vector<Record> base{
      run_record({{"c1", {"one", "two", "three"}}}),
      state_record("c1", Phase::running, 0),
  };
  JournalState s = replay_numbered(base);
  Command skip{"id-1", "skip", "c1", "three", "done by hand, ticket OPS-1", ""};
  ASSERT_EQ(check_command(s, skip), std::nullopt);
  const Record accepted = accept_command(s, skip);
  EXPECT_EQ(accepted.type, Record::Type::operator_command);
  EXPECT_EQ(accepted.command, "skip");
  EXPECT_EQ(accepted.command_id, "id-1");
  EXPECT_EQ(accepted.cluster, "c1");
  EXPECT_EQ(accepted.step, 2);
  EXPECT_EQ(accepted.detail, "done by hand, ticket OPS-1");
  std::vector<Record> records = base;
  records.push_back(accepted);
  s = replay_numbered(records);
  EXPECT_EQ(s.find("c1")->steps[2].outcome, StepProgress::Outcome::skipped);
  EXPECT_EQ(s.find("c1")->steps[2].detail, "skipped by operator: done by hand, ticket OPS-1");
  EXPECT_EQ(s.find("c1")->steps[1].outcome, StepProgress::Outcome::open);
  EXPECT_EQ(s.find("c1")->phase, Phase::running);  // skipping changes no phase
  EXPECT_TRUE(s.applied_commands.count("id-1"));
}

// --- Operator commands ------------------------------------------------------

TEST_F(JournalTest, CheckCommandSaysWhyACommandCannotBeTaken) {
  auto command = [](const std::string& name, const std::string& cluster,
                    const std::string& step = "", const std::string& reason = "") {
    return Command{"id", name, cluster, step, reason, ""};
  };
  EXPECT_EQ(check_command(JournalState{}, command("pause", "")),
            "no migration has run in this state directory");

  const JournalState s = replay_numbered({
      run_record({{"c1", {"one", "two", "three"}},
                  {"c2", {"one", "two"}},
                  {"fin", {"one"}},
                  {"gone", {"one"}}}),
      state_record("c1", Phase::preflight, 0),
      state_record("c1", Phase::done, 0),
      state_record("c1", Phase::preflight, 1),
      state_record("c1", Phase::running, 1),
      paused_record("c2", 1, PauseReason::failed_action, Phase::running),
      skip_record("c2", 0, "skipped by operator: x"),
      state_record("fin", Phase::finished, 1),
      state_record("gone", Phase::aborted, 0),
  });

  EXPECT_EQ(check_command(s, command("reboot", "c1")), "unknown command \"reboot\"");
  EXPECT_EQ(check_command(s, command("pause", "nope")), "no cluster \"nope\" in this migration");
  EXPECT_EQ(check_command(s, command("pause", "fin")), "cluster fin is finished");
  EXPECT_EQ(check_command(s, command("abort", "gone")), "cluster gone is aborted");
  EXPECT_EQ(check_command(s, command("resume", "c1")), "cluster c1 is not paused (it is running)");
  EXPECT_EQ(check_command(s, command("skip", "", "one", "why")), "skip needs --cluster");
  EXPECT_EQ(check_command(s, command("skip", "c1", "three", "")), "skip needs a --reason");
  EXPECT_EQ(check_command(s, command("skip", "c1", "four", "why")),
            "cluster c1 has no step \"four\"");
  EXPECT_EQ(check_command(s, command("skip", "c1", "one", "why")),
            "step one of cluster c1 is already done");
  EXPECT_EQ(check_command(s, command("skip", "c2", "one", "why")),
            "step one of cluster c2 is already skipped");
  EXPECT_EQ(check_command(s, command("skip", "c1", "two", "why")),
            "step two of cluster c1 is in running; pause the cluster first");

  // What can be taken.
  EXPECT_EQ(check_command(s, command("pause", "")), std::nullopt);
  EXPECT_EQ(check_command(s, command("abort", "")), std::nullopt);
  EXPECT_EQ(check_command(s, command("pause", "c1")), std::nullopt);
  EXPECT_EQ(check_command(s, command("resume", "c2")), std::nullopt);
  EXPECT_EQ(check_command(s, command("skip", "c1", "three", "why")), std::nullopt);  // a later step
  EXPECT_EQ(check_command(s, command("skip", "c2", "two", "why")), std::nullopt);    // paused there
}

// --- The state lock -----------------------------------------------------------

TEST_F(JournalTest, TheStateLockIsExclusiveAndNamesItsHolder) {
  std::string holder = "untouched";
  auto first = StateLock::try_acquire(state_, "ringwatch migrate run", &holder);
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(holder, "untouched");
  EXPECT_TRUE(fs::exists(state_ / "lock"));

  // A second acquisition in this very process is refused too (flock locks
  // belong to the open file, not to the process).
  auto second = StateLock::try_acquire(state_, "ringwatch migrate pause", &holder);
  EXPECT_FALSE(second.has_value());
  const std::string prefix = "pid " + std::to_string(::getpid()) + ", ringwatch migrate run since ";
  ASSERT_EQ(holder.rfind(prefix, 0), 0u) << holder;
  const std::string since = holder.substr(prefix.size());
  EXPECT_EQ(since.size(), std::string("2026-11-30T10:00:00.000Z").size()) << holder;
  EXPECT_EQ(since.back(), 'Z') << holder;

  // And from another process.
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    std::string other;
    const bool refused = !StateLock::try_acquire(state_, "child", &other).has_value();
    ::_exit(refused && other.rfind(prefix, 0) == 0 ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "the child got the lock";

  // Moving the lock keeps it held; destroying it frees it.
  std::optional<StateLock> moved(std::move(*first));
  first.reset();
  EXPECT_FALSE(StateLock::try_acquire(state_, "again", nullptr).has_value());
  moved.reset();
  auto third = StateLock::try_acquire(state_, "ringwatch migrate abort", &holder);
  EXPECT_TRUE(third.has_value());
  EXPECT_EQ(read(state_ / "lock")
                .rfind("pid " + std::to_string(::getpid()) + ", ringwatch migrate abort since ", 0),
            0u);
}

// --- The command queue --------------------------------------------------------

TEST_F(JournalTest, QueuedCommandsAreReadFromAnOffsetAndOnlyWhenComplete) {
  std::uint64_t offset = 0;
  EXPECT_TRUE(read_commands(state_, offset).empty());  // nothing queued yet
  EXPECT_EQ(offset, 0u);
  // The state directory must exist: the engine made it.
  try {
    enqueue_command(state_, Command{"id-0", "pause", "", "", "", ""});
    ADD_FAILURE() << "queued into a missing directory";
  } catch (const JournalError& error) {
    EXPECT_EQ(std::string(error.what()), "cannot open " + (state_ / "commands.jsonl").string() +
                                             ": No such file or directory");
  }
  fs::create_directories(state_);

  const Command pause{make_command_id(), "pause", "c1", "", "", ""};
  const Command skip{make_command_id(), "skip", "c2", "two", "by hand: \"OPS-1\"\nsee ticket", ""};
  EXPECT_NE(pause.id, skip.id);
  EXPECT_EQ(pause.id.rfind(std::to_string(::getpid()) + "-", 0), 0u) << pause.id;
  enqueue_command(state_, pause);
  enqueue_command(state_, skip);
  const fs::path file = state_ / "commands.jsonl";
  std::string text = read(file);
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 2);  // one line each

  auto commands = read_commands(state_, offset);
  ASSERT_EQ(commands.size(), 2u);
  EXPECT_EQ(commands[0].id, pause.id);
  EXPECT_EQ(commands[0].command, "pause");
  EXPECT_EQ(commands[0].cluster, "c1");
  EXPECT_EQ(commands[1].id, skip.id);
  EXPECT_EQ(commands[1].command, "skip");
  EXPECT_EQ(commands[1].cluster, "c2");
  EXPECT_EQ(commands[1].step, "two");
  EXPECT_EQ(commands[1].reason, "by hand: \"OPS-1\"\nsee ticket");
  EXPECT_EQ(offset, fs::file_size(file));

  // Nothing new: nothing returned, the offset stays.
  EXPECT_TRUE(read_commands(state_, offset).empty());
  EXPECT_EQ(offset, fs::file_size(file));

  // A line still being written is not returned until its newline is there.
  const std::uint64_t before_partial = offset;
  std::ofstream(file, std::ios::app | std::ios::binary) << R"({"id":"id-3","command":"abo)";
  EXPECT_TRUE(read_commands(state_, offset).empty());
  EXPECT_EQ(offset, before_partial);
  std::ofstream(file, std::ios::app | std::ios::binary)
      << R"(rt","cluster":"c1","step":"","reason":"enough"})"
      << "\n";
  commands = read_commands(state_, offset);
  ASSERT_EQ(commands.size(), 1u);
  EXPECT_EQ(commands[0].id, "id-3");
  EXPECT_EQ(commands[0].command, "abort");
  EXPECT_EQ(commands[0].cluster, "c1");
  EXPECT_EQ(commands[0].reason, "enough");
  EXPECT_EQ(offset, fs::file_size(file));

  // Lines that are not commands are passed over, and so is the offset.
  std::ofstream(file, std::ios::app | std::ios::binary) << "garbage\n"
                                                        << R"({"command":"pause"})"
                                                        << "\n";
  enqueue_command(state_, Command{"id-5", "resume", "", "", "", ""});
  commands = read_commands(state_, offset);
  ASSERT_EQ(commands.size(), 1u);
  EXPECT_EQ(commands[0].id, "id-5");
  EXPECT_EQ(commands[0].command, "resume");
  EXPECT_EQ(commands[0].cluster, "");
  EXPECT_EQ(offset, fs::file_size(file));

  // From the start again: everything complete, in order.
  std::uint64_t from_start = 0;
  commands = read_commands(state_, from_start);
  ASSERT_EQ(commands.size(), 4u);
  EXPECT_EQ(commands[2].id, "id-3");
  EXPECT_EQ(from_start, offset);
}

}  // namespace
}  // namespace ringwatch::migration
