#pragma once
// Driving the `ringwatch` command in-process, for the CLI's tests: the exit
// code and what it wrote to stdout and stderr.

#include <sstream>
#include <string>
#include <vector>

#include "tools/cli/cli.h"

namespace ringwatch::testing {

struct Outcome {  // of one `ringwatch` command
  int code;
  std::string out, err;
};

inline Outcome run_cli(const cli::Args& args) {
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
