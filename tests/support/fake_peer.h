#pragma once
// A scriptable, possibly hostile TCP peer on loopback for tests: it plays a
// memcached backend, a proxy's client port (memcached text protocol) or a
// twemproxy stats port (a document pushed on connect), and misbehaves on
// command: garbage, truncation, silence, closing mid-reply, trickling one
// byte at a time, huge or negative lengths, endless streams.
//
// Without a script it is a small, well-behaved memcached: `set` stores,
// `get`/`gets` answer from the store, `stats` answers a few STAT lines,
// `version`, `quit`. A script replaces the answer to one command word
// (`on("get", ...)`) or sends something as soon as a connection is accepted
// (`on_connect(...)`, the twemproxy stats port's behaviour).
//
// Every connection is served by its own thread; the destructor stops and
// joins them all, whatever they are doing (a trickle or an endless stream
// ends within a few milliseconds). Counters say how much was sent, so a test
// can tell that the client stopped reading.
//
// Thread-safety: every member function may be called from any thread.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "lib/net/address.h"

namespace ringwatch::testing {

// What the peer does for one command (or on connect).
struct PeerReply {
  enum class Then {
    wait,     // then read the next command
    hang,     // then never answer anything again, keep the connection open
    close,    // then close the connection
    endless,  // then send `filler` over and over until the client goes away
  };
  std::string bytes;                     // sent first
  std::chrono::milliseconds trickle{0};  // > 0: one byte of `bytes` per interval
  Then then = Then::wait;
  std::string filler;  // for Then::endless

  static PeerReply send(std::string bytes) { return {std::move(bytes), {}, Then::wait, {}}; }
  static PeerReply never() { return {{}, {}, Then::hang, {}}; }
  static PeerReply hang_after(std::string bytes) { return {std::move(bytes), {}, Then::hang, {}}; }
  static PeerReply close_after(std::string bytes) {
    return {std::move(bytes), {}, Then::close, {}};
  }
  static PeerReply trickled(std::string bytes, std::chrono::milliseconds interval) {
    return {std::move(bytes), interval, Then::wait, {}};
  }
  static PeerReply endless(std::string prefix, std::string filler) {
    return {std::move(prefix), {}, Then::endless, std::move(filler)};
  }
};

// One command as the peer read it: the command line's words and, for
// storage commands, the data block.
struct PeerCommand {
  std::vector<std::string> words;  // "get", "k1", "k2"
  std::string data;
};

class FakePeer {
 public:
  using Script = std::function<PeerReply(const PeerCommand&)>;

  // Listens on `address` (an IPv4 literal), port 0. Throws std::runtime_error
  // if it cannot.
  explicit FakePeer(const std::string& address = "127.0.0.1");
  ~FakePeer();
  FakePeer(const FakePeer&) = delete;
  FakePeer& operator=(const FakePeer&) = delete;

  net::Endpoint endpoint() const { return endpoint_; }

  // Answers every `word` command with `reply` (or with what `script` makes of it).
  void on(const std::string& word, PeerReply reply);
  void on(const std::string& word, Script script);
  // Sends `reply` as soon as a connection is accepted, before reading anything.
  void on_connect(PeerReply reply);

  std::size_t connections() const { return connections_.load(); }
  std::uint64_t bytes_sent() const { return bytes_sent_.load(); }

 private:
  void accept_loop();
  void serve(int fd);
  PeerReply answer(const PeerCommand& command);
  bool deliver(int fd, const PeerReply& reply);  // false: stop serving this connection

  net::Endpoint endpoint_;
  int listen_fd_ = -1;
  std::atomic<bool> stop_{false};
  std::atomic<std::size_t> connections_{0};
  std::atomic<std::uint64_t> bytes_sent_{0};
  mutable std::mutex mutex_;
  std::map<std::string, Script> scripts_;
  std::unique_ptr<PeerReply> on_connect_;
  std::map<std::string, std::string> store_;
  std::vector<std::thread> threads_;
  std::thread acceptor_;
};

}  // namespace ringwatch::testing
