#pragma once
// Renders a Report for people (text), pipelines (json, schema in README.md)
// and monitoring systems (nagios: a status line with perfdata, then the
// findings as the plugin's long output). Pure functions; thread-safe.

#include <optional>
#include <string>
#include <string_view>

#include "lib/report/report.h"
#include "lib/report/thresholds.h"

namespace ringwatch::report {

enum class Format { text, json, nagios };
// "text" | "json" | "nagios"; nullopt otherwise.
std::optional<Format> parse_format(std::string_view name);

// The text report (render_text.cpp): the summary line, the diagnosis, the
// findings grouped by subject, the checks; every line at most `width`
// columns. By default a finding shows the evidence a person reads (README,
// "Reading the output"), each piece on one line, lists cut with a count;
// `verbose` shows every piece of evidence in full, wrapped, and the figures.
struct TextOptions {
  bool color = false;  // ANSI colours, only when writing to a terminal
  bool verbose = false;
  int width = 80;  // columns; at least 40
};
std::string render_text(const Report& report, const TextOptions& options = {});

// `pretty` for one document a person may read (the daemon's API, a single
// probe round); `compact` puts the whole document on one line, for JSON Lines
// (one report per line, --rounds). Both carry the same schema and content.
enum class JsonLayout { pretty, compact };
std::string render_json(const Report& report, JsonLayout layout = JsonLayout::pretty);

// The Nagios output (render_nagios.cpp):
//   RINGWATCH <STATUS> - <headline> | <perfdata>
//   <one line per finding, most severe first>
// The headline is the most severe diagnosis (the problem with its cause)
// when one carries the round's status, else the report's summary, with any
// threshold breaches. Perfdata: the cluster-level figures, with the
// thresholds' ranges in their warn and crit fields; `all_perfdata` adds the
// per-proxy, per-backend and per-vantage-point figures.
struct NagiosOptions {
  Thresholds thresholds;
  bool all_perfdata = false;
};
std::string render_nagios(const Report& report, const NagiosOptions& options = {});
// The exit status of that output: the report's, raised by threshold breaches.
Status nagios_status(const Report& report, const Thresholds& thresholds);

struct RenderOptions {
  TextOptions text;
  JsonLayout json = JsonLayout::pretty;
  NagiosOptions nagios;
};
std::string render(const Report& report, Format format, const RenderOptions& options = {});

}  // namespace ringwatch::report
