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
#include "probes/canary/canary_plan.h"
#include "probes/canary/canary_round.h"
#include "probes/check_findings.h"
#include "probes/round_context.h"

namespace ringwatch::probes::canary {

// The canary's word on one proxy the round read through (the figure
// proxy_verdict/<proxy>): it routes and reads every canary as the reference
// says, or a ring finding names it (or it takes part in a disagreement with no
// reference), or the probe cannot reach it.
enum class ProxyVerdict { agrees = 0, diverges = 1, unreachable = 2 };

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
  // Proxies found diverging or unreachable: read through every round until
  // they agree again.
  std::set<std::size_t> watch;
};

// Adds the findings of a round to `out`, what later checks need of them to
// `facts`, and the per-proxy routing figures and verdicts to `report`.
// `verdicts` are after the recheck, one per canary of `plan`; `transient`
// canaries disagreed at first and agreed on recheck. Canaries learned on a
// backend the probe cannot reach are left to that backend's finding; proxies
// the round did not read through are left out.
Judgement judge_round(const spec::ClusterSpec& spec, const RoundPlan& plan,
                      const std::vector<KeyVerdict>& verdicts, const Observation& obs,
                      std::size_t transient, report::Report& report, CheckFindings& out,
                      CanaryRound& facts);

}  // namespace ringwatch::probes::canary
