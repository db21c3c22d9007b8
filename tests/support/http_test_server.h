#pragma once
// A tiny HTTP/1.1 listener for sink tests, on 127.0.0.1 (plain POSIX sockets,
// no Beast). One background thread accepts connections one at a time, reads
// one request (headers and a Content-Length body), records it, and answers
// with the configured status, or, in Mode::silent, keeps the connection open
// and never answers (a stalled receiver). HoldBacklog is the other kind of
// stall: a listening socket whose accept queue is full, so a new connect()
// hangs in SYN_SENT until the client's deadline. DeliveryRecorder keeps what
// an http::Delivery (or a sink on one) reports, with the time it came.
//
// Thread-safety: every member function may be called from any thread.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "lib/http/delivery.h"

namespace ringwatch::testing {

struct ReceivedRequest {
  std::string method;
  std::string target;
  std::string content_type;
  std::string body;
  std::chrono::steady_clock::time_point at;
};

class TestHttpServer {
 public:
  enum class Mode { answer, silent };

  // port 0: a free one. Throws std::runtime_error if it cannot listen.
  explicit TestHttpServer(std::uint16_t port = 0);
  ~TestHttpServer();
  TestHttpServer(const TestHttpServer&) = delete;
  TestHttpServer& operator=(const TestHttpServer&) = delete;

  std::uint16_t port() const { return port_; }
  std::string url(const std::string& path = "") const;  // http://127.0.0.1:<port><path>

  void set_mode(Mode mode);
  void set_status(int status, std::string body = {});
  std::vector<ReceivedRequest> requests() const;
  std::size_t connections() const;  // accepted so far
  // True once at least `count` requests (connections) arrived within `timeout`.
  bool wait_for_requests(std::size_t count, std::chrono::milliseconds timeout) const;
  bool wait_for_connections(std::size_t count, std::chrono::milliseconds timeout) const;

 private:
  void run();
  void serve(int fd);

  int listen_fd_ = -1;
  int wake_fd_ = -1;  // eventfd: stop
  std::uint16_t port_ = 0;
  mutable std::mutex mutex_;
  mutable std::condition_variable changed_;
  Mode mode_ = Mode::answer;
  int status_ = 200;
  std::string response_body_;
  std::vector<ReceivedRequest> requests_;
  std::vector<int> held_;  // silent connections, closed on destruction
  std::size_t connections_ = 0;
  std::thread thread_;
};

// A listening socket whose accept queue is full: connects to port() hang.
class HoldBacklog {
 public:
  HoldBacklog();
  ~HoldBacklog();
  HoldBacklog(const HoldBacklog&) = delete;
  HoldBacklog& operator=(const HoldBacklog&) = delete;
  std::uint16_t port() const { return port_; }

 private:
  int listen_fd_ = -1;
  std::vector<int> fillers_;
  std::uint16_t port_ = 0;
};

class DeliveryRecorder final : public http::DeliveryObserver {
 public:
  struct Recorded {
    http::DeliveryEvent event;
    std::chrono::steady_clock::time_point at;
  };
  void on_delivery(const http::DeliveryEvent& event) override;
  std::vector<Recorded> events() const;

 private:
  mutable std::mutex mutex_;
  std::vector<Recorded> events_;
};

}  // namespace ringwatch::testing
