// The only translation unit that includes Boost.Beast and OpenSSL (compile time).
#include "lib/http/client.h"

#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl.hpp>
#include <charconv>
#include <memory>
#include <optional>
#include <stdexcept>
#include <type_traits>

#include "lib/util/deadlines.h"

namespace ringwatch::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

namespace {

constexpr std::uint64_t kMaxResponseBody = 1 << 20;

bool is_timeout(const beast::error_code& ec) {
  return ec == beast::error::timeout || ec == asio::error::timed_out;
}

std::string ms(std::chrono::milliseconds duration) {
  return std::to_string(duration.count()) + " ms";
}

using TlsStream = beast::ssl_stream<beast::tcp_stream>;

beast::tcp_stream& tcp_of(beast::tcp_stream& stream) {
  return stream;
}
beast::tcp_stream& tcp_of(TlsStream& stream) {
  return beast::get_lowest_layer(stream);
}

// One request in flight, over a plain or a TLS stream. Handlers hold it by
// shared_ptr, so a handler that runs late (after cancel()) never touches
// freed memory.
template <class Stream>
struct Exchange : std::enable_shared_from_this<Exchange<Stream>> {
  template <class... StreamArgs>
  Exchange(asio::io_context& ioc, util::Deadlines limits, std::string where,
           StreamArgs&&... stream_args)
      : resolver(ioc),
        stream(ioc, std::forward<StreamArgs>(stream_args)...),
        timer(ioc),
        deadlines(limits),
        peer(std::move(where)) {
    parser.body_limit(kMaxResponseBody);
  }

  tcp::resolver resolver;
  Stream stream;
  asio::steady_timer timer;  // bounds name resolution
  util::Deadlines deadlines;
  std::string peer;  // "host:port" for messages
  std::chrono::steady_clock::time_point connect_deadline{};
  bhttp::request<bhttp::string_body> request;
  beast::flat_buffer buffer;
  bhttp::response_parser<bhttp::string_body> parser;
  std::optional<Error> error;
  bool finished = false;

  void fail(ErrorKind kind, std::string message) {
    if (finished) return;
    finished = true;
    error = Error{kind, std::move(message)};
    timer.cancel();
    beast::error_code ignored;
    tcp_of(stream).socket().close(ignored);
  }

  void resolve(const std::string& host, std::uint16_t port) {
    timer.expires_at(connect_deadline);
    timer.async_wait([self = this->shared_from_this()](const beast::error_code& ec) {
      if (ec || self->finished) return;
      self->resolver.cancel();
      self->fail(ErrorKind::connect_timeout,
                 "resolving " + self->peer + " took longer than " + ms(self->deadlines.connect));
    });
    resolver.async_resolve(
        host, std::to_string(port),
        [self = this->shared_from_this(), host](const beast::error_code& ec,
                                                tcp::resolver::results_type results) {
          self->timer.cancel();
          if (self->finished) return;
          if (ec) {
            self->fail(ErrorKind::resolve, "cannot resolve " + host + ": " + ec.message());
            return;
          }
          self->connect(std::vector<tcp::endpoint>(results.begin(), results.end()));
        });
  }

  void connect(const std::vector<tcp::endpoint>& endpoints) {
    tcp_of(stream).expires_at(connect_deadline);
    tcp_of(stream).async_connect(endpoints, [self = this->shared_from_this()](
                                                const beast::error_code& ec, const tcp::endpoint&) {
      if (self->finished) return;
      if (is_timeout(ec)) {
        self->fail(ErrorKind::connect_timeout,
                   "connect to " + self->peer + " timed out after " + ms(self->deadlines.connect));
      } else if (ec == asio::error::connection_refused) {
        self->fail(ErrorKind::connect_refused, "connect to " + self->peer + " refused");
      } else if (ec) {
        self->fail(ErrorKind::io, "connect to " + self->peer + ": " + ec.message());
      } else {
        self->handshake();
      }
    });
  }

  void handshake() {
    tcp_of(stream).expires_after(deadlines.io);
    if constexpr (std::is_same_v<Stream, TlsStream>) {
      stream.async_handshake(
          ssl::stream_base::client, [self = this->shared_from_this()](const beast::error_code& ec) {
            if (self->finished) return;
            if (is_timeout(ec)) {
              self->fail(ErrorKind::timeout, "no TLS handshake with " + self->peer + " within " +
                                                 ms(self->deadlines.io));
            } else if (ec) {
              self->fail(ErrorKind::tls,
                         "TLS handshake with " + self->peer + " failed: " + tls_reason(ec));
            } else {
              self->write();
            }
          });
    } else {
      write();
    }
  }

