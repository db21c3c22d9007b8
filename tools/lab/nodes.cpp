#include "tools/lab/nodes.h"

#include <pwd.h>
#include <signal.h>
#include <unistd.h>

#include <sstream>
#include <thread>
#include <utility>

#include "lib/net/address.h"
#include "lib/spec/cluster_spec.h"
#include "lib/util/time.h"
#include "tools/lab/dns_query.h"

namespace ringwatch::lab {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr auto kReadyTimeout = 5s;
constexpr auto kStopGrace = 2s;
constexpr auto kProbeTimeout = 200ms;
constexpr int kStartAttempts = 4;
constexpr const char* kDnsVantage = "lab-dns";
constexpr const char* kExpectedCidr = "127.10.0.0/16";
constexpr const char* kDomain = "ringwatch.test";

std::string current_user() {
  if (const passwd* pw = ::getpwuid(::geteuid())) return pw->pw_name;
  return std::to_string(::geteuid());
}

// What `vantage_proxy`'s resolver answers for the backend's name ("": the
// shared resolver of the loopback lab). A dns fault with a proxy applies
// only at that proxy's vantage point.
std::string answer_at(const State& state, const Node& backend, const std::string& vantage_proxy,
                      const FaultRecord* ignored = nullptr) {
  std::string answer = backend.address;
  for (const auto& fault : state.faults)
    if (&fault != ignored && fault.kind == FaultKind::dns && fault.backend == backend.name &&
        (fault.proxy.empty() || fault.proxy == vantage_proxy))
      answer = fault.answer;
  return answer;
}

ProxyConfig proxy_config(const State& state, const Node& proxy, bool healthy) {
  ProxyConfig config;
  config.pool = proxy.pool.empty() ? state.name : proxy.pool;
  config.proxy = proxy.name;
  config.address = proxy.address;
  config.port = proxy.port;
  config.stats_port = proxy.stats_port;
  config.hash = proxy_kind(state).healthy_hash();
  if (!healthy)
    if (const auto* fault = find_fault(state, FaultKind::hash, proxy.name, ""))
      config.hash = fault->hash;
  for (const Node* backend : nodes_with_role(state, "backend")) {
    if (backend->draining) continue;
    if (!healthy && find_fault(state, FaultKind::omit, proxy.name, backend->name)) continue;
    bool ejected = !healthy && find_fault(state, FaultKind::eject, proxy.name, backend->name);
    // netns mode: the backend's DNS name, which the proxy resolves through
    // its own resolver (its resolv.conf): nutcracker once at start,
    // memcached's proxy at every connect.
    const std::string& host = state.netns ? backend->dns_name : backend->address;
    const bool heavier =
        !healthy && find_fault(state, FaultKind::weight, proxy.name, backend->name);
    config.servers.push_back(
        {backend->name, ejected ? backend->public_address : host, backend->port, heavier ? 2 : 1});
  }
  return config;
}

std::vector<std::string> dnsmasq_argv(const State& state, const Node& node) {
  // netns mode: one resolver per proxy, each with its own hosts directory
  // and query log.
  const bool own = !node.netns.empty();
  return {find_program("dnsmasq").string(),
          "--keep-in-foreground",
          "--conf-file=/dev/null",
          "--no-resolv",
          "--no-hosts",
          "--listen-address=" + node.address,
          "--bind-interfaces",
          "--port=" + std::to_string(node.port),
          own ? "--hostsdir=" + hosts_dir(state.dir, node.name).string()
              : "--addn-hosts=" + hosts_path(state.dir).string(),
          "--local=/" + state.name + "." + kDomain + "/",
          "--local-ttl=1",
          "--pid-file=",
          "--user=" + current_user(),
          "--log-queries",
          "--log-facility=" + (own ? state.dir / "logs" / (node.name + ".queries.log")
                                   : dnsmasq_log_path(state.dir))
                                  .string()};
}

// Each proxy (each pool of a shared nutcracker) holds a connection to every
// backend, and the probe a few more: room for twice the proxies.
std::string backend_connection_limit(const State& state) {
  const auto proxies = static_cast<int>(nodes_with_role(state, "proxy").size());
  return std::to_string(std::max(1024, 2 * proxies + 256));
}

std::vector<std::string> memcached_argv(const State& state, const Node& node) {
  std::vector<std::string> argv{find_program("memcached").string()};
  if (::geteuid() == 0) {
    argv.emplace_back("-u");
    argv.emplace_back("root");
  }
  argv.insert(argv.end(), {"-l", node.address, "-p", std::to_string(node.port), "-U", "0", "-t",
                           "1", "-m", "64", "-c", backend_connection_limit(state)});
  return argv;
}

std::vector<std::string> build_argv(const State& state, const Node& node) {
  std::vector<std::string> argv;
  if (node.role == "backend") {
    argv = memcached_argv(state, node);
  } else if (node.role == "proxy") {
    const ProxyKind& kind = proxy_kind(state);
    argv = kind.argv(kind.locate(), proxy_config(state, node, false), config_path(state, node.name),
                     log_path(state.dir, process_name(node)));
  } else {
    argv = dnsmasq_argv(state, node);
  }
  if (node.netns.empty()) return argv;
  return in_netns_argv(node.netns, std::move(argv));
}

// ---- starting and readiness -------------------------------------------

const std::string& first_backend_name(const State& state) {
  for (const auto& node : state.nodes)
    if (node.role == "backend") return node.dns_name;
  static const std::string none = "ringwatch.test";
  return none;
}

bool is_ready(const State& state, const Node& node) {
  return from_probe_vantage(state, [&] {
    if (node.role == "dns")
      return query_a(node.address, node.port, first_backend_name(state), kProbeTimeout).has_value();
    if (!tcp_accepts(node.address, node.port, kProbeTimeout)) return false;
    return node.role != "proxy" || node.stats_port == 0 ||
           tcp_accepts(node.address, node.stats_port, kProbeTimeout);
  });
}

// Starts the node's process; every proxy sharing it records it too.
void start_node(State& state, Node& node) {
  node.argv = build_argv(state, node);
  try {
    node.process = spawn(node.argv, log_path(state.dir, process_name(node)), state.dir);
  } catch (const std::runtime_error& e) {
    throw LabError(process_name(node) + ": " + e.what());
  }
  node.started_at = util::format_rfc3339(std::chrono::system_clock::now());
  node.state = "running";
  for (Node* mate : process_mates(state, node)) {
    mate->argv = node.argv;
    mate->process = node.process;
    mate->started_at = node.started_at;
    mate->state = node.state;
  }
}

// A shared process's proxies: free ports for each on the process's address
// and one stats port for all, then the process's config, naming them all.
void choose_process_ports(State& state, Node& proxy) {
  std::vector<Node*> mates = process_mates(state, proxy);
  auto ports = free_ports(proxy.address, mates.size() + 1, false);
  for (std::size_t i = 0; i < mates.size(); ++i) {
    mates[i]->port = ports[i];
    mates[i]->stats_port = ports.back();
  }
  write_proxy_config(state, proxy, false);
}

// Waits until every node accepts. Nodes that exit first (typically a port
// taken between choosing and binding it) are returned; a node that lives but
// does not accept in time is an error.
std::vector<Node*> wait_ready(const State& state, const std::vector<Node*>& nodes) {
  auto deadline = Clock::now() + kReadyTimeout;
  std::vector<Node*> pending = nodes;
  std::vector<Node*> died;
  while (!pending.empty()) {
    std::vector<Node*> still;
    for (Node* node : pending) {
      if (probe(node->process) == ProcState::dead) {
        died.push_back(node);
      } else if (!is_ready(state, *node)) {
        still.push_back(node);
      }
    }
    pending = std::move(still);
    if (pending.empty()) break;
    if (Clock::now() >= deadline) {
      const Node* node = pending.front();
      throw LabError(node->name + " (pid " + std::to_string(node->process.pid) +
                     ") did not accept connections on " + node->endpoint() + " within " +
                     std::to_string(kReadyTimeout.count()) + " s; see " +
                     log_path(state.dir, node->name).string());
    }
    std::this_thread::sleep_for(20ms);
  }
  return died;
}

}  // namespace

