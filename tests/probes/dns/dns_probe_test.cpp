// The DNS audit. First its classification against a scripted resolver: which
// answers are CRITICAL, WARNING or UNKNOWN, what the findings say, the
// figures, the vantage point selection and the deadline. Then the whole probe
// (c-ares) against the lab's real dnsmasq: healthy, a wrong answer injected,
// healed, and dnsmasq killed. The resolver alone is in dns_resolver_test.

#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "probes/dns/dns_probe.h"
#include "tools/lab/lab.h"

namespace ringwatch::probes::dns {
namespace {

namespace rdns = ringwatch::dns;
using namespace std::chrono_literals;
using rdns::Outcome;
using report::Status;

rdns::TypeResult records(std::initializer_list<const char*> addresses, std::uint32_t ttl = 1) {
  rdns::TypeResult result{Outcome::noerror, "", {}};
  for (const char* text : addresses) result.answers.push_back({*net::IpAddress::parse(text), ttl});
  return result;
}
rdns::TypeResult reply(Outcome outcome) {
  return {outcome, "", {}};
}

rdns::Lookup lookup_a(std::initializer_list<const char*> addresses) {
  rdns::Lookup lookup;
  lookup.a = records(addresses);
  lookup.aaaa = records({});
  return lookup;
}
rdns::Lookup lookup_both(Outcome outcome, const std::string& message = "") {
  rdns::Lookup lookup;
  lookup.a = lookup.aaaa = {outcome, message, {}};
  return lookup;
}

// Answers from a script keyed by (vantage, name); an unscripted name answers
// with the backend's own address. Thread-safe: the probe asks vantage points
// in parallel.
class ScriptedResolver final : public rdns::Resolver {
 public:
  std::map<std::pair<std::string, std::string>, rdns::Lookup> script;
  std::map<std::string, std::string> own_address;  // name -> address
  // Vantage points that wait for the deadline before answering (a timeout).
  std::vector<std::string> slow;

  rdns::Lookup resolve(const std::string& name, const spec::DnsServer& server,
                       rdns::Clock::time_point deadline) override {
    {
      std::lock_guard lock(mutex_);
      calls_.push_back({server.name, name});
      deadlines_.push_back(deadline);
      servers_.push_back(server);
    }
    if (std::find(slow.begin(), slow.end(), server.name) != slow.end()) {
      std::this_thread::sleep_until(deadline);
    }
    rdns::Lookup lookup;
    const auto found = script.find({server.name, name});
    if (found != script.end()) {
      lookup = found->second;
    } else {
      lookup = lookup_a({own_address.at(name).c_str()});
    }
    lookup.name = name;
    lookup.server = rdns::describe(server);
    return lookup;
  }

  std::vector<std::pair<std::string, std::string>> calls() {
    std::lock_guard lock(mutex_);
    return calls_;
  }
  std::vector<rdns::Clock::time_point> deadlines() {
    std::lock_guard lock(mutex_);
    return deadlines_;
  }
  std::vector<spec::DnsServer> servers() {
    std::lock_guard lock(mutex_);
    return servers_;
  }

 private:
  std::mutex mutex_;
  std::vector<std::pair<std::string, std::string>> calls_;
  std::vector<rdns::Clock::time_point> deadlines_;
  std::vector<spec::DnsServer> servers_;
};

spec::Backend backend(int i) {
  spec::Backend b;
  b.name = "b" + std::to_string(i);
  b.address = *net::IpAddress::parse("127.10.0.1" + std::to_string(i));
  b.port = 11211;
  b.dns_name = b.name + ".lab.ringwatch.test";
  b.expected_cidr = *net::Cidr::parse("127.10.0.0/16");
  return b;
}

spec::ClusterSpec lab_spec(int vantages = 1) {
  spec::ClusterSpec spec;
  spec.name = "lab";
  for (int i = 1; i <= 3; ++i) spec.backends.push_back(backend(i));
  spec.dns_servers.push_back({"lab-dns", net::Endpoint{"127.10.0.53", 5353}});
  if (vantages > 1) spec.dns_servers.push_back({"p2-resolver", net::Endpoint{"127.10.1.53", 53}});
  spec::Proxy p2;
  p2.name = "p2";
  p2.client = {"127.10.1.2", 22122};
  p2.dns_vantage = vantages > 1 ? "p2-resolver" : "lab-dns";
  spec.proxies.push_back(p2);
  return spec;
}

struct DnsProbeTest : ::testing::Test {
  std::shared_ptr<ScriptedResolver> resolver = std::make_shared<ScriptedResolver>();
  spec::ClusterSpec spec = lab_spec();
  RoundContext round;  // what the last run() told the rest of the round

