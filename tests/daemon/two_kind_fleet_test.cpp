// One ringwatchd over a fleet of two kinds of proxy: a twemproxy lab and a
// memcached-proxy lab, with a real Alertmanager. The incident on the
// memcached-proxy lab alerts for that cluster, its proxy and its backend
// only, and resolves after heal.

#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "tests/daemon/daemon_test_support.h"
#include "tests/daemon/running_daemon.h"
#include "tests/support/alertmanager_process.h"
#include "tests/support/scoped_lab.h"

namespace ringwatch::daemon {
namespace {

using ringwatch::testing::AlertmanagerAlert;
using ringwatch::testing::eventually;
using ringwatch::testing::http_request;
using ringwatch::testing::RunningDaemon;
using ringwatch::testing::ScopedLab;

std::string label(const AlertmanagerAlert& alert, const std::string& name) {
  const auto found = alert.labels.find(name);
  return found == alert.labels.end() ? std::string() : found->second;
}

std::string describe(const std::vector<AlertmanagerAlert>& alerts) {
  std::string text;
  for (const auto& alert : alerts) {
    text += label(alert, "alertname") + " cluster=" + label(alert, "cluster") +
            " proxy=" + label(alert, "proxy") + " backend=" + label(alert, "backend") + "\n";
  }
  return text.empty() ? "(no alert)" : text;
}

TEST(TwoKindFleetTest, AnEjectOnTheMemcachedProxyLabAlertsForThatClusterOnly) {
  ringwatch::testing::AlertmanagerProcess alertmanager;
  ScopedLab twemproxy(3, 3, "tlab");
  ScopedLab memcached(3, 3, "mlab", lab::LabProxyKind::memcached);
  AlertsConfig alerts;
  alerts.alertmanager = alertmanager.url();
  alerts.fire_after_rounds = 2;
  alerts.resolve_after_rounds = 2;
  RunningDaemon daemon(
      {lab::spec_path(twemproxy.dir()).string(), lab::spec_path(memcached.dir()).string()},
      std::chrono::seconds(1), alerts);

  // Both clusters probed and healthy, each with its own kind of proxy.
  for (const char* cluster : {"tlab", "mlab"}) {
    std::string body;
    ASSERT_TRUE(eventually([&] {
      body = http_request(daemon.port(), "GET", std::string("/v1/clusters/") + cluster).body;
      return body.find(R"("status": "OK")") != std::string::npos;
    })) << cluster
        << ": " << body;
  }
  EXPECT_TRUE(alertmanager.alerts("?active=true").empty())
      << describe(alertmanager.alerts("?active=true"));

  memcached.inject({lab::FaultKind::eject, "p2", "b3", "", ""});
  const std::set<std::string> expected = {"RingwatchProxyBackendErrors",
                                          "RingwatchProxyMissingBackend"};
  std::vector<AlertmanagerAlert> active;
  const bool fired = eventually(
      [&] {
        active = alertmanager.alerts("?active=true");
        std::set<std::string> names;
        for (const auto& alert : active) names.insert(label(alert, "alertname"));
        return std::includes(names.begin(), names.end(), expected.begin(), expected.end());
      },
      std::chrono::seconds(15));
  ASSERT_TRUE(fired) << describe(active);
  for (const auto& alert : active) {
    EXPECT_EQ(label(alert, "cluster"), "mlab") << describe(active);
    EXPECT_EQ(label(alert, "proxy"), "p2") << describe(active);
    // inconsistent_reads names the reading proxy only.
    const std::string backend = label(alert, "backend");
    EXPECT_TRUE(backend == "b3" || backend.empty()) << describe(active);
  }
  const std::string healthy = http_request(daemon.port(), "GET", "/v1/clusters/tlab").body;
  EXPECT_NE(healthy.find(R"("status": "OK")"), std::string::npos) << healthy;

  memcached.heal();
  EXPECT_TRUE(eventually([&] { return alertmanager.alerts("?active=true").empty(); },
                         std::chrono::seconds(15)))
      << describe(alertmanager.alerts("?active=true"));
}

}  // namespace
}  // namespace ringwatch::daemon
