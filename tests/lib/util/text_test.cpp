// The shared text helpers: join, join_and, plural, parse_int, columns, cut_to, printable.
#include "lib/util/text.h"

#include <gtest/gtest.h>

namespace ringwatch::util {
namespace {

TEST(TextTest, Base64BothWays) {
  // RFC 4648, section 10.
  const std::vector<std::pair<std::string, std::string>> vectors = {{"", ""},
                                                                    {"f", "Zg=="},
                                                                    {"fo", "Zm8="},
                                                                    {"foo", "Zm9v"},
                                                                    {"foob", "Zm9vYg=="},
                                                                    {"fooba", "Zm9vYmE="},
                                                                    {"foobar", "Zm9vYmFy"}};
  for (const auto& [plain, encoded] : vectors) {
    EXPECT_EQ(base64_encode(plain), encoded);
    EXPECT_EQ(base64_decode(encoded), plain);
  }
  EXPECT_EQ(base64_decode("cmluZ3dhdGNoOnBhOnNz"), "ringwatch:pa:ss");
  EXPECT_EQ(base64_decode("Zm9v!"), std::nullopt);
}

TEST(TextTest, Joins) {
  EXPECT_EQ(join(std::vector<std::string>{}), "");
  EXPECT_EQ(join(std::vector<std::string>{"a"}), "a");
  EXPECT_EQ(join(std::vector<std::string>{"a", "b", "c"}), "a, b, c");
  EXPECT_EQ(join(std::vector<std::string>{"a", "b"}, "; "), "a; b");
  EXPECT_EQ(join({"x", "y"}), "x, y");
}

TEST(TextTest, JoinsForSentences) {
  EXPECT_EQ(join_and({}), "");
  EXPECT_EQ(join_and({"p1"}), "p1");
  EXPECT_EQ(join_and({"p1", "p2"}), "p1 and p2");
  EXPECT_EQ(join_and({"p1", "p2", "p3"}), "p1, p2 and p3");
}

TEST(TextTest, CountsColumnsByCodePointAndCutsWithAnEllipsis) {
  EXPECT_EQ(columns(""), 0u);
  EXPECT_EQ(columns("lab · round"), 11u);
  EXPECT_EQ(columns("p2 — b3"), 7u);
  EXPECT_EQ(cut_to("abcdef", 6), "abcdef");
  EXPECT_EQ(cut_to("abcdef", 4), "abc…");
  EXPECT_EQ(columns(cut_to("abcdef", 4)), 4u);
  EXPECT_EQ(cut_to("a—b—c", 3), "a—…") << "never splits a UTF-8 sequence";
  EXPECT_EQ(cut_to("abc", 0), "");
}

TEST(TextTest, CountsNouns) {
  EXPECT_EQ(plural(1, "error"), "1 error");
  EXPECT_EQ(plural(0, "error"), "0 errors");
  EXPECT_EQ(plural(3, "error"), "3 errors");
  EXPECT_EQ(plural(1, "proxy", "proxies"), "1 proxy");
  EXPECT_EQ(plural(2, "proxy", "proxies"), "2 proxies");
}

TEST(TextTest, ParsesWholeIntegersOnly) {
  EXPECT_EQ(parse_int("42"), 42);
  EXPECT_EQ(parse_int("-7"), -7);
  EXPECT_EQ(parse_int(""), std::nullopt);
  EXPECT_EQ(parse_int("12x"), std::nullopt);
  EXPECT_EQ(parse_int(" 1"), std::nullopt);
  EXPECT_EQ(parse_int("99999999999999999999"), std::nullopt);
  EXPECT_EQ(parse_int<std::uint32_t>("-1"), std::nullopt);
  EXPECT_EQ(parse_int<std::uint32_t>("deadbeef", 16), 0xdeadbeefu);
  EXPECT_EQ(parse_int<std::uint32_t>("100000000", 16), std::nullopt);
}

// Issue 12, point 8: outside text in a message is bounded and valid UTF-8.
TEST(TextTest, PrintableKeepsValidUtf8AndEscapesEverythingElse) {
  EXPECT_EQ(printable("plain text"), "plain text");
  EXPECT_EQ(printable("caf\xc3\xa9 \xe2\x82\xac"), "caf\xc3\xa9 \xe2\x82\xac");  // é €
  EXPECT_EQ(printable("a\r\nb\tc"), "a\\x0d\\x0ab\\x09c");
  EXPECT_EQ(printable(std::string("nul\0", 4)), "nul\\x00");
  EXPECT_EQ(printable("\xff\xfe"), "\\xff\\xfe");
  EXPECT_EQ(printable("\xc3"), "\\xc3");                             // a sequence cut short
  EXPECT_EQ(printable("\xc0\xaf"), "\\xc0\\xaf");                    // overlong "/"
  EXPECT_EQ(printable("\xed\xa0\x80"), "\\xed\\xa0\\x80");           // a surrogate
  EXPECT_EQ(printable("\xf4\x90\x80\x80"), "\\xf4\\x90\\x80\\x80");  // above U+10FFFF
}

TEST(TextTest, PrintableCutsLongTextAtACharacterBoundary) {
  EXPECT_EQ(printable(std::string(1 << 20, 'x')), std::string(kEchoBytes, 'x') + "...");
  EXPECT_EQ(printable("abcdef", 6), "abcdef");
  EXPECT_EQ(printable("abcdefg", 6), "abcdef...");
  EXPECT_EQ(printable("ab\xc3\xa9", 3), "ab...");  // é is not split
  EXPECT_EQ(printable("a\n", 3), "a...");          // nor is an escape
}

}  // namespace
}  // namespace ringwatch::util
