#include "probes/connections/proxy_adapters.h"
#include "lib/spec/json_cursor.h"
#include "lib/util/text.h"
#include "lib/util/time.h"

#include <rapidjson/document.h>

#include <algorithm>
#include <charconv>
#include <map>
#include <set>

namespace ringwatch::probes::connections {

const char* to_string(Freshness freshness) {
  switch (freshness) {
    case Freshness::live:
      return "live";
    case Freshness::confirmed:
      return "confirmed";
    case Freshness::unconfirmed:
      return "unconfirmed";
  }
  return "unconfirmed";
}

const char* to_string(ViewErrorKind kind) {
  switch (kind) {
    case ViewErrorKind::refused:
      return "refused";
    case ViewErrorKind::timeout:
      return "timeout";
    case ViewErrorKind::malformed:
      return "malformed";
    case ViewErrorKind::truncated:
      return "truncated";
    case ViewErrorKind::unsupported:
      return "unsupported";
    case ViewErrorKind::no_endpoint:
      return "no_endpoint";
    case ViewErrorKind::not_checked:
      return "not_checked";
    case ViewErrorKind::no_pool:
      return "no_pool";
  }
  return "malformed";
}

namespace {

ViewError malformed(std::string what) {
  return ViewError{ViewErrorKind::malformed, std::move(what)};
}
ViewError truncated(std::string what) {
  return ViewError{ViewErrorKind::truncated, std::move(what)};
}

// Quotes a piece of peer-supplied text for an error message, bounded.
std::string quoted(std::string_view text) {
  constexpr std::size_t kMax = 60;
  std::string out = "\"";
  for (char c : text.substr(0, kMax)) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte >= 0x7f) {
      out += c == '\r' ? "\\r" : c == '\n' ? "\\n" : "?";
    } else {
      out += c;
    }
  }
  return out + (text.size() > kMax ? "...\"" : "\"");
}

const std::string* find_stat(const StatList& stats, std::string_view key) {
  for (const auto& [name, value] : stats) {
    if (name == key) return &value;
  }
  return nullptr;
}

// "host:port" at the start of a destination key: "10.0.0.1:11211:ascii:plain:notcompressed-1000",
// "[0000:...:0001]:5001:TCP:ascii-1000" or plain "10.0.0.1:11211".
std::optional<net::Endpoint> leading_endpoint(std::string_view text) {
  std::size_t host_end = 0;
  if (text.starts_with('[')) {
    host_end = text.find(']');
    if (host_end == std::string_view::npos) return std::nullopt;
    ++host_end;
  } else {
    host_end = text.find(':');
    if (host_end == std::string_view::npos) return std::nullopt;
  }
  if (host_end >= text.size() || text[host_end] != ':') return std::nullopt;
  std::size_t port_end = host_end + 1;
  while (port_end < text.size() && text[port_end] >= '0' && text[port_end] <= '9') ++port_end;
  auto endpoint = net::Endpoint::parse(text.substr(0, port_end));
  // mcrouter prints v6 fully expanded; keep the usual short form.
  if (endpoint) endpoint->host = net::IpAddress::parse(endpoint->host)->to_string();
  return endpoint;
}

}  // namespace

// ---- memcached text-protocol stats -----------------------------------------

bool stats_reply_complete(std::string_view text) {
  if (text.size() < 2) return false;
  if (text.ends_with("END\r\n")) {
    // END must start a line (a value could end in "END").
    return text.size() == 5 || text[text.size() - 6] == '\n';
  }
  // An error line ends the reply too.
  const std::size_t line_start = text.rfind('\n', text.size() - 2);
  const std::string_view last =
      line_start == std::string_view::npos ? text : text.substr(line_start + 1);
  return last.ends_with("\r\n") && (last == "ERROR\r\n" || last.starts_with("CLIENT_ERROR") ||
                                    last.starts_with("SERVER_ERROR"));
}

