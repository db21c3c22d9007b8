#include "daemon/api.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <initializer_list>
#include <optional>
#include <string_view>

#include "alerts/metrics.h"
#include "daemon/scheduler.h"
#include "lib/report/render.h"
#include "lib/util/text.h"
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

HttpResponse report_response(int status, const report::Report& report) {
  HttpResponse response;
  response.status = status;
  response.body = report::render_json(report);
  if (!response.body.ends_with('\n')) response.body += '\n';
  response.headers.emplace_back("X-Ringwatch-Status", report::to_string(report.status()));
  return response;
}

}  // namespace

Api::Api(Scheduler& scheduler, std::shared_ptr<alerts::Metrics> metrics)
    : scheduler_(scheduler), metrics_(std::move(metrics)) {}

void Api::handle(const HttpRequest& request, Responder respond) {
  const auto question = request.target.find('?');
  const std::string path = request.target.substr(0, question);
  const std::string query =
      question == std::string::npos ? std::string() : request.target.substr(question + 1);
  const bool get = request.method == "GET" || request.method == "HEAD";

  if (path == "/healthz") {
    if (!get) return respond(method_not_allowed("GET, HEAD", request.method));
    if (auto refused = unexpected_parameters(query, {})) return respond(std::move(*refused));
    HttpResponse response;
    response.content_type = "text/plain; charset=utf-8";
    response.body = "ok\n";
    return respond(std::move(response));
  }
  if (path == "/metrics") {
    if (!get) return respond(method_not_allowed("GET, HEAD", request.method));
    if (auto refused = unexpected_parameters(query, {})) return respond(std::move(*refused));
    HttpResponse response;
    response.content_type = "text/plain; version=0.0.4; charset=utf-8";
    response.body = metrics_ ? metrics_->serialize() : std::string();
    return respond(std::move(response));
  }
  if (path == "/v1/clusters" || path == "/v1/clusters/") {
    if (!get) return respond(method_not_allowed("GET, HEAD", request.method));
    if (auto refused = unexpected_parameters(query, {})) return respond(std::move(*refused));
    HttpResponse response;
    response.body = clusters_json(scheduler_.clusters());
    return respond(std::move(response));
  }
  constexpr std::string_view kPrefix = "/v1/clusters/";
  if (!path.starts_with(kPrefix)) {
    return respond(json_error(404, "no such endpoint: " + util::printable(path)));
  }
  const auto rest = path.substr(kPrefix.size());
  const auto slash = rest.find('/');
  const std::string name = rest.substr(0, slash);
  const std::string action = slash == std::string::npos ? std::string() : rest.substr(slash + 1);
  if (action != "" && action != "preflight") {
    return respond(json_error(404, "no such endpoint: " + util::printable(path)));
  }
  const auto view = scheduler_.cluster(name);
  if (!view) return respond(json_error(404, "unknown cluster \"" + util::printable(name) + "\""));

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
  if (!query.empty()) {
    std::vector<std::string> named;
    for (const auto& parameter : split(query, '&')) {
      for (auto& check : split(std::string_view(parameter).substr(7), ',')) {
        named.push_back(std::move(check));
      }
      auto normalized = probes::normalize_checks(named);
      if (!normalized) return respond(json_error(400, normalized.error().message()));
      checks = std::move(normalized).value();
    }
  }
  scheduler_.preflight(name, std::move(checks), [respond](std::optional<report::Report> report) {
    if (!report) return respond(json_error(503, "ringwatchd is stopping"));
    respond(report_response(report->status() == report::Status::ok ? 200 : 409, *report));
  });
}

}  // namespace ringwatch::daemon