  void SetUp() override {
    for (int i = 1; i <= 3; ++i) {
      resolver->own_address["b" + std::to_string(i) + ".lab.ringwatch.test"] =
          "127.10.0.1" + std::to_string(i);
    }
  }
  report::Report run(std::optional<std::string> only = std::nullopt) {
    DnsProbe probe(std::move(only), resolver);
    report::Report report;
    round = {};
    probe.run(spec, round, report);
    return report;
  }
};

const report::Finding* find(const report::Report& report, const std::string& code,
                            const std::string& vantage = "") {
  for (const auto& f : report.findings) {
    if (f.code == code && (vantage.empty() || f.subject.vantage == vantage)) return &f;
  }
  return nullptr;
}

const report::EvidenceValue* evidence(const report::Finding& f, const std::string& key) {
  for (const auto& [name, value] : f.evidence) {
    if (name == key) return &value;
  }
  return nullptr;
}

std::vector<std::string> evidence_list(const report::Finding& f, const std::string& key) {
  const auto* value = evidence(f, key);
  if (value == nullptr) return {};
  return std::get<std::vector<std::string>>(*value);
}

std::string evidence_text(const report::Finding& f, const std::string& key) {
  const auto* value = evidence(f, key);
  if (value == nullptr) return "";
  return std::get<std::string>(*value);
}

TEST_F(DnsProbeTest, AnswersInsideTheRangeAreOkWithoutFindings) {
  const report::Report report = run();
  ASSERT_EQ(report.checks.size(), 1u);
  EXPECT_EQ(report.checks[0].name, "dns");
  EXPECT_EQ(report.checks[0].status, Status::ok);
  EXPECT_EQ(report.checks[0].summary,
            "3 names resolve inside their expected ranges at 1 vantage point (lab-dns)");
  EXPECT_TRUE(report.findings.empty());
  EXPECT_EQ(report.figures.at("dns_lookups"), 3);
  EXPECT_EQ(report.figures.at("dns_names"), 3);
  EXPECT_EQ(report.figures.at("dns_vantage_points"), 1);
  EXPECT_EQ(report.figures.at("dns_lookups_undecided"), 0);
  EXPECT_EQ(report.figures.at("dns_answers_outside"), 0);
  EXPECT_EQ(report.figures.at("dns_answer_expected/b1/lab-dns"), 1);
  EXPECT_EQ(report.figures.at("dns_answer_expected/b3/lab-dns"), 1);
  EXPECT_TRUE(report.figures.contains("dns_ms"));
  EXPECT_EQ(resolver->calls().size(), 3u);
}

TEST_F(DnsProbeTest, AnAnswerOutsideTheRangeIsCriticalAndNamesEverything) {
  resolver->script[{"lab-dns", "b3.lab.ringwatch.test"}] = lookup_a({"127.200.0.13"});
  const report::Report report = run();
  EXPECT_EQ(report.checks[0].status, Status::critical);
  const std::string summary =
      "b3's name b3.lab.ringwatch.test resolves to 127.200.0.13 at lab-dns, outside 127.10.0.0/16";
  EXPECT_EQ(report.checks[0].summary, summary);
  ASSERT_EQ(report.findings.size(), 1u);
  const report::Finding& f = report.findings[0];
  EXPECT_EQ(f.check, "dns");
  EXPECT_EQ(f.code, "dns_outside_range");
  EXPECT_EQ(f.severity, report::Severity::critical);
  EXPECT_EQ(
      f.subject,
      (report::Subject{.backend = "b3", .node = "b3.lab.ringwatch.test", .vantage = "lab-dns"}));
  EXPECT_EQ(f.summary, summary);
  EXPECT_EQ(evidence_list(f, "answers"), std::vector<std::string>{"127.200.0.13 (A, TTL 1 s)"});
  EXPECT_EQ(evidence_list(f, "outside_answers"), std::vector<std::string>{"127.200.0.13"});
  EXPECT_EQ(evidence_text(f, "vantage"), "lab-dns");
  EXPECT_EQ(evidence_text(f, "server"), "127.10.0.53:5353");
  EXPECT_EQ(evidence_text(f, "expected_cidr"), "127.10.0.0/16");
  EXPECT_EQ(evidence_text(f, "configured_address"), "127.10.0.13");
  EXPECT_EQ(evidence_list(f, "proxies_resolving_here"), std::vector<std::string>{"p2"});
  EXPECT_EQ(report.figures.at("dns_answer_expected/b3/lab-dns"), 0);
  EXPECT_EQ(report.figures.at("dns_answer_expected/b2/lab-dns"), 1);
  EXPECT_EQ(report.figures.at("dns_answers_outside"), 1);
}

TEST_F(DnsProbeTest, AnswersOutsideTheRangeAreToldToTheRoundCitingTheirFindings) {
  spec = lab_spec(2);
  resolver->script[{"lab-dns", "b2.lab.ringwatch.test"}] = lookup_a({"127.200.0.12"});
  resolver->script[{"p2-resolver", "b3.lab.ringwatch.test"}] =
      lookup_a({"127.200.0.13", "10.0.0.13"});
  const report::Report report = run();
  ASSERT_TRUE(round.dns.has_value());
  ASSERT_EQ(round.dns->outside.size(), 2u);
  const auto& b2 = round.dns->outside[0];
  EXPECT_EQ(b2.backend, "b2");
  EXPECT_EQ(b2.vantage, "lab-dns");
  EXPECT_EQ(b2.answers, std::vector<std::string>{"127.200.0.12"});
  EXPECT_EQ(b2.expected_cidr, "127.10.0.0/16");
  const auto& b3 = round.dns->outside[1];
  EXPECT_EQ(b3.backend, "b3");
  EXPECT_EQ(b3.vantage, "p2-resolver");
  EXPECT_EQ(b3.answers, (std::vector<std::string>{"127.200.0.13", "10.0.0.13"}));
  for (const auto& fact : round.dns->outside) {
    ASSERT_LT(fact.finding, report.findings.size());
    const report::Finding& finding = report.findings[fact.finding];
    EXPECT_EQ(finding.code, "dns_outside_range");
    EXPECT_EQ(finding.subject.backend, fact.backend);
    EXPECT_EQ(finding.subject.vantage, fact.vantage);
  }
}

TEST_F(DnsProbeTest, OneOutsideAnswerAmongInsideOnesIsStillCritical) {
  resolver->script[{"lab-dns", "b3.lab.ringwatch.test"}] =
      lookup_a({"127.10.0.13", "127.200.0.13"});
  const report::Report report = run();
  EXPECT_EQ(report.checks[0].status, Status::critical);
  ASSERT_NE(find(report, "dns_outside_range"), nullptr);
  EXPECT_EQ(evidence_list(*find(report, "dns_outside_range"), "answers"),
            (std::vector<std::string>{"127.10.0.13 (A, TTL 1 s)", "127.200.0.13 (A, TTL 1 s)"}));
}

TEST_F(DnsProbeTest, AnotherNodesAddressInsideTheRangeIsAWarning) {
  resolver->script[{"lab-dns", "b3.lab.ringwatch.test"}] = lookup_a({"127.10.0.11"});
  const report::Report report = run();
  EXPECT_EQ(report.checks[0].status, Status::warning);
  ASSERT_EQ(report.findings.size(), 1u);
  const report::Finding& f = report.findings[0];
  EXPECT_EQ(f.code, "dns_unexpected_address");
  EXPECT_EQ(f.summary,
            "b3's name b3.lab.ringwatch.test resolves to 127.10.0.11 at lab-dns, inside "
            "127.10.0.0/16 but not b3's address 127.10.0.13 (it is b1's address)");
  EXPECT_EQ(evidence_text(f, "answer_belongs_to"), "b1");
  EXPECT_EQ(report.checks[0].summary, f.summary);
  // Inside the range: the metric's expectation holds.
  EXPECT_EQ(report.figures.at("dns_answer_expected/b3/lab-dns"), 1);
}

TEST_F(DnsProbeTest, VantagePointsThatDisagreeAreCriticalAndBothAreNamed) {
  spec = lab_spec(2);
  resolver->script[{"p2-resolver", "b3.lab.ringwatch.test"}] = lookup_a({"127.200.0.13"});
  const report::Report report = run();
  EXPECT_EQ(report.checks[0].status, Status::critical);
  const report::Finding* disagreement = find(report, "dns_disagreement");
  ASSERT_NE(disagreement, nullptr);
  EXPECT_EQ(disagreement->severity, report::Severity::critical);
  EXPECT_EQ(disagreement->summary,
            "vantage points disagree on b3's name b3.lab.ringwatch.test: lab-dns answers "
            "127.10.0.13; p2-resolver answers 127.200.0.13");
  EXPECT_EQ(disagreement->subject.backend, "b3");
  EXPECT_EQ(disagreement->subject.node, "b3.lab.ringwatch.test");
  EXPECT_EQ(evidence_list(*disagreement, "answers_by_vantage"),
            (std::vector<std::string>{"lab-dns: 127.10.0.13", "p2-resolver: 127.200.0.13"}));
  // The root cause leads: the outside answer, at the vantage point that sees it.
  const report::Finding* outside = find(report, "dns_outside_range");
  ASSERT_NE(outside, nullptr);
  EXPECT_EQ(outside->subject.vantage, "p2-resolver");
  EXPECT_EQ(report.checks[0].summary, outside->summary);
  EXPECT_EQ(report.findings.front().code, "dns_outside_range");
  EXPECT_EQ(report.figures.at("dns_answer_expected/b3/lab-dns"), 1);
  EXPECT_EQ(report.figures.at("dns_answer_expected/b3/p2-resolver"), 0);
  EXPECT_EQ(report.figures.at("dns_lookups"), 6);
}

TEST_F(DnsProbeTest, DisagreementInsideTheRangeIsCriticalToo) {
  spec = lab_spec(2);
  resolver->script[{"p2-resolver", "b2.lab.ringwatch.test"}] =
      lookup_a({"127.10.0.12", "127.10.0.99"});
  const report::Report report = run();
  EXPECT_EQ(report.checks[0].status, Status::critical);
  ASSERT_NE(find(report, "dns_disagreement"), nullptr);
  EXPECT_EQ(find(report, "dns_disagreement")->summary,
            "vantage points disagree on b2's name b2.lab.ringwatch.test: lab-dns answers "
            "127.10.0.12; p2-resolver answers 127.10.0.12 and 127.10.0.99");
  ASSERT_NE(find(report, "dns_unexpected_address", "p2-resolver"), nullptr);
  EXPECT_EQ(report.checks[0].summary, find(report, "dns_disagreement")->summary);
}

TEST_F(DnsProbeTest, SameAnswersInAnotherOrderOrWithOtherTtlsAgree) {
  spec = lab_spec(2);
  resolver->script[{"lab-dns", "b1.lab.ringwatch.test"}] = lookup_a({"127.10.0.11", "127.10.0.21"});
  rdns::Lookup reordered = lookup_a({"127.10.0.21", "127.10.0.11"});
  reordered.a.answers[0].ttl_s = 300;
  resolver->script[{"p2-resolver", "b1.lab.ringwatch.test"}] = reordered;
  const report::Report report = run();
  EXPECT_EQ(find(report, "dns_disagreement"), nullptr);
}

TEST_F(DnsProbeTest, NxdomainIsCriticalNoAnswer) {
  resolver->script[{"lab-dns", "b2.lab.ringwatch.test"}] = lookup_both(Outcome::nxdomain);
  const report::Report report = run();
  EXPECT_EQ(report.checks[0].status, Status::critical);
  ASSERT_EQ(report.findings.size(), 1u);
  EXPECT_EQ(report.findings[0].code, "dns_no_answer");
  EXPECT_EQ(report.findings[0].summary,
            "b2's name b2.lab.ringwatch.test does not resolve at lab-dns: NXDOMAIN");
  EXPECT_EQ(evidence_text(report.findings[0], "rcode_a"), "NXDOMAIN");
  EXPECT_EQ(report.figures.at("dns_answer_expected/b2/lab-dns"), 0);
}

TEST_F(DnsProbeTest, ServfailRefusedAndEmptyNoerrorAreNoAnswer) {
  resolver->script[{"lab-dns", "b1.lab.ringwatch.test"}] = lookup_both(Outcome::servfail);
  resolver->script[{"lab-dns", "b2.lab.ringwatch.test"}] = lookup_both(Outcome::refused);
  resolver->script[{"lab-dns", "b3.lab.ringwatch.test"}] = lookup_both(Outcome::noerror);
  const report::Report report = run();
  EXPECT_EQ(report.checks[0].status, Status::critical);
  std::vector<std::string> summaries;
  for (const auto& f : report.findings) {
    EXPECT_EQ(f.code, "dns_no_answer");
    summaries.push_back(f.summary);
  }
  EXPECT_EQ(summaries,
            (std::vector<std::string>{
                "b1's name b1.lab.ringwatch.test does not resolve at lab-dns: SERVFAIL",
                "b2's name b2.lab.ringwatch.test does not resolve at lab-dns: REFUSED",
                "b3's name b3.lab.ringwatch.test does not resolve at lab-dns: NOERROR with no A "
                "or AAAA records"}));
}

TEST_F(DnsProbeTest, AnAnswerWithTheOtherTypeRefusedIsFine) {
  // dnsmasq without an upstream REFUSEs the AAAA query for a name it holds
  // only an A record for.
  rdns::Lookup lookup = lookup_a({"127.10.0.11"});
  lookup.aaaa = reply(Outcome::refused);
  resolver->script[{"lab-dns", "b1.lab.ringwatch.test"}] = lookup;
  const report::Report report = run();
  EXPECT_EQ(report.checks[0].status, Status::ok) << report.checks[0].summary;
  EXPECT_EQ(report.figures.at("dns_answer_expected/b1/lab-dns"), 1);
}

TEST_F(DnsProbeTest, ATimeoutIsUnknownNotCritical) {
  for (int i = 1; i <= 3; ++i) {
    resolver->script[{"lab-dns", "b" + std::to_string(i) + ".lab.ringwatch.test"}] =
        lookup_both(Outcome::timeout, "no reply from 127.10.0.53:5353 within 1000 ms");
  }
  const report::Report report = run();
  EXPECT_EQ(report.checks[0].status, Status::unknown);
  ASSERT_EQ(report.findings.size(), 1u);  // one per vantage point, not per name
  const report::Finding& f = report.findings[0];
  EXPECT_EQ(f.code, "dns_timeout");
  EXPECT_EQ(f.severity, report::Severity::unknown);
  EXPECT_EQ(f.subject, report::Subject{.vantage = "lab-dns"});
  EXPECT_EQ(f.summary,
            "lab-dns (127.10.0.53:5353) did not answer within 1000 ms: 3 of 3 names left "
            "undecided there");
  EXPECT_EQ(evidence_text(f, "reason"), "no reply from 127.10.0.53:5353 within 1000 ms");
  EXPECT_EQ(evidence_list(f, "undecided_names"),
            (std::vector<std::string>{"b1.lab.ringwatch.test: A and AAAA timeout",
                                      "b2.lab.ringwatch.test: A and AAAA timeout",
                                      "b3.lab.ringwatch.test: A and AAAA timeout"}));
  EXPECT_EQ(report.checks[0].summary, f.summary);
  EXPECT_FALSE(report.figures.contains("dns_answer_expected/b1/lab-dns"));
  EXPECT_EQ(report.figures.at("dns_lookups_undecided"), 3);
}

TEST_F(DnsProbeTest, ConnectionRefusedIsUnknownUnreachable) {
  for (int i = 1; i <= 3; ++i) {
    resolver->script[{"lab-dns", "b" + std::to_string(i) + ".lab.ringwatch.test"}] =
        lookup_both(Outcome::connection_refused,
                    "connection refused by 127.10.0.53:5353 (nothing listens there)");
  }
  const report::Report report = run();
  EXPECT_EQ(report.checks[0].status, Status::unknown);
  ASSERT_EQ(report.findings.size(), 1u);
  EXPECT_EQ(report.findings[0].code, "dns_unreachable");
  EXPECT_EQ(report.findings[0].summary,
            "lab-dns (127.10.0.53:5353) is unreachable (connection refused, nothing listens "
            "there): 3 of 3 names left undecided there");
  EXPECT_EQ(evidence_text(report.findings[0], "reason"),
            "connection refused by 127.10.0.53:5353 (nothing listens there)");
  EXPECT_EQ(evidence_list(report.findings[0], "undecided_names")[0],
            "b1.lab.ringwatch.test: A and AAAA connection refused");
}

TEST_F(DnsProbeTest, OneUndecidedNameNamesItsBackend) {
  rdns::Lookup lookup = lookup_a({"127.10.0.12"});
  lookup.aaaa = {Outcome::timeout, "no reply", {}};
  resolver->script[{"lab-dns", "b2.lab.ringwatch.test"}] = lookup;
  const report::Report report = run();
  // The A answer is fine, but the AAAA one could still be outside the range.
  EXPECT_EQ(report.checks[0].status, Status::unknown);
  ASSERT_EQ(report.findings.size(), 1u);
  EXPECT_EQ(
      report.findings[0].subject,
      (report::Subject{.backend = "b2", .node = "b2.lab.ringwatch.test", .vantage = "lab-dns"}));
  EXPECT_FALSE(report.figures.contains("dns_answer_expected/b2/lab-dns"));
  EXPECT_EQ(report.figures.at("dns_answer_expected/b1/lab-dns"), 1);
}

TEST_F(DnsProbeTest, ADecidedFaultOutranksAnotherVantagePointsTimeout) {
  spec = lab_spec(2);
  for (int i = 1; i <= 3; ++i) {
    resolver->script[{"lab-dns", "b" + std::to_string(i) + ".lab.ringwatch.test"}] =
        lookup_both(Outcome::timeout, "no reply");
  }
  resolver->script[{"p2-resolver", "b3.lab.ringwatch.test"}] = lookup_a({"127.200.0.13"});
  const report::Report report = run();
  EXPECT_EQ(report.checks[0].status, Status::critical);
  ASSERT_NE(find(report, "dns_timeout", "lab-dns"), nullptr);
  ASSERT_NE(find(report, "dns_outside_range", "p2-resolver"), nullptr);
  EXPECT_EQ(find(report, "dns_disagreement"), nullptr);  // undecided lookups don't take part
}

TEST_F(DnsProbeTest, AnIpv6AnswerIsOutsideAnIpv4Range) {
  rdns::Lookup lookup = lookup_a({"127.10.0.13"});
  lookup.aaaa = records({"::ffff:127.10.0.13"});
  resolver->script[{"lab-dns", "b3.lab.ringwatch.test"}] = lookup;
  const report::Report report = run();
  EXPECT_EQ(report.checks[0].status, Status::critical);
  ASSERT_NE(find(report, "dns_outside_range"), nullptr);
  EXPECT_EQ(find(report, "dns_outside_range")->summary,
            "b3's name b3.lab.ringwatch.test resolves to ::ffff:127.10.0.13 at lab-dns, outside "
            "127.10.0.0/16");
  EXPECT_EQ(
      evidence_list(*find(report, "dns_outside_range"), "answers"),
      (std::vector<std::string>{"127.10.0.13 (A, TTL 1 s)", "::ffff:127.10.0.13 (AAAA, TTL 1 s)"}));
}

TEST_F(DnsProbeTest, Ipv6RangesAcceptIpv6AnswersAndRejectIpv4Ones) {
  spec.backends[0].address = *net::IpAddress::parse("fd10::11");
  spec.backends[0].expected_cidr = *net::Cidr::parse("fd10::/64");
  rdns::Lookup inside;
  inside.a = records({});
  inside.aaaa = records({"fd10::11"});
  resolver->script[{"lab-dns", "b1.lab.ringwatch.test"}] = inside;
  rdns::Lookup v4_against_v6;
  v4_against_v6.a = records({"10.0.0.1"});
  v4_against_v6.aaaa = records({"fd10::11"});
  report::Report report = run();
  EXPECT_EQ(report.checks[0].status, Status::ok) << report.checks[0].summary;

  resolver->script[{"lab-dns", "b1.lab.ringwatch.test"}] = v4_against_v6;
  report = run();
  EXPECT_EQ(report.checks[0].status, Status::critical);
  ASSERT_NE(find(report, "dns_outside_range"), nullptr);
  EXPECT_EQ(evidence_list(*find(report, "dns_outside_range"), "outside_answers"),
            std::vector<std::string>{"10.0.0.1"});
}

TEST_F(DnsProbeTest, OnlyOneVantagePointIsAskedWhenChosen) {
  spec = lab_spec(2);
  resolver->script[{"lab-dns", "b3.lab.ringwatch.test"}] = lookup_a({"127.200.0.13"});
  DnsProbe probe("p2-resolver", resolver);
  EXPECT_EQ(probe.only_vantage(), "p2-resolver");
  report::Report report;
  probe.run(spec, round, report);
  EXPECT_EQ(report.checks[0].status, Status::ok);  // lab-dns's fault is not seen from p2
  EXPECT_EQ(report.checks[0].summary,
            "3 names resolve inside their expected ranges at vantage point p2-resolver only");
  for (const auto& [vantage, name] : resolver->calls()) EXPECT_EQ(vantage, "p2-resolver");
  EXPECT_EQ(report.figures.at("dns_vantage_points"), 1);
  EXPECT_FALSE(report.figures.contains("dns_answer_expected/b1/lab-dns"));
}

TEST_F(DnsProbeTest, AnUnknownVantagePointIsUnknownWithTheKnownOnes) {
  const report::Report report = run("p9-resolver");
  EXPECT_EQ(report.checks[0].status, Status::unknown);
  EXPECT_EQ(report.checks[0].summary,
            "no DNS vantage point named \"p9-resolver\" in the spec (known: lab-dns)");
  ASSERT_EQ(report.findings.size(), 1u);
  EXPECT_EQ(report.findings[0].code, "dns_unknown_vantage");
  EXPECT_TRUE(resolver->calls().empty());
}

TEST(DnsVantagePointsTest, ListsTheSpecsServersOnly) {
  spec::ClusterSpec spec = lab_spec(2);
  EXPECT_EQ(vantage_points(spec, std::nullopt), spec.dns_servers);
  EXPECT_EQ(vantage_points(spec, "p2-resolver"), std::vector<spec::DnsServer>{spec.dns_servers[1]});
  try {
    vantage_points(spec, "p9");
    FAIL() << "no throw";
  } catch (const std::invalid_argument& error) {
    EXPECT_STREQ(error.what(),
                 "no DNS vantage point named \"p9\" in the spec (known: lab-dns, p2-resolver)");
  }
  // No dns block: no vantage point, not even the system resolver (docs/spec.md).
  spec.dns_servers.clear();
  EXPECT_TRUE(vantage_points(spec, std::nullopt).empty());
  try {
    vantage_points(spec, "system");
    FAIL() << "no throw";
  } catch (const std::invalid_argument& error) {
    EXPECT_STREQ(error.what(),
                 "no DNS vantage point named \"system\" in the spec (it lists no dns servers)");
  }
}

// --- Not applicable: no dns servers, backends known by address only ---------

TEST_F(DnsProbeTest, WithoutDnsServersNoNameIsAskedAndTheCheckIsNotApplicable) {
  spec.dns_servers.clear();
  const report::Report report = run();
  EXPECT_TRUE(resolver->calls().empty());
  EXPECT_EQ(report.checks[0].status, Status::ok);
  EXPECT_EQ(report.checks[0].summary, "not applicable: the spec lists no dns servers");
  ASSERT_EQ(report.findings.size(), 1u);
  EXPECT_EQ(report.findings[0].code, "dns_not_applicable");
  EXPECT_EQ(report.findings[0].severity, report::Severity::info);
  EXPECT_TRUE(report.findings[0].subject.empty());
  EXPECT_EQ(report.findings[0].summary,
            "the spec lists no dns servers, so no name is checked (add dns.servers, e.g. "
            "{\"name\": \"system\", \"system\": true} for this host's resolver)");
  EXPECT_EQ(report.figures.at("dns_lookups"), 0);
  EXPECT_EQ(report.figures.count("dns_answer_expected/b1/system"), 0u);
}

TEST_F(DnsProbeTest, BackendsWithoutNamesAreNotApplicableAndTheOthersAreChecked) {
  spec.backends[1].dns_name.reset();
  spec.backends[1].expected_cidr.reset();
  resolver->script[{"lab-dns", "b3.lab.ringwatch.test"}] = lookup_a({"127.200.0.13"});
  const report::Report report = run();
  EXPECT_EQ(resolver->calls().size(), 2u);
  for (const auto& [vantage, name] : resolver->calls()) EXPECT_NE(name, "b2.lab.ringwatch.test");
  // b3's wrong answer is still CRITICAL; b2 is only named as not checked.
  EXPECT_EQ(report.checks[0].status, Status::critical);
  EXPECT_EQ(report.checks[0].summary,
            "b3's name b3.lab.ringwatch.test resolves to 127.200.0.13 at lab-dns, outside "
            "127.10.0.0/16");
  const auto not_applicable =
      std::find_if(report.findings.begin(), report.findings.end(),
                   [](const report::Finding& f) { return f.code == "dns_not_applicable"; });
  ASSERT_NE(not_applicable, report.findings.end());
  EXPECT_EQ(not_applicable->severity, report::Severity::info);
  EXPECT_EQ(not_applicable->subject, (report::Subject{.backend = "b2"}));
  EXPECT_EQ(not_applicable->summary, "b2 has no dns_name: the DNS check does not apply to it");
  EXPECT_EQ(report.figures.count("dns_answer_expected/b2/lab-dns"), 0u);
  EXPECT_EQ(report.figures.at("dns_names"), 2);

  resolver->script.clear();
  const report::Report healthy = run();
  EXPECT_EQ(healthy.checks[0].status, Status::ok);
  EXPECT_EQ(healthy.checks[0].summary,
            "2 names resolve inside their expected ranges at 1 vantage point (lab-dns); 1 backend "
            "without a dns_name not checked");
}

TEST_F(DnsProbeTest, WithNoNamesTheCheckIsNotApplicable) {
  for (auto& b : spec.backends) {
    b.dns_name.reset();
    b.expected_cidr.reset();
  }
  const report::Report report = run();
  EXPECT_TRUE(resolver->calls().empty());
  EXPECT_EQ(report.checks[0].status, Status::ok);
  EXPECT_EQ(report.checks[0].summary, "not applicable: no backend has a dns_name");
  ASSERT_EQ(report.findings.size(), 1u);
  EXPECT_EQ(report.findings[0].summary,
            "b1, b2 and b3 have no dns_name: the DNS check does not apply to them");
  EXPECT_TRUE(report.findings[0].subject.empty());
  EXPECT_EQ(report.findings[0].severity, report::Severity::info);

  // The same without a dns block: one finding, not two.
  spec.dns_servers.clear();
  const report::Report bare = run();
  EXPECT_EQ(bare.checks[0].summary, "not applicable: no backend has a dns_name");
  EXPECT_EQ(bare.findings.size(), 1u);
}

TEST_F(DnsProbeTest, EachVantagePointGetsOneDnsDeadlineAndTheyRunInParallel) {
  spec = lab_spec(2);
  spec.dns_servers.push_back({"third", net::Endpoint{"127.10.2.53", 53}});
  // A deadline long enough that a generous margin (for a loaded machine) still
  // tells one deadline from three.
  spec.timeouts.dns = 2000ms;
  resolver->slow = {"lab-dns", "p2-resolver", "third"};
  const auto before = rdns::Clock::now();
  const report::Report report = run();
  const auto took = rdns::Clock::now() - before;
  // Three vantage points that each wait out their deadline: about one deadline
  // in all (2 s), not three (6 s).
  EXPECT_LT(took, 2000ms + 2000ms);
  EXPECT_GE(took, 2000ms);
  for (const auto deadline : resolver->deadlines()) {
    EXPECT_LT(deadline - before, 2000ms + 2000ms);
    EXPECT_GE(deadline - before, 2000ms);
  }
  EXPECT_EQ(resolver->calls().size(), 9u);
}

TEST_F(DnsProbeTest, AResolverThatThrowsMakesTheVantagePointUnknown) {
  class Throwing final : public rdns::Resolver {
   public:
    rdns::Lookup resolve(const std::string&, const spec::DnsServer&,
                         rdns::Clock::time_point) override {
      throw std::runtime_error("out of sockets");
    }
  };
  DnsProbe probe(std::nullopt, std::make_shared<Throwing>());
  report::Report report;
  probe.run(spec, round, report);
  EXPECT_EQ(report.checks[0].status, Status::unknown);
  ASSERT_EQ(report.findings.size(), 1u);
  EXPECT_EQ(report.findings[0].code, "dns_unreachable");
  EXPECT_EQ(evidence_text(report.findings[0], "reason"), "out of sockets");
}

TEST_F(DnsProbeTest, ASpecWithoutBackendsHasNothingToCheck) {
  spec.backends.clear();
  const report::Report report = run();
  EXPECT_EQ(report.checks[0].status, Status::ok);
  EXPECT_EQ(report.checks[0].summary, "not applicable: no backend has a dns_name");
  EXPECT_TRUE(report.findings.empty());
  EXPECT_TRUE(resolver->calls().empty());
}

TEST_F(DnsProbeTest, TheDefaultConstructorUsesTheRealResolver) {
  // Registered as check "dns" with no arguments; must not need a network to build.
  DnsProbe probe;
  EXPECT_EQ(probe.name(), "dns");
  EXPECT_FALSE(probe.only_vantage().has_value());
}

// ---- Against the lab's dnsmasq ----

// A lab in a fresh directory, brought down (every recorded process stopped)
// whatever the test does; the directory is kept only if the test failed.
class LabGuard {
 public:
  LabGuard() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "ringwatch-dns-lab-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    dir_ = pattern;
    lab::up({dir_, 3, 3});
  }
  ~LabGuard() {
    try {
      lab::down(dir_);
    } catch (const std::exception& error) {
      ADD_FAILURE() << "lab down: " << error.what();
    }
    if (!::testing::Test::HasFailure()) {
      std::error_code ignored;
      std::filesystem::remove_all(dir_, ignored);
    }
  }
  LabGuard(const LabGuard&) = delete;
  LabGuard& operator=(const LabGuard&) = delete;

