// The text report: what a person reads in a terminal, at 80 columns.
//
//   CRITICAL: ring divergence: p2 is missing b3
//   cluster lab · round 63 ms · consistency 0.852
//
//   Diagnosis
//     critical p2 is missing b3 (canary: 0/6 routed; twemproxy: ejected at
//              10:57:34 UTC, 1 error) — b3's name resolves to 127.200.0.13, ...
//
//   Findings
//     proxy p2, backend b3
//       critical canary/ring_divergence: proxy p2 routes 0 of 6 canaries to
//         backend b3; p1 and p3 route 6 there; p2 sends them to b2 (5) and ...
//         keys: ringwatch:..., ringwatch:..., … +4 more
//
//   Checks
//     canary       CRITICAL   62 ms  ring divergence: p2 is missing b3
//
// Every line fits the width: prose wraps, evidence lists are cut with a count
// (or wrap, with --verbose), so the summary and the diagnosis stay on screen.

#include <algorithm>
#include <cstdio>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "lib/report/render.h"
#include "lib/report/vocabulary.h"
#include "lib/util/text.h"

namespace ringwatch::report {

namespace {

// --- columns ------------------------------------------------------------------

using util::columns;
using util::cut_to;

constexpr std::string_view kEllipsis = "…";

// The byte length of the first `count` code points of `text`.
std::size_t prefix_bytes(std::string_view text, std::size_t count) {
  std::size_t bytes = 0;
  for (std::size_t seen = 0; bytes < text.size(); ++bytes) {
    if ((static_cast<unsigned char>(text[bytes]) & 0xC0) != 0x80 && seen++ == count) break;
  }
  return bytes;
}

// Greedy word wrap: the first row holds `first` columns, the others `rest`.
// A word longer than a row is split.
std::vector<std::string> wrap(std::string_view text, std::size_t first, std::size_t rest) {
  first = std::max<std::size_t>(first, 1);
  rest = std::max<std::size_t>(rest, 1);
  std::vector<std::string> rows(1);
  std::size_t room = first;
  std::size_t used = 0;
  auto new_row = [&] {
    rows.emplace_back();
    room = rest;
    used = 0;
  };
  std::size_t at = 0;
  while (at < text.size()) {
    const std::size_t space = std::min(text.find(' ', at), text.size());
    std::string_view word = text.substr(at, space - at);
    at = space + 1;
    if (word.empty()) continue;
    if (used > 0 && used + 1 + columns(word) > room) new_row();
    while (used == 0 && columns(word) > room) {  // longer than a whole row
      const std::size_t take = prefix_bytes(word, room);
      rows.back() += word.substr(0, take);
      word.remove_prefix(take);
      new_row();
    }
    if (used > 0) {
      rows.back() += ' ';
      ++used;
    }
    rows.back() += word;
    used += columns(word);
  }
  if (rows.size() > 1 && rows.back().empty()) rows.pop_back();
  return rows;
}

// "a, b, c, … +7 more" in at most `width` columns: as many items as fit.
std::string fit_list(const std::vector<std::string>& items, std::size_t width) {
  std::string text;
  for (std::size_t i = 0; i < items.size(); ++i) {
    const std::string candidate = text + (i ? ", " : "") + items[i];
    const std::size_t left = items.size() - i - 1;
    const std::string more = left ? ", … +" + std::to_string(left) + " more" : "";
    if (columns(candidate) + columns(more) <= width) {
      text = candidate;
      continue;
    }
    if (i == 0) {  // not even the first item fits: cut it
      const std::string tail = left ? " +" + std::to_string(left) + " more" : "";
      return cut_to(items[0], width > columns(tail) + 1 ? width - columns(tail) : 1) + tail;
    }
    return text + ", … +" + std::to_string(items.size() - i) + " more";
  }
  return text;
}

// --- colour -------------------------------------------------------------------

const char* color_of(Severity severity) {
  switch (severity) {
    case Severity::info:
      return "\033[36m";
    case Severity::warning:
      return "\033[33m";
    case Severity::critical:
      return "\033[1;31m";
    case Severity::unknown:
      return "\033[35m";
  }
  return "";
}

const char* color_of(Status status) {
  switch (status) {
    case Status::ok:
      return "\033[1;32m";
    case Status::warning:
      return "\033[1;33m";
    case Status::critical:
      return "\033[1;31m";
    case Status::unknown:
      return "\033[1;35m";
  }
  return "";
}

constexpr const char* kBold = "\033[1m";

// --- the page -----------------------------------------------------------------

// What starts a paragraph: text that may carry colour, and the columns it
// takes on screen.
struct Label {
  std::string text;
  std::size_t columns = 0;
};

// Rows of at most `width` columns, optionally coloured. A paragraph is an
// indented label and a text that wraps under itself.
class Page {
 public:
  explicit Page(const TextOptions& options)
      : color_(options.color), width_(static_cast<std::size_t>(std::max(options.width, 40))) {}

