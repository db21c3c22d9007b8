#pragma once
// Where alert transitions go. One small interface, implemented by the HTTP
// sinks in http_sink.h (Alertmanager v2, generic JSON webhook) and by test
// doubles; the daemon's alerting and the migration notifier hold it.
//
// Contract: send() hands a batch over and returns; it never waits for the
// network, so probing never waits for a sink. Delivery, retries and their
// failures happen behind it and are reported to a DeliveryObserver (to log and
// count them); flush() waits for what was handed over to be delivered or
// given up on.
//
// Thread-safety: implementations must accept send() and flush() from any
// thread; the HTTP sinks do. A DeliveryObserver is called from the sink's
// delivery thread and, for queue drops, from the thread calling send(): it
// must be thread-safe.

#include <chrono>
#include <vector>

#include "alerts/alert_state.h"
#include "lib/http/delivery.h"

namespace ringwatch::alerts {

class Sink {
 public:
  virtual ~Sink() = default;
  // Hands over one batch of transitions (usually one round's). An empty batch
  // is ignored.
  virtual void send(const std::vector<AlertEvent>& events) = 0;
  // Waits until every batch handed over so far was delivered or dropped, at
  // most `timeout`; true when nothing is left.
  virtual bool flush(std::chrono::milliseconds timeout) = 0;
};

// A sink's deliveries are http::Delivery's: DeliveryEvent::items counts the
// alerts of the batch and DeliveryEvent::sink is the sink's name.
using http::DeliveryEvent;
using http::DeliveryObserver;
using http::DeliveryOutcome;
using http::to_string;

}  // namespace ringwatch::alerts
