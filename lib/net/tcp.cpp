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
#include <utility>
#include <vector>

#include "lib/util/deadlines.h"
#include "lib/util/fd_io.h"

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
  const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
  return static_cast<int>(std::clamp<std::int64_t>(left.count(), 0, 1 << 30));
}

// Waits until `fd` is ready for `events` or `deadline` passes: 1 ready,
// 0 deadline, -1 poll failed (errno set).
int wait_for(int fd, short events, Clock::time_point deadline) {
  for (;;) {
    pollfd pfd{fd, events, 0};
    const int ready = ::poll(&pfd, 1, remaining_ms(deadline));
    if (ready < 0 && errno == EINTR) continue;
    return ready > 0 ? 1 : ready;
  }
}

TcpError deadline_passed(const std::string& label) {
  return TcpError{TcpErrorKind::timeout, label + ": deadline passed"};
}

// What a failed socket call means, in the words every function here uses.
TcpError errno_error_of(const std::string& label, const char* doing, int err) {
  if (err == ECONNREFUSED) return TcpError{TcpErrorKind::refused, label + ": connect refused"};
  if (err == ECONNRESET || err == EPIPE || err == ECONNABORTED) {
    return TcpError{TcpErrorKind::refused, label + ": connection reset by peer"};
  }
  if (err == ETIMEDOUT) {
    return TcpError{TcpErrorKind::timeout, label + ": " + std::string(doing) + " timed out"};
  }
  return TcpError{TcpErrorKind::other,
                  label + ": " + std::string(doing) + ": " + std::strerror(err)};
}

// A connect started without waiting: the socket (non-blocking, TCP_NODELAY)
// and whether it connected at once; otherwise the connect has ended when the
// socket turns writable, and connect_outcome says how.
struct StartedConnect {
  util::UniqueFd socket;
  bool connected = false;
};

Result<StartedConnect, TcpError> start_connect(const Endpoint& endpoint, const std::string& label) {
  const auto address = to_sockaddr(endpoint);
  if (!address)
    return TcpError{TcpErrorKind::invalid, label + ": host is not an IP address literal"};
  StartedConnect started{
      util::UniqueFd(::socket(address->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0))};
  if (started.socket.get() < 0) return errno_error_of(label, "socket", errno);
  const int one = 1;
  ::setsockopt(started.socket.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (::connect(started.socket.get(), reinterpret_cast<const sockaddr*>(&address->storage),
                address->length) == 0) {
    started.connected = true;
  } else if (errno != EINPROGRESS) {
    return errno_error_of(label, "connect", errno);
  }
  return started;
}

// Once a started connect's socket is writable: nothing when it connected.
std::optional<TcpError> connect_outcome(int fd, const std::string& label) {
  int err = 0;
  socklen_t length = sizeof err;
  ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &length);
  if (err != 0) return errno_error_of(label, "connect", err);
  return std::nullopt;
}

}  // namespace

TcpStream::~TcpStream() {
  close();
}

TcpStream::TcpStream(TcpStream&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), label_(std::move(other.label_)) {}

TcpStream& TcpStream::operator=(TcpStream&& other) noexcept {
  if (this != &other) {
    close();
    fd_ = std::exchange(other.fd_, -1);
    label_ = std::move(other.label_);
  }
  return *this;
}

void TcpStream::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

TcpError TcpStream::error(TcpErrorKind kind, const std::string& what) const {
  return TcpError{kind, label_ + ": " + what};
}

TcpError TcpStream::errno_error(const char* doing, int err) const {
  return errno_error_of(label_, doing, err);
}

