#include "probes/canary/canary_probe.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <optional>
#include <random>
#include <set>

#include "lib/mc/client.h"
#include "lib/util/worker_pool.h"
#include "probes/canary/canary_keys.h"

namespace ringwatch::probes::canary {

namespace codes = report::codes;
namespace figures = report::figures;

namespace {

using Clock = std::chrono::steady_clock;
using report::Finding;
using report::Severity;
constexpr std::size_t kNone = static_cast<std::size_t>(-1);
// Learning writes this many candidates per canary it needs, so every backend
// gets its share with high probability under ketama's uneven split.
constexpr std::size_t kLearnOversample = 4;
constexpr int kLearnAttempts = 3;
// Keys listed in JSON evidence; counts are always complete.
constexpr std::size_t kMaxListedKeys = 100;

double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

enum class ReadClass { ok, miss, stale, foreign, error };

const char* to_string(ReadClass cls) {
  switch (cls) {
    case ReadClass::ok:
      return "ok";
    case ReadClass::miss:
      return "miss";
    case ReadClass::stale:
      return "stale";
    case ReadClass::foreign:
      return "foreign";
    case ReadClass::error:
      return "error";
  }
  return "error";
}

const char* reads_as(ReadClass cls) {
  switch (cls) {
    case ReadClass::ok:
      return "reads it";
    case ReadClass::miss:
      return "reads a miss";
    case ReadClass::stale:
      return "reads a stale value";
    case ReadClass::foreign:
      return "reads a foreign value";
    case ReadClass::error:
      return "gets an error";
  }
  return "gets an error";
}

struct Canary {
  std::string key;
  std::size_t writer = 0;       // proxy index that writes it each round
  std::size_t learned = kNone;  // backend the healthy ring puts it on
};

struct Cell {
  enum class Kind { miss, value, error } kind = Kind::miss;
  std::string value;
};

// Everything one pass of write, read and locate saw.
struct Observation {
  std::uint64_t round = 0;
  std::vector<std::optional<mc::Error>> write_error;   // per proxy
  std::vector<std::optional<mc::Error>> read_error;    // per proxy, whole batch
  std::vector<std::vector<Cell>> reads;                // [proxy][canary]
  std::vector<std::optional<mc::Error>> locate_error;  // per backend
  std::vector<mc::Values> held;                        // [backend]
  double write_ms = 0, read_ms = 0, locate_ms = 0;
  std::size_t reads_issued = 0, locates_issued = 0, writes_issued = 0;

  bool proxy_down(std::size_t proxy) const {
    return write_error[proxy].has_value() || read_error[proxy].has_value();
  }
  bool backend_down(std::size_t backend) const { return locate_error[backend].has_value(); }
};

struct KeyVerdict {
  bool written = false;              // the writer's batch went through
  std::size_t writer_route = kNone;  // backend holding the writer's value
  std::vector<ReadClass> cls;        // per proxy
  std::vector<std::size_t> route;    // per proxy, kNone = unknown
  std::size_t consensus = kNone;     // strict-majority route
  bool all_ok(const Observation& obs) const {
    for (std::size_t q = 0; q < cls.size(); ++q) {
      if (!obs.proxy_down(q) && cls[q] != ReadClass::ok) return false;
    }
    return true;
  }
};

// The route a strict majority of the responsive proxies agrees on, or kNone.
std::size_t majority_route(const KeyVerdict& verdict, const Observation& obs) {
  std::size_t responsive = 0;
  std::map<std::size_t, std::size_t> votes;
  for (std::size_t q = 0; q < verdict.route.size(); ++q) {
    if (obs.proxy_down(q)) continue;
    ++responsive;
    if (verdict.route[q] != kNone) ++votes[verdict.route[q]];
  }
  for (const auto& [backend, count] : votes) {
    if (2 * count > responsive) return backend;
  }
  return kNone;
}

std::string join_names(const std::vector<std::string>& names) {
  if (names.empty()) return "";
  if (names.size() == 1) return names[0];
  std::string text;
  for (std::size_t i = 0; i + 1 < names.size(); ++i) text += (i ? ", " : "") + names[i];
  return text + " and " + names.back();
}

std::string error_reason(const mc::Error& error) {
  switch (error.kind) {
    case mc::ErrorKind::connect_refused:
      return "connect refused";
    case mc::ErrorKind::timeout:
      return "timeout";
    case mc::ErrorKind::protocol:
      return "protocol error";
    case mc::ErrorKind::server_error:
      return "server error";
    case mc::ErrorKind::other:
      return "error";
  }
  return "error";
}

std::string spec_fingerprint(const spec::ClusterSpec& spec) {
  std::string text =
      spec.name + "|" + spec.canary.key_prefix + "|" + std::to_string(spec.canary.keys_per_backend);
  for (const auto& proxy : spec.proxies)
    text += "|p:" + proxy.name + "@" + proxy.client.to_string();
  for (const auto& backend : spec.backends) {
    text += "|b:" + backend.name + "@" + backend.endpoint().to_string();
  }
  return text;
}

}  // namespace

struct CanaryProbe::State {
  std::string fingerprint;
  std::vector<std::unique_ptr<mc::Client>> proxy_clients, backend_clients;
  std::unique_ptr<WorkerPool> pool;
  std::vector<Canary> canaries;  // the learned key set; empty = learn first
  bool relearn = false;
  std::uint64_t session = 0;  // random, so two probes of one cluster never share keys
  std::uint64_t next_round = 1;
  std::uint64_t learned_generation = 0;

