#include "probes/check_findings.h"

#include <utility>

namespace ringwatch::probes {

CheckFindings::CheckFindings(std::string_view check, report::Report& report)
    : check_(check),
      report_(report),
      first_(report.findings.size()),
      started_(std::chrono::steady_clock::now()) {}

report::Finding& CheckFindings::add(std::string code, report::Severity severity,
                                    report::Subject subject, std::string summary) {
  report_.add(report::Finding{
      check_, std::move(code), severity, std::move(subject), std::move(summary), {}});
  return report_.findings.back();
}

std::span<const report::Finding> CheckFindings::findings() const {
  return std::span<const report::Finding>(report_.findings).subspan(first_);
}

report::Status CheckFindings::worst() const {
  report::Status status = report::Status::ok;
  for (const report::Finding& finding : findings()) {
    status = report::worst(status, report::status_of(finding.severity));
  }
  return status;
}

double CheckFindings::finish(std::string summary, std::optional<report::Status> status) {
  const double duration_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started_)
          .count();
  report_.checks.push_back(
      report::CheckResult{check_, status.value_or(worst()), std::move(summary), duration_ms});
  return duration_ms;
}

}  // namespace ringwatch::probes
