#pragma once
// How one kind of proxy is configured and started: the one place a kind of
// proxy plugs into the lab. The lab decides what a proxy's config says
// (ProxyConfig: where it listens, which hash, which backends at which
// address, faults included); the kind decides how that is written down, how
// its program runs, how a running proxy takes a new config and how it gives
// up on a backend it cannot reach. Two kinds (UpOptions::proxy_kind):
//
//   nutcracker (twemproxy 0.5)     YAML, ketama over named servers,
//                                  auto_eject_hosts; a new config means a
//                                  restart; an unreachable server is ejected
//                                  after a failed request and its keys go to
//                                  the others (nutcracker.cpp)
//   memcached's built-in proxy     a Lua route config for routelib (jump hash
//   (1.6.38, built by              over the backends in order), reloaded on
//   tools/install-deps.sh)         SIGHUP; an unreachable backend is marked
//                                  bad (`stats proxybe`) and its keys fail with
//                                  SERVER_ERROR: nothing is rerouted
//                                  (memcached_proxy.cpp)
//
// Pure apart from locate() (which looks at the file system): the lab writes,
// checks, starts and signals. Thread-safe.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "lib/spec/cluster_spec.h"
#include "tools/lab/lab.h"

namespace ringwatch::lab {

struct ProxyServer {
  std::string name;  // the backend's name, which names it in the proxy's stats
  std::string host;  // its address, its public address (an eject fault) or its DNS name (netns)
  std::uint16_t port = 0;
  int weight = 1;  // 2 under a weight fault (nutcracker's host:port:weight)
};

struct ProxyConfig {
  std::string pool;   // the lab's name
  std::string proxy;  // "p1"
  std::string address;
  std::uint16_t port = 0;
  std::uint16_t stats_port = 0;  // 0 when the kind answers stats on its client port
  std::string hash;              // one of ProxyKind::hashes()
  std::vector<ProxyServer> servers;
};

// A running proxy takes a new config when sent `signal`; its `stats` counter
// `reloads` counts reloads begun and `failures` those that failed.
struct ConfigReload {
  int signal = 0;
  std::string reloads;
  std::string failures;
};

// What a proxy does about a backend it cannot connect to.
enum class UnreachableBackend {
  ejected,     // after a failed request it routes the backend's keys to the others
  marked_bad,  // it keeps the backend's keys, fails them, and lists it in `stats proxybe`
};

class ProxyKind {
 public:
  virtual ~ProxyKind() = default;

  virtual const char* program() const = 0;  // "nutcracker", "memcached (with its proxy)"
  // The program's absolute path; std::runtime_error naming how to install it.
  virtual std::filesystem::path locate() const = 0;
  virtual spec::ProxyKind spec_kind() const = 0;
  virtual const char* config_extension() const = 0;  // ".yml"
  // Whether it serves stats on a port of its own (else on its client port).
  virtual bool has_stats_port() const = 0;
  // The hash a healthy proxy uses, and those a `hash` fault may choose.
  virtual const char* healthy_hash() const = 0;
  virtual const std::vector<std::string>& hashes() const = 0;

  // The config file's text. Its first lines are the same whatever the
  // config says: heal compares a file with the healthy text.
  virtual std::string config_text(const ProxyConfig& config) const = 0;
  // A command that exits 0 if `program` accepts the config file; empty when
  // the program has none (then a config it rejects fails its start or reload).
  virtual std::vector<std::string> check_argv(const std::filesystem::path& program,
                                              const std::filesystem::path& config) const = 0;
  // The command that runs the proxy in the foreground, logging to `log`.
  virtual std::vector<std::string> argv(const std::filesystem::path& program,
                                        const ProxyConfig& config,
                                        const std::filesystem::path& config_file,
                                        const std::filesystem::path& log) const = 0;
  // How a running proxy takes a new config; nullopt: it is restarted.
  virtual std::optional<ConfigReload> reload() const = 0;
  virtual UnreachableBackend unreachable_backend() const = 0;
};

const ProxyKind& nutcracker();
const ProxyKind& memcached_proxy();
const ProxyKind& proxy_kind(LabProxyKind kind);

}  // namespace ringwatch::lab
