#include "alerts/metrics.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>
#include <algorithm>
#include <cctype>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <string_view>
#include <utility>

#include "lib/report/vocabulary.h"

namespace ringwatch::alerts {

namespace {

namespace checks = report::checks;
namespace figures = report::figures;
using prometheus::Labels;

// The series of one family that this class created, so they can be removed.
template <class T>
class Series {
 public:
  explicit Series(prometheus::Family<T>& family) : family_(&family) {}

  template <class... Args>
  T& at(const Labels& labels, Args&&... args) {
    auto found = live_.find(labels);
    if (found != live_.end()) return *found->second;
    T& metric = family_->Add(labels, std::forward<Args>(args)...);
    live_.emplace(labels, &metric);
    return metric;
  }

  template <class Predicate>
  void remove_if(Predicate predicate) {
    for (auto it = live_.begin(); it != live_.end();) {
      if (predicate(it->first)) {
        family_->Remove(it->second);
        it = live_.erase(it);
      } else {
        ++it;
      }
    }
  }

  void remove(const Labels& labels) {
    remove_if([&labels](const Labels& candidate) { return candidate == labels; });
  }

  void remove_cluster(const std::string& cluster) {
    remove_if([&cluster](const Labels& labels) {
      auto found = labels.find("cluster");
      return found != labels.end() && found->second == cluster;
    });
  }

 private:
  prometheus::Family<T>* family_;
  std::map<Labels, T*> live_;
};

std::string lower(const char* text) {
  std::string result(text);
  for (char& c : result) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return result;
}

const prometheus::Histogram::BucketBoundaries& round_buckets() {
  static const prometheus::Histogram::BucketBoundaries buckets{
      0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
  return buckets;
}

const double* figure(const report::Report& report, const std::string& name) {
  auto found = report.figures.find(name);
  return found == report.figures.end() ? nullptr : &found->second;
}

// ---- process_* from /proc/self ----

prometheus::MetricFamily process_family(const char* name, const char* help,
                                        prometheus::MetricType type, double value) {
  prometheus::MetricFamily family{name, help, type, {}};
  prometheus::ClientMetric metric;
  if (type == prometheus::MetricType::Counter) {
    metric.counter.value = value;
  } else {
    metric.gauge.value = value;
  }
  family.metric.push_back(std::move(metric));
  return family;
}

void append_process_metrics(std::vector<prometheus::MetricFamily>& families) {
  std::ifstream stat_file("/proc/self/stat");
  std::string stat((std::istreambuf_iterator<char>(stat_file)), std::istreambuf_iterator<char>());
  const std::size_t comm_end = stat.rfind(')');
  if (comm_end == std::string::npos) return;
  std::istringstream fields(stat.substr(comm_end + 2));
  std::vector<std::string> field;  // field[0] is the state (3rd field of stat)
  for (std::string value; fields >> value;) field.push_back(value);
  if (field.size() < 22) return;
  const double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(::sysconf(_SC_PAGESIZE));
  const double utime = std::stod(field[11]), stime = std::stod(field[12]);
  const double start_ticks = std::stod(field[19]);
  const double vsize = std::stod(field[20]), rss_pages = std::stod(field[21]);

  double boot_time = 0;
  std::ifstream proc_stat("/proc/stat");
  for (std::string line; std::getline(proc_stat, line);) {
    if (line.rfind("btime ", 0) == 0) boot_time = std::stod(line.substr(6));
  }
  double open_fds = 0;
  if (DIR* dir = ::opendir("/proc/self/fd")) {
    while (const dirent* entry = ::readdir(dir)) open_fds += entry->d_name[0] != '.';
    ::closedir(dir);
    open_fds -= 1;  // the directory stream itself
  }
  rlimit limit{};
  ::getrlimit(RLIMIT_NOFILE, &limit);

  using prometheus::MetricType;
  families.push_back(process_family("process_cpu_seconds_total",
                                    "Total user and system CPU time spent in seconds.",
                                    MetricType::Counter, (utime + stime) / ticks));
  families.push_back(process_family("process_resident_memory_bytes",
                                    "Resident memory size in bytes.", MetricType::Gauge,
                                    rss_pages * page));
  families.push_back(process_family("process_virtual_memory_bytes", "Virtual memory size in bytes.",
                                    MetricType::Gauge, vsize));
  families.push_back(process_family("process_start_time_seconds",
                                    "Start time of the process since unix epoch in seconds.",
                                    MetricType::Gauge, boot_time + start_ticks / ticks));
  families.push_back(process_family("process_open_fds", "Number of open file descriptors.",
                                    MetricType::Gauge, open_fds));
  families.push_back(process_family("process_max_fds", "Maximum number of open file descriptors.",
                                    MetricType::Gauge, static_cast<double>(limit.rlim_cur)));
}

}  // namespace

struct Metrics::State {
  std::mutex mutex;
  std::shared_ptr<prometheus::Registry> registry = std::make_shared<prometheus::Registry>();

