#include "probes/dns/dns_probe.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>

#include "lib/util/text.h"
#include "lib/util/worker_pool.h"
#include "probes/check_findings.h"

namespace ringwatch::probes::dns {

namespace codes = report::codes;
namespace figures = report::figures;

namespace {

namespace rdns = ringwatch::dns;
using Clock = std::chrono::steady_clock;
using rdns::Lookup;
using rdns::Outcome;
using report::Finding;
using report::Severity;

// Vantage points asked at once; more than this cost another deadline each.
constexpr std::size_t kMaxParallelVantages = 16;

// How a lookup bears on the invariant.
enum class Verdict {
  answered,   // at least one address (A or AAAA)
  no_answer,  // the server replied and there is no address: NXDOMAIN, SERVFAIL,
              // REFUSED on a type, or NOERROR-empty on both
  undecided,  // no address and no decisive reply (timeout, unreachable)
};

Verdict verdict_of(const Lookup& lookup) {
  if (!lookup.a.answers.empty() || !lookup.aaaa.answers.empty()) return Verdict::answered;
  auto negative = [](const rdns::TypeResult& r) {
    return rdns::is_reply(r.outcome) && r.outcome != Outcome::noerror;
  };
  if (negative(lookup.a) || negative(lookup.aaaa)) return Verdict::no_answer;
  if (rdns::is_reply(lookup.a.outcome) && rdns::is_reply(lookup.aaaa.outcome)) {
    return Verdict::no_answer;
  }
  return Verdict::undecided;
}

bool fully_replied(const Lookup& lookup) {
  return rdns::is_reply(lookup.a.outcome) && rdns::is_reply(lookup.aaaa.outcome);
}

// Left undecided by the transport (timeout, unreachable) rather than by a reply.
bool transport_failed(const Lookup& lookup) {
  return verdict_of(lookup) != Verdict::no_answer && !fully_replied(lookup);
}

// "NXDOMAIN" when both types agree, else "A NOERROR (no records), AAAA SERVFAIL".
std::string rcode_text(const Lookup& lookup) {
  if (lookup.a.outcome == lookup.aaaa.outcome) {
    return lookup.a.outcome == Outcome::noerror ? "NOERROR with no A or AAAA records"
                                                : rdns::to_string(lookup.a.outcome);
  }
  auto one = [](const char* type, const rdns::TypeResult& r) {
    std::string text = std::string(type) + " " + rdns::to_string(r.outcome);
    if (r.outcome == Outcome::noerror && r.answers.empty()) text += " (no records)";
    return text;
  };
  return one("A", lookup.a) + ", " + one("AAAA", lookup.aaaa);
}

// "127.10.0.13 (A, TTL 1 s)" for every answer.
std::vector<std::string> answer_list(const Lookup& lookup) {
  std::vector<std::string> list;
  for (const auto& [type, result] : {std::pair{"A", &lookup.a}, std::pair{"AAAA", &lookup.aaaa}}) {
    for (const rdns::Answer& answer : result->answers) {
      list.push_back(answer.address.to_string() + " (" + type + ", TTL " +
                     std::to_string(answer.ttl_s) + " s)");
    }
  }
  return list;
}

// The answer set, compared across vantage points: the sorted addresses, or
// the reply when there are none. TTLs differ between caches and don't count.
std::string view_of(const Lookup& lookup) {
  std::set<std::string> addresses;
  for (const rdns::Answer& answer : lookup.answers()) addresses.insert(answer.address.to_string());
  if (addresses.empty()) return rcode_text(lookup);
  return util::join_and(std::vector<std::string>(addresses.begin(), addresses.end()));
}

// "b1.lab.ringwatch.test: A and AAAA timeout", "...: AAAA connection refused"
std::string type_failures(const Lookup& lookup) {
  const bool a_failed = !rdns::is_reply(lookup.a.outcome);
  const bool aaaa_failed = !rdns::is_reply(lookup.aaaa.outcome);
  std::string text = lookup.name + ": ";
  if (a_failed && aaaa_failed && lookup.a.outcome == lookup.aaaa.outcome) {
    return text + "A and AAAA " + rdns::to_string(lookup.a.outcome);
  }
  if (a_failed) text += std::string("A ") + rdns::to_string(lookup.a.outcome);
  if (a_failed && aaaa_failed) text += ", ";
  if (aaaa_failed) text += std::string("AAAA ") + rdns::to_string(lookup.aaaa.outcome);
  return text;
}

// Why a vantage point is unreachable, for a summary that already names it.
std::string short_reason(const rdns::TypeResult& result) {
  if (result.outcome == Outcome::connection_refused) {
    return "connection refused, nothing listens there";
  }
  return result.message.empty() ? rdns::to_string(result.outcome) : result.message;
}

// "lab-dns (127.10.0.53:5353)", "system (system resolver 10.0.0.2:53)".
std::string where(const spec::DnsServer& vantage, const std::string& server) {
  return vantage.name + " (" + server + ")";
}

std::vector<std::string> proxies_resolving_at(const spec::ClusterSpec& spec,
                                              const std::string& vantage) {
  std::vector<std::string> names;
  for (const spec::Proxy& proxy : spec.proxies) {
    if (proxy.dns_vantage == vantage) names.push_back(proxy.name);
  }
  return names;
}

// A backend the audit checks has a DNS name and its range (the spec requires
// the range with the name); the others are not applicable.
bool has_name(const spec::Backend& backend) {
  return backend.dns_name.has_value() && backend.expected_cidr.has_value();
}
const std::string& name_of(const spec::Backend& audited) {
  return *audited.dns_name;
}
const net::Cidr& range_of(const spec::Backend& audited) {
  return *audited.expected_cidr;
}

// The backends with a DNS name (`audited`, in backend order) and their
// distinct names; backends sharing a name share a lookup (`lookup_of[i]`
// indexes `names` for `audited[i]`).
struct Names {
  std::vector<const spec::Backend*> audited;
  std::vector<std::string> names;
  std::vector<std::size_t> lookup_of;
  std::vector<std::string> without_name;  // backends the check does not apply to
};

Names distinct_names(const spec::ClusterSpec& spec) {
  Names result;
  for (const spec::Backend& backend : spec.backends) {
    if (!has_name(backend)) {
      result.without_name.push_back(backend.name);
      continue;
    }
    result.audited.push_back(&backend);
    const auto found = std::find(result.names.begin(), result.names.end(), name_of(backend));
    result.lookup_of.push_back(static_cast<std::size_t>(found - result.names.begin()));
    if (found == result.names.end()) result.names.push_back(name_of(backend));
  }
  return result;
}

// A backend's answers against its range: outside it, or inside it but not
// the backend's own address.
struct AnswerSplit {
  std::vector<std::string> outside, inside_other;
};

AnswerSplit split_answers(const Lookup& lookup, const spec::Backend& backend) {
  AnswerSplit split;
  for (const rdns::Answer& answer : lookup.answers()) {
    if (!range_of(backend).contains(answer.address)) {
      split.outside.push_back(answer.address.to_string());
    } else if (!(answer.address == backend.address)) {
      split.inside_other.push_back(answer.address.to_string());
    }
  }
  return split;
}

// Turns one round's lookups into findings and figures, one method per kind of
// finding; the methods run in the order of urgency the findings are listed in.
class DnsAudit {
 public:
  DnsAudit(const spec::ClusterSpec& cluster, const std::vector<spec::DnsServer>& vantage_points,
           const Names& backend_names, const std::vector<std::vector<Lookup>>& round_lookups,
           CheckFindings& check_findings, DnsRound& round_facts)
      : spec(cluster),
        vantages(vantage_points),
        names(backend_names),
        lookups(round_lookups),
        out(check_findings),
        facts(round_facts) {}

