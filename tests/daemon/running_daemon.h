#pragma once
// ringwatchd in-process for tests: a Daemon on its own thread (no signal
// handling), listening on 127.0.0.1 and a free port, stopped and joined when
// the object goes away. Its log goes to a string stream nobody reads.
//
// Not thread-safe; one owner.

#include <chrono>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "daemon/daemon.h"

namespace ringwatch::testing {

class RunningDaemon {
 public:
  explicit RunningDaemon(const std::vector<std::string>& specs,
                         std::chrono::milliseconds interval = std::chrono::milliseconds(500),
                         daemon::AlertsConfig alerts = {})
      : RunningDaemon(WithOptions{}, quick_start(specs, interval, alerts)) {}
  // Any options (a fleet file, a web config, ...); signals are never handled.
  struct WithOptions {};
  RunningDaemon(WithOptions, daemon::DaemonOptions options) {
    options.handle_signals = false;
    daemon_ = std::make_unique<daemon::Daemon>(options, log_);
    thread_ = std::thread([this] { daemon_->run(); });
  }
  static daemon::DaemonOptions quick_start(const std::vector<std::string>& specs,
                                           std::chrono::milliseconds interval,
                                           daemon::AlertsConfig alerts = {}) {
    daemon::DaemonOptions options;
    options.source.spec_paths = specs;
    options.source.interval = interval;
    options.source.jitter = std::chrono::milliseconds(0);
    options.source.listen = "127.0.0.1:0";
    options.source.alerts = alerts;
    options.shutdown_grace = std::chrono::seconds(10);
    return options;
  }
  ~RunningDaemon() {
    daemon_->stop();
    thread_.join();
  }
  RunningDaemon(const RunningDaemon&) = delete;
  RunningDaemon& operator=(const RunningDaemon&) = delete;

  std::uint16_t port() const { return daemon_->port(); }

 private:
  std::stringstream log_;
  std::unique_ptr<daemon::Daemon> daemon_;
  std::thread thread_;
};

}  // namespace ringwatch::testing
