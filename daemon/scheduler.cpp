#include "daemon/scheduler.h"

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "alerts/metrics.h"
#include "daemon/alerting.h"
#include "daemon/log.h"
#include "lib/report/vocabulary.h"
#include "lib/util/time.h"
#include "probes/registry.h"

namespace ringwatch::daemon {
namespace {

using SteadyClock = std::chrono::steady_clock;

std::string join_checks(const std::vector<std::string>& checks) {
  std::string out;
  for (const auto& check : checks) {
    if (!out.empty()) out += ',';
    out += check;
  }
  return out;
}

// A round that could not run at all (an exception from a probe) is UNKNOWN.
report::Report failed_round(const std::string& cluster, const std::string& what) {
  report::Report report;
  report.cluster = cluster;
  report.started_at = std::chrono::system_clock::now();
  report.checks.push_back({"round", report::Status::unknown, "round failed: " + what, 0});
  return report;
}

// The distinct codes of the findings worse than info, in report order
// ("ring_divergence,proxy_unreachable"); "-" when there is none.
std::string problem_codes(const report::Report& report) {
  std::vector<std::string> codes;
  for (const auto& finding : report.findings) {
    if (finding.severity == report::Severity::info) continue;
    if (std::find(codes.begin(), codes.end(), finding.code) == codes.end())
      codes.push_back(finding.code);
  }
  return codes.empty() ? "-" : join_checks(codes);
}

std::size_t findings_above_info(const report::Report& report) {
  return static_cast<std::size_t>(
      std::count_if(report.findings.begin(), report.findings.end(),
                    [](const report::Finding& f) { return f.severity != report::Severity::info; }));
}

RoundRecord record_of(const report::Report& report) {
  RoundRecord record;
  record.started_at = report.started_at;
  record.status = report.status();
  record.duration_ms = report.duration_ms;
  const auto reads = report.figures.find(std::string(report::figures::kReads));
  const auto ratio = report.figures.find(std::string(report::figures::kConsistencyRatio));
  if (reads != report.figures.end() && reads->second > 0 && ratio != report.figures.end()) {
    record.consistency_ratio = ratio->second;
  }
  record.findings = findings_above_info(report);
  return record;
}

}  // namespace

double ClusterView::age_seconds(SteadyClock::time_point now) const {
  return std::chrono::duration<double>(now - finished_at).count();
}

// Shared by an Entry (io thread) and its worker thread, which may outlive it.
struct Worker {
  enum class Kind { scheduled, preflight, probe };
  struct Job {
    Kind kind = Kind::scheduled;
    std::vector<std::string> checks{};  // normalized; empty: the cluster's
    std::vector<PreflightDone> waiters{};
  };

  ClusterConfig config;
  std::shared_ptr<Logger> log;
  std::shared_ptr<alerts::Metrics> metrics;
  std::shared_ptr<Alerting> alerting;

  std::mutex mutex;
  std::condition_variable wake, exited_cv;
  std::deque<std::shared_ptr<Job>> jobs;
  std::shared_ptr<Job> current;  // the job whose round is running
  std::size_t probe_waiters = 0;
  bool stopping = false, exited = false, busy = false;
  std::optional<report::Report> latest;
  std::deque<RoundRecord> history;
  SteadyClock::time_point finished_at{};
  std::uint64_t rounds = 0, skipped = 0, scheduled = 0;

