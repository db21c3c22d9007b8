#include "lib/net/tcp.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>

#include "lib/util/deadlines.h"

namespace ringwatch::net {

const char* to_string(TcpErrorKind kind) {
  switch (kind) {
    case TcpErrorKind::refused:
      return "refused";
    case TcpErrorKind::timeout:
      return "timeout";
    case TcpErrorKind::too_large:
      return "too_large";
    case TcpErrorKind::invalid:
      return "invalid";
    case TcpErrorKind::other:
      return "other";
  }
  return "other";
}

namespace {

using Clock = std::chrono::steady_clock;

struct SocketAddress {
  sockaddr_storage storage{};
  socklen_t length = 0;
  int family = AF_INET;
};

std::optional<SocketAddress> to_sockaddr(const Endpoint& endpoint) {
  const auto address = IpAddress::parse(endpoint.host);
  if (!address) return std::nullopt;
  SocketAddress result;
  if (address->v6) {
    auto* sa = reinterpret_cast<sockaddr_in6*>(&result.storage);
    sa->sin6_family = AF_INET6;
    sa->sin6_port = htons(endpoint.port);
    std::memcpy(&sa->sin6_addr, address->bytes, 16);
    result.length = sizeof(sockaddr_in6);
    result.family = AF_INET6;
  } else {
    auto* sa = reinterpret_cast<sockaddr_in*>(&result.storage);
    sa->sin_family = AF_INET;
    sa->sin_port = htons(endpoint.port);
    std::memcpy(&sa->sin_addr, address->bytes, 4);
    result.length = sizeof(sockaddr_in);
  }
  return result;
}

Endpoint from_sockaddr(const sockaddr_storage& storage) {
  IpAddress address;
  std::uint16_t port = 0;
  if (storage.ss_family == AF_INET6) {
    const auto* sa = reinterpret_cast<const sockaddr_in6*>(&storage);
    address.v6 = true;
    std::memcpy(address.bytes, &sa->sin6_addr, 16);
    port = ntohs(sa->sin6_port);
  } else {
    const auto* sa = reinterpret_cast<const sockaddr_in*>(&storage);
    std::memcpy(address.bytes, &sa->sin_addr, 4);
    port = ntohs(sa->sin_port);
  }
  return Endpoint{address.to_string(), port};
}

int remaining_ms(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return static_cast<int>(std::clamp<std::int64_t>(left.count(), 0, 1 << 30));
}

class Connection {
 public:
  Connection(const Endpoint& endpoint, util::Deadlines timeouts)
      : label_(endpoint.to_string()), timeouts_(timeouts) {}
  ~Connection() {
    if (fd_ >= 0) ::close(fd_);
  }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  TcpError error(TcpErrorKind kind, const std::string& what) const {
    return TcpError{kind, label_ + ": " + what};
  }
  TcpError errno_error(const char* doing, int err) const {
    if (err == ECONNREFUSED) return error(TcpErrorKind::refused, "connect refused");
    if (err == ECONNRESET || err == EPIPE || err == ECONNABORTED) {
      return error(TcpErrorKind::refused, "connection reset by peer");
    }
    if (err == ETIMEDOUT) return error(TcpErrorKind::timeout, std::string(doing) + " timed out");
    return error(TcpErrorKind::other, std::string(doing) + ": " + std::strerror(err));
  }

  // Non-blocking connect bounded by the connect timeout.
  std::optional<TcpError> open(const Endpoint& endpoint) {
    const auto address = to_sockaddr(endpoint);
    if (!address) {
      return error(TcpErrorKind::invalid, "host is not an IP address literal");
    }
    fd_ = ::socket(address->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd_ < 0) return errno_error("socket", errno);
    const int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (::connect(fd_, reinterpret_cast<const sockaddr*>(&address->storage), address->length) ==
        0) {
      return std::nullopt;
    }
    if (errno != EINPROGRESS) return errno_error("connect", errno);
    const auto deadline = Clock::now() + timeouts_.connect;
    for (;;) {
      pollfd pfd{fd_, POLLOUT, 0};
      const int ready = ::poll(&pfd, 1, remaining_ms(deadline));
      if (ready < 0 && errno == EINTR) continue;
      if (ready < 0) return errno_error("poll", errno);
      if (ready == 0) {
        return error(TcpErrorKind::timeout, "connect timed out after " +
                                                std::to_string(timeouts_.connect.count()) + " ms");
      }
      break;
    }
    int err = 0;
    socklen_t length = sizeof err;
    ::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &length);
    if (err != 0) return errno_error("connect", err);
    return std::nullopt;
  }

