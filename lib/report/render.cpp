#include "lib/report/render.h"

#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cmath>
#include <cstdio>
#include <ctime>
#include <map>
#include <sstream>

#include "lib/report/vocabulary.h"
#include "lib/util/time.h"

namespace ringwatch::report {

std::optional<Format> parse_format(std::string_view name) {
  if (name == "text") return Format::text;
  if (name == "json") return Format::json;
  if (name == "nagios") return Format::nagios;
  return std::nullopt;
}

namespace {

// Figures are doubles; print integers without a fraction, others with 3 decimals.
std::string format_number(double value) {
  char buffer[64];
  if (std::isfinite(value) && value == std::floor(value) && std::fabs(value) < 1e15) {
    std::snprintf(buffer, sizeof buffer, "%.0f", value);
  } else {
    std::snprintf(buffer, sizeof buffer, "%.3f", value);
  }
  return buffer;
}

std::string evidence_text(const EvidenceValue& value) {
  struct Visitor {
    std::string operator()(std::int64_t v) const { return std::to_string(v); }
    std::string operator()(double v) const { return format_number(v); }
    std::string operator()(const std::string& v) const { return v; }
    std::string operator()(const std::vector<std::string>& list) const {
      std::string text;
      const std::size_t shown = std::min<std::size_t>(list.size(), 8);
      for (std::size_t i = 0; i < shown; ++i) text += (i ? ", " : "") + list[i];
      if (list.size() > shown) text += ", ... (" + std::to_string(list.size()) + " in all)";
      return text;
    }
  };
  return std::visit(Visitor{}, value);
}

template <class Writer>
void write_subject(Writer& writer, const Subject& subject) {
  writer.StartObject();
  auto field = [&writer](const char* name, const std::string& value) {
    if (value.empty()) return;
    writer.Key(name);
    writer.String(value);
  };
  field("proxy", subject.proxy);
  field("backend", subject.backend);
  field("node", subject.node);
  field("vantage", subject.vantage);
  writer.EndObject();
}

template <class Writer>
void write_evidence(Writer& writer, const EvidenceValue& value) {
  struct Visitor {
    Writer& w;
    void operator()(std::int64_t v) const { w.Int64(v); }
    void operator()(double v) const { w.Double(std::isfinite(v) ? v : 0.0); }
    void operator()(const std::string& v) const { w.String(v); }
    void operator()(const std::vector<std::string>& list) const {
      w.StartArray();
      for (const std::string& item : list) w.String(item);
      w.EndArray();
    }
  };
  std::visit(Visitor{writer}, value);
}

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

// The per-link and per-name views, after everything else (schema additions:
// absent when empty, so a report without them renders as before).
template <class Writer>
void write_views(Writer& writer, const Report& report) {
  const auto field = [&writer](const char* key, const std::string& value) {
    writer.Key(key);
    writer.String(value);
  };
  if (!report.links.empty()) {
    writer.Key("links");
    writer.StartArray();
    for (const LinkView& link : report.links) {
      writer.StartObject();
      field("proxy", link.proxy);
      field("backend", link.backend);
      field("state", link.state);
      field("canary", link.canary);
      field("proxy_side", link.proxy_side);
      field("backend_side", link.backend_side);
      writer.EndObject();
    }
    writer.EndArray();
  }
  if (!report.dns_answers.empty()) {
    writer.Key("dns_answers");
    writer.StartArray();
    for (const DnsAnswerView& answer : report.dns_answers) {
      writer.StartObject();
      field("backend", answer.backend);
      field("node", answer.node);
      field("vantage", answer.vantage);
      field("verdict", answer.verdict);
      writer.Key("addresses");
      writer.StartArray();
      for (const std::string& address : answer.addresses) writer.String(address);
      writer.EndArray();
      writer.EndObject();
    }
    writer.EndArray();
  }
}

}  // namespace

std::string render_json(const Report& report) {
  rapidjson::StringBuffer buffer;
  rapidjson::PrettyWriter<rapidjson::StringBuffer> writer(buffer);
  writer.SetIndent(' ', 2);
  writer.StartObject();
  writer.Key("schema");
  writer.String("ringwatch.report/v1");
  writer.Key("cluster");
  writer.String(report.cluster);
  writer.Key("status");
  writer.String(to_string(report.status()));
  writer.Key("exit_code");
  writer.Int(static_cast<int>(report.status()));
  writer.Key("summary");
  writer.String(report.summary_line());
  writer.Key("started_at");
  writer.String(util::format_rfc3339_ms(report.started_at));
  writer.Key("duration_ms");
  writer.Double(report.duration_ms);

  writer.Key("checks");
  writer.StartArray();
  for (const CheckResult& check : report.checks) {
    writer.StartObject();
    writer.Key("name");
    writer.String(check.name);
    writer.Key("status");
    writer.String(to_string(check.status));
    writer.Key("summary");
    writer.String(check.summary);
    writer.Key("duration_ms");
    writer.Double(check.duration_ms);
    writer.EndObject();
  }
  writer.EndArray();

  writer.Key("diagnoses");
  writer.StartArray();
  for (const Diagnosis& diagnosis : report.diagnoses) {
    writer.StartObject();
    writer.Key("severity");
    writer.String(to_string(diagnosis.severity));
    writer.Key("subject");
    write_subject(writer, diagnosis.subject);
    writer.Key("summary");
    writer.String(diagnosis.summary);
    writer.Key("findings");
    writer.StartArray();
    for (std::size_t index : diagnosis.finding_indexes) writer.Uint64(index);
    writer.EndArray();
    writer.EndObject();
  }
  writer.EndArray();

  writer.Key("findings");
  writer.StartArray();
  for (const Finding& finding : report.findings) {
    writer.StartObject();
    writer.Key("check");
    writer.String(finding.check);
    writer.Key("code");
    writer.String(finding.code);
    writer.Key("severity");
    writer.String(to_string(finding.severity));
    writer.Key("subject");
    write_subject(writer, finding.subject);
    writer.Key("summary");
    writer.String(finding.summary);
    writer.Key("evidence");
    writer.StartObject();
    for (const auto& [key, value] : finding.evidence) {
      writer.Key(key);
      write_evidence(writer, value);
    }
    writer.EndObject();
    writer.EndObject();
  }
  writer.EndArray();

  writer.Key("figures");
  writer.StartObject();
  for (const auto& [name, value] : report.figures) {
    writer.Key(name);
    writer.Double(std::isfinite(value) ? value : 0.0);
  }
  writer.EndObject();
  write_views(writer, report);
  writer.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize()) + "\n";
}

