#pragma once
// The answer of GET /probe: one round of one cluster in the Prometheus text
// format (0.0.4), blackbox_exporter style. No `cluster` label: Prometheus
// adds it from the target (the scrape config relabels __param_cluster), so
// the names below are /metrics' names without it, and the same rules and
// dashboards work on either.
//
//   ringwatch_probe_success                         1 when the round is OK, else 0
//   ringwatch_probe_duration_seconds                the round's duration
//   ringwatch_probe_status                          0 ok, 1 warning, 2 critical, 3 unknown
//   ringwatch_probe_findings{severity}              findings by severity (info..unknown)
//   ringwatch_check_status{check}                   per check that ran, 0..3
//   ringwatch_canary_consistency_ratio              when the canary read anything
//   ringwatch_proxy_backends_routed{proxy}          figure backends_routed/<proxy>
//   ringwatch_proxy_backends_connected{proxy}       figure proxy_backends_connected/<proxy>
//   ringwatch_backends_configured, ringwatch_proxies_configured
//   ringwatch_dns_answer_expected{node,vantage}     figure dns_answer_expected/<backend>/<vantage>
//   ringwatch_probe_figure{figure}                  every other figure of the round (no '/')
//
// Pure and thread-safe.

#include <string>

#include "lib/report/report.h"
#include "lib/spec/cluster_spec.h"

namespace ringwatch::daemon {

std::string render_probe_metrics(const spec::ClusterSpec& spec, const report::Report& report);

}  // namespace ringwatch::daemon
