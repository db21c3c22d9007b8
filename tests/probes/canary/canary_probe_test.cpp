// The canary probe against a real lab: memcached backends behind nutcracker
// proxies on loopback, with the faults of `ringwatch lab fault`.

#include "probes/canary/canary_probe.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <ctime>
#include <set>
#include <sstream>
#include <thread>

#include "lib/mc/client.h"
#include "probes/canary/canary_plan.h"
#include "probes/registry.h"
#include "tests/support/memcached_process.h"
#include "tests/support/report_helpers.h"
#include "tests/support/scoped_lab.h"

namespace ringwatch::probes {
namespace {

using report::Finding;
using report::Report;
using report::Severity;
using report::Status;
using testing::describe;
using testing::figure;
using testing::run_until;
using testing::ScopedLab;

const Finding* find(const Report& report, const std::string& code) {
  return testing::find_finding(report, code);
}

bool has_finding_above_info(const Report& report) {
  for (const Finding& finding : report.findings) {
    if (finding.severity != Severity::info) return true;
  }
  return false;
}

TEST(CanaryProbeLabTest, HealthyLabIsOkForTwentyRounds) {
  ScopedLab lab;
  const spec::ClusterSpec spec = lab.spec();
  ProbeSet probes({"canary"});
  for (int round = 0; round < 20; ++round) {
    const Report report = probes.run_round(spec);
    ASSERT_EQ(report.status(), Status::ok) << "round " << round << "\n" << describe(report);
    ASSERT_FALSE(has_finding_above_info(report)) << describe(report);
    EXPECT_EQ(figure(report, "consistency_ratio"), 1.0);
    EXPECT_EQ(figure(report, "backends_routed/p3"), 3);
    // Coverage: 8 canaries on each of 3 backends, so that a round reads at
    // least 22 through each proxy (more than keys_per_backend, 2).
    EXPECT_EQ(figure(report, "keys"), 3.0 * 8);
    EXPECT_EQ(figure(report, "reads"), 3 * figure(report, "keys"));
  }
}

TEST(CanaryProbeLabTest, EjectIsRingDivergenceNamingProxyAndBackend) {
  ScopedLab lab;
  const spec::ClusterSpec spec = lab.spec();
  ProbeSet probes({"canary"});
  ASSERT_EQ(probes.run_round(spec).status(), Status::ok);  // learn on a healthy ring

  lab.inject({lab::FaultKind::eject, "p2", "b3", "", ""});
  const Report report = run_until(
      probes, spec, [](const Report& r) { return find(r, "ring_divergence"); },
      std::chrono::seconds(15));
  ASSERT_EQ(report.status(), Status::critical) << describe(report);
  const Finding* divergence = find(report, "ring_divergence");
  ASSERT_NE(divergence, nullptr) << describe(report);
  EXPECT_EQ(divergence->subject.proxy, "p2");
  EXPECT_EQ(divergence->subject.backend, "b3");
  EXPECT_NE(divergence->summary.find("proxy p2 routes 0 of"), std::string::npos)
      << divergence->summary;
  EXPECT_NE(divergence->summary.find("p1 and p3 route"), std::string::npos) << divergence->summary;
  EXPECT_EQ(report.checks[0].summary, "ring divergence: p2 is missing b3");
  EXPECT_EQ(figure(report, "backends_routed/p2"), 2);
  EXPECT_EQ(figure(report, "backends_routed/p1"), 3);
  for (const Finding& finding : report.findings) {
    if (finding.code == "ring_divergence") {
      EXPECT_EQ(finding.subject.proxy, "p2") << describe(report);
    }
  }
  ASSERT_NE(find(report, "inconsistent_reads"), nullptr) << describe(report);
  EXPECT_LT(figure(report, "consistency_ratio"), 1.0);

  lab.heal();
  const Report healed = run_until(
      probes, spec, [](const Report& r) { return r.status() == Status::ok; },
      std::chrono::seconds(15));
  EXPECT_EQ(healed.status(), Status::ok) << describe(healed);
}

TEST(CanaryProbeLabTest, HashMismatchIsRingDivergenceNamingTheProxy) {
  ScopedLab lab;
  const spec::ClusterSpec spec = lab.spec();
  ProbeSet probes({"canary"});
  ASSERT_EQ(probes.run_round(spec).status(), Status::ok);

  lab.inject({lab::FaultKind::hash, "p1", "", "", "murmur"});
  const Report report = probes.run_round(spec);
  ASSERT_EQ(report.status(), Status::critical) << describe(report);
  bool named = false;
  for (const Finding& finding : report.findings) {
    if (finding.code != "ring_divergence") continue;
    EXPECT_EQ(finding.subject.proxy, "p1") << describe(report);
    named = true;
  }
  EXPECT_TRUE(named) << describe(report);
  lab.heal();
  EXPECT_EQ(run_until(
                probes, spec, [](const Report& r) { return r.status() == Status::ok; },
                std::chrono::seconds(15))
                .status(),
            Status::ok);
}

TEST(CanaryProbeLabTest, KilledBackendIsBackendDownNotDivergence) {
  ScopedLab lab;
  const spec::ClusterSpec spec = lab.spec();
  ProbeSet probes({"canary"});
  ASSERT_EQ(probes.run_round(spec).status(), Status::ok);

  lab.inject({lab::FaultKind::kill, "", "b2", "", ""});
  for (int round = 0; round < 3; ++round) {
    const Report report = probes.run_round(spec);
    EXPECT_EQ(report.status(), Status::critical) << describe(report);
    const Finding* down = find(report, "backend_unreachable");
    ASSERT_NE(down, nullptr) << describe(report);
    EXPECT_EQ(down->subject.backend, "b2");
    EXPECT_NE(down->summary.find("backend b2 unreachable from the probe (connect refused)"),
              std::string::npos)
        << down->summary;
    EXPECT_EQ(find(report, "ring_divergence"), nullptr) << describe(report);
  }
  lab.heal();
  EXPECT_EQ(run_until(
                probes, spec, [](const Report& r) { return r.status() == Status::ok; },
                std::chrono::seconds(30))
                .status(),
            Status::ok);
}

TEST(CanaryProbeLabTest, StalledBackendTimesOutWithinTheDeadline) {
  ScopedLab lab;
  const spec::ClusterSpec spec = lab.spec();
  ProbeSet probes({"canary"});
  ASSERT_EQ(probes.run_round(spec).status(), Status::ok);

  lab.inject({lab::FaultKind::stall, "", "b1", "", ""});
  const auto start = std::chrono::steady_clock::now();
  const Report report = probes.run_round(spec);
  const auto elapsed = std::chrono::steady_clock::now() - start;
  // Behaviour bound, not a speed test: a stalled node costs at most a few deadlines.
  EXPECT_LT(elapsed, 6 * spec.timeouts.io) << describe(report);
  EXPECT_EQ(report.status(), Status::critical) << describe(report);
  const Finding* timeout = find(report, "backend_timeout");
  ASSERT_NE(timeout, nullptr) << describe(report);
  EXPECT_EQ(timeout->subject.backend, "b1");
  EXPECT_EQ(find(report, "ring_divergence"), nullptr) << describe(report);
  lab.heal();
  EXPECT_EQ(run_until(
                probes, spec, [](const Report& r) { return r.status() == Status::ok; },
                std::chrono::seconds(30))
                .status(),
            Status::ok);
}

TEST(CanaryProbeLabTest, RestartedBackendIsNoDivergenceOnceProxiesReconnect) {
  ScopedLab lab;
  const spec::ClusterSpec spec = lab.spec();
  ProbeSet probes({"canary"});
  ASSERT_EQ(probes.run_round(spec).status(), Status::ok);

  lab.inject({lab::FaultKind::restart, "", "b3", "", ""});
  const Report report = run_until(
      probes, spec, [](const Report& r) { return r.status() == Status::ok; },
      std::chrono::seconds(40));
  EXPECT_EQ(report.status(), Status::ok) << describe(report);
  EXPECT_EQ(find(report, "ring_divergence"), nullptr) << describe(report);
}

TEST(CanaryProbeLabTest, StoppedProxyIsUnreachableAndTheOthersAreStillChecked) {
  ScopedLab lab;
  const spec::ClusterSpec spec = lab.spec();
  ProbeSet probes({"canary"});
  ASSERT_EQ(probes.run_round(spec).status(), Status::ok);

  const int pid = lab.pid_of("p3");
  ASSERT_GT(pid, 0);
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  const Report report = run_until(
      probes, spec, [](const Report& r) { return find(r, "proxy_unreachable"); },
      std::chrono::seconds(5));
  EXPECT_EQ(report.status(), Status::critical) << describe(report);
  const Finding* unreachable = find(report, "proxy_unreachable");
  ASSERT_NE(unreachable, nullptr) << describe(report);
  EXPECT_EQ(unreachable->summary, "proxy p3 unreachable (connect refused)");
  EXPECT_EQ(find(report, "ring_divergence"), nullptr) << describe(report);
  EXPECT_EQ(find(report, "inconsistent_reads"), nullptr) << describe(report);
  // p1 and p2 still read each other's canaries.
  EXPECT_EQ(figure(report, "reads"), 2 * figure(report, "keys") * 2 / 3);
  EXPECT_EQ(figure(report, "consistency_ratio"), 1.0);
  lab.heal();
}

// ---- Keys: prefix only, expiry, user data untouched ----

// `lru_crawler metadump all` over a raw socket: memcached's own list of items.
std::vector<std::pair<std::string, long>> metadump(const net::Endpoint& endpoint) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(endpoint.port);
  ::inet_pton(AF_INET, endpoint.host.c_str(), &address.sin_addr);
  timeval timeout{2, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  std::vector<std::pair<std::string, long>> items;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    ::close(fd);
    return items;
  }
  const std::string request = "lru_crawler metadump all\r\n";
  (void)!::write(fd, request.data(), request.size());
  std::string data;
  char buffer[65536];
  while (data.find("END\r\n") == std::string::npos) {
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n <= 0) break;
    data.append(buffer, static_cast<std::size_t>(n));
  }
  ::close(fd);
  std::istringstream lines(data);
  std::string line;
  while (std::getline(lines, line)) {
    if (!line.starts_with("key=")) continue;
    const std::string key = line.substr(4, line.find(' ') - 4);
    const auto exp = line.find(" exp=");
    items.emplace_back(key, exp == std::string::npos ? 0 : std::stol(line.substr(exp + 5)));
  }
  return items;
}

