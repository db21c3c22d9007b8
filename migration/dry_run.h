#pragma once
// `ringwatch migrate run --dry-run`: walks a plan as the engine would start
// it, without acting. Per cluster, in plan order: whether a blackout covers
// now, then per step what would run, the verdict of its preflight (gating)
// checks and of every observe-mode check, run now against the live cluster
// (a later step's checks see the cluster as it is now, before the earlier
// steps ran), and the verify checks that would follow the action (not run:
// nothing they verify has happened). No action runs, no journal, lock,
// command or log file is written, and the state directory, when given, is
// only read (steps its journal says are done or skipped are not checked).
//
// Thread-safety: none needed; it runs on the caller's thread.

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>

#include "migration/checks.h"
#include "migration/plan.h"

namespace ringwatch::migration {

struct DryRunOptions {
  std::filesystem::path state_dir;  // empty: none; else read-only
  std::string dns_vantage;
  std::chrono::system_clock::time_point now = std::chrono::system_clock::now();
  // As EngineOptions::make_checks; unset: a CheckRunner on the cluster's spec.
  std::function<std::unique_ptr<ClusterChecks>(const ClusterPlan&)> make_checks;
};

struct DryRunResult {
  std::string text;              // what `--dry-run` prints
  int would_run = 0;             // steps that would run now
  int would_block = 0;           // blackouts and failing preflights that would pause a cluster
  int would_pause_observed = 0;  // observe-mode checks that fail now
};

// Throws JournalError for a damaged journal in options.state_dir.
DryRunResult dry_run(const Plan& plan, const DryRunOptions& options);

}  // namespace ringwatch::migration
