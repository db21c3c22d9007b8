// The alert state machine (alerts/alert_state.h): pure, with an injected clock.
#include "alerts/alert_state.h"

#include <gtest/gtest.h>

#include <stdexcept>

namespace ringwatch::alerts {
namespace {

using namespace std::chrono_literals;
using report::Finding;
using report::Report;
using report::Severity;
using report::Status;

const TimePoint kT0 = TimePoint{} + std::chrono::hours(24 * 365 * 56);  // ~2026

Finding divergence(const std::string& proxy = "p2", const std::string& backend = "b3") {
  return {"canary",
          "ring_divergence",
          Severity::critical,
          {.proxy = proxy, .backend = backend},
          "proxy " + proxy + " routes 0 of 6 canaries to backend " + backend,
          {}};
}

Finding dns_outside() {
  return {"dns",
          "dns_outside_range",
          Severity::critical,
          {.backend = "b3", .node = "b3.lab.ringwatch.test", .vantage = "lab-dns"},
          "b3's name b3.lab.ringwatch.test resolves to 127.200.0.13 at lab-dns, outside "
          "127.10.0.0/16",
          {}};
}

// A round of cluster `cluster` in which every check in `checks` ran with the
// status its findings give (OK when none).
Report round(std::vector<Finding> findings, const std::string& cluster = "lab",
             std::vector<std::string> checks = {"canary", "connections", "dns"}) {
  Report report;
  report.cluster = cluster;
  for (const std::string& name : checks) {
    report::CheckResult check{name, Status::ok, "", 1.0};
    for (const Finding& f : findings) {
      if (f.check == name)
        check.status = report::worst(check.status, report::status_of(f.severity));
    }
    report.checks.push_back(check);
  }
  for (Finding& f : findings) report.add(std::move(f));
  return report;
}

std::vector<EventKind> kinds(const std::vector<AlertEvent>& events) {
  std::vector<EventKind> result;
  for (const AlertEvent& e : events) result.push_back(e.kind);
  return result;
}

TEST(AlertStateTest, FiresAfterTheConfiguredNumberOfFailingRounds) {
  AlertTracker tracker({.fire_after_rounds = 3, .resolve_after_rounds = 2});
  EXPECT_TRUE(tracker.observe(round({divergence()}), kT0).empty());
  ASSERT_EQ(tracker.active().size(), 1u);
  EXPECT_EQ(tracker.active()[0].state, AlertState::pending);
  EXPECT_TRUE(tracker.observe(round({divergence()}), kT0 + 10s).empty());

  auto events = tracker.observe(round({divergence()}), kT0 + 20s);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, EventKind::fired);
  EXPECT_EQ(events[0].alert.state, AlertState::firing);
  EXPECT_EQ(events[0].alert.starts_at, kT0);  // the first failing round
  // Valid for 4 x max(resend interval 60 s, round gap 10 s).
  EXPECT_EQ(events[0].alert.ends_at, kT0 + 20s + 240s);
  EXPECT_EQ(tracker.active()[0].state, AlertState::firing);
}

TEST(AlertStateTest, FireAfterOneFiresOnTheFirstFailingRound) {
  AlertTracker tracker({.fire_after_rounds = 1, .resolve_after_rounds = 1});
  EXPECT_EQ(kinds(tracker.observe(round({divergence()}), kT0)),
            std::vector<EventKind>{EventKind::fired});
  EXPECT_EQ(kinds(tracker.observe(round({}), kT0 + 10s)),
            std::vector<EventKind>{EventKind::resolved});
}

TEST(AlertStateTest, ResolvesAfterTheConfiguredNumberOfPassingRounds) {
  AlertTracker tracker({.fire_after_rounds = 1, .resolve_after_rounds = 3});
  ASSERT_EQ(tracker.observe(round({divergence()}), kT0).size(), 1u);
  EXPECT_TRUE(tracker.observe(round({}), kT0 + 10s).empty());
  EXPECT_TRUE(tracker.observe(round({}), kT0 + 20s).empty());
  ASSERT_EQ(tracker.active().size(), 1u);
  EXPECT_EQ(tracker.active()[0].state, AlertState::firing);  // still firing while resolving

  auto events = tracker.observe(round({}), kT0 + 30s);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, EventKind::resolved);
  EXPECT_EQ(events[0].alert.state, AlertState::resolved);
  EXPECT_EQ(events[0].alert.starts_at, kT0);
  EXPECT_EQ(events[0].alert.ends_at, kT0 + 30s);
  EXPECT_TRUE(tracker.active().empty());
}