const ProxyKind& proxy_kind(const State& state) {
  return proxy_kind(state.proxy_kind);
}

Node backend_node(State& state, int index) {
  Node node;
  node.name = "b" + std::to_string(index);
  node.role = "backend";
  node.index = index;
  node.address = "127.10.0." + std::to_string(10 + index);
  node.public_address = "127.200.0." + std::to_string(10 + index);
  node.dns_name = node.name + "." + state.name + "." + kDomain;
  if (state.netns) node.netns = plan_node(*state.netns, node.name, node.address).netns;
  return node;
}

Node proxy_node(State& state, int index, int pools_per_process) {
  Node node;
  node.name = "p" + std::to_string(index);
  node.role = "proxy";
  node.index = index;
  node.address = "127.10.1." + std::to_string(index);
  if (pools_per_process > 1) {
    node.process_group = (index - 1) / pools_per_process + 1;
    node.pool = node.name;
    node.address = "127.10.1." + std::to_string(node.process_group);
  }
  if (state.netns) {
    // Its resolver's namespace, if that is planned already.
    const NetnsAttachment* planned = state.netns->find(node.name);
    node.netns = planned ? planned->netns : plan_node(*state.netns, node.name, node.address).netns;
  }
  return node;
}

Node resolver_node(State& state, int proxy_index) {
  const std::string proxy = "p" + std::to_string(proxy_index);
  Node node;
  node.name = proxy + "-resolver";
  node.role = "dns";
  node.index = proxy_index;
  node.address = "127.10.1." + std::to_string(proxy_index);
  node.netns = plan_node(*state.netns, proxy, node.address, node.address).netns;
  return node;
}

