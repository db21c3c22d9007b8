#pragma once
// Alert state: turns one Report per round per cluster into alert transitions
// that sinks deliver (Alertmanager, webhooks). Pure: no I/O, the clock is
// injected (every call takes `now`).
//
// Identity. An alert is one Finding identity: its label set
//   alertname  "Ringwatch" + the finding code in UpperCamelCase
//              (ring_divergence -> RingwatchRingDivergence, dns_outside_range
//              -> RingwatchDnsOutsideRange); one alertname per code, because
//              each code is a distinct fault with its own runbook
//   cluster    Report::cluster
//   check      Finding::check ("canary", "connections", "dns")
//   proxy, backend, node, vantage   the Subject fields that are set
//   severity   "warning" | "critical" | "unknown"
// That is the (cluster, check, subject), refined by the code; it is
// exactly the label set, which is also Alertmanager's identity, so what this
// tracker deduplicates is what Alertmanager deduplicates. Two findings with the
// same label set in one round are one alert (the first one's annotations win).
// Findings of severity info never alert.
//
// Annotations: `summary` (the finding's summary) and `diagnosis` (the summary
// of the first Report::diagnoses entry whose finding_indexes include the
// finding; absent when none does). They follow the latest round.
//
// Rounds. For one alert, a round of its cluster is
//   failing  the report has a finding with the alert's label set;
//   passing  it has none, and the alert's check ran with a decided status
//            (OK, WARNING or CRITICAL);
//   held     it has none, but the alert's check did not run in this report or
//            ended UNKNOWN: the round could not see, so it neither confirms nor
//            clears the alert (nothing is counted; a firing alert is still
//            re-sent when due).
//
// State machine (per alert; F = fire_after_rounds, R = resolve_after_rounds):
//
//   (none) --failing--> pending(failing=1)           nothing sent
//   pending --failing--> pending(failing+1)          nothing sent
//   pending(failing reaches F) --> firing            event `fired`
//   pending --passing--> (none)                      nothing sent: never paged
//   firing --failing--> firing(passing=0)            event `resent` if due
//   firing --passing--> firing(passing+1)            event `resent` if due
//   firing(passing reaches R) --> resolved -> (none) event `resolved`
//   any --held--> unchanged                          firing: `resent` if due
//
// With F = 1 the first failing round fires at once. A firing alert that fails
// again during its passing streak starts the streak over: a fault that comes
// and goes faster than R rounds stays one firing alert (no flapping pages).
// After `resolved` the alert is forgotten; a new failure starts a new episode
// (new pending, new starts_at).
//
// Times (what the events carry):
//   starts_at  the first failing round of the episode (when it became pending);
//   ends_at    firing: now + validity, where validity = 4 x max(resend_interval,
//              the gap between this cluster's last two rounds); Alertmanager
//              resolves the alert by itself at ends_at if ringwatch stops
//              re-sending (daemon gone), and a lost resolve heals the same way;
//              resolved: the time of the resolving round.
//   `resent` is due when resend_interval has passed since the alert was last
//   sent (fired or resent); resend_interval must stay below Alertmanager's
//   resolve_timeout and a sink's tolerance; the default is 60 s.
//
// Thread-safety: AlertTracker is thread-safe; every member function locks one
// internal mutex, so rounds of different clusters may report from different
// threads. Alert, AlertEvent and the free functions are plain values.

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "lib/report/report.h"

namespace ringwatch::alerts {

// Alerts carry wall-clock times (Alertmanager's startsAt and endsAt).
using Clock = std::chrono::system_clock;
using TimePoint = Clock::time_point;
using LabelSet = std::map<std::string, std::string>;

enum class AlertState { pending, firing, resolved };
const char* to_string(AlertState state);  // "pending", "firing", "resolved"

struct Alert {
  LabelSet labels{};       // the identity, see above
  LabelSet annotations{};  // "summary", "diagnosis"
  AlertState state = AlertState::pending;
  TimePoint starts_at{};
  TimePoint ends_at{};          // pending: unset (epoch)
  std::string generator_url{};  // empty when TrackerOptions::generator_url is empty

  const std::string& label(const std::string& name) const;  // "" when absent
  // 16 hex digits, stable for a label set (FNV-1a 64 over the sorted labels).
  std::string fingerprint() const;
};

enum class EventKind { fired, resent, resolved };
const char* to_string(EventKind kind);  // "fired", "resent", "resolved"

struct AlertEvent {
  EventKind kind = EventKind::fired;
  Alert alert{};
};

struct TrackerOptions {
  int fire_after_rounds = 2;     // F: consecutive failing rounds before firing, >= 1
  int resolve_after_rounds = 2;  // R: consecutive passing rounds before resolving, >= 1
  std::chrono::seconds resend_interval{60};
  // Base URL of the daemon, e.g. "http://ringwatch.example:9188"; alerts then
  // carry generatorURL "<base>/v1/clusters/<cluster>". Empty: none.
  std::string generator_url{};
};

// "ring_divergence" -> "RingwatchRingDivergence".
std::string alertname_for(std::string_view finding_code);
// The label set a finding alerts with (also for info findings, which never alert).
LabelSet labels_for(const std::string& cluster, const report::Finding& finding);

class AlertTracker {
 public:
  // Throws std::invalid_argument when a round count is below 1 or
  // resend_interval is not positive.
  explicit AlertTracker(TrackerOptions options = {});

  // Feeds one round of one cluster; returns what changed, ordered by label set
  // (resolved, fired and resent events alike). Rounds of one cluster must come
  // in time order.
  std::vector<AlertEvent> observe(const report::Report& report, TimePoint now);

  // `resent` events for firing alerts of clusters whose re-send is due
  // without a round (a cluster whose rounds are being skipped). Optional: the
  // daemon may call it from a timer every resend_interval.
  std::vector<AlertEvent> resends_due(TimePoint now);

  // The cluster left the fleet: its firing alerts become `resolved` events
  // (returned, to be sent), pending ones are dropped silently.
  std::vector<AlertEvent> forget_cluster(const std::string& cluster, TimePoint now);

  // Pending and firing alerts; of one cluster, or of all when `cluster` is empty.
  std::vector<Alert> active(const std::string& cluster = {}) const;

  const TrackerOptions& options() const { return options_; }

 private:
  struct Tracked {
    Alert alert;
    int failing = 0;  // consecutive failing rounds (pending)
    int passing = 0;  // consecutive passing rounds (firing)
    TimePoint last_sent{};
  };
  struct ClusterAlerts {
    std::map<LabelSet, Tracked> alerts;
    bool has_round = false;
    TimePoint last_round{};
    std::chrono::nanoseconds round_gap{0};  // between the last two rounds
  };
  void send_if_due(Tracked& tracked, const ClusterAlerts& cluster, TimePoint now,
                   std::vector<AlertEvent>& events) const;
  std::chrono::nanoseconds validity(const ClusterAlerts& cluster) const;

  const TrackerOptions options_;
  mutable std::mutex mutex_;
  std::map<std::string, ClusterAlerts> clusters_;
};

}  // namespace ringwatch::alerts
