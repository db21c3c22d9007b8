// ringwatchd under a fleet: N lab clusters (3 proxies x 3 backends each, or
// PxB) probed at 1 round per second per cluster for S seconds by the real
// ringwatchd binary. Prints the daemon's CPU seconds and peak RSS (from
// /proc/<pid>), rounds completed vs. scheduled (from /v1/clusters) and the
// p50/p99 round duration (from its event=round log lines). Asserts nothing.
//
// Run: build/tools/bench/daemon_bench [clusters=10] [seconds=60] [size=3x3]
//                                    [pools-per-process=1] [proxies-per-round]
//                                    [checks=all, e.g. canary,dns]
//   e.g. daemon_bench 1 60 12x48: one cluster of 12 proxies x 48 backends;
//   daemon_bench 1 60 1000x50 50 100: 1,000 proxies as 20 nutcracker processes
//   of 50 pools, the spec's "canary": {"proxies_per_round": 100}.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "lib/http/client.h"
#include "lib/spec/cluster_spec.h"
#include "tools/lab/lab.h"
#include "tools/lab/process.h"

namespace {

using namespace ringwatch;

double cpu_seconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::istringstream fields(text.substr(text.rfind(')') + 2));
  std::string field;
  double utime = 0, stime = 0;
  for (int i = 3; i <= 15 && fields >> field; ++i) {
    if (i == 14) utime = std::stod(field);
    if (i == 15) stime = std::stod(field);
  }
  return (utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

std::string status_field(pid_t pid, const std::string& name) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(name + ":", 0) == 0) {
      auto value = line.substr(name.size() + 1);
      value.erase(0, value.find_first_not_of(" \t"));
      return value;
    }
  }
  return "?";
}

long sum_field(const std::string& body, const std::string& key) {
  long total = 0;
  for (auto at = body.find(key); at != std::string::npos; at = body.find(key, at + 1)) {
    total += std::atol(body.c_str() + at + key.size());
  }
  return total;
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// The port from ringwatchd's "event=listening address=HOST:PORT" log line, 0
// if it has not logged one within `timeout`.
std::uint16_t wait_for_listening_port(const std::filesystem::path& log,
                                      std::chrono::seconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    const std::string text = read_file(log);
    const auto at = text.find("event=listening address=");
    const auto end = at == std::string::npos ? at : text.find('\n', at);
    if (end != std::string::npos) {
      const std::string line = text.substr(at, end - at);
      return static_cast<std::uint16_t>(std::atoi(line.c_str() + line.rfind(':') + 1));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return 0;
}

double percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const auto index = static_cast<std::size_t>(p * static_cast<double>(values.size() - 1) + 0.5);
  return values[std::min(index, values.size() - 1)];
}

}  // namespace