  void outside_range() {
    for_each_lookup(
        [&](const spec::DnsServer& vantage, const spec::Backend& backend, const Lookup& lookup) {
          if (verdict_of(lookup) != Verdict::answered) return;
          const std::vector<std::string> outside = split_answers(lookup, backend).outside;
          if (outside.empty()) return;
          Finding& f = add(codes::kDnsOutsideRange, Severity::critical, vantage, backend,
                           whose(backend) + " resolves to " + util::join_and(outside) + " at " +
                               vantage.name + ", outside " + range_of(backend).to_string());
          common_evidence(f, vantage, backend, lookup);
          f.with("outside_answers", outside);
          facts.outside.push_back({backend.name, vantage.name, outside,
                                   range_of(backend).to_string(), out.last_index()});
        });
  }

  void no_answer() {
    for_each_lookup([&](const spec::DnsServer& vantage, const spec::Backend& backend,
                        const Lookup& lookup) {
      if (verdict_of(lookup) != Verdict::no_answer) return;
      Finding& f =
          add(codes::kDnsNoAnswer, Severity::critical, vantage, backend,
              whose(backend) + " does not resolve at " + vantage.name + ": " + rcode_text(lookup));
      common_evidence(f, vantage, backend, lookup);
    });
  }

  // Vantage points that see different answer sets for one name. Only lookups
  // where the server replied to both types take part.
  void disagreement() {
    if (vantages.size() < 2) return;
    for (std::size_t i = 0; i < names.audited.size(); ++i) {
      const spec::Backend& backend = *names.audited[i];
      std::vector<std::pair<std::string, std::vector<std::string>>> groups;  // view -> vantages
      for (std::size_t v = 0; v < vantages.size(); ++v) {
        const Lookup& lookup = lookups[v][names.lookup_of[i]];
        if (!fully_replied(lookup)) continue;
        const std::string view = view_of(lookup);
        auto group = std::find_if(groups.begin(), groups.end(),
                                  [&](const auto& g) { return g.first == view; });
        if (group == groups.end()) group = groups.insert(groups.end(), {view, {}});
        group->second.push_back(vantages[v].name);
      }
      if (groups.size() < 2) continue;
      std::vector<std::string> parts, detail;
      for (const auto& [view, where_seen] : groups) {
        parts.push_back(util::join_and(where_seen) +
                        (where_seen.size() == 1 ? " answers " : " answer ") + view);
        for (const std::string& vantage : where_seen) detail.push_back(vantage + ": " + view);
      }
      out.add(codes::kDnsDisagreement, Severity::critical,
              {.backend = backend.name, .node = name_of(backend)},
              "vantage points disagree on " + whose(backend) + ": " + util::join(parts, "; "))
          .with("answers_by_vantage", detail)
          .with("expected_cidr", range_of(backend).to_string())
          .with("configured_address", backend.address.to_string());
    }
  }

