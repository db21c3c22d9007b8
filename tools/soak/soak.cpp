// The soak's running half: the lab, ringwatchd and the churn (tools/soak/soak.h).

#include "tools/soak/soak.h"

#include <signal.h>

#include <csignal>

#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "lib/util/time.h"
#include "tools/lab/process.h"

namespace ringwatch::soak {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// The lab in `options.lab_dir` if one runs there, else a new one; true in
// `*started` when this run brought it up (and must take it down).
lab::LabStatus use_or_bring_up(const Options& options, bool* started, std::ostream& progress) {
  *started = false;
  if (std::filesystem::exists(options.lab_dir / "lab.json")) {
    lab::LabStatus status = lab::status(options.lab_dir);
    if (status.is_up) {
      progress << "soak: using the running lab in " << options.lab_dir.string() << "\n";
      return status;
    }
  }
  progress << "soak: bringing up a lab in " << options.lab_dir.string() << "\n";
  lab::LabStatus status =
      lab::up({options.lab_dir, options.proxies, options.backends, false, options.proxy_kind});
  *started = true;
  return status;
}

// ringwatchd on the lab's spec; waits (up to 20 s) until it listens.
lab::ProcessId start_daemon(const Options& options, const lab::LabStatus& status,
                            const std::filesystem::path& log) {
  std::filesystem::remove(log);
  std::ostringstream interval;
  interval << static_cast<double>(options.interval.count()) / 1000.0;
  const lab::ProcessId daemon =
      lab::spawn({options.ringwatchd.string(), "--cluster", status.spec_path.string(), "--interval",
                  interval.str(), "--jitter", "0", "--listen", "127.0.0.1:0"},
                 log, options.lab_dir);
  const auto deadline = Clock::now() + std::chrono::seconds(20);
  while (Clock::now() < deadline) {
    if (read_file(log).find("event=listening") != std::string::npos) return daemon;
    if (lab::probe(daemon) == lab::ProcState::dead) break;
    std::this_thread::sleep_for(milliseconds(100));
  }
  lab::send_signal(daemon, SIGKILL);
  lab::wait_for_state(daemon, lab::ProcState::dead, std::chrono::seconds(5));
  throw std::runtime_error("ringwatchd did not start listening within 20 s: " +
                           lab::tail_of_file(log, 5));
}

void stop_daemon(const lab::ProcessId& daemon) {
  lab::send_signal(daemon, SIGTERM);
  if (lab::wait_for_state(daemon, lab::ProcState::dead, std::chrono::seconds(15))) return;
  lab::send_signal(daemon, SIGKILL);
  lab::wait_for_state(daemon, lab::ProcState::dead, std::chrono::seconds(5));
}

// The address nothing listens on that stands in for a backend's public one:
// 127.10.x.y becomes 127.200.x.y (tools/lab/lab.h).
std::string public_stand_in(const lab::ProcessStatus& backend) {
  std::string address = backend.endpoint.substr(0, backend.endpoint.rfind(':'));
  if (address.rfind("127.10.", 0) == 0) return "127.200." + address.substr(7);
  return "127.200.0.1";
}

class Churn {
 public:
  Churn(const Options& options, std::ostream& progress)
      : options_(options), progress_(progress), random_(options.seed) {}

  // The pause before the next event: uniform in [every/2, 3*every/2].
  milliseconds next_gap() {
    const auto every = options_.churn_every.count();
    return milliseconds(
        std::uniform_int_distribution<std::int64_t>(every / 2, every * 3 / 2)(random_));
  }

  ChurnEvent run_one() {
    ChurnEvent event;
    event.kind = options_.churn[pick(options_.churn.size())];
    event.begin = std::chrono::system_clock::now();
    try {
      const lab::LabStatus status = lab::status(options_.lab_dir);
      std::vector<lab::ProcessStatus> backends;
      for (const auto& process : status.processes)
        if (process.role == "backend") backends.push_back(process);
      if (backends.empty()) throw std::runtime_error("the lab has no backend");
      const lab::ProcessStatus& backend = backends[pick(backends.size())];
      if (event.kind != ChurnKind::proxy_roll) event.target = backend.node;
      progress_ << "soak: " << util::format_rfc3339_ms(event.begin) << " " << to_string(event.kind)
                << (event.target.empty() ? "" : " ") << event.target << std::endl;
      act(event, backend);
    } catch (const std::exception& error) {
      event.error = error.what();
      progress_ << "soak: lab error: " << event.error << "; healing" << std::endl;
      heal_quietly();
    }
    event.end = std::chrono::system_clock::now();
    return event;
  }

