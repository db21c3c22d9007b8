#include "daemon/daemon.h"

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/program_options.hpp>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <iostream>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "alerts/metrics.h"
#include "daemon/alerting.h"
#include "daemon/api.h"
#include "daemon/http_server.h"
#include "daemon/scheduler.h"
#include "daemon/web_config.h"
#include "lib/util/text.h"
#include "lib/util/version.h"
#include "probes/registry.h"

namespace ringwatch::daemon {

namespace asio = boost::asio;
namespace po = boost::program_options;

FleetConfig ConfigSource::load() const {
  if (fleet_path) return load_fleet(*fleet_path);
  FleetConfig fleet;
  fleet.listen = listen;
  fleet.alerts = alerts;
  for (const auto& path : spec_paths) {
    ClusterConfig cluster;
    cluster.spec = spec::load_cluster_spec(path);
    cluster.spec_path = path;
    cluster.interval = interval;
    cluster.jitter = jitter ? *jitter : std::min(std::chrono::milliseconds(1000), interval / 10);
    cluster.checks = checks.empty() ? probes::known_checks() : checks;
    if (fleet.find(cluster.name())) {
      throw spec::SpecError(path, "/name",
                            "duplicate cluster \"" + cluster.name() + "\" (given twice)");
    }
    fleet.clusters.push_back(std::move(cluster));
  }
  return fleet;
}

struct Daemon::Impl {
  Impl(DaemonOptions o, std::ostream& log_stream)
      : options(std::move(o)),
        log(std::make_shared<Logger>(log_stream, options.log_level)),
        fleet(options.source.load()),
        metrics(std::make_shared<alerts::Metrics>(kVersion)),
        alerting(std::make_shared<Alerting>(fleet.alerts, log, metrics)),
        scheduler(io, log, metrics, alerting),
        api(scheduler, metrics,
            ApiOptions{[this] { return do_reload(); },
                       std::chrono::steady_clock::now() + options.ready_timeout}),
        signals(io),
        resend_timer(io) {
    const auto listen = parse_listen(fleet.listen);
    if (!listen) throw std::runtime_error("cannot listen on " + fleet.listen + ": bad address");
    WebConfig web;
    if (options.web_config_path) web = load_web_config(*options.web_config_path);
    auth = std::make_unique<BasicAuth>(web.basic_auth_users, web.healthz_without_auth);
    HttpServerOptions server_options;
    server_options.tls = web.tls;
    try {
      server = std::make_unique<HttpServer>(
          io, listen->host, listen->port,
          [this](const HttpRequest& request, Responder respond) {
            log->debug("http_request", {{"method", request.method}, {"target", request.target}});
            auth->check(request, [this, request, respond](BasicAuth::Verdict verdict) {
              if (verdict == BasicAuth::Verdict::denied) return respond(BasicAuth::challenge());
              if (verdict == BasicAuth::Verdict::busy) return respond(BasicAuth::busy());
              // The API runs on the io thread; a bcrypt check ends on auth's.
              asio::post(io, [this, request, respond] { api.handle(request, respond); });
            });
          },
          server_options);
    } catch (const TlsSetupError& error) {
      throw WebConfigError(*options.web_config_path + ": tls_server_config." + error.field() +
                           ": " + error.what());
    }
    log->info("listening", {{"address", listen->host + ":" + std::to_string(server->port())},
                            {"tls", web.tls ? "true" : "false"},
                            {"basic_auth", web.basic_auth_users.empty() ? "false" : "true"}});
    scheduler.apply(fleet.clusters);
  }

  void arm_resends() {
    resend_timer.expires_after(std::chrono::seconds(15));
    resend_timer.async_wait([this](const boost::system::error_code& error) {
      if (error || stopping) return;
      alerting->resend_due();
      arm_resends();
    });
  }

  void wait_signals() {
    signals.async_wait([this](const boost::system::error_code& error, int signal) {
      if (error) return;
      if (signal == SIGHUP) {
        do_reload();
        wait_signals();
      } else {
        log->info("signal", {{"signal", signal == SIGTERM ? "SIGTERM" : "SIGINT"}});
        do_stop();
      }
    });
  }

  // SIGHUP and POST /-/reload; the error, or nullopt when the new configuration runs.
  std::optional<std::string> do_reload() {
    if (stopping) return std::string("ringwatchd is stopping");
    try {
      auto next = options.source.load();
      alerting->reconfigure(next.alerts);
      if (next.listen != fleet.listen) {
        log->warn("listen_unchanged", {{"reason", "the listen address changes only on restart"},
                                       {"listen", fleet.listen}});
        next.listen = fleet.listen;
      }
      scheduler.apply(next.clusters);
      fleet = std::move(next);
      metrics->config_reload(true);
      log->info("reload",
                {{"outcome", "success"}, {"clusters", std::to_string(fleet.clusters.size())}});
      return std::nullopt;
    } catch (const std::exception& error) {
      metrics->config_reload(false);
      log->error("reload", {{"outcome", "failure"}, {"error", error.what()}});
      return std::string(error.what());
    }
  }