  // Transport failures: one finding per vantage point, not one per name.
  void transport_failures() {
    for (std::size_t v = 0; v < vantages.size(); ++v) {
      std::vector<std::string> failed;
      const rdns::TypeResult* first_failure = nullptr;
      bool any_timeout = false;
      for (const Lookup& lookup : lookups[v]) {
        if (!transport_failed(lookup)) continue;
        failed.push_back(type_failures(lookup));
        for (const rdns::TypeResult* r : {&lookup.a, &lookup.aaaa}) {
          if (rdns::is_reply(r->outcome)) continue;
          any_timeout |= r->outcome == Outcome::timeout;
          if (first_failure == nullptr) first_failure = r;
        }
      }
      if (!failed.empty())
        vantage_undecided(vantages[v], lookups[v], failed, *first_failure, any_timeout);
    }
  }

  void unexpected_addresses() {
    for_each_lookup([&](const spec::DnsServer& vantage, const spec::Backend& backend,
                        const Lookup& lookup) {
      if (verdict_of(lookup) != Verdict::answered) return;
      for (const std::string& address : split_answers(lookup, backend).inside_other) {
        std::string summary = whose(backend) + " resolves to " + address + " at " + vantage.name +
                              ", inside " + range_of(backend).to_string() + " but not " +
                              backend.name + "'s address " + backend.address.to_string();
        std::string owner;
        for (const spec::Backend& other : spec.backends) {
          if (other.address.to_string() == address) owner = other.name;
        }
        if (!owner.empty()) summary += " (it is " + owner + "'s address)";
        Finding& f =
            add(codes::kDnsUnexpectedAddress, Severity::warning, vantage, backend, summary);
        common_evidence(f, vantage, backend, lookup);
        f.with("unexpected_answer", address);
        if (!owner.empty()) f.with("answer_belongs_to", owner);
      }
    });
  }

