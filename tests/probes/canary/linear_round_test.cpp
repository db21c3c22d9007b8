// The linear canary round (the default) against the full one (coverage
// "full") on real labs: every fault the lab can inject is found in the first
// round after it takes effect, with the same subjects in both; a healthy lab
// stays clean round after round while the writers rotate; with
// proxies_per_round, a diverging proxy is read through every round until it
// agrees again.

#include <gtest/gtest.h>

#include <functional>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "probes/registry.h"
#include "tests/support/report_helpers.h"
#include "tests/support/scoped_lab.h"
#include "tools/lab/lab.h"

namespace ringwatch::probes {
namespace {

using report::Finding;
using report::Report;
using report::Severity;
using report::Status;
using testing::describe;
using testing::figure;
using testing::run_until;
using testing::ScopedLab;
using namespace std::chrono_literals;

const std::vector<std::string> kEveryCheck = {"canary", "connections", "dns"};

bool clean(const Report& report) {
  for (const Finding& finding : report.findings) {
    if (finding.severity != Severity::info) return false;
  }
  return report.status() == Status::ok;
}

// (check, code, proxy, backend) of every finding of `check` above info.
using Subjects = std::set<std::tuple<std::string, std::string, std::string, std::string>>;

Subjects subjects(const Report& report, const std::string& check) {
  Subjects found;
  for (const Finding& finding : report.findings) {
    if (finding.check != check || finding.severity == Severity::info) continue;
    found.emplace(finding.check, finding.code, finding.subject.proxy, finding.subject.backend);
  }
  return found;
}

bool has(const Report& report, const std::string& code, const std::string& proxy = "",
         const std::string& backend = "") {
  for (const Finding& finding : report.findings) {
    if (finding.code != code) continue;
    if (!proxy.empty() && finding.subject.proxy != proxy) continue;
    if (!backend.empty() && finding.subject.backend != backend) continue;
    return true;
  }
  return false;
}

std::size_t count(const Report& report, const std::string& code) {
  return static_cast<std::size_t>(
      std::count_if(report.findings.begin(), report.findings.end(),
                    [&](const Finding& finding) { return finding.code == code; }));
}

spec::ClusterSpec with_coverage(spec::ClusterSpec spec, spec::CanaryCoverage coverage) {
  spec.canary.coverage = coverage;
  return spec;
}

// Two probe sets of one lab, one per coverage, kept across rounds as a
// daemon keeps them, and a third that drives traffic until a fault has taken
// effect (so that neither of the two sees a proxy half way through ejecting).
class BothCoverages {
 public:
  explicit BothCoverages(const ScopedLab& lab) : lab_(lab) { reload(); }

  void reload() {
    linear_spec_ = with_coverage(lab_.spec(), spec::CanaryCoverage::linear);
    full_spec_ = with_coverage(lab_.spec(), spec::CanaryCoverage::full);
  }

  // Both clean on the lab as it is (learning, or learning again after a heal).
  void expect_healthy() {
    for (auto [probes, spec] : {std::pair{&linear_, &linear_spec_}, {&full_, &full_spec_}}) {
      const Report report = run_until(*probes, *spec, clean, 60s);
      ASSERT_TRUE(clean(report)) << spec::to_string(spec->canary.coverage) << "\n"
                                 << describe(report);
    }
  }

  // Drives every check until `in_effect`, then one round of each coverage.
  std::pair<Report, Report> first_rounds(const std::function<bool(const Report&)>& in_effect) {
    const Report settled = run_until(driver_, linear_spec_, in_effect, 60s);
    EXPECT_TRUE(in_effect(settled)) << "the fault never took effect\n" << describe(settled);
    return {linear_.run_round(linear_spec_), full_.run_round(full_spec_)};
  }

