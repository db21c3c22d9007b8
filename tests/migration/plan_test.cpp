#include "migration/plan.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "tests/support/json_patch.h"

namespace ringwatch::migration {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;
using std::chrono::sys_days;
using std::chrono::system_clock;

// Two proxies, three backends.
constexpr char kClusterSpec[] = R"({
  "name": "lab",
  "proxies": [
    {"name": "p1", "kind": "twemproxy", "client": "127.10.1.1:22121"},
    {"name": "p2", "kind": "twemproxy", "client": "127.10.1.2:22121"}
  ],
  "backends": [
    {"name": "b1", "address": "127.10.0.11", "port": 11211, "dns_name": "b1.lab.test",
     "expected_cidr": "127.10.0.0/16"},
    {"name": "b2", "address": "127.10.0.12", "port": 11211, "dns_name": "b2.lab.test",
     "expected_cidr": "127.10.0.0/16"},
    {"name": "b3", "address": "127.10.0.13", "port": 11211, "dns_name": "b3.lab.test",
     "expected_cidr": "127.10.0.0/16"}
  ]
})";

constexpr char kBadClusterSpec[] = R"({
  "name": "bad",
  "proxies": [{"name": "p1", "kind": "twemproxy", "client": "127.10.1.1:22121"}],
  "backends": [{"name": "b1", "address": "127.10.0.11", "port": 70000, "dns_name": "b1.lab.test",
                "expected_cidr": "127.10.0.0/16"}]
})";

// Every field set to something other than its default.
constexpr char kPlan[] = R"({
  "schedule": {
    "max_parallel_clusters": 2,
    "blackouts": [
      {"last_days_of_month": 2},
      {"first_days_of_month": 1},
      {"dates": ["2026-12-24", "2026-12-31"]},
      {"hours": {"from": 22, "to": 6}}
    ]
  },
  "notifications": {"webhook": "http://127.0.0.1:8080/hook", "alertmanager": "http://[::1]:9093"},
  "clusters": [
    {
      "name": "lab",
      "spec": "${dir}/cluster.json",
      "resume": "operator",
      "resume_after_rounds": 5,
      "recheck_interval": 0.5,
      "steps": [
        {
          "name": "add-b4",
          "run": ["ringwatch", "lab", "add-backend", "--name", "b4"],
          "timeout": 90,
          "retries": 2,
          "backoff": 1.5,
          "safe_to_rerun": true,
          "preflight": [
            {"check": "canary", "min_consistency_ratio": 0.99},
            {"check": "dns", "allow_warning": true, "backends": ["b1", "b2"]}
          ],
          "verify": {
            "checks": [{"check": "connections", "backends": ["b4"], "absent_backends": ["b3"]}],
            "deadline": 45,
            "interval": 0.25
          }
        },
        {"name": "settle", "verify": {"checks": [{"check": "canary"}]}}
      ]
    },
    {"name": "edge", "spec": "${dir}/cluster.json", "steps": [{"name": "drain", "run": ["/bin/true"]}]}
  ]
})";

using Patch = testing::JsonPatch;

// One edit to kPlan: set the value at a JSON pointer, or erase it.
std::string patched(const std::vector<Patch>& patches) {
  return testing::patched_json(kPlan, patches);
}

Blackout month_days(Blackout::Kind kind, int days) {
  Blackout blackout;
  blackout.kind = kind;
  blackout.days = days;
  return blackout;
}

Blackout on_dates(std::vector<std::string> dates) {
  Blackout blackout;
  blackout.kind = Blackout::Kind::dates;
  blackout.dates = std::move(dates);
  return blackout;
}

Blackout hour_window(int from, int to) {
  Blackout blackout;
  blackout.kind = Blackout::Kind::hours;
  blackout.from_hour = from;
  blackout.to_hour = to;
  return blackout;
}

CheckSpec bare_check(const std::string& probe) {
  CheckSpec check;
  check.probe = probe;
  return check;
}

system_clock::time_point at(int y, unsigned m, unsigned d, int h = 0, int min = 0, int s = 0) {
  return sys_days{std::chrono::year(y) / std::chrono::month(m) / std::chrono::day(d)} + hours(h) +
         minutes(min) + seconds(s);
}

class PlanTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "ringwatch-plan-test-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    write("cluster.json", kClusterSpec);
    write("bad.json", kBadClusterSpec);
    vars_ = {{"dir", dir_}};
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  void write(const std::string& name, const std::string& text) {
    std::filesystem::create_directories((std::filesystem::path(dir_) / name).parent_path());
    std::ofstream(std::filesystem::path(dir_) / name) << text;
  }

  Plan parse(const std::string& text) { return parse_plan(text, "plan.json", vars_); }

  // The message parse_plan throws for `text`, or "(accepted)".
  std::string error_of(const std::string& text) {
    try {
      parse(text);
    } catch (const spec::SpecError& e) {
      return e.what();
    }
    return "(accepted)";
  }

  std::string error_of(const std::vector<Patch>& patches) { return error_of(patched(patches)); }

  std::string dir_;
  Vars vars_;
};

