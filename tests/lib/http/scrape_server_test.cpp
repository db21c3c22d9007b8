// lib/http's scrape server on loopback: what it answers, the addresses it
// takes, and its bounds (connections at once, the per-connection deadline).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>

#include "lib/http/client.h"
#include "lib/http/scrape_server.h"
#include "tests/support/eventually.h"

namespace ringwatch::http {
namespace {

using namespace std::chrono_literals;
using ringwatch::testing::eventually;

Url url_of(const ScrapeServer& server, const std::string& path) {
  return parse_url("http://" + server.address().to_string() + path);
}

// A plain TCP connection to the server that sends nothing by itself.
class RawConnection {
 public:
  explicit RawConnection(std::uint16_t port) : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
    timeval wait{20, 0};  // a bound on a hang, not an assertion
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof wait);
  }
  ~RawConnection() { ::close(fd_); }
  bool connected() const { return connected_; }
  // Everything the server sends until it closes the connection.
  std::string read_to_end() {
    std::string all;
    char buffer[4096];
    for (;;) {
      const ssize_t n = ::recv(fd_, buffer, sizeof buffer, 0);
      if (n <= 0) return all;
      all.append(buffer, static_cast<std::size_t>(n));
    }
  }
  void send(const std::string& bytes) { ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL); }

 private:
  int fd_;
  bool connected_ = false;
};

TEST(ScrapeServerTest, ParsesListenAddresses) {
  const auto v4 = parse_listen_address("127.0.0.1:9471");
  ASSERT_TRUE(v4);
  EXPECT_EQ(v4->host, "127.0.0.1");
  EXPECT_EQ(v4->port, 9471);
  const auto any_port = parse_listen_address("0.0.0.0:0");
  ASSERT_TRUE(any_port);
  EXPECT_EQ(any_port->port, 0);
  const auto v6 = parse_listen_address("[::1]:80");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->to_string(), "[::1]:80");
  for (const char* bad : {"localhost:80", "127.0.0.1", "127.0.0.1:", ":80", "::1:80",
                          "127.0.0.1:65536", "127.0.0.1:80x", "[127.0.0.1]:80"}) {
    EXPECT_FALSE(parse_listen_address(bad)) << bad;
  }
}

TEST(ScrapeServerTest, ServesTheRenderedTextAtItsPathOnly) {
  std::atomic<int> renders{0};
  ScrapeServer server({"127.0.0.1", 0}, [&] {
    ++renders;
    return std::string("ringwatch_up 1\n");
  });
  EXPECT_NE(server.address().port, 0);
  Client client;
  const auto metrics = client.request("GET", url_of(server, "/metrics"));
  ASSERT_TRUE(metrics) << metrics.error().message;
  EXPECT_EQ(metrics.value().status, 200);
  EXPECT_EQ(metrics.value().body, "ringwatch_up 1\n");
  EXPECT_EQ(metrics.value().content_type, "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(renders.load(), 1);

  const auto other = client.request("GET", url_of(server, "/"));
  ASSERT_TRUE(other);
  EXPECT_EQ(other.value().status, 404);
  EXPECT_EQ(other.value().body, "not found; metrics are at /metrics\n");
  const auto post = client.request("POST", url_of(server, "/metrics"), "x");
  ASSERT_TRUE(post);
  EXPECT_TRUE(post.value().status == 405 || post.value().status == 400) << post.value().status;
  EXPECT_EQ(renders.load(), 1);
}

TEST(ScrapeServerTest, AnAddressInUseIsRefusedByName) {
  ScrapeServer first({"127.0.0.1", 0}, [] { return std::string(); });
  const auto taken = first.address();
  try {
    ScrapeServer second(taken, [] { return std::string(); });
    FAIL() << "a second server listened on " << taken.to_string();
  } catch (const std::runtime_error& error) {
    EXPECT_EQ(std::string(error.what()),
              "cannot listen on " + taken.to_string() + ": Address already in use");
  }
}

TEST(ScrapeServerTest, ConnectionsBeyondTheBoundAreClosedAndIdleOnesTimeOut) {
  ScrapeServerOptions options;
  options.max_connections = 2;
  options.deadline = 500ms;
  ScrapeServer server(
      {"127.0.0.1", 0}, [] { return std::string("x 1\n"); }, options);
  const std::uint16_t port = server.address().port;
  {
    RawConnection idle_a(port);
    RawConnection idle_b(port);
    ASSERT_TRUE(idle_a.connected() && idle_b.connected());
    // The third is accepted and closed unanswered while both are open.
    ASSERT_TRUE(eventually([&] {
      RawConnection extra(port);
      return extra.read_to_end().empty() && server.refused() >= 1;
    }));
    // The idle ones are closed at their deadline, unanswered.
    EXPECT_EQ(idle_a.read_to_end(), "");
    EXPECT_EQ(idle_b.read_to_end(), "");
  }
  // And the server answers again.
  RawConnection scrape(port);
  scrape.send("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
  const std::string answer = scrape.read_to_end();
  EXPECT_EQ(answer.substr(0, 15), "HTTP/1.1 200 OK") << answer;
  EXPECT_NE(answer.find("\r\n\r\nx 1\n"), std::string::npos) << answer;
}

TEST(ScrapeServerTest, StoppingClosesOpenConnections) {
  auto server = std::make_unique<ScrapeServer>(ListenAddress{"127.0.0.1", 0},
                                               [] { return std::string("x 1\n"); });
  RawConnection idle(server->address().port);
  ASSERT_TRUE(idle.connected());
  RawConnection half(server->address().port);
  half.send("GET /metrics HTTP/1.1\r\n");  // a request cut short
  server.reset();
  EXPECT_EQ(idle.read_to_end(), "");
  EXPECT_EQ(half.read_to_end(), "");
}

}  // namespace
}  // namespace ringwatch::http
