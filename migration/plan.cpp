#include "migration/plan.h"

#include <rapidjson/document.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <iterator>
#include <utility>

#include "lib/report/vocabulary.h"
#include "lib/spec/json_cursor.h"
#include "lib/util/text.h"

namespace ringwatch::migration {
namespace {

using spec::json::Cursor;
using spec::json::FirstSeen;
using spec::json::Value;

constexpr std::string_view kNameExpectation = "a name of 1 to 64 characters from [A-Za-z0-9._-]";
constexpr std::string_view kSpecPathExpectation = "a path to a cluster spec file";
constexpr std::string_view kUrlExpectation = "an http://host[:port][/path] URL";
constexpr std::string_view kDateExpectation = "a date like 2026-12-24 (a real calendar day)";
constexpr std::string_view kResumeExpectation = R"("auto" or "operator")";
constexpr std::string_view kProgramExpectation = "a non-empty program name";
constexpr std::string_view kBoolExpectation = "true or false";
constexpr std::string_view kDollarExpectation = "${NAME} or $$ wherever $ appears";
constexpr std::string_view kOnlyWithRun = R"(only allowed in a step with "run")";
constexpr std::string_view kModeExpectation = R"("gate" or "observe")";
constexpr std::string_view kStepApprovalExpectation = R"("before")";
constexpr std::string_view kPlanApprovalExpectation = R"("every_step")";
constexpr std::string_view kOnlyWithCanary = R"(only allowed with "check": "canary")";
constexpr std::string_view kOnFinishOnlyInPlan =
    R"(only allowed in the plan's top-level "hooks" (a cluster finishes once, after its last step))";

bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}

bool is_name(std::string_view text) {
  return !text.empty() && text.size() <= 64 && std::all_of(text.begin(), text.end(), is_name_char);
}

// As `--var` accepts them: letters, digits and _, not starting with a digit.
bool is_variable_name(std::string_view text) {
  return !text.empty() && !(text[0] >= '0' && text[0] <= '9') &&
         std::all_of(text.begin(), text.end(), [](char c) {
           return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_';
         });
}

std::optional<std::string> parse_name(std::string_view text) {
  if (!is_name(text)) return std::nullopt;
  return std::string(text);
}

std::optional<std::string> parse_non_empty(std::string_view text) {
  if (text.empty()) return std::nullopt;
  return std::string(text);
}

std::optional<std::string> parse_probe(std::string_view text) {
  const auto& known = report::checks::kAll;
  if (std::find(known.begin(), known.end(), text) == known.end()) return std::nullopt;
  return std::string(text);
}

// "canary", "connections" or "dns"
std::string probe_expectation() {
  const auto& names = report::checks::kAll;
  std::string text;
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (i > 0) text += i + 1 == names.size() ? " or " : ", ";
    text += spec::json::quoted(names[i]);
  }
  return text;
}

std::optional<ResumePolicy> parse_resume(std::string_view text) {
  for (const auto policy : {ResumePolicy::automatic, ResumePolicy::operator_only}) {
    if (text == to_string(policy)) return policy;
  }
  return std::nullopt;
}

std::optional<CheckMode> parse_mode(std::string_view text) {
  for (const auto mode : {CheckMode::gate, CheckMode::observe}) {
    if (text == to_string(mode)) return mode;
  }
  return std::nullopt;
}