  void start_io() { io_deadline_ = Clock::now() + timeouts_.io; }

  TcpError io_timeout() const {
    return error(TcpErrorKind::timeout,
                 "no complete reply within " + std::to_string(timeouts_.io.count()) + " ms");
  }

  std::optional<TcpError> send_all(std::string_view data) {
    while (!data.empty()) {
      const ssize_t sent = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (sent > 0) {
        data.remove_prefix(static_cast<std::size_t>(sent));
        continue;
      }
      if (sent < 0 && errno == EINTR) continue;
      if (sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        pollfd pfd{fd_, POLLOUT, 0};
        const int ready = ::poll(&pfd, 1, remaining_ms(io_deadline_));
        if (ready == 0) return io_timeout();
        if (ready < 0 && errno != EINTR) return errno_error("poll", errno);
        continue;
      }
      return errno_error("send", errno);
    }
    return std::nullopt;
  }

  // Appends what arrives to `out`. Returns false at EOF, true when data
  // arrived; an error or the deadline is a TcpError.
  Result<bool, TcpError> receive(std::string& out, std::size_t max_bytes) {
    char buffer[16 * 1024];
    for (;;) {
      const ssize_t got = ::recv(fd_, buffer, sizeof buffer, 0);
      if (got > 0) {
        if (out.size() + static_cast<std::size_t>(got) > max_bytes) {
          return error(TcpErrorKind::too_large,
                       "reply larger than " + std::to_string(max_bytes) + " bytes");
        }
        out.append(buffer, static_cast<std::size_t>(got));
        return true;
      }
      if (got == 0) return false;
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) return errno_error("recv", errno);
      pollfd pfd{fd_, POLLIN, 0};
      const int ready = ::poll(&pfd, 1, remaining_ms(io_deadline_));
      if (ready == 0) return io_timeout();
      if (ready < 0 && errno != EINTR) return errno_error("poll", errno);
    }
  }

  Endpoint local() const {
    sockaddr_storage storage{};
    socklen_t length = sizeof storage;
    if (::getsockname(fd_, reinterpret_cast<sockaddr*>(&storage), &length) != 0) return {};
    return from_sockaddr(storage);
  }

 private:
  std::string label_;
  util::Deadlines timeouts_;
  int fd_ = -1;
  Clock::time_point io_deadline_{};
};

}  // namespace

Result<std::string, TcpError> read_until_close(const Endpoint& endpoint, util::Deadlines timeouts,
                                               std::size_t max_bytes) {
  Connection connection(endpoint, timeouts);
  if (auto failed = connection.open(endpoint)) return *failed;
  connection.start_io();
  std::string reply;
  for (;;) {
    auto got = connection.receive(reply, max_bytes);
    if (!got) return got.error();
    if (!got.value()) return reply;
  }
}

Result<Exchange, TcpError> exchange(const Endpoint& endpoint, std::string_view request,
                                    const std::function<bool(std::string_view)>& is_complete,
                                    util::Deadlines timeouts, std::size_t max_bytes) {
  Connection connection(endpoint, timeouts);
  if (auto failed = connection.open(endpoint)) return *failed;
  Exchange result;
  result.local = connection.local();
  connection.start_io();
  if (auto failed = connection.send_all(request)) return *failed;
  for (;;) {
    auto got = connection.receive(result.reply, max_bytes);
    if (!got) return got.error();
    if (!got.value()) return result;  // closed before the reply was complete
    if (is_complete(result.reply)) {
      result.complete = true;
      return result;
    }
  }
}

}  // namespace ringwatch::net
