#include "daemon/alerting.h"

#include "alerts/alert_state.h"
#include "alerts/http_sink.h"
#include "alerts/metrics.h"
#include "daemon/log.h"

namespace ringwatch::daemon {
namespace {

// Logs a delivery, then counts it.
class LoggingObserver final : public alerts::DeliveryObserver {
 public:
  LoggingObserver(std::shared_ptr<Logger> log, std::shared_ptr<alerts::DeliveryObserver> next)
      : log_(std::move(log)), next_(std::move(next)) {}
  void on_delivery(const alerts::DeliveryEvent& event) override {
    const auto level =
        event.outcome == alerts::DeliveryOutcome::sent ? LogLevel::debug : LogLevel::warn;
    LogFields fields{{"sink", event.sink},
                     {"outcome", alerts::to_string(event.outcome)},
                     {"alerts", std::to_string(event.items)},
                     {"attempt", std::to_string(event.attempt)}};
    if (!event.error.empty()) fields.emplace_back("error", event.error);
    if (event.retry_in.count() > 0) {
      fields.emplace_back("retry_in_ms", std::to_string(event.retry_in.count()));
    }
    log_->log(level, "alert_delivery", fields);
    if (next_) next_->on_delivery(event);
  }

 private:
  std::shared_ptr<Logger> log_;
  std::shared_ptr<alerts::DeliveryObserver> next_;
};

}  // namespace

std::shared_ptr<alerts::Sink> make_http_sink(alerts::SinkFormat format,
                                             alerts::HttpSinkOptions options) {
  return std::make_shared<alerts::HttpSink>(format, std::move(options));
}

Alerting::Alerting(const AlertsConfig& config, std::shared_ptr<Logger> log,
                   std::shared_ptr<alerts::Metrics> metrics, SinkFactory make_sink)
    : log_(std::move(log)), metrics_(std::move(metrics)), make_sink_(std::move(make_sink)) {
  reconfigure(config);
}

Alerting::~Alerting() = default;

void Alerting::reconfigure(const AlertsConfig& config) {
  const auto make_sink = [&](alerts::SinkFormat format, const std::string& name,
                             const std::string& url, const SinkAccess& access) {
    alerts::HttpSinkOptions options;
    options.name = name;
    options.url = url;
    options.tls.ca_file = access.ca_file;
    if (!access.authorization.empty()) {
      options.headers.emplace_back("Authorization", access.authorization);
    }
    options.observer = std::make_shared<LoggingObserver>(
        log_, metrics_ ? metrics_->delivery_observer(name) : nullptr);
    return make_sink_(format, std::move(options));
  };
  const std::lock_guard lock(mutex_);
  const bool first = !tracker_;
  std::vector<std::shared_ptr<alerts::Sink>> sinks = sinks_;
  if (first || config.alertmanager != config_.alertmanager || config.webhook != config_.webhook ||
      config.alertmanager_access != config_.alertmanager_access ||
      config.webhook_access != config_.webhook_access) {
    sinks.clear();  // built before anything is swapped: a bad URL changes nothing
    if (!config.alertmanager.empty()) {
      sinks.push_back(make_sink(alerts::SinkFormat::alertmanager_v2, "alertmanager",
                                config.alertmanager, config.alertmanager_access));
    }
    if (!config.webhook.empty()) {
      sinks.push_back(
          make_sink(alerts::SinkFormat::webhook, "webhook", config.webhook, config.webhook_access));
    }
  }
  if (first || config.fire_after_rounds != config_.fire_after_rounds ||
      config.resolve_after_rounds != config_.resolve_after_rounds) {
    alerts::TrackerOptions options;
    options.fire_after_rounds = config.fire_after_rounds;
    options.resolve_after_rounds = config.resolve_after_rounds;
    tracker_ = std::make_unique<alerts::AlertTracker>(options);
  }
  sinks_ = std::move(sinks);
  config_ = config;
}

void Alerting::observe(const report::Report& report) {
  const std::lock_guard lock(mutex_);
  if (sinks_.empty()) return;
  const auto events = tracker_->observe(report, alerts::Clock::now());
  for (const auto& event : events) {
    log_->info("alert", {{"cluster", report.cluster},
                         {"kind", alerts::to_string(event.kind)},
                         {"alertname", event.alert.label("alertname")},
                         {"fingerprint", event.alert.fingerprint()}});
  }
  for (const auto& sink : sinks_) sink->send(events);
}

void Alerting::forget_cluster(const std::string& cluster) {
  const std::lock_guard lock(mutex_);
  const auto events = tracker_->forget_cluster(cluster, alerts::Clock::now());
  for (const auto& sink : sinks_) sink->send(events);
}

void Alerting::resend_due() {
  const std::lock_guard lock(mutex_);
  if (sinks_.empty()) return;
  const auto events = tracker_->resends_due(alerts::Clock::now());
  for (const auto& sink : sinks_) sink->send(events);
}

void Alerting::flush(std::chrono::milliseconds timeout) {
  std::vector<std::shared_ptr<alerts::Sink>> sinks;
  {
    const std::lock_guard lock(mutex_);
    sinks = sinks_;
  }
  for (const auto& sink : sinks) sink->flush(timeout);
}

}  // namespace ringwatch::daemon