  // Every lookup's addresses and verdict, for views of the round.
  void answers() {
    for_each_lookup(
        [&](const spec::DnsServer& vantage, const spec::Backend& backend, const Lookup& lookup) {
          DnsRound::Answer answer{
              backend.name, backend.dns_name.value_or(""), vantage.name, {}, "expected"};
          for (const rdns::Answer& a : lookup.answers()) {
            answer.addresses.push_back(a.address.to_string());
          }
          switch (verdict_of(lookup)) {
            case Verdict::no_answer:
              answer.verdict = "no_answer";
              break;
            case Verdict::undecided:
              answer.verdict = "undecided";
              break;
            case Verdict::answered:
              if (!split_answers(lookup, backend).outside.empty()) answer.verdict = "outside";
              break;
          }
          facts.answers.push_back(std::move(answer));
        });
  }

  // dns_answer_expected per backend and vantage point, and the round's counts.
  void figures(std::map<std::string, double>& fig) const {
    std::size_t answers_outside = 0, undecided = 0;
    for (const auto& at_vantage : lookups) {
      undecided += static_cast<std::size_t>(
          std::count_if(at_vantage.begin(), at_vantage.end(), transport_failed));
    }
    for_each_lookup(
        [&](const spec::DnsServer& vantage, const spec::Backend& backend, const Lookup& lookup) {
          const std::string key = figures::dns_answer_expected(backend.name, vantage.name);
          switch (verdict_of(lookup)) {
            case Verdict::no_answer:
              fig[key] = 0;
              break;
            case Verdict::undecided:
              break;  // no figure: not 0, nothing is known
            case Verdict::answered: {
              const std::size_t outside = split_answers(lookup, backend).outside.size();
              answers_outside += outside;
              if (outside > 0) {
                fig[key] = 0;
              } else if (fully_replied(lookup)) {
                fig[key] = 1;
              }  // else none: the unanswered type may still hold an outside answer
              break;
            }
          }
        });
    fig[figures::kDnsNames] = static_cast<double>(names.names.size());
    fig[figures::kDnsVantagePoints] = static_cast<double>(vantages.size());
    fig[figures::kDnsLookups] = static_cast<double>(names.names.size() * vantages.size());
    fig[figures::kDnsLookupsUndecided] = static_cast<double>(undecided);
    fig[figures::kDnsAnswersOutside] = static_cast<double>(answers_outside);
  }

  // Backends the check does not apply to: no DNS name, or no vantage point to
  // ask. Information, not a fault: the status stays what the names decide.
  void not_applicable() {
    const std::vector<std::string>& unnamed = names.without_name;
    if (!unnamed.empty()) {
      const bool one = unnamed.size() == 1;
      out.add(codes::kDnsNotApplicable, Severity::info,
              {.backend = one ? unnamed.front() : std::string()},
              util::join_and(unnamed) + (one ? " has" : " have") +
                  " no dns_name: the DNS check does not apply to " + (one ? "it" : "them"))
          .with("backends", unnamed);
    }
    if (vantages.empty() && !names.audited.empty()) {
      std::vector<std::string> named;
      for (const spec::Backend* backend : names.audited) named.push_back(backend->name);
      out.add(codes::kDnsNotApplicable, Severity::info, {},
              "the spec lists no dns servers, so no name is checked (add dns.servers, e.g. "
              "{\"name\": \"system\", \"system\": true} for this host's resolver)")
          .with("backends", named);
    }
  }

