// What a first real fleet showed (issue 11, point 5), against the real
// programs: nutcracker configs written the way most nutcracker.yml files are
// (servers by IP, no names, port 11211), a cluster named differently from its
// twemproxy pool, and a spec whose backends have no DNS names.
//
// Backends on port 11211 need an address where 11211 is free: each test takes
// a 127.30.N/24 of its own (tests/support/nutcracker_fleet.h).

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "lib/util/text.h"
#include "probes/registry.h"
#include "tests/support/memcached_process.h"
#include "tests/support/nutcracker_fleet.h"
#include "tests/support/report_helpers.h"
#include "tests/support/scoped_lab.h"

namespace ringwatch::probes {
namespace {

using report::Report;
using report::Status;
using testing::describe;
using testing::NutcrackerFleet;

constexpr std::uint16_t kDefaultPort = 11211;
constexpr std::uint16_t kClientPort = 22121;
constexpr std::uint16_t kStatsPort = 22222;

const report::CheckResult* check_of(const Report& report, const std::string& name) {
  for (const auto& check : report.checks) {
    if (check.name == name) return &check;
  }
  return nullptr;
}

std::vector<const report::Finding*> findings_of(const Report& report, const std::string& code) {
  std::vector<const report::Finding*> found;
  for (const report::Finding& finding : report.findings) {
    if (finding.code == code) found.push_back(&finding);
  }
  return found;
}

std::size_t occurrences(const std::string& text, const std::string& part) {
  std::size_t count = 0;
  for (auto at = text.find(part); at != std::string::npos; at = text.find(part, at + 1)) ++count;
  return count;
}

spec::Backend backend(const std::string& name, const net::Endpoint& endpoint) {
  spec::Backend b;
  b.name = name;
  b.address = *net::IpAddress::parse(endpoint.host);
  b.port = endpoint.port;
  return b;
}

spec::Proxy twemproxy(const std::string& name, const std::string& address) {
  spec::Proxy p;
  p.name = name;
  p.kind = spec::ProxyKind::twemproxy;
  p.client = {address, kClientPort};
  p.stats = net::Endpoint{address, kStatsPort};
  return p;
}

// A nutcracker pool as operators write it: servers by address, no names.
std::string pool_yaml(const std::string& pool, const net::Endpoint& listen,
                      const std::vector<net::Endpoint>& servers) {
  std::string yaml = pool + ":\n  listen: " + listen.to_string() +
                     "\n  hash: fnv1a_64\n  distribution: ketama\n  auto_eject_hosts: true\n"
                     "  server_retry_timeout: 10000\n  server_failure_limit: 2\n  servers:\n";
  for (const auto& server : servers) yaml += "    - " + server.to_string() + ":1\n";
  return yaml;
}

// Three backends, two on port 11211 (keyed by host alone in nutcracker's
// stats) and one on another port (keyed by host:port); a proxy per address in
// `proxies`, each listing the backends `lists` gives it.
struct UnnamedFleet {
  std::string net =
      testing::free_loopback_net({1, 2, 11, 12, 13}, {kDefaultPort, kClientPort, kStatsPort});
  NutcrackerFleet fleet;
  std::vector<net::Endpoint> servers;
  spec::ClusterSpec spec;

