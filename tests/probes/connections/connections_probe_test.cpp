// The connection audit against a real lab: memcached backends behind
// nutcracker proxies on loopback. Every round runs the canary first, as the
// registry does, so the audit sees the canary's traffic.

#include "probes/connections/connections_probe.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <map>
#include <set>

#include <chrono>
#include <ctime>
#include <sstream>
#include <string>
#include <thread>
#include <variant>

#include "lib/mc/client.h"
#include "probes/registry.h"
#include "tests/support/memcached_process.h"
#include "tests/support/report_helpers.h"
#include "tests/support/scoped_lab.h"

namespace ringwatch::probes {
namespace {

using namespace std::chrono_literals;
using report::Finding;
using report::Report;
using report::Severity;
using report::Status;
using testing::describe;
using testing::evidence;
using testing::figure;
using testing::run_until;
using testing::ScopedLab;

const report::CheckResult* check_of(const Report& report) {
  for (const auto& check : report.checks) {
    if (check.name == "connections") return &check;
  }
  return nullptr;
}

std::vector<const Finding*> findings_of(const Report& report, const std::string& code) {
  std::vector<const Finding*> found;
  for (const Finding& finding : report.findings) {
    if (finding.check == "connections" && finding.code == code) found.push_back(&finding);
  }
  return found;
}

std::vector<std::string> matrix_of(const Report& report) {
  const auto matrix = findings_of(report, "connection_matrix");
  if (matrix.size() != 1) return {};
  const auto* value = evidence(*matrix[0], "matrix");
  return value ? std::get<std::vector<std::string>>(*value) : std::vector<std::string>{};
}

bool connections_ok(const Report& report) {
  const auto* check = check_of(report);
  return check != nullptr && check->status == Status::ok &&
         check->summary == "3 proxies connected to all 3 backends";
}

// SIGSTOPs a process for the scope; SIGCONT on the way out whatever happens.
class Stopped {
 public:
  explicit Stopped(int pid) : pid_(pid) { ::kill(pid_, SIGSTOP); }
  ~Stopped() { ::kill(pid_, SIGCONT); }
  Stopped(const Stopped&) = delete;
  Stopped& operator=(const Stopped&) = delete;

