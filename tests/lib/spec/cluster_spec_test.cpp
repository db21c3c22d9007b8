#include "lib/spec/cluster_spec.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "tests/support/json_patch.h"

namespace ringwatch::spec {
namespace {

// Two proxies, three backends (one v6), both kinds of DNS server.
constexpr char kExample[] = R"({
  "name": "lab",
  "proxies": [
    {"name": "p1", "kind": "twemproxy", "client": "127.10.1.1:22121", "stats": "127.10.1.1:22222",
     "pool": "objects", "source_addresses": ["127.10.1.1"], "dns_vantage": "lab-dns"},
    {"name": "p2", "kind": "mcrouter", "client": "127.10.1.2:22121"}
  ],
  "backends": [
    {"name": "b1", "address": "127.10.0.11", "port": 11211, "dns_name": "b1.lab.ringwatch.test",
     "expected_cidr": "127.10.0.0/16"},
    {"name": "b2", "address": "127.10.0.12", "port": 11211, "dns_name": "b2.lab.ringwatch.test",
     "expected_cidr": "127.10.0.0/16"},
    {"name": "b3", "address": "::1", "port": 11213, "dns_name": "b3.lab.ringwatch.test.",
     "expected_cidr": "::1/128"}
  ],
  "dns": {"servers": [{"name": "lab-dns", "address": "127.10.0.53:5353"},
                      {"name": "system", "system": true}]},
  "canary": {"key_prefix": "rw:", "ttl_seconds": 30, "value_size": 128, "keys_per_backend": 3,
             "coverage": "full", "proxies_per_round": 1},
  "timeouts": {"connect_ms": 100, "io_ms": 2000, "dns_ms": 500}
})";

constexpr char kMinimal[] = R"({
  "name": "tiny",
  "proxies": [{"name": "p1", "kind": "memcached-proxy", "client": "127.0.0.1:11311"}],
  "backends": [{"name": "b1", "address": "127.0.0.1", "port": 11211, "dns_name": "b1.test",
                "expected_cidr": "127.0.0.0/8"}]
})";

// The error message parse_cluster_spec throws for `text`, or "(accepted)".
std::string error_of(std::string_view text) {
  try {
    parse_cluster_spec(text, "cluster.json");
  } catch (const SpecError& e) {
    return e.what();
  }
  return "(accepted)";
}

using Patch = testing::JsonPatch;

// One edit to kExample: set the value at a JSON pointer, or erase it.
std::string patched(const std::vector<Patch>& patches) {
  return testing::patched_json(kExample, patches);
}

TEST(ClusterSpecTest, ParsesEveryField) {
  const auto spec = parse_cluster_spec(kExample, "cluster.json");
  EXPECT_EQ(spec.name, "lab");

  ASSERT_EQ(spec.proxies.size(), 2u);
  const auto& p1 = spec.proxies[0];
  EXPECT_EQ(p1.name, "p1");
  EXPECT_EQ(p1.kind, ProxyKind::twemproxy);
  EXPECT_EQ(p1.client, (net::Endpoint{"127.10.1.1", 22121}));
  EXPECT_EQ(p1.stats, (net::Endpoint{"127.10.1.1", 22222}));
  EXPECT_EQ(p1.pool, "objects");
  EXPECT_EQ(spec.pool_of(p1), "objects");
  ASSERT_EQ(p1.source_addresses.size(), 1u);
  EXPECT_EQ(p1.source_addresses[0].to_string(), "127.10.1.1");
  EXPECT_EQ(p1.dns_vantage, "lab-dns");
  const auto& p2 = spec.proxies[1];
  EXPECT_EQ(p2.kind, ProxyKind::mcrouter);
  EXPECT_EQ(p2.stats, std::nullopt);
  EXPECT_TRUE(p2.source_addresses.empty());
  EXPECT_EQ(p2.dns_vantage, std::nullopt);
  EXPECT_EQ(p2.pool, std::nullopt);
  EXPECT_EQ(spec.pool_of(p2), "lab");  // the cluster's name

  ASSERT_EQ(spec.backends.size(), 3u);
  const auto& b1 = spec.backends[0];
  EXPECT_EQ(b1.name, "b1");
  EXPECT_EQ(b1.address.to_string(), "127.10.0.11");
  EXPECT_EQ(b1.port, 11211);
  EXPECT_EQ(b1.dns_name, "b1.lab.ringwatch.test");
  EXPECT_EQ(b1.expected_cidr->to_string(), "127.10.0.0/16");
  EXPECT_EQ(b1.endpoint(), (net::Endpoint{"127.10.0.11", 11211}));
  EXPECT_EQ(spec.backends[2].endpoint().to_string(), "[::1]:11213");
  EXPECT_EQ(spec.backends[2].dns_name, "b3.lab.ringwatch.test.");

  ASSERT_EQ(spec.dns_servers.size(), 2u);
  EXPECT_EQ(spec.dns_servers[0].name, "lab-dns");
  EXPECT_EQ(spec.dns_servers[0].address, (net::Endpoint{"127.10.0.53", 5353}));
  EXPECT_EQ(spec.dns_servers[1].name, "system");
  EXPECT_EQ(spec.dns_servers[1].address, std::nullopt);

  EXPECT_EQ(spec.canary.key_prefix, "rw:");
  EXPECT_EQ(spec.canary.ttl, std::chrono::seconds(30));
  EXPECT_EQ(spec.canary.value_size, 128u);
  EXPECT_EQ(spec.canary.keys_per_backend, 3u);
  EXPECT_EQ(spec.canary.coverage, CanaryCoverage::full);
  EXPECT_EQ(spec.canary.proxies_per_round, 1u);
  EXPECT_EQ(spec.timeouts.connect, std::chrono::milliseconds(100));
  EXPECT_EQ(spec.timeouts.io, std::chrono::milliseconds(2000));
  EXPECT_EQ(spec.timeouts.dns, std::chrono::milliseconds(500));
}

