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

// Every proxy the probe reaches answered an error for the canary.
bool failed_everywhere(const KeyVerdict& verdict, const Observation& obs) {
  bool any = false;
  for (std::size_t q = 0; q < verdict.cls.size(); ++q) {
    if (obs.proxy_down(q)) continue;
    if (verdict.cls[q] != ReadClass::error) return false;
    any = true;
  }
  return any;
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
  std::size_t learn_candidates = 0, learn_failed_everywhere = 0;  // see Observation

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

  // One pass: every proxy writes its canaries, the readers read them back
  // (every proxy reads all of them), every backend is asked for all of them.
  Observation observe(const std::vector<Canary>& keys, std::uint64_t round,
                      Readers readers = Readers::every_proxy);
  // Proxy q reads every canary back, one multi-get; false when the proxy
  // failed it on a SERVER_ERROR and must be asked again by backend.
  bool read_back(std::size_t q, const std::vector<Canary>& keys,
                 const std::vector<std::string>& all_keys, Observation& obs);
  void read_by_backend(std::size_t q, const std::vector<Canary>& keys, Observation& obs);
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

std::vector<std::size_t> all_indexes(std::size_t count) {
  std::vector<std::size_t> indexes(count);
  for (std::size_t i = 0; i < count; ++i) indexes[i] = i;
  return indexes;
}

// What one proxy read for the canaries at `indexes`.
void fill_cells(const std::vector<Canary>& keys, const mc::Values& values,
                const std::vector<std::size_t>& indexes, std::vector<Cell>& cells) {
  for (std::size_t i : indexes) {
    auto found = values.find(keys[i].key);
    if (found != values.end()) cells[i] = {Cell::Kind::value, found->second};
  }
}

}  // namespace

bool CanaryProbe::State::read_back(std::size_t q, const std::vector<Canary>& keys,
                                   const std::vector<std::string>& all_keys, Observation& obs) {
  obs.reads[q].assign(keys.size(), Cell{});
  if (obs.write_error[q] || stalled_proxies[q]) {
    // Unreachable: don't wait twice.
    obs.read_error[q] = obs.write_error[q] ? obs.write_error[q] : stalled_proxies[q];
    return true;
  }
  auto result = proxy_client(q).get_many(all_keys);
  if (result.ok()) {
    fill_cells(keys, result.value(), all_indexes(keys.size()), obs.reads[q]);
    return true;
  }
  const mc::Error& error = result.error();
  note_stall(stalled_proxies[q], error);
  proxy_clients[q].reset();
  if (error.kind == mc::ErrorKind::server_error) return false;
  // A reply that is not memcached protocol is the proxy's own failure: it is
  // down, named, like one that does not answer.
  obs.read_error[q] = error;
  return true;
}

// A proxy fails a whole multi-get when one backend fails (memcached's proxy
// answers SERVER_ERROR in place of that backend's keys, without naming them):
// ask again per backend, learned or, while learning, where the locate found
// the canary, so only that backend's canaries count as errors.
void CanaryProbe::State::read_by_backend(std::size_t q, const std::vector<Canary>& keys,
                                         Observation& obs) {
  std::map<std::size_t, std::vector<std::size_t>> groups;
  for (std::size_t i = 0; i < keys.size(); ++i) {
    std::size_t backend = keys[i].learned;
    for (std::size_t b = 0; backend == kNone && b < obs.held.size(); ++b)
      if (obs.held[b].contains(keys[i].key)) backend = b;
    groups[backend].push_back(i);
  }
  std::vector<Cell>& cells = obs.reads[q];
  for (const auto& [backend, indexes] : groups) {
    std::vector<std::string> group_keys;
    for (std::size_t i : indexes) group_keys.push_back(keys[i].key);
    auto group = stalled_proxies[q] ? Result<mc::Values, mc::Error>(*stalled_proxies[q])
                                    : proxy_client(q).get_many(group_keys);
    if (group.ok()) {
      fill_cells(keys, group.value(), indexes, cells);
    } else {
      note_stall(stalled_proxies[q], group.error());
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
  // Proxies whose whole multi-get failed on a SERVER_ERROR: asked again per
  // backend once the locate says where each canary is.
  std::vector<char> split(proxies, 0);
  pool->run_all(proxies, [&](std::size_t q) {
    const auto writes = [q](const Canary& canary) { return canary.writer == q; };
    if (readers == Readers::writer && std::none_of(keys.begin(), keys.end(), writes)) return;
    split[q] = !read_back(q, keys, all_keys, obs);
  });
  for (std::size_t q = 0; q < proxies; ++q)
    obs.reads_issued += obs.read_error[q] ? 0 : obs.reads[q].size();
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

  if (std::find(split.begin(), split.end(), 1) != split.end()) {
    start = Clock::now();
    pool->run_all(proxies, [&](std::size_t q) {
      if (split[q]) read_by_backend(q, keys, obs);
    });
    obs.read_ms += ms_since(start);
  }
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
  learn_candidates = learn_failed_everywhere = 0;
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
    learn_candidates += candidates.size();
    for (std::size_t i = 0; i < candidates.size(); ++i) {
      pools.add(candidates[i].key, verdicts[i], last);
      learn_failed_everywhere += failed_everywhere(verdicts[i], last);
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
  st.start_round();
  std::optional<Observation> learning;
  if (st.canaries.empty() || st.relearn) learning = st.learn(report);

  // With nothing learned, the learning pass is the round's word on who answered.
  Observation obs = st.canaries.empty() && learning ? who_answered(*learning)
                                                    : st.observe(st.canaries, st.new_round());
  obs.learn_candidates = st.learn_candidates;
  obs.learn_failed_everywhere = st.learn_failed_everywhere;
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
