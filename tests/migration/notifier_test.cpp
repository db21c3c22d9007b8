#include "migration/notifier.h"

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "alerts/http_sink.h"
#include "alerts/sink.h"
#include "lib/util/time.h"
#include "tests/support/http_test_server.h"

namespace ringwatch::migration {
namespace {

using std::chrono::milliseconds;
using testing::ReceivedRequest;
using testing::TestHttpServer;
using SteadyClock = std::chrono::steady_clock;

// 2026-11-26T10:23:39.123Z
const std::chrono::system_clock::time_point kAt{milliseconds(1795688619123)};

Notification event(EventKind kind, std::string cluster = "c1") {
  Notification n;
  n.event = kind;
  n.cluster = std::move(cluster);
  n.at = kAt;
  return n;
}

Notification paused(std::string reason = "failed_check") {
  Notification n = event(EventKind::paused);
  n.step = "drain-b2";
  n.reason = std::move(reason);
  n.detail = "verify of drain-b2 failed: canary consistency 0.91 < 0.99";
  n.diagnosis = "b2 still in the ring of proxy p1";
  return n;
}

rapidjson::Document parse(const std::string& body) {
  rapidjson::Document document;
  document.Parse(body.c_str(), body.size());
  EXPECT_FALSE(document.HasParseError()) << body;
  return document;
}

std::string member(const rapidjson::Value& object, const char* name) {
  if (!object.IsObject() || !object.HasMember(name) || !object[name].IsString()) return "<absent>";
  return object[name].GetString();
}

std::vector<std::string> member_names(const rapidjson::Value& object) {
  std::vector<std::string> names;
  for (const auto& m : object.GetObject()) names.emplace_back(m.name.GetString());
  return names;
}

Notifications webhook_only(const std::string& url) {
  Notifications destinations;
  destinations.webhook_url = url;
  return destinations;
}

Notifications alertmanager_only(const std::string& url) {
  Notifications destinations;
  destinations.alertmanager_url = url;
  return destinations;
}

std::string now_rfc3339() {
  return util::format_rfc3339_ms(std::chrono::system_clock::now());
}

TEST(EncodeWebhookEventTest, AllFields) {
  EXPECT_EQ(encode_webhook_event(paused()),
            R"({"schema":"ringwatch.migration/v1","event":"paused","cluster":"c1",)"
            R"("step":"drain-b2","reason":"failed_check",)"
            R"("detail":"verify of drain-b2 failed: canary consistency 0.91 < 0.99",)"
            R"("diagnosis":"b2 still in the ring of proxy p1","at":"2026-11-26T10:23:39.123Z"})");
}

TEST(EncodeWebhookEventTest, OmitsEmptyStringsAndEscapes) {
  EXPECT_EQ(encode_webhook_event(event(EventKind::started)),
            R"({"schema":"ringwatch.migration/v1","event":"started","cluster":"c1",)"
            R"("at":"2026-11-26T10:23:39.123Z"})");
  Notification n = event(EventKind::aborted, "");
  n.detail = "operator said \"stop\"\n";
  EXPECT_EQ(encode_webhook_event(n),
            R"({"schema":"ringwatch.migration/v1","event":"aborted",)"
            R"("detail":"operator said \"stop\"\n","at":"2026-11-26T10:23:39.123Z"})");
}

TEST(EncodeWebhookEventTest, AHookEventSaysWhichHookAndHowItEnded) {
  Notification n = event(EventKind::hook);
  n.step = "drain-b2";
  n.reason = "failed_check";
  n.hook = "on_pause";
  n.outcome = "timed_out";
  n.detail = "hook on_pause (plan) timed_out: timed out after 10 s";
  EXPECT_EQ(encode_webhook_event(n),
            R"({"schema":"ringwatch.migration/v1","event":"hook","cluster":"c1",)"
            R"("step":"drain-b2","reason":"failed_check",)"
            R"("detail":"hook on_pause (plan) timed_out: timed out after 10 s",)"
            R"("hook":"on_pause","outcome":"timed_out","at":"2026-11-26T10:23:39.123Z"})");
}

TEST(EventKindTest, Names) {
  EXPECT_STREQ(to_string(EventKind::started), "started");
  EXPECT_STREQ(to_string(EventKind::paused), "paused");
  EXPECT_STREQ(to_string(EventKind::resumed), "resumed");
  EXPECT_STREQ(to_string(EventKind::finished), "finished");
  EXPECT_STREQ(to_string(EventKind::failed), "failed");
  EXPECT_STREQ(to_string(EventKind::aborted), "aborted");
  EXPECT_STREQ(to_string(EventKind::hook), "hook");
}

TEST(NotifierTest, InvalidUrlsThrow) {
  std::ostringstream log;
  // (https:// is the client's since issue 13; plans still accept only http://.)
  for (const char* url : {"ftp://hooks.example/x", "ftp://x", "not a url", "http://"}) {
    EXPECT_THROW(Notifier(webhook_only(url), log), std::invalid_argument) << url;
    EXPECT_THROW(Notifier(alertmanager_only(url), log), std::invalid_argument) << url;
  }
  try {
    Notifier notifier(webhook_only("ftp://hooks.example/x"), log);
    ADD_FAILURE() << "no exception";
  } catch (const std::invalid_argument& error) {
    EXPECT_NE(std::string(error.what()).find("webhook_url"), std::string::npos) << error.what();
  }
}

TEST(NotifierTest, FlushIsTrueWhenIdle) {
  std::ostringstream log;
  {
    Notifier none({}, log);
    none.notify(paused());
    EXPECT_TRUE(none.flush(milliseconds(0)));
  }
  TestHttpServer server;
  Notifications both;
  both.webhook_url = server.url("/hook");
  both.alertmanager_url = server.url();
  Notifier notifier(both, log);
  EXPECT_TRUE(notifier.flush(milliseconds(0)));
  const NotifierStats stats = notifier.stats();
  EXPECT_EQ(stats.delivered, 0u);
  EXPECT_EQ(stats.failed, 0u);
  EXPECT_EQ(stats.dropped, 0u);
  EXPECT_EQ(log.str(), "");
}

TEST(NotifierTest, WebhookGetsEveryEventInOrder) {
  TestHttpServer server;
  std::ostringstream log;
  Notifier notifier(webhook_only(server.url("/hooks/migration")), log);
  const std::vector<Notification> sent = {event(EventKind::started), event(EventKind::failed),
                                          paused(), event(EventKind::resumed),
                                          event(EventKind::finished)};
  for (const Notification& n : sent) notifier.notify(n);
  ASSERT_TRUE(notifier.flush(milliseconds(3000)));

  const std::vector<ReceivedRequest> requests = server.requests();
  ASSERT_EQ(requests.size(), sent.size());
  for (std::size_t i = 0; i < sent.size(); ++i) {
    EXPECT_EQ(requests[i].method, "POST");
    EXPECT_EQ(requests[i].target, "/hooks/migration");
    EXPECT_EQ(requests[i].content_type, "application/json");
    EXPECT_EQ(requests[i].body, encode_webhook_event(sent[i]));
    const rapidjson::Document body = parse(requests[i].body);
    EXPECT_EQ(member(body, "schema"), "ringwatch.migration/v1");
    EXPECT_EQ(member(body, "event"), to_string(sent[i].event));
    EXPECT_EQ(member(body, "cluster"), "c1");
    EXPECT_EQ(member(body, "at"), "2026-11-26T10:23:39.123Z");
  }
  const rapidjson::Document pause = parse(requests[2].body);
  EXPECT_EQ(member_names(pause), (std::vector<std::string>{"schema", "event", "cluster", "step",
                                                           "reason", "detail", "diagnosis", "at"}));
  EXPECT_EQ(member(pause, "step"), "drain-b2");
  EXPECT_EQ(member(pause, "reason"), "failed_check");
  EXPECT_EQ(member(pause, "detail"), "verify of drain-b2 failed: canary consistency 0.91 < 0.99");
  EXPECT_EQ(member(pause, "diagnosis"), "b2 still in the ring of proxy p1");
  EXPECT_EQ(member_names(parse(requests[0].body)),
            (std::vector<std::string>{"schema", "event", "cluster", "at"}));

  const NotifierStats stats = notifier.stats();
  EXPECT_EQ(stats.delivered, sent.size());
  EXPECT_EQ(stats.failed, 0u);
  EXPECT_EQ(stats.dropped, 0u);
}

TEST(NotifierTest, UnsetTimeBecomesNow) {
  TestHttpServer server;
  std::ostringstream log;
  Notifier notifier(webhook_only(server.url()), log);
  Notification n = event(EventKind::started);
  n.at = {};
  const std::string before = now_rfc3339();
  notifier.notify(n);
  ASSERT_TRUE(notifier.flush(milliseconds(3000)));
  ASSERT_EQ(server.requests().size(), 1u);
  EXPECT_GE(member(parse(server.requests()[0].body), "at"), before);
}

TEST(NotifierTest, WebhookRetriesA500ThenDropsAndLogs) {
  TestHttpServer server;
  server.set_status(500, "database on fire\n");
  std::ostringstream log;
  Notifier notifier(webhook_only(server.url("/hook")), log);
  const auto started = SteadyClock::now();
  notifier.notify(event(EventKind::started));
  ASSERT_TRUE(notifier.flush(milliseconds(3000)));
  EXPECT_GE(SteadyClock::now() - started, milliseconds(200 + 400));
  EXPECT_EQ(server.requests().size(), 3u);
  const NotifierStats stats = notifier.stats();
  EXPECT_EQ(stats.delivered, 0u);
  EXPECT_EQ(stats.failed, 3u);
  EXPECT_EQ(stats.dropped, 1u);
  const std::string prefix = "notify webhook: POST " + server.url("/hook") + " failed: HTTP 500";
  EXPECT_NE(log.str().find(prefix + ": database on fire (attempt 1 of 3)\n"), std::string::npos)
      << log.str();
  EXPECT_NE(log.str().find("(attempt 3 of 3)\n"), std::string::npos) << log.str();
  EXPECT_NE(log.str().find("notify webhook: gave up on the started event of cluster c1 after 3 "
                           "attempts\n"),
            std::string::npos)
      << log.str();
}

TEST(NotifierTest, WebhookRetrySucceedsAfterAFailure) {
  TestHttpServer server;
  server.set_status(503);
  std::ostringstream log;
  Notifier notifier(webhook_only(server.url()), log);
  notifier.notify(event(EventKind::started));
  ASSERT_TRUE(server.wait_for_requests(1, milliseconds(2000)));
  server.set_status(200);
  ASSERT_TRUE(notifier.flush(milliseconds(3000)));
  // Normally one failure; two if this thread was slower than the first backoff.
  const NotifierStats stats = notifier.stats();
  EXPECT_EQ(stats.delivered, 1u);
  EXPECT_GE(stats.failed, 1u);
  EXPECT_LE(stats.failed, 2u);
  EXPECT_EQ(stats.dropped, 0u);
  EXPECT_EQ(server.requests().size(), stats.failed + 1);
}

TEST(NotifierTest, WebhookRefusedIsLogged) {
  std::string url;
  {
    TestHttpServer closed;
    url = closed.url("/hook");
  }
  std::ostringstream log;
  Notifier notifier(webhook_only(url), log);
  notifier.notify(event(EventKind::started));
  ASSERT_TRUE(notifier.flush(milliseconds(3000)));
  EXPECT_EQ(notifier.stats().failed, 3u);
  EXPECT_EQ(notifier.stats().dropped, 1u);
  EXPECT_EQ(log.str().rfind("notify webhook: POST " + url + " failed: ", 0), 0u) << log.str();
  EXPECT_NE(log.str().find("refused (attempt 1 of 3)\n"), std::string::npos) << log.str();
}

TEST(NotifierTest, DestructorDoesNotWaitForAStalledReceiver) {
  TestHttpServer server;
  server.set_mode(TestHttpServer::Mode::silent);
  std::ostringstream log;
  auto notifier = std::make_unique<Notifier>(webhook_only(server.url()), log);
  notifier->notify(event(EventKind::started));
  ASSERT_TRUE(server.wait_for_connections(1, milliseconds(2000)));
  EXPECT_FALSE(notifier->flush(milliseconds(50)));
  const auto started = SteadyClock::now();
  notifier.reset();
  EXPECT_LT(SteadyClock::now() - started, milliseconds(500));
}

class AlertmanagerTest : public ::testing::Test {
 protected:
  // The alerts of every request so far, in order (a request may carry several).
  std::vector<rapidjson::Document> alerts_received() {
    std::vector<rapidjson::Document> alerts;
    for (const ReceivedRequest& request : server_.requests()) {
      EXPECT_EQ(request.method, "POST");
      EXPECT_EQ(request.target, "/api/v2/alerts");
      rapidjson::Document body = parse(request.body);
      EXPECT_TRUE(body.IsArray()) << request.body;
      if (!body.IsArray()) continue;
      for (const rapidjson::Value& item : body.GetArray()) {
        rapidjson::Document alert;
        alert.CopyFrom(item, alert.GetAllocator());
        alerts.push_back(std::move(alert));
      }
    }
    return alerts;
  }

