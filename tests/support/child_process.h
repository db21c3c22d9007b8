#pragma once
// A real program started by a test, killed when the object goes away: the one
// way tests start a child program (MemcachedProcess and AlertmanagerProcess
// build on it).
//
// The child runs in the foreground with stdin and stdout on /dev/null and
// stderr in a memory file (see output()); it gets PR_SET_PDEATHSIG(SIGKILL),
// so it dies with the test binary even if the test crashes. The destructor
// SIGKILLs and reaps it. Construct on the thread that stays alive for the
// object's lifetime (the death signal follows the forking thread).
//
// Not thread-safe; one owner.

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

namespace ringwatch::testing {

class ChildProcess {
 public:
  // argv[0] is the program's path. Throws std::runtime_error if fork fails;
  // an exec failure shows as an early exit with status 127.
  explicit ChildProcess(std::vector<std::string> argv);
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  // False once the child exited (reaps it).
  bool running();
  // What the child wrote to stderr so far.
  std::string output() const;
  // SIGCONT and SIGTERM, then SIGKILL after `grace`; reaps. Idempotent.
  void stop(std::chrono::milliseconds grace = std::chrono::milliseconds(3000));
  // SIGSTOP / SIGCONT; each returns once the kernel reports the change.
  void pause();
  void resume();

 private:
  pid_t pid_ = 0;
  int output_fd_ = -1;
  bool paused_ = false;
};

}  // namespace ringwatch::testing
