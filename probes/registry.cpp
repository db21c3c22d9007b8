#include "probes/registry.h"

#include <chrono>
#include <stdexcept>

#include "probes/canary/canary_probe.h"
#include "probes/connections/connections_probe.h"
#include "probes/diagnosis.h"
#include "probes/dns/dns_probe.h"

namespace ringwatch::probes {

namespace {
struct Entry {
  const char* check;
  std::unique_ptr<Probe> (*make)(const ProbeOptions&);
};
// The registry: one line per check, in the order a round runs them.
const Entry kEntries[] = {
    {report::checks::kCanary,
     [](const ProbeOptions&) -> std::unique_ptr<Probe> {
       return std::make_unique<canary::CanaryProbe>();
     }},
    // Runs after the canary so twemproxy's stats reflect the canary's traffic.
    {report::checks::kConnections,
     [](const ProbeOptions&) -> std::unique_ptr<Probe> {
       return std::make_unique<connections::ConnectionsProbe>();
     }},
    {report::checks::kDns,
     [](const ProbeOptions& options) -> std::unique_ptr<Probe> {
       return std::make_unique<dns::DnsProbe>(options.dns_vantage);
     }},
};
}  // namespace

const std::vector<std::string>& known_checks() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> result;
    for (const Entry& entry : kEntries) result.emplace_back(entry.check);
    return result;
  }();
  return names;
}

std::unique_ptr<Probe> make_probe(std::string_view check, const ProbeOptions& options) {
  for (const Entry& entry : kEntries) {
    if (check == entry.check) return entry.make(options);
  }
  return nullptr;
}

ProbeSet::ProbeSet(const std::vector<std::string>& checks, const ProbeOptions& options) {
  for (const std::string& check : checks) {
    auto probe = make_probe(check, options);
    if (!probe) throw std::invalid_argument("unknown check \"" + check + "\"");
    probes_.push_back(std::move(probe));
  }
}

report::Report ProbeSet::run_round(const spec::ClusterSpec& spec) {
  report::Report report;
  report.cluster = spec.name;
  report.started_at = std::chrono::system_clock::now();
  const auto start = std::chrono::steady_clock::now();
  for (auto& probe : probes_) probe->run(spec, report);
  diagnose(spec, report);
  report.duration_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  return report;
}

}  // namespace ringwatch::probes
