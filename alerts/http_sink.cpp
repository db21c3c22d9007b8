#include "alerts/http_sink.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <time.h>

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "lib/util/time.h"

namespace ringwatch::alerts {

namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;
using SteadyClock = std::chrono::steady_clock;

void write_map(Writer& writer, const char* key, const LabelSet& values) {
  writer.Key(key);
  writer.StartObject();
  for (const auto& [name, value] : values) {
    writer.Key(name.c_str(), static_cast<rapidjson::SizeType>(name.size()));
    writer.String(value.c_str(), static_cast<rapidjson::SizeType>(value.size()));
  }
  writer.EndObject();
}

void write_string(Writer& writer, const char* key, const std::string& value) {
  writer.Key(key);
  writer.String(value.c_str(), static_cast<rapidjson::SizeType>(value.size()));
}

void write_times(Writer& writer, const Alert& alert) {
  write_string(writer, "startsAt", util::format_rfc3339_ms(alert.starts_at));
  if (alert.ends_at != TimePoint{})
    write_string(writer, "endsAt", util::format_rfc3339_ms(alert.ends_at));
  if (!alert.generator_url.empty()) write_string(writer, "generatorURL", alert.generator_url);
}

bool retryable_status(int status) {
  return status == 408 || status == 429 || status < 400 || status >= 500;
}

std::string status_error(const http::Response& response) {
  std::string text = "HTTP " + std::to_string(response.status);
  std::string body = response.body.substr(0, 200);
  std::replace(body.begin(), body.end(), '\n', ' ');
  while (!body.empty() && body.back() == ' ') body.pop_back();
  if (!body.empty()) text += ": " + body;
  return text;
}

}  // namespace

const char* to_string(DeliveryOutcome outcome) {
  switch (outcome) {
    case DeliveryOutcome::sent:
      return "sent";
    case DeliveryOutcome::failed:
      return "failed";
    case DeliveryOutcome::dropped_queue_full:
      return "dropped_queue_full";
    case DeliveryOutcome::dropped_retries_exhausted:
      return "dropped_retries_exhausted";
    case DeliveryOutcome::dropped_rejected:
      return "dropped_rejected";
  }
  return "failed";
}

std::string encode_alertmanager_v2(const std::vector<AlertEvent>& events) {
  rapidjson::StringBuffer buffer;
  Writer writer(buffer);
  writer.StartArray();
  for (const AlertEvent& event : events) {
    writer.StartObject();
    write_map(writer, "labels", event.alert.labels);
    write_map(writer, "annotations", event.alert.annotations);
    write_times(writer, event.alert);
    writer.EndObject();
  }
  writer.EndArray();
  return buffer.GetString();
}

std::string encode_webhook(const std::vector<AlertEvent>& events) {
  rapidjson::StringBuffer buffer;
  Writer writer(buffer);
  writer.StartObject();
  write_string(writer, "schema", "ringwatch.alerts/v1");
  writer.Key("alerts");
  writer.StartArray();
  for (const AlertEvent& event : events) {
    writer.StartObject();
    write_string(writer, "event", to_string(event.kind));
    write_string(writer, "status",
                 event.alert.state == AlertState::resolved ? "resolved" : "firing");
    write_string(writer, "fingerprint", event.alert.fingerprint());
    write_map(writer, "labels", event.alert.labels);
    write_map(writer, "annotations", event.alert.annotations);
    write_times(writer, event.alert);
    writer.EndObject();
  }
  writer.EndArray();
  writer.EndObject();
  return buffer.GetString();
}

struct HttpSink::Impl {
  SinkFormat format;
  HttpSinkOptions options;
  http::Url url;
  http::Client client;

  mutable std::mutex mutex;
  std::condition_variable wake;  // work queued or stop
  std::condition_variable idle;  // queue empty and nothing in flight
  std::deque<std::vector<AlertEvent>> queue;
  SinkStats stats;
  bool stopping = false;
  std::thread worker;

  Impl(SinkFormat sink_format, HttpSinkOptions sink_options, http::Url target)
      : format(sink_format),
        options(std::move(sink_options)),
        url(std::move(target)),
        client(options.deadlines, options.user_agent) {}

  void notify(DeliveryOutcome outcome, std::size_t alerts, int attempt, std::string error = {},
              std::chrono::milliseconds retry_in = {}) const {
    if (!options.observer) return;
    options.observer->on_delivery(
        {options.name, outcome, alerts, attempt, std::move(error), retry_in});
  }

  std::string encode(const std::vector<AlertEvent>& events) const {
    return format == SinkFormat::alertmanager_v2 ? encode_alertmanager_v2(events)
                                                 : encode_webhook(events);
  }

  // Sleeps until `until` or stop; false when stopping.
  bool wait_until(SteadyClock::time_point until) {
    std::unique_lock lock(mutex);
    wake.wait_until(lock, until, [this] { return stopping; });
    return !stopping;
  }

