// The background delivery (lib/http/delivery.h) against real listeners on
// loopback: order, retries with backoff, rejections, the bounded queue,
// counting, and post() never waiting for the network.
#include "lib/http/delivery.h"

#include <gtest/gtest.h>

#include <stdexcept>
#include <thread>
#include <vector>

#include "tests/support/eventually.h"
#include "tests/support/http_test_server.h"
#include "tests/support/memcached_process.h"  // free_port

namespace ringwatch::http {
namespace {

using testing::eventually;

using namespace std::chrono_literals;
using testing::DeliveryRecorder;
using testing::HoldBacklog;
using testing::TestHttpServer;
using Steady = std::chrono::steady_clock;

using Recorded = DeliveryRecorder::Recorded;

Url local(std::uint16_t port, const std::string& target = "/") {
  return {.host = "127.0.0.1", .port = port, .target = target};
}

Payload payload(const std::string& body, std::size_t items = 1) {
  return {.body = body, .items = items, .description = "payload " + body};
}

TEST(DeliveryTest, PostsEveryPayloadInOrderWithItsContentType) {
  TestHttpServer server;
  Delivery delivery({.name = "hook", .url = local(server.port(), "/in")});
  delivery.post(payload("one"));
  delivery.post({.body = "two", .content_type = "text/plain"});
  delivery.post(payload("three"));
  ASSERT_TRUE(delivery.flush(10s));
  const auto requests = server.requests();
  ASSERT_EQ(requests.size(), 3u);
  EXPECT_EQ(requests[0].method, "POST");
  EXPECT_EQ(requests[0].target, "/in");
  EXPECT_EQ(requests[0].content_type, "application/json");
  EXPECT_EQ(requests[1].content_type, "text/plain");
  EXPECT_EQ(requests[0].body + requests[1].body + requests[2].body, "onetwothree");
  const DeliveryStats stats = delivery.stats();
  EXPECT_EQ(stats.sent, 3u);
  EXPECT_EQ(stats.failed, 0u);
  EXPECT_EQ(stats.queued, 0u);
  EXPECT_FALSE(stats.in_flight);
  EXPECT_EQ(delivery.name(), "hook");
  EXPECT_EQ(delivery.url().to_string(), server.url("/in"));
}

TEST(DeliveryTest, AReceiverThatIsDownIsRetriedWithBackoffCountedAndNeverBlocksPost) {
  const std::uint16_t port = testing::free_port();  // nothing listens there
  auto observer = std::make_shared<DeliveryRecorder>();
  Delivery delivery({.name = "alertmanager",
                     .url = local(port),
                     .deadlines = {.connect = 1000ms, .io = 1000ms},
                     .initial_backoff = 50ms,
                     .max_backoff = 200ms,
                     .max_attempts = 4,
                     .observer = observer});
  delivery.post(payload("a", 3));
  // Had post waited for the attempts, they would be over (350 ms of backoff).
  EXPECT_EQ(delivery.stats().dropped_retries_exhausted, 0u) << "post waited for the attempts";

  ASSERT_TRUE(eventually([&] { return delivery.stats().dropped_retries_exhausted == 1; }));
  const DeliveryStats stats = delivery.stats();
  EXPECT_EQ(stats.sent, 0u);
  EXPECT_EQ(stats.failed, 4u);
  auto events = observer->events();
  ASSERT_EQ(events.size(), 5u);
  const std::vector<std::chrono::milliseconds> backoffs = {50ms, 100ms, 200ms, 200ms};
  for (std::size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(events[i].event.outcome, DeliveryOutcome::failed);
    EXPECT_EQ(events[i].event.sink, "alertmanager");
    EXPECT_EQ(events[i].event.attempt, static_cast<int>(i + 1));
    EXPECT_EQ(events[i].event.items, 3u);
    EXPECT_EQ(events[i].event.description, "payload a");
    EXPECT_EQ(events[i].event.error, "connect to 127.0.0.1:" + std::to_string(port) + " refused");
    EXPECT_EQ(events[i].event.retry_in, backoffs[i]);
    if (i > 0) {  // the attempt waited out the previous backoff
      EXPECT_GE(events[i].at - events[i - 1].at, backoffs[i - 1] - 5ms) << "attempt " << i + 1;
    }
  }
  EXPECT_EQ(events[4].event.outcome, DeliveryOutcome::dropped_retries_exhausted);
  EXPECT_EQ(events[4].event.attempt, 4);
}

TEST(DeliveryTest, TheBackoffIsTheDestinationsAndTheFirstSuccessResetsIt) {
  TestHttpServer server;
  server.set_status(503);
  auto observer = std::make_shared<DeliveryRecorder>();
  Delivery delivery({.name = "hook",
                     .url = local(server.port()),
                     .initial_backoff = 300ms,
                     .max_attempts = 1,
                     .observer = observer});
  delivery.post(payload("a"));
  ASSERT_TRUE(delivery.flush(10s));  // dropped after one attempt; 300 ms backoff pending
  server.set_status(200);
  delivery.post(payload("b"));
  delivery.post(payload("c"));
  ASSERT_TRUE(delivery.flush(10s));
  const auto requests = server.requests();
  ASSERT_EQ(requests.size(), 3u);
  EXPECT_GE(requests[1].at - requests[0].at, 290ms) << "b waited out a's backoff";
  EXPECT_EQ(delivery.stats().sent, 2u);
  const auto events = observer->events();
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[0].event.outcome, DeliveryOutcome::failed);
  EXPECT_EQ(events[0].event.retry_in, 300ms);
  EXPECT_EQ(events[1].event.outcome, DeliveryOutcome::dropped_retries_exhausted);
  EXPECT_EQ(events[2].event.outcome, DeliveryOutcome::sent);
  EXPECT_EQ(events[3].event.outcome, DeliveryOutcome::sent);
}

TEST(DeliveryTest, PostReturnsAtOnceWhileTheTargetHangs) {
  HoldBacklog backlog;  // connects hang until the 1 s connect deadline
  auto observer = std::make_shared<DeliveryRecorder>();
  Delivery delivery({.name = "alertmanager",
                     .url = local(backlog.port()),
                     .deadlines = {.connect = 1000ms, .io = 1000ms},
                     .initial_backoff = 50ms,
                     .max_attempts = 1,
                     .observer = observer});
  const auto start = Steady::now();
  for (int i = 0; i < 20; ++i) delivery.post(payload(std::to_string(i)));
  // A deadline with a generous margin: 20 posts that waited for the 1 s
  // connect deadline would take 20 s.
  EXPECT_LT(Steady::now() - start, 10000ms);
  EXPECT_TRUE(eventually([&] { return delivery.stats().in_flight; }, 1000ms));
  ASSERT_TRUE(eventually([&] { return delivery.stats().failed >= 1; }, 5000ms));
  const auto events = observer->events();
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events[0].event.error,
            "connect to 127.0.0.1:" + std::to_string(backlog.port()) + " timed out after 1000 ms");
}

