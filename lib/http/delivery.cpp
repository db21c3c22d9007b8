#include "lib/http/delivery.h"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>

namespace ringwatch::http {

namespace {

using SteadyClock = std::chrono::steady_clock;
using std::chrono::milliseconds;

bool retryable_status(int status) {
  return status == 408 || status == 429 || status < 400 || status >= 500;
}

std::string status_error(const Response& response) {
  std::string text = "HTTP " + std::to_string(response.status);
  std::string body = response.body.substr(0, 200);
  std::replace(body.begin(), body.end(), '\n', ' ');
  while (!body.empty() && body.back() == ' ') body.pop_back();
  if (!body.empty()) text += ": " + body;
  return text;
}

void require_positive(std::int64_t value, const char* what) {
  if (value <= 0) {
    throw std::invalid_argument(std::string(what) + ": expected a positive value, got " +
                                std::to_string(value));
  }
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

struct Delivery::Impl {
  DeliveryOptions options;
  Client client;

  mutable std::mutex mutex;
  std::condition_variable wake;  // work queued or stop
  std::condition_variable idle;  // queue empty and nothing in flight
  std::deque<Payload> queue;
  DeliveryStats stats;
  bool stopping = false;
  std::thread worker;

  // The destination's backoff (worker thread only).
  milliseconds backoff{0};
  SteadyClock::time_point next_attempt = SteadyClock::now();

  explicit Impl(DeliveryOptions delivery_options)
      : options(std::move(delivery_options)),
        client(options.deadlines, options.user_agent, options.tls) {}

  void notify(DeliveryOutcome outcome, const Payload& payload, int attempt, std::string error = {},
              milliseconds retry_in = {}) const {
    if (!options.observer) return;
    options.observer->on_delivery({options.name, outcome, payload.items, attempt, std::move(error),
                                   retry_in, payload.description});
  }

  template <class F>
  void count(F&& update) {
    std::lock_guard lock(mutex);
    update(stats);
  }

  // Sleeps until `until` or stop; false when stopping.
  bool wait_until(SteadyClock::time_point until) {
    std::unique_lock lock(mutex);
    wake.wait_until(lock, until, [this] { return stopping; });
    return !stopping;
  }

  // The next payload, once there is one; nothing when stopping.
  std::optional<Payload> take_next() {
    std::unique_lock lock(mutex);
    wake.wait(lock, [this] { return stopping || !queue.empty(); });
    if (stopping) return std::nullopt;
    Payload payload = std::move(queue.front());
    queue.pop_front();
    stats.queued = queue.size();
    stats.in_flight = true;
    return payload;
  }

  void sent(const Payload& payload, int attempt) {
    backoff = milliseconds{0};
    next_attempt = SteadyClock::now();
    count([](DeliveryStats& s) { ++s.sent; });
    notify(DeliveryOutcome::sent, payload, attempt);
  }

  void rejected(const Payload& payload, int attempt, const std::string& error) {
    count([](DeliveryStats& s) {
      ++s.failed;
      ++s.dropped_rejected;
    });
    notify(DeliveryOutcome::failed, payload, attempt, error);
    notify(DeliveryOutcome::dropped_rejected, payload, attempt, error);
  }

  // Backs off; true when the payload is to be tried again.
  bool failed(const Payload& payload, int attempt, const std::string& error) {
    backoff =
        backoff.count() == 0 ? options.initial_backoff : std::min(backoff * 2, options.max_backoff);
    next_attempt = SteadyClock::now() + backoff;
    const bool give_up = attempt >= options.max_attempts;
    count([give_up](DeliveryStats& s) {
      ++s.failed;
      if (give_up) ++s.dropped_retries_exhausted;
    });
    notify(DeliveryOutcome::failed, payload, attempt, error, backoff);
    if (give_up) notify(DeliveryOutcome::dropped_retries_exhausted, payload, attempt, error);
    return !give_up;
  }

  // Tries `payload` until it is sent or dropped; false when stopping.
  bool deliver(const Payload& payload) {
    for (int attempt = 1;; ++attempt) {
      if (!wait_until(next_attempt)) return false;
      auto result =
          client.request("POST", options.url, payload.body, payload.content_type, options.headers);
      if (!result.ok() && result.error().kind == ErrorKind::cancelled) return false;
      if (result.ok() && result.value().status / 100 == 2) {
        sent(payload, attempt);
        return true;
      }
      const std::string error = result.ok() ? status_error(result.value()) : result.error().message;
      if (result.ok() && !retryable_status(result.value().status)) {
        rejected(payload, attempt, error);
        return true;
      }
      if (!failed(payload, attempt, error)) return true;
    }
  }

  void run() {
    while (std::optional<Payload> payload = take_next()) {
      if (!deliver(*payload)) return;
      std::lock_guard lock(mutex);
      stats.in_flight = false;
      if (queue.empty()) idle.notify_all();
    }
  }
};

Delivery::Delivery(DeliveryOptions options) {
  require_positive(static_cast<std::int64_t>(options.queue_capacity), "queue_capacity");
  require_positive(options.max_attempts, "max_attempts");
  require_positive(options.initial_backoff.count(), "initial_backoff");
  require_positive(options.max_backoff.count(), "max_backoff");
  require_positive(options.deadlines.connect.count(), "connect deadline");
  require_positive(options.deadlines.io.count(), "io deadline");
  impl_ = std::make_unique<Impl>(std::move(options));
  impl_->worker = std::thread([impl = impl_.get()] { impl->run(); });
}

Delivery::~Delivery() {
  {
    std::lock_guard lock(impl_->mutex);
    impl_->stopping = true;
  }
  impl_->wake.notify_all();
  impl_->client.cancel();
  impl_->worker.join();
}

void Delivery::post(Payload payload) {
  std::optional<Payload> dropped;
  {
    std::lock_guard lock(impl_->mutex);
    if (impl_->stopping) return;
    if (impl_->queue.size() >= impl_->options.queue_capacity) {
      dropped = std::move(impl_->queue.front());
      impl_->queue.pop_front();
      ++impl_->stats.dropped_queue_full;
    }
    impl_->queue.push_back(std::move(payload));
    impl_->stats.queued = impl_->queue.size();
  }
  impl_->wake.notify_all();
  if (dropped) {
    impl_->notify(DeliveryOutcome::dropped_queue_full, *dropped, 0,
                  "queue full (" + std::to_string(impl_->options.queue_capacity) + " batches)");
  }
}

bool Delivery::flush(std::chrono::milliseconds timeout) {
  std::unique_lock lock(impl_->mutex);
  return impl_->idle.wait_for(lock, timeout,
                              [this] { return impl_->queue.empty() && !impl_->stats.in_flight; });
}

DeliveryStats Delivery::stats() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->stats;
}

const std::string& Delivery::name() const {
  return impl_->options.name;
}

const Url& Delivery::url() const {
  return impl_->options.url;
}

}  // namespace ringwatch::http