std::string log_excerpt(const State& state, const std::string& node) {
  std::istringstream lines(tail_of_file(log_path(state.dir, node), 20));
  std::vector<std::string> kept;
  for (std::string line; std::getline(lines, line);)
    if (!line.starts_with("--- ") && !line.empty()) kept.push_back(line);
  if (kept.size() > 2) kept.erase(kept.begin(), kept.end() - 2);
  std::string out;
  for (const auto& line : kept) out += (out.empty() ? "" : " / ") + line;
  return out.empty() ? "(nothing logged)" : out;
}

std::string proxy_config_text(const State& state, const Node& proxy, bool healthy) {
  const ProxyKind& kind = proxy_kind(state);
  if (proxy.process_group == 0) return kind.config_text(proxy_config(state, proxy, healthy));
  // A shared process: one pool per proxy, in order.
  std::string text;
  for (const auto& node : state.nodes)
    if (node.role == "proxy" && node.process_group == proxy.process_group)
      text += kind.config_text(proxy_config(state, node, healthy));
  return text;
}

void write_proxy_config(const State& state, const Node& proxy, bool healthy) {
  const ProxyKind& kind = proxy_kind(state);
  fs::path path = config_path(state, proxy.name);
  const fs::path log = log_path(state.dir, process_name(proxy));
  write_atomically(path, proxy_config_text(state, proxy, healthy));
  std::vector<std::string> argv = kind.check_argv(kind.locate(), path);
  if (argv.empty()) return;
  // netns mode: the check resolves the servers' names, as the proxy will.
  if (!proxy.netns.empty()) argv = in_netns_argv(proxy.netns, std::move(argv));
  int rc = run_to_completion(argv, log, state.dir, 5s);
  if (rc != 0)
    throw LabError(std::string(kind.program()) + " rejects " + path.string() + " (see " +
                   log.string() + "): " + log_excerpt(state, process_name(proxy)));
}

std::string hosts_file(const State& state, bool healthy, const std::string& vantage_proxy,
                       const FaultRecord* ignored) {
  std::ostringstream out;
  out << "# written by ringwatch lab: the names of lab '" << state.name << "'";
  if (!vantage_proxy.empty()) out << " at " << vantage_proxy << "'s vantage point";
  out << "\n";
  for (const Node* backend : nodes_with_role(state, "backend")) {
    std::string answer =
        healthy ? backend->address : answer_at(state, *backend, vantage_proxy, ignored);
    out << answer << " " << backend->dns_name << "\n";
  }
  return out.str();
}

std::string vantage_proxy_of(const State& state, const Node& dns) {
  if (dns.netns.empty()) return "";
  for (const auto& node : state.nodes)
    if (node.role == "proxy" && node.netns == dns.netns) return node.name;
  return "";
}

