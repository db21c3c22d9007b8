#include "probes/canary/canary_findings.h"

#include <algorithm>
#include <map>
#include <set>
#include <tuple>

#include "lib/report/vocabulary.h"
#include "lib/util/text.h"

namespace ringwatch::probes::canary {

namespace {

namespace codes = report::codes;
namespace figures = report::figures;
using report::Finding;
using report::Severity;

// Keys listed in JSON evidence; counts are always complete.
constexpr std::size_t kMaxListedKeys = 100;

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

// Turns one round's verdicts into findings and headlines, one method per kind
// of finding. Canaries learned on a backend the probe cannot reach are left to
// that backend's finding.
class RoundFindings {
 public:
  RoundFindings(const spec::ClusterSpec& cluster, const std::vector<Canary>& round_canaries,
                const std::vector<KeyVerdict>& round_verdicts, const Observation& observation,
                report::Report& round_report, CheckFindings& check_findings,
                CanaryRound& round_facts)
      : spec(cluster),
        canaries(round_canaries),
        verdicts(round_verdicts),
        obs(observation),
        report(round_report),
        out(check_findings),
        facts(round_facts),
        proxies(cluster.proxies.size()),
        backends(cluster.backends.size()),
        per_backend(proxies * cluster.canary.keys_per_backend) {}

  std::vector<std::string> headlines;  // most urgent first
  std::size_t proxies_down = 0;
  bool relearn = false;  // learn the placement again next round

  // Proxies the probe cannot use.
  void unreachable_proxies() {
    for (std::size_t q = 0; q < proxies; ++q) {
      if (!obs.proxy_down(q)) continue;
      ++proxies_down;
      facts.unreachable_proxies.insert(proxy_name(q));
      const mc::Error& error = obs.write_error[q] ? *obs.write_error[q] : *obs.read_error[q];
      if (error.kind == mc::ErrorKind::timeout) {
        facts.stalled.push_back({spec.proxies[q].client, error.message});
      }
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
        summary += erroring.size() + proxies_down == proxies
                       ? " and from all proxies"
                       : " and from " + util::join_and(erroring);
      } else if (!rerouting.empty()) {
        summary += "; " + util::join_and(rerouting) + " route its canaries to other backends";
      }
      finding(error.kind == mc::ErrorKind::timeout ? codes::kBackendTimeout
                                                   : codes::kBackendUnreachable,
              Severity::critical, {.backend = backend_name(b)}, summary)
          .with("error", error.message)
          .with("canaries_learned_there", static_cast<std::int64_t>(learned_here))
          .with("proxies_failing", erroring)
          .with("proxies_routing_elsewhere", rerouting);
      facts.unreachable_backends.push_back({backend_name(b), out.last_index()});
      if (error.kind == mc::ErrorKind::timeout) {
        facts.stalled.push_back({spec.backends[b].endpoint(), error.message});
      }
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
      auto destinations = [&](std::size_t consensus) { return describe_sent(sent[consensus]); };
      std::string summary = "proxy " + proxy_name(q) + " routes " +
                            std::to_string(routed_on[lead]) + " of " +
                            std::to_string(total_on[lead]) + " canaries to backend " +
                            backend_name(lead) + others_routing_there(q, lead) + "; " +
                            proxy_name(q) + " sends them to " + destinations(lead);
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
      if (!missing.empty()) {  // then `lead` is the first backend it misses
        facts.missing.push_back({{proxy_name(q), backend_name(lead)},
                                 static_cast<std::int64_t>(routed_on[lead]),
                                 static_cast<std::int64_t>(total_on[lead]),
                                 out.last_index()});
        divergence_headlines.push_back(proxy_name(q) + " is missing " + backend_name(lead));
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
  // Where one proxy sent canaries, most first: "b2 (4) and nowhere it can be found (2)".
  std::string describe_sent(const std::map<std::size_t, std::size_t>& sent_to) const {
    std::vector<std::pair<std::size_t, std::size_t>> list(sent_to.begin(), sent_to.end());
    std::sort(list.begin(), list.end(),
              [](const auto& x, const auto& y) { return x.second > y.second; });
    std::vector<std::string> parts;
    for (const auto& [dest, count] : list) {
      parts.push_back(
          (dest == kNone ? std::string("nowhere it can be found") : backend_name(dest)) + " (" +
          std::to_string(count) + ")");
    }
    return util::join_and(parts);
  }

  // What the proxies other than `q` do with backend `lead`'s canaries:
  // "; p1 and p3 route 6 there", or nothing when none routes any there.
  std::string others_routing_there(std::size_t q, std::size_t lead) const {
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
    if (agreeing.empty()) return "";
    return "; " + util::join_and(agreeing) + (agreeing.size() == 1 ? " routes " : " route ") +
           (same_count ? std::to_string(agreeing_count) : std::string("theirs")) + " there";
  }

  std::string proxy_name(std::size_t q) const { return spec.proxies[q].name; }
  std::string backend_name(std::size_t b) const {
    return b == kNone ? std::string("an unknown backend") : spec.backends[b].name;
  }
  bool affected_by_down_backend(const Canary& canary) const {
    return canary.learned != kNone && obs.backend_down(canary.learned);
  }
  Finding& finding(const char* code, Severity severity, report::Subject subject,
                   std::string summary) {
    return out.add(code, severity, std::move(subject), std::move(summary));
  }

  const spec::ClusterSpec& spec;
  const std::vector<Canary>& canaries;
  const std::vector<KeyVerdict>& verdicts;
  const Observation& obs;
  report::Report& report;
  CheckFindings& out;
  CanaryRound& facts;
  const std::size_t proxies, backends, per_backend;
  std::vector<std::string> divergence_headlines;
};

}  // namespace

Judgement judge_round(const spec::ClusterSpec& spec, const std::vector<Canary>& canaries,
                      const std::vector<KeyVerdict>& verdicts, const Observation& obs,
                      std::size_t transient, report::Report& report, CheckFindings& out,
                      CanaryRound& facts) {
  RoundFindings found(spec, canaries, verdicts, obs, report, out, facts);
  found.unreachable_proxies();
  found.unreachable_backends();
  found.ring_divergence();
  found.ring_disagreement();
  found.unrouted_backends();
  found.inconsistent_reads();
  found.transient_disagreement(transient);
  found.coverage();
  found.ring_moved();
  return Judgement{std::move(found.headlines), found.proxies_down, found.relearn};
}

}  // namespace ringwatch::probes::canary
