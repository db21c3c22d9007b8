// What a round touches (probes/canary/canary_plan.h), without a lab: how many
// canaries, which proxies, which keys and who writes each, round after round.

#include "probes/canary/canary_plan.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <string>
#include <utility>

namespace ringwatch::probes::canary {
namespace {

spec::ClusterSpec cluster(std::size_t proxies, std::size_t backends,
                          spec::CanaryCoverage coverage = spec::CanaryCoverage::linear,
                          std::optional<std::size_t> proxies_per_round = std::nullopt) {
  spec::ClusterSpec spec;
  spec.name = "plan";
  for (std::size_t q = 0; q < proxies; ++q) {
    spec::Proxy proxy;
    proxy.name = "p" + std::to_string(q + 1);
    spec.proxies.push_back(proxy);
  }
  for (std::size_t b = 0; b < backends; ++b) {
    spec::Backend backend;
    backend.name = "b" + std::to_string(b + 1);
    spec.backends.push_back(backend);
  }
  spec.canary.coverage = coverage;
  spec.canary.proxies_per_round = proxies_per_round;
  return spec;
}

// A learned pool as learning leaves it: kPoolRounds x m keys per backend.
LearnedPools learned(const spec::ClusterSpec& spec) {
  LearnedPools pools(spec.backends.size());
  const std::size_t depth = kPoolRounds * canaries_per_backend(spec);
  for (std::size_t b = 0; b < spec.backends.size(); ++b) {
    for (std::size_t i = 0; i < depth; ++i) {
      pools.by_backend[b].push_back("k" + std::to_string(b) + "-" + std::to_string(i));
    }
  }
  return pools;
}

TEST(CanaryPlanTest, SmallClustersReadEnoughCanariesForTheDetectionBound) {
  EXPECT_EQ(canaries_per_backend(cluster(3, 3)), 8u);  // ceil(22 / 3), more than k = 2
  EXPECT_EQ(canaries_per_backend(cluster(1, 1)), 22u);
  EXPECT_EQ(canaries_per_backend(cluster(12, 48)), 2u);  // k
  EXPECT_EQ(canaries_per_backend(cluster(1000, 50)), 2u);
  // Full: k per backend per proxy a round reads through, and never fewer.
  EXPECT_EQ(canaries_per_backend(cluster(3, 3, spec::CanaryCoverage::full)), 8u);
  EXPECT_EQ(canaries_per_backend(cluster(12, 48, spec::CanaryCoverage::full)), 24u);
  EXPECT_EQ(canaries_per_backend(cluster(12, 48, spec::CanaryCoverage::full, 4)), 8u);
  // The bound the README states: a divergence of 10% of the key space is
  // missed by every canary read through a proxy in 3 rounds with
  // probability below 0.1%, at every size.
  for (std::size_t backends = 1; backends <= 200; ++backends) {
    const double n = static_cast<double>(canaries_per_backend(cluster(3, backends)) * backends);
    EXPECT_LT(std::pow(0.9, 3 * n), 0.001) << backends << " backends";
  }
}

// Over P rounds every (proxy, backend) pair has been written and read, in
// every mode and from any starting round.
TEST(CanaryPlanTest, OverPRoundsEveryProxyWritesAndReadsEveryBackend) {
  for (const auto& [proxies, backends] :
       {std::pair<std::size_t, std::size_t>{3, 3}, {12, 48}, {1000, 50}}) {
    for (const auto coverage : {spec::CanaryCoverage::linear, spec::CanaryCoverage::full}) {
      if (coverage == spec::CanaryCoverage::full && proxies > 100) continue;  // 2,000 per backend
      const spec::ClusterSpec spec = cluster(proxies, backends, coverage);
      const LearnedPools pools = learned(spec);
      std::set<std::pair<std::size_t, std::size_t>> written;
      std::vector<char> read(proxies * backends, 0);  // [proxy][backend]
      const std::uint64_t start = 7919;
      for (std::uint64_t round = start; round < start + proxies; ++round) {
        const RoundPlan plan = plan_round(spec, pools, round, {});
        ASSERT_EQ(plan.proxies.size(), proxies);
        ASSERT_EQ(plan.canaries.size(), plan.per_backend * backends);
        std::set<std::size_t> placed;
        for (const Canary& canary : plan.canaries) {
          written.emplace(canary.writer, canary.learned);
          placed.insert(canary.learned);
        }
        for (std::size_t q : plan.proxies) {
          for (std::size_t b : placed) read[q * backends + b] = 1;
        }
      }
      EXPECT_EQ(written.size(), proxies * backends) << proxies << "x" << backends;
      EXPECT_EQ(std::count(read.begin(), read.end(), 1), static_cast<long>(proxies * backends))
          << proxies << "x" << backends;
    }
  }
}

TEST(CanaryPlanTest, EachCanaryIsWrittenByOneProxyAndTheWritesAreSpread) {
  const spec::ClusterSpec spec = cluster(12, 48);
  const RoundPlan plan = plan_round(spec, learned(spec), 5, {});
  std::map<std::size_t, std::size_t> per_writer;
  for (const Canary& canary : plan.canaries) ++per_writer[canary.writer];
  ASSERT_EQ(per_writer.size(), 12u);
  for (const auto& [writer, count] : per_writer) EXPECT_EQ(count, 96u / 12) << writer;
}

TEST(CanaryPlanTest, SuccessiveRoundsReadDifferentKeysOfEachBackend) {
  const spec::ClusterSpec spec = cluster(3, 3);
  const LearnedPools pools = learned(spec);
  std::set<std::string> seen;
  std::size_t used = 0;
  for (std::uint64_t round = 100; round < 100 + kPoolRounds; ++round) {
    for (const Canary& canary : plan_round(spec, pools, round, {}).canaries) {
      seen.insert(canary.key);
      ++used;
    }
  }
  EXPECT_EQ(used, kPoolRounds * 24);
  EXPECT_EQ(seen.size(), used);  // no key twice in kPoolRounds rounds
}

TEST(CanaryPlanTest, AKeyInTwoBackendsPoolsIsOneCanary) {
  const spec::ClusterSpec spec = cluster(2, 2);
  LearnedPools pools(2);
  pools.by_backend[0] = {"shared", "a"};
  pools.by_backend[1] = {"shared", "b"};
  pools.outside = {"out"};
  const RoundPlan plan = plan_round(spec, pools, 0, {});
  std::map<std::string, std::size_t> learned_on;
  for (const Canary& canary : plan.canaries) {
    EXPECT_TRUE(learned_on.emplace(canary.key, canary.learned).second) << canary.key;
  }
  EXPECT_EQ(learned_on.size(), 4u);
  EXPECT_EQ(learned_on["out"], kOutside);
}

// When every canary of a backend moved, the rest of its pool is asked too.
TEST(CanaryPlanTest, ConfirmationCanariesAreTheRestOfAMovedBackendsPool) {
  const spec::ClusterSpec spec = cluster(12, 48);
  const LearnedPools pools = learned(spec);
  const RoundPlan plan = plan_round(spec, pools, 3, {});
  const std::vector<Canary> extra = confirmation_canaries(pools, plan, {24});
  ASSERT_EQ(extra.size(), (kPoolRounds - 1) * plan.per_backend);
  std::set<std::string> in_plan;
  for (const Canary& canary : plan.canaries) in_plan.insert(canary.key);
  for (const Canary& canary : extra) {
    EXPECT_EQ(canary.learned, 24u);
    EXPECT_FALSE(in_plan.contains(canary.key)) << canary.key;
  }
}

TEST(CanaryPlanTest, ProxiesPerRoundCoversEveryProxyWithinCeilPOverNRounds) {
  for (const auto& [proxies, per_round] :
       {std::pair<std::size_t, std::size_t>{10, 3}, {1000, 100}, {1000, 50}, {12, 5}}) {
    const spec::ClusterSpec spec = cluster(proxies, 50, spec::CanaryCoverage::linear, per_round);
    const std::size_t window = (proxies + per_round - 1) / per_round;
    for (const std::uint64_t start : {0ull, 3ull, 123457ull}) {
      std::set<std::size_t> covered;
      for (std::uint64_t round = start; round < start + window; ++round) {
        const std::vector<std::size_t> read = round_proxies(spec, round, {});
        EXPECT_EQ(read.size(), per_round);
        covered.insert(read.begin(), read.end());
      }
      EXPECT_EQ(covered.size(), proxies) << proxies << "/" << per_round << " from " << start;
    }
  }
}

TEST(CanaryPlanTest, AWatchedProxyIsReadThroughEveryRoundAndWritesOnlyAmongTheRoundsProxies) {
  const spec::ClusterSpec spec = cluster(10, 3, spec::CanaryCoverage::linear, 3);
  const LearnedPools pools = learned(spec);
  for (std::uint64_t round = 0; round < 20; ++round) {
    const RoundPlan plan = plan_round(spec, pools, round, {7});
    const std::set<std::size_t> read(plan.proxies.begin(), plan.proxies.end());
    EXPECT_TRUE(read.contains(7)) << "round " << round;
    EXPECT_LE(read.size(), 4u);
    for (const Canary& canary : plan.canaries) EXPECT_TRUE(read.contains(canary.writer));
  }
}

TEST(CanaryPlanTest, ALinearRoundLearnsThroughAPanelAFullOneThroughEveryProxy) {
  std::vector<std::size_t> twelve(12);
  for (std::size_t q = 0; q < 12; ++q) twelve[q] = q;
  EXPECT_EQ(learning_panel(cluster(12, 48), twelve), (std::vector<std::size_t>{0, 2, 4, 7, 9}));
  EXPECT_EQ(learning_panel(cluster(12, 48, spec::CanaryCoverage::full), twelve), twelve);
  EXPECT_EQ(learning_panel(cluster(2, 3), {0, 1}), (std::vector<std::size_t>{0, 1}));
}

}  // namespace
}  // namespace ringwatch::probes::canary
