#include "tests/support/fake_peer.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string_view>

#include "lib/util/text.h"

namespace ringwatch::testing {
namespace {

using namespace std::chrono_literals;

// How often a waiting thread looks at the stop flag.
constexpr std::chrono::milliseconds kTick = 10ms;
// The peer keeps at most this much unparsed input per connection.
constexpr std::size_t kMaxInput = 16 * 1024 * 1024;

bool is_storage(const std::string& word) {
  return word == "set" || word == "add" || word == "replace" || word == "append" ||
         word == "prepend" || word == "cas";
}

std::vector<std::string> split_words(std::string_view line) {
  std::vector<std::string> words;
  std::size_t pos = 0;
  while (pos < line.size()) {
    const std::size_t end = std::min(line.find(' ', pos), line.size());
    if (end > pos) words.emplace_back(line.substr(pos, end - pos));
    pos = end + 1;
  }
  return words;
}

// Waits up to one tick for `events` on fd; true when ready.
bool ready(int fd, short events) {
  pollfd pfd{fd, events, 0};
  return ::poll(&pfd, 1, static_cast<int>(kTick.count())) > 0;
}

}  // namespace

FakePeer::FakePeer(const std::string& address) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  sockaddr_in bound{};
  bound.sin_family = AF_INET;
  if (::inet_pton(AF_INET, address.c_str(), &bound.sin_addr) != 1) {
    throw std::runtime_error("FakePeer: not an IPv4 literal: " + address);
  }
  socklen_t length = sizeof bound;
  if (listen_fd_ < 0 || ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&bound), length) != 0 ||
      ::listen(listen_fd_, 64) != 0 ||
      ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&bound), &length) != 0) {
    throw std::runtime_error(std::string("FakePeer: cannot listen: ") + std::strerror(errno));
  }
  endpoint_ = {address, ntohs(bound.sin_port)};
  acceptor_ = std::thread([this] { accept_loop(); });
}

FakePeer::~FakePeer() {
  stop_ = true;
  acceptor_.join();
  for (auto& thread : threads_) thread.join();
  ::close(listen_fd_);
}

void FakePeer::on(const std::string& word, PeerReply reply) {
  on(word, [reply](const PeerCommand&) { return reply; });
}

void FakePeer::on(const std::string& word, Script script) {
  const std::lock_guard lock(mutex_);
  scripts_[word] = std::move(script);
}

void FakePeer::on_connect(PeerReply reply) {
  const std::lock_guard lock(mutex_);
  on_connect_ = std::make_unique<PeerReply>(std::move(reply));
}

void FakePeer::accept_loop() {
  while (!stop_) {
    if (!ready(listen_fd_, POLLIN)) continue;
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) continue;
    ++connections_;
    const std::lock_guard lock(mutex_);
    threads_.emplace_back([this, fd] {
      serve(fd);
      ::close(fd);
    });
  }
}

void FakePeer::serve(int fd) {
  std::unique_ptr<PeerReply> greeting;
  {
    const std::lock_guard lock(mutex_);
    if (on_connect_) greeting = std::make_unique<PeerReply>(*on_connect_);
  }
  if (greeting && !deliver(fd, *greeting)) return;
  std::string input;
  char buffer[64 * 1024];
  while (!stop_) {
    // Every complete command in the input, in order.
    for (;;) {
      const std::size_t eol = input.find('\n');
      if (eol == std::string::npos) break;
      PeerCommand command;
      const std::size_t line_end = eol > 0 && input[eol - 1] == '\r' ? eol - 1 : eol;
      command.words = split_words(std::string_view(input).substr(0, line_end));
      std::size_t consumed = eol + 1;
      if (!command.words.empty() && is_storage(command.words[0]) && command.words.size() >= 5) {
        const auto bytes = util::parse_int<std::size_t>(command.words[4]).value_or(0);
        if (input.size() < consumed + bytes + 2) break;  // the data block is still coming
        command.data = input.substr(consumed, bytes);
        consumed += bytes + 2;
      }
      input.erase(0, consumed);
      if (command.words.empty()) continue;
      if (!deliver(fd, answer(command))) return;
    }
    if (!ready(fd, POLLIN)) continue;
    const ssize_t got = ::recv(fd, buffer, sizeof buffer, 0);
    if (got == 0) return;
    if (got < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      return;
    }
    if (input.size() + static_cast<std::size_t>(got) > kMaxInput) return;
    input.append(buffer, static_cast<std::size_t>(got));
  }
}

PeerReply FakePeer::answer(const PeerCommand& command) {
  const std::string& word = command.words[0];
  Script script;
  {
    const std::lock_guard lock(mutex_);
    if (const auto found = scripts_.find(word); found != scripts_.end()) script = found->second;
  }
  if (script) return script(command);

  if (word == "get" || word == "gets") {
    std::string reply;
    const std::lock_guard lock(mutex_);
    for (std::size_t i = 1; i < command.words.size(); ++i) {
      const auto found = store_.find(command.words[i]);
      if (found == store_.end()) continue;
      reply += "VALUE " + found->first + " 0 " + std::to_string(found->second.size()) +
               (word == "gets" ? " 1" : "") + "\r\n" + found->second + "\r\n";
    }
    return PeerReply::send(reply + "END\r\n");
  }
  if (is_storage(word)) {
    if (command.words.size() >= 2) {
      const std::lock_guard lock(mutex_);
      store_[command.words[1]] = command.data;
    }
    return PeerReply::send(command.words.back() == "noreply" ? "" : "STORED\r\n");
  }
  if (word == "stats") {
    if (command.words.size() > 1) return PeerReply::send("END\r\n");
    return PeerReply::send("STAT pid 1\r\nSTAT version 1.6.0-fake\r\nEND\r\n");
  }
  if (word == "version") return PeerReply::send("VERSION 1.6.0-fake\r\n");
  if (word == "quit") return PeerReply::close_after("");
  return PeerReply::send("ERROR\r\n");
}

bool FakePeer::deliver(int fd, const PeerReply& reply) {
  // Sends `data` whole, or one byte per `interval`; false once the client is
  // gone or the peer stops.
  const auto send_bytes = [&](std::string_view data, std::chrono::milliseconds interval) {
    while (!data.empty() && !stop_) {
      const std::size_t chunk = interval.count() > 0 ? 1 : data.size();
      const ssize_t sent = ::send(fd, data.data(), chunk, MSG_NOSIGNAL);
      if (sent < 0 && (errno == EAGAIN || errno == EINTR)) {
        ready(fd, POLLOUT);
        continue;
      }
      if (sent <= 0) return false;
      bytes_sent_ += static_cast<std::uint64_t>(sent);
      data.remove_prefix(static_cast<std::size_t>(sent));
      for (auto waited = 0ms; waited < interval && !stop_; waited += kTick) {
        std::this_thread::sleep_for(kTick);
      }
    }
    return !stop_;
  };
  if (!send_bytes(reply.bytes, reply.trickle)) return false;
  switch (reply.then) {
    case PeerReply::Then::wait:
      return true;
    case PeerReply::Then::close:
      return false;
    case PeerReply::Then::hang:
      // Read and drop whatever comes, until the client closes.
      while (!stop_) {
        if (!ready(fd, POLLIN)) continue;
        char sink[4096];
        const ssize_t got = ::recv(fd, sink, sizeof sink, 0);
        if (got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR)) return false;
      }
      return false;
    case PeerReply::Then::endless:
      while (send_bytes(reply.filler, {})) {
      }
      return false;
  }
  return false;
}

}  // namespace ringwatch::testing
