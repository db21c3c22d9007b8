// The Nagios plugin output (monitoring-plugins development guidelines):
//
//   RINGWATCH CRITICAL - p2 is missing b3 (canary: 0/6 routed; ...) — b3's name
//   resolves to 127.200.0.13, ... | 'consistency_ratio'=0.852;0.999:;0.99:;0;1 ...
//   critical canary/ring_divergence: proxy p2 routes 0 of 6 canaries to ...
//   critical dns/dns_outside_range: b3's name b3.lab.ringwatch.test resolves ...
//
// The first line (the status line) is what a pager shows: the status, the
// problem with its cause, and the perfdata a grapher keeps. The lines after it
// are the plugin's long output: the findings, most severe first. '|' starts
// perfdata, so it never appears in the text.

#include <algorithm>
#include <string>
#include <vector>

#include "lib/report/render.h"
#include "lib/util/text.h"

namespace ringwatch::report {

namespace {

// Bounds that keep the output within what monitoring cores store (Nagios
// keeps 8 KB of plugin output); the JSON report carries everything.
constexpr std::size_t kHeadlineColumns = 300;
constexpr std::size_t kLongLineColumns = 300;
constexpr std::size_t kLongLines = 20;

std::string plain(std::string text) {
  for (char& c : text) {
    if (c == '|') c = '/';
    if (c == '\n') c = ' ';
  }
  return text;
}

// The diagnosis behind the round's status, when there is one: it names the
// problem and its cause. Otherwise the report's summary.
const Diagnosis* headline_diagnosis(const Report& report) {
  const Status status = report.status();
  for (const Diagnosis& diagnosis : report.diagnoses) {
    if (status_of(diagnosis.severity) == status) return &diagnosis;
  }
  return nullptr;
}

std::string headline(const Report& report) {
  if (const Diagnosis* diagnosis = headline_diagnosis(report)) return diagnosis->summary;
  const std::string summary = report.summary_line();
  // summary_line() starts with "<STATUS>: "; the status line has the status already.
  const auto colon = summary.find(": ");
  return colon == std::string::npos ? summary : summary.substr(colon + 2);
}

// The headline and the threshold breaches; the breaches first when they set
// the status (the checks themselves found less).
std::string status_text(const Report& report, const std::vector<Breach>& breaches) {
  std::vector<std::string> parts{headline(report)};
  Status breach_status = Status::ok;
  for (const Breach& breach : breaches) {
    parts.push_back(breach.text);
    breach_status = worst(breach_status, breach.status);
  }
  if (urgency(breach_status) > urgency(report.status())) {
    std::rotate(parts.begin(), parts.begin() + 1, parts.end());
  }
  return util::cut_to(plain(util::join(parts, "; ")), kHeadlineColumns);
}

// 'label'=value[UOM];[warn];[crit];[min];[max]
std::string perfdata(const Report& report, const NagiosOptions& options) {
  std::string out;
  for (const auto& [name, value] : report.figures) {
    // Figures about one proxy, backend or vantage point carry its name after a '/'.
    if (!options.all_perfdata && name.find('/') != std::string::npos) continue;
    const bool ms = name.size() > 3 && name.ends_with("_ms");
    const auto warning = options.thresholds.warning.find(name);
    const auto critical = options.thresholds.critical.find(name);
    out += " '" + name + "'=" + format_figure(value) + (ms ? "ms" : "") + ";" +
           (warning != options.thresholds.warning.end() ? warning->second.text : "") + ";" +
           (critical != options.thresholds.critical.end() ? critical->second.text : "") + ";0" +
           (name.ends_with("_ratio") ? ";1" : "");
  }
  return out;
}

// The long output: the diagnoses the status line does not show, then the
// findings, most severe first.
std::string long_output(const Report& report) {
  std::vector<std::string> lines;
  const Diagnosis* shown = headline_diagnosis(report);
  for (const Diagnosis& diagnosis : report.diagnoses) {
    if (&diagnosis == shown) continue;
    lines.push_back(std::string(to_string(diagnosis.severity)) +
                    " diagnosis: " + diagnosis.summary);
  }
  std::vector<const Finding*> findings;
  for (const Finding& finding : report.findings) findings.push_back(&finding);
  std::stable_sort(findings.begin(), findings.end(), [](const Finding* a, const Finding* b) {
    return urgency(a->severity) > urgency(b->severity);
  });
  for (const Finding* finding : findings) {
    lines.push_back(std::string(to_string(finding->severity)) + " " + finding->check + "/" +
                    finding->code + ": " + finding->summary);
  }
  std::string out;
  const std::size_t shown_lines = std::min(lines.size(), kLongLines);
  for (std::size_t i = 0; i < shown_lines; ++i) {
    out += util::cut_to(plain(lines[i]), kLongLineColumns) + "\n";
  }
  if (lines.size() > shown_lines) {
    out += "… and " + std::to_string(lines.size() - shown_lines) +
           " more (ringwatch probe --format json lists them all)\n";
  }
  return out;
}

}  // namespace

Status nagios_status(const Report& report, const Thresholds& thresholds) {
  return status_with(report, check_thresholds(report, thresholds));
}

std::string render_nagios(const Report& report, const NagiosOptions& options) {
  const std::vector<Breach> breaches = check_thresholds(report, options.thresholds);
  const Status status = status_with(report, breaches);
  return "RINGWATCH " + std::string(to_string(status)) + " - " + status_text(report, breaches) +
         " |" + perfdata(report, options) + "\n" + long_output(report);
}

}  // namespace ringwatch::report
