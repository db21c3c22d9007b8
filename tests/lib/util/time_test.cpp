// The one home of time formatting: RFC 3339 with and without milliseconds,
// the time of day, and Unix seconds that may not fit the clock.
#include "lib/util/time.h"

#include <gtest/gtest.h>

#include <limits>

namespace ringwatch::util {
namespace {

using namespace std::chrono_literals;

// 2026-11-24T10:23:39.123Z
const SystemTime kWhen = SystemTime(1795515819s + 123ms);

TEST(TimeTest, FormatsRfc3339WithAndWithoutMilliseconds) {
  EXPECT_EQ(format_rfc3339_ms(kWhen), "2026-11-24T10:23:39.123Z");
  EXPECT_EQ(format_rfc3339(kWhen), "2026-11-24T10:23:39Z");
  EXPECT_EQ(format_rfc3339_ms(SystemTime{}), "1970-01-01T00:00:00.000Z");
}

TEST(TimeTest, FormatsTheTimeOfDay) {
  EXPECT_EQ(format_clock_utc(kWhen), "10:23:39 UTC");
}

TEST(TimeTest, BeforeTheEpochMillisecondsCountForward) {
  // 1969-12-31T23:59:59.500Z: floor to the second, then +500 ms.
  EXPECT_EQ(format_rfc3339_ms(SystemTime(-500ms)), "1969-12-31T23:59:59.500Z");
}

TEST(TimeTest, UnixSecondsOutsideTheClockAreRefusedNotOverflowed) {
  EXPECT_EQ(from_unix_seconds(1795515819), SystemTime(1795515819s));
  EXPECT_EQ(from_unix_seconds(0), SystemTime{});
  EXPECT_EQ(from_unix_seconds(std::numeric_limits<std::int64_t>::max()), std::nullopt);
  EXPECT_EQ(from_unix_seconds(std::numeric_limits<std::int64_t>::min()), std::nullopt);
  EXPECT_EQ(from_unix_seconds(9'300'000'000LL), std::nullopt);  // year 2264 is past the clock
  EXPECT_NE(from_unix_seconds(9'200'000'000LL), std::nullopt);
  EXPECT_EQ(from_unix_microseconds(1795515819'000'123), SystemTime(1795515819'000'123us));
  EXPECT_EQ(from_unix_microseconds(std::numeric_limits<std::int64_t>::max()), std::nullopt);
  EXPECT_EQ(from_unix_microseconds(std::numeric_limits<std::int64_t>::min()), std::nullopt);
}

TEST(TimeTest, SecondsBetweenAnyTwoTimesDoNotOverflow) {
  EXPECT_EQ(seconds_between(SystemTime(5s), SystemTime(2s)), 3.0);
  const auto earliest = *from_unix_seconds(-9'200'000'000LL);
  const auto latest = *from_unix_seconds(9'200'000'000LL);
  EXPECT_EQ(seconds_between(latest, earliest), 18'400'000'000.0);
  EXPECT_EQ(seconds_between(earliest, latest), -18'400'000'000.0);
}

}  // namespace
}  // namespace ringwatch::util