  UnnamedFleet() {
    servers.push_back(fleet.add_backend(net + ".11", kDefaultPort));
    servers.push_back(fleet.add_backend(net + ".12", kDefaultPort));
    servers.push_back(fleet.add_backend(net + ".13", testing::free_port(net + ".13")));
    spec.name = "objects";
    spec.backends = {backend("mc-a", servers[0]), backend("mc-b", servers[1]),
                     backend("mc-c", servers[2])};
  }
  void add_proxy(const std::string& name, int host, const std::vector<net::Endpoint>& lists) {
    const std::string address = net + "." + std::to_string(host);
    spec.proxies.push_back(twemproxy(name, address));
    fleet.add_proxy(name, pool_yaml("objects", {address, kClientPort}, lists),
                    {address, kClientPort}, {address, kStatsPort});
  }
};

TEST(OperatorFleetTest, UnnamedServersOnPort11211AndOnAnotherPortAreMatchedAsNutcrackerKeysThem) {
  UnnamedFleet f;
  ASSERT_NE(f.servers[2].port, kDefaultPort);
  f.add_proxy("tw1", 1, f.servers);
  f.add_proxy("tw2", 2, f.servers);
  ProbeSet probes({"canary", "connections", "dns"});
  const Report report = probes.run_round(f.spec);
  EXPECT_EQ(report.status(), Status::ok) << describe(report);
  EXPECT_EQ(check_of(report, "connections")->summary, "2 proxies connected to all 3 backends")
      << describe(report);
  EXPECT_TRUE(findings_of(report, "proxy_config_drift").empty()) << describe(report);
  EXPECT_EQ(check_of(report, "dns")->summary, "not applicable: no backend has a dns_name");
  const auto matrix = findings_of(report, "connection_matrix");
  ASSERT_EQ(matrix.size(), 1u);
  const auto& cells = std::get<std::vector<std::string>>(*testing::evidence(*matrix[0], "matrix"));
  EXPECT_EQ(cells.front(), "tw1 -> mc-a: connected (proxy), unknown (backend)");
  EXPECT_EQ(cells.back(), "tw2 -> mc-c: connected (proxy), unknown (backend)");
}

TEST(OperatorFleetTest, AnUnnamedServerMissingFromOneProxyIsNamedThere) {
  UnnamedFleet f;
  f.add_proxy("tw1", 1, f.servers);
  f.add_proxy("tw2", 2, {f.servers[0], f.servers[2]});  // lacks mc-b, on port 11211
  ProbeSet probes({"connections"});
  const Report report = probes.run_round(f.spec);
  const auto drift = findings_of(report, "proxy_config_drift");
  ASSERT_EQ(drift.size(), 1u) << describe(report);
  EXPECT_EQ(drift[0]->summary, "server list of proxy tw2 differs from the spec: lacks mc-b");
  EXPECT_EQ(std::get<std::string>(*testing::evidence(*drift[0], "compared_by")),
            "names and addresses");
  const auto missing = findings_of(report, "proxy_missing_backend");
  ASSERT_EQ(missing.size(), 1u) << describe(report);
  EXPECT_EQ(missing[0]->summary, "proxy tw2 is not connected to mc-b (not in its server list)");
}

// A config may list a server by host name: nutcracker resolves it and keys its
// stats "host:port" (or "host" on 11211), which the audit matches against the
// backend's dns_name. localhost resolves to 127.0.0.1 on the test machines.
TEST(OperatorFleetTest, AServerGivenByHostNameIsMatchedByTheBackendsDnsName) {
  const std::string net = testing::free_loopback_net({1}, {kClientPort, kStatsPort});
  NutcrackerFleet fleet;
  const net::Endpoint memcached = fleet.add_backend("127.0.0.1", 0);
  const std::string address = net + ".1";
  fleet.add_proxy("tw1",
                  "objects:\n  listen: " + address + ":22121\n  servers:\n    - localhost:" +
                      std::to_string(memcached.port) + ":1\n",
                  {address, kClientPort}, {address, kStatsPort});
  spec::ClusterSpec spec;
  spec.name = "objects";
  spec.proxies.push_back(twemproxy("tw1", address));
  spec.backends.push_back(backend("mc-local", memcached));
  spec.backends[0].dns_name = "localhost";
  spec.backends[0].expected_cidr = *net::Cidr::parse("127.0.0.0/8");
  ProbeSet probes({"canary", "connections"});
  const Report report = probes.run_round(spec);
  EXPECT_EQ(report.status(), Status::ok) << describe(report);
  EXPECT_EQ(check_of(report, "connections")->summary, "1 proxy connected to all 1 backend")
      << describe(report);
}

// Two pools in every proxy's config, the cluster named after neither.
struct TwoPoolFleet {
  std::string net = testing::free_loopback_net(
      {1, 2, 3, 11, 12, 13}, {kDefaultPort, kClientPort, kClientPort + 1, kStatsPort});
  NutcrackerFleet fleet;
  spec::ClusterSpec spec;

