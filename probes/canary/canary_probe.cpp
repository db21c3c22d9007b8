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
#include "probes/canary/canary_plan.h"
#include "probes/canary/canary_round.h"
#include "probes/canary/canary_routes.h"
#include "probes/check_findings.h"

namespace ringwatch::probes::canary {

namespace figures = report::figures;

namespace {

using Clock = std::chrono::steady_clock;
// Learning first writes this many candidates per key it needs, so every
// backend gets its share with high probability under ketama's uneven split;
// a later attempt writes enough for the backend that is shortest.
constexpr double kLearnOversample = 1.5;
constexpr std::size_t kTopUpOversample = 2;
constexpr int kLearnAttempts = 3;

double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

// Where a pass looks its canaries up: on every backend, or each only on the
// backend it was learned on (a key learned outside the spec, everywhere).
enum class Locate { everywhere, learned_backend };

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
  std::string text = spec.name + "|" + spec.canary.key_prefix + "|" +
                     std::to_string(spec.canary.keys_per_backend) + "|" +
                     spec::to_string(spec.canary.coverage) + "|" +
                     std::to_string(spec.canary.proxies_per_round.value_or(0));
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
  LearnedPools key_pools;  // the learned keys; empty = learn first
  bool relearn = false;
  std::uint64_t session = 0;  // random, so two probes of one cluster never share keys
  std::uint64_t next_round = 1;
  std::uint64_t learned_generation = 0;
  std::uint64_t rounds = 0;       // probe rounds since reset: the rotation's clock
  std::set<std::size_t> watched;  // proxies the last round found diverging or unreachable
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
    key_pools = LearnedPools(cluster.backends.size());
    // The rotation starts anywhere, so that one-shot probes (a new process
    // each round, as from cron) still read through every proxy over time.
    rounds = session;
    watched.clear();
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

