#pragma once
// Background delivery of POST bodies to one HTTP destination: the bounded
// queue, worker thread, backoff and drop counting under the alert sinks and
// the migration notifier. It knows nothing about what it carries.
//
// Queue and order. post() touches no socket: it appends the payload to a
// bounded queue and returns. One thread per Delivery POSTs the payloads to
// DeliveryOptions::url in the order they were posted, one at a time, with
// http::Client's connect and I/O deadlines. When the queue already holds
// queue_capacity payloads, the oldest waiting one is dropped for the new one
// (the payload in flight is not in the queue).
//
// Outcome of one attempt:
//   - 2xx: sent; the backoff resets.
//   - 4xx other than 408 and 429: rejected, dropped at once (retrying the same
//     payload cannot help; a bug or a misconfigured URL, so it is counted).
//   - anything else (refused, timeout, 5xx, ...): failed; the payload is tried
//     again after a backoff that starts at initial_backoff and doubles up to
//     max_backoff, until max_attempts; then it is dropped. The backoff belongs
//     to the destination, not to the payload: after a drop the next payload
//     waits it out too, and the first success resets it.
// Every outcome is counted in stats() and reported to the observer (to log it
// and to feed metrics): a rejection is reported as `failed` then
// `dropped_rejected`, a last failed attempt as `failed` then
// `dropped_retries_exhausted`.
//
// Destination. One Delivery serves one URL: ordering and backoff are a
// destination's, so a receiver that is down never delays another one.
//
// Thread-safety: post(), flush(), stats(), name() and url() may be called from
// any thread. The observer is called from the delivery thread and, for queue
// drops, from the thread calling post(): it must be thread-safe. The
// destructor stops the delivery thread: the attempt in flight is cancelled and
// payloads still queued are abandoned (call flush() first to deliver them); it
// returns within a few milliseconds.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "lib/http/client.h"
#include "lib/util/deadlines.h"

namespace ringwatch::http {

struct Payload {
  std::string body{};
  std::string content_type = "application/json";
  std::size_t items = 1;      // what the body carries (alerts in a batch, ...), for observers
  std::string description{};  // what it is, for logs: "the paused event of cluster c1"
};

enum class DeliveryOutcome {
  sent,                       // the receiver answered 2xx
  failed,                     // one attempt failed (unreachable, timeout, 5xx, ...)
  dropped_queue_full,         // a waiting payload was dropped for a newer one
  dropped_retries_exhausted,  // a payload failed max_attempts times
  dropped_rejected,           // the receiver answered 4xx: retrying cannot help
};
// "sent", "failed", "dropped_queue_full", "dropped_retries_exhausted", "dropped_rejected"
const char* to_string(DeliveryOutcome outcome);

struct DeliveryEvent {
  std::string sink{};  // DeliveryOptions::name
  DeliveryOutcome outcome = DeliveryOutcome::sent;
  std::size_t items = 0;  // Payload::items
  int attempt = 0;        // 1 for the first attempt; 0 for queue drops
  // Why it failed; empty when sent. "connect to 127.0.0.1:9 refused",
  // "HTTP 503: <the first 200 bytes of the body>", "queue full (64 batches)".
  std::string error{};
  std::chrono::milliseconds retry_in{0};  // failed: the backoff before the next attempt
  std::string description{};              // Payload::description
};

class DeliveryObserver {
 public:
  virtual ~DeliveryObserver() = default;
  virtual void on_delivery(const DeliveryEvent& event) = 0;
};

struct DeliveryOptions {
  std::string name{};  // names the destination in events: "alertmanager", "webhook"
  Url url{};           // where every payload is POSTed (http:// or https://)
  ClientTls tls{};     // how an https:// destination is verified
  // Sent with every POST, e.g. Authorization; never logged nor in events.
  Headers headers{};
  util::Deadlines deadlines = kDefaultDeadlines;
  std::size_t queue_capacity = 64;  // waiting payloads, not counting the one in flight
  std::chrono::milliseconds initial_backoff{500};
  std::chrono::milliseconds max_backoff{30000};
  int max_attempts = 5;
  std::string user_agent = "ringwatch";
  std::shared_ptr<DeliveryObserver> observer{};  // optional
};

struct DeliveryStats {
  std::uint64_t sent = 0;    // payloads delivered
  std::uint64_t failed = 0;  // failed attempts, including rejected ones
  std::uint64_t dropped_queue_full = 0;
  std::uint64_t dropped_retries_exhausted = 0;
  std::uint64_t dropped_rejected = 0;
  std::size_t queued = 0;  // waiting now
  bool in_flight = false;  // a payload is being delivered or waits for its retry
};

class Delivery {
 public:
  // Throws std::invalid_argument for an option that is not positive, naming
  // it: "queue_capacity: expected a positive value, got 0", or a CA file that
  // cannot be loaded ("ca_file: cannot load ...").
  explicit Delivery(DeliveryOptions options);
  ~Delivery();
  Delivery(const Delivery&) = delete;
  Delivery& operator=(const Delivery&) = delete;

  void post(Payload payload);
  // Waits until every payload posted so far was sent or dropped, at most
  // `timeout`; true when the delivery is idle.
  bool flush(std::chrono::milliseconds timeout);
  DeliveryStats stats() const;
  const std::string& name() const;
  const Url& url() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ringwatch::http
