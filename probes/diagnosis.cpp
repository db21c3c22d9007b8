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

// The links some check finds apart, each with what the checks say, in the
// order of their findings.
std::map<Link, std::vector<Fact>> broken_links(const spec::ClusterSpec& spec,
                                               const RoundContext& round) {
  std::map<Link, std::vector<Fact>> links;
  if (round.canary) {
    for (const auto& missing : round.canary->missing) {
      links[missing.link].push_back({missing.finding, "canary: " + std::to_string(missing.routed) +
                                                          "/" + std::to_string(missing.canaries) +
                                                          " routed"});
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
      const spec::Proxy* proxy = spec.find_proxy(missing.link.proxy);
      const std::string source =
          proxy ? spec::to_string(proxy->kind) : report::checks::kConnections;
      links[missing.link].push_back(
          {missing.finding, source + ": " + missing.why, missing.still_routed});
    }
  }
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
    std::sort(indexes.begin(), indexes.end());
    indexes.erase(std::unique(indexes.begin(), indexes.end()), indexes.end());
    report.diagnoses.push_back(Diagnosis{
        Severity::critical, {.proxy = link.proxy, .backend = link.backend}, summary, indexes});
  }
}

// A backend the canary cannot reach: its finding, and the other checks that
// see trouble with the same backend.
void diagnose_unreachable_backends(const RoundContext& round, report::Report& report) {
  if (!round.canary) return;
  std::map<std::string, std::size_t> by_name;  // diagnoses in the order of backend names
  for (const auto& unreachable : round.canary->unreachable_backends) {
    by_name.emplace(unreachable.backend, unreachable.finding);
  }
  const auto& findings = report.findings;
  for (const auto& [backend, finding_index] : by_name) {
    std::vector<std::size_t> indexes{finding_index};
    std::vector<std::string> others;
    for (std::size_t i = 0; i < findings.size(); ++i) {
      const Finding& finding = findings[i];
      if (finding.subject.backend != backend || finding.check == report::checks::kCanary ||
          finding.severity == Severity::info) {
        continue;
      }
      indexes.push_back(i);
      others.push_back(finding.check);
    }
    if (others.empty()) continue;  // one check alone needs no tying together
    std::string summary = findings[finding_index].summary + " (also seen by:";
    std::set<std::string> seen;
    for (const std::string& check : others) {
      if (seen.insert(check).second) summary += " " + check;
    }
    summary += ")";
    std::sort(indexes.begin(), indexes.end());
    report.diagnoses.push_back(
        Diagnosis{Severity::critical, {.backend = backend}, summary, indexes});
  }
}

}  // namespace

void diagnose(const spec::ClusterSpec& spec, const RoundContext& round, report::Report& report) {
  diagnose_missing_links(spec, round, report);
  diagnose_unreachable_backends(round, report);
}

}  // namespace ringwatch::probes