  const spec::ClusterSpec* spec = nullptr;

  std::uint64_t new_round() { return (session << 24) | next_round++; }

  void reset(const spec::ClusterSpec& cluster) {
    fingerprint = spec_fingerprint(cluster);
    proxy_clients.clear();
    backend_clients.clear();
    proxy_clients.resize(cluster.proxies.size());
    backend_clients.resize(cluster.backends.size());
    const std::size_t endpoints = std::max(cluster.proxies.size(), cluster.backends.size());
    pool = std::make_unique<WorkerPool>(std::min<std::size_t>(endpoints, 32));
    canaries.clear();
  }

  mc::Deadlines deadlines() const { return {spec->timeouts.connect, spec->timeouts.io}; }

  mc::Client& proxy_client(std::size_t q) {
    if (!proxy_clients[q]) {
      proxy_clients[q] = std::make_unique<mc::Client>(spec->proxies[q].client, deadlines());
    }
    return *proxy_clients[q];
  }
  mc::Client& backend_client(std::size_t b) {
    if (!backend_clients[b]) {
      backend_clients[b] = std::make_unique<mc::Client>(spec->backends[b].endpoint(), deadlines());
    }
    return *backend_clients[b];
  }

  // One pass: every proxy writes its canaries, every proxy reads all of them,
  // every backend is asked for all of them. `writer_of` lets discovery write
  // through a proxy other than the canary's writer.
  Observation observe(const std::vector<Canary>& keys, std::uint64_t round, bool do_reads = true);
  // For canaries a proxy missed even on recheck: that proxy writes the canary
  // itself and the backends are asked where it landed.
  void discover_routes(const std::vector<Canary>& keys, std::vector<KeyVerdict>& verdicts,
                       const Observation& obs);
  std::vector<KeyVerdict> analyze(const std::vector<Canary>& keys, const Observation& obs) const;
  double learn(report::Report& report);
};

namespace {

std::vector<std::string> key_list(const std::vector<Canary>& keys) {
  std::vector<std::string> list;
  list.reserve(keys.size());
  for (const Canary& canary : keys) list.push_back(canary.key);
  return list;
}

}  // namespace

Observation CanaryProbe::State::observe(const std::vector<Canary>& keys, std::uint64_t round,
                                        bool do_reads) {
  const std::size_t proxies = spec->proxies.size();
  const std::size_t backends = spec->backends.size();
  Observation obs;
  obs.round = round;
  obs.write_error.resize(proxies);
  obs.read_error.resize(proxies);
  obs.reads.assign(proxies, {});
  obs.locate_error.resize(backends);
  obs.held.resize(backends);
  const std::vector<std::string> all_keys = key_list(keys);

  auto start = Clock::now();
  pool->run_all(proxies, [&](std::size_t q) {
    std::vector<mc::Item> items;
    for (const Canary& canary : keys) {
      if (canary.writer != q) continue;
      items.push_back({canary.key, encode_value(spec->proxies[q].name, round, canary.key,
                                                spec->canary.value_size)});
    }
    if (items.empty()) return;
    auto result = proxy_client(q).set_many(items, spec->canary.ttl);
    if (!result.ok()) {
      proxy_clients[q].reset();  // reconnect next time
      // Some sets refused by the proxy (its backend failed) is the backend's
      // story, told by the reads; only a proxy we cannot talk to is down.
      if (result.error().kind != mc::ErrorKind::server_error) obs.write_error[q] = result.error();
    }
  });
  obs.write_ms = ms_since(start);
  for (const Canary& canary : keys) obs.writes_issued += obs.write_error[canary.writer] ? 0 : 1;

  start = Clock::now();
  if (do_reads) {
    pool->run_all(proxies, [&](std::size_t q) {
      std::vector<Cell>& cells = obs.reads[q];
      cells.assign(keys.size(), Cell{});
      if (obs.write_error[q]) {
        obs.read_error[q] = obs.write_error[q];  // unreachable: don't wait twice
        return;
      }
      auto fill = [&](const std::vector<std::size_t>& indexes, const mc::Values& values) {
        for (std::size_t i : indexes) {
          auto found = values.find(keys[i].key);
          if (found != values.end()) cells[i] = {Cell::Kind::value, found->second};
        }
      };
      std::vector<std::size_t> everything(keys.size());
      for (std::size_t i = 0; i < keys.size(); ++i) everything[i] = i;
      auto result = proxy_client(q).get_many(all_keys);
      if (result.ok()) {
        fill(everything, result.value());
        return;
      }
      const mc::Error error = result.error();
      proxy_clients[q].reset();
      if (error.kind != mc::ErrorKind::server_error && error.kind != mc::ErrorKind::protocol) {
        obs.read_error[q] = error;
        return;
      }
      // A proxy fails a whole multi-get when one backend fails; ask again per
      // learned backend so only that backend's canaries count as errors.
      std::map<std::size_t, std::vector<std::size_t>> groups;
      for (std::size_t i = 0; i < keys.size(); ++i) groups[keys[i].learned].push_back(i);
      for (const auto& [backend, indexes] : groups) {
        std::vector<std::string> group_keys;
        for (std::size_t i : indexes) group_keys.push_back(keys[i].key);
        auto group = proxy_client(q).get_many(group_keys);
        if (group.ok()) {
          fill(indexes, group.value());
        } else {
          proxy_clients[q].reset();
          for (std::size_t i : indexes) cells[i] = {Cell::Kind::error, group.error().message};
        }
      }
    });
    for (std::size_t q = 0; q < proxies; ++q)
      obs.reads_issued += obs.read_error[q] ? 0 : keys.size();
  }
  obs.read_ms = ms_since(start);

  start = Clock::now();
  pool->run_all(backends, [&](std::size_t b) {
    auto result = backend_client(b).get_many(all_keys);
    if (result.ok()) {
      obs.held[b] = std::move(result).value();
    } else {
      obs.locate_error[b] = result.error();
      backend_clients[b].reset();
    }
  });
  obs.locate_ms = ms_since(start);
  for (std::size_t b = 0; b < backends; ++b)
    obs.locates_issued += obs.locate_error[b] ? 0 : keys.size();
  return obs;
}

std::vector<KeyVerdict> CanaryProbe::State::analyze(const std::vector<Canary>& keys,
                                                    const Observation& obs) const {
  const std::size_t proxies = spec->proxies.size();
  const std::size_t backends = spec->backends.size();
  std::vector<KeyVerdict> verdicts(keys.size());
  for (std::size_t i = 0; i < keys.size(); ++i) {
    const Canary& canary = keys[i];
    KeyVerdict& verdict = verdicts[i];
    verdict.cls.assign(proxies, ReadClass::error);
    verdict.route.assign(proxies, kNone);
    verdict.written = !obs.write_error[canary.writer];
    const std::string expected = encode_value(spec->proxies[canary.writer].name, obs.round,
                                              canary.key, spec->canary.value_size);
    // Where each value of this key is held.
    auto holder_of = [&](const std::string& value) {
      std::size_t holder = kNone;
      for (std::size_t b = 0; b < backends; ++b) {
        auto found = obs.held[b].find(canary.key);
        if (found == obs.held[b].end() || found->second != value) continue;
        if (holder != kNone) return kNone;  // ambiguous
        holder = b;
      }
      return holder;
    };
    verdict.writer_route = verdict.written ? holder_of(expected) : kNone;
    if (verdict.written) verdict.route[canary.writer] = verdict.writer_route;

    for (std::size_t q = 0; q < proxies; ++q) {
      if (obs.proxy_down(q) || obs.reads[q].empty()) continue;
      const Cell& cell = obs.reads[q][i];
      switch (cell.kind) {
        case Cell::Kind::error:
          verdict.cls[q] = ReadClass::error;
          break;
        case Cell::Kind::miss:
          verdict.cls[q] = ReadClass::miss;
          break;
        case Cell::Kind::value:
          if (cell.value == expected && verdict.written) {
            verdict.cls[q] = ReadClass::ok;
            if (q != canary.writer) verdict.route[q] = verdict.writer_route;
          } else {
            verdict.cls[q] = decode_value(cell.value) ? ReadClass::stale : ReadClass::foreign;
            verdict.route[q] = holder_of(cell.value);
          }
          break;
      }
    }

    verdict.consensus = majority_route(verdict, obs);
  }
  return verdicts;
}

void CanaryProbe::State::discover_routes(const std::vector<Canary>& keys,
                                         std::vector<KeyVerdict>& verdicts,
                                         const Observation& obs) {
  const std::size_t proxies = spec->proxies.size();
  for (std::size_t q = 0; q < proxies; ++q) {
    if (obs.proxy_down(q)) continue;
    std::vector<Canary> probe_keys;
    std::vector<std::size_t> positions;
    for (std::size_t i = 0; i < keys.size(); ++i) {
      if (verdicts[i].route[q] == kNone && verdicts[i].cls[q] == ReadClass::miss) {
        probe_keys.push_back({keys[i].key, q, keys[i].learned});
        positions.push_back(i);
      }
    }
    if (probe_keys.empty()) continue;
    // One proxy at a time, so two proxies' discovery writes cannot overwrite
    // each other on a shared backend.
    const std::uint64_t round = new_round();
    Observation found = observe(probe_keys, round, /*do_reads=*/false);
    if (found.write_error[q]) continue;
    for (std::size_t j = 0; j < probe_keys.size(); ++j) {
      const std::string value =
          encode_value(spec->proxies[q].name, round, probe_keys[j].key, spec->canary.value_size);
      for (std::size_t b = 0; b < spec->backends.size(); ++b) {
        auto held = found.held[b].find(probe_keys[j].key);
        if (held != found.held[b].end() && held->second == value) {
          verdicts[positions[j]].route[q] = b;
        }
      }
    }
  }
}

double CanaryProbe::State::learn(report::Report& report) {
  const auto start = Clock::now();
  const std::size_t proxies = spec->proxies.size();
  const std::size_t backends = spec->backends.size();
  const std::size_t per_backend = proxies * spec->canary.keys_per_backend;
  const std::uint64_t generation_round = new_round();
  char generation[24];
  std::snprintf(generation, sizeof generation, "%llx",
                static_cast<unsigned long long>(generation_round));

  std::vector<std::vector<std::string>> pool_by_backend(backends);
  std::size_t next_index = 0;
  Observation last;
  for (int attempt = 0; attempt < kLearnAttempts; ++attempt) {
    std::vector<Canary> candidates;
    const std::size_t count = kLearnOversample * per_backend * backends;
    for (std::size_t j = 0; j < count; ++j, ++next_index) {
      candidates.push_back({make_key(spec->canary.key_prefix, spec->name, generation, next_index),
                            next_index % proxies, kNone});
    }
    last = observe(candidates, new_round());
    const auto verdicts = analyze(candidates, last);
    for (std::size_t i = 0; i < candidates.size(); ++i) {
      if (verdicts[i].consensus != kNone) {
        pool_by_backend[verdicts[i].consensus].push_back(candidates[i].key);
      }
    }
    bool covered = true;
    for (std::size_t b = 0; b < backends; ++b) {
      if (!last.backend_down(b) && pool_by_backend[b].size() < per_backend) covered = false;
    }
    if (covered) break;
  }

  canaries.clear();
  for (std::size_t b = 0; b < backends; ++b) {
    const std::size_t take = std::min(per_backend, pool_by_backend[b].size());
    for (std::size_t j = 0; j < take; ++j) {
      canaries.push_back({pool_by_backend[b][j], j % proxies, b});
    }
  }
  learned_generation = generation_round;
  relearn = false;
  const double elapsed = ms_since(start);
  report.figures[figures::kLearnMs] = elapsed;
  return elapsed;
}

CanaryProbe::CanaryProbe() : state_(std::make_unique<State>()) {
  std::random_device device;
  state_->session = (static_cast<std::uint64_t>(device()) & 0xffffffu) | 1u;
}

CanaryProbe::~CanaryProbe() = default;

namespace {

// Turns one round's verdicts into findings and headlines, one method per kind
// of finding. Canaries learned on a backend the probe cannot reach are left to
// that backend's finding.
class RoundFindings {
 public:
  RoundFindings(const spec::ClusterSpec& cluster, const std::vector<Canary>& round_canaries,
                const std::vector<KeyVerdict>& round_verdicts, const Observation& observation,
                report::Report& round_report)
      : spec(cluster),
        canaries(round_canaries),
        verdicts(round_verdicts),
        obs(observation),
        report(round_report),
        proxies(cluster.proxies.size()),
        backends(cluster.backends.size()),
        per_backend(proxies * cluster.canary.keys_per_backend) {}

