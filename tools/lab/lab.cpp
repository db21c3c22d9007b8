#include "tools/lab/lab.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>
#include <thread>

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>

#include "lib/spec/cluster_spec.h"
#include "lib/util/time.h"
#include "tools/lab/dns_query.h"
#include "tools/lab/netns.h"
#include "tools/lab/process.h"

namespace ringwatch::lab {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr int kFormat = 1;
constexpr int kMaxBackends = 200;  // 127.10.0.(10+i) stays inside 127.10.0.0/24
constexpr int kMaxProxies = 200;
constexpr auto kReadyTimeout = 5s;
constexpr auto kStopGrace = 2s;
constexpr auto kProbeTimeout = 200ms;
constexpr auto kEjectSettleTimeout = 3s;
constexpr int kStartAttempts = 4;
constexpr const char* kHealthyHash = "fnv1a_64";
constexpr const char* kDnsAddress = "127.10.2.53";
constexpr const char* kDnsVantage = "lab-dns";
constexpr const char* kExpectedCidr = "127.10.0.0/16";
constexpr const char* kDomain = "ringwatch.test";

// nutcracker 0.5.0's hash functions (nc_conf.h HASH_CODEC).
const std::vector<std::string> kHashes{"one_at_a_time", "md5",     "crc16",    "crc32",
                                       "crc32a",        "fnv1_64", "fnv1a_64", "fnv1_32",
                                       "fnv1a_32",      "hsieh",   "murmur",   "jenkins"};

struct Node {
  std::string name;
  std::string role;  // "backend", "proxy", "dns"
  int index = 0;     // i in b<i> / p<i>
  std::string address;
  std::uint16_t port = 0;
  std::uint16_t stats_port = 0;  // proxy
  std::string public_address;    // backend: where nothing listens
  std::string dns_name;          // backend
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
  fs::path dir;
  std::string name;
  bool up = false;
  std::string created_at;
  std::vector<Node> nodes;
  std::vector<FaultRecord> faults;
  std::optional<NetnsLayout> netns;  // netns mode
};

const char* kind_name(FaultKind kind) {
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
  }
  return "eject";
}

std::optional<FaultKind> parse_kind(const std::string& text) {
  for (auto kind : {FaultKind::eject, FaultKind::dns, FaultKind::hash, FaultKind::kill,
                    FaultKind::stall, FaultKind::restart})
    if (text == kind_name(kind)) return kind;
  return std::nullopt;
}

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// ---- paths -------------------------------------------------------------

fs::path state_path(const fs::path& dir) {
  return dir / "lab.json";
}
fs::path log_path(const fs::path& dir, const std::string& node) {
  return dir / "logs" / (node + ".log");
}
fs::path config_path(const fs::path& dir, const std::string& proxy) {
  return dir / "conf" / (proxy + ".yml");
}
fs::path hosts_path(const fs::path& dir) {
  return dir / "dns" / "hosts";
}
fs::path dnsmasq_log_path(const fs::path& dir) {
  return dir / "dnsmasq.log";
}
// netns mode: each resolver reads every hosts file in its own directory
// (dnsmasq --hostsdir notices a file renamed into it; SIGHUP re-reads too).
fs::path hosts_dir(const fs::path& dir, const std::string& dns_node) {
  return dir / "dns" / dns_node;
}
fs::path netns_log_path(const fs::path& dir) {
  return dir / "logs" / "netns.log";
}

void write_atomically(const fs::path& path, const std::string& content) {
  fs::path temp = path;
  temp += ".tmp";
  {
    std::ofstream out(temp, std::ios::trunc);
    out << content;
    out.close();
    if (!out) throw LabError("cannot write " + temp.string());
  }
  std::error_code ec;
  fs::rename(temp, path, ec);
  if (ec)
    throw LabError("cannot rename " + temp.string() + " to " + path.string() + ": " + ec.message());
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path);
  std::ostringstream content;
  content << in.rdbuf();
  return content.str();
}

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

// ---- lab.json ----------------------------------------------------------

std::string to_json(const State& state) {
  rapidjson::StringBuffer buffer;
  rapidjson::PrettyWriter<rapidjson::StringBuffer> w(buffer);
  w.SetIndent(' ', 2);
  w.StartObject();
  w.Key("format");
  w.Int(kFormat);
  w.Key("name");
  w.String(state.name);
  w.Key("state");
  w.String(state.up ? "up" : "down");
  w.Key("created_at");
  w.String(state.created_at);
  w.Key("spec");
  w.String("cluster.json");
  w.Key("mode");
  w.String(state.netns ? "netns" : "loopback");
  if (state.netns) {
    w.Key("netns");
    write_netns_json(w, *state.netns);
  }
  w.Key("nodes");
  w.StartArray();
  for (const auto& node : state.nodes) {
    w.StartObject();
    w.Key("name");
    w.String(node.name);
    w.Key("role");
    w.String(node.role);
    w.Key("index");
    w.Int(node.index);
    w.Key("address");
    w.String(node.address);
    w.Key("port");
    w.Uint(node.port);
    if (node.role == "proxy") {
      w.Key("stats_port");
      w.Uint(node.stats_port);
      w.Key("config");
      w.String(fs::relative(config_path(state.dir, node.name), state.dir).string());
    }
    if (node.role == "backend") {
      w.Key("public_address");
      w.String(node.public_address);
      w.Key("dns_name");
      w.String(node.dns_name);
      if (node.draining) {
        w.Key("draining");
        w.Bool(true);
      }
    }
    w.Key("argv");
    w.StartArray();
    for (const auto& arg : node.argv) w.String(arg);
    w.EndArray();
    w.Key("pid");
    w.Int(node.process.pid);
    w.Key("start_time");
    w.Uint64(node.process.start_time);
    w.Key("started_at");
    w.String(node.started_at);
    w.Key("state");
    w.String(node.state);
    w.Key("log");
    w.String(fs::relative(log_path(state.dir, node.name), state.dir).string());
    if (!node.netns.empty()) {
      w.Key("netns");
      w.String(node.netns);
    }
    w.EndObject();
  }
  w.EndArray();
  w.Key("faults");
  w.StartArray();
  for (const auto& fault : state.faults) {
    w.StartObject();
    w.Key("kind");
    w.String(kind_name(fault.kind));
    if (!fault.proxy.empty()) {
      w.Key("proxy");
      w.String(fault.proxy);
    }
    if (!fault.backend.empty()) {
      w.Key("backend");
      w.String(fault.backend);
    }
    if (!fault.answer.empty()) {
      w.Key("answer");
      w.String(fault.answer);
    }
    if (!fault.hash.empty()) {
      w.Key("hash");
      w.String(fault.hash);
    }
    if (fault.settle_ms >= 0) {
      w.Key("settle_ms");
      w.Int64(fault.settle_ms);
    }
    if (fault.until_ms >= 0) {
      w.Key("until_ms");
      w.Int64(fault.until_ms);
      w.Key("timer_pid");
      w.Int(fault.timer.pid);
      w.Key("timer_start_time");
      w.Uint64(fault.timer.start_time);
    }
    w.Key("at");
    w.String(fault.at);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize()) + "\n";
}

