// The soak's pure half: ringwatchd's round log lines in, classified rounds and
// the report out (tools/soak/soak.h).

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <sstream>

#include "lib/util/time.h"
#include "tools/soak/soak.h"

namespace ringwatch::soak {
namespace {

// The fields of one `key=value key="quoted \"value\""` log line (daemon/log.cpp).
std::map<std::string, std::string, std::less<>> log_fields(std::string_view line) {
  std::map<std::string, std::string, std::less<>> fields;
  std::size_t at = 0;
  while (at < line.size()) {
    while (at < line.size() && line[at] == ' ') ++at;
    const auto equals = line.find('=', at);
    if (equals == std::string_view::npos) break;
    std::string key(line.substr(at, equals - at));
    std::string value;
    at = equals + 1;
    if (at < line.size() && line[at] == '"') {
      for (++at; at < line.size() && line[at] != '"'; ++at) {
        if (line[at] == '\\' && at + 1 < line.size()) {
          ++at;
          value += line[at] == 'n' ? '\n' : line[at];
        } else {
          value += line[at];
        }
      }
      ++at;  // the closing quote
    } else {
      const auto space = std::min(line.find(' ', at), line.size());
      value = line.substr(at, space - at);
      at = space;
    }
    fields.emplace(std::move(key), std::move(value));
  }
  return fields;
}

// "2026-11-24T11:26:42.292Z" (util::format_rfc3339_ms) to a time point.
std::optional<SystemTime> parse_time_ms(const std::string& text) {
  std::tm tm{};
  int millis = 0;
  char zone = 0;
  if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d.%3d%c", &tm.tm_year, &tm.tm_mon,
                  &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &millis, &zone) != 8 ||
      zone != 'Z')
    return std::nullopt;
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  const time_t seconds = ::timegm(&tm);
  if (seconds == static_cast<time_t>(-1)) return std::nullopt;
  return std::chrono::system_clock::from_time_t(seconds) + std::chrono::milliseconds(millis);
}

std::vector<std::string> split_codes(const std::string& text) {
  std::vector<std::string> codes;
  std::istringstream in(text);
  for (std::string code; std::getline(in, code, ',');)
    if (!code.empty() && code != "-") codes.push_back(code);
  return codes;
}

bool overlaps(const Round& round, const ChurnEvent& event, std::chrono::milliseconds settle) {
  return round.started <= event.end + settle && round.finished >= event.begin;
}

std::string time_of_day(SystemTime when) {
  const std::string full = util::format_rfc3339_ms(when);  // 2026-...T11:26:42.292Z
  return full.substr(11, 12);
}

std::string seconds(std::chrono::milliseconds ms) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%g", static_cast<double>(ms.count()) / 1000.0);
  return buffer;
}

std::string describe(const ChurnEvent& event) {
  std::string text = to_string(event.kind);
  if (!event.target.empty()) text += " " + event.target;
  text += " (" + time_of_day(event.begin) + "-" + time_of_day(event.end) + ")";
  if (!event.error.empty()) text += " [lab error: " + event.error + "]";
  return text;
}

constexpr const char* kStatuses[] = {"OK", "WARNING", "CRITICAL", "UNKNOWN"};

}  // namespace

const char* to_string(ChurnKind kind) {
  switch (kind) {
    case ChurnKind::backend_restart:
      return "backend-restart";
    case ChurnKind::proxy_roll:
      return "proxy-roll";
    case ChurnKind::dns_flap:
      return "dns-flap";
  }
  return "?";
}

std::optional<ChurnKind> parse_churn_kind(std::string_view name) {
  for (auto kind : {ChurnKind::backend_restart, ChurnKind::proxy_roll, ChurnKind::dns_flap})
    if (name == to_string(kind)) return kind;
  return std::nullopt;
}

