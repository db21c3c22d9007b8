// The proxy adapters' parsers against fixtures (tests/fixtures/connections,
// see its README.md for which are measured and which come from docs), the
// memcached-proxy adapter against the live program in a lab, the backend
// `stats conns` reader against a real memcached, and the fetches' deadlines
// against sockets that refuse or stay silent.

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "lib/mc/client.h"
#include "lib/net/tcp.h"
#include "lib/util/deadlines.h"
#include "probes/connections/backend_peers.h"
#include "probes/connections/proxy_adapters.h"
#include "probes/connections/proxy_view.h"
#include "tests/support/memcached_process.h"
#include "tests/support/scoped_lab.h"

namespace ringwatch::probes::connections {
namespace {

using namespace std::chrono_literals;

std::string fixture(const std::string& name) {
  const std::string path =
      std::string(RINGWATCH_SOURCE_DIR) + "/tests/fixtures/connections/" + name;
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("missing fixture " + path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

StatList stat_fixture(const std::string& name) {
  auto parsed = parse_stat_lines(fixture(name));
  if (!parsed) throw std::runtime_error(name + ": " + parsed.error().message);
  return parsed.value();
}

const ServerView* server(const ProxyView& view, const std::string& name) {
  for (const ServerView& entry : view.servers) {
    if (entry.name == name) return &entry;
  }
  return nullptr;
}

// A spec shaped like the fixtures' mcrouter/memcached-proxy cluster.
spec::ClusterSpec fixture_cluster() {
  spec::ClusterSpec cluster;
  cluster.name = "alpha";
  for (int i = 1; i <= 3; ++i) {
    spec::Backend backend;
    backend.name = "b" + std::to_string(i);
    backend.address = *net::IpAddress::parse("127.10.0.1" + std::to_string(i));
    backend.port = static_cast<std::uint16_t>(40000 + i);
    cluster.backends.push_back(backend);
  }
  return cluster;
}

// ---- twemproxy ----

TEST(TwemproxyStatsTest, HealthySampleHasEveryServerConnected) {
  auto view = parse_twemproxy_stats(fixture("twemproxy_healthy.json"), "alpha");
  ASSERT_TRUE(view.ok()) << view.error().message;
  EXPECT_EQ(view.value().pool, "alpha");
  ASSERT_TRUE(view.value().stats_time.has_value());
  EXPECT_EQ(std::chrono::system_clock::to_time_t(*view.value().stats_time), 1795516697);
  ASSERT_EQ(view.value().servers.size(), 3u);
  for (const char* name : {"b1", "b2", "b3"}) {
    const ServerView* entry = server(view.value(), name);
    ASSERT_NE(entry, nullptr) << name;
    EXPECT_EQ(entry->connections, 1) << name;
    EXPECT_FALSE(entry->ejected) << name;
    EXPECT_FALSE(entry->ejected_at.has_value()) << name;
    EXPECT_FALSE(entry->address.has_value()) << "named servers carry no address";
    EXPECT_GT(entry->requests, 1000) << name;
  }
  EXPECT_EQ(view.value().servers[0].name, "b1") << "kept in the proxy's order";
  EXPECT_TRUE(view.value().keeps_idle_connections);
}

TEST(TwemproxyStatsTest, EjectedServerShowsWhenAndWhy) {
  auto view = parse_twemproxy_stats(fixture("twemproxy_ejected.json"), "alpha");
  ASSERT_TRUE(view.ok()) << view.error().message;
  const ServerView* b3 = server(view.value(), "b3");
  ASSERT_NE(b3, nullptr);
  EXPECT_TRUE(b3->ejected);
  EXPECT_EQ(b3->connections, 0);
  ASSERT_TRUE(b3->ejected_at.has_value());
  EXPECT_EQ(
      std::chrono::duration_cast<std::chrono::microseconds>(b3->ejected_at->time_since_epoch())
          .count(),
      1795516644265440);
  EXPECT_EQ(b3->errors, 4);
  EXPECT_EQ(b3->requests, 7);
  EXPECT_NE(b3->detail.find("server_ejected_at=1795516644265440"), std::string::npos);
  EXPECT_FALSE(server(view.value(), "b1")->ejected);
}

TEST(TwemproxyStatsTest, RecoveredServerKeepsItsEjectionTimeButIsConnected) {
  auto view = parse_twemproxy_stats(fixture("twemproxy_recovered.json"), "alpha");
  ASSERT_TRUE(view.ok()) << view.error().message;
  const ServerView* b3 = server(view.value(), "b3");
  ASSERT_NE(b3, nullptr);
  EXPECT_TRUE(b3->ejected_at.has_value());
  EXPECT_EQ(b3->connections, 1);
  EXPECT_FALSE(b3->ejected);
}

TEST(TwemproxyStatsTest, IdleServerIsNeitherConnectedNorEjected) {
  auto view = parse_twemproxy_stats(fixture("twemproxy_idle.json"), "alpha");
  ASSERT_TRUE(view.ok()) << view.error().message;
  const ServerView* b1 = server(view.value(), "b1");
  ASSERT_NE(b1, nullptr);
  EXPECT_EQ(b1->connections, 0);
  EXPECT_EQ(b1->requests, 0);
  EXPECT_FALSE(b1->ejected);
}

TEST(TwemproxyStatsTest, UnnamedServersCarryTheirAddress) {
  const std::string json =
      R"({"service":"nutcracker", "source":"vm", "version":"0.5.0", "uptime":2, "timestamp":1795516664, )"
      R"("total_connections":1, "curr_connections":1, "beta": {"client_eof":0, "client_err":0, )"
      R"("client_connections":0, "server_ejects":0, "forward_error":0, "fragments":0, )"
      R"("127.10.0.91:39251": {"server_eof":0, "server_err":0, "server_timedout":0, )"
      R"("server_connections":0, "server_ejected_at":0, "requests":0, "request_bytes":0, )"
      R"("responses":0, "response_bytes":0, "in_queue":0, "in_queue_bytes":0, "out_queue":0, )"
      R"("out_queue_bytes":0}}})"
      "\n";
  auto view = parse_twemproxy_stats(json, "anything");
  ASSERT_TRUE(view.ok()) << view.error().message;
  ASSERT_EQ(view.value().servers.size(), 1u);
  ASSERT_TRUE(view.value().servers[0].address.has_value());
  EXPECT_EQ(view.value().servers[0].address->to_string(), "127.10.0.91:39251");
}

// Measured: an unnamed server is keyed by its host alone on port 11211 and by
// host:port on another port; both carry their address, a named one none.
TEST(TwemproxyStatsTest, UnnamedServersAreKeyedByHostOnPort11211AndByHostAndPortElsewhere) {
  auto view = parse_twemproxy_stats(fixture("twemproxy_unnamed.json"), "objects");
  ASSERT_TRUE(view.ok()) << view.error().message;
  EXPECT_EQ(view.value().pool, "objects");
  ASSERT_EQ(view.value().servers.size(), 3u);
  const ServerView* on_default = server(view.value(), "127.30.0.5");
  ASSERT_NE(on_default, nullptr);
  ASSERT_TRUE(on_default->address.has_value());
  EXPECT_EQ(*on_default->address, (net::Endpoint{"127.30.0.5", 11211}));
  const ServerView* on_other = server(view.value(), "127.30.0.5:11299");
  ASSERT_NE(on_other, nullptr);
  EXPECT_EQ(*on_other->address, (net::Endpoint{"127.30.0.5", 11299}));
  const ServerView* named = server(view.value(), "named");
  ASSERT_NE(named, nullptr);
  EXPECT_FALSE(named->address.has_value());
  EXPECT_EQ(named->connections, 1);

  auto sessions = parse_twemproxy_stats(fixture("twemproxy_unnamed.json"), "sessions");
  ASSERT_TRUE(sessions.ok()) << sessions.error().message;
  ASSERT_EQ(sessions.value().servers.size(), 1u);
  EXPECT_EQ(*sessions.value().servers[0].address, (net::Endpoint{"127.30.0.5", 11211}));
}

TEST(TwemproxyStatsTest, SeveralPoolsNeedTheClusterName) {
  const std::string pool =
      R"({"client_eof":0, "s1": {"server_eof":0, "server_err":0, "server_timedout":0, )"
      R"("server_connections":1, "server_ejected_at":0, "requests":1}})";
  const std::string json =
      R"({"service":"nutcracker", "timestamp":100, "one": )" + pool + R"(, "two": )" + pool + "}";
  auto chosen = parse_twemproxy_stats(json, "two");
  ASSERT_TRUE(chosen.ok()) << chosen.error().message;
  EXPECT_EQ(chosen.value().pool, "two");
  auto ambiguous = parse_twemproxy_stats(json, "three");
  ASSERT_FALSE(ambiguous.ok());
  EXPECT_EQ(ambiguous.error().kind, ViewErrorKind::no_pool);
  EXPECT_STREQ(to_string(ViewErrorKind::no_pool), "no_pool");
  EXPECT_EQ(ambiguous.error().message,
            "stats JSON has 2 pools (one, two) and none is named \"three\"");
}

// One nutcracker process serving several pools reports them all in one
// document: it is parsed once, each pool asked for becomes its own view, and
// a bad server entry fails its own pool only.
TEST(TwemproxyStatsTest, OneSharedDocumentGivesEveryPoolItsOwnView) {
  const auto pool = [](int connections, std::int64_t ejected_at) {
    return R"({"client_eof":0, "s1": {"server_eof":0, "server_err":0, "server_timedout":0, )"
           R"("server_connections":)" +
           std::to_string(connections) + R"(, "server_ejected_at":)" + std::to_string(ejected_at) +
           R"(, "requests":1}})";
  };
  const std::string bad = R"({"s1": {"server_eof":0}})";
  const std::string json = R"({"service":"nutcracker", "timestamp":100, "p1": )" + pool(1, 0) +
                           R"(, "p2": )" + pool(0, 100000000) + R"(, "p3": )" + bad +
                           R"(, "p4": )" + pool(1, 0) + "}";
  auto stats = parse_twemproxy_document(json, {"p1", "p2", "p3", "p9"});
  ASSERT_TRUE(stats.ok()) << stats.error().message;
  EXPECT_EQ(stats.value().pool_names, (std::vector<std::string>{"p1", "p2", "p3", "p4"}));
  EXPECT_EQ(stats.value().views.size(), 3u);  // p4 was not asked for: not turned into a view
  auto p1 = twemproxy_pool_view(stats.value(), "p1");
  ASSERT_TRUE(p1.ok()) << p1.error().message;
  EXPECT_EQ(p1.value().pool, "p1");
  EXPECT_FALSE(p1.value().servers.at(0).ejected);
  auto p2 = twemproxy_pool_view(stats.value(), "p2");
  ASSERT_TRUE(p2.ok()) << p2.error().message;
  EXPECT_TRUE(p2.value().servers.at(0).ejected);
  auto p3 = twemproxy_pool_view(stats.value(), "p3");
  ASSERT_FALSE(p3.ok());
  EXPECT_EQ(p3.error().message, "server \"s1\" in pool \"p3\" has no integer \"server_err\"");
  auto p9 = twemproxy_pool_view(stats.value(), "p9");
  ASSERT_FALSE(p9.ok());
  EXPECT_EQ(p9.error().kind, ViewErrorKind::no_pool);
  EXPECT_EQ(p9.error().message, "stats JSON has 4 pools (p1, p2, p3, p4) and none is named \"p9\"");
  // The same views as parsing the document once per pool.
  EXPECT_EQ(p1.value(), parse_twemproxy_stats(json, "p1").value());
  EXPECT_EQ(p2.value(), parse_twemproxy_stats(json, "p2").value());

  auto broken = parse_twemproxy_document(R"({"timestamp":1})", {"p1"});
  ASSERT_FALSE(broken.ok());
  EXPECT_EQ(broken.error().message, "stats JSON has no pool");
}

TEST(TwemproxyStatsTest, TruncatedDocumentIsATruncatedError) {
  auto view = parse_twemproxy_stats(fixture("twemproxy_truncated.json"), "alpha");
  ASSERT_FALSE(view.ok());
  EXPECT_EQ(view.error().kind, ViewErrorKind::truncated);
  EXPECT_EQ(view.error().message.rfind("stats JSON ends early after ", 0), 0u)
      << view.error().message;
}

TEST(TwemproxyStatsTest, EveryPrefixOfARealDocumentFailsCleanly) {
  const std::string whole = fixture("twemproxy_ejected.json");
  for (std::size_t length = 0; length + 2 < whole.size(); ++length) {
    auto view = parse_twemproxy_stats(std::string_view(whole).substr(0, length), "alpha");
    ASSERT_FALSE(view.ok()) << "prefix of " << length << " bytes parsed";
    EXPECT_TRUE(view.error().kind == ViewErrorKind::truncated ||
                view.error().kind == ViewErrorKind::malformed)
        << length;
  }
}

TEST(TwemproxyStatsTest, MalformedDocumentsSayWhatIsWrong) {
  auto wrong_type = parse_twemproxy_stats(fixture("twemproxy_malformed.json"), "alpha");
  ASSERT_FALSE(wrong_type.ok());
  EXPECT_EQ(wrong_type.error().kind, ViewErrorKind::malformed);
  EXPECT_EQ(wrong_type.error().message,
            "server \"b1\" in pool \"alpha\" has no integer \"server_connections\"");

  auto not_json = parse_twemproxy_stats(fixture("twemproxy_not_json.txt"), "alpha");
  ASSERT_FALSE(not_json.ok());
  EXPECT_EQ(not_json.error().kind, ViewErrorKind::malformed);
  EXPECT_EQ(not_json.error().message.rfind("stats JSON does not parse at byte 0: ", 0), 0u)
      << not_json.error().message;

  auto empty = parse_twemproxy_stats("", "alpha");
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.error().kind, ViewErrorKind::truncated);
  EXPECT_EQ(empty.error().message, "empty stats reply");

  auto array = parse_twemproxy_stats("[1, 2]", "alpha");
  ASSERT_FALSE(array.ok());
  EXPECT_EQ(array.error().message, "stats JSON is not an object");

  auto no_timestamp = parse_twemproxy_stats(R"({"service":"nutcracker"})", "alpha");
  ASSERT_FALSE(no_timestamp.ok());
  EXPECT_EQ(no_timestamp.error().message, "stats JSON has no integer \"timestamp\"");

  auto no_pool = parse_twemproxy_stats(R"({"timestamp":1})", "alpha");
  ASSERT_FALSE(no_pool.ok());
  EXPECT_EQ(no_pool.error().message, "stats JSON has no pool");

  auto stray = parse_twemproxy_stats(R"({"timestamp":1, "odd": 3})", "alpha");
  ASSERT_FALSE(stray.ok());
  EXPECT_EQ(stray.error().message, "stats JSON member \"odd\" is neither a header nor a pool");
}

// Issue 12, point 2: a million nested arrays overflowed the stack of the
// recursive parser; now the parse is iterative and stops at 8 levels.
TEST(TwemproxyStatsTest, DeepNestingIsMalformedNotACrash) {
  for (const auto& [open, close] : {std::pair{"[", "]"}, std::pair{"{\"a\":", "}"}}) {
    std::string document = R"({"timestamp": 1, "alpha": )";
    for (int i = 0; i < 1000000; ++i) document += open;
    for (int i = 0; i < 1000000; ++i) document += close;
    document += "}";
    auto view = parse_twemproxy_stats(document, "alpha");
    ASSERT_FALSE(view.ok());
    EXPECT_EQ(view.error().kind, ViewErrorKind::malformed);
    EXPECT_EQ(view.error().message, "stats JSON nests deeper than 8 levels");
  }
}

// Issue 12, point 5: times from a peer may be any 64-bit number; converting
// them to the clock's nanoseconds overflowed (undefined behaviour).
TEST(TwemproxyStatsTest, TimesBeyondTheClocksRangeAreMalformed) {
  auto timestamp =
      parse_twemproxy_stats(R"({"timestamp": 9223372036854775807, "alpha": {}})", "alpha");
  ASSERT_FALSE(timestamp.ok());
  EXPECT_EQ(timestamp.error().message,
            "stats JSON \"timestamp\" 9223372036854775807 is beyond any clock's range");

  auto ejected = parse_twemproxy_stats(R"({"timestamp": 1, "alpha": {"b1": {
      "server_eof": 0, "server_err": 0, "server_timedout": 0, "server_connections": 0,
      "server_ejected_at": 9223372036854775807, "requests": 0}}})",
                                       "alpha");
  ASSERT_FALSE(ejected.ok());
  EXPECT_EQ(ejected.error().message,
            "server \"b1\" has server_ejected_at 9223372036854775807, beyond any clock's range");

  auto mcrouter = parse_mcrouter_stats({}, {}, {{"time", "-9223372036854775808"}});
  ASSERT_FALSE(mcrouter.ok());
  EXPECT_EQ(mcrouter.error().message, "mcrouter stats: bad time \"-9223372036854775808\"");
}

