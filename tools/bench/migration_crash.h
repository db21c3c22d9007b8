#pragma once
// Crash safety of the migration engine, measured: `ringwatch migrate run`
// of a plan on a real lab, killed with SIGKILL at random moments spread over
// the plan's steps, started again each time, and finally run to its end; then everything the
// journal and the actions themselves recorded is checked (issue 12).
//
// Every step's command is wrapped (DIR/action-wrapper.sh) so that it appends
//   start <pid> <step> <attempt>
//   end <pid> <step> <attempt> <exit status>
// to DIR/actions.log; <pid> leads the action's process group. From that log
// and the journal, a run is correct when:
//   - no two actions ever ran at once (the plan migrates one cluster, so at
//     most one action runs at any moment, across every engine);
//   - every action that started was journaled first: its pid is the pgid of
//     an `attempt` record;
//   - no step that is not safe to re-run started twice;
//   - no step was left out: every step's command ended with status 0 at
//     least once, and the journal says every step is done or skipped;
//   - the journal passed its integrity checks after every kill;
//   - the last run exits 0 and a probe of the lab is OK on the new backends.
// A step that is not safe to re-run and was interrupted pauses the cluster
// (reason interrupted); the harness then does what an operator would: it
// reads the actions' log, and skips the step when its command had ended
// with status 0, else resumes it.
//
// The lab and every engine started are stopped before run_crash_test
// returns. Not thread-safe: one run at a time per DIR.

#include <chrono>
#include <filesystem>
#include <map>
#include <ostream>
#include <string>
#include <vector>

namespace ringwatch::bench {

struct CrashOptions {
  std::filesystem::path dir;        // working directory (created): lab/, state/, logs
  std::filesystem::path ringwatch;  // the `ringwatch` binary
  std::filesystem::path plan;       // a plan for one lab (${lab}); e.g. the example plan
  // Each kill falls in a random step but the last (the kills in plan order),
  // at a random moment from min_delay to max_delay after the migration
  // reached it.
  int kills = 10;
  std::chrono::milliseconds min_delay{0};
  std::chrono::milliseconds max_delay{2500};
  unsigned seed = 1;
  std::chrono::seconds final_timeout{300};  // for the last run, to the end
  std::ostream* log = nullptr;              // one line per kill and per operator action
};

struct CrashReport {
  int kills = 0;                       // SIGKILLs sent to a running engine
  int interrupted_attempts = 0;        // attempts a kill left open (journal)
  std::map<std::string, int> orphans;  // attempt_end.orphan: "gone", "waited", "killed"
  int actions_started = 0;             // start lines in the actions' log
  int operator_skips = 0;
  int operator_resumes = 0;
  int final_exit = -1;
  std::string final_status;  // the last probe's status ("OK", ...)
  std::chrono::milliseconds duration{0};
  std::vector<std::string> violations;  // empty: every check above held
  bool ok() const { return violations.empty(); }
};

CrashReport run_crash_test(const CrashOptions& options);

}  // namespace ringwatch::bench
