// Fuzz target: ringwatchd's request path without a socket: the bytes a
// connection receives, through the server's parser (parse_request) and, for
// a request, through the API's router (Api::handle) of a daemon with no
// clusters. Every request gets exactly one response; a JSON body is valid
// UTF-8 JSON, and an error's is bounded.
#include <boost/asio/io_context.hpp>
#include <memory>
#include <sstream>
#include <variant>

#include "daemon/api.h"
#include "daemon/http_server.h"
#include "daemon/log.h"
#include "daemon/scheduler.h"
#include "fuzz/fuzz.h"
#include "lib/spec/json_cursor.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace ringwatch;
  static boost::asio::io_context io;
  static std::ostringstream log_text;
  static daemon::Scheduler scheduler(io, std::make_shared<daemon::Logger>(log_text), nullptr,
                                     nullptr);
  static daemon::Api api(scheduler, nullptr);

  const auto parsed = daemon::parse_request(fuzz::text(data, size));
  std::vector<daemon::HttpResponse> responses;
  if (const auto* request = std::get_if<daemon::HttpRequest>(&parsed)) {
    api.handle(*request,
               [&](daemon::HttpResponse response) { responses.push_back(std::move(response)); });
    if (responses.size() != 1) fuzz::broken("not one response to a request", request->target);
  } else if (const auto* response = std::get_if<daemon::HttpResponse>(&parsed)) {
    responses.push_back(*response);
  }
  for (const daemon::HttpResponse& response : responses) {
    if (response.content_type != "application/json") continue;
    rapidjson::Document document;
    if (spec::json::parse_bounded(document, response.body)) {
      fuzz::broken("a JSON body that is not valid UTF-8 JSON", response.body);
    }
    if (response.status >= 400) fuzz::expect_bounded_message(response.body);
  }
  log_text.str({});
  return 0;
}
