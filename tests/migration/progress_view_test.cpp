// The model behind `ringwatch migrate status --watch` (migration/progress_view.h)
// on synthetic journals, written record by record with a clock the test
// moves: the ETA runs down as steps finish, prefers a step's own history on
// other clusters to the mean, stands still while a cluster is paused; the
// verdict of the gating checks and the step numbers `status` uses.

#include "migration/progress_view.h"

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace ringwatch::migration {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using std::chrono::milliseconds;
using Clock = std::chrono::system_clock;

const Clock::time_point kStart = Clock::from_time_t(1795084200);

// A journal as the engine would write it, at times the test sets.
using Structure = std::map<std::string, std::vector<std::string>>;  // cluster -> steps

class SyntheticJournal {
 public:
  explicit SyntheticJournal(Structure structure) {
    Record header;
    header.type = Record::Type::header;
    header.plan = "plan.json";
    header.version = kJournalVersion;
    header.structure = structure;
    add(header);
    Record run = header;
    run.type = Record::Type::run;
    add(run);
  }

  void wait(milliseconds duration) { now_ += duration; }
  Clock::time_point now() const { return now_; }

  void state(const std::string& cluster, Phase phase, int step, std::string detail = "") {
    Record record;
    record.type = Record::Type::state;
    record.cluster = cluster;
    record.phase = phase;
    record.step = step;
    record.detail = std::move(detail);
    add(record);
  }

  void pause(const std::string& cluster, int step, PauseReason reason, Phase resume_to,
             std::string detail, std::string diagnosis = "") {
    Record record;
    record.type = Record::Type::state;
    record.cluster = cluster;
    record.phase = Phase::paused;
    record.step = step;
    record.reason = reason;
    record.resume_to = resume_to;
    record.detail = std::move(detail);
    record.diagnosis = std::move(diagnosis);
    add(record);
  }

  void attempt(const std::string& cluster, int step, int number) {
    Record record;
    record.type = Record::Type::attempt;
    record.cluster = cluster;
    record.step = step;
    record.attempt = number;
    add(record);
  }

  void engine_restarts() {
    Record run;
    run.type = Record::Type::run;
    run.plan = "plan.json";
    add(run);
  }

  // A verify round of step `index` that failed before its deadline.
  void verify_failing(const std::string& cluster, int index, std::string failures,
                      std::string diagnosis) {
    Record record;
    record.type = Record::Type::verify_failing;
    record.cluster = cluster;
    record.step = index;
    record.detail = std::move(failures);
    record.diagnosis = std::move(diagnosis);
    add(record);
  }

  // An operator's skip of step `index` (an index, as records count).
  void skip(const std::string& cluster, int index) {
    Record record;
    record.type = Record::Type::operator_command;
    record.command = "skip";
    record.cluster = cluster;
    record.step = index;
    record.detail = "not needed here";
    add(record);
  }

  // One whole step: preflight (1 s, passing), running for `action`, verifying
  // (1 s, passing), done, and the next step's preflight.
  void step(const std::string& cluster, int index, milliseconds action) {
    if (index == 0) state(cluster, Phase::preflight, 0, "started");
    wait(1s);
    state(cluster, Phase::running, index, "preflight checks passed");
    attempt(cluster, index, 1);
    wait(action);
    state(cluster, Phase::verifying, index, "action succeeded");
    wait(1s);
    state(cluster, Phase::done, index, "verify checks passed");
    state(cluster, Phase::preflight, index + 1, "");
  }

  ProgressView view() const { return progress_view(records_, now_); }
  const ClusterView& cluster(const std::string& name) {
    views_.push_back(view());
    for (const ClusterView& cluster : views_.back().clusters) {
      if (cluster.name == name) return cluster;
    }
    throw std::runtime_error("no cluster " + name);
  }

 private:
  void add(Record record) {
    record.seq = records_.size() + 1;
    record.at = now_;
    records_.push_back(std::move(record));
  }

  Clock::time_point now_ = kStart;
  std::vector<Record> records_;
  std::vector<ProgressView> views_;
};

TEST(ProgressViewTest, NoEtaBeforeAnyStepIsDoneThenTheMeanOfTheStepsDone) {
  SyntheticJournal journal({{"a", {"one", "two", "three"}}});
  EXPECT_FALSE(journal.cluster("a").eta.has_value());  // pending, nothing done anywhere
  journal.state("a", Phase::preflight, 0, "started");
  journal.wait(3s);
  EXPECT_FALSE(journal.cluster("a").eta.has_value());
  journal.step("a", 0, 8s);  // 1 s preflight (here: 3 + 1) + 8 s + 1 s verify
  const ClusterView& after_one = journal.cluster("a");
  EXPECT_EQ(after_one.step_number, 2);
  EXPECT_EQ(after_one.step_name, "two");
  ASSERT_TRUE(after_one.eta.has_value());
  EXPECT_EQ(*after_one.eta, 26s);  // two steps left at the mean of one 13 s step
  EXPECT_EQ(after_one.eta_basis, EtaBasis::mean_so_far);
  EXPECT_EQ(after_one.samples, 1);
}

TEST(ProgressViewTest, TheEtaDecreasesAsStepsFinishAndAsTheCurrentStepWorks) {
  SyntheticJournal journal({{"a", {"one", "two", "three", "four"}}});
  std::vector<milliseconds> etas;
  journal.step("a", 0, 8s);  // every step: 10 s of work
  for (int index = 1; index < 4; ++index) {
    etas.push_back(*journal.cluster("a").eta);
    journal.wait(1s);
    journal.state("a", Phase::running, index, "preflight checks passed");
    journal.wait(4s);
    etas.push_back(*journal.cluster("a").eta);  // 5 s into the step
    journal.wait(4s);
    journal.state("a", Phase::verifying, index, "action succeeded");
    journal.wait(1s);
    journal.state("a", Phase::done, index, "verify checks passed");
    journal.state("a", index == 3 ? Phase::finished : Phase::preflight, index + 1);
  }
  EXPECT_EQ(etas, (std::vector<milliseconds>{30s, 25s, 20s, 15s, 10s, 5s}));
  const ClusterView& finished = journal.cluster("a");
  EXPECT_TRUE(finished.ended());
  EXPECT_FALSE(finished.eta.has_value());
  EXPECT_EQ(finished.step_number, 0);  // past the last step, as `status`'s "the end"
  EXPECT_EQ(finished.overall_elapsed, 40s);
  EXPECT_TRUE(journal.view().all_ended());
}

TEST(ProgressViewTest, AStepsOwnHistoryOnOtherClustersWinsOverTheMean) {
  SyntheticJournal journal(
      {{"a", {"slow", "fast", "faster"}}, {"b", {"slow", "fast", "faster"}}, {"c", {"other"}}});
  journal.step("a", 0, 28s);  // 30 s
  journal.step("a", 1, 2s);   // 4 s
  journal.step("a", 2, 0s);   // 2 s
  journal.state("a", Phase::finished, 3, "every step done");
  const ClusterView& b_pending = journal.cluster("b");
  ASSERT_TRUE(b_pending.eta.has_value());
  EXPECT_EQ(*b_pending.eta, 36s);
  EXPECT_EQ(b_pending.eta_basis, EtaBasis::step_history);
  journal.step("b", 0, 48s);  // b's slow step is slower still: 50 s
  const ClusterView& b_fast = journal.cluster("b");
  // fast (4 s) + faster (2 s) from a; the mean of every step so far (21.5 s)
  // would say 43 s.
  ASSERT_TRUE(b_fast.eta.has_value());
  EXPECT_EQ(*b_fast.eta, 6s);
  EXPECT_EQ(b_fast.eta_basis, EtaBasis::step_history);
  EXPECT_EQ(b_fast.samples, 2);
  // c's step ran nowhere: the mean of the four steps done, 86 s / 4.
  const ClusterView& c = journal.cluster("c");
  ASSERT_TRUE(c.eta.has_value());
  EXPECT_EQ(*c.eta, 21500ms);
  EXPECT_EQ(c.eta_basis, EtaBasis::mean_so_far);
  EXPECT_EQ(c.samples, 4);
}

TEST(ProgressViewTest, APauseStopsTheClockOfWorkAndShowsTheFailingVerdict) {
  SyntheticJournal journal({{"a", {"one", "two"}}});
  journal.step("a", 0, 8s);  // 10 s
  journal.wait(1s);
  journal.pause("a", 1, PauseReason::failed_check, Phase::preflight,
                "preflight failed at step 2 (two): dns: CRITICAL: b4 resolves outside",
                "b4's name resolves to 127.200.0.14, outside 127.10.0.0/16");
  const ClusterView paused = journal.cluster("a");
  EXPECT_TRUE(paused.held);
  EXPECT_EQ(paused.phase, Phase::paused);
  EXPECT_EQ(paused.reason, PauseReason::failed_check);
  EXPECT_EQ(paused.verdict.kind, CheckVerdict::Kind::failing);
  EXPECT_EQ(paused.verdict.what, "preflight");
  EXPECT_EQ(paused.verdict.diagnosis, "b4's name resolves to 127.200.0.14, outside 127.10.0.0/16");
  ASSERT_TRUE(paused.eta.has_value());
  EXPECT_EQ(*paused.eta, 9s);
  journal.wait(10min);
  const ClusterView later = journal.cluster("a");
  EXPECT_EQ(later.eta, paused.eta);  // the pause is not work
  EXPECT_EQ(later.step_elapsed, 10min + 1s);
  journal.state("a", Phase::preflight, 1, "checks passed 1 re-checks in a row");
  const ClusterView resumed = journal.cluster("a");
  EXPECT_EQ(resumed.verdict.kind, CheckVerdict::Kind::passed);
  EXPECT_EQ(resumed.verdict.what, "re-check");
  EXPECT_FALSE(resumed.held);
}

TEST(ProgressViewTest, TheVerdictFollowsTheGatingChecksOfTheCurrentStep) {
  SyntheticJournal journal(Structure{{"a", {"one"}}});
  journal.state("a", Phase::preflight, 0, "started");
  EXPECT_EQ(journal.cluster("a").verdict.kind, CheckVerdict::Kind::pending);
  EXPECT_EQ(journal.cluster("a").verdict.what, "preflight");
  journal.state("a", Phase::running, 0, "preflight checks passed");
  journal.attempt("a", 0, 1);
  EXPECT_EQ(journal.cluster("a").verdict.kind, CheckVerdict::Kind::passed);
  EXPECT_EQ(journal.cluster("a").attempt, 1);
  journal.state("a", Phase::verifying, 0, "action succeeded");
  EXPECT_EQ(journal.cluster("a").verdict.kind, CheckVerdict::Kind::pending);
  EXPECT_EQ(journal.cluster("a").verdict.what, "verify");
  journal.pause("a", 0, PauseReason::failed_check, Phase::verifying,
                "verify failed at step 1 (one): canary: CRITICAL: p2 routes k to b3");
  EXPECT_EQ(journal.cluster("a").verdict.kind, CheckVerdict::Kind::failing);
  EXPECT_EQ(journal.cluster("a").verdict.what, "verify");
  EXPECT_EQ(journal.cluster("a").verdict.detail,
            "verify failed at step 1 (one): canary: CRITICAL: p2 routes k to b3");
  // An operator's resume polls the verify checks again: no verdict yet.
  journal.state("a", Phase::verifying, 0, "resumed by operator");
  EXPECT_EQ(journal.cluster("a").verdict.kind, CheckVerdict::Kind::pending);
  journal.state("a", Phase::done, 0, "verify checks passed");
  EXPECT_EQ(journal.cluster("a").verdict.kind, CheckVerdict::Kind::passed);
}

TEST(ProgressViewTest, AVerifyNotPassingYetShowsItsFailuresUntilItPasses) {
  SyntheticJournal journal(Structure{{"a", {"one", "two"}}});
  journal.state("a", Phase::preflight, 0, "started");
  journal.state("a", Phase::running, 0, "preflight checks passed");
  journal.state("a", Phase::verifying, 0, "action succeeded");
  // A record of another step (a stale one) says nothing about this verify.
  journal.verify_failing("a", 1, "canary: consistency 0.1 < 1", "");
  EXPECT_EQ(journal.cluster("a").verdict.kind, CheckVerdict::Kind::pending);
  journal.verify_failing("a", 0, "canary: consistency 0.83 < 1", "b4 misses keys through p2");
  const CheckVerdict& failing = journal.cluster("a").verdict;
  EXPECT_EQ(failing.kind, CheckVerdict::Kind::failing);
  EXPECT_EQ(failing.what, "verify");
  EXPECT_EQ(failing.detail,
            "verify of step 1 (one) not passing yet (before its deadline): canary: consistency "
            "0.83 < 1");
  EXPECT_EQ(failing.diagnosis, "b4 misses keys through p2");
  EXPECT_EQ(journal.cluster("a").phase, Phase::verifying);
  journal.state("a", Phase::done, 0, "verify checks passed");
  EXPECT_EQ(journal.cluster("a").verdict.kind, CheckVerdict::Kind::passed);
}

TEST(ProgressViewTest, TimeWithoutAnEngineIsNotWork) {
  SyntheticJournal journal({{"a", {"one", "two"}}});
  journal.state("a", Phase::preflight, 0, "started");
  journal.wait(1s);
  journal.state("a", Phase::running, 0, "preflight checks passed");
  journal.attempt("a", 0, 1);
  journal.wait(2s);  // the attempt (the engine's last record, at 1 s) runs on
  journal.wait(1h);  // the engine died: work counted only up to its last record
  journal.engine_restarts();
  journal.wait(2s);
  journal.state("a", Phase::verifying, 0, "the action had succeeded before the engine stopped");
  journal.wait(1s);
  journal.state("a", Phase::done, 0, "verify checks passed");
  journal.state("a", Phase::preflight, 1);
  EXPECT_EQ(*journal.cluster("a").eta, 4s);  // 1 s, then 2 s + 1 s after the restart
  EXPECT_EQ(journal.cluster("a").overall_elapsed, 1h + 6s);  // wall time, for people
}

TEST(ProgressViewTest, ASkippedStepIsNeitherASampleNorWorkLeft) {
  SyntheticJournal journal({{"a", {"one", "two", "three"}}, {"b", {"one", "two", "three"}}});
  journal.step("a", 0, 8s);                   // 10 s
  journal.skip("a", 2);                       // ahead of the cluster
  EXPECT_EQ(*journal.cluster("a").eta, 10s);  // step two only
  journal.wait(2s);
  journal.skip("a", 1);  // the step it is in: the engine moves past it
  journal.state("a", Phase::done, 1, "skipped by operator: not needed here");
  journal.state("a", Phase::preflight, 2);
  EXPECT_EQ(*journal.cluster("a").eta, 0s);
  // b: "one" from a's history, "two" and "three" from the mean of the one
  // step done (a skipped step took no work to learn from).
  const ClusterView& b = journal.cluster("b");
  EXPECT_EQ(*b.eta, 30s);
  EXPECT_EQ(b.eta_basis, EtaBasis::mixed);
  EXPECT_EQ(b.samples, 1);
}

TEST(ProgressViewTest, DurationsForPeopleRoundUp) {
  EXPECT_EQ(format_duration(0ms), "0s");
  EXPECT_EQ(format_duration(1ms), "1s");
  EXPECT_EQ(format_duration(42s), "42s");
  EXPECT_EQ(format_duration(3min + 5s), "3m05s");
  EXPECT_EQ(format_duration(1h + 2min + 59s), "1h02m");
  EXPECT_EQ(format_duration(-5s), "0s");
}

}  // namespace
}  // namespace ringwatch::migration