TEST(AlertStateTest, AFaultShorterThanFireAfterNeverPages) {
  AlertTracker tracker({.fire_after_rounds = 2, .resolve_after_rounds = 2});
  for (int i = 0; i < 10; ++i) {
    const auto now = kT0 + i * 10s;
    EXPECT_TRUE(
        tracker.observe(round(i % 2 == 0 ? std::vector{divergence()} : std::vector<Finding>{}), now)
            .empty())
        << "round " << i;
  }
  EXPECT_TRUE(tracker.active().empty());
}

TEST(AlertStateTest, AFlappingFaultStaysOneFiringAlert) {
  AlertTracker tracker(
      {.fire_after_rounds = 2, .resolve_after_rounds = 2, .resend_interval = 3600s});
  tracker.observe(round({divergence()}), kT0);
  ASSERT_EQ(kinds(tracker.observe(round({divergence()}), kT0 + 10s)),
            std::vector<EventKind>{EventKind::fired});
  // pass, fail, pass, fail, ...: the passing streak never reaches 2.
  for (int i = 2; i < 12; ++i) {
    auto events = tracker.observe(
        round(i % 2 == 0 ? std::vector<Finding>{} : std::vector{divergence()}), kT0 + i * 10s);
    EXPECT_TRUE(events.empty()) << "round " << i;
  }
  EXPECT_EQ(kinds(tracker.observe(round({}), kT0 + 120s)), std::vector<EventKind>{});
  EXPECT_EQ(kinds(tracker.observe(round({}), kT0 + 130s)),
            std::vector<EventKind>{EventKind::resolved});
}

TEST(AlertStateTest, TheSameAlertAcrossRoundsIsOneAlertReSentWhenDue) {
  AlertTracker tracker({.fire_after_rounds = 1, .resolve_after_rounds = 2, .resend_interval = 60s});
  std::vector<AlertEvent> all;
  for (int i = 0; i <= 13; ++i) {  // a round every 10 s for 130 s
    auto events = tracker.observe(round({divergence()}), kT0 + i * 10s);
    all.insert(all.end(), events.begin(), events.end());
  }
  ASSERT_EQ(kinds(all),
            (std::vector<EventKind>{EventKind::fired, EventKind::resent, EventKind::resent}));
  EXPECT_EQ(all[1].alert.starts_at, kT0);
  EXPECT_EQ(all[1].alert.ends_at, kT0 + 60s + 240s);
  EXPECT_EQ(all[2].alert.ends_at, kT0 + 120s + 240s);
  EXPECT_EQ(all[0].alert.fingerprint(), all[2].alert.fingerprint());
  EXPECT_EQ(tracker.active().size(), 1u);
}

TEST(AlertStateTest, TwoFindingsWithOneLabelSetInOneRoundAreOneAlert) {
  AlertTracker tracker({.fire_after_rounds = 1});
  Finding second = divergence();
  second.summary = "another wording";
  auto events = tracker.observe(round({divergence(), second}), kT0);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].alert.annotations.at("summary"),
            "proxy p2 routes 0 of 6 canaries to backend b3");  // the first wins
}

TEST(AlertStateTest, LabelsAndAnnotationsOfAFinding) {
  AlertTracker tracker({.fire_after_rounds = 1});
  Report report = round({dns_outside(), divergence()});
  report.diagnoses.push_back({Severity::critical,
                              {.proxy = "p2", .backend = "b3"},
                              "p2 lost b3: b3's name resolves to its public address at lab-dns",
                              {0, 1}});
  auto events = tracker.observe(report, kT0);
  ASSERT_EQ(events.size(), 2u);
  // Ordered by label set: alertname RingwatchDnsOutsideRange < RingwatchRingDivergence.
  EXPECT_EQ(events[0].alert.labels, (LabelSet{{"alertname", "RingwatchDnsOutsideRange"},
                                              {"cluster", "lab"},
                                              {"check", "dns"},
                                              {"backend", "b3"},
                                              {"node", "b3.lab.ringwatch.test"},
                                              {"vantage", "lab-dns"},
                                              {"severity", "critical"}}));
  EXPECT_EQ(events[1].alert.labels, (LabelSet{{"alertname", "RingwatchRingDivergence"},
                                              {"cluster", "lab"},
                                              {"check", "canary"},
                                              {"proxy", "p2"},
                                              {"backend", "b3"},
                                              {"severity", "critical"}}));
  EXPECT_EQ(
      events[1].alert.annotations,
      (LabelSet{{"summary", "proxy p2 routes 0 of 6 canaries to backend b3"},
                {"diagnosis", "p2 lost b3: b3's name resolves to its public address at lab-dns"}}));
  EXPECT_TRUE(events[1].alert.generator_url.empty());
}

