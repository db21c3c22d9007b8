// `ringwatch migrate`: validate a plan, run it, and steer a running migration
// from another shell (status, pause, resume, abort, skip). The engine and the
// journal live in migration; this file is options and printing.

#include <pwd.h>
#include <signal.h>
#include <unistd.h>

#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>

#include <atomic>
#include <climits>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>

#include "lib/http/scrape_server.h"
#include "lib/util/time.h"
#include "migration/dry_run.h"
#include "migration/engine.h"
#include "migration/metrics.h"
#include "tools/cli/options.h"
#include "tools/cli/progress_screen.h"

namespace ringwatch::cli {

namespace {

namespace fs = std::filesystem;
using namespace migration;

constexpr const char* kMigrateUsage =
    "Usage: ringwatch migrate <subcommand> [options]\n\n"
    "Runs a migration plan (docs/migration.md): ordered steps per cluster, probes\n"
    "before and after each step, a pause on a failed check, a durable journal.\n\n"
    "Subcommands:\n"
    "  plan    --plan FILE [--var NAME=VALUE]...   validate and print the plan\n"
    "  run     --plan FILE --state DIR [--var NAME=VALUE]... [--vantage NAME]\n"
    "          [--log] [--interval SECONDS] [--metrics-listen HOST:PORT]\n"
    "  run     --dry-run --plan FILE [--state DIR] [--var NAME=VALUE]... [--vantage NAME]\n"
    "  status  --state DIR [--format text|json]\n"
    "  status  --state DIR --watch [--interval SECONDS]\n"
    "  pause   --state DIR [--cluster C]\n"
    "  resume  --state DIR [--cluster C]\n"
    "  abort   --state DIR [--cluster C]\n"
    "  skip    --state DIR --cluster C --step S --reason TEXT\n"
    "  approve --state DIR --cluster C --step S [--by NAME]\n"
    "  repair  --state DIR --truncate-after N --reason TEXT [--by NAME]\n"
    "          --state DIR --upgrade [--by NAME]   (a damaged or old journal)\n\n"
    "Exit codes: run: 0 every cluster finished, 2 some aborted, 3 stopped or bad\n"
    "input; run --dry-run: 0 nothing would block, 1 something would, 3 bad input;\n"
    "status: 0 nothing paused or aborted, 1 some cluster paused, 2 some aborted,\n"
    "3 no journal or a damaged one; plan, repair and the operator commands:\n"
    "0 done, 3 refused.\n";

Engine* running_engine = nullptr;

void on_stop_signal(int) {
  if (running_engine != nullptr) running_engine->stop();
}

Vars parse_vars(const po::variables_map& vm) {
  Vars vars;
  char self[PATH_MAX];
  const ssize_t length = ::readlink("/proc/self/exe", self, sizeof self - 1);
  if (length > 0) vars["ringwatch"] = std::string(self, static_cast<std::size_t>(length));
  if (!vm.count("var")) return vars;
  for (const std::string& item : vm["var"].as<std::vector<std::string>>()) {
    const auto equals = item.find('=');
    const std::string name = item.substr(0, equals);
    bool valid = equals != std::string::npos && !name.empty() &&
                 !std::isdigit(static_cast<unsigned char>(name[0]));
    for (const char c : name)
      valid = valid && (std::isalnum(static_cast<unsigned char>(c)) || c == '_');
    if (!valid)
      throw UsageError("--var wants NAME=VALUE (NAME of letters, digits, _), got \"" + item + "\"");
    vars[name] = item.substr(equals + 1);
  }
  return vars;
}

std::string engine_holder(const fs::path& state_dir) {
  std::ifstream in(state_dir / "lock");
  std::string line;
  if (!std::getline(in, line)) return {};
  int pid = 0;
  if (std::sscanf(line.c_str(), "pid %d", &pid) != 1 || pid <= 0) return {};
  if (::kill(pid, 0) != 0 && errno == ESRCH) return {};
  return line.find("migrate run") == std::string::npos ? std::string() : line;
}

const char* outcome_name(StepProgress::Outcome outcome) {
  switch (outcome) {
    case StepProgress::Outcome::done:
      return "done";
    case StepProgress::Outcome::skipped:
      return "skipped";
    case StepProgress::Outcome::open:
      break;
  }
  return "open";
}

std::string position(const ClusterProgress& cluster) {
  const int total = static_cast<int>(cluster.step_names.size());
  if (cluster.step >= total) return "the end (" + std::to_string(total) + " steps)";
  return "step " + std::to_string(cluster.step + 1) + "/" + std::to_string(total) + " " +
         cluster.step_names[static_cast<std::size_t>(cluster.step)];
}

void print_status_text(const fs::path& dir, const JournalState& state, const std::string& holder,
                       std::ostream& out) {
  out << "migration in " << dir.string() << " (plan " << state.plan << ", " << state.runs << " run"
      << (state.runs == 1 ? "" : "s") << "); "
      << (holder.empty() ? "no engine is running" : "engine: " + holder) << "\n";
  for (const auto& name : state.cluster_order) {
    const ClusterProgress& cluster = *state.find(name);
    out << "\ncluster " << name << ": " << to_string(cluster.phase);
    if (cluster.phase == Phase::paused) {
      out << " (" << to_string(cluster.reason) << ", resumes to " << to_string(cluster.resume_to)
          << ")";
    }
    out << " at " << position(cluster) << " since " << util::format_rfc3339_ms(cluster.since)
        << "\n";
    if (cluster.phase == Phase::awaiting_approval) {
      out << "  waits for an operator's approval of " << position(cluster) << " since "
          << util::format_rfc3339_ms(cluster.since) << ": ringwatch migrate approve --state "
          << dir.string() << " --cluster " << name << " --step "
          << cluster.step_names[static_cast<std::size_t>(cluster.step)] << " [--by NAME]\n";
    } else if (!cluster.detail.empty()) {
      out << "  " << cluster.detail << "\n";
    }
    if (!cluster.diagnosis.empty()) out << "  diagnosis: " << cluster.diagnosis << "\n";
    if (cluster.pause_requested) out << "  pause requested (taken at the next boundary)\n";
    if (cluster.abort_requested) out << "  abort requested (taken at the next boundary)\n";
    if (cluster.resume_requested) out << "  resume requested\n";
    for (const auto& [check, observed] : cluster.observed) {
      out << "  observe " << check << ": would have paused " << observed.would_pause << " of "
          << observed.rounds << " time" << (observed.rounds == 1 ? "" : "s");
      if (!observed.last_failure.empty()) out << " (last: " << observed.last_failure << ")";
      out << "\n";
    }
    for (std::size_t i = 0; i < cluster.steps.size(); ++i) {
      const StepProgress& step = cluster.steps[i];
      out << "  " << (static_cast<int>(i) == cluster.step && !cluster.terminal() ? "> " : "  ")
          << i + 1 << ". " << cluster.step_names[i] << ": " << outcome_name(step.outcome);
      if (step.attempts > 0)
        out << ", " << step.attempts << " attempt" << (step.attempts == 1 ? "" : "s");
      if (step.in_flight) out << ", attempt running or interrupted";
      if (step.outcome == StepProgress::Outcome::skipped) out << " (" << step.detail << ")";
      if (step.approved) {
        out << ", approved by " << step.approved_by << " at "
            << util::format_rfc3339_ms(step.approved_at);
      }
      out << "\n";
    }
  }
}

void print_status_json(const fs::path& dir, const JournalState& state, const std::string& holder,
                       std::ostream& out) {
  rapidjson::StringBuffer buffer;
  rapidjson::PrettyWriter<rapidjson::StringBuffer> json(buffer);
  json.StartObject();
  json.Key("schema");
  json.String("ringwatch.migration-status/v1");
  json.Key("state_dir");
  json.String(dir.string());
  json.Key("plan");
  json.String(state.plan);
  json.Key("runs");
  json.Int(state.runs);
  json.Key("engine_running");
  json.Bool(!holder.empty());
  if (!holder.empty()) {
    json.Key("engine");
    json.String(holder);
  }
  json.Key("clusters");
  json.StartArray();
  for (const auto& name : state.cluster_order) {
    const ClusterProgress& cluster = *state.find(name);
    json.StartObject();
    json.Key("name");
    json.String(name);
    json.Key("phase");
    json.String(to_string(cluster.phase));
    // Counted from 1, as the text's "step i/N" (docs/migration.md, "Step numbers").
    const bool past_the_end = cluster.step >= static_cast<int>(cluster.step_names.size());
    json.Key("step");
    if (past_the_end) {
      json.Null();
    } else {
      json.Int(cluster.step + 1);
    }
    json.Key("steps_total");
    json.Int(static_cast<int>(cluster.step_names.size()));
    if (!past_the_end) {
      json.Key("step_name");
      json.String(cluster.step_names[static_cast<std::size_t>(cluster.step)]);
    }
    if (cluster.phase == Phase::paused) {
      json.Key("reason");
      json.String(to_string(cluster.reason));
      json.Key("resume_to");
      json.String(to_string(cluster.resume_to));
    }
    json.Key("since");
    json.String(util::format_rfc3339_ms(cluster.since));
    json.Key("detail");
    json.String(cluster.detail);
    json.Key("diagnosis");
    json.String(cluster.diagnosis);
    json.Key("pause_requested");
    json.Bool(cluster.pause_requested);
    json.Key("abort_requested");
    json.Bool(cluster.abort_requested);
    json.Key("observed");
    json.StartArray();
    for (const auto& [check, observed] : cluster.observed) {
      json.StartObject();
      json.Key("check");
      json.String(check);
      json.Key("evaluations");
      json.Int(observed.rounds);
      json.Key("would_have_paused");
      json.Int(observed.would_pause);
      json.Key("last_failure");
      json.String(observed.last_failure);
      json.EndObject();
    }
    json.EndArray();
    json.Key("steps");
    json.StartArray();
    for (std::size_t i = 0; i < cluster.steps.size(); ++i) {
      const StepProgress& step = cluster.steps[i];
      json.StartObject();
      json.Key("name");
      json.String(cluster.step_names[i]);
      json.Key("outcome");
      json.String(outcome_name(step.outcome));
      json.Key("attempts");
      json.Int(step.attempts);
      json.Key("in_flight");
      json.Bool(step.in_flight);
      json.Key("detail");
      json.String(step.detail);
      if (step.approved) {
        json.Key("approved_by");
        json.String(step.approved_by);
        json.Key("approved_at");
        json.String(util::format_rfc3339_ms(step.approved_at));
      }
      json.EndObject();
    }
    json.EndArray();
    json.EndObject();
  }
  json.EndArray();
  json.EndObject();
  out << buffer.GetString() << "\n";
}

// Who runs this command, for the journal: the user behind sudo, else this one.
std::string login_name() {
  if (const char* sudo_user = std::getenv("SUDO_USER"); sudo_user != nullptr && *sudo_user) {
    return sudo_user;
  }
  if (const passwd* entry = ::getpwuid(::getuid()); entry != nullptr) return entry->pw_name;
  return "uid " + std::to_string(::getuid());
}

int status_exit_code(const JournalState& state) {
  int code = kExitOk;
  for (const auto& [name, cluster] : state.clusters) {
    if (cluster.phase == Phase::aborted) return kExitCritical;
    if (cluster.phase == Phase::paused || cluster.phase == Phase::awaiting_approval)
      code = kExitWarning;
  }
  return code;
}

// `migrate run`'s output: the live view (a terminal without --log), or the
// engine's transition lines.
struct RunDisplay {
  bool live_view = false;
  std::chrono::milliseconds interval{1000};
};

// `--metrics-listen`: the journal's metrics (migration/metrics.h), served at
// /metrics from before the engine starts; the counters are the journal's, so
// a restarted engine serves what the migration did so far, not since then.
struct ServedMetrics {
  std::shared_ptr<MigrationMetrics> metrics;
  std::unique_ptr<http::ScrapeServer> server;
};

// `migrate run`: the engine, until every cluster ended or a signal stops it.
int run_engine(Plan plan, const fs::path& state_dir, const std::string& vantage,
               const RunDisplay& display, const std::optional<http::ListenAddress>& metrics_listen,
               std::ostream& out, std::ostream& err) {
  EngineOptions engine_options;
  engine_options.state_dir = state_dir;
  engine_options.log = &out;
  // Made before the engine, which takes its log stream; started after it.
  std::unique_ptr<ProgressDisplay> view;
  if (display.live_view) {
    view = std::make_unique<ProgressDisplay>(state_dir, display.interval, out);
    engine_options.log = &view->log();
  }
  engine_options.dns_vantage = vantage;
  ServedMetrics served;
  const std::string plan_label = MigrationMetrics::plan_label(plan.source);
  if (metrics_listen) {
    auto metrics = std::make_shared<MigrationMetrics>(plan_label);
    engine_options.on_record = [metrics](const Record& record) { metrics->observe(record); };
    try {  // listening first: a port in use fails before the journal is touched
      served.server = std::make_unique<http::ScrapeServer>(
          *metrics_listen, [metrics] { return metrics->serialize(); });
    } catch (const std::runtime_error& error) {
      err << "ringwatch migrate run: --metrics-listen: " << error.what() << "\n";
      return kExitUnknown;
    }
    served.metrics = std::move(metrics);
  }
  std::unique_ptr<Engine> engine;
  try {
    engine = std::make_unique<Engine>(std::move(plan), engine_options);
    // The engine holds the lock and has not started: the journal is whole.
    if (served.metrics) served.metrics->rebuild(read_journal(state_dir));
  } catch (const std::exception& error) {
    err << "ringwatch migrate run: " << error.what() << "\n";
    return kExitUnknown;
  }
  if (served.server) {
    *engine_options.log << util::format_rfc3339_ms(std::chrono::system_clock::now())
                        << " metrics at http://" << served.server->address().to_string()
                        << "/metrics (plan=\"" << plan_label << "\")" << std::endl;
  }
  if (view) view->start();
  running_engine = engine.get();
  struct ClearRunningEngine {
    ~ClearRunningEngine() { running_engine = nullptr; }
  } clear_on_exit;
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  ::sigemptyset(&action.sa_mask);
  ::sigaction(SIGINT, &action, nullptr);
  ::sigaction(SIGTERM, &action, nullptr);
  // A closed stdout (`| head`) must not kill the engine mid-step.
  ::signal(SIGPIPE, SIG_IGN);
  const RunSummary summary = engine->run();
  if (view) view->finish();
  out << "migration " << (summary.stopped ? "stopped" : "ended") << ":";
  for (const auto& [name, phase] : summary.clusters)
    out << " " << name << " " << to_string(phase) << ";";
  out << " journal in " << engine_options.state_dir.string() << "\n";
  return summary.exit_code();
}

// --interval: 0.1 to 3600 seconds.
std::chrono::milliseconds watch_interval(const po::variables_map& vm) {
  const double seconds = vm["interval"].as<double>();
  if (!(seconds >= 0.1 && seconds <= 3600)) {
    std::ostringstream given;
    given << seconds;
    throw UsageError("--interval must be 0.1 to 3600 seconds, got " + given.str());
  }
  return std::chrono::milliseconds(static_cast<long long>(seconds * 1000));
}

// `migrate run --dry-run`: 0 nothing would block, 1 something would, 3 a
// damaged journal in the (read-only) state directory.
int run_dry(const Plan& plan, const fs::path& state_dir, const std::string& vantage,
            std::ostream& out, std::ostream& err) {
  DryRunOptions options;
  options.state_dir = state_dir;
  options.dns_vantage = vantage;
  try {
    const DryRunResult result = dry_run(plan, options);
    out << result.text;
    return result.would_block > 0 ? kExitWarning : kExitOk;
  } catch (const JournalError& damaged) {
    err << "ringwatch migrate run: " << damaged.what() << "\n";
    return kExitUnknown;
  }
}

}  // namespace

int run_migrate(const Args& args, std::ostream& out, std::ostream& err) {
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    (args.empty() ? err : out) << kMigrateUsage;
    return args.empty() ? kExitUnknown : kExitOk;
  }
  const std::string sub = args[0];
  const Args rest(args.begin() + 1, args.end());
  po::options_description options("Options");
  options.add_options()("plan", po::value<std::string>()->value_name("FILE"), "the plan (JSON)")(
      "var", po::value<std::vector<std::string>>()->value_name("NAME=VALUE"),
      "a value for ${NAME} in the plan (repeatable); ${ringwatch} is this program")(
      "state", po::value<std::string>()->value_name("DIR"), "the state directory (journal, logs)")(
      "dry-run", po::bool_switch(),
      "run: check the plan against the live clusters; run nothing, write nothing")(
      "vantage", po::value<std::string>()->value_name("NAME"),
      "run: the dns check from this one vantage point only")(
      "metrics-listen", po::value<std::string>()->value_name("HOST:PORT"),
      "run: serve Prometheus metrics at http://HOST:PORT/metrics (port 0: any free one)")(
      "format", po::value<std::string>()->default_value("text")->value_name("FMT"),
      "status: text or json")("watch", po::bool_switch(),
                              "status: show the live view until every cluster ended")(
      "interval", po::value<double>()->default_value(1.0)->value_name("SECONDS"),
      "status --watch, run: how often the live view is redrawn")(
      "log", po::bool_switch(), "run: the transition lines, also on a terminal")(
      "cluster", po::value<std::string>()->value_name("C"), "the cluster (default: every cluster)")(
      "step", po::value<std::string>()->value_name("S"), "skip, approve: the step")(
      "reason", po::value<std::string>()->value_name("TEXT"), "why (recorded in the journal)")(
      "truncate-after", po::value<std::uint64_t>()->value_name("N"),
      "repair: keep records 1 to N, cut the rest")("upgrade", po::bool_switch(),
                                                   "repair: convert a version 1 journal")(
      "by", po::value<std::string>()->value_name("NAME"),
      "repair, approve: who (default: the login name)");
  po::variables_map vm;
  if (!parse_options(rest, options, {}, vm, out,
                     std::string("ringwatch migrate ") + sub + "\n\n" + kMigrateUsage)) {
    return kExitOk;
  }
  auto need = [&](const char* name) {
    if (!vm.count(name)) throw UsageError(sub + ": missing --" + name);
    return vm[name].as<std::string>();
  };

