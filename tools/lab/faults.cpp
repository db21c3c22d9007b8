#include "tools/lab/faults.h"

#include <arpa/inet.h>
#include <signal.h>

#include <algorithm>
#include <utility>

#include "lib/util/text.h"
#include "lib/util/time.h"
#include "tools/lab/nodes.h"
#include "tools/lab/proxies.h"

namespace ringwatch::lab {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

std::optional<std::string> loopback_v4(const std::string& text) {
  in_addr address{};
  if (::inet_pton(AF_INET, text.c_str(), &address) != 1) return std::nullopt;
  if ((ntohl(address.s_addr) >> 24) != 127) return std::nullopt;
  char canonical[INET_ADDRSTRLEN];
  ::inet_ntop(AF_INET, &address, canonical, sizeof canonical);
  return std::string(canonical);
}

void check_fault_fields(const Fault& fault) {
  auto need = [&](bool ok, const char* what) {
    if (!ok) throw LabError(std::string("fault ") + to_string(fault.kind) + " needs " + what);
  };
  switch (fault.kind) {
    case FaultKind::eject:
    case FaultKind::omit:
    case FaultKind::weight:
      need(!fault.proxy.empty() && !fault.backend.empty(), "a proxy and a backend");
      break;
    case FaultKind::dns:
      need(!fault.backend.empty() && !fault.answer.empty(), "a backend and an answer");
      break;
    case FaultKind::hash:
      need(!fault.proxy.empty() && !fault.hash.empty(), "a proxy and a hash");
      break;
    case FaultKind::kill:
    case FaultKind::stall:
    case FaultKind::restart:
      need(!fault.backend.empty(), "a backend");
      break;
  }
}

// eject, omit, weight and hash: the fault goes into the proxy's config, and the
// proxy takes it (a reload or a restart, tools/lab/proxies.h).
void add_proxy_fault(State& state, Node& proxy, FaultRecord record) {
  record.proxy = proxy.name;
  state.faults.push_back(std::move(record));
  apply_proxy_config(state, proxy, false);
  settle_ejections(state, proxy);
}

// eject and omit: one backend in one proxy's config.
void inject_backend_fault(State& state, const Fault& fault, FaultRecord record) {
  Node& proxy = find_node(state, "proxy", fault.proxy);
  find_node(state, "backend", fault.backend);
  if (find_fault(state, fault.kind, proxy.name, fault.backend)) return;
  // A backend left out of the config is not also pointed elsewhere.
  const FaultKind other = fault.kind == FaultKind::eject ? FaultKind::omit : FaultKind::eject;
  remove_faults(state, other, proxy.name, fault.backend);
  record.backend = fault.backend;
  add_proxy_fault(state, proxy, std::move(record));
}

// weight: one backend weighed double in one proxy's config (nutcracker's
// `host:port:weight`; the memcached proxy lab's routelib config has none).
void inject_weight(State& state, const Fault& fault, FaultRecord record) {
  if (proxy_kind(state).spec_kind() != spec::ProxyKind::twemproxy)
    throw LabError(std::string("fault weight: the ") + proxy_kind(state).program() +
                   " lab's proxy config has no server weights (a twemproxy lab has)");
  Node& proxy = find_node(state, "proxy", fault.proxy);
  find_node(state, "backend", fault.backend);
  if (find_fault(state, FaultKind::weight, proxy.name, fault.backend)) return;
  record.backend = fault.backend;
  add_proxy_fault(state, proxy, std::move(record));
}

void inject_hash(State& state, const Fault& fault, FaultRecord record) {
  Node& proxy = find_node(state, "proxy", fault.proxy);
  const ProxyKind& kind = proxy_kind(state);
  const auto& hashes = kind.hashes();
  if (std::find(hashes.begin(), hashes.end(), fault.hash) == hashes.end())
    throw LabError("unknown hash '" + fault.hash + "' (" + kind.program() +
                   " knows: " + util::join(hashes) + ")");
  remove_faults(state, FaultKind::hash, proxy.name, "");
  record.hash = fault.hash;
  add_proxy_fault(state, proxy, std::move(record));
}

void inject_dns(State& state, const Fault& fault, FaultRecord record) {
  Node& backend = find_node(state, "backend", fault.backend);
  auto answer = loopback_v4(fault.answer);
  if (!answer)
    throw LabError("dns answer '" + fault.answer + "' is not an IPv4 address inside 127.0.0.0/8");
  stop_timers(state, backend.name);
  remove_faults(state, FaultKind::dns, "", backend.name);
  record.backend = backend.name;
  record.answer = *answer;
  state.faults.push_back(record);
  reload_dns(state);
}

// kill and stall: one signal to a backend, until the kernel shows its effect.
struct SignalFault {
  int signal;
  const char* signal_name;
  ProcState reaches;  // the process state the signal brings about
  const char* verb;   // "did not <verb> after <signal_name>"
  const char* node_state;
};
constexpr SignalFault kKill{SIGKILL, "SIGKILL", ProcState::dead, "die", "killed"};
constexpr SignalFault kStall{SIGSTOP, "SIGSTOP", ProcState::stopped, "stop", "stalled"};

void signal_backend(State& state, const Fault& fault, FaultRecord record, const SignalFault& how) {
  Node& backend = find_node(state, "backend", fault.backend);
  ProcState st = probe(backend.process);
  if (st == ProcState::dead) throw LabError(backend.name + " is not running");
  if (st != how.reaches) {
    send_signal(backend.process, how.signal);
    if (!wait_for_state(backend.process, how.reaches, 5s))
      throw LabError(backend.name + " (pid " + std::to_string(backend.process.pid) + ") did not " +
                     how.verb + " after " + how.signal_name);
  }
  backend.state = how.node_state;
  // Killed: it is no longer stalled; stalled again: one stall fault, not two.
  remove_faults(state, FaultKind::stall, "", backend.name);
  record.backend = backend.name;
  state.faults.push_back(record);
}

void restart_backend(State& state, const Fault& fault, FaultRecord record) {
  Node& backend = find_node(state, "backend", fault.backend);
  for (auto kind : {FaultKind::kill, FaultKind::stall, FaultKind::restart})
    remove_faults(state, kind, "", backend.name);
  record.backend = backend.name;
  state.faults.push_back(record);
  restart_nodes(state, {&backend});
}

// Continues stopped and starts dead backends; true if any backend was
// disturbed (then every proxy may have ejected one).
bool wake_backends(State& state) {
  bool disturbed = false;
  for (const auto& fault : state.faults)
    if (fault.kind == FaultKind::kill || fault.kind == FaultKind::stall ||
        fault.kind == FaultKind::restart)
      disturbed = true;
  std::vector<Node*> to_start;
  for (Node* backend : nodes_with_role(state, "backend")) {
    ProcState st = probe(backend->process);
    if (st == ProcState::stopped) {
      send_signal(backend->process, SIGCONT);
      wait_for_state(backend->process, ProcState::running, 2s);
      disturbed = true;
    } else if (st == ProcState::dead) {
      to_start.push_back(backend);
      disturbed = true;
    }
    backend->state = "running";
  }
  start_nodes(state, to_start, false);
  return disturbed;
}

// A proxy that saw a backend down may have ejected it (nutcracker: and keeps
// routing around it for server_retry_timeout) or marked it bad (memcached:
// until its next retry); a restart forgets that. A proxy whose config alone
// changed takes the healthy one as its kind does (memcached: a reload).
void restart_proxies_healthy(State& state, bool backends_disturbed) {
  std::vector<Node*> to_restart, to_reconfigure;
  // A shared nutcracker's config is written and its process restarted once.
  for (Node* proxy : one_per_process(nodes_with_role(state, "proxy"))) {
    bool changed =
        read_file(config_path(state, proxy->name)) != proxy_config_text(state, *proxy, true);
    // netns mode: every proxy, so that each resolves every name afresh (one
    // may have resolved a name while its answer was wrong, and ejected it).
    if (backends_disturbed || state.netns || probe(proxy->process) != ProcState::running) {
      write_proxy_config(state, *proxy, true);
      to_restart.push_back(proxy);
    } else if (changed) {
      to_reconfigure.push_back(proxy);
    }
  }
  state.faults.clear();
  restart_nodes(state, to_restart);
  for (Node* proxy : to_reconfigure) apply_proxy_config(state, *proxy, true);
}

}  // namespace