 private:
  int pid_;
};

TEST(ConnectionsProbeLabTest, HealthyLabIsOkAndSaysTheBackendSideCannotAttribute) {
  ScopedLab lab;
  const spec::ClusterSpec spec = lab.spec();
  ProbeSet probes({"canary", "connections"});
  for (int round = 0; round < 5; ++round) {
    const Report report = probes.run_round(spec);
    ASSERT_TRUE(connections_ok(report)) << "round " << round << "\n" << describe(report);
    for (const Finding& finding : report.findings) {
      if (finding.check == "connections") {
        EXPECT_EQ(finding.severity, Severity::info) << describe(report);
      }
    }
    for (const char* proxy : {"p1", "p2", "p3"}) {
      EXPECT_EQ(figure(report, std::string("proxy_backends_connected/") + proxy), 3) << proxy;
      const double age = figure(report, std::string("proxy_stats_age_s/") + proxy);
      EXPECT_GE(age, 0) << proxy;
      EXPECT_LT(age, 3) << proxy;
    }
    const auto matrix = matrix_of(report);
    ASSERT_EQ(matrix.size(), 9u) << describe(report);
    EXPECT_EQ(matrix[0], "p1 -> b1: connected (proxy), unknown (backend)");
    // Three proxies and the canary's connection on every backend, all from
    // 127.0.0.1: counted, never named.
    const auto* peers = evidence(*findings_of(report, "connection_matrix")[0], "backend_peers");
    ASSERT_NE(peers, nullptr);
    EXPECT_EQ(std::get<std::vector<std::string>>(*peers)[0],
              "b1: 4 clients: 1 this probe's canary, 3 cannot attribute (127.0.0.1 x3)");
    EXPECT_EQ(figure(report, "backend_clients/b1"), 4);
    EXPECT_TRUE(findings_of(report, "unknown_peer").empty());
  }
}

TEST(ConnectionsProbeLabTest, EjectedBackendIsCriticalNamingProxyAndBackendThenHeals) {
  ScopedLab lab;
  const spec::ClusterSpec spec = lab.spec();
  ProbeSet probes({"canary", "connections"});
  ASSERT_TRUE(connections_ok(probes.run_round(spec)));

  lab.inject({lab::FaultKind::eject, "p2", "b3", "", ""});
  Report report = probes.run_round(spec);
  const auto* check = check_of(report);
  ASSERT_NE(check, nullptr);
  EXPECT_EQ(check->status, Status::critical) << describe(report);
  const auto missing = findings_of(report, "proxy_missing_backend");
  ASSERT_EQ(missing.size(), 1u) << describe(report);
  EXPECT_EQ(missing[0]->severity, Severity::critical);
  EXPECT_EQ(missing[0]->subject.proxy, "p2");
  EXPECT_EQ(missing[0]->subject.backend, "b3");
  // "proxy p2 is not connected to b3 (ejected at 10:50:08 UTC, 1 error)"
  EXPECT_EQ(missing[0]->summary.rfind("proxy p2 is not connected to b3 (ejected at ", 0), 0u)
      << missing[0]->summary;
  EXPECT_NE(missing[0]->summary.find(" UTC, "), std::string::npos) << missing[0]->summary;
  EXPECT_NE(missing[0]->summary.find(" error"), std::string::npos) << missing[0]->summary;
  EXPECT_EQ(std::get<std::string>(*evidence(*missing[0], "proxy_side")), "ejected");
  EXPECT_EQ(check->summary.rfind("proxy p2 is not connected to b3", 0), 0u) << check->summary;

  const auto sets = findings_of(report, "proxy_backend_sets_differ");
  ASSERT_EQ(sets.size(), 1u) << describe(report);
  EXPECT_EQ(sets[0]->summary,
            "proxies disagree on the backend set: p2 uses b1, b2; p1 and p3 use b1, b2, b3");
  EXPECT_EQ(figure(report, "proxy_backends_connected/p2"), 2);
  EXPECT_EQ(figure(report, "proxy_backends_connected/p1"), 3);
  const auto matrix = matrix_of(report);
  ASSERT_EQ(matrix.size(), 9u);
  EXPECT_EQ(matrix[5], "p2 -> b3: ejected (proxy), unknown (backend)");
  // twemproxy stats show names, not addresses: the moved address is no drift.
  EXPECT_TRUE(findings_of(report, "proxy_config_drift").empty()) << describe(report);

  lab.heal();
  report = run_until(probes, spec, connections_ok, 20s);
  EXPECT_TRUE(connections_ok(report)) << describe(report);
}

TEST(ConnectionsProbeLabTest, StoppedOrRefusingStatsAreUnknownWithoutHanging) {
  ScopedLab lab;
  spec::ClusterSpec spec = lab.spec();
  ProbeSet probes({"canary", "connections"});
  ASSERT_TRUE(connections_ok(probes.run_round(spec)));
  {
    Stopped stopped(lab.pid_of("p2"));
    const auto start = std::chrono::steady_clock::now();
    const Report report = probes.run_round(spec);
    const auto* check = check_of(report);
    ASSERT_NE(check, nullptr);
    EXPECT_EQ(check->status, Status::unknown) << describe(report);
    // The canary met p2's client port stalled first; the audit does not
    // wait on the same stopped process again this round (issue 12, point 3).
    EXPECT_EQ(check->summary, "p2's stats unreadable (not checked)");
    // The stats read waits at most connect + io (250 + 1000 ms in the lab).
    EXPECT_LT(check->duration_ms, 2000) << describe(report);
    EXPECT_LT(std::chrono::steady_clock::now() - start, 10s);
    const auto unreadable = findings_of(report, "proxy_stats_unreadable");
    ASSERT_EQ(unreadable.size(), 1u) << describe(report);
    EXPECT_EQ(unreadable[0]->subject.proxy, "p2");
    EXPECT_EQ(unreadable[0]->severity, Severity::unknown);
    EXPECT_EQ(std::get<std::string>(*evidence(*unreadable[0], "reason")), "not_checked");
    EXPECT_EQ(figure(report, "proxy_backends_connected/p1"), 3);
    EXPECT_EQ(figure(report, "proxy_backends_connected/p2"), -1) << "no figure without stats";
    EXPECT_TRUE(findings_of(report, "proxy_missing_backend").empty()) << describe(report);
  }

  spec.proxies[2].stats->port = testing::free_port(spec.proxies[2].stats->host);
  const Report report = run_until(
      probes, spec,
      [](const Report& r) { return check_of(r) && check_of(r)->status != Status::ok; }, 10s);
  const auto unreadable = findings_of(report, "proxy_stats_unreadable");
  ASSERT_EQ(unreadable.size(), 1u) << describe(report);
  EXPECT_EQ(unreadable[0]->subject.proxy, "p3");
  EXPECT_EQ(std::get<std::string>(*evidence(*unreadable[0], "reason")), "refused");
  EXPECT_EQ(unreadable[0]->summary.rfind("stats of proxy p3 unreadable (refused): stats: ", 0), 0u)
      << unreadable[0]->summary;
  EXPECT_EQ(check_of(report)->status, Status::unknown) << describe(report);
}

TEST(ConnectionsProbeLabTest, PeersFromNoProxysSourceAddressAreUnknown) {
  ScopedLab lab;
  spec::ClusterSpec spec = lab.spec();
  // Claim every proxy connects from its own listen address; in the loopback
  // lab they really connect from 127.0.0.1.
  for (auto& proxy : spec.proxies) {
    proxy.source_addresses = {*net::IpAddress::parse(proxy.client.host)};
  }
  ProbeSet probes({"canary", "connections"});
  const Report report = probes.run_round(spec);
  const auto* check = check_of(report);
  ASSERT_NE(check, nullptr);
  EXPECT_EQ(check->status, Status::warning) << describe(report);
  const auto unknown = findings_of(report, "unknown_peer");
  ASSERT_EQ(unknown.size(), 3u) << describe(report);
  EXPECT_EQ(unknown[0]->subject.backend, "b1");
  EXPECT_EQ(unknown[0]->summary,
            "backend b1 has 3 connections from 127.0.0.1 x3, no proxy's source address");
  EXPECT_EQ(std::get<std::vector<std::string>>(*evidence(*unknown[0], "peers")).size(), 3u);
  // The backend side can now attribute, and sees none of them.
  const auto matrix = matrix_of(report);
  ASSERT_EQ(matrix.size(), 9u);
  EXPECT_EQ(matrix[0], "p1 -> b1: connected (proxy), missing (backend)");
  const auto contradictions = findings_of(report, "backend_missing_peer");
  ASSERT_EQ(contradictions.size(), 9u) << describe(report);
  EXPECT_EQ(contradictions[0]->severity, Severity::warning);
  EXPECT_EQ(contradictions[0]->summary,
            "backend b1 has no connection from proxy p1's source addresses (127.10.1.1), "
            "although p1 reports 1 connection to it (wrong source_addresses in the spec, or NAT?)");
  EXPECT_TRUE(findings_of(report, "proxy_missing_backend").empty()) << describe(report);
}

TEST(ConnectionsProbeLabTest, ServerNamesNotInTheSpecAreConfigDrift) {
  ScopedLab lab;
  spec::ClusterSpec spec = lab.spec();
  spec.backends[2].name = "b9";  // the proxies call it b3
  ProbeSet probes({"connections"});
  const Report report = probes.run_round(spec);
  const auto drift = findings_of(report, "proxy_config_drift");
  ASSERT_EQ(drift.size(), 3u) << describe(report);
  EXPECT_EQ(drift[0]->summary,
            "server list of proxy p1 differs from the spec: has b3 (not in the spec); lacks b9");
  EXPECT_EQ(std::get<std::string>(*evidence(*drift[0], "compared_by")),
            "names only (the proxy does not report addresses)");
  const auto missing = findings_of(report, "proxy_missing_backend");
  ASSERT_EQ(missing.size(), 3u) << describe(report);
  EXPECT_EQ(missing[0]->summary, "proxy p1 is not connected to b9 (not in its server list)");
  EXPECT_EQ(check_of(report)->status, Status::critical);
}

TEST(ConnectionsProbeLabTest, WithoutTheCanaryIdleBackendsAreUndecidedNotMissing) {
  ScopedLab lab;
  const spec::ClusterSpec spec = lab.spec();
  ProbeSet probes({"connections"});
  const Report report = probes.run_round(spec);
  const auto* check = check_of(report);
  ASSERT_NE(check, nullptr);
  EXPECT_EQ(check->status, Status::ok) << describe(report);
  // A fresh lab: nutcracker connects lazily and nothing has been sent yet
  // (the lab's own readiness checks only connect to the proxies).
  EXPECT_EQ(check->summary,
            "0 of 3 proxies connected to all 3 backends; the others have sent some backends no "
            "traffic yet (idle)")
      << describe(report);
  EXPECT_EQ(findings_of(report, "backend_idle").size(), 3u) << describe(report);
  EXPECT_TRUE(findings_of(report, "proxy_missing_backend").empty()) << describe(report);
}

// ---- Without a lab: a fake mcrouter in front of real memcached backends ----

// Answers memcached-protocol stats commands from a table, one command per
// connection, like a tiny mcrouter. The mcrouter format comes from its source
// (see probes/connections/README.md); this runs it through the whole probe.
class FakeStatsServer {
 public:
  explicit FakeStatsServer(std::map<std::string, std::string> replies)
      : replies_(std::move(replies)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address);
    ::listen(fd_, 16);
    socklen_t length = sizeof address;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length);
    endpoint_ = net::Endpoint{"127.0.0.1", ntohs(address.sin_port)};
    thread_ = std::thread([this] { serve(); });
  }
  ~FakeStatsServer() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }
  FakeStatsServer(const FakeStatsServer&) = delete;
  FakeStatsServer& operator=(const FakeStatsServer&) = delete;
  const net::Endpoint& endpoint() const { return endpoint_; }

 private:
  void serve() {
    while (!stop_) {
      pollfd pfd{fd_, POLLIN, 0};
      if (::poll(&pfd, 1, 50) <= 0) continue;
      const int client = ::accept(fd_, nullptr, nullptr);
      if (client < 0) continue;
      std::string request;
      char buffer[512];
      while (request.find("\r\n") == std::string::npos) {
        pollfd cfd{client, POLLIN, 0};
        if (::poll(&cfd, 1, 1000) <= 0) break;
        const ssize_t got = ::recv(client, buffer, sizeof buffer, 0);
        if (got <= 0) break;
        request.append(buffer, static_cast<std::size_t>(got));
      }
      const auto found = replies_.find(request.substr(0, request.find("\r\n")));
      const std::string reply = found == replies_.end() ? "ERROR\r\n" : found->second;
      ::send(client, reply.data(), reply.size(), MSG_NOSIGNAL);
      ::close(client);
    }
  }

  std::map<std::string, std::string> replies_;
  int fd_ = -1;
  net::Endpoint endpoint_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

