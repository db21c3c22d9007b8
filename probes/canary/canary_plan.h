#pragma once
// What one canary round touches: the proxies it reads through, the learned
// keys it uses as canaries and the proxy that writes each. Pure functions of
// the spec, the learned pool, the round's number and the proxies the last
// round found wrong; no I/O.
//
// With P proxies, B backends and k = keys_per_backend:
//
//   canaries per backend a round uses (m)
//     linear  max(k, ceil(kMinReadsPerProxy / B))
//     full    max(k x P', ceil(kMinReadsPerProxy / B)), P' = min(P, proxies_per_round)
//   A divergence that moves a fraction f of the key space (a weight or a
//   ketama point set differing on one proxy) is missed by n canaries read
//   through that proxy in each of R rounds, each round's keys fresh, with
//   probability (1 - f)^(n R). n = m x B >= kMinReadsPerProxy = 22 makes that
//   0.9^66 < 0.001 for f = 10% and R = 3 rounds at every cluster size.
//   (Canaries are drawn per backend, which is at least as good as drawing
//   them uniformly while the backends hold equal shares of the ring.)
//
//   keys   the learned pool keeps up to kPoolRounds x m keys per backend;
//          round r uses the r-th slice of m of each backend's keys, so
//          kPoolRounds rounds in a row read different keys, and then the
//          slices come round again.
//   proxies every proxy; with proxies_per_round N < P, a window of N proxies
//          that moves on by N every round (so every proxy is read through at
//          least once every ceil(P / N) rounds), plus every proxy the last
//          round found diverging or could not reach, until it agrees again.
//   writers slot j of backend b (the j-th canary of b this round) is written
//          in round r by covered[(b m + j + r) mod |covered|]: each canary by
//          one proxy, and over |covered| rounds every covered proxy writes
//          every slot, so every proxy writes to every backend.
//
// Thread-safe.

#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "lib/spec/cluster_spec.h"
#include "probes/canary/canary_round.h"

namespace ringwatch::probes::canary {

inline constexpr std::size_t kMinReadsPerProxy = 22;
inline constexpr std::size_t kPoolRounds = 4;
// A linear round learns through at most this many of its proxies: a key's
// learned backend is where most of them route it (the round then reads it
// through every proxy, and a canary learned wrong is rechecked everywhere).
inline constexpr std::size_t kLearnPanel = 5;

// m above.
std::size_t canaries_per_backend(const spec::ClusterSpec& spec);

// Learned keys by where they belong: their reference route, else every
// backend some proxy routes them to, in the order they were tried. So a
// backend only one of two proxies uses still gets canaries (no finding then
// says that no proxy routes there), and keys two proxies disagree on are kept
// as likely as keys they agree on (a hash difference is not learned away).
// Keys some proxy routes outside the spec and none into it are kept apart, so
// a single proxy is still caught sending keys outside the spec.
struct LearnedPools {
  explicit LearnedPools(std::size_t backends = 0) : by_backend(backends) {}

  void add(const std::string& key, const KeyVerdict& verdict, const Observation& obs);
  bool empty() const;

  std::vector<std::vector<std::string>> by_backend;
  std::vector<std::string> outside;
};

struct RoundPlan {
  std::vector<std::size_t> proxies;  // read through this round, in spec order
  std::size_t per_backend = 0;       // m
  std::vector<Canary> canaries;      // by backend, then the outside keys
};

// The proxies round `round` reads through (see above); `watched` are the
// proxies the last round found diverging or could not reach.
std::vector<std::size_t> round_proxies(const spec::ClusterSpec& spec, std::uint64_t round,
                                       const std::set<std::size_t>& watched);

// Round `round`'s plan over `pools`.
RoundPlan plan_round(const spec::ClusterSpec& spec, const LearnedPools& pools, std::uint64_t round,
                     const std::set<std::size_t>& watched);

// More canaries for `backends`, every one of whose canaries this round was
// off its learned backend: the rest of each one's pool, written in turn by the
// plan's proxies. With few canaries per backend, all of a backend's can move
// when the ring moves for everyone (nutcracker re-deals every server's points
// when it ejects one); the rest of its pool tells that apart from a backend no
// proxy routes to any more.
std::vector<Canary> confirmation_canaries(const LearnedPools& pools, const RoundPlan& plan,
                                          const std::set<std::size_t>& backends);

// The proxies a learning pass reads through: every proxy of `covered` in a
// full round, at most kLearnPanel of them spread over the list in a linear one.
std::vector<std::size_t> learning_panel(const spec::ClusterSpec& spec,
                                        const std::vector<std::size_t>& covered);

}  // namespace ringwatch::probes::canary