 private:
  const ScopedLab& lab_;
  spec::ClusterSpec linear_spec_, full_spec_;
  ProbeSet linear_{kEveryCheck}, full_{kEveryCheck}, driver_{kEveryCheck};
};

struct FaultCase {
  std::string name;
  std::function<void()> inject;
  std::function<bool(const Report&)> in_effect;
  // What both coverages must find: (check, code, proxy, backend), "" = any.
  std::vector<std::tuple<std::string, std::string, std::string, std::string>> expected;
};

void expect_same_subjects(const std::pair<Report, Report>& rounds, const FaultCase& fault) {
  const auto& [linear, full] = rounds;
  const std::string both = "linear:\n" + describe(linear) + "full:\n" + describe(full);
  EXPECT_EQ(subjects(linear, "canary"), subjects(full, "canary")) << both;
  for (const auto& [check, code, proxy, backend] : fault.expected) {
    EXPECT_TRUE(has(linear, code, proxy, backend)) << check << "/" << code << "\n" << both;
    EXPECT_TRUE(has(full, code, proxy, backend)) << check << "/" << code << "\n" << both;
  }
  if (fault.expected.empty()) {
    EXPECT_TRUE(subjects(linear, "canary").empty()) << both;
  }
}

// Every fault of `ringwatch lab fault`, then a proxy lacking a backend, on a
// lab of `proxies` x `backends`.
void every_fault_in_both_coverages(int proxies, int backends) {
  ScopedLab lab(proxies, backends);
  BothCoverages modes(lab);
  const auto every_proxy_missing = [proxies](const std::string& backend) {
    return [proxies, backend](const Report& report) {
      std::size_t missing = 0;
      for (const Finding& finding : report.findings) {
        missing += finding.code == "proxy_missing_backend" && finding.subject.backend == backend;
      }
      return missing == static_cast<std::size_t>(proxies);
    };
  };
  const auto now = [](const Report&) { return true; };
  const std::vector<FaultCase> faults = {
      {"eject",
       [&] {
         lab.inject({lab::FaultKind::eject, "p2", "b3", "", ""});
       },
       now,
       {{"canary", "ring_divergence", "p2", "b3"}}},
      {"hash",
       [&] {
         lab.inject({lab::FaultKind::hash, "p1", "", "", "murmur"});
       },
       now,
       {{"canary", "ring_divergence", "p1", ""}}},
      {"kill",
       [&] {
         lab.inject({lab::FaultKind::kill, "", "b2", "", ""});
       },
       every_proxy_missing("b2"),
       {{"canary", "backend_unreachable", "", "b2"}}},
      {"stall",
       [&] {
         lab.inject({lab::FaultKind::stall, "", "b1", "", ""});
       },
       every_proxy_missing("b1"),
       {{"canary", "backend_timeout", "", "b1"}}},
      {"restart",
       [&] {
         lab.inject({lab::FaultKind::restart, "", "b3", "", ""});
       },
       [](const Report& report) { return clean(report); },
       {}},
      {"dns",
       [&] {
         lab.inject({lab::FaultKind::dns, "", "b3", "127.200.0.13", ""});
       },
       now,
       {{"dns", "dns_outside_range", "", "b3"}}},
  };
  for (const FaultCase& fault : faults) {
    SCOPED_TRACE(fault.name);
    modes.expect_healthy();
    fault.inject();
    expect_same_subjects(modes.first_rounds(fault.in_effect), fault);
    lab.heal();
  }
  // A proxy lacking a backend: every proxy but p2 takes a new one.
  SCOPED_TRACE("a proxy lacking a backend");
  const std::string added = lab::add_backend(lab.dir());
  std::vector<std::string> others;
  for (int q = 1; q <= proxies; ++q) {
    if (q != 2) others.push_back("p" + std::to_string(q));
  }
  lab::restart_proxies(lab.dir(), {.proxies = others});
  modes.reload();
  expect_same_subjects(modes.first_rounds(now),
                       {"lacking", {}, now, {{"canary", "ring_divergence", "p2", added}}});
}

TEST(LinearRoundLabTest, EveryFaultIsFoundInTheFirstRoundAsInAFullRoundOn3x3) {
  every_fault_in_both_coverages(3, 3);
}

TEST(LinearRoundLabTest, EveryFaultIsFoundInTheFirstRoundAsInAFullRoundOn12x48) {
  every_fault_in_both_coverages(12, 48);
}

// A partial divergence: p2 weighs b1 at 2 instead of 1, so only part of the
// key space routes differently through p2. Each coverage finds it within 3
// rounds (README, "Partial divergences": with n >= 22 fresh canaries a round,
// a divergence of 10% is missed for 3 rounds with probability < 0.1%; this
// one moves more), naming p2 and nothing else.
TEST(LinearRoundLabTest, AWeightDifferenceOnOneProxyIsFoundWithinThreeRoundsInBothModes) {
  ScopedLab lab;
  BothCoverages modes(lab);
  modes.expect_healthy();
  lab.inject({lab::FaultKind::weight, "p2", "b1", "", ""});
  for (const auto coverage : {spec::CanaryCoverage::linear, spec::CanaryCoverage::full}) {
    SCOPED_TRACE(spec::to_string(coverage));
    const spec::ClusterSpec spec = with_coverage(lab.spec(), coverage);
    ProbeSet probes({"canary"});
    int found_in = 0;
    Report last;
    for (int round = 1; round <= 3 && found_in == 0; ++round) {
      last = probes.run_round(spec);
      if (has(last, "ring_divergence", "p2")) found_in = round;
    }
    ASSERT_GT(found_in, 0) << "not found within 3 rounds\n" << describe(last);
    for (const auto& [check, code, proxy, backend] : subjects(last, "canary")) {
      EXPECT_EQ(proxy, "p2") << code << " " << backend << "\n" << describe(last);
    }
  }
}

// 200 rounds of every check while the writers and the keys rotate: nothing
// above info, and every proxy agrees every round.
TEST(LinearRoundLabTest, TwoHundredHealthyRoundsFindNothing) {
  ScopedLab lab;
  const spec::ClusterSpec spec = lab.spec();
  ProbeSet probes(kEveryCheck);
  for (int round = 0; round < 200; ++round) {
    const Report report = probes.run_round(spec);
    ASSERT_TRUE(clean(report)) << "round " << round << "\n" << describe(report);
    for (const char* proxy : {"p1", "p2", "p3"}) {
      ASSERT_EQ(figure(report, std::string("proxy_verdict/") + proxy), 0) << describe(report);
    }
  }
}

// proxies_per_round 2 of 6: an ejected backend on p5 is found within
// ceil(6 / 2) = 3 rounds, naming p5; p5 is then read through every round
// until it agrees again, and then rotates like the others.
TEST(LinearRoundLabTest, ADivergingProxyIsReadThroughEveryRoundUntilItAgrees) {
  ScopedLab lab(6, 4);
  spec::ClusterSpec spec = lab.spec();
  spec.canary.proxies_per_round = 2;
  ProbeSet probes({"canary"});
  std::set<std::string> covered;
  for (int round = 0; round < 3; ++round) {
    const Report report = probes.run_round(spec);
    ASSERT_TRUE(clean(report)) << describe(report);
    EXPECT_EQ(figure(report, "proxies_read"), 2);
    for (const auto& [name, value] : report.figures) {
      if (name.starts_with("proxy_verdict/")) covered.insert(name.substr(14));
    }
    EXPECT_TRUE(report.summary_line().find("through 2 of 6 proxies") != std::string::npos)
        << report.summary_line();
  }
  EXPECT_EQ(covered.size(), 6u);  // every proxy within ceil(6 / 2) rounds

  lab.inject({lab::FaultKind::eject, "p5", "b3", "", ""});
  int found_in = 0;
  for (int round = 1; round <= 3 && found_in == 0; ++round) {
    const Report report = probes.run_round(spec);
    if (has(report, "ring_divergence", "p5", "b3")) found_in = round;
  }
  ASSERT_GT(found_in, 0) << "p5 not found within 3 rounds";
  for (int round = 0; round < 5; ++round) {
    const Report report = probes.run_round(spec);
    EXPECT_EQ(figure(report, "proxy_verdict/p5"), 1) << describe(report);
    EXPECT_TRUE(has(report, "ring_divergence", "p5", "b3")) << describe(report);
    EXPECT_EQ(count(report, "ring_divergence"), 1u) << describe(report);
  }

  lab.heal();
  const Report agrees = run_until(
      probes, spec, [](const Report& r) { return figure(r, "proxy_verdict/p5") == 0; }, 30s);
  EXPECT_EQ(figure(agrees, "proxy_verdict/p5"), 0) << describe(agrees);
  // Agreeing again, p5 rotates like the others: out of some of the next rounds.
  int without_p5 = 0;
  for (int round = 0; round < 3; ++round) {
    const Report report = probes.run_round(spec);
    EXPECT_TRUE(clean(report)) << describe(report);
    without_p5 += figure(report, "proxy_verdict/p5") < 0;
  }
  EXPECT_GE(without_p5, 1);
}

}  // namespace
}  // namespace ringwatch::probes
