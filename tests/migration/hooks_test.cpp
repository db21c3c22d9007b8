// Issue 16, point 2: hooks (migration/hooks.h).
//   - on a real lab (tools/lab) where a backend is killed mid-plan, each
//     kind fires exactly once, at its moment, with the documented variables
//     and environment: on_failure (the step's) when the step's attempts are
//     exhausted and before the pause, on_pause (the plan's) on entering
//     paused, on_finish when the cluster finishes, on_abort when an operator
//     aborts a cluster that waits for an approval (which is no pause);
//   - a failing, a timing-out and an unstartable hook change nothing in the
//     migration's state (the same state records as without hooks) and are
//     journaled, logged and sent to the webhook;
//   - a stop of the engine kills a running hook and run() returns;
//   - the pure parts: which transitions fire which hooks, the variables'
//     expansion, the hook record in the journal (replay ignores it).

#include <sys/stat.h>

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "migration/engine.h"
#include "migration/hooks.h"
#include "probes/registry.h"
#include "tests/migration/engine_fixture.h"
#include "tests/support/http_test_server.h"
#include "tools/lab/lab.h"

namespace ringwatch::migration {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

std::string read_file(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// --- The pure parts ---------------------------------------------------------

Record transition(Phase phase, int step, PauseReason reason = PauseReason::none,
                  std::string detail = {}) {
  Record record;
  record.type = Record::Type::state;
  record.cluster = "lab";
  record.phase = phase;
  record.step = step;
  record.reason = reason;
  record.detail = std::move(detail);
  record.seq = 42;
  return record;
}

TEST(HookFiringTest, EntriesIntoPausedAbortedAndFinishedFireTheirHooks) {
  const auto pause = hook_firing(
      Phase::preflight, transition(Phase::paused, 1, PauseReason::blackout, "blackout window: x"));
  ASSERT_TRUE(pause);
  EXPECT_EQ(pause->kind, HookKind::on_pause);
  EXPECT_EQ(pause->reason, "blackout");
  EXPECT_EQ(pause->detail, "blackout window: x");
  EXPECT_EQ(pause->step, 1);
  EXPECT_EQ(pause->seq, 42u);
  EXPECT_EQ(hook_firing(Phase::running, transition(Phase::paused, 1, PauseReason::operator_request))
                ->reason,
            "operator");

  const auto abort = hook_firing(Phase::awaiting_approval, transition(Phase::aborted, 0));
  ASSERT_TRUE(abort);
  EXPECT_EQ(abort->kind, HookKind::on_abort);
  EXPECT_EQ(abort->reason, "operator");
  const auto finish =
      hook_firing(Phase::done, transition(Phase::finished, 3, PauseReason::none, "x"));
  ASSERT_TRUE(finish);
  EXPECT_EQ(finish->kind, HookKind::on_finish);
  EXPECT_EQ(finish->reason, "finished");

  // A new reason while paused is no entry; waiting for an approval is no pause.
  EXPECT_FALSE(
      hook_firing(Phase::paused, transition(Phase::paused, 1, PauseReason::operator_request)));
  EXPECT_FALSE(hook_firing(Phase::preflight, transition(Phase::awaiting_approval, 1)));
  EXPECT_FALSE(hook_firing(Phase::paused, transition(Phase::preflight, 1)));
  EXPECT_FALSE(hook_firing(Phase::verifying, transition(Phase::done, 1)));
  Record attempt_end = transition(Phase::paused, 1);
  attempt_end.type = Record::Type::attempt_end;
  EXPECT_FALSE(hook_firing(Phase::running, attempt_end));
}

TEST(HookFiringTest, AStepsHooksComeBeforeThePlansAndAddToThem) {
  ClusterPlan cluster;
  cluster.steps.resize(2);
  cluster.steps[0].hooks[HookKind::on_pause].argv = {"step-pause"};
  cluster.hooks[HookKind::on_pause].argv = {"plan-pause"};
  cluster.hooks[HookKind::on_finish].argv = {"plan-finish"};
  const auto at_first = hooks_for(cluster, HookKind::on_pause, 0);
  ASSERT_EQ(at_first.size(), 2u);
  EXPECT_STREQ(at_first[0].scope, "step");
  EXPECT_EQ(at_first[0].hook->argv.at(0), "step-pause");
  EXPECT_STREQ(at_first[1].scope, "plan");
  EXPECT_EQ(at_first[1].hook->argv.at(0), "plan-pause");
  EXPECT_EQ(hooks_for(cluster, HookKind::on_pause, 1).size(), 1u);
  EXPECT_EQ(hooks_for(cluster, HookKind::on_finish, 2).size(), 1u);  // past the last step
  EXPECT_TRUE(hooks_for(cluster, HookKind::on_abort, 0).empty());
}

TEST(HookFiringTest, ExpandsVariablesOnceAndDollarDollarToDollar) {
  const std::map<std::string, std::string> values = {{"cluster", "lab"}, {"detail", "${step}"}};
  EXPECT_EQ(expand_hook_word("--cluster=${cluster}", values), "--cluster=lab");
  EXPECT_EQ(expand_hook_word("${detail}", values), "${step}");  // a value is not expanded again
  EXPECT_EQ(expand_hook_word("cost $$5, $${cluster}", values), "cost $5, ${cluster}");
  EXPECT_EQ(expand_hook_word("${unknown} $ $x", values), "${unknown} $ $x");
}

TEST(HookRecordTest, IsWrittenWithItsChecksumReadBackAndIgnoredByReplay) {
  Record record;
  record.type = Record::Type::hook;
  record.seq = 7;
  record.at = std::chrono::system_clock::time_point(std::chrono::milliseconds(1764570000123));
  record.cluster = "lab";
  record.step = 2;
  record.hook = "on_pause";
  record.scope = "plan";
  record.trigger = "failed_check";
  record.outcome = "timed_out";
  record.detail = "timed out after 300 ms";
  record.duration_ms = 2304;
  record.report_file = "/tmp/mig/hooks/lab/6-on_pause.json";
  const std::string line = to_json_line(record);
  EXPECT_EQ(line.substr(0, line.find(",\"crc\"")),
            R"({"seq":7,"at":"2025-12-01T06:20:00.123Z","type":"hook","cluster":"lab","step":2,)"
            R"("hook":"on_pause","scope":"plan","reason":"failed_check","outcome":"timed_out",)"
            R"("duration_ms":2304,"report_file":"/tmp/mig/hooks/lab/6-on_pause.json",)"
            R"("detail":"timed out after 300 ms")");
  const auto back = parse_record(line);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->type, Record::Type::hook);
  EXPECT_EQ(back->hook, "on_pause");
  EXPECT_EQ(back->scope, "plan");
  EXPECT_EQ(back->trigger, "failed_check");
  EXPECT_EQ(back->outcome, "timed_out");
  EXPECT_EQ(back->duration_ms, 2304);
  EXPECT_EQ(back->report_file, record.report_file);
  EXPECT_EQ(back->detail, record.detail);

  // A cluster's state is the same with or without hook records.
  Record header;
  header.type = Record::Type::run;
  header.seq = 1;
  header.structure = {{"lab", {"a", "b", "c"}}};
  Record paused = transition(Phase::paused, 2, PauseReason::failed_check, "x");
  paused.seq = 6;
  const JournalState without = replay({header, paused});
  const JournalState with = replay({header, paused, *back});
  EXPECT_EQ(with.find("lab")->phase, Phase::paused);
  EXPECT_EQ(with.find("lab")->reason, without.find("lab")->reason);
  EXPECT_EQ(with.find("lab")->detail, without.find("lab")->detail);
  EXPECT_EQ(with.find("lab")->since, without.find("lab")->since);
}

// --- The engine, with scripted checks ------------------------------------------

class HooksTest : public testing::EngineFixture {
 protected:
  EngineOptions options() {
    EngineOptions o = EngineFixture::options();
    o.make_checks = checks_.factory();
    return o;
  }
  testing::ScriptedChecks checks_;
};

// One step whose action always fails; an operator aborts the cluster once
// it paused. With `hooks`: a failing on_failure, an on_pause that runs past
// its timeout and an on_abort that cannot start.
std::string failing_plan(bool hooks) {
  return std::string(R"({"notifications": {"webhook": "${webhook}"},)") +
         (hooks ? R"("hooks": {"on_pause": {"run": ["sleep", "30"], "timeout": 0.3},
                      "on_abort": {"run": ["${root}/no-such-hook", "${cluster}"]}},)"
                : "") +
         R"("clusters": [{"name": "c", "spec": "${dead}", "steps": [
             {"name": "fails", "run": ["false"], "retries": 1, "backoff": 0.05)" +
         (hooks ? R"(, "hooks": {"on_failure": {"run": ["false"]}})" : "") + "}]}]}";
}

