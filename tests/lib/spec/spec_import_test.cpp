// `ringwatch spec import`'s library: specs from hand-written nutcracker and
// mcrouter configs (names and no names, several pools, weights), what the
// proxies disagree on, and every documented error, word for word
// (docs/spec.md, "Importing"). The real programs are in
// tests/tools/cli/spec_import_cli_test.cpp.

#include "lib/spec/import/spec_import.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace ringwatch::spec::import {
namespace {

class SpecImportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "ringwatch-import-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    std::filesystem::current_path(dir_);  // errors name files as given: relative
  }
  void TearDown() override {
    std::filesystem::current_path(std::filesystem::temp_directory_path());
    std::filesystem::remove_all(dir_);
  }
  static void write(const std::string& name, const std::string& text) {
    std::ofstream(name) << text;
  }
  static Source twemproxy(const std::string& text) {
    return parse_source(ProxyKind::twemproxy, text);
  }
  static Source mcrouter(const std::string& text) {
    return parse_source(ProxyKind::mcrouter, text);
  }
  // The import's error message, or "(imported)".
  static std::string error_of(const std::vector<Source>& sources,
                              const std::optional<std::string>& name = std::nullopt) {
    try {
      import_spec(sources, name);
    } catch (const std::runtime_error& error) {
      return error.what();
    }
    return "(imported)";
  }

  std::filesystem::path dir_;
};

// The way most nutcracker.yml files are written: servers by IP, no names.
constexpr char kUnnamed[] = R"(sessions:
  listen: 10.0.1.1:22121
  hash: fnv1a_64
  distribution: ketama
  auto_eject_hosts: true
  servers:
    - 10.0.0.11:11211:1
    - 10.0.0.12:11211:1
    - 10.0.0.13:11300:1
)";

TEST_F(SpecImportTest, UnnamedServersAreNamedAfterTheirAddressAndPort) {
  write("tw1.yml", kUnnamed);
  const Imported imported = import_spec({twemproxy("tw1=tw1.yml")}, std::nullopt);
  const ClusterSpec& spec = imported.spec;
  EXPECT_EQ(spec.name, "sessions");  // the pool's name
  ASSERT_EQ(spec.proxies.size(), 1u);
  EXPECT_EQ(spec.proxies[0].name, "tw1");
  EXPECT_EQ(spec.proxies[0].kind, ProxyKind::twemproxy);
  EXPECT_EQ(spec.proxies[0].client, (net::Endpoint{"10.0.1.1", 22121}));
  EXPECT_EQ(spec.proxies[0].stats, (net::Endpoint{"10.0.1.1", 22222}));
  EXPECT_EQ(spec.proxies[0].pool, "sessions");
  ASSERT_EQ(spec.backends.size(), 3u);
  EXPECT_EQ(spec.backends[0].name, "10.0.0.11-11211");
  EXPECT_EQ(spec.backends[2].name, "10.0.0.13-11300");
  EXPECT_EQ(spec.backends[2].endpoint(), (net::Endpoint{"10.0.0.13", 11300}));
  for (const Backend& backend : spec.backends) {
    EXPECT_EQ(backend.dns_name, std::nullopt);
    EXPECT_EQ(backend.expected_cidr, std::nullopt);
  }
  EXPECT_TRUE(spec.dns_servers.empty());
  EXPECT_TRUE(imported.disagreements.empty());
  EXPECT_EQ(parse_cluster_spec(to_json(spec), "round-trip.json"), spec);
}

TEST_F(SpecImportTest, NamedServersKeepTheirNamesAndOptionsOverrideTheConfig) {
  write("tw1.yml", R"(# comments are fine
alpha:
  listen: 0.0.0.0:22121
  servers:
    - 10.0.0.11:11211:1 mc-a
    - "10.0.0.12:11211:1 mc-b"
    - '[fd00::5]:11211:1'
)");
  const Imported imported = import_spec(
      {twemproxy("tw1=tw1.yml,client=10.0.1.1:22121,stats=10.0.2.1:9999,pool=alpha")}, "eu1");
  const ClusterSpec& spec = imported.spec;
  EXPECT_EQ(spec.name, "eu1");
  EXPECT_EQ(spec.proxies[0].client, (net::Endpoint{"10.0.1.1", 22121}));
  EXPECT_EQ(spec.proxies[0].stats, (net::Endpoint{"10.0.2.1", 9999}));
  EXPECT_EQ(spec.proxies[0].pool, "alpha");
  ASSERT_EQ(spec.backends.size(), 3u);
  EXPECT_EQ(spec.backends[0].name, "mc-a");
  EXPECT_EQ(spec.backends[1].name, "mc-b");
  EXPECT_EQ(spec.backends[2].name, "fd00--5-11211");
  EXPECT_EQ(spec.backends[2].endpoint().to_string(), "[fd00::5]:11211");
}