  Series<prometheus::Gauge> check_status{
      prometheus::BuildGauge()
          .Name("ringwatch_check_status")
          .Help("Status of a check in the last round: 0 ok, 1 warning, 2 critical, 3 unknown.")
          .Register(*registry)};
  Series<prometheus::Counter> canary_reads{
      prometheus::BuildCounter()
          .Name("ringwatch_canary_reads_total")
          .Help("Canary reads (canary x reading proxy) by outcome.")
          .Register(*registry)};
  Series<prometheus::Gauge> consistency_ratio{
      prometheus::BuildGauge()
          .Name("ringwatch_canary_consistency_ratio")
          .Help("Consistent canary reads / all canary reads in the last round (1 = consistent).")
          .Register(*registry)};
  Series<prometheus::Gauge> backends_routed{
      prometheus::BuildGauge()
          .Name("ringwatch_proxy_backends_routed")
          .Help("Backends the proxy routed canaries to in the last round.")
          .Register(*registry)};
  Series<prometheus::Gauge> proxy_verdict{
      prometheus::BuildGauge()
          .Name("ringwatch_canary_proxy_verdict")
          .Help("The canary's last verdict on the proxy: 0 agrees, 1 diverges, 2 unreachable; "
                "kept while rounds read through other proxies.")
          .Register(*registry)};
  Series<prometheus::Gauge> proxy_verdict_time{
      prometheus::BuildGauge()
          .Name("ringwatch_canary_proxy_verdict_timestamp_seconds")
          .Help("Start of the round that gave the proxy its verdict, seconds since the unix "
                "epoch (its age is time() minus this).")
          .Register(*registry)};
  Series<prometheus::Gauge> backends_connected{
      prometheus::BuildGauge()
          .Name("ringwatch_proxy_backends_connected")
          .Help("Configured backends the proxy holds live connections to (its own stats).")
          .Register(*registry)};
  Series<prometheus::Gauge> backends_configured{prometheus::BuildGauge()
                                                    .Name("ringwatch_backends_configured")
                                                    .Help("Backends in the cluster spec.")
                                                    .Register(*registry)};
  Series<prometheus::Gauge> proxies_configured{prometheus::BuildGauge()
                                                   .Name("ringwatch_proxies_configured")
                                                   .Help("Proxies in the cluster spec.")
                                                   .Register(*registry)};
  Series<prometheus::Gauge> dns_answer_expected{
      prometheus::BuildGauge()
          .Name("ringwatch_dns_answer_expected")
          .Help("1 when the node's name resolves at the vantage point to its expected address "
                "range only, 0 when not; absent when undecided.")
          .Register(*registry)};
  Series<prometheus::Histogram> round_duration{
      prometheus::BuildHistogram()
          .Name("ringwatch_probe_round_duration_seconds")
          .Help("Duration of a probe round (all checks of one cluster).")
          .Register(*registry)};
  Series<prometheus::Counter> rounds{prometheus::BuildCounter()
                                         .Name("ringwatch_probe_rounds_total")
                                         .Help("Probe rounds by outcome (the round's status, or "
                                               "skipped when the previous round overran).")
                                         .Register(*registry)};
  Series<prometheus::Gauge> last_round{
      prometheus::BuildGauge()
          .Name("ringwatch_last_round_timestamp_seconds")
          .Help("Start of the cluster's last finished round, seconds since the unix epoch.")
          .Register(*registry)};
  Series<prometheus::Counter> reloads{prometheus::BuildCounter()
                                          .Name("ringwatch_config_reloads_total")
                                          .Help("Fleet configuration reloads by outcome.")
                                          .Register(*registry)};
  Series<prometheus::Counter> notifications{
      prometheus::BuildCounter()
          .Name("ringwatch_alert_notifications_total")
          .Help("Alert delivery attempts by sink and outcome (sent, failed).")
          .Register(*registry)};
  Series<prometheus::Counter> notifications_dropped{
      prometheus::BuildCounter()
          .Name("ringwatch_alert_notifications_dropped_total")
          .Help("Alert batches a sink gave up on, by reason (queue_full, retries_exhausted, "
                "rejected).")
          .Register(*registry)};
  Series<prometheus::Gauge> build_info{prometheus::BuildGauge()
                                           .Name("ringwatch_build_info")
                                           .Help("ringwatch build information; always 1.")
                                           .Register(*registry)};

