#include "probes/canary/canary_routes.h"

#include <map>
#include <set>

namespace ringwatch::probes::canary {

namespace {

bool is_backend(std::size_t route, const Observation& obs) {
  return route < obs.locate_error.size();
}

}  // namespace

std::size_t majority_route(const KeyVerdict& verdict, const Observation& obs) {
  std::size_t responsive = 0;
  std::map<std::size_t, std::size_t> votes;
  for (std::size_t q = 0; q < verdict.route.size(); ++q) {
    if (obs.proxy_down(q)) continue;
    ++responsive;
    if (is_backend(verdict.route[q], obs)) ++votes[verdict.route[q]];
  }
  for (const auto& [backend, count] : votes) {
    if (2 * count > responsive) return backend;
  }
  return kNone;
}

std::vector<std::set<std::size_t>> routed_backends(const std::vector<Canary>& canaries,
                                                   const std::vector<KeyVerdict>& verdicts,
                                                   const Observation& obs) {
  std::vector<std::set<std::size_t>> routed(obs.write_error.size());
  for (std::size_t i = 0; i < canaries.size(); ++i) {
    if (obs.backend_down(canaries[i].learned)) continue;
    for (std::size_t q = 0; q < routed.size(); ++q) {
      const std::size_t route = verdicts[i].route[q];
      if (!obs.proxy_down(q) && is_backend(route, obs) && !obs.backend_down(route)) {
        routed[q].insert(route);
      }
    }
  }
  return routed;
}

std::vector<bool> whole_proxies(const std::vector<Canary>& canaries,
                                const std::vector<KeyVerdict>& verdicts, const Observation& obs) {
  const std::vector<std::set<std::size_t>> routed = routed_backends(canaries, verdicts, obs);
  std::set<std::size_t> used;  // by any proxy
  for (const auto& backends : routed) used.insert(backends.begin(), backends.end());
  std::vector<bool> whole(routed.size(), false);
  for (std::size_t q = 0; q < routed.size(); ++q) {
    whole[q] = !obs.proxy_down(q) && routed[q] == used;
  }
  for (std::size_t i = 0; i < canaries.size(); ++i) {
    if (obs.backend_down(canaries[i].learned)) continue;
    for (std::size_t q = 0; q < routed.size(); ++q) {
      if (verdicts[i].route[q] == kOutside) whole[q] = false;
    }
  }
  return whole;
}

void settle_references(const std::vector<Canary>& canaries, std::vector<KeyVerdict>& verdicts,
                       const Observation& obs) {
  std::vector<bool> whole;  // computed once, when a canary needs it
  for (std::size_t i = 0; i < verdicts.size(); ++i) {
    KeyVerdict& verdict = verdicts[i];
    verdict.consensus = majority_route(verdict, obs);
    verdict.reference = verdict.consensus == kNone ? Reference::none : Reference::majority;
    if (verdict.consensus != kNone) continue;
    if (whole.empty()) whole = whole_proxies(canaries, verdicts, obs);
    // Every whole proxy must say where, and all the same.
    std::set<std::size_t> routes;
    bool known = true;
    for (std::size_t q = 0; q < whole.size(); ++q) {
      if (!whole[q]) continue;
      known = known && is_backend(verdict.route[q], obs);
      routes.insert(verdict.route[q]);
    }
    if (known && routes.size() == 1) {
      verdict.consensus = *routes.begin();
      verdict.reference = Reference::whole_proxies;
    }
  }
}

}  // namespace ringwatch::probes::canary