  // The most urgent finding's summary, or what was checked (or why nothing was).
  std::string summary(const std::optional<std::string>& only_vantage) const {
    const report::Status status = out.worst();
    for (const Finding& f : out.findings()) {
      if (status != report::Status::ok && report::status_of(f.severity) == status) {
        return f.summary;
      }
    }
    if (names.audited.empty()) return "not applicable: no backend has a dns_name";
    if (vantages.empty()) return "not applicable: the spec lists no dns servers";
    const std::size_t count = names.names.size();
    std::vector<std::string> vantage_names;
    for (const spec::DnsServer& vantage : vantages) vantage_names.push_back(vantage.name);
    const std::string at = only_vantage
                               ? "at vantage point " + *only_vantage + " only"
                               : "at " +
                                     util::plural(static_cast<std::int64_t>(vantages.size()),
                                                  "vantage point", "vantage points") +
                                     " (" + util::join_and(vantage_names) + ")";
    const std::string unnamed =
        names.without_name.empty()
            ? ""
            : "; " + util::plural(static_cast<std::int64_t>(names.without_name.size()), "backend") +
                  " without a dns_name not checked";
    if (count == 1) return "1 name resolves inside its expected range " + at + unnamed;
    return std::to_string(count) + " names resolve inside their expected ranges " + at + unnamed;
  }

 private:
  // Every (vantage point, backend) lookup, vantage points first.
  template <class Visit>
  void for_each_lookup(Visit visit) const {
    for (std::size_t v = 0; v < vantages.size(); ++v) {
      for (std::size_t i = 0; i < names.audited.size(); ++i) {
        visit(vantages[v], *names.audited[i], lookups[v][names.lookup_of[i]]);
      }
    }
  }

  static std::string whose(const spec::Backend& backend) {
    return backend.name + "'s name " + name_of(backend);
  }

  Finding& add(const char* code, Severity severity, const spec::DnsServer& vantage,
               const spec::Backend& backend, std::string summary) {
    return out.add(code, severity,
                   {.backend = backend.name, .node = name_of(backend), .vantage = vantage.name},
                   std::move(summary));
  }

  void common_evidence(Finding& f, const spec::DnsServer& vantage, const spec::Backend& backend,
                       const Lookup& lookup) const {
    f.with("vantage", vantage.name)
        .with("server", lookup.server)
        .with("answers", answer_list(lookup))
        .with("rcode_a", std::string(rdns::to_string(lookup.a.outcome)))
        .with("rcode_aaaa", std::string(rdns::to_string(lookup.aaaa.outcome)))
        .with("expected_cidr", range_of(backend).to_string())
        .with("configured_address", backend.address.to_string())
        .with("lookup_ms", std::chrono::duration<double, std::milli>(lookup.elapsed).count());
    const std::vector<std::string> proxies_here = proxies_resolving_at(spec, vantage.name);
    if (!proxies_here.empty()) f.with("proxies_resolving_here", proxies_here);
  }

  // dns_timeout or dns_unreachable: `failed` of the vantage point's names undecided.
  void vantage_undecided(const spec::DnsServer& vantage, const std::vector<Lookup>& at_vantage,
                         const std::vector<std::string>& failed,
                         const rdns::TypeResult& first_failure, bool any_timeout) {
    const std::string server = at_vantage.front().server;
    const std::string left =
        std::to_string(failed.size()) + " of " +
        util::plural(static_cast<std::int64_t>(names.names.size()), "name", "names") +
        " left undecided there";
    const std::string summary = any_timeout
                                    ? where(vantage, server) + " did not answer within " +
                                          std::to_string(spec.timeouts.dns.count()) + " ms: " + left
                                    : where(vantage, server) + " is unreachable (" +
                                          short_reason(first_failure) + "): " + left;
    report::Subject subject{.vantage = vantage.name};
    if (failed.size() == 1) {
      for (const spec::Backend* backend : names.audited) {
        if (failed.front().starts_with(name_of(*backend) + ":")) {
          subject.backend = backend->name;
          subject.node = name_of(*backend);
          break;
        }
      }
    }
    Finding& f = out.add(any_timeout ? codes::kDnsTimeout : codes::kDnsUnreachable,
                         Severity::unknown, subject, summary);
    f.with("vantage", vantage.name)
        .with("server", server)
        .with("reason", first_failure.message.empty() ? rdns::to_string(first_failure.outcome)
                                                      : first_failure.message)
        .with("deadline_ms", static_cast<std::int64_t>(spec.timeouts.dns.count()))
        .with("undecided_names", failed);
    const std::vector<std::string> proxies_here = proxies_resolving_at(spec, vantage.name);
    if (!proxies_here.empty()) f.with("proxies_resolving_here", proxies_here);
  }