// Several pools per file: pool=, the only pool, or the one named like --name.
constexpr char kTwoPools[] = R"(objects:
  listen: 10.0.1.1:22122
  servers:
    - 10.0.0.1:11211:1
sessions:
  listen: 10.0.1.1:22121
  servers:
    - 10.0.0.11:11211:1 mc-a
)";

TEST_F(SpecImportTest, SeveralPoolsChooseByPoolOptionOrByTheClustersName) {
  write("tw1.yml", kTwoPools);
  EXPECT_EQ(
      import_spec({twemproxy("tw1=tw1.yml,pool=objects")}, std::nullopt).spec.backends.at(0).name,
      "10.0.0.1-11211");
  const ClusterSpec by_name = import_spec({twemproxy("tw1=tw1.yml")}, "sessions").spec;
  EXPECT_EQ(by_name.proxies[0].pool, "sessions");
  EXPECT_EQ(by_name.proxies[0].client, (net::Endpoint{"10.0.1.1", 22121}));
  // A cluster named differently from the pool it is: the spec says which pool.
  const ClusterSpec renamed = import_spec({twemproxy("tw1=tw1.yml,pool=sessions")}, "eu1").spec;
  EXPECT_EQ(renamed.name, "eu1");
  EXPECT_EQ(renamed.proxies[0].pool, "sessions");
  EXPECT_EQ(error_of({twemproxy("tw1=tw1.yml")}, "eu1"),
            "tw1.yml: 2 pools (objects, sessions): say which with pool=POOL");
}

TEST_F(SpecImportTest, EveryBackendOnceAndWhatTheProxiesDisagreeOn) {
  write("tw1.yml", R"(sessions:
  listen: 10.0.1.1:22121
  hash: fnv1a_64
  distribution: ketama
  servers:
    - 10.0.0.11:11211:1 mc-a
    - 10.0.0.12:11211:1 mc-b
    - 10.0.0.13:11211:1 mc-c
)");
  write("tw2.yml", R"(sessions:
  listen: 10.0.1.2:22121
  hash: fnv1a_64
  distribution: ketama
  servers:
    - 10.0.0.11:11211:1 mc-a
    - 10.0.0.12:11211:2 mc-b
    - 10.0.0.13:11211:1 mc-c
    - 10.0.0.14:11211:1 mc-d
)");
  write("tw3.yml", R"(sessions:
  listen: 10.0.1.3:22121
  hash: murmur
  distribution: modula
  servers:
    - 10.0.0.11:11211:1
    - 10.0.0.12:11211:1 mc-b
    - 10.0.0.19:11211:1 mc-c
    - 10.0.0.11:11211:1
)");
  const Imported imported = import_spec(
      {twemproxy("tw1=tw1.yml"), twemproxy("tw2=tw2.yml"), twemproxy("tw3=tw3.yml")}, std::nullopt);
  std::vector<std::string> names;
  for (const Backend& backend : imported.spec.backends) names.push_back(backend.name);
  EXPECT_EQ(names, (std::vector<std::string>{"mc-a", "mc-b", "mc-c", "mc-d", "10.0.0.19-11211"}));
  EXPECT_EQ(imported.disagreements,
            (std::vector<std::string>{
                "name mc-c is 10.0.0.13:11211 and, at tw3 (tw3.yml:8), 10.0.0.19:11211: the "
                "second is imported as 10.0.0.19-11211",
                "backend mc-a (10.0.0.11:11211) is named mc-a at tw1 and tw2, unnamed at tw3",
                "tw3 lists backend mc-a (10.0.0.11:11211) 2 times (tw3.yml:6, tw3.yml:9)",
                "backend mc-b (10.0.0.12:11211) has weight 1 at tw1 and tw3, weight 2 at tw2",
                "backend mc-c (10.0.0.13:11211) is listed by tw1 and tw2, not by tw3",
                "backend mc-d (10.0.0.14:11211) is listed by tw2, not by tw1 and tw3",
                "backend 10.0.0.19-11211 (10.0.0.19:11211) is listed by tw3, not by tw1 and tw2",
                "hash differs: fnv1a_64 at tw1 and tw2, murmur at tw3",
                "distribution differs: ketama at tw1 and tw2, modula at tw3",
            }));
}