TEST(ClusterSpecTest, AppliesDefaults) {
  const auto spec = parse_cluster_spec(kMinimal, "tiny.json");
  EXPECT_EQ(spec.proxies.at(0).kind, ProxyKind::memcached_proxy);
  EXPECT_TRUE(spec.dns_servers.empty());
  EXPECT_EQ(spec.canary, CanarySettings{});
  EXPECT_EQ(spec.canary.key_prefix, "ringwatch:");
  EXPECT_EQ(spec.canary.ttl, std::chrono::seconds(60));
  EXPECT_EQ(spec.canary.value_size, 64u);
  EXPECT_EQ(spec.canary.keys_per_backend, 2u);
  EXPECT_EQ(spec.canary.coverage, CanaryCoverage::linear);
  EXPECT_EQ(spec.canary.proxies_per_round, std::nullopt);
  EXPECT_EQ(spec.timeouts, Timeouts{});
  EXPECT_EQ(spec.timeouts.connect, std::chrono::milliseconds(250));
  EXPECT_EQ(spec.timeouts.io, std::chrono::milliseconds(1000));
  EXPECT_EQ(spec.timeouts.dns, std::chrono::milliseconds(1000));
}

TEST(ClusterSpecTest, PartialSectionsKeepTheOtherDefaults) {
  const auto spec = parse_cluster_spec(
      patched({{"/canary", R"({"ttl_seconds": 5})"}, {"/timeouts", R"({"io_ms": 42})"}}),
      "cluster.json");
  EXPECT_EQ(spec.canary.ttl, std::chrono::seconds(5));
  EXPECT_EQ(spec.canary.key_prefix, "ringwatch:");
  EXPECT_EQ(spec.canary.value_size, 64u);
  EXPECT_EQ(spec.timeouts.io, std::chrono::milliseconds(42));
  EXPECT_EQ(spec.timeouts.connect, std::chrono::milliseconds(250));
  EXPECT_TRUE(parse_cluster_spec(
                  patched({{"/dns", R"({"servers": []})"}, {"/proxies/0/dns_vantage", nullptr}}),
                  "cluster.json")
                  .dns_servers.empty());
}

// Most twemproxy configs name backends by address only: no dns_name, and then
// no expected_cidr either.
constexpr char kAddressesOnly[] = R"({
  "name": "eu1",
  "proxies": [{"name": "tw1", "kind": "twemproxy", "client": "10.0.1.1:22121"}],
  "backends": [{"name": "10.0.0.1-11211", "address": "10.0.0.1", "port": 11211},
               {"name": "mc-b", "address": "10.0.0.2", "port": 11211, "expected_cidr": "10.0.0.0/24"}]
})";

TEST(ClusterSpecTest, BackendsWithoutDnsNames) {
  const auto spec = parse_cluster_spec(kAddressesOnly, "cluster.json");
  ASSERT_EQ(spec.backends.size(), 2u);
  EXPECT_EQ(spec.backends[0].dns_name, std::nullopt);
  EXPECT_EQ(spec.backends[0].expected_cidr, std::nullopt);
  EXPECT_EQ(spec.backends[0].endpoint(), (net::Endpoint{"10.0.0.1", 11211}));
  // A range without a name still bounds the address.
  EXPECT_EQ(spec.backends[1].dns_name, std::nullopt);
  EXPECT_EQ(spec.backends[1].expected_cidr->to_string(), "10.0.0.0/24");
  EXPECT_EQ(
      error_of(std::string(kAddressesOnly)
                   .replace(std::string(kAddressesOnly).find("10.0.0.2"), 8, "10.0.9.2")),
      R"(cluster.json: /backends/1/address: expected an address inside expected_cidr 10.0.0.0/24, got "10.0.9.2")");
  const std::string json = to_json(spec);
  EXPECT_EQ(json.find("dns_name"), std::string::npos) << json;
  EXPECT_EQ(parse_cluster_spec(json, "round-trip.json"), spec);
}

