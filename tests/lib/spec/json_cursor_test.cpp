// Reading JSON files (issue 12, points 2 and 8): nesting is bounded at parse
// time, syntax errors say line and column, values in messages are bounded
// and numbers are printed as the numbers they are.
#include "lib/spec/json_cursor.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "lib/spec/cluster_spec.h"
#include "lib/util/text.h"

namespace ringwatch::spec {
namespace {

constexpr char kMinimal[] = R"({
  "name": "tiny",
  "proxies": [{"name": "p1", "kind": "memcached-proxy", "client": "127.0.0.1:11311"}],
  "backends": [{"name": "b1", "address": "127.0.0.1", "port": PORT, "dns_name": "b1.test",
                "expected_cidr": "127.0.0.0/8"}]
})";

std::string error_of(std::string_view text) {
  try {
    parse_cluster_spec(text, "cluster.json");
  } catch (const SpecError& e) {
    return e.what();
  }
  return "(accepted)";
}

std::string with_port(const std::string& port) {
  std::string text = kMinimal;
  return text.replace(text.find("PORT"), 4, port);
}

std::string nested(std::size_t depth, const std::string& open, const std::string& close) {
  std::string text;
  for (std::size_t i = 0; i < depth; ++i) text += open;
  text += "1";
  for (std::size_t i = 0; i < depth; ++i) text += close;
  return text;
}

std::string repeated(const std::string& token, std::size_t times) {
  std::string text;
  for (std::size_t i = 0; i < times; ++i) text += token;
  return text;
}

TEST(JsonCursorTest, SyntaxErrorsSayLineAndColumn) {
  EXPECT_EQ(error_of("{\n  \"name\": \"lab\"\n  \"proxies\": []\n}"),
            "cluster.json: invalid JSON at line 3, column 3: Missing a comma or '}' after an "
            "object member.");
  // Columns count characters, not bytes: "é" is one.
  EXPECT_EQ(error_of("{\"name\": \"\xc3\xa9\" x}"),
            "cluster.json: invalid JSON at line 1, column 14: Missing a comma or '}' after an "
            "object member.");
  EXPECT_EQ(error_of("{\"name\":\n"),
            "cluster.json: invalid JSON at line 2, column 1: Invalid value.");
}

TEST(JsonCursorTest, NestingDeeperThanTheLimitIsRefusedWithItsPointer) {
  rapidjson::Document document;
  EXPECT_FALSE(json::parse_bounded(document, nested(json::kMaxDepth, "[", "]")));
  EXPECT_TRUE(document.IsArray());

  const auto arrays = json::parse_bounded(document, nested(json::kMaxDepth + 1, "[", "]"));
  ASSERT_TRUE(arrays);
  EXPECT_EQ(arrays->kind, json::ParseFailure::Kind::too_deep);
  EXPECT_EQ(arrays->pointer, repeated("/0", json::kMaxDepth));
  EXPECT_EQ(arrays->message, "expected at most 32 levels of nesting, got an array at level 33");

  // A million objects, each a member "a/b" of the one around it: stopped at
  // level 33, the pointer escaped (RFC 6901).
  const auto objects = json::parse_bounded(document, nested(1000000, R"({"a/b": )", "}"));
  ASSERT_TRUE(objects);
  EXPECT_EQ(objects->pointer, repeated("/a~1b", json::kMaxDepth));
  EXPECT_EQ(objects->message, "expected at most 32 levels of nesting, got an object at level 33");

  // The second element of an array is counted right.
  const auto second = json::parse_bounded(document, "[1, " + nested(40, "[", "]") + "]", 3);
  ASSERT_TRUE(second);
  EXPECT_EQ(second->pointer, "/1/0/0");
}

TEST(JsonCursorTest, NumbersAreEchoedAsTheNumbersTheyAre) {
  const std::string expectation =
      "cluster.json: /backends/0/port: expected an integer from 1 to 65535, got ";
  EXPECT_EQ(error_of(with_port("18446744073709551616")), expectation + "18446744073709551616");
  EXPECT_EQ(error_of(with_port("-9223372036854775809")), expectation + "-9223372036854775808");
  EXPECT_EQ(error_of(with_port("1e300")), expectation + "1e300");
  EXPECT_EQ(error_of(with_port("1e3")), expectation + "1000.0");
  EXPECT_EQ(error_of(with_port("0.1")), expectation + "0.1");

  rapidjson::Document document;
  ASSERT_FALSE(json::parse_bounded(document, "[18446744073709551616, 1.5, 1e300, -0.0, 7]"));
  EXPECT_EQ(json::render_value(document), "[18446744073709551616,1.5,1e300,-0.0,7]");
}