TEST_F(PlanTest, ParsesEveryField) {
  const auto plan = parse(kPlan);
  EXPECT_EQ(plan.source, "plan.json");
  EXPECT_EQ(plan.schedule.max_parallel_clusters, 2);
  ASSERT_EQ(plan.schedule.blackouts.size(), 4u);
  const auto& blackouts = plan.schedule.blackouts;
  EXPECT_EQ(blackouts[0].kind, Blackout::Kind::last_days_of_month);
  EXPECT_EQ(blackouts[0].days, 2);
  EXPECT_EQ(blackouts[1].kind, Blackout::Kind::first_days_of_month);
  EXPECT_EQ(blackouts[1].days, 1);
  EXPECT_EQ(blackouts[2].kind, Blackout::Kind::dates);
  EXPECT_EQ(blackouts[2].dates, (std::vector<std::string>{"2026-12-24", "2026-12-31"}));
  EXPECT_EQ(blackouts[3].kind, Blackout::Kind::hours);
  EXPECT_EQ(blackouts[3].from_hour, 22);
  EXPECT_EQ(blackouts[3].to_hour, 6);
  EXPECT_EQ(plan.notifications.webhook_url, "http://127.0.0.1:8080/hook");
  EXPECT_EQ(plan.notifications.alertmanager_url, "http://[::1]:9093");

  ASSERT_EQ(plan.clusters.size(), 2u);
  const auto& lab = plan.clusters[0];
  EXPECT_EQ(lab.name, "lab");
  EXPECT_EQ(lab.spec_path, dir_ + "/cluster.json");
  EXPECT_EQ(lab.spec, spec::load_cluster_spec(dir_ + "/cluster.json"));
  EXPECT_EQ(lab.spec.backends.size(), 3u);
  EXPECT_EQ(lab.resume, ResumePolicy::operator_only);
  EXPECT_EQ(lab.resume_after_rounds, 5);
  EXPECT_EQ(lab.recheck_interval, milliseconds(500));
  ASSERT_EQ(lab.steps.size(), 2u);

  const auto& add = lab.steps[0];
  EXPECT_EQ(add.name, "add-b4");
  EXPECT_EQ(add.action.argv,
            (std::vector<std::string>{"ringwatch", "lab", "add-backend", "--name", "b4"}));
  EXPECT_EQ(add.action.timeout, milliseconds(90000));
  EXPECT_EQ(add.action.retries, 2);
  EXPECT_EQ(add.action.backoff, milliseconds(1500));
  EXPECT_TRUE(add.safe_to_rerun);
  ASSERT_EQ(add.preflight.size(), 2u);
  EXPECT_EQ(add.preflight[0].probe, "canary");
  EXPECT_FALSE(add.preflight[0].allow_warning);
  EXPECT_EQ(add.preflight[0].min_consistency_ratio, 0.99);
  EXPECT_TRUE(add.preflight[0].backends.empty());
  EXPECT_EQ(add.preflight[1].probe, "dns");
  EXPECT_TRUE(add.preflight[1].allow_warning);
  EXPECT_EQ(add.preflight[1].min_consistency_ratio, std::nullopt);
  EXPECT_EQ(add.preflight[1].backends, (std::vector<std::string>{"b1", "b2"}));
  ASSERT_EQ(add.verify.checks.size(), 1u);
  EXPECT_EQ(add.verify.checks[0].probe, "connections");
  EXPECT_EQ(add.verify.checks[0].backends, std::vector<std::string>{"b4"});
  EXPECT_EQ(add.verify.checks[0].absent_backends, std::vector<std::string>{"b3"});
  EXPECT_EQ(add.verify.deadline, milliseconds(45000));
  EXPECT_EQ(add.verify.interval, milliseconds(250));

  const auto& settle = lab.steps[1];
  EXPECT_EQ(settle.name, "settle");
  EXPECT_TRUE(settle.action.argv.empty());
  EXPECT_FALSE(settle.safe_to_rerun);
  EXPECT_TRUE(settle.preflight.empty());
  ASSERT_EQ(settle.verify.checks.size(), 1u);
  EXPECT_EQ(settle.verify.checks[0], bare_check("canary"));

  const auto& edge = plan.clusters[1];
  EXPECT_EQ(edge.name, "edge");
  EXPECT_EQ(edge.resume, ResumePolicy::automatic);
  ASSERT_EQ(edge.steps.size(), 1u);
  EXPECT_EQ(edge.steps[0].action.argv, std::vector<std::string>{"/bin/true"});

  EXPECT_EQ(plan.find_cluster("edge"), &plan.clusters[1]);
  EXPECT_EQ(plan.find_cluster("lab"), &plan.clusters[0]);
  EXPECT_EQ(plan.find_cluster("nope"), nullptr);
}

TEST_F(PlanTest, APlanLevelPreflightGoesToEveryCluster) {
  const Plan plan = parse(R"({"preflight": [{"check": "connections"}, {"check": "dns"}],
    "clusters": [{"name": "a", "spec": "${dir}/cluster.json", "steps": [{"name": "s", "run": ["true"]}]},
                 {"name": "b", "spec": "${dir}/cluster.json", "steps": [{"name": "s", "run": ["true"]}]}]})");
  ASSERT_EQ(plan.preflight.size(), 2u);
  EXPECT_EQ(plan.preflight[0].probe, "connections");
  for (const auto& cluster : plan.clusters) EXPECT_EQ(cluster.preflight, plan.preflight);
  EXPECT_NE(describe_plan(plan, system_clock::now())
                .find("before each cluster's first step: preflight: connections, dns\n"),
            std::string::npos);
}

TEST_F(PlanTest, ReadsACheckMode) {
  const Plan plan = parse(R"({"clusters": [{"name": "a", "spec": "${dir}/cluster.json",
    "steps": [{"name": "s", "preflight": [{"check": "dns", "mode": "observe"},
                                          {"check": "canary", "mode": "gate"}, {"check": "dns"}]}]}]})");
  const auto& checks = plan.clusters.at(0).steps.at(0).preflight;
  EXPECT_EQ(checks.at(0).mode, CheckMode::observe);
  EXPECT_EQ(checks.at(1).mode, CheckMode::gate);
  EXPECT_EQ(checks.at(2).mode, CheckMode::gate);
  EXPECT_EQ(checks_in_mode(checks, CheckMode::observe).size(), 1u);
  EXPECT_EQ(describe_check(checks.at(0)), "dns (observe only)");
}

TEST_F(PlanTest, AppliesDefaults) {
  const auto plan = parse(R"({"clusters": [{"name": "c", "spec": "${dir}/cluster.json",
      "steps": [{"name": "s", "run": ["true"], "verify": {"checks": [{"check": "dns"}]}}]}]})");
  EXPECT_EQ(plan.schedule, Schedule{});
  EXPECT_EQ(plan.schedule.max_parallel_clusters, 1);
  EXPECT_TRUE(plan.schedule.blackouts.empty());
  EXPECT_EQ(plan.notifications.webhook_url, "");
  EXPECT_EQ(plan.notifications.alertmanager_url, "");
  const auto& cluster = plan.clusters.at(0);
  EXPECT_EQ(cluster.resume, ResumePolicy::automatic);
  EXPECT_EQ(cluster.resume_after_rounds, 3);
  EXPECT_EQ(cluster.recheck_interval, milliseconds(2000));
  const auto& step = cluster.steps.at(0);
  EXPECT_EQ(step.action.timeout, milliseconds(60000));
  EXPECT_EQ(step.action.retries, 0);
  EXPECT_EQ(step.action.backoff, milliseconds(1000));
  EXPECT_FALSE(step.safe_to_rerun);
  EXPECT_EQ(step.verify.deadline, milliseconds(30000));
  EXPECT_EQ(step.verify.interval, milliseconds(1000));
  EXPECT_EQ(step.verify.checks.at(0), bare_check("dns"));
}