  std::vector<Finding> findings;
  std::vector<std::string> headlines;  // most urgent first
  std::size_t proxies_down = 0;
  bool relearn = false;  // learn the placement again next round

  // Proxies the probe cannot use.
  void unreachable_proxies() {
    for (std::size_t q = 0; q < proxies; ++q) {
      if (!obs.proxy_down(q)) continue;
      ++proxies_down;
      const mc::Error& error = obs.write_error[q] ? *obs.write_error[q] : *obs.read_error[q];
      const std::string summary =
          "proxy " + proxy_name(q) + " unreachable (" + error_reason(error) + ")";
      finding(codes::kProxyUnreachable, Severity::critical, {.proxy = proxy_name(q)}, summary)
          .with("error", error.message)
          .with("phase", std::string(obs.write_error[q] ? "write" : "read"));
      headlines.push_back(summary);
    }
  }

  // Backends the probe cannot reach: their canaries' disagreements are theirs.
  void unreachable_backends() {
    for (std::size_t b = 0; b < backends; ++b) {
      if (!obs.backend_down(b)) continue;
      const mc::Error& error = *obs.locate_error[b];
      std::vector<std::string> erroring, rerouting;
      std::size_t learned_here = 0;
      for (std::size_t q = 0; q < proxies; ++q) {
        if (obs.proxy_down(q)) continue;
        std::size_t errors = 0, oks = 0, total = 0;
        for (std::size_t i = 0; i < canaries.size(); ++i) {
          if (canaries[i].learned != b || !verdicts[i].written) continue;
          ++total;
          errors += verdicts[i].cls[q] == ReadClass::error || verdicts[i].cls[q] == ReadClass::miss;
          oks += verdicts[i].cls[q] == ReadClass::ok;
        }
        learned_here = std::max(learned_here, total);
        if (total == 0) continue;
        if (oks > 0)
          rerouting.push_back(proxy_name(q));
        else if (errors == total)
          erroring.push_back(proxy_name(q));
      }
      std::string summary = "backend " + backend_name(b);
      if (error.kind == mc::ErrorKind::timeout) {
        summary += " not answering within " + std::to_string(spec.timeouts.io.count()) +
                   " ms from the probe";
      } else {
        summary += " unreachable from the probe (" + error_reason(error) + ")";
      }
      if (!erroring.empty() && rerouting.empty()) {
        summary += erroring.size() + proxies_down == proxies ? " and from all proxies"
                                                             : " and from " + join_names(erroring);
      } else if (!rerouting.empty()) {
        summary += "; " + join_names(rerouting) + " route its canaries to other backends";
      }
      finding(error.kind == mc::ErrorKind::timeout ? codes::kBackendTimeout
                                                   : codes::kBackendUnreachable,
              Severity::critical, {.backend = backend_name(b)}, summary)
          .with("error", error.message)
          .with("canaries_learned_there", static_cast<std::int64_t>(learned_here))
          .with("proxies_failing", erroring)
          .with("proxies_routing_elsewhere", rerouting);
      headlines.push_back(summary);
    }
  }

