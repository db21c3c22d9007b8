// The HTTP sinks (alerts/http_sink.h) against real listeners on loopback:
// payloads, where they go, and what their deliveries report. The queue,
// retries and backoff underneath are tested in tests/lib/http/delivery_test.cpp.
#include "alerts/http_sink.h"

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <stdexcept>

#include "lib/util/time.h"
#include "tests/support/http_test_server.h"

namespace ringwatch::alerts {
namespace {

using namespace std::chrono_literals;
using testing::DeliveryRecorder;
using testing::TestHttpServer;

const TimePoint kStart = TimePoint{} + std::chrono::seconds(1'790'000'000);  // 2026-09-21T14:13:20Z

AlertEvent event(EventKind kind, const std::string& proxy = "p2") {
  Alert alert;
  alert.labels = {{"alertname", "RingwatchRingDivergence"},
                  {"cluster", "lab"},
                  {"check", "canary"},
                  {"proxy", proxy},
                  {"backend", "b3"},
                  {"severity", "critical"}};
  alert.annotations = {{"summary", "proxy " + proxy + " routes 0 of 6 canaries to backend b3"},
                       {"diagnosis", "p2 lost b3"}};
  alert.state = kind == EventKind::resolved ? AlertState::resolved : AlertState::firing;
  alert.starts_at = kStart + 123ms;
  alert.ends_at = kind == EventKind::resolved ? kStart + 60s : kStart + 240s;
  alert.generator_url = "http://ringwatch:9188/v1/clusters/lab";
  return {kind, alert};
}

rapidjson::Document parse(const std::string& body) {
  rapidjson::Document document;
  document.Parse(body.c_str());
  EXPECT_FALSE(document.HasParseError()) << body;
  return document;
}

TEST(HttpSinkTest, EncodesTheAlertmanagerV2Payload) {
  EXPECT_EQ(encode_alertmanager_v2({event(EventKind::fired)}),
            R"([{"labels":{"alertname":"RingwatchRingDivergence","backend":"b3","check":"canary",)"
            R"("cluster":"lab","proxy":"p2","severity":"critical"},"annotations":{"diagnosis":)"
            R"("p2 lost b3","summary":"proxy p2 routes 0 of 6 canaries to backend b3"},)"
            R"("startsAt":"2026-09-21T14:13:20.123Z","endsAt":"2026-09-21T14:17:20.000Z",)"
            R"("generatorURL":"http://ringwatch:9188/v1/clusters/lab"}])");
  EXPECT_EQ(encode_alertmanager_v2({}), "[]");
}

TEST(HttpSinkTest, TheWebhookPostsTheAlertListAsJson) {
  TestHttpServer server;
  auto sink = make_webhook_sink({.name = "webhook", .url = server.url("/hooks/ringwatch")});
  sink->send({event(EventKind::fired), event(EventKind::resolved, "p1")});
  ASSERT_TRUE(sink->flush(10s));
  auto requests = server.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].method, "POST");
  EXPECT_EQ(requests[0].target, "/hooks/ringwatch");
  EXPECT_EQ(requests[0].content_type, "application/json");
  rapidjson::Document body = parse(requests[0].body);
  EXPECT_STREQ(body["schema"].GetString(), "ringwatch.alerts/v1");
  ASSERT_EQ(body["alerts"].Size(), 2u);
  const auto& fired = body["alerts"][0];
  EXPECT_STREQ(fired["event"].GetString(), "fired");
  EXPECT_STREQ(fired["status"].GetString(), "firing");
  EXPECT_STREQ(fired["fingerprint"].GetString(),
               event(EventKind::fired).alert.fingerprint().c_str());
  EXPECT_STREQ(fired["labels"]["alertname"].GetString(), "RingwatchRingDivergence");
  EXPECT_STREQ(fired["labels"]["proxy"].GetString(), "p2");
  EXPECT_STREQ(fired["annotations"]["summary"].GetString(),
               "proxy p2 routes 0 of 6 canaries to backend b3");
  EXPECT_STREQ(fired["startsAt"].GetString(), "2026-09-21T14:13:20.123Z");
  const auto& resolved = body["alerts"][1];
  EXPECT_STREQ(resolved["event"].GetString(), "resolved");
  EXPECT_STREQ(resolved["status"].GetString(), "resolved");
  EXPECT_STREQ(resolved["endsAt"].GetString(), "2026-09-21T14:14:20.000Z");
  EXPECT_EQ(sink->stats().sent, 1u);
  EXPECT_EQ(sink->stats().failed, 0u);
}

TEST(HttpSinkTest, TheWebhookSkipsResendsUnlessAsked) {
  TestHttpServer server;
  auto quiet = make_webhook_sink({.name = "webhook", .url = server.url("/")});
  quiet->send({event(EventKind::resent)});  // nothing left: nothing queued
  quiet->send({event(EventKind::resent), event(EventKind::fired, "p1")});
  ASSERT_TRUE(quiet->flush(10s));
  ASSERT_EQ(server.requests().size(), 1u);
  EXPECT_EQ(parse(server.requests()[0].body)["alerts"].Size(), 1u);

  auto chatty =
      make_webhook_sink({.name = "webhook", .url = server.url("/"), .include_resends = true});
  chatty->send({event(EventKind::resent)});
  ASSERT_TRUE(chatty->flush(10s));
  ASSERT_EQ(server.requests().size(), 2u);
  EXPECT_STREQ(parse(server.requests()[1].body)["alerts"][0]["event"].GetString(), "resent");
}

TEST(HttpSinkTest, TheAlertmanagerSinkPostsToApiV2Alerts) {
  TestHttpServer server;
  auto sink = make_alertmanager_sink({.name = "alertmanager", .url = server.url("/prefix/")});
  EXPECT_EQ(sink->url().target, "/prefix/api/v2/alerts");
  sink->send({event(EventKind::fired), event(EventKind::resent, "p1")});
  ASSERT_TRUE(sink->flush(10s));
  auto requests = server.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].target, "/prefix/api/v2/alerts");
  EXPECT_EQ(requests[0].body,
            encode_alertmanager_v2({event(EventKind::fired), event(EventKind::resent, "p1")}));
}

