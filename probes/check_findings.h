#pragma once
// The part every probe shares: its findings go into the report as they are
// made (so the round context can cite them by index), and finish() adds the
// check's result: the worst finding's status unless the probe says otherwise,
// its headline, and the time since the check started.
//
// One per probe run, used by that run's thread.

#include <chrono>
#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "lib/report/report.h"

namespace ringwatch::probes {

class CheckFindings {
 public:
  // Starts the check's clock.
  CheckFindings(std::string_view check, report::Report& report);

  // A finding of this check, appended to the report; the reference is valid
  // until the next add().
  report::Finding& add(std::string code, report::Severity severity, report::Subject subject,
                       std::string summary);
  // Where the last finding added is in Report::findings.
  std::size_t last_index() const { return report_.findings.size() - 1; }
  // This check's findings so far, in the order they were added.
  std::span<const report::Finding> findings() const;
  // The worst status among them; OK when there is none.
  report::Status worst() const;

  // Adds the check's result with `summary` as its headline and `status`
  // (default: worst()); returns its duration in milliseconds.
  double finish(std::string summary, std::optional<report::Status> status = std::nullopt);

 private:
  std::string check_;
  report::Report& report_;
  std::size_t first_;
  std::chrono::steady_clock::time_point started_;
};

}  // namespace ringwatch::probes
