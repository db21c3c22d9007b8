#pragma once
// The HTTP alert sinks: Alertmanager v2 and a generic JSON webhook.
//
// Delivery is http::Delivery's (lib/http/delivery.h): send() encodes the
// batch and hands it to a bounded queue, one background thread per sink POSTs
// the batches in order; 2xx is sent, a 4xx other than 408 and 429 is rejected
// and dropped at once, anything else is retried with a doubling backoff until
// max_attempts, and a full queue drops its oldest batch. Every outcome is
// counted in stats() and reported to the observer (to log and to feed
// ringwatch_alert_notifications_total). Losing a batch is safe for
// Alertmanager: firing alerts are re-sent every resend interval and carry an
// endsAt that expires them if ringwatch goes quiet, so a lost resolve heals
// itself at that endsAt.
//
// Formats:
//   Alertmanager v2: POST <url>/api/v2/alerts with a JSON array of
//     {"labels", "annotations", "startsAt", "endsAt", "generatorURL"} (the
//     last omitted when empty); every event (fired, resent, resolved) is sent.
//   Webhook: POST <url> with
//     {"schema": "ringwatch.alerts/v1", "alerts": [{"event": "fired|resent|resolved",
//      "status": "firing|resolved", "fingerprint", "labels", "annotations",
//      "startsAt", "endsAt", "generatorURL"}]};
//     `resent` events only with include_resends (a chat hook wants fired and
//     resolved; a ticketing hook may want the heartbeat).
//   Times are RFC 3339 UTC with milliseconds, "2026-11-24T10:23:39.123Z".
//
// Thread-safety: send(), flush(), stats() and name() may be called from any
// thread. The destructor stops the delivery thread: the attempt in flight is
// cancelled and batches still queued are abandoned (call flush() first to
// deliver them); it returns within a few milliseconds.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "alerts/alert_state.h"
#include "alerts/sink.h"
#include "lib/http/client.h"
#include "lib/http/delivery.h"
#include "lib/util/deadlines.h"

namespace ringwatch::alerts {

struct HttpSinkOptions {
  std::string name{};  // names the sink in stats, metrics and logs: "alertmanager", "webhook"
  // Alertmanager: its base URL, e.g. http://127.0.0.1:9093 (a path prefix is
  // kept: http://h:9093/am -> /am/api/v2/alerts). Webhook: the URL it POSTs to.
  std::string url{};
  http::ClientTls tls{};                                // how an https:// URL is verified
  http::Headers headers{};                              // e.g. Authorization; never logged
  util::Deadlines deadlines = http::kDefaultDeadlines;  // connect 1 s, I/O 2 s
  std::size_t queue_capacity = 64;  // waiting batches, not counting the one in flight
  std::chrono::milliseconds initial_backoff{500};
  std::chrono::milliseconds max_backoff{30000};
  int max_attempts = 5;
  bool include_resends = false;  // webhook only; Alertmanager always gets them
  std::string user_agent = "ringwatch";
  std::shared_ptr<DeliveryObserver> observer{};  // optional
};

enum class SinkFormat { alertmanager_v2, webhook };

using SinkStats = http::DeliveryStats;  // counts batches

class HttpSink final : public Sink {
 public:
  // Throws std::invalid_argument naming the sink for a bad URL or option:
  // "sink alertmanager: url: ftp://am:9093: expected http[s]://host[:port][/path]".
  HttpSink(SinkFormat format, HttpSinkOptions options);
  ~HttpSink() override;
  HttpSink(const HttpSink&) = delete;
  HttpSink& operator=(const HttpSink&) = delete;

  void send(const std::vector<AlertEvent>& events) override;
  bool flush(std::chrono::milliseconds timeout) override;
  SinkStats stats() const;
  const std::string& name() const;
  const http::Url& url() const;  // where it POSTs

 private:
  SinkFormat format_;
  bool include_resends_;
  std::unique_ptr<http::Delivery> delivery_;
};

std::unique_ptr<HttpSink> make_alertmanager_sink(HttpSinkOptions options);
std::unique_ptr<HttpSink> make_webhook_sink(HttpSinkOptions options);

// The payloads, exactly as POSTed (pure).
std::string encode_alertmanager_v2(const std::vector<AlertEvent>& events);
std::string encode_webhook(const std::vector<AlertEvent>& events);

}  // namespace ringwatch::alerts
