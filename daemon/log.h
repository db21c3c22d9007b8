#pragma once
// ringwatchd's log: one line per event on stderr (or any stream), key=value
// fields, e.g.
//   ts=2026-11-24T10:23:39.123Z level=info event=round cluster=lab status=CRITICAL duration_ms=12.3
// Values with spaces, quotes or '=' are double-quoted with \" and \\ escaped.
//
// Thread-safety: log() may be called from any thread; a line is written whole.

#include <atomic>
#include <iosfwd>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ringwatch::daemon {

enum class LogLevel { debug = 0, info = 1, warn = 2, error = 3 };
const char* to_string(LogLevel level);  // "debug", "info", "warn", "error"
std::optional<LogLevel> parse_log_level(std::string_view text);

using LogFields = std::vector<std::pair<std::string, std::string>>;

class Logger {
 public:
  explicit Logger(std::ostream& out, LogLevel level = LogLevel::info);
  void set_level(LogLevel level) { level_ = level; }
  bool enabled(LogLevel level) const { return level >= level_.load(); }
  void log(LogLevel level, std::string_view event, const LogFields& fields = {});
  void debug(std::string_view event, const LogFields& fields = {}) {
    log(LogLevel::debug, event, fields);
  }
  void info(std::string_view event, const LogFields& fields = {}) {
    log(LogLevel::info, event, fields);
  }
  void warn(std::string_view event, const LogFields& fields = {}) {
    log(LogLevel::warn, event, fields);
  }
  void error(std::string_view event, const LogFields& fields = {}) {
    log(LogLevel::error, event, fields);
  }

 private:
  std::ostream& out_;
  std::atomic<LogLevel> level_;
  std::mutex mutex_;
};

// "12.3" (one decimal), for duration fields.
std::string format_ms(double ms);

}  // namespace ringwatch::daemon