// What replay acts on: the state records, without times.
std::vector<std::string> transitions(const std::vector<Record>& records) {
  std::vector<std::string> out;
  for (const Record& r : records) {
    if (r.type != Record::Type::state) continue;
    out.push_back(std::string(to_string(r.phase)) + " " + std::to_string(r.step) + " " +
                  to_string(r.reason) + " " + to_string(r.resume_to) + " " + r.detail);
  }
  return out;
}

TEST_F(HooksTest, FailingTimingOutAndUnstartableHooksChangeNothingAndAreReported) {
  // The migration without hooks, then with them: the same transitions.
  std::vector<std::vector<Record>> journals;
  std::vector<std::string> webhook_bodies;
  for (const bool hooks : {false, true}) {
    testing::TestHttpServer webhook;
    EngineOptions o = options();
    o.state_dir = root_ / (hooks ? "with-hooks" : "without-hooks");
    Engine engine(plan(failing_plan(hooks), {{"webhook", webhook.url("/events")}}), o);
    auto running = start(engine);
    const auto paused_for_good = [&] {
      const auto until = std::chrono::steady_clock::now() + 30s;
      while (std::chrono::steady_clock::now() < until) {
        const JournalState s = replay(read_journal(o.state_dir));
        if (paused(s, "c", PauseReason::failed_action)) return true;
        std::this_thread::sleep_for(50ms);
      }
      return false;
    };
    ASSERT_TRUE(paused_for_good()) << log_.str();
    submit_command(o.state_dir, command("abort", "c"));
    EXPECT_EQ(running->get().exit_code(), 2) << log_.str();
    journals.push_back(read_journal(o.state_dir));
    const std::size_t events = hooks ? 7 : 4;  // started, failed, paused, aborted (+3 hooks)
    EXPECT_TRUE(webhook.wait_for_requests(events, 10s));
    if (hooks) {
      for (const auto& request : webhook.requests()) webhook_bodies.push_back(request.body);
    }
  }
  EXPECT_EQ(transitions(journals[1]), transitions(journals[0]));
  const JournalState with = replay(journals[1]);
  EXPECT_EQ(with.find("c")->phase, Phase::aborted);

  // Each hook's outcome is journaled, in order, after the record that fired it.
  std::vector<Record> hooks;
  for (const Record& r : journals[1]) {
    if (r.type == Record::Type::hook) hooks.push_back(r);
  }
  ASSERT_EQ(hooks.size(), 3u) << log_.str();
  EXPECT_EQ(hooks[0].hook, "on_failure");
  EXPECT_EQ(hooks[0].scope, "step");
  EXPECT_EQ(hooks[0].trigger, "failed_action");
  EXPECT_EQ(hooks[0].outcome, "failed");
  EXPECT_EQ(hooks[0].detail, "exit status 1");
  EXPECT_EQ(hooks[1].hook, "on_pause");
  EXPECT_EQ(hooks[1].scope, "plan");
  EXPECT_EQ(hooks[1].trigger, "failed_action");
  EXPECT_EQ(hooks[1].outcome, "timed_out");
  EXPECT_EQ(hooks[1].detail, "timed out after 300 ms");
  EXPECT_EQ(hooks[2].hook, "on_abort");
  EXPECT_EQ(hooks[2].outcome, "could_not_start");
  EXPECT_EQ(hooks[2].detail,
            "cannot run \"" + (root_ / "no-such-hook").string() + "\": No such file or directory");
  // on_failure before the pause, on_pause after it, on_abort after the abort.
  std::uint64_t pause_seq = 0, abort_seq = 0, last_attempt_end = 0;
  for (const Record& r : journals[1]) {
    if (r.type == Record::Type::state && r.phase == Phase::paused) pause_seq = r.seq;
    if (r.type == Record::Type::state && r.phase == Phase::aborted) abort_seq = r.seq;
    if (r.type == Record::Type::attempt_end) last_attempt_end = r.seq;
  }
  EXPECT_LT(last_attempt_end, hooks[0].seq);
  EXPECT_LT(hooks[0].seq, pause_seq);
  EXPECT_LT(pause_seq, hooks[1].seq);
  EXPECT_LT(abort_seq, hooks[2].seq);
  EXPECT_EQ(read_file(hooks[1].report_file), "null\n");  // no check ran

  // Logged, and notified as "hook" events with their outcome.
  const std::string log = log_.str();
  EXPECT_TRUE(contains(log, "c: hook on_failure (step) at step 1 (fails) failed: exit status 1 ("))
      << log;
  EXPECT_TRUE(contains(log,
                       "c: hook on_pause (plan) at step 1 (fails) timed_out: timed out after "
                       "300 ms ("))
      << log;
  EXPECT_TRUE(contains(log, " ms); the migration's state is unchanged\n")) << log;
  std::vector<std::string> hook_events;
  for (const auto& body : webhook_bodies) {
    if (!contains(body, R"("event":"hook")")) continue;
    hook_events.push_back(body);
  }
  ASSERT_EQ(hook_events.size(), 3u);
  EXPECT_TRUE(contains(hook_events[0], R"("cluster":"c","step":"fails","reason":"failed_action",)"
                                       R"("detail":"hook on_failure (step) failed: exit status 1",)"
                                       R"("hook":"on_failure","outcome":"failed")"))
      << hook_events[0];
  EXPECT_TRUE(contains(hook_events[1], R"("hook":"on_pause","outcome":"timed_out")"))
      << hook_events[1];
  EXPECT_TRUE(contains(hook_events[2], R"("hook":"on_abort","outcome":"could_not_start")"))
      << hook_events[2];
}