std::optional<Round> parse_round_line(std::string_view line) {
  if (line.find(" event=round ") == std::string_view::npos) return std::nullopt;
  auto fields = log_fields(line);
  const auto ts = fields.find("ts"), status = fields.find("status");
  if (ts == fields.end() || status == fields.end()) return std::nullopt;
  auto finished = parse_time_ms(ts->second);
  if (!finished) return std::nullopt;
  Round round;
  round.finished = *finished;
  round.status = status->second;
  // Older daemons do not log `started`: take the finish time less the duration.
  const auto started = fields.find("started");
  std::optional<SystemTime> start =
      started == fields.end() ? std::nullopt : parse_time_ms(started->second);
  if (!start) {
    const auto duration = fields.find("duration_ms");
    const double ms = duration == fields.end() ? 0.0 : std::atof(duration->second.c_str());
    start = *finished - std::chrono::milliseconds(static_cast<std::int64_t>(ms));
  }
  round.started = *start;
  if (const auto codes = fields.find("codes"); codes != fields.end())
    round.codes = split_codes(codes->second);
  if (const auto summary = fields.find("summary"); summary != fields.end())
    round.summary = summary->second;
  return round;
}

std::vector<Round> parse_rounds(std::string_view log, std::uint64_t* skipped) {
  std::vector<Round> rounds;
  std::uint64_t skips = 0;
  std::size_t at = 0;
  while (at < log.size()) {
    const auto end = std::min(log.find('\n', at), log.size());
    const auto line = log.substr(at, end - at);
    if (auto round = parse_round_line(line)) rounds.push_back(std::move(*round));
    if (line.find(" event=round_skipped ") != std::string_view::npos) ++skips;
    at = end + 1;
  }
  if (skipped) *skipped = skips;
  return rounds;
}

void classify(std::vector<Round>& rounds, const std::vector<ChurnEvent>& events,
              std::chrono::milliseconds settle) {
  for (auto& round : rounds) {
    round.explained_by.reset();
    if (round.status == "OK") continue;
    for (std::size_t i = 0; i < events.size(); ++i) {
      if (!overlaps(round, events[i], settle)) continue;
      round.explained_by = i;
      break;
    }
  }
}

std::size_t SoakReport::count(std::string_view status) const {
  return static_cast<std::size_t>(std::count_if(
      rounds.begin(), rounds.end(), [&](const Round& round) { return round.status == status; }));
}

std::size_t SoakReport::explained() const {
  return static_cast<std::size_t>(std::count_if(
      rounds.begin(), rounds.end(),
      [](const Round& round) { return round.status != "OK" && round.explained_by.has_value(); }));
}

std::size_t SoakReport::unexplained() const {
  return static_cast<std::size_t>(std::count_if(
      rounds.begin(), rounds.end(),
      [](const Round& round) { return round.status != "OK" && !round.explained_by.has_value(); }));
}

int SoakReport::exit_code() const {
  return rounds.empty() || unexplained() > 0 || !daemon_error.empty() || interrupted ? 2 : 0;
}

std::string render_text(const SoakReport& report) {
  std::ostringstream out;
  out << "soak: " << seconds(report.duration) << " s on lab '" << report.lab << "' ("
      << report.proxies << " " << report.proxy_kind << " proxies, " << report.backends
      << " backends), ringwatchd every " << seconds(report.interval) << " s, seed " << report.seed
      << "\n";
  std::map<std::string, int> kinds;
  for (const auto& event : report.events) ++kinds[to_string(event.kind)];
  out << "churn: " << report.events.size() << " events";
  std::string separator = " (";
  for (const auto& [kind, n] : kinds) {
    out << separator << kind << " " << n;
    separator = ", ";
  }
  out << (kinds.empty() ? "" : ")") << ", about every " << seconds(report.churn_every)
      << " s, settle " << seconds(report.settle) << " s\n";
  out << "rounds: " << report.rounds.size();
  for (const char* status : kStatuses) out << ", " << status << " " << report.count(status);
  out << "; skipped ticks " << report.skipped << "\n";
  out << "not OK: " << report.explained() << " explained by churn, " << report.unexplained()
      << " unexplained\n";
  for (const auto& round : report.rounds) {
    if (round.status == "OK") continue;
    std::string codes;
    for (const auto& code : round.codes) codes += (codes.empty() ? "" : ",") + code;
    out << "  " << time_of_day(round.started) << "-" << time_of_day(round.finished) << "  "
        << round.status << " [" << (codes.empty() ? "-" : codes) << "]  "
        << (round.explained_by ? "explained by " + describe(report.events[*round.explained_by])
                               : std::string("UNEXPLAINED"))
        << "\n    " << round.summary << "\n";
  }
  if (!report.daemon_error.empty()) out << "ringwatchd: " << report.daemon_error << "\n";
  if (report.interrupted) out << "interrupted: the run ended early (SIGINT or SIGTERM)\n";
  if (report.exit_code() == 0) {
    out << "verdict: every non-OK round is explained by churn\n";
  } else if (report.rounds.empty()) {
    out << "verdict: FAILED: no round was logged\n";
  } else {
    out << "verdict: FAILED: " << report.unexplained() << " unexplained non-OK rounds"
        << (report.daemon_error.empty() ? "" : ", ringwatchd died")
        << (report.interrupted ? ", interrupted" : "") << "\n";
  }
  return out.str();
}

