#pragma once
// A small blocking HTTP/1.1 client (http:// and https://) with deadlines, for
// the alert sinks and the notifier. Boost.Beast and OpenSSL stay inside
// client.cpp.
//
// Every request opens one connection (Connection: close), resolves the host
// (IP literals skip resolution) and connects within `connect` (resolution
// included), then (https) makes the TLS handshake, writes the request and
// reads the response within `io`. Responses above 1 MiB are a protocol error.
// Expected failures are values.
//
// TLS: the server's certificate must chain to ClientTls::ca_file (or, when
// empty, to the system's trusted CAs) and name the URL's host (a DNS name, or
// an IP address in its subjectAltName); TLS 1.2 at least. Extra request
// headers (Authorization) are sent as given and never appear in errors.
//
// Thread-safety: one Client serves one thread at a time; cancel() may be
// called from any thread and makes the request in progress, and every later
// one, fail at once with ErrorKind::cancelled.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "lib/util/deadlines.h"
#include "lib/util/result.h"

namespace ringwatch::http {

struct Url {
  bool tls = false;                 // https://
  std::string host{};               // a name or an IP literal (IPv6 without brackets)
  std::uint16_t port = 80;          // 443 by default with https://
  std::string target{};             // path and query, "/" at least
  std::string host_header() const;  // "host:port", IPv6 bracketed
  std::string to_string() const;    // "http[s]://host:port/target"
  friend bool operator==(const Url&, const Url&) = default;
};

// Parses "http[s]://host[:port][/path]". Throws std::invalid_argument with
// "<url>: <expectation>", e.g. "ftp://am: expected http[s]://host[:port][/path]".
Url parse_url(std::string_view url);

struct ClientTls {
  std::string ca_file{};  // PEM CAs to verify servers by; empty: the system's
  friend bool operator==(const ClientTls&, const ClientTls&) = default;
};

using Headers = std::vector<std::pair<std::string, std::string>>;

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
  cancelled,
  tls,  // the handshake failed (certificate not trusted, wrong name, ...)
};
const char* to_string(ErrorKind kind);

struct Error {
  ErrorKind kind = ErrorKind::io;
  std::string message{};  // "connect to 127.0.0.1:9 refused", "no response within 2000 ms", ...
};

class Client {
 public:
  // Throws std::invalid_argument "ca_file: cannot load <file>: <reason>".
  explicit Client(util::Deadlines deadlines = kDefaultDeadlines,
                  std::string user_agent = "ringwatch", ClientTls tls = {});
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Any status is a response; only transport failures are errors.
  Result<Response, Error> request(std::string_view method, const Url& url,
                                  const std::string& body = {},
                                  const std::string& content_type = "application/json",
                                  const Headers& headers = {});
  void cancel();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ringwatch::http