 private:
  std::size_t pick(std::size_t n) {
    return std::uniform_int_distribution<std::size_t>(0, n - 1)(random_);
  }

  void act(const ChurnEvent& event, const lab::ProcessStatus& backend) {
    switch (event.kind) {
      case ChurnKind::backend_restart:
        lab::inject(options_.lab_dir, {lab::FaultKind::restart, "", backend.node, "", ""});
        lab::heal(options_.lab_dir);
        return;
      case ChurnKind::proxy_roll:
        lab::restart_proxies(options_.lab_dir, {.proxies = {}, .pause = options_.interval});
        return;
      case ChurnKind::dns_flap:
        lab::inject(options_.lab_dir,
                    {lab::FaultKind::dns, "", backend.node, public_stand_in(backend), ""});
        std::this_thread::sleep_for(2 * options_.interval);
        lab::heal(options_.lab_dir);
        return;
    }
  }

  void heal_quietly() {
    try {
      lab::heal(options_.lab_dir);
    } catch (const std::exception& error) {
      progress_ << "soak: heal failed too: " << error.what() << "\n";
    }
  }

  const Options& options_;
  std::ostream& progress_;
  std::mt19937_64 random_;
};

volatile std::sig_atomic_t g_stop_requested = 0;

void request_stop(int) {
  g_stop_requested = 1;
}

// SIGINT and SIGTERM set g_stop_requested while this lives; then the old
// handlers are back.
class StopSignals {
 public:
  StopSignals() {
    g_stop_requested = 0;
    struct sigaction action {};
    action.sa_handler = request_stop;
    sigemptyset(&action.sa_mask);
    ::sigaction(SIGINT, &action, &old_int_);
    ::sigaction(SIGTERM, &action, &old_term_);
  }
  ~StopSignals() {
    ::sigaction(SIGINT, &old_int_, nullptr);
    ::sigaction(SIGTERM, &old_term_, nullptr);
  }
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

 private:
  struct sigaction old_int_ {
  }, old_term_{};
};

// Sleeps until `until` in short steps; false (at once) if the daemon died or
// a stop was requested.
bool sleep_watching(Clock::time_point until, const lab::ProcessId& daemon) {
  while (Clock::now() < until) {
    if (g_stop_requested || lab::probe(daemon) == lab::ProcState::dead) return false;
    std::this_thread::sleep_for(std::min<Clock::duration>(milliseconds(200), until - Clock::now()));
  }
  return lab::probe(daemon) != lab::ProcState::dead;
}

void down_quietly(const std::filesystem::path& dir, std::ostream& progress) {
  try {
    lab::down(dir);
  } catch (const std::exception& error) {
    progress << "soak: lab down failed: " << error.what() << std::endl;
  }
}

}  // namespace

SoakReport run(const Options& options, std::ostream& progress) {
  const StopSignals stop_signals;
  bool started_lab = false;
  const lab::LabStatus status = use_or_bring_up(options, &started_lab, progress);
  SoakReport report;
  report.lab = status.name;
  report.proxy_kind = lab::to_string(status.proxy_kind);
  for (const auto& process : status.processes) {
    report.proxies += process.role == "proxy";
    report.backends += process.role == "backend";
  }
  report.duration = options.duration;
  report.interval = options.interval;
  report.churn_every = options.churn_every;
  report.settle = options.settle;
  report.seed = options.seed;
  const auto log = options.lab_dir / "soak-ringwatchd.log";
  try {
    const lab::ProcessId daemon = start_daemon(options, status, log);
    progress << "soak: ringwatchd " << daemon.pid << " every "
             << static_cast<double>(options.interval.count()) / 1000.0 << " s for "
             << options.duration.count() / 1000.0 << " s, log " << log.string() << std::endl;
    const auto deadline = Clock::now() + options.duration;
    Churn churn(options, progress);
    bool alive = true;
    while (alive && Clock::now() < deadline) {
      const auto next = options.churn.empty() ? deadline : Clock::now() + churn.next_gap();
      alive = sleep_watching(std::min(next, deadline), daemon);
      if (alive && next < deadline) report.events.push_back(churn.run_one());
    }
    report.interrupted = g_stop_requested != 0;
    if (!alive && !report.interrupted)
      report.daemon_error = "exited during the run: " + lab::tail_of_file(log, 5);
    stop_daemon(daemon);
  } catch (...) {
    if (started_lab) down_quietly(options.lab_dir, progress);
    throw;
  }
  if (started_lab) lab::down(options.lab_dir);
  report.rounds = parse_rounds(read_file(log), &report.skipped);
  classify(report.rounds, report.events, options.settle);
  return report;
}

}  // namespace ringwatch::soak