struct FakeCluster {
  testing::MemcachedProcess b1, b2, b3;
  spec::ClusterSpec spec(const net::Endpoint& mcrouter) const {
    spec::ClusterSpec cluster;
    cluster.name = "fake";
    int i = 1;
    for (const auto* backend : {&b1, &b2, &b3}) {
      spec::Backend entry;
      entry.name = "b" + std::to_string(i++);
      entry.address = *net::IpAddress::parse(backend->endpoint().host);
      entry.port = backend->endpoint().port;
      cluster.backends.push_back(entry);
    }
    spec::Proxy proxy;
    proxy.name = "m1";
    proxy.kind = spec::ProxyKind::mcrouter;
    proxy.client = mcrouter;
    cluster.proxies.push_back(proxy);
    return cluster;
  }
};

std::string destination(const net::Endpoint& endpoint) {
  return endpoint.to_string() + ":ascii:plain:notcompressed-1000";
}

std::map<std::string, std::string> mcrouter_replies(const FakeCluster& cluster,
                                                    const std::string& third_line,
                                                    const std::string& suspect) {
  return {
      {"stats", "STAT version 41.0.0 mcrouter\r\nSTAT time " + std::to_string(std::time(nullptr)) +
                    "\r\nSTAT uptime 60\r\nEND\r\n"},
      {"stats servers",
       "STAT " + destination(cluster.b1.endpoint()) +
           " avg_latency_us:212.500 pending_reqs:0 inflight_reqs:0 up:4; ok:120 found:40\r\n"
           "STAT " +
           destination(cluster.b2.endpoint()) +
           " avg_latency_us:198.250 pending_reqs:0 inflight_reqs:0 up:4; ok:118 notfound:77\r\n" +
           third_line + "END\r\n"},
      {"stats suspect_servers", suspect + "END\r\n"},
  };
}

