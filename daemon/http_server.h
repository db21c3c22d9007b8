#pragma once
// ringwatchd's HTTP/1.1 server (Boost.Beast, OpenSSL; both stay inside
// http_server.cpp). One acceptor on the daemon's io_context; each connection
// reads one request at a time, hands it to the Handler, and writes the
// response the handler gives its Responder (keep-alive honoured).
//
// TLS (HttpServerOptions::tls): every connection must start a TLS handshake;
// one that sends plain HTTP instead gets a plain "400 ... this port speaks
// TLS" and is closed. Client certificates are verified against
// client_ca_file at the handshake when client_auth asks for it (a
// connection without one is refused under require_and_verify). The
// certificate and key are loaded by the constructor: a bad file throws
// TlsSetupError naming the field.
//
// Bounds: request headers above header_limit answer 431, a body above
// body_limit answers 413 (both then close), a malformed request 400; a
// connection idle (or slow to send its request) for idle_timeout is closed.
// Error answers are JSON: {"error": "..."}.
//
// Thread-safety: construct, port() and stop() on the io_context's thread. The
// Handler runs on that thread; a Responder may be called from any thread,
// exactly once (it posts to the io_context).

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace boost::asio {
class io_context;
}

namespace ringwatch::daemon {

struct HttpRequest {
  std::string method{};  // "GET", "POST", ...
  std::string target{};  // path and query as sent
  std::string body{};
  std::string authorization{};  // the Authorization header, if any
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body{};
  std::vector<std::pair<std::string, std::string>> headers{};  // extra headers
};

HttpResponse json_error(int status, const std::string& message);  // {"error": message}

using Responder = std::function<void(HttpResponse)>;
using HttpHandler = std::function<void(const HttpRequest&, Responder)>;

enum class ClientAuth { none, verify_if_given, require_and_verify };

struct TlsOptions {
  std::string cert_file{};       // PEM certificate (chain)
  std::string key_file{};        // PEM private key
  std::string client_ca_file{};  // PEM CAs for client certificates
  ClientAuth client_auth = ClientAuth::none;
  bool tls13_only = false;  // else TLS 1.2 and 1.3
  friend bool operator==(const TlsOptions&, const TlsOptions&) = default;
};

// A TLS file that cannot be used; `field` is the TlsOptions field
// ("cert_file", "key_file", "client_ca_file").
class TlsSetupError : public std::runtime_error {
 public:
  TlsSetupError(std::string field, const std::string& message)
      : std::runtime_error(message), field_(std::move(field)) {}
  const std::string& field() const { return field_; }

 private:
  std::string field_;
};

struct HttpServerOptions {
  std::optional<TlsOptions> tls{};  // none: plain HTTP
  std::size_t body_limit = 64 * 1024;
  std::size_t header_limit = 16 * 1024;
  std::chrono::milliseconds idle_timeout{30000};
};

// What a connection makes of `bytes` received on it, without a socket: the
// first request, as the handler would get it; the error response the
// connection would send (malformed, oversized, cut short); or monostate when
// it would just close (no bytes at all). The same parser, limits
// and answers as a connection's: for the fuzz target and tests.
std::variant<HttpRequest, HttpResponse, std::monostate> parse_request(
    std::string_view bytes, const HttpServerOptions& options = {});

class HttpServer {
 public:
  // Binds and listens on host:port (port 0: a free one). Throws
  // std::runtime_error "cannot listen on <host>:<port>: <reason>", or
  // TlsSetupError.
  HttpServer(boost::asio::io_context& io, const std::string& host, std::uint16_t port,
             HttpHandler handler, HttpServerOptions options = {});
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  std::uint16_t port() const;
  // Closes the listener and every open connection. Idempotent.
  void stop();

  struct Impl;  // defined in http_server.cpp only

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace ringwatch::daemon