  static std::string tls_reason(const beast::error_code& ec) {
    std::string reason = ec.message();
    if (ec.category() == asio::error::get_ssl_category()) {
      const char* text = ::ERR_reason_error_string(static_cast<unsigned long>(ec.value()));
      if (text != nullptr) reason = text;
    }
    return reason;
  }

  void write() {
    tcp_of(stream).expires_after(deadlines.io);
    bhttp::async_write(stream, request,
                       [self = this->shared_from_this()](const beast::error_code& ec, std::size_t) {
                         if (self->finished) return;
                         if (ec) {
                           self->io_failure(ec, "sending to");
                           return;
                         }
                         self->read();
                       });
  }

  void read() {
    bhttp::async_read(stream, buffer, parser,
                      [self = this->shared_from_this()](const beast::error_code& ec, std::size_t) {
                        if (self->finished) return;
                        if (ec) {
                          self->io_failure(ec, "reading from");
                          return;
                        }
                        self->finished = true;
                        beast::error_code ignored;
                        tcp_of(self->stream).socket().shutdown(tcp::socket::shutdown_both, ignored);
                        tcp_of(self->stream).socket().close(ignored);
                      });
  }

  void io_failure(const beast::error_code& ec, const char* phase) {
    if (is_timeout(ec)) {
      fail(ErrorKind::timeout, "no response from " + peer + " within " + ms(deadlines.io));
    } else if (ec == bhttp::error::end_of_stream || ec == asio::error::eof ||
               ec == asio::error::connection_reset || ec == ssl::error::stream_truncated) {
      fail(ErrorKind::io, peer + " closed the connection before a response");
    } else if (ec.category() == bhttp::make_error_code(bhttp::error::end_of_stream).category()) {
      fail(ErrorKind::protocol, "bad HTTP response from " + peer + ": " + ec.message());
    } else {
      fail(ErrorKind::io, std::string(phase) + " " + peer + ": " + ec.message());
    }
  }
};

[[noreturn]] void bad_url(std::string_view url, const std::string& expectation) {
  throw std::invalid_argument(std::string(url) + ": " + expectation);
}

}  // namespace

std::string Url::host_header() const {
  const bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

std::string Url::to_string() const {
  return (tls ? "https://" : "http://") + host_header() + target;
}

Url parse_url(std::string_view url) {
  auto starts_with_ci = [&url](std::string_view prefix) {
    if (url.size() < prefix.size()) return false;
    for (std::size_t i = 0; i < prefix.size(); ++i) {
      if (std::tolower(static_cast<unsigned char>(url[i])) != prefix[i]) return false;
    }
    return true;
  };
  const bool tls = starts_with_ci("https://");
  if (!tls && !starts_with_ci("http://")) bad_url(url, "expected http[s]://host[:port][/path]");
  std::string_view rest = url.substr(tls ? 8 : 7);
  const std::size_t authority_end = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, authority_end);
  Url result;
  result.tls = tls;
  result.port = tls ? 443 : 80;
  if (authority_end != std::string_view::npos) {
    result.target = std::string(rest.substr(authority_end));
    if (result.target.front() != '/') result.target.insert(0, "/");
    const std::size_t fragment = result.target.find('#');
    if (fragment != std::string::npos) result.target.resize(fragment);
  } else {
    result.target = "/";
  }
  if (authority.find('@') != std::string_view::npos) {
    bad_url(url, "credentials in URLs are not supported");
  }
  std::string_view port_text;
  if (!authority.empty() && authority.front() == '[') {
    const std::size_t close = authority.find(']');
    if (close == std::string_view::npos) bad_url(url, "unterminated IPv6 address");
    result.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') bad_url(url, "expected ':' and a port after the IPv6 address");
      port_text = after.substr(1);
      if (port_text.empty()) bad_url(url, "expected a port from 1 to 65535, got \"\"");
    }
  } else {
    const std::size_t colon = authority.rfind(':');
    result.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) {
      port_text = authority.substr(colon + 1);
      if (port_text.empty()) bad_url(url, "expected a port from 1 to 65535, got \"\"");
    }
  }
  if (result.host.empty()) bad_url(url, "expected a host");
  if (!port_text.empty()) {
    unsigned value = 0;
    const auto [end, ec] =
        std::from_chars(port_text.data(), port_text.data() + port_text.size(), value);
    if (ec != std::errc{} || end != port_text.data() + port_text.size() || value < 1 ||
        value > 65535) {
      bad_url(url, "expected a port from 1 to 65535, got \"" + std::string(port_text) + "\"");
    }
    result.port = static_cast<std::uint16_t>(value);
  }
  return result;
}

