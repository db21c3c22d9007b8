// ringwatch-soak (tools/soak/soak.h): its log parsing and classification on
// written lines, then the real tool on a real lab and the real ringwatchd:
// a churn event's non-OK rounds are explained, a fault nobody announced is not.

#include "tools/soak/soak.h"

#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <thread>

#include "tests/support/command.h"
#include "tests/support/scoped_lab.h"

namespace ringwatch::soak {
namespace {

using namespace std::chrono_literals;

constexpr const char* kCriticalLine =
    "ts=2026-11-24T11:26:42.292Z level=info event=round cluster=lab status=CRITICAL "
    "duration_ms=4225.2 started=2026-11-24T11:26:38.067Z findings=6 "
    "codes=dns_outside_range,ring_divergence summary=\"CRITICAL: b2 resolves to "
    "\\\"127.200.0.12\\\"\"";
constexpr const char* kOkLine =
    "ts=2026-11-24T11:26:43.300Z level=info event=round cluster=lab status=OK duration_ms=8.0 "
    "started=2026-11-24T11:26:43.292Z findings=0";

SystemTime at(const char* text) {
  auto round = parse_round_line(std::string("ts=") + text + " event=round status=OK");
  EXPECT_TRUE(round.has_value()) << text;
  return round ? round->finished : SystemTime{};
}

TEST(SoakRounds, ParsesARoundLineWithItsCause) {
  const auto round = parse_round_line(kCriticalLine);
  ASSERT_TRUE(round.has_value());
  EXPECT_EQ(round->status, "CRITICAL");
  EXPECT_EQ(round->started, at("2026-11-24T11:26:38.067Z"));
  EXPECT_EQ(round->finished, at("2026-11-24T11:26:42.292Z"));
  EXPECT_EQ(round->codes, (std::vector<std::string>{"dns_outside_range", "ring_divergence"}));
  EXPECT_EQ(round->summary, "CRITICAL: b2 resolves to \"127.200.0.12\"");
}

TEST(SoakRounds, CountsRoundsAndSkipsAndIgnoresOtherEvents) {
  const std::string log = std::string(kCriticalLine) + "\n" + kOkLine + "\n" +
                          "ts=2026-11-24T11:26:44.000Z level=warn event=round_skipped "
                          "cluster=lab reason=\"previous round still running\"\n"
                          "ts=2026-11-24T11:26:44.100Z level=info event=preflight status=OK\n"
                          "garbage\n";
  std::uint64_t skipped = 0;
  const auto rounds = parse_rounds(log, &skipped);
  ASSERT_EQ(rounds.size(), 2u);
  EXPECT_EQ(rounds[1].status, "OK");
  EXPECT_EQ(skipped, 1u);
}

TEST(SoakRounds, ANonOkRoundIsExplainedOnlyInsideAnEventsWindow) {
  auto rounds = parse_rounds(std::string(kCriticalLine) + "\n" + kOkLine + "\n");
  ChurnEvent before{ChurnKind::dns_flap, "b2", at("2026-11-24T11:26:30.000Z"),
                    at("2026-11-24T11:26:35.000Z"), ""};
  classify(rounds, {before}, 2000ms);  // window ends 11:26:37, the round started at :38
  EXPECT_FALSE(rounds[0].explained_by.has_value());
  classify(rounds, {before}, 3500ms);  // now to :38.5
  EXPECT_EQ(rounds[0].explained_by, 0u);
  ChurnEvent after{ChurnKind::proxy_roll, "", at("2026-11-24T11:26:42.500Z"),
                   at("2026-11-24T11:26:50.000Z"), ""};
  classify(rounds, {before, after}, 0ms);
  EXPECT_FALSE(rounds[0].explained_by.has_value());
  EXPECT_FALSE(rounds[1].explained_by.has_value()) << "an OK round is never explained";

  SoakReport report;
  report.rounds = rounds;
  report.events = {before, after};
  EXPECT_EQ(report.unexplained(), 1u);
  EXPECT_EQ(report.exit_code(), 2);
  EXPECT_NE(render_text(report).find("UNEXPLAINED"), std::string::npos);
}

rapidjson::Document read_json(const std::filesystem::path& path) {
  std::ifstream in(path);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  rapidjson::Document document;
  document.Parse(text.c_str());
  EXPECT_FALSE(document.HasParseError()) << path << ": " << text;
  return document;
}

std::string soak_command(const std::filesystem::path& dir, const std::string& more) {
  return std::string("timeout 180 ") + RINGWATCH_SOAK_BINARY + " --dir " + dir.string() +
         " --interval 0.5 --format json --out " + (dir.parent_path() / "report.json").string() +
         " " + more;
}

// A fresh temporary directory, removed with everything in it.
struct TempDir {
  TempDir() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "ringwatch-soak-test-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path, ignored);
  }
  std::filesystem::path path;
};

// The smoke test: a lab brought up and taken down by the tool, DNS flapped.
TEST(SoakTool, ReportsRoundsByStatusAndExplainsTheInjectedFlap) {
  const TempDir scratch;
  const auto dir = scratch.path / "soaked";
  const auto [code, output] = testing::run_command(
      soak_command(dir, "--duration 16 --churn dns-flap --churn-every 5 --seed 7"));
  SCOPED_TRACE(output);
  ASSERT_TRUE(code == 0 || code == 2) << code;
  const auto report = read_json(dir.parent_path() / "report.json");
  ASSERT_TRUE(report.IsObject());
  EXPECT_STREQ(report["schema"].GetString(), "ringwatch.soak/v1");
  EXPECT_EQ(report["lab"]["proxies"].GetInt(), 3);
  EXPECT_EQ(report["exit_code"].GetInt(), code);
  const auto& rounds = report["rounds"];
  const auto total = rounds["total"].GetUint64();
  EXPECT_GE(total, 5u);
  EXPECT_EQ(rounds["OK"].GetUint64() + rounds["WARNING"].GetUint64() +
                rounds["CRITICAL"].GetUint64() + rounds["UNKNOWN"].GetUint64(),
            total);
  ASSERT_GE(report["events"].Size(), 1u);
  for (const auto& event : report["events"].GetArray()) {
    EXPECT_STREQ(event["kind"].GetString(), "dns-flap");
    EXPECT_EQ(std::string(event["target"].GetString()).rfind("b", 0), 0u);
    EXPECT_TRUE(event["error"].IsNull()) << event["error"].GetString();
  }
  bool flap_explained = false;
  for (const auto& round : report["not_ok"].GetArray()) {
    if (round["explained_by"].IsNull()) continue;
    for (const auto& code_value : round["codes"].GetArray())
      flap_explained |= std::string(code_value.GetString()).rfind("dns_", 0) == 0;
  }
  EXPECT_TRUE(flap_explained) << "no round with a dns_ finding was explained by the flap";
  EXPECT_EQ(rounds["explained"].GetUint64() + rounds["unexplained"].GetUint64(),
            report["not_ok"].Size());
  EXPECT_FALSE(std::filesystem::exists(dir / "lab.json") && lab::status(dir).is_up)
      << "the lab the tool brought up is down again";
}

// A fault injected behind the tool's back is a false alarm as far as the soak
// knows: UNEXPLAINED, exit 2. The lab is the test's; the tool leaves it up.
TEST(SoakTool, AFaultItDidNotInjectIsUnexplained) {
  testing::ScopedLab lab;
  auto soak = std::async(std::launch::async, [&] {
    return testing::run_command(soak_command(lab.dir(), "--duration 8 --churn none"));
  });
  const auto log = lab.dir() / "soak-ringwatchd.log";
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  auto has_round = [&] {
    std::ifstream in(log);
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return text.find("event=round ") != std::string::npos;
  };
  while (!has_round() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(100ms);
  ASSERT_TRUE(has_round()) << "ringwatchd logged no round within 30 s";
  lab.inject({lab::FaultKind::dns, "", "b2", "127.200.0.12", ""});
  const auto [code, output] = soak.get();
  lab.heal();
  SCOPED_TRACE(output);
  EXPECT_EQ(code, 2);
  const auto report = read_json(lab.dir().parent_path() / "report.json");
  ASSERT_TRUE(report.IsObject());
  EXPECT_EQ(report["events"].Size(), 0u);
  EXPECT_GE(report["rounds"]["unexplained"].GetUint64(), 1u);
  EXPECT_TRUE(lab::status(lab.dir()).is_up) << "a lab the tool did not start stays up";
}

}  // namespace
}  // namespace ringwatch::soak
