// The diagnosis, from hand-made rounds: it reads what the checks put into the
// round context and cites their findings by index; finding codes and
// summaries it does not parse.

#include "probes/diagnosis.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace ringwatch::probes {
namespace {

using report::Finding;
using report::Report;
using report::Severity;
using Indexes = std::vector<std::size_t>;

spec::ClusterSpec cluster() {
  spec::ClusterSpec spec;
  spec.name = "lab";
  for (const char* name : {"p1", "p2"}) {
    spec::Proxy proxy;
    proxy.name = name;
    proxy.kind = spec::ProxyKind::twemproxy;
    proxy.dns_vantage = std::string(name) + "-resolver";
    spec.proxies.push_back(proxy);
  }
  spec.dns_servers = {{"p1-resolver", std::nullopt}, {"p2-resolver", std::nullopt}};
  return spec;
}

// A report whose findings only need to exist: the diagnosis cites them.
Report with_findings(std::size_t count) {
  Report report;
  for (std::size_t i = 0; i < count; ++i) {
    report.add(Finding{"x", "x", Severity::critical, {}, "finding " + std::to_string(i), {}});
  }
  return report;
}

TEST(DiagnosisTest, AMissingLinkTiesTheCanaryTheAuditAndTheDnsAnswerAtTheProxysVantagePoint) {
  Report report = with_findings(5);
  RoundContext round;
  round.canary.emplace().missing.push_back({{"p2", "b3"}, 0, 6, 0});
  round.connections.emplace().missing.push_back(
      {{"p2", "b3"}, "ejected at 14:02:11 UTC, 3 errors", 2});
  round.connections->peers_missing.push_back({{"p2", "b3"}, 3});
  round.dns.emplace().outside.push_back(
      {"b3", "p2-resolver", {"127.200.0.13"}, "127.10.0.0/16", 4});

  diagnose(cluster(), round, report);
  ASSERT_EQ(report.diagnoses.size(), 1u);
  const report::Diagnosis& diagnosis = report.diagnoses[0];
  EXPECT_EQ(diagnosis.summary,
            "p2 is missing b3 (canary: 0/6 routed; twemproxy: ejected at 14:02:11 UTC, 3 errors; "
            "b3's peers lack p2) — b3's name resolves to 127.200.0.13, outside 127.10.0.0/16, at "
            "the vantage point used by p2");
  EXPECT_EQ(diagnosis.severity, Severity::critical);
  EXPECT_EQ(diagnosis.subject, (report::Subject{.proxy = "p2", .backend = "b3"}));
  EXPECT_EQ(diagnosis.finding_indexes, (Indexes{0, 2, 3, 4}));
}

TEST(DiagnosisTest, FactsFollowTheirFindingsAndOtherVantagePointsAreNamed) {
  Report report = with_findings(6);
  RoundContext round;
  // The audit's finding came first this time; an unknown proxy is "connections".
  round.canary.emplace().missing.push_back({{"p9", "b1"}, 1, 5, 3});
  round.connections.emplace().missing.push_back({{"p9", "b1"}, "not in its server list", 1});
  round.dns.emplace().outside = {
      {"b1", "p1-resolver", {"10.0.0.1", "10.0.0.2"}, "127.10.0.0/16", 4},
      {"b2", "p1-resolver", {"10.0.0.3"}, "127.10.0.0/16", 5},  // another backend
      {"b1", "p2-resolver", {"10.0.0.1"}, "127.10.0.0/16", 0},
  };

  diagnose(cluster(), round, report);
  ASSERT_EQ(report.diagnoses.size(), 1u);
  EXPECT_EQ(report.diagnoses[0].summary,
            "p9 is missing b1 (connections: not in its server list; canary: 1/5 routed) — b1's "
            "name resolves to 10.0.0.1, outside 127.10.0.0/16, at vantage point p2-resolver; b1's "
            "name resolves to 10.0.0.1, 10.0.0.2, outside 127.10.0.0/16, at vantage point "
            "p1-resolver");
  EXPECT_EQ(report.diagnoses[0].finding_indexes, (Indexes{0, 1, 3, 4}));
}

TEST(DiagnosisTest, AProxyThatKeepsABackendsKeysAndFailsThemCannotReachIt) {
  // memcached's proxy: the canary's errors and the audit's "marked bad".
  spec::ClusterSpec spec = cluster();
  for (auto& proxy : spec.proxies) proxy.kind = spec::ProxyKind::memcached_proxy;
  Report report = with_findings(3);
  RoundContext round;
  round.canary.emplace().failing.push_back({{"p2", "b3"}, 6, 6, "SERVER_ERROR backend failure", 0});
  round.connections.emplace().missing.push_back(
      {{"p2", "b3"}, "marked bad by 2 of 2 worker threads", 2, true});
  round.dns.emplace().outside.push_back(
      {"b3", "p2-resolver", {"127.200.0.13"}, "127.10.0.0/16", 1});

  diagnose(spec, round, report);
  ASSERT_EQ(report.diagnoses.size(), 1u);
  EXPECT_EQ(report.diagnoses[0].summary,
            "p2 cannot reach b3 (canary: 6/6 failed with SERVER_ERROR backend failure; "
            "memcached-proxy: marked bad by 2 of 2 worker threads) — b3's name resolves to "
            "127.200.0.13, outside 127.10.0.0/16, at the vantage point used by p2");
  EXPECT_EQ(report.diagnoses[0].finding_indexes, (Indexes{0, 1, 2}));

  // The audit alone says so too, when the proxy still routes there.
  Report audit_only = with_findings(1);
  RoundContext connections_only;
  connections_only.connections.emplace().missing.push_back(
      {{"p1", "b1"}, "connection down", 0, true});
  diagnose(spec, connections_only, audit_only);
  ASSERT_EQ(audit_only.diagnoses.size(), 1u);
  EXPECT_EQ(audit_only.diagnoses[0].summary,
            "p1 cannot reach b1 (memcached-proxy: connection down)");
}

TEST(DiagnosisTest, LinksAreDiagnosedInTheOrderOfProxyThenBackend) {
  Report report = with_findings(3);
  RoundContext round;
  round.connections.emplace().missing = {
      {{"p2", "b1"}, "ejected", 0}, {{"p1", "b2"}, "ejected", 1}, {{"p1", "b1"}, "ejected", 2}};
  diagnose(cluster(), round, report);
  ASSERT_EQ(report.diagnoses.size(), 3u);
  EXPECT_EQ(report.diagnoses[0].summary, "p1 is missing b1 (twemproxy: ejected)");
  EXPECT_EQ(report.diagnoses[1].summary, "p1 is missing b2 (twemproxy: ejected)");
  EXPECT_EQ(report.diagnoses[2].summary, "p2 is missing b1 (twemproxy: ejected)");
}

TEST(DiagnosisTest, ABackendTheCanaryCannotReachTiesTheOtherChecksThatSeeIt) {
  Report report;
  report.add({"canary",
              "backend_unreachable",
              Severity::critical,
              {.backend = "b3"},
              "backend b3 unreachable from the probe (connect refused)",
              {}});
  report.add({"connections",
              "backend_stats_unreadable",
              Severity::unknown,
              {.backend = "b3"},
              "stats conns of backend b3 unreadable",
              {}});
  report.add({"connections", "connection_matrix", Severity::info, {}, "matrix", {}});
  report.add({"canary",
              "backend_unreachable",
              Severity::critical,
              {.backend = "b1"},
              "backend b1 unreachable from the probe (connect refused)",
              {}});
  report.add({"dns", "dns_no_answer", Severity::critical, {.backend = "b3"}, "no answer", {}});
  report.add({"connections", "backend_idle", Severity::info, {.backend = "b1"}, "idle", {}});
  report.add({"connections",
              "proxy_missing_backend",
              Severity::critical,
              {.proxy = "p1", .backend = "b1"},
              "p1 is not connected to b1",
              {}});
  report.add({"connections", "unknown_peer", Severity::warning, {.backend = "b1"}, "peer", {}});
  report.add({"canary",
              "backend_unreachable",
              Severity::critical,
              {.backend = "b2"},
              "backend b2 unreachable from the probe (connect refused)",
              {}});
  RoundContext round;
  round.canary.emplace().unreachable_backends = {{"b3", 0}, {"b1", 3}, {"b2", 8}};

  diagnose(cluster(), round, report);
  // In the order of the backends' names; b2, seen by the canary alone, needs no diagnosis.
  ASSERT_EQ(report.diagnoses.size(), 2u);
  EXPECT_EQ(report.diagnoses[0].summary,
            "backend b1 unreachable from the probe (connect refused) (also seen by: connections)");
  EXPECT_EQ(report.diagnoses[0].subject, (report::Subject{.backend = "b1"}));
  EXPECT_EQ(report.diagnoses[0].finding_indexes, (Indexes{3, 6, 7}));
  EXPECT_EQ(report.diagnoses[1].summary,
            "backend b3 unreachable from the probe (connect refused) (also seen by: connections "
            "dns)");
  EXPECT_EQ(report.diagnoses[1].finding_indexes, (Indexes{0, 1, 4}));
}

TEST(DiagnosisTest, ABackendTheCanaryCannotReachLeadsAndTheLinksToItAreItsStory) {
  Report report;
  report.add({"canary",
              "backend_unreachable",
              Severity::critical,
              {.backend = "b2"},
              "backend b2 unreachable from the probe (connect refused)",
              {}});
  for (const char* proxy : {"p1", "p2"}) {
    report.add({"connections",
                "proxy_missing_backend",
                Severity::critical,
                {.proxy = proxy, .backend = "b2"},
                std::string("proxy ") + proxy + " is not connected to b2 (ejected)",
                {}});
  }
  report.add({"connections",
              "proxy_missing_backend",
              Severity::critical,
              {.proxy = "p2", .backend = "b3"},
              "proxy p2 is not connected to b3 (ejected)",
              {}});
  RoundContext round;
  round.canary.emplace().unreachable_backends = {{"b2", 0}};
  round.connections.emplace().missing = {
      {{"p1", "b2"}, "ejected", 1}, {{"p2", "b2"}, "ejected", 2}, {{"p2", "b3"}, "ejected", 3}};

  diagnose(cluster(), round, report);
  ASSERT_EQ(report.diagnoses.size(), 2u);
  EXPECT_EQ(report.diagnoses[0].summary,
            "backend b2 unreachable from the probe (connect refused) (also seen by: connections)");
  EXPECT_EQ(report.diagnoses[0].finding_indexes, (Indexes{0, 1, 2}));
  EXPECT_EQ(report.diagnoses[1].summary, "p2 is missing b3 (twemproxy: ejected)");
}

TEST(DiagnosisTest, EveryProxyUnreachableIsOneDiagnosisNamingEach) {
  Report report;
  for (const char* proxy : {"p1", "p2"}) {
    report.add({"canary",
                "proxy_unreachable",
                Severity::critical,
                {.proxy = proxy},
                std::string("proxy ") + proxy + " unreachable (connect refused)",
                {}});
    report.add({"connections",
                "proxy_stats_unreadable",
                Severity::unknown,
                {.proxy = proxy},
                "stats unreadable",
                {}});
  }
  RoundContext round;
  round.canary.emplace().unreachable_proxies = {"p1", "p2"};
  round.canary->unreachable_proxy_findings = {{"p1", 0}, {"p2", 2}};
  round.connections.emplace();

  diagnose(cluster(), round, report);
  ASSERT_EQ(report.diagnoses.size(), 1u);
  EXPECT_EQ(report.diagnoses[0].summary, "no proxy reachable: p1, p2 (also seen by: connections)");
  EXPECT_EQ(report.diagnoses[0].subject, report::Subject{});
  EXPECT_EQ(report.diagnoses[0].finding_indexes, (Indexes{0, 1, 2, 3}));

  // One of two: that proxy's own diagnosis.
  report.diagnoses.clear();
  round.canary->unreachable_proxies = {"p2"};
  round.canary->unreachable_proxy_findings = {{"p2", 2}};
  diagnose(cluster(), round, report);
  ASSERT_EQ(report.diagnoses.size(), 1u);
  EXPECT_EQ(report.diagnoses[0].summary,
            "proxy p2 unreachable (connect refused) (also seen by: connections)");
  EXPECT_EQ(report.diagnoses[0].subject, (report::Subject{.proxy = "p2"}));
  EXPECT_EQ(report.diagnoses[0].finding_indexes, (Indexes{2, 3}));
}

TEST(DiagnosisTest, TheOnlyProxyRoutingNoCanaryToABackendIsMissingIt) {
  Report report = with_findings(2);
  RoundContext round;
  round.canary.emplace().missing.push_back({{"p1", "b4"}, 0, 0, 0});
  round.connections.emplace().missing.push_back({{"p1", "b4"}, "not in its server list", 1});
  diagnose(cluster(), round, report);
  ASSERT_EQ(report.diagnoses.size(), 1u);
  EXPECT_EQ(report.diagnoses[0].summary,
            "p1 is missing b4 (canary: routes none there; twemproxy: not in its server list)");
}

TEST(DiagnosisTest, RoutingOutsideTheSpecIsTiedToTheServersTheProxysListHasBeyondIt) {
  Report report = with_findings(4);
  RoundContext round;
  round.canary.emplace().outside.push_back({"p2", 4, 12, 1});
  round.connections.emplace().server_lists_compared = {"p1", "p2"};
  round.connections->drift = {{"p2", {"has b9 (not in the spec)", "lacks b2"}, {"b9"}, 3},
                              {"p1", {"lacks b2"}, {}, 2}};
  diagnose(cluster(), round, report);
  ASSERT_EQ(report.diagnoses.size(), 1u);
  EXPECT_EQ(report.diagnoses[0].summary,
            "p2 routes canaries outside the spec (canary: 4 of 12 canaries on no configured "
            "backend; twemproxy: has b9, not in the spec)");
  EXPECT_EQ(report.diagnoses[0].subject, (report::Subject{.proxy = "p2"}));
  EXPECT_EQ(report.diagnoses[0].finding_indexes, (Indexes{1, 3}));

  // Without the audit, the canary's word alone.
  report.diagnoses.clear();
  round.connections.reset();
  diagnose(cluster(), round, report);
  ASSERT_EQ(report.diagnoses.size(), 1u);
  EXPECT_EQ(report.diagnoses[0].summary,
            "p2 routes canaries outside the spec (canary: 4 of 12 canaries on no configured "
            "backend)");
}

TEST(DiagnosisTest, ADisagreementWithNoReferenceIsTiedToTheServerListThatDiffers) {
  Report report = with_findings(3);
  RoundContext round;
  round.canary.emplace().disagreement = CanaryRound::Disagreement{{"p1", "p2"}, 8, 0};
  round.connections.emplace().server_lists_compared = {"p1", "p2"};
  round.connections->drift = {{"p2", {"lacks b4"}, {}, 2}};
  diagnose(cluster(), round, report);
  ASSERT_EQ(report.diagnoses.size(), 1u);
  EXPECT_EQ(report.diagnoses[0].summary,
            "p1 and p2 disagree on 8 canaries with no majority route; p2's server list differs "
            "from the spec (twemproxy: lacks b4), p1's matches");
  EXPECT_EQ(report.diagnoses[0].subject, (report::Subject{.proxy = "p2"}));
  EXPECT_EQ(report.diagnoses[0].finding_indexes, (Indexes{0, 2}));

  // Both lists match the spec: the proxies hash differently.
  report.diagnoses.clear();
  round.connections->drift.clear();
  diagnose(cluster(), round, report);
  ASSERT_EQ(report.diagnoses.size(), 1u);
  EXPECT_EQ(report.diagnoses[0].summary,
            "p1 and p2 disagree on 8 canaries with no majority route; their server lists match "
            "the spec, so they hash differently (hash, distribution or weights)");

  // A list the audit could not compare: the server lists do not speak.
  report.diagnoses.clear();
  round.connections->server_lists_compared = {"p1"};
  diagnose(cluster(), round, report);
  EXPECT_TRUE(report.diagnoses.empty());
}

TEST(DiagnosisTest, FindingsAloneWithoutTheRoundsFactsAreNotParsed) {
  Report report;
  report.add({"canary",
              "ring_divergence",
              Severity::critical,
              {.proxy = "p2", .backend = "b3"},
              "proxy p2 routes 0 of 6 canaries to backend b3",
              {}});
  report.add({"connections",
              "proxy_missing_backend",
              Severity::critical,
              {.proxy = "p2", .backend = "b3"},
              "proxy p2 is not connected to b3 (ejected)",
              {}});
  report.add({"canary",
              "backend_unreachable",
              Severity::critical,
              {.backend = "b1"},
              "backend b1 unreachable",
              {}});
  report.add({"dns", "dns_no_answer", Severity::critical, {.backend = "b1"}, "no answer", {}});
  diagnose(cluster(), RoundContext{}, report);
  EXPECT_TRUE(report.diagnoses.empty());
}

}  // namespace
}  // namespace ringwatch::probes
