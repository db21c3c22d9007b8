#pragma once
// A memcached text-protocol client for one endpoint (a proxy or a backend),
// over libmemcached. RAII: the connection closes with the object.
//
// Every call is bounded: connect by util::Deadlines::connect, every wait for bytes by
// util::Deadlines::io, so a refused, stalled or silent peer returns a typed Error in
// about that time and never hangs. libmemcached return codes do not leak out
// of this file.
//
// The connection is kept between calls and dropped after any failed call (the
// next call connects afresh). A call that finds a kept connection closed or
// reset by the peer (a restart) is retried once on a new connection; all
// operations here are idempotent.
//
// Thread-safety: one Client per thread; distinct Clients are independent.

#include <chrono>
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

namespace ringwatch::mc {

enum class ErrorKind {
  connect_refused,  // nothing listens there (or the peer reset the connection)
  timeout,          // connect or I/O deadline passed
  protocol,         // the peer answered something that is not memcached protocol
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

class Client {
 public:
  Client(net::Endpoint endpoint, util::Deadlines deadlines);
  ~Client();
  Client(Client&&) noexcept;
  Client& operator=(Client&&) noexcept;
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  const net::Endpoint& endpoint() const { return endpoint_; }

  // Stores all items, pipelined (requests buffered and flushed in one batch),
  // and returns only after the peer has answered every one of them, so a read
  // through another connection afterwards observes the writes. Sets the peer
  // answered with SERVER_ERROR (a proxy whose backend failed) do not stop the
  // batch: every reply is still read, and the result is then a server_error
  // counting them; which keys failed, a later read shows.
  Result<Done, Error> set_many(const std::vector<Item>& items, std::chrono::seconds ttl);

  // One pipelined multi-get. Keys that are absent are simply not in the result.
  // Very long key lists go out as several mgets of at most 32 KiB of keys, so
  // a stalled peer costs one io deadline, not one per key.
  Result<Values, Error> get_many(const std::vector<std::string>& keys);

  // Convenience single-key forms (used by tests and the naive benchmark).
  // set() is set_many() with one item: a NOT_STORED / too-large reply is not
  // reported.
  Result<Done, Error> set(const std::string& key, const std::string& value,
                          std::chrono::seconds ttl);
  Result<std::optional<std::string>, Error> get(const std::string& key);

  // `stats` (group empty) or `stats <group>`, e.g. "conns". A value ends at
  // its first space (libmemcached's parser). An unknown group is server_error.
  Result<Stats, Error> stats(std::string_view group = {});

 private:
  struct Impl;
  net::Endpoint endpoint_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ringwatch::mc
