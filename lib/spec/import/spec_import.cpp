#include "lib/spec/import/spec_import.h"

#include <algorithm>
#include <map>
#include <set>
#include <stdexcept>
#include <utility>

#include "lib/spec/json_cursor.h"
#include "lib/util/text.h"

namespace ringwatch::spec::import {
namespace {

constexpr std::string_view kSourceForm = "NAME=CONFIG[,client=ADDR][,stats=ADDR][,pool=POOL]";
constexpr std::string_view kEndpointExpectation =
    "an IP address literal and port like 10.0.0.1:11211 or [::1]:11211";

std::vector<std::string> split(std::string_view text, char separator) {
  std::vector<std::string> parts;
  for (std::size_t start = 0;;) {
    const std::size_t end = text.find(separator, start);
    parts.emplace_back(text.substr(start, end == std::string_view::npos ? text.npos : end - start));
    if (end == std::string_view::npos) return parts;
    start = end + 1;
  }
}

net::Endpoint endpoint_option(const std::string& key, const std::string& value) {
  const auto endpoint = net::Endpoint::parse(value);
  if (!endpoint) {
    throw std::invalid_argument(key + ": expected " + std::string(kEndpointExpectation) + ", got " +
                                json::quoted(value));
  }
  return {net::IpAddress::parse(endpoint->host)->to_string(), endpoint->port};
}

// "10.0.0.1:11211" -> "10.0.0.1-11211", "[fd00::5]:11211" -> "fd00--5-11211".
std::string derived_name(const net::Endpoint& endpoint) {
  std::string name = endpoint.host + "-" + std::to_string(endpoint.port);
  std::replace(name.begin(), name.end(), ':', '-');
  return name;
}

// Values in order of first appearance, each with the proxies that have it:
// "fnv1a_64 at tw1 and tw2, murmur at tw3".
class Groups {
 public:
  void add(const std::string& value, const std::string& proxy) {
    auto found = std::find_if(groups_.begin(), groups_.end(),
                              [&](const auto& group) { return group.first == value; });
    if (found == groups_.end()) found = groups_.insert(groups_.end(), {value, {}});
    auto& proxies = found->second;
    if (std::find(proxies.begin(), proxies.end(), proxy) == proxies.end()) proxies.push_back(proxy);
  }
  std::size_t size() const { return groups_.size(); }
  std::string describe() const {
    std::vector<std::string> parts;
    for (const auto& [value, proxies] : groups_) {
      parts.push_back(value + " at " + util::join_and(proxies));
    }
    return util::join(parts, ", ");
  }

 private:
  std::vector<std::pair<std::string, std::vector<std::string>>> groups_;
};

// One backend of the spec with every proxy's line for it.
struct Seen {
  spec::Backend backend;
  std::vector<std::pair<const ProxyConfig*, const ProxyConfig::Server*>> lines;
};

class Merge {
 public:
  explicit Merge(const std::vector<ProxyConfig>& proxy_configs) : configs(proxy_configs) {}

  std::vector<Seen> backends() {
    std::vector<Seen> all;
    std::map<std::string, std::size_t> by_endpoint;
    std::map<std::string, std::string> endpoint_of_name;
    for (const ProxyConfig& config : configs) {
      for (const ProxyConfig::Server& server : config.servers) {
        const std::string key = server.endpoint.to_string();
        auto [at, inserted] = by_endpoint.emplace(key, all.size());
        if (inserted) {
          all.push_back({backend_for(config, server, endpoint_of_name), {}});
          endpoint_of_name.emplace(all.back().backend.name, key);
        }
        all[at->second].lines.emplace_back(&config, &server);
      }
    }
    return all;
  }