std::size_t live_canaries(const spec::ClusterSpec& spec) {
  std::size_t live = 0;
  const long now = static_cast<long>(std::time(nullptr));
  for (const auto& backend : spec.backends) {
    for (const auto& [key, exp] : metadump(backend.endpoint())) {
      // metadump URL-encodes keys; the prefix "ringwatch:" becomes "ringwatch%3A".
      if (key.starts_with("ringwatch%3A") && (exp == -1 || exp > now)) ++live;
    }
  }
  return live;
}

TEST(CanaryProbeLabTest, CanariesExpireAndUserKeysAreUntouched) {
  ScopedLab lab;
  spec::ClusterSpec spec = lab.spec();
  spec.canary.ttl = std::chrono::seconds(3);

  // User data written directly to every backend, without the canary prefix.
  std::vector<mc::Item> user_items;
  for (int i = 0; i < 50; ++i)
    user_items.push_back({"user:" + std::to_string(i), "value-" + std::to_string(i * 7)});
  for (const auto& backend : spec.backends) {
    mc::Client client(backend.endpoint(), {});
    ASSERT_TRUE(client.set_many(user_items, std::chrono::seconds(0)).ok());
  }

  ProbeSet probes({"canary"});
  const auto learned_at = std::chrono::steady_clock::now();
  // memcached's clock ticks once a second: allow a tick either way.
  const auto expired_for_sure = spec.canary.ttl + std::chrono::milliseconds(2500);
  double keys = 0;
  int rounds = 0;
  // At least 200 rounds, and on until the learning pool has expired.
  while (rounds < 200 || std::chrono::steady_clock::now() < learned_at + expired_for_sure) {
    const Report report = probes.run_round(spec);
    ASSERT_EQ(report.status(), Status::ok) << "round " << rounds << "\n" << describe(report);
    keys = figure(report, "keys");
    ++rounds;
  }
  // What is live now is the learned pool the rounds rotate through: no round
  // writes a key name of its own.
  const std::size_t live = live_canaries(spec);
  EXPECT_LE(live, canary::kPoolRounds * static_cast<std::size_t>(keys));
  EXPECT_GT(live, 0u) << "metadump must see the live canaries, or this test proves nothing";
  std::this_thread::sleep_for(expired_for_sure);
  EXPECT_EQ(live_canaries(spec), 0u);

  for (const auto& backend : spec.backends) {
    mc::Client client(backend.endpoint(), {});
    std::vector<std::string> user_keys;
    for (const auto& item : user_items) user_keys.push_back(item.key);
    auto values = client.get_many(user_keys);
    ASSERT_TRUE(values.ok());
    ASSERT_EQ(values.value().size(), user_items.size()) << backend.name;
    for (const auto& item : user_items) EXPECT_EQ(values.value().at(item.key), item.value);
  }
}

