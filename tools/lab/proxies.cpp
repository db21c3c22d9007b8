#include "tools/lab/proxies.h"

#include <thread>

#include "lib/mc/client.h"
#include "lib/net/tcp.h"
#include "lib/util/deadlines.h"
#include "lib/util/text.h"
#include "tools/lab/nodes.h"

namespace ringwatch::lab {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr auto kReloadTimeout = 8s;
// memcached acts on a SIGHUP at its next once-a-second clock tick.
constexpr auto kReloadTick = 1500ms;
constexpr auto kPoll = 20ms;
const util::Deadlines kStatsDeadlines{500ms, 500ms};

std::int64_t ms_since(Clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
}

// ---- nutcracker: ejects after a failed request --------------------------

// One multi-get over many keys through the proxy; the raw reply ("" if the
// exchange failed).
// The proxy's reply, or why there was none ("no reply: <error>").
std::string multi_get(const Node& proxy, int attempt) {
  // Keys vary in front: twemproxy's fnv1a_64 is 32-bit FNV with a truncated
  // prime, so keys differing only at the end cluster on one server.
  std::string request = "get";
  for (int i = 0; i < 200; ++i)
    request += " " + std::to_string(i) + "." + std::to_string(attempt) + "-ringwatch-lab-settle";
  request += "\r\n";
  const auto done = net::exchange(
      net::Endpoint{proxy.address, proxy.port}, request,
      [](std::string_view reply) {
        return reply.ends_with("END\r\n") || reply.find("ERROR") != std::string_view::npos;
      },
      kStatsDeadlines);
  return done.ok() ? done.value().reply : "no reply: " + done.error().message;
}

struct Settling {
  std::int64_t ms = -1;    // -1: not settled in time
  std::string last_reply;  // when not settled: the last reply, bounded
};

// twemproxy connects lazily (preconnect: false), so after a restart it has not
// yet noticed that a server is unreachable. Drive multi-gets over many keys
// through the proxy, as clients would, until one has failed (the proxy tried
// the server and ejected it) and a later one completes cleanly (it routes
// around it). Returns the time that took, or -1 if it did not settle in time.
// With `must_fail_first` false it returns at the first clean reply: a proxy
// that reaches every backend settles at once.
Settling settle_ejection(const Node& proxy, bool must_fail_first) {
  auto start = Clock::now();
  bool failed_once = false;
  std::string last;
  for (int attempt = 0; Clock::now() - start < kEjectSettleTimeout; ++attempt) {
    last = multi_get(proxy, attempt);
    if (last.find("ERROR") != std::string::npos) {
      failed_once = true;
    } else if ((failed_once || !must_fail_first) && last.ends_with("END\r\n")) {
      return {ms_since(start), {}};
    }
    std::this_thread::sleep_for(5ms);
  }
  std::string shown;
  for (char c : last) shown += c == '\r' ? "\\r" : c == '\n' ? "\\n" : std::string(1, c);
  return {-1, util::cut_to(shown, 160)};
}

// ---- memcached's proxy: `stats` counters and `stats proxybe` ------------

std::optional<mc::Stats> proxy_stats(const Node& proxy, std::string_view group) {
  mc::Client client(net::Endpoint{proxy.address, proxy.port}, kStatsDeadlines);
  auto stats = client.stats(group);
  if (!stats) return std::nullopt;
  return std::move(stats).value();
}

std::optional<std::int64_t> counter(const mc::Stats& stats, const std::string& name) {
  for (const auto& [key, value] : stats)
    if (key == name) return util::parse_int<std::int64_t>(value);
  return std::nullopt;
}

struct ReloadCounts {
  std::int64_t reloads = 0, failures = 0;
};

std::optional<ReloadCounts> reload_counts(const State& state, const Node& proxy,
                                          const ConfigReload& how) {
  auto stats = from_probe_vantage(state, [&] { return proxy_stats(proxy, ""); });
  if (!stats) return std::nullopt;
  auto reloads = counter(*stats, how.reloads);
  auto failures = counter(*stats, how.failures);
  if (!reloads || !failures) return std::nullopt;
  return ReloadCounts{*reloads, *failures};
}

std::string see_log(const State& state, const Node& proxy) {
  return "see " + log_path(state.dir, proxy.name).string() + ": " + log_excerpt(state, proxy.name);
}

// The barrier of proxies.h: signals until the reload count has moved twice.
void reload_proxy(State& state, Node& proxy, const ConfigReload& how) {
  const auto before = reload_counts(state, proxy, how);
  if (!before)
    throw LabError(proxy.name + " (" + proxy.endpoint() + ") does not answer `stats` with " +
                   how.reloads + "; " + see_log(state, proxy));
  const auto deadline = Clock::now() + kReloadTimeout;
  ReloadCounts now = *before;
  for (std::int64_t target = before->reloads + 1; target <= before->reloads + 2; ++target) {
    while (now.reloads < target) {
      if (Clock::now() >= deadline)
        throw LabError(proxy.name + " (pid " + std::to_string(proxy.process.pid) +
                       ") did not reload its config within " +
                       std::to_string(std::chrono::seconds(kReloadTimeout).count()) + " s; " +
                       see_log(state, proxy));
      send_signal(proxy.process, how.signal);
      for (const auto tick = Clock::now() + kReloadTick;
           now.reloads < target && Clock::now() < tick;) {
        std::this_thread::sleep_for(kPoll);
        if (auto counts = reload_counts(state, proxy, how)) now = *counts;
      }
    }
  }
  if (now.failures > before->failures)
    throw LabError(proxy.name + " rejected its new config " +
                   config_path(state, proxy.name).string() + "; " + see_log(state, proxy));
}

// Whether `stats proxybe` lists every one of `labels` as bad.
bool all_marked_bad(const State& state, const Node& proxy, const std::vector<std::string>& labels) {
  auto bad = from_probe_vantage(state, [&] { return proxy_stats(proxy, "proxybe"); });
  if (!bad) return false;
  for (const auto& label : labels)
    if (!counter(*bad, "bad_" + label).value_or(0)) return false;
  return true;
}

std::int64_t wait_marked_bad(const State& state, const Node& proxy,
                             const std::vector<std::string>& labels) {
  const auto start = Clock::now();
  while (Clock::now() - start < kEjectSettleTimeout) {
    if (all_marked_bad(state, proxy, labels)) return ms_since(start);
    std::this_thread::sleep_for(kPoll);
  }
  return -1;
}

}  // namespace

