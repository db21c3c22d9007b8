// The HTTP sinks (alerts/http_sink.h) against real listeners on loopback:
// payloads, retries with backoff, counting, the bounded queue, and send()
// never waiting for the network.
#include "alerts/http_sink.h"

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <mutex>
#include <stdexcept>

#include "lib/util/time.h"
#include "tests/support/http_test_server.h"
#include "tests/support/memcached_process.h"  // free_port

namespace ringwatch::alerts {
namespace {

using namespace std::chrono_literals;
using testing::HoldBacklog;
using testing::TestHttpServer;
using Steady = std::chrono::steady_clock;

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

struct Recorded {
  DeliveryEvent event;
  Steady::time_point at;
};

class RecordingObserver : public DeliveryObserver {
 public:
  void on_delivery(const DeliveryEvent& event) override {
    std::lock_guard lock(mutex_);
    events_.push_back({event, Steady::now()});
  }
  std::vector<Recorded> events() const {
    std::lock_guard lock(mutex_);
    return events_;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<Recorded> events_;
};

template <class Predicate>
bool eventually(Predicate predicate, std::chrono::milliseconds timeout = 10000ms) {
  const auto deadline = Steady::now() + timeout;
  while (Steady::now() < deadline) {
    if (predicate()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return predicate();
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

TEST(HttpSinkTest, ASinkThatIsDownIsRetriedWithBackoffCountedAndNeverBlocksSend) {
  const std::uint16_t port = testing::free_port();  // nothing listens there
  auto observer = std::make_shared<RecordingObserver>();
  auto sink = make_alertmanager_sink({.name = "alertmanager",
                                      .url = "http://127.0.0.1:" + std::to_string(port),
                                      .deadlines = {.connect = 1000ms, .io = 1000ms},
                                      .initial_backoff = 50ms,
                                      .max_backoff = 200ms,
                                      .max_attempts = 4,
                                      .observer = observer});
  const auto start = Steady::now();
  sink->send({event(EventKind::fired)});
  EXPECT_LT(Steady::now() - start, 100ms);

  ASSERT_TRUE(eventually([&] { return sink->stats().dropped_retries_exhausted == 1; }));
  const SinkStats stats = sink->stats();
  EXPECT_EQ(stats.sent, 0u);
  EXPECT_EQ(stats.failed, 4u);
  auto events = observer->events();
  ASSERT_EQ(events.size(), 5u);
  const std::vector<std::chrono::milliseconds> backoffs = {50ms, 100ms, 200ms, 200ms};
  for (std::size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(events[i].event.outcome, DeliveryOutcome::failed);
    EXPECT_EQ(events[i].event.sink, "alertmanager");
    EXPECT_EQ(events[i].event.attempt, static_cast<int>(i + 1));
    EXPECT_EQ(events[i].event.alerts, 1u);
    EXPECT_EQ(events[i].event.error, "connect to 127.0.0.1:" + std::to_string(port) + " refused");
    EXPECT_EQ(events[i].event.retry_in, backoffs[i]);
    if (i > 0) {  // the attempt waited out the previous backoff
      EXPECT_GE(events[i].at - events[i - 1].at, backoffs[i - 1] - 5ms) << "attempt " << i + 1;
    }
  }
  EXPECT_EQ(events[4].event.outcome, DeliveryOutcome::dropped_retries_exhausted);
}

TEST(HttpSinkTest, SendReturnsAtOnceWhileTheTargetHangs) {
  HoldBacklog backlog;  // connects hang until the 1 s connect deadline
  auto observer = std::make_shared<RecordingObserver>();
  auto sink = make_alertmanager_sink({.name = "alertmanager",
                                      .url = "http://127.0.0.1:" + std::to_string(backlog.port()),
                                      .deadlines = {.connect = 1000ms, .io = 1000ms},
                                      .initial_backoff = 50ms,
                                      .max_attempts = 1,
                                      .observer = observer});
  const auto start = Steady::now();
  for (int i = 0; i < 20; ++i) sink->send({event(EventKind::fired)});
  EXPECT_LT(Steady::now() - start, 100ms);
  EXPECT_TRUE(eventually([&] { return sink->stats().in_flight; }, 1000ms));
  ASSERT_TRUE(eventually([&] { return sink->stats().failed >= 1; }, 5000ms));
  const auto events = observer->events();
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events[0].event.error,
            "connect to 127.0.0.1:" + std::to_string(backlog.port()) + " timed out after 1000 ms");
}

TEST(HttpSinkTest, AFullQueueDropsTheOldestBatchAndCountsIt) {
  TestHttpServer server;
  server.set_mode(TestHttpServer::Mode::silent);
  auto observer = std::make_shared<RecordingObserver>();
  auto sink = make_webhook_sink({.name = "webhook",
                                 .url = server.url("/"),
                                 .deadlines = {.connect = 1000ms, .io = 500ms},
                                 .queue_capacity = 2,
                                 .initial_backoff = 20ms,
                                 .max_attempts = 1,
                                 .observer = observer});
  sink->send({event(EventKind::fired, "a")});
  ASSERT_TRUE(server.wait_for_connections(1, 5000ms));  // "a" is in flight, unanswered
  server.set_mode(TestHttpServer::Mode::answer);
  for (const char* proxy : {"b", "c", "d", "e"}) sink->send({event(EventKind::fired, proxy)});
  EXPECT_EQ(sink->stats().dropped_queue_full, 2u);  // b, then c
  EXPECT_EQ(sink->stats().queued, 2u);
  ASSERT_TRUE(sink->flush(10s));

  const SinkStats stats = sink->stats();
  EXPECT_EQ(stats.dropped_retries_exhausted, 1u);  // "a" timed out
  EXPECT_EQ(stats.sent, 2u);
  auto requests = server.requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_STREQ(parse(requests[0].body)["alerts"][0]["labels"]["proxy"].GetString(), "d");
  EXPECT_STREQ(parse(requests[1].body)["alerts"][0]["labels"]["proxy"].GetString(), "e");
  std::size_t drops = 0;
  for (const Recorded& r : observer->events()) {
    if (r.event.outcome == DeliveryOutcome::dropped_queue_full) {
      ++drops;
      EXPECT_EQ(r.event.error, "queue full (2 batches)");
    }
  }
  EXPECT_EQ(drops, 2u);
}

TEST(HttpSinkTest, ABatchIsDeliveredWhenTheReceiverComesBack) {
  const std::uint16_t port = testing::free_port();
  auto sink = make_webhook_sink({.name = "webhook",
                                 .url = "http://127.0.0.1:" + std::to_string(port) + "/",
                                 .initial_backoff = 100ms,
                                 .max_backoff = 100ms,
                                 .max_attempts = 100});
  sink->send({event(EventKind::fired)});
  ASSERT_TRUE(eventually([&] { return sink->stats().failed >= 2; }));
  TestHttpServer server(port);
  ASSERT_TRUE(sink->flush(10s));
  EXPECT_EQ(sink->stats().sent, 1u);
  EXPECT_EQ(server.requests().size(), 1u);
}

TEST(HttpSinkTest, AServerErrorIsRetriedAndARejectionIsNot) {
  TestHttpServer server;
  server.set_status(503, "not ready");
  auto observer = std::make_shared<RecordingObserver>();
  auto sink = make_webhook_sink({.name = "webhook",
                                 .url = server.url("/"),
                                 .initial_backoff = 50ms,
                                 .max_attempts = 10,
                                 .observer = observer});
  sink->send({event(EventKind::fired)});
  ASSERT_TRUE(server.wait_for_requests(2, 10000ms));
  server.set_status(200);
  ASSERT_TRUE(sink->flush(10s));
  EXPECT_EQ(sink->stats().sent, 1u);
  EXPECT_GE(sink->stats().failed, 2u);
  EXPECT_EQ(observer->events()[0].event.error, "HTTP 503: not ready");

  server.set_status(400, "bad alert\n");
  const std::size_t before = server.requests().size();
  sink->send({event(EventKind::fired)});
  ASSERT_TRUE(sink->flush(10s));
  EXPECT_EQ(server.requests().size(), before + 1);  // once, not retried
  EXPECT_EQ(sink->stats().dropped_rejected, 1u);
  EXPECT_EQ(observer->events().back().event.outcome, DeliveryOutcome::dropped_rejected);
  EXPECT_EQ(observer->events().back().event.error, "HTTP 400: bad alert");
}

TEST(HttpSinkTest, DestroyingASinkCancelsTheAttemptInFlight) {
  TestHttpServer server;
  server.set_mode(TestHttpServer::Mode::silent);
  auto sink = make_webhook_sink(
      {.name = "webhook", .url = server.url("/"), .deadlines = {.connect = 1000ms, .io = 30000ms}});
  sink->send({event(EventKind::fired)});
  ASSERT_TRUE(server.wait_for_connections(1, 5000ms));
  const auto start = Steady::now();
  sink.reset();
  EXPECT_LT(Steady::now() - start, 500ms);
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
  EXPECT_EQ(error_of({.name = "alertmanager", .url = "https://am:9093"}),
            "sink alertmanager: url: https://am:9093: only http:// URLs are supported (no TLS)");
  EXPECT_EQ(error_of({.name = "", .url = "http://am:9093"}), "sink ?: name: expected a name");
  EXPECT_EQ(error_of({.name = "am", .url = "http://am:9093", .queue_capacity = 0}),
            "sink am: queue_capacity: expected a positive value, got 0");
  EXPECT_EQ(error_of({.name = "am", .url = "http://am:9093", .max_attempts = 0}),
            "sink am: max_attempts: expected a positive value, got 0");
}

}  // namespace
}  // namespace ringwatch::alerts
