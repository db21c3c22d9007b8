#include "migration/checks.h"

#include <algorithm>
#include <cstdio>
#include <optional>

#include "lib/report/vocabulary.h"
#include "lib/util/text.h"
#include "probes/registry.h"

namespace ringwatch::migration {

namespace {

std::string format_ratio(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%.4g", value);
  return text;
}

}  // namespace

std::vector<std::string> judge(const CheckSpec& check, const report::Report& report,
                               const spec::ClusterSpec& spec) {
  std::vector<std::string> failures;
  const auto result = std::find_if(report.checks.begin(), report.checks.end(),
                                   [&](const auto& c) { return c.name == check.probe; });
  if (result == report.checks.end()) {
    failures.push_back(check.probe + ": did not run");
    return failures;
  }
  const bool status_ok = result->status == report::Status::ok ||
                         (check.allow_warning && result->status == report::Status::warning);
  if (!status_ok) {
    failures.push_back(check.probe + ": " + report::to_string(result->status) + ": " +
                       result->summary);
  }
  if (check.min_consistency_ratio) {
    const auto figure = report.figures.find(report::figures::kConsistencyRatio);
    const double ratio = figure == report.figures.end() ? 0.0 : figure->second;
    if (ratio < *check.min_consistency_ratio) {
      failures.push_back(check.probe + ": consistency " + format_ratio(ratio) + " < " +
                         format_ratio(*check.min_consistency_ratio));
    }
  }
  for (const auto& backend : check.backends) {
    if (spec.find_backend(backend) == nullptr) {
      failures.push_back(check.probe + ": backend " + backend + " is not in the cluster spec");
      continue;
    }
    for (const auto& finding : report.findings) {
      // The check's headline may already be this finding; say it once.
      if (!status_ok && finding.summary == result->summary) break;
      if (finding.check == check.probe && finding.subject.backend == backend &&
          finding.severity != report::Severity::info) {
        failures.push_back(check.probe + ": " + finding.summary);
        break;
      }
    }
  }
  for (const auto& backend : check.absent_backends) {
    if (spec.find_backend(backend) != nullptr) {
      failures.push_back(check.probe + ": backend " + backend + " is still in the cluster spec");
    }
  }
  return failures;
}

struct CheckRunner::Impl {
  std::string spec_path;
  probes::ProbeOptions options;
  std::optional<spec::ClusterSpec> spec;  // the spec `probes` were built for
  std::unique_ptr<probes::ProbeSet> probes;
};

CheckRunner::CheckRunner(std::string spec_path, std::string dns_vantage)
    : impl_(std::make_unique<Impl>()) {
  impl_->spec_path = std::move(spec_path);
  if (!dns_vantage.empty()) impl_->options.dns_vantage = std::move(dns_vantage);
}

CheckRunner::~CheckRunner() = default;

CheckRound CheckRunner::run(const std::vector<CheckSpec>& checks) {
  CheckRound round;
  spec::ClusterSpec spec;
  try {
    spec = spec::load_cluster_spec(impl_->spec_path);
  } catch (const std::exception& error) {
    round.failures = std::string("cluster spec: ") + error.what();
    return round;
  }
  std::vector<std::string> wanted;
  for (const auto& check : checks) wanted.push_back(check.probe);
  auto names = probes::normalize_checks(wanted);
  if (!names) {
    round.failures = names.error().message();
    return round;
  }
  if (!impl_->probes || impl_->spec != spec || impl_->probes->checks() != names.value()) {
    impl_->probes = std::make_unique<probes::ProbeSet>(names.value(), impl_->options);
    impl_->spec = spec;
  }
  round.report = impl_->probes->run_round(spec);
  std::vector<std::string> failures;
  for (const auto& check : checks) {
    for (auto& failure : judge(check, round.report, spec)) failures.push_back(std::move(failure));
  }
  std::vector<std::string> diagnoses;
  for (const auto& diagnosis : round.report.diagnoses) diagnoses.push_back(diagnosis.summary);
  // No diagnosis ties findings together (one probe ran): the findings speak.
  for (const auto& finding : round.report.findings) {
    if (!round.report.diagnoses.empty() || diagnoses.size() >= 3) break;
    if (finding.severity != report::Severity::info) diagnoses.push_back(finding.summary);
  }
  round.passed = failures.empty();
  round.failures = util::join(failures, "; ");
  round.diagnosis = util::join(diagnoses, "; ");
  return round;
}

}  // namespace ringwatch::migration