Report run_connections(const spec::ClusterSpec& spec, RoundContext round = {}) {
  Report report;
  connections::ConnectionsProbe probe;
  probe.run(spec, round, report);
  return report;
}

TEST(ConnectionsProbeFakeMcrouterTest, HealthyMcrouterIsOk) {
  FakeCluster cluster;
  FakeStatsServer mcrouter(mcrouter_replies(
      cluster,
      "STAT " + destination(cluster.b3.endpoint()) +
          " avg_latency_us:230.000 pending_reqs:0 inflight_reqs:1 up:3 closed:1; ok:121\r\n",
      ""));
  const Report report = run_connections(cluster.spec(mcrouter.endpoint()));
  const auto* check = check_of(report);
  ASSERT_NE(check, nullptr);
  EXPECT_EQ(check->status, Status::ok) << describe(report);
  EXPECT_EQ(check->summary, "1 proxy connected to all 3 backends");
  EXPECT_EQ(figure(report, "proxy_backends_connected/m1"), 3);
  const double age = figure(report, "proxy_stats_age_s/m1");
  EXPECT_GE(age, 0);
  EXPECT_LT(age, 3);
}

TEST(ConnectionsProbeFakeMcrouterTest, TkoServerIsEjected) {
  FakeCluster cluster;
  const std::string b3 = cluster.b3.endpoint().to_string();
  FakeStatsServer mcrouter(mcrouter_replies(
      cluster,
      "STAT " + destination(cluster.b3.endpoint()) +
          " avg_latency_us:0.000 pending_reqs:0 inflight_reqs:0 hard_tko;  down:4; "
          "connect_error:12 tko:30\r\n",
      "STAT " + b3 + " status:tko num_failures:3\r\n"));
  const Report report = run_connections(cluster.spec(mcrouter.endpoint()));
  EXPECT_EQ(check_of(report)->status, Status::critical) << describe(report);
  const auto missing = findings_of(report, "proxy_missing_backend");
  ASSERT_EQ(missing.size(), 1u) << describe(report);
  EXPECT_EQ(missing[0]->summary, "proxy m1 is not connected to b3 (ejected, 42 errors)");
  EXPECT_TRUE(findings_of(report, "proxy_config_drift").empty()) << describe(report);
}

