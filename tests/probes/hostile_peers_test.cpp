// The real probes against hostile peers (issue 12): a fake peer on loopback
// plays a proxy's client port, a backend, a twemproxy stats port or a DNS
// server, and misbehaves: garbage, truncation, silence, closing mid-reply,
// trickling, huge or negative lengths, wrong types, deep nesting, endless
// streams. For each, a round of the probe
//   - ends within its deadlines plus a margin (a hang detector, not a speed
//     test: the bound is generous),
//   - stays under a memory bound (the process' peak RSS during the round),
//   - and reports the peer by name as CRITICAL or UNKNOWN, never OK.
// A real memcached is the healthy proxy p1 and backend b1 beside the fake.
// tools/test.sh runs this again under ASan+UBSan.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "lib/dns/answer.h"
#include "probes/registry.h"
#include "tests/support/fake_dns.h"
#include "tests/support/fake_peer.h"
#include "tests/support/memcached_process.h"
#include "tests/support/report_helpers.h"

namespace ringwatch::probes {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using testing::DnsQuestion;
using testing::DnsRecord;
using testing::DnsTransport;
using testing::FakeDns;
using testing::FakePeer;
using testing::MemcachedProcess;
using testing::PeerCommand;
using testing::PeerReply;

constexpr spec::Timeouts kTimeouts{250ms, 500ms, 500ms};
// Every check of a round waits on a hostile peer about once (connect + io);
// four times that and two seconds more is far from a hang.
constexpr auto kHangBound = 4 * (kTimeouts.connect + kTimeouts.io) + 2s;
// A peer streaming gigabytes (the 1.5 GB of issue 12) is far above this;
// what the clients may keep (their reply caps), and ASan's quarantine of
// freed memory, are below it.
constexpr std::size_t kMemoryBoundKib = 512 * 1024;

// /proc/self/status field in KiB.
std::size_t status_kib(const std::string& field) {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.starts_with(field + ":")) return std::stoul(line.substr(field.size() + 1));
  }
  return 0;
}

struct Round {
  report::Report report;
  Clock::duration elapsed{};
  std::size_t peak_growth_kib = 0;  // the peak RSS during the round, over the RSS before
};

Round run_round(const spec::ClusterSpec& spec, const std::vector<std::string>& checks) {
  ProbeSet probes(checks);
  std::ofstream("/proc/self/clear_refs") << "5";  // the peak RSS starts again from here
  const std::size_t before = status_kib("VmRSS");
  const auto start = Clock::now();
  Round round;
  round.report = probes.run_round(spec);
  round.elapsed = Clock::now() - start;
  const std::size_t peak = status_kib("VmHWM");
  round.peak_growth_kib = peak > before ? peak - before : 0;
  return round;
}

// A CRITICAL or UNKNOWN finding naming `name` (as proxy, backend or vantage).
bool named(const report::Report& report, const std::string& name) {
  for (const report::Finding& finding : report.findings) {
    const bool bad = finding.severity == report::Severity::critical ||
                     finding.severity == report::Severity::unknown;
    const auto& subject = finding.subject;
    if (bad && (subject.proxy == name || subject.backend == name || subject.vantage == name)) {
      return true;
    }
  }
  return false;
}

void expect_contained(const Round& round, const std::string& peer) {
  EXPECT_LT(round.elapsed, kHangBound) << testing::describe(round.report);
  EXPECT_LT(round.peak_growth_kib, kMemoryBoundKib);
  EXPECT_NE(round.report.status(), report::Status::ok) << testing::describe(round.report);
  EXPECT_TRUE(named(round.report, peer)) << testing::describe(round.report);
}

std::string repeated(const std::string& text, std::size_t times) {
  std::string out;
  out.reserve(text.size() * times);
  for (std::size_t i = 0; i < times; ++i) out += text;
  return out;
}

