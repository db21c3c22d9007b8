#pragma once
// IPv4/IPv6 address literals, host:port endpoints and CIDR ranges.
// ringwatch only ever connects to address literals written in a spec; nothing
// here resolves names. All functions are pure and thread-safe.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ringwatch::net {

// A parsed IP address literal (v4 or v6), kept in network byte order.
struct IpAddress {
  bool v6 = false;
  std::uint8_t bytes[16] = {};  // v4 uses the first 4 bytes

  static std::optional<IpAddress> parse(std::string_view text);
  std::string to_string() const;
  bool is_loopback() const;
  friend bool operator==(const IpAddress&, const IpAddress&) = default;
  friend auto operator<=>(const IpAddress&, const IpAddress&) = default;  // any total order
};

// "host:port" where host is an address literal ("[::1]:11211" for v6). `host`
// holds the literal without brackets; port 0 is rejected.
struct Endpoint {
  std::string host;  // address literal as written
  std::uint16_t port = 0;

  static std::optional<Endpoint> parse(std::string_view text);
  std::string to_string() const;
  friend bool operator==(const Endpoint&, const Endpoint&) = default;
};

// "10.0.0.0/16"; contains() compares only addresses of the same family.
// parse() rejects a missing or out-of-range prefix length (> 32 for v4, > 128
// for v6) and accepts host bits, clearing them: "10.1.2.3/16" is 10.1.0.0/16.
struct Cidr {
  IpAddress network;
  int prefix_length = 0;

  static std::optional<Cidr> parse(std::string_view text);
  bool contains(const IpAddress& address) const;
  std::string to_string() const;
  friend bool operator==(const Cidr&, const Cidr&) = default;
};

}  // namespace ringwatch::net
