#pragma once
// The explicit table of probes by check name, and the round runner the CLI,
// the daemon and the migration engine share. A list of check names from a
// user (the CLI, ringwatchd's --checks, the fleet file, the daemon's API, the
// migration checks) goes through normalize_checks(), and ProbeSet applies it
// too: the callers do not order or validate names themselves.

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "lib/util/result.h"
#include "probes/probe.h"

namespace ringwatch::probes {

// Check names in the order a round runs them.
const std::vector<std::string>& known_checks();

// A name in a list of checks that the registry does not know.
struct UnknownCheck {
  std::size_t index = 0;  // its position in the list
  std::string name;
  // The one text for it: unknown check "x" (known: canary, connections, dns)
  std::string message() const;
};

// The checks `names` asks for, each once, in the order a round runs them; an
// empty list stays empty. The first unknown name is the error.
Result<std::vector<std::string>, UnknownCheck> normalize_checks(
    const std::vector<std::string>& names);

// How probes are built; the defaults audit everything from every vantage point.
struct ProbeOptions {
  // DNS from this one vantage point only (one node's view, e.g. when running
  // beside a proxy); empty = every vantage point in the spec.
  std::optional<std::string> dns_vantage;
};

// nullptr for an unknown name.
std::unique_ptr<Probe> make_probe(std::string_view check, const ProbeOptions& options = {});

// Told as each check of a round starts and finishes, on the thread that runs
// the check: what a caller with a deadline of its own (`ringwatch probe -t`)
// needs to say what was still running. Either may be empty.
struct RoundProgress {
  std::function<void(std::string_view check)> started;
  std::function<void(std::string_view check)> finished;
};

// The probes for one cluster, kept across rounds.
class ProbeSet {
 public:
  // `checks` in any order, duplicates allowed (see normalize_checks); throws
  // std::invalid_argument with UnknownCheck::message() for an unknown name.
  explicit ProbeSet(const std::vector<std::string>& checks, const ProbeOptions& options = {});
  // One round of every probe; the report's status is the worst check's.
  report::Report run_round(const spec::ClusterSpec& spec, const RoundProgress& progress = {});
  // The checks a round runs, normalized.
  const std::vector<std::string>& checks() const { return checks_; }

 private:
  std::vector<std::string> checks_;
  std::vector<std::unique_ptr<Probe>> probes_;
};

}  // namespace ringwatch::probes
