#include "probes/canary/canary_findings.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <tuple>

#include "lib/report/vocabulary.h"
#include "lib/util/text.h"
#include "probes/canary/canary_routes.h"

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

// The server's reply in a client error message ("127.10.1.2:4001: server
// error: backend failure" -> "SERVER_ERROR backend failure"), or "errors"
// when it carries none.
std::string server_words(const std::string& message) {
  constexpr std::string_view kServerError = "server error: ";
  const auto at = message.find(kServerError);
  if (at == std::string::npos) return "errors";
  return "SERVER_ERROR " + message.substr(at + kServerError.size());
}

// Turns one round's verdicts into findings and headlines, one method per kind
// of finding. Canaries learned on a backend the probe cannot reach are left to
// that backend's finding.
class RoundFindings {
 public:
  RoundFindings(const spec::ClusterSpec& cluster, const RoundPlan& plan,
                const std::vector<KeyVerdict>& round_verdicts, const Observation& observation,
                report::Report& round_report, CheckFindings& check_findings,
                CanaryRound& round_facts)
      : spec(cluster),
        canaries(plan.canaries),
        verdicts(round_verdicts),
        obs(observation),
        report(round_report),
        out(check_findings),
        facts(round_facts),
        proxies(cluster.proxies.size()),
        backends(cluster.backends.size()),
        per_backend(plan.per_backend),
        read(observation.proxies_read()),
        whole(whole_proxies(plan.canaries, round_verdicts, observation)) {}

  std::vector<std::string> headlines;  // most urgent first
  std::size_t proxies_down = 0;
  bool relearn = false;  // learn the placement again next round
  std::set<std::size_t> unplaced_backends;
  std::optional<report::Status> status;
  std::set<std::size_t> watch;