  TestHttpServer server_;
  std::ostringstream log_;
};

TEST_F(AlertmanagerTest, PausedFiresAndResumedResolves) {
  Notifier notifier(alertmanager_only(server_.url()), log_, milliseconds(60000));
  notifier.notify(event(EventKind::started));
  notifier.notify(event(EventKind::failed));
  notifier.notify(paused());
  ASSERT_TRUE(notifier.flush(milliseconds(3000)));
  const std::string fired_before = now_rfc3339();
  notifier.notify(event(EventKind::resumed));
  ASSERT_TRUE(notifier.flush(milliseconds(3000)));
  const std::string resolved_after = now_rfc3339();

  const std::vector<rapidjson::Document> alerts = alerts_received();
  ASSERT_EQ(alerts.size(), 2u) << "started and failed do not alert";
  for (const auto& alert : alerts) {
    const rapidjson::Value& labels = alert["labels"];
    EXPECT_EQ(member_names(labels),
              (std::vector<std::string>{"alertname", "cluster", "reason", "severity"}));
    EXPECT_EQ(member(labels, "alertname"), "RingwatchMigrationPaused");
    EXPECT_EQ(member(labels, "cluster"), "c1");
    EXPECT_EQ(member(labels, "reason"), "failed_check");
    EXPECT_EQ(member(labels, "severity"), "critical");
    const rapidjson::Value& annotations = alert["annotations"];
    EXPECT_EQ(member(annotations, "summary"),
              "verify of drain-b2 failed: canary consistency 0.91 < 0.99");
    EXPECT_EQ(member(annotations, "diagnosis"), "b2 still in the ring of proxy p1");
    EXPECT_EQ(member(annotations, "step"), "drain-b2");
    EXPECT_EQ(member(alert, "startsAt"), "2026-11-26T10:23:39.123Z");
  }
  // RFC 3339 UTC with a fixed layout sorts as text.
  EXPECT_GT(member(alerts[0], "endsAt"), fired_before) << "firing: endsAt is in the future";
  EXPECT_LE(member(alerts[1], "endsAt"), resolved_after) << "resolved: endsAt is not";

  const NotifierStats stats = notifier.stats();
  EXPECT_EQ(stats.delivered, 2u);
  EXPECT_EQ(stats.failed, 0u);
  EXPECT_EQ(stats.dropped, 0u);
}

TEST_F(AlertmanagerTest, FinishedAndAbortedResolveOnlyAPausedCluster) {
  Notifier notifier(alertmanager_only(server_.url()), log_);
  notifier.notify(event(EventKind::finished, "c2"));  // never paused: nothing to resolve
  notifier.notify(paused());
  notifier.notify(event(EventKind::aborted));
  notifier.notify(event(EventKind::resumed));  // already resolved
  ASSERT_TRUE(notifier.flush(milliseconds(3000)));
  const std::vector<rapidjson::Document> alerts = alerts_received();
  ASSERT_EQ(alerts.size(), 2u);
  EXPECT_GT(member(alerts[0], "endsAt"), now_rfc3339());
  EXPECT_LE(member(alerts[1], "endsAt"), now_rfc3339());
}

TEST_F(AlertmanagerTest, AnotherReasonResolvesTheOldAlertAndFiresANewOne) {
  Notifier notifier(alertmanager_only(server_.url()), log_);
  notifier.notify(paused("failed_check"));
  notifier.notify(paused("operator"));
  ASSERT_TRUE(notifier.flush(milliseconds(3000)));
  EXPECT_EQ(server_.requests().size(), 2u) << "the resolve and the new alert go together";
  const std::vector<rapidjson::Document> alerts = alerts_received();
  ASSERT_EQ(alerts.size(), 3u);
  EXPECT_EQ(member(alerts[0]["labels"], "reason"), "failed_check");
  EXPECT_EQ(member(alerts[1]["labels"], "reason"), "failed_check");
  EXPECT_LE(member(alerts[1], "endsAt"), now_rfc3339());
  EXPECT_EQ(member(alerts[2]["labels"], "reason"), "operator");
  EXPECT_GT(member(alerts[2], "endsAt"), now_rfc3339());
}

TEST_F(AlertmanagerTest, FiringAlertsAreResentUntilResolved) {
  Notifier notifier(alertmanager_only(server_.url()), log_, milliseconds(100));
  notifier.notify(paused());
  ASSERT_TRUE(server_.wait_for_requests(3, milliseconds(2000)));
  notifier.notify(event(EventKind::resumed));
  ASSERT_TRUE(notifier.flush(milliseconds(3000)));
  const std::size_t count = server_.requests().size();
  std::this_thread::sleep_for(milliseconds(250));
  EXPECT_EQ(server_.requests().size(), count) << "no re-send after the resolve";

  const std::vector<rapidjson::Document> alerts = alerts_received();
  ASSERT_GE(alerts.size(), 4u);
  for (std::size_t i = 0; i < alerts.size(); ++i) {
    EXPECT_EQ(member(alerts[i]["labels"], "cluster"), "c1");
    EXPECT_EQ(member(alerts[i], "startsAt"), "2026-11-26T10:23:39.123Z");
    if (i > 0 && i + 1 < alerts.size()) {
      EXPECT_GE(member(alerts[i], "endsAt"), member(alerts[i - 1], "endsAt")) << "re-sent";
    }
  }
  EXPECT_LE(member(alerts.back(), "endsAt"), now_rfc3339());
}

TEST_F(AlertmanagerTest, FailuresAreRetriedCountedAndLogged) {
  server_.set_status(500);
  Notifier notifier(alertmanager_only(server_.url("/am")), log_);
  notifier.notify(paused());
  ASSERT_TRUE(notifier.flush(milliseconds(3000)));
  EXPECT_EQ(server_.requests().size(), 3u);
  EXPECT_EQ(server_.requests()[0].target, "/am/api/v2/alerts");
  const NotifierStats stats = notifier.stats();
  EXPECT_EQ(stats.delivered, 0u);
  EXPECT_EQ(stats.failed, 3u);
  EXPECT_EQ(stats.dropped, 1u);
  EXPECT_NE(log_.str().find("notify alertmanager: POST " + server_.url("/am/api/v2/alerts") +
                            " failed: HTTP 500 (attempt 1 of 3)\n"),
            std::string::npos)
      << log_.str();
  EXPECT_NE(log_.str().find("notify alertmanager: gave up on 1 alert(s) after 3 attempts\n"),
            std::string::npos)
      << log_.str();
}

TEST(NotifierTest, BothDestinationsAtOnce) {
  TestHttpServer hook;
  TestHttpServer am;
  std::ostringstream log;
  Notifications both;
  both.webhook_url = hook.url("/hook");
  both.alertmanager_url = am.url();
  Notifier notifier(both, log);
  notifier.notify(event(EventKind::started));
  notifier.notify(paused());
  notifier.notify(event(EventKind::finished));
  ASSERT_TRUE(notifier.flush(milliseconds(3000)));
  EXPECT_EQ(hook.requests().size(), 3u);
  EXPECT_EQ(am.requests().size(), 2u);
  EXPECT_EQ(notifier.stats().delivered, 5u);
  EXPECT_EQ(log.str(), "");
}

// The alerts handed to the sink, without any HTTP.
class FakeSink final : public alerts::Sink {
 public:
  void send(const std::vector<alerts::AlertEvent>& events) override {
    std::lock_guard lock(mutex_);
    batches_.push_back(events);
    changed_.notify_all();
  }
  bool flush(std::chrono::milliseconds) override {
    std::lock_guard lock(mutex_);
    ++flushes_;
    return flush_result_;
  }
  std::vector<std::vector<alerts::AlertEvent>> batches() const {
    std::lock_guard lock(mutex_);
    return batches_;
  }
  bool wait_for_batches(std::size_t count, milliseconds timeout) const {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, timeout, [&] { return batches_.size() >= count; });
  }
  int flushes() const {
    std::lock_guard lock(mutex_);
    return flushes_;
  }
  void set_flush_result(bool result) {
    std::lock_guard lock(mutex_);
    flush_result_ = result;
  }

