// Faults named correctly, in words that are true, on real labs: clusters of
// one and two proxies (no strict majority: the spec's backend list and each
// proxy's own server list decide which proxy is wrong), every proxy down, a
// dead backend. Every check runs, as `ringwatch probe` runs them; every
// finding above info must be one of the expected ones, word for word (counts
// and clock times are holes in the pattern), and every expected one must be
// there.

#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <functional>
#include <regex>
#include <string>
#include <string_view>
#include <vector>

#include "probes/registry.h"
#include "tests/support/report_helpers.h"
#include "tests/support/scoped_lab.h"
#include "tools/lab/lab.h"

namespace ringwatch::probes {
namespace {

using report::Finding;
using report::Report;
using report::Severity;
using report::Status;
using report::Subject;
using testing::describe;
using testing::figure;
using testing::run_until;
using testing::ScopedLab;
using namespace std::chrono_literals;

const std::vector<std::string> kEveryCheck = {"canary", "connections", "dns"};

// A text with holes: {n} a count, {time} a UTC clock time, {errors} "1 error"
// or "3 errors", {dests} where a proxy sent canaries ("b1 (2) and b2 (1)"),
// {any} anything but nothing, {more} anything. Everything else must match
// exactly.
std::regex pattern(std::string_view text) {
  static const std::vector<std::pair<std::string_view, std::string_view>> holes = {
      {"{n}", R"(\d+)"},
      {"{time}", R"(\d\d:\d\d:\d\d)"},
      {"{errors}", R"(\d+ errors?)"},
      {"{dests}", R"(b\d \(\d+\)((, | and )b\d \(\d+\))*)"},
      {"{any}", R"(.+)"},
      {"{more}", R"(.*)"}};
  std::string regex;
  while (!text.empty()) {
    bool hole = false;
    for (const auto& [name, replacement] : holes) {
      if (text.starts_with(name)) {
        regex += replacement;
        text.remove_prefix(name.size());
        hole = true;
        break;
      }
    }
    if (hole) continue;
    if (std::string_view(R"(\^$.|?*+()[]{})").find(text.front()) != std::string_view::npos) {
      regex += '\\';
    }
    regex += text.front();
    text.remove_prefix(1);
  }
  return std::regex(regex);
}

bool matches(const std::string& text, std::string_view with_holes) {
  return std::regex_match(text, pattern(with_holes));
}

struct Expect {
  std::string check, code;
  Subject subject;
  std::string summary;  // with holes, see pattern()
};

std::string diagnoses(const Report& report) {
  std::string text;
  for (const auto& diagnosis : report.diagnoses) text += "  diagnosis: " + diagnosis.summary + "\n";
  return text;
}

// Every finding above info is one of `expected`, and each expected one is
// made exactly once.
::testing::AssertionResult findings_are(const Report& report, const std::vector<Expect>& expected) {
  std::vector<int> made(expected.size(), 0);
  std::string wrong;
  for (const Finding& finding : report.findings) {
    if (finding.severity == Severity::info) continue;
    bool known = false;
    for (std::size_t e = 0; e < expected.size() && !known; ++e) {
      if (finding.check == expected[e].check && finding.code == expected[e].code &&
          finding.subject == expected[e].subject && matches(finding.summary, expected[e].summary)) {
        ++made[e];
        known = true;
      }
    }
    if (!known)
      wrong +=
          "  unexpected: " + finding.check + "/" + finding.code + ": " + finding.summary + "\n";
  }
  for (std::size_t e = 0; e < expected.size(); ++e) {
    if (made[e] != 1) {
      wrong += "  made " + std::to_string(made[e]) + " times: " + expected[e].check + "/" +
               expected[e].code + ": " + expected[e].summary + "\n";
    }
  }
  if (wrong.empty()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "\n" << wrong << describe(report) << diagnoses(report);
}

// The diagnoses, in order, each matching its pattern.
::testing::AssertionResult diagnoses_are(const Report& report,
                                         const std::vector<std::string>& expected) {
  bool same = report.diagnoses.size() == expected.size();
  for (std::size_t i = 0; same && i < expected.size(); ++i) {
    same = matches(report.diagnoses[i].summary, expected[i]);
  }
  if (same) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "\n" << diagnoses(report) << describe(report);
}

bool has(const Report& report, const std::string& code) {
  return testing::find_finding(report, code) != nullptr;
}

bool clean(const Report& report) {
  for (const Finding& finding : report.findings) {
    if (finding.severity != Severity::info) return false;
  }
  return report.status() == Status::ok;
}

// A few rounds of a healthy lab: OK, nothing above info.
void expect_healthy(const ScopedLab& lab, int proxies) {
  const spec::ClusterSpec spec = lab.spec();
  ProbeSet probes(kEveryCheck);
  for (int round = 0; round < 5; ++round) {
    const Report report = probes.run_round(spec);
    ASSERT_TRUE(clean(report)) << "round " << round << "\n" << describe(report);
    // 8 canaries per backend: a round reads at least 22 through each proxy.
    EXPECT_EQ(report.summary_line(), std::string("OK: 24 canaries consistent through ") +
                                         (proxies == 1 ? "1 proxy" : "2 proxies") +
                                         " on 3 backends");
    EXPECT_EQ(figure(report, "consistency_ratio"), 1.0);
    EXPECT_EQ(figure(report, "unplaced_canaries"), 0.0);
    for (int q = 1; q <= proxies; ++q) {
      EXPECT_EQ(figure(report, "backends_routed/p" + std::to_string(q)), 3);
    }
  }
}

// A probe set that learned its canaries on the healthy lab, as a daemon's has.
ProbeSet learned_healthy(const spec::ClusterSpec& spec) {
  ProbeSet probes(kEveryCheck);
  const Report report = probes.run_round(spec);
  EXPECT_TRUE(clean(report)) << describe(report);
  return probes;
}

// Injects `fault` into a healthy lab, then probes it with two probe sets, one
// that learned its canaries before the fault (as a daemon's has) and one that
// learns with the fault in place (as `ringwatch probe` does), each until
// `settled`; `check` gets each one's last report.
void before_and_after(const ScopedLab& lab, const std::function<void()>& fault,
                      const std::function<bool(const Report&)>& settled,
                      const std::function<void(const Report&, bool learned_before)>& check) {
  const spec::ClusterSpec spec = lab.spec();
  ProbeSet before = learned_healthy(spec);
  fault();
  ProbeSet after(kEveryCheck);
  for (ProbeSet* probes : {&before, &after}) {
    SCOPED_TRACE(probes == &before ? "learned before the fault" : "learned after the fault");
    check(run_until(*probes, spec, settled, 15s), probes == &before);
  }
}

// ---- Two proxies ----

TEST(TwoProxyLabTest, HealthyIsOk) {
  ScopedLab lab(2);
  expect_healthy(lab, 2);
}

// p2's config lacks b4, which the spec and p1 have: p1 routes to every
// backend in use, so p1's routes are the reference and p2 is missing b4.
TEST(TwoProxyLabTest, AProxyLackingABackendIsNamed) {
  ScopedLab lab(2);
  lab::add_backend(lab.dir(), {"b4", "", {}});
  lab::restart_proxies(lab.dir(), {.proxies = {"p1"}});
  const spec::ClusterSpec spec = lab.spec();
  ProbeSet probes(kEveryCheck);  // learns with the fault in place, as `ringwatch probe` does
  const Report report = run_until(
      probes, spec, [](const Report& r) { return has(r, "ring_divergence"); }, 15s);
  EXPECT_EQ(report.summary_line(), "CRITICAL: ring divergence: p2 is missing b4");
  EXPECT_TRUE(findings_are(
      report,
      {{"canary",
        "ring_divergence",
        {.proxy = "p2", .backend = "b4"},
        "proxy p2 routes 0 of {n} canaries to backend b4; p1 routes {n} there; p2 sends them to "
        "{dests}"},
       {"canary",
        "inconsistent_reads",
        {.proxy = "p2"},
        "{n} of {n} canaries read inconsistently: written via {any}"},
       {"connections",
        "proxy_missing_backend",
        {.proxy = "p2", .backend = "b4"},
        "proxy p2 is not connected to b4 (not in its server list)"},
       {"connections",
        "proxy_config_drift",
        {.proxy = "p2"},
        "server list of proxy p2 differs from the spec: lacks b4"},
       {"connections",
        "proxy_backend_sets_differ",
        {},
        "proxies disagree on the backend set: p2 uses b1, b2, b3; p1 uses b1, b2, b3, b4"}}));
  EXPECT_TRUE(diagnoses_are(
      report, {"p2 is missing b4 (canary: 0/{n} routed; twemproxy: not in its server list)"}));
  EXPECT_EQ(figure(report, "backends_routed/p1"), 4);
  EXPECT_EQ(figure(report, "backends_routed/p2"), 3);
}

// p2 still has b1, which the spec (and p1) no longer lists: p2 routes
// canaries to a server outside the spec.
TEST(TwoProxyLabTest, AProxyWithABackendNotInTheSpecIsNamed) {
  ScopedLab lab(2);
  lab::drain_backend(lab.dir(), "b1");
  lab::restart_proxies(lab.dir(), {.proxies = {"p1"}});
  const spec::ClusterSpec spec = lab.spec();
  ProbeSet probes(kEveryCheck);
  const Report report = run_until(
      probes, spec, [](const Report& r) { return has(r, "routed_outside_spec"); }, 15s);
  EXPECT_TRUE(matches(report.summary_line(),
                      "CRITICAL: ring divergence: p2 routes {n} of {n} canaries outside the spec"))
      << report.summary_line();
  EXPECT_TRUE(findings_are(
      report,
      {{"canary",
        "routed_outside_spec",
        {.proxy = "p2"},
        "proxy p2 routes {n} of {n} canaries to a server not in the spec (no configured backend "
        "holds them; all 2 answered)"},
       {"canary",
        "inconsistent_reads",
        {.proxy = "p2"},
        "{n} of {n} canaries read inconsistently: written via {any}"},
       {"connections",
        "proxy_config_drift",
        {.proxy = "p2"},
        "server list of proxy p2 differs from the spec: has b1 (not in the spec)"}}));
  EXPECT_TRUE(diagnoses_are(report, {"p2 routes canaries outside the spec (canary: {n} of {n} "
                                     "canaries on no configured backend; twemproxy: has b1, not "
                                     "in the spec)"}));
}

const std::vector<Expect> kTwoProxiesP2EjectsB3 = {
    {"canary",
     "ring_divergence",
     {.proxy = "p2", .backend = "b3"},
     "proxy p2 routes 0 of {n} canaries to backend b3; p1 routes {n} there; p2 sends them to "
     "{dests}"},
    {"canary",
     "inconsistent_reads",
     {.proxy = "p2"},
     "{n} of {n} canaries read inconsistently: written via {any}"},
    {"connections",
     "proxy_missing_backend",
     {.proxy = "p2", .backend = "b3"},
     "proxy p2 is not connected to b3 (ejected at {time} UTC, {errors})"},
    {"connections",
     "proxy_backend_sets_differ",
     {},
     "proxies disagree on the backend set: p2 uses b1, b2; p1 uses b1, b2, b3"}};

TEST(TwoProxyLabTest, EjectIsNamedWhetherLearnedBeforeOrAfter) {
  ScopedLab lab(2);
  before_and_after(
      lab,
      [&] {
        lab.inject({lab::FaultKind::eject, "p2", "b3", "", ""});
      },
      [](const Report& r) { return has(r, "ring_divergence") && has(r, "proxy_missing_backend"); },
      [](const Report& report, bool) {
        EXPECT_EQ(report.summary_line(), "CRITICAL: ring divergence: p2 is missing b3");
        EXPECT_TRUE(findings_are(report, kTwoProxiesP2EjectsB3));
        EXPECT_TRUE(diagnoses_are(report, {"p2 is missing b3 (canary: 0/{n} routed; twemproxy: "
                                           "ejected at {time} UTC, {errors})"}));
      });
}

// Two proxies that use the same backends but hash differently: neither is
// whole-er than the other, so no proxy is named, but nothing is learned away
// either (a probe learning with the fault in place is not fooled into OK).
TEST(TwoProxyLabTest, AHashDifferenceIsADisagreementThatNamesNoProxy) {
  ScopedLab lab(2);
  lab.inject({lab::FaultKind::hash, "p1", "", "", "murmur"});
  const spec::ClusterSpec spec = lab.spec();
  ProbeSet probes(kEveryCheck);
  const Report report = probes.run_round(spec);
  EXPECT_TRUE(
      matches(report.summary_line(),
              "CRITICAL: ring divergence: proxies disagree on {n} canaries with no majority route"))
      << report.summary_line();
  EXPECT_TRUE(
      findings_are(report, {{"canary",
                             "ring_disagreement",
                             {},
                             "proxies disagree on {n} canaries with no majority route"},
                            {"canary",
                             "inconsistent_reads",
                             {},
                             "{n} of {n} canaries read inconsistently: written via {any}"}}));
  EXPECT_TRUE(diagnoses_are(report, {"p1 and p2 disagree on {n} canaries with no majority route; "
                                     "their server lists match the spec, so they hash differently "
                                     "(hash, distribution or weights)"}));
}

// ---- One proxy ----

TEST(OneProxyLabTest, HealthyIsOk) {
  ScopedLab lab(1);
  expect_healthy(lab, 1);
}

TEST(OneProxyLabTest, AProxyLackingABackendIsNamed) {
  ScopedLab lab(1);
  lab::add_backend(lab.dir(), {"b4", "", {}});
  const spec::ClusterSpec spec = lab.spec();
  ProbeSet probes(kEveryCheck);
  const Report report = probes.run_round(spec);
  EXPECT_EQ(report.summary_line(),
            "CRITICAL: proxy p1 routes no canaries to backend b4 (configured, reachable from the "
            "probe)");
  EXPECT_TRUE(findings_are(
      report, {{"canary",
                "backend_not_routed",
                {.proxy = "p1", .backend = "b4"},
                "proxy p1 routes no canaries to backend b4 (configured, reachable from the probe)"},
               {"connections",
                "proxy_missing_backend",
                {.proxy = "p1", .backend = "b4"},
                "proxy p1 is not connected to b4 (not in its server list)"},
               {"connections",
                "proxy_config_drift",
                {.proxy = "p1"},
                "server list of proxy p1 differs from the spec: lacks b4"}}));
  EXPECT_TRUE(diagnoses_are(
      report, {"p1 is missing b4 (canary: routes none there; twemproxy: not in its server list)"}));
  // b4's share of canaries (6 of 4 x 6) could not be placed: a quarter of the ring.
  EXPECT_EQ(figure(report, "unplaced_canaries"), 6);
  EXPECT_EQ(figure(report, "consistency_ratio"), 0.75);
}

TEST(OneProxyLabTest, AProxyWithABackendNotInTheSpecIsNamed) {
  ScopedLab lab(1);
  lab::drain_backend(lab.dir(), "b1");
  const spec::ClusterSpec spec = lab.spec();
  ProbeSet probes(kEveryCheck);
  for (int round = 0; round < 3; ++round) {  // and in the rounds after learning
    const Report report = probes.run_round(spec);
    EXPECT_TRUE(
        matches(report.summary_line(),
                "CRITICAL: ring divergence: p1 routes {n} of {n} canaries outside the spec"))
        << report.summary_line();
    EXPECT_TRUE(findings_are(
        report, {{"canary",
                  "routed_outside_spec",
                  {.proxy = "p1"},
                  "proxy p1 routes {n} of {n} canaries to a server not in the spec (no configured "
                  "backend holds them; all 2 answered)"},
                 {"connections",
                  "proxy_config_drift",
                  {.proxy = "p1"},
                  "server list of proxy p1 differs from the spec: has b1 (not in the spec)"}}));
    EXPECT_TRUE(diagnoses_are(report, {"p1 routes canaries outside the spec (canary: {n} of {n} "
                                       "canaries on no configured backend; twemproxy: has b1, "
                                       "not in the spec)"}));
  }
}

TEST(OneProxyLabTest, EjectIsNamedWhetherLearnedBeforeOrAfter) {
  ScopedLab lab(1);
  before_and_after(
      lab,
      [&] {
        lab.inject({lab::FaultKind::eject, "p1", "b3", "", ""});
      },
      [](const Report& r) {
        return has(r, "backend_not_routed") && has(r, "proxy_missing_backend");
      },
      [](const Report& report, bool learned_before) {
        EXPECT_EQ(report.summary_line(),
                  "CRITICAL: proxy p1 routes no canaries to backend b3 (configured, reachable "
                  "from the probe)");
        EXPECT_TRUE(findings_are(
            report,
            {{"canary",
              "backend_not_routed",
              {.proxy = "p1", .backend = "b3"},
              "proxy p1 routes no canaries to backend b3 (configured, reachable from the probe)"},
             {"connections",
              "proxy_missing_backend",
              {.proxy = "p1", .backend = "b3"},
              "proxy p1 is not connected to b3 (ejected at {time} UTC, {errors})"}}));
        // Learned before, b3's canaries are still in the set; learned after, none is.
        EXPECT_TRUE(diagnoses_are(report, {std::string("p1 is missing b3 (canary: ") +
                                           (learned_before ? "0/{n} routed" : "routes none there") +
                                           "; twemproxy: ejected at {time} UTC, {errors})"}));
        EXPECT_EQ(figure(report, "unplaced_canaries"), 8);
        EXPECT_NEAR(figure(report, "consistency_ratio"), 2.0 / 3, 1e-9);
      });
}

// ---- Every proxy down; a dead backend (three proxies) ----

TEST(OutageLabTest, EveryProxyDownIsSaidNamingEachAndNothingElseAboutRouting) {
  ScopedLab lab;
  std::vector<Expect> expected;
  for (const std::string proxy : {"p1", "p2", "p3"}) {
    expected.push_back({"canary",
                        "proxy_unreachable",
                        {.proxy = proxy},
                        "proxy " + proxy + " unreachable (connect refused)"});
    expected.push_back({"connections",
                        "proxy_stats_unreadable",
                        {.proxy = proxy},
                        "stats of proxy " + proxy + " unreadable (refused): {any}"});
  }
  before_and_after(
      lab,
      [&] {
        for (const char* proxy : {"p1", "p2", "p3"}) {
          const int pid = lab.pid_of(proxy);
          ASSERT_GT(pid, 0);
          ASSERT_EQ(::kill(pid, SIGKILL), 0);
        }
      },
      [](const Report& r) {
        return r.checks[0].summary.starts_with("no proxy reachable") &&
               has(r, "proxy_stats_unreadable");
      },
      [&](const Report& report, bool) {
        EXPECT_EQ(report.summary_line(),
                  "CRITICAL: no proxy reachable: p1, p2, p3 (connect refused)");
        EXPECT_TRUE(findings_are(report, expected));
        EXPECT_TRUE(
            diagnoses_are(report, {"no proxy reachable: p1, p2, p3 (also seen by: connections)"}));
      });
}

TEST(OutageLabTest, ADeadBackendIsTheCauseNotEachProxyMissingIt) {
  ScopedLab lab;
  // Learned before, the canary also says what the proxies do with b2's canaries.
  const std::string cause = "backend b2 unreachable from the probe (connect refused){more}";
  std::vector<Expect> expected = {{"canary", "backend_unreachable", {.backend = "b2"}, cause},
                                  {"connections",
                                   "backend_stats_unreadable",
                                   {.backend = "b2"},
                                   "stats conns of backend b2 unreadable (refused): {any}"}};
  for (const std::string proxy : {"p1", "p2", "p3"}) {
    expected.push_back({"connections",
                        "proxy_missing_backend",
                        {.proxy = proxy, .backend = "b2"},
                        "proxy " + proxy + " is not connected to b2 ({any})"});
  }
  before_and_after(
      lab,
      [&] {
        lab.inject({lab::FaultKind::kill, "", "b2", "", ""});
      },
      [](const Report& r) {  // until every proxy has noticed b2 is gone
        return std::count_if(r.findings.begin(), r.findings.end(), [](const Finding& finding) {
                 return finding.code == "proxy_missing_backend";
               }) == 3;
      },
      [&](const Report& report, bool) {
        EXPECT_TRUE(matches(report.summary_line(), "CRITICAL: " + cause)) << report.summary_line();
        EXPECT_TRUE(findings_are(report, expected));
        // One diagnosis, the cause, citing every proxy's missing connection.
        EXPECT_TRUE(diagnoses_are(report, {cause + " (also seen by: connections)"}));
        ASSERT_EQ(report.diagnoses.size(), 1u);
        EXPECT_EQ(report.diagnoses[0].subject, (Subject{.backend = "b2"}));
        EXPECT_EQ(report.diagnoses[0].finding_indexes.size(), 5u);
        // b2's canaries could not be placed: a third of the ring, not "consistency 1".
        EXPECT_EQ(figure(report, "unplaced_canaries"), 8);
        EXPECT_NEAR(figure(report, "consistency_ratio"), 2.0 / 3, 1e-9) << describe(report);
      });
}

}  // namespace
}  // namespace ringwatch::probes