  TwoPoolFleet() {
    std::vector<net::Endpoint> servers;
    for (int host : {11, 12, 13}) {
      servers.push_back(fleet.add_backend(net + "." + std::to_string(host), kDefaultPort));
      spec.backends.push_back(backend("mc-" + std::to_string(host), servers.back()));
    }
    spec.name = "eu1-sessions";
    for (int i = 1; i <= 3; ++i) {
      const std::string address = net + "." + std::to_string(i);
      spec.proxies.push_back(twemproxy("tw" + std::to_string(i), address));
      fleet.add_proxy(spec.proxies.back().name,
                      pool_yaml("objects", {address, kClientPort + 1}, servers) +
                          pool_yaml("sessions", {address, kClientPort}, servers),
                      {address, kClientPort}, {address, kStatsPort});
    }
  }
};

TEST(OperatorFleetTest,
     APoolNamedDifferentlyFromTheClusterIsTheHeadlineOnceThenThePoolFieldFixesIt) {
  TwoPoolFleet f;
  const std::string cause =
      "stats JSON has 2 pools (objects, sessions) and none is named \"eu1-sessions\"";
  ProbeSet probes({"canary", "connections", "dns"});
  Report report = probes.run_round(f.spec);
  EXPECT_EQ(report.status(), Status::unknown) << describe(report);
  EXPECT_EQ(report.summary_line(),
            "UNKNOWN: " + cause + " (proxies tw1, tw2 and tw3: set \"pool\" in the spec)")
      << describe(report);
  EXPECT_EQ(occurrences(report.summary_line(), cause), 1u);
  for (const auto& diagnosis : report.diagnoses) {
    EXPECT_EQ(occurrences(diagnosis.summary, "stats"), 0u) << diagnosis.summary;
  }
  const auto unreadable = findings_of(report, "proxy_stats_unreadable");
  ASSERT_EQ(unreadable.size(), 3u) << describe(report);
  EXPECT_EQ(unreadable[0]->summary, "stats of proxy tw1 unreadable (no such pool): " + cause);
  EXPECT_EQ(std::get<std::string>(*testing::evidence(*unreadable[0], "reason")), "no_pool");
  EXPECT_EQ(std::get<std::string>(*testing::evidence(*unreadable[0], "pool")), "eu1-sessions");
  EXPECT_EQ(check_of(report, "canary")->status, Status::ok) << describe(report);

  for (auto& proxy : f.spec.proxies) proxy.pool = "sessions";
  report = probes.run_round(f.spec);
  EXPECT_EQ(report.status(), Status::ok) << describe(report);
  EXPECT_EQ(check_of(report, "connections")->summary, "3 proxies connected to all 3 backends");
}

// The lab's spec without its DNS names: every check but DNS works as before.
spec::ClusterSpec without_dns(spec::ClusterSpec spec) {
  for (auto& b : spec.backends) {
    b.dns_name.reset();
    b.expected_cidr.reset();
  }
  for (auto& p : spec.proxies) p.dns_vantage.reset();
  spec.dns_servers.clear();
  return spec;
}

TEST(OperatorFleetTest, AnAddressOnlySpecIsHealthyAndStillCatchesTheEject) {
  testing::ScopedLab lab;
  const spec::ClusterSpec spec = without_dns(lab.spec());
  ProbeSet probes({"canary", "connections", "dns"});
  Report report = probes.run_round(spec);
  EXPECT_EQ(report.status(), Status::ok) << describe(report);
  EXPECT_EQ(report.summary_line(), "OK: " + check_of(report, "canary")->summary);
  EXPECT_EQ(check_of(report, "dns")->status, Status::ok);
  EXPECT_EQ(check_of(report, "dns")->summary, "not applicable: no backend has a dns_name");

  lab.inject({lab::FaultKind::eject, "p2", "b3", "", ""});
  report = probes.run_round(spec);
  EXPECT_EQ(report.status(), Status::critical) << describe(report);
  const auto divergence = findings_of(report, "ring_divergence");
  ASSERT_EQ(divergence.size(), 1u) << describe(report);
  EXPECT_EQ(divergence[0]->subject, (report::Subject{.proxy = "p2", .backend = "b3"}));
  const auto missing = findings_of(report, "proxy_missing_backend");
  ASSERT_EQ(missing.size(), 1u) << describe(report);
  EXPECT_EQ(missing[0]->subject, (report::Subject{.proxy = "p2", .backend = "b3"}));
  EXPECT_NE(report.summary_line().find("p2 is missing b3"), std::string::npos)
      << report.summary_line();
  EXPECT_EQ(check_of(report, "dns")->status, Status::ok);
}

}  // namespace
}  // namespace ringwatch::probes