  std::size_t width() const { return width_; }

  Label label(std::string_view text, const char* style = nullptr) const {
    return {styled(text, style), columns(text)};
  }
  std::string styled(std::string_view text, const char* style) const {
    if (!color_ || style == nullptr) return std::string(text);
    return std::string(style) + std::string(text) + "\033[0m";
  }

  // `indent` spaces, the label, a space, then `text` wrapped; rows after the
  // first start at column `hang`. `max_rows` > 0 cuts the text to that many
  // rows, the last ending in "…".
  void paragraph(std::size_t indent, const Label& label, std::string_view text, std::size_t hang,
                 std::size_t max_rows = 0) {
    const bool space = label.columns > 0 && !text.empty();
    const std::size_t lead = indent + label.columns + (space ? 1 : 0);
    std::vector<std::string> rows = wrap(text, room(lead), room(hang));
    if (max_rows > 0 && rows.size() > max_rows) {
      rows.resize(max_rows);
      std::string& last = rows.back();
      last = cut_to(last + " " + std::string(kEllipsis), room(max_rows == 1 ? lead : hang));
      if (!last.ends_with(kEllipsis)) last += kEllipsis;
      trimmed_ = true;
    }
    line(std::string(indent, ' ') + label.text + (space ? " " : "") + rows[0]);
    for (std::size_t i = 1; i < rows.size(); ++i) line(std::string(hang, ' ') + rows[i]);
  }
  void paragraph(std::size_t indent, std::string_view text, std::size_t hang) {
    paragraph(indent, Label{}, text, hang);
  }

  // `text` wrapped and every row in `style`.
  void styled_paragraph(std::size_t indent, std::string_view text, const char* style,
                        std::size_t hang) {
    const std::vector<std::string> rows = wrap(text, room(indent), room(hang));
    for (std::size_t i = 0; i < rows.size(); ++i) {
      line(std::string(i ? hang : indent, ' ') + styled(rows[i], style));
    }
  }

  void heading(std::string_view title) { out_ += "\n" + styled(title, kBold) + "\n"; }
  void line(std::string_view text) {
    while (text.ends_with(' ')) text.remove_suffix(1);
    out_ += std::string(text) + "\n";
  }
  void note_trimmed() { trimmed_ = true; }
  bool trimmed() const { return trimmed_; }
  const std::string& str() const { return out_; }

 private:
  std::size_t room(std::size_t start) const { return width_ > start + 10 ? width_ - start : 10; }

