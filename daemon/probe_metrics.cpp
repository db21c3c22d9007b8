#include "daemon/probe_metrics.h"

#include <cmath>
#include <cstdio>
#include <string_view>
#include <vector>

#include "lib/report/vocabulary.h"

namespace ringwatch::daemon {
namespace {

namespace figures = report::figures;

std::string escape_label(std::string_view value) {
  std::string out;
  for (const char c : value) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string number(double value) {
  if (std::isnan(value)) return "NaN";
  char buffer[40];
  std::snprintf(buffer, sizeof buffer, "%.12g", value);
  return buffer;
}

using Labels = std::vector<std::pair<std::string, std::string>>;

// One family: HELP and TYPE once, then its samples.
class Family {
 public:
  Family(std::string& out, const char* name, const char* help) : out_(out), name_(name) {
    out_ += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " gauge\n";
  }
  void sample(double value, const Labels& labels = {}) {
    out_ += name_;
    if (!labels.empty()) {
      out_ += '{';
      for (std::size_t i = 0; i < labels.size(); ++i) {
        if (i > 0) out_ += ',';
        out_ += labels[i].first + "=\"" + escape_label(labels[i].second) + '"';
      }
      out_ += '}';
    }
    out_ += ' ' + number(value) + '\n';
  }

 private:
  std::string& out_;
  const char* name_;
};

const double* figure(const report::Report& report, const std::string& name) {
  const auto it = report.figures.find(name);
  return it == report.figures.end() ? nullptr : &it->second;
}

void per_subject(std::string& out, const spec::ClusterSpec& spec, const report::Report& report) {
  Family routed(out, "ringwatch_proxy_backends_routed",
                "Backends the proxy routed canaries to in the round.");
  for (const auto& proxy : spec.proxies) {
    if (const double* v = figure(report, figures::backends_routed(proxy.name))) {
      routed.sample(*v, {{"proxy", proxy.name}});
    }
  }
  Family connected(out, "ringwatch_proxy_backends_connected",
                   "Backends the proxy's own stats show live connections to.");
  for (const auto& proxy : spec.proxies) {
    if (const double* v = figure(report, figures::proxy_backends_connected(proxy.name))) {
      connected.sample(*v, {{"proxy", proxy.name}});
    }
  }
  Family dns(out, "ringwatch_dns_answer_expected",
             "1 when the node's name resolves inside its expected range at the vantage point.");
  for (const auto& backend : spec.backends) {
    if (!backend.dns_name) continue;  // known by address only: no DNS series
    for (const auto& vantage : spec.dns_servers) {
      if (const double* v =
              figure(report, figures::dns_answer_expected(backend.name, vantage.name))) {
        dns.sample(*v, {{"node", *backend.dns_name}, {"vantage", vantage.name}});
      }
    }
  }
}

}  // namespace

std::string render_probe_metrics(const spec::ClusterSpec& spec, const report::Report& report) {
  std::string out;
  const auto status = report.status();
  Family(out, "ringwatch_probe_success", "1 when the round's status is OK, else 0.")
      .sample(status == report::Status::ok ? 1 : 0);
  Family(out, "ringwatch_probe_duration_seconds", "How long the probe round took.")
      .sample(report.duration_ms / 1000);
  Family(out, "ringwatch_probe_status",
         "The round's status: 0 ok, 1 warning, 2 critical, 3 unknown.")
      .sample(static_cast<double>(status));
  Family findings(out, "ringwatch_probe_findings", "Findings of the round by severity.");
  for (const auto severity : {report::Severity::info, report::Severity::warning,
                              report::Severity::critical, report::Severity::unknown}) {
    double count = 0;
    for (const auto& finding : report.findings) count += finding.severity == severity;
    findings.sample(count, {{"severity", report::to_string(severity)}});
  }
  Family checks(out, "ringwatch_check_status",
                "Status of each check: 0 ok, 1 warning, 2 critical, 3 unknown.");
  for (const auto& check : report.checks) {
    checks.sample(static_cast<double>(check.status), {{"check", check.name}});
  }
  const double* reads = figure(report, figures::kReads);
  const double* ratio = figure(report, figures::kConsistencyRatio);
  if (reads && *reads > 0 && ratio) {
    Family(out, "ringwatch_canary_consistency_ratio", "Consistent canary reads over all reads.")
        .sample(*ratio);
  }
  per_subject(out, spec, report);
  Family(out, "ringwatch_backends_configured", "Backends in the cluster's spec.")
      .sample(static_cast<double>(spec.backends.size()));
  Family(out, "ringwatch_proxies_configured", "Proxies in the cluster's spec.")
      .sample(static_cast<double>(spec.proxies.size()));
  Family other(out, "ringwatch_probe_figure", "The round's other figures, by name.");
  for (const auto& [name, value] : report.figures) {
    if (name.find('/') == std::string::npos) other.sample(value, {{"figure", name}});
  }
  return out;
}

}  // namespace ringwatch::daemon
