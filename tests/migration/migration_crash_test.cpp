// The engine's crash safety on a real lab (issue 12): the example plan,
// `ringwatch migrate run` killed with SIGKILL at 10 random moments and run
// again each time, then to its end. tools/bench/migration_crash.h says what
// is checked, from the journal and from the actions' own log: no two actions
// at once, each journaled before it ran, no step that is not safe to re-run
// run twice, none left out, the journal intact after every kill, the final
// probe OK. The seed is printed; RINGWATCH_CRASH_SEED=N replays one. More
// kills: build/tools/bench/migration_crash_bench.

#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <random>
#include <sstream>

#include "tools/bench/migration_crash.h"

namespace ringwatch::bench {
namespace {

namespace fs = std::filesystem;

TEST(MigrationCrashTest, TenKillNinesOfTheExamplePlanNeverRunAnActionTwiceAtOnce) {
  std::string pattern = (fs::temp_directory_path() / "ringwatch-crash-XXXXXX").string();
  ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
  CrashOptions options;
  options.dir = pattern;
  options.ringwatch = RINGWATCH_BINARY;
  options.plan = fs::path(RINGWATCH_SOURCE_DIR) / "tools/examples/lab-migration.json";
  options.kills = 10;
  const char* seed = std::getenv("RINGWATCH_CRASH_SEED");
  options.seed = seed != nullptr ? static_cast<unsigned>(std::strtoul(seed, nullptr, 10))
                                 : std::random_device{}();
  std::ostringstream log;
  options.log = &log;
  std::cout << "seed " << options.seed << " (RINGWATCH_CRASH_SEED=" << options.seed
            << " replays it)" << std::endl;

  const CrashReport report = run_crash_test(options);
  std::cout << log.str() << report.kills << " kills, " << report.interrupted_attempts
            << " interrupted attempts, " << report.actions_started << " actions started, "
            << report.operator_skips << " skips, " << report.operator_resumes << " resumes, "
            << report.duration.count() << " ms" << std::endl;
  EXPECT_EQ(report.kills, options.kills) << "the plan ended before every kill";
  EXPECT_EQ(report.final_exit, 0);
  EXPECT_EQ(report.final_status, "OK");
  EXPECT_TRUE(report.ok()) << "files kept in " << options.dir;
  for (const auto& what : report.violations) ADD_FAILURE() << what;
  if (report.ok()) fs::remove_all(options.dir);
}

}  // namespace
}  // namespace ringwatch::bench
