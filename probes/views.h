#pragma once
// The round's per-link and per-name views (report::LinkView,
// report::DnsAnswerView) from the typed facts of the round context: what
// each check saw of every (proxy, backend) link and every lookup, for the
// consumers that draw the proxies x backends matrix. Pure.

#include "lib/report/report.h"
#include "lib/spec/cluster_spec.h"
#include "probes/round_context.h"

namespace ringwatch::probes {

// Fills report.links (when the canary or the connection audit ran) and
// report.dns_answers (when the DNS audit ran).
void describe_views(const spec::ClusterSpec& spec, const RoundContext& round,
                    report::Report& report);

}  // namespace ringwatch::probes