TEST(ClusterSpecTest, RoundTrips) {
  for (const char* text : {kExample, kMinimal, kAddressesOnly}) {
    const auto spec = parse_cluster_spec(text, "cluster.json");
    const auto json = to_json(spec);
    EXPECT_EQ(parse_cluster_spec(json, "round-trip.json"), spec) << json;
    EXPECT_EQ(to_json(parse_cluster_spec(json, "round-trip.json")), json);
  }
}

TEST(ClusterSpecTest, RoundTripKeepsV6EndpointsBracketed) {
  const auto spec = parse_cluster_spec(patched({{"/proxies/1/client", R"("[::1]:22121")"},
                                                {"/proxies/1/stats", R"("[::1]:22222")"},
                                                {"/dns/servers/0/address", R"("[::1]:53")"}}),
                                       "cluster.json");
  EXPECT_EQ(spec.proxies[1].client, (net::Endpoint{"::1", 22121}));
  EXPECT_EQ(parse_cluster_spec(to_json(spec), "round-trip.json"), spec);
}

TEST(ClusterSpecTest, WritesEveryFieldExplicitly) {
  EXPECT_EQ(to_json(parse_cluster_spec(kMinimal, "tiny.json")), R"({
  "name": "tiny",
  "proxies": [
    {
      "name": "p1",
      "kind": "memcached-proxy",
      "client": "127.0.0.1:11311",
      "source_addresses": []
    }
  ],
  "backends": [
    {
      "name": "b1",
      "address": "127.0.0.1",
      "port": 11211,
      "dns_name": "b1.test",
      "expected_cidr": "127.0.0.0/8"
    }
  ],
  "dns": {
    "servers": []
  },
  "canary": {
    "key_prefix": "ringwatch:",
    "ttl_seconds": 60,
    "value_size": 64,
    "keys_per_backend": 2,
    "coverage": "linear"
  },
  "timeouts": {
    "connect_ms": 250,
    "io_ms": 1000,
    "dns_ms": 1000
  }
}
)");
}

TEST(ClusterSpecTest, WritesNormalisedCidr) {
  const auto spec = parse_cluster_spec(
      patched({{"/backends/0/expected_cidr", R"("127.10.3.4/16")"}}), "cluster.json");
  EXPECT_EQ(spec.backends[0].expected_cidr->to_string(), "127.10.0.0/16");
  EXPECT_NE(to_json(spec).find(R"("expected_cidr": "127.10.0.0/16")"), std::string::npos);
}

TEST(ClusterSpecTest, FindsProxiesAndBackendsByName) {
  const auto spec = parse_cluster_spec(kExample, "cluster.json");
  ASSERT_NE(spec.find_proxy("p2"), nullptr);
  EXPECT_EQ(spec.find_proxy("p2"), &spec.proxies[1]);
  EXPECT_EQ(spec.find_proxy("p3"), nullptr);
  EXPECT_EQ(spec.find_proxy("b1"), nullptr);
  EXPECT_EQ(spec.find_backend("b3"), &spec.backends[2]);
  EXPECT_EQ(spec.find_backend("p1"), nullptr);
}

TEST(ClusterSpecTest, ProxyKindNames) {
  EXPECT_STREQ(to_string(ProxyKind::twemproxy), "twemproxy");
  EXPECT_STREQ(to_string(ProxyKind::mcrouter), "mcrouter");
  EXPECT_STREQ(to_string(ProxyKind::memcached_proxy), "memcached-proxy");
  for (const auto kind : {ProxyKind::twemproxy, ProxyKind::mcrouter, ProxyKind::memcached_proxy}) {
    EXPECT_EQ(parse_proxy_kind(to_string(kind)), kind);
  }
  EXPECT_EQ(parse_proxy_kind("memcached_proxy"), std::nullopt);
  EXPECT_EQ(parse_proxy_kind("Twemproxy"), std::nullopt);
}

TEST(ClusterSpecTest, ErrorCarriesItsParts) {
  try {
    parse_cluster_spec(patched({{"/backends/2/port", "70000"}}), "cluster.json");
    FAIL() << "accepted";
  } catch (const SpecError& e) {
    EXPECT_EQ(e.file(), "cluster.json");
    EXPECT_EQ(e.pointer(), "/backends/2/port");
    EXPECT_EQ(e.expectation(), "expected an integer from 1 to 65535, got 70000");
    EXPECT_STREQ(e.what(),
                 "cluster.json: /backends/2/port: expected an integer from 1 to 65535, got 70000");
  }
}

