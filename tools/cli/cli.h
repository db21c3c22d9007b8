#pragma once
// The `ringwatch` command. main.cpp only calls run(); every subcommand is a
// function from arguments and streams to an exit code, so tests drive the CLI
// in-process.
//
// Exit codes follow the monitoring-plugin convention: 0 OK, 1 WARNING,
// 2 CRITICAL, 3 UNKNOWN (bad config, bad usage, nothing could be checked).

#include <iosfwd>
#include <stdexcept>
#include <string>
#include <vector>

#include "lib/util/exit_code.h"

namespace ringwatch::cli {

// Bad usage (unknown option, missing argument): printed as
// "ringwatch <cmd>: <message>" plus a hint to --help, exit 3.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

using Args = std::vector<std::string>;  // arguments after the subcommand name

int run(int argc, char** argv);
int run(const Args& args, std::ostream& out, std::ostream& err);  // args[0] = subcommand
int run_probe(const Args& args, std::ostream& out, std::ostream& err);
int run_lab(const Args& args, std::ostream& out, std::ostream& err);
int run_migrate(const Args& args, std::ostream& out, std::ostream& err);
int run_spec(const Args& args, std::ostream& out, std::ostream& err);

// True while a probe round abandoned at `probe --timeout` still runs on its
// own thread (it ends within the spec's own deadlines). run(argc, argv) then
// ends the process without static destructors, which that thread may use.
bool work_left_running();

}  // namespace ringwatch::cli
