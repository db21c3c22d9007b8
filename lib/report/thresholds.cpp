#include "lib/report/thresholds.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <stdexcept>
#include <system_error>

namespace ringwatch::report {

namespace {

std::invalid_argument bad_range(std::string_view text, const std::string& why) {
  return std::invalid_argument("\"" + std::string(text) + "\" is not a range: " + why);
}

// A finite number, the whole of `part`.
double parse_endpoint(std::string_view range, std::string_view part) {
  double value = 0;
  const auto [end, ec] = std::from_chars(part.data(), part.data() + part.size(), value);
  if (part.empty() || ec != std::errc() || end != part.data() + part.size() ||
      !std::isfinite(value)) {
    throw bad_range(range, "\"" + std::string(part) + "\" is not a number");
  }
  return value;
}

// The shortest text that reads back as `value`: 0.999, 10, 1e+20.
std::string shortest(double value) {
  char buffer[64];
  const auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, value);
  return ec == std::errc() ? std::string(buffer, end) : format_figure(value);
}

// "(figures: consistency_ratio, inconsistent_reads)"
std::string figures_hint() {
  std::string hint = " (figures:";
  for (std::string_view figure : kThresholdFigures) hint += " " + std::string(figure) + ",";
  hint.back() = ')';
  return hint;
}

const char* level_name(Status status) {
  return status == Status::critical ? "critical" : "warning";
}

// "consistency_ratio 0.993 is below 0.999 (critical)"
std::string breach_text(const std::string& figure, double value, const Range& range, Status level) {
  std::string where;
  if (range.inside) {
    where = "is inside " + range.text;
  } else if (value < range.start) {
    where = "is below " + shortest(range.start);
  } else {
    where = "is above " + shortest(range.end);
  }
  return figure + " " + format_figure(value) + " " + where + " (" + level_name(level) + ")";
}

}  // namespace

bool Range::alerts(double value) const {
  const bool within = value >= start && value <= end;
  return inside ? within : !within;
}

Range parse_range(std::string_view text) {
  Range range;
  range.text = std::string(text);
  std::string_view rest = text;
  if (rest.starts_with('@')) {
    range.inside = true;
    rest.remove_prefix(1);
  }
  if (rest.empty()) throw bad_range(text, "it is empty");
  const auto colon = rest.find(':');
  if (colon == std::string_view::npos) {
    range.end = parse_endpoint(text, rest);  // "10": 0 .. 10
  } else {
    const std::string_view start = rest.substr(0, colon);
    const std::string_view end = rest.substr(colon + 1);
    if (start == "~") {
      range.start = -std::numeric_limits<double>::infinity();
    } else if (!start.empty()) {
      range.start = parse_endpoint(text, start);
    }
    if (!end.empty()) range.end = parse_endpoint(text, end);
  }
  if (range.start > range.end) {
    throw bad_range(
        text, "its start " + shortest(range.start) + " is above its end " + shortest(range.end));
  }
  return range;
}

void parse_threshold_list(std::string_view text, ThresholdList& into) {
  if (text.empty()) throw std::invalid_argument("expected FIGURE=RANGE, got nothing");
  std::size_t begin = 0;
  while (begin <= text.size()) {
    const std::size_t comma = std::min(text.find(',', begin), text.size());
    const std::string_view item = text.substr(begin, comma - begin);
    begin = comma + 1;
    const auto equals = item.find('=');
    if (equals == std::string_view::npos) {
      throw std::invalid_argument("expected FIGURE=RANGE, got \"" + std::string(item) + "\"" +
                                  figures_hint());
    }
    const std::string_view figure = item.substr(0, equals);
    if (std::find(kThresholdFigures.begin(), kThresholdFigures.end(), figure) ==
        kThresholdFigures.end()) {
      throw std::invalid_argument("no threshold on \"" + std::string(figure) + "\"" +
                                  figures_hint());
    }
    if (into.contains(figure)) {
      throw std::invalid_argument(std::string(figure) + " has two thresholds");
    }
    into.emplace(std::string(figure), parse_range(item.substr(equals + 1)));
  }
}

std::vector<Breach> check_thresholds(const Report& report, const Thresholds& thresholds) {
  std::vector<Breach> breaches;
  for (std::string_view figure : kThresholdFigures) {
    const auto critical = thresholds.critical.find(figure);
    const auto warning = thresholds.warning.find(figure);
    const bool named = critical != thresholds.critical.end() || warning != thresholds.warning.end();
    if (!named) continue;
    const std::string name(figure);
    const auto measured = report.figures.find(name);
    if (measured == report.figures.end()) {
      breaches.push_back({name, Status::unknown, name + " was not measured"});
      continue;
    }
    const double value = measured->second;
    if (critical != thresholds.critical.end() && critical->second.alerts(value)) {
      breaches.push_back(
          {name, Status::critical, breach_text(name, value, critical->second, Status::critical)});
    } else if (warning != thresholds.warning.end() && warning->second.alerts(value)) {
      breaches.push_back(
          {name, Status::warning, breach_text(name, value, warning->second, Status::warning)});
    }
  }
  return breaches;
}

Status status_with(const Report& report, const std::vector<Breach>& breaches) {
  Status status = report.status();
  for (const Breach& breach : breaches) status = worst(status, breach.status);
  return status;
}

}  // namespace ringwatch::report
