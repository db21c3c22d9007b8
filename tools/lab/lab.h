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
// Faults (inject) are recorded in lab.json and all undone by heal:
//   eject P B    P's config points server B (same name, same port) at B's
//                public address; P is restarted on its ports, then driven with
//                one multi-get until it has ejected B and routes around it.
//   dns B IP     the DNS server answers IP (inside 127.0.0.0/8) for B's name.
//   hash P NAME  P is restarted with `hash: NAME`.
//   kill B       SIGKILL; stall B: SIGSTOP; restart B: stopped and started
//                empty on the same address and port (done at once).
// heal restores every config, continues stopped and starts dead backends,
// restores DNS, and restarts every proxy whose config changed or that may
// have ejected a backend (any kill, stall or restart), so it routes over
// every backend again at once instead of after server_retry_timeout.
//
// State lives in DIR: DIR/lab.json (every process started, with pid and start
// time, the current faults), DIR/cluster.json (the cluster spec), and per-node
// configs and logs. `down` stops exactly the recorded processes (a pid is only
// signalled if its start time still matches), never anything found by name.
//
// up, inject, heal and down on the same DIR are serialised by an flock on
// DIR/lab.lock (across processes too); status only reads lab.json, which is
// always replaced atomically. Configuration errors (no lab in DIR, unknown
// node, a fault on a lab that is down) throw LabError.
//
// Thread-safety: calls on different DIRs are independent. Processes are
// started with fork(): call from a thread that holds no locks others need.

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
  // Running (not stopped, not a zombie) and still the process the lab started
  // (its start time matches).
  bool alive = false;
  std::string detail;          // "127.10.0.11:40123", "... , stopped (SIGSTOP)", ...
  std::string state;           // "running", "stopped", "dead"
  std::string endpoint;        // address:port it serves on
  std::string stats_endpoint;  // proxies: the stats port; empty otherwise
};

struct LabStatus {
  std::filesystem::path dir;
  std::filesystem::path spec_path;
  std::string name;    // the lab's (and cluster's) name
  bool is_up = false;  // false after `down`
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
