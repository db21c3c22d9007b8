// Monitoring-plugin threshold ranges: every form of the guidelines' table,
// the inclusive endpoints, the errors, and how breaches combine with the
// checks' own status.

#include "lib/report/thresholds.h"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

namespace ringwatch::report {
namespace {

std::string error_of(std::string_view range) {
  try {
    parse_range(range);
  } catch (const std::invalid_argument& error) {
    return error.what();
  }
  return "accepted";
}

TEST(RangeTest, ABareNumberIsZeroToIt) {
  const Range range = parse_range("10");
  EXPECT_TRUE(range.alerts(-0.5));
  EXPECT_FALSE(range.alerts(0)) << "endpoints are inside";
  EXPECT_FALSE(range.alerts(10));
  EXPECT_TRUE(range.alerts(10.01));
  EXPECT_EQ(range.text, "10");
}

TEST(RangeTest, AStartAloneRunsToInfinity) {
  const Range range = parse_range("10:");
  EXPECT_TRUE(range.alerts(9.99));
  EXPECT_FALSE(range.alerts(10));
  EXPECT_FALSE(range.alerts(1e12));
  const Range ratio = parse_range("0.999:");
  EXPECT_TRUE(ratio.alerts(0.998));
  EXPECT_FALSE(ratio.alerts(1));
}

TEST(RangeTest, TildeIsMinusInfinity) {
  const Range range = parse_range("~:10");
  EXPECT_FALSE(range.alerts(-1e12));
  EXPECT_FALSE(range.alerts(10));
  EXPECT_TRUE(range.alerts(10.5));
  const Range negative = parse_range("~:-1");
  EXPECT_FALSE(negative.alerts(-1));
  EXPECT_TRUE(negative.alerts(0));
}

TEST(RangeTest, StartAndEndAlertOutside) {
  const Range range = parse_range("10:20");
  EXPECT_TRUE(range.alerts(9.9));
  EXPECT_FALSE(range.alerts(10));
  EXPECT_FALSE(range.alerts(15));
  EXPECT_FALSE(range.alerts(20));
  EXPECT_TRUE(range.alerts(20.1));
}

TEST(RangeTest, AtAlertsInsideEndpointsIncluded) {
  const Range range = parse_range("@10:20");
  EXPECT_FALSE(range.alerts(9.9));
  EXPECT_TRUE(range.alerts(10));
  EXPECT_TRUE(range.alerts(15));
  EXPECT_TRUE(range.alerts(20));
  EXPECT_FALSE(range.alerts(20.1));
  EXPECT_TRUE(parse_range("@0").alerts(0)) << "@0: alert on exactly 0";
  EXPECT_FALSE(parse_range("@0").alerts(1));
}

TEST(RangeTest, MalformedRangesSayWhatIsWrong) {
  EXPECT_EQ(error_of(""), "\"\" is not a range: it is empty");
  EXPECT_EQ(error_of("@"), "\"@\" is not a range: it is empty");
  EXPECT_EQ(error_of("x"), "\"x\" is not a range: \"x\" is not a number");
  EXPECT_EQ(error_of("0.99:x"), "\"0.99:x\" is not a range: \"x\" is not a number");
  EXPECT_EQ(error_of("1:2:3"), "\"1:2:3\" is not a range: \"2:3\" is not a number");
  EXPECT_EQ(error_of("20:10"), "\"20:10\" is not a range: its start 20 is above its end 10");
  EXPECT_EQ(error_of("-5"), "\"-5\" is not a range: its start 0 is above its end -5");
  EXPECT_EQ(error_of("inf"), "\"inf\" is not a range: \"inf\" is not a number");
  EXPECT_EQ(error_of("nan:"), "\"nan:\" is not a range: \"nan\" is not a number");
  EXPECT_EQ(error_of("10 "), "\"10 \" is not a range: \"10 \" is not a number");
}

std::string list_error(std::string_view list) {
  ThresholdList thresholds;
  try {
    parse_threshold_list(list, thresholds);
  } catch (const std::invalid_argument& error) {
    return error.what();
  }
  return "accepted";
}

TEST(ThresholdListTest, NamesEachFigure) {
  ThresholdList thresholds;
  parse_threshold_list("consistency_ratio=0.999:,inconsistent_reads=0", thresholds);
  ASSERT_EQ(thresholds.size(), 2u);
  EXPECT_EQ(thresholds.at("consistency_ratio").text, "0.999:");
  EXPECT_EQ(thresholds.at("inconsistent_reads").text, "0");
  EXPECT_EQ(list_error("keys=10"),
            "no threshold on \"keys\" (figures: consistency_ratio, inconsistent_reads)");
  EXPECT_EQ(list_error("0.99:"),
            "expected FIGURE=RANGE, got \"0.99:\" (figures: consistency_ratio, "
            "inconsistent_reads)");
  EXPECT_EQ(list_error("inconsistent_reads=0,inconsistent_reads=5"),
            "inconsistent_reads has two thresholds");
  EXPECT_EQ(list_error("consistency_ratio=0.99:,"),
            "expected FIGURE=RANGE, got \"\" (figures: consistency_ratio, inconsistent_reads)");
  EXPECT_EQ(list_error("inconsistent_reads=x"), "\"x\" is not a range: \"x\" is not a number");
}

Report round(double ratio, double inconsistent, Status status = Status::ok) {
  Report report;
  report.checks.push_back({"canary", status, "canary says so", 1});
  report.figures["consistency_ratio"] = ratio;
  report.figures["inconsistent_reads"] = inconsistent;
  return report;
}

Thresholds thresholds(std::string_view warning, std::string_view critical) {
  Thresholds result;
  if (!warning.empty()) parse_threshold_list(warning, result.warning);
  if (!critical.empty()) parse_threshold_list(critical, result.critical);
  return result;
}

TEST(CheckThresholdsTest, CriticalBeforeWarningOneBreachPerFigure) {
  const Thresholds t = thresholds("consistency_ratio=0.999:,inconsistent_reads=0",
                                  "consistency_ratio=0.99:,inconsistent_reads=10");
  EXPECT_TRUE(check_thresholds(round(1, 0), t).empty());

  auto breaches = check_thresholds(round(0.995, 3), t);
  ASSERT_EQ(breaches.size(), 2u);
  EXPECT_EQ(breaches[0].status, Status::warning);
  EXPECT_EQ(breaches[0].text, "consistency_ratio 0.995 is below 0.999 (warning)");
  EXPECT_EQ(breaches[1].text, "inconsistent_reads 3 is above 0 (warning)");
  EXPECT_EQ(status_with(round(0.995, 3), breaches), Status::warning);

  breaches = check_thresholds(round(0.5, 40), t);
  ASSERT_EQ(breaches.size(), 2u);
  EXPECT_EQ(breaches[0].text, "consistency_ratio 0.500 is below 0.99 (critical)");
  EXPECT_EQ(breaches[1].text, "inconsistent_reads 40 is above 10 (critical)");
  EXPECT_EQ(status_with(round(0.5, 40), breaches), Status::critical);
}

TEST(CheckThresholdsTest, InsideRangesSayInside) {
  const auto breaches = check_thresholds(round(1, 0), thresholds("consistency_ratio=@0.5:1", ""));
  ASSERT_EQ(breaches.size(), 1u);
  EXPECT_EQ(breaches[0].text, "consistency_ratio 1 is inside @0.5:1 (warning)");
}

TEST(CheckThresholdsTest, BreachesRaiseTheChecksStatusNeverLowerIt) {
  const Thresholds lenient = thresholds("inconsistent_reads=100", "inconsistent_reads=1000");
  const Report critical = round(0.5, 12, Status::critical);
  EXPECT_TRUE(check_thresholds(critical, lenient).empty());
  EXPECT_EQ(status_with(critical, check_thresholds(critical, lenient)), Status::critical);

  const Report unknown = round(1, 0, Status::unknown);
  const auto warning = check_thresholds(unknown, thresholds("consistency_ratio=@1", ""));
  EXPECT_EQ(status_with(unknown, warning), Status::unknown) << "UNKNOWN outranks WARNING";
  const auto crit = check_thresholds(unknown, thresholds("", "consistency_ratio=@1"));
  EXPECT_EQ(status_with(unknown, crit), Status::critical) << "CRITICAL outranks UNKNOWN";
}

TEST(CheckThresholdsTest, AFigureNotMeasuredIsUnknown) {
  Report dns_only;
  dns_only.checks.push_back({"dns", Status::ok, "fine", 1});
  const auto breaches = check_thresholds(dns_only, thresholds("consistency_ratio=0.99:", ""));
  ASSERT_EQ(breaches.size(), 1u);
  EXPECT_EQ(breaches[0].status, Status::unknown);
  EXPECT_EQ(breaches[0].text, "consistency_ratio was not measured");
  EXPECT_EQ(status_with(dns_only, breaches), Status::unknown);
}

}  // namespace
}  // namespace ringwatch::report
