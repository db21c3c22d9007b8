#pragma once
// What one proxy says about its backends, and the one small interface every
// proxy kind implements to say it (invariant 3, proxy side).
//
// Each adapter is split in two: a pure parser (text -> ProxyView, in
// proxy_adapters.h, tested with fixtures; malformed or truncated input is a
// ViewError, never a crash or an exception) and the fetch that gets the text
// within the spec's deadlines.
//
// Thread-safety: adapters hold no state. read() and read_group() may be
// called for different proxies from several threads at once; the objects returned by adapter_for()
// live for the whole program.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "lib/net/address.h"
#include "lib/spec/cluster_spec.h"
#include "lib/util/deadlines.h"
#include "lib/util/result.h"

namespace ringwatch::probes::connections {

using SystemTime = std::chrono::system_clock::time_point;

// One server as one proxy sees it.
struct ServerView {
  // The proxy's own name for it: twemproxy's server name (or, when the config
  // names none, "host" on port 11211 and "host:port" on another port),
  // mcrouter's "host:port:protocol:...", the memcached proxy's backend label.
  std::string name;
  std::optional<net::Endpoint> address;     // when the proxy reports it
  std::optional<std::int64_t> connections;  // open connections; nullopt: not reported
  // The proxy routes around it right now (twemproxy: ejected and not
  // reconnected; mcrouter: TKO).
  bool ejected = false;
  // The proxy's last attempt to connect failed and it holds no connection
  // (mcrouter state "down"; memcached proxy: marked bad), without routing
  // around the server: the server's keys fail.
  bool connect_failing = false;
  // How the proxy puts connect_failing, in a few words; empty: "connection down".
  std::string failing_state;
  std::optional<SystemTime> ejected_at;  // last ejection, when the proxy reports one
  std::int64_t errors = 0;               // connection errors and EOFs
  std::int64_t timeouts = 0;
  std::int64_t requests = 0;  // requests routed to it since the proxy started
  std::string detail;         // the proxy's own words, for evidence ("up:4", "hard_tko")
  friend bool operator==(const ServerView&, const ServerView&) = default;
};

enum class Freshness {
  live,         // computed when asked (mcrouter, memcached)
  confirmed,    // aggregated, and shown to include everything before the read (twemproxy)
  unconfirmed,  // aggregated, and we could not show that (see freshness_note)
};
const char* to_string(Freshness freshness);

struct ProxyView {
  std::string pool;                      // twemproxy's pool name; empty for other kinds
  std::optional<SystemTime> stats_time;  // the stats' own timestamp, when they carry one
  Freshness freshness = Freshness::live;
  std::string freshness_note;
  // False when the proxy cannot list its configured servers (the memcached
  // proxy's config is Lua): then `servers` are the spec's backends, and only
  // what the proxy does report (marked bad) is its own word.
  bool lists_servers = true;
  // True when the proxy keeps a server connection open until it fails
  // (twemproxy), so 0 connections after traffic means it lost it. mcrouter
  // closes connections idle for a minute, so there 0 can just mean idle.
  bool keeps_idle_connections = true;
  std::vector<ServerView> servers;  // in the proxy's order
  friend bool operator==(const ProxyView&, const ProxyView&) = default;
};

enum class ViewErrorKind {
  refused,      // nothing listens on the stats endpoint
  timeout,      // connect or reply deadline passed
  malformed,    // the reply is not what this proxy kind sends
  truncated,    // the reply stopped early
  unsupported,  // the proxy rejected the stats command
  no_endpoint,  // the spec gives no stats endpoint for a kind that needs one
  not_checked,  // not asked: it did not answer an earlier check of this round in time
  no_pool,      // the stats have several pools and none is the spec's (spec::ClusterSpec::pool_of)
};
const char* to_string(ViewErrorKind kind);  // "refused", "timeout", ...

struct ViewError {
  ViewErrorKind kind = ViewErrorKind::malformed;
  std::string message;  // one line: what was wrong and where
};

using ViewResult = Result<ProxyView, ViewError>;

class ProxyAdapter {
 public:
  virtual ~ProxyAdapter() = default;
  // Reads `proxy`'s view of its servers. Never throws; returns within a few
  // multiples of the deadlines.
  virtual ViewResult read(const spec::Proxy& proxy, const spec::ClusterSpec& cluster,
                          const util::Deadlines& deadlines) const = 0;
  // Reads several proxies of this kind that share one stats endpoint (a
  // group of group_by_stats_endpoint), one result per proxy, in order: the
  // same results as read() for each, for less work. By default it calls
  // read() for each; twemproxy reads the shared document once for them all.
  // Returns within a few multiples of the deadlines plus one barrier per proxy.
  virtual std::vector<ViewResult> read_group(const std::vector<const spec::Proxy*>& proxies,
                                             const spec::ClusterSpec& cluster,
                                             const util::Deadlines& deadlines) const;
};

const ProxyAdapter& adapter_for(spec::ProxyKind kind);

// Indexes into `proxies` grouped by (kind, stats endpoint): proxies that
// share a stats endpoint (pools of one nutcracker process) are read as one
// group; a proxy without a stats endpoint is a group of its own. Groups and
// the indexes in them keep the proxies' order. Pure.
std::vector<std::vector<std::size_t>> group_by_stats_endpoint(
    const std::vector<spec::Proxy>& proxies);

}  // namespace ringwatch::probes::connections
