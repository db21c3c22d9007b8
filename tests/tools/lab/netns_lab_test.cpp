// The lab's netns mode (tools/lab/netns.h) against the real programs, and
// the migration steps (add_backend, remove_backend, restart_proxies) in both
// modes. netns tests need CAP_NET_ADMIN (root, as in CI) and skip with the
// reason without it. Every lab runs in a fresh directory under /tmp; a guard
// brings it down whatever happens and checks that nothing it created is left:
// no namespace, no resolv.conf, no process.

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <rapidjson/document.h>

#include "lib/spec/cluster_spec.h"
#include "tools/lab/lab.h"
#include "tools/lab/netns.h"
#include "tools/lab/process.h"

namespace ringwatch::lab {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

#define SKIP_WITHOUT_NETNS()                                                         \
  do {                                                                               \
    if (auto why = netns_unavailable_reason())                                       \
      GTEST_SKIP() << "skipped: " << *why << " (run the tests as root, as CI does)"; \
  } while (0)

std::string read_text(const fs::path& path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// stdout of a shell command.
std::string run(const std::string& command) {
  std::string out;
  if (FILE* pipe = ::popen(command.c_str(), "r")) {
    char buffer[4096];
    while (std::size_t got = std::fread(buffer, 1, sizeof buffer, pipe)) out.append(buffer, got);
    ::pclose(pipe);
  }
  return out;
}

std::set<std::string> netns_list() {
  std::set<std::string> names;
  std::istringstream lines(run("ip netns list 2>/dev/null"));
  for (std::string line; std::getline(lines, line);) {
    std::istringstream words(line);
    std::string name;
    if (words >> name) names.insert(name);
  }
  return names;
}

std::string net_ns_of(int pid) {
  std::error_code ec;
  return fs::read_symlink("/proc/" + std::to_string(pid) + "/ns/net", ec).string();
}

// One request over TCP, read until the reply holds `count` x `terminator`
// (or the peer closes, or 2 s pass); "" if it could not connect.
std::string tcp_request(const std::string& host, std::uint16_t port, const std::string& request,
                        const std::string& terminator = "END\r\n", int count = 1) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return "";
  timeval tv{2, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  ::inet_pton(AF_INET, host.c_str(), &sa.sin_addr);
  std::string reply;
  auto seen = [&] {
    int n = 0;
    for (std::size_t at = 0; (at = reply.find(terminator, at)) != std::string::npos;
         at += terminator.size())
      ++n;
    return n;
  };
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0 &&
      ::send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
          static_cast<ssize_t>(request.size())) {
    char buffer[8192];
    while (seen() < count) {
      ssize_t got = ::recv(fd, buffer, sizeof buffer, 0);
      if (got <= 0) break;
      reply.append(buffer, static_cast<std::size_t>(got));
    }
  }
  ::close(fd);
  return reply;
}

// errno of a TCP connect to host:port (0 if it connected).
int connect_errno(const std::string& host, std::uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  ::inet_pton(AF_INET, host.c_str(), &sa.sin_addr);
  int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
  int error = rc == 0 ? 0 : errno;
  ::close(fd);
  return error;
}

std::string multi_get(int keys, const std::string& tag) {
  std::string request = "get";
  for (int i = 0; i < keys; ++i) request += " " + std::to_string(i) + "." + tag;
  return request + "\r\n";
}

// How many of `keys` keys set through a proxy landed on each backend.
std::map<std::string, int> placement(const spec::ClusterSpec& spec, const spec::Proxy& proxy,
                                     int keys, const std::string& tag) {
  std::string sets;
  for (int i = 0; i < keys; ++i)
    sets += "set " + std::to_string(i) + "." + tag + " 0 60 1\r\nx\r\n";
  std::string stored = tcp_request(proxy.client.host, proxy.client.port, sets, "STORED\r\n", keys);
  EXPECT_NE(stored.find("STORED"), std::string::npos) << proxy.name << ": " << stored;
  std::map<std::string, int> out;
  for (const auto& backend : spec.backends) {
    std::string reply =
        tcp_request(backend.address.to_string(), backend.port, multi_get(keys, tag));
    std::size_t at = 0;
    while ((at = reply.find("VALUE ", at)) != std::string::npos) {
      ++out[backend.name];
      ++at;
    }
  }
  return out;
}

class LabDir {
 public:
  LabDir() {
    std::string pattern = (fs::temp_directory_path() / "ringwatch-netns-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    root_ = pattern;
  }
  ~LabDir() {
    if (!::testing::Test::HasFailure()) {
      std::error_code ec;
      fs::remove_all(root_, ec);
    }
  }
  LabDir(const LabDir&) = delete;
  LabDir& operator=(const LabDir&) = delete;
  fs::path path(const std::string& name = "lab") const { return root_ / name; }

 private:
  fs::path root_;
};

// A lab for one test; down when the test ends, and then checked to have left
// nothing behind.
class GuardedLab {
 public:
  GuardedLab(int proxies, int backends, bool netns, const std::string& name = "lab")
      : dir_(tmp_.path(name)) {
    up({dir_, proxies, backends, netns});
    status_ = lab::status(dir_);
  }
  ~GuardedLab() {
    try {
      down(dir_);
    } catch (const std::exception& e) {
      ADD_FAILURE() << "lab down failed: " << e.what();
    }
    expect_nothing_left();
  }
  GuardedLab(const GuardedLab&) = delete;
  GuardedLab& operator=(const GuardedLab&) = delete;

