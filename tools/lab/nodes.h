#pragma once
// The lab's nodes and their processes: what each node is (addresses, ports,
// names), the files it reads (a proxy's config, a resolver's hosts file),
// the command that runs it, starting it and waiting until it serves,
// stopping it, and the cluster spec the lab writes from its nodes. Internal
// to tools/lab: the faults (faults.cpp), the migration steps
// (migration_steps.cpp) and up/status/down (lab.cpp) are built from these.
//
// A proxy is configured and started through its ProxyKind
// (tools/lab/proxy_kind.h), the lab's as recorded in lab.json.
//
// Failures throw LabError naming the node and its log. Functions that start
// processes fork: call them from a thread that holds no locks others need.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "tools/lab/netns.h"
#include "tools/lab/proxy_kind.h"
#include "tools/lab/state.h"

namespace ringwatch::lab {

inline constexpr int kMaxBackends = 200;  // 127.10.0.(10+i) stays inside 127.10.0.0/24
// 127.10.1.i: one address per proxy process (a shared nutcracker's pools
// all listen on its address), at most kMaxProxies proxies in all.
inline constexpr int kMaxProxyProcesses = 200;
inline constexpr int kMaxProxies = 1000;
inline constexpr int kMaxPoolsPerProcess = 100;
inline constexpr const char* kDnsAddress = "127.10.2.53";  // the loopback lab's one resolver

const ProxyKind& proxy_kind(const State& state);

// New nodes, not started, without ports. netns mode: planned in the layout.
Node backend_node(State& state, int index);
// p<index>; with `pools_per_process` > 1 a pool of shared nutcracker process
// ceil(index / pools_per_process), named p<index>, on that process's address.
Node proxy_node(State& state, int index, int pools_per_process = 1);
Node resolver_node(State& state, int proxy_index);  // netns mode: p<i>'s own resolver

// The last lines a node logged, without the lab's own "--- ... starts:" banners.
std::string log_excerpt(const State& state, const std::string& node);

// ---- configs ----
// `healthy`: as if there were no faults (heal writes this).
std::string proxy_config_text(const State& state, const Node& proxy, bool healthy);
// Writes it and has the proxy program check it; LabError if it rejects it.
void write_proxy_config(const State& state, const Node& proxy, bool healthy);
// The hosts file a resolver serves; `vantage_proxy` ("" in the loopback lab)
// is the proxy it answers for, and `ignored` a fault to leave out.
std::string hosts_file(const State& state, bool healthy, const std::string& vantage_proxy = "",
                       const FaultRecord* ignored = nullptr);
// netns mode: the proxy whose namespace (and resolv.conf) a resolver serves.
std::string vantage_proxy_of(const State& state, const Node& dns);
void write_hosts(const State& state, const Node& dns);

// Runs `fn` where the lab's nodes can be reached: right here in the loopback
// lab, on a thread in the probe's namespace in netns mode.
template <class Fn>
auto from_probe_vantage(const State& state, Fn fn) -> decltype(fn()) {
  if (!state.netns) return fn();
  std::optional<decltype(fn())> out;
  run_in_netns(state.netns->probe().netns, [&] { out.emplace(fn()); });
  return std::move(*out);
}

// ---- processes ----
// Ports free now (loopback; a proxy's config is written then, as it names
// them), or the well-known ones (netns, every node on its own address).
// A proxy in a shared process: ports for all its process's proxies, and the
// process's config.
void choose_ports(State& state, Node& node);
// Starts the nodes and waits until all accept. With `may_change_ports` (up)
// a node that dies gets new ports; otherwise it keeps its ports (the spec
// names them) and is retried after a pause.
void start_nodes(State& state, const std::vector<Node*>& nodes, bool may_change_ports);
void stop_nodes(const std::vector<Node*>& nodes, const std::string& new_state);
void restart_nodes(State& state, const std::vector<Node*>& nodes);
// Waits until the lab's resolvers answer every backend name as the hosts
// files say.
void wait_dns_answers(const State& state);
// Rewrites every resolver's hosts file, has it re-read them, and waits until
// every resolver answers as they say.
void reload_dns(State& state);
int count_alive(const State& state);
// Stops the helpers that end timed dns answers (of one backend, or all).
void stop_timers(State& state, const std::string& backend = "");
// Stops every process (and, netns mode, removes the namespaces); the lab is down.
void stop_everything(State& state);

// DIR/cluster.json, from the lab's nodes (draining backends left out).
void write_spec(const State& state);

}  // namespace ringwatch::lab
