#pragma once
// The lab's state file, DIR/lab.json: every node the lab started (with its
// pid and start time, tools/lab/process.h), the faults it injected, and, in
// netns mode, its namespaces; and the paths of everything else the lab
// keeps in DIR. Internal to tools/lab; the interface is tools/lab/lab.h.
//
// lab.json is read through the spec's JSON cursor (lib/spec/json_cursor.h),
// so a damaged file is a LabError naming the file, the JSON pointer and what
// was expected ("DIR/lab.json: /nodes/1/port: expected an integer from 0 to
// 65535, got a string"); it is written with RapidJSON and always replaced
// atomically (a temporary file renamed over it), so a reader never sees half
// a file. Reading drops a timed dns answer whose time is up (its helper has
// restored the answer), reaping that helper if it is our child.
//
// mutate() is the one way a command changes a running lab: an flock on
// DIR/lab.lock, the state loaded, the change, and the state saved whatever
// happens, so lab.json always records the processes that exist.
//
// Thread-safety: no shared state; calls on different DIRs are independent.

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tools/lab/lab.h"
#include "tools/lab/netns.h"
#include "tools/lab/process.h"

namespace ringwatch::lab {

struct Node {
  std::string name;
  std::string role;  // "backend", "proxy", "dns"
  int index = 0;     // i in b<i> / p<i>
  std::string address;
  std::uint16_t port = 0;
  std::uint16_t stats_port = 0;  // proxy
  // proxy in a shared nutcracker process (UpOptions::pools_per_process > 1):
  // the process's number (1..), 0 for a proxy with a process of its own; and
  // the pool it is in that process's config ("" = the lab's name). Every
  // proxy of a process records the process's pid, stats port and address.
  int process_group = 0;
  std::string pool;
  std::string public_address;  // backend: where nothing listens
  std::string dns_name;        // backend
  std::vector<std::string> argv;
  ProcessId process;
  std::string started_at;
  std::string state = "running";  // running | killed | stalled | down
  std::string netns;              // netns mode: the namespace it runs in
  // backend: still running and resolvable, but out of the spec and of every
  // proxy config written from now on (a migration retiring it; see drain_backend).
  bool draining = false;

  std::string endpoint() const { return address + ":" + std::to_string(port); }
};

struct FaultRecord {
  FaultKind kind = FaultKind::eject;
  std::string proxy, backend, answer, hash;
  std::string at;
  std::int64_t settle_ms = -1;  // eject: time until the proxy routed around the backend
  // dns with an end (add_backend's public answer): when it ends (ms since the
  // epoch) and the helper that then restores the answer.
  std::int64_t until_ms = -1;
  ProcessId timer;
};

struct State {
  std::filesystem::path dir;
  std::string name;
  bool up = false;
  LabProxyKind proxy_kind = LabProxyKind::twemproxy;
  std::string created_at;
  std::vector<Node> nodes;
  std::vector<FaultRecord> faults;
  std::optional<NetnsLayout> netns;  // netns mode
};

std::int64_t now_ms();  // since the epoch

// ---- DIR's files ----
std::filesystem::path state_path(const std::filesystem::path& dir);  // DIR/lab.json
std::filesystem::path log_path(const std::filesystem::path& dir, const std::string& node);
// A proxy's config file, named for its kind (conf/p1.yml, conf/p1.lua); a
// proxy in a shared process: the process's (conf/nutcracker-3.yml).
std::filesystem::path config_path(const State& state, const std::string& proxy);
// What names a node's process, its log and (proxy) its config: its own name,
// or "nutcracker-<n>" for a proxy in a shared process.
std::string process_name(const Node& node);
std::filesystem::path hosts_path(const std::filesystem::path& dir);  // the loopback lab's DNS
std::filesystem::path dnsmasq_log_path(const std::filesystem::path& dir);
// netns mode: each resolver reads every hosts file in its own directory
// (dnsmasq --hostsdir notices a file renamed into it; SIGHUP re-reads too).
std::filesystem::path hosts_dir(const std::filesystem::path& dir, const std::string& dns_node);
std::filesystem::path netns_log_path(const std::filesystem::path& dir);

// Writes a temporary file beside `path` and renames it over `path`.
void write_atomically(const std::filesystem::path& path, const std::string& content);
std::string read_file(const std::filesystem::path& path);  // "" if unreadable

// ---- lab.json ----
void save(const State& state);
// Throws LabError: no lab.json in DIR, or a damaged one.
State load(const std::filesystem::path& dir);

// ---- lookups ----
std::vector<Node*> nodes_with_role(State& state, const std::string& role);
std::vector<const Node*> nodes_with_role(const State& state, const std::string& role);
// Throws LabError naming the known nodes of that role.
Node& find_node(State& state, const std::string& role, const std::string& name);
// The proxies sharing `proxy`'s process, itself included, in order (just
// itself when it has a process of its own).
std::vector<Node*> process_mates(State& state, const Node& proxy);
// `nodes` with every process mate of each added, each node once, in order.
std::vector<Node*> with_process_mates(State& state, const std::vector<Node*>& nodes);
// The first node of each process among `nodes`.
std::vector<Node*> one_per_process(const std::vector<Node*>& nodes);
// The first fault of `kind` (with that proxy and backend, if not empty).
const FaultRecord* find_fault(const State& state, FaultKind kind, const std::string& proxy,
                              const std::string& backend);
void remove_faults(State& state, FaultKind kind, const std::string& proxy,
                   const std::string& backend);

// ---- changing a lab ----
// Serialises the commands that change a lab: an exclusive flock on
// DIR/lab.lock, released when the guard goes (or the process dies).
class DirLock {
 public:
  explicit DirLock(const std::filesystem::path& dir);
  ~DirLock();
  DirLock(const DirLock&) = delete;
  DirLock& operator=(const DirLock&) = delete;

 private:
  int fd_ = -1;
};

void require_up(const State& state);  // LabError if the lab is down
// Locks DIR, loads it, requires it up, runs `change` and saves the state,
// also when `change` throws.
void mutate(const std::filesystem::path& dir, const std::function<void(State&)>& change);

}  // namespace ringwatch::lab
