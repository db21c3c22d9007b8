#pragma once
// The round context: what the checks of one round tell the checks that run
// after them and the diagnosis, as typed facts, so that no one scans another
// check's finding codes or reads a finding's summary. The registry runs the
// probes of a round in its table's order and hands them one RoundContext;
// each probe fills in its own part (the canary, which runs first, says which
// proxies it could not reach; the connection audit reads that). A part is
// empty when its check did not run this round. A fact names the finding that
// reports it by its index in Report::findings, so the diagnosis can cite it.
//
// Plain data, used by one thread at a time (the round's).

#include <compare>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "lib/net/address.h"

namespace ringwatch::probes {

// A proxy and one of its backends.
struct Link {
  std::string proxy;
  std::string backend;
  friend auto operator<=>(const Link&, const Link&) = default;
};

// What the canary saw.
struct CanaryRound {
  // Proxies it could not write through or read from: no canary traffic went
  // through them this round.
  std::set<std::string> unreachable_proxies;
  // The finding (proxy_unreachable) of each of them.
  struct UnreachableProxy {
    std::string proxy;
    std::size_t finding = 0;
  };
  std::vector<UnreachableProxy> unreachable_proxy_findings;
  // Proxies this round left out (canary.proxies_per_round reads through a
  // rotating subset): no canary traffic went through them either.
  std::set<std::string> proxies_not_read;

  // The backends each reachable proxy routed canaries to.
  std::map<std::string, std::set<std::string>> routed;

  // A proxy that routes none of a backend's canaries (ring_divergence): it
  // routed `routed` of the `canaries` the others put there. Also the only
  // proxy of a cluster routing no canary to a backend (backend_not_routed),
  // with `canaries` those learned there (often 0).
  struct Missing {
    Link link;
    std::int64_t routed = 0;
    std::int64_t canaries = 0;
    std::size_t finding = 0;
  };
  std::vector<Missing> missing;

  // A proxy that answers errors for every canary of a backend the probe
  // reaches (proxy_backend_errors): it routes them there and cannot reach it
  // (memcached's proxy keeps a backend it cannot connect to and answers
  // SERVER_ERROR for its keys, where twemproxy would eject it).
  struct Failing {
    Link link;
    std::int64_t failed = 0;
    std::int64_t canaries = 0;
    std::string error;  // the proxy's words, e.g. "SERVER_ERROR backend failure"
    std::size_t finding = 0;
  };
  std::vector<Failing> failing;

  // A backend the canary could not reach (backend_unreachable, backend_timeout).
  struct UnreachableBackend {
    std::string backend;
    std::size_t finding = 0;
  };
  std::vector<UnreachableBackend> unreachable_backends;

  // A peer (a proxy's client port, a backend) that took the connection but
  // did not answer within the io deadline. The checks after the canary do
  // not wait on it again this round, so a stalled node makes the round late
  // by one deadline, not one per check: they report it as not checked, with
  // `error` as the reason.
  struct Stalled {
    net::Endpoint endpoint;
    std::string error;  // "127.10.0.12:11211: no reply within 1000 ms"
  };
  std::vector<Stalled> stalled;
  const Stalled* stalled_at(const net::Endpoint& endpoint) const {
    for (const Stalled& peer : stalled) {
      if (peer.endpoint == endpoint) return &peer;
    }
    return nullptr;
  }
  // A proxy that routes `canaries` of the `considered` ones to a server that
  // is not in the spec (routed_outside_spec).
  struct Outside {
    std::string proxy;
    std::int64_t canaries = 0;
    std::int64_t considered = 0;
    std::size_t finding = 0;
  };
  std::vector<Outside> outside;

  // Canaries the proxies disagree on with no reference route, so the canary
  // names no proxy (ring_disagreement): the proxies compared, in spec order.
  struct Disagreement {
    std::vector<std::string> proxies;
    std::int64_t canaries = 0;
    std::size_t finding = 0;
  };
  std::optional<Disagreement> disagreement;
};

// What the connection audit saw.
struct ConnectionsRound {
  // A proxy without a connection to a backend (proxy_missing_backend); `why`
  // in a few words, e.g. "ejected at 14:02:11 UTC, 3 errors". `still_routed`:
  // the proxy keeps the backend's keys and fails them (memcached's proxy
  // marks it bad, mcrouter's connection is down) instead of routing around it.
  struct Missing {
    Link link;
    std::string why;
    std::size_t finding = 0;
    bool still_routed = false;
  };
  std::vector<Missing> missing;

  // A backend that sees no connection from a proxy's source addresses
  // (backend_missing_peer).
  struct PeerMissing {
    Link link;
    std::size_t finding = 0;
  };
  std::vector<PeerMissing> peers_missing;

  // Proxies whose configured server list the audit read and compared with
  // the spec's backends.
  std::set<std::string> server_lists_compared;
  // One of them whose list differs (proxy_config_drift): the differences in
  // the finding's words ("lacks b4", "has b9 (not in the spec)"), and the
  // servers it has that the spec does not list.
  struct Drift {
    std::string proxy;
    std::vector<std::string> differences;
    std::vector<std::string> extra;
    std::size_t finding = 0;
  };
  std::vector<Drift> drift;

  // Every link from both sides: the proxy's stats ("connected", "ejected",
  // "missing", "idle", "unknown") and the backend's peers ("connected",
  // "missing", "unknown").
  struct Cell {
    Link link;
    std::string proxy_side;
    std::string backend_side;
  };
  std::vector<Cell> cells;
};

// What the DNS audit saw.
struct DnsRound {
  // A backend's name answering outside its expected range at a vantage point
  // (dns_outside_range).
  struct Outside {
    std::string backend;
    std::string vantage;
    std::vector<std::string> answers;  // the addresses outside
    std::string expected_cidr;
    std::size_t finding = 0;
  };
  std::vector<Outside> outside;

  // Every (backend, vantage point) lookup: its addresses and verdict
  // ("expected", "outside", "no_answer", "undecided").
  struct Answer {
    std::string backend;
    std::string node;
    std::string vantage;
    std::vector<std::string> addresses;
    std::string verdict;
  };
  std::vector<Answer> answers;
};

struct RoundContext {
  std::optional<CanaryRound> canary;
  std::optional<ConnectionsRound> connections;
  std::optional<DnsRound> dns;
};

}  // namespace ringwatch::probes
