// The lab against the real programs (memcached, nutcracker, dnsmasq) on
// loopback. Each test runs its own lab in a fresh directory under /tmp; a
// guard brings it down whatever happens, and the directory is removed when the
// test passed (kept for its logs when it failed).

#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <rapidjson/document.h>

#include "lib/mc/client.h"
#include "lib/spec/cluster_spec.h"
#include "lib/util/deadlines.h"
#include "probes/registry.h"
#include "tests/support/json_patch.h"
#include "tests/support/report_helpers.h"
#include "tools/lab/dns_query.h"
#include "tools/lab/lab.h"
#include "tools/lab/process.h"

namespace ringwatch::lab {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

std::string read_text(const fs::path& path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// One node as lab.json records it, read independently of the lab's own code.
struct RecordedNode {
  std::string name, role, address, dns_name, public_address, state;
  std::uint16_t port = 0, stats_port = 0;
  int pid = 0;
  std::uint64_t start_time = 0;
  net::Endpoint endpoint() const { return {address, port}; }
};

struct Recorded {
  std::string name, state;
  std::map<std::string, RecordedNode> nodes;
  std::size_t faults = 0;
  const RecordedNode& at(const std::string& node) const { return nodes.at(node); }
};

Recorded read_lab_json(const fs::path& dir) {
  rapidjson::Document doc;
  std::string text = read_text(dir / "lab.json");
  doc.Parse(text.c_str());
  EXPECT_FALSE(doc.HasParseError()) << text;
  Recorded out;
  out.name = doc["name"].GetString();
  out.state = doc["state"].GetString();
  out.faults = doc["faults"].GetArray().Size();
  for (const auto& n : doc["nodes"].GetArray()) {
    RecordedNode node;
    node.name = n["name"].GetString();
    node.role = n["role"].GetString();
    node.address = n["address"].GetString();
    node.port = static_cast<std::uint16_t>(n["port"].GetUint());
    if (n.HasMember("stats_port"))
      node.stats_port = static_cast<std::uint16_t>(n["stats_port"].GetUint());
    if (n.HasMember("dns_name")) node.dns_name = n["dns_name"].GetString();
    if (n.HasMember("public_address")) node.public_address = n["public_address"].GetString();
    node.state = n["state"].GetString();
    node.pid = n["pid"].GetInt();
    node.start_time = n["start_time"].GetUint64();
    out.nodes[node.name] = node;
  }
  return out;
}

// The process state letter from /proc/PID/stat if PID is still the process
// started at `start_time`; nullopt if it is gone or the pid was reused.
std::optional<char> proc_state(int pid, std::uint64_t start_time) {
  std::string stat = read_text("/proc/" + std::to_string(pid) + "/stat");
  auto close = stat.rfind(')');
  if (stat.empty() || close == std::string::npos) return std::nullopt;
  std::istringstream fields(stat.substr(close + 2));
  std::vector<std::string> f;
  for (std::string field; fields >> field;) f.push_back(field);
  if (f.size() < 20 || std::stoull(f[19]) != start_time) return std::nullopt;
  return f[0][0];
}

bool running(const RecordedNode& node) {
  auto state = proc_state(node.pid, node.start_time);
  return state && *state != 'Z' && *state != 'T' && *state != 'X';
}

mc::Client client(const net::Endpoint& endpoint) {
  return mc::Client(endpoint, util::Deadlines{});
}

void set_through(const net::Endpoint& endpoint, const std::string& key, const std::string& value) {
  auto c = client(endpoint);
  auto result = c.set(key, value, 300s);
  ASSERT_TRUE(result.ok()) << endpoint.to_string() << ": " << result.error().message;
}

std::optional<std::string> get_through(const net::Endpoint& endpoint, const std::string& key) {
  auto c = client(endpoint);
  auto result = c.get(key);
  EXPECT_TRUE(result.ok()) << endpoint.to_string() << ": " << result.error().message;
  return result.ok() ? result.value() : std::nullopt;
}

// The backends (asked directly) that hold `key` with `value`.
std::vector<std::string> homes_of(const Recorded& lab, const std::string& key,
                                  const std::string& value) {
  std::vector<std::string> homes;
  for (const auto& [name, node] : lab.nodes)
    if (node.role == "backend" && get_through(node.endpoint(), key) == value) homes.push_back(name);
  return homes;
}

// The varying part comes first: twemproxy's fnv1a_64 is really 32-bit FNV
// with the 64-bit prime truncated (435), so keys that differ only in their
// last characters land next to each other on the ketama ring, on one backend.
std::vector<std::string> keys(const std::string& tag, int count) {
  std::vector<std::string> out;
  for (int i = 0; i < count; ++i) out.push_back(std::to_string(i) + "-" + tag);
  return out;
}

std::optional<std::string> resolve(const Recorded& lab, const std::string& backend) {
  const auto& dns = lab.at("dns");
  auto reply = query_a(dns.address, dns.port, lab.at(backend).dns_name, 1s);
  if (!reply || reply->rcode != 0 || reply->addresses.size() != 1) return std::nullopt;
  return reply->addresses.front();
}

class LabDir {
 public:
  explicit LabDir(const std::string& prefix = "ringwatch-lab-test-") {
    std::string pattern = "/tmp/" + prefix + "XXXXXX";
    std::vector<char> buffer(pattern.begin(), pattern.end());
    buffer.push_back('\0');
    if (::mkdtemp(buffer.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = buffer.data();
  }
  ~LabDir() {
    try {
      if (fs::exists(path_ / "lab.json")) down(path_);
    } catch (const std::exception& e) {
      ADD_FAILURE() << "down(" << path_ << ") in cleanup: " << e.what();
    }
    if (::testing::Test::HasFailure()) {
      std::cerr << "lab directory kept for inspection: " << path_ << "\n";
    } else {
      std::error_code ec;
      fs::remove_all(path_, ec);
    }
  }
  LabDir(const LabDir&) = delete;
  LabDir& operator=(const LabDir&) = delete;
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// A lab brought up in the constructor and down in the destructor.
class Lab {
 public:
  explicit Lab(int proxies = 3, int backends = 3, const std::string& prefix = "ringwatch-lab-test-")
      : dir_(prefix) {
    status_ = up({dir_.path(), proxies, backends});
  }
  const fs::path& dir() const { return dir_.path(); }
  const LabStatus& up_status() const { return status_; }
  Recorded recorded() const { return read_lab_json(dir()); }

 private:
  LabDir dir_;
  LabStatus status_;
};

bool all_alive(const LabStatus& status) {
  return std::all_of(status.processes.begin(), status.processes.end(),
                     [](const ProcessStatus& p) { return p.alive; });
}

std::string config_of(const Lab& lab, const std::string& proxy) {
  return read_text(lab.dir() / "conf" / (proxy + ".yml"));
}

void expect_healthy(const Lab& lab) {
  LabStatus st = lab::status(lab.dir());
  EXPECT_TRUE(all_alive(st));
  EXPECT_TRUE(st.faults.empty());
  Recorded rec = lab.recorded();
  EXPECT_EQ(rec.faults, 0u);
  for (const auto& [name, node] : rec.nodes) {
    EXPECT_TRUE(running(node)) << name;
    if (node.role == "proxy") {
      std::string config = config_of(lab, name);
      EXPECT_EQ(config.find("127.200."), std::string::npos) << config;
      EXPECT_NE(config.find("hash: fnv1a_64"), std::string::npos) << config;
    }
    if (node.role == "backend") {
      EXPECT_EQ(resolve(rec, name), node.address) << name;
    }
  }
  // Every proxy agrees on where every key lives.
  for (const auto& key : keys("healthy", 20)) {
    set_through(rec.at("p1").endpoint(), key, "v-" + key);
    for (const auto& [name, node] : rec.nodes) {
      if (node.role == "proxy") {
        EXPECT_EQ(get_through(node.endpoint(), key), "v-" + key) << name;
      }
    }
  }
}

TEST(LabTest, UpStartsEveryNodeAndEveryProxyReachesEveryBackend) {
  Lab lab;
  const LabStatus& st = lab.up_status();
  ASSERT_EQ(st.processes.size(), 7u);
  EXPECT_TRUE(all_alive(st));
  EXPECT_TRUE(st.is_up);
  EXPECT_EQ(st.spec_path, lab.dir() / "cluster.json");
  EXPECT_TRUE(all_alive(lab::status(lab.dir())));

  Recorded rec = lab.recorded();
  EXPECT_EQ(rec.state, "up");
  EXPECT_EQ(rec.name, st.name);
  for (int i = 1; i <= 3; ++i) {
    const auto& b = rec.at("b" + std::to_string(i));
    EXPECT_EQ(b.address, "127.10.0." + std::to_string(10 + i));
    EXPECT_EQ(b.public_address, "127.200.0." + std::to_string(10 + i));
    EXPECT_EQ(b.dns_name, "b" + std::to_string(i) + "." + rec.name + ".ringwatch.test");
    const auto& p = rec.at("p" + std::to_string(i));
    EXPECT_EQ(p.address, "127.10.1." + std::to_string(i));
    EXPECT_NE(p.port, p.stats_port);
    EXPECT_TRUE(running(b));
    EXPECT_TRUE(running(p));
    std::string config = config_of(lab, p.name);
    for (int j = 1; j <= 3; ++j) {
      const auto& backend = rec.at("b" + std::to_string(j));
      EXPECT_NE(config.find("- " + backend.address + ":" + std::to_string(backend.port) + ":1 " +
                            backend.name + "\n"),
                std::string::npos)
          << config;
    }
  }
  EXPECT_EQ(rec.at("dns").address, "127.10.2.53");

  // The spec the lab wrote parses and names what runs.
  spec::ClusterSpec spec = spec::load_cluster_spec((lab.dir() / "cluster.json").string());
  EXPECT_EQ(spec.name, rec.name);
  ASSERT_EQ(spec.proxies.size(), 3u);
  ASSERT_EQ(spec.backends.size(), 3u);
  EXPECT_EQ(spec.proxies[1].client, (net::Endpoint{"127.10.1.2", rec.at("p2").port}));
  EXPECT_EQ(spec.proxies[1].stats, (net::Endpoint{"127.10.1.2", rec.at("p2").stats_port}));
  EXPECT_TRUE(spec.proxies[1].source_addresses.empty());
  EXPECT_EQ(spec.proxies[1].dns_vantage, "lab-dns");
  EXPECT_EQ(spec.backends[2].endpoint(), rec.at("b3").endpoint());
  EXPECT_EQ(spec.backends[2].dns_name, rec.at("b3").dns_name);
  EXPECT_EQ(spec.backends[2].expected_cidr->to_string(), "127.10.0.0/16");
  ASSERT_EQ(spec.dns_servers.size(), 1u);
  EXPECT_EQ(spec.dns_servers[0].name, "lab-dns");
  EXPECT_EQ(spec.dns_servers[0].address, (net::Endpoint{"127.10.2.53", rec.at("dns").port}));
  EXPECT_EQ(spec.timeouts.connect, 250ms);

  // Written through p1, read through p2 and p3; the keys spread over all backends.
  std::set<std::string> used;
  for (const auto& key : keys("up", 30)) {
    set_through(rec.at("p1").endpoint(), key, "value-" + key);
    EXPECT_EQ(get_through(rec.at("p2").endpoint(), key), "value-" + key);
    EXPECT_EQ(get_through(rec.at("p3").endpoint(), key), "value-" + key);
    auto homes = homes_of(rec, key, "value-" + key);
    ASSERT_EQ(homes.size(), 1u) << key;
    used.insert(homes.front());
  }
  EXPECT_EQ(used, (std::set<std::string>{"b1", "b2", "b3"}));

  // The lab's DNS server answers every name with the private address.
  for (const char* b : {"b1", "b2", "b3"}) EXPECT_EQ(resolve(rec, b), rec.at(b).address);
  auto unknown =
      query_a("127.10.2.53", rec.at("dns").port, "b9." + rec.name + ".ringwatch.test", 1s);
  ASSERT_TRUE(unknown.has_value());
  EXPECT_EQ(unknown->rcode, 3);  // NXDOMAIN
}

TEST(LabTest, EjectMakesOneProxyRouteTheBackendsKeysElsewhere) {
  Lab lab;
  Recorded before = lab.recorded();
  const auto& b2 = before.at("b2");
  // Keys that the healthy ring puts on b2.
  std::vector<std::string> on_b2;
  for (const auto& key : keys("eject", 30)) {
    set_through(before.at("p2").endpoint(), key, "healthy");
    if (homes_of(before, key, "healthy") == std::vector<std::string>{"b2"}) on_b2.push_back(key);
  }
  ASSERT_FALSE(on_b2.empty());

  inject(lab.dir(), {FaultKind::eject, "p1", "b2", "", ""});
  Recorded after = lab.recorded();
  EXPECT_NE(after.at("p1").pid, before.at("p1").pid);
  EXPECT_EQ(after.at("p1").port, before.at("p1").port);
  EXPECT_EQ(after.at("p1").stats_port, before.at("p1").stats_port);
  EXPECT_EQ(after.at("p2").pid, before.at("p2").pid);
  std::string config = config_of(lab, "p1");
  EXPECT_NE(config.find("- 127.200.0.12:" + std::to_string(b2.port) + ":1 b2\n"), std::string::npos)
      << config;
  EXPECT_EQ(config_of(lab, "p2").find("127.200."), std::string::npos);
  LabStatus st = lab::status(lab.dir());
  ASSERT_EQ(st.faults.size(), 1u);
  EXPECT_EQ(st.faults[0].rfind("eject: p1 sends b2 to its public address 127.200.0.12:", 0), 0u)
      << st.faults[0];
  // The lab drove p1 until it had ejected b2, so no client sees the failure.
  EXPECT_NE(st.faults[0].find(" (ejected after "), std::string::npos) << st.faults[0];
  EXPECT_TRUE(all_alive(st));

  // Through the healthy proxy the key still lives on b2; through p1 it lands elsewhere.
  for (const auto& key : on_b2) {
    EXPECT_EQ(get_through(after.at("p2").endpoint(), key), "healthy");
    set_through(after.at("p1").endpoint(), key, "via-p1");
    auto homes = homes_of(after, key, "via-p1");
    ASSERT_EQ(homes.size(), 1u) << key;
    EXPECT_NE(homes.front(), "b2") << key;
    EXPECT_EQ(get_through(b2.endpoint(), key), "healthy") << key;
  }

  heal(lab.dir());
  EXPECT_EQ(config_of(lab, "p1").find("127.200."), std::string::npos);
  for (const auto& key : on_b2) {
    set_through(after.at("p1").endpoint(), key, "healed");
    EXPECT_EQ(homes_of(after, key, "healed"), std::vector<std::string>{"b2"}) << key;
  }
  expect_healthy(lab);
}

TEST(LabTest, DnsFaultChangesOneAnswerUntilHeal) {
  Lab lab(2, 3);
  Recorded rec = lab.recorded();
  EXPECT_EQ(resolve(rec, "b1"), "127.10.0.11");

  inject(lab.dir(), {FaultKind::dns, "", "b1", "127.200.0.11", ""});
  EXPECT_EQ(resolve(rec, "b1"), "127.200.0.11");
  EXPECT_EQ(resolve(rec, "b2"), "127.10.0.12");
  LabStatus st = lab::status(lab.dir());
  ASSERT_EQ(st.faults.size(), 1u);
  EXPECT_EQ(st.faults[0], "dns: " + rec.at("b1").dns_name + " resolves to 127.200.0.11");
  EXPECT_EQ(lab.recorded().at("dns").pid, rec.at("dns").pid);  // reloaded, not restarted

  // A second answer for the same name replaces the first.
  inject(lab.dir(), {FaultKind::dns, "", "b1", "127.0.0.1", ""});
  EXPECT_EQ(resolve(rec, "b1"), "127.0.0.1");
  EXPECT_EQ(lab::status(lab.dir()).faults.size(), 1u);

  for (const char* answer : {"10.0.0.1", "8.8.8.8", "::1", "localhost", "127.0.0"}) {
    try {
      inject(lab.dir(), {FaultKind::dns, "", "b2", answer, ""});
      ADD_FAILURE() << answer << " accepted";
    } catch (const LabError& e) {
      EXPECT_EQ(std::string(e.what()), std::string("dns answer '") + answer +
                                           "' is not an IPv4 address inside 127.0.0.0/8");
    }
  }
  EXPECT_EQ(resolve(rec, "b2"), "127.10.0.12");

  heal(lab.dir());
  EXPECT_EQ(resolve(rec, "b1"), "127.10.0.11");
  expect_healthy(lab);
}

TEST(LabTest, HashFaultMakesTheProxiesDisagree) {
  Lab lab;
  Recorded rec = lab.recorded();
  inject(lab.dir(), {FaultKind::hash, "p2", "", "", "murmur"});
  EXPECT_NE(config_of(lab, "p2").find("hash: murmur"), std::string::npos);
  EXPECT_NE(lab.recorded().at("p2").pid, rec.at("p2").pid);
  EXPECT_EQ(lab.recorded().at("p2").port, rec.at("p2").port);
  EXPECT_EQ(lab::status(lab.dir()).faults,
            std::vector<std::string>{"hash: p2 hashes with murmur instead of fnv1a_64"});

  int misses = 0;
  for (const auto& key : keys("hash", 40)) {
    set_through(rec.at("p1").endpoint(), key, "x");
    EXPECT_EQ(get_through(rec.at("p3").endpoint(), key), "x");
    if (get_through(rec.at("p2").endpoint(), key) != "x") ++misses;
  }
  EXPECT_GT(misses, 0);

  try {
    inject(lab.dir(), {FaultKind::hash, "p1", "", "", "sha256"});
    ADD_FAILURE() << "sha256 accepted";
  } catch (const LabError& e) {
    EXPECT_EQ(std::string(e.what()),
              "unknown hash 'sha256' (nutcracker knows: one_at_a_time, md5, crc16, crc32, "
              "crc32a, fnv1_64, fnv1a_64, fnv1_32, fnv1a_32, hsieh, murmur, jenkins)");
  }

  heal(lab.dir());
  expect_healthy(lab);
}

TEST(LabTest, KillStallAndRestartBackendsThenHeal) {
  Lab lab;
  Recorded before = lab.recorded();

  inject(lab.dir(), {FaultKind::kill, "", "b1", "", ""});
  EXPECT_FALSE(proc_state(before.at("b1").pid, before.at("b1").start_time).has_value());

  inject(lab.dir(), {FaultKind::stall, "", "b2", "", ""});
  EXPECT_EQ(proc_state(before.at("b2").pid, before.at("b2").start_time), 'T');

  set_through(before.at("b3").endpoint(), "restart-key", "old");
  inject(lab.dir(), {FaultKind::restart, "", "b3", "", ""});
  Recorded after = lab.recorded();
  EXPECT_NE(after.at("b3").pid, before.at("b3").pid);
  EXPECT_EQ(after.at("b3").port, before.at("b3").port);
  EXPECT_FALSE(proc_state(before.at("b3").pid, before.at("b3").start_time).has_value());
  EXPECT_TRUE(running(after.at("b3")));
  EXPECT_EQ(get_through(after.at("b3").endpoint(), "restart-key"), std::nullopt);

  LabStatus st = lab::status(lab.dir());
  std::map<std::string, ProcessStatus> by_node;
  for (const auto& p : st.processes) by_node[p.node] = p;
  EXPECT_FALSE(by_node["b1"].alive);
  EXPECT_EQ(by_node["b1"].state, "dead");
  EXPECT_EQ(by_node["b1"].detail, before.at("b1").address + ":" +
                                      std::to_string(before.at("b1").port) +
                                      ", dead (killed by a fault)");
  EXPECT_FALSE(by_node["b2"].alive);
  EXPECT_EQ(by_node["b2"].state, "stopped");
  EXPECT_TRUE(by_node["b3"].alive);
  EXPECT_EQ(st.faults, (std::vector<std::string>{"kill: b1 was killed (SIGKILL)",
                                                 "stall: b2 is stopped (SIGSTOP)",
                                                 "restart: b3 was restarted empty"}));

  // A fault needs a live backend.
  try {
    inject(lab.dir(), {FaultKind::stall, "", "b1", "", ""});
    ADD_FAILURE() << "stalled a dead backend";
  } catch (const LabError& e) {
    EXPECT_EQ(std::string(e.what()), "b1 is not running");
  }

  heal(lab.dir());
  Recorded healed = lab.recorded();
  EXPECT_NE(healed.at("b1").pid, before.at("b1").pid);
  EXPECT_EQ(healed.at("b1").port, before.at("b1").port);
  EXPECT_EQ(healed.at("b2").pid, before.at("b2").pid);  // continued, not restarted
  EXPECT_TRUE(running(healed.at("b2")));
  expect_healthy(lab);
}

TEST(LabTest, HealUndoesEveryFaultAtOnce) {
  Lab lab;
  Fault faults[] = {
      {FaultKind::eject, "p1", "b3", "", ""},    {FaultKind::eject, "p1", "b2", "", ""},
      {FaultKind::hash, "p3", "", "", "crc32a"}, {FaultKind::dns, "", "b2", "127.200.0.12", ""},
      {FaultKind::kill, "", "b1", "", ""},       {FaultKind::stall, "", "b3", "", ""}};
  for (const auto& fault : faults) inject(lab.dir(), fault);
  EXPECT_EQ(lab::status(lab.dir()).faults.size(), 6u);
  EXPECT_EQ(lab.recorded().faults, 6u);
  heal(lab.dir());
  Recorded healed = lab.recorded();
  heal(lab.dir());  // healing a healthy lab restarts nothing
  for (const auto& [name, node] : lab.recorded().nodes)
    EXPECT_EQ(node.pid, healed.at(name).pid) << name;
  expect_healthy(lab);
}

TEST(LabTest, DownStopsExactlyTheRecordedProcesses) {
  LabDir dir;
  up({dir.path(), 2, 2});
  inject(dir.path(), {FaultKind::stall, "", "b1", "", ""});
  Recorded rec = read_lab_json(dir.path());

  // A memcached the lab did not start, on a lab address: down must leave it alone.
  auto port = free_ports("127.10.0.99", 1, false).front();
  std::vector<std::string> argv{find_program("memcached").string(),
                                "-l",
                                "127.10.0.99",
                                "-p",
                                std::to_string(port),
                                "-U",
                                "0"};
  if (::geteuid() == 0) argv.insert(argv.begin() + 1, {"-u", "root"});
  ProcessId decoy = spawn(argv, dir.path() / "decoy.log", dir.path());

  auto started = std::chrono::steady_clock::now();
  down(dir.path());
  auto took = std::chrono::steady_clock::now() - started;
  EXPECT_LT(took, 3s);
  for (const auto& [name, node] : rec.nodes)
    EXPECT_FALSE(proc_state(node.pid, node.start_time).has_value())
        << name << " (pid " << node.pid << ") still exists, even as a zombie";
  EXPECT_EQ(probe(decoy), ProcState::running);
  ::kill(decoy.pid, SIGKILL);
  ::waitpid(decoy.pid, nullptr, 0);

  EXPECT_EQ(read_lab_json(dir.path()).state, "down");
  EXPECT_TRUE(fs::exists(dir.path() / "cluster.json"));
  EXPECT_TRUE(fs::exists(dir.path() / "logs" / "p1.log"));
  LabStatus st = lab::status(dir.path());
  EXPECT_FALSE(st.is_up);
  for (const auto& p : st.processes) EXPECT_FALSE(p.alive) << p.node;
  down(dir.path());  // idempotent

  const std::string expected = "the lab in " + dir.path().string() +
                               " is down; start it with `ringwatch lab up --dir " +
                               dir.path().string() + "`";
  try {
    inject(dir.path(), {FaultKind::kill, "", "b1", "", ""});
    ADD_FAILURE() << "fault on a stopped lab accepted";
  } catch (const LabError& e) {
    EXPECT_EQ(std::string(e.what()), expected);
  }
  try {
    heal(dir.path());
    ADD_FAILURE() << "heal on a stopped lab accepted";
  } catch (const LabError& e) {
    EXPECT_EQ(std::string(e.what()), expected);
  }

  // The directory can hold a new lab afterwards.
  LabStatus again = up({dir.path(), 1, 1});
  EXPECT_TRUE(all_alive(again));
  EXPECT_EQ(again.processes.size(), 3u);
}

TEST(LabTest, TwoLabsRunSideBySide) {
  Lab first(2, 2, "ringwatch-lab-A.");
  Lab second(2, 2, "ringwatch-lab-B.");
  Recorded a = first.recorded();
  Recorded b = second.recorded();
  EXPECT_NE(a.name, b.name);
  EXPECT_EQ(a.name.rfind("ringwatch-lab-a-", 0), 0u) << a.name;  // lower-cased, '.' -> '-'
  EXPECT_TRUE(all_alive(lab::status(first.dir())));
  EXPECT_TRUE(all_alive(lab::status(second.dir())));
  for (const auto& [name, node] : a.nodes) {
    EXPECT_EQ(node.address, b.at(name).address);
    EXPECT_NE(node.port, b.at(name).port) << name;
  }
  set_through(a.at("p1").endpoint(), "which-lab", "first");
  set_through(b.at("p1").endpoint(), "which-lab", "second");
  EXPECT_EQ(get_through(a.at("p2").endpoint(), "which-lab"), "first");
  EXPECT_EQ(get_through(b.at("p2").endpoint(), "which-lab"), "second");
  EXPECT_EQ(resolve(a, "b1"), "127.10.0.11");
  EXPECT_EQ(resolve(b, "b1"), "127.10.0.11");
  auto cross = query_a("127.10.2.53", a.at("dns").port, b.at("b1").dns_name, 1s);
  ASSERT_TRUE(cross.has_value());
  EXPECT_TRUE(cross->addresses.empty());  // each DNS server only knows its own lab
}

TEST(LabTest, ConfigurationErrorsAreClear) {
  LabDir empty;
  try {
    lab::status(empty.path());
    ADD_FAILURE() << "status without a lab";
  } catch (const LabError& e) {
    EXPECT_EQ(std::string(e.what()), "no lab in " + empty.path().string() +
                                         " (no lab.json); start one with `ringwatch lab up "
                                         "--dir " +
                                         empty.path().string() + "`");
  }
  EXPECT_THROW(down(empty.path()), LabError);
  EXPECT_THROW(up({empty.path(), 0, 3}), LabError);
  EXPECT_THROW(up({empty.path(), 1, 201}), LabError);

  Lab lab(1, 2);
  std::string name = lab.recorded().name;
  try {
    inject(lab.dir(), {FaultKind::kill, "", "b9", "", ""});
    ADD_FAILURE() << "unknown backend accepted";
  } catch (const LabError& e) {
    EXPECT_EQ(std::string(e.what()),
              "unknown backend 'b9' in lab '" + name + "' (backends: b1, b2)");
  }
  try {
    inject(lab.dir(), {FaultKind::eject, "p7", "b1", "", ""});
    ADD_FAILURE() << "unknown proxy accepted";
  } catch (const LabError& e) {
    EXPECT_EQ(std::string(e.what()), "unknown proxy 'p7' in lab '" + name + "' (proxies: p1)");
  }
  try {
    inject(lab.dir(), {FaultKind::eject, "p1", "", "", ""});
    ADD_FAILURE() << "eject without a backend accepted";
  } catch (const LabError& e) {
    EXPECT_EQ(std::string(e.what()), "fault eject needs a proxy and a backend");
  }
  try {
    up({lab.dir(), 1, 1});
    ADD_FAILURE() << "second lab in a running lab's directory";
  } catch (const LabError& e) {
    EXPECT_EQ(std::string(e.what()), lab.dir().string() +
                                         " already holds a running lab (4 of its processes "
                                         "alive); stop it with `ringwatch lab down --dir " +
                                         lab.dir().string() + "`");
  }
  EXPECT_TRUE(all_alive(lab::status(lab.dir())));
  EXPECT_EQ(lab.recorded().faults, 0u);
}

// A damaged lab.json is an error that names the file, the JSON pointer and
// what was expected (the spec's JSON cursor), never a crash or a guess.
TEST(LabTest, ADamagedStateFileNamesTheFileAndThePointer) {
  LabDir dir;
  up({dir.path(), 1, 1});
  down(dir.path());  // nothing runs while the file is damaged
  const fs::path file = dir.path() / "lab.json";
  const std::string intact = read_text(file);
  const auto error_with = [&](const std::vector<testing::JsonPatch>& patches) {
    std::ofstream(file, std::ios::trunc) << testing::patched_json(intact.c_str(), patches);
    try {
      lab::status(dir.path());
    } catch (const LabError& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  const std::string at = file.string() + ": ";
  EXPECT_EQ(error_with({{"/nodes/2/port", R"("22121")"}}),
            at + "/nodes/2/port: expected an integer from 0 to 65535, got a string");
  EXPECT_EQ(error_with({{"/nodes/0/port", "65536"}}),
            at + "/nodes/0/port: expected an integer from 0 to 65535, got 65536");
  EXPECT_EQ(error_with({{"/nodes/0/role", R"("router")"}}),
            at + R"(/nodes/0/role: expected "backend", "proxy" or "dns", got "router")");
  EXPECT_EQ(error_with({{"/nodes/1/pid", nullptr}}),
            at + R"(/nodes/1: missing required field "pid")");
  EXPECT_EQ(error_with({{"/faults", "{}"}}), at + "/faults: expected an array, got an object");
  EXPECT_EQ(
      error_with({{"/faults", R"([{"kind": "melt", "at": ""}])"}}),
      at +
          R"(/faults/0/kind: expected a fault kind (eject, omit, weight, dns, hash, kill, stall or restart), got "melt")");
  EXPECT_EQ(error_with({{"/format", "2"}}),
            at + "/format: expected format 1 (the one this ringwatch reads), got 2");
  EXPECT_EQ(error_with({{"/netns", "[]"}}), at + "/netns: expected an object, got an array");

  std::ofstream(file, std::ios::trunc) << "{\"format\": 1,";
  try {
    lab::status(dir.path());
    ADD_FAILURE() << "a truncated lab.json accepted";
  } catch (const LabError& e) {
    EXPECT_EQ(std::string(e.what()),
              at + "invalid JSON at line 1, column 14: Missing a name for object member.");
  }

  // The intact file reads again, and names the same lab.
  std::ofstream(file, std::ios::trunc) << intact;
  EXPECT_FALSE(lab::status(dir.path()).is_up);
}

}  // namespace
}  // namespace ringwatch::lab

namespace ringwatch::lab {
namespace {

std::vector<std::string> backend_names(const spec::ClusterSpec& spec) {
  std::vector<std::string> names;
  for (const auto& backend : spec.backends) names.push_back(backend.name);
  return names;
}

std::optional<ProcessStatus> process_of(const LabStatus& status, const std::string& node) {
  for (const auto& process : status.processes)
    if (process.node == node) return process;
  return std::nullopt;
}

TEST(LabTest, DrainTakesABackendOutOfTheSpecAndTheRollWhileItKeepsServing) {
  Lab lab;
  const Recorded before = lab.recorded();
  const RecordedNode b1 = before.at("b1");
  const std::string b1_line =
      "- " + b1.address + ":" + std::to_string(b1.port) + ":1 b1\n";  // in a proxy config
  // Keys that the full ring puts on b1.
  std::vector<std::string> on_b1;
  for (const auto& key : keys("drain", 40)) {
    set_through(before.at("p1").endpoint(), key, "v-" + key);
    if (homes_of(before, key, "v-" + key) == std::vector<std::string>{"b1"}) on_b1.push_back(key);
  }
  ASSERT_FALSE(on_b1.empty());

  drain_backend(lab.dir(), "b1");
  const fs::path spec_file = lab.dir() / "cluster.json";
  EXPECT_EQ(backend_names(spec::load_cluster_spec(spec_file.string())),
            (std::vector<std::string>{"b2", "b3"}));
  // Still running and resolvable, and the status says why it is not in the spec.
  LabStatus st = lab::status(lab.dir());
  auto b1_status = process_of(st, "b1");
  ASSERT_TRUE(b1_status.has_value());
  EXPECT_TRUE(b1_status->alive);
  EXPECT_EQ(b1_status->pid, b1.pid);
  EXPECT_EQ(b1_status->detail, b1.address + ":" + std::to_string(b1.port) +
                                   ", draining (out of the spec and new proxy configs)");
  EXPECT_TRUE(running(lab.recorded().at("b1")));
  EXPECT_EQ(resolve(before, "b1"), b1.address);
  // No proxy was touched: same processes, same configs, and b1's keys still read.
  for (const char* proxy : {"p1", "p2", "p3"}) {
    EXPECT_EQ(lab.recorded().at(proxy).pid, before.at(proxy).pid) << proxy;
    EXPECT_NE(config_of(lab, proxy).find(b1_line), std::string::npos) << config_of(lab, proxy);
    for (const auto& key : on_b1) {
      EXPECT_EQ(get_through(before.at(proxy).endpoint(), key), "v-" + key) << proxy << " " << key;
    }
  }
  drain_backend(lab.dir(), "b1");  // idempotent
  EXPECT_EQ(backend_names(spec::load_cluster_spec(spec_file.string())),
            (std::vector<std::string>{"b2", "b3"}));

  // The roll: the proxies come back without b1 and route around it.
  restart_proxies(lab.dir());
  const Recorded rolled = lab.recorded();
  for (const char* proxy : {"p1", "p2", "p3"}) {
    EXPECT_NE(rolled.at(proxy).pid, before.at(proxy).pid) << proxy;
    EXPECT_EQ(rolled.at(proxy).port, before.at(proxy).port) << proxy;
    EXPECT_EQ(config_of(lab, proxy).find(" b1\n"), std::string::npos) << config_of(lab, proxy);
    // b1's keys now hash elsewhere, where they were never written.
    for (const auto& key : on_b1) {
      EXPECT_EQ(get_through(rolled.at(proxy).endpoint(), key), std::nullopt) << proxy << " " << key;
    }
  }
  for (const auto& key : on_b1) EXPECT_EQ(get_through(b1.endpoint(), key), "v-" + key) << key;
  EXPECT_TRUE(running(rolled.at("b1")));  // draining is not stopping
  const spec::ClusterSpec spec = spec::load_cluster_spec(spec_file.string());
  probes::ProbeSet probes({"canary"});
  const report::Report report = testing::run_until(
      probes, spec, [](const report::Report& r) { return r.status() == report::Status::ok; },
      std::chrono::seconds(15));
  EXPECT_EQ(report.status(), report::Status::ok) << testing::describe(report);
  EXPECT_EQ(testing::figure(report, "consistency_ratio"), 1.0) << testing::describe(report);
  for (const char* proxy : {"p1", "p2", "p3"}) {
    EXPECT_EQ(testing::figure(report, std::string("backends_routed/") + proxy), 2)
        << testing::describe(report);
  }

  // Then it is stopped and forgotten.
  remove_backend(lab.dir(), "b1");
  st = lab::status(lab.dir());
  EXPECT_FALSE(process_of(st, "b1").has_value());
  EXPECT_EQ(lab.recorded().nodes.count("b1"), 0u);
  EXPECT_FALSE(proc_state(b1.pid, b1.start_time).has_value()) << "b1 (pid " << b1.pid << ") lives";
  EXPECT_TRUE(all_alive(st));
  EXPECT_EQ(backend_names(spec::load_cluster_spec(spec_file.string())),
            (std::vector<std::string>{"b2", "b3"}));
  const auto gone_by = std::chrono::steady_clock::now() + 5s;
  while (resolve(before, "b1") && std::chrono::steady_clock::now() < gone_by)
    std::this_thread::sleep_for(50ms);
  EXPECT_EQ(resolve(before, "b1"), std::nullopt);

  // A lab keeps one serving backend: b2 may go, b3 may not.
  drain_backend(lab.dir(), "b2");
  try {
    drain_backend(lab.dir(), "b3");
    ADD_FAILURE() << "drained the last serving backend";
  } catch (const LabError& e) {
    EXPECT_EQ(std::string(e.what()),
              "cannot drain b3, the last serving backend of lab '" + before.name + "'");
  }
  EXPECT_EQ(backend_names(spec::load_cluster_spec(spec_file.string())),
            std::vector<std::string>{"b3"});
  st = lab::status(lab.dir());
  EXPECT_TRUE(all_alive(st));
  ASSERT_TRUE(process_of(st, "b3").has_value());
  EXPECT_EQ(process_of(st, "b3")->detail.find("draining"), std::string::npos);
}

}  // namespace
}  // namespace ringwatch::lab