TEST_F(HooksTest, AStopKillsARunningHookAndTheEngineReturns) {
  Engine engine(plan(R"({"hooks": {"on_finish": {"run": ["sleep", "60"], "timeout": 120}},
      "clusters": [{"name": "c", "spec": "${dead}", "steps": [{"name": "s", "run": ["true"]}]}]})"),
                options());
  auto running = start(engine);
  const fs::path hook_log = state_ / "logs" / "c" / "hooks.log";
  ASSERT_TRUE(wait_for([&](const JournalState&) {
    return contains(read_file(hook_log), "cluster c hook on_finish (plan) at the end: sleep 60");
  })) << log_.str();
  engine.stop();
  ASSERT_EQ(running->result.wait_for(30s), std::future_status::ready);
  EXPECT_EQ(running->get().exit_code(), 0);  // it had finished
  const auto records = journal();
  ASSERT_EQ(records.back().type, Record::Type::hook) << log_.str();
  EXPECT_EQ(records.back().outcome, "cancelled");
  EXPECT_EQ(records.back().hook, "on_finish");
}

TEST_F(HooksTest, AnEntryIntoPausedRunsTheStepsHookThenThePlansAndANewReasonRunsNone) {
  checks_.script("c", {testing::ScriptedChecks::fail("dns: CRITICAL: b1 refused", "b1 is down")});
  Engine engine(plan(R"({"hooks": {"on_pause": {"run": ["true"]}, "on_finish": {"run": ["true"]}},
      "clusters": [{"name": "c", "spec": "${dead}", "resume": "operator", "recheck_interval": 0.05,
        "steps": [{"name": "s", "preflight": [{"check": "dns"}], "run": ["true"],
                   "hooks": {"on_pause": {"run": ["echo", "${reason}"]}}}]}]})"),
                options());
  auto running = start(engine);
  const auto hook_records = [&] {
    std::vector<Record> hooks;
    for (const Record& r : journal()) {
      if (r.type == Record::Type::hook) hooks.push_back(r);
    }
    return hooks;
  };
  ASSERT_TRUE(wait_for([&](const JournalState& s) {
    return paused(s, "c", PauseReason::failed_check) && hook_records().size() == 2;
  })) << log_.str();
  // An operator's pause of the paused cluster: a new reason, not an entry.
  submit_command(state_, command("pause", "c"));
  ASSERT_TRUE(wait_for([](const JournalState& s) {
    return paused(s, "c", PauseReason::operator_request);
  })) << log_.str();
  checks_.script("c", {testing::ScriptedChecks::pass()});
  submit_command(state_, command("resume", "c"));
  EXPECT_EQ(running->get().exit_code(), 0) << log_.str();

  const std::vector<Record> hooks = hook_records();
  std::vector<std::string> ran;
  for (const Record& r : hooks) ran.push_back(r.hook + " " + r.scope + " " + r.trigger);
  EXPECT_EQ(ran,
            (std::vector<std::string>{"on_pause step failed_check", "on_pause plan failed_check",
                                      "on_finish plan finished"}))
      << log_.str();
  // Both hooks of the pause were given the same report: the failed round's.
  EXPECT_EQ(hooks[0].report_file, hooks[1].report_file);
  EXPECT_TRUE(contains(read_file(hooks[0].report_file), R"("schema":"ringwatch.report/v1")"));
  EXPECT_TRUE(contains(read_file(state_ / "logs" / "c" / "hooks.log"), "\nfailed_check\n"));
}

