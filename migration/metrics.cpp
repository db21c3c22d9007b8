#include "migration/metrics.h"

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>
#include <string_view>
#include <utility>

#include "probes/registry.h"

namespace ringwatch::migration {

namespace {

using Labels = std::map<std::string, std::string>;

constexpr Phase kPhases[] = {Phase::pending,   Phase::preflight, Phase::running,
                             Phase::verifying, Phase::done,      Phase::paused,
                             Phase::aborted,   Phase::finished,  Phase::awaiting_approval};
constexpr PauseReason kPauseReasons[] = {PauseReason::failed_check, PauseReason::failed_action,
                                         PauseReason::operator_request, PauseReason::blackout,
                                         PauseReason::interrupted};

// Steps run from seconds (checks only) to hours (a drain that waits for
// traffic, an approval overnight).
const prometheus::Histogram::BucketBoundaries kStepBuckets{1,   5,    15,   30,   60,    120,  300,
                                                           600, 1800, 3600, 7200, 21600, 86400};

double unix_seconds(std::chrono::system_clock::time_point at) {
  return std::chrono::duration<double>(at.time_since_epoch()).count();
}

// The checks a failed_check pause names. Its detail is "<preflight|verify>
// failed at step N (name): <failures>", the failures one per failed check
// ("dns: backend b5 is not in the cluster spec"), joined with "; "
// (checks.h, CheckRound::failures). Each check counts once.
std::set<std::string> failed_checks(const std::string& detail) {
  std::string_view failures = detail;
  if (const auto at = failures.find("): "); at != std::string_view::npos) {
    failures.remove_prefix(at + 3);
  }
  const auto& known = probes::known_checks();
  std::set<std::string> checks;
  while (!failures.empty()) {
    const auto end = failures.find("; ");
    const std::string_view failure = failures.substr(0, end);
    const std::string_view name = failure.substr(0, failure.find(": "));
    if (name == "cluster spec") {
      checks.insert("spec");
    } else if (std::find(known.begin(), known.end(), name) != known.end()) {
      checks.emplace(name);
    }
    if (end == std::string_view::npos) break;
    failures.remove_prefix(end + 2);
  }
  return checks;
}

}  // namespace

struct MigrationMetrics::State {
  explicit State(std::string plan_label) : plan(std::move(plan_label)) {}

  void fold(const Record& record);

