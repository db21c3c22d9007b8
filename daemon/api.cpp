#include "daemon/api.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <initializer_list>
#include <optional>
#include <string_view>

#include "alerts/metrics.h"
#include "daemon/probe_metrics.h"
#include "daemon/scheduler.h"
#include "daemon/status_page.h"
#include "lib/report/render.h"
#include "lib/util/text.h"
#include "lib/util/time.h"
#include "probes/registry.h"

namespace ringwatch::daemon {
namespace {

using SteadyClock = std::chrono::steady_clock;

HttpResponse method_not_allowed(const std::string& allow, const std::string& method) {
  auto response = json_error(405, "method " + method + " not allowed (allowed: " + allow + ")");
  response.headers.emplace_back("Allow", allow);
  return response;
}

std::string format_age(double seconds) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.3f", seconds);
  return buffer;
}

std::vector<std::string> split(std::string_view text, char separator) {
  std::vector<std::string> out;
  std::size_t start = 0;
  for (;;) {
    const auto end = text.find(separator, start);
    out.emplace_back(text.substr(start, end == std::string_view::npos ? text.npos : end - start));
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  return out;
}

std::string clusters_json(const std::vector<ClusterView>& views) {
  const auto now = SteadyClock::now();
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
  w.StartArray();
  for (const auto& view : views) {
    w.StartObject();
    w.Key("name");
    w.String(view.name);
    w.Key("status");
    w.String(view.latest ? report::to_string(view.latest->status()) : "PENDING");
    w.Key("age_seconds");
    if (view.latest) {
      w.Double(std::round(view.age_seconds(now) * 1000) / 1000);
    } else {
      w.Null();
    }
    w.Key("rounds");
    w.Uint64(view.rounds);
    w.Key("skipped");
    w.Uint64(view.skipped);
    w.Key("scheduled");
    w.Uint64(view.scheduled);
    w.Key("report");
    if (view.latest) {
      // The same document as GET /v1/clusters/{name}, compacted to fit the array.
      rapidjson::Document document;
      document.Parse(report::render_json(*view.latest));
      document.Accept(w);
    } else {
      w.Null();
    }
    w.EndObject();
  }
  w.EndArray();
  return std::string(buffer.GetString(), buffer.GetSize()) + "\n";
}

// "a=b&c=d%2Ce" -> {{"a", "b"}, {"c", "d,e"}}; '+' is a space. nullopt when a
// %-escape is malformed.
std::optional<std::vector<std::pair<std::string, std::string>>> parse_query(
    const std::string& query) {
  const auto decode = [](std::string_view text) -> std::optional<std::string> {
    std::string out;
    for (std::size_t i = 0; i < text.size(); ++i) {
      if (text[i] == '+') {
        out += ' ';
      } else if (text[i] != '%') {
        out += text[i];
      } else {
        if (i + 2 >= text.size() || !std::isxdigit(static_cast<unsigned char>(text[i + 1])) ||
            !std::isxdigit(static_cast<unsigned char>(text[i + 2]))) {
          return std::nullopt;
        }
        out += static_cast<char>(std::stoi(std::string(text.substr(i + 1, 2)), nullptr, 16));
        i += 2;
      }
    }
    return out;
  };
  std::vector<std::pair<std::string, std::string>> parameters;
  if (query.empty()) return parameters;
  for (const auto& parameter : split(query, '&')) {
    const auto equals = parameter.find('=');
    auto name = decode(std::string_view(parameter).substr(0, equals));
    auto value =
        decode(equals == std::string::npos ? std::string_view()
                                           : std::string_view(parameter).substr(equals + 1));
    if (!name || !value) return std::nullopt;
    parameters.emplace_back(std::move(*name), std::move(*value));
  }
  return parameters;
}

// The value of checks=a,b (normalized), an error response, or empty when absent.
struct ChecksParameter {
  std::vector<std::string> checks{};
  std::optional<HttpResponse> error{};
};

ChecksParameter checks_parameter(const std::string& value) {
  auto normalized = probes::normalize_checks(split(value, ','));
  if (!normalized) return {{}, json_error(400, normalized.error().message())};
  return {std::move(normalized).value(), std::nullopt};
}

// A query's parameters, refused unless each is one the route takes and has a
// value: an ignored parameter would let a typo (?chekcs=dns) run every check.
// `taken` empty: the route takes none. Names are echoed bounded.
std::optional<HttpResponse> unexpected_parameters(const std::string& query,
                                                  std::initializer_list<std::string_view> taken) {
  if (query.empty()) return std::nullopt;
  const std::string expected =
      taken.size() == 0 ? "this endpoint takes none" : "expected: " + util::join(taken);
  for (const auto& parameter : split(query, '&')) {
    const std::string_view name = std::string_view(parameter).substr(0, parameter.find('='));
    if (std::find(taken.begin(), taken.end(), name) == taken.end()) {
      return json_error(
          400, "unknown query parameter \"" + util::printable(name) + "\" (" + expected + ")");
    }
    if (parameter.find('=') == std::string::npos) {
      return json_error(400, "query parameter \"" + std::string(name) +
                                 "\" needs a value, e.g. ?checks=canary,dns");
    }
  }
  return std::nullopt;
}

HttpResponse text_response(int status, std::string body) {
  HttpResponse response;
  response.status = status;
  response.content_type = "text/plain; charset=utf-8";
  response.body = std::move(body);
  return response;
}

std::string history_json(const std::string& cluster, const std::vector<RoundRecord>& rounds) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
  w.StartObject();
  w.Key("cluster");
  w.String(cluster);
  w.Key("capacity");
  w.Uint64(kHistoryRounds);
  w.Key("rounds");
  w.StartArray();
  for (const auto& round : rounds) {
    w.StartObject();
    w.Key("started_at");
    w.String(util::format_rfc3339_ms(round.started_at));
    w.Key("status");
    w.String(report::to_string(round.status));
    w.Key("duration_ms");
    w.Double(std::round(round.duration_ms * 1000) / 1000);
    w.Key("consistency_ratio");
    if (round.consistency_ratio) {
      w.Double(*round.consistency_ratio);
    } else {
      w.Null();
    }
    w.Key("findings");
    w.Uint64(round.findings);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize()) + "\n";
}

HttpResponse report_response(int status, const report::Report& report) {
  HttpResponse response;
  response.status = status;
  response.body = report::render_json(report);
  if (!response.body.ends_with('\n')) response.body += '\n';
  response.headers.emplace_back("X-Ringwatch-Status", report::to_string(report.status()));
  return response;
}

}  // namespace