  // What the proxies do not agree on about one backend.
  void backend_disagreements(const Seen& seen) {
    const std::string what =
        "backend " + seen.backend.name + " (" + seen.backend.endpoint().to_string() + ")";
    // Names and weights compare within a kind: mcrouter names no server, and
    // its weights are fractions where nutcracker's are integers.
    Groups names;
    std::map<ProxyKind, Groups> weights;
    std::map<std::string, std::vector<std::string>> lines_of;
    std::vector<std::string> listed_by;
    for (const auto& [config, server] : seen.lines) {
      const std::string& proxy = config->source.proxy;
      if (config->source.kind == ProxyKind::twemproxy) {
        names.add(server->name.empty() ? "unnamed" : "named " + server->name, proxy);
      }
      if (!server->weight.empty())
        weights[config->source.kind].add("weight " + server->weight, proxy);
      auto& lines = lines_of[proxy];
      if (lines.empty()) listed_by.push_back(proxy);
      lines.push_back(server->where);
    }
    if (listed_by.size() < configs.size()) {
      std::vector<std::string> not_listing;
      for (const ProxyConfig& config : configs) {
        if (!lines_of.contains(config.source.proxy)) not_listing.push_back(config.source.proxy);
      }
      out.push_back(what + " is listed by " + util::join_and(listed_by) + ", not by " +
                    util::join_and(not_listing));
    }
    if (names.size() > 1) out.push_back(what + " is " + names.describe());
    for (const auto& [kind, groups] : weights) {
      if (groups.size() > 1) out.push_back(what + " has " + groups.describe());
    }
    for (const auto& [proxy, lines] : lines_of) {
      if (lines.size() > 1) {
        out.push_back(proxy + " lists " + what + " " + std::to_string(lines.size()) + " times (" +
                      util::join(lines, ", ") + ")");
      }
    }
  }

  // How the proxies place keys: one line per setting they differ on.
  void placement_disagreements() {
    Groups hashes, distributions;
    for (const ProxyConfig& config : configs) {
      hashes.add(config.hash.empty() ? "none given" : config.hash, config.source.proxy);
      // Only nutcracker has a distribution (mcrouter's is in its hash).
      if (config.source.kind != ProxyKind::twemproxy) continue;
      distributions.add(config.distribution.empty() ? "none given" : config.distribution,
                        config.source.proxy);
    }
    if (hashes.size() > 1) out.push_back("hash differs: " + hashes.describe());
    if (distributions.size() > 1)
      out.push_back("distribution differs: " + distributions.describe());
  }

  std::vector<std::string> out;

 private:
  spec::Backend backend_for(const ProxyConfig& config, const ProxyConfig::Server& server,
                            const std::map<std::string, std::string>& endpoint_of_name) {
    spec::Backend backend;
    backend.address = *net::IpAddress::parse(server.endpoint.host);
    backend.port = server.endpoint.port;
    backend.name = server.name.empty() ? derived_name(server.endpoint) : server.name;
    const auto taken = endpoint_of_name.find(backend.name);
    if (taken == endpoint_of_name.end()) return backend;
    const std::string first = backend.name;
    backend.name = derived_name(server.endpoint);
    for (int n = 2; endpoint_of_name.contains(backend.name); ++n) {
      backend.name = derived_name(server.endpoint) + "-" + std::to_string(n);
    }
    out.push_back("name " + first + " is " + taken->second + " and, at " + config.source.proxy +
                  " (" + server.where + "), " + server.endpoint.to_string() +
                  ": the second is imported as " + backend.name);
    return backend;
  }

