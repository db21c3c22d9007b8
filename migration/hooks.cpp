#include "migration/hooks.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <utility>

#include "lib/report/render.h"
#include "migration/action.h"

namespace ringwatch::migration {

namespace {

namespace fs = std::filesystem;

// SIGTERM to SIGKILL for a hook's group, as for an action's.
constexpr std::chrono::milliseconds kKillGrace{2000};

// The checks of a cluster, remembering the report of their last round.
class ReportKeepingChecks final : public ClusterChecks {
 public:
  ReportKeepingChecks(std::unique_ptr<ClusterChecks> inner,
                      std::shared_ptr<std::optional<report::Report>> last)
      : inner_(std::move(inner)), last_(std::move(last)) {}

  CheckRound run(const std::vector<CheckSpec>& checks) override {
    CheckRound round = inner_->run(checks);
    *last_ = round.report;
    return round;
  }

 private:
  std::unique_ptr<ClusterChecks> inner_;
  std::shared_ptr<std::optional<report::Report>> last_;
};

// `path` made absolute, or as it is when the working directory is unknown.
fs::path made_absolute(const fs::path& path) {
  std::error_code error;
  fs::path made = fs::absolute(path, error);
  return error ? path : made;
}

// The step a hook is about: the one the cluster is at, or the last one
// once it finished. -1 for a cluster without steps (never: plans have some).
int step_about(const ClusterPlan& cluster, int step) {
  const int count = static_cast<int>(cluster.steps.size());
  return step < count ? step : count - 1;
}

// "step 2 (roll-onto-b4)", counted from 1; "the end" past the last step.
std::string step_words(const ClusterPlan& cluster, int step) {
  if (step < 0 || step >= static_cast<int>(cluster.steps.size())) return "the end";
  return "step " + std::to_string(step + 1) + " (" +
         cluster.steps[static_cast<std::size_t>(step)].name + ")";
}

}  // namespace

std::optional<HookFiring> hook_firing(Phase from, const Record& written) {
  if (written.type != Record::Type::state || written.phase == from) return std::nullopt;
  HookFiring firing;
  firing.step = written.step;
  firing.detail = written.detail;
  firing.seq = written.seq;
  switch (written.phase) {
    case Phase::paused:
      firing.kind = HookKind::on_pause;
      firing.reason = to_string(written.reason);
      return firing;
    case Phase::aborted:
      firing.kind = HookKind::on_abort;
      firing.reason = "operator";
      return firing;
    case Phase::finished:
      firing.kind = HookKind::on_finish;
      firing.reason = "finished";
      return firing;
    default:
      return std::nullopt;
  }
}

std::vector<ScopedHook> hooks_for(const ClusterPlan& cluster, HookKind kind, int step) {
  std::vector<ScopedHook> hooks;
  if (step >= 0 && step < static_cast<int>(cluster.steps.size())) {
    const Hooks& own = cluster.steps[static_cast<std::size_t>(step)].hooks;
    if (const auto found = own.find(kind); found != own.end())
      hooks.push_back({"step", &found->second});
  }
  if (const auto found = cluster.hooks.find(kind); found != cluster.hooks.end())
    hooks.push_back({"plan", &found->second});
  return hooks;
}

std::string expand_hook_word(std::string_view word,
                             const std::map<std::string, std::string>& values) {
  std::string out;
  std::size_t i = 0;
  while (i < word.size()) {
    const std::size_t dollar = word.find('$', i);
    if (dollar == std::string_view::npos) {
      out.append(word.substr(i));
      break;
    }
    out.append(word.substr(i, dollar - i));
    const std::string_view after = word.substr(dollar + 1);
    if (after.starts_with('$')) {
      out += '$';
      i = dollar + 2;
      continue;
    }
    const std::size_t close = after.find('}');
    if (after.starts_with('{') && close != std::string_view::npos) {
      const auto value = values.find(std::string(after.substr(1, close - 1)));
      if (value != values.end()) {
        out += value->second;
        i = dollar + 1 + close + 1;
        continue;
      }
    }
    out += '$';
    i = dollar + 1;
  }
  return out;
}

HookRunner::HookRunner(const ClusterPlan& cluster, Context context)
    : cluster_(cluster),
      context_(std::move(context)),
      state_dir_(made_absolute(context_.state_dir).string()),
      last_report_(std::make_shared<std::optional<report::Report>>()) {}

std::unique_ptr<ClusterChecks> HookRunner::keep_reports(std::unique_ptr<ClusterChecks> checks) {
  return std::make_unique<ReportKeepingChecks>(std::move(checks), last_report_);
}

void HookRunner::run(const HookFiring& firing) {
  const std::vector<ScopedHook> hooks = hooks_for(cluster_, firing.kind, firing.step);
  if (hooks.empty()) return;
  const std::string report = write_report(firing);
  for (const ScopedHook& scoped : hooks) run_one(firing, scoped, report);
}

// STATE/hooks/<cluster>/<seq>-<hook>.json: the last round's report, or
// null. A file that cannot be written is logged; the hook runs anyway.
std::string HookRunner::write_report(const HookFiring& firing) {
  std::error_code error;
  const fs::path dir = fs::path(state_dir_) / "hooks" / cluster_.name;
  const fs::path path =
      dir / (std::to_string(firing.seq) + "-" + std::string(to_string(firing.kind)) + ".json");
  fs::create_directories(dir, error);
  std::string text = *last_report_
                         ? report::render_json(**last_report_, report::JsonLayout::compact)
                         : std::string("null");
  if (text.empty() || text.back() != '\n') text += '\n';
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (error || !out) {
    context_.log(cluster_.name + ": cannot write the report for its " + to_string(firing.kind) +
                 " hook to " + path.string() + ": " +
                 (error ? error.message() : std::string(std::strerror(errno))));
  }
  return path.string();
}

void HookRunner::run_one(const HookFiring& firing, const ScopedHook& scoped,
                         const std::string& report) {
  const int about = step_about(cluster_, firing.step);
  const std::string step_name =
      about >= 0 ? cluster_.steps[static_cast<std::size_t>(about)].name : std::string();
  const std::string kind = to_string(firing.kind);
  const std::map<std::string, std::string> values = {{"cluster", cluster_.name},
                                                     {"step", step_name},
                                                     {"step_number", std::to_string(about + 1)},
                                                     {"hook", kind},
                                                     {"reason", firing.reason},
                                                     {"detail", firing.detail},
                                                     {"report", report},
                                                     {"spec", cluster_.spec_path},
                                                     {"state_dir", state_dir_}};

  Record record;
  record.type = Record::Type::hook;
  record.cluster = cluster_.name;
  record.step = firing.step;
  record.hook = kind;
  record.scope = scoped.scope;
  record.trigger = firing.reason;
  record.report_file = report;
  if (context_.stopping && context_.stopping->load()) {
    record.outcome = to_string(ActionOutcome::cancelled);
    record.detail = "the engine stopped before it ran";
    report_outcome(firing, record);
    return;
  }

  Action action;
  for (const std::string& word : scoped.hook->argv)
    action.argv.push_back(expand_hook_word(word, values));
  action.timeout = scoped.hook->timeout;
  ActionContext context;
  context.cluster = cluster_.name;
  context.step = step_name;
  context.attempt = 0;
  context.spec_path = cluster_.spec_path;
  context.environment = {{"RINGWATCH_HOOK", kind},
                         {"RINGWATCH_REASON", firing.reason},
                         {"RINGWATCH_DETAIL", firing.detail},
                         {"RINGWATCH_REPORT", report}};
  context.log_path = context_.state_dir / "logs" / cluster_.name / "hooks.log";
  context.log_label = "cluster " + cluster_.name + " hook " + kind + " (" + scoped.scope + ") at " +
                      step_words(cluster_, firing.step);
  context.kill_grace = kKillGrace;
  const ActionResult result = run_action(action, context, context_.stopping);
  record.outcome = to_string(result.outcome);
  record.detail = result.detail;
  record.duration_ms = result.duration.count();
  report_outcome(firing, record);
}

// Journal, log, webhook: in that order, as for every transition.
void HookRunner::report_outcome(const HookFiring& firing, const Record& record) {
  context_.journal(record);
  const bool ok = record.outcome == to_string(ActionOutcome::succeeded);
  std::string line = cluster_.name + ": hook " + record.hook + " (" + record.scope + ") at " +
                     step_words(cluster_, firing.step) + " " + record.outcome;
  if (!ok) line += ": " + record.detail;
  line += " (" + std::to_string(record.duration_ms) + " ms)";
  if (!ok) line += "; the migration's state is unchanged";
  context_.log(line);
  if (context_.notifier == nullptr) return;
  Notification note;
  note.event = EventKind::hook;
  note.cluster = cluster_.name;
  const int about = step_about(cluster_, firing.step);
  if (about >= 0) note.step = cluster_.steps[static_cast<std::size_t>(about)].name;
  note.reason = firing.reason;
  note.hook = record.hook;
  note.outcome = record.outcome;
  note.detail = "hook " + record.hook + " (" + record.scope + ") " + record.outcome +
                (ok ? "" : ": " + record.detail);
  note.at = context_.now ? context_.now() : std::chrono::system_clock::now();
  context_.notifier->notify(note);
}

}  // namespace ringwatch::migration
