#include "lib/net/address.h"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <cstring>

namespace ringwatch::net {
namespace {

// Digits only (no sign, no spaces), value within [min, max].
std::optional<unsigned> parse_decimal(std::string_view text, unsigned min, unsigned max) {
  if (text.empty() || text.size() > 5 ||
      !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  unsigned value = 0;
  std::from_chars(text.data(), text.data() + text.size(), value);
  if (value < min || value > max) return std::nullopt;
  return value;
}

}  // namespace

std::optional<IpAddress> IpAddress::parse(std::string_view text) {
  // inet_pton needs a NUL-terminated string; anything longer than the longest
  // v6 literal cannot be one.
  if (text.empty() || text.size() >= INET6_ADDRSTRLEN ||
      text.find('\0') != std::string_view::npos) {
    return std::nullopt;
  }
  const std::string terminated(text);
  IpAddress address;
  address.v6 = text.find(':') != std::string_view::npos;
  if (inet_pton(address.v6 ? AF_INET6 : AF_INET, terminated.c_str(), address.bytes) != 1) {
    return std::nullopt;
  }
  return address;
}

std::string IpAddress::to_string() const {
  char buffer[INET6_ADDRSTRLEN] = {};
  inet_ntop(v6 ? AF_INET6 : AF_INET, bytes, buffer, sizeof buffer);
  return buffer;
}

bool IpAddress::is_loopback() const {
  if (!v6) return bytes[0] == 127;
  static constexpr std::uint8_t kLoopback[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  static constexpr std::uint8_t kV4MappedPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (std::memcmp(bytes, kLoopback, 16) == 0) return true;
  return std::memcmp(bytes, kV4MappedPrefix, 12) == 0 && bytes[12] == 127;
}

std::optional<Endpoint> Endpoint::parse(std::string_view text) {
  std::string_view host;
  std::string_view port;
  bool bracketed = false;
  if (text.starts_with('[')) {
    const auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return std::nullopt;
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
    bracketed = true;
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  // v6 must be bracketed ("::1:53" is ambiguous) and brackets are only for v6.
  const auto address = IpAddress::parse(host);
  const auto port_number = parse_decimal(port, 1, 65535);
  if (!address || address->v6 != bracketed || !port_number) return std::nullopt;
  return Endpoint{std::string(host), static_cast<std::uint16_t>(*port_number)};
}

std::string Endpoint::to_string() const {
  const bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

std::optional<Cidr> Cidr::parse(std::string_view text) {
  const auto slash = text.rfind('/');
  if (slash == std::string_view::npos) return std::nullopt;
  auto address = IpAddress::parse(text.substr(0, slash));
  if (!address) return std::nullopt;
  const auto prefix = parse_decimal(text.substr(slash + 1), 0, address->v6 ? 128 : 32);
  if (!prefix) return std::nullopt;

  const int total_bytes = address->v6 ? 16 : 4;
  for (int i = 0; i < total_bytes; ++i) {
    const int bits_kept = std::clamp(static_cast<int>(*prefix) - i * 8, 0, 8);
    address->bytes[i] &= static_cast<std::uint8_t>(0xff00u >> bits_kept);
  }
  return Cidr{*address, static_cast<int>(*prefix)};
}

bool Cidr::contains(const IpAddress& address) const {
  if (address.v6 != network.v6) return false;
  const int full_bytes = prefix_length / 8;
  if (std::memcmp(address.bytes, network.bytes, full_bytes) != 0) return false;
  const int rest = prefix_length % 8;
  if (rest == 0) return true;
  const auto mask = static_cast<std::uint8_t>(0xff00u >> rest);
  return (address.bytes[full_bytes] & mask) == network.bytes[full_bytes];
}

std::string Cidr::to_string() const {
  return network.to_string() + "/" + std::to_string(prefix_length);
}

}  // namespace ringwatch::net