void save(const State& state) {
  write_atomically(state_path(state.dir), to_json(state));
}

class JsonReader {
 public:
  explicit JsonReader(std::string file) : file_(std::move(file)) {}

  [[noreturn]] void fail(const std::string& what) const {
    throw LabError(file_ + ": not a ringwatch lab state file (" + what + ")");
  }
  const rapidjson::Value& member(const rapidjson::Value& object, const char* key) const {
    if (!object.IsObject()) fail("expected an object");
    auto it = object.FindMember(key);
    if (it == object.MemberEnd()) fail(std::string("missing '") + key + "'");
    return it->value;
  }
  std::string string(const rapidjson::Value& object, const char* key, bool optional = false) const {
    if (optional && (!object.IsObject() || !object.HasMember(key))) return {};
    const auto& value = member(object, key);
    if (!value.IsString()) fail(std::string("'") + key + "' is not a string");
    return {value.GetString(), value.GetStringLength()};
  }
  std::int64_t integer(const rapidjson::Value& object, const char* key, std::int64_t fallback = -1,
                       bool optional = false) const {
    if (optional && (!object.IsObject() || !object.HasMember(key))) return fallback;
    const auto& value = member(object, key);
    if (!value.IsInt64()) fail(std::string("'") + key + "' is not an integer");
    return value.GetInt64();
  }
  std::uint64_t unsigned_integer(const rapidjson::Value& object, const char* key) const {
    const auto& value = member(object, key);
    if (!value.IsUint64()) fail(std::string("'") + key + "' is not an unsigned integer");
    return value.GetUint64();
  }
  std::uint16_t port(const rapidjson::Value& object, const char* key) const {
    auto value = integer(object, key);
    if (value < 0 || value > 65535) fail(std::string("'") + key + "' is not a port");
    return static_cast<std::uint16_t>(value);
  }

 private:
  std::string file_;
};

State load(const fs::path& dir) {
  fs::path file = state_path(dir);
  if (!fs::exists(file))
    throw LabError("no lab in " + dir.string() +
                   " (no lab.json); start one with `ringwatch lab up --dir " + dir.string() + "`");
  std::string text = read_file(file);
  JsonReader r(file.string());
  rapidjson::Document doc;
  doc.Parse(text.c_str(), text.size());
  if (doc.HasParseError())
    r.fail(std::string("JSON error at offset ") + std::to_string(doc.GetErrorOffset()) + ": " +
           rapidjson::GetParseError_En(doc.GetParseError()));
  if (r.integer(doc, "format") != kFormat) r.fail("unsupported format");
  State state;
  state.dir = dir;
  state.name = r.string(doc, "name");
  state.up = r.string(doc, "state") == "up";
  state.created_at = r.string(doc, "created_at");
  if (doc.HasMember("netns")) state.netns = netns_from_json(doc["netns"], file.string());
  const auto& nodes = r.member(doc, "nodes");
  if (!nodes.IsArray()) r.fail("'nodes' is not an array");
  for (const auto& n : nodes.GetArray()) {
    Node node;
    node.name = r.string(n, "name");
    node.role = r.string(n, "role");
    if (node.role != "backend" && node.role != "proxy" && node.role != "dns")
      r.fail("unknown role '" + node.role + "'");
    node.index = static_cast<int>(r.integer(n, "index"));
    node.address = r.string(n, "address");
    node.port = r.port(n, "port");
    if (node.role == "proxy") node.stats_port = r.port(n, "stats_port");
    node.public_address = r.string(n, "public_address", true);
    node.dns_name = r.string(n, "dns_name", true);
    const auto& argv = r.member(n, "argv");
    if (!argv.IsArray()) r.fail("'argv' is not an array");
    for (const auto& arg : argv.GetArray())
      if (arg.IsString()) node.argv.emplace_back(arg.GetString(), arg.GetStringLength());
    node.process.pid = static_cast<int>(r.integer(n, "pid"));
    node.process.start_time = r.unsigned_integer(n, "start_time");
    node.started_at = r.string(n, "started_at");
    node.state = r.string(n, "state");
    node.netns = r.string(n, "netns", true);
    const auto draining = n.FindMember("draining");
    node.draining =
        draining != n.MemberEnd() && draining->value.IsBool() && draining->value.GetBool();
    state.nodes.push_back(std::move(node));
  }
  const auto& faults = r.member(doc, "faults");
  if (!faults.IsArray()) r.fail("'faults' is not an array");
  for (const auto& f : faults.GetArray()) {
    FaultRecord fault;
    auto kind = parse_kind(r.string(f, "kind"));
    if (!kind) r.fail("unknown fault kind");
    fault.kind = *kind;
    fault.proxy = r.string(f, "proxy", true);
    fault.backend = r.string(f, "backend", true);
    fault.answer = r.string(f, "answer", true);
    fault.hash = r.string(f, "hash", true);
    fault.settle_ms = r.integer(f, "settle_ms", -1, true);
    fault.at = r.string(f, "at", true);
    fault.until_ms = r.integer(f, "until_ms", -1, true);
    if (fault.until_ms >= 0) {
      fault.timer.pid = static_cast<int>(r.integer(f, "timer_pid"));
      fault.timer.start_time = r.unsigned_integer(f, "timer_start_time");
    }
    // An answer whose time is up is no longer a fault (its helper restored it).
    if (fault.until_ms >= 0 && fault.until_ms <= now_ms()) {
      probe(fault.timer);  // reaps it if it is our child
      continue;
    }
    state.faults.push_back(std::move(fault));
  }
  return state;
}

