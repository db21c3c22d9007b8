#include "lib/report/render.h"

#include <gtest/gtest.h>
#include <rapidjson/document.h>

namespace ringwatch::report {
namespace {

Report divergent_report() {
  Report report;
  report.cluster = "lab";
  report.started_at =
      std::chrono::system_clock::time_point(std::chrono::milliseconds(1'700'000'000'123));
  report.duration_ms = 3.1;
  report.checks.push_back({"canary", Status::critical, "ring divergence: p2 is missing b3", 3.1});
  Finding finding{"canary",
                  "ring_divergence",
                  Severity::critical,
                  {.proxy = "p2", .backend = "b3"},
                  "proxy p2 routes 0 of 6 canaries to backend b3",
                  {}};
  finding.with("keys", std::vector<std::string>{"k1", "k2"})
      .with("diverging_canaries", std::int64_t{6});
  report.add(finding);
  report.add(
      {"canary", "transient_disagreement", Severity::info, {}, "1 canary agreed on recheck", {}});
  report.figures["inconsistent_reads"] = 14;
  report.figures["round_ms"] = 3.1;
  report.figures["consistency_ratio"] = 0.5;
  return report;
}

TEST(ReportTest, StatusIsWorstCheckAndCriticalOutranksUnknown) {
  Report report;
  EXPECT_EQ(report.status(), Status::unknown);  // nothing ran
  report.checks.push_back({"a", Status::warning, "", 0});
  EXPECT_EQ(report.status(), Status::warning);
  report.checks.push_back({"b", Status::unknown, "", 0});
  EXPECT_EQ(report.status(), Status::unknown);
  report.checks.push_back({"c", Status::critical, "bad", 0});
  EXPECT_EQ(report.status(), Status::critical);
  EXPECT_EQ(report.summary_line(), "CRITICAL: bad");
}

TEST(RenderTest, TextStartsWithSummaryAndGroupsFindingsBySubject) {
  const std::string text = render_text(divergent_report());
  EXPECT_EQ(text.substr(0, text.find('\n')), "CRITICAL: ring divergence: p2 is missing b3");
  const auto subject = text.find("proxy p2, backend b3\n");
  ASSERT_NE(subject, std::string::npos);
  EXPECT_NE(text.find("critical canary/ring_divergence: proxy p2 routes 0 of 6", subject),
            std::string::npos);
  EXPECT_NE(text.find("  cluster\n"), std::string::npos);
  EXPECT_EQ(text.find("\033["), std::string::npos) << "no colour unless asked";
  EXPECT_NE(render_text(divergent_report(), {.color = true}).find("\033["), std::string::npos);
}

TEST(RenderTest, JsonFollowsTheDocumentedSchema) {
  const std::string json = render_json(divergent_report());
  rapidjson::Document doc;
  ASSERT_FALSE(doc.Parse(json.c_str()).HasParseError()) << json;
  EXPECT_STREQ(doc["schema"].GetString(), "ringwatch.report/v1");
  EXPECT_STREQ(doc["cluster"].GetString(), "lab");
  EXPECT_STREQ(doc["status"].GetString(), "CRITICAL");
  EXPECT_EQ(doc["exit_code"].GetInt(), 2);
  EXPECT_STREQ(doc["started_at"].GetString(), "2023-11-14T22:13:20.123Z");
  ASSERT_EQ(doc["checks"].Size(), 1u);
  EXPECT_STREQ(doc["checks"][0]["name"].GetString(), "canary");
  const auto& finding = doc["findings"][0];
  EXPECT_STREQ(finding["code"].GetString(), "ring_divergence");
  EXPECT_STREQ(finding["subject"]["proxy"].GetString(), "p2");
  EXPECT_STREQ(finding["subject"]["backend"].GetString(), "b3");
  EXPECT_FALSE(finding["subject"].HasMember("node"));
  EXPECT_EQ(finding["evidence"]["keys"].Size(), 2u);
  EXPECT_EQ(finding["evidence"]["diverging_canaries"].GetInt64(), 6);
  EXPECT_DOUBLE_EQ(doc["figures"]["consistency_ratio"].GetDouble(), 0.5);
}

TEST(RenderTest, NagiosIsOneLineWithPerfdata) {
  EXPECT_EQ(render_nagios(divergent_report()),
            "RINGWATCH CRITICAL - ring divergence: p2 is missing b3 | "
            "'consistency_ratio'=0.500;;;0;1 'inconsistent_reads'=14;;;0 'round_ms'=3.100ms;;;0\n");
}

TEST(RenderTest, NagiosKeepsPipesOutOfTheText) {
  Report report;
  report.checks.push_back({"canary", Status::ok, "a | b", 0});
  EXPECT_EQ(render_nagios(report), "RINGWATCH OK - a / b |\n");
}

TEST(RenderTest, ParseFormat) {
  EXPECT_EQ(parse_format("json"), Format::json);
  EXPECT_EQ(parse_format("nagios"), Format::nagios);
  EXPECT_EQ(parse_format("xml"), std::nullopt);
}

}  // namespace
}  // namespace ringwatch::report