  // Proxies the probe cannot use. When it can use none, the headline says
  // so, naming each: then nothing routes anywhere and no other finding about
  // routing is made. That is CRITICAL while the probe reaches a backend (the
  // proxies are down), UNKNOWN when it reaches nothing at all (the probe may
  // be the one cut off).
  void unreachable_proxies() {
    std::map<std::string, std::vector<std::string>> by_reason;
    for (std::size_t q = 0; q < proxies; ++q) {
      if (obs.proxy_skipped(q) || !obs.proxy_unreachable(q)) continue;
      ++proxies_down;
      const mc::Error& error = obs.write_error[q] ? *obs.write_error[q] : *obs.read_error[q];
      if (error.kind == mc::ErrorKind::timeout) {
        facts.stalled.push_back({spec.proxies[q].client, error.message});
      }
      const std::string summary =
          "proxy " + proxy_name(q) + " unreachable (" + error_reason(error) + ")";
      finding(codes::kProxyUnreachable, Severity::critical, {.proxy = proxy_name(q)}, summary)
          .with("error", error.message)
          .with("phase", std::string(obs.write_error[q] ? "write" : "read"));
      facts.unreachable_proxies.insert(proxy_name(q));
      facts.unreachable_proxy_findings.push_back({proxy_name(q), out.last_index()});
      headlines.push_back(summary);
      by_reason[error_reason(error)].push_back(proxy_name(q));
    }
    if (read == 0 || proxies_down < read) return;
    std::vector<std::string> parts;
    for (const auto& [reason, names] : by_reason) {
      parts.push_back(util::join(names) + " (" + reason + ")");
    }
    std::string headline = "no proxy reachable: " + util::join(parts);
    bool any_backend_answered = false;
    for (std::size_t b = 0; b < backends; ++b) any_backend_answered |= !obs.backend_down(b);
    if (!any_backend_answered) {
      headline += "; no backend either: the probe itself may be cut off";
      status = report::Status::unknown;
    }
    headlines.assign(1, headline);
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
        summary += erroring.size() + proxies_down == read ? " and from all proxies"
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
      unplaced_backends.insert(b);
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
      std::set<Reference> references;
      for (std::size_t i = 0; i < canaries.size(); ++i) {
        const KeyVerdict& verdict = verdicts[i];
        if (!verdict.written || affected_by_down_backend(canaries[i])) continue;
        if (verdict.route[q] < backends) routed_backends.insert(verdict.route[q]);
        if (verdict.consensus == kNone) continue;
        ++total_on[verdict.consensus];
        if (verdict.route[q] == verdict.consensus) {
          ++routed_on[verdict.consensus];
        } else if (verdict.route[q] == kOutside) {
          continue;  // routed_outside_spec's
        } else if (verdict.route[q] != kNone || verdict.cls[q] != ReadClass::error) {
          references.insert(verdict.reference);
          ++sent[verdict.consensus][verdict.route[q]];
          if (keys.size() < kMaxListedKeys) keys.push_back(canaries[i].key);
        }
      }
      // Per-proxy routing, for metrics; '/' never occurs in a spec name.
      report.figures[figures::backends_routed(proxy_name(q))] =
          static_cast<double>(routed_backends.size());
      auto& routed_names_of_q = facts.routed[proxy_name(q)];
      for (std::size_t b : routed_backends) routed_names_of_q.insert(backend_name(b));
      if (sent.empty()) continue;
      std::size_t diverging = 0, considered = 0;
      for (const auto& [b, count] : total_on) considered += count;
      for (const auto& [b, where] : sent) {
        for (const auto& [dest, count] : where) diverging += count;
      }
      // The backend this proxy misses entirely, if any, leads the summary.
      std::vector<std::size_t> missing;
      std::size_t missing_canaries = 0, missing_diverging = 0;
      for (const auto& [b, count] : total_on) {
        if (routed_on[b] != 0 || routed_backends.contains(b)) continue;
        missing.push_back(b);
        missing_canaries += count;
        if (const auto there = sent.find(b); there != sent.end()) {
          for (const auto& [dest, count_sent] : there->second) missing_diverging += count_sent;
        }
      }
      // Missing means the rest of its ring is the reference's: a proxy that
      // routes most other canaries elsewhere too (another hash) happened to
      // route none of a few canaries to a backend it has. Unless it read so
      // many that a hash spreading them over B backends would leave one empty
      // with a chance below 1% (B·(1 − 1/B)^n): a proxy lacking a backend
      // whose hash then moves every key (jump hash over a shorter list).
      const double spread = static_cast<double>(total_on.size());
      const bool too_many_to_miss =
          spread > 1 && spread * std::pow(1 - 1 / spread, static_cast<double>(considered)) < 0.01;
      if (!too_many_to_miss && 2 * (diverging - missing_diverging) > considered - missing_canaries)
        missing.clear();
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
          .with("reference", reference_words(references))
          .with("keys", keys);
      at_fault.insert(q);
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

  // A proxy that fails every canary of a backend the probe reaches: it routes
  // them there and cannot reach the backend (memcached's proxy answers
  // SERVER_ERROR for a backend it has marked bad instead of routing around it).
  void proxy_backend_errors() {
    for (std::size_t q = 0; q < proxies; ++q) {
      if (obs.proxy_down(q)) continue;
      for (std::size_t b = 0; b < backends; ++b) {
        if (obs.backend_down(b)) continue;
        std::size_t canaries_there = 0, failed = 0;
        std::string error;
        std::set<std::string> readers;  // other proxies that read them
        for (std::size_t i = 0; i < canaries.size(); ++i) {
          if (canaries[i].learned != b || !verdicts[i].written) continue;
          ++canaries_there;
          if (verdicts[i].cls[q] != ReadClass::error) continue;
          ++failed;
          if (error.empty() && !obs.reads[q].empty()) error = obs.reads[q][i].value;
          for (std::size_t r = 0; r < proxies; ++r)
            if (r != q && !obs.proxy_down(r) && verdicts[i].cls[r] == ReadClass::ok)
              readers.insert(proxy_name(r));
        }
        if (canaries_there == 0 || failed != canaries_there) continue;
        const std::string words = server_words(error);
        std::string summary = "proxy " + proxy_name(q) + " cannot reach backend " +
                              backend_name(b) + ": " + words + " on " + std::to_string(failed) +
                              " of " + std::to_string(canaries_there) + " canaries";
        summary +=
            readers.empty()
                ? " (the probe reaches " + backend_name(b) + ")"
                : " (" + util::join_and(std::vector<std::string>(readers.begin(), readers.end())) +
                      " read them)";
        finding(codes::kProxyBackendErrors, Severity::critical,
                {.proxy = proxy_name(q), .backend = backend_name(b)}, summary)
            .with("failed_canaries", static_cast<std::int64_t>(failed))
            .with("canaries_for_backend", static_cast<std::int64_t>(canaries_there))
            .with("error", error);
        facts.failing.push_back({{proxy_name(q), backend_name(b)},
                                 static_cast<std::int64_t>(failed),
                                 static_cast<std::int64_t>(canaries_there),
                                 words,
                                 out.last_index()});
        headlines.push_back(proxy_name(q) + " cannot reach " + backend_name(b) + " (" + words +
                            " on " + std::to_string(failed) + " of " +
                            std::to_string(canaries_there) + " canaries)");
        at_fault.insert(q);
      }
    }
  }

  // Canaries a proxy routes to a server that is not in the spec: read back
  // through it, held by no backend of the spec, all of which answered.
  void routed_outside_spec() {
    for (std::size_t q = 0; q < proxies; ++q) {
      if (obs.proxy_down(q)) continue;
      std::size_t outside = 0, considered = 0;
      std::map<std::size_t, std::size_t> reference;  // where the others put them
      std::vector<std::string> keys;
      for (std::size_t i = 0; i < canaries.size(); ++i) {
        if (!verdicts[i].written || affected_by_down_backend(canaries[i])) continue;
        ++considered;
        if (verdicts[i].route[q] != kOutside) continue;
        ++outside;
        if (verdicts[i].consensus != kNone) ++reference[verdicts[i].consensus];
        if (keys.size() < kMaxListedKeys) keys.push_back(canaries[i].key);
      }
      if (outside == 0) continue;
      const std::string share = std::to_string(outside) + " of " + std::to_string(considered);
      const std::string summary =
          "proxy " + proxy_name(q) + " routes " + share +
          " canaries to a server not in the spec (no configured backend holds them; all " +
          std::to_string(backends) + " answered)";
      finding(codes::kRoutedOutsideSpec, Severity::critical, {.proxy = proxy_name(q)}, summary)
          .with("outside_canaries", static_cast<std::int64_t>(outside))
          .with("considered_canaries", static_cast<std::int64_t>(considered))
          .with("reference_routes", describe_sent(reference))
          .with("keys", keys);
      facts.outside.push_back({proxy_name(q), static_cast<std::int64_t>(outside),
                               static_cast<std::int64_t>(considered), out.last_index()});
      divergence_headlines.push_back(proxy_name(q) + " routes " + share +
                                     " canaries outside the spec");
      at_fault.insert(q);
    }
  }

  // Canaries with no reference route at all (e.g. two proxies that disagree
  // and are both whole, or neither is): no proxy is named, but each proxy
  // that routes no canary to a backend the others use is.
  void ring_disagreement() {
    if (read - proxies_down >= 2) {
      std::vector<std::string> keys;
      std::size_t count = 0;
      for (std::size_t i = 0; i < canaries.size(); ++i) {
        const KeyVerdict& verdict = verdicts[i];
        if (!verdict.written || affected_by_down_backend(canaries[i]) ||
            verdict.consensus != kNone) {
          continue;
        }
        std::set<std::size_t> routes;
        for (std::size_t q = 0; q < proxies; ++q) {
          if (!obs.proxy_down(q) && verdict.route[q] != kNone) routes.insert(verdict.route[q]);
        }
        if (routes.size() < 2) continue;
        for (std::size_t q = 0; q < proxies; ++q) {
          if (!obs.proxy_down(q) && verdict.route[q] != kNone) disagreeing.insert(q);
        }
        ++count;
        if (keys.size() < kMaxListedKeys) keys.push_back(canaries[i].key);
      }
      if (count > 0) {
        const std::vector<std::string> unused = backends_unused_by_some();
        std::string summary =
            "proxies disagree on " + std::to_string(count) + " canaries with no majority route";
        if (!unused.empty()) summary += ": " + util::join(unused, "; ");
        finding(codes::kRingDisagreement, Severity::critical, {}, summary)
            .with("proxies_missing_backends", unused)
            .with("keys", keys);
        // Assigned, not emplace()d: clang 14 does not see a nested struct with
        // member initializers as default-constructible inside its own class.
        facts.disagreement = CanaryRound::Disagreement{};
        CanaryRound::Disagreement& fact = *facts.disagreement;
        for (std::size_t q = 0; q < proxies; ++q) {
          if (!obs.proxy_down(q)) fact.proxies.push_back(proxy_name(q));
        }
        fact.canaries = static_cast<std::int64_t>(count);
        fact.finding = out.last_index();
        divergence_headlines.push_back(summary);
      }
    }
    if (!divergence_headlines.empty()) {
      headlines.insert(headlines.begin(),
                       "ring divergence: " + util::join(divergence_headlines, "; "));
    }
  }

  // Reachable backends no responsive proxy routes any canary to. With one
  // proxy, that proxy is named: it is the one at fault.
  void unrouted_backends() {
    std::vector<std::size_t> responsive;
    for (std::size_t q = 0; q < proxies; ++q) {
      if (!obs.proxy_down(q)) responsive.push_back(q);
    }
    if (responsive.empty()) return;  // nothing routes when no proxy answers
    for (std::size_t b = 0; b < backends; ++b) {
      if (obs.backend_down(b)) continue;
      std::size_t learned_here = 0;
      bool routed = false;
      for (std::size_t i = 0; i < canaries.size(); ++i) {
        learned_here += canaries[i].learned == b;
        for (std::size_t q : responsive) routed = routed || verdicts[i].route[q] == b;
      }
      if (routed || every_proxy_fails(b)) continue;
      const bool one = responsive.size() == 1;
      const std::string who =
          one ? "proxy " + proxy_name(responsive[0]) + " routes no canaries"
          : responsive.size() == proxies ? "no proxy routes canaries"
          : responsive.size() == read
              ? "none of the " + std::to_string(read) + " proxies read this round routes canaries"
              : "no reachable proxy routes canaries";
      std::string summary =
          who + " to backend " + backend_name(b) + " (configured, reachable from the probe)";
      // Keys no proxy could place because each answered an error (a backend
      // the proxies route to and cannot reach) may be this backend's.
      if (obs.learn_failed_everywhere > 0) {
        summary += "; every reachable proxy answered errors for " +
                   std::to_string(obs.learn_failed_everywhere) + " of " +
                   std::to_string(obs.learn_candidates) + " candidate canaries";
      }
      report::Subject subject{.backend = backend_name(b)};
      if (one) subject.proxy = proxy_name(responsive[0]);
      finding(codes::kBackendNotRouted, Severity::critical, subject, summary)
          .with("canaries_learned_there", static_cast<std::int64_t>(learned_here))
          .with("canaries_needed", static_cast<std::int64_t>(per_backend));
      if (one) {
        facts.missing.push_back({{proxy_name(responsive[0]), backend_name(b)},
                                 0,
                                 static_cast<std::int64_t>(learned_here),
                                 out.last_index()});
        at_fault.insert(responsive[0]);
      }
      headlines.push_back(summary);
      unplaced_backends.insert(b);
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
        finding(codes::kInconsistentReads, Severity::critical,
                {.proxy = most_involved(involvement)}, summary)
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

  // Coverage short of a round's canaries per backend on a reachable backend that is routed.
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
    if (!obs.any_backend_down()) {
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

  // Each proxy the round read through: its verdict as a figure, and the
  // proxies to read through again next round.
  void proxy_verdicts() {
    for (std::size_t q = 0; q < proxies; ++q) {
      if (obs.proxy_skipped(q)) continue;
      ProxyVerdict verdict = ProxyVerdict::agrees;
      if (obs.proxy_unreachable(q)) {
        verdict = ProxyVerdict::unreachable;
      } else if (at_fault.contains(q) || disagreeing.contains(q)) {
        verdict = ProxyVerdict::diverges;
      }
      report.figures[figures::proxy_verdict(proxy_name(q))] = static_cast<double>(verdict);
      if (verdict != ProxyVerdict::agrees) watch.insert(q);
    }
  }

 private:
  // "p1 routes none to b3": each proxy that routes no canary to a backend
  // another proxy routes canaries to.
  std::vector<std::string> backends_unused_by_some() const {
    const std::vector<std::set<std::size_t>> routed = routed_backends(canaries, verdicts, obs);
    std::set<std::size_t> used;
    for (const auto& set : routed) used.insert(set.begin(), set.end());
    std::vector<std::string> lines;
    for (std::size_t q = 0; q < proxies; ++q) {
      if (obs.proxy_down(q)) continue;
      std::vector<std::string> unused;
      for (std::size_t b : used) {
        if (!routed[q].contains(b)) unused.push_back(backend_name(b));
      }
      if (!unused.empty())
        lines.push_back(proxy_name(q) + " routes none to " + util::join_and(unused));
    }
    return lines;
  }

  // How the routes a divergence is judged against were decided.
  std::string reference_words(const std::set<Reference>& references) const {
    std::vector<std::string> words;
    if (references.contains(Reference::majority)) words.emplace_back("a majority of the proxies");
    if (references.contains(Reference::whole_proxies)) {
      std::vector<std::string> names;
      for (std::size_t q = 0; q < proxies; ++q) {
        if (whole[q]) names.push_back(proxy_name(q));
      }
      words.push_back("no majority; " + util::join_and(names) + " route" +
                      (names.size() == 1 ? "s" : "") +
                      " canaries to every backend any proxy uses and none outside the spec");
    }
    return util::join(words, "; ");
  }

  // The proxy most involved in inconsistent reads, as writer or reader; on a
  // tie, the one the ring findings named, else none.
  std::string most_involved(const std::map<std::size_t, std::size_t>& involvement) const {
    std::size_t top = 0;
    for (const auto& [q, count] : involvement) top = std::max(top, count);
    std::vector<std::size_t> leaders, named;
    for (const auto& [q, count] : involvement) {
      if (count != top) continue;
      leaders.push_back(q);
      if (at_fault.contains(q)) named.push_back(q);
    }
    if (leaders.size() == 1) return proxy_name(leaders[0]);
    return named.size() == 1 ? proxy_name(named[0]) : std::string();
  }

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

  // proxy_backend_errors found every reachable proxy failing backend b's
  // canaries: they route there, so "no proxy routes to it" would be false.
  bool every_proxy_fails(std::size_t b) const {
    bool any = false;
    for (std::size_t q = 0; q < proxies; ++q) {
      if (obs.proxy_down(q)) continue;
      const bool failing =
          std::any_of(facts.failing.begin(), facts.failing.end(), [&](const auto& failing_link) {
            return failing_link.link.proxy == proxy_name(q) &&
                   failing_link.link.backend == backend_name(b);
          });
      if (!failing) return false;
      any = true;
    }
    return any;
  }

  std::string proxy_name(std::size_t q) const { return spec.proxies[q].name; }
  std::string backend_name(std::size_t b) const {
    if (b == kOutside) return "a server not in the spec";
    return b < backends ? spec.backends[b].name : std::string("an unknown backend");
  }
  bool affected_by_down_backend(const Canary& canary) const {
    return obs.backend_down(canary.learned);
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
  const std::size_t read;             // proxies the round reads through
  const std::vector<bool> whole;      // per proxy, see canary_routes.h
  std::set<std::size_t> at_fault;     // proxies a ring finding named
  std::set<std::size_t> disagreeing;  // proxies routing canaries no reference settles
  std::vector<std::string> divergence_headlines;
};

}  // namespace

Judgement judge_round(const spec::ClusterSpec& spec, const RoundPlan& plan,
                      const std::vector<KeyVerdict>& verdicts, const Observation& obs,
                      std::size_t transient, report::Report& report, CheckFindings& out,
                      CanaryRound& facts) {
  RoundFindings found(spec, plan, verdicts, obs, report, out, facts);
  found.unreachable_proxies();
  found.unreachable_backends();
  found.ring_divergence();
  found.routed_outside_spec();
  found.ring_disagreement();
  found.proxy_backend_errors();
  found.unrouted_backends();
  found.inconsistent_reads();
  found.transient_disagreement(transient);
  found.coverage();
  found.ring_moved();
  found.proxy_verdicts();
  return Judgement{std::move(found.headlines),         found.proxies_down, found.relearn,
                   std::move(found.unplaced_backends), found.status,       std::move(found.watch)};
}

}  // namespace ringwatch::probes::canary
