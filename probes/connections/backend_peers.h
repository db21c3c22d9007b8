#pragma once
// The backend side of invariant 3: who is connected to a memcached backend,
// from its `stats conns`.
//
// memcached 1.6 (measured on 1.6.18) lists every connection as
//   STAT <fd>:addr tcp:127.0.0.1:54321        peer (listeners: their own address)
//   STAT <fd>:listen_addr tcp:127.10.0.11:11211   (not on listeners)
//   STAT <fd>:state conn_read                 conn_listening, conn_new_cmd, conn_parse_cmd, ...
//   STAT <fd>:secs_since_last_cmd 2
// with addresses "tcp:A.B.C.D:port", "tcp6:[v6]:port", "udp:...", "unix:/path".
// The connection asking is listed too (in conn_parse_cmd); read_backend_peers
// asks over its own socket, knows that socket's local address, and leaves
// exactly that entry out.
//
// Thread-safety: pure functions and a stateless fetch; call from any thread.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lib/net/address.h"
#include "lib/util/deadlines.h"
#include "probes/connections/proxy_view.h"

namespace ringwatch::probes::connections {

struct ConnEntry {
  int fd = -1;
  std::string addr;         // as printed: "tcp:127.0.0.1:54321"
  std::string listen_addr;  // empty on listeners
  std::string state;        // "conn_read", ...
  std::optional<std::int64_t> secs_since_last_cmd;
  std::optional<net::Endpoint> peer;  // parsed from addr for tcp/tcp6 clients
  // A TCP client connection (not a listener, not UDP, not a unix socket).
  bool is_tcp_client() const {
    return peer.has_value() && !listen_addr.empty() && state != "conn_listening";
  }
  std::string describe() const;  // "127.0.0.1:54321 (conn_read, idle 2 s)"
};

// Parses the whole reply text, "END\r\n" included; entries in fd order.
Result<std::vector<ConnEntry>, ViewError> parse_stats_conns(std::string_view text);

struct BackendPeers {
  std::vector<ConnEntry> clients;  // TCP clients, our own connection left out
  net::Endpoint own;               // our side of the connection that asked
  bool own_found = false;          // our entry was in the list (it always is on memcached 1.6)
};

// The TCP clients of `endpoint`, ours left out.
Result<BackendPeers, ViewError> read_backend_peers(const net::Endpoint& endpoint,
                                                   const util::Deadlines& deadlines);

}  // namespace ringwatch::probes::connections
