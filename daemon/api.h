#pragma once
// ringwatchd's HTTP API (routing and payloads; the transport is
// http_server.h). Endpoints (daemon/README.md, "HTTP API"):
//
//   GET  /                            the status page: the fleet table (HTML, complete
//                                     without JavaScript; status_page.h)
//   GET  /clusters/{name}             one cluster's page (drawn by /static/ringwatch.js)
//   GET  /static/{file}               the page's stylesheet and script (compiled in)
//   GET  /healthz, /-/healthy         200 "ok\n" (text/plain)
//   GET  /-/ready                     200 once every scheduled cluster has finished a
//                                     round (or ApiOptions::ready_by passed), else 503
//   POST /-/reload                    reloads the configuration like SIGHUP: 200, or 500
//                                     with the error (the old configuration stays)
//   GET  /metrics                     Prometheus text format 0.0.4
//   GET  /probe?cluster=NAME[&checks=canary,dns]
//                                     one round now (shared with concurrent probes of the
//                                     same checks), Prometheus text (probe_metrics.h);
//                                     503 with Retry-After when kMaxProbeWaiters wait
//   GET  /v1/clusters                 200 [{"name", "status", "age_seconds", "rounds",
//                                     "skipped", "scheduled", "report"}], in name order;
//                                     rounds = published rounds (scheduled, and probes
//                                     of the cluster's own checks), skipped =
//                                     ticks skipped (overrun), scheduled = ticks; before a
//                                     cluster's first round: status "PENDING",
//                                     age_seconds and report null
//   GET  /v1/clusters/{name}          200 the latest report (render_json: schema
//                                     ringwatch.report/v1, exactly `ringwatch probe
//                                     --format json`), its age in the header
//                                     X-Report-Age-Seconds; 503 before the first round
//   GET  /v1/clusters/{name}/history  200 {"cluster", "capacity", "rounds": [{"started_at",
//                                     "status", "duration_ms", "consistency_ratio",
//                                     "findings"}]}, oldest first, at most kHistoryRounds
//   POST /v1/clusters/{name}/preflight[?checks=canary,dns]
//                                     runs a fresh round now; 200 with the report when
//                                     its status is OK, 409 with the report otherwise
//                                     (header X-Ringwatch-Status: OK|WARNING|...);
//                                     503 when the daemon stops first
//
// Errors are {"error": "..."}: 400 bad query or unknown check, 404 unknown path
// or cluster, 405 wrong method (with Allow), 413/431 oversized request.
//
// Thread-safety: handle() runs on the io_context's thread (it reads the
// Scheduler and calls ApiOptions::reload there); the responder it is given
// may be called later from a worker.

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "daemon/http_server.h"

namespace ringwatch::alerts {
class Metrics;
}

namespace ringwatch::daemon {

class Scheduler;

struct ApiOptions {
  // POST /-/reload: reloads the configuration; the error, or nullopt on success.
  std::function<std::optional<std::string>()> reload{};
  // /-/ready is 200 from this time on even if a cluster has not finished a round.
  std::chrono::steady_clock::time_point ready_by{};
};

class Api {
 public:
  Api(Scheduler& scheduler, std::shared_ptr<alerts::Metrics> metrics, ApiOptions options = {});
  void handle(const HttpRequest& request, Responder respond);

 private:
  void cluster_resource(const HttpRequest& request, const std::string& path,
                        const std::string& query, Responder respond);
  void probe(const std::string& query, Responder respond);

  Scheduler& scheduler_;
  std::shared_ptr<alerts::Metrics> metrics_;
  ApiOptions options_;
};

}  // namespace ringwatch::daemon
