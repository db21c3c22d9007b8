#include "tests/support/http_test_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace ringwatch::testing {

namespace {

int listen_on(std::uint16_t port, int backlog, std::uint16_t* bound_port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
      ::listen(fd, backlog) != 0) {
    const std::string error = std::strerror(errno);
    ::close(fd);
    throw std::runtime_error("listen on 127.0.0.1:" + std::to_string(port) + ": " + error);
  }
  socklen_t length = sizeof(address);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  *bound_port = ntohs(address.sin_port);
  return fd;
}

std::string lower(std::string text) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

const char* reason(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 202:
      return "Accepted";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 429:
      return "Too Many Requests";
    case 500:
      return "Internal Server Error";
    case 503:
      return "Service Unavailable";
    default:
      return "Status";
  }
}

}  // namespace

TestHttpServer::TestHttpServer(std::uint16_t port) {
  listen_fd_ = listen_on(port, 16, &port_);
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC);
  thread_ = std::thread([this] { run(); });
}

TestHttpServer::~TestHttpServer() {
  const std::uint64_t one = 1;
  [[maybe_unused]] auto written = ::write(wake_fd_, &one, sizeof(one));
  thread_.join();
  for (int fd : held_) ::close(fd);
  ::close(listen_fd_);
  ::close(wake_fd_);
}

std::string TestHttpServer::url(const std::string& path) const {
  return "http://127.0.0.1:" + std::to_string(port_) + path;
}

void TestHttpServer::set_mode(Mode mode) {
  std::lock_guard lock(mutex_);
  mode_ = mode;
}

void TestHttpServer::set_status(int status, std::string body) {
  std::lock_guard lock(mutex_);
  status_ = status;
  response_body_ = std::move(body);
}

std::vector<ReceivedRequest> TestHttpServer::requests() const {
  std::lock_guard lock(mutex_);
  return requests_;
}

std::size_t TestHttpServer::connections() const {
  std::lock_guard lock(mutex_);
  return connections_;
}

bool TestHttpServer::wait_for_requests(std::size_t count, std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mutex_);
  return changed_.wait_for(lock, timeout, [&] { return requests_.size() >= count; });
}

bool TestHttpServer::wait_for_connections(std::size_t count,
                                          std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mutex_);
  return changed_.wait_for(lock, timeout, [&] { return connections_ >= count; });
}

void TestHttpServer::run() {
  for (;;) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[1].revents != 0) return;
    if ((fds[0].revents & POLLIN) == 0) continue;
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    {
      std::lock_guard lock(mutex_);
      ++connections_;
      if (mode_ == Mode::silent) {
        held_.push_back(fd);
        changed_.notify_all();
        continue;
      }
    }
    changed_.notify_all();
    serve(fd);
    ::close(fd);
  }
}

void TestHttpServer::serve(int fd) {
  std::string data;
  std::size_t header_end = std::string::npos;
  std::size_t content_length = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  for (;;) {
    if (header_end != std::string::npos && data.size() >= header_end + 4 + content_length) break;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return;
    pollfd pfd{fd, POLLIN, 0};
    if (::poll(&pfd, 1, static_cast<int>(left.count())) <= 0) return;
    char buffer[8192];
    const ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n <= 0) return;
    data.append(buffer, static_cast<std::size_t>(n));
    if (header_end == std::string::npos) {
      header_end = data.find("\r\n\r\n");
      if (header_end != std::string::npos) {
        const std::string headers = lower(data.substr(0, header_end));
        const std::size_t at = headers.find("\r\ncontent-length:");
        if (at != std::string::npos) content_length = std::stoul(headers.substr(at + 17));
      }
    }
  }
  ReceivedRequest request;
  request.at = std::chrono::steady_clock::now();
  const std::string head = data.substr(0, header_end);
  const std::size_t line_end = head.find("\r\n");
  const std::string request_line = head.substr(0, line_end);
  const std::size_t space1 = request_line.find(' ');
  const std::size_t space2 = request_line.find(' ', space1 + 1);
  request.method = request_line.substr(0, space1);
  request.target = request_line.substr(space1 + 1, space2 - space1 - 1);
  const std::string lowered = lower(head);
  const std::size_t type_at = lowered.find("\r\ncontent-type:");
  if (type_at != std::string::npos) {
    std::size_t start = type_at + 15;
    while (start < head.size() && head[start] == ' ') ++start;
    request.content_type = head.substr(start, head.find("\r\n", start) - start);
  }
  request.body = data.substr(header_end + 4, content_length);

  int status;
  std::string body;
  {
    std::lock_guard lock(mutex_);
    status = status_;
    body = response_body_;
    requests_.push_back(std::move(request));
  }
  changed_.notify_all();
  const std::string response =
      "HTTP/1.1 " + std::to_string(status) + " " + reason(status) +
      "\r\nContent-Type: text/plain\r\nContent-Length: " + std::to_string(body.size()) +
      "\r\nConnection: close\r\n\r\n" + body;
  std::size_t sent = 0;
  while (sent < response.size()) {
    const ssize_t n = ::send(fd, response.data() + sent, response.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return;
    sent += static_cast<std::size_t>(n);
  }
}

HoldBacklog::HoldBacklog() {
  listen_fd_ = listen_on(0, 0, &port_);
  // With backlog 0 the accept queue holds one connection; fill it. Further
  // SYNs are dropped while it is full.
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port_);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  for (int i = 0; i < 2; ++i) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address));
    fillers_.push_back(fd);
  }
  // Let the handshakes finish.
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
}

HoldBacklog::~HoldBacklog() {
  for (int fd : fillers_) ::close(fd);
  ::close(listen_fd_);
}

void DeliveryRecorder::on_delivery(const http::DeliveryEvent& event) {
  std::lock_guard lock(mutex_);
  events_.push_back({event, std::chrono::steady_clock::now()});
}

std::vector<DeliveryRecorder::Recorded> DeliveryRecorder::events() const {
  std::lock_guard lock(mutex_);
  return events_;
}

}  // namespace ringwatch::testing
