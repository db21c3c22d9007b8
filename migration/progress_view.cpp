#include "migration/progress_view.h"

#include <algorithm>
#include <map>
#include <set>

#include "migration/engine_records.h"

namespace ringwatch::migration {

namespace {

using Clock = std::chrono::system_clock;
using std::chrono::milliseconds;

milliseconds between(Clock::time_point from, Clock::time_point to) {
  return std::max(milliseconds(0), std::chrono::duration_cast<milliseconds>(to - from));
}

bool working(Phase phase) {
  return phase == Phase::preflight || phase == Phase::running || phase == Phase::verifying;
}

// A done step's working time: one sample for the ETA.
struct Sample {
  std::string cluster;
  std::string step;
  milliseconds working{0};
};

struct StepClock {
  std::optional<Clock::time_point> began;
  milliseconds working{0};
};

// What the walk over the records knows of one cluster beyond ClusterProgress.
struct ClusterClock {
  Phase phase = Phase::pending;
  PauseReason reason = PauseReason::none;
  int step = 0;
  Clock::time_point counting_since{};  // start of the working interval being counted
  std::optional<Clock::time_point> started, ended;
  std::vector<StepClock> steps;
  CheckVerdict verdict;
};

class Walk {
 public:
  void take(const Record& record) {
    if (record.type == Record::Type::run) engine_restarted(record.at);
    const bool is_state = record.type == Record::Type::state && state_.find(record.cluster);
    apply(state_, record);
    if (record.type == Record::Type::header || record.type == Record::Type::run) add_clusters();
    if (is_state) transition(record);
    if (record.type == Record::Type::verify_failing) verify_failing(record);
    last_at_ = record.at;
  }

  const JournalState& state() const { return state_; }
  const std::vector<Sample>& samples() const { return samples_; }
  const ClusterClock& clock(const std::string& name) const { return clocks_.at(name); }

 private:
  void add_clusters() {
    for (const auto& [name, cluster] : state_.clusters) {
      if (clocks_.count(name)) continue;
      clocks_[name].steps.resize(cluster.step_names.size());
    }
  }

  // The previous engine's time ended with its last record.
  void engine_restarted(Clock::time_point at) {
    for (auto& [name, clock] : clocks_) {
      if (!working(clock.phase)) continue;
      if (StepClock* step = step_clock(clock, clock.step))
        step->working += between(clock.counting_since, last_at_);
      clock.counting_since = at;
    }
  }

  // nullptr past the last step.
  static StepClock* step_clock(ClusterClock& clock, int step) {
    if (step < 0 || step >= static_cast<int>(clock.steps.size())) return nullptr;
    return &clock.steps[static_cast<std::size_t>(step)];
  }

  void transition(const Record& record) {
    ClusterClock& clock = clocks_[record.cluster];
    if (StepClock* step = step_clock(clock, clock.step); step && working(clock.phase)) {
      step->working += between(clock.counting_since, record.at);
    }
    update_verdict(clock, record);
    const bool enters_step = working(record.phase) || record.phase == Phase::awaiting_approval;
    StepClock* step = step_clock(clock, record.step);
    if (step && enters_step && !step->began) step->began = record.at;
    if (record.phase == Phase::preflight && !clock.started) clock.started = record.at;
    if (record.phase == Phase::finished || record.phase == Phase::aborted) clock.ended = record.at;
    if (record.phase == Phase::done) {
      const ClusterProgress& cluster = *state_.find(record.cluster);
      const auto index = static_cast<std::size_t>(record.step);
      if (step && cluster.steps[index].outcome == StepProgress::Outcome::done) {
        samples_.push_back({record.cluster, cluster.step_names[index], step->working});
      }
    }
    clock.phase = record.phase;
    clock.reason = record.reason;
    clock.step = record.step;
    clock.counting_since = record.at;
  }

  // A verify that has not passed yet, before its deadline: failing for now.
  void verify_failing(const Record& record) {
    const auto found = clocks_.find(record.cluster);
    const ClusterProgress* cluster = state_.find(record.cluster);
    if (found == clocks_.end() || cluster == nullptr) return;
    ClusterClock& clock = found->second;
    if (clock.phase != Phase::verifying || clock.step != record.step) return;
    clock.verdict = {CheckVerdict::Kind::failing, "verify",
                     "verify of " + step_label(*cluster, record.step) +
                         " not passing yet (before its deadline): " + record.detail,
                     record.diagnosis};
  }

  // The state records that carry a gating check's verdict (progress_view.h).
  static void update_verdict(ClusterClock& clock, const Record& record) {
    const Phase from = clock.phase;
    CheckVerdict& verdict = clock.verdict;
    if (record.phase == Phase::paused && record.reason == PauseReason::failed_check) {
      verdict = {CheckVerdict::Kind::failing,
                 record.resume_to == Phase::verifying ? "verify" : "preflight", record.detail,
                 record.diagnosis};
    } else if (from == Phase::preflight && record.phase == Phase::running &&
               record.detail == "preflight checks passed") {
      verdict = {CheckVerdict::Kind::passed, "preflight", record.detail, ""};
    } else if (from == Phase::verifying && record.phase == Phase::done &&
               record.detail == "verify checks passed") {
      verdict = {CheckVerdict::Kind::passed, "verify", record.detail, ""};
    } else if (from == Phase::paused && clock.reason == PauseReason::failed_check &&
               record.detail.starts_with("checks passed")) {
      verdict = {CheckVerdict::Kind::passed, "re-check", record.detail, ""};
    } else if ((record.phase == Phase::preflight || record.phase == Phase::verifying) &&
               from != record.phase) {
      verdict = {};  // a new round of checks begins; the last verdict is stale
    }
  }

