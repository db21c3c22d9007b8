#include "tests/support/memcached_process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <thread>
#include <utility>

#include "lib/util/fd_io.h"

namespace ringwatch::testing {
namespace {

using Clock = std::chrono::steady_clock;

// A sockaddr for an IP literal and port; throws if `address` is not one.
struct SocketAddress {
  sockaddr_storage storage{};
  socklen_t length = 0;
  int family = AF_INET;
};

SocketAddress socket_address(const std::string& address, std::uint16_t port) {
  SocketAddress result;
  if (address.find(':') != std::string::npos) {
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&result.storage);
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    if (inet_pton(AF_INET6, address.c_str(), &v6->sin6_addr) != 1) {
      throw std::runtime_error("not an IPv6 address literal: " + address);
    }
    result.length = sizeof(sockaddr_in6);
    result.family = AF_INET6;
  } else {
    auto* v4 = reinterpret_cast<sockaddr_in*>(&result.storage);
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    if (inet_pton(AF_INET, address.c_str(), &v4->sin_addr) != 1) {
      throw std::runtime_error("not an IPv4 address literal: " + address);
    }
    result.length = sizeof(sockaddr_in);
    result.family = AF_INET;
  }
  return result;
}

using Fd = util::UniqueFd;

bool accepts_connections(const std::string& address, std::uint16_t port) {
  const SocketAddress target = socket_address(address, port);
  Fd fd(::socket(target.family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) return false;
  return ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&target.storage), target.length) ==
         0;
}

// waitpid() that retries on EINTR; returns what waitpid returned.
pid_t wait_for(pid_t pid, int* status, int flags) {
  pid_t result;
  do {
    result = ::waitpid(pid, status, flags);
  } while (result < 0 && errno == EINTR);
  return result;
}

[[noreturn]] void exec_child(const std::vector<std::string>& argv, pid_t parent, int stderr_fd) {
  // Die with the test binary, even if it crashes.
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) ::_exit(127);

  const int devnull = ::open("/dev/null", O_RDWR);
  if (devnull >= 0) {
    ::dup2(devnull, STDIN_FILENO);
    ::dup2(devnull, STDOUT_FILENO);
  }
  if (stderr_fd >= 0) ::dup2(stderr_fd, STDERR_FILENO);
  ::syscall(SYS_close_range, 3U, ~0U, 0U);

  std::vector<char*> args;
  args.reserve(argv.size() + 1);
  for (const auto& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  ::execv(args[0], args.data());
  ::_exit(127);
}

}  // namespace

std::uint16_t free_port(const std::string& address) {
  const SocketAddress any_port = socket_address(address, 0);
  Fd fd(::socket(any_port.family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&any_port.storage), any_port.length) !=
      0) {
    throw std::runtime_error("bind " + address + ":0: " + std::strerror(errno));
  }
  sockaddr_storage bound{};
  socklen_t length = sizeof(bound);
  if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&bound), &length) != 0) {
    throw std::runtime_error(std::string("getsockname: ") + std::strerror(errno));
  }
  if (bound.ss_family == AF_INET6) {
    return ntohs(reinterpret_cast<const sockaddr_in6*>(&bound)->sin6_port);
  }
  return ntohs(reinterpret_cast<const sockaddr_in*>(&bound)->sin_port);
}

MemcachedProcess::MemcachedProcess() : MemcachedProcess(Options{}) {}

MemcachedProcess::MemcachedProcess(Options options) : options_(std::move(options)) {
  constexpr int kAttempts = 5;
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    if (try_start(options_.port != 0 ? options_.port : free_port(options_.address))) return;
  }
  const std::string output = stderr_output();
  close_stderr();
  throw std::runtime_error("memcached did not start on " + options_.address + " after " +
                           std::to_string(kAttempts) + " attempts" +
                           (output.empty() ? "" : ": " + output));
}

MemcachedProcess::~MemcachedProcess() {
  kill_and_reap();
  close_stderr();
}

