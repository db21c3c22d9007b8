#include "daemon/http_server.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/core/detect_ssl.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <limits>
#include <list>
#include <optional>
#include <stdexcept>

#include "lib/util/text.h"

namespace ringwatch::daemon {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

HttpResponse json_error(int status, const std::string& message) {
  // A message may carry a piece of the request (a path, a parameter): the
  // body is valid UTF-8 JSON whatever the request held.
  const std::string text = util::printable(message, std::numeric_limits<std::size_t>::max());
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
  w.StartObject();
  w.Key("error");
  w.String(text.c_str(), static_cast<rapidjson::SizeType>(text.size()));
  w.EndObject();
  HttpResponse response;
  response.status = status;
  response.body = std::string(buffer.GetString(), buffer.GetSize()) + "\n";
  return response;
}

namespace {

// What the server needs of a connection to stop it.
class Closable {
 public:
  virtual ~Closable() = default;
  virtual void close() = 0;
};

// The answer to a failed read, or nullopt when the connection just closes
// (the peer went away, idled out, or the server stops).
std::optional<HttpResponse> read_error_response(const beast::error_code& error,
                                                const HttpServerOptions& options) {
  if (error == http::error::body_limit) {
    return json_error(413, "request body exceeds " + std::to_string(options.body_limit) + " bytes");
  }
  if (error == http::error::header_limit) {
    return json_error(431,
                      "request headers exceed " + std::to_string(options.header_limit) + " bytes");
  }
  if (error.category() == http::make_error_code(http::error::bad_target).category() ||
      error == http::error::partial_message) {
    return json_error(400, "malformed request: " + error.message());
  }
  return std::nullopt;
}

HttpRequest to_request(http::request<http::string_body>& message) {
  HttpRequest request;
  request.method = std::string(message.method_string());
  request.target = std::string(message.target());
  request.body = std::move(message.body());
  if (const auto it = message.find(http::field::authorization); it != message.end()) {
    request.authorization = std::string(it->value());
  }
  return request;
}

}  // namespace

std::variant<HttpRequest, HttpResponse, std::monostate> parse_request(
    std::string_view bytes, const HttpServerOptions& options) {
  if (bytes.empty()) return std::monostate{};  // end_of_stream: a connection closes
  http::request_parser<http::string_body> parser;
  parser.body_limit(options.body_limit);
  parser.header_limit(static_cast<std::uint32_t>(options.header_limit));
  beast::error_code error;
  while (!bytes.empty() && !parser.is_done() && !error) {
    const std::size_t used = parser.put(asio::buffer(bytes.data(), bytes.size()), error);
    if (error == http::error::need_more) break;
    if (used == 0 && !error) break;
    bytes.remove_prefix(used);
  }
  if (!parser.is_done() && (!error || error == http::error::need_more)) {
    error = {};
    parser.put_eof(error);  // the connection ends here
  }
  if (error) {
    if (auto response = read_error_response(error, options)) return std::move(*response);
    return std::monostate{};
  }
  if (!parser.is_done()) return std::monostate{};
  return to_request(parser.get());
}

struct HttpServer::Impl : std::enable_shared_from_this<HttpServer::Impl> {
  Impl(asio::io_context& context, HttpHandler h, HttpServerOptions o)
      : io(context), acceptor(context), handler(std::move(h)), options(std::move(o)) {}
  void accept();
  void track(const std::shared_ptr<Closable>& session) {
    sessions.remove_if([](const std::weak_ptr<Closable>& s) { return s.expired(); });
    sessions.push_back(session);
  }

  asio::io_context& io;
  tcp::acceptor acceptor;
  HttpHandler handler;
  HttpServerOptions options;
  std::optional<ssl::context> tls;
  bool stopped = false;
  std::list<std::weak_ptr<Closable>> sessions;
};

namespace {

using TlsStream = beast::ssl_stream<beast::tcp_stream>;

beast::tcp_stream& tcp_of(beast::tcp_stream& stream) {
  return stream;
}
beast::tcp_stream& tcp_of(TlsStream& stream) {
  return beast::get_lowest_layer(stream);
}

// One connection: plain (beast::tcp_stream) or TLS (after the handshake).
template <class Stream>
class Session : public Closable, public std::enable_shared_from_this<Session<Stream>> {
 public:
  Session(Stream stream, beast::flat_buffer buffer, std::shared_ptr<HttpServer::Impl> server)
      : stream_(std::move(stream)), buffer_(std::move(buffer)), server_(std::move(server)) {}