  if (sub == "plan" || sub == "run") {
    const Vars vars = parse_vars(vm);
    Plan plan;
    try {
      plan = load_plan(need("plan"), vars);
    } catch (const spec::SpecError& error) {
      err << "ringwatch migrate " << sub << ": " << error.what() << "\n";
      return kExitUnknown;
    }
    if (sub == "plan") {
      out << describe_plan(plan, std::chrono::system_clock::now());
      return kExitOk;
    }
    const std::string vantage = vm.count("vantage") ? vm["vantage"].as<std::string>() : "";
    std::optional<http::ListenAddress> metrics_listen;
    if (vm.count("metrics-listen")) {
      const std::string text = vm["metrics-listen"].as<std::string>();
      metrics_listen = http::parse_listen_address(text);
      if (!metrics_listen) {
        throw UsageError(
            "--metrics-listen wants HOST:PORT with an IP address (127.0.0.1:9471, "
            "[::1]:0), got \"" +
            text + "\"");
      }
      if (vm["dry-run"].as<bool>())
        throw UsageError("--metrics-listen is for a real run, not --dry-run");
    }
    if (vm["dry-run"].as<bool>()) {
      return run_dry(plan, vm.count("state") ? vm["state"].as<std::string>() : "", vantage, out,
                     err);
    }
    RunDisplay display;
    display.interval = watch_interval(vm);
    display.live_view = !vm["log"].as<bool>() && is_terminal(out);
    return run_engine(std::move(plan), need("state"), vantage, display, metrics_listen, out, err);
  }