const char* to_string(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::resolve:
      return "resolve";
    case ErrorKind::connect_refused:
      return "connect_refused";
    case ErrorKind::connect_timeout:
      return "connect_timeout";
    case ErrorKind::timeout:
      return "timeout";
    case ErrorKind::io:
      return "io";
    case ErrorKind::protocol:
      return "protocol";
    case ErrorKind::cancelled:
      return "cancelled";
    case ErrorKind::tls:
      return "tls";
  }
  return "io";
}

struct Client::Impl {
  util::Deadlines deadlines;
  std::string user_agent;
  asio::io_context ioc{1};
  std::atomic<bool> cancelled{false};
  ssl::context tls{ssl::context::tls_client};
};

namespace {

template <class Stream>
Result<Response, Error> run(asio::io_context& ioc, const std::atomic<bool>& cancelled_flag,
                            std::shared_ptr<Exchange<Stream>> exchange, const Url& url) {
  exchange->connect_deadline = std::chrono::steady_clock::now() + exchange->deadlines.connect;
  ioc.restart();
  const auto cancelled = [&url] {
    return Error{ErrorKind::cancelled, "request to " + url.host_header() + " cancelled"};
  };
  if (cancelled_flag) return cancelled();  // cancel() may have stopped before the restart
  beast::error_code literal_error;
  const auto address = asio::ip::make_address(url.host, literal_error);
  if constexpr (std::is_same_v<Stream, TlsStream>) {
    // The certificate must name the host; SNI only for names (RFC 6066).
    exchange->stream.set_verify_callback(ssl::host_name_verification(url.host));
    if (literal_error)
      ::SSL_set_tlsext_host_name(exchange->stream.native_handle(), url.host.c_str());
  }
  if (!literal_error) {
    exchange->connect({tcp::endpoint(address, url.port)});
  } else {
    exchange->resolve(url.host, url.port);
  }
  ioc.run();
  if (cancelled_flag) return cancelled();
  if (exchange->error) return *exchange->error;
  if (!exchange->finished) {
    return Error{ErrorKind::io, "request to " + url.host_header() + " did not complete"};
  }
  auto& response = exchange->parser.get();
  Response result;
  result.status = static_cast<int>(response.result_int());
  auto type = response.find(bhttp::field::content_type);
  if (type != response.end()) result.content_type = std::string(type->value());
  result.body = std::move(response.body());
  return result;
}

template <class Stream>
void prepare(bhttp::request<bhttp::string_body>& request, std::string_view method, const Url& url,
             const std::string& user_agent, const std::string& body,
             const std::string& content_type, const Headers& headers) {
  request.method_string(beast::string_view(method.data(), method.size()));
  request.target(url.target);
  request.version(11);
  request.set(bhttp::field::host, url.host_header());
  request.set(bhttp::field::user_agent, user_agent);
  request.set(bhttp::field::connection, "close");
  for (const auto& [name, value] : headers) request.set(name, value);
  if (!body.empty() || method == "POST" || method == "PUT") {
    request.set(bhttp::field::content_type, content_type);
    request.body() = body;
  }
  request.prepare_payload();
}

}  // namespace

Client::Client(util::Deadlines deadlines, std::string user_agent, ClientTls tls)
    : impl_(std::make_unique<Impl>()) {
  impl_->deadlines = deadlines;
  impl_->user_agent = std::move(user_agent);
  auto& context = impl_->tls;
  context.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                      ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
  context.set_verify_mode(ssl::verify_peer);
  beast::error_code error;
  if (tls.ca_file.empty()) {
    context.set_default_verify_paths(error);
  } else {
    context.load_verify_file(tls.ca_file, error);
    if (error) {
      throw std::invalid_argument("ca_file: cannot load " + tls.ca_file + ": " + error.message());
    }
  }
}

Client::~Client() = default;

void Client::cancel() {
  impl_->cancelled = true;
  impl_->ioc.stop();
}

Result<Response, Error> Client::request(std::string_view method, const Url& url,
                                        const std::string& body, const std::string& content_type,
                                        const Headers& headers) {
  if (impl_->cancelled) {
    return Error{ErrorKind::cancelled, "request to " + url.host_header() + " cancelled"};
  }
  if (url.tls) {
    auto exchange = std::make_shared<Exchange<TlsStream>>(impl_->ioc, impl_->deadlines,
                                                          url.host_header(), impl_->tls);
    prepare<TlsStream>(exchange->request, method, url, impl_->user_agent, body, content_type,
                       headers);
    return run(impl_->ioc, impl_->cancelled, std::move(exchange), url);
  }
  auto exchange = std::make_shared<Exchange<beast::tcp_stream>>(impl_->ioc, impl_->deadlines,
                                                                url.host_header());
  prepare<beast::tcp_stream>(exchange->request, method, url, impl_->user_agent, body, content_type,
                             headers);
  return run(impl_->ioc, impl_->cancelled, std::move(exchange), url);
}

}  // namespace ringwatch::http
