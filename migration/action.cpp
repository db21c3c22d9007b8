#include "migration/action.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string_view>
#include <system_error>
#include <thread>
#include <vector>

#include "lib/util/fd_io.h"
#include "lib/util/time.h"
#include "migration/process_group.h"

extern char** environ;

namespace ringwatch::migration {

namespace {

using SteadyClock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr std::size_t kTailBytes = 2048;
constexpr milliseconds kPollSlice{20};

// Shell-like quoting, only so the log header reads unambiguously.
std::string quote(const std::string& arg) {
  const bool plain = !arg.empty() && arg.find_first_not_of(
                                         "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                         "0123456789-_./=:,+@%") == std::string::npos;
  if (plain) return arg;
  std::string quoted = "'";
  for (char c : arg) {
    if (c == '\'') {
      quoted += "'\\''";
    } else {
      quoted += c;
    }
  }
  return quoted + "'";
}

std::string format_duration(milliseconds duration) {
  if (duration.count() % 1000 == 0) return std::to_string(duration.count() / 1000) + " s";
  return std::to_string(duration.count()) + " ms";
}

off_t file_size(int fd) {
  struct stat info {};
  return ::fstat(fd, &info) == 0 ? info.st_size : 0;
}

// The last kTailBytes written at or after `from`, starting at a line when cut.
std::string read_tail(int fd, off_t from) {
  const off_t end = file_size(fd);
  if (end <= from) return {};
  const off_t start = std::max(from, end - static_cast<off_t>(kTailBytes));
  std::string tail(static_cast<std::size_t>(end - start), '\0');
  std::size_t got = 0;
  while (got < tail.size()) {
    const ssize_t n =
        ::pread(fd, tail.data() + got, tail.size() - got, start + static_cast<off_t>(got));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
  }
  tail.resize(got);
  if (start > from) {
    const std::size_t newline = tail.find('\n');
    if (newline != std::string::npos && newline + 1 < tail.size()) tail.erase(0, newline + 1);
  }
  return tail;
}

std::vector<std::string> child_environment(const ActionContext& context) {
  std::vector<std::pair<std::string, std::string>> ours = {{"RINGWATCH_CLUSTER", context.cluster},
                                                           {"RINGWATCH_STEP", context.step}};
  if (context.attempt > 0) ours.emplace_back("RINGWATCH_ATTEMPT", std::to_string(context.attempt));
  ours.emplace_back("RINGWATCH_SPEC", context.spec_path);
  ours.insert(ours.end(), context.environment.begin(), context.environment.end());
  const auto named = [](std::string_view entry, const std::string& name) {
    return entry.size() > name.size() && entry.starts_with(name) && entry[name.size()] == '=';
  };
  std::vector<std::string> env;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    const std::string_view text(*entry);
    const bool replaced = std::any_of(ours.begin(), ours.end(),
                                      [&](const auto& pair) { return named(text, pair.first); });
    if (!replaced) env.emplace_back(text);
  }
  for (std::size_t i = 0; i < ours.size(); ++i) {
    // A later entry of the same name wins.
    const bool overridden =
        std::any_of(ours.begin() + static_cast<std::ptrdiff_t>(i) + 1, ours.end(),
                    [&](const auto& later) { return later.first == ours[i].first; });
    if (!overridden) env.push_back(ours[i].first + "=" + ours[i].second);
  }
  return env;
}

using Fd = util::UniqueFd;

int open_pidfd(pid_t pid) {
#ifdef SYS_pidfd_open
  return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
#else
  (void)pid;
  return -1;
#endif
}

// True once `pid` has exited. It is left a zombie (WNOWAIT), so its pid, and
// with it the process group id, cannot be reused while we still signal the group.
bool has_exited(pid_t pid) {
  siginfo_t info{};
  for (;;) {
    if (::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0) {
      return info.si_pid == pid;
    }
    if (errno != EINTR) return true;  // ECHILD: nothing left to wait for
  }
}

// Waits up to `slice` for `pid` to exit.
void wait_slice(int pidfd, milliseconds slice) {
  if (slice.count() <= 0) return;
  if (pidfd >= 0) {
    pollfd entry{pidfd, POLLIN, 0};
    ::poll(&entry, 1, static_cast<int>(slice.count()));
  } else {
    std::this_thread::sleep_for(std::min(slice, milliseconds{10}));
  }
}

// Waits until `pid` exits or `until`; true when it exited.
bool wait_until(pid_t pid, int pidfd, SteadyClock::time_point until,
                const std::atomic<bool>* cancel, bool* cancelled) {
  for (;;) {
    if (has_exited(pid)) return true;
    if (cancel != nullptr && cancelled != nullptr && cancel->load()) {
      *cancelled = true;
      return false;
    }
    const auto left = std::chrono::ceil<milliseconds>(until - SteadyClock::now());
    if (left.count() <= 0) return false;
    wait_slice(pidfd, std::min(left, kPollSlice));
  }
}

int reap(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return -1;
  }
  return status;
}

// argv[0] as execvp would find it: itself when it holds a '/', else the
// first executable file of that name in PATH (default "/bin:/usr/bin"). The
// search happens here, before fork(), because the child may only make
// async-signal-safe calls. Sets `error` (ENOENT, or EACCES when a match was
// not executable) and returns "" when nothing was found.
std::string find_program(const std::string& name, int& error) {
  if (name.find('/') != std::string::npos) return name;
  const char* path_variable = std::getenv("PATH");
  const std::string_view path = path_variable != nullptr ? path_variable : "/bin:/usr/bin";
  error = ENOENT;
  std::size_t start = 0;
  for (;;) {
    const std::size_t end = std::min(path.find(':', start), path.size());
    std::string dir(path.substr(start, end - start));
    const std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
    struct stat info {};
    if (::stat(candidate.c_str(), &info) == 0 && S_ISREG(info.st_mode)) {
      if (::access(candidate.c_str(), X_OK) == 0) return candidate;
      error = EACCES;
    }
    if (end == path.size()) return {};
    start = end + 1;
  }
}

// Everything the held child needs, made before fork().
struct ChildSetup {
  std::string program;
  std::vector<std::string> args, env;
  std::vector<char*> argv, envp;
  int stdin_fd = -1, log_fd = -1, go_fd = -1, status_fd = -1;

