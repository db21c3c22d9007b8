// `ringwatch probe` on a real lab, for what its other tests leave out: a
// WARNING is exit 1, `--rounds N` exits with the worst round's status (not
// the last's), and `--vantage` asks one DNS vantage point only.

#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <stdio.h>
#include <sys/wait.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/cli_run.h"
#include "tests/support/json_patch.h"
#include "tests/support/memcached_process.h"
#include "tests/support/scoped_lab.h"

namespace ringwatch::cli {
namespace {

using testing::run_cli;

std::string spec_of(const testing::ScopedLab& lab) {
  return lab::spec_path(lab.dir()).string();
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

TEST(ProbeExitTest, AWarningFindingExitsOne) {
  testing::ScopedLab lab;
  // b2's name answers b1's address: inside the expected range, so a warning
  // (dns_unexpected_address), not a critical.
  const std::string b1 = lab.spec().find_backend("b1")->address.to_string();
  lab.inject({lab::FaultKind::dns, "", "b2", b1, ""});
  const auto outcome =
      run_cli({"probe", "--cluster", spec_of(lab), "--checks", "dns", "--format", "json"});
  EXPECT_EQ(outcome.code, 1) << outcome.out << outcome.err;
  rapidjson::Document report;
  report.Parse(outcome.out.c_str());
  ASSERT_FALSE(report.HasParseError()) << outcome.out;
  EXPECT_STREQ(report["status"].GetString(), "WARNING") << outcome.out;
  EXPECT_NE(outcome.out.find("dns_unexpected_address"), std::string::npos) << outcome.out;
}

// The command's stdout, line by line as it comes, and its exit status.
class StreamedCommand {
 public:
  explicit StreamedCommand(const std::string& command_line)
      : pipe_(::popen(command_line.c_str(), "r")) {
    if (pipe_ == nullptr) throw std::runtime_error("popen failed: " + command_line);
  }
  ~StreamedCommand() {
    if (pipe_) ::pclose(pipe_);
  }
  StreamedCommand(const StreamedCommand&) = delete;
  StreamedCommand& operator=(const StreamedCommand&) = delete;

  // The next line, or nullopt at the end of the output.
  std::optional<std::string> next_line() {
    std::string line;
    for (int c; (c = std::fgetc(pipe_)) != EOF;) {
      if (c == '\n') return line;
      line += static_cast<char>(c);
    }
    if (line.empty()) return std::nullopt;
    return line;
  }
  int exit_code() {
    const int status = ::pclose(pipe_);
    pipe_ = nullptr;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

 private:
  FILE* pipe_;
};

std::string status_of(const std::string& json_line) {
  rapidjson::Document document;
  document.Parse(json_line.c_str());
  if (document.HasParseError() || !document.IsObject() || !document.HasMember("status"))
    return "not a report: " + json_line;
  return document["status"].GetString();
}

TEST(ProbeExitTest, RoundsExitWithTheWorstRoundNotTheLast) {
  testing::ScopedLab lab;
  lab.inject({lab::FaultKind::dns, "", "b2", "127.200.0.12", ""});
  // The first round sees the fault; the lab is healed as soon as its report
  // is out, so the later rounds are OK.
  StreamedCommand probe(std::string("timeout 120 ") + RINGWATCH_BINARY + " probe --cluster " +
                        spec_of(lab) + " --checks dns --format json --rounds 4 --interval 1.5");
  const auto first = probe.next_line();
  ASSERT_TRUE(first.has_value());
  lab.heal();
  std::vector<std::string> statuses{status_of(*first)};
  while (auto line = probe.next_line()) statuses.push_back(status_of(*line));
  const int code = probe.exit_code();
  ASSERT_EQ(statuses.size(), 4u);
  EXPECT_EQ(statuses.front(), "CRITICAL");
  EXPECT_EQ(statuses.back(), "OK") << "the heal did not reach the last round";
  EXPECT_EQ(code, 2) << "the worst round is CRITICAL";
}

TEST(ProbeExitTest, VantageAsksOneDnsVantagePointOnly) {
  testing::ScopedLab lab;
  const std::string good = lab.spec().dns_servers.at(0).name;
  // A second vantage point where nothing answers.
  const std::string dead_server = R"({"name": "dead-dns", "address": "127.0.0.1:)" +
                                  std::to_string(testing::free_port()) + R"("})";
  const auto spec = lab.sibling("two-vantages.json");
  std::ofstream(spec) << testing::patched_json(read_file(spec_of(lab)).c_str(),
                                               {{"/dns/servers/-", dead_server.c_str()}});

  const auto both = run_cli({"probe", "--cluster", spec.string(), "--checks", "dns"});
  EXPECT_NE(both.code, 0) << "dead-dns does not answer: " << both.out << both.err;
  EXPECT_NE(both.out.find("dead-dns"), std::string::npos) << both.out;

  const auto only_good = run_cli({"probe", "--cluster", spec.string(), "--checks", "dns",
                                  "--vantage", good, "--format", "json"});
  EXPECT_EQ(only_good.code, 0) << only_good.out << only_good.err;
  EXPECT_EQ(only_good.out.find("dead-dns"), std::string::npos) << only_good.out;

  const auto only_dead =
      run_cli({"probe", "--cluster", spec.string(), "--checks", "dns", "--vantage", "dead-dns"});
  EXPECT_NE(only_dead.code, 0) << only_dead.out << only_dead.err;
  EXPECT_NE(only_dead.out.find("dead-dns"), std::string::npos) << only_dead.out;
}

}  // namespace
}  // namespace ringwatch::cli
