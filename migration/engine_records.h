#pragma once
// The records the engine writes for a cluster's transitions, and what an
// operator's request turns into at a cluster's boundary: shared by the
// engine's cluster threads and by operator commands taken without an engine
// (submit_command). Internal to migration/.

#include <optional>
#include <string>

#include "migration/checks.h"
#include "migration/journal.h"
#include "migration/plan.h"

namespace ringwatch::migration {

Record state_record(const ClusterProgress& cluster, Phase phase, int step, std::string detail);
Record pause_record(const ClusterProgress& cluster, PauseReason reason, Phase resume_to,
                    std::string detail, std::string diagnosis = {});
// "step 3 (drain-b1)", counted from 1; "the end" past the last step.
std::string step_label(const ClusterProgress& cluster, int step);
// The verdict of an observe-mode `check` at the cluster's step, run `where`
// (preflight or verifying): "passed" or "would_pause", with the round's report.
Record observe_record(const ClusterProgress& cluster, const CheckSpec& check, Phase where,
                      const CheckRound& round);
// A verify round of the cluster's step that failed before its deadline.
Record verify_failing_record(const ClusterProgress& cluster, const CheckRound& round);
// What an operator's request turns into at a cluster's boundary (the top of
// its loop, or right away when no engine runs); nullopt when nothing is due.
std::optional<Record> request_record(const ClusterProgress& cluster);

}  // namespace ringwatch::migration
