#pragma once
// The diagnosis: after every check of a round has run, tie the findings that
// share a subject into one statement a person can act on, e.g.
//   p2 is missing b3 (canary: 0/6 routed; twemproxy: ejected at 14:02:11) —
//   b3's name resolves to 127.200.0.13, outside 127.10.0.0/16, at the vantage
//   point used by p2
// Findings stay as they are; a Diagnosis only references them by index. What
// the checks found is read from the round's typed facts (round_context.h),
// never from finding codes or summaries.
// Pure function of the spec, the round context and the report; thread-safe.

#include "lib/report/report.h"
#include "lib/spec/cluster_spec.h"
#include "probes/round_context.h"

namespace ringwatch::probes {

void diagnose(const spec::ClusterSpec& spec, const RoundContext& round, report::Report& report);

}  // namespace ringwatch::probes