// The first key a get asks for, so a reply can be about a key it asked for.
std::string first_key(const PeerCommand& command) {
  return command.words.size() > 1 ? command.words[1] : "k";
}

template <class Case>
std::string case_name(const ::testing::TestParamInfo<Case>& param) {
  return param.param.name;
}

// ---- the memcached text protocol: a proxy's client port, a backend ----------

struct MemcachedCase {
  const char* name;
  const char* command;  // the command the peer misbehaves on
  FakePeer::Script reply;
};

void PrintTo(const MemcachedCase& c, std::ostream* out) {
  *out << c.name;
}

const std::vector<MemcachedCase>& memcached_cases() {
  static const std::vector<MemcachedCase> cases = {
      {"Garbage", "get",
       [](const PeerCommand&) { return PeerReply::send(std::string("\0\xff garbage\r\n", 12)); }},
      {"TruncatedThenSilent", "get",
       [](const PeerCommand& c) {
         return PeerReply::hang_after("VALUE " + first_key(c) + " 0 10\r\nab");
       }},
      {"NeverReplies", "get", [](const PeerCommand&) { return PeerReply::never(); }},
      {"ClosesMidReply", "get",
       [](const PeerCommand& c) {
         return PeerReply::close_after("VALUE " + first_key(c) + " 0 10\r\nab");
       }},
      {"Trickles", "get",
       [](const PeerCommand& c) {
         return PeerReply::trickled("VALUE " + first_key(c) + " 0 2\r\nhi\r\nEND\r\n", 100ms);
       }},
      {"HugeLengthThenEndlessStream", "get",
       [](const PeerCommand& c) {
         return PeerReply::endless("VALUE " + first_key(c) + " 0 4294967295\r\n",
                                   std::string(64 * 1024, 'x'));
       }},
      {"NegativeLength", "get",
       [](const PeerCommand& c) {
         return PeerReply::send("VALUE " + first_key(c) + " 0 -1\r\nEND\r\n");
       }},
      {"KeyOf300Bytes", "get",
       [](const PeerCommand&) {
         return PeerReply::send("VALUE " + std::string(300, 'k') + " 0 2\r\nhi\r\nEND\r\n");
       }},
      {"WrongTypes", "get",
       [](const PeerCommand& c) {
         return PeerReply::send("VALUE " + first_key(c) + " flags two\r\nhi\r\nEND\r\n");
       }},
      {"EndlessValues", "get",
       [](const PeerCommand& c) {
         return PeerReply::endless("", repeated("VALUE " + first_key(c) + " 0 1\r\nx\r\n", 2048));
       }},
      {"EndlessLine", "get",
       [](const PeerCommand&) { return PeerReply::endless("VALUE ", std::string(4096, 'a')); }},
  };
  return cases;
}

// The canary writes through proxies only.
const std::vector<MemcachedCase>& proxy_set_cases() {
  static const std::vector<MemcachedCase> cases = {
      {"NeverAnswered", "set", [](const PeerCommand&) { return PeerReply::never(); }},
      {"AnsweredWithGarbage", "set",
       [](const PeerCommand&) { return PeerReply::send("WHAT\r\n"); }},
      {"Trickled", "set",
       [](const PeerCommand&) { return PeerReply::trickled("STORED\r\n", 100ms); }},
      {"ClosedMidReply", "set", [](const PeerCommand&) { return PeerReply::close_after("STO"); }},
  };
  return cases;
}

spec::Proxy proxy_at(const std::string& name, const net::Endpoint& client) {
  spec::Proxy proxy;
  proxy.name = name;
  proxy.kind = spec::ProxyKind::twemproxy;
  proxy.client = client;
  return proxy;
}

spec::ClusterSpec cluster_around(const MemcachedProcess& memcached) {
  spec::ClusterSpec spec;
  spec.name = "hostile";
  spec.timeouts = kTimeouts;
  spec.canary.keys_per_backend = 1;
  spec.proxies.push_back(proxy_at("p1", memcached.endpoint()));
  spec.backends.push_back({"b1", *net::IpAddress::parse(memcached.endpoint().host),
                           memcached.endpoint().port, "b1.hostile.test",
                           *net::Cidr::parse("127.0.0.0/8")});
  return spec;
}