constexpr char kMcrouter[] = R"({
  // mcrouter allows comments
  "pools": {
    "sessions": {"servers": ["10.0.0.11:11211", "10.0.0.12:11211:ascii", "[fd00::5]:11211",]},
    "other": {"servers": ["10.9.9.9:11211"]}
  },
  "route": {"type": "PrefixSelectorRoute",
            "wildcard": {"type": "PoolRoute", "pool": "sessions",
                         "hash": {"hash_func": "WeightedCh3", "weights": [1, 0.25]}}}
})";

TEST_F(SpecImportTest, McrouterPoolsServersAndWeights) {
  write("mc.json", kMcrouter);
  const Imported imported =
      import_spec({mcrouter("m1=mc.json,client=10.0.1.9:5000,pool=sessions")}, std::nullopt);
  const ClusterSpec& spec = imported.spec;
  EXPECT_EQ(spec.name, "sessions");
  EXPECT_EQ(spec.proxies[0].kind, ProxyKind::mcrouter);
  EXPECT_EQ(spec.proxies[0].client, (net::Endpoint{"10.0.1.9", 5000}));
  EXPECT_EQ(spec.proxies[0].stats, std::nullopt);
  std::vector<std::string> names;
  for (const Backend& backend : spec.backends) names.push_back(backend.name);
  EXPECT_EQ(names,
            (std::vector<std::string>{"10.0.0.11-11211", "10.0.0.12-11211", "fd00--5-11211"}));

  // A second mcrouter with its weights in the older pool-level form.
  write("mc2.json", R"({"pools": {"sessions": {"servers": ["10.0.0.11:11211", "10.0.0.12:11211",
    "[fd00::5]:11211"], "hash": "wch3", "hash_weights": [1, 1, 1]}}, "route": "PoolRoute|sessions"})");
  const Imported two = import_spec({mcrouter("m1=mc.json,client=10.0.1.9:5000,pool=sessions"),
                                    mcrouter("m2=mc2.json,client=10.0.1.10:5000")},
                                   std::nullopt);
  EXPECT_EQ(two.disagreements,
            (std::vector<std::string>{
                "backend 10.0.0.12-11211 (10.0.0.12:11211) has weight 0.25 at m1, weight 1 at m2",
                "backend fd00--5-11211 ([fd00::5]:11211) has weight 0.5 at m1, weight 1 at m2",
                "hash differs: WeightedCh3 at m1, wch3 at m2",
            }));
}

TEST_F(SpecImportTest, TwemproxyAndMcrouterInOneCluster) {
  write("tw1.yml", kUnnamed);
  write("mc.json", R"({"pools": {"sessions": {"servers": ["10.0.0.11:11211", "10.0.0.12:11211",
    "10.0.0.13:11300"]}}, "route": "PoolRoute|sessions"})");
  const Imported imported = import_spec(
      {twemproxy("tw1=tw1.yml"), mcrouter("m1=mc.json,client=10.0.1.9:5000")}, std::nullopt);
  EXPECT_EQ(imported.spec.backends.size(), 3u);
  // mcrouter names no server and has no distribution: only the hash differs.
  EXPECT_EQ(imported.disagreements,
            (std::vector<std::string>{"hash differs: fnv1a_64 at tw1, Ch3 at m1"}));
}

// ---- Every documented error, word for word ----------------------------------

struct YamlCase {
  const char* name;
  const char* yaml;
  const char* source;  // after "tw1=tw1.yml"
  const char* expected;
};

void PrintTo(const YamlCase& c, std::ostream* out) {
  *out << c.name;
}

class RejectsNutcracker : public SpecImportTest, public ::testing::WithParamInterface<YamlCase> {};

TEST_P(RejectsNutcracker, WithExactMessage) {
  write("tw1.yml", GetParam().yaml);
  EXPECT_EQ(error_of({twemproxy(std::string("tw1=tw1.yml") + GetParam().source)}),
            GetParam().expected);
}