TEST_F(PlanTest, SubstitutesVariables) {
  vars_["step"] = "add-b4";
  vars_["empty"] = "";
  vars_["_x9"] = "X";
  const auto plan = parse(patched({
      {"/clusters/0/steps/0/name", R"("${step}")"},
      {"/clusters/0/steps/0/run",
       R"(["ringwatch", "cost-$$5", "$${dir}", "${step}${empty}-${step}", "$$$$", "x${empty}${_x9}"])"},
  }));
  const auto& step = plan.clusters.at(0).steps.at(0);
  EXPECT_EQ(step.name, "add-b4");
  EXPECT_EQ(step.action.argv, (std::vector<std::string>{"ringwatch", "cost-$5", "${dir}",
                                                        "add-b4-add-b4", "$$", "xX"}));
  EXPECT_EQ(plan.clusters.at(0).spec_path, dir_ + "/cluster.json");
}

TEST_F(PlanTest, UndefinedVariable) {
  EXPECT_EQ(error_of({{"/clusters/1/spec", R"("${nowhere}/cluster.json")"}}),
            "plan.json: /clusters/1/spec: undefined variable \"nowhere\" "
            "(give it with --var nowhere=VALUE)");
  vars_.clear();
  EXPECT_EQ(error_of(kPlan),
            "plan.json: /clusters/0/spec: undefined variable \"dir\" "
            "(give it with --var dir=VALUE)");
}

