// The fetch halves of the proxy adapters. Parsing lives in proxy_adapters.cpp.

#include <algorithm>
#include <string>

#include "lib/mc/client.h"
#include "lib/net/tcp.h"
#include "lib/util/deadlines.h"
#include "probes/connections/proxy_adapters.h"
#include "probes/connections/proxy_view.h"

namespace ringwatch::probes::connections {

namespace {

ViewError from_tcp(const net::TcpError& error) {
  switch (error.kind) {
    case net::TcpErrorKind::refused:
      return {ViewErrorKind::refused, error.message};
    case net::TcpErrorKind::timeout:
      return {ViewErrorKind::timeout, error.message};
    case net::TcpErrorKind::too_large:
    case net::TcpErrorKind::invalid:
    case net::TcpErrorKind::other:
      return {ViewErrorKind::malformed, error.message};
  }
  return {ViewErrorKind::malformed, error.message};
}

ViewError from_mc(const mc::Error& error) {
  switch (error.kind) {
    case mc::ErrorKind::connect_refused:
      return {ViewErrorKind::refused, error.message};
    case mc::ErrorKind::timeout:
      return {ViewErrorKind::timeout, error.message};
    case mc::ErrorKind::server_error:
      return {ViewErrorKind::unsupported, error.message};
    case mc::ErrorKind::protocol:
    case mc::ErrorKind::other:
      return {ViewErrorKind::malformed, error.message};
  }
  return {ViewErrorKind::malformed, error.message};
}

ViewError with_context(ViewError error, const std::string& context) {
  error.message = context + ": " + error.message;
  return error;
}

// One text-protocol stats command over its own connection (net::exchange),
// parsed whole by parse_stat_lines.
Result<StatList, ViewError> text_stats(const net::Endpoint& endpoint, const std::string& group,
                                       const util::Deadlines& deadlines) {
  const std::string command = group.empty() ? "stats\r\n" : "stats " + group + "\r\n";
  auto reply = net::exchange(endpoint, command, stats_reply_complete, deadlines);
  if (!reply) return from_tcp(reply.error());
  auto parsed = parse_stat_lines(reply.value().reply);
  if (!parsed) {
    return with_context(parsed.error(),
                        endpoint.to_string() + " `" + command.substr(0, command.size() - 2) + "`");
  }
  return parsed;
}

// twemproxy: the stats port writes one JSON document and closes.
//
// Its counters lag: workers count into a "current" array that the event loop
// swaps out only at the end of a loop iteration, and only when the stats
// thread has aggregated the previous swap (nc_stats.c: stats_swap,
// stats_aggregate); the stats thread aggregates when it wakes, which includes
// every stats connection. The document's "timestamp" is the time of the
// reply, not of the data. Measured: stats read right after a request often
// do not show it yet. So every read is a barrier:
//   1. read the stats (aggregates what is pending),
//   2. twice, send "quit" on the client port and wait for the close: each is
//      one event-loop iteration, so the iteration that swapped everything
//      counted before step 1 has finished,
//   3. read again: now the document includes all traffic before step 1.
// If the client port does not answer, the view is kept but `unconfirmed`.
class TwemproxyAdapter final : public ProxyAdapter {
 public:
  ViewResult read(const spec::Proxy& proxy, const spec::ClusterSpec& cluster,
                  const util::Deadlines& deadlines) const override {
    if (!proxy.stats) {
      return ViewError{ViewErrorKind::no_endpoint,
                       "the spec gives proxy " + proxy.name + " no stats endpoint"};
    }
    const std::string label = "stats " + proxy.stats->to_string();
    auto first = net::read_until_close(*proxy.stats, deadlines);
    if (!first) return with_context(from_tcp(first.error()), "stats");
    std::string note;
    for (int marker = 0; marker < 2 && note.empty(); ++marker) {
      auto closed = net::exchange(
          proxy.client, "quit\r\n", [](std::string_view) { return false; }, deadlines);
      if (!closed) note = "freshness barrier failed on the client port: " + closed.error().message;
    }
    std::string document = std::move(first).value();
    if (note.empty()) {
      auto second = net::read_until_close(*proxy.stats, deadlines);
      if (!second) return with_context(from_tcp(second.error()), "stats");
      document = std::move(second).value();
    }
    auto view = parse_twemproxy_stats(document, cluster.pool_of(proxy));
    // A missing pool is the spec's word against the proxy's config, the same
    // whichever endpoint said it: no transport context.
    if (!view && view.error().kind == ViewErrorKind::no_pool) return view.error();
    if (!view) return with_context(view.error(), label);
    if (!note.empty()) {
      view.value().freshness = Freshness::unconfirmed;
      view.value().freshness_note = note;
    }
    return view;
  }
};

// mcrouter: `stats`, `stats servers`, `stats suspect_servers` on its client
// port (or the stats endpoint, when the spec gives one), each over its own
// connection; a `stats servers` value is a whole sentence.
class McrouterAdapter final : public ProxyAdapter {
 public:
  ViewResult read(const spec::Proxy& proxy, const spec::ClusterSpec&,
                  const util::Deadlines& deadlines) const override {
    const net::Endpoint endpoint = proxy.stats.value_or(proxy.client);
    auto basic = text_stats(endpoint, "", deadlines);
    if (!basic) return basic.error();
    auto servers = text_stats(endpoint, "servers", deadlines);
    if (!servers) return servers.error();
    auto suspect = text_stats(endpoint, "suspect_servers", deadlines);
    if (!suspect) return suspect.error();
    auto view = parse_mcrouter_stats(servers.value(), suspect.value(), basic.value());
    if (!view) return with_context(view.error(), "mcrouter " + endpoint.to_string());
    return view;
  }
};

// memcached's built-in proxy: `stats` and `stats proxybe` through mc::Client,
// on one connection.
class MemcachedProxyAdapter final : public ProxyAdapter {
 public:
  ViewResult read(const spec::Proxy& proxy, const spec::ClusterSpec& cluster,
                  const util::Deadlines& deadlines) const override {
    const net::Endpoint endpoint = proxy.stats.value_or(proxy.client);
    mc::Client client(endpoint, deadlines);
    auto basic = client.stats();
    if (!basic) return from_mc(basic.error());
    const bool is_proxy =
        std::any_of(basic.value().begin(), basic.value().end(),
                    [](const auto& stat) { return stat.first == "proxy_backend_total"; });
    if (!is_proxy) {
      // Not a proxy: let the parser say so instead of asking for proxybe.
      return with_context(parse_memcached_proxy_stats(basic.value(), {}, cluster).error(),
                          "memcached proxy " + endpoint.to_string());
    }
    auto proxybe = client.stats("proxybe");
    if (!proxybe) return with_context(from_mc(proxybe.error()), "`stats proxybe`");
    auto view = parse_memcached_proxy_stats(basic.value(), proxybe.value(), cluster);
    if (!view) return with_context(view.error(), "memcached proxy " + endpoint.to_string());
    return view;
  }
};

}  // namespace

const ProxyAdapter& adapter_for(spec::ProxyKind kind) {
  static const TwemproxyAdapter twemproxy;
  static const McrouterAdapter mcrouter;
  static const MemcachedProxyAdapter memcached_proxy;
  switch (kind) {
    case spec::ProxyKind::twemproxy:
      return twemproxy;
    case spec::ProxyKind::mcrouter:
      return mcrouter;
    case spec::ProxyKind::memcached_proxy:
      return memcached_proxy;
  }
  return twemproxy;
}

}  // namespace ringwatch::probes::connections
