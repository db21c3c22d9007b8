#pragma once
// The canary probe: invariants 1 (ring agreement) and 2 (cross-proxy
// read-your-writes) of docs/architecture.md.
//
// A round, with P proxies and B backends (which canaries and proxies, and who
// writes each: canary_plan.h; `coverage` in the spec chooses linear or full):
//   learn   (first round, or when the placement stops matching) write a pool
//           of candidate keys, read them through the learning panel (every
//           proxy in a full round, a few in a linear one) and locate them on
//           every backend; a key's learned backend is its reference route
//           (canary_routes.h: a strict majority of proxies, else the proxies
//           that route to every backend in use and nowhere outside the spec),
//           else one some proxy routes it to. Keep kPoolRounds rounds' worth
//           of keys per backend, and as many keys that some proxy routes
//           outside the spec and none into it. Rounds rotate through them.
//   write   each of the round's canaries once, by its writer (value = writer,
//           round, key), one pipelined batch per writer, writers in parallel;
//   read    every proxy the round covers reads every canary, one pipelined
//           multi-get each;
//   locate  linear: each backend is asked for the canaries learned on it
//           (and the outside ones), so a round costs about m B (P + 2) key
//           operations; full: every backend for every canary, about
//           k P B (P + B + 1);
//   classify each (canary, reading proxy): ok, miss, stale, foreign, error;
//           infer each proxy's route for each canary (where the value it read
//           is held; outside the spec when no backend holds a value read back
//           and every backend was asked and answered);
//   recheck canaries that disagree are written, read and located on every
//           backend once more, and a proxy that still misses one (or reads an
//           older value no backend holds) writes it itself so the probe sees
//           where it sends it; only what survives the recheck is CRITICAL.
//           Then each canary's reference route is settled and each proxy's
//           routes are judged against it, and each proxy read through gets a
//           verdict (proxy_verdict/<proxy>): one found diverging or
//           unreachable is read through every round until it agrees again.
// Disagreements on canaries learned on a backend the probe cannot reach are
// that backend's fault (backend unreachable), never a divergence naming a
// healthy proxy. A proxy the probe cannot reach is reported and left out;
// the others are still checked; when it can reach none, that is the headline,
// naming each. Backends that can hold no canary this round (unreachable, or
// routed to by no proxy) count against the consistency ratio
// (unplaced_canaries).
//
// It tells the round (RoundContext::canary) which proxies and backends it could
// not reach, which proxy misses which backend, which routes outside the spec
// and what it could not decide; the connection audit and the diagnosis read
// that. (It runs first, so it cannot read the proxies' own server lists; the
// diagnosis, which runs last, ties the two.)
//
// Thread-safety: one thread at a time per CanaryProbe (see probes/probe.h).

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "probes/probe.h"

namespace ringwatch::probes::canary {

class CanaryProbe final : public Probe {
 public:
  CanaryProbe();
  ~CanaryProbe() override;
  std::string_view name() const override { return report::checks::kCanary; }
  void run(const spec::ClusterSpec& spec, RoundContext& round, report::Report& report) override;

  struct State;  // learned key set, open connections, workers (canary_probe.cpp)

 private:
  std::unique_ptr<State> state_;
};

}  // namespace ringwatch::probes::canary
