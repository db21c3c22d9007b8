#include "probes/connections/backend_peers.h"

#include <charconv>
#include <map>

#include "lib/net/tcp.h"
#include "lib/util/deadlines.h"
#include "lib/util/text.h"
#include "probes/connections/proxy_adapters.h"

namespace ringwatch::probes::connections {

namespace {

// "tcp:127.0.0.1:54321" / "tcp6:[::1]:54321"; UDP, unix sockets and
// memcached's placeholders ("<AF 1>", "<closed>") are not TCP peers.
std::optional<net::Endpoint> tcp_peer(std::string_view addr) {
  if (addr.starts_with("tcp:")) return net::Endpoint::parse(addr.substr(4));
  if (addr.starts_with("tcp6:")) return net::Endpoint::parse(addr.substr(5));
  return std::nullopt;
}

}  // namespace

std::string ConnEntry::describe() const {
  std::string text = peer ? peer->to_string() : addr;
  text += " (" + (state.empty() ? std::string("state unknown") : state);
  if (secs_since_last_cmd) text += ", idle " + std::to_string(*secs_since_last_cmd) + " s";
  return text + ")";
}

Result<std::vector<ConnEntry>, ViewError> parse_stats_conns(std::string_view text) {
  auto stats = parse_stat_lines(text);
  if (!stats) return stats.error();
  std::map<int, ConnEntry> entries;
  for (const auto& [key, value] : stats.value()) {
    const auto colon = key.find(':');
    const auto fd = colon == std::string::npos
                        ? std::nullopt
                        : util::parse_int(std::string_view(key).substr(0, colon));
    if (!fd || *fd < 0) {
      return ViewError{ViewErrorKind::malformed, "stats conns: unexpected key \"" + key + "\""};
    }
    ConnEntry& entry = entries[static_cast<int>(*fd)];
    entry.fd = static_cast<int>(*fd);
    const std::string field = key.substr(colon + 1);
    if (field == "addr") {
      entry.addr = value;
      entry.peer = tcp_peer(value);
    } else if (field == "listen_addr") {
      entry.listen_addr = value;
    } else if (field == "state") {
      entry.state = value;
    } else if (field == "secs_since_last_cmd") {
      entry.secs_since_last_cmd = util::parse_int(value);
    }
    // Fields added by later versions are ignored.
  }
  std::vector<ConnEntry> result;
  for (auto& [fd, entry] : entries) {
    if (entry.addr.empty()) {
      return ViewError{ViewErrorKind::malformed,
                       "stats conns: connection " + std::to_string(fd) + " has no addr"};
    }
    result.push_back(std::move(entry));
  }
  return result;
}

Result<BackendPeers, ViewError> read_backend_peers(const net::Endpoint& endpoint,
                                                   const util::Deadlines& deadlines) {
  auto reply = net::exchange(endpoint, "stats conns\r\n", stats_reply_complete,
                             {deadlines.connect, deadlines.io});
  if (!reply) {
    const auto kind = reply.error().kind == net::TcpErrorKind::refused   ? ViewErrorKind::refused
                      : reply.error().kind == net::TcpErrorKind::timeout ? ViewErrorKind::timeout
                                                                         : ViewErrorKind::malformed;
    return ViewError{kind, reply.error().message};
  }
  auto entries = parse_stats_conns(reply.value().reply);
  if (!entries) {
    ViewError error = entries.error();
    error.message = endpoint.to_string() + " `stats conns`: " + error.message;
    return error;
  }
  BackendPeers peers;
  peers.own = reply.value().local;
  for (ConnEntry& entry : entries.value()) {
    if (!entry.is_tcp_client()) continue;
    if (!peers.own_found && entry.peer && *entry.peer == peers.own) {
      peers.own_found = true;  // the connection asking: ours
      continue;
    }
    peers.clients.push_back(std::move(entry));
  }
  return peers;
}

}  // namespace ringwatch::probes::connections
