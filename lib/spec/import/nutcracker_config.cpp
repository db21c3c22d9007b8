// nutcracker (twemproxy) YAML configs: one proxy's pools, through yaml-cpp,
// whose nodes carry the line they were read from.

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "lib/spec/import/proxy_config.h"
#include "lib/spec/json_cursor.h"
#include "lib/util/text.h"

namespace ringwatch::spec::import {
namespace {

// nutcracker's own default stats port (`-s`).
constexpr std::uint16_t kDefaultStatsPort = 22222;

// "tw1.yml:7: <message>"; lines count from 1.
[[noreturn]] void fail_at(const std::string& file, const YAML::Mark& mark,
                          const std::string& message) {
  const std::string line = mark.is_null() ? "" : ":" + std::to_string(mark.line + 1);
  throw ImportError(file + line + ": " + message);
}

const char* kind_phrase(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Sequence:
      return "a sequence";
    case YAML::NodeType::Scalar:
      return "a scalar";
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      return "an empty value";
  }
  return "an empty value";
}

YAML::Node load(const std::string& file) {
  const std::string text = json::read_file(file);
  try {
    return YAML::Load(text);
  } catch (const YAML::Exception& error) {
    fail_at(file, error.mark, "invalid YAML: " + error.msg);
  }
}

// A scalar member of a pool, or "" when absent.
std::string scalar(const std::string& file, const YAML::Node& pool, const char* key) {
  const YAML::Node value = pool[key];
  if (!value) return "";
  if (!value.IsScalar()) {
    fail_at(file, value.Mark(),
            std::string(key) + ": expected a scalar, got " + kind_phrase(value));
  }
  return value.Scalar();
}

bool is_wildcard(const net::IpAddress& address) {
  const net::IpAddress any = *net::IpAddress::parse(address.v6 ? "::" : "0.0.0.0");
  return address == any;
}

net::Endpoint canonical(const net::Endpoint& endpoint) {
  return {net::IpAddress::parse(endpoint.host)->to_string(), endpoint.port};
}

// `listen: 10.0.0.1:22121` (a unix socket path, "path perms", is no use to a probe).
// `pool_key`: where the pool's name is, for what the pool lacks.
net::Endpoint client_of(const std::string& file, const YAML::Node& pool, const YAML::Node& pool_key,
                        const Source& source) {
  const YAML::Node listen = pool["listen"];
  if (!listen) {
    fail_at(file, pool_key.Mark(),
            "pool " + json::quoted(pool_key.Scalar()) + ": missing \"listen\"");
  }
  const std::string text = scalar(file, pool, "listen");
  const auto endpoint = net::Endpoint::parse(text);
  if (!endpoint) {
    fail_at(
        file, listen.Mark(),
        "listen: expected an IP address and port like 10.0.0.1:22121, got " + json::quoted(text));
  }
  if (source.client) return *source.client;
  if (is_wildcard(*net::IpAddress::parse(endpoint->host))) {
    fail_at(file, listen.Mark(),
            "listen: " + endpoint->to_string() +
                " is a wildcard address: give the address clients use with client=ADDR");
  }
  return canonical(*endpoint);
}

// The host of "cache1.internal:11211": a name where an address should be.
std::optional<std::string> host_name_of(const std::string& host_port) {
  const std::size_t colon = host_port.find(':');
  if (colon == std::string::npos || colon == 0) return std::nullopt;
  if (!util::parse_int<std::uint16_t>(host_port.substr(colon + 1))) return std::nullopt;
  return host_port.substr(0, colon);
}

// "10.0.0.1:11211:1 name": host:port:weight, then an optional name.
ProxyConfig::Server server_of(const std::string& file, const YAML::Node& line) {
  const std::string where = file + ":" + std::to_string(line.Mark().line + 1);
  const std::string text = line.IsScalar() ? line.Scalar() : "";
  const auto expected = [&] {
    fail_at(file, line.Mark(),
            "expected a server like \"10.0.0.1:11211:1 name\" (host:port:weight, then an "
            "optional name), got " +
                (line.IsScalar() ? json::quoted(text) : std::string(kind_phrase(line))));
  };
  const std::size_t space = text.find(' ');
  const std::string address = text.substr(0, space);
  std::string name = space == std::string::npos ? "" : text.substr(space + 1);
  name.erase(0, name.find_first_not_of(' '));
  name.erase(name.find_last_not_of(' ') + 1);
  const std::size_t colon = address.rfind(':');
  if (colon == std::string::npos) expected();
  const std::string weight = address.substr(colon + 1);
  const std::string host_port = address.substr(0, colon);
  if (!util::parse_int<std::uint32_t>(weight)) expected();
  const auto endpoint = net::Endpoint::parse(host_port);
  if (!endpoint) {
    const auto host_name = host_name_of(host_port);
    if (!host_name) expected();
    fail_at(file, line.Mark(),
            "server " + json::quoted(text) +
                ": expected an IP address literal like 10.0.0.1 or ::1 as its host (names are "
                "not allowed), got " +
                json::quoted(*host_name));
  }
  if (!name.empty() && !is_name(name)) {
    fail_at(file, line.Mark(),
            "server " + json::quoted(text) + ": expected " + std::string(kNameExpectation) +
                ", got " + json::quoted(name));
  }
  return {canonical(*endpoint), name, weight, where};
}

}  // namespace

ProxyConfig read_nutcracker(const Source& source, const std::optional<std::string>& default_pool) {
  const std::string& file = source.config;
  const YAML::Node root = load(file);
  if (!root.IsMap()) {
    fail_at(file, root.Mark(),
            std::string("expected a mapping of pool names to pools, got ") + kind_phrase(root));
  }
  std::vector<std::string> pools;
  std::vector<std::pair<YAML::Node, YAML::Node>> entries;  // (name, pool)
  for (const auto& entry : root) {
    pools.push_back(entry.first.Scalar());
    entries.emplace_back(entry.first, entry.second);
  }

  ProxyConfig config;
  config.source = source;
  config.pool = choose_pool(pools, source, default_pool, file);
  const auto& [pool_key, pool] = entries[static_cast<std::size_t>(
      std::find(pools.begin(), pools.end(), config.pool) - pools.begin())];
  const std::string in_pool = "pool " + json::quoted(config.pool);
  if (!pool.IsMap()) {
    fail_at(file, pool_key.Mark(), in_pool + ": expected a mapping, got " + kind_phrase(pool));
  }
  config.client = client_of(file, pool, pool_key, source);
  config.stats = source.stats.value_or(net::Endpoint{config.client.host, kDefaultStatsPort});
  config.hash = scalar(file, pool, "hash");
  config.distribution = scalar(file, pool, "distribution");
  const YAML::Node servers = pool["servers"];
  if (!servers) fail_at(file, pool_key.Mark(), in_pool + ": missing \"servers\"");
  if (!servers.IsSequence() || servers.size() == 0) {
    fail_at(file, servers.Mark(),
            std::string("servers: expected a non-empty sequence of servers, got ") +
                (servers.IsSequence() ? "[]" : kind_phrase(servers)));
  }
  for (const auto& line : servers) config.servers.push_back(server_of(file, line));
  return config;
}

}  // namespace ringwatch::spec::import
