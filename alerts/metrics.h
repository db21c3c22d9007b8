#pragma once
// Prometheus metrics of the probe rounds, on a prometheus-cpp core Registry.
// The daemon serves serialize() at GET /metrics (prometheus-cpp pull is not
// used). The names are part of ringwatch's interface (alerts/README.md):
//
//   ringwatch_check_status{cluster,check}            gauge 0 ok, 1 warning, 2 critical, 3 unknown
//   ringwatch_canary_reads_total{cluster,result}     counter; result ok|miss|stale|foreign|error,
//                                                    from figures reads_ok, reads_miss, ...
//   ringwatch_canary_consistency_ratio{cluster}      gauge, figure consistency_ratio; absent when
//                                                    the round read nothing (figure reads == 0)
//   ringwatch_proxy_backends_routed{cluster,proxy}   gauge, figure backends_routed/<proxy>
//   ringwatch_canary_proxy_verdict{cluster,proxy}    gauge 0 agrees, 1 diverges, 2 unreachable,
//                                                    figure proxy_verdict/<proxy>; kept when absent
//                                                    (a round that read through other proxies)
//   ringwatch_canary_proxy_verdict_timestamp_seconds{cluster,proxy}
//                                                    gauge, started_at of that verdict's round
//   ringwatch_proxy_backends_connected{cluster,proxy}
//                                                    gauge, figure proxy_backends_connected/<proxy>
//   ringwatch_backends_configured{cluster}           gauge, backends in the spec
//   ringwatch_proxies_configured{cluster}            gauge, proxies in the spec
//   ringwatch_dns_answer_expected{cluster,node,vantage}
//                                                    gauge 1/0, figure
//                                                    dns_answer_expected/<backend>/<vantage>;
//                                                    node = the backend's dns_name
//   ringwatch_probe_round_duration_seconds{cluster}  histogram, Report::duration_ms
//   ringwatch_probe_rounds_total{cluster,outcome}    counter; outcome ok|warning|critical|unknown
//                                                    (the report's status) or skipped
//   ringwatch_last_round_timestamp_seconds{cluster}  gauge, when the last round started (unix s)
//   ringwatch_config_reloads_total{outcome}          counter; outcome success|failure
//   ringwatch_alert_notifications_total{sink,outcome} counter; outcome sent|failed (per attempt)
//   ringwatch_alert_notifications_dropped_total{sink,reason} counter;
//                                                    reason queue_full|retries_exhausted|rejected
//   ringwatch_build_info{version}                    gauge, always 1
//   process_cpu_seconds_total, process_resident_memory_bytes, process_virtual_memory_bytes,
//   process_start_time_seconds, process_open_fds, process_max_fds   (from /proc/self)
//
// Per-subject series. Only proxies, backends and vantage points of the spec get
// series, so cardinality is bounded by the fleet: observe() removes series of
// proxies and (node, vantage) pairs no longer in the spec, and forget_cluster()
// removes every series of a cluster. Apart from the proxy verdicts, a
// per-subject figure absent from a report in which its check ran (canary: routed; connections:
// connected; dns: DNS answers) removes the series (nothing is known now; a stale value would
// mislead); when its check did not run in that report, the series keeps its
// last value. check_status is set for the checks in the report and kept for
// the others.
//
// Thread-safety: every member function is thread-safe (one internal mutex; the
// prometheus-cpp metrics are themselves thread-safe). The delivery observer
// shares the state, so it may outlive this object.

#include <memory>
#include <string>

#include "alerts/sink.h"
#include "lib/report/report.h"
#include "lib/spec/cluster_spec.h"

namespace prometheus {
class Registry;
}

namespace ringwatch::alerts {

class Metrics {
 public:
  explicit Metrics(const std::string& version);
  ~Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // One finished round of `spec`'s cluster (report.cluster must equal spec.name).
  void observe(const spec::ClusterSpec& spec, const report::Report& report);
  // A round that was due but not run because the previous one overran.
  void round_skipped(const std::string& cluster);
  void config_reload(bool ok);
  // The cluster left the fleet: every series labelled with it goes.
  void forget_cluster(const std::string& cluster);

  // Counts deliveries by DeliveryEvent::sink; hand it to the sink named `sink`
  // (whose series it creates at 0, so rate() works from the start).
  std::shared_ptr<DeliveryObserver> delivery_observer(const std::string& sink);

  // The Prometheus text exposition format (version 0.0.4) of everything above.
  std::string serialize() const;
  // For the daemon's own families (HTTP requests, ...); serialize() includes them.
  prometheus::Registry& registry();

 private:
  struct State;
  std::shared_ptr<State> state_;
};

}  // namespace ringwatch::alerts