TEST(ClusterSpecTest, DocumentedExampleParses) {
  // The first ```json block of docs/spec.md is the reference example.
  std::ifstream file(RINGWATCH_SOURCE_DIR "/docs/spec.md");
  ASSERT_TRUE(file) << "docs/spec.md";
  std::stringstream contents;
  contents << file.rdbuf();
  const std::string text = contents.str();
  const auto start = text.find("```json\n");
  ASSERT_NE(start, std::string::npos);
  const auto end = text.find("```", start + 8);
  ASSERT_NE(end, std::string::npos);
  const auto spec = parse_cluster_spec(text.substr(start + 8, end - start - 8), "docs/spec.md");
  EXPECT_EQ(spec.name, "lab");
  EXPECT_EQ(parse_cluster_spec(to_json(spec), "round-trip.json"), spec);
}

// --- Every documented rejection, word for word -----------------------------

template <class Case>
std::string case_name(const ::testing::TestParamInfo<Case>& param) {
  return param.param.name;
}

struct PatchCase {
  const char* name;
  std::vector<Patch> patches;
  const char* expected;
};

void PrintTo(const PatchCase& c, std::ostream* out) {
  *out << c.name;
}

class RejectsPatchedExample : public ::testing::TestWithParam<PatchCase> {};

TEST_P(RejectsPatchedExample, WithExactMessage) {
  EXPECT_EQ(error_of(patched(GetParam().patches)), GetParam().expected);
}

