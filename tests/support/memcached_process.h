#pragma once
// A real memcached for tests, on loopback and a free port.
//
// MemcachedProcess starts /usr/bin/memcached in the foreground (never -d),
// waits until it accepts TCP connections, and in its destructor SIGCONTs,
// SIGKILLs and reaps it, so no process outlives the object. The child also
// gets PR_SET_PDEATHSIG(SIGKILL): if the test binary dies, memcached dies too.
// Construct it on the thread that stays alive for its lifetime (the death
// signal follows the forking thread).
//
// Not thread-safe; one owner.

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "lib/net/address.h"

namespace ringwatch::testing {

// A TCP port on `address` (an IP literal) that was free a moment ago: binds
// port 0, reads the port the kernel chose, closes. Throws std::runtime_error
// if the address cannot be bound.
std::uint16_t free_port(const std::string& address = "127.0.0.1");

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
  ~MemcachedProcess();
  MemcachedProcess(MemcachedProcess&& other) noexcept;
  MemcachedProcess& operator=(MemcachedProcess&& other) noexcept;
  MemcachedProcess(const MemcachedProcess&) = delete;
  MemcachedProcess& operator=(const MemcachedProcess&) = delete;

  const net::Endpoint& endpoint() const { return endpoint_; }
  // 0 once stopped.
  pid_t pid() const { return pid_; }
  bool running() const { return pid_ > 0; }
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
  void kill_and_reap();
  void close_stderr();

  Options options_;
  net::Endpoint endpoint_;
  pid_t pid_ = 0;
  bool paused_ = false;
  int stderr_fd_ = -1;  // memfd the child writes its stderr to
};

}  // namespace ringwatch::testing