TEST(AlertStateTest, NoDiagnosisAnnotationWithoutADiagnosis) {
  AlertTracker tracker({.fire_after_rounds = 1});
  Report report = round({Finding{"canary",
                                 "ring_disagreement",
                                 Severity::critical,
                                 {},
                                 "proxies disagree on 4 canaries with no majority route",
                                 {}}});
  report.diagnoses.push_back({Severity::critical, {.proxy = "p9"}, "unrelated", {7}});
  auto events = tracker.observe(report, kT0);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].alert.labels, (LabelSet{{"alertname", "RingwatchRingDisagreement"},
                                              {"cluster", "lab"},
                                              {"check", "canary"},
                                              {"severity", "critical"}}));
  EXPECT_EQ(events[0].alert.annotations,
            (LabelSet{{"summary", "proxies disagree on 4 canaries with no majority route"}}));
}

TEST(AlertStateTest, InfoFindingsNeverAlertWarningAndUnknownDo) {
  AlertTracker tracker({.fire_after_rounds = 1});
  auto events = tracker.observe(
      round({Finding{"canary", "transient_disagreement", Severity::info, {}, "raced", {}},
             Finding{"canary", "coverage_short", Severity::warning, {.backend = "b1"}, "short", {}},
             Finding{"connections",
                     "proxy_stats_unreadable",
                     Severity::unknown,
                     {.proxy = "p1"},
                     "stats port refused",
                     {}}}),
      kT0);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].alert.label("alertname"), "RingwatchCoverageShort");
  EXPECT_EQ(events[0].alert.label("severity"), "warning");
  EXPECT_EQ(events[1].alert.label("alertname"), "RingwatchProxyStatsUnreadable");
  EXPECT_EQ(events[1].alert.label("severity"), "unknown");
}

TEST(AlertStateTest, ARoundWithoutTheCheckOrWithItUnknownNeitherConfirmsNorClears) {
  AlertTracker tracker({.fire_after_rounds = 1, .resolve_after_rounds = 1, .resend_interval = 60s});
  ASSERT_EQ(tracker.observe(round({dns_outside()}), kT0).size(), 1u);
  // The dns check did not run (a canary-only preflight): held.
  EXPECT_TRUE(tracker.observe(round({}, "lab", {"canary"}), kT0 + 10s).empty());
  // The dns check ran but could not decide: held.
  Report undecided = round({}, "lab", {"canary", "dns"});
  undecided.checks[1].status = Status::unknown;
  EXPECT_TRUE(tracker.observe(undecided, kT0 + 20s).empty());
  // Held rounds still re-send when due, so Alertmanager does not expire it.
  EXPECT_EQ(kinds(tracker.observe(round({}, "lab", {"canary"}), kT0 + 60s)),
            std::vector<EventKind>{EventKind::resent});
  ASSERT_EQ(tracker.active().size(), 1u);
  // A decided round without the finding resolves it.
  EXPECT_EQ(kinds(tracker.observe(round({}), kT0 + 70s)),
            std::vector<EventKind>{EventKind::resolved});
}

TEST(AlertStateTest, HeldRoundsKeepAPendingAlertsCount) {
  AlertTracker tracker({.fire_after_rounds = 2});
  EXPECT_TRUE(tracker.observe(round({dns_outside()}), kT0).empty());
  EXPECT_TRUE(tracker.observe(round({}, "lab", {"canary"}), kT0 + 10s).empty());
  EXPECT_EQ(kinds(tracker.observe(round({dns_outside()}), kT0 + 20s)),
            std::vector<EventKind>{EventKind::fired});
}

TEST(AlertStateTest, ASeverityChangeIsAnotherAlert) {
  AlertTracker tracker({.fire_after_rounds = 1, .resolve_after_rounds = 1});
  Finding warning = divergence();
  warning.severity = Severity::warning;
  ASSERT_EQ(tracker.observe(round({warning}), kT0).size(), 1u);
  auto events = tracker.observe(round({divergence()}), kT0 + 10s);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].kind, EventKind::fired);
  EXPECT_EQ(events[0].alert.label("severity"), "critical");
  EXPECT_EQ(events[1].kind, EventKind::resolved);
  EXPECT_EQ(events[1].alert.label("severity"), "warning");
}

TEST(AlertStateTest, ClustersAreTrackedIndependently) {
  AlertTracker tracker({.fire_after_rounds = 1, .resolve_after_rounds = 1});
  ASSERT_EQ(tracker.observe(round({divergence()}, "east"), kT0).size(), 1u);
  ASSERT_EQ(tracker.observe(round({divergence()}, "west"), kT0).size(), 1u);
  auto events = tracker.observe(round({}, "east"), kT0 + 10s);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].alert.label("cluster"), "east");
  EXPECT_EQ(tracker.active("west").size(), 1u);
  EXPECT_TRUE(tracker.active("east").empty());
}