  JournalState state_;
  std::map<std::string, ClusterClock> clocks_;
  std::vector<Sample> samples_;
  Clock::time_point last_at_{};
};

// A step's estimate (progress_view.h, "ETA rule") and the samples it used.
struct Estimate {
  std::optional<milliseconds> value;
  bool from_history = false;
};

class Estimator {
 public:
  explicit Estimator(const std::vector<Sample>& samples) : samples_(samples) {}

  Estimate estimate(const std::string& cluster, const std::string& step) {
    milliseconds sum{0};
    int count = 0;
    for (std::size_t i = 0; i < samples_.size(); ++i) {
      if (samples_[i].step != step || samples_[i].cluster == cluster) continue;
      sum += samples_[i].working;
      ++count;
      used_.insert(i);
    }
    if (count > 0) return {sum / count, true};
    if (samples_.empty()) return {};
    for (std::size_t i = 0; i < samples_.size(); ++i) {
      sum += samples_[i].working;
      used_.insert(i);
    }
    return {sum / static_cast<int>(samples_.size()), false};
  }
  int used() const { return static_cast<int>(used_.size()); }

 private:
  const std::vector<Sample>& samples_;
  std::set<std::size_t> used_;
};

void estimate_eta(ClusterView& view, const ClusterProgress& cluster, const Walk& walk) {
  Estimator estimator(walk.samples());
  milliseconds left{0};
  int from_history = 0, from_mean = 0;
  for (int j = std::max(cluster.step, 0); j < static_cast<int>(cluster.steps.size()); ++j) {
    const auto index = static_cast<std::size_t>(j);
    if (cluster.steps[index].outcome != StepProgress::Outcome::open) continue;
    const Estimate estimate = estimator.estimate(cluster.name, cluster.step_names[index]);
    if (!estimate.value) return;  // unknown
    (estimate.from_history ? from_history : from_mean) += 1;
    milliseconds step_left = *estimate.value;
    if (j == cluster.step) step_left = std::max(milliseconds(0), step_left - view.step_working);
    left += step_left;
  }
  view.eta = left;
  view.samples = estimator.used();
  view.eta_basis = from_mean == 0      ? EtaBasis::step_history
                   : from_history == 0 ? EtaBasis::mean_so_far
                                       : EtaBasis::mixed;
}

ClusterView cluster_view(const ClusterProgress& cluster, const ClusterClock& clock,
                         const Walk& walk, Clock::time_point now) {
  ClusterView view;
  view.name = cluster.name;
  view.phase = cluster.phase;
  view.reason = cluster.phase == Phase::paused ? cluster.reason : PauseReason::none;
  view.steps_total = static_cast<int>(cluster.step_names.size());
  const bool in_a_step = cluster.step >= 0 && cluster.step < view.steps_total;
  const Clock::time_point until = clock.ended.value_or(now);
  if (clock.started) view.overall_elapsed = between(*clock.started, until);
  if (in_a_step) {
    const auto index = static_cast<std::size_t>(cluster.step);
    view.step_number = cluster.step + 1;
    view.step_name = cluster.step_names[index];
    view.attempt = cluster.steps[index].attempts;
    const StepClock& step = clock.steps[index];
    if (step.began) view.step_elapsed = between(*step.began, until);
    view.step_working = step.working;
    if (working(clock.phase)) view.step_working += between(clock.counting_since, now);
  }
  view.verdict = clock.verdict;
  if (view.verdict.kind == CheckVerdict::Kind::none &&
      (cluster.phase == Phase::preflight || cluster.phase == Phase::verifying)) {
    view.verdict.kind = CheckVerdict::Kind::pending;
    view.verdict.what = cluster.phase == Phase::preflight ? "preflight" : "verify";
  }
  if (view.ended()) return view;
  view.held = cluster.phase == Phase::paused || cluster.phase == Phase::awaiting_approval;
  estimate_eta(view, cluster, walk);
  return view;
}

}  // namespace

bool ProgressView::all_ended() const {
  return std::all_of(clusters.begin(), clusters.end(),
                     [](const ClusterView& cluster) { return cluster.ended(); });
}

ProgressView progress_view(const std::vector<Record>& records, Clock::time_point now) {
  Walk walk;
  for (const Record& record : records) walk.take(record);
  ProgressView view;
  view.plan = walk.state().plan;
  view.at = now;
  for (const std::string& name : walk.state().cluster_order) {
    view.clusters.push_back(cluster_view(*walk.state().find(name), walk.clock(name), walk, now));
  }
  return view;
}

std::string format_duration(milliseconds duration) {
  const long long seconds = std::max<long long>(0, (duration.count() + 999) / 1000);
  auto two = [](long long n) { return (n < 10 ? "0" : "") + std::to_string(n); };
  if (seconds < 60) return std::to_string(seconds) + "s";
  if (seconds < 3600) return std::to_string(seconds / 60) + "m" + two(seconds % 60) + "s";
  return std::to_string(seconds / 3600) + "h" + two(seconds / 60 % 60) + "m";
}

}  // namespace ringwatch::migration
