#include "tools/lab/dns_query.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <random>

namespace ringwatch::lab {
namespace {

using Clock = std::chrono::steady_clock;

void put16(std::vector<std::uint8_t>& out, std::uint16_t value) {
  out.push_back(static_cast<std::uint8_t>(value >> 8));
  out.push_back(static_cast<std::uint8_t>(value & 0xff));
}

std::uint16_t get16(const std::uint8_t* p) {
  return static_cast<std::uint16_t>((p[0] << 8) | p[1]);
}

std::optional<std::vector<std::uint8_t>> encode_query(std::uint16_t id, const std::string& name) {
  std::vector<std::uint8_t> packet;
  put16(packet, id);
  put16(packet, 0x0100);  // standard query, recursion desired
  put16(packet, 1);       // one question
  put16(packet, 0);
  put16(packet, 0);
  put16(packet, 0);
  std::size_t start = 0;
  while (start <= name.size()) {
    auto dot = name.find('.', start);
    if (dot == std::string::npos) dot = name.size();
    auto length = dot - start;
    if (length == 0 && dot != name.size()) return std::nullopt;  // empty label
    if (length > 63) return std::nullopt;
    if (length > 0) {
      packet.push_back(static_cast<std::uint8_t>(length));
      packet.insert(packet.end(), name.begin() + static_cast<std::ptrdiff_t>(start),
                    name.begin() + static_cast<std::ptrdiff_t>(dot));
    }
    start = dot + 1;
  }
  packet.push_back(0);
  put16(packet, 1);  // A
  put16(packet, 1);  // IN
  return packet;
}

// Skips a (possibly compressed) name; returns the offset after it or 0.
std::size_t skip_name(const std::vector<std::uint8_t>& msg, std::size_t pos) {
  while (pos < msg.size()) {
    std::uint8_t length = msg[pos];
    if ((length & 0xc0) == 0xc0) return pos + 2 <= msg.size() ? pos + 2 : 0;
    if (length == 0) return pos + 1;
    pos += 1 + length;
  }
  return 0;
}

std::optional<DnsReply> decode_reply(const std::vector<std::uint8_t>& msg, std::uint16_t id) {
  if (msg.size() < 12 || get16(msg.data()) != id || !(msg[2] & 0x80)) return std::nullopt;
  DnsReply reply;
  reply.rcode = msg[3] & 0x0f;
  std::uint16_t questions = get16(&msg[4]);
  std::uint16_t answers = get16(&msg[6]);
  std::size_t pos = 12;
  for (int i = 0; i < questions; ++i) {
    pos = skip_name(msg, pos);
    if (pos == 0 || pos + 4 > msg.size()) return std::nullopt;
    pos += 4;
  }
  for (int i = 0; i < answers; ++i) {
    pos = skip_name(msg, pos);
    if (pos == 0 || pos + 10 > msg.size()) return std::nullopt;
    std::uint16_t type = get16(&msg[pos]);
    std::uint16_t klass = get16(&msg[pos + 2]);
    std::uint16_t length = get16(&msg[pos + 8]);
    pos += 10;
    if (pos + length > msg.size()) return std::nullopt;
    if (type == 1 && klass == 1 && length == 4) {
      char text[INET_ADDRSTRLEN];
      ::inet_ntop(AF_INET, &msg[pos], text, sizeof text);
      reply.addresses.emplace_back(text);
    }
    pos += length;
  }
  return reply;
}

}  // namespace

std::optional<DnsReply> query_a(const std::string& server, std::uint16_t port,
                                const std::string& name, std::chrono::milliseconds timeout) {
  std::random_device random;
  auto id = static_cast<std::uint16_t>(random());
  auto query = encode_query(id, name);
  if (!query) return std::nullopt;
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  if (::inet_pton(AF_INET, server.c_str(), &sa.sin_addr) != 1) return std::nullopt;
  int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return std::nullopt;
  std::optional<DnsReply> result;
  // connect() so that only the server's datagrams are delivered to us.
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0 &&
      ::send(fd, query->data(), query->size(), 0) == static_cast<ssize_t>(query->size())) {
    auto deadline = Clock::now() + timeout;
    std::vector<std::uint8_t> buffer(1500);
    while (!result) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (left.count() <= 0) break;
      pollfd pfd{fd, POLLIN, 0};
      if (::poll(&pfd, 1, static_cast<int>(left.count())) != 1) break;
      ssize_t got = ::recv(fd, buffer.data(), buffer.size(), 0);
      if (got < 0) break;  // e.g. ECONNREFUSED: nothing listens there
      result = decode_reply({buffer.begin(), buffer.begin() + got}, id);
    }
  }
  ::close(fd);
  return result;
}

}  // namespace ringwatch::lab
