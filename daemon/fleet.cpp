#include "daemon/fleet.h"

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <system_error>

#include "probes/registry.h"

namespace ringwatch::daemon {
namespace {

using Value = rapidjson::Value;

// Mirrors the Cursor of lib/spec/cluster_spec.cpp: a JSON value with its JSON
// pointer, and the one place error messages are made, in the same words.
std::string render_value(const Value& value) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  value.Accept(writer);
  return {buffer.GetString(), buffer.GetSize()};
}

std::string json_quoted(std::string_view text) {
  return render_value(Value(rapidjson::StringRef(text.data(), text.size())));
}

const char* type_phrase(const Value& value) {
  switch (value.GetType()) {
    case rapidjson::kNullType:
      return "null";
    case rapidjson::kFalseType:
    case rapidjson::kTrueType:
      return "a boolean";
    case rapidjson::kObjectType:
      return "an object";
    case rapidjson::kArrayType:
      return "an array";
    case rapidjson::kStringType:
      return "a string";
    case rapidjson::kNumberType:
      return "a number";
  }
  return "an unknown value";
}

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) {
    if (!out.empty()) out += ", ";
    out += item;
  }
  return out;
}

class Cursor {
 public:
  Cursor(const std::string& file, const Value& value, std::string pointer)
      : file_(&file), value_(&value), pointer_(std::move(pointer)) {}

  const Value& value() const { return *value_; }
  const std::string& pointer() const { return pointer_; }

  [[noreturn]] void fail(std::string expectation) const {
    throw spec::SpecError(*file_, pointer_, std::move(expectation));
  }
  [[noreturn]] void wrong_type(std::string_view expectation) const {
    fail("expected " + std::string(expectation) + ", got " + type_phrase(*value_));
  }
  [[noreturn]] void wrong_value(std::string_view expectation) const {
    fail("expected " + std::string(expectation) + ", got " + render_value(*value_));
  }

  std::string string(std::string_view expectation = "a string") const {
    if (!value_->IsString()) wrong_type(expectation);
    return {value_->GetString(), value_->GetStringLength()};
  }

  std::int64_t integer(std::int64_t min, std::int64_t max) const {
    const std::string expectation =
        "an integer from " + std::to_string(min) + " to " + std::to_string(max);
    if (!value_->IsNumber()) wrong_type(expectation);
    if (!value_->IsInt64() || value_->GetInt64() < min || value_->GetInt64() > max) {
      wrong_value(expectation);
    }
    return value_->GetInt64();
  }

  double number(double min, double max, std::string_view expectation) const {
    if (!value_->IsNumber()) wrong_type(expectation);
    const double v = value_->GetDouble();
    if (!std::isfinite(v) || v < min || v > max) wrong_value(expectation);
    return v;
  }

  std::vector<Cursor> elements(bool non_empty) const {
    const char* expectation = non_empty ? "a non-empty array" : "an array";
    if (!value_->IsArray()) wrong_type(expectation);
    if (non_empty && value_->Empty()) wrong_value(expectation);
    std::vector<Cursor> out;
    for (rapidjson::SizeType i = 0; i < value_->Size(); ++i) {
      out.emplace_back(*file_, (*value_)[i], pointer_ + "/" + std::to_string(i));
    }
    return out;
  }

  // Checks that the value is an object with members among `fields` only.
  void object(const std::vector<std::string>& fields) const {
    if (!value_->IsObject()) wrong_type("an object");
    for (const auto& m : value_->GetObject()) {
      const std::string name(m.name.GetString(), m.name.GetStringLength());
      if (std::find(fields.begin(), fields.end(), name) == fields.end()) {
        member(name).fail("unknown field (expected one of: " + join(fields) + ")");
      }
    }
  }

  std::optional<Cursor> optional(std::string_view name) const {
    const auto it = value_->FindMember(Value(rapidjson::StringRef(name.data(), name.size())));
    if (it == value_->MemberEnd()) return std::nullopt;
    return Cursor(*file_, it->value, pointer_ + "/" + std::string(name));
  }

  Cursor required(std::string_view name) const {
    auto found = optional(name);
    if (!found) fail("missing required field " + json_quoted(name));
    return *std::move(found);
  }

 private:
  Cursor member(const std::string& name) const { return {*file_, *value_, pointer_ + "/" + name}; }

  const std::string* file_;
  const Value* value_;
  std::string pointer_;
};

constexpr double kMaxIntervalSeconds = 86400;

std::chrono::milliseconds to_ms(double seconds) {
  return std::chrono::milliseconds(static_cast<std::int64_t>(std::llround(seconds * 1000)));
}

std::string http_url(const Cursor& cursor) {
  const auto url = cursor.string("an http:// URL");
  if (!url.starts_with("http://") || url.size() <= 7) cursor.wrong_value("an http:// URL");
  return url;
}

