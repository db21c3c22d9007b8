// Canary probe benchmark: for labs of 3x3, 6x12 and 12x48 (proxies x
// backends), each with nutcracker (twemproxy) and with memcached's built-in
// proxy, measures in the same run
//   round  one full steady-state probe round (placement already learned),
//   naive  the same writes, reads and locates one key at a time through the
//          same client, as a shell script with memcp/memcat would do them,
//   floor  one pipelined multi-get of the round's keys per proxy and per
//          backend, all at once: the least network work a round can do,
// and prints the round time with its ratios to both. Figures only; nothing
// here asserts a speed.
//
// Usage: probe_bench [--sizes 3x3,6x12,12x48] [--proxy-kinds twemproxy,memcached]
//                    [--rounds N] [--dir DIR]

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

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

struct Figures {
  double round_ms = 0, naive_ms = 0, floor_ms = 0, keys = 0;
};

Figures measure(const spec::ClusterSpec& spec, int rounds) {
  Figures figures;
  probes::ProbeSet probe_set({report::checks::kCanary});
  // The first round learns the placement; measure only a healthy lab.
  report::Report first = probe_set.run_round(spec);
  for (int attempt = 0; attempt < 30 && first.status() != report::Status::ok; ++attempt) {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    first = probe_set.run_round(spec);
  }
  if (first.status() != report::Status::ok) {
    throw std::runtime_error("lab not healthy: " + first.summary_line());
  }
  std::vector<double> round_times;
  for (int i = 0; i < rounds; ++i) {
    const report::Report report = probe_set.run_round(spec);
    if (report.status() != report::Status::ok) {
      std::fprintf(stderr, "warning: round %d not OK: %s\n", i, report.summary_line().c_str());
    }
    round_times.push_back(report.figures.at(report::figures::kRoundMs));
    figures.keys = report.figures.at(report::figures::kKeys);
  }
  figures.round_ms = median(round_times);

  const auto keys = round_keys(spec, static_cast<std::size_t>(figures.keys));
  const util::Deadlines deadlines = spec.timeouts.deadlines();
  std::vector<mc::Client> proxy_clients, backend_clients;
  for (const auto& proxy : spec.proxies) proxy_clients.emplace_back(proxy.client, deadlines);
  for (const auto& backend : spec.backends)
    backend_clients.emplace_back(backend.endpoint(), deadlines);

  // Naive: one key per round trip, one endpoint after another.
  auto start = Clock::now();
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
  figures.naive_ms = ms(Clock::now() - start);

  // Floor: one pipelined batch per proxy and per backend, concurrently.
  WorkerPool pool(
      std::min<std::size_t>(std::max(proxy_clients.size(), backend_clients.size()), 32));
  std::vector<double> floors;
  for (int i = 0; i < std::max(rounds, 5); ++i) {
    start = Clock::now();
    pool.run_all(proxy_clients.size() + backend_clients.size(), [&](std::size_t n) {
      auto& client =
          n < proxy_clients.size() ? proxy_clients[n] : backend_clients[n - proxy_clients.size()];
      (void)client.get_many(keys);
    });
    floors.push_back(ms(Clock::now() - start));
  }
  figures.floor_ms = median(floors);
  return figures;
}

// One lab of `size` and `kind`: started, measured and stopped. False if any
// of it failed (said on stderr).
bool bench_one(const std::filesystem::path& dir, Size size, lab::LabProxyKind kind, int rounds) {
  const std::string name = std::to_string(size.proxies) + "x" + std::to_string(size.backends);
  const auto lab_dir = dir / (name + "-" + lab::to_string(kind));
  std::filesystem::remove_all(lab_dir);
  bool ok = true;
  try {
    lab::up(
        {.dir = lab_dir, .proxies = size.proxies, .backends = size.backends, .proxy_kind = kind});
    const auto spec = spec::load_cluster_spec(lab::spec_path(lab_dir).string());
    const Figures f = measure(spec, rounds);
    std::printf("%-7s %-10s %6.0f %10.2f %10.1f %10.2f %7.1fx %8.1fx\n", name.c_str(),
                lab::to_string(kind), f.keys, f.round_ms, f.naive_ms, f.floor_ms,
                f.naive_ms / f.round_ms, f.round_ms / f.floor_ms);
    std::fflush(stdout);
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
  int rounds = 20;
  std::filesystem::path dir = std::filesystem::temp_directory_path() / "ringwatch-bench";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--sizes")
      sizes_text = argv[i + 1];
    else if (flag == "--proxy-kinds")
      kinds_text = argv[i + 1];
    else if (flag == "--rounds")
      rounds = std::atoi(argv[i + 1]);
    else if (flag == "--dir")
      dir = argv[i + 1];
    else {
      std::fprintf(stderr,
                   "usage: probe_bench [--sizes 3x3,6x12,12x48] [--proxy-kinds "
                   "twemproxy,memcached] [--rounds N] [--dir DIR]\n");
      return 3;
    }
  }
  std::printf("%-7s %-10s %6s %10s %10s %10s %8s %9s\n", "size", "proxy", "keys", "round_ms",
              "naive_ms", "floor_ms", "naive/x", "x/floor");
  int status = 0;
  try {
    const auto kinds = parse_kinds(kinds_text);
    for (const Size& size : parse_sizes(sizes_text))
      for (const lab::LabProxyKind kind : kinds)
        if (!bench_one(dir, size, kind, rounds)) status = 1;
  } catch (const std::exception& error) {
    std::fprintf(stderr, "probe_bench: %s\n", error.what());
    return 3;
  }
  return status;
}
