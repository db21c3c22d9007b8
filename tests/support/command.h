#pragma once
// A shell command run by a test to its end: its exit status (-1 if it did
// not exit normally) and everything it printed, stdout and stderr together.

#include <sys/wait.h>

#include <cstdio>
#include <string>
#include <utility>

namespace ringwatch::testing {

inline std::pair<int, std::string> run_command(const std::string& command_line) {
  FILE* pipe = ::popen((command_line + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return {-1, "popen failed: " + command_line};
  std::string output;
  char buffer[4096];
  while (std::size_t n = std::fread(buffer, 1, sizeof buffer, pipe)) output.append(buffer, n);
  const int status = ::pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

}  // namespace ringwatch::testing