// ---- memcached text-protocol stats ----

TEST(StatLinesTest, KeepsWholeValuesAndDetectsTheEnd) {
  auto stats = parse_stat_lines("STAT version 41.0.0 mcrouter\r\nSTAT pid 1\r\nEND\r\n");
  ASSERT_TRUE(stats.ok()) << stats.error().message;
  ASSERT_EQ(stats.value().size(), 2u);
  EXPECT_EQ(stats.value()[0].second, "41.0.0 mcrouter");

  EXPECT_EQ(parse_stat_lines("STAT pid 1\r\n").error().kind, ViewErrorKind::truncated);
  EXPECT_EQ(parse_stat_lines("STAT pid 1\r\n").error().message, "stats reply without END");
  EXPECT_EQ(parse_stat_lines("STAT pi").error().kind, ViewErrorKind::truncated);
  EXPECT_EQ(parse_stat_lines("").error().message, "empty stats reply");
  EXPECT_EQ(parse_stat_lines("ERROR\r\n").error().kind, ViewErrorKind::unsupported);
  EXPECT_EQ(parse_stat_lines("ERROR\r\n").error().message, "the server answered \"ERROR\"");
  EXPECT_EQ(parse_stat_lines("CLIENT_ERROR bad stats command\r\n").error().kind,
            ViewErrorKind::unsupported);
  EXPECT_EQ(parse_stat_lines("VALUE x 0 1\r\nEND\r\n").error().message,
            "not a STAT line: \"VALUE x 0 1\"");
  EXPECT_EQ(parse_stat_lines("END\r\nSTAT x 1\r\n").error().kind, ViewErrorKind::malformed);

  EXPECT_TRUE(stats_reply_complete("STAT a b\r\nEND\r\n"));
  EXPECT_TRUE(stats_reply_complete("END\r\n"));
  EXPECT_TRUE(stats_reply_complete("STAT a b\r\nSERVER_ERROR busy\r\n"));
  EXPECT_TRUE(stats_reply_complete("ERROR\r\n"));
  EXPECT_FALSE(stats_reply_complete("STAT a END\r\nSTAT b c\r\n"));
  EXPECT_FALSE(stats_reply_complete("STAT a bEND\r\n"));
  EXPECT_FALSE(stats_reply_complete("STAT a b\r\nEN"));
  EXPECT_FALSE(stats_reply_complete(""));
  EXPECT_FALSE(stats_reply_complete("E"));
}