Result<StatList, ViewError> parse_stat_lines(std::string_view text) {
  StatList stats;
  std::size_t pos = 0;
  while (pos < text.size()) {
    const std::size_t eol = text.find("\r\n", pos);
    if (eol == std::string_view::npos) {
      return truncated("stats reply ends inside a line: " + quoted(text.substr(pos)));
    }
    const std::string_view line = text.substr(pos, eol - pos);
    pos = eol + 2;
    if (line == "END") {
      if (pos != text.size()) return malformed("data after END: " + quoted(text.substr(pos)));
      return stats;
    }
    if (line == "ERROR" || line.starts_with("CLIENT_ERROR") || line.starts_with("SERVER_ERROR")) {
      return ViewError{ViewErrorKind::unsupported, "the server answered " + quoted(line)};
    }
    if (!line.starts_with("STAT ")) return malformed("not a STAT line: " + quoted(line));
    const std::string_view rest = line.substr(5);
    const std::size_t space = rest.find(' ');
    if (space == 0 || rest.empty()) return malformed("STAT line without a name: " + quoted(line));
    if (space == std::string_view::npos) {
      stats.emplace_back(std::string(rest), std::string());
    } else {
      stats.emplace_back(std::string(rest.substr(0, space)), std::string(rest.substr(space + 1)));
    }
  }
  return truncated(text.empty() ? "empty stats reply" : "stats reply without END");
}

// ---- twemproxy --------------------------------------------------------------

namespace {

constexpr std::size_t kMaxStatsDepth = 8;

// Header members of the stats document; every other object member is a pool.
bool is_header(std::string_view name) {
  static const std::set<std::string_view> kHeader = {
      "service",           "source",          "version", "uptime", "timestamp",
      "total_connections", "curr_connections"};
  return kHeader.contains(name);
}

// An unnamed server is keyed by its host alone when its port is 11211 and by
// "host:port" otherwise (measured, fixture twemproxy_unnamed.json); a named
// one by its name, which carries no address.
std::optional<net::Endpoint> twemproxy_server_address(const std::string& key) {
  constexpr std::uint16_t kDefaultPort = 11211;
  if (const auto address = net::IpAddress::parse(key)) {
    return net::Endpoint{address->to_string(), kDefaultPort};
  }
  return net::Endpoint::parse(key);
}

std::optional<std::int64_t> int_member(const rapidjson::Value& object, const char* name) {
  const auto found = object.FindMember(name);
  if (found == object.MemberEnd() || !found->value.IsInt64()) return std::nullopt;
  return found->value.GetInt64();
}

}  // namespace

namespace {

// A document-level failure of parse_bounded, in the parser's words.
ViewError parse_failure(const spec::json::ParseFailure& failure, std::string_view trimmed) {
  if (failure.kind == spec::json::ParseFailure::Kind::too_deep) {
    return malformed("stats JSON nests deeper than " + std::to_string(kMaxStatsDepth) + " levels");
  }
  // An error at the very end of the input means the document stopped early.
  if (failure.offset >= trimmed.size()) {
    return truncated("stats JSON ends early after " + std::to_string(trimmed.size()) + " bytes");
  }
  return malformed("stats JSON does not parse at byte " + std::to_string(failure.offset) + ": " +
                   failure.message);
}

// One server entry of a pool.
Result<ServerView, ViewError> twemproxy_server(const rapidjson::Value::Member& member,
                                               const std::string& pool) {
  ServerView server;
  server.name = member.name.GetString();
  server.address = twemproxy_server_address(server.name);
  const rapidjson::Value& stats = member.value;
  static constexpr const char* kRequired[] = {"server_eof",        "server_err",
                                              "server_timedout",   "server_connections",
                                              "server_ejected_at", "requests"};
  std::map<std::string, std::int64_t> values;
  for (const char* field : kRequired) {
    const auto value = int_member(stats, field);
    if (!value) {
      return malformed("server " + quoted(server.name) + " in pool " + quoted(pool) +
                       " has no integer \"" + field + "\"");
    }
    if (*value < 0) {
      return malformed("server " + quoted(server.name) + " in pool " + quoted(pool) +
                       " has a negative \"" + field + "\": " + std::to_string(*value));
    }
    values[field] = *value;
  }
  server.connections = values["server_connections"];
  if (values["server_ejected_at"] > 0) {
    server.ejected_at = util::from_unix_microseconds(values["server_ejected_at"]);
    if (!server.ejected_at) {
      return malformed("server " + quoted(server.name) + " has server_ejected_at " +
                       std::to_string(values["server_ejected_at"]) + ", beyond any clock's range");
    }
  }
  // twemproxy never clears server_ejected_at (measured: it keeps the last
  // ejection after the server is back), so an ejection is current only
  // while the proxy holds no connection to the server.
  server.ejected = server.ejected_at.has_value() && *server.connections == 0;
  server.errors = values["server_err"] + values["server_eof"];
  server.timeouts = values["server_timedout"];
  server.requests = values["requests"];
  server.detail = "server_connections=" + std::to_string(values["server_connections"]) +
                  " server_ejected_at=" + std::to_string(values["server_ejected_at"]) +
                  " server_err=" + std::to_string(values["server_err"]) +
                  " server_eof=" + std::to_string(values["server_eof"]) +
                  " server_timedout=" + std::to_string(values["server_timedout"]) +
                  " requests=" + std::to_string(values["requests"]);
  return server;
}

// One pool member of the document, at the document's "timestamp".
ViewResult twemproxy_pool(const rapidjson::Value::Member& pool, std::int64_t timestamp) {
  ProxyView view;
  view.pool = pool.name.GetString();
  view.stats_time = util::from_unix_seconds(timestamp);
  if (!view.stats_time) {
    return malformed("stats JSON \"timestamp\" " + std::to_string(timestamp) +
                     " is beyond any clock's range");
  }
  view.freshness = Freshness::confirmed;
  for (const auto& member : pool.value.GetObject()) {
    if (!member.value.IsObject()) continue;  // a pool counter
    auto server = twemproxy_server(member, view.pool);
    if (!server) return server.error();
    view.servers.push_back(std::move(server).value());
  }
  return view;
}

}  // namespace

