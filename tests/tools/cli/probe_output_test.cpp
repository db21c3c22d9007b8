// `ringwatch probe`'s outputs as their readers meet them, on real labs: the
// Nagios status line a pager shows and the thresholds that set it, JSON
// Lines read one line at a time, a person at an 80x24 terminal (a real
// pseudo-terminal) or a pipe, and -t giving up on a stalled backend.
//
// Run time: about 25 s, most of it the 12x48 lab's rounds (about 1 s each)
// and the waits -t and --interval are about.

#include <fcntl.h>
#include <pty.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <cerrno>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "lib/util/text.h"
#include "tests/support/cli_run.h"
#include "tests/support/eventually.h"
#include "tests/support/scoped_lab.h"
#include "tools/cli/cli.h"

extern char** environ;

namespace ringwatch::cli {
namespace {

using testing::lines_of;
using Outcome = testing::CliOutcome;
using testing::run_cli;

std::string first_line(const std::string& text) {
  return text.substr(0, text.find('\n'));
}

// What a terminal shows of `text`: without colour codes and carriage returns.
std::string visible(const std::string& text) {
  std::string shown;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\033') {
      i = text.find('m', i);
      if (i == std::string::npos) break;
      continue;
    }
    if (text[i] != '\r') shown += text[i];
  }
  return shown;
}

std::size_t widest(const std::string& text) {
  std::size_t widest = 0;
  for (const std::string& line : lines_of(visible(text))) {
    widest = std::max(widest, util::columns(line));
  }
  return widest;
}

std::string quoted(const std::string& arg) {
  return "'" + arg + "'";
}

// The real binary with stdout into a pipe, as a script or a monitoring core
// runs it; stderr is dropped.
Outcome run_piped(const std::vector<std::string>& args, const std::string& env = "") {
  std::string command = env + " " + quoted(RINGWATCH_BINARY);
  for (const std::string& arg : args) command += " " + quoted(arg);
  FILE* pipe = ::popen((command + " 2>/dev/null").c_str(), "r");
  if (pipe == nullptr) return {-1, "", "popen failed"};
  std::string out;
  char buffer[4096];
  for (std::size_t n; (n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0;) out.append(buffer, n);
  const int status = ::pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out, ""};
}

// The real binary on a pseudo-terminal of `columns` x 24, as a person runs
// it; `set_env` are NAME=VALUE additions (NO_COLOR and COLUMNS are cleared).
Outcome run_on_terminal(const std::vector<std::string>& args, unsigned short columns,
                        const std::vector<std::string>& set_env = {}) {
  std::vector<std::string> env{"TERM=xterm-256color"};
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string entry = *e;
    if (!entry.starts_with("NO_COLOR=") && !entry.starts_with("COLUMNS=") &&
        !entry.starts_with("TERM=")) {
      env.push_back(entry);
    }
  }
  env.insert(env.end(), set_env.begin(), set_env.end());
  std::vector<std::string> argv{RINGWATCH_BINARY};
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<char*> c_argv, c_env;
  for (std::string& a : argv) c_argv.push_back(a.data());
  for (std::string& e : env) c_env.push_back(e.data());
  c_argv.push_back(nullptr);
  c_env.push_back(nullptr);

  winsize size{};
  size.ws_row = 24;
  size.ws_col = columns;
  int master = -1;
  const pid_t pid = ::forkpty(&master, nullptr, nullptr, &size);
  if (pid < 0) return {-1, "", "forkpty failed"};
  if (pid == 0) {
    ::execve(c_argv[0], c_argv.data(), c_env.data());
    ::_exit(127);
  }
  std::string out;
  char buffer[4096];
  for (;;) {
    const ssize_t n = ::read(master, buffer, sizeof buffer);
    if (n > 0) {
      out.append(buffer, static_cast<std::size_t>(n));
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      break;  // EIO once the child has closed its side
    }
  }
  ::close(master);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out, ""};
}