INSTANTIATE_TEST_SUITE_P(
    ClusterSpecTest, RejectsPatchedExample,
    ::testing::Values(
        // Wrong JSON types.
        PatchCase{"NameNotString",
                  {{"/name", "5"}},
                  "cluster.json: /name: expected a string, got a number"},
        PatchCase{"KindBoolean",
                  {{"/proxies/0/kind", "true"}},
                  "cluster.json: /proxies/0/kind: expected a string, got a boolean"},
        PatchCase{
            "PortString",
            {{"/backends/1/port", R"("11211")"}},
            "cluster.json: /backends/1/port: expected an integer from 1 to 65535, got a string"},
        PatchCase{"ProxiesObject",
                  {{"/proxies", "{}"}},
                  "cluster.json: /proxies: expected a non-empty array, got an object"},
        PatchCase{"BackendString",
                  {{"/backends/0", R"("b1")"}},
                  "cluster.json: /backends/0: expected an object, got a string"},
        PatchCase{"CanaryNull",
                  {{"/canary", "null"}},
                  "cluster.json: /canary: expected an object, got null"},
        PatchCase{"SourceAddressesString",
                  {{"/proxies/0/source_addresses", R"("127.10.1.1")"}},
                  "cluster.json: /proxies/0/source_addresses: expected an array, got a string"},
        PatchCase{"DnsServersObject",
                  {{"/dns/servers", "{}"}},
                  "cluster.json: /dns/servers: expected an array, got an object"},
        PatchCase{"StatsNull",
                  {{"/proxies/0/stats", "null"}},
                  "cluster.json: /proxies/0/stats: expected a string, got null"},
        // Empty required arrays.
        PatchCase{"NoProxies",
                  {{"/proxies", "[]"}},
                  "cluster.json: /proxies: expected a non-empty array, got []"},
        PatchCase{"NoBackends",
                  {{"/backends", "[]"}},
                  "cluster.json: /backends: expected a non-empty array, got []"},
        // Missing required fields.
        PatchCase{
            "MissingName", {{"/name", nullptr}}, R"(cluster.json: missing required field "name")"},
        PatchCase{"MissingBackends",
                  {{"/backends", nullptr}},
                  R"(cluster.json: missing required field "backends")"},
        PatchCase{"MissingClient",
                  {{"/proxies/0/client", nullptr}},
                  R"(cluster.json: /proxies/0: missing required field "client")"},
        PatchCase{"MissingKind",
                  {{"/proxies/1/kind", nullptr}},
                  R"(cluster.json: /proxies/1: missing required field "kind")"},
        PatchCase{"MissingCidr",
                  {{"/backends/2/expected_cidr", nullptr}},
                  R"(cluster.json: /backends/2: missing required field "expected_cidr")"},
        PatchCase{
            "CidrWithoutNameIsStillChecked",
            {{"/backends/0/dns_name", nullptr}, {"/backends/0/expected_cidr", R"("10/8")"}},
            R"(cluster.json: /backends/0/expected_cidr: expected a CIDR like 10.0.0.0/16, got "10/8")"},
        PatchCase{"MissingDnsServerName",
                  {{"/dns/servers/1/name", nullptr}},
                  R"(cluster.json: /dns/servers/1: missing required field "name")"},
        PatchCase{"MissingDnsServers",
                  {{"/dns/servers", nullptr}},
                  R"(cluster.json: /dns: missing required field "servers")"},
        // Unknown fields.
        PatchCase{
            "UnknownBackendField",
            {{"/backends/1/colour", R"("blue")"}},
            "cluster.json: /backends/1/colour: unknown field (expected one of: name, address, "
            "port, dns_name, expected_cidr)"},
        PatchCase{
            "UnknownTopLevelField",
            {{"/version", "1"}},
            "cluster.json: /version: unknown field (expected one of: name, proxies, backends, "
            "dns, canary, timeouts)"},
        PatchCase{"UnknownProxyField",
                  {{"/proxies/1/weight", "1"}},
                  "cluster.json: /proxies/1/weight: unknown field (expected one of: name, kind, "
                  "client, stats, pool, source_addresses, dns_vantage)"},
        PatchCase{
            "UnknownDnsServerField",
            {{"/dns/servers/0/port", "53"}},
            "cluster.json: /dns/servers/0/port: unknown field (expected one of: name, address, "
            "system)"},
        PatchCase{"UnknownDnsField",
                  {{"/dns/search", "[]"}},
                  "cluster.json: /dns/search: unknown field (expected one of: servers)"},
        PatchCase{"UnknownCanaryField",
                  {{"/canary/ttl", "5"}},
                  "cluster.json: /canary/ttl: unknown field (expected one of: key_prefix, "
                  "ttl_seconds, value_size, keys_per_backend, coverage, proxies_per_round)"},
        PatchCase{"UnknownFieldNameIsEscaped",
                  {{"/timeouts/io~1ms", "5"}},
                  "cluster.json: /timeouts/io~1ms: unknown field (expected one of: connect_ms, "
                  "io_ms, dns_ms)"},
        // Names.
        PatchCase{
            "NameWithSpace",
            {{"/name", R"("my lab")"}},
            R"(cluster.json: /name: expected a name of 1 to 64 characters from [A-Za-z0-9._-], got "my lab")"},
        PatchCase{
            "EmptyProxyName",
            {{"/proxies/0/name", R"("")"}},
            R"(cluster.json: /proxies/0/name: expected a name of 1 to 64 characters from [A-Za-z0-9._-], got "")"},
        PatchCase{
            "LongBackendName",
            {{"/backends/0/name",
              R"("b12345678901234567890123456789012345678901234567890123456789012345")"}},
            R"(cluster.json: /backends/0/name: expected a name of 1 to 64 characters from [A-Za-z0-9._-], got "b12345678901234567890123456789012345678901234567890123456789012345")"},
        PatchCase{
            "PoolNotAName",
            {{"/proxies/0/pool", R"("eu1 sessions")"}},
            R"(cluster.json: /proxies/0/pool: expected a name of 1 to 64 characters from [A-Za-z0-9._-], got "eu1 sessions")"},
        PatchCase{"PoolNotAString",
                  {{"/proxies/0/pool", "1"}},
                  "cluster.json: /proxies/0/pool: expected a string, got a number"},
        PatchCase{
            "DnsVantageNotAName",
            {{"/proxies/0/dns_vantage", R"("lab/dns")"}},
            R"(cluster.json: /proxies/0/dns_vantage: expected a name of 1 to 64 characters from [A-Za-z0-9._-], got "lab/dns")"},
        // Proxy kinds.
        PatchCase{
            "UnknownKind",
            {{"/proxies/1/kind", R"("envoy")"}},
            R"(cluster.json: /proxies/1/kind: expected "twemproxy", "mcrouter" or "memcached-proxy", got "envoy")"},
        // Ports.
        PatchCase{"PortTooLarge",
                  {{"/backends/2/port", "70000"}},
                  "cluster.json: /backends/2/port: expected an integer from 1 to 65535, got 70000"},
        PatchCase{"PortZero",
                  {{"/backends/0/port", "0"}},
                  "cluster.json: /backends/0/port: expected an integer from 1 to 65535, got 0"},
        PatchCase{"PortNegative",
                  {{"/backends/0/port", "-1"}},
                  "cluster.json: /backends/0/port: expected an integer from 1 to 65535, got -1"},
        PatchCase{
            "PortFraction",
            {{"/backends/0/port", "11211.5"}},
            "cluster.json: /backends/0/port: expected an integer from 1 to 65535, got 11211.5"},
        PatchCase{
            "PortExponent",
            {{"/backends/0/port", "1e3"}},
            "cluster.json: /backends/0/port: expected an integer from 1 to 65535, got 1000.0"},
        PatchCase{"PortHuge",
                  {{"/backends/0/port", "18446744073709551615"}},
                  "cluster.json: /backends/0/port: expected an integer from 1 to 65535, got "
                  "18446744073709551615"},
        // Addresses and endpoints.
        PatchCase{
            "HostnameInsteadOfAddress",
            {{"/backends/0/address", R"("b1.lab.ringwatch.test")"}},
            R"(cluster.json: /backends/0/address: expected an IP address literal like 10.0.0.1 or ::1 (names are not allowed), got "b1.lab.ringwatch.test")"},
        PatchCase{
            "AddressWithPort",
            {{"/backends/0/address", R"("127.10.0.11:11211")"}},
            R"(cluster.json: /backends/0/address: expected an IP address literal like 10.0.0.1 or ::1 (names are not allowed), got "127.10.0.11:11211")"},
        PatchCase{
            "HostnameSourceAddress",
            {{"/proxies/0/source_addresses/0", R"("p1.lab")"}},
            R"(cluster.json: /proxies/0/source_addresses/0: expected an IP address literal like 10.0.0.1 or ::1 (names are not allowed), got "p1.lab")"},
        PatchCase{
            "HostnameInClient",
            {{"/proxies/0/client", R"("localhost:22121")"}},
            R"(cluster.json: /proxies/0/client: expected an IP address literal and port like 10.0.0.1:11211 or [::1]:11211, got "localhost:22121")"},
        PatchCase{
            "ClientPortZero",
            {{"/proxies/1/client", R"("127.10.1.2:0")"}},
            R"(cluster.json: /proxies/1/client: expected an IP address literal and port like 10.0.0.1:11211 or [::1]:11211, got "127.10.1.2:0")"},
        PatchCase{
            "StatsWithoutPort",
            {{"/proxies/0/stats", R"("127.10.1.1")"}},
            R"(cluster.json: /proxies/0/stats: expected an IP address literal and port like 10.0.0.1:11211 or [::1]:11211, got "127.10.1.1")"},
        PatchCase{
            "UnbracketedV6DnsServer",
            {{"/dns/servers/0/address", R"("::1:53")"}},
            R"(cluster.json: /dns/servers/0/address: expected an IP address literal and port like 10.0.0.1:11211 or [::1]:11211, got "::1:53")"},
        // CIDRs and containment.
        PatchCase{
            "CidrPrefixTooLong",
            {{"/backends/0/expected_cidr", R"("10.0.0.0/33")"}},
            R"(cluster.json: /backends/0/expected_cidr: expected a CIDR like 10.0.0.0/16, got "10.0.0.0/33")"},
        PatchCase{
            "CidrWithoutPrefix",
            {{"/backends/1/expected_cidr", R"("127.10.0.0")"}},
            R"(cluster.json: /backends/1/expected_cidr: expected a CIDR like 10.0.0.0/16, got "127.10.0.0")"},
        PatchCase{
            "AddressOutsideCidr",
            {{"/backends/1/address", R"("127.200.0.12")"}},
            R"(cluster.json: /backends/1/address: expected an address inside expected_cidr 127.10.0.0/16, got "127.200.0.12")"},
        PatchCase{
            "AddressOfTheOtherFamily",
            {{"/backends/2/address", R"("127.10.0.13")"}},
            R"(cluster.json: /backends/2/address: expected an address inside expected_cidr ::1/128, got "127.10.0.13")"},
        PatchCase{
            "AddressOutsideNormalisedCidr",
            {{"/backends/0/expected_cidr", R"("127.10.0.11/24")"},
             {"/backends/0/address", R"("127.10.1.11")"}},
            R"(cluster.json: /backends/0/address: expected an address inside expected_cidr 127.10.0.0/24, got "127.10.1.11")"},
        // DNS names.
        PatchCase{
            "DnsNameEmptyLabel",
            {{"/backends/0/dns_name", R"("b1..lab")"}},
            R"(cluster.json: /backends/0/dns_name: expected a DNS name like node1.example.internal, got "b1..lab")"},
        PatchCase{
            "DnsNameUnderscore",
            {{"/backends/0/dns_name", R"("b1_lab.test")"}},
            R"(cluster.json: /backends/0/dns_name: expected a DNS name like node1.example.internal, got "b1_lab.test")"},
        PatchCase{
            "DnsNameLeadingHyphen",
            {{"/backends/0/dns_name", R"("-b1.lab")"}},
            R"(cluster.json: /backends/0/dns_name: expected a DNS name like node1.example.internal, got "-b1.lab")"},
        PatchCase{
            "DnsNameIsAnAddress",
            {{"/backends/0/dns_name", R"("127.10.0.11")"}},
            R"(cluster.json: /backends/0/dns_name: expected a DNS name like node1.example.internal, got "127.10.0.11")"},
        // Duplicates.
        PatchCase{
            "DuplicateBackendName",
            {{"/backends/1/name", R"("b1")"}},
            R"(cluster.json: /backends/1/name: duplicate backend name "b1" (first at /backends/0/name))"},
        PatchCase{
            "DuplicateProxyName",
            {{"/proxies/1/name", R"("p1")"}},
            R"(cluster.json: /proxies/1/name: duplicate proxy name "p1" (first at /proxies/0/name))"},
        PatchCase{
            "DuplicateDnsServerName",
            {{"/dns/servers/1/name", R"("lab-dns")"}},
            R"(cluster.json: /dns/servers/1/name: duplicate dns server name "lab-dns" (first at /dns/servers/0/name))"},
        PatchCase{
            "DuplicateBackendEndpoint",
            {{"/backends/1/address", R"("127.10.0.11")"}},
            R"(cluster.json: /backends/1: duplicate backend endpoint "127.10.0.11:11211" (first at /backends/0))"},
        PatchCase{
            "DuplicateBackendEndpointSpelledDifferently",
            {{"/backends/1/address", R"("0:0::1")"},
             {"/backends/1/port", "11213"},
             {"/backends/1/expected_cidr", R"("::/0")"}},
            R"(cluster.json: /backends/2: duplicate backend endpoint "[::1]:11213" (first at /backends/1))"},
        PatchCase{
            "DuplicateProxyClient",
            {{"/proxies/1/client", R"("127.10.1.1:22121")"}},
            R"(cluster.json: /proxies/1/client: duplicate proxy client endpoint "127.10.1.1:22121" (first at /proxies/0/client))"},
        PatchCase{
            "DuplicateV6ProxyClient",
            {{"/proxies/0/client", R"("[::1]:22121")"}, {"/proxies/1/client", R"("[0::1]:22121")"}},
            R"(cluster.json: /proxies/1/client: duplicate proxy client endpoint "[::1]:22121" (first at /proxies/0/client))"},
        // DNS servers.
        PatchCase{
            "DnsServerWithBoth",
            {{"/dns/servers/1/address", R"("127.0.0.53:53")"}},
            R"(cluster.json: /dns/servers/1: expected exactly one of "address" and "system": true, got both)"},
        PatchCase{
            "DnsServerWithNeither",
            {{"/dns/servers/0/address", nullptr}},
            R"(cluster.json: /dns/servers/0: expected exactly one of "address" and "system": true, got neither)"},
        PatchCase{"DnsServerSystemFalse",
                  {{"/dns/servers/1/system", "false"}},
                  "cluster.json: /dns/servers/1/system: expected true, got false"},
        PatchCase{"DnsServerSystemString",
                  {{"/dns/servers/1/system", R"("yes")"}},
                  "cluster.json: /dns/servers/1/system: expected true, got a string"},
        PatchCase{
            "UnknownDnsVantage",
            {{"/proxies/0/dns_vantage", R"("p9-resolver")"}},
            R"(cluster.json: /proxies/0/dns_vantage: expected the name of a dns server (one of: lab-dns, system), got "p9-resolver")"},
        PatchCase{
            "DnsVantageWithoutDnsServers",
            {{"/dns", nullptr}},
            R"(cluster.json: /proxies/0/dns_vantage: expected the name of a dns server (none are defined in /dns/servers), got "lab-dns")"},
        // Canary settings.
        PatchCase{"TtlTooLong",
                  {{"/canary/ttl_seconds", "3600"}},
                  "cluster.json: /canary/ttl_seconds: expected an integer from 1 to 300, got 3600"},
        PatchCase{"TtlZero",
                  {{"/canary/ttl_seconds", "0"}},
                  "cluster.json: /canary/ttl_seconds: expected an integer from 1 to 300, got 0"},
        PatchCase{"ValueTooSmall",
                  {{"/canary/value_size", "15"}},
                  "cluster.json: /canary/value_size: expected an integer from 16 to 65536, got 15"},
        PatchCase{
            "ValueTooLarge",
            {{"/canary/value_size", "65537"}},
            "cluster.json: /canary/value_size: expected an integer from 16 to 65536, got 65537"},
        PatchCase{
            "TooManyKeys",
            {{"/canary/keys_per_backend", "65"}},
            "cluster.json: /canary/keys_per_backend: expected an integer from 1 to 64, got 65"},
        PatchCase{"UnknownCoverage",
                  {{"/canary/coverage", R"("sampled")"}},
                  R"(cluster.json: /canary/coverage: expected "linear" or "full", got "sampled")"},
        PatchCase{
            "NoProxiesPerRound",
            {{"/canary/proxies_per_round", "0"}},
            "cluster.json: /canary/proxies_per_round: expected an integer from 1 to 100000, got 0"},
        PatchCase{
            "KeyPrefixWithSpace",
            {{"/canary/key_prefix", R"("ring watch:")"}},
            R"(cluster.json: /canary/key_prefix: expected 1 to 64 printable ASCII characters without spaces, got "ring watch:")"},
        PatchCase{
            "KeyPrefixWithControlCharacter",
            {{"/canary/key_prefix", R"("rw\t")"}},
            R"(cluster.json: /canary/key_prefix: expected 1 to 64 printable ASCII characters without spaces, got "rw\t")"},
        PatchCase{"KeyPrefixNonAscii",
                  {{"/canary/key_prefix", R"("rw\u00e9")"}},
                  "cluster.json: /canary/key_prefix: expected 1 to 64 printable ASCII characters "
                  "without spaces, got \"rw\xc3\xa9\""},
        PatchCase{
            "KeyPrefixEmpty",
            {{"/canary/key_prefix", R"("")"}},
            R"(cluster.json: /canary/key_prefix: expected 1 to 64 printable ASCII characters without spaces, got "")"},
        // Timeouts.
        PatchCase{"ConnectTimeoutZero",
                  {{"/timeouts/connect_ms", "0"}},
                  "cluster.json: /timeouts/connect_ms: expected an integer from 1 to 60000, got 0"},
        PatchCase{"IoTimeoutTooLong",
                  {{"/timeouts/io_ms", "60001"}},
                  "cluster.json: /timeouts/io_ms: expected an integer from 1 to 60000, got 60001"},
        PatchCase{
            "DnsTimeoutString",
            {{"/timeouts/dns_ms", R"("1s")"}},
            "cluster.json: /timeouts/dns_ms: expected an integer from 1 to 60000, got a string"}),
    case_name<PatchCase>);