// ---- mcrouter (format from its source and wiki; see the fixtures' README) ----

TEST(McrouterStatsTest, HealthyServersAreUpWithTheirAddresses) {
  auto view = parse_mcrouter_stats(stat_fixture("mcrouter_servers_healthy.txt"),
                                   stat_fixture("mcrouter_suspect_servers_empty.txt"),
                                   stat_fixture("mcrouter_stats.txt"));
  ASSERT_TRUE(view.ok()) << view.error().message;
  ASSERT_EQ(view.value().servers.size(), 3u);
  const ServerView& first = view.value().servers[0];
  ASSERT_TRUE(first.address.has_value());
  EXPECT_EQ(first.address->to_string(), "127.10.0.11:40001");
  EXPECT_EQ(first.connections, 4);
  EXPECT_EQ(first.requests, 240);
  EXPECT_FALSE(first.ejected);
  EXPECT_EQ(view.value().servers[2].connections, 3) << "closed:1 is not a connection";
  EXPECT_EQ(std::chrono::system_clock::to_time_t(*view.value().stats_time), 1795516697);
  EXPECT_FALSE(view.value().keeps_idle_connections);
  EXPECT_EQ(view.value().freshness, Freshness::live);
}

TEST(McrouterStatsTest, HardTkoAndSuspectServersAreEjected) {
  auto view = parse_mcrouter_stats(stat_fixture("mcrouter_servers_tko.txt"),
                                   stat_fixture("mcrouter_suspect_servers_tko.txt"),
                                   stat_fixture("mcrouter_stats.txt"));
  ASSERT_TRUE(view.ok()) << view.error().message;
  ASSERT_EQ(view.value().servers.size(), 3u);
  const ServerView& bad = view.value().servers[2];
  EXPECT_EQ(bad.address->to_string(), "127.200.0.13:40003");
  EXPECT_TRUE(bad.ejected);
  EXPECT_TRUE(bad.connect_failing);
  EXPECT_EQ(bad.connections, 0);
  EXPECT_EQ(bad.errors, 42);
  EXPECT_NE(bad.detail.find("(suspect: status:tko num_failures:3)"), std::string::npos)
      << bad.detail;
}

