#include "tools/lab/state.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>

#include <rapidjson/document.h>

#include "lib/spec/json_cursor.h"
#include "tools/lab/json_fields.h"
#include "tools/lab/proxy_kind.h"

namespace ringwatch::lab {
namespace {

namespace fs = std::filesystem;
using spec::json::Cursor;

constexpr int kFormat = 1;
constexpr std::int64_t kMaxInt = std::numeric_limits<int>::max();
constexpr std::int64_t kMaxInt64 = std::numeric_limits<std::int64_t>::max();

// ---- writing ----

void write_node(JsonWriter& w, const State& state, const Node& node) {
  w.StartObject();
  field(w, "name", node.name);
  field(w, "role", node.role);
  field(w, "index", node.index);
  field(w, "address", node.address);
  field(w, "port", node.port);
  if (node.role == "proxy") {
    field(w, "stats_port", node.stats_port);
    field(w, "config", fs::relative(config_path(state, node.name), state.dir).string());
    if (node.process_group > 0) {
      field(w, "process_group", node.process_group);
      field(w, "pool", node.pool);
    }
  }
  if (node.role == "backend") {
    field(w, "public_address", node.public_address);
    field(w, "dns_name", node.dns_name);
    if (node.draining) field(w, "draining", true);
  }
  w.Key("argv");
  w.StartArray();
  for (const auto& arg : node.argv) w.String(arg);
  w.EndArray();
  field(w, "pid", node.process.pid);
  field(w, "start_time", node.process.start_time);
  field(w, "started_at", node.started_at);
  field(w, "state", node.state);
  field(w, "log", fs::relative(log_path(state.dir, node.name), state.dir).string());
  if (!node.netns.empty()) field(w, "netns", node.netns);
  w.EndObject();
}

void write_fault(JsonWriter& w, const FaultRecord& fault) {
  w.StartObject();
  field(w, "kind", to_string(fault.kind));
  if (!fault.proxy.empty()) field(w, "proxy", fault.proxy);
  if (!fault.backend.empty()) field(w, "backend", fault.backend);
  if (!fault.answer.empty()) field(w, "answer", fault.answer);
  if (!fault.hash.empty()) field(w, "hash", fault.hash);
  if (fault.settle_ms >= 0) field(w, "settle_ms", fault.settle_ms);
  if (fault.until_ms >= 0) {
    field(w, "until_ms", fault.until_ms);
    field(w, "timer_pid", fault.timer.pid);
    field(w, "timer_start_time", fault.timer.start_time);
  }
  field(w, "at", fault.at);
  w.EndObject();
}

std::string to_json(const State& state) {
  rapidjson::StringBuffer buffer;
  JsonWriter w(buffer);
  w.SetIndent(' ', 2);
  w.StartObject();
  field(w, "format", kFormat);
  field(w, "name", state.name);
  field(w, "state", state.up ? "up" : "down");
  field(w, "created_at", state.created_at);
  field(w, "spec", "cluster.json");
  field(w, "mode", state.netns ? "netns" : "loopback");
  field(w, "proxy_kind", to_string(state.proxy_kind));
  if (state.netns) {
    w.Key("netns");
    write_netns_json(w, *state.netns);
  }
  w.Key("nodes");
  w.StartArray();
  for (const auto& node : state.nodes) write_node(w, state, node);
  w.EndArray();
  w.Key("faults");
  w.StartArray();
  for (const auto& fault : state.faults) write_fault(w, fault);
  w.EndArray();
  w.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize()) + "\n";
}

// ---- reading ----

std::string text(const Cursor& cursor) {
  return std::string(cursor.string());
}

std::string optional_text(const spec::json::Object& object, std::string_view name) {
  const auto cursor = object.optional(name);
  return cursor ? text(*cursor) : std::string();
}

std::uint16_t port(const Cursor& cursor) {
  return static_cast<std::uint16_t>(cursor.integer(0, 65535));
}

ProcessId process_id(const Cursor& pid, const Cursor& start_time) {
  return {static_cast<int>(pid.integer(0, kMaxInt)),
          static_cast<std::uint64_t>(start_time.integer(0, kMaxInt64))};
}

std::optional<std::string> parse_role(std::string_view role) {
  if (role == "backend" || role == "proxy" || role == "dns") return std::string(role);
  return std::nullopt;
}

std::optional<bool> parse_up(std::string_view state) {
  if (state == "up") return true;
  if (state == "down") return false;
  return std::nullopt;
}

Node read_node(const Cursor& cursor) {
  const auto o =
      cursor.object({"name", "role", "index", "address", "port", "stats_port", "config",
                     "public_address", "dns_name", "draining", "argv", "pid", "start_time",
                     "started_at", "state", "log", "netns", "process_group", "pool"});
  Node node;
  node.name = text(o.required("name"));
  node.role = o.required("role").string_as(R"("backend", "proxy" or "dns")", parse_role);
  node.index = static_cast<int>(o.required("index").integer(0, kMaxInt));
  node.address = text(o.required("address"));
  node.port = port(o.required("port"));
  if (node.role == "proxy") node.stats_port = port(o.required("stats_port"));
  if (const auto group = o.optional("process_group")) {
    node.process_group = static_cast<int>(group->integer(1, kMaxInt));
    node.pool = text(o.required("pool"));
  }
  node.public_address = optional_text(o, "public_address");
  node.dns_name = optional_text(o, "dns_name");
  if (const auto draining = o.optional("draining")) {
    draining->expect_true();
    node.draining = true;
  }
  for (const auto& arg : o.required("argv").elements(false)) node.argv.push_back(text(arg));
  node.process = process_id(o.required("pid"), o.required("start_time"));
  node.started_at = text(o.required("started_at"));
  node.state = text(o.required("state"));
  node.netns = optional_text(o, "netns");
  return node;
}

FaultRecord read_fault(const Cursor& cursor) {
  const auto o = cursor.object({"kind", "proxy", "backend", "answer", "hash", "settle_ms",
                                "until_ms", "timer_pid", "timer_start_time", "at"});
  FaultRecord fault;
  fault.kind = o.required("kind").string_as(
      "a fault kind (eject, omit, weight, dns, hash, kill, stall or restart)", parse_fault_kind);
  fault.proxy = optional_text(o, "proxy");
  fault.backend = optional_text(o, "backend");
  fault.answer = optional_text(o, "answer");
  fault.hash = optional_text(o, "hash");
  if (const auto settle = o.optional("settle_ms")) fault.settle_ms = settle->integer(0, kMaxInt64);
  fault.at = optional_text(o, "at");
  if (const auto until = o.optional("until_ms")) {
    fault.until_ms = until->integer(0, kMaxInt64);
    fault.timer = process_id(o.required("timer_pid"), o.required("timer_start_time"));
  }
  return fault;
}

void check_format(const Cursor& root) {
  if (!root.value().IsObject()) root.wrong_type("a ringwatch lab state object");
  const Cursor format = spec::json::Object(root).required("format");
  const std::string expectation =
      "format " + std::to_string(kFormat) + " (the one this ringwatch reads)";
  const auto& value = format.value();
  if (!value.IsNumber()) format.wrong_type(expectation);
  if (!value.IsInt() || value.GetInt() != kFormat) format.wrong_value(expectation);
}

State read_state(const fs::path& dir, const Cursor& root) {
  check_format(root);
  const auto o = root.object({"format", "name", "state", "created_at", "spec", "mode", "proxy_kind",
                              "netns", "nodes", "faults"});
  State state;
  state.dir = dir;
  state.name = text(o.required("name"));
  state.up = o.required("state").string_as(R"("up" or "down")", parse_up);
  // Labs written before there were two kinds ran nutcracker.
  if (const auto kind = o.optional("proxy_kind"))
    state.proxy_kind = kind->string_as(R"("twemproxy" or "memcached")", parse_lab_proxy_kind);
  state.created_at = text(o.required("created_at"));
  if (const auto netns = o.optional("netns")) state.netns = netns_from_json(*netns);
  for (const auto& node : o.required("nodes").elements(false))
    state.nodes.push_back(read_node(node));
  for (const auto& element : o.required("faults").elements(false)) {
    FaultRecord fault = read_fault(element);
    // An answer whose time is up is no longer a fault (its helper restored it).
    if (fault.until_ms >= 0 && fault.until_ms <= now_ms()) {
      probe(fault.timer);  // reaps it if it is our child
      continue;
    }
    state.faults.push_back(std::move(fault));
  }
  return state;
}

}  // namespace

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