spec::Backend backend_at(const std::string& name, const net::Endpoint& endpoint) {
  return {name, *net::IpAddress::parse(endpoint.host), endpoint.port, name + ".hostile.test",
          *net::Cidr::parse("127.0.0.0/8")};
}

class HostileMemcachedPeer : public ::testing::TestWithParam<MemcachedCase> {
 protected:
  MemcachedProcess memcached_;
};

void expect_hostile_proxy_reported(const MemcachedProcess& memcached, const MemcachedCase& c) {
  FakePeer peer;
  peer.on(c.command, c.reply);
  spec::ClusterSpec spec = cluster_around(memcached);
  spec.proxies.push_back(proxy_at("p2", peer.endpoint()));
  expect_contained(run_round(spec, {"canary"}), "p2");
}

TEST_P(HostileMemcachedPeer, AsAProxyClientPortIsReportedByName) {
  expect_hostile_proxy_reported(memcached_, GetParam());
}

TEST_P(HostileMemcachedPeer, AsABackendIsReportedByName) {
  FakePeer peer;
  peer.on(GetParam().command, GetParam().reply);
  spec::ClusterSpec spec = cluster_around(memcached_);
  spec.backends.push_back(backend_at("b2", peer.endpoint()));
  expect_contained(run_round(spec, {"canary"}), "b2");
}

INSTANTIATE_TEST_SUITE_P(Misbehaviours, HostileMemcachedPeer,
                         ::testing::ValuesIn(memcached_cases()), case_name<MemcachedCase>);

class HostileProxySets : public HostileMemcachedPeer {};

TEST_P(HostileProxySets, AreReportedByTheProxysName) {
  expect_hostile_proxy_reported(memcached_, GetParam());
}

INSTANTIATE_TEST_SUITE_P(Misbehaviours, HostileProxySets, ::testing::ValuesIn(proxy_set_cases()),
                         case_name<MemcachedCase>);

// Point 3: the checks of a round do not add up their deadlines. The canary
// meets a backend that never answers; no later pass of the canary and not
// the connection audit wait on it again: one connection in the whole round,
// and the audit says it did not ask.
TEST(HostileRoundTest, AStalledBackendIsWaitedOnOncePerRound) {
  MemcachedProcess memcached;
  FakePeer peer;
  peer.on("get", PeerReply::never());
  peer.on("stats", PeerReply::never());
  spec::ClusterSpec spec = cluster_around(memcached);
  spec.backends.push_back(backend_at("b2", peer.endpoint()));
  const Round round = run_round(spec, {"canary", "connections"});
  expect_contained(round, "b2");
  EXPECT_EQ(peer.connections(), 1u) << testing::describe(round.report);
  const report::Finding* unread = testing::find_finding(round.report, "backend_stats_unreadable");
  ASSERT_NE(unread, nullptr) << testing::describe(round.report);
  EXPECT_EQ(unread->subject.backend, "b2");
  EXPECT_EQ(std::get<std::string>(*testing::evidence(*unread, "reason")), "not_checked");
  EXPECT_EQ(unread->summary,
            "stats conns of backend b2 unreadable (not checked): " + peer.endpoint().to_string() +
                ": no reply within 500 ms to the canary this round");
}

// ---- a twemproxy stats port -------------------------------------------------

struct StatsCase {
  const char* name;
  PeerReply reply;  // sent on connect
};

void PrintTo(const StatsCase& c, std::ostream* out) {
  *out << c.name;
}