TEST(AlertStateTest, ForgettingAClusterResolvesItsFiringAlertsAndDropsPendingOnes) {
  AlertTracker tracker({.fire_after_rounds = 2});
  tracker.observe(round({divergence()}, "east"), kT0);
  tracker.observe(round({divergence(), dns_outside()}, "east"), kT0 + 10s);  // dns: pending
  tracker.observe(round({divergence()}, "west"), kT0);
  auto events = tracker.forget_cluster("east", kT0 + 20s);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, EventKind::resolved);
  EXPECT_EQ(events[0].alert.label("alertname"), "RingwatchRingDivergence");
  EXPECT_EQ(events[0].alert.ends_at, kT0 + 20s);
  EXPECT_TRUE(tracker.active("east").empty());
  EXPECT_EQ(tracker.active("west").size(), 1u);
  EXPECT_TRUE(tracker.forget_cluster("nowhere", kT0).empty());
}

TEST(AlertStateTest, ValidityCoversSlowRounds) {
  AlertTracker tracker({.fire_after_rounds = 1, .resend_interval = 60s});
  tracker.observe(round({divergence()}), kT0);
  // Rounds every 5 minutes: the alert must outlive the gap between two.
  auto events = tracker.observe(round({divergence()}), kT0 + 300s);
  ASSERT_EQ(kinds(events), std::vector<EventKind>{EventKind::resent});
  EXPECT_EQ(events[0].alert.ends_at, kT0 + 300s + 4 * 300s);
}

TEST(AlertStateTest, ResendsDueWithoutARound) {
  AlertTracker tracker({.fire_after_rounds = 1, .resend_interval = 60s});
  tracker.observe(round({divergence()}), kT0);
  EXPECT_TRUE(tracker.resends_due(kT0 + 30s).empty());
  auto events = tracker.resends_due(kT0 + 61s);
  ASSERT_EQ(kinds(events), std::vector<EventKind>{EventKind::resent});
  EXPECT_TRUE(tracker.resends_due(kT0 + 90s).empty());
}

TEST(AlertStateTest, GeneratorUrlPointsAtTheClusterInTheDaemonApi) {
  AlertTracker tracker({.fire_after_rounds = 1, .generator_url = "http://ringwatch:9188/"});
  auto events = tracker.observe(round({divergence()}), kT0);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].alert.generator_url, "http://ringwatch:9188/v1/clusters/lab");
}

TEST(AlertStateTest, RejectsRoundCountsBelowOne) {
  try {
    AlertTracker tracker({.fire_after_rounds = 0});
    FAIL() << "expected std::invalid_argument";
  } catch (const std::invalid_argument& error) {
    EXPECT_STREQ(error.what(), "fire_after_rounds: expected at least 1, got 0");
  }
  try {
    AlertTracker tracker({.resolve_after_rounds = -1});
    FAIL() << "expected std::invalid_argument";
  } catch (const std::invalid_argument& error) {
    EXPECT_STREQ(error.what(), "resolve_after_rounds: expected at least 1, got -1");
  }
  try {
    AlertTracker tracker({.resend_interval = 0s});
    FAIL() << "expected std::invalid_argument";
  } catch (const std::invalid_argument& error) {
    EXPECT_STREQ(error.what(), "resend_interval: expected a positive duration, got 0 s");
  }
}

TEST(AlertStateTest, AlertnamesFromFindingCodes) {
  EXPECT_EQ(alertname_for("ring_divergence"), "RingwatchRingDivergence");
  EXPECT_EQ(alertname_for("dns_outside_range"), "RingwatchDnsOutsideRange");
  EXPECT_EQ(alertname_for("backend_timeout"), "RingwatchBackendTimeout");
  EXPECT_EQ(alertname_for(""), "Ringwatch");
}

TEST(AlertStateTest, FingerprintsAreStablePerLabelSet) {
  Alert a{.labels = {{"alertname", "X"}, {"cluster", "lab"}}};
  Alert b{.labels = {{"alertname", "X"}, {"cluster", "lab"}}};
  Alert c{.labels = {{"alertname", "X"}, {"cluster", "la"}, {"b", ""}}};
  EXPECT_EQ(a.fingerprint(), b.fingerprint());
  EXPECT_NE(a.fingerprint(), c.fingerprint());
  EXPECT_EQ(a.fingerprint().size(), 16u);
}

}  // namespace
}  // namespace ringwatch::alerts
