#include "tools/lab/process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <deque>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "lib/util/fd_io.h"
#include "lib/util/time.h"

namespace ringwatch::lab {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

std::string errno_text(int error) {
  return std::strerror(error);
}

// Fields 3.. of /proc/PID/stat: the comm (field 2) may contain spaces and
// parentheses, so split after its last ')'.
std::optional<std::vector<std::string>> read_stat_fields(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!in || !std::getline(in, line)) return std::nullopt;
  auto close = line.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream rest(line.substr(close + 1));
  std::vector<std::string> fields;
  for (std::string field; rest >> field;) fields.push_back(field);
  if (fields.size() < 20) return std::nullopt;
  return fields;
}

// Index of field N (1-based, as in proc(5)) in read_stat_fields' result.
constexpr std::size_t field_index(std::size_t n) {
  return n - 3;
}

// A multi-threaded process shows 'Z' as soon as its main thread exits but can
// only be reaped once all its threads have, a moment later; without waiting
// for that it would stay our zombie for as long as we run.
void reap_if_child(int pid) {
  auto deadline = Clock::now() + 1s;
  for (;;) {
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) != 0) return;  // reaped, or not our child (ECHILD)
    if (Clock::now() >= deadline) return;
    std::this_thread::sleep_for(1ms);
  }
}

sockaddr_in make_address(const std::string& address, std::uint16_t port) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  if (::inet_pton(AF_INET, address.c_str(), &sa.sin_addr) != 1)
    throw std::runtime_error("not an IPv4 address: '" + address + "'");
  return sa;
}

using Fd = util::UniqueFd;

}  // namespace

const char* to_string(ProcState state) {
  switch (state) {
    case ProcState::running:
      return "running";
    case ProcState::stopped:
      return "stopped";
    case ProcState::dead:
      return "dead";
  }
  return "dead";
}

std::optional<std::uint64_t> read_start_time(int pid) {
  if (pid <= 0) return std::nullopt;
  auto fields = read_stat_fields(pid);
  if (!fields) return std::nullopt;
  return std::strtoull((*fields)[field_index(22)].c_str(), nullptr, 10);
}

ProcessId spawn(const std::vector<std::string>& argv, const std::filesystem::path& log,
                const std::filesystem::path& cwd) {
  if (argv.empty()) throw std::runtime_error("spawn: empty argv");
  {
    std::ofstream banner(log, std::ios::app);
    banner << "--- " << util::format_rfc3339(std::chrono::system_clock::now())
           << " ringwatch lab starts:";
    for (const auto& arg : argv) banner << ' ' << arg;
    banner << '\n';
  }
  // Everything the child needs is prepared before fork(): after it, only
  // async-signal-safe calls.
  Fd log_fd(::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
  if (log_fd.get() < 0)
    throw std::runtime_error("cannot open " + log.string() + ": " + errno_text(errno));
  Fd null_fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (null_fd.get() < 0) throw std::runtime_error("cannot open /dev/null: " + errno_text(errno));
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe2: " + errno_text(errno));
  Fd err_read(pipe_fds[0]);
  Fd err_write(pipe_fds[1]);
  std::vector<char*> cargv;
  for (const auto& arg : argv) cargv.push_back(const_cast<char*>(arg.c_str()));
  cargv.push_back(nullptr);
  const std::string cwd_string = cwd.string();
  long max_fd = ::sysconf(_SC_OPEN_MAX);
  if (max_fd < 0 || max_fd > 65536) max_fd = 65536;

  // The child may hold many descriptors (a nutcracker serving many pools
  // connects each to every backend): its soft limit is raised to the hard one.
  rlimit files{};
  const bool raise_files =
      ::getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max;
  files.rlim_cur = files.rlim_max;

  pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork: " + errno_text(errno));
  if (pid == 0) {
    ::setsid();
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    for (int sig = 1; sig < NSIG; ++sig) ::signal(sig, SIG_DFL);
    int error = 0;
    if (::chdir(cwd_string.c_str()) != 0) error = errno;
    if (error == 0 && (::dup2(null_fd.get(), 0) < 0 || ::dup2(log_fd.get(), 1) < 0 ||
                       ::dup2(log_fd.get(), 2) < 0))
      error = errno;
    if (error == 0) {
      // Close every inherited descriptor at exec; the error pipe is already
      // close-on-exec and stays usable until then.
      if (::close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) != 0) {
        for (int fd = 3; fd < max_fd; ++fd)
          if (fd != err_write.get()) ::close(fd);
      }
      if (raise_files) ::setrlimit(RLIMIT_NOFILE, &files);
      ::execv(cargv[0], cargv.data());
      error = errno;
    }
    [[maybe_unused]] auto written = ::write(err_write.get(), &error, sizeof error);
    ::_exit(127);
  }
  err_write.reset();
  log_fd.reset();
  null_fd.reset();
  // Read the start time before anything can reap the child.
  auto start_time = read_start_time(pid);
  int child_errno = 0;
  ssize_t got;
  do {
    got = ::read(err_read.get(), &child_errno, sizeof child_errno);
  } while (got < 0 && errno == EINTR);
  if (got > 0) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    throw std::runtime_error("cannot run " + argv[0] + ": " + errno_text(child_errno));
  }
  if (!start_time) throw std::runtime_error("started " + argv[0] + " but it vanished at once");
  return {pid, *start_time};
}

