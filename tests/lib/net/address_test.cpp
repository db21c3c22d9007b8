#include "lib/net/address.h"

#include <gtest/gtest.h>

#include <vector>

namespace ringwatch::net {
namespace {

IpAddress ip(std::string_view text) {
  const auto parsed = IpAddress::parse(text);
  EXPECT_TRUE(parsed.has_value()) << text;
  return parsed.value_or(IpAddress{});
}

Cidr cidr(std::string_view text) {
  const auto parsed = Cidr::parse(text);
  EXPECT_TRUE(parsed.has_value()) << text;
  return parsed.value_or(Cidr{});
}

TEST(IpAddressTest, ParsesV4) {
  const auto address = ip("127.10.0.11");
  EXPECT_FALSE(address.v6);
  EXPECT_EQ(address.bytes[0], 127);
  EXPECT_EQ(address.bytes[1], 10);
  EXPECT_EQ(address.bytes[2], 0);
  EXPECT_EQ(address.bytes[3], 11);
  EXPECT_EQ(address.to_string(), "127.10.0.11");
}

TEST(IpAddressTest, ParsesV6AndPrintsCanonicalForm) {
  const auto address = ip("2001:DB8:0:0:0:0:0:1");
  EXPECT_TRUE(address.v6);
  EXPECT_EQ(address.bytes[0], 0x20);
  EXPECT_EQ(address.bytes[15], 1);
  EXPECT_EQ(address.to_string(), "2001:db8::1");
  EXPECT_EQ(ip("::1").to_string(), "::1");
  EXPECT_EQ(ip("::").to_string(), "::");
  EXPECT_EQ(ip("::ffff:10.0.0.1").to_string(), "::ffff:10.0.0.1");
}

TEST(IpAddressTest, RejectsNamesAndGarbage) {
  for (const std::string_view text : std::vector<std::string_view>{
           "", "localhost", "b1.lab.ringwatch.test", "1.2.3", "1.2.3.4.5", "256.0.0.1", "01.2.3.4",
           " 1.2.3.4", "1.2.3.4 ", "1.2.3.4:80", "[::1]", "::1::", "fe80::1%eth0",
           "1:2:3:4:5:6:7:8:9", std::string_view("1.2.3.4\0", 8)}) {
    EXPECT_FALSE(IpAddress::parse(text).has_value()) << text;
  }
}

TEST(IpAddressTest, Loopback) {
  EXPECT_TRUE(ip("127.0.0.1").is_loopback());
  EXPECT_TRUE(ip("127.200.3.4").is_loopback());
  EXPECT_TRUE(ip("::1").is_loopback());
  EXPECT_TRUE(ip("::ffff:127.0.0.1").is_loopback());
  EXPECT_FALSE(ip("128.0.0.1").is_loopback());
  EXPECT_FALSE(ip("10.0.0.1").is_loopback());
  EXPECT_FALSE(ip("::2").is_loopback());
  EXPECT_FALSE(ip("::").is_loopback());
  EXPECT_FALSE(ip("::ffff:10.0.0.1").is_loopback());
}

TEST(IpAddressTest, ComparesByValue) {
  EXPECT_EQ(ip("::1"), ip("0:0:0:0:0:0:0:1"));
  EXPECT_NE(ip("10.0.0.1"), ip("10.0.0.2"));
  EXPECT_NE(ip("0.0.0.0"), ip("::"));
}

TEST(EndpointTest, ParsesV4AndV6) {
  EXPECT_EQ(Endpoint::parse("127.10.1.1:22121"), (Endpoint{"127.10.1.1", 22121}));
  EXPECT_EQ(Endpoint::parse("[::1]:53"), (Endpoint{"::1", 53}));
  EXPECT_EQ(Endpoint::parse("[2001:db8::7]:65535"), (Endpoint{"2001:db8::7", 65535}));
  EXPECT_EQ(Endpoint::parse("10.0.0.1:1"), (Endpoint{"10.0.0.1", 1}));
}

TEST(EndpointTest, ToStringBracketsV6) {
  EXPECT_EQ((Endpoint{"127.0.0.1", 11211}).to_string(), "127.0.0.1:11211");
  EXPECT_EQ((Endpoint{"::1", 11211}).to_string(), "[::1]:11211");
  EXPECT_EQ(Endpoint::parse("[::1]:5353")->to_string(), "[::1]:5353");
}

TEST(EndpointTest, RejectsBadPortsAndHosts) {
  for (const std::string_view text : {"",
                                      "127.0.0.1",
                                      "127.0.0.1:",
                                      "127.0.0.1:0",
                                      "127.0.0.1:65536",
                                      "127.0.0.1:99999",
                                      "127.0.0.1:123456",
                                      "127.0.0.1:-1",
                                      "127.0.0.1:+80",
                                      "127.0.0.1:80 ",
                                      "127.0.0.1:8o",
                                      "127.0.0.1:0x50",
                                      "localhost:11211",
                                      "b1.lab.test:11211",
                                      ":11211",
                                      "::1:53",
                                      "[::1]",
                                      "[::1]53",
                                      "[::1]:",
                                      "[127.0.0.1]:53",
                                      "[::1:53",
                                      "::1]:53",
                                      "[localhost]:53"}) {
    EXPECT_FALSE(Endpoint::parse(text).has_value()) << text;
  }
}

TEST(CidrTest, ParsesAndPrints) {
  const auto range = cidr("127.10.0.0/16");
  EXPECT_EQ(range.network, ip("127.10.0.0"));
  EXPECT_EQ(range.prefix_length, 16);
  EXPECT_EQ(range.to_string(), "127.10.0.0/16");
  EXPECT_EQ(cidr("fd00::/8").to_string(), "fd00::/8");
}

TEST(CidrTest, ClearsHostBits) {
  EXPECT_EQ(cidr("10.1.2.3/16").to_string(), "10.1.0.0/16");
  EXPECT_EQ(cidr("10.1.2.3/16"), cidr("10.1.0.0/16"));
  EXPECT_EQ(cidr("10.255.255.255/12").to_string(), "10.240.0.0/12");
  EXPECT_EQ(cidr("10.1.2.3/0").to_string(), "0.0.0.0/0");
  EXPECT_EQ(cidr("10.1.2.3/32").to_string(), "10.1.2.3/32");
  EXPECT_EQ(cidr("2001:db8:ffff::1/33").to_string(), "2001:db8:8000::/33");
}

TEST(CidrTest, RejectsGarbage) {
  for (const std::string_view text :
       std::vector<std::string_view>{"", "10.0.0.0", "10.0.0.0/", "10.0.0.0/33", "10.0.0.0/-1",
                                     "10.0.0.0/+8", "10.0.0.0/8 ", "10.0.0.0/1000", "10.0.0.0/8/8",
                                     "/8", "::/129", "lab.test/8", "10.0.0/8", "10.0.0.0/x"}) {
    EXPECT_FALSE(Cidr::parse(text).has_value()) << text;
  }
}

TEST(CidrTest, ContainsAtBoundaries) {
  const auto range = cidr("127.10.0.0/16");
  EXPECT_TRUE(range.contains(ip("127.10.0.0")));
  EXPECT_TRUE(range.contains(ip("127.10.255.255")));
  EXPECT_FALSE(range.contains(ip("127.9.255.255")));
  EXPECT_FALSE(range.contains(ip("127.11.0.0")));

  const auto odd = cidr("10.0.0.128/25");
  EXPECT_TRUE(odd.contains(ip("10.0.0.128")));
  EXPECT_TRUE(odd.contains(ip("10.0.0.255")));
  EXPECT_FALSE(odd.contains(ip("10.0.0.127")));
  EXPECT_FALSE(odd.contains(ip("10.0.1.0")));
}

TEST(CidrTest, SlashZeroContainsEverythingOfItsFamily) {
  EXPECT_TRUE(cidr("0.0.0.0/0").contains(ip("0.0.0.0")));
  EXPECT_TRUE(cidr("0.0.0.0/0").contains(ip("255.255.255.255")));
  EXPECT_TRUE(cidr("::/0").contains(ip("ffff::1")));
  EXPECT_FALSE(cidr("0.0.0.0/0").contains(ip("::1")));
  EXPECT_FALSE(cidr("::/0").contains(ip("127.0.0.1")));
}

TEST(CidrTest, HostRouteContainsOnlyItself) {
  EXPECT_TRUE(cidr("127.10.0.11/32").contains(ip("127.10.0.11")));
  EXPECT_FALSE(cidr("127.10.0.11/32").contains(ip("127.10.0.12")));
  EXPECT_FALSE(cidr("127.10.0.11/32").contains(ip("127.10.0.10")));
  EXPECT_TRUE(cidr("::1/128").contains(ip("::1")));
  EXPECT_FALSE(cidr("::1/128").contains(ip("::2")));
}

TEST(CidrTest, NeverMatchesTheOtherFamily) {
  // ::ffff:127.10.0.1 is the v4-mapped form of an address inside the range,
  // but contains() compares only addresses of the same family.
  EXPECT_FALSE(cidr("127.10.0.0/16").contains(ip("::ffff:127.10.0.1")));
  EXPECT_FALSE(cidr("::ffff:127.10.0.0/112").contains(ip("127.10.0.1")));
  EXPECT_TRUE(cidr("fd00::/8").contains(ip("fd12:3456::1")));
  EXPECT_FALSE(cidr("fd00::/8").contains(ip("fe00::1")));
}

}  // namespace
}  // namespace ringwatch::net
