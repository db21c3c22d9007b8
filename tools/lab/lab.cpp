// up, status and down: a lab's life. The faults are in faults.cpp, the
// migration steps in migration_steps.cpp, the nodes in nodes.cpp and
// lab.json in state.cpp.

#include "tools/lab/lab.h"

#include <cctype>

#include "lib/util/time.h"
#include "tools/lab/faults.h"
#include "tools/lab/nodes.h"
#include "tools/lab/proxies.h"

namespace ringwatch::lab {
namespace {

namespace fs = std::filesystem;

std::string lab_name_for(const fs::path& dir) {
  fs::path normal = fs::absolute(dir).lexically_normal();
  std::string base = normal.filename().string();
  if (base.empty()) base = normal.parent_path().filename().string();
  std::string name;
  for (char c : base) {
    char lower = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    bool ok = (lower >= 'a' && lower <= 'z') || (lower >= '0' && lower <= '9');
    if (ok) {
      name += lower;
    } else if (!name.empty() && name.back() != '-') {
      name += '-';
    }
  }
  while (!name.empty() && name.back() == '-') name.pop_back();
  if (name.size() > 40) name.resize(40);
  while (!name.empty() && name.back() == '-') name.pop_back();
  return name.empty() ? "lab" : name;
}

void check_pools_per_process(const UpOptions& options) {
  const int per = options.pools_per_process;
  if (per < 1 || per > kMaxPoolsPerProcess)
    throw LabError("pools per process must be between 1 and " +
                   std::to_string(kMaxPoolsPerProcess) + ", not " + std::to_string(per));
  if (per > 1 && options.proxy_kind != LabProxyKind::twemproxy)
    throw LabError("several pools per process need the twemproxy lab (nutcracker), not " +
                   std::string(to_string(options.proxy_kind)));
  if (per > 1 && options.netns)
    throw LabError(
        "several pools per process are a loopback lab's; netns mode gives each proxy "
        "a namespace of its own");
  const int processes = (options.proxies + per - 1) / per;
  if (processes > kMaxProxyProcesses)
    throw LabError(std::to_string(options.proxies) + " proxies in " + std::to_string(processes) +
                   " processes: at most " + std::to_string(kMaxProxyProcesses) +
                   " proxy processes; give more pools per process (at least " +
                   std::to_string((options.proxies + kMaxProxyProcesses - 1) / kMaxProxyProcesses) +
                   ")");
}

void check_up_options(const UpOptions& options) {
  if (options.dir.empty()) throw LabError("no lab directory given");
  if (options.netns)
    if (auto why = netns_unavailable_reason()) throw LabError(*why);
  if (options.backends < 1 || options.backends > kMaxBackends)
    throw LabError("backends must be between 1 and " + std::to_string(kMaxBackends) + ", not " +
                   std::to_string(options.backends));
  if (options.proxies < 1 || options.proxies > kMaxProxies)
    throw LabError("proxies must be between 1 and " + std::to_string(kMaxProxies) + ", not " +
                   std::to_string(options.proxies));
  check_pools_per_process(options);
}

void make_directories(const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw LabError("cannot create " + dir.string() + ": " + ec.message());
}

// A lab that is still running in DIR is an error; what a stopped one left
// behind in netns mode (its names are this DIR's) is removed.
void clear_previous_lab(const fs::path& dir) {
  if (!fs::exists(state_path(dir))) return;
  State previous = load(dir);
  int alive = count_alive(previous);
  if (alive > 0)
    throw LabError(dir.string() + " already holds a running lab (" + std::to_string(alive) +
                   " of its processes alive); stop it with `ringwatch lab down --dir " +
                   dir.string() + "`");
  if (previous.netns) destroy_netns(*previous.netns, netns_log_path(dir));
}

// Programs are looked up first so that a missing one fails before anything starts.
void find_programs(const State& state) {
  try {
    for (const char* program : {"memcached", "dnsmasq"}) find_program(program);
    proxy_kind(state).locate();
  } catch (const std::runtime_error& e) {
    throw LabError(e.what());
  }
}

// memcached's proxy accepts clients before it has connected to its backends,
// and one that meets a slow connect marks the backend bad for a second: the
// lab is up when each answers cleanly. nutcracker is left alone: it connects
// lazily, and a proxy that has not yet talked to a backend is what some
// tests look at.
void wait_connected_to_backends(const State& state) {
  if (proxy_kind(state).unreachable_backend() != UnreachableBackend::marked_bad) return;
  for (const Node* proxy : nodes_with_role(state, "proxy")) wait_serving(state, *proxy, "start");
}

// netns mode's half of `up` (tools/lab/netns.h): the same nodes, each in
// its own namespace, one resolver per proxy in the proxy's namespace.
void up_netns(State& state, const UpOptions& options) {
  state.netns = plan_netns(state.dir);
  for (int i = 1; i <= options.backends; ++i) state.nodes.push_back(backend_node(state, i));
  for (int i = 1; i <= options.proxies; ++i) state.nodes.push_back(resolver_node(state, i));
  for (int i = 1; i <= options.proxies; ++i) state.nodes.push_back(proxy_node(state, i));
  for (auto& node : state.nodes) choose_ports(state, node);
  save(state);  // the namespaces are recorded before any exists
  create_netns(*state.netns, netns_log_path(state.dir));
  std::vector<Node*> first = nodes_with_role(state, "backend");
  for (Node* dns : nodes_with_role(state, "dns")) {
    write_hosts(state, *dns);
    first.push_back(dns);
  }
  start_nodes(state, first, false);
  wait_dns_answers(state);
  // Proxies last: nutcracker resolves its servers' names once, at start.
  auto proxies = nodes_with_role(state, "proxy");
  for (Node* proxy : proxies) write_proxy_config(state, *proxy, false);
  start_nodes(state, proxies, false);
  wait_connected_to_backends(state);
  write_spec(state);
}

// A proxy in a shared process logs where its process does: logs/p7.log is a
// link to logs/nutcracker-1.log, so every message naming a proxy's log is true.
void link_shared_logs(const State& state) {
  for (const Node* node : nodes_with_role(state, "proxy")) {
    if (node->process_group == 0) continue;
    const fs::path link = log_path(state.dir, node->name);
    std::error_code ec;
    fs::remove(link, ec);
    fs::create_symlink(log_path(state.dir, process_name(*node)).filename(), link, ec);
    if (ec) throw LabError("cannot link " + link.string() + ": " + ec.message());
  }
}

// The loopback lab: every node on its own 127.10.x.y address, on free ports.
void up_loopback(State& state, const UpOptions& options) {
  for (int i = 1; i <= options.backends; ++i) state.nodes.push_back(backend_node(state, i));
  Node dns;
  dns.name = "dns";
  dns.role = "dns";
  dns.address = kDnsAddress;
  state.nodes.push_back(std::move(dns));
  for (int i = 1; i <= options.proxies; ++i)
    state.nodes.push_back(proxy_node(state, i, options.pools_per_process));
  link_shared_logs(state);
  try {
    for (auto& node : state.nodes)
      if (node.role != "proxy") choose_ports(state, node);
    // Proxy configs name the backends' ports, so backends get theirs first.
    for (Node* node : one_per_process(nodes_with_role(state, "proxy"))) choose_ports(state, *node);
  } catch (const std::runtime_error& e) {
    if (dynamic_cast<const LabError*>(&e)) throw;
    throw LabError(e.what());
  }
  write_atomically(hosts_path(state.dir), hosts_file(state, true));
  std::vector<Node*> all;
  for (const char* role : {"backend", "dns", "proxy"})
    for (Node* node : nodes_with_role(state, role)) all.push_back(node);
  start_nodes(state, all, true);
  wait_dns_answers(state);
  wait_connected_to_backends(state);
  write_spec(state);
}

ProcessStatus status_of(const fs::path& dir, const Node& node) {
  ProcessStatus ps;
  ps.node = node.name;
  ps.role = node.role;
  ps.pid = node.process.pid;
  ps.endpoint = node.endpoint();
  if (node.role == "proxy" && node.stats_port != 0)
    ps.stats_endpoint = node.address + ":" + std::to_string(node.stats_port);
  ProcState st = probe(node.process);
  ps.alive = st == ProcState::running;
  ps.state = to_string(st);
  ps.detail = ps.endpoint;
  if (!ps.stats_endpoint.empty()) ps.detail += " (stats " + ps.stats_endpoint + ")";
  if (!node.netns.empty()) ps.detail += " in netns " + node.netns;
  if (node.draining) ps.detail += ", draining (out of the spec and new proxy configs)";
  if (st == ProcState::stopped) ps.detail += ", stopped (SIGSTOP)";
  if (st == ProcState::dead) {
    if (node.state == "killed")
      ps.detail += ", dead (killed by a fault)";
    else if (node.state == "down")
      ps.detail += ", dead (lab down)";
    else
      ps.detail += ", dead (exited unexpectedly; see " + log_path(dir, node.name).string() + ")";
  }
  return ps;
}

}  // namespace

fs::path spec_path(const fs::path& dir) {
  return dir / "cluster.json";
}

LabStatus up(const UpOptions& options) {
  check_up_options(options);
  const fs::path& dir = options.dir;
  make_directories(dir);
  DirLock lock(dir);
  clear_previous_lab(dir);
  for (const char* sub : {"logs", "conf", "dns"}) make_directories(dir / sub);

  State state;
  state.dir = dir;
  state.name = lab_name_for(dir);
  state.up = true;
  state.proxy_kind = options.proxy_kind;
  state.created_at = util::format_rfc3339(std::chrono::system_clock::now());
  find_programs(state);
  try {
    if (options.netns) {
      up_netns(state, options);
    } else {
      up_loopback(state, options);
    }
  } catch (...) {
    try {
      stop_everything(state);
    } catch (...) {
    }
    throw;
  }
  save(state);
  return lab::status(dir);
}

LabStatus status(const fs::path& dir) {
  State state = load(dir);
  LabStatus out;
  out.dir = dir;
  out.spec_path = spec_path(dir);
  out.name = state.name;
  out.is_up = state.up;
  out.proxy_kind = state.proxy_kind;
  for (const auto& node : state.nodes) out.processes.push_back(status_of(dir, node));
  for (const auto& fault : state.faults) out.faults.push_back(describe(state, fault));
  if (state.netns) {
    out.mode = "netns";
    out.probe_netns = state.netns->probe().netns;
    out.namespaces = existing_netns(*state.netns);
  }
  return out;
}

void down(const fs::path& dir) {
  load(dir);  // the "no lab" error, before creating a lock file
  DirLock lock(dir);
  State state = load(dir);
  stop_everything(state);
}

}  // namespace ringwatch::lab
