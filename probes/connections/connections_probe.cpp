#include "probes/connections/connections_probe.h"

#include <algorithm>
#include <cmath>
#include <ctime>
#include <initializer_list>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "lib/util/deadlines.h"
#include "lib/util/text.h"
#include "lib/util/time.h"
#include "lib/util/worker_pool.h"
#include "probes/check_findings.h"
#include "probes/connections/backend_peers.h"
#include "probes/connections/proxy_view.h"

namespace ringwatch::probes::connections {

namespace codes = report::codes;
namespace figures = report::figures;

namespace {

using report::Finding;
using report::Severity;

enum class CellState { connected, ejected, missing, idle, unknown };

const char* to_string(CellState state) {
  switch (state) {
    case CellState::connected:
      return "connected";
    case CellState::ejected:
      return "ejected";
    case CellState::missing:
      return "missing";
    case CellState::idle:
      return "idle";
    case CellState::unknown:
      return "unknown";
  }
  return "unknown";
}

struct Cell {
  CellState state = CellState::unknown;
  std::string why;  // "ejected at 14:02:11 UTC, 3 errors"
};

// Every server entry a proxy lists for one spec backend, added up (mcrouter
// can list a destination once per timeout).
struct Merged {
  bool found = false;
  std::vector<std::string> names;
  std::optional<std::int64_t> connections;
  bool ejected = false;
  bool connect_failing = false;
  std::string failing_state;
  std::optional<SystemTime> ejected_at;
  std::int64_t errors = 0, timeouts = 0, requests = 0;
  std::vector<std::string> details;