TEST_F(PlanTest, SubstitutionComesBeforeOtherChecks) {
  // An undefined variable in an unknown field is reported as the variable.
  EXPECT_EQ(error_of({{"/colour", R"("${nope}")"}}),
            "plan.json: /colour: undefined variable \"nope\" (give it with --var nope=VALUE)");
  EXPECT_EQ(error_of(R"({"a/b~c": ["x", {"k": "${nope}"}]})"),
            "plan.json: /a~1b~0c/1/k: undefined variable \"nope\" (give it with --var nope=VALUE)");
  // A substituted value is validated like a literal one, and shown substituted.
  vars_["name"] = "bad name";
  EXPECT_EQ(error_of({{"/clusters/0/name", R"("${name}")"}}),
            "plan.json: /clusters/0/name: expected a name of 1 to 64 characters from "
            "[A-Za-z0-9._-], got \"bad name\"");
  vars_["proto"] = "https";
  EXPECT_EQ(error_of({{"/notifications/webhook", R"("${proto}://example.com/hook")"}}),
            "plan.json: /notifications/webhook: expected an http://host[:port][/path] URL, got "
            "\"https://example.com/hook\"");
}

TEST_F(PlanTest, RejectsMalformedVariableReferences) {
  EXPECT_EQ(error_of({{"/clusters/0/steps/0/run/1", R"("$HOME")"}}),
            "plan.json: /clusters/0/steps/0/run/1: expected ${NAME} or $$ wherever $ appears, "
            "got \"$HOME\"");
  EXPECT_EQ(error_of({{"/clusters/0/steps/0/run/1", R"("${dir")"}}),
            "plan.json: /clusters/0/steps/0/run/1: expected ${NAME} or $$ wherever $ appears, "
            "got \"${dir\"");
  EXPECT_EQ(error_of({{"/clusters/0/steps/0/run/1", R"("a${}b")"}}),
            "plan.json: /clusters/0/steps/0/run/1: expected ${NAME} or $$ wherever $ appears, "
            "got \"a${}b\"");
  EXPECT_EQ(error_of({{"/clusters/0/steps/0/run/1", R"("${a.b}")"}}),
            "plan.json: /clusters/0/steps/0/run/1: expected ${NAME} or $$ wherever $ appears, "
            "got \"${a.b}\"");
  EXPECT_EQ(error_of({{"/clusters/0/steps/0/run/1", R"("${1x}")"}}),
            "plan.json: /clusters/0/steps/0/run/1: expected ${NAME} or $$ wherever $ appears, "
            "got \"${1x}\"");
  EXPECT_EQ(error_of({{"/clusters/0/steps/0/run/1", R"("trailing$")"}}),
            "plan.json: /clusters/0/steps/0/run/1: expected ${NAME} or $$ wherever $ appears, "
            "got \"trailing$\"");
}

struct Rejection {
  std::vector<Patch> patches;
  const char* message;  // after "plan.json: "
};

TEST_F(PlanTest, RejectsInvalidPlans) {
  const std::vector<Rejection> cases = {
      {{{"/colour", "1"}},
       "/colour: unknown field (expected one of: schedule, notifications, preflight, approval, "
       "hooks, clusters)"},
      {{{"/clusters", nullptr}}, R"(missing required field "clusters")"},
      {{{"/preflight", "[]"}}, "/preflight: expected a non-empty array, got []"},
      {{{"/approval", R"("always")"}}, R"(/approval: expected "every_step", got "always")"},
      {{{"/clusters/0/steps/0/approval", "true"}},
       "/clusters/0/steps/0/approval: expected a string, got a boolean"},
      {{{"/clusters/0/steps/0/approval", R"("after")"}},
       R"(/clusters/0/steps/0/approval: expected "before", got "after")"},
      {{{"/preflight", R"([{"check": "ping"}])"}},
       R"(/preflight/0/check: expected "canary", "connections" or "dns", got "ping")"},
      {{{"/clusters", "[]"}}, "/clusters: expected a non-empty array, got []"},
      {{{"/clusters", "{}"}}, "/clusters: expected a non-empty array, got an object"},
      {{{"/schedule", "[]"}}, "/schedule: expected an object, got an array"},
      {{{"/schedule/max_parallel_clusters", "0"}},
       "/schedule/max_parallel_clusters: expected an integer from 1 to 1000, got 0"},
      {{{"/schedule/max_parallel_clusters", R"("2")"}},
       "/schedule/max_parallel_clusters: expected an integer from 1 to 1000, got a string"},
      {{{"/schedule/blackouts", "{}"}}, "/schedule/blackouts: expected an array, got an object"},
      {{{"/schedule/blackouts/0", R"({"last_days_of_month": 2, "hours": {"from": 1, "to": 2}})"}},
       R"(/schedule/blackouts/0: expected exactly one of "last_days_of_month", "first_days_of_month", "dates" and "hours", got "last_days_of_month" and "hours")"},
      {{{"/schedule/blackouts/0", "{}"}},
       R"(/schedule/blackouts/0: expected exactly one of "last_days_of_month", "first_days_of_month", "dates" and "hours", got none)"},
      {{{"/schedule/blackouts/0/weekdays", "[1]"}},
       "/schedule/blackouts/0/weekdays: unknown field (expected one of: last_days_of_month, "
       "first_days_of_month, dates, hours)"},
      {{{"/schedule/blackouts/0/last_days_of_month", "16"}},
       "/schedule/blackouts/0/last_days_of_month: expected an integer from 1 to 15, got 16"},
      {{{"/schedule/blackouts/1/first_days_of_month", "0"}},
       "/schedule/blackouts/1/first_days_of_month: expected an integer from 1 to 15, got 0"},
      {{{"/schedule/blackouts/2/dates/1", R"("2026-02-30")"}},
       "/schedule/blackouts/2/dates/1: expected a date like 2026-12-24 (a real calendar day), "
       "got \"2026-02-30\""},
      {{{"/schedule/blackouts/2/dates/0", R"("2025-02-29")"}},
       "/schedule/blackouts/2/dates/0: expected a date like 2026-12-24 (a real calendar day), "
       "got \"2025-02-29\""},
      {{{"/schedule/blackouts/2/dates/0", R"("2026-1-05")"}},
       "/schedule/blackouts/2/dates/0: expected a date like 2026-12-24 (a real calendar day), "
       "got \"2026-1-05\""},
      {{{"/schedule/blackouts/2/dates/0", R"("2026-13-01")"}},
       "/schedule/blackouts/2/dates/0: expected a date like 2026-12-24 (a real calendar day), "
       "got \"2026-13-01\""},
      {{{"/schedule/blackouts/2/dates", "[]"}},
       "/schedule/blackouts/2/dates: expected a non-empty array, got []"},
      {{{"/schedule/blackouts/3/hours", R"({"from": 6, "to": 6})"}},
       "/schedule/blackouts/3/hours/to: expected an hour other than \"from\" (the window would be "
       "empty), got 6"},
      {{{"/schedule/blackouts/3/hours/to", "25"}},
       "/schedule/blackouts/3/hours/to: expected an integer from 1 to 24, got 25"},
      {{{"/schedule/blackouts/3/hours/from", "24"}},
       "/schedule/blackouts/3/hours/from: expected an integer from 0 to 23, got 24"},
      {{{"/schedule/blackouts/3/hours/from", nullptr}},
       R"(/schedule/blackouts/3/hours: missing required field "from")"},
      {{{"/notifications/webhook", R"("https://example.com/hook")"}},
       "/notifications/webhook: expected an http://host[:port][/path] URL, got "
       "\"https://example.com/hook\""},
      {{{"/notifications/alertmanager", R"("http://")"}},
       "/notifications/alertmanager: expected an http://host[:port][/path] URL, got \"http://\""},
      {{{"/notifications/alertmanager", R"("http://am:99999")"}},
       "/notifications/alertmanager: expected an http://host[:port][/path] URL, got "
       "\"http://am:99999\""},
      {{{"/notifications/email", R"("ops@example.com")"}},
       "/notifications/email: unknown field (expected one of: webhook, alertmanager)"},
      {{{"/clusters/1/name", R"("lab")"}},
       R"(/clusters/1/name: duplicate cluster name "lab" (first at /clusters/0/name))"},
      {{{"/clusters/0/name", nullptr}}, R"(/clusters/0: missing required field "name")"},
      {{{"/clusters/0/name", R"("")"}},
       "/clusters/0/name: expected a name of 1 to 64 characters from [A-Za-z0-9._-], got \"\""},
      {{{"/clusters/0/spec", R"("")"}},
       "/clusters/0/spec: expected a path to a cluster spec file, got \"\""},
      {{{"/clusters/0/spec", "7"}}, "/clusters/0/spec: expected a string, got a number"},
      {{{"/clusters/0/resume", R"("later")"}},
       R"(/clusters/0/resume: expected "auto" or "operator", got "later")"},
      {{{"/clusters/0/resume_after_rounds", "0"}},
       "/clusters/0/resume_after_rounds: expected an integer from 1 to 1000, got 0"},
      {{{"/clusters/0/recheck_interval", "0.01"}},
       "/clusters/0/recheck_interval: expected a number of seconds from 0.05 to 3600, got 0.01"},
      {{{"/clusters/0/steps", "[]"}}, "/clusters/0/steps: expected a non-empty array, got []"},
      {{{"/clusters/0/steps/1/name", R"("add-b4")"}},
       R"(/clusters/0/steps/1/name: duplicate step name "add-b4" (first at /clusters/0/steps/0/name))"},
      {{{"/clusters/0/steps/0/colour", "1"}},
       "/clusters/0/steps/0/colour: unknown field (expected one of: name, run, timeout, retries, "
       "backoff, safe_to_rerun, approval, preflight, verify, hooks)"},
      {{{"/clusters/0/steps/0/run", "[]"}},
       "/clusters/0/steps/0/run: expected a non-empty array, got []"},
      {{{"/clusters/0/steps/0/run", R"("ringwatch lab add-backend")"}},
       "/clusters/0/steps/0/run: expected a non-empty array, got a string"},
      {{{"/clusters/0/steps/0/run/0", R"("")"}},
       "/clusters/0/steps/0/run/0: expected a non-empty program name, got \"\""},
      {{{"/clusters/0/steps/0/run/2", "3"}},
       "/clusters/0/steps/0/run/2: expected a string, got a number"},
      {{{"/clusters/0/steps/0/timeout", "0"}},
       "/clusters/0/steps/0/timeout: expected a number of seconds from 0.1 to 86400, got 0"},
      {{{"/clusters/0/steps/0/timeout", R"("60")"}},
       "/clusters/0/steps/0/timeout: expected a number of seconds from 0.1 to 86400, got a string"},
      {{{"/clusters/0/steps/0/retries", "1.5"}},
       "/clusters/0/steps/0/retries: expected an integer from 0 to 100, got 1.5"},
      {{{"/clusters/0/steps/0/backoff", "-1"}},
       "/clusters/0/steps/0/backoff: expected a number of seconds from 0 to 3600, got -1"},
      {{{"/clusters/0/steps/0/safe_to_rerun", R"("yes")"}},
       "/clusters/0/steps/0/safe_to_rerun: expected true or false, got a string"},
      {{{"/clusters/0/steps/1", R"({"name": "idle"})"}},
       R"(/clusters/0/steps/1: expected at least one of "run", "preflight" and "verify", got none)"},
      {{{"/clusters/0/steps/1/timeout", "5"}},
       R"(/clusters/0/steps/1/timeout: only allowed in a step with "run")"},
      {{{"/clusters/0/steps/1/safe_to_rerun", "true"}},
       R"(/clusters/0/steps/1/safe_to_rerun: only allowed in a step with "run")"},
      {{{"/clusters/0/steps/0/preflight", "[]"}},
       "/clusters/0/steps/0/preflight: expected a non-empty array, got []"},
      {{{"/clusters/0/steps/0/preflight/1/min_consistency_ratio", "0.5"}},
       R"(/clusters/0/steps/0/preflight/1/min_consistency_ratio: only allowed with "check": "canary")"},
      {{{"/clusters/0/steps/0/preflight/0/min_consistency_ratio", "1.5"}},
       "/clusters/0/steps/0/preflight/0/min_consistency_ratio: expected a number from 0 to 1, got "
       "1.5"},
      {{{"/clusters/0/steps/0/preflight/0/check", R"("memory")"}},
       R"(/clusters/0/steps/0/preflight/0/check: expected "canary", "connections" or "dns", got "memory")"},
      {{{"/clusters/0/steps/0/preflight/0/check", nullptr}},
       R"(/clusters/0/steps/0/preflight/0: missing required field "check")"},
      {{{"/clusters/0/steps/0/preflight/0/thresholds", "{}"}},
       "/clusters/0/steps/0/preflight/0/thresholds: unknown field (expected one of: check, mode, "
       "allow_warning, min_consistency_ratio, backends, absent_backends)"},
      {{{"/clusters/0/steps/0/preflight/0/mode", R"("shadow")"}},
       R"(/clusters/0/steps/0/preflight/0/mode: expected "gate" or "observe", got "shadow")"},
      {{{"/clusters/0/steps/0/preflight/0/mode", "true"}},
       "/clusters/0/steps/0/preflight/0/mode: expected a string, got a boolean"},
      {{{"/clusters/0/steps/0/preflight/1/allow_warning", "1"}},
       "/clusters/0/steps/0/preflight/1/allow_warning: expected true or false, got a number"},
      {{{"/clusters/0/steps/0/preflight/1/backends/1", R"("")"}},
       "/clusters/0/steps/0/preflight/1/backends/1: expected a name of 1 to 64 characters from "
       "[A-Za-z0-9._-], got \"\""},
      {{{"/clusters/0/steps/0/verify/checks/0/absent_backends/0", R"("b4")"}},
       R"(/clusters/0/steps/0/verify/checks/0/absent_backends/0: duplicate backend name "b4" (first at /clusters/0/steps/0/verify/checks/0/backends/0))"},
      {{{"/clusters/0/steps/0/verify/checks", "[]"}},
       "/clusters/0/steps/0/verify/checks: expected a non-empty array, got []"},
      {{{"/clusters/0/steps/0/verify/checks", nullptr}},
       R"(/clusters/0/steps/0/verify: missing required field "checks")"},
      {{{"/clusters/0/steps/0/verify/interval", "0"}},
       "/clusters/0/steps/0/verify/interval: expected a number of seconds from 0.05 to 3600, got "
       "0"},
      {{{"/clusters/0/steps/0/verify/deadline", "86401"}},
       "/clusters/0/steps/0/verify/deadline: expected a number of seconds from 0 to 86400, got "
       "86401"},
  };
  for (const auto& rejection : cases) {
    EXPECT_EQ(error_of(rejection.patches), std::string("plan.json: ") + rejection.message)
        << rejection.patches.at(0).pointer;
  }
}

TEST_F(PlanTest, RejectsWholeDocumentProblems) {
  EXPECT_EQ(error_of("[]"), "plan.json: expected an object, got an array");
  EXPECT_EQ(error_of(R"({"clusters": [], "clusters": []})"),
            R"(plan.json: duplicate field "clusters")");
  EXPECT_EQ(error_of(R"({"clusters": )"),
            "plan.json: invalid JSON at line 1, column 14: Invalid value.");
  EXPECT_THROW(load_plan(dir_ + "/nope.json", vars_), spec::SpecError);
  try {
    load_plan(dir_ + "/nope.json", vars_);
  } catch (const spec::SpecError& e) {
    EXPECT_EQ(std::string(e.what()),
              dir_ + "/nope.json: cannot read file: No such file or directory");
  }
}

TEST_F(PlanTest, RefusesDeeplyNestedDocumentsAsTheyAreRead) {
  // Nothing this deep reaches the variable walk or any writer (issue 12,
  // point 2): the parse stops at level 33, naming where.
  constexpr int kDepth = 200000;
  const std::string deep = std::string(kDepth, '[') + "\"${nope}\"" + std::string(kDepth, ']');
  const auto message = error_of(R"({"deep": )" + deep + "}");
  EXPECT_TRUE(message.starts_with("plan.json: /deep/0/0/0/")) << message.substr(0, 80);
  EXPECT_TRUE(
      message.ends_with(": expected at most 32 levels of nesting, got an array at level 33"))
      << message.substr(message.size() - 80);
}

TEST_F(PlanTest, SpecErrorsNameTheSpecFile) {
  EXPECT_EQ(error_of({{"/clusters/1/spec", R"("${dir}/missing.json")"}}),
            dir_ + "/missing.json: cannot read file: No such file or directory");
  EXPECT_EQ(error_of({{"/clusters/1/spec", R"("${dir}/bad.json")"}}),
            dir_ + "/bad.json: /backends/0/port: expected an integer from 1 to 65535, got 70000");
  // The plan is checked before any spec is read.
  EXPECT_EQ(error_of({{"/clusters/0/spec", R"("${dir}/bad.json")"}, {"/clusters/1/resume", "1"}}),
            "plan.json: /clusters/1/resume: expected a string, got a number");
}

TEST_F(PlanTest, ResolvesSpecPathsAgainstThePlanDirectory) {
  write("plans/plan.json", R"({"clusters": [
      {"name": "a", "spec": "../cluster.json", "steps": [{"name": "s", "run": ["true"]}]},
      {"name": "b", "spec": "${dir}/cluster.json", "steps": [{"name": "s", "run": ["true"]}]}]})");
  const auto plan = load_plan(dir_ + "/plans/plan.json", vars_);
  EXPECT_EQ(plan.source, dir_ + "/plans/plan.json");
  EXPECT_EQ(plan.clusters.at(0).spec_path, dir_ + "/plans/../cluster.json");
  EXPECT_EQ(plan.clusters.at(0).spec.name, "lab");
  EXPECT_EQ(plan.clusters.at(1).spec_path, dir_ + "/cluster.json");

  write("plans/broken.json", R"({"clusters": [
      {"name": "a", "spec": "cluster.json", "steps": [{"name": "s", "run": ["true"]}]}]})");
  try {
    load_plan(dir_ + "/plans/broken.json", vars_);
    ADD_FAILURE() << "accepted a spec path relative to the wrong directory";
  } catch (const spec::SpecError& e) {
    EXPECT_EQ(std::string(e.what()),
              dir_ + "/plans/cluster.json: cannot read file: No such file or directory");
  }
}

TEST(BlackoutTest, LastDaysOfMonthKnowsMonthLengths) {
  const Blackout last1 = month_days(Blackout::Kind::last_days_of_month, 1);
  EXPECT_TRUE(last1.covers(at(2024, 2, 29)));  // leap year
  EXPECT_TRUE(last1.covers(at(2024, 2, 29, 23, 59, 59)));
  EXPECT_FALSE(last1.covers(at(2024, 2, 28, 23, 59, 59)));
  EXPECT_TRUE(last1.covers(at(2025, 2, 28)));  // not a leap year
  EXPECT_FALSE(last1.covers(at(2025, 2, 27, 12)));
  EXPECT_FALSE(last1.covers(at(2025, 3, 1)));
  EXPECT_TRUE(last1.covers(at(2026, 4, 30, 12)));
  EXPECT_FALSE(last1.covers(at(2026, 5, 30, 12)));
  EXPECT_TRUE(last1.covers(at(2026, 12, 31, 23)));
  EXPECT_TRUE(last1.covers(at(2100, 2, 28)));  // 2100 is not a leap year

  const Blackout last2 = month_days(Blackout::Kind::last_days_of_month, 2);
  EXPECT_TRUE(last2.covers(at(2025, 2, 27)));
  EXPECT_FALSE(last2.covers(at(2024, 2, 27, 23, 59, 59)));
  EXPECT_TRUE(last2.covers(at(2024, 2, 28)));
  EXPECT_TRUE(last2.covers(at(2026, 1, 30)));
  EXPECT_FALSE(last2.covers(at(2026, 1, 29, 23, 59, 59)));
}

TEST(BlackoutTest, FirstDaysOfMonth) {
  const Blackout first1 = month_days(Blackout::Kind::first_days_of_month, 1);
  EXPECT_TRUE(first1.covers(at(2026, 3, 1)));
  EXPECT_TRUE(first1.covers(at(2026, 3, 1, 23, 59, 59)));
  EXPECT_FALSE(first1.covers(at(2026, 2, 28, 23, 59, 59)));
  EXPECT_FALSE(first1.covers(at(2026, 3, 2)));
  const Blackout first3 = month_days(Blackout::Kind::first_days_of_month, 3);
  EXPECT_TRUE(first3.covers(at(2026, 1, 3, 12)));
  EXPECT_FALSE(first3.covers(at(2026, 1, 4)));
}

TEST(BlackoutTest, HoursWrapAroundMidnight) {
  const Blackout night = hour_window(22, 6);
  EXPECT_FALSE(night.covers(at(2026, 6, 1, 21, 59, 59)));
  EXPECT_TRUE(night.covers(at(2026, 6, 1, 22)));
  EXPECT_TRUE(night.covers(at(2026, 6, 1, 23, 59, 59)));
  EXPECT_TRUE(night.covers(at(2026, 6, 2, 0)));
  EXPECT_TRUE(night.covers(at(2026, 6, 2, 5, 59, 59)));
  EXPECT_FALSE(night.covers(at(2026, 6, 2, 6)));
  EXPECT_FALSE(night.covers(at(2026, 6, 2, 12)));

  const Blackout office = hour_window(9, 17);
  EXPECT_FALSE(office.covers(at(2026, 6, 1, 8, 59, 59)));
  EXPECT_TRUE(office.covers(at(2026, 6, 1, 9)));
  EXPECT_TRUE(office.covers(at(2026, 6, 1, 16, 59, 59)));
  EXPECT_FALSE(office.covers(at(2026, 6, 1, 17)));

  const Blackout late = hour_window(23, 24);
  EXPECT_TRUE(late.covers(at(2026, 6, 1, 23, 30)));
  EXPECT_FALSE(late.covers(at(2026, 6, 2, 0, 0)));
}

TEST(BlackoutTest, DatesCoverWholeUtcDays) {
  const Blackout holidays = on_dates({"2026-12-24", "2028-02-29"});
  EXPECT_TRUE(holidays.covers(at(2026, 12, 24)));
  EXPECT_TRUE(holidays.covers(at(2026, 12, 24, 23, 59, 59)));
  EXPECT_FALSE(holidays.covers(at(2026, 12, 23, 23, 59, 59)));
  EXPECT_FALSE(holidays.covers(at(2026, 12, 25)));
  EXPECT_FALSE(holidays.covers(at(2025, 12, 24, 12)));
  EXPECT_TRUE(holidays.covers(at(2028, 2, 29, 6)));
}

TEST(BlackoutTest, Describes) {
  EXPECT_EQ(month_days(Blackout::Kind::last_days_of_month, 2).describe(),
            "the last 2 days of each month");
  EXPECT_EQ(month_days(Blackout::Kind::first_days_of_month, 1).describe(),
            "the first 1 day of each month");
  EXPECT_EQ(on_dates({"2026-12-24", "2026-12-31"}).describe(), "2026-12-24, 2026-12-31");
  EXPECT_EQ(hour_window(22, 6).describe(), "every day 22:00-06:00 UTC");
  EXPECT_EQ(hour_window(0, 24).describe(), "every day 00:00-24:00 UTC");
}

TEST(BlackoutTest, ScheduleFindsTheFirstCoveringBlackout) {
  Schedule schedule;
  schedule.blackouts = {on_dates({"2026-12-24"}), hour_window(22, 6),
                        month_days(Blackout::Kind::last_days_of_month, 1)};
  EXPECT_EQ(schedule.blackout_at(at(2026, 12, 24, 23)), &schedule.blackouts[0]);
  EXPECT_EQ(schedule.blackout_at(at(2026, 12, 25, 23)), &schedule.blackouts[1]);
  EXPECT_EQ(schedule.blackout_at(at(2026, 12, 31, 12)), &schedule.blackouts[2]);
  EXPECT_EQ(schedule.blackout_at(at(2026, 12, 25, 12)), nullptr);
  EXPECT_EQ(Schedule{}.blackout_at(at(2026, 12, 25, 12)), nullptr);
}

TEST(ResumePolicyTest, Names) {
  EXPECT_STREQ(to_string(ResumePolicy::automatic), "auto");
  EXPECT_STREQ(to_string(ResumePolicy::operator_only), "operator");
}

TEST_F(PlanTest, DescribesThePlan) {
  const auto plan = parse(patched({{"/clusters/0/steps/0/run/3", R"("--name=b4 new")"}}));
  EXPECT_EQ(describe_plan(plan, at(2026, 12, 24, 23)),
            "plan plan.json: 2 clusters, at most 2 at once\n"
            "blackout windows (UTC): the last 2 days of each month; the first 1 day of each "
            "month; 2026-12-24, 2026-12-31 (covers now); every day 22:00-06:00 UTC (covers now)\n"
            "notifications: webhook http://127.0.0.1:8080/hook, alertmanager http://[::1]:9093\n"
            "cluster lab (spec " +
                dir_ +
                "/cluster.json, 2 proxies, 3 backends; waits for an operator to resume; "
                "re-checks every 0.5 s)\n"
                "  1. add-b4: run `ringwatch lab add-backend '--name=b4 new' b4` (timeout 90 s, "
                "2 retries, backoff 1.5 s, safe to re-run)\n"
                "     preflight: canary (consistency >= 0.99), dns (warnings allowed; backends "
                "b1, b2)\n"
                "     verify: connections (backends b4; without backends b3) (within 45 s, every "
                "0.25 s)\n"
                "  2. settle: checks only\n"
                "     verify: canary (within 30 s, every 1 s)\n"
                "cluster edge (spec " +
                dir_ +
                "/cluster.json, 2 proxies, 3 backends; resumes automatically after 3 passing "
                "re-checks every 2 s)\n"
                "  1. drain: run `/bin/true` (timeout 60 s)\n");

  // At noon on an ordinary day nothing is marked.
  const auto text = describe_plan(plan, at(2026, 6, 10, 12));
  EXPECT_EQ(text.find("covers now"), std::string::npos) << text;

  const auto minimal = parse(R"({"clusters": [{"name": "c", "spec": "${dir}/cluster.json",
      "steps": [{"name": "s", "run": ["true"]}]}]})");
  EXPECT_EQ(describe_plan(minimal, at(2026, 6, 10, 12)),
            "plan plan.json: 1 cluster, at most 1 at once\n"
            "blackout windows: none\n"
            "notifications: none\n"
            "cluster c (spec " +
                dir_ +
                "/cluster.json, 2 proxies, 3 backends; resumes automatically after 3 passing "
                "re-checks every 2 s)\n"
                "  1. s: run `true` (timeout 60 s)\n");
}

constexpr char kHookedPlan[] = R"({
  "hooks": {
    "on_pause": {"run": ["${pager}", "--cluster", "${cluster}", "${reason}", "${report}"],
                 "timeout": 5},
    "on_finish": {"run": ["notify", "${cluster} done in ${state_dir}", "cost $$5", "${price}"]}
  },
  "clusters": [{"name": "a", "spec": "${dir}/cluster.json", "steps": [
    {"name": "s", "run": ["true"],
     "hooks": {"on_failure": {"run": ["rollback", "${step}#${step_number}", "${detail}"],
                              "timeout": 0.5},
               "on_abort": {"run": ["rollback", "--all"]}}},
    {"name": "t", "verify": {"checks": [{"check": "dns"}]}, "hooks": {}}]}]})";

TEST_F(PlanTest, ReadsHooksOfThePlanAndOfSteps) {
  vars_["pager"] = "/usr/bin/page";
  vars_["price"] = "$${cluster} is ${literally}";  // a --var value is never expanded again
  const Plan plan = parse(kHookedPlan);
  ASSERT_EQ(plan.hooks.size(), 2u);
  const Hook& pause = plan.hooks.at(HookKind::on_pause);
  // --var names are substituted now; hook variables and $$ wait for the run.
  EXPECT_EQ(pause.argv, (std::vector<std::string>{"/usr/bin/page", "--cluster", "${cluster}",
                                                  "${reason}", "${report}"}));
  EXPECT_EQ(pause.timeout, milliseconds(5000));
  const Hook& finish = plan.hooks.at(HookKind::on_finish);
  EXPECT_EQ(finish.argv, (std::vector<std::string>{"notify", "${cluster} done in ${state_dir}",
                                                   "cost $$5", "$$$${cluster} is $${literally}"}));
  EXPECT_EQ(finish.timeout, milliseconds(60000));
  EXPECT_EQ(plan.clusters.at(0).hooks, plan.hooks);  // the plan's hooks are every cluster's

  const Step& step = plan.clusters.at(0).steps.at(0);
  ASSERT_EQ(step.hooks.size(), 2u);
  EXPECT_EQ(step.hooks.at(HookKind::on_failure).argv,
            (std::vector<std::string>{"rollback", "${step}#${step_number}", "${detail}"}));
  EXPECT_EQ(step.hooks.at(HookKind::on_failure).timeout, milliseconds(500));
  EXPECT_EQ(step.hooks.at(HookKind::on_abort).argv,
            (std::vector<std::string>{"rollback", "--all"}));
  EXPECT_TRUE(plan.clusters.at(0).steps.at(1).hooks.empty());

  // Outside hooks a hook variable is an ordinary --var name.
  EXPECT_EQ(error_of(R"({"clusters": [{"name": "a", "spec": "${dir}/cluster.json",
      "steps": [{"name": "s", "run": ["echo", "${cluster}"]}]}]})"),
            "plan.json: /clusters/0/steps/0/run/1: undefined variable \"cluster\" (give it with "
            "--var cluster=VALUE)");

  const std::string text = describe_plan(plan, system_clock::now());
  EXPECT_NE(text.find("hooks of every cluster: on_pause: `/usr/bin/page --cluster '${cluster}' "
                      "'${reason}' '${report}'` (timeout 5 s); on_finish: `notify '${cluster} "
                      "done in ${state_dir}' 'cost $$5' '$$$${cluster} is $${literally}'` "
                      "(timeout 60 s)\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("  1. s: run `true` (timeout 60 s)\n     hooks: on_failure: `rollback "
                      "'${step}#${step_number}' '${detail}'` (timeout 0.5 s); on_abort: "
                      "`rollback --all` (timeout 60 s)\n"),
            std::string::npos)
      << text;
}

