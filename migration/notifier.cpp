#include "migration/notifier.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>
#include <vector>

#include "alerts/http_sink.h"
#include "alerts/sink.h"
#include "lib/http/client.h"
#include "lib/http/delivery.h"
#include "lib/util/time.h"

namespace ringwatch::migration {

namespace {

using SteadyClock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

constexpr std::size_t kQueueCapacity = 256;
constexpr int kMaxAttempts = 3;
constexpr milliseconds kInitialBackoff{200};
constexpr milliseconds kMaxBackoff{1600};
constexpr const char* kAlertName = "RingwatchMigrationPaused";

void write_string(Writer& writer, const char* key, const std::string& value) {
  writer.Key(key);
  writer.String(value.c_str(), static_cast<rapidjson::SizeType>(value.size()));
}

void write_nonempty(Writer& writer, const char* key, const std::string& value) {
  if (!value.empty()) write_string(writer, key, value);
}

http::Url parse_destination(const char* what, const std::string& url) {
  try {
    return http::parse_url(url);
  } catch (const std::invalid_argument& error) {
    throw std::invalid_argument(std::string("notifications: ") + what + ": " + error.what());
  }
}

std::string describe(const Notification& notification) {
  std::string text = std::string("the ") + to_string(notification.event) + " event";
  if (!notification.cluster.empty()) text += " of cluster " + notification.cluster;
  return text;
}

// Logs a destination's delivery failures and counts every outcome.
class DeliveryLog final : public http::DeliveryObserver {
 public:
  using Write = std::function<void(const std::string&)>;
  DeliveryLog(Write write, std::mutex& mutex, NotifierStats& stats)
      : write_(std::move(write)), mutex_(mutex), stats_(stats) {}
  // Before the first delivery, so no lock is needed.
  void set_target(const http::Url& url) { target_ = url.to_string(); }

  void on_delivery(const http::DeliveryEvent& event) override {
    count(event.outcome);
    const std::string prefix = "notify " + event.sink + ": ";
    const std::string attempts = std::to_string(event.attempt);
    switch (event.outcome) {
      case http::DeliveryOutcome::sent:
        return;
      case http::DeliveryOutcome::failed:
        write_(prefix + "POST " + target_ + " failed: " + event.error + " (attempt " + attempts +
               " of " + std::to_string(kMaxAttempts) + ")");
        return;
      case http::DeliveryOutcome::dropped_queue_full:
        write_(prefix + event.error + ", dropped " + event.description);
        return;
      case http::DeliveryOutcome::dropped_retries_exhausted:
        write_(prefix + "gave up on " + event.description + " after " + attempts + " attempts");
        return;
      case http::DeliveryOutcome::dropped_rejected:
        write_(prefix + "dropped " + event.description + ", rejected: " + event.error);
        return;
    }
  }

 private:
  void count(http::DeliveryOutcome outcome) {
    std::lock_guard lock(mutex_);
    if (outcome == http::DeliveryOutcome::sent) {
      ++stats_.delivered;
    } else if (outcome == http::DeliveryOutcome::failed) {
      ++stats_.failed;
    } else {
      ++stats_.dropped;
    }
  }

  Write write_;
  std::mutex& mutex_;
  NotifierStats& stats_;
  std::string target_;
};

// The notifier's delivery policy on a destination's options (of an
// http::Delivery or of an alerts::HttpSink): the queue, retries and backoff,
// and a DeliveryLog that logs and counts.
template <class Options>
Options with_policy(Options options, std::shared_ptr<DeliveryLog> observer) {
  options.queue_capacity = kQueueCapacity;
  options.initial_backoff = kInitialBackoff;
  options.max_backoff = kMaxBackoff;
  options.max_attempts = kMaxAttempts;
  options.observer = std::move(observer);
  return options;
}

}  // namespace

const char* to_string(EventKind kind) {
  switch (kind) {
    case EventKind::started:
      return "started";
    case EventKind::paused:
      return "paused";
    case EventKind::resumed:
      return "resumed";
    case EventKind::finished:
      return "finished";
    case EventKind::failed:
      return "failed";
    case EventKind::aborted:
      return "aborted";
    case EventKind::hook:
      return "hook";
  }
  return "started";
}

std::string encode_webhook_event(const Notification& notification) {
  rapidjson::StringBuffer buffer;
  Writer writer(buffer);
  writer.StartObject();
  write_string(writer, "schema", "ringwatch.migration/v1");
  write_string(writer, "event", to_string(notification.event));
  write_nonempty(writer, "cluster", notification.cluster);
  write_nonempty(writer, "step", notification.step);
  write_nonempty(writer, "reason", notification.reason);
  write_nonempty(writer, "detail", notification.detail);
  write_nonempty(writer, "diagnosis", notification.diagnosis);
  write_nonempty(writer, "hook", notification.hook);
  write_nonempty(writer, "outcome", notification.outcome);
  write_string(writer, "at", util::format_rfc3339_ms(notification.at));
  writer.EndObject();
  return buffer.GetString();
}

struct Notifier::Impl {
  std::ostream& log;
  std::mutex log_mutex;
  const milliseconds resend_interval;
  mutable std::mutex stats_mutex;
  NotifierStats stats;  // of the HTTP destinations, from their DeliveryLogs