TEST(HttpSinkTest, DeliveriesAreReportedByTheSinksNameAndAlertCount) {
  TestHttpServer server;
  server.set_status(400, "bad alert\n");
  auto observer = std::make_shared<DeliveryRecorder>();
  auto sink = make_alertmanager_sink({.name = "alertmanager",
                                      .url = server.url(),
                                      .initial_backoff = 50ms,
                                      .max_attempts = 3,
                                      .observer = observer});
  sink->send({event(EventKind::fired), event(EventKind::fired, "p1")});
  ASSERT_TRUE(sink->flush(10s));
  EXPECT_EQ(server.requests().size(), 1u) << "a rejection is not retried";
  const SinkStats stats = sink->stats();
  EXPECT_EQ(stats.failed, 1u);
  EXPECT_EQ(stats.dropped_rejected, 1u);
  const auto events = observer->events();
  ASSERT_EQ(events.size(), 2u);
  for (const DeliveryRecorder::Recorded& r : events) {
    EXPECT_EQ(r.event.sink, "alertmanager");
    EXPECT_EQ(r.event.items, 2u);
    EXPECT_EQ(r.event.description, "2 alert(s)");
    EXPECT_EQ(r.event.error, "HTTP 400: bad alert");
  }
  EXPECT_EQ(events[0].event.outcome, DeliveryOutcome::failed);
  EXPECT_EQ(events[1].event.outcome, DeliveryOutcome::dropped_rejected);
}

TEST(HttpSinkTest, BadOptionsAreRejectedNamingTheSink) {
  auto error_of = [](HttpSinkOptions options) -> std::string {
    try {
      make_alertmanager_sink(std::move(options));
    } catch (const std::invalid_argument& error) {
      return error.what();
    }
    return "(accepted)";
  };
  EXPECT_EQ(error_of({.name = "alertmanager", .url = "ftp://am:9093"}),
            "sink alertmanager: url: ftp://am:9093: expected http[s]://host[:port][/path]");
  EXPECT_EQ(error_of({.name = "alertmanager",
                      .url = "https://am:9093",
                      .tls = {.ca_file = "/nonexistent/ca.pem"}})
                .rfind("sink alertmanager: ca_file: cannot load /nonexistent/ca.pem: ", 0),
            0u);
  EXPECT_EQ(error_of({.name = "", .url = "http://am:9093"}), "sink ?: name: expected a name");
  EXPECT_EQ(error_of({.name = "am", .url = "http://am:9093", .queue_capacity = 0}),
            "sink am: queue_capacity: expected a positive value, got 0");
  EXPECT_EQ(error_of({.name = "am", .url = "http://am:9093", .max_attempts = 0}),
            "sink am: max_attempts: expected a positive value, got 0");
  EXPECT_EQ(error_of({.name = "am", .url = "http://am:9093", .deadlines = {.io = 0ms}}),
            "sink am: io deadline: expected a positive value, got 0");
}

}  // namespace
}  // namespace ringwatch::alerts