void apply_proxy_config(State& state, Node& proxy, bool healthy) {
  write_proxy_config(state, proxy, healthy);
  const auto reload = proxy_kind(state).reload();
  if (reload && probe(proxy.process) == ProcState::running) {
    reload_proxy(state, proxy, *reload);
  } else {
    restart_nodes(state, {&proxy});
    // A shared nutcracker restarted every pool: those with an eject fault
    // are driven again until they route around it (the caller settles `proxy`).
    for (Node* mate : process_mates(state, proxy))
      if (mate != &proxy) settle_ejections(state, *mate);
  }
}

void settle_ejections(State& state, Node& proxy) {
  std::vector<std::string> ejected;
  for (const auto& fault : state.faults)
    if (fault.kind == FaultKind::eject && fault.proxy == proxy.name)
      ejected.push_back(fault.backend);
  if (ejected.empty()) return;
  std::int64_t ms = -1;
  switch (proxy_kind(state).unreachable_backend()) {
    case UnreachableBackend::ejected:
      ms = from_probe_vantage(state, [&] { return settle_ejection(proxy, true); }).ms;
      break;
    case UnreachableBackend::marked_bad:
      ms = wait_marked_bad(state, proxy, ejected);
      break;
  }
  for (auto& fault : state.faults)
    if (fault.kind == FaultKind::eject && fault.proxy == proxy.name) fault.settle_ms = ms;
}

void settle_proxy(State& state, Node& proxy) {
  if (find_fault(state, FaultKind::eject, proxy.name, "")) {
    settle_ejections(state, proxy);
    return;
  }
  // memcached's proxy has its config in every worker once reloaded.
  if (proxy_kind(state).unreachable_backend() != UnreachableBackend::ejected) return;
  wait_serving(state, proxy, "its restart");
}

void wait_serving(const State& state, const Node& proxy, const std::string& after) {
  const Settling settled = from_probe_vantage(state, [&] { return settle_ejection(proxy, false); });
  if (settled.ms < 0 && probe(proxy.process) == ProcState::dead)
    throw LabError(proxy.name + " exited after " + after + " on " + proxy.endpoint() + " (see " +
                   log_path(state.dir, proxy.name).string() +
                   "): " + log_excerpt(state, proxy.name));
  if (settled.ms < 0)
    throw LabError(
        proxy.name + " (" + proxy.endpoint() + ") did not answer a multi-get cleanly within " +
        std::to_string(kEjectSettleTimeout.count()) + " s after " + after +
        " (last: " + settled.last_reply + "); see " + log_path(state.dir, proxy.name).string());
}

}  // namespace ringwatch::lab