int main(int argc, char** argv) {
  const int clusters = argc > 1 ? std::atoi(argv[1]) : 10;
  const int seconds = argc > 2 ? std::atoi(argv[2]) : 60;
  const std::string size = argc > 3 ? argv[3] : "3x3";
  const auto x = size.find('x');
  const int proxies = x == std::string::npos ? 0 : std::atoi(size.c_str());
  const int backends = x == std::string::npos ? 0 : std::atoi(size.c_str() + x + 1);
  const int pools_per_process = argc > 4 ? std::atoi(argv[4]) : 1;
  const int proxies_per_round = argc > 5 ? std::atoi(argv[5]) : 0;
  const std::string checks = argc > 6 ? argv[6] : "";
  if (clusters < 1 || seconds < 1 || proxies < 1 || backends < 1) {
    std::cerr << "usage: daemon_bench [clusters=10] [seconds=60] [size=3x3 (proxies x backends)] "
                 "[pools-per-process=1] [proxies-per-round] [checks]\n";
    return 3;
  }
  std::string pattern =
      (std::filesystem::temp_directory_path() / "ringwatch-daemon-bench-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) return 1;
  const std::filesystem::path root = pattern;

  std::vector<std::filesystem::path> labs;
  int code = 0;
  try {
    std::cout << "starting " << clusters << " labs (" << size << ")..." << std::endl;
    for (int i = 0; i < clusters; ++i) {
      labs.push_back(root / ("c" + std::to_string(i)));
      lab::up({.dir = labs.back(),
               .proxies = proxies,
               .backends = backends,
               .pools_per_process = pools_per_process});
      if (proxies_per_round > 0) {
        auto spec = spec::load_cluster_spec(lab::spec_path(labs.back()).string());
        spec.canary.proxies_per_round = static_cast<std::size_t>(proxies_per_round);
        std::ofstream(lab::spec_path(labs.back())) << spec::to_json(spec);
      }
    }
    std::vector<std::string> args{RINGWATCHD_BINARY, "--interval", "1", "--jitter", "0.1",
                                  "--listen",        "127.0.0.1:0"};
    if (!checks.empty()) args.insert(args.end(), {"--checks", checks});
    for (const auto& dir : labs) {
      args.push_back("--cluster");
      args.push_back(lab::spec_path(dir).string());
    }
    const auto log = root / "ringwatchd.log";
    const lab::ProcessId daemon = lab::spawn(args, log, root);
    const auto port = wait_for_listening_port(log, std::chrono::seconds(20));
    if (port == 0) throw std::runtime_error("ringwatchd did not start: " + read_file(log));
    const double cpu_start = cpu_seconds(daemon.pid);
    std::this_thread::sleep_for(std::chrono::seconds(seconds));
    http::Client client;
    const auto response = client.request(
        "GET", http::parse_url("http://127.0.0.1:" + std::to_string(port) + "/v1/clusters"));
    const std::string body = response ? response.value().body : std::string();
    const double cpu = cpu_seconds(daemon.pid) - cpu_start;
    const auto peak_rss = status_field(daemon.pid, "VmHWM");
    const long completed = sum_field(body, "\"rounds\":");
    const long skipped = sum_field(body, "\"skipped\":");
    const long ticks = sum_field(body, "\"scheduled\":");
    lab::send_signal(daemon, SIGTERM);
    if (!lab::wait_for_state(daemon, lab::ProcState::dead, std::chrono::seconds(15))) {
      lab::send_signal(daemon, SIGKILL);
      lab::wait_for_state(daemon, lab::ProcState::dead, std::chrono::seconds(5));
    }

    std::vector<double> durations;
    std::istringstream lines(read_file(log));
    std::string line;
    while (std::getline(lines, line)) {
      const auto at = line.find("event=round cluster=");
      const auto d = line.find(" duration_ms=");
      if (at != std::string::npos && d != std::string::npos) {
        durations.push_back(std::stod(line.substr(d + 13)));
      }
    }
    std::printf("fleet: %d clusters x (%d proxies, %d backends), 1 round/s each, %d s\n", clusters,
                proxies, backends, seconds);
    if (pools_per_process > 1 || proxies_per_round > 0)
      std::printf("proxies: %d pools per nutcracker process; proxies_per_round %d\n",
                  pools_per_process, proxies_per_round);
    std::printf("checks: %s\n", checks.empty() ? "all" : checks.c_str());
    std::printf("daemon CPU: %.2f s (%.2f%% of one core)\n", cpu,
                100.0 * cpu / static_cast<double>(seconds));
    std::printf("daemon peak RSS: %s\n", peak_rss.c_str());
    std::printf(
        "rounds: %ld completed, %ld skipped, %ld scheduled (%d expected: clusters x seconds)\n",
        completed, skipped, ticks, clusters * seconds);
    std::printf("round duration: p50 %.1f ms, p99 %.1f ms (%zu rounds)\n",
                percentile(durations, 0.5), percentile(durations, 0.99), durations.size());
  } catch (const std::exception& error) {
    std::cerr << "daemon_bench: " << error.what() << "\n";
    code = 1;
  }
  for (const auto& dir : labs) {
    try {
      lab::down(dir);
    } catch (const std::exception& error) {
      std::cerr << "lab down " << dir << ": " << error.what() << "\n";
    }
  }
  std::filesystem::remove_all(root);
  return code;
}
