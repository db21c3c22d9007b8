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

TEST(RenderTest, JsonViewsAreAdditionsAbsentWhenEmpty) {
  Report report = divergent_report();
  const std::string before = render_json(report);
  EXPECT_EQ(before.find("\"links\""), std::string::npos);
  EXPECT_EQ(before.find("\"dns_answers\""), std::string::npos);
  report.links.push_back({"p2", "b3", "not_routed", "ejected", "unknown", "ejected"});
  report.dns_answers.push_back({"b3", "b3.lab", "lab-dns", {"127.200.0.13"}, "outside"});
  const std::string after = render_json(report);
  // Everything before the views is unchanged: consumers of v1 see the same document.
  const auto figures_end = before.rfind('}', before.rfind('}') - 1);
  EXPECT_EQ(after.substr(0, figures_end + 1), before.substr(0, figures_end + 1));
  rapidjson::Document document;
  ASSERT_FALSE(document.Parse(after.c_str()).HasParseError());
  const auto& link = document["links"][0];
  EXPECT_STREQ(link["proxy"].GetString(), "p2");
  EXPECT_STREQ(link["state"].GetString(), "ejected");
  EXPECT_STREQ(link["canary"].GetString(), "not_routed");
  EXPECT_STREQ(link["proxy_side"].GetString(), "ejected");
  EXPECT_STREQ(link["backend_side"].GetString(), "unknown");
  const auto& answer = document["dns_answers"][0];
  EXPECT_STREQ(answer["verdict"].GetString(), "outside");
  EXPECT_STREQ(answer["addresses"][0].GetString(), "127.200.0.13");
  EXPECT_STREQ(answer["vantage"].GetString(), "lab-dns");
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
