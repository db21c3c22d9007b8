// `ringwatch probe`: load a spec, run rounds of the requested checks, print
// each round's report, exit with the worst status seen.

#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <iostream>
#include <sstream>
#include <thread>

#include "lib/report/render.h"
#include "lib/spec/cluster_spec.h"
#include "lib/util/text.h"
#include "probes/dns/dns_probe.h"
#include "probes/registry.h"
#include "tools/cli/options.h"

namespace ringwatch::cli {

namespace {

std::vector<std::string> split_checks(const std::string& list) {
  std::vector<std::string> named;
  std::stringstream stream(list);
  std::string item;
  while (std::getline(stream, item, ',')) {
    if (!item.empty()) named.push_back(item);
  }
  auto checks = probes::normalize_checks(named);
  if (!checks) throw UsageError("--checks: " + checks.error().message());
  if (checks.value().empty()) throw UsageError("--checks names no check");
  return std::move(checks).value();
}

bool use_color(const std::string& mode, const std::ostream& out) {
  if (mode == "always") return true;
  if (mode == "never") return false;
  if (mode != "auto")
    throw UsageError("--color must be auto, always or never, got \"" + mode + "\"");
  return &out == &std::cout && ::isatty(STDOUT_FILENO) && std::getenv("NO_COLOR") == nullptr;
}

}  // namespace

int run_probe(const Args& args, std::ostream& out, std::ostream& err) {
  const std::string default_checks = util::join(probes::known_checks(), ",");
  po::options_description options("Options");
  options.add_options()("cluster", po::value<std::string>()->required()->value_name("FILE"),
                        "cluster spec (JSON, see README)")(
      "checks", po::value<std::string>()->default_value(default_checks)->value_name("LIST"),
      "comma-separated checks to run")(
      "format", po::value<std::string>()->default_value("text")->value_name("FMT"),
      "text (for people), json (schema ringwatch.report/v1) or nagios (status line + perfdata)")(
      "rounds", po::value<int>()->default_value(1)->value_name("N"),
      "rounds to run; the exit code is the worst round's")(
      "interval", po::value<double>()->default_value(1.0)->value_name("S"),
      "seconds between the starts of two rounds")(
      "vantage", po::value<std::string>()->value_name("NAME"),
      "dns check from this one vantage point (a dns.servers[].name), e.g. when running beside "
      "a proxy")("color", po::value<std::string>()->default_value("auto")->value_name("WHEN"),
                 "colour the text format: auto (only on a terminal), always, never");
  po::variables_map vm;
  if (!parse_options(
          args, options, {}, vm, out,
          "Usage: ringwatch probe --cluster FILE [--checks LIST] [--format "
          "text|json|nagios] [--rounds N] [--interval S]\n\n"
          "Writes canary keys through every proxy, reads them back through every proxy,\n"
          "locates them on every backend, and reports ring divergence, inconsistent\n"
          "reads and unreachable nodes. Exit: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.")) {
    return kExitOk;
  }
  const auto format = report::parse_format(vm["format"].as<std::string>());
  if (!format) throw UsageError("--format must be text, json or nagios");
  const int rounds = vm["rounds"].as<int>();
  if (rounds < 1 || rounds > 1000000) throw UsageError("--rounds must be at least 1");
  const double interval = vm["interval"].as<double>();
  if (!(interval >= 0 && interval <= 86400))
    throw UsageError("--interval must be 0 to 86400 seconds");
  const report::TextOptions text_options{use_color(vm["color"].as<std::string>(), out)};
  const std::vector<std::string> checks = split_checks(vm["checks"].as<std::string>());

  spec::ClusterSpec cluster;
  try {
    cluster = spec::load_cluster_spec(vm["cluster"].as<std::string>());
  } catch (const spec::SpecError& error) {
    err << "ringwatch probe: " << error.what() << "\n";
    return kExitUnknown;
  }

  probes::ProbeOptions probe_options;
  if (vm.count("vantage")) {
    probe_options.dns_vantage = vm["vantage"].as<std::string>();
    try {
      probes::dns::vantage_points(cluster, probe_options.dns_vantage);
    } catch (const std::invalid_argument& error) {
      err << "ringwatch probe: " << error.what() << "\n";
      return kExitUnknown;
    }
  }
  probes::ProbeSet probe_set(checks, probe_options);
  report::Status worst = report::Status::ok;
  auto next_start = std::chrono::steady_clock::now();
  for (int round = 0; round < rounds; ++round) {
    if (round > 0) {
      if (*format == report::Format::text) out << "\n";
      std::this_thread::sleep_until(next_start);
    }
    next_start += std::chrono::duration_cast<std::chrono::steady_clock::duration>(
        std::chrono::duration<double>(interval));
    const report::Report result = probe_set.run_round(cluster);
    out << report::render(result, *format, text_options);
    out.flush();
    worst = round == 0 ? result.status() : report::worst(worst, result.status());
  }
  return static_cast<int>(worst);
}

}  // namespace ringwatch::cli