  void add(const ServerView& server) {
    found = true;
    names.push_back(server.name);
    if (server.connections) connections = connections.value_or(0) + *server.connections;
    ejected = ejected || server.ejected;
    connect_failing = connect_failing || server.connect_failing;
    if (failing_state.empty()) failing_state = server.failing_state;
    if (server.ejected_at && (!ejected_at || *server.ejected_at > *ejected_at)) {
      ejected_at = server.ejected_at;
    }
    errors += server.errors;
    timeouts += server.timeouts;
    requests += server.requests;
    if (!server.detail.empty()) details.push_back(server.name + ": " + server.detail);
  }
};

bool same_endpoint(const net::Endpoint& a, const net::Endpoint& b) {
  if (a.port != b.port) return false;
  const auto x = net::IpAddress::parse(a.host);
  const auto y = net::IpAddress::parse(b.host);
  return x && y ? *x == *y : a.host == b.host;
}

// twemproxy keys a server given by host name, not address, as "host" on port
// 11211 and "host:port" on another port (as it keys addresses, which the
// adapter turns into ServerView::address).
bool is_twemproxy_host_key(std::string_view key, const spec::Backend& backend) {
  constexpr std::uint16_t kDefaultPort = 11211;
  if (!backend.dns_name) return false;
  const std::string& host = *backend.dns_name;
  if (key == host) return backend.port == kDefaultPort;
  return key == host + ":" + std::to_string(backend.port);
}

// The spec backend a proxy's server entry stands for: by name, else by
// address, else by the DNS name the proxy was configured with.
std::optional<std::size_t> match_backend(const ServerView& server, const spec::ClusterSpec& spec) {
  for (std::size_t b = 0; b < spec.backends.size(); ++b) {
    if (server.name == spec.backends[b].name) return b;
  }
  if (server.address) {
    for (std::size_t b = 0; b < spec.backends.size(); ++b) {
      if (same_endpoint(*server.address, spec.backends[b].endpoint())) return b;
    }
  }
  for (std::size_t b = 0; b < spec.backends.size(); ++b) {
    if (is_twemproxy_host_key(server.name, spec.backends[b])) return b;
  }
  return std::nullopt;
}

std::string reason_of(const ViewError& error) {
  // The same words as to_string(kind), but a sentence for the ones that are names.
  if (error.kind == ViewErrorKind::no_endpoint) return "no stats endpoint";
  if (error.kind == ViewErrorKind::not_checked) return "not checked";
  if (error.kind == ViewErrorKind::no_pool) return "no such pool";
  return to_string(error.kind);
}

// The proxy side of one cell. `traffic_seen`: the canary sent this proxy
// traffic for every backend earlier in the round, and the view is current.
Cell proxy_cell(const ProxyView& view, const Merged& merged, bool traffic_seen) {
  if (!merged.found) {
    if (view.lists_servers) return {CellState::missing, "not in its server list"};
    return {CellState::unknown, "the proxy does not report it"};
  }
  const std::string last_ejected =
      merged.ejected_at ? ", last ejected at " + util::format_clock_utc(*merged.ejected_at) : "";
  if (merged.connections && *merged.connections > 0) {
    return {CellState::connected, util::plural(*merged.connections, "connection") + last_ejected};
  }
  std::vector<std::string> counts;
  if (merged.errors > 0) counts.push_back(util::plural(merged.errors, "error"));
  if (merged.timeouts > 0) counts.push_back(util::plural(merged.timeouts, "timeout"));
  const std::string count_text = counts.empty() ? "" : ", " + util::join(counts, ", ");
  if (merged.ejected) {
    if (merged.ejected_at) {
      return {CellState::ejected,
              "ejected at " + util::format_clock_utc(*merged.ejected_at) + count_text};
    }
    return {CellState::ejected, "ejected" + count_text};
  }
  if (merged.connect_failing) {
    return {CellState::missing,
            (merged.failing_state.empty() ? "connection down" : merged.failing_state) + count_text};
  }
  if (!merged.connections) return {CellState::connected, "not marked bad"};
  if (view.keeps_idle_connections &&
      (merged.requests > 0 || merged.errors > 0 || merged.timeouts > 0)) {
    return {CellState::missing, "0 connections, " + util::plural(merged.requests, "request") +
                                    " routed to it" + count_text};
  }
  if (traffic_seen) {
    return {CellState::missing, "0 connections and no requests after the canary's traffic"};
  }
  return {CellState::idle, "0 connections, no traffic seen"};
}

struct BackendSide {
  bool readable = false;
  std::string error;
  std::vector<std::size_t> attributed;    // per proxy: connections from its source addresses
  std::size_t canary = 0;                 // this ringwatch's canary connection
  std::vector<std::string> unattributed;  // could be a proxy without source_addresses
  std::vector<std::string> unknown;       // no proxy's, and every proxy's addresses are known
  std::size_t clients = 0;
  net::Endpoint own;
};

// Every proxy that names a source address, by that address (the proxies of
// one process share it): attributing a backend's peers is then a lookup per
// peer, not a scan of every proxy (1,000 proxies x 1,000 peers x 50 backends
// was most of the 1000x50 audit's CPU).
using ProxiesBySource = std::map<net::IpAddress, std::vector<std::size_t>>;

ProxiesBySource proxies_by_source(const spec::ClusterSpec& spec) {
  ProxiesBySource index;
  for (std::size_t q = 0; q < spec.proxies.size(); ++q) {
    for (const auto& source : spec.proxies[q].source_addresses) {
      auto& proxies = index[source];
      if (proxies.empty() || proxies.back() != q) proxies.push_back(q);
    }
  }
  return index;
}

BackendSide classify_peers(const spec::ClusterSpec& spec, const ProxiesBySource& by_source,
                           const BackendPeers& peers, bool canary_ran) {
  BackendSide side;
  side.readable = true;
  side.own = peers.own;
  side.clients = peers.clients.size();
  side.attributed.assign(spec.proxies.size(), 0);
  const auto own_address = net::IpAddress::parse(peers.own.host);
  // The canary keeps one connection to each backend open across rounds.
  std::size_t canary_allowance = canary_ran ? 1 : 0;
  bool any_proxy_without_addresses = false;
  for (const auto& proxy : spec.proxies) {
    any_proxy_without_addresses = any_proxy_without_addresses || proxy.source_addresses.empty();
  }
  for (const ConnEntry& entry : peers.clients) {
    const auto address = net::IpAddress::parse(entry.peer->host);
    if (canary_allowance > 0 && address && own_address && *address == *own_address) {
      --canary_allowance;
      ++side.canary;
      continue;
    }
    const auto sources = address ? by_source.find(*address) : by_source.end();
    if (sources != by_source.end()) {
      for (std::size_t q : sources->second) ++side.attributed[q];
      continue;
    }
    (any_proxy_without_addresses ? side.unattributed : side.unknown).push_back(entry.describe());
  }
  return side;
}

Cell backend_cell(const spec::Proxy& proxy, const BackendSide& side, std::size_t q) {
  if (!side.readable) return {CellState::unknown, "stats conns unreadable"};
  if (proxy.source_addresses.empty()) {
    return {CellState::unknown,
            "cannot attribute: the spec gives " + proxy.name + " no source_addresses"};
  }
  std::vector<std::string> sources;
  for (const auto& source : proxy.source_addresses) sources.push_back(source.to_string());
  if (side.attributed[q] > 0) {
    return {CellState::connected,
            util::plural(static_cast<std::int64_t>(side.attributed[q]), "connection") + " from " +
                util::join(sources, ", ")};
  }
  return {CellState::missing, "no connection from " + util::join(sources, ", ")};
}

// Counts as "<address> x<n>" for a summary line.
std::string address_counts(const std::vector<std::string>& described) {
  std::map<std::string, std::size_t> counts;
  for (const std::string& text : described) {
    const std::string endpoint = text.substr(0, text.find(' '));
    counts[endpoint.substr(0, endpoint.rfind(':'))]++;
  }
  std::vector<std::string> parts;
  for (const auto& [address, count] : counts)
    parts.push_back(address + " x" + std::to_string(count));
  return util::join(parts, ", ");
}

// What every proxy and backend said this round.
struct Reads {
  std::vector<std::optional<ViewResult>> views;                       // per proxy
  std::vector<SystemTime> read_at;                                    // per proxy
  std::vector<std::optional<Result<BackendPeers, ViewError>>> peers;  // per backend
};

// A peer the canary found stalled this round is not asked again: the round
// would be late by one more deadline for an answer it will not get.
std::optional<ViewError> stalled(const std::optional<CanaryRound>& canary,
                                 std::initializer_list<const net::Endpoint*> endpoints) {
  if (!canary) return std::nullopt;
  for (const net::Endpoint* endpoint : endpoints) {
    if (endpoint == nullptr) continue;
    if (const auto* peer = canary->stalled_at(*endpoint)) {
      return ViewError{ViewErrorKind::not_checked, peer->error + " to the canary this round"};
    }
  }
  return std::nullopt;
}

// One group of proxies sharing a stats endpoint (group_by_stats_endpoint),
// read by their adapter in one go. A proxy the canary found stalled is not
// checked; the others are read as usual.
void read_group(const std::vector<std::size_t>& group, const spec::ClusterSpec& spec,
                const std::optional<CanaryRound>& canary, const util::Deadlines& deadlines,
                Reads& reads) {
  std::vector<const spec::Proxy*> asked;
  std::vector<std::size_t> asked_index;
  for (const std::size_t q : group) {
    const spec::Proxy& proxy = spec.proxies[q];
    // Every adapter may talk to the client port (twemproxy's freshness
    // barrier, the others' stats when the spec names no stats endpoint).
    if (const auto skipped =
            stalled(canary, {&proxy.client, proxy.stats ? &*proxy.stats : nullptr})) {
      reads.views[q] = ViewResult(*skipped);
      reads.read_at[q] = std::chrono::system_clock::now();
      continue;
    }
    asked.push_back(&proxy);
    asked_index.push_back(q);
  }
  if (asked.empty()) return;
  auto views = adapter_for(asked.front()->kind).read_group(asked, spec, deadlines);
  const SystemTime read_at = std::chrono::system_clock::now();
  for (std::size_t i = 0; i < asked.size(); ++i) {
    reads.views[asked_index[i]] = std::move(views[i]);
    reads.read_at[asked_index[i]] = read_at;
  }
}

// Every proxy's view and every backend's peers, read in parallel: one task
// per group of proxies sharing a stats endpoint (a nutcracker process's
// shared stats are read and parsed once a round, not once per pool) and one
// per backend.
Reads read_all(WorkerPool& pool, const spec::ClusterSpec& spec,
               const std::optional<CanaryRound>& canary) {
  const std::vector<std::vector<std::size_t>> groups = group_by_stats_endpoint(spec.proxies);
  const util::Deadlines deadlines = spec.timeouts.deadlines();
  Reads reads;
  reads.views.resize(spec.proxies.size());
  reads.read_at.resize(spec.proxies.size());
  reads.peers.resize(spec.backends.size());
  pool.run_all(groups.size() + spec.backends.size(), [&](std::size_t i) {
    if (i < groups.size()) {
      read_group(groups[i], spec, canary, deadlines, reads);
    } else {
      const net::Endpoint endpoint = spec.backends[i - groups.size()].endpoint();
      const auto skipped = stalled(canary, {&endpoint});
      reads.peers[i - groups.size()] = skipped ? Result<BackendPeers, ViewError>(*skipped)
                                               : read_backend_peers(endpoint, deadlines);
    }
  });
  return reads;
}

// Turns one round's reads into findings, figures and headlines, one method
// per kind of finding: the proxy side, the backend side, then each (proxy,
// backend) link from both sides.
class Audit {
 public:
  // `canary`: what the canary saw earlier in the round, if it ran: which
  // proxies it sent traffic through, and that one peer at our own address is
  // its connection.
  Audit(const spec::ClusterSpec& cluster, const ConnectionsProbe::Options& probe_options,
        const std::optional<CanaryRound>& canary_round, report::Report& round_report,
        CheckFindings& check_findings, ConnectionsRound& round_facts)
      : spec(cluster),
        options(probe_options),
        canary(canary_round),
        report_figures(round_report.figures),
        out(check_findings),
        facts(round_facts),
        proxies(cluster.proxies.size()),
        backends(cluster.backends.size()),
        by_proxy(proxies, std::vector<Cell>(backends)),
        by_backend(proxies, std::vector<Cell>(backends)),
        merged(proxies, std::vector<Merged>(backends)),
        readable(proxies, false),
        sides(backends),
        by_source(proxies_by_source(cluster)) {}