// ---- lookups -----------------------------------------------------------

std::vector<Node*> nodes_with_role(State& state, const std::string& role) {
  std::vector<Node*> out;
  for (auto& node : state.nodes)
    if (node.role == role) out.push_back(&node);
  return out;
}

std::vector<const Node*> nodes_with_role(const State& state, const std::string& role) {
  std::vector<const Node*> out;
  for (const auto& node : state.nodes)
    if (node.role == role) out.push_back(&node);
  return out;
}

Node& find_node(State& state, const std::string& role, const std::string& name) {
  std::string known;
  for (auto& node : state.nodes) {
    if (node.role != role) continue;
    if (node.name == name) return node;
    known += (known.empty() ? "" : ", ") + node.name;
  }
  std::string plural = role == "proxy" ? "proxies" : role + "s";
  throw LabError("unknown " + role + " '" + name + "' in lab '" + state.name + "' (" + plural +
                 ": " + known + ")");
}

const FaultRecord* find_fault(const State& state, FaultKind kind, const std::string& proxy,
                              const std::string& backend) {
  for (const auto& fault : state.faults)
    if (fault.kind == kind && (proxy.empty() || fault.proxy == proxy) &&
        (backend.empty() || fault.backend == backend))
      return &fault;
  return nullptr;
}

void remove_faults(State& state, FaultKind kind, const std::string& proxy,
                   const std::string& backend) {
  std::erase_if(state.faults, [&](const FaultRecord& fault) {
    return fault.kind == kind && (proxy.empty() || fault.proxy == proxy) &&
           (backend.empty() || fault.backend == backend);
  });
}

std::string describe(const State& state, const FaultRecord& fault) {
  auto backend_node = [&]() -> const Node* {
    for (const auto& node : state.nodes)
      if (node.role == "backend" && node.name == fault.backend) return &node;
    return nullptr;
  };
  switch (fault.kind) {
    case FaultKind::eject: {
      const Node* b = backend_node();
      std::string text = "eject: " + fault.proxy + " sends " + fault.backend +
                         " to its public address " +
                         (b ? b->public_address + ":" + std::to_string(b->port) : "?");
      if (fault.settle_ms >= 0)
        text += " (ejected after " + std::to_string(fault.settle_ms) + " ms)";
      return text;
    }
    case FaultKind::dns: {
      const Node* b = backend_node();
      std::string text =
          "dns: " + (b ? b->dns_name : fault.backend) + " resolves to " + fault.answer;
      if (!fault.proxy.empty()) text += " at " + fault.proxy + "'s vantage point";
      if (fault.until_ms >= 0)
        text += " for " + std::to_string(std::max<std::int64_t>(0, fault.until_ms - now_ms())) +
                " ms more";
      return text;
    }
    case FaultKind::hash:
      return "hash: " + fault.proxy + " hashes with " + fault.hash + " instead of " + kHealthyHash;
    case FaultKind::kill:
      return "kill: " + fault.backend + " was killed (SIGKILL)";
    case FaultKind::stall:
      return "stall: " + fault.backend + " is stopped (SIGSTOP)";
    case FaultKind::restart:
      return "restart: " + fault.backend + " was restarted empty";
  }
  return "";
}

// ---- configs and argv --------------------------------------------------
// The last lines a node logged, without the lab's own "--- ... starts:" banners.
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

std::string current_user() {
  if (const passwd* pw = ::getpwuid(::geteuid())) return pw->pw_name;
  return std::to_string(::geteuid());
}

