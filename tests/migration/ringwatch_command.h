#pragma once
// `ringwatch <args>` as an operator types it in a shell, for tests that check
// what the command line says and its exit status.

#include <stdio.h>
#include <sys/wait.h>

#include <string>
#include <utility>

namespace ringwatch::testing {

// The exit status (-1 if it did not exit) and everything it printed, stdout
// and stderr together. `args` goes through the shell: quote what needs it.
inline std::pair<int, std::string> ringwatch(const std::string& args) {
  FILE* pipe = ::popen((std::string(RINGWATCH_BINARY) + " " + args + " 2>&1").c_str(), "r");
  std::string output;
  char buffer[4096];
  while (std::size_t n = std::fread(buffer, 1, sizeof buffer, pipe)) output.append(buffer, n);
  const int status = ::pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

}  // namespace ringwatch::testing