MemcachedProcess::MemcachedProcess(MemcachedProcess&& other) noexcept
    : options_(std::move(other.options_)),
      endpoint_(std::move(other.endpoint_)),
      pid_(std::exchange(other.pid_, 0)),
      paused_(std::exchange(other.paused_, false)),
      stderr_fd_(std::exchange(other.stderr_fd_, -1)) {}

MemcachedProcess& MemcachedProcess::operator=(MemcachedProcess&& other) noexcept {
  if (this != &other) {
    kill_and_reap();
    close_stderr();
    options_ = std::move(other.options_);
    endpoint_ = std::move(other.endpoint_);
    pid_ = std::exchange(other.pid_, 0);
    paused_ = std::exchange(other.paused_, false);
    stderr_fd_ = std::exchange(other.stderr_fd_, -1);
  }
  return *this;
}

std::string MemcachedProcess::stderr_output() const {
  std::string output;
  if (stderr_fd_ < 0) return output;
  char buffer[4096];
  off_t offset = 0;
  ssize_t n;
  while ((n = ::pread(stderr_fd_, buffer, sizeof(buffer), offset)) > 0) {
    output.append(buffer, static_cast<std::size_t>(n));
    offset += n;
  }
  while (!output.empty() && (output.back() == '\n' || output.back() == ' ')) output.pop_back();
  return output;
}

void MemcachedProcess::close_stderr() {
  if (stderr_fd_ >= 0) ::close(stderr_fd_);
  stderr_fd_ = -1;
}

bool MemcachedProcess::try_start(std::uint16_t port) {
  std::vector<std::string> argv = {options_.binary,
                                   "-l",
                                   options_.address,
                                   "-p",
                                   std::to_string(port),
                                   "-U",
                                   "0",
                                   "-t",
                                   "1",
                                   "-m",
                                   "64"};
  if (::geteuid() == 0) {
    argv.insert(argv.end(), {"-u", "root"});
  }
  argv.insert(argv.end(), options_.extra_args.begin(), options_.extra_args.end());

  close_stderr();  // keep only the last attempt's output
  stderr_fd_ = ::memfd_create("memcached-stderr", MFD_CLOEXEC);
  const pid_t parent = ::getpid();
  const pid_t child = ::fork();
  if (child < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
  if (child == 0) exec_child(argv, parent, stderr_fd_);

  pid_ = child;
  endpoint_ = net::Endpoint{options_.address, port};
  const auto deadline = Clock::now() + options_.ready_timeout;
  while (Clock::now() < deadline) {
    int status = 0;
    if (wait_for(pid_, &status, WNOHANG) == pid_) {
      pid_ = 0;  // exited (port taken, bad flag): let the caller retry
      return false;
    }
    if (accepts_connections(options_.address, port)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  kill_and_reap();
  return false;
}

void MemcachedProcess::stop() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGCONT);
  ::kill(pid_, SIGTERM);
  const auto deadline = Clock::now() + std::chrono::seconds(2);
  while (Clock::now() < deadline) {
    int status = 0;
    if (wait_for(pid_, &status, WNOHANG) == pid_) {
      pid_ = 0;
      paused_ = false;
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  kill_and_reap();
}

void MemcachedProcess::pause() {
  if (pid_ <= 0 || paused_) return;
  ::kill(pid_, SIGSTOP);
  int status = 0;
  wait_for(pid_, &status, WUNTRACED);
  paused_ = true;
}

void MemcachedProcess::resume() {
  if (pid_ <= 0 || !paused_) return;
  ::kill(pid_, SIGCONT);
  int status = 0;
  wait_for(pid_, &status, WCONTINUED);
  paused_ = false;
}

void MemcachedProcess::kill_and_reap() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGCONT);
  ::kill(pid_, SIGKILL);
  int status = 0;
  wait_for(pid_, &status, 0);  // without WUNTRACED this returns only once it has died
  pid_ = 0;
  paused_ = false;
}

}  // namespace ringwatch::testing