std::string proxy_config(const State& state, const Node& proxy, bool healthy) {
  std::string hash = kHealthyHash;
  if (!healthy)
    if (const auto* fault = find_fault(state, FaultKind::hash, proxy.name, "")) hash = fault->hash;
  std::ostringstream out;
  // The same header either way: heal compares the file with the healthy text.
  out << "# written by ringwatch lab for " << proxy.name
      << "; `ringwatch lab heal` restores the healthy version\n"
      << state.name << ":\n"
      << "  listen: " << proxy.endpoint() << "\n"
      << "  hash: " << hash << "\n"
      << "  distribution: ketama\n"
      << "  auto_eject_hosts: true\n"
      << "  server_retry_timeout: 10000\n"
      // Two failures before an eject, and 600 ms per reply (below the spec's
      // 1000 ms io deadline, so a stalled backend shows as a proxy error, not
      // as a proxy timeout): one slow reply on a loaded machine must not eject.
      << "  server_failure_limit: 2\n"
      << "  timeout: 600\n"
      << "  preconnect: false\n"
      << "  servers:\n";
  for (const Node* backend : nodes_with_role(state, "backend")) {
    if (backend->draining) continue;
    bool ejected = !healthy && find_fault(state, FaultKind::eject, proxy.name, backend->name);
    // Named servers: the ketama ring hashes the name, so pointing a server at
    // another address keeps its place on the ring, as a DNS change would.
    // netns mode: the backend's DNS name, which nutcracker resolves once at
    // start through the proxy's own resolver (its resolv.conf).
    const std::string& host = state.netns ? backend->dns_name : backend->address;
    out << "    - " << (ejected ? backend->public_address : host) << ":" << backend->port << ":1 "
        << backend->name << "\n";
  }
  return out.str();
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

std::string hosts_file(const State& state, bool healthy, const std::string& vantage_proxy = "",
                       const FaultRecord* ignored = nullptr) {
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

// netns mode: the proxy whose namespace (and resolv.conf) a resolver serves.
std::string vantage_proxy_of(const State& state, const Node& dns) {
  if (dns.netns.empty()) return "";
  for (const auto& node : state.nodes)
    if (node.role == "proxy" && node.netns == dns.netns) return node.name;
  return "";
}

// Writes the hosts file `dns` serves.
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

std::vector<std::string> build_argv_here(const State& state, const Node& node);

std::vector<std::string> build_argv(const State& state, const Node& node) {
  if (node.netns.empty()) return build_argv_here(state, node);
  return in_netns_argv(node.netns, build_argv_here(state, node));
}

std::vector<std::string> build_argv_here(const State& state, const Node& node) {
  if (node.role == "backend") {
    std::vector<std::string> argv{find_program("memcached").string()};
    if (::geteuid() == 0) {
      argv.emplace_back("-u");
      argv.emplace_back("root");
    }
    argv.insert(argv.end(), {"-l", node.address, "-p", std::to_string(node.port), "-U", "0", "-t",
                             "1", "-m", "64", "-c", "1024"});
    return argv;
  }
  if (node.role == "proxy") {
    return {find_program("nutcracker").string(), "-c", config_path(state.dir, node.name).string(),
            "-a", node.address, "-s", std::to_string(node.stats_port), "-i", "1000",
            // Debian's nutcracker otherwise logs to /var/log/nutcracker/.
            "-o", log_path(state.dir, node.name).string()};
  }
  if (!node.netns.empty()) {
    return {find_program("dnsmasq").string(),
            "--keep-in-foreground",
            "--conf-file=/dev/null",
            "--no-resolv",
            "--no-hosts",
            "--listen-address=" + node.address,
            "--bind-interfaces",
            "--port=" + std::to_string(node.port),
            "--hostsdir=" + hosts_dir(state.dir, node.name).string(),
            "--local=/" + state.name + "." + kDomain + "/",
            "--local-ttl=1",
            "--pid-file=",
            "--user=" + current_user(),
            "--log-queries",
            "--log-facility=" + (state.dir / "logs" / (node.name + ".queries.log")).string()};
  }
  return {find_program("dnsmasq").string(),
          "--keep-in-foreground",
          "--conf-file=/dev/null",
          "--no-resolv",
          "--no-hosts",
          "--listen-address=" + node.address,
          "--bind-interfaces",
          "--port=" + std::to_string(node.port),
          "--addn-hosts=" + hosts_path(state.dir).string(),
          "--local=/" + state.name + "." + kDomain + "/",
          "--local-ttl=1",
          "--pid-file=",
          "--user=" + current_user(),
          "--log-queries",
          "--log-facility=" + dnsmasq_log_path(state.dir).string()};
}

void write_proxy_config(const State& state, const Node& proxy, bool healthy) {
  fs::path path = config_path(state.dir, proxy.name);
  write_atomically(path, proxy_config(state, proxy, healthy));
  std::vector<std::string> argv{find_program("nutcracker").string(), "-t", "-c", path.string()};
  // netns mode: the test resolves the servers' names, as the proxy will.
  if (!proxy.netns.empty()) argv = in_netns_argv(proxy.netns, std::move(argv));
  int rc = run_to_completion(argv, log_path(state.dir, proxy.name), state.dir, 5s);
  if (rc != 0)
    throw LabError("nutcracker rejects " + path.string() + " (see " +
                   log_path(state.dir, proxy.name).string() +
                   "): " + log_excerpt(state, proxy.name));
}

// ---- starting and readiness -------------------------------------------

// Runs `fn` where the lab's nodes can be reached: right here in the loopback
// lab, on a thread in the probe's namespace in netns mode.
template <class Fn>
auto from_probe_vantage(const State& state, Fn fn) -> decltype(fn()) {
  if (!state.netns) return fn();
  std::optional<decltype(fn())> out;
  run_in_netns(state.netns->probe().netns, [&] { out.emplace(fn()); });
  return std::move(*out);
}

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
    return node.role != "proxy" || tcp_accepts(node.address, node.stats_port, kProbeTimeout);
  });
}

