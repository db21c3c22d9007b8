#include "probes/diagnosis.h"

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "lib/report/vocabulary.h"
#include "lib/util/text.h"

namespace ringwatch::probes {

namespace {

using report::Diagnosis;
using report::Finding;
using report::Severity;

// One check's word on a link, in a few words, and the finding that says it.
struct Fact {
  std::size_t finding = 0;
  std::string text;  // "canary: 0/6 routed", "twemproxy: ejected at 14:02:11 UTC, 3 errors"
  // The proxy still routes the backend's keys and fails them (it does not
  // route around the backend): the link is one it "cannot reach", not one it
  // "is missing".
  bool still_routed = false;
};

void sort_by_finding(std::vector<Fact>& facts) {
  std::sort(facts.begin(), facts.end(),
            [](const Fact& a, const Fact& b) { return a.finding < b.finding; });
}

// Who speaks for a proxy's own view: its kind ("twemproxy"), or the check.
std::string proxy_source(const spec::ClusterSpec& spec, const std::string& proxy_name) {
  const spec::Proxy* proxy = spec.find_proxy(proxy_name);
  return proxy ? spec::to_string(proxy->kind) : report::checks::kConnections;
}

// A node the canary could not reach, whose trouble explains what the other
// checks see of it (their findings about it are tied to it, not diagnosed
// apart).
bool node_unreachable(const RoundContext& round, const Link& link) {
  if (!round.canary) return false;
  const auto& backends = round.canary->unreachable_backends;
  return round.canary->unreachable_proxies.contains(link.proxy) ||
         std::any_of(backends.begin(), backends.end(),
                     [&](const auto& down) { return down.backend == link.backend; });
}

// The links some check finds apart, each with what the checks say, in the
// order of their findings; links to a node the canary cannot reach are that
// node's story.
std::map<Link, std::vector<Fact>> broken_links(const spec::ClusterSpec& spec,
                                               const RoundContext& round) {
  std::map<Link, std::vector<Fact>> links;
  if (round.canary) {
    for (const auto& missing : round.canary->missing) {
      links[missing.link].push_back(
          {missing.finding, missing.canaries == 0
                                ? std::string("canary: routes none there")
                                : "canary: " + std::to_string(missing.routed) + "/" +
                                      std::to_string(missing.canaries) + " routed"});
    }
    for (const auto& failing : round.canary->failing) {
      links[failing.link].push_back({failing.finding,
                                     "canary: " + std::to_string(failing.failed) + "/" +
                                         std::to_string(failing.canaries) + " failed with " +
                                         failing.error,
                                     true});
    }
  }
  if (round.connections) {
    for (const auto& missing : round.connections->missing) {
      links[missing.link].push_back({missing.finding,
                                     proxy_source(spec, missing.link.proxy) + ": " + missing.why,
                                     missing.still_routed});
    }
  }
  std::erase_if(links, [&](const auto& entry) { return node_unreachable(round, entry.first); });
  for (auto& [link, facts] : links) sort_by_finding(facts);
  return links;
}

// The cause, when DNS shows it: the backend's name answered outside its range.
std::vector<Fact> dns_causes(const spec::ClusterSpec& spec, const RoundContext& round,
                             const Link& link) {
  std::vector<Fact> causes;
  if (!round.dns) return causes;
  const spec::Proxy* proxy = spec.find_proxy(link.proxy);
  for (const auto& outside : round.dns->outside) {
    if (outside.backend != link.backend) continue;
    const bool at_proxy = proxy && proxy->dns_vantage && *proxy->dns_vantage == outside.vantage;
    causes.push_back({outside.finding, link.backend + "'s name resolves to " +
                                           util::join(outside.answers) + ", outside " +
                                           outside.expected_cidr + ", at " +
                                           (at_proxy ? "the vantage point used by " + link.proxy
                                                     : "vantage point " + outside.vantage)});
  }
  sort_by_finding(causes);
  return causes;
}

// The other checks' findings (not info) about the nodes `about` picks: their
// indexes, and " (also seen by: connections dns)", or "" when there are none.
template <class About>
std::pair<std::vector<std::size_t>, std::string> also_seen(const report::Report& report,
                                                           About about) {
  std::vector<std::size_t> indexes;
  std::set<std::string> checks;
  std::string words;
  for (std::size_t i = 0; i < report.findings.size(); ++i) {
    const Finding& finding = report.findings[i];
    if (finding.check == report::checks::kCanary || finding.severity == Severity::info ||
        !about(finding.subject)) {
      continue;
    }
    indexes.push_back(i);
    if (checks.insert(finding.check).second) words += " " + finding.check;
  }
  return {indexes, words.empty() ? "" : " (also seen by:" + words + ")"};
}

Diagnosis tied(Severity severity, report::Subject subject, std::string summary,
               std::vector<std::size_t> indexes) {
  std::sort(indexes.begin(), indexes.end());
  indexes.erase(std::unique(indexes.begin(), indexes.end()), indexes.end());
  return Diagnosis{severity, std::move(subject), std::move(summary), std::move(indexes)};
}

// "p2 is missing b3 (canary: 0/6 routed; twemproxy: ejected at 14:02:11 UTC) —
// b3's name resolves to 127.200.0.13, outside 127.10.0.0/16, at the vantage
// point used by p2", or "p2 cannot reach b3 (canary: 6/6 failed with
// SERVER_ERROR backend failure; memcached-proxy: marked bad by 2 of 2 worker
// threads)" when the proxy keeps the backend's keys and fails them.
void diagnose_missing_links(const spec::ClusterSpec& spec, const RoundContext& round,
                            report::Report& report) {
  for (auto& [link, facts] : broken_links(spec, round)) {
    // The backend's side of the connection, when the audit could attribute it.
    if (round.connections) {
      for (const auto& peer : round.connections->peers_missing) {
        if (peer.link == link) {
          facts.push_back({peer.finding, link.backend + "'s peers lack " + link.proxy});
        }
      }
    }
    std::vector<std::size_t> indexes;
    std::vector<std::string> texts;
    bool still_routed = false;
    for (const Fact& fact : facts) {
      indexes.push_back(fact.finding);
      texts.push_back(fact.text);
      still_routed = still_routed || fact.still_routed;
    }
    std::string summary =
        link.proxy + (still_routed ? " cannot reach " : " is missing ") + link.backend;
    if (!texts.empty()) summary += " (" + util::join(texts, "; ") + ")";
    const std::vector<Fact> causes = dns_causes(spec, round, link);
    for (std::size_t j = 0; j < causes.size(); ++j) {
      summary += (j ? "; " : " — ") + causes[j].text;
      indexes.push_back(causes[j].finding);
    }
    report.diagnoses.push_back(
        tied(Severity::critical, {.proxy = link.proxy, .backend = link.backend}, summary, indexes));
  }
}

// Proxies the canary cannot reach, and the other checks that see trouble with
// them: every proxy at once when none answers (a total outage is one cause),
// else each on its own.
void diagnose_unreachable_proxies(const spec::ClusterSpec& spec, const RoundContext& round,
                                  report::Report& report) {
  if (!round.canary || round.canary->unreachable_proxy_findings.empty()) return;
  const auto& down = round.canary->unreachable_proxy_findings;
  if (down.size() == spec.proxies.size()) {
    const auto [others, words] = also_seen(report, [&](const report::Subject& subject) {
      return round.canary->unreachable_proxies.contains(subject.proxy);
    });
    if (others.empty()) return;  // one check alone needs no tying together
    std::vector<std::size_t> indexes = others;
    std::vector<std::string> names;
    for (const auto& proxy : down) {
      indexes.push_back(proxy.finding);
      names.push_back(proxy.proxy);
    }
    report.diagnoses.push_back(
        tied(Severity::critical, {}, "no proxy reachable: " + util::join(names) + words, indexes));
    return;
  }
  for (const auto& proxy : down) {
    const auto [others, words] = also_seen(
        report, [&](const report::Subject& subject) { return subject.proxy == proxy.proxy; });
    if (others.empty()) continue;
    std::vector<std::size_t> indexes = others;
    indexes.push_back(proxy.finding);
    report.diagnoses.push_back(tied(Severity::critical, {.proxy = proxy.proxy},
                                    report.findings[proxy.finding].summary + words, indexes));
  }
}

// A backend the canary cannot reach: its finding, and the other checks that
// see trouble with the same backend (proxies not connected to it among them:
// the backend is the cause, not each proxy).
void diagnose_unreachable_backends(const RoundContext& round, report::Report& report) {
  if (!round.canary) return;
  std::map<std::string, std::size_t> by_name;  // diagnoses in the order of backend names
  for (const auto& unreachable : round.canary->unreachable_backends) {
    by_name.emplace(unreachable.backend, unreachable.finding);
  }
  for (const auto& [name, finding_index] : by_name) {
    const std::string& backend = name;  // clang 14 cannot capture a structured binding
    const auto [others, words] = also_seen(
        report, [&](const report::Subject& subject) { return subject.backend == backend; });
    if (others.empty()) continue;  // one check alone needs no tying together
    std::vector<std::size_t> indexes = others;
    indexes.push_back(finding_index);
    report.diagnoses.push_back(tied(Severity::critical, {.backend = backend},
                                    report.findings[finding_index].summary + words, indexes));
  }
}

// A proxy sending canaries to a server the spec does not list, with the
// servers its own list has that the spec does not.
void diagnose_outside(const spec::ClusterSpec& spec, const RoundContext& round,
                      report::Report& report) {
  if (!round.canary) return;
  for (const auto& outside : round.canary->outside) {
    std::vector<std::size_t> indexes{outside.finding};
    std::string facts = "canary: " + std::to_string(outside.canaries) + " of " +
                        std::to_string(outside.considered) + " canaries on no configured backend";
    if (round.connections) {
      for (const auto& drift : round.connections->drift) {
        if (drift.proxy != outside.proxy || drift.extra.empty()) continue;
        facts += "; " + proxy_source(spec, drift.proxy) + ": has " + util::join_and(drift.extra) +
                 ", not in the spec";
        indexes.push_back(drift.finding);
      }
    }
    report.diagnoses.push_back(
        tied(Severity::critical, {.proxy = outside.proxy},
             outside.proxy + " routes canaries outside the spec (" + facts + ")", indexes));
  }
}

// Canaries the proxies disagree on with no reference route: the canary named
// no proxy, so each proxy's own server list speaks, when the audit compared
// every one of them with the spec.
void diagnose_disagreement(const spec::ClusterSpec& spec, const RoundContext& round,
                           report::Report& report) {
  if (!round.canary || !round.canary->disagreement || !round.connections) return;
  const CanaryRound::Disagreement& disagreement = *round.canary->disagreement;
  const ConnectionsRound& audit = *round.connections;
  std::vector<std::string> matching;
  std::vector<const ConnectionsRound::Drift*> differing;
  for (const std::string& proxy : disagreement.proxies) {
    if (!audit.server_lists_compared.contains(proxy)) return;
    const auto drift = std::find_if(audit.drift.begin(), audit.drift.end(),
                                    [&](const auto& d) { return d.proxy == proxy; });
    if (drift == audit.drift.end()) {
      matching.push_back(proxy);
    } else {
      differing.push_back(&*drift);
    }
  }
  const std::string disagree = util::join_and(disagreement.proxies) + " disagree on " +
                               std::to_string(disagreement.canaries) +
                               " canaries with no majority route; ";
  if (differing.empty()) {
    report.diagnoses.push_back(tied(Severity::critical, {},
                                    disagree + "their server lists match the spec, so they hash "
                                               "differently (hash, distribution or weights)",
                                    {disagreement.finding}));
    return;
  }
  for (const auto* drift : differing) {
    std::string summary = disagree + drift->proxy + "'s server list differs from the spec (" +
                          proxy_source(spec, drift->proxy) + ": " +
                          util::join(drift->differences, "; ") + ")";
    if (!matching.empty()) {
      summary +=
          ", " + util::join_and(matching) + (matching.size() == 1 ? "'s matches" : "'s match");
    }
    report.diagnoses.push_back(tied(Severity::critical, {.proxy = drift->proxy}, summary,
                                    {disagreement.finding, drift->finding}));
  }
}

}  // namespace

// Causes first: a node the probe cannot reach explains what every check sees
// of it, so its diagnosis leads and the links to it are not diagnosed apart.
void diagnose(const spec::ClusterSpec& spec, const RoundContext& round, report::Report& report) {
  diagnose_unreachable_proxies(spec, round, report);
  diagnose_unreachable_backends(round, report);
  diagnose_missing_links(spec, round, report);
  diagnose_outside(spec, round, report);
  diagnose_disagreement(spec, round, report);
}

}  // namespace ringwatch::probes
