#include "migration/engine_records.h"

#include "lib/report/render.h"

namespace ringwatch::migration {

Record state_record(const ClusterProgress& cluster, Phase phase, int step, std::string detail) {
  Record record;
  record.type = Record::Type::state;
  record.cluster = cluster.name;
  record.phase = phase;
  record.step = step;
  record.detail = std::move(detail);
  return record;
}

Record pause_record(const ClusterProgress& cluster, PauseReason reason, Phase resume_to,
                    std::string detail, std::string diagnosis) {
  Record record = state_record(cluster, Phase::paused, cluster.step, std::move(detail));
  record.reason = reason;
  record.resume_to = resume_to;
  record.diagnosis = std::move(diagnosis);
  return record;
}

std::string step_label(const ClusterProgress& cluster, int step) {
  if (step < 0 || step >= static_cast<int>(cluster.step_names.size())) return "the end";
  return "step " + std::to_string(step + 1) + " (" +
         cluster.step_names[static_cast<std::size_t>(step)] + ")";
}

Record observe_record(const ClusterProgress& cluster, const CheckSpec& check, Phase where,
                      const CheckRound& round) {
  Record record;
  record.type = Record::Type::observe;
  record.cluster = cluster.name;
  record.step = cluster.step;
  record.phase = where;
  record.check = describe_check(check);
  record.outcome = round.passed ? "passed" : "would_pause";
  record.detail = round.failures;
  record.diagnosis = round.diagnosis;
  record.report = report::render_json(round.report, report::JsonLayout::compact);
  while (!record.report.empty() && record.report.back() == '\n') record.report.pop_back();
  return record;
}

Record verify_failing_record(const ClusterProgress& cluster, const CheckRound& round) {
  Record record;
  record.type = Record::Type::verify_failing;
  record.cluster = cluster.name;
  record.step = cluster.step;
  record.detail = round.failures;
  record.diagnosis = round.diagnosis;
  return record;
}

std::optional<Record> request_record(const ClusterProgress& cluster) {
  if (cluster.terminal()) return std::nullopt;
  if (cluster.abort_requested) {
    return state_record(cluster, Phase::aborted, cluster.step,
                        "aborted by operator at " + step_label(cluster, cluster.step) + " in " +
                            to_string(cluster.phase));
  }
  if (cluster.pause_requested &&
      !(cluster.phase == Phase::paused && cluster.reason == PauseReason::operator_request)) {
    const Phase resume_to = cluster.phase == Phase::paused ? cluster.resume_to : cluster.phase;
    std::string detail = "paused by operator at " + step_label(cluster, cluster.step);
    if (cluster.phase == Phase::paused) detail += " (was paused: " + cluster.detail + ")";
    return pause_record(cluster, PauseReason::operator_request, resume_to, detail);
  }
  if (cluster.resume_requested && cluster.phase == Phase::paused) {
    return state_record(cluster, cluster.resume_to, cluster.step, "resumed by operator");
  }
  return std::nullopt;
}

}  // namespace ringwatch::migration