void start_node(State& state, Node& node) {
  node.argv = build_argv(state, node);
  try {
    node.process = spawn(node.argv, log_path(state.dir, node.name), state.dir);
  } catch (const std::runtime_error& e) {
    throw LabError(node.name + ": " + e.what());
  }
  node.started_at = util::format_rfc3339(std::chrono::system_clock::now());
  node.state = "running";
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

void choose_ports(const State& state, Node& node) {
  if (state.netns) {
    // Every node has an address of its own: the well-known ports. A proxy's
    // config names its servers by DNS name and is written (and checked by
    // nutcracker, which resolves them) once its resolver answers.
    node.port = node.role == "backend" ? 11211 : node.role == "proxy" ? 22121 : 53;
    if (node.role == "proxy") node.stats_port = 22222;
    return;
  }
  auto ports = free_ports(node.address, node.role == "proxy" ? 2 : 1, node.role == "dns");
  node.port = ports[0];
  if (node.role == "proxy") {
    node.stats_port = ports[1];
    write_proxy_config(state, node, false);
  }
}

// Starts the nodes and waits until all accept. On `up` a node that dies gets
// new ports; on a restart it keeps its ports (the spec names them) and is
// retried after a pause.
void start_nodes(State& state, const std::vector<Node*>& nodes, bool may_change_ports) {
  if (nodes.empty()) return;
  for (Node* node : nodes) start_node(state, *node);
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
    for (Node* node : died) {
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
  stop_nodes(nodes, "down");
  start_nodes(state, nodes, false);
}

// Waits until the lab's DNS servers answer every backend name as the hosts
// files say.
void wait_dns_answers(State& state) {
  for (const Node* dns_ptr : nodes_with_role(std::as_const(state), "dns")) {
    const Node& dns = *dns_ptr;
    std::string vantage = vantage_proxy_of(state, dns);
    auto deadline = Clock::now() + kReadyTimeout;
    for (const Node* backend : nodes_with_role(std::as_const(state), "backend")) {
      std::string want = answer_at(state, *backend, vantage);
      for (;;) {
        auto reply = from_probe_vantage(state, [&] {
          return query_a(dns.address, dns.port, backend->dns_name, kProbeTimeout);
        });
        if (reply && reply->addresses.size() == 1 && reply->addresses.front() == want) break;
        if (Clock::now() >= deadline)
          throw LabError("dns (" + dns.endpoint() + ") does not answer " + want + " for " +
                         backend->dns_name + " within " + std::to_string(kReadyTimeout.count()) +
                         " s; see " +
                         (dns.netns.empty() ? dnsmasq_log_path(state.dir)
                                            : state.dir / "logs" / (dns.name + ".queries.log"))
                             .string());
        std::this_thread::sleep_for(20ms);
      }
    }
  }
}

void reload_dns(State& state) {
  for (Node* dns_ptr : nodes_with_role(state, "dns")) {
    Node& dns = *dns_ptr;
    write_hosts(state, dns);
    ProcState st = probe(dns.process);
    if (st == ProcState::dead) {
      start_nodes(state, {&dns}, false);
    } else {
      if (st == ProcState::stopped) send_signal(dns.process, SIGCONT);
      send_signal(dns.process, SIGHUP);  // dnsmasq re-reads its hosts files, clears its cache
    }
  }
  wait_dns_answers(state);
}

// twemproxy connects lazily (preconnect: false), so after a restart it has not
// yet noticed that a server is unreachable. Drive multi-gets over many keys
// through the proxy, as clients would, until one has failed (the proxy tried
// the server and ejected it) and a later one completes cleanly (it routes
// around it). Returns the time that took, or -1 if it did not settle in time.
// With `must_fail_first` false it returns at the first clean reply: a proxy
// that reaches every backend settles at once.
std::int64_t settle_ejection(const Node& proxy, bool must_fail_first = true) {
  auto start = Clock::now();
  bool failed_once = false;
  for (int attempt = 0; Clock::now() - start < kEjectSettleTimeout; ++attempt) {
    // Keys vary in front: twemproxy's fnv1a_64 is 32-bit FNV with a truncated
    // prime, so keys differing only at the end cluster on one server.
    std::string request = "get";
    for (int i = 0; i < 200; ++i)
      request += " " + std::to_string(i) + "." + std::to_string(attempt) + "-ringwatch-lab-settle";
    request += "\r\n";
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    timeval tv{0, 500000};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(proxy.port);
    ::inet_pton(AF_INET, proxy.address.c_str(), &sa.sin_addr);
    std::string reply;
    if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0 &&
        ::send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
            static_cast<ssize_t>(request.size())) {
      char buffer[4096];
      for (;;) {
        ssize_t got = ::recv(fd, buffer, sizeof buffer, 0);
        if (got <= 0) break;
        reply.append(buffer, static_cast<std::size_t>(got));
        if (reply.ends_with("END\r\n") || reply.find("ERROR") != std::string::npos) break;
      }
    }
    ::close(fd);
    if (reply.find("ERROR") != std::string::npos) {
      failed_once = true;
    } else if ((failed_once || !must_fail_first) && reply.ends_with("END\r\n")) {
      return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
    }
    std::this_thread::sleep_for(5ms);
  }
  return -1;
}

void settle_ejections(State& state, Node& proxy) {
  bool any = false;
  for (auto& fault : state.faults)
    if (fault.kind == FaultKind::eject && fault.proxy == proxy.name) any = true;
  if (!any) return;
  std::int64_t ms = from_probe_vantage(state, [&] { return settle_ejection(proxy); });
  for (auto& fault : state.faults)
    if (fault.kind == FaultKind::eject && fault.proxy == proxy.name) fault.settle_ms = ms;
}

void restart_proxy_with_current_faults(State& state, Node& proxy) {
  write_proxy_config(state, proxy, false);
  restart_nodes(state, {&proxy});
  settle_ejections(state, proxy);
}

spec::ClusterSpec make_spec(const State& state) {
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
    proxy.kind = spec::ProxyKind::twemproxy;
    proxy.client = net::Endpoint{node->address, node->port};
    proxy.stats = net::Endpoint{node->address, node->stats_port};
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
  return cluster;
}

void require_up(const State& state) {
  if (!state.up)
    throw LabError("the lab in " + state.dir.string() +
                   " is down; start it with `ringwatch lab up --dir " + state.dir.string() + "`");
}

int count_alive(const State& state) {
  int alive = 0;
  for (const auto& node : state.nodes)
    if (probe(node.process) != ProcState::dead) ++alive;
  return alive;
}

// Stops the helpers that end timed dns answers (of one backend, or all).
void stop_timers(State& state, const std::string& backend = "") {
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

// Serialises the commands that change a lab: an exclusive flock on
// DIR/lab.lock, released when the guard goes (or the process dies).
class DirLock {
 public:
  explicit DirLock(const fs::path& dir) {
    fs::path path = dir / "lab.lock";
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) throw LabError("cannot open " + path.string() + ": " + std::strerror(errno));
    while (::flock(fd_, LOCK_EX) != 0) {
      if (errno != EINTR) {
        ::close(fd_);
        throw LabError("cannot lock " + path.string() + ": " + std::strerror(errno));
      }
    }
  }
  ~DirLock() { ::close(fd_); }
  DirLock(const DirLock&) = delete;
  DirLock& operator=(const DirLock&) = delete;

 private:
  int fd_ = -1;
};

// Runs `change` on the loaded state and saves it whatever happens, so lab.json
// always records the processes that exist.
template <class Change>
void mutate(const fs::path& dir, Change change) {
  if (!fs::exists(state_path(dir))) load(dir);  // the "no lab" error, before creating a lock file
  DirLock lock(dir);
  State state = load(dir);
  require_up(state);
  try {
    change(state);
  } catch (...) {
    save(state);
    throw;
  }
  save(state);
}

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
    if (!ok) throw LabError(std::string("fault ") + kind_name(fault.kind) + " needs " + what);
  };
  switch (fault.kind) {
    case FaultKind::eject:
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

// netns mode's half of `up` (tools/lab/netns.h): the same nodes, each in
// its own namespace, one resolver per proxy in the proxy's namespace.
void up_netns(State& state, const UpOptions& options) {
  state.netns = plan_netns(state.dir);
  NetnsLayout& layout = *state.netns;
  for (int i = 1; i <= options.backends; ++i) {
    Node node;
    node.name = "b" + std::to_string(i);
    node.role = "backend";
    node.index = i;
    node.address = "127.10.0." + std::to_string(10 + i);
    node.public_address = "127.200.0." + std::to_string(10 + i);
    node.dns_name = node.name + "." + state.name + "." + kDomain;
    node.netns = plan_node(layout, node.name, node.address).netns;
    state.nodes.push_back(std::move(node));
  }
  for (int i = 1; i <= options.proxies; ++i) {
    Node dns;
    dns.name = "p" + std::to_string(i) + "-resolver";
    dns.role = "dns";
    dns.index = i;
    dns.address = "127.10.1." + std::to_string(i);
    dns.netns = plan_node(layout, "p" + std::to_string(i), dns.address, dns.address).netns;
    state.nodes.push_back(std::move(dns));
  }
  for (int i = 1; i <= options.proxies; ++i) {
    Node node;
    node.name = "p" + std::to_string(i);
    node.role = "proxy";
    node.index = i;
    node.address = "127.10.1." + std::to_string(i);
    node.netns = layout.find(node.name)->netns;
    state.nodes.push_back(std::move(node));
  }
  for (auto& node : state.nodes) choose_ports(state, node);
  save(state);  // the namespaces are recorded before any exists
  create_netns(layout, netns_log_path(state.dir));
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
  write_atomically(spec_path(state.dir), spec::to_json(make_spec(state)));
}

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

// Drives client traffic through a restarted proxy until it answers cleanly
// (having ejected what it cannot reach); an eject fault records its time.
void settle_after_restart(State& state, Node& proxy) {
  if (find_fault(state, FaultKind::eject, proxy.name, "")) {
    settle_ejections(state, proxy);
    return;
  }
  if (from_probe_vantage(state, [&] { return settle_ejection(proxy, false); }) < 0)
    throw LabError(proxy.name + " (" + proxy.endpoint() +
                   ") did not answer a multi-get cleanly within " +
                   std::to_string(kEjectSettleTimeout.count()) + " s after its restart; see " +
                   log_path(state.dir, proxy.name).string());
}

}  // namespace

