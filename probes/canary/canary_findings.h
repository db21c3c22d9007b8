#pragma once
// The canary's judgement: one round's verdicts turned into findings, one
// method per kind of finding (canary_findings.cpp). Pure: no I/O.

#include <cstddef>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "lib/report/report.h"
#include "lib/spec/cluster_spec.h"
#include "probes/canary/canary_round.h"
#include "probes/check_findings.h"
#include "probes/round_context.h"

namespace ringwatch::probes::canary {

// What judging a round decided besides its findings.
struct Judgement {
  std::vector<std::string> headlines;  // most urgent first
  std::size_t proxies_down = 0;
  bool relearn = false;  // learn the placement again next round
  // Backends that could hold no canary this round: the probe cannot reach
  // them, or no proxy routes canaries to them.
  std::set<std::size_t> unplaced_backends;
  // The check's status when it is not the worst finding's.
  std::optional<report::Status> status;
};

// Adds the findings of a round to `out`, what later checks need of them to
// `facts`, and the per-proxy routing figures to `report`. `verdicts` are after
// the recheck; `transient` canaries disagreed at first and agreed on recheck.
// Canaries learned on a backend the probe cannot reach are left to that
// backend's finding.
Judgement judge_round(const spec::ClusterSpec& spec, const std::vector<Canary>& canaries,
                      const std::vector<KeyVerdict>& verdicts, const Observation& obs,
                      std::size_t transient, report::Report& report, CheckFindings& out,
                      CanaryRound& facts);

}  // namespace ringwatch::probes::canary
