#include "tools/lab/netns.h"

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <exception>
#include <fstream>
#include <sstream>
#include <thread>

#include "lib/util/text.h"
#include "tools/lab/lab.h"
#include "tools/lab/process.h"

namespace ringwatch::lab {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr const char* kNetnsRunDir = "/var/run/netns";  // iproute2's NETNS_RUN_DIR
constexpr const char* kNetnsEtcDir = "/etc/netns";      // iproute2's NETNS_ETC_DIR
constexpr int kCapNetAdmin = 12;                        // linux/capability.h
constexpr auto kIpTimeout = 10s;

// Runs `ip ARGS...`; throws LabError naming the command and its last output.
void ip(const std::vector<std::string>& args, const fs::path& log) {
  std::vector<std::string> argv{find_program("ip").string()};
  argv.insert(argv.end(), args.begin(), args.end());
  int rc = run_to_completion(argv, log, log.parent_path(), kIpTimeout);
  if (rc != 0)
    throw LabError("`ip " + util::join(args, " ") + "` failed (exit " + std::to_string(rc) +
                   "; see " + log.string() + "): " + tail_of_file(log, 1));
}

bool netns_exists(const std::string& name) {
  std::error_code ec;
  return fs::exists(fs::path(kNetnsRunDir) / name, ec);
}

// FNV-1a, 32 bits: stable across runs and builds (std::hash is not).
std::uint32_t fnv1a(const std::string& text) {
  std::uint32_t hash = 2166136261u;
  for (unsigned char c : text) {
    hash ^= c;
    hash *= 16777619u;
  }
  return hash;
}

void write_proc(const std::string& path, const std::string& value, bool required) {
  std::ofstream out(path);
  out << value;
  out.close();
  if (!out && required) throw LabError("cannot write " + value + " to " + path);
}

// Inside the attachment's namespace: 127/8 on eth0, no IPv6.
void set_sysctls(const NetnsAttachment& a) {
  run_in_netns(a.netns, [] {
    write_proc("/proc/sys/net/ipv4/conf/all/route_localnet", "1", true);
    write_proc("/proc/sys/net/ipv6/conf/all/disable_ipv6", "1", false);
    write_proc("/proc/sys/net/ipv6/conf/default/disable_ipv6", "1", false);
  });
}

void write_resolv_conf(const NetnsAttachment& a) {
  fs::path path = resolv_conf_path(a.netns);
  // Another lab's `down` may remove an empty /etc/netns between our creating
  // it and our directory in it: try again once.
  for (int attempt = 1;; ++attempt) {
    std::error_code ec;
    fs::create_directories(path.parent_path(), ec);
    if (ec && attempt < 2) continue;
    if (ec) throw LabError("cannot create " + path.parent_path().string() + ": " + ec.message());
    std::ofstream out(path, std::ios::trunc);
    out << "# written by ringwatch lab: " << a.node << "'s resolver, removed by `lab down`\n"
        << "nameserver " << *a.resolver << "\n"
        << "options timeout:1 attempts:2\n";
    out.close();
    if (out) return;
    if (attempt >= 2) throw LabError("cannot write " + path.string());
  }
}

// Removes /etc/netns/<netns>/resolv.conf, its directory, and /etc/netns when
// that is left empty (another lab's directory keeps it).
void remove_resolv_conf(const std::string& netns) {
  fs::path path = resolv_conf_path(netns);
  std::error_code ec;
  fs::remove(path, ec);
  fs::remove(path.parent_path(), ec);      // only if empty
  fs::remove(fs::path(kNetnsEtcDir), ec);  // only if empty
}

void create_attachment(const NetnsLayout& layout, const NetnsAttachment& a, const fs::path& log) {
  if (netns_exists(a.netns)) return;
  if (a.resolver) write_resolv_conf(a);
  ip({"netns", "add", a.netns}, log);
  ip({"link", "add", a.veth, "netns", a.netns, "type", "veth", "peer", "name", a.peer, "netns",
      layout.switch_netns},
     log);
  ip({"-n", layout.switch_netns, "link", "set", a.peer, "master", layout.bridge, "up"}, log);
  set_sysctls(a);
  ip({"-n", a.netns, "link", "set", "lo", "up"}, log);
  // Without this route every 127/8 address is local: the public stand-ins
  // would answer "connection refused" from the node itself.
  ip({"-n", a.netns, "route", "del", "local", "127.0.0.0/8", "dev", "lo", "table", "local"}, log);
  ip({"-n", a.netns, "addr", "add", a.address + "/" + std::to_string(kNetnsPrefixLength), "dev",
      a.veth},
     log);
  ip({"-n", a.netns, "link", "set", a.veth, "up"}, log);
}

}  // namespace

