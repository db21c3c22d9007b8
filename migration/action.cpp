#include "migration/action.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string_view>
#include <system_error>
#include <thread>
#include <vector>

#include "lib/util/fd_io.h"
#include "lib/util/time.h"

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
  const std::string ours[][2] = {{"RINGWATCH_CLUSTER", context.cluster},
                                 {"RINGWATCH_STEP", context.step},
                                 {"RINGWATCH_ATTEMPT", std::to_string(context.attempt)},
                                 {"RINGWATCH_SPEC", context.spec_path}};
  std::vector<std::string> env;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    const std::string_view text(*entry);
    const bool replaced = std::any_of(std::begin(ours), std::end(ours), [&](const auto& pair) {
      return text.size() > pair[0].size() && text.starts_with(pair[0]) &&
             text[pair[0].size()] == '=';
    });
    if (!replaced) env.emplace_back(text);
  }
  for (const auto& pair : ours) env.push_back(pair[0] + "=" + pair[1]);
  return env;
}

class FileActions {
 public:
  FileActions() { ::posix_spawn_file_actions_init(&actions_); }
  ~FileActions() { ::posix_spawn_file_actions_destroy(&actions_); }
  FileActions(const FileActions&) = delete;
  FileActions& operator=(const FileActions&) = delete;
  posix_spawn_file_actions_t* get() { return &actions_; }

 private:
  posix_spawn_file_actions_t actions_;
};

class SpawnAttr {
 public:
  SpawnAttr() { ::posix_spawnattr_init(&attr_); }
  ~SpawnAttr() { ::posix_spawnattr_destroy(&attr_); }
  SpawnAttr(const SpawnAttr&) = delete;
  SpawnAttr& operator=(const SpawnAttr&) = delete;
  posix_spawnattr_t* get() { return &attr_; }

 private:
  posix_spawnattr_t attr_;
};

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
  const std::string prefix = "cluster " + context.cluster + " step " + context.step + " attempt " +
                             std::to_string(context.attempt);

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

  FileActions files;
  ::posix_spawn_file_actions_addopen(files.get(), STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  ::posix_spawn_file_actions_adddup2(files.get(), log.get(), STDOUT_FILENO);
  ::posix_spawn_file_actions_adddup2(files.get(), log.get(), STDERR_FILENO);
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
  // Descriptors other threads opened without O_CLOEXEC stay out of the child.
  ::posix_spawn_file_actions_addclosefrom_np(files.get(), STDERR_FILENO + 1);
#endif
  SpawnAttr attr;
  sigset_t signals;
  ::sigemptyset(&signals);
  ::posix_spawnattr_setsigmask(attr.get(), &signals);
  ::sigfillset(&signals);
  ::posix_spawnattr_setsigdefault(attr.get(), &signals);
  ::posix_spawnattr_setflags(
      attr.get(),
      static_cast<short>(POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF));

  std::vector<std::string> env = child_environment(context);
  std::vector<char*> envp;
  envp.reserve(env.size() + 1);
  for (std::string& entry : env) envp.push_back(entry.data());
  envp.push_back(nullptr);
  std::vector<std::string> args = action.argv;
  std::vector<char*> argv;
  argv.reserve(args.size() + 1);
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);

  pid_t pid = -1;
  const int spawn_error =
      ::posix_spawnp(&pid, argv[0], files.get(), attr.get(), argv.data(), envp.data());
  if (spawn_error != 0) {
    std::string detail = "cannot run \"" + action.argv[0] + "\": " + std::strerror(spawn_error);
    util::write_all(log.get(), "=== " + util::format_rfc3339_ms(std::chrono::system_clock::now()) +
                                   " " + prefix + ": " + detail + "\n");
    return finish(ActionOutcome::could_not_start, std::move(detail));
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