  // Ring agreement, per proxy, against the consensus route.
  void ring_divergence() {
    for (std::size_t q = 0; q < proxies; ++q) {
      if (obs.proxy_down(q)) continue;
      std::map<std::size_t, std::size_t> total_on, routed_on;          // by consensus backend
      std::map<std::size_t, std::map<std::size_t, std::size_t>> sent;  // consensus -> where q sent
      std::vector<std::string> keys;
      std::set<std::size_t> routed_backends;
      for (std::size_t i = 0; i < canaries.size(); ++i) {
        const KeyVerdict& verdict = verdicts[i];
        if (!verdict.written || affected_by_down_backend(canaries[i])) continue;
        if (verdict.route[q] != kNone) routed_backends.insert(verdict.route[q]);
        if (verdict.consensus == kNone) continue;
        ++total_on[verdict.consensus];
        if (verdict.route[q] == verdict.consensus) {
          ++routed_on[verdict.consensus];
        } else if (verdict.route[q] != kNone || verdict.cls[q] != ReadClass::error) {
          ++sent[verdict.consensus][verdict.route[q]];
          if (keys.size() < kMaxListedKeys) keys.push_back(canaries[i].key);
        }
      }
      // Per-proxy routing, for metrics; '/' never occurs in a spec name.
      report.figures[figures::backends_routed(proxy_name(q))] =
          static_cast<double>(routed_backends.size());
      if (sent.empty()) continue;
      std::size_t diverging = 0, considered = 0;
      for (const auto& [b, count] : total_on) considered += count;
      for (const auto& [b, where] : sent) {
        for (const auto& [dest, count] : where) diverging += count;
      }
      // The backend this proxy misses entirely, if any, leads the summary.
      std::vector<std::size_t> missing;
      for (const auto& [b, count] : total_on) {
        if (routed_on[b] == 0 && !routed_backends.contains(b)) missing.push_back(b);
      }
      const std::size_t lead = missing.empty() ? sent.begin()->first : missing.front();
      auto destinations = [&](std::size_t consensus) {
        std::vector<std::pair<std::size_t, std::size_t>> list(sent[consensus].begin(),
                                                              sent[consensus].end());
        std::sort(list.begin(), list.end(),
                  [](const auto& x, const auto& y) { return x.second > y.second; });
        std::vector<std::string> parts;
        for (const auto& [dest, count] : list) {
          parts.push_back(
              (dest == kNone ? std::string("nowhere it can be found") : backend_name(dest)) + " (" +
              std::to_string(count) + ")");
        }
        return join_names(parts);
      };
      // What the other proxies do with the lead backend's canaries.
      std::vector<std::string> agreeing;
      std::size_t agreeing_count = 0;
      bool same_count = true;
      for (std::size_t other = 0; other < proxies; ++other) {
        if (other == q || obs.proxy_down(other)) continue;
        std::size_t count = 0;
        for (std::size_t i = 0; i < canaries.size(); ++i) {
          if (verdicts[i].consensus == lead && verdicts[i].route[other] == lead &&
              !affected_by_down_backend(canaries[i])) {
            ++count;
          }
        }
        if (count == 0) continue;
        if (!agreeing.empty() && count != agreeing_count) same_count = false;
        agreeing.push_back(proxy_name(other));
        agreeing_count = count;
      }
      std::string summary =
          "proxy " + proxy_name(q) + " routes " + std::to_string(routed_on[lead]) + " of " +
          std::to_string(total_on[lead]) + " canaries to backend " + backend_name(lead);
      if (!agreeing.empty()) {
        summary += "; " + join_names(agreeing) + (agreeing.size() == 1 ? " routes " : " route ") +
                   (same_count ? std::to_string(agreeing_count) : std::string("theirs")) + " there";
      }
      summary += "; " + proxy_name(q) + " sends them to " + destinations(lead);
      if (sent.size() > 1) {
        summary += " (" + std::to_string(diverging) + " of " + std::to_string(considered) +
                   " canaries diverge over " + std::to_string(sent.size()) + " backends)";
      }
      Finding& f = finding(codes::kRingDivergence, Severity::critical,
                           {.proxy = proxy_name(q), .backend = backend_name(lead)}, summary);
      std::vector<std::string> missing_names, per_backend_detail, routed_names;
      for (std::size_t b : missing) missing_names.push_back(backend_name(b));
      for (std::size_t b : routed_backends) routed_names.push_back(backend_name(b));
      for (const auto& [b, where] : sent) {
        per_backend_detail.push_back(backend_name(b) + ": " + std::to_string(routed_on[b]) +
                                     " of " + std::to_string(total_on[b]) +
                                     " routed there, sent to " + destinations(b));
      }
      f.with("diverging_canaries", static_cast<std::int64_t>(diverging))
          .with("considered_canaries", static_cast<std::int64_t>(considered))
          .with("routed_to_backend", static_cast<std::int64_t>(routed_on[lead]))
          .with("canaries_for_backend", static_cast<std::int64_t>(total_on[lead]))
          .with("missing_backends", missing_names)
          .with("routed_backends", routed_names)
          .with("by_backend", per_backend_detail)
          .with("keys", keys);
      if (!missing.empty()) {
        divergence_headlines.push_back(proxy_name(q) + " is missing " +
                                       backend_name(missing.front()));
      } else {
        divergence_headlines.push_back(proxy_name(q) + " routes " + std::to_string(diverging) +
                                       " of " + std::to_string(considered) +
                                       " canaries differently");
      }
    }
  }

