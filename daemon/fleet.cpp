#include "daemon/fleet.h"

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <stdexcept>
#include <system_error>

#include "lib/http/client.h"
#include "lib/spec/json_cursor.h"
#include "lib/util/text.h"
#include "probes/registry.h"

namespace ringwatch::daemon {
namespace {

using spec::json::Cursor;
using spec::json::FirstSeen;
using spec::json::render_value;

constexpr double kMaxIntervalSeconds = 86400;

std::chrono::milliseconds to_ms(double seconds) {
  return std::chrono::milliseconds(static_cast<std::int64_t>(std::llround(seconds * 1000)));
}

std::string http_url(const Cursor& cursor) {
  constexpr std::string_view kUrl = "an http:// or https:// URL";
  const std::string url(cursor.string(kUrl));
  const bool http = url.starts_with("http://") && url.size() > 7;
  const bool https = url.starts_with("https://") && url.size() > 8;
  if (!http && !https) cursor.wrong_value(kUrl);
  // Checked here, where the file and the pointer are known, not when the
  // sink is made from it.
  try {
    http::parse_url(url);
  } catch (const std::invalid_argument& error) {
    const std::string_view why = std::string_view(error.what()).substr(url.size() + 2);
    cursor.fail("expected " + std::string(kUrl) + ", got " +
                spec::json::echo_value(cursor.value()) + " (" + std::string(why) + ")");
  }
  return url;
}

std::filesystem::path relative_to(const std::string& file, std::string_view path) {
  std::filesystem::path resolved(path);
  if (resolved.is_relative()) resolved = std::filesystem::path(file).parent_path() / resolved;
  return resolved;
}

// A secret's file: its first line, without the line end.
std::string read_secret(const Cursor& cursor, const std::string& file) {
  const auto path = relative_to(file, cursor.string("a path to a file"));
  std::ifstream in(path);
  std::string line;
  if (!in || !std::getline(in, line)) {
    cursor.fail("cannot read " + path.string() + ": " +
                (in ? std::string("the file is empty") : std::strerror(errno)));
  }
  if (!line.empty() && line.back() == '\r') line.pop_back();
  if (line.empty()) cursor.fail("the first line of " + path.string() + " is empty");
  return line;
}

// A sink: a URL, or {"url", "ca_file", "basic_auth" | "bearer_token_file"}.
std::string read_sink(const Cursor& cursor, const std::string& file, SinkAccess& access) {
  if (cursor.value().IsString()) return http_url(cursor);
  if (!cursor.value().IsObject()) cursor.wrong_type("a URL or a sink object");
  const auto object = cursor.object({"url", "ca_file", "basic_auth", "bearer_token_file"});
  const std::string url = http_url(object.required("url"));
  if (const auto c = object.optional("ca_file")) {
    access.ca_file = relative_to(file, c->string("a path to a PEM file")).string();
  }
  const auto basic = object.optional("basic_auth");
  const auto bearer = object.optional("bearer_token_file");
  if (basic && bearer) {
    cursor.fail(R"(expected at most one of "basic_auth" and "bearer_token_file", got both)");
  }
  if (basic) {
    const auto credentials = basic->object({"username", "password_file"});
    const std::string user(credentials.required("username").string("a user name"));
    if (user.empty() || user.find(':') != std::string::npos) {
      credentials.required("username").wrong_value("a user name without ':'");
    }
    access.authorization =
        "Basic " +
        util::base64_encode(user + ":" + read_secret(credentials.required("password_file"), file));
  }
  if (bearer) access.authorization = "Bearer " + read_secret(*bearer, file);
  return url;
}

ClusterConfig read_cluster(const Cursor& cursor, const std::string& file) {
  const auto object =
      cursor.object({"spec", "inline", "interval_seconds", "jitter_seconds", "checks", "schedule"});
  ClusterConfig config;
  const auto path = object.optional("spec");
  const auto inline_spec = object.optional("inline");
  if (path && inline_spec) cursor.fail(R"(expected exactly one of "spec" and "inline", got both)");
  if (!path && !inline_spec) cursor.fail(R"(missing required field "spec" (or "inline"))");
  if (path) {
    const std::string text(path->string("a path to a cluster spec file"));
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
  if (const auto c = object.optional("interval_seconds")) {
    interval = c->number(0.1, kMaxIntervalSeconds, "a number of seconds from 0.1 to 86400");
  }
  config.interval = to_ms(interval);
  double jitter = std::min(1.0, interval / 10);
  if (const auto c = object.optional("jitter_seconds")) {
    jitter = c->number(0, interval, "a number of seconds from 0 to interval_seconds");
  }
  config.jitter = to_ms(jitter);

  if (const auto c = object.optional("checks")) {
    const std::string expectation = "a check name (" + util::join(probes::known_checks()) + ")";
    FirstSeen seen("check");
    std::vector<std::string> named;
    // Checked as each name is read, so the first wrong element is the one named.
    for (const auto& element : c->elements(true)) {
      named.emplace_back(element.string(expectation));
      auto normalized = probes::normalize_checks(named);
      if (!normalized) element.wrong_value(expectation);
      seen.add(element, named.back());
      config.checks = std::move(normalized).value();
    }
  } else {
    config.checks = probes::known_checks();
  }
  if (const auto c = object.optional("schedule")) {
    constexpr std::string_view kSchedule = "\"interval\" or \"external\"";
    const std::string_view schedule = c->string(kSchedule);
    if (schedule != "interval" && schedule != "external") c->wrong_value(kSchedule);
    config.external = schedule == "external";
  }
  return config;
}

AlertsConfig read_alerts(const Cursor& cursor, const std::string& file) {
  const auto object =
      cursor.object({"alertmanager", "webhook", "fire_after_rounds", "resolve_after_rounds"});
  AlertsConfig alerts;
  if (const auto c = object.optional("alertmanager")) {
    alerts.alertmanager = read_sink(*c, file, alerts.alertmanager_access);
  }
  if (const auto c = object.optional("webhook")) {
    alerts.webhook = read_sink(*c, file, alerts.webhook_access);
  }
  if (const auto c = object.optional("fire_after_rounds")) {
    alerts.fire_after_rounds = static_cast<int>(c->integer(1, 100));
  }
  if (const auto c = object.optional("resolve_after_rounds")) {
    alerts.resolve_after_rounds = static_cast<int>(c->integer(1, 100));
  }
  return alerts;
}

FleetConfig read_fleet(const Cursor& root, const std::string& file) {
  const auto object = root.object({"listen", "clusters", "alerts"});
  FleetConfig fleet;
  if (const auto c = object.optional("listen")) {
    constexpr std::string_view kListen =
        "an IP address literal and port like 127.0.0.1:9470 or [::1]:9470";
    fleet.listen = std::string(c->string(kListen));
    if (!parse_listen(fleet.listen)) c->wrong_value(kListen);
  }
  FirstSeen seen("cluster");
  for (const auto& element : object.required("clusters").elements(true)) {
    auto cluster = read_cluster(element, file);
    seen.add(element, cluster.name());
    fleet.clusters.push_back(std::move(cluster));
  }
  if (const auto c = object.optional("alerts")) fleet.alerts = read_alerts(*c, file);
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
  spec::json::parse_document(document, json_text, source_name);
  return read_fleet(Cursor(source_name, document, ""), source_name);
}

FleetConfig load_fleet(const std::string& path) {
  return parse_fleet(spec::json::read_file(path), path);
}

}  // namespace ringwatch::daemon