struct TextCase {
  const char* name;
  std::string text;
  const char* expected;
};

void PrintTo(const TextCase& c, std::ostream* out) {
  *out << c.name;
}

class RejectsText : public ::testing::TestWithParam<TextCase> {};

TEST_P(RejectsText, WithExactMessage) {
  EXPECT_EQ(error_of(GetParam().text), GetParam().expected);
}

INSTANTIATE_TEST_SUITE_P(
    ClusterSpecTest, RejectsText,
    ::testing::Values(
        TextCase{"MissingComma", R"({"name": "lab" "proxies": []})",
                 "cluster.json: invalid JSON at line 1, column 16: Missing a comma or '}' after an "
                 "object member."},
        TextCase{"Empty", "",
                 "cluster.json: invalid JSON at line 1, column 1: The document is empty."},
        TextCase{"TrailingGarbage", R"({"name": "x"} {})",
                 "cluster.json: invalid JSON at line 1, column 15: The document root must not be "
                 "followed by other values."},
        TextCase{"InvalidUtf8", "{\"name\": \"l\xff\"}",
                 "cluster.json: invalid JSON at line 1, column 12: Invalid encoding in string."},
        // Refused at parse time, so nothing that walks or writes the document
        // recurses deeper than 32 levels (issue 12, point 2).
        TextCase{"DeeplyNested",
                 R"({"x": )" + std::string(100000, '[') + std::string(100000, ']') + "}",
                 "cluster.json: /x/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0: "
                 "expected at most 32 levels of nesting, got an array at level 33"},
        TextCase{"RootArray", "[]", "cluster.json: expected an object, got an array"},
        TextCase{"DuplicateField", R"({"name": "a", "name": "b"})",
                 R"(cluster.json: duplicate field "name")"},
        TextCase{"DuplicateNestedField",
                 std::string(kMinimal).replace(std::string(kMinimal).find(R"("port": 11211)"), 13,
                                               R"("port": 11211, "port": 11212)"),
                 R"(cluster.json: /backends/0: duplicate field "port")"}),
    case_name<TextCase>);

