#pragma once
// Shared Boost.Program_options plumbing for subcommands: parse, turn every
// parse failure into a UsageError, and answer --help.

#include <boost/program_options.hpp>
#include <ostream>
#include <string>

#include "tools/cli/cli.h"

namespace ringwatch::cli {

namespace po = boost::program_options;

// Parses `args` against `options` (plus positional names, if any). Returns
// false when --help was asked for and printed (`usage` first, then options).
bool parse_options(const Args& args, const po::options_description& options,
                   const po::positional_options_description& positional, po::variables_map& vm,
                   std::ostream& out, const std::string& usage);

}  // namespace ringwatch::cli