  void start() { read(); }
  void close() override {
    beast::error_code ignored;
    tcp_of(stream_).socket().shutdown(tcp::socket::shutdown_both, ignored);
    tcp_of(stream_).close();
  }

 private:
  void read() {
    head_ = false;
    parser_.emplace();
    parser_->body_limit(server_->options.body_limit);
    parser_->header_limit(static_cast<std::uint32_t>(server_->options.header_limit));
    tcp_of(stream_).expires_after(server_->options.idle_timeout);
    http::async_read(stream_, buffer_, *parser_,
                     [self = this->shared_from_this()](beast::error_code error, std::size_t) {
                       self->on_read(error);
                     });
  }

  void on_read(beast::error_code error) {
    if (error == http::error::end_of_stream || error == beast::error::timeout ||
        error == asio::error::operation_aborted || server_->stopped) {
      return close();
    }
    if (error) {
      if (auto response = read_error_response(error, server_->options)) {
        return write(std::move(*response), false);
      }
      return close();
    }
    auto& message = parser_->get();
    keep_alive_ = message.keep_alive();
    head_ = message.method() == http::verb::head;
    HttpRequest request = to_request(message);
    tcp_of(stream_).expires_never();
    auto self = this->shared_from_this();
    auto* io = &server_->io;
    server_->handler(request, [self, io](HttpResponse response) {
      asio::post(*io, [self, response = std::move(response)]() mutable {
        self->write(std::move(response), self->keep_alive_);
      });
    });
  }

  void write(HttpResponse response, bool keep_alive) {
    if (server_->stopped) return close();
    auto out = std::make_shared<http::response<http::string_body>>();
    out->version(11);
    out->result(static_cast<unsigned>(response.status));
    out->set(http::field::server, "ringwatchd");
    out->set(http::field::content_type, response.content_type);
    for (const auto& [name, value] : response.headers) out->set(name, value);
    out->body() = std::move(response.body);
    out->keep_alive(keep_alive);
    out->prepare_payload();
    if (head_) out->body().clear();  // HEAD: the GET's headers (Content-Length too), no body
    tcp_of(stream_).expires_after(server_->options.idle_timeout);
    http::async_write(stream_, *out,
                      [self = this->shared_from_this(), out](beast::error_code error, std::size_t) {
                        if (error || !out->keep_alive()) return self->close();
                        self->read();
                      });
  }

  Stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::shared_ptr<HttpServer::Impl> server_;
  bool keep_alive_ = false;
  bool head_ = false;
};

// A connection to a TLS listener before its handshake: TLS goes on to a
// Session over the TLS stream; plain HTTP is told so and closed.
class TlsStart : public Closable, public std::enable_shared_from_this<TlsStart> {
 public:
  TlsStart(tcp::socket socket, std::shared_ptr<HttpServer::Impl> server)
      : stream_(std::move(socket)), server_(std::move(server)) {}

  void start() {
    stream_.expires_after(server_->options.idle_timeout);
    beast::async_detect_ssl(stream_, buffer_,
                            [self = shared_from_this()](beast::error_code error, bool tls) {
                              self->on_detect(error, tls);
                            });
  }
  void close() override {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.close();
    if (tls_) tcp_of(*tls_).close();
  }

 private:
  void on_detect(beast::error_code error, bool tls) {
    if (error || server_->stopped) return close();
    if (!tls) return refuse_plain();
    tls_.emplace(std::move(stream_), *server_->tls);
    tcp_of(*tls_).expires_after(server_->options.idle_timeout);
    tls_->async_handshake(ssl::stream_base::server, buffer_.data(),
                          [self = shared_from_this()](beast::error_code e, std::size_t used) {
                            self->on_handshake(e, used);
                          });
  }

