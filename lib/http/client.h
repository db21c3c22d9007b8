#pragma once
// A small blocking HTTP/1.1 client (plain http only) with deadlines, for the
// alert sinks. Boost.Beast stays inside http_client.cpp.
//
// Every request opens one connection (Connection: close), resolves the host
// (IP literals skip resolution) and connects within `connect` (resolution
// included), then writes the request and reads the response within `io`.
// Responses above 1 MiB are a protocol error. Expected failures are values.
//
// Thread-safety: one Client serves one thread at a time; cancel() may be
// called from any thread and makes the request in progress, and every later
// one, fail at once with ErrorKind::cancelled.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "lib/util/deadlines.h"
#include "lib/util/result.h"

namespace ringwatch::http {

struct Url {
  std::string host{};  // a name or an IP literal (IPv6 without brackets)
  std::uint16_t port = 80;
  std::string target{};             // path and query, "/" at least
  std::string host_header() const;  // "host:port", IPv6 bracketed
  std::string to_string() const;    // "http://host:port/target"
};

// Parses "http://host[:port][/path]". Throws std::invalid_argument with
// "<url>: <expectation>", e.g. "https://am:9093: only http:// URLs are supported".
Url parse_url(std::string_view url);

// An HTTP peer (Alertmanager, a webhook) may be farther away than a cache node.
inline constexpr util::Deadlines kDefaultDeadlines{std::chrono::milliseconds(1000),
                                                   std::chrono::milliseconds(2000)};

struct Response {
  int status = 0;
  std::string content_type{};
  std::string body{};
};

enum class ErrorKind {
  resolve,
  connect_refused,
  connect_timeout,
  timeout,
  io,
  protocol,
  cancelled
};
const char* to_string(ErrorKind kind);

struct Error {
  ErrorKind kind = ErrorKind::io;
  std::string message{};  // "connect to 127.0.0.1:9 refused", "no response within 2000 ms", ...
};

class Client {
 public:
  explicit Client(util::Deadlines deadlines = kDefaultDeadlines,
                  std::string user_agent = "ringwatch");
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Any status is a response; only transport failures are errors.
  Result<Response, Error> request(std::string_view method, const Url& url,
                                  const std::string& body = {},
                                  const std::string& content_type = "application/json");
  void cancel();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ringwatch::http
