#include "lib/report/report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <utility>

namespace ringwatch::report {

const char* to_string(Status status) {
  switch (status) {
    case Status::ok:
      return "OK";
    case Status::warning:
      return "WARNING";
    case Status::critical:
      return "CRITICAL";
    case Status::unknown:
      return "UNKNOWN";
  }
  return "UNKNOWN";
}

int urgency(Status status) {
  switch (status) {
    case Status::ok:
      return 0;
    case Status::warning:
      return 1;
    case Status::unknown:
      return 2;
    case Status::critical:
      return 3;
  }
  return 2;
}

Status worst(Status a, Status b) {
  return urgency(a) >= urgency(b) ? a : b;
}

const char* to_string(Severity severity) {
  switch (severity) {
    case Severity::info:
      return "info";
    case Severity::warning:
      return "warning";
    case Severity::critical:
      return "critical";
    case Severity::unknown:
      return "unknown";
  }
  return "unknown";
}

Status status_of(Severity severity) {
  switch (severity) {
    case Severity::info:
      return Status::ok;
    case Severity::warning:
      return Status::warning;
    case Severity::critical:
      return Status::critical;
    case Severity::unknown:
      return Status::unknown;
  }
  return Status::unknown;
}

Finding& Finding::with(std::string key, EvidenceValue value) {
  evidence.emplace_back(std::move(key), std::move(value));
  return *this;
}

std::string Subject::describe() const {
  std::string text;
  auto append = [&text](const char* label, const std::string& value) {
    if (value.empty()) return;
    if (!text.empty()) text += ", ";
    text += label;
    text += value;
  };
  append("proxy ", proxy);
  append("backend ", backend);
  append("node ", node);
  append("vantage ", vantage);
  return text.empty() ? "cluster" : text;
}

Status Report::status() const {
  if (checks.empty()) return Status::unknown;
  Status result = Status::ok;
  for (const CheckResult& check : checks) result = worst(result, check.status);
  return result;
}

std::string Report::summary_line() const {
  const Status overall = status();
  if (checks.empty()) return std::string(to_string(overall)) + ": no check ran";
  // The headline of the first check that carries the overall status.
  for (const CheckResult& check : checks) {
    if (check.status == overall) {
      return std::string(to_string(overall)) + ": " +
             (check.summary.empty() ? check.name + " " + to_string(overall) : check.summary);
    }
  }
  return to_string(overall);
}

std::string format_figure(double value) {
  char buffer[64];
  if (std::isfinite(value) && value == std::floor(value) && std::fabs(value) < 1e15) {
    std::snprintf(buffer, sizeof buffer, "%.0f", value);
  } else {
    std::snprintf(buffer, sizeof buffer, "%.3f", value);
  }
  return buffer;
}

}  // namespace ringwatch::report