TEST(ConnectionsProbeFakeMcrouterTest, ServerAtAnotherAddressIsDriftAndMissing) {
  FakeCluster cluster;
  const net::Endpoint public_b3{"127.200.0.13", cluster.b3.endpoint().port};
  FakeStatsServer mcrouter(mcrouter_replies(
      cluster,
      "STAT " + destination(public_b3) +
          " avg_latency_us:0.000 pending_reqs:0 inflight_reqs:0 down:4; connect_error:12\r\n",
      ""));
  const Report report = run_connections(cluster.spec(mcrouter.endpoint()));
  EXPECT_EQ(check_of(report)->status, Status::critical) << describe(report);
  const auto drift = findings_of(report, "proxy_config_drift");
  ASSERT_EQ(drift.size(), 1u) << describe(report);
  EXPECT_EQ(drift[0]->summary, "server list of proxy m1 differs from the spec: has " +
                                   destination(public_b3) + " (not in the spec); lacks b3");
  EXPECT_EQ(std::get<std::string>(*evidence(*drift[0], "compared_by")), "names and addresses");
  const auto missing = findings_of(report, "proxy_missing_backend");
  ASSERT_EQ(missing.size(), 1u) << describe(report);
  EXPECT_EQ(missing[0]->summary, "proxy m1 is not connected to b3 (not in its server list)");
}

TEST(ConnectionsProbeFakeMcrouterTest, GarbledStatsAreUnknownNotACrash) {
  FakeCluster cluster;
  auto replies = mcrouter_replies(cluster, "", "");
  replies["stats servers"] = "STAT " + destination(cluster.b1.endpoint()) + " up:lots\r\nEND\r\n";
  FakeStatsServer mcrouter(replies);
  const Report report = run_connections(cluster.spec(mcrouter.endpoint()));
  EXPECT_EQ(check_of(report)->status, Status::unknown) << describe(report);
  const auto unreadable = findings_of(report, "proxy_stats_unreadable");
  ASSERT_EQ(unreadable.size(), 1u);
  EXPECT_EQ(std::get<std::string>(*evidence(*unreadable[0], "reason")), "malformed");
  EXPECT_NE(unreadable[0]->summary.find("bad count in \"up:lots\""), std::string::npos)
      << unreadable[0]->summary;
}

// ---- What the canary told this round, through the round context ----

// b3 open on m1 with no connection and no reply counted: idle, unless the
// canary sent m1 traffic earlier in the round.
std::map<std::string, std::string> mcrouter_with_b3_unused(const FakeCluster& cluster) {
  return mcrouter_replies(cluster,
                          "STAT " + destination(cluster.b3.endpoint()) +
                              " avg_latency_us:0.000 pending_reqs:0 inflight_reqs:0 closed:1\r\n",
                          "");
}

