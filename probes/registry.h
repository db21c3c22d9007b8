#pragma once
// The explicit table of probes by check name, and the round runner the CLI,
// the daemon and the migration engine share.

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "probes/probe.h"

namespace ringwatch::probes {

// Check names in the order a round runs them.
const std::vector<std::string>& known_checks();

// How probes are built; the defaults audit everything from every vantage point.
struct ProbeOptions {
  // DNS from this one vantage point only (one node's view, e.g. when running
  // beside a proxy); empty = every vantage point in the spec.
  std::optional<std::string> dns_vantage;
};

// nullptr for an unknown name.
std::unique_ptr<Probe> make_probe(std::string_view check, const ProbeOptions& options = {});

// The probes for one cluster, kept across rounds.
class ProbeSet {
 public:
  // Throws std::invalid_argument naming an unknown check.
  explicit ProbeSet(const std::vector<std::string>& checks, const ProbeOptions& options = {});
  // One round of every probe; the report's status is the worst check's.
  report::Report run_round(const spec::ClusterSpec& spec);

 private:
  std::vector<std::unique_ptr<Probe>> probes_;
};

}  // namespace ringwatch::probes