  bool color_;
  std::size_t width_;
  std::string out_;
  bool trimmed_ = false;
};

// --- evidence -----------------------------------------------------------------

// The evidence a person reads under a finding in the default report, by
// finding code; everything else is in --verbose and in JSON. An empty list:
// the summary says it all. A code not listed here shows its first two pieces.
struct ReadableEvidence {
  std::string_view code;
  std::vector<std::string_view> keys;
};
const std::vector<ReadableEvidence>& readable_evidence() {
  static const std::vector<ReadableEvidence> table = {
      {codes::kProxyUnreachable, {"error"}},
      {codes::kBackendUnreachable, {"error"}},
      {codes::kBackendTimeout, {"error"}},
      {codes::kRingDivergence, {"keys"}},
      {codes::kRingDisagreement, {"keys"}},
      {codes::kBackendNotRouted, {}},
      {codes::kInconsistentReads, {"groups"}},
      {codes::kForeignValues, {}},
      {codes::kTransientDisagreement, {}},
      {codes::kCoverageShort, {}},
      {codes::kRoutedOutsideSpec, {"keys"}},
      {codes::kProxyStatsUnreadable, {"reason"}},
      {codes::kStaleStats, {"stats_time"}},
      {codes::kProxyConfigDrift, {"differences"}},
      {codes::kBackendStatsUnreadable, {"reason"}},
      {codes::kUnknownPeer, {"peers"}},
      {codes::kProxyMissingBackend, {}},
      {codes::kBackendMissingPeer, {"source_addresses"}},
      {codes::kBackendIdle, {}},
      {codes::kProxyBackendSetsDiffer, {}},
      {codes::kConnectionMatrix, {}},
      {codes::kDnsUnknownVantage, {}},
      {codes::kDnsNoAnswer, {"rcode_a", "rcode_aaaa", "server"}},
      {codes::kDnsOutsideRange, {"answers", "server"}},
      {codes::kDnsUnexpectedAddress, {"answer_belongs_to"}},
      {codes::kDnsTimeout, {"reason", "undecided_names"}},
      {codes::kDnsUnreachable, {"reason", "undecided_names"}},
      {codes::kDnsDisagreement, {"answers_by_vantage"}},
  };
  return table;
}

using Evidence = std::pair<std::string, EvidenceValue>;

std::vector<const Evidence*> evidence_shown(const Finding& finding, bool verbose) {
  std::vector<const Evidence*> shown;
  if (verbose) {
    for (const Evidence& piece : finding.evidence) shown.push_back(&piece);
    return shown;
  }
  const auto& table = readable_evidence();
  const auto row = std::find_if(table.begin(), table.end(),
                                [&](const ReadableEvidence& r) { return r.code == finding.code; });
  for (const Evidence& piece : finding.evidence) {
    const bool listed = row == table.end() ? shown.size() < 2
                                           : std::find(row->keys.begin(), row->keys.end(),
                                                       piece.first) != row->keys.end();
    if (listed) shown.push_back(&piece);
  }
  return shown;
}

// One piece of evidence as a person reads it: a list cut to `width` columns
// with a count, or in full (joined, for wrapping) when `width` is 0.
std::string evidence_text(const EvidenceValue& value, std::size_t width) {
  struct Visitor {
    std::size_t width;
    std::string operator()(std::int64_t v) const { return std::to_string(v); }
    std::string operator()(double v) const { return format_figure(v); }
    std::string operator()(const std::string& v) const { return v; }
    std::string operator()(const std::vector<std::string>& list) const {
      std::string all;
      for (const std::string& item : list) all += (all.empty() ? "" : ", ") + item;
      return width ? fit_list(list, width) : all;
    }
  };
  return std::visit(Visitor{width}, value);
}

// --- sections -----------------------------------------------------------------

// How many diagnoses and subjects the default report shows; the rest are
// counted, and shown with --verbose.
constexpr std::size_t kDiagnosesShown = 5;
constexpr std::size_t kSubjectsShown = 8;
constexpr std::size_t kFindingRows = 3;   // a finding's summary
constexpr std::size_t kCheckRows = 2;     // a check's summary
constexpr std::size_t kEvidenceRows = 2;  // a piece of evidence (a list: one)

// "1.4 ms", "63 ms", "1250 ms", "12.5 s": at most 7 columns
std::string milliseconds(double ms) {
  char buffer[32];
  if (ms < 10) {
    std::snprintf(buffer, sizeof buffer, "%.1f ms", ms);
  } else if (ms < 10000) {
    std::snprintf(buffer, sizeof buffer, "%.0f ms", ms);
  } else {
    std::snprintf(buffer, sizeof buffer, "%.1f s", ms / 1000);
  }
  return buffer;
}

void headline(const Report& report, Page& page, std::size_t max_rows) {
  const std::string summary = report.summary_line();
  const Status status = report.status();
  const std::string status_word = std::string(to_string(status)) + ":";
  const std::string_view rest = summary.starts_with(status_word + " ")
                                    ? std::string_view(summary).substr(status_word.size() + 1)
                                    : std::string_view(summary);
  page.paragraph(0, page.label(status_word, color_of(status)), rest, 2, max_rows);
  std::string line = "cluster " + report.cluster + " · round " + milliseconds(report.duration_ms);
  if (auto ratio = report.figures.find(figures::kConsistencyRatio); ratio != report.figures.end()) {
    line += " · consistency " + format_figure(ratio->second);
  }
  page.paragraph(0, line, 2);
}

void more_line(Page& page, std::size_t indent, std::size_t hidden, std::string_view what) {
  if (hidden == 0) return;
  page.paragraph(indent, "… and " + std::to_string(hidden) + " more " + std::string(what), indent);
  page.note_trimmed();
}

void diagnoses_section(const Report& report, Page& page, bool verbose) {
  if (report.diagnoses.empty()) return;
  page.heading("Diagnosis");
  const std::size_t shown =
      verbose ? report.diagnoses.size() : std::min(report.diagnoses.size(), kDiagnosesShown);
  for (std::size_t i = 0; i < shown; ++i) {
    const Diagnosis& diagnosis = report.diagnoses[i];
    const std::string_view severity = to_string(diagnosis.severity);
    page.paragraph(2, page.label(severity, color_of(diagnosis.severity)), diagnosis.summary,
                   2 + severity.size() + 1);
  }
  more_line(page, 2, report.diagnoses.size() - shown, "diagnoses");
}

void finding(const Finding& finding, Page& page, bool verbose) {
  const std::string_view severity = to_string(finding.severity);
  page.paragraph(4, page.label(severity, color_of(finding.severity)),
                 finding.check + "/" + finding.code + ": " + finding.summary, 6,
                 verbose ? 0 : kFindingRows);
  const bool info = finding.severity == Severity::info;
  const auto shown =
      info && !verbose ? std::vector<const Evidence*>{} : evidence_shown(finding, verbose);
  // Info findings keep their evidence to --verbose by design; say so only
  // when something a person may act on was left out.
  if (!info && shown.size() < finding.evidence.size()) page.note_trimmed();
  for (const Evidence* piece : shown) {
    const std::string key = piece->first + ":";
    const std::size_t used = 6 + columns(key) + 1;
    const std::size_t room = page.width() > used + 10 ? page.width() - used : 10;
    const std::string value = evidence_text(piece->second, verbose ? 0 : room);
    if (!verbose && value.find(kEllipsis) != std::string::npos) page.note_trimmed();
    page.paragraph(6, page.label(key), value, 8, verbose ? 0 : kEvidenceRows);
  }
}

// Findings grouped by subject; subjects with the most urgent finding first,
// then in order of first appearance; within a subject, most urgent first.
void findings_section(const Report& report, Page& page, bool verbose) {
  if (report.findings.empty()) return;
  std::vector<std::string> order;
  std::map<std::string, std::vector<const Finding*>> by_subject;
  for (const Finding& f : report.findings) {
    const std::string key = f.subject.describe();
    if (!by_subject.contains(key)) order.push_back(key);
    by_subject[key].push_back(&f);
  }
  auto most_urgent = [](const Finding* a, const Finding* b) {
    return urgency(a->severity) > urgency(b->severity);
  };
  for (auto& [subject, list] : by_subject) std::stable_sort(list.begin(), list.end(), most_urgent);
  std::stable_sort(order.begin(), order.end(), [&](const std::string& a, const std::string& b) {
    return most_urgent(by_subject[a].front(), by_subject[b].front());
  });
  page.heading("Findings");
  const std::size_t shown = verbose ? order.size() : std::min(order.size(), kSubjectsShown);
  for (std::size_t i = 0; i < shown; ++i) {
    page.styled_paragraph(2, order[i], kBold, 4);
    for (const Finding* f : by_subject[order[i]]) finding(*f, page, verbose);
  }
  std::size_t hidden = 0;
  for (std::size_t i = shown; i < order.size(); ++i) hidden += by_subject[order[i]].size();
  more_line(page, 2, hidden, hidden == 1 ? "finding" : "findings");
}

// One row per check: name, status and time in columns, then its summary.
void checks_section(const Report& report, Page& page, bool verbose) {
  page.heading("Checks");
  std::size_t name_width = 0;
  for (const CheckResult& check : report.checks) {
    name_width = std::max(name_width, check.name.size());
  }
  for (const CheckResult& check : report.checks) {
    const std::string status = to_string(check.status);
    char timing[32];
    std::snprintf(timing, sizeof timing, "%8s ", milliseconds(check.duration_ms).c_str());
    const Label label{check.name + std::string(name_width + 2 - check.name.size(), ' ') +
                          page.styled(status, color_of(check.status)) +
                          std::string(8 - status.size(), ' ') + timing,
                      name_width + 2 + 8 + 9};
    page.paragraph(2, label, check.summary, 2 + label.columns + 1, verbose ? 0 : kCheckRows);
  }
}

void figures_section(const Report& report, Page& page) {
  if (report.figures.empty()) return;
  page.heading("Figures");
  std::string all;
  for (const auto& [name, value] : report.figures) {
    all += (all.empty() ? "" : " ") + name + "=" + format_figure(value);
  }
  page.paragraph(2, all, 2);
}

}  // namespace

std::string render_text(const Report& report, const TextOptions& options) {
  Page page(options);
  headline(report, page, options.verbose ? 0 : 3);
  diagnoses_section(report, page, options.verbose);
  findings_section(report, page, options.verbose);
  checks_section(report, page, options.verbose);
  if (options.verbose) {
    figures_section(report, page);
  } else if (page.trimmed()) {
    page.line("");
    page.paragraph(0, "Trimmed to fit: --verbose or --format json shows everything.", 0);
  }
  return page.str();
}

}  // namespace ringwatch::report