Result<TwemproxyStats, ViewError> parse_twemproxy_document(std::string_view json,
                                                           const std::vector<std::string>& pools) {
  std::string_view trimmed = json;
  while (!trimmed.empty() && (trimmed.back() == '\n' || trimmed.back() == ' ' ||
                              trimmed.back() == '\r' || trimmed.back() == '\t')) {
    trimmed.remove_suffix(1);
  }
  if (trimmed.empty()) return truncated("empty stats reply");
  // Iterative and depth-bounded: a peer's million nested arrays must not
  // exhaust the stack (the document nests 3 levels). Its size is bounded by
  // the fetch (net::kDefaultMaxReply); the DOM is freed on return, and only
  // the views of the pools asked for are kept.
  rapidjson::Document document;
  if (const auto failure = spec::json::parse_bounded(document, json, kMaxStatsDepth)) {
    return parse_failure(*failure, trimmed);
  }
  if (!document.IsObject()) return malformed("stats JSON is not an object");
  const auto timestamp = int_member(document, "timestamp");
  if (!timestamp) return malformed("stats JSON has no integer \"timestamp\"");

  std::vector<const rapidjson::Value::Member*> members;
  for (const auto& member : document.GetObject()) {
    const std::string_view name(member.name.GetString(), member.name.GetStringLength());
    if (is_header(name)) continue;
    if (!member.value.IsObject()) {
      return malformed("stats JSON member " + quoted(name) + " is neither a header nor a pool");
    }
    members.push_back(&member);
  }
  if (members.empty()) return malformed("stats JSON has no pool");
  TwemproxyStats stats;
  const std::set<std::string_view> wanted(pools.begin(), pools.end());
  for (const auto* member : members) {
    std::string name(member->name.GetString(), member->name.GetStringLength());
    if (members.size() == 1 || wanted.contains(name)) {
      // A repeated name keeps its last pool, as a lookup by name always did.
      stats.views.insert_or_assign(name, twemproxy_pool(*member, *timestamp));
    }
    stats.pool_names.push_back(std::move(name));
  }
  return stats;
}

ViewResult twemproxy_pool_view(const TwemproxyStats& stats, std::string_view pool_name) {
  if (const auto found = stats.views.find(pool_name); found != stats.views.end()) {
    return found->second;
  }
  if (stats.pool_names.size() == 1) {
    if (const auto only = stats.views.find(stats.pool_names.front()); only != stats.views.end()) {
      return only->second;
    }
  }
  std::string names;
  for (const std::string& name : stats.pool_names) {
    names += (names.empty() ? "" : ", ") + name;
  }
  return ViewError{ViewErrorKind::no_pool,
                   "stats JSON has " + std::to_string(stats.pool_names.size()) + " pools (" +
                       util::printable(names) + ") and none is named \"" +
                       util::printable(pool_name) + "\""};
}