  void count_delivery(const DeliveryEvent& event) {
    std::lock_guard lock(mutex);
    switch (event.outcome) {
      case DeliveryOutcome::sent:
      case DeliveryOutcome::failed:
        notifications.at({{"sink", event.sink}, {"outcome", to_string(event.outcome)}}).Increment();
        return;
      case DeliveryOutcome::dropped_queue_full:
        notifications_dropped.at({{"sink", event.sink}, {"reason", "queue_full"}}).Increment();
        return;
      case DeliveryOutcome::dropped_retries_exhausted:
        notifications_dropped.at({{"sink", event.sink}, {"reason", "retries_exhausted"}})
            .Increment();
        return;
      case DeliveryOutcome::dropped_rejected:
        notifications_dropped.at({{"sink", event.sink}, {"reason", "rejected"}}).Increment();
        return;
    }
  }
};

namespace {

class MetricsDeliveryObserver final : public DeliveryObserver {
 public:
  explicit MetricsDeliveryObserver(std::function<void(const DeliveryEvent&)> count)
      : count_(std::move(count)) {}
  void on_delivery(const DeliveryEvent& event) override { count_(event); }

 private:
  std::function<void(const DeliveryEvent&)> count_;
};

}  // namespace

Metrics::Metrics(const std::string& version) : state_(std::make_shared<State>()) {
  state_->build_info.at({{"version", version}}).Set(1);
  for (const char* outcome : {"success", "failure"}) state_->reloads.at({{"outcome", outcome}});
}

Metrics::~Metrics() = default;

void Metrics::observe(const spec::ClusterSpec& spec, const report::Report& report) {
  State& s = *state_;
  std::lock_guard lock(s.mutex);
  const std::string& cluster = report.cluster;
  auto in_cluster = [&cluster](const Labels& labels) {
    auto found = labels.find("cluster");
    return found != labels.end() && found->second == cluster;
  };

  std::set<std::string> ran;
  for (const report::CheckResult& check : report.checks) {
    ran.insert(check.name);
    s.check_status.at({{"cluster", cluster}, {"check", check.name}})
        .Set(static_cast<double>(static_cast<int>(check.status)));
  }

  s.rounds.at({{"cluster", cluster}, {"outcome", lower(report::to_string(report.status()))}})
      .Increment();
  double duration_ms = report.duration_ms;
  if (duration_ms <= 0) {
    for (const report::CheckResult& check : report.checks) duration_ms += check.duration_ms;
  }
  s.round_duration.at({{"cluster", cluster}}, round_buckets()).Observe(duration_ms / 1000.0);
  if (report.started_at != std::chrono::system_clock::time_point{}) {
    s.last_round.at({{"cluster", cluster}})
        .Set(std::chrono::duration<double>(report.started_at.time_since_epoch()).count());
  }
  s.backends_configured.at({{"cluster", cluster}}).Set(static_cast<double>(spec.backends.size()));
  s.proxies_configured.at({{"cluster", cluster}}).Set(static_cast<double>(spec.proxies.size()));

  // Canary reads and consistency.
  if (ran.contains(checks::kCanary)) {
    for (const auto& [result, name] :
         {std::pair{"ok", figures::kReadsOk}, std::pair{"miss", figures::kReadsMiss},
          std::pair{"stale", figures::kReadsStale}, std::pair{"foreign", figures::kReadsForeign},
          std::pair{"error", figures::kReadsError}}) {
      auto& counter = s.canary_reads.at({{"cluster", cluster}, {"result", result}});
      const double* reads = figure(report, name);
      if (reads != nullptr && *reads > 0) counter.Increment(*reads);
    }
    const double* reads = figure(report, figures::kReads);
    const double* ratio = figure(report, figures::kConsistencyRatio);
    if (reads != nullptr && *reads > 0 && ratio != nullptr) {
      s.consistency_ratio.at({{"cluster", cluster}}).Set(*ratio);
    } else {
      s.consistency_ratio.remove({{"cluster", cluster}});
    }
  }

  // Per proxy.
  std::set<std::string> proxies;
  for (const spec::Proxy& proxy : spec.proxies) proxies.insert(proxy.name);
  auto gone_proxy = [&](const Labels& labels) {
    return in_cluster(labels) && !proxies.contains(labels.at("proxy"));
  };
  s.backends_routed.remove_if(gone_proxy);
  s.backends_connected.remove_if(gone_proxy);
  auto per_proxy = [&](Series<prometheus::Gauge>& series, const char* check,
                       std::string (*figure_of)(std::string_view)) {
    if (!ran.contains(check)) return;
    for (const spec::Proxy& proxy : spec.proxies) {
      const Labels labels{{"cluster", cluster}, {"proxy", proxy.name}};
      const double* value = figure(report, figure_of(proxy.name));
      if (value != nullptr) {
        series.at(labels).Set(*value);
      } else {
        series.remove(labels);
      }
    }
  };
  per_proxy(s.backends_routed, checks::kCanary, figures::backends_routed);
  per_proxy(s.backends_connected, checks::kConnections, figures::proxy_backends_connected);
  // A round that did not read through a proxy leaves its last verdict and age.
  s.proxy_verdict.remove_if(gone_proxy);
  s.proxy_verdict_time.remove_if(gone_proxy);
  for (const spec::Proxy& proxy : spec.proxies) {
    const double* verdict = figure(report, figures::proxy_verdict(proxy.name));
    if (verdict == nullptr) continue;
    const Labels labels{{"cluster", cluster}, {"proxy", proxy.name}};
    s.proxy_verdict.at(labels).Set(*verdict);
    s.proxy_verdict_time.at(labels).Set(
        std::chrono::duration<double>(report.started_at.time_since_epoch()).count());
  }

  // Per (node, vantage).
  std::set<std::pair<std::string, std::string>> pairs;
  for (const spec::Backend& backend : spec.backends) {
    if (!backend.dns_name) continue;  // known by address only: no DNS series
    for (const spec::DnsServer& vantage : spec.dns_servers) {
      pairs.emplace(*backend.dns_name, vantage.name);
    }
  }
  s.dns_answer_expected.remove_if([&](const Labels& labels) {
    return in_cluster(labels) && !pairs.contains({labels.at("node"), labels.at("vantage")});
  });
  if (ran.contains(checks::kDns)) {
    for (const spec::Backend& backend : spec.backends) {
      if (!backend.dns_name) continue;
      for (const spec::DnsServer& vantage : spec.dns_servers) {
        const Labels labels{
            {"cluster", cluster}, {"node", *backend.dns_name}, {"vantage", vantage.name}};
        const double* value =
            figure(report, figures::dns_answer_expected(backend.name, vantage.name));
        if (value != nullptr) {
          s.dns_answer_expected.at(labels).Set(*value);
        } else {
          s.dns_answer_expected.remove(labels);
        }
      }
    }
  }
}

void Metrics::round_skipped(const std::string& cluster) {
  std::lock_guard lock(state_->mutex);
  state_->rounds.at({{"cluster", cluster}, {"outcome", "skipped"}}).Increment();
}

void Metrics::config_reload(bool ok) {
  std::lock_guard lock(state_->mutex);
  state_->reloads.at({{"outcome", ok ? "success" : "failure"}}).Increment();
}

void Metrics::forget_cluster(const std::string& cluster) {
  State& s = *state_;
  std::lock_guard lock(s.mutex);
  s.check_status.remove_cluster(cluster);
  s.canary_reads.remove_cluster(cluster);
  s.consistency_ratio.remove_cluster(cluster);
  s.backends_routed.remove_cluster(cluster);
  s.backends_connected.remove_cluster(cluster);
  s.proxy_verdict.remove_cluster(cluster);
  s.proxy_verdict_time.remove_cluster(cluster);
  s.backends_configured.remove_cluster(cluster);
  s.proxies_configured.remove_cluster(cluster);
  s.dns_answer_expected.remove_cluster(cluster);
  s.round_duration.remove_cluster(cluster);
  s.rounds.remove_cluster(cluster);
  s.last_round.remove_cluster(cluster);
}

std::shared_ptr<DeliveryObserver> Metrics::delivery_observer(const std::string& sink) {
  {
    std::lock_guard lock(state_->mutex);
    for (const char* outcome : {"sent", "failed"}) {
      state_->notifications.at({{"sink", sink}, {"outcome", outcome}});
    }
    for (const char* reason : {"queue_full", "retries_exhausted", "rejected"}) {
      state_->notifications_dropped.at({{"sink", sink}, {"reason", reason}});
    }
  }
  return std::make_shared<MetricsDeliveryObserver>(
      [state = state_](const DeliveryEvent& event) { state->count_delivery(event); });
}

std::string Metrics::serialize() const {
  std::vector<prometheus::MetricFamily> families;
  {
    std::lock_guard lock(state_->mutex);
    families = state_->registry->Collect();
  }
  append_process_metrics(families);
  return prometheus::TextSerializer().Serialize(families);
}

prometheus::Registry& Metrics::registry() {
  return *state_->registry;
}

}  // namespace ringwatch::alerts
