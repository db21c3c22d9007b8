// The examples the package ships (tools/examples/, installed under
// share/ringwatch/examples and, for the fleet, as /etc/ringwatch/fleet.json)
// parse, and point only at documentation addresses (RFC 5737), so a daemon
// started on them unedited reaches no real host. They are run against a lab
// in tests/packaging/package_test.sh.

#include <gtest/gtest.h>

#include <string>

#include "daemon/fleet.h"
#include "lib/net/address.h"
#include "lib/spec/cluster_spec.h"
#include "migration/plan.h"

namespace ringwatch {
namespace {

const std::string kExamples = std::string(RINGWATCH_SOURCE_DIR) + "/tools/examples/";

bool documentation_address(const std::string& host) {
  const auto address = net::IpAddress::parse(host);
  if (!address) return false;
  for (const char* range : {"192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24"}) {
    if (net::Cidr::parse(range)->contains(*address)) return true;
  }
  return false;
}

void expect_documentation_addresses(const spec::ClusterSpec& cluster) {
  for (const auto& proxy : cluster.proxies) {
    EXPECT_TRUE(documentation_address(proxy.client.host)) << proxy.name << " " << proxy.client.host;
    if (proxy.stats) {
      EXPECT_TRUE(documentation_address(proxy.stats->host)) << proxy.name;
    }
  }
  for (const auto& backend : cluster.backends) {
    EXPECT_TRUE(documentation_address(backend.address.to_string())) << backend.name;
  }
}

TEST(Examples, FleetParsesAndItsClusterSaysItIsAnExample) {
  const daemon::FleetConfig fleet = daemon::load_fleet(kExamples + "fleet.json");
  ASSERT_EQ(fleet.clusters.size(), 1u);
  EXPECT_EQ(fleet.clusters[0].name(), "example-replace-me");
  EXPECT_EQ(fleet.listen, "127.0.0.1:9470");
  expect_documentation_addresses(fleet.clusters[0].spec);
}

TEST(Examples, TwemproxySpecParses) {
  const spec::ClusterSpec cluster = spec::load_cluster_spec(kExamples + "twemproxy-cluster.json");
  EXPECT_EQ(cluster.proxies.size(), 3u);
  EXPECT_EQ(cluster.backends.size(), 4u);
  for (const auto& proxy : cluster.proxies) EXPECT_EQ(proxy.kind, spec::ProxyKind::twemproxy);
  expect_documentation_addresses(cluster);
}

TEST(Examples, IpOnlyTwemproxySpecHasNoDnsNames) {
  const spec::ClusterSpec cluster = spec::load_cluster_spec(kExamples + "twemproxy-ip-only.json");
  EXPECT_EQ(cluster.backends.size(), 4u);
  EXPECT_EQ(spec::to_json(cluster).find("dns_name"), std::string::npos);
  expect_documentation_addresses(cluster);
}

TEST(Examples, ReplaceBackendPlanParsesForTheTwemproxyCluster) {
  const migration::Plan plan = migration::load_plan(kExamples + "replace-backend-plan.json",
                                                    {{"cluster", "sessions-eu1"},
                                                     {"spec", kExamples + "twemproxy-cluster.json"},
                                                     {"deploy", "/usr/local/bin/deploy-cache"},
                                                     {"new", "mc-5"},
                                                     {"old", "mc-1"}});
  ASSERT_EQ(plan.clusters.size(), 1u);
  std::vector<std::string> steps;
  for (const auto& step : plan.clusters[0].steps) steps.push_back(step.name);
  EXPECT_EQ(steps,
            (std::vector<std::string>{"healthy-before", "add-mc-5", "roll-proxies-onto-mc-5",
                                      "drain-mc-1", "roll-proxies-off-mc-1", "remove-mc-1"}));
}

}  // namespace
}  // namespace ringwatch