TEST(DeliveryTest, AFullQueueDropsTheOldestPayloadAndCountsIt) {
  TestHttpServer server;
  server.set_mode(TestHttpServer::Mode::silent);
  auto observer = std::make_shared<DeliveryRecorder>();
  Delivery delivery({.name = "webhook",
                     .url = local(server.port()),
                     .deadlines = {.connect = 1000ms, .io = 500ms},
                     .queue_capacity = 2,
                     .initial_backoff = 20ms,
                     .max_attempts = 1,
                     .observer = observer});
  delivery.post(payload("a"));
  ASSERT_TRUE(server.wait_for_connections(1, 5000ms));  // "a" is in flight, unanswered
  server.set_mode(TestHttpServer::Mode::answer);
  for (const char* body : {"b", "c", "d", "e"}) delivery.post(payload(body));
  EXPECT_EQ(delivery.stats().dropped_queue_full, 2u);  // b, then c
  EXPECT_EQ(delivery.stats().queued, 2u);
  ASSERT_TRUE(delivery.flush(10s));

  const DeliveryStats stats = delivery.stats();
  EXPECT_EQ(stats.dropped_retries_exhausted, 1u);  // "a" timed out
  EXPECT_EQ(stats.sent, 2u);
  auto requests = server.requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0].body, "d");
  EXPECT_EQ(requests[1].body, "e");
  std::vector<std::string> dropped;
  for (const Recorded& r : observer->events()) {
    if (r.event.outcome != DeliveryOutcome::dropped_queue_full) continue;
    dropped.push_back(r.event.description);
    EXPECT_EQ(r.event.error, "queue full (2 batches)");
    EXPECT_EQ(r.event.attempt, 0);
  }
  EXPECT_EQ(dropped, (std::vector<std::string>{"payload b", "payload c"}));
}

TEST(DeliveryTest, APayloadIsDeliveredWhenTheReceiverComesBack) {
  const std::uint16_t port = testing::free_port();
  Delivery delivery({.name = "webhook",
                     .url = local(port),
                     .initial_backoff = 100ms,
                     .max_backoff = 100ms,
                     .max_attempts = 100});
  delivery.post(payload("a"));
  ASSERT_TRUE(eventually([&] { return delivery.stats().failed >= 2; }));
  TestHttpServer server(port);
  ASSERT_TRUE(delivery.flush(10s));
  EXPECT_EQ(delivery.stats().sent, 1u);
  EXPECT_EQ(server.requests().size(), 1u);
}