void write_hosts(const State& state, const Node& dns) {
  if (dns.netns.empty()) {
    write_atomically(hosts_path(state.dir), hosts_file(state, false));
    return;
  }
  // Written beside the directory and renamed into it, so that dnsmasq never
  // reads a half-written file under a name it keeps.
  fs::path dir = hosts_dir(state.dir, dns.name);
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw LabError("cannot create " + dir.string() + ": " + ec.message());
  fs::path temp = state.dir / "dns" / (dns.name + ".hosts.tmp");
  write_atomically(temp, hosts_file(state, false, vantage_proxy_of(state, dns)));
  fs::rename(temp, dir / "hosts", ec);
  if (ec) throw LabError("cannot rename " + temp.string() + ": " + ec.message());
}

void choose_ports(State& state, Node& node) {
  if (state.netns) {
    // Every node has an address of its own: the well-known ports. A proxy's
    // config names its servers by DNS name and is written (and checked by
    // nutcracker, which resolves them) once its resolver answers.
    node.port = node.role == "backend" ? 11211 : node.role == "proxy" ? 22121 : 53;
    if (node.role == "proxy" && proxy_kind(state).has_stats_port()) node.stats_port = 22222;
    return;
  }
  if (node.role == "proxy" && node.process_group > 0) return choose_process_ports(state, node);
  const bool stats_port = node.role == "proxy" && proxy_kind(state).has_stats_port();
  auto ports = free_ports(node.address, stats_port ? 2 : 1, node.role == "dns");
  node.port = ports[0];
  if (stats_port) node.stats_port = ports[1];
  if (node.role == "proxy") write_proxy_config(state, node, false);
}

void start_nodes(State& state, const std::vector<Node*>& given, bool may_change_ports) {
  if (given.empty()) return;
  // A shared process's proxies start (and are waited for) together.
  const std::vector<Node*> nodes = with_process_mates(state, given);
  for (Node* node : one_per_process(nodes)) start_node(state, *node);
  save(state);
  std::vector<Node*> died = wait_ready(state, nodes);
  for (int attempt = 1; !died.empty(); ++attempt) {
    if (attempt >= kStartAttempts) {
      const Node* node = died.front();
      throw LabError(node->name + " exited while starting on " + node->endpoint() + " (see " +
                     log_path(state.dir, node->name).string() +
                     "): " + log_excerpt(state, node->name));
    }
    std::this_thread::sleep_for(100ms * attempt);
    for (Node* node : one_per_process(died)) {
      // dnsmasq 2.90 binds 127.10.2.53 with --bind-interfaces on Linux; should
      // one refuse an address that is not an interface's own, the lab's DNS
      // server moves to 127.0.0.1 (the spec records where it is).
      if (may_change_ports && node->role == "dns" && attempt == 2 && !state.netns)
        node->address = "127.0.0.1";
      if (may_change_ports) choose_ports(state, *node);
      start_node(state, *node);
    }
    save(state);
    died = wait_ready(state, died);
  }
}

void stop_nodes(const std::vector<Node*>& nodes, const std::string& new_state) {
  std::vector<ProcessId> ids;
  for (const Node* node : nodes) ids.push_back(node->process);
  auto left = stop_all(ids, kStopGrace);
  for (Node* node : nodes) node->state = new_state;
  if (!left.empty()) {
    const Node* node = nodes[left.front()];
    throw LabError(node->name + " (pid " + std::to_string(node->process.pid) +
                   ") did not exit after SIGKILL");
  }
}

void restart_nodes(State& state, const std::vector<Node*>& nodes) {
  const std::vector<Node*> all = with_process_mates(state, nodes);
  stop_nodes(all, "down");
  start_nodes(state, all, false);
}

