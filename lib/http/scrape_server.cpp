#include "lib/http/scrape_server.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <stdexcept>
#include <thread>

#include "lib/net/address.h"

namespace ringwatch::http {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;

constexpr std::uint32_t kHeaderLimit = 8 * 1024;

}  // namespace

std::string ListenAddress::to_string() const {
  const bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

std::optional<ListenAddress> parse_listen_address(std::string_view text) {
  const auto colon = text.rfind(':');
  if (colon == std::string_view::npos || colon + 1 == text.size()) return std::nullopt;
  std::string_view host = text.substr(0, colon);
  const std::string_view port_text = text.substr(colon + 1);
  const bool bracketed = host.size() >= 2 && host.front() == '[' && host.back() == ']';
  if (bracketed) host = host.substr(1, host.size() - 2);
  const auto ip = net::IpAddress::parse(host);
  if (!ip || ip->v6 != bracketed) return std::nullopt;
  if (port_text.size() > 5) return std::nullopt;
  unsigned port = 0;
  for (const char c : port_text) {
    if (c < '0' || c > '9') return std::nullopt;
    port = port * 10 + static_cast<unsigned>(c - '0');
  }
  if (port > 65535) return std::nullopt;
  return ListenAddress{std::string(host), static_cast<std::uint16_t>(port)};
}

// Members in this order: the io_context is destroyed after the acceptor and
// before the counters its pending sessions decrement.
struct ScrapeServer::Impl {
  std::function<std::string()> render;
  ScrapeServerOptions options;
  std::size_t open = 0;  // connections; on the server's thread only
  std::atomic<std::uint64_t> refused{0};
  asio::io_context io;
  tcp::acceptor acceptor{io};
  std::thread thread;

  void accept();
};

namespace {

// One connection: one request, one answer, closed.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(ScrapeServer::Impl& server, tcp::socket socket)
      : server_(server), stream_(std::move(socket)) {
    ++server_.open;
  }
  ~Session() { --server_.open; }

  void start() {
    parser_.header_limit(kHeaderLimit);
    parser_.body_limit(0);
    stream_.expires_after(server_.options.deadline);
    bhttp::async_read(stream_, buffer_, parser_,
                      [self = shared_from_this()](beast::error_code error, std::size_t) {
                        self->on_read(error);
                      });
  }

 private:
  void on_read(const beast::error_code& error) {
    if (error == bhttp::error::end_of_stream || error == beast::error::timeout ||
        error == asio::error::operation_aborted || error == asio::error::connection_reset) {
      return;  // gone, too slow, or the server stops: nothing to answer
    }
    if (error) return respond(bhttp::status::bad_request, "bad request: " + error.message() + "\n");
    const auto& request = parser_.get();
    const bool get = request.method() == bhttp::verb::get || request.method() == bhttp::verb::head;
    head_ = request.method() == bhttp::verb::head;
    if (!get) {
      response_.set(bhttp::field::allow, "GET, HEAD");
      return respond(bhttp::status::method_not_allowed, "only GET and HEAD\n");
    }
    const std::string_view target(request.target().data(), request.target().size());
    if (target.substr(0, target.find('?')) != server_.options.path) {
      return respond(bhttp::status::not_found,
                     "not found; metrics are at " + server_.options.path + "\n");
    }
    std::string body;
    try {
      body = server_.render();
    } catch (const std::exception& failed) {
      return respond(bhttp::status::internal_server_error, std::string(failed.what()) + "\n");
    }
    respond(bhttp::status::ok, std::move(body), "text/plain; version=0.0.4; charset=utf-8");
  }

  void respond(bhttp::status status, std::string body,
               const char* content_type = "text/plain; charset=utf-8") {
    response_.version(11);
    response_.result(status);
    response_.set(bhttp::field::server, "ringwatch");
    response_.set(bhttp::field::content_type, content_type);
    response_.keep_alive(false);
    response_.body() = std::move(body);
    response_.prepare_payload();
    if (head_) response_.body().clear();  // Content-Length stays the GET's
    bhttp::async_write(stream_, response_,
                       [self = shared_from_this()](beast::error_code, std::size_t) {
                         beast::error_code ignored;
                         self->stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
                       });
  }

  ScrapeServer::Impl& server_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  bhttp::request_parser<bhttp::empty_body> parser_;
  bhttp::response<bhttp::string_body> response_;
  bool head_ = false;
};

}  // namespace

void ScrapeServer::Impl::accept() {
  acceptor.async_accept([this](beast::error_code error, tcp::socket socket) {
    if (error == asio::error::operation_aborted) return;
    if (!error) {
      if (open >= options.max_connections) {
        ++refused;
        beast::error_code ignored;
        socket.close(ignored);
      } else {
        std::make_shared<Session>(*this, std::move(socket))->start();
      }
    }
    accept();
  });
}

ScrapeServer::ScrapeServer(const ListenAddress& address, std::function<std::string()> render,
                           ScrapeServerOptions options)
    : impl_(std::make_unique<Impl>()) {
  impl_->render = std::move(render);
  impl_->options = std::move(options);
  beast::error_code error;
  const auto ip = asio::ip::make_address(address.host, error);
  const tcp::endpoint endpoint(ip, address.port);
  auto fail = [&] {
    throw std::runtime_error("cannot listen on " + address.to_string() + ": " + error.message());
  };
  if (error) fail();
  impl_->acceptor.open(endpoint.protocol(), error);
  if (error) fail();
  impl_->acceptor.set_option(asio::socket_base::reuse_address(true), error);
  impl_->acceptor.bind(endpoint, error);
  if (error) fail();
  impl_->acceptor.listen(asio::socket_base::max_listen_connections, error);
  if (error) fail();
  impl_->accept();
  impl_->thread = std::thread([impl = impl_.get()] { impl->io.run(); });
}

ScrapeServer::~ScrapeServer() {
  impl_->io.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

ListenAddress ScrapeServer::address() const {
  const auto endpoint = impl_->acceptor.local_endpoint();
  return ListenAddress{endpoint.address().to_string(), endpoint.port()};
}

std::uint64_t ScrapeServer::refused() const {
  return impl_->refused.load();
}

}  // namespace ringwatch::http
