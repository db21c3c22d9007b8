#include "lib/report/render.h"

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <sstream>
#include <string>
#include <vector>

#include "lib/util/text.h"

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

TEST(RenderTest, NagiosIsAStatusLineWithPerfdataThenTheFindings) {
  EXPECT_EQ(render_nagios(divergent_report()),
            "RINGWATCH CRITICAL - ring divergence: p2 is missing b3 | "
            "'consistency_ratio'=0.500;;;0;1 'inconsistent_reads'=14;;;0 'round_ms'=3.100ms;;;0\n"
            "critical canary/ring_divergence: proxy p2 routes 0 of 6 canaries to backend b3\n"
            "info canary/transient_disagreement: 1 canary agreed on recheck\n");
}

TEST(RenderTest, NagiosKeepsPipesOutOfTheText) {
  Report report;
  report.checks.push_back({"canary", Status::ok, "a | b", 0});
  report.add({"canary", "x", Severity::info, {}, "c | d", {}});
  EXPECT_EQ(render_nagios(report), "RINGWATCH OK - a / b |\ninfo canary/x: c / d\n");
}

// The incident's report: a diagnosis with its cause, findings about several
// subjects, per-subject figures, and evidence too long for one line.
Report incident_report() {
  Report report = divergent_report();
  report.checks.push_back({"dns", Status::critical,
                           "b3's name b3.lab.ringwatch.test resolves to 127.200.0.13 at lab-dns, "
                           "outside 127.10.0.0/16",
                           1.2});
  Finding dns{"dns",
              "dns_outside_range",
              Severity::critical,
              {.backend = "b3", .node = "b3.lab.ringwatch.test", .vantage = "lab-dns"},
              "b3's name b3.lab.ringwatch.test resolves to 127.200.0.13 at lab-dns, outside "
              "127.10.0.0/16",
              {}};
  dns.with("vantage", std::string("lab-dns"))
      .with("server", std::string("127.10.2.53:5353"))
      .with("answers", std::vector<std::string>{"127.200.0.13 (A, TTL 1 s)"})
      .with("lookup_ms", 0.8);
  report.add(dns);
  std::vector<std::string> keys;
  for (int i = 0; i < 40; ++i)
    keys.push_back("ringwatch:abf55005-" + std::to_string(i) + ":lab:3b0ec7");
  report.findings[0].with("by_backend", std::string(300, 'x'));
  report.findings[0].evidence[0].second = keys;  // "keys": about 1,300 characters
  report.diagnoses.push_back(
      {Severity::critical,
       {.proxy = "p2", .backend = "b3"},
       "p2 is missing b3 (canary: 0/6 routed; twemproxy: ejected at 10:57:34 UTC, 1 error) — "
       "b3's name resolves to 127.200.0.13, outside 127.10.0.0/16, at the vantage point used by p2",
       {0, 2}});
  report.figures["backends_routed/p1"] = 3;
  report.figures["backend_clients/b1"] = 4;
  return report;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

TEST(RenderTextTest, EveryLineFitsEightyColumnsAndListsAreCutWithACount) {
  const std::string text = render_text(incident_report());
  for (const std::string& line : lines_of(text)) {
    EXPECT_LE(util::columns(line), 80u) << line;
  }
  EXPECT_NE(text.find("      keys: ringwatch:abf55005-0:lab:3b0ec7, "), std::string::npos) << text;
  EXPECT_NE(text.find(", … +"), std::string::npos) << "a cut list says how many it left out";
  EXPECT_EQ(text.find("diverging_canaries"), std::string::npos)
      << "the summary says it; --verbose and JSON carry it";
  EXPECT_EQ(text.find("Figures"), std::string::npos);
  EXPECT_NE(text.find("Trimmed to fit: --verbose or --format json shows everything."),
            std::string::npos);
  for (const std::string& line : lines_of(render_text(incident_report(), {.width = 50}))) {
    EXPECT_LE(util::columns(line), 50u) << line;
  }
}

TEST(RenderTextTest, SummaryAndDiagnosisComeFirstThenSubjectsMostUrgentFirst) {
  const std::vector<std::string> lines = lines_of(render_text(incident_report()));
  ASSERT_GT(lines.size(), 8u);
  EXPECT_EQ(lines[0], "CRITICAL: ring divergence: p2 is missing b3");
  EXPECT_EQ(lines[1], "cluster lab · round 3.1 ms · consistency 0.500");
  EXPECT_EQ(lines[3], "Diagnosis");
  EXPECT_EQ(lines[4],
            "  critical p2 is missing b3 (canary: 0/6 routed; twemproxy: ejected at 10:57:34");
  EXPECT_EQ(lines[5], "           UTC, 1 error) — b3's name resolves to 127.200.0.13, outside");
  const std::string text = render_text(incident_report());
  const auto critical_subject = text.find("  backend b3, node b3.lab.ringwatch.test");
  const auto info_subject = text.find("  cluster\n");
  ASSERT_NE(critical_subject, std::string::npos);
  ASSERT_NE(info_subject, std::string::npos);
  EXPECT_LT(critical_subject, info_subject) << "an info-only subject comes last";
  EXPECT_NE(
      text.find("  dns     CRITICAL  1.2 ms  b3's name b3.lab.ringwatch.test resolves to\n"
                "                            127.200.0.13 at lab-dns, outside 127.10.0.0/16\n"),
      std::string::npos)
      << text;
}

TEST(RenderTextTest, VerboseWrapsEveryPieceOfEvidenceAndAddsTheFigures) {
  const std::string text = render_text(incident_report(), {.verbose = true});
  for (const std::string& line : lines_of(text)) {
    EXPECT_LE(util::columns(line), 80u) << line;
  }
  EXPECT_NE(text.find("ringwatch:abf55005-39:lab:3b0ec7"), std::string::npos)
      << "the last key, on a wrapped row";
  EXPECT_NE(text.find("diverging_canaries: 6"), std::string::npos);
  EXPECT_NE(text.find("lookup_ms: 0.800"), std::string::npos);
  EXPECT_NE(text.find("\nFigures\n  backend_clients/b1=4 backends_routed/p1=3"), std::string::npos)
      << text;
  EXPECT_EQ(text.find("Trimmed"), std::string::npos);
  EXPECT_EQ(text.find("…"), std::string::npos) << "nothing is cut with --verbose";
}

TEST(RenderTextTest, ColourOnlyWhenAskedAndNotCountedAsColumns) {
  const std::string plain = render_text(incident_report());
  const std::string coloured = render_text(incident_report(), {.color = true});
  EXPECT_EQ(plain.find("\033["), std::string::npos);
  EXPECT_TRUE(coloured.starts_with("\033[1;31mCRITICAL:\033[0m ring divergence")) << coloured;
  std::string stripped;
  for (std::size_t i = 0; i < coloured.size(); ++i) {
    if (coloured[i] == '\033') {
      i = coloured.find('m', i);
      continue;
    }
    stripped += coloured[i];
  }
  EXPECT_EQ(stripped, plain) << "colour changes no text and no wrapping";
}

TEST(RenderJsonTest, CompactIsOneLineWithThePrettyDocumentsContent) {
  const std::string pretty = render_json(incident_report());
  const std::string compact = render_json(incident_report(), JsonLayout::compact);
  EXPECT_EQ(compact.find('\n'), compact.size() - 1) << "one line, newline-terminated";
  EXPECT_GT(lines_of(pretty).size(), 20u);
  rapidjson::Document a, b;
  ASSERT_FALSE(a.Parse(pretty.c_str()).HasParseError());
  ASSERT_FALSE(b.Parse(compact.c_str()).HasParseError());
  EXPECT_TRUE(a == b);
  std::string squeezed;  // pretty without the layout's whitespace
  bool in_string = false;
  for (std::size_t i = 0; i < pretty.size(); ++i) {
    const char c = pretty[i];
    if (c == '"' && (i == 0 || pretty[i - 1] != '\\')) in_string = !in_string;
    if (!in_string && (c == ' ' || c == '\n')) continue;
    squeezed += c;
  }
  EXPECT_EQ(squeezed + "\n", compact) << "the same bytes but for the layout";
}

TEST(RenderNagiosTest, TheStatusLineCarriesTheDiagnosisAndTheLongOutputTheFindings) {
  const std::vector<std::string> lines = lines_of(render_nagios(incident_report()));
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_TRUE(lines[0].starts_with(
      "RINGWATCH CRITICAL - p2 is missing b3 (canary: 0/6 routed; twemproxy: ejected at 10:57:34 "
      "UTC, 1 error) — b3's name resolves to 127.200.0.13, outside 127.10.0.0/16, at the vantage "
      "point used by p2 | "))
      << lines[0];
  EXPECT_EQ(lines[1],
            "critical canary/ring_divergence: proxy p2 routes 0 of 6 canaries to backend b3");
  EXPECT_EQ(lines[2],
            "critical dns/dns_outside_range: b3's name b3.lab.ringwatch.test resolves to "
            "127.200.0.13 at lab-dns, outside 127.10.0.0/16");
  EXPECT_EQ(lines[3], "info canary/transient_disagreement: 1 canary agreed on recheck");
}

TEST(RenderNagiosTest, PerSubjectPerfdataOnlyWhenAskedThresholdsInWarnAndCrit) {
  const std::string cluster = render_nagios(incident_report());
  EXPECT_EQ(cluster.find("backends_routed/p1"), std::string::npos);
  EXPECT_EQ(cluster.find("backend_clients/b1"), std::string::npos);
  NagiosOptions options;
  options.all_perfdata = true;
  parse_threshold_list("consistency_ratio=0.999:", options.thresholds.warning);
  parse_threshold_list("consistency_ratio=0.99:,inconsistent_reads=10",
                       options.thresholds.critical);
  const std::string all = render_nagios(incident_report(), options);
  const std::string first = all.substr(0, all.find('\n'));
  EXPECT_NE(first.find(" | 'backend_clients/b1'=4;;;0 'backends_routed/p1'=3;;;0 "
                       "'consistency_ratio'=0.500;0.999:;0.99:;0;1 'inconsistent_reads'=14;;10;0 "
                       "'round_ms'=3.100ms;;;0"),
            std::string::npos)
      << first;
  EXPECT_NE(first.find("; consistency_ratio 0.500 is below 0.99 (critical); inconsistent_reads 14 "
                       "is above 10 (critical) | "),
            std::string::npos)
      << first;
}

TEST(RenderNagiosTest, ABreachThatSetsTheStatusLeadsTheText) {
  Report report;
  report.checks.push_back({"canary", Status::ok, "18 canaries consistent", 1});
  report.figures["inconsistent_reads"] = 2;
  Thresholds thresholds;
  parse_threshold_list("inconsistent_reads=0", thresholds.warning);
  EXPECT_EQ(nagios_status(report, thresholds), Status::warning);
  EXPECT_EQ(render_nagios(report, {thresholds, false}),
            "RINGWATCH WARNING - inconsistent_reads 2 is above 0 (warning); 18 canaries consistent "
            "| 'inconsistent_reads'=2;0;;0\n");
}

TEST(RenderNagiosTest, TheLongOutputIsBounded) {
  Report report;
  report.checks.push_back({"connections", Status::critical, "many", 1});
  for (int i = 0; i < 30; ++i) {
    report.add({"connections",
                "proxy_missing_backend",
                Severity::critical,
                {.proxy = "p" + std::to_string(i)},
                std::string(500, 'y'),
                {}});
  }
  const std::vector<std::string> lines = lines_of(render_nagios(report));
  ASSERT_EQ(lines.size(), 22u);
  EXPECT_EQ(util::columns(lines[1]), 300u);
  EXPECT_TRUE(lines[1].ends_with("y…"));
  EXPECT_EQ(lines[21], "… and 10 more (ringwatch probe --format json lists them all)");
}

TEST(RenderTest, ParseFormat) {
  EXPECT_EQ(parse_format("json"), Format::json);
  EXPECT_EQ(parse_format("nagios"), Format::nagios);
  EXPECT_EQ(parse_format("xml"), std::nullopt);
}

}  // namespace
}  // namespace ringwatch::report