  void expect_nothing_left() const {
    auto now = lab::status(dir_);
    EXPECT_TRUE(now.namespaces.empty()) << "namespaces left after down";
    auto listed = netns_list();
    for (const auto& name : status_.namespaces) {
      EXPECT_FALSE(listed.count(name)) << name << " is still in `ip netns list`";
      EXPECT_FALSE(fs::exists(resolv_conf_path(name).parent_path())) << name;
    }
    for (const auto& p : now.processes)
      EXPECT_FALSE(p.alive) << p.node << " (pid " << p.pid << ") still running after down";
  }

  const fs::path& dir() const { return dir_; }
  const LabStatus& at_up() const { return status_; }
  spec::ClusterSpec spec() const { return spec::load_cluster_spec(spec_path(dir_).string()); }
  int pid_of(const std::string& node) const {
    for (const auto& p : lab::status(dir_).processes)
      if (p.node == node) return p.pid;
    return 0;
  }

 private:
  LabDir tmp_;
  fs::path dir_;
  LabStatus status_;
};

TEST(NetnsLabTest, EveryNodeHasItsOwnNamespaceAddressAndResolver) {
  SKIP_WITHOUT_NETNS();
  const std::string root_links = run("ip -o link show | wc -l");
  const std::string root_routes = run("ip route show table all | wc -l");
  auto started = Clock::now();
  GuardedLab lab(2, 2, true);
  auto up_ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started);
  RecordProperty("up_ms", static_cast<int>(up_ms.count()));
  const LabStatus& status = lab.at_up();
  ASSERT_EQ(status.mode, "netns");

  // The namespaces: switch, probe and one per backend and proxy, all listed.
  std::string id = status.probe_netns.substr(std::string("rwpr-").size());
  std::set<std::string> want{"rwsw-" + id,       "rwpr-" + id,       "rw-" + id + "-b1",
                             "rw-" + id + "-b2", "rw-" + id + "-p1", "rw-" + id + "-p2"};
  EXPECT_EQ(std::set<std::string>(status.namespaces.begin(), status.namespaces.end()), want);
  auto listed = netns_list();
  for (const auto& name : want) EXPECT_TRUE(listed.count(name)) << name;
  // Nothing was added to this (the host's) namespace.
  EXPECT_EQ(run("ip -o link show | wc -l"), root_links);
  EXPECT_EQ(run("ip route show table all | wc -l"), root_routes);

  // lab.json records the layout and every node's namespace.
  rapidjson::Document doc;
  std::string text = read_text(lab.dir() / "lab.json");
  doc.Parse(text.c_str());
  ASSERT_FALSE(doc.HasParseError());
  EXPECT_STREQ(doc["mode"].GetString(), "netns");
  EXPECT_EQ(std::string(doc["netns"]["switch"].GetString()), "rwsw-" + id);
  EXPECT_EQ(doc["netns"]["namespaces"].GetArray().Size(), 5u);

