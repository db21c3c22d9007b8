#include "probes/canary/canary_probe.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <optional>
#include <random>

#include "lib/mc/client.h"
#include "lib/util/deadlines.h"
#include "lib/util/worker_pool.h"
#include "probes/canary/canary_findings.h"
#include "probes/canary/canary_keys.h"
#include "probes/canary/canary_round.h"
#include "probes/check_findings.h"

namespace ringwatch::probes::canary {

namespace figures = report::figures;

namespace {

using Clock = std::chrono::steady_clock;
// Learning writes this many candidates per canary it needs, so every backend
// gets its share with high probability under ketama's uneven split.
constexpr std::size_t kLearnOversample = 4;
constexpr int kLearnAttempts = 3;

double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

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

// What the recheck did: how many canaries disagreed at first and agreed on
// recheck, and how long it took (0 without a recheck).
struct Recheck {
  std::size_t transient = 0;
  double ms = 0;
};

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

  // Peers given up on for the rest of this round, with the error: those
  // that did not answer in time (a stall costs the io deadline) or did not
  // speak the protocol (garbage, or a reply past the client's bounds). The
  // round's later passes (learning attempts, the recheck, discovery) take the
  // error as given instead of asking again; a refused connection is cheap and
  // may heal within the round, so it is asked again. Per index, so the
  // pool's threads each write their own slot.
  std::vector<std::optional<mc::Error>> stalled_proxies, stalled_backends;

  void start_round() {
    stalled_proxies.assign(spec->proxies.size(), std::nullopt);
    stalled_backends.assign(spec->backends.size(), std::nullopt);
  }
  static void note_stall(std::optional<mc::Error>& slot, const mc::Error& error) {
    if (error.kind == mc::ErrorKind::timeout || error.kind == mc::ErrorKind::protocol) {
      slot = error;
    }
  }

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

