#include "migration/process_group.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <string_view>
#include <thread>

#include "lib/util/fd_io.h"

namespace ringwatch::migration {

namespace {

using SteadyClock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// What /proc/PID/stat says about one process.
struct Stat {
  char state = '?';
  int pgrp = 0;
  std::uint64_t start_time = 0;
  bool alive() const { return state != 'Z' && state != 'X' && state != 'x'; }
};

std::optional<std::string> read_small_file(const std::string& path) {
  const util::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return std::nullopt;
  std::string text(1024, '\0');
  std::size_t got = 0;
  for (;;) {
    const ssize_t n = ::read(fd.get(), text.data() + got, text.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return std::nullopt;
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
    if (got == text.size()) text.resize(text.size() * 2);
  }
  text.resize(got);
  return text;
}

// Fields 3 (state), 5 (pgrp) and 22 (starttime) of proc(5). The command name
// (field 2) may hold spaces and parentheses, so fields are counted from
// after its last ')'.
std::optional<Stat> read_stat(int pid) {
  const auto text = read_small_file("/proc/" + std::to_string(pid) + "/stat");
  if (!text) return std::nullopt;
  const std::size_t close = text->rfind(')');
  if (close == std::string::npos) return std::nullopt;
  Stat stat;
  std::string_view rest = std::string_view(*text).substr(close + 1);
  for (int field = 3; field <= 22; ++field) {
    const std::size_t start = rest.find_first_not_of(' ');
    if (start == std::string_view::npos) return std::nullopt;
    rest.remove_prefix(start);
    const std::size_t end = std::min(rest.find(' '), rest.size());
    const std::string value(rest.substr(0, end));
    if (field == 3) stat.state = value.empty() ? '?' : value[0];
    if (field == 5) stat.pgrp = std::atoi(value.c_str());
    if (field == 22) stat.start_time = std::strtoull(value.c_str(), nullptr, 10);
    rest.remove_prefix(end);
  }
  return stat;
}

// Some process other than a zombie has process group `pgid`.
bool any_live_member(int pgid) {
  if (::kill(-pgid, 0) != 0 && errno == ESRCH) return false;  // cheap, and usual
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) return true;  // cannot tell: assume it runs
  bool found = false;
  while (const dirent* entry = ::readdir(proc)) {
    char* end = nullptr;
    const long pid = std::strtol(entry->d_name, &end, 10);
    if (pid <= 0 || *end != '\0') continue;
    const auto stat = read_stat(static_cast<int>(pid));
    if (stat && stat->pgrp == pgid && stat->alive()) {
      found = true;
      break;
    }
  }
  ::closedir(proc);
  return found;
}

bool wait_until_stopped(const ProcessGroup& group, std::chrono::milliseconds limit) {
  const auto until = SteadyClock::now() + limit;
  while (group_alive(group)) {
    if (SteadyClock::now() >= until) return false;
    std::this_thread::sleep_for(20ms);
  }
  return true;
}

}  // namespace

std::optional<std::uint64_t> process_start_time(int pid) {
  if (pid <= 0) return std::nullopt;
  const auto stat = read_stat(pid);
  if (!stat) return std::nullopt;
  return stat->start_time;
}

std::string current_boot_id() {
  auto text = read_small_file("/proc/sys/kernel/random/boot_id");
  if (!text) return {};
  while (!text->empty() && (text->back() == '\n' || text->back() == ' ')) text->pop_back();
  return *text;
}

ProcessGroup identify_group(int leader) {
  ProcessGroup group;
  group.pgid = leader;
  group.start_time = process_start_time(leader).value_or(0);
  group.boot_id = current_boot_id();
  return group;
}

bool group_alive(const ProcessGroup& group) {
  if (!group.known()) return false;
  if (!group.boot_id.empty() && group.boot_id != current_boot_id()) return false;
  if (const auto leader = read_stat(group.pgid); leader && leader->start_time != group.start_time) {
    return false;  // the number was reused: our group had ended
  }
  return any_live_member(group.pgid);
}

bool stop_group(const ProcessGroup& group, std::chrono::milliseconds grace) {
  if (!group_alive(group)) return true;
  ::kill(-group.pgid, SIGTERM);
  if (wait_until_stopped(group, grace)) return true;
  if (group_alive(group)) ::kill(-group.pgid, SIGKILL);
  return wait_until_stopped(group, grace);
}

}  // namespace ringwatch::migration
