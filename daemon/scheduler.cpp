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

}  // namespace

double ClusterView::age_seconds(SteadyClock::time_point now) const {
  return std::chrono::duration<double>(now - finished_at).count();
}

// Shared by an Entry (io thread) and its worker thread, which may outlive it.
struct Worker {
  struct Job {
    bool scheduled = true;
    std::vector<std::string> checks{};
    PreflightDone done{};
  };

  ClusterConfig config;
  std::shared_ptr<Logger> log;
  std::shared_ptr<alerts::Metrics> metrics;
  std::shared_ptr<Alerting> alerting;

  std::mutex mutex;
  std::condition_variable wake, exited_cv;
  std::deque<Job> jobs;
  bool stopping = false, exited = false, busy = false;
  std::optional<report::Report> latest;
  SteadyClock::time_point finished_at{};
  std::uint64_t rounds = 0, skipped = 0, scheduled = 0;

  void run();
  void publish(const report::Report& report);
};

void Worker::run() {
  probes::ProbeSet main_set(config.checks);
  std::map<std::string, std::unique_ptr<probes::ProbeSet>> preflight_sets;
  for (;;) {
    Job job;
    {
      std::unique_lock lock(mutex);
      wake.wait(lock, [&] { return stopping || !jobs.empty(); });
      if (stopping) break;
      job = std::move(jobs.front());
      jobs.pop_front();
      busy = true;
    }
    report::Report report;
    try {
      if (job.checks.empty() || job.checks == config.checks) {
        report = main_set.run_round(config.spec);
      } else {
        auto& set = preflight_sets[join_checks(job.checks)];
        if (!set) set = std::make_unique<probes::ProbeSet>(job.checks);
        report = set->run_round(config.spec);
      }
    } catch (const std::exception& error) {
      log->error("round_failed", {{"cluster", config.name()}, {"error", error.what()}});
      report = failed_round(config.name(), error.what());
    }
    if (job.scheduled) {
      publish(report);
    } else {
      log->info("preflight",
                {{"cluster", config.name()},
                 {"checks", join_checks(job.checks.empty() ? config.checks : job.checks)},
                 {"status", report::to_string(report.status())},
                 {"duration_ms", format_ms(report.duration_ms)}});
      job.done(std::move(report));
    }
    const std::lock_guard lock(mutex);
    busy = false;
  }
  std::deque<Job> abandoned;
  {
    const std::lock_guard lock(mutex);
    abandoned.swap(jobs);
  }
  for (auto& job : abandoned) {
    if (job.done) job.done(std::nullopt);
  }
  const std::lock_guard lock(mutex);
  exited = true;
  exited_cv.notify_all();
}

void Worker::publish(const report::Report& report) {
  {
    const std::lock_guard lock(mutex);
    if (stopping) return;  // removed or shutting down: the round is abandoned
    latest = report;
    finished_at = SteadyClock::now();
    ++rounds;
  }
  if (metrics) metrics->observe(config.spec, report);
  if (alerting) alerting->observe(report);
  LogFields fields{{"cluster", config.name()},
                   {"status", report::to_string(report.status())},
                   {"duration_ms", format_ms(report.duration_ms)},
                   {"findings", std::to_string(report.findings.size())},
                   {"started", util::format_rfc3339_ms(report.started_at)}};
  // A round that is not OK says why, so the log alone explains it (the soak
  // tool, tools/soak, classifies rounds from these lines).
  if (report.status() != report::Status::ok) {
    fields.emplace_back("codes", problem_codes(report));
    fields.emplace_back("summary", report.summary_line());
  }
  log->info("round", fields);
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
              {"spec", config.spec_path.empty() ? std::string("inline") : config.spec_path}});
  arm(entry, true);
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
      worker.jobs.push_back({});
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
  return view;
}

bool Scheduler::preflight(std::string_view name, std::vector<std::string> checks,
                          PreflightDone done) {
  const auto it = entries_.find(name);
  if (it == entries_.end()) return false;
  auto& worker = *it->second->worker;
  {
    const std::lock_guard lock(worker.mutex);
    worker.jobs.push_back({false, std::move(checks), std::move(done)});
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
