// The `ringwatch` command, driven in-process: help, usage errors, bad specs,
// and exit codes against a real lab.

#include "tools/cli/cli.h"

#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <stdlib.h>
#include <unistd.h>

#include <climits>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/cli_run.h"
#include "tests/support/scoped_lab.h"

namespace ringwatch::cli {
namespace {

using testing::lines_of;
using Outcome = testing::CliOutcome;
using testing::run_cli;

// A file in this test program's own temporary directory (mkdtemp), so two
// runs at once never share a name.
std::filesystem::path write_temp(const std::string& name, const std::string& text) {
  static const std::filesystem::path dir = [] {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "ringwatch-cli-test-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    return std::filesystem::path(pattern);
  }();
  const auto path = dir / name;
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
       {"--cluster", "--checks", "--format", "--rounds", "--interval", "--vantage", "--color",
        "-t [ --timeout ]", "-v [ --verbose ]", "-w [ --warning ]", "-c [ --critical ]",
        "--perfdata", "@10:20", "NO_COLOR", "JSON Lines"}) {
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
  EXPECT_NE(check.err.find("--checks: unknown check \"bogus\" (known: canary, connections, dns)"),
            std::string::npos)
      << check.err;
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

// --- ringwatch migrate ------------------------------------------------------

// A fresh directory under /tmp, removed with everything in it at the end.
class TempDir {
 public:
  TempDir() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "ringwatch-cli-migrate-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::string file(const std::string& name, const std::string& text) const {
    std::ofstream(path_ / name) << text;
    return (path_ / name).string();
  }

 private:
  std::filesystem::path path_;
};

// A lab named by a relative --dir: its processes run elsewhere, so the lab
// must record where its files are, not how the command line spelled it.
TEST(CliTest, ALabNamedByARelativeDirectoryWorksFromThere) {
  TempDir dir;
  const std::filesystem::path before = std::filesystem::current_path();
  std::filesystem::current_path(dir.path());
  const Outcome up = run_cli({"lab", "up", "--dir", "rel", "--proxies", "2", "--backends", "2"});
  const Outcome fault =
      run_cli({"lab", "fault", "--dir", "rel", "eject", "--proxy", "p2", "--backend", "b2"});
  const Outcome heal = run_cli({"lab", "heal", "--dir", "rel"});
  const Outcome down = run_cli({"lab", "down", "--dir", "./rel/"});
  std::filesystem::current_path(before);
  EXPECT_EQ(up.code, kExitOk) << up.out << up.err;
  EXPECT_EQ(fault.code, kExitOk) << fault.out << fault.err;
  EXPECT_EQ(heal.code, kExitOk) << heal.out << heal.err;
  EXPECT_EQ(down.code, kExitOk) << down.out << down.err;
  EXPECT_TRUE(std::filesystem::exists(dir.path() / "rel" / "cluster.json"));
}

TEST(CliTest, MigrateHelpListsEverySubcommand) {
  const Outcome help = run_cli({"migrate", "--help"});
  EXPECT_EQ(help.code, kExitOk);
  EXPECT_EQ(help.err, "");
  for (const char* sub : {"plan", "run", "status", "pause", "resume", "abort", "skip"}) {
    EXPECT_NE(help.out.find(std::string("\n  ") + sub + " "), std::string::npos) << sub << " in:\n"
                                                                                 << help.out;
  }
  EXPECT_TRUE(help.out.starts_with("Usage: ringwatch migrate <subcommand> [options]\n"))
      << help.out;

  const Outcome bare = run_cli({"migrate"});
  EXPECT_EQ(bare.code, kExitUnknown);
  EXPECT_EQ(bare.err, help.out);  // the same text, as a usage error

  const Outcome plan_help = run_cli({"migrate", "plan", "--help"});
  EXPECT_EQ(plan_help.code, kExitOk);
  for (const char* option : {"--plan", "--var", "--state", "--cluster", "--step", "--reason"}) {
    EXPECT_NE(plan_help.out.find(option), std::string::npos) << option;
  }
}

TEST(CliTest, MigratePlanRejectsABadPlanNamingFilePointerAndExpectation) {
  TempDir dir;
  const std::string plan = dir.file("plan.json", R"({"clusters": [{"name": "c1",
    "spec": "cluster.json",
    "steps": [{"name": "s", "run": ["true"], "colour": "red"}]}]})");
  const Outcome bad = run_cli({"migrate", "plan", "--plan", plan});
  EXPECT_EQ(bad.code, kExitUnknown);
  EXPECT_EQ(bad.err, "ringwatch migrate plan: " + plan +
                         ": /clusters/0/steps/0/colour: unknown field (expected one of: name, "
                         "run, timeout, retries, backoff, safe_to_rerun, approval, preflight, "
                         "verify, hooks)\n");
  EXPECT_EQ(bad.out, "");

  const std::string unset = dir.file("unset.json", R"({"clusters": [{"name": "c1",
    "spec": "${lab}/cluster.json", "steps": [{"name": "s", "run": ["true"]}]}]})");
  const Outcome undefined = run_cli({"migrate", "plan", "--plan", unset});
  EXPECT_EQ(undefined.code, kExitUnknown);
  EXPECT_EQ(undefined.err, "ringwatch migrate plan: " + unset +
                               ": /clusters/0/spec: undefined variable \"lab\" (give it with "
                               "--var lab=VALUE)\n");

  const Outcome missing =
      run_cli({"migrate", "plan", "--plan", (dir.path() / "none.json").string()});
  EXPECT_EQ(missing.code, kExitUnknown);
  EXPECT_EQ(missing.err, "ringwatch migrate plan: " + (dir.path() / "none.json").string() +
                             ": cannot read file: No such file or directory\n");
}