void wait_dns_answers(const State& state) {
  for (const Node* dns : nodes_with_role(state, "dns")) {
    std::string vantage = vantage_proxy_of(state, *dns);
    auto deadline = Clock::now() + kReadyTimeout;
    for (const Node* backend : nodes_with_role(state, "backend")) {
      std::string want = answer_at(state, *backend, vantage);
      for (;;) {
        auto reply = from_probe_vantage(state, [&] {
          return query_a(dns->address, dns->port, backend->dns_name, kProbeTimeout);
        });
        if (reply && reply->addresses.size() == 1 && reply->addresses.front() == want) break;
        if (Clock::now() >= deadline)
          throw LabError("dns (" + dns->endpoint() + ") does not answer " + want + " for " +
                         backend->dns_name + " within " + std::to_string(kReadyTimeout.count()) +
                         " s; see " +
                         (dns->netns.empty() ? dnsmasq_log_path(state.dir)
                                             : state.dir / "logs" / (dns->name + ".queries.log"))
                             .string());
        std::this_thread::sleep_for(20ms);
      }
    }
  }
}

void reload_dns(State& state) {
  for (Node* dns : nodes_with_role(state, "dns")) {
    write_hosts(state, *dns);
    ProcState st = probe(dns->process);
    if (st == ProcState::dead) {
      start_nodes(state, {dns}, false);
    } else {
      if (st == ProcState::stopped) send_signal(dns->process, SIGCONT);
      send_signal(dns->process, SIGHUP);  // dnsmasq re-reads its hosts files, clears its cache
    }
  }
  wait_dns_answers(state);
}

int count_alive(const State& state) {
  int alive = 0;
  for (const auto& node : state.nodes)
    if (probe(node.process) != ProcState::dead) ++alive;
  return alive;
}

void stop_timers(State& state, const std::string& backend) {
  std::vector<ProcessId> ids;
  for (const auto& fault : state.faults)
    if (fault.until_ms >= 0 && (backend.empty() || fault.backend == backend))
      ids.push_back(fault.timer);
  stop_all(ids, kStopGrace);
}

void stop_everything(State& state) {
  std::vector<Node*> all;
  for (auto& node : state.nodes) all.push_back(&node);
  state.up = false;
  try {
    stop_timers(state);
    state.faults.clear();
    stop_nodes(all, "down");
    // netns mode: only once nothing runs in them; kept in lab.json as a record.
    if (state.netns) destroy_netns(*state.netns, netns_log_path(state.dir));
  } catch (...) {
    save(state);
    throw;
  }
  save(state);
}

void write_spec(const State& state) {
  auto ip = [](const std::string& text) {
    auto parsed = net::IpAddress::parse(text);
    if (!parsed) throw LabError("internal: bad address " + text);
    return *parsed;
  };
  spec::ClusterSpec cluster;
  cluster.name = state.name;
  for (const Node* node : nodes_with_role(state, "proxy")) {
    spec::Proxy proxy;
    proxy.name = node->name;
    proxy.kind = proxy_kind(state).spec_kind();
    proxy.client = net::Endpoint{node->address, node->port};
    // memcached's proxy answers stats on its client port: no endpoint of its own.
    if (node->stats_port != 0) proxy.stats = net::Endpoint{node->address, node->stats_port};
    // A shared nutcracker's stats list every pool of the process: the spec
    // names the proxy's.
    if (!node->pool.empty()) proxy.pool = node->pool;
    proxy.dns_vantage = kDnsVantage;
    if (state.netns) {
      // Its own address (backends see it in `stats conns`) and its own resolver.
      proxy.source_addresses = {ip(node->address)};
      proxy.dns_vantage.reset();
      for (const Node* dns : nodes_with_role(state, "dns"))
        if (dns->netns == node->netns) proxy.dns_vantage = dns->name;
    }
    cluster.proxies.push_back(std::move(proxy));
  }
  auto cidr = net::Cidr::parse(kExpectedCidr);
  for (const Node* node : nodes_with_role(state, "backend")) {
    if (node->draining) continue;
    spec::Backend backend;
    backend.name = node->name;
    backend.address = ip(node->address);
    backend.port = node->port;
    backend.dns_name = node->dns_name;
    backend.expected_cidr = *cidr;
    cluster.backends.push_back(std::move(backend));
  }
  for (const Node* node : nodes_with_role(state, "dns"))
    cluster.dns_servers.push_back(
        {state.netns ? node->name : kDnsVantage, net::Endpoint{node->address, node->port}});
  cluster.timeouts.connect = 250ms;
  cluster.timeouts.io = 1000ms;
  cluster.timeouts.dns = 1000ms;
  write_atomically(spec_path(state.dir), spec::to_json(cluster));
}

}  // namespace ringwatch::lab
