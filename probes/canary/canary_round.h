#pragma once
// The canary probe's round data, shared by its two halves: canary_probe.cpp
// observes (writes, reads and locates canaries, and turns what it saw into a
// verdict per canary) and canary_findings.cpp judges (turns the verdicts into
// findings). Plain data; see canary_probe.h for the round itself.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "lib/mc/client.h"

namespace ringwatch::probes::canary {

// No proxy or backend: an unknown route, a canary not learned anywhere.
inline constexpr std::size_t kNone = static_cast<std::size_t>(-1);
// A route to a server that is not in the spec: this pass's value, read back
// through a proxy, that none of the spec's backends holds while every one of
// them answered. Never a reference route (see Reference).
inline constexpr std::size_t kOutside = kNone - 1;

// How one proxy read one canary, against what its writer wrote.
enum class ReadClass { ok, miss, stale, foreign, error };

// A canary key, learned once and written every round.
struct Canary {
  std::string key;
  std::size_t writer = 0;  // proxy index that writes it each round
  // Backend the ring puts it on when learned, or kOutside: a key some proxy
  // routed outside the spec and none to a backend of the spec.
  std::size_t learned = kNone;
};

// What one proxy read for one canary: nothing, a value, or an error.
struct Cell {
  enum class Kind { miss, value, error } kind = Kind::miss;
  std::string value;
};

// Everything one pass of write, read and locate saw.
struct Observation {
  std::uint64_t round = 0;
  std::vector<std::optional<mc::Error>> write_error;   // per proxy
  std::vector<std::optional<mc::Error>> read_error;    // per proxy, whole batch
  std::vector<std::vector<Cell>> reads;                // [proxy][canary]
  std::vector<std::optional<mc::Error>> locate_error;  // per backend
  std::vector<mc::Values> held;                        // [backend]
  // Per proxy: not read through in this pass (proxies_per_round); empty: none.
  std::vector<char> skipped;
  // Per canary: looked up only on the backend it was learned on, so a value
  // found nowhere is not proof of a route outside the spec; empty: every
  // canary was looked up on every backend.
  std::vector<char> learned_only;
  double write_ms = 0, read_ms = 0, locate_ms = 0;
  std::size_t reads_issued = 0, locates_issued = 0, writes_issued = 0;
  // The learning that placed the canaries: the candidates it tried, and those
  // every reachable proxy answered with an error, which it could place
  // nowhere (memcached's proxy fails the keys of a backend it cannot reach).
  std::size_t learn_candidates = 0, learn_failed_everywhere = 0;

  // The pass has no word from this proxy: it could not be reached, or it
  // was not read through (skipped).
  bool proxy_down(std::size_t proxy) const {
    return proxy_skipped(proxy) || proxy_unreachable(proxy);
  }
  bool proxy_skipped(std::size_t proxy) const {
    return proxy < skipped.size() && skipped[proxy] != 0;
  }
  bool proxy_unreachable(std::size_t proxy) const {
    return write_error[proxy].has_value() || read_error[proxy].has_value();
  }
  std::size_t proxies_read() const {
    std::size_t count = 0;
    for (std::size_t q = 0; q < write_error.size(); ++q) count += !proxy_skipped(q);
    return count;
  }
  bool located_everywhere(std::size_t canary) const {
    return canary >= learned_only.size() || learned_only[canary] == 0;
  }
  // False for kNone and kOutside: only a backend of the spec can be down.
  bool backend_down(std::size_t backend) const {
    return backend < locate_error.size() && locate_error[backend].has_value();
  }
  bool any_backend_down() const {
    for (const auto& error : locate_error) {
      if (error) return true;
    }
    return false;
  }
};

// How a canary's reference route was decided.
enum class Reference {
  none,      // no majority, and the whole proxies do not settle it
  majority,  // a strict majority of the responsive proxies routes it there
  // No majority (one or two proxies): every whole proxy routes it there. A
  // proxy is whole when it routes canaries to every reachable backend that
  // any proxy routes canaries to, and none outside the spec (settle_routes).
  whole_proxies,
};

// What one pass says about one canary.
struct KeyVerdict {
  bool written = false;              // the writer's batch went through
  std::size_t writer_route = kNone;  // backend holding the writer's value
  std::vector<ReadClass> cls;        // per proxy
  std::vector<std::size_t> route;    // per proxy, kNone = unknown, kOutside
  std::size_t consensus = kNone;     // the reference route: a backend of the spec, or kNone
  Reference reference = Reference::none;
  bool all_ok(const Observation& obs) const {
    for (std::size_t q = 0; q < cls.size(); ++q) {
      if (!obs.proxy_down(q) && cls[q] != ReadClass::ok) return false;
    }
    return true;
  }
};

}  // namespace ringwatch::probes::canary
