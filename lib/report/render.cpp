#include "lib/report/render.h"

#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cmath>

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

template <class Writer>
void write_report(Writer& writer, const Report& report) {
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
      writer.Key(key.data(), static_cast<rapidjson::SizeType>(key.size()));
      write_evidence(writer, value);
    }
    writer.EndObject();
    writer.EndObject();
  }
  writer.EndArray();

  writer.Key("figures");
  writer.StartObject();
  for (const auto& [name, value] : report.figures) {
    writer.Key(name.data(), static_cast<rapidjson::SizeType>(name.size()));
    writer.Double(std::isfinite(value) ? value : 0.0);
  }
  writer.EndObject();
  write_views(writer, report);
  writer.EndObject();
}

}  // namespace

std::string render_json(const Report& report, JsonLayout layout) {
  rapidjson::StringBuffer buffer;
  if (layout == JsonLayout::compact) {
    rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
    write_report(writer, report);
  } else {
    rapidjson::PrettyWriter<rapidjson::StringBuffer> writer(buffer);
    writer.SetIndent(' ', 2);
    write_report(writer, report);
  }
  return std::string(buffer.GetString(), buffer.GetSize()) + "\n";
}

std::string render(const Report& report, Format format, const RenderOptions& options) {
  switch (format) {
    case Format::text:
      return render_text(report, options.text);
    case Format::json:
      return render_json(report, options.json);
    case Format::nagios:
      return render_nagios(report, options.nagios);
  }
  return render_text(report, options.text);
}

}  // namespace ringwatch::report