const NetnsAttachment& NetnsLayout::probe() const {
  const NetnsAttachment* a = find("probe");
  if (!a) throw LabError("internal: netns layout " + id + " has no probe namespace");
  return *a;
}

const NetnsAttachment* NetnsLayout::find(const std::string& node) const {
  for (const auto& a : attachments)
    if (a.node == node) return &a;
  return nullptr;
}

std::optional<std::string> netns_unavailable_reason() {
  std::ifstream status("/proc/self/status");
  std::uint64_t effective = 0;
  for (std::string line; std::getline(status, line);) {
    if (line.starts_with("CapEff:")) {
      std::istringstream(line.substr(7)) >> std::hex >> effective;
      break;
    }
  }
  if ((effective & (std::uint64_t{1} << kCapNetAdmin)) == 0)
    return std::string("netns mode needs root (CAP_NET_ADMIN)");
  try {
    find_program("ip");
  } catch (const std::runtime_error&) {
    return std::string("netns mode needs iproute2's `ip`, which is not installed");
  }
  return std::nullopt;
}

NetnsLayout plan_netns(const fs::path& dir) {
  char id[9];
  std::snprintf(id, sizeof id, "%08x", fnv1a(fs::absolute(dir).lexically_normal().string()));
  NetnsLayout layout;
  layout.id = id;
  layout.switch_netns = std::string("rwsw-") + id;
  layout.bridge = "br0";
  layout.attachments.push_back(
      {"probe", std::string("rwpr-") + id, kNetnsProbeAddress, "eth0", "probe", std::nullopt});
  return layout;
}

std::string node_netns_name(const NetnsLayout& layout, const std::string& node) {
  return "rw-" + layout.id + "-" + node;
}

const NetnsAttachment& plan_node(NetnsLayout& layout, const std::string& node,
                                 const std::string& address, std::optional<std::string> resolver) {
  if (layout.find(node)) throw LabError("internal: netns for " + node + " planned twice");
  layout.attachments.push_back(
      {node, node_netns_name(layout, node), address, "eth0", node, std::move(resolver)});
  return layout.attachments.back();
}

void create_netns(const NetnsLayout& layout, const fs::path& log) {
  if (!netns_exists(layout.switch_netns)) {
    ip({"netns", "add", layout.switch_netns}, log);
    ip({"-n", layout.switch_netns, "link", "add", layout.bridge, "type", "bridge"}, log);
    ip({"-n", layout.switch_netns, "link", "set", layout.bridge, "up"}, log);
  }
  for (const auto& a : layout.attachments) create_attachment(layout, a, log);
}

void remove_node_netns(NetnsLayout& layout, const std::string& node, const fs::path& log) {
  const NetnsAttachment* a = layout.find(node);
  if (!a) return;
  if (netns_exists(a->netns)) ip({"netns", "del", a->netns}, log);
  remove_resolv_conf(a->netns);
  std::erase_if(layout.attachments, [&](const NetnsAttachment& x) { return x.node == node; });
}

