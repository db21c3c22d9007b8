#include "probes/canary/canary_keys.h"

#include <gtest/gtest.h>

namespace ringwatch::probes::canary {
namespace {

TEST(CanaryKeysTest, KeyCarriesPrefixIndexClusterAndGeneration) {
  const std::string key = make_key("ringwatch:", "lab", "5f3a01", 17);
  EXPECT_TRUE(key.starts_with("ringwatch:")) << key;
  EXPECT_TRUE(key.ends_with("-17:lab:5f3a01")) << key;
  EXPECT_NE(make_key("ringwatch:", "lab", "5f3a01", 18).substr(0, 18), key.substr(0, 18))
      << "the varying part must come right after the prefix";
}

TEST(CanaryKeysTest, ValueRoundTripsAndIsPaddedToSize) {
  const std::string value = encode_value("p2", 42, "ringwatch:lab:1:0", 64);
  EXPECT_EQ(value.size(), 64u);
  const auto decoded = decode_value(value);
  ASSERT_TRUE(decoded);
  EXPECT_EQ(decoded->writer, "p2");
  EXPECT_EQ(decoded->round, 42u);
  EXPECT_EQ(decoded->key_tag, key_tag("ringwatch:lab:1:0"));
}

TEST(CanaryKeysTest, ForeignValuesDoNotDecode) {
  EXPECT_FALSE(decode_value("hello"));
  EXPECT_FALSE(decode_value("rwc1|p1|notanumber|00000000|"));
  EXPECT_FALSE(decode_value("rwc1|p1|12|xyz|"));
  EXPECT_FALSE(decode_value("rwc1||12|00000000|"));
}

TEST(CanaryKeysTest, DifferentWritersRoundsAndKeysGiveDifferentValues) {
  const std::string base = encode_value("p1", 1, "k", 32);
  EXPECT_NE(base, encode_value("p2", 1, "k", 32));
  EXPECT_NE(base, encode_value("p1", 2, "k", 32));
  EXPECT_NE(base, encode_value("p1", 1, "k2", 32));
}

}  // namespace
}  // namespace ringwatch::probes::canary