TEST(McrouterStatsTest, SuspectServerMissingFromServersIsAdded) {
  auto view = parse_mcrouter_stats({}, stat_fixture("mcrouter_suspect_servers_tko.txt"), {});
  ASSERT_TRUE(view.ok()) << view.error().message;
  ASSERT_EQ(view.value().servers.size(), 1u);
  EXPECT_TRUE(view.value().servers[0].ejected);
  EXPECT_FALSE(view.value().stats_time.has_value());
}

TEST(McrouterStatsTest, OlderWikiFormatWithIpv6Parses) {
  auto view = parse_mcrouter_stats(stat_fixture("mcrouter_servers_wiki_2014.txt"), {}, {});
  ASSERT_TRUE(view.ok()) << view.error().message;
  ASSERT_EQ(view.value().servers.size(), 1u);
  EXPECT_EQ(view.value().servers[0].address->to_string(), "[::1]:5001");
  EXPECT_EQ(view.value().servers[0].connections, 1);
  EXPECT_EQ(view.value().servers[0].errors, 2);
}

TEST(McrouterStatsTest, BrokenRepliesAreClearErrors) {
  auto malformed = parse_mcrouter_stats(stat_fixture("mcrouter_servers_malformed.txt"), {}, {});
  ASSERT_FALSE(malformed.ok());
  EXPECT_EQ(malformed.error().kind, ViewErrorKind::malformed);
  EXPECT_EQ(malformed.error().message,
            "server \"127.10.0.11:40001:ascii:plain:notcompressed-1000\": bad count in "
            "\"pending_reqs:lots\"");
  auto truncated = parse_stat_lines(fixture("mcrouter_servers_truncated.txt"));
  ASSERT_FALSE(truncated.ok());
  EXPECT_EQ(truncated.error().kind, ViewErrorKind::truncated);
  auto no_state = parse_mcrouter_stats({{"10.0.0.1:11211", "avg_latency_us:1.0"}}, {}, {});
  ASSERT_FALSE(no_state.ok());
  EXPECT_EQ(no_state.error().message, "server \"10.0.0.1:11211\" has no connection state");
  auto bad_suspect = parse_mcrouter_stats({}, {{"10.0.0.1:11211", "status:weird"}}, {});
  ASSERT_FALSE(bad_suspect.ok());
  auto bad_time = parse_mcrouter_stats({}, {}, {{"time", "soon"}});
  ASSERT_FALSE(bad_time.ok());
  EXPECT_EQ(bad_time.error().message, "mcrouter stats: bad time \"soon\"");
}

