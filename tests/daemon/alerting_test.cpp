// The daemon's alerting (daemon/alerting.h) with fake sinks: which sinks it
// makes, what each round's transitions hand them, and how deliveries are
// logged and counted.
#include "daemon/alerting.h"

#include <gtest/gtest.h>

#include <mutex>
#include <sstream>
#include <stdexcept>

#include "alerts/metrics.h"
#include "daemon/log.h"

namespace ringwatch::daemon {
namespace {

using namespace std::chrono_literals;
using alerts::EventKind;
using report::Report;

class FakeSink final : public alerts::Sink {
 public:
  explicit FakeSink(alerts::HttpSinkOptions options) : options_(std::move(options)) {}
  void send(const std::vector<alerts::AlertEvent>& events) override {
    if (events.empty()) return;  // as the contract says
    std::lock_guard lock(mutex_);
    batches_.push_back(events);
  }
  bool flush(std::chrono::milliseconds) override {
    std::lock_guard lock(mutex_);
    ++flushes_;
    return true;
  }
  const alerts::HttpSinkOptions& options() const { return options_; }
  std::vector<std::vector<EventKind>> batches() const {
    std::lock_guard lock(mutex_);
    std::vector<std::vector<EventKind>> kinds;
    for (const auto& batch : batches_) {
      kinds.emplace_back();
      for (const auto& event : batch) kinds.back().push_back(event.kind);
    }
    return kinds;
  }
  int flushes() const {
    std::lock_guard lock(mutex_);
    return flushes_;
  }

