#pragma once
// Where alert transitions go. One small interface, implemented by the HTTP
// sinks in http_sink.h (Alertmanager v2, generic JSON webhook) and by test
// doubles.
//
// Contract: send() hands a batch over and returns; it never waits for the
// network, so probing never waits for a sink. Delivery, retries and their
// failures happen behind it and are reported to a DeliveryObserver (to log and
// count them).
//
// Thread-safety: implementations must accept send() from any thread; the
// HTTP sinks do. A DeliveryObserver is called from the sink's delivery thread
// and, for queue drops, from the thread calling send(): it must be thread-safe.

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

#include "alerts/alert_state.h"

namespace ringwatch::alerts {

class Sink {
 public:
  virtual ~Sink() = default;
  // Hands over one batch of transitions (usually one round's). An empty batch
  // is ignored.
  virtual void send(const std::vector<AlertEvent>& events) = 0;
};

enum class DeliveryOutcome {
  sent,                       // the receiver answered 2xx
  failed,                     // one attempt failed (unreachable, timeout, 5xx, ...)
  dropped_queue_full,         // a waiting batch was dropped for a newer one
  dropped_retries_exhausted,  // a batch failed max_attempts times
  dropped_rejected,           // the receiver answered 4xx: retrying cannot help
};
// "sent", "failed", "dropped_queue_full", "dropped_retries_exhausted", "dropped_rejected"
const char* to_string(DeliveryOutcome outcome);

struct DeliveryEvent {
  std::string sink{};  // the sink's name
  DeliveryOutcome outcome = DeliveryOutcome::sent;
  std::size_t alerts = 0;                 // alerts in the batch
  int attempt = 0;                        // 1 for the first attempt; 0 for queue drops
  std::string error{};                    // why it failed; empty when sent
  std::chrono::milliseconds retry_in{0};  // failed: the backoff before the next attempt
};

class DeliveryObserver {
 public:
  virtual ~DeliveryObserver() = default;
  virtual void on_delivery(const DeliveryEvent& event) = 0;
};

}  // namespace ringwatch::alerts