std::optional<unsigned> parse_digits(std::string_view text) {
  if (text.empty() ||
      !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  unsigned value = 0;
  std::from_chars(text.data(), text.data() + text.size(), value);
  return value;
}

// "YYYY-MM-DD", a day that exists in the proleptic Gregorian calendar.
std::optional<std::string> parse_date(std::string_view text) {
  if (text.size() != 10 || text[4] != '-' || text[7] != '-') return std::nullopt;
  const auto y = parse_digits(text.substr(0, 4));
  const auto m = parse_digits(text.substr(5, 2));
  const auto d = parse_digits(text.substr(8, 2));
  if (!y || !m || !d) return std::nullopt;
  const std::chrono::year_month_day date{std::chrono::year(static_cast<int>(*y)),
                                         std::chrono::month(*m), std::chrono::day(*d)};
  if (!date.ok()) return std::nullopt;
  return std::string(text);
}

// http://host[:port][/path], as the notifier accepts it.
std::optional<std::string> parse_http_url(std::string_view text) {
  constexpr std::string_view kScheme = "http://";
  if (!text.starts_with(kScheme)) return std::nullopt;
  if (std::any_of(text.begin(), text.end(),
                  [](char c) { return static_cast<unsigned char>(c) <= ' ' || c == 0x7f; })) {
    return std::nullopt;
  }
  const std::string_view rest = text.substr(kScheme.size());
  const std::string_view authority = rest.substr(0, rest.find_first_of("/?#"));
  if (authority.find('@') != std::string_view::npos) return std::nullopt;
  std::string_view host = authority;
  std::string_view port;
  if (authority.starts_with('[')) {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    host = authority.substr(1, close - 1);
    const std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (!after.starts_with(':')) return std::nullopt;
      port = after.substr(1);
      if (port.empty()) return std::nullopt;
    }
  } else if (const auto colon = authority.rfind(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
    if (port.empty()) return std::nullopt;
  }
  if (host.empty()) return std::nullopt;
  if (!port.empty()) {
    const auto number = port.size() <= 5 ? parse_digits(port) : std::nullopt;
    if (!number || *number < 1 || *number > 65535) return std::nullopt;
  }
  return std::string(text);
}

// Shortest text that reads back as `value`: 60, 0.5, 0.05.
std::string format_number(double value) {
  char buffer[32];
  const auto result = std::to_chars(buffer, buffer + sizeof buffer, value);
  return std::string(buffer, result.ptr);
}

std::string format_seconds(std::chrono::milliseconds duration) {
  return format_number(static_cast<double>(duration.count()) / 1000) + " s";
}

// --- Variables ------------------------------------------------------------

bool is_hook_variable(std::string_view name) {
  return std::find(std::begin(kHookVariables), std::end(kHookVariables), name) !=
         std::end(kHookVariables);
}

// A hook's words are templates (plan.h): `$$` and ${hook variable} stay for
// the hook's run, and a --var value's `$` is doubled so it stays literal.
template <class MakeCursor>
std::string substitute(std::string_view text, const Vars& vars, const MakeCursor& at,
                       bool hook_template) {
  std::string out;
  std::size_t i = 0;
  while (i < text.size()) {
    const auto dollar = text.find('$', i);
    if (dollar == std::string_view::npos) {
      out.append(text.substr(i));
      break;
    }
    out.append(text.substr(i, dollar - i));
    const std::string_view after = text.substr(dollar + 1);
    if (after.starts_with('$')) {
      out += hook_template ? "$$" : "$";
      i = dollar + 2;
      continue;
    }
    const auto close = after.find('}');
    if (!after.starts_with('{') || close == std::string_view::npos ||
        !is_variable_name(after.substr(1, close - 1))) {
      at().wrong_value(kDollarExpectation);
    }
    const std::string name(after.substr(1, close - 1));
    if (hook_template && is_hook_variable(name)) {
      out.append(text.substr(dollar, close + 2));
      i = dollar + 1 + close + 1;
      continue;
    }
    const auto it = vars.find(name);
    if (it == vars.end()) {
      at().fail("undefined variable " + spec::json::quoted(name) + " (give it with --var " + name +
                "=VALUE)");
    }
    if (hook_template) {
      for (const char c : it->second) out += c == '$' ? std::string("$$") : std::string(1, c);
    } else {
      out += it->second;
    }
    i = dollar + 1 + close + 1;
  }
  return out;
}

// A word of a hook's "run": /hooks/<kind>/run/<n> at the top level or in a step.
bool is_hook_word(std::string_view pointer) {
  std::vector<std::string_view> parts;
  for (std::size_t at = 1; at <= pointer.size();) {
    const std::size_t slash = std::min(pointer.find('/', at), pointer.size());
    parts.push_back(pointer.substr(at, slash - at));
    at = slash + 1;
  }
  const std::size_t n = parts.size();
  if (n < 4 || parts[n - 4] != "hooks" || parts[n - 2] != "run") return false;
  return n == 4 || (n == 8 && parts[0] == "clusters" && parts[2] == "steps");
}

// Replaces every ${NAME} in every string value of the document, depth first
// in document order, without recursion (documents may be deeply nested).
void substitute_all(rapidjson::Document& document, const std::string& file, const Vars& vars) {
  struct Frame {
    Value* node;
    rapidjson::SizeType next;  // the child being visited is next - 1
  };
  std::vector<Frame> path;
  // The cursor of the value being visited, built from `path` only when needed
  // (in one pass: a pointer may be long).
  const auto current = [&] {
    std::string pointer;
    const Value* value = &document;
    for (const auto& frame : path) {
      const auto index = frame.next - 1;
      pointer += '/';
      if (frame.node->IsObject()) {
        const auto& member = *(frame.node->MemberBegin() + index);
        // RFC 6901 escaping, as Cursor::member does it.
        for (const char c :
             std::string_view(member.name.GetString(), member.name.GetStringLength())) {
          pointer += c == '~' ? "~0" : c == '/' ? "~1" : std::string(1, c);
        }
        value = &member.value;
      } else {
        pointer += std::to_string(index);
        value = &(*frame.node)[index];
      }
    }
    return Cursor(file, *value, std::move(pointer));
  };
  const auto visit = [&](Value& value) {
    if (value.IsString()) {
      const std::string_view text(value.GetString(), value.GetStringLength());
      if (text.find('$') == std::string_view::npos) return;
      const std::string replaced =
          substitute(text, vars, current, is_hook_word(current().pointer()));
      value.SetString(replaced.data(), static_cast<rapidjson::SizeType>(replaced.size()),
                      document.GetAllocator());
    } else if (value.IsObject() || value.IsArray()) {
      path.push_back({&value, 0});
    }
  };
  visit(document);
  while (!path.empty()) {
    Value* node = path.back().node;
    const auto count = node->IsObject() ? node->MemberCount() : node->Size();
    if (path.back().next == count) {
      path.pop_back();
      continue;
    }
    const auto index = path.back().next++;
    visit(node->IsObject() ? (node->MemberBegin() + index)->value : (*node)[index]);
  }
}

// --- Fields ---------------------------------------------------------------

std::string read_name(const Cursor& cursor) {
  return cursor.string_as(kNameExpectation, parse_name);
}

bool read_bool(const Cursor& cursor) {
  if (!cursor.value().IsBool()) cursor.wrong_type(kBoolExpectation);
  return cursor.value().GetBool();
}

std::chrono::milliseconds read_seconds(const Cursor& cursor, double min, double max) {
  const double seconds = cursor.number(
      min, max, "a number of seconds from " + format_number(min) + " to " + format_number(max));
  return std::chrono::milliseconds(static_cast<std::int64_t>(std::llround(seconds * 1000)));
}

CheckSpec read_check(const Cursor& cursor) {
  const auto fields = cursor.object(
      {"check", "mode", "allow_warning", "min_consistency_ratio", "backends", "absent_backends"});
  CheckSpec check;
  check.probe = fields.required("check").string_as(probe_expectation(), parse_probe);
  if (const auto c = fields.optional("mode"))
    check.mode = c->string_as(kModeExpectation, parse_mode);
  if (const auto c = fields.optional("allow_warning")) check.allow_warning = read_bool(*c);
  if (const auto c = fields.optional("min_consistency_ratio")) {
    if (check.probe != report::checks::kCanary) c->fail(std::string(kOnlyWithCanary));
    check.min_consistency_ratio = c->number(0, 1, "a number from 0 to 1");
  }
  // One name in both lists would be a check that can never pass.
  FirstSeen backends("backend name");
  const auto read_backends = [&](std::string_view field, std::vector<std::string>& out) {
    if (const auto c = fields.optional(field)) {
      for (const auto& item : c->elements(false)) {
        out.push_back(read_name(item));
        backends.add(item, out.back());
      }
    }
  };
  read_backends("backends", check.backends);
  read_backends("absent_backends", check.absent_backends);
  return check;
}

std::vector<CheckSpec> read_checks(const Cursor& cursor) {
  std::vector<CheckSpec> checks;
  for (const auto& item : cursor.elements(true)) checks.push_back(read_check(item));
  return checks;
}

std::vector<std::string> read_command(const Cursor& cursor) {
  std::vector<std::string> argv;
  for (const auto& item : cursor.elements(true)) {
    argv.push_back(argv.empty() ? item.string_as(kProgramExpectation, parse_non_empty)
                                : std::string(item.string()));
  }
  return argv;
}

Hook read_hook(const Cursor& cursor) {
  const auto fields = cursor.object({"run", "timeout"});
  Hook hook;
  hook.argv = read_command(fields.required("run"));
  if (const auto c = fields.optional("timeout")) hook.timeout = read_seconds(*c, 0.1, 3600);
  return hook;
}

// A "hooks" object: of the plan (every kind), or of a step (no on_finish;
// on_failure only with "run", the only thing that can fail).
Hooks read_hooks(const Cursor& cursor, bool in_step, bool step_runs) {
  const auto fields = cursor.object({"on_failure", "on_pause", "on_abort", "on_finish"});
  Hooks hooks;
  for (const HookKind kind : kHookKinds) {
    const auto c = fields.optional(to_string(kind));
    if (!c) continue;
    if (in_step && kind == HookKind::on_finish) c->fail(std::string(kOnFinishOnlyInPlan));
    if (in_step && kind == HookKind::on_failure && !step_runs) c->fail(std::string(kOnlyWithRun));
    hooks[kind] = read_hook(*c);
  }
  return hooks;
}

Step read_step(const Cursor& cursor, FirstSeen& names) {
  const auto fields = cursor.object({"name", "run", "timeout", "retries", "backoff",
                                     "safe_to_rerun", "approval", "preflight", "verify", "hooks"});
  Step step;
  const auto name = fields.required("name");
  step.name = read_name(name);
  names.add(name, step.name);

  const auto run = fields.optional("run");
  if (run) step.action.argv = read_command(*run);
  const auto with_run = [&](std::string_view field) {
    auto c = fields.optional(field);
    if (c && !run) c->fail(std::string(kOnlyWithRun));
    return c;
  };
  if (const auto c = with_run("timeout")) step.action.timeout = read_seconds(*c, 0.1, 86400);
  if (const auto c = with_run("retries"))
    step.action.retries = static_cast<int>(c->integer(0, 100));
  if (const auto c = with_run("backoff")) step.action.backoff = read_seconds(*c, 0, 3600);
  if (const auto c = with_run("safe_to_rerun")) step.safe_to_rerun = read_bool(*c);

  if (const auto c = fields.optional("approval")) {
    c->string_as(kStepApprovalExpectation, [](std::string_view text) {
      return text == "before" ? std::optional<bool>(true) : std::nullopt;
    });
    step.approval = true;
  }
  const auto preflight = fields.optional("preflight");
  if (preflight) step.preflight = read_checks(*preflight);
  const auto verify = fields.optional("verify");
  if (verify) {
    const auto verify_fields = verify->object({"checks", "deadline", "interval"});
    step.verify.checks = read_checks(verify_fields.required("checks"));
    if (const auto c = verify_fields.optional("deadline")) {
      step.verify.deadline = read_seconds(*c, 0, 86400);
    }
    if (const auto c = verify_fields.optional("interval")) {
      step.verify.interval = read_seconds(*c, 0.05, 3600);
    }
  }
  if (const auto c = fields.optional("hooks")) step.hooks = read_hooks(*c, true, run.has_value());
  if (!run && !preflight && !verify) {
    cursor.fail(R"(expected at least one of "run", "preflight" and "verify", got none)");
  }
  return step;
}

ClusterPlan read_cluster(const Cursor& cursor, FirstSeen& names,
                         const std::filesystem::path& base) {
  const auto fields =
      cursor.object({"name", "spec", "resume", "resume_after_rounds", "recheck_interval", "steps"});
  ClusterPlan cluster;
  const auto name = fields.required("name");
  cluster.name = read_name(name);
  names.add(name, cluster.name);

  const std::filesystem::path path(
      fields.required("spec").string_as(kSpecPathExpectation, parse_non_empty));
  cluster.spec_path = path.is_relative() ? (base / path).string() : path.string();

  if (const auto c = fields.optional("resume")) {
    cluster.resume = c->string_as(kResumeExpectation, parse_resume);
  }
  if (const auto c = fields.optional("resume_after_rounds")) {
    cluster.resume_after_rounds = static_cast<int>(c->integer(1, 1000));
  }
  if (const auto c = fields.optional("recheck_interval")) {
    cluster.recheck_interval = read_seconds(*c, 0.05, 3600);
  }
  FirstSeen step_names("step name");
  for (const auto& item : fields.required("steps").elements(true)) {
    cluster.steps.push_back(read_step(item, step_names));
  }
  return cluster;
}

Blackout read_blackout(const Cursor& cursor) {
  static constexpr std::string_view kKinds[] = {"last_days_of_month", "first_days_of_month",
                                                "dates", "hours"};
  const auto fields = cursor.object({kKinds[0], kKinds[1], kKinds[2], kKinds[3]});
  std::vector<std::string_view> given;
  for (const auto kind : kKinds) {
    if (fields.optional(kind)) given.push_back(kind);
  }
  if (given.size() != 1) {
    std::string got;
    for (std::size_t i = 0; i < given.size(); ++i) {
      got += (i == 0 ? "" : i + 1 == given.size() ? " and " : ", ") + spec::json::quoted(given[i]);
    }
    cursor.fail(
        R"(expected exactly one of "last_days_of_month", "first_days_of_month", "dates" and "hours", got )" +
        (given.empty() ? std::string("none") : got));
  }

  Blackout blackout;
  const auto value = fields.required(given[0]);
  if (given[0] == kKinds[0] || given[0] == kKinds[1]) {
    blackout.kind = given[0] == kKinds[0] ? Blackout::Kind::last_days_of_month
                                          : Blackout::Kind::first_days_of_month;
    blackout.days = static_cast<int>(value.integer(1, 15));
  } else if (given[0] == kKinds[2]) {
    blackout.kind = Blackout::Kind::dates;
    for (const auto& item : value.elements(true)) {
      blackout.dates.push_back(item.string_as(kDateExpectation, parse_date));
    }
  } else {
    blackout.kind = Blackout::Kind::hours;
    const auto hours = value.object({"from", "to"});
    blackout.from_hour = static_cast<int>(hours.required("from").integer(0, 23));
    const auto to = hours.required("to");
    blackout.to_hour = static_cast<int>(to.integer(1, 24));
    if (blackout.to_hour == blackout.from_hour) {
      to.wrong_value(R"(an hour other than "from" (the window would be empty))");
    }
  }
  return blackout;
}

Schedule read_schedule(const Cursor& cursor) {
  const auto fields = cursor.object({"max_parallel_clusters", "blackouts"});
  Schedule schedule;
  if (const auto c = fields.optional("max_parallel_clusters")) {
    schedule.max_parallel_clusters = static_cast<int>(c->integer(1, 1000));
  }
  if (const auto c = fields.optional("blackouts")) {
    for (const auto& item : c->elements(false)) schedule.blackouts.push_back(read_blackout(item));
  }
  return schedule;
}

Notifications read_notifications(const Cursor& cursor) {
  const auto fields = cursor.object({"webhook", "alertmanager"});
  Notifications notifications;
  if (const auto c = fields.optional("webhook")) {
    notifications.webhook_url = c->string_as(kUrlExpectation, parse_http_url);
  }
  if (const auto c = fields.optional("alertmanager")) {
    notifications.alertmanager_url = c->string_as(kUrlExpectation, parse_http_url);
  }
  return notifications;
}

// --- Describing -----------------------------------------------------------

// One argv word as a shell would need it, so the line can be pasted.
std::string shell_word(const std::string& word) {
  const bool plain = !word.empty() && std::all_of(word.begin(), word.end(), [](char c) {
    return is_name_char(c) || c == '/' || c == ':' || c == '=' || c == ',' || c == '@' ||
           c == '%' || c == '+';
  });
  if (plain) return word;
  std::string out = "'";
  for (const char c : word) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string check_text(const CheckSpec& check) {
  std::vector<std::string> details;
  if (check.min_consistency_ratio) {
    details.push_back("consistency >= " + format_number(*check.min_consistency_ratio));
  }
  if (check.allow_warning) details.push_back("warnings allowed");
  if (check.mode == CheckMode::observe) details.push_back("observe only");
  if (!check.backends.empty()) {
    details.push_back("backends " + util::join(check.backends));
  }
  if (!check.absent_backends.empty()) {
    details.push_back("without backends " + util::join(check.absent_backends));
  }
  std::string out = check.probe;
  if (!details.empty()) {
    out += " (";
    for (std::size_t i = 0; i < details.size(); ++i) out += (i == 0 ? "" : "; ") + details[i];
    out += ")";
  }
  return out;
}

std::string describe_checks(const std::vector<CheckSpec>& checks) {
  std::string out;
  for (const auto& check : checks) out += (out.empty() ? "" : ", ") + check_text(check);
  return out;
}

std::string describe_action(const Step& step) {
  const auto& action = step.action;
  if (action.argv.empty()) return "checks only";
  std::string command;
  for (const auto& word : action.argv) command += (command.empty() ? "" : " ") + shell_word(word);
  std::string out = "run `" + command + "` (timeout " + format_seconds(action.timeout);
  if (action.retries > 0) {
    out += ", " + util::plural(static_cast<std::size_t>(action.retries), "retry", "retries");
    out += ", backoff " + format_seconds(action.backoff);
  }
  if (step.safe_to_rerun) out += ", safe to re-run";
  return out + ")";
}

std::string describe_hooks(const Hooks& hooks) {
  std::string out;
  for (const auto& [kind, hook] : hooks) {
    std::string command;
    for (const auto& word : hook.argv) command += (command.empty() ? "" : " ") + shell_word(word);
    out += (out.empty() ? "" : "; ") + std::string(to_string(kind)) + ": `" + command +
           "` (timeout " + format_seconds(hook.timeout) + ")";
  }
  return out;
}

std::string two_digits(int value) {
  char buffer[8];
  std::snprintf(buffer, sizeof buffer, "%02d", value);
  return buffer;
}

}  // namespace

const char* to_string(CheckMode mode) {
  return mode == CheckMode::observe ? "observe" : "gate";
}

std::vector<CheckSpec> checks_in_mode(const std::vector<CheckSpec>& checks, CheckMode mode) {
  std::vector<CheckSpec> out;
  std::copy_if(checks.begin(), checks.end(), std::back_inserter(out),
               [mode](const CheckSpec& check) { return check.mode == mode; });
  return out;
}

std::string describe_check(const CheckSpec& check) {
  return check_text(check);
}

const char* to_string(HookKind kind) {
  switch (kind) {
    case HookKind::on_failure:
      return "on_failure";
    case HookKind::on_pause:
      return "on_pause";
    case HookKind::on_abort:
      return "on_abort";
    case HookKind::on_finish:
      return "on_finish";
  }
  return "on_failure";
}

const char* to_string(ResumePolicy policy) {
  switch (policy) {
    case ResumePolicy::automatic:
      return "auto";
    case ResumePolicy::operator_only:
      return "operator";
  }
  return "unknown";
}

bool Blackout::covers(std::chrono::system_clock::time_point when) const {
  const auto day_start = std::chrono::floor<std::chrono::days>(when);
  const std::chrono::year_month_day date{day_start};
  const auto day_of_month = static_cast<int>(static_cast<unsigned>(date.day()));
  switch (kind) {
    case Kind::last_days_of_month: {
      const std::chrono::year_month_day_last last{date.year(),
                                                  std::chrono::month_day_last{date.month()}};
      return day_of_month + days > static_cast<int>(static_cast<unsigned>(last.day()));
    }
    case Kind::first_days_of_month:
      return day_of_month <= days;
    case Kind::dates: {
      char buffer[16];
      std::snprintf(buffer, sizeof buffer, "%04d-%02u-%02u", static_cast<int>(date.year()),
                    static_cast<unsigned>(date.month()), static_cast<unsigned>(date.day()));
      return std::find(dates.begin(), dates.end(), buffer) != dates.end();
    }
    case Kind::hours: {
      const auto hour =
          static_cast<int>(std::chrono::floor<std::chrono::hours>(when - day_start).count());
      if (from_hour < to_hour) return from_hour <= hour && hour < to_hour;
      return hour >= from_hour || hour < to_hour;
    }
  }
  return false;
}

std::string Blackout::describe() const {
  switch (kind) {
    case Kind::last_days_of_month:
      return "the last " + util::plural(static_cast<std::size_t>(days), "day", "days") +
             " of each month";
    case Kind::first_days_of_month:
      return "the first " + util::plural(static_cast<std::size_t>(days), "day", "days") +
             " of each month";
    case Kind::dates:
      return util::join(dates);
    case Kind::hours:
      return "every day " + two_digits(from_hour) + ":00-" + two_digits(to_hour) + ":00 UTC";
  }
  return "";
}

const Blackout* Schedule::blackout_at(std::chrono::system_clock::time_point when) const {
  const auto it = std::find_if(blackouts.begin(), blackouts.end(),
                               [&](const Blackout& b) { return b.covers(when); });
  return it == blackouts.end() ? nullptr : &*it;
}

const ClusterPlan* Plan::find_cluster(std::string_view name) const {
  const auto it = std::find_if(clusters.begin(), clusters.end(),
                               [&](const ClusterPlan& c) { return c.name == name; });
  return it == clusters.end() ? nullptr : &*it;
}

Plan parse_plan(std::string_view json_text, const std::string& source_name, const Vars& vars) {
  rapidjson::Document document;
  spec::json::parse_document(document, json_text, source_name);
  substitute_all(document, source_name, vars);

  const Cursor root(source_name, document, "");
  const auto fields =
      root.object({"schedule", "notifications", "preflight", "approval", "hooks", "clusters"});
  Plan plan;
  plan.source = source_name;
  if (const auto c = fields.optional("schedule")) plan.schedule = read_schedule(*c);
  if (const auto c = fields.optional("notifications")) plan.notifications = read_notifications(*c);
  if (const auto c = fields.optional("preflight")) plan.preflight = read_checks(*c);
  if (const auto c = fields.optional("approval")) {
    c->string_as(kPlanApprovalExpectation, [](std::string_view text) {
      return text == "every_step" ? std::optional<bool>(true) : std::nullopt;
    });
    plan.approve_every_step = true;
  }
  if (const auto c = fields.optional("hooks")) plan.hooks = read_hooks(*c, false, false);
  const auto base = std::filesystem::path(source_name).parent_path();
  FirstSeen names("cluster name");
  for (const auto& item : fields.required("clusters").elements(true)) {
    plan.clusters.push_back(read_cluster(item, names, base));
    plan.clusters.back().preflight = plan.preflight;
    plan.clusters.back().hooks = plan.hooks;
    for (auto& step : plan.clusters.back().steps) step.approval |= plan.approve_every_step;
  }
  // The plan itself is checked before any spec file is read.
  for (auto& cluster : plan.clusters) cluster.spec = spec::load_cluster_spec(cluster.spec_path);
  return plan;
}

Plan load_plan(const std::string& path, const Vars& vars) {
  return parse_plan(spec::json::read_file(path), path, vars);
}

std::string describe_plan(const Plan& plan, std::chrono::system_clock::time_point now) {
  std::string out = "plan " + plan.source + ": " +
                    util::plural(plan.clusters.size(), "cluster", "clusters") + ", at most " +
                    std::to_string(plan.schedule.max_parallel_clusters) + " at once\n";

  if (plan.schedule.blackouts.empty()) {
    out += "blackout windows: none\n";
  } else {
    out += "blackout windows (UTC): ";
    for (std::size_t i = 0; i < plan.schedule.blackouts.size(); ++i) {
      const auto& blackout = plan.schedule.blackouts[i];
      out += (i == 0 ? "" : "; ") + blackout.describe();
      if (blackout.covers(now)) out += " (covers now)";
    }
    out += "\n";
  }

  const auto& notifications = plan.notifications;
  std::string destinations;
  if (!notifications.webhook_url.empty()) destinations = "webhook " + notifications.webhook_url;
  if (!notifications.alertmanager_url.empty()) {
    destinations += (destinations.empty() ? "" : ", ") + std::string("alertmanager ") +
                    notifications.alertmanager_url;
  }
  out += "notifications: " + (destinations.empty() ? std::string("none") : destinations) + "\n";
  if (!plan.preflight.empty()) {
    out += "before each cluster's first step: preflight: " + describe_checks(plan.preflight) + "\n";
  }
  if (!plan.hooks.empty()) out += "hooks of every cluster: " + describe_hooks(plan.hooks) + "\n";

  for (const auto& cluster : plan.clusters) {
    out += "cluster " + cluster.name + " (spec " + cluster.spec_path + ", " +
           util::plural(cluster.spec.proxies.size(), "proxy", "proxies") + ", " +
           util::plural(cluster.spec.backends.size(), "backend", "backends") + "; ";
    if (cluster.resume == ResumePolicy::automatic) {
      out += "resumes automatically after " +
             util::plural(static_cast<std::size_t>(cluster.resume_after_rounds), "passing re-check",
                          "passing re-checks") +
             " every " + format_seconds(cluster.recheck_interval) + ")\n";
    } else {
      out += "waits for an operator to resume; re-checks every " +
             format_seconds(cluster.recheck_interval) + ")\n";
    }
    for (std::size_t i = 0; i < cluster.steps.size(); ++i) {
      const auto& step = cluster.steps[i];
      const std::string number = std::to_string(i + 1) + ". ";
      const std::string indent(2 + number.size(), ' ');
      out += "  " + number + step.name + ": " + describe_action(step) + "\n";
      if (step.approval) out += indent + "approval: an operator approves it before its preflight\n";
      if (!step.preflight.empty()) {
        out += indent + "preflight: " + describe_checks(step.preflight) + "\n";
      }
      if (!step.verify.checks.empty()) {
        out += indent + "verify: " + describe_checks(step.verify.checks) + " (within " +
               format_seconds(step.verify.deadline) + ", every " +
               format_seconds(step.verify.interval) + ")\n";
      }
      if (!step.hooks.empty()) out += indent + "hooks: " + describe_hooks(step.hooks) + "\n";
    }
  }
  return out;
}

}  // namespace ringwatch::migration