INSTANTIATE_TEST_SUITE_P(
    SpecImportTest, RejectsNutcracker,
    ::testing::Values(
        YamlCase{"InvalidYaml", "a:\n  listen: [10.0.1.1:1\n", "",
                 "tw1.yml:3: invalid YAML: end of sequence flow not found"},
        YamlCase{"NotAMapping", "- 10.0.0.1:11211:1\n", "",
                 "tw1.yml:1: expected a mapping of pool names to pools, got a sequence"},
        YamlCase{"Empty", "", "",
                 "tw1.yml: expected a mapping of pool names to pools, got an empty value"},
        YamlCase{"NoPools", "{}\n", "", "tw1.yml: expected at least one pool, got none"},
        YamlCase{"NoSuchPool", kTwoPools, ",pool=cache",
                 R"(tw1.yml: no pool named "cache" (objects, sessions))"},
        YamlCase{"SeveralPools", kTwoPools, "",
                 "tw1.yml: 2 pools (objects, sessions): say which with pool=POOL"},
        YamlCase{"PoolNotAMapping", "a: 5\n", "",
                 R"(tw1.yml:1: pool "a": expected a mapping, got a scalar)"},
        YamlCase{"MissingListen", "a:\n  servers:\n    - 10.0.0.1:11211:1\n", "",
                 R"(tw1.yml:1: pool "a": missing "listen")"},
        YamlCase{"MissingServers", "a:\n  listen: 10.0.1.1:22121\n", "",
                 R"(tw1.yml:1: pool "a": missing "servers")"},
        YamlCase{"HashNotAScalar",
                 "a:\n  listen: 10.0.1.1:22121\n  hash: [md5]\n  servers:\n    - "
                 "10.0.0.1:11211:1\n",
                 "", "tw1.yml:3: hash: expected a scalar, got a sequence"},
        YamlCase{
            "ListenUnixSocket",
            "a:\n  listen: /var/run/nutcracker.sock 0666\n  servers:\n    - "
            "10.0.0.1:11211:1\n",
            "",
            R"(tw1.yml:2: listen: expected an IP address and port like 10.0.0.1:22121, got "/var/run/nutcracker.sock 0666")"},
        YamlCase{
            "ListenHostName", "a:\n  listen: cache1:22121\n  servers:\n    - 10.0.0.1:11211:1\n",
            "",
            R"(tw1.yml:2: listen: expected an IP address and port like 10.0.0.1:22121, got "cache1:22121")"},
        YamlCase{"ListenWildcard",
                 "a:\n  listen: 0.0.0.0:22121\n  servers:\n    - 10.0.0.1:11211:1\n", "",
                 "tw1.yml:2: listen: 0.0.0.0:22121 is a wildcard address: give the address "
                 "clients use with client=ADDR"},
        YamlCase{"ServersEmpty", "a:\n  listen: 10.0.1.1:22121\n  servers: []\n", "",
                 "tw1.yml:3: servers: expected a non-empty sequence of servers, got []"},
        YamlCase{"ServersMapping",
                 "a:\n  listen: 10.0.1.1:22121\n  servers:\n    b1: 10.0.0.1:11211:1\n", "",
                 "tw1.yml:4: servers: expected a non-empty sequence of servers, got a mapping"},
        YamlCase{
            "ServerWithoutWeight",
            "a:\n  listen: 10.0.1.1:22121\n  servers:\n    - 10.0.0.1:11211\n", "",
            R"(tw1.yml:4: expected a server like "10.0.0.1:11211:1 name" (host:port:weight, then an optional name), got "10.0.0.1:11211")"},
        YamlCase{
            "ServerUnixSocket",
            "a:\n  listen: 10.0.1.1:22121\n  servers:\n    - /tmp/mc.sock:1 b1\n", "",
            R"(tw1.yml:4: expected a server like "10.0.0.1:11211:1 name" (host:port:weight, then an optional name), got "/tmp/mc.sock:1 b1")"},
        YamlCase{
            "ServerNotAScalar",
            "a:\n  listen: 10.0.1.1:22121\n  servers:\n    - [10.0.0.1, 11211]\n", "",
            R"(tw1.yml:4: expected a server like "10.0.0.1:11211:1 name" (host:port:weight, then an optional name), got a sequence)"},
        YamlCase{
            "ServerHostName",
            "a:\n  listen: 10.0.1.1:22121\n  servers:\n    - cache1.internal:11211:1\n", "",
            R"(tw1.yml:4: server "cache1.internal:11211:1": expected an IP address literal like 10.0.0.1 or ::1 as its host (names are not allowed), got "cache1.internal")"},
        YamlCase{
            "ServerNameNotAName",
            "a:\n  listen: 10.0.1.1:22121\n  servers:\n    - 10.0.0.1:11211:1 cache/1\n", "",
            R"(tw1.yml:4: server "10.0.0.1:11211:1 cache/1": expected a name of 1 to 64 characters from [A-Za-z0-9._-], got "cache/1")"},
        YamlCase{
            "PoolNameNotAName",
            "eu1 sessions:\n  listen: 10.0.1.1:22121\n  servers:\n    - 10.0.0.1:11211:1\n", "",
            R"(tw1.yml: pool name: expected a name of 1 to 64 characters from [A-Za-z0-9._-], got "eu1 sessions")"}),
    [](const auto& param) { return std::string(param.param.name); });