  // Each process in its node's namespace: backends and proxies apart, a
  // proxy and its resolver together, none in ours.
  std::map<std::string, std::string> ns_of;
  for (const auto& p : status.processes) {
    ASSERT_TRUE(p.alive) << p.node;
    ns_of[p.node] = net_ns_of(p.pid);
    EXPECT_NE(ns_of[p.node], net_ns_of(::getpid())) << p.node;
  }
  EXPECT_EQ(ns_of["p1"], ns_of["p1-resolver"]);
  EXPECT_EQ(ns_of["p2"], ns_of["p2-resolver"]);
  std::set<std::string> distinct{ns_of["b1"], ns_of["b2"], ns_of["p1"], ns_of["p2"]};
  EXPECT_EQ(distinct.size(), 4u);

  // The spec: own addresses, own vantage points, everything inside 127/8.
  spec::ClusterSpec spec = lab.spec();
  ASSERT_EQ(spec.proxies.size(), 2u);
  ASSERT_EQ(spec.dns_servers.size(), 2u);
  for (std::size_t i = 0; i < 2; ++i) {
    const auto& proxy = spec.proxies[i];
    std::string address = "127.10.1." + std::to_string(i + 1);
    EXPECT_EQ(proxy.client.host, address);
    ASSERT_EQ(proxy.source_addresses.size(), 1u);
    EXPECT_EQ(proxy.source_addresses[0].to_string(), address);
    EXPECT_EQ(proxy.dns_vantage.value_or(""), proxy.name + "-resolver");
    EXPECT_EQ(spec.dns_servers[i].name, proxy.name + "-resolver");
    EXPECT_EQ(spec.dns_servers[i].address->host, address);
    EXPECT_EQ(spec.dns_servers[i].address->port, 53);
    EXPECT_NE(read_text(resolv_conf_path("rw-" + id + "-" + proxy.name))
                  .find("nameserver " + address + "\n"),
              std::string::npos);
    // The proxy's config names the backends by DNS name.
    EXPECT_NE(read_text(lab.dir() / "conf" / (proxy.name + ".yml"))
                  .find(spec.backends[0].dns_name.value()),
              std::string::npos);
  }
  for (const auto& backend : spec.backends) {
    EXPECT_EQ(backend.expected_cidr->to_string(), "127.10.0.0/16");
    EXPECT_EQ(backend.port, 11211);
  }

  // Nothing of the lab is reachable from here: its addresses are loopback
  // addresses of this namespace, where nothing of it listens.
  EXPECT_EQ(
      tcp_request(spec.proxies[0].client.host, spec.proxies[0].client.port, "version\r\n", "\r\n"),
      "");

  // From the probe's namespace: traffic through both proxies, and then every
  // backend sees each proxy by its own address (and the probe by its own).
  run_in_netns(status.probe_netns, [&] {
    for (const auto& proxy : spec.proxies) {
      std::string reply =
          tcp_request(proxy.client.host, proxy.client.port, multi_get(200, "peers"));
      EXPECT_TRUE(reply.ends_with("END\r\n")) << proxy.name << ": " << reply;
    }
    for (const auto& backend : spec.backends) {
      std::string conns = tcp_request(backend.address.to_string(), backend.port, "stats conns\r\n");
      for (const auto& proxy : spec.proxies)
        EXPECT_NE(conns.find("addr tcp:" + proxy.client.host + ":"), std::string::npos)
            << backend.name << " does not see " << proxy.name << ":\n"
            << conns;
      EXPECT_NE(conns.find(std::string("addr tcp:") + kNetnsProbeAddress + ":"), std::string::npos);
      EXPECT_EQ(conns.find("addr tcp:127.0.0.1:"), std::string::npos) << conns;
    }
  });
  // Each proxy resolved the names through its own resolver.
  for (const auto& proxy : spec.proxies) {
    std::string queries = read_text(lab.dir() / "logs" / (proxy.name + "-resolver.queries.log"));
    EXPECT_NE(queries.find("query[A] " + spec.backends[0].dns_name.value() + " from " +
                           proxy.client.host),
              std::string::npos)
        << queries;
  }
  // A public stand-in is on no interface and has no route: unreachable at
  // once from a proxy's namespace, no packet sent.
  run_in_netns("rw-" + id + "-p1", [&] {
    EXPECT_EQ(connect_errno("127.200.0.11", 11211), ENETUNREACH);
    EXPECT_EQ(connect_errno("10.0.0.1", 80), ENETUNREACH);  // no default route
  });

  started = Clock::now();
  down(lab.dir());
  auto down_ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started);
  RecordProperty("down_ms", static_cast<int>(down_ms.count()));
  std::cout << "netns lab (2 proxies, 2 backends): up " << up_ms.count() << " ms, down "
            << down_ms.count() << " ms\n";
  lab.expect_nothing_left();
  down(lab.dir());  // idempotent
}