ViewResult parse_twemproxy_stats(std::string_view json, std::string_view pool_name) {
  const auto stats = parse_twemproxy_document(json, {std::string(pool_name)});
  if (!stats) return stats.error();
  return twemproxy_pool_view(stats.value(), pool_name);
}

// ---- mcrouter ---------------------------------------------------------------

namespace {

bool is_error_result(std::string_view result) {
  static const std::set<std::string_view> kErrors = {
      "connect_error", "remote_error", "local_error", "tko",        "busy",
      "try_again",     "shutdown",     "aborted",     "bad_command"};
  return kErrors.contains(result);
}

bool is_timeout_result(std::string_view result) {
  return result == "timeout" || result == "connect_timeout" || result == "deadline_exceeded";
}

// One `stats servers` value, e.g.
// "avg_latency_us:302.000 pending_reqs:0 inflight_reqs:0 hard_tko; up:4; ok:10 connect_error:2"
// (mcrouter's ServerStat::toString) or the older "status:up notfound:1".
Result<ServerView, ViewError> parse_mcrouter_server(const std::string& key,
                                                    const std::string& value) {
  ServerView server;
  server.name = key;
  server.address = leading_endpoint(key);
  server.detail = value;
  std::int64_t up = 0, down = 0;
  bool saw_state = false;
  std::size_t pos = 0;
  while (pos < value.size()) {
    std::size_t end = value.find(' ', pos);
    if (end == std::string::npos) end = value.size();
    std::string_view token(value.data() + pos, end - pos);
    pos = end + 1;
    while (token.ends_with(';')) token.remove_suffix(1);
    if (token.empty()) continue;
    if (token == "hard_tko" || token == "soft_tko") {
      server.ejected = true;
      continue;
    }
    const std::size_t colon = token.rfind(':');
    if (colon == std::string_view::npos || colon == 0) {
      return malformed("server " + quoted(key) + ": unexpected token " + quoted(token));
    }
    const std::string_view name = token.substr(0, colon);
    const std::string_view number = token.substr(colon + 1);
    if (name == "status") {  // older format: status:<state>
      saw_state = true;
      up += number == "up" ? 1 : 0;
      down += number == "down" ? 1 : 0;
      continue;
    }
    if (name == "avg_latency_us" || name.ends_with("retrans_ratio")) continue;  // doubles
    const auto count = util::parse_int(number);
    if (!count || *count < 0) {
      return malformed("server " + quoted(key) + ": bad count in " + quoted(token));
    }
    if (name == "pending_reqs" || name == "inflight_reqs") continue;
    if (name == "up" || name == "new" || name == "down" || name == "closed") {
      saw_state = true;
      if (name == "up") up += *count;
      if (name == "down") down += *count;
      continue;
    }
    // Everything else is a reply result count (mc_res_ prefix removed).
    server.requests += *count;
    if (is_error_result(name)) server.errors += *count;
    if (is_timeout_result(name)) server.timeouts += *count;
  }
  if (!saw_state) return malformed("server " + quoted(key) + " has no connection state");
  server.connections = up;
  server.connect_failing = up == 0 && down > 0;
  return server;
}

}  // namespace