struct JsonCase {
  const char* name;
  const char* json;
  const char* expected;
};

void PrintTo(const JsonCase& c, std::ostream* out) {
  *out << c.name;
}

class RejectsMcrouter : public SpecImportTest, public ::testing::WithParamInterface<JsonCase> {};

TEST_P(RejectsMcrouter, WithExactMessage) {
  write("mc.json", GetParam().json);
  EXPECT_EQ(error_of({mcrouter("m1=mc.json,client=10.0.1.9:5000")}), GetParam().expected);
}

INSTANTIATE_TEST_SUITE_P(
    SpecImportTest, RejectsMcrouter,
    ::testing::Values(
        JsonCase{
            "InvalidJson", R"({"pools": {} )",
            "mc.json: invalid JSON at line 1, column 14: Missing a comma or '}' after an object "
            "member."},
        JsonCase{"NotAnObject", "[]", "mc.json: expected an object, got an array"},
        JsonCase{"MissingPools", R"({"route": "PoolRoute|A"})",
                 R"(mc.json: missing required field "pools")"},
        JsonCase{
            "PoolsImported", R"x({"pools": "@import(pools.json)"})x",
            R"x(mc.json: /pools: expected an object of pools (macros and @import are not expanded), got "@import(pools.json)")x"},
        JsonCase{"PoolsArray", R"({"pools": []})",
                 "mc.json: /pools: expected an object of pools, got an array"},
        JsonCase{"NoPools", R"({"pools": {}})",
                 "mc.json: /pools: expected at least one pool, got none"},
        JsonCase{"SeveralPools", R"({"pools": {"A": {"servers": []}, "B": {"servers": []}}})",
                 "mc.json: /pools: 2 pools (A, B): say which with pool=POOL"},
        JsonCase{"PoolNotAnObject", R"({"pools": {"A": ["10.0.0.1:11211"]}})",
                 "mc.json: /pools/A: expected an object, got an array"},
        JsonCase{"MissingServers", R"({"pools": {"A": {"protocol": "ascii"}}})",
                 R"(mc.json: /pools/A: missing required field "servers")"},
        JsonCase{"ServersEmpty", R"({"pools": {"A": {"servers": []}}})",
                 "mc.json: /pools/A/servers: expected a non-empty array, got []"},
        JsonCase{"ServersString", R"({"pools": {"A": {"servers": "10.0.0.1:11211"}}})",
                 "mc.json: /pools/A/servers: expected a non-empty array, got a string"},
        JsonCase{
            "ServerHostName",
            R"({"pools": {"A": {"servers": ["10.0.0.1:11211", "memcached123.somedomain:4000"]}}})",
            R"(mc.json: /pools/A/servers/1: expected a server "host:port" with an IP address literal host like 10.0.0.1:11211 or [::1]:11211 (names are not allowed), got "memcached123.somedomain:4000")"},
        JsonCase{
            "ServerWithoutPort", R"({"pools": {"A": {"servers": ["10.0.0.1"]}}})",
            R"(mc.json: /pools/A/servers/0: expected a server "host:port" with an IP address literal host like 10.0.0.1:11211 or [::1]:11211 (names are not allowed), got "10.0.0.1")"},
        JsonCase{"ServerNumber", R"({"pools": {"A": {"servers": [11211]}}})",
                 "mc.json: /pools/A/servers/0: expected a string, got a number"}),
    [](const auto& param) { return std::string(param.param.name); });

