#pragma once
// A memcached text-protocol client for one endpoint (a proxy or a backend),
// over lib/net's TcpStream. RAII: the connection closes with the object.
//
// Why our own protocol code and not libmemcached (used until issue 12): its
// deadlines bound each wait, not an operation (a peer trickling one byte every
// 0.5 s held a probe 40 s with a 1 s deadline), and its reply parser is not
// ours to bound (a VALUE line with a 300-byte key overflowed a stack buffer
// inside it; a value length of 4 GB made it allocate and read on without
// limit). What ringwatch speaks is small: a multi-key get, pipelined sets,
// stats.
//
// Every call is bounded, whatever the peer does:
// - in time: connecting by util::Deadlines::connect; all the I/O of one call
//   by util::Deadlines::io, counted once from when the call starts talking,
//   however the peer paces its bytes (a call that reconnects after finding
//   its kept connection closed shares that deadline);
// - in memory: keys are checked against the protocol (1 to 250 bytes, no
//   spaces or control characters) before anything is sent, and a reply as it
//   arrives: a VALUE line must name a key that was asked for, with a value of
//   at most Limits::max_value_bytes; a reply line may be 8 KiB, a whole reply
//   Limits::max_reply_bytes (stats: 8 MiB). A peer that breaks these gets a
//   `protocol` error and is read no further.
// Errors are typed values (ErrorKind); nothing throws for what a peer does.
// The reading and checking of replies is reply_reader.h, apart from the I/O.
//
// The connection is kept between calls and dropped after any failed call (the
// next call connects afresh). A call that finds a kept connection closed or
// reset by the peer before any byte of reply (a restart) is retried once on a
// new connection; all operations here are idempotent.
//
// Thread-safety: one Client per thread; distinct Clients are independent.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "lib/net/address.h"
#include "lib/util/deadlines.h"
#include "lib/util/result.h"
#include "lib/util/worker_pool.h"

namespace ringwatch::mc {

enum class ErrorKind {
  connect_refused,  // nothing listens there (or the peer reset the connection)
  timeout,          // connect or I/O deadline passed
  protocol,         // the peer answered something that is not memcached protocol, or
                    // broke its bounds (a key not asked for, a value over the cap)
  server_error,     // the peer answered SERVER_ERROR / an error status
  other,            // anything else (resolver, memory, ...), with the message
};
const char* to_string(ErrorKind kind);

struct Error {
  ErrorKind kind = ErrorKind::other;
  std::string message;  // human-readable, includes the endpoint
};

struct Item {
  std::string key;
  std::string value;
};

// key -> value of the keys that were found; absent keys are misses.
using Values = std::unordered_map<std::string, std::string>;
// `stats` answers in the order the server sent them.
using Stats = std::vector<std::pair<std::string, std::string>>;

// What one call may read.
struct Limits {
  // The largest value a get may return: memcached's default item size limit.
  std::size_t max_value_bytes = 1024 * 1024;
  // Every byte of one call's replies together.
  std::size_t max_reply_bytes = 64 * 1024 * 1024;
};

struct GetRequest;

class Client {
 public:
  Client(net::Endpoint endpoint, util::Deadlines deadlines, Limits limits = {});
  ~Client();
  Client(Client&&) noexcept;
  Client& operator=(Client&&) noexcept;
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  const net::Endpoint& endpoint() const { return endpoint_; }

  // Stores all items, pipelined (batches of requests written before their
  // replies are read), and returns only after the peer has answered every one of them, so a read
  // through another connection afterwards observes the writes. Sets the peer
  // answered with SERVER_ERROR (a proxy whose backend failed) do not stop the
  // batch: every reply is still read, and the result is then a server_error
  // counting them; which keys failed, a later read shows.
  Result<Done, Error> set_many(const std::vector<Item>& items, std::chrono::seconds ttl);

  // One multi-get. Keys that are absent are simply not in the result. Very
  // long key lists go out as several gets of at most 32 KiB of keys each (a
  // request the peer's socket buffer takes whole, so we never block writing
  // while its replies wait to be read); one io deadline covers them all.
  Result<Values, Error> get_many(const std::vector<std::string>& keys);

  // Convenience single-key forms (used by tests and the naive benchmark).
  // set() is set_many() with one item: a NOT_STORED / too-large reply is not
  // reported.
  Result<Done, Error> set(const std::string& key, const std::string& value,
                          std::chrono::seconds ttl);
  Result<std::optional<std::string>, Error> get(const std::string& key);

  // `stats` (group empty) or `stats <group>`, e.g. "conns". A value is the
  // rest of its line after the name. An unknown group is server_error.
  Result<Stats, Error> stats(std::string_view group = {});

 private:
  friend std::vector<Result<Values, Error>> get_many_each(const std::vector<GetRequest>&,
                                                          WorkerPool&);
  struct Impl;
  net::Endpoint endpoint_;
  std::unique_ptr<Impl> impl_;
};

// One multi-get of get_many_each: `client` reads `keys` (both outlive the call).
struct GetRequest {
  Client* client = nullptr;
  const std::vector<std::string>* keys = nullptr;
};

// Many clients' multi-gets, each on its own client. Those a kept connection
// can take as one get command are pipelined from this thread: up to
// kMaxPipelinedGets requests are out before their replies are read, in
// order, each reply read letting the next request go, so the peers answer
// in parallel while this thread waits about once per window, not once per
// client (most of a small canary round's CPU was those waits and the worker
// handoffs around them). The window bounds what the peers are asked at once:
// 1,000 proxies' gets sent together kept the lab's proxies busy past the io
// deadline. The others (no kept connection yet, keys beyond one command, a
// connection the peer closed before answering) then run as get_many() on
// `pool`.
//
// results[i] is what requests[i].client->get_many(*requests[i].keys) returns,
// within the same bounds, but for time: a pipelined get's io deadline counts
// from its send and bounds waiting for its reply, while bytes that have
// already arrived are read even after it (within the reply cap), so a peer
// that holds up the batch costs the others nothing but the wait; one that
// found its kept connection closed is retried once by get_many, with a
// deadline of its own. A peer that stalls holds the window up to one io
// deadline, as it held one of the pool's threads. Distinct requests must
// name distinct clients.
inline constexpr std::size_t kMaxPipelinedGets = 32;
std::vector<Result<Values, Error>> get_many_each(const std::vector<GetRequest>& requests,
                                                 WorkerPool& pool);

}  // namespace ringwatch::mc
