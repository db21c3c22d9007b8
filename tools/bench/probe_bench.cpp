// Canary probe benchmark: for labs of 3x3, 6x12 and 12x48 (proxies x
// backends), each with nutcracker (twemproxy) and with memcached's built-in
// proxy, measures in the same run, per mode
//   linear  one steady-state round with coverage "linear" (the default),
//   full    one steady-state round with coverage "full" (the baseline),
//   naive   the full round's writes, reads and locates one key at a time
//           through the same client, as a shell script with memcp/memcat
//           would do them,
//   floor   one pipelined multi-get of the full round's keys per proxy and
//           per backend, all at once: the least network work it can do,
// its wall time, the probe's CPU (this process, every thread) and its key
// operations, with the full round's time and CPU divided by the mode's.
// Medians of N rounds (naive: one). Figures only; nothing here asserts a speed.
//
// Big fleets (issue 15), e.g. --sizes 1000x50 --proxy-kinds twemproxy: a
// size of more than 200 proxies runs as pools of shared nutcracker processes
// (--pools-per-process, default 50); with --proxies-per-round N a further
// linear row ("lin/N") reads through N rotating proxies a round. The full
// round (and naive and floor, which redo its work) is skipped where it would
// be over kFullLimit key operations (P²·B + P·B² per canary per backend):
// 1000x50 would be about 10^8; the ratios are then to the linear round.
//
// Usage: probe_bench [--sizes 3x3,6x12,12x48] [--proxy-kinds twemproxy,memcached]
//                    [--rounds N] [--naive yes|no] [--dir DIR]
//                    [--pools-per-process K] [--proxies-per-round N]

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <sys/resource.h>

#include "lib/mc/client.h"
#include "lib/report/vocabulary.h"
#include "lib/util/deadlines.h"
#include "lib/util/worker_pool.h"
#include "probes/canary/canary_keys.h"
#include "probes/registry.h"
#include "tools/lab/lab.h"

