#pragma once
// Where each canary belongs: its reference route, the backend the proxies
// that are right put it on, against which each proxy's own route is judged.
//
//   majority       a strict majority of the responsive proxies routes the
//                  canary to one backend of the spec: that backend. A route
//                  outside the spec (kOutside) never wins a vote.
//   whole proxies  with no majority (one or two proxies, or a tie), the spec
//                  decides: a proxy is whole when it routes canaries to every
//                  backend any proxy routes canaries to (that the probe can
//                  reach) and none outside the spec. When every whole proxy
//                  that routes the canary routes it to one backend, that is
//                  its reference. So with two proxies, one missing a backend
//                  or routing to a server the spec does not list, the other
//                  decides.
//   none           otherwise (two whole proxies that disagree: a hash or
//                  weight difference; or no whole proxy): no proxy can be
//                  named from the canaries alone.
//
// Canaries learned on a backend the probe cannot reach are left out of
// wholeness: their routes are that backend's story.
//
// Pure functions of the verdicts; thread-safe.

#include <cstddef>
#include <set>
#include <vector>

#include "probes/canary/canary_round.h"

namespace ringwatch::probes::canary {

// The backend of the spec a strict majority of the responsive proxies routes
// `verdict`'s canary to, or kNone.
std::size_t majority_route(const KeyVerdict& verdict, const Observation& obs);

// Per proxy: the backends of the spec it routes canaries to that the probe
// can reach (empty for a proxy it cannot use).
std::vector<std::set<std::size_t>> routed_backends(const std::vector<Canary>& canaries,
                                                   const std::vector<KeyVerdict>& verdicts,
                                                   const Observation& obs);

// Per proxy: whole (see above). False for a proxy the probe cannot use.
std::vector<bool> whole_proxies(const std::vector<Canary>& canaries,
                                const std::vector<KeyVerdict>& verdicts, const Observation& obs);

// Gives every verdict its reference: the majority route where there is one,
// else the whole proxies' route where they agree on one.
void settle_references(const std::vector<Canary>& canaries, std::vector<KeyVerdict>& verdicts,
                       const Observation& obs);

}  // namespace ringwatch::probes::canary