 private:
  mutable std::mutex mutex_;
  mutable std::condition_variable changed_;
  std::vector<std::vector<alerts::AlertEvent>> batches_;
  int flushes_ = 0;
  bool flush_result_ = true;
};

std::vector<alerts::EventKind> kinds(const std::vector<alerts::AlertEvent>& batch) {
  std::vector<alerts::EventKind> result;
  for (const auto& event : batch) result.push_back(event.kind);
  return result;
}

using Kinds = std::vector<alerts::EventKind>;

TEST(NotifierSinkTest, PausedFiresAndResumedResolvesOnTheSink) {
  auto sink = std::make_shared<FakeSink>();
  std::ostringstream log;
  Notifier notifier(log, sink);
  notifier.notify(event(EventKind::started));
  notifier.notify(event(EventKind::failed));
  notifier.notify(paused());
  notifier.notify(event(EventKind::resumed));
  const auto batches = sink->batches();
  ASSERT_EQ(batches.size(), 2u) << "started and failed do not alert";
  EXPECT_EQ(kinds(batches[0]), Kinds{alerts::EventKind::fired});
  EXPECT_EQ(kinds(batches[1]), Kinds{alerts::EventKind::resolved});
  const alerts::Alert& fired = batches[0][0].alert;
  EXPECT_EQ(fired.labels, (alerts::LabelSet{{"alertname", "RingwatchMigrationPaused"},
                                            {"cluster", "c1"},
                                            {"reason", "failed_check"},
                                            {"severity", "critical"}}));
  EXPECT_EQ(fired.annotations,
            (alerts::LabelSet{{"diagnosis", "b2 still in the ring of proxy p1"},
                              {"step", "drain-b2"},
                              {"summary",
                               "verify of drain-b2 failed: canary consistency 0.91 < "
                               "0.99"}}));
  EXPECT_EQ(fired.state, alerts::AlertState::firing);
  EXPECT_EQ(fired.starts_at, kAt);
  EXPECT_GT(fired.ends_at, alerts::Clock::now()) << "firing: endsAt is in the future";
  const alerts::Alert& resolved = batches[1][0].alert;
  EXPECT_EQ(resolved.labels, fired.labels);
  EXPECT_EQ(resolved.state, alerts::AlertState::resolved);
  EXPECT_LE(resolved.ends_at, alerts::Clock::now());
  EXPECT_EQ(notifier.stats().delivered, 0u) << "the sink's deliveries are its own";
  EXPECT_EQ(log.str(), "");
}