TEST(DeliveryTest, AServerErrorIsRetriedAndARejectionIsNot) {
  TestHttpServer server;
  server.set_status(503, "not ready");
  auto observer = std::make_shared<DeliveryRecorder>();
  Delivery delivery({.name = "webhook",
                     .url = local(server.port()),
                     .initial_backoff = 50ms,
                     .max_attempts = 10,
                     .observer = observer});
  delivery.post(payload("a"));
  ASSERT_TRUE(server.wait_for_requests(2, 10000ms));
  server.set_status(200);
  ASSERT_TRUE(delivery.flush(10s));
  EXPECT_EQ(delivery.stats().sent, 1u);
  EXPECT_GE(delivery.stats().failed, 2u);
  EXPECT_EQ(observer->events()[0].event.error, "HTTP 503: not ready");

  for (int status : {429, 408}) {  // "too many requests" and "timeout" are worth another try
    server.set_status(status);
    const std::size_t before = server.requests().size();
    delivery.post(payload("b"));
    ASSERT_TRUE(server.wait_for_requests(before + 2, 10000ms)) << status;
    server.set_status(200);
    ASSERT_TRUE(delivery.flush(10s));
  }

  server.set_status(400, "bad alert\nsecond line\n");
  const std::size_t before = server.requests().size();
  delivery.post(payload("c"));
  ASSERT_TRUE(delivery.flush(10s));
  EXPECT_EQ(server.requests().size(), before + 1);  // once, not retried
  EXPECT_EQ(delivery.stats().dropped_rejected, 1u);
  const auto events = observer->events();
  ASSERT_GE(events.size(), 2u);
  EXPECT_EQ(events[events.size() - 2].event.outcome, DeliveryOutcome::failed);
  EXPECT_EQ(events.back().event.outcome, DeliveryOutcome::dropped_rejected);
  EXPECT_EQ(events.back().event.error, "HTTP 400: bad alert second line");
  EXPECT_EQ(events.back().event.description, "payload c");
}

TEST(DeliveryTest, DestroyingADeliveryCancelsTheAttemptInFlight) {
  TestHttpServer server;
  server.set_mode(TestHttpServer::Mode::silent);
  auto delivery =
      std::make_unique<Delivery>(DeliveryOptions{.name = "webhook",
                                                 .url = local(server.port()),
                                                 .deadlines = {.connect = 1000ms, .io = 30000ms}});
  delivery->post(payload("a"));
  ASSERT_TRUE(server.wait_for_connections(1, 5000ms));
  EXPECT_FALSE(delivery->flush(50ms));
  const auto start = Steady::now();
  delivery.reset();
  EXPECT_LT(Steady::now() - start, 10000ms) << "it waited for the 30 s io deadline";
}

TEST(DeliveryTest, OptionsMustBePositive) {
  auto error_of = [](DeliveryOptions options) -> std::string {
    try {
      Delivery delivery(std::move(options));
    } catch (const std::invalid_argument& error) {
      return error.what();
    }
    return "(accepted)";
  };
  const Url url = local(9);
  EXPECT_EQ(error_of({.url = url, .queue_capacity = 0}),
            "queue_capacity: expected a positive value, got 0");
  EXPECT_EQ(error_of({.url = url, .max_attempts = -1}),
            "max_attempts: expected a positive value, got -1");
  EXPECT_EQ(error_of({.url = url, .initial_backoff = 0ms}),
            "initial_backoff: expected a positive value, got 0");
  EXPECT_EQ(error_of({.url = url, .max_backoff = 0ms}),
            "max_backoff: expected a positive value, got 0");
  EXPECT_EQ(error_of({.url = url, .deadlines = {.connect = 0ms}}),
            "connect deadline: expected a positive value, got 0");
  EXPECT_EQ(error_of({.url = url, .deadlines = {.io = 0ms}}),
            "io deadline: expected a positive value, got 0");
  EXPECT_EQ(error_of({.url = url}), "(accepted)");
}

TEST(DeliveryTest, OutcomeNames) {
  EXPECT_STREQ(to_string(DeliveryOutcome::sent), "sent");
  EXPECT_STREQ(to_string(DeliveryOutcome::failed), "failed");
  EXPECT_STREQ(to_string(DeliveryOutcome::dropped_queue_full), "dropped_queue_full");
  EXPECT_STREQ(to_string(DeliveryOutcome::dropped_retries_exhausted), "dropped_retries_exhausted");
  EXPECT_STREQ(to_string(DeliveryOutcome::dropped_rejected), "dropped_rejected");
}

}  // namespace
}  // namespace ringwatch::http