TEST(CliTest, MigrateUsageErrors) {
  const std::string hint = "Try `ringwatch migrate --help`.\n";
  const Outcome no_plan = run_cli({"migrate", "plan"});
  EXPECT_EQ(no_plan.code, kExitUnknown);
  EXPECT_EQ(no_plan.err, "ringwatch migrate: plan: missing --plan\n" + hint);
  EXPECT_EQ(no_plan.out, "");

  for (const char* var : {"x", "=1", "1x=2", "a-b=c"}) {
    const Outcome bad_var = run_cli({"migrate", "plan", "--plan", "plan.json", "--var", var});
    EXPECT_EQ(bad_var.code, kExitUnknown) << var;
    EXPECT_EQ(bad_var.err, std::string("ringwatch migrate: --var wants NAME=VALUE (NAME of "
                                       "letters, digits, _), got \"") +
                               var + "\"\n" + hint);
  }

  const Outcome no_state = run_cli({"migrate", "status"});
  EXPECT_EQ(no_state.code, kExitUnknown);
  EXPECT_EQ(no_state.err, "ringwatch migrate: status: missing --state\n" + hint);

  const Outcome unknown = run_cli({"migrate", "rollback", "--state", "/tmp"});
  EXPECT_EQ(unknown.code, kExitUnknown);
  EXPECT_EQ(unknown.err,
            "ringwatch migrate: unknown subcommand \"rollback\" (plan, run, status, pause, "
            "resume, abort, skip, approve or repair)\n" +
                hint);
}

TEST(CliTest, MigrateStatusAndCommandsWithoutAJournalExitThree) {
  TempDir dir;
  const std::string state = dir.path().string();
  const Outcome status = run_cli({"migrate", "status", "--state", state});
  EXPECT_EQ(status.code, kExitUnknown);
  EXPECT_EQ(status.err, "ringwatch migrate status: no migration journal in " + state + "\n");
  EXPECT_EQ(status.out, "");

  const Outcome abort = run_cli({"migrate", "abort", "--state", state});
  EXPECT_EQ(abort.code, kExitUnknown);
  EXPECT_EQ(abort.err, "ringwatch migrate abort: no migration journal in " + state + "\n");
  EXPECT_EQ(abort.out, "");

  const Outcome pause = run_cli({"migrate", "pause", "--state", state, "--cluster", "lab"});
  EXPECT_EQ(pause.code, kExitUnknown);
  EXPECT_EQ(pause.err, "ringwatch migrate pause: no migration journal in " + state + "\n");
  // Refused without leaving anything behind (no journal, no lock, no queue).
  EXPECT_TRUE(std::filesystem::is_empty(dir.path()));
}

