// The lab's migration steps: add_backend, drain_backend, remove_backend and
// restart_proxies (specified in tools/lab/lab.h), in both modes.

#include <algorithm>
#include <cstdio>
#include <thread>

#include "lib/util/time.h"
#include "tools/lab/nodes.h"
#include "tools/lab/proxies.h"

namespace ringwatch::lab {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// A backend's index from its name "b<i>", or 0.
int backend_index(const std::string& name) {
  if (name.size() < 2 || name[0] != 'b' || name.size() > 4) return 0;
  int index = 0;
  for (char c : name.substr(1)) {
    if (c < '0' || c > '9') return 0;
    index = index * 10 + (c - '0');
  }
  return name[1] == '0' ? 0 : index;
}

// The new backend's index: that of the name asked for, or the next free one.
int new_backend_index(const State& state, const std::string& name) {
  int index = 0;
  for (const Node* backend : nodes_with_role(state, "backend"))
    index = std::max(index, backend->index);
  ++index;
  if (!name.empty()) {
    index = backend_index(name);
    if (index == 0)
      throw LabError("a backend's name is b<i> with i from 1 to " + std::to_string(kMaxBackends) +
                     ", not '" + name + "'");
    for (const Node* backend : nodes_with_role(state, "backend"))
      if (backend->name == name)
        throw LabError("backend '" + name + "' is already in lab '" + state.name + "'");
  }
  if (index > kMaxBackends)
    throw LabError("a lab has at most " + std::to_string(kMaxBackends) + " backends (b1 to b" +
                   std::to_string(kMaxBackends) + ")");
  return index;
}

void check_public_answer(State& state, const AddBackendOptions& options) {
  if (options.public_answer_at.empty()) return;
  if (!state.netns)
    throw LabError(
        "a public answer at one vantage point needs a netns lab (`ringwatch lab up --netns`): "
        "in the loopback lab every proxy shares one resolver and connects by address");
  find_node(state, "proxy", options.public_answer_at);
  if (options.public_for <= 0ms)
    throw LabError("a public answer at " + options.public_answer_at +
                   " needs a duration (public_for > 0)");
}

// Inserts the backend after the last one, so that every list of backends
// stays in order, and records it (netns: before its namespace exists).
Node& insert_backend(State& state, Node node) {
  auto last = std::find_if(state.nodes.rbegin(), state.nodes.rend(),
                           [](const Node& n) { return n.role == "backend"; });
  Node& backend = *state.nodes.insert(last.base(), std::move(node));
  save(state);
  if (state.netns) create_netns(*state.netns, netns_log_path(state.dir));
  try {
    choose_ports(state, backend);
  } catch (const std::runtime_error& e) {
    if (dynamic_cast<const LabError*>(&e)) throw;
    throw LabError(e.what());
  }
  start_nodes(state, {&backend}, !state.netns);
  return backend;
}

FaultRecord public_answer(const Node& backend, const AddBackendOptions& options) {
  FaultRecord fault;
  fault.kind = FaultKind::dns;
  fault.proxy = options.public_answer_at;
  fault.backend = backend.name;
  fault.answer = backend.public_address;
  fault.at = util::format_rfc3339(std::chrono::system_clock::now());
  fault.until_ms = now_ms() + options.public_for.count();
  return fault;
}

// A helper renames the answer without the public address into the
// resolver's hosts directory when the time is up; dnsmasq notices.
void start_public_answer_timer(State& state, FaultRecord& fault) {
  Node* resolver = nullptr;
  for (Node* dns : nodes_with_role(state, "dns"))
    if (vantage_proxy_of(state, *dns) == fault.proxy) resolver = dns;
  if (!resolver) throw LabError("internal: " + fault.proxy + " has no resolver");
  fs::path next = state.dir / "dns" / (resolver->name + ".hosts.next");
  write_atomically(next, hosts_file(state, false, vantage_proxy_of(state, *resolver), &fault));
  auto left = std::max<std::int64_t>(0, fault.until_ms - now_ms());
  char seconds[32];
  std::snprintf(seconds, sizeof seconds, "%lld.%03lld", static_cast<long long>(left / 1000),
                static_cast<long long>(left % 1000));
  std::string script = std::string("sleep ") + seconds + " && exec mv -f '" + next.string() +
                       "' '" + (hosts_dir(state.dir, resolver->name) / "hosts").string() + "'";
  try {
    fault.timer = spawn({"/bin/sh", "-c", script}, state.dir / "logs" / "timers.log", state.dir);
  } catch (const std::runtime_error& e) {
    throw LabError(std::string("cannot start the helper that ends the public answer: ") + e.what());
  }
}

}  // namespace

std::string add_backend(const fs::path& dir, const AddBackendOptions& options) {
  std::string added;
  mutate(dir, [&](State& state) {
    const int index = new_backend_index(state, options.name);
    check_public_answer(state, options);
    const Node& backend = insert_backend(state, backend_node(state, index));
    added = backend.name;
    // Then its name, as a new instance's DNS record follows its launch.
    const bool timed = !options.public_answer_at.empty();
    if (timed) state.faults.push_back(public_answer(backend, options));
    reload_dns(state);
    if (timed) start_public_answer_timer(state, state.faults.back());
    write_spec(state);
  });
  return added;
}

void remove_backend(const fs::path& dir, const std::string& name) {
  mutate(dir, [&](State& state) {
    Node& backend = find_node(state, "backend", name);
    if (nodes_with_role(state, "backend").size() == 1)
      throw LabError("cannot remove " + name + ", the last backend of lab '" + state.name + "'");
    stop_timers(state, name);
    std::erase_if(state.faults, [&](const FaultRecord& f) { return f.backend == name; });
    stop_nodes({&backend}, "down");
    std::erase_if(state.nodes,
                  [&](const Node& n) { return n.role == "backend" && n.name == name; });
    if (state.netns) remove_node_netns(*state.netns, name, netns_log_path(state.dir));
    reload_dns(state);
    write_spec(state);
  });
}

void drain_backend(const fs::path& dir, const std::string& name) {
  mutate(dir, [&](State& state) {
    Node& backend = find_node(state, "backend", name);
    if (backend.draining) return;
    const auto active = std::count_if(state.nodes.begin(), state.nodes.end(), [](const Node& n) {
      return n.role == "backend" && !n.draining;
    });
    if (active == 1)
      throw LabError("cannot drain " + name + ", the last serving backend of lab '" + state.name +
                     "'");
    backend.draining = true;
    write_spec(state);
  });
}

void restart_proxies(const fs::path& dir, const RestartProxiesOptions& options) {
  mutate(dir, [&](State& state) {
    std::vector<Node*> proxies;
    if (options.proxies.empty()) {
      proxies = nodes_with_role(state, "proxy");
    } else {
      for (const auto& name : options.proxies) proxies.push_back(&find_node(state, "proxy", name));
    }
    bool first = true;
    for (Node* proxy : proxies) {
      if (!first && options.pause > 0ms) std::this_thread::sleep_for(options.pause);
      first = false;
      apply_proxy_config(state, *proxy, false);
      save(state);
      settle_proxy(state, *proxy);
    }
  });
}

}  // namespace ringwatch::lab
