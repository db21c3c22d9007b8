// End to end below the daemon: a real lab (memcached behind nutcracker), the
// canary probe, the alert tracker, the Alertmanager sink and a real
// Alertmanager, plus the metrics of the same rounds. The incident's fault
// (p2 ejects b3) must reach Alertmanager as one alert naming p2 and b3 within
// three rounds of showing up, and be gone from it after `lab heal`.
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <cstdio>
#include <sstream>
#include <thread>

#include "alerts/alert_state.h"
#include "alerts/http_sink.h"
#include "alerts/metrics.h"
#include "lib/http/client.h"
#include "probes/canary/canary_probe.h"
#include "tests/support/alertmanager_process.h"
#include "tests/support/scoped_lab.h"

namespace ringwatch::alerts {
namespace {

using namespace std::chrono_literals;
using report::Report;
using report::Status;

std::string describe(const Report& report) {
  std::ostringstream text;
  text << report.summary_line() << "\n";
  for (const report::Finding& f : report.findings) {
    text << "  " << report::to_string(f.severity) << " " << f.code << " [" << f.subject.describe()
         << "] " << f.summary << "\n";
  }
  return text.str();
}

// Alertmanager's active alerts named `alertname`, as label sets.
std::vector<LabelSet> am_alerts(const std::string& base, const std::string& alertname) {
  http::Client client;
  auto response = client.request("GET", http::parse_url(base + "/api/v2/alerts"));
  if (!response.ok() || response.value().status != 200) return {};
  rapidjson::Document document;
  document.Parse(response.value().body.c_str());
  std::vector<LabelSet> result;
  if (!document.IsArray()) return result;
  for (const auto& item : document.GetArray()) {
    LabelSet labels;
    for (const auto& m : item["labels"].GetObject())
      labels[m.name.GetString()] = m.value.GetString();
    if (labels["alertname"] == alertname) result.push_back(std::move(labels));
  }
  return result;
}

bool has_line(const std::string& text, const std::string& line) {
  return ("\n" + text).find("\n" + line + "\n") != std::string::npos;
}

TEST(AlertsLabTest, EjectPagesAlertmanagerNamingProxyAndBackendAndHealResolvesIt) {
  testing::ScopedLab lab;
  testing::AlertmanagerProcess alertmanager;
  const spec::ClusterSpec spec = lab.spec();
  probes::canary::CanaryProbe probe;
  AlertTracker tracker({.fire_after_rounds = 2, .resolve_after_rounds = 2});
  Metrics metrics("test");
  auto sink = make_alertmanager_sink({.name = "alertmanager",
                                      .url = alertmanager.url(),
                                      .observer = metrics.delivery_observer("alertmanager")});
  auto run_round = [&] {
    Report report;
    report.cluster = spec.name;
    report.started_at = std::chrono::system_clock::now();
    const auto start = std::chrono::steady_clock::now();
    probes::RoundContext round;
    probe.run(spec, round, report);
    report.duration_ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    metrics.observe(spec, report);
    auto events = tracker.observe(report, Clock::now());
    sink->send(events);
    return std::make_pair(report, events);
  };

  auto [healthy, none] = run_round();  // learns the ring
  ASSERT_EQ(healthy.status(), Status::ok) << describe(healthy);
  EXPECT_TRUE(none.empty());

  lab.inject({lab::FaultKind::eject, "p2", "b3", "", ""});
  // Rounds until the divergence shows (nutcracker ejects after its failure
  // limit), then count rounds to the page.
  int first_seen = -1, fired_at = -1;
  std::string log;
  for (int round = 0; round < 40 && fired_at < 0; ++round) {
    auto [report, events] = run_round();
    log += "round " + std::to_string(round) + ": " + describe(report);
    bool divergence = false;
    for (const auto& f : report.findings) divergence |= f.code == "ring_divergence";
    if (divergence && first_seen < 0) first_seen = round;
    for (const AlertEvent& e : events) {
      if (e.kind == EventKind::fired && e.alert.label("alertname") == "RingwatchRingDivergence") {
        EXPECT_EQ(e.alert.label("proxy"), "p2");
        EXPECT_EQ(e.alert.label("backend"), "b3");
        fired_at = round;
      }
    }
    if (fired_at < 0) std::this_thread::sleep_for(250ms);
  }
  ASSERT_GE(first_seen, 0) << log;
  ASSERT_GE(fired_at, 0) << log;
  EXPECT_LE(fired_at - first_seen + 1, 3) << log;  // within three rounds of showing up
  std::printf("eject: divergence in round %d after the fault, alert fired in round %d\n",
              first_seen + 1, fired_at + 1);

  ASSERT_TRUE(sink->flush(10s));
  std::vector<LabelSet> paged;
  for (int i = 0; i < 100 && paged.empty(); ++i) {
    paged = am_alerts(alertmanager.url(), "RingwatchRingDivergence");
    if (paged.empty()) std::this_thread::sleep_for(50ms);
  }
  ASSERT_EQ(paged.size(), 1u) << alertmanager.output();
  EXPECT_EQ(paged[0]["proxy"], "p2");
  EXPECT_EQ(paged[0]["backend"], "b3");
  EXPECT_EQ(paged[0]["cluster"], spec.name);
  EXPECT_EQ(paged[0]["severity"], "critical");

  std::string text = metrics.serialize();
  EXPECT_TRUE(
      has_line(text, R"(ringwatch_check_status{check="canary",cluster=")" + spec.name + R"("} 2)"))
      << text;
  EXPECT_TRUE(has_line(
      text, R"(ringwatch_alert_notifications_total{outcome="sent",sink="alertmanager"} 1)"))
      << text;

  lab.heal();
  bool resolved = false;
  for (int round = 0; round < 40 && !resolved; ++round) {
    auto [report, events] = run_round();
    for (const AlertEvent& e : events) resolved |= e.kind == EventKind::resolved;
    if (!resolved) std::this_thread::sleep_for(250ms);
  }
  ASSERT_TRUE(resolved);
  ASSERT_TRUE(sink->flush(10s));
  bool gone = false;
  for (int i = 0; i < 100 && !gone; ++i) {
    gone = am_alerts(alertmanager.url(), "RingwatchRingDivergence").empty();
    if (!gone) std::this_thread::sleep_for(50ms);
  }
  EXPECT_TRUE(gone);
  text = metrics.serialize();
  EXPECT_TRUE(
      has_line(text, R"(ringwatch_check_status{check="canary",cluster=")" + spec.name + R"("} 0)"))
      << text;
  EXPECT_TRUE(
      has_line(text, R"(ringwatch_canary_consistency_ratio{cluster=")" + spec.name + R"("} 1)"))
      << text;
  EXPECT_EQ(sink->stats().failed, 0u);
}

}  // namespace
}  // namespace ringwatch::alerts