ViewResult parse_mcrouter_stats(const StatList& servers, const StatList& suspect_servers,
                                const StatList& basic) {
  ProxyView view;
  view.freshness = Freshness::live;
  view.keeps_idle_connections = false;  // --reset-inactive-connection-interval, 60 s by default
  if (const std::string* time = find_stat(basic, "time")) {
    const auto seconds = util::parse_int(*time);
    view.stats_time = seconds ? util::from_unix_seconds(*seconds) : std::nullopt;
    if (!view.stats_time) return malformed("mcrouter stats: bad time " + quoted(*time));
  }
  for (const auto& [key, value] : servers) {
    auto server = parse_mcrouter_server(key, value);
    if (!server) return server.error();
    view.servers.push_back(std::move(server).value());
  }
  // suspect_servers: "host:port" -> "status:tko num_failures:N" | "status:down num_failures:N".
  for (const auto& [key, value] : suspect_servers) {
    const auto address = leading_endpoint(key + ":");
    if (!address) return malformed("suspect server " + quoted(key) + " is not host:port");
    const bool tko = value.starts_with("status:tko");
    if (!tko && !value.starts_with("status:down")) {
      return malformed("suspect server " + quoted(key) + ": unexpected " + quoted(value));
    }
    bool matched = false;
    for (ServerView& server : view.servers) {
      if (server.address != address) continue;
      matched = true;
      server.ejected = server.ejected || tko;
      server.detail += " (suspect: " + value + ")";
    }
    if (!matched) {
      // A destination in TKO tracking is a configured server.
      ServerView server;
      server.name = key;
      server.address = address;
      server.ejected = tko;
      server.detail = "suspect: " + value;
      view.servers.push_back(std::move(server));
    }
  }
  return view;
}

// ---- memcached proxy --------------------------------------------------------

namespace {

// A backend `stats proxybe` lists as bad: the proxy keeps routing its keys to
// it and answers SERVER_ERROR for them (measured on memcached 1.6.38), so it
// is connect_failing, never ejected. `threads`: the proxy's worker threads,
// each of which has its own connection and marks it bad on its own.
ServerView marked_bad(ServerView server, const std::string& label, std::int64_t bad,
                      const std::string* threads) {
  server.connect_failing = true;
  server.failing_state = "marked bad by " + std::to_string(bad) +
                         (threads ? " of " + *threads : std::string()) + " worker " +
                         (bad == 1 && !threads ? "thread" : "threads");
  server.detail = "bad_" + label + " " + std::to_string(bad) + " (" + server.failing_state + ")";
  return server;
}

}  // namespace

ViewResult parse_memcached_proxy_stats(const StatList& basic, const StatList& proxybe,
                                       const spec::ClusterSpec& cluster) {
  ProxyView view;
  view.freshness = Freshness::live;
  view.lists_servers = false;
  view.keeps_idle_connections = false;  // no connection counts to judge
  if (find_stat(basic, "proxy_backend_total") == nullptr) {
    return ViewError{ViewErrorKind::unsupported,
                     "memcached stats have no proxy_backend_total: not running as a proxy"};
  }
  if (const std::string* time = find_stat(basic, "time")) {
    const auto seconds = util::parse_int(*time);
    view.stats_time = seconds ? util::from_unix_seconds(*seconds) : std::nullopt;
    if (!view.stats_time) return malformed("memcached stats: bad time " + quoted(*time));
  }
  const std::string* threads = find_stat(basic, "threads");
  if (threads && !util::parse_int(*threads)) {
    return malformed("memcached stats: bad threads " + quoted(*threads));
  }
  std::map<std::string, std::int64_t> bad;  // label -> worker threads that see it bad
  for (const auto& [key, value] : proxybe) {
    if (!key.starts_with("bad_") || key.size() == 4) {
      return malformed("stats proxybe: unexpected " + quoted(key));
    }
    const auto count = util::parse_int(value);
    if (!count || *count < 1) return malformed("stats proxybe: bad count " + quoted(value));
    bad[key.substr(4)] = *count;
  }
  // The proxy does not list its backends: the spec's, by label (the lab's
  // and routelib's "host:port name" form) or by routelib's default label
  // "host:port".
  for (const spec::Backend& backend : cluster.backends) {
    ServerView server;
    server.name = backend.name;
    server.address = backend.endpoint();
    server.detail = "not marked bad";
    for (const std::string& label : {backend.name, backend.endpoint().to_string()}) {
      const auto found = bad.find(label);
      if (found == bad.end()) continue;
      server = marked_bad(std::move(server), label, found->second, threads);
      bad.erase(found);
      break;
    }
    view.servers.push_back(std::move(server));
  }
  // Labels the spec does not know: backends the proxy has that we do not expect.
  for (const auto& [label, count] : bad) {
    ServerView server;
    server.name = label;
    server.address = leading_endpoint(label);
    view.servers.push_back(marked_bad(std::move(server), label, count, threads));
  }
  return view;
}

}  // namespace ringwatch::probes::connections
