#pragma once
// Processes and sockets for the lab: starting a program in its own session,
// telling whether a recorded pid is still the process we started, stopping
// it, and the loopback socket helpers (free ports, "does it accept").
//
// A process is identified by its pid AND its start time (field 22 of
// /proc/PID/stat, clock ticks since boot), so a recycled pid is never taken
// for ours and never signalled. Processes are direct children of the caller
// (one fork + setsid): a long-running caller such as a test reaps them here
// (probe() and stop() do), and when a short-lived caller such as
// `ringwatch lab up` exits they are reparented to init. A zombie counts as
// dead everywhere.
//
// Functions are thread-safe in the sense that they share no state; spawn()
// uses fork(), so call it from a thread that holds no locks others need.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace ringwatch::lab {

struct ProcessId {
  int pid = 0;
  std::uint64_t start_time = 0;  // /proc/PID/stat field 22
};

enum class ProcState {
  running,  // R, S, D, ...: alive and scheduled
  stopped,  // T or t: SIGSTOPped
  dead,     // gone, a zombie, or the pid now belongs to another process
};
const char* to_string(ProcState state);

// The start time of pid, or nullopt if no such process.
std::optional<std::uint64_t> read_start_time(int pid);

// Starts `argv` (argv[0] an absolute path) in a new session with cwd `cwd`,
// stdin from /dev/null, stdout and stderr appended to `log`, every other
// descriptor closed and signal dispositions reset. Throws std::runtime_error
// if the program cannot be executed.
ProcessId spawn(const std::vector<std::string>& argv, const std::filesystem::path& log,
                const std::filesystem::path& cwd);

// Runs `argv` to completion (output appended to `log`); returns its exit code,
// or -1 if it did not finish within `timeout` (it is then killed).
int run_to_completion(const std::vector<std::string>& argv, const std::filesystem::path& log,
                      const std::filesystem::path& cwd, std::chrono::milliseconds timeout);

// The state of the recorded process; reaps it if it is our zombie child.
ProcState probe(const ProcessId& id);

// Sends `sig` only if the pid still belongs to the recorded process.
bool send_signal(const ProcessId& id, int sig);

// Waits until probe(id) == want or the timeout passes; true if reached.
bool wait_for_state(const ProcessId& id, ProcState want, std::chrono::milliseconds timeout);

// Stops every listed process: SIGCONT and SIGTERM to all, up to `grace` for
// them to exit, SIGKILL to the rest, then waits (bounded) until all are dead.
// Returns the nodes' indices that were still not dead at the end (normally none).
std::vector<std::size_t> stop_all(const std::vector<ProcessId>& ids,
                                  std::chrono::milliseconds grace);

// The absolute path of a program: /usr/sbin, /usr/bin, then $PATH.
// Throws std::runtime_error naming the program if it is nowhere.
std::filesystem::path find_program(const std::string& name);

// `count` distinct ports free right now on `address` for TCP (and UDP, if
// `udp`): bind port 0 and read it back, holding every socket until all are
// chosen, then close them. Throws std::runtime_error on failure.
std::vector<std::uint16_t> free_ports(const std::string& address, std::size_t count, bool udp);

// True if a TCP connection to address:port is accepted within `timeout`.
bool tcp_accepts(const std::string& address, std::uint16_t port, std::chrono::milliseconds timeout);

// The last `max_lines` lines of a file (for error messages), or "".
std::string tail_of_file(const std::filesystem::path& path, std::size_t max_lines);

}  // namespace ringwatch::lab