TEST(NetnsLabTest, DownRemovesEverythingEvenWhenItsProcessesDied) {
  SKIP_WITHOUT_NETNS();
  GuardedLab lab(1, 1, true);
  for (const auto& p : lab.at_up().processes) ASSERT_EQ(::kill(p.pid, SIGKILL), 0) << p.node;
  for (auto deadline = Clock::now() + 5s; Clock::now() < deadline;) {
    auto now = lab::status(lab.dir());
    if (std::none_of(now.processes.begin(), now.processes.end(),
                     [](const ProcessStatus& p) { return p.alive; }))
      break;
    std::this_thread::sleep_for(10ms);
  }
  for (const auto& p : lab::status(lab.dir()).processes) EXPECT_FALSE(p.alive) << p.node;
  EXPECT_EQ(lab::status(lab.dir()).namespaces.size(), 4u);  // switch, probe, b1, p1
  down(lab.dir());
  lab.expect_nothing_left();
  // A new lab in the same directory gets the same names again.
  up({lab.dir(), 1, 1, true});
  EXPECT_EQ(lab::status(lab.dir()).namespaces, lab.at_up().namespaces);
}

TEST(NetnsLabTest, TwoLabsSideBySideHaveTheirOwnNames) {
  SKIP_WITHOUT_NETNS();
  GuardedLab a(1, 1, true, "one");
  GuardedLab b(1, 1, true, "two");
  EXPECT_NE(a.at_up().probe_netns, b.at_up().probe_netns);
  std::set<std::string> names_a(a.at_up().namespaces.begin(), a.at_up().namespaces.end());
  for (const auto& name : b.at_up().namespaces) EXPECT_FALSE(names_a.count(name)) << name;
  // The same addresses in both, each lab's reachable from its own probe only.
  for (const GuardedLab* lab : {&a, &b}) {
    spec::ClusterSpec spec = lab->spec();
    run_in_netns(lab->at_up().probe_netns, [&] {
      const auto& proxy = spec.proxies[0];
      std::string set = tcp_request(
          proxy.client.host, proxy.client.port,
          "set which 0 0 " + std::to_string(spec.name.size()) + "\r\n" + spec.name + "\r\n",
          "\r\n");
      EXPECT_EQ(set, "STORED\r\n");
      std::string got = tcp_request(proxy.client.host, proxy.client.port, "get which\r\n");
      EXPECT_NE(got.find(spec.name), std::string::npos) << got;
    });
  }
}

TEST(NetnsLabTest, FaultsAndHealWorkInNetnsMode) {
  SKIP_WITHOUT_NETNS();
  GuardedLab lab(2, 2, true);
  spec::ClusterSpec spec = lab.spec();
  inject(lab.dir(), {FaultKind::eject, "p1", "b2", "", ""});
  auto status = lab::status(lab.dir());
  ASSERT_EQ(status.faults.size(), 1u);
  EXPECT_NE(status.faults[0].find("ejected after"), std::string::npos) << status.faults[0];
  // p1 routes b2's keys elsewhere; p2 still uses b2.
  run_in_netns(status.probe_netns, [&] {
    auto p1 = placement(spec, spec.proxies[0], 60, "eject1");
    auto p2 = placement(spec, spec.proxies[1], 60, "eject2");
    EXPECT_EQ(p1["b2"], 0);
    EXPECT_GT(p2["b2"], 0);
  });
  // A dns fault changes the answer at every vantage point, inside 127/8.
  inject(lab.dir(), {FaultKind::dns, "", "b1", "127.10.0.99", ""});
  heal(lab.dir());
  status = lab::status(lab.dir());
  EXPECT_TRUE(status.faults.empty());
  for (const auto& p : status.processes) EXPECT_TRUE(p.alive) << p.node;
  run_in_netns(status.probe_netns, [&] {
    auto p1 = placement(spec, spec.proxies[0], 60, "healed");
    EXPECT_GT(p1["b2"], 0);
  });
}

