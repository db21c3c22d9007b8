// `ringwatch spec`: cluster specs. `spec import` writes one from the proxies'
// own configs; the reading and merging is lib/spec/import, this file parses
// options and prints.

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <ostream>
#include <stdexcept>
#include <string>
#include <vector>

#include "lib/spec/cluster_spec.h"
#include "lib/spec/import/spec_import.h"
#include "tools/cli/cli.h"
#include "tools/cli/options.h"

namespace ringwatch::cli {
namespace {

constexpr const char* kOverview =
    "Usage: ringwatch spec <subcommand> [options]\n"
    "\n"
    "Subcommands:\n"
    "  import  write a cluster spec from the proxies' own configs (nutcracker YAML,\n"
    "          mcrouter JSON); see `ringwatch spec import --help`\n";

constexpr const char* kImportUsage =
    "Usage: ringwatch spec import [--name NAME] [--out FILE]\n"
    "         [--twemproxy NAME=CONFIG[,client=ADDR][,stats=ADDR][,pool=POOL]]...\n"
    "         [--mcrouter NAME=CONFIG,client=ADDR[,stats=ADDR][,pool=POOL]]...\n"
    "\n"
    "Writes a cluster spec (JSON, docs/spec.md) from one config file per proxy, to\n"
    "stdout or --out FILE.\n"
    "\n"
    "  --twemproxy  a nutcracker YAML file. Its pool is pool=POOL, else its only\n"
    "               pool, else the one named like --name. The client address is\n"
    "               the pool's `listen` (client=ADDR when it is a wildcard such as\n"
    "               0.0.0.0), the stats address stats=ADDR, else the client's host\n"
    "               on port 22222 (nutcracker's default). Backends are the pool's\n"
    "               `servers` lines, `host:port:weight [name]`, with an IP address\n"
    "               host.\n"
    "  --mcrouter   an mcrouter JSON file (written from mcrouter's documentation:\n"
    "               `pools`, each with `servers` \"host:port\"; comments allowed,\n"
    "               macros and @import not expanded). client=ADDR is required: an\n"
    "               mcrouter's port is on its command line.\n"
    "\n"
    "Proxies are written in the order given, --twemproxy ones first. Every server\n"
    "any proxy lists becomes one backend (by address and port), named by its\n"
    "server name where the first proxy listing it gives one, else after its\n"
    "address: 10.0.0.1:11211 becomes 10.0.0.1-11211 (':' is not allowed in a\n"
    "name). Backends get no dns_name: the configs give addresses, and the DNS\n"
    "check does not apply to them. Each proxy's `pool` is written, so the cluster\n"
    "may be named differently from its pools; without --name it is named after\n"
    "the pool every proxy shares.\n"
    "\n"
    "What the proxies disagree on (a backend some list and others do not, names,\n"
    "weights, hash, distribution) is imported anyway, for the probe to judge, and\n"
    "listed on stderr, one `disagreement:` line each.\n"
    "\n"
    "memcached's built-in proxy is configured by a Lua program (the lab's\n"
    "routes.lua, routelib): a program, not a list, so it cannot be imported in\n"
    "general; write its spec by hand.\n"
    "\n"
    "Exit: 0 the spec was written (disagreements or not), 3 bad usage or a config\n"
    "that cannot be read (the file, the line or JSON pointer, and what was expected).";

// Writes next to `path` and renames, so a reader never sees half a spec.
void write_file(const std::string& path, const std::string& text) {
  const std::string temporary = path + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream file(temporary, std::ios::trunc);
    file << text;
    file.close();
    if (!file) throw std::runtime_error(path + ": cannot write");
  }
  std::error_code error;
  std::filesystem::rename(temporary, path, error);
  if (error) {
    std::filesystem::remove(temporary, error);
    throw std::runtime_error(path + ": cannot write");
  }
}

std::vector<spec::import::Source> sources_of(const po::variables_map& vm) {
  std::vector<spec::import::Source> sources;
  for (const auto& [option, kind] : {std::pair{"twemproxy", spec::ProxyKind::twemproxy},
                                     std::pair{"mcrouter", spec::ProxyKind::mcrouter}}) {
    if (!vm.count(option)) continue;
    for (const std::string& text : vm[option].as<std::vector<std::string>>()) {
      try {
        sources.push_back(spec::import::parse_source(kind, text));
      } catch (const std::invalid_argument& error) {
        throw UsageError(std::string("--") + option + ": " + error.what());
      }
    }
  }
  if (sources.empty()) throw UsageError("give at least one --twemproxy or --mcrouter");
  return sources;
}

int run_import(const Args& args, std::ostream& out, std::ostream& err) {
  po::options_description options("Options");
  options.add_options()("name", po::value<std::string>()->value_name("NAME"),
                        "the cluster's name (default: the pool every proxy shares)")(
      "twemproxy", po::value<std::vector<std::string>>()->value_name("SOURCE"),
      "a twemproxy: NAME=CONFIG[,client=ADDR][,stats=ADDR][,pool=POOL]")(
      "mcrouter", po::value<std::vector<std::string>>()->value_name("SOURCE"),
      "an mcrouter: NAME=CONFIG,client=ADDR[,stats=ADDR][,pool=POOL]")(
      "out", po::value<std::string>()->value_name("FILE"), "write the spec here, not to stdout");
  po::variables_map vm;
  if (!parse_options(args, options, {}, vm, out, kImportUsage)) return kExitOk;
  const std::vector<spec::import::Source> sources = sources_of(vm);
  std::optional<std::string> name;
  if (vm.count("name")) name = vm["name"].as<std::string>();

  spec::import::Imported imported;
  try {
    imported = spec::import::import_spec(sources, name);
  } catch (const std::runtime_error& error) {  // SpecError, ImportError
    err << "ringwatch spec import: " << error.what() << "\n";
    return kExitUnknown;
  }
  for (const std::string& line : imported.disagreements) {
    err << "ringwatch spec import: disagreement: " << line << "\n";
  }
  const std::string json = spec::to_json(imported.spec);
  if (vm.count("out")) {
    write_file(vm["out"].as<std::string>(), json);
  } else {
    out << json;
  }
  return kExitOk;
}

}  // namespace

int run_spec(const Args& args, std::ostream& out, std::ostream& err) {
  if (args.empty()) throw UsageError("missing subcommand (import)");
  const std::string& name = args.front();
  if (name == "--help" || name == "-h" || name == "help") {
    out << kOverview;
    return kExitOk;
  }
  if (name != "import") throw UsageError("unknown subcommand '" + name + "' (import)");
  return run_import(Args(args.begin() + 1, args.end()), out, err);
}

}  // namespace ringwatch::cli