  const std::string plan;
  std::shared_ptr<prometheus::Registry> registry = std::make_shared<prometheus::Registry>();
  prometheus::Family<prometheus::Gauge>& cluster_state =
      prometheus::BuildGauge()
          .Name("ringwatch_migration_cluster_state")
          .Help("1 for the cluster's migration phase, 0 for every other phase.")
          .Register(*registry);
  prometheus::Family<prometheus::Gauge>& state_since =
      prometheus::BuildGauge()
          .Name("ringwatch_migration_state_since_timestamp_seconds")
          .Help("When the cluster entered its phase, seconds since the unix epoch.")
          .Register(*registry);
  prometheus::Family<prometheus::Gauge>& step =
      prometheus::BuildGauge()
          .Name("ringwatch_migration_step")
          .Help(
              "The step the cluster is at, counted from 1 (as `migrate status` prints it); "
              "steps + 1 once finished.")
          .Register(*registry);
  prometheus::Family<prometheus::Gauge>& steps = prometheus::BuildGauge()
                                                     .Name("ringwatch_migration_steps")
                                                     .Help("Steps of the cluster's plan.")
                                                     .Register(*registry);
  prometheus::Family<prometheus::Gauge>& steps_completed =
      prometheus::BuildGauge()
          .Name("ringwatch_migration_steps_completed")
          .Help("Steps of the cluster done or skipped.")
          .Register(*registry);
  prometheus::Family<prometheus::Histogram>& step_duration =
      prometheus::BuildHistogram()
          .Name("ringwatch_migration_step_duration_seconds")
          .Help(
              "From a step's first journal record to its done record (pauses, approval waits "
              "and engine restarts included); skipped steps are not observed.")
          .Register(*registry);
  prometheus::Family<prometheus::Counter>& pauses =
      prometheus::BuildCounter()
          .Name("ringwatch_migration_pauses_total")
          .Help("Times the cluster entered paused, by reason (from the journal).")
          .Register(*registry);
  prometheus::Family<prometheus::Counter>& check_failures =
      prometheus::BuildCounter()
          .Name("ringwatch_migration_check_failures_total")
          .Help("Gating checks that failed and paused the cluster, by check.")
          .Register(*registry);
  prometheus::Family<prometheus::Gauge>& approvals_pending =
      prometheus::BuildGauge()
          .Name("ringwatch_migration_approvals_pending")
          .Help("1 while the cluster waits for an operator's approval of its step, else 0.")
          .Register(*registry);
  prometheus::Family<prometheus::Counter>& approvals =
      prometheus::BuildCounter()
          .Name("ringwatch_migration_approvals_total")
          .Help("Approvals accepted for the cluster's steps.")
          .Register(*registry);
  prometheus::Family<prometheus::Counter>& observe_evaluations =
      prometheus::BuildCounter()
          .Name("ringwatch_migration_observe_evaluations_total")
          .Help("Evaluations of an observe-mode check.")
          .Register(*registry);
  prometheus::Family<prometheus::Counter>& observe_would_pause =
      prometheus::BuildCounter()
          .Name("ringwatch_migration_observe_would_pause_total")
          .Help("Evaluations of an observe-mode check that failed: a gate would have paused.")
          .Register(*registry);
  prometheus::Family<prometheus::Counter>& runs =
      prometheus::BuildCounter()
          .Name("ringwatch_migration_engine_runs_total")
          .Help("Engines started on this migration's journal.")
          .Register(*registry);
  prometheus::Family<prometheus::Gauge>& journal_records =
      prometheus::BuildGauge()
          .Name("ringwatch_migration_journal_records")
          .Help("The journal's last record (its seq).")
          .Register(*registry);

  JournalState journal;
  std::uint64_t last_seq = 0;
  std::set<std::string> known_clusters;
  // Where each cluster's current step began: (step, the time of its first record).
  std::map<std::string, std::pair<int, std::chrono::system_clock::time_point>> step_began;

