// `ringwatch probe`: load a spec, run rounds of the requested checks, print
// each round's report, exit with the worst status seen (with --format nagios,
// raised by the -w/-c thresholds; UNKNOWN for a round cut short by -t).

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <exception>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>

#include "lib/report/render.h"
#include "lib/spec/cluster_spec.h"
#include "lib/util/text.h"
#include "probes/dns/dns_probe.h"
#include "probes/registry.h"
#include "tools/cli/options.h"

namespace ringwatch::cli {

namespace {

using Clock = std::chrono::steady_clock;

// Rounds abandoned at --timeout whose thread has not ended yet.
std::atomic<int> g_rounds_left_running{0};

constexpr std::string_view kUsage =
    R"(Usage: ringwatch probe --cluster FILE [--checks LIST] [--format text|json|nagios]
         [--rounds N] [--interval S] [-t S] [--vantage NAME]
         [--color auto|always|never] [-v]                       (text)
         [-w LIST] [-c LIST] [--perfdata cluster|all]           (nagios)

Writes canary keys through every proxy, reads them back through every proxy,
locates them on every backend, audits the proxies' connections and the DNS
answers, and reports ring divergence, inconsistent reads and unreachable
nodes. Exit: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.

Output: text is the summary, the diagnosis, the findings by subject with the
evidence a person reads, and the checks, in 80 columns (-v: all evidence and
the figures). json is schema ringwatch.report/v1: one indented document, or
with --rounds one compact document per line (JSON Lines). nagios is a status
line with perfdata, then the findings as long output.

Thresholds (nagios): -w and -c take FIGURE=RANGE[,FIGURE=RANGE] on the
figures consistency_ratio and inconsistent_reads, in the monitoring-plugins
range format (alert outside the range, endpoints inclusive; @ alerts inside):
  10 (outside 0..10)  10: (below 10)  ~:10 (above 10)  10:20  @10:20
e.g. -w consistency_ratio=0.999:,inconsistent_reads=0
     -c consistency_ratio=0.99:
A breach raises the status the checks found, never lowers it.
)";

struct ProbeArgs {
  std::string cluster_path;
  std::vector<std::string> checks;
  report::Format format = report::Format::text;
  int rounds = 1;
  double interval_s = 1;
  std::optional<double> timeout_s;
  probes::ProbeOptions probe_options;
  report::RenderOptions render;
};

std::vector<std::string> split_checks(const std::string& list) {
  std::vector<std::string> named;
  std::stringstream stream(list);
  std::string item;
  while (std::getline(stream, item, ',')) {
    if (!item.empty()) named.push_back(item);
  }
  auto checks = probes::normalize_checks(named);
  if (!checks) throw UsageError("--checks: " + checks.error().message());
  if (checks.value().empty()) throw UsageError("--checks names no check");
  return std::move(checks).value();
}

bool writes_to_terminal(const std::ostream& out) {
  return &out == &std::cout && ::isatty(STDOUT_FILENO);
}

// NO_COLOR (no-color.org): present and not empty turns colour off; TERM=dumb too.
bool use_color(const std::string& mode, const std::ostream& out) {
  if (mode == "always") return true;
  if (mode == "never") return false;
  if (mode != "auto")
    throw UsageError("--color must be auto, always or never, got \"" + mode + "\"");
  const char* no_color = std::getenv("NO_COLOR");
  const char* term = std::getenv("TERM");
  return writes_to_terminal(out) && (no_color == nullptr || *no_color == '\0') &&
         !(term != nullptr && std::string_view(term) == "dumb");
}

// 80 columns, or fewer on a narrower terminal.
int text_width(const std::ostream& out) {
  winsize size{};
  if (writes_to_terminal(out) && ::ioctl(STDOUT_FILENO, TIOCGWINSZ, &size) == 0 &&
      size.ws_col > 0 && size.ws_col < 80) {
    return size.ws_col;
  }
  return 80;
}

report::Thresholds parse_thresholds(const po::variables_map& vm) {
  report::Thresholds thresholds;
  auto parse = [&vm](const char* option, const char* spelled, report::ThresholdList& into) {
    if (!vm.count(option)) return;
    for (const std::string& list : vm[option].as<std::vector<std::string>>()) {
      try {
        report::parse_threshold_list(list, into);
      } catch (const std::invalid_argument& error) {
        throw UsageError(std::string(spelled) + ": " + error.what());
      }
    }
  };
  parse("warning", "-w/--warning", thresholds.warning);
  parse("critical", "-c/--critical", thresholds.critical);
  return thresholds;
}

void add_probe_options(po::options_description& options) {
  const std::string default_checks = util::join(probes::known_checks(), ",");
  options.add_options()("cluster", po::value<std::string>()->required()->value_name("FILE"),
                        "cluster spec (JSON, see README)")(
      "checks", po::value<std::string>()->default_value(default_checks)->value_name("LIST"),
      "comma-separated checks to run: canary, connections, dns")(
      "format", po::value<std::string>()->default_value("text")->value_name("FMT"),
      "text (for people), json (schema ringwatch.report/v1; with --rounds, one compact "
      "document per line) or nagios (status line, perfdata, findings as long output)")(
      "rounds", po::value<int>()->default_value(1)->value_name("N"),
      "rounds to run; the exit code is the worst round's")(
      "interval", po::value<double>()->default_value(1.0)->value_name("S"),
      "seconds between the starts of two rounds")(
      "timeout,t", po::value<double>()->value_name("S"),
      "give up after S seconds for the whole run: print an UNKNOWN report naming the check "
      "still running and exit 3 (default: no limit; each network call has the spec's "
      "timeouts)")("vantage", po::value<std::string>()->value_name("NAME"),
                   "dns check from this one vantage point (a dns.servers[].name), e.g. when "
                   "running beside a proxy")(
      "color", po::value<std::string>()->default_value("auto")->value_name("WHEN"),
      "colour the text format: auto (only on a terminal, and not with NO_COLOR set), "
      "always, never")("verbose,v", po::bool_switch(),
                       "text format: every piece of evidence in full and the round's figures")(
      "warning,w", po::value<std::vector<std::string>>()->composing()->value_name("LIST"),
      "nagios format: WARNING when a figure breaches its range (see above); LIST is "
      "FIGURE=RANGE[,FIGURE=RANGE], figures consistency_ratio and inconsistent_reads")(
      "critical,c", po::value<std::vector<std::string>>()->composing()->value_name("LIST"),
      "nagios format: CRITICAL when a figure breaches its range; LIST as for -w")(
      "perfdata", po::value<std::string>()->default_value("cluster")->value_name("WHICH"),
      "nagios format: cluster (the cluster-level figures) or all (also the per-proxy, "
      "per-backend and per-vantage-point figures)");
}

ProbeArgs read_probe_args(const po::variables_map& vm, const std::ostream& out) {
  ProbeArgs args;
  args.cluster_path = vm["cluster"].as<std::string>();
  const auto format = report::parse_format(vm["format"].as<std::string>());
  if (!format) throw UsageError("--format must be text, json or nagios");
  args.format = *format;
  args.rounds = vm["rounds"].as<int>();
  if (args.rounds < 1 || args.rounds > 1000000) throw UsageError("--rounds must be at least 1");
  args.interval_s = vm["interval"].as<double>();
  if (!(args.interval_s >= 0 && args.interval_s <= 86400))
    throw UsageError("--interval must be 0 to 86400 seconds");
  if (vm.count("timeout")) {
    args.timeout_s = vm["timeout"].as<double>();
    if (!(*args.timeout_s > 0 && *args.timeout_s <= 1e7))
      throw UsageError("-t/--timeout must be more than 0 seconds");
  }
  if (vm.count("vantage")) args.probe_options.dns_vantage = vm["vantage"].as<std::string>();

  const bool verbose = vm["verbose"].as<bool>();
  if (verbose && args.format != report::Format::text)
    throw UsageError("-v/--verbose applies to --format text");
  const std::string perfdata = vm["perfdata"].as<std::string>();
  if (perfdata != "cluster" && perfdata != "all")
    throw UsageError("--perfdata must be cluster or all, got \"" + perfdata + "\"");
  if (args.format != report::Format::nagios &&
      (vm.count("warning") || vm.count("critical") || !vm["perfdata"].defaulted()))
    throw UsageError("-w/--warning, -c/--critical and --perfdata apply to --format nagios");

  args.render.text = {
      .color = use_color(vm["color"].as<std::string>(), out) && args.format == report::Format::text,
      .verbose = verbose,
      .width = text_width(out)};
  // With --rounds (any N), one compact document per line, so a script gets
  // the same layout whatever N it passes.
  args.render.json =
      vm["rounds"].defaulted() ? report::JsonLayout::pretty : report::JsonLayout::compact;
  args.render.nagios = {parse_thresholds(vm), perfdata == "all"};
  args.checks = split_checks(vm["checks"].as<std::string>());
  return args;
}

// --- rounds on a thread the caller may leave at its deadline -------------------

// What the rounds' thread shares with the caller. A caller that gives up at
// --timeout leaves the thread to finish its round alone (bounded by the
// spec's own deadlines) and end, so the thread owns everything it touches:
// this state, the spec and the probes.
struct Rounds {
  Rounds(spec::ClusterSpec spec_in, const ProbeArgs& args)
      : spec(std::move(spec_in)),
        probes(args.checks, args.probe_options),
        count(args.rounds),
        interval(std::chrono::duration_cast<Clock::duration>(
            std::chrono::duration<double>(args.interval_s))) {}

