#pragma once
// A running proxy taking a new config, and waiting until it has acted on it.
// Internal to tools/lab: the faults, heal and the rolling restart use these.
//
// A kind that reloads (memcached's proxy, SIGHUP) is reloaded through a
// barrier: its `stats` count reloads as they begin, and a SIGHUP that comes
// while a reload runs is dropped (proxy_start_reload only try-locks), so the
// lab signals until the count has moved twice since the config was written;
// the second reload cannot begin before the first has finished, so the new
// config is in every worker thread when apply_proxy_config returns. A kind that
// does not reload (nutcracker), or a proxy that is not running, is restarted
// on its ports.
//
// Settling: nutcracker connects lazily and ejects a server only after a
// request to it failed, so the lab drives multi-gets through it until one
// failed and a later one is clean; memcached's proxy connects at once and
// lists a backend it cannot reach in `stats proxybe`, so the lab waits for
// that line.
//
// Failures throw LabError naming the proxy and its log. Forks: call from a
// thread that holds no locks others need.

#include <chrono>

#include "tools/lab/state.h"

namespace ringwatch::lab {

inline constexpr std::chrono::seconds kEjectSettleTimeout{3};

// Writes the proxy's config from the lab's backends and faults (`healthy`:
// as if there were none) and has the proxy take it: reloaded where its kind
// reloads and it runs, else restarted.
void apply_proxy_config(State& state, Node& proxy, bool healthy);
// Waits until a proxy with eject faults has given up on those backends and
// records how long that took in the faults (settle_ms; -1 if not within
// kEjectSettleTimeout).
void settle_ejections(State& state, Node& proxy);
// After a rolling restart: settle_ejections, or, for a nutcracker without
// an eject fault, until it answers a multi-get cleanly (LabError if it does
// not in time).
void settle_proxy(State& state, Node& proxy);
// Waits until `proxy` answers a multi-get over many keys cleanly (every
// backend it routes to answered), e.g. after `lab up` (memcached's proxy
// accepts clients before its backends are connected); a LabError naming the
// proxy, its last reply and its log otherwise. `after` completes "within 3 s
// after ...".
void wait_serving(const State& state, const Node& proxy, const std::string& after);

}  // namespace ringwatch::lab
