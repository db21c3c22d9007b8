#pragma once
// A minimal DNS client for the lab: one A query over UDP to an address
// literal, used to check that the lab's dnsmasq is up and answers what the
// lab wrote. Not a resolver: no recursion, no retries beyond the deadline, no
// TCP fallback. Thread-safe (no shared state).

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace ringwatch::lab {

struct DnsReply {
  int rcode = 0;                       // 0 NOERROR, 3 NXDOMAIN, 5 REFUSED, ...
  std::vector<std::string> addresses;  // the A records of the answer section
};

// Asks server:port for the A records of `name`; nullopt if no valid reply
// arrived within `timeout`.
std::optional<DnsReply> query_a(const std::string& server, std::uint16_t port,
                                const std::string& name, std::chrono::milliseconds timeout);

}  // namespace ringwatch::lab
