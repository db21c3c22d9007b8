#pragma once
// Monitoring-plugin thresholds on a report's figures, for `ringwatch probe
// --format nagios -w ... -c ...`. A range follows the monitoring-plugins
// development guidelines ("[@]start:end", endpoints inclusive):
//
//   range    alerts when the value is
//   10       < 0 or > 10       (outside 0 .. 10)
//   10:      < 10              (outside 10 .. infinity)
//   ~:10     > 10              (outside -infinity .. 10)
//   10:20    < 10 or > 20      (outside 10 .. 20)
//   @10:20   >= 10 and <= 20   (inside 10 .. 20)
//
// One probe measures several figures, so a threshold names its figure, the
// way multi-metric plugins take "name=range" lists:
//   -w consistency_ratio=0.999:,inconsistent_reads=0 -c consistency_ratio=0.99:
// Only the figures in kThresholdFigures take thresholds.
//
// Thresholds add to the checks' own verdict: a breach can raise a round's
// status, never lower it (a ring divergence stays CRITICAL whatever the
// thresholds say). A figure the round did not measure (the canary did not
// run, the round timed out) is UNKNOWN for a threshold that names it.
//
// Pure functions and plain data; thread-safe.

#include <array>
#include <limits>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "lib/report/report.h"
#include "lib/report/vocabulary.h"

namespace ringwatch::report {

// One "[@]start:end" range.
struct Range {
  double start = 0;
  double end = std::numeric_limits<double>::infinity();
  bool inside = false;  // "@": alert inside the range instead of outside it
  std::string text;     // as written, for the perfdata's warn and crit fields

  bool alerts(double value) const;
};

// Throws std::invalid_argument naming what is wrong, e.g.
//   "0.99:x" is not a range: "x" is not a number
Range parse_range(std::string_view text);

// The figures a threshold may name.
inline constexpr std::array<std::string_view, 2> kThresholdFigures = {figures::kConsistencyRatio,
                                                                      figures::kInconsistentReads};

// Ranges by figure name, for one alert level.
using ThresholdList = std::map<std::string, Range, std::less<>>;

// Adds a "figure=range[,figure=range...]" list to `into`. Throws
// std::invalid_argument for an unknown figure, a figure named twice, a
// missing "=" or a bad range.
void parse_threshold_list(std::string_view text, ThresholdList& into);

struct Thresholds {
  ThresholdList warning;
  ThresholdList critical;
  bool empty() const { return warning.empty() && critical.empty(); }
};

// A figure outside its threshold, or a threshold on a figure not measured.
struct Breach {
  std::string figure;
  Status status = Status::unknown;  // warning, critical, or unknown (not measured)
  // "consistency_ratio 0.993 is below 0.999 (critical)",
  // "inconsistent_reads was not measured"
  std::string text;
};

// The breaches of `report`'s figures: at most one per figure (critical when
// both levels alert), in kThresholdFigures order.
std::vector<Breach> check_thresholds(const Report& report, const Thresholds& thresholds);

// The report's status raised by the breaches (worst(), CRITICAL outranks UNKNOWN).
Status status_with(const Report& report, const std::vector<Breach>& breaches);

}  // namespace ringwatch::report