// ---- memcached proxy (measured on memcached 1.6.38; see the fixtures' README) ----

TEST(MemcachedProxyStatsTest, ABackendItCannotReachIsMarkedBadAndStillRouted) {
  // p2 of a lab whose config points b3 at its public address: `stats proxybe`
  // lists only b3, by its label, with the 2 worker threads that see it bad.
  const spec::ClusterSpec cluster = fixture_cluster();
  auto view = parse_memcached_proxy_stats(stat_fixture("memcached_proxy_stats.txt"),
                                          stat_fixture("memcached_proxybe_bad.txt"), cluster);
  ASSERT_TRUE(view.ok()) << view.error().message;
  EXPECT_FALSE(view.value().lists_servers);
  EXPECT_EQ(view.value().freshness, Freshness::live);
  ASSERT_TRUE(view.value().stats_time.has_value());
  EXPECT_EQ(std::chrono::system_clock::to_time_t(*view.value().stats_time), 1796095420);
  ASSERT_EQ(view.value().servers.size(), 3u);
  for (std::size_t b = 0; b < 2; ++b) {
    const ServerView& entry = view.value().servers[b];
    EXPECT_FALSE(entry.ejected || entry.connect_failing) << entry.name;
    EXPECT_FALSE(entry.connections.has_value());
    EXPECT_EQ(entry.detail, "not marked bad");
  }
  const ServerView& b3 = view.value().servers[2];
  EXPECT_EQ(b3.name, "b3");
  // Its keys fail with SERVER_ERROR: the proxy does not route around it.
  EXPECT_FALSE(b3.ejected);
  EXPECT_TRUE(b3.connect_failing);
  EXPECT_EQ(b3.failing_state, "marked bad by 2 of 2 worker threads");
  EXPECT_EQ(b3.detail, "bad_b3 2 (marked bad by 2 of 2 worker threads)");
}