 private:
  alerts::HttpSinkOptions options_;
  mutable std::mutex mutex_;
  std::vector<std::vector<alerts::AlertEvent>> batches_;
  int flushes_ = 0;
};

// Makes FakeSinks and keeps them, in the order made.
struct FakeSinks {
  std::vector<std::shared_ptr<FakeSink>> made;
  SinkFactory factory() {
    return [this](alerts::SinkFormat format, alerts::HttpSinkOptions options) {
      if (options.url.rfind("http://", 0) != 0) throw std::invalid_argument("bad url");
      EXPECT_EQ(format == alerts::SinkFormat::alertmanager_v2, options.name == "alertmanager");
      made.push_back(std::make_shared<FakeSink>(std::move(options)));
      return made.back();
    };
  }
};

Report round(bool failing) {
  Report report;
  report.cluster = "lab";
  report.checks.push_back(
      {"canary", failing ? report::Status::critical : report::Status::ok, "", 1.0});
  if (failing) {
    report.add({"canary",
                "ring_divergence",
                report::Severity::critical,
                {.proxy = "p2", .backend = "b3"},
                "proxy p2 routes 0 of 6 canaries to backend b3",
                {}});
  }
  return report;
}

AlertsConfig both_sinks(int fire_after = 1, int resolve_after = 1) {
  return {.alertmanager = "http://127.0.0.1:9093",
          .webhook = "http://127.0.0.1:8080/hook",
          .fire_after_rounds = fire_after,
          .resolve_after_rounds = resolve_after};
}

class AlertingTest : public ::testing::Test {
 protected:
  std::ostringstream out_;
  std::shared_ptr<Logger> log_ = std::make_shared<Logger>(out_, LogLevel::debug);
  std::shared_ptr<alerts::Metrics> metrics_ = std::make_shared<alerts::Metrics>("test");
  FakeSinks sinks_;
};

TEST_F(AlertingTest, EveryRoundsTransitionsGoToEverySink) {
  Alerting alerting(both_sinks(2, 1), log_, metrics_, sinks_.factory());
  ASSERT_EQ(sinks_.made.size(), 2u);
  EXPECT_EQ(sinks_.made[0]->options().name, "alertmanager");
  EXPECT_EQ(sinks_.made[0]->options().url, "http://127.0.0.1:9093");
  EXPECT_EQ(sinks_.made[1]->options().name, "webhook");
  EXPECT_EQ(sinks_.made[1]->options().url, "http://127.0.0.1:8080/hook");

  alerting.observe(round(true));  // pending
  alerting.observe(round(true));  // fired
  alerting.observe(round(false));
  const std::vector<std::vector<EventKind>> expected = {{EventKind::fired}, {EventKind::resolved}};
  for (const auto& sink : sinks_.made) EXPECT_EQ(sink->batches(), expected);
  EXPECT_NE(out_.str().find("event=alert cluster=lab kind=fired alertname=RingwatchRingDivergence"),
            std::string::npos)
      << out_.str();
}

TEST_F(AlertingTest, ALeavingClusterResolvesItsAlertsAndFlushReachesEverySink) {
  Alerting alerting(both_sinks(), log_, metrics_, sinks_.factory());
  alerting.observe(round(true));
  alerting.forget_cluster("lab");
  alerting.flush(10ms);
  for (const auto& sink : sinks_.made) {
    EXPECT_EQ(sink->batches(),
              (std::vector<std::vector<EventKind>>{{EventKind::fired}, {EventKind::resolved}}));
    EXPECT_EQ(sink->flushes(), 1);
  }
}

TEST_F(AlertingTest, ReconfigureReplacesTheSinksOnlyWhenTheirUrlsChange) {
  Alerting alerting(both_sinks(), log_, metrics_, sinks_.factory());
  alerting.reconfigure(both_sinks(3, 3));
  EXPECT_EQ(sinks_.made.size(), 2u);

  AlertsConfig bad = both_sinks();
  bad.webhook = "ftp://hook";
  EXPECT_THROW(alerting.reconfigure(bad), std::invalid_argument);
  alerting.observe(round(true));  // F = 3 since the last good reconfigure: pending
  alerting.observe(round(true));
  alerting.observe(round(true));
  EXPECT_EQ(sinks_.made[0]->batches().back(), std::vector<EventKind>{EventKind::fired})
      << "a bad URL changed nothing";

  AlertsConfig webhook_only = both_sinks(3, 3);
  webhook_only.alertmanager.clear();
  webhook_only.webhook = "http://127.0.0.1:8081/";
  alerting.reconfigure(webhook_only);
  ASSERT_EQ(sinks_.made.size(), 4u);  // the good alertmanager sink of `bad`, then this one
  EXPECT_EQ(sinks_.made[3]->options().url, "http://127.0.0.1:8081/");
  alerting.forget_cluster("lab");
  EXPECT_EQ(sinks_.made[3]->batches(), std::vector<std::vector<EventKind>>{{EventKind::resolved}});
  EXPECT_EQ(sinks_.made[0]->batches().size(), 1u) << "the old sinks get nothing more";
}

TEST_F(AlertingTest, DeliveriesAreLoggedAndCounted) {
  Alerting alerting(both_sinks(), log_, metrics_, sinks_.factory());
  const auto& observer = sinks_.made[0]->options().observer;
  ASSERT_TRUE(observer);
  observer->on_delivery({.sink = "alertmanager",
                         .outcome = alerts::DeliveryOutcome::failed,
                         .items = 2,
                         .attempt = 1,
                         .error = "connect to 127.0.0.1:9093 refused",
                         .retry_in = 500ms});
  observer->on_delivery({.sink = "alertmanager",
                         .outcome = alerts::DeliveryOutcome::dropped_rejected,
                         .items = 2,
                         .attempt = 1,
                         .error = "HTTP 400"});
  EXPECT_NE(out_.str().find("level=warn event=alert_delivery sink=alertmanager outcome=failed "
                            "alerts=2 attempt=1 error=\"connect to 127.0.0.1:9093 refused\" "
                            "retry_in_ms=500\n"),
            std::string::npos)
      << out_.str();
  const std::string metrics = metrics_->serialize();
  EXPECT_NE(metrics.find(
                R"(ringwatch_alert_notifications_total{outcome="failed",sink="alertmanager"} 1)"),
            std::string::npos)
      << metrics;
  EXPECT_NE(
      metrics.find(
          R"(ringwatch_alert_notifications_dropped_total{reason="rejected",sink="alertmanager"} 1)"),
      std::string::npos)
      << metrics;
}

TEST_F(AlertingTest, WithoutSinksNothingIsMade) {
  Alerting alerting({}, log_, metrics_, sinks_.factory());
  alerting.observe(round(true));
  alerting.resend_due();
  alerting.flush(10ms);
  EXPECT_TRUE(sinks_.made.empty());
}

}  // namespace
}  // namespace ringwatch::daemon