TEST(NotifierSinkTest, PausedAgainIsResentAndPausedForAnotherReasonIsAnotherAlert) {
  auto sink = std::make_shared<FakeSink>();
  std::ostringstream log;
  Notifier notifier(log, sink);
  notifier.notify(paused("failed_check"));
  Notification again = paused("failed_check");
  again.at = kAt + milliseconds(5000);
  again.step = "drain-b3";
  notifier.notify(again);
  notifier.notify(paused("operator"));
  notifier.notify(event(EventKind::finished));
  const auto batches = sink->batches();
  ASSERT_EQ(batches.size(), 4u);
  EXPECT_EQ(kinds(batches[0]), Kinds{alerts::EventKind::fired});
  EXPECT_EQ(kinds(batches[1]), Kinds{alerts::EventKind::resent});
  EXPECT_EQ(batches[1][0].alert.starts_at, kAt) << "the same episode";
  EXPECT_EQ(batches[1][0].alert.annotations.at("step"), "drain-b3");
  EXPECT_EQ(kinds(batches[2]), (Kinds{alerts::EventKind::resolved, alerts::EventKind::fired}));
  EXPECT_EQ(batches[2][0].alert.label("reason"), "failed_check");
  EXPECT_EQ(batches[2][1].alert.label("reason"), "operator");
  EXPECT_EQ(kinds(batches[3]), Kinds{alerts::EventKind::resolved});
  EXPECT_EQ(batches[3][0].alert.label("reason"), "operator");
}

