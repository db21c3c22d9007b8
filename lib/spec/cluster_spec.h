#pragma once
// The cluster spec: one JSON file describing one cluster (its proxies, its
// backends, where to ask DNS, canary settings and deadlines). Parsing and
// validation live here and only here; see README.md "Cluster spec" (written
// from docs/spec.md) for the format and the exact error messages. Every
// rejection is a SpecError naming the file, the JSON pointer of the offending
// value and what was expected. All functions are pure and thread-safe.

#include <chrono>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "lib/net/address.h"
#include "lib/util/deadlines.h"

namespace ringwatch::spec {

// Every name in a spec (cluster, proxy, backend, dns server, pool) has this form.
inline constexpr std::string_view kNameExpectation =
    "a name of 1 to 64 characters from [A-Za-z0-9._-]";
bool is_name(std::string_view text);

enum class ProxyKind { twemproxy, mcrouter, memcached_proxy };
const char* to_string(ProxyKind kind);  // "twemproxy", "mcrouter", "memcached-proxy"
std::optional<ProxyKind> parse_proxy_kind(std::string_view text);

struct Proxy {
  std::string name;
  ProxyKind kind = ProxyKind::twemproxy;
  net::Endpoint client;                // where clients (and the canary) talk memcached
  std::optional<net::Endpoint> stats;  // the proxy's stats endpoint, if it has one
  // The pool of the proxy's own config this spec describes (twemproxy: the
  // pool whose stats are read). Unset: the cluster's name (ClusterSpec::pool_of).
  std::optional<std::string> pool;
  // Addresses this proxy connects to backends from, used to recognise it in a
  // backend's `stats conns`. Empty: it cannot be told apart there.
  std::vector<net::IpAddress> source_addresses;
  // Name of the DNS vantage point (dns.servers[].name) this proxy resolves
  // through, if known; ties DNS answers to the proxy in the diagnosis.
  std::optional<std::string> dns_vantage;
  friend bool operator==(const Proxy&, const Proxy&) = default;
};

struct Backend {
  std::string name;
  net::IpAddress address;  // what the probe connects to; inside expected_cidr when given
  std::uint16_t port = 0;
  // The name proxies resolve; unset for a backend the proxies know by address
  // only (the DNS check does not apply to it).
  std::optional<std::string> dns_name;
  // Every DNS answer for dns_name must lie in here; always set when dns_name is.
  std::optional<net::Cidr> expected_cidr;
  net::Endpoint endpoint() const { return {address.to_string(), port}; }
  friend bool operator==(const Backend&, const Backend&) = default;
};

struct DnsServer {
  std::string name;                      // vantage point name, e.g. "lab-dns" or "p2-resolver"
  std::optional<net::Endpoint> address;  // empty = the system resolver
  friend bool operator==(const DnsServer&, const DnsServer&) = default;
};

// How a canary round covers the ring (probes/canary/canary_probe.h):
// linear   keys_per_backend canaries per backend, each written by one proxy,
//          read through every proxy and looked up on its own backend;
// full     keys_per_backend canaries per backend per proxy, every one read
//          through every proxy and looked up on every backend.
enum class CanaryCoverage { linear, full };
const char* to_string(CanaryCoverage coverage);  // "linear", "full"
std::optional<CanaryCoverage> parse_canary_coverage(std::string_view text);

struct CanarySettings {
  std::string key_prefix = "ringwatch:";
  std::chrono::seconds ttl{60};
  std::size_t value_size = 64;
  std::size_t keys_per_backend = 2;
  CanaryCoverage coverage = CanaryCoverage::linear;
  // Proxies a round reads through, rotating; unset: every proxy every round.
  std::optional<std::size_t> proxies_per_round;
  friend bool operator==(const CanarySettings&, const CanarySettings&) = default;
};

struct Timeouts {
  std::chrono::milliseconds connect{250};
  std::chrono::milliseconds io{1000};
  std::chrono::milliseconds dns{1000};
  util::Deadlines deadlines() const { return {connect, io}; }
  friend bool operator==(const Timeouts&, const Timeouts&) = default;
};

struct ClusterSpec {
  std::string name;
  std::vector<Proxy> proxies;
  std::vector<Backend> backends;
  std::vector<DnsServer> dns_servers;
  CanarySettings canary;
  Timeouts timeouts;

  const Proxy* find_proxy(std::string_view proxy_name) const;
  const Backend* find_backend(std::string_view backend_name) const;
  // The pool `proxy` serves: its `pool`, else the cluster's name.
  const std::string& pool_of(const Proxy& proxy) const { return proxy.pool ? *proxy.pool : name; }
  friend bool operator==(const ClusterSpec&, const ClusterSpec&) = default;
};

// A rejected spec: `what()` is "<file>: <json pointer>: <expectation>", or
// "<file>: <expectation>" when the pointer is "" (the whole document: JSON
// syntax errors, an unreadable file, a root that is not an object).
class SpecError : public std::runtime_error {
 public:
  SpecError(std::string file, std::string pointer, std::string expectation);
  const std::string& file() const { return file_; }
  const std::string& pointer() const { return pointer_; }
  const std::string& expectation() const { return expectation_; }

 private:
  std::string file_, pointer_, expectation_;
};

// Parse and validate. `source_name` is used in error messages. Throws SpecError.
ClusterSpec parse_cluster_spec(std::string_view json_text, const std::string& source_name);
// Reads the file and parses it; an unreadable file is a SpecError with pointer "".
ClusterSpec load_cluster_spec(const std::string& path);
// Serialises a spec to the documented format; parse(to_json(s)) == s.
std::string to_json(const ClusterSpec& spec);

}  // namespace ringwatch::spec
