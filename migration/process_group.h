#pragma once
// The process group an action runs in, named so that a later engine (after
// kill -9 of this one) can tell whether it still runs, and stop it.
//
// Every action leads its own session and process group (action.h), so the
// group id is the leader's pid. A pid alone is not a name: once the leader
// is gone its number may be given to an unrelated process. So a group is
// named by three things, all journaled before the action's command starts:
//   pgid        the leader's pid
//   start_time  the leader's start time (/proc/PID/stat field 22, clock
//               ticks since boot), the same before and after its exec
//   boot_id     /proc/sys/kernel/random/boot_id: after a reboot nothing of
//               the group can be left
//
// group_alive(group) is true while some process of the group is alive (a zombie
// does not count) and the group is still the one named: when a process with
// the leader's pid exists with another start time, the number was reused,
// which Linux does only once the old group is empty. When the leader is gone
// but members of a group with its id remain, they are taken to be ours: a
// new group could only have that id if ours had ended, its number been
// given to a new process that made a session, and that process had exited
// leaving children: not impossible, but not something this guards against.
//
// Thread-safe: no shared state.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace ringwatch::migration {

struct ProcessGroup {
  int pgid = 0;  // 0: no group (nothing was spawned, or a journal from before groups were kept)
  std::uint64_t start_time = 0;
  std::string boot_id;
  bool known() const { return pgid > 0; }
  friend bool operator==(const ProcessGroup&, const ProcessGroup&) = default;
};

// Field 22 of /proc/PID/stat; nullopt when there is no such process.
std::optional<std::uint64_t> process_start_time(int pid);
// This boot's id, or "" when /proc does not say.
std::string current_boot_id();
// The group `leader` leads, as it is now (leader must exist: a child not yet reaped).
ProcessGroup identify_group(int leader);

// Some process of `group` is alive, and the group is the one named.
bool group_alive(const ProcessGroup& group);

// SIGTERM to the whole group, SIGKILL to what is left after `grace`; true
// once nothing of it runs (false only if processes outlive SIGKILL for
// `grace` more, e.g. stuck in the kernel). Does nothing to a group that is
// not group_alive(): a reused number is never signalled.
bool stop_group(const ProcessGroup& group, std::chrono::milliseconds grace);

}  // namespace ringwatch::migration