std::string twemproxy_document(const std::string& timestamp, const std::string& connections) {
  return R"({"service": "nutcracker", "timestamp": )" + timestamp +
         R"(, "hostile": {"b1": {"server_eof": 0, "server_err": 0, "server_timedout": 0,
         "server_connections": )" +
         connections + R"(, "server_ejected_at": 0, "requests": 1}}})";
}

PeerReply then_close(std::string bytes, std::chrono::milliseconds trickle = {}) {
  return {std::move(bytes), trickle, PeerReply::Then::close, {}};
}

const std::vector<StatsCase>& stats_cases() {
  static const std::vector<StatsCase> cases = {
      {"Garbage", then_close(std::string("\0\xff not json", 11))},
      {"Truncated", then_close(twemproxy_document("1", "1").substr(0, 60))},
      {"NeverReplies", PeerReply::never()},
      {"Trickles", then_close(twemproxy_document("1", "1"), 100ms)},
      {"ClosesWithoutAByte", then_close("")},
      {"DeepNesting", then_close(R"({"timestamp": 1, "hostile": )" + std::string(1000000, '[') +
                                 std::string(1000000, ']') + "}")},
      {"ExtremeTimestamp", then_close(twemproxy_document("9223372036854775807", "1"))},
      {"NegativeTimestamp", then_close(twemproxy_document("-9223372036854775808", "1"))},
      {"WrongTypes", then_close(twemproxy_document("\"soon\"", "\"many\""))},
      {"NegativeCounter", then_close(twemproxy_document("1", "-5"))},
      {"EndlessStream",
       PeerReply::endless(R"({"timestamp": 1, "hostile": ")", std::string(64 * 1024, 'a'))},
  };
  return cases;
}

class HostileStatsPort : public ::testing::TestWithParam<StatsCase> {};

TEST_P(HostileStatsPort, IsReportedByTheProxysName) {
  MemcachedProcess memcached;
  FakePeer stats;
  stats.on_connect(GetParam().reply);
  spec::ClusterSpec spec = cluster_around(memcached);
  spec.proxies[0].stats = stats.endpoint();
  expect_contained(run_round(spec, {"connections"}), "p1");
}

INSTANTIATE_TEST_SUITE_P(Misbehaviours, HostileStatsPort, ::testing::ValuesIn(stats_cases()),
                         case_name<StatsCase>);

// ---- a backend's `stats conns` ----------------------------------------------

const std::vector<MemcachedCase>& stats_conns_cases() {
  static const std::vector<MemcachedCase> cases = {
      {"Garbage", "stats", [](const PeerCommand&) { return PeerReply::send("\xff\xfe\r\n"); }},
      {"NeverReplies", "stats", [](const PeerCommand&) { return PeerReply::never(); }},
      {"Trickles", "stats",
       [](const PeerCommand&) {
         return PeerReply::trickled("STAT 5:addr tcp:127.0.0.1:1\r\nEND\r\n", 100ms);
       }},
      {"ClosesMidReply", "stats",
       [](const PeerCommand&) { return PeerReply::close_after("STAT 5:addr tcp:12"); }},
      {"WrongTypes", "stats",
       [](const PeerCommand&) { return PeerReply::send("STAT five:addr tcp:1\r\nEND\r\n"); }},
      {"EndlessLines", "stats",
       [](const PeerCommand&) {
         return PeerReply::endless("", repeated("STAT 5:state conn_read\r\n", 2048));
       }},
  };
  return cases;
}

class HostileStatsConns : public ::testing::TestWithParam<MemcachedCase> {};

TEST_P(HostileStatsConns, IsReportedByTheBackendsName) {
  MemcachedProcess memcached;
  FakePeer peer;
  peer.on(GetParam().command, GetParam().reply);
  spec::ClusterSpec spec = cluster_around(memcached);
  spec.backends.push_back(backend_at("b2", peer.endpoint()));
  expect_contained(run_round(spec, {"connections"}), "b2");
}

INSTANTIATE_TEST_SUITE_P(Misbehaviours, HostileStatsConns, ::testing::ValuesIn(stats_conns_cases()),
                         case_name<MemcachedCase>);

// ---- a DNS server -----------------------------------------------------------

struct DnsCase {
  const char* name;
  bool close_tcp;
  FakeDns::Script script;
};

void PrintTo(const DnsCase& c, std::ostream* out) {
  *out << c.name;
}

std::optional<std::string> over(DnsTransport transport, const std::string& reply) {
  return transport == DnsTransport::tcp ? testing::with_length(reply) : reply;
}

std::vector<DnsRecord> a_records(std::size_t count) {
  std::vector<DnsRecord> records;
  for (std::size_t i = 0; i < count; ++i) {
    records.push_back({dns::kTypeA, testing::address_rdata("127.0.0.1"), 60, std::nullopt});
  }
  return records;
}

const std::vector<DnsCase>& dns_cases() {
  using Reply = std::optional<std::string>;
  static const std::vector<DnsCase> cases = {
      {"Garbage", false,
       [](const DnsQuestion& q, DnsTransport) -> Reply {
         return q.query.substr(0, 2) + std::string(30, '\xff');
       }},
      {"NeverReplies", false, [](const DnsQuestion&, DnsTransport) -> Reply { return {}; }},
      {"WrongRdlength", false,
       [](const DnsQuestion& q, DnsTransport t) -> Reply {
         return over(t, testing::dns_reply(q, {{q.type, "\x7f\x00\x01", 60, std::nullopt}}));
       }},
      {"BigAnswerCutShortOverTcp", true,
       [](const DnsQuestion& q, DnsTransport t) -> Reply {
         if (t == DnsTransport::udp) return testing::dns_reply(q, {}, 0, true);
         return testing::with_length(testing::dns_reply(q, a_records(4000))).substr(0, 30000);
       }},
      {"TruncatedThenSilentOverTcp", false,
       [](const DnsQuestion& q, DnsTransport t) -> Reply {
         if (t == DnsTransport::udp) return testing::dns_reply(q, {}, 0, true);
         return std::nullopt;
       }},
      {"AnswerCountLies", false,
       [](const DnsQuestion& q, DnsTransport t) -> Reply {
         std::string reply = testing::dns_reply(q, {});
         reply[6] = reply[7] = '\xff';
         return over(t, reply);
       }},
      {"CompressionLoop", false,
       [](const DnsQuestion& q, DnsTransport t) -> Reply {
         std::string reply = testing::dns_reply(q, a_records(1));
         const std::size_t name = reply.size() - 16;  // the answer's name: point it at itself
         reply[name] = static_cast<char>(0xc0 | (name >> 8));
         reply[name + 1] = static_cast<char>(name & 0xff);
         return over(t, reply);
       }},
  };
  return cases;
}

class HostileDnsServer : public ::testing::TestWithParam<DnsCase> {};

TEST_P(HostileDnsServer, IsReportedByTheVantagePointsName) {
  FakeDns fake;
  fake.close_tcp_after_reply(GetParam().close_tcp);
  fake.answer(GetParam().script);
  spec::ClusterSpec spec;
  spec.name = "hostile";
  spec.timeouts = kTimeouts;
  spec.proxies.push_back(proxy_at("p1", {"127.0.0.1", 1}));
  spec.backends.push_back(backend_at("b1", {"127.0.0.1", 1}));
  spec.dns_servers.push_back({"fake", fake.endpoint()});
  const Round round = run_round(spec, {"dns"});
  expect_contained(round, "fake");
  // Undecided, not "the name has no address".
  EXPECT_EQ(testing::find_finding(round.report, "dns_no_answer"), nullptr)
      << testing::describe(round.report);
}

INSTANTIATE_TEST_SUITE_P(Misbehaviours, HostileDnsServer, ::testing::ValuesIn(dns_cases()),
                         case_name<DnsCase>);

}  // namespace
}  // namespace ringwatch::probes
