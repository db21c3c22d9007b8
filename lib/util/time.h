#pragma once
// Wall-clock times as text, UTC. The one place the report, the logs, the
// journal, the notifications and the lab format a time.
//
// Pure and thread-safe (gmtime_r).

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace ringwatch::util {

using SystemTime = std::chrono::system_clock::time_point;

// RFC 3339 with milliseconds: "2026-11-24T10:23:39.123Z".
std::string format_rfc3339_ms(SystemTime when);
// RFC 3339 to the second: "2026-11-24T10:23:39Z".
std::string format_rfc3339(SystemTime when);
// The time of day for people: "10:23:39 UTC".
std::string format_clock_utc(SystemTime when);

// A Unix time in seconds as a time point, or nullopt when it does not fit the
// clock's range (a peer's stats may carry any 64-bit number).
std::optional<SystemTime> from_unix_seconds(std::int64_t seconds);
// The same for microseconds (twemproxy's server_ejected_at).
std::optional<SystemTime> from_unix_microseconds(std::int64_t microseconds);
// a - b in seconds, computed without overflow whatever the two times are.
double seconds_between(SystemTime a, SystemTime b);

}  // namespace ringwatch::util