  // Canaries with no majority route at all (e.g. two proxies that disagree).
  void ring_disagreement() {
    {
      std::vector<std::string> keys;
      std::size_t count = 0;
      for (std::size_t i = 0; i < canaries.size(); ++i) {
        const KeyVerdict& verdict = verdicts[i];
        if (!verdict.written || affected_by_down_backend(canaries[i]) ||
            verdict.consensus != kNone || proxies - proxies_down < 2) {
          continue;
        }
        std::set<std::size_t> routes;
        for (std::size_t q = 0; q < proxies; ++q) {
          if (!obs.proxy_down(q) && verdict.route[q] != kNone) routes.insert(verdict.route[q]);
        }
        if (routes.size() < 2) continue;
        ++count;
        if (keys.size() < kMaxListedKeys) keys.push_back(canaries[i].key);
      }
      if (count > 0) {
        const std::string summary =
            "proxies disagree on " + std::to_string(count) + " canaries with no majority route";
        finding(codes::kRingDisagreement, Severity::critical, {}, summary).with("keys", keys);
        divergence_headlines.push_back(summary);
      }
    }
    if (!divergence_headlines.empty()) {
      std::string headline = "ring divergence: ";
      for (std::size_t i = 0; i < divergence_headlines.size(); ++i) {
        headline += (i ? "; " : "") + divergence_headlines[i];
      }
      headlines.insert(headlines.begin(), headline);
    }
  }