  const spec::ClusterSpec spec;
  probes::ProbeSet probes;
  const int count;
  const Clock::duration interval;

  std::mutex mutex;
  std::condition_variable changed;
  std::deque<report::Report> reports;  // finished rounds not printed yet
  int round = 0;                       // the latest round started, from 1
  bool in_round = false;               // its report is not out yet
  std::vector<std::string> finished;   // its checks that finished
  std::string running;                 // its check running now
  Clock::time_point round_started{};
  Clock::time_point running_since{};
  std::exception_ptr failure;  // what a round threw, for the caller to rethrow
  bool abandoned = false;      // the caller left at its deadline
};

void run_rounds(const std::shared_ptr<Rounds>& rounds) {
  Rounds& r = *rounds;
  probes::RoundProgress progress;
  progress.started = [&r](std::string_view check) {
    std::lock_guard lock(r.mutex);
    r.running = std::string(check);
    r.running_since = Clock::now();
  };
  progress.finished = [&r](std::string_view check) {
    std::lock_guard lock(r.mutex);
    r.running.clear();
    r.finished.emplace_back(check);
  };
  auto next_start = Clock::now();
  for (int round = 1; round <= r.count; ++round) {
    {
      std::unique_lock lock(r.mutex);
      r.changed.wait_until(lock, next_start, [&r] { return r.abandoned; });
      if (r.abandoned) break;
      r.round = round;
      r.in_round = true;
      r.finished.clear();
      r.round_started = Clock::now();
    }
    next_start += r.interval;
    report::Report report;
    try {
      report = r.probes.run_round(r.spec, progress);
    } catch (...) {
      std::lock_guard lock(r.mutex);
      r.failure = std::current_exception();
      break;
    }
    {
      std::lock_guard lock(r.mutex);
      r.in_round = false;
      if (r.abandoned) break;
      r.reports.push_back(std::move(report));
    }
    r.changed.notify_all();
  }
  {
    std::lock_guard lock(r.mutex);
    if (r.abandoned) --g_rounds_left_running;
  }
  r.changed.notify_all();
}

std::string seconds(double s) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%g s", s);
  return buffer;
}

