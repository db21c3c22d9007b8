// submit_command (engine.h): an operator's command, through the running
// engine or, when none runs, straight into the journal under the lock.

#include <chrono>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>

#include "migration/engine.h"
#include "migration/engine_records.h"

namespace ringwatch::migration {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

std::string submit_command(const fs::path& state_dir, const Command& command,
                           std::chrono::milliseconds wait) {
  if (!fs::exists(state_dir / "journal.jsonl")) {
    throw std::runtime_error("no migration journal in " + state_dir.string());
  }
  std::string holder;
  const auto until = SteadyClock::now() + wait;
  std::optional<StateLock> lock;
  // Another operator command holds the lock only for a moment: wait for it.
  // Only a running engine gets commands through commands.jsonl.
  while (!(lock = StateLock::try_acquire(state_dir, "ringwatch migrate " + command.command,
                                         &holder)) &&
         holder.find("migrate run") == std::string::npos) {
    if (SteadyClock::now() > until) {
      throw std::runtime_error("state directory " + state_dir.string() + " stays busy (" + holder +
                               ")");
    }
    std::this_thread::sleep_for(50ms);
  }
  if (lock) {
    // No engine runs: write the journal here, and take the request at once.
    Journal journal(state_dir);
    JournalState state = replay(journal.records());
    if (auto error = check_command(state, command)) throw std::runtime_error(*error);
    apply(state, journal.append(accept_command(state, command)));
    std::string said;
    for (const auto& name : state.cluster_order) {
      if (!command.cluster.empty() && name != command.cluster) continue;
      const ClusterProgress& cluster = *state.find(name);
      if (auto record = request_record(cluster)) {
        apply(state, journal.append(std::move(*record)));
      }
      const ClusterProgress& after = *state.find(name);
      said += "cluster " + name + ": " + to_string(after.phase);
      if (after.phase == Phase::paused) said += std::string(" (") + to_string(after.reason) + ")";
      said += "\n";
    }
    return command.command +
           " recorded; no engine is running (`ringwatch migrate run` continues)\n" + said;
  }
  enqueue_command(state_dir, command);
  while (SteadyClock::now() < until) {
    for (const Record& record : read_journal(state_dir)) {
      if (record.type != Record::Type::operator_command || record.command_id != command.id)
        continue;
      if (record.outcome == "rejected") throw std::runtime_error(record.detail);
      return command.command + " accepted by the running engine (" + holder + ")\n";
    }
    std::this_thread::sleep_for(100ms);
  }
  return command.command + " queued; the running engine (" + holder +
         ") has not taken it yet, and will when it next reads its commands\n";
}

}  // namespace ringwatch::migration