  ChildSetup(std::string path, std::vector<std::string> arguments,
             std::vector<std::string> environment)
      : program(std::move(path)), args(std::move(arguments)), env(std::move(environment)) {
    for (std::string& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    for (std::string& entry : env) envp.push_back(entry.data());
    envp.push_back(nullptr);
  }
};

constexpr int kChildGoFd = 3;
constexpr int kChildStatusFd = 4;

// The child: a session and process group of its own, the standard
// descriptors, every other descriptor closed (also other threads' handshake
// pipes: a child that holds one would keep that child waiting), then it
// waits for the engine's go. No go (the engine died or withdrew it) means
// the command never runs. After fork() in a threaded program: only
// async-signal-safe calls, no allocation.
[[noreturn]] void run_held_child(const ChildSetup& setup) {
  ::setsid();
  struct sigaction default_action {};
  default_action.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) ::sigaction(sig, &default_action, nullptr);
  sigset_t none;
  ::sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  // Up out of the way first, so that no dup2 below overwrites a source.
  const int in = ::fcntl(setup.stdin_fd, F_DUPFD, 10);
  const int log = ::fcntl(setup.log_fd, F_DUPFD, 10);
  const int go = ::fcntl(setup.go_fd, F_DUPFD, 10);
  const int status = ::fcntl(setup.status_fd, F_DUPFD, 10);
  int error = 0;
  if (in < 0 || log < 0 || go < 0 || status < 0 || ::dup2(in, STDIN_FILENO) < 0 ||
      ::dup2(log, STDOUT_FILENO) < 0 || ::dup2(log, STDERR_FILENO) < 0 ||
      ::dup2(go, kChildGoFd) < 0 || ::dup2(status, kChildStatusFd) < 0 ||
      ::fcntl(kChildStatusFd, F_SETFD, FD_CLOEXEC) < 0) {
    error = errno;
    [[maybe_unused]] const ssize_t n = ::write(setup.status_fd, &error, sizeof error);
    ::_exit(127);
  }
  if (::syscall(SYS_close_range, kChildStatusFd + 1, ~0U, 0) != 0) {
    for (int fd = kChildStatusFd + 1; fd < 65536; ++fd) ::close(fd);
  }
  char go_byte = 0;
  ssize_t got = 0;
  do {
    got = ::read(kChildGoFd, &go_byte, 1);
  } while (got < 0 && errno == EINTR);
  if (got != 1) ::_exit(126);  // withdrawn: never run
  ::close(kChildGoFd);
  ::execve(setup.program.c_str(), setup.argv.data(), setup.envp.data());
  error = errno;
  [[maybe_unused]] const ssize_t n = ::write(kChildStatusFd, &error, sizeof error);
  ::_exit(127);
}

// A child held before its exec, and the engine's ends of the handshake.
struct HeldChild {
  pid_t pid = -1;
  int go = -1;      // one byte: run; closed without it: do not
  int status = -1;  // the child's errno if it could not run its command; EOF at exec
  HeldChild() = default;
  HeldChild(const HeldChild&) = delete;
  HeldChild& operator=(const HeldChild&) = delete;
  ~HeldChild() {
    close_go();
    if (status >= 0) ::close(status);
  }
  void close_go() {
    if (go >= 0) ::close(go);
    go = -1;
  }
};

// Forks the held child into `child`; 0, or the errno of what failed.
int fork_held_child(ChildSetup& setup, int log_fd, HeldChild& child) {
  // The go channel is a socket so that sending to a child that died anyway
  // is EPIPE, not SIGPIPE.
  int go_pair[2];
  int status_pipe[2];
  const Fd null(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (null.get() < 0 || ::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, go_pair) != 0) {
    return errno;
  }
  child.go = go_pair[1];
  const Fd go_read(go_pair[0]);
  if (::pipe2(status_pipe, O_CLOEXEC) != 0) return errno;
  child.status = status_pipe[0];
  const Fd status_write(status_pipe[1]);
  setup.stdin_fd = null.get();
  setup.log_fd = log_fd;
  setup.go_fd = go_read.get();
  setup.status_fd = status_write.get();
  child.pid = ::fork();
  if (child.pid == 0) run_held_child(setup);
  return child.pid < 0 ? errno : 0;
}

// After the go: the errno the child could not run its command with, or 0
// once it did (its exec closed the status pipe).
int exec_error(const HeldChild& child) {
  int error = 0;
  std::size_t got = 0;
  while (got < sizeof error) {
    const ssize_t n =
        ::read(child.status, reinterpret_cast<char*>(&error) + got, sizeof error - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
  }
  return got == sizeof error ? error : 0;
}

}  // namespace

const char* to_string(ActionOutcome outcome) {
  switch (outcome) {
    case ActionOutcome::succeeded:
      return "succeeded";
    case ActionOutcome::failed:
      return "failed";
    case ActionOutcome::timed_out:
      return "timed_out";
    case ActionOutcome::cancelled:
      return "cancelled";
    case ActionOutcome::could_not_start:
      return "could_not_start";
  }
  return "failed";
}

ActionResult run_action(const Action& action, const ActionContext& context,
                        const std::atomic<bool>* cancel) {
  if (action.argv.empty()) throw std::invalid_argument("run_action: empty argv");
  const auto started = SteadyClock::now();
  ActionResult result;
  auto finish = [&](ActionOutcome outcome, std::string detail) {
    result.outcome = outcome;
    result.detail = std::move(detail);
    result.duration = std::chrono::duration_cast<milliseconds>(SteadyClock::now() - started);
    return result;
  };
  const std::string prefix = !context.log_label.empty()
                                 ? context.log_label
                                 : "cluster " + context.cluster + " step " + context.step +
                                       " attempt " + std::to_string(context.attempt);

  std::error_code ignored;
  if (context.log_path.has_parent_path()) {
    std::filesystem::create_directories(context.log_path.parent_path(), ignored);
  }
  const Fd log(::open(context.log_path.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
  if (log.get() < 0) {
    return finish(ActionOutcome::could_not_start,
                  "cannot open log \"" + context.log_path.string() + "\": " + std::strerror(errno));
  }
  std::string header =
      "=== " + util::format_rfc3339_ms(std::chrono::system_clock::now()) + " " + prefix + ":";
  for (const std::string& arg : action.argv) header += " " + quote(arg);
  header += "\n";
  if (!util::write_all(log.get(), header)) {
    return finish(
        ActionOutcome::could_not_start,
        "cannot write log \"" + context.log_path.string() + "\": " + std::strerror(errno));
  }
  const off_t output_start = file_size(log.get());

  auto could_not_run = [&](int error) {
    std::string detail = "cannot run \"" + action.argv[0] + "\": " + std::strerror(error);
    util::write_all(log.get(), "=== " + util::format_rfc3339_ms(std::chrono::system_clock::now()) +
                                   " " + prefix + ": " + detail + "\n");
    return finish(ActionOutcome::could_not_start, std::move(detail));
  };
  int not_found = 0;
  const std::string program = find_program(action.argv[0], not_found);
  if (program.empty()) return could_not_run(not_found);
  ChildSetup setup(program, action.argv, child_environment(context));
  HeldChild child;
  if (const int error = fork_held_child(setup, log.get(), child)) return could_not_run(error);
  const pid_t pid = child.pid;
  if (context.on_spawned) {
    try {
      context.on_spawned(identify_group(pid));
    } catch (...) {
      child.close_go();  // withdrawn: the command never runs
      reap(pid);
      throw;
    }
  }
  [[maybe_unused]] const ssize_t sent = ::send(child.go, "g", 1, MSG_NOSIGNAL);
  child.close_go();
  if (const int error = exec_error(child)) {
    reap(pid);
    return could_not_run(error);
  }

  const Fd pidfd(open_pidfd(pid));
  bool cancelled = false;
  const auto deadline = started + action.timeout;
  bool exited = wait_until(pid, pidfd.get(), deadline, cancel, &cancelled);
  bool killed = false;
  if (!exited) {
    // The child leads its own group (setsid), so -pid reaches its descendants too.
    killed = true;
    ::kill(-pid, SIGTERM);
    exited =
        wait_until(pid, pidfd.get(), SteadyClock::now() + context.kill_grace, nullptr, nullptr);
    // Also when the leader went on SIGTERM: whatever is left of its group goes now.
    ::kill(-pid, SIGKILL);
    if (!exited) wait_until(pid, pidfd.get(), SteadyClock::time_point::max(), nullptr, nullptr);
  }
  const int status = reap(pid);

  std::string detail;
  ActionOutcome outcome = ActionOutcome::failed;
  if (status >= 0 && WIFEXITED(status)) result.exit_status = WEXITSTATUS(status);
  if (killed) {
    outcome = cancelled ? ActionOutcome::cancelled : ActionOutcome::timed_out;
    detail = cancelled ? "cancelled" : "timed out after " + format_duration(action.timeout);
  } else if (status < 0) {
    detail = "lost track of the process";
  } else if (WIFEXITED(status)) {
    outcome = result.exit_status == 0 ? ActionOutcome::succeeded : ActionOutcome::failed;
    detail = "exit status " + std::to_string(result.exit_status);
  } else if (WIFSIGNALED(status)) {
    detail = "killed by signal " + std::to_string(WTERMSIG(status));
  }
  result.output_tail = read_tail(log.get(), output_start);
  finish(outcome, detail);
  const bool open_line = !result.output_tail.empty() && result.output_tail.back() != '\n';
  util::write_all(log.get(), std::string(open_line ? "\n" : "") + "=== " +
                                 util::format_rfc3339_ms(std::chrono::system_clock::now()) + " " +
                                 prefix + ": " + to_string(outcome) + ", " + detail + " (" +
                                 std::to_string(result.duration.count()) + " ms)\n");
  return result;
}

}  // namespace ringwatch::migration