  // A proxy's stats: unreadable, stale, or its servers against the spec.
  void proxy_side(std::size_t q, const ViewResult& result, SystemTime read_at) {
    const spec::Proxy& proxy = spec.proxies[q];
    if (!result) {
      proxy_unreadable(q, result.error());
      return;
    }
    readable[q] = true;
    const ProxyView& view = result.value();
    stale_stats(proxy, view, read_at);
    config_drift(q, view);
    const bool traffic_seen = canary && !canary->unreachable_proxies.contains(proxy.name) &&
                              !canary->proxies_not_read.contains(proxy.name) &&
                              view.freshness != Freshness::unconfirmed;
    std::int64_t connected = 0;
    for (std::size_t b = 0; b < backends; ++b) {
      by_proxy[q][b] = proxy_cell(view, merged[q][b], traffic_seen);
      connected += by_proxy[q][b].state == CellState::connected;
    }
    report_figures[figures::proxy_backends_connected(proxy.name)] = static_cast<double>(connected);
  }

  // A backend's `stats conns`: unreadable, or its peers attributed to proxies.
  void backend_side(std::size_t b, const Result<BackendPeers, ViewError>& result) {
    const spec::Backend& backend = spec.backends[b];
    if (!result) {
      sides[b].error = result.error().message;
      sides[b].attributed.assign(proxies, 0);
      out.add(codes::kBackendStatsUnreadable, Severity::unknown, {.backend = backend.name},
              "stats conns of backend " + backend.name + " unreadable (" +
                  reason_of(result.error()) + "): " + result.error().message)
          .with("reason", std::string(to_string(result.error().kind)));
      warnings.push_back(backend.name + "'s stats conns unreadable (" + reason_of(result.error()) +
                         ")");
    } else {
      sides[b] = classify_peers(spec, by_source, result.value(), canary.has_value());
      report_figures[figures::backend_clients(backend.name)] =
          static_cast<double>(sides[b].clients);
      unknown_peers(b);
    }
    for (std::size_t q = 0; q < proxies; ++q) {
      by_backend[q][b] = backend_cell(spec.proxies[q], sides[b], q);
    }
  }

