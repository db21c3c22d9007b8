// The registry's check list: one normalisation for every caller (the CLI, the
// fleet file, the daemon's API, the migration checks).

#include "probes/registry.h"

#include <gtest/gtest.h>

#include <algorithm>

#include <stdexcept>
#include <string>
#include <vector>

namespace ringwatch::probes {
namespace {

using Names = std::vector<std::string>;

TEST(RegistryTest, KnownChecksAreInTheOrderARoundRunsThem) {
  EXPECT_EQ(known_checks(), (Names{"canary", "connections", "dns"}));
}

// A migration plan checks names against the vocabulary, not the registry.
TEST(RegistryTest, TheVocabularyListsExactlyTheRegisteredChecks) {
  Names vocabulary(report::checks::kAll.begin(), report::checks::kAll.end());
  Names registered = known_checks();
  std::sort(vocabulary.begin(), vocabulary.end());
  std::sort(registered.begin(), registered.end());
  EXPECT_EQ(registered, vocabulary);
}

TEST(RegistryTest, NormalizeChecksPutsTheRegistrysOrderAndDropsDuplicates) {
  const auto checks = normalize_checks({"dns", "canary", "dns", "connections", "canary"});
  ASSERT_TRUE(checks.ok());
  EXPECT_EQ(checks.value(), (Names{"canary", "connections", "dns"}));

  const auto two = normalize_checks({"dns", "canary"});
  ASSERT_TRUE(two.ok());
  EXPECT_EQ(two.value(), (Names{"canary", "dns"}));

  const auto none = normalize_checks({});
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none.value().empty());
}

TEST(RegistryTest, NormalizeChecksNamesTheFirstUnknownCheckAndTheKnownOnes) {
  const auto checks = normalize_checks({"canary", "bogus", "", "dns"});
  ASSERT_FALSE(checks.ok());
  EXPECT_EQ(checks.error().index, 1u);
  EXPECT_EQ(checks.error().name, "bogus");
  EXPECT_EQ(checks.error().message(), "unknown check \"bogus\" (known: canary, connections, dns)");

  const auto empty = normalize_checks({"dns", ""});
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.error().index, 1u);
  EXPECT_EQ(empty.error().message(), "unknown check \"\" (known: canary, connections, dns)");

  // Case matters: names are identifiers, not words.
  EXPECT_FALSE(normalize_checks({"Canary"}).ok());
}

TEST(RegistryTest, ProbeSetNormalizesItsChecks) {
  const ProbeSet set({"dns", "canary", "dns"});
  EXPECT_EQ(set.checks(), (Names{"canary", "dns"}));
}

TEST(RegistryTest, ProbeSetRefusesAnUnknownCheckWithTheSameText) {
  try {
    ProbeSet set({"canary", "memory"});
    FAIL() << "an unknown check was accepted";
  } catch (const std::invalid_argument& error) {
    EXPECT_STREQ(error.what(), "unknown check \"memory\" (known: canary, connections, dns)");
  }
}

}  // namespace
}  // namespace ringwatch::probes