// Non-blocking connect bounded by `timeout`.
Result<TcpStream, TcpError> TcpStream::open(const Endpoint& endpoint,
                                            std::chrono::milliseconds timeout) {
  auto started = start_connect(endpoint, endpoint.to_string());
  if (!started) return started.error();
  TcpStream stream(started.value().socket.release(), endpoint.to_string());
  if (started.value().connected) return stream;
  const int ready = wait_for(stream.fd_, POLLOUT, Clock::now() + timeout);
  if (ready < 0) return stream.errno_error("poll", errno);
  if (ready == 0) {
    return stream.error(TcpErrorKind::timeout,
                        "connect timed out after " + std::to_string(timeout.count()) + " ms");
  }
  if (auto failed = connect_outcome(stream.fd_, stream.label_)) return *failed;
  return stream;
}

std::optional<TcpError> TcpStream::send_all(std::string_view data, Clock::time_point deadline) {
  while (!data.empty()) {
    if (Clock::now() >= deadline) return deadline_passed(label_);
    const ssize_t sent = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
    if (sent > 0) {
      data.remove_prefix(static_cast<std::size_t>(sent));
      continue;
    }
    if (sent < 0 && errno == EINTR) continue;
    if (sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      const int ready = wait_for(fd_, POLLOUT, deadline);
      if (ready == 0) return deadline_passed(label_);
      if (ready < 0) return errno_error("poll", errno);
      continue;
    }
    return errno_error("send", errno);
  }
  return std::nullopt;
}

Result<std::size_t, TcpError> TcpStream::receive(std::string& out, std::size_t max_bytes,
                                                 Clock::time_point deadline) {
  char buffer[64 * 1024];
  const std::size_t want = std::clamp<std::size_t>(max_bytes, 1, sizeof buffer);
  for (;;) {
    if (Clock::now() >= deadline) return deadline_passed(label_);
    const ssize_t got = ::recv(fd_, buffer, want, 0);
    if (got > 0) {
      out.append(buffer, static_cast<std::size_t>(got));
      return static_cast<std::size_t>(got);
    }
    if (got == 0) return std::size_t{0};
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return errno_error("recv", errno);
    const int ready = wait_for(fd_, POLLIN, deadline);
    if (ready == 0) return deadline_passed(label_);
    if (ready < 0) return errno_error("poll", errno);
  }
}

