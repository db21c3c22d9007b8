#include "probes/dns/dns_probe.h"

#include <algorithm>
#include <chrono>
#include <set>
#include <stdexcept>

#include "lib/util/text.h"
#include "lib/util/worker_pool.h"

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

double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

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

}  // namespace

std::vector<spec::DnsServer> vantage_points(const spec::ClusterSpec& spec,
                                            const std::optional<std::string>& only_vantage) {
  std::vector<spec::DnsServer> all = spec.dns_servers;
  if (all.empty()) all.push_back({"system", std::nullopt});
  if (!only_vantage) return all;
  for (const spec::DnsServer& server : all) {
    if (server.name == *only_vantage) return {server};
  }
  std::vector<std::string> known;
  for (const spec::DnsServer& server : all) known.push_back(server.name);
  std::string list;
  for (const std::string& name : known) list += (list.empty() ? "" : ", ") + name;
  throw std::invalid_argument("no DNS vantage point named \"" + *only_vantage +
                              "\" in the spec (known: " + list + ")");
}

DnsProbe::DnsProbe(std::optional<std::string> only_vantage,
                   std::shared_ptr<ringwatch::dns::Resolver> resolver)
    : only_vantage_(std::move(only_vantage)), resolver_(std::move(resolver)) {
  if (!resolver_) resolver_ = std::make_shared<ringwatch::dns::AresResolver>();
}

DnsProbe::~DnsProbe() = default;

