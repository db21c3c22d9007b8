#include "lib/util/time.h"

#include <cstdio>
#include <ctime>
#include <limits>

namespace ringwatch::util {
namespace {

std::tm utc_fields(SystemTime when, int& millis) {
  const auto since_epoch = when.time_since_epoch();
  const auto seconds = std::chrono::floor<std::chrono::seconds>(since_epoch);
  millis = static_cast<int>(
      std::chrono::duration_cast<std::chrono::milliseconds>(since_epoch - seconds).count());
  const auto t = static_cast<std::time_t>(seconds.count());
  std::tm utc{};
  ::gmtime_r(&t, &utc);
  return utc;
}

}  // namespace

std::string format_rfc3339_ms(SystemTime when) {
  int millis = 0;
  const std::tm utc = utc_fields(when, millis);
  char text[64];
  std::snprintf(text, sizeof text, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", utc.tm_year + 1900,
                utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec, millis);
  return text;
}

std::string format_rfc3339(SystemTime when) {
  int millis = 0;
  const std::tm utc = utc_fields(when, millis);
  char text[64];
  std::snprintf(text, sizeof text, "%04d-%02d-%02dT%02d:%02d:%02dZ", utc.tm_year + 1900,
                utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec);
  return text;
}

std::string format_clock_utc(SystemTime when) {
  int millis = 0;
  const std::tm utc = utc_fields(when, millis);
  char text[32];
  std::snprintf(text, sizeof text, "%02d:%02d:%02d UTC", utc.tm_hour, utc.tm_min, utc.tm_sec);
  return text;
}

namespace {

// `count` units of Unit as a time point, or nullopt when the clock's own
// ticks (nanoseconds here) cannot hold it: about ±292 years from 1970.
template <class Unit>
std::optional<SystemTime> from_unix(std::int64_t count) {
  using Ticks = SystemTime::duration;
  constexpr auto limit =
      std::chrono::duration_cast<Unit>(Ticks(std::numeric_limits<Ticks::rep>::max())).count();
  if (count > limit || count < -limit) return std::nullopt;
  return SystemTime(std::chrono::duration_cast<Ticks>(Unit(count)));
}

}  // namespace

std::optional<SystemTime> from_unix_seconds(std::int64_t seconds) {
  return from_unix<std::chrono::seconds>(seconds);
}

std::optional<SystemTime> from_unix_microseconds(std::int64_t microseconds) {
  return from_unix<std::chrono::microseconds>(microseconds);
}

double seconds_between(SystemTime a, SystemTime b) {
  using Seconds = std::chrono::duration<double>;
  return Seconds(a.time_since_epoch()).count() - Seconds(b.time_since_epoch()).count();
}

}  // namespace ringwatch::util
