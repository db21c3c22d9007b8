#pragma once
// The lab: a real memcached cluster on this machine, on loopback.
//
//   N memcached backends, each on its own "private" address 127.10.0.(10+i)
//   M nutcracker (twemproxy) proxies on 127.10.1.(i+1), ketama,
//     auto_eject_hosts on, a 1 s stats interval
//   one dnsmasq on 127.10.0.53 serving b<i>.<lab>.ringwatch.test -> private address
// every port chosen free at start. A backend's "public" stand-in address is
// 127.200.0.(10+i), where nothing listens. Nothing outside 127.0.0.0/8 is ever
// written into a config or the spec.
//
// State lives in DIR: DIR/lab.json (every process started, with pid and start
// time, the current faults), DIR/cluster.json (the cluster spec), and per-node
// configs and logs. `down` stops exactly the recorded processes (a pid is only
// signalled if its start time still matches), never anything found by name.
//
// Functions here are not thread-safe against each other on the same DIR;
// configuration errors (no lab in DIR, unknown node) throw LabError.

#include <chrono>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

namespace ringwatch::lab {

class LabError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct UpOptions {
  std::filesystem::path dir;
  int proxies = 3;
  int backends = 3;
};

enum class FaultKind { eject, dns, hash, kill, stall, restart };

struct Fault {
  FaultKind kind = FaultKind::eject;
  std::string proxy;    // eject, hash
  std::string backend;  // eject, dns, kill, stall, restart
  std::string answer;   // dns: the address the name now resolves to (127.0.0.0/8 only)
  std::string hash;     // hash: a nutcracker hash name, e.g. "murmur"
};

struct ProcessStatus {
  std::string node;  // "b1", "p2", "dns"
  std::string role;  // "backend", "proxy", "dns"
  int pid = 0;
  bool alive = false;
  std::string detail;  // "127.10.0.11:40123", "stopped (SIGSTOP)", ...
};

struct LabStatus {
  std::filesystem::path dir;
  std::filesystem::path spec_path;
  std::vector<ProcessStatus> processes;
  std::vector<std::string> faults;  // human-readable active faults
};

// Starts the lab and waits until every process accepts connections; writes
// DIR/cluster.json. Throws LabError if DIR already holds a running lab.
LabStatus up(const UpOptions& options);
LabStatus status(const std::filesystem::path& dir);
void inject(const std::filesystem::path& dir, const Fault& fault);
// Undoes every fault: configs restored, processes restarted or continued,
// and waits until the cluster is healthy (all listening) again.
void heal(const std::filesystem::path& dir);
// Stops every recorded process (SIGCONT, SIGTERM, then SIGKILL after a grace
// period) and waits until none is alive. Idempotent.
void down(const std::filesystem::path& dir);

std::filesystem::path spec_path(const std::filesystem::path& dir);  // DIR/cluster.json

}  // namespace ringwatch::lab
