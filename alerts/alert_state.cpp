#include "alerts/alert_state.h"

#include <algorithm>
#include <cctype>
#include <set>
#include <stdexcept>

namespace ringwatch::alerts {

namespace {

const std::string kEmpty;
constexpr int kValidityFactor = 4;

std::string find_diagnosis(const report::Report& report, std::size_t finding_index) {
  for (const report::Diagnosis& diagnosis : report.diagnoses) {
    const auto& indexes = diagnosis.finding_indexes;
    if (std::find(indexes.begin(), indexes.end(), finding_index) != indexes.end()) {
      return diagnosis.summary;
    }
  }
  return {};
}

LabelSet annotations_for(const report::Report& report, std::size_t finding_index) {
  LabelSet annotations{{"summary", report.findings[finding_index].summary}};
  std::string diagnosis = find_diagnosis(report, finding_index);
  if (!diagnosis.empty()) annotations.emplace("diagnosis", std::move(diagnosis));
  return annotations;
}

}  // namespace

const char* to_string(AlertState state) {
  switch (state) {
    case AlertState::pending:
      return "pending";
    case AlertState::firing:
      return "firing";
    case AlertState::resolved:
      return "resolved";
  }
  return "resolved";
}

const char* to_string(EventKind kind) {
  switch (kind) {
    case EventKind::fired:
      return "fired";
    case EventKind::resent:
      return "resent";
    case EventKind::resolved:
      return "resolved";
  }
  return "resolved";
}

const std::string& Alert::label(const std::string& name) const {
  auto found = labels.find(name);
  return found == labels.end() ? kEmpty : found->second;
}

std::string Alert::fingerprint() const {
  std::uint64_t hash = 14695981039346656037ULL;
  auto mix = [&hash](std::string_view text) {
    for (unsigned char c : text) {
      hash ^= c;
      hash *= 1099511628211ULL;
    }
    hash ^= 0xff;  // separator: never a byte of valid UTF-8
    hash *= 1099511628211ULL;
  };
  for (const auto& [name, value] : labels) {
    mix(name);
    mix(value);
  }
  static const char* digits = "0123456789abcdef";
  std::string text(16, '0');
  for (int i = 15; i >= 0; --i) {
    text[static_cast<std::size_t>(i)] = digits[hash & 0xf];
    hash >>= 4;
  }
  return text;
}

std::string alertname_for(std::string_view finding_code) {
  std::string name = "Ringwatch";
  bool upper = true;
  for (char c : finding_code) {
    if (c == '_' || c == '-' || c == '.') {
      upper = true;
      continue;
    }
    if (!std::isalnum(static_cast<unsigned char>(c))) continue;
    name += upper ? static_cast<char>(std::toupper(static_cast<unsigned char>(c))) : c;
    upper = false;
  }
  return name;
}

LabelSet labels_for(const std::string& cluster, const report::Finding& finding) {
  LabelSet labels{{"alertname", alertname_for(finding.code)},
                  {"cluster", cluster},
                  {"check", finding.check},
                  {"severity", report::to_string(finding.severity)}};
  const report::Subject& subject = finding.subject;
  if (!subject.proxy.empty()) labels.emplace("proxy", subject.proxy);
  if (!subject.backend.empty()) labels.emplace("backend", subject.backend);
  if (!subject.node.empty()) labels.emplace("node", subject.node);
  if (!subject.vantage.empty()) labels.emplace("vantage", subject.vantage);
  return labels;
}

AlertTracker::AlertTracker(TrackerOptions options) : options_(std::move(options)) {
  if (options_.fire_after_rounds < 1) {
    throw std::invalid_argument("fire_after_rounds: expected at least 1, got " +
                                std::to_string(options_.fire_after_rounds));
  }
  if (options_.resolve_after_rounds < 1) {
    throw std::invalid_argument("resolve_after_rounds: expected at least 1, got " +
                                std::to_string(options_.resolve_after_rounds));
  }
  if (options_.resend_interval <= std::chrono::seconds::zero()) {
    throw std::invalid_argument("resend_interval: expected a positive duration, got " +
                                std::to_string(options_.resend_interval.count()) + " s");
  }
}

std::chrono::nanoseconds AlertTracker::validity(const ClusterAlerts& cluster) const {
  return kValidityFactor *
         std::max<std::chrono::nanoseconds>(options_.resend_interval, cluster.round_gap);
}

void AlertTracker::send_if_due(Tracked& tracked, const ClusterAlerts& cluster, TimePoint now,
                               std::vector<AlertEvent>& events) const {
  if (tracked.alert.state != AlertState::firing) return;
  if (now - tracked.last_sent < options_.resend_interval) return;
  tracked.last_sent = now;
  tracked.alert.ends_at = now + std::chrono::duration_cast<Clock::duration>(validity(cluster));
  events.push_back({EventKind::resent, tracked.alert});
}

std::vector<AlertEvent> AlertTracker::observe(const report::Report& report, TimePoint now) {
  std::lock_guard lock(mutex_);
  ClusterAlerts& cluster = clusters_[report.cluster];
  if (cluster.has_round && now > cluster.last_round) {
    cluster.round_gap = now - cluster.last_round;
  }
  cluster.has_round = true;
  cluster.last_round = now;
  const auto valid_until = now + std::chrono::duration_cast<Clock::duration>(validity(cluster));

  // This round's failing identities, first finding wins.
  std::map<LabelSet, std::size_t> failing;
  for (std::size_t i = 0; i < report.findings.size(); ++i) {
    const report::Finding& finding = report.findings[i];
    if (finding.severity == report::Severity::info) continue;
    failing.emplace(labels_for(report.cluster, finding), i);
  }
  // Checks that could see this round: ran with a decided status.
  std::set<std::string> decided;
  for (const report::CheckResult& check : report.checks) {
    if (check.status != report::Status::unknown) decided.insert(check.name);
  }
  std::string generator_url;
  if (!options_.generator_url.empty()) {
    generator_url = options_.generator_url;
    while (!generator_url.empty() && generator_url.back() == '/') generator_url.pop_back();
    generator_url += "/v1/clusters/" + report.cluster;
  }

  std::vector<AlertEvent> events;
  for (const auto& [labels, index] : failing) {
    auto [it, inserted] = cluster.alerts.try_emplace(labels);
    Tracked& tracked = it->second;
    tracked.alert.annotations = annotations_for(report, index);
    tracked.alert.generator_url = generator_url;
    if (inserted) {
      tracked.alert.labels = labels;
      tracked.alert.state = AlertState::pending;
      tracked.alert.starts_at = now;
    }
    if (tracked.alert.state == AlertState::pending) {
      if (++tracked.failing >= options_.fire_after_rounds) {
        tracked.alert.state = AlertState::firing;
        tracked.passing = 0;
        tracked.last_sent = now;
        tracked.alert.ends_at = valid_until;
        events.push_back({EventKind::fired, tracked.alert});
      }
    } else {
      tracked.passing = 0;
      send_if_due(tracked, cluster, now, events);
    }
  }

  for (auto it = cluster.alerts.begin(); it != cluster.alerts.end();) {
    Tracked& tracked = it->second;
    if (failing.contains(it->first)) {
      ++it;
      continue;
    }
    if (!decided.contains(tracked.alert.label("check"))) {  // held
      send_if_due(tracked, cluster, now, events);
      ++it;
      continue;
    }
    if (tracked.alert.state == AlertState::pending) {
      it = cluster.alerts.erase(it);
      continue;
    }
    if (++tracked.passing >= options_.resolve_after_rounds) {
      tracked.alert.state = AlertState::resolved;
      tracked.alert.ends_at = now;
      events.push_back({EventKind::resolved, std::move(tracked.alert)});
      it = cluster.alerts.erase(it);
      continue;
    }
    send_if_due(tracked, cluster, now, events);
    ++it;
  }

  std::sort(events.begin(), events.end(), [](const AlertEvent& a, const AlertEvent& b) {
    return a.alert.labels < b.alert.labels;
  });
  return events;
}

std::vector<AlertEvent> AlertTracker::resends_due(TimePoint now) {
  std::lock_guard lock(mutex_);
  std::vector<AlertEvent> events;
  for (auto& [name, cluster] : clusters_) {
    for (auto& [labels, tracked] : cluster.alerts) send_if_due(tracked, cluster, now, events);
  }
  return events;
}

std::vector<AlertEvent> AlertTracker::forget_cluster(const std::string& cluster_name,
                                                     TimePoint now) {
  std::lock_guard lock(mutex_);
  std::vector<AlertEvent> events;
  auto found = clusters_.find(cluster_name);
  if (found == clusters_.end()) return events;
  for (auto& [labels, tracked] : found->second.alerts) {
    if (tracked.alert.state != AlertState::firing) continue;
    tracked.alert.state = AlertState::resolved;
    tracked.alert.ends_at = now;
    events.push_back({EventKind::resolved, std::move(tracked.alert)});
  }
  clusters_.erase(found);
  return events;
}

std::vector<Alert> AlertTracker::active(const std::string& cluster_name) const {
  std::lock_guard lock(mutex_);
  std::vector<Alert> alerts;
  for (const auto& [name, cluster] : clusters_) {
    if (!cluster_name.empty() && name != cluster_name) continue;
    for (const auto& [labels, tracked] : cluster.alerts) alerts.push_back(tracked.alert);
  }
  return alerts;
}

}  // namespace ringwatch::alerts