TEST_F(SpecImportTest, RejectsWhatOnlyTheMergeSees) {
  write("tw1.yml", kUnnamed);
  write("tw2.yml", kTwoPools);
  EXPECT_EQ(error_of({twemproxy("tw1=missing.yml")}),
            "missing.yml: cannot read file: No such file or directory");
  EXPECT_EQ(error_of({twemproxy("tw1=tw1.yml"), twemproxy("tw2=tw1.yml")}),
            "tw1.yml: tw2's client address 10.0.1.1:22121 is tw1's too: give each proxy its own "
            "with client=ADDR");
  EXPECT_EQ(error_of({twemproxy("tw1=tw1.yml"), twemproxy("tw2=tw2.yml,pool=objects")}),
            "the proxies' pools are sessions at tw1, objects at tw2: give the cluster's name "
            "with --name");
  EXPECT_EQ(error_of({twemproxy("tw1=tw1.yml")}, "eu 1"),
            R"(--name: expected a name of 1 to 64 characters from [A-Za-z0-9._-], got "eu 1")");
  EXPECT_EQ(error_of({twemproxy("tw1=tw1.yml"), twemproxy("tw1=tw2.yml")}),
            R"(proxy name "tw1" given twice)");
  EXPECT_EQ(error_of({}), "no proxy to import: give --twemproxy or --mcrouter");
}

TEST(ParseSourceTest, ReadsEveryOptionAndRejectsWithExactMessages) {
  const Source source = parse_source(ProxyKind::twemproxy,
                                     "tw1=/etc/nc.yml,client=[::1]:22121,stats=10.0.0.1:1,pool=a");
  EXPECT_EQ(source.proxy, "tw1");
  EXPECT_EQ(source.config, "/etc/nc.yml");
  EXPECT_EQ(source.client, (net::Endpoint{"::1", 22121}));
  EXPECT_EQ(source.stats, (net::Endpoint{"10.0.0.1", 1}));
  EXPECT_EQ(source.pool, "a");
  const auto error_of = [](ProxyKind kind, const std::string& text) -> std::string {
    try {
      parse_source(kind, text);
    } catch (const std::invalid_argument& error) {
      return error.what();
    }
    return "(accepted)";
  };
  const auto tw = ProxyKind::twemproxy;
  EXPECT_EQ(error_of(tw, "tw1.yml"),
            R"(expected NAME=CONFIG[,client=ADDR][,stats=ADDR][,pool=POOL], got "tw1.yml")");
  EXPECT_EQ(error_of(tw, "tw1="),
            R"(expected NAME=CONFIG[,client=ADDR][,stats=ADDR][,pool=POOL], got "tw1=")");
  EXPECT_EQ(error_of(tw, "tw 1=a.yml"),
            R"(proxy name: expected a name of 1 to 64 characters from [A-Za-z0-9._-], got "tw 1")");
  EXPECT_EQ(
      error_of(tw, "tw1=a.yml,stats=localhost:22222"),
      R"(stats: expected an IP address literal and port like 10.0.0.1:11211 or [::1]:11211, got "localhost:22222")");
  EXPECT_EQ(
      error_of(tw, "tw1=a.yml,client=10.0.0.1"),
      R"(client: expected an IP address literal and port like 10.0.0.1:11211 or [::1]:11211, got "10.0.0.1")");
  EXPECT_EQ(error_of(tw, "tw1=a.yml,pool=a b"),
            R"(pool: expected a name of 1 to 64 characters from [A-Za-z0-9._-], got "a b")");
  EXPECT_EQ(error_of(tw, "tw1=a.yml,pool=a,pool=b"), "pool= given twice");
  EXPECT_EQ(
      error_of(tw, "tw1=a.yml,weight=2"),
      R"(unknown option "weight=2" (expected NAME=CONFIG[,client=ADDR][,stats=ADDR][,pool=POOL]))");
  EXPECT_EQ(error_of(ProxyKind::mcrouter, "m1=mc.json"),
            "client=ADDR is required for mcrouter (its port is on its command line, not in its "
            "config)");
}

}  // namespace
}  // namespace ringwatch::spec::import
