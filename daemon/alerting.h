#pragma once
// The daemon's alerting: every finished scheduled round goes through one
// alerts::AlertTracker and its transitions to every configured sink
// (Alertmanager v2, webhook). Sinks queue and deliver in the background, so
// observe() never waits for the network. Delivery outcomes are logged
// (event=alert_delivery) and counted in ringwatch_alert_notifications_total.
//
// reconfigure() (SIGHUP) replaces the sinks when their URLs change and the
// tracker when the round counts change (pending and firing alerts are then
// re-learnt from the next rounds; firing ones at Alertmanager expire at their
// endsAt or are re-sent).
//
// The sinks are alerts::Sink, made by a SinkFactory: HTTP sinks by default, a
// test double in tests.
//
// Thread-safety: every member function is thread-safe (one mutex).

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "alerts/http_sink.h"
#include "alerts/sink.h"
#include "daemon/fleet.h"
#include "lib/report/report.h"

namespace ringwatch::alerts {
class AlertTracker;
class Metrics;
}  // namespace ringwatch::alerts

namespace ringwatch::daemon {

class Logger;

// Makes the sink of one destination; throws std::invalid_argument for a bad URL.
using SinkFactory =
    std::function<std::shared_ptr<alerts::Sink>(alerts::SinkFormat, alerts::HttpSinkOptions)>;
// The HTTP sinks of alerts/http_sink.h.
std::shared_ptr<alerts::Sink> make_http_sink(alerts::SinkFormat format,
                                             alerts::HttpSinkOptions options);

class Alerting {
 public:
  // Throws std::invalid_argument for a bad sink URL.
  Alerting(const AlertsConfig& config, std::shared_ptr<Logger> log,
           std::shared_ptr<alerts::Metrics> metrics, SinkFactory make_sink = make_http_sink);
  ~Alerting();
  Alerting(const Alerting&) = delete;
  Alerting& operator=(const Alerting&) = delete;

  // Throws std::invalid_argument for a bad sink URL (and changes nothing).
  void reconfigure(const AlertsConfig& config);
  void observe(const report::Report& report);
  void forget_cluster(const std::string& cluster);
  // Re-sends firing alerts of clusters whose rounds are being skipped.
  void resend_due();
  // Waits up to `timeout` for the sinks to deliver what they hold.
  void flush(std::chrono::milliseconds timeout);

 private:
  std::shared_ptr<Logger> log_;
  std::shared_ptr<alerts::Metrics> metrics_;
  SinkFactory make_sink_;
  mutable std::mutex mutex_;
  AlertsConfig config_;
  std::unique_ptr<alerts::AlertTracker> tracker_;
  std::vector<std::shared_ptr<alerts::Sink>> sinks_;
};

}  // namespace ringwatch::daemon