  // Backends no proxy routes to although the probe reaches them.
  void unrouted_backends() {
    for (std::size_t b = 0; b < backends; ++b) {
      if (obs.backend_down(b)) continue;
      std::size_t learned_here = 0, consensus_here = 0;
      for (std::size_t i = 0; i < canaries.size(); ++i) {
        learned_here += canaries[i].learned == b;
        consensus_here += verdicts[i].consensus == b;
      }
      if (consensus_here > 0) continue;
      std::string summary = "no proxy routes canaries to backend " + backend_name(b) +
                            " (configured, reachable from the probe)";
      finding(codes::kBackendNotRouted, Severity::critical, {.backend = backend_name(b)}, summary)
          .with("canaries_learned_there", static_cast<std::int64_t>(learned_here))
          .with("canaries_needed", static_cast<std::int64_t>(per_backend));
      headlines.push_back(summary);
      relearn = true;  // coverage may come back when the proxies do
    }
  }

  // Cross-proxy read-your-writes, after the recheck.
  void inconsistent_reads() {
    {
      std::map<std::tuple<std::size_t, std::size_t, ReadClass>, std::size_t> groups;
      std::set<std::size_t> bad_keys;
      std::vector<std::string> keys;
      std::map<std::size_t, std::size_t> involvement;
      std::size_t considered = 0, foreign = 0;
      for (std::size_t i = 0; i < canaries.size(); ++i) {
        const KeyVerdict& verdict = verdicts[i];
        if (!verdict.written || affected_by_down_backend(canaries[i])) continue;
        ++considered;
        for (std::size_t q = 0; q < proxies; ++q) {
          if (obs.proxy_down(q) || verdict.cls[q] == ReadClass::ok) continue;
          ++groups[{canaries[i].writer, q, verdict.cls[q]}];
          ++involvement[q];
          ++involvement[canaries[i].writer];
          foreign += verdict.cls[q] == ReadClass::foreign;
          if (bad_keys.insert(i).second && keys.size() < kMaxListedKeys) {
            keys.push_back(canaries[i].key);
          }
        }
      }
      if (!bad_keys.empty()) {
        auto biggest =
            std::max_element(groups.begin(), groups.end(),
                             [](const auto& x, const auto& y) { return x.second < y.second; });
        const auto& [writer, reader, cls] = biggest->first;
        std::string summary = std::to_string(bad_keys.size()) + " of " +
                              std::to_string(considered) +
                              " canaries read inconsistently: written via " + proxy_name(writer) +
                              ", " + proxy_name(reader) + " " + reads_as(cls);
        std::vector<std::string> detail;
        for (const auto& [group, count] : groups) {
          const auto& [w, r, c] = group;
          detail.push_back("written via " + proxy_name(w) + ", read via " + proxy_name(r) + ": " +
                           to_string(c) + " x" + std::to_string(count));
        }
        const auto most =
            std::max_element(involvement.begin(), involvement.end(),
                             [](const auto& x, const auto& y) { return x.second < y.second; });
        finding(codes::kInconsistentReads, Severity::critical, {.proxy = proxy_name(most->first)},
                summary)
            .with("inconsistent_canaries", static_cast<std::int64_t>(bad_keys.size()))
            .with("considered_canaries", static_cast<std::int64_t>(considered))
            .with("groups", detail)
            .with("keys", keys);
        headlines.push_back(summary);
      }
      if (foreign > 0) {
        finding(codes::kForeignValues, Severity::warning, {},
                std::to_string(foreign) +
                    " reads returned a value that is not a ringwatch canary "
                    "under prefix \"" +
                    spec.canary.key_prefix + "\" (another writer uses it)");
      }
    }
  }

