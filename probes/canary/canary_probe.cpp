#include "probes/canary/canary_probe.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <optional>
#include <random>
#include <set>

#include "lib/mc/client.h"
#include "lib/util/deadlines.h"
#include "lib/util/text.h"
#include "lib/util/worker_pool.h"
#include "probes/canary/canary_findings.h"
#include "probes/canary/canary_keys.h"
#include "probes/canary/canary_round.h"
#include "probes/canary/canary_routes.h"
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

// Who reads a pass's canaries back: every proxy, or only each canary's writer
// (discovery: where does this proxy put the keys it misses).
enum class Readers { every_proxy, writer };

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

// Learned keys by where they belong: their reference route, else every
// backend some proxy routes them to, in the order they were tried. So a
// backend only one of two proxies uses still gets canaries (no finding then
// says that no proxy routes there), and keys two proxies disagree on are kept
// as likely as keys they agree on (a hash difference is not learned away).
// Keys some proxy routes outside the spec and none into it are kept apart, so
// a single proxy is still caught sending keys outside the spec.
struct LearnedPools {
  explicit LearnedPools(std::size_t backends) : by_backend(backends) {}

  void add(const std::string& key, const KeyVerdict& verdict, const Observation& obs) {
    if (verdict.consensus != kNone) {
      by_backend[verdict.consensus].push_back(key);
      return;
    }
    std::set<std::size_t> routes;
    for (std::size_t q = 0; q < verdict.route.size(); ++q) {
      if (!obs.proxy_down(q) && verdict.route[q] != kNone) routes.insert(verdict.route[q]);
    }
    for (std::size_t route : routes) {
      if (route < by_backend.size()) by_backend[route].push_back(key);
    }
    if (routes.size() == 1 && *routes.begin() == kOutside) outside.push_back(key);
  }

  // Up to `per_backend` canaries per backend and outside, written in turn by
  // every proxy.
  std::vector<Canary> pick(std::size_t per_backend, std::size_t proxies) const {
    std::vector<Canary> picked;
    std::set<std::string> taken;
    auto take = [&](const std::vector<std::string>& pool, std::size_t learned) {
      std::size_t count = 0;
      for (const std::string& key : pool) {
        if (count == per_backend) return;
        if (taken.insert(key).second) picked.push_back({key, count++ % proxies, learned});
      }
    };
    for (std::size_t b = 0; b < by_backend.size(); ++b) take(by_backend[b], b);
    take(outside, kOutside);
    return picked;
  }

  std::vector<std::vector<std::string>> by_backend;
  std::vector<std::string> outside;
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