// --- Files ------------------------------------------------------------------

class LoadClusterSpecTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/ringwatch-spec-test-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string write(const std::string& name, const std::string& contents) {
    const auto path = dir_ / name;
    std::ofstream(path) << contents;
    return path.string();
  }
  std::filesystem::path dir_;
};

TEST_F(LoadClusterSpecTest, LoadsAFile) {
  const auto path = write("cluster.json", kExample);
  EXPECT_EQ(load_cluster_spec(path), parse_cluster_spec(kExample, "cluster.json"));
}

TEST_F(LoadClusterSpecTest, NamesTheFileInErrors) {
  const auto path = write("broken.json", patched({{"/backends/2/port", "70000"}}));
  try {
    load_cluster_spec(path);
    FAIL() << "accepted";
  } catch (const SpecError& e) {
    EXPECT_EQ(std::string(e.what()),
              path + ": /backends/2/port: expected an integer from 1 to 65535, got 70000");
    EXPECT_EQ(e.file(), path);
  }
}

TEST_F(LoadClusterSpecTest, MissingFile) {
  const auto path = (dir_ / "missing.json").string();
  try {
    load_cluster_spec(path);
    FAIL() << "accepted";
  } catch (const SpecError& e) {
    EXPECT_EQ(std::string(e.what()), path + ": cannot read file: No such file or directory");
    EXPECT_EQ(e.pointer(), "");
  }
}

TEST_F(LoadClusterSpecTest, Directory) {
  try {
    load_cluster_spec(dir_.string());
    FAIL() << "accepted";
  } catch (const SpecError& e) {
    EXPECT_EQ(std::string(e.what()), dir_.string() + ": cannot read file: Is a directory");
  }
}

}  // namespace
}  // namespace ringwatch::spec
