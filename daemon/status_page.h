#pragma once
// ringwatchd's status page (GET /, /clusters/{name}, /static/...): HTML
// rendered here from the scheduler's views into daemon/web/page.html, and the
// page's stylesheet and script, all compiled into the binary (web_assets.h).
// The fleet table is complete without JavaScript (a <noscript> refresh
// reloads it); a cluster's page is drawn by ringwatch.js from the JSON API.
//
// Pure functions of their arguments; thread-safe.

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/http_server.h"
#include "daemon/scheduler.h"

namespace ringwatch::daemon {

// Seconds between the page's refreshes.
inline constexpr int kPageRefreshSeconds = 5;

HttpResponse fleet_page(const std::vector<ClusterView>& clusters,
                        std::chrono::steady_clock::time_point now);
HttpResponse cluster_page(const ClusterView& cluster);
// GET /static/<name>: the embedded file, or nullopt.
std::optional<HttpResponse> static_asset(std::string_view name);

// "<" -> "&lt;" etc., for text and attribute values.
std::string html_escape(std::string_view text);

}  // namespace ringwatch::daemon
