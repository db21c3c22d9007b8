#include "migration/notifier.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>
#include <vector>

#include "alerts/http_sink.h"
#include "lib/http/client.h"
#include "lib/util/time.h"

namespace ringwatch::migration {

namespace {

using SteadyClock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

constexpr std::size_t kQueueCapacity = 256;
constexpr int kMaxAttempts = 3;
constexpr milliseconds kInitialBackoff{200};
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

std::string status_error(const http::Response& response) {
  std::string text = "HTTP " + std::to_string(response.status);
  std::string body = response.body.substr(0, 200);
  body = body.substr(0, body.find('\n'));
  while (!body.empty() && (body.back() == ' ' || body.back() == '\r')) body.pop_back();
  if (!body.empty()) text += ": " + body;
  return text;
}

std::string describe(const Notification& notification) {
  std::string text = std::string("the ") + to_string(notification.event) + " event";
  if (!notification.cluster.empty()) text += " of cluster " + notification.cluster;
  return text;
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
  write_string(writer, "at", util::format_rfc3339_ms(notification.at));
  writer.EndObject();
  return buffer.GetString();
}

struct Notifier::Impl {
  std::ostream& log;
  std::mutex log_mutex;
  const milliseconds resend_interval;

  // Webhook: its own queue and delivery thread.
  std::optional<http::Url> webhook_url;
  std::unique_ptr<http::Client> webhook_client;
  mutable std::mutex webhook_mutex;
  std::condition_variable webhook_wake;  // queued or stopping
  std::condition_variable webhook_idle;  // queue empty and nothing in flight
  std::deque<Notification> webhook_queue;
  bool webhook_in_flight = false;
  bool webhook_stopping = false;
  NotifierStats webhook_stats;
  std::thread webhook_thread;

  // Alertmanager: HttpSink delivers; here is which clusters are paused, and
  // the thread that re-sends their alerts.
  struct Paused {
    alerts::Alert alert;
    SteadyClock::time_point last_sent;
  };
  std::unique_ptr<alerts::HttpSink> alertmanager;
  std::mutex alert_mutex;
  std::condition_variable resend_wake;   // stopping
  std::map<std::string, Paused> paused;  // by cluster
  bool resend_stopping = false;
  std::thread resend_thread;

  Impl(std::ostream& log_stream, milliseconds resend) : log(log_stream), resend_interval(resend) {}

  void write_log(const std::string& line) {
    std::lock_guard lock(log_mutex);
    log << line << '\n';
    log.flush();
  }

  // Webhook ---------------------------------------------------------------

  void queue_webhook(const Notification& notification) {
    std::optional<Notification> dropped;
    {
      std::lock_guard lock(webhook_mutex);
      if (webhook_stopping) return;
      if (webhook_queue.size() >= kQueueCapacity) {
        dropped = std::move(webhook_queue.front());
        webhook_queue.pop_front();
        ++webhook_stats.dropped;
      }
      webhook_queue.push_back(notification);
    }
    webhook_wake.notify_all();
    if (dropped) {
      write_log("notify webhook: queue full (" + std::to_string(kQueueCapacity) +
                " events), dropped " + describe(*dropped));
    }
  }

  // Sleeps `duration` unless stopping; false when stopping.
  bool webhook_sleep(milliseconds duration) {
    std::unique_lock lock(webhook_mutex);
    webhook_wake.wait_for(lock, duration, [this] { return webhook_stopping; });
    return !webhook_stopping;
  }

