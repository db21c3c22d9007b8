#pragma once
// The probe interface. A probe checks one invariant of one cluster and adds a
// CheckResult and its findings to a Report. Probes keep state across rounds
// (the canary probe's learned key placement), so one Probe object serves one
// cluster for its lifetime; the registry (registry.h) builds them by name.
//
// Thread-safety: a Probe is used by one thread at a time. Probes never throw
// for network failures: an unreachable node is a finding.

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "lib/report/report.h"
#include "lib/report/vocabulary.h"
#include "lib/spec/cluster_spec.h"

namespace ringwatch::probes {

class Probe {
 public:
  virtual ~Probe() = default;
  virtual std::string_view name() const = 0;
  // Runs one round against `spec` and appends exactly one CheckResult named
  // name() plus its findings and figures to `report`.
  virtual void run(const spec::ClusterSpec& spec, report::Report& report) = 0;
};

}  // namespace ringwatch::probes
