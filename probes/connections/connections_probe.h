#pragma once
// The connection audit: invariant 3 of docs/architecture.md.
//
// A round:
//   proxy side    every proxy's adapter (proxy_view.h) reads the proxy's own
//                 view of its servers: connections, ejections, errors,
//                 requests, and the servers it is configured with;
//   backend side  every backend's `stats conns` (backend_peers.h) lists its
//                 TCP clients, our own connection left out;
//   matrix        each (proxy, backend) cell is connected, ejected, missing,
//                 idle or unknown, from the proxy side and, where the spec
//                 gives the proxy's source_addresses, from the backend side.
//
// Proxy-side rules (twemproxy measured on nutcracker 0.5.0, see README.md):
//   connections > 0                       connected (an old ejection is noted)
//   ejected (0 connections, ejected_at)   ejected
//   not in the proxy's server list        missing (and config drift)
//   0 connections and requests, errors or timeouts seen
//                                         missing (a proxy that keeps idle
//                                         connections, i.e. twemproxy, has lost it)
//   0 connections, no traffic, and the canary ran through this proxy earlier
//   in the same round (reached it, and did not leave it out: proxies_per_round)
//   with stats shown fresh
//                                         missing (it was sent traffic and
//                                         still holds no connection)
//   0 connections, no traffic otherwise   idle: undecided, an info finding
// The backend side never guesses a name: peers are attributed to a proxy only
// by its source_addresses; when a proxy has none, peers that could be it are
// counted as "cannot attribute". One peer at the probe's own address is this
// ringwatch's canary connection when the canary ran in the round.
// Whether the canary ran, and which proxies it could not reach, the audit reads
// from the round context (RoundContext::canary); it tells the round which links
// it finds broken (RoundContext::connections).
//
// Findings (check "connections"): proxy_missing_backend, proxy_backend_sets_differ,
// proxy_config_drift (CRITICAL); backend_missing_peer (CRITICAL, or WARNING when
// the proxy reports the connection: then the spec's source_addresses or NAT are
// suspect); stale_stats, unknown_peer (WARNING); proxy_stats_unreadable,
// backend_stats_unreadable (UNKNOWN); backend_idle, connection_matrix (INFO).
// Figures: proxy_backends_connected/<proxy>, proxy_stats_age_s/<proxy>,
// backend_clients/<backend>, connections_ms.
//
// Thread-safety: one thread at a time per ConnectionsProbe (see probes/probe.h);
// it runs its reads on its own worker threads.

#include <chrono>
#include <cstddef>
#include <memory>

#include "probes/probe.h"

namespace ringwatch {
class WorkerPool;
}

namespace ringwatch::probes::connections {

class ConnectionsProbe final : public Probe {
 public:
  struct Options {
    // Stats whose own timestamp is further than this from our clock are
    // stale: 3 x the lab's 1 s stats interval. (twemproxy stamps the reply
    // time, so this catches clock skew and replayed documents; lag in the
    // data itself is handled by the read barrier, see adapters.cpp.)
    std::chrono::milliseconds stale_after{3000};
    std::size_t max_parallel_reads = 16;
  };

  ConnectionsProbe();
  explicit ConnectionsProbe(Options options);
  ~ConnectionsProbe() override;
  std::string_view name() const override { return report::checks::kConnections; }
  void run(const spec::ClusterSpec& spec, RoundContext& round, report::Report& report) override;

 private:
  Options options_;
  std::unique_ptr<WorkerPool> pool_;
};

}  // namespace ringwatch::probes::connections