fs::path state_path(const fs::path& dir) {
  return dir / "lab.json";
}
fs::path log_path(const fs::path& dir, const std::string& node) {
  return dir / "logs" / (node + ".log");
}
std::string process_name(const Node& node) {
  if (node.process_group == 0) return node.name;
  return "nutcracker-" + std::to_string(node.process_group);
}

fs::path config_path(const State& state, const std::string& proxy) {
  std::string file = proxy;
  for (const auto& node : state.nodes)
    if (node.role == "proxy" && node.name == proxy) file = process_name(node);
  return state.dir / "conf" / (file + proxy_kind(state.proxy_kind).config_extension());
}
fs::path hosts_path(const fs::path& dir) {
  return dir / "dns" / "hosts";
}
fs::path dnsmasq_log_path(const fs::path& dir) {
  return dir / "dnsmasq.log";
}
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

void save(const State& state) {
  write_atomically(state_path(state.dir), to_json(state));
}

State load(const fs::path& dir) {
  const fs::path file = state_path(dir);
  if (!fs::exists(file))
    throw LabError("no lab in " + dir.string() +
                   " (no lab.json); start one with `ringwatch lab up --dir " + dir.string() + "`");
  const std::string name = file.string();
  try {
    rapidjson::Document document;
    spec::json::parse_document(document, spec::json::read_file(name), name);
    return read_state(dir, Cursor(name, document, ""));
  } catch (const spec::SpecError& error) {
    throw LabError(error.what());
  }
}

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