TEST(NotifierSinkTest, APausedClusterIsResentEveryIntervalUntilResolved) {
  auto sink = std::make_shared<FakeSink>();
  std::ostringstream log;
  Notifier notifier(log, sink, milliseconds(50));
  notifier.notify(paused());
  ASSERT_TRUE(sink->wait_for_batches(3, milliseconds(5000)));
  notifier.notify(event(EventKind::aborted));
  const std::size_t count = sink->batches().size();
  std::this_thread::sleep_for(milliseconds(150));
  const auto batches = sink->batches();
  EXPECT_EQ(batches.size(), count) << "no re-send after the resolve";
  EXPECT_EQ(kinds(batches.front()), Kinds{alerts::EventKind::fired});
  EXPECT_EQ(kinds(batches.back()), Kinds{alerts::EventKind::resolved});
  for (std::size_t i = 1; i + 1 < batches.size(); ++i) {
    EXPECT_EQ(kinds(batches[i]), Kinds{alerts::EventKind::resent});
    EXPECT_EQ(batches[i][0].alert.starts_at, kAt);
    EXPECT_GE(batches[i][0].alert.ends_at, batches[i - 1][0].alert.ends_at);
  }
}

TEST(NotifierSinkTest, FlushWaitsForTheSink) {
  auto sink = std::make_shared<FakeSink>();
  std::ostringstream log;
  Notifier notifier(log, sink);
  EXPECT_TRUE(notifier.flush(milliseconds(10)));
  sink->set_flush_result(false);
  EXPECT_FALSE(notifier.flush(milliseconds(10)));
  EXPECT_EQ(sink->flushes(), 2);
}

}  // namespace
}  // namespace ringwatch::migration
