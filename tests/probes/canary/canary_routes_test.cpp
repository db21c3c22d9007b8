// Where each canary belongs (probes/canary/canary_routes.h), from hand-made
// verdicts: the majority, else the whole proxies, else nobody.

#include "probes/canary/canary_routes.h"

#include <gtest/gtest.h>

#include <vector>

namespace ringwatch::probes::canary {
namespace {

constexpr std::size_t b1 = 0, b2 = 1, b3 = 2;

// An observation of `proxies` proxies and 3 backends, every one answering.
Observation answering(std::size_t proxies) {
  Observation obs;
  obs.write_error.resize(proxies);
  obs.read_error.resize(proxies);
  obs.reads.resize(proxies);
  obs.locate_error.resize(3);
  obs.held.resize(3);
  return obs;
}

struct Round {
  std::vector<Canary> canaries;
  std::vector<KeyVerdict> verdicts;

  // A canary learned on `learned` that each proxy routes to `routes[q]`.
  void add(std::size_t learned, std::vector<std::size_t> routes) {
    canaries.push_back({"k" + std::to_string(canaries.size()), 0, learned});
    KeyVerdict verdict;
    verdict.written = true;
    verdict.cls.assign(routes.size(), ReadClass::ok);
    verdict.route = std::move(routes);
    verdicts.push_back(std::move(verdict));
  }
};

TEST(CanaryRoutesTest, AStrictMajorityDecidesAndARouteOutsideTheSpecNeverWinsAVote) {
  const Observation obs = answering(3);
  Round round;
  round.add(b1, {b1, b1, b2});
  round.add(b2, {b2, b2, b2});
  round.add(b3, {kOutside, kOutside, b3});
  settle_references(round.canaries, round.verdicts, obs);
  EXPECT_EQ(round.verdicts[0].consensus, b1);
  EXPECT_EQ(round.verdicts[0].reference, Reference::majority);
  // Two of three route the last one outside the spec: no majority. And no
  // proxy is whole (p1 and p2 route outside, p3 nothing to b1).
  EXPECT_EQ(whole_proxies(round.canaries, round.verdicts, obs),
            (std::vector<bool>{false, false, false}));
  EXPECT_EQ(round.verdicts[2].consensus, kNone);
  EXPECT_EQ(round.verdicts[2].reference, Reference::none);
}

TEST(CanaryRoutesTest, OfTwoProxiesTheOneRoutingToEveryBackendInUseDecides) {
  const Observation obs = answering(2);
  Round round;
  round.add(b1, {b1, b1});
  round.add(b2, {b2, b2});
  round.add(b3, {b3, b2});  // p2 routes nothing to b3
  settle_references(round.canaries, round.verdicts, obs);
  EXPECT_EQ(whole_proxies(round.canaries, round.verdicts, obs), (std::vector<bool>{true, false}));
  EXPECT_EQ(round.verdicts[2].consensus, b3);
  EXPECT_EQ(round.verdicts[2].reference, Reference::whole_proxies);
  EXPECT_EQ(round.verdicts[0].reference, Reference::majority);
}

TEST(CanaryRoutesTest, OfTwoProxiesTheOneRoutingNothingOutsideTheSpecDecides) {
  const Observation obs = answering(2);
  Round round;
  round.add(b1, {b1, b1});
  round.add(b2, {b2, kOutside});
  round.add(b3, {b3, b3});
  settle_references(round.canaries, round.verdicts, obs);
  EXPECT_EQ(whole_proxies(round.canaries, round.verdicts, obs), (std::vector<bool>{true, false}));
  EXPECT_EQ(round.verdicts[1].consensus, b2);
  EXPECT_EQ(round.verdicts[1].reference, Reference::whole_proxies);
}

TEST(CanaryRoutesTest, TwoWholeProxiesThatDisagreeDecideNothing) {
  const Observation obs = answering(2);
  Round round;  // the same backends, different keys: a hash difference
  round.add(b1, {b1, b2});
  round.add(b2, {b2, b3});
  round.add(b3, {b3, b1});
  settle_references(round.canaries, round.verdicts, obs);
  EXPECT_EQ(whole_proxies(round.canaries, round.verdicts, obs), (std::vector<bool>{true, true}));
  for (const KeyVerdict& verdict : round.verdicts) {
    EXPECT_EQ(verdict.consensus, kNone);
    EXPECT_EQ(verdict.reference, Reference::none);
  }
}

TEST(CanaryRoutesTest, AWholeProxyThatCannotSayWhereDecidesNothing) {
  const Observation obs = answering(2);
  Round round;
  round.add(b1, {b1, b1});
  round.add(b2, {b2, b1});
  round.add(b3, {b3, b1});
  round.add(b3, {kNone, b2});  // p1 (whole) routes it nobody knows where
  settle_references(round.canaries, round.verdicts, obs);
  EXPECT_EQ(round.verdicts[1].consensus, b2);
  EXPECT_EQ(round.verdicts[3].consensus, kNone);
}

TEST(CanaryRoutesTest, NeitherProxyWholeDecidesNothing) {
  const Observation obs = answering(2);
  Round round;  // p1 routes nothing to b3, p2 nothing to b2
  round.add(b1, {b1, b1});
  round.add(b2, {b2, b1});
  round.add(b3, {b1, b3});
  settle_references(round.canaries, round.verdicts, obs);
  EXPECT_EQ(whole_proxies(round.canaries, round.verdicts, obs), (std::vector<bool>{false, false}));
  EXPECT_EQ(round.verdicts[1].consensus, kNone);
  EXPECT_EQ(round.verdicts[2].consensus, kNone);
}

TEST(CanaryRoutesTest, ADownBackendOrProxyTakesNoPartInWholeness) {
  Observation obs = answering(3);
  obs.locate_error[b3] = mc::Error{mc::ErrorKind::connect_refused, "b3: connect refused"};
  obs.write_error[2] = mc::Error{mc::ErrorKind::connect_refused, "p3: connect refused"};
  Round round;
  round.add(b1, {b1, b1, kNone});
  round.add(b2, {b2, b1, kNone});
  round.add(b3, {b1, b2, kNone});  // learned on b3, which the probe cannot reach
  // p1 and p2 answer: no strict majority on the second canary; p1 routes
  // to b1 and b2 (both in use), p2 to b1 only.
  settle_references(round.canaries, round.verdicts, obs);
  EXPECT_EQ(whole_proxies(round.canaries, round.verdicts, obs),
            (std::vector<bool>{true, false, false}));
  EXPECT_EQ(round.verdicts[1].consensus, b2);
  EXPECT_EQ(routed_backends(round.canaries, round.verdicts, obs)[1], (std::set<std::size_t>{b1}));
}

}  // namespace
}  // namespace ringwatch::probes::canary