// --- A lab migration ------------------------------------------------------------

// The hook program: one file per run, OUT/<kind>.<pid>, holding its words,
// "--", its RINGWATCH_* environment, and the report file as it was then.
constexpr char kRecorder[] = R"(#!/bin/sh
out="$1"; kind="$2"; shift 2
file="$out/$kind.$$"
{ for word in "$@"; do printf '%s\n' "$word"; done
  printf -- '--\n'
  env | grep '^RINGWATCH_' | sort; } > "$file.tmp"
cat "$RINGWATCH_REPORT" > "$file.report"
mv "$file.tmp" "$file"
)";

// One recorded run of a hook.
struct HookRun {
  std::vector<std::string> words;
  std::map<std::string, std::string> env;
  std::string report;
};

std::map<std::string, std::vector<HookRun>> recorded_hooks(const fs::path& dir) {
  std::map<std::string, std::vector<HookRun>> runs;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (entry.path().extension() == ".report" || entry.path().extension() == ".tmp") continue;
    HookRun run;
    std::istringstream lines(read_file(entry.path()));
    bool in_env = false;
    for (std::string line; std::getline(lines, line);) {
      if (line == "--") {
        in_env = true;
      } else if (in_env) {
        run.env[line.substr(0, line.find('='))] = line.substr(line.find('=') + 1);
      } else {
        run.words.push_back(line);
      }
    }
    run.report = read_file(entry.path().string() + ".report");
    runs[name.substr(0, name.find('.'))].push_back(run);
  }
  return runs;
}