TEST_F(PlanTest, RejectsMalformedHooksNamingFilePointerAndExpectation) {
  vars_["pager"] = "page";
  vars_["price"] = "1";
  const auto error = [&](const std::vector<Patch>& patches) {
    return error_of(testing::patched_json(kHookedPlan, patches));
  };
  const std::vector<Rejection> cases = {
      {{{"/hooks", "[]"}}, "/hooks: expected an object, got an array"},
      {{{"/hooks/on_success", R"({"run": ["x"]})"}},
       "/hooks/on_success: unknown field (expected one of: on_failure, on_pause, on_abort, "
       "on_finish)"},
      {{{"/hooks/on_pause", R"(["page"])"}}, "/hooks/on_pause: expected an object, got an array"},
      {{{"/hooks/on_pause/run", nullptr}}, R"(/hooks/on_pause: missing required field "run")"},
      {{{"/hooks/on_pause/run", "[]"}}, "/hooks/on_pause/run: expected a non-empty array, got []"},
      {{{"/hooks/on_pause/run", R"("page --now")"}},
       "/hooks/on_pause/run: expected a non-empty array, got a string"},
      {{{"/hooks/on_pause/run/0", R"("")"}},
       "/hooks/on_pause/run/0: expected a non-empty program name, got \"\""},
      {{{"/hooks/on_pause/run/1", "7"}}, "/hooks/on_pause/run/1: expected a string, got a number"},
      {{{"/hooks/on_pause/run/1", R"("$cluster")"}},
       "/hooks/on_pause/run/1: expected ${NAME} or $$ wherever $ appears, got \"$cluster\""},
      {{{"/hooks/on_pause/run/1", R"("${clusters}")"}},
       "/hooks/on_pause/run/1: undefined variable \"clusters\" (give it with --var "
       "clusters=VALUE)"},
      {{{"/hooks/on_pause/timeout", "0"}},
       "/hooks/on_pause/timeout: expected a number of seconds from 0.1 to 3600, got 0"},
      {{{"/hooks/on_pause/timeout", "3601"}},
       "/hooks/on_pause/timeout: expected a number of seconds from 0.1 to 3600, got 3601"},
      {{{"/hooks/on_pause/retries", "1"}},
       "/hooks/on_pause/retries: unknown field (expected one of: run, timeout)"},
      {{{"/clusters/0/steps/0/hooks/on_finish", R"({"run": ["x"]})"}},
       R"(/clusters/0/steps/0/hooks/on_finish: only allowed in the plan's top-level "hooks" (a cluster finishes once, after its last step))"},
      {{{"/clusters/0/steps/1/hooks/on_failure", R"({"run": ["x"]})"}},
       R"(/clusters/0/steps/1/hooks/on_failure: only allowed in a step with "run")"},
      {{{"/clusters/0/steps/0/hooks/on_abort/run/0", "null"}},
       "/clusters/0/steps/0/hooks/on_abort/run/0: expected a string, got null"},
      {{{"/clusters/0/steps/0/hooks/on_failure/timeout", R"("1")"}},
       "/clusters/0/steps/0/hooks/on_failure/timeout: expected a number of seconds from 0.1 to "
       "3600, got a string"},
  };
  for (const auto& rejection : cases) {
    EXPECT_EQ(error(rejection.patches), std::string("plan.json: ") + rejection.message)
        << rejection.patches.at(0).pointer;
  }
}

TEST_F(PlanTest, DescribesStepsInOrder) {
  const auto plan = parse(patched({{"/clusters/0/steps/2", R"({"name": "drop-b3", "run": ["x"]})"},
                                   {"/clusters/0/steps/3", R"({"name": "final", "run": ["y"]})"}}));
  const auto text = describe_plan(plan, at(2026, 6, 10, 12));
  const auto first = text.find("1. add-b4:");
  const auto second = text.find("2. settle:");
  const auto third = text.find("3. drop-b3:");
  const auto fourth = text.find("4. final:");
  ASSERT_NE(first, std::string::npos) << text;
  ASSERT_NE(fourth, std::string::npos) << text;
  EXPECT_LT(first, second);
  EXPECT_LT(second, third);
  EXPECT_LT(third, fourth);
}

}  // namespace
}  // namespace ringwatch::migration