 private:
  Labels labels(const std::string& cluster) const { return {{"plan", plan}, {"cluster", cluster}}; }
  Labels labels(const std::string& cluster, const char* key, const std::string& value) const {
    Labels all = labels(cluster);
    all[key] = value;
    return all;
  }
  void add_clusters();
  void show_cluster(const ClusterProgress& cluster);
  void count_state(const Record& record, Phase from, PauseReason from_reason);
  void count_observe(const Record& record);
};

void MigrationMetrics::State::fold(const Record& record) {
  if (last_seq > 0 && record.seq <= last_seq) return;
  last_seq = record.seq;
  const ClusterProgress* before = journal.find(record.cluster);
  const Phase from = before ? before->phase : Phase::pending;
  const PauseReason from_reason = before ? before->reason : PauseReason::none;
  apply(journal, record);
  journal_records.Add({{"plan", plan}}).Set(static_cast<double>(record.seq));
  switch (record.type) {
    case Record::Type::header:
    case Record::Type::repair:
      add_clusters();
      break;
    case Record::Type::run:
      add_clusters();
      runs.Add({{"plan", plan}}).Increment();
      break;
    case Record::Type::state:
      count_state(record, from, from_reason);
      break;
    case Record::Type::observe:
      count_observe(record);
      break;
    case Record::Type::operator_command:
      if (record.command == "approve" && record.outcome != "rejected" &&
          known_clusters.count(record.cluster)) {
        approvals.Add(labels(record.cluster)).Increment();
      }
      break;
    default:  // attempts, skips and record types added later change no metric
      break;
  }
  // The cluster the record is about; every one for a record about none (a
  // header, an operator's command to every cluster).
  if (record.cluster.empty()) {
    for (const auto& name : known_clusters) show_cluster(*journal.find(name));
  } else if (known_clusters.count(record.cluster)) {
    show_cluster(*journal.find(record.cluster));
  }
}

void MigrationMetrics::State::add_clusters() {
  for (const auto& name : journal.cluster_order) {
    if (!known_clusters.insert(name).second) continue;
    runs.Add({{"plan", plan}});
    approvals.Add(labels(name));
    for (const PauseReason reason : kPauseReasons) {
      pauses.Add(labels(name, "reason", to_string(reason)));
    }
    for (const auto& check : probes::known_checks()) {
      check_failures.Add(labels(name, "check", check));
    }
    const ClusterProgress& cluster = *journal.find(name);
    for (const auto& step_name : cluster.step_names) {
      step_duration.Add({{"plan", plan}, {"step", step_name}}, kStepBuckets);
    }
  }
}

void MigrationMetrics::State::show_cluster(const ClusterProgress& cluster) {
  for (const Phase phase : kPhases) {
    cluster_state.Add(labels(cluster.name, "state", to_string(phase)))
        .Set(cluster.phase == phase ? 1 : 0);
  }
  state_since.Add(labels(cluster.name)).Set(unix_seconds(cluster.since));
  step.Add(labels(cluster.name)).Set(cluster.step + 1);
  steps.Add(labels(cluster.name)).Set(static_cast<double>(cluster.step_names.size()));
  int completed = 0;
  for (const auto& progress : cluster.steps) {
    completed += progress.outcome != StepProgress::Outcome::open;
  }
  steps_completed.Add(labels(cluster.name)).Set(completed);
  approvals_pending.Add(labels(cluster.name))
      .Set(cluster.phase == Phase::awaiting_approval ? 1 : 0);
}

void MigrationMetrics::State::count_state(const Record& record, Phase from,
                                          PauseReason from_reason) {
  const ClusterProgress* cluster = journal.find(record.cluster);
  if (cluster == nullptr || !known_clusters.count(record.cluster)) return;
  // A step begins at its first record; a cluster's first step when it
  // leaves pending (not at a blackout's pause before it started).
  auto began = step_began.find(record.cluster);
  if (began == step_began.end() || began->second.first != record.step || from == Phase::pending) {
    step_began[record.cluster] = {record.step, record.at};
  } else if (record.phase == Phase::done && record.step < static_cast<int>(cluster->steps.size()) &&
             cluster->steps[static_cast<std::size_t>(record.step)].outcome ==
                 StepProgress::Outcome::done) {
    const std::string& name = cluster->step_names[static_cast<std::size_t>(record.step)];
    step_duration.Add({{"plan", plan}, {"step", name}}, kStepBuckets)
        .Observe(std::chrono::duration<double>(record.at - began->second.second).count());
  }
  if (record.phase == Phase::paused && !(from == Phase::paused && from_reason == record.reason)) {
    pauses.Add(labels(record.cluster, "reason", to_string(record.reason))).Increment();
    if (record.reason == PauseReason::failed_check) {
      for (const auto& check : failed_checks(record.detail)) {
        check_failures.Add(labels(record.cluster, "check", check)).Increment();
      }
    }
  }
}

void MigrationMetrics::State::count_observe(const Record& record) {
  if (!known_clusters.count(record.cluster)) return;
  const Labels by_check = labels(record.cluster, "check", record.check);
  observe_evaluations.Add(by_check).Increment();
  auto& would_pause = observe_would_pause.Add(by_check);
  if (record.outcome == "would_pause") would_pause.Increment();
}

MigrationMetrics::MigrationMetrics(std::string plan)
    : plan_(std::move(plan)), state_(std::make_unique<State>(plan_)) {}

MigrationMetrics::~MigrationMetrics() = default;

std::string MigrationMetrics::plan_label(const std::string& plan_file) {
  return std::filesystem::path(plan_file).stem().string();
}

void MigrationMetrics::observe(const Record& record) {
  std::lock_guard guard(mutex_);
  state_->fold(record);
}

void MigrationMetrics::rebuild(const std::vector<Record>& records) {
  auto fresh = std::make_unique<State>(plan_);
  for (const Record& record : records) fresh->fold(record);
  std::lock_guard guard(mutex_);
  state_ = std::move(fresh);
}

std::string MigrationMetrics::serialize() const {
  std::lock_guard guard(mutex_);
  return prometheus::TextSerializer().Serialize(state_->registry->Collect());
}

}  // namespace ringwatch::migration