const char* to_string(FaultKind kind) {
  switch (kind) {
    case FaultKind::eject:
      return "eject";
    case FaultKind::dns:
      return "dns";
    case FaultKind::hash:
      return "hash";
    case FaultKind::kill:
      return "kill";
    case FaultKind::stall:
      return "stall";
    case FaultKind::restart:
      return "restart";
    case FaultKind::omit:
      return "omit";
    case FaultKind::weight:
      return "weight";
  }
  return "eject";
}

std::optional<FaultKind> parse_fault_kind(std::string_view name) {
  for (const auto kind : {FaultKind::eject, FaultKind::omit, FaultKind::weight, FaultKind::dns,
                          FaultKind::hash, FaultKind::kill, FaultKind::stall, FaultKind::restart})
    if (name == to_string(kind)) return kind;
  return std::nullopt;
}

std::string describe(const State& state, const FaultRecord& fault) {
  const Node* b = nullptr;
  for (const auto& node : state.nodes)
    if (!b && node.role == "backend" && node.name == fault.backend) b = &node;
  switch (fault.kind) {
    case FaultKind::eject: {
      std::string text = "eject: " + fault.proxy + " sends " + fault.backend +
                         " to its public address " +
                         (b ? b->public_address + ":" + std::to_string(b->port) : "?");
      if (fault.settle_ms >= 0)
        text += proxy_kind(state).unreachable_backend() == UnreachableBackend::ejected
                    ? " (ejected after " + std::to_string(fault.settle_ms) + " ms)"
                    : " (marked bad after " + std::to_string(fault.settle_ms) + " ms)";
      return text;
    }
    case FaultKind::omit:
      return "omit: " + fault.proxy + "'s config lacks " + fault.backend;
    case FaultKind::weight:
      return "weight: " + fault.proxy + " weighs " + fault.backend + " at 2 instead of 1";
    case FaultKind::dns: {
      std::string text =
          "dns: " + (b ? b->dns_name : fault.backend) + " resolves to " + fault.answer;
      if (!fault.proxy.empty()) text += " at " + fault.proxy + "'s vantage point";
      if (fault.until_ms >= 0)
        text += " for " + std::to_string(std::max<std::int64_t>(0, fault.until_ms - now_ms())) +
                " ms more";
      return text;
    }
    case FaultKind::hash:
      return "hash: " + fault.proxy + " hashes with " + fault.hash + " instead of " +
             proxy_kind(state).healthy_hash();
    case FaultKind::kill:
      return "kill: " + fault.backend + " was killed (SIGKILL)";
    case FaultKind::stall:
      return "stall: " + fault.backend + " is stopped (SIGSTOP)";
    case FaultKind::restart:
      return "restart: " + fault.backend + " was restarted empty";
  }
  return "";
}