std::string write_spec_with_io_ms(const testing::ScopedLab& lab, int io_ms) {
  std::ifstream in(lab::spec_path(lab.dir()));
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto io = text.find("\"io_ms\"");
  const auto value = text.find_first_of("0123456789", io);
  const auto end = text.find_first_not_of("0123456789", value);
  if (io == std::string::npos) throw std::runtime_error("no io_ms in the lab's spec");
  text.replace(value, end - value, std::to_string(io_ms));
  const auto path = lab.dir() / "slow-cluster.json";
  std::ofstream(path) << text;
  return path.string();
}

// --- the yardsticks on a 12x48 lab ------------------------------------

TEST(ProbeOutputTest, TwelveByFortyEightStaysShortAndTheIncidentStaysOnTop) {
  testing::ScopedLab lab(12, 48);
  const std::string spec = lab::spec_path(lab.dir()).string();

  const Outcome nagios = run_cli({"probe", "--cluster", spec, "--format", "nagios"});
  ASSERT_EQ(nagios.code, kExitOk) << nagios.out << nagios.err;
  const std::string status_line = first_line(nagios.out);
  EXPECT_TRUE(status_line.starts_with("RINGWATCH OK - ")) << status_line;
  EXPECT_LT(status_line.size(), 1000u) << status_line;
  EXPECT_NE(status_line.find("'consistency_ratio'=1;;;0;1"), std::string::npos) << status_line;
  EXPECT_EQ(status_line.find('/'), std::string::npos) << "no per-subject perfdata by default";
  const Outcome all =
      run_cli({"probe", "--cluster", spec, "--format", "nagios", "--perfdata", "all"});
  EXPECT_NE(first_line(all.out).find("'backend_clients/b48'="), std::string::npos);
  EXPECT_GT(first_line(all.out).size(), 3000u) << "why the default leaves them out";

  const Outcome healthy = run_cli({"probe", "--cluster", spec});
  EXPECT_EQ(healthy.code, kExitOk);
  EXPECT_LT(lines_of(healthy.out).size(), 40u) << healthy.out;
  EXPECT_LE(widest(healthy.out), 80u) << healthy.out;

  lab.inject({lab::FaultKind::eject, "p2", "b3", "", ""});
  const Outcome text = run_cli({"probe", "--cluster", spec});
  EXPECT_EQ(text.code, kExitCritical);
  EXPECT_LE(widest(text.out), 80u) << text.out;
  const std::vector<std::string> lines = lines_of(text.out);
  ASSERT_GE(lines.size(), 10u) << text.out;
  std::string top;
  for (std::size_t i = 0; i < 10; ++i) top += lines[i] + "\n";
  EXPECT_NE(top.find("\nDiagnosis\n  critical p2 is missing b3 (canary: 0/"), std::string::npos)
      << "the diagnosis, the proxy and the backend in the first 10 lines:\n"
      << text.out;

  const Outcome paged = run_cli({"probe", "--cluster", spec, "--format", "nagios"});
  EXPECT_EQ(paged.code, kExitCritical);
  EXPECT_LT(first_line(paged.out).size(), 1000u) << paged.out;
  EXPECT_TRUE(
      first_line(paged.out).starts_with("RINGWATCH CRITICAL - p2 is missing b3 (canary: 0/"))
      << paged.out;
  const std::vector<std::string> long_output = lines_of(paged.out);
  ASSERT_GE(long_output.size(), 3u);
  EXPECT_TRUE(long_output[1].starts_with("critical canary/ring_divergence: proxy p2 routes 0 of"))
      << paged.out;
  EXPECT_NE(paged.out.find("\ncritical connections/proxy_missing_backend: proxy p2 is not "
                           "connected to b3"),
            std::string::npos)
      << paged.out;

  lab.inject({lab::FaultKind::dns, "", "b3", "127.200.0.13", ""});
  const Outcome caused = run_cli({"probe", "--cluster", spec, "--format", "nagios"});
  EXPECT_NE(first_line(caused.out)
                .find("— b3's name resolves to 127.200.0.13, outside 127.10.0.0/16, at the "
                      "vantage point used by p2 |"),
            std::string::npos)
      << "the pager sees the cause:\n"
      << caused.out;
  EXPECT_NE(caused.out.find("\ncritical dns/dns_outside_range: b3's name"), std::string::npos);
}

