#pragma once
// Probes every cluster of the fleet on its own schedule, on Boost.Asio timers,
// each round on the cluster's own worker thread (probes::ProbeSet::run_round
// blocks), so a slow, stalled or unreachable cluster never delays another's
// rounds.
//
// Per-cluster state machine (the spec of this file):
//
//   idle --tick--> running            a scheduled round is handed to the worker
//   running --tick--> running         the round overran its interval: this tick
//                                     is skipped and counted
//                                     (ringwatch_probe_rounds_total{outcome="skipped"},
//                                     log event=round_skipped), never queued
//   running --round done--> idle      the report becomes the cluster's latest,
//                                     is observed by the metrics and alerting,
//                                     and logged (event=round)
//   idle|running --preflight--> ...   a preflight round is queued on the same
//                                     worker (one round at a time per cluster)
//                                     and runs after the current one; while it
//                                     runs, ticks are skipped as above. Its
//                                     report goes only to its caller (it is not
//                                     the latest, not in metrics or alerts).
//   idle|running --probe--> ...       an on-demand round (GET /probe): it joins
//                                     a probe of the same checks that is queued
//                                     or running (every caller gets that round's
//                                     report), else it is queued like a
//                                     preflight. At most kMaxProbeWaiters callers
//                                     wait per cluster; more are refused. A probe
//                                     round of the cluster's own checks is
//                                     published like a scheduled one (latest,
//                                     history, metrics, alerts, log); a probe of
//                                     other checks only answers its callers.
//   any --removed/stopped--> gone     timer cancelled; the worker finishes the
//                                     round in flight (every network call in a
//                                     round has a deadline), publishes nothing,
//                                     and answers queued preflights with nullopt.
//
// Ticks: the first at start + U(0, jitter); then every `interval` after the
// previous due time, each delayed by U(0, jitter). A tick that comes while
// the io thread lagged more than one interval is rescheduled from now. A
// cluster with ClusterConfig::external has no ticks: only probes and
// preflights run it.
//
// Published rounds are logged (event=round with the round's start; when not
// OK, its problem codes and summary line; findings= counts findings above
// info) and a change of the cluster's
// status (from PENDING on its first round) is logged as event=status_changed.
//
// Thread-safety: every member function except join() must be called on the
// io_context's (single) thread. Workers touch only their cluster's state (own
// mutex) and the shared services (Logger, Metrics, Alerting: thread-safe).

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/fleet.h"
#include "lib/report/report.h"

namespace boost::asio {
class io_context;
}
namespace ringwatch::alerts {
class Metrics;
}

namespace ringwatch::daemon {

class Alerting;
class Logger;

struct ClusterView {
  std::string name{};
  std::optional<report::Report> latest{};               // none before the first round
  std::chrono::steady_clock::time_point finished_at{};  // of `latest`
  std::uint64_t rounds = 0;                             // scheduled rounds completed
  std::uint64_t skipped = 0;                            // ticks skipped (overrun)
  std::uint64_t scheduled = 0;                          // ticks
  bool running = false;                                 // a round is in flight
  bool external = false;                                // ClusterConfig::external
  double age_seconds(std::chrono::steady_clock::time_point now) const;
};

// One published round, as the status page's history charts draw it.
struct RoundRecord {
  std::chrono::system_clock::time_point started_at{};
  report::Status status = report::Status::unknown;
  double duration_ms = 0;
  std::optional<double> consistency_ratio{};  // when the canary read anything
  std::size_t findings = 0;                   // above info
};

// Rounds of history kept per cluster (bounded memory: a few KiB each).
inline constexpr std::size_t kHistoryRounds = 120;
// Callers of GET /probe that may wait on one cluster at once.
inline constexpr std::size_t kMaxProbeWaiters = 16;

using PreflightDone = std::function<void(std::optional<report::Report>)>;

enum class ProbeAdmission { queued, joined, unknown_cluster, too_many };

class Scheduler {
 public:
  // `alerting` may be null (no alerts).
  Scheduler(boost::asio::io_context& io, std::shared_ptr<Logger> log,
            std::shared_ptr<alerts::Metrics> metrics, std::shared_ptr<Alerting> alerting);
  ~Scheduler();  // stop(), then join(0)
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Makes the fleet's clusters the running set: new ones start, missing ones
  // stop (their series and alerts are forgotten), changed ones (spec,
  // interval, jitter or checks) restart with the new config.
  void apply(const std::vector<ClusterConfig>& clusters);

  std::vector<ClusterView> clusters() const;
  std::optional<ClusterView> cluster(std::string_view name) const;
  // The spec the cluster's rounds run against.
  std::optional<spec::ClusterSpec> spec(std::string_view name) const;

  // Runs a fresh round of `checks` (empty: the cluster's checks) now, on the
  // cluster's worker; `done` is called on that worker thread with the report,
  // or with nullopt when the cluster stops first. False for an unknown cluster.
  bool preflight(std::string_view name, std::vector<std::string> checks, PreflightDone done);
  // An on-demand round (see the state machine above); `done` as for
  // preflight, called only when admitted (queued or joined).
  ProbeAdmission probe(std::string_view name, std::vector<std::string> checks, PreflightDone done);

  // The cluster's published rounds, oldest first; nullopt for an unknown cluster.
  std::optional<std::vector<RoundRecord>> history(std::string_view name) const;
  // Every cluster with a schedule has published a round (external ones do
  // not count).
  bool every_scheduled_cluster_ran() const;

  // Stops every timer and tells every worker to stop after its round.
  void stop();
  // Waits up to `grace` for the workers; true when every one has exited
  // (those still in a round are detached: they own what they touch).
  bool join(std::chrono::milliseconds grace);

 private:
  struct Entry;
  void start(const ClusterConfig& config);
  void retire(const std::shared_ptr<Entry>& entry);
  void arm(const std::shared_ptr<Entry>& entry, bool first);
  void tick(const std::shared_ptr<Entry>& entry);

  boost::asio::io_context& io_;
  std::shared_ptr<Logger> log_;
  std::shared_ptr<alerts::Metrics> metrics_;
  std::shared_ptr<Alerting> alerting_;
  std::map<std::string, std::shared_ptr<Entry>, std::less<>> entries_;
  std::vector<std::shared_ptr<Entry>> retired_;
  std::mt19937_64 random_;
};

}  // namespace ringwatch::daemon
