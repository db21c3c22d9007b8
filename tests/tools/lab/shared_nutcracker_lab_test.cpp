// Proxies as pools of shared nutcracker processes (UpOptions::pools_per_process,
// issue 15): a 60-proxy lab in 3 processes of 20 pools over 6 backends. The
// processes start, each proxy's stats come from its own pool of its process's
// shared stats document, the lab probes clean with proxies_per_round, and an
// ejected backend on one pool is found within ceil(P / N) rounds naming that
// proxy alone, although its whole process restarted. The 1,000-proxy lab is
// big_fleet_lab_test (not run under ASan).

#include <gtest/gtest.h>

#include <set>
#include <string>

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
using testing::describe;
using testing::run_until;
using testing::ScopedLab;
using namespace std::chrono_literals;

bool clean(const Report& report) {
  for (const Finding& finding : report.findings)
    if (finding.severity != Severity::info) return false;
  return report.status() == Status::ok;
}

// The proxies named by findings above info.
std::set<std::string> proxies_named(const Report& report) {
  std::set<std::string> named;
  for (const Finding& finding : report.findings)
    if (finding.severity != Severity::info && !finding.subject.proxy.empty())
      named.insert(finding.subject.proxy);
  return named;
}

TEST(SharedNutcrackerLabTest, SixtyProxiesInThreeProcessesProbeCleanAndAnEjectNamesItsPool) {
  ScopedLab lab(60, 6, "shared", lab::LabProxyKind::twemproxy, false, 20);
  std::set<int> pids;
  for (const auto& process : lab::status(lab.dir()).processes) {
    EXPECT_TRUE(process.alive) << process.node << ": " << process.detail;
    if (process.role == "proxy") pids.insert(process.pid);
  }
  EXPECT_EQ(pids.size(), 3u);  // 60 proxies, 3 nutcracker processes

  spec::ClusterSpec spec = lab.spec();
  ASSERT_EQ(spec.proxies.size(), 60u);
  EXPECT_EQ(spec.pool_of(spec.proxies[26]), "p27");
  EXPECT_EQ(spec.proxies[26].stats, spec.proxies[20].stats);  // one stats port per process
  EXPECT_NE(spec.proxies[26].stats, spec.proxies[19].stats);

  // Every check, connections included: each proxy's pool is found in its
  // process's stats, which list 20 pools.
  ProbeSet every({"canary", "connections", "dns"});
  const Report healthy = run_until(
      every, spec, [](const Report& r) { return clean(r); }, 30s);
  ASSERT_TRUE(clean(healthy)) << describe(healthy);

  spec.canary.proxies_per_round = 20;
  ProbeSet canary({"canary"});
  ASSERT_TRUE(clean(canary.run_round(spec)));

  lab.inject({lab::FaultKind::eject, "p27", "b4", "", ""});
  // p27's process (p21..p40) restarted; p27 alone diverges.
  int found_in = 0;
  for (int round = 1; round <= 3 && found_in == 0; ++round) {
    const Report report = canary.run_round(spec);
    const auto named = proxies_named(report);
    if (!named.empty()) {
      EXPECT_EQ(named, std::set<std::string>{"p27"}) << describe(report);
      found_in = round;
    }
  }
  ASSERT_GT(found_in, 0) << "p27 not found within ceil(60 / 20) = 3 rounds";

  lab.heal();
  const Report healed = run_until(
      every, spec, [](const Report& r) { return clean(r); }, 30s);
  EXPECT_TRUE(clean(healed)) << describe(healed);
}

// The connection audit over pools that share a process's stats port, in
// rounds that read through a rotating subset (proxies_per_round): pools the
// canary left out got no traffic, so with lazy connections they are idle
// (undecided), not missing; an ejected backend on one pool is a connections
// finding naming that proxy alone.
TEST(SharedNutcrackerLabTest, ConnectionsWithProxiesPerRoundNameOnlyTheEjectingPool) {
  ScopedLab lab(6, 3, "sharedconn", lab::LabProxyKind::twemproxy, false, 3);
  spec::ClusterSpec spec = lab.spec();
  ASSERT_EQ(spec.proxies[1].stats, spec.proxies[0].stats);
  spec.canary.proxies_per_round = 2;
  ProbeSet every({"canary", "connections"});
  const Report first = every.run_round(spec);
  EXPECT_TRUE(clean(first)) << describe(first);

  lab.inject({lab::FaultKind::eject, "p2", "b2", "", ""});
  const auto missing_p2_b2 = [](const Report& report) {
    for (const Finding& finding : report.findings)
      if (finding.code == "proxy_missing_backend" && finding.subject.proxy == "p2" &&
          finding.subject.backend == "b2")
        return true;
    return false;
  };
  const Report found = run_until(every, spec, missing_p2_b2, 30s);
  ASSERT_TRUE(missing_p2_b2(found)) << describe(found);
  for (const Finding& finding : found.findings) {
    if (finding.check == "connections" && finding.severity != Severity::info) {
      EXPECT_TRUE(finding.subject.proxy.empty() || finding.subject.proxy == "p2")
          << describe(found);
    }
  }
  // The status page's links carry each link's cell from the audit.
  ASSERT_EQ(found.links.size(), 6u * 3u);
  for (const report::LinkView& link : found.links) {
    EXPECT_FALSE(link.proxy_side.empty()) << link.proxy << " -> " << link.backend;
    EXPECT_EQ(link.backend_side, "unknown") << link.proxy << " -> " << link.backend;
    if (link.proxy == "p2" && link.backend == "b2") {
      EXPECT_TRUE(link.proxy_side == "ejected" || link.proxy_side == "missing") << link.proxy_side;
      EXPECT_TRUE(link.state == "ejected" || link.state == "missing") << link.state;
    }
  }
}

TEST(SharedNutcrackerLabTest, LimitsAreCheckedBeforeAnythingStarts) {
  const auto dir = std::filesystem::temp_directory_path() / "ringwatch-shared-limits";
  auto up_with = [&](int proxies, int per, lab::LabProxyKind kind) {
    lab::up({.dir = dir,
             .proxies = proxies,
             .backends = 1,
             .proxy_kind = kind,
             .pools_per_process = per});
  };
  EXPECT_THROW(up_with(1001, 50, lab::LabProxyKind::twemproxy), lab::LabError);
  EXPECT_THROW(up_with(1000, 1, lab::LabProxyKind::twemproxy), lab::LabError);  // 1000 processes
  EXPECT_THROW(up_with(10, 5, lab::LabProxyKind::memcached), lab::LabError);
  EXPECT_THROW(up_with(10, 101, lab::LabProxyKind::twemproxy), lab::LabError);
  EXPECT_FALSE(std::filesystem::exists(dir / "lab.json"));
}

}  // namespace
}  // namespace ringwatch::probes