  util::Deadlines deadlines() const { return spec->timeouts.deadlines(); }

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
  // Canaries that disagree in `obs` (and are not explained by a backend the
  // probe cannot reach) are written, read and located once more, and their
  // verdicts replaced.
  Recheck recheck(const Observation& obs, std::vector<KeyVerdict>& verdicts);
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
    if (stalled_proxies[q]) {
      obs.write_error[q] = stalled_proxies[q];
      return;
    }
    auto result = proxy_client(q).set_many(items, spec->canary.ttl);
    if (!result.ok()) {
      note_stall(stalled_proxies[q], result.error());
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
      if (obs.write_error[q] || stalled_proxies[q]) {
        // Unreachable: don't wait twice.
        obs.read_error[q] = obs.write_error[q] ? obs.write_error[q] : stalled_proxies[q];
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
      note_stall(stalled_proxies[q], error);
      proxy_clients[q].reset();
      // A reply that is not memcached protocol is the proxy's own failure:
      // it is down, named, like one that does not answer.
      if (error.kind != mc::ErrorKind::server_error) {
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
        auto group = stalled_proxies[q] ? Result<mc::Values, mc::Error>(*stalled_proxies[q])
                                        : proxy_client(q).get_many(group_keys);
        if (group.ok()) {
          fill(indexes, group.value());
        } else {
          note_stall(stalled_proxies[q], group.error());
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
    if (stalled_backends[b]) {
      obs.locate_error[b] = stalled_backends[b];
      return;
    }
    auto result = backend_client(b).get_many(all_keys);
    if (result.ok()) {
      obs.held[b] = std::move(result).value();
    } else {
      note_stall(stalled_backends[b], result.error());
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

Recheck CanaryProbe::State::recheck(const Observation& obs, std::vector<KeyVerdict>& verdicts) {
  std::vector<std::size_t> disagreeing;
  for (std::size_t i = 0; i < canaries.size(); ++i) {
    const Canary& canary = canaries[i];
    const bool behind_down_backend = canary.learned != kNone && obs.backend_down(canary.learned);
    if (!verdicts[i].written || behind_down_backend) continue;
    const bool off_ring = verdicts[i].consensus == kNone || verdicts[i].consensus != canary.learned;
    if (!verdicts[i].all_ok(obs) || off_ring) disagreeing.push_back(i);
  }
  if (disagreeing.empty()) return {};
  const auto start = Clock::now();
  std::vector<Canary> subset;
  for (std::size_t i : disagreeing) subset.push_back(canaries[i]);
  Observation again = observe(subset, new_round());
  std::vector<KeyVerdict> fresh = analyze(subset, again);
  discover_routes(subset, fresh, again);
  // Discovery may have completed the vote.
  for (KeyVerdict& verdict : fresh) verdict.consensus = majority_route(verdict, again);
  Recheck recheck;
  for (std::size_t j = 0; j < disagreeing.size(); ++j) {
    if (fresh[j].all_ok(again) && fresh[j].consensus == subset[j].learned) ++recheck.transient;
    verdicts[disagreeing[j]] = std::move(fresh[j]);
  }
  // A proxy that failed only on the recheck is still reported via the first pass.
  recheck.ms = ms_since(start);
  return recheck;
}

namespace {

// Read figures describe what clients would have seen: the first pass.
void read_figures(const std::vector<KeyVerdict>& verdicts, const Observation& obs,
                  std::map<std::string, double>& fig) {
  std::map<ReadClass, std::size_t> counts;
  std::size_t total = 0;
  for (const KeyVerdict& verdict : verdicts) {
    if (!verdict.written) continue;
    for (std::size_t q = 0; q < verdict.cls.size(); ++q) {
      if (obs.proxy_down(q)) continue;
      ++counts[verdict.cls[q]];
      ++total;
    }
  }
  const std::size_t ok = counts[ReadClass::ok];
  fig[figures::kReads] = static_cast<double>(total);
  fig[figures::kReadsOk] = static_cast<double>(ok);
  fig[figures::kReadsMiss] = static_cast<double>(counts[ReadClass::miss]);
  fig[figures::kReadsStale] = static_cast<double>(counts[ReadClass::stale]);
  fig[figures::kReadsForeign] = static_cast<double>(counts[ReadClass::foreign]);
  fig[figures::kReadsError] = static_cast<double>(counts[ReadClass::error]);
  fig[figures::kInconsistentReads] = static_cast<double>(total - ok);
  fig[figures::kConsistencyRatio] = total ? static_cast<double>(ok) / total : 0.0;
}

void operation_figures(std::size_t keys, const Observation& obs,
                       std::map<std::string, double>& fig) {
  fig[figures::kKeys] = static_cast<double>(keys);
  fig[figures::kWrites] = static_cast<double>(obs.writes_issued);
  fig[figures::kLocates] = static_cast<double>(obs.locates_issued);
  fig[figures::kOperations] =
      static_cast<double>(obs.writes_issued + obs.reads_issued + obs.locates_issued);
  fig[figures::kWriteMs] = obs.write_ms;
  fig[figures::kReadMs] = obs.read_ms;
  fig[figures::kLocateMs] = obs.locate_ms;
}

}  // namespace

void CanaryProbe::run(const spec::ClusterSpec& spec, RoundContext& round, report::Report& report) {
  CheckFindings out(name(), report);
  State& st = *state_;
  st.spec = &spec;
  if (st.fingerprint != spec_fingerprint(spec)) st.reset(spec);
  st.start_round();
  if (st.canaries.empty() || st.relearn) st.learn(report);

  const Observation obs = st.observe(st.canaries, st.new_round());
  std::vector<KeyVerdict> verdicts = st.analyze(st.canaries, obs);
  read_figures(verdicts, obs, report.figures);
  const Recheck recheck = st.recheck(obs, verdicts);

  Judgement judgement = judge_round(spec, st.canaries, verdicts, obs, recheck.transient, report,
                                    out, round.canary.emplace());
  if (judgement.relearn) st.relearn = true;
  std::vector<std::string>& headlines = judgement.headlines;
  std::optional<report::Status> status;  // the worst finding's
  if (judgement.proxies_down == spec.proxies.size()) {
    status = report::Status::unknown;
    headlines.insert(headlines.begin(), "no proxy reachable: nothing could be checked");
  }
  const std::string summary =
      headlines.empty() ? std::to_string(st.canaries.size()) + " canaries consistent through " +
                              std::to_string(spec.proxies.size()) + " proxies on " +
                              std::to_string(spec.backends.size()) + " backends"
                        : headlines.front();
  operation_figures(st.canaries.size(), obs, report.figures);
  report.figures[figures::kRecheckMs] = recheck.ms;
  report.figures[figures::kTransientCanaries] = static_cast<double>(recheck.transient);
  report.figures[figures::kRoundMs] = out.finish(summary, status);
}

}  // namespace ringwatch::probes::canary
