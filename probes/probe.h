#pragma once
// The probe interface. A probe checks one invariant of one cluster and adds a
// CheckResult and its findings to a Report. Probes keep state across rounds
// (the canary probe's learned key placement), so one Probe object serves one
// cluster for its lifetime; the registry (registry.h) builds them by name.
// What one probe needs to know of another's results this round travels in the
// RoundContext (round_context.h), never through finding codes.
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
#include "probes/round_context.h"

namespace ringwatch::probes {

class Probe {
 public:
  virtual ~Probe() = default;
  virtual std::string_view name() const = 0;
  // Runs one round against `spec` and appends exactly one CheckResult named
  // name() plus its findings and figures to `report`. Reads what the probes
  // before it put into `round` and adds its own part.
  virtual void run(const spec::ClusterSpec& spec, RoundContext& round, report::Report& report) = 0;
};

}  // namespace ringwatch::probes
