// The `ringwatch` command, driven in-process: help, usage errors, bad specs,
// and exit codes against a real lab.

#include "tools/cli/cli.h"

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "tests/support/scoped_lab.h"

namespace ringwatch::cli {
namespace {

struct Outcome {
  int code;
  std::string out, err;
};

Outcome run_cli(const Args& args) {
  std::ostringstream out, err;
  const int code = run(args, out, err);
  return {code, out.str(), err.str()};
}

std::filesystem::path write_temp(const std::string& name, const std::string& text) {
  const auto path = std::filesystem::temp_directory_path() / name;
  std::ofstream(path) << text;
  return path;
}

TEST(CliTest, HelpNamesEveryCommand) {
  const Outcome help = run_cli({"--help"});
  EXPECT_EQ(help.code, kExitOk);
  for (const char* command : {"probe", "lab", "version"}) {
    EXPECT_NE(help.out.find(std::string("  ") + command), std::string::npos) << command;
  }
  EXPECT_EQ(run_cli({}).code, kExitUnknown) << "no command is bad usage";
}

TEST(CliTest, ProbeHelpExplainsEveryOption) {
  const Outcome help = run_cli({"probe", "--help"});
  EXPECT_EQ(help.code, kExitOk);
  for (const char* option :
       {"--cluster", "--checks", "--format", "--rounds", "--interval", "--vantage", "--color"}) {
    EXPECT_NE(help.out.find(option), std::string::npos) << option;
  }
}

TEST(CliTest, LabHelpExplainsEverySubcommand) {
  const Outcome help = run_cli({"lab", "--help"});
  EXPECT_EQ(help.code, kExitOk);
  for (const char* sub : {"up", "status", "fault", "heal", "down"}) {
    EXPECT_NE(help.out.find(std::string("  ") + sub + " "), std::string::npos) << sub;
  }
  const Outcome faults = run_cli({"lab", "fault", "--help"});
  EXPECT_EQ(faults.code, kExitOk);
  for (const char* kind : {"eject", "dns", "hash", "kill", "stall", "restart"}) {
    EXPECT_NE(faults.out.find(std::string("  ") + kind + " "), std::string::npos) << kind;
  }
}

TEST(CliTest, UnknownCommandAndOptionsAreUsageErrors) {
  const Outcome unknown = run_cli({"frobnicate"});
  EXPECT_EQ(unknown.code, kExitUnknown);
  EXPECT_NE(unknown.err.find("ringwatch: unknown command \"frobnicate\""), std::string::npos);

  const Outcome missing = run_cli({"probe"});
  EXPECT_EQ(missing.code, kExitUnknown);
  EXPECT_NE(missing.err.find("ringwatch probe: the option '--cluster' is required"),
            std::string::npos)
      << missing.err;

  const Outcome format = run_cli({"probe", "--cluster", "x.json", "--format", "xml"});
  EXPECT_EQ(format.code, kExitUnknown);
  EXPECT_NE(format.err.find("--format must be text, json or nagios"), std::string::npos)
      << format.err;

  const Outcome check = run_cli({"probe", "--cluster", "x.json", "--checks", "canary,bogus"});
  EXPECT_EQ(check.code, kExitUnknown);
  EXPECT_NE(check.err.find("unknown check \"bogus\" in --checks"), std::string::npos) << check.err;
}

TEST(CliTest, MalformedSpecExitsThreeNamingFilePointerAndExpectation) {
  const auto path =
      write_temp("ringwatch-cli-bad.json", R"({"name": "c", "proxies": [], "backends": []})");
  const Outcome bad = run_cli({"probe", "--cluster", path.string()});
  EXPECT_EQ(bad.code, kExitUnknown);
  EXPECT_EQ(bad.err, "ringwatch probe: " + path.string() +
                         ": /proxies: expected a non-empty array, got []\n");
  EXPECT_EQ(bad.out, "");
  std::filesystem::remove(path);

  const Outcome missing = run_cli({"probe", "--cluster", "/nonexistent/cluster.json"});
  EXPECT_EQ(missing.code, kExitUnknown);
  EXPECT_EQ(
      missing.err,
      "ringwatch probe: /nonexistent/cluster.json: cannot read file: No such file or directory\n");
}

TEST(CliTest, ProbeExitCodesFollowTheLab) {
  testing::ScopedLab lab;
  const std::string spec = lab::spec_path(lab.dir()).string();

  const Outcome healthy = run_cli({"probe", "--cluster", spec, "--format", "nagios"});
  EXPECT_EQ(healthy.code, kExitOk) << healthy.out << healthy.err;
  EXPECT_TRUE(healthy.out.starts_with("RINGWATCH OK - ")) << healthy.out;

  lab.inject({lab::FaultKind::eject, "p2", "b3", "", ""});
  const Outcome broken =
      run_cli({"probe", "--cluster", spec, "--checks", "canary", "--format", "json"});
  EXPECT_EQ(broken.code, kExitCritical) << broken.out << broken.err;
  rapidjson::Document doc;
  ASSERT_FALSE(doc.Parse(broken.out.c_str()).HasParseError()) << broken.out;
  EXPECT_STREQ(doc["status"].GetString(), "CRITICAL");
  EXPECT_STREQ(doc["summary"].GetString(), "CRITICAL: ring divergence: p2 is missing b3");

  const Outcome text =
      run_cli({"probe", "--cluster", spec, "--checks", "canary", "--color", "never"});
  EXPECT_EQ(text.code, kExitCritical);
  EXPECT_TRUE(text.out.starts_with("CRITICAL: ring divergence: p2 is missing b3\n")) << text.out;

  const Outcome vantage =
      run_cli({"probe", "--cluster", spec, "--checks", "dns", "--vantage", "nowhere"});
  EXPECT_EQ(vantage.code, kExitUnknown);
  EXPECT_NE(vantage.err.find("no DNS vantage point named \"nowhere\""), std::string::npos)
      << vantage.err;
}

}  // namespace
}  // namespace ringwatch::cli
