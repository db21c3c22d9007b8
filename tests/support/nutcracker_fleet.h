#pragma once
// A fleet the way operators have one, for tests: memcached backends each on
// its own loopback address (port 11211 where the test asks for it, as in most
// nutcracker.yml files) and nutcracker proxies on YAML the test writes itself,
// in a temporary directory. Everything it starts is a ChildProcess (killed
// with the object, and with the test binary if that dies); the directory is
// removed with the object. The lab (tools/lab) writes its own configs; this is
// for configs a test wants to spell out.
//
// Not thread-safe; one owner, constructed on the thread that stays alive.

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "lib/net/address.h"
#include "tests/support/child_process.h"
#include "tests/support/memcached_process.h"

namespace ringwatch::testing {

// "127.30.N": a loopback /24 where every port in `ports` is free on every
// address 127.30.N.h, h in `hosts` (checked by binding each). The search
// starts at a place that depends on the process id, so that tests running in
// parallel look in different places. Throws std::runtime_error if no N fits.
std::string free_loopback_net(const std::vector<int>& hosts,
                              const std::vector<std::uint16_t>& ports);

class NutcrackerFleet {
 public:
  NutcrackerFleet();
  ~NutcrackerFleet();
  NutcrackerFleet(const NutcrackerFleet&) = delete;
  NutcrackerFleet& operator=(const NutcrackerFleet&) = delete;

  const std::filesystem::path& dir() const { return dir_; }

  // Starts memcached on address:port and waits until it accepts connections.
  const net::Endpoint& add_backend(const std::string& address, std::uint16_t port);
  // Writes `yaml` to dir()/<name>.yml and starts nutcracker on it with its
  // stats on `stats`; waits until `client` and `stats` accept connections.
  // Returns the config's path. Throws std::runtime_error with nutcracker's log
  // if it does not come up.
  std::filesystem::path add_proxy(const std::string& name, const std::string& yaml,
                                  const net::Endpoint& client, const net::Endpoint& stats);

  std::size_t backends() const { return backends_.size(); }
  MemcachedProcess& backend(std::size_t i) { return backends_.at(i); }

 private:
  std::filesystem::path dir_;
  std::vector<MemcachedProcess> backends_;
  std::vector<std::unique_ptr<ChildProcess>> proxies_;
};

}  // namespace ringwatch::testing
