#pragma once
// The checks around a migration step, run in-process on the same probes and
// report type as `ringwatch probe`. The cluster spec is read again for every
// round, because steps change it (a backend added or retired); the probes are
// kept across rounds while the spec stays the same, so the canary keeps its
// learned key set, and built anew when it changes.
//
// Thread-safety: one CheckRunner per cluster thread.

#include <memory>
#include <string>
#include <vector>

#include "lib/report/report.h"
#include "migration/plan.h"

namespace ringwatch::migration {

struct CheckRound {
  bool passed = false;
  // One line per failed check ("dns: CRITICAL: b4's name resolves to ...",
  // "canary: consistency 0.83 < 1"), joined with "; ". Empty when passed.
  std::string failures;
  // The report's diagnoses joined with "; "; when it has none, its first
  // three findings above info.
  std::string diagnosis;
  report::Report report;  // empty when the spec could not be read
};

// Judges one check against a report of a round on `spec` (pure).
// Returns the failures, empty when the check passed.
std::vector<std::string> judge(const CheckSpec& check, const report::Report& report,
                               const spec::ClusterSpec& spec);

// The checks of one cluster as the engine sees them (EngineOptions::
// make_checks): its seam to the probes, so its tests can script the rounds.
// One per cluster, used on that cluster's thread only.
class ClusterChecks {
 public:
  virtual ~ClusterChecks() = default;
  // One round of `checks`: passed, or failed with the failures and diagnosis.
  virtual CheckRound run(const std::vector<CheckSpec>& checks) = 0;
};

// The real checks: the probes of `ringwatch probe` on the cluster's spec.
class CheckRunner : public ClusterChecks {
 public:
  CheckRunner(std::string spec_path, std::string dns_vantage);
  ~CheckRunner() override;
  CheckRunner(const CheckRunner&) = delete;
  CheckRunner& operator=(const CheckRunner&) = delete;

  // One round of the probes the checks name; an unreadable or invalid spec
  // fails the round with the reason.
  CheckRound run(const std::vector<CheckSpec>& checks) override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ringwatch::migration