  // Every (proxy, backend) link, from both sides.
  void links() {
    for (std::size_t q = 0; q < proxies; ++q) {
      std::vector<std::string> idle;
      for (std::size_t b = 0; b < backends; ++b) {
        const Cell& from_proxy = by_proxy[q][b];
        const Cell& from_backend = by_backend[q][b];
        matrix.push_back(spec.proxies[q].name + " -> " + spec.backends[b].name + ": " +
                         to_string(from_proxy.state) + " (proxy), " +
                         to_string(from_backend.state) + " (backend)");
        facts.cells.push_back({{spec.proxies[q].name, spec.backends[b].name},
                               to_string(from_proxy.state),
                               to_string(from_backend.state)});
        const bool backend_says_missing = from_backend.state == CellState::missing;
        if (proxy_says_missing(from_proxy) ||
            (from_proxy.state == CellState::unknown && backend_says_missing)) {
          proxy_missing_backend(q, b);
        } else if (from_proxy.state == CellState::idle) {
          idle.push_back(spec.backends[b].name);
        }
        if (backend_says_missing && from_proxy.state != CellState::idle) backend_missing_peer(q, b);
      }
      if (!idle.empty()) backend_idle(q, idle);
    }
  }

  // Proxies that disagree on the set of backends they use: those they are
  // connected to, and those they still route to and fail (connect_failing).
  void backend_sets() {
    std::map<std::vector<std::string>, std::vector<std::string>> by_set;
    for (std::size_t q = 0; q < proxies; ++q) {
      if (!readable[q]) continue;
      bool decided = true;
      std::vector<std::string> used;
      for (std::size_t b = 0; b < backends; ++b) {
        const CellState state = by_proxy[q][b].state;
        decided = decided && state != CellState::unknown && state != CellState::idle;
        if (state == CellState::connected ||
            (state == CellState::missing && merged[q][b].connect_failing))
          used.push_back(spec.backends[b].name);
      }
      if (decided) by_set[used].push_back(spec.proxies[q].name);
    }
    if (by_set.size() < 2) return;
    std::vector<std::string> groups;
    for (const auto& [used, names] : by_set) {
      groups.push_back(util::join_and(names) + (names.size() == 1 ? " uses " : " use ") +
                       (used.empty() ? std::string("no backend") : util::join(used, ", ")));
    }
    const std::string summary = "proxies disagree on the backend set: " + util::join(groups, "; ");
    out.add(codes::kProxyBackendSetsDiffer, Severity::critical, {}, summary).with("sets", groups);
    sets_headlines.push_back(summary);
  }

