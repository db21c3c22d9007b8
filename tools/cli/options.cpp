#include "tools/cli/options.h"

namespace ringwatch::cli {

bool parse_options(const Args& args, const po::options_description& options,
                   const po::positional_options_description& positional, po::variables_map& vm,
                   std::ostream& out, const std::string& usage) {
  po::options_description all = options;
  all.add_options()("help,h", "show this help");
  try {
    po::store(po::command_line_parser(args).options(all).positional(positional).run(), vm);
    if (vm.count("help")) {
      out << usage << "\n" << all << "\n";
      return false;
    }
    po::notify(vm);
  } catch (const po::error& error) {
    throw UsageError(error.what());
  }
  return true;
}

}  // namespace ringwatch::cli
