#include "tests/support/nutcracker_fleet.h"

#include <unistd.h>

#include <chrono>
#include <fstream>
#include <stdexcept>
#include <thread>

namespace ringwatch::testing {
namespace {

using Clock = std::chrono::steady_clock;

constexpr char kNutcracker[] = "/usr/sbin/nutcracker";

std::string read_text(const std::filesystem::path& path) {
  std::ifstream file(path);
  return {std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>()};
}

}  // namespace

std::string free_loopback_net(const std::vector<int>& hosts,
                              const std::vector<std::uint16_t>& ports) {
  constexpr int kNets = 250;
  const int start = static_cast<int>(::getpid()) % kNets;
  for (int i = 0; i < kNets; ++i) {
    const std::string net = "127.30." + std::to_string((start + i) % kNets + 1);
    bool free = true;
    for (const int host : hosts) {
      for (const std::uint16_t port : ports) {
        free = free && port_is_free(net + "." + std::to_string(host), port);
      }
    }
    if (free) return net;
  }
  throw std::runtime_error("no 127.30.N/24 with the ports free");
}

NutcrackerFleet::NutcrackerFleet() {
  std::string pattern =
      (std::filesystem::temp_directory_path() / "ringwatch-fleet-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  dir_ = pattern;
}

NutcrackerFleet::~NutcrackerFleet() {
  proxies_.clear();
  backends_.clear();
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

const net::Endpoint& NutcrackerFleet::add_backend(const std::string& address, std::uint16_t port) {
  MemcachedProcess::Options options;
  options.address = address;
  options.port = port;
  backends_.emplace_back(options);
  return backends_.back().endpoint();
}

std::filesystem::path NutcrackerFleet::add_proxy(const std::string& name, const std::string& yaml,
                                                 const net::Endpoint& client,
                                                 const net::Endpoint& stats) {
  const std::filesystem::path config = dir_ / (name + ".yml");
  const std::filesystem::path log = dir_ / (name + ".log");
  std::ofstream(config) << yaml;
  auto process = std::make_unique<ChildProcess>(
      std::vector<std::string>{kNutcracker, "-c", config.string(), "-a", stats.host, "-s",
                               std::to_string(stats.port), "-i", "1000", "-o", log.string()});
  const auto deadline = Clock::now() + std::chrono::seconds(5);
  while (!accepts_connections(client.host, client.port) ||
         !accepts_connections(stats.host, stats.port)) {
    if (!process->running() || Clock::now() > deadline) {
      throw std::runtime_error("nutcracker " + name + " did not come up: " + process->output() +
                               read_text(log));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  proxies_.push_back(std::move(process));
  return config;
}

}  // namespace ringwatch::testing
