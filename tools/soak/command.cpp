// The command line of ringwatch-soak (tools/soak/soak.h): options, bounds,
// output. main.cpp is a shim into main() here.

#include <boost/program_options.hpp>
#include <cmath>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>

#include "tools/lab/process.h"
#include "tools/soak/soak.h"

namespace ringwatch::soak {
namespace {

namespace po = boost::program_options;

constexpr const char* kUsage =
    "Usage: ringwatch-soak --dir DIR --duration S [options]\n"
    "\n"
    "Runs the real ringwatchd on a lab for S seconds while churning it (backend\n"
    "restarts, rolling proxy restarts, DNS flaps), then reports its rounds by\n"
    "status and every round that was not OK, with its cause, as explained by a\n"
    "churn event in progress or UNEXPLAINED (a false alarm).\n"
    "\n"
    "Exit codes: 0 every non-OK round explained, 2 an unexplained one (or no\n"
    "round, or ringwatchd died), 3 bad usage or a lab that cannot start.\n";

class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

po::options_description describe_options() {
  po::options_description options("Options", 100, 50);
  options.add_options()("help,h", "show this help")(
      "dir", po::value<std::string>()->value_name("DIR"),
      "a running lab to use, or where to bring one up (and down at the end)")(
      "duration", po::value<double>()->value_name("S"), "seconds to run, 1 to 86400 (required)")(
      "interval", po::value<double>()->default_value(1.0)->value_name("S"),
      "ringwatchd's round interval, 0.2 to 60")(
      "churn",
      po::value<std::string>()
          ->default_value("backend-restart,proxy-roll,dns-flap")
          ->value_name("KINDS"),
      "comma-separated churn kinds, or none")(
      "churn-every", po::value<double>()->default_value(15.0)->value_name("S"),
      "mean seconds between two churn events, 2 intervals to 3600")(
      "settle", po::value<double>()->value_name("S"),
      "seconds after an event that still explain a non-OK round, 0 to 600 "
      "(default: 2 intervals, at least 2)")(
      "seed", po::value<std::uint64_t>()->default_value(1)->value_name("N"),
      "seed of the churn's random choices")(
      "proxies", po::value<int>()->default_value(3)->value_name("M"), "a new lab's proxies")(
      "backends", po::value<int>()->default_value(3)->value_name("N"), "a new lab's backends")(
      "proxy-kind", po::value<std::string>()->default_value("twemproxy")->value_name("K"),
      "a new lab's proxies: twemproxy or memcached")(
      "format", po::value<std::string>()->default_value("text")->value_name("F"), "text or json")(
      "out", po::value<std::string>()->value_name("FILE"), "also write the report to FILE")(
      "ringwatchd", po::value<std::string>()->value_name("PATH"),
      "the daemon to run (default: the one built beside this program)");
  return options;
}

std::chrono::milliseconds seconds_option(const po::variables_map& vm, const char* name, double low,
                                         double high) {
  const double value = vm[name].as<double>();
  if (!(value >= low && value <= high)) {
    std::ostringstream message;
    message << "--" << name << ": expected seconds from " << low << " to " << high << ", got "
            << value;
    throw UsageError(message.str());
  }
  return std::chrono::milliseconds(static_cast<std::int64_t>(std::llround(value * 1000)));
}

std::vector<ChurnKind> churn_kinds(const std::string& text) {
  std::vector<ChurnKind> kinds;
  if (text == "none") return kinds;
  std::istringstream in(text);
  for (std::string name; std::getline(in, name, ',');) {
    const auto kind = parse_churn_kind(name);
    if (!kind)
      throw UsageError("--churn: unknown kind '" + name +
                       "' (backend-restart, proxy-roll, dns-flap, or none)");
    kinds.push_back(*kind);
  }
  if (kinds.empty()) throw UsageError("--churn: expected a kind or none");
  return kinds;
}

std::filesystem::path default_ringwatchd() {
#ifdef RINGWATCHD_BINARY
  if (std::filesystem::exists(RINGWATCHD_BINARY)) return RINGWATCHD_BINARY;
#endif
  return lab::find_program("ringwatchd");
}

Options options_from(const po::variables_map& vm) {
  Options options;
  if (!vm.count("dir") || vm["dir"].as<std::string>().empty())
    throw UsageError("missing --dir DIR");
  if (!vm.count("duration")) throw UsageError("missing --duration S");
  options.lab_dir = std::filesystem::absolute(vm["dir"].as<std::string>());
  options.duration = seconds_option(vm, "duration", 1, 86400);
  options.interval = seconds_option(vm, "interval", 0.2, 60);
  options.churn = churn_kinds(vm["churn"].as<std::string>());
  options.churn_every = seconds_option(vm, "churn-every", 0.1, 3600);
  if (options.churn_every < 2 * options.interval)
    throw UsageError("--churn-every: expected at least 2 intervals");
  options.settle = vm.count("settle")
                       ? seconds_option(vm, "settle", 0, 600)
                       : std::max(std::chrono::milliseconds(2000), 2 * options.interval);
  options.seed = vm["seed"].as<std::uint64_t>();
  options.proxies = vm["proxies"].as<int>();
  options.backends = vm["backends"].as<int>();
  const auto kind = lab::parse_lab_proxy_kind(vm["proxy-kind"].as<std::string>());
  if (!kind) throw UsageError("--proxy-kind: expected twemproxy or memcached");
  options.proxy_kind = *kind;
  options.ringwatchd = vm.count("ringwatchd")
                           ? std::filesystem::path(vm["ringwatchd"].as<std::string>())
                           : default_ringwatchd();
  return options;
}

}  // namespace

int main(int argc, char** argv) {
  const auto options_description = describe_options();
  po::variables_map vm;
  Options options;
  std::string format;
  try {
    po::store(po::parse_command_line(argc, argv, options_description), vm);
    po::notify(vm);
    if (vm.count("help")) {
      std::cout << kUsage << "\n" << options_description;
      return 0;
    }
    format = vm["format"].as<std::string>();
    if (format != "text" && format != "json") throw UsageError("--format: expected text or json");
    options = options_from(vm);
  } catch (const std::exception& error) {
    std::cerr << "ringwatch-soak: " << error.what() << "\nTry `ringwatch-soak --help`.\n";
    return 3;
  }
  SoakReport report;
  try {
    report = run(options, std::cerr);
  } catch (const std::exception& error) {
    std::cerr << "ringwatch-soak: " << error.what() << "\n";
    return 3;
  }
  const std::string rendered = format == "json" ? render_json(report) : render_text(report);
  std::cout << rendered << std::flush;
  if (vm.count("out")) {
    std::ofstream out(vm["out"].as<std::string>());
    out << rendered;
    if (!out) {
      std::cerr << "ringwatch-soak: cannot write " << vm["out"].as<std::string>() << "\n";
      return 3;
    }
  }
  return report.exit_code();
}

}  // namespace ringwatch::soak