  const fs::path state_dir = need("state");
  if (sub == "status") {
    const std::string format = vm["format"].as<std::string>();
    if (format != "text" && format != "json") throw UsageError("--format must be text or json");
    const fs::path journal = state_dir / "journal.jsonl";
    std::error_code error;
    if (!fs::exists(journal, error) || fs::file_size(journal, error) == 0) {
      err << "ringwatch migrate status: no migration journal in " << state_dir.string()
          << (fs::exists(journal, error) ? " (" + journal.string() + " is empty)" : "") << "\n";
      return kExitUnknown;
    }
    JournalState state;
    try {
      state = replay(read_journal(state_dir));
    } catch (const JournalError& damaged) {
      err << "ringwatch migrate status: " << damaged.what() << "\n";
      return kExitUnknown;
    }
    if (vm["watch"].as<bool>()) {
      if (format != "text") throw UsageError("--watch shows text; --format json is for one status");
      WatchOptions watch;
      watch.state_dir = state_dir;
      watch.interval = watch_interval(vm);
      watch.terminal = is_terminal(out);
      watch.exit_code = status_exit_code;
      watch.engine = [state_dir] { return engine_holder(state_dir); };
      return watch_migration(watch, out, err);
    }
    const std::string holder = engine_holder(state_dir);
    if (format == "json") {
      print_status_json(state_dir, state, holder, out);
    } else {
      print_status_text(state_dir, state, holder, out);
    }
    return status_exit_code(state);
  }
  if (sub == "pause" || sub == "resume" || sub == "abort" || sub == "skip" || sub == "approve") {
    Command command;
    command.id = make_command_id();
    command.command = sub;
    if (vm.count("cluster")) command.cluster = vm["cluster"].as<std::string>();
    if (vm.count("reason")) command.reason = vm["reason"].as<std::string>();
    if (sub == "skip") {
      command.cluster = need("cluster");
      command.step = need("step");
      command.reason = need("reason");
    }
    if (sub == "approve") {
      command.cluster = need("cluster");
      command.step = need("step");
      command.by = vm.count("by") ? vm["by"].as<std::string>() : login_name();
    }
    try {
      out << submit_command(state_dir, command);
    } catch (const std::runtime_error& error) {
      err << "ringwatch migrate " << sub << ": " << error.what() << "\n";
      return kExitUnknown;
    }
    return kExitOk;
  }
  if (sub == "repair") {
    RepairRequest request;
    if (vm.count("truncate-after"))
      request.truncate_after = vm["truncate-after"].as<std::uint64_t>();
    request.upgrade = vm["upgrade"].as<bool>();
    request.by = vm.count("by") ? vm["by"].as<std::string>() : login_name();
    if (vm.count("reason")) {
      request.reason = vm["reason"].as<std::string>();
    } else if (request.upgrade) {
      request.reason = "upgrade to journal version " + std::to_string(kJournalVersion);
    } else {
      throw UsageError("repair: missing --reason");
    }
    try {
      out << repair_journal(state_dir, request);
    } catch (const std::runtime_error& refused) {
      err << "ringwatch migrate repair: " << refused.what() << "\n";
      return kExitUnknown;
    }
    return kExitOk;
  }
  throw UsageError("unknown subcommand \"" + sub +
                   "\" (plan, run, status, pause, resume, abort, skip, approve or repair)");
}

}  // namespace ringwatch::cli