  // One pass: every proxy writes its canaries, the readers read them back
  // (every proxy reads all of them), every backend is asked for all of them.
  Observation observe(const std::vector<Canary>& keys, std::uint64_t round,
                      Readers readers = Readers::every_proxy);
  void read_back(std::size_t q, const std::vector<Canary>& keys,
                 const std::vector<std::string>& all_keys, Observation& obs);
  // For canaries a proxy misses, or reads another value of that no backend
  // holds, even on recheck: that proxy writes the canary itself, reads it
  // back and the backends are asked where it landed.
  void discover_routes(const std::vector<Canary>& keys, std::vector<KeyVerdict>& verdicts,
                       const Observation& obs);
  // Verdicts with the majority route as the reference (settle_references
  // completes it once every route is known).
  std::vector<KeyVerdict> analyze(const std::vector<Canary>& keys, const Observation& obs) const;
  // Learns the canary set; returns the last learning pass, which is the
  // round's only word on who answered when nothing could be learned.
  Observation learn(report::Report& report);
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

// Proxy q reads every canary back, one multi-get; into obs.reads[q].
void CanaryProbe::State::read_back(std::size_t q, const std::vector<Canary>& keys,
                                   const std::vector<std::string>& all_keys, Observation& obs) {
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
}

Observation CanaryProbe::State::observe(const std::vector<Canary>& keys, std::uint64_t round,
                                        Readers readers) {
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
  pool->run_all(proxies, [&](std::size_t q) {
    const auto writes = [q](const Canary& canary) { return canary.writer == q; };
    if (readers == Readers::writer && std::none_of(keys.begin(), keys.end(), writes)) return;
    read_back(q, keys, all_keys, obs);
  });
  for (std::size_t q = 0; q < proxies; ++q)
    obs.reads_issued += obs.read_error[q] ? 0 : obs.reads[q].size();
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
  const bool all_located = !obs.any_backend_down();
  for (std::size_t i = 0; i < keys.size(); ++i) {
    const Canary& canary = keys[i];
    KeyVerdict& verdict = verdicts[i];
    verdict.cls.assign(proxies, ReadClass::error);
    verdict.route.assign(proxies, kNone);
    verdict.written = !obs.write_error[canary.writer];
    const std::string expected = encode_value(spec->proxies[canary.writer].name, obs.round,
                                              canary.key, spec->canary.value_size);
    // Where each value of this key is held. This round's value read back
    // through a proxy that no backend of the spec holds, when all of them
    // answered, is on a server outside the spec. (An older value is not: it
    // may have expired between the read and the locate.)
    auto holder_of = [&](const std::string& value) {
      std::size_t holder = kNone;
      for (std::size_t b = 0; b < backends; ++b) {
        auto found = obs.held[b].find(canary.key);
        if (found == obs.held[b].end() || found->second != value) continue;
        if (holder != kNone) return kNone;  // ambiguous
        holder = b;
      }
      return holder == kNone && all_located ? kOutside : holder;
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
            if (verdict.route[q] == kOutside) verdict.route[q] = kNone;
          }
          break;
      }
    }
    // Outside the spec only once some proxy has read the value back: a write
    // the proxy dropped is nowhere, not outside.
    const bool read_back =
        std::find(verdict.cls.begin(), verdict.cls.end(), ReadClass::ok) != verdict.cls.end();
    if (verdict.writer_route == kOutside && !read_back) {
      verdict.writer_route = kNone;
      verdict.route[canary.writer] = kNone;
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
      const ReadClass cls = verdicts[i].cls[q];
      if (verdicts[i].route[q] == kNone && cls != ReadClass::ok && cls != ReadClass::error) {
        probe_keys.push_back({keys[i].key, q, keys[i].learned});
        positions.push_back(i);
      }
    }
    if (probe_keys.empty()) continue;
    // One proxy at a time, so two proxies' discovery writes cannot overwrite
    // each other on a shared backend.
    const std::uint64_t round = new_round();
    Observation found = observe(probe_keys, round, Readers::writer);
    if (found.write_error[q]) continue;
    const bool all_located = !found.any_backend_down();
    for (std::size_t j = 0; j < probe_keys.size(); ++j) {
      const std::string value =
          encode_value(spec->proxies[q].name, round, probe_keys[j].key, spec->canary.value_size);
      std::size_t& route = verdicts[positions[j]].route[q];
      for (std::size_t b = 0; b < spec->backends.size(); ++b) {
        auto held = found.held[b].find(probe_keys[j].key);
        if (held != found.held[b].end() && held->second == value) route = b;
      }
      // q reads back what it wrote, and no backend of the spec holds it.
      const bool read_back = !found.reads[q].empty() &&
                             found.reads[q][j].kind == Cell::Kind::value &&
                             found.reads[q][j].value == value;
      if (route == kNone && all_located && read_back) route = kOutside;
    }
  }
}

Observation CanaryProbe::State::learn(report::Report& report) {
  const auto start = Clock::now();
  const std::size_t proxies = spec->proxies.size();
  const std::size_t backends = spec->backends.size();
  const std::size_t per_backend = proxies * spec->canary.keys_per_backend;
  const std::uint64_t generation_round = new_round();
  char generation[24];
  std::snprintf(generation, sizeof generation, "%llx",
                static_cast<unsigned long long>(generation_round));

  LearnedPools pools(backends);
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
    std::vector<KeyVerdict> verdicts = analyze(candidates, last);
    settle_references(candidates, verdicts, last);
    for (std::size_t i = 0; i < candidates.size(); ++i) {
      pools.add(candidates[i].key, verdicts[i], last);
    }
    bool covered = true;
    for (std::size_t b = 0; b < backends; ++b) {
      if (!last.backend_down(b) && pools.by_backend[b].size() < per_backend) covered = false;
    }
    if (covered) break;
  }

  canaries = pools.pick(per_backend, proxies);
  learned_generation = generation_round;
  relearn = false;
  report.figures[figures::kLearnMs] = ms_since(start);
  return last;
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
    if (!verdicts[i].written || obs.backend_down(canary.learned)) continue;
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

// First-pass reads (what clients would have seen), by the backend their
// canary was learned on, so that the figures can leave out the backends that
// could not hold canaries this round.
using ReadTally = std::map<std::size_t, std::map<ReadClass, std::size_t>>;

