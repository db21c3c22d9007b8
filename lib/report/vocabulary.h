#pragma once
// The names a report is made of: check names, finding codes and figure names.
// The probes write them, the diagnosis, the alert metrics and the migration
// checks read them, and JSON consumers, alert rules and dashboards depend on
// them, so each is spelled once, here. They are stable: renaming one is a
// breaking change of the report schema (ringwatch.report/v1) and of the
// metrics. README.md documents what each means.
//
// Constants only; thread-safe.

#include <array>
#include <string>
#include <string_view>

namespace ringwatch::report {

// Check names (CheckResult::name, Finding::check), in no particular order:
// the order a round runs them is the probe registry's.
namespace checks {
inline constexpr char kCanary[] = "canary";
inline constexpr char kConnections[] = "connections";
inline constexpr char kDns[] = "dns";
// Every check name, for parsers that cannot see the probe registry (a
// migration plan); the registry's table lists exactly these (its test says so).
inline constexpr std::array<std::string_view, 3> kAll = {kCanary, kConnections, kDns};
}  // namespace checks

// Finding codes (Finding::code), by the check that reports them.
namespace codes {
// canary
inline constexpr char kProxyUnreachable[] = "proxy_unreachable";
inline constexpr char kBackendUnreachable[] = "backend_unreachable";
inline constexpr char kBackendTimeout[] = "backend_timeout";
inline constexpr char kRingDivergence[] = "ring_divergence";
inline constexpr char kRingDisagreement[] = "ring_disagreement";
inline constexpr char kProxyBackendErrors[] = "proxy_backend_errors";
inline constexpr char kBackendNotRouted[] = "backend_not_routed";
inline constexpr char kInconsistentReads[] = "inconsistent_reads";
inline constexpr char kForeignValues[] = "foreign_values";
inline constexpr char kTransientDisagreement[] = "transient_disagreement";
inline constexpr char kCoverageShort[] = "coverage_short";
inline constexpr char kRoutedOutsideSpec[] = "routed_outside_spec";
// connections
inline constexpr char kProxyStatsUnreadable[] = "proxy_stats_unreadable";
inline constexpr char kStaleStats[] = "stale_stats";
inline constexpr char kProxyConfigDrift[] = "proxy_config_drift";
inline constexpr char kBackendStatsUnreadable[] = "backend_stats_unreadable";
inline constexpr char kUnknownPeer[] = "unknown_peer";
inline constexpr char kProxyMissingBackend[] = "proxy_missing_backend";
inline constexpr char kBackendMissingPeer[] = "backend_missing_peer";
inline constexpr char kBackendIdle[] = "backend_idle";
inline constexpr char kProxyBackendSetsDiffer[] = "proxy_backend_sets_differ";
inline constexpr char kConnectionMatrix[] = "connection_matrix";
// dns
inline constexpr char kDnsUnknownVantage[] = "dns_unknown_vantage";
inline constexpr char kDnsNoAnswer[] = "dns_no_answer";
inline constexpr char kDnsOutsideRange[] = "dns_outside_range";
inline constexpr char kDnsUnexpectedAddress[] = "dns_unexpected_address";
inline constexpr char kDnsTimeout[] = "dns_timeout";
inline constexpr char kDnsUnreachable[] = "dns_unreachable";
inline constexpr char kDnsDisagreement[] = "dns_disagreement";
inline constexpr char kDnsNotApplicable[] = "dns_not_applicable";
}  // namespace codes

// Figure names (Report::figures). A figure about one proxy, backend or
// (backend, vantage point) carries their names after a '/', which never
// occurs in a spec name.
namespace figures {
// canary
inline constexpr char kKeys[] = "keys";
inline constexpr char kWrites[] = "writes";
inline constexpr char kReads[] = "reads";
inline constexpr char kLocates[] = "locates";
inline constexpr char kOperations[] = "operations";
inline constexpr char kReadsOk[] = "reads_ok";
inline constexpr char kReadsMiss[] = "reads_miss";
inline constexpr char kReadsStale[] = "reads_stale";
inline constexpr char kReadsForeign[] = "reads_foreign";
inline constexpr char kReadsError[] = "reads_error";
inline constexpr char kInconsistentReads[] = "inconsistent_reads";
inline constexpr char kConsistencyRatio[] = "consistency_ratio";
inline constexpr char kWriteMs[] = "write_ms";
inline constexpr char kReadMs[] = "read_ms";
inline constexpr char kLocateMs[] = "locate_ms";
inline constexpr char kRecheckMs[] = "recheck_ms";
inline constexpr char kTransientCanaries[] = "transient_canaries";
inline constexpr char kRoundMs[] = "round_ms";
inline constexpr char kLearnMs[] = "learn_ms";
inline constexpr char kUnplacedCanaries[] = "unplaced_canaries";
inline constexpr char kProxiesRead[] = "proxies_read";
inline std::string backends_routed(std::string_view proxy) {
  return "backends_routed/" + std::string(proxy);
}
// The canary's verdict on a proxy the round read through (ProxyVerdict in
// probes/canary/canary_findings.h): 0 agrees, 1 diverges, 2 unreachable.
inline std::string proxy_verdict(std::string_view proxy) {
  return "proxy_verdict/" + std::string(proxy);
}
// connections
inline constexpr char kConnectionsMs[] = "connections_ms";
inline std::string proxy_backends_connected(std::string_view proxy) {
  return "proxy_backends_connected/" + std::string(proxy);
}
inline std::string proxy_stats_age_s(std::string_view proxy) {
  return "proxy_stats_age_s/" + std::string(proxy);
}
inline std::string backend_clients(std::string_view backend) {
  return "backend_clients/" + std::string(backend);
}
// dns
inline constexpr char kDnsNames[] = "dns_names";
inline constexpr char kDnsVantagePoints[] = "dns_vantage_points";
inline constexpr char kDnsLookups[] = "dns_lookups";
inline constexpr char kDnsLookupsUndecided[] = "dns_lookups_undecided";
inline constexpr char kDnsAnswersOutside[] = "dns_answers_outside";
inline constexpr char kDnsMs[] = "dns_ms";
inline std::string dns_answer_expected(std::string_view backend, std::string_view vantage) {
  return "dns_answer_expected/" + std::string(backend) + "/" + std::string(vantage);
}
}  // namespace figures

}  // namespace ringwatch::report
