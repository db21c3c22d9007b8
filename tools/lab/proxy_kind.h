#pragma once
// How one kind of proxy is configured and started: the one place a second
// kind of proxy plugs into the lab. The lab decides what a proxy's config
// says (ProxyConfig: where it listens, which hash, which backends at which
// address, faults included); the kind decides how that is written down and
// how its program runs. Today the lab has one kind, nutcracker (twemproxy);
// memcached's built-in proxy, with a generated Lua route config, is meant to
// be the second, chosen in proxy_kind() (tools/lab/nodes.h).
//
// Pure: no I/O (the lab writes, checks and starts); thread-safe.

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "lib/spec/cluster_spec.h"

namespace ringwatch::lab {

struct ProxyServer {
  std::string name;  // the backend's name, which places it on the ring
  std::string host;  // its address, its public address (an eject fault) or its DNS name (netns)
  std::uint16_t port = 0;
};

struct ProxyConfig {
  std::string pool;   // the lab's name
  std::string proxy;  // "p1"
  std::string address;
  std::uint16_t port = 0;
  std::uint16_t stats_port = 0;
  std::string hash;  // one of ProxyKind::hashes()
  std::vector<ProxyServer> servers;
};

class ProxyKind {
 public:
  virtual ~ProxyKind() = default;

  virtual const char* program() const = 0;  // "nutcracker"
  virtual spec::ProxyKind spec_kind() const = 0;
  // The hash a healthy proxy uses, and those a `hash` fault may choose.
  virtual const char* healthy_hash() const = 0;
  virtual const std::vector<std::string>& hashes() const = 0;

  // The config file's text. Its first lines are the same whatever the
  // config says: heal compares a file with the healthy text.
  virtual std::string config_text(const ProxyConfig& config) const = 0;
  // A command that exits 0 if `program` accepts the config file.
  virtual std::vector<std::string> check_argv(const std::filesystem::path& program,
                                              const std::filesystem::path& config) const = 0;
  // The command that runs the proxy in the foreground, logging to `log`.
  virtual std::vector<std::string> argv(const std::filesystem::path& program,
                                        const ProxyConfig& config,
                                        const std::filesystem::path& config_file,
                                        const std::filesystem::path& log) const = 0;
};

const ProxyKind& nutcracker();

}  // namespace ringwatch::lab
