// The fetch halves of the proxy adapters. Parsing lives in proxy_adapters.cpp.

#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

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
//
// One nutcracker process can serve many pools (proxies), each on its own
// client port, and its stats port reports all of them in one document (~620
// KB for 50 pools of 50 servers). The proxies sharing a stats endpoint are
// read as one group: step 1 once, step 2 on all their client ports at once, step 3
// once, and the document parsed once for all their pools. A proxy whose
// barrier failed gets its pool from step 1's document (parsed only then),
// `unconfirmed`, as it would alone; step 3 is skipped when no barrier held.
class TwemproxyAdapter final : public ProxyAdapter {
 public:
  ViewResult read(const spec::Proxy& proxy, const spec::ClusterSpec& cluster,
                  const util::Deadlines& deadlines) const override {
    return std::move(read_group({&proxy}, cluster, deadlines).front());
  }

  std::vector<ViewResult> read_group(const std::vector<const spec::Proxy*>& proxies,
                                     const spec::ClusterSpec& cluster,
                                     const util::Deadlines& deadlines) const override {
    if (!proxies.front()->stats) {
      std::vector<ViewResult> views;
      for (const spec::Proxy* proxy : proxies) {
        views.emplace_back(ViewError{ViewErrorKind::no_endpoint,
                                     "the spec gives proxy " + proxy->name + " no stats endpoint"});
      }
      return views;
    }
    const net::Endpoint& endpoint = *proxies.front()->stats;
    auto first = net::read_until_close(endpoint, deadlines);
    if (!first) {
      return std::vector<ViewResult>(proxies.size(),
                                     with_context(from_tcp(first.error()), "stats"));
    }
    const std::vector<std::string> notes = barriers(proxies, deadlines);
    std::vector<std::string> pools;
    for (const spec::Proxy* proxy : proxies) pools.push_back(cluster.pool_of(*proxy));
    const auto held = [](const std::string& note) { return note.empty(); };

    std::optional<Document> before, after;
    if (!std::all_of(notes.begin(), notes.end(), held)) {
      before = Document{parse_twemproxy_document(first.value(), pools), std::nullopt};
    }
    first = std::string();  // up to net::kDefaultMaxReply: not kept past its use
    if (std::any_of(notes.begin(), notes.end(), held)) {
      auto second = net::read_until_close(endpoint, deadlines);
      if (!second) {
        after = Document{TwemproxyStats{}, with_context(from_tcp(second.error()), "stats")};
      } else {
        after = Document{parse_twemproxy_document(second.value(), pools), std::nullopt};
      }
    }
    const std::string label = "stats " + endpoint.to_string();
    std::vector<ViewResult> views;
    for (std::size_t i = 0; i < proxies.size(); ++i) {
      if (notes[i].empty()) {
        views.push_back(after->view_of(pools[i], label));
        continue;
      }
      ViewResult view = before->view_of(pools[i], label);
      if (view) {
        view.value().freshness = Freshness::unconfirmed;
        view.value().freshness_note = notes[i];
      }
      views.push_back(std::move(view));
    }
    return views;
  }

 private:
  // One stats document as read: its transport failure, or what it parsed to.
  struct Document {
    Result<TwemproxyStats, ViewError> parsed;
    std::optional<ViewError> unread;

    ViewResult view_of(const std::string& pool, const std::string& label) const {
      if (unread) return *unread;
      if (!parsed) return with_context(parsed.error(), label);
      auto view = twemproxy_pool_view(parsed.value(), pool);
      // A missing pool is the spec's word against the proxy's config, the
      // same whichever endpoint said it: no transport context.
      if (!view && view.error().kind == ViewErrorKind::no_pool) return view.error();
      if (!view) return with_context(view.error(), label);
      return view;
    }
  };

  // Step 2 for every proxy of the group: two "quit"s on its client port, each
  // waited out to the close, the second sent only after the first closed.
  // All the group's ports are asked at once (one process, one event loop: a
  // round trip for all its pools, not two for each). Per proxy: empty when
  // both closed; else why not.
  static std::vector<std::string> barriers(const std::vector<const spec::Proxy*>& proxies,
                                           const util::Deadlines& deadlines) {
    std::vector<std::string> notes(proxies.size());
    for (int marker = 0; marker < 2; ++marker) {
      std::vector<std::size_t> asked;
      std::vector<net::Endpoint> clients;
      for (std::size_t i = 0; i < proxies.size(); ++i) {
        if (!notes[i].empty()) continue;  // failed the first time: not asked again
        asked.push_back(i);
        clients.push_back(proxies[i]->client);
      }
      const auto closes = net::send_and_await_close(clients, "quit\r\n", deadlines);
      for (std::size_t k = 0; k < asked.size(); ++k) {
        if (closes[k]) {
          notes[asked[k]] = "freshness barrier failed on the client port: " + closes[k]->message;
        }
      }
    }
    return notes;
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

std::vector<ViewResult> ProxyAdapter::read_group(const std::vector<const spec::Proxy*>& proxies,
                                                 const spec::ClusterSpec& cluster,
                                                 const util::Deadlines& deadlines) const {
  std::vector<ViewResult> views;
  for (const spec::Proxy* proxy : proxies) views.push_back(read(*proxy, cluster, deadlines));
  return views;
}

std::vector<std::vector<std::size_t>> group_by_stats_endpoint(
    const std::vector<spec::Proxy>& proxies) {
  std::vector<std::vector<std::size_t>> groups;
  std::map<std::tuple<spec::ProxyKind, std::string, std::uint16_t>, std::size_t> group_of;
  for (std::size_t q = 0; q < proxies.size(); ++q) {
    const spec::Proxy& proxy = proxies[q];
    if (!proxy.stats) {
      groups.push_back({q});
      continue;
    }
    // One address written two ways ("::1", "0:0::1") is one endpoint.
    const auto address = net::IpAddress::parse(proxy.stats->host);
    const auto key = std::make_tuple(proxy.kind, address ? address->to_string() : proxy.stats->host,
                                     proxy.stats->port);
    const auto [found, added] = group_of.try_emplace(key, groups.size());
    if (added) groups.emplace_back();
    groups[found->second].push_back(q);
  }
  return groups;
}

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