  void run();
  report::Report round(probes::ProbeSet& main_set,
                       std::map<std::string, std::unique_ptr<probes::ProbeSet>>& other_sets,
                       const std::vector<std::string>& checks);
  void publish(const report::Report& report);
  ProbeAdmission admit_probe(std::vector<std::string> checks, PreflightDone done);
};

report::Report Worker::round(probes::ProbeSet& main_set,
                             std::map<std::string, std::unique_ptr<probes::ProbeSet>>& other_sets,
                             const std::vector<std::string>& checks) {
  try {
    if (checks == config.checks) return main_set.run_round(config.spec);
    auto& set = other_sets[join_checks(checks)];
    if (!set) set = std::make_unique<probes::ProbeSet>(checks);
    return set->run_round(config.spec);
  } catch (const std::exception& error) {
    log->error("round_failed", {{"cluster", config.name()}, {"error", error.what()}});
    return failed_round(config.name(), error.what());
  }
}

void Worker::run() {
  probes::ProbeSet main_set(config.checks);
  std::map<std::string, std::unique_ptr<probes::ProbeSet>> other_sets;
  for (;;) {
    std::shared_ptr<Job> job;
    {
      std::unique_lock lock(mutex);
      wake.wait(lock, [&] { return stopping || !jobs.empty(); });
      if (stopping) break;
      job = jobs.front();
      jobs.pop_front();
      current = job;
      busy = true;
    }
    const auto& checks = job->checks.empty() ? config.checks : job->checks;
    report::Report report = round(main_set, other_sets, checks);
    if (job->kind == Kind::scheduled || (job->kind == Kind::probe && checks == config.checks)) {
      publish(report);
    } else {
      log->info(job->kind == Kind::probe ? "probe" : "preflight",
                {{"cluster", config.name()},
                 {"checks", join_checks(checks)},
                 {"status", report::to_string(report.status())},
                 {"duration_ms", format_ms(report.duration_ms)}});
    }
    std::vector<PreflightDone> waiters;
    {
      const std::lock_guard lock(mutex);
      waiters = std::move(job->waiters);  // no caller joins a finished round
      if (job->kind == Kind::probe) probe_waiters -= waiters.size();
      current.reset();
      busy = false;
    }
    for (auto& done : waiters) done(report);
  }
  std::deque<std::shared_ptr<Job>> abandoned;
  {
    const std::lock_guard lock(mutex);
    abandoned.swap(jobs);
  }
  for (auto& job : abandoned) {
    for (auto& done : job->waiters) done(std::nullopt);
  }
  const std::lock_guard lock(mutex);
  exited = true;
  exited_cv.notify_all();
}

ProbeAdmission Worker::admit_probe(std::vector<std::string> checks, PreflightDone done) {
  {
    const std::lock_guard lock(mutex);
    if (stopping || probe_waiters >= kMaxProbeWaiters) return ProbeAdmission::too_many;
    if (checks == config.checks) checks.clear();  // one job for "the cluster's checks"
    ++probe_waiters;
    const auto same = [&](const std::shared_ptr<Job>& job) {
      return job && job->kind == Kind::probe && job->checks == checks;
    };
    std::shared_ptr<Job> shared = same(current) ? current : nullptr;
    for (const auto& job : jobs) {
      if (!shared && same(job)) shared = job;
    }
    if (shared) {
      shared->waiters.push_back(std::move(done));
      return ProbeAdmission::joined;
    }
    auto job = std::make_shared<Job>(Job{Kind::probe, std::move(checks), {}});
    job->waiters.push_back(std::move(done));
    jobs.push_back(std::move(job));
  }
  wake.notify_all();
  return ProbeAdmission::queued;
}

void Worker::publish(const report::Report& report) {
  std::optional<report::Status> previous;
  {
    const std::lock_guard lock(mutex);
    if (stopping) return;  // removed or shutting down: the round is abandoned
    if (latest) previous = latest->status();
    latest = report;
    history.push_back(record_of(report));
    while (history.size() > kHistoryRounds) history.pop_front();
    finished_at = SteadyClock::now();
    ++rounds;
  }
  if (metrics) metrics->observe(config.spec, report);
  if (alerting) alerting->observe(report);
  const auto status = report.status();
  LogFields fields{{"cluster", config.name()},
                   {"status", report::to_string(status)},
                   {"duration_ms", format_ms(report.duration_ms)},
                   {"started", util::format_rfc3339_ms(report.started_at)},
                   {"findings", std::to_string(findings_above_info(report))}};
  // A round that is not OK says why, so the log alone explains it (the soak
  // tool, tools/soak, classifies rounds from these lines).
  if (status != report::Status::ok) {
    fields.emplace_back("codes", problem_codes(report));
    fields.emplace_back("summary", report.summary_line());
  }
  log->info("round", fields);
  if (!previous || *previous != status) {
    log->log(status == report::Status::ok ? LogLevel::info : LogLevel::warn, "status_changed",
             {{"cluster", config.name()},
              {"from", previous ? report::to_string(*previous) : "PENDING"},
              {"to", report::to_string(status)},
              {"summary", report.summary_line()}});
  }
}

struct Scheduler::Entry {
  Entry(boost::asio::io_context& io, std::shared_ptr<Worker> w) : worker(std::move(w)), timer(io) {}
  std::shared_ptr<Worker> worker;
  std::thread thread;
  boost::asio::steady_timer timer;
  SteadyClock::time_point due{};
  bool removed = false;
};

Scheduler::Scheduler(boost::asio::io_context& io, std::shared_ptr<Logger> log,
                     std::shared_ptr<alerts::Metrics> metrics, std::shared_ptr<Alerting> alerting)
    : io_(io),
      log_(std::move(log)),
      metrics_(std::move(metrics)),
      alerting_(std::move(alerting)),
      random_(std::random_device{}()) {}

Scheduler::~Scheduler() {
  stop();
  join(std::chrono::milliseconds(0));
}

void Scheduler::apply(const std::vector<ClusterConfig>& clusters) {
  // Reap retired workers that have finished.
  std::erase_if(retired_, [](const std::shared_ptr<Entry>& entry) {
    const std::lock_guard lock(entry->worker->mutex);
    if (!entry->worker->exited) return false;
    if (entry->thread.joinable()) entry->thread.join();
    return true;
  });
  for (auto it = entries_.begin(); it != entries_.end();) {
    const auto* config = [&]() -> const ClusterConfig* {
      for (const auto& c : clusters) {
        if (c.name() == it->first) return &c;
      }
      return nullptr;
    }();
    if (config == nullptr) {
      log_->info("cluster_removed", {{"cluster", it->first}});
      retire(it->second);
      if (metrics_) metrics_->forget_cluster(it->first);
      if (alerting_) alerting_->forget_cluster(it->first);
      it = entries_.erase(it);
    } else if (!(*config == it->second->worker->config)) {
      log_->info("cluster_updated", {{"cluster", it->first}});
      retire(it->second);
      it = entries_.erase(it);
    } else {
      ++it;
    }
  }
  for (const auto& config : clusters) {
    if (!entries_.contains(config.name())) start(config);
  }
}

void Scheduler::start(const ClusterConfig& config) {
  auto worker = std::make_shared<Worker>();
  worker->config = config;
  worker->log = log_;
  worker->metrics = metrics_;
  worker->alerting = alerting_;
  auto entry = std::make_shared<Entry>(io_, worker);
  entry->thread = std::thread([worker] { worker->run(); });
  entries_.emplace(config.name(), entry);
  log_->info("cluster_started",
             {{"cluster", config.name()},
              {"interval_ms", std::to_string(config.interval.count())},
              {"jitter_ms", std::to_string(config.jitter.count())},
              {"checks", join_checks(config.checks)},
              {"spec", config.spec_path.empty() ? std::string("inline") : config.spec_path},
              {"schedule", config.external ? "external" : "interval"}});
  if (!config.external) arm(entry, true);
}

void Scheduler::retire(const std::shared_ptr<Entry>& entry) {
  entry->removed = true;
  entry->timer.cancel();
  {
    const std::lock_guard lock(entry->worker->mutex);
    entry->worker->stopping = true;
  }
  entry->worker->wake.notify_all();
  retired_.push_back(entry);
}

void Scheduler::arm(const std::shared_ptr<Entry>& entry, bool first) {
  const auto& config = entry->worker->config;
  const auto now = SteadyClock::now();
  if (first) {
    entry->due = now;
  } else {
    entry->due += config.interval;
    if (entry->due + config.interval < now) entry->due = now + config.interval;
  }
  std::chrono::milliseconds delay{0};
  if (config.jitter.count() > 0) {
    delay = std::chrono::milliseconds(
        std::uniform_int_distribution<std::int64_t>(0, config.jitter.count())(random_));
  }
  entry->timer.expires_at(entry->due + delay);
  entry->timer.async_wait([this, entry](const boost::system::error_code& error) {
    if (error || entry->removed) return;
    tick(entry);
    arm(entry, false);
  });
}

void Scheduler::tick(const std::shared_ptr<Entry>& entry) {
  auto& worker = *entry->worker;
  bool skip = false;
  {
    const std::lock_guard lock(worker.mutex);
    ++worker.scheduled;
    skip = worker.busy || !worker.jobs.empty();
    if (skip) {
      ++worker.skipped;
    } else {
      worker.jobs.push_back(std::make_shared<Worker::Job>());
    }
  }
  if (!skip) {
    worker.wake.notify_all();
    return;
  }
  if (metrics_) metrics_->round_skipped(worker.config.name());
  log_->warn("round_skipped",
             {{"cluster", worker.config.name()}, {"reason", "previous round still running"}});
}

std::vector<ClusterView> Scheduler::clusters() const {
  std::vector<ClusterView> out;
  for (const auto& [name, entry] : entries_) out.push_back(*cluster(name));
  return out;
}

std::optional<ClusterView> Scheduler::cluster(std::string_view name) const {
  const auto it = entries_.find(name);
  if (it == entries_.end()) return std::nullopt;
  auto& worker = *it->second->worker;
  const std::lock_guard lock(worker.mutex);
  ClusterView view;
  view.name = it->first;
  view.latest = worker.latest;
  view.finished_at = worker.finished_at;
  view.rounds = worker.rounds;
  view.skipped = worker.skipped;
  view.scheduled = worker.scheduled;
  view.running = worker.busy;
  view.external = worker.config.external;
  return view;
}

std::optional<spec::ClusterSpec> Scheduler::spec(std::string_view name) const {
  const auto it = entries_.find(name);
  if (it == entries_.end()) return std::nullopt;
  return it->second->worker->config.spec;  // immutable once the worker started
}

std::optional<std::vector<RoundRecord>> Scheduler::history(std::string_view name) const {
  const auto it = entries_.find(name);
  if (it == entries_.end()) return std::nullopt;
  auto& worker = *it->second->worker;
  const std::lock_guard lock(worker.mutex);
  return std::vector<RoundRecord>(worker.history.begin(), worker.history.end());
}

bool Scheduler::every_scheduled_cluster_ran() const {
  for (const auto& [name, entry] : entries_) {
    auto& worker = *entry->worker;
    const std::lock_guard lock(worker.mutex);
    if (!worker.config.external && worker.rounds == 0) return false;
  }
  return true;
}

ProbeAdmission Scheduler::probe(std::string_view name, std::vector<std::string> checks,
                                PreflightDone done) {
  const auto it = entries_.find(name);
  if (it == entries_.end()) return ProbeAdmission::unknown_cluster;
  return it->second->worker->admit_probe(std::move(checks), std::move(done));
}

bool Scheduler::preflight(std::string_view name, std::vector<std::string> checks,
                          PreflightDone done) {
  const auto it = entries_.find(name);
  if (it == entries_.end()) return false;
  auto& worker = *it->second->worker;
  {
    const std::lock_guard lock(worker.mutex);
    auto job =
        std::make_shared<Worker::Job>(Worker::Job{Worker::Kind::preflight, std::move(checks), {}});
    job->waiters.push_back(std::move(done));
    worker.jobs.push_back(std::move(job));
  }
  worker.wake.notify_all();
  return true;
}

void Scheduler::stop() {
  for (const auto& [name, entry] : entries_) retire(entry);
  entries_.clear();
}

bool Scheduler::join(std::chrono::milliseconds grace) {
  const auto deadline = SteadyClock::now() + grace;
  bool all = true;
  for (const auto& entry : retired_) {
    auto& worker = *entry->worker;
    std::unique_lock lock(worker.mutex);
    const bool exited = worker.exited_cv.wait_until(lock, deadline, [&] { return worker.exited; });
    lock.unlock();
    if (!entry->thread.joinable()) continue;
    if (exited) {
      entry->thread.join();
    } else {
      all = false;
      log_->warn("round_abandoned", {{"cluster", worker.config.name()}});
      entry->thread.detach();
    }
  }
  retired_.clear();
  return all;
}

}  // namespace ringwatch::daemon