TEST(MemcachedProxyStatsTest, HealthyDefaultAndUnknownLabels) {
  const spec::ClusterSpec cluster = fixture_cluster();
  auto healthy =
      parse_memcached_proxy_stats(stat_fixture("memcached_proxy_stats.txt"),
                                  stat_fixture("memcached_proxybe_healthy.txt"), cluster);
  ASSERT_TRUE(healthy.ok()) << healthy.error().message;
  ASSERT_EQ(healthy.value().servers.size(), 3u);
  for (const ServerView& entry : healthy.value().servers) {
    EXPECT_FALSE(entry.ejected || entry.connect_failing) << entry.name;
  }
  // routelib labels a backend written without one "host:port" (measured).
  auto by_address =
      parse_memcached_proxy_stats(stat_fixture("memcached_proxy_stats.txt"),
                                  stat_fixture("memcached_proxybe_default_labels.txt"), cluster);
  ASSERT_TRUE(by_address.ok()) << by_address.error().message;
  ASSERT_EQ(by_address.value().servers.size(), 3u);
  EXPECT_TRUE(by_address.value().servers[2].connect_failing);
  EXPECT_EQ(by_address.value().servers[2].detail,
            "bad_127.10.0.13:40003 2 (marked bad by 2 of 2 worker threads)");
  // A label the spec does not know is a backend the proxy has beyond it.
  auto stranger = parse_memcached_proxy_stats(stat_fixture("memcached_proxy_stats.txt"),
                                              {{"bad_b9", "1"}}, cluster);
  ASSERT_TRUE(stranger.ok()) << stranger.error().message;
  ASSERT_EQ(stranger.value().servers.size(), 4u);
  EXPECT_EQ(stranger.value().servers[3].name, "b9");
  EXPECT_EQ(stranger.value().servers[3].failing_state, "marked bad by 1 of 2 worker threads");
}

TEST(MemcachedProxyStatsTest, PlainMemcachedAndOddRepliesAreErrors) {
  // Debian's memcached 1.6.18, measured: no proxy counters at all.
  auto view =
      parse_memcached_proxy_stats(stat_fixture("memcached_plain_stats.txt"), {}, fixture_cluster());
  ASSERT_FALSE(view.ok());
  EXPECT_EQ(view.error().kind, ViewErrorKind::unsupported);
  EXPECT_EQ(view.error().message,
            "memcached stats have no proxy_backend_total: not running as a proxy");
  // `stats proxy` holds per-command counters, not the backends (measured).
  const StatList commands = stat_fixture("memcached_proxy_cmd_stats.txt");
  for (const auto& [name, value] : commands) {
    EXPECT_FALSE(name.starts_with("proxy_backend") || name.starts_with("bad_")) << name;
  }
  auto as_basic = parse_memcached_proxy_stats(commands, {}, fixture_cluster());
  ASSERT_FALSE(as_basic.ok());
  EXPECT_EQ(as_basic.error().kind, ViewErrorKind::unsupported);
  auto odd = parse_memcached_proxy_stats(stat_fixture("memcached_proxy_stats.txt"),
                                         {{"good_b1", "1"}}, fixture_cluster());
  ASSERT_FALSE(odd.ok());
  EXPECT_EQ(odd.error().message, "stats proxybe: unexpected \"good_b1\"");
  auto zero = parse_memcached_proxy_stats(stat_fixture("memcached_proxy_stats.txt"),
                                          {{"bad_b1", "0"}}, fixture_cluster());
  ASSERT_FALSE(zero.ok());
  EXPECT_EQ(zero.error().message, "stats proxybe: bad count \"0\"");
  StatList bad_threads = stat_fixture("memcached_proxy_stats.txt");
  for (auto& [name, value] : bad_threads) {
    if (name == "threads") value = "two";
  }
  auto threads = parse_memcached_proxy_stats(bad_threads, {}, fixture_cluster());
  ASSERT_FALSE(threads.ok());
  EXPECT_EQ(threads.error().message, "memcached stats: bad threads \"two\"");
}

TEST(MemcachedProxyStatsTest, TheAdapterReadsTheLiveProgram) {
  // memcached 1.6.38's proxy in a lab: what the fixtures above were taken from.
  testing::ScopedLab lab(3, 3, "lab", lab::LabProxyKind::memcached);
  const spec::ClusterSpec cluster = lab.spec();
  const ProxyAdapter& adapter = adapter_for(spec::ProxyKind::memcached_proxy);
  for (const spec::Proxy& proxy : cluster.proxies) {
    EXPECT_FALSE(proxy.stats.has_value()) << "stats are on the client port";
    auto view = adapter.read(proxy, cluster, cluster.timeouts.deadlines());
    ASSERT_TRUE(view.ok()) << proxy.name << ": " << view.error().message;
    ASSERT_EQ(view.value().servers.size(), 3u);
    for (const ServerView& entry : view.value().servers) {
      EXPECT_EQ(entry.detail, "not marked bad") << proxy.name << " " << entry.name;
    }
  }

  lab.inject({lab::FaultKind::eject, "p2", "b3", "", ""});
  for (const spec::Proxy& proxy : cluster.proxies) {
    auto view = adapter.read(proxy, cluster, cluster.timeouts.deadlines());
    ASSERT_TRUE(view.ok()) << proxy.name << ": " << view.error().message;
    const ServerView* b3 = server(view.value(), "b3");
    ASSERT_NE(b3, nullptr);
    EXPECT_EQ(b3->connect_failing, proxy.name == "p2") << proxy.name;
    EXPECT_FALSE(b3->ejected);
    if (proxy.name == "p2") {
      EXPECT_EQ(b3->detail, "bad_b3 2 (marked bad by 2 of 2 worker threads)");
    }
  }
  lab.heal();
  auto healed = adapter.read(cluster.proxies[1], cluster, cluster.timeouts.deadlines());
  ASSERT_TRUE(healed.ok()) << healed.error().message;
  EXPECT_FALSE(server(healed.value(), "b3")->connect_failing);
}