// --- thresholds ----------------------------------------------------------------

TEST(ProbeOutputTest, ThresholdsInEveryRangeFormSetTheStatusAndThePerfdata) {
  testing::ScopedLab lab;
  const std::string spec = lab::spec_path(lab.dir()).string();
  auto nagios = [&spec](std::vector<std::string> extra) {
    Args args{"probe", "--cluster", spec, "--checks", "canary", "--format", "nagios"};
    args.insert(args.end(), extra.begin(), extra.end());
    return run_cli(args);
  };

  const Outcome met = nagios({"-w", "inconsistent_reads=0", "-c", "consistency_ratio=0.99:"});
  EXPECT_EQ(met.code, kExitOk) << met.out << met.err;
  EXPECT_NE(met.out.find("'consistency_ratio'=1;;0.99:;0;1"), std::string::npos) << met.out;
  EXPECT_NE(met.out.find("'inconsistent_reads'=0;0;;0"), std::string::npos) << met.out;

  const Outcome inside = nagios({"-w", "consistency_ratio=@0.5:1"});
  EXPECT_EQ(inside.code, kExitWarning) << inside.out;
  EXPECT_TRUE(first_line(inside.out)
                  .starts_with("RINGWATCH WARNING - consistency_ratio 1 is inside @0.5:1 "
                               "(warning); 24 canaries consistent through 3 proxies"))
      << inside.out;

  const Outcome both = nagios({"-w", "consistency_ratio=@0.5:1", "-c", "consistency_ratio=@0.9:"});
  EXPECT_EQ(both.code, kExitCritical) << "critical is checked first: " << both.out;

  const Outcome below_infinity = nagios({"-w", "inconsistent_reads=~:-1"});
  EXPECT_EQ(below_infinity.code, kExitWarning) << below_infinity.out;
  EXPECT_NE(below_infinity.out.find("inconsistent_reads 0 is above -1 (warning)"),
            std::string::npos);

  const Outcome start_only = nagios({"-c", "inconsistent_reads=10:"});
  EXPECT_EQ(start_only.code, kExitCritical);
  EXPECT_NE(start_only.out.find("inconsistent_reads 0 is below 10 (critical)"), std::string::npos);

  const Outcome bare = nagios({"-c", "inconsistent_reads=5", "-w", "consistency_ratio=0.5:1"});
  EXPECT_EQ(bare.code, kExitOk) << bare.out;

  const Outcome repeated = nagios({"-w", "consistency_ratio=2:", "-w", "inconsistent_reads=0"});
  EXPECT_EQ(repeated.code, kExitWarning);
  EXPECT_NE(repeated.out.find("'consistency_ratio'=1;2:;;0;1"), std::string::npos) << repeated.out;

  const Outcome unmeasured = run_cli({"probe", "--cluster", spec, "--checks", "dns", "--format",
                                      "nagios", "-w", "consistency_ratio=0.99:"});
  EXPECT_EQ(unmeasured.code, kExitUnknown);
  EXPECT_TRUE(first_line(unmeasured.out)
                  .starts_with("RINGWATCH UNKNOWN - consistency_ratio was not measured; "))
      << unmeasured.out;

  lab.inject({lab::FaultKind::eject, "p2", "b3", "", ""});
  const Outcome lenient = nagios({"-w", "consistency_ratio=0:", "-c", "inconsistent_reads=99999"});
  EXPECT_EQ(lenient.code, kExitCritical) << "a threshold never lowers the checks' verdict";
  EXPECT_TRUE(
      first_line(lenient.out).starts_with("RINGWATCH CRITICAL - p2 is missing b3 (canary: 0/"))
      << lenient.out;
}

