#pragma once
// The lab: a real memcached cluster on this machine, on loopback.
//
//   N memcached backends, each on its own "private" address 127.10.0.(10+i)
//   M proxies on 127.10.1.(i+1), of one kind (UpOptions::proxy_kind,
//     tools/lab/proxy_kind.h): nutcracker (twemproxy; ketama, auto_eject_hosts
//     on, a 1 s stats interval, a stats port) or memcached's built-in proxy
//     (routelib, jump hash over the backends in order, stats on its client
//     port, a config it reloads on SIGHUP)
//   one dnsmasq on 127.10.2.53 serving b<i>.<lab>.ringwatch.test -> private address
// every port chosen free at start. A backend's "public" stand-in address is
// 127.200.0.(10+i), where nothing listens. Nothing outside 127.0.0.0/8 is ever
// written into a config or the spec.
//
// Faults (inject) are recorded in lab.json and all undone by heal. A fault
// in a proxy's config reaches the proxy as its kind takes a new config:
// nutcracker is restarted on its ports, memcached's proxy reloads it.
//   eject P B    P's config points server B (same name, same port, same place
//                in the list) at B's public address. nutcracker is then
//                driven with multi-gets until it has ejected B and routes
//                B's keys to the others; memcached's proxy marks B bad (`stats
//                proxybe`) and keeps B's keys, answering SERVER_ERROR for them.
//   omit P B     P's config lacks backend B: P hashes over the others.
//   weight P B   P weighs B at 2 instead of 1 (nutcracker only): a partial
//                divergence, a fraction of the key space routed differently.
//   dns B IP     the DNS server answers IP (inside 127.0.0.0/8) for B's name.
//   hash P NAME  P takes another hash (nutcracker: `hash: NAME`; memcached:
//                ring, ketama or seeded instead of jump).
//   kill B       SIGKILL; stall B: SIGSTOP; restart B: stopped and started
//                empty on the same address and port (done at once).
// heal restores every config, continues stopped and starts dead backends,
// restores DNS, and restarts every proxy that may have ejected or marked bad
// a backend (any kill, stall or restart), so it routes over every backend
// again at once instead of after its retry time; a proxy whose config alone
// changed takes the healthy one as its kind does.
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
// netns mode (UpOptions::netns, see tools/lab/netns.h): each node in its own
// network namespace with its own address on one bridge, each proxy with its
// own resolver; `ringwatch probe` must then run in the probe's namespace
// (LabStatus::probe_netns). There proxies name their servers by DNS name
// (nutcracker resolves them once, at start; memcached's proxy at every
// connect), and heal restarts every proxy. add_backend,
// drain_backend, remove_backend and restart_proxies are migration steps, in
// both modes.
//
// Thread-safety: calls on different DIRs are independent. Processes are
// started with fork(): call from a thread that holds no locks others need.
//
// Inside: lab.cpp (up, status, down), state.h (lab.json and DIR's files),
// nodes.h (the nodes, their configs and processes), proxy_kind.h (how a
// proxy is configured and started: nutcracker.cpp, memcached_proxy.cpp),
// proxies.h (a running proxy taking a new config), faults.cpp (inject,
// heal) and migration_steps.cpp (add, drain and remove a backend, roll the
// proxies).

#include <chrono>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace ringwatch::lab {

class LabError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The proxy program the lab runs (`--proxy-kind`): nutcracker, or
// memcached's built-in proxy (tools/lab/proxy_kind.h).
enum class LabProxyKind { twemproxy, memcached };
const char* to_string(LabProxyKind kind);  // "twemproxy", "memcached"
std::optional<LabProxyKind> parse_lab_proxy_kind(std::string_view name);

struct UpOptions {
  std::filesystem::path dir;
  int proxies = 3;
  int backends = 3;
  // One network namespace per node, each proxy with its own resolver; needs
  // CAP_NET_ADMIN. The layout is specified in tools/lab/netns.h.
  bool netns = false;
  LabProxyKind proxy_kind = LabProxyKind::twemproxy;
  // More than 1 (nutcracker, loopback only): one nutcracker process serves
  // this many proxies, each a pool of its own (named like the proxy) on its
  // own client port, all answering stats on the process's one stats port
  // and listening on its one address, 127.10.1.<process>. A fault in one
  // proxy's config restarts its whole process (every pool of it).
  int pools_per_process = 1;
};

enum class FaultKind { eject, dns, hash, kill, stall, restart, omit, weight };
const char* to_string(FaultKind kind);  // "eject", "dns", ...
std::optional<FaultKind> parse_fault_kind(std::string_view name);

struct Fault {
  FaultKind kind = FaultKind::eject;
  std::string proxy;    // eject, hash, omit, weight
  std::string backend;  // eject, omit, weight, dns, kill, stall, restart
  std::string answer;   // dns: the address the name now resolves to (127.0.0.0/8 only)
  std::string hash;     // hash: one of the proxy kind's, e.g. "murmur" (nutcracker)
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
  std::string mode = "loopback";    // "loopback" | "netns"
  LabProxyKind proxy_kind = LabProxyKind::twemproxy;
  // netns mode: the namespace to run `ringwatch probe` in, and those that exist.
  std::string probe_netns;
  std::vector<std::string> namespaces;
};

// A new backend (a migration step): started, given a DNS name at every
// vantage point and written into the spec, but no proxy is told; restart
// the proxies (restart_proxies) to take it, as a migration would.
struct AddBackendOptions {
  std::string name;  // empty: the next free b<i>
  // netns mode only: at this proxy's vantage point (its own resolver) the new
  // name resolves to the backend's public address 127.200.0.(10+i), on no
  // interface of the lab, for `public_for` after the call, then to its
  // private address: the incident's DNS propagation delay.
  std::string public_answer_at;
  std::chrono::milliseconds public_for{0};
};

struct RestartProxiesOptions {
  std::vector<std::string> proxies;    // empty: every proxy, in order
  std::chrono::milliseconds pause{0};  // between two proxies (a rolling restart)
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

// Adds and starts a backend; returns its name. Proxies are left as they are.
std::string add_backend(const std::filesystem::path& dir, const AddBackendOptions& options = {});
// Takes a backend out of the spec and out of every proxy config written from
// now on, but leaves it running and resolvable: restart the proxies and they
// stop using it, while clients of proxies not yet restarted still reach it.
// Then remove_backend stops it. This is how a migration retires a backend
// without a window in which proxies route to a dead one. Idempotent.
void drain_backend(const std::filesystem::path& dir, const std::string& backend);
// Stops a backend and removes it from DNS, the spec and (netns) the network;
// proxies keep it in their configs until restarted.
void remove_backend(const std::filesystem::path& dir, const std::string& backend);
// Gives the proxies one at a time configs written from the lab's current
// backends (and faults), as their kind takes them (nutcracker: restarted on
// the same ports, then driven with client traffic until it answers cleanly;
// memcached: reloaded), so a backend a proxy cannot reach has been ejected or
// marked bad when this returns (the lab's `eject` mechanics).
void restart_proxies(const std::filesystem::path& dir, const RestartProxiesOptions& options = {});

}  // namespace ringwatch::lab
