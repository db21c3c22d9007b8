// `ringwatch lab`: starts, breaks, heals and stops a real cluster on loopback.
// All the work is in tools/lab; this file parses options and prints.

#include <algorithm>
#include <boost/program_options.hpp>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <iomanip>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "tools/cli/cli.h"
#include "tools/lab/lab.h"

namespace ringwatch::cli {
namespace {

namespace po = boost::program_options;

constexpr const char* kOverview =
    "Usage: ringwatch lab <subcommand> --dir DIR [options]\n"
    "\n"
    "Starts a real memcached cluster on loopback (memcached backends on 127.10.0.x,\n"
    "proxies on 127.10.1.x: nutcracker or memcached's built-in proxy, a dnsmasq on\n"
    "127.10.2.53), writes its cluster spec to DIR/cluster.json, injects the faults\n"
    "ringwatch must catch, heals them and stops exactly the processes it started.\n"
    "\n"
    "Subcommands:\n"
    "  up      --dir DIR [--proxies M] [--backends N] [--proxy-kind K] [--netns]\n"
    "          [--pools-per-process K]\n"
    "          start a lab in DIR (default 3 proxies, 3 backends, twemproxy);\n"
    "          --proxy-kind memcached: memcached's built-in proxy; --netns: one\n"
    "          network namespace per node, each proxy with its own resolver (root);\n"
    "          --pools-per-process K: one nutcracker serves K proxies (pools)\n"
    "  status  --dir DIR\n"
    "          show every process; exit 0 if all are running, 2 if not\n"
    "  fault   --dir DIR KIND [--proxy P] [--backend B] [--answer IP] [--hash NAME]\n"
    "          inject a fault (see `ringwatch lab fault --help`)\n"
    "  heal    --dir DIR\n"
    "          undo every fault and wait until the cluster is healthy again\n"
    "  down    --dir DIR\n"
    "          stop the lab's processes; keeps DIR's logs, configs and cluster.json\n"
    "  add-backend    --dir DIR [--backend B] [--public-at P --public-for S]\n"
    "          start a new backend and add it to DNS and the spec (not to the proxies)\n"
    "  drain-backend  --dir DIR --backend B\n"
    "          take a backend out of the spec and of new proxy configs; it keeps running\n"
    "  remove-backend --dir DIR --backend B\n"
    "          stop a backend and remove it from DNS and the spec\n"
    "  roll-proxies   --dir DIR [--proxy P]... [--pause S]\n"
    "          give the proxies, one at a time, configs with the lab's current backends\n"
    "\n"
    "`ringwatch lab <subcommand> --help` describes each one.\n"
    "Exit codes: 0 OK, 2 (status) some process is not running, 3 bad usage or lab error.\n";

constexpr const char* kFaultKinds =
    "A proxy takes a new config as its kind does: nutcracker is restarted,\n"
    "memcached's proxy reloads it on SIGHUP.\n"
    "\n"
    "Fault kinds:\n"
    "  eject   --proxy P --backend B\n"
    "          P's config points server B (same name and port) at B's public\n"
    "          address 127.200.0.x where nothing listens. nutcracker fails to\n"
    "          connect, ejects B and routes its keys to other backends; memcached's\n"
    "          proxy marks B bad (`stats proxybe`) and answers SERVER_ERROR for B's keys\n"
    "  omit    --proxy P --backend B\n"
    "          P's config lacks backend B: P hashes keys over the others\n"
    "  weight  --proxy P --backend B\n"
    "          P weighs B at 2 instead of 1 (nutcracker labs): some of the key\n"
    "          space routes differently through P\n"
    "  dns     --backend B --answer IP\n"
    "          the lab's DNS server answers IP for B's name (IP inside 127.0.0.0/8)\n"
    "  hash    --proxy P --hash NAME\n"
    "          P takes another hash function: nutcracker one_at_a_time, md5,\n"
    "          crc16, crc32, crc32a, fnv1_64, fnv1a_64, fnv1_32, fnv1a_32, hsieh,\n"
    "          murmur, jenkins; memcached ring (ring hash), ketama (ring hash with\n"
    "          ketama's key hash), seeded (jump hash with a key hash seed)\n"
    "  kill    --backend B    SIGKILL backend B (heal starts it again)\n"
    "  stall   --backend B    SIGSTOP backend B (heal continues it)\n"
    "  restart --backend B    restart backend B empty on the same address and port\n";

void print_table(const lab::LabStatus& status, std::ostream& out) {
  std::size_t node_width = 4, pid_width = 3, state_width = 5;
  for (const auto& p : status.processes) {
    node_width = std::max(node_width, p.node.size());
    pid_width = std::max(pid_width, std::to_string(p.pid).size());
    state_width = std::max(state_width, p.state.size());
  }
  auto row = [&](const std::string& node, const std::string& role, const std::string& pid,
                 const std::string& state, const std::string& detail) {
    out << std::left << std::setw(static_cast<int>(node_width)) << node << "  " << std::setw(7)
        << role << "  " << std::setw(static_cast<int>(pid_width)) << pid << "  "
        << std::setw(static_cast<int>(state_width)) << state << "  " << detail << "\n";
  };
  row("NODE", "ROLE", "PID", "STATE", "ADDRESS");
  for (const auto& p : status.processes)
    row(p.node, p.role, std::to_string(p.pid), p.state, p.detail);
  out << std::right;
}

void print_faults(const lab::LabStatus& status, std::ostream& out) {
  if (status.faults.empty()) {
    out << "faults: none\n";
    return;
  }
  out << "faults:\n";
  for (const auto& fault : status.faults) out << "  " << fault << "\n";
}

void up_options(po::options_description& options) {
  options.add_options()("proxies", po::value<int>()->default_value(3)->value_name("M"),
                        "number of proxies, 1-1000 (at most 200 proxy processes)")(
      "pools-per-process", po::value<int>()->default_value(1)->value_name("K"),
      "twemproxy, loopback: one nutcracker serves K proxies, each a pool on its own port, "
      "1-100; a fault in one restarts all K")(
      "proxy-kind", po::value<std::string>()->default_value("twemproxy", "")->value_name("K"),
      "twemproxy (nutcracker; the default) or memcached (memcached's built-in proxy)")(
      "netns", "one network namespace per node, each proxy with its own resolver (root)")(
      "backends", po::value<int>()->default_value(3)->value_name("N"),
      "number of memcached backends, 1-200");
}

void fault_options(po::options_description& options) {
  options.add_options()("proxy", po::value<std::string>()->value_name("P"),
                        "proxy name (eject, omit, weight, hash), e.g. p1")(
      "backend", po::value<std::string>()->value_name("B"),
      "backend name (eject, omit, weight, dns, kill, stall, restart), e.g. b2")(
      "answer", po::value<std::string>()->value_name("IP"),
      "dns: the address B's name now resolves to, inside 127.0.0.0/8")(
      "hash", po::value<std::string>()->value_name("NAME"),
      "hash: the hash P now uses, e.g. murmur (nutcracker), ring (memcached)");
}

void add_backend_options(po::options_description& options) {
  options.add_options()("backend", po::value<std::string>()->value_name("B"),
                        "the new backend's name, b<i> (default: the next free one)")(
      "public-at", po::value<std::string>()->value_name("P"),
      "netns labs: at proxy P's vantage point the name first resolves to the public address")(
      "public-for", po::value<double>()->value_name("S"),
      "seconds the public answer lasts (with --public-at)");
}

void drain_backend_options(po::options_description& options) {
  options.add_options()("backend", po::value<std::string>()->value_name("B"),
                        "the backend to drain (required)");
}

void remove_backend_options(po::options_description& options) {
  options.add_options()("backend", po::value<std::string>()->value_name("B"),
                        "the backend to remove (required)");
}

void roll_proxies_options(po::options_description& options) {
  options.add_options()("proxy", po::value<std::vector<std::string>>()->value_name("P"),
                        "a proxy to restart (repeatable; default: all, in order)")(
      "pause", po::value<double>()->default_value(0.0)->value_name("S"),
      "seconds to wait between two proxies");
}

void print_netns_hint(const lab::LabStatus& status, std::ostream& out) {
  if (status.mode != "netns") return;
  out << "netns: probe from the lab's probe namespace:\n"
      << "  ip netns exec " << status.probe_netns << " ringwatch probe --cluster "
      << status.spec_path.string() << "\n";
}

std::string get(const po::variables_map& vm, const char* name) {
  return vm.count(name) ? vm[name].as<std::string>() : std::string();
}

lab::Fault fault_from(const po::variables_map& vm) {
  if (!vm.count("kind"))
    throw UsageError(
        "fault: missing KIND (eject, omit, weight, dns, hash, kill, stall or restart)");
  std::string kind_text = get(vm, "kind");
  auto kind = lab::parse_fault_kind(kind_text);
  if (!kind)
    throw UsageError("fault: unknown KIND '" + kind_text +
                     "' (eject, omit, weight, dns, hash, kill, stall or restart)");
  lab::Fault fault;
  fault.kind = *kind;
  fault.proxy = get(vm, "proxy");
  fault.backend = get(vm, "backend");
  fault.answer = get(vm, "answer");
  fault.hash = get(vm, "hash");
  // Which options each kind takes; anything else is a mistake worth reporting.
  std::vector<std::string> wanted;
  switch (fault.kind) {
    case lab::FaultKind::eject:
    case lab::FaultKind::omit:
    case lab::FaultKind::weight:
      wanted = {"proxy", "backend"};
      break;
    case lab::FaultKind::dns:
      wanted = {"backend", "answer"};
      break;
    case lab::FaultKind::hash:
      wanted = {"proxy", "hash"};
      break;
    case lab::FaultKind::kill:
    case lab::FaultKind::stall:
    case lab::FaultKind::restart:
      wanted = {"backend"};
      break;
  }
  for (const char* option : {"proxy", "backend", "answer", "hash"}) {
    bool is_wanted = std::find(wanted.begin(), wanted.end(), option) != wanted.end();
    if (is_wanted && !vm.count(option))
      throw UsageError("fault " + kind_text + ": missing --" + option);
    if (!is_wanted && vm.count(option))
      throw UsageError("fault " + kind_text + ": does not take --" + option);
  }
  return fault;
}

int run_up(const po::variables_map& vm, const std::filesystem::path& dir, std::ostream& out) {
  lab::UpOptions up;
  up.dir = dir;
  up.proxies = vm["proxies"].as<int>();
  up.backends = vm["backends"].as<int>();
  up.netns = vm.count("netns") > 0;
  up.pools_per_process = vm["pools-per-process"].as<int>();
  const std::string kind = vm["proxy-kind"].as<std::string>();
  const auto proxy_kind = lab::parse_lab_proxy_kind(kind);
  if (!proxy_kind)
    throw UsageError("up: unknown --proxy-kind '" + kind + "' (twemproxy or memcached)");
  up.proxy_kind = *proxy_kind;
  // The ranges are the lab's to check (LabError, exit 3): one place for them.
  lab::LabStatus status = lab::up(up);
  out << "lab '" << status.name << "' is up in " << status.dir.string() << " ("
      << lab::to_string(status.proxy_kind) << " proxies)\n"
      << "spec: " << status.spec_path.string() << "\n";
  print_netns_hint(status, out);
  out << "\n";
  print_table(status, out);
  return kExitOk;
}

int run_status(const po::variables_map&, const std::filesystem::path& dir, std::ostream& out) {
  lab::LabStatus status = lab::status(dir);
  out << "lab '" << status.name << "' in " << status.dir.string() << ": "
      << (status.is_up ? "up" : "down") << " (" << lab::to_string(status.proxy_kind)
      << " proxies)\n"
      << "spec: " << status.spec_path.string() << "\n";
  if (status.is_up) print_netns_hint(status, out);
  if (status.mode == "netns") {
    out << "namespaces:";
    for (const auto& name : status.namespaces) out << " " << name;
    out << (status.namespaces.empty() ? " none\n" : "\n");
  }
  out << "\n";
  print_table(status, out);
  print_faults(status, out);
  bool all_alive = std::all_of(status.processes.begin(), status.processes.end(),
                               [](const lab::ProcessStatus& p) { return p.alive; });
  return all_alive && status.is_up ? kExitOk : kExitCritical;
}

int run_fault(const po::variables_map& vm, const std::filesystem::path& dir, std::ostream& out) {
  lab::inject(dir, fault_from(vm));
  print_faults(lab::status(dir), out);
  return kExitOk;
}

int run_heal(const po::variables_map&, const std::filesystem::path& dir, std::ostream& out) {
  lab::heal(dir);
  lab::LabStatus status = lab::status(dir);
  out << "lab '" << status.name << "' healed: " << status.processes.size()
      << " processes running, no faults\n";
  return kExitOk;
}

int run_down(const po::variables_map&, const std::filesystem::path& dir, std::ostream& out) {
  lab::down(dir);
  out << "lab in " << dir.string() << " is down; logs, configs and cluster.json are kept\n";
  return kExitOk;
}

int run_add_backend(const po::variables_map& vm, const std::filesystem::path& dir,
                    std::ostream& out) {
  lab::AddBackendOptions add;
  add.name = get(vm, "backend");
  add.public_answer_at = get(vm, "public-at");
  if (vm.count("public-at") != vm.count("public-for"))
    throw UsageError("add-backend: --public-at and --public-for go together");
  if (vm.count("public-for")) {
    double seconds = vm["public-for"].as<double>();
    if (!(seconds > 0 && seconds <= 3600))
      throw UsageError("add-backend: --public-for must be between 0 and 3600 seconds");
    add.public_for = std::chrono::milliseconds(static_cast<std::int64_t>(seconds * 1000));
  }
  std::string name = lab::add_backend(dir, add);
  out << "backend " << name << " added";
  if (!add.public_answer_at.empty())
    out << "; its name resolves to its public address at " << add.public_answer_at
        << "'s vantage point for " << vm["public-for"].as<double>() << " s";
  out << "; `ringwatch lab roll-proxies --dir " << dir.string() << "` makes the proxies take it\n";
  return kExitOk;
}

int run_drain_backend(const po::variables_map& vm, const std::filesystem::path& dir,
                      std::ostream& out) {
  if (!vm.count("backend")) throw UsageError("drain-backend: missing --backend B");
  lab::drain_backend(dir, get(vm, "backend"));
  out << "backend " << get(vm, "backend") << " is draining: out of the spec and of new proxy "
      << "configs; `ringwatch lab roll-proxies --dir " << dir.string()
      << "` moves the proxies off it, then `remove-backend` stops it\n";
  return kExitOk;
}

int run_remove_backend(const po::variables_map& vm, const std::filesystem::path& dir,
                       std::ostream& out) {
  if (!vm.count("backend")) throw UsageError("remove-backend: missing --backend B");
  lab::remove_backend(dir, get(vm, "backend"));
  out << "backend " << get(vm, "backend") << " removed; `ringwatch lab roll-proxies --dir "
      << dir.string() << "` makes the proxies drop it\n";
  return kExitOk;
}

int run_roll_proxies(const po::variables_map& vm, const std::filesystem::path& dir,
                     std::ostream& out) {
  lab::RestartProxiesOptions roll;
  if (vm.count("proxy")) roll.proxies = vm["proxy"].as<std::vector<std::string>>();
  double pause = vm["pause"].as<double>();
  if (!(pause >= 0 && pause <= 3600))
    throw UsageError("roll-proxies: --pause must be between 0 and 3600 seconds");
  roll.pause = std::chrono::milliseconds(static_cast<std::int64_t>(pause * 1000));
  lab::restart_proxies(dir, roll);
  const bool reloads = lab::status(dir).proxy_kind == lab::LabProxyKind::memcached;
  out << (reloads ? "proxies reloaded: " : "proxies restarted: ")
      << (roll.proxies.empty() ? std::string("all") : std::to_string(roll.proxies.size())) << "\n";
  return kExitOk;
}

struct Subcommand {
  const char* name;
  const char* usage;
  const char* summary;
  // Its options beyond --help and --dir (none: nullptr).
  void (*add_options)(po::options_description& options);
  int (*run)(const po::variables_map& vm, const std::filesystem::path& dir, std::ostream& out);
  const char* positional = nullptr;  // the name of its one positional argument
  const char* more_help = nullptr;   // after the options in --help
};

// The subcommand table: one entry per subcommand.
const Subcommand kSubcommands[] = {
    {"up",
     "ringwatch lab up --dir DIR [--proxies M] [--backends N] [--proxy-kind K] [--netns]\n"
     "                 [--pools-per-process K]",
     "Starts N memcached backends, M proxies and a dnsmasq on loopback, each on a\n"
     "free port, waits until all accept connections, and writes the cluster spec\n"
     "DIR/cluster.json and the lab state DIR/lab.json. Fails if DIR already holds\n"
     "a running lab.\n"
     "\n"
     "--proxy-kind twemproxy (default): nutcracker, ketama over named servers,\n"
     "auto_eject_hosts on, a stats port of its own. --proxy-kind memcached:\n"
     "memcached's built-in proxy (built by tools/install-deps.sh into\n"
     "/var/cache/ringwatch/memcached-proxy-1.6.38; RINGWATCH_MEMCACHED_PROXY\n"
     "overrides the path) with a routelib config DIR/conf/p<i>.lua: jump hash over\n"
     "the backends in order, stats on its client port, reloaded on SIGHUP.\n"
     "\n"
     "--netns (needs root): every node in its own network namespace with its own\n"
     "address on one bridge (backends 127.10.0.(10+i), proxies 127.10.1.i), each\n"
     "proxy resolving the backends' names through its own dnsmasq (vantage point\n"
     "p<i>-resolver). No namespace has a route out, and nothing is added to the\n"
     "host's namespace, so ringwatch must run in the lab's probe namespace:\n"
     "  ip netns exec rwpr-<id> ringwatch probe --cluster DIR/cluster.json\n"
     "(`up` and `status` print the exact command). `down` removes every namespace.\n"
     "\n"
     "--pools-per-process K (twemproxy, loopback; for big fleets, e.g. --proxies\n"
     "1000 --backends 50 --pools-per-process 50): one nutcracker process serves K\n"
     "proxies p<i>, each a pool named p<i> on its own client port; the process\n"
     "listens on 127.10.1.<process>, answers stats for all its pools on one port\n"
     "(the spec names each proxy's `pool`) and logs to DIR/logs/nutcracker-<n>.log.\n"
     "A fault in one proxy's config (eject, omit, weight, hash) rewrites its\n"
     "process's config DIR/conf/nutcracker-<n>.yml and restarts the process: every\n"
     "pool of it restarts, and those with an eject fault are driven to eject again.\n",
     up_options, run_up},
    {"status", "ringwatch lab status --dir DIR",
     "Shows every process the lab started (running, stopped or dead), its\n"
     "address and the active faults. Exit 0 if all are running, 2 if not.\n",
     nullptr, run_status},
    {"fault",
     "ringwatch lab fault --dir DIR KIND [--proxy P] [--backend B] [--answer IP] [--hash NAME]",
     "Injects one fault and records it in DIR/lab.json; `heal` undoes it.\n", fault_options,
     run_fault, "kind", kFaultKinds},
    {"heal", "ringwatch lab heal --dir DIR",
     "Restores every proxy config and the DNS answers, continues stopped and\n"
     "starts killed backends, restarts proxies that may have ejected (or marked\n"
     "bad) a backend, reloads or restarts those whose config changed, and waits\n"
     "until everything accepts connections again.\n",
     nullptr, run_heal},
    {"down", "ringwatch lab down --dir DIR",
     "Stops exactly the processes recorded in DIR/lab.json (SIGCONT, SIGTERM, then\n"
     "SIGKILL after 2 s) and marks the lab down. Logs, configs and cluster.json\n"
     "stay. Running it again does nothing.\n",
     nullptr, run_down},
    {"add-backend",
     "ringwatch lab add-backend --dir DIR [--backend B] [--public-at P --public-for S]",
     "Starts a new backend (the next free b<i>, or B), gives it a DNS name at every\n"
     "vantage point and adds it to DIR/cluster.json. The proxies are not told:\n"
     "`roll-proxies` makes them take it, as a migration step would.\n"
     "\n"
     "--public-at P --public-for S (netns labs): at P's vantage point the new name\n"
     "first resolves to the backend's public address 127.200.0.(10+i), which is on\n"
     "no interface, and only after S seconds to its private address: the DNS\n"
     "propagation delay of the incident. A proxy restarted meanwhile cannot\n"
     "connect to the backend and ejects it.\n",
     add_backend_options, run_add_backend},
    {"drain-backend", "ringwatch lab drain-backend --dir DIR --backend B",
     "Takes backend B out of DIR/cluster.json and out of every proxy config written\n"
     "from now on, but leaves it running and resolvable, so `roll-proxies` moves the\n"
     "proxies off it one by one while those not yet restarted still reach it. Then\n"
     "`remove-backend` stops it. Running it again does nothing.\n",
     drain_backend_options, run_drain_backend},
    {"remove-backend", "ringwatch lab remove-backend --dir DIR --backend B",
     "Stops backend B and removes it from DNS and DIR/cluster.json (in a netns lab,\n"
     "also its namespace). Proxies keep it until `roll-proxies`.\n",
     remove_backend_options, run_remove_backend},
    {"roll-proxies", "ringwatch lab roll-proxies --dir DIR [--proxy P]... [--pause S]",
     "Gives the proxies (all, or those named) one at a time a config written from\n"
     "the lab's current backends. nutcracker is restarted on the same ports and\n"
     "driven with client traffic until it answers cleanly (a backend it cannot\n"
     "reach is then ejected); memcached's proxy reloads it on SIGHUP (a backend it\n"
     "cannot reach is then marked bad). --pause: seconds between two proxies.\n",
     roll_proxies_options, run_roll_proxies},
};

const Subcommand* find_subcommand(const std::string& name) {
  for (const Subcommand& sub : kSubcommands)
    if (name == sub.name) return &sub;
  return nullptr;
}

int run_sub(const Subcommand& sub, const Args& rest, std::ostream& out) {
  po::options_description options("Options", 100, 50);
  options.add_options()("help,h", "show this help")(
      "dir", po::value<std::string>()->value_name("DIR"), "the lab's directory (required)");
  if (sub.add_options) sub.add_options(options);
  po::options_description all;
  all.add(options);
  po::positional_options_description positional;
  if (sub.positional) {
    po::options_description hidden;
    hidden.add_options()(sub.positional, po::value<std::string>());
    all.add(hidden);
    positional.add(sub.positional, 1);
  }
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(rest).options(all).positional(positional).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    throw UsageError(std::string(sub.name) + ": " + e.what());
  }
  if (vm.count("help")) {
    out << "Usage: " << sub.usage << "\n\n" << sub.summary << "\n" << options;
    if (sub.more_help) out << "\n" << sub.more_help;
    return kExitOk;
  }
  if (!vm.count("dir") || get(vm, "dir").empty())
    throw UsageError(std::string(sub.name) + ": missing --dir DIR");
  // Absolute: the lab's processes run in their own working directories, and
  // lab.json must name the same files from wherever a later command runs.
  return sub.run(vm, std::filesystem::absolute(get(vm, "dir")).lexically_normal(), out);
}

}  // namespace

int run_lab(const Args& args, std::ostream& out, std::ostream& err) {
  if (args.empty())
    throw UsageError(
        "missing subcommand (up, status, fault, heal, down, add-backend, drain-backend, "
        "remove-backend or roll-proxies)");
  const std::string& name = args.front();
  if (name == "--help" || name == "-h" || name == "help") {
    out << kOverview;
    return kExitOk;
  }
  const Subcommand* sub = find_subcommand(name);
  if (!sub)
    throw UsageError("unknown subcommand '" + name +
                     "' (up, status, fault, heal, down, add-backend, drain-backend, "
                     "remove-backend or roll-proxies)");
  try {
    return run_sub(*sub, Args(args.begin() + 1, args.end()), out);
  } catch (const lab::LabError& e) {
    err << "ringwatch lab: " << e.what() << "\n";
    return kExitUnknown;
  }
}

}  // namespace ringwatch::cli