  const std::vector<ProxyConfig>& configs;
};

std::string cluster_name_of(const std::vector<ProxyConfig>& configs,
                            const std::optional<std::string>& given) {
  if (given) return *given;  // checked by import_spec
  Groups pools;
  for (const ProxyConfig& config : configs) pools.add(config.pool, config.source.proxy);
  if (pools.size() == 1) return configs.front().pool;  // a name: import_spec checked
  throw ImportError("the proxies' pools are " + pools.describe() +
                    ": give the cluster's name with --name");
}

void check_clients(const std::vector<ProxyConfig>& configs) {
  std::map<std::string, const ProxyConfig*> first;
  for (const ProxyConfig& config : configs) {
    const auto [at, inserted] = first.emplace(config.client.to_string(), &config);
    if (inserted) continue;
    throw ImportError(config.source.config + ": " + config.source.proxy + "'s client address " +
                      config.client.to_string() + " is " + at->second->source.proxy +
                      "'s too: give each proxy its own with client=ADDR");
  }
}

}  // namespace

std::string choose_pool(const std::vector<std::string>& pools, const Source& source,
                        const std::optional<std::string>& default_pool, const std::string& where) {
  const auto has = [&](const std::string& name) {
    return std::find(pools.begin(), pools.end(), name) != pools.end();
  };
  const std::string listed = " (" + util::join(pools, ", ") + ")";
  if (pools.empty()) throw ImportError(where + ": expected at least one pool, got none");
  if (source.pool) {
    if (has(*source.pool)) return *source.pool;
    throw ImportError(where + ": no pool named " + json::quoted(*source.pool) + listed);
  }
  if (pools.size() == 1) return pools.front();
  if (default_pool && has(*default_pool)) return *default_pool;
  throw ImportError(where + ": " + std::to_string(pools.size()) + " pools" + listed +
                    ": say which with pool=POOL");
}

Source parse_source(ProxyKind kind, std::string_view text) {
  const std::vector<std::string> parts = split(text, ',');
  const std::size_t equals = parts.front().find('=');
  if (equals == std::string::npos || equals == 0 || equals + 1 == parts.front().size()) {
    throw std::invalid_argument("expected " + std::string(kSourceForm) + ", got " +
                                json::quoted(text));
  }
  Source source;
  source.kind = kind;
  source.proxy = parts.front().substr(0, equals);
  source.config = parts.front().substr(equals + 1);
  if (!is_name(source.proxy)) {
    throw std::invalid_argument("proxy name: expected " + std::string(kNameExpectation) + ", got " +
                                json::quoted(source.proxy));
  }
  std::set<std::string> seen;
  for (std::size_t i = 1; i < parts.size(); ++i) {
    const std::size_t at = parts[i].find('=');
    const std::string key = parts[i].substr(0, at);
    const std::string value = at == std::string::npos ? "" : parts[i].substr(at + 1);
    if (!seen.insert(key).second) throw std::invalid_argument(key + "= given twice");
    if (key == "client" || key == "stats") {
      (key == "client" ? source.client : source.stats) = endpoint_option(key, value);
    } else if (key == "pool" && is_name(value)) {
      source.pool = value;
    } else if (key == "pool") {
      throw std::invalid_argument("pool: expected " + std::string(kNameExpectation) + ", got " +
                                  json::quoted(value));
    } else {
      throw std::invalid_argument("unknown option " + json::quoted(parts[i]) + " (expected " +
                                  std::string(kSourceForm) + ")");
    }
  }
  if (kind == ProxyKind::mcrouter && !source.client) {
    throw std::invalid_argument(
        "client=ADDR is required for mcrouter (its port is on its command line, not in its "
        "config)");
  }
  return source;
}

Imported import_spec(const std::vector<Source>& sources,
                     const std::optional<std::string>& cluster_name) {
  if (sources.empty()) throw ImportError("no proxy to import: give --twemproxy or --mcrouter");
  if (cluster_name && !is_name(*cluster_name)) {
    throw ImportError("--name: expected " + std::string(kNameExpectation) + ", got " +
                      json::quoted(*cluster_name));
  }
  std::set<std::string> names;
  std::vector<ProxyConfig> configs;
  for (const Source& source : sources) {
    if (!names.insert(source.proxy).second) {
      throw ImportError("proxy name " + json::quoted(source.proxy) + " given twice");
    }
    configs.push_back(source.kind == ProxyKind::mcrouter ? read_mcrouter(source, cluster_name)
                                                         : read_nutcracker(source, cluster_name));
    if (!is_name(configs.back().pool)) {
      throw ImportError(source.config + ": pool name: expected " + std::string(kNameExpectation) +
                        ", got " + json::quoted(configs.back().pool));
    }
  }
  check_clients(configs);

  Imported imported;
  ClusterSpec& spec = imported.spec;
  spec.name = cluster_name_of(configs, cluster_name);
  for (const ProxyConfig& config : configs) {
    Proxy proxy;
    proxy.name = config.source.proxy;
    proxy.kind = config.source.kind;
    proxy.client = config.client;
    proxy.stats = config.stats;
    proxy.pool = config.pool;
    spec.proxies.push_back(std::move(proxy));
  }
  Merge merge(configs);
  for (const Seen& seen : merge.backends()) {
    spec.backends.push_back(seen.backend);
    merge.backend_disagreements(seen);
  }
  merge.placement_disagreements();
  imported.disagreements = std::move(merge.out);
  // Whatever was imported must read back as a spec; a failure here is a bug.
  parse_cluster_spec(to_json(spec), "imported spec");
  return imported;
}

}  // namespace ringwatch::spec::import