double milliseconds_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

// The report of a run cut short by --timeout: every check of the unfinished
// round is UNKNOWN (the one still running first), and a diagnosis says what
// was still running. Called with the rounds' mutex held.
report::Report timeout_report(const Rounds& r, const std::vector<std::string>& checks,
                              double timeout_s, int printed) {
  report::Report report;
  report.cluster = r.spec.name;
  report.started_at = std::chrono::system_clock::now();
  const std::string at = " at the " + seconds(timeout_s) + " --timeout";
  const int round = r.in_round ? r.round : r.round + 1;
  std::vector<std::string> not_started;
  std::vector<report::CheckResult> finished;
  for (const std::string& check : checks) {
    const bool done =
        r.in_round && std::find(r.finished.begin(), r.finished.end(), check) != r.finished.end();
    if (check == r.running) {
      report.checks.push_back({check, report::Status::unknown, check + " still running" + at,
                               milliseconds_since(r.running_since)});
    } else if (done) {
      finished.push_back(
          {check, report::Status::unknown, check + " finished, but its round did not" + at, 0});
    } else {
      not_started.push_back(check);
    }
  }
  for (const std::string& check : not_started) {
    report.checks.push_back({check, report::Status::unknown,
                             check + " not started by the " + seconds(timeout_s) + " --timeout",
                             0});
  }
  report.checks.insert(report.checks.end(), finished.begin(), finished.end());

  std::string what =
      !r.running.empty() ? r.running + " still running in round " + std::to_string(round)
      : r.in_round       ? "the diagnosis of round " + std::to_string(round) + " still running"
                         : "round " + std::to_string(round) + " not started";
  std::string detail = std::to_string(printed) + " of " + std::to_string(r.count) + " rounds done";
  if (!r.running.empty() && !not_started.empty()) {
    detail += "; " + util::join_and(not_started) + " not started";
  }
  report.diagnoses.push_back(
      {report::Severity::unknown,
       {},
       "timed out after " + seconds(timeout_s) + ": " + what + " (" + detail + ")",
       {}});
  if (r.in_round) report.duration_ms = milliseconds_since(r.round_started);
  return report;
}

