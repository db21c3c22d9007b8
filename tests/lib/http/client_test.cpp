// The HTTP client under the sinks (lib/http/client.h): URLs, deadlines and
// failures against real sockets on loopback.
#include "lib/http/client.h"

#include <gtest/gtest.h>

#include <stdexcept>
#include <thread>

#include "tests/support/http_test_server.h"
#include "tests/support/memcached_process.h"  // free_port

namespace ringwatch::http {
namespace {

using namespace std::chrono_literals;
using testing::HoldBacklog;
using testing::TestHttpServer;
using Steady = std::chrono::steady_clock;

std::string url_error(const std::string& url) {
  try {
    parse_url(url);
  } catch (const std::invalid_argument& error) {
    return error.what();
  }
  return "(accepted)";
}

TEST(HttpClientTest, ParsesHttpUrls) {
  Url url = parse_url("http://127.0.0.1:9093");
  EXPECT_EQ(url.host, "127.0.0.1");
  EXPECT_EQ(url.port, 9093);
  EXPECT_EQ(url.target, "/");
  url = parse_url("HTTP://alertmanager.example/am/?x=1#frag");
  EXPECT_EQ(url.host, "alertmanager.example");
  EXPECT_EQ(url.port, 80);
  EXPECT_EQ(url.target, "/am/?x=1");
  url = parse_url("http://[::1]:8080/hook");
  EXPECT_EQ(url.host, "::1");
  EXPECT_EQ(url.port, 8080);
  EXPECT_EQ(url.host_header(), "[::1]:8080");
  EXPECT_EQ(url.to_string(), "http://[::1]:8080/hook");
  EXPECT_FALSE(url.tls);
  url = parse_url("https://am.example/am");
  EXPECT_TRUE(url.tls);
  EXPECT_EQ(url.port, 443);
  EXPECT_EQ(url.to_string(), "https://am.example:443/am");
}

TEST(HttpClientTest, RejectsUrlsItCannotServeWordForWord) {
  EXPECT_EQ(url_error("ftp://am:9093"), "ftp://am:9093: expected http[s]://host[:port][/path]");
  EXPECT_EQ(url_error("am:9093"), "am:9093: expected http[s]://host[:port][/path]");
  EXPECT_EQ(url_error("http://:9093"), "http://:9093: expected a host");
  EXPECT_EQ(url_error("http://am:0"), "http://am:0: expected a port from 1 to 65535, got \"0\"");
  EXPECT_EQ(url_error("http://am:x/"), "http://am:x/: expected a port from 1 to 65535, got \"x\"");
  EXPECT_EQ(url_error("http://am:/"), "http://am:/: expected a port from 1 to 65535, got \"\"");
  EXPECT_EQ(url_error("http://u:p@am:9093"),
            "http://u:p@am:9093: credentials in URLs are not supported");
  EXPECT_EQ(url_error("http://[::1:9093"), "http://[::1:9093: unterminated IPv6 address");
}

TEST(HttpClientTest, PostsAndReadsTheResponse) {
  TestHttpServer server;
  server.set_status(202, "queued");
  Client client;
  auto result = client.request("POST", parse_url(server.url("/hook?x=1")), R"({"a":1})");
  ASSERT_TRUE(result.ok()) << result.error().message;
  EXPECT_EQ(result.value().status, 202);
  EXPECT_EQ(result.value().body, "queued");
  EXPECT_EQ(result.value().content_type, "text/plain");
  auto requests = server.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].method, "POST");
  EXPECT_EQ(requests[0].target, "/hook?x=1");
  EXPECT_EQ(requests[0].content_type, "application/json");
  EXPECT_EQ(requests[0].body, R"({"a":1})");
}

TEST(HttpClientTest, ANonSuccessStatusIsAResponseNotAnError) {
  TestHttpServer server;
  server.set_status(503, "overloaded");
  Client client;
  auto result = client.request("GET", parse_url(server.url("/")));
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result.value().status, 503);
}

TEST(HttpClientTest, ARefusedConnectionIsAnErrorValue) {
  const std::uint16_t port = testing::free_port();  // nothing listens there
  Client client;
  auto result = client.request("POST", parse_url("http://127.0.0.1:" + std::to_string(port)), "x");
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().kind, ErrorKind::connect_refused);
  EXPECT_EQ(result.error().message, "connect to 127.0.0.1:" + std::to_string(port) + " refused");
}

TEST(HttpClientTest, AConnectThatHangsEndsAtTheConnectDeadline) {
  HoldBacklog backlog;  // SYNs are dropped: connect() hangs
  Client client({.connect = 300ms, .io = 5000ms});
  const auto start = Steady::now();
  auto result =
      client.request("POST", parse_url("http://127.0.0.1:" + std::to_string(backlog.port())), "x");
  const auto elapsed = Steady::now() - start;
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().kind, ErrorKind::connect_timeout);
  EXPECT_EQ(result.error().message,
            "connect to 127.0.0.1:" + std::to_string(backlog.port()) + " timed out after 300 ms");
  EXPECT_GE(elapsed, 290ms);
  EXPECT_LT(elapsed, 2000ms);
}

TEST(HttpClientTest, AReceiverThatNeverAnswersEndsAtTheIoDeadline) {
  TestHttpServer server;
  server.set_mode(TestHttpServer::Mode::silent);
  Client client({.connect = 1000ms, .io = 300ms});
  const auto start = Steady::now();
  auto result = client.request("POST", parse_url(server.url("/")), "x");
  const auto elapsed = Steady::now() - start;
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().kind, ErrorKind::timeout);
  EXPECT_EQ(result.error().message,
            "no response from 127.0.0.1:" + std::to_string(server.port()) + " within 300 ms");
  EXPECT_GE(elapsed, 290ms);
  EXPECT_LT(elapsed, 2000ms);
}

TEST(HttpClientTest, CancelEndsARequestInFlightAndEveryLaterOne) {
  TestHttpServer server;
  server.set_mode(TestHttpServer::Mode::silent);
  Client client({.connect = 1000ms, .io = 10000ms});
  std::thread canceller([&] {
    server.wait_for_connections(1, 5000ms);
    client.cancel();
  });
  const auto start = Steady::now();
  auto result = client.request("POST", parse_url(server.url("/")), "x");
  canceller.join();
  EXPECT_LT(Steady::now() - start, 5000ms) << "it waited for the 10 s io deadline";
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().kind, ErrorKind::cancelled);
  auto later = client.request("POST", parse_url(server.url("/")), "x");
  ASSERT_FALSE(later.ok());
  EXPECT_EQ(later.error().kind, ErrorKind::cancelled);
}

TEST(HttpClientTest, ResolvesNames) {
  TestHttpServer server;
  Client client;
  auto result =
      client.request("GET", parse_url("http://localhost:" + std::to_string(server.port()) + "/x"));
  // localhost may resolve to ::1 first, where nothing listens; the client
  // tries every address.
  ASSERT_TRUE(result.ok()) << result.error().message;
  EXPECT_EQ(result.value().status, 200);
}

}  // namespace
}  // namespace ringwatch::http