  // The matrix and the backends' peers, as evidence every round.
  void connection_matrix() {
    std::vector<std::string> peer_lines;
    for (std::size_t b = 0; b < backends; ++b) peer_lines.push_back(peer_line(b));
    std::int64_t connected = 0;
    for (const auto& row : by_proxy) {
      for (const Cell& cell : row) connected += cell.state == CellState::connected;
    }
    out.add(codes::kConnectionMatrix, Severity::info, {},
            util::plural(static_cast<std::int64_t>(proxies), "proxy", "proxies") + " x " +
                util::plural(static_cast<std::int64_t>(backends), "backend") + ": " +
                std::to_string(connected) + " connected (proxy side)")
        .with("matrix", matrix)
        .with("backend_peers", peer_lines);
  }

  // The check's headline: a pool the spec names and the proxies lack (the
  // audit cannot start there), missing backends, disagreeing sets, config
  // drift, then everything below CRITICAL; the first three of them.
  std::string summary() const {
    std::vector<std::string> all = pool_headlines();
    all.insert(all.end(), headlines.begin(), headlines.end());
    for (const auto* more : {&sets_headlines, &drift_headlines, &warnings}) {
      all.insert(all.end(), more->begin(), more->end());
    }
    if (all.empty()) return healthy_summary();
    constexpr std::size_t kShown = 3;
    std::string summary = util::join(
        std::vector<std::string>(all.begin(), all.begin() + std::min(kShown, all.size())), "; ");
    if (all.size() > kShown) summary += " (+" + std::to_string(all.size() - kShown) + " more)";
    return summary;
  }

 private:
  static bool proxy_says_missing(const Cell& cell) {
    return cell.state == CellState::ejected || cell.state == CellState::missing;
  }

