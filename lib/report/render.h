#pragma once
// Renders a Report for people (text), pipelines (json, schema in README.md)
// and monitoring systems (nagios: one status line with perfdata).

#include <optional>
#include <string>
#include <string_view>

#include "lib/report/report.h"

namespace ringwatch::report {

enum class Format { text, json, nagios };
// "text" | "json" | "nagios"; nullopt otherwise.
std::optional<Format> parse_format(std::string_view name);

struct TextOptions {
  bool color = false;  // ANSI colours, only when writing to a terminal
};

std::string render_text(const Report& report, const TextOptions& options = {});
std::string render_json(const Report& report);
std::string render_nagios(const Report& report);
std::string render(const Report& report, Format format, const TextOptions& options = {});

}  // namespace ringwatch::report
