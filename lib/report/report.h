#pragma once
// The report: plain data that every probe produces and that the CLI, the
// daemon and the migration engine print, serve or act on. Nothing in here
// does I/O. Rendering lives in render.h.

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace ringwatch::report {

// Monitoring-plugin order: the numeric value is the exit code.
enum class Status { ok = 0, warning = 1, critical = 2, unknown = 3 };
const char* to_string(Status status);  // "OK", "WARNING", "CRITICAL", "UNKNOWN"
// Worse-of, where CRITICAL outranks UNKNOWN (a decided fault is more urgent
// than an undecided check) and UNKNOWN outranks WARNING.
Status worst(Status a, Status b);
// That order as a number, higher is more urgent: OK 0, WARNING 1, UNKNOWN 2,
// CRITICAL 3. For sorting (most urgent first).
int urgency(Status status);

enum class Severity { info, warning, critical, unknown };
const char* to_string(Severity severity);  // "info", "warning", "critical", "unknown"
Status status_of(Severity severity);       // info -> OK
inline int urgency(Severity severity) {
  return urgency(status_of(severity));
}

// What a finding is about. Empty fields do not apply.
struct Subject {
  std::string proxy{};
  std::string backend{};
  std::string node{};     // a DNS name
  std::string vantage{};  // a DNS vantage point
  bool empty() const { return proxy.empty() && backend.empty() && node.empty() && vantage.empty(); }
  std::string describe() const;  // "proxy p2, backend b3"
  friend bool operator==(const Subject&, const Subject&) = default;
};

// Evidence values: enough structure for JSON consumers, simple for people.
using EvidenceValue = std::variant<std::int64_t, double, std::string, std::vector<std::string>>;

struct Finding {
  std::string check;  // "canary", "connections", "dns"
  std::string code;   // stable machine name, e.g. "ring_divergence"
  Severity severity = Severity::info;
  Subject subject;
  std::string summary;  // one line a person can act on
  std::vector<std::pair<std::string, EvidenceValue>> evidence;

  // Adds one piece of evidence. Out of line: inlined into long chains of
  // with() calls, GCC 12 warns that a moved std::variant may be uninitialized.
  Finding& with(std::string key, EvidenceValue value);
};

struct CheckResult {
  std::string name;  // "canary"
  Status status = Status::ok;
  std::string summary;  // the check's headline, e.g. "ring divergence: p2 is missing b3"
  double duration_ms = 0;
};

// A diagnosis ties findings that share a subject into one statement.
struct Diagnosis {
  Severity severity = Severity::info;
  Subject subject;
  std::string summary;
  std::vector<std::size_t> finding_indexes;  // into Report::findings
};

// One (proxy, backend) link as the round saw it from each side, for views
// that draw the proxies x backends matrix (ringwatchd's status page). A side
// is "" when its check did not run.
struct LinkView {
  std::string proxy;
  std::string backend;
  std::string canary;  // "routed", "not_routed", "unknown"
  std::string
      proxy_side;  // the proxy's stats: "connected", "ejected", "missing", "idle", "unknown"
  std::string backend_side;  // the backend's peers: "connected", "missing", "unknown"
  // "ok", "ejected" (the proxy ejected it), "missing" (a side says the link is
  // not there), "idle" (no traffic yet), "unknown" (nothing decided)
  std::string state;
};

// One backend's name as resolved at one vantage point.
struct DnsAnswerView {
  std::string backend;
  std::string node;     // the name
  std::string vantage;  // the vantage point
  std::vector<std::string> addresses;
  // "expected" (every address inside the range), "outside", "no_answer", "undecided"
  std::string verdict;
};

struct Report {
  std::string cluster;
  std::chrono::system_clock::time_point started_at{};
  double duration_ms = 0;
  std::vector<CheckResult> checks;
  std::vector<Finding> findings;
  std::vector<Diagnosis> diagnoses;
  // Named figures of the round ("keys", "reads", "consistency_ratio",
  // "write_ms", ...); names are documented in README.md.
  std::map<std::string, double> figures;
  // What the round saw per link and per name (additions to the JSON schema;
  // empty when the checks that see them did not run).
  std::vector<LinkView> links;
  std::vector<DnsAnswerView> dns_answers;

  // Worst check status; UNKNOWN when no check ran.
  Status status() const;
  // The headline: the worst check's summary, prefixed by its status.
  std::string summary_line() const;
  void add(Finding finding) { findings.push_back(std::move(finding)); }
};

// A figure or evidence number as every renderer prints it: integers without a
// fraction ("1152"), others with three decimals ("0.993").
std::string format_figure(double value);

}  // namespace ringwatch::report