namespace {
bool matches(const FaultRecord& fault, FaultKind kind, const std::string& proxy,
             const std::string& backend) {
  return fault.kind == kind && (proxy.empty() || fault.proxy == proxy) &&
         (backend.empty() || fault.backend == backend);
}
}  // namespace

std::vector<Node*> process_mates(State& state, const Node& proxy) {
  std::vector<Node*> mates;
  for (auto& node : state.nodes)
    if (&node == &proxy || (proxy.process_group > 0 && node.role == "proxy" &&
                            node.process_group == proxy.process_group))
      mates.push_back(&node);
  return mates;
}

std::vector<Node*> with_process_mates(State& state, const std::vector<Node*>& nodes) {
  std::vector<Node*> out;
  std::set<const Node*> seen;
  for (Node* node : nodes)
    for (Node* mate : process_mates(state, *node))
      if (seen.insert(mate).second) out.push_back(mate);
  return out;
}

std::vector<Node*> one_per_process(const std::vector<Node*>& nodes) {
  std::vector<Node*> out;
  std::set<int> groups;
  for (Node* node : nodes)
    if (node->process_group == 0 || groups.insert(node->process_group).second) out.push_back(node);
  return out;
}

const FaultRecord* find_fault(const State& state, FaultKind kind, const std::string& proxy,
                              const std::string& backend) {
  for (const auto& fault : state.faults)
    if (matches(fault, kind, proxy, backend)) return &fault;
  return nullptr;
}

void remove_faults(State& state, FaultKind kind, const std::string& proxy,
                   const std::string& backend) {
  std::erase_if(state.faults,
                [&](const FaultRecord& fault) { return matches(fault, kind, proxy, backend); });
}

DirLock::DirLock(const fs::path& dir) {
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

DirLock::~DirLock() {
  ::close(fd_);
}

void require_up(const State& state) {
  if (!state.up)
    throw LabError("the lab in " + state.dir.string() +
                   " is down; start it with `ringwatch lab up --dir " + state.dir.string() + "`");
}

void mutate(const fs::path& dir, const std::function<void(State&)>& change) {
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

}  // namespace ringwatch::lab
