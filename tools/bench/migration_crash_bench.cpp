// The migration engine under kill -9, at length (tools/bench/migration_crash.h):
// ROUNDS times, the example plan on a fresh lab with KILLS kill -9s of
// `ringwatch migrate run` at random moments, then run to its end; prints per
// round what the kills hit and what the checks found, and a total. The
// CTest version (tests/migration/migration_crash_test.cpp) does one round of
// 10 kills.
//
// Usage: migration_crash_bench [rounds] [kills] [seed]
//   (defaults 5, 30, and a seed from the clock; each round uses seed + round)

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <string>

#include "tools/bench/migration_crash.h"

int main(int argc, char** argv) {
  using namespace ringwatch;
  const int rounds = argc > 1 ? std::atoi(argv[1]) : 5;
  const int kills = argc > 2 ? std::atoi(argv[2]) : 30;
  const unsigned seed =
      argc > 3 ? static_cast<unsigned>(std::strtoul(argv[3], nullptr, 10))
               : static_cast<unsigned>(std::chrono::system_clock::now().time_since_epoch().count());
  std::string pattern =
      (std::filesystem::temp_directory_path() / "ringwatch-crash-bench-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) return 3;
  const std::filesystem::path root = pattern;

  std::printf("migration crash bench: %d rounds of %d kill -9s, seed %u\n", rounds, kills, seed);
  int total_kills = 0, interrupted = 0, violations = 0, failed_rounds = 0;
  std::map<std::string, int> orphans;
  for (int round = 0; round < rounds; ++round) {
    bench::CrashOptions options;
    options.dir = root / ("round-" + std::to_string(round));
    options.ringwatch = RINGWATCH_BINARY;
    options.plan =
        std::filesystem::path(RINGWATCH_SOURCE_DIR) / "tools/examples/lab-migration.json";
    options.kills = kills;
    options.seed = seed + static_cast<unsigned>(round);
    const bench::CrashReport report = bench::run_crash_test(options);
    std::printf(
        "round %d (seed %u): %d kills, %d interrupted attempts (gone %d, waited %d, killed %d), "
        "%d actions started, operator %d skips %d resumes, last run exit %d, probe %s, %.1f s, "
        "%zu violations\n",
        round, options.seed, report.kills, report.interrupted_attempts,
        report.orphans.count("gone") ? report.orphans.at("gone") : 0,
        report.orphans.count("waited") ? report.orphans.at("waited") : 0,
        report.orphans.count("killed") ? report.orphans.at("killed") : 0, report.actions_started,
        report.operator_skips, report.operator_resumes, report.final_exit,
        report.final_status.c_str(), static_cast<double>(report.duration.count()) / 1000,
        report.violations.size());
    for (const auto& what : report.violations) std::printf("  VIOLATION: %s\n", what.c_str());
    total_kills += report.kills;
    interrupted += report.interrupted_attempts;
    violations += static_cast<int>(report.violations.size());
    failed_rounds += !report.ok();
    for (const auto& [kind, count] : report.orphans) orphans[kind] += count;
    if (report.ok()) std::filesystem::remove_all(options.dir);
  }
  std::printf(
      "total: %d kills, %d interrupted attempts (gone %d, waited %d, killed %d), %d violations "
      "in %d of %d rounds\n",
      total_kills, interrupted, orphans["gone"], orphans["waited"], orphans["killed"], violations,
      failed_rounds, rounds);
  if (failed_rounds == 0)
    std::filesystem::remove_all(root);
  else
    std::printf("the failed rounds' files are in %s\n", root.c_str());
  return failed_rounds == 0 ? 0 : 1;
}