Api::Api(Scheduler& scheduler, std::shared_ptr<alerts::Metrics> metrics, ApiOptions options)
    : scheduler_(scheduler), metrics_(std::move(metrics)), options_(std::move(options)) {}

void Api::handle(const HttpRequest& request, Responder respond) {
  const auto question = request.target.find('?');
  const std::string path = request.target.substr(0, question);
  const std::string query =
      question == std::string::npos ? std::string() : request.target.substr(question + 1);
  const bool get = request.method == "GET" || request.method == "HEAD";
  // GET or HEAD, and no query parameter (the route takes none); else answered.
  const auto only_get = [&] {
    if (!get) {
      respond(method_not_allowed("GET, HEAD", request.method));
      return true;
    }
    if (auto refused = unexpected_parameters(query, {})) {
      respond(std::move(*refused));
      return true;
    }
    return false;
  };

  if (path == "/healthz" || path == "/-/healthy") {
    if (only_get()) return;
    return respond(text_response(200, "ok\n"));
  }
  if (path == "/-/ready") {
    if (only_get()) return;
    const bool ready =
        scheduler_.every_scheduled_cluster_ran() || SteadyClock::now() >= options_.ready_by;
    return respond(ready ? text_response(200, "ready\n")
                         : text_response(503,
                                         "not ready: a scheduled cluster has not finished "
                                         "its first round\n"));
  }
  if (path == "/-/reload") {
    if (request.method != "POST") return respond(method_not_allowed("POST", request.method));
    const auto error = options_.reload ? options_.reload() : std::optional<std::string>();
    return respond(error ? json_error(500, *error) : text_response(200, "reloaded\n"));
  }
  if (path == "/metrics") {
    if (only_get()) return;
    HttpResponse response;
    response.content_type = "text/plain; version=0.0.4; charset=utf-8";
    response.body = metrics_ ? metrics_->serialize() : std::string();
    return respond(std::move(response));
  }
  if (path == "/probe") {
    if (!get) return respond(method_not_allowed("GET, HEAD", request.method));
    return probe(query, std::move(respond));
  }
  if (path == "/" || path == "/clusters" || path == "/clusters/") {
    if (only_get()) return;
    return respond(fleet_page(scheduler_.clusters(), SteadyClock::now()));
  }
  if (path.starts_with("/clusters/")) {
    if (only_get()) return;
    const auto view = scheduler_.cluster(std::string_view(path).substr(10));
    if (!view)
      return respond(
          json_error(404, "unknown cluster \"" + util::printable(path.substr(10)) + "\""));
    return respond(cluster_page(*view));
  }
  if (path.starts_with("/static/")) {
    if (only_get()) return;
    auto asset = static_asset(std::string_view(path).substr(8));
    return respond(asset ? std::move(*asset)
                         : json_error(404, "no such endpoint: " + util::printable(path)));
  }
  if (path == "/v1/clusters" || path == "/v1/clusters/") {
    if (only_get()) return;
    HttpResponse response;
    response.body = clusters_json(scheduler_.clusters());
    return respond(std::move(response));
  }
  if (!path.starts_with("/v1/clusters/")) {
    return respond(json_error(404, "no such endpoint: " + util::printable(path)));
  }
  cluster_resource(request, path, query, std::move(respond));
}