  void proxy_unreadable(std::size_t q, const ViewError& error) {
    const spec::Proxy& proxy = spec.proxies[q];
    for (auto& cell : by_proxy[q]) cell = {CellState::unknown, "stats unreadable"};
    const std::string summary =
        "stats of proxy " + proxy.name + " unreadable (" + reason_of(error) + "): " + error.message;
    Finding& f =
        out.add(codes::kProxyStatsUnreadable, Severity::unknown, {.proxy = proxy.name}, summary)
            .with("reason", std::string(to_string(error.kind)))
            .with("kind", std::string(spec::to_string(proxy.kind)));
    if (error.kind == ViewErrorKind::no_pool) {
      // The cause, said once for every proxy it applies to (pool_headlines).
      f.with("pool", spec.pool_of(proxy));
      pools_missing[error.message].push_back(proxy.name);
      return;
    }
    warnings.push_back(proxy.name + "'s stats unreadable (" + reason_of(error) + ")");
  }

  // 'stats JSON has 2 pools (objects, sessions) and none is named "eu1"
  // (proxies tw1 and tw2: set "pool" in the spec)', once per distinct cause.
  std::vector<std::string> pool_headlines() const {
    std::vector<std::string> lines;
    for (const auto& [message, names] : pools_missing) {
      lines.push_back(message + " (" + (names.size() == 1 ? "proxy " : "proxies ") +
                      util::join_and(names) + ": set \"pool\" in the spec)");
    }
    return lines;
  }

  // Freshness: the stats' own timestamp against our clock, and the barrier.
  void stale_stats(const spec::Proxy& proxy, const ProxyView& view, SystemTime read_at) {
    std::optional<double> age_s;
    if (view.stats_time) {
      age_s = util::seconds_between(read_at, *view.stats_time);  // any peer's time
      report_figures[figures::proxy_stats_age_s(proxy.name)] = *age_s;
    }
    const bool skewed =
        age_s && std::abs(*age_s) * 1000.0 > static_cast<double>(options.stale_after.count());
    if (view.freshness != Freshness::unconfirmed && !skewed) return;
    const std::string why = view.freshness == Freshness::unconfirmed
                                ? view.freshness_note
                                : "the stats' timestamp is " + std::to_string(*age_s) +
                                      " s from this host's clock (limit " +
                                      std::to_string(options.stale_after.count()) + " ms)";
    Finding& f = out.add(codes::kStaleStats, Severity::warning, {.proxy = proxy.name},
                         "stats of proxy " + proxy.name + " may be stale: " + why)
                     .with("freshness", std::string(to_string(view.freshness)));
    if (age_s) f.with("stats_age_s", *age_s);
    if (view.stats_time) f.with("stats_time", util::format_rfc3339(*view.stats_time));
    warnings.push_back(proxy.name + "'s stats may be stale");
  }

  // Matches the proxy's servers to the spec's backends; the rest is drift.
  void config_drift(std::size_t q, const ProxyView& view) {
    const spec::Proxy& proxy = spec.proxies[q];
    if (view.lists_servers) facts.server_lists_compared.insert(proxy.name);
    std::vector<std::string> drift, extra;
    for (const ServerView& server : view.servers) {
      const auto b = match_backend(server, spec);
      if (!b) {
        drift.push_back("has " + server.name + " (not in the spec)");
        extra.push_back(server.name);
        continue;
      }
      merged[q][*b].add(server);
      const auto expected = spec.backends[*b].endpoint();
      if (server.address && !same_endpoint(*server.address, expected)) {
        drift.push_back(spec.backends[*b].name + " is at " + server.address->to_string() +
                        " (spec: " + expected.to_string() + ")");
      }
    }
    for (std::size_t b = 0; b < backends; ++b) {
      if (view.lists_servers && !merged[q][b].found) {
        drift.push_back("lacks " + spec.backends[b].name);
      }
    }
    if (drift.empty()) return;
    bool names_only = true;
    for (const ServerView& server : view.servers) names_only = names_only && !server.address;
    out.add(codes::kProxyConfigDrift, Severity::critical, {.proxy = proxy.name},
            "server list of proxy " + proxy.name +
                " differs from the spec: " + util::join(drift, "; "))
        .with("differences", drift)
        .with("compared_by",
              std::string(names_only ? "names only (the proxy does not report addresses)"
                                     : "names and addresses"));
    facts.drift.push_back({proxy.name, drift, extra, out.last_index()});
    drift_headlines.push_back(proxy.name + "'s server list differs from the spec");
  }