std::string render_json(const SoakReport& report) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
  auto seconds_of = [](std::chrono::milliseconds ms) {
    return static_cast<double>(ms.count()) / 1000.0;
  };
  w.StartObject();
  w.Key("schema");
  w.String("ringwatch.soak/v1");
  w.Key("lab");
  w.StartObject();
  w.Key("name");
  w.String(report.lab);
  w.Key("proxy_kind");
  w.String(report.proxy_kind);
  w.Key("proxies");
  w.Int(report.proxies);
  w.Key("backends");
  w.Int(report.backends);
  w.EndObject();
  w.Key("duration_seconds");
  w.Double(seconds_of(report.duration));
  w.Key("interval_seconds");
  w.Double(seconds_of(report.interval));
  w.Key("churn_every_seconds");
  w.Double(seconds_of(report.churn_every));
  w.Key("settle_seconds");
  w.Double(seconds_of(report.settle));
  w.Key("seed");
  w.Uint64(report.seed);
  w.Key("events");
  w.StartArray();
  for (const auto& event : report.events) {
    w.StartObject();
    w.Key("kind");
    w.String(to_string(event.kind));
    w.Key("target");
    w.String(event.target);
    w.Key("begin");
    w.String(util::format_rfc3339_ms(event.begin));
    w.Key("end");
    w.String(util::format_rfc3339_ms(event.end));
    w.Key("error");
    if (event.error.empty()) {
      w.Null();
    } else {
      w.String(event.error);
    }
    w.EndObject();
  }
  w.EndArray();
  w.Key("rounds");
  w.StartObject();
  w.Key("total");
  w.Uint64(report.rounds.size());
  for (const char* status : kStatuses) {
    w.Key(status);
    w.Uint64(report.count(status));
  }
  w.Key("skipped_ticks");
  w.Uint64(report.skipped);
  w.Key("explained");
  w.Uint64(report.explained());
  w.Key("unexplained");
  w.Uint64(report.unexplained());
  w.EndObject();
  w.Key("not_ok");
  w.StartArray();
  for (const auto& round : report.rounds) {
    if (round.status == "OK") continue;
    w.StartObject();
    w.Key("started");
    w.String(util::format_rfc3339_ms(round.started));
    w.Key("finished");
    w.String(util::format_rfc3339_ms(round.finished));
    w.Key("status");
    w.String(round.status);
    w.Key("codes");
    w.StartArray();
    for (const auto& code : round.codes) w.String(code);
    w.EndArray();
    w.Key("summary");
    w.String(round.summary);
    w.Key("explained_by");
    if (round.explained_by) {
      w.Uint64(*round.explained_by);
    } else {
      w.Null();
    }
    w.EndObject();
  }
  w.EndArray();
  w.Key("daemon_error");
  if (report.daemon_error.empty()) {
    w.Null();
  } else {
    w.String(report.daemon_error);
  }
  w.Key("interrupted");
  w.Bool(report.interrupted);
  w.Key("exit_code");
  w.Int(report.exit_code());
  w.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize()) + "\n";
}

}  // namespace ringwatch::soak
