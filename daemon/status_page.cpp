#include "daemon/status_page.h"

#include <cstdio>
#include <map>

#include "daemon/web_assets.h"
#include "lib/report/vocabulary.h"

namespace ringwatch::daemon {
namespace {

std::string_view asset(std::string_view name) {
  for (const auto& file : web_assets()) {
    if (file.name == name) return file.body;
  }
  return {};
}

// The template with every {{key}} replaced by its value, in one pass (a value
// is never searched for markers again).
std::string fill(std::string_view text, const std::map<std::string_view, std::string>& values) {
  std::string out;
  for (std::size_t at = 0;;) {
    const auto open = text.find("{{", at);
    const auto close = open == std::string_view::npos ? open : text.find("}}", open);
    if (close == std::string_view::npos) return out.append(text.substr(at));
    out.append(text.substr(at, open - at));
    const auto value = values.find(text.substr(open + 2, close - open - 2));
    if (value != values.end()) out += value->second;
    at = close + 2;
  }
}

struct Page {
  std::string title, page, cluster, crumb, body;
};

HttpResponse html(const Page& page) {
  HttpResponse response;
  response.content_type = "text/html; charset=utf-8";
  response.body = fill(asset("page.html"), {{"title", html_escape(page.title)},
                                            {"page", page.page},
                                            {"cluster", html_escape(page.cluster)},
                                            {"crumb", html_escape(page.crumb)},
                                            {"refresh", std::to_string(kPageRefreshSeconds)},
                                            {"updated", ""},
                                            {"body", page.body}});
  response.headers.emplace_back("Cache-Control", "no-store");
  return response;
}

std::string printf_string(const char* format, double value) {
  char buffer[48];
  std::snprintf(buffer, sizeof buffer, format, value);
  return buffer;
}

std::string age_text(double seconds) {
  if (seconds < 90) return printf_string("%.0f s ago", seconds);
  if (seconds < 5400) return printf_string("%.0f min ago", seconds / 60);
  return printf_string("%.1f h ago", seconds / 3600);
}

std::string status_of(const ClusterView& view) {
  return view.latest ? report::to_string(view.latest->status()) : "PENDING";
}

// The diagnosis line of a cluster that is not OK: its first diagnosis, else
// the report's summary.
std::string diagnosis_line(const report::Report& report) {
  if (report.status() == report::Status::ok) return "";
  if (!report.diagnoses.empty()) return report.diagnoses.front().summary;
  return report.summary_line();
}

// The headline beside its status badge: the summary line without the status
// it starts with, which the badge already shows.
std::string headline_of(const report::Report& report) {
  const std::string line = report.summary_line();
  const std::string prefix = std::string(report::to_string(report.status())) + ": ";
  return line.starts_with(prefix) ? line.substr(prefix.size()) : line;
}

std::string fleet_row(const ClusterView& view, std::chrono::steady_clock::time_point now) {
  const std::string status = status_of(view);
  const std::string name = html_escape(view.name);
  std::string row = "<tr class=\"row-" + status + "\" data-cluster=\"" + name + "\">";
  row += "<td><a href=\"/clusters/" + name + "\">" + name + "</a>" +
         (view.external ? " <span class=\"muted\">(external)</span>" : "") + "</td>";
  row += "<td><span class=\"badge st-" + status + "\">" + status + "</span></td>";
  if (!view.latest) {
    row += "<td class=\"num\">&ndash;</td><td class=\"num\">&ndash;</td>";
    row +=
        "<td class=\"num wide\">&ndash;</td><td class=\"muted\">waiting for the first round</td>";
    return row + "</tr>\n";
  }
  const auto& report = *view.latest;
  row += "<td class=\"num\">" + age_text(view.age_seconds(now)) + "</td>";
  const auto ratio = report.figures.find(report::figures::kConsistencyRatio);
  const auto reads = report.figures.find(report::figures::kReads);
  const bool has_ratio =
      ratio != report.figures.end() && reads != report.figures.end() && reads->second > 0;
  row += "<td class=\"num\">" + (has_ratio ? printf_string("%.3f", ratio->second) : "&ndash;") +
         "</td>";
  row += "<td class=\"num wide\">" + printf_string("%.1f ms", report.duration_ms) + "</td>";
  row += "<td class=\"diagnosis-line\">" + html_escape(diagnosis_line(report)) + "</td>";
  return row + "</tr>\n";
}

}  // namespace

std::string html_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

HttpResponse fleet_page(const std::vector<ClusterView>& clusters,
                        std::chrono::steady_clock::time_point now) {
  std::string body =
      "<h1>Fleet</h1>\n<section class=\"scroll\"><table class=\"fleet\" id=\"fleet\">";
  body +=
      "<thead><tr><th>Cluster</th><th>Status</th><th class=\"num\">Last round</th>"
      "<th class=\"num\">Consistency</th><th class=\"num wide\">Round time</th>"
      "<th>Diagnosis</th></tr></thead>\n<tbody>\n";
  for (const auto& view : clusters) body += fleet_row(view, now);
  if (clusters.empty()) body += "<tr><td colspan=\"6\" class=\"muted\">no clusters</td></tr>\n";
  body += "</tbody></table></section>";
  return html({"ringwatchd", "fleet", "", "fleet", body});
}

HttpResponse cluster_page(const ClusterView& cluster) {
  const std::string status = status_of(cluster);
  std::string body = "<h1>" + html_escape(cluster.name) + "</h1>\n";
  body += "<div id=\"headline\"><p class=\"summary\"><span class=\"badge st-" + status + "\">" +
          status + "</span> " +
          html_escape(cluster.latest ? headline_of(*cluster.latest)
                                     : std::string("waiting for the first round")) +
          "</p></div>\n";
  body += "<div id=\"diagnosis\"></div>\n<div class=\"grid\">\n";
  body +=
      "<section><h2>Proxies &times; backends</h2><div id=\"matrix\"><noscript>The matrix needs "
      "JavaScript; the report is at <a href=\"/v1/clusters/" +
      html_escape(cluster.name) + "\">/v1/clusters/" + html_escape(cluster.name) +
      "</a>.</noscript></div>\n";
  body +=
      "<div class=\"legend\"><span><i class=\"st-OK\"></i>ok</span>"
      "<span><i style=\"background:var(--ejected)\"></i>ejected</span>"
      "<span><i style=\"background:var(--missing)\"></i>missing</span>"
      "<span><i style=\"background:var(--idle)\"></i>idle</span>"
      "<span><i style=\"background:var(--unknown)\"></i>unknown</span>"
      "<span>C canary routed &middot; P proxy connected &middot; B backend sees the proxy "
      "(struck out: not)</span></div>\n<div id=\"cell-detail\"></div></section>\n";
  body +=
      "<section><h2>DNS answers per vantage point</h2><div id=\"dns\"></div></section>\n</div>\n";
  body += "<section><h2>History</h2><div id=\"charts\"></div></section>\n";
  body += "<section><h2>Findings</h2><div id=\"findings\"></div></section>";
  return html({cluster.name + " - ringwatchd", "cluster", cluster.name, cluster.name, body});
}

std::optional<HttpResponse> static_asset(std::string_view name) {
  for (const auto& file : web_assets()) {
    if (file.name != name || name == "page.html") continue;
    HttpResponse response;
    response.content_type = std::string(file.content_type);
    response.body = std::string(file.body);
    response.headers.emplace_back("Cache-Control", "no-cache");
    return response;
  }
  return std::nullopt;
}

}  // namespace ringwatch::daemon