  void transient_disagreement(std::size_t transient) {
    if (transient > 0) {
      finding(codes::kTransientDisagreement, Severity::info, {},
              std::to_string(transient) + " canaries disagreed at first and agreed on recheck")
          .with("canaries", static_cast<std::int64_t>(transient));
    }
  }

  // Coverage short of keys_per_backend on a reachable backend that is routed.
  void coverage() {
    for (std::size_t b = 0; b < backends; ++b) {
      std::size_t learned_here = 0;
      for (const Canary& canary : canaries) learned_here += canary.learned == b;
      if (obs.backend_down(b) || learned_here == 0 || learned_here >= per_backend) continue;
      finding(codes::kCoverageShort, Severity::warning, {.backend = backend_name(b)},
              "backend " + backend_name(b) + " holds " + std::to_string(learned_here) + " of the " +
                  std::to_string(per_backend) + " canaries coverage needs")
          .with("canaries", static_cast<std::int64_t>(learned_here));
      relearn = true;
    }
  }

  // The ring changed for everyone (a migration step): learn it again next round.
  void ring_moved() {
    bool any_backend_down = false;
    for (std::size_t b = 0; b < backends; ++b) any_backend_down |= obs.backend_down(b);
    if (!any_backend_down) {
      for (std::size_t i = 0; i < canaries.size(); ++i) {
        const KeyVerdict& verdict = verdicts[i];
        if (!verdict.written || verdict.consensus == kNone) continue;
        bool unanimous = true;
        for (std::size_t q = 0; q < proxies; ++q) {
          if (!obs.proxy_down(q) && verdict.route[q] != verdict.consensus) unanimous = false;
        }
        if (unanimous && verdict.consensus != canaries[i].learned) {
          relearn = true;
          break;
        }
      }
    }
  }

 private:
  std::string proxy_name(std::size_t q) const { return spec.proxies[q].name; }
  std::string backend_name(std::size_t b) const {
    return b == kNone ? std::string("an unknown backend") : spec.backends[b].name;
  }
  bool affected_by_down_backend(const Canary& canary) const {
    return canary.learned != kNone && obs.backend_down(canary.learned);
  }
  Finding& finding(std::string code, Severity severity, report::Subject subject,
                   std::string summary) {
    findings.push_back(Finding{report::checks::kCanary,
                               std::move(code),
                               severity,
                               std::move(subject),
                               std::move(summary),
                               {}});
    return findings.back();
  }

