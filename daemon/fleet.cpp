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
  const std::string url(cursor.string("an http:// URL"));
  if (!url.starts_with("http://") || url.size() <= 7) cursor.wrong_value("an http:// URL");
  // Checked here, where the file and the pointer are known, not when the
  // sink is made from it.
  try {
    http::parse_url(url);
  } catch (const std::invalid_argument& error) {
    const std::string_view why = std::string_view(error.what()).substr(url.size() + 2);
    cursor.fail("expected an http:// URL, got " + spec::json::echo_value(cursor.value()) + " (" +
                std::string(why) + ")");
  }
  return url;
}

ClusterConfig read_cluster(const Cursor& cursor, const std::string& file) {
  const auto object =
      cursor.object({"spec", "inline", "interval_seconds", "jitter_seconds", "checks"});
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
  return config;
}

AlertsConfig read_alerts(const Cursor& cursor) {
  const auto object =
      cursor.object({"alertmanager", "webhook", "fire_after_rounds", "resolve_after_rounds"});
  AlertsConfig alerts;
  if (const auto c = object.optional("alertmanager")) alerts.alertmanager = http_url(*c);
  if (const auto c = object.optional("webhook")) alerts.webhook = http_url(*c);
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
  if (const auto c = object.optional("alerts")) fleet.alerts = read_alerts(*c);
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