  void do_stop() {
    if (stopping) return;
    stopping = true;
    log->info("stopping", {});
    boost::system::error_code ignored;
    signals.cancel(ignored);
    resend_timer.cancel();
    server->stop();
    scheduler.stop();
  }

  DaemonOptions options;
  asio::io_context io;
  std::shared_ptr<Logger> log;
  FleetConfig fleet;
  std::shared_ptr<alerts::Metrics> metrics;
  std::shared_ptr<Alerting> alerting;
  Scheduler scheduler;
  Api api;
  asio::signal_set signals;
  asio::steady_timer resend_timer;
  std::unique_ptr<BasicAuth> auth;
  std::unique_ptr<HttpServer> server;
  std::uint16_t bound_port = 0;
  bool stopping = false;
};

Daemon::Daemon(DaemonOptions options, std::ostream& log_stream)
    : impl_(std::make_unique<Impl>(std::move(options), log_stream)) {
  impl_->bound_port = impl_->server->port();
}

Daemon::~Daemon() {
  impl_->do_stop();
  impl_->scheduler.join(std::chrono::milliseconds(0));
}

std::uint16_t Daemon::port() const {
  return impl_->bound_port;
}

int Daemon::run(bool* all_joined) {
  auto& impl = *impl_;
  if (impl.options.handle_signals) {
    impl.signals.add(SIGHUP);
    impl.signals.add(SIGTERM);
    impl.signals.add(SIGINT);
    impl.wait_signals();
  }
  impl.arm_resends();
  impl.io.run();
  const bool joined = impl.scheduler.join(impl.options.shutdown_grace);
  impl.alerting->flush(std::chrono::milliseconds(1000));
  impl.log->info("stopped", {{"rounds_abandoned", joined ? "false" : "true"}});
  if (all_joined) *all_joined = joined;
  return kExitOk;
}

void Daemon::stop() {
  asio::post(impl_->io, [impl = impl_.get()] { impl->do_stop(); });
}

void Daemon::reload() {
  asio::post(impl_->io, [impl = impl_.get()] { impl->do_reload(); });
}

namespace {

constexpr const char* kUsage =
    "Usage: ringwatchd --fleet FILE [options]\n"
    "   or: ringwatchd --cluster SPEC [--cluster SPEC]... [--interval S] [options]\n"
    "\n"
    "Probes a fleet of memcached clusters on a schedule and serves /metrics, /healthz\n"
    "and /v1/clusters. SIGHUP reloads the configuration; SIGTERM stops.\n";

std::chrono::milliseconds seconds_option(double seconds, const char* name) {
  if (!std::isfinite(seconds) || seconds < 0.1 || seconds > 86400) {
    throw po::error(std::string("--") + name + ": expected a number of seconds from 0.1 to 86400");
  }
  return std::chrono::milliseconds(static_cast<std::int64_t>(std::llround(seconds * 1000)));
}

}  // namespace

int run_ringwatchd(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  const std::string checks_help =
      "checks with --cluster, comma-separated: " + util::join(probes::known_checks(), "|") +
      " (default: all)";
  // Options longer than the first column go on a line of their own, so every
  // description is two spaces or more from its option (help2man, man/).
  po::options_description described("Options", 80, 54);
  // clang-format off
  described.add_options()
    ("help,h", "print this help")
    ("version", "print the version and exit")
    ("fleet", po::value<std::string>()->value_name("FILE"), "the fleet file (JSON)")
    ("cluster", po::value<std::vector<std::string>>()->value_name("SPEC"), "a cluster spec file (repeatable; no --fleet)")
    ("interval", po::value<double>()->value_name("S"), "seconds between rounds with --cluster (default 10)")
    ("jitter", po::value<double>()->value_name("S"), "up to this many seconds of delay per round (default min(1, interval/10))")
    ("checks", po::value<std::string>()->value_name("LIST"), checks_help.c_str())
    ("alertmanager", po::value<std::string>()->value_name("URL"), "Alertmanager base URL with --cluster")
    ("webhook", po::value<std::string>()->value_name("URL"), "webhook URL with --cluster")
    ("listen", po::value<std::string>()->value_name("ADDR"), "address:port to serve HTTP on (default 127.0.0.1:9470)")
    ("web-config", po::value<std::string>()->value_name("FILE"), "TLS and basic auth (exporter-toolkit's YAML format)")
    ("log-level", po::value<std::string>()->default_value("info")->value_name("LEVEL"), "debug|info|warn|error")
    ("shutdown-grace", po::value<double>()->default_value(10)->value_name("S"), "seconds rounds in flight get at stop");
  // clang-format on
  DaemonOptions options;
  try {
    po::variables_map vm;
    po::store(po::command_line_parser(args).options(described).run(), vm);
    po::notify(vm);
    if (vm.count("help")) {
      out << kUsage << "\n" << described;
      return kExitOk;
    }
    if (vm.count("version")) {
      out << "ringwatchd " << kVersion << "\n";
      return kExitOk;
    }
    auto& source = options.source;
    if (vm.count("fleet")) {
      if (vm.count("cluster")) throw po::error("--fleet and --cluster exclude each other");
      for (const char* flag : {"interval", "jitter", "checks", "alertmanager", "webhook"}) {
        if (vm.count(flag)) {
          throw po::error(std::string("--") + flag + " is set in the fleet file with --fleet");
        }
      }
      source.fleet_path = vm["fleet"].as<std::string>();
    } else if (vm.count("cluster")) {
      source.spec_paths = vm["cluster"].as<std::vector<std::string>>();
    } else {
      throw po::error("give --fleet FILE or at least one --cluster SPEC");
    }
    if (vm.count("interval"))
      source.interval = seconds_option(vm["interval"].as<double>(), "interval");
    if (vm.count("jitter")) {
      const double jitter = vm["jitter"].as<double>();
      if (!(jitter >= 0) || jitter * 1000 > static_cast<double>(source.interval.count())) {
        throw po::error("--jitter: expected a number of seconds from 0 to the interval");
      }
      source.jitter = std::chrono::milliseconds(std::llround(jitter * 1000));
    }
    if (vm.count("checks")) {
      std::string text = vm["checks"].as<std::string>();
      std::vector<std::string> wanted;
      for (std::size_t start = 0; start <= text.size();) {
        const auto comma = std::min(text.find(',', start), text.size());
        wanted.push_back(text.substr(start, comma - start));
        start = comma + 1;
      }
      auto checks = probes::normalize_checks(wanted);
      if (!checks) throw po::error("--checks: " + checks.error().message());
      source.checks = std::move(checks).value();
    }
    if (vm.count("alertmanager")) source.alerts.alertmanager = vm["alertmanager"].as<std::string>();
    if (vm.count("webhook")) source.alerts.webhook = vm["webhook"].as<std::string>();
    if (vm.count("listen")) {
      if (source.fleet_path) throw po::error("--listen is set in the fleet file with --fleet");
      source.listen = vm["listen"].as<std::string>();
      if (!parse_listen(source.listen)) {
        throw po::error("--listen: expected an IP address literal and port like 127.0.0.1:9470");
      }
    }
    if (vm.count("web-config")) options.web_config_path = vm["web-config"].as<std::string>();
    const auto level = parse_log_level(vm["log-level"].as<std::string>());
    if (!level) throw po::error("--log-level: expected debug, info, warn or error");
    options.log_level = *level;
    const double grace = vm["shutdown-grace"].as<double>();
    if (!(grace >= 0 && grace <= 3600)) {
      throw po::error("--shutdown-grace: expected a number of seconds from 0 to 3600");
    }
    options.shutdown_grace = std::chrono::milliseconds(std::llround(grace * 1000));
  } catch (const po::error& error) {
    err << "ringwatchd: " << error.what() << "\nTry 'ringwatchd --help'.\n";
    return kExitUnknown;
  }

  std::unique_ptr<Daemon> daemon;
  try {
    daemon = std::make_unique<Daemon>(options, err);
  } catch (const std::exception& error) {
    err << "ringwatchd: " << error.what() << "\n";
    return kExitUnknown;
  }
  bool joined = true;
  const int code = daemon->run(&joined);
  if (!joined) {
    // A round is still blocked on a deadline in a detached worker: leave
    // without running destructors under it.
    err << std::flush;
    std::_Exit(code);
  }
  return code;
}

int run_ringwatchd(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
#ifdef __GLIBC__
  // Rounds run on many short-lived reads across the probes' worker threads,
  // and glibc gives each thread its own arena (up to 8 per core) that keeps
  // what it freed. Measured on the 1000x50 lab (README, daemon_bench): peak
  // RSS 219 MiB with the default, 151 MiB with 2 arenas, same CPU. An
  // operator's MALLOC_ARENA_MAX still wins.
  if (std::getenv("MALLOC_ARENA_MAX") == nullptr) mallopt(M_ARENA_MAX, 2);
#endif
  return run_ringwatchd(std::vector<std::string>(argv + 1, argv + argc), std::cout, std::cerr);
}

}  // namespace ringwatch::daemon