  void on_handshake(beast::error_code error, std::size_t used) {
    if (error || server_->stopped) return close();  // e.g. no client certificate
    buffer_.consume(used);
    auto session =
        std::make_shared<Session<TlsStream>>(std::move(*tls_), std::move(buffer_), server_);
    tls_.reset();
    server_->track(session);
    session->start();
  }

  void refuse_plain() {
    static const std::string kBody = "this port speaks TLS: use https://\n";
    static const std::string kAnswer =
        "HTTP/1.1 400 Bad Request\r\nServer: ringwatchd\r\nContent-Type: text/plain; "
        "charset=utf-8\r\nConnection: close\r\nContent-Length: " +
        std::to_string(kBody.size()) + "\r\n\r\n" + kBody;
    asio::async_write(
        stream_, asio::buffer(kAnswer),
        [self = shared_from_this()](beast::error_code, std::size_t) { self->close(); });
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<TlsStream> tls_;
  std::shared_ptr<HttpServer::Impl> server_;
};

// The server's TLS context from its options; throws TlsSetupError.
void setup_tls(ssl::context& context, const TlsOptions& options) {
  beast::error_code error;
  const auto fail = [&](const char* field, const std::string& file) {
    throw TlsSetupError(field, "cannot load " + file + ": " + error.message());
  };
  context.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                      ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 |
                      ssl::context::single_dh_use);
  if (options.tls13_only) context.set_options(ssl::context::no_tlsv1_2);
  context.use_certificate_chain_file(options.cert_file, error);
  if (error) fail("cert_file", options.cert_file);
  context.use_private_key_file(options.key_file, ssl::context::pem, error);
  if (error) fail("key_file", options.key_file);
  if (options.client_auth == ClientAuth::none) return;
  context.load_verify_file(options.client_ca_file, error);
  if (error) fail("client_ca_file", options.client_ca_file);
  context.set_verify_mode(options.client_auth == ClientAuth::require_and_verify
                              ? ssl::verify_peer | ssl::verify_fail_if_no_peer_cert
                              : ssl::verify_peer);
}

}  // namespace

void HttpServer::Impl::accept() {
  acceptor.async_accept([self = shared_from_this()](beast::error_code error, tcp::socket socket) {
    if (self->stopped) return;
    if (!error) {
      if (self->tls) {
        auto start = std::make_shared<TlsStart>(std::move(socket), self);
        self->track(start);
        start->start();
      } else {
        auto session = std::make_shared<Session<beast::tcp_stream>>(
            beast::tcp_stream(std::move(socket)), beast::flat_buffer(), self);
        self->track(session);
        session->start();
      }
    }
    self->accept();
  });
}

HttpServer::HttpServer(asio::io_context& io, const std::string& host, std::uint16_t port,
                       HttpHandler handler, HttpServerOptions options)
    : impl_(std::make_shared<Impl>(io, std::move(handler), std::move(options))) {
  if (impl_->options.tls) {
    impl_->tls.emplace(ssl::context::tls_server);
    setup_tls(*impl_->tls, *impl_->options.tls);
  }
  beast::error_code error;
  const auto address = asio::ip::make_address(host, error);
  const auto fail = [&](const beast::error_code& e) {
    throw std::runtime_error("cannot listen on " + host + ":" + std::to_string(port) + ": " +
                             e.message());
  };
  if (error) fail(error);
  const tcp::endpoint endpoint(address, port);
  impl_->acceptor.open(endpoint.protocol(), error);
  if (!error) impl_->acceptor.set_option(asio::socket_base::reuse_address(true), error);
  if (!error) impl_->acceptor.bind(endpoint, error);
  if (!error) impl_->acceptor.listen(asio::socket_base::max_listen_connections, error);
  if (error) fail(error);
  impl_->accept();
}

HttpServer::~HttpServer() {
  stop();
}

std::uint16_t HttpServer::port() const {
  beast::error_code error;
  return impl_->acceptor.local_endpoint(error).port();
}

void HttpServer::stop() {
  if (impl_->stopped) return;
  impl_->stopped = true;
  beast::error_code ignored;
  impl_->acceptor.close(ignored);
  for (const auto& weak : impl_->sessions) {
    if (auto session = weak.lock()) session->close();
  }
  impl_->sessions.clear();
}

}  // namespace ringwatch::daemon