void inject(const fs::path& dir, const Fault& fault) {
  check_fault_fields(fault);
  mutate(dir, [&](State& state) {
    FaultRecord record;
    record.kind = fault.kind;
    record.at = util::format_rfc3339(std::chrono::system_clock::now());
    switch (fault.kind) {
      case FaultKind::eject:
      case FaultKind::omit:
        return inject_backend_fault(state, fault, record);
      case FaultKind::weight:
        return inject_weight(state, fault, record);
      case FaultKind::hash:
        return inject_hash(state, fault, record);
      case FaultKind::dns:
        return inject_dns(state, fault, record);
      case FaultKind::kill:
        return signal_backend(state, fault, record, kKill);
      case FaultKind::stall:
        return signal_backend(state, fault, record, kStall);
      case FaultKind::restart:
        return restart_backend(state, fault, record);
    }
  });
}

void heal(const fs::path& dir) {
  mutate(dir, [&](State& state) {
    // Backends first, so that proxies restart into a complete cluster.
    const bool backends_disturbed = wake_backends(state);
    stop_timers(state);
    std::erase_if(state.faults, [](const FaultRecord& f) { return f.kind == FaultKind::dns; });
    reload_dns(state);
    restart_proxies_healthy(state, backends_disturbed);
  });
}

}  // namespace ringwatch::lab
