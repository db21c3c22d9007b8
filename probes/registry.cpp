#include "probes/registry.h"

#include <algorithm>
#include <chrono>
#include <stdexcept>

#include "lib/util/text.h"
#include "probes/canary/canary_probe.h"
#include "probes/connections/connections_probe.h"
#include "probes/diagnosis.h"
#include "probes/dns/dns_probe.h"
#include "probes/views.h"

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

std::string UnknownCheck::message() const {
  return "unknown check \"" + util::printable(name) + "\" (known: " + util::join(known_checks()) +
         ")";
}

Result<std::vector<std::string>, UnknownCheck> normalize_checks(
    const std::vector<std::string>& names) {
  const auto& known = known_checks();
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (std::find(known.begin(), known.end(), names[i]) == known.end()) {
      return UnknownCheck{i, names[i]};
    }
  }
  std::vector<std::string> ordered;
  for (const std::string& check : known) {
    if (std::find(names.begin(), names.end(), check) != names.end()) ordered.push_back(check);
  }
  return ordered;
}

ProbeSet::ProbeSet(const std::vector<std::string>& checks, const ProbeOptions& options) {
  auto normalized = normalize_checks(checks);
  if (!normalized) throw std::invalid_argument(normalized.error().message());
  checks_ = std::move(normalized).value();
  for (const std::string& check : checks_) probes_.push_back(make_probe(check, options));
}

report::Report ProbeSet::run_round(const spec::ClusterSpec& spec, const RoundProgress& progress) {
  report::Report report;
  report.cluster = spec.name;
  report.started_at = std::chrono::system_clock::now();
  const auto start = std::chrono::steady_clock::now();
  RoundContext round;
  for (auto& probe : probes_) {
    if (progress.started) progress.started(probe->name());
    probe->run(spec, round, report);
    if (progress.finished) progress.finished(probe->name());
  }
  diagnose(spec, round, report);
  describe_views(spec, round, report);
  report.duration_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  return report;
}

}  // namespace ringwatch::probes
