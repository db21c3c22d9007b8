#include "probes/diagnosis.h"

#include <algorithm>
#include <map>
#include <set>
#include <utility>

#include "lib/report/vocabulary.h"

namespace ringwatch::probes {

namespace codes = report::codes;

namespace {

using report::Diagnosis;
using report::EvidenceValue;
using report::Finding;
using report::Severity;

const EvidenceValue* evidence(const Finding& finding, const std::string& key) {
  for (const auto& [name, value] : finding.evidence) {
    if (name == key) return &value;
  }
  return nullptr;
}

std::string evidence_text(const Finding& finding, const std::string& key) {
  const EvidenceValue* value = evidence(finding, key);
  if (value == nullptr) return "";
  if (const auto* text = std::get_if<std::string>(value)) return *text;
  if (const auto* number = std::get_if<std::int64_t>(value)) return std::to_string(*number);
  if (const auto* list = std::get_if<std::vector<std::string>>(value)) {
    std::string joined;
    for (const std::string& item : *list) joined += (joined.empty() ? "" : ", ") + item;
    return joined;
  }
  return "";
}

bool lists(const Finding& finding, const std::string& key, const std::string& item) {
  const EvidenceValue* value = evidence(finding, key);
  const auto* list = value ? std::get_if<std::vector<std::string>>(value) : nullptr;
  return list != nullptr && std::find(list->begin(), list->end(), item) != list->end();
}

// What the connection audit says about a (proxy, backend) pair, in a few words:
// the summary's parenthesis ("ejected at 14:02:11, 3 errors") if it has one.
std::string connection_fact(const spec::ClusterSpec& spec, const Finding& finding) {
  const spec::Proxy* proxy = spec.find_proxy(finding.subject.proxy);
  const std::string source = proxy ? spec::to_string(proxy->kind) : report::checks::kConnections;
  const auto open = finding.summary.find(" (");
  if (open != std::string::npos && finding.summary.back() == ')') {
    return source + ": " + finding.summary.substr(open + 2, finding.summary.size() - open - 3);
  }
  return source + ": " + finding.summary;
}

}  // namespace

void diagnose(const spec::ClusterSpec& spec, report::Report& report) {
  const auto& findings = report.findings;
  // (proxy, backend) pairs some check says are apart.
  std::map<std::pair<std::string, std::string>, std::vector<std::size_t>> missing;
  for (std::size_t i = 0; i < findings.size(); ++i) {
    const Finding& finding = findings[i];
    const auto& subject = finding.subject;
    if (subject.proxy.empty() || subject.backend.empty()) continue;
    const bool canary_missing = finding.code == codes::kRingDivergence &&
                                lists(finding, "missing_backends", subject.backend);
    const bool connection_missing = finding.check == report::checks::kConnections &&
                                    finding.severity == Severity::critical &&
                                    finding.code == codes::kProxyMissingBackend;
    if (canary_missing || connection_missing)
      missing[{subject.proxy, subject.backend}].push_back(i);
  }

  for (auto& [pair, indexes] : missing) {
    const auto& [proxy_name, backend_name] = pair;
    std::vector<std::string> facts;
    for (std::size_t i : indexes) {
      const Finding& finding = findings[i];
      if (finding.code == codes::kRingDivergence) {
        facts.push_back("canary: " + evidence_text(finding, "routed_to_backend") + "/" +
                        evidence_text(finding, "canaries_for_backend") + " routed");
      } else {
        facts.push_back(connection_fact(spec, finding));
      }
    }
    // The backend's side of the connection, when the audit could attribute it.
    for (std::size_t i = 0; i < findings.size(); ++i) {
      const Finding& finding = findings[i];
      if (finding.code == codes::kBackendMissingPeer && finding.subject.backend == backend_name &&
          finding.subject.proxy == proxy_name) {
        facts.push_back(backend_name + "'s peers lack " + proxy_name);
        indexes.push_back(i);
      }
    }
    std::string summary = proxy_name + " is missing " + backend_name;
    if (!facts.empty()) {
      summary += " (";
      for (std::size_t j = 0; j < facts.size(); ++j) summary += (j ? "; " : "") + facts[j];
      summary += ")";
    }
    // The cause, when DNS shows it: the backend's name answered outside its range.
    const spec::Proxy* proxy = spec.find_proxy(proxy_name);
    std::vector<std::string> causes;
    for (std::size_t i = 0; i < findings.size(); ++i) {
      const Finding& finding = findings[i];
      if (finding.code != codes::kDnsOutsideRange || finding.subject.backend != backend_name)
        continue;
      const std::string vantage = evidence_text(finding, "vantage");
      const bool at_proxy = proxy && proxy->dns_vantage && *proxy->dns_vantage == vantage;
      const spec::Backend* backend = spec.find_backend(backend_name);
      causes.push_back(
          backend_name + "'s name resolves to " + evidence_text(finding, "outside_answers") +
          ", outside " +
          (backend ? backend->expected_cidr.to_string() : evidence_text(finding, "expected_cidr")) +
          ", at " +
          (at_proxy ? "the vantage point used by " + proxy_name : "vantage point " + vantage));
      indexes.push_back(i);
    }
    for (std::size_t j = 0; j < causes.size(); ++j) summary += (j ? "; " : " — ") + causes[j];
    std::sort(indexes.begin(), indexes.end());
    indexes.erase(std::unique(indexes.begin(), indexes.end()), indexes.end());
    report.diagnoses.push_back(Diagnosis{
        Severity::critical, {.proxy = proxy_name, .backend = backend_name}, summary, indexes});
  }

  // A backend down: tie the canary's view to the audits' views of it.
  std::map<std::string, std::vector<std::size_t>> down;
  for (std::size_t i = 0; i < findings.size(); ++i) {
    const Finding& finding = findings[i];
    if (finding.subject.backend.empty() || !finding.subject.proxy.empty()) continue;
    if (finding.code == codes::kBackendUnreachable || finding.code == codes::kBackendTimeout) {
      down[finding.subject.backend].push_back(i);
    }
  }
  for (auto& [backend_name, indexes] : down) {
    std::vector<std::string> others;
    for (std::size_t i = 0; i < findings.size(); ++i) {
      const Finding& finding = findings[i];
      if (finding.subject.backend != backend_name || finding.check == report::checks::kCanary ||
          finding.severity == Severity::info) {
        continue;
      }
      indexes.push_back(i);
      others.push_back(finding.check);
    }
    if (others.empty()) continue;  // one check alone needs no tying together
    std::string summary = findings[indexes.front()].summary + " (also seen by:";
    std::set<std::string> seen;
    for (const std::string& check : others) {
      if (seen.insert(check).second) summary += " " + check;
    }
    summary += ")";
    std::sort(indexes.begin(), indexes.end());
    report.diagnoses.push_back(
        Diagnosis{Severity::critical, {.backend = backend_name}, summary, indexes});
  }
}

}  // namespace ringwatch::probes