  void unknown_peers(std::size_t b) {
    const BackendSide& side = sides[b];
    if (side.unknown.empty()) return;
    const spec::Backend& backend = spec.backends[b];
    const auto count = static_cast<std::int64_t>(side.unknown.size());
    out.add(codes::kUnknownPeer, Severity::warning, {.backend = backend.name},
            "backend " + backend.name + " has " + util::plural(count, "connection") + " from " +
                address_counts(side.unknown) + ", no proxy's source address")
        .with("peers", side.unknown);
    warnings.push_back(backend.name + " has " + util::plural(count, "unknown peer"));
  }

  // The proxy says it has no connection, or cannot say and the backend does.
  void proxy_missing_backend(std::size_t q, std::size_t b) {
    const std::string& proxy_name = spec.proxies[q].name;
    const std::string& backend_name = spec.backends[b].name;
    const Cell& from_proxy = by_proxy[q][b];
    const Cell& from_backend = by_backend[q][b];
    const std::string why = proxy_says_missing(from_proxy)
                                ? from_proxy.why
                                : backend_name + " sees " + from_backend.why + "; " + proxy_name +
                                      "'s stats unreadable";
    const std::string summary =
        "proxy " + proxy_name + " is not connected to " + backend_name + " (" + why + ")";
    const Merged& m = merged[q][b];
    Finding& f = out.add(codes::kProxyMissingBackend, Severity::critical,
                         {.proxy = proxy_name, .backend = backend_name}, summary)
                     .with("proxy_side", std::string(to_string(from_proxy.state)))
                     .with("proxy_side_detail", from_proxy.why)
                     .with("backend_side", std::string(to_string(from_backend.state)))
                     .with("backend_side_detail", from_backend.why);
    if (m.found) {
      f.with("server_names", m.names);
      if (m.connections) f.with("connections", *m.connections);
      f.with("requests", m.requests)
          .with("errors", m.errors)
          .with("timeouts", m.timeouts)
          .with("proxy_stats", m.details);
      if (m.ejected_at) f.with("ejected_at", util::format_rfc3339(*m.ejected_at));
    }
    facts.missing.push_back({{proxy_name, backend_name},
                             why,
                             out.last_index(),
                             proxy_says_missing(from_proxy) && m.connect_failing && !m.ejected});
    headlines.push_back(summary);
  }

  // The backend's side on its own, where it can be attributed. Against a
  // proxy that reports a connection it is a contradiction (a wrong
  // source_addresses in the spec, or NAT), not a missing backend.
  void backend_missing_peer(std::size_t q, std::size_t b) {
    const std::string& proxy_name = spec.proxies[q].name;
    const std::string& backend_name = spec.backends[b].name;
    const Cell& from_proxy = by_proxy[q][b];
    const bool contradicts = from_proxy.state == CellState::connected;
    std::vector<std::string> sources;
    for (const auto& source : spec.proxies[q].source_addresses) {
      sources.push_back(source.to_string());
    }
    std::string summary = "backend " + backend_name + " has no connection from proxy " +
                          proxy_name + "'s source addresses (" + util::join(sources, ", ") + ")";
    if (contradicts) {
      summary += ", although " + proxy_name + " reports " + from_proxy.why +
                 " to it (wrong source_addresses in the spec, or NAT?)";
    }
    out.add(codes::kBackendMissingPeer, contradicts ? Severity::warning : Severity::critical,
            {.proxy = proxy_name, .backend = backend_name}, summary)
        .with("proxy_side", std::string(to_string(from_proxy.state)))
        .with("proxy_side_detail", from_proxy.why)
        .with("source_addresses", sources);
    facts.peers_missing.push_back({{proxy_name, backend_name}, out.last_index()});
    if (contradicts) {
      warnings.push_back(backend_name + " does not see " + proxy_name +
                         "'s connection from its source addresses");
    }
  }

  void backend_idle(std::size_t q, const std::vector<std::string>& idle) {
    const std::string& proxy_name = spec.proxies[q].name;
    out.add(codes::kBackendIdle, Severity::info, {.proxy = proxy_name},
            "proxy " + proxy_name + " holds no connection to " + util::join_and(idle) +
                " and has sent " + (idle.size() == 1 ? "it" : "them") +
                " no requests yet (undecided; run the canary check first for a decision)")
        .with("backends", idle);
  }