  void run() {
    std::chrono::milliseconds backoff{0};
    SteadyClock::time_point next_attempt = SteadyClock::now();
    for (;;) {
      std::vector<AlertEvent> batch;
      {
        std::unique_lock lock(mutex);
        wake.wait(lock, [this] { return stopping || !queue.empty(); });
        if (stopping) return;
        batch = std::move(queue.front());
        queue.pop_front();
        stats.queued = queue.size();
        stats.in_flight = true;
      }
      const std::string body = encode(batch);
      for (int attempt = 1;; ++attempt) {
        if (!wait_until(next_attempt)) return;
        auto result = client.request("POST", url, body, "application/json");
        if (result.ok() && result.value().status / 100 == 2) {
          backoff = std::chrono::milliseconds{0};
          next_attempt = SteadyClock::now();
          count([](SinkStats& s) { ++s.sent; });
          notify(DeliveryOutcome::sent, batch.size(), attempt);
          break;
        }
        std::string error = result.ok() ? status_error(result.value()) : result.error().message;
        if (!result.ok() && result.error().kind == http::ErrorKind::cancelled) return;
        if (result.ok() && !retryable_status(result.value().status)) {
          count([](SinkStats& s) {
            ++s.failed;
            ++s.dropped_rejected;
          });
          notify(DeliveryOutcome::failed, batch.size(), attempt, error);
          notify(DeliveryOutcome::dropped_rejected, batch.size(), attempt, error);
          break;
        }
        backoff = backoff.count() == 0 ? options.initial_backoff
                                       : std::min(backoff * 2, options.max_backoff);
        next_attempt = SteadyClock::now() + backoff;
        const bool give_up = attempt >= options.max_attempts;
        count([give_up](SinkStats& s) {
          ++s.failed;
          if (give_up) ++s.dropped_retries_exhausted;
        });
        notify(DeliveryOutcome::failed, batch.size(), attempt, error, backoff);
        if (give_up) {
          notify(DeliveryOutcome::dropped_retries_exhausted, batch.size(), attempt, error);
          break;
        }
      }
      {
        std::lock_guard lock(mutex);
        stats.in_flight = false;
        if (queue.empty()) idle.notify_all();
      }
    }
  }

  template <class F>
  void count(F&& update) {
    std::lock_guard lock(mutex);
    update(stats);
  }
};

HttpSink::HttpSink(SinkFormat format, HttpSinkOptions options) {
  const std::string label = "sink " + (options.name.empty() ? std::string("?") : options.name);
  if (options.name.empty()) throw std::invalid_argument(label + ": name: expected a name");
  http::Url url;
  try {
    url = http::parse_url(options.url);
  } catch (const std::invalid_argument& error) {
    throw std::invalid_argument(label + ": url: " + error.what());
  }
  if (format == SinkFormat::alertmanager_v2) {
    std::string prefix = url.target.substr(0, url.target.find('?'));
    while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
    url.target = prefix + "/api/v2/alerts";
  }
  auto positive = [&label](std::int64_t value, const char* what) {
    if (value <= 0) {
      throw std::invalid_argument(label + ": " + what + ": expected a positive value, got " +
                                  std::to_string(value));
    }
  };
  positive(static_cast<std::int64_t>(options.queue_capacity), "queue_capacity");
  positive(options.max_attempts, "max_attempts");
  positive(options.initial_backoff.count(), "initial_backoff");
  positive(options.max_backoff.count(), "max_backoff");
  positive(options.deadlines.connect.count(), "connect deadline");
  positive(options.deadlines.io.count(), "io deadline");
  impl_ = std::make_unique<Impl>(format, std::move(options), std::move(url));
  impl_->worker = std::thread([impl = impl_.get()] { impl->run(); });
}

HttpSink::~HttpSink() {
  {
    std::lock_guard lock(impl_->mutex);
    impl_->stopping = true;
  }
  impl_->wake.notify_all();
  impl_->client.cancel();
  impl_->worker.join();
}

void HttpSink::send(const std::vector<AlertEvent>& events) {
  std::vector<AlertEvent> batch;
  batch.reserve(events.size());
  for (const AlertEvent& event : events) {
    if (event.kind == EventKind::resent && impl_->format == SinkFormat::webhook &&
        !impl_->options.include_resends) {
      continue;
    }
    batch.push_back(event);
  }
  if (batch.empty()) return;
  std::size_t dropped_alerts = 0;
  bool dropped = false;
  {
    std::lock_guard lock(impl_->mutex);
    if (impl_->stopping) return;
    if (impl_->queue.size() >= impl_->options.queue_capacity) {
      dropped_alerts = impl_->queue.front().size();
      impl_->queue.pop_front();
      ++impl_->stats.dropped_queue_full;
      dropped = true;
    }
    impl_->queue.push_back(std::move(batch));
    impl_->stats.queued = impl_->queue.size();
  }
  impl_->wake.notify_all();
  if (dropped) {
    impl_->notify(DeliveryOutcome::dropped_queue_full, dropped_alerts, 0,
                  "queue full (" + std::to_string(impl_->options.queue_capacity) + " batches)");
  }
}

bool HttpSink::flush(std::chrono::milliseconds timeout) {
  std::unique_lock lock(impl_->mutex);
  return impl_->idle.wait_for(lock, timeout,
                              [this] { return impl_->queue.empty() && !impl_->stats.in_flight; });
}

SinkStats HttpSink::stats() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->stats;
}

const std::string& HttpSink::name() const {
  return impl_->options.name;
}

const http::Url& HttpSink::url() const {
  return impl_->url;
}

std::unique_ptr<HttpSink> make_alertmanager_sink(HttpSinkOptions options) {
  return std::make_unique<HttpSink>(SinkFormat::alertmanager_v2, std::move(options));
}

std::unique_ptr<HttpSink> make_webhook_sink(HttpSinkOptions options) {
  return std::make_unique<HttpSink>(SinkFormat::webhook, std::move(options));
}

}  // namespace ringwatch::alerts
