#include "tests/support/child_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <thread>

namespace ringwatch::testing {

namespace {

pid_t wait_for(pid_t pid, int* status, int flags) {
  pid_t result;
  do {
    result = ::waitpid(pid, status, flags);
  } while (result < 0 && errno == EINTR);
  return result;
}

}  // namespace

ChildProcess::ChildProcess(std::vector<std::string> argv) {
  if (argv.empty()) throw std::invalid_argument("ChildProcess: empty argv");
  output_fd_ = ::memfd_create("child-output", MFD_CLOEXEC);
  std::vector<char*> args;
  for (auto& arg : argv) args.push_back(arg.data());
  args.push_back(nullptr);
  const pid_t parent = ::getpid();
  const pid_t child = ::fork();
  if (child < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
  if (child == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    const int devnull = ::open("/dev/null", O_RDWR);
    if (devnull >= 0) {
      ::dup2(devnull, STDIN_FILENO);
      ::dup2(devnull, STDOUT_FILENO);
    }
    if (output_fd_ >= 0) ::dup2(output_fd_, STDERR_FILENO);
    ::syscall(SYS_close_range, 3U, ~0U, 0U);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  pid_ = child;
}

ChildProcess::~ChildProcess() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    int status = 0;
    wait_for(pid_, &status, 0);
    pid_ = 0;
  }
  if (output_fd_ >= 0) ::close(output_fd_);
}

bool ChildProcess::running() {
  if (pid_ <= 0) return false;
  int status = 0;
  if (wait_for(pid_, &status, WNOHANG) == pid_) {
    pid_ = 0;
    return false;
  }
  return true;
}

std::string ChildProcess::output() const {
  std::string text;
  if (output_fd_ < 0) return text;
  char buffer[4096];
  off_t offset = 0;
  ssize_t n;
  while ((n = ::pread(output_fd_, buffer, sizeof(buffer), offset)) > 0) {
    text.append(buffer, static_cast<std::size_t>(n));
    offset += n;
  }
  return text;
}

void ChildProcess::stop(std::chrono::milliseconds grace) {
  if (pid_ <= 0) return;
  // A stopped child acts on SIGTERM only once continued.
  ::kill(pid_, SIGCONT);
  ::kill(pid_, SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + grace;
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (wait_for(pid_, &status, WNOHANG) == pid_) {
      pid_ = 0;
      paused_ = false;
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ::kill(pid_, SIGKILL);
  int status = 0;
  wait_for(pid_, &status, 0);  // without WUNTRACED this returns only once it has died
  pid_ = 0;
  paused_ = false;
}

void ChildProcess::pause() {
  if (pid_ <= 0 || paused_) return;
  ::kill(pid_, SIGSTOP);
  int status = 0;
  wait_for(pid_, &status, WUNTRACED);
  paused_ = true;
}

void ChildProcess::resume() {
  if (pid_ <= 0 || !paused_) return;
  ::kill(pid_, SIGCONT);
  int status = 0;
  wait_for(pid_, &status, WCONTINUED);
  paused_ = false;
}

}  // namespace ringwatch::testing
