#include "tests/support/fake_dns.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <stdexcept>

namespace ringwatch::testing {
namespace {

constexpr int kTickMs = 10;

void put16(std::string& out, std::uint16_t value) {
  out += static_cast<char>(value >> 8);
  out += static_cast<char>(value & 0xff);
}

void put32(std::string& out, std::uint32_t value) {
  put16(out, static_cast<std::uint16_t>(value >> 16));
  put16(out, static_cast<std::uint16_t>(value & 0xffff));
}

std::uint16_t get16(const std::string& in, std::size_t at) {
  return static_cast<std::uint16_t>((static_cast<unsigned char>(in[at]) << 8) |
                                    static_cast<unsigned char>(in[at + 1]));
}

// The question of a query (no compression in questions), or nullopt.
std::optional<DnsQuestion> parse_question(const std::string& query) {
  if (query.size() < 12 + 5) return std::nullopt;
  DnsQuestion question;
  question.query = query;
  question.id = get16(query, 0);
  std::size_t at = 12;
  while (at < query.size() && query[at] != 0) {
    const auto length = static_cast<unsigned char>(query[at]);
    if (length > 63 || at + 1 + length >= query.size()) return std::nullopt;
    if (!question.name.empty()) question.name += '.';
    question.name.append(query, at + 1, length);
    at += 1 + length;
  }
  if (at + 5 > query.size()) return std::nullopt;
  question.type = get16(query, at + 1);
  return question;
}

bool ready(int fd, short events) {
  pollfd pfd{fd, events, 0};
  return ::poll(&pfd, 1, kTickMs) > 0;
}

bool send_all(int fd, const std::string& bytes, const std::atomic<bool>& stop) {
  std::size_t sent = 0;
  while (sent < bytes.size() && !stop) {
    const ssize_t n = ::send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      ready(fd, POLLOUT);
      continue;
    }
    if (n <= 0) return false;
    sent += static_cast<std::size_t>(n);
  }
  return !stop;
}

}  // namespace

std::string dns_reply(const DnsQuestion& question, const std::vector<DnsRecord>& answers, int rcode,
                      bool truncated) {
  // The header and the question are the query's, with QR, RD, RA and the rcode.
  std::size_t question_end = 12;
  while (question_end < question.query.size() && question.query[question_end] != 0) {
    question_end += 1 + static_cast<unsigned char>(question.query[question_end]);
  }
  question_end += 5;
  std::string reply = question.query.substr(0, question_end);
  reply[2] = static_cast<char>(0x81 | (truncated ? 0x02 : 0));
  reply[3] = static_cast<char>(0x80 | (rcode & 0x0f));
  reply.replace(6, 2,
                std::string{static_cast<char>(answers.size() >> 8),
                            static_cast<char>(answers.size() & 0xff)});
  reply.replace(8, 4, std::string(4, '\0'));  // no authority, no additional records
  for (const DnsRecord& record : answers) {
    put16(reply, 0xc00c);  // the name: a pointer to the question
    put16(reply, record.type);
    put16(reply, 1);  // IN
    put32(reply, record.ttl);
    put16(reply, record.rdlength.value_or(static_cast<std::uint16_t>(record.rdata.size())));
    reply += record.rdata;
  }
  return reply;
}

std::string address_rdata(const std::string& address) {
  const auto parsed = net::IpAddress::parse(address);
  if (!parsed) throw std::invalid_argument("not an address literal: " + address);
  return std::string(reinterpret_cast<const char*>(parsed->bytes), parsed->v6 ? 16 : 4);
}

std::string with_length(const std::string& message) {
  std::string out;
  put16(out, static_cast<std::uint16_t>(message.size()));
  return out + message;
}

FakeDns::FakeDns() {
  for (int attempt = 0; attempt < 20 && tcp_fd_ < 0; ++attempt) {
    udp_fd_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    if (udp_fd_ < 0 || ::bind(udp_fd_, reinterpret_cast<sockaddr*>(&address), length) != 0 ||
        ::getsockname(udp_fd_, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
      throw std::runtime_error(std::string("FakeDns: udp: ") + std::strerror(errno));
    }
    const int tcp = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (::bind(tcp, reinterpret_cast<sockaddr*>(&address), length) == 0 && ::listen(tcp, 16) == 0) {
      tcp_fd_ = tcp;
      endpoint_ = {"127.0.0.1", ntohs(address.sin_port)};
    } else {
      ::close(tcp);
      ::close(udp_fd_);
      udp_fd_ = -1;
    }
  }
  if (tcp_fd_ < 0) throw std::runtime_error("FakeDns: no port free for both UDP and TCP");
  udp_thread_ = std::thread([this] { serve_udp(); });
  tcp_thread_ = std::thread([this] { accept_tcp(); });
}

FakeDns::~FakeDns() {
  stop_ = true;
  udp_thread_.join();
  tcp_thread_.join();
  for (auto& thread : threads_) thread.join();
  ::close(udp_fd_);
  ::close(tcp_fd_);
}

void FakeDns::close_tcp_after_reply(bool close) {
  const std::lock_guard lock(mutex_);
  close_tcp_ = close;
}

void FakeDns::answer(Script script) {
  const std::lock_guard lock(mutex_);
  script_ = std::move(script);
}

std::optional<std::string> FakeDns::reply_to(const std::string& query, DnsTransport transport) {
  const auto question = parse_question(query);
  if (!question) return std::nullopt;
  Script script;
  {
    const std::lock_guard lock(mutex_);
    script = script_;
  }
  if (script) return script(*question, transport);
  const std::string reply = dns_reply(*question, {});
  return transport == DnsTransport::tcp ? with_length(reply) : reply;
}

void FakeDns::serve_udp() {
  std::string buffer(65536, '\0');
  while (!stop_) {
    if (!ready(udp_fd_, POLLIN)) continue;
    sockaddr_storage from{};
    socklen_t from_length = sizeof from;
    const ssize_t got = ::recvfrom(udp_fd_, buffer.data(), buffer.size(), 0,
                                   reinterpret_cast<sockaddr*>(&from), &from_length);
    if (got <= 0) continue;
    ++udp_queries_;
    const auto reply = reply_to(buffer.substr(0, static_cast<std::size_t>(got)), DnsTransport::udp);
    if (!reply) continue;
    (void)::sendto(udp_fd_, reply->data(), reply->size(), 0, reinterpret_cast<sockaddr*>(&from),
                   from_length);
  }
}

void FakeDns::accept_tcp() {
  while (!stop_) {
    if (!ready(tcp_fd_, POLLIN)) continue;
    const int fd = ::accept4(tcp_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) continue;
    ++tcp_connections_;
    const std::lock_guard lock(mutex_);
    threads_.emplace_back([this, fd] {
      serve_tcp(fd);
      ::close(fd);
    });
  }
}

void FakeDns::serve_tcp(int fd) {
  std::string input;
  char buffer[4096];
  while (!stop_) {
    while (input.size() >= 2 && input.size() >= 2u + get16(input, 0)) {
      const std::size_t length = get16(input, 0);
      const std::string query = input.substr(2, length);
      input.erase(0, 2 + length);
      if (const auto reply = reply_to(query, DnsTransport::tcp)) {
        if (!send_all(fd, *reply, stop_)) return;
      }
      const std::lock_guard lock(mutex_);
      if (close_tcp_) return;
    }
    if (!ready(fd, POLLIN)) continue;
    const ssize_t got = ::recv(fd, buffer, sizeof buffer, 0);
    if (got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR)) return;
    if (got > 0) input.append(buffer, static_cast<std::size_t>(got));
  }
}

}  // namespace ringwatch::testing