// The words every hook is given: cluster, step, step_number, reason, detail, report.
std::string recorder(const std::string& kind) {
  return R"({"run": ["${root}/record-hook", "${root}/hooks", ")" + kind +
         R"(", "${cluster}", "${step}", "${step_number}", "${reason}", "${detail}", "${report}"],
             "timeout": 30})";
}

// Cluster lab: a new backend, the proxies rolled onto it, then (b2 killed
// meanwhile by the test) a step whose action probes the connections and
// fails twice. Cluster second, on the same lab, waits for an approval.
std::string lab_plan() {
  return R"({"hooks": {"on_pause": )" + recorder("on_pause") + R"(, "on_abort": )" +
         recorder("on_abort") + R"(, "on_finish": )" + recorder("on_finish") + R"(},
  "clusters": [
    {"name": "lab", "spec": "${lab}/cluster.json", "resume": "operator", "steps": [
      {"name": "start-b4",
       "run": ["${ringwatch}", "lab", "add-backend", "--dir", "${lab}", "--backend", "b4"]},
      {"name": "roll-onto-b4",
       "run": ["${ringwatch}", "lab", "roll-proxies", "--dir", "${lab}", "--pause", "0.2"],
       "verify": {"checks": [{"check": "connections", "backends": ["b4"]}], "deadline": 30}},
      {"name": "probe-all",
       "preflight": [{"check": "connections", "mode": "observe"}],
       "run": ["${ringwatch}", "probe", "--cluster", "${lab}/cluster.json", "--checks", "connections"],
       "retries": 1, "backoff": 0.1,
       "verify": {"checks": [{"check": "connections"}]},
       "hooks": {"on_failure": )" +
         recorder("on_failure") + R"(}}]},
    {"name": "second", "spec": "${lab}/cluster.json", "steps": [
      {"name": "wait-for-me", "approval": "before", "preflight": [{"check": "dns"}]}]}]})";
}

class LabDir {
 public:
  explicit LabDir(const fs::path& dir) : dir_(dir) { lab::up({dir_, 3, 3, false}); }
  ~LabDir() {
    try {
      lab::down(dir_);
    } catch (const std::exception& error) {
      ADD_FAILURE() << "lab down: " << error.what();
    }
  }
  const fs::path& dir() const { return dir_; }

 private:
  fs::path dir_;
};

TEST_F(HooksTest, OnALabWhereABackendDiesEachHookFiresOnceAtItsMomentWithItsVariables) {
  LabDir lab_dir(root_ / "lab");
  fs::create_directories(root_ / "hooks");
  std::ofstream(root_ / "record-hook") << kRecorder;
  fs::permissions(root_ / "record-hook", fs::perms::owner_all);

  EngineOptions o = EngineFixture::options();  // the real checks, on the real lab
  // b2 dies once the proxies were rolled onto b4, before the step that probes.
  o.on_record = [&](const Record& record) {
    if (record.cluster == "lab" && record.type == Record::Type::state &&
        record.phase == Phase::done && record.step == 1) {
      lab::inject(lab_dir.dir(), {lab::FaultKind::kill, "", "b2", "", ""});
    }
  };
  Engine engine(
      plan(lab_plan(), {{"lab", lab_dir.dir().string()}, {"ringwatch", RINGWATCH_BINARY}}), o);
  auto running = start(engine);

  // The action fails twice: on_failure, then the pause and its on_pause.
  ASSERT_TRUE(wait_for(
      [&](const JournalState& s) {
        if (!paused(s, "lab", PauseReason::failed_action)) return false;
        for (const Record& r : journal()) {
          if (r.type == Record::Type::hook && r.hook == "on_pause") return true;
        }
        return false;
      },
      120s))
      << log_.str();
  // Back to health (the proxies connected to b2 again), and an operator
  // resumes: the step runs again and passes.
  lab::heal(lab_dir.dir());
  probes::ProbeSet connections(std::vector<std::string>{"connections"});
  const spec::ClusterSpec spec = spec::load_cluster_spec(lab::spec_path(lab_dir.dir()).string());
  for (int i = 0; i < 60 && connections.run_round(spec).status() != report::Status::ok; ++i)
    std::this_thread::sleep_for(500ms);
  submit_command(state_, command("resume", "lab"));
  ASSERT_TRUE(wait_for(
      [](const JournalState& s) {
        return s.find("lab")->phase == Phase::finished &&
               s.find("second")->phase == Phase::awaiting_approval;
      },
      120s))
      << log_.str();
  submit_command(state_, command("abort", "second"));
  EXPECT_EQ(running->get().exit_code(), 2) << log_.str();

  const auto records = journal();
  const auto runs = recorded_hooks(root_ / "hooks");
  for (const char* kind : {"on_failure", "on_pause", "on_finish", "on_abort"}) {
    ASSERT_EQ(runs.count(kind), 1u) << kind << "\n" << log_.str();
    EXPECT_EQ(runs.at(kind).size(), 1u) << kind << "\n" << log_.str();
  }
  // on_failure: the step's, after the second failed attempt, before the pause.
  const HookRun& failure = runs.at("on_failure").at(0);
  ASSERT_EQ(failure.words.size(), 6u);
  EXPECT_EQ(failure.words[0], "lab");
  EXPECT_EQ(failure.words[1], "probe-all");
  EXPECT_EQ(failure.words[2], "3");
  EXPECT_EQ(failure.words[3], "failed_action");
  EXPECT_EQ(failure.words[4], "action failed after 2 attempts: exit status 2");
  EXPECT_EQ(failure.env.at("RINGWATCH_HOOK"), "on_failure");
  EXPECT_EQ(failure.env.at("RINGWATCH_CLUSTER"), "lab");
  EXPECT_EQ(failure.env.at("RINGWATCH_STEP"), "probe-all");
  EXPECT_EQ(failure.env.at("RINGWATCH_REASON"), "failed_action");
  EXPECT_EQ(failure.env.at("RINGWATCH_REPORT"), failure.words[5]);
  EXPECT_EQ(fs::path(failure.words[5]).parent_path(), state_ / "hooks" / "lab");
  EXPECT_EQ(failure.env.count("RINGWATCH_ATTEMPT"), 0u);
  // Its report: the last round, the observe-mode connections check that
  // saw b2 dead.
  EXPECT_TRUE(contains(failure.report, R"({"schema":"ringwatch.report/v1",)")) << failure.report;
  EXPECT_TRUE(contains(failure.report, R"("status":"CRITICAL")")) << failure.report;
  EXPECT_TRUE(contains(failure.report, "b2")) << failure.report;

  const HookRun& pause = runs.at("on_pause").at(0);
  ASSERT_EQ(pause.words.size(), 6u);
  EXPECT_EQ(pause.words[1], "probe-all");
  EXPECT_EQ(pause.words[3], "failed_action");
  EXPECT_EQ(pause.words[4], "action failed after 2 attempts: exit status 2");
  EXPECT_EQ(pause.report, failure.report);

  const HookRun& finish = runs.at("on_finish").at(0);
  ASSERT_EQ(finish.words.size(), 6u);
  EXPECT_EQ(finish.words[0], "lab");
  EXPECT_EQ(finish.words[1], "probe-all");  // the last step
  EXPECT_EQ(finish.words[2], "3");
  EXPECT_EQ(finish.words[3], "finished");
  EXPECT_EQ(finish.words[4], "every step done");
  EXPECT_TRUE(contains(finish.report, R"("status":"OK")")) << finish.report;  // its verify

  const HookRun& abort = runs.at("on_abort").at(0);
  ASSERT_EQ(abort.words.size(), 6u);
  EXPECT_EQ(abort.words[0], "second");
  EXPECT_EQ(abort.words[1], "wait-for-me");
  EXPECT_EQ(abort.words[2], "1");
  EXPECT_EQ(abort.words[3], "operator");
  EXPECT_EQ(abort.words[4], "aborted by operator at step 1 (wait-for-me) in awaiting_approval");
  EXPECT_EQ(abort.report, "null\n");  // no check ran on it: it waited before its preflight

  // In the journal, per cluster (a finished cluster's slot is free while
  // its on_finish runs, so the next one may start meanwhile): on_failure
  // between the last attempt and the pause; each other hook right after the
  // record that fired it; every one succeeded.
  std::map<std::string, std::vector<std::string>> order;
  for (const Record& r : records) {
    if (r.type == Record::Type::hook) {
      order[r.cluster].push_back("hook " + r.hook + " " + r.scope + " " + r.outcome);
    } else if (r.type == Record::Type::state &&
               (r.phase == Phase::paused || r.phase == Phase::finished ||
                r.phase == Phase::aborted || r.phase == Phase::awaiting_approval)) {
      order[r.cluster].push_back(to_string(r.phase));
    } else if (r.type == Record::Type::attempt_end && r.cluster == "lab" && r.step == 2) {
      order[r.cluster].push_back("attempt " + std::to_string(r.attempt) + " " + r.outcome);
    }
  }
  EXPECT_EQ(order["lab"],
            (std::vector<std::string>{"attempt 1 failed", "attempt 2 failed",
                                      "hook on_failure step succeeded", "paused",
                                      "hook on_pause plan succeeded", "attempt 3 succeeded",
                                      "finished", "hook on_finish plan succeeded"}))
      << log_.str();
  EXPECT_EQ(order["second"], (std::vector<std::string>{"awaiting_approval", "aborted",
                                                       "hook on_abort plan succeeded"}))
      << log_.str();
}

}  // namespace
}  // namespace ringwatch::migration
