#pragma once
// A real memcached for tests, on loopback and a free port.
//
// MemcachedProcess starts /usr/bin/memcached in the foreground (never -d) as
// a ChildProcess (tests/support/child_process.h: killed and reaped with the
// object, and with the test binary if that dies), and waits until it accepts
// TCP connections. Construct it on the thread that stays alive for its
// lifetime (the death signal follows the forking thread).
//
// Not thread-safe; one owner.

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "lib/net/address.h"
#include "tests/support/child_process.h"

namespace ringwatch::testing {

// A TCP port on `address` (an IP literal) that was free a moment ago: binds
// port 0, reads the port the kernel chose, closes. Throws std::runtime_error
// if the address cannot be bound.
std::uint16_t free_port(const std::string& address = "127.0.0.1");
// True if `port` on `address` can be bound right now (nothing listens there).
bool port_is_free(const std::string& address, std::uint16_t port);
// True if a TCP connection to address:port succeeds right now.
bool accepts_connections(const std::string& address, std::uint16_t port);

class MemcachedProcess {
 public:
  struct Options {
    std::string address = "127.0.0.1";
    std::uint16_t port = 0;  // 0: a free one (retried on another if taken)
    std::string binary = "/usr/bin/memcached";
    std::vector<std::string> extra_args;  // appended to the command line
    std::chrono::milliseconds ready_timeout{5000};
  };

  // Starts memcached and waits until it accepts connections; throws
  // std::runtime_error (with memcached's stderr) if it cannot be started.
  MemcachedProcess();
  explicit MemcachedProcess(Options options);
  MemcachedProcess(MemcachedProcess&& other) noexcept = default;
  // Kills and reaps the process this object held before.
  MemcachedProcess& operator=(MemcachedProcess&& other) noexcept = default;

  const net::Endpoint& endpoint() const { return endpoint_; }
  // 0 once stopped.
  pid_t pid() const { return child_ ? child_->pid() : 0; }
  bool running() const { return pid() > 0; }
  // What memcached wrote to stderr so far (kept in memory, not shown).
  std::string stderr_output() const;

  // SIGTERM, then SIGKILL if it has not exited within 2 s; reaps it. Idempotent.
  void stop();
  // SIGSTOP / SIGCONT. The listening socket stays open: connects still succeed
  // through the kernel backlog, but nothing is read or answered until resume().
  // Both return once the kernel reports the state change.
  void pause();
  void resume();

 private:
  bool try_start(std::uint16_t port);

  Options options_;
  net::Endpoint endpoint_;
  std::unique_ptr<ChildProcess> child_;  // the last one started
};

}  // namespace ringwatch::testing
