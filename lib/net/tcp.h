#pragma once
// Small blocking TCP exchanges with hard deadlines, for stats endpoints that
// are not (or not fully) served by the memcached client: twemproxy's stats
// port (it writes one JSON document and closes), mcrouter's `stats servers`
// (libmemcached cuts stat values at the first space) and memcached's
// `stats conns` (we need our own socket's local address to leave our own
// connection out).
//
// POSIX sockets and poll(2). Only address literals are connected to; nothing
// here resolves names. Every function returns within about
// connect_timeout + io_timeout: `io_timeout` bounds the whole exchange after
// the connect, not each wait, so a peer that drips one byte at a time cannot
// hold us longer. Expected failures (refused, timeout, reset, a reply larger
// than the cap) come back as TcpError values; nothing throws.
//
// Thread-safety: the functions keep no state; call them from any thread.

#include <chrono>
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

#include "lib/net/address.h"
#include "lib/util/deadlines.h"
#include "lib/util/result.h"

namespace ringwatch::net {

enum class TcpErrorKind {
  refused,    // nothing listens there (ECONNREFUSED), or the peer reset the connection
  timeout,    // the connect or the exchange did not finish in time
  too_large,  // the reply grew past max_bytes
  invalid,    // the endpoint is not an address literal
  other,      // anything else, with errno's text
};
const char* to_string(TcpErrorKind kind);  // "refused", "timeout", ...

struct TcpError {
  TcpErrorKind kind = TcpErrorKind::other;
  std::string message;  // "127.0.0.1:22222: connect refused"
};

// Default reply cap: far above any stats reply we read (a twemproxy stats
// document for 1000 servers is ~400 KiB), small enough to never hurt.
inline constexpr std::size_t kDefaultMaxReply = 8 * 1024 * 1024;

// Connects, reads until the peer closes, returns everything read.
Result<std::string, TcpError> read_until_close(const Endpoint& endpoint, util::Deadlines timeouts,
                                               std::size_t max_bytes = kDefaultMaxReply);

struct Exchange {
  std::string reply;
  bool complete = false;  // `is_complete` accepted the reply (false: the peer closed first)
  Endpoint local;         // our side of the connection, as the peer sees it
};

// Connects, sends `request`, and reads until `is_complete(reply so far)` is
// true or the peer closes (then complete == false and the caller decides
// whether a partial reply is an error).
Result<Exchange, TcpError> exchange(const Endpoint& endpoint, std::string_view request,
                                    const std::function<bool(std::string_view)>& is_complete,
                                    util::Deadlines timeouts,
                                    std::size_t max_bytes = kDefaultMaxReply);

}  // namespace ringwatch::net