namespace {

using namespace ringwatch;
using Clock = std::chrono::steady_clock;

double ms(Clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values.empty() ? 0 : values[values.size() / 2];
}

struct Size {
  int proxies, backends;
};

std::vector<std::string> split_commas(const std::string& text) {
  std::vector<std::string> items;
  std::size_t start = 0;
  while (start < text.size()) {
    const std::size_t comma = text.find(',', start);
    items.push_back(
        text.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return items;
}

std::vector<Size> parse_sizes(const std::string& text) {
  std::vector<Size> sizes;
  for (const std::string& item : split_commas(text)) {
    const auto x = item.find('x');
    if (x == std::string::npos) throw std::runtime_error("bad size " + item + " (want PxB)");
    sizes.push_back({std::stoi(item.substr(0, x)), std::stoi(item.substr(x + 1))});
  }
  return sizes;
}

std::vector<lab::LabProxyKind> parse_kinds(const std::string& text) {
  std::vector<lab::LabProxyKind> kinds;
  for (const std::string& item : split_commas(text)) {
    const auto kind = lab::parse_lab_proxy_kind(item);
    if (!kind) throw std::runtime_error("bad proxy kind " + item + " (twemproxy or memcached)");
    kinds.push_back(*kind);
  }
  return kinds;
}

// The round's key set, rebuilt from the probe's own naming so that naive and
// floor do exactly the same amount of work on keys that exist.
std::vector<std::string> round_keys(const spec::ClusterSpec& spec, std::size_t count) {
  std::vector<std::string> keys;
  for (std::size_t i = 0; i < count; ++i)
    keys.push_back(probes::canary::make_key(spec.canary.key_prefix, spec.name, "bench", i));
  return keys;
}

// CPU time of this process (every thread: the probe runs here), in ms.
double cpu_ms() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  const auto to_ms = [](const timeval& t) { return t.tv_sec * 1e3 + t.tv_usec / 1e3; };
  return to_ms(usage.ru_utime) + to_ms(usage.ru_stime);
}

// One way of doing a round: its median wall time, probe CPU and key operations.
struct Row {
  std::string mode;
  double keys = 0, operations = 0, round_ms = 0, cpu_ms = 0;
};

struct Options {
  int rounds = 20;
  bool naive = true;
  int pools_per_process = 50;  // sizes over lab::kMaxProxyProcesses proxies
  int proxies_per_round = 0;   // 0: no "lin/N" row
};

// Above this many key operations per canary per backend the full round is skipped.
constexpr double kFullLimit = 1e6;

// Steady-state rounds of the canary check with `coverage` (placement learned
// by a first round that is not measured).
Row measure_rounds(spec::ClusterSpec spec, spec::CanaryCoverage coverage, int rounds) {
  spec.canary.coverage = coverage;
  Row row{.mode = spec::to_string(coverage)};
  if (spec.canary.proxies_per_round)
    row.mode = "lin/" + std::to_string(*spec.canary.proxies_per_round);
  probes::ProbeSet probe_set({report::checks::kCanary});
  report::Report first = probe_set.run_round(spec);
  for (int attempt = 0; attempt < 30 && first.status() != report::Status::ok; ++attempt) {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    first = probe_set.run_round(spec);
  }
  if (first.status() != report::Status::ok) {
    throw std::runtime_error("lab not healthy: " + first.summary_line());
  }
  std::vector<double> round_times, cpu_times;
  for (int i = 0; i < rounds; ++i) {
    const double cpu_before = cpu_ms();
    const report::Report report = probe_set.run_round(spec);
    cpu_times.push_back(cpu_ms() - cpu_before);
    if (report.status() != report::Status::ok) {
      std::fprintf(stderr, "warning: round %d not OK: %s\n", i, report.summary_line().c_str());
    }
    round_times.push_back(report.figures.at(report::figures::kRoundMs));
    row.keys = report.figures.at(report::figures::kKeys);
    row.operations = report.figures.at(report::figures::kOperations);
  }
  row.round_ms = median(round_times);
  row.cpu_ms = median(cpu_times);
  return row;
}

// The full round's work done the naive way (one key per round trip, one
// endpoint after another), and its floor (one pipelined multi-get per proxy
// and per backend, all at once).
std::pair<Row, Row> measure_naive_and_floor(const spec::ClusterSpec& spec, std::size_t key_count,
                                            int rounds) {
  const auto keys = round_keys(spec, key_count);
  const util::Deadlines deadlines = spec.timeouts.deadlines();
  std::vector<mc::Client> proxy_clients, backend_clients;
  for (const auto& proxy : spec.proxies) proxy_clients.emplace_back(proxy.client, deadlines);
  for (const auto& backend : spec.backends)
    backend_clients.emplace_back(backend.endpoint(), deadlines);
  const double operations =
      static_cast<double>(keys.size() * (1 + proxy_clients.size() + backend_clients.size()));

  Row naive{.mode = "naive", .keys = static_cast<double>(keys.size()), .operations = operations};
  auto start = Clock::now();
  double cpu_before = cpu_ms();
  for (std::size_t i = 0; i < keys.size(); ++i) {
    const std::size_t writer = i % proxy_clients.size();
    (void)proxy_clients[writer].set(
        keys[i],
        probes::canary::encode_value(spec.proxies[writer].name, 1, keys[i], spec.canary.value_size),
        spec.canary.ttl);
  }
  for (auto& client : proxy_clients) {
    for (const auto& key : keys) (void)client.get(key);
  }
  for (auto& client : backend_clients) {
    for (const auto& key : keys) (void)client.get(key);
  }
  naive.round_ms = ms(Clock::now() - start);
  naive.cpu_ms = cpu_ms() - cpu_before;

  Row floor{.mode = "floor",
            .keys = naive.keys,
            .operations = operations - static_cast<double>(keys.size())};
  WorkerPool pool(
      std::min<std::size_t>(std::max(proxy_clients.size(), backend_clients.size()), 32));
  std::vector<double> floors, floor_cpu;
  for (int i = 0; i < std::max(rounds, 5); ++i) {
    start = Clock::now();
    cpu_before = cpu_ms();
    pool.run_all(proxy_clients.size() + backend_clients.size(), [&](std::size_t n) {
      auto& client =
          n < proxy_clients.size() ? proxy_clients[n] : backend_clients[n - proxy_clients.size()];
      (void)client.get_many(keys);
    });
    floors.push_back(ms(Clock::now() - start));
    floor_cpu.push_back(cpu_ms() - cpu_before);
  }
  floor.round_ms = median(floors);
  floor.cpu_ms = median(floor_cpu);
  return {naive, floor};
}

void print_row(const std::string& size, const char* kind, const Row& row, const Row& full) {
  std::printf("%-8s %-10s %-7s %6.0f %8.0f %10.2f %9.2f %8.1fx %8.1fx\n", size.c_str(), kind,
              row.mode.c_str(), row.keys, row.operations, row.round_ms, row.cpu_ms,
              full.round_ms / row.round_ms, full.cpu_ms / row.cpu_ms);
  std::fflush(stdout);
}

// One lab of `size` and `kind`: started, measured and stopped. False if any
// of it failed (said on stderr).
bool bench_one(const std::filesystem::path& dir, Size size, lab::LabProxyKind kind,
               const Options& options) {
  const int rounds = options.rounds;
  const std::string name = std::to_string(size.proxies) + "x" + std::to_string(size.backends);
  const auto lab_dir = dir / (name + "-" + lab::to_string(kind));
  std::filesystem::remove_all(lab_dir);
  bool ok = true;
  try {
    lab::up({.dir = lab_dir,
             .proxies = size.proxies,
             .backends = size.backends,
             .proxy_kind = kind,
             .pools_per_process = size.proxies > 200 ? options.pools_per_process : 1});
    auto spec = spec::load_cluster_spec(lab::spec_path(lab_dir).string());
    const Row linear = measure_rounds(spec, spec::CanaryCoverage::linear, rounds);
    const double p = size.proxies, b = size.backends;
    const bool full_fits = p * p * b + p * b * b <= kFullLimit;
    const Row full = full_fits ? measure_rounds(spec, spec::CanaryCoverage::full, rounds) : linear;
    if (options.proxies_per_round > 0 && options.proxies_per_round < size.proxies) {
      spec.canary.proxies_per_round = options.proxies_per_round;
      print_row(name, lab::to_string(kind),
                measure_rounds(spec, spec::CanaryCoverage::linear, rounds), full);
      spec.canary.proxies_per_round.reset();
    }
    print_row(name, lab::to_string(kind), linear, full);
    if (!full_fits) {
      std::printf(
          "%-8s %-10s full    skipped: about %.0e key operations a round (P^2*B + P*B^2 "
          "per canary per backend); ratios above are to the linear round\n",
          name.c_str(), lab::to_string(kind), 2 * (p * p * b + p * b * b));
      std::fflush(stdout);
    } else {
      print_row(name, lab::to_string(kind), full, full);
    }
    if (options.naive && full_fits) {
      const auto [naive_row, floor_row] =
          measure_naive_and_floor(spec, static_cast<std::size_t>(full.keys), rounds);
      print_row(name, lab::to_string(kind), naive_row, full);
      print_row(name, lab::to_string(kind), floor_row, full);
    }
  } catch (const std::exception& error) {
    std::fprintf(stderr, "%s %s: %s\n", name.c_str(), lab::to_string(kind), error.what());
    ok = false;
  }
  try {
    lab::down(lab_dir);
  } catch (const std::exception& error) {
    std::fprintf(stderr, "lab down %s: %s\n", lab_dir.c_str(), error.what());
    ok = false;
  }
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  std::string sizes_text = "3x3,6x12,12x48";
  std::string kinds_text = "twemproxy,memcached";
  Options options;
  std::filesystem::path dir = std::filesystem::temp_directory_path() / "ringwatch-bench";
  const auto usage = [](std::FILE* out) {
    std::fprintf(out,
                 "usage: probe_bench [--sizes 3x3,6x12,12x48] [--proxy-kinds "
                 "twemproxy,memcached] [--rounds N] [--naive yes|no] [--dir DIR] "
                 "[--pools-per-process K] [--proxies-per-round N]\n");
  };
  for (int i = 1; i < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "-h" || flag == "--help") {
      usage(stdout);
      return 0;
    }
    // Every flag takes a value: a flag left without one is an error, not
    // a run of every size with the defaults.
    if (i + 1 == argc) {
      usage(stderr);
      return 3;
    }
    if (flag == "--sizes")
      sizes_text = argv[i + 1];
    else if (flag == "--proxy-kinds")
      kinds_text = argv[i + 1];
    else if (flag == "--rounds")
      options.rounds = std::atoi(argv[i + 1]);
    else if (flag == "--dir")
      dir = argv[i + 1];
    else if (flag == "--naive")
      options.naive = std::string(argv[i + 1]) != "no";
    else if (flag == "--pools-per-process")
      options.pools_per_process = std::atoi(argv[i + 1]);
    else if (flag == "--proxies-per-round")
      options.proxies_per_round = std::atoi(argv[i + 1]);
    else {
      usage(stderr);
      return 3;
    }
  }
  std::printf("%-8s %-10s %-7s %6s %8s %10s %9s %9s %9s\n", "size", "proxy", "mode", "keys",
              "key_ops", "round_ms", "cpu_ms", "full/x", "full_cpu/x");
  int status = 0;
  try {
    const auto kinds = parse_kinds(kinds_text);
    for (const Size& size : parse_sizes(sizes_text))
      for (const lab::LabProxyKind kind : kinds)
        if (!bench_one(dir, size, kind, options)) status = 1;
  } catch (const std::exception& error) {
    std::fprintf(stderr, "probe_bench: %s\n", error.what());
    return 3;
  }
  return status;
}