Result<std::optional<std::size_t>, TcpError> TcpStream::receive_arrived(std::string& out,
                                                                        std::size_t max_bytes) {
  char buffer[64 * 1024];
  const std::size_t want = std::clamp<std::size_t>(max_bytes, 1, sizeof buffer);
  for (;;) {
    const ssize_t got = ::recv(fd_, buffer, want, MSG_DONTWAIT);
    if (got >= 0) {
      out.append(buffer, static_cast<std::size_t>(got));
      return std::optional<std::size_t>(static_cast<std::size_t>(got));
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return std::optional<std::size_t>();
    return errno_error("recv", errno);
  }
}

std::optional<TcpError> TcpStream::wait_readable(Clock::time_point deadline) {
  const int ready = wait_for(fd_, POLLIN, deadline);
  if (ready == 0) return deadline_passed(label_);
  if (ready < 0) return errno_error("poll", errno);
  return std::nullopt;
}

bool TcpStream::idle() const {
  char byte = 0;
  const ssize_t got = ::recv(fd_, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  return got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

Endpoint TcpStream::local() const {
  sockaddr_storage storage{};
  socklen_t length = sizeof storage;
  if (::getsockname(fd_, reinterpret_cast<sockaddr*>(&storage), &length) != 0) return {};
  return from_sockaddr(storage);
}

namespace {

// One exchange's reading, bounded by the io deadline and the reply cap.
class Exchanger {
 public:
  Exchanger(TcpStream stream, util::Deadlines timeouts)
      : stream_(std::move(stream)), timeouts_(timeouts), deadline_(Clock::now() + timeouts.io) {}

  TcpStream& stream() { return stream_; }

  std::optional<TcpError> send(std::string_view request) {
    auto failed = stream_.send_all(request, deadline_);
    if (failed && failed->kind == TcpErrorKind::timeout) return io_timeout();
    return failed;
  }

  // Appends what arrives to `out`. Returns false at EOF, true when data
  // arrived; an error, the deadline or the cap is a TcpError.
  Result<bool, TcpError> receive(std::string& out, std::size_t max_bytes) {
    auto got = stream_.receive(out, max_bytes - std::min(max_bytes, out.size()) + 1, deadline_);
    if (!got) {
      if (got.error().kind == TcpErrorKind::timeout) return io_timeout();
      return got.error();
    }
    if (out.size() > max_bytes) {
      return TcpError{TcpErrorKind::too_large, stream_.label() + ": reply larger than " +
                                                   std::to_string(max_bytes) + " bytes"};
    }
    return got.value() > 0;
  }

 private:
  TcpError io_timeout() const {
    return TcpError{TcpErrorKind::timeout, stream_.label() + ": no complete reply within " +
                                               std::to_string(timeouts_.io.count()) + " ms"};
  }

  TcpStream stream_;
  util::Deadlines timeouts_;
  Clock::time_point deadline_;
};

}  // namespace

Result<std::string, TcpError> read_until_close(const Endpoint& endpoint, util::Deadlines timeouts,
                                               std::size_t max_bytes) {
  auto stream = TcpStream::open(endpoint, timeouts.connect);
  if (!stream) return stream.error();
  Exchanger exchanger(std::move(stream).value(), timeouts);
  std::string reply;
  for (;;) {
    auto got = exchanger.receive(reply, max_bytes);
    if (!got) return got.error();
    if (!got.value()) return reply;
  }
}

Result<Exchange, TcpError> exchange(const Endpoint& endpoint, std::string_view request,
                                    const std::function<bool(std::string_view)>& is_complete,
                                    util::Deadlines timeouts, std::size_t max_bytes) {
  auto stream = TcpStream::open(endpoint, timeouts.connect);
  if (!stream) return stream.error();
  Exchanger exchanger(std::move(stream).value(), timeouts);
  Exchange result;
  result.local = exchanger.stream().local();
  if (auto failed = exchanger.send(request)) return *failed;
  for (;;) {
    auto got = exchanger.receive(result.reply, max_bytes);
    if (!got) return got.error();
    if (!got.value()) return result;  // closed before the reply was complete
    if (is_complete(result.reply)) {
      result.complete = true;
      return result;
    }
  }
}

namespace {

// One connection of send_and_await_close, a small state machine:
//   connecting --writable, connected--> sending --request sent--> draining
//   draining --peer closed--> done, no error
// Any failure, more than max_bytes read, or its deadline (connect's while
// connecting, then io's from the connect on) ends it with that error.
class CloseWait {
 public:
  CloseWait(std::size_t index, const Endpoint& endpoint, std::string_view request,
            util::Deadlines timeouts, std::size_t max_bytes)
      : index_(index),
        label_(endpoint.to_string()),
        unsent_(request),
        timeouts_(timeouts),
        max_bytes_(max_bytes),
        deadline_(Clock::now() + timeouts.connect) {
    start_connect(endpoint);
  }
  std::size_t index() const { return index_; }
  const std::string& label() const { return label_; }
  bool done() const { return stage_ == Stage::done; }
  const std::optional<TcpError>& outcome() const { return outcome_; }
  Clock::time_point deadline() const { return deadline_; }
  pollfd poll_entry() const {
    return pollfd{fd_.get(), static_cast<short>(stage_ == Stage::draining ? POLLIN : POLLOUT), 0};
  }

  // Moves on after poll said `revents` (0: nothing, or not polled yet).
  void advance(short revents) {
    if (stage_ == Stage::connecting && revents != 0) finish_connect();
    if (stage_ == Stage::sending) send_some();
    if (stage_ == Stage::draining && revents != 0) drain();
    if (!done() && Clock::now() >= deadline_) {
      end(TcpError{
          TcpErrorKind::timeout,
          stage_ == Stage::connecting
              ? label_ + ": connect timed out after " + std::to_string(timeouts_.connect.count()) +
                    " ms"
              : label_ + ": no close within " + std::to_string(timeouts_.io.count()) + " ms"});
    }
  }

 private:
  enum class Stage { connecting, sending, draining, done };

  void start_connect(const Endpoint& endpoint) {
    auto started = net::start_connect(endpoint, label_);
    if (!started) return end(started.error());
    fd_ = std::move(started.value().socket);
    if (started.value().connected) connected();
  }

  void finish_connect() {
    if (auto failed = connect_outcome(fd_.get(), label_)) return end(std::move(*failed));
    connected();
  }

  void connected() {
    stage_ = Stage::sending;
    deadline_ = Clock::now() + timeouts_.io;
  }

  void send_some() {
    while (!unsent_.empty()) {
      const ssize_t sent = ::send(fd_.get(), unsent_.data(), unsent_.size(), MSG_NOSIGNAL);
      if (sent > 0) {
        unsent_.remove_prefix(static_cast<std::size_t>(sent));
        continue;
      }
      if (sent < 0 && errno == EINTR) continue;
      if (sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;  // poll again
      return end(errno_error_of(label_, "send", errno));
    }
    stage_ = Stage::draining;
  }

  void drain() {
    char buffer[16 * 1024];
    for (;;) {
      const ssize_t got = ::recv(fd_.get(), buffer, sizeof buffer, 0);
      if (got == 0) return end(std::nullopt);
      if (got < 0 && errno == EINTR) continue;
      if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
      if (got < 0) return end(errno_error_of(label_, "recv", errno));
      received_ += static_cast<std::size_t>(got);
      if (received_ > max_bytes_) {
        return end(TcpError{TcpErrorKind::too_large, label_ + ": reply larger than " +
                                                         std::to_string(max_bytes_) + " bytes"});
      }
    }
  }

  void end(std::optional<TcpError> outcome) {
    outcome_ = std::move(outcome);
    stage_ = Stage::done;
    fd_.reset();
  }

  std::size_t index_;
  std::string label_;
  util::UniqueFd fd_;
  Stage stage_ = Stage::connecting;
  std::string_view unsent_;
  util::Deadlines timeouts_;
  std::size_t max_bytes_;
  std::size_t received_ = 0;
  Clock::time_point deadline_;
  std::optional<TcpError> outcome_;
};

}  // namespace

std::vector<std::optional<TcpError>> send_and_await_close(const std::vector<Endpoint>& endpoints,
                                                          std::string_view request,
                                                          util::Deadlines timeouts,
                                                          std::size_t max_bytes) {
  std::vector<std::optional<TcpError>> outcomes(endpoints.size());
  std::vector<CloseWait> active;
  std::vector<pollfd> entries;
  std::size_t next = 0;
  while (next < endpoints.size() || !active.empty()) {
    while (active.size() < kMaxConcurrentConnections && next < endpoints.size()) {
      active.emplace_back(next, endpoints[next], request, timeouts, max_bytes);
      active.back().advance(0);  // a connect that finished at once sends now
      ++next;
    }
    // Connections that ended (at their start or after the last poll) give
    // their outcome and make room.
    for (const CloseWait& wait : active) {
      if (wait.done()) outcomes[wait.index()] = wait.outcome();
    }
    std::erase_if(active, [](const CloseWait& wait) { return wait.done(); });
    if (active.empty()) continue;

    entries.clear();
    Clock::time_point soonest = active.front().deadline();
    for (const CloseWait& wait : active) {
      entries.push_back(wait.poll_entry());
      soonest = std::min(soonest, wait.deadline());
    }
    const int ready = ::poll(entries.data(), entries.size(), remaining_ms(soonest));
    if (ready < 0 && errno != EINTR) {
      const int err = errno;
      for (CloseWait& wait : active)
        outcomes[wait.index()] = errno_error_of(wait.label(), "poll", err);
      break;
    }
    for (std::size_t i = 0; i < active.size(); ++i) {
      active[i].advance(ready > 0 ? entries[i].revents : short{0});
    }
  }
  return outcomes;
}

}  // namespace ringwatch::net
