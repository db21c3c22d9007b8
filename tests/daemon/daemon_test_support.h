#pragma once
// Test helpers for ringwatchd: a raw HTTP/1.1 exchange over loopback (so tests
// can send what a client library would refuse to: oversized declarations,
// wrong methods), and a child ringwatchd process with its stderr in a file
// and its exit status observable.
//
// Not thread-safe; one owner per object.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/eventually.h"

namespace ringwatch::testing {

struct RawResponse {
  int status = 0;                              // 0: no response
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
  std::string header(const std::string& name) const {
    const auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  }
};

// Sends `raw` to 127.0.0.1:port and reads until the server closes (or 30 s).
inline RawResponse http_raw(std::uint16_t port, const std::string& raw) {
  RawResponse response;
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return response;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    ::close(fd);
    return response;
  }
  std::size_t sent = 0;
  while (sent < raw.size()) {
    const auto n = ::send(fd, raw.data() + sent, raw.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;
    sent += static_cast<std::size_t>(n);
  }
  std::string data;
  char buffer[65536];
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 200) <= 0) continue;
    const auto n = ::recv(fd, buffer, sizeof buffer, 0);
    if (n <= 0) break;
    data.append(buffer, static_cast<std::size_t>(n));
  }
  ::close(fd);
  const auto head_end = data.find("\r\n\r\n");
  if (head_end == std::string::npos) return response;
  std::istringstream head(data.substr(0, head_end));
  std::string line;
  std::getline(head, line);
  if (line.size() > 12) response.status = std::atoi(line.c_str() + 9);
  while (std::getline(head, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string name = line.substr(0, colon);
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    auto value = line.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.erase(0, 1);
    response.headers[name] = value;
  }
  response.body = data.substr(head_end + 4);
  return response;
}

inline RawResponse http_request(std::uint16_t port, const std::string& method,
                                const std::string& target, const std::string& body = {}) {
  std::string raw = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n";
  if (!body.empty() || method == "POST")
    raw += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  raw += "\r\n" + body;
  return http_raw(port, raw);
}

// The value of the first sample line starting with `prefix` (e.g.
// `ringwatch_config_reloads_total{outcome="failure"}`) in Prometheus text; nullopt if none.
inline std::optional<double> metric_value(const std::string& text, const std::string& prefix) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(prefix, 0) == 0 && line.size() > prefix.size() && line[prefix.size()] == ' ') {
      return std::strtod(line.c_str() + prefix.size() + 1, nullptr);
    }
  }
  return std::nullopt;
}

// A child program with stderr in a file; SIGKILLed and reaped by the destructor.
class DaemonProcess {
 public:
  DaemonProcess(std::vector<std::string> argv, std::string stderr_path)
      : stderr_path_(std::move(stderr_path)) {
    pid_ = ::fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      const int err = ::open(stderr_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      const int null = ::open("/dev/null", O_RDWR);
      ::dup2(null, 0);
      ::dup2(null, 1);
      ::dup2(err, 2);
      std::vector<char*> args;
      for (auto& a : argv) args.push_back(a.data());
      args.push_back(nullptr);
      ::execv(args[0], args.data());
      ::_exit(127);
    }
  }
  ~DaemonProcess() {
    if (pid_ > 0 && !status_) {
      ::kill(pid_, SIGKILL);
      int ignored = 0;
      ::waitpid(pid_, &ignored, 0);
    }
  }
  DaemonProcess(const DaemonProcess&) = delete;
  DaemonProcess& operator=(const DaemonProcess&) = delete;

  pid_t pid() const { return pid_; }
  std::string output() const {
    std::ifstream in(stderr_path_);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }
  // The wait status once exited (within `timeout`), else nullopt.
  std::optional<int> wait_exit(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!status_) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        status_ = status;
        break;
      }
      if (std::chrono::steady_clock::now() >= deadline) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return status_;
  }
  // The port from the daemon's "event=listening address=HOST:PORT" line.
  std::uint16_t wait_port(std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
    std::uint16_t port = 0;
    eventually(
        [&] {
          const auto text = output();
          const auto at = text.find("event=listening address=");
          if (at == std::string::npos) return false;
          const auto end = text.find('\n', at);
          const auto line = text.substr(at, end - at);
          port = static_cast<std::uint16_t>(std::atoi(line.c_str() + line.rfind(':') + 1));
          return port != 0;
        },
        timeout);
    return port;
  }

 private:
  pid_t pid_ = -1;
  std::string stderr_path_;
  std::optional<int> status_;
};

}  // namespace ringwatch::testing
