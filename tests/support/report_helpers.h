#pragma once
// Reading reports in tests: a readable dump for failure messages, finding and
// evidence look-ups, figures, and "probe until" for conditions that settle.

#include <chrono>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "lib/report/report.h"
#include "lib/spec/cluster_spec.h"
#include "probes/registry.h"

namespace ringwatch::testing {

// One line per check and per finding: what a failed assertion should show.
inline std::string describe(const report::Report& report) {
  std::ostringstream text;
  text << report.summary_line() << "\n";
  for (const auto& check : report.checks) {
    text << "  check " << check.name << " " << report::to_string(check.status) << ": "
         << check.summary << "\n";
  }
  for (const report::Finding& finding : report.findings) {
    text << "  " << report::to_string(finding.severity) << " " << finding.check << "/"
         << finding.code << " [" << finding.subject.describe() << "] " << finding.summary << "\n";
  }
  return text.str();
}

// The first finding with `code`, or nullptr.
inline const report::Finding* find_finding(const report::Report& report, const std::string& code) {
  for (const report::Finding& finding : report.findings) {
    if (finding.code == code) return &finding;
  }
  return nullptr;
}

inline const report::EvidenceValue* evidence(const report::Finding& finding,
                                             const std::string& key) {
  for (const auto& [name, value] : finding.evidence) {
    if (name == key) return &value;
  }
  return nullptr;
}

// -1 when the report has no such figure.
inline double figure(const report::Report& report, const std::string& name) {
  auto found = report.figures.find(name);
  return found == report.figures.end() ? -1 : found->second;
}

// Runs rounds until `done(report)` or the deadline; returns the last report.
template <class Predicate>
report::Report run_until(probes::ProbeSet& probes, const spec::ClusterSpec& spec, Predicate done,
                         std::chrono::seconds deadline) {
  const auto until = std::chrono::steady_clock::now() + deadline;
  report::Report report = probes.run_round(spec);
  while (!done(report) && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
    report = probes.run_round(spec);
  }
  return report;
}

}  // namespace ringwatch::testing
