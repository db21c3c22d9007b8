// The lab with memcached's built-in proxy (`ringwatch lab up --proxy-kind
// memcached`) against the real programs: up, every check OK on a healthy
// lab, each fault found by the probes with the right proxy and backend and
// without a false statement, heal, the rolling reload of a migration step,
// and down leaving nothing running.

#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "lib/mc/client.h"
#include "lib/spec/cluster_spec.h"
#include "probes/registry.h"
#include "tests/support/command.h"
#include "tests/support/report_helpers.h"
#include "tests/support/scoped_lab.h"
#include "tools/lab/lab.h"

namespace ringwatch::lab {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using report::Finding;
using report::Report;
using report::Status;
using testing::describe;
using testing::find_finding;
using testing::run_until;

std::string read_text(const fs::path& path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

class MemcachedProxyLab : public ::testing::Test {
 protected:
  testing::ScopedLab lab{3, 3, "mlab", LabProxyKind::memcached};
  const spec::ClusterSpec spec = lab.spec();

  // A fresh probe, like a one-shot `ringwatch probe` with every check.
  Report probe() const {
    probes::ProbeSet probes(probes::known_checks());
    return probes.run_round(spec);
  }
  // Rounds of one probe set until OK: heal has taken effect.
  void expect_heals() const {
    lab.heal();
    probes::ProbeSet probes(probes::known_checks());
    const Report healed = run_until(
        probes, spec, [](const Report& r) { return r.status() == Status::ok; }, 20s);
    EXPECT_EQ(healed.status(), Status::ok) << describe(healed);
  }
};

std::vector<const Finding*> with_code(const Report& report, const std::string& code) {
  std::vector<const Finding*> out;
  for (const Finding& finding : report.findings)
    if (finding.code == code) out.push_back(&finding);
  return out;
}

// No finding says that the proxies route around a backend or that no proxy
// routes to it: through memcached's proxy its keys still go to it and fail.
void expect_no_reroute_claimed(const Report& report) {
  for (const char* code : {"ring_divergence", "backend_not_routed", "proxy_backend_sets_differ"})
    EXPECT_EQ(find_finding(report, code), nullptr) << code << "\n" << describe(report);
  for (const auto& diagnosis : report.diagnoses)
    EXPECT_EQ(diagnosis.summary.find(" is missing "), std::string::npos) << diagnosis.summary;
}

TEST_F(MemcachedProxyLab, UpRunsTheBuiltInProxyWithARouteConfigOverEveryBackend) {
  const LabStatus status = lab::status(lab.dir());
  EXPECT_EQ(status.proxy_kind, LabProxyKind::memcached);
  EXPECT_NE(read_text(lab.dir() / "lab.json").find(R"("proxy_kind": "memcached")"),
            std::string::npos);
  ASSERT_EQ(spec.proxies.size(), 3u);
  for (const spec::Proxy& proxy : spec.proxies) {
    EXPECT_EQ(proxy.kind, spec::ProxyKind::memcached_proxy);
    EXPECT_FALSE(proxy.stats.has_value()) << "it answers stats on its client port";
    const std::string config = read_text(lab.dir() / "conf" / (proxy.name + ".lua"));
    for (const spec::Backend& backend : spec.backends) {
      EXPECT_NE(config.find("{ host = \"" + backend.address.to_string() + "\", port = " +
                            std::to_string(backend.port) + ", label = \"" + backend.name + "\" }"),
                std::string::npos)
          << config;
    }
    EXPECT_EQ(config.find("options"), std::string::npos) << "jump hash, routelib's default";
  }
  for (const ProcessStatus& process : status.processes) {
    EXPECT_TRUE(process.alive) << process.node;
    if (process.role == "proxy") {
      const std::string cmdline = read_text("/proc/" + std::to_string(process.pid) + "/cmdline");
      EXPECT_NE(cmdline.find("proxy_config="), std::string::npos) << cmdline;
      EXPECT_NE(cmdline.find("routelib.lua"), std::string::npos) << cmdline;
      EXPECT_TRUE(process.stats_endpoint.empty());
    }
  }
  // A key written through one proxy is read through every other.
  mc::Client writer(spec.proxies[0].client, spec.timeouts.deadlines());
  for (int i = 0; i < 20; ++i) {
    const std::string key = "ringwatch:mlab-" + std::to_string(i);
    ASSERT_TRUE(writer.set(key, "v" + std::to_string(i), 60s).ok());
    for (const spec::Proxy& proxy : spec.proxies) {
      mc::Client reader(proxy.client, spec.timeouts.deadlines());
      auto value = reader.get(key);
      ASSERT_TRUE(value.ok()) << value.error().message;
      EXPECT_EQ(value.value(), "v" + std::to_string(i)) << proxy.name;
    }
  }
}

TEST_F(MemcachedProxyLab, AHealthyLabPassesEveryCheck) {
  const Report report = probe();
  ASSERT_EQ(report.checks.size(), 3u);
  for (const auto& check : report.checks)
    EXPECT_EQ(check.status, Status::ok) << check.name << ": " << check.summary;
  EXPECT_EQ(report.checks[1].summary, "3 proxies connected to all 3 backends");
  EXPECT_EQ(testing::figure(report, "consistency_ratio"), 1.0);
  EXPECT_TRUE(report.diagnoses.empty()) << describe(report);
}

// A 3x3 lab's linear round keeps ceil(22 / 3) = 8 canaries per backend
// (README, "How the canary round works"): b3's 8 all fail through p2.
TEST_F(MemcachedProxyLab, EjectIsAProxyThatCannotReachTheBackendNotAReroute) {
  lab.inject({FaultKind::eject, "p2", "b3", "", ""});
  EXPECT_EQ(lab::status(lab.dir()).faults.front().find("eject: p2 sends b3 to its public address "
                                                       "127.200.0.13:"),
            0u);
  const Report report = probe();
  ASSERT_EQ(report.status(), Status::critical) << describe(report);
  EXPECT_EQ(report.summary_line(),
            "CRITICAL: p2 cannot reach b3 (SERVER_ERROR backend failure on 8 of 8 canaries)");

  const auto errors = with_code(report, "proxy_backend_errors");
  ASSERT_EQ(errors.size(), 1u) << describe(report);
  EXPECT_EQ(errors[0]->subject, (report::Subject{.proxy = "p2", .backend = "b3"}));
  EXPECT_EQ(errors[0]->summary,
            "proxy p2 cannot reach backend b3: SERVER_ERROR backend failure on 8 of 8 canaries "
            "(p1 and p3 read them)");

  const auto missing = with_code(report, "proxy_missing_backend");
  ASSERT_EQ(missing.size(), 1u) << describe(report);
  EXPECT_EQ(missing[0]->subject, (report::Subject{.proxy = "p2", .backend = "b3"}));
  EXPECT_EQ(missing[0]->summary,
            "proxy p2 is not connected to b3 (marked bad by 2 of 2 worker threads)");
  const auto* stats = testing::evidence(*missing[0], "proxy_stats");
  ASSERT_NE(stats, nullptr);
  ASSERT_TRUE(std::holds_alternative<std::vector<std::string>>(*stats));
  EXPECT_EQ(std::get<std::vector<std::string>>(*stats),
            std::vector<std::string>{"b3: bad_b3 2 (marked bad by 2 of 2 worker threads)"});

  ASSERT_EQ(report.diagnoses.size(), 1u) << describe(report);
  EXPECT_EQ(report.diagnoses[0].subject, (report::Subject{.proxy = "p2", .backend = "b3"}));
  EXPECT_EQ(report.diagnoses[0].summary,
            "p2 cannot reach b3 (canary: 8/8 failed with SERVER_ERROR backend failure; "
            "memcached-proxy: marked bad by 2 of 2 worker threads)");
  for (const Finding& finding : report.findings) {
    if (finding.severity != report::Severity::critical) continue;
    EXPECT_EQ(finding.subject.proxy, "p2") << finding.summary;
    EXPECT_NE(finding.subject.backend, "b1") << finding.summary;
    EXPECT_NE(finding.subject.backend, "b2") << finding.summary;
  }
  expect_no_reroute_claimed(report);
  expect_heals();
}

TEST_F(MemcachedProxyLab, TheIncidentTiesTheErrorsToThePublicAnswer) {
  lab.inject({FaultKind::eject, "p2", "b3", "", ""});
  lab.inject({FaultKind::dns, "", "b3", "127.200.0.13", ""});
  const Report report = probe();
  ASSERT_EQ(report.diagnoses.size(), 1u) << describe(report);
  EXPECT_EQ(report.diagnoses[0].summary,
            "p2 cannot reach b3 (canary: 8/8 failed with SERVER_ERROR backend failure; "
            "memcached-proxy: marked bad by 2 of 2 worker threads) — b3's name resolves to "
            "127.200.0.13, outside 127.10.0.0/16, at the vantage point used by p2");
  expect_heals();
}

TEST_F(MemcachedProxyLab, EveryProxyFailingABackendIsSaidOfEachProxyNotAsUnrouted) {
  probes::ProbeSet steady(probes::known_checks());
  ASSERT_EQ(steady.run_round(spec).status(), Status::ok);  // canaries placed on b2 too
  for (const char* proxy : {"p1", "p2", "p3"}) lab.inject({FaultKind::eject, proxy, "b2", "", ""});

  const Report report = steady.run_round(spec);
  const auto errors = with_code(report, "proxy_backend_errors");
  ASSERT_EQ(errors.size(), 3u) << describe(report);
  for (const Finding* finding : errors) {
    EXPECT_EQ(finding->subject.backend, "b2");
    // Every one of the canaries asked for: how many the probe asks a dead
    // backend's proxies for depends on what was learned before it died.
    EXPECT_TRUE(std::regex_search(
        finding->summary,
        std::regex(R"(cannot reach backend b2: SERVER_ERROR backend failure on (\d+) of \1 )"
                   R"(canaries \(the probe reaches b2\))")))
        << finding->summary;
  }
  EXPECT_EQ(find_finding(report, "backend_not_routed"), nullptr) << describe(report);
  EXPECT_EQ(find_finding(report, "backend_unreachable"), nullptr) << describe(report);

  // A fresh probe cannot place a canary on b2 at all, and says why it may be.
  const Report fresh = probe();
  const Finding* unrouted = find_finding(fresh, "backend_not_routed");
  ASSERT_NE(unrouted, nullptr) << describe(fresh);
  EXPECT_EQ(unrouted->subject.backend, "b2");
  EXPECT_NE(unrouted->summary.find("(configured, reachable from the probe); every reachable proxy "
                                   "answered errors for "),
            std::string::npos)
      << unrouted->summary;
  expect_heals();
}

TEST_F(MemcachedProxyLab, AConfigLackingABackendIsRingDivergenceOfThatProxy) {
  lab.inject({FaultKind::omit, "p2", "b1", "", ""});
  EXPECT_EQ(read_text(lab.dir() / "conf" / "p2.lua").find("label = \"b1\""), std::string::npos);
  const Report report = probe();
  ASSERT_EQ(report.status(), Status::critical) << describe(report);
  EXPECT_EQ(report.checks[0].summary.rfind("ring divergence: p2 is missing b1", 0), 0u)
      << report.checks[0].summary;
  const auto divergence = with_code(report, "ring_divergence");
  ASSERT_FALSE(divergence.empty()) << describe(report);
  for (const Finding* finding : divergence) EXPECT_EQ(finding->subject.proxy, "p2");
  EXPECT_EQ(divergence[0]->subject.backend, "b1");
  // Its stats cannot show a backend it does not have: the audit stays silent.
  EXPECT_EQ(find_finding(report, "proxy_missing_backend"), nullptr) << describe(report);
  expect_heals();
}

TEST_F(MemcachedProxyLab, EveryOtherDistributionMakesThatProxyDiverge) {
  for (const char* hash : {"ring", "ketama", "seeded"}) {
    lab.inject({FaultKind::hash, "p1", "", "", hash});
    EXPECT_NE(read_text(lab.dir() / "conf" / "p1.lua").find("options = "), std::string::npos);
    const Report report = probe();
    ASSERT_EQ(report.status(), Status::critical) << hash << "\n" << describe(report);
    const auto divergence = with_code(report, "ring_divergence");
    ASSERT_FALSE(divergence.empty()) << hash << "\n" << describe(report);
    for (const Finding* finding : divergence) EXPECT_EQ(finding->subject.proxy, "p1") << hash;
  }
  EXPECT_THROW(lab.inject({FaultKind::hash, "p1", "", "", "murmur"}), LabError);
  expect_heals();
}

TEST_F(MemcachedProxyLab, BackendFaultsAreTheBackendsAndEveryProxyCannotReachIt) {
  lab.inject({FaultKind::kill, "", "b2", "", ""});
  Report report = probe();
  const Finding* down = find_finding(report, "backend_unreachable");
  ASSERT_NE(down, nullptr) << describe(report);
  EXPECT_EQ(down->subject.backend, "b2");
  const auto missing = with_code(report, "proxy_missing_backend");
  ASSERT_EQ(missing.size(), 3u) << describe(report);
  for (const Finding* finding : missing) EXPECT_EQ(finding->subject.backend, "b2");
  expect_no_reroute_claimed(report);
  expect_heals();

  lab.inject({FaultKind::stall, "", "b1", "", ""});
  report = probe();
  const Finding* timeout = find_finding(report, "backend_timeout");
  ASSERT_NE(timeout, nullptr) << describe(report);
  EXPECT_EQ(timeout->subject.backend, "b1");
  expect_no_reroute_claimed(report);
  expect_heals();

  lab.inject({FaultKind::restart, "", "b3", "", ""});
  probes::ProbeSet probes(probes::known_checks());
  report = run_until(
      probes, spec, [](const Report& r) { return r.status() == Status::ok; }, 20s);
  EXPECT_EQ(report.status(), Status::ok) << describe(report);
}

TEST_F(MemcachedProxyLab, RollingTheProxiesReloadsThemWithANewBackend) {
  std::set<int> pids;
  for (const char* proxy : {"p1", "p2", "p3"}) pids.insert(lab.pid_of(proxy));
  EXPECT_EQ(add_backend(lab.dir()), "b4");
  restart_proxies(lab.dir());
  for (const char* proxy : {"p1", "p2", "p3"}) {
    EXPECT_TRUE(pids.contains(lab.pid_of(proxy))) << proxy << " was reloaded, not restarted";
    EXPECT_NE(read_text(lab.dir() / "conf" / (std::string(proxy) + ".lua")).find("label = \"b4\""),
              std::string::npos);
  }
  const spec::ClusterSpec four = lab.spec();
  ASSERT_EQ(four.backends.size(), 4u);
  probes::ProbeSet probes(probes::known_checks());
  const Report report = probes.run_round(four);
  EXPECT_EQ(report.status(), Status::ok) << describe(report);
  EXPECT_EQ(testing::figure(report, "backends_routed/p2"), 4);
}

// Every process whose command line names the lab's directory.
std::vector<std::string> processes_naming(const fs::path& dir) {
  std::vector<std::string> found;
  for (const auto& entry : fs::directory_iterator("/proc")) {
    const std::string pid = entry.path().filename().string();
    if (pid.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string cmdline = read_text(entry.path() / "cmdline");
    std::replace(cmdline.begin(), cmdline.end(), '\0', ' ');
    if (cmdline.find(dir.string()) != std::string::npos) found.push_back(pid + ": " + cmdline);
  }
  return found;
}

TEST_F(MemcachedProxyLab, DownLeavesNothingRunning) {
  lab.inject({FaultKind::eject, "p1", "b1", "", ""});
  const LabStatus before = lab::status(lab.dir());
  ASSERT_EQ(before.processes.size(), 7u);
  EXPECT_EQ(processes_naming(lab.dir()).size(), 4u) << "the proxies' and dnsmasq's argv name DIR";
  down(lab.dir());
  const LabStatus after = lab::status(lab.dir());
  EXPECT_FALSE(after.is_up);
  for (const ProcessStatus& process : after.processes) {
    EXPECT_FALSE(process.alive) << process.node;
    EXPECT_EQ(process.state, "dead") << process.node;
  }
  const auto left = processes_naming(lab.dir());
  EXPECT_TRUE(left.empty()) << left.front();
}

// `ringwatch <args>`: exit status and everything it printed.
std::pair<int, std::string> ringwatch(const std::string& args) {
  return testing::run_command(std::string(RINGWATCH_BINARY) + " " + args);
}

TEST(MemcachedProxyLabCli, UpStatusFaultAndDownByTheCommand) {
  char pattern[] = "/tmp/ringwatch-mlab-cli-XXXXXX";
  ASSERT_NE(::mkdtemp(pattern), nullptr);
  const fs::path dir = fs::path(pattern) / "lab";
  const std::string at = " --dir " + dir.string();

  const auto [bad, bad_output] = ringwatch("lab up" + at + " --proxy-kind envoy");
  EXPECT_EQ(bad, 3);
  EXPECT_NE(bad_output.find("up: unknown --proxy-kind 'envoy' (twemproxy or memcached)"),
            std::string::npos)
      << bad_output;

  const auto [up, up_output] = ringwatch("lab up" + at + " --proxy-kind memcached");
  ASSERT_EQ(up, 0) << up_output;
  EXPECT_NE(up_output.find("is up in " + dir.string() + " (memcached proxies)"), std::string::npos)
      << up_output;
  const auto [omit, omit_output] = ringwatch("lab fault" + at + " omit --proxy p3 --backend b2");
  EXPECT_EQ(omit, 0) << omit_output;
  const auto [status, status_output] = ringwatch("lab status" + at);
  EXPECT_EQ(status, 0) << status_output;
  EXPECT_NE(status_output.find(": up (memcached proxies)"), std::string::npos) << status_output;
  EXPECT_NE(status_output.find("omit: p3's config lacks b2"), std::string::npos) << status_output;
  const auto [roll, roll_output] = ringwatch("lab roll-proxies" + at);
  EXPECT_EQ(roll, 0) << roll_output;
  EXPECT_EQ(roll_output, "proxies reloaded: all\n");
  const auto [down_code, down_output] = ringwatch("lab down" + at);
  EXPECT_EQ(down_code, 0) << down_output;
  fs::remove_all(pattern);
}

}  // namespace
}  // namespace ringwatch::lab