report::Status status_of(const report::Report& report, const ProbeArgs& args) {
  return args.format == report::Format::nagios
             ? report::nagios_status(report, args.render.nagios.thresholds)
             : report.status();
}

int print_rounds(spec::ClusterSpec spec, const ProbeArgs& args, std::ostream& out) {
  auto rounds = std::make_shared<Rounds>(std::move(spec), args);
  std::thread worker(run_rounds, rounds);
  const Clock::time_point deadline =
      args.timeout_s ? Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                          std::chrono::duration<double>(*args.timeout_s))
                     : Clock::time_point::max();
  std::optional<report::Status> worst;
  auto print = [&](const report::Report& report, int printed) {
    if (printed > 0 && args.format == report::Format::text) out << "\n";
    out << report::render(report, args.format, args.render);
    out.flush();
    const report::Status status = status_of(report, args);
    worst = worst ? report::worst(*worst, status) : status;
  };
  for (int printed = 0; printed < args.rounds; ++printed) {
    std::unique_lock lock(rounds->mutex);
    const bool ready = rounds->changed.wait_until(
        lock, deadline, [&] { return !rounds->reports.empty() || rounds->failure; });
    if (ready && rounds->reports.empty()) {
      lock.unlock();
      worker.join();
      std::rethrow_exception(rounds->failure);
    }
    if (!ready) {
      rounds->abandoned = true;
      ++g_rounds_left_running;
      const report::Report report =
          timeout_report(*rounds, rounds->probes.checks(), *args.timeout_s, printed);
      lock.unlock();
      rounds->changed.notify_all();
      worker.detach();
      print(report, printed);
      return static_cast<int>(*worst);
    }
    const report::Report report = std::move(rounds->reports.front());
    rounds->reports.pop_front();
    lock.unlock();
    print(report, printed);
  }
  worker.join();
  return static_cast<int>(worst.value_or(report::Status::unknown));
}

}  // namespace

bool work_left_running() {
  return g_rounds_left_running.load() > 0;
}

int run_probe(const Args& arguments, std::ostream& out, std::ostream& err) {
  po::options_description options("Options");
  add_probe_options(options);
  po::variables_map vm;
  if (!parse_options(arguments, options, {}, vm, out, std::string(kUsage))) return kExitOk;
  const ProbeArgs args = read_probe_args(vm, out);

  spec::ClusterSpec cluster;
  try {
    cluster = spec::load_cluster_spec(args.cluster_path);
  } catch (const spec::SpecError& error) {
    err << "ringwatch probe: " << error.what() << "\n";
    return kExitUnknown;
  }
  if (args.probe_options.dns_vantage) {
    try {
      probes::dns::vantage_points(cluster, args.probe_options.dns_vantage);
    } catch (const std::invalid_argument& error) {
      err << "ringwatch probe: " << error.what() << "\n";
      return kExitUnknown;
    }
  }
  return print_rounds(std::move(cluster), args, out);
}

}  // namespace ringwatch::cli