  const std::filesystem::path& dir() const { return dir_; }
  spec::ClusterSpec spec() const { return spec::load_cluster_spec(lab::spec_path(dir_).string()); }

 private:
  std::filesystem::path dir_;
};

report::Report run_real(const spec::ClusterSpec& spec) {
  DnsProbe probe;
  report::Report report;
  RoundContext round;
  probe.run(spec, round, report);
  return report;
}

std::string describe(const report::Report& report) {
  std::string text = report.checks.empty() ? "no check" : report.checks[0].summary;
  for (const auto& f : report.findings) text += "\n  " + f.code + ": " + f.summary;
  return text;
}

TEST(DnsProbeLabTest, HealthyThenAWrongAnswerThenHealed) {
  LabGuard lab;
  const spec::ClusterSpec spec = lab.spec();
  ASSERT_EQ(spec.dns_servers.size(), 1u);
  const std::string vantage = spec.dns_servers[0].name;

  report::Report report = run_real(spec);
  ASSERT_EQ(report.checks.size(), 1u);
  EXPECT_EQ(report.checks[0].status, Status::ok) << describe(report);
  EXPECT_EQ(report.checks[0].summary,
            "3 names resolve inside their expected ranges at 1 "
            "vantage point (" +
                vantage + ")");
  EXPECT_EQ(report.figures.at("dns_answer_expected/b3/" + vantage), 1);

  lab::inject(lab.dir(), {lab::FaultKind::dns, "", "b3", "127.200.0.13", ""});
  report = run_real(spec);
  EXPECT_EQ(report.checks[0].status, Status::critical) << describe(report);
  const report::Finding* outside = find(report, "dns_outside_range");
  ASSERT_NE(outside, nullptr) << describe(report);
  const spec::Backend& b3 = *spec.find_backend("b3");
  EXPECT_EQ(outside->subject,
            (report::Subject{.backend = "b3", .node = *b3.dns_name, .vantage = vantage}));
  EXPECT_EQ(outside->summary, "b3's name " + *b3.dns_name + " resolves to 127.200.0.13 at " +
                                  vantage + ", outside " + b3.expected_cidr->to_string());
  EXPECT_EQ(report.checks[0].summary, outside->summary);
  EXPECT_EQ(report.figures.at("dns_answer_expected/b3/" + vantage), 0);
  EXPECT_EQ(report.figures.at("dns_answer_expected/b1/" + vantage), 1);

  lab::heal(lab.dir());
  report = run_real(spec);
  EXPECT_EQ(report.checks[0].status, Status::ok) << describe(report);
}

TEST(DnsProbeLabTest, AKilledDnsServerIsUnknownWithinTheDeadline) {
  LabGuard lab;
  const spec::ClusterSpec spec = lab.spec();
  int pid = 0;
  for (const auto& process : lab::status(lab.dir()).processes) {
    if (process.role == "dns") pid = process.pid;
  }
  ASSERT_GT(pid, 0);
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  // Dead (reaped by status()) before the probe runs.
  for (int i = 0; i < 100; ++i) {
    bool alive = false;
    for (const auto& process : lab::status(lab.dir()).processes) {
      if (process.role == "dns") alive = process.alive;
    }
    if (!alive) break;
    std::this_thread::sleep_for(20ms);
  }

  const auto before = std::chrono::steady_clock::now();
  const report::Report report = run_real(spec);
  const auto took = std::chrono::steady_clock::now() - before;
  EXPECT_LT(took, 2 * spec.timeouts.dns);
  EXPECT_EQ(report.checks[0].status, Status::unknown) << describe(report);
  ASSERT_EQ(report.findings.size(), 1u) << describe(report);
  const report::Finding& f = report.findings[0];
  EXPECT_TRUE(f.code == "dns_unreachable" || f.code == "dns_timeout") << f.code;
  EXPECT_EQ(f.subject.vantage, spec.dns_servers[0].name);
  EXPECT_FALSE(evidence_text(f, "reason").empty());
  EXPECT_EQ(report.checks[0].summary, f.summary);
  EXPECT_EQ(report.figures.count("dns_answer_expected/b1/" + spec.dns_servers[0].name), 0u);
}

}  // namespace
}  // namespace ringwatch::probes::dns
