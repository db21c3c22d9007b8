// A real Alertmanager (Debian prometheus-alertmanager) on loopback receives
// what the tracker and the Alertmanager sink send, read back via its API.
//
// Measured with Alertmanager 0.25: a firing alert shows in GET /api/v2/alerts
// with status.state "active" and the endsAt we sent; a re-send with the same
// labels updates that one alert (endsAt moves); once we send endsAt = the
// resolve time (in the past by the time it is read), the alert is gone from
// GET /api/v2/alerts at once, whatever the active/silenced/inhibited/
// unprocessed filters say: Alertmanager's API lists no resolved alerts.
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <thread>

#include "alerts/alert_state.h"
#include "alerts/http_sink.h"
#include "lib/http/client.h"
#include "lib/util/time.h"
#include "tests/support/alertmanager_process.h"
#include "tests/support/eventually.h"

namespace ringwatch::alerts {
namespace {

using testing::eventually;

using namespace std::chrono_literals;
using Steady = std::chrono::steady_clock;
using report::Finding;
using report::Report;
using report::Severity;
using report::Status;

Report lab_round(bool p2_lost_b3) {
  Report report;
  report.cluster = "lab";
  report.checks = {{"canary", p2_lost_b3 ? Status::critical : Status::ok, "", 5}};
  if (p2_lost_b3) {
    report.add({"canary",
                "ring_divergence",
                Severity::critical,
                {.proxy = "p2", .backend = "b3"},
                "proxy p2 routes 0 of 6 canaries to backend b3; p1 and p3 route 6 there",
                {}});
    report.diagnoses.push_back({Severity::critical,
                                {.proxy = "p2", .backend = "b3"},
                                "p2 hashes over a ring without b3",
                                {0}});
  }
  return report;
}

TEST(AlertmanagerTest, AFiringAlertShowsUpIsReSentAsOneAlertAndIsGoneOnceResolved) {
  testing::AlertmanagerProcess alertmanager;
  AlertTracker tracker({.fire_after_rounds = 2,
                        .resolve_after_rounds = 2,
                        .resend_interval = 1s,
                        .generator_url = "http://127.0.0.1:9188"});
  auto sink = make_alertmanager_sink({.name = "alertmanager", .url = alertmanager.url()});
  auto round = [&](bool fault) {
    auto events = tracker.observe(lab_round(fault), Clock::now());
    sink->send(events);
    EXPECT_TRUE(sink->flush(10s));
    return events;
  };

  ASSERT_TRUE(round(true).empty());  // pending: nothing sent
  EXPECT_TRUE(alertmanager.alerts().empty());
  auto fired = round(true);
  ASSERT_EQ(fired.size(), 1u);
  ASSERT_EQ(fired[0].kind, EventKind::fired);

  std::vector<testing::AlertmanagerAlert> seen;
  ASSERT_TRUE(eventually([&] {
    seen = alertmanager.alerts();
    return seen.size() == 1 && seen[0].state == "active";
  })) << alertmanager.output();
  EXPECT_EQ(seen[0].labels, (LabelSet{{"alertname", "RingwatchRingDivergence"},
                                      {"cluster", "lab"},
                                      {"check", "canary"},
                                      {"proxy", "p2"},
                                      {"backend", "b3"},
                                      {"severity", "critical"}}));
  EXPECT_EQ(seen[0].annotations.at("summary"),
            "proxy p2 routes 0 of 6 canaries to backend b3; p1 and p3 route 6 there");
  EXPECT_EQ(seen[0].annotations.at("diagnosis"), "p2 hashes over a ring without b3");
  EXPECT_EQ(seen[0].starts_at, util::format_rfc3339_ms(fired[0].alert.starts_at));
  EXPECT_EQ(seen[0].ends_at, util::format_rfc3339_ms(fired[0].alert.ends_at));

  // Still failing a second later: re-sent, and still one alert, endsAt moved on.
  std::this_thread::sleep_for(1100ms);
  auto resent = round(true);
  ASSERT_EQ(resent.size(), 1u);
  ASSERT_EQ(resent[0].kind, EventKind::resent);
  ASSERT_TRUE(eventually([&] {
    seen = alertmanager.alerts();
    return seen.size() == 1 && seen[0].ends_at == util::format_rfc3339_ms(resent[0].alert.ends_at);
  })) << (seen.empty() ? "none" : seen[0].ends_at);
  EXPECT_EQ(seen[0].starts_at, util::format_rfc3339_ms(fired[0].alert.starts_at));

  // Healed: one passing round keeps it firing, the second resolves it.
  EXPECT_TRUE(round(false).empty());
  EXPECT_EQ(alertmanager.alerts().size(), 1u);
  auto resolved = round(false);
  ASSERT_EQ(resolved.size(), 1u);
  ASSERT_EQ(resolved[0].kind, EventKind::resolved);
  EXPECT_TRUE(eventually([&] { return alertmanager.alerts().empty(); }));
  // Not even listed when asking for every kind of alert.
  EXPECT_TRUE(
      alertmanager.alerts("?active=true&silenced=true&inhibited=true&unprocessed=true").empty());

  const SinkStats stats = sink->stats();
  EXPECT_EQ(stats.sent, 3u);  // fired, resent, resolved
  EXPECT_EQ(stats.failed, 0u);
}

TEST(AlertmanagerTest, AlertmanagerRejectsAnInvalidAlertAndTheSinkDoesNotRetryIt) {
  testing::AlertmanagerProcess alertmanager;
  auto sink = make_alertmanager_sink(
      {.name = "alertmanager", .url = alertmanager.url(), .initial_backoff = 50ms});
  AlertEvent bad;
  bad.kind = EventKind::fired;
  bad.alert.labels = {{"alertname", "RingwatchX"}, {"cluster", "lab"}};
  bad.alert.starts_at = Clock::now();
  bad.alert.ends_at = bad.alert.starts_at - 1h;  // ends before it starts: invalid
  sink->send({bad});
  ASSERT_TRUE(sink->flush(10s));
  const SinkStats stats = sink->stats();
  EXPECT_EQ(stats.sent, 0u);
  EXPECT_EQ(stats.failed, 1u);
  EXPECT_EQ(stats.dropped_rejected, 1u);
}

}  // namespace
}  // namespace ringwatch::alerts