TEST(ConnectionsProbeRoundContextTest, WithoutTheCanaryAnUnusedBackendIsIdle) {
  FakeCluster cluster;
  FakeStatsServer mcrouter(mcrouter_with_b3_unused(cluster));
  const Report report = run_connections(cluster.spec(mcrouter.endpoint()));
  EXPECT_EQ(check_of(report)->status, Status::ok) << describe(report);
  const auto idle = findings_of(report, "backend_idle");
  ASSERT_EQ(idle.size(), 1u) << describe(report);
  EXPECT_EQ(std::get<std::vector<std::string>>(*evidence(*idle[0], "backends")),
            std::vector<std::string>{"b3"});
  EXPECT_TRUE(findings_of(report, "proxy_missing_backend").empty()) << describe(report);
}

TEST(ConnectionsProbeRoundContextTest, AfterTheCanarysTrafficAnUnusedBackendIsMissing) {
  FakeCluster cluster;
  FakeStatsServer mcrouter(mcrouter_with_b3_unused(cluster));
  RoundContext round;
  round.canary.emplace();  // the canary ran and reached every proxy
  Report report;
  connections::ConnectionsProbe probe;
  probe.run(cluster.spec(mcrouter.endpoint()), round, report);

  EXPECT_EQ(check_of(report)->status, Status::critical) << describe(report);
  const auto missing = findings_of(report, "proxy_missing_backend");
  ASSERT_EQ(missing.size(), 1u) << describe(report);
  EXPECT_EQ(missing[0]->summary,
            "proxy m1 is not connected to b3 (0 connections and no requests after the canary's "
            "traffic)");
  EXPECT_TRUE(findings_of(report, "backend_idle").empty()) << describe(report);

  // And the audit tells the rest of the round what it found, citing its finding.
  ASSERT_TRUE(round.connections.has_value());
  ASSERT_EQ(round.connections->missing.size(), 1u);
  const auto& fact = round.connections->missing[0];
  EXPECT_EQ(fact.link, (Link{"m1", "b3"}));
  EXPECT_EQ(fact.why, "0 connections and no requests after the canary's traffic");
  ASSERT_LT(fact.finding, report.findings.size());
  EXPECT_EQ(&report.findings[fact.finding], missing[0]);
  EXPECT_TRUE(round.connections->peers_missing.empty());
}

TEST(ConnectionsProbeRoundContextTest, AProxyTheCanaryCouldNotReachGotNoTrafficSoStaysIdle) {
  FakeCluster cluster;
  FakeStatsServer mcrouter(mcrouter_with_b3_unused(cluster));
  RoundContext round;
  round.canary.emplace().unreachable_proxies.insert("m1");
  const Report report = run_connections(cluster.spec(mcrouter.endpoint()), round);
  EXPECT_EQ(check_of(report)->status, Status::ok) << describe(report);
  EXPECT_EQ(findings_of(report, "backend_idle").size(), 1u) << describe(report);
  EXPECT_TRUE(findings_of(report, "proxy_missing_backend").empty()) << describe(report);
}

TEST(ConnectionsProbeRoundContextTest, AfterTheCanaryOnePeerAtTheProbesAddressIsTheCanary) {
  FakeCluster cluster;
  FakeStatsServer mcrouter(mcrouter_with_b3_unused(cluster));
  // The canary's connection stays open across rounds; here, one of ours.
  mc::Client canary_connection(cluster.b1.endpoint(), {});
  ASSERT_TRUE(canary_connection.get_many({"any"}).ok());

  const auto peers_line = [](const Report& report) {
    const auto matrix = findings_of(report, "connection_matrix");
    return matrix.size() == 1
               ? std::get<std::vector<std::string>>(*evidence(*matrix[0], "backend_peers"))[0]
               : std::string();
  };
  EXPECT_EQ(peers_line(run_connections(cluster.spec(mcrouter.endpoint()))),
            "b1: 1 client: 1 cannot attribute (127.0.0.1 x1)");
  RoundContext round;
  round.canary.emplace();
  EXPECT_EQ(peers_line(run_connections(cluster.spec(mcrouter.endpoint()), round)),
            "b1: 1 client: 1 this probe's canary");
}

// ---- a stats endpoint shared by several pools ----