// ---- memcached stats conns ----

TEST(StatsConnsTest, MeasuredSampleHasListenerProxyAndTheAskingConnection) {
  auto entries = parse_stats_conns(fixture("memcached_stats_conns.txt"));
  ASSERT_TRUE(entries.ok()) << entries.error().message;
  ASSERT_EQ(entries.value().size(), 3u);
  EXPECT_EQ(entries.value()[0].state, "conn_listening");
  EXPECT_FALSE(entries.value()[0].is_tcp_client());
  EXPECT_TRUE(entries.value()[1].is_tcp_client());
  EXPECT_EQ(entries.value()[1].peer->to_string(), "127.0.0.1:60240");
  EXPECT_EQ(entries.value()[1].describe(), "127.0.0.1:60240 (conn_read, idle 2 s)");
  EXPECT_EQ(entries.value()[2].state, "conn_parse_cmd");
  EXPECT_EQ(entries.value()[2].peer->to_string(), "127.0.0.1:60254");
}

TEST(StatsConnsTest, OnlyTcpClientsCount) {
  auto entries = parse_stats_conns(fixture("memcached_stats_conns_mixed.txt"));
  ASSERT_TRUE(entries.ok()) << entries.error().message;
  ASSERT_EQ(entries.value().size(), 6u);
  std::vector<std::string> clients;
  for (const ConnEntry& entry : entries.value()) {
    if (entry.is_tcp_client()) clients.push_back(entry.peer->to_string());
  }
  EXPECT_EQ(clients, (std::vector<std::string>{"[::1]:51000", "10.0.0.7:40100"}));
}

TEST(StatsConnsTest, BrokenRepliesAreClearErrors) {
  auto truncated = parse_stats_conns(fixture("memcached_stats_conns_truncated.txt"));
  ASSERT_FALSE(truncated.ok());
  EXPECT_EQ(truncated.error().kind, ViewErrorKind::truncated);
  auto bad_key = parse_stats_conns("STAT pid 12\r\nEND\r\n");
  ASSERT_FALSE(bad_key.ok());
  EXPECT_EQ(bad_key.error().message, "stats conns: unexpected key \"pid\"");
  auto no_addr = parse_stats_conns("STAT 4:state conn_read\r\nEND\r\n");
  ASSERT_FALSE(no_addr.ok());
  EXPECT_EQ(no_addr.error().message, "stats conns: connection 4 has no addr");
}

TEST(StatsConnsTest, RealMemcachedListsOthersButNotUs) {
  testing::MemcachedProcess memcached;
  // Two other clients, one of which has talked.
  mc::Client talker(memcached.endpoint(), {});
  ASSERT_TRUE(talker.set("k", "v", 60s).ok());
  mc::Client other(memcached.endpoint(), {});
  ASSERT_TRUE(other.get("k").ok());
  auto peers = read_backend_peers(memcached.endpoint(), util::Deadlines{});
  ASSERT_TRUE(peers.ok()) << peers.error().message;
  EXPECT_TRUE(peers.value().own_found);
  EXPECT_EQ(peers.value().clients.size(), 2u);
  for (const ConnEntry& entry : peers.value().clients) {
    EXPECT_NE(*entry.peer, peers.value().own);
    EXPECT_NE(entry.state, "conn_listening");
  }
}

// ---- fetch deadlines ----

// A listening socket that accepts into the backlog and never answers.
class SilentServer {
 public:
  SilentServer() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address);
    ::listen(fd_, 16);
    socklen_t length = sizeof address;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length);
    endpoint_ = net::Endpoint{"127.0.0.1", ntohs(address.sin_port)};
  }
  ~SilentServer() { ::close(fd_); }
  const net::Endpoint& endpoint() const { return endpoint_; }

 private:
  int fd_ = -1;
  net::Endpoint endpoint_;
};

spec::Proxy twemproxy_at(const net::Endpoint& stats, const net::Endpoint& client) {
  spec::Proxy proxy;
  proxy.name = "p1";
  proxy.kind = spec::ProxyKind::twemproxy;
  proxy.client = client;
  proxy.stats = stats;
  return proxy;
}