ClusterConfig read_cluster(const Cursor& cursor, const std::string& file) {
  cursor.object({"spec", "inline", "interval_seconds", "jitter_seconds", "checks"});
  ClusterConfig config;
  const auto path = cursor.optional("spec");
  const auto inline_spec = cursor.optional("inline");
  if (path && inline_spec) cursor.fail(R"(expected exactly one of "spec" and "inline", got both)");
  if (!path && !inline_spec) cursor.fail(R"(missing required field "spec" (or "inline"))");
  if (path) {
    const auto text = path->string("a path to a cluster spec file");
    if (text.empty()) path->wrong_value("a path to a cluster spec file");
    std::filesystem::path resolved(text);
    if (resolved.is_relative()) {
      resolved = std::filesystem::path(file).parent_path() / resolved;
    }
    config.spec_path = resolved.string();
    config.spec = spec::load_cluster_spec(config.spec_path);
  } else {
    if (!inline_spec->value().IsObject()) inline_spec->wrong_type("a cluster spec object");
    try {
      config.spec = spec::parse_cluster_spec(render_value(inline_spec->value()), file);
    } catch (const spec::SpecError& error) {
      // Errors inside the inline spec point into the fleet file.
      throw spec::SpecError(file, inline_spec->pointer() + error.pointer(), error.expectation());
    }
  }

  double interval = 10;
  if (const auto c = cursor.optional("interval_seconds")) {
    interval = c->number(0.1, kMaxIntervalSeconds, "a number of seconds from 0.1 to 86400");
  }
  config.interval = to_ms(interval);
  double jitter = std::min(1.0, interval / 10);
  if (const auto c = cursor.optional("jitter_seconds")) {
    jitter = c->number(0, interval, "a number of seconds from 0 to interval_seconds");
  }
  config.jitter = to_ms(jitter);

  const auto& known = probes::known_checks();
  if (const auto c = cursor.optional("checks")) {
    std::map<std::string, std::string> first;
    for (const auto& element : c->elements(true)) {
      const auto name = element.string("a check name (" + join(known) + ")");
      if (std::find(known.begin(), known.end(), name) == known.end()) {
        element.wrong_value("a check name (" + join(known) + ")");
      }
      const auto [it, inserted] = first.emplace(name, element.pointer());
      if (!inserted) {
        element.fail("duplicate check " + json_quoted(name) + " (first at " + it->second + ")");
      }
    }
    for (const auto& name : known) {
      if (first.contains(name)) config.checks.push_back(name);
    }
  } else {
    config.checks = known;
  }
  return config;
}

AlertsConfig read_alerts(const Cursor& cursor) {
  cursor.object({"alertmanager", "webhook", "fire_after_rounds", "resolve_after_rounds"});
  AlertsConfig alerts;
  if (const auto c = cursor.optional("alertmanager")) alerts.alertmanager = http_url(*c);
  if (const auto c = cursor.optional("webhook")) alerts.webhook = http_url(*c);
  if (const auto c = cursor.optional("fire_after_rounds")) {
    alerts.fire_after_rounds = static_cast<int>(c->integer(1, 100));
  }
  if (const auto c = cursor.optional("resolve_after_rounds")) {
    alerts.resolve_after_rounds = static_cast<int>(c->integer(1, 100));
  }
  return alerts;
}

FleetConfig read_fleet(const Cursor& root, const std::string& file) {
  root.object({"listen", "clusters", "alerts"});
  FleetConfig fleet;
  if (const auto c = root.optional("listen")) {
    constexpr std::string_view kListen =
        "an IP address literal and port like 127.0.0.1:9470 or [::1]:9470";
    fleet.listen = c->string(kListen);
    if (!parse_listen(fleet.listen)) c->wrong_value(kListen);
  }
  std::map<std::string, std::string> first;
  for (const auto& element : root.required("clusters").elements(true)) {
    auto cluster = read_cluster(element, file);
    const auto [it, inserted] = first.emplace(cluster.name(), element.pointer());
    if (!inserted) {
      element.fail("duplicate cluster " + json_quoted(cluster.name()) + " (first at " + it->second +
                   ")");
    }
    fleet.clusters.push_back(std::move(cluster));
  }
  if (const auto c = root.optional("alerts")) fleet.alerts = read_alerts(*c);
  return fleet;
}

}  // namespace

const ClusterConfig* FleetConfig::find(std::string_view name) const {
  for (const auto& cluster : clusters) {
    if (cluster.name() == name) return &cluster;
  }
  return nullptr;
}

std::optional<ListenAddress> parse_listen(std::string_view text) {
  // net::Endpoint rejects port 0, which a listener may ask for.
  std::string copy(text);
  bool any_port = false;
  if (copy.ends_with(":0")) {
    copy.replace(copy.size() - 1, 1, "1");
    any_port = true;
  }
  const auto endpoint = net::Endpoint::parse(copy);
  if (!endpoint) return std::nullopt;
  return ListenAddress{endpoint->host, any_port ? static_cast<unsigned short>(0) : endpoint->port};
}

FleetConfig parse_fleet(std::string_view json_text, const std::string& source_name) {
  rapidjson::Document document;
  document.Parse<rapidjson::kParseIterativeFlag | rapidjson::kParseValidateEncodingFlag>(
      json_text.data(), json_text.size());
  if (document.HasParseError()) {
    throw spec::SpecError(source_name, "",
                          "invalid JSON at offset " + std::to_string(document.GetErrorOffset()) +
                              ": " + rapidjson::GetParseError_En(document.GetParseError()));
  }
  return read_fleet(Cursor(source_name, document, ""), source_name);
}

FleetConfig load_fleet(const std::string& path) {
  const auto cannot_read = [&](int error) {
    return spec::SpecError(
        path, "", "cannot read file: " + std::error_code(error, std::generic_category()).message());
  };
  const std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(path.c_str(), "rb"),
                                                             &std::fclose);
  if (!file) throw cannot_read(errno);
  std::string text;
  char buffer[1 << 16];
  std::size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof buffer, file.get())) > 0) text.append(buffer, n);
  if (std::ferror(file.get())) throw cannot_read(errno);
  return parse_fleet(text, path);
}

}  // namespace ringwatch::daemon
