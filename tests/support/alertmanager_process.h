#pragma once
// A real Alertmanager (Debian prometheus-alertmanager) for tests: a temporary
// directory with a config that routes everything to a "null" receiver, its
// own storage, clustering disabled, on 127.0.0.1 and a free port. The
// constructor waits until GET /-/ready answers 200; the destructor kills it
// and removes the directory.
//
// Not thread-safe; one owner. Construct it on the test's main thread.

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "tests/support/child_process.h"

namespace ringwatch::testing {

// One alert as GET /api/v2/alerts lists it.
struct AlertmanagerAlert {
  std::map<std::string, std::string> labels, annotations;
  std::string state, starts_at, ends_at;
};

class AlertmanagerProcess {
 public:
  static constexpr const char* kBinary = "/usr/bin/prometheus-alertmanager";

  // Throws std::runtime_error with Alertmanager's output if it does not
  // become ready within 20 s (after a few attempts on other ports).
  AlertmanagerProcess();
  ~AlertmanagerProcess();
  AlertmanagerProcess(const AlertmanagerProcess&) = delete;
  AlertmanagerProcess& operator=(const AlertmanagerProcess&) = delete;

  std::uint16_t port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::string output() const { return process_ ? process_->output() : std::string(); }
  pid_t pid() const { return process_ ? process_->pid() : 0; }

  // GET /api/v2/alerts<query> (e.g. "?active=true&silenced=true"), read
  // with ringwatch's own HTTP client. A failed request or an answer that is
  // not a JSON array is a test failure (and an empty list).
  std::vector<AlertmanagerAlert> alerts(const std::string& query = "") const;

 private:
  bool try_start();

  std::filesystem::path dir_;
  std::uint16_t port_ = 0;
  std::unique_ptr<ChildProcess> process_;
};

}  // namespace ringwatch::testing
