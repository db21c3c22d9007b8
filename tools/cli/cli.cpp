#include "tools/cli/cli.h"

#include <cstdlib>
#include <iostream>
#include <string_view>

#include "lib/util/version.h"

namespace ringwatch::cli {

namespace {

constexpr std::string_view kUsage =
    R"(ringwatch - keeps memcached clusters behind sharding proxies honest

Usage: ringwatch <command> [options]

Commands:
  probe    check a cluster now: canaries through every proxy (ring agreement,
           read-your-writes across proxies); prints a report and exits
           0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN
  lab      start a real cluster on loopback (memcached, twemproxy, dnsmasq),
           inject the faults ringwatch must catch, heal them, stop it
  migrate  run a migration plan step by step, each step gated on the probes;
           pauses on a failed check, survives a crash (plan, run, status,
           pause, resume, abort, skip, repair)
  spec     cluster specs: `spec import` writes one from the proxies' own
           configs (nutcracker YAML, mcrouter JSON)
  version  print the version

Options:
  -h [ --help ]   print this help
  --version       print the version

Run `ringwatch <command> --help` for the options of a command.
)";

struct Command {
  const char* name;
  int (*run)(const Args&, std::ostream&, std::ostream&);
};

int run_version(const Args&, std::ostream& out, std::ostream&) {
  out << "ringwatch " << kVersion << "\n";
  return kExitOk;
}

// The command table: one line per subcommand.
constexpr Command kCommands[] = {
    {"probe", run_probe}, {"lab", run_lab},         {"migrate", run_migrate},
    {"spec", run_spec},   {"version", run_version},
};

}  // namespace

int run(const Args& args, std::ostream& out, std::ostream& err) {
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    (args.empty() ? err : out) << kUsage;
    return args.empty() ? kExitUnknown : kExitOk;
  }
  if (args[0] == "--version") return run_version({}, out, err);
  for (const Command& command : kCommands) {
    if (args[0] != command.name) continue;
    const Args rest(args.begin() + 1, args.end());
    try {
      return command.run(rest, out, err);
    } catch (const UsageError& error) {
      err << "ringwatch " << command.name << ": " << error.what() << "\n"
          << "Try `ringwatch " << command.name << " --help`.\n";
      return kExitUnknown;
    } catch (const std::exception& error) {
      err << "ringwatch " << command.name << ": " << error.what() << "\n";
      return kExitUnknown;
    }
  }
  err << "ringwatch: unknown command \"" << args[0] << "\"\n" << kUsage;
  return kExitUnknown;
}

int run(int argc, char** argv) {
  Args args;
  for (int i = 1; i < argc; ++i) args.emplace_back(argv[i]);
  const int code = run(args, std::cout, std::cerr);
  if (work_left_running()) {
    std::cout.flush();
    std::cerr.flush();
    std::_Exit(code);
  }
  return code;
}

}  // namespace ringwatch::cli
