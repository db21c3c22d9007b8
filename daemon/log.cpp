#include "daemon/log.h"

#include <chrono>
#include <cstdio>
#include <ctime>
#include <ostream>

#include "lib/util/time.h"

namespace ringwatch::daemon {
namespace {

void append_value(std::string& line, std::string_view value) {
  const bool plain = !value.empty() && value.find_first_of(" \"=\\\t\n") == std::string_view::npos;
  if (plain) {
    line += value;
    return;
  }
  line += '"';
  for (const char c : value) {
    if (c == '"' || c == '\\') {
      line += '\\';
      line += c;
    } else if (c == '\n') {
      line += "\\n";
    } else {
      line += c;
    }
  }
  line += '"';
}

}  // namespace

const char* to_string(LogLevel level) {
  switch (level) {
    case LogLevel::debug:
      return "debug";
    case LogLevel::info:
      return "info";
    case LogLevel::warn:
      return "warn";
    case LogLevel::error:
      return "error";
  }
  return "info";
}

std::optional<LogLevel> parse_log_level(std::string_view text) {
  for (const auto level : {LogLevel::debug, LogLevel::info, LogLevel::warn, LogLevel::error}) {
    if (text == to_string(level)) return level;
  }
  return std::nullopt;
}

Logger::Logger(std::ostream& out, LogLevel level) : out_(out), level_(level) {}

void Logger::log(LogLevel level, std::string_view event, const LogFields& fields) {
  if (!enabled(level)) return;
  std::string line = "ts=" + util::format_rfc3339_ms(std::chrono::system_clock::now()) +
                     " level=" + to_string(level) + " event=";
  append_value(line, event);
  for (const auto& [key, value] : fields) {
    line += ' ';
    line += key;
    line += '=';
    append_value(line, value);
  }
  line += '\n';
  const std::lock_guard lock(mutex_);
  out_ << line << std::flush;
}

std::string format_ms(double ms) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.1f", ms);
  return buffer;
}

}  // namespace ringwatch::daemon