TEST(CliTest, MigratePlanPrintsTheLabMigrationsFifteenStepsInOrder) {
  testing::ScopedLab lab;
  const std::string plan = std::string(RINGWATCH_SOURCE_DIR) + "/tools/examples/lab-migration.json";
  const std::string dir = lab.dir().string();
  // ${ringwatch} is the running program: here, this test.
  char self_buffer[PATH_MAX];
  const ssize_t length = ::readlink("/proc/self/exe", self_buffer, sizeof self_buffer - 1);
  ASSERT_GT(length, 0);
  const std::string self(self_buffer, static_cast<std::size_t>(length));

  const Outcome shown = run_cli({"migrate", "plan", "--plan", plan, "--var", "lab=" + dir});
  ASSERT_EQ(shown.code, kExitOk) << shown.err;
  EXPECT_EQ(shown.err, "");
  const std::vector<std::string> lines = lines_of(shown.out);
  ASSERT_EQ(lines.size(), 34u) << shown.out;  // 4 + 15 steps + 6 preflights + 9 verifies
  EXPECT_EQ(lines[0], "plan " + plan + ": 1 cluster, at most 1 at once");
  EXPECT_EQ(lines[1], "blackout windows: none");
  EXPECT_EQ(lines[2], "notifications: none");
  EXPECT_EQ(lines[3], "cluster lab (spec " + dir +
                          "/cluster.json, 3 proxies, 3 backends; resumes automatically after 2 "
                          "passing re-checks every 1 s)");
  EXPECT_EQ(lines[4], "  1. start-b4: run `" + self + " lab add-backend --dir " + dir +
                          " --backend b4` (timeout 60 s)");
  EXPECT_EQ(lines[5], "  2. roll-onto-b4: run `" + self + " lab roll-proxies --dir " + dir +
                          " --pause 0.5` (timeout 120 s, 2 retries, backoff 1 s, safe to re-run)");
  EXPECT_EQ(lines[6], "     preflight: dns (backends b4)");
  EXPECT_EQ(lines[7],
            "     verify: canary (consistency >= 1; backends b4), connections (backends b4), dns "
            "(within 30 s, every 1 s)");
  EXPECT_EQ(lines[8], "  3. drain-b1: run `" + self + " lab drain-backend --dir " + dir +
                          " --backend b1` (timeout 60 s, safe to re-run)");
  EXPECT_EQ(lines[9], "     preflight: canary (consistency >= 1), connections");
  EXPECT_EQ(lines[lines.size() - 2], "  15. stop-b3: run `" + self + " lab remove-backend --dir " +
                                         dir + " --backend b3` (timeout 60 s)");
  EXPECT_EQ(lines.back(),
            "      verify: canary (consistency >= 1), connections (within 30 s, every 1 s)");

  // The numbered lines: every step, in the plan's order.
  std::vector<std::string> steps;
  for (const std::string& line : lines) {
    const std::string number = "  " + std::to_string(steps.size() + 1) + ". ";
    if (!line.starts_with(number)) continue;
    steps.push_back(line.substr(number.size(), line.find(": ") - number.size()));
  }
  EXPECT_EQ(steps, (std::vector<std::string>{"start-b4", "roll-onto-b4", "drain-b1", "roll-off-b1",
                                             "stop-b1", "start-b5", "roll-onto-b5", "drain-b2",
                                             "roll-off-b2", "stop-b2", "start-b6", "roll-onto-b6",
                                             "drain-b3", "roll-off-b3", "stop-b3"}));
}

}  // namespace
}  // namespace ringwatch::cli
