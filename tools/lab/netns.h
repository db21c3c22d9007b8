#pragma once
// netns mode of the lab: one network namespace per node, so that every node
// has its own address and every proxy its own resolver (its own DNS vantage
// point), as on real hosts. `ringwatch lab up --netns` (UpOptions::netns);
// everything else in the lab (faults, heal, down, add_backend, ...) works the
// same in both modes. Needs CAP_NET_ADMIN (root) and iproute2's `ip`.
//
// Layout of one lab; <id> is 8 hex digits of a hash of the lab's absolute
// directory, so two labs (and parallel tests) never share a name:
//
//   rwsw-<id>        the "switch": bridge br0, and the switch end of every
//                    node's veth pair, named after the node (b1, p2, probe).
//                    No address, nothing else; nothing is added to the root
//                    namespace at all (no link, no route, no address).
//   rwpr-<id>        the probe's own vantage: eth0 127.10.2.1/16. ringwatch
//                    reaches the cluster from here:
//                      ip netns exec rwpr-<id> ringwatch probe --cluster DIR/cluster.json
//                    (the lab itself checks readiness from here too, on a
//                    thread that setns(2)es into it).
//   rw-<id>-b<i>     backend i: eth0 127.10.0.(10+i)/16, memcached on :11211
//   rw-<id>-p<i>     proxy i: eth0 127.10.1.i/16, nutcracker on :22121 (stats
//                    :22222) and its own resolver, dnsmasq on :53 (node
//                    "p<i>-resolver", the spec's vantage point of that name);
//                    /etc/netns/rw-<id>-p<i>/resolv.conf names it, and
//                    `ip netns exec` bind-mounts that over /etc/resolv.conf,
//                    so nutcracker, which resolves its servers' names once at
//                    start, resolves them through this proxy's resolver.
//
// Every node namespace: lo up, eth0 up with its one address, IPv6 off, and
// net.ipv4.conf.all.route_localnet=1, which lets 127.0.0.0/8 addresses be
// used on eth0 (measured on Linux 6.x: a /16 of 127.10.0.0 on a veth routes
// between namespaces, and a backend sees each proxy's own source address).
// The kernel's `local 127.0.0.0/8 dev lo` route is deleted (127.0.0.1 stays
// local), so an address on no interface, such as a backend's public
// stand-in 127.200.0.(10+i), has no route at all: connect() fails at once
// with ENETUNREACH and no packet leaves the namespace. No namespace has a
// default route or any link out of the lab, so all traffic stays inside
// the namespaces the lab created. Every address stays inside 127.0.0.0/8,
// as docs/architecture.md ("The lab") asks; the spec's expected CIDR is 127.10.0.0/16.
//
// Everything is recorded in lab.json ("netns") BEFORE it is created, and
// destroy() removes whatever of it exists (namespaces, and with them their
// veths and the bridge; the resolv.conf files and their directories), so
// `lab down` cleans up even after a crash or when the processes died.
//
// Thread-safety: the functions share no state. run_in() starts a thread;
// the others fork `ip`, so call them from a thread that holds no locks
// others need (as for the rest of the lab).

#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "lib/spec/json_cursor.h"
#include "tools/lab/json_fields.h"

namespace ringwatch::lab {

// One namespace attached to the switch.
struct NetnsAttachment {
  std::string node;                     // "b1", "p2", "probe"
  std::string netns;                    // "rw-<id>-b1", "rwpr-<id>"
  std::string address;                  // on eth0, prefix kNetnsPrefixLength
  std::string veth;                     // the end inside netns: "eth0"
  std::string peer;                     // the end in the switch namespace: the node's name
  std::optional<std::string> resolver;  // proxies: the nameserver in its resolv.conf
  friend bool operator==(const NetnsAttachment&, const NetnsAttachment&) = default;
};

struct NetnsLayout {
  std::string id;
  std::string switch_netns;                  // rwsw-<id>
  std::string bridge;                        // br0, inside switch_netns
  std::vector<NetnsAttachment> attachments;  // the probe's first, then one per node
  friend bool operator==(const NetnsLayout&, const NetnsLayout&) = default;

  const NetnsAttachment& probe() const;  // the attachment of node "probe"
  const NetnsAttachment* find(const std::string& node) const;
};

inline constexpr int kNetnsPrefixLength = 16;
inline constexpr const char* kNetnsProbeAddress = "127.10.2.1";

// Why netns mode cannot run here ("netns mode needs root (CAP_NET_ADMIN)",
// or `ip` missing), or nullopt if it can.
std::optional<std::string> netns_unavailable_reason();

// The layout for a lab in `dir`, with only the switch and the probe's
// namespace planned; nothing is created.
NetnsLayout plan_netns(const std::filesystem::path& dir);
// The namespace name of a node ("rw-<id>-<node>").
std::string node_netns_name(const NetnsLayout& layout, const std::string& node);
// Plans (records) one node's namespace; `resolver` for proxies. Returns it.
const NetnsAttachment& plan_node(NetnsLayout& layout, const std::string& node,
                                 const std::string& address,
                                 std::optional<std::string> resolver = std::nullopt);

// Creates the switch namespace and bridge (if not there yet), then every
// planned attachment that does not exist yet. `log` receives the output of
// every `ip` command. Throws LabError naming the failing command.
void create_netns(const NetnsLayout& layout, const std::filesystem::path& log);
// Removes one node's namespace (and so its veth pair) and its resolv.conf,
// and forgets the attachment.
void remove_node_netns(NetnsLayout& layout, const std::string& node,
                       const std::filesystem::path& log);
// Removes everything in the layout that exists; idempotent. Throws LabError
// only if something could not be removed.
void destroy_netns(const NetnsLayout& layout, const std::filesystem::path& log);
// The namespaces of the layout that exist right now (for status and tests).
std::vector<std::string> existing_netns(const NetnsLayout& layout);
// /etc/netns/<netns>/resolv.conf
std::filesystem::path resolv_conf_path(const std::string& netns);

// argv prefixed with `ip netns exec <netns>` (ip execs in place: the pid the
// lab records is the program's own).
std::vector<std::string> in_netns_argv(const std::string& netns, std::vector<std::string> argv);

// Runs `fn` on a new thread that has joined `netns`'s network namespace, and
// waits for it; sockets `fn` opens live in that namespace. Exceptions thrown
// by `fn` are rethrown here.
void run_in_netns(const std::string& netns, const std::function<void()>& fn);

// lab.json's "netns" object (tools/lab/state.h reads and writes the rest).
void write_netns_json(JsonWriter& writer, const NetnsLayout& layout);
// Throws spec::SpecError naming the JSON pointer when the object is malformed.
NetnsLayout netns_from_json(const spec::json::Cursor& cursor);

}  // namespace ringwatch::lab
