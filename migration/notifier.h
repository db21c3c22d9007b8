#pragma once
// Migration notifications: the webhook and Alertmanager.
//
// Webhook (Notifications::webhook_url): every event is POSTed as one JSON
// object, in order:
//   {"schema": "ringwatch.migration/v1", "event": "started|paused|resumed|
//    finished|failed|aborted|hook", "cluster", "step", "reason", "detail",
//    "diagnosis", "hook", "outcome", "at"}
//   (empty strings omitted; "at" is RFC 3339 UTC, ms). A `hook` event is one
//   run of a hook (hooks.h): "hook" names it ("on_pause", ...), "reason" is
//   the hook's ${reason} (why it ran), "outcome" how it ended ("succeeded",
//   "failed", "timed_out", "could_not_start", "cancelled") and "detail" says
//   so for people. Only hook events carry "hook" and "outcome".
// Alertmanager (Notifications::alertmanager_url): a paused cluster is one
// firing alert, alertname RingwatchMigrationPaused, labels {cluster, reason,
// severity "critical"} (the step is an annotation, so the alert is one per
// paused episode, not one per step), annotations {summary: the detail,
// diagnosis, step}. It is fired on `paused`, re-sent every resend_interval
// while the cluster stays paused, and resolved on `resumed`, `finished` or
// `aborted`. `failed` (an action that failed after its retries) is always
// followed by `paused` and does not alert by itself, and neither does `hook`
// (a failing hook changes nothing in the migration: the webhook and the log
// report it). Alertmanager deduplicates by labels, so a re-fire after a crash
// and restart is harmless.
//
// notify() never waits for the network. The webhook's events go to an
// http::Delivery (lib/http/delivery.h) and the alerts to an alerts::Sink (an
// Alertmanager HttpSink on the same delivery): each destination has a bounded
// queue (the oldest entry is dropped and counted when full) and one thread
// that delivers in order, with deadlines and a few retries; a 4xx other than
// 408 and 429 is not retried. Delivery failures are logged to the `log`
// stream given at construction and counted in stats(). A second thread
// re-sends the alerts of paused clusters.
//
// Thread-safety: notify(), flush() and stats() may be called from any thread.

#include <chrono>
#include <cstdint>
#include <memory>
#include <ostream>
#include <string>

#include "migration/plan.h"

namespace ringwatch::alerts {
class Sink;
}

namespace ringwatch::migration {

enum class EventKind { started, paused, resumed, finished, failed, aborted, hook };
const char* to_string(EventKind kind);  // "started", ...

struct Notification {
  EventKind event = EventKind::started;
  std::string cluster;
  std::string step;  // the step it concerns, if any
  // paused: "failed_check", "failed_action", "operator", "blackout", "interrupted"
  std::string reason;
  std::string detail;     // one line for people
  std::string diagnosis;  // the report's diagnosis, for failed checks
  std::string hook;       // hook events: "on_failure", "on_pause", "on_abort", "on_finish"
  std::string outcome;    // hook events: how the hook's run ended
  std::chrono::system_clock::time_point at{};
};

// Of the HTTP destinations, as their deliveries reported.
struct NotifierStats {
  std::uint64_t delivered = 0;  // requests answered 2xx
  std::uint64_t failed = 0;     // attempts that failed
  std::uint64_t dropped = 0;    // requests given up on (queue full, retries exhausted, rejected)
};

class Notifier {
 public:
  // Throws std::invalid_argument for a URL that is not http://host[:port][/path].
  Notifier(const Notifications& destinations, std::ostream& log,
           std::chrono::milliseconds resend_interval = std::chrono::seconds(60));
  // The alerts go to `alertmanager` (a test double, say) and nothing to a
  // webhook; its deliveries are not logged or counted here.
  Notifier(std::ostream& log, std::shared_ptr<alerts::Sink> alertmanager,
           std::chrono::milliseconds resend_interval = std::chrono::seconds(60));
  ~Notifier();  // stops delivery; events still queued are abandoned (flush first)
  Notifier(const Notifier&) = delete;
  Notifier& operator=(const Notifier&) = delete;

  void notify(const Notification& notification);
  // Waits until everything notified so far was delivered or dropped, at most `timeout`.
  bool flush(std::chrono::milliseconds timeout);
  NotifierStats stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The webhook payload, exactly as POSTed (pure).
std::string encode_webhook_event(const Notification& notification);

}  // namespace ringwatch::migration