// ---- Without a lab: memcached servers standing in for proxies ----

// A "proxy" that is a memcached itself routes every key to that memcached.
spec::Proxy proxy_at(const std::string& name, const net::Endpoint& endpoint) {
  spec::Proxy proxy;
  proxy.name = name;
  proxy.client = endpoint;
  return proxy;
}

spec::Backend backend_at(const std::string& name, const net::Endpoint& endpoint) {
  spec::Backend backend;
  backend.name = name;
  backend.address = *net::IpAddress::parse(endpoint.host);
  backend.port = endpoint.port;
  return backend;
}

TEST(CanaryProbeRoundContextTest, UnreachableProxiesAndBackendsAreToldToTheRound) {
  testing::MemcachedProcess b1;
  const net::Endpoint nowhere{"127.0.0.1", testing::free_port()};
  spec::ClusterSpec spec;
  spec.name = "context";
  spec.proxies = {proxy_at("p1", b1.endpoint()), proxy_at("p2", nowhere)};
  spec.backends = {backend_at("b1", b1.endpoint()), backend_at("b2", nowhere)};

  canary::CanaryProbe probe;
  RoundContext round;
  Report report;
  probe.run(spec, round, report);
  ASSERT_TRUE(round.canary.has_value()) << describe(report);
  EXPECT_EQ(round.canary->unreachable_proxies, std::set<std::string>{"p2"}) << describe(report);
  ASSERT_EQ(round.canary->unreachable_backends.size(), 1u) << describe(report);
  const auto& b2 = round.canary->unreachable_backends[0];
  EXPECT_EQ(b2.backend, "b2");
  ASSERT_LT(b2.finding, report.findings.size());
  EXPECT_EQ(report.findings[b2.finding].code, "backend_unreachable");
  EXPECT_EQ(report.findings[b2.finding].subject.backend, "b2");
  EXPECT_TRUE(round.canary->missing.empty()) << describe(report);
}

