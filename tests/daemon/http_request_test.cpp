// What a connection makes of the bytes it receives, without a socket
// (parse_request: the entry point of the HTTP fuzz target).
#include <gtest/gtest.h>

#include <string>
#include <variant>

#include "daemon/http_server.h"

namespace ringwatch::daemon {
namespace {

TEST(HttpRequestTest, AWholeRequestIsHandedOn) {
  const auto parsed = parse_request(
      "POST /v1/clusters/lab/preflight?checks=dns HTTP/1.1\r\n"
      "Host: x\r\nContent-Length: 2\r\n\r\nhi");
  ASSERT_TRUE(std::holds_alternative<HttpRequest>(parsed));
  const auto& request = std::get<HttpRequest>(parsed);
  EXPECT_EQ(request.method, "POST");
  EXPECT_EQ(request.target, "/v1/clusters/lab/preflight?checks=dns");
  EXPECT_EQ(request.body, "hi");
}

TEST(HttpRequestTest, BadRequestsGetTheConnectionsAnswers) {
  const auto status = [](const std::string& bytes) {
    const auto parsed = parse_request(bytes);
    return std::holds_alternative<HttpResponse>(parsed) ? std::get<HttpResponse>(parsed).status : 0;
  };
  EXPECT_EQ(status("NONSENSE\r\n\r\n"), 400);
  EXPECT_EQ(status("GET /healthz HTTP/1.1\r\nX-Big: " + std::string(20000, 'a') + "\r\n\r\n"), 431);
  EXPECT_EQ(status("POST / HTTP/1.1\r\nContent-Length: 100000\r\n\r\n"), 413);
  // A request cut short by the end of the connection, as a connection answers it.
  EXPECT_EQ(status("GET /heal"), 400);
  // Nothing at all: the connection just closes.
  EXPECT_TRUE(std::holds_alternative<std::monostate>(parse_request("")));
}

}  // namespace
}  // namespace ringwatch::daemon
