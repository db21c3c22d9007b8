#include "tests/support/memcached_process.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
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

}  // namespace

bool accepts_connections(const std::string& address, std::uint16_t port) {
  const SocketAddress target = socket_address(address, port);
  Fd fd(::socket(target.family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) return false;
  return ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&target.storage), target.length) ==
         0;
}

bool port_is_free(const std::string& address, std::uint16_t port) {
  const SocketAddress target = socket_address(address, port);
  Fd fd(::socket(target.family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) return false;
  return ::bind(fd.get(), reinterpret_cast<const sockaddr*>(&target.storage), target.length) == 0;
}

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
  child_.reset();
  throw std::runtime_error("memcached did not start on " + options_.address + " after " +
                           std::to_string(kAttempts) + " attempts" +
                           (output.empty() ? "" : ": " + output));
}

std::string MemcachedProcess::stderr_output() const {
  std::string output = child_ ? child_->output() : std::string();
  while (!output.empty() && (output.back() == '\n' || output.back() == ' ')) output.pop_back();
  return output;
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

  child_ = std::make_unique<ChildProcess>(std::move(argv));  // keeps only this attempt's output
  endpoint_ = net::Endpoint{options_.address, port};
  const auto deadline = Clock::now() + options_.ready_timeout;
  while (Clock::now() < deadline) {
    // Exited (port taken, bad flag): let the caller retry.
    if (!child_->running()) return false;
    if (accepts_connections(options_.address, port)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  child_->stop(std::chrono::milliseconds(0));
  return false;
}

void MemcachedProcess::stop() {
  if (child_) child_->stop(std::chrono::seconds(2));
}

void MemcachedProcess::pause() {
  if (child_) child_->pause();
}

void MemcachedProcess::resume() {
  if (child_) child_->resume();
}

}  // namespace ringwatch::testing
