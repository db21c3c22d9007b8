// `ringwatch spec import` against the real programs: the lab's own nutcracker
// configs round-trip into a spec that probes OK, and a user holding only three
// nutcracker YAML files gets from them to a passing `ringwatch probe` in two
// commands (the built binary, as they would type them).

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <vector>

#include "lib/spec/cluster_spec.h"
#include "tests/support/cli_run.h"
#include "tests/support/nutcracker_fleet.h"
#include "tests/support/scoped_lab.h"
#include "tools/cli/cli.h"

namespace ringwatch::cli {
namespace {

namespace fs = std::filesystem;

using Outcome = testing::CliOutcome;
using testing::run_cli;

std::string read_text(const fs::path& path) {
  std::ifstream file(path);
  return {std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>()};
}

TEST(SpecImportCliTest, HelpSaysWhatIsReadAndWhatCannotBe) {
  const Outcome help = run_cli({"spec", "import", "--help"});
  EXPECT_EQ(help.code, kExitOk);
  for (const char* part :
       {"--twemproxy NAME=CONFIG[,client=ADDR][,stats=ADDR][,pool=POOL]", "--mcrouter",
        "port 22222", "10.0.0.1:11211 becomes 10.0.0.1-11211", "Lua", "cannot be imported",
        "written from mcrouter's documentation", "--out"}) {
    EXPECT_NE(help.out.find(part), std::string::npos) << part;
  }
  EXPECT_NE(run_cli({"--help"}).out.find("  spec "), std::string::npos);
  const Outcome none = run_cli({"spec", "import"});
  EXPECT_EQ(none.code, kExitUnknown);
  EXPECT_EQ(none.err.rfind("ringwatch spec: give at least one --twemproxy or --mcrouter\n", 0), 0u)
      << none.err;
  EXPECT_EQ(run_cli({"spec", "frobnicate"}).code, kExitUnknown);
}

TEST(SpecImportCliTest, ABadConfigNamesTheFileAndLineAndExits3) {
  std::string pattern = (fs::temp_directory_path() / "ringwatch-import-bad-XXXXXX").string();
  ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
  const fs::path config = fs::path(pattern) / "tw1.yml";
  std::ofstream(config) << "a:\n  listen: 10.0.1.1:22121\n  servers:\n    - 10.0.0.1:11211\n";
  const Outcome bad = run_cli({"spec", "import", "--twemproxy", "tw1=" + config.string()});
  fs::remove_all(pattern);
  EXPECT_EQ(bad.code, kExitUnknown);
  EXPECT_EQ(bad.out, "");
  EXPECT_EQ(bad.err, "ringwatch spec import: " + config.string() +
                         ":4: expected a server like \"10.0.0.1:11211:1 name\" (host:port:weight, "
                         "then an optional name), got \"10.0.0.1:11211\"\n");
  const Outcome usage = run_cli({"spec", "import", "--mcrouter", "m1=mc.json"});
  EXPECT_EQ(usage.code, kExitUnknown);
  EXPECT_EQ(usage.err.rfind("ringwatch spec: --mcrouter: client=ADDR is required for mcrouter", 0),
            0u)
      << usage.err;
}

TEST(SpecImportCliTest, TheLabsOwnConfigsRoundTripIntoASpecThatProbesOk) {
  testing::ScopedLab lab;
  const spec::ClusterSpec original = lab.spec();
  Args import = {"spec", "import", "--out", (lab.dir() / "imported.json").string()};
  for (const spec::Proxy& proxy : original.proxies) {
    import.insert(
        import.end(),
        {"--twemproxy", proxy.name + "=" + (lab.dir() / "conf" / (proxy.name + ".yml")).string() +
                            ",stats=" + proxy.stats->to_string()});
  }
  const Outcome imported = run_cli(import);
  ASSERT_EQ(imported.code, kExitOk) << imported.err;
  EXPECT_EQ(imported.out, "");
  EXPECT_EQ(imported.err, "") << "the lab's proxies agree";

  const spec::ClusterSpec spec = spec::load_cluster_spec((lab.dir() / "imported.json").string());
  EXPECT_EQ(spec.name, original.name);
  ASSERT_EQ(spec.proxies.size(), original.proxies.size());
  for (std::size_t i = 0; i < spec.proxies.size(); ++i) {
    EXPECT_EQ(spec.proxies[i].name, original.proxies[i].name);
    EXPECT_EQ(spec.proxies[i].kind, spec::ProxyKind::twemproxy);
    EXPECT_EQ(spec.proxies[i].client, original.proxies[i].client);
    EXPECT_EQ(spec.proxies[i].stats, original.proxies[i].stats);
    EXPECT_EQ(spec.proxies[i].pool, original.name);
  }
  ASSERT_EQ(spec.backends.size(), original.backends.size());
  for (std::size_t i = 0; i < spec.backends.size(); ++i) {
    EXPECT_EQ(spec.backends[i].name, original.backends[i].name);
    EXPECT_EQ(spec.backends[i].endpoint(), original.backends[i].endpoint());
    EXPECT_EQ(spec.backends[i].dns_name, std::nullopt);
  }

  const Outcome probe =
      run_cli({"probe", "--cluster", (lab.dir() / "imported.json").string(), "--color", "never"});
  EXPECT_EQ(probe.code, kExitOk) << probe.out << probe.err;
  EXPECT_EQ(probe.out.rfind("OK: ", 0), 0u) << probe.out;
  // The Checks table: the check, its status, its time, its summary.
  EXPECT_TRUE(std::regex_search(probe.out, std::regex("\\n  dns +OK "))) << probe.out;
  EXPECT_NE(probe.out.find("not applicable: no backend has a dns_name"), std::string::npos)
      << probe.out;
}

// Runs `command` in a shell; its exit code.
int shell(const std::string& command) {
  const int status = std::system(command.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// Three nutcracker 0.5.0 proxies over four memcached backends, written the way
// most nutcracker.yml files are: servers by IP, no names, port 11211; each
// proxy on its own address with its stats on nutcracker's default port.
TEST(SpecImportCliTest, ThreeNutcrackerYamlFilesToAPassingProbeInTwoCommands) {
  constexpr std::uint16_t kClient = 22121, kStats = 22222, kMemcached = 11211;
  const std::string net =
      testing::free_loopback_net({1, 2, 3, 11, 12, 13, 14}, {kClient, kStats, kMemcached});
  testing::NutcrackerFleet fleet;
  std::string servers;
  for (int host = 11; host <= 14; ++host) {
    fleet.add_backend(net + "." + std::to_string(host), kMemcached);
    servers += "   - " + net + "." + std::to_string(host) + ":11211:1\n";
  }
  std::string import = std::string(RINGWATCH_BINARY) + " spec import";
  for (int i = 1; i <= 3; ++i) {
    const std::string address = net + "." + std::to_string(i);
    const std::string yaml = "sessions:\n  listen: " + address +
                             ":22121\n  hash: fnv1a_64\n  distribution: ketama\n"
                             "  auto_eject_hosts: true\n  server_retry_timeout: 30000\n"
                             "  server_failure_limit: 3\n  servers:\n" +
                             servers;
    const fs::path config =
        fleet.add_proxy("tw" + std::to_string(i), yaml, {address, kClient}, {address, kStats});
    import += " --twemproxy tw" + std::to_string(i) + "=" + config.string();
  }
  const fs::path spec = fleet.dir() / "spec.json";
  const fs::path report = fleet.dir() / "report.txt";

  ASSERT_EQ(shell(import + " --out " + spec.string()), 0);
  const int probe = shell(std::string(RINGWATCH_BINARY) + " probe --cluster " + spec.string() +
                          " --color never > " + report.string());
  EXPECT_EQ(probe, 0) << read_text(spec) << read_text(report);
  const std::string text = read_text(report);
  EXPECT_EQ(text.rfind("OK: ", 0), 0u) << text;
  EXPECT_TRUE(std::regex_search(text, std::regex("\\n  connections +OK "))) << text;
  EXPECT_NE(text.find("3 proxies connected to all 4 backends"), std::string::npos) << text;
}

}  // namespace
}  // namespace ringwatch::cli