ReadTally tally_reads(const std::vector<Canary>& canaries, const std::vector<KeyVerdict>& verdicts,
                      const Observation& obs) {
  ReadTally tally;
  for (std::size_t i = 0; i < canaries.size(); ++i) {
    if (!verdicts[i].written) continue;
    for (std::size_t q = 0; q < verdicts[i].cls.size(); ++q) {
      if (!obs.proxy_down(q)) ++tally[canaries[i].learned][verdicts[i].cls[q]];
    }
  }
  return tally;
}

// The read figures and the consistency ratio. The canaries of an unplaced
// backend (one the probe cannot reach or no proxy routes canaries to) are not
// read: they count as `unplaced_canaries`, each one a failed read through
// every proxy the probe can use, so a dead backend costs its share of the
// ratio whether its canaries were learned before it died or never.
void read_figures(const ReadTally& tally, const Judgement& judgement, std::size_t per_backend,
                  std::size_t responsive_proxies, std::map<std::string, double>& fig) {
  std::map<ReadClass, std::size_t> counts;
  std::size_t total = 0;
  for (const auto& [backend, by_class] : tally) {
    if (judgement.unplaced_backends.contains(backend)) continue;
    for (const auto& [cls, count] : by_class) {
      counts[cls] += count;
      total += count;
    }
  }
  const std::size_t unplaced = judgement.unplaced_backends.size() * per_backend;
  const std::size_t ok = counts[ReadClass::ok];
  const std::size_t denominator = total + unplaced * responsive_proxies;
  fig[figures::kReads] = static_cast<double>(total);
  fig[figures::kReadsOk] = static_cast<double>(ok);
  fig[figures::kReadsMiss] = static_cast<double>(counts[ReadClass::miss]);
  fig[figures::kReadsStale] = static_cast<double>(counts[ReadClass::stale]);
  fig[figures::kReadsForeign] = static_cast<double>(counts[ReadClass::foreign]);
  fig[figures::kReadsError] = static_cast<double>(counts[ReadClass::error]);
  fig[figures::kInconsistentReads] = static_cast<double>(total - ok);
  fig[figures::kUnplacedCanaries] = static_cast<double>(unplaced);
  fig[figures::kConsistencyRatio] = denominator ? static_cast<double>(ok) / denominator : 0.0;
}

// Only who answered: what a pass of no canaries would have seen.
Observation who_answered(const Observation& pass) {
  Observation obs;
  obs.round = pass.round;
  obs.write_error = pass.write_error;
  obs.read_error = pass.read_error;
  obs.reads.resize(pass.reads.size());
  obs.locate_error = pass.locate_error;
  obs.held.resize(pass.held.size());
  return obs;
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
  std::optional<Observation> learning;
  if (st.canaries.empty() || st.relearn) learning = st.learn(report);

  // With nothing learned, the learning pass is the round's word on who answered.
  const Observation obs = st.canaries.empty() && learning ? who_answered(*learning)
                                                          : st.observe(st.canaries, st.new_round());
  std::vector<KeyVerdict> verdicts = st.analyze(st.canaries, obs);
  const ReadTally first_pass = tally_reads(st.canaries, verdicts, obs);
  const Recheck recheck = st.recheck(obs, verdicts);
  settle_references(st.canaries, verdicts, obs);

  Judgement judgement = judge_round(spec, st.canaries, verdicts, obs, recheck.transient, report,
                                    out, round.canary.emplace());
  if (judgement.relearn) st.relearn = true;
  const std::string summary =
      judgement.headlines.empty()
          ? util::plural(static_cast<std::int64_t>(st.canaries.size()), "canary", "canaries") +
                " consistent through " +
                util::plural(static_cast<std::int64_t>(spec.proxies.size()), "proxy", "proxies") +
                " on " + util::plural(static_cast<std::int64_t>(spec.backends.size()), "backend")
          : judgement.headlines.front();
  read_figures(first_pass, judgement, spec.proxies.size() * spec.canary.keys_per_backend,
               spec.proxies.size() - judgement.proxies_down, report.figures);
  operation_figures(st.canaries.size(), obs, report.figures);
  report.figures[figures::kRecheckMs] = recheck.ms;
  report.figures[figures::kTransientCanaries] = static_cast<double>(recheck.transient);
  report.figures[figures::kRoundMs] = out.finish(summary, judgement.status);
}

}  // namespace ringwatch::probes::canary
