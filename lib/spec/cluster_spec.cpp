#include "lib/spec/cluster_spec.h"

#include "lib/spec/json_cursor.h"

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <initializer_list>
#include <map>
#include <memory>
#include <system_error>
#include <utility>

namespace ringwatch::spec {
namespace {

using rapidjson::Value;

using json::Cursor;
using json::FirstSeen;
using json::Object;
using json::quoted;

// --- Field vocabulary -----------------------------------------------------

constexpr std::string_view kAddressExpectation =
    "an IP address literal like 10.0.0.1 or ::1 (names are not allowed)";
constexpr std::string_view kEndpointExpectation =
    "an IP address literal and port like 10.0.0.1:11211 or [::1]:11211";
constexpr std::string_view kCidrExpectation = "a CIDR like 10.0.0.0/16";
constexpr std::string_view kDnsNameExpectation = "a DNS name like node1.example.internal";
constexpr std::string_view kKindExpectation = R"("twemproxy", "mcrouter" or "memcached-proxy")";
constexpr std::string_view kKeyPrefixExpectation =
    "1 to 64 printable ASCII characters without spaces";
constexpr std::string_view kCoverageExpectation = R"("linear" or "full")";
constexpr std::int64_t kMaxTimeoutMs = 60000;

bool is_alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

std::optional<std::string> parse_name(std::string_view text) {
  if (!is_name(text)) return std::nullopt;
  return std::string(text);
}

// A host name (RFC 1123 labels), optionally with the root dot; the last label
// may not be all digits so that an address literal is never taken for a name.
std::optional<std::string> parse_dns_name(std::string_view text) {
  std::string_view name = text;
  if (name.ends_with('.')) name.remove_suffix(1);
  if (name.empty() || name.size() > 253) return std::nullopt;
  std::string_view label;
  for (std::size_t start = 0; start != std::string_view::npos;) {
    const auto dot = name.find('.', start);
    label = name.substr(start, dot == std::string_view::npos ? name.npos : dot - start);
    start = dot == std::string_view::npos ? dot : dot + 1;
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-' ||
        !std::all_of(label.begin(), label.end(), [](char c) { return is_alnum(c) || c == '-'; })) {
      return std::nullopt;
    }
  }
  if (std::all_of(label.begin(), label.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  return std::string(text);
}

std::optional<std::string> parse_key_prefix(std::string_view text) {
  const bool ok = !text.empty() && text.size() <= 64 &&
                  std::all_of(text.begin(), text.end(), [](char c) { return c > ' ' && c < 0x7f; });
  if (!ok) return std::nullopt;
  return std::string(text);
}

// Endpoints compare by address, not by spelling: "[::1]:53" == "[0::1]:53".
std::string endpoint_key(const net::Endpoint& endpoint) {
  return net::Endpoint{net::IpAddress::parse(endpoint.host)->to_string(), endpoint.port}
      .to_string();
}

std::string read_name(const Cursor& cursor) {
  return cursor.string_as(kNameExpectation, parse_name);
}

net::IpAddress read_address(const Cursor& cursor) {
  return cursor.string_as(kAddressExpectation, net::IpAddress::parse);
}

net::Endpoint read_endpoint(const Cursor& cursor) {
  return cursor.string_as(kEndpointExpectation, net::Endpoint::parse);
}

// --- The document ---------------------------------------------------------

struct Checks {
  FirstSeen proxy_names{"proxy name"};
  FirstSeen proxy_clients{"proxy client endpoint"};
  FirstSeen backend_names{"backend name"};
  FirstSeen backend_endpoints{"backend endpoint"};
  FirstSeen dns_server_names{"dns server name"};
  std::vector<Cursor> dns_vantages;  // resolved once all dns servers are known
};

Proxy read_proxy(const Cursor& cursor, Checks& checks) {
  const auto fields =
      cursor.object({"name", "kind", "client", "stats", "pool", "source_addresses", "dns_vantage"});
  Proxy proxy;
  const auto name = fields.required("name");
  proxy.name = read_name(name);
  checks.proxy_names.add(name, proxy.name);
  proxy.kind = fields.required("kind").string_as(kKindExpectation, parse_proxy_kind);
  const auto client = fields.required("client");
  proxy.client = read_endpoint(client);
  checks.proxy_clients.add(client, endpoint_key(proxy.client));
  if (const auto stats = fields.optional("stats")) proxy.stats = read_endpoint(*stats);
  if (const auto pool = fields.optional("pool")) proxy.pool = read_name(*pool);
  if (const auto sources = fields.optional("source_addresses")) {
    for (const auto& source : sources->elements(false)) {
      proxy.source_addresses.push_back(read_address(source));
    }
  }
  if (const auto vantage = fields.optional("dns_vantage")) {
    proxy.dns_vantage = read_name(*vantage);
    checks.dns_vantages.push_back(*vantage);
  }
  return proxy;
}

Backend read_backend(const Cursor& cursor, Checks& checks) {
  const auto fields = cursor.object({"name", "address", "port", "dns_name", "expected_cidr"});
  Backend backend;
  const auto name = fields.required("name");
  backend.name = read_name(name);
  checks.backend_names.add(name, backend.name);
  const auto address = fields.required("address");
  backend.address = read_address(address);
  backend.port = static_cast<std::uint16_t>(fields.required("port").integer(1, 65535));
  if (const auto dns_name = fields.optional("dns_name")) {
    backend.dns_name = dns_name->string_as(kDnsNameExpectation, parse_dns_name);
  }
  // The range DNS answers must lie in: required with a name, optional without.
  const auto cidr = backend.dns_name ? std::optional(fields.required("expected_cidr"))
                                     : fields.optional("expected_cidr");
  if (cidr) backend.expected_cidr = cidr->string_as(kCidrExpectation, net::Cidr::parse);
  if (backend.expected_cidr && !backend.expected_cidr->contains(backend.address)) {
    address.wrong_value("an address inside expected_cidr " + backend.expected_cidr->to_string());
  }
  checks.backend_endpoints.add(cursor, backend.endpoint().to_string());
  return backend;
}

DnsServer read_dns_server(const Cursor& cursor, Checks& checks) {
  const auto fields = cursor.object({"name", "address", "system"});
  DnsServer server;
  const auto name = fields.required("name");
  server.name = read_name(name);
  checks.dns_server_names.add(name, server.name);
  const auto address = fields.optional("address");
  const auto system = fields.optional("system");
  if (address.has_value() == system.has_value()) {
    cursor.fail(std::string(R"(expected exactly one of "address" and "system": true, got )") +
                (address ? "both" : "neither"));
  }
  if (address) server.address = read_endpoint(*address);
  if (system) system->expect_true();
  return server;
}

CanarySettings read_canary(const Cursor& cursor) {
  const auto fields = cursor.object({"key_prefix", "ttl_seconds", "value_size", "keys_per_backend",
                                     "coverage", "proxies_per_round"});
  CanarySettings canary;
  if (const auto c = fields.optional("key_prefix")) {
    canary.key_prefix = c->string_as(kKeyPrefixExpectation, parse_key_prefix);
  }
  if (const auto c = fields.optional("ttl_seconds"))
    canary.ttl = std::chrono::seconds(c->integer(1, 300));
  if (const auto c = fields.optional("value_size")) {
    canary.value_size = static_cast<std::size_t>(c->integer(16, 65536));
  }
  if (const auto c = fields.optional("keys_per_backend")) {
    canary.keys_per_backend = static_cast<std::size_t>(c->integer(1, 64));
  }
  if (const auto c = fields.optional("coverage")) {
    canary.coverage = c->string_as(kCoverageExpectation, parse_canary_coverage);
  }
  if (const auto c = fields.optional("proxies_per_round")) {
    canary.proxies_per_round = static_cast<std::size_t>(c->integer(1, 100000));
  }
  return canary;
}

Timeouts read_timeouts(const Cursor& cursor) {
  const auto fields = cursor.object({"connect_ms", "io_ms", "dns_ms"});
  Timeouts timeouts;
  const auto read_ms = [&](std::string_view name, std::chrono::milliseconds& out) {
    if (const auto c = fields.optional(name))
      out = std::chrono::milliseconds(c->integer(1, kMaxTimeoutMs));
  };
  read_ms("connect_ms", timeouts.connect);
  read_ms("io_ms", timeouts.io);
  read_ms("dns_ms", timeouts.dns);
  return timeouts;
}

ClusterSpec read_cluster(const Cursor& root) {
  const auto fields = root.object({"name", "proxies", "backends", "dns", "canary", "timeouts"});
  ClusterSpec spec;
  Checks checks;
  spec.name = read_name(fields.required("name"));
  for (const auto& item : fields.required("proxies").elements(true)) {
    spec.proxies.push_back(read_proxy(item, checks));
  }
  for (const auto& item : fields.required("backends").elements(true)) {
    spec.backends.push_back(read_backend(item, checks));
  }
  if (const auto dns = fields.optional("dns")) {
    for (const auto& item : dns->object({"servers"}).required("servers").elements(false)) {
      spec.dns_servers.push_back(read_dns_server(item, checks));
    }
  }
  if (const auto canary = fields.optional("canary")) spec.canary = read_canary(*canary);
  if (const auto timeouts = fields.optional("timeouts")) spec.timeouts = read_timeouts(*timeouts);

  for (const auto& vantage : checks.dns_vantages) {
    const std::string_view name = vantage.string();
    const bool known = std::any_of(spec.dns_servers.begin(), spec.dns_servers.end(),
                                   [&](const DnsServer& s) { return s.name == name; });
    if (known) continue;
    std::string names;
    for (const auto& server : spec.dns_servers) names += (names.empty() ? "" : ", ") + server.name;
    vantage.wrong_value(names.empty()
                            ? "the name of a dns server (none are defined in /dns/servers)"
                            : "the name of a dns server (one of: " + names + ")");
  }
  return spec;
}

std::string format_error(const std::string& file, const std::string& pointer,
                         const std::string& expectation) {
  return pointer.empty() ? file + ": " + expectation : file + ": " + pointer + ": " + expectation;
}

}  // namespace

bool is_name(std::string_view text) {
  return !text.empty() && text.size() <= 64 && std::all_of(text.begin(), text.end(), [](char c) {
    return is_alnum(c) || c == '.' || c == '_' || c == '-';
  });
}

const char* to_string(ProxyKind kind) {
  switch (kind) {
    case ProxyKind::twemproxy:
      return "twemproxy";
    case ProxyKind::mcrouter:
      return "mcrouter";
    case ProxyKind::memcached_proxy:
      return "memcached-proxy";
  }
  return "unknown";
}

std::optional<ProxyKind> parse_proxy_kind(std::string_view text) {
  for (const auto kind : {ProxyKind::twemproxy, ProxyKind::mcrouter, ProxyKind::memcached_proxy}) {
    if (text == to_string(kind)) return kind;
  }
  return std::nullopt;
}

const char* to_string(CanaryCoverage coverage) {
  switch (coverage) {
    case CanaryCoverage::linear:
      return "linear";
    case CanaryCoverage::full:
      return "full";
  }
  return "unknown";
}

std::optional<CanaryCoverage> parse_canary_coverage(std::string_view text) {
  for (const auto coverage : {CanaryCoverage::linear, CanaryCoverage::full}) {
    if (text == to_string(coverage)) return coverage;
  }
  return std::nullopt;
}

const Proxy* ClusterSpec::find_proxy(std::string_view proxy_name) const {
  const auto it = std::find_if(proxies.begin(), proxies.end(),
                               [&](const Proxy& p) { return p.name == proxy_name; });
  return it == proxies.end() ? nullptr : &*it;
}

const Backend* ClusterSpec::find_backend(std::string_view backend_name) const {
  const auto it = std::find_if(backends.begin(), backends.end(),
                               [&](const Backend& b) { return b.name == backend_name; });
  return it == backends.end() ? nullptr : &*it;
}

SpecError::SpecError(std::string file, std::string pointer, std::string expectation)
    : std::runtime_error(format_error(file, pointer, expectation)),
      file_(std::move(file)),
      pointer_(std::move(pointer)),
      expectation_(std::move(expectation)) {}

ClusterSpec parse_cluster_spec(std::string_view json_text, const std::string& source_name) {
  rapidjson::Document document;
  json::parse_document(document, json_text, source_name);
  return read_cluster(Cursor(source_name, document, ""));
}

ClusterSpec load_cluster_spec(const std::string& path) {
  return parse_cluster_spec(json::read_file(path), path);
}

std::string to_json(const ClusterSpec& spec) {
  rapidjson::StringBuffer buffer;
  rapidjson::PrettyWriter<rapidjson::StringBuffer> w(buffer);
  w.SetIndent(' ', 2);
  const auto field = [&w](const char* key, const std::string& value) {
    w.Key(key);
    w.String(value);
  };
  const auto number = [&w](const char* key, std::int64_t value) {
    w.Key(key);
    w.Int64(value);
  };

  w.StartObject();
  field("name", spec.name);

  w.Key("proxies");
  w.StartArray();
  for (const auto& proxy : spec.proxies) {
    w.StartObject();
    field("name", proxy.name);
    field("kind", to_string(proxy.kind));
    field("client", proxy.client.to_string());
    if (proxy.stats) field("stats", proxy.stats->to_string());
    if (proxy.pool) field("pool", *proxy.pool);
    w.Key("source_addresses");
    w.StartArray();
    for (const auto& source : proxy.source_addresses) w.String(source.to_string());
    w.EndArray();
    if (proxy.dns_vantage) field("dns_vantage", *proxy.dns_vantage);
    w.EndObject();
  }
  w.EndArray();

  w.Key("backends");
  w.StartArray();
  for (const auto& backend : spec.backends) {
    w.StartObject();
    field("name", backend.name);
    field("address", backend.address.to_string());
    number("port", backend.port);
    if (backend.dns_name) field("dns_name", *backend.dns_name);
    if (backend.expected_cidr) field("expected_cidr", backend.expected_cidr->to_string());
    w.EndObject();
  }
  w.EndArray();

  w.Key("dns");
  w.StartObject();
  w.Key("servers");
  w.StartArray();
  for (const auto& server : spec.dns_servers) {
    w.StartObject();
    field("name", server.name);
    if (server.address) {
      field("address", server.address->to_string());
    } else {
      w.Key("system");
      w.Bool(true);
    }
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();

  w.Key("canary");
  w.StartObject();
  field("key_prefix", spec.canary.key_prefix);
  number("ttl_seconds", spec.canary.ttl.count());
  number("value_size", static_cast<std::int64_t>(spec.canary.value_size));
  number("keys_per_backend", static_cast<std::int64_t>(spec.canary.keys_per_backend));
  field("coverage", to_string(spec.canary.coverage));
  if (spec.canary.proxies_per_round) {
    number("proxies_per_round", static_cast<std::int64_t>(*spec.canary.proxies_per_round));
  }
  w.EndObject();

  w.Key("timeouts");
  w.StartObject();
  number("connect_ms", spec.timeouts.connect.count());
  number("io_ms", spec.timeouts.io.count());
  number("dns_ms", spec.timeouts.dns.count());
  w.EndObject();

  w.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize()) + "\n";
}

}  // namespace ringwatch::spec