void DnsProbe::run(const spec::ClusterSpec& spec, report::Report& report) {
  const Clock::time_point round_start = Clock::now();
  report::CheckResult check{report::checks::kDns, report::Status::ok, "", 0};

  std::vector<spec::DnsServer> vantages;
  try {
    vantages = vantage_points(spec, only_vantage_);
  } catch (const std::invalid_argument& error) {
    check.status = report::Status::unknown;
    check.summary = error.what();
    Finding finding{report::checks::kDns, codes::kDnsUnknownVantage,
                    Severity::unknown,    {.vantage = *only_vantage_},
                    error.what(),         {}};
    report.checks.push_back(check);
    report.add(std::move(finding));
    return;
  }

  // Distinct names, in backend order; backends sharing a name share a lookup.
  std::vector<std::string> names;
  std::vector<std::size_t> name_of(spec.backends.size());
  for (std::size_t b = 0; b < spec.backends.size(); ++b) {
    const auto found = std::find(names.begin(), names.end(), spec.backends[b].dns_name);
    name_of[b] = static_cast<std::size_t>(found - names.begin());
    if (found == names.end()) names.push_back(spec.backends[b].dns_name);
  }

  // ---- Resolve: every vantage point at once, each bounded by one deadline ----
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
  if (!names.empty()) {
    if (vantages.size() == 1) {
      ask(0);
    } else {
      const std::size_t threads = std::min(vantages.size(), kMaxParallelVantages);
      if (!pool_ || pool_->size() != threads) pool_ = std::make_unique<WorkerPool>(threads);
      pool_->run_all(vantages.size(), ask);
    }
  }

  // ---- Classify ----
  std::vector<Finding> outside, no_answer, disagreement, unexpected, transport;
  auto& fig = report.figures;
  std::size_t answers_outside = 0, undecided = 0;

  for (std::size_t v = 0; v < vantages.size(); ++v) {
    const spec::DnsServer& vantage = vantages[v];
    const std::vector<std::string> proxies_here = proxies_resolving_at(spec, vantage.name);
    for (std::size_t b = 0; b < spec.backends.size(); ++b) {
      const spec::Backend& backend = spec.backends[b];
      const Lookup& lookup = lookups[v][name_of[b]];
      const report::Subject subject{
          .backend = backend.name, .node = backend.dns_name, .vantage = vantage.name};
      const std::string whose = backend.name + "'s name " + backend.dns_name;
      const std::string expected_key = figures::dns_answer_expected(backend.name, vantage.name);
      auto common_evidence = [&](Finding& f) {
        f.with("vantage", vantage.name)
            .with("server", lookup.server)
            .with("answers", answer_list(lookup))
            .with("rcode_a", std::string(rdns::to_string(lookup.a.outcome)))
            .with("rcode_aaaa", std::string(rdns::to_string(lookup.aaaa.outcome)))
            .with("expected_cidr", backend.expected_cidr.to_string())
            .with("configured_address", backend.address.to_string())
            .with("lookup_ms", std::chrono::duration<double, std::milli>(lookup.elapsed).count());
        if (!proxies_here.empty()) f.with("proxies_resolving_here", proxies_here);
      };

      switch (verdict_of(lookup)) {
        case Verdict::no_answer: {
          Finding f{report::checks::kDns,
                    codes::kDnsNoAnswer,
                    Severity::critical,
                    subject,
                    whose + " does not resolve at " + vantage.name + ": " + rcode_text(lookup),
                    {}};
          common_evidence(f);
          no_answer.push_back(std::move(f));
          fig[expected_key] = 0;
          break;
        }
        case Verdict::undecided:
          break;  // no dns_answer_expected figure: not 0, nothing is known
        case Verdict::answered: {
          std::vector<std::string> out, inside_other;
          for (const rdns::Answer& answer : lookup.answers()) {
            if (!backend.expected_cidr.contains(answer.address)) {
              out.push_back(answer.address.to_string());
            } else if (!(answer.address == backend.address)) {
              inside_other.push_back(answer.address.to_string());
            }
          }
          answers_outside += out.size();
          if (!out.empty()) {
            Finding f{report::checks::kDns,
                      codes::kDnsOutsideRange,
                      Severity::critical,
                      subject,
                      whose + " resolves to " + util::join_and(out) + " at " + vantage.name +
                          ", outside " + backend.expected_cidr.to_string(),
                      {}};
            common_evidence(f);
            f.with("outside_answers", out);
            outside.push_back(std::move(f));
          }
          for (const std::string& address : inside_other) {
            std::string summary = whose + " resolves to " + address + " at " + vantage.name +
                                  ", inside " + backend.expected_cidr.to_string() + " but not " +
                                  backend.name + "'s address " + backend.address.to_string();
            std::string owner;
            for (const spec::Backend& other : spec.backends) {
              if (other.address.to_string() == address) owner = other.name;
            }
            if (!owner.empty()) summary += " (it is " + owner + "'s address)";
            Finding f{report::checks::kDns,
                      codes::kDnsUnexpectedAddress,
                      Severity::warning,
                      subject,
                      summary,
                      {}};
            common_evidence(f);
            f.with("unexpected_answer", address);
            if (!owner.empty()) f.with("answer_belongs_to", owner);
            unexpected.push_back(std::move(f));
          }
          if (!out.empty()) {
            fig[expected_key] = 0;
          } else if (fully_replied(lookup)) {
            fig[expected_key] = 1;
          }  // else none: the unanswered type may still hold an outside answer
          break;
        }
      }
    }

    // Transport failures: one finding per vantage point, not one per name.
    std::vector<std::string> failed;
    std::string reason, reason_short;
    bool any_timeout = false;
    for (const Lookup& lookup : lookups[v]) {
      const Verdict verdict = verdict_of(lookup);
      if (verdict == Verdict::no_answer || fully_replied(lookup)) continue;
      failed.push_back(type_failures(lookup));
      for (const rdns::TypeResult* r : {&lookup.a, &lookup.aaaa}) {
        if (rdns::is_reply(r->outcome)) continue;
        any_timeout |= r->outcome == Outcome::timeout;
        if (reason.empty()) {
          reason = r->message.empty() ? rdns::to_string(r->outcome) : r->message;
          reason_short = short_reason(*r);
        }
      }
    }
    undecided += failed.size();
    if (!failed.empty()) {
      const std::string server = lookups[v].front().server;
      const std::string left = std::to_string(failed.size()) + " of " +
                               util::plural(names.size(), "name", "names") +
                               " left undecided there";
      std::string summary =
          any_timeout ? where(vantage, server) + " did not answer within " +
                            std::to_string(spec.timeouts.dns.count()) + " ms: " + left
                      : where(vantage, server) + " is unreachable (" + reason_short + "): " + left;
      report::Subject subject{.vantage = vantage.name};
      if (failed.size() == 1) {
        for (const spec::Backend& backend : spec.backends) {
          if (failed.front().starts_with(backend.dns_name + ":")) {
            subject.backend = backend.name;
            subject.node = backend.dns_name;
            break;
          }
        }
      }
      Finding f{report::checks::kDns,
                any_timeout ? codes::kDnsTimeout : codes::kDnsUnreachable,
                Severity::unknown,
                subject,
                summary,
                {}};
      f.with("vantage", vantage.name)
          .with("server", server)
          .with("reason", reason)
          .with("deadline_ms", static_cast<std::int64_t>(spec.timeouts.dns.count()))
          .with("undecided_names", failed);
      if (!proxies_here.empty()) f.with("proxies_resolving_here", proxies_here);
      transport.push_back(std::move(f));
    }
  }

  // Vantage points that see different answer sets for one name. Only lookups
  // where the server replied to both types take part.
  if (vantages.size() > 1) {
    for (std::size_t b = 0; b < spec.backends.size(); ++b) {
      const spec::Backend& backend = spec.backends[b];
      std::vector<std::pair<std::string, std::vector<std::string>>> groups;  // view -> vantages
      for (std::size_t v = 0; v < vantages.size(); ++v) {
        const Lookup& lookup = lookups[v][name_of[b]];
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
      std::string summary =
          "vantage points disagree on " + backend.name + "'s name " + backend.dns_name + ": ";
      for (std::size_t i = 0; i < parts.size(); ++i) summary += (i ? "; " : "") + parts[i];
      Finding f{report::checks::kDns,
                codes::kDnsDisagreement,
                Severity::critical,
                {.backend = backend.name, .node = backend.dns_name},
                summary,
                {}};
      f.with("answers_by_vantage", detail)
          .with("expected_cidr", backend.expected_cidr.to_string())
          .with("configured_address", backend.address.to_string());
      disagreement.push_back(std::move(f));
    }
  }

  // ---- Findings in order of urgency, check result, figures ----
  std::vector<Finding> findings;
  for (auto* bucket : {&outside, &no_answer, &disagreement, &transport, &unexpected}) {
    for (Finding& f : *bucket) findings.push_back(std::move(f));
  }
  for (const Finding& f : findings) {
    check.status = report::worst(check.status, report::status_of(f.severity));
  }
  for (const Finding& f : findings) {
    if (report::status_of(f.severity) == check.status) {
      check.summary = f.summary;
      break;
    }
  }
  if (check.summary.empty()) {
    std::vector<std::string> vantage_names;
    for (const spec::DnsServer& vantage : vantages) vantage_names.push_back(vantage.name);
    const std::string at =
        only_vantage_ ? "at vantage point " + *only_vantage_ + " only"
                      : "at " + util::plural(vantages.size(), "vantage point", "vantage points") +
                            " (" + util::join_and(vantage_names) + ")";
    check.summary = names.empty()       ? "no backend names to check"
                    : names.size() == 1 ? "1 name resolves inside its expected range " + at
                                        : std::to_string(names.size()) +
                                              " names resolve inside their expected ranges " + at;
  }

  fig[figures::kDnsNames] = static_cast<double>(names.size());
  fig[figures::kDnsVantagePoints] = static_cast<double>(vantages.size());
  fig[figures::kDnsLookups] = static_cast<double>(names.size() * vantages.size());
  fig[figures::kDnsLookupsUndecided] = static_cast<double>(undecided);
  fig[figures::kDnsAnswersOutside] = static_cast<double>(answers_outside);
  check.duration_ms = ms_since(round_start);
  fig[figures::kDnsMs] = check.duration_ms;
  report.checks.push_back(check);
  for (Finding& f : findings) report.add(std::move(f));
}

}  // namespace ringwatch::probes::dns