  void run_webhook() {
    const std::string target = webhook_url->to_string();
    for (;;) {
      Notification notification;
      {
        std::unique_lock lock(webhook_mutex);
        webhook_wake.wait(lock, [this] { return webhook_stopping || !webhook_queue.empty(); });
        if (webhook_stopping) return;
        notification = std::move(webhook_queue.front());
        webhook_queue.pop_front();
        webhook_in_flight = true;
      }
      const std::string body = encode_webhook_event(notification);
      bool delivered = false;
      milliseconds backoff = kInitialBackoff;
      for (int attempt = 1; attempt <= kMaxAttempts; ++attempt) {
        auto result = webhook_client->request("POST", *webhook_url, body, "application/json");
        if (!result.ok() && result.error().kind == http::ErrorKind::cancelled) return;
        if (result.ok() && result.value().status / 100 == 2) {
          delivered = true;
          std::lock_guard lock(webhook_mutex);
          ++webhook_stats.delivered;
          break;
        }
        {
          std::lock_guard lock(webhook_mutex);
          ++webhook_stats.failed;
        }
        const std::string error =
            result.ok() ? status_error(result.value()) : result.error().message;
        write_log("notify webhook: POST " + target + " failed: " + error + " (attempt " +
                  std::to_string(attempt) + " of " + std::to_string(kMaxAttempts) + ")");
        if (attempt == kMaxAttempts) break;
        if (!webhook_sleep(backoff)) return;
        backoff *= 2;
      }
      if (!delivered) {
        write_log("notify webhook: gave up on " + describe(notification) + " after " +
                  std::to_string(kMaxAttempts) + " attempts");
      }
      {
        std::lock_guard lock(webhook_mutex);
        if (!delivered) ++webhook_stats.dropped;
        webhook_in_flight = false;
        if (webhook_queue.empty()) webhook_idle.notify_all();
      }
    }
  }

  // Alertmanager ----------------------------------------------------------

  alerts::TimePoint firing_ends_at(alerts::TimePoint now) const {
    return now + std::chrono::duration_cast<alerts::Clock::duration>(4 * resend_interval);
  }