  std::unique_ptr<http::Delivery> webhook;

  // Alertmanager: the sink delivers; here is which clusters are paused, and
  // the thread that re-sends their alerts.
  struct Paused {
    alerts::Alert alert;
    SteadyClock::time_point last_sent;
  };
  std::shared_ptr<alerts::Sink> alertmanager;
  std::mutex alert_mutex;
  std::condition_variable resend_wake;   // stopping
  std::map<std::string, Paused> paused;  // by cluster
  bool resend_stopping = false;
  std::thread resend_thread;

  Impl(std::ostream& log_stream, milliseconds resend) : log(log_stream), resend_interval(resend) {
    if (resend.count() <= 0) {
      throw std::invalid_argument("notifications: resend interval: expected a positive duration");
    }
  }

  void write_log(const std::string& line) {
    std::lock_guard lock(log_mutex);
    log << line << '\n';
    log.flush();
  }

  std::shared_ptr<DeliveryLog> delivery_log() {
    return std::make_shared<DeliveryLog>([this](const std::string& line) { write_log(line); },
                                         stats_mutex, stats);
  }

  void make_webhook(const http::Url& url) {
    auto observer = delivery_log();
    webhook = std::make_unique<http::Delivery>(
        with_policy(http::DeliveryOptions{.name = "webhook", .url = url}, observer));
    observer->set_target(webhook->url());
  }

  void make_alertmanager(const std::string& url) {
    auto observer = delivery_log();
    auto sink = alerts::make_alertmanager_sink(
        with_policy(alerts::HttpSinkOptions{.name = "alertmanager", .url = url}, observer));
    observer->set_target(sink->url());
    alertmanager = std::move(sink);
  }

  alerts::TimePoint firing_ends_at(alerts::TimePoint now) const {
    return now + std::chrono::duration_cast<alerts::Clock::duration>(4 * resend_interval);
  }

  alerts::Alert paused_alert(const Notification& notification, alerts::TimePoint now) const {
    alerts::Alert alert;
    alert.labels = {{"alertname", kAlertName},
                    {"cluster", notification.cluster},
                    {"reason", notification.reason},
                    {"severity", "critical"}};
    alert.annotations["summary"] = notification.detail;
    if (!notification.diagnosis.empty()) alert.annotations["diagnosis"] = notification.diagnosis;
    if (!notification.step.empty()) alert.annotations["step"] = notification.step;
    alert.state = alerts::AlertState::firing;
    alert.starts_at = notification.at;
    alert.ends_at = firing_ends_at(now);
    return alert;
  }

  // The cluster's alert, if it has one, resolved and forgotten. Under alert_mutex.
  void resolve(const std::string& cluster, alerts::TimePoint now,
               std::vector<alerts::AlertEvent>& events) {
    const auto existing = paused.find(cluster);
    if (existing == paused.end()) return;
    alerts::Alert alert = std::move(existing->second.alert);
    alert.state = alerts::AlertState::resolved;
    alert.ends_at = now;
    events.push_back({alerts::EventKind::resolved, std::move(alert)});
    paused.erase(existing);
  }

  // Fires the cluster's alert, or re-sends it when paused again for the same
  // reason. Under alert_mutex.
  void pause(const Notification& notification, alerts::TimePoint now,
             std::vector<alerts::AlertEvent>& events) {
    alerts::Alert alert = paused_alert(notification, now);
    auto kind = alerts::EventKind::fired;
    const auto existing = paused.find(notification.cluster);
    if (existing != paused.end() && existing->second.alert.labels == alert.labels) {
      // Paused again in the same episode: same alert, fresh annotations.
      alert.starts_at = existing->second.alert.starts_at;
      kind = alerts::EventKind::resent;
    } else {
      resolve(notification.cluster, now, events);  // paused for another reason: another alert
    }
    events.push_back({kind, alert});
    paused[notification.cluster] = Paused{std::move(alert), SteadyClock::now()};
  }

