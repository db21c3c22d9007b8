#pragma once
// The fleet file: which clusters ringwatchd probes, how often, with which
// checks, where it listens and where alerts go. Parsing and validation live
// here; every rejection is a spec::SpecError ("<file>: <json pointer>:
// <expectation>"), the same shape as a cluster spec's. Format (README.md,
// "ringwatchd"):
//
//   {"listen": "127.0.0.1:9470",
//    "clusters": [{"spec": "path/to/cluster.json" | "inline": {...spec...},
//                  "interval_seconds": 10, "jitter_seconds": 1,
//                  "checks": ["canary", "connections", "dns"],
//                  "schedule": "interval" | "external"}],
//    "alerts": {"alertmanager": "http://127.0.0.1:9093", "webhook": "http://...",
//               "fire_after_rounds": 2, "resolve_after_rounds": 2}}
//
// A sink is a URL (http:// or https://) or an object
//   {"url": "https://am:9093", "ca_file": "ca.pem",
//    "basic_auth": {"username": "u", "password_file": "am.password"} |
//    "bearer_token_file": "am.token"}
// whose files (relative to the fleet file) are read at load: secrets never
// sit in the fleet file, and never reach a log.
//
// A relative "spec" path is relative to the fleet file's directory. A cluster
// is named by its spec's "name"; names are unique in a fleet.
//
// All functions are pure (load_* read files) and thread-safe.

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lib/spec/cluster_spec.h"

namespace ringwatch::daemon {

struct ClusterConfig {
  spec::ClusterSpec spec{};
  std::string spec_path{};  // empty for an inline spec
  std::chrono::milliseconds interval{10000};
  std::chrono::milliseconds jitter{1000};
  std::vector<std::string> checks{};  // in probes::known_checks() order
  // External: no timer; only GET /probe (Prometheus schedules) and preflight run it.
  bool external = false;
  const std::string& name() const { return spec.name; }
  friend bool operator==(const ClusterConfig&, const ClusterConfig&) = default;
};

// How a sink reaches an https:// or authenticated receiver. Secrets come from
// files named in the fleet file, never from the fleet file itself.
struct SinkAccess {
  std::string ca_file{};        // PEM CAs for an https:// receiver; empty: the system's
  std::string authorization{};  // the Authorization header (Basic or Bearer); secret
  friend bool operator==(const SinkAccess&, const SinkAccess&) = default;
};

struct AlertsConfig {
  std::string alertmanager{};  // base URL; empty: no Alertmanager sink
  std::string webhook{};       // URL; empty: no webhook sink
  SinkAccess alertmanager_access{};
  SinkAccess webhook_access{};
  int fire_after_rounds = 2;
  int resolve_after_rounds = 2;
  friend bool operator==(const AlertsConfig&, const AlertsConfig&) = default;
};

struct FleetConfig {
  std::string listen = "127.0.0.1:9470";  // an IP literal and port; port 0 = any free port
  std::vector<ClusterConfig> clusters{};
  AlertsConfig alerts{};
  const ClusterConfig* find(std::string_view name) const;
};

// Parses and validates; `source_name` names the file in errors and anchors
// relative spec paths. Throws spec::SpecError.
FleetConfig parse_fleet(std::string_view json_text, const std::string& source_name);
FleetConfig load_fleet(const std::string& path);

// "127.0.0.1:9470" -> host and port (port 0 allowed); nullopt when malformed.
struct ListenAddress {
  std::string host{};
  unsigned short port = 0;
};
std::optional<ListenAddress> parse_listen(std::string_view text);

}  // namespace ringwatch::daemon
