#pragma once
// ringwatchd: probes a fleet of clusters on a schedule (scheduler.h), serves
// /metrics, /healthz and the JSON API (api.h) on one HTTP server, and pushes
// alerts (alerting.h). main.cpp only calls run_ringwatchd().
//
// Signals (when DaemonOptions::handle_signals): SIGHUP reloads the
// configuration (the fleet file, or the --cluster spec files); a bad one is
// logged (event=reload outcome=failure) and counted
// (ringwatch_config_reloads_total{outcome="failure"}) and the running config
// stays. SIGTERM/SIGINT stop: timers stop, the listener and connections close,
// rounds in flight get `shutdown_grace` to finish (each is bounded by its
// spec's deadlines) and are abandoned after it; run() then returns 0.
//
// Exit codes of run_ringwatchd: 0 after a clean stop, 3 for a bad fleet file,
// spec, web config, usage, or a listen address that cannot be bound.
//
// Thread-safety: Daemon's constructor and run() on one thread; port() after
// construction from any thread; stop() and reload() from any thread.

#include <chrono>
#include <cstdint>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "daemon/fleet.h"
#include "daemon/log.h"
#include "lib/util/exit_code.h"

namespace ringwatch::daemon {

// Where the configuration comes from; load() reads it (again, on SIGHUP).
struct ConfigSource {
  std::optional<std::string> fleet_path{};  // --fleet FILE
  // Quick start (no fleet file): --cluster SPEC... with these settings.
  std::vector<std::string> spec_paths{};
  std::chrono::milliseconds interval{10000};
  std::optional<std::chrono::milliseconds> jitter{};  // default: min(1 s, interval / 10)
  std::vector<std::string> checks{};                  // empty: all
  std::string listen = "127.0.0.1:9470";
  AlertsConfig alerts{};
  // Throws spec::SpecError (file, pointer, expectation).
  FleetConfig load() const;
};

struct DaemonOptions {
  ConfigSource source{};
  // --web-config FILE: TLS and basic authentication (web_config.h); read at start.
  std::optional<std::string> web_config_path{};
  LogLevel log_level = LogLevel::info;
  std::chrono::milliseconds shutdown_grace{10000};
  // /-/ready answers 200 after this long even if a cluster has not finished a round.
  std::chrono::milliseconds ready_timeout{60000};
  bool handle_signals = true;
};

class Daemon {
 public:
  // Loads the configuration and binds the listener. Throws spec::SpecError
  // (bad configuration), std::invalid_argument (bad sink URL) or
  // std::runtime_error (cannot listen).
  Daemon(DaemonOptions options, std::ostream& log_stream);
  ~Daemon();
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  std::uint16_t port() const;
  // Runs until stop() or SIGTERM/SIGINT; returns 0. Sets *all_joined (if
  // given) to whether every round in flight finished within shutdown_grace.
  int run(bool* all_joined = nullptr);
  void stop();
  void reload();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The program: parses flags (--help), runs the daemon, returns the exit code.
int run_ringwatchd(int argc, char** argv);
int run_ringwatchd(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace ringwatch::daemon