TEST(NetnsLabTest, WithoutCapNetAdminUpFailsClearly) {
  SKIP_WITHOUT_NETNS();  // needs the capability to drop it
  LabDir tmp;
  fs::path dir = tmp.path();
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // Drop CAP_NET_ADMIN from the effective set of this (single-threaded) child.
    __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[2]{};
    if (::syscall(SYS_capget, &header, data) != 0) ::_exit(10);
    data[0].effective &= ~(1u << CAP_NET_ADMIN);
    if (::syscall(SYS_capset, &header, data) != 0) ::_exit(11);
    try {
      up({dir, 1, 1, true});
    } catch (const LabError& e) {
      ::_exit(std::string(e.what()) == "netns mode needs root (CAP_NET_ADMIN)" ? 0 : 12);
    }
    ::_exit(13);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "10/11: capget/capset, 12: another message, 13: no error";
  EXPECT_FALSE(fs::exists(dir));  // refused before anything was created
}

// add_backend + restart_proxies, then remove_backend + restart_proxies, in a
// given mode; keys are placed through a proxy and found on the backends.
void migration_steps(bool netns) {
  GuardedLab lab(2, 2, netns);
  auto from_probe = [&](const std::function<void()>& fn) {
    if (netns)
      run_in_netns(lab.at_up().probe_netns, fn);
    else
      fn();
  };
  EXPECT_EQ(add_backend(lab.dir()), "b3");
  spec::ClusterSpec spec = lab.spec();
  ASSERT_EQ(spec.backends.size(), 3u);
  EXPECT_EQ(spec.backends[2].name, "b3");
  EXPECT_EQ(spec.backends[2].address.to_string(), "127.10.0.13");
  // Not yet in the proxies.
  EXPECT_EQ(read_text(lab.dir() / "conf" / "p1.yml").find(" b3\n"), std::string::npos);
  from_probe([&] { EXPECT_EQ(placement(spec, spec.proxies[0], 60, "before")["b3"], 0); });

  restart_proxies(lab.dir(), {{}, 50ms});
  EXPECT_NE(read_text(lab.dir() / "conf" / "p1.yml").find(" b3\n"), std::string::npos);
  from_probe([&] {
    for (const auto& proxy : spec.proxies)
      EXPECT_GT(placement(spec, proxy, 60, "after-" + proxy.name)["b3"], 0) << proxy.name;
  });
  for (const auto& p : lab::status(lab.dir()).processes) EXPECT_TRUE(p.alive) << p.node;

  remove_backend(lab.dir(), "b1");
  spec = lab.spec();
  ASSERT_EQ(spec.backends.size(), 2u);
  EXPECT_EQ(spec.backends[0].name, "b2");
  if (netns) {
    EXPECT_EQ(lab::status(lab.dir()).namespaces.size(), 6u);  // b1's is gone
  }
  restart_proxies(lab.dir(), {{"p1"}, 0ms});
  EXPECT_EQ(read_text(lab.dir() / "conf" / "p1.yml").find(" b1\n"), std::string::npos);
  EXPECT_NE(read_text(lab.dir() / "conf" / "p2.yml").find(" b1\n"), std::string::npos);

  try {
    remove_backend(lab.dir(), "b9");
    ADD_FAILURE() << "unknown backend removed";
  } catch (const LabError& e) {
    EXPECT_NE(std::string(e.what()).find("unknown backend 'b9'"), std::string::npos);
  }
  try {
    add_backend(lab.dir(), {"b3", "", 0ms});
    ADD_FAILURE() << "a backend added twice";
  } catch (const LabError& e) {
    EXPECT_EQ(std::string(e.what()), "backend 'b3' is already in lab '" + spec.name + "'");
  }
}

TEST(LabMigrationStepsTest, AddRemoveBackendAndRollProxiesInTheLoopbackLab) {
  migration_steps(false);
}

TEST(LabMigrationStepsTest, AddRemoveBackendAndRollProxiesInTheNetnsLab) {
  SKIP_WITHOUT_NETNS();
  migration_steps(true);
}

TEST(LabMigrationStepsTest, APublicAnswerNeedsANetnsLab) {
  GuardedLab lab(1, 1, false);
  try {
    add_backend(lab.dir(), {"", "p1", 5s});
    ADD_FAILURE() << "public answer in a loopback lab";
  } catch (const LabError& e) {
    EXPECT_EQ(std::string(e.what()),
              "a public answer at one vantage point needs a netns lab (`ringwatch lab up "
              "--netns`): in the loopback lab every proxy shares one resolver and connects by "
              "address");
  }
  EXPECT_EQ(lab.spec().backends.size(), 1u);
}

}  // namespace
}  // namespace ringwatch::lab