  // One pass: every canary is written by its writer, read back through every
  // proxy of `readers` and looked up as `locate` says.
  Observation observe(const std::vector<Canary>& keys, std::uint64_t round,
                      const std::vector<std::size_t>& readers, Locate locate);
  void write(const std::vector<Canary>& keys, Observation& obs);
  // Why proxy q is not asked this pass (its write failed, or it stalled
  // earlier in the round), or nothing.
  std::optional<mc::Error> unreadable(std::size_t q, const Observation& obs) const;
  // Proxy q's multi-get of every canary, into obs; false when the proxy
  // failed it on a SERVER_ERROR and must be asked again by backend.
  bool take_read(std::size_t q, const std::vector<Canary>& keys,
                 Result<mc::Values, mc::Error> result, Observation& obs);
  void read_by_backend(std::size_t q, const std::vector<Canary>& keys, Observation& obs);
  void look_up(const std::vector<Canary>& keys, Locate locate, Observation& obs);
  // For canaries a proxy misses, or reads another value of that no backend
  // holds, even on recheck: that proxy writes the canary itself, reads it
  // back and the backends are asked where it landed.
  void discover_routes(const std::vector<Canary>& keys, std::vector<KeyVerdict>& verdicts,
                       const Observation& obs);
  // Verdicts with the majority route as the reference (settle_references
  // completes it once every route is known).
  std::vector<KeyVerdict> analyze(const std::vector<Canary>& keys, const Observation& obs) const;
  // Learns the key pools through `covered`'s learning panel; returns the
  // last learning pass, which is the round's only word on who answered when
  // nothing could be learned.
  Observation learn(const std::vector<std::size_t>& covered, report::Report& report);
  // Canaries that disagree in `obs` (and are not explained by a backend the
  // probe cannot reach) are written, read through the round's proxies and
  // looked up on every backend once more, and their verdicts replaced. For a
  // backend all of whose canaries disagree, the rest of its pool goes with
  // them, appended to the plan's canaries and to `verdicts`.
  Recheck recheck(RoundPlan& plan, const Observation& obs, std::vector<KeyVerdict>& verdicts);
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

std::optional<mc::Error> CanaryProbe::State::unreadable(std::size_t q,
                                                        const Observation& obs) const {
  // Unreachable: don't wait twice.
  if (obs.write_error[q]) return obs.write_error[q];
  return stalled_proxies[q];
}

bool CanaryProbe::State::take_read(std::size_t q, const std::vector<Canary>& keys,
                                   Result<mc::Values, mc::Error> result, Observation& obs) {
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

void CanaryProbe::State::write(const std::vector<Canary>& keys, Observation& obs) {
  std::map<std::size_t, std::vector<mc::Item>> batches;  // by writer
  for (const Canary& canary : keys) {
    batches[canary.writer].push_back(
        {canary.key, encode_value(spec->proxies[canary.writer].name, obs.round, canary.key,
                                  spec->canary.value_size)});
  }
  std::vector<std::size_t> writers;
  for (const auto& [q, items] : batches) writers.push_back(q);
  const auto start = Clock::now();
  pool->run_all(writers.size(), [&](std::size_t w) {
    const std::size_t q = writers[w];
    if (stalled_proxies[q]) {
      obs.write_error[q] = stalled_proxies[q];
      return;
    }
    auto result = proxy_client(q).set_many(batches.at(q), spec->canary.ttl);
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
}

void CanaryProbe::State::look_up(const std::vector<Canary>& keys, Locate locate, Observation& obs) {
  const std::size_t backends = spec->backends.size();
  std::vector<std::vector<std::string>> asked(backends);
  obs.learned_only.assign(keys.size(), 0);
  for (std::size_t i = 0; i < keys.size(); ++i) {
    const std::size_t learned = keys[i].learned;
    if (locate == Locate::learned_backend && learned < backends) {
      asked[learned].push_back(keys[i].key);
      obs.learned_only[i] = 1;
    } else {
      for (auto& list : asked) list.push_back(keys[i].key);
    }
  }
  // A backend no canary was learned on (it was down, or no proxy routed
  // there) is asked for all of them: whether it answers, and whether some
  // proxy routes there now, is what the round must say about it.
  for (auto& list : asked) {
    if (list.empty()) list = key_list(keys);
  }
  const auto start = Clock::now();
  std::vector<mc::GetRequest> requests;
  std::vector<std::size_t> asking;  // backends, one per request
  for (std::size_t b = 0; b < backends; ++b) {
    if (asked[b].empty()) continue;
    if (stalled_backends[b]) {
      obs.locate_error[b] = stalled_backends[b];
      continue;
    }
    requests.push_back({&backend_client(b), &asked[b]});
    asking.push_back(b);
  }
  auto results = mc::get_many_each(requests, *pool);
  for (std::size_t i = 0; i < asking.size(); ++i) {
    const std::size_t b = asking[i];
    if (results[i].ok()) {
      obs.held[b] = std::move(results[i]).value();
    } else {
      note_stall(stalled_backends[b], results[i].error());
      obs.locate_error[b] = results[i].error();
      backend_clients[b].reset();
    }
  }
  obs.locate_ms = ms_since(start);
  for (std::size_t b = 0; b < backends; ++b)
    obs.locates_issued += obs.locate_error[b] ? 0 : asked[b].size();
}

Observation CanaryProbe::State::observe(const std::vector<Canary>& keys, std::uint64_t round,
                                        const std::vector<std::size_t>& readers, Locate locate) {
  const std::size_t proxies = spec->proxies.size();
  const std::size_t backends = spec->backends.size();
  Observation obs;
  obs.round = round;
  obs.write_error.resize(proxies);
  obs.read_error.resize(proxies);
  obs.reads.assign(proxies, {});
  obs.locate_error.resize(backends);
  obs.held.resize(backends);
  obs.skipped.assign(proxies, 1);
  for (std::size_t q : readers) obs.skipped[q] = 0;

  write(keys, obs);

  const std::vector<std::string> all_keys = key_list(keys);
  auto start = Clock::now();
  // Proxies whose whole multi-get failed on a SERVER_ERROR: asked again per
  // backend once the locate says where each canary is.
  std::vector<char> split(readers.size(), 0);
  std::vector<mc::GetRequest> requests;
  std::vector<std::size_t> asking;  // indexes into readers, one per request
  for (std::size_t r = 0; r < readers.size(); ++r) {
    const std::size_t q = readers[r];
    obs.reads[q].assign(keys.size(), Cell{});
    if (auto down = unreadable(q, obs)) {
      obs.read_error[q] = down;
      continue;
    }
    requests.push_back({&proxy_client(q), &all_keys});
    asking.push_back(r);
  }
  auto results = mc::get_many_each(requests, *pool);
  for (std::size_t i = 0; i < asking.size(); ++i) {
    const std::size_t r = asking[i];
    split[r] = !take_read(readers[r], keys, std::move(results[i]), obs);
  }
  for (std::size_t q : readers) obs.reads_issued += obs.read_error[q] ? 0 : obs.reads[q].size();
  obs.read_ms = ms_since(start);

  look_up(keys, locate, obs);

  if (std::find(split.begin(), split.end(), 1) != split.end()) {
    start = Clock::now();
    pool->run_all(readers.size(), [&](std::size_t r) {
      if (split[r]) read_by_backend(readers[r], keys, obs);
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
    // were asked and answered, is on a server outside the spec. (An older
    // value is not: it may have expired between the read and the locate.)
    const bool asked_everywhere = all_located && obs.located_everywhere(i);
    auto holder_of = [&](const std::string& value) {
      std::size_t holder = kNone;
      for (std::size_t b = 0; b < backends; ++b) {
        auto found = obs.held[b].find(canary.key);
        if (found == obs.held[b].end() || found->second != value) continue;
        if (holder != kNone) return kNone;  // ambiguous
        holder = b;
      }
      return holder == kNone && asked_everywhere ? kOutside : holder;
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
    Observation found = observe(probe_keys, round, {q}, Locate::everywhere);
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

Observation CanaryProbe::State::learn(const std::vector<std::size_t>& covered,
                                      report::Report& report) {
  const auto start = Clock::now();
  const std::size_t backends = spec->backends.size();
  const std::size_t wanted = canaries_per_backend(*spec) * kPoolRounds;  // per backend
  const std::uint64_t generation_round = new_round();
  char generation[24];
  std::snprintf(generation, sizeof generation, "%llx",
                static_cast<unsigned long long>(generation_round));

  std::vector<std::size_t> panel = learning_panel(*spec, covered);
  LearnedPools learned(backends);
  std::size_t next_index = 0;
  learn_candidates = learn_failed_everywhere = 0;
  auto count = static_cast<std::size_t>(kLearnOversample * static_cast<double>(wanted * backends));
  Observation last;
  for (int attempt = 0; attempt < kLearnAttempts && !panel.empty(); ++attempt) {
    std::vector<Canary> candidates;
    for (std::size_t j = 0; j < count; ++j, ++next_index) {
      candidates.push_back({make_key(spec->canary.key_prefix, spec->name, generation, next_index),
                            panel[next_index % panel.size()], kNone});
    }
    last = observe(candidates, new_round(), panel, Locate::everywhere);
    std::vector<KeyVerdict> verdicts = analyze(candidates, last);
    settle_references(candidates, verdicts, last);
    learn_candidates += candidates.size();
    for (std::size_t i = 0; i < candidates.size(); ++i) {
      learned.add(candidates[i].key, verdicts[i], last);
      learn_failed_everywhere += failed_everywhere(verdicts[i], last);
    }
    std::size_t shortfall = 0;  // of the shortest backend the probe reaches
    for (std::size_t b = 0; b < backends; ++b) {
      const std::size_t have = learned.by_backend[b].size();
      if (!last.backend_down(b) && have < wanted) shortfall = std::max(shortfall, wanted - have);
    }
    if (shortfall == 0) break;
    count = kTopUpOversample * backends * shortfall;
    // A panel none of which answered says nothing of the other proxies.
    const bool none_answered = std::all_of(
        panel.begin(), panel.end(), [&](std::size_t q) { return last.proxy_unreachable(q); });
    if (none_answered && panel.size() == covered.size()) break;
    if (none_answered) panel = covered;
  }

  for (auto& keys : learned.by_backend) keys.resize(std::min(keys.size(), wanted));
  learned.outside.resize(std::min(learned.outside.size(), wanted));
  key_pools = std::move(learned);
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

Recheck CanaryProbe::State::recheck(RoundPlan& plan, const Observation& obs,
                                    std::vector<KeyVerdict>& verdicts) {
  const std::vector<Canary>& canaries = plan.canaries;
  std::vector<std::size_t> disagreeing;
  std::map<std::size_t, std::size_t> checked, moved;  // by learned backend
  for (std::size_t i = 0; i < canaries.size(); ++i) {
    const Canary& canary = canaries[i];
    if (!verdicts[i].written || obs.backend_down(canary.learned)) continue;
    ++checked[canary.learned];
    const bool off_ring = verdicts[i].consensus == kNone || verdicts[i].consensus != canary.learned;
    if (!verdicts[i].all_ok(obs) || off_ring) disagreeing.push_back(i);
    if (off_ring) ++moved[canary.learned];
  }
  if (disagreeing.empty()) return {};
  const auto start = Clock::now();
  std::set<std::size_t> all_moved;
  for (const auto& [backend, count] : moved) {
    if (count == checked[backend]) all_moved.insert(backend);
  }
  std::vector<Canary> subset;
  for (std::size_t i : disagreeing) subset.push_back(canaries[i]);
  const std::vector<Canary> extra = confirmation_canaries(key_pools, plan, all_moved);
  subset.insert(subset.end(), extra.begin(), extra.end());
  Observation again = observe(subset, new_round(), plan.proxies, Locate::everywhere);
  std::vector<KeyVerdict> fresh = analyze(subset, again);
  discover_routes(subset, fresh, again);
  // Discovery may have completed the vote.
  for (KeyVerdict& verdict : fresh) verdict.consensus = majority_route(verdict, again);
  Recheck recheck;
  for (std::size_t j = 0; j < disagreeing.size(); ++j) {
    if (fresh[j].all_ok(again) && fresh[j].consensus == subset[j].learned) ++recheck.transient;
    verdicts[disagreeing[j]] = std::move(fresh[j]);
  }
  for (std::size_t j = disagreeing.size(); j < subset.size(); ++j) {
    plan.canaries.push_back(subset[j]);
    verdicts.push_back(std::move(fresh[j]));
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
  obs.skipped = pass.skipped;
  return obs;
}

void operation_figures(std::size_t keys, const Observation& obs,
                       std::map<std::string, double>& fig) {
  fig[figures::kKeys] = static_cast<double>(keys);
  fig[figures::kProxiesRead] = static_cast<double>(obs.proxies_read());
  fig[figures::kWrites] = static_cast<double>(obs.writes_issued);
  fig[figures::kLocates] = static_cast<double>(obs.locates_issued);
  fig[figures::kOperations] =
      static_cast<double>(obs.writes_issued + obs.reads_issued + obs.locates_issued);
  fig[figures::kWriteMs] = obs.write_ms;
  fig[figures::kReadMs] = obs.read_ms;
  fig[figures::kLocateMs] = obs.locate_ms;
}

// "24 canaries consistent through 3 proxies on 3 backends", or "... through
// 100 of 1000 proxies ..." in a round that reads through some of them.
std::string consistent_summary(const spec::ClusterSpec& spec, const RoundPlan& plan,
                               std::size_t canaries) {
  const auto count = [](std::size_t n) { return static_cast<std::int64_t>(n); };
  const std::string proxies =
      plan.proxies.size() == spec.proxies.size()
          ? util::plural(count(spec.proxies.size()), "proxy", "proxies")
          : std::to_string(plan.proxies.size()) + " of " +
                util::plural(count(spec.proxies.size()), "proxy", "proxies");
  return util::plural(count(canaries), "canary", "canaries") + " consistent through " + proxies +
         " on " + util::plural(count(spec.backends.size()), "backend");
}

}  // namespace

void CanaryProbe::run(const spec::ClusterSpec& spec, RoundContext& round, report::Report& report) {
  CheckFindings out(name(), report);
  State& st = *state_;
  st.spec = &spec;
  if (st.fingerprint != spec_fingerprint(spec)) st.reset(spec);
  st.start_round();
  const std::uint64_t number = st.rounds++;
  std::optional<Observation> learning;
  if (st.key_pools.empty() || st.relearn) {
    learning = st.learn(round_proxies(spec, number, st.watched), report);
  }
  RoundPlan plan = plan_round(spec, st.key_pools, number, st.watched);
  const Locate locate = spec.canary.coverage == spec::CanaryCoverage::full
                            ? Locate::everywhere
                            : Locate::learned_backend;

  // With nothing learned, the learning pass is the round's word on who answered.
  Observation obs = plan.canaries.empty() && learning
                        ? who_answered(*learning)
                        : st.observe(plan.canaries, st.new_round(), plan.proxies, locate);
  obs.learn_candidates = st.learn_candidates;
  obs.learn_failed_everywhere = st.learn_failed_everywhere;
  std::vector<KeyVerdict> verdicts = st.analyze(plan.canaries, obs);
  const ReadTally first_pass = tally_reads(plan.canaries, verdicts, obs);
  const std::size_t first_pass_canaries = plan.canaries.size();
  const Recheck recheck = st.recheck(plan, obs, verdicts);
  settle_references(plan.canaries, verdicts, obs);

  CanaryRound& facts = round.canary.emplace();
  Judgement judgement =
      judge_round(spec, plan, verdicts, obs, recheck.transient, report, out, facts);
  for (std::size_t q = 0, next = 0; q < spec.proxies.size(); ++q) {
    if (next < plan.proxies.size() && plan.proxies[next] == q) {
      ++next;
    } else {
      facts.proxies_not_read.insert(spec.proxies[q].name);
    }
  }
  if (judgement.relearn) st.relearn = true;
  st.watched = judgement.watch;
  const std::string summary = judgement.headlines.empty()
                                  ? consistent_summary(spec, plan, first_pass_canaries)
                                  : judgement.headlines.front();
  read_figures(first_pass, judgement, plan.per_backend, obs.proxies_read() - judgement.proxies_down,
               report.figures);
  operation_figures(first_pass_canaries, obs, report.figures);
  report.figures[figures::kRecheckMs] = recheck.ms;
  report.figures[figures::kTransientCanaries] = static_cast<double>(recheck.transient);
  report.figures[figures::kRoundMs] = out.finish(summary, judgement.status);
}

}  // namespace ringwatch::probes::canary