fs::path spec_path(const fs::path& dir) {
  return dir / "cluster.json";
}

LabStatus up(const UpOptions& options) {
  if (options.dir.empty()) throw LabError("no lab directory given");
  if (options.netns)
    if (auto why = netns_unavailable_reason()) throw LabError(*why);
  if (options.backends < 1 || options.backends > kMaxBackends)
    throw LabError("backends must be between 1 and " + std::to_string(kMaxBackends) + ", not " +
                   std::to_string(options.backends));
  if (options.proxies < 1 || options.proxies > kMaxProxies)
    throw LabError("proxies must be between 1 and " + std::to_string(kMaxProxies) + ", not " +
                   std::to_string(options.proxies));
  const fs::path& dir = options.dir;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw LabError("cannot create " + dir.string() + ": " + ec.message());
  DirLock lock(dir);
  if (fs::exists(state_path(dir))) {
    State previous = load(dir);
    int alive = count_alive(previous);
    if (alive > 0)
      throw LabError(dir.string() + " already holds a running lab (" + std::to_string(alive) +
                     " of its processes alive); stop it with `ringwatch lab down --dir " +
                     dir.string() + "`");
    // A netns lab whose `down` did not finish: its names are this DIR's.
    if (previous.netns) destroy_netns(*previous.netns, netns_log_path(dir));
  }
  for (const char* sub : {"logs", "conf", "dns"}) {
    fs::create_directories(dir / sub, ec);
    if (ec) throw LabError("cannot create " + (dir / sub).string() + ": " + ec.message());
  }
  // Programs are looked up first so that a missing one fails before anything starts.
  for (const char* program : {"memcached", "nutcracker", "dnsmasq"}) {
    try {
      find_program(program);
    } catch (const std::runtime_error& e) {
      throw LabError(e.what());
    }
  }

  State state;
  state.dir = dir;
  state.name = lab_name_for(dir);
  state.up = true;
  state.created_at = util::format_rfc3339(std::chrono::system_clock::now());
  if (options.netns) {
    try {
      up_netns(state, options);
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
  for (int i = 1; i <= options.backends; ++i) {
    Node node;
    node.name = "b" + std::to_string(i);
    node.role = "backend";
    node.index = i;
    node.address = "127.10.0." + std::to_string(10 + i);
    node.public_address = "127.200.0." + std::to_string(10 + i);
    node.dns_name = node.name + "." + state.name + "." + kDomain;
    state.nodes.push_back(std::move(node));
  }
  {
    Node node;
    node.name = "dns";
    node.role = "dns";
    node.address = kDnsAddress;
    state.nodes.push_back(std::move(node));
  }
  for (int i = 1; i <= options.proxies; ++i) {
    Node node;
    node.name = "p" + std::to_string(i);
    node.role = "proxy";
    node.index = i;
    node.address = "127.10.1." + std::to_string(i);
    state.nodes.push_back(std::move(node));
  }

  try {
    try {
      for (auto& node : state.nodes)
        if (node.role != "proxy") choose_ports(state, node);
      // Proxy configs name the backends' ports, so backends get theirs first.
      for (auto& node : state.nodes)
        if (node.role == "proxy") choose_ports(state, node);
    } catch (const std::runtime_error& e) {
      if (dynamic_cast<const LabError*>(&e)) throw;
      throw LabError(e.what());
    }
    write_atomically(hosts_path(dir), hosts_file(state, true));
    auto backends = nodes_with_role(state, "backend");
    auto others = nodes_with_role(state, "dns");
    auto proxies = nodes_with_role(state, "proxy");
    std::vector<Node*> all = backends;
    all.insert(all.end(), others.begin(), others.end());
    all.insert(all.end(), proxies.begin(), proxies.end());
    start_nodes(state, all, true);
    wait_dns_answers(state);
    write_atomically(spec_path(dir), spec::to_json(make_spec(state)));
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
  for (const auto& node : state.nodes) {
    ProcessStatus ps;
    ps.node = node.name;
    ps.role = node.role;
    ps.pid = node.process.pid;
    ps.endpoint = node.endpoint();
    if (node.role == "proxy")
      ps.stats_endpoint = node.address + ":" + std::to_string(node.stats_port);
    ProcState st = probe(node.process);
    ps.alive = st == ProcState::running;
    ps.state = to_string(st);
    ps.detail = ps.endpoint;
    if (node.role == "proxy") ps.detail += " (stats " + ps.stats_endpoint + ")";
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
    out.processes.push_back(std::move(ps));
  }
  for (const auto& fault : state.faults) out.faults.push_back(describe(state, fault));
  if (state.netns) {
    out.mode = "netns";
    out.probe_netns = state.netns->probe().netns;
    out.namespaces = existing_netns(*state.netns);
  }
  return out;
}

void inject(const fs::path& dir, const Fault& fault) {
  check_fault_fields(fault);
  mutate(dir, [&](State& state) {
    FaultRecord record;
    record.kind = fault.kind;
    record.at = util::format_rfc3339(std::chrono::system_clock::now());
    switch (fault.kind) {
      case FaultKind::eject: {
        Node& proxy = find_node(state, "proxy", fault.proxy);
        find_node(state, "backend", fault.backend);
        if (find_fault(state, FaultKind::eject, proxy.name, fault.backend)) return;
        record.proxy = proxy.name;
        record.backend = fault.backend;
        state.faults.push_back(record);
        restart_proxy_with_current_faults(state, proxy);
        return;
      }
      case FaultKind::hash: {
        Node& proxy = find_node(state, "proxy", fault.proxy);
        if (std::find(kHashes.begin(), kHashes.end(), fault.hash) == kHashes.end()) {
          std::string known;
          for (const auto& name : kHashes) known += (known.empty() ? "" : ", ") + name;
          throw LabError("unknown hash '" + fault.hash + "' (nutcracker knows: " + known + ")");
        }
        remove_faults(state, FaultKind::hash, proxy.name, "");
        record.proxy = proxy.name;
        record.hash = fault.hash;
        state.faults.push_back(record);
        restart_proxy_with_current_faults(state, proxy);
        return;
      }
      case FaultKind::dns: {
        Node& backend = find_node(state, "backend", fault.backend);
        auto answer = loopback_v4(fault.answer);
        if (!answer)
          throw LabError("dns answer '" + fault.answer +
                         "' is not an IPv4 address inside 127.0.0.0/8");
        stop_timers(state, backend.name);
        remove_faults(state, FaultKind::dns, "", backend.name);
        record.backend = backend.name;
        record.answer = *answer;
        state.faults.push_back(record);
        reload_dns(state);
        return;
      }
      case FaultKind::kill: {
        Node& backend = find_node(state, "backend", fault.backend);
        if (probe(backend.process) == ProcState::dead)
          throw LabError(backend.name + " is not running");
        send_signal(backend.process, SIGKILL);
        if (!wait_for_state(backend.process, ProcState::dead, 5s))
          throw LabError(backend.name + " (pid " + std::to_string(backend.process.pid) +
                         ") did not die after SIGKILL");
        backend.state = "killed";
        remove_faults(state, FaultKind::stall, "", backend.name);
        record.backend = backend.name;
        state.faults.push_back(record);
        return;
      }
      case FaultKind::stall: {
        Node& backend = find_node(state, "backend", fault.backend);
        ProcState st = probe(backend.process);
        if (st == ProcState::dead) throw LabError(backend.name + " is not running");
        if (st == ProcState::running) {
          send_signal(backend.process, SIGSTOP);
          if (!wait_for_state(backend.process, ProcState::stopped, 5s))
            throw LabError(backend.name + " (pid " + std::to_string(backend.process.pid) +
                           ") did not stop after SIGSTOP");
        }
        backend.state = "stalled";
        remove_faults(state, FaultKind::stall, "", backend.name);
        record.backend = backend.name;
        state.faults.push_back(record);
        return;
      }
      case FaultKind::restart: {
        Node& backend = find_node(state, "backend", fault.backend);
        remove_faults(state, FaultKind::kill, "", backend.name);
        remove_faults(state, FaultKind::stall, "", backend.name);
        remove_faults(state, FaultKind::restart, "", backend.name);
        record.backend = backend.name;
        state.faults.push_back(record);
        restart_nodes(state, {&backend});
        return;
      }
    }
  });
}

void heal(const fs::path& dir) {
  mutate(dir, [&](State& state) {
    // Backends first, so that proxies restart into a complete cluster.
    bool backends_disturbed = false;
    for (const auto& fault : state.faults)
      if (fault.kind == FaultKind::kill || fault.kind == FaultKind::stall ||
          fault.kind == FaultKind::restart)
        backends_disturbed = true;
    std::vector<Node*> to_start;
    for (Node* backend : nodes_with_role(state, "backend")) {
      ProcState st = probe(backend->process);
      if (st == ProcState::stopped) {
        send_signal(backend->process, SIGCONT);
        wait_for_state(backend->process, ProcState::running, 2s);
        backends_disturbed = true;
      } else if (st == ProcState::dead) {
        to_start.push_back(backend);
        backends_disturbed = true;
      }
      backend->state = "running";
    }
    start_nodes(state, to_start, false);

    stop_timers(state);
    std::erase_if(state.faults, [](const FaultRecord& f) { return f.kind == FaultKind::dns; });
    reload_dns(state);

    // A proxy that saw a backend down may have ejected it and keeps routing
    // around it for server_retry_timeout; a restart forgets that.
    std::vector<Node*> to_restart;
    for (Node* proxy : nodes_with_role(state, "proxy")) {
      std::string healthy = proxy_config(state, *proxy, true);
      bool changed = read_file(config_path(dir, proxy->name)) != healthy;
      // netns mode: every proxy, so that each resolves every name afresh (one
      // may have resolved a name while its answer was wrong, and ejected it).
      if (changed || backends_disturbed || state.netns ||
          probe(proxy->process) != ProcState::running) {
        write_proxy_config(state, *proxy, true);
        to_restart.push_back(proxy);
      }
    }
    state.faults.clear();
    restart_nodes(state, to_restart);
  });
}

void down(const fs::path& dir) {
  load(dir);  // the "no lab" error, before creating a lock file
  DirLock lock(dir);
  State state = load(dir);
  stop_everything(state);
}

std::string add_backend(const fs::path& dir, const AddBackendOptions& options) {
  std::string added;
  mutate(dir, [&](State& state) {
    int index = 0;
    for (const Node* backend : nodes_with_role(state, "backend"))
      index = std::max(index, backend->index);
    ++index;
    if (!options.name.empty()) {
      index = backend_index(options.name);
      if (index == 0)
        throw LabError("a backend's name is b<i> with i from 1 to " + std::to_string(kMaxBackends) +
                       ", not '" + options.name + "'");
      for (const Node* backend : nodes_with_role(state, "backend"))
        if (backend->name == options.name)
          throw LabError("backend '" + options.name + "' is already in lab '" + state.name + "'");
    }
    if (index > kMaxBackends)
      throw LabError("a lab has at most " + std::to_string(kMaxBackends) + " backends (b1 to b" +
                     std::to_string(kMaxBackends) + ")");
    if (!options.public_answer_at.empty()) {
      if (!state.netns)
        throw LabError(
            "a public answer at one vantage point needs a netns lab (`ringwatch lab up --netns`): "
            "in the loopback lab every proxy shares one resolver and connects by address");
      find_node(state, "proxy", options.public_answer_at);
      if (options.public_for <= 0ms)
        throw LabError("a public answer at " + options.public_answer_at +
                       " needs a duration (public_for > 0)");
    }
    Node node;
    node.name = "b" + std::to_string(index);
    node.role = "backend";
    node.index = index;
    node.address = "127.10.0." + std::to_string(10 + index);
    node.public_address = "127.200.0." + std::to_string(10 + index);
    node.dns_name = node.name + "." + state.name + "." + kDomain;
    if (state.netns) node.netns = plan_node(*state.netns, node.name, node.address).netns;
    // After the last backend, so that every list of backends stays in order.
    auto last = std::find_if(state.nodes.rbegin(), state.nodes.rend(),
                             [](const Node& n) { return n.role == "backend"; });
    auto at = state.nodes.insert(last.base(), std::move(node));
    Node& backend = *at;
    added = backend.name;
    save(state);  // recorded before its namespace exists
    if (state.netns) create_netns(*state.netns, netns_log_path(state.dir));
    try {
      choose_ports(state, backend);
    } catch (const std::runtime_error& e) {
      if (dynamic_cast<const LabError*>(&e)) throw;
      throw LabError(e.what());
    }
    start_nodes(state, {&backend}, !state.netns);
    // Then its name, as a new instance's DNS record follows its launch.
    if (!options.public_answer_at.empty()) {
      FaultRecord fault;
      fault.kind = FaultKind::dns;
      fault.proxy = options.public_answer_at;
      fault.backend = backend.name;
      fault.answer = backend.public_address;
      fault.at = util::format_rfc3339(std::chrono::system_clock::now());
      fault.until_ms = now_ms() + options.public_for.count();
      state.faults.push_back(fault);
    }
    reload_dns(state);
    if (!options.public_answer_at.empty()) {
      // A helper renames the answer without the public address into the
      // resolver's hosts directory when the time is up; dnsmasq notices.
      FaultRecord& fault = state.faults.back();
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
        fault.timer =
            spawn({"/bin/sh", "-c", script}, state.dir / "logs" / "timers.log", state.dir);
      } catch (const std::runtime_error& e) {
        throw LabError(std::string("cannot start the helper that ends the public answer: ") +
                       e.what());
      }
    }
    write_atomically(spec_path(state.dir), spec::to_json(make_spec(state)));
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
    write_atomically(spec_path(state.dir), spec::to_json(make_spec(state)));
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
    write_atomically(spec_path(state.dir), spec::to_json(make_spec(state)));
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
      write_proxy_config(state, *proxy, false);
      restart_nodes(state, {proxy});
      save(state);
      settle_after_restart(state, *proxy);
    }
  });
}

}  // namespace ringwatch::lab