  const spec::ClusterSpec& spec;
  const std::vector<Canary>& canaries;
  const std::vector<KeyVerdict>& verdicts;
  const Observation& obs;
  report::Report& report;
  const std::size_t proxies, backends, per_backend;
  std::vector<std::string> divergence_headlines;
};

}  // namespace

void CanaryProbe::run(const spec::ClusterSpec& spec, report::Report& report) {
  State& st = *state_;
  const auto round_start = Clock::now();
  st.spec = &spec;
  if (st.fingerprint != spec_fingerprint(spec)) st.reset(spec);
  const std::size_t proxies = spec.proxies.size();
  if (st.canaries.empty() || st.relearn) st.learn(report);

  const std::uint64_t round = st.new_round();
  Observation obs = st.observe(st.canaries, round);
  std::vector<KeyVerdict> verdicts = st.analyze(st.canaries, obs);

  // Read figures describe what clients would have seen: the first pass.
  std::map<ReadClass, std::size_t> read_counts;
  std::size_t reads_total = 0;
  for (std::size_t i = 0; i < st.canaries.size(); ++i) {
    if (!verdicts[i].written) continue;
    for (std::size_t q = 0; q < proxies; ++q) {
      if (obs.proxy_down(q)) continue;
      ++read_counts[verdicts[i].cls[q]];
      ++reads_total;
    }
  }

  auto affected_by_down_backend = [&](const Canary& canary) {
    return canary.learned != kNone && obs.backend_down(canary.learned);
  };

  // Recheck what disagrees (and is not explained by a backend the probe cannot reach).
  std::vector<std::size_t> disagreeing;
  for (std::size_t i = 0; i < st.canaries.size(); ++i) {
    if (!verdicts[i].written || affected_by_down_backend(st.canaries[i])) continue;
    const bool off_ring =
        verdicts[i].consensus == kNone || verdicts[i].consensus != st.canaries[i].learned;
    if (!verdicts[i].all_ok(obs) || off_ring) disagreeing.push_back(i);
  }
  std::size_t transient = 0;
  double recheck_ms = 0;
  if (!disagreeing.empty()) {
    const auto recheck_start = Clock::now();
    std::vector<Canary> subset;
    for (std::size_t i : disagreeing) subset.push_back(st.canaries[i]);
    Observation again = st.observe(subset, st.new_round());
    std::vector<KeyVerdict> fresh = st.analyze(subset, again);
    st.discover_routes(subset, fresh, again);
    // Discovery may have completed the vote.
    for (KeyVerdict& verdict : fresh) verdict.consensus = majority_route(verdict, again);
    for (std::size_t j = 0; j < disagreeing.size(); ++j) {
      if (fresh[j].all_ok(again) && fresh[j].consensus == subset[j].learned) ++transient;
      verdicts[disagreeing[j]] = std::move(fresh[j]);
    }
    // A proxy that failed only on the recheck is still reported below via obs.
    recheck_ms = ms_since(recheck_start);
  }

  RoundFindings found(spec, st.canaries, verdicts, obs, report);
  found.unreachable_proxies();
  found.unreachable_backends();
  found.ring_divergence();
  found.ring_disagreement();
  found.unrouted_backends();
  found.inconsistent_reads();
  found.transient_disagreement(transient);
  found.coverage();
  found.ring_moved();
  if (found.relearn) st.relearn = true;
  std::vector<Finding>& findings = found.findings;
  std::vector<std::string>& headlines = found.headlines;
  const std::size_t proxies_down = found.proxies_down;
  const std::size_t backends = spec.backends.size();

  // ---- Check result and figures ----
  report::CheckResult check{report::checks::kCanary, report::Status::ok, "", 0};
  for (const Finding& f : findings)
    check.status = report::worst(check.status, report::status_of(f.severity));
  if (proxies_down == proxies) {
    check.status = report::Status::unknown;
    headlines.insert(headlines.begin(), "no proxy reachable: nothing could be checked");
  }
  const std::size_t ok_reads = read_counts[ReadClass::ok];
  if (headlines.empty()) {
    check.summary = std::to_string(st.canaries.size()) + " canaries consistent through " +
                    std::to_string(proxies) + " proxies on " + std::to_string(backends) +
                    " backends";
  } else {
    check.summary = headlines.front();
  }
  auto& fig = report.figures;
  fig[figures::kKeys] = static_cast<double>(st.canaries.size());
  fig[figures::kWrites] = static_cast<double>(obs.writes_issued);
  fig[figures::kReads] = static_cast<double>(reads_total);
  fig[figures::kLocates] = static_cast<double>(obs.locates_issued);
  fig[figures::kOperations] =
      static_cast<double>(obs.writes_issued + obs.reads_issued + obs.locates_issued);
  fig[figures::kReadsOk] = static_cast<double>(ok_reads);
  fig[figures::kReadsMiss] = static_cast<double>(read_counts[ReadClass::miss]);
  fig[figures::kReadsStale] = static_cast<double>(read_counts[ReadClass::stale]);
  fig[figures::kReadsForeign] = static_cast<double>(read_counts[ReadClass::foreign]);
  fig[figures::kReadsError] = static_cast<double>(read_counts[ReadClass::error]);
  fig[figures::kInconsistentReads] = static_cast<double>(reads_total - ok_reads);
  fig[figures::kConsistencyRatio] = reads_total ? static_cast<double>(ok_reads) / reads_total : 0.0;
  fig[figures::kWriteMs] = obs.write_ms;
  fig[figures::kReadMs] = obs.read_ms;
  fig[figures::kLocateMs] = obs.locate_ms;
  fig[figures::kRecheckMs] = recheck_ms;
  fig[figures::kTransientCanaries] = static_cast<double>(transient);
  check.duration_ms = ms_since(round_start);
  fig[figures::kRoundMs] = check.duration_ms;
  report.checks.push_back(check);
  for (Finding& f : findings) report.add(std::move(f));
}

}  // namespace ringwatch::probes::canary
