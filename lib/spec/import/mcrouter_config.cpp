// mcrouter JSON configs, written from mcrouter's documentation (the wiki's
// "Config Files", "Pools" and "List of Route Handles"): no mcrouter binary
// runs here. Errors go through json::Cursor, so they read like a spec's.

#include <rapidjson/document.h>

#include <string>
#include <string_view>
#include <vector>

#include "lib/spec/import/proxy_config.h"
#include "lib/spec/json_cursor.h"

namespace ringwatch::spec::import {
namespace {

using rapidjson::Value;

constexpr std::string_view kServerExpectation =
    "a server \"host:port\" with an IP address literal host like 10.0.0.1:11211 or [::1]:11211 "
    "(names are not allowed)";
// Route handles nest; a config deeper than this is not searched for the pool's hash.
constexpr int kMaxRouteDepth = 64;

// "10.0.0.1:11211", or with mcrouter's optional ":protocol:..." after the port.
std::optional<net::Endpoint> server_endpoint(std::string_view text) {
  std::size_t port_start = 0;
  if (text.starts_with('[')) {
    port_start = text.find("]:");
    if (port_start == std::string_view::npos) return std::nullopt;
    port_start += 2;
  } else {
    port_start = text.find(':');
    if (port_start == std::string_view::npos) return std::nullopt;
    ++port_start;
  }
  const std::size_t rest = text.find(':', port_start);
  auto endpoint = net::Endpoint::parse(text.substr(0, rest));
  if (endpoint) endpoint->host = net::IpAddress::parse(endpoint->host)->to_string();
  return endpoint;
}

std::string_view string_member(const Value& object, const char* name) {
  const auto found = object.FindMember(name);
  if (found == object.MemberEnd() || !found->value.IsString()) return {};
  return {found->value.GetString(), found->value.GetStringLength()};
}

// How one pool hashes: "Ch3" (mcrouter's default), "WeightedCh3", "Crc32"...
// with the salt when one is set, and the weights per server when given.
struct Hashing {
  std::string hash = "Ch3";
  std::vector<std::string> weights;
};

void read_weights(const Value& list, Hashing& hashing) {
  if (!list.IsArray()) return;
  hashing.weights.clear();
  for (const Value& weight : list.GetArray()) hashing.weights.push_back(json::render_value(weight));
}

// A route's "hash": a function name, or {"hash_func", "weights", "salt"}.
void read_route_hash(const Value& hash, Hashing& hashing) {
  if (hash.IsString()) {
    hashing.hash = hash.GetString();
    return;
  }
  if (!hash.IsObject()) return;
  const std::string_view function = string_member(hash, "hash_func");
  hashing.hash = function.empty() ? "Ch3" : std::string(function);
  const std::string_view salt = string_member(hash, "salt");
  if (!salt.empty()) hashing.hash += " salt=" + std::string(salt);
  const auto weights = hash.FindMember("weights");
  if (weights != hash.MemberEnd()) read_weights(weights->value, hashing);
}

// Every PoolRoute for `pool` anywhere in the routes sets the pool's hashing.
void find_pool_routes(const Value& value, const std::string& pool, Hashing& hashing, int depth) {
  if (depth > kMaxRouteDepth) return;
  if (value.IsArray()) {
    for (const Value& item : value.GetArray()) find_pool_routes(item, pool, hashing, depth + 1);
    return;
  }
  if (!value.IsObject()) return;
  if (string_member(value, "type") == "PoolRoute") {
    const auto target = value.FindMember("pool");
    const bool ours = target != value.MemberEnd() &&
                      ((target->value.IsString() && target->value.GetString() == pool) ||
                       (target->value.IsObject() && string_member(target->value, "name") == pool));
    const auto hash = value.FindMember("hash");
    if (ours && hash != value.MemberEnd()) read_route_hash(hash->value, hashing);
  }
  for (const auto& member : value.GetObject()) {
    find_pool_routes(member.value, pool, hashing, depth + 1);
  }
}

Hashing hashing_of(const Value& document, const std::string& pool_name, const Value& pool) {
  Hashing hashing;
  // The older pool-level form: "hash": "wch3", "hash_weights": [...].
  if (const std::string_view hash = string_member(pool, "hash"); !hash.empty()) {
    hashing.hash = std::string(hash);
  }
  if (const auto weights = pool.FindMember("hash_weights"); weights != pool.MemberEnd()) {
    read_weights(weights->value, hashing);
  }
  for (const char* routes : {"route", "routes"}) {
    const auto found = document.FindMember(routes);
    if (found != document.MemberEnd()) find_pool_routes(found->value, pool_name, hashing, 0);
  }
  return hashing;
}

}  // namespace

ProxyConfig read_mcrouter(const Source& source, const std::optional<std::string>& default_pool) {
  const std::string& file = source.config;
  rapidjson::Document document;
  json::parse_document(document, json::read_file(file), file, json::Dialect::relaxed);
  const json::Cursor root(file, document, "");
  if (!document.IsObject()) root.wrong_type("an object");
  const auto pools_member = document.FindMember("pools");
  if (pools_member == document.MemberEnd()) root.fail("missing required field \"pools\"");
  const json::Cursor pools = root.member("pools", pools_member->value);
  if (pools.value().IsString()) {
    pools.wrong_value("an object of pools (macros and @import are not expanded)");
  }
  if (!pools.value().IsObject()) pools.wrong_type("an object of pools");
  std::vector<std::string> names;
  for (const auto& member : pools.value().GetObject()) names.emplace_back(member.name.GetString());

  ProxyConfig config;
  config.source = source;
  config.pool = choose_pool(names, source, default_pool, file + ": /pools");
  const json::Cursor pool = pools.member(config.pool, pools.value()[config.pool.c_str()]);
  if (!pool.value().IsObject()) pool.wrong_type("an object");
  const auto servers = pool.value().FindMember("servers");
  if (servers == pool.value().MemberEnd()) pool.fail("missing required field \"servers\"");
  if (!source.client) {
    throw ImportError(file + ": mcrouter's port is on its command line, not in its config: " +
                      "give client=ADDR");
  }
  config.client = *source.client;
  config.stats = source.stats;
  const Hashing hashing = hashing_of(document, config.pool, pool.value());
  config.hash = hashing.hash;
  const auto list = pool.member("servers", servers->value).elements(true);
  for (std::size_t i = 0; i < list.size(); ++i) {
    const net::Endpoint endpoint = list[i].string_as(kServerExpectation, server_endpoint);
    // mcrouter's documented default for a weight the list leaves out.
    const std::string weight = hashing.weights.empty()      ? ""
                               : i < hashing.weights.size() ? hashing.weights[i]
                                                            : "0.5";
    config.servers.push_back({endpoint, "", weight, file + ": " + list[i].pointer()});
  }
  return config;
}

}  // namespace ringwatch::spec::import