void destroy_netns(const NetnsLayout& layout, const fs::path& log) {
  std::vector<std::string> failed;
  auto remove = [&](const std::string& netns) {
    if (!netns_exists(netns)) return;
    try {
      ip({"netns", "del", netns}, log);
    } catch (const LabError&) {
      failed.push_back(netns);
    }
  };
  // Node namespaces first: deleting one deletes its veth pair, so the
  // switch's bridge is empty when the switch goes.
  for (const auto& a : layout.attachments) {
    remove(a.netns);
    remove_resolv_conf(a.netns);
  }
  remove(layout.switch_netns);
  if (!failed.empty())
    throw LabError("cannot remove network namespaces " + util::join(failed, " ") + " (see " +
                   log.string() + ")");
}

std::vector<std::string> existing_netns(const NetnsLayout& layout) {
  std::vector<std::string> out;
  if (netns_exists(layout.switch_netns)) out.push_back(layout.switch_netns);
  for (const auto& a : layout.attachments)
    if (netns_exists(a.netns)) out.push_back(a.netns);
  return out;
}

fs::path resolv_conf_path(const std::string& netns) {
  return fs::path(kNetnsEtcDir) / netns / "resolv.conf";
}

std::vector<std::string> in_netns_argv(const std::string& netns, std::vector<std::string> argv) {
  std::vector<std::string> out{find_program("ip").string(), "netns", "exec", netns};
  out.insert(out.end(), std::make_move_iterator(argv.begin()), std::make_move_iterator(argv.end()));
  return out;
}

void run_in_netns(const std::string& netns, const std::function<void()>& fn) {
  fs::path path = fs::path(kNetnsRunDir) / netns;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    throw LabError("cannot open network namespace " + path.string() + ": " + std::strerror(errno));
  std::exception_ptr error;
  std::thread worker([&] {
    // setns(2) with CLONE_NEWNET changes only this thread's namespace.
    if (::setns(fd, CLONE_NEWNET) != 0) {
      error = std::make_exception_ptr(
          LabError("cannot enter network namespace " + netns + ": " + std::strerror(errno)));
      return;
    }
    try {
      fn();
    } catch (...) {
      error = std::current_exception();
    }
  });
  worker.join();
  ::close(fd);
  if (error) std::rethrow_exception(error);
}

void write_netns_json(JsonWriter& w, const NetnsLayout& layout) {
  w.StartObject();
  field(w, "id", layout.id);
  field(w, "switch", layout.switch_netns);
  field(w, "bridge", layout.bridge);
  w.Key("namespaces");
  w.StartArray();
  for (const auto& a : layout.attachments) {
    w.StartObject();
    field(w, "node", a.node);
    field(w, "netns", a.netns);
    field(w, "address", a.address + "/" + std::to_string(kNetnsPrefixLength));
    field(w, "veth", a.veth);
    field(w, "peer", a.peer);
    if (a.resolver) {
      field(w, "resolv_conf", resolv_conf_path(a.netns).string());
      field(w, "nameserver", *a.resolver);
    }
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
}

NetnsLayout netns_from_json(const spec::json::Cursor& cursor) {
  const auto text = [](const spec::json::Cursor& c) { return std::string(c.string()); };
  const auto o = cursor.object({"id", "switch", "bridge", "namespaces"});
  NetnsLayout layout;
  layout.id = text(o.required("id"));
  layout.switch_netns = text(o.required("switch"));
  layout.bridge = text(o.required("bridge"));
  for (const auto& element : o.required("namespaces").elements(false)) {
    const auto n =
        element.object({"node", "netns", "address", "veth", "peer", "resolv_conf", "nameserver"});
    NetnsAttachment a;
    a.node = text(n.required("node"));
    a.netns = text(n.required("netns"));
    a.address = text(n.required("address"));
    if (auto slash = a.address.find('/'); slash != std::string::npos) a.address.resize(slash);
    a.veth = text(n.required("veth"));
    a.peer = text(n.required("peer"));
    if (const auto nameserver = n.optional("nameserver")) a.resolver = text(*nameserver);
    layout.attachments.push_back(std::move(a));
  }
  return layout;
}

}  // namespace ringwatch::lab