std::string render_text(const Report& report, const TextOptions& options) {
  const char* reset = options.color ? "\033[0m" : "";
  const char* bold = options.color ? "\033[1m" : "";
  std::ostringstream out;
  const Status overall = report.status();
  out << (options.color ? color_of(overall) : "") << report.summary_line() << reset << "\n";
  out << "cluster " << report.cluster << " · round " << format_number(report.duration_ms) << " ms";
  if (auto ratio = report.figures.find(figures::kConsistencyRatio); ratio != report.figures.end()) {
    out << " · consistency " << format_number(ratio->second);
  }
  out << "\n";

  if (!report.diagnoses.empty()) {
    out << "\n" << bold << "Diagnosis" << reset << "\n";
    for (const Diagnosis& diagnosis : report.diagnoses) {
      out << "  " << (options.color ? color_of(diagnosis.severity) : "")
          << to_string(diagnosis.severity) << reset << " " << diagnosis.summary << "\n";
    }
  }

  // Findings grouped by subject, subjects in order of first appearance.
  std::vector<std::string> order;
  std::map<std::string, std::vector<const Finding*>> by_subject;
  for (const Finding& finding : report.findings) {
    const std::string key = finding.subject.describe();
    if (!by_subject.contains(key)) order.push_back(key);
    by_subject[key].push_back(&finding);
  }
  if (!order.empty()) out << "\n" << bold << "Findings" << reset << "\n";
  for (const std::string& subject : order) {
    out << "  " << bold << subject << reset << "\n";
    for (const Finding* finding : by_subject[subject]) {
      out << "    " << (options.color ? color_of(finding->severity) : "")
          << to_string(finding->severity) << reset << " " << finding->check << "/" << finding->code
          << ": " << finding->summary << "\n";
      for (const auto& [key, value] : finding->evidence) {
        out << "        " << key << ": " << evidence_text(value) << "\n";
      }
    }
  }

  out << "\n" << bold << "Checks" << reset << "\n";
  for (const CheckResult& check : report.checks) {
    out << "  " << check.name << " " << (options.color ? color_of(check.status) : "")
        << to_string(check.status) << reset << " (" << format_number(check.duration_ms) << " ms)";
    if (!check.summary.empty()) out << " " << check.summary;
    out << "\n";
  }
  if (!report.figures.empty()) {
    out << "\n" << bold << "Figures" << reset << "\n ";
    for (const auto& [name, value] : report.figures)
      out << " " << name << "=" << format_number(value);
    out << "\n";
  }
  return out.str();
}

std::string render_nagios(const Report& report) {
  std::string line = "RINGWATCH " + std::string(to_string(report.status())) + " - ";
  const std::string summary = report.summary_line();
  // summary_line() starts with "<STATUS>: "; nagios repeats the status already.
  const auto colon = summary.find(": ");
  line += colon == std::string::npos ? summary : summary.substr(colon + 2);
  // Perfdata: 'label'=value[UOM];warn;crit;min;max. '|' would end the text part.
  for (char& c : line) {
    if (c == '|') c = '/';
  }
  line += " |";
  for (const auto& [name, value] : report.figures) {
    std::string uom;
    std::string bounds = ";;;0";
    if (name.size() > 3 && name.ends_with("_ms")) uom = "ms";
    if (name.ends_with("_ratio")) bounds = ";;;0;1";
    line += " '" + name + "'=" + format_number(value) + uom + bounds;
  }
  return line + "\n";
}

std::string render(const Report& report, Format format, const TextOptions& options) {
  switch (format) {
    case Format::text:
      return render_text(report, options);
    case Format::json:
      return render_json(report);
    case Format::nagios:
      return render_nagios(report);
  }
  return render_text(report, options);
}

}  // namespace ringwatch::report
