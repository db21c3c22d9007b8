#include "probes/connections/connections_probe.h"

#include <algorithm>
#include <cmath>
#include <ctime>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "lib/util/text.h"
#include "lib/util/time.h"
#include "lib/util/worker_pool.h"
#include "probes/connections/backend_peers.h"
#include "probes/connections/proxy_view.h"

namespace ringwatch::probes::connections {

namespace codes = report::codes;
namespace figures = report::figures;

namespace {

using Clock = std::chrono::steady_clock;
using report::Finding;
using report::Severity;

constexpr const char* kCheck = report::checks::kConnections;

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
  std::optional<SystemTime> ejected_at;
  std::int64_t errors = 0, timeouts = 0, requests = 0;
  std::vector<std::string> details;

  void add(const ServerView& server) {
    found = true;
    names.push_back(server.name);
    if (server.connections) connections = connections.value_or(0) + *server.connections;
    ejected = ejected || server.ejected;
    connect_failing = connect_failing || server.connect_failing;
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

// The spec backend a proxy's server entry stands for: by name, else by address.
std::optional<std::size_t> match_backend(const ServerView& server, const spec::ClusterSpec& spec) {
  for (std::size_t b = 0; b < spec.backends.size(); ++b) {
    if (server.name == spec.backends[b].name) return b;
  }
  if (server.address) {
    for (std::size_t b = 0; b < spec.backends.size(); ++b) {
      if (same_endpoint(*server.address, spec.backends[b].endpoint())) return b;
    }
  }
  return std::nullopt;
}

std::string reason_of(const ViewError& error) {
  // The same words as to_string(kind), but a sentence for the one that is a name.
  return error.kind == ViewErrorKind::no_endpoint ? "no stats endpoint" : to_string(error.kind);
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
  if (!merged.connections) return {CellState::connected, "not marked bad"};
  if (merged.connect_failing) return {CellState::missing, "connection down" + count_text};
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

BackendSide classify_peers(const spec::ClusterSpec& spec, const BackendPeers& peers,
                           bool canary_ran) {
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
    bool attributed = false;
    for (std::size_t q = 0; q < spec.proxies.size(); ++q) {
      for (const auto& source : spec.proxies[q].source_addresses) {
        if (address && *address == source) {
          ++side.attributed[q];
          attributed = true;
          break;
        }
      }
    }
    if (attributed) continue;
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

}  // namespace

ConnectionsProbe::ConnectionsProbe() : ConnectionsProbe(Options{}) {}
ConnectionsProbe::ConnectionsProbe(Options options) : options_(options) {}
ConnectionsProbe::~ConnectionsProbe() = default;

void ConnectionsProbe::run(const spec::ClusterSpec& spec, report::Report& report) {
  const auto start = Clock::now();
  const std::size_t proxies = spec.proxies.size();
  const std::size_t backends = spec.backends.size();
  const Deadlines deadlines{spec.timeouts.connect, spec.timeouts.io};

  // Did the canary send traffic through each proxy earlier in this round?
  bool canary_ran = false;
  for (const auto& check : report.checks)
    canary_ran = canary_ran || check.name == report::checks::kCanary;
  std::set<std::string> canary_missed;
  for (const auto& finding : report.findings) {
    if (finding.check == report::checks::kCanary && finding.code == codes::kProxyUnreachable) {
      canary_missed.insert(finding.subject.proxy);
    }
  }

  // ---- Read every proxy and every backend, in parallel ----
  if (!pool_) {
    pool_ = std::make_unique<WorkerPool>(std::clamp<std::size_t>(
        proxies + backends, 1, std::max<std::size_t>(1, options_.max_parallel_reads)));
  }
  std::vector<std::optional<ViewResult>> views(proxies);
  std::vector<std::optional<Result<BackendPeers, ViewError>>> peers(backends);
  std::vector<SystemTime> read_at(proxies);
  pool_->run_all(proxies + backends, [&](std::size_t i) {
    if (i < proxies) {
      const spec::Proxy& proxy = spec.proxies[i];
      views[i] = adapter_for(proxy.kind).read(proxy, spec, deadlines);
      read_at[i] = std::chrono::system_clock::now();
    } else {
      peers[i - proxies] = read_backend_peers(spec.backends[i - proxies].endpoint(), deadlines);
    }
  });

  std::vector<Finding> findings;
  auto finding = [&](std::string code, Severity severity, report::Subject subject,
                     std::string summary) -> Finding& {
    findings.push_back(
        Finding{kCheck, std::move(code), severity, std::move(subject), std::move(summary), {}});
    return findings.back();
  };
  // Headlines for the check's summary, in this order: missing backends,
  // disagreeing sets, config drift, then everything below CRITICAL.
  std::vector<std::string> headlines, sets_headlines, drift_headlines, warnings;
  auto& figures = report.figures;

  // ---- Proxy side ----
  std::vector<std::vector<Cell>> by_proxy(proxies, std::vector<Cell>(backends));
  std::vector<std::vector<Merged>> merged(proxies, std::vector<Merged>(backends));
  std::vector<bool> readable(proxies, false);
  for (std::size_t q = 0; q < proxies; ++q) {
    const spec::Proxy& proxy = spec.proxies[q];
    const ViewResult& result = *views[q];
    if (!result) {
      const ViewError& error = result.error();
      for (auto& cell : by_proxy[q]) cell = {CellState::unknown, "stats unreadable"};
      const std::string summary = "stats of proxy " + proxy.name + " unreadable (" +
                                  reason_of(error) + "): " + error.message;
      finding(codes::kProxyStatsUnreadable, Severity::unknown, {.proxy = proxy.name}, summary)
          .with("reason", std::string(to_string(error.kind)))
          .with("kind", std::string(spec::to_string(proxy.kind)));
      warnings.push_back(proxy.name + "'s stats unreadable (" + reason_of(error) + ")");
      continue;
    }
    readable[q] = true;
    const ProxyView& view = result.value();

    // Freshness: the stats' own timestamp against our clock, and the barrier.
    std::optional<double> age_s;
    if (view.stats_time) {
      age_s = std::chrono::duration<double>(read_at[q] - *view.stats_time).count();
      figures[figures::proxy_stats_age_s(proxy.name)] = *age_s;
    }
    const bool skewed =
        age_s && std::abs(*age_s) * 1000.0 > static_cast<double>(options_.stale_after.count());
    if (view.freshness == Freshness::unconfirmed || skewed) {
      std::string why = view.freshness == Freshness::unconfirmed
                            ? view.freshness_note
                            : "the stats' timestamp is " + std::to_string(*age_s) +
                                  " s from this host's clock (limit " +
                                  std::to_string(options_.stale_after.count()) + " ms)";
      Finding& f = finding(codes::kStaleStats, Severity::warning, {.proxy = proxy.name},
                           "stats of proxy " + proxy.name + " may be stale: " + why)
                       .with("freshness", std::string(to_string(view.freshness)));
      if (age_s) f.with("stats_age_s", *age_s);
      if (view.stats_time) f.with("stats_time", util::format_rfc3339(*view.stats_time));
      warnings.push_back(proxy.name + "'s stats may be stale");
    }

    // Match the proxy's servers to the spec's backends; the rest is drift.
    std::vector<std::string> drift;
    for (const ServerView& server : view.servers) {
      const auto b = match_backend(server, spec);
      if (!b) {
        drift.push_back("has " + server.name + " (not in the spec)");
        continue;
      }
      merged[q][*b].add(server);
      const auto expected = spec.backends[*b].endpoint();
      if (server.address && !same_endpoint(*server.address, expected)) {
        drift.push_back(spec.backends[*b].name + " is at " + server.address->to_string() +
                        " (spec: " + expected.to_string() + ")");
      }
    }
    const bool traffic_seen = canary_ran && !canary_missed.contains(proxy.name) &&
                              view.freshness != Freshness::unconfirmed;
    for (std::size_t b = 0; b < backends; ++b) {
      if (view.lists_servers && !merged[q][b].found) {
        drift.push_back("lacks " + spec.backends[b].name);
      }
      by_proxy[q][b] = proxy_cell(view, merged[q][b], traffic_seen);
    }
    if (!drift.empty()) {
      bool names_only = true;
      for (const ServerView& server : view.servers) names_only = names_only && !server.address;
      finding(codes::kProxyConfigDrift, Severity::critical, {.proxy = proxy.name},
              "server list of proxy " + proxy.name +
                  " differs from the spec: " + util::join(drift, "; "))
          .with("differences", drift)
          .with("compared_by",
                std::string(names_only ? "names only (the proxy does not report addresses)"
                                       : "names and addresses"));
      drift_headlines.push_back(proxy.name + "'s server list differs from the spec");
    }
    std::int64_t connected = 0;
    for (const Cell& cell : by_proxy[q]) connected += cell.state == CellState::connected;
    figures[figures::proxy_backends_connected(proxy.name)] = static_cast<double>(connected);
  }

  // ---- Backend side ----
  std::vector<BackendSide> sides(backends);
  for (std::size_t b = 0; b < backends; ++b) {
    const spec::Backend& backend = spec.backends[b];
    const auto& result = *peers[b];
    if (!result) {
      sides[b].error = result.error().message;
      sides[b].attributed.assign(proxies, 0);
      finding(codes::kBackendStatsUnreadable, Severity::unknown, {.backend = backend.name},
              "stats conns of backend " + backend.name + " unreadable (" +
                  reason_of(result.error()) + "): " + result.error().message)
          .with("reason", std::string(to_string(result.error().kind)));
      warnings.push_back(backend.name + "'s stats conns unreadable (" + reason_of(result.error()) +
                         ")");
      continue;
    }
    sides[b] = classify_peers(spec, result.value(), canary_ran);
    figures[figures::backend_clients(backend.name)] = static_cast<double>(sides[b].clients);
    if (!sides[b].unknown.empty()) {
      const auto count = static_cast<std::int64_t>(sides[b].unknown.size());
      finding(codes::kUnknownPeer, Severity::warning, {.backend = backend.name},
              "backend " + backend.name + " has " + util::plural(count, "connection") + " from " +
                  address_counts(sides[b].unknown) + ", no proxy's source address")
          .with("peers", sides[b].unknown);
      warnings.push_back(backend.name + " has " + util::plural(count, "unknown peer"));
    }
  }
  std::vector<std::vector<Cell>> by_backend(proxies, std::vector<Cell>(backends));
  for (std::size_t q = 0; q < proxies; ++q) {
    for (std::size_t b = 0; b < backends; ++b) {
      by_backend[q][b] = backend_cell(spec.proxies[q], sides[b], q);
    }
  }

  // ---- Cells -> findings ----
  std::vector<std::string> matrix;
  for (std::size_t q = 0; q < proxies; ++q) {
    const std::string& proxy_name = spec.proxies[q].name;
    std::vector<std::string> idle;
    for (std::size_t b = 0; b < backends; ++b) {
      const std::string& backend_name = spec.backends[b].name;
      const Cell& from_proxy = by_proxy[q][b];
      const Cell& from_backend = by_backend[q][b];
      matrix.push_back(proxy_name + " -> " + backend_name + ": " + to_string(from_proxy.state) +
                       " (proxy), " + to_string(from_backend.state) + " (backend)");
      const bool proxy_says_missing =
          from_proxy.state == CellState::ejected || from_proxy.state == CellState::missing;
      const bool backend_says_missing = from_backend.state == CellState::missing;
      if (proxy_says_missing || (from_proxy.state == CellState::unknown && backend_says_missing)) {
        std::string why = proxy_says_missing ? from_proxy.why
                                             : backend_name + " sees " + from_backend.why + "; " +
                                                   proxy_name + "'s stats unreadable";
        const std::string summary =
            "proxy " + proxy_name + " is not connected to " + backend_name + " (" + why + ")";
        const Merged& m = merged[q][b];
        Finding& f = finding(codes::kProxyMissingBackend, Severity::critical,
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
        headlines.push_back(summary);
      } else if (from_proxy.state == CellState::idle) {
        idle.push_back(backend_name);
      }
      // The backend's side on its own, where it can be attributed. Against a
      // proxy that reports a connection it is a contradiction (a wrong
      // source_addresses in the spec, or NAT), not a missing backend.
      if (backend_says_missing && from_proxy.state != CellState::idle) {
        const bool contradicts = from_proxy.state == CellState::connected;
        std::vector<std::string> sources;
        for (const auto& source : spec.proxies[q].source_addresses) {
          sources.push_back(source.to_string());
        }
        std::string summary = "backend " + backend_name + " has no connection from proxy " +
                              proxy_name + "'s source addresses (" + util::join(sources, ", ") +
                              ")";
        if (contradicts) {
          summary += ", although " + proxy_name + " reports " + from_proxy.why +
                     " to it (wrong source_addresses in the spec, or NAT?)";
        }
        finding(codes::kBackendMissingPeer, contradicts ? Severity::warning : Severity::critical,
                {.proxy = proxy_name, .backend = backend_name}, summary)
            .with("proxy_side", std::string(to_string(from_proxy.state)))
            .with("proxy_side_detail", from_proxy.why)
            .with("source_addresses", sources);
        if (contradicts) {
          warnings.push_back(backend_name + " does not see " + proxy_name +
                             "'s connection from its source addresses");
        }
      }
    }
    if (!idle.empty()) {
      finding(codes::kBackendIdle, Severity::info, {.proxy = proxy_name},
              "proxy " + proxy_name + " holds no connection to " + util::join_and(idle) +
                  " and has sent " + (idle.size() == 1 ? "it" : "them") +
                  " no requests yet (undecided; run the canary check first for a decision)")
          .with("backends", idle);
    }
  }

  // Proxies that disagree on the set of backends they use.
  {
    std::map<std::vector<std::string>, std::vector<std::string>> by_set;
    for (std::size_t q = 0; q < proxies; ++q) {
      if (!readable[q]) continue;
      bool decided = true;
      std::vector<std::string> used;
      for (std::size_t b = 0; b < backends; ++b) {
        const CellState state = by_proxy[q][b].state;
        decided = decided && state != CellState::unknown && state != CellState::idle;
        if (state == CellState::connected) used.push_back(spec.backends[b].name);
      }
      if (decided) by_set[used].push_back(spec.proxies[q].name);
    }
    if (by_set.size() > 1) {
      std::vector<std::string> groups;
      for (const auto& [used, names] : by_set) {
        groups.push_back(util::join_and(names) + (names.size() == 1 ? " uses " : " use ") +
                         (used.empty() ? std::string("no backend") : util::join(used, ", ")));
      }
      const std::string summary =
          "proxies disagree on the backend set: " + util::join(groups, "; ");
      finding(codes::kProxyBackendSetsDiffer, Severity::critical, {}, summary).with("sets", groups);
      sets_headlines.push_back(summary);
    }
  }

  // The matrix and the backends' peers, as evidence every round.
  {
    std::vector<std::string> peer_lines;
    for (std::size_t b = 0; b < backends; ++b) {
      const BackendSide& side = sides[b];
      const std::string& name = spec.backends[b].name;
      if (!side.readable) {
        peer_lines.push_back(name + ": stats conns unreadable");
        continue;
      }
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
      peer_lines.push_back(name + ": " +
                           util::plural(static_cast<std::int64_t>(side.clients), "client") +
                           (parts.empty() ? "" : ": " + util::join(parts, ", ")));
    }
    std::int64_t connected = 0;
    for (const auto& row : by_proxy) {
      for (const Cell& cell : row) connected += cell.state == CellState::connected;
    }
    finding(codes::kConnectionMatrix, Severity::info, {},
            util::plural(proxies, "proxy", "proxies") + " x " +
                util::plural(static_cast<std::int64_t>(backends), "backend") + ": " +
                std::to_string(connected) + " connected (proxy side)")
        .with("matrix", matrix)
        .with("backend_peers", peer_lines);
  }

  // ---- Check result ----
  report::CheckResult check{kCheck, report::Status::ok, "", 0};
  for (const Finding& f : findings) {
    check.status = report::worst(check.status, report::status_of(f.severity));
  }
  for (const auto* more : {&sets_headlines, &drift_headlines, &warnings}) {
    headlines.insert(headlines.end(), more->begin(), more->end());
  }
  if (!headlines.empty()) {
    constexpr std::size_t kShown = 3;
    std::vector<std::string> shown(headlines.begin(),
                                   headlines.begin() + std::min(kShown, headlines.size()));
    check.summary = util::join(shown, "; ");
    if (headlines.size() > kShown) {
      check.summary += " (+" + std::to_string(headlines.size() - kShown) + " more)";
    }
  } else {
    std::size_t complete = 0;
    for (std::size_t q = 0; q < proxies; ++q) {
      complete += std::all_of(by_proxy[q].begin(), by_proxy[q].end(),
                              [](const Cell& cell) { return cell.state == CellState::connected; });
    }
    const std::string all_backends =
        "all " + util::plural(static_cast<std::int64_t>(backends), "backend");
    if (complete == proxies) {
      check.summary = util::plural(proxies, "proxy", "proxies") + " connected to " + all_backends;
    } else {
      check.summary = std::to_string(complete) + " of " + std::to_string(proxies) +
                      " proxies connected to " + all_backends +
                      "; the others have sent some backends no traffic yet (idle)";
    }
  }
  check.duration_ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  figures[figures::kConnectionsMs] = check.duration_ms;
  report.checks.push_back(check);
  for (Finding& f : findings) report.add(std::move(f));
}

}  // namespace ringwatch::probes::connections
