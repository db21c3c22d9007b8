#include "migration/dry_run.h"

#include <optional>

#include "lib/util/time.h"
#include "migration/journal.h"

namespace ringwatch::migration {

namespace {

// "`sh -c 'echo hi'`" for an action; "checks only" without one.
std::string what_runs(const Step& step) {
  if (step.action.argv.empty()) return "checks only (no command)";
  std::string command;
  for (const auto& word : step.action.argv) command += (command.empty() ? "" : " ") + word;
  return "would run `" + command + "`";
}

std::string names_of(const std::vector<CheckSpec>& checks) {
  std::string out;
  for (const auto& check : checks) out += (out.empty() ? "" : ", ") + describe_check(check);
  return out;
}

class ClusterWalk {
 public:
  ClusterWalk(const ClusterPlan& cluster, const ClusterProgress* journaled, ClusterChecks& checks,
              DryRunResult& result)
      : cluster_(cluster), journaled_(journaled), checks_(checks), result_(result) {}

  void walk() {
    for (std::size_t i = 0; i < cluster_.steps.size(); ++i) step(static_cast<int>(i));
  }

 private:
  void step(int index) {
    const Step& step = cluster_.steps[static_cast<std::size_t>(index)];
    std::string& out = result_.text;
    out += "  " + std::to_string(index + 1) + ". " + step.name + ": ";
    if (const std::string done = journaled_outcome(index); !done.empty()) {
      out += done + " in the journal; not checked\n";
      return;
    }
    out += what_runs(step) + "\n";
    ++result_.would_run;
    std::vector<CheckSpec> before = index == 0 ? cluster_.preflight : std::vector<CheckSpec>{};
    before.insert(before.end(), step.preflight.begin(), step.preflight.end());
    preflight(checks_in_mode(before, CheckMode::gate));
    observe(checks_in_mode(before, CheckMode::observe), "preflight");
    observe(checks_in_mode(step.verify.checks, CheckMode::observe), "verify");
    const auto verify = checks_in_mode(step.verify.checks, CheckMode::gate);
    if (!verify.empty()) {
      out += "     verify after the action (not run now): " + names_of(verify) + "\n";
    }
  }

  std::string journaled_outcome(int index) const {
    if (!journaled_) return {};
    switch (journaled_->steps.at(static_cast<std::size_t>(index)).outcome) {
      case StepProgress::Outcome::done:
        return "done";
      case StepProgress::Outcome::skipped:
        return "skipped";
      case StepProgress::Outcome::open:
        break;
    }
    return {};
  }

  void preflight(const std::vector<CheckSpec>& gates) {
    if (gates.empty()) return;
    const CheckRound round = checks_.run(gates);
    result_.text += "     preflight " + names_of(gates) + ": ";
    if (round.passed) {
      result_.text += "passes now\n";
      return;
    }
    ++result_.would_block;
    result_.text += "WOULD BLOCK (the cluster would pause): " + round.failures + "\n";
  }

  void observe(const std::vector<CheckSpec>& observed, const char* where) {
    for (const CheckSpec& check : observed) {
      const CheckRound round = checks_.run({check});
      result_.text += std::string("     observe (") + where + ") " + describe_check(check) + ": ";
      if (round.passed) {
        result_.text += "passes now\n";
      } else {
        ++result_.would_pause_observed;
        result_.text += "would pause if it gated: " + round.failures + "\n";
      }
    }
  }

  const ClusterPlan& cluster_;
  const ClusterProgress* journaled_;
  ClusterChecks& checks_;
  DryRunResult& result_;
};

}  // namespace

DryRunResult dry_run(const Plan& plan, const DryRunOptions& options) {
  std::optional<JournalState> journal;
  if (!options.state_dir.empty()) {
    const auto records = read_journal(options.state_dir);  // read-only; empty without one
    if (!records.empty()) journal = replay(records);
  }
  DryRunResult result;
  result.text = "dry run of plan " + plan.source + " at " + util::format_rfc3339_ms(options.now) +
                ": no action runs, no journal is written\n";
  const Blackout* blackout = plan.schedule.blackout_at(options.now);
  for (const ClusterPlan& cluster : plan.clusters) {
    result.text += "cluster " + cluster.name + " (" + std::to_string(cluster.steps.size()) +
                   " steps, spec " + cluster.spec_path + ")\n";
    if (blackout) {
      ++result.would_block;
      result.text += "  WOULD BLOCK: blackout window " + blackout->describe() +
                     " covers now; no step would start\n";
    }
    const ClusterProgress* journaled = journal ? journal->find(cluster.name) : nullptr;
    std::unique_ptr<ClusterChecks> checks =
        options.make_checks ? options.make_checks(cluster)
                            : std::make_unique<CheckRunner>(cluster.spec_path, options.dns_vantage);
    ClusterWalk(cluster, journaled, *checks, result).walk();
  }
  result.text += "dry run: " + std::to_string(result.would_run) + " step" +
                 (result.would_run == 1 ? "" : "s") + " would run; " +
                 std::to_string(result.would_block) + " would block; " +
                 std::to_string(result.would_pause_observed) + " observe-mode check" +
                 (result.would_pause_observed == 1 ? "" : "s") + " would pause if they gated\n";
  return result;
}

}  // namespace ringwatch::migration