TEST(ProbeOutputTest, ThresholdUsageErrorsExitThree) {
  auto error_of = [](const Args& args) {
    const Outcome outcome = run_cli(args);
    EXPECT_EQ(outcome.code, kExitUnknown);
    EXPECT_EQ(outcome.out, "");
    return first_line(outcome.err);
  };
  EXPECT_EQ(error_of({"probe", "--cluster", "x.json", "--format", "nagios", "-w", "keys=1"}),
            "ringwatch probe: -w/--warning: no threshold on \"keys\" (figures: consistency_ratio, "
            "inconsistent_reads)");
  EXPECT_EQ(error_of({"probe", "--cluster", "x.json", "--format", "nagios", "-c",
                      "consistency_ratio=1:0"}),
            "ringwatch probe: -c/--critical: \"1:0\" is not a range: its start 1 is above its "
            "end 0");
  EXPECT_EQ(error_of({"probe", "--cluster", "x.json", "-w", "inconsistent_reads=0"}),
            "ringwatch probe: -w/--warning, -c/--critical and --perfdata apply to --format nagios");
  EXPECT_EQ(error_of({"probe", "--cluster", "x.json", "--format", "nagios", "--perfdata", "some"}),
            "ringwatch probe: --perfdata must be cluster or all, got \"some\"");
  EXPECT_EQ(error_of({"probe", "--cluster", "x.json", "--format", "json", "-v"}),
            "ringwatch probe: -v/--verbose applies to --format text");
  EXPECT_EQ(error_of({"probe", "--cluster", "x.json", "-t", "0"}),
            "ringwatch probe: -t/--timeout must be more than 0 seconds");
}

// --- JSON Lines ---------------------------------------------------------------

TEST(ProbeOutputTest, RoundsPrintJsonLinesOneRoundOnePrettyDocument) {
  testing::ScopedLab lab;
  const std::string spec = lab::spec_path(lab.dir()).string();

  const Outcome rounds =
      run_cli({"probe", "--cluster", spec, "--format", "json", "--rounds", "3", "--interval", "0"});
  EXPECT_EQ(rounds.code, kExitOk) << rounds.err;
  const std::vector<std::string> lines = lines_of(rounds.out);
  ASSERT_EQ(lines.size(), 3u) << rounds.out;
  for (const std::string& line : lines) {
    rapidjson::Document doc;  // what json.loads or jq does with each line
    ASSERT_FALSE(doc.Parse(line.c_str()).HasParseError()) << line;
    EXPECT_STREQ(doc["schema"].GetString(), "ringwatch.report/v1");
    EXPECT_STREQ(doc["status"].GetString(), "OK");
    EXPECT_EQ(doc["checks"].Size(), 3u);
  }
  const Outcome one_round =
      run_cli({"probe", "--cluster", spec, "--format", "json", "--rounds", "1"});
  EXPECT_EQ(lines_of(one_round.out).size(), 1u) << "--rounds means JSON Lines, whatever N";

  const Outcome single = run_cli({"probe", "--cluster", spec, "--format", "json"});
  EXPECT_GT(lines_of(single.out).size(), 20u) << "one round: an indented document";
  rapidjson::Document doc;
  ASSERT_FALSE(doc.Parse(single.out.c_str()).HasParseError());
  EXPECT_STREQ(doc["status"].GetString(), "OK");
}

// --- -t/--timeout -----------------------------------------------------------------

