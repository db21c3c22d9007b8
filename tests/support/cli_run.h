#pragma once
// Driving the `ringwatch` command in-process, as main() would, with its
// output captured. For tests that link ringwatch_cli.

#include <sstream>
#include <string>
#include <vector>

#include "tools/cli/cli.h"

namespace ringwatch::testing {

struct CliOutcome {
  int code;
  std::string out, err;
};

inline CliOutcome run_cli(const cli::Args& args) {
  std::ostringstream out, err;
  const int code = cli::run(args, out, err);
  return {code, out.str(), err.str()};
}

inline std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

}  // namespace ringwatch::testing