  void update_alerts(const Notification& notification) {
    const auto now = alerts::Clock::now();
    std::vector<alerts::AlertEvent> events;
    std::lock_guard lock(alert_mutex);
    if (resend_stopping) return;
    const auto existing = paused.find(notification.cluster);
    auto resolve = [&] {
      if (existing == paused.end()) return;
      alerts::Alert alert = existing->second.alert;
      alert.state = alerts::AlertState::resolved;
      alert.ends_at = now;
      events.push_back({alerts::EventKind::resolved, std::move(alert)});
      paused.erase(existing);
    };
    switch (notification.event) {
      case EventKind::paused: {
        alerts::Alert alert;
        alert.labels = {{"alertname", kAlertName},
                        {"cluster", notification.cluster},
                        {"reason", notification.reason},
                        {"severity", "critical"}};
        alert.annotations["summary"] = notification.detail;
        if (!notification.diagnosis.empty()) {
          alert.annotations["diagnosis"] = notification.diagnosis;
        }
        if (!notification.step.empty()) alert.annotations["step"] = notification.step;
        alert.state = alerts::AlertState::firing;
        alert.starts_at = notification.at;
        alert.ends_at = firing_ends_at(now);
        auto kind = alerts::EventKind::fired;
        if (existing != paused.end() && existing->second.alert.labels == alert.labels) {
          // Paused again in the same episode: same alert, fresh annotations.
          alert.starts_at = existing->second.alert.starts_at;
          kind = alerts::EventKind::resent;
          paused.erase(existing);
        } else {
          resolve();  // paused for another reason: that is another alert
        }
        events.push_back({kind, alert});
        paused[notification.cluster] = Paused{std::move(alert), SteadyClock::now()};
        break;
      }
      case EventKind::resumed:
      case EventKind::finished:
      case EventKind::aborted:
        resolve();
        break;
      case EventKind::started:
      case EventKind::failed:
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
};

namespace {

class LogObserver final : public alerts::DeliveryObserver {
 public:
  explicit LogObserver(std::function<void(const std::string&)> write) : write_(std::move(write)) {}
  // Before the first send, so no lock is needed.
  void set_target(std::string target) { target_ = std::move(target); }

  void on_delivery(const alerts::DeliveryEvent& event) override {
    const std::string count = std::to_string(event.alerts) + " alert(s)";
    switch (event.outcome) {
      case alerts::DeliveryOutcome::sent:
        return;
      case alerts::DeliveryOutcome::failed:
        write_("notify alertmanager: POST " + target_ + " failed: " + event.error + " (attempt " +
               std::to_string(event.attempt) + " of " + std::to_string(kMaxAttempts) + ")");
        return;
      case alerts::DeliveryOutcome::dropped_queue_full:
        write_("notify alertmanager: queue full, dropped " + count);
        return;
      case alerts::DeliveryOutcome::dropped_retries_exhausted:
        write_("notify alertmanager: gave up on " + count + " after " +
               std::to_string(event.attempt) + " attempts");
        return;
      case alerts::DeliveryOutcome::dropped_rejected:
        write_("notify alertmanager: dropped " + count + ", rejected: " + event.error);
        return;
    }
  }

 private:
  std::function<void(const std::string&)> write_;
  std::string target_;
};

}  // namespace

Notifier::Notifier(const Notifications& destinations, std::ostream& log,
                   std::chrono::milliseconds resend_interval)
    : impl_(std::make_unique<Impl>(log, resend_interval)) {
  if (resend_interval.count() <= 0) {
    throw std::invalid_argument("notifications: resend interval: expected a positive duration");
  }
  if (!destinations.webhook_url.empty()) {
    impl_->webhook_url = parse_destination("webhook_url", destinations.webhook_url);
  }
  std::optional<http::Url> alertmanager_url;
  if (!destinations.alertmanager_url.empty()) {
    alertmanager_url = parse_destination("alertmanager_url", destinations.alertmanager_url);
  }
  if (impl_->webhook_url) {
    impl_->webhook_client = std::make_unique<http::Client>();
    impl_->webhook_thread = std::thread([impl = impl_.get()] { impl->run_webhook(); });
  }
  if (alertmanager_url) {
    alerts::HttpSinkOptions options;
    options.name = "alertmanager";
    options.url = destinations.alertmanager_url;
    options.queue_capacity = kQueueCapacity;
    options.initial_backoff = kInitialBackoff;
    options.max_backoff = kInitialBackoff * 8;
    options.max_attempts = kMaxAttempts;
    auto observer = std::make_shared<LogObserver>(
        [impl = impl_.get()](const std::string& line) { impl->write_log(line); });
    options.observer = observer;
    impl_->alertmanager = alerts::make_alertmanager_sink(options);
    observer->set_target(impl_->alertmanager->url().to_string());
    impl_->resend_thread = std::thread([impl = impl_.get()] { impl->run_resends(); });
  }
}

Notifier::~Notifier() {
  {
    std::lock_guard lock(impl_->webhook_mutex);
    impl_->webhook_stopping = true;
  }
  impl_->webhook_wake.notify_all();
  if (impl_->webhook_client) impl_->webhook_client->cancel();
  if (impl_->webhook_thread.joinable()) impl_->webhook_thread.join();
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
  if (impl_->webhook_url) impl_->queue_webhook(event);
  if (impl_->alertmanager) impl_->update_alerts(event);
}

bool Notifier::flush(std::chrono::milliseconds timeout) {
  const auto deadline = SteadyClock::now() + timeout;
  if (impl_->webhook_url) {
    std::unique_lock lock(impl_->webhook_mutex);
    const bool idle = impl_->webhook_idle.wait_until(lock, deadline, [this] {
      return impl_->webhook_queue.empty() && !impl_->webhook_in_flight;
    });
    if (!idle) return false;
  }
  if (impl_->alertmanager) {
    const auto left = std::chrono::ceil<milliseconds>(deadline - SteadyClock::now());
    return impl_->alertmanager->flush(std::max(left, milliseconds{0}));
  }
  return true;
}

NotifierStats Notifier::stats() const {
  NotifierStats total;
  {
    std::lock_guard lock(impl_->webhook_mutex);
    total = impl_->webhook_stats;
  }
  if (impl_->alertmanager) {
    const alerts::SinkStats sink = impl_->alertmanager->stats();
    total.delivered += sink.sent;
    total.failed += sink.failed;
    total.dropped +=
        sink.dropped_queue_full + sink.dropped_retries_exhausted + sink.dropped_rejected;
  }
  return total;
}

}  // namespace ringwatch::migration