TEST(ProbeOutputTest, TimeoutExitsUnknownNamingTheCheckStillRunning) {
  testing::ScopedLab lab;
  const std::string slow = write_spec_with_io_ms(lab, 30000);
  lab.inject({lab::FaultKind::stall, "", "b2", "", ""});

  // The real process, as a monitoring core runs it: it ends at -t although
  // the stalled backend would hold the round for the spec's 30 s deadline.
  const auto start = std::chrono::steady_clock::now();
  const Outcome paged = run_piped({"probe", "--cluster", slow, "--format", "nagios", "-t", "1"});
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(paged.code, kExitUnknown) << paged.out;
  EXPECT_EQ(paged.out,
            "RINGWATCH UNKNOWN - timed out after 1 s: canary still running in round 1 (0 of 1 "
            "rounds done; connections and dns not started) |\n");
  EXPECT_LT(took, std::chrono::seconds(30)) << "it did not wait for the io deadline";

  // In-process: the report names every check, and the round left behind
  // ends once the backend answers again.
  const Outcome json =
      run_cli({"probe", "--cluster", slow, "--format", "json", "--timeout", "0.5"});
  EXPECT_EQ(json.code, kExitUnknown) << json.err;
  rapidjson::Document doc;
  ASSERT_FALSE(doc.Parse(json.out.c_str()).HasParseError()) << json.out;
  EXPECT_STREQ(doc["summary"].GetString(), "UNKNOWN: canary still running at the 0.5 s --timeout");
  ASSERT_EQ(doc["checks"].Size(), 3u);
  EXPECT_STREQ(doc["checks"][1]["summary"].GetString(),
               "connections not started by the 0.5 s --timeout");
  EXPECT_STREQ(doc["diagnoses"][0]["summary"].GetString(),
               "timed out after 0.5 s: canary still running in round 1 (0 of 1 rounds done; "
               "connections and dns not started)");
  EXPECT_TRUE(work_left_running());
  lab.heal();
  EXPECT_TRUE(testing::eventually([] { return !work_left_running(); }))
      << "the abandoned round ends once its peers answer";

  const Outcome between = run_cli({"probe", "--cluster", slow, "--format", "json", "--rounds", "3",
                                   "--interval", "30", "-t", "2"});
  EXPECT_EQ(between.code, kExitUnknown);
  const std::vector<std::string> lines = lines_of(between.out);
  ASSERT_EQ(lines.size(), 2u) << between.out;
  EXPECT_NE(lines[0].find("\"status\":\"OK\""), std::string::npos) << lines[0];
  EXPECT_NE(lines[1].find("timed out after 2 s: round 2 not started (1 of 3 rounds done)"),
            std::string::npos)
      << lines[1];
  EXPECT_TRUE(testing::eventually([] { return !work_left_running(); }))
      << "the rounds' thread stops waiting for the next round";
}

// --- a person at a terminal ------------------------------------------------------

TEST(ProbeOutputTest, ColourOnATerminalNoneWhenPipedEveryLineFitsTheTerminal) {
  testing::ScopedLab lab;
  const std::string spec = lab::spec_path(lab.dir()).string();
  lab.inject({lab::FaultKind::eject, "p2", "b3", "", ""});

  const Outcome terminal = run_on_terminal({"probe", "--cluster", spec}, 80);
  EXPECT_EQ(terminal.code, kExitCritical) << terminal.out;
  EXPECT_TRUE(
      terminal.out.starts_with("\033[1;31mCRITICAL:\033[0m ring divergence: p2 is "
                               "missing b3\r\n"))
      << terminal.out;
  EXPECT_NE(terminal.out.find("\033[1mDiagnosis\033[0m"), std::string::npos);
  EXPECT_LE(widest(terminal.out), 80u) << visible(terminal.out);

  const Outcome narrow = run_on_terminal({"probe", "--cluster", spec}, 60);
  EXPECT_LE(widest(narrow.out), 60u) << visible(narrow.out);
  EXPECT_GT(widest(narrow.out), 50u);

  const Outcome no_color = run_on_terminal({"probe", "--cluster", spec}, 80, {"NO_COLOR=1"});
  EXPECT_EQ(no_color.out.find('\033'), std::string::npos) << no_color.out;
  const Outcome nagios = run_on_terminal({"probe", "--cluster", spec, "--format", "nagios"}, 80);
  EXPECT_EQ(nagios.out.find('\033'), std::string::npos) << "colour is for the text format";

  const Outcome piped = run_piped({"probe", "--cluster", spec, "--format", "text"});
  EXPECT_EQ(piped.code, kExitCritical);
  EXPECT_TRUE(piped.out.starts_with("CRITICAL: ring divergence: p2 is missing b3\n")) << piped.out;
  EXPECT_EQ(piped.out.find('\033'), std::string::npos);
  const Outcome forced = run_piped({"probe", "--cluster", spec, "--color", "always"});
  EXPECT_NE(forced.out.find("\033[1;31m"), std::string::npos);
  EXPECT_EQ(first_line(visible(forced.out)), first_line(piped.out)) << "colour changes no text";
}

}  // namespace
}  // namespace ringwatch::cli
