#pragma once
// Blocking TCP with hard deadlines: a kept connection (TcpStream, what the
// memcached client talks over) and one-shot exchanges for stats endpoints:
// twemproxy's stats port (it writes one JSON document and closes), mcrouter's
// `stats servers` and memcached's `stats conns` (we need our own socket's
// local address to leave our own connection out), and a batch of requests
// waited out to the peers' close (twemproxy's freshness barrier).
//
// POSIX sockets and poll(2). Only address literals are connected to; nothing
// here resolves names. Deadlines are absolute: they bound a whole exchange,
// not each wait, so a peer that drips one byte at a time cannot hold us
// longer. The one-shot functions return within about connect_timeout +
// io_timeout. Expected failures (refused, timeout, reset, a reply larger than
// the cap) come back as TcpError values; nothing throws.
//
// Thread-safety: the functions keep no state; call them from any thread. A
// TcpStream is used by one thread at a time.

#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

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

using Clock = std::chrono::steady_clock;

// One connection, kept open between exchanges; closes with the object.
class TcpStream {
 public:
  TcpStream() = default;
  ~TcpStream();
  TcpStream(TcpStream&& other) noexcept;
  TcpStream& operator=(TcpStream&& other) noexcept;
  TcpStream(const TcpStream&) = delete;
  TcpStream& operator=(const TcpStream&) = delete;

  // Connects within `timeout` ("connect timed out after <timeout> ms").
  static Result<TcpStream, TcpError> open(const Endpoint& endpoint,
                                          std::chrono::milliseconds timeout);

  bool is_open() const { return fd_ >= 0; }
  const std::string& label() const { return label_; }  // "host:port", for messages
  Endpoint local() const;  // our side of the connection, as the peer sees it
  void close();

  // Sends all of `data` by `deadline`. A missed deadline is a TcpError of
  // kind timeout whose message the caller replaces with its own words.
  std::optional<TcpError> send_all(std::string_view data, Clock::time_point deadline);
  // Waits by `deadline` for bytes and appends at most `max_bytes` of them to
  // `out`; returns how many (0: the peer closed the connection). Once the
  // deadline has passed it fails even if bytes are waiting, so a peer that
  // never stops sending cannot keep a reader busy past it either.
  Result<std::size_t, TcpError> receive(std::string& out, std::size_t max_bytes,
                                        Clock::time_point deadline);
  // Without waiting: appends what has already arrived (at most `max_bytes`)
  // to `out` and returns how many bytes (0: the peer closed the connection),
  // or nothing when no byte is waiting. No deadline: it never waits.
  Result<std::optional<std::size_t>, TcpError> receive_arrived(std::string& out,
                                                               std::size_t max_bytes);
  // Without waiting: true when the connection is open and idle (no bytes
  // waiting, not closed or reset by the peer).
  bool idle() const;
  // Waits by `deadline` until bytes (or the peer's close) can be read, without
  // reading them. Right after sending a request, calling this before
  // receive() saves the recv that would only find nothing there yet.
  std::optional<TcpError> wait_readable(Clock::time_point deadline);

 private:
  TcpStream(int fd, std::string label) : fd_(fd), label_(std::move(label)) {}
  TcpError error(TcpErrorKind kind, const std::string& what) const;
  TcpError errno_error(const char* doing, int err) const;

  int fd_ = -1;
  std::string label_;
};

// Default reply cap: far above any stats reply we read (a twemproxy stats
// document for 1000 servers is ~400 KiB; a nutcracker process serving 50
// pools of 50 servers lists all 2,500 in one ~620 KB document, read once a
// round for all its pools), small enough to never hurt.
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

// Connects to every endpoint at once, sends `request` on each, and waits for
// all of them together until each peer closes (what a peer sends first is
// read and dropped, at most `max_bytes` of it): one round trip for the lot
// instead of one each, as twemproxy's freshness barrier needs for the many
// pools of one process (probes/connections/adapters.cpp). At most
// kMaxConcurrentConnections are open at a time; the rest wait their turn.
// Each connection has its own deadlines, counted from its start (connect)
// and from its connect (io). Per endpoint, in order: nothing when the peer
// closed, else why not ("<endpoint>: connect refused", "<endpoint>: no close
// within <io> ms", ...).
inline constexpr std::size_t kMaxConcurrentConnections = 64;
std::vector<std::optional<TcpError>> send_and_await_close(const std::vector<Endpoint>& endpoints,
                                                          std::string_view request,
                                                          util::Deadlines timeouts,
                                                          std::size_t max_bytes = 64 * 1024);

}  // namespace ringwatch::net
