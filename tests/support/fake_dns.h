#pragma once
// A scriptable, possibly hostile DNS server on loopback for tests: UDP and TCP
// on the same port. A script sees every question and returns the bytes to
// send back (a datagram over UDP; over TCP the raw stream, length prefix
// included, so a script can lie about the length), or nothing (silence).
// Helpers build well-formed replies and the usual kinds of damage: a wrong
// rdlength, the truncation bit, an oversized answer, garbage.
//
// Without a script every question gets NOERROR with no records.
//
// Every TCP connection is served by its own thread; the destructor stops and
// joins them all. Thread-safety: every member function may be called from
// any thread.

#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "lib/net/address.h"

namespace ringwatch::testing {

struct DnsQuestion {
  std::string query;  // the whole query message
  std::uint16_t id = 0;
  std::string name;  // "b1.lab.ringwatch.test"
  std::uint16_t type = 0;
};

struct DnsRecord {
  std::uint16_t type = 1;  // A
  std::string rdata;       // 4 bytes for A, 16 for AAAA
  std::uint32_t ttl = 60;
  std::optional<std::uint16_t> rdlength;  // a lie about rdata's length
};

enum class DnsTransport { udp, tcp };

// The reply to `question`: its header and question, then `answers` (each
// named by a pointer to the question), with `rcode` and, if `truncated`, TC set.
std::string dns_reply(const DnsQuestion& question, const std::vector<DnsRecord>& answers,
                      int rcode = 0, bool truncated = false);
// The rdata of an A (or AAAA) record for an address literal.
std::string address_rdata(const std::string& address);
// A TCP message: the two-byte length prefix, then `message`.
std::string with_length(const std::string& message);

class FakeDns {
 public:
  using Script =
      std::function<std::optional<std::string>(const DnsQuestion&, DnsTransport transport)>;

  // Listens on 127.0.0.1, one free port for both UDP and TCP.
  FakeDns();
  ~FakeDns();
  FakeDns(const FakeDns&) = delete;
  FakeDns& operator=(const FakeDns&) = delete;

  net::Endpoint endpoint() const { return endpoint_; }
  void answer(Script script);
  // Over TCP, close the connection after each reply (or after silence).
  void close_tcp_after_reply(bool close);

  std::size_t udp_queries() const { return udp_queries_.load(); }
  std::size_t tcp_connections() const { return tcp_connections_.load(); }

 private:
  std::optional<std::string> reply_to(const std::string& query, DnsTransport transport);
  void serve_udp();
  void accept_tcp();
  void serve_tcp(int fd);

  net::Endpoint endpoint_;
  int udp_fd_ = -1;
  int tcp_fd_ = -1;
  std::atomic<bool> stop_{false};
  std::atomic<std::size_t> udp_queries_{0};
  std::atomic<std::size_t> tcp_connections_{0};
  std::mutex mutex_;
  Script script_;
  bool close_tcp_ = false;
  std::vector<std::thread> threads_;
  std::thread udp_thread_;
  std::thread tcp_thread_;
};

}  // namespace ringwatch::testing