// Proxies sharing a stats endpoint (the pools of one nutcracker process) are
// one group; the endpoint is compared as an address, per proxy kind.
TEST(StatsGroupsTest, ProxiesSharingAStatsEndpointAreOneGroup) {
  std::vector<spec::Proxy> proxies;
  const auto add = [&](std::optional<net::Endpoint> stats, spec::ProxyKind kind) {
    spec::Proxy proxy;
    proxy.name = "p" + std::to_string(proxies.size() + 1);
    proxy.kind = kind;
    proxy.client = {"127.0.0.1", static_cast<std::uint16_t>(30000 + proxies.size())};
    proxy.stats = std::move(stats);
    proxies.push_back(proxy);
  };
  const auto twemproxy = spec::ProxyKind::twemproxy;
  add(net::Endpoint{"127.0.0.1", 22222}, twemproxy);                  // 0
  add(net::Endpoint{"127.0.0.1", 22223}, twemproxy);                  // 1
  add(net::Endpoint{"127.0.0.1", 22222}, twemproxy);                  // 2
  add(std::nullopt, twemproxy);                                       // 3
  add(std::nullopt, twemproxy);                                       // 4
  add(net::Endpoint{"::1", 22222}, twemproxy);                        // 5
  add(net::Endpoint{"0:0::1", 22222}, twemproxy);                     // 6
  add(net::Endpoint{"127.0.0.1", 22222}, spec::ProxyKind::mcrouter);  // 7
  add(net::Endpoint{"127.0.0.1", 22222}, twemproxy);                  // 8
  EXPECT_EQ(group_by_stats_endpoint(proxies),
            (std::vector<std::vector<std::size_t>>{{0, 2, 8}, {1}, {3}, {4}, {5, 6}, {7}}));
  EXPECT_TRUE(group_by_stats_endpoint({}).empty());
}

TEST(ProxyFetchTest, RefusedStatsEndpointIsRefusedQuickly) {
  const net::Endpoint closed{"127.0.0.1", testing::free_port()};
  const auto start = std::chrono::steady_clock::now();
  auto view =
      adapter_for(spec::ProxyKind::twemproxy)
          .read(twemproxy_at(closed, closed), fixture_cluster(), util::Deadlines{250ms, 500ms});
  ASSERT_FALSE(view.ok());
  EXPECT_EQ(view.error().kind, ViewErrorKind::refused);
  EXPECT_EQ(view.error().message, "stats: " + closed.to_string() + ": connect refused");
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
}

TEST(ProxyFetchTest, SilentStatsEndpointTimesOutWithinItsDeadline) {
  SilentServer silent;
  const auto start = std::chrono::steady_clock::now();
  auto view = adapter_for(spec::ProxyKind::twemproxy)
                  .read(twemproxy_at(silent.endpoint(), silent.endpoint()), fixture_cluster(),
                        util::Deadlines{250ms, 400ms});
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(view.ok());
  EXPECT_EQ(view.error().kind, ViewErrorKind::timeout);
  EXPECT_GE(took, 390ms);
  EXPECT_LT(took, 1500ms);
  for (auto kind : {spec::ProxyKind::mcrouter, spec::ProxyKind::memcached_proxy}) {
    spec::Proxy proxy = twemproxy_at(silent.endpoint(), silent.endpoint());
    proxy.kind = kind;
    const auto begin = std::chrono::steady_clock::now();
    auto other = adapter_for(kind).read(proxy, fixture_cluster(), util::Deadlines{250ms, 400ms});
    ASSERT_FALSE(other.ok());
    EXPECT_EQ(other.error().kind, ViewErrorKind::timeout) << other.error().message;
    EXPECT_LT(std::chrono::steady_clock::now() - begin, 2s) << spec::to_string(kind);
  }
}

TEST(ProxyFetchTest, TwemproxyWithoutStatsEndpointIsNoEndpoint) {
  spec::Proxy proxy = twemproxy_at({"127.0.0.1", 1}, {"127.0.0.1", 1});
  proxy.stats.reset();
  auto view =
      adapter_for(spec::ProxyKind::twemproxy).read(proxy, fixture_cluster(), util::Deadlines{});
  ASSERT_FALSE(view.ok());
  EXPECT_EQ(view.error().kind, ViewErrorKind::no_endpoint);
  EXPECT_EQ(view.error().message, "the spec gives proxy p1 no stats endpoint");
}

TEST(ProxyFetchTest, MemcachedIsNotAMemcachedProxy) {
  testing::MemcachedProcess memcached;
  spec::Proxy proxy = twemproxy_at(memcached.endpoint(), memcached.endpoint());
  proxy.kind = spec::ProxyKind::memcached_proxy;
  auto view = adapter_for(proxy.kind).read(proxy, fixture_cluster(), util::Deadlines{});
  ASSERT_FALSE(view.ok());
  EXPECT_EQ(view.error().kind, ViewErrorKind::unsupported) << view.error().message;
}

TEST(TcpTest, ReadUntilCloseCapsTheReply) {
  testing::MemcachedProcess memcached;
  auto reply = net::exchange(
      memcached.endpoint(), "stats\r\n", [](std::string_view) { return false; }, {250ms, 500ms},
      64);
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.error().kind, net::TcpErrorKind::too_large);
  EXPECT_EQ(reply.error().message,
            memcached.endpoint().to_string() + ": reply larger than 64 bytes");
  auto invalid = net::read_until_close({"localhost", 80}, {});
  ASSERT_FALSE(invalid.ok());
  EXPECT_EQ(invalid.error().kind, net::TcpErrorKind::invalid);
}

}  // namespace
}  // namespace ringwatch::probes::connections