TEST(JsonCursorTest, ValuesInMessagesAreBounded) {
  std::string text = kMinimal;
  text.replace(text.find(R"("tiny")"), 6, "\"" + std::string(1 << 20, 'x') + "\"");
  const std::string message = error_of(text.replace(text.find("PORT"), 4, "11211"));
  EXPECT_EQ(message,
            "cluster.json: /name: expected a name of 1 to 64 characters from [A-Za-z0-9._-], got "
            "\"" +
                std::string(util::kEchoBytes, 'x') + "...\"");

  rapidjson::Document document;
  ASSERT_FALSE(json::parse_bounded(document, "[" + repeated("12345,", 100000) + "1]"));
  EXPECT_EQ(json::echo_value(document), "[" + repeated("12345,", 19) + "12345...");

  // A 1 MB member name: the pointer is cut too.
  std::string unknown = with_port("11211");
  unknown.insert(1, "\"" + std::string(1 << 20, 'k') + "\": 1, ");
  const std::string unknown_message = error_of(unknown);
  EXPECT_LT(unknown_message.size(), 1000u);
  EXPECT_TRUE(unknown_message.starts_with("cluster.json: /kkkk")) << unknown_message.substr(0, 100);
  EXPECT_NE(unknown_message.find("...: unknown field (expected one of: "), std::string::npos);
}

TEST(JsonCursorTest, AFileWithoutEndIsRefused) {
  try {
    json::read_file("/dev/zero");
    FAIL() << "read an endless file";
  } catch (const SpecError& error) {
    EXPECT_STREQ(error.what(), "/dev/zero: cannot read file: larger than 16 MiB");
  }
}

TEST(JsonCursorTest, QuotedTextIsBoundedInsideItsQuotes) {
  EXPECT_EQ(json::quoted("p1"), "\"p1\"");
  EXPECT_EQ(json::quoted("tab\there"), "\"tab\\there\"");
  EXPECT_EQ(json::quoted(std::string(200, 'q')),
            "\"" + std::string(util::kEchoBytes, 'q') + "...\"");
}

// Numbers are converted by ours, not RapidJSON 1.1's full-precision strtod,
// which normalizes a zero significand with clz(0) (undefined: "0e88", found
// by the fuzz targets under clang's UBSan); each keeps the type the reader
// gives it.
TEST(JsonCursorTest, NumbersKeepTheirTypesAndValues) {
  rapidjson::Document document;
  ASSERT_FALSE(json::parse_bounded(document, R"([0e88, -0.0e9, 1e-400, 1.5, 4294967295,
      4294967296, -2147483648, -2147483649, 18446744073709551615, 18446744073709551616, -0])"));
  const auto& a = document.GetArray();
  ASSERT_EQ(a.Size(), 11u);
  EXPECT_TRUE(a[0].IsDouble() && a[0].GetDouble() == 0.0);
  EXPECT_TRUE(a[1].IsDouble() && a[1].GetDouble() == 0.0 && std::signbit(a[1].GetDouble()));
  EXPECT_TRUE(a[2].IsDouble() && a[2].GetDouble() == 0.0);
  EXPECT_EQ(a[3].GetDouble(), 1.5);
  EXPECT_TRUE(a[4].IsUint() && a[4].GetUint() == 4294967295u);
  EXPECT_TRUE(!a[5].IsUint() && a[5].IsInt64() && a[5].GetInt64() == 4294967296);
  EXPECT_TRUE(a[6].IsInt() && a[6].GetInt() == -2147483647 - 1);
  EXPECT_TRUE(!a[7].IsInt() && a[7].IsInt64() && a[7].GetInt64() == -2147483649);
  EXPECT_TRUE(a[8].IsUint64() && a[8].GetUint64() == 18446744073709551615u);
  EXPECT_TRUE(a[9].IsDouble() && a[9].GetDouble() == 18446744073709551616.0);
  EXPECT_TRUE(a[10].IsInt() && a[10].GetInt() == 0);
  EXPECT_EQ(error_of(R"({"name": 1.8e308})"),
            "cluster.json: invalid JSON at line 1, column 10: Number too big to be stored in "
            "double.");
}

}  // namespace
}  // namespace ringwatch::spec