// A tiny nutcracker serving several pools: one stats port that writes one
// document listing every pool and closes (counting how often it is read),
// and one client port per pool that closes on "quit" (the freshness
// barrier, counted per port). Pool `ejected_pool` has ejected `ejected`.
class FakeSharedTwemproxy {
 public:
  FakeSharedTwemproxy(std::vector<std::string> pools, std::vector<std::string> backends,
                      std::string ejected_pool, std::string ejected)
      : pools_(std::move(pools)),
        backends_(std::move(backends)),
        ejected_pool_(std::move(ejected_pool)),
        ejected_(std::move(ejected)),
        quits_(pools_.size()) {
    stats_ = listen_on_free_port();
    for (std::size_t i = 0; i < pools_.size(); ++i) clients_.push_back(listen_on_free_port());
    thread_ = std::thread([this] { serve(); });
  }
  ~FakeSharedTwemproxy() {
    stop_ = true;
    thread_.join();
    ::close(stats_.first);
    for (const auto& client : clients_) ::close(client.first);
  }
  FakeSharedTwemproxy(const FakeSharedTwemproxy&) = delete;
  FakeSharedTwemproxy& operator=(const FakeSharedTwemproxy&) = delete;

  const net::Endpoint& stats() const { return stats_.second; }
  const net::Endpoint& client(std::size_t pool) const { return clients_[pool].second; }
  int stats_reads() const { return stats_reads_; }
  int quits(std::size_t pool) const { return quits_[pool]; }

 private:
  static std::pair<int, net::Endpoint> listen_on_free_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
    ::listen(fd, 16);
    socklen_t length = sizeof address;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
    return {fd, net::Endpoint{"127.0.0.1", ntohs(address.sin_port)}};
  }

  std::string document() const {
    const auto now = std::chrono::system_clock::now().time_since_epoch();
    const long long seconds = std::chrono::duration_cast<std::chrono::seconds>(now).count();
    std::string json = R"({"service":"nutcracker", "timestamp":)" + std::to_string(seconds);
    for (const std::string& pool : pools_) {
      json += ", \"" + pool + R"(": {"client_connections":0)";
      for (const std::string& backend : backends_) {
        const bool ejected = pool == ejected_pool_ && backend == ejected_;
        json += ", \"" + backend + R"(": {"server_eof":0, "server_err":)" + (ejected ? "3" : "0") +
                R"(, "server_timedout":0, "server_connections":)" + (ejected ? "0" : "1") +
                R"(, "server_ejected_at":)" + (ejected ? std::to_string(seconds * 1000000) : "0") +
                R"(, "requests":5})";
      }
      json += "}";
    }
    return json + "}\n";
  }

  void serve() {
    std::vector<pollfd> fds{{stats_.first, POLLIN, 0}};
    for (const auto& client : clients_) fds.push_back({client.first, POLLIN, 0});
    while (!stop_) {
      for (auto& fd : fds) fd.revents = 0;
      if (::poll(fds.data(), fds.size(), 50) <= 0) continue;
      for (std::size_t i = 0; i < fds.size(); ++i) {
        if ((fds[i].revents & POLLIN) == 0) continue;
        const int connection = ::accept(fds[i].fd, nullptr, nullptr);
        if (connection < 0) continue;
        if (i == 0) {
          ++stats_reads_;
          const std::string reply = document();
          ::send(connection, reply.data(), reply.size(), MSG_NOSIGNAL);
        } else if (read_quit(connection)) {
          ++quits_[i - 1];
        }
        ::close(connection);
      }
    }
  }

  static bool read_quit(int connection) {
    std::string request;
    char buffer[64];
    while (request.find("\r\n") == std::string::npos) {
      pollfd cfd{connection, POLLIN, 0};
      if (::poll(&cfd, 1, 1000) <= 0) return false;
      const ssize_t got = ::recv(connection, buffer, sizeof buffer, 0);
      if (got <= 0) return false;
      request.append(buffer, static_cast<std::size_t>(got));
    }
    return request == "quit\r\n";
  }

  std::vector<std::string> pools_, backends_;
  std::string ejected_pool_, ejected_;
  std::pair<int, net::Endpoint> stats_;
  std::vector<std::pair<int, net::Endpoint>> clients_;
  std::atomic<bool> stop_{false};
  std::atomic<int> stats_reads_{0};
  std::vector<std::atomic<int>> quits_;
  std::thread thread_;
};