  const spec::ClusterSpec& spec;
  const std::vector<spec::DnsServer>& vantages;
  const Names& names;
  const std::vector<std::vector<Lookup>>& lookups;  // [vantage][name]
  CheckFindings& out;
  DnsRound& facts;
};

}  // namespace

std::vector<spec::DnsServer> vantage_points(const spec::ClusterSpec& spec,
                                            const std::optional<std::string>& only_vantage) {
  const std::vector<spec::DnsServer>& all = spec.dns_servers;
  if (!only_vantage) return all;
  for (const spec::DnsServer& server : all) {
    if (server.name == *only_vantage) return {server};
  }
  std::vector<std::string> known;
  for (const spec::DnsServer& server : all) known.push_back(server.name);
  throw std::invalid_argument(
      "no DNS vantage point named \"" + *only_vantage + "\" in the spec " +
      (known.empty() ? "(it lists no dns servers)" : "(known: " + util::join(known) + ")"));
}

DnsProbe::DnsProbe(std::optional<std::string> only_vantage,
                   std::shared_ptr<ringwatch::dns::Resolver> resolver)
    : only_vantage_(std::move(only_vantage)), resolver_(std::move(resolver)) {
  if (!resolver_) resolver_ = std::make_shared<ringwatch::dns::AresResolver>();
}

DnsProbe::~DnsProbe() = default;

std::vector<std::vector<Lookup>> DnsProbe::resolve(const spec::ClusterSpec& spec,
                                                   const std::vector<spec::DnsServer>& vantages,
                                                   const std::vector<std::string>& names) {
  std::vector<std::vector<Lookup>> lookups(vantages.size());  // [vantage][name]
  const auto ask = [&](std::size_t v) {
    const Clock::time_point deadline = Clock::now() + spec.timeouts.dns;
    std::string error;
    try {
      lookups[v] = resolver_->resolve_all(names, vantages[v], deadline);
      if (lookups[v].size() != names.size()) {
        error = "resolver returned " + std::to_string(lookups[v].size()) + " lookups for " +
                std::to_string(names.size()) + " names";
      }
    } catch (const std::exception& thrown) {
      error = thrown.what();
    }
    if (error.empty()) return;
    // Probes never throw for what the network does: the vantage point is undecided.
    lookups[v].clear();
    for (const std::string& name : names) {
      Lookup failed;
      failed.name = name;
      failed.server = rdns::describe(vantages[v]);
      failed.a = failed.aaaa = {Outcome::other, error, {}};
      lookups[v].push_back(failed);
    }
  };
  if (names.empty()) return lookups;
  if (vantages.size() == 1) {
    ask(0);
  } else {
    const std::size_t threads = std::min(vantages.size(), kMaxParallelVantages);
    if (!pool_ || pool_->size() != threads) pool_ = std::make_unique<WorkerPool>(threads);
    pool_->run_all(vantages.size(), ask);
  }
  return lookups;
}

void DnsProbe::run(const spec::ClusterSpec& spec, RoundContext& round, report::Report& report) {
  CheckFindings out(name(), report);
  DnsRound& facts = round.dns.emplace();
  std::vector<spec::DnsServer> vantages;
  try {
    vantages = vantage_points(spec, only_vantage_);
  } catch (const std::invalid_argument& error) {
    out.add(codes::kDnsUnknownVantage, Severity::unknown, {.vantage = *only_vantage_},
            error.what());
    out.finish(error.what());
    return;
  }
  const Names names = distinct_names(spec);
  const std::vector<std::vector<Lookup>> lookups = resolve(spec, vantages, names.names);

  DnsAudit audit(spec, vantages, names, lookups, out, facts);
  audit.outside_range();
  audit.no_answer();
  audit.disagreement();
  audit.transport_failures();
  audit.unexpected_addresses();
  audit.not_applicable();
  audit.answers();
  audit.figures(report.figures);
  report.figures[figures::kDnsMs] = out.finish(audit.summary(only_vantage_));
}

}  // namespace ringwatch::probes::dns
