#pragma once
// ringwatchd's HTTP API (routing and payloads; the transport is
// http_server.h). Endpoints (README.md, "ringwatchd"):
//
//   GET  /healthz                     200 "ok\n" (text/plain)
//   GET  /metrics                     Prometheus text format 0.0.4
//   GET  /v1/clusters                 200 [{"name", "status", "age_seconds", "rounds",
//                                     "skipped", "scheduled", "report"}], in name order;
//                                     rounds = scheduled rounds completed, skipped =
//                                     ticks skipped (overrun), scheduled = ticks; before a
//                                     cluster's first round: status "PENDING",
//                                     age_seconds and report null
//   GET  /v1/clusters/{name}          200 the latest report (render_json: schema
//                                     ringwatch.report/v1, exactly `ringwatch probe
//                                     --format json`), its age in the header
//                                     X-Report-Age-Seconds; 503 before the first round
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
// Scheduler); the responder it is given may be called later from a worker.

#include <memory>

#include "daemon/http_server.h"

namespace ringwatch::alerts {
class Metrics;
}

namespace ringwatch::daemon {

class Scheduler;

class Api {
 public:
  Api(Scheduler& scheduler, std::shared_ptr<alerts::Metrics> metrics);
  void handle(const HttpRequest& request, Responder respond);

 private:
  Scheduler& scheduler_;
  std::shared_ptr<alerts::Metrics> metrics_;
};

}  // namespace ringwatch::daemon
