#include "probes/canary/canary_plan.h"

#include <algorithm>

namespace ringwatch::probes::canary {

namespace {

std::size_t nominal_proxies(const spec::ClusterSpec& spec) {
  const std::size_t proxies = spec.proxies.size();
  return spec.canary.proxies_per_round ? std::min(proxies, *spec.canary.proxies_per_round)
                                       : proxies;
}

}  // namespace

std::size_t canaries_per_backend(const spec::ClusterSpec& spec) {
  const std::size_t backends = std::max<std::size_t>(spec.backends.size(), 1);
  const std::size_t for_detection = (kMinReadsPerProxy + backends - 1) / backends;
  std::size_t per_backend = spec.canary.keys_per_backend;
  if (spec.canary.coverage == spec::CanaryCoverage::full) per_backend *= nominal_proxies(spec);
  return std::max(per_backend, for_detection);
}

void LearnedPools::add(const std::string& key, const KeyVerdict& verdict, const Observation& obs) {
  if (verdict.consensus != kNone) {
    by_backend[verdict.consensus].push_back(key);
    return;
  }
  std::set<std::size_t> routes;
  for (std::size_t q = 0; q < verdict.route.size(); ++q) {
    if (!obs.proxy_down(q) && verdict.route[q] != kNone) routes.insert(verdict.route[q]);
  }
  for (std::size_t route : routes) {
    if (route < by_backend.size()) by_backend[route].push_back(key);
  }
  if (routes.size() == 1 && *routes.begin() == kOutside) outside.push_back(key);
}

bool LearnedPools::empty() const {
  return outside.empty() && std::all_of(by_backend.begin(), by_backend.end(),
                                        [](const auto& keys) { return keys.empty(); });
}

std::vector<std::size_t> round_proxies(const spec::ClusterSpec& spec, std::uint64_t round,
                                       const std::set<std::size_t>& watched) {
  const std::size_t proxies = spec.proxies.size();
  const std::size_t window = nominal_proxies(spec);
  std::vector<char> covered(proxies, window == proxies ? 1 : 0);
  if (window < proxies) {
    const std::size_t start = static_cast<std::size_t>((round * window) % proxies);
    for (std::size_t i = 0; i < window; ++i) covered[(start + i) % proxies] = 1;
    for (std::size_t q : watched) {
      if (q < proxies) covered[q] = 1;
    }
  }
  std::vector<std::size_t> list;
  for (std::size_t q = 0; q < proxies; ++q) {
    if (covered[q]) list.push_back(q);
  }
  return list;
}

RoundPlan plan_round(const spec::ClusterSpec& spec, const LearnedPools& pools, std::uint64_t round,
                     const std::set<std::size_t>& watched) {
  RoundPlan plan;
  plan.proxies = round_proxies(spec, round, watched);
  plan.per_backend = canaries_per_backend(spec);
  const std::size_t m = plan.per_backend;
  std::set<std::string> taken;  // a key two proxies disagree on is in two pools
  // Backend `slot_base / m`'s slice of `pool` for this round.
  auto take = [&](const std::vector<std::string>& pool, std::size_t learned,
                  std::size_t slot_base) {
    if (pool.empty() || plan.proxies.empty()) return;
    const std::size_t start = static_cast<std::size_t>((round * m) % pool.size());
    std::size_t slot = 0;
    for (std::size_t t = 0; t < pool.size() && slot < m; ++t) {
      const std::string& key = pool[(start + t) % pool.size()];
      if (!taken.insert(key).second) continue;
      const std::size_t writer =
          plan.proxies[static_cast<std::size_t>((slot_base + slot + round) % plan.proxies.size())];
      plan.canaries.push_back({key, writer, learned});
      ++slot;
    }
  };
  for (std::size_t b = 0; b < pools.by_backend.size(); ++b) take(pools.by_backend[b], b, b * m);
  take(pools.outside, kOutside, pools.by_backend.size() * m);
  return plan;
}

std::vector<Canary> confirmation_canaries(const LearnedPools& pools, const RoundPlan& plan,
                                          const std::set<std::size_t>& backends) {
  std::set<std::string> used;
  for (const Canary& canary : plan.canaries) used.insert(canary.key);
  std::vector<Canary> extra;
  for (std::size_t b : backends) {
    if (b >= pools.by_backend.size() || plan.proxies.empty()) continue;
    for (const std::string& key : pools.by_backend[b]) {
      if (!used.insert(key).second) continue;
      extra.push_back({key, plan.proxies[extra.size() % plan.proxies.size()], b});
    }
  }
  return extra;
}

std::vector<std::size_t> learning_panel(const spec::ClusterSpec& spec,
                                        const std::vector<std::size_t>& covered) {
  if (spec.canary.coverage == spec::CanaryCoverage::full || covered.size() <= kLearnPanel) {
    return covered;
  }
  std::vector<std::size_t> panel;
  for (std::size_t i = 0; i < kLearnPanel; ++i) {
    panel.push_back(covered[i * covered.size() / kLearnPanel]);
  }
  return panel;
}

}  // namespace ringwatch::probes::canary