TEST(CanaryProbeRoundContextTest, AProxyMissingABackendIsToldToTheRound) {
  testing::MemcachedProcess a, b;
  spec::ClusterSpec spec;
  spec.name = "context";
  // p1 and p2 put every key on b1, p3 puts every key on b2: p3 is missing b1.
  spec.proxies = {proxy_at("p1", a.endpoint()), proxy_at("p2", a.endpoint()),
                  proxy_at("p3", b.endpoint())};
  spec.backends = {backend_at("b1", a.endpoint()), backend_at("b2", b.endpoint())};

  canary::CanaryProbe probe;
  RoundContext round;
  Report report;
  probe.run(spec, round, report);
  ASSERT_TRUE(round.canary.has_value());
  EXPECT_TRUE(round.canary->unreachable_proxies.empty()) << describe(report);
  ASSERT_EQ(round.canary->missing.size(), 1u) << describe(report);
  const auto& missing = round.canary->missing[0];
  EXPECT_EQ(missing.link, (Link{"p3", "b1"}));
  EXPECT_EQ(missing.routed, 0);
  EXPECT_GT(missing.canaries, 0);
  ASSERT_LT(missing.finding, report.findings.size());
  const Finding& finding = report.findings[missing.finding];
  EXPECT_EQ(finding.code, "ring_divergence");
  EXPECT_EQ(finding.subject, (report::Subject{.proxy = "p3", .backend = "b1"}));
  EXPECT_EQ(std::get<std::int64_t>(*testing::evidence(finding, "canaries_for_backend")),
            missing.canaries);
}

}  // namespace
}  // namespace ringwatch::probes
