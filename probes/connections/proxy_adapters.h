#pragma once
// The pure halves of the proxy adapters: text in, ProxyView or ViewError out.
// No I/O, no clocks, no exceptions; thread-safe. Formats (see README.md in
// this folder for which were measured and which were written from docs):
//
//   twemproxy        the stats port's JSON document (measured, nutcracker 0.5.0)
//   mcrouter         `stats servers` and `stats suspect_servers` (from source/docs)
//   memcached proxy  `stats` (proxy_backend_*, threads) and `stats proxybe` (measured,
//                    memcached 1.6.38)

#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "probes/connections/proxy_view.h"

namespace ringwatch::probes::connections {

// "STAT <key> <value>" lines of a memcached-protocol stats reply, value kept
// whole (spaces included), in order.
using StatList = std::vector<std::pair<std::string, std::string>>;

// Parses a whole text-protocol stats reply ending in "END\r\n". A reply
// without END is truncated; "ERROR", "CLIENT_ERROR ..." and "SERVER_ERROR ..."
// are `unsupported` with the server's words; any other line is malformed.
Result<StatList, ViewError> parse_stat_lines(std::string_view text);

// True once `text` holds a complete stats reply (END or an error line).
bool stats_reply_complete(std::string_view text);

// twemproxy: the stats JSON, parsed once for every pool read from it (one
// nutcracker process serving many pools reports all of them on one stats
// port: ~620 KB for 50 pools of 50 servers). Errors of the document itself
// (does not parse, nests too deep, no "timestamp", no pool) are the error of
// every pool; each pool asked for (and the only pool, whatever its name) is
// turned into its own view, so one pool's bad server entry fails that pool
// alone. Freshness is left `confirmed` for the fetch to adjust.
struct TwemproxyStats {
  std::vector<std::string> pool_names;                   // every pool of the document, in its order
  std::map<std::string, ViewResult, std::less<>> views;  // by pool name
};
Result<TwemproxyStats, ViewError> parse_twemproxy_document(std::string_view json,
                                                           const std::vector<std::string>& pools);

// The view of one proxy's pool: `pool_name` when the document has a pool of
// that name, else the only pool; several pools and none named `pool_name` is
// `no_pool` (the spec describes one pool per proxy). `stats_time` is the
// document's "timestamp".
ViewResult twemproxy_pool_view(const TwemproxyStats& stats, std::string_view pool_name);

// Both of the above for a single proxy.
ViewResult parse_twemproxy_stats(std::string_view json, std::string_view pool_name);

// mcrouter: `stats servers` and `stats suspect_servers` (either may be empty),
// and the basic `stats` for its "time" (may be empty).
ViewResult parse_mcrouter_stats(const StatList& servers, const StatList& suspect_servers,
                                const StatList& basic);

// memcached's built-in proxy: the basic `stats` (proxy_backend_total tells a
// proxy from a plain memcached; time; threads) and `stats proxybe`, which
// lists only the backends marked bad now, as "bad_<label> <n>", n the worker
// threads that see it bad (proxy_backend_marked_bad and _failed in `stats`
// are counters since start, not the present). The proxy does not list its
// backends, so the view's servers are `cluster`'s backends, named by spec
// name; a backend proxybe lists by its name (or its "host:port") is
// connect_failing: the proxy keeps its keys and fails them, it never routes
// around it.
ViewResult parse_memcached_proxy_stats(const StatList& basic, const StatList& proxybe,
                                       const spec::ClusterSpec& cluster);

}  // namespace ringwatch::probes::connections