// Three twemproxy proxies p1..p3 as pools of one fake process, over the fake
// cluster's backends; `client_of` gives each proxy's client port.
spec::ClusterSpec shared_spec(const FakeCluster& cluster, const FakeSharedTwemproxy& process,
                              const std::function<net::Endpoint(std::size_t)>& client_of) {
  spec::ClusterSpec spec = cluster.spec(process.stats());
  spec.proxies.clear();
  for (std::size_t i = 0; i < 3; ++i) {
    spec::Proxy proxy;
    proxy.name = "p" + std::to_string(i + 1);
    proxy.kind = spec::ProxyKind::twemproxy;
    proxy.pool = proxy.name;
    proxy.client = client_of(i);
    proxy.stats = process.stats();
    spec.proxies.push_back(proxy);
  }
  return spec;
}

// The proxies named by connections findings above info.
std::set<std::string> proxies_named(const Report& report) {
  std::set<std::string> named;
  for (const Finding& finding : report.findings) {
    if (finding.check == "connections" && finding.severity != Severity::info &&
        !finding.subject.proxy.empty())
      named.insert(finding.subject.proxy);
  }
  return named;
}

// Issue 15: a stats endpoint shared by many pools is read once a round for
// all of them (plus the barrier's first read), after every pool's barrier,
// and each proxy still gets its own pool's verdict.
TEST(ConnectionsProbeSharedStatsTest, ASharedStatsEndpointIsReadOnceARoundForEveryPool) {
  FakeCluster cluster;
  FakeSharedTwemproxy process({"p1", "p2", "p3", "other"}, {"b1", "b2", "b3"}, "p2", "b2");
  const spec::ClusterSpec spec =
      shared_spec(cluster, process, [&](std::size_t i) { return process.client(i); });
  connections::ConnectionsProbe probe;
  for (int round = 1; round <= 2; ++round) {
    Report report;
    RoundContext context;
    probe.run(spec, context, report);
    // Step 1 and step 3 of the barrier once for the three proxies, not per proxy.
    EXPECT_EQ(process.stats_reads(), 2 * round) << describe(report);
    for (std::size_t pool = 0; pool < 3; ++pool) {
      EXPECT_EQ(process.quits(pool), 2 * round) << "pool " << pool;
    }
    EXPECT_EQ(process.quits(3), 0);  // not in the spec
    const auto missing = findings_of(report, "proxy_missing_backend");
    ASSERT_EQ(missing.size(), 1u) << describe(report);
    EXPECT_EQ(missing[0]->subject.proxy, "p2");
    EXPECT_EQ(missing[0]->subject.backend, "b2");
    EXPECT_EQ(proxies_named(report), std::set<std::string>{"p2"}) << describe(report);
    EXPECT_TRUE(findings_of(report, "stale_stats").empty()) << describe(report);
    EXPECT_EQ(figure(report, "proxy_backends_connected/p1"), 3);
    EXPECT_EQ(figure(report, "proxy_backends_connected/p2"), 2);
    EXPECT_EQ(figure(report, "proxy_backends_connected/p3"), 3);
  }
}

// One pool's barrier fails (nothing listens on its client port): that proxy
// alone is `unconfirmed` (stale_stats, from the first read, as on its own);
// the others are read after their barriers, from the one shared read.
TEST(ConnectionsProbeSharedStatsTest, AFailedBarrierLeavesOnlyItsOwnProxyUnconfirmed) {
  FakeCluster cluster;
  FakeSharedTwemproxy process({"p1", "p2", "p3"}, {"b1", "b2", "b3"}, "", "");
  const net::Endpoint closed{"127.0.0.1", testing::free_port()};
  const spec::ClusterSpec spec = shared_spec(
      cluster, process, [&](std::size_t i) { return i == 2 ? closed : process.client(i); });
  const Report report = run_connections(spec);
  EXPECT_EQ(process.stats_reads(), 2);
  const auto stale = findings_of(report, "stale_stats");
  ASSERT_EQ(stale.size(), 1u) << describe(report);
  EXPECT_EQ(stale[0]->subject.proxy, "p3");
  EXPECT_EQ(stale[0]->summary.rfind("stats of proxy p3 may be stale: freshness barrier failed on "
                                    "the client port: " +
                                        closed.to_string(),
                                    0),
            0u)
      << stale[0]->summary;
  EXPECT_TRUE(findings_of(report, "proxy_missing_backend").empty()) << describe(report);
  for (const char* proxy : {"p1", "p2", "p3"}) {
    EXPECT_EQ(figure(report, std::string("proxy_backends_connected/") + proxy), 3) << proxy;
  }
}

}  // namespace
}  // namespace ringwatch::probes