int run_to_completion(const std::vector<std::string>& argv, const std::filesystem::path& log,
                      const std::filesystem::path& cwd, std::chrono::milliseconds timeout) {
  ProcessId id = spawn(argv, log, cwd);
  auto deadline = Clock::now() + timeout;
  for (;;) {
    int status = 0;
    pid_t done = ::waitpid(id.pid, &status, WNOHANG);
    if (done == id.pid) {
      if (WIFEXITED(status)) return WEXITSTATUS(status);
      return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    }
    if (done < 0 && errno != EINTR) return -1;
    if (Clock::now() >= deadline) {
      ::kill(id.pid, SIGKILL);
      ::waitpid(id.pid, &status, 0);
      return -1;
    }
    std::this_thread::sleep_for(5ms);
  }
}

ProcState probe(const ProcessId& id) {
  if (id.pid <= 0) return ProcState::dead;
  auto fields = read_stat_fields(id.pid);
  if (!fields) return ProcState::dead;
  if (std::strtoull((*fields)[field_index(22)].c_str(), nullptr, 10) != id.start_time)
    return ProcState::dead;
  const std::string& state = (*fields)[field_index(3)];
  if (state == "Z" || state == "X" || state == "x") {
    reap_if_child(id.pid);
    return ProcState::dead;
  }
  if (state == "T" || state == "t") return ProcState::stopped;
  return ProcState::running;
}

bool send_signal(const ProcessId& id, int sig) {
  if (probe(id) == ProcState::dead) return false;
  return ::kill(id.pid, sig) == 0;
}

bool wait_for_state(const ProcessId& id, ProcState want, std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  for (;;) {
    if (probe(id) == want) return true;
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(5ms);
  }
}

std::vector<std::size_t> stop_all(const std::vector<ProcessId>& ids,
                                  std::chrono::milliseconds grace) {
  auto alive = [&](std::size_t i) { return probe(ids[i]) != ProcState::dead; };
  auto remaining = [&] {
    std::vector<std::size_t> left;
    for (std::size_t i = 0; i < ids.size(); ++i)
      if (alive(i)) left.push_back(i);
    return left;
  };
  auto wait_until_none = [&](std::chrono::milliseconds limit) {
    auto deadline = Clock::now() + limit;
    auto left = remaining();
    while (!left.empty() && Clock::now() < deadline) {
      std::this_thread::sleep_for(10ms);
      left = remaining();
    }
    return left;
  };
  for (const auto& id : ids) {
    // SIGCONT first: a stopped process only acts on SIGTERM once continued.
    if (send_signal(id, SIGCONT)) send_signal(id, SIGTERM);
  }
  auto left = wait_until_none(grace);
  if (left.empty()) return left;
  for (auto i : left) send_signal(ids[i], SIGKILL);
  return wait_until_none(5s);
}

std::filesystem::path find_program(const std::string& name) {
  std::vector<std::filesystem::path> candidates{"/usr/sbin", "/usr/bin", "/usr/local/sbin",
                                                "/usr/local/bin"};
  if (const char* path = std::getenv("PATH")) {
    std::istringstream dirs(path);
    for (std::string dir; std::getline(dirs, dir, ':');)
      if (!dir.empty()) candidates.emplace_back(dir);
  }
  for (const auto& dir : candidates) {
    auto full = dir / name;
    if (::access(full.c_str(), X_OK) == 0) return full;
  }
  throw std::runtime_error(name + " not found in /usr/sbin, /usr/bin or $PATH (install it with " +
                           "tools/install-deps.sh)");
}

std::vector<std::uint16_t> free_ports(const std::string& address, std::size_t count, bool udp) {
  std::vector<std::unique_ptr<Fd>> held;
  std::vector<std::uint16_t> ports;
  for (int attempt = 0; ports.size() < count && attempt < 20 + static_cast<int>(count); ++attempt) {
    auto tcp = std::make_unique<Fd>(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (tcp->get() < 0) throw std::runtime_error("socket: " + errno_text(errno));
    sockaddr_in sa = make_address(address, 0);
    if (::bind(tcp->get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0)
      throw std::runtime_error("cannot bind a port on " + address + ": " + errno_text(errno));
    socklen_t len = sizeof sa;
    if (::getsockname(tcp->get(), reinterpret_cast<sockaddr*>(&sa), &len) != 0)
      throw std::runtime_error("getsockname: " + errno_text(errno));
    if (udp) {
      auto dgram = std::make_unique<Fd>(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
      if (dgram->get() < 0) throw std::runtime_error("socket: " + errno_text(errno));
      if (::bind(dgram->get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) continue;
      held.push_back(std::move(dgram));
    }
    held.push_back(std::move(tcp));
    ports.push_back(ntohs(sa.sin_port));
  }
  if (ports.size() < count)
    throw std::runtime_error("could not find " + std::to_string(count) + " free port(s) on " +
                             address);
  return ports;
}

bool tcp_accepts(const std::string& address, std::uint16_t port,
                 std::chrono::milliseconds timeout) {
  Fd sock(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (sock.get() < 0) return false;
  sockaddr_in sa = make_address(address, port);
  if (::connect(sock.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0) return true;
  if (errno != EINPROGRESS) return false;
  pollfd pfd{sock.get(), POLLOUT, 0};
  if (::poll(&pfd, 1, static_cast<int>(timeout.count())) != 1) return false;
  int error = 0;
  socklen_t len = sizeof error;
  ::getsockopt(sock.get(), SOL_SOCKET, SO_ERROR, &error, &len);
  return error == 0;
}

std::string tail_of_file(const std::filesystem::path& path, std::size_t max_lines) {
  std::ifstream in(path);
  std::deque<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    lines.push_back(line);
    if (lines.size() > max_lines) lines.pop_front();
  }
  std::string out;
  for (const auto& line : lines) {
    if (!out.empty()) out += '\n';
    out += line;
  }
  return out;
}

}  // namespace ringwatch::lab
