#pragma once
// A small HTTP/1.1 server for one Prometheus scrape endpoint, on a thread of
// its own (Boost.Beast stays inside scrape_server.cpp). For programs that are
// not ringwatchd (whose daemon/http_server.h serves its whole API): `ringwatch
// migrate run --metrics-listen`.
//
//   GET or HEAD <path>   200, the body from `render` (called on the server's
//                        thread, once per request), text/plain; version=0.0.4
//   GET or HEAD other    404
//   other methods        405
// Every answer closes its connection (Connection: close): a scraper opens
// one per scrape.
//
// Bounds: a connection has `deadline` to send its request and take the
// answer, then is closed; at most `max_connections` are open at once, and one
// accepted beyond that is closed at once, unanswered (counted in refused());
// request headers above 8 KiB and any request body are refused with 400.
//
// Thread-safety: construct and destroy on one thread; port() and refused()
// from any. The destructor stops the thread and closes every connection.

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace ringwatch::http {

struct ListenAddress {
  std::string host;  // an IP address literal (IPv6 without brackets)
  std::uint16_t port = 0;
  std::string to_string() const;  // "127.0.0.1:9471", "[::1]:9471"
};

// "HOST:PORT" with HOST an IPv4 literal or a bracketed IPv6 one and PORT
// 0..65535 (0: any free port); nullopt otherwise.
std::optional<ListenAddress> parse_listen_address(std::string_view text);

struct ScrapeServerOptions {
  std::string path = "/metrics";
  std::chrono::milliseconds deadline{10000};
  std::size_t max_connections = 16;
};

class ScrapeServer {
 public:
  // Binds and listens; throws std::runtime_error "cannot listen on
  // <host>:<port>: <reason>".
  ScrapeServer(const ListenAddress& address, std::function<std::string()> render,
               ScrapeServerOptions options = {});
  ~ScrapeServer();
  ScrapeServer(const ScrapeServer&) = delete;
  ScrapeServer& operator=(const ScrapeServer&) = delete;

  // The bound address (the port chosen when 0 was asked for).
  ListenAddress address() const;
  std::uint64_t refused() const;

  struct Impl;  // defined in scrape_server.cpp only

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace ringwatch::http
