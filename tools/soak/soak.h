#pragma once
// ringwatch-soak: the real ringwatchd on a lab for a bounded time, under
// churn, and a report of every round it made. It measures "no false CRITICAL
// in an hour": a round that is not OK while no churn event was in progress is
// a false alarm.
//
// A run (run()):
//   1. uses the running lab in Options::lab_dir, or brings one up there (and
//      takes it down at the end);
//   2. starts ringwatchd --cluster DIR/cluster.json --interval I --jitter 0
//      --listen 127.0.0.1:0, its log in DIR/soak-ringwatchd.log;
//   3. until Options::duration has passed, waits a random gap around
//      Options::churn_every (uniform in [every/2, 3*every/2], drawn from
//      Options::seed) and runs one churn event, a kind drawn from those
//      enabled, through the lab's own machinery (tools/lab/lab.h):
//        backend-restart B  inject `restart B` (stopped, started empty), heal
//        proxy-roll         restart_proxies, one at a time, pause = interval
//        dns-flap B         inject `dns B <B's public stand-in>`, hold for
//                           2 intervals, heal
//      An event's window runs from before its first lab call to after its
//      last; a lab error ends the event (recorded, then heal) but not the run;
//   4. stops ringwatchd (SIGTERM, then SIGKILL after 15 s), reads its
//      `event=round` log lines (daemon/README.md: status, started, codes,
//      summary) and classifies every round that is not OK: *explained* when
//      it overlaps an event's window widened by Options::settle after its
//      end (a proxy restarted by heal may take a round to settle), otherwise
//      *unexplained*.
//
// Bounds: duration 1 s to 24 h; interval 0.2 to 60 s; churn_every at least
// 2 intervals and at most 1 h; settle 0 to 10 min; a run ends within
// duration + one churn event + the daemon's stop grace.
//
// SIGINT or SIGTERM ends the run early but cleanly: no new churn event, the
// daemon stopped, a lab it brought up taken down, the report printed (marked
// interrupted).
//
// Exit codes (main): 0 every non-OK round explained (and at least one round),
// 2 an unexplained non-OK round, no round at all, ringwatchd died, or the run
// was interrupted; 3 bad usage or a lab that cannot be brought up.
//
// Not thread-safe; run() forks (call it from a thread holding no locks).

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "tools/lab/lab.h"

namespace ringwatch::soak {

using SystemTime = std::chrono::system_clock::time_point;

enum class ChurnKind { backend_restart, proxy_roll, dns_flap };
const char* to_string(ChurnKind kind);  // "backend-restart", "proxy-roll", "dns-flap"
std::optional<ChurnKind> parse_churn_kind(std::string_view name);

struct Options {
  std::filesystem::path lab_dir;  // a running lab to use, or where to bring one up
  int proxies = 3, backends = 3;  // for a lab brought up
  lab::LabProxyKind proxy_kind = lab::LabProxyKind::twemproxy;
  std::chrono::milliseconds duration{60000};
  std::chrono::milliseconds interval{1000};      // ringwatchd's round interval
  std::vector<ChurnKind> churn{};                // empty: no churn
  std::chrono::milliseconds churn_every{15000};  // mean gap between two events
  std::chrono::milliseconds settle{2000};        // a window's tail after an event ends
  std::uint64_t seed = 1;
  std::filesystem::path ringwatchd;  // the daemon's binary
};

struct ChurnEvent {
  ChurnKind kind = ChurnKind::proxy_roll;
  std::string target;  // the backend, or "" for proxy-roll (every proxy)
  SystemTime begin{}, end{};
  std::string error;  // a lab error that ended the event early, or ""
};

// One `event=round` line of ringwatchd's log.
struct Round {
  SystemTime started{}, finished{};
  std::string status;                         // "OK", "WARNING", "CRITICAL", "UNKNOWN"
  std::vector<std::string> codes;             // problem finding codes (non-OK rounds)
  std::string summary;                        // the report's headline (non-OK rounds)
  std::optional<std::size_t> explained_by{};  // index into SoakReport::events
};

struct SoakReport {
  std::string lab;  // the lab's name
  std::string proxy_kind;
  int proxies = 0, backends = 0;
  std::chrono::milliseconds duration{0}, interval{0}, churn_every{0}, settle{0};
  std::uint64_t seed = 0;
  std::vector<ChurnEvent> events;
  std::vector<Round> rounds;  // every round, in log order
  std::uint64_t skipped = 0;  // ticks the daemon skipped (a round overran)
  std::string daemon_error;   // ringwatchd died during the run, or ""
  bool interrupted = false;   // SIGINT or SIGTERM ended the run early

  std::size_t count(std::string_view status) const;
  std::size_t explained() const;    // non-OK rounds inside an event's window
  std::size_t unexplained() const;  // non-OK rounds outside every window
  int exit_code() const;            // 0 or 2, see above
};

// Parses one log line; nullopt unless it is an `event=round` line with a
// status and a finish time.
std::optional<Round> parse_round_line(std::string_view line);
// Every round line of a whole log, and the number of `event=round_skipped` lines.
std::vector<Round> parse_rounds(std::string_view log, std::uint64_t* skipped = nullptr);
// Sets Round::explained_by for every non-OK round that overlaps
// [event.begin, event.end + settle] of some event (the first such event).
void classify(std::vector<Round>& rounds, const std::vector<ChurnEvent>& events,
              std::chrono::milliseconds settle);

// Text for people; JSON (schema "ringwatch.soak/v1", see tools/soak/README.md).
std::string render_text(const SoakReport& report);
std::string render_json(const SoakReport& report);

// The whole run, progress lines on `progress`. Throws lab::LabError or
// std::runtime_error when the lab or the daemon cannot be started.
SoakReport run(const Options& options, std::ostream& progress);

// The command line of `ringwatch-soak`; returns the exit code.
int main(int argc, char** argv);

}  // namespace ringwatch::soak