  // "b1: 4 clients: 1 this probe's canary, 3 cannot attribute (127.0.0.1 x3)"
  std::string peer_line(std::size_t b) const {
    const BackendSide& side = sides[b];
    const std::string& name = spec.backends[b].name;
    if (!side.readable) return name + ": stats conns unreadable";
    std::vector<std::string> parts;
    for (std::size_t q = 0; q < proxies; ++q) {
      if (side.attributed[q] > 0) {
        parts.push_back(std::to_string(side.attributed[q]) + " from " + spec.proxies[q].name);
      }
    }
    if (side.canary > 0) parts.push_back(std::to_string(side.canary) + " this probe's canary");
    if (!side.unattributed.empty()) {
      parts.push_back(std::to_string(side.unattributed.size()) + " cannot attribute (" +
                      address_counts(side.unattributed) + ")");
    }
    if (!side.unknown.empty()) {
      parts.push_back(std::to_string(side.unknown.size()) + " unknown (" +
                      address_counts(side.unknown) + ")");
    }
    return name + ": " + util::plural(static_cast<std::int64_t>(side.clients), "client") +
           (parts.empty() ? "" : ": " + util::join(parts, ", "));
  }

  std::string healthy_summary() const {
    std::size_t complete = 0;
    for (const auto& row : by_proxy) {
      complete += std::all_of(row.begin(), row.end(),
                              [](const Cell& cell) { return cell.state == CellState::connected; });
    }
    const std::string all_backends =
        "all " + util::plural(static_cast<std::int64_t>(backends), "backend");
    if (complete == proxies) {
      return util::plural(static_cast<std::int64_t>(proxies), "proxy", "proxies") +
             " connected to " + all_backends;
    }
    return std::to_string(complete) + " of " + std::to_string(proxies) + " proxies connected to " +
           all_backends + "; the others have sent some backends no traffic yet (idle)";
  }

  const spec::ClusterSpec& spec;
  const ConnectionsProbe::Options& options;
  const std::optional<CanaryRound>& canary;
  std::map<std::string, double>& report_figures;
  CheckFindings& out;
  ConnectionsRound& facts;
  const std::size_t proxies, backends;
  std::vector<std::vector<Cell>> by_proxy, by_backend;  // [proxy][backend]
  std::vector<std::vector<Merged>> merged;              // [proxy][backend]
  std::vector<bool> readable;                           // per proxy
  std::vector<BackendSide> sides;                       // per backend
  const ProxiesBySource by_source;
  std::vector<std::string> matrix;
  // Headlines for the check's summary, by kind (see summary()).
  std::vector<std::string> headlines, sets_headlines, drift_headlines, warnings;
  std::map<std::string, std::vector<std::string>> pools_missing;  // message -> proxies
};

}  // namespace

ConnectionsProbe::ConnectionsProbe() : ConnectionsProbe(Options{}) {}
ConnectionsProbe::ConnectionsProbe(Options options) : options_(options) {}
ConnectionsProbe::~ConnectionsProbe() = default;

void ConnectionsProbe::run(const spec::ClusterSpec& spec, RoundContext& round,
                           report::Report& report) {
  CheckFindings out(name(), report);
  const std::size_t proxies = spec.proxies.size();
  const std::size_t backends = spec.backends.size();
  if (!pool_) {
    pool_ = std::make_unique<WorkerPool>(std::clamp<std::size_t>(
        proxies + backends, 1, std::max<std::size_t>(1, options_.max_parallel_reads)));
  }
  const Reads reads = read_all(*pool_, spec, round.canary);
  Audit audit(spec, options_, round.canary, report, out, round.connections.emplace());
  for (std::size_t q = 0; q < proxies; ++q) audit.proxy_side(q, *reads.views[q], reads.read_at[q]);
  for (std::size_t b = 0; b < backends; ++b) audit.backend_side(b, *reads.peers[b]);
  audit.links();
  audit.backend_sets();
  audit.connection_matrix();
  report.figures[figures::kConnectionsMs] = out.finish(audit.summary());
}

}  // namespace ringwatch::probes::connections