void Api::cluster_resource(const HttpRequest& request, const std::string& path,
                           const std::string& query, Responder respond) {
  const bool get = request.method == "GET" || request.method == "HEAD";
  const auto rest = path.substr(std::string_view("/v1/clusters/").size());
  const auto slash = rest.find('/');
  const std::string name = rest.substr(0, slash);
  const std::string action = slash == std::string::npos ? std::string() : rest.substr(slash + 1);
  if (action != "" && action != "preflight" && action != "history") {
    return respond(json_error(404, "no such endpoint: " + util::printable(path)));
  }
  const auto view = scheduler_.cluster(name);
  if (!view) return respond(json_error(404, "unknown cluster \"" + util::printable(name) + "\""));

  if (action == "history") {
    if (!get) return respond(method_not_allowed("GET, HEAD", request.method));
    if (auto refused = unexpected_parameters(query, {})) return respond(std::move(*refused));
    HttpResponse response;
    response.body =
        history_json(name, scheduler_.history(name).value_or(std::vector<RoundRecord>{}));
    return respond(std::move(response));
  }
  if (action.empty()) {
    if (!get) return respond(method_not_allowed("GET, HEAD", request.method));
    if (auto refused = unexpected_parameters(query, {})) return respond(std::move(*refused));
    if (!view->latest) {
      auto response = json_error(503, "cluster \"" + name + "\" has no finished round yet");
      response.headers.emplace_back("Retry-After", "1");
      return respond(std::move(response));
    }
    auto response = report_response(200, *view->latest);
    response.headers.emplace_back("X-Report-Age-Seconds",
                                  format_age(view->age_seconds(SteadyClock::now())));
    return respond(std::move(response));
  }

  if (request.method != "POST") return respond(method_not_allowed("POST", request.method));
  if (auto refused = unexpected_parameters(query, {"checks"})) return respond(std::move(*refused));
  // Normalized (the registry's order, each once), so equal sets share a ProbeSet.
  std::vector<std::string> checks;
  const auto parameters = parse_query(query);
  if (!parameters) return respond(json_error(400, "malformed query string"));
  for (const auto& [key, value] : *parameters) {
    auto parsed = checks_parameter(value);
    if (parsed.error) return respond(std::move(*parsed.error));
    checks = std::move(parsed.checks);
  }
  scheduler_.preflight(name, std::move(checks), [respond](std::optional<report::Report> report) {
    if (!report) return respond(json_error(503, "ringwatchd is stopping"));
    respond(report_response(report->status() == report::Status::ok ? 200 : 409, *report));
  });
}

void Api::probe(const std::string& query, Responder respond) {
  if (auto refused = unexpected_parameters(query, {"cluster", "checks"})) {
    return respond(std::move(*refused));
  }
  const auto parameters = parse_query(query);
  if (!parameters) return respond(json_error(400, "malformed query string"));
  std::optional<std::string> cluster;
  std::vector<std::string> checks;
  for (const auto& [key, value] : *parameters) {
    if (key == "cluster") {
      cluster = value;
    } else {
      auto parsed = checks_parameter(value);
      if (parsed.error) return respond(std::move(*parsed.error));
      checks = std::move(parsed.checks);
    }
  }
  if (!cluster) return respond(json_error(400, "missing query parameter \"cluster\""));
  const auto view = scheduler_.cluster(*cluster);
  if (!view)
    return respond(json_error(404, "unknown cluster \"" + util::printable(*cluster) + "\""));
  auto spec = scheduler_.spec(*cluster);
  const auto admission = scheduler_.probe(
      *cluster, std::move(checks),
      [respond, spec = std::move(spec)](std::optional<report::Report> report) {
        if (!report || !spec) return respond(json_error(503, "ringwatchd is stopping"));
        HttpResponse response;
        response.content_type = "text/plain; version=0.0.4; charset=utf-8";
        response.body = render_probe_metrics(*spec, *report);
        response.headers.emplace_back("X-Ringwatch-Status", report::to_string(report->status()));
        respond(std::move(response));
      });
  if (admission == ProbeAdmission::too_many) {
    auto response = json_error(503, "too many probes of cluster \"" + util::printable(*cluster) +
                                        "\" waiting (" + std::to_string(kMaxProbeWaiters) + ")");
    response.headers.emplace_back("Retry-After", "1");
    return respond(std::move(response));
  }
  if (admission == ProbeAdmission::unknown_cluster) {
    return respond(json_error(404, "unknown cluster \"" + util::printable(*cluster) + "\""));
  }
}

}  // namespace ringwatch::daemon