  void update_alerts(const Notification& notification) {
    const auto now = alerts::Clock::now();
    std::vector<alerts::AlertEvent> events;
    std::lock_guard lock(alert_mutex);
    if (resend_stopping) return;
    switch (notification.event) {
      case EventKind::paused:
        pause(notification, now, events);
        break;
      case EventKind::resumed:
      case EventKind::finished:
      case EventKind::aborted:
        resolve(notification.cluster, now, events);
        break;
      case EventKind::started:
      case EventKind::failed:
      case EventKind::hook:
        break;
    }
    // Sent under the lock so that the sink's queue keeps the order of events.
    if (!events.empty()) alertmanager->send(events);
  }

  void run_resends() {
    std::unique_lock lock(alert_mutex);
    while (!resend_stopping) {
      auto next = SteadyClock::now() + resend_interval;
      for (const auto& [cluster, entry] : paused) {
        next = std::min(next, entry.last_sent + resend_interval);
      }
      resend_wake.wait_until(lock, next, [this] { return resend_stopping; });
      if (resend_stopping) return;
      const auto steady_now = SteadyClock::now();
      const auto now = alerts::Clock::now();
      std::vector<alerts::AlertEvent> events;
      for (auto& [cluster, entry] : paused) {
        if (steady_now < entry.last_sent + resend_interval) continue;
        entry.alert.ends_at = firing_ends_at(now);
        entry.last_sent = steady_now;
        events.push_back({alerts::EventKind::resent, entry.alert});
      }
      if (!events.empty()) alertmanager->send(events);
    }
  }

  void start_resends() {
    resend_thread = std::thread([this] { run_resends(); });
  }
};

Notifier::Notifier(const Notifications& destinations, std::ostream& log,
                   std::chrono::milliseconds resend_interval)
    : impl_(std::make_unique<Impl>(log, resend_interval)) {
  std::optional<http::Url> webhook_url;
  if (!destinations.webhook_url.empty()) {
    webhook_url = parse_destination("webhook_url", destinations.webhook_url);
  }
  if (!destinations.alertmanager_url.empty()) {
    parse_destination("alertmanager_url", destinations.alertmanager_url);
  }
  if (webhook_url) impl_->make_webhook(*webhook_url);
  if (!destinations.alertmanager_url.empty()) {
    impl_->make_alertmanager(destinations.alertmanager_url);
    impl_->start_resends();
  }
}

Notifier::Notifier(std::ostream& log, std::shared_ptr<alerts::Sink> alertmanager,
                   std::chrono::milliseconds resend_interval)
    : impl_(std::make_unique<Impl>(log, resend_interval)) {
  impl_->alertmanager = std::move(alertmanager);
  if (impl_->alertmanager) impl_->start_resends();
}

Notifier::~Notifier() {
  impl_->webhook.reset();
  {
    std::lock_guard lock(impl_->alert_mutex);
    impl_->resend_stopping = true;
  }
  impl_->resend_wake.notify_all();
  if (impl_->resend_thread.joinable()) impl_->resend_thread.join();
  impl_->alertmanager.reset();
}

void Notifier::notify(const Notification& notification) {
  Notification event = notification;
  if (event.at == std::chrono::system_clock::time_point{}) event.at = alerts::Clock::now();
  if (impl_->webhook) {
    impl_->webhook->post({.body = encode_webhook_event(event), .description = describe(event)});
  }
  if (impl_->alertmanager) impl_->update_alerts(event);
}

bool Notifier::flush(std::chrono::milliseconds timeout) {
  const auto deadline = SteadyClock::now() + timeout;
  if (impl_->webhook && !impl_->webhook->flush(timeout)) return false;
  if (impl_->alertmanager) {
    const auto left = std::chrono::ceil<milliseconds>(deadline - SteadyClock::now());
    return impl_->alertmanager->flush(std::max(left, milliseconds{0}));
  }
  return true;
}

NotifierStats Notifier::stats() const {
  std::lock_guard lock(impl_->stats_mutex);
  return impl_->stats;
}

}  // namespace ringwatch::migration
